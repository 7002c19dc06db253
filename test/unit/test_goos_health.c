/* cmocka tests: genesys_oos health state machine (goos_health.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "genesys_oos/goos_health.h"

static void test_classify(void **state)
{
	(void)state;
	assert_int_equal(goos_classify(200, 0), GOOS_RES_ACTIVE);
	assert_int_equal(goos_classify(404, 0), GOOS_RES_ACTIVE);
	assert_int_equal(goos_classify(405, 0), GOOS_RES_ACTIVE);
	/* a 408 really received from the target: it is alive */
	assert_int_equal(goos_classify(408, 0), GOOS_RES_ACTIVE);
	assert_int_equal(goos_classify(503, 0), GOOS_RES_INACTIVE);
	/* a 408 made locally by tm: timeout */
	assert_int_equal(goos_classify(408, 1), GOOS_RES_DOWN);
	assert_int_equal(goos_classify(503, 1), GOOS_RES_DOWN);
}

static void test_first_result_is_taken_at_once(void **state)
{
	goos_health_t h;
	(void)state;
	goos_health_reset(&h);
	assert_int_equal(h.state, GOOS_H_UNKNOWN);
	assert_int_equal(goos_health_apply(&h, GOOS_RES_DOWN, 3, 3), GOOS_H_DOWN);
	goos_health_reset(&h);
	assert_int_equal(
			goos_health_apply(&h, GOOS_RES_INACTIVE, 3, 3), GOOS_H_INACTIVE);
}

static void test_threshold_one_flips_every_time(void **state)
{
	goos_health_t h;
	(void)state;
	goos_health_reset(&h);
	assert_int_equal(
			goos_health_apply(&h, GOOS_RES_ACTIVE, 1, 1), GOOS_H_ACTIVE);
	assert_int_equal(goos_health_apply(&h, GOOS_RES_ACTIVE, 1, 1), -1);
	assert_int_equal(goos_health_apply(&h, GOOS_RES_DOWN, 1, 1), GOOS_H_DOWN);
	assert_int_equal(
			goos_health_apply(&h, GOOS_RES_ACTIVE, 1, 1), GOOS_H_ACTIVE);
	assert_int_equal(
			goos_health_apply(&h, GOOS_RES_INACTIVE, 1, 1), GOOS_H_INACTIVE);
}

/* h, fresh, after a first result res (taken at once: no threshold) */
static void started_in(goos_health_t *h, goos_result_t res, int fail, int ok)
{
	goos_health_reset(h);
	assert_true(goos_health_apply(h, res, fail, ok) >= 0);
}

/* The hysteresis cases below each spell out their run of results and the
 * change (or -1: none) each must give: the run is the scenario. */
static void test_fail_threshold_hysteresis(void **state)
{
	goos_health_t h;
	(void)state;
	started_in(&h, GOOS_RES_ACTIVE, 2, 1);
	/* one lost probe does not flip */
	assert_int_equal(goos_health_apply(&h, GOOS_RES_DOWN, 2, 1), -1);
	assert_int_equal(h.state, GOOS_H_ACTIVE);
	/* an answer in between resets the run */
	assert_int_equal(goos_health_apply(&h, GOOS_RES_ACTIVE, 2, 1), -1);
	assert_int_equal(goos_health_apply(&h, GOOS_RES_DOWN, 2, 1), -1);
	assert_int_equal(h.state, GOOS_H_ACTIVE);
	/* two in a row do */
	assert_int_equal(goos_health_apply(&h, GOOS_RES_DOWN, 2, 1), GOOS_H_DOWN);
}

static void test_ok_threshold_hysteresis(void **state)
{
	goos_health_t h;
	(void)state;
	started_in(&h, GOOS_RES_DOWN, 1, 3);
	assert_int_equal(goos_health_apply(&h, GOOS_RES_ACTIVE, 1, 3), -1);
	assert_int_equal(goos_health_apply(&h, GOOS_RES_ACTIVE, 1, 3), -1);
	assert_int_equal(h.state, GOOS_H_DOWN);
	assert_int_equal(
			goos_health_apply(&h, GOOS_RES_ACTIVE, 1, 3), GOOS_H_ACTIVE);
}

static void test_changing_candidate_restarts_run(void **state)
{
	goos_health_t h;
	(void)state;
	started_in(&h, GOOS_RES_DOWN, 1, 2);
	/* ACTIVE, then INACTIVE: neither reaches 2 in a row */
	assert_int_equal(goos_health_apply(&h, GOOS_RES_ACTIVE, 1, 2), -1);
	assert_int_equal(goos_health_apply(&h, GOOS_RES_INACTIVE, 1, 2), -1);
	assert_int_equal(h.state, GOOS_H_DOWN);
	assert_int_equal(
			goos_health_apply(&h, GOOS_RES_INACTIVE, 1, 2), GOOS_H_INACTIVE);
}

static void test_zero_threshold_means_one(void **state)
{
	goos_health_t h;
	(void)state;
	started_in(&h, GOOS_RES_ACTIVE, 0, 0);
	assert_int_equal(goos_health_apply(&h, GOOS_RES_DOWN, 0, 0), GOOS_H_DOWN);
}

static void test_state_names(void **state)
{
	(void)state;
	assert_string_equal(goos_health_state_name(GOOS_H_UNKNOWN), "unknown");
	assert_string_equal(goos_health_state_name(GOOS_H_ACTIVE), "active");
	assert_string_equal(goos_health_state_name(GOOS_H_INACTIVE), "inactive");
	assert_string_equal(goos_health_state_name(GOOS_H_DOWN), "down");
	assert_string_equal(goos_health_state_name(7), "invalid");
	assert_string_equal(goos_health_state_name(-1), "invalid");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_classify),
			cmocka_unit_test(test_first_result_is_taken_at_once),
			cmocka_unit_test(test_threshold_one_flips_every_time),
			cmocka_unit_test(test_fail_threshold_hysteresis),
			cmocka_unit_test(test_ok_threshold_hysteresis),
			cmocka_unit_test(test_changing_candidate_restarts_run),
			cmocka_unit_test(test_zero_threshold_means_one),
			cmocka_unit_test(test_state_names),
	};
	return cmocka_run_group_tests_name("goos_health", tests, NULL, NULL);
}
