/*
 * genesys_oos: probe scheduling (pure logic, no Kamailio deps)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

#include "goos_sched.h"

/* 2^32 / golden ratio */
#define GOOS_GOLDEN32 2654435769u

int goos_sched_phase_ms(int id, int span_ms, int slots)
{
	uint32_t frac;

	if(span_ms <= 0 || id <= 0)
		return 0;
	int quantum = slots > 0 ? span_ms / slots : 1;
	int ph;

	frac = (uint32_t)id * GOOS_GOLDEN32;
	ph = (int)(((uint64_t)frac * (uint64_t)span_ms) >> 32);
	if(quantum > 1)
		ph -= ph % quantum;
	return ph;
}

void goos_sched_start(
		goos_sched_t *s, int64_t now, int id, int span_ms, int slots)
{
	/* keep `want`: a report may arrive before the first probe */
	s->pending = 0;
	s->next_due_ms = now + goos_sched_phase_ms(id, span_ms, slots);
}

int goos_sched_due(const goos_sched_t *s, int64_t now)
{
	if(s->pending)
		return 0;
	return s->want || now >= s->next_due_ms;
}

uint32_t goos_sched_sent(goos_sched_t *s, int64_t now, int timeout_ms)
{
	s->periodic = (now >= s->next_due_ms);
	s->seq++;
	s->pending = 1;
	s->want = 0;
	s->sent_ms = now;
	s->deadline_ms = now + timeout_ms;
	return s->seq;
}

int goos_sched_expired(const goos_sched_t *s, int64_t now)
{
	return s->pending && now >= s->deadline_ms;
}

void goos_sched_done(goos_sched_t *s, int64_t now, int period_ms)
{
	int64_t next;

	s->pending = 0;
	if(period_ms <= 0) {
		s->next_due_ms = GOOS_NEVER;
		return;
	}
	if(s->periodic || s->next_due_ms == GOOS_NEVER) {
		next = (s->periodic ? s->next_due_ms : s->sent_ms) + period_ms;
	} else {
		next = s->sent_ms + period_ms;
		if(s->next_due_ms < next)
			next = s->next_due_ms;
	}
	/* never a period in the past (a long pause of the timer process): the
	 * next phase after now.  Less late is just due now: a probe whose
	 * deadline is its next periodic time (oos_timeout = period) ends a
	 * millisecond after that time and must not skip a period. */
	if(now - next >= period_ms)
		next += ((now - next) / period_ms + 1) * period_ms;
	s->next_due_ms = next;
}

void goos_sched_replan(
		goos_sched_t *s, int64_t now, int period_ms, int phase_ms)
{
	int64_t next;

	if(s->pending)
		return; /* goos_sched_done() plans with the new period */
	if(period_ms <= 0) {
		s->next_due_ms = GOOS_NEVER;
		return;
	}
	next = s->sent_ms + period_ms; /* sent_ms 0: never sent */
	if(next < now)
		next = now + phase_ms;
	s->next_due_ms = next;
}

int64_t goos_sched_event(const goos_sched_t *s)
{
	if(s->pending)
		return s->deadline_ms;
	if(s->want)
		return 0;
	return s->next_due_ms;
}

goos_rpl_class_t goos_sched_classify(
		const goos_sched_t *s, uint32_t seq, int64_t rpl_ms)
{
	if(seq != s->seq)
		return GOOS_RPL_STALE;
	if(s->pending && rpl_ms < s->deadline_ms)
		return GOOS_RPL_ON_TIME;
	return GOOS_RPL_LATE;
}

#define GOOS_CBP_ID_BITS 24
_Static_assert(sizeof(uintptr_t) >= 8,
		"the tm callback parameter carries a 32-bit sequence and a 24-bit id");

void *goos_cbp_encode(int id, uint32_t seq)
{
	uintptr_t v = ((uintptr_t)seq << GOOS_CBP_ID_BITS)
				  | ((uintptr_t)id & ((1u << GOOS_CBP_ID_BITS) - 1));
	return (void *)v;
}

void goos_cbp_decode(void *cbp, int *id, uint32_t *seq)
{
	uintptr_t v = (uintptr_t)cbp;

	*id = (int)(v & ((1u << GOOS_CBP_ID_BITS) - 1));
	*seq = (uint32_t)(v >> GOOS_CBP_ID_BITS);
}
