/* cmocka tests: genesys_ha pair state machine and lb selection (gha_pair.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "genesys_ha/gha_pair.h"

#define P GHA_PRIMARY
#define B GHA_BACKUP

static void set(
		gha_pair_state_t *st, int m, int s, long now, gha_pair_events_t *ev)
{
	gha_ps_member_changed(st, m, s, now, ev);
}

/* primary active, backup in mstate b; both probed at 1 s */
static void two(gha_pair_state_t *st, int b, gha_pair_events_t *ev)
{
	gha_ps_init(st, 0);
	set(st, P, GHA_MS_ACTIVE, 1, ev);
	set(st, B, b, 1, ev);
}

/* The state-machine cases below share their set-up (two(), verifying(),
 * gtwo()) but each spells out its own sequence of events and results:
 * the sequence is the scenario under test, so the alike lines stay. */
static void test_first_start_primary_active(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;
	(void)state;
	gha_ps_init(&st, 100);
	assert_int_equal(st.active, P);
	assert_int_equal(st.pstate, GHA_PS_UNKNOWN);
	assert_true(gha_ps_routable(&st));
	/* the backup answers first: the primary (not probed yet) stays */
	set(&st, B, GHA_MS_ACTIVE, 101, &ev);
	assert_false(ev.switched);
	assert_int_equal(st.active, P);
	set(&st, P, GHA_MS_ACTIVE, 102, &ev);
	assert_false(ev.switched);
	assert_int_equal(st.active, P);
	assert_int_equal(st.pstate, GHA_PS_UP);
	assert_int_equal(st.psince, 102);
}

static void test_primary_stops_answering(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;
	(void)state;
	two(&st, GHA_MS_ACTIVE, &ev);
	set(&st, P, GHA_MS_DOWN, 10, &ev);
	assert_true(ev.switched);
	assert_int_equal(ev.from, P);
	assert_int_equal(ev.to, B);
	assert_int_equal(ev.trigger, GHA_TRIG_NO_ANSWER);
	assert_false(ev.went_down);
	assert_int_equal(st.active, B);
	assert_int_equal(st.pstate, GHA_PS_UP);
	assert_int_equal(st.sw_time, 10);
	assert_int_equal(st.n_switchovers, 1);
	/* the old primary answers again: both answer, the backup stays
	 * (it became active most recently) */
	set(&st, P, GHA_MS_ACTIVE, 20, &ev);
	assert_false(ev.switched);
	assert_int_equal(st.active, B);
}

static void test_primary_down_backup_silent_then_backup_answers(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;
	(void)state;
	two(&st, GHA_MS_DOWN, &ev); /* a Genesys backup ignores SIP */
	assert_int_equal(st.pstate, GHA_PS_UP);
	set(&st, P, GHA_MS_DOWN, 5, &ev);
	assert_false(ev.switched);
	assert_true(ev.went_down);
	assert_int_equal(st.pstate, GHA_PS_DOWN);
	assert_false(gha_ps_routable(&st));
	assert_int_equal(st.n_down, 1);
	/* the backup is promoted and answers */
	set(&st, B, GHA_MS_ACTIVE, 8, &ev);
	assert_true(ev.switched);
	assert_int_equal(ev.trigger, GHA_TRIG_RECOVERY);
	assert_true(ev.went_up);
	assert_int_equal(st.active, B);
	assert_int_equal(st.pstate, GHA_PS_UP);
}

static void test_both_down_active_recovers(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;
	(void)state;
	gha_ps_init(&st, 0);
	set(&st, P, GHA_MS_DOWN, 1, &ev);
	assert_true(ev.went_down);
	set(&st, B, GHA_MS_DOWN, 2, &ev);
	assert_false(ev.went_down); /* only once */
	set(&st, P, GHA_MS_ACTIVE, 3, &ev);
	assert_false(ev.switched);
	assert_true(ev.went_up);
	assert_int_equal(st.active, P);
}

static void test_inactive_503(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;
	(void)state;
	two(&st, GHA_MS_DOWN, &ev);
	set(&st, P, GHA_MS_INACTIVE, 2, &ev);
	assert_false(ev.switched);
	assert_int_equal(st.pstate, GHA_PS_INACTIVE);
	assert_int_equal(ev.new_pstate, GHA_PS_INACTIVE);
	assert_false(gha_ps_routable(&st));
	/* inactive member still answers: no switch when backup answers too */
	set(&st, B, GHA_MS_ACTIVE, 3, &ev);
	assert_false(ev.switched);
	/* and it becomes active again */
	set(&st, P, GHA_MS_ACTIVE, 4, &ev);
	assert_int_equal(st.pstate, GHA_PS_UP);
}

/* a probe result of member m sent at sent_ms, seen at now_ms */
static int res(gha_pair_state_t *st, int m, int r, int64_t sent_ms,
		int64_t now_ms, gha_pair_events_t *ev)
{
	return gha_ps_probe_result(st, m, r, sent_ms, now_ms, now_ms / 1000, ev);
}

/* two(), then a request from the backup at 5000 ms arms a verification */
static void verifying(gha_pair_state_t *st, int b, gha_pair_events_t *ev)
{
	two(st, b, ev);
	assert_int_equal(gha_ps_request_from(st, B, 5000), GHA_RQ_VERIFY);
}

static void test_request_from_active_member(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;
	(void)state;
	two(&st, GHA_MS_ACTIVE, &ev);
	assert_int_equal(gha_ps_request_from(&st, P, 2000), GHA_RQ_ACTIVE);
	assert_int_equal(st.verify_member, -1);
	assert_int_equal(res(&st, P, GHA_MS_DOWN, 2100, 2200, &ev), GHA_VR_NONE);
	assert_int_equal(gha_ps_request_from(&st, 7, 2000), GHA_RQ_ACTIVE);
}

static void test_request_never_switches_by_itself(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;
	(void)state;
	/* the backup is known to answer: still no switch at the request (was:
	 * one forged datagram flipped the pair) */
	verifying(&st, GHA_MS_ACTIVE, &ev);
	assert_int_equal(st.active, P);
	assert_int_equal(st.n_switchovers, 0);
	/* more requests while it runs: no new probes, the first one decides */
	assert_int_equal(gha_ps_request_from(&st, B, 6000), GHA_RQ_PENDING);
	assert_true(st.verify_req_ms == 5000);
	/* after the window a request arms a new verification */
	assert_int_equal(
			gha_ps_request_from(&st, B, 5000 + GHA_VERIFY_WINDOW_MS + 1),
			GHA_RQ_VERIFY);
}

static void test_request_forged_both_answer_no_flip(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;
	(void)state;
	verifying(&st, GHA_MS_ACTIVE, &ev);
	assert_int_equal(res(&st, B, GHA_MS_ACTIVE, 5001, 5010, &ev), GHA_VR_WAIT);
	assert_false(ev.switched);
	/* the primary answers too: nothing to switch for */
	assert_int_equal(
			res(&st, P, GHA_MS_ACTIVE, 5001, 5012, &ev), GHA_VR_REFUSED);
	assert_false(ev.switched);
	assert_int_equal(st.active, P);
	assert_int_equal(st.verify_member, -1);
	/* later results do nothing */
	assert_int_equal(res(&st, P, GHA_MS_DOWN, 6000, 6100, &ev), GHA_VR_NONE);
	assert_int_equal(st.active, P);
}

static void test_request_forged_backup_503_never_active(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;
	(void)state;
	/* was: the pair switched to the 503 backup and became inactive */
	verifying(&st, GHA_MS_INACTIVE, &ev);
	assert_int_equal(
			res(&st, B, GHA_MS_INACTIVE, 5001, 5010, &ev), GHA_VR_WAIT);
	assert_int_equal(
			res(&st, P, GHA_MS_ACTIVE, 5001, 5012, &ev), GHA_VR_REFUSED);
	assert_int_equal(st.active, P);
	assert_int_equal(st.pstate, GHA_PS_UP);
	assert_true(gha_ps_routable(&st));
	/* even with the primary silent: a 503 member never becomes active
	 * through a request */
	assert_int_equal(gha_ps_request_from(&st, B, 7000), GHA_RQ_VERIFY);
	assert_int_equal(res(&st, P, GHA_MS_DOWN, 7001, 7400, &ev), GHA_VR_WAIT);
	assert_int_equal(
			res(&st, B, GHA_MS_INACTIVE, 7001, 7010, &ev), GHA_VR_REFUSED);
	assert_false(ev.switched);
	assert_int_equal(st.active, P);
}

static void test_request_forged_silent_backup(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;
	(void)state;
	verifying(&st, GHA_MS_DOWN, &ev);
	assert_int_equal(res(&st, P, GHA_MS_ACTIVE, 5001, 5002, &ev), GHA_VR_WAIT);
	assert_int_equal(res(&st, B, GHA_MS_DOWN, 5001, 5401, &ev), GHA_VR_REFUSED);
	assert_int_equal(st.active, P);
	/* the backup starts answering later (its periodic probe): the normal
	 * rules apply, the request is forgotten */
	set(&st, B, GHA_MS_ACTIVE, 8, &ev);
	assert_false(ev.switched);
	assert_int_equal(st.active, P);
}

static void test_request_genuine_switches(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;
	(void)state;
	/* the primary stopped answering (not detected yet: fail_threshold),
	 * the promoted backup answers and sends a request */
	verifying(&st, GHA_MS_DOWN, &ev);
	/* a probe sent before the request proves nothing */
	assert_int_equal(res(&st, P, GHA_MS_DOWN, 4999, 5300, &ev), GHA_VR_WAIT);
	assert_int_equal(st.verify_result[P], GHA_MS_UNKNOWN);
	/* genesys_oos reports the backup's state change before its result */
	set(&st, B, GHA_MS_ACTIVE, 5, &ev);
	assert_false(ev.switched);
	assert_int_equal(res(&st, B, GHA_MS_ACTIVE, 5000, 5003, &ev), GHA_VR_WAIT);
	assert_false(ev.switched);
	assert_int_equal(
			res(&st, P, GHA_MS_DOWN, 5310, 5710, &ev), GHA_VR_SWITCHED);
	assert_true(ev.switched);
	assert_int_equal(ev.from, P);
	assert_int_equal(ev.to, B);
	assert_int_equal(ev.trigger, GHA_TRIG_BACKUP_REQUEST);
	assert_int_equal(st.active, B);
	assert_int_equal(st.pstate, GHA_PS_UP);
	assert_int_equal(st.sw_time, 5);
	assert_int_equal(st.verify_member, -1);
	/* now the old primary is "the other member" */
	assert_int_equal(gha_ps_request_from(&st, B, 6000), GHA_RQ_ACTIVE);
}

static void test_request_genuine_active_503(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;
	(void)state;
	/* the old primary answers 503 (demoted), the backup answers 200 */
	verifying(&st, GHA_MS_ACTIVE, &ev);
	assert_int_equal(
			res(&st, P, GHA_MS_INACTIVE, 5001, 5002, &ev), GHA_VR_WAIT);
	assert_int_equal(
			res(&st, B, GHA_MS_ACTIVE, 5001, 5003, &ev), GHA_VR_SWITCHED);
	assert_int_equal(st.active, B);
}

static void test_request_backup_not_yet_active_for_goos(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;
	(void)state;
	/* ok_threshold 2: one answer does not make the backup ACTIVE yet; the
	 * pair must not switch to a member it counts as down */
	verifying(&st, GHA_MS_DOWN, &ev);
	assert_int_equal(res(&st, B, GHA_MS_ACTIVE, 5001, 5002, &ev), GHA_VR_WAIT);
	assert_int_equal(res(&st, P, GHA_MS_DOWN, 5001, 5401, &ev), GHA_VR_REFUSED);
	assert_int_equal(st.active, P);
}

static void test_request_verification_expires(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;
	int64_t late = 5000 + GHA_VERIFY_WINDOW_MS + 1;
	(void)state;
	verifying(&st, GHA_MS_ACTIVE, &ev);
	assert_int_equal(res(&st, B, GHA_MS_ACTIVE, 5001, 5002, &ev), GHA_VR_WAIT);
	/* the primary's result comes after the window: no switch */
	assert_int_equal(
			res(&st, P, GHA_MS_DOWN, late - 10, late, &ev), GHA_VR_EXPIRED);
	assert_false(ev.switched);
	assert_int_equal(st.active, P);
	assert_int_equal(st.verify_member, -1);
}

static void test_request_other_rule_switched_first(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;
	(void)state;
	verifying(&st, GHA_MS_ACTIVE, &ev);
	/* the primary is declared down by genesys_oos: switched (no-answer) */
	set(&st, P, GHA_MS_DOWN, 5, &ev);
	assert_true(ev.switched);
	assert_int_equal(ev.trigger, GHA_TRIG_NO_ANSWER);
	assert_int_equal(st.verify_member, -1);
	assert_int_equal(res(&st, B, GHA_MS_ACTIVE, 5001, 5002, &ev), GHA_VR_NONE);
	assert_false(ev.switched);
	/* an operator switchover back while a verification runs ends it */
	assert_int_equal(gha_ps_request_from(&st, P, 6000), GHA_RQ_VERIFY);
	set(&st, P, GHA_MS_ACTIVE, 6, &ev);
	assert_int_equal(gha_ps_switchover(&st, 7, &ev), 0);
	assert_int_equal(st.active, P);
	assert_int_equal(res(&st, B, GHA_MS_DOWN, 7001, 7002, &ev), GHA_VR_NONE);
	assert_int_equal(st.active, P);
}

static void test_operator_switchover(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;
	(void)state;
	two(&st, GHA_MS_DOWN, &ev);
	assert_int_equal(gha_ps_switchover(&st, 2, &ev), -1);
	assert_int_equal(st.active, P);
	set(&st, B, GHA_MS_ACTIVE, 3, &ev);
	assert_int_equal(gha_ps_switchover(&st, 4, &ev), 0);
	assert_int_equal(ev.trigger, GHA_TRIG_OPERATOR);
	assert_int_equal(st.active, B);
	assert_int_equal(gha_ps_switchover(&st, 5, &ev), 0);
	assert_int_equal(st.active, P);
	assert_int_equal(st.n_switchovers, 2);
	/* unknown member state: allowed (not known down) */
	gha_ps_init(&st, 0);
	assert_int_equal(gha_ps_switchover(&st, 1, &ev), 0);
}

static void test_relay_failure(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;
	(void)state;
	gha_ps_init(&st, 0);
	set(&st, P, GHA_MS_ACTIVE, 1, &ev);
	/* backup not known alive: no retry */
	assert_int_equal(gha_ps_relay_failed(&st, P, 2, &ev), -1);
	assert_false(ev.switched);
	set(&st, B, GHA_MS_ACTIVE, 3, &ev);
	assert_int_equal(gha_ps_relay_failed(&st, P, 4, &ev), B);
	assert_true(ev.switched);
	assert_int_equal(ev.trigger, GHA_TRIG_RELAY_FAILURE);
	assert_int_equal(st.active, B);
	/* a second failure reported for the old primary (another process):
	 * retry on the current active member without another switch */
	assert_int_equal(gha_ps_relay_failed(&st, P, 5, &ev), B);
	assert_false(ev.switched);
	assert_int_equal(st.n_switchovers, 1);
	assert_int_equal(gha_ps_relay_failed(&st, 7, 5, &ev), -1);
}

static void test_ignores_bad_input(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;
	(void)state;
	gha_ps_init(&st, 0);
	set(&st, 2, GHA_MS_ACTIVE, 1, &ev);
	set(&st, P, 9, 1, &ev);
	assert_int_equal(st.mstate[0], GHA_MS_UNKNOWN);
	/* same state twice: no event */
	set(&st, P, GHA_MS_DOWN, 1, &ev);
	assert_true(ev.went_down);
	set(&st, P, GHA_MS_DOWN, 2, &ev);
	assert_false(ev.went_down);
	assert_int_equal(st.msince[0], 1);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(gha_pstate_name(GHA_PS_DOWN), "out-of-service");
	assert_string_equal(gha_pstate_name(GHA_PS_UP), "up");
	assert_string_equal(gha_mstate_name(GHA_MS_INACTIVE), "inactive");
	assert_string_equal(
			gha_trigger_name(GHA_TRIG_BACKUP_REQUEST), "request-from-backup");
	assert_string_equal(gha_trigger_name(99), "invalid");
	assert_string_equal(gha_role_name(B), "backup");
}

/* ---- down grace ---- */

/* a member state change as gha_runtime.c applies it (seconds = ms / 1000) */
static void gset(gha_pair_state_t *st, int m, int s, long now_ms)
{
	gha_pair_events_t ev;
	int old = st->mstate[m];

	gha_ps_member_changed(st, m, s, now_ms / 1000, &ev);
	gha_grace_member_changed(st, m, old, now_ms);
}

#define G 5000 /* down_grace, ms */

/* primary answering, backup in mstate b; both probed at 1 s */
static void gtwo(gha_pair_state_t *st, int b)
{
	gha_ps_init(st, 0);
	gset(st, P, GHA_MS_ACTIVE, 1000);
	gset(st, B, b, 1000);
}

static void test_grace_primary_killed_backup_silent(void **state)
{
	gha_pair_state_t st;
	(void)state;
	gtwo(&st, GHA_MS_DOWN); /* hot standby: ignores OPTIONS */
	assert_int_equal(gha_grace_member(&st, 2000, G), -1); /* pair up */
	gset(&st, P, GHA_MS_DOWN, 10000);
	assert_int_equal(st.pstate, GHA_PS_DOWN);
	/* the backup (failed longer ago) is the one being promoted */
	assert_int_equal(gha_grace_member(&st, 10000, G), B);
	assert_int_equal(gha_grace_member(&st, 14999, G), B);
	/* bounded */
	assert_int_equal(gha_grace_member(&st, 15000, G), -1);
	/* disabled */
	assert_int_equal(gha_grace_member(&st, 10001, 0), -1);
	/* the backup answers: normal routing (switch), no grace */
	gset(&st, B, GHA_MS_ACTIVE, 11000);
	assert_int_equal(st.active, B);
	assert_int_equal(gha_grace_member(&st, 11000, G), -1);
	assert_int_equal(st.g_open_ms, 0);
}

static void test_grace_backup_answering_503(void **state)
{
	gha_pair_state_t st;
	(void)state;
	gtwo(&st, GHA_MS_INACTIVE); /* hot standby: 503 to OPTIONS */
	gset(&st, P, GHA_MS_DOWN, 10000);
	/* switched to the backup, which refuses: the pair is inactive, but no
	 * member is known alive: grace, to the backup */
	assert_int_equal(st.active, B);
	assert_int_equal(st.pstate, GHA_PS_INACTIVE);
	assert_int_equal(gha_grace_member(&st, 10500, G), B);
	/* the old primary comes back answering 503: fresh knowledge, the
	 * grace closes (the pair is inactive: no new dialogs) */
	gset(&st, P, GHA_MS_INACTIVE, 11000);
	assert_int_equal(gha_grace_member(&st, 11000, G), -1);
}

static void test_grace_not_opened(void **state)
{
	gha_pair_state_t st;
	(void)state;
	/* both silent from the start: never lost an answering member */
	gha_ps_init(&st, 0);
	gset(&st, P, GHA_MS_DOWN, 1000);
	gset(&st, B, GHA_MS_DOWN, 1000);
	assert_int_equal(st.pstate, GHA_PS_DOWN);
	assert_int_equal(gha_grace_member(&st, 1500, G), -1);
	/* the primary dies while the backup answers: a switchover, no grace */
	gtwo(&st, GHA_MS_ACTIVE);
	gset(&st, P, GHA_MS_DOWN, 2000);
	assert_int_equal(st.active, B);
	assert_int_equal(gha_grace_member(&st, 2000, G), -1);
	/* ... then the backup dies too: grace, back to the primary (it failed
	 * longer ago) */
	gset(&st, B, GHA_MS_DOWN, 3000);
	assert_int_equal(gha_grace_member(&st, 3000, G), P);
}

static void test_grace_target_follows_relay_failures(void **state)
{
	gha_pair_state_t st;
	(void)state;
	gtwo(&st, GHA_MS_DOWN);
	gset(&st, P, GHA_MS_DOWN, 10000);
	assert_int_equal(gha_grace_member(&st, 10000, G), B);
	/* a relay to the backup got no answer: the other member */
	gha_grace_relay_failed(&st, B, 12000);
	assert_int_equal(gha_grace_member(&st, 12000, G), P);
	gha_grace_relay_failed(&st, P, 13000);
	assert_int_equal(gha_grace_member(&st, 13000, G), B);
	/* relay failures neither open nor extend the grace */
	assert_int_equal(gha_grace_member(&st, 15000, G), -1);
	gha_grace_relay_failed(&st, B, 16000);
	assert_int_equal(gha_grace_member(&st, 16000, G), -1);
	/* equal failure times: the non-active member */
	st.g_fail_ms[0] = st.g_fail_ms[1] = 17000;
	st.g_open_ms = 17000;
	assert_int_equal(gha_grace_member(&st, 17000, G), 1 - st.active);
}

static void test_grace_retry(void **state)
{
	gha_pair_state_t st;
	(void)state;
	gtwo(&st, GHA_MS_DOWN);
	/* no answer from the active member, the other not known alive: tried
	 * anyway (a backup may be promoted already) */
	assert_int_equal(gha_grace_retry(&st, P, 1, 2000, G), B);
	/* a 503 outside the grace: the other member must be known alive */
	assert_int_equal(gha_grace_retry(&st, P, 0, 2000, G), -1);
	/* grace disabled: today's rule */
	assert_int_equal(gha_grace_retry(&st, P, 1, 2000, 0), -1);
	/* in the grace, also after a 503 */
	gset(&st, P, GHA_MS_DOWN, 3000);
	assert_int_equal(gha_grace_retry(&st, B, 0, 3500, G), P);
	assert_int_equal(gha_grace_retry(&st, B, 0, 9000, G), -1);
	assert_int_equal(gha_grace_retry(&st, 2, 1, 3500, G), -1);
	assert_string_equal(gha_pstate_name(GHA_PS_GRACE), "grace");
}

static void test_lb_round_robin(void **state)
{
	int avail[4] = {1, 0, 1, 1};
	unsigned int rr = 0;
	int none[3] = {0, 0, 0};
	(void)state;
	/* an even share among the available ones */
	assert_int_equal(gha_lb_pick(4, avail, GHA_LB_ROUND_ROBIN, &rr, 0), 0);
	assert_int_equal(gha_lb_pick(4, avail, GHA_LB_ROUND_ROBIN, &rr, 0), 2);
	assert_int_equal(gha_lb_pick(4, avail, GHA_LB_ROUND_ROBIN, &rr, 0), 3);
	assert_int_equal(gha_lb_pick(4, avail, GHA_LB_ROUND_ROBIN, &rr, 0), 0);
	assert_int_equal(rr, 4);
	assert_int_equal(gha_lb_pick(3, none, GHA_LB_ROUND_ROBIN, &rr, 0), -1);
	assert_int_equal(gha_lb_pick(0, none, GHA_LB_ROUND_ROBIN, &rr, 0), -1);
}

static void test_lb_random(void **state)
{
	int avail[4] = {0, 1, 0, 1};
	unsigned int rr = 0;
	(void)state;
	assert_int_equal(gha_lb_pick(4, avail, GHA_LB_RANDOM, &rr, 0), 1);
	assert_int_equal(gha_lb_pick(4, avail, GHA_LB_RANDOM, &rr, 1), 3);
	assert_int_equal(gha_lb_pick(4, avail, GHA_LB_RANDOM, &rr, 2), 1);
	assert_int_equal(gha_lb_pick(4, avail, GHA_LB_RANDOM, &rr, 0xffffffffu), 3);
}

static void test_lb_hash_fnv(void **state)
{
	(void)state;
	assert_int_equal(gha_lb_hash("", 0), 2166136261u);
	assert_int_equal(gha_lb_hash("a", 1), 0xe40c292cu);
	assert_int_equal(gha_lb_hash("foobar", 6), 0xbf9cf968u);
}

#define NC 5
#define NK 5000

static void key_of(int k, uint32_t *key)
{
	char b[16];
	int l = snprintf(b, sizeof(b), "%d", 1000 + k);
	*key = gha_lb_hash(b, l);
}

static void cand_ids(uint32_t *ids)
{
	static const char *names[NC] = {
			"SIPS-E1", "SIPS-E2", "SIPS-E3", "SIPS-E4", "SIPS-E5"};
	int i;
	for(i = 0; i < NC; i++)
		ids[i] = gha_lb_hash(names[i], (int)strlen(names[i]));
}

static void test_lb_hash_affinity_and_spread(void **state)
{
	uint32_t ids[NC], key;
	int avail[NC] = {1, 1, 1, 1, 1}, count[NC] = {0};
	int k, i;
	(void)state;
	cand_ids(ids);
	for(k = 0; k < NK; k++) {
		key_of(k, &key);
		i = gha_lb_pick_hash(NC, avail, ids, key);
		assert_in_range(i, 0, NC - 1);
		/* the same key, the same pick */
		assert_int_equal(gha_lb_pick_hash(NC, avail, ids, key), i);
		count[i]++;
	}
	/* an even share: 1000 each, within 15 % */
	for(i = 0; i < NC; i++)
		assert_in_range(count[i], NK / NC * 85 / 100, NK / NC * 115 / 100);
}

static void test_lb_hash_stable_when_others_go(void **state)
{
	uint32_t ids[NC], key;
	int all[NC] = {1, 1, 1, 1, 1}, avail[NC], before[NK];
	int k, i, down, moved_to[NC] = {0};
	(void)state;
	cand_ids(ids);
	for(k = 0; k < NK; k++) {
		key_of(k, &key);
		before[k] = gha_lb_pick_hash(NC, all, ids, key);
	}
	for(down = 0; down < NC; down++) {
		memcpy(avail, all, sizeof(avail));
		avail[down] = 0;
		memset(moved_to, 0, sizeof(moved_to));
		for(k = 0; k < NK; k++) {
			key_of(k, &key);
			i = gha_lb_pick_hash(NC, avail, ids, key);
			if(before[k] != down) {
				/* not its candidate that went: it stays */
				assert_int_equal(i, before[k]);
			} else {
				assert_int_not_equal(i, down);
				moved_to[i]++;
			}
		}
		/* the keys that moved spread over all the others */
		for(i = 0; i < NC; i++)
			if(i != down)
				assert_true(moved_to[i] > 0);
	}
	/* two down: still only their keys move; back up: everyone back */
	memcpy(avail, all, sizeof(avail));
	avail[1] = avail[3] = 0;
	for(k = 0; k < NK; k++) {
		key_of(k, &key);
		i = gha_lb_pick_hash(NC, avail, ids, key);
		if(before[k] != 1 && before[k] != 3)
			assert_int_equal(i, before[k]);
		else
			assert_true(i != 1 && i != 3);
		assert_int_equal(gha_lb_pick_hash(NC, all, ids, key), before[k]);
	}
}

static void test_lb_hash_order_independent(void **state)
{
	uint32_t ids[NC], rev[NC], key;
	int all[NC] = {1, 1, 1, 1, 1};
	int k, i, j;
	(void)state;
	cand_ids(ids);
	for(i = 0; i < NC; i++)
		rev[i] = ids[NC - 1 - i];
	/* the pool file lists the pairs in another order: same pair */
	for(k = 0; k < 500; k++) {
		key_of(k, &key);
		i = gha_lb_pick_hash(NC, all, ids, key);
		j = gha_lb_pick_hash(NC, all, rev, key);
		assert_int_equal(ids[i], rev[j]);
	}
}

static void test_lb_hash_none(void **state)
{
	uint32_t ids[3] = {1, 2, 3};
	int none[3] = {0, 0, 0}, one[3] = {0, 0, 1};
	(void)state;
	assert_int_equal(gha_lb_pick_hash(3, none, ids, 42), -1);
	assert_int_equal(gha_lb_pick_hash(0, none, ids, 42), -1);
	assert_int_equal(gha_lb_pick_hash(3, one, ids, 42), 2);
	assert_int_equal(gha_lb_pick_hash(3, one, ids, 0), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_first_start_primary_active),
			cmocka_unit_test(test_primary_stops_answering),
			cmocka_unit_test(
					test_primary_down_backup_silent_then_backup_answers),
			cmocka_unit_test(test_both_down_active_recovers),
			cmocka_unit_test(test_inactive_503),
			cmocka_unit_test(test_request_from_active_member),
			cmocka_unit_test(test_request_never_switches_by_itself),
			cmocka_unit_test(test_request_forged_both_answer_no_flip),
			cmocka_unit_test(test_request_forged_backup_503_never_active),
			cmocka_unit_test(test_request_forged_silent_backup),
			cmocka_unit_test(test_request_genuine_switches),
			cmocka_unit_test(test_request_genuine_active_503),
			cmocka_unit_test(test_request_backup_not_yet_active_for_goos),
			cmocka_unit_test(test_request_verification_expires),
			cmocka_unit_test(test_request_other_rule_switched_first),
			cmocka_unit_test(test_operator_switchover),
			cmocka_unit_test(test_relay_failure),
			cmocka_unit_test(test_ignores_bad_input),
			cmocka_unit_test(test_names),
			cmocka_unit_test(test_grace_primary_killed_backup_silent),
			cmocka_unit_test(test_grace_backup_answering_503),
			cmocka_unit_test(test_grace_not_opened),
			cmocka_unit_test(test_grace_target_follows_relay_failures),
			cmocka_unit_test(test_grace_retry),
			cmocka_unit_test(test_lb_round_robin),
			cmocka_unit_test(test_lb_random),
			cmocka_unit_test(test_lb_hash_fnv),
			cmocka_unit_test(test_lb_hash_affinity_and_spread),
			cmocka_unit_test(test_lb_hash_stable_when_others_go),
			cmocka_unit_test(test_lb_hash_order_independent),
			cmocka_unit_test(test_lb_hash_none),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
