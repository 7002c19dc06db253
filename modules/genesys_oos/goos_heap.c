/*
 * genesys_oos: a min-heap of targets keyed by their next event (pure logic,
 * no Kamailio deps)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

#include <string.h>

#include "goos_heap.h"

size_t goos_heap_bytes(int cap)
{
	return (size_t)cap * (sizeof(goos_hent_t) + sizeof(int));
}

void goos_heap_init(goos_heap_t *h, void *mem, int cap)
{
	int i;

	h->n = 0;
	h->cap = cap;
	h->ent = (goos_hent_t *)mem;
	h->pos = (int *)((char *)mem + (size_t)cap * sizeof(goos_hent_t));
	for(i = 0; i < cap; i++)
		h->pos[i] = -1;
}

void *goos_heap_grow(goos_heap_t *h, void *mem, int newcap)
{
	void *old = h->ent;
	goos_heap_t nh;
	int i;

	goos_heap_init(&nh, mem, newcap);
	memcpy(nh.ent, h->ent, (size_t)h->n * sizeof(goos_hent_t));
	for(i = 0; i < h->cap; i++)
		nh.pos[i] = h->pos[i];
	nh.n = h->n;
	*h = nh;
	return old;
}

static void goos_heap_place(goos_heap_t *h, int i, goos_hent_t e)
{
	h->ent[i] = e;
	h->pos[e.id] = i;
}

static void goos_heap_up(goos_heap_t *h, int i)
{
	goos_hent_t e = h->ent[i];
	int p;

	while(i > 0) {
		p = (i - 1) / 2;
		if(h->ent[p].key <= e.key)
			break;
		goos_heap_place(h, i, h->ent[p]);
		i = p;
	}
	goos_heap_place(h, i, e);
}

static void goos_heap_down(goos_heap_t *h, int i)
{
	goos_hent_t e = h->ent[i];
	int c;

	for(;;) {
		c = 2 * i + 1;
		if(c >= h->n)
			break;
		if(c + 1 < h->n && h->ent[c + 1].key < h->ent[c].key)
			c++;
		if(e.key <= h->ent[c].key)
			break;
		goos_heap_place(h, i, h->ent[c]);
		i = c;
	}
	goos_heap_place(h, i, e);
}

int goos_heap_set(goos_heap_t *h, int id, int64_t key)
{
	int i;
	int64_t old;

	if(id < 0 || id >= h->cap)
		return -1;
	i = h->pos[id];
	if(i < 0) {
		i = h->n++;
		h->ent[i].key = key;
		h->ent[i].id = id;
		h->pos[id] = i;
		goos_heap_up(h, i);
		return 0;
	}
	old = h->ent[i].key;
	h->ent[i].key = key;
	if(key < old)
		goos_heap_up(h, i);
	else if(key > old)
		goos_heap_down(h, i);
	return 0;
}

void goos_heap_del(goos_heap_t *h, int id)
{
	int i;
	int64_t old;

	if(id < 0 || id >= h->cap || (i = h->pos[id]) < 0)
		return;
	h->pos[id] = -1;
	h->n--;
	if(i == h->n)
		return;
	old = h->ent[i].key;
	goos_heap_place(h, i, h->ent[h->n]);
	if(h->ent[i].key < old)
		goos_heap_up(h, i);
	else
		goos_heap_down(h, i);
}

int goos_heap_top(const goos_heap_t *h, int64_t *key)
{
	if(h->n == 0)
		return -1;
	if(key)
		*key = h->ent[0].key;
	return h->ent[0].id;
}

int goos_heap_has(const goos_heap_t *h, int id, int64_t *key)
{
	if(id < 0 || id >= h->cap || h->pos[id] < 0)
		return 0;
	if(key)
		*key = h->ent[h->pos[id]].key;
	return 1;
}
