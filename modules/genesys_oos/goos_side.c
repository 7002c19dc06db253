/*
 * genesys_oos: the transport check of the probes
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_oos :: transport check of the probes ("side" state)
 *
 * Owns everything the probe process does besides tm to learn that a
 * target's transport is down (see goos_probe.c for why): the per-target
 * side state (goos_side_t, in shm with the target, used by the probe
 * process only), the address hash mapping an ICMP error back to its
 * targets, the shared UDP check sockets with IP_RECVERR and their error
 * queues, the non-blocking TCP connects (and the TCP/TLS probes deferred
 * until their connect succeeds), and the list of side events the next
 * pass handles.  Runs in the probe process only, without the table lock
 * (goos_side_collect, goos_side_start) or under it (goos_side_reset,
 * goos_side_stop, goos_conn_del from the pass).
 */

#include <errno.h>
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

#include "goos_probe.h"
#include "goos_probe_int.h"
#include "goos_notify.h"

/* buckets of the address hash of the UDP checks (power of 2) */
#define GOOS_DHASH 16384
/* shared UDP check sockets: one per source address and family */
#define GOOS_MAX_USOCK 16

typedef struct goos_usock
{
	struct socket_info *si; /*!< bound to its address, NULL: unbound */
	int af;
	int fd;
} goos_usock_t;

/* probe process only */
static goos_usock_t goos_usocks[GOOS_MAX_USOCK];
int goos_nusocks = 0;
static int *goos_dhash = NULL; /* first id per address bucket, -1 */
/* ids: TCP connects in progress; targets with a side event to handle */
int *goos_conns = NULL, goos_nconns = 0;
static int goos_conns_cap = 0;
int *goos_sev = NULL, goos_nsev = 0;
static int goos_sev_cap = 0;
static time_t goos_fd_warned = 0;
static unsigned long goos_fd_skipped = 0;

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

int goos_side_init(void)
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

void goos_conn_del(goos_side_t *sd)
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

void goos_side_reset(goos_side_t *sd, int id, uint32_t gen)
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
void goos_side_stop(goos_side_t *sd)
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
void goos_side_collect(int64_t now, int npoll)
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

/* the descriptor of shared UDP check socket i (< goos_nusocks) */
int goos_usock_fd(int i)
{
	return goos_usocks[i].fd;
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
void goos_side_start(goos_job_t *job)
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

const char *goos_errno_detail(int proto, int err)
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
