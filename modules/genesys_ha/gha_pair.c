/*
 * genesys_ha module: pair state machine and load-balancing selection
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: pure pair logic (see gha_pair.h for the rules)
 */

#include <string.h>

#include "common/kg_hash.h"
#include "gha_pair.h"

/* clang-format off */
static const char *mstate_names[] = {
	[GHA_MS_UNKNOWN] = "unknown",
	[GHA_MS_ACTIVE] = "active",
	[GHA_MS_INACTIVE] = "inactive",
	[GHA_MS_DOWN] = "down",
};

static const char *pstate_names[] = {
	[GHA_PS_UNKNOWN] = "probing",
	[GHA_PS_UP] = "up",
	[GHA_PS_INACTIVE] = "inactive",
	[GHA_PS_DOWN] = "out-of-service",
	[GHA_PS_GRACE] = "grace",
};

static const char *trigger_names[] = {
	[GHA_TRIG_NONE] = "none",
	[GHA_TRIG_NO_ANSWER] = "no-answer",
	[GHA_TRIG_BACKUP_REQUEST] = "request-from-backup",
	[GHA_TRIG_OPERATOR] = "operator",
	[GHA_TRIG_RELAY_FAILURE] = "relay-failure",
	[GHA_TRIG_RECOVERY] = "recovery",
	[GHA_TRIG_PEER] = "peer",
};
/* clang-format on */

const char *gha_mstate_name(int s)
{
	if(s < 0 || s > GHA_MS_DOWN)
		return "invalid";
	return mstate_names[s];
}

const char *gha_pstate_name(int s)
{
	if(s < 0 || s > GHA_PS_GRACE)
		return "invalid";
	return pstate_names[s];
}

const char *gha_trigger_name(int t)
{
	if(t < 0 || t > GHA_TRIG_PEER)
		return "invalid";
	return trigger_names[t];
}

const char *gha_role_name(int member)
{
	return member == GHA_PRIMARY ? "primary" : "backup";
}

static int answers(int ms)
{
	return ms == GHA_MS_ACTIVE || ms == GHA_MS_INACTIVE;
}

static int compute_pstate(const gha_pair_state_t *st)
{
	switch(st->mstate[st->active]) {
		case GHA_MS_ACTIVE:
			return GHA_PS_UP;
		case GHA_MS_INACTIVE:
			return GHA_PS_INACTIVE;
		case GHA_MS_DOWN:
			return GHA_PS_DOWN;
		default:
			return GHA_PS_UNKNOWN;
	}
}

void gha_ps_init(gha_pair_state_t *st, long now)
{
	memset(st, 0, sizeof(*st));
	st->active = GHA_PRIMARY;
	st->mstate[0] = st->mstate[1] = GHA_MS_UNKNOWN;
	st->msince[0] = st->msince[1] = now;
	st->pstate = GHA_PS_UNKNOWN;
	st->psince = now;
	st->verify_member = -1;
}

static void ev_begin(const gha_pair_state_t *st, gha_pair_events_t *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->old_pstate = st->pstate;
	ev->new_pstate = st->pstate;
	ev->from = ev->to = st->active;
}

static void do_switch(gha_pair_state_t *st, int to, int trigger, long now,
		gha_pair_events_t *ev)
{
	ev->switched = 1;
	ev->from = st->active;
	ev->to = to;
	ev->trigger = trigger;
	st->sw_from = st->active;
	st->sw_to = to;
	st->sw_time = now;
	st->sw_trigger = trigger;
	st->active = to;
	st->n_switchovers++;
	st->verify_member = -1;
}

static void ev_end(gha_pair_state_t *st, long now, gha_pair_events_t *ev)
{
	int np = compute_pstate(st);

	if(np != st->pstate) {
		st->pstate = np;
		st->psince = now;
	}
	ev->new_pstate = np;
	if(np == GHA_PS_DOWN && ev->old_pstate != GHA_PS_DOWN) {
		ev->went_down = 1;
		st->n_down++;
	}
	if(ev->old_pstate == GHA_PS_DOWN && np != GHA_PS_DOWN)
		ev->went_up = 1;
}

void gha_ps_member_changed(gha_pair_state_t *st, int member, int mstate,
		long now, gha_pair_events_t *ev)
{
	int cur, oth;

	ev_begin(st, ev);
	if(member < 0 || member > 1 || mstate < GHA_MS_UNKNOWN
			|| mstate > GHA_MS_DOWN)
		return;
	if(st->mstate[member] == mstate)
		return;
	st->mstate[member] = mstate;
	st->msince[member] = now;
	cur = st->active;
	oth = 1 - cur;
	if(st->mstate[cur] == GHA_MS_DOWN && answers(st->mstate[oth])) {
		do_switch(st, oth,
				st->pstate == GHA_PS_DOWN ? GHA_TRIG_RECOVERY
										  : GHA_TRIG_NO_ANSWER,
				now, ev);
	}
	ev_end(st, now, ev);
}

int gha_ps_request_from(gha_pair_state_t *st, int member, int64_t now_ms)
{
	if(member < 0 || member > 1 || member == st->active)
		return GHA_RQ_ACTIVE;
	if(st->verify_member == member && now_ms <= st->verify_until_ms)
		return GHA_RQ_PENDING; /* probes after the first request decide */
	st->verify_member = member;
	st->verify_req_ms = now_ms;
	st->verify_until_ms = now_ms + GHA_VERIFY_WINDOW_MS;
	st->verify_result[0] = st->verify_result[1] = GHA_MS_UNKNOWN;
	return GHA_RQ_VERIFY;
}

int gha_ps_probe_result(gha_pair_state_t *st, int member, int result,
		int64_t sent_ms, int64_t now_ms, long now, gha_pair_events_t *ev)
{
	int req = st->verify_member, act = st->active;

	ev_begin(st, ev);
	if(req < 0 || member < 0 || member > 1 || result <= GHA_MS_UNKNOWN
			|| result > GHA_MS_DOWN)
		return GHA_VR_NONE;
	if(req == act || now_ms > st->verify_until_ms) {
		/* switched meanwhile by another rule, or too late */
		st->verify_member = -1;
		return req == act ? GHA_VR_NONE : GHA_VR_EXPIRED;
	}
	if(sent_ms < st->verify_req_ms)
		return GHA_VR_WAIT; /* sent before the request: proves nothing */
	if(st->verify_result[member] == GHA_MS_UNKNOWN)
		st->verify_result[member] = result;
	if(st->verify_result[req] == GHA_MS_UNKNOWN
			|| st->verify_result[act] == GHA_MS_UNKNOWN)
		return GHA_VR_WAIT;
	st->verify_member = -1;
	/* the member must also be ACTIVE for genesys_oos (its hysteresis,
	 * ok_threshold, or a forced state): else the pair would switch to a
	 * member it still counts as down */
	if(st->verify_result[req] != GHA_MS_ACTIVE
			|| st->verify_result[act] == GHA_MS_ACTIVE
			|| st->mstate[req] != GHA_MS_ACTIVE)
		return GHA_VR_REFUSED;
	do_switch(st, req, GHA_TRIG_BACKUP_REQUEST, now, ev);
	ev_end(st, now, ev);
	return GHA_VR_SWITCHED;
}

int gha_ps_adopt(gha_pair_state_t *st, int to, int trigger, long now,
		gha_pair_events_t *ev)
{
	ev_begin(st, ev);
	if((to != GHA_PRIMARY && to != GHA_BACKUP) || st->active == to)
		return 0;
	do_switch(st, to, trigger, now, ev);
	ev_end(st, now, ev);
	return 1;
}

int gha_ps_switchover(gha_pair_state_t *st, long now, gha_pair_events_t *ev)
{
	int oth = 1 - st->active;

	ev_begin(st, ev);
	if(st->mstate[oth] == GHA_MS_DOWN)
		return -1;
	do_switch(st, oth, GHA_TRIG_OPERATOR, now, ev);
	ev_end(st, now, ev);
	return 0;
}

/* ---- down grace ---- */

static int any_active(const gha_pair_state_t *st)
{
	return st->mstate[0] == GHA_MS_ACTIVE || st->mstate[1] == GHA_MS_ACTIVE;
}

void gha_grace_member_changed(
		gha_pair_state_t *st, int member, int old, long now_ms)
{
	int ms;

	if(member < 0 || member > 1)
		return;
	ms = st->mstate[member];
	if(ms == old)
		return;
	if(now_ms <= 0)
		now_ms = 1;
	if(ms == GHA_MS_DOWN) {
		st->g_fail_ms[member] = now_ms;
		if(answers(old) && !any_active(st))
			st->g_open_ms = now_ms;
	} else if(answers(ms)) {
		/* a member answers a probe: what is known now wins */
		st->g_open_ms = 0;
	}
}

void gha_grace_relay_failed(gha_pair_state_t *st, int member, long now_ms)
{
	if(member < 0 || member > 1)
		return;
	st->g_fail_ms[member] = now_ms > 0 ? now_ms : 1;
}

int gha_grace_member(const gha_pair_state_t *st, long now_ms, long grace_ms)
{
	long f0, f1;

	if(grace_ms <= 0 || st->g_open_ms <= 0 || any_active(st))
		return -1;
	if(now_ms - st->g_open_ms >= grace_ms || now_ms < st->g_open_ms)
		return -1;
	f0 = st->g_fail_ms[GHA_PRIMARY];
	f1 = st->g_fail_ms[GHA_BACKUP];
	if(f0 != f1)
		return f0 < f1 ? GHA_PRIMARY : GHA_BACKUP;
	return 1 - st->active;
}

int gha_grace_retry(const gha_pair_state_t *st, int failed, int timeout,
		long now_ms, long grace_ms)
{
	if(failed < 0 || failed > 1 || grace_ms <= 0)
		return -1;
	if(timeout || gha_grace_member(st, now_ms, grace_ms) >= 0)
		return 1 - failed;
	return -1;
}

int gha_ps_relay_failed(
		gha_pair_state_t *st, int member, long now, gha_pair_events_t *ev)
{
	int oth;

	ev_begin(st, ev);
	if(member < 0 || member > 1)
		return -1;
	if(member != st->active) {
		/* someone switched already: retry on the active member if alive */
		return st->mstate[st->active] == GHA_MS_ACTIVE ? st->active : -1;
	}
	oth = 1 - member;
	if(st->mstate[oth] != GHA_MS_ACTIVE)
		return -1;
	do_switch(st, oth, GHA_TRIG_RELAY_FAILURE, now, ev);
	ev_end(st, now, ev);
	return oth;
}

int gha_lb_pick(int n, const int *avail, int alg, unsigned int *rr_counter,
		unsigned int rnd)
{
	int i, k, navail = 0;

	for(i = 0; i < n; i++)
		if(avail[i])
			navail++;
	if(navail == 0)
		return -1;
	if(alg == GHA_LB_RANDOM) {
		k = (int)(rnd % (unsigned int)navail);
		for(i = 0; i < n; i++) {
			if(avail[i] && k-- == 0)
				return i;
		}
		return -1;
	}
	/* the k-th available candidate: an even share whatever is down */
	k = (int)((*rr_counter)++ % (unsigned int)navail);
	for(i = 0; i < n; i++) {
		if(avail[i] && k-- == 0)
			return i;
	}
	return -1;
}

uint32_t gha_lb_hash(const char *s, int len)
{
	return kg_fnv1a(KG_FNV_SEED, s, len > 0 ? (size_t)len : 0);
}

/* the score of (key, candidate): a 64-bit finalizer (splitmix64) of both,
 * so every bit of each changes about half of the score's bits */
static uint64_t hrw_score(uint32_t key, uint32_t id)
{
	uint64_t x = ((uint64_t)key << 32) | id;

	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

int gha_lb_pick_hash(int n, const int *avail, const uint32_t *ids, uint32_t key)
{
	uint64_t sc, best = 0;
	int i, pick = -1;

	for(i = 0; i < n; i++) {
		if(!avail[i])
			continue;
		sc = hrw_score(key, ids[i]);
		if(pick < 0 || sc > best) {
			best = sc;
			pick = i;
		}
	}
	return pick;
}
