/*
 * genesys_tlssticky: requests in flight when a phone's connection closes
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 *
 * A request relayed over a phone's flow gets a tm callback (registered by
 * sticky_route(), attached when t_relay() creates the transaction): when
 * tm forwards it, its transaction (hash index, label) is recorded under
 * the flow's connection id (gts_inflight.c, slots allocated at start);
 * its final reply or its destruction forgets it.  When the connection
 * closes (tcp_main, or event_route[tcp:closed]), its transactions are
 * detached at once; a core timer (every GTS_FLOWTX_MS ms, in the slow
 * timer process, never in tcp_main) answers each one still without a
 * final reply: 430 Flow Failed (no-inbound policy) or 480 Temporarily
 * Unavailable (reconnect policy), through tm's t_reply_with_body() as
 * tm's own "tm.reply" RPC does.  tm ends the branch toward the phone
 * (its timers stopped, a CANCEL tried for an INVITE that had a
 * provisional reply) and keeps the transaction for retransmissions.
 */

#include <stdint.h>
#include <string.h>

#include "core/dprint.h"
#include "core/timer.h"
#include "core/timer_ticks.h"
#include "core/mem/shm_mem.h"
#include "core/parser/msg_parser.h"
#include "core/parser/parse_to.h"
#include "modules/tm/tm_load.h"

#include "gts_mod.h"
#include "gts_inflight.h"

#define GTS_FLOWTX_MS 100	/* how often closed flows are looked at */
#define GTS_FLOWTX_PARTS 16 /* partitions (locks) of the table */

/* the tm callback's parameter: connection id, policy, recorded or not */
#define GTS_TX_CONID_MASK 0x3fffffffu
#define GTS_TX_RECONNECT 0x40000000u
#define GTS_TX_ADDED 0x80000000u

static struct tm_binds gts_tmb;
static int gts_have_tm = 0;
static struct timer_ln *gts_flowtx_tl = NULL;

static void *if_alloc(size_t size)
{
	return shm_malloc(size);
}

static void if_free(void *p)
{
	shm_free(p);
}

static void if_lock(void *ctx, unsigned int idx)
{
	gen_lock_set_t *set = ctx;
	lock_set_get(set, idx);
}

static void if_unlock(void *ctx, unsigned int idx)
{
	gen_lock_set_t *set = ctx;
	lock_set_release(set, idx);
}

static void gts_tx_cb(struct cell *t, int type, struct tmcb_params *ps)
{
	static int full_warned = 0;
	uintptr_t v = (uintptr_t)*ps->param;
	gts_if_item_t it;

	if(gts_root == NULL)
		return;
	if(type == TMCB_REQUEST_FWDED) {
		if(v & GTS_TX_ADDED)
			return; /* relayed again (failure route): recorded already */
		memset(&it, 0, sizeof(it));
		it.conid = (uint32_t)(v & GTS_TX_CONID_MASK);
		it.hidx = t->hash_index;
		it.label = t->label;
		it.policy =
				(v & GTS_TX_RECONNECT) ? GTS_POL_RECONNECT : GTS_POL_NO_INBOUND;
		if(gts_inflight_add(&gts_root->inflight, &it) != GTS_IF_OK) {
			if(!full_warned) /* once per process */
				LM_WARN("more than about %d requests in flight toward"
						" phones (modparam inflight_max): a %.*s over flow %u"
						" and further ones wait for tm's timer if their"
						" flow closes\n",
						gts_cfg.inflight_max, t->method.len, t->method.s,
						it.conid);
			full_warned = 1;
			return;
		}
		*ps->param = (void *)(v | GTS_TX_ADDED);
		return;
	}
	if(type == TMCB_RESPONSE_OUT && ps->code < 200)
		return;
	/* final reply sent, or the transaction is destroyed */
	if(v & GTS_TX_ADDED) {
		gts_inflight_del(&gts_root->inflight, (uint32_t)(v & GTS_TX_CONID_MASK),
				t->hash_index, t->label);
		*ps->param = (void *)(v & ~(uintptr_t)GTS_TX_ADDED);
	}
}

void gts_flowtx_track(struct sip_msg *msg, uint32_t conid, int policy)
{
	uintptr_t v;

	if(!gts_have_tm || gts_root == NULL || gts_root->inflight.slots == NULL)
		return;
	if(msg->first_line.type != SIP_REQUEST
			|| (msg->REQ_METHOD & (METHOD_ACK | METHOD_CANCEL)))
		return;
	if(conid == 0 || conid > GTS_TX_CONID_MASK)
		return;
	v = conid | (policy == GTS_POL_RECONNECT ? GTS_TX_RECONNECT : 0);
	if(gts_tmb.register_tmcb(msg, 0,
			   TMCB_REQUEST_FWDED | TMCB_RESPONSE_OUT | TMCB_DESTROY, gts_tx_cb,
			   (void *)v, 0)
			<= 0)
		LM_ERR("cannot register a tm callback: a %.*s over flow %u waits"
			   " for tm's timer if the flow dies\n",
				msg->first_line.u.request.method.len,
				msg->first_line.u.request.method.s, conid);
}

void gts_flowtx_closed(uint32_t conid)
{
	if(gts_root != NULL && gts_root->inflight.slots != NULL)
		gts_inflight_close(&gts_root->inflight, conid);
}

/* 1 when t still waits for a final reply from a branch sent over a flow
 * (no-connect forwarding over TCP/TLS, as sticky_route() sets it): a
 * request a failure route sent elsewhere since is left alone */
static int tx_pending(struct cell *t)
{
	struct dest_info *dst;
	int i;

	if(t->uas.request == NULL || t->uas.status >= 200)
		return 0;
	for(i = 0; i < t->nr_of_outgoings; i++) {
		dst = &t->uac[i].request.dst;
		if(t->uac[i].last_received < 200
				&& (dst->send_flags.f & SND_F_FORCE_CON_REUSE)
				&& (dst->proto == PROTO_TLS || dst->proto == PROTO_TCP))
			return 1;
	}
	return 0;
}

static void end_tx(const gts_if_item_t *it)
{
	static str r430 = str_init("Flow Failed");
	static str r480 = str_init("Temporarily Unavailable");
	struct cell *t, *bak_t;
	struct to_body *to;
	str tag, *tagp = NULL;
	int bak_branch, code, last;

	bak_t = gts_tmb.t_gett();
	bak_branch = gts_tmb.t_gett_branch();
	if(gts_tmb.t_lookup_ident(&t, it->hidx, it->label) < 0 || t == NULL)
		goto done; /* already gone */
	if(!tx_pending(t)) {
		gts_tmb.unref_cell(t);
		goto done;
	}
	last = t->nr_of_outgoings > 0 ? t->uac[0].last_received : 0;
	to = (t->uas.request->to && t->uas.request->to->parsed)
				 ? get_to(t->uas.request)
				 : NULL;
	if(to != NULL && to->tag_value.len == 0
			&& gts_tmb.t_get_reply_totag(t->uas.request, &tag) > 0)
		tagp = &tag; /* the To tag tm gives its own replies */
	code = it->policy == GTS_POL_RECONNECT ? 480 : 430;
	counter_inc(gts_cnt.flow_failed);
	LM_NOTICE("flow gone: %.*s in flight to the phone over connection %u"
			  " (last reply %d) answered %d at once: the connection is"
			  " closed\n",
			t->method.len, t->method.s, it->conid, last, code);
	/* unrefs t */
	if(gts_tmb.t_reply_with_body(
			   t, code, code == 430 ? &r430 : &r480, NULL, NULL, tagp)
			< 0)
		LM_DBG("transaction %u:%u of flow %u got its final reply"
			   " meanwhile\n",
				it->hidx, it->label, it->conid);
done:
	gts_tmb.t_sett(bak_t, bak_branch);
}

static ticks_t gts_flowtx_timer(ticks_t ticks, struct timer_ln *tl, void *d)
{
	gts_if_item_t items[32];
	unsigned int p;
	int n, i;

	if(gts_root == NULL)
		return (ticks_t)-1;
	for(p = 0; p < gts_root->inflight.nparts; p++)
		while((n = gts_inflight_take_closed(&gts_root->inflight, p, items, 32))
				> 0)
			for(i = 0; i < n; i++)
				end_tx(&items[i]);
	return (ticks_t)-1; /* periodic */
}

int gts_flowtx_init(void)
{
	gts_if_ops_t ops;
	unsigned int nb = GTS_FLOWTX_PARTS;

	if(gts_cfg.inflight_max == 0)
		return 0;
	if(load_tm_api(&gts_tmb) < 0) {
		LM_INFO("tm module not loaded: requests in flight toward a phone"
				" whose connection closes wait for their own timeout\n");
		return 0;
	}
	gts_have_tm = 1;
	while(nb < (unsigned int)gts_cfg.inflight_max / 2 && nb < (1u << 22))
		nb <<= 1;
	gts_root->if_locks = lock_set_alloc(GTS_FLOWTX_PARTS);
	if(gts_root->if_locks == NULL
			|| lock_set_init(gts_root->if_locks) == NULL) {
		LM_ERR("cannot allocate %d locks\n", GTS_FLOWTX_PARTS);
		return -1;
	}
	memset(&ops, 0, sizeof(ops));
	ops.alloc = if_alloc;
	ops.free = if_free;
	ops.lock = if_lock;
	ops.unlock = if_unlock;
	ops.ctx = gts_root->if_locks;
	if(gts_inflight_init(&gts_root->inflight,
			   (unsigned int)gts_cfg.inflight_max, nb, GTS_FLOWTX_PARTS, &ops)
			!= GTS_IF_OK) {
		SHM_MEM_ERROR;
		return -1;
	}
	gts_flowtx_tl = timer_alloc();
	if(gts_flowtx_tl == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	timer_init(gts_flowtx_tl, gts_flowtx_timer, 0, 0);
	if(timer_add(gts_flowtx_tl, MS_TO_TICKS(GTS_FLOWTX_MS)) < 0) {
		LM_ERR("cannot start the closed-flow timer\n");
		return -1;
	}
	return 0;
}

void gts_flowtx_destroy(void)
{
	if(gts_root == NULL)
		return;
	if(gts_root->inflight.slots)
		gts_inflight_destroy(&gts_root->inflight);
	if(gts_root->if_locks) {
		lock_set_destroy(gts_root->if_locks);
		lock_set_dealloc(gts_root->if_locks);
		gts_root->if_locks = NULL;
	}
}
