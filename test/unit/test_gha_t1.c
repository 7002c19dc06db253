/* cmocka tests: genesys_ha T1 check (gha_t1.c): the ring of relayed
 * requests and the verdict on one branch */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "genesys_ha/gha_t1.h"

static gha_t1_ring_t *ring(unsigned int want)
{
	size_t size;
	unsigned int n = gha_t1_ring_slots(want, &size);
	gha_t1_ring_t *r = calloc(1, size);

	assert_non_null(r);
	gha_t1_ring_init(r, n);
	return r;
}

/* n entries put, the i-th with hash and time i */
static void fill(gha_t1_ring_t *r, unsigned int n)
{
	unsigned int i;
	for(i = 0; i < n; i++)
		gha_t1_ring_put(r, i, i);
}

/* the entry the reader is at: there must be one; its hash (and its time in
 * *at unless at is NULL) */
static unsigned int peek1(
		gha_t1_ring_t *r, gha_t1_reader_t *rd, unsigned int *at)
{
	unsigned int h, a;
	assert_int_equal(gha_t1_ring_peek(r, rd, &h, &a), 1);
	if(at)
		*at = a;
	return h;
}

static void test_slots_power_of_two(void **state)
{
	size_t size;
	(void)state;
	assert_int_equal(gha_t1_ring_slots(16, &size), 16);
	assert_int_equal(size, sizeof(gha_t1_ring_t) + 16 * sizeof(gha_t1_slot_t));
	assert_int_equal(gha_t1_ring_slots(17, NULL), 32);
	assert_int_equal(gha_t1_ring_slots(4096, NULL), 4096);
	assert_int_equal(gha_t1_ring_slots(1, NULL), 1);
}

/* The ring cases each set up their own ring and reader: the writes and
 * reads in between are the scenario, so their alike openings stay. */
static void test_fifo(void **state)
{
	gha_t1_ring_t *r = ring(16);
	gha_t1_reader_t rd = {0, 0};
	unsigned int h, at, i;
	(void)state;
	assert_int_equal(gha_t1_ring_peek(r, &rd, &h, &at), 0);
	for(i = 0; i < 10; i++)
		gha_t1_ring_put(r, 100 + i, 1000 + i);
	for(i = 0; i < 10; i++) {
		assert_int_equal(peek1(r, &rd, &at), 100 + i);
		assert_int_equal(at, 1000 + i);
		/* peeking again without next() gives the same entry */
		assert_int_equal(peek1(r, &rd, NULL), 100 + i);
		gha_t1_ring_next(&rd);
	}
	assert_int_equal(gha_t1_ring_peek(r, &rd, &h, &at), 0);
	assert_int_equal(rd.lost, 0);
	free(r);
}

static void test_lapped_reader_skips_lost(void **state)
{
	gha_t1_ring_t *r = ring(16);
	gha_t1_reader_t rd = {0, 0};
	unsigned int h, at, i;
	(void)state;
	fill(r, 40);
	/* 40 written into 16 slots: the 24 oldest are gone */
	for(i = 24; i < 40; i++) {
		assert_int_equal(peek1(r, &rd, NULL), i);
		gha_t1_ring_next(&rd);
	}
	assert_int_equal(rd.lost, 24);
	assert_int_equal(gha_t1_ring_peek(r, &rd, &h, &at), 0);
	free(r);
}

static void test_slot_being_written_is_not_read(void **state)
{
	gha_t1_ring_t *r = ring(16);
	gha_t1_reader_t rd = {0, 0};
	unsigned int h, at;
	(void)state;
	gha_t1_ring_put(r, 7, 70);
	/* a writer took index 1 but has not published it yet */
	__atomic_fetch_add(&r->head, 1, __ATOMIC_RELAXED);
	assert_int_equal(peek1(r, &rd, NULL), 7);
	gha_t1_ring_next(&rd);
	assert_int_equal(gha_t1_ring_peek(r, &rd, &h, &at), 0);
	assert_int_equal(rd.tail, 1);
	/* it publishes: readable */
	r->slot[1].hash = 8;
	r->slot[1].at = 80;
	__atomic_store_n(&r->slot[1].seq, 2, __ATOMIC_RELEASE);
	assert_int_equal(peek1(r, &rd, NULL), 8);
	assert_int_equal(rd.lost, 0);
	free(r);
}

static void test_overwritten_slot_is_skipped(void **state)
{
	gha_t1_ring_t *r = ring(16);
	gha_t1_reader_t rd = {0, 0};
	(void)state;
	fill(r, 16);
	/* the reader saw head 16, then a writer lapped slot 0 (index 16)
	 * before the reader looked at it */
	r->slot[0].hash = 16;
	__atomic_store_n(&r->slot[0].seq, 17, __ATOMIC_RELEASE);
	assert_int_equal(peek1(r, &rd, NULL), 1);
	assert_int_equal(rd.lost, 1);
	free(r);
}

static void test_verdict(void **state)
{
	(void)state;
	/* a reply (100, 180, 200...): nothing to learn */
	assert_int_equal(gha_t1_verdict(100, 4000, 500, 600, 400), GHA_T1_DONE);
	assert_int_equal(gha_t1_verdict(200, 4000, 500, 600, 400), GHA_T1_DONE);
	/* no reply, first retransmission sent (interval doubled) */
	assert_int_equal(gha_t1_verdict(0, 2000, 500, 600, 400), GHA_T1_PROBE);
	assert_int_equal(gha_t1_verdict(0, 4000, 500, 3000, 400), GHA_T1_PROBE);
	/* no reply, not retransmitted yet: wait, then give up */
	assert_int_equal(gha_t1_verdict(0, 1000, 500, 450, 400), GHA_T1_WAIT);
	assert_int_equal(gha_t1_verdict(0, 1000, 500, 1399, 400), GHA_T1_WAIT);
	assert_int_equal(gha_t1_verdict(0, 1000, 500, 1400, 400), GHA_T1_DONE);
	/* a transaction with its own, longer T1 */
	assert_int_equal(gha_t1_verdict(0, 2000, 1000, 1500, 400), GHA_T1_WAIT);
	assert_int_equal(gha_t1_verdict(0, 4000, 1000, 1500, 400), GHA_T1_PROBE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_slots_power_of_two),
			cmocka_unit_test(test_fifo),
			cmocka_unit_test(test_lapped_reader_skips_lost),
			cmocka_unit_test(test_slot_being_written_is_not_read),
			cmocka_unit_test(test_overwritten_slot_is_skipped),
			cmocka_unit_test(test_verdict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
