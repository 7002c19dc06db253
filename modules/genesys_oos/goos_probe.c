/*
 * genesys_oos: the probe engine (timer process, tm probes, transport checks)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_oos :: probe engine
 *
 One dedicated process ("GENESYS_OOS PROBE TIMER") sleeps in poll() until
 * the next planned event (a probe due, a probe deadline), a transport-check
 * socket reporting, or a wake-up byte on a pipe (a probe requested, a target
 * registered).  Then, under the table lock, for every target it takes a
 * transport error seen by its own check, expires the pending probe at its
 * deadline (millisecond resolution) and decides whether a new probe is due;
 * after unlocking it sends the due probes through tm (t_request) and
 * notifies the state changes.  It never wakes for nothing: an idle proxy
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
 *    drops it as a "probing packet") from a UDP socket connect()ed to the
 *    target; the kernel reports an ICMP port/host unreachable answer to a
 *    connected socket as ECONNREFUSED / EHOSTUNREACH on the next recv().
 *  - TCP/TLS: opens a non-blocking TCP connection to the target and closes
 *    it as soon as it is established; a refused or reset connect is a
 *    transport error.
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
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "core/dprint.h"
#include "core/mem/mem.h"
#include "core/parser/parse_uri.h"
#include "core/resolve.h"
#include "core/ip_addr.h"
#include "core/socket_info.h"
#include "core/cfg/cfg_struct.h"
#include "core/timer_ticks.h"
#include "modules/tm/tm_load.h"

#include "goos_probe.h"
#include "goos_notify.h"
#include "goos_cfg.h"

str goos_probe_from = STR_NULL;
str goos_send_socket = STR_NULL;
struct socket_info *goos_send_si = NULL;
int goos_transport_check = 1;

static struct tm_binds goos_tmb;
static str goos_options = str_init("OPTIONS");
static str goos_probe_hdrs = str_init("Max-Forwards: 70\r\n");

#define GOOS_BATCH 64
/* the longest sleep: cfg changes are picked up at least this often */
#define GOOS_MAX_SLEEP_MS 1000

typedef struct goos_job
{
	int id;
	uint32_t seq;
	uint32_t gen;
	int proto;
	int tc_off;
	struct socket_info *si;
	char uri_buf[GOOS_URI_MAX];
	str uri;
	char sock_buf[GOOS_SOCK_MAX];
	str sock;
} goos_job_t;

/* timer process only */
typedef struct goos_side
{
	uint32_t gen; /*!< slot generation this state belongs to */
	int resolved; /*!< 1: dst valid, -1: cannot resolve, 0: not yet */
	int by_name;  /*!< the host is a name: resolve again for every probe */
	union sockaddr_union dst;
	int udp_fd;	  /*!< connected UDP socket or -1 */
	int conn_fd;  /*!< TCP connect in progress or -1 */
	int watching; /*!< a check runs for probe `seq` */
	int pidx;	  /*!< index in goos_pfds of the last poll(), 0: none */
	uint32_t seq;
	int err; /*!< errno seen for probe `seq`, 0: none */
	/* TCP/TLS: the tm probe waits for the check's connect to succeed, so
	 * a refused target costs no tm send (and no core ERROR log lines) */
	int deferred;		 /*!< djob waits for the connect */
	int ready;			 /*!< connect succeeded: send djob now */
	int64_t defer_until; /*!< send djob anyway at this time */
	goos_job_t *djob;	 /*!< allocated on first use (TCP/TLS only) */
} goos_side_t;

static goos_side_t *goos_side = NULL;
static struct pollfd *goos_pfds = NULL;
static int goos_nwatching = 0;		/* side checks running */
static int64_t goos_next_event = 0; /* next planned event */
static int64_t goos_next_due = 0;	/* next periodic or requested probe */
static goos_job_t goos_jobs[GOOS_BATCH];
static goos_change_rec_t goos_recs[GOOS_BATCH];
static int goos_njobs, goos_nrecs;
/* the parameters of the current pass (oos_check and oos_force may change
 * at run time, goos_cfg.h), and those the targets were planned with */
static goos_params_t goos_cur, goos_planned_with;
static int goos_planned_valid = 0;
static int goos_replan = 0; /* until a walk re-planned every target */

int goos_probe_init(void)
{
	if(load_tm_api(&goos_tmb) < 0) {
		LM_ERR("cannot load the tm API: genesys_oos needs the tm module "
			   "(loadmodule \"tm.so\" before genesys_oos)\n");
		return -1;
	}
	return 0;
}

static int goos_side_init(void)
{
	int i;

	goos_side = (goos_side_t *)pkg_malloc(
			sizeof(goos_side_t) * goos_root->max_targets);
	goos_pfds = (struct pollfd *)pkg_malloc(
			sizeof(struct pollfd) * (goos_root->max_targets + 1));
	if(goos_side == NULL || goos_pfds == NULL) {
		PKG_MEM_ERROR;
		return -1;
	}
	/* each target completes at most one probe in the table walk and one
	 * failed send after it */
	if(goos_notify_results_reserve(2 * goos_root->max_targets + 1) < 0)
		return -1;
	memset(goos_side, 0, sizeof(goos_side_t) * goos_root->max_targets);
	for(i = 0; i < goos_root->max_targets; i++) {
		goos_side[i].udp_fd = -1;
		goos_side[i].conn_fd = -1;
	}
	return 0;
}

static void goos_side_reset(goos_side_t *sd, uint32_t gen)
{
	goos_job_t *djob = sd->djob;

	if(sd->udp_fd >= 0)
		close(sd->udp_fd);
	if(sd->conn_fd >= 0)
		close(sd->conn_fd);
	memset(sd, 0, sizeof(*sd));
	sd->udp_fd = -1;
	sd->conn_fd = -1;
	sd->gen = gen;
	sd->djob = djob;
}

/* the check of a probe is over (the UDP socket stays for the next one) */
static void goos_side_stop(goos_side_t *sd)
{
	sd->watching = 0;
	sd->deferred = 0;
	sd->ready = 0;
	if(sd->conn_fd >= 0) {
		close(sd->conn_fd);
		sd->conn_fd = -1;
	}
}

static int goos_is_transport_errno(int e)
{
	return e == ECONNREFUSED || e == ECONNRESET || e == EHOSTUNREACH
		   || e == ENETUNREACH || e == EHOSTDOWN || e == ENETDOWN
		   || e == ETIMEDOUT;
}

/* phase 1 (no lock): collect errors of the running transport checks */
/* returns the number of new events (errors seen, deferred probes ready) */
static int goos_side_poll(int64_t now, int hiwater)
{
	goos_side_t *sd;
	goos_target_t *t;
	char buf[64];
	socklen_t len;
	int i, n, err, events = 0, watching = 0;

	for(i = 0; i < hiwater; i++) {
		sd = &goos_side[i];
		if(!sd->watching)
			continue;
		t = &goos_root->targets[i];
		/* finished probe (a reply completed it in another process): two
		 * aligned ints read without the lock, a stale view only delays */
		if(!t->sched.pending || t->sched.seq != sd->seq) {
			goos_side_stop(sd);
			continue;
		}
		watching++;
		if(sd->deferred && now >= sd->defer_until) {
			/* no answer to the connect yet: let tm try on its own */
			sd->deferred = 0;
			sd->ready = 1;
			events++;
		}
		if(sd->err)
			continue;
		/* only sockets poll() reported: no syscall for quiet ones */
		if(sd->pidx <= 0 || goos_pfds[sd->pidx].revents == 0)
			continue;
		sd->pidx = 0;
		if(sd->udp_fd >= 0) {
			for(n = 0; n < 16; n++) {
				if(recv(sd->udp_fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
					continue; /* the target answered the keep-alive */
				if(errno == EINTR)
					continue;
				if(goos_is_transport_errno(errno)) {
					sd->err = errno;
					events++;
				}
				break;
			}
		}
		if(sd->conn_fd >= 0) {
			err = 0;
			len = sizeof(err);
			if(getsockopt(sd->conn_fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
				err = errno;
			if(err && goos_is_transport_errno(err))
				sd->err = err;
			close(sd->conn_fd);
			sd->conn_fd = -1;
			if(sd->err)
				events++;
			if(sd->deferred) {
				sd->deferred = 0;
				sd->ready = (sd->err == 0);
				events += sd->ready;
			}
		}
	}
	goos_nwatching = watching;
	return events;
}

static int goos_side_resolve(goos_side_t *sd, goos_job_t *job)
{
	struct sip_uri puri;
	char proto;
	unsigned short port;

	if(parse_uri(job->uri.s, job->uri.len, &puri) < 0)
		return -1;
	proto = (char)job->proto;
	port = puri.port_no;
	sd->by_name = (str2ip(&puri.host) == NULL && str2ip6(&puri.host) == NULL);
	if(sip_hostport2su(&sd->dst, &puri.host, port, &proto) < 0) {
		LM_WARN("target %.*s: cannot resolve its host for the transport "
				"check; only the probe timeout will detect it down\n",
				job->uri.len, job->uri.s);
		return -1;
	}
	if(su_getport(&sd->dst) == 0)
		su_setport(&sd->dst, job->proto == PROTO_TLS ? SIPS_PORT : SIP_PORT);
	return 1;
}

static int goos_side_socket(goos_side_t *sd, goos_job_t *job, int type)
{
	union sockaddr_union lsu;
	struct socket_info *si = job->si ? job->si : goos_send_si;
	int fd;

	fd = socket(sd->dst.s.sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if(fd < 0) {
		LM_ERR("transport check socket for %.*s: %s\n", job->uri.len,
				job->uri.s, strerror(errno));
		return -1;
	}
	if(si && si->address.af == sd->dst.s.sa_family) {
		init_su(&lsu, &si->address, 0);
		if(bind(fd, &lsu.s, sockaddru_len(lsu)) < 0) {
			LM_WARN("transport check for %.*s: cannot bind to %.*s: %s\n",
					job->uri.len, job->uri.s, si->address_str.len,
					si->address_str.s, strerror(errno));
		}
	}
	return fd;
}

/* phase 3 (no lock): start the transport check of a probe */
static void goos_side_start(goos_job_t *job)
{
	goos_side_t *sd = &goos_side[job->id];
	char buf[64];
	int i;

	if(!goos_transport_check || job->tc_off || sd->gen != job->gen)
		return;
	if(sd->resolved == 0 || sd->by_name) {
		/* a name may now resolve elsewhere (tm resolves it per probe too):
		 * look it up again (Kamailio's DNS cache) and reconnect if needed */
		union sockaddr_union old = sd->dst;
		int was = sd->resolved;
		sd->resolved = goos_side_resolve(sd, job);
		if(was > 0 && sd->udp_fd >= 0
				&& (sd->resolved < 0 || !su_cmp(&old, &sd->dst))) {
			close(sd->udp_fd);
			sd->udp_fd = -1;
		}
	}
	if(sd->resolved < 0)
		return;
	sd->seq = job->seq;
	sd->err = 0;
	sd->pidx = 0;
	sd->watching = 1;
	goos_nwatching++;
	if(job->proto == PROTO_UDP) {
		if(sd->udp_fd < 0) {
			sd->udp_fd = goos_side_socket(sd, job, SOCK_DGRAM);
			if(sd->udp_fd < 0)
				goto off;
			if(connect(sd->udp_fd, &sd->dst.s, sockaddru_len(sd->dst)) < 0) {
				LM_ERR("transport check for %.*s: connect: %s\n", job->uri.len,
						job->uri.s, strerror(errno));
				close(sd->udp_fd);
				sd->udp_fd = -1;
				goto off;
			}
		}
		/* forget data and errors caused by earlier datagrams (a recv
		 * returns a pending ICMP error once, and clears it) */
		for(i = 0; i < 8; i++) {
			if(recv(sd->udp_fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
				continue;
			if(errno != EINTR && !goos_is_transport_errno(errno))
				break; /* EAGAIN: clean */
		}
		if(send(sd->udp_fd, "\r\n\r\n", 4, MSG_DONTWAIT) < 0
				&& goos_is_transport_errno(errno))
			sd->err = errno;
		return;
	}
	/* TCP and TLS: a plain TCP connect to the same address */
	if(sd->conn_fd >= 0) {
		close(sd->conn_fd);
		sd->conn_fd = -1;
	}
	sd->conn_fd = goos_side_socket(sd, job, SOCK_STREAM);
	if(sd->conn_fd < 0)
		goto off;
	if(connect(sd->conn_fd, &sd->dst.s, sockaddru_len(sd->dst)) == 0) {
		close(sd->conn_fd);
		sd->conn_fd = -1;
		sd->watching = 0;
		return;
	}
	if(errno == EINPROGRESS || errno == EINTR)
		return;
	if(goos_is_transport_errno(errno))
		sd->err = errno;
	close(sd->conn_fd);
	sd->conn_fd = -1;
	return;
off:
	sd->watching = 0;
}

/* under the lock: a probe finished; fills rec and returns 1 when the
 * effective state changed (notify it after unlocking) */
static int goos_complete(goos_target_t *t, int id, goos_result_t res,
		goos_reason_t reason, int code, int rtt, const char *detail,
		int64_t now, goos_change_rec_t *rec)
{
	goos_params_t p;

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
	goos_params_now(&p);
	goos_health_apply(&t->health, res, p.fail_threshold, p.ok_threshold);
	if(t->sched.pending)
		goos_root->npending--;
	goos_sched_done(&t->sched, now, goos_params_period_ms(&p, t->health.state));
	t->done_result = res;
	t->done_reason = reason;
	t->done_seq = t->sched.seq;
	goos_notify_result_push(id,
			t->forced ? (goos_state_t)t->forced
					  : (goos_state_t)goos_result_state(res),
			reason == GOOS_R_REPLY ? code : 0, t->sched.sent_ms);
	if(goos_target_update(t, id, reason, code, rec)) {
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
	if(id < 0 || id >= goos_root->max_targets)
		return;
	local = (ps->rpl == NULL || ps->rpl == FAKED_REPLY);
	code = ps->code;
	if(!local)
		counter_inc(goos_cnt_replies);
	t = &goos_root->targets[id];
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
		/* a probe requested while this one was pending leaves now */
		if(t->sched.want)
			goos_kick();
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
			t->sched.want = 1;
			goos_kick();
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
}

static void goos_tm_send(goos_job_t *job)
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
	t = &goos_root->targets[job->id];
	lock_get(&goos_root->lock);
	if(t->refs > 0 && t->gen == job->gen && t->sched.pending
			&& t->sched.seq == job->seq && goos_nrecs < GOOS_BATCH
			&& goos_complete(t, job->id, GOOS_RES_DOWN, GOOS_R_TRANSPORT, 0, -1,
					"transport error: tm could not send the probe", now,
					&goos_recs[goos_nrecs]))
		goos_nrecs++;
	lock_release(&goos_root->lock);
}

static int goos_defer_ms(void)
{
	int ms = goos_cur.timeout_ms / 2;

	return ms > 500 ? 500 : ms;
}

static void goos_send(goos_job_t *job)
{
	goos_side_t *sd = &goos_side[job->id];

	goos_side_start(job);
	if(job->proto != PROTO_UDP && sd->gen == job->gen && sd->seq == job->seq
			&& sd->watching) {
		if(sd->err)
			return; /* refused at once: the next walk marks it DOWN */
		if(sd->conn_fd >= 0) {
			if(sd->djob == NULL) {
				sd->djob = (goos_job_t *)pkg_malloc(sizeof(goos_job_t));
				if(sd->djob == NULL) {
					PKG_MEM_ERROR;
					goos_tm_send(job);
					return;
				}
			}
			memcpy(sd->djob, job, sizeof(goos_job_t));
			sd->djob->uri.s = sd->djob->uri_buf;
			sd->djob->sock.s = sd->djob->sock_buf;
			sd->deferred = 1;
			sd->ready = 0;
			sd->defer_until = goos_now_ms() + goos_defer_ms();
			return;
		}
	}
	goos_tm_send(job);
}

static const char *goos_errno_detail(int proto, int err)
{
	if(err == ECONNREFUSED)
		return proto == PROTO_UDP ? "transport error: ICMP port unreachable"
								  : "transport error: connection refused";
	if(err == ECONNRESET)
		return "transport error: connection reset";
	if(err == EHOSTUNREACH || err == EHOSTDOWN)
		return "transport error: host unreachable";
	if(err == ENETUNREACH || err == ENETDOWN)
		return "transport error: network unreachable";
	return "transport error: connect timed out";
}

/* the earliest time the next probe of a target with a pending probe can be
 * due, whatever the reply brings (see goos_sched_done) */
static int64_t goos_due_after(goos_sched_t *s)
{
	int64_t minp, t;

	if(s->want)
		return s->deadline_ms; /* requested: right after the pending one */
	if(goos_cur.check_s == 0)
		return GOOS_NEVER;
	minp = goos_cur.force_s < goos_cur.check_s ? goos_cur.force_s
											   : goos_cur.check_s;
	minp *= 1000;
	if(s->periodic)
		return s->next_due_ms + minp;
	t = s->sent_ms + minp;
	return s->next_due_ms < t ? s->next_due_ms : t;
}

/* the next planned event: deadlines only matter while probes are in
 * flight; when the replies came (in the SIP workers), the next probe due.
 * A probe still pending has its deadline in goos_next_event, and its next
 * periodic time is after that deadline. */
static int64_t goos_planned(void)
{
	return __atomic_load_n(&goos_root->npending, __ATOMIC_ACQUIRE) > 0
				   ? goos_next_event
				   : goos_next_due;
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

/* one pass: side checks, then (when something is due) the table walk */
static void goos_probe_pass(void)
{
	goos_target_t *t;
	goos_side_t *sd;
	goos_job_t *job;
	int64_t now, ev;
	int i, span, hiwater, side_events = 0, replan;
	char detail[96];

	now = goos_now_ms();
	goos_params_refresh();
	replan = goos_replan;
	hiwater = __atomic_load_n(&goos_root->hiwater, __ATOMIC_ACQUIRE);
	if(goos_nwatching > 0)
		side_events = goos_side_poll(now, hiwater);
	/* the same planned time poll() slept until (goos_poll_setup()): with
	 * goos_next_event alone, a probe that a reply completed in a worker
	 * left its deadline there, poll() woke for the next due time before
	 * it, and the process spun until the stale deadline */
	if(side_events == 0 && !replan && now < goos_planned()
			&& !__atomic_load_n(&goos_root->kick, __ATOMIC_ACQUIRE))
		return;
	goos_njobs = goos_nrecs = 0;
	goos_next_event = GOOS_NEVER;
	goos_next_due = GOOS_NEVER;

	lock_get(&goos_root->lock);
	__atomic_store_n(&goos_root->kick, 0, __ATOMIC_RELEASE);
	hiwater = goos_root->hiwater;
	for(i = 0; i < hiwater; i++) {
		if(goos_njobs >= GOOS_BATCH || goos_nrecs >= GOOS_BATCH - 2) {
			goos_next_event = now; /* the rest on the next pass */
			break;
		}
		t = &goos_root->targets[i];
		sd = &goos_side[i];
		if(t->refs <= 0) {
			if(sd->udp_fd >= 0 || sd->conn_fd >= 0 || sd->watching)
				goos_side_reset(sd, 0);
			continue;
		}
		if(sd->gen != t->gen)
			goos_side_reset(sd, t->gen);
		if(!t->started) {
			/* first probes spread over one second (or the period) */
			span = goos_params_period_ms(&goos_cur, GOOS_H_UNKNOWN);
			if(span > 1000)
				span = 1000;
			goos_sched_start(&t->sched, now, i, span, goos_cur.probe_slots);
			if(goos_cur.check_s == 0)
				t->sched.next_due_ms = GOOS_NEVER;
			t->started = 1;
		} else if(replan) {
			/* a new period counts from the last probe, at once */
			span = goos_params_period_ms(&goos_cur, t->health.state);
			goos_sched_replan(&t->sched, now, span,
					goos_sched_phase_ms(i, span > 1000 ? 1000 : span,
							goos_cur.probe_slots));
		}
		if(t->sched.pending && sd->watching && sd->err
				&& sd->seq == t->sched.seq
				&& goos_complete(t, i, GOOS_RES_DOWN, GOOS_R_TRANSPORT, 0, -1,
						goos_errno_detail(t->proto, sd->err), now,
						&goos_recs[goos_nrecs]))
			goos_nrecs++;
		if(goos_sched_expired(&t->sched, now)) {
			snprintf(detail, sizeof(detail), "timeout: no reply within %d ms",
					goos_cur.timeout_ms);
			if(goos_complete(t, i, GOOS_RES_DOWN, GOOS_R_TIMEOUT, 0, -1, detail,
					   now, &goos_recs[goos_nrecs]))
				goos_nrecs++;
		}
		if(t->remote && !t->sched.want && goos_sched_due(&t->sched, now)) {
			/* probed by another proxy (distributed probing): skip this
			 * period, a requested probe still goes out */
			span = goos_params_period_ms(&goos_cur, t->health.state);
			t->sched.next_due_ms = span > 0 ? now + span : GOOS_NEVER;
		} else if(goos_sched_due(&t->sched, now)) {
			job = &goos_jobs[goos_njobs++];
			job->id = i;
			job->seq = goos_sched_sent(&t->sched, now, goos_cur.timeout_ms);
			goos_root->npending++;
			job->gen = t->gen;
			job->proto = t->proto;
			job->tc_off = t->tc_off;
			job->si = t->si;
			memcpy(job->uri_buf, t->uri.s, t->uri.len);
			job->uri.s = job->uri_buf;
			job->uri.len = t->uri.len;
			memcpy(job->sock_buf, t->sock.s, t->sock.len);
			job->sock.s = job->sock_buf;
			job->sock.len = t->sock.len;
			t->probes++;
		}
		ev = t->sched.pending ? t->sched.deadline_ms : t->sched.next_due_ms;
		/* a probe requested while one is pending leaves when that one is
		 * over (its deadline here, or a reply: the worker kicks us); "now"
		 * would make poll() return at once until the deadline (a spin) */
		if(t->sched.want && !t->sched.pending)
			ev = now;
		if(ev < goos_next_event)
			goos_next_event = ev;
		if(t->sched.pending)
			ev = goos_due_after(&t->sched);
		if(ev < goos_next_due)
			goos_next_due = ev;
	}
	if(i == hiwater)
		goos_replan = 0;
	lock_release(&goos_root->lock);

	for(i = 0; i < hiwater && goos_nwatching > 0; i++) {
		sd = &goos_side[i];
		if(sd->ready) {
			sd->ready = 0;
			t = &goos_root->targets[i];
			/* unless the probe finished meanwhile (its deadline) */
			if(t->sched.pending && t->sched.seq == sd->seq)
				goos_tm_send(sd->djob);
		}
	}
	for(i = 0; i < goos_njobs; i++)
		goos_send(&goos_jobs[i]);
	for(i = 0; i < goos_nrecs; i++)
		goos_notify(&goos_recs[i]);
	goos_notify_results();
}

/* how long poll() may sleep, and which fds it watches */
static int goos_poll_setup(int *nfds)
{
	goos_side_t *sd;
	int64_t now, wake;
	int i, n = 1, hiwater;

	goos_pfds[0].fd = goos_root->wake_rd;
	goos_pfds[0].events = POLLIN;
	now = goos_now_ms();
	wake = goos_planned();
	hiwater = __atomic_load_n(&goos_root->hiwater, __ATOMIC_ACQUIRE);
	for(i = 0; i < hiwater && goos_nwatching > 0; i++) {
		sd = &goos_side[i];
		if(!sd->watching || sd->err)
			continue;
		if(sd->deferred && sd->defer_until < wake)
			wake = sd->defer_until;
		sd->pidx = 0;
		if(sd->conn_fd >= 0) {
			sd->pidx = n;
			goos_pfds[n].fd = sd->conn_fd;
			goos_pfds[n].revents = 0;
			goos_pfds[n++].events = POLLOUT;
		} else if(sd->udp_fd >= 0) {
			/* an ICMP error shows as POLLERR */
			sd->pidx = n;
			goos_pfds[n].fd = sd->udp_fd;
			goos_pfds[n].revents = 0;
			goos_pfds[n++].events = POLLIN;
		}
	}
	*nfds = n;
	if(wake - now > GOOS_MAX_SLEEP_MS)
		return GOOS_MAX_SLEEP_MS;
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
	for(;;) {
		timeout = goos_poll_setup(&nfds);
		if(poll(goos_pfds, nfds, timeout) < 0 && errno != EINTR)
			LM_ERR("poll: %s\n", strerror(errno));
		if(goos_pfds[0].revents & POLLIN) {
			while(read(goos_root->wake_rd, buf, sizeof(buf)) > 0)
				;
		}
		cfg_update();
		goos_probe_pass();
	}
}
