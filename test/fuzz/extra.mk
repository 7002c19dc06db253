EXTRA_gha_pool := $(TOP)/modules/genesys_ha/gha_pair.c $(TOP)/modules/genesys_ha/gha_rrparam.c
EXTRA_gts_plan := $(TOP)/modules/genesys_tlssticky/gts_contact.c
