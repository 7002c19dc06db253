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
 * \brief genesys_ha :: DMQ transport (see gha_dmq.h, gha_dmq_int.h)
 *
 * Owns the dmq binding: the peer "genesys_ha" and its callbacks (a
 * message from a proxy of the pool, the answer to our query), the
 * "GENESYS_HA DMQ" process that sends (queued decisions, the periodic
 * state, the start query) and checks the peers, the start sync the
 * routing functions wait for, the shared root gha_droot and the DMQ
 * counters; mod_init, child_init and destroy of the DMQ part.  What the
 * messages say is gha_dmq_msg.c's, the peer table gha_dmq_peers.c's.
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

#include "gha_dmq_int.h"
#include "gha_params.h"
#include "gha_sync.h"
#include "gha_state.h"

int gha_dmq_enable = GHA_DEFAULT_DMQ;
int gha_dmq_interval = GHA_DEFAULT_DMQ_INTERVAL;
int gha_dmq_peer_timeout = GHA_DEFAULT_DMQ_PEER_TIMEOUT;
int gha_dmq_sync_timeout = GHA_DEFAULT_DMQ_SYNC_TIMEOUT;
int gha_dmq_probing = GHA_DEFAULT_DMQ_PROBING;

gha_dmq_root_t *gha_droot = NULL;
char gha_dmq_self[GHA_SYNC_ORIGIN_MAX + 1];
gha_dmq_counters_t gha_dcnt;
static dmq_api_t dmqb;
static dmq_peer_t *gha_dmq_peer = NULL;
static str ctype = str_init("text/plain");
static str ok_reason = str_init("OK");
static str bad_reason = str_init("Bad Request");
static str forbidden_reason = str_init("Forbidden");

/* clang-format off */
static counter_def_t dcnt_defs[] = {
	{&gha_dcnt.sent, "dmq_sent", 0, 0, 0,
		"DMQ messages broadcast to the pool (decisions, states, queries)"},
	{&gha_dcnt.received, "dmq_received", 0, 0, 0,
		"DMQ messages received from the pool's proxies"},
	{&gha_dcnt.applied, "dmq_applied", 0, 0, 0,
		"switchovers applied because another proxy decided them"},
	{&gha_dcnt.dropped, "dmq_dropped", 0, 0, 0,
		"DMQ messages refused: not from a proxy of the pool file, malformed"},
	{&gha_dcnt.peer_down, "dmq_peer_down", 0, 0, 0,
		"times a peer proxy stopped answering (40002)"},
	{0, 0, 0, 0, 0, 0}
};
/* clang-format on */

int gha_dmq_on(void)
{
	return gha_droot != NULL && gha_dmq_peer != NULL;
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

	counter_inc(gha_dcnt.dropped);
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
		counter_inc(gha_dcnt.sent);
}

static void send_query(void)
{
	char buf[128];
	str b;

	if((b.len = gha_sync_fmt_header(
				buf, sizeof(buf), GHA_SYNC_QUERY, gha_dmq_self))
			< 0)
		return;
	b.s = buf;
	bcast(&b, &query_resp);
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
		hl = gha_sync_fmt_header(
				buf, sizeof(buf), GHA_SYNC_DECISION, gha_dmq_self);
		n = hl;
		got = 0;
		lock_get(&gha_droot->lock);
		while(gha_droot->qcount > 0) {
			d = gha_droot->q[gha_droot->qhead];
			ll = gha_sync_fmt_line(buf + n, (int)sizeof(buf) - n, &d);
			if(ll < 0 || n + ll > GHA_DMQ_BODY_MAX)
				break;
			n += ll;
			got++;
			gha_droot->qhead = (gha_droot->qhead + 1) % GHA_DMQ_QUEUE;
			gha_droot->qcount--;
		}
		lock_release(&gha_droot->lock);
		if(got == 0)
			break;
		b.s = buf;
		b.len = n;
		bcast(&b, NULL);
	}
	/* the start: ask the pool (when dmq found its nodes, then every
	 * 200 ms until answered or the deadline) */
	if(__atomic_load_n(&gha_droot->synced, __ATOMIC_ACQUIRE) == 0) {
		qn = __atomic_exchange_n(&gha_droot->query_now, 0, __ATOMIC_ACQ_REL);
		if(now >= gha_droot->sync_deadline_ms) {
			__atomic_store_n(&gha_droot->synced, 2, __ATOMIC_RELEASE);
			LM_NOTICE("no proxy of the pool answered within %d ms: routing "
					  "from this proxy's own probes\n",
					gha_dmq_sync_timeout);
		} else if(qn || now >= next_query) {
			send_query();
			next_query = now + 200;
		}
	}
	if(gha_dmq_probing > 0
			&& __atomic_exchange_n(&gha_droot->state_now, 0, __ATOMIC_ACQ_REL)
			&& p && p->npairs > 0)
		gha_dmq_state_bodies(p, GHA_SYNC_STATE, GHA_DMQ_BODY_MAX, bcast, NULL);
	if(now >= next_state) {
		next_state = now + gha_dmq_interval;
		if(gha_dmq_probing > 0)
			gha_dmq_probe_assign(p);
		if(p && p->npairs > 0)
			gha_dmq_state_bodies(
					p, GHA_SYNC_STATE, GHA_DMQ_BODY_MAX, bcast, NULL);
		gha_dmq_check_peers(p, now);
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
		counter_inc(gha_dcnt.dropped);
		return 0;
	}
	counter_inc(gha_dcnt.received);
	gha_dmq_apply_body(p, body, len, pos, sender, sum, sizeof(sum));
	gha_dmq_peer_seen(sender, sum);
	if(__atomic_compare_exchange_n(&gha_droot->synced, &zero, 1, 0,
			   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		lock_get(&gha_droot->lock);
		gha_droot->synced_after_ms = gha_now_ms() - gha_droot->started_ms;
		snprintf(gha_droot->synced_from, sizeof(gha_droot->synced_from), "%s",
				sender);
		lock_release(&gha_droot->lock);
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
		counter_inc(gha_dcnt.dropped);
		resp->resp_code = 400;
		resp->reason = bad_reason;
		return 0;
	}
	counter_inc(gha_dcnt.received);
	if(kind == GHA_SYNC_QUERY) {
		gha_dmq_peer_seen(sender, NULL);
		resp->body.s = NULL;
		/* the whole state in one reply (a large datagram for a large
		 * pool: UDP fragments it) */
		gha_dmq_state_bodies(
				p, GHA_SYNC_REPLY, GHA_DMQ_REPLY_MAX, reply_body, &resp->body);
		if(resp->body.s)
			resp->content_type = ctype;
		return 0;
	}
	gha_dmq_apply_body(p, body, len, pos, sender, sum, sizeof(sum));
	gha_dmq_peer_seen(sender, kind == GHA_SYNC_STATE ? sum : NULL);
	return 0;
}

static int dmq_init_cb(void)
{
	if(gha_droot)
		__atomic_store_n(&gha_droot->query_now, 1, __ATOMIC_RELEASE);
	return 0;
}

void gha_dmq_sync_wait(void)
{
	if(gha_droot == NULL)
		return;
	while(__atomic_load_n(&gha_droot->synced, __ATOMIC_ACQUIRE) == 0
			&& gha_now_ms() < gha_droot->sync_deadline_ms)
		sleep_us(1000);
}

/* ---- init ---- */

int gha_dmq_init(void)
{
	dmq_peer_t not_peer;
	char err[256];

	if(!gha_dmq_enable)
		return 0;
	/* dmq_*: checked by gha_params_check() */
	if(dmq_load_api(&dmqb) < 0) {
		LM_ERR("genesys_ha dmq 1 needs the dmq module: add loadmodule "
			   "\"dmq\" before loadmodule \"genesys_ha\"\n");
		return -1;
	}
	if(gha_params_check_own_address(
			   gha_dmq_enable, gha_own_address.len, err, sizeof(err))
			< 0) {
		LM_ERR("%s\n", err);
		return -1;
	}
	snprintf(gha_dmq_self, sizeof(gha_dmq_self), "%.*s", gha_own_address.len,
			gha_own_address.s);
	if(counter_register_array("genesys_ha", dcnt_defs) < 0) {
		LM_ERR("cannot register the DMQ statistics\n");
		return -1;
	}
	gha_droot = shm_malloc(sizeof(*gha_droot));
	if(gha_droot == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	memset(gha_droot, 0, sizeof(*gha_droot));
	if(lock_init(&gha_droot->lock) == NULL) {
		LM_ERR("cannot initialize the DMQ lock\n");
		shm_free(gha_droot);
		gha_droot = NULL;
		return -1;
	}
	gha_droot->started_ms = gha_now_ms();
	gha_droot->sync_deadline_ms = gha_droot->started_ms + gha_dmq_sync_timeout;
	if(gha_dmq_sync_timeout == 0)
		gha_droot->synced = 2;
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
			gha_dmq_self, gha_dmq_interval, gha_dmq_peer_timeout,
			gha_dmq_sync_timeout);
	return 0;
}

int gha_dmq_child_init(int rank)
{
	if(!gha_dmq_on() || rank != PROC_MAIN)
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
	if(gha_droot == NULL)
		return;
	lock_destroy(&gha_droot->lock);
	shm_free(gha_droot);
	gha_droot = NULL;
}
