/*
 * genesys_oos: tm probes (send, reply callback, completion)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_oos :: tm probes: send, reply callback, completion
 *
 * Owns what goes through tm: binding its API, sending an OPTIONS probe
 * (t_request with a callback whose parameter carries the target id and the
 * probe's sequence number), the callback that runs in the process that got
 * the final reply (a SIP worker, or tm's timer for a local 408), tm's
 * transaction context set aside around event routes, and the completion of
 * a probe under the table lock (goos_complete: counters, health, next
 * probe, result subscribers, effective state), which the probe pass also
 * uses for timeouts and transport errors; the completion also hands the
 * result to the genesys_oos.probe requests waiting for it
 * (goos_probewait.c).
 */

#include <string.h>

#include "core/dprint.h"
#include "core/cfg/cfg_struct.h"
#include "core/timer_ticks.h"
#include "modules/tm/tm_load.h"

#include "goos_probe.h"
#include "goos_probe_int.h"
#include "goos_notify.h"
#include "goos_probewait.h"

static struct tm_binds goos_tmb;
static str goos_options = str_init("OPTIONS");
static str goos_probe_hdrs = str_init("Max-Forwards: 70\r\n");

int goos_probe_init(void)
{
	if(load_tm_api(&goos_tmb) < 0) {
		LM_ERR("cannot load the tm API: genesys_oos needs the tm module "
			   "(loadmodule \"tm.so\" before genesys_oos)\n");
		return -1;
	}
	return 0;
}

/* under the lock: a probe finished; fills rec and returns 1 when the
 * effective state changed (notify it after unlocking) */
int goos_complete(goos_target_t *t, int id, goos_result_t res,
		goos_reason_t reason, int code, int rtt, const char *detail,
		int64_t now, goos_change_rec_t *rec)
{
	goos_params_t p;
	int changed;

	if(res == GOOS_RES_DOWN) {
		t->failures++;
		if(reason == GOOS_R_TIMEOUT) {
			t->timeouts++;
			counter_inc(goos_cnt_timeouts);
		} else {
			t->transport_errors++;
			counter_inc(goos_cnt_transport);
		}
	}
	if(reason == GOOS_R_REPLY) {
		t->last_code = code;
		t->last_rtt_ms = rtt;
	}
	/* the thresholds are modparams; the periods are those the probe
	 * process plans with (goos_root, under the lock), not this process's
	 * view of the cfg group */
	p = goos_params;
	p.check_s = goos_root->plan_check_s;
	p.force_s = goos_root->plan_force_s;
	goos_health_apply(&t->health, res, p.fail_threshold, p.ok_threshold);
	if(t->sched.pending)
		goos_root->npending--;
	goos_sched_done(&t->sched, now, goos_params_period_ms(&p, t->health.state));
	t->done_result = res;
	t->done_reason = reason;
	t->done_seq = t->sched.seq;
	goos_table_rekey(t, id);
	goos_ncompl++;
	goos_notify_result_push(id,
			t->forced ? (goos_state_t)t->forced
					  : (goos_state_t)goos_result_state(res),
			reason == GOOS_R_REPLY ? code : 0, t->sched.sent_ms);
	changed = goos_target_update(t, id, reason, code, rec);
	/* genesys_oos.probe requests for this probe, answered after the lock */
	if(goos_root->waiters)
		goos_wait_done(t, id);
	if(changed) {
		snprintf(rec->detail, sizeof(rec->detail), "%s", detail);
		return 1;
	}
	return 0;
}

void goos_tm_ctx_push(void **t, int *branch)
{
	*t = goos_tmb.t_gett();
	*branch = goos_tmb.t_gett_branch();
	goos_tmb.t_sett(T_UNDEFINED, T_BR_UNDEFINED);
}

void goos_tm_ctx_pop(void *t, int branch)
{
	goos_tmb.t_sett((struct cell *)t, branch);
}

/* tm's retr_timer1 (T1, ms) as this process sees it: before T1 a UDP probe
 * has been sent once; 500 (RFC 3261) if tm's cfg group cannot be read */
static int goos_tm_t1_ms(void)
{
	static cfg_group_t *grp = NULL;
	static cfg_mapping_t *var = NULL;
	static int looked = 0;
	str gname = str_init("tm"), vname = str_init("retr_timer1");

	if(!looked) {
		looked = 1;
		if(cfg_lookup_var(&gname, &vname, &grp, &var) < 0
				|| CFG_VAR_TYPE(var) != CFG_VAR_INT)
			grp = NULL;
	}
	if(grp == NULL || grp->handle == NULL || *grp->handle == NULL)
		return 500;
	return *(int *)((char *)*grp->handle + var->offset);
}

/* a late reply to the probe its transport check declared failed: is it
 * evidence that the check lies (a firewall rejecting the check's source
 * port)?  Only when the target answered the probe's first transmission,
 * i.e. within one round trip.  tm retransmits a UDP probe from T1 on (its
 * timer fires on 1/16 s ticks: up to one tick early, 438 ms for T1 500 ms
 * measured), and a server that was dead (the ICMP error was true) and is
 * back answers a retransmission: a restart, or a backup started after the
 * proxy, must not switch the check off (issue 9 point 5).  TCP/TLS probes
 * are sent once. */
static int goos_check_contradicted(goos_target_t *t, uint32_t seq, int rtt)
{
	if(t->tc_off || t->done_seq != seq || t->done_reason != GOOS_R_TRANSPORT)
		return 0;
	return t->proto != PROTO_UDP
		   || rtt < goos_tm_t1_ms() - 2 * (int)(1000 / TIMER_TICKS_HZ);
}

/* runs in the process that got the final reply (or tm's local 408) */
static void goos_tm_cb(struct cell *trans, int type, struct tmcb_params *ps)
{
	goos_change_rec_t rec;
	goos_target_t *t;
	goos_rpl_class_t cls;
	goos_reason_t reason;
	uint32_t seq;
	int id, local, code, rtt, changed = 0, tc_warn = 0;
	int64_t now = goos_now_ms();
	char detail[96];
	char uri[GOOS_URI_MAX];

	(void)trans;
	(void)type;
	if(ps == NULL || ps->param == NULL || goos_root == NULL)
		return;
	goos_cbp_decode(*ps->param, &id, &seq);
	if(id < 0 || id >= __atomic_load_n(&goos_root->capacity, __ATOMIC_ACQUIRE))
		return;
	local = (ps->rpl == NULL || ps->rpl == FAKED_REPLY);
	code = ps->code;
	if(!local)
		counter_inc(goos_cnt_replies);
	t = goos_tgt(id);
	lock_get(&goos_root->lock);
	if(t->refs <= 0) {
		lock_release(&goos_root->lock);
		return;
	}
	cls = goos_sched_classify(&t->sched, seq, now);
	rtt = (int)(now - t->sched.sent_ms);
	if(cls == GOOS_RPL_ON_TIME) {
		if(local) {
			/* made by tm: its fr_timer (408) or a send failure */
			reason = (code == 408) ? GOOS_R_TIMEOUT : GOOS_R_TRANSPORT;
			snprintf(detail, sizeof(detail), "%s: local %d from tm",
					reason == GOOS_R_TIMEOUT ? "timeout" : "transport error",
					code);
			changed = goos_complete(
					t, id, GOOS_RES_DOWN, reason, 0, -1, detail, now, &rec);
		} else {
			snprintf(detail, sizeof(detail), "reply %d in %d ms", code, rtt);
			changed = goos_complete(t, id, goos_classify(code, 0), GOOS_R_REPLY,
					code, rtt, detail, now, &rec);
		}
		/* a probe requested while this one was pending leaves now
		 * (goos_complete moved the target in the heap) */
	} else if(!local) {
		/* after the deadline (or for an older probe): recorded, never
		 * undoes the failure; a late answer to the last probe asks for a
		 * new probe at once, whose result counts */
		t->late_replies++;
		counter_inc(goos_cnt_late);
		if(cls == GOOS_RPL_LATE) {
			t->last_code = code;
			t->last_rtt_ms = rtt;
			if(goos_check_contradicted(t, seq, rtt)) {
				/* the target answered the very probe its transport check
				 * declared failed: a firewall rejecting the check's source
				 * port makes the check lie; stop using it for this target */
				t->tc_off = 1;
				tc_warn = 1;
				snprintf(uri, sizeof(uri), "%.*s", t->uri.len, t->uri.s);
			}
			goos_target_want(t, id);
		}
	}
	lock_release(&goos_root->lock);
	if(tc_warn)
		LM_WARN("target %s answered probe %u (%d in %d ms) after its "
				"transport check reported an error: the check is off for "
				"this target (a firewall may reject packets from other ports "
				"than the SIP socket); only replies and oos_timeout count "
				"now\n",
				uri, seq, code, rtt);
	if(changed)
		goos_notify(&rec);
	goos_notify_results();
	goos_wait_reply();
}

void goos_tm_send(goos_job_t *job)
{
	uac_req_t uac_r;
	str *sock = NULL;
	goos_target_t *t;
	int64_t now;

	set_uac_req(&uac_r, &goos_options, &goos_probe_hdrs, 0, 0,
			TMCB_LOCAL_COMPLETED, goos_tm_cb,
			goos_cbp_encode(job->id, job->seq));
	if(job->sock.len > 0)
		sock = &job->sock;
	else if(goos_send_socket.len > 0)
		sock = &goos_send_socket;
	uac_r.ssock = sock;
	counter_inc(goos_cnt_probes);
	if(goos_tmb.t_request(&uac_r, &job->uri, &job->uri, &goos_probe_from, 0)
			>= 0)
		return;
	/* tm could not even build or send it */
	now = goos_now_ms();
	t = goos_tgt(job->id);
	lock_get(&goos_root->lock);
	if(t->refs > 0 && t->gen == job->gen && t->sched.pending
			&& t->sched.seq == job->seq && goos_nrecs < GOOS_NRECS
			&& goos_complete(t, job->id, GOOS_RES_DOWN, GOOS_R_TRANSPORT, 0, -1,
					"transport error: tm could not send the probe", now,
					&goos_recs[goos_nrecs]))
		goos_nrecs++;
	lock_release(&goos_root->lock);
}
