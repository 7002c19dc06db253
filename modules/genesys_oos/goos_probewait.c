/*
 * genesys_oos: genesys_oos.probe requests waiting for their probe's result
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_oos :: the result of an RPC probe, answered asynchronously
 *
 * genesys_oos.probe never waits for its probe in the RPC process (the ctl
 * handler serves every kamcmd one at a time: a probe to a silent target
 * would block it for up to 2 * oos_timeout).  The command asks for the
 * probe and leaves a request in this list (shm, under the table lock).
 * The process that completes the probe (a SIP worker with the reply, tm's
 * timer with its local 408, the probe process with a timeout or a
 * transport error) takes the request out of the list in goos_complete and,
 * after unlocking, answers it: with the RPC transport's delayed reply when
 * it has one (jsonrpcs over HTTP, xmlrpc), and logs the result in any case
 * (the only answer a transport without delayed replies, like ctl, gets
 * besides genesys_oos.list).  The probe process drops requests whose target
 * was released or that got no result within 2 * oos_timeout + 1 s.
 */

#include <string.h>

#include "core/dprint.h"
#include "core/mem/shm.h"
#include "common/kg_rpc.h"

#include "goos_probewait.h"
#include "goos_probe.h"
#include "goos_notify.h"

/* requests taken out of the list in this process, answered after the
 * lock (process-local) */
static goos_wait_t *goos_wait_ready = NULL;

goos_wait_t *goos_wait_new(int id, uint32_t seq, rpc_delayed_ctx_t *dctx)
{
	goos_wait_t *w = (goos_wait_t *)shm_malloc(sizeof(goos_wait_t));

	if(w == NULL) {
		SHM_MEM_ERROR;
		return NULL;
	}
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->seq = seq;
	w->dctx = dctx;
	/* a pending probe finishes first, then ours: two deadlines at most */
	w->deadline_ms = goos_now_ms() + 2 * goos_params.timeout_ms + 1000;
	return w;
}

int goos_wait_add(goos_target_t *t, goos_wait_t *w)
{
	goos_wait_t *o;

	if(w->dctx == NULL) {
		/* the result is only logged: once per probe is enough */
		for(o = goos_root->waiters; o; o = o->next) {
			if(o->dctx == NULL && o->id == w->id && o->gen == t->gen
					&& o->seq == w->seq) {
				shm_free(w);
				return 1;
			}
		}
	}
	if(goos_root->nwaiters >= GOOS_WAIT_MAX)
		return -1;
	w->gen = t->gen;
	memcpy(w->uri, t->uri.s, t->uri.len);
	w->uri[t->uri.len] = '\0';
	w->next = goos_root->waiters;
	goos_root->waiters = w;
	goos_root->nwaiters++;
	return 0;
}

/* under the lock: *pp leaves the list for this process's ready list */
static void goos_wait_take(goos_wait_t **pp)
{
	goos_wait_t *w = *pp;

	*pp = w->next;
	goos_root->nwaiters--;
	w->next = goos_wait_ready;
	goos_wait_ready = w;
}

void goos_wait_done(goos_target_t *t, int id)
{
	goos_wait_t **pp, *w;

	pp = &goos_root->waiters;
	while((w = *pp) != NULL) {
		if(w->id != id || w->gen != t->gen
				|| (int32_t)(t->done_seq - w->seq) < 0) {
			pp = &w->next;
			continue;
		}
		w->fault = 0;
		w->result = t->done_result;
		w->reason = t->done_reason;
		w->code = (t->done_reason == GOOS_R_REPLY) ? t->last_code : 0;
		w->rtt_ms = (t->done_reason == GOOS_R_REPLY) ? t->last_rtt_ms : -1;
		w->state = t->state;
		w->forced = t->forced;
		goos_wait_take(pp);
	}
}

void goos_wait_sweep(int64_t now)
{
	goos_wait_t **pp, *w;
	goos_target_t *t;

	pp = &goos_root->waiters;
	while((w = *pp) != NULL) {
		t = goos_tgt(w->id);
		if(t->refs <= 0 || t->gen != w->gen)
			w->fault = 404;
		else if(now >= w->deadline_ms)
			w->fault = 500;
		else {
			pp = &w->next;
			continue;
		}
		goos_wait_take(pp);
	}
}

static const char *goos_wait_fault_text(goos_wait_t *w)
{
	return w->fault == 404 ? "Target released while probing"
						   : "No probe result within the deadline";
}

/* the delayed reply of one request */
static void goos_wait_answer(goos_wait_t *w)
{
	rpc_t *rpc = &w->dctx->rpc;
	void *ctx = w->dctx->reply_ctx;
	void *h;

	if(w->fault == 500) {
		kg_rpc_fault(rpc, ctx, 500, "No probe result within %d ms",
				2 * goos_params.timeout_ms + 1000);
	} else if(w->fault) {
		kg_rpc_fault(rpc, ctx, w->fault, "%s", goos_wait_fault_text(w));
	} else if(rpc->add(ctx, "{", &h) >= 0) {
		rpc->struct_add(h, "sussddss", "uri", w->uri, "probe",
				(unsigned int)w->seq, "result",
				goos_health_state_name(goos_result_state(w->result)), "reason",
				goos_reason_name(w->reason), "code", w->code, "rtt_ms",
				w->rtt_ms, "state", goos_health_state_name(w->state), "forced",
				w->forced ? goos_health_state_name(w->forced) : "no");
	}
	rpc->delayed_ctx_close(w->dctx);
}

void goos_wait_reply(void)
{
	goos_wait_t *w;
	void *bk_t;
	int bk_branch;

	while((w = goos_wait_ready) != NULL) {
		goos_wait_ready = w->next;
		if(w->fault) {
			LM_WARN("genesys_oos.probe of %s: probe %u: %s\n", w->uri, w->seq,
					goos_wait_fault_text(w));
		} else {
			LM_NOTICE("genesys_oos.probe of %s: probe %u result %s (reason "
					  "%s, code %d, rtt %d ms), state %s\n",
					w->uri, w->seq,
					goos_health_state_name(goos_result_state(w->result)),
					goos_reason_name(w->reason), w->code, w->rtt_ms,
					goos_health_state_name(w->state));
		}
		if(w->dctx) {
			/* not the probe's transaction (we may be in its tm callback) */
			goos_tm_ctx_push(&bk_t, &bk_branch);
			goos_wait_answer(w);
			goos_tm_ctx_pop(bk_t, bk_branch);
		}
		shm_free(w);
	}
}
