/* cmocka tests: genesys_tlssticky requests in flight (gts_inflight.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "genesys_tlssticky/gts_inflight.h"

#define KG_NLOCKS 16
#include "kg_test.h"

static const gts_if_ops_t OPS = {ts_alloc, ts_free, ts_lock, ts_unlock, NULL};

static gts_if_item_t item(uint32_t conid, uint32_t hidx, uint32_t label)
{
	gts_if_item_t it;
	memset(&it, 0, sizeof(it));
	it.conid = conid;
	it.hidx = hidx;
	it.label = label;
	it.policy = (uint8_t)(label & 1);
	return it;
}

/* gts_inflight_add of item(conid, hidx, label) */
static int add(gts_inflight_t *t, uint32_t conid, uint32_t hidx, uint32_t label)
{
	gts_if_item_t it = item(conid, hidx, label);
	return gts_inflight_add(t, &it);
}

static int take_all(gts_inflight_t *t, gts_if_item_t *out, int max)
{
	unsigned int p;
	int n = 0;
	for(p = 0; p < t->nparts; p++)
		n += gts_inflight_take_closed(t, p, out + n, max - n);
	return n;
}

/* Each case spells out its own table size and sequence of adds, closes and
 * takes: alike in shape (and alike to test_gts_table's size checks, another
 * API), but the sequence is the scenario, so it is not shared. */
static void test_init_args(void **state)
{
	gts_inflight_t t;
	(void)state;
	assert_int_equal(gts_inflight_init(&t, 10, 16, 3, &OPS), GTS_IF_ERR);
	assert_int_equal(gts_inflight_init(&t, 10, 4, 8, &OPS), GTS_IF_ERR);
	assert_int_equal(gts_inflight_init(&t, 0, 16, 4, &OPS), GTS_IF_ERR);
	fail_alloc = 1;
	assert_int_equal(gts_inflight_init(&t, 10, 16, 4, &OPS), GTS_IF_ERR);
	fail_alloc = 0;
	assert_int_equal(gts_inflight_init(&t, 10, 16, 4, &OPS), GTS_IF_OK);
	assert_int_equal(t.nslots, 12); /* a multiple of the partitions */
	gts_inflight_destroy(&t);
}

/* a closed connection detaches exactly its transactions, once */
static void test_close_takes_its_own(void **state)
{
	gts_inflight_t t;
	gts_if_item_t out[16];
	int n;
	(void)state;

	assert_int_equal(gts_inflight_init(&t, 64, 16, 4, &OPS), GTS_IF_OK);
	/* conid 7 and 23 share a bucket (16 buckets) */
	assert_int_equal(add(&t, 7, 100, 1), GTS_IF_OK);
	assert_int_equal(add(&t, 23, 100, 2), GTS_IF_OK);
	assert_int_equal(add(&t, 7, 200, 3), GTS_IF_OK);
	assert_int_equal(add(&t, 8, 300, 4), GTS_IF_OK);
	assert_int_equal(gts_inflight_used(&t), 4);

	/* nothing closed yet */
	assert_int_equal(take_all(&t, out, 16), 0);
	assert_int_equal(gts_inflight_close(&t, 7), 2);
	assert_int_equal(gts_inflight_close(&t, 7), 0);
	assert_int_equal(gts_inflight_close(&t, 99), 0);
	/* a final reply racing the close: already detached */
	assert_int_equal(gts_inflight_del(&t, 7, 100, 1), GTS_IF_NOTFOUND);
	n = take_all(&t, out, 16);
	assert_int_equal(n, 2);
	assert_true((out[0].label == 1 && out[1].label == 3)
				|| (out[0].label == 3 && out[1].label == 1));
	assert_int_equal(out[0].conid, 7);
	assert_int_equal(out[out[0].label == 3 ? 0 : 1].policy, 1);
	assert_int_equal(take_all(&t, out, 16), 0);
	assert_int_equal(gts_inflight_used(&t), 2);

	/* the others are untouched and removed by their final reply */
	assert_int_equal(gts_inflight_del(&t, 23, 100, 2), GTS_IF_OK);
	assert_int_equal(gts_inflight_del(&t, 23, 100, 2), GTS_IF_NOTFOUND);
	assert_int_equal(gts_inflight_del(&t, 8, 300, 999), GTS_IF_NOTFOUND);
	assert_int_equal(gts_inflight_del(&t, 8, 300, 4), GTS_IF_OK);
	assert_int_equal(gts_inflight_used(&t), 0);
	gts_inflight_destroy(&t);
}

/* a full partition refuses (the request then waits for tm's timer);
 * freed slots are reused; take_closed honours max */
static void test_full_and_reuse(void **state)
{
	gts_inflight_t t;
	gts_if_item_t out[4];
	uint32_t i;
	(void)state;

	assert_int_equal(gts_inflight_init(&t, 8, 4, 2, &OPS), GTS_IF_OK);
	/* conids 0, 2, 4... are partition 0: 4 slots */
	for(i = 0; i < 4; i++) {
		assert_int_equal(add(&t, 2 * i, i, i), GTS_IF_OK);
	}
	assert_int_equal(add(&t, 8, 9, 9), GTS_IF_FULL);
	/* partition 1 still has room */
	assert_int_equal(add(&t, 1, 9, 9), GTS_IF_OK);
	assert_int_equal(gts_inflight_del(&t, 2, 1, 1), GTS_IF_OK);
	assert_int_equal(add(&t, 8, 9, 9), GTS_IF_OK);

	/* conids 0 and 8 share bucket 0: close 0 leaves 8 in place */
	assert_int_equal(gts_inflight_close(&t, 0), 1);
	assert_int_equal(gts_inflight_close(&t, 4), 1);
	assert_int_equal(gts_inflight_close(&t, 6), 1);
	assert_int_equal(gts_inflight_take_closed(&t, 0, out, 2), 2);
	assert_int_equal(gts_inflight_take_closed(&t, 0, out, 2), 1);
	assert_int_equal(gts_inflight_take_closed(&t, 0, out, 2), 0);
	assert_int_equal(gts_inflight_take_closed(&t, 7, out, 2), 0);
	assert_int_equal(gts_inflight_del(&t, 8, 9, 9), GTS_IF_OK);
	assert_int_equal(gts_inflight_del(&t, 1, 9, 9), GTS_IF_OK);
	assert_int_equal(gts_inflight_used(&t), 0);
	/* every slot back on the free lists */
	for(i = 0; i < 4; i++) {
		assert_int_equal(add(&t, 2 * i, i, i), GTS_IF_OK);
	}
	gts_inflight_destroy(&t);
}

/* many connections, random order of final replies and closes */
static void test_many(void **state)
{
	gts_inflight_t t;
	gts_if_item_t out[64];
	uint32_t c, k, closed = 0;
	unsigned int seed = 1;
	(void)state;

	assert_int_equal(gts_inflight_init(&t, 4096, 256, 8, &OPS), GTS_IF_OK);
	for(c = 1; c <= 500; c++)
		for(k = 0; k < 3; k++) {
			assert_int_equal(add(&t, c, c, k), GTS_IF_OK);
		}
	for(c = 1; c <= 500; c++) {
		seed = seed * 1103515245 + 12345;
		if(seed & 0x100) {
			closed += gts_inflight_close(&t, c);
		} else {
			for(k = 0; k < 3; k++)
				assert_int_equal(gts_inflight_del(&t, c, c, k), GTS_IF_OK);
		}
	}
	while((k = take_all(&t, out, 64)) > 0) {
		while(k--)
			assert_int_equal(out[k].conid, out[k].hidx);
	}
	assert_true(closed > 0);
	assert_int_equal(gts_inflight_used(&t), 0);
	gts_inflight_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_init_args),
			cmocka_unit_test(test_close_takes_its_own),
			cmocka_unit_test(test_full_and_reuse),
			cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
