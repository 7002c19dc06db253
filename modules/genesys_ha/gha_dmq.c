/*
 * genesys_ha module: the pool acts as one (Kamailio's dmq module)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: DMQ glue (see gha_dmq.h)
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/dprint.h"
#include "core/locking.h"
#include "core/mem/shm_mem.h"
#include "core/mem/pkg.h"
#include "core/counters.h"
#include "core/timer_proc.h"
#include "core/ut.h"
#include "modules/dmq/bind_dmq.h"

#include "gha_dmq.h"
#include "gha_rpc.h"
#include "gha_sync.h"
#include "gha_state.h"
#include "gha_events.h"

int gha_dmq_enable = 0;
int gha_dmq_interval = 1000;
int gha_dmq_peer_timeout = 3000;
int gha_dmq_sync_timeout = 1000;
int gha_dmq_probing = 0;

#define GHA_DMQ_PEERS 64		/*!< peers shown and tracked at most */
#define GHA_DMQ_QUEUE 256		/*!< decisions waiting to be sent */
#define GHA_DMQ_TICK_US 2000	/*!< the DMQ process's period */
#define GHA_DMQ_BODY_MAX 1300	/*!< bytes per message (one UDP datagram) */
#define GHA_DMQ_REPLY_MAX 60000 /*!< bytes of the answer to a query */
#define GHA_DMQ_EPOCHS_MAX 256	/*!< text of a peer's epochs (RPC) */

enum
{
	GHA_PEER_UNKNOWN = 0,
	GHA_PEER_UP = 1,
	GHA_PEER_DOWN = 2
};

static const char *peer_state_names[] = {"unknown", "up", "down"};

typedef struct gha_dmq_peer
{
	char addr[GHA_SYNC_ORIGIN_MAX + 1];
	int state;
	long last_ms;	/*!< monotonic, 0 never */
	long last_wall; /*!< time(), 0 never */
	long since;		/*!< time() of the last state change */
	long up_ms;		/*!< monotonic time it came up, 0 not up */
	unsigned long n_rx;
	char epochs[GHA_DMQ_EPOCHS_MAX]; /*!< "pair=epoch/role ..." */
} gha_dmq_peer_t;

typedef struct gha_dmq_root
{
	gen_lock_t lock; /*!< everything below */
	int synced;		 /*!< 0 waiting, 1 answered, 2 timed out (atomic) */
	long sync_deadline_ms;
	long started_ms;
	long synced_after_ms; /*!< ms from start to the first answer */
	char synced_from[GHA_SYNC_ORIGIN_MAX + 1];
	int query_now; /*!< dmq's init callback ran: send the query (atomic) */
	int state_now; /*!< distributed probing: a member changed (atomic) */
	int npeers;
	gha_dmq_peer_t peer[GHA_DMQ_PEERS];
	int qhead, qcount;
	gha_decision_t q[GHA_DMQ_QUEUE];
} gha_dmq_root_t;

static gha_dmq_root_t *droot = NULL;
static dmq_api_t dmqb;
static dmq_peer_t *gha_dmq_peer = NULL;
static char self[GHA_SYNC_ORIGIN_MAX + 1];
static str ctype = str_init("text/plain");
static str ok_reason = str_init("OK");
static str bad_reason = str_init("Bad Request");
static str forbidden_reason = str_init("Forbidden");

static struct
{
	counter_handle_t sent, received, applied, dropped, peer_down;
} dcnt;

/* clang-format off */
static counter_def_t dcnt_defs[] = {
	{&dcnt.sent, "dmq_sent", 0, 0, 0,
		"DMQ messages broadcast to the pool (decisions, states, queries)"},
	{&dcnt.received, "dmq_received", 0, 0, 0,
		"DMQ messages received from the pool's proxies"},
	{&dcnt.applied, "dmq_applied", 0, 0, 0,
		"switchovers applied because another proxy decided them"},
	{&dcnt.dropped, "dmq_dropped", 0, 0, 0,
		"DMQ messages refused: not from a proxy of the pool file, malformed"},
	{&dcnt.peer_down, "dmq_peer_down", 0, 0, 0,
		"times a peer proxy stopped answering (40002)"},
	{0, 0, 0, 0, 0, 0}
};
/* clang-format on */

static int on(void)
{
	return droot != NULL && gha_dmq_peer != NULL;
}

/* ---- the pool's proxies ---- */

static int src_in_pool(gha_pool_t *p, const struct ip_addr *ip)
{
	int i;

	if(p == NULL)
		return 0;
	for(i = 0; i < p->nproxies; i++) {
		const gha_addr_t *a = &p->proxies[i].addr;
		if(a->af == (int)ip->af && ip->len <= 16
				&& memcmp(a->ip, ip->u.addr, ip->len) == 0)
			return 1;
	}
	return 0;
}

/* a refused message: counted; logged the first times, then every 1000th
 * (per process: a flood does not flood the log) */
static int log_refused(void)
{
	static unsigned long n = 0;

	counter_inc(dcnt.dropped);
	n++;
	return n <= 10 || n % 1000 == 0;
}

int ki_ha_dmq_from_pool(sip_msg_t *msg)
{
	if(src_in_pool(gha_snap(), &msg->rcv.src_ip))
		return 1;
	if(log_refused())
		LM_WARN("DMQ message from %s:%d refused: not a proxy of the pool "
				"file\n",
				ip_addr2a(&msg->rcv.src_ip), (int)msg->rcv.src_port);
	return -1;
}

/* the peer's record (droot->lock held); created when the table has room */
static gha_dmq_peer_t *peer_get(const char *addr)
{
	int i;

	for(i = 0; i < droot->npeers; i++)
		if(strcmp(droot->peer[i].addr, addr) == 0)
			return &droot->peer[i];
	if(droot->npeers >= GHA_DMQ_PEERS)
		return NULL;
	i = droot->npeers++;
	memset(&droot->peer[i], 0, sizeof(droot->peer[i]));
	snprintf(droot->peer[i].addr, sizeof(droot->peer[i].addr), "%s", addr);
	droot->peer[i].since = (long)time(NULL);
	return &droot->peer[i];
}

/* a message from peer 'addr' arrived */
static void peer_seen(const char *addr, const char *epochs)
{
	gha_dmq_peer_t *pe;
	int was = -1;

	lock_get(&droot->lock);
	if((pe = peer_get(addr)) != NULL) {
		was = pe->state;
		pe->last_ms = gha_now_ms();
		pe->last_wall = (long)time(NULL);
		pe->n_rx++;
		if(epochs)
			snprintf(pe->epochs, sizeof(pe->epochs), "%s", epochs);
		if(pe->state != GHA_PEER_UP) {
			pe->state = GHA_PEER_UP;
			pe->since = pe->last_wall;
			pe->up_ms = pe->last_ms;
		}
	}
	lock_release(&droot->lock);
	if(was == GHA_PEER_DOWN)
		LM_NOTICE("proxy %s of the pool answers DMQ again\n", addr);
	else if(was == GHA_PEER_UNKNOWN)
		LM_INFO("proxy %s of the pool is up (DMQ)\n", addr);
	if(was == GHA_PEER_DOWN || was == GHA_PEER_UNKNOWN)
		gha_events_push_peer(GHA_EV_PEER_UP, addr);
}

/* ---- decisions ---- */

static void fill(gha_decision_t *d, const gha_pair_t *pr)
{
	const gha_slot_t *s = pr->slot;

	snprintf(d->pair, sizeof(d->pair), "%.*s", pr->name.len, pr->name.s);
	d->active = s->st.active;
	d->epoch = s->dmq_epoch;
	snprintf(d->origin, sizeof(d->origin), "%s", s->dmq_origin);
	d->mstate[0] = s->st.mstate[0];
	d->mstate[1] = s->st.mstate[1];
	d->trigger = s->st.sw_trigger;
}

void gha_dmq_decided(gha_pool_t *p, int pi, const gha_pair_events_t *ev)
{
	gha_pair_t *pr = &p->pairs[pi];
	gha_decision_t d;
	int dropped = 0;

	if(!on() || !ev->switched || ev->trigger == GHA_TRIG_PEER)
		return;
	lock_get(&gha_root->lock);
	pr->slot->dmq_epoch++;
	snprintf(pr->slot->dmq_origin, sizeof(pr->slot->dmq_origin), "%s", self);
	fill(&d, pr);
	d.trigger = ev->trigger;
	lock_release(&gha_root->lock);
	/* sent by the DMQ process: never a tm request from here (tm's reply
	 * lock, genesys_oos's callback, an RPC) */
	lock_get(&droot->lock);
	if(droot->qcount < GHA_DMQ_QUEUE) {
		droot->q[(droot->qhead + droot->qcount) % GHA_DMQ_QUEUE] = d;
		droot->qcount++;
	} else {
		dropped = 1;
	}
	lock_release(&droot->lock);
	if(dropped)
		LM_WARN("DMQ queue full: the decision for pair '%s' (epoch %lu) goes "
				"with the next state broadcast\n",
				d.pair, d.epoch);
	else
		LM_INFO("SIP Server pair '%s': decision epoch %lu (%s active) "
				"published to the pool\n",
				d.pair, d.epoch, gha_role_name(d.active));
}

/* a decision from the pool: applied when newer than ours */
static void apply(gha_pool_t *p, const gha_decision_t *d, const char *sender)
{
	gha_pair_events_t ev;
	gha_pair_t *pr;
	unsigned long had;
	int pi, sw = 0, cmp;

	if(p == NULL
			|| (pi = gha_pool_find_pair(p, d->pair, (int)strlen(d->pair))) < 0)
		return;
	pr = &p->pairs[pi];
	memset(&ev, 0, sizeof(ev));
	lock_get(&gha_root->lock);
	had = pr->slot->dmq_epoch;
	cmp = gha_sync_cmp(
			d->epoch, d->origin, pr->slot->dmq_epoch, pr->slot->dmq_origin);
	if(cmp > 0) {
		pr->slot->dmq_epoch = d->epoch;
		snprintf(pr->slot->dmq_origin, sizeof(pr->slot->dmq_origin), "%s",
				d->origin);
		sw = gha_sync_apply(&pr->slot->st, d->active, (long)time(NULL), &ev);
	}
	lock_release(&gha_root->lock);
	if(!sw)
		return;
	counter_inc(dcnt.applied);
	LM_NOTICE("SIP Server pair '%s': the pool decided %s %.*s (epoch %lu, "
			  "decided by proxy %s, trigger %s; had epoch %lu; from %s)\n",
			d->pair, gha_role_name(d->active), pr->m[d->active].uri.len,
			pr->m[d->active].uri.s, d->epoch, d->origin,
			gha_trigger_name(d->trigger), had, sender);
	gha_emit(p, pi, &ev);
}

/* apply every line of body; the epochs summary for the peer's record */
/* ---- distributed probing ---- */

/* the live proxies: this one first, then every peer up (and `extra`, the
 * sender of a message, when given and not there); their count */
static int live_set(char (*addr)[GHA_SYNC_ORIGIN_MAX + 1], const char **live,
		int max, const char *extra)
{
	int i, n = 0, have = 0;

	snprintf(addr[n], sizeof(addr[n]), "%s", self);
	live[n] = addr[n];
	n++;
	lock_get(&droot->lock);
	for(i = 0; i < droot->npeers && n < max; i++) {
		if(droot->peer[i].state != GHA_PEER_UP)
			continue;
		if(extra && strcmp(droot->peer[i].addr, extra) == 0)
			have = 1;
		memcpy(addr[n], droot->peer[i].addr, sizeof(addr[n]));
		live[n] = addr[n];
		n++;
	}
	lock_release(&droot->lock);
	if(extra && !have && n < max && strcmp(extra, self) != 0) {
		snprintf(addr[n], sizeof(addr[n]), "%s", extra);
		live[n] = addr[n];
		n++;
	}
	return n;
}

static int member_key(const gha_member_t *m, char *buf, int size)
{
	int n = snprintf(buf, (size_t)size, "%.*s", m->dst.len, m->dst.s);

	return (n < 0 || n >= size) ? -1 : 0;
}

/* the members this proxy probes (rank < dmq_probing): probed here */
static void probe_assign(gha_pool_t *p)
{
	char addr[GHA_DMQ_PEERS + 1][GHA_SYNC_ORIGIN_MAX + 1], key[256];
	const char *live[GHA_DMQ_PEERS + 1];
	int i, k, n;

	if(p == NULL)
		return;
	n = live_set(addr, live, GHA_DMQ_PEERS + 1, NULL);
	for(i = 0; i < p->npairs; i++)
		for(k = 0; k < 2; k++) {
			const gha_member_t *m = &p->pairs[i].m[k];
			if(m->goos_id < 0 || member_key(m, key, sizeof(key)) < 0)
				continue;
			if(gha_sync_prober_rank(key, live, n, 0) < gha_dmq_probing)
				gha_goos.set_remote(m->goos_id, 0, GOOS_UNKNOWN);
		}
}

/* a line from `sender`: for a member it probes and this proxy does not,
 * its state is the member's state here */
/* a peer heard continuously for dmq_peer_timeout ms: its probe states
 * are fresh (a proxy back from a freeze or a partition first sends what
 * it knew before; its own probes correct that within its next period) */
static int peer_settled(const char *addr)
{
	gha_dmq_peer_t *pe;
	int ok = 0;
	long now = gha_now_ms();

	lock_get(&droot->lock);
	for(pe = droot->peer; pe < droot->peer + droot->npeers; pe++)
		if(strcmp(pe->addr, addr) == 0) {
			ok = pe->state == GHA_PEER_UP && pe->up_ms > 0
				 && now - pe->up_ms >= gha_dmq_peer_timeout;
			break;
		}
	lock_release(&droot->lock);
	return ok;
}

static void probe_take(gha_pool_t *p, const gha_decision_t *d,
		const char *sender, char (*addr)[GHA_SYNC_ORIGIN_MAX + 1],
		const char **live, int n)
{
	char key[256];
	int pi, k, who;

	if((pi = gha_pool_find_pair(p, d->pair, (int)strlen(d->pair))) < 0)
		return;
	if(!peer_settled(sender))
		return;
	for(who = 0; who < n && strcmp(live[who], sender) != 0; who++)
		;
	(void)addr;
	for(k = 0; k < 2; k++) {
		const gha_member_t *m = &p->pairs[pi].m[k];
		if(m->goos_id < 0 || d->mstate[k] == GHA_MS_UNKNOWN
				|| member_key(m, key, sizeof(key)) < 0)
			continue;
		if(gha_sync_prober_rank(key, live, n, 0) < gha_dmq_probing)
			continue; /* probed here */
		if(gha_sync_prober_rank(key, live, n, who) >= gha_dmq_probing)
			continue; /* the sender does not probe it either */
		gha_goos.set_remote(m->goos_id, 1, (goos_state_t)d->mstate[k]);
	}
}

void gha_dmq_member_changed(void)
{
	if(droot && gha_dmq_probing > 0)
		__atomic_store_n(&droot->state_now, 1, __ATOMIC_RELEASE);
}

static void apply_body(gha_pool_t *p, const char *body, int len, int pos,
		const char *sender, char *sum, int sumsize)
{
	char addr[GHA_DMQ_PEERS + 1][GHA_SYNC_ORIGIN_MAX + 1];
	const char *live[GHA_DMQ_PEERS + 1];
	gha_decision_t d;
	int rc, n = 0, k, nl = 0;

	if(gha_dmq_probing > 0)
		nl = live_set(addr, live, GHA_DMQ_PEERS + 1, sender);

	sum[0] = '\0';
	while((rc = gha_sync_parse_line(body, len, &pos, &d)) != 0) {
		if(rc < 0) {
			LM_WARN("malformed line in a DMQ message from %s\n", sender);
			continue;
		}
		if(n < sumsize - 1) {
			k = snprintf(sum + n, (size_t)(sumsize - n), "%s%s=%lu/%s",
					n ? " " : "", d.pair, d.epoch, gha_role_name(d.active));
			n = (k > 0 && n + k < sumsize) ? n + k : sumsize - 1;
		}
		apply(p, &d, sender);
		if(gha_dmq_probing > 0 && p)
			probe_take(p, &d, sender, addr, live, nl);
	}
}

/* every pair's state as bodies of at most GHA_DMQ_BODY_MAX bytes; calls
 * send(body) per body; returns the number of bodies */
static int state_bodies(gha_pool_t *p, int kind, int max,
		void (*send)(str *body, void *arg), void *arg)
{
	char *buf, line[256];
	gha_decision_t d;
	str b;
	int i, n, hl, ll, nb = 0;

	if((buf = pkg_malloc((size_t)max + 512)) == NULL) {
		PKG_MEM_ERROR;
		return 0;
	}
	hl = gha_sync_fmt_header(buf, max, kind, self);
	if(hl < 0) {
		pkg_free(buf);
		return 0;
	}
	n = hl;
	for(i = 0; p && i < p->npairs; i++) {
		lock_get(&gha_root->lock);
		fill(&d, &p->pairs[i]);
		lock_release(&gha_root->lock);
		if((ll = gha_sync_fmt_line(line, sizeof(line), &d)) < 0)
			continue;
		if(n + ll > max && n > hl) {
			b.s = buf;
			b.len = n;
			send(&b, arg);
			nb++;
			n = hl;
		}
		memcpy(buf + n, line, (size_t)ll);
		n += ll;
	}
	if(n > hl || nb == 0) {
		b.s = buf;
		b.len = n;
		send(&b, arg);
		nb++;
	}
	pkg_free(buf);
	return nb;
}

/* ---- sending (the DMQ process) ---- */

static int resp_cb(
		struct sip_msg *msg, int code, dmq_node_t *node, void *param);
static dmq_resp_cback_t no_resp = {NULL, NULL};
static dmq_resp_cback_t query_resp = {resp_cb, NULL};

static void bcast(str *body, void *arg)
{
	dmq_resp_cback_t *cb = arg ? (dmq_resp_cback_t *)arg : &no_resp;

	if(dmqb.bcast_message(gha_dmq_peer, body, NULL, cb, 1, &ctype) < 0)
		LM_ERR("cannot broadcast a DMQ message\n");
	else
		counter_inc(dcnt.sent);
}

static void send_query(void)
{
	char buf[128];
	str b;

	if((b.len = gha_sync_fmt_header(buf, sizeof(buf), GHA_SYNC_QUERY, self))
			< 0)
		return;
	b.s = buf;
	bcast(&b, &query_resp);
}

static int in_pool_file(gha_pool_t *p, const char *addr)
{
	int i, n = (int)strlen(addr);

	if(p == NULL)
		return 1;
	for(i = 0; i < p->nproxies; i++)
		if(p->proxies[i].address.len == n
				&& memcmp(p->proxies[i].address.s, addr, (size_t)n) == 0)
			return 1;
	return 0;
}

static void check_peers(gha_pool_t *p, long now_ms)
{
	char down[GHA_DMQ_PEERS][GHA_SYNC_ORIGIN_MAX + 1];
	long silent[GHA_DMQ_PEERS];
	gha_dmq_peer_t *pe;
	int i, nd = 0;

	lock_get(&droot->lock);
	/* every proxy of the pool file is a peer (never seen: unknown) */
	for(i = 0; p && i < p->nproxies; i++) {
		char a[GHA_SYNC_ORIGIN_MAX + 1];
		snprintf(a, sizeof(a), "%.*s", p->proxies[i].address.len,
				p->proxies[i].address.s);
		if(i != p->own_index && strcmp(a, self) != 0)
			peer_get(a);
	}
	for(i = 0; i < droot->npeers; i++) {
		pe = &droot->peer[i];
		if(now_ms - pe->last_ms > gha_dmq_peer_timeout
				&& !in_pool_file(p, pe->addr)) {
			/* removed from the pool file (reload): forgotten, no 40002 */
			droot->peer[i] = droot->peer[--droot->npeers];
			i--;
			continue;
		}
		if(pe->state == GHA_PEER_UP
				&& now_ms - pe->last_ms > gha_dmq_peer_timeout) {
			pe->state = GHA_PEER_DOWN;
			pe->since = (long)time(NULL);
			memcpy(down[nd], pe->addr, sizeof(down[nd]));
			silent[nd++] = now_ms - pe->last_ms;
		}
	}
	lock_release(&droot->lock);
	for(i = 0; i < nd; i++) {
		counter_inc(dcnt.peer_down);
		LM_ERR("40002 SPR_OTHER_PROXY_INSTANCE_DISCONNECTED: proxy %s of the "
			   "pool does not answer DMQ (silent for %ld ms); decisions go on "
			   "without it and it gets the pool's state when it is back\n",
				down[i], silent[i]);
		gha_events_push_peer(GHA_EV_PEER_DOWN, down[i]);
	}
}

static void dmq_timer(unsigned int ticks, void *param)
{
	static long next_state = 0, next_query = 0;
	gha_decision_t d;
	char buf[GHA_DMQ_BODY_MAX + 128];
	gha_pool_t *p;
	long now = gha_now_ms();
	int n, hl, ll, got, qn;
	str b;

	(void)ticks;
	(void)param;
	p = gha_snap();
	/* decisions: one message per batch */
	for(;;) {
		hl = gha_sync_fmt_header(buf, sizeof(buf), GHA_SYNC_DECISION, self);
		n = hl;
		got = 0;
		lock_get(&droot->lock);
		while(droot->qcount > 0) {
			d = droot->q[droot->qhead];
			ll = gha_sync_fmt_line(buf + n, (int)sizeof(buf) - n, &d);
			if(ll < 0 || n + ll > GHA_DMQ_BODY_MAX)
				break;
			n += ll;
			got++;
			droot->qhead = (droot->qhead + 1) % GHA_DMQ_QUEUE;
			droot->qcount--;
		}
		lock_release(&droot->lock);
		if(got == 0)
			break;
		b.s = buf;
		b.len = n;
		bcast(&b, NULL);
	}
	/* the start: ask the pool (when dmq found its nodes, then every
	 * 200 ms until answered or the deadline) */
	if(__atomic_load_n(&droot->synced, __ATOMIC_ACQUIRE) == 0) {
		qn = __atomic_exchange_n(&droot->query_now, 0, __ATOMIC_ACQ_REL);
		if(now >= droot->sync_deadline_ms) {
			__atomic_store_n(&droot->synced, 2, __ATOMIC_RELEASE);
			LM_NOTICE("no proxy of the pool answered within %d ms: routing "
					  "from this proxy's own probes\n",
					gha_dmq_sync_timeout);
		} else if(qn || now >= next_query) {
			send_query();
			next_query = now + 200;
		}
	}
	if(gha_dmq_probing > 0
			&& __atomic_exchange_n(&droot->state_now, 0, __ATOMIC_ACQ_REL) && p
			&& p->npairs > 0)
		state_bodies(p, GHA_SYNC_STATE, GHA_DMQ_BODY_MAX, bcast, NULL);
	if(now >= next_state) {
		next_state = now + gha_dmq_interval;
		if(gha_dmq_probing > 0)
			probe_assign(p);
		if(p && p->npairs > 0)
			state_bodies(p, GHA_SYNC_STATE, GHA_DMQ_BODY_MAX, bcast, NULL);
		check_peers(p, now);
	}
}

/* ---- receiving ---- */

/* the reply to our query: the peer's state */
static int resp_cb(struct sip_msg *msg, int code, dmq_node_t *node, void *param)
{
	char sender[GHA_SYNC_ORIGIN_MAX + 1], sum[GHA_DMQ_EPOCHS_MAX];
	char *body;
	int kind, pos, len, zero = 0;
	gha_pool_t *p;

	(void)node;
	(void)param;
	if(code < 200 || code >= 300 || msg == NULL || msg == FAKED_REPLY)
		return 0;
	if((body = get_body(msg)) == NULL)
		return 0;
	len = (int)(msg->buf + msg->len - body);
	if(gha_sync_parse_header(body, len, &kind, sender, sizeof(sender), &pos) < 0
			|| kind != GHA_SYNC_REPLY)
		return 0;
	p = gha_snap();
	if(!src_in_pool(p, &msg->rcv.src_ip)) {
		counter_inc(dcnt.dropped);
		return 0;
	}
	counter_inc(dcnt.received);
	apply_body(p, body, len, pos, sender, sum, sizeof(sum));
	peer_seen(sender, sum);
	if(__atomic_compare_exchange_n(&droot->synced, &zero, 1, 0,
			   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		lock_get(&droot->lock);
		droot->synced_after_ms = gha_now_ms() - droot->started_ms;
		snprintf(droot->synced_from, sizeof(droot->synced_from), "%s", sender);
		lock_release(&droot->lock);
		LM_NOTICE("pool state received from proxy %s: routing\n", sender);
	}
	return 0;
}

static void reply_body(str *b, void *arg)
{
	str *out = arg;

	if(out->s != NULL)
		return; /* one body (one datagram) in a reply */
	out->s = pkg_malloc(b->len);
	if(out->s == NULL) {
		PKG_MEM_ERROR;
		return;
	}
	memcpy(out->s, b->s, b->len);
	out->len = b->len;
}

/* dmq worker: a message for peer "genesys_ha" */
static int dmq_cb(struct sip_msg *msg, peer_reponse_t *resp, dmq_node_t *node)
{
	char sender[GHA_SYNC_ORIGIN_MAX + 1], sum[GHA_DMQ_EPOCHS_MAX];
	char *body;
	int kind, pos, len;
	gha_pool_t *p = gha_snap();

	(void)node;
	resp->resp_code = 200;
	resp->reason = ok_reason;
	if(!src_in_pool(p, &msg->rcv.src_ip)) {
		if(log_refused())
			LM_WARN("DMQ message from %s refused: not a proxy of the pool "
					"file\n",
					ip_addr2a(&msg->rcv.src_ip));
		resp->resp_code = 403;
		resp->reason = forbidden_reason;
		return 0;
	}
	body = get_body(msg);
	len = body ? (int)(msg->buf + msg->len - body) : 0;
	if(gha_sync_parse_header(body, len, &kind, sender, sizeof(sender), &pos)
			< 0) {
		counter_inc(dcnt.dropped);
		resp->resp_code = 400;
		resp->reason = bad_reason;
		return 0;
	}
	counter_inc(dcnt.received);
	if(kind == GHA_SYNC_QUERY) {
		peer_seen(sender, NULL);
		resp->body.s = NULL;
		/* the whole state in one reply (a large datagram for a large
		 * pool: UDP fragments it) */
		state_bodies(
				p, GHA_SYNC_REPLY, GHA_DMQ_REPLY_MAX, reply_body, &resp->body);
		if(resp->body.s)
			resp->content_type = ctype;
		return 0;
	}
	apply_body(p, body, len, pos, sender, sum, sizeof(sum));
	peer_seen(sender, kind == GHA_SYNC_STATE ? sum : NULL);
	return 0;
}

static int dmq_init_cb(void)
{
	if(droot)
		__atomic_store_n(&droot->query_now, 1, __ATOMIC_RELEASE);
	return 0;
}

void gha_dmq_sync_wait(void)
{
	if(droot == NULL)
		return;
	while(__atomic_load_n(&droot->synced, __ATOMIC_ACQUIRE) == 0
			&& gha_now_ms() < droot->sync_deadline_ms)
		sleep_us(1000);
}

/* ---- init ---- */

int gha_dmq_init(void)
{
	dmq_peer_t not_peer;

	if(!gha_dmq_enable)
		return 0;
	if(gha_dmq_interval < 100 || gha_dmq_interval > 60000) {
		LM_ERR("dmq_interval %d is invalid: use 100 to 60000 ms\n",
				gha_dmq_interval);
		return -1;
	}
	if(gha_dmq_peer_timeout < gha_dmq_interval) {
		LM_ERR("dmq_peer_timeout %d must not be below dmq_interval %d\n",
				gha_dmq_peer_timeout, gha_dmq_interval);
		return -1;
	}
	if(gha_dmq_probing < 0 || gha_dmq_probing > GHA_DMQ_PEERS) {
		LM_ERR("dmq_probing %d is invalid: 0 (off: every proxy probes every "
			   "member) or the number of proxies probing each member\n",
				gha_dmq_probing);
		return -1;
	}
	if(gha_dmq_sync_timeout < 0 || gha_dmq_sync_timeout > 30000) {
		LM_ERR("dmq_sync_timeout %d is invalid: use 0 to 30000 ms\n",
				gha_dmq_sync_timeout);
		return -1;
	}
	if(dmq_load_api(&dmqb) < 0) {
		LM_ERR("genesys_ha dmq 1 needs the dmq module: add loadmodule "
			   "\"dmq\" before loadmodule \"genesys_ha\"\n");
		return -1;
	}
	if(gha_own_address.len <= 0 || gha_own_address.len > GHA_SYNC_ORIGIN_MAX) {
		LM_ERR("dmq needs own_address (this proxy's host:port as in the pool "
			   "file's <proxy> elements): it names this proxy's decisions\n");
		return -1;
	}
	snprintf(
			self, sizeof(self), "%.*s", gha_own_address.len, gha_own_address.s);
	if(counter_register_array("genesys_ha", dcnt_defs) < 0) {
		LM_ERR("cannot register the DMQ statistics\n");
		return -1;
	}
	droot = shm_malloc(sizeof(*droot));
	if(droot == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	memset(droot, 0, sizeof(*droot));
	if(lock_init(&droot->lock) == NULL) {
		LM_ERR("cannot initialize the DMQ lock\n");
		shm_free(droot);
		droot = NULL;
		return -1;
	}
	droot->started_ms = gha_now_ms();
	droot->sync_deadline_ms = droot->started_ms + gha_dmq_sync_timeout;
	if(gha_dmq_sync_timeout == 0)
		droot->synced = 2;
	memset(&not_peer, 0, sizeof(not_peer));
	not_peer.peer_id.s = "genesys_ha";
	not_peer.peer_id.len = sizeof("genesys_ha") - 1;
	not_peer.description.s = "genesys_ha pool decisions";
	not_peer.description.len = sizeof("genesys_ha pool decisions") - 1;
	not_peer.callback = dmq_cb;
	not_peer.init_callback = dmq_init_cb;
	gha_dmq_peer = dmqb.register_dmq_peer(&not_peer);
	if(gha_dmq_peer == NULL) {
		LM_ERR("cannot register the genesys_ha DMQ peer (load dmq before "
			   "genesys_ha)\n");
		return -1;
	}
	if(register_basic_timers(1) < 0) {
		LM_ERR("cannot register the genesys_ha DMQ process\n");
		return -1;
	}
	LM_NOTICE("pool decisions shared over DMQ as proxy %s (state every %d "
			  "ms, peer timeout %d ms, start sync up to %d ms)\n",
			self, gha_dmq_interval, gha_dmq_peer_timeout, gha_dmq_sync_timeout);
	return 0;
}

int gha_dmq_child_init(int rank)
{
	if(!on() || rank != PROC_MAIN)
		return 0;
	if(fork_basic_utimer(PROC_TIMER, "GENESYS_HA DMQ", 1, dmq_timer, NULL,
			   GHA_DMQ_TICK_US)
			< 0) {
		LM_ERR("cannot start the genesys_ha DMQ process\n");
		return -1;
	}
	return 0;
}

void gha_dmq_destroy(void)
{
	if(droot == NULL)
		return;
	lock_destroy(&droot->lock);
	shm_free(droot);
	droot = NULL;
}

/* ---- genesys_ha.peers ---- */

const char *gha_dmq_rpc_peers_doc[] = {
		"Show the pool's other proxies as seen over DMQ: state, last "
		"contact, the epoch each has for each pair; this proxy's epochs",
		0};

void gha_dmq_rpc_peers(rpc_t *rpc, void *ctx)
{
	gha_dmq_peer_t *copy;
	gha_pool_t *p = gha_snap();
	void *th, *arr, *h;
	char ts[32], ts2[32], own[GHA_DMQ_EPOCHS_MAX],
			from[GHA_SYNC_ORIGIN_MAX + 1];
	long now = gha_now_ms(), after;
	int i, n, k, synced;

	if(rpc->add(ctx, "{", &th) < 0)
		return;
	if(!on()) {
		rpc->struct_add(th, "s", "dmq", "off");
		return;
	}
	copy = pkg_malloc(sizeof(gha_dmq_peer_t) * GHA_DMQ_PEERS);
	if(copy == NULL) {
		PKG_MEM_ERROR;
		rpc->fault(ctx, 500, "out of memory");
		return;
	}
	lock_get(&droot->lock);
	n = droot->npeers;
	memcpy(copy, droot->peer, sizeof(gha_dmq_peer_t) * (size_t)n);
	after = droot->synced_after_ms;
	memcpy(from, droot->synced_from, sizeof(from));
	lock_release(&droot->lock);
	synced = __atomic_load_n(&droot->synced, __ATOMIC_ACQUIRE);
	own[0] = '\0';
	for(i = 0, k = 0; p && i < p->npairs && k < (int)sizeof(own) - 1; i++) {
		int w;
		lock_get(&gha_root->lock);
		w = snprintf(own + k, sizeof(own) - (size_t)k, "%s%.*s=%lu/%s",
				k ? " " : "", p->pairs[i].name.len, p->pairs[i].name.s,
				p->pairs[i].slot->dmq_epoch,
				gha_role_name(p->pairs[i].slot->st.active));
		lock_release(&gha_root->lock);
		k = (w > 0 && k + w < (int)sizeof(own)) ? k + w : (int)sizeof(own) - 1;
	}
	rpc->struct_add(th, "d", "probing", gha_dmq_probing);
	rpc->struct_add(th, "ssssd", "dmq", "on", "self", self, "epochs", own,
			"start_sync",
			synced == 1 ? "answered" : (synced == 2 ? "timed out" : "waiting"),
			"start_sync_ms", synced == 1 ? (int)after : -1);
	if(synced == 1)
		rpc->struct_add(th, "s", "start_sync_from", from);
	if(rpc->struct_add(th, "[", "peers", &arr) < 0)
		goto done;
	for(i = 0; i < n; i++) {
		gha_rpc_fmt_time(copy[i].last_wall, ts, sizeof(ts));
		gha_rpc_fmt_time(copy[i].since, ts2, sizeof(ts2));
		if(rpc->array_add(arr, "{", &h) < 0)
			goto done;
		rpc->struct_add(h, "ssssdds", "address", copy[i].addr, "state",
				peer_state_names[copy[i].state], "since", ts2, "last_contact",
				ts, "last_contact_ms_ago",
				copy[i].last_ms > 0 ? (int)(now - copy[i].last_ms) : -1,
				"messages", (int)copy[i].n_rx, "epochs",
				copy[i].epochs[0] ? copy[i].epochs : "(none yet)");
	}
done:
	pkg_free(copy);
}
