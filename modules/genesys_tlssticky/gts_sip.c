/*
 * genesys_tlssticky: REGISTER rewrite and 2xx commit: the glue that parses
 * the message, keeps the binding table and applies the Contact rewrite
 * plan (gts_plan.c) as lumps.  Routing toward phones: gts_route.c; flows
 * in Kamailio terms: gts_conn.c.
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
#include "core/data_lump.h"
#include "core/ip_addr.h"
#include "core/rand/fastrand.h"
#include "core/parser/msg_parser.h"
#include "core/parser/parse_uri.h"
#include "core/parser/parse_to.h"
#include "core/parser/parse_cseq.h"
#include "core/parser/parse_expires.h"
#include "core/parser/contact/parse_contact.h"

#include "gts_mod.h"
#include "gts_contact.h"
#include "gts_hash.h"
#include "gts_plan.h"

#define GTS_REPLY_MAX 256 /* Contacts of one 2xx looked at */

/* AOR key of the To URI */
static int aor_of(struct sip_msg *msg, char *out, size_t outsz)
{
	sip_uri_t *u = parse_to_uri(msg);
	if(u == NULL)
		return -1;
	return gts_aor_key(out, outsz, u->user.s, (size_t)u->user.len, u->host.s,
			(size_t)u->host.len);
}

/* ---- the Contact rewrite plan (gts_plan.c) applied as lumps ---- */

typedef struct gts_apply_ctx
{
	struct sip_msg *msg;
	const gts_pcontact_t *pcs;
	const char *aor;		 /* REGISTER: for the debug log */
	const gts_flow_t *flows; /* REGISTER: the flows (debug log) */
	int hdr_soft;			 /* a failed Expires edit does not stop the plan */
} gts_apply_ctx_t;

static int apply_edit(const gts_edit_t *e, void *arg)
{
	gts_apply_ctx_t *a = arg;
	const gts_pcontact_t *pc = e->idx >= 0 ? &a->pcs[e->idx] : NULL;
	int type = e->hdr == GTS_EDIT_EXPIRES ? HDR_EXPIRES_T : HDR_CONTACT_T;
	struct lump *l;
	char *s;

	s = pkg_malloc(e->tlen);
	if(s == NULL) {
		PKG_MEM_ERROR;
		return e->hdr == GTS_EDIT_EXPIRES && a->hdr_soft ? 0 : -1;
	}
	memcpy(s, e->text, e->tlen);
	l = e->len > 0 ? del_lump(a->msg, (int)e->off, (int)e->len, type)
				   : anchor_lump(a->msg, (int)e->off, 0, type);
	if(l == NULL || insert_new_lump_after(l, s, (int)e->tlen, type) == NULL) {
		if(pc == NULL)
			LM_ERR("cannot rewrite the Expires header (lump)\n");
		else if(e->off == pc->off && e->len == pc->len)
			LM_ERR("cannot rewrite a Contact (lump)\n");
		else
			LM_ERR("cannot cap the expires of a Contact (lump)\n");
		pkg_free(s);
		return e->hdr == GTS_EDIT_EXPIRES && a->hdr_soft ? 0 : -1;
	}
	if(a->flows && pc)
		LM_DBG("REGISTER for %s: Contact %.*s -> %.*s (conid %u, gen %u)\n",
				a->aor, (int)pc->uri_len, pc->uri, (int)e->tlen, e->text,
				a->flows[e->idx].conid, a->flows[e->idx].gen);
	return 0;
}

static void plan_cfg(gts_plan_cfg_t *p)
{
	p->hostport = gts_cfg.contact_hostport.s;
	p->hostport_len = (size_t)gts_cfg.contact_hostport.len;
	p->transport = gts_cfg.contact_transport;
	p->tparam = gts_cfg.token_param.s;
	p->tparam_len = (size_t)gts_cfg.token_param.len;
	p->cap = gts_cfg.registrar_default_timeout;
	p->default_expires = gts_cfg.default_expires;
}

/* the plan's view of a parsed Contact */
static void pcontact_of(struct sip_msg *msg, contact_t *c, gts_pcontact_t *pc)
{
	struct sip_uri pu;

	memset(pc, 0, sizeof(*pc));
	pc->s = c->name.s;
	pc->len = (size_t)c->len;
	pc->off = (size_t)(c->name.s - msg->buf);
	pc->name_len = c->name.len > 0 ? (size_t)c->name.len : 0;
	pc->uri = c->uri.s;
	pc->uri_len = (size_t)c->uri.len;
	if(parse_uri(c->uri.s, c->uri.len, &pu) == 0 && pu.user.len > 0) {
		pc->user = pu.user.s;
		pc->user_len = (size_t)pu.user.len;
	}
	if(c->expires != NULL) {
		pc->has_exp = 1;
		pc->exp = c->expires->body.s;
		pc->exp_len =
				c->expires->body.len > 0 ? (size_t)c->expires->body.len : 0;
	}
}

/* the expires Contact c asks for: its parameter, else hdr; -2 when the
 * parameter is not a number */
static long contact_expires(struct sip_msg *msg, contact_t *c, long hdr)
{
	gts_pcontact_t pc;

	pcontact_of(msg, c, &pc);
	return gts_plan_contact_expires(&pc, hdr);
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

static void phexp_of(struct sip_msg *msg, long val, gts_phexp_t *h)
{
	exp_body_t *e;

	memset(h, 0, sizeof(*h));
	h->val = val;
	if(val >= 0 && msg->expires && msg->expires->parsed) {
		e = (exp_body_t *)msg->expires->parsed;
		h->off = (size_t)(e->text.s - msg->buf);
		h->len = (size_t)e->text.len;
	}
}

/* registrar-default-timeout on a REGISTER whose Contacts are not rewritten
 * (a transport that is not sticky): every Contact and the Expires header.
 * A REGISTER that does not parse is left to the registrar. */
static void cap_register(struct sip_msg *msg)
{
	struct hdr_field *h;
	contact_t *c;
	gts_pcontact_t *pcs = NULL;
	gts_plan_cfg_t pcfg;
	gts_phexp_t hx;
	gts_apply_ctx_t ax;
	long hexp;
	int n = 0;

	if(gts_cfg.registrar_default_timeout <= 0)
		return;
	if(parse_headers(msg, HDR_EOH_F, 0) < 0)
		return;
	hexp = expires_hdr(msg);
	if(hexp == -2)
		return;
	for(h = msg->contact; h; h = next_sibling_hdr(h)) {
		if(parse_contact(h) < 0)
			return;
		if(((contact_body_t *)h->parsed)->star)
			continue;
		for(c = ((contact_body_t *)h->parsed)->contacts; c; c = c->next)
			n++;
	}
	if(n > 0 && (pcs = pkg_malloc(n * sizeof(*pcs))) == NULL) {
		PKG_MEM_ERROR;
		return;
	}
	n = 0;
	for(h = msg->contact; h; h = next_sibling_hdr(h)) {
		if(((contact_body_t *)h->parsed)->star)
			continue;
		for(c = ((contact_body_t *)h->parsed)->contacts; c; c = c->next)
			pcontact_of(msg, c, &pcs[n++]);
	}
	plan_cfg(&pcfg);
	phexp_of(msg, hexp, &hx);
	memset(&ax, 0, sizeof(ax));
	ax.msg = msg;
	ax.pcs = pcs;
	gts_plan_reply(pcs, n, NULL, NULL, &hx, &pcfg, apply_edit, &ax);
	if(pcs)
		pkg_free(pcs);
}

/* the REGISTER transaction a request or reply belongs to */
static uint32_t tx_hash(struct sip_msg *msg)
{
	struct cseq_body *cs;
	uint32_t h;

	if(msg->callid == NULL || msg->cseq == NULL)
		return 0;
	cs = get_cseq(msg);
	h = gts_hash(
			GTS_HASH_INIT, msg->callid->body.s, (size_t)msg->callid->body.len);
	h = gts_hash(h, " ", 1);
	h = gts_hash(h, cs->number.s, (size_t)cs->number.len);
	return h ? h : 1;
}

/* ---- REGISTER ---- */

/* first pass over the Contacts: parse and check everything, change
 * nothing; the number of Contacts, 0 for "Contact: *" (*star set), or -2 */
static int check_contacts(
		struct sip_msg *msg, const char *aor, long hexp, int *star)
{
	struct hdr_field *h;
	contact_body_t *cb;
	contact_t *c;
	struct sip_uri pu;
	int n = 0;

	*star = 0;
	for(h = msg->contact; h; h = next_sibling_hdr(h)) {
		if(parse_contact(h) < 0) {
			LM_WARN("REGISTER for %s from %s:%d: Contact does not parse\n", aor,
					ip_addr2a(&msg->rcv.src_ip), msg->rcv.src_port);
			return -2;
		}
		cb = (contact_body_t *)h->parsed;
		if(cb->star) {
			*star = 1;
			return 0;
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
					|| contact_expires(msg, c, hexp) == -2) {
				LM_WARN("REGISTER for %s from %s:%d: Contact <%.*s> is bad or"
						" longer than %d bytes\n",
						aor, ip_addr2a(&msg->rcv.src_ip), msg->rcv.src_port,
						c->uri.len > 80 ? 80 : c->uri.len, c->uri.s,
						GTS_URI_MAX);
				return -2;
			}
		}
	}
	return n;
}

int gts_sip_register(struct sip_msg *msg, int policy)
{
	char aor[GTS_AOR_MAX + 1];
	gts_conn_t conn;
	gts_res_t res;
	struct hdr_field *h;
	contact_t *c;
	gts_pcontact_t *pcs = NULL;
	gts_flow_t *flows = NULL;
	long *eff = NULL;
	const char **tokp = NULL;
	char *toks = NULL;
	gts_plan_cfg_t pcfg;
	gts_phexp_t hx;
	gts_apply_ctx_t ax;
	long hexp;
	int aor_len, n, i = 0, star, rewritten, ret;
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

	n = check_contacts(msg, aor, hexp, &star);
	if(n < 0)
		return n;
	if(star) {
		LM_DBG("REGISTER for %s: Contact: * forwarded unchanged\n", aor);
		gts_table_mark_aor_tx(
				&gts_root->table, aor, (size_t)aor_len, tx_hash(msg));
		return 2;
	}
	if(n == 0)
		return 2;

	pcs = pkg_malloc(n * sizeof(*pcs));
	flows = pkg_malloc(n * sizeof(*flows));
	eff = pkg_malloc(n * sizeof(*eff));
	tokp = pkg_malloc(n * sizeof(*tokp));
	toks = pkg_malloc(n * GTS_TOKEN_MAX);
	if(pcs == NULL || flows == NULL || eff == NULL || tokp == NULL
			|| toks == NULL) {
		PKG_MEM_ERROR;
		ret = -3;
		goto done;
	}
	plan_cfg(&pcfg);
	/* the bindings and their tokens */
	for(h = msg->contact; h; h = next_sibling_hdr(h)) {
		for(c = ((contact_body_t *)h->parsed)->contacts; c; c = c->next, i++) {
			pcontact_of(msg, c, &pcs[i]);
			tokp[i] = NULL;
			eff[i] = gts_plan_register_expires(&pcs[i], hexp, &pcfg);
			res = gts_table_prepare(&gts_root->table, aor, (size_t)aor_len,
					c->uri.s, (size_t)c->uri.len, &conn, (uint8_t)policy,
					eff[i] == 0, now, gts_cfg.pending_ttl,
					fastrand() & 0x3fffffff, &flows[i]);
			if(res == GTS_NOTFOUND) {
				LM_DBG("de-registration of unknown %.*s for %s: unchanged\n",
						c->uri.len, c->uri.s, aor);
				continue;
			}
			if(res == GTS_FULL) {
				LM_WARN("binding table full (max_bindings=%d): REGISTER for"
						" %s refused\n",
						gts_cfg.max_bindings, aor);
				ret = -3;
				goto done;
			}
			if(res < 0) {
				LM_ERR("cannot store the binding of %.*s for %s (%d)\n",
						c->uri.len, c->uri.s, aor, res);
				ret = -3;
				goto done;
			}
			gts_table_set_tx(&gts_root->table, &flows[i], tx_hash(msg), eff[i]);
			if(gts_mint(&flows[i], toks + i * GTS_TOKEN_MAX, GTS_TOKEN_MAX)
					< 0) {
				LM_ERR("cannot sign a flow token\n");
				ret = -3;
				goto done;
			}
			tokp[i] = toks + i * GTS_TOKEN_MAX;
		}
	}
	/* the edits: every Contact with a binding, then the Expires header */
	phexp_of(msg, hexp, &hx);
	memset(&ax, 0, sizeof(ax));
	ax.msg = msg;
	ax.pcs = pcs;
	ax.aor = aor;
	ax.flows = flows;
	rewritten =
			gts_plan_register(pcs, n, tokp, eff, &hx, &pcfg, apply_edit, &ax);
	if(rewritten < 0) {
		ret = -3;
	} else if(rewritten == 0) {
		ret = 2;
	} else {
		counter_inc(gts_cnt.registers);
		ret = 1;
	}
done:
	if(pcs)
		pkg_free(pcs);
	if(flows)
		pkg_free(flows);
	if(eff)
		pkg_free(eff);
	if(tokp)
		pkg_free(tokp);
	if(toks)
		pkg_free(toks);
	return ret;
}

/* ---- the registrar's 2xx ---- */

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

/* 1 and the decoded token when Contact c carries a token this proxy
 * minted */
static int our_contact(contact_t *c, const char *aor, gts_flow_t *tok)
{
	struct sip_uri pu;
	const char *tv;
	size_t tl;

	if(parse_uri(c->uri.s, c->uri.len, &pu) < 0)
		return 0;
	if(!gts_param_find(pu.params.s, (size_t)pu.params.len,
			   gts_cfg.token_param.s, (size_t)gts_cfg.token_param.len, &tv,
			   &tl))
		return 0; /* not one of ours: unchanged */
	if(gts_token_decode(tv, tl, (unsigned char *)gts_cfg.secret.s,
			   (size_t)gts_cfg.secret.len, tok)
			!= GTS_TOK_OK) {
		LM_DBG("2xx for %s lists a Contact with a token we cannot"
			   " verify: unchanged\n",
				aor);
		return 0;
	}
	return gts_local_socket(tok) != NULL; /* else: another proxy's */
}

int gts_sip_reply(struct sip_msg *msg)
{
	char aor[GTS_AOR_MAX + 1];
	gts_commit_item_t *items = NULL;
	gts_pcontact_t *pcs = NULL;
	const char **uris = NULL;
	long *ex = NULL;
	int *at = NULL;
	gts_binding_t *removed = NULL;
	struct hdr_field *h;
	contact_t *c;
	gts_plan_cfg_t pcfg;
	gts_phexp_t hx;
	gts_apply_ctx_t ax;
	long hexp;
	int aor_len, n = 0, max = 0, total = 0, i, k, found, ret = 2;
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
	plan_cfg(&pcfg);
	phexp_of(msg, hexp, &hx);
	memset(&ax, 0, sizeof(ax));
	ax.msg = msg;
	ax.hdr_soft = 1;

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
		gts_plan_reply(NULL, 0, NULL, NULL, &hx, &pcfg, apply_edit, &ax);
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
			total++;
	}
	/* more of ours than GTS_REPLY_MAX are left unchanged (capped) */
	max = total > GTS_REPLY_MAX ? GTS_REPLY_MAX : total;
	if(total > 0) {
		items = pkg_malloc(max * sizeof(*items));
		at = pkg_malloc(max * sizeof(*at));
		pcs = pkg_malloc(total * sizeof(*pcs));
		uris = pkg_malloc(total * sizeof(*uris));
		ex = pkg_malloc(total * sizeof(*ex));
		if(items == NULL || at == NULL || pcs == NULL || uris == NULL
				|| ex == NULL) {
			PKG_MEM_ERROR;
			ret = -3;
			goto done;
		}
	}
	i = 0;
	for(h = msg->contact; h; h = next_sibling_hdr(h)) {
		for(c = ((contact_body_t *)h->parsed)->contacts; c; c = c->next, i++) {
			pcontact_of(msg, c, &pcs[i]);
			uris[i] = NULL;
			ex[i] = -1;
			if(n >= max || !our_contact(c, aor, &items[n].tok))
				continue;
			/* listed as expired: removed, but still restored */
			ex[i] = gts_plan_reply_expires(&pcs[i], hexp, &pcfg);
			items[n].drop = (ex[i] == 0);
			items[n].expires = now + ex[i];
			at[n++] = i;
		}
	}
	found = gts_table_commit(
			&gts_root->table, aor, (size_t)aor_len, items, n, &removed);
	for(k = 0; k < n; k++) {
		if(!items[k].found) {
			LM_DBG("2xx for %s lists a Contact of ours without binding:"
				   " unchanged\n",
					aor);
			continue;
		}
		if(!items[k].drop)
			counter_inc(gts_cnt.committed);
		uris[at[k]] = items[k].uri;
	}
	/* ours restored; registrar-default-timeout on every other Contact
	 * (another device, another transport, another proxy's token): the
	 * phone is never told more than the cap */
	ax.pcs = pcs;
	if(gts_plan_reply(pcs, total, uris, ex, &hx, &pcfg, apply_edit, &ax) < 0) {
		ret = -3;
		goto done;
	}
	ret = found > 0 ? 1 : 2;
done:
	log_removed(removed);
	gts_table_free_list(&gts_root->table, removed);
	if(items)
		pkg_free(items);
	if(at)
		pkg_free(at);
	if(pcs)
		pkg_free(pcs);
	if(uris)
		pkg_free(uris);
	if(ex)
		pkg_free(ex);
	return ret;
}
