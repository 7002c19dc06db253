/* cmocka tests: genesys_ha pool-wide decisions (gha_sync.c): which
 * decision wins, the DMQ body format, applying a decision to a pair */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "genesys_ha/gha_sync.h"

static void test_higher_epoch_wins(void **state)
{
	(void)state;
	assert_true(gha_sync_cmp(3, "10.0.0.9:5060", 2, "10.0.0.1:5060") > 0);
	assert_true(gha_sync_cmp(2, "10.0.0.1:5060", 3, "10.0.0.9:5060") < 0);
	/* nothing decided on either side */
	assert_int_equal(gha_sync_cmp(0, "", 0, ""), 0);
	/* any decision beats the start state */
	assert_true(gha_sync_cmp(1, "10.0.0.9:5060", 0, "") > 0);
}

static void test_equal_epochs_lowest_origin_wins(void **state)
{
	(void)state;
	assert_true(gha_sync_cmp(4, "10.0.0.2:5060", 4, "10.0.0.10:5060") > 0);
	assert_true(gha_sync_cmp(4, "10.0.0.10:5060", 4, "10.0.0.2:5060") < 0);
	assert_int_equal(gha_sync_cmp(4, "10.0.0.2:5060", 4, "10.0.0.2:5060"), 0);
	/* numeric, not text: 10.0.0.9 < 10.0.0.10 */
	assert_true(gha_sync_origin_cmp("10.0.0.9:5060", "10.0.0.10:5060") < 0);
	/* same host: the lower port */
	assert_true(gha_sync_origin_cmp("10.0.0.1:5060", "10.0.0.1:5080") < 0);
	/* IPv4 before IPv6, IPv6 by value */
	assert_true(gha_sync_origin_cmp("10.0.0.1:5060", "[::1]:5060") < 0);
	assert_true(gha_sync_origin_cmp("[::1]:5060", "[::2]:5060") < 0);
	/* names: as text, both ways consistent */
	assert_true(gha_sync_origin_cmp("proxy-a:5060", "proxy-b:5060") < 0);
	assert_true(gha_sync_origin_cmp("proxy-b:5060", "proxy-a:5060") > 0);
}

static void test_format_parse_roundtrip(void **state)
{
	char buf[512], sender[GHA_SYNC_ORIGIN_MAX + 1];
	gha_decision_t d, e;
	int n, m, kind, pos;

	(void)state;
	memset(&d, 0, sizeof(d));
	strcpy(d.pair, "SIPS_A");
	d.active = GHA_BACKUP;
	d.epoch = 42;
	strcpy(d.origin, "10.0.0.1:5060");
	d.mstate[0] = GHA_MS_DOWN;
	d.mstate[1] = GHA_MS_ACTIVE;
	d.trigger = GHA_TRIG_NO_ANSWER;
	n = gha_sync_fmt_header(buf, sizeof(buf), GHA_SYNC_DECISION, "10.0.0.1:5060");
	assert_true(n > 0);
	m = gha_sync_fmt_line(buf + n, (int)sizeof(buf) - n, &d);
	assert_true(m > 0);
	strcpy(d.pair, "SIPS_B");
	d.origin[0] = '\0';
	d.epoch = 0;
	m += gha_sync_fmt_line(buf + n + m, (int)sizeof(buf) - n - m, &d);
	assert_int_equal(gha_sync_parse_header(buf, n + m, &kind, sender,
							 sizeof(sender), &pos),
			0);
	assert_int_equal(kind, GHA_SYNC_DECISION);
	assert_string_equal(sender, "10.0.0.1:5060");
	assert_int_equal(gha_sync_parse_line(buf, n + m, &pos, &e), 1);
	assert_string_equal(e.pair, "SIPS_A");
	assert_int_equal(e.active, GHA_BACKUP);
	assert_int_equal(e.epoch, 42);
	assert_string_equal(e.origin, "10.0.0.1:5060");
	assert_int_equal(e.mstate[0], GHA_MS_DOWN);
	assert_int_equal(e.trigger, GHA_TRIG_NO_ANSWER);
	assert_int_equal(gha_sync_parse_line(buf, n + m, &pos, &e), 1);
	assert_string_equal(e.pair, "SIPS_B");
	assert_string_equal(e.origin, "");
	assert_int_equal(gha_sync_parse_line(buf, n + m, &pos, &e), 0);
}

static void test_parse_refuses_garbage(void **state)
{
	char sender[GHA_SYNC_ORIGIN_MAX + 1];
	gha_decision_t e;
	int kind, pos;
	const char *b1 = "HELLO D x\n";
	const char *b2 = "GHA1 X 10.0.0.1:5060\n";
	const char *b3 = "GHA1 S 10.0.0.1:5060\r\nSIPS_A 7 1 - 0 0 0\r\n"
					 "SIPS_A 1 1 - 9 0 0\nSIPS_A 1 1 - 0 0 0 extra\n"
					 "SIPS_A 1 5 10.0.0.2:5060 1 1 3\n";

	(void)state;
	assert_int_equal(
			gha_sync_parse_header(b1, (int)strlen(b1), &kind, sender, 64, &pos),
			-1);
	assert_int_equal(
			gha_sync_parse_header(b2, (int)strlen(b2), &kind, sender, 64, &pos),
			-1);
	assert_int_equal(gha_sync_parse_header(NULL, 0, &kind, sender, 64, &pos), -1);
	assert_int_equal(
			gha_sync_parse_header(b3, (int)strlen(b3), &kind, sender, 64, &pos),
			0);
	assert_int_equal(kind, GHA_SYNC_STATE);
	/* bad member, bad state, trailing field: skipped one by one */
	assert_int_equal(gha_sync_parse_line(b3, (int)strlen(b3), &pos, &e), -1);
	assert_int_equal(gha_sync_parse_line(b3, (int)strlen(b3), &pos, &e), -1);
	assert_int_equal(gha_sync_parse_line(b3, (int)strlen(b3), &pos, &e), -1);
	assert_int_equal(gha_sync_parse_line(b3, (int)strlen(b3), &pos, &e), 1);
	assert_int_equal(e.epoch, 5);
	assert_int_equal(gha_sync_parse_line(b3, (int)strlen(b3), &pos, &e), 0);
}

static void test_apply_switches_once(void **state)
{
	gha_pair_state_t st;
	gha_pair_events_t ev;

	(void)state;
	memset(&st, 0, sizeof(st));
	st.active = GHA_PRIMARY;
	st.mstate[0] = GHA_MS_ACTIVE;
	st.mstate[1] = GHA_MS_ACTIVE;
	st.pstate = GHA_PS_UP;
	st.verify_member = -1;
	assert_int_equal(gha_sync_apply(&st, GHA_BACKUP, 100, &ev), 1);
	assert_int_equal(st.active, GHA_BACKUP);
	assert_int_equal(ev.switched, 1);
	assert_int_equal(ev.trigger, GHA_TRIG_PEER);
	assert_int_equal(st.sw_trigger, GHA_TRIG_PEER);
	assert_int_equal(st.n_switchovers, 1);
	assert_int_equal(st.pstate, GHA_PS_UP);
	/* the same decision again: nothing */
	assert_int_equal(gha_sync_apply(&st, GHA_BACKUP, 101, &ev), 0);
	assert_int_equal(ev.switched, 0);
	assert_int_equal(st.n_switchovers, 1);
	/* to a member this proxy sees down: out of service here */
	st.mstate[0] = GHA_MS_DOWN;
	assert_int_equal(gha_sync_apply(&st, GHA_PRIMARY, 102, &ev), 1);
	assert_int_equal(st.pstate, GHA_PS_DOWN);
	assert_int_equal(ev.went_down, 1);
	assert_int_equal(gha_sync_apply(&st, 7, 103, &ev), 0);
}

static int prober(const char *m, const char *const *live, int n)
{
	int i;

	for(i = 0; i < n; i++)
		if(gha_sync_prober_rank(m, live, n, i) == 0)
			return i;
	return -1;
}

static void test_prober_rank(void **state)
{
	const char *live[3] = {"10.0.0.1:5060", "10.0.0.2:5060", "10.0.0.3:5060"};
	const char *two[2] = {"10.0.0.1:5060", "10.0.0.3:5060"};
	const char *rev[3] = {"10.0.0.3:5060", "10.0.0.2:5060", "10.0.0.1:5060"};
	char m[64];
	int i, j, seen, count[3] = {0, 0, 0}, p3, p2, moved = 0;

	(void)state;
	assert_int_equal(gha_sync_prober_rank("x", live, 3, 3), -1);
	for(i = 0; i < 999; i++) {
		snprintf(m, sizeof(m), "sip:10.1.%d.%d:5060", i / 200, i % 200);
		/* the ranks are a permutation */
		seen = 0;
		for(j = 0; j < 3; j++)
			seen |= 1 << gha_sync_prober_rank(m, live, 3, j);
		assert_int_equal(seen, 7);
		p3 = prober(m, live, 3);
		count[p3]++;
		/* the order of the live set does not matter */
		assert_string_equal(live[p3], rev[prober(m, rev, 3)]);
		/* proxy 2 goes: only its members move */
		p2 = prober(m, two, 2);
		if(p3 != 1)
			assert_string_equal(two[p2], live[p3]);
		else
			moved++;
	}
	assert_int_equal(moved, count[1]);
	/* about a third each */
	for(j = 0; j < 3; j++)
		assert_true(count[j] > 250 && count[j] < 420);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_higher_epoch_wins),
			cmocka_unit_test(test_equal_epochs_lowest_origin_wins),
			cmocka_unit_test(test_format_parse_roundtrip),
			cmocka_unit_test(test_parse_refuses_garbage),
			cmocka_unit_test(test_apply_switches_once),
			cmocka_unit_test(test_prober_rank),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
