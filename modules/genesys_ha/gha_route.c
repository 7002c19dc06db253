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
 * \brief genesys_ha :: request path: no shm allocation, no DNS, no lock
 * (runtime state is read lock-free; a switchover triggered here takes the
 * state lock briefly, see gha_state.c)
 */

#include <string.h>
#include <regex.h>

#include "core/dprint.h"
#include "core/ut.h"
#include "core/dset.h"
#include "core/mem/pkg.h"
#include "core/rand/kam_rand.h"
#include "core/parser/parse_uri.h"
#include "core/parser/parse_from.h"
#include "core/parser/parse_cseq.h"
#include "core/ip_addr.h"
#include "modules/tm/h_table.h"
#include "modules/tm/t_lookup.h"

#include "gha_state.h"
#include "gha_route.h"
#include "gha_rrparam.h"
#include "gha_pending.h"
#include "gha_xctx.h"
#include "gha_poolrr.h"

struct rr_binds gha_rrb;
struct tm_binds gha_tmb;

/* a "gha" Route parameter, with or without a value */
static regex_t gha_param_re;
static int gha_param_re_ok = 0;

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
	if(regcomp(&gha_param_re, ";[ \t]*" GHA_RR_PAIR "[ \t]*(=|;|$)",
			   REG_EXTENDED | REG_NOSUB)
			!= 0) {
		LM_ERR("cannot compile the Route parameter expression\n");
		return -1;
	}
	gha_param_re_ok = 1;
	return 0;
}

void gha_route_destroy(void)
{
	if(lb_key_fmt)
		pv_elem_free_all(lb_key_fmt);
	lb_key_fmt = NULL;
	if(gha_param_re_ok)
		regfree(&gha_param_re);
	gha_param_re_ok = 0;
}

static gha_ctx_t _ctx;
static int *avail_buf = NULL;
static int avail_cap = 0;
static uint32_t *ids_buf = NULL;
static int ids_cap = 0;

void gha_ctx_save(gha_ctx_t *save)
{
	*save = _ctx;
}

void gha_ctx_restore(const gha_ctx_t *save)
{
	_ctx = *save;
}

gha_ctx_t *gha_ctx(sip_msg_t *msg)
{
	if(_ctx.msg_id != msg->id || _ctx.msg_pid != msg->pid) {
		/* lengths only: the buffers are read up to their length */
		_ctx.pair_len = 0;
		_ctx.member_len = 0;
		_ctx.dn_len = 0;
		_ctx.old_member_len = 0;
		_ctx.from_member = 0;
		_ctx.pr = NULL;
		_ctx.msg_id = msg->id;
		_ctx.msg_pid = msg->pid;
		_ctx.role = -1;
		_ctx.state = -1;
		_ctx.trigger = -1;
	}
	return &_ctx;
}

/* the context of msg; when the process-local one belongs to another
 * message (a failure_route run by another process than request_route),
 * what request_route stored in $xavp(gha) (gha_xctx.h) */
static gha_ctx_t *ctx_load(sip_msg_t *msg)
{
	if(_ctx.msg_id == msg->id && _ctx.msg_pid == msg->pid)
		return &_ctx;
	gha_ctx(msg);
	gha_xctx_load(&_ctx);
	return &_ctx;
}

static int cpy(char *dst, int size, const str *s)
{
	int l = s->len < size - 1 ? s->len : size - 1;
	if(l > 0)
		memcpy(dst, s->s, (size_t)l);
	dst[l > 0 ? l : 0] = '\0';
	return l > 0 ? l : 0;
}

void gha_ctx_set_pair(gha_ctx_t *c, const gha_pair_t *pr, int member)
{
	c->pair_len = cpy(c->pair, sizeof(c->pair), &pr->name);
	c->pr = pr;
	c->role = member;
	c->member_len = cpy(c->member, sizeof(c->member), &pr->m[member].uri);
	c->state = gha_pstate(pr);
}

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

static void to_gha_addr(const struct ip_addr *ip, gha_addr_t *a)
{
	memset(a, 0, sizeof(*a));
	a->af = (int)ip->af;
	memcpy(a->ip, ip->u.addr, ip->len <= 16 ? ip->len : 16);
}

/* core's response hook (every reply, before tm): while a down grace is
 * open somewhere, a reply from a member not known active (a backup being
 * promoted answers the requests sent to it in the grace) makes genesys_oos
 * probe it at once, so that the pair switches to it in one round trip
 * instead of at its next periodic probe.  Nothing allocated, one load and
 * a clock read per reply otherwise. */
int gha_grace_reply(sip_msg_t *msg)
{
	gha_pool_t *p;
	gha_addr_t a;
	int pi, m;
	long until = __atomic_load_n(&gha_root->grace_until_ms, __ATOMIC_RELAXED);

	if(until <= 0 || gha_now_ms() >= until)
		return 1;
	if(parse_headers(msg, HDR_CSEQ_F, 0) < 0 || msg->cseq == NULL
			|| get_cseq(msg)->method_id == METHOD_OPTIONS)
		return 1; /* probes are genesys_oos's business */
	if((p = gha_snap()) == NULL)
		return 1;
	to_gha_addr(&msg->rcv.src_ip, &a);
	pi = gha_pool_find_member_addr(
			p, &a, msg->rcv.src_port, msg->rcv.proto != PROTO_UDP, &m);
	if(pi >= 0 && gha_mstate(&p->pairs[pi], m) != GHA_MS_ACTIVE)
		gha_goos.probe_now(p->pairs[pi].m[m].goos_id);
	return 1;
}

/* the pair has no member known alive but is in its down grace: send the
 * request to the member most likely to be serving */
static int grace_route(sip_msg_t *msg, gha_pair_t *pr, int g)
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
		return grace_route(msg, pr, g);
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
		c->dn_len = cpy(c->dn, sizeof(c->dn), &d);
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

	to_gha_addr(&msg->rcv.src_ip, &a);
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
		return grace_route(msg, pr, g);
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

int ki_ha_from_sipserver(sip_msg_t *msg)
{
	gha_pool_t *p = gha_snap();
	gha_addr_t a;
	gha_ctx_t *c;
	int pi, m;

	if(p == NULL)
		return GHA_RC_NOT_FOUND;
	to_gha_addr(&msg->rcv.src_ip, &a);
	pi = gha_pool_find_member_addr(
			p, &a, msg->rcv.src_port, msg->rcv.proto != PROTO_UDP, &m);
	if(pi < 0)
		return GHA_RC_NOT_FOUND;
	c = gha_ctx(msg);
	gha_ctx_set_pair(c, &p->pairs[pi], m);
	c->from_member = 1;
	if(msg->first_line.type == SIP_REQUEST)
		gha_request_from(p, pi, m);
	c->state = gha_pstate(&p->pairs[pi]);
	if(msg->first_line.type == SIP_REQUEST)
		gha_xctx_store(msg, c);
	return GHA_RC_OK;
}

/* pair member of the branch's destination */
static int branch_member(gha_pool_t *p, struct ua_client *uac, int *member)
{
	struct ip_addr ip;
	gha_addr_t a;

	su2ip_addr(&ip, &uac->request.dst.to);
	to_gha_addr(&ip, &a);
	return gha_pool_find_member_addr(
			p, &a, su_getport(&uac->request.dst.to), 0, member);
}

/* the branch could not be sent at all (TCP/TLS connect refused, send
 * error): tm marks it so (t_fwd.c) and t_relay() fails */
static int send_failed(const struct ua_client *uac)
{
	return uac->icode == 908 && uac->reply == NULL;
}

int ki_ha_failover(sip_msg_t *msg)
{
	gha_pool_t *p = gha_snap();
	struct cell *t;
	struct ua_client *uac;
	gha_ctx_t *c;
	gha_pair_t *pr;
	const char *why;
	int b, i, pi, qi, m, k, to, timeout, grace = 0, tried = 0;

	if(p == NULL)
		return GHA_RC_NOT_FOUND;
	if(msg->first_line.type == SIP_REQUEST
			&& (msg->REQ_METHOD & (METHOD_ACK | METHOD_CANCEL)))
		return GHA_RC_NOT_FOUND; /* not relayed in their own transaction */
	t = gha_tmb.t_gett();
	if(t == NULL || t == T_UNDEFINED) {
		if(!is_route_type(FAILURE_ROUTE))
			return GHA_RC_NOT_FOUND; /* t_relay() failed before sending */
		LM_ERR("ha_failover() needs a transaction\n");
		return GHA_RC_ERROR;
	}
	/* a send that failed at once is the newest branch (request_route after
	 * t_relay() failed, or failure_route after the retry's t_relay()
	 * failed); else the branch failure_route runs for */
	b = t->nr_of_outgoings - 1;
	if(b < 0 || !send_failed(&t->uac[b])) {
		if(!is_route_type(FAILURE_ROUTE))
			return GHA_RC_NOT_FOUND;
		b = gha_tmb.t_get_picked_branch();
	}
	if(b < 0 || b >= t->nr_of_outgoings)
		return GHA_RC_NOT_FOUND;
	uac = &t->uac[b];
	timeout = uac->reply == FAKED_REPLY || uac->reply == NULL
			  || uac->last_received == 0;
	if(!timeout && uac->last_received != 503)
		return GHA_RC_NOT_FOUND; /* an answer: not a member failure */
	why = send_failed(uac) ? "send failed" : (timeout ? "no answer" : "503");
	pi = branch_member(p, uac, &m);
	if(pi < 0)
		return GHA_RC_NOT_FOUND;
	for(i = 0; i < t->nr_of_outgoings; i++) {
		qi = branch_member(p, &t->uac[i], &k);
		if(qi == pi)
			tried |= 1 << k;
	}
	pr = &p->pairs[pi];
	to = gha_relay_failed(p, pi, m, timeout);
	if(to < 0 || (tried & (1 << to))) {
		/* the other member is not known alive: tried anyway in the down
		 * grace, or after no answer at all (gha_pair.h) */
		k = gha_grace_retry_member(p, pi, m, timeout);
		if(k >= 0 && !(tried & (1 << k))) {
			to = k;
			grace = 1;
		}
	}
	c = ctx_load(msg); /* keeps the DN request_route saw */
	gha_ctx_set_pair(c, pr, to >= 0 ? to : m);
	if(grace || gha_grace_target(pr) >= 0)
		c->state = GHA_PS_GRACE;
	if(to < 0 || (tried & (1 << to))) {
		LM_NOTICE("pair '%.*s': request to %s %.*s failed (%s) and the "
				  "other member is not known alive or was tried: no retry\n",
				pr->name.len, pr->name.s, gha_role_name(m), pr->m[m].uri.len,
				pr->m[m].uri.s, why);
		return GHA_RC_OUT_OF_SERVICE;
	}
	if(set_dst_uri(msg, &pr->m[to].dst) < 0) {
		LM_ERR("cannot set the destination\n");
		return GHA_RC_ERROR;
	}
	gha_pending_note(msg, pr->m[to].proto);
	ruri_mark_new(); /* re-use the R-URI for the new branch */
	LM_NOTICE("pair '%.*s': request to %s %.*s failed (%s): retrying on %s "
			  "%.*s%s\n",
			pr->name.len, pr->name.s, gha_role_name(m), pr->m[m].uri.len,
			pr->m[m].uri.s, why, gha_role_name(to), pr->m[to].uri.len,
			pr->m[to].uri.s, grace ? " (not known alive: down grace)" : "");
	GHA_INC(pr->slot->n_failover);
	gha_xctx_store(msg, c);
	counter_inc(gha_cnt.failovers);
	if(grace) {
		GHA_INC(pr->slot->n_grace);
		counter_inc(gha_cnt.grace);
		return GHA_RC_GRACE;
	}
	return GHA_RC_OK;
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
	c->member_len = cpy(c->member, sizeof(c->member), &p->fs[fi].m.uri);
	c->pair_len = 0; /* not a pair: ha_record_route() adds no pair id */
	c->role = -1;
	gha_xctx_store(msg, c);
	return GHA_RC_OK;
}

/* ---- $ha(key) ---- */

enum
{
	HA_PV_PAIR = 1,
	HA_PV_ROLE,
	HA_PV_MEMBER,
	HA_PV_STATE,
	HA_PV_DN,
	HA_PV_TRIGGER,
	HA_PV_OLD_MEMBER
};

int pv_parse_ha_name(pv_spec_t *sp, str *in)
{
	int k = 0;

	if(sp == NULL || in == NULL || in->len <= 0)
		return -1;
	if(in->len == 4 && strncmp(in->s, "pair", 4) == 0)
		k = HA_PV_PAIR;
	else if(in->len == 4 && strncmp(in->s, "role", 4) == 0)
		k = HA_PV_ROLE;
	else if(in->len == 6 && strncmp(in->s, "member", 6) == 0)
		k = HA_PV_MEMBER;
	else if(in->len == 5 && strncmp(in->s, "state", 5) == 0)
		k = HA_PV_STATE;
	else if(in->len == 2 && strncmp(in->s, "dn", 2) == 0)
		k = HA_PV_DN;
	else if(in->len == 7 && strncmp(in->s, "trigger", 7) == 0)
		k = HA_PV_TRIGGER;
	else if(in->len == 10 && strncmp(in->s, "old_member", 10) == 0)
		k = HA_PV_OLD_MEMBER;
	if(k == 0) {
		LM_ERR("unknown $ha(%.*s): use pair, role, member, state, dn, "
			   "trigger or old_member\n",
				in->len, in->s);
		return -1;
	}
	sp->pvp.pvn.type = PV_NAME_INTSTR;
	sp->pvp.pvn.u.isname.type = 0;
	sp->pvp.pvn.u.isname.name.n = k;
	return 0;
}

static int pv_str(
		sip_msg_t *msg, pv_param_t *param, pv_value_t *res, char *s, int len)
{
	str v;

	if(len <= 0)
		return pv_get_null(msg, param, res);
	v.s = s;
	v.len = len;
	return pv_get_strval(msg, param, res, &v);
}

static int pv_cstr(
		sip_msg_t *msg, pv_param_t *param, pv_value_t *res, const char *s)
{
	return pv_str(msg, param, res, (char *)s, (int)strlen(s));
}

int pv_get_ha(sip_msg_t *msg, pv_param_t *param, pv_value_t *res)
{
	gha_ctx_t *c;

	if(msg == NULL || param == NULL)
		return -1;
	c = ctx_load(msg);
	switch(param->pvn.u.isname.name.n) {
		case HA_PV_PAIR:
			return pv_str(msg, param, res, c->pair, c->pair_len);
		case HA_PV_ROLE:
			if(c->role < 0)
				return pv_get_null(msg, param, res);
			return pv_cstr(msg, param, res, gha_role_name(c->role));
		case HA_PV_MEMBER:
			return pv_str(msg, param, res, c->member, c->member_len);
		case HA_PV_STATE:
			if(c->state < 0)
				return pv_get_null(msg, param, res);
			return pv_cstr(msg, param, res, gha_pstate_name(c->state));
		case HA_PV_DN:
			return pv_str(msg, param, res, c->dn, c->dn_len);
		case HA_PV_TRIGGER:
			if(c->trigger < 0)
				return pv_get_null(msg, param, res);
			return pv_cstr(msg, param, res, gha_trigger_name(c->trigger));
		case HA_PV_OLD_MEMBER:
			return pv_str(msg, param, res, c->old_member, c->old_member_len);
	}
	return pv_get_null(msg, param, res);
}
