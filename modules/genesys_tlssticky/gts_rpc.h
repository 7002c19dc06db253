/*
 * genesys_tlssticky: RPC commands
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

#ifndef GTS_RPC_H
#define GTS_RPC_H

#include "core/rpc.h"

#define GTS_RPC_LIST_USAGE "genesys_tlssticky.list [user@host]"

/* in the module exports, as genesys_ha and genesys_oos do */
extern rpc_export_t gts_rpc_cmds[];

#endif
