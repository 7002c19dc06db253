/*
 * genesys_ha module: routing of in-dialog requests
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: in-dialog requests (ha_route_in_dialog()): the pair
 * id our Record-Route put in the Route header, to the pair's current active
 * member, and the refusal of what our Record-Route cannot have led here.
 * Request path: no shm allocation, no DNS, no lock (runtime state is read
 * lock-free).
 */

#include <string.h>
#include <regex.h>

#include "core/dprint.h"
#include "core/ut.h"
#include "core/dset.h"
#include "core/parser/parse_uri.h"
#include "core/ip_addr.h"

#include "gha_state.h"
#include "gha_route.h"
#include "gha_rrparam.h"
#include "gha_pending.h"
#include "gha_xctx.h"

/* a "gha" Route parameter, with or without a value */
static regex_t gha_param_re;
static int gha_param_re_ok = 0;

int gha_indialog_init(void)
{
	if(regcomp(&gha_param_re, ";[ \t]*" GHA_RR_PAIR "[ \t]*(=|;|$)",
			   REG_EXTENDED | REG_NOSUB)
			!= 0) {
		LM_ERR("cannot compile the Route parameter expression\n");
		return -1;
	}
	gha_param_re_ok = 1;
	return 0;
}

void gha_indialog_destroy(void)
{
	if(gha_param_re_ok)
		regfree(&gha_param_re);
	gha_param_re_ok = 0;
}

static int refuse_route(sip_msg_t *msg, const char *why, str *val)
{
	counter_inc(gha_cnt.route_refused);
	LM_WARN("in-dialog %.*s from %s:%d refused: %s '%.*s' in the Route "
			"header; not forwarded\n",
			msg->first_line.u.request.method.len,
			msg->first_line.u.request.method.s, ip_addr2a(&msg->rcv.src_ip),
			msg->rcv.src_port, why, val->len > 64 ? 64 : val->len,
			val->s ? val->s : "");
	return GHA_RC_UNKNOWN_PAIR;
}

/* the request comes from a pair member or a feature server (source
 * address; the port too over UDP, a TCP/TLS peer sends from any port) */
static int from_pool(gha_pool_t *p, sip_msg_t *msg)
{
	gha_addr_t a;
	int any = msg->rcv.proto != PROTO_UDP, m;

	gha_to_addr(&msg->rcv.src_ip, &a);
	return gha_pool_find_member_addr(p, &a, msg->rcv.src_port, any, &m) >= 0
		   || gha_pool_find_fs_src(p, &a, any ? 0 : msg->rcv.src_port) >= 0;
}

/* the next hop (the destination URI loose_route() set from a further
 * Route, else the Request-URI) names a pair member or a feature server as
 * the pool file does (host or address, port) */
static int to_pool(gha_pool_t *p, sip_msg_t *msg)
{
	struct sip_uri du, *u = &du;
	str h;
	int m;

	if(msg->dst_uri.len > 0) {
		if(parse_uri(msg->dst_uri.s, msg->dst_uri.len, &du) < 0)
			return 0;
	} else {
		if(parse_sip_msg_uri(msg) < 0)
			return 0;
		u = &msg->parsed_uri;
	}
	h = u->host;
	if(h.len > 2 && h.s[0] == '[' && h.s[h.len - 1] == ']') {
		h.s++;
		h.len -= 2;
	}
	return gha_pool_find_member_host(p, &h, u->port_no, &m) >= 0
		   || gha_pool_find_fs_host(p, &h, u->port_no) >= 0;
}

/* an in-dialog request goes only where our Record-Route can have led: to
 * the pool (a member, a feature server) or, from the pool, to an endpoint
 * (SIP Server is trusted with its destinations as for initial requests);
 * the phones' flows are checked before (genesys_tlssticky) */
static int refuse_foreign(gha_pool_t *p, sip_msg_t *msg)
{
	str ru, du;

	if(p == NULL || from_pool(p, msg) || to_pool(p, msg))
		return 0;
	counter_inc(gha_cnt.route_refused);
	ru = *GET_RURI(msg);
	du = msg->dst_uri;
	LM_WARN("in-dialog %.*s from %s:%d refused: neither from nor to the "
			"SIP Server pool (R-URI '%.*s', next hop '%.*s'); not "
			"forwarded\n",
			msg->first_line.u.request.method.len,
			msg->first_line.u.request.method.s, ip_addr2a(&msg->rcv.src_ip),
			msg->rcv.src_port, ru.len > 64 ? 64 : ru.len, ZSW(ru.s),
			du.len > 64 ? 64 : du.len, ZSW(du.s));
	return 1;
}

int ki_ha_route_in_dialog(sip_msg_t *msg)
{
	static str pname = str_init(GHA_RR_PAIR);
	gha_pool_t *p = gha_snap();
	char name[GHA_RR_VAL_MAX + 1], dn[GHA_RR_VAL_MAX + 1];
	str val = STR_NULL, nm;
	gha_ctx_t *c;
	gha_pair_t *pr;
	int n, dl, pi, qi, m, a, g;

	if(gha_rrb.get_route_param(msg, &pname, &val) < 0) {
		/* "gha" without a value is a malformed id, not "no id" */
		if(gha_param_re_ok
				&& gha_rrb.check_route_param(msg, &gha_param_re) == 0)
			return refuse_route(msg, "malformed SIP Server pair id", &val);
		if(refuse_foreign(p, msg))
			return GHA_RC_FOREIGN;
		return GHA_RC_NOT_FOUND; /* not a dialog through a pair */
	}
	n = gha_rr_decode_value(&val, name, dn, &dl);
	if(n < 0)
		return refuse_route(msg, "malformed SIP Server pair id", &val);
	nm.s = name;
	nm.len = n;
	pi = p ? gha_pool_find_pair(p, name, n) : -1;
	if(pi < 0)
		return refuse_route(msg, "unknown SIP Server pair", &nm);
	c = gha_ctx(msg);
	gha_ctx_set_pair(c, &p->pairs[pi], gha_active(&p->pairs[pi]));
	if(dl > 0) {
		memcpy(c->dn, dn, (size_t)dl);
		c->dn[dl] = '\0';
		c->dn_len = dl;
	}
	/* towards the SIP Server side: the Request-URI names a member (maybe
	 * the old primary): send it to that pair's current active member */
	if(parse_sip_msg_uri(msg) < 0) {
		LM_ERR("cannot parse the Request-URI\n");
		return GHA_RC_ERROR;
	}
	qi = gha_pool_find_member_host(
			p, &msg->parsed_uri.host, msg->parsed_uri.port_no, &m);
	if(qi < 0) {
		/* towards the endpoint: only from the pool */
		if(refuse_foreign(p, msg))
			return GHA_RC_FOREIGN;
		gha_xctx_store(msg, c);
		return GHA_RC_AS_IS;
	}
	pr = &p->pairs[qi];
	a = gha_active(pr);
	gha_ctx_set_pair(c, pr, a);
	if(gha_pstate(pr) != GHA_PS_UP && gha_pstate(pr) != GHA_PS_UNKNOWN
			&& (g = gha_grace_target(pr)) >= 0) {
		GHA_INC(pr->slot->n_indialog);
		counter_inc(gha_cnt.in_dialog);
		return gha_grace_route(msg, pr, g);
	}
	if(gha_pstate(pr) == GHA_PS_DOWN) {
		counter_inc(gha_cnt.rejected);
		return GHA_RC_OUT_OF_SERVICE;
	}
	if(set_dst_uri(msg, &pr->m[a].dst) < 0) {
		LM_ERR("cannot set the destination\n");
		return GHA_RC_ERROR;
	}
	gha_pending_note(msg, pr->m[a].proto);
	GHA_INC(pr->slot->n_indialog);
	counter_inc(gha_cnt.in_dialog);
	gha_xctx_store(msg, c);
	return GHA_RC_OK;
}
