/* cmocka tests: genesys_tlssticky binding table (gts_table.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "genesys_tlssticky/gts_table.h"

#define KG_NLOCKS 64
#include "kg_test.h"

static const gts_table_ops_t OPS = {
		ts_alloc, ts_free, ts_lock, ts_unlock, NULL};

#define AOR "1001@example.com"
#define URI "sip:1001@192.0.2.10:5061;transport=tls"

static gts_conn_t conn(uint32_t id, uint16_t port)
{
	gts_conn_t c;
	memset(&c, 0, sizeof(c));
	c.conid = id;
	c.proto = 3;
	c.src.af = 4;
	c.src.ip[0] = 192;
	c.src.ip[3] = 10;
	c.src.port = port;
	c.local.af = 4;
	c.local.ip[0] = 10;
	c.local.ip[3] = 1;
	c.local.port = 5061;
	return c;
}

static int setup(void **state)
{
	gts_table_t *t = calloc(1, sizeof(*t));
	memset(locked, 0, sizeof(locked));
	fail_alloc = 0;
	assert_int_equal(gts_table_init(t, 64, 16, 0, &OPS), GTS_OK);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	gts_table_t *t = *state;
	gts_table_destroy(t);
	free(t);
	return 0;
}

static gts_res_t prep(gts_table_t *t, const char *uri, gts_conn_t c, int dereg,
		int64_t now, gts_flow_t *f)
{
	return gts_table_prepare(t, AOR, strlen(AOR), uri, strlen(uri), &c,
			GTS_POL_NO_INBOUND, dereg, now, 64, 12345, f);
}

static int commit1(gts_table_t *t, const gts_flow_t *f, int64_t exp,
		gts_binding_t **removed, char *uri_out)
{
	gts_commit_item_t it;
	int n;
	memset(&it, 0, sizeof(it));
	it.tok = *f;
	it.expires = exp;
	n = gts_table_commit(t, AOR, strlen(AOR), &it, 1, removed);
	if(uri_out && it.found)
		strcpy(uri_out, it.uri);
	return n;
}

/* a 2xx of AOR listing the tokens a and b with their expires; it: what
 * the commit found for each */
static int commit2(gts_table_t *t, gts_commit_item_t it[2], gts_flow_t a,
		int64_t ea, gts_flow_t b, int64_t eb, gts_binding_t **removed)
{
	memset(it, 0, 2 * sizeof(*it));
	it[0].tok = a;
	it[0].expires = ea;
	it[1].tok = b;
	it[1].expires = eb;
	return gts_table_commit(t, AOR, strlen(AOR), it, 2, removed);
}

/* one bad size a line, each checked on its own (as in test_gts_inflight's
 * test_init_args, for another table: alike in shape only) */
static void test_init_rejects_bad_sizes(void **state)
{
	gts_table_t t;
	(void)state;
	assert_int_equal(gts_table_init(&t, 100, 16, 0, &OPS), GTS_BADARG);
	assert_int_equal(gts_table_init(&t, 64, 128, 0, &OPS), GTS_BADARG);
	assert_int_equal(gts_table_init(&t, 64, 3, 0, &OPS), GTS_BADARG);
	fail_alloc = 1;
	assert_int_equal(gts_table_init(&t, 64, 16, 0, &OPS), GTS_NOMEM);
	fail_alloc = 0;
}

static void test_register_commit_lookup(void **state)
{
	gts_table_t *t = *state;
	gts_flow_t f, again;
	gts_view_t v;
	gts_binding_t *rm = NULL;
	char uri[GTS_URI_MAX + 1];

	assert_int_equal(prep(t, URI, conn(7, 40000), 0, 100, &f), GTS_NEW);
	assert_int_equal(f.gen, 12345); /* seeded */
	assert_int_equal(f.conid, 7);
	assert_int_equal(f.aorh, gts_aor_hash(AOR, strlen(AOR)));
	assert_int_equal(f.bid, gts_bid(AOR, strlen(AOR), URI, strlen(URI)));
	assert_int_equal(gts_table_count(t), 1);
	/* a pending binding can already be routed to (INVITE may overtake
	 * the 2xx) */
	assert_int_equal(gts_table_lookup(t, &f, &v), GTS_OK);
	assert_int_equal(v.state, GTS_B_PENDING);

	/* a retransmitted REGISTER: the same token */
	assert_int_equal(
			prep(t, URI, conn(7, 40000), 0, 101, &again), GTS_EXISTING);
	assert_memory_equal(&f, &again, sizeof(f));

	assert_int_equal(commit1(t, &f, 3700, &rm, uri), 1);
	assert_null(rm);
	assert_string_equal(uri, URI);
	assert_int_equal(gts_table_lookup(t, &f, &v), GTS_OK);
	assert_int_equal(v.state, GTS_B_ACTIVE);
	assert_int_equal(v.expires, 3700);
	assert_string_equal(v.aor, AOR);
	assert_string_equal(v.uri, URI);

	/* the flow of the AOR is known (sticky_rr) */
	assert_int_equal(gts_table_find_conn(t, AOR, strlen(AOR), 7, NULL), GTS_OK);
	{
		uint8_t pol = 0xff;
		assert_int_equal(
				gts_table_find_conn(t, AOR, strlen(AOR), 7, &pol), GTS_OK);
		assert_int_equal(pol, GTS_POL_NO_INBOUND);
		/* a refresh with another policy updates it */
		gts_conn_t c7 = conn(7, 40000);
		assert_int_equal(
				gts_table_prepare(t, AOR, strlen(AOR), URI, strlen(URI), &c7,
						GTS_POL_RECONNECT, 0, 150, 64, 1, &again),
				GTS_EXISTING);
		assert_int_equal(
				gts_table_find_conn(t, AOR, strlen(AOR), 7, &pol), GTS_OK);
		assert_int_equal(pol, GTS_POL_RECONNECT);
		pol = 0xff;
		assert_int_equal(gts_table_find_conn(t, AOR, strlen(AOR), 8, &pol),
				GTS_NOTFOUND);
		assert_int_equal(pol, 0xff);
	}
	assert_int_equal(
			gts_table_find_conn(t, AOR, strlen(AOR), 8, NULL), GTS_NOTFOUND);
	assert_int_equal(gts_table_find_conn(t, "x@y", 3, 7, NULL), GTS_NOTFOUND);

	/* refresh over the same flow: same token, stays active */
	assert_int_equal(
			prep(t, URI, conn(7, 40000), 0, 200, &again), GTS_EXISTING);
	assert_memory_equal(&f, &again, sizeof(f));
	assert_int_equal(gts_table_count(t), 1);
}

static void test_new_connection_bumps_generation(void **state)
{
	gts_table_t *t = *state;
	gts_flow_t f1, f2;
	gts_view_t v;
	gts_binding_t *rm = NULL;

	prep(t, URI, conn(7, 40000), 0, 100, &f1);
	commit1(t, &f1, 3700, &rm, NULL);
	assert_int_equal(prep(t, URI, conn(9, 40002), 0, 200, &f2), GTS_NEW);
	assert_int_equal(f2.gen, f1.gen + 1);
	assert_int_equal(f2.bid, f1.bid);
	/* until the 2xx, the old flow still works */
	assert_int_equal(gts_table_lookup(t, &f1, &v), GTS_OK);
	assert_int_equal(gts_table_count(t), 2);
	/* the 2xx lists only the new one: the old is replaced */
	assert_int_equal(commit1(t, &f2, 3800, &rm, NULL), 1);
	assert_non_null(rm);
	assert_null(rm->next);
	assert_int_equal(rm->why, GTS_WHY_REPLACED);
	assert_int_equal(rm->flow.conid, 7);
	gts_table_free_list(t, rm);
	assert_int_equal(gts_table_count(t), 1);
	assert_int_equal(gts_table_lookup(t, &f1, &v), GTS_STALE);
	assert_int_equal(gts_table_lookup(t, &f2, &v), GTS_OK);
}

static void test_generation_wraps_to_nonzero(void **state)
{
	gts_table_t *t = *state;
	gts_flow_t f1, f2;
	gts_conn_t c = conn(1, 1);
	gts_binding_t *rm = NULL;

	assert_int_equal(gts_table_prepare(t, AOR, strlen(AOR), URI, strlen(URI),
							 &c, 0, 0, 0, 64, 0xffffffffu, &f1),
			GTS_NEW);
	commit1(t, &f1, 1000, &rm, NULL);
	c = conn(2, 2);
	gts_table_prepare(
			t, AOR, strlen(AOR), URI, strlen(URI), &c, 0, 0, 0, 64, 5, &f2);
	assert_int_equal(f2.gen, 1); /* 0xffffffff + 1 skips 0 */
	/* rnd 0 never gives generation 0 either */
	c = conn(3, 3);
	gts_table_prepare(t, "x@y", 3, URI, strlen(URI), &c, 0, 0, 0, 64, 0, &f1);
	assert_int_not_equal(f1.gen, 0);
}

static void test_deregister(void **state)
{
	gts_table_t *t = *state;
	gts_flow_t f, d;
	gts_binding_t *rm = NULL;

	/* unknown: nothing made */
	assert_int_equal(prep(t, URI, conn(7, 40000), 1, 100, &d), GTS_NOTFOUND);
	assert_int_equal(gts_table_count(t), 0);
	prep(t, URI, conn(7, 40000), 0, 100, &f);
	commit1(t, &f, 3700, &rm, NULL);
	/* de-registering from another connection still names the stored one */
	assert_int_equal(prep(t, URI, conn(8, 40001), 1, 200, &d), GTS_EXISTING);
	assert_memory_equal(&f, &d, sizeof(f));
	assert_int_equal(gts_table_count(t), 1);
	/* the 2xx lists nothing: removed */
	assert_int_equal(gts_table_commit(t, AOR, strlen(AOR), NULL, 0, &rm), 0);
	assert_non_null(rm);
	assert_int_equal(rm->why, GTS_WHY_UNLISTED);
	gts_table_free_list(t, rm);
	assert_int_equal(gts_table_count(t), 0);
}

static void test_commit_ignores_other_aor_and_unknown(void **state)
{
	gts_table_t *t = *state;
	gts_flow_t f, g, h;
	gts_commit_item_t it[2];
	gts_binding_t *rm = NULL;

	prep(t, URI, conn(7, 40000), 0, 100, &f);
	g = f;
	g.gen++; /* never minted */
	h = f;
	h.aorh ^= 1; /* another AOR's bucket */
	assert_int_equal(commit2(t, it, g, 500, h, 500, &rm), 0);
	assert_int_equal(it[0].found, 0);
	assert_int_equal(it[1].found, 0);
	/* a pending binding is not removed by a 2xx that does not list it */
	assert_null(rm);
	assert_int_equal(gts_table_count(t), 1);
	/* commit for another AOR string never touches ours */
	assert_int_equal(
			gts_table_commit(t, "2002@example.com", 16, NULL, 0, &rm), 0);
	assert_null(rm);
}

static void mk(gts_table_t *t, const char *aor, gts_conn_t c, int policy,
		int64_t commit_exp, gts_flow_t *f)
{
	gts_commit_item_t it;
	gts_binding_t *rm = NULL;
	assert_int_equal(gts_table_prepare(t, aor, strlen(aor), "sip:x@h", 7, &c,
							 (uint8_t)policy, 0, 0, 64, 1, f),
			GTS_NEW);
	if(commit_exp) {
		memset(&it, 0, sizeof(it));
		it.tok = *f;
		it.expires = commit_exp;
		assert_int_equal(gts_table_commit(t, aor, strlen(aor), &it, 1, &rm), 1);
		assert_null(rm);
	}
}

static void test_sweep_expiry_and_closed(void **state)
{
	gts_table_t *t = *state;
	gts_flow_t a, b, c, p;
	gts_binding_t *rm = NULL;
	uint32_t dead[] = {3, 9, 20};

	mk(t, "a@h", conn(1, 1), GTS_POL_NO_INBOUND, 100, &a);
	mk(t, "b@h", conn(9, 2), GTS_POL_NO_INBOUND, 1000, &b);
	mk(t, "c@h", conn(5, 3), GTS_POL_NO_INBOUND, 0, &c); /* pending, ttl 64 */
	mk(t, "r@h", conn(20, 4), GTS_POL_RECONNECT, 1000, &p);
	assert_int_equal(gts_table_count(t), 4);

	/* t=50: connection 9 and 20 closed: b goes, the reconnect one stays */
	assert_int_equal(gts_table_sweep(t, 50, dead, 3, &rm), 1);
	assert_int_equal(rm->why, GTS_WHY_CLOSED);
	assert_int_equal(rm->flow.conid, 9);
	gts_table_free_list(t, rm);
	rm = NULL;
	/* t=70: the pending one times out */
	assert_int_equal(gts_table_sweep(t, 70, NULL, 0, &rm), 1);
	assert_int_equal(rm->why, GTS_WHY_PENDING_TIMEOUT);
	gts_table_free_list(t, rm);
	rm = NULL;
	/* t=100: a expires */
	assert_int_equal(gts_table_sweep(t, 100, NULL, 0, &rm), 1);
	assert_int_equal(rm->why, GTS_WHY_EXPIRED);
	assert_int_equal(rm->flow.conid, 1);
	gts_table_free_list(t, rm);
	assert_int_equal(gts_table_count(t), 1);
}

static void test_two_contacts_of_one_aor(void **state)
{
	/* a 2xx lists every contact of the AOR: both stay */
	gts_table_t *t = *state;
	gts_flow_t f1, f2;
	gts_commit_item_t it[2];
	gts_binding_t *rm = NULL;

	prep(t, "sip:1@h", conn(1, 1), 0, 0, &f1);
	prep(t, "sip:2@h", conn(2, 2), 0, 0, &f2);
	assert_int_equal(commit2(t, it, f1, 100, f2, 200, &rm), 2);
	assert_null(rm);
	assert_string_equal(it[0].uri, "sip:1@h");
	assert_string_equal(it[1].uri, "sip:2@h");
	/* next 2xx lists only the second: the first goes (unlisted) */
	assert_int_equal(gts_table_commit(t, AOR, strlen(AOR), &it[1], 1, &rm), 1);
	assert_non_null(rm);
	assert_int_equal(rm->why, GTS_WHY_UNLISTED);
	assert_int_equal(rm->flow.conid, 1);
	gts_table_free_list(t, rm);
	rm = NULL;

	/* listed with expires 0 (drop): its URI is returned for the phone and
	 * the binding goes, even a pending one */
	prep(t, "sip:3@h", conn(3, 3), 0, 0, &f1);
	memset(it, 0, sizeof(it));
	it[0].tok = f1;
	it[0].drop = 1;
	it[1].tok = f2;
	it[1].expires = 300;
	assert_int_equal(gts_table_commit(t, AOR, strlen(AOR), it, 2, &rm), 2);
	assert_int_equal(it[0].found, 1);
	assert_string_equal(it[0].uri, "sip:3@h");
	assert_non_null(rm);
	assert_null(rm->next);
	assert_int_equal(rm->flow.conid, 3);
	gts_table_free_list(t, rm);
	assert_int_equal(gts_table_count(t), 1);
}

static void test_contactless_2xx(void **state)
{
	/* registrars that list no Contact in the 2xx: commit what the REGISTER
	 * (transaction txh) asked for */
	gts_table_t *t = *state;
	gts_flow_t f1, f2, f3;
	gts_view_t v;
	gts_binding_t *rm = NULL;

	prep(t, "sip:1@h", conn(1, 1), 0, 0, &f1);
	prep(t, "sip:2@h", conn(1, 1), 0, 0, &f2);
	gts_table_set_tx(t, &f1, 77, 300);
	gts_table_set_tx(t, &f2, 77, -1);
	/* another transaction's 2xx: nothing */
	assert_int_equal(
			gts_table_commit_tx(t, AOR, strlen(AOR), 78, 1000, 3600, 0, &rm),
			0);
	assert_int_equal(
			gts_table_commit_tx(t, AOR, strlen(AOR), 77, 1000, 3600, 600, &rm),
			2);
	assert_null(rm);
	assert_int_equal(gts_table_lookup(t, &f1, &v), GTS_OK);
	assert_int_equal(v.state, GTS_B_ACTIVE);
	assert_int_equal(v.expires, 1300);
	assert_int_equal(gts_table_lookup(t, &f2, &v), GTS_OK);
	assert_int_equal(v.expires, 1600); /* default 3600 capped at 600 */
	/* a retransmitted 2xx of the same transaction does nothing more */
	assert_int_equal(
			gts_table_commit_tx(t, AOR, strlen(AOR), 77, 1000, 3600, 0, &rm),
			0);

	/* de-registration of one */
	gts_table_set_tx(t, &f1, 79, 0);
	assert_int_equal(
			gts_table_commit_tx(t, AOR, strlen(AOR), 79, 1100, 3600, 0, &rm),
			1);
	assert_non_null(rm);
	assert_int_equal(rm->flow.bid, f1.bid);
	gts_table_free_list(t, rm);
	rm = NULL;
	assert_int_equal(gts_table_count(t), 1);

	/* Contact: * removes every binding of the AOR, not other AORs */
	prep(t, "sip:3@h", conn(2, 2), 0, 0, &f3);
	{
		gts_conn_t oc = conn(9, 9);
		gts_flow_t of;
		assert_int_equal(gts_table_prepare(t, "x@y", 3, "sip:x@h", 7, &oc, 0, 0,
								 0, 64, 1, &of),
				GTS_NEW);
	}
	gts_table_mark_aor_tx(t, AOR, strlen(AOR), 80);
	assert_int_equal(
			gts_table_commit_tx(t, AOR, strlen(AOR), 80, 1200, 3600, 0, &rm),
			2);
	gts_table_free_list(t, rm);
	assert_int_equal(gts_table_count(t), 1); /* x@y stays */
}

static void test_limits(void **state)
{
	gts_table_t t;
	gts_flow_t f;
	gts_conn_t c = conn(1, 1);
	char big[GTS_URI_MAX + 2];
	(void)state;

	assert_int_equal(gts_table_init(&t, 16, 16, 2, &OPS), GTS_OK);
	assert_int_equal(gts_table_prepare(&t, AOR, strlen(AOR), "sip:1@h", 7, &c,
							 0, 0, 0, 64, 1, &f),
			GTS_NEW);
	assert_int_equal(gts_table_prepare(&t, AOR, strlen(AOR), "sip:2@h", 7, &c,
							 0, 0, 0, 64, 1, &f),
			GTS_NEW);
	assert_int_equal(gts_table_prepare(&t, AOR, strlen(AOR), "sip:3@h", 7, &c,
							 0, 0, 0, 64, 1, &f),
			GTS_FULL);
	assert_int_equal(gts_table_count(&t), 2);
	memset(big, 'a', sizeof(big));
	assert_int_equal(gts_table_prepare(&t, AOR, strlen(AOR), big, sizeof(big),
							 &c, 0, 0, 0, 64, 1, &f),
			GTS_BADARG);
	assert_int_equal(
			gts_table_prepare(&t, "", 0, "sip:x@h", 7, &c, 0, 0, 0, 64, 1, &f),
			GTS_BADARG);
	gts_table_destroy(&t);

	/* out of memory: nothing counted */
	assert_int_equal(gts_table_init(&t, 16, 16, 0, &OPS), GTS_OK);
	fail_alloc = 1;
	assert_int_equal(gts_table_prepare(&t, AOR, strlen(AOR), "sip:1@h", 7, &c,
							 0, 0, 0, 64, 1, &f),
			GTS_NOMEM);
	fail_alloc = 0;
	assert_int_equal(gts_table_count(&t), 0);
	gts_table_destroy(&t);
}

static void count_cb(const gts_binding_t *b, void *arg)
{
	(void)b;
	(*(int *)arg)++;
}

static void test_walk_and_many(void **state)
{
	gts_table_t *t = *state;
	gts_flow_t f;
	gts_view_t v;
	char aor[32], uri[64];
	int i, n = 0;
	gts_conn_t c;

	for(i = 0; i < 2000; i++) {
		c = conn((uint32_t)i + 1, (uint16_t)(1000 + i));
		snprintf(aor, sizeof(aor), "%d@example.com", i);
		snprintf(uri, sizeof(uri), "sip:%d@192.0.2.1:5061", i);
		assert_int_equal(gts_table_prepare(t, aor, strlen(aor), uri,
								 strlen(uri), &c, 0, 0, 0, 64, (uint32_t)i, &f),
				GTS_NEW);
		assert_int_equal(gts_table_lookup(t, &f, &v), GTS_OK);
		assert_string_equal(v.uri, uri);
	}
	gts_table_walk(t, NULL, 0, count_cb, &n);
	assert_int_equal(n, 2000);
	n = 0;
	gts_table_walk(t, "17@example.com", 14, count_cb, &n);
	assert_int_equal(n, 1);
	/* a token for a binding that does not exist */
	f.bid ^= 0x5555;
	assert_int_equal(gts_table_lookup(t, &f, &v), GTS_NOTFOUND);
}

static void test_names(void **state)
{
	(void)state;
	assert_int_equal(gts_policy_parse("no-inbound", 10), GTS_POL_NO_INBOUND);
	assert_int_equal(gts_policy_parse("Reconnect", 9), GTS_POL_RECONNECT);
	assert_int_equal(gts_policy_parse("reconnect!", 10), -1);
	assert_string_equal(gts_policy_str(GTS_POL_RECONNECT), "reconnect");
	assert_string_equal(gts_why_str(GTS_WHY_CLOSED), "connection closed");
	assert_string_equal(gts_why_str(99), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_init_rejects_bad_sizes),
			cmocka_unit_test_setup_teardown(
					test_register_commit_lookup, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_new_connection_bumps_generation, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_generation_wraps_to_nonzero, setup, teardown),
			cmocka_unit_test_setup_teardown(test_deregister, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_commit_ignores_other_aor_and_unknown, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_sweep_expiry_and_closed, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_two_contacts_of_one_aor, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_contactless_2xx, setup, teardown),
			cmocka_unit_test(test_limits),
			cmocka_unit_test_setup_teardown(
					test_walk_and_many, setup, teardown),
			cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
