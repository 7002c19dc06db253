/*
 * genesys_tlssticky: RPC commands (genesys_tlssticky.list, .stats)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

#include <string.h>
#include <time.h>

#include "core/dprint.h"
#include "core/rpc.h"
#include "core/mem/mem.h"
#include "common/kg_rpc.h"

#include "gts_mod.h"
#include "gts_contact.h"
#include "gts_rpc.h"

/* bindings of one bucket, copied under its lock */
typedef struct gts_copy
{
	gts_view_t *v;
	int n;
	int max;
	int err;
} gts_copy_t;

static void copy_cb(const gts_binding_t *b, void *arg)
{
	gts_copy_t *c = arg;
	gts_view_t *nv;

	if(c->err)
		return;
	if(c->n == c->max) {
		/* pkg_realloc under the bucket lock: pkg memory only, no locks */
		nv = pkg_realloc(c->v, (c->max ? c->max * 2 : 8) * sizeof(*nv));
		if(nv == NULL) {
			c->err = 1;
			return;
		}
		c->v = nv;
		c->max = c->max ? c->max * 2 : 8;
	}
	gts_view_of(b, &c->v[c->n++]);
}

static const char *gts_rpc_list_doc[] = {
		"List sticky bindings: AOR, phone Contact, rewritten Contact,"
		" connection id, source, transport, generation, expires in, alive."
		" Optional parameter: an AOR (user@host) to list only its bindings.",
		0};

static int emit(rpc_t *rpc, void *ctx, void *arr, const gts_view_t *v,
		int64_t now)
{
	void *st;
	char src[64], rw[GTS_URI_MAX + GTS_TOKEN_MAX + 256];
	int alive;

	gts_addr_str(&v->flow.src, src, sizeof(src));
	if(gts_rewritten_contact(v, rw, sizeof(rw)) < 0)
		strcpy(rw, "?");
	alive = gts_flow_alive(&v->flow);
	if(rpc->array_add(arr, "{", &st) < 0)
		return -1;
	return rpc->struct_add(st, "ssSussudssd", "aor", v->aor, "contact", v->uri,
			"rewritten", &(str){rw, (int)strlen(rw)}, "conid",
			(unsigned int)v->flow.conid, "source", src, "transport",
			get_proto_name(v->flow.proto), "generation", (unsigned int)v->flow.gen,
			"expires", (int)(v->expires - now), "state",
			v->state == GTS_B_ACTIVE ? "active" : "pending", "policy",
			gts_policy_str(v->policy), "alive", alive);
}

static void gts_rpc_list(rpc_t *rpc, void *ctx)
{
	str aor = STR_NULL;
	char key[GTS_AOR_MAX + 1];
	void *th, *arr;
	gts_copy_t c;
	unsigned int i, from = 0, to;
	int k;
	int64_t now = (int64_t)time(NULL);

	if(gts_root == NULL) {
		kg_rpc_fault(rpc, ctx, 500, "module not initialized");
		return;
	}
	if(rpc->scan(ctx, "*S", &aor) < 1) {
		aor.s = NULL;
		aor.len = 0;
	} else if(kg_rpc_no_more(rpc, ctx, GTS_RPC_LIST_USAGE) < 0) {
		return;
	}
	if(aor.len > GTS_AOR_MAX) {
		kg_rpc_fault(rpc, ctx, 400,
				"AOR too long: '" KG_ECHO_FMT "' (%d characters, at most %d)",
				KG_ECHO(&aor), aor.len, GTS_AOR_MAX);
		return;
	}
	to = gts_root->table.size;
	if(aor.len > 0) {
		/* the same key sticky_register() builds: host lowercased */
		const char *at = memchr(aor.s, '@', aor.len);
		int ul = at ? (int)(at - aor.s) : 0;
		if(gts_aor_key(key, sizeof(key), aor.s, (size_t)ul,
				   at ? at + 1 : aor.s, (size_t)(aor.len - (at ? ul + 1 : 0)))
				< 0) {
			kg_rpc_fault(rpc, ctx, 400,
					"bad AOR '" KG_ECHO_FMT "': expected user@host",
					KG_ECHO(&aor));
			return;
		}
		from = gts_table_bucket_of(&gts_root->table, key, strlen(key));
		to = from + 1;
	}
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	if(rpc->struct_add(th, "[", "bindings", &arr) < 0)
		return;
	memset(&c, 0, sizeof(c));
	for(i = from; i < to; i++) {
		c.n = 0;
		gts_table_walk_bucket(&gts_root->table, i, aor.len ? key : NULL,
				aor.len ? strlen(key) : 0, copy_cb, &c);
		if(c.err) {
			if(c.v)
				pkg_free(c.v);
			kg_rpc_fault(rpc, ctx, 500, "out of memory");
			return;
		}
		for(k = 0; k < c.n; k++)
			if(emit(rpc, ctx, arr, &c.v[k], now) < 0)
				break;
	}
	if(c.v)
		pkg_free(c.v);
}

static const char *gts_rpc_stats_doc[] = {
		"Sticky binding statistics: bindings (active, pending), registers,"
		" committed, removed, routed, reconnect, flow_failed, forged,"
		" stale, foreign, relayed.",
		0};

static void count_cb(const gts_binding_t *b, void *arg)
{
	int *n = arg;
	if(b->state == GTS_B_ACTIVE)
		n[0]++;
	else
		n[1]++;
}

static void gts_rpc_stats(rpc_t *rpc, void *ctx)
{
	void *th;
	int n[2] = {0, 0};

	if(gts_root == NULL) {
		kg_rpc_fault(rpc, ctx, 500, "module not initialized");
		return;
	}
	if(kg_rpc_no_more(rpc, ctx, "genesys_tlssticky.stats") < 0)
		return;
	gts_table_walk(&gts_root->table, NULL, 0, count_cb, n);
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "ddddddddddddd", "bindings",
			(int)gts_table_count(&gts_root->table), "active", n[0], "pending",
			n[1], "registers", (int)counter_get_val(gts_cnt.registers),
			"committed", (int)counter_get_val(gts_cnt.committed), "removed",
			(int)counter_get_val(gts_cnt.removed), "routed",
			(int)counter_get_val(gts_cnt.routed), "reconnect",
			(int)counter_get_val(gts_cnt.reconnect), "flow_failed",
			(int)counter_get_val(gts_cnt.flow_failed), "forged",
			(int)counter_get_val(gts_cnt.forged), "stale",
			(int)counter_get_val(gts_cnt.stale), "foreign",
			(int)counter_get_val(gts_cnt.foreign), "relayed",
			(int)counter_get_val(gts_cnt.relayed));
}

/* clang-format off */
rpc_export_t gts_rpc_cmds[] = {
	{"genesys_tlssticky.list",  gts_rpc_list,  gts_rpc_list_doc,  RET_ARRAY},
	{"genesys_tlssticky.stats", gts_rpc_stats, gts_rpc_stats_doc, 0},
	{0, 0, 0, 0}
};
/* clang-format on */
