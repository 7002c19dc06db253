/*
 * genesys_ha module: RPC commands
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: genesys_ha.pool, genesys_ha.switchover,
 * genesys_ha.reload
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/dprint.h"
#include "common/kg_rpc.h"
#include "gha_state.h"
#include "gha_rpc.h"
#include "gha_dmq.h"

void gha_rpc_fmt_time(long t, char *buf, size_t size)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if(t <= 0 || gmtime_r(&tt, &tm) == NULL) {
		snprintf(buf, size, "never");
		return;
	}
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int add_member(rpc_t *rpc, void *arr, const gha_member_t *m, int role,
		int state, long since, int active)
{
	void *h;
	char ts[32];

	gha_rpc_fmt_time(since, ts, sizeof(ts));
	if(rpc->array_add(arr, "{", &h) < 0)
		return -1;
	return rpc->struct_add(h, "sSSsssd", "role", gha_role_name(role), "uri",
			&m->uri, "address", &m->dst, "state", gha_mstate_name(state),
			"since", ts, "active", active ? "yes" : "no", "probe_id",
			m->goos_id);
}

static void gha_rpc_pool(rpc_t *rpc, void *ctx)
{
	gha_pool_t *p = gha_snap();
	void *th, *arr, *ph, *marr, *sh;
	gha_pair_state_t st;
	char ts[32], ts2[32];
	int i, k, si, fst, g;
	long fsince, now_ms;
	str site;

	if(kg_rpc_no_more(rpc, ctx, "genesys_ha.pool") < 0)
		return;
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	if(p == NULL) {
		rpc->struct_add(th, "ss", "file", "(none)", "pairs", "none");
		return;
	}
	si = gha_serving_index(p);
	gha_own_site(p, &site);
	gha_rpc_fmt_time(p->loaded_at, ts, sizeof(ts));
	rpc->struct_add(th, "Sdsss", "file", &p->file, "generation",
			(int)p->generation, "loaded", ts, "serving_sipserver",
			si >= 0 ? p->pairs[si].name.s : "(none)", "site",
			site.len > 0 ? site.s : "(any)");
	if(rpc->struct_add(th, "[", "pairs", &arr) < 0)
		return;
	for(i = 0; i < p->npairs; i++) {
		gha_pair_t *pr = &p->pairs[i];
		gha_pair_copy(p, i, &st);
		gha_rpc_fmt_time(st.psince, ts, sizeof(ts));
		if(rpc->array_add(arr, "{", &ph) < 0)
			return;
		rpc->struct_add(ph, "SSsssS", "name", &pr->name, "site", &pr->site,
				"state", gha_pstate_name(st.pstate), "since", ts, "active",
				gha_role_name(st.active), "active_uri", &pr->m[st.active].uri);
		if(rpc->struct_add(ph, "[", "members", &marr) < 0)
			return;
		for(k = 0; k < 2; k++)
			add_member(rpc, marr, &pr->m[k], k, st.mstate[k], st.msince[k],
					k == st.active);
		if(rpc->struct_add(ph, "{", "last_switchover", &sh) < 0)
			return;
		if(st.sw_time > 0) {
			gha_rpc_fmt_time(st.sw_time, ts2, sizeof(ts2));
			rpc->struct_add(sh, "ssss", "time", ts2, "from",
					gha_role_name(st.sw_from), "to", gha_role_name(st.sw_to),
					"trigger", gha_trigger_name(st.sw_trigger));
		} else {
			rpc->struct_add(sh, "s", "time", "never");
		}
		rpc->struct_add(ph, "dddddd", "switchovers", (int)st.n_switchovers,
				"out_of_service", (int)st.n_down, "new_dialogs",
				(int)__atomic_load_n(&pr->slot->n_new, __ATOMIC_RELAXED),
				"rejected",
				(int)__atomic_load_n(&pr->slot->n_rejected, __ATOMIC_RELAXED),
				"in_dialog",
				(int)__atomic_load_n(&pr->slot->n_indialog, __ATOMIC_RELAXED),
				"failovers",
				(int)__atomic_load_n(&pr->slot->n_failover, __ATOMIC_RELAXED));
		now_ms = gha_now_ms();
		g = 0;
		if(gha_grace_member(&st, now_ms, gha_down_grace) >= 0)
			g = (int)(st.g_open_ms + gha_down_grace - now_ms);
		rpc->struct_add(ph, "dd", "grace_left_ms", g, "grace_routed",
				(int)__atomic_load_n(&pr->slot->n_grace, __ATOMIC_RELAXED));
	}
	if(rpc->struct_add(th, "[", "feature_servers", &arr) < 0)
		return;
	for(i = 0; i < p->nfs; i++) {
		gha_fs_copy(p, i, &fst, &fsince);
		gha_rpc_fmt_time(fsince, ts, sizeof(ts));
		if(rpc->array_add(arr, "{", &ph) < 0)
			return;
		rpc->struct_add(ph, "SSSSss", "name", &p->fs[i].name, "site",
				&p->fs[i].site, "uri", &p->fs[i].m.uri, "address",
				&p->fs[i].m.dst, "state", gha_mstate_name(fst), "since", ts);
	}
	if(rpc->struct_add(th, "[", "proxies", &arr) < 0)
		return;
	for(i = 0; i < p->nproxies; i++) {
		if(rpc->array_add(arr, "{", &ph) < 0)
			return;
		rpc->struct_add(ph, "SSs", "address", &p->proxies[i].address, "site",
				&p->proxies[i].site, "self", i == p->own_index ? "yes" : "no");
	}
}

static const char *gha_rpc_pool_doc[] = {
		"Show the SIP Server pairs: state, active member, members with their "
		"probe state, last switchover and counters; feature servers; proxies",
		0};

static void gha_rpc_switchover(rpc_t *rpc, void *ctx)
{
	gha_pool_t *p = gha_snap();
	str name = STR_NULL;
	gha_pair_state_t st;
	int pi;

	if(rpc->scan(ctx, "S", &name) < 1 || name.len <= 0) {
		kg_rpc_fault(rpc, ctx, 400, "usage: genesys_ha.switchover <pair name>");
		return;
	}
	if(kg_rpc_no_more(rpc, ctx, "genesys_ha.switchover <pair name>") < 0)
		return;
	if(p == NULL || (pi = gha_pool_find_pair(p, name.s, name.len)) < 0) {
		kg_rpc_fault(rpc, ctx, 404, "unknown SIP Server pair '" KG_ECHO_FMT "'",
				KG_ECHO(&name));
		return;
	}
	if(gha_operator_switchover(p, pi) < 0) {
		gha_pair_copy(p, pi, &st);
		kg_rpc_fault(rpc, ctx, 409,
				"pair '" KG_ECHO_FMT "': the %s " KG_ECHO_FMT
				" does not answer; switchover refused",
				KG_ECHO(&name), gha_role_name(1 - st.active),
				KG_ECHO(&p->pairs[pi].m[1 - st.active].uri));
		return;
	}
	gha_pair_copy(p, pi, &st);
	LM_NOTICE("operator switchover of pair '%.*s' to the %s\n", name.len,
			name.s, gha_role_name(st.active));
	rpc->rpl_printf(ctx, "pair %.*s: active member is now the %s %.*s",
			name.len, name.s, gha_role_name(st.active),
			p->pairs[pi].m[st.active].uri.len, p->pairs[pi].m[st.active].uri.s);
}

static const char *gha_rpc_switchover_doc[] = {
		"Switch a SIP Server pair to its other member: genesys_ha.switchover "
		"<pair name>",
		0};

/* the longest error in a reload fault: with "40003: " and "; the running
 * pool is unchanged" it stays under binrpc's 256 bytes */
#define GHA_RPC_FAULT_MAX 200

static void gha_rpc_reload(rpc_t *rpc, void *ctx)
{
	char msg[GHA_ERR_MAX + 128];
	int rc;

	if(kg_rpc_no_more(rpc, ctx, "genesys_ha.reload") < 0)
		return;
	rc = gha_reload(msg, sizeof(msg));
	if(rc == -1) {
		kg_rpc_fault(rpc, ctx, 409, "%s", msg);
		return;
	}
	if(rc != 0) {
		/* the whole text is in the log; the fault keeps its start */
		kg_rpc_fault(rpc, ctx, 500, "%d: the running pool is unchanged: %s", rc,
				msg);
		return;
	}
	rpc->rpl_printf(ctx, "%s", msg);
}

static const char *gha_rpc_reload_doc[] = {
		"Re-read the pool file; the new pool replaces the running one only "
		"when it is entirely valid",
		0};

/* clang-format off */
rpc_export_t gha_rpc_cmds[] = {
	{"genesys_ha.pool", gha_rpc_pool, gha_rpc_pool_doc, 0},
	{"genesys_ha.switchover", gha_rpc_switchover, gha_rpc_switchover_doc, 0},
	{"genesys_ha.reload", gha_rpc_reload, gha_rpc_reload_doc, 0},
	{"genesys_ha.peers", gha_dmq_rpc_peers, gha_dmq_rpc_peers_doc, 0},
	{0, 0, 0, 0}
};
/* clang-format on */
