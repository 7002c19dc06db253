/*
 * genesys_oos: probe scheduling (pure logic, no Kamailio deps)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

#ifndef _GOOS_SCHED_H_
#define _GOOS_SCHED_H_

#include <stdint.h>

#define GOOS_NEVER INT64_MAX

/*! probe timing of one target; every time is a monotonic clock in ms */
typedef struct goos_sched
{
	uint32_t seq;		 /*!< sequence number of the last probe sent */
	int pending;		 /*!< that probe is still waiting for its result */
	int want;			 /*!< an immediate probe was requested */
	int periodic;		 /*!< the pending probe is the periodic one */
	int64_t sent_ms;	 /*!< when the last probe was sent */
	int64_t deadline_ms; /*!< when it times out */
	int64_t next_due_ms; /*!< when the next periodic probe is due */
} goos_sched_t;

/*! how a reply relates to the probe state */
typedef enum goos_rpl_class
{
	GOOS_RPL_ON_TIME = 0, /*!< for the pending probe, before its deadline */
	GOOS_RPL_LATE = 1,	  /*!< for the last probe, after its deadline */
	GOOS_RPL_STALE = 2	  /*!< for an older probe (or a released slot) */
} goos_rpl_class_t;

/*! phase of target `id` inside a span: ids are spread by the golden ratio,
 * so any number of targets is spread evenly without knowing how many.
 * Phases are multiples of span / slots: probes leave in `slots` batches per
 * period (fewer wake-ups of the probe process and of the SIP workers that
 * read the replies; 1 = one burst, as dispatcher) */
int goos_sched_phase_ms(int id, int span_ms, int slots);

/*! a target starts being probed: first probe at now + its phase in span */
void goos_sched_start(
		goos_sched_t *s, int64_t now, int id, int span_ms, int slots);

/*! 1 when a probe must be sent now (requested, or periodic and due) */
int goos_sched_due(const goos_sched_t *s, int64_t now);

/*! a probe is sent: returns its sequence number */
uint32_t goos_sched_sent(goos_sched_t *s, int64_t now, int timeout_ms);

/*! 1 when the pending probe passed its deadline */
int goos_sched_expired(const goos_sched_t *s, int64_t now);

/*! the pending probe finished; period_ms (0 = no periodic probing) is the
 * period of the state the target is in now.  A periodic probe plans the
 * next one a period later (same phase); a requested one keeps the plan,
 * brought forward to a period after it when the period got shorter. */
void goos_sched_done(goos_sched_t *s, int64_t now, int period_ms);

/*! the probe period changed (oos_check or oos_force at run time): the next
 * probe is one new period after the last one sent, or now + phase_ms when
 * that is already past (or nothing was sent: sent_ms 0); period_ms 0: no periodic
 * probe.  A pending probe keeps its deadline; goos_sched_done() then plans
 * with the new period. */
void goos_sched_replan(
		goos_sched_t *s, int64_t now, int period_ms, int phase_ms);

/*! when the probe process must look at the target next: the deadline of
 * the pending probe, 0 (at once) for a requested probe, else the next
 * periodic probe (GOOS_NEVER: none) */
int64_t goos_sched_event(const goos_sched_t *s);

/*! classify a reply to probe `seq` received at rpl_ms */
goos_rpl_class_t goos_sched_classify(
		const goos_sched_t *s, uint32_t seq, int64_t rpl_ms);

/*! tm callback parameter carrying the target id and the probe sequence
 * number (never a pointer: the slot may be reused before tm calls back) */
void *goos_cbp_encode(int id, uint32_t seq);
void goos_cbp_decode(void *cbp, int *id, uint32_t *seq);

#endif
