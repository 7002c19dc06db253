/*
 * genesys_ha module: shared state, snapshots, genesys_oos glue, events
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: shared state (see gha_state.h)
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/dprint.h"
#include "core/mem/shm_mem.h"
#include "core/route.h"
#include "core/fmsg.h"
#include "core/kemi.h"
#include "core/action.h"
#include "core/pt.h"

#include "gha_state.h"
#include "gha_route.h"
#include "gha_pending.h"
#include "gha_xml.h"
#include "gha_xsd.h"
#include "common/kg_evroute.h"

gha_root_t *gha_root = NULL;
goos_api_t gha_goos;
gha_counters_t gha_cnt;

/* this process's reference on a snapshot; a forked child starts without
 * one (a reference taken before the fork belongs to the parent) */
static gha_pool_t *my_snap = NULL;
static unsigned int my_gen = 0;
static int my_proc = -1;

/* event routes, looked up once */
static int evrt_switchover = -1;
static int evrt_down = -1;
static int evrt_up = -1;
/* Kamailio 5.6's cfg lexer drops "genesys_" from event_route[genesys_ha:x]
 * (it takes [a-zA-Z][0-9a-zA-Z-]* before the ':'), so the routes are named
 * genesys-ha:... (as genesys_oos does); the mangled names are refused */
static str evname_switchover = str_init("genesys-ha:switchover");
static str evname_down = str_init("genesys-ha:pair-down");
static str evname_up = str_init("genesys-ha:pair-up");

/* clang-format off */
static counter_def_t gha_cnt_defs[] = {
	{&gha_cnt.switchovers, "switchovers", 0, 0, 0,
		"SIP Server pair switchovers (all triggers)"},
	{&gha_cnt.pair_down, "pair_down", 0, 0, 0,
		"times a SIP Server pair went out of service (both members silent)"},
	{&gha_cnt.pair_up, "pair_up", 0, 0, 0,
		"times a SIP Server pair came back into service"},
	{&gha_cnt.new_dialogs, "new_dialogs", 0, 0, 0,
		"initial requests sent to an active member"},
	{&gha_cnt.rejected, "rejected", 0, 0, 0,
		"initial requests refused: pair out of service, inactive or unknown"},
	{&gha_cnt.in_dialog, "in_dialog", 0, 0, 0,
		"in-dialog requests sent to a pair's current active member"},
	{&gha_cnt.route_refused, "route_refused", 0, 0, 0,
		"in-dialog requests refused: unknown or malformed pair in Route, "
		"or neither from nor to the pool"},
	{&gha_cnt.failovers, "failovers", 0, 0, 0,
		"failure_route retries on the other member"},
	{&gha_cnt.grace, "grace", 0, 0, 0,
		"requests and retries sent in a pair's down grace (no member known "
		"alive)"},
	{&gha_cnt.backup_requests, "backup_requests", 0, 0, 0,
		"requests received from a pair's non-active member"},
	{&gha_cnt.reloads, "reloads", 0, 0, 0, "successful pool reloads"},
	{&gha_cnt.reload_errors, "reload_errors", 0, 0, 0,
		"pool reloads refused (the running pool was kept)"},
	{0, 0, 0, 0, 0, 0}
};
/* clang-format on */

static void *shm_alloc_cb(size_t size, void *ctx)
{
	(void)ctx;
	return shm_malloc(size);
}

static void shm_free_cb(void *p, void *ctx)
{
	(void)ctx;
	shm_free(p);
}

static const gha_alloc_t shm_allocator = {shm_alloc_cb, shm_free_cb, NULL};

static const char *event_name(int rc)
{
	switch(rc) {
		case GHA_LOAD_CONFIG:
			return "SPR_ERROR_READING_CONFIG_DATA";
		case GHA_LOAD_RESOLVE:
			return "SPR_HOST_NOT_RESOLVED";
		case GHA_LOAD_OWN_ADDR:
			return "SPR_OWN_PROXY_ADDR_NOT_FOUND";
		default:
			return "SPR_ERROR_READING_CONFIG_DATA";
	}
}

static void snap_put(gha_pool_t *p)
{
	if(p && __atomic_sub_fetch(&p->refcnt, 1, __ATOMIC_ACQ_REL) == 0)
		gha_pool_free(p, &shm_allocator);
}

gha_pool_t *gha_snap(void)
{
	unsigned int g;
	gha_pool_t *p;

	if(gha_root == NULL)
		return NULL;
	if(my_proc != process_no) {
		my_snap = NULL;
		my_gen = 0;
		my_proc = process_no;
	}
	g = __atomic_load_n(&gha_root->generation, __ATOMIC_ACQUIRE);
	if(g == my_gen)
		return my_snap;
	lock_get(&gha_root->lock);
	p = gha_root->cur;
	g = gha_root->generation;
	if(p)
		__atomic_add_fetch(&p->refcnt, 1, __ATOMIC_ACQ_REL);
	lock_release(&gha_root->lock);
	snap_put(my_snap);
	my_snap = p;
	my_gen = g;
	return p;
}

int gha_serving_index(const gha_pool_t *p)
{
	if(p == NULL)
		return -1;
	if(p->serving >= 0)
		return p->serving;
	return p->npairs == 1 ? 0 : -1;
}

void gha_own_site(const gha_pool_t *p, str *site)
{
	if(gha_geo_location.len > 0) {
		*site = gha_geo_location;
	} else if(p && p->own_site.len > 0) {
		*site = p->own_site;
	} else {
		site->s = NULL;
		site->len = 0;
	}
}

/* ---- events: logs, counters, event routes (never under the lock) ---- */

static void run_event_route(
		int rt, str *evname, const gha_pair_t *pr, const gha_pair_events_t *ev)
{
	sip_msg_t *fmsg;
	gha_ctx_t *c, saved;

	if(gha_event_callback.len > 0) {
		if(sr_kemi_eng_get() == NULL)
			return;
	} else if(rt < 0 || event_rt.rlist[rt] == NULL) {
		return;
	}
	if(faked_msg_init() < 0) {
		LM_ERR("cannot initialize a faked message for %.*s\n", evname->len,
				evname->s);
		return;
	}
	gha_ctx_save(&saved);
	fmsg = faked_msg_next();
	c = gha_ctx(fmsg);
	gha_ctx_set_pair(c, pr, ev->to);
	c->state = ev->new_pstate;
	c->trigger = ev->switched ? ev->trigger : -1;
	if(ev->switched) {
		const gha_member_t *om = &pr->m[ev->from];
		c->old_member_len = om->uri.len < (int)sizeof(c->old_member)
									? om->uri.len
									: (int)sizeof(c->old_member) - 1;
		memcpy(c->old_member, om->uri.s, (size_t)c->old_member_len);
	}
	kg_run_event_route(rt, &gha_event_callback, evname, fmsg);
	gha_ctx_restore(&saved);
}

static void emit(gha_pool_t *p, int pi, const gha_pair_events_t *ev)
{
	const gha_pair_t *pr = &p->pairs[pi];
	const gha_member_t *to = &pr->m[ev->to], *from = &pr->m[ev->from];

	if(ev->switched) {
		LM_WARN("SIP Server pair '%.*s': switchover from %s %.*s to %s %.*s"
				" (trigger: %s); new requests go to %.*s\n",
				pr->name.len, pr->name.s, gha_role_name(ev->from),
				from->uri.len, from->uri.s, gha_role_name(ev->to), to->uri.len,
				to->uri.s, gha_trigger_name(ev->trigger), to->dst.len,
				to->dst.s);
		counter_inc(gha_cnt.switchovers);
	}
	if(ev->went_down) {
		LM_ERR("40001 SPR_SIPS_HA_PAIR_UNAVAILABLE: SIP Server HA pair "
			   "(%.*s:%d) is unavailable: '%.*s' primary and backup do not "
			   "answer OPTIONS; new dialogs get 503 until one answers%s\n",
				pr->m[0].host.len, pr->m[0].host.s, pr->m[0].port, pr->name.len,
				pr->name.s,
				gha_grace_target(pr) >= 0 ? " (after the down grace: requests "
											"go to the member most likely to "
											"be serving meanwhile)"
										  : "");
		counter_inc(gha_cnt.pair_down);
	}
	if(ev->went_up) {
		LM_NOTICE("SIP Server pair '%.*s' is available again: %s %.*s "
				  "answers\n",
				pr->name.len, pr->name.s, gha_role_name(ev->to), to->uri.len,
				to->uri.s);
		counter_inc(gha_cnt.pair_up);
	}
	if(ev->new_pstate != ev->old_pstate && ev->new_pstate == GHA_PS_INACTIVE)
		LM_WARN("SIP Server pair '%.*s' is inactive: %s %.*s answers 503; no "
				"new dialogs, existing dialogs continue\n",
				pr->name.len, pr->name.s, gha_role_name(ev->to), to->uri.len,
				to->uri.s);
	if(ev->switched)
		run_event_route(evrt_switchover, &evname_switchover, pr, ev);
	if(ev->went_down)
		run_event_route(evrt_down, &evname_down, pr, ev);
	if(ev->went_up)
		run_event_route(evrt_up, &evname_up, pr, ev);
}

static int ev_any(const gha_pair_events_t *ev)
{
	return ev->switched || ev->went_down || ev->went_up
		   || ev->new_pstate != ev->old_pstate;
}

long gha_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1;
}

void gha_member_state(int goos_id, int new_state)
{
	gha_pool_t *p = gha_snap();
	gha_pair_events_t ev;
	int i, k, old, pi = -1, grace = -1;
	long now = (long)time(NULL), now_ms = gha_now_ms();

	if(p == NULL || goos_id < 0)
		return;
	memset(&ev, 0, sizeof(ev));
	lock_get(&gha_root->lock);
	for(i = 0; i < p->npairs && pi < 0; i++) {
		for(k = 0; k < 2; k++) {
			if(p->pairs[i].m[k].goos_id == goos_id) {
				old = p->pairs[i].st.mstate[k];
				gha_ps_member_changed(&p->pairs[i].st, k, new_state, now, &ev);
				gha_grace_member_changed(&p->pairs[i].st, k, old, now_ms);
				if(p->pairs[i].st.g_open_ms == now_ms && gha_down_grace > 0) {
					__atomic_store_n(&gha_root->grace_until_ms,
							now_ms + gha_down_grace, __ATOMIC_RELAXED);
					grace = gha_grace_member(
							&p->pairs[i].st, now_ms, gha_down_grace);
				}
				pi = i;
				break;
			}
		}
	}
	for(i = 0; i < p->nfs; i++) {
		if(p->fs[i].m.goos_id == goos_id && p->fs[i].state != new_state) {
			p->fs[i].state = new_state;
			p->fs[i].since = now;
		}
	}
	lock_release(&gha_root->lock);
	if(pi >= 0 && ev_any(&ev))
		emit(p, pi, &ev);
	if(pi >= 0 && grace >= 0)
		LM_WARN("SIP Server pair '%.*s' has no member known alive: down "
				"grace, requests go to the %s %.*s for up to %d ms (then to "
				"the other member if it does not answer)\n",
				p->pairs[pi].name.len, p->pairs[pi].name.s,
				gha_role_name(grace), p->pairs[pi].m[grace].uri.len,
				p->pairs[pi].m[grace].uri.s, gha_down_grace);
}

static void goos_cb(const goos_change_t *ch, void *param)
{
	(void)param;
	gha_member_state(ch->id, (int)ch->new_state);
	/* found dead (not forced down by the operator): nobody waits for it */
	if(ch->new_state == GOOS_DOWN && ch->old_state != GOOS_DOWN
			&& (ch->reason == GOOS_R_TIMEOUT || ch->reason == GOOS_R_TRANSPORT))
		gha_pending_member_down(ch->id);
}

void gha_request_from(gha_pool_t *p, int pi, int member)
{
	int rc;
	int64_t now_ms = gha_goos.now_ms();
	gha_pair_t *pr = &p->pairs[pi];

	lock_get(&gha_root->lock);
	rc = gha_ps_request_from(&pr->st, member, now_ms);
	if(rc == GHA_RQ_VERIFY
			&& gha_root->verify_until_ms < pr->st.verify_until_ms)
		__atomic_store_n(&gha_root->verify_until_ms, pr->st.verify_until_ms,
				__ATOMIC_RELEASE);
	lock_release(&gha_root->lock);
	if(rc == GHA_RQ_ACTIVE)
		return;
	counter_inc(gha_cnt.backup_requests);
	if(rc != GHA_RQ_VERIFY)
		return; /* its probes are on their way: no probe flood */
	LM_NOTICE("SIP Server pair '%.*s': request from the %s %.*s: probing "
			  "both members now; the pair switches to it only if it answers "
			  "and the %s %.*s does not (or answers 503)\n",
			pr->name.len, pr->name.s, gha_role_name(member),
			pr->m[member].uri.len, pr->m[member].uri.s,
			gha_role_name(1 - member), pr->m[1 - member].uri.len,
			pr->m[1 - member].uri.s);
	/* refresh both members at once (seed 003 workflow): only probes sent
	 * from now on decide (gha_result_cb) */
	gha_goos.probe_now(pr->m[member].goos_id);
	gha_goos.probe_now(pr->m[1 - member].goos_id);
}

/* every completed probe (genesys_oos): decides request verifications */
static void gha_result_cb(const goos_probe_result_t *r, void *param)
{
	gha_pool_t *p;
	gha_pair_events_t ev;
	gha_pair_state_t *st;
	int i, k, pi = -1, m = -1, rc = GHA_VR_NONE, res[2] = {0, 0}, ms = 0;
	int64_t now_ms;

	(void)param;
	if(gha_root == NULL || r->id < 0)
		return;
	now_ms = gha_goos.now_ms();
	/* no verification armed (the usual case): no lock, no scan */
	if(now_ms > __atomic_load_n(&gha_root->verify_until_ms, __ATOMIC_ACQUIRE))
		return;
	if((p = gha_snap()) == NULL)
		return;
	memset(&ev, 0, sizeof(ev));
	lock_get(&gha_root->lock);
	for(i = 0; i < p->npairs && pi < 0; i++) {
		st = &p->pairs[i].st;
		if(st->verify_member < 0)
			continue;
		for(k = 0; k < 2; k++) {
			if(p->pairs[i].m[k].goos_id == r->id) {
				pi = i;
				m = st->verify_member;
				rc = gha_ps_probe_result(st, k, (int)r->result, r->sent_ms,
						now_ms, (long)time(NULL), &ev);
				res[0] = st->verify_result[0];
				res[1] = st->verify_result[1];
				ms = st->mstate[m];
				break;
			}
		}
	}
	lock_release(&gha_root->lock);
	if(pi < 0)
		return;
	if(rc == GHA_VR_SWITCHED) {
		emit(p, pi, &ev);
	} else if(rc == GHA_VR_REFUSED || rc == GHA_VR_EXPIRED) {
		const gha_pair_t *pr = &p->pairs[pi];
		LM_NOTICE("SIP Server pair '%.*s': request from the %s %.*s not "
				  "confirmed (%s; probes after it: %s %s, %s %s; %s state "
				  "%s): no switchover\n",
				pr->name.len, pr->name.s, gha_role_name(m), pr->m[m].uri.len,
				pr->m[m].uri.s,
				rc == GHA_VR_EXPIRED ? "no result within the window"
									 : "rule not met",
				gha_role_name(m), gha_mstate_name(res[m]), gha_role_name(1 - m),
				gha_mstate_name(res[1 - m]), gha_role_name(m),
				gha_mstate_name(ms));
	}
}

int gha_operator_switchover(gha_pool_t *p, int pi)
{
	gha_pair_events_t ev;
	int rc;

	lock_get(&gha_root->lock);
	rc = gha_ps_switchover(&p->pairs[pi].st, (long)time(NULL), &ev);
	lock_release(&gha_root->lock);
	if(rc == 0)
		emit(p, pi, &ev);
	return rc;
}

int gha_relay_failed(gha_pool_t *p, int pi, int member, int timeout)
{
	gha_pair_events_t ev;
	gha_pair_t *pr = &p->pairs[pi];
	int to;

	memset(&ev, 0, sizeof(ev));
	gha_goos.report_failure(pr->m[member].goos_id);
	lock_get(&gha_root->lock);
	if(timeout) {
		gha_grace_relay_failed(&pr->st, member, gha_now_ms());
		to = gha_ps_relay_failed(&pr->st, member, (long)time(NULL), &ev);
	} else {
		/* a 503 to a request: retry elsewhere, but the member answers */
		to = 1 - member;
		if(pr->st.mstate[to] != GHA_MS_ACTIVE)
			to = -1;
	}
	lock_release(&gha_root->lock);
	if(ev.switched)
		emit(p, pi, &ev);
	return to;
}

int gha_grace_retry_member(gha_pool_t *p, int pi, int member, int timeout)
{
	int to;

	if(gha_down_grace <= 0)
		return -1;
	lock_get(&gha_root->lock);
	to = gha_grace_retry(
			&p->pairs[pi].st, member, timeout, gha_now_ms(), gha_down_grace);
	lock_release(&gha_root->lock);
	return to;
}

int gha_grace_target(const gha_pair_t *pr)
{
	gha_pair_state_t s;
	int k;

	/* the request path: one load while no grace is open */
	if(gha_down_grace <= 0
			|| __atomic_load_n(&pr->st.g_open_ms, __ATOMIC_RELAXED) <= 0)
		return -1;
	s.active = gha_active(pr);
	s.g_open_ms = __atomic_load_n(&pr->st.g_open_ms, __ATOMIC_RELAXED);
	for(k = 0; k < 2; k++) {
		s.mstate[k] = gha_mstate(pr, k);
		s.g_fail_ms[k] =
				__atomic_load_n(&pr->st.g_fail_ms[k], __ATOMIC_RELAXED);
	}
	return gha_grace_member(&s, gha_now_ms(), gha_down_grace);
}

void gha_pair_copy(gha_pool_t *p, int pi, gha_pair_state_t *out)
{
	lock_get(&gha_root->lock);
	*out = p->pairs[pi].st;
	lock_release(&gha_root->lock);
}

void gha_fs_copy(gha_pool_t *p, int fi, int *state, long *since)
{
	lock_get(&gha_root->lock);
	*state = p->fs[fi].state;
	*since = p->fs[fi].since;
	lock_release(&gha_root->lock);
}

/* ---- loading and publishing ---- */

static void release_ids(gha_pool_t *p)
{
	int i, k;

	for(i = 0; i < p->npairs; i++)
		for(k = 0; k < 2; k++)
			if(p->pairs[i].m[k].goos_id >= 0) {
				gha_goos.release_target(p->pairs[i].m[k].goos_id);
				p->pairs[i].m[k].goos_id = -1;
			}
	for(i = 0; i < p->nfs; i++)
		if(p->fs[i].m.goos_id >= 0) {
			gha_goos.release_target(p->fs[i].m.goos_id);
			p->fs[i].m.goos_id = -1;
		}
}

static int register_one(gha_member_t *m, char *msg, int msglen)
{
	char why[256];

	m->goos_id =
			gha_goos.register_target_err(&m->dst, NULL, why, (int)sizeof(why));
	if(m->goos_id < 0) {
		snprintf(msg, (size_t)msglen,
				"genesys_oos refused target %.*s (line %d): %s", m->dst.len,
				m->dst.s, m->line, why);
		return -1;
	}
	return 0;
}

static int register_ids(gha_pool_t *p, char *msg, int msglen)
{
	int i, k;

	for(i = 0; i < p->npairs; i++)
		for(k = 0; k < 2; k++)
			if(register_one(&p->pairs[i].m[k], msg, msglen) < 0)
				goto error;
	for(i = 0; i < p->nfs; i++)
		if(register_one(&p->fs[i].m, msg, msglen) < 0)
			goto error;
	return 0;
error:
	release_ids(p);
	return -1;
}

static int same_dst(const gha_member_t *a, const gha_member_t *b)
{
	return a->dst.len == b->dst.len
		   && memcmp(a->dst.s, b->dst.s, (size_t)a->dst.len) == 0;
}

/* carry runtime state over from old to np (under the lock) */
static void carry_state(gha_pool_t *np, gha_pool_t *old, const int *ms,
		const int *fss, long now)
{
	int i, j, k, o;
	gha_pair_events_t ev;

	for(i = 0; i < np->npairs; i++) {
		gha_pair_t *n = &np->pairs[i];
		gha_pair_t *op = NULL;
		j = old ? gha_pool_find_pair(old, n->name.s, n->name.len) : -1;
		if(j >= 0)
			op = &old->pairs[j];
		if(op && same_dst(&op->m[0], &n->m[0])
				&& same_dst(&op->m[1], &n->m[1])) {
			n->st = op->st;
			n->n_new = op->n_new;
			n->n_rejected = op->n_rejected;
			n->n_indialog = op->n_indialog;
			n->n_failover = op->n_failover;
			n->n_grace = op->n_grace;
			continue;
		}
		/* new pair or changed members: start from the probe states */
		for(k = 0; k < 2; k++) {
			int st = ms[2 * i + k];
			if(op) {
				for(o = 0; o < 2; o++)
					if(same_dst(&op->m[o], &n->m[k])) {
						st = op->st.mstate[o];
						if(o == op->st.active)
							n->st.active = k;
					}
			}
			gha_ps_member_changed(&n->st, k, st, now, &ev);
		}
	}
	for(i = 0; i < np->nfs; i++) {
		np->fs[i].state = fss[i];
		for(j = 0; old && j < old->nfs; j++)
			if(same_dst(&old->fs[j].m, &np->fs[i].m)) {
				np->fs[i].state = old->fs[j].state;
				np->fs[i].since = old->fs[j].since;
			}
	}
}

/* build, register, publish; 0 ok or an event id (40003/40005/40000) */
static int load_and_publish(char *msg, int msglen)
{
	gha_build_opts_t o;
	gha_pool_t *np = NULL, *old;
	gha_load_rc_t rc;
	char own[256], serving[GHA_NAME_MAX + 1];
	int *ms = NULL, *fss = NULL, i, k, st;
	long now = (long)time(NULL);

	memset(&o, 0, sizeof(o));
	snprintf(own, sizeof(own), "%.*s", gha_own_address.len,
			gha_own_address.s ? gha_own_address.s : "");
	snprintf(serving, sizeof(serving), "%.*s", gha_serving.len,
			gha_serving.s ? gha_serving.s : "");
	o.own_address = own[0] ? own : NULL;
	o.serving = serving[0] ? serving : NULL;
	o.now = now;
	rc = gha_xml_load(gha_pool_file.s,
			gha_schema_file.len > 0 ? gha_schema_file.s : NULL, gha_xsd_text,
			(int)sizeof(gha_xsd_text) - 1, &o, &shm_allocator, &np, msg,
			msglen);
	if(rc != GHA_LOAD_OK)
		return rc == GHA_LOAD_NOMEM ? GHA_LOAD_CONFIG : (int)rc;
	if(register_ids(np, msg, msglen) < 0) {
		gha_pool_free(np, &shm_allocator);
		return GHA_LOAD_CONFIG;
	}
	/* the probe states of the targets (read before taking our lock) */
	ms = pkg_malloc(sizeof(int) * (size_t)(2 * np->npairs + np->nfs + 1));
	if(ms == NULL) {
		PKG_MEM_ERROR;
		release_ids(np);
		gha_pool_free(np, &shm_allocator);
		snprintf(msg, (size_t)msglen, "out of pkg memory");
		return GHA_LOAD_CONFIG;
	}
	fss = ms + 2 * np->npairs;
	for(i = 0; i < np->npairs; i++)
		for(k = 0; k < 2; k++)
			ms[2 * i + k] = (int)gha_goos.get_state(np->pairs[i].m[k].goos_id);
	for(i = 0; i < np->nfs; i++)
		fss[i] = (int)gha_goos.get_state(np->fs[i].m.goos_id);
	np->refcnt = 1; /* the published reference */

	lock_get(&gha_root->lock);
	old = gha_root->cur;
	carry_state(np, old, ms, fss, now);
	np->generation = gha_root->generation + 1;
	gha_root->cur = np;
	__atomic_store_n(&gha_root->generation, np->generation, __ATOMIC_RELEASE);
	lock_release(&gha_root->lock);

	if(old) {
		release_ids(old);
		snap_put(old);
	}
	/* changes that raced with the swap went to the old snapshot */
	for(i = 0; i < np->npairs; i++)
		for(k = 0; k < 2; k++) {
			st = (int)gha_goos.get_state(np->pairs[i].m[k].goos_id);
			if(st != gha_mstate(&np->pairs[i], k))
				gha_member_state(np->pairs[i].m[k].goos_id, st);
		}
	for(i = 0; i < np->nfs; i++) {
		st = (int)gha_goos.get_state(np->fs[i].m.goos_id);
		if(st != np->fs[i].state)
			gha_member_state(np->fs[i].m.goos_id, st);
	}
	pkg_free(ms);
	snprintf(msg, (size_t)msglen,
			"pool %.*s loaded: %d SIP Server pairs, %d feature servers, "
			"%d proxies (generation %u)",
			np->file.len, np->file.s, np->npairs, np->nfs, np->nproxies,
			np->generation);
	return 0;
}

int gha_reload(char *msg, int msglen)
{
	int rc, zero = 0;

	if(gha_pool_file.len <= 0) {
		snprintf(msg, (size_t)msglen, "no pool_file configured");
		return GHA_LOAD_CONFIG;
	}
	if(!__atomic_compare_exchange_n(&gha_root->reloading, &zero, 1, 0,
			   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		snprintf(msg, (size_t)msglen, "another reload is running");
		return -1;
	}
	rc = load_and_publish(msg, msglen);
	if(rc == 0) {
		counter_inc(gha_cnt.reloads);
		LM_NOTICE("reload: %s\n", msg);
	} else {
		counter_inc(gha_cnt.reload_errors);
		LM_ERR("%d %s: %s; reload refused, the running pool is kept\n", rc,
				event_name(rc), msg);
	}
	__atomic_store_n(&gha_root->reloading, 0, __ATOMIC_RELEASE);
	return rc;
}

static int lookup_route(str *name)
{
	int rt = route_lookup(&event_rt, name->s);
	if(rt >= 0 && event_rt.rlist[rt] == NULL)
		rt = -1;
	return rt;
}

/* what the lexer makes of event_route[genesys_ha:...] */
static int mangled_route(str *name)
{
	char *mangled = name->s + sizeof("genesys-") - 1; /* "ha:..." */

	if(route_lookup(&event_rt, mangled) < 0)
		return 0;
	LM_ERR("event_route[genesys_%s] cannot work: Kamailio's config parser "
		   "does not allow '_' before ':' in event route names; name it "
		   "event_route[%.*s]\n",
			mangled, name->len, name->s);
	return 1;
}

int gha_state_init(void)
{
	char msg[GHA_ERR_MAX + 128];
	int rc;

	if(counter_register_array("genesys_ha", gha_cnt_defs) < 0) {
		LM_ERR("cannot register the statistics\n");
		return -1;
	}
	gha_root = shm_malloc(sizeof(*gha_root));
	if(gha_root == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	memset(gha_root, 0, sizeof(*gha_root));
	if(lock_init(&gha_root->lock) == NULL) {
		LM_ERR("cannot initialize the lock\n");
		shm_free(gha_root);
		gha_root = NULL;
		return -1;
	}
	gha_root->started = (long)time(NULL);
	if(mangled_route(&evname_switchover) || mangled_route(&evname_down)
			|| mangled_route(&evname_up))
		return -1;
	evrt_switchover = lookup_route(&evname_switchover);
	evrt_down = lookup_route(&evname_down);
	evrt_up = lookup_route(&evname_up);
	if(gha_goos.subscribe(goos_cb, NULL) < 0) {
		LM_ERR("cannot subscribe to genesys_oos state changes\n");
		return -1;
	}
	if(gha_goos.subscribe_results(gha_result_cb, NULL) < 0) {
		LM_ERR("cannot subscribe to genesys_oos probe results\n");
		return -1;
	}
	if(gha_pool_file.len <= 0) {
		LM_WARN("pool_file is not set: no SIP Server pairs, the ha_select "
				"functions return -3\n");
		return 0;
	}
	rc = load_and_publish(msg, sizeof(msg));
	if(rc != 0) {
		LM_ERR("%d %s: %s\n", rc, event_name(rc), msg);
		return -1;
	}
	{
		gha_pool_t *p = gha_root->cur;
		int si = gha_serving_index(p);
		str site;
		gha_own_site(p, &site);
		LM_NOTICE("40004 SPR_PROXY_INITIALIZED: %s; serving SIP Server "
				  "'%.*s', site '%.*s'\n",
				msg, si >= 0 ? p->pairs[si].name.len : 6,
				si >= 0 ? p->pairs[si].name.s : "(none)", site.len,
				site.s ? site.s : "");
	}
	return 0;
}

void gha_state_destroy(void)
{
	if(gha_root == NULL)
		return;
	/* other processes are gone: free the published snapshot */
	if(gha_root->cur) {
		gha_pool_free(gha_root->cur, &shm_allocator);
		gha_root->cur = NULL;
	}
	lock_destroy(&gha_root->lock);
	shm_free(gha_root);
	gha_root = NULL;
}
