/*
 * genesys_ha module: routing of initial requests
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: initial requests: the choice of a pair (ha_select*,
 * load balancing over a site's pairs) or of a feature server, the down
 * grace for a pair without a member known alive, and ha_record_route()
 * with the pair id and the DN.  In-dialog requests: gha_indialog.c; what
 * comes from the SIP Servers (their requests, replies, failures):
 * gha_sipserver.c; the $ha(...) context: gha_ctx.c.  Request path: no shm
 * allocation, no DNS, no lock (runtime state is read lock-free).
 */

#include <string.h>

#include "core/dprint.h"
#include "core/ut.h"
#include "core/dset.h"
#include "core/mem/pkg.h"
#include "core/rand/kam_rand.h"
#include "core/parser/parse_uri.h"
#include "core/parser/parse_from.h"

#include "gha_state.h"
#include "gha_route.h"
#include "gha_rrparam.h"
#include "gha_pending.h"
#include "gha_xctx.h"
#include "gha_poolrr.h"

struct rr_binds gha_rrb;
struct tm_binds gha_tmb;

/* lb_algorithm "hash": the key, from lb_hash_key */
static pv_elem_t *lb_key_fmt = NULL;

int gha_route_init(void)
{
	if(gha_lb_alg == GHA_LB_HASH
			&& (gha_lb_hash_key.len <= 0
					|| pv_parse_format(&gha_lb_hash_key, &lb_key_fmt) < 0
					|| lb_key_fmt == NULL)) {
		LM_ERR("lb_hash_key '%.*s' is invalid: give a pseudo-variable "
			   "format such as \"$fU\" (the DN of the sender)\n",
				gha_lb_hash_key.len, gha_lb_hash_key.s);
		return -1;
	}
	if(gha_indialog_init() < 0)
		return -1;
	return 0;
}

void gha_route_destroy(void)
{
	if(lb_key_fmt)
		pv_elem_free_all(lb_key_fmt);
	lb_key_fmt = NULL;
	gha_indialog_destroy();
}

static int *avail_buf = NULL;
static int avail_cap = 0;
static uint32_t *ids_buf = NULL;
static int ids_cap = 0;

static int *avail(int n)
{
	int *p;

	if(n <= avail_cap)
		return avail_buf;
	p = pkg_realloc(avail_buf, sizeof(int) * (size_t)n);
	if(p == NULL) {
		PKG_MEM_ERROR;
		return NULL;
	}
	avail_buf = p;
	avail_cap = n;
	return p;
}

/* lb_algorithm "hash": names' hashes of the candidates, or NULL for the
 * other algorithms (or out of memory: round-robin then) */
static uint32_t *lb_ids(int n)
{
	uint32_t *p;

	if(gha_lb_alg != GHA_LB_HASH)
		return NULL;
	if(n <= ids_cap)
		return ids_buf;
	p = pkg_realloc(ids_buf, sizeof(uint32_t) * (size_t)n);
	if(p == NULL) {
		PKG_MEM_ERROR;
		return NULL;
	}
	ids_buf = p;
	ids_cap = n;
	return p;
}

/* the hash key of msg (lb_hash_key); 0 when it has none (null, empty) */
static int lb_key(sip_msg_t *msg, uint32_t *key)
{
	pv_value_t v;
	str k;

	if(lb_key_fmt == NULL)
		return 0;
	if(lb_key_fmt->next == NULL && lb_key_fmt->text.len == 0
			&& lb_key_fmt->spec != NULL) {
		/* one variable (the usual "$fU"): a null value is no key */
		memset(&v, 0, sizeof(v));
		if(pv_get_spec_value(msg, lb_key_fmt->spec, &v) != 0)
			return 0;
		if((v.flags & PV_VAL_NULL) || !(v.flags & PV_VAL_STR)
				|| v.rs.len <= 0) {
			pv_value_destroy(&v);
			return 0;
		}
		*key = gha_lb_hash(v.rs.s, v.rs.len);
		pv_value_destroy(&v);
		return 1;
	}
	if(pv_printf_s(msg, lb_key_fmt, &k) < 0 || k.len <= 0)
		return 0;
	*key = gha_lb_hash(k.s, k.len);
	return 1;
}

/* one of n candidates by lb_algorithm (ids from lb_ids(), filled for the
 * available ones); a request without a hash key goes round-robin */
static int lb_choose(sip_msg_t *msg, int n, const int *av, const uint32_t *ids,
		unsigned int *rrpos)
{
	unsigned int rr;
	uint32_t key;

	if(ids != NULL && lb_key(msg, &key))
		return gha_lb_pick_hash(n, av, ids, key);
	rr = __atomic_fetch_add(rrpos, 1, __ATOMIC_RELAXED);
	return gha_lb_pick(n, av, gha_lb_alg, &rr, kam_rand());
}

/* the pair has no member known alive but is in its down grace: send the
 * request to the member most likely to be serving */
int gha_grace_route(sip_msg_t *msg, gha_pair_t *pr, int g)
{
	gha_ctx_t *c = gha_ctx(msg);

	gha_ctx_set_pair(c, pr, g);
	c->state = GHA_PS_GRACE;
	if(set_dst_uri(msg, &pr->m[g].dst) < 0) {
		LM_ERR("cannot set the destination to %.*s\n", pr->m[g].dst.len,
				pr->m[g].dst.s);
		return GHA_RC_ERROR;
	}
	GHA_INC(pr->slot->n_grace);
	counter_inc(gha_cnt.grace);
	LM_DBG("pair '%.*s' has no member known alive: down grace, %.*s to %s "
		   "%.*s\n",
			pr->name.len, pr->name.s, msg->first_line.u.request.method.len,
			msg->first_line.u.request.method.s, gha_role_name(g),
			pr->m[g].uri.len, pr->m[g].uri.s);
	return GHA_RC_GRACE;
}

/* send a new dialog to the active member of pair pi */
static int select_pair(sip_msg_t *msg, gha_pool_t *p, int pi)
{
	gha_pair_t *pr = &p->pairs[pi];
	int a = gha_active(pr), ps = gha_pstate(pr), g;
	gha_ctx_t *c = gha_ctx(msg);

	gha_ctx_set_pair(c, pr, a);
	c->state = ps;
	if((ps == GHA_PS_DOWN || ps == GHA_PS_INACTIVE)
			&& (g = gha_grace_target(pr)) >= 0)
		return gha_grace_route(msg, pr, g);
	if(ps == GHA_PS_DOWN || ps == GHA_PS_INACTIVE) {
		GHA_INC(pr->slot->n_rejected);
		counter_inc(gha_cnt.rejected);
		LM_DBG("pair '%.*s' is %s: no new dialog\n", pr->name.len, pr->name.s,
				gha_pstate_name(ps));
		return ps == GHA_PS_DOWN ? GHA_RC_OUT_OF_SERVICE : GHA_RC_INACTIVE;
	}
	if(set_dst_uri(msg, &pr->m[a].dst) < 0) {
		LM_ERR("cannot set the destination to %.*s\n", pr->m[a].dst.len,
				pr->m[a].dst.s);
		return GHA_RC_ERROR;
	}
	gha_pending_note(msg, pr->m[a].proto);
	GHA_INC(pr->slot->n_new);
	counter_inc(gha_cnt.new_dialogs);
	gha_xctx_store(msg, c);
	return GHA_RC_OK;
}

static int unknown_pair(const char *what, str *name)
{
	counter_inc(gha_cnt.rejected);
	LM_DBG("%s: unknown SIP Server pair '%.*s'\n", what, name ? name->len : 0,
			name ? name->s : "");
	return GHA_RC_UNKNOWN_PAIR;
}

int ki_ha_select_serving(sip_msg_t *msg)
{
	gha_pool_t *p = gha_snap();
	int si = gha_serving_index(p);

	if(si < 0)
		return unknown_pair("ha_select_serving", &gha_serving);
	return select_pair(msg, p, si);
}

int ki_ha_select(sip_msg_t *msg, str *pair)
{
	gha_pool_t *p = gha_snap();
	int pi;

	if(p == NULL || pair == NULL || pair->len <= 0)
		return unknown_pair("ha_select", pair);
	pi = gha_pool_find_pair(p, pair->s, pair->len);
	if(pi < 0)
		return unknown_pair("ha_select", pair);
	return select_pair(msg, p, pi);
}

static int site_eq(const str *a, const str *b)
{
	return a->len == b->len && memcmp(a->s, b->s, (size_t)a->len) == 0;
}

int ki_ha_select_site_name(sip_msg_t *msg, str *site)
{
	gha_pool_t *p = gha_snap();
	int i, n, pi, *av;
	const int *idx;
	uint32_t *ids;
	str s;

	if(p == NULL)
		return unknown_pair("ha_select_site", NULL);
	if(site && site->len > 0)
		s = *site;
	else
		gha_own_site(p, &s);
	/* the pairs of the site (all without a site), from the snapshot */
	n = gha_pool_site_pairs(p, &s, &idx);
	if(n == 0) {
		counter_inc(gha_cnt.rejected);
		LM_DBG("no SIP Server pair in site '%.*s'\n", s.len, s.s);
		return GHA_RC_UNKNOWN_PAIR;
	}
	if((av = avail(n)) == NULL)
		return GHA_RC_ERROR;
	ids = lb_ids(n);
	for(i = 0; i < n; i++) {
		const gha_pair_t *pr = &p->pairs[idx[i]];
		av[i] = gha_ps_routable(&pr->slot->st);
		if(ids && av[i])
			ids[i] = gha_lb_hash(pr->name.s, pr->name.len);
	}
	pi = lb_choose(msg, n, av, ids, &gha_root->rr_pairs);
	/* none available: the first of the site's pairs in its down grace */
	for(i = 0; pi < 0 && i < n; i++)
		if(gha_grace_target(&p->pairs[idx[i]]) >= 0)
			pi = i;
	if(pi < 0) {
		counter_inc(gha_cnt.rejected);
		return GHA_RC_OUT_OF_SERVICE;
	}
	return select_pair(msg, p, idx[pi]);
}

int ki_ha_select_site(sip_msg_t *msg)
{
	return ki_ha_select_site_name(msg, NULL);
}

int ki_ha_select_by_uri(sip_msg_t *msg)
{
	gha_pool_t *p = gha_snap();
	int pi, m;

	if(p == NULL)
		return unknown_pair("ha_select_by_uri", NULL);
	if(parse_sip_msg_uri(msg) < 0) {
		LM_ERR("cannot parse the Request-URI\n");
		return GHA_RC_ERROR;
	}
	pi = gha_pool_find_member_host(
			p, &msg->parsed_uri.host, msg->parsed_uri.port_no, &m);
	if(pi < 0 && msg->parsed_uri.port_no == 0)
		pi = gha_pool_find_pair(
				p, msg->parsed_uri.host.s, msg->parsed_uri.host.len);
	if(pi < 0)
		return GHA_RC_NOT_FOUND;
	return select_pair(msg, p, pi);
}

static int record_route(sip_msg_t *msg, str *dn)
{
	gha_ctx_t *c = gha_ctx(msg);
	char buf[2 * 3 * GHA_RR_VAL_MAX + 32];
	str pair, params, d = STR_NULL;
	struct to_body *fb;
	gha_pool_t *p;
	int n, m;

	if(c->pair_len <= 0) {
		/* no pair chosen for this request: a plain Record-Route */
		return gha_rrb.record_route(msg, NULL) < 0 ? GHA_RC_ERROR
												   : GHA_RC_AS_IS;
	}
	if(dn && dn->len > 0) {
		d = *dn;
	} else if(!gha_rr_dn) {
		/* the pair only: the DN is for people reading traces, routing
		 * never needs it */
	} else if(c->from_member) {
		/* SIP Server -> endpoint: the DN is the called party */
		if(parse_sip_msg_uri(msg) > 0)
			d = msg->parsed_uri.user;
	} else if(parse_from_header(msg) == 0) {
		/* endpoint -> SIP Server: the DN is the caller (its user part,
		 * found without a full parse_uri(): the From URI is not used
		 * for anything else on this path) */
		fb = get_from(msg);
		gha_uri_user(fb->uri.s, fb->uri.len, &d);
	}
	if(d.len > GHA_RR_VAL_MAX)
		d.len = 0;
	pair.s = c->pair;
	pair.len = c->pair_len;
	p = gha_snap();
	if(p && c->pr >= p->pairs && c->pr < p->pairs + p->npairs
			&& c->pr->rr.len > 0 && c->pr->name.len == pair.len
			&& memcmp(c->pr->name.s, pair.s, (size_t)pair.len) == 0) {
		/* the pair's parameter, escaped when the pool was loaded */
		memcpy(buf, c->pr->rr.s, (size_t)c->pr->rr.len);
		n = c->pr->rr.len;
		if(d.len > 0) {
			buf[n++] = GHA_RR_SEP;
			m = gha_rr_escape(&d, buf + n, (int)sizeof(buf) - n);
			n = m < 0 ? -1 : n + m;
		}
	} else {
		n = gha_rr_encode(&pair, d.len > 0 ? &d : NULL, buf, sizeof(buf));
	}
	if(n < 0) {
		LM_ERR("cannot encode the Record-Route parameters for '%.*s'\n",
				pair.len, pair.s);
		return GHA_RC_ERROR;
	}
	if(d.len > 0) {
		c->dn_len = gha_ctx_cpy(c->dn, sizeof(c->dn), &d);
		gha_xctx_store(msg, c);
	}
	params.s = buf;
	params.len = n;
	if(gha_poolrr_applies()) {
		/* rr_pool_name: any proxy of the pool takes the in-dialog
		 * requests (the pair id travels in the parameters) */
		if(gha_poolrr_add(msg, &params, c->from_member) < 0)
			return GHA_RC_ERROR;
		return GHA_RC_OK;
	}
	if(gha_rrb.record_route(msg, &params) < 0) {
		LM_ERR("record_route failed\n");
		return GHA_RC_ERROR;
	}
	return GHA_RC_OK;
}

int ki_ha_record_route(sip_msg_t *msg)
{
	return record_route(msg, NULL);
}

int ki_ha_record_route_dn(sip_msg_t *msg, str *dn)
{
	return record_route(msg, dn);
}

int ki_ha_select_feature_server(sip_msg_t *msg)
{
	gha_pool_t *p = gha_snap();
	int i, n = 0, fi, *av, st;
	uint32_t *ids;
	gha_ctx_t *c;
	str s;

	if(p == NULL || p->nfs == 0)
		return GHA_RC_NOT_FOUND;
	gha_own_site(p, &s);
	if((av = avail(p->nfs)) == NULL)
		return GHA_RC_ERROR;
	ids = lb_ids(p->nfs);
	for(i = 0; i < p->nfs; i++) {
		int in = s.len <= 0 || site_eq(&p->fs[i].site, &s);
		n += in;
		st = gha_fs_state(&p->fs[i]);
		av[i] = in && (st == GHA_MS_ACTIVE || st == GHA_MS_UNKNOWN);
		if(ids && av[i])
			ids[i] = gha_lb_hash(p->fs[i].name.s, p->fs[i].name.len);
	}
	if(n == 0)
		return GHA_RC_NOT_FOUND;
	fi = lb_choose(msg, p->nfs, av, ids, &gha_root->rr_fs);
	if(fi < 0)
		return GHA_RC_OUT_OF_SERVICE;
	if(set_dst_uri(msg, &p->fs[fi].m.dst) < 0)
		return GHA_RC_ERROR;
	c = gha_ctx(msg);
	c->member_len = gha_ctx_cpy(c->member, sizeof(c->member), &p->fs[fi].m.uri);
	c->pair_len = 0; /* not a pair: ha_record_route() adds no pair id */
	c->role = -1;
	gha_xctx_store(msg, c);
	return GHA_RC_OK;
}
