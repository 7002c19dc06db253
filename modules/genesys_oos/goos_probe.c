/*
 * genesys_oos: the probe engine (the probe process's pass and poll loop)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_oos :: probe engine: the pass and poll loop
 *
 * This file owns the probe process's loop: poll(), the pass over the
 * targets whose time has come, the jobs and completions of a pass, and
 * the re-planning after a cfg change.  The transport check is in
 * goos_side.c, the tm probes (send, reply callback, completion of a probe)
 * in goos_tmprobe.c; goos_probe_int.h is what the three share.  The
 * engine as a whole:
 *
 * One dedicated process ("GENESYS_OOS PROBE TIMER") sleeps in poll() until
 * the next planned event, a transport-check socket reporting, or a
 * wake-up byte on a pipe.  Planned events are kept in a min-heap in shm
 * (goos_heap.h), keyed by the time each target must be looked at next
 * (goos_sched_event: the deadline of its pending probe, else its next
 * periodic probe, or at once for a requested one).  Every process that
 * changes a target's timing (a SIP worker completing a probe with its
 * reply, an RPC requesting a probe, a registration) moves the target in
 * the heap under the table lock and wakes the probe process only when the
 * new time comes before the one it sleeps until.  Each pass takes the
 * targets whose time has come, in time order, at most GOOS_BATCH of them
 * (the rest on the next pass, at once): expires a pending probe at its
 * deadline (millisecond resolution) and decides whether a probe is due;
 * after unlocking it sends the due probes through tm (t_request) and
 * notifies the state changes.  The cost of a pass is O(k log n) for k
 * targets due among n: probes leave on time whatever n, an idle proxy
 * costs no CPU, and probes leave in small batches (goos_sched.h).
 *
 * The tm callback runs in the SIP worker that received the reply (or in
 * tm's timer for a local 408): it completes the probe under the lock and
 * notifies a state change itself, after unlocking (tm runs the callback
 * without its reply lock).  The callback parameter carries the target id and
 * the probe's sequence number, so a reply can only ever complete the probe
 * that caused it.
 *
 * Transport check (goos_transport_check): tm does not report a refused TCP
 * connection or an ICMP port-unreachable to a local UAC (the send error is
 * only logged and the transaction waits for fr_timer).  So with every probe
 * the timer process also:
 *  - UDP: sends "\r\n\r\n" (a keep-alive every SIP stack ignores; Kamailio
 *    drops it as a "probing packet") to the target from one shared,
 *    unconnected UDP socket per source address with IP_RECVERR: the kernel
 *    queues an ICMP port/host unreachable answer on the socket's error
 *    queue with the destination it was about (MSG_ERRQUEUE), which maps it
 *    back to the target.  One descriptor for any number of UDP targets.
 *  - TCP/TLS: opens a non-blocking TCP connection to the target and closes
 *    it as soon as it is established; a refused or reset connect is a
 *    transport error.  Without a free descriptor (RLIMIT_NOFILE) the check
 *    is skipped for that probe, with a warning, and the probe goes out.
 * Both belong to the probe sequence number they were started for.  For
 * TCP/TLS the tm probe is sent once that connect succeeds (or after at most
 * min(oos_timeout/2, 500 ms) without an answer to it), so a target that
 * refuses connections costs no tm transaction and no core ERROR lines.
 * If a target answers the very probe its check declared failed within one
 * round trip (a firewall rejecting the check's source port), the check is
 * turned off for it; an answer to a UDP retransmission (from T1 on) comes
 * from a server that was down and is back, and keeps the check on.
 */

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "core/dprint.h"
#include "core/mem/mem.h"
#include "core/cfg/cfg_struct.h"

#include "goos_probe.h"
#include "goos_probe_int.h"
#include "goos_notify.h"
#include "goos_cfg.h"
#include "goos_probewait.h"

str goos_probe_from = STR_NULL;
str goos_send_socket = STR_NULL;
struct socket_info *goos_send_si = NULL;
int goos_transport_check = 1;

/* the longest sleep: cfg changes are picked up at least this often */
#define GOOS_MAX_SLEEP_MS 1000

/* probe process only: the jobs and completions of the current pass */
goos_job_t goos_jobs[GOOS_BATCH];
goos_change_rec_t goos_recs[GOOS_NRECS];
int goos_njobs, goos_nrecs, goos_ncompl;
struct pollfd *goos_pfds = NULL;
static int goos_pfds_cap = 0;
static int goos_more = 0; /* the last pass stopped at its batch limit */
/* the parameters of the current pass (oos_check and oos_force may change
 * at run time, goos_cfg.h), and those the targets were planned with */
static goos_params_t goos_cur, goos_planned_with;
static int goos_planned_valid = 0;
static int goos_replan = 0;

static int goos_defer_ms(void)
{
	int ms = goos_cur.timeout_ms / 2;

	return ms > 500 ? 500 : ms;
}

static void goos_send(goos_job_t *job)
{
	goos_side_t *sd = &goos_tgt(job->id)->side;

	if(job->direct) {
		goos_tm_send(job);
		return;
	}
	goos_side_start(job);
	if(job->proto != PROTO_UDP && sd->gen == job->gen && sd->seq == job->seq
			&& sd->watching) {
		if(sd->err)
			return; /* refused at once: the next pass marks it DOWN */
		if(sd->conn_fd >= 0) {
			/* the next pass sends it when the connect succeeds */
			sd->deferred = 1;
			sd->ready = 0;
			sd->defer_until = goos_now_ms() + goos_defer_ms();
			return;
		}
	}
	goos_tm_send(job);
}


/* the parameters for this pass; when oos_check or oos_force changed since
 * the targets were planned (cfg.set_now_int genesys_oos ...), the walk
 * re-plans every target */
static void goos_params_refresh(void)
{
	goos_params_now(&goos_cur);
	if(!goos_planned_valid) {
		goos_planned_with = goos_cur;
		goos_planned_valid = 1;
		/* publishes the periods to goos_root (no target started yet) */
		goos_replan = 1;
		return;
	}
	if(goos_cur.check_s == goos_planned_with.check_s
			&& goos_cur.force_s == goos_planned_with.force_s)
		return;
	LM_NOTICE("oos_check %d -> %d s, oos_force %d -> %d s: every target's "
			  "next probe re-planned from its last one; probe deadline "
			  "%d ms%s\n",
			goos_planned_with.check_s, goos_cur.check_s,
			goos_planned_with.force_s, goos_cur.force_s, goos_cur.timeout_ms,
			goos_cur.timeout_ms < goos_params.timeout_ms
					? " (oos_timeout shortened to the shortest period)"
					: "");
	goos_planned_with = goos_cur;
	goos_replan = 1;
}

/* under the lock: a job for the probe of t just planned */
static void goos_job_fill(goos_job_t *job, goos_target_t *t, int id, int direct)
{
	job->id = id;
	job->seq = t->sched.seq;
	job->gen = t->gen;
	job->proto = t->proto;
	job->tc_off = t->tc_off;
	job->direct = direct;
	job->si = t->si;
	memcpy(job->uri_buf, t->uri.s, t->uri.len);
	job->uri.s = job->uri_buf;
	job->uri.len = t->uri.len;
	memcpy(job->sock_buf, t->sock.s, t->sock.len);
	job->sock.s = job->sock_buf;
	job->sock.len = t->sock.len;
}

/* room for one more completion and one more job in this pass */
static int goos_pass_room(void)
{
	return goos_njobs < GOOS_BATCH && goos_ncompl < GOOS_BATCH
		   && goos_nrecs < GOOS_NRECS - GOOS_BATCH - 2;
}

/* under the lock: the side events (check errors, deferred TCP probes whose
 * connect succeeded), as many as the pass has room for */
static void goos_pass_side_events(int64_t now)
{
	goos_target_t *t;
	goos_side_t *sd;
	int i, id;

	for(i = 0; i < goos_nsev && goos_pass_room(); i++) {
		id = goos_sev[i];
		t = goos_tgt(id);
		sd = &t->side;
		sd->queued = 0;
		if(t->refs <= 0 || sd->gen != t->gen || !sd->watching
				|| !t->sched.pending || t->sched.seq != sd->seq) {
			if(sd->gen == t->gen && sd->watching && sd->seq != t->sched.seq)
				goos_side_stop(sd);
			sd->err = 0;
			sd->ready = 0;
			continue;
		}
		if(sd->err) {
			sd->watching = 0;
			sd->ready = 0;
			goos_conn_del(sd);
			if(goos_complete(t, id, GOOS_RES_DOWN, GOOS_R_TRANSPORT, 0, -1,
					   goos_errno_detail(t->proto, sd->err), now,
					   &goos_recs[goos_nrecs]))
				goos_nrecs++;
		} else if(sd->ready) {
			sd->ready = 0;
			goos_job_fill(&goos_jobs[goos_njobs++], t, id, 1);
		}
	}
	/* the rest waits for the next pass */
	if(i > 0) {
		memmove(goos_sev, goos_sev + i, sizeof(int) * (goos_nsev - i));
		goos_nsev -= i;
	}
}

/* under the lock: a cfg change of oos_check or oos_force re-plans every
 * target (once per change, O(n log n)) */
static void goos_pass_replan(int64_t now)
{
	goos_target_t *t;
	int i, span, hiwater = goos_root->hiwater;

	/* completions from now on plan with the new periods (goos_complete);
	 * those before were planned with the old ones and are re-planned here */
	goos_root->plan_check_s = goos_cur.check_s;
	goos_root->plan_force_s = goos_cur.force_s;
	for(i = 0; i < hiwater; i++) {
		t = goos_tgt(i);
		if(t->refs <= 0 || !t->started)
			continue;
		/* a new period counts from the last probe, at once */
		span = goos_params_period_ms(&goos_cur, t->health.state);
		goos_sched_replan(&t->sched, now, span,
				goos_sched_phase_ms(
						i, span > 1000 ? 1000 : span, goos_cur.probe_slots));
		goos_table_rekey(t, i);
	}
	goos_replan = 0;
}

/* one pass: check reports, then the targets whose time has come */
static void goos_probe_pass(void)
{
	goos_target_t *t;
	goos_side_t *sd;
	int64_t now, key;
	int i, id, span, guard;
	char detail[96];

	now = goos_now_ms();
	goos_params_refresh();
	goos_njobs = goos_nrecs = goos_ncompl = 0;

	lock_get(&goos_root->lock);
	/* awake: nobody needs to wake us until we sleep again */
	goos_root->wake_ms = INT64_MIN;
	__atomic_store_n(&goos_root->kick, 0, __ATOMIC_RELEASE);
	if(goos_replan)
		goos_pass_replan(now);
	goos_pass_side_events(now);
	if(goos_root->waiters)
		goos_wait_sweep(now);
	/* at most every target twice: a target taken always leaves with a
	 * later time (a probe sent, or its next one planned) */
	guard = 2 * goos_root->heap.n + 2;
	while(goos_pass_room() && guard-- > 0) {
		id = goos_heap_top(&goos_root->heap, &key);
		if(id < 0 || key > now)
			break;
		t = goos_tgt(id);
		sd = &t->side;
		if(t->refs <= 0) {
			goos_heap_del(&goos_root->heap, id);
			continue;
		}
		if(sd->gen != t->gen)
			goos_side_reset(sd, id, t->gen);
		if(!t->started) {
			/* first probes spread over one second (or the period) */
			span = goos_params_period_ms(&goos_cur, GOOS_H_UNKNOWN);
			if(span > 1000)
				span = 1000;
			goos_sched_start(&t->sched, now, id, span, goos_cur.probe_slots);
			if(goos_cur.check_s == 0)
				t->sched.next_due_ms = GOOS_NEVER;
			t->started = 1;
		}
		if(goos_sched_expired(&t->sched, now)) {
			snprintf(detail, sizeof(detail), "timeout: no reply within %d ms",
					goos_cur.timeout_ms);
			if(goos_complete(t, id, GOOS_RES_DOWN, GOOS_R_TIMEOUT, 0, -1,
					   detail, now, &goos_recs[goos_nrecs]))
				goos_nrecs++;
		}
		if(t->remote && !t->sched.want && goos_sched_due(&t->sched, now)) {
			/* probed by another proxy (distributed probing): skip this
			 * period, a requested probe still goes out */
			span = goos_params_period_ms(&goos_cur, t->health.state);
			t->sched.next_due_ms = span > 0 ? now + span : GOOS_NEVER;
		} else if(goos_sched_due(&t->sched, now)) {
			goos_sched_sent(&t->sched, now, goos_cur.timeout_ms);
			goos_root->npending++;
			t->probes++;
			goos_job_fill(&goos_jobs[goos_njobs++], t, id, 0);
		}
		goos_table_rekey(t, id);
	}
	goos_more = (goos_nsev > 0
				 || (goos_heap_top(&goos_root->heap, &key) >= 0 && key <= now));
	lock_release(&goos_root->lock);

	for(i = 0; i < goos_njobs; i++)
		goos_send(&goos_jobs[i]);
	for(i = 0; i < goos_nrecs; i++)
		goos_notify(&goos_recs[i]);
	goos_notify_results();
	goos_wait_reply();
}

static int goos_pfds_reserve(int n)
{
	struct pollfd *np;
	int ncap;

	if(n <= goos_pfds_cap)
		return 0;
	ncap = goos_pfds_cap ? goos_pfds_cap * 2 : 64;
	while(ncap < n)
		ncap *= 2;
	np = (struct pollfd *)pkg_realloc(goos_pfds, sizeof(*np) * ncap);
	if(np == NULL) {
		PKG_MEM_ERROR;
		return -1;
	}
	goos_pfds = np;
	goos_pfds_cap = ncap;
	return 0;
}

/* how long poll() may sleep, and which fds it watches: the wake-up pipe,
 * the shared UDP check sockets, the TCP connects in progress */
static int goos_poll_setup(int *nfds)
{
	goos_side_t *sd;
	int64_t now, wake;
	int i, n = 0;

	if(goos_pfds_reserve(1 + goos_nusocks + goos_nconns) < 0) {
		/* only the pipe and the UDP sockets (room for those is kept) */
		*nfds = 0;
		return 10;
	}
	goos_pfds[n].fd = goos_root->wake_rd;
	goos_pfds[n].events = POLLIN;
	goos_pfds[n++].revents = 0;
	for(i = 0; i < goos_nusocks; i++) {
		goos_pfds[n].fd = goos_usock_fd(i);
		goos_pfds[n].events = POLLIN; /* an ICMP error shows as POLLERR */
		goos_pfds[n++].revents = 0;
	}
	now = goos_now_ms();
	lock_get(&goos_root->lock);
	if(goos_more || goos_heap_top(&goos_root->heap, &wake) < 0)
		wake = goos_more ? now : GOOS_NEVER;
	for(i = 0; i < goos_nconns; i++) {
		sd = &goos_tgt(goos_conns[i])->side;
		if(sd->deferred && sd->defer_until < wake)
			wake = sd->defer_until;
		goos_pfds[n].fd = sd->conn_fd;
		goos_pfds[n].events = POLLOUT;
		goos_pfds[n++].revents = 0;
	}
	if(wake - now > GOOS_MAX_SLEEP_MS)
		wake = now + GOOS_MAX_SLEEP_MS;
	/* a target moved before this time wakes us (goos_table_rekey) */
	goos_root->wake_ms = wake > now ? wake : INT64_MIN;
	lock_release(&goos_root->lock);
	*nfds = n;
	return wake > now ? (int)(wake - now) : 0;
}

void goos_probe_loop(void)
{
	char buf[64];
	int nfds, timeout;

	if(goos_root == NULL || goos_side_init() < 0) {
		LM_ERR("cannot start the genesys_oos probe process\n");
		return;
	}
	/* the parameters the targets start with: a change from now on
	 * re-plans them */
	goos_params_refresh();
	for(;;) {
		timeout = goos_poll_setup(&nfds);
		if(nfds > 0 && poll(goos_pfds, nfds, timeout) < 0 && errno != EINTR)
			LM_ERR("poll: %s\n", strerror(errno));
		if(nfds == 0)
			usleep(timeout * 1000);
		if(nfds > 0 && (goos_pfds[0].revents & POLLIN)) {
			while(read(goos_root->wake_rd, buf, sizeof(buf)) > 0)
				;
		}
		cfg_update();
		if(nfds > 0)
			goos_side_collect(goos_now_ms(), nfds);
		goos_probe_pass();
	}
}
