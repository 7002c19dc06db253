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
/*! 1 when ha_record_route() names the pool (rr_pool_name is set) */
int gha_poolrr_applies(void);
/*! add the Record-Route (two with rr's enable_double_rr when the socket or
 * transport changes) with params: toward the next hop it names the pool;
 * toward the previous hop too when that is a pool member (from_member) or
 * reached over UDP/SCTP, else this proxy (a phone or gateway on its own
 * TCP/TLS connection: only this proxy holds it); 0 or -1 */
int gha_poolrr_add(sip_msg_t *msg, str *params, int from_member);

#endif
