/*
 * genesys_ha module: routing functions (request path) and $ha(...)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: ki_ implementations of the script functions and
 * the per-message context behind $ha(...): initial requests in gha_route.c,
 * in-dialog requests in gha_indialog.c, requests, replies and failures of
 * the SIP Servers in gha_sipserver.c, the context and $ha in gha_ctx.c
 */

#ifndef _GHA_ROUTE_H_
#define _GHA_ROUTE_H_

#include <string.h>

#include "core/parser/msg_parser.h"
#include "core/ip_addr.h"
#include "core/pvar.h"
#include "modules/rr/api.h"
#include "modules/tm/tm_load.h"
#include "gha_pool.h"

/*! what $ha(...) shows for the current message (process-local) */
typedef struct gha_ctx
{
	unsigned int msg_id;
	int msg_pid;
	char pair[GHA_NAME_MAX + 1];
	int pair_len;
	int role;		  /*!< member of the pair, -1 none */
	char member[256]; /*!< member URI as configured */
	int member_len;
	int state; /*!< pair state, -1 none */
	char dn[GHA_NAME_MAX + 1];
	int dn_len;
	int trigger; /*!< event routes: switchover trigger, -1 none */
	char old_member[256];
	int old_member_len;
	int from_member; /*!< the request came from a pool member */
	/*! the chosen pair in the snapshot of the time: only for its
	 * precomputed Record-Route parameter, and only after checking that it
	 * lies in the snapshot the process holds now and has the same name */
	const gha_pair_t *pr;
} gha_ctx_t;

extern struct rr_binds gha_rrb;
extern struct tm_binds gha_tmb;

/*! context of msg; reset it when it belongs to another message */
gha_ctx_t *gha_ctx(sip_msg_t *msg);
/*! context of msg, from $xavp(gha) when the process-local one belongs to
 * another message (a failure_route run by another process) */
gha_ctx_t *gha_ctx_load(sip_msg_t *msg);
/*! copy s into a context buffer of size bytes (cut, NUL-terminated);
 * the length copied */
int gha_ctx_cpy(char *dst, int size, const str *s);
/*! keep the context of the message being routed across an event route */
void gha_ctx_save(gha_ctx_t *save);
void gha_ctx_restore(const gha_ctx_t *save);
/*! fill the pair part of the context */
void gha_ctx_set_pair(gha_ctx_t *c, const gha_pair_t *pr, int member);

int gha_route_init(void);
void gha_route_destroy(void);
/*! the in-dialog part of gha_route_init()/gha_route_destroy() */
int gha_indialog_init(void);
void gha_indialog_destroy(void);

/*! route msg to member g of pair pr, in its down grace (gha_route.c) */
int gha_grace_route(sip_msg_t *msg, gha_pair_t *pr, int g);

/*! a received packet's source address as the pool's lookups take it */
static inline void gha_to_addr(const struct ip_addr *ip, gha_addr_t *a)
{
	memset(a, 0, sizeof(*a));
	a->af = (int)ip->af;
	memcpy(a->ip, ip->u.addr, ip->len <= 16 ? ip->len : 16);
}

int ki_ha_select_serving(sip_msg_t *msg);
int ki_ha_select(sip_msg_t *msg, str *pair);
int ki_ha_select_site(sip_msg_t *msg);
int ki_ha_select_site_name(sip_msg_t *msg, str *site);
int ki_ha_select_by_uri(sip_msg_t *msg);
int ki_ha_record_route(sip_msg_t *msg);
int ki_ha_record_route_dn(sip_msg_t *msg, str *dn);
int ki_ha_route_in_dialog(sip_msg_t *msg);
int ki_ha_from_sipserver(sip_msg_t *msg);
int ki_ha_failover(sip_msg_t *msg);
int ki_ha_select_feature_server(sip_msg_t *msg);
/*! core response hook: replies from members while a down grace is open */
int gha_grace_reply(sip_msg_t *msg);

int pv_parse_ha_name(pv_spec_t *sp, str *in);
int pv_get_ha(sip_msg_t *msg, pv_param_t *param, pv_value_t *res);

#endif
