/*
 * genesys_oos: RPC commands
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_oos :: RPC commands genesys_oos.list, .set_state, .probe,
 * .add, .remove
 */

#include <string.h>
#include <time.h>

#include "core/dprint.h"
#include "core/mem/mem.h"
#include "core/mem/shm.h"
#include "common/kg_rpc.h"

#include "goos_rpc.h"
#include "goos_notify.h"
#include "goos_probe.h"
#include "goos_probewait.h"

/* a copy of one target taken under the lock */
typedef struct goos_snap
{
	int id;
	int refs;
	char uri[GOOS_URI_MAX];
	char sock[GOOS_SOCK_MAX];
	int state, probed, forced, last_code, last_rtt_ms, last_reason, pending;
	int tc_off;
	uint32_t done_seq;
	int done_result, done_reason;
	time_t since;
	unsigned long probes, failures, timeouts, transport_errors, late;
} goos_snap_t;

static void goos_snap_take(goos_target_t *t, int id, goos_snap_t *s)
{
	s->id = id;
	s->refs = t->refs;
	memcpy(s->uri, t->uri.s, t->uri.len);
	s->uri[t->uri.len] = '\0';
	memcpy(s->sock, t->sock.s, t->sock.len);
	s->sock[t->sock.len] = '\0';
	s->state = t->state;
	s->probed = t->health.state;
	s->forced = t->forced;
	s->last_code = t->last_code;
	s->last_rtt_ms = t->last_rtt_ms;
	s->last_reason = t->last_reason;
	s->pending = t->sched.pending;
	s->tc_off = t->tc_off;
	s->done_seq = t->done_seq;
	s->done_result = t->done_result;
	s->done_reason = t->done_reason;
	s->since = t->since;
	s->probes = t->probes;
	s->failures = t->failures;
	s->timeouts = t->timeouts;
	s->transport_errors = t->transport_errors;
	s->late = t->late_replies;
}

static const char *goos_forced_name(int forced)
{
	return forced ? goos_health_state_name(forced) : "no";
}

static void goos_rpc_add_snap(rpc_t *rpc, void *ctx, goos_snap_t *s)
{
	void *h;
	time_t now = time(NULL);
	char *sock = s->sock;

	if(rpc->add(ctx, "{", &h) < 0) {
		rpc->fault(ctx, 500, "Internal error creating the reply");
		return;
	}
	if(sock[0] == '\0') {
		sock = goos_send_socket.len > 0 ? goos_send_socket.s : "default";
	}
	rpc->struct_add(h, "dsssssdd", "id", s->id, "uri", s->uri, "socket", sock,
			"state", goos_health_state_name(s->state), "probed_state",
			goos_health_state_name(s->probed), "forced",
			goos_forced_name(s->forced), "since", (int)s->since, "since_s",
			(int)(now - s->since));
	rpc->struct_add(h, "sddduuuuud", "last_reason",
			goos_reason_name(s->last_reason), "last_code", s->last_code,
			"last_rtt_ms", s->last_rtt_ms, "probe_pending", s->pending,
			"probes_sent", (unsigned int)s->probes, "failures",
			(unsigned int)s->failures, "timeouts", (unsigned int)s->timeouts,
			"transport_errors", (unsigned int)s->transport_errors,
			"late_replies", (unsigned int)s->late, "refs", s->refs);
	rpc->struct_add(h, "s", "transport_check",
			(!goos_transport_check || s->tc_off) ? "off" : "on");
	/* the last completed probe (genesys_oos.probe answers with its number) */
	rpc->struct_add(h, "uss", "last_probe", (unsigned int)s->done_seq,
			"last_probe_result",
			s->done_result < 0
					? "none"
					: goos_health_state_name(goos_result_state(s->done_result)),
			"last_probe_reason",
			s->done_result < 0 ? "none" : goos_reason_name(s->done_reason));
}

static const char *goos_rpc_list_doc[] = {
		"List the probed targets with state, last reply and counters", 0};

static void goos_rpc_list(rpc_t *rpc, void *ctx)
{
	goos_snap_t *snaps;
	int i, n, max, base;

	if(goos_root == NULL) {
		kg_rpc_fault(rpc, ctx, 500, "genesys_oos is not initialized");
		return;
	}
	if(kg_rpc_no_more(rpc, ctx, "genesys_oos.list") < 0)
		return;
	/* slots above the high-water mark were never used; one more target
	 * registered meanwhile is listed next time.  The lock is taken for a
	 * chunk of slots at a time: memory and lock time stay small whatever
	 * the number of targets */
	max = __atomic_load_n(&goos_root->hiwater, __ATOMIC_ACQUIRE);
	if(max == 0)
		return;
	snaps = (goos_snap_t *)pkg_malloc(sizeof(goos_snap_t) * GOOS_CHUNK);
	if(snaps == NULL) {
		PKG_MEM_ERROR;
		kg_rpc_fault(rpc, ctx, 500, "Out of memory");
		return;
	}
	for(base = 0; base < max; base += GOOS_CHUNK) {
		n = 0;
		lock_get(&goos_root->lock);
		for(i = base; i < max && i < base + GOOS_CHUNK; i++) {
			if(goos_tgt(i)->refs > 0)
				goos_snap_take(goos_tgt(i), i, &snaps[n++]);
		}
		lock_release(&goos_root->lock);
		for(i = 0; i < n; i++)
			goos_rpc_add_snap(rpc, ctx, &snaps[i]);
	}
	pkg_free(snaps);
}

/* target from the RPC arguments: <uri> [socket] */
/* "<uri> [socket]" arguments; 0, or -1 after an RPC fault */
static int goos_rpc_scan_uri(rpc_t *rpc, void *ctx, str *uri, str *sock)
{
	int n = rpc->scan(ctx, "S*S", uri, sock);

	if(n < 1) {
		kg_rpc_fault(rpc, ctx, 400, "Bad arguments: expected <uri> [socket]");
		return -1;
	}
	if(n < 2)
		sock->s = NULL, sock->len = 0;
	else if(kg_rpc_no_more(rpc, ctx, "<uri> [socket]") < 0)
		return -1;
	return 0;
}

static int goos_rpc_target(rpc_t *rpc, void *ctx, str *uri, str *sock)
{
	int id;

	if(sock->s != NULL && sock->len > 0)
		id = goos_table_lookup_sock(uri, sock);
	else
		id = goos_table_lookup(uri);
	if(id < 0) {
		kg_rpc_fault(rpc, ctx, 404,
				"Unknown target: " KG_ECHO_FMT "%s" KG_ECHO_FMT, KG_ECHO(uri),
				sock->len > 0 ? " via " : "", KG_ECHO(sock));
		return -1;
	}
	return id;
}

int goos_set_forced(int id, int forced)
{
	goos_change_rec_t rec;
	goos_target_t *t;
	int changed;

	if((t = goos_table_lock_live(id)) == NULL)
		return -1;
	t->forced = forced;
	changed = goos_target_update(
			t, id, forced ? GOOS_R_FORCED : GOOS_R_AUTO, 0, &rec);
	lock_release(&goos_root->lock);
	if(changed) {
		snprintf(rec.detail, sizeof(rec.detail), "%s",
				forced ? "forced by the operator (genesys_oos.set_state)"
					   : "returned to probing by the operator "
						 "(genesys_oos.set_state auto)");
		goos_notify(&rec);
	}
	return 0;
}

int goos_set_remote(int id, int remote, goos_state_t state)
{
	goos_change_rec_t rec;
	goos_target_t *t;
	int changed;

	if((t = goos_table_lock_live(id)) == NULL)
		return -1;
	if(!remote && !t->remote) {
		lock_release(&goos_root->lock);
		return 0;
	}
	if(!remote)
		t->sched.want = 1; /* probed here again: at once */
	t->remote = remote ? 1 : 0;
	t->remote_state = remote ? (int)state : 0;
	changed = goos_target_update(t, id, GOOS_R_REMOTE, 0, &rec);
	lock_release(&goos_root->lock);
	if(!remote)
		goos_kick();
	if(changed) {
		snprintf(rec.detail, sizeof(rec.detail), "%s",
				remote ? "as probed by another proxy of the pool"
					   : "probed by this proxy again");
		goos_notify(&rec);
	}
	return 0;
}

static const char *goos_rpc_set_state_doc[] = {
		"Force a target's state until set back to auto: "
		"<uri> active|down|auto [socket]",
		0};

static void goos_rpc_set_state(rpc_t *rpc, void *ctx)
{
	str uri = STR_NULL, st = STR_NULL, sock = STR_NULL;
	int id, forced, n;
	void *h;

	n = rpc->scan(ctx, "SS*S", &uri, &st, &sock);
	if(n < 2) {
		kg_rpc_fault(rpc, ctx, 400,
				"Bad arguments: expected <uri> active|down|auto [socket]");
		return;
	}
	if(n < 3)
		sock.s = NULL, sock.len = 0;
	else if(kg_rpc_no_more(rpc, ctx, "<uri> active|down|auto [socket]") < 0)
		return;
	if(st.len == 6 && strncasecmp(st.s, "active", 6) == 0)
		forced = GOOS_ACTIVE;
	else if(st.len == 4 && strncasecmp(st.s, "down", 4) == 0)
		forced = GOOS_DOWN;
	else if(st.len == 4 && strncasecmp(st.s, "auto", 4) == 0)
		forced = 0;
	else {
		kg_rpc_fault(rpc, ctx, 400,
				"Bad state '" KG_ECHO_FMT "': use active, down or auto",
				KG_ECHO(&st));
		return;
	}
	id = goos_rpc_target(rpc, ctx, &uri, &sock);
	if(id < 0)
		return;
	if(goos_set_forced(id, forced) < 0) {
		kg_rpc_fault(
				rpc, ctx, 404, "Unknown target: " KG_ECHO_FMT, KG_ECHO(&uri));
		return;
	}
	if(rpc->add(ctx, "{", &h) < 0)
		return;
	rpc->struct_add(h, "Sss", "uri", &uri, "state",
			goos_health_state_name(goos_table_state(id)), "forced",
			goos_forced_name(forced));
}

static const char *goos_rpc_probe_doc[] = {
		"Probe a target now: <uri> [socket]. Over a transport with delayed "
		"replies (jsonrpcs over HTTP) the answer is the probe's result; "
		"else (kamcmd) at once the probe's number, whose result shows in "
		"genesys_oos.list (last_probe) and the log",
		0};

/* the transport can answer later, from another process: its delayed reply
 * context, else NULL */
static rpc_delayed_ctx_t *goos_rpc_delayed(rpc_t *rpc, void *ctx)
{
	if(rpc->capabilities == NULL || rpc->delayed_ctx_new == NULL
			|| rpc->delayed_ctx_close == NULL
			|| !(rpc->capabilities(ctx) & RPC_DELAYED_REPLY))
		return NULL;
	return rpc->delayed_ctx_new(ctx);
}

static void goos_rpc_probe(rpc_t *rpc, void *ctx)
{
	str uri = STR_NULL, sock = STR_NULL;
	rpc_delayed_ctx_t *dctx;
	goos_target_t *t;
	goos_wait_t *w;
	uint32_t want_seq;
	int id, added;
	void *h;

	if(goos_rpc_scan_uri(rpc, ctx, &uri, &sock) < 0)
		return;
	id = goos_rpc_target(rpc, ctx, &uri, &sock);
	if(id < 0)
		return;
	/* never wait here (the ctl handler serves one command at a time): the
	 * process that completes the probe answers (goos_probewait.c) */
	dctx = goos_rpc_delayed(rpc, ctx);
	if(dctx) {
		rpc = &dctx->rpc;
		ctx = dctx->reply_ctx;
	}
	w = goos_wait_new(id, 0, dctx);
	if(w == NULL) {
		kg_rpc_fault(rpc, ctx, 500, "Out of memory");
		goto answered;
	}
	if((t = goos_table_lock_live(id)) == NULL) {
		shm_free(w);
		kg_rpc_fault(
				rpc, ctx, 404, "Unknown target: " KG_ECHO_FMT, KG_ECHO(&uri));
		goto answered;
	}
	/* the probe sent after this request is the next sequence number */
	want_seq = t->sched.seq + 1;
	w->seq = want_seq;
	added = goos_wait_add(t, w);
	if(added >= 0)
		goos_target_want(t, id);
	lock_release(&goos_root->lock);
	if(added < 0) {
		shm_free(w);
		kg_rpc_fault(rpc, ctx, 500,
				"Too many genesys_oos.probe requests waiting for a result "
				"(%d)",
				GOOS_WAIT_MAX);
		goto answered;
	}
	LM_NOTICE("genesys_oos.probe of %.*s: probe %u requested%s\n", uri.len,
			uri.s, want_seq,
			dctx ? "" : " (result in genesys_oos.list and the log)");
	if(dctx)
		return; /* answered with the result */
	if(rpc->add(ctx, "{", &h) < 0)
		return;
	rpc->struct_add(h, "Suss", "uri", &uri, "probe", (unsigned int)want_seq,
			"result", "pending", "result_in",
			"genesys_oos.list (last_probe) and the log");
	return;
answered:
	if(dctx)
		rpc->delayed_ctx_close(dctx);
}

static const char *goos_rpc_add_doc[] = {
		"Register a target at runtime: <uri> [socket]", 0};

static void goos_rpc_add(rpc_t *rpc, void *ctx)
{
	str uri = STR_NULL, sock = STR_NULL;
	int id, added;
	void *h;

	if(goos_rpc_scan_uri(rpc, ctx, &uri, &sock) < 0)
		return;
	id = goos_table_register(&uri, sock.len > 0 ? &sock : NULL);
	if(id < 0) {
		kg_rpc_fault(rpc, ctx, 400,
				"Cannot register " KG_ECHO_FMT
				": bad URI or socket, or table full (see the log)",
				KG_ECHO(&uri));
		return;
	}
	/* adding a target already added over RPC changes nothing (one remove
	 * releases it): the reference just taken is given back */
	lock_get(&goos_root->lock);
	added = goos_tgt(id)->rpc_refs == 0;
	if(added)
		goos_tgt(id)->rpc_refs = 1;
	lock_release(&goos_root->lock);
	if(!added)
		goos_table_release(id);
	if(rpc->add(ctx, "{", &h) < 0)
		return;
	rpc->struct_add(h, "dSs", "id", id, "uri", &uri, "added",
			added ? "yes" : "no (already added)");
}

static const char *goos_rpc_remove_doc[] = {
		"Release a target added with genesys_oos.add: <uri> [socket]", 0};

static void goos_rpc_remove(rpc_t *rpc, void *ctx)
{
	str uri = STR_NULL, sock = STR_NULL;
	int id, ok = 0;

	if(goos_rpc_scan_uri(rpc, ctx, &uri, &sock) < 0)
		return;
	id = goos_table_lookup_sock(&uri, &sock);
	if(id < 0) {
		kg_rpc_fault(
				rpc, ctx, 404, "Unknown target: " KG_ECHO_FMT, KG_ECHO(&uri));
		return;
	}
	/* only references taken over RPC: a module's target stays */
	lock_get(&goos_root->lock);
	if(goos_tgt(id)->rpc_refs > 0) {
		goos_tgt(id)->rpc_refs--;
		ok = 1;
	}
	lock_release(&goos_root->lock);
	if(!ok) {
		kg_rpc_fault(rpc, ctx, 409,
				"Target " KG_ECHO_FMT
				" was not added with genesys_oos.add (it is registered by a "
				"module or by the target parameter)",
				KG_ECHO(&uri));
		return;
	}
	goos_table_release(id);
	rpc->rpl_printf(ctx, "Ok. Target " KG_ECHO_FMT " released", KG_ECHO(&uri));
}

/* clang-format off */
rpc_export_t goos_rpc_cmds[] = {
	{"genesys_oos.list", goos_rpc_list, goos_rpc_list_doc, RET_ARRAY},
	{"genesys_oos.set_state", goos_rpc_set_state, goos_rpc_set_state_doc, 0},
	{"genesys_oos.probe", goos_rpc_probe, goos_rpc_probe_doc, 0},
	{"genesys_oos.add", goos_rpc_add, goos_rpc_add_doc, 0},
	{"genesys_oos.remove", goos_rpc_remove, goos_rpc_remove_doc, 0},
	{0, 0, 0, 0}
};
/* clang-format on */
