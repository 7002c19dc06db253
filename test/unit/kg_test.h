/* shared by the genesys_ha unit tests and fuzz harnesses: the malloc-backed
 * allocator handed to the pool model (gha_alloc_t's alloc and free).  With
 * an int counter as ctx it counts the live blocks (a test asserts the
 * counter is back at 0: nothing leaked, nothing freed twice); with ctx NULL
 * it only allocates. */
#ifndef KG_TEST_H
#define KG_TEST_H

#include <stddef.h>
#include <stdlib.h>

static inline void *t_alloc(size_t n, void *ctx)
{
	if(ctx)
		(*(int *)ctx)++;
	return malloc(n);
}

static inline void t_free(void *p, void *ctx)
{
	if(ctx)
		(*(int *)ctx)--;
	free(p);
}

/* genesys_tlssticky's tables (gts_table, gts_inflight), when the test
 * defines KG_NLOCKS (how many lock indexes the table has) before including
 * this, after cmocka.h: their ops' malloc, which fails while fail_alloc is
 * set, and lock/unlock that fail the test when an index is out of range,
 * taken twice or given back without being taken. */
#ifdef KG_NLOCKS
static int locked[KG_NLOCKS];
static int fail_alloc;

static inline void *ts_alloc(size_t n)
{
	return fail_alloc ? NULL : malloc(n);
}

static inline void ts_free(void *p)
{
	free(p);
}

static inline void ts_lock(void *ctx, unsigned int i)
{
	(void)ctx;
	assert_true(i < KG_NLOCKS);
	assert_int_equal(locked[i], 0); /* never taken twice */
	locked[i] = 1;
}

static inline void ts_unlock(void *ctx, unsigned int i)
{
	(void)ctx;
	assert_true(i < KG_NLOCKS);
	assert_int_equal(locked[i], 1);
	locked[i] = 0;
}
#endif

#endif
