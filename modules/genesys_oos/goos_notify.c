/*
 * genesys_oos: state-change notification (logs, events, stats, callbacks)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_oos :: what happens when a target changes state
 *
 * Runs in the process that saw the change (the probe timer process for
 * probe results, an RPC process for set_state), never under the table lock.
 */

#include <string.h>

#include "core/dprint.h"
#include "core/mem/pkg.h"
#include "core/route.h"
#include "core/fmsg.h"
#include "core/kemi.h"
#include "core/action.h"

#include "goos_notify.h"
#include "goos_probe.h"
#include "common/kg_evroute.h"

str goos_event_callback = STR_NULL;

counter_handle_t goos_cnt_probes;
counter_handle_t goos_cnt_replies;
counter_handle_t goos_cnt_late;
counter_handle_t goos_cnt_timeouts;
counter_handle_t goos_cnt_transport;
counter_handle_t goos_cnt_changes;

/* clang-format off */
static counter_def_t goos_counters[] = {
	{&goos_cnt_probes, "probes_sent", 0, 0, 0,
		"OPTIONS probes sent"},
	{&goos_cnt_replies, "replies", 0, 0, 0,
		"final replies received from targets (any code, in time or late)"},
	{&goos_cnt_late, "late_replies", 0, 0, 0,
		"replies received after the probe deadline (oos_timeout)"},
	{&goos_cnt_timeouts, "timeouts", 0, 0, 0,
		"probes unanswered within oos_timeout"},
	{&goos_cnt_transport, "transport_errors", 0, 0, 0,
		"probes failed at the transport level (ICMP unreachable, "
		"refused or reset connection, send failure)"},
	{&goos_cnt_changes, "state_changes", 0, 0, 0,
		"changes of a target's effective state"},
	{0, 0, 0, 0, 0, 0}
};
/* clang-format on */

static const char *const goos_reason_names[] = {
		[GOOS_R_REPLY] = "reply",
		[GOOS_R_TIMEOUT] = "timeout",
		[GOOS_R_TRANSPORT] = "transport",
		[GOOS_R_FORCED] = "forced",
		[GOOS_R_AUTO] = "auto",
		[GOOS_R_REMOTE] = "remote",
};

/* Kamailio 5.6's cfg lexer takes [a-zA-Z][0-9a-zA-Z-]* before the ':' of
 * an event route name: "genesys_oos:x" would silently become "oos:x" (the
 * "genesys_" is echoed to stdout), so the routes are named genesys-oos:... */
static str goos_evrt_names[] = {
		[GOOS_UNKNOWN] = STR_NULL,
		[GOOS_ACTIVE] = str_init("genesys-oos:target-up"),
		[GOOS_INACTIVE] = str_init("genesys-oos:target-inactive"),
		[GOOS_DOWN] = str_init("genesys-oos:target-down"),
};
/* what the lexer makes of event_route[genesys_oos:...] */
static char *goos_evrt_mangled[] = {
		NULL, "oos:target-up", "oos:target-inactive", "oos:target-down"};
static int goos_evrt[] = {-1, -1, -1, -1};

#define GOOS_MAX_SUBS 16
static struct
{
	goos_state_cb_f cb;
	void *param;
} goos_subs[GOOS_MAX_SUBS];
static int goos_nsubs = 0;
static int goos_sealed = 0;

static struct
{
	goos_result_cb_f cb;
	void *param;
} goos_rsubs[GOOS_MAX_SUBS];
static int goos_nrsubs = 0;

/* probe results completed under the table lock, delivered after it
 * (process-local; the probe process reserves room for a whole pass, a SIP
 * worker completes one probe per reply) */
#define GOOS_RES_LOCAL 4
static goos_probe_result_t goos_res_local[GOOS_RES_LOCAL];
static goos_probe_result_t *goos_resq = goos_res_local;
static int goos_resq_cap = GOOS_RES_LOCAL;
static int goos_nres = 0;
static unsigned long goos_res_lost = 0;

/* the change being notified, for $goos(...) (process-local) */
static goos_change_rec_t *goos_cur = NULL;

const char *goos_reason_name(int reason)
{
	if(reason < 0 || reason > GOOS_R_AUTO)
		return "invalid";
	return goos_reason_names[reason];
}

int goos_notify_init(void)
{
	int i;

	if(counter_register_array("genesys_oos", goos_counters) < 0) {
		LM_ERR("cannot register the genesys_oos counters\n");
		return -1;
	}
	if(goos_event_callback.len > 0)
		return 0;
	for(i = GOOS_ACTIVE; i <= GOOS_DOWN; i++) {
		goos_evrt[i] = route_lookup(&event_rt, goos_evrt_names[i].s);
		if(goos_evrt[i] >= 0 && event_rt.rlist[goos_evrt[i]] == NULL)
			goos_evrt[i] = -1;
		if(route_lookup(&event_rt, goos_evrt_mangled[i]) >= 0) {
			LM_ERR("event_route[genesys_oos:%s] cannot work: Kamailio's "
				   "config parser does not allow '_' before ':' in event "
				   "route names; name it event_route[%s]\n",
					goos_evrt_mangled[i] + 4, goos_evrt_names[i].s);
			return -1;
		}
		LM_DBG("event_route[%s] %s\n", goos_evrt_names[i].s,
				goos_evrt[i] >= 0 ? "defined" : "not defined");
	}
	return 0;
}

int goos_notify_subscribe(goos_state_cb_f cb, void *param)
{
	if(cb == NULL)
		return -1;
	if(goos_sealed) {
		LM_ERR("genesys_oos subscribe() is allowed in mod_init only\n");
		return -1;
	}
	if(goos_nsubs >= GOOS_MAX_SUBS) {
		LM_ERR("too many genesys_oos subscribers (max %d)\n", GOOS_MAX_SUBS);
		return -1;
	}
	goos_subs[goos_nsubs].cb = cb;
	goos_subs[goos_nsubs].param = param;
	goos_nsubs++;
	return 0;
}

int goos_notify_subscribe_results(goos_result_cb_f cb, void *param)
{
	if(cb == NULL)
		return -1;
	if(goos_sealed) {
		LM_ERR("genesys_oos subscribe_results() is allowed in mod_init "
			   "only\n");
		return -1;
	}
	if(goos_nrsubs >= GOOS_MAX_SUBS) {
		LM_ERR("too many genesys_oos result subscribers (max %d)\n",
				GOOS_MAX_SUBS);
		return -1;
	}
	goos_rsubs[goos_nrsubs].cb = cb;
	goos_rsubs[goos_nrsubs].param = param;
	goos_nrsubs++;
	return 0;
}

int goos_notify_results_reserve(int n)
{
	goos_probe_result_t *q;

	if(goos_nrsubs == 0 || n <= goos_resq_cap)
		return 0;
	q = (goos_probe_result_t *)pkg_malloc(sizeof(*q) * (size_t)n);
	if(q == NULL) {
		PKG_MEM_ERROR;
		return -1;
	}
	memcpy(q, goos_resq, sizeof(*q) * (size_t)goos_nres);
	if(goos_resq != goos_res_local)
		pkg_free(goos_resq);
	goos_resq = q;
	goos_resq_cap = n;
	return 0;
}

void goos_notify_result_push(
		int id, goos_state_t result, int code, int64_t sent_ms)
{
	goos_probe_result_t *r;

	if(goos_nrsubs == 0)
		return;
	if(goos_nres >= goos_resq_cap) {
		goos_res_lost++; /* logged after the lock */
		return;
	}
	r = &goos_resq[goos_nres++];
	r->id = id;
	r->result = result;
	r->code = code;
	r->sent_ms = sent_ms;
}

void goos_notify_results(void)
{
	int i, k, n = goos_nres;

	if(goos_res_lost) {
		LM_ERR("%lu probe results not passed to subscribers (queue of %d "
			   "full)\n",
				goos_res_lost, goos_resq_cap);
		goos_res_lost = 0;
	}
	goos_nres = 0;
	for(i = 0; i < n; i++)
		for(k = 0; k < goos_nrsubs; k++)
			goos_rsubs[k].cb(&goos_resq[i], goos_rsubs[k].param);
}

void goos_notify_seal(void)
{
	goos_sealed = 1;
}

static void goos_log_change(goos_change_rec_t *rec)
{
	const char *os = goos_health_state_name(rec->ch.old_state);
	const char *ns = goos_health_state_name(rec->ch.new_state);
	const char *via = rec->sock.len ? " via " : "";

	if(rec->ch.new_state == GOOS_ACTIVE) {
		LM_NOTICE("target %.*s%s%.*s state %s -> %s (%s)\n", rec->ch.uri.len,
				rec->ch.uri.s, via, rec->sock.len, rec->sock.s, os, ns,
				rec->detail);
	} else {
		LM_WARN("target %.*s%s%.*s state %s -> %s (%s)\n", rec->ch.uri.len,
				rec->ch.uri.s, via, rec->sock.len, rec->sock.s, os, ns,
				rec->detail);
	}
}

static void goos_run_event(goos_change_rec_t *rec)
{
	int rt = -1;
	sip_msg_t *fmsg;
	str *evname = &goos_evrt_names[rec->ch.new_state];
	void *bk_t;
	int bk_branch;

	if(evname->s == NULL)
		return;
	if(goos_event_callback.len > 0) {
		if(sr_kemi_eng_get() == NULL)
			return;
	} else {
		rt = goos_evrt[rec->ch.new_state];
		if(rt < 0)
			return;
	}
	if(faked_msg_init() < 0) {
		LM_ERR("faked_msg_init() failed\n");
		return;
	}
	fmsg = faked_msg_next();
	/* not the probe's transaction (we may be in its tm callback) */
	goos_tm_ctx_push(&bk_t, &bk_branch);
	kg_run_event_route(rt, &goos_event_callback, evname, fmsg);
	goos_tm_ctx_pop(bk_t, bk_branch);
}

void goos_notify(goos_change_rec_t *rec)
{
	int i;
	goos_change_rec_t *prev;

	/* the record may have been copied: re-point its strings */
	rec->ch.uri.s = rec->uri_buf;
	rec->sock.s = rec->sock_buf;

	counter_inc(goos_cnt_changes);
	goos_log_change(rec);
	prev = goos_cur;
	goos_cur = rec;
	for(i = 0; i < goos_nsubs; i++)
		goos_subs[i].cb(&rec->ch, goos_subs[i].param);
	goos_run_event(rec);
	goos_cur = prev;
}

/* $goos(key) */
enum
{
	GOOS_PV_URI = 0,
	GOOS_PV_STATE,
	GOOS_PV_OLD_STATE,
	GOOS_PV_REASON,
	GOOS_PV_CODE,
	GOOS_PV_SOCKET,
	GOOS_PV_ID,
	GOOS_PV_RTT
};

static const char *const goos_pv_keys[] = {
		[GOOS_PV_URI] = "uri",
		[GOOS_PV_STATE] = "state",
		[GOOS_PV_OLD_STATE] = "old_state",
		[GOOS_PV_REASON] = "reason",
		[GOOS_PV_CODE] = "code",
		[GOOS_PV_SOCKET] = "socket",
		[GOOS_PV_ID] = "id",
		[GOOS_PV_RTT] = "rtt",
};

int goos_pv_parse_name(pv_spec_t *sp, str *in)
{
	int i;

	if(sp == NULL || in == NULL || in->len <= 0)
		return -1;
	for(i = 0; i < (int)(sizeof(goos_pv_keys) / sizeof(goos_pv_keys[0])); i++) {
		if(strlen(goos_pv_keys[i]) == (size_t)in->len
				&& strncmp(in->s, goos_pv_keys[i], in->len) == 0) {
			sp->pvp.pvn.type = PV_NAME_INTSTR;
			sp->pvp.pvn.u.isname.type = 0;
			sp->pvp.pvn.u.isname.name.n = i;
			return 0;
		}
	}
	LM_ERR("unknown $goos key [%.*s] (use uri, state, old_state, reason, "
		   "code, socket, id or rtt)\n",
			in->len, in->s);
	return -1;
}

int goos_pv_get(sip_msg_t *msg, pv_param_t *param, pv_value_t *res)
{
	str s;

	if(goos_cur == NULL || param == NULL)
		return pv_get_null(msg, param, res);
	switch(param->pvn.u.isname.name.n) {
		case GOOS_PV_URI:
			return pv_get_strval(msg, param, res, &goos_cur->ch.uri);
		case GOOS_PV_STATE:
			s.s = (char *)goos_health_state_name(goos_cur->ch.new_state);
			s.len = strlen(s.s);
			return pv_get_strval(msg, param, res, &s);
		case GOOS_PV_OLD_STATE:
			s.s = (char *)goos_health_state_name(goos_cur->ch.old_state);
			s.len = strlen(s.s);
			return pv_get_strval(msg, param, res, &s);
		case GOOS_PV_REASON:
			s.s = (char *)goos_reason_name(goos_cur->ch.reason);
			s.len = strlen(s.s);
			return pv_get_strval(msg, param, res, &s);
		case GOOS_PV_CODE:
			return pv_get_sintval(msg, param, res, goos_cur->ch.code);
		case GOOS_PV_SOCKET:
			if(goos_cur->sock.len == 0)
				return pv_get_null(msg, param, res);
			return pv_get_strval(msg, param, res, &goos_cur->sock);
		case GOOS_PV_ID:
			return pv_get_sintval(msg, param, res, goos_cur->ch.id);
		case GOOS_PV_RTT:
			return pv_get_sintval(msg, param, res, goos_cur->rtt_ms);
	}
	return pv_get_null(msg, param, res);
}
