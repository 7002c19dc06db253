EXTRA_gha_pool := $(TOP)/modules/genesys_ha/gha_pair.c
