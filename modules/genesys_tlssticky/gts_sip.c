/*
 * genesys_tlssticky: REGISTER rewrite, 2xx commit, routing toward phones
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/dprint.h"
#include "core/mem/mem.h"
#include "core/ut.h"
#include "core/trim.h"
#include "core/dset.h"
#include "core/data_lump.h"
#include "core/forward.h"
#include "core/ip_addr.h"
#include "core/tcp_conn.h"
#include "core/rand/fastrand.h"
#include "core/parser/msg_parser.h"
#include "core/parser/parse_uri.h"
#include "core/parser/parse_rr.h"
#include "core/socket_info.h"
#include "core/parser/parse_to.h"
#include "core/parser/parse_from.h"
#include "core/parser/parse_cseq.h"
#include "core/parser/parse_expires.h"
#include "core/parser/contact/parse_contact.h"

#include "gts_mod.h"
#include "gts_contact.h"
#include "gts_hash.h"

#define GTS_CONTACT_BUF (GTS_URI_MAX + GTS_TOKEN_MAX + 1024)
#define GTS_REPLY_MAX 256 /* Contacts of one 2xx looked at */

static int ip2gts(const struct ip_addr *ip, unsigned short port, gts_addr_t *a)
{
	memset(a, 0, sizeof(*a));
	if(ip->af == AF_INET) {
		a->af = 4;
		memcpy(a->ip, ip->u.addr, 4);
	} else if(ip->af == AF_INET6) {
		a->af = 6;
		memcpy(a->ip, ip->u.addr, 16);
	} else {
		return -1;
	}
	a->port = port;
	return 0;
}

static void gts2ip(const gts_addr_t *a, struct ip_addr *ip)
{
	memset(ip, 0, sizeof(*ip));
	ip->af = a->af == 6 ? AF_INET6 : AF_INET;
	ip->len = a->af == 6 ? 16 : 4;
	memcpy(ip->u.addr, a->ip, ip->len);
}

void gts_addr_str(const gts_addr_t *a, char *out, size_t outsz)
{
	struct ip_addr ip;
	gts2ip(a, &ip);
	if(a->af == 6)
		snprintf(out, outsz, "[%s]:%u", ip_addr2a(&ip), a->port);
	else
		snprintf(out, outsz, "%s:%u", ip_addr2a(&ip), a->port);
}

static int sticky_proto(int proto)
{
	return proto == PROTO_TLS || (proto == PROTO_TCP && gts_cfg.tcp);
}

static int conn_of_msg(struct sip_msg *msg, gts_conn_t *c)
{
	memset(c, 0, sizeof(*c));
	c->conid = (uint32_t)msg->rcv.proto_reserved1;
	c->proto = (uint8_t)msg->rcv.proto;
	if(ip2gts(&msg->rcv.src_ip, msg->rcv.src_port, &c->src) < 0
			|| ip2gts(&msg->rcv.dst_ip, msg->rcv.dst_port, &c->local) < 0)
		return -1;
	return 0;
}

/* every token names where the other proxies of the pool relay requests
 * for the flow (relay_address) */
int gts_mint(const gts_flow_t *f, char *out, size_t outsz)
{
	gts_flow_t t = *f;
	t.relay = gts_cfg.relay_addr;
	t.relay_proto = gts_cfg.relay_proto;
	return gts_token_encode(&t, (const unsigned char *)gts_cfg.secret.s,
			(size_t)gts_cfg.secret.len, out, outsz);
}

/* 1 when the connection of f is open and still from the phone's address */
int gts_flow_alive(const gts_flow_t *f)
{
	struct tcp_connection *c;
	struct ip_addr ip;
	int alive = 0;

	c = tcpconn_get((int)f->conid, 0, 0, 0, 0);
	if(c == NULL)
		return 0;
	gts2ip(&f->src, &ip);
	if(c->state != S_CONN_BAD && c->rcv.src_port == f->src.port
			&& ip_addr_cmp(&c->rcv.src_ip, &ip))
		alive = 1;
	tcpconn_put(c);
	return alive;
}

static struct socket_info *local_socket(const gts_flow_t *f)
{
	struct ip_addr ip;
	gts2ip(&f->local, &ip);
	return find_si(&ip, f->local.port, f->proto);
}

/* AOR key of the To URI */
static int aor_of(struct sip_msg *msg, char *out, size_t outsz)
{
	sip_uri_t *u = parse_to_uri(msg);
	if(u == NULL)
		return -1;
	return gts_aor_key(out, outsz, u->user.s, (size_t)u->user.len, u->host.s,
			(size_t)u->host.len);
}

/* header params of a contact element: after the URI (and its '>') */
static void contact_params(contact_t *c, str *p)
{
	char *s = c->uri.s + c->uri.len;
	char *end = c->name.s + c->len;
	if(s < end && *s == '>')
		s++;
	p->s = s;
	p->len = (int)(end - s);
	if(p->len < 0)
		p->len = 0;
}

static void display_of(contact_t *c, str *d)
{
	*d = c->name;
	if(d->len > 0 && d->s + d->len > c->uri.s)
		d->len = 0; /* no display name: name.s is where the URI starts */
	trim(d);
}

static int replace_contact(struct sip_msg *msg, contact_t *c, char *buf,
		int len)
{
	struct lump *l;
	char *s;

	s = pkg_malloc(len);
	if(s == NULL) {
		PKG_MEM_ERROR;
		return -1;
	}
	memcpy(s, buf, len);
	l = del_lump(msg, (int)(c->name.s - msg->buf), c->len, HDR_CONTACT_T);
	if(l == NULL || insert_new_lump_after(l, s, len, HDR_CONTACT_T) == NULL) {
		LM_ERR("cannot rewrite a Contact (lump)\n");
		pkg_free(s);
		return -1;
	}
	return 0;
}

static int replace_expires_hdr(struct sip_msg *msg, long val)
{
	struct lump *l;
	char *s;
	int len;
	exp_body_t *e = (exp_body_t *)msg->expires->parsed;

	s = pkg_malloc(24);
	if(s == NULL) {
		PKG_MEM_ERROR;
		return -1;
	}
	len = snprintf(s, 24, "%ld", val);
	l = del_lump(msg, (int)(e->text.s - msg->buf), e->text.len, HDR_EXPIRES_T);
	if(l == NULL || insert_new_lump_after(l, s, len, HDR_EXPIRES_T) == NULL) {
		LM_ERR("cannot rewrite the Expires header (lump)\n");
		pkg_free(s);
		return -1;
	}
	return 0;
}

/* Expires header value, -1 when absent; -2 when invalid */
static long expires_hdr(struct sip_msg *msg)
{
	exp_body_t *e;
	if(msg->expires == NULL)
		return -1;
	if(msg->expires->parsed == NULL && parse_expires(msg->expires) < 0)
		return -2;
	e = (exp_body_t *)msg->expires->parsed;
	if(!e->valid)
		return -2;
	return (long)e->val;
}

static long contact_expires(contact_t *c, long hdr)
{
	unsigned int v;
	str b;
	if(c->expires == NULL)
		return hdr;
	b = c->expires->body;
	trim(&b);
	if(b.len <= 0 || str2int(&b, &v) < 0)
		return -2;
	return (long)v;
}

/* registrar-default-timeout on one Contact left in place (not rewritten
 * by us; any transport, REGISTER or its 2xx): an expires parameter larger
 * than the cap is lowered to it; a Contact without one gets
 * ";expires=<cap>" when there is no Expires header either (hexp < 0), so
 * neither the registrar nor the phone falls back to a longer default.
 * An Expires header is capped by the caller. */
static int cap_contact(struct sip_msg *msg, contact_t *c, long hexp, int cap)
{
	struct lump *l;
	char *s, *end;
	long v;
	int len;

	if(cap <= 0)
		return 0;
	if(c->expires != NULL) {
		v = contact_expires(c, -1);
		if(v >= 0 && v <= cap)
			return 0;
		if(v == -2 || c->expires->body.len <= 0)
			return 0; /* not a number: the registrar decides */
		s = pkg_malloc(16);
		if(s == NULL) {
			PKG_MEM_ERROR;
			return -1;
		}
		len = snprintf(s, 16, "%d", cap);
		l = del_lump(msg, (int)(c->expires->body.s - msg->buf),
				c->expires->body.len, HDR_CONTACT_T);
	} else {
		if(hexp >= 0)
			return 0; /* the (capped) Expires header applies */
		s = pkg_malloc(24);
		if(s == NULL) {
			PKG_MEM_ERROR;
			return -1;
		}
		len = snprintf(s, 24, ";expires=%d", cap);
		end = c->name.s + c->len;
		while(end > c->uri.s
				&& (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'
						|| end[-1] == '\n'))
			end--;
		l = anchor_lump(msg, (int)(end - msg->buf), 0, HDR_CONTACT_T);
	}
	if(l == NULL || insert_new_lump_after(l, s, len, HDR_CONTACT_T) == NULL) {
		LM_ERR("cannot cap the expires of a Contact (lump)\n");
		pkg_free(s);
		return -1;
	}
	return 0;
}

/* registrar-default-timeout on a REGISTER whose Contacts are not rewritten
 * (a transport that is not sticky): every Contact and the Expires header.
 * A REGISTER that does not parse is left to the registrar. */
static void cap_register(struct sip_msg *msg)
{
	struct hdr_field *h;
	contact_t *c;
	long hexp;
	int cap = gts_cfg.registrar_default_timeout;

	if(cap <= 0)
		return;
	if(parse_headers(msg, HDR_EOH_F, 0) < 0)
		return;
	hexp = expires_hdr(msg);
	if(hexp == -2)
		return;
	for(h = msg->contact; h; h = next_sibling_hdr(h))
		if(parse_contact(h) < 0)
			return;
	for(h = msg->contact; h; h = next_sibling_hdr(h)) {
		if(((contact_body_t *)h->parsed)->star)
			continue;
		for(c = ((contact_body_t *)h->parsed)->contacts; c; c = c->next)
			if(cap_contact(msg, c, hexp, cap) < 0)
				return;
	}
	if(hexp > cap)
		replace_expires_hdr(msg, cap);
}

int gts_rewritten_contact(const gts_view_t *v, char *out, size_t outsz)
{
	char tok[GTS_TOKEN_MAX];
	struct sip_uri pu;

	if(gts_mint(&v->flow, tok, sizeof(tok)) < 0)
		return -1;
	if(parse_uri((char *)v->uri, (int)strlen(v->uri), &pu) < 0)
		memset(&pu, 0, sizeof(pu));
	return gts_contact_build(out, outsz, NULL, 0, pu.user.s,
			(size_t)pu.user.len, gts_cfg.contact_hostport.s,
			(size_t)gts_cfg.contact_hostport.len, gts_cfg.contact_transport,
			gts_cfg.token_param.s, (size_t)gts_cfg.token_param.len, tok, "",
			0, -1);
}

/* the REGISTER transaction a request or reply belongs to */
static uint32_t tx_hash(struct sip_msg *msg)
{
	struct cseq_body *cs;
	uint32_t h;

	if(msg->callid == NULL || msg->cseq == NULL)
		return 0;
	cs = get_cseq(msg);
	h = gts_hash(GTS_HASH_INIT, msg->callid->body.s, (size_t)msg->callid->body.len);
	h = gts_hash(h, " ", 1);
	h = gts_hash(h, cs->number.s, (size_t)cs->number.len);
	return h ? h : 1;
}

/* ---- REGISTER ---- */

int gts_sip_register(struct sip_msg *msg, int policy)
{
	char aor[GTS_AOR_MAX + 1];
	char tok[GTS_TOKEN_MAX];
	char params[GTS_CONTACT_BUF];
	char out[GTS_CONTACT_BUF];
	gts_conn_t conn;
	gts_flow_t flow;
	gts_res_t res;
	struct hdr_field *h;
	contact_body_t *cb;
	contact_t *c;
	struct sip_uri pu;
	str disp, hp;
	long hexp, req, eff;
	int aor_len, n = 0, rewritten = 0, len, plen;
	int64_t now = (int64_t)time(NULL);

	if(msg->first_line.type != SIP_REQUEST
			|| msg->first_line.u.request.method_value != METHOD_REGISTER) {
		LM_ERR("sticky_register() called for a request that is not a"
			   " REGISTER\n");
		return -2;
	}
	if(!sticky_proto(msg->rcv.proto)) {
		LM_DBG("REGISTER from %s:%d over %s: not a sticky transport, Contacts"
			   " not rewritten\n",
				ip_addr2a(&msg->rcv.src_ip), msg->rcv.src_port,
				get_proto_name(msg->rcv.proto));
		/* registrar-default-timeout applies whatever the transport */
		cap_register(msg);
		return -1;
	}
	if(policy < 0)
		policy = msg->rcv.proto == PROTO_TLS ? gts_cfg.tls_policy
											 : gts_cfg.tcp_policy;
	if(parse_headers(msg, HDR_EOH_F, 0) < 0) {
		LM_WARN("REGISTER from %s:%d does not parse\n",
				ip_addr2a(&msg->rcv.src_ip), msg->rcv.src_port);
		return -2;
	}
	aor_len = aor_of(msg, aor, sizeof(aor));
	if(aor_len <= 0) {
		LM_WARN("REGISTER from %s:%d: To URI missing, bad or longer than %d"
				" bytes\n",
				ip_addr2a(&msg->rcv.src_ip), msg->rcv.src_port, GTS_AOR_MAX);
		return -2;
	}
	if(conn_of_msg(msg, &conn) < 0)
		return -3;
	hexp = expires_hdr(msg);
	if(hexp == -2) {
		LM_WARN("REGISTER for %s: bad Expires header\n", aor);
		return -2;
	}

	/* first pass: parse and check everything, change nothing */
	for(h = msg->contact; h; h = next_sibling_hdr(h)) {
		if(parse_contact(h) < 0) {
			LM_WARN("REGISTER for %s from %s:%d: Contact does not parse\n",
					aor, ip_addr2a(&msg->rcv.src_ip), msg->rcv.src_port);
			return -2;
		}
		cb = (contact_body_t *)h->parsed;
		if(cb->star) {
			LM_DBG("REGISTER for %s: Contact: * forwarded unchanged\n", aor);
			gts_table_mark_aor_tx(&gts_root->table, aor, (size_t)aor_len,
					tx_hash(msg));
			return 2;
		}
		for(c = cb->contacts; c; c = c->next) {
			if(++n > gts_cfg.max_contacts) {
				LM_WARN("REGISTER for %s from %s:%d: more than %d Contacts\n",
						aor, ip_addr2a(&msg->rcv.src_ip), msg->rcv.src_port,
						gts_cfg.max_contacts);
				return -2;
			}
			if(c->uri.len > GTS_URI_MAX || c->len > GTS_URI_MAX + 512
					|| parse_uri(c->uri.s, c->uri.len, &pu) < 0
					|| contact_expires(c, hexp) == -2) {
				LM_WARN("REGISTER for %s from %s:%d: Contact <%.*s> is bad or"
						" longer than %d bytes\n",
						aor, ip_addr2a(&msg->rcv.src_ip), msg->rcv.src_port,
						c->uri.len > 80 ? 80 : c->uri.len, c->uri.s,
						GTS_URI_MAX);
				return -2;
			}
		}
	}
	if(n == 0)
		return 2;

	for(h = msg->contact; h; h = next_sibling_hdr(h)) {
		cb = (contact_body_t *)h->parsed;
		for(c = cb->contacts; c; c = c->next) {
			req = contact_expires(c, hexp);
			eff = gts_expires_cap(req, gts_cfg.registrar_default_timeout);
			res = gts_table_prepare(&gts_root->table, aor, (size_t)aor_len,
					c->uri.s, (size_t)c->uri.len, &conn, (uint8_t)policy,
					eff == 0, now, gts_cfg.pending_ttl,
					fastrand() & 0x3fffffff, &flow);
			if(res == GTS_NOTFOUND) {
				LM_DBG("de-registration of unknown %.*s for %s: unchanged\n",
						c->uri.len, c->uri.s, aor);
				continue;
			}
			if(res == GTS_FULL) {
				LM_WARN("binding table full (max_bindings=%d): REGISTER for"
						" %s refused\n",
						gts_cfg.max_bindings, aor);
				return -3;
			}
			if(res < 0) {
				LM_ERR("cannot store the binding of %.*s for %s (%d)\n",
						c->uri.len, c->uri.s, aor, res);
				return -3;
			}
			gts_table_set_tx(&gts_root->table, &flow, tx_hash(msg), eff);
			if(gts_mint(&flow, tok, sizeof(tok)) < 0) {
				LM_ERR("cannot sign a flow token\n");
				return -3;
			}
			parse_uri(c->uri.s, c->uri.len, &pu);
			contact_params(c, &hp);
			plen = gts_param_strip(hp.s, (size_t)hp.len, "expires", 7, params,
					sizeof(params));
			display_of(c, &disp);
			len = plen < 0 ? -1
						   : gts_contact_build(out, sizeof(out), disp.s,
									 (size_t)disp.len, pu.user.s,
									 (size_t)pu.user.len,
									 gts_cfg.contact_hostport.s,
									 (size_t)gts_cfg.contact_hostport.len,
									 gts_cfg.contact_transport,
									 gts_cfg.token_param.s,
									 (size_t)gts_cfg.token_param.len, tok,
									 params, (size_t)plen, eff);
			if(len < 0 || replace_contact(msg, c, out, len) < 0)
				return -3;
			rewritten++;
			LM_DBG("REGISTER for %s: Contact %.*s -> %.*s (conid %u, gen %u)\n",
					aor, c->uri.len, c->uri.s, len, out, flow.conid, flow.gen);
		}
	}
	if(hexp > 0 && gts_cfg.registrar_default_timeout > 0
			&& hexp > gts_cfg.registrar_default_timeout
			&& replace_expires_hdr(msg, gts_cfg.registrar_default_timeout)
					   < 0)
		return -3;
	if(rewritten == 0)
		return 2;
	counter_inc(gts_cnt.registers);
	return 1;
}

/* ---- the registrar's 2xx ---- */

typedef struct reply_contact
{
	contact_t *c;
	long expires; /* capped, relative */
} reply_contact_t;

static void log_removed(gts_binding_t *list)
{
	gts_binding_t *b;
	char src[64];
	for(b = list; b; b = b->next) {
		gts_addr_str(&b->flow.src, src, sizeof(src));
		LM_NOTICE("sticky binding removed (%s): AOR %s, phone Contact %s,"
				  " %s flow %u from %s\n",
				gts_why_str(b->why), b->data, b->data + b->aor_len + 1,
				get_proto_name(b->flow.proto), b->flow.conid, src);
		counter_inc(gts_cnt.removed);
	}
}

int gts_sip_reply(struct sip_msg *msg)
{
	char aor[GTS_AOR_MAX + 1];
	char params[GTS_CONTACT_BUF];
	char out[GTS_CONTACT_BUF];
	gts_commit_item_t *items = NULL;
	reply_contact_t *rc = NULL;
	gts_binding_t *removed = NULL;
	struct hdr_field *h;
	contact_body_t *cb;
	contact_t *c;
	struct sip_uri pu;
	const char *tv;
	size_t tl;
	str disp, hp;
	long hexp, e;
	int aor_len, n = 0, max = 0, i, found, len, plen, ret = 2;
	int64_t now = (int64_t)time(NULL);

	if(msg->first_line.type != SIP_REPLY)
		return -1;
	if(msg->first_line.u.reply.statuscode < 200
			|| msg->first_line.u.reply.statuscode > 299)
		return -1;
	if(parse_headers(msg, HDR_EOH_F, 0) < 0 || msg->cseq == NULL
			|| get_cseq(msg)->method_id != METHOD_REGISTER)
		return -1;
	aor_len = aor_of(msg, aor, sizeof(aor));
	if(aor_len <= 0) {
		LM_WARN("2xx to REGISTER without a usable To URI: unchanged\n");
		return -2;
	}
	hexp = expires_hdr(msg);
	if(hexp == -2)
		hexp = -1;

	if(msg->contact == NULL) {
		/* a registrar that does not list the bindings in its 2xx: what
		 * this REGISTER asked for is granted (capped) */
		n = gts_table_commit_tx(&gts_root->table, aor, (size_t)aor_len,
				tx_hash(msg), now, gts_cfg.default_expires,
				gts_cfg.registrar_default_timeout, &removed);
		if(n > 0)
			LM_DBG("2xx for %s lists no Contact: %d binding(s) of this"
				   " REGISTER committed or removed as requested\n",
					aor, n);
		log_removed(removed);
		gts_table_free_list(&gts_root->table, removed);
		if(hexp > 0 && gts_cfg.registrar_default_timeout > 0
				&& hexp > gts_cfg.registrar_default_timeout)
			replace_expires_hdr(msg, gts_cfg.registrar_default_timeout);
		return n > 0 ? 1 : 2;
	}
	for(h = msg->contact; h; h = next_sibling_hdr(h)) {
		if(parse_contact(h) < 0) {
			LM_WARN("2xx to REGISTER for %s: Contact does not parse:"
					" unchanged\n",
					aor);
			return -2;
		}
		for(c = ((contact_body_t *)h->parsed)->contacts; c; c = c->next)
			max++;
	}
	if(max > GTS_REPLY_MAX)
		max = GTS_REPLY_MAX; /* more of ours are left unchanged */
	if(max > 0) {
		items = pkg_malloc(max * sizeof(*items));
		rc = pkg_malloc(max * sizeof(*rc));
		if(items == NULL || rc == NULL) {
			PKG_MEM_ERROR;
			ret = -3;
			goto done;
		}
	}
	for(h = msg->contact; h; h = next_sibling_hdr(h)) {
		cb = (contact_body_t *)h->parsed;
		for(c = cb->contacts; c && n < max; c = c->next) {
			if(parse_uri(c->uri.s, c->uri.len, &pu) < 0)
				continue;
			if(!gts_param_find(pu.params.s, (size_t)pu.params.len,
					   gts_cfg.token_param.s, (size_t)gts_cfg.token_param.len,
					   &tv, &tl))
				continue; /* not one of ours: unchanged */
			if(gts_token_decode(tv, tl, (unsigned char *)gts_cfg.secret.s,
					   (size_t)gts_cfg.secret.len, &items[n].tok)
					!= GTS_TOK_OK) {
				LM_DBG("2xx for %s lists a Contact with a token we cannot"
					   " verify: unchanged\n",
						aor);
				continue;
			}
			if(local_socket(&items[n].tok) == NULL)
				continue; /* minted by another proxy of the pool */
			e = contact_expires(c, hexp);
			if(e < 0)
				e = gts_cfg.default_expires;
			e = gts_expires_cap(e, gts_cfg.registrar_default_timeout);
			/* listed as expired: removed, but still restored */
			items[n].drop = (e == 0);
			items[n].expires = now + e;
			rc[n].c = c;
			rc[n].expires = e;
			n++;
		}
	}
	found = gts_table_commit(
			&gts_root->table, aor, (size_t)aor_len, items, n, &removed);
	for(i = 0; i < n; i++) {
		if(!items[i].found) {
			LM_DBG("2xx for %s lists a Contact of ours without binding:"
				   " unchanged\n",
					aor);
			continue;
		}
		if(!items[i].drop)
			counter_inc(gts_cnt.committed);
		c = rc[i].c;
		contact_params(c, &hp);
		plen = gts_param_strip(
				hp.s, (size_t)hp.len, "expires", 7, params, sizeof(params));
		display_of(c, &disp);
		len = plen < 0 ? -1
					   : gts_contact_restore(out, sizeof(out), disp.s,
								 (size_t)disp.len, items[i].uri,
								 strlen(items[i].uri), params, (size_t)plen,
								 rc[i].expires);
		if(len < 0 || replace_contact(msg, c, out, len) < 0) {
			ret = -3;
			goto done;
		}
	}
	/* registrar-default-timeout on every other Contact (another device,
	 * another transport, another proxy's token): the phone is never told
	 * more than the cap; rc[] lists ours in the order walked here */
	for(h = msg->contact, i = 0; h; h = next_sibling_hdr(h)) {
		for(c = ((contact_body_t *)h->parsed)->contacts; c; c = c->next) {
			if(i < n && rc[i].c == c && items[i++].found)
				continue; /* restored above, capped */
			if(cap_contact(msg, c, hexp, gts_cfg.registrar_default_timeout)
					< 0) {
				ret = -3;
				goto done;
			}
		}
	}
	if(hexp > 0 && gts_cfg.registrar_default_timeout > 0
			&& hexp > gts_cfg.registrar_default_timeout)
		replace_expires_hdr(msg, gts_cfg.registrar_default_timeout);
	ret = found > 0 ? 1 : 2;
done:
	log_removed(removed);
	gts_table_free_list(&gts_root->table, removed);
	if(items)
		pkg_free(items);
	if(rc)
		pkg_free(rc);
	return ret;
}

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
	*si = local_socket(tok);
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
	gts2ip(&tok->relay, &ip);
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
			msg->first_line.u.request.method.s, aor,
			get_proto_name(f->proto), f->conid, src);
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
			msg->first_line.u.request.method.s, src,
			get_proto_name(f->proto), f->conid, to->len, to->s);
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
			|| local_socket(&tok) != NULL)
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
				msg->first_line.u.request.method.s,
				ip_addr2a(&msg->rcv.src_ip), msg->rcv.src_port);
		return -2;
	}
	strip_relay_marker(msg);
	/* coming from the phone itself (its flow, or a newer flow from its
	 * address after a reconnect): upstream, normal routing */
	gts2ip(&tok.src, &ip);
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

	if(!sticky_proto(msg->rcv.proto))
		return -1;
	if(!gts_have_rr) {
		LM_ERR("sticky_rr() needs the rr module\n");
		return -3;
	}
	if(conn_of_msg(msg, &c) < 0)
		return -3;
	/* only the flow of a registered phone (its From AOR has a binding on
	 * this connection): a SIP Server or gateway reached over TCP/TLS keeps
	 * normal routing (and reconnection) for its dialogs */
	fu = parse_from_uri(msg);
	if(fu == NULL
			|| (aor_len = gts_aor_key(aor, sizeof(aor), fu->user.s,
						(size_t)fu->user.len, fu->host.s,
						(size_t)fu->host.len))
					   <= 0
			|| gts_table_find_conn(&gts_root->table, aor, (size_t)aor_len,
					   c.conid, &policy)
					   != GTS_OK) {
		LM_DBG("%.*s from %s:%d: no binding of its From AOR on flow %u, no"
			   " flow token in Record-Route\n",
				msg->first_line.u.request.method.len,
				msg->first_line.u.request.method.s,
				ip_addr2a(&msg->rcv.src_ip), msg->rcv.src_port, c.conid);
		return -2;
	}
	memset(&f, 0, sizeof(f));
	f.conid = c.conid;
	f.proto = c.proto;
	f.src = c.src;
	f.local = c.local;
	return add_rr_token(msg, &f, policy) < 0 ? -3 : 1;
}
