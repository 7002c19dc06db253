/*
 * genesys_oos: a min-heap of targets keyed by their next event (pure logic,
 * no Kamailio deps)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

#ifndef _GOOS_HEAP_H_
#define _GOOS_HEAP_H_

#include <stddef.h>
#include <stdint.h>

/*! one entry: the time a target must be looked at, and its id */
typedef struct goos_hent
{
	int64_t key;
	int id;
} goos_hent_t;

/*! ids are 0..cap-1; pos[id] is the entry index of id, or -1.  The memory
 * (ent and pos) is the caller's: goos_heap_bytes(cap) bytes, so the heap
 * can live in shared memory.  Every operation is O(log n) or O(1). */
typedef struct goos_heap
{
	int n;	 /*!< entries in use */
	int cap; /*!< ids (and entries) the memory holds */
	goos_hent_t *ent;
	int *pos;
} goos_heap_t;

/*! bytes of memory for cap ids */
size_t goos_heap_bytes(int cap);

/*! an empty heap of cap ids in mem (goos_heap_bytes(cap) bytes) */
void goos_heap_init(goos_heap_t *h, void *mem, int cap);

/*! move the heap into mem of newcap >= h->cap ids; returns the old memory
 * (for the caller to free) */
void *goos_heap_grow(goos_heap_t *h, void *mem, int newcap);

/*! insert id or change its key; 0, or -1 for an id out of range */
int goos_heap_set(goos_heap_t *h, int id, int64_t key);

/*! remove id (nothing when absent) */
void goos_heap_del(goos_heap_t *h, int id);

/*! id with the smallest key (its key in *key), or -1 when empty */
int goos_heap_top(const goos_heap_t *h, int64_t *key);

/*! 1 when id is in the heap (its key in *key) */
int goos_heap_has(const goos_heap_t *h, int id, int64_t *key);

#endif
