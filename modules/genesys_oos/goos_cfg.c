/*
 * genesys_oos: run-time changeable parameters (Kamailio cfg framework)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_oos :: cfg group "genesys_oos" (oos_check, oos_force)
 *
 * A change is checked against the modparam's range by the framework in the
 * process that makes it (the RPC process: cfg_rpc's cfg.set_now_int).
 * Once committed, the first process that updates its configuration wakes
 * the probe process, which re-plans every target with the new period at
 * once (goos_probe.c).
 */

#include "core/dprint.h"

#include "goos_cfg.h"
#include "goos_target.h"

static struct cfg_group_genesys_oos goos_default_cfg;
void *goos_cfg = &goos_default_cfg;
static int goos_cfg_declared = 0;

/* after the commit, in the first process that updates its configuration:
 * the probe process may sleep up to a second, wake it to re-plan now */
static void goos_cfg_changed(str *gname, str *name)
{
	(void)gname;
	(void)name;
	if(goos_root != NULL)
		goos_kick();
}

/* The framework checks the modparam ranges (min, max) and refuses a value
 * outside them ("integer value is out of range", then "failed to set the
 * variable: genesys_oos.oos_check").  No on_change callback: with one,
 * cfg.get refuses to show the value.  Not CFG_ATOMIC: the framework
 * refuses a per-child callback with it; a change replaces the group's
 * block, seen by each process after its cfg_update(). */
/* clang-format off */
static cfg_def_t goos_cfg_def[] = {
	{"oos_check", CFG_VAR_INT | CFG_CB_ONLY_ONCE,
		GOOS_CHECK_MIN, GOOS_CHECK_MAX, 0, goos_cfg_changed,
		"Probe period in seconds while a target answers (0-300, "
		"0 disables periodic probing)"},
	{"oos_force", CFG_VAR_INT | CFG_CB_ONLY_ONCE,
		GOOS_FORCE_MIN, GOOS_FORCE_MAX, 0, goos_cfg_changed,
		"Probe period in seconds while a target is out of service (1-32)"},
	{0, 0, 0, 0, 0, 0, 0}
};
/* clang-format on */

int goos_cfg_declare(void)
{
	goos_default_cfg.oos_check = goos_params.check_s;
	goos_default_cfg.oos_force = goos_params.force_s;
	if(cfg_declare("genesys_oos", goos_cfg_def, &goos_default_cfg,
			   cfg_sizeof(genesys_oos), &goos_cfg)) {
		LM_ERR("cannot declare the cfg group genesys_oos\n");
		return -1;
	}
	goos_cfg_declared = 1;
	return 0;
}

void goos_params_now(goos_params_t *p)
{
	*p = goos_params;
	if(goos_cfg_declared) {
		p->check_s = cfg_get(genesys_oos, goos_cfg, oos_check);
		p->force_s = cfg_get(genesys_oos, goos_cfg, oos_force);
	}
	p->timeout_ms = goos_params_deadline_ms(p);
}
