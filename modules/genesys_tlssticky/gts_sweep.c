/*
 * genesys_tlssticky: closed connections and the sweep timer
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 *
 * Connection close events (tcp_main process, or a script in
 * event_route[tcp:closed]) only record the connection id in a small shm
 * ring; the timer process drains it once per sweep and removes the
 * bindings of those connections together with the expired ones.
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/dprint.h"
#include "core/events.h"
#include "core/tcp_conn.h"

#include "gts_mod.h"

/* ---- connection close ---- */

void gts_flow_closed(uint32_t conid)
{
	if(gts_root == NULL)
		return;
	/* requests in flight over it: answered by the flowtx timer */
	gts_flowtx_closed(conid);
	lock_get(gts_root->ring_lock);
	if(gts_root->ring_n < GTS_RING_SIZE)
		gts_root->ring[gts_root->ring_n++] = conid;
	else
		gts_root->ring_overflow++;
	lock_release(gts_root->ring_lock);
}

int gts_tcp_closed_cb(sr_event_param_t *evp)
{
	tcp_closed_event_info_t *tev = (tcp_closed_event_info_t *)evp->data;
	if(tev && tev->con)
		gts_flow_closed((uint32_t)tev->con->id);
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void gts_sweep(int64_t now)
{
	static uint32_t dead[GTS_RING_SIZE]; /* timer process only */
	gts_binding_t *removed = NULL, *b;
	char src[64];
	int ndead, overflow;

	lock_get(gts_root->ring_lock);
	ndead = gts_root->ring_n;
	memcpy(dead, gts_root->ring, ndead * sizeof(uint32_t));
	gts_root->ring_n = 0;
	overflow = gts_root->ring_overflow;
	gts_root->ring_overflow = 0;
	lock_release(gts_root->ring_lock);

	if(overflow)
		LM_WARN("%d connection-closed events were not recorded (more than"
				" %d within %ds): their bindings go on expiry, requests for"
				" them get 430 at once\n",
				overflow, GTS_RING_SIZE, gts_cfg.timer_interval);
	if(ndead > 1)
		qsort(dead, ndead, sizeof(uint32_t), cmp_u32);
	gts_table_sweep(&gts_root->table, now, dead, ndead, &removed);
	for(b = removed; b; b = b->next) {
		gts_addr_str(&b->flow.src, src, sizeof(src));
		if(b->why == GTS_WHY_PENDING_TIMEOUT)
			LM_INFO("pending sticky binding dropped (%s): AOR %s, phone"
					" Contact %s\n",
					gts_why_str(b->why), b->data, b->data + b->aor_len + 1);
		else
			LM_NOTICE("sticky binding removed (%s): AOR %s, phone Contact"
					  " %s, %s flow %u from %s\n",
					gts_why_str(b->why), b->data, b->data + b->aor_len + 1,
					get_proto_name(b->flow.proto), b->flow.conid, src);
		counter_inc(gts_cnt.removed);
	}
	gts_table_free_list(&gts_root->table, removed);
}

void gts_timer(unsigned int ticks, void *param)
{
	if(gts_root)
		gts_sweep((int64_t)time(NULL));
}

