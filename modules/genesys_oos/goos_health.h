/*
 * genesys_oos: target health state machine (pure logic, no Kamailio deps)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

#ifndef _GOOS_HEALTH_H_
#define _GOOS_HEALTH_H_

/*! probe outcome classes */
typedef enum goos_result
{
	GOOS_RES_ACTIVE = 0,   /*!< final reply other than 503 (any 1xx is not final) */
	GOOS_RES_INACTIVE = 1, /*!< 503 from the target itself */
	GOOS_RES_DOWN = 2	   /*!< local timeout or transport error */
} goos_result_t;

/*! health state values; identical to goos_state_t in api.h */
enum
{
	GOOS_H_UNKNOWN = 0,
	GOOS_H_ACTIVE = 1,
	GOOS_H_INACTIVE = 2,
	GOOS_H_DOWN = 3
};

/*! hysteresis: a state changes after `threshold` consecutive results of the
 * class that leads to it (fail_threshold for DOWN, ok_threshold for ACTIVE
 * and INACTIVE). The first result after UNKNOWN is taken at once. */
typedef struct goos_health
{
	unsigned char state;	 /*!< GOOS_H_* */
	unsigned char candidate; /*!< state the current run of results leads to */
	unsigned short run;		 /*!< length of that run */
} goos_health_t;

/*! classify a final reply: code is the SIP status, local is non-zero when
 * the reply was generated locally by tm (a timeout 408 or a transport 477/503
 * that never reached the target) */
goos_result_t goos_classify(int code, int local);

/*! state a result class leads to */
int goos_result_state(goos_result_t res);

/*! apply one result; returns the new state when it changed, -1 otherwise */
int goos_health_apply(goos_health_t *h, goos_result_t res, int fail_threshold,
		int ok_threshold);

/*! reset to UNKNOWN */
void goos_health_reset(goos_health_t *h);

/*! name of a state: "unknown", "active", "inactive", "down" */
const char *goos_health_state_name(int state);

#endif
