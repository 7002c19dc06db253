/*
 * genesys_oos: target health state machine (pure logic, no Kamailio deps)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

#include "goos_health.h"

/* one table for logs, RPC and statistics names */
static const char *const goos_state_names[] = {
		[GOOS_H_UNKNOWN] = "unknown",
		[GOOS_H_ACTIVE] = "active",
		[GOOS_H_INACTIVE] = "inactive",
		[GOOS_H_DOWN] = "down",
};

goos_result_t goos_classify(int code, int local)
{
	if(local)
		return GOOS_RES_DOWN;
	if(code == 503)
		return GOOS_RES_INACTIVE;
	return GOOS_RES_ACTIVE;
}

int goos_result_state(goos_result_t res)
{
	switch(res) {
		case GOOS_RES_ACTIVE:
			return GOOS_H_ACTIVE;
		case GOOS_RES_INACTIVE:
			return GOOS_H_INACTIVE;
		case GOOS_RES_DOWN:
		default:
			return GOOS_H_DOWN;
	}
}

int goos_health_apply(goos_health_t *h, goos_result_t res, int fail_threshold,
		int ok_threshold)
{
	int target = goos_result_state(res);
	int threshold = (target == GOOS_H_DOWN) ? fail_threshold : ok_threshold;

	if(threshold < 1)
		threshold = 1;
	if(target == h->state) {
		/* a result confirming the current state breaks any opposite run */
		h->candidate = (unsigned char)target;
		h->run = 0;
		return -1;
	}
	if(h->candidate != target) {
		h->candidate = (unsigned char)target;
		h->run = 0;
	}
	if(h->run < 0xffff)
		h->run++;
	if(h->state == GOOS_H_UNKNOWN || h->run >= threshold) {
		h->state = (unsigned char)target;
		h->run = 0;
		return target;
	}
	return -1;
}

void goos_health_reset(goos_health_t *h)
{
	h->state = GOOS_H_UNKNOWN;
	h->candidate = GOOS_H_UNKNOWN;
	h->run = 0;
}

const char *goos_health_state_name(int state)
{
	if(state < 0
			|| state >= (int)(sizeof(goos_state_names)
								/ sizeof(goos_state_names[0])))
		return "invalid";
	return goos_state_names[state];
}
