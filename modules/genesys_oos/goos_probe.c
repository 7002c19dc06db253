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
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/errqueue.h>

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

/* targets a pass takes at most; the rest is taken by the next pass, at
 * once (the heap keeps them in time order, so none is starved) */
#define GOOS_BATCH 256
/* completions a pass records at most: one per target taken, plus failed
 * tm sends of its jobs */
#define GOOS_NRECS (2 * GOOS_BATCH + 4)
/* the longest sleep: cfg changes are picked up at least this often */
#define GOOS_MAX_SLEEP_MS 1000
/* buckets of the address hash of the UDP checks (power of 2) */
#define GOOS_DHASH 16384
/* shared UDP check sockets: one per source address and family */
#define GOOS_MAX_USOCK 16

typedef struct goos_job
{
	int id;
	uint32_t seq;
	uint32_t gen;
	int proto;
	int tc_off;
	int direct; /*!< its check already ran (deferred TCP probe): tm only */
	struct socket_info *si;
	char uri_buf[GOOS_URI_MAX];
	str uri;
	char sock_buf[GOOS_SOCK_MAX];
	str sock;
} goos_job_t;

typedef struct goos_usock
{
	struct socket_info *si; /*!< bound to its address, NULL: unbound */
	int af;
	int fd;
} goos_usock_t;

/* timer process only */
static goos_job_t goos_jobs[GOOS_BATCH];
static goos_change_rec_t goos_recs[GOOS_NRECS];
static int goos_njobs, goos_nrecs, goos_ncompl;
static goos_usock_t goos_usocks[GOOS_MAX_USOCK];
static int goos_nusocks = 0;
static int *goos_dhash = NULL; /* first id per address bucket, -1 */
/* ids: TCP connects in progress; targets with a side event to handle */
static int *goos_conns = NULL, goos_nconns = 0, goos_conns_cap = 0;
static int *goos_sev = NULL, goos_nsev = 0, goos_sev_cap = 0;
static struct pollfd *goos_pfds = NULL;
static int goos_pfds_cap = 0;
static int goos_more = 0; /* the last pass stopped at its batch limit */
static time_t goos_fd_warned = 0;
static unsigned long goos_fd_skipped = 0;
/* the parameters of the current pass (oos_check and oos_force may change
 * at run time, goos_cfg.h), and those the targets were planned with */
static goos_params_t goos_cur, goos_planned_with;
static int goos_planned_valid = 0;
static int goos_replan = 0;

int goos_probe_init(void)
{
	if(load_tm_api(&goos_tmb) < 0) {
		LM_ERR("cannot load the tm API: genesys_oos needs the tm module "
			   "(loadmodule \"tm.so\" before genesys_oos)\n");
		return -1;
	}
	return 0;
}

/* grow a pkg array of ints to hold n */
static int goos_ints_reserve(int **a, int *cap, int n)
{
	int *na, ncap;

	if(n <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	while(ncap < n)
		ncap *= 2;
	na = (int *)pkg_realloc(*a, sizeof(int) * ncap);
	if(na == NULL) {
		PKG_MEM_ERROR;
		return -1;
	}
	*a = na;
	*cap = ncap;
	return 0;
}

static int goos_side_init(void)
{
	int i;

	goos_dhash = (int *)pkg_malloc(sizeof(int) * GOOS_DHASH);
	if(goos_dhash == NULL) {
		PKG_MEM_ERROR;
		return -1;
	}
	for(i = 0; i < GOOS_DHASH; i++)
		goos_dhash[i] = -1;
	/* each completion of a pass is one result */
	if(goos_notify_results_reserve(GOOS_NRECS + 1) < 0)
		return -1;
	return 0;
}

static unsigned int goos_su_hash(union sockaddr_union *su)
{
	uint32_t h = su_getport(su);
	const unsigned char *a;
	int i, n;

	if(su->s.sa_family == AF_INET6) {
		a = (const unsigned char *)&su->sin6.sin6_addr;
		n = 16;
	} else {
		a = (const unsigned char *)&su->sin.sin_addr;
		n = 4;
	}
	for(i = 0; i < n; i++)
		h = h * 31 + a[i];
	h ^= h >> 13;
	return (h * 2654435761u) & (GOOS_DHASH - 1);
}

static void goos_dhash_del(goos_side_t *sd, int id)
{
	int *pp;

	if(!sd->hashed)
		return;
	for(pp = &goos_dhash[goos_su_hash(&sd->dst)]; *pp >= 0;
			pp = &goos_tgt(*pp)->side.dnext) {
		if(*pp == id) {
			*pp = sd->dnext;
			break;
		}
	}
	sd->hashed = 0;
	sd->dnext = -1;
}

static void goos_dhash_add(goos_side_t *sd, int id)
{
	unsigned int b = goos_su_hash(&sd->dst);

	sd->dnext = goos_dhash[b];
	goos_dhash[b] = id;
	sd->hashed = 1;
}

static void goos_conn_del(goos_side_t *sd)
{
	int last;

	if(sd->cidx >= 0) {
		last = goos_conns[--goos_nconns];
		goos_conns[sd->cidx] = last;
		goos_tgt(last)->side.cidx = sd->cidx;
		sd->cidx = -1;
	}
	if(sd->conn_fd >= 0) {
		close(sd->conn_fd);
		sd->conn_fd = -1;
	}
}

static int goos_conn_add(goos_side_t *sd, int id)
{
	if(goos_ints_reserve(&goos_conns, &goos_conns_cap, goos_nconns + 1) < 0)
		return -1;
	sd->cidx = goos_nconns;
	goos_conns[goos_nconns++] = id;
	return 0;
}

/* a side event (an error, a deferred probe ready) for the next pass */
static void goos_sev_push(goos_side_t *sd, int id)
{
	if(sd->queued)
		return;
	if(goos_ints_reserve(&goos_sev, &goos_sev_cap, goos_nsev + 1) < 0)
		return; /* the probe then ends at its deadline */
	sd->queued = 1;
	goos_sev[goos_nsev++] = id;
}

static void goos_side_reset(goos_side_t *sd, int id, uint32_t gen)
{
	goos_dhash_del(sd, id);
	goos_conn_del(sd);
	memset(sd, 0, sizeof(*sd));
	sd->conn_fd = -1;
	sd->cidx = -1;
	sd->usock = -1;
	sd->dnext = -1;
	sd->gen = gen;
}

/* the check of a probe is over */
static void goos_side_stop(goos_side_t *sd)
{
	sd->watching = 0;
	sd->deferred = 0;
	sd->ready = 0;
	goos_conn_del(sd);
}

static int goos_is_transport_errno(int e)
{
	return e == ECONNREFUSED || e == ECONNRESET || e == EHOSTUNREACH
		   || e == ENETUNREACH || e == EHOSTDOWN || e == ENETDOWN
		   || e == ETIMEDOUT;
}

/* an ICMP error about a datagram sent to `dst`: the targets checked at
 * that address (several URIs may name one address) */
static void goos_udp_error(union sockaddr_union *dst, int err)
{
	goos_side_t *sd;
	int id;

	for(id = goos_dhash[goos_su_hash(dst)]; id >= 0; id = sd->dnext) {
		sd = &goos_tgt(id)->side;
		if(sd->watching && !sd->err && sd->usock >= 0
				&& su_cmp(&sd->dst, dst)) {
			sd->err = err;
			goos_sev_push(sd, id);
		}
	}
}

/* the answers and errors a shared UDP check socket has queued */
static void goos_usock_drain(goos_usock_t *u)
{
	char data[64], ctl[512];
	union sockaddr_union dst;
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *c;
	struct sock_extended_err *ee;
	int n;

	/* targets answering the keep-alive; a recv also reports (once) the
	 * error the error queue holds in detail */
	for(n = 0; n < 4096; n++) {
		if(recv(u->fd, data, sizeof(data), MSG_DONTWAIT) >= 0)
			continue;
		if(errno == EINTR || goos_is_transport_errno(errno))
			continue;
		break;
	}
	for(n = 0; n < 4096; n++) {
		memset(&mh, 0, sizeof(mh));
		memset(&dst, 0, sizeof(dst));
		iov.iov_base = data;
		iov.iov_len = sizeof(data);
		mh.msg_name = &dst;
		mh.msg_namelen = sizeof(dst);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = ctl;
		mh.msg_controllen = sizeof(ctl);
		if(recvmsg(u->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
			if(errno == EINTR)
				continue;
			break;
		}
		for(c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if(!((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR)
					   || (c->cmsg_level == SOL_IPV6
							   && c->cmsg_type == IPV6_RECVERR)))
				continue;
			ee = (struct sock_extended_err *)CMSG_DATA(c);
			if(goos_is_transport_errno((int)ee->ee_errno))
				goos_udp_error(&dst, (int)ee->ee_errno);
		}
	}
}

/* phase 1 (no lock): collect what the checks reported in the last poll() */
static void goos_side_collect(int64_t now, int npoll)
{
	goos_side_t *sd;
	goos_target_t *t;
	socklen_t len;
	int i, id, err, k;

	for(i = 0; i < goos_nusocks && 1 + i < npoll; i++) {
		if(goos_pfds[1 + i].revents)
			goos_usock_drain(&goos_usocks[i]);
	}
	/* the connects were polled as goos_pfds[1 + nusocks + k] in the order
	 * of goos_conns then; new ones were added at the end and are looked
	 * at next time */
	k = npoll - 1 - goos_nusocks;
	for(i = (k < goos_nconns ? k : goos_nconns) - 1; i >= 0; i--) {
		id = goos_conns[i];
		t = goos_tgt(id);
		sd = &t->side;
		/* finished probe (a reply completed it in another process, or the
		 * slot was released): read without the lock, a stale view only
		 * delays */
		if(sd->gen != t->gen || !t->sched.pending || t->sched.seq != sd->seq) {
			goos_side_stop(sd);
			continue;
		}
		if(goos_pfds[1 + goos_nusocks + i].revents == 0)
			continue;
		err = 0;
		len = sizeof(err);
		if(getsockopt(sd->conn_fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if(err && goos_is_transport_errno(err))
			sd->err = err;
		goos_conn_del(sd);
		if(sd->deferred) {
			sd->deferred = 0;
			sd->ready = (sd->err == 0);
		}
		if(sd->err || sd->ready)
			goos_sev_push(sd, id);
	}
	for(i = 0; i < goos_nconns; i++) {
		sd = &goos_tgt(goos_conns[i])->side;
		if(sd->deferred && now >= sd->defer_until) {
			/* no answer to the connect yet: let tm try on its own (the
			 * connect keeps running: a refusal still counts) */
			sd->deferred = 0;
			sd->ready = 1;
			goos_sev_push(sd, goos_conns[i]);
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

/* out of descriptors: the check is skipped for this probe, said once a
 * minute */
static void goos_fd_shortage(goos_job_t *job, int err)
{
	struct rlimit rl;
	time_t now = time(NULL);

	goos_fd_skipped++;
	if(now - goos_fd_warned < 60)
		return;
	goos_fd_warned = now;
	if(getrlimit(RLIMIT_NOFILE, &rl) < 0)
		rl.rlim_cur = 0;
	LM_WARN("transport check of %.*s skipped (%lu checks in all): no file "
			"descriptor free (%s, RLIMIT_NOFILE %lu): each TCP/TLS check "
			"holds one during its connect; raise the limit (LimitNOFILE= "
			"in the systemd unit, or open_files_limit) or set "
			"transport_check 0; the probes still go out\n",
			job->uri.len, job->uri.s, goos_fd_skipped, strerror(err),
			(unsigned long)rl.rlim_cur);
}

static int goos_side_socket(goos_side_t *sd, goos_job_t *job, int type)
{
	union sockaddr_union lsu;
	struct socket_info *si = job->si ? job->si : goos_send_si;
	int fd;

	fd = socket(sd->dst.s.sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if(fd < 0) {
		if(errno == EMFILE || errno == ENFILE)
			goos_fd_shortage(job, errno);
		else
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

/* the shared UDP check socket for the job's source address and family */
static int goos_usock_get(goos_side_t *sd, goos_job_t *job)
{
	struct socket_info *si = job->si ? job->si : goos_send_si;
	int af = sd->dst.s.sa_family, i, on = 1, fd;

	if(si && (int)si->address.af != af)
		si = NULL;
	for(i = 0; i < goos_nusocks; i++) {
		if(goos_usocks[i].si == si && goos_usocks[i].af == af)
			return i;
	}
	if(goos_nusocks == GOOS_MAX_USOCK) {
		/* more source addresses than that: the unbound socket */
		for(i = 0; i < goos_nusocks; i++)
			if(goos_usocks[i].si == NULL && goos_usocks[i].af == af)
				return i;
		return -1;
	}
	fd = goos_side_socket(sd, job, SOCK_DGRAM);
	if(fd < 0)
		return -1;
	if((af == AF_INET6 ? setsockopt(fd, SOL_IPV6, IPV6_RECVERR, &on, sizeof(on))
					   : setsockopt(fd, SOL_IP, IP_RECVERR, &on, sizeof(on)))
			< 0) {
		LM_ERR("transport check: IP_RECVERR: %s\n", strerror(errno));
		close(fd);
		return -1;
	}
	goos_usocks[goos_nusocks].si = si;
	goos_usocks[goos_nusocks].af = af;
	goos_usocks[goos_nusocks].fd = fd;
	return goos_nusocks++;
}

/* phase 3 (no lock): start the transport check of a probe */
static void goos_side_start(goos_job_t *job)
{
	goos_side_t *sd = &goos_tgt(job->id)->side;
	int fd;

	if(!goos_transport_check || job->tc_off || sd->gen != job->gen)
		return;
	if(sd->resolved == 0 || sd->by_name) {
		/* a name may now resolve elsewhere (tm resolves it per probe too):
		 * look it up again (Kamailio's DNS cache) */
		goos_dhash_del(sd, job->id);
		sd->resolved = goos_side_resolve(sd, job);
		if(sd->resolved > 0)
			goos_dhash_add(sd, job->id);
	}
	if(sd->resolved < 0)
		return;
	goos_conn_del(sd);
	sd->seq = job->seq;
	sd->err = 0;
	sd->deferred = 0;
	sd->ready = 0;
	sd->watching = 1;
	if(job->proto == PROTO_UDP) {
		if(sd->usock < 0 || sd->usock >= goos_nusocks)
			sd->usock = goos_usock_get(sd, job);
		if(sd->usock < 0)
			goto off;
		if(sendto(goos_usocks[sd->usock].fd, "\r\n\r\n", 4, MSG_DONTWAIT,
				   &sd->dst.s, sockaddru_len(sd->dst))
						< 0
				&& goos_is_transport_errno(errno)) {
			sd->err = errno;
			goos_sev_push(sd, job->id);
		}
		return;
	}
	/* TCP and TLS: a plain TCP connect to the same address */
	fd = goos_side_socket(sd, job, SOCK_STREAM);
	if(fd < 0)
		goto off;
	if(connect(fd, &sd->dst.s, sockaddru_len(sd->dst)) == 0) {
		close(fd);
		sd->watching = 0;
		return;
	}
	if(errno == EINPROGRESS || errno == EINTR) {
		sd->conn_fd = fd;
		if(goos_conn_add(sd, job->id) < 0) {
			close(fd);
			sd->conn_fd = -1;
			goto off;
		}
		return;
	}
	if(goos_is_transport_errno(errno)) {
		sd->err = errno;
		goos_sev_push(sd, job->id);
	}
	close(fd);
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
	goos_table_rekey(t, id);
	goos_ncompl++;
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
		goos_pfds[n].fd = goos_usocks[i].fd;
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
