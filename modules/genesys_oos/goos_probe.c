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
 * One dedicated timer process wakes every GOOS_TICK_MS and, for every
 * target, under the table lock: takes the reply a tm callback handed over,
 * takes a transport error seen by its own transport check, expires the
 * pending probe at its deadline, and decides whether a new probe is due.
 * After unlocking it sends the due probes through tm (t_request) and runs
 * the notifications of the state changes.
 *
 * The tm callback runs in whatever process received the reply (or in tm's
 * timer for a local 408): it only stores code, "local" flag and arrival
 * time in the target under the lock; the timer process decides.  The
 * callback parameter carries the target id and the probe's sequence
 * number, so a reply can only ever complete the probe that caused it.
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
 * If a target answers the very probe its check declared failed (a firewall
 * rejecting the check's source port), the check is turned off for it.
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
#include "modules/tm/tm_load.h"

#include "goos_probe.h"
#include "goos_notify.h"

str goos_probe_from = STR_NULL;
str goos_send_socket = STR_NULL;
struct socket_info *goos_send_si = NULL;
int goos_transport_check = 1;

static struct tm_binds goos_tmb;
static str goos_options = str_init("OPTIONS");
static str goos_probe_hdrs = str_init("Max-Forwards: 70\r\n");

#define GOOS_BATCH 64

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
	uint32_t gen;  /*!< slot generation this state belongs to */
	int resolved;  /*!< 1: dst valid, -1: cannot resolve, 0: not yet */
	int by_name;   /*!< the host is a name: resolve again for every probe */
	union sockaddr_union dst;
	int udp_fd;	   /*!< connected UDP socket or -1 */
	int conn_fd;   /*!< TCP connect in progress or -1 */
	int watching;  /*!< a check runs for probe `seq` */
	uint32_t seq;
	int err;	   /*!< errno seen for probe `seq`, 0: none */
	/* TCP/TLS: the tm probe waits for the check's connect to succeed, so
	 * a refused target costs no tm send (and no core ERROR log lines) */
	int deferred;		/*!< djob waits for the connect */
	int ready;			/*!< connect succeeded: send djob now */
	int64_t defer_until; /*!< send djob anyway at this time */
	goos_job_t djob;
} goos_side_t;


static goos_side_t *goos_side = NULL;
static goos_job_t goos_jobs[GOOS_BATCH];
static goos_change_rec_t goos_recs[GOOS_BATCH];
static int goos_njobs, goos_nrecs;

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
	if(goos_side == NULL) {
		PKG_MEM_ERROR;
		return -1;
	}
	memset(goos_side, 0, sizeof(goos_side_t) * goos_root->max_targets);
	for(i = 0; i < goos_root->max_targets; i++) {
		goos_side[i].udp_fd = -1;
		goos_side[i].conn_fd = -1;
	}
	return 0;
}

static void goos_side_reset(goos_side_t *sd, uint32_t gen)
{
	if(sd->udp_fd >= 0)
		close(sd->udp_fd);
	if(sd->conn_fd >= 0)
		close(sd->conn_fd);
	memset(sd, 0, sizeof(*sd));
	sd->udp_fd = -1;
	sd->conn_fd = -1;
	sd->gen = gen;
}

static int goos_is_transport_errno(int e)
{
	return e == ECONNREFUSED || e == ECONNRESET || e == EHOSTUNREACH
		   || e == ENETUNREACH || e == EHOSTDOWN || e == ENETDOWN
		   || e == ETIMEDOUT;
}

/* phase 1 (no lock): collect errors of the running transport checks */
static void goos_side_poll(int64_t now)
{
	goos_side_t *sd;
	struct pollfd pfd;
	char buf[64];
	socklen_t len;
	int i, n, err;

	for(i = 0; i < goos_root->max_targets; i++) {
		sd = &goos_side[i];
		if(sd->deferred && now >= sd->defer_until) {
			/* no answer to the connect yet: let tm try on its own */
			sd->deferred = 0;
			sd->ready = 1;
		}
		if(!sd->watching || sd->err)
			continue;
		if(sd->udp_fd >= 0) {
			for(;;) {
				n = recv(sd->udp_fd, buf, sizeof(buf), MSG_DONTWAIT);
				if(n >= 0)
					continue; /* the target answered the keep-alive */
				if(errno == EINTR)
					continue;
				if(goos_is_transport_errno(errno))
					sd->err = errno;
				break;
			}
		}
		if(sd->conn_fd >= 0) {
			pfd.fd = sd->conn_fd;
			pfd.events = POLLOUT;
			pfd.revents = 0;
			if(poll(&pfd, 1, 0) <= 0)
				continue;
			err = 0;
			len = sizeof(err);
			if(getsockopt(sd->conn_fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
				err = errno;
			if(err && goos_is_transport_errno(err))
				sd->err = err;
			close(sd->conn_fd);
			sd->conn_fd = -1;
			if(sd->deferred) {
				sd->deferred = 0;
				sd->ready = (sd->err == 0);
			}
		}
	}
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
	socklen_t len;
	int err;

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
	sd->watching = 1;
	if(job->proto == PROTO_UDP) {
		if(sd->udp_fd < 0) {
			sd->udp_fd = goos_side_socket(sd, job, SOCK_DGRAM);
			if(sd->udp_fd < 0)
				goto off;
			if(connect(sd->udp_fd, &sd->dst.s, sockaddru_len(sd->dst)) < 0) {
				LM_ERR("transport check for %.*s: connect: %s\n",
						job->uri.len, job->uri.s, strerror(errno));
				close(sd->udp_fd);
				sd->udp_fd = -1;
				goto off;
			}
		}
		/* forget errors caused by earlier datagrams */
		len = sizeof(err);
		getsockopt(sd->udp_fd, SOL_SOCKET, SO_ERROR, &err, &len);
		while(recv(sd->udp_fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
			;
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

/* under the lock: a probe finished */
static void goos_complete(goos_target_t *t, int id, goos_result_t res,
		goos_reason_t reason, int code, int rtt, const char *detail,
		int64_t now)
{
	goos_change_rec_t *rec;

	if(goos_side[id].seq == t->sched.seq) {
		goos_side[id].watching = 0;
		goos_side[id].deferred = 0;
		goos_side[id].ready = 0;
		if(goos_side[id].conn_fd >= 0) {
			close(goos_side[id].conn_fd);
			goos_side[id].conn_fd = -1;
		}
	}
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
	if(reason == GOOS_R_REPLY || code > 0) {
		t->last_code = code;
		t->last_rtt_ms = rtt;
	}
	goos_health_apply(&t->health, res, goos_params.fail_threshold,
			goos_params.ok_threshold);
	goos_sched_done(&t->sched, now,
			goos_params_period_ms(&goos_params, t->health.state));
	t->done_result = res;
	t->done_reason = reason;
	t->done_seq = t->sched.seq;
	rec = &goos_recs[goos_nrecs];
	if(goos_target_update(t, id, reason, code, rec)) {
		snprintf(rec->detail, sizeof(rec->detail), "%s", detail);
		goos_nrecs++;
	}
}

static void goos_take_reply(goos_target_t *t, int id, int64_t now)
{
	goos_rpl_class_t cls;
	goos_result_t res;
	goos_reason_t reason;
	int rtt;
	char detail[96];

	t->rpl_ready = 0;
	cls = goos_sched_classify(&t->sched, t->rpl_seq, t->rpl_ms);
	rtt = (int)(t->rpl_ms - t->sched.sent_ms);
	if(cls == GOOS_RPL_ON_TIME) {
		if(t->rpl_local) {
			res = GOOS_RES_DOWN;
			reason = (t->rpl_code == 408) ? GOOS_R_TIMEOUT : GOOS_R_TRANSPORT;
			snprintf(detail, sizeof(detail), "%s: local %d from tm",
					reason == GOOS_R_TIMEOUT ? "timeout" : "transport error",
					t->rpl_code);
			goos_complete(t, id, res, reason, 0, -1, detail, now);
		} else {
			res = goos_classify(t->rpl_code, 0);
			snprintf(detail, sizeof(detail), "reply %d in %d ms",
					t->rpl_code, rtt);
			goos_complete(t, id, res, GOOS_R_REPLY, t->rpl_code, rtt, detail,
					now);
		}
		return;
	}
	if(cls == GOOS_RPL_LATE && !t->rpl_local && t->done_seq == t->rpl_seq
			&& t->done_reason == GOOS_R_TRANSPORT && !t->tc_off) {
		/* the target answered the very probe the transport check declared
		 * failed: something (a firewall rejecting the check's source port
		 * with ICMP) makes the check lie; stop using it for this target */
		t->tc_off = 1;
		LM_WARN("target %.*s answered probe %u (%d) after its transport "
				"check reported an error: the check is disabled for this "
				"target (a firewall may reject packets from other ports "
				"than the SIP socket); only replies and oos_timeout count "
				"now\n",
				t->uri.len, t->uri.s, t->rpl_seq, t->rpl_code);
	}
	if(cls == GOOS_RPL_LATE && !t->rpl_local) {
		/* the deadline decided (or will decide on this tick): record the
		 * answer and probe again at once, that probe's result counts */
		t->late_replies++;
		t->last_code = t->rpl_code;
		t->last_rtt_ms = rtt;
		t->sched.want = 1;
		counter_inc(goos_cnt_late);
	}
}

static void goos_tm_cb(struct cell *trans, int type, struct tmcb_params *ps)
{
	goos_target_t *t;
	uint32_t seq;
	int id, local;
	int64_t now = goos_now_ms();

	(void)trans;
	(void)type;
	if(ps == NULL || ps->param == NULL || goos_root == NULL)
		return;
	goos_cbp_decode(*ps->param, &id, &seq);
	if(id < 0 || id >= goos_root->max_targets)
		return;
	local = (ps->rpl == NULL || ps->rpl == FAKED_REPLY);
	if(!local)
		counter_inc(goos_cnt_replies);
	t = &goos_root->targets[id];
	lock_get(&goos_root->lock);
	if(t->refs > 0 && seq == t->sched.seq) {
		t->rpl_ready = 1;
		t->rpl_seq = seq;
		t->rpl_code = ps->code;
		t->rpl_local = local;
		t->rpl_ms = now;
	} else if(t->refs > 0 && !local) {
		/* answer to an older probe */
		t->late_replies++;
		counter_inc(goos_cnt_late);
	}
	lock_release(&goos_root->lock);
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
			&& t->sched.seq == job->seq && goos_nrecs < GOOS_BATCH)
		goos_complete(t, job->id, GOOS_RES_DOWN, GOOS_R_TRANSPORT, 0, -1,
				"transport error: tm could not send the probe", now);
	lock_release(&goos_root->lock);
}

static int goos_defer_ms(void)
{
	int ms = goos_params.timeout_ms / 2;

	return ms > 500 ? 500 : ms;
}

static void goos_send(goos_job_t *job)
{
	goos_side_t *sd = &goos_side[job->id];

	goos_side_start(job);
	if(job->proto != PROTO_UDP && sd->gen == job->gen && sd->seq == job->seq
			&& sd->watching) {
		if(sd->err)
			return; /* refused at once: the next tick marks it DOWN */
		if(sd->conn_fd >= 0) {
			memcpy(&sd->djob, job, sizeof(goos_job_t));
			sd->djob.uri.s = sd->djob.uri_buf;
			sd->djob.sock.s = sd->djob.sock_buf;
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

void goos_probe_timer(unsigned int ticks, void *param)
{
	goos_target_t *t;
	goos_side_t *sd;
	goos_job_t *job;
	int64_t now;
	int i, span;
	char detail[96];

	(void)ticks;
	(void)param;
	if(goos_root == NULL)
		return;
	if(goos_side == NULL && goos_side_init() < 0)
		return;
	now = goos_now_ms();
	goos_side_poll(now);
	goos_njobs = goos_nrecs = 0;

	lock_get(&goos_root->lock);
	for(i = 0; i < goos_root->max_targets; i++) {
		if(goos_njobs >= GOOS_BATCH || goos_nrecs >= GOOS_BATCH - 2)
			break; /* the rest on the next tick */
		t = &goos_root->targets[i];
		sd = &goos_side[i];
		if(t->refs <= 0) {
			if(sd->udp_fd >= 0 || sd->conn_fd >= 0)
				goos_side_reset(sd, 0);
			continue;
		}
		if(sd->gen != t->gen)
			goos_side_reset(sd, t->gen);
		if(!t->started) {
			/* first probes spread over one second (or the period) */
			span = goos_params_period_ms(&goos_params, GOOS_H_UNKNOWN);
			if(span > 1000)
				span = 1000;
			goos_sched_start(&t->sched, now, i, span);
			if(goos_params.check_s == 0)
				t->sched.next_due_ms = GOOS_NEVER;
			t->started = 1;
		}
		if(t->rpl_ready)
			goos_take_reply(t, i, now);
		if(t->sched.pending && sd->watching && sd->err
				&& sd->seq == t->sched.seq) {
			goos_complete(t, i, GOOS_RES_DOWN, GOOS_R_TRANSPORT, 0, -1,
					goos_errno_detail(t->proto, sd->err), now);
		}
		if(goos_sched_expired(&t->sched, now)) {
			snprintf(detail, sizeof(detail), "timeout: no reply within %d ms",
					goos_params.timeout_ms);
			goos_complete(t, i, GOOS_RES_DOWN, GOOS_R_TIMEOUT, 0, -1, detail,
					now);
		}
		if(goos_sched_due(&t->sched, now)) {
			job = &goos_jobs[goos_njobs++];
			job->id = i;
			job->seq = goos_sched_sent(&t->sched, now, goos_params.timeout_ms);
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
	}
	lock_release(&goos_root->lock);

	for(i = 0; i < goos_root->max_targets; i++) {
		sd = &goos_side[i];
		if(sd->ready) {
			sd->ready = 0;
			goos_tm_send(&sd->djob);
		}
	}
	for(i = 0; i < goos_njobs; i++)
		goos_send(&goos_jobs[i]);
	for(i = 0; i < goos_nrecs; i++)
		goos_notify(&goos_recs[i]);
}
