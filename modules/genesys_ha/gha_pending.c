/*
 * genesys_ha module: transactions pending on a pool member
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: no caller waits for a dead member (see gha_pending.h)
 *
 * Ending a branch at once.  tm ends a branch that got no final reply in
 * time from its retransmission timer: retr_buf_handler() sees fr_expire
 * passed and calls final_response_handler(), which takes the reply lock and
 * fakes a 408 on the branch (after a 1xx it also sends a CANCEL there);
 * relay_reply() then runs failure_route or relays the best reply.  That is
 * the only tm path that ends a branch that already got a 1xx (cancel_uacs()
 * with F_CANCEL_B_FAKE_REPLY fakes a 487 only on branches without any
 * reply), and it works from any process.  So a branch to a dead member is
 * made to expire now: its timer is detached (timer_del() waits for a
 * handler running in a timer process), fr_expire set to the current tick
 * and the timer added again for the next tick.  The failure_route then runs
 * in tm's timer process under tm's own locking, exactly as on a timeout.
 * A final reply racing with it is handled by tm as for any timeout: it
 * marks the timer deleted (F_RB_DEL_TIMER) and the handler does nothing.
 *
 * Finding the branches: one walk of tm's hash table (TABLE_ENTRIES
 * buckets, an empty one costs one read) with each non-empty bucket locked
 * as tm does (lock_hash() is not exported: the same recursive lock on the
 * entry mutex).  Cells are referenced under the bucket lock and acted on
 * after unlocking, then released through tm's unref_cell().  Local
 * transactions (genesys_oos probes, t_uac) are left alone.
 */

#include <string.h>
#include <time.h>

#include "core/dprint.h"
#include "core/mem/shm_mem.h"
#include "core/timer.h"
#include "core/timer_ticks.h"
#include "core/timer_proc.h"
#include "core/pt.h"
#include "core/hash_func.h"
#include "core/ip_addr.h"
#include "core/counters.h"
#include "core/parser/parse_cseq.h"
#include "modules/tm/lock.h"
#include "modules/tm/h_table.h"

#include "gha_state.h"
#include "gha_route.h"
#include "gha_pending.h"
#include "gha_t1.h"
#include "gha_params.h"

int gha_end_pending = GHA_DEFAULT_END_PENDING;
int gha_t1_probe = GHA_DEFAULT_T1_PROBE;
int gha_t1_slots = GHA_DEFAULT_T1_SLOTS;

/* the T1 timer process period */
#define GHA_T1_TICK_MS 100
/* a request is looked at no earlier than this after it was noted */
#define GHA_T1_MIN_MS 400
/* and given up on when its first retransmission is this late */
#define GHA_T1_SLACK_MS 400
/* branches ended per tm hash bucket and pass (a bucket holds the
 * transactions of one Call-ID/CSeq hash: a handful) */
#define GHA_BUCKET_MAX 32
/* members probed per T1 pass */
#define GHA_T1_PROBES_MAX 16

static gha_t1_ring_t *t1_ring = NULL;
/* T1 timer process only */
static gha_t1_reader_t t1_rd;

static counter_handle_t cnt_ended, cnt_t1_probes;

/* clang-format off */
static counter_def_t pending_cnt_defs[] = {
	{&cnt_ended, "pending_ended", 0, 0, 0,
		"unanswered branches ended at once because their member went down"},
	{&cnt_t1_probes, "t1_probes", 0, 0, 0,
		"members probed at once: a relayed request unanswered after T1"},
	{0, 0, 0, 0, 0, 0}
};
/* clang-format on */

static void t1_timer(unsigned int ticks, void *param);

int gha_pending_init(void)
{
	unsigned int n;
	size_t size;

	if(counter_register_array("genesys_ha", pending_cnt_defs) < 0) {
		LM_ERR("cannot register the pending-transaction statistics\n");
		return -1;
	}
	/* end_pending_on_down, t1_probe, t1_slots: checked by gha_params.c */
	if(!gha_t1_probe || gha_pool_file.len <= 0)
		return 0; /* off, or no pool (no member to probe): no process */
	n = gha_t1_ring_slots((unsigned int)gha_t1_slots, &size);
	t1_ring = shm_malloc(size);
	if(t1_ring == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	memset(t1_ring, 0, size);
	gha_t1_ring_init(t1_ring, n);
	register_basic_timers(1);
	return 0;
}

int gha_pending_child_init(int rank)
{
	if(rank != PROC_MAIN || t1_ring == NULL)
		return 0;
	if(fork_basic_utimer(PROC_TIMER, "GENESYS_HA T1 CHECK", 1, t1_timer, NULL,
			   GHA_T1_TICK_MS * 1000 /* us */)
			< 0) {
		LM_ERR("cannot start the T1 check timer process\n");
		return -1;
	}
	return 0;
}

void gha_pending_destroy(void)
{
	if(t1_ring) {
		shm_free(t1_ring);
		t1_ring = NULL;
	}
}

/* ---- tm's table ---- */

/* lock_hash()/unlock_hash() of tm (not exported): recursive per process */
static void bucket_lock(struct entry *e)
{
	int mypid = my_pid();

	if(atomic_get(&e->locker_pid) != mypid) {
		lock(&e->mutex);
		atomic_set(&e->locker_pid, mypid);
	} else {
		e->rec_lock_level++;
	}
}

static void bucket_unlock(struct entry *e)
{
	if(e->rec_lock_level == 0) {
		atomic_set(&e->locker_pid, 0);
		unlock(&e->mutex);
	} else {
		e->rec_lock_level--;
	}
}

static int bucket_empty(struct entry *e)
{
	return __atomic_load_n(&e->next_c, __ATOMIC_RELAXED)
		   == (struct cell *)(void *)e;
}

/* goos target of the pool member or feature server a branch is sent to,
 * and the pair/member for logs; -1 when it is none */
static int branch_target(
		gha_pool_t *p, struct retr_buf *rb, int *pi, int *member)
{
	struct ip_addr ip;
	gha_addr_t a;
	int port, fi;

	su2ip_addr(&ip, &rb->dst.to);
	memset(&a, 0, sizeof(a));
	a.af = (int)ip.af;
	memcpy(a.ip, ip.u.addr, ip.len <= 16 ? ip.len : 16);
	port = su_getport(&rb->dst.to);
	*pi = gha_pool_find_member_addr(p, &a, port, 0, member);
	if(*pi >= 0)
		return p->pairs[*pi].m[*member].goos_id;
	fi = gha_pool_find_fs_addr(p, &a, port);
	if(fi >= 0)
		return p->fs[fi].m.goos_id;
	return -1;
}

/* a relayed request branch that still waits for a final reply */
static int branch_waits(struct cell *t, int b)
{
	struct ua_client *uac = &t->uac[b];
	struct retr_buf *rb = &uac->request;

	return rb->buffer != NULL && rb->rbtype == TYPE_REQUEST
		   && uac->last_received < 200 && rb->t_active
		   && !(rb->flags & F_RB_DEL_TIMER);
}

/* make the branch's final-response timer fire at the next tick (see the
 * file comment); 1 when it was re-armed */
static int expire_branch(struct retr_buf *rb)
{
	if(!rb->t_active || (rb->flags & F_RB_DEL_TIMER))
		return 0;
	/* 0: detached by us, no handler runs it; else it is running or has
	 * fired (its handler decides) or it is not armed at all */
	if(timer_del(&rb->timer) != 0)
		return 0;
	rb->fr_expire = get_ticks_raw();
	membar_write();
	timer_reinit(&rb->timer);
	if(timer_add(&rb->timer, 1) != 0) {
		/* not expected: the timer was detached and reinitialised */
		LM_ERR("cannot re-arm the timer of a branch to a dead member: its "
			   "transaction now ends only at its lifetime limit\n");
		return 0;
	}
	return 1;
}

typedef struct gha_hit
{
	struct cell *t;
	int branch;
} gha_hit_t;

int gha_pending_member_down(int goos_id)
{
	struct s_table *tb;
	struct entry *e;
	struct cell *t;
	gha_hit_t hit[GHA_BUCKET_MAX];
	gha_pool_t *p;
	struct timespec t0, t1;
	unsigned int i;
	int b, n, k, pi, m, ended = 0, lost = 0, lpi = -1, lm = 0;
	long us;

	if(!gha_end_pending || goos_id < 0 || (p = gha_snap()) == NULL)
		return 0;
	if(gha_tmb.get_table == NULL || (tb = gha_tmb.get_table()) == NULL)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for(i = 0; i < TABLE_ENTRIES; i++) {
		e = &tb->entries[i];
		if(bucket_empty(e))
			continue;
		n = 0;
		bucket_lock(e);
		clist_foreach(e, t, next_c)
		{
			if(is_local(t) || t->uas.status >= 200)
				continue;
			for(b = 0; b < t->nr_of_outgoings; b++) {
				if(!branch_waits(t, b)
						|| branch_target(p, &t->uac[b].request, &pi, &m)
								   != goos_id)
					continue;
				if(n == GHA_BUCKET_MAX) {
					lost++;
					continue;
				}
				if(pi >= 0) {
					lpi = pi;
					lm = m;
				}
				atomic_inc(&t->ref_count);
				hit[n].t = t;
				hit[n].branch = b;
				n++;
			}
		}
		bucket_unlock(e);
		for(k = 0; k < n; k++) {
			ended += expire_branch(&hit[k].t->uac[hit[k].branch].request);
			gha_tmb.unref_cell(hit[k].t);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = (long)(t1.tv_sec - t0.tv_sec) * 1000000L
		 + (long)(t1.tv_nsec - t0.tv_nsec) / 1000L;
	LM_DBG("probe target %d down: %d branch(es) ended, tm table walked in %ld"
		   " us\n",
			goos_id, ended, us);
	if(ended > 0) {
		counter_add(cnt_ended, ended);
		if(lpi >= 0)
			LM_NOTICE("pair '%.*s': %s %.*s is down: %d unanswered "
					  "request branch(es) to it end now (failure_route "
					  "may retry on the active member; found in %ld us)\n",
					p->pairs[lpi].name.len, p->pairs[lpi].name.s,
					gha_role_name(lm), p->pairs[lpi].m[lm].uri.len,
					p->pairs[lpi].m[lm].uri.s, ended, us);
		else
			LM_NOTICE("feature server (probe id %d) is down: %d unanswered "
					  "request branch(es) to it end now (found in %ld us)\n",
					goos_id, ended, us);
	}
	if(lost > 0)
		LM_WARN("%d branch(es) to a member that went down were left to "
				"their own timeout (more than %d in one tm hash bucket)\n",
				lost, GHA_BUCKET_MAX);
	return ended;
}

/* ---- T1 check ---- */

void gha_pending_note(sip_msg_t *msg, int proto)
{
	unsigned int h;

	if(t1_ring == NULL || proto != GHA_PROTO_UDP)
		return;
	if(msg->first_line.type != SIP_REQUEST
			|| msg->first_line.u.request.method_value == METHOD_ACK)
		return;
	if(parse_headers(msg, HDR_CALLID_F | HDR_CSEQ_F, 0) < 0
			|| msg->callid == NULL || msg->cseq == NULL
			|| msg->cseq->parsed == NULL)
		return;
	/* tm's own hash of the transaction (t_lookup.c) */
	h = hash(msg->callid->body, get_cseq(msg)->number);
	gha_t1_ring_put(t1_ring, h, get_ticks_raw());
}

/* a member to probe (the pair and role for the log line; pi -1: a feature
 * server) */
typedef struct gha_probe
{
	int id, pi, member;
} gha_probe_t;

static void add_probe(gha_probe_t *pr, int *n, int id, int pi, int member)
{
	int k;

	for(k = 0; k < *n; k++)
		if(pr[k].id == id)
			return;
	if(*n >= GHA_T1_PROBES_MAX)
		return;
	pr[*n].id = id;
	pr[*n].pi = pi;
	pr[*n].member = member;
	(*n)++;
}

/* the requests of bucket h noted age_ms ago: a UDP branch to a member
 * with no reply at all although its first retransmission went out means
 * the member answered neither: probe it */
static int t1_check(gha_pool_t *p, struct s_table *tb, unsigned int h,
		unsigned int age_ms, gha_probe_t *probes, int *nprobes)
{
	struct entry *e = &tb->entries[h & (TABLE_ENTRIES - 1)];
	struct retr_buf *rb;
	struct cell *t;
	int b, pi, m, id, v, rc = GHA_T1_DONE;

	if(bucket_empty(e))
		return GHA_T1_DONE;
	bucket_lock(e);
	clist_foreach(e, t, next_c)
	{
		if(is_local(t) || t->uas.status >= 200)
			continue;
		for(b = 0; b < t->nr_of_outgoings; b++) {
			rb = &t->uac[b].request;
			if(!branch_waits(t, b) || rb->dst.proto != PROTO_UDP
					|| (rb->flags & F_RB_RETR_DISABLED))
				continue;
			v = gha_t1_verdict(t->uac[b].last_received,
					(unsigned long)rb->timer.data,
					(unsigned long)t->rt_t1_timeout_ms, age_ms,
					GHA_T1_SLACK_MS);
			if(v == GHA_T1_DONE)
				continue;
			id = branch_target(p, rb, &pi, &m);
			if(id < 0
					|| (pi >= 0 && gha_mstate(&p->pairs[pi], m) == GHA_MS_DOWN))
				continue;
			if(v == GHA_T1_PROBE)
				add_probe(probes, nprobes, id, pi, m);
			else
				rc = GHA_T1_WAIT;
		}
	}
	bucket_unlock(e);
	return rc;
}

/* one log line per member per GHA_T1_LOG_S: a SIP Server that answers
 * OPTIONS but not INVITEs would otherwise log every call (T1 process) */
#define GHA_T1_LOG_S 10
static struct
{
	int id;
	ticks_t at;
} t1_logged[64];

static int t1_log_due(int id, ticks_t now)
{
	int i = id & 63;

	if(t1_logged[i].id == id + 1
			&& (s_ticks_t)(now - t1_logged[i].at)
					   < (s_ticks_t)S_TO_TICKS(GHA_T1_LOG_S))
		return 0;
	t1_logged[i].id = id + 1;
	t1_logged[i].at = now;
	return 1;
}

static void t1_timer(unsigned int ticks, void *param)
{
	struct s_table *tb;
	gha_pool_t *p;
	unsigned int hash, at, age_ms, n = 0;
	ticks_t now;
	gha_probe_t probes[GHA_T1_PROBES_MAX];
	int nprobes = 0, k;

	(void)ticks;
	(void)param;
	if(t1_ring == NULL || gha_tmb.get_table == NULL)
		return;
	p = gha_snap();
	tb = gha_tmb.get_table();
	now = get_ticks_raw();
	while(n <= t1_ring->mask && gha_t1_ring_peek(t1_ring, &t1_rd, &hash, &at)) {
		age_ms = (int)(now - at) < 0 ? 0 : TICKS_TO_MS(now - at);
		if(age_ms < GHA_T1_MIN_MS)
			break;
		if(p && tb
				&& t1_check(p, tb, hash, age_ms, probes, &nprobes)
						   == GHA_T1_WAIT)
			break;
		gha_t1_ring_next(&t1_rd);
		n++;
	}
	for(k = 0; k < nprobes; k++) {
		gha_goos.report_failure(probes[k].id);
		counter_inc(cnt_t1_probes);
		if(!t1_log_due(probes[k].id, now))
			continue;
		if(probes[k].pi >= 0) {
			gha_pair_t *pr = &p->pairs[probes[k].pi];
			gha_member_t *mb = &pr->m[probes[k].member];
			LM_INFO("pair '%.*s': a request relayed to %s %.*s is unanswered "
					"after its first retransmission (T1): probing it now\n",
					pr->name.len, pr->name.s, gha_role_name(probes[k].member),
					mb->uri.len, mb->uri.s);
		} else {
			LM_INFO("a request relayed to a feature server (probe id %d) is "
					"unanswered after its first retransmission (T1): probing "
					"it now\n",
					probes[k].id);
		}
	}
}
