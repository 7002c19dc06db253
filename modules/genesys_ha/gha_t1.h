/*
 * genesys_ha module: the T1 check (pure logic, no Kamailio runtime)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: T1 check: a ring of recently relayed requests and
 * the verdict on one branch
 *
 * The ring: many writers (SIP workers, lock-free: one atomic increment and
 * a release store each), one reader (the T1 timer process).  A slot carries
 * the write index + 1 once filled, so the reader tells a slot still being
 * written (seq behind) from one already overwritten by a later lap (seq
 * ahead); a reader that fell more than a lap behind skips the lost ones.
 */

#ifndef _GHA_T1_H_
#define _GHA_T1_H_

#include <stddef.h>

typedef struct gha_t1_slot
{
	unsigned int seq;  /*!< write index + 1 once filled (release) */
	unsigned int hash; /*!< tm hash index of the request */
	unsigned int at;   /*!< when it was noted (caller's clock, ms or ticks) */
} gha_t1_slot_t;

typedef struct gha_t1_ring
{
	unsigned int head; /*!< next write index (atomic) */
	unsigned int mask; /*!< slots - 1 */
	gha_t1_slot_t slot[];
} gha_t1_ring_t;

/*! slots for at least want entries (a power of 2); bytes in *size */
unsigned int gha_t1_ring_slots(unsigned int want, size_t *size);
/*! initialise a zeroed block of gha_t1_ring_slots()'s size */
void gha_t1_ring_init(gha_t1_ring_t *r, unsigned int slots);
/*! writer (any process) */
void gha_t1_ring_put(gha_t1_ring_t *r, unsigned int hash, unsigned int at);

/*! the single reader's position */
typedef struct gha_t1_reader
{
	unsigned int tail;
	unsigned int lost; /*!< entries skipped: overwritten before read */
} gha_t1_reader_t;

/*! the oldest unread entry: 1 and *hash, *at; 0 when none is readable yet
 * (empty, or the next one is still being written) */
int gha_t1_ring_peek(gha_t1_ring_t *r, gha_t1_reader_t *rd, unsigned int *hash,
		unsigned int *at);
/*! done with the entry peek returned */
void gha_t1_ring_next(gha_t1_reader_t *rd);

/*! verdict on one branch */
enum gha_t1_verdict
{
	GHA_T1_DONE = 0, /*!< answered, or nothing to learn from it */
	GHA_T1_WAIT = 1, /*!< its first retransmission is not due yet */
	GHA_T1_PROBE = 2 /*!< neither sent nor retransmitted request answered */
};

/*! a UDP branch, last_received its last reply code (0: none), next_retr_ms
 * tm's next retransmission interval (2*T1 before the first retransmission,
 * doubled by each), t1_ms the transaction's T1, age_ms since the request
 * was noted, slack_ms how long a late retransmission is waited for */
int gha_t1_verdict(int last_received, unsigned long next_retr_ms,
		unsigned long t1_ms, unsigned int age_ms, unsigned int slack_ms);

#endif
