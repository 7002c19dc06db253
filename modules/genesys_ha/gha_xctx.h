/*
 * genesys_ha module: $ha(...) context carried by the transaction (xavp)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: the per-message context in $xavp(gha)
 *
 * The context behind $ha(...) is process-local (gha_ctx_t).  A
 * failure_route may run in another process (tm's timer process on a
 * timeout), so when a script function chooses a pair in request_route or
 * failure_route, the values the cfg reads (pair, role, state, dn, member)
 * are also stored in one xavp, $xavp(gha) (one string, tab-separated, one
 * shm allocation); tm moves the xavp list into the transaction it creates
 * and restores it in failure_route, where $ha(...) reads it back when the
 * process-local context belongs to another message.
 */

#ifndef _GHA_XCTX_H_
#define _GHA_XCTX_H_

#include "gha_route.h"

/*! store c's pair, role, member, state and dn in $xavp(gha) (replacing a
 * previous one), in request_route and failure_route only, not for ACK */
void gha_xctx_store(sip_msg_t *msg, const gha_ctx_t *c);
/*! fill c from $xavp(gha); 1 when there was one, else 0 (c untouched) */
int gha_xctx_load(gha_ctx_t *c);

#endif
