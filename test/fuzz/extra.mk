EXTRA_gha_pool := $(TOP)/modules/genesys_ha/gha_pair.c $(TOP)/modules/genesys_ha/gha_rrparam.c
