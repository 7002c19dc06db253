/*
 * genesys_tlssticky: REGISTER rewrite, 2xx commit (routing toward phones:
 * gts_route.c)
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

void gts_addr_to_ip(const gts_addr_t *a, struct ip_addr *ip)
{
	memset(ip, 0, sizeof(*ip));
	ip->af = a->af == 6 ? AF_INET6 : AF_INET;
	ip->len = a->af == 6 ? 16 : 4;
	memcpy(ip->u.addr, a->ip, ip->len);
}

void gts_addr_str(const gts_addr_t *a, char *out, size_t outsz)
{
	struct ip_addr ip;
	gts_addr_to_ip(a, &ip);
	if(a->af == 6)
		snprintf(out, outsz, "[%s]:%u", ip_addr2a(&ip), a->port);
	else
		snprintf(out, outsz, "%s:%u", ip_addr2a(&ip), a->port);
}

int gts_sticky_proto(int proto)
{
	return proto == PROTO_TLS || (proto == PROTO_TCP && gts_cfg.tcp);
}

int gts_conn_of_msg(struct sip_msg *msg, gts_conn_t *c)
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
	gts_addr_to_ip(&f->src, &ip);
	if(c->state != S_CONN_BAD && c->rcv.src_port == f->src.port
			&& ip_addr_cmp(&c->rcv.src_ip, &ip))
		alive = 1;
	tcpconn_put(c);
	return alive;
}

struct socket_info *gts_local_socket(const gts_flow_t *f)
{
	struct ip_addr ip;
	gts_addr_to_ip(&f->local, &ip);
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
	if(!gts_sticky_proto(msg->rcv.proto)) {
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
	if(gts_conn_of_msg(msg, &conn) < 0)
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
			if(gts_local_socket(&items[n].tok) == NULL)
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
