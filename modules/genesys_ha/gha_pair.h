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
 * \brief genesys_ha :: pure pair logic: which member of a primary/backup
 * SIP Server pair is active, the pair state, and switchovers
 *
 * Rules (issue 4, seeds 000/001/003):
 * - a member "answers" when its probe state is ACTIVE (any final reply but
 *   503) or INACTIVE (503); DOWN = no answer; UNKNOWN = not probed yet;
 * - the active member stays active while it answers or is not probed yet
 *   (first start: the primary); when it goes DOWN and the other member
 *   answers, the other member becomes active (trigger NO_ANSWER);
 * - both members silent: the pair is DOWN (out of service); the first
 *   member to answer again becomes active (pair UP);
 * - active member INACTIVE (503): the pair is INACTIVE (no new dialogs);
 * - a request from the other member (seed 003) never switches by itself
 *   (its source address is trivially forged over UDP): it arms a
 *   verification and both members are probed; the pair switches only when
 *   probes sent after the request show the other member answering (not
 *   503) and the active member not answering or answering 503, within
 *   GHA_VERIFY_WINDOW, and genesys_oos counts the other member ACTIVE
 *   (ok_threshold); any other outcome ends the verification without a
 *   switch (a member answering 503 never becomes active through a
 *   request);
 * - the operator may switch to the other member unless it is DOWN;
 * - a relayed request to the active member that failed switches to the
 *   other member when that one is known ACTIVE.
 * All functions take 'now' (seconds) and never read the clock.
 */

#ifndef _GHA_PAIR_H_
#define _GHA_PAIR_H_

#include <stdint.h>

#define GHA_PRIMARY 0
#define GHA_BACKUP 1

/*! member probe state: same values as goos_state_t */
typedef enum gha_mstate
{
	GHA_MS_UNKNOWN = 0,
	GHA_MS_ACTIVE = 1,
	GHA_MS_INACTIVE = 2,
	GHA_MS_DOWN = 3
} gha_mstate_t;

/*! pair state */
typedef enum gha_pstate
{
	GHA_PS_UNKNOWN = 0,	 /*!< active member not probed yet: routable */
	GHA_PS_UP = 1,		 /*!< active member answers */
	GHA_PS_INACTIVE = 2, /*!< active member answers 503: no new dialogs */
	GHA_PS_DOWN = 3,	 /*!< both members silent: out of service */
	/*! never stored in pstate: what $ha(state) shows for a request routed
	 * in the down grace period (see gha_grace_member()) */
	GHA_PS_GRACE = 4
} gha_pstate_t;

/*! what caused a switchover */
typedef enum gha_trigger
{
	GHA_TRIG_NONE = 0,
	GHA_TRIG_NO_ANSWER = 1,		 /*!< the active member stopped answering */
	GHA_TRIG_BACKUP_REQUEST = 2, /*!< request from the other member, verified */
	GHA_TRIG_OPERATOR = 3,		 /*!< genesys_ha.switchover */
	GHA_TRIG_RELAY_FAILURE = 4,	 /*!< relayed request timed out / failed */
	GHA_TRIG_RECOVERY = 5,		 /*!< pair was down, other member answered */
	GHA_TRIG_PEER = 6			 /*!< decided by another proxy of the pool (DMQ) */
} gha_trigger_t;

/*! seconds a request from the backup keeps a verification armed */
#define GHA_VERIFY_WINDOW 10
#define GHA_VERIFY_WINDOW_MS (GHA_VERIFY_WINDOW * 1000)

typedef struct gha_pair_state
{
	int active;				 /*!< GHA_PRIMARY or GHA_BACKUP */
	int mstate[2];			 /*!< gha_mstate_t */
	long msince[2];			 /*!< last member state change */
	int pstate;				 /*!< gha_pstate_t */
	long psince;			 /*!< last pair state change */
	long g_fail_ms[2];		 /*!< grace: last failure of each member, 0 never */
	long g_open_ms;			 /*!< grace: opened at, 0 closed (ms, > 0) */
	int verify_member;		 /*!< member under verification, -1 none */
	int64_t verify_req_ms;	 /*!< request time (probe clock, ms) */
	int64_t verify_until_ms; /*!< verification deadline (probe clock) */
	int verify_result[2];	 /*!< gha_mstate_t of the first probe of each
								   member sent after the request, 0: none */
	long sw_time;			 /*!< last switchover, 0 never */
	int sw_from, sw_to;		 /*!< members */
	int sw_trigger;			 /*!< gha_trigger_t */
	unsigned long n_switchovers;
	unsigned long n_down; /*!< times the pair went out of service */
} gha_pair_state_t;

/*! what a state machine step produced (for logs, stats, event routes) */
typedef struct gha_pair_events
{
	int switched; /*!< a switchover happened */
	int from, to; /*!< members */
	int trigger;  /*!< gha_trigger_t */
	int old_pstate, new_pstate;
	int went_down; /*!< pair became out of service */
	int went_up;   /*!< pair left the out-of-service state */
} gha_pair_events_t;

void gha_ps_init(gha_pair_state_t *st, long now);

/*! a member's probe state changed */
void gha_ps_member_changed(gha_pair_state_t *st, int member, int mstate,
		long now, gha_pair_events_t *ev);

/*! results of gha_ps_request_from() */
enum
{
	GHA_RQ_ACTIVE = 0, /*!< request from the active member: nothing to do */
	GHA_RQ_VERIFY = 2, /*!< verification armed: probe both members now */
	GHA_RQ_PENDING = 3 /*!< a verification for it is running already */
};

/*! a request arrived from 'member' at now_ms (the probe clock, ms) */
int gha_ps_request_from(gha_pair_state_t *st, int member, int64_t now_ms);

/*! results of gha_ps_probe_result() */
enum
{
	GHA_VR_NONE = 0,	 /*!< no verification for this probe */
	GHA_VR_WAIT = 1,	 /*!< recorded, waiting for the other member's */
	GHA_VR_SWITCHED = 2, /*!< confirmed: switched to the requesting member */
	GHA_VR_REFUSED = 3,	 /*!< both results in, rule not met: no switch */
	GHA_VR_EXPIRED = 4	 /*!< the window passed without both results */
};

/*! a probe of 'member' sent at sent_ms completed with 'result'
 * (gha_mstate_t of that one probe); completes a verification armed by
 * gha_ps_request_from() when the probe was sent after the request */
int gha_ps_probe_result(gha_pair_state_t *st, int member, int result,
		int64_t sent_ms, int64_t now_ms, long now, gha_pair_events_t *ev);

/*! operator switchover to the other member; 0 ok, -1 other member down */
int gha_ps_switchover(gha_pair_state_t *st, long now, gha_pair_events_t *ev);

/*! a decision taken elsewhere (a peer proxy of the pool): 'to' becomes the
 * active member with 'trigger' unless it is already; the pair state then
 * follows this proxy's own probe states.  1 when it switched (ev filled),
 * 0 otherwise */
int gha_ps_adopt(gha_pair_state_t *st, int to, int trigger, long now,
		gha_pair_events_t *ev);

/*! a relayed request to 'member' failed; returns the member to retry on,
 * or -1 when the other member is not known alive */
int gha_ps_relay_failed(
		gha_pair_state_t *st, int member, long now, gha_pair_events_t *ev);

/*! may new dialogs be sent to the pair? */
static inline int gha_ps_routable(const gha_pair_state_t *st)
{
	return st->pstate == GHA_PS_UP || st->pstate == GHA_PS_UNKNOWN;
}

/* ---- down grace (issue 9): no refusal in the pair-down window ----
 *
 * When a pair loses its last member known to answer by a death, the backup
 * is usually being promoted: for a bounded grace period requests are sent
 * to the member most likely to be serving instead of being refused.
 * - the grace opens when a member that answered (active or inactive) goes
 *   down and no member of the pair is active; it closes when a member
 *   answers a probe again (active, or inactive: fresh knowledge wins) and
 *   expires grace_ms after it opened;
 * - a member "fails" when its probe state goes down or a relay to it got no
 *   answer (timeout, transport error); the member most likely to be serving
 *   is the one whose last failure is older (never failed: oldest); equal:
 *   the non-active member.  So after the primary died the backup is tried,
 *   and after a relay to the backup failed the other member is;
 * - a relay that got no answer may be retried on the other member within
 *   the same transaction even when that member is not known alive (grace
 *   enabled), and during the grace also after a 503.
 */

/*! member 'member' changed from probe state 'old' to st->mstate[member]
 * (call after gha_ps_member_changed()) */
void gha_grace_member_changed(
		gha_pair_state_t *st, int member, int old, long now_ms);

/*! a relay to 'member' got no answer (timeout, transport error) */
void gha_grace_relay_failed(gha_pair_state_t *st, int member, long now_ms);

/*! the member to send requests to while the pair is in its down grace,
 * or -1 when it is not (grace_ms <= 0: grace disabled) */
int gha_grace_member(const gha_pair_state_t *st, long now_ms, long grace_ms);

/*! after a relay to 'failed' failed (timeout != 0: no answer, else a 503)
 * and the other member is not known alive: the member to retry on within
 * the transaction, or -1 */
int gha_grace_retry(const gha_pair_state_t *st, int failed, int timeout,
		long now_ms, long grace_ms);

const char *gha_mstate_name(int s);
const char *gha_pstate_name(int s);
const char *gha_trigger_name(int t);
const char *gha_role_name(int member);

/* ---- load balancing (seed 001: random or round-robin within a site;
 * hash: every message of one DN to the same pair) ---- */

enum gha_lb
{
	GHA_LB_ROUND_ROBIN = 0,
	GHA_LB_RANDOM = 1,
	GHA_LB_HASH = 2
};

/*! pick one of n candidates whose avail[i] is non-zero; rr_counter is
 * advanced for round-robin, rnd is a random number for random;
 * returns the index or -1 when none is available */
int gha_lb_pick(int n, const int *avail, int alg, unsigned int *rr_counter,
		unsigned int rnd);

/*! 32-bit hash (FNV-1a) of a key or of a candidate's name */
uint32_t gha_lb_hash(const char *s, int len);

/*! hash selection, rendezvous (highest random weight) hashing: among the n
 * candidates whose avail[i] is non-zero, the one with the highest score of
 * (key, ids[i]) (ids: hashes of the candidates' names, so the choice does
 * not depend on their order or on a reload).  A key keeps its candidate
 * while that one is available, whatever else comes and goes; when it goes,
 * only its keys move, spread over the others, and they come back with it.
 * Returns the index or -1 when none is available. */
int gha_lb_pick_hash(
		int n, const int *avail, const uint32_t *ids, uint32_t key);

#endif
