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
 * \brief genesys_ha :: switchover decisions shared by the proxies of a
 * pool over DMQ (issue 11; the rules are in gha_sync.h)
 *
 * With modparam("genesys_ha", "dmq", 1) and the dmq module loaded, every
 * switchover this proxy decides (probe, verified request from the backup,
 * relay failure, operator, recovery) takes a new epoch and is broadcast
 * to the pool's proxies as a DMQ message (peer "genesys_ha"); a decision
 * received with a newer epoch is applied at once and not re-published.
 * Every dmq_interval ms each proxy broadcasts the state of every pair (so
 * proxies that were cut off converge on the newest decision, and peers
 * know each other alive); a (re)started proxy asks its peers for their
 * state (query) and its routing functions wait for the answer (at most
 * dmq_sync_timeout ms after start).  Sending is done by the "GENESYS_HA
 * DMQ" process, never in a SIP worker: a dead peer never blocks routing.
 * Messages are accepted only from the addresses of the pool file's
 * <proxy> elements.  Without the parameter nothing of this runs.
 *
 * The code: gha_dmq.c (transport, process, init), gha_dmq_msg.c (what the
 * messages say and do), gha_dmq_peers.c (the peer table, genesys_ha.peers);
 * what they share is in gha_dmq_int.h.
 */

#ifndef _GHA_DMQ_H_
#define _GHA_DMQ_H_

#include "core/parser/msg_parser.h"
#include "core/rpc.h"
#include "gha_pool.h"
#include "gha_pair.h"

extern int gha_dmq_enable;		 /*!< modparam dmq (0/1) */
extern int gha_dmq_interval;	 /*!< ms between state broadcasts */
extern int gha_dmq_peer_timeout; /*!< ms of silence: peer down */
extern int gha_dmq_sync_timeout; /*!< ms a starting proxy waits */
extern int gha_dmq_probing;		 /*!< proxies probing each member, 0 all */

/*! mod_init, after the pool is loaded; 0 ok */
int gha_dmq_init(void);
/*! child_init: forks the DMQ process (PROC_MAIN); 0 ok */
int gha_dmq_child_init(int rank);
void gha_dmq_destroy(void);

/*! a switchover decided by this proxy (emit()): new epoch, published */
void gha_dmq_decided(gha_pool_t *p, int pi, const gha_pair_events_t *ev);

/*! a member's probe state changed (distributed probing: published at
 * once) */
void gha_dmq_member_changed(void);

/*! routing functions: wait (bounded) until the pool's state is known */
void gha_dmq_sync_wait(void);

/*! cfg ha_dmq_from_pool(): 1 the source is a pool proxy, -1 not (counted) */
int ki_ha_dmq_from_pool(sip_msg_t *msg);

/*! genesys_ha.peers */
void gha_dmq_rpc_peers(rpc_t *rpc, void *ctx);
extern const char *gha_dmq_rpc_peers_doc[];

#endif
