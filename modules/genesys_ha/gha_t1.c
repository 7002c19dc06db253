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
 * \brief genesys_ha :: T1 check (see gha_t1.h)
 */

#include "gha_t1.h"

unsigned int gha_t1_ring_slots(unsigned int want, size_t *size)
{
	unsigned int n = 1;

	while(n < want && n < (1U << 30))
		n <<= 1;
	if(size)
		*size = sizeof(gha_t1_ring_t) + (size_t)n * sizeof(gha_t1_slot_t);
	return n;
}

void gha_t1_ring_init(gha_t1_ring_t *r, unsigned int slots)
{
	r->head = 0;
	r->mask = slots - 1;
}

void gha_t1_ring_put(gha_t1_ring_t *r, unsigned int hash, unsigned int at)
{
	unsigned int i = __atomic_fetch_add(&r->head, 1, __ATOMIC_RELAXED);
	gha_t1_slot_t *s = &r->slot[i & r->mask];

	s->hash = hash;
	s->at = at;
	__atomic_store_n(&s->seq, i + 1, __ATOMIC_RELEASE);
}

int gha_t1_ring_peek(gha_t1_ring_t *r, gha_t1_reader_t *rd, unsigned int *hash,
		unsigned int *at)
{
	unsigned int head, seq;
	gha_t1_slot_t *s;

	for(;;) {
		head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
		if(head - rd->tail > r->mask + 1) {
			/* lapped: the oldest entries are gone */
			rd->lost += head - rd->tail - (r->mask + 1);
			rd->tail = head - (r->mask + 1);
		}
		if(rd->tail == head)
			return 0;
		s = &r->slot[rd->tail & r->mask];
		seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
		if(seq == rd->tail + 1) {
			*hash = s->hash;
			*at = s->at;
			/* still ours after the reads: not overwritten meanwhile */
			if(__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) == seq)
				return 1;
		}
		if((int)(seq - (rd->tail + 1)) < 0)
			return 0; /* being written: next time */
		/* overwritten by a later lap */
		rd->lost++;
		rd->tail++;
	}
}

void gha_t1_ring_next(gha_t1_reader_t *rd)
{
	rd->tail++;
}

int gha_t1_verdict(int last_received, unsigned long next_retr_ms,
		unsigned long t1_ms, unsigned int age_ms, unsigned int slack_ms)
{
	if(last_received != 0)
		return GHA_T1_DONE; /* a reply, provisional or final */
	/* _set_fr_retr() starts with 2*T1 as the next interval; the first
	 * retransmission doubles it */
	if(next_retr_ms > 2 * t1_ms)
		return GHA_T1_PROBE;
	if(age_ms < 2 * t1_ms + slack_ms)
		return GHA_T1_WAIT;
	return GHA_T1_DONE; /* retransmissions stopped or slowed: not ours */
}
