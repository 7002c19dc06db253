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
 * \brief genesys_ha :: what the three DMQ files share (not for the rest of
 * the module: it uses gha_dmq.h)
 *
 * - gha_dmq.c: the transport (dmq peer "genesys_ha", the "GENESYS_HA DMQ"
 *   process, sending, receiving, the start sync) and this shared root;
 * - gha_dmq_peers.c: the table of the pool's other proxies (up, down,
 *   their epochs) and its RPC genesys_ha.peers;
 * - gha_dmq_msg.c: what the messages say (decisions, state bodies) and
 *   what a received one does (apply, distributed probing).
 *
 * Locks: gha_droot->lock guards the peer table, the decision queue and the
 * start-sync record; gha_root->lock (gha_state.h) the pairs' epochs.  The
 * two are never held together.
 */

#ifndef _GHA_DMQ_INT_H_
#define _GHA_DMQ_INT_H_

#include "core/locking.h"
#include "core/counters.h"
#include "core/str.h"

#include "gha_dmq.h"
#include "gha_sync.h"
#include "gha_params.h"

#define GHA_DMQ_PEERS GHA_DMQ_PEERS_MAX /*!< peers shown and tracked at most */
#define GHA_DMQ_QUEUE 256				/*!< decisions waiting to be sent */
#define GHA_DMQ_TICK_US 2000			/*!< the DMQ process's period */
#define GHA_DMQ_BODY_MAX 1300	/*!< bytes per message (one UDP datagram) */
#define GHA_DMQ_REPLY_MAX 60000 /*!< bytes of the answer to a query */
#define GHA_DMQ_EPOCHS_MAX 256	/*!< text of a peer's epochs (RPC) */

enum
{
	GHA_PEER_UNKNOWN = 0,
	GHA_PEER_UP = 1,
	GHA_PEER_DOWN = 2
};

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

typedef struct gha_dmq_counters
{
	counter_handle_t sent, received, applied, dropped, peer_down;
} gha_dmq_counters_t;

/* gha_dmq.c */
extern gha_dmq_root_t *gha_droot; /*!< shm; NULL without dmq 1 */
extern char gha_dmq_self[GHA_SYNC_ORIGIN_MAX + 1]; /*!< own_address */
extern gha_dmq_counters_t gha_dcnt;
/*! dmq 1 and the dmq peer registered */
int gha_dmq_on(void);

/* gha_dmq_peers.c */
/*! a message from peer 'addr' arrived (epochs: its summary, or NULL) */
void gha_dmq_peer_seen(const char *addr, const char *epochs);
/*! a peer heard continuously for dmq_peer_timeout ms */
int gha_dmq_peer_settled(const char *addr);
/*! the live proxies (this one first, then every peer up, and 'extra'
 * when given and not there) into addr/live; their count */
int gha_dmq_live_set(char (*addr)[GHA_SYNC_ORIGIN_MAX + 1], const char **live,
		int max, const char *extra);
/*! the DMQ process, every dmq_interval: peers silent too long are down
 * (40002), those gone from the pool file forgotten */
void gha_dmq_check_peers(gha_pool_t *p, long now_ms);

/* gha_dmq_msg.c */
/*! distributed probing: the members this proxy probes, probed here */
void gha_dmq_probe_assign(gha_pool_t *p);
/*! apply every line of a received body (from 'pos'); 'sum' gets the
 * epochs summary for the sender's peer record */
void gha_dmq_apply_body(gha_pool_t *p, const char *body, int len, int pos,
		const char *sender, char *sum, int sumsize);
/*! every pair's state as bodies of at most 'max' bytes; calls send(body)
 * per body; returns the number of bodies */
int gha_dmq_state_bodies(gha_pool_t *p, int kind, int max,
		void (*send)(str *body, void *arg), void *arg);

#endif
