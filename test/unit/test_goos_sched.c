/* cmocka tests: genesys_oos probe scheduling (goos_sched.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "genesys_oos/goos_sched.h"

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* the first n phases split a span into gaps no smaller than span/(3n) */
static void test_phases_are_spread(void **state)
{
	int n, i, ph[200], span = 1000, min_gap;
	(void)state;
	for(n = 2; n <= 200; n++) {
		for(i = 0; i < n; i++) {
			ph[i] = goos_sched_phase_ms(i, span);
			assert_in_range(ph[i], 0, span - 1);
		}
		qsort(ph, n, sizeof(int), cmp_int);
		min_gap = span;
		for(i = 1; i < n; i++)
			if(ph[i] - ph[i - 1] < min_gap)
				min_gap = ph[i] - ph[i - 1];
		if(span - ph[n - 1] + ph[0] < min_gap)
			min_gap = span - ph[n - 1] + ph[0];
		assert_true(min_gap >= span / (3 * n));
	}
	assert_int_equal(goos_sched_phase_ms(5, 0), 0);
}

static void test_first_probe_at_phase(void **state)
{
	goos_sched_t s;
	(void)state;
	memset(&s, 0, sizeof(s));
	goos_sched_start(&s, 10000, 0, 1000);
	assert_true(goos_sched_due(&s, 10000));
	goos_sched_start(&s, 10000, 1, 1000);
	assert_false(goos_sched_due(&s, 10000));
	assert_true(goos_sched_due(&s, 10000 + goos_sched_phase_ms(1, 1000)));
}

static void test_periodic_cycle(void **state)
{
	goos_sched_t s;
	uint32_t seq;
	(void)state;
	memset(&s, 0, sizeof(s));
	goos_sched_start(&s, 0, 0, 1000);
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
	memset(&s, 0, sizeof(s));
	goos_sched_start(&s, 0, 0, 1000);
	goos_sched_sent(&s, 0, 300);
	goos_sched_done(&s, 10, 5000);
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
	goos_sched_start(&s, 0, 5, 1000);
	assert_true(goos_sched_due(&s, 0));
}

static void test_probing_off(void **state)
{
	goos_sched_t s;
	(void)state;
	memset(&s, 0, sizeof(s));
	goos_sched_start(&s, 0, 3, 0);
	goos_sched_sent(&s, 0, 300);
	goos_sched_done(&s, 10, 0);
	assert_false(goos_sched_due(&s, INT64_MAX - 1));
	s.want = 1;
	assert_true(goos_sched_due(&s, 20));
}

static void test_replan_on_state_change(void **state)
{
	goos_sched_t s;
	(void)state;
	memset(&s, 0, sizeof(s));
	goos_sched_start(&s, 0, 0, 1000);
	goos_sched_sent(&s, 0, 300);
	goos_sched_done(&s, 300, 30000);
	assert_int_equal(s.next_due_ms, 30000);
	/* now DOWN: the shorter oos_force period applies */
	goos_sched_replan(&s, 300, 2000);
	assert_int_equal(s.next_due_ms, 2000);
	/* never in the past */
	goos_sched_replan(&s, 9000, 2000);
	assert_int_equal(s.next_due_ms, 9000);
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

static void test_cbp_roundtrip(void **state)
{
	int id;
	uint32_t seq;
	(void)state;
	goos_cbp_decode(goos_cbp_encode(0, 0), &id, &seq);
	assert_int_equal(id, 0);
	assert_int_equal(seq, 0);
	goos_cbp_decode(goos_cbp_encode(65535, 0xffffffffu), &id, &seq);
	assert_int_equal(id, 65535);
	assert_int_equal(seq, 0xffffffffu);
	goos_cbp_decode(goos_cbp_encode(17, 123456789u), &id, &seq);
	assert_int_equal(id, 17);
	assert_int_equal(seq, 123456789u);
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
			cmocka_unit_test(test_reply_classes),
			cmocka_unit_test(test_cbp_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
