/*
 * genesys_tlssticky: requests in flight over a phone's flow (pure C)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 *
 * Which transactions were relayed over which flow (connection id), so that
 * when the connection closes every one of them still waiting for its final
 * reply is answered at once instead of on tm's timer.  A fixed pool of
 * slots allocated at start (no allocation per request), split in
 * partitions by connection id, each with its own lock: adding, removing and
 * detaching the transactions of a closed connection are O(1) / O(chain)
 * under one partition lock.  Locks and memory are injected.
 */

#ifndef GTS_INFLIGHT_H
#define GTS_INFLIGHT_H

#include <stddef.h>
#include <stdint.h>

typedef struct gts_if_item
{
	uint32_t conid;
	uint32_t hidx;	/* tm hash index */
	uint32_t label; /* tm label */
	uint8_t policy;
} gts_if_item_t;

typedef struct gts_if_slot
{
	gts_if_item_t it;
	int32_t next; /* in its bucket chain, the free list or the closed list */
} gts_if_slot_t;

typedef struct gts_if_part
{
	int32_t free_head;
	int32_t closed_head;
	unsigned int used;
} gts_if_part_t;

typedef struct gts_if_ops
{
	void *(*alloc)(size_t size);
	void (*free)(void *p);
	void (*lock)(void *ctx, unsigned int idx);
	void (*unlock)(void *ctx, unsigned int idx);
	void *ctx;
} gts_if_ops_t;

typedef struct gts_inflight
{
	unsigned int nparts;   /* power of two; one lock each */
	unsigned int nbuckets; /* power of two, >= nparts */
	unsigned int nslots;   /* a multiple of nparts */
	gts_if_part_t *parts;
	int32_t *heads; /* bucket chains */
	gts_if_slot_t *slots;
	gts_if_ops_t ops;
} gts_inflight_t;

enum gts_if_res
{
	GTS_IF_OK = 0,
	GTS_IF_FULL = 1, /* no free slot in the partition: not tracked */
	GTS_IF_NOTFOUND = 2,
	GTS_IF_ERR = -1
};

/* nslots rounded up to a multiple of nparts; returns GTS_IF_ERR on bad
 * arguments or allocation failure */
int gts_inflight_init(gts_inflight_t *t, unsigned int nslots,
		unsigned int nbuckets, unsigned int nparts, const gts_if_ops_t *ops);
void gts_inflight_destroy(gts_inflight_t *t);

/* the transaction (hidx, label) was relayed over connection conid */
int gts_inflight_add(gts_inflight_t *t, const gts_if_item_t *it);

/* it got its final reply or is destroyed: forget it (NOTFOUND when it was
 * already detached by gts_inflight_close) */
int gts_inflight_del(
		gts_inflight_t *t, uint32_t conid, uint32_t hidx, uint32_t label);

/* connection conid closed: its transactions move to the closed list of
 * their partition; returns how many */
int gts_inflight_close(gts_inflight_t *t, uint32_t conid);

/* up to max transactions of closed connections, taken from partition part
 * (their slots are freed); returns how many were copied to out */
int gts_inflight_take_closed(
		gts_inflight_t *t, unsigned int part, gts_if_item_t *out, int max);

/* slots in use (all partitions; not locked: for statistics) */
unsigned int gts_inflight_used(const gts_inflight_t *t);

#endif
