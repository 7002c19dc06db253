/*
 * genesys_oos: run-time changeable parameters (Kamailio cfg framework)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

#ifndef _GOOS_CFG_H_
#define _GOOS_CFG_H_

#include "core/cfg/cfg.h"

#include "goos_params.h"

/*! cfg group "genesys_oos": the parameters that take effect at once when
 * changed at run time (seed 000: oos-check and oos-force "Changes Take
 * Effect: Immediately"), e.g. kamcmd cfg.set_now_int genesys_oos oos_check 2.
 * Their start values are the modparams (goos_params). */
struct cfg_group_genesys_oos
{
	int oos_check;
	int oos_force;
};

extern void *goos_cfg;

/*! declare the group (mod_init, after the modparams were checked) */
int goos_cfg_declare(void);

/*! the parameters in force in this process: the modparams with oos_check
 * and oos_force from the cfg group, and the probe deadline shortened to the
 * shortest period (goos_params_deadline_ms).  The only way to read
 * check_s, force_s and timeout_ms after start-up. */
void goos_params_now(goos_params_t *p);

#endif
