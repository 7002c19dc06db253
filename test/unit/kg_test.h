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

#endif
