/*
 * genesys_tlssticky: routing toward phones over their flows, relay to the
 * proxy of the pool holding a flow
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

#include <stdio.h>
#include <string.h>

#include "core/dprint.h"
#include "core/mem/mem.h"
#include "core/ut.h"
#include "core/dset.h"
#include "core/data_lump.h"
#include "core/forward.h"
#include "core/ip_addr.h"
#include "core/socket_info.h"
#include "core/parser/msg_parser.h"
#include "core/parser/parse_uri.h"
#include "core/parser/parse_rr.h"
#include "core/parser/parse_from.h"

#include "gts_mod.h"
#include "gts_contact.h"

/* ---- toward the phone ---- */

/* add ";<token_param>=<connection token of f>" to our Record-Route; the
 * token carries the binding's policy, for in-dialog requests whose flow is
 * gone */
static int add_rr_token(struct sip_msg *msg, const gts_flow_t *f, int policy)
{
	char rrp[GTS_TOKEN_MAX + 32];
	gts_flow_t ct;
	str s;

	if(gts_cfg.token_param.len > 16)
		return -1;
	ct = *f;
	ct.aorh = ct.bid = ct.gen = 0;
	ct.reconnect = policy == GTS_POL_RECONNECT;
	rrp[0] = ';';
	memcpy(rrp + 1, gts_cfg.token_param.s, gts_cfg.token_param.len);
	rrp[1 + gts_cfg.token_param.len] = '=';
	s.s = rrp;
	s.len = 2 + gts_cfg.token_param.len;
	if(gts_mint(&ct, rrp + s.len, sizeof(rrp) - s.len) < 0)
		return -1;
	s.len += (int)strlen(rrp + s.len);
	if(gts_rrb.add_rr_param(msg, &s) < 0) {
		LM_ERR("cannot add the flow token to Record-Route\n");
		return -1;
	}
	return 0;
}

/* set_rr: the binding's policy when the flow token goes into our
 * Record-Route, -1 for none */
static int route_over_flow(struct sip_msg *msg, const gts_flow_t *f,
		struct socket_info *si, int set_rr)
{
	char du[128];
	char src[64];
	str s;

	gts_addr_str(&f->src, src, sizeof(src));
	s.s = du;
	s.len = snprintf(du, sizeof(du), "sip:%s;transport=%s", src,
			get_proto_name(f->proto));
	if(set_dst_uri(msg, &s) < 0) {
		LM_ERR("cannot set the destination URI\n");
		return -1;
	}
	set_force_socket(msg, si);
	msg->fwd_send_flags.f |= SND_F_FORCE_CON_REUSE;
	if(set_rr >= 0 && gts_cfg.rr_token && gts_have_rr
			&& add_rr_token(msg, f, set_rr) < 0)
		return -1;
	return 0;
}

/* 0: a token of ours (*si: the flow's socket); 1: a valid token of another
 * proxy of the pool (tok decoded, *si NULL); -2: refused */
static int check_token(struct sip_msg *msg, const char *where, const char *tv,
		size_t tl, gts_flow_t *tok, struct socket_info **si)
{
	gts_tok_res_t r;

	r = gts_token_decode(tv, tl, (unsigned char *)gts_cfg.secret.s,
			(size_t)gts_cfg.secret.len, tok);
	if(r != GTS_TOK_OK) {
		counter_inc(gts_cnt.forged);
		LM_WARN("%s flow token in the %s of a %.*s from %s:%d refused:"
				" never forwarded\n",
				r == GTS_TOK_BADMAC ? "forged" : "malformed", where,
				msg->first_line.u.request.method.len,
				msg->first_line.u.request.method.s, ip_addr2a(&msg->rcv.src_ip),
				msg->rcv.src_port);
		return -2;
	}
	if(tok->proto != PROTO_TLS && tok->proto != PROTO_TCP) {
		counter_inc(gts_cnt.forged);
		LM_WARN("flow token in the %s of a %.*s from %s:%d names no TLS or"
				" TCP flow: refused, never forwarded\n",
				where, msg->first_line.u.request.method.len,
				msg->first_line.u.request.method.s, ip_addr2a(&msg->rcv.src_ip),
				msg->rcv.src_port);
		return -2;
	}
	*si = gts_local_socket(tok);
	return *si == NULL ? 1 : 0;
}

/* the loop marker a proxy adds to a request it relays to another proxy of
 * the pool: 1 (and its value in *v) when the request carries one */
static int relay_marker(struct sip_msg *msg, str *v)
{
	struct hdr_field *h;

	if(parse_headers(msg, HDR_EOH_F, 0) < 0)
		return 0;
	for(h = msg->headers; h; h = h->next) {
		if(h->type == HDR_OTHER_T && h->name.len == gts_cfg.relay_header.len
				&& strncasecmp(h->name.s, gts_cfg.relay_header.s, h->name.len)
						   == 0) {
			if(v)
				*v = h->body;
			return 1;
		}
	}
	return 0;
}

/* a request relayed to us by another proxy: its marker is not for the
 * phone */
static void strip_relay_marker(struct sip_msg *msg)
{
	struct hdr_field *h;

	if(!relay_marker(msg, NULL))
		return;
	for(h = msg->headers; h; h = h->next)
		if(h->type == HDR_OTHER_T && h->name.len == gts_cfg.relay_header.len
				&& strncasecmp(h->name.s, gts_cfg.relay_header.s, h->name.len)
						   == 0
				&& del_lump(msg, (int)(h->name.s - msg->buf), h->len, 0)
						   == NULL)
			LM_ERR("cannot remove the %.*s header\n", gts_cfg.relay_header.len,
					gts_cfg.relay_header.s);
}

static int flow_gone(struct sip_msg *msg, const gts_flow_t *f, const char *aor);

/* a valid token of another proxy of the pool: every proxy of the pool
 * shares the secret, so the relay address it names (under the MAC) is
 * where that proxy takes requests for its phones.  The request goes there
 * once (set_dst: initial requests; in-dialog ones keep the next hop of
 * their route set, loose_route() set it), with the loop marker; the proxy
 * holding the flow verifies the token again.  Returns 3, or -2/-3. */
static int relay_foreign(struct sip_msg *msg, const char *where,
		const gts_flow_t *tok, int set_dst)
{
	char loc[64], to[64], du[128], hf[160];
	struct ip_addr ip;
	struct lump *l;
	str hv, s;
	char *p;
	int len;

	counter_inc(gts_cnt.foreign);
	gts_addr_str(&tok->local, loc, sizeof(loc));
	if(!gts_cfg.relay || tok->relay.af == 0) {
		LM_WARN("flow token in the %s of a %.*s from %s:%d names a flow of"
				" another proxy (%s %s) and %s: refused, never forwarded\n",
				where, msg->first_line.u.request.method.len,
				msg->first_line.u.request.method.s, ip_addr2a(&msg->rcv.src_ip),
				msg->rcv.src_port, get_proto_name(tok->proto), loc,
				gts_cfg.relay ? "no relay address"
							  : "relaying is off (modparam relay 0)");
		return -2;
	}
	gts_addr_str(&tok->relay, to, sizeof(to));
	if(relay_marker(msg, &hv)) {
		LM_WARN("flow token in the %s of a %.*s from %s:%d names a flow of"
				" another proxy (%s %s, relay address %s) and the request"
				" was already relayed by %.*s: refused, relayed at most"
				" once\n",
				where, msg->first_line.u.request.method.len,
				msg->first_line.u.request.method.s, ip_addr2a(&msg->rcv.src_ip),
				msg->rcv.src_port, get_proto_name(tok->proto), loc, to,
				hv.len > 64 ? 64 : hv.len, hv.s);
		return -2;
	}
	gts_addr_to_ip(&tok->relay, &ip);
	if(find_si(&ip, tok->relay.port, tok->relay_proto) != NULL) {
		/* our own relay address but not our socket: a flow this proxy
		 * had under another configuration */
		return flow_gone(msg, tok, "a flow of a former socket of ours");
	}
	if(set_dst) {
		s.s = du;
		s.len = snprintf(du, sizeof(du), "sip:%s;transport=%s", to,
				get_proto_name(tok->relay_proto));
		if(s.len <= 0 || s.len >= (int)sizeof(du) || set_dst_uri(msg, &s) < 0) {
			LM_ERR("cannot set the destination URI\n");
			return -3;
		}
	}
	/* the marker: who relayed it (diagnostics); after the last header */
	if(parse_headers(msg, HDR_EOH_F, 0) < 0) {
		LM_ERR("cannot parse the headers\n");
		return -3;
	}
	len = snprintf(hf, sizeof(hf), "%.*s: %s:%.*s\r\n",
			gts_cfg.relay_header.len, gts_cfg.relay_header.s,
			get_proto_name(gts_cfg.csock->proto), gts_cfg.contact_hostport.len,
			gts_cfg.contact_hostport.s);
	if(len <= 0 || len >= (int)sizeof(hf))
		return -3;
	p = pkg_malloc(len);
	if(p == NULL) {
		PKG_MEM_ERROR;
		return -3;
	}
	memcpy(p, hf, len);
	l = anchor_lump(msg, (int)(msg->unparsed - msg->buf), 0, 0);
	if(l == NULL || insert_new_lump_before(l, p, len, 0) == NULL) {
		LM_ERR("cannot add the %.*s header\n", gts_cfg.relay_header.len,
				gts_cfg.relay_header.s);
		pkg_free(p);
		return -3;
	}
	counter_inc(gts_cnt.relayed);
	LM_INFO("%.*s from %s:%d for a flow of another proxy (%s %s): relayed"
			" to that proxy at %s %s\n",
			msg->first_line.u.request.method.len,
			msg->first_line.u.request.method.s, ip_addr2a(&msg->rcv.src_ip),
			msg->rcv.src_port, get_proto_name(tok->proto), loc,
			get_proto_name(tok->relay_proto), to);
	return 3;
}

static int flow_gone(struct sip_msg *msg, const gts_flow_t *f, const char *aor)
{
	char src[64];
	counter_inc(gts_cnt.flow_failed);
	gts_addr_str(&f->src, src, sizeof(src));
	LM_NOTICE("flow gone: %.*s for %s cannot reach the phone, its %s"
			  " connection %u from %s is closed\n",
			msg->first_line.u.request.method.len,
			msg->first_line.u.request.method.s, aor, get_proto_name(f->proto),
			f->conid, src);
	return -3;
}

/* in-dialog, flow gone, the phone accepts inbound connections: normal
 * routing, as loose_route() left it (the next Route, else the Request-URI:
 * the phone's own Contact); no socket or connection of the dead flow is
 * forced, so Kamailio opens a new connection when it has none */
static int reconnect_in_dialog(struct sip_msg *msg, const gts_flow_t *f)
{
	char src[64];
	str *to;

	to = (msg->dst_uri.s && msg->dst_uri.len > 0) ? &msg->dst_uri
												  : GET_RURI(msg);
	counter_inc(gts_cnt.reconnect);
	gts_addr_str(&f->src, src, sizeof(src));
	LM_INFO("flow gone, reconnect policy: in-dialog %.*s for the phone at"
			" %s (its %s connection %u is closed) sent by normal routing to"
			" %.*s\n",
			msg->first_line.u.request.method.len,
			msg->first_line.u.request.method.s, src, get_proto_name(f->proto),
			f->conid, to->len, to->s);
	return 2;
}

/* 1 when the topmost Route (ours: loose_route() took it) names one of
 * this proxy's sockets (any port and transport), 0 when it names this proxy
 * by an alias only (the pool's name) */
static int top_route_names_socket(struct sip_msg *msg)
{
	struct sip_uri pu;
	rr_t *rt;

	if(msg->route == NULL
			|| (msg->route->parsed == NULL && parse_rr(msg->route) < 0))
		return 1;
	rt = (rr_t *)msg->route->parsed;
	if(rt == NULL
			|| parse_uri(rt->nameaddr.uri.s, rt->nameaddr.uri.len, &pu) < 0)
		return 1;
	return grep_sock_info(&pu.host, 0, 0) != NULL;
}

/* in-dialog, our own Route (loose_route() took it, and a second one of a
 * double Record-Route, out of the request) carries a valid token of another
 * proxy of the pool: the dialog's Record-Route names the pool (genesys_ha
 * rr_pool_name) on this side and the proxy holding the phone's flow on the
 * phone's.  Relayed once to that proxy (relay_foreign()), with a Route
 * naming it and the token on top, which its loose_route() takes as its own:
 * it sends the request over the phone's flow.  3, or -2/-3. */
static int relay_in_dialog(
		struct sip_msg *msg, const gts_flow_t *tok, const str *tv)
{
	char to[64], hf[GTS_TOKEN_MAX + 128];
	struct lump *l;
	char *p;
	int r, len;

	r = relay_foreign(msg, "Route", tok, 1);
	if(r != 3)
		return r;
	gts_addr_str(&tok->relay, to, sizeof(to));
	len = snprintf(hf, sizeof(hf),
			"Route: <sip:%s;transport=%s;lr;%.*s=%.*s>\r\n", to,
			get_proto_name(tok->relay_proto), gts_cfg.token_param.len,
			gts_cfg.token_param.s, tv->len, tv->s);
	if(len <= 0 || len >= (int)sizeof(hf) || msg->headers == NULL)
		return -3;
	if((p = pkg_malloc(len)) == NULL) {
		PKG_MEM_ERROR;
		return -3;
	}
	memcpy(p, hf, len);
	l = anchor_lump(msg, (int)(msg->headers->name.s - msg->buf), 0, 0);
	if(l == NULL || insert_new_lump_before(l, p, len, 0) == NULL) {
		LM_ERR("cannot add the Route to the proxy holding the flow\n");
		pkg_free(p);
		return -3;
	}
	return 3;
}

/* in-dialog, the next hop loose_route() took from the route set is not us:
 * when it is another proxy of the pool holding a phone's flow (its
 * Record-Route, with a valid flow token), the request is relayed there as
 * the route set says, with the relay treatment (loop marker, 3: the
 * caller's short timer and 430); anything else: normal routing (-1) */
static int route_of_other_proxy(struct sip_msg *msg)
{
	struct sip_uri pu;
	gts_flow_t tok;
	gts_tok_res_t r;
	const char *tv;
	size_t tl;

	if(msg->dst_uri.s == NULL || msg->dst_uri.len <= 0
			|| parse_uri(msg->dst_uri.s, msg->dst_uri.len, &pu) < 0
			|| !gts_param_find(pu.params.s, (size_t)pu.params.len,
					gts_cfg.token_param.s, (size_t)gts_cfg.token_param.len, &tv,
					&tl))
		return -1;
	r = gts_token_decode(tv, tl, (unsigned char *)gts_cfg.secret.s,
			(size_t)gts_cfg.secret.len, &tok);
	if(r != GTS_TOK_OK || (tok.proto != PROTO_TLS && tok.proto != PROTO_TCP)
			|| gts_local_socket(&tok) != NULL)
		return -1; /* not a pool proxy's flow: that hop decides */
	return relay_foreign(msg, "next Route", &tok, 0);
}

int gts_sip_route(struct sip_msg *msg)
{
	static str rr_name;
	gts_view_t v;
	gts_flow_t tok;
	struct socket_info *si;
	struct ip_addr ip;
	const char *tv;
	size_t tl;
	str val, uri;
	gts_res_t res;
	int r;

	if(msg->first_line.type != SIP_REQUEST)
		return -1;
	if(parse_sip_msg_uri(msg) < 0)
		return -1;

	if(gts_param_find(msg->parsed_uri.params.s,
			   (size_t)msg->parsed_uri.params.len, gts_cfg.token_param.s,
			   (size_t)gts_cfg.token_param.len, &tv, &tl)) {
		/* initial request to the Contact SIP Server got from us */
		r = check_token(msg, "Request-URI", tv, tl, &tok, &si);
		if(r < 0)
			return r;
		if(tok.bid == 0) {
			counter_inc(gts_cnt.forged);
			LM_WARN("connection token in a Request-URI from %s:%d: refused\n",
					ip_addr2a(&msg->rcv.src_ip), msg->rcv.src_port);
			return -2;
		}
		if(r == 1)
			return relay_foreign(msg, "Request-URI", &tok, 1);
		strip_relay_marker(msg);
		res = gts_table_lookup(&gts_root->table, &tok, &v);
		if(res == GTS_STALE) {
			counter_inc(gts_cnt.stale);
			LM_WARN("stale flow token (generation %u, connection %u) in a"
					" %.*s from %s:%d: the phone registered over a newer"
					" flow; refused\n",
					tok.gen, tok.conid, msg->first_line.u.request.method.len,
					msg->first_line.u.request.method.s,
					ip_addr2a(&msg->rcv.src_ip), msg->rcv.src_port);
			return -2;
		}
		if(res != GTS_OK)
			return flow_gone(msg, &tok, "a binding no longer held");
		uri.s = v.uri;
		uri.len = (int)strlen(v.uri);
		if(!gts_flow_alive(&v.flow)) {
			if(v.policy != GTS_POL_RECONNECT)
				return flow_gone(msg, &v.flow, v.aor);
			if(rewrite_uri(msg, &uri) < 0)
				return -3;
			reset_dst_uri(msg);
			counter_inc(gts_cnt.reconnect);
			LM_INFO("flow %u of %s is gone: reconnect policy, sending to the"
					" phone's Contact %s\n",
					v.flow.conid, v.aor, v.uri);
			return 2;
		}
		if(rewrite_uri(msg, &uri) < 0)
			return -3;
		if(route_over_flow(msg, &v.flow, si, v.policy) < 0)
			return -3;
		gts_flowtx_track(msg, v.flow.conid, v.policy);
		counter_inc(gts_cnt.routed);
		return 1;
	}

	/* in-dialog: the token loose_route() found in our Record-Route */
	if(!gts_have_rr)
		return -1;
	rr_name = gts_cfg.token_param;
	if(gts_rrb.get_route_param(msg, &rr_name, &val) != 0 || val.len <= 0)
		return route_of_other_proxy(msg);
	r = check_token(msg, "Route", val.s, (size_t)val.len, &tok, &si);
	if(r < 0)
		return r;
	if(r == 1 && !top_route_names_socket(msg)) {
		/* our Route names us by an alias, not by a socket, with a token
		 * naming a socket we do not have: the Record-Route of another proxy
		 * of the pool under the pool's name (genesys_ha rr_pool_name), that
		 * proxy holding the phone's flow */
		return relay_in_dialog(msg, &tok, &val);
	}
	if(r == 1) {
		/* our Record-Route with a token naming a socket we do not have
		 * (another proxy's, or ours under another configuration) */
		counter_inc(gts_cnt.foreign);
		LM_WARN("flow token naming a socket this proxy does not have in our"
				" own Route of a %.*s from %s:%d: refused\n",
				msg->first_line.u.request.method.len,
				msg->first_line.u.request.method.s, ip_addr2a(&msg->rcv.src_ip),
				msg->rcv.src_port);
		return -2;
	}
	strip_relay_marker(msg);
	/* coming from the phone itself (its flow, or a newer flow from its
	 * address after a reconnect): upstream, normal routing */
	gts_addr_to_ip(&tok.src, &ip);
	if(msg->rcv.proto == tok.proto
			&& ((uint32_t)msg->rcv.proto_reserved1 == tok.conid
					|| ip_addr_cmp(&msg->rcv.src_ip, &ip)))
		return -1;
	if(!gts_flow_alive(&tok)) {
		if(!tok.reconnect)
			return flow_gone(msg, &tok, "a dialog");
		return reconnect_in_dialog(msg, &tok);
	}
	if(route_over_flow(msg, &tok, si, -1) < 0)
		return -3;
	gts_flowtx_track(msg, tok.conid,
			tok.reconnect ? GTS_POL_RECONNECT : GTS_POL_NO_INBOUND);
	counter_inc(gts_cnt.routed);
	return 1;
}

int gts_sip_rr(struct sip_msg *msg)
{
	char aor[GTS_AOR_MAX + 1];
	sip_uri_t *fu;
	int aor_len;
	gts_conn_t c;
	gts_flow_t f;
	uint8_t policy = GTS_POL_NO_INBOUND;

	if(!gts_sticky_proto(msg->rcv.proto))
		return -1;
	if(!gts_have_rr) {
		LM_ERR("sticky_rr() needs the rr module\n");
		return -3;
	}
	if(gts_conn_of_msg(msg, &c) < 0)
		return -3;
	/* only the flow of a registered phone (its From AOR has a binding on
	 * this connection): a SIP Server or gateway reached over TCP/TLS keeps
	 * normal routing (and reconnection) for its dialogs */
	fu = parse_from_uri(msg);
	if(fu == NULL
			|| (aor_len = gts_aor_key(aor, sizeof(aor), fu->user.s,
						(size_t)fu->user.len, fu->host.s, (size_t)fu->host.len))
					   <= 0
			|| gts_table_find_conn(
					   &gts_root->table, aor, (size_t)aor_len, c.conid, &policy)
					   != GTS_OK) {
		LM_DBG("%.*s from %s:%d: no binding of its From AOR on flow %u, no"
			   " flow token in Record-Route\n",
				msg->first_line.u.request.method.len,
				msg->first_line.u.request.method.s, ip_addr2a(&msg->rcv.src_ip),
				msg->rcv.src_port, c.conid);
		return -2;
	}
	memset(&f, 0, sizeof(f));
	f.conid = c.conid;
	f.proto = c.proto;
	f.src = c.src;
	f.local = c.local;
	return add_rr_token(msg, &f, policy) < 0 ? -3 : 1;
}
