/*
 * genesys_tlssticky: binding table (pure C)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gts_hash.h"
#include "gts_table.h"

#define GTS_MARK 0xff
#define GTS_DROP 0xfe

#define LOCK(t, i) (t)->ops.lock((t)->ops.ctx, (i) & ((t)->nlocks - 1))
#define UNLOCK(t, i) (t)->ops.unlock((t)->ops.ctx, (i) & ((t)->nlocks - 1))

static const char *why_names[] = {
		[GTS_WHY_EXPIRED] = "expired",
		[GTS_WHY_CLOSED] = "connection closed",
		[GTS_WHY_UNLISTED] = "removed by the registrar",
		[GTS_WHY_REPLACED] = "replaced by a registration on a newer flow",
		[GTS_WHY_PENDING_TIMEOUT] = "REGISTER got no 2xx",
};

const char *gts_why_str(int why)
{
	if(why < 0 || why > GTS_WHY_PENDING_TIMEOUT)
		return "unknown";
	return why_names[why];
}

const char *gts_policy_str(int policy)
{
	return policy == GTS_POL_RECONNECT ? "reconnect" : "no-inbound";
}

int gts_policy_parse(const char *s, size_t len)
{
	if(len == 10 && strncasecmp(s, "no-inbound", 10) == 0)
		return GTS_POL_NO_INBOUND;
	if(len == 9 && strncasecmp(s, "reconnect", 9) == 0)
		return GTS_POL_RECONNECT;
	return -1;
}

static int is_pow2(unsigned int v)
{
	return v && !(v & (v - 1));
}

int gts_table_init(gts_table_t *t, unsigned int size, unsigned int nlocks,
		long max, const gts_table_ops_t *ops)
{
	if(!is_pow2(size) || !is_pow2(nlocks) || nlocks > size || !ops
			|| !ops->alloc || !ops->free || !ops->lock || !ops->unlock)
		return GTS_BADARG;
	memset(t, 0, sizeof(*t));
	t->ops = *ops;
	t->buckets = t->ops.alloc(size * sizeof(gts_binding_t *));
	if(t->buckets == NULL)
		return GTS_NOMEM;
	memset(t->buckets, 0, size * sizeof(gts_binding_t *));
	t->size = size;
	t->nlocks = nlocks;
	t->max = max;
	return GTS_OK;
}

void gts_table_destroy(gts_table_t *t)
{
	unsigned int i;
	if(t->buckets == NULL)
		return;
	for(i = 0; i < t->size; i++)
		gts_table_free_list(t, t->buckets[i]);
	t->ops.free(t->buckets);
	t->buckets = NULL;
}

void gts_table_free_list(gts_table_t *t, gts_binding_t *list)
{
	gts_binding_t *n;
	while(list) {
		n = list->next;
		t->ops.free(list);
		list = n;
	}
}

long gts_table_count(gts_table_t *t)
{
	return __atomic_load_n(&t->count, __ATOMIC_RELAXED);
}

uint32_t gts_aor_hash(const char *aor, size_t len)
{
	return gts_hash(GTS_HASH_INIT, aor, len);
}

uint32_t gts_bid(
		const char *aor, size_t aor_len, const char *uri, size_t uri_len)
{
	uint32_t h = gts_hash(GTS_HASH_INIT, aor, aor_len);
	h = gts_hash(h, "\n", 1);
	h = gts_hash(h, uri, uri_len);
	return h ? h : 1; /* 0 is the connection token */
}

static const char *b_aor(const gts_binding_t *b)
{
	return b->data;
}

static const char *b_uri(const gts_binding_t *b)
{
	return b->data + b->aor_len + 1;
}

static int aor_eq(const gts_binding_t *b, const char *aor, size_t len)
{
	return b->aor_len == len && memcmp(b_aor(b), aor, len) == 0;
}

static int key_eq(const gts_binding_t *b, const char *aor, size_t aor_len,
		const char *uri, size_t uri_len)
{
	return aor_eq(b, aor, aor_len) && b->uri_len == uri_len
		   && memcmp(b_uri(b), uri, uri_len) == 0;
}

static int same_key(const gts_binding_t *a, const gts_binding_t *b)
{
	return a->flow.bid == b->flow.bid
		   && key_eq(a, b_aor(b), b->aor_len, b_uri(b), b->uri_len);
}

static int conn_eq(const gts_flow_t *f, const gts_conn_t *c)
{
	return f->conid == c->conid && f->proto == c->proto
		   && gts_addr_eq(&f->src, &c->src)
		   && gts_addr_eq(&f->local, &c->local);
}

void gts_view_of(const gts_binding_t *b, gts_view_t *v)
{
	v->flow = b->flow;
	v->expires = b->expires;
	v->state = b->state;
	v->policy = b->policy;
	memcpy(v->aor, b_aor(b), b->aor_len);
	v->aor[b->aor_len] = '\0';
	memcpy(v->uri, b_uri(b), b->uri_len);
	v->uri[b->uri_len] = '\0';
}

gts_res_t gts_table_prepare(gts_table_t *t, const char *aor, size_t aor_len,
		const char *uri, size_t uri_len, const gts_conn_t *conn,
		uint8_t policy, int deregister, int64_t now, int pending_ttl,
		uint32_t rnd, gts_flow_t *out)
{
	uint32_t aorh, bid, maxgen = 0;
	unsigned int idx;
	gts_binding_t *b, *act = NULL, *pend = NULL, *nb;
	int seen = 0;
	long cnt;

	if(aor_len == 0 || aor_len > GTS_AOR_MAX || uri_len == 0
			|| uri_len > GTS_URI_MAX)
		return GTS_BADARG;
	aorh = gts_aor_hash(aor, aor_len);
	bid = gts_bid(aor, aor_len, uri, uri_len);
	idx = aorh & (t->size - 1);

	LOCK(t, idx);
	for(b = t->buckets[idx]; b; b = b->next) {
		if(b->flow.bid != bid || !key_eq(b, aor, aor_len, uri, uri_len))
			continue;
		if(!seen || b->flow.gen - maxgen < 0x80000000u)
			maxgen = b->flow.gen;
		seen = 1;
		if(b->state == GTS_B_ACTIVE) {
			if(conn_eq(&b->flow, conn)) {
				b->policy = policy;
				*out = b->flow;
				UNLOCK(t, idx);
				return GTS_EXISTING;
			}
			act = b;
		} else if(conn_eq(&b->flow, conn)) {
			pend = b;
		}
	}
	if(deregister) {
		if(act) {
			*out = act->flow;
			UNLOCK(t, idx);
			return GTS_EXISTING;
		}
		if(pend) {
			*out = pend->flow;
			UNLOCK(t, idx);
			return GTS_EXISTING;
		}
		UNLOCK(t, idx);
		return GTS_NOTFOUND;
	}
	if(pend) {
		pend->expires = now + pending_ttl;
		pend->policy = policy;
		*out = pend->flow;
		UNLOCK(t, idx);
		return GTS_EXISTING;
	}
	cnt = __atomic_add_fetch(&t->count, 1, __ATOMIC_RELAXED);
	if(t->max > 0 && cnt > t->max) {
		__atomic_sub_fetch(&t->count, 1, __ATOMIC_RELAXED);
		UNLOCK(t, idx);
		return GTS_FULL;
	}
	nb = t->ops.alloc(sizeof(*nb) + aor_len + uri_len + 2);
	if(nb == NULL) {
		__atomic_sub_fetch(&t->count, 1, __ATOMIC_RELAXED);
		UNLOCK(t, idx);
		return GTS_NOMEM;
	}
	memset(nb, 0, sizeof(*nb));
	nb->flow.aorh = aorh;
	nb->flow.bid = bid;
	nb->flow.gen = seen ? maxgen + 1 : rnd;
	if(nb->flow.gen == 0)
		nb->flow.gen = 1;
	nb->flow.conid = conn->conid;
	nb->flow.proto = conn->proto;
	nb->flow.src = conn->src;
	nb->flow.local = conn->local;
	nb->state = GTS_B_PENDING;
	nb->policy = policy;
	nb->created = now;
	nb->req_expires = -1;
	nb->expires = now + pending_ttl;
	nb->aor_len = (uint16_t)aor_len;
	nb->uri_len = (uint16_t)uri_len;
	memcpy(nb->data, aor, aor_len);
	nb->data[aor_len] = '\0';
	memcpy(nb->data + aor_len + 1, uri, uri_len);
	nb->data[aor_len + 1 + uri_len] = '\0';
	nb->next = t->buckets[idx];
	t->buckets[idx] = nb;
	*out = nb->flow;
	UNLOCK(t, idx);
	return GTS_NEW;
}

int gts_table_commit(gts_table_t *t, const char *aor, size_t aor_len,
		gts_commit_item_t *items, int n, gts_binding_t **removed)
{
	uint32_t aorh = gts_aor_hash(aor, aor_len);
	unsigned int idx = aorh & (t->size - 1);
	gts_binding_t *b, *o, **pp;
	int i, found = 0, replaced;

	LOCK(t, idx);
	for(b = t->buckets[idx]; b; b = b->next)
		if(aor_eq(b, aor, aor_len))
			b->why = 0;
	for(i = 0; i < n; i++) {
		items[i].found = 0;
		if(items[i].tok.aorh != aorh)
			continue;
		for(b = t->buckets[idx]; b; b = b->next) {
			if(b->flow.bid == items[i].tok.bid
					&& b->flow.gen == items[i].tok.gen
					&& gts_flow_same_conn(&b->flow, &items[i].tok)
					&& aor_eq(b, aor, aor_len)) {
				if(items[i].drop) {
					b->why = GTS_DROP;
				} else {
					b->state = GTS_B_ACTIVE;
					b->expires = items[i].expires;
					b->why = GTS_MARK;
				}
				memcpy(items[i].uri, b_uri(b), b->uri_len);
				items[i].uri[b->uri_len] = '\0';
				items[i].found = 1;
				found++;
				break;
			}
		}
	}
	/* detach ACTIVE bindings of this AOR the registrar no longer lists */
	pp = &t->buckets[idx];
	while((b = *pp) != NULL) {
		if(!aor_eq(b, aor, aor_len) || b->why == GTS_MARK
				|| (b->state != GTS_B_ACTIVE && b->why != GTS_DROP)) {
			pp = &b->next;
			continue;
		}
		replaced = 0;
		for(o = t->buckets[idx]; o; o = o->next)
			if(o != b && o->why == GTS_MARK && same_key(o, b))
				replaced = 1;
		b->why = replaced ? GTS_WHY_REPLACED : GTS_WHY_UNLISTED;
		*pp = b->next;
		b->next = *removed;
		*removed = b;
		__atomic_sub_fetch(&t->count, 1, __ATOMIC_RELAXED);
	}
	for(b = t->buckets[idx]; b; b = b->next)
		if(b->why == GTS_MARK)
			b->why = 0;
	UNLOCK(t, idx);
	return found;
}

void gts_table_set_tx(
		gts_table_t *t, const gts_flow_t *f, uint32_t txh, long req_expires)
{
	unsigned int idx = f->aorh & (t->size - 1);
	gts_binding_t *b;

	LOCK(t, idx);
	for(b = t->buckets[idx]; b; b = b->next)
		if(b->flow.bid == f->bid && b->flow.gen == f->gen
				&& gts_flow_same_conn(&b->flow, f)) {
			b->txh = txh;
			b->req_expires = (int32_t)(req_expires < -1 ? -1 : req_expires);
			break;
		}
	UNLOCK(t, idx);
}

void gts_table_mark_aor_tx(
		gts_table_t *t, const char *aor, size_t aor_len, uint32_t txh)
{
	unsigned int idx = gts_aor_hash(aor, aor_len) & (t->size - 1);
	gts_binding_t *b;

	LOCK(t, idx);
	for(b = t->buckets[idx]; b; b = b->next)
		if(aor_eq(b, aor, aor_len)) {
			b->txh = txh;
			b->req_expires = 0;
		}
	UNLOCK(t, idx);
}

int gts_table_commit_tx(gts_table_t *t, const char *aor, size_t aor_len,
		uint32_t txh, int64_t now, long def_expires, long cap,
		gts_binding_t **removed)
{
	unsigned int idx = gts_aor_hash(aor, aor_len) & (t->size - 1);
	gts_binding_t *b, **pp;
	long e;
	int n = 0;

	LOCK(t, idx);
	pp = &t->buckets[idx];
	while((b = *pp) != NULL) {
		if(b->txh != txh || !aor_eq(b, aor, aor_len)) {
			pp = &b->next;
			continue;
		}
		n++;
		b->txh = 0;
		if(b->req_expires == 0) {
			b->why = GTS_WHY_UNLISTED;
			*pp = b->next;
			b->next = *removed;
			*removed = b;
			__atomic_sub_fetch(&t->count, 1, __ATOMIC_RELAXED);
			continue;
		}
		e = b->req_expires > 0 ? b->req_expires : def_expires;
		if(cap > 0 && e > cap)
			e = cap;
		b->state = GTS_B_ACTIVE;
		b->expires = now + e;
		pp = &b->next;
	}
	UNLOCK(t, idx);
	return n;
}

gts_res_t gts_table_lookup(
		gts_table_t *t, const gts_flow_t *tok, gts_view_t *v)
{
	unsigned int idx = tok->aorh & (t->size - 1);
	gts_binding_t *b;
	int seen = 0;

	LOCK(t, idx);
	for(b = t->buckets[idx]; b; b = b->next) {
		if(b->flow.bid != tok->bid || b->flow.aorh != tok->aorh)
			continue;
		if(b->flow.gen == tok->gen && gts_flow_same_conn(&b->flow, tok)) {
			gts_view_of(b, v);
			UNLOCK(t, idx);
			return GTS_OK;
		}
		seen = 1;
	}
	UNLOCK(t, idx);
	return seen ? GTS_STALE : GTS_NOTFOUND;
}

gts_res_t gts_table_find_conn(gts_table_t *t, const char *aor,
		size_t aor_len, uint32_t conid, uint8_t *policy)
{
	unsigned int idx = gts_aor_hash(aor, aor_len) & (t->size - 1);
	gts_binding_t *b;
	gts_res_t r = GTS_NOTFOUND;

	LOCK(t, idx);
	for(b = t->buckets[idx]; b; b = b->next)
		if(b->flow.conid == conid && aor_eq(b, aor, aor_len)) {
			if(policy)
				*policy = b->policy;
			r = GTS_OK;
			break;
		}
	UNLOCK(t, idx);
	return r;
}

static int dead_has(const uint32_t *dead, int n, uint32_t conid)
{
	int lo = 0, hi = n - 1, mid;
	while(lo <= hi) {
		mid = lo + (hi - lo) / 2;
		if(dead[mid] == conid)
			return 1;
		if(dead[mid] < conid)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return 0;
}

int gts_table_sweep(gts_table_t *t, int64_t now, const uint32_t *dead,
		int ndead, gts_binding_t **removed)
{
	unsigned int i;
	gts_binding_t *b, **pp;
	int n = 0;

	for(i = 0; i < t->size; i++) {
		if(t->buckets[i] == NULL)
			continue; /* a racy peek is fine: a new one is not due yet */
		LOCK(t, i);
		pp = &t->buckets[i];
		while((b = *pp) != NULL) {
			if(b->expires <= now) {
				b->why = b->state == GTS_B_ACTIVE ? GTS_WHY_EXPIRED
												  : GTS_WHY_PENDING_TIMEOUT;
			} else if(ndead > 0 && b->policy != GTS_POL_RECONNECT
					  && dead_has(dead, ndead, b->flow.conid)) {
				/* a reconnect binding outlives its flow: the phone's own
				 * Contact is used until the registration expires */
				b->why = GTS_WHY_CLOSED;
			} else {
				pp = &b->next;
				continue;
			}
			*pp = b->next;
			b->next = *removed;
			*removed = b;
			n++;
			__atomic_sub_fetch(&t->count, 1, __ATOMIC_RELAXED);
		}
		UNLOCK(t, i);
	}
	return n;
}

void gts_table_walk_bucket(gts_table_t *t, unsigned int idx, const char *aor,
		size_t aor_len, void (*cb)(const gts_binding_t *b, void *arg),
		void *arg)
{
	gts_binding_t *b;

	idx &= t->size - 1;
	LOCK(t, idx);
	for(b = t->buckets[idx]; b; b = b->next)
		if(!aor || aor_eq(b, aor, aor_len))
			cb(b, arg);
	UNLOCK(t, idx);
}

unsigned int gts_table_bucket_of(gts_table_t *t, const char *aor, size_t len)
{
	return gts_aor_hash(aor, len) & (t->size - 1);
}

void gts_table_walk(gts_table_t *t, const char *aor, size_t aor_len,
		void (*cb)(const gts_binding_t *b, void *arg), void *arg)
{
	unsigned int i;

	if(aor) {
		gts_table_walk_bucket(t, gts_table_bucket_of(t, aor, aor_len), aor,
				aor_len, cb, arg);
		return;
	}
	for(i = 0; i < t->size; i++)
		gts_table_walk_bucket(t, i, NULL, 0, cb, arg);
}
