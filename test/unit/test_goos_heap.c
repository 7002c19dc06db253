/*
 * unit tests: genesys_oos goos_heap.c (timer heap of the probe scheduler)
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <cmocka.h>

#include "genesys_oos/goos_heap.h"

#define CAP 300

/* the smallest key of the model, -1 when empty */
static int model_min(const int64_t *key, const int *in, int cap, int64_t *k)
{
	int i, best = -1;

	for(i = 0; i < cap; i++)
		if(in[i] && (best < 0 || key[i] < key[best]))
			best = i;
	if(best >= 0)
		*k = key[best];
	return best;
}

static void check_invariants(const goos_heap_t *h)
{
	int i;

	for(i = 1; i < h->n; i++)
		assert_true(h->ent[(i - 1) / 2].key <= h->ent[i].key);
	for(i = 0; i < h->n; i++)
		assert_int_equal(h->pos[h->ent[i].id], i);
}

/* random inserts, key changes both ways and deletions against a model */
static void test_random_against_model(void **state)
{
	void *mem = malloc(goos_heap_bytes(CAP));
	goos_heap_t h;
	int64_t key[CAP], k, mk;
	int in[CAP] = {0};
	int i, id, top, n = 0;

	(void)state;
	goos_heap_init(&h, mem, CAP);
	srand(7);
	for(i = 0; i < 20000; i++) {
		id = rand() % CAP;
		if(rand() % 4 == 0) {
			goos_heap_del(&h, id);
			n -= in[id];
			in[id] = 0;
		} else {
			key[id] = rand() % 1000;
			assert_int_equal(goos_heap_set(&h, id, key[id]), 0);
			n += !in[id];
			in[id] = 1;
		}
		assert_int_equal(h.n, n);
		if(i % 97 == 0)
			check_invariants(&h);
		top = goos_heap_top(&h, &k);
		if(n == 0) {
			assert_int_equal(top, -1);
			continue;
		}
		assert_true(model_min(key, in, CAP, &mk) >= 0);
		assert_true(k == mk);
		assert_true(in[top] && key[top] == k);
		assert_int_equal(goos_heap_has(&h, id, &k), in[id]);
	}
	free(mem);
}

/* popping everything yields the keys in order */
static void test_pop_order(void **state)
{
	void *mem = malloc(goos_heap_bytes(CAP));
	goos_heap_t h;
	int64_t k, last = -1;
	int i, id;

	(void)state;
	goos_heap_init(&h, mem, CAP);
	for(i = 0; i < CAP; i++)
		goos_heap_set(&h, i, (i * 7919) % 1009);
	for(i = 0; i < CAP; i++) {
		id = goos_heap_top(&h, &k);
		assert_true(id >= 0);
		assert_true(k >= last);
		last = k;
		goos_heap_del(&h, id);
	}
	assert_int_equal(goos_heap_top(&h, NULL), -1);
	free(mem);
}

/* growing keeps every entry, new ids become usable; bad ids refused */
static void test_grow_and_range(void **state)
{
	void *mem = malloc(goos_heap_bytes(10)), *mem2, *old;
	goos_heap_t h;
	int64_t k;
	int i;

	(void)state;
	goos_heap_init(&h, mem, 10);
	for(i = 0; i < 10; i++)
		goos_heap_set(&h, i, 100 - i);
	assert_int_equal(goos_heap_set(&h, 10, 1), -1);
	assert_int_equal(goos_heap_set(&h, -1, 1), -1);
	mem2 = malloc(goos_heap_bytes(40));
	old = goos_heap_grow(&h, mem2, 40);
	assert_ptr_equal(old, mem);
	free(old);
	assert_int_equal(h.n, 10);
	assert_int_equal(goos_heap_set(&h, 39, 5), 0);
	assert_int_equal(goos_heap_top(&h, &k), 39);
	assert_true(k == 5);
	assert_int_equal(goos_heap_has(&h, 20, NULL), 0);
	assert_int_equal(goos_heap_has(&h, 3, &k), 1);
	assert_true(k == 97);
	check_invariants(&h);
	goos_heap_del(&h, 20); /* absent: nothing */
	assert_int_equal(h.n, 11);
	free(mem2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_random_against_model),
			cmocka_unit_test(test_pop_order),
			cmocka_unit_test(test_grow_and_range),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
