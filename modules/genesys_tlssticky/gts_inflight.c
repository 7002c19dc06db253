/*
 * genesys_tlssticky: requests in flight over a phone's flow (pure C)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

#include <string.h>

#include "gts_inflight.h"

static int pow2(unsigned int v)
{
	return v > 0 && (v & (v - 1)) == 0;
}

static unsigned int bucket_of(const gts_inflight_t *t, uint32_t conid)
{
	/* conids are sequential: the low bits spread them */
	return conid & (t->nbuckets - 1);
}

/* buckets b with b % nparts == p belong to partition p */
static unsigned int part_of(const gts_inflight_t *t, unsigned int bucket)
{
	return bucket & (t->nparts - 1);
}

int gts_inflight_init(gts_inflight_t *t, unsigned int nslots,
		unsigned int nbuckets, unsigned int nparts, const gts_if_ops_t *ops)
{
	unsigned int p, i, per;

	memset(t, 0, sizeof(*t));
	if(!pow2(nparts) || !pow2(nbuckets) || nbuckets < nparts || nslots == 0
			|| ops == NULL || ops->alloc == NULL)
		return GTS_IF_ERR;
	per = (nslots + nparts - 1) / nparts;
	t->ops = *ops;
	t->nparts = nparts;
	t->nbuckets = nbuckets;
	t->nslots = per * nparts;
	t->parts = ops->alloc(nparts * sizeof(*t->parts));
	t->heads = ops->alloc(nbuckets * sizeof(*t->heads));
	t->slots = ops->alloc((size_t)t->nslots * sizeof(*t->slots));
	if(t->parts == NULL || t->heads == NULL || t->slots == NULL) {
		gts_inflight_destroy(t);
		return GTS_IF_ERR;
	}
	for(i = 0; i < nbuckets; i++)
		t->heads[i] = -1;
	memset(t->slots, 0, (size_t)t->nslots * sizeof(*t->slots));
	for(p = 0; p < nparts; p++) {
		t->parts[p].closed_head = -1;
		t->parts[p].used = 0;
		/* slots [p*per, (p+1)*per) are partition p's */
		t->parts[p].free_head = (int32_t)(p * per);
		for(i = p * per; i < (p + 1) * per; i++)
			t->slots[i].next = i + 1 < (p + 1) * per ? (int32_t)(i + 1) : -1;
	}
	return GTS_IF_OK;
}

void gts_inflight_destroy(gts_inflight_t *t)
{
	if(t->ops.free) {
		if(t->slots)
			t->ops.free(t->slots);
		if(t->heads)
			t->ops.free(t->heads);
		if(t->parts)
			t->ops.free(t->parts);
	}
	t->slots = NULL;
	t->heads = NULL;
	t->parts = NULL;
}

static void lock(gts_inflight_t *t, unsigned int p)
{
	if(t->ops.lock)
		t->ops.lock(t->ops.ctx, p);
}

static void unlock(gts_inflight_t *t, unsigned int p)
{
	if(t->ops.unlock)
		t->ops.unlock(t->ops.ctx, p);
}

int gts_inflight_add(gts_inflight_t *t, const gts_if_item_t *it)
{
	unsigned int b = bucket_of(t, it->conid), p = part_of(t, b);
	int32_t s;

	lock(t, p);
	s = t->parts[p].free_head;
	if(s < 0) {
		unlock(t, p);
		return GTS_IF_FULL;
	}
	t->parts[p].free_head = t->slots[s].next;
	t->slots[s].it = *it;
	t->slots[s].next = t->heads[b];
	t->heads[b] = s;
	t->parts[p].used++;
	unlock(t, p);
	return GTS_IF_OK;
}

int gts_inflight_del(
		gts_inflight_t *t, uint32_t conid, uint32_t hidx, uint32_t label)
{
	unsigned int b = bucket_of(t, conid), p = part_of(t, b);
	int32_t *pp, s;

	lock(t, p);
	for(pp = &t->heads[b]; (s = *pp) >= 0; pp = &t->slots[s].next) {
		if(t->slots[s].it.conid == conid && t->slots[s].it.hidx == hidx
				&& t->slots[s].it.label == label) {
			*pp = t->slots[s].next;
			t->slots[s].next = t->parts[p].free_head;
			t->parts[p].free_head = s;
			t->parts[p].used--;
			unlock(t, p);
			return GTS_IF_OK;
		}
	}
	unlock(t, p);
	return GTS_IF_NOTFOUND;
}

int gts_inflight_close(gts_inflight_t *t, uint32_t conid)
{
	unsigned int b = bucket_of(t, conid), p = part_of(t, b);
	int32_t *pp, s;
	int n = 0;

	lock(t, p);
	pp = &t->heads[b];
	while((s = *pp) >= 0) {
		if(t->slots[s].it.conid == conid) {
			*pp = t->slots[s].next;
			t->slots[s].next = t->parts[p].closed_head;
			t->parts[p].closed_head = s;
			n++;
		} else {
			pp = &t->slots[s].next;
		}
	}
	unlock(t, p);
	return n;
}

int gts_inflight_take_closed(
		gts_inflight_t *t, unsigned int part, gts_if_item_t *out, int max)
{
	int32_t s;
	int n = 0;

	if(part >= t->nparts)
		return 0;
	/* unlocked peek: the common case (nothing closed) takes no lock; a
	 * list filled meanwhile is seen at the next call (the next tick) */
	if(t->parts[part].closed_head < 0)
		return 0;
	lock(t, part);
	while(n < max && (s = t->parts[part].closed_head) >= 0) {
		out[n++] = t->slots[s].it;
		t->parts[part].closed_head = t->slots[s].next;
		t->slots[s].next = t->parts[part].free_head;
		t->parts[part].free_head = s;
		t->parts[part].used--;
	}
	unlock(t, part);
	return n;
}

unsigned int gts_inflight_used(const gts_inflight_t *t)
{
	unsigned int p, n = 0;
	for(p = 0; p < t->nparts; p++)
		n += t->parts[p].used;
	return n;
}
