/*
 * genesys_oos: state-change notification (logs, events, stats, callbacks)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

#ifndef _GOOS_NOTIFY_H_
#define _GOOS_NOTIFY_H_

#include "core/counters.h"
#include "core/pvar.h"

#include "goos_target.h"

extern str goos_event_callback;

extern counter_handle_t goos_cnt_probes;
extern counter_handle_t goos_cnt_replies;
extern counter_handle_t goos_cnt_late;
extern counter_handle_t goos_cnt_timeouts;
extern counter_handle_t goos_cnt_transport;
extern counter_handle_t goos_cnt_changes;

/*! register counters and look up the event routes (mod_init) */
int goos_notify_init(void);

/*! add a state-change subscriber (mod_init only) */
int goos_notify_subscribe(goos_state_cb_f cb, void *param);
/*! add a probe-result subscriber (mod_init only) */
int goos_notify_subscribe_results(goos_result_cb_f cb, void *param);
/*! under the table lock: queue the result of a completed probe (nothing
 * without result subscribers); delivered by goos_notify_results() */
void goos_notify_result_push(
		int id, goos_state_t result, int code, int64_t sent_ms);
/*! call the result subscribers for the queued results; no lock held */
void goos_notify_results(void);
/*! the probe process: room for n results queued in one pass */
int goos_notify_results_reserve(int n);
/*! no more subscribers: called from child_init */
void goos_notify_seal(void);

/*! log, count, call subscribers and run the event route for one change;
 * must be called with no genesys_oos lock held */
void goos_notify(goos_change_rec_t *rec);

/*! $goos(key) */
int goos_pv_parse_name(pv_spec_t *sp, str *in);
int goos_pv_get(sip_msg_t *msg, pv_param_t *param, pv_value_t *res);

/*! name of a reason ("reply", "timeout", "transport", "forced", "auto") */
const char *goos_reason_name(int reason);

#endif
