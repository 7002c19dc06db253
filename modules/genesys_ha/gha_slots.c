/*
 * genesys_ha module: runtime state slots (pure logic, no Kamailio runtime)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: runtime state slots (see gha_slots.h)
 */

#include <string.h>

#include "common/kg_hash.h"
#include "gha_slots.h"

void gha_slots_init(gha_slots_t *t)
{
	int i;

	memset(t, 0, sizeof(*t));
	t->free_head = -1;
	for(i = 0; i < GHA_SLOT_BUCKETS; i++)
		t->bucket[i] = -1;
}

void gha_slots_destroy(gha_slots_t *t, const gha_alloc_t *a)
{
	int i;

	for(i = 0; i < t->nchunks; i++)
		a->free(t->chunk[i], a->ctx);
	gha_slots_init(t);
}

gha_slot_t *gha_slots_at(gha_slots_t *t, int idx)
{
	if(idx < 0 || idx >= t->nslots)
		return NULL;
	return &t->chunk[idx / GHA_SLOT_CHUNK][idx % GHA_SLOT_CHUNK];
}

int gha_slots_reserve(gha_slots_t *t, int n, const gha_alloc_t *a)
{
	gha_slot_t *c;
	int i;

	while(t->nslots - t->used < n) {
		if(t->nchunks >= GHA_SLOT_CHUNKS)
			return -1;
		c = a->alloc(sizeof(gha_slot_t) * GHA_SLOT_CHUNK, a->ctx);
		if(c == NULL)
			return -1;
		memset(c, 0, sizeof(gha_slot_t) * GHA_SLOT_CHUNK);
		t->chunk[t->nchunks++] = c;
		/* the new slots on the free list, lowest index first */
		for(i = GHA_SLOT_CHUNK - 1; i >= 0; i--) {
			c[i].idx = t->nslots + i;
			c[i].next = t->free_head;
			t->free_head = c[i].idx;
		}
		t->nslots += GHA_SLOT_CHUNK;
	}
	return 0;
}

static int key_add(char *buf, int size, int at, const str *s)
{
	if(at < 0 || s->len < 0 || at + s->len + 1 > size)
		return -1;
	if(s->len > 0)
		memcpy(buf + at, s->s, (size_t)s->len);
	buf[at + s->len] = '\0';
	return at + s->len + 1;
}

int gha_slots_pair_key(const gha_pair_t *pr, char *buf, int size)
{
	int n = key_add(buf, size, 0, &pr->name);

	n = key_add(buf, size, n, &pr->m[0].dst);
	n = key_add(buf, size, n, &pr->m[1].dst);
	return n;
}

int gha_slots_fs_key(const gha_fs_t *fs, char *buf, int size)
{
	return key_add(buf, size, 0, &fs->m.dst);
}

gha_slot_t *gha_slots_get(
		gha_slots_t *t, int kind, const char *key, int len, int *created)
{
	uint32_t h;
	int b, i;
	gha_slot_t *s;

	*created = 0;
	if(len <= 0 || len > GHA_SLOT_KEY_MAX)
		return NULL;
	h = kg_fnv1a(KG_FNV_SEED, key, len > 0 ? (size_t)len : 0) ^ (uint32_t)kind;
	b = (int)(h % GHA_SLOT_BUCKETS);
	for(i = t->bucket[b]; i >= 0; i = s->next) {
		s = gha_slots_at(t, i);
		if(s->kind == kind && s->hash == h && s->key_len == len
				&& memcmp(s->key, key, (size_t)len) == 0) {
			s->refs++;
			return s;
		}
	}
	if(t->free_head < 0)
		return NULL;
	s = gha_slots_at(t, t->free_head);
	t->free_head = s->next;
	i = s->idx;
	memset(s, 0, sizeof(*s));
	s->idx = i;
	s->kind = kind;
	s->refs = 1;
	s->hash = h;
	s->key_len = len;
	memcpy(s->key, key, (size_t)len);
	s->next = t->bucket[b];
	t->bucket[b] = s->idx;
	t->used++;
	*created = 1;
	return s;
}

void gha_slots_put(gha_slots_t *t, gha_slot_t *s)
{
	int b, *pp;
	gha_slot_t *x;

	if(s == NULL || s->refs <= 0)
		return;
	if(--s->refs > 0)
		return;
	b = (int)(s->hash % GHA_SLOT_BUCKETS);
	for(pp = &t->bucket[b]; *pp >= 0; pp = &x->next) {
		x = gha_slots_at(t, *pp);
		if(x == s) {
			*pp = s->next;
			break;
		}
	}
	s->kind = GHA_SLOT_FREE;
	s->next = t->free_head;
	t->free_head = s->idx;
	t->used--;
}

static int same_dst(const gha_member_t *a, const gha_member_t *b)
{
	return a->dst.len == b->dst.len
		   && memcmp(a->dst.s, b->dst.s, (size_t)a->dst.len) == 0;
}

/* a pair slot that starts anew: probe states, or what old said about a
 * member that stays in the pair of the same name */
static void pair_start(gha_slot_t *s, const gha_pair_t *n, const gha_pair_t *op,
		const int *ms, long now)
{
	gha_pair_events_t ev;
	int k, o, st;

	memset(&s->st, 0, sizeof(s->st));
	s->n_new = s->n_rejected = s->n_indialog = s->n_failover = 0;
	gha_ps_init(&s->st, now);
	for(k = 0; k < 2; k++) {
		st = ms[k];
		if(op && op->slot) {
			for(o = 0; o < 2; o++)
				if(same_dst(&op->m[o], &n->m[k])) {
					st = op->slot->st.mstate[o];
					if(o == op->slot->st.active)
						s->st.active = k;
				}
		}
		gha_ps_member_changed(&s->st, k, st, now, &ev);
	}
}

int gha_slots_attach(gha_slots_t *t, gha_pool_t *np, const gha_pool_t *old,
		const int *ms, const int *fss, long now)
{
	char key[GHA_SLOT_KEY_MAX];
	int i, j, n, created;
	gha_slot_t *s;

	t->epoch++;
	for(i = 0; i < np->npairs; i++)
		np->pairs[i].slot = NULL;
	for(i = 0; i < np->nfs; i++)
		np->fs[i].slot = NULL;
	for(i = 0; i < np->npairs; i++) {
		gha_pair_t *pr = &np->pairs[i];
		const gha_pair_t *op = NULL;
		n = gha_slots_pair_key(pr, key, sizeof(key));
		s = gha_slots_get(t, GHA_SLOT_PAIR, key, n, &created);
		if(s == NULL)
			goto error;
		pr->slot = s;
		s->epoch = t->epoch;
		/* the same pair as in old: its state as is (a slot of an older
		 * snapshot still held somewhere, not old's, is stale) */
		if(!created && old && s->gen == old->generation)
			continue;
		j = old ? gha_pool_find_pair(old, pr->name.s, pr->name.len) : -1;
		if(j >= 0)
			op = &old->pairs[j];
		pair_start(s, pr, op, ms + 2 * i, now);
	}
	for(i = 0; i < np->nfs; i++) {
		gha_fs_t *fs = &np->fs[i];
		n = gha_slots_fs_key(fs, key, sizeof(key));
		s = gha_slots_get(t, GHA_SLOT_FS, key, n, &created);
		if(s == NULL)
			goto error;
		fs->slot = s;
		/* old's, or the same destination twice in np: as is */
		if(created
				|| !((old && s->gen == old->generation)
						|| s->epoch == t->epoch)) {
			s->fs_state = fss[i];
			s->fs_since = now;
		}
		s->epoch = t->epoch;
	}
	for(i = 0; i < np->npairs; i++)
		np->pairs[i].slot->gen = np->generation;
	for(i = 0; i < np->nfs; i++)
		np->fs[i].slot->gen = np->generation;
	return 0;
error:
	gha_slots_detach(t, np);
	return -1;
}

void gha_slots_detach(gha_slots_t *t, gha_pool_t *p)
{
	int i;

	for(i = 0; i < p->npairs; i++) {
		gha_slots_put(t, p->pairs[i].slot);
		p->pairs[i].slot = NULL;
	}
	for(i = 0; i < p->nfs; i++) {
		gha_slots_put(t, p->fs[i].slot);
		p->fs[i].slot = NULL;
	}
}
