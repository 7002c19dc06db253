/*
 * genesys_oos: parameter validation (pure logic, no Kamailio deps)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

#ifndef _GOOS_PARAMS_H_
#define _GOOS_PARAMS_H_

#include <stddef.h>

/* allowed ranges (seed 000: oos-check 0-300, oos-force 1-32) */
#define GOOS_CHECK_MIN 0
#define GOOS_CHECK_MAX 300
#define GOOS_FORCE_MIN 1
#define GOOS_FORCE_MAX 32
#define GOOS_TIMEOUT_MIN 50
#define GOOS_THRESHOLD_MIN 1
#define GOOS_THRESHOLD_MAX 100
/* max_targets 0: no limit other than GOOS_MAX_TARGETS_MAX (target ids
 * travel in 24 bits of the tm callback parameter) and shared memory */
#define GOOS_MAX_TARGETS_MIN 0
#define GOOS_MAX_TARGETS_MAX 1048575
#define GOOS_SLOTS_MIN 1
#define GOOS_SLOTS_MAX 100

/*! the module's tunables, as set by modparams */
typedef struct goos_params
{
	int check_s;		/*!< oos_check: period while answering, 0 = off */
	int force_s;		/*!< oos_force: period while out of service */
	int timeout_ms;		/*!< oos_timeout: probe deadline */
	int fail_threshold; /*!< consecutive failures before DOWN */
	int ok_threshold;	/*!< consecutive answers before ACTIVE/INACTIVE */
	int max_targets;	/*!< most targets at a time, 0: no limit */
	int probe_slots;	/*!< batches of probes per period */
} goos_params_t;

/*! the defaults: seed 000 oos-check 5, oos-force 5 */
#define GOOS_PARAMS_DEFAULTS                                                 \
	{                                                                        \
		.check_s = 5, .force_s = 5, .timeout_ms = 4000, .fail_threshold = 1, \
		.ok_threshold = 1, .max_targets = 0, .probe_slots = 8                \
	}

/*! check ranges and consistency; on error returns -1 and writes one line
 * naming the parameter, its value and the allowed range into err */
int goos_params_check(const goos_params_t *p, char *err, size_t errlen);

/*! the probe deadline in ms: oos_timeout, shortened to the shortest probe
 * period when a run-time change of oos_check or oos_force made that
 * period shorter (at start-up goos_params_check() refuses such values) */
int goos_params_deadline_ms(const goos_params_t *p);

/*! probe period in ms for a target in state st (GOOS_H_*): oos_check for
 * ACTIVE/INACTIVE, oos_force for DOWN/UNKNOWN; 0 when periodic probing is
 * off (oos_check = 0) */
int goos_params_period_ms(const goos_params_t *p, int st);

#endif
