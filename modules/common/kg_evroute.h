/*
 * kamailio-genesys: running an event route, shared by the modules
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

#ifndef _KG_EVROUTE_H_
#define _KG_EVROUTE_H_

#include "core/action.h"
#include "core/dprint.h"
#include "core/kemi.h"
#include "core/route.h"
#include "core/str.h"

/*!
 * Run event route `evname` on `fmsg` (a faked message prepared by the
 * caller) as EVENT_ROUTE: the KEMI function `cb` when one is configured
 * (cb->len > 0), else the cfg route with index `rt` of event_rt. The caller
 * checks that there is something to run, and holds no lock.
 */
static inline void kg_run_event_route(
		int rt, str *cb, str *evname, sip_msg_t *fmsg)
{
	sr_kemi_eng_t *keng;
	struct run_act_ctx ctx;
	int backup_rt = get_route_type();

	set_route_type(EVENT_ROUTE);
	init_run_actions_ctx(&ctx);
	if(cb->len <= 0) {
		run_top_route(event_rt.rlist[rt], fmsg, &ctx);
	} else if((keng = sr_kemi_eng_get()) == NULL
			  || sr_kemi_route(keng, fmsg, EVENT_ROUTE, cb, evname) < 0) {
		LM_ERR("error running the event callback [%.*s] for [%.*s]\n",
				cb->len, cb->s, evname->len, evname->s);
	}
	set_route_type(backup_rt);
}

#endif
