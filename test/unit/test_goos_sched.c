/* cmocka tests: genesys_oos probe scheduling (goos_sched.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "genesys_oos/goos_sched.h"


#define GOOS_SLOTS 8

/* the first n phases fill the slots of a span evenly */
static void test_phases_are_spread(void **state)
{
	int n, i, ph, span = 1000, quantum = 1000 / GOOS_SLOTS;
	int count[GOOS_SLOTS];
	(void)state;
	for(n = 1; n <= 400; n++) {
		memset(count, 0, sizeof(count));
		for(i = 0; i < n; i++) {
			ph = goos_sched_phase_ms(i, span, GOOS_SLOTS);
			assert_in_range(ph, 0, span - 1);
			assert_int_equal(ph % quantum, 0);
			count[ph / quantum]++;
		}
		for(i = 0; i < GOOS_SLOTS; i++)
			assert_true(count[i] <= (n + GOOS_SLOTS - 1) / GOOS_SLOTS + 2);
		/* a small pool (a few SIP Server pairs): one target per slot */
		if(n <= 5)
			for(i = 0; i < GOOS_SLOTS; i++)
				assert_true(count[i] <= 1);
	}
	assert_int_equal(goos_sched_phase_ms(5, 0, 8), 0);
	/* short spans: plain ms phases */
	assert_in_range(goos_sched_phase_ms(1, 10, 20), 0, 9);
	/* one slot: one burst at the start of the period */
	for(i = 0; i < 50; i++)
		assert_int_equal(goos_sched_phase_ms(i, 1000, 1), 0);
	/* many slots: fine phases */
	assert_int_equal(goos_sched_phase_ms(1, 1000, 1000), 618);
}

/* s, zeroed, started at now for target id: its phase in span_ms, 8 slots */
static void started(goos_sched_t *s, int64_t now, int id, int span_ms)
{
	memset(s, 0, sizeof(*s));
	goos_sched_start(s, now, id, span_ms, 8);
}

/* a probe sent at sent_ms with timeout_ms, ended at done_ms; the next period
 * is period_ms */
static void cycle(goos_sched_t *s, int64_t sent_ms, int timeout_ms,
		int64_t done_ms, int period_ms)
{
	goos_sched_sent(s, sent_ms, timeout_ms);
	goos_sched_done(s, done_ms, period_ms);
}

/* The scheduling cases below each spell out their sequence of probes and
 * the plan they expect after each: the times are the scenario. */
static void test_first_probe_at_phase(void **state)
{
	goos_sched_t s;
	(void)state;
	started(&s, 10000, 0, 1000);
	assert_true(goos_sched_due(&s, 10000));
	goos_sched_start(&s, 10000, 1, 1000, 8);
	assert_false(goos_sched_due(&s, 10000));
	assert_true(goos_sched_due(&s, 10000 + goos_sched_phase_ms(1, 1000, 8)));
}

static void test_periodic_cycle(void **state)
{
	goos_sched_t s;
	uint32_t seq;
	(void)state;
	started(&s, 0, 0, 1000);
	seq = goos_sched_sent(&s, 0, 300);
	assert_int_equal(seq, 1);
	/* no second probe while one is pending */
	assert_false(goos_sched_due(&s, 5000));
	assert_false(goos_sched_expired(&s, 299));
	assert_true(goos_sched_expired(&s, 300));
	goos_sched_done(&s, 40, 1000);
	/* next one a period after the previous was sent, not after its reply */
	assert_false(goos_sched_due(&s, 999));
	assert_true(goos_sched_due(&s, 1000));
	assert_int_equal(goos_sched_sent(&s, 1000, 300), 2);
}

static void test_request_probes_at_once(void **state)
{
	goos_sched_t s;
	(void)state;
	started(&s, 0, 0, 1000);
	cycle(&s, 0, 300, 10, 5000);
	s.want = 1;
	assert_true(goos_sched_due(&s, 20));
	goos_sched_sent(&s, 20, 300);
	assert_int_equal(s.want, 0);
	/* a request while one is pending waits for it to finish */
	s.want = 1;
	assert_false(goos_sched_due(&s, 30));
	goos_sched_done(&s, 40, 5000);
	assert_true(goos_sched_due(&s, 41));
}

static void test_request_before_start_is_kept(void **state)
{
	goos_sched_t s;
	(void)state;
	memset(&s, 0, sizeof(s));
	s.want = 1;
	goos_sched_start(&s, 0, 5, 1000, 8);
	assert_true(goos_sched_due(&s, 0));
}

static void test_probing_off(void **state)
{
	goos_sched_t s;
	(void)state;
	started(&s, 0, 3, 0);
	cycle(&s, 0, 300, 10, 0);
	assert_false(goos_sched_due(&s, INT64_MAX - 1));
	s.want = 1;
	assert_true(goos_sched_due(&s, 20));
}

static void test_replan_on_state_change(void **state)
{
	goos_sched_t s;
	(void)state;
	started(&s, 0, 0, 1000);
	cycle(&s, 0, 300, 300, 30000);
	assert_int_equal(s.next_due_ms, 30000);
	/* a requested probe fails, the target is DOWN: the shorter oos_force
	 * period brings the next probe forward */
	s.want = 1;
	cycle(&s, 5000, 300, 5300, 2000);
	assert_int_equal(s.next_due_ms, 7000);
	/* a requested probe with the same period keeps the plan */
	s.want = 1;
	cycle(&s, 5500, 300, 5600, 2000);
	assert_int_equal(s.next_due_ms, 7000);
	/* periodic probes keep their phase, whatever the reply time */
	cycle(&s, 7004, 300, 7250, 2000);
	assert_int_equal(s.next_due_ms, 9000);
	/* never in the past after a stall of the timer */
	cycle(&s, 9000, 300, 20000, 2000);
	assert_int_equal(s.next_due_ms, 21000);
	/* oos_timeout = period: the deadline ends a little after the next
	 * periodic time, which is due now, not a period later */
	cycle(&s, 21000, 2000, 23001, 2000);
	assert_int_equal(s.next_due_ms, 23000);
	assert_true(goos_sched_due(&s, 23001));
}

/* oos_check / oos_force changed at run time: the new period counts from
 * the last probe sent, at once */
static void test_replan_on_period_change(void **state)
{
	goos_sched_t s;
	(void)state;
	started(&s, 0, 0, 1000);
	cycle(&s, 0, 300, 100, 5000);
	assert_int_equal(s.next_due_ms, 5000);
	/* shorter: one new period after the last probe */
	goos_sched_replan(&s, 200, 2000, 125);
	assert_int_equal(s.next_due_ms, 2000);
	/* already past: now plus the target's phase */
	goos_sched_replan(&s, 3000, 1000, 125);
	assert_int_equal(s.next_due_ms, 3125);
	/* longer: pushed out */
	goos_sched_replan(&s, 3010, 30000, 125);
	assert_int_equal(s.next_due_ms, 30000);
	/* 0: no periodic probe; a request still probes */
	goos_sched_replan(&s, 3020, 0, 125);
	assert_false(goos_sched_due(&s, INT64_MAX - 1));
	s.want = 1;
	assert_true(goos_sched_due(&s, 3030));
	s.want = 0;
	/* back on after a long pause */
	goos_sched_replan(&s, 90000, 2000, 125);
	assert_int_equal(s.next_due_ms, 90125);
	/* a pending probe keeps its deadline; its end plans with the period */
	goos_sched_sent(&s, 90125, 1000);
	goos_sched_replan(&s, 90200, 5000, 125);
	assert_int_equal(s.next_due_ms, 90125);
	assert_int_equal(s.deadline_ms, 91125);
	goos_sched_done(&s, 90300, 5000);
	assert_int_equal(s.next_due_ms, 95125);
	/* never sent (sent_ms 0): the phase */
	memset(&s, 0, sizeof(s));
	s.next_due_ms = INT64_MAX;
	goos_sched_replan(&s, 50000, 5000, 250);
	assert_int_equal(s.next_due_ms, 50250);
}

static void test_reply_classes(void **state)
{
	goos_sched_t s;
	uint32_t seq;
	(void)state;
	memset(&s, 0, sizeof(s));
	seq = goos_sched_sent(&s, 1000, 300);
	assert_int_equal(goos_sched_classify(&s, seq, 1299), GOOS_RPL_ON_TIME);
	/* arrived after the deadline, even if not yet processed */
	assert_int_equal(goos_sched_classify(&s, seq, 1300), GOOS_RPL_LATE);
	assert_int_equal(goos_sched_classify(&s, seq - 1, 1100), GOOS_RPL_STALE);
	goos_sched_done(&s, 1300, 1000);
	assert_int_equal(goos_sched_classify(&s, seq, 1200), GOOS_RPL_LATE);
	seq = goos_sched_sent(&s, 2000, 300);
	assert_int_equal(goos_sched_classify(&s, seq - 1, 2100), GOOS_RPL_STALE);
}

/* the time the probe process must look at a target next */
static void test_event_time(void **state)
{
	goos_sched_t s;
	(void)state;
	started(&s, 1000, 3, 1000);
	assert_true(goos_sched_event(&s) == s.next_due_ms);
	goos_sched_sent(&s, s.next_due_ms, 400);
	assert_true(goos_sched_event(&s) == s.deadline_ms);
	s.want = 1; /* requested while pending: still the deadline */
	assert_true(goos_sched_event(&s) == s.deadline_ms);
	goos_sched_done(&s, s.sent_ms + 10, 1000);
	assert_true(goos_sched_event(&s) == 0); /* requested: at once */
	s.want = 0;
	assert_true(goos_sched_event(&s) == s.next_due_ms);
	goos_sched_done(&s, s.sent_ms + 10, 0); /* probing off */
	assert_true(goos_sched_event(&s) == GOOS_NEVER);
}

/* id and seq come back from the callback parameter unchanged */
static void roundtrip(int id, uint32_t seq)
{
	int id2;
	uint32_t seq2;
	goos_cbp_decode(goos_cbp_encode(id, seq), &id2, &seq2);
	assert_int_equal(id2, id);
	assert_int_equal(seq2, seq);
}

static void test_cbp_roundtrip(void **state)
{
	(void)state;
	roundtrip(0, 0);
	roundtrip(65535, 0xffffffffu);
	roundtrip(1048575, 0xffffffffu);
	roundtrip(17, 123456789u);
	/* never a NULL parameter for a real probe */
	assert_non_null(goos_cbp_encode(0, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_phases_are_spread),
			cmocka_unit_test(test_first_probe_at_phase),
			cmocka_unit_test(test_periodic_cycle),
			cmocka_unit_test(test_request_probes_at_once),
			cmocka_unit_test(test_request_before_start_is_kept),
			cmocka_unit_test(test_probing_off),
			cmocka_unit_test(test_replan_on_state_change),
			cmocka_unit_test(test_replan_on_period_change),
			cmocka_unit_test(test_reply_classes),
			cmocka_unit_test(test_event_time),
			cmocka_unit_test(test_cbp_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
