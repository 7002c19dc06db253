/*
 * genesys_ha module: event routes, run in the genesys_ha event process
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: event routes in one place (see gha_events.h)
 */

#include <string.h>

#include "core/dprint.h"
#include "core/locking.h"
#include "core/mem/shm_mem.h"
#include "core/fmsg.h"
#include "core/route.h"
#include "core/sr_module.h"
#include "core/timer_proc.h"
#include "common/kg_evroute.h"

#include "gha_events.h"
#include "gha_route.h"
#include "gha_state.h"

/* an event with the values $ha(...) shows in its route (copied: the
 * snapshot may be gone when the route runs) */
typedef struct gha_ev
{
	int kind; /*!< enum gha_ev_kind */
	int role; /*!< the pair's (new) active member */
	int state;
	int trigger; /*!< switchover trigger, -1 none */
	int pair_len, member_len, old_member_len;
	char pair[GHA_NAME_MAX + 1];
	char member[256];
	char old_member[256];
} gha_ev_t;

typedef struct gha_evq
{
	gen_lock_t lock;
	int head, count;
	unsigned int dropped; /*!< since the last warning */
	gha_ev_t ev[GHA_EV_QUEUE];
} gha_evq_t;

static gha_evq_t *evq = NULL;
static int rt[GHA_EV_KINDS] = {-1, -1, -1, -1, -1};
static str evname[GHA_EV_KINDS] = {str_init("genesys-ha:switchover"),
		str_init("genesys-ha:pair-down"), str_init("genesys-ha:pair-up"),
		str_init("genesys-ha:peer-down"), str_init("genesys-ha:peer-up")};

void gha_events_lookup(int rt_switchover, int rt_down, int rt_up)
{
	rt[GHA_EV_SWITCHOVER] = rt_switchover;
	rt[GHA_EV_DOWN] = rt_down;
	rt[GHA_EV_UP] = rt_up;
}

void gha_events_lookup_peers(int rt_peer_down, int rt_peer_up)
{
	rt[GHA_EV_PEER_DOWN] = rt_peer_down;
	rt[GHA_EV_PEER_UP] = rt_peer_up;
}

/* anything to run for an event of this kind */
static int wanted(int kind)
{
	return gha_event_callback.len > 0 || rt[kind] >= 0;
}

int gha_events_init(void)
{
	if(!wanted(GHA_EV_SWITCHOVER) && !wanted(GHA_EV_DOWN) && !wanted(GHA_EV_UP)
			&& !wanted(GHA_EV_PEER_DOWN) && !wanted(GHA_EV_PEER_UP))
		return 0;
	evq = shm_malloc(sizeof(*evq));
	if(evq == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	memset(evq, 0, sizeof(*evq));
	if(lock_init(&evq->lock) == NULL) {
		LM_ERR("cannot initialize the event queue lock\n");
		shm_free(evq);
		evq = NULL;
		return -1;
	}
	if(register_basic_timers(1) < 0) {
		LM_ERR("cannot register the genesys_ha event process\n");
		return -1;
	}
	return 0;
}

void gha_events_destroy(void)
{
	if(evq == NULL)
		return;
	lock_destroy(&evq->lock);
	shm_free(evq);
	evq = NULL;
}

static int cpy(char *dst, int size, const str *s)
{
	int l = s->len < size - 1 ? s->len : size - 1;

	if(l <= 0)
		l = 0;
	else
		memcpy(dst, s->s, (size_t)l);
	dst[l] = '\0';
	return l;
}

static void push_one(
		int kind, const gha_pair_t *pr, const gha_pair_events_t *ev)
{
	gha_ev_t *e;
	unsigned int dropped = 0;

	if(!wanted(kind))
		return;
	lock_get(&evq->lock);
	if(evq->count >= GHA_EV_QUEUE) {
		dropped = ++evq->dropped;
		lock_release(&evq->lock);
		if(dropped == 1 || dropped % 100 == 0)
			LM_WARN("event queue full (%d waiting): event route [%.*s] of "
					"pair '%.*s' not run (%u dropped); is the genesys_ha "
					"event process stuck in a route?\n",
					GHA_EV_QUEUE, evname[kind].len, evname[kind].s,
					pr->name.len, pr->name.s, dropped);
		return;
	}
	e = &evq->ev[(evq->head + evq->count) % GHA_EV_QUEUE];
	evq->count++;
	evq->dropped = 0;
	e->kind = kind;
	e->role = ev->to;
	e->state = ev->new_pstate;
	e->trigger = ev->switched ? ev->trigger : -1;
	e->pair_len = cpy(e->pair, sizeof(e->pair), &pr->name);
	e->member_len = cpy(e->member, sizeof(e->member), &pr->m[ev->to].uri);
	e->old_member_len = ev->switched ? cpy(e->old_member, sizeof(e->old_member),
								&pr->m[ev->from].uri)
									 : 0;
	lock_release(&evq->lock);
}

void gha_events_push_peer(int kind, const char *addr)
{
	gha_ev_t *e;
	str a;

	if(evq == NULL || !wanted(kind))
		return;
	a.s = (char *)addr;
	a.len = (int)strlen(addr);
	lock_get(&evq->lock);
	if(evq->count >= GHA_EV_QUEUE) {
		evq->dropped++;
		lock_release(&evq->lock);
		LM_WARN("event queue full: event route [%.*s] of proxy %s not run\n",
				evname[kind].len, evname[kind].s, addr);
		return;
	}
	e = &evq->ev[(evq->head + evq->count) % GHA_EV_QUEUE];
	evq->count++;
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->trigger = -1;
	e->member_len = cpy(e->member, sizeof(e->member), &a);
	lock_release(&evq->lock);
}

void gha_events_push(const gha_pair_t *pr, const gha_pair_events_t *ev)
{
	if(evq == NULL)
		return;
	if(ev->switched)
		push_one(GHA_EV_SWITCHOVER, pr, ev);
	if(ev->went_down)
		push_one(GHA_EV_DOWN, pr, ev);
	if(ev->went_up)
		push_one(GHA_EV_UP, pr, ev);
}

/* run one event's route on a faked message, $ha(...) showing its values,
 * tm's current transaction set aside */
static void run_one(const gha_ev_t *e)
{
	sip_msg_t *fmsg;
	gha_ctx_t *c, saved;
	struct cell *t;
	int branch;

	if(faked_msg_init() < 0) {
		LM_ERR("cannot initialize a faked message for %.*s\n",
				evname[e->kind].len, evname[e->kind].s);
		return;
	}
	t = gha_tmb.t_gett();
	branch = gha_tmb.t_gett_branch();
	gha_tmb.t_sett(T_UNDEFINED, T_BR_UNDEFINED);
	gha_ctx_save(&saved);
	fmsg = faked_msg_next();
	c = gha_ctx(fmsg);
	memcpy(c->pair, e->pair, (size_t)e->pair_len + 1);
	c->pair_len = e->pair_len;
	c->role = e->role;
	memcpy(c->member, e->member, (size_t)e->member_len + 1);
	c->member_len = e->member_len;
	c->state = e->state;
	c->trigger = e->trigger;
	memcpy(c->old_member, e->old_member, (size_t)e->old_member_len + 1);
	c->old_member_len = e->old_member_len;
	kg_run_event_route(
			rt[e->kind], &gha_event_callback, &evname[e->kind], fmsg);
	gha_ctx_restore(&saved);
	gha_tmb.t_sett(t, branch);
}

/* the event process: drain the queue (one event at a time: the lock is
 * never held while a route runs) */
static void events_timer(unsigned int ticks, void *param)
{
	gha_ev_t e;

	(void)ticks;
	(void)param;
	for(;;) {
		lock_get(&evq->lock);
		if(evq->count == 0) {
			lock_release(&evq->lock);
			return;
		}
		e = evq->ev[evq->head];
		evq->head = (evq->head + 1) % GHA_EV_QUEUE;
		evq->count--;
		lock_release(&evq->lock);
		if(gha_event_callback.len > 0 && sr_kemi_eng_get() == NULL)
			continue;
		run_one(&e);
	}
}

int gha_events_child_init(int rank)
{
	if(evq == NULL || rank != PROC_MAIN)
		return 0;
	if(fork_basic_utimer(PROC_TIMER, "GENESYS_HA EVENTS", 1, events_timer, NULL,
			   GHA_EV_INTERVAL_US)
			< 0) {
		LM_ERR("cannot start the genesys_ha event process\n");
		return -1;
	}
	return 0;
}
