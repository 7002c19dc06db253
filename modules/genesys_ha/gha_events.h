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
 * \brief genesys_ha :: event routes in one place
 *
 * A pair event (switchover, pair-down, pair-up) happens in whatever process
 * decided it: the genesys_oos probe process (in its state callback), a SIP
 * worker or tm's timer process (failure_route, under tm's reply lock), the
 * RPC process.  Logs and counters stay there; the event route
 * (event_route[genesys-ha:...] or the KEMI event_callback) runs in the
 * "genesys_ha events" process: emit() copies the event's values into a
 * bounded queue in shm, the process drains it every GHA_EV_INTERVAL_US with
 * tm's current transaction set aside, and $ha(...) in the route shows the
 * event's values.  No route configured: no queue, no process.
 */

#ifndef _GHA_EVENTS_H_
#define _GHA_EVENTS_H_

#include "gha_pool.h"
#include "gha_pair.h"

#define GHA_EV_QUEUE 256		 /*!< events waiting at most */
#define GHA_EV_INTERVAL_US 20000 /*!< the process's period */

enum gha_ev_kind
{
	GHA_EV_SWITCHOVER = 0,
	GHA_EV_DOWN = 1,
	GHA_EV_UP = 2,
	GHA_EV_PEER_DOWN = 3, /*!< a proxy of the pool went silent (DMQ) */
	GHA_EV_PEER_UP = 4	  /*!< a proxy of the pool is heard (again) */
};
#define GHA_EV_KINDS 5

/*! which event routes exist; after the routes are parsed (mod_init),
 * before gha_events_init() */
void gha_events_lookup(int rt_switchover, int rt_down, int rt_up);
/*! the peer event routes (DMQ), like gha_events_lookup() */
void gha_events_lookup_peers(int rt_peer_down, int rt_peer_up);
/*! the queue in shm and the process registration (mod_init); 0 ok */
int gha_events_init(void);
/*! fork the event process (child_init, PROC_MAIN); 0 ok */
int gha_events_child_init(int rank);
void gha_events_destroy(void);

/*! queue the event routes of one pair's events (any process, no lock
 * of the caller's held); dropped with a warning when the queue is full */
void gha_events_push(const gha_pair_t *pr, const gha_pair_events_t *ev);

/*! queue a peer event route (GHA_EV_PEER_*): $ha(member) shows the
 * peer's address */
void gha_events_push_peer(int kind, const char *addr);

#endif
