/*
 * genesys_oos module: API for other modules
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_oos :: API exported to other modules (load_api pattern)
 *
 * Usage (in mod_init of the client module):
 *
 *   goos_api_t goos;
 *   if(goos_load_api(&goos) < 0) { LM_ERR("genesys_oos required\n"); return -1; }
 *   id = goos.register_target(&uri, NULL);
 *   goos.subscribe(my_cb, my_param);
 *
 * Targets are identified by a small integer id (>= 0) that stays valid until
 * the target is released.  Registering a target that already exists (same
 * URI and same send socket) returns the existing id and takes a reference.
 */

#ifndef _GENESYS_OOS_API_H_
#define _GENESYS_OOS_API_H_

#include <stdint.h>

#include "core/str.h"
#include "core/sr_module.h"

/*! target states, in the order of the RPC/log names */
typedef enum goos_state
{
	GOOS_UNKNOWN = 0, /*!< no result yet */
	GOOS_ACTIVE = 1,  /*!< answers OPTIONS with a final reply other than 503 */
	GOOS_INACTIVE = 2, /*!< answers 503: no new dialogs, existing ones continue */
	GOOS_DOWN = 3	  /*!< no answer in time, or transport error */
} goos_state_t;

/*! why a state changed (for callbacks, logs and events) */
typedef enum goos_reason
{
	GOOS_R_REPLY = 0,		/*!< a probe reply (code in the callback) */
	GOOS_R_TIMEOUT = 1,		/*!< probe unanswered within oos_timeout */
	GOOS_R_TRANSPORT = 2, /*!< ICMP unreachable, refused or reset connection */
	GOOS_R_FORCED = 3,		/*!< operator set_state */
	GOOS_R_AUTO = 4,		/*!< operator returned the target to auto */
	GOOS_R_REMOTE = 5		/*!< state from another proxy's probes
							   (genesys_ha distributed probing) */
} goos_reason_t;

/*! a state change, passed to subscribers */
typedef struct goos_change
{
	int id;				 /*!< target id */
	str uri;			 /*!< target URI (valid during the callback only) */
	goos_state_t old_state;
	goos_state_t new_state;
	goos_reason_t reason;
	int code; /*!< reply code for GOOS_R_REPLY, else 0 */
} goos_change_t;

/*! state-change callback; runs in the process that saw the change, with no
 * genesys_oos lock held; must not block */
typedef void (*goos_state_cb_f)(const goos_change_t *change, void *param);

/*! one completed probe (every probe, whether the state changed or not) */
typedef struct goos_probe_result
{
	int id; /*!< target id */
	/*! what this one probe showed: GOOS_ACTIVE (a final reply other than
	 * 503), GOOS_INACTIVE (503) or GOOS_DOWN (timeout, transport error);
	 * a forced state wins, as in get_state() */
	goos_state_t result;
	int code;		 /*!< reply code, 0 when there was no reply */
	int64_t sent_ms; /*!< when the probe was sent, now_ms() clock */
} goos_probe_result_t;

/*! probe-result callback; same process and rules as goos_state_cb_f */
typedef void (*goos_result_cb_f)(const goos_probe_result_t *res, void *param);

/*! register (or take another reference on) a target; uri may carry
 * ;transport=, sock is an optional send socket "proto:ip:port" (NULL: any).
 * Callable from mod_init and at runtime (e.g. from an RPC reload).
 * Returns id >= 0, or < 0 on error (bad URI, table full). */
typedef int (*goos_register_target_f)(str *uri, str *sock);
/*! register_target(); on a refusal, why in err ("the table is full
 * (max_targets=256)", ...; also logged) */
typedef int (*goos_register_target_err_f)(
		str *uri, str *sock, char *err, int errlen);
/*! drop one reference; the target stops being probed at the last one */
typedef int (*goos_release_target_f)(int id);
/*! id of a target by URI (first match), or -1 */
typedef int (*goos_lookup_f)(str *uri);
/*! current effective state (forced state wins); lock-free read */
typedef goos_state_t (*goos_get_state_f)(int id);
/*! subscribe to all state changes; only from mod_init */
typedef int (*goos_subscribe_f)(goos_state_cb_f cb, void *param);
/*! passive failure: probe the target at once (never marks DOWN by itself) */
typedef int (*goos_report_failure_f)(int id);
/*! passive alive signal: a DOWN/UNKNOWN target is probed at once */
typedef int (*goos_report_alive_f)(int id);
/*! request an immediate probe */
typedef int (*goos_probe_now_f)(int id);
/*! subscribe to every completed probe; only from mod_init */
typedef int (*goos_subscribe_results_f)(goos_result_cb_f cb, void *param);
/*! the monotonic clock of goos_probe_result_t.sent_ms, in ms */
typedef int64_t (*goos_now_ms_f)(void);
/*! distributed probing: remote != 0: the target is not probed
 * periodically here (a probe_now still goes out) and its effective state is
 * `state`, as another proxy probed it; remote == 0: probed here again (at
 * once).  0 ok, -1 bad id */
typedef int (*goos_set_remote_f)(int id, int remote, goos_state_t state);
/*! human-readable state name ("unknown", "active", "inactive", "down") */
typedef const char *(*goos_state_name_f)(goos_state_t st);

typedef struct goos_api
{
	goos_register_target_f register_target;
	goos_release_target_f release_target;
	goos_lookup_f lookup;
	goos_get_state_f get_state;
	goos_subscribe_f subscribe;
	goos_report_failure_f report_failure;
	goos_report_alive_f report_alive;
	goos_probe_now_f probe_now;
	goos_state_name_f state_name;
	goos_subscribe_results_f subscribe_results;
	goos_now_ms_f now_ms;
	goos_register_target_err_f register_target_err;
	goos_set_remote_f set_remote;
} goos_api_t;

typedef int (*bind_goos_f)(goos_api_t *api);

/*! load the genesys_oos API; returns 0 on success, -1 when the module is
 * not loaded */
static inline int goos_load_api(goos_api_t *api)
{
	bind_goos_f bindgoos;

	/* through void(*)(void): -Wcast-function-type allows that cast */
	bindgoos = (bind_goos_f)(void (*)(void))find_export(
			"bind_genesys_oos", NO_SCRIPT, 0);
	if(bindgoos == 0) {
		LM_ERR("cannot find bind_genesys_oos: is genesys_oos loaded?\n");
		return -1;
	}
	if(bindgoos(api) < 0) {
		LM_ERR("cannot bind the genesys_oos api\n");
		return -1;
	}
	return 0;
}

#endif
