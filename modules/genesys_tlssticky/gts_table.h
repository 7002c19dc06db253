/*
 * genesys_tlssticky: binding table (pure C)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 *
 * A binding is (AOR, phone Contact URI) on one flow.  All bindings of an
 * AOR live in the bucket of the AOR's hash, so a REGISTER's 200 OK (which
 * lists every contact of the AOR) is handled under one bucket lock, and a
 * token (which carries the AOR hash) is looked up in O(1).  Memory and
 * locks are injected: shm and Kamailio locks in the module, malloc and
 * no-ops in the unit tests.  Time is passed in (seconds).
 */

#ifndef GTS_TABLE_H
#define GTS_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "gts_token.h"

#define GTS_URI_MAX 512
#define GTS_AOR_MAX 256

enum gts_state
{
	GTS_B_PENDING = 0, /* REGISTER forwarded, no 2xx yet */
	GTS_B_ACTIVE = 1   /* committed by the registrar's 2xx */
};

enum gts_policy
{
	GTS_POL_NO_INBOUND = 0, /* never connect to the phone */
	GTS_POL_RECONNECT = 1   /* flow gone: connect to the phone's Contact */
};

enum gts_why
{
	GTS_WHY_EXPIRED = 0,
	GTS_WHY_CLOSED,		/* its connection closed */
	GTS_WHY_UNLISTED,	/* the registrar's 2xx did not list it any more */
	GTS_WHY_REPLACED,	/* a registration over a newer connection */
	GTS_WHY_PENDING_TIMEOUT
};

typedef struct gts_binding
{
	struct gts_binding *next;
	gts_flow_t flow;
	int64_t expires; /* absolute; for a pending one: when it is dropped */
	int64_t created;
	uint32_t txh;		 /* last REGISTER transaction (Call-ID, CSeq) */
	int32_t req_expires; /* what that REGISTER asked for; -1: nothing */
	uint8_t state;
	uint8_t policy;
	uint8_t why; /* removal reason, set when detached */
	uint16_t aor_len;
	uint16_t uri_len;
	char data[]; /* aor, NUL, uri, NUL */
} gts_binding_t;

typedef struct gts_table_ops
{
	void *(*alloc)(size_t size);
	void (*free)(void *p);
	void (*lock)(void *ctx, unsigned int idx);
	void (*unlock)(void *ctx, unsigned int idx);
	void *ctx;
} gts_table_ops_t;

typedef struct gts_table
{
	unsigned int size; /* power of two */
	unsigned int nlocks; /* power of two, <= size */
	gts_binding_t **buckets;
	long count; /* updated atomically */
	long max;	/* 0: no limit */
	gts_table_ops_t ops;
} gts_table_t;

typedef enum gts_res {
	GTS_OK = 0,
	GTS_NEW = 1,		/* a new pending binding was made */
	GTS_EXISTING = 2,	/* the flow already had this binding */
	GTS_NOTFOUND = -1,
	GTS_STALE = -2,		/* binding exists with another generation */
	GTS_FULL = -3,		/* max_bindings reached */
	GTS_NOMEM = -4,
	GTS_BADARG = -5
} gts_res_t;

/* the connection a REGISTER arrived on */
typedef struct gts_conn
{
	uint32_t conid;
	uint8_t proto;
	gts_addr_t src;
	gts_addr_t local;
} gts_conn_t;

/* a copy of a binding made under the lock */
typedef struct gts_view
{
	gts_flow_t flow;
	int64_t expires;
	uint8_t state;
	uint8_t policy;
	char aor[GTS_AOR_MAX + 1];
	char uri[GTS_URI_MAX + 1];
} gts_view_t;

/* one of our contacts listed in a registrar's 2xx */
typedef struct gts_commit_item
{
	gts_flow_t tok;	/* decoded token */
	int64_t expires; /* absolute expiry from the reply */
	int drop;		 /* listed with expires 0: remove, but restore it */
	int found;		 /* out: 1 when the binding was committed */
	char uri[GTS_URI_MAX + 1]; /* out: the phone's own Contact URI */
} gts_commit_item_t;

int gts_table_init(gts_table_t *t, unsigned int size, unsigned int nlocks,
		long max, const gts_table_ops_t *ops);
void gts_table_destroy(gts_table_t *t);

uint32_t gts_aor_hash(const char *aor, size_t len);
uint32_t gts_bid(const char *aor, size_t aor_len, const char *uri,
		size_t uri_len);

/* REGISTER: find or make the binding of (aor, uri) on conn.  deregister:
 * only an existing ACTIVE binding is returned (any connection: the
 * registrar must see the Contact it stored), never a new one.  rnd seeds the
 * generation of a binding never seen.  out gets the flow to put in the
 * token. */
gts_res_t gts_table_prepare(gts_table_t *t, const char *aor, size_t aor_len,
		const char *uri, size_t uri_len, const gts_conn_t *conn,
		uint8_t policy, int deregister, int64_t now, int pending_ttl,
		uint32_t rnd, gts_flow_t *out);

/* the registrar's 2xx for aor: commit or refresh every item; ACTIVE
 * bindings of aor not listed are detached into *removed (why =
 * UNLISTED) and older bindings of a committed key (why = REPLACED).
 * Returns the number of items found. */
int gts_table_commit(gts_table_t *t, const char *aor, size_t aor_len,
		gts_commit_item_t *items, int n, gts_binding_t **removed);

/* remember which REGISTER transaction (txh) last touched the binding of
 * flow f and what expiry it asked for (-1: none given, 0: removal) */
void gts_table_set_tx(
		gts_table_t *t, const gts_flow_t *f, uint32_t txh, long req_expires);

/* Contact: * in REGISTER txh: every binding of aor is to be removed when
 * that REGISTER's 2xx lists no Contact */
void gts_table_mark_aor_tx(
		gts_table_t *t, const char *aor, size_t aor_len, uint32_t txh);

/* a 2xx that lists no Contact at all (registrars that do not list the
 * bindings): the bindings REGISTER txh touched are committed with the
 * expiry it asked for (def_expires when none) or, for 0, detached into
 * *removed; nothing else of the AOR is touched.  Returns how many were
 * committed or removed. */
int gts_table_commit_tx(gts_table_t *t, const char *aor, size_t aor_len,
		uint32_t txh, int64_t now, long def_expires, long cap,
		gts_binding_t **removed);

/* token lookup: GTS_OK and a copy in *v; GTS_STALE when the binding exists
 * with another generation or connection; GTS_NOTFOUND */
gts_res_t gts_table_lookup(gts_table_t *t, const gts_flow_t *tok,
		gts_view_t *v);

/* GTS_OK when aor has a binding (pending or active) on connection conid;
 * *policy (optional) gets its policy */
gts_res_t gts_table_find_conn(gts_table_t *t, const char *aor,
		size_t aor_len, uint32_t conid, uint8_t *policy);

/* sweep: detach expired bindings and those on the connections listed in
 * dead (sorted ascending), except bindings with the reconnect policy: they
 * stay until they expire */
int gts_table_sweep(gts_table_t *t, int64_t now, const uint32_t *dead,
		int ndead, gts_binding_t **removed);

/* walk: cb is called under the bucket lock with each binding: it may only
 * copy.  aor (optional) filters. */
void gts_table_walk(gts_table_t *t, const char *aor, size_t aor_len,
		void (*cb)(const gts_binding_t *b, void *arg), void *arg);

void gts_table_walk_bucket(gts_table_t *t, unsigned int idx, const char *aor,
		size_t aor_len, void (*cb)(const gts_binding_t *b, void *arg),
		void *arg);
unsigned int gts_table_bucket_of(gts_table_t *t, const char *aor, size_t len);

void gts_view_of(const gts_binding_t *b, gts_view_t *v);
void gts_table_free_list(gts_table_t *t, gts_binding_t *list);
long gts_table_count(gts_table_t *t);
const char *gts_why_str(int why);
const char *gts_policy_str(int policy);
int gts_policy_parse(const char *s, size_t len);

#endif
