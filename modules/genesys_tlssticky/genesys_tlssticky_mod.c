/*
 * genesys_tlssticky module: Kamailio glue
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

#include "core/sr_module.h"
#include "core/dprint.h"

MODULE_VERSION

static int mod_init(void);

/* clang-format off */
struct module_exports exports = {
	"genesys_tlssticky",            /* module name */
	DEFAULT_DLFLAGS, /* dlopen flags */
	0,               /* exported functions */
	0,               /* exported parameters */
	0,               /* RPC method exports */
	0,               /* exported pseudo-variables */
	0,               /* response handling function */
	mod_init,        /* module init function */
	0,               /* per-child init function */
	0                /* module destroy function */
};
/* clang-format on */

static int mod_init(void)
{
	LM_INFO("module loaded\n");
	return 0;
}
