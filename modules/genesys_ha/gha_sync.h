/*
 * genesys_ha module: pool-wide decisions (pure logic, no Kamailio runtime)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: which switchover decision wins across the pool, and
 * the text the proxies exchange over DMQ (issue 11)
 *
 * Every pair carries an epoch (generation) and the origin (host:port of
 * the proxy in the pool file) of its last switchover decision.  A proxy
 * that decides a switchover itself takes the highest epoch it knows plus
 * one and publishes (pair, active member, epoch, origin); a proxy that
 * receives a decision applies it when it is newer than the one it has:
 *   - the higher epoch wins;
 *   - equal epochs: the decision whose origin has the lowest address wins
 *     (IPv4/IPv6 addresses compared as numbers, then the port; anything
 *     else as text), so that two decisions made at once on two proxies
 *     end the same way everywhere.
 *
 * Message body (text/plain, lines ending in "\n"):
 *   GHA1 <kind> <sender host:port>
 *   <pair> <active 0|1> <epoch> <origin host:port> <m0> <m1> <trigger>
 *   ...
 * kind: D (a decision: one pair), S (state of every pair: periodic),
 * Q (query: a (re)started proxy asks for the state; answered by an R body
 * in the 200 reply).  m0, m1: the sender's probe states of the primary and
 * the backup (gha_mstate_t); trigger: gha_trigger_t of the decision.
 */

#ifndef _GHA_SYNC_H_
#define _GHA_SYNC_H_

#include "gha_pair.h"

#define GHA_SYNC_ORIGIN_MAX 64
#define GHA_SYNC_PAIR_MAX 64 /*!< GHA_NAME_MAX */
#define GHA_SYNC_MAGIC "GHA1"

enum gha_sync_kind
{
	GHA_SYNC_DECISION = 'D',
	GHA_SYNC_STATE = 'S',
	GHA_SYNC_QUERY = 'Q',
	GHA_SYNC_REPLY = 'R'
};

typedef struct gha_decision
{
	char pair[GHA_SYNC_PAIR_MAX + 1];
	int active;			 /*!< GHA_PRIMARY or GHA_BACKUP */
	unsigned long epoch; /*!< 0: no decision yet (the start state) */
	char origin[GHA_SYNC_ORIGIN_MAX + 1];
	int mstate[2]; /*!< the sender's probe states */
	int trigger;   /*!< gha_trigger_t */
} gha_decision_t;

/*! compare two origins: < 0 when a is the lower address */
int gha_sync_origin_cmp(const char *a, const char *b);

/*! > 0 when decision (ea, oa) is newer than (eb, ob), < 0 older, 0 same */
int gha_sync_cmp(
		unsigned long ea, const char *oa, unsigned long eb, const char *ob);

/*! the header line; its length or -1 when it does not fit */
int gha_sync_fmt_header(char *buf, int size, int kind, const char *sender);
/*! one decision line; its length or -1 when it does not fit */
int gha_sync_fmt_line(char *buf, int size, const gha_decision_t *d);

/*! parse the header of body[0..len); 0 ok (kind, sender set, *next the
 * offset of the first line), -1 not ours or malformed */
int gha_sync_parse_header(const char *body, int len, int *kind, char *sender,
		int sender_size, int *next);
/*! parse the line starting at body[*pos]; 1 a decision (*pos advanced),
 * 0 end of body, -1 malformed line (*pos advanced past it) */
int gha_sync_parse_line(const char *body, int len, int *pos, gha_decision_t *d);

/*!
 * apply a decision of the pool to a pair's state: switch to 'active'
 * (trigger GHA_TRIG_PEER) when it is not the active member already; the
 * pair state follows this proxy's own probe states of the new member.
 * Returns 1 when it switched (ev filled), 0 otherwise.
 */
int gha_sync_apply(
		gha_pair_state_t *st, int active, long now, gha_pair_events_t *ev);

/*!
 * distributed probing: the rank of live[who] among the n live proxies
 * live[0..n) for probing `member` (its destination): rendezvous hashing
 * of (member, proxy address), highest score first, ties by address.  The
 * k proxies of rank < k probe the member; every proxy computes the same
 * ranks from the same live set, and when a proxy goes only its members
 * move.  Returns -1 when who is out of range.
 */
int gha_sync_prober_rank(
		const char *member, const char *const *live, int n, int who);

#endif
