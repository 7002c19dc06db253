/*
 * genesys_ha module: transactions pending on a pool member
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: no caller waits for a dead member
 *
 * - Member down: when genesys_oos declares a member down (timeout or
 *   transport error), every relayed transaction with a branch to it that
 *   has no final reply yet ends that branch at once, the way tm's own
 *   final-response timer would: a local 408 on the branch, failure_route
 *   runs (HA_FAILOVER re-branches to the active member, also after a 1xx),
 *   or the caller gets the 408.  Found by one walk of tm's transaction
 *   table: nothing is tracked per request.
 * - T1 probe: a UDP request sent to a member through ha_select*() /
 *   ha_route_in_dialog() / ha_failover() leaves its tm hash index in a
 *   fixed shm ring (no allocation, no lock); a timer process looks at it
 *   once the first retransmission is due and asks genesys_oos to probe a
 *   member that has not answered it (neither the request nor its first
 *   retransmission).
 */

#ifndef _GHA_PENDING_H_
#define _GHA_PENDING_H_

#include "core/parser/msg_parser.h"

/* module parameters */
extern int gha_end_pending; /*!< end branches to a member that went down */
extern int gha_t1_probe;	/*!< probe a member silent after T1 */
extern int gha_t1_slots;	/*!< ring size (rounded up to a power of 2) */

/*! mod_init (tm bound): counters, ring, timer process registration */
int gha_pending_init(void);
/*! child_init: forks the T1 timer process (rank PROC_MAIN) */
int gha_pending_child_init(int rank);
void gha_pending_destroy(void);

/*! request path: msg is about to be relayed to a member over proto
 * (enum gha_proto); remembers it for the T1 check (UDP only) */
void gha_pending_note(sip_msg_t *msg, int proto);

/*! the member(s) probed as goos target goos_id went down: end the branches
 * waiting for them; returns the number of branches ended */
int gha_pending_member_down(int goos_id);

#endif
