/*
 * genesys_oos: RPC commands
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

#ifndef _GOOS_RPC_H_
#define _GOOS_RPC_H_

#include "core/rpc.h"
#include "api.h"

extern rpc_export_t goos_rpc_cmds[];

/*! force (GOOS_ACTIVE, GOOS_DOWN) or release (0) the state of a target;
 * notifies a change; returns 0, or -1 for a bad id */
int goos_set_forced(int id, int forced);
/*! distributed probing (api.h set_remote) */
int goos_set_remote(int id, int remote, goos_state_t state);

#endif
