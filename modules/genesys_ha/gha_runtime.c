/*
 * genesys_ha module: runtime state of the pairs (changes and emission)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: runtime state of pairs and feature servers
 *
 * Owns every change of the runtime state kept in the slots (gha_slots.h):
 * the genesys_oos callbacks (member state changes, probe results deciding
 * a request verification), requests from a non-active member, failed
 * relays and the down grace, operator switchovers; each one runs the pair
 * state machine (gha_pair.c) under root->lock and emits what it decided
 * (logs, counters, event routes) after releasing it.  Also the lock-taking
 * copies of that state for the RPC commands.  Snapshots, loading and the
 * lock itself: gha_state.c.
 */

#include <string.h>
#include <time.h>

#include "core/dprint.h"

#include "gha_state.h"
#include "gha_pending.h"
#include "gha_events.h"
#include "gha_dmq.h"

/* ---- events: logs and counters here, event routes queued for the
 * genesys_ha event process (gha_events.c); never under the lock ---- */

static void emit(gha_pool_t *p, int pi, const gha_pair_events_t *ev)
{
	const gha_pair_t *pr = &p->pairs[pi];
	const gha_member_t *to = &pr->m[ev->to], *from = &pr->m[ev->from];

	/* a decision of this proxy goes to the pool first (no-op without dmq) */
	gha_dmq_decided(p, pi, ev);
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
	/* the routes run in the genesys_ha event process, never here (tm's
	 * reply lock, genesys_oos's callback) */
	gha_events_push(pr, ev);
}

void gha_emit(gha_pool_t *p, int pi, const gha_pair_events_t *ev)
{
	emit(p, pi, ev);
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
				old = p->pairs[i].slot->st.mstate[k];
				gha_ps_member_changed(
						&p->pairs[i].slot->st, k, new_state, now, &ev);
				gha_grace_member_changed(&p->pairs[i].slot->st, k, old, now_ms);
				if(p->pairs[i].slot->st.g_open_ms == now_ms
						&& gha_down_grace > 0) {
					__atomic_store_n(&gha_root->grace_until_ms,
							now_ms + gha_down_grace, __ATOMIC_RELAXED);
					grace = gha_grace_member(
							&p->pairs[i].slot->st, now_ms, gha_down_grace);
				}
				pi = i;
				break;
			}
		}
	}
	for(i = 0; i < p->nfs; i++) {
		gha_slot_t *s = p->fs[i].slot;
		if(p->fs[i].m.goos_id == goos_id && s->fs_state != new_state) {
			__atomic_store_n(&s->fs_state, new_state, __ATOMIC_RELAXED);
			s->fs_since = now;
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

void gha_goos_cb(const goos_change_t *ch, void *param)
{
	(void)param;
	gha_member_state(ch->id, (int)ch->new_state);
	gha_dmq_member_changed(); /* no-op unless distributed probing */
	/* found dead (not forced down by the operator; remote: by the proxy
	 * of the pool that probes it): nobody waits for it */
	if(ch->new_state == GOOS_DOWN && ch->old_state != GOOS_DOWN
			&& (ch->reason == GOOS_R_TIMEOUT || ch->reason == GOOS_R_TRANSPORT
					|| ch->reason == GOOS_R_REMOTE))
		gha_pending_member_down(ch->id);
}

void gha_request_from(gha_pool_t *p, int pi, int member)
{
	int rc;
	int64_t now_ms = gha_goos.now_ms();
	gha_pair_t *pr = &p->pairs[pi];

	lock_get(&gha_root->lock);
	rc = gha_ps_request_from(&pr->slot->st, member, now_ms);
	if(rc == GHA_RQ_VERIFY
			&& gha_root->verify_until_ms < pr->slot->st.verify_until_ms)
		__atomic_store_n(&gha_root->verify_until_ms,
				pr->slot->st.verify_until_ms, __ATOMIC_RELEASE);
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
void gha_result_cb(const goos_probe_result_t *r, void *param)
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
		st = &p->pairs[i].slot->st;
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
	rc = gha_ps_switchover(&p->pairs[pi].slot->st, (long)time(NULL), &ev);
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
		gha_grace_relay_failed(&pr->slot->st, member, gha_now_ms());
		to = gha_ps_relay_failed(&pr->slot->st, member, (long)time(NULL), &ev);
	} else {
		/* a 503 to a request: retry elsewhere, but the member answers */
		to = 1 - member;
		if(pr->slot->st.mstate[to] != GHA_MS_ACTIVE)
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
	to = gha_grace_retry(&p->pairs[pi].slot->st, member, timeout, gha_now_ms(),
			gha_down_grace);
	lock_release(&gha_root->lock);
	return to;
}

int gha_grace_target(const gha_pair_t *pr)
{
	gha_pair_state_t s;
	int k;

	/* the request path: one load while no grace is open */
	if(gha_down_grace <= 0
			|| __atomic_load_n(&pr->slot->st.g_open_ms, __ATOMIC_RELAXED) <= 0)
		return -1;
	s.active = gha_active(pr);
	s.g_open_ms = __atomic_load_n(&pr->slot->st.g_open_ms, __ATOMIC_RELAXED);
	for(k = 0; k < 2; k++) {
		s.mstate[k] = gha_mstate(pr, k);
		s.g_fail_ms[k] =
				__atomic_load_n(&pr->slot->st.g_fail_ms[k], __ATOMIC_RELAXED);
	}
	return gha_grace_member(&s, gha_now_ms(), gha_down_grace);
}

void gha_pair_copy(gha_pool_t *p, int pi, gha_pair_state_t *out)
{
	lock_get(&gha_root->lock);
	*out = p->pairs[pi].slot->st;
	lock_release(&gha_root->lock);
}

void gha_fs_copy(gha_pool_t *p, int fi, int *state, long *since)
{
	lock_get(&gha_root->lock);
	*state = p->fs[fi].slot->fs_state;
	*since = p->fs[fi].slot->fs_since;
	lock_release(&gha_root->lock);
}
