/*
 * genesys_ha module: Record-Route by the pool's name
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: Record-Route naming the pool (rr_pool_name) instead
 * of this proxy, so that any proxy of the pool takes the dialog's in-dialog
 * requests
 */

#ifndef _GHA_POOLRR_H_
#define _GHA_POOLRR_H_

#include "core/str.h"
#include "core/parser/msg_parser.h"

extern str gha_rr_pool_name; /*!< the pool's FQDN, empty: off (default) */
extern int gha_rr_pool_port; /*!< the socket's port in the URI (default 1) */

/*! check the parameters, read rr's, make the name an alias; 0 or -1 */
int gha_poolrr_init(void);
/*! 1 when the Record-Route of msg may name the pool: the option is on and
 * the request comes from a pool member or over a connectionless transport
 * (a phone or gateway on its own TCP/TLS connection is reached through
 * the proxy holding that connection only) */
int gha_poolrr_applies(sip_msg_t *msg, int from_member);
/*! add the Record-Route (two with rr's enable_double_rr when the
 * transport or socket changes) naming the pool, with params; 0 or -1 */
int gha_poolrr_add(sip_msg_t *msg, str *params);

#endif
