# extra sources and flags per unit test (see Makefile)
EXTRA_gha_pool := $(TOP)/modules/genesys_ha/gha_pair.c \
	$(TOP)/modules/genesys_ha/gha_rrparam.c
EXTRA_gha_xml := $(TOP)/modules/genesys_ha/gha_pool.c $(TOP)/modules/genesys_ha/gha_pair.c \
	$(TOP)/modules/genesys_ha/gha_rrparam.c
GHA_XML_CFLAGS := $(shell pkg-config --cflags libxml-2.0) \
	-DGHA_TEST_TOP='"$(TOP)"'
GHA_XML_LIBS := $(shell pkg-config --libs libxml-2.0)
$(BIN)/test_gha_xml $(BIN)/test_gha_xml.san: CFLAGS_COMMON += $(GHA_XML_CFLAGS)
$(BIN)/test_gha_xml $(BIN)/test_gha_xml.san: LDLIBS += $(GHA_XML_LIBS)

# genesys_tlssticky: the table uses the hash and the token file's address
# helpers; token signing needs OpenSSL's libcrypto
EXTRA_gts_table := $(TOP)/modules/genesys_tlssticky/gts_token.c \
	$(TOP)/modules/genesys_tlssticky/gts_hash.c
$(BIN)/test_gts_token $(BIN)/test_gts_token.san \
$(BIN)/test_gts_table $(BIN)/test_gts_table.san: LDLIBS += -lcrypto

# genesys_ha state slots: snapshots built by the pool model
EXTRA_gha_slots := $(TOP)/modules/genesys_ha/gha_pool.c \
	$(TOP)/modules/genesys_ha/gha_pair.c $(TOP)/modules/genesys_ha/gha_rrparam.c

# genesys_tlssticky parameters: the policy names are parsed by the table
EXTRA_gts_params := $(TOP)/modules/genesys_tlssticky/gts_table.c \
	$(TOP)/modules/genesys_tlssticky/gts_token.c \
	$(TOP)/modules/genesys_tlssticky/gts_hash.c
$(BIN)/test_gts_params $(BIN)/test_gts_params.san: LDLIBS += -lcrypto

# genesys_tlssticky Contact rewrite plan: builds with the Contact helpers
EXTRA_gts_plan := $(TOP)/modules/genesys_tlssticky/gts_contact.c
EXTRA_gha_sync := $(TOP)/modules/genesys_ha/gha_pair.c

# genesys_ha parameters: the defaults are compared with the admin guide
$(BIN)/test_gha_params $(BIN)/test_gha_params.san: CFLAGS_COMMON += \
	-DGHA_TEST_TOP='"$(TOP)"'
