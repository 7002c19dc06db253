/* cmocka tests: genesys_oos parameter validation (goos_params.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "genesys_oos/goos_params.h"
#include "genesys_oos/goos_health.h"

static goos_params_t defaults(void)
{
	goos_params_t p = GOOS_PARAMS_DEFAULTS;
	return p;
}

static void test_defaults_are_valid(void **state)
{
	char err[256] = "";
	goos_params_t p = defaults();
	(void)state;
	assert_int_equal(goos_params_check(&p, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	/* the module's own defaults: seed 000 oos-check 5, oos-force 5 */
	assert_int_equal(p.check_s, 5);
	assert_int_equal(p.force_s, 5);
	assert_int_equal(p.timeout_ms, 4000);
	assert_int_equal(p.probe_slots, 8);
}

/* p is refused; the message contains needle and also (unless NULL) also */
static void refused(
		const goos_params_t *p, const char *needle, const char *also)
{
	char err[256] = "";

	assert_int_equal(goos_params_check(p, err, sizeof(err)), -1);
	if(needle)
		assert_non_null(strstr(err, needle));
	if(also)
		assert_non_null(strstr(err, also));
}

static void accepted(const goos_params_t *p)
{
	char err[256] = "";

	assert_int_equal(goos_params_check(p, err, sizeof(err)), 0);
	assert_string_equal(err, "");
}

/* The range cases below set a field and expect accepted() or refused()
 * one value at a time: the value and the message it must give are the
 * check, so they are spelled out and look alike. */
static void test_check_range(void **state)
{
	goos_params_t p = defaults();
	(void)state;
	p.check_s = 301;
	refused(&p, "oos_check=301", "0-300");
	p.check_s = -1;
	refused(&p, NULL, NULL);
	p.check_s = 300;
	p.force_s = 32;
	accepted(&p);
	/* 0 disables periodic probing and is valid */
	p.check_s = 0;
	accepted(&p);
}

static void test_force_range(void **state)
{
	goos_params_t p = defaults();
	(void)state;
	p.force_s = 0;
	refused(&p, "oos_force=0", "1-32");
	p.force_s = 33;
	refused(&p, "oos_force=33", NULL);
	p.force_s = 1;
	p.timeout_ms = 1000;
	accepted(&p);
}

static void test_timeout_must_fit_the_periods(void **state)
{
	goos_params_t p = defaults();
	(void)state;
	p.timeout_ms = 5001;
	refused(&p, "oos_timeout=5001", "50-5000");
	/* the shorter of the two periods is the limit */
	p.check_s = 1;
	p.force_s = 5;
	p.timeout_ms = 1500;
	refused(&p, "50-1000", NULL);
	p.check_s = 10;
	p.force_s = 2;
	p.timeout_ms = 2500;
	refused(&p, "50-2000", NULL);
	/* oos_check=0: only oos_force limits */
	p.check_s = 0;
	p.force_s = 3;
	p.timeout_ms = 3000;
	accepted(&p);
	p.timeout_ms = 49;
	refused(&p, NULL, NULL);
}

static void test_thresholds_and_capacity(void **state)
{
	goos_params_t p = defaults();
	(void)state;
	p.fail_threshold = 0;
	refused(&p, "fail_threshold=0", NULL);
	p = defaults();
	p.ok_threshold = 101;
	refused(&p, "ok_threshold=101", NULL);
	p = defaults();
	p.max_targets = -1;
	refused(&p, "max_targets=-1", NULL);
	p.max_targets = 0; /* no limit: the table grows with the targets */
	accepted(&p);
	p.max_targets = 1048575;
	accepted(&p);
	p.max_targets = 1048576;
	refused(&p, "max_targets=1048576", NULL);
	p = defaults();
	p.probe_slots = 0;
	refused(&p, "probe_slots=0", "1-100");
	p.probe_slots = 101;
	refused(&p, NULL, NULL);
	p.probe_slots = 1;
	accepted(&p);
}

static void test_error_is_one_line_and_bounded(void **state)
{
	char err[24];
	goos_params_t p = defaults();
	(void)state;
	p.timeout_ms = 999999;
	assert_int_equal(goos_params_check(&p, err, sizeof(err)), -1);
	assert_true(strlen(err) < sizeof(err));
	assert_null(strchr(err, '\n'));
}

static void test_period_per_state(void **state)
{
	goos_params_t p = defaults();
	(void)state;
	p.check_s = 7;
	p.force_s = 2;
	assert_int_equal(goos_params_period_ms(&p, GOOS_H_ACTIVE), 7000);
	assert_int_equal(goos_params_period_ms(&p, GOOS_H_INACTIVE), 7000);
	assert_int_equal(goos_params_period_ms(&p, GOOS_H_DOWN), 2000);
	assert_int_equal(goos_params_period_ms(&p, GOOS_H_UNKNOWN), 2000);
	p.check_s = 0;
	assert_int_equal(goos_params_period_ms(&p, GOOS_H_ACTIVE), 0);
	assert_int_equal(goos_params_period_ms(&p, GOOS_H_DOWN), 0);
}

/* a run-time period shorter than oos_timeout shortens the deadline */
static void test_deadline_fits_the_periods(void **state)
{
	goos_params_t p = defaults();
	(void)state;
	assert_int_equal(goos_params_deadline_ms(&p), 4000);
	p.check_s = 2;
	assert_int_equal(goos_params_deadline_ms(&p), 2000);
	p.check_s = 10;
	p.force_s = 3;
	assert_int_equal(goos_params_deadline_ms(&p), 3000);
	p.check_s = 0;
	p.force_s = 1;
	assert_int_equal(goos_params_deadline_ms(&p), 1000);
	p.force_s = 32;
	assert_int_equal(goos_params_deadline_ms(&p), 4000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_defaults_are_valid),
			cmocka_unit_test(test_check_range),
			cmocka_unit_test(test_force_range),
			cmocka_unit_test(test_timeout_must_fit_the_periods),
			cmocka_unit_test(test_thresholds_and_capacity),
			cmocka_unit_test(test_error_is_one_line_and_bounded),
			cmocka_unit_test(test_period_per_state),
			cmocka_unit_test(test_deadline_fits_the_periods),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
