/*
 * genesys_oos: parameter validation (pure logic, no Kamailio deps)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

#include <stdio.h>

#include "goos_params.h"
#include "goos_health.h"

static int range_err(char *err, size_t errlen, const char *name, int val,
		int min, int max, const char *unit)
{
	snprintf(err, errlen, "modparam %s=%d is out of range (allowed %d-%d%s%s)",
			name, val, min, max, unit[0] ? " " : "", unit);
	return -1;
}

/* the longest probe deadline: it must fall before the next probe of the
 * same target, whatever its state */
static int goos_params_timeout_limit(const goos_params_t *p)
{
	int limit = p->force_s * 1000;

	if(p->check_s > 0 && p->check_s * 1000 < limit)
		limit = p->check_s * 1000;
	return limit;
}

int goos_params_deadline_ms(const goos_params_t *p)
{
	int limit = goos_params_timeout_limit(p);

	return p->timeout_ms < limit ? p->timeout_ms : limit;
}

int goos_params_check(const goos_params_t *p, char *err, size_t errlen)
{
	int limit;

	if(p->check_s < GOOS_CHECK_MIN || p->check_s > GOOS_CHECK_MAX)
		return range_err(err, errlen, "oos_check", p->check_s, GOOS_CHECK_MIN,
				GOOS_CHECK_MAX, "seconds, 0 disables probing");
	if(p->force_s < GOOS_FORCE_MIN || p->force_s > GOOS_FORCE_MAX)
		return range_err(err, errlen, "oos_force", p->force_s, GOOS_FORCE_MIN,
				GOOS_FORCE_MAX, "seconds");
	if(p->fail_threshold < GOOS_THRESHOLD_MIN
			|| p->fail_threshold > GOOS_THRESHOLD_MAX)
		return range_err(err, errlen, "fail_threshold", p->fail_threshold,
				GOOS_THRESHOLD_MIN, GOOS_THRESHOLD_MAX, "");
	if(p->ok_threshold < GOOS_THRESHOLD_MIN
			|| p->ok_threshold > GOOS_THRESHOLD_MAX)
		return range_err(err, errlen, "ok_threshold", p->ok_threshold,
				GOOS_THRESHOLD_MIN, GOOS_THRESHOLD_MAX, "");
	if(p->max_targets < GOOS_MAX_TARGETS_MIN
			|| p->max_targets > GOOS_MAX_TARGETS_MAX)
		return range_err(err, errlen, "max_targets", p->max_targets,
				GOOS_MAX_TARGETS_MIN, GOOS_MAX_TARGETS_MAX,
				"targets, 0 = no limit");
	if(p->probe_slots < GOOS_SLOTS_MIN || p->probe_slots > GOOS_SLOTS_MAX)
		return range_err(err, errlen, "probe_slots", p->probe_slots,
				GOOS_SLOTS_MIN, GOOS_SLOTS_MAX, "");
	/* the deadline must fall before the next probe of the same target */
	limit = goos_params_timeout_limit(p);
	if(p->timeout_ms < GOOS_TIMEOUT_MIN || p->timeout_ms > limit) {
		snprintf(err, errlen,
				"modparam oos_timeout=%d is out of range (allowed %d-%d ms: "
				"it must not exceed the probe period, oos_check=%d s "
				"and oos_force=%d s)",
				p->timeout_ms, GOOS_TIMEOUT_MIN, limit, p->check_s, p->force_s);
		return -1;
	}
	return 0;
}

int goos_params_period_ms(const goos_params_t *p, int st)
{
	if(p->check_s == 0)
		return 0;
	if(st == GOOS_H_ACTIVE || st == GOOS_H_INACTIVE)
		return p->check_s * 1000;
	return p->force_s * 1000;
}
