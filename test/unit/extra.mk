# genesys_tlssticky: the table uses the token file's hash and address
# helpers; token signing needs OpenSSL's libcrypto
EXTRA_gts_table := $(TOP)/modules/genesys_tlssticky/gts_token.c
$(BIN)/test_gts_token $(BIN)/test_gts_token.san \
$(BIN)/test_gts_table $(BIN)/test_gts_table.san: LDLIBS += -lcrypto
