/*
 * genesys_ha module: RPC commands
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

#ifndef _GHA_RPC_H_
#define _GHA_RPC_H_

#include <stddef.h>

#include "core/rpc.h"

extern rpc_export_t gha_rpc_cmds[];

/*! a wall-clock time (seconds) as UTC ISO 8601, "never" for 0 */
void gha_rpc_fmt_time(long t, char *buf, size_t size);

#endif
