/*
 * genesys_ha module: Kamailio glue
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: exports, parameters, w_ wrappers, KEMI, init
 *
 * The HA pool of Genesys SIP Server primary/backup pairs: the pool file,
 * pair state from genesys_oos probing, switchover, routing decisions.
 */

#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <libxml/parser.h>

#include "core/sr_module.h"
#include "core/dprint.h"
#include "core/ip_addr.h"
#include "core/socket_info.h"
#include "core/globals.h"
#include "core/mod_fix.h"
#include "core/kemi.h"

#include "gha_state.h"
#include "gha_route.h"
#include "gha_rpc.h"
#include "gha_pending.h"
#include "gha_events.h"
#include "gha_poolrr.h"
#include "gha_dmq.h"
#include "gha_params.h"

MODULE_VERSION

/* the w_ and mod_register signatures are Kamailio's: unused arguments */
#pragma GCC diagnostic ignored "-Wunused-parameter"

str gha_pool_file = STR_NULL;
str gha_schema_file = STR_NULL;
str gha_own_address = STR_NULL;
str gha_serving = STR_NULL;
str gha_geo_location = STR_NULL;
str gha_lb_name = str_init(GHA_DEFAULT_LB_ALGORITHM);
str gha_lb_hash_key = str_init("$fU");
str gha_event_callback = STR_NULL;
int gha_lb_alg = GHA_LB_ROUND_ROBIN;
int gha_rr_dn = GHA_DEFAULT_RR_DN;
int gha_down_grace = GHA_DEFAULT_DOWN_GRACE;
int gha_max_pool_elements = GHA_DEFAULT_MAX_POOL_ELEMENTS;

static int mod_init(void);
static int child_init(int rank);
static void mod_destroy(void);

static int w_ha_select_serving(sip_msg_t *msg, char *p1, char *p2)
{
	gha_dmq_sync_wait(); /* a (re)started proxy: the pool's state first */
	return ki_ha_select_serving(msg);
}

static int w_ha_select(sip_msg_t *msg, char *pair, char *p2)
{
	str s;

	gha_dmq_sync_wait();
	if(fixup_get_svalue(msg, (gparam_t *)pair, &s) < 0) {
		LM_ERR("cannot get the pair name\n");
		return GHA_RC_ERROR;
	}
	return ki_ha_select(msg, &s);
}

static int w_ha_select_site0(sip_msg_t *msg, char *p1, char *p2)
{
	gha_dmq_sync_wait(); /* a (re)started proxy: the pool's state first */
	return ki_ha_select_site(msg);
}

static int w_ha_select_site1(sip_msg_t *msg, char *site, char *p2)
{
	str s;

	gha_dmq_sync_wait();
	if(fixup_get_svalue(msg, (gparam_t *)site, &s) < 0) {
		LM_ERR("cannot get the site\n");
		return GHA_RC_ERROR;
	}
	return ki_ha_select_site_name(msg, &s);
}

static int w_ha_select_by_uri(sip_msg_t *msg, char *p1, char *p2)
{
	gha_dmq_sync_wait(); /* a (re)started proxy: the pool's state first */
	return ki_ha_select_by_uri(msg);
}

static int w_ha_record_route0(sip_msg_t *msg, char *p1, char *p2)
{
	return ki_ha_record_route(msg);
}

static int w_ha_record_route1(sip_msg_t *msg, char *dn, char *p2)
{
	str s;

	if(fixup_get_svalue(msg, (gparam_t *)dn, &s) < 0) {
		LM_ERR("cannot get the DN\n");
		return GHA_RC_ERROR;
	}
	return ki_ha_record_route_dn(msg, &s);
}

static int w_ha_route_in_dialog(sip_msg_t *msg, char *p1, char *p2)
{
	gha_dmq_sync_wait(); /* a (re)started proxy: the pool's state first */
	return ki_ha_route_in_dialog(msg);
}

static int w_ha_from_sipserver(sip_msg_t *msg, char *p1, char *p2)
{
	return ki_ha_from_sipserver(msg);
}

static int w_ha_failover(sip_msg_t *msg, char *p1, char *p2)
{
	return ki_ha_failover(msg);
}

static int w_ha_select_feature_server(sip_msg_t *msg, char *p1, char *p2)
{
	return ki_ha_select_feature_server(msg);
}

static int w_ha_dmq_from_pool(sip_msg_t *msg, char *p1, char *p2)
{
	return ki_ha_dmq_from_pool(msg);
}

#define GHA_ROUTES (REQUEST_ROUTE | FAILURE_ROUTE | BRANCH_ROUTE)

/* clang-format off */
static cmd_export_t cmds[] = {
	{"ha_select_serving", (cmd_function)w_ha_select_serving, 0, 0, 0,
		GHA_ROUTES},
	{"ha_select", (cmd_function)w_ha_select, 1, fixup_spve_null,
		fixup_free_spve_null, GHA_ROUTES},
	{"ha_select_site", (cmd_function)w_ha_select_site0, 0, 0, 0, GHA_ROUTES},
	{"ha_select_site", (cmd_function)w_ha_select_site1, 1, fixup_spve_null,
		fixup_free_spve_null, GHA_ROUTES},
	{"ha_select_by_uri", (cmd_function)w_ha_select_by_uri, 0, 0, 0,
		GHA_ROUTES},
	{"ha_record_route", (cmd_function)w_ha_record_route0, 0, 0, 0,
		REQUEST_ROUTE},
	{"ha_record_route", (cmd_function)w_ha_record_route1, 1, fixup_spve_null,
		fixup_free_spve_null, REQUEST_ROUTE},
	{"ha_route_in_dialog", (cmd_function)w_ha_route_in_dialog, 0, 0, 0,
		REQUEST_ROUTE},
	{"ha_from_sipserver", (cmd_function)w_ha_from_sipserver, 0, 0, 0,
		REQUEST_ROUTE | ONREPLY_ROUTE},
	{"ha_failover", (cmd_function)w_ha_failover, 0, 0, 0,
		REQUEST_ROUTE | FAILURE_ROUTE},
	{"ha_select_feature_server", (cmd_function)w_ha_select_feature_server,
		0, 0, 0, GHA_ROUTES},
	{"ha_dmq_from_pool", (cmd_function)w_ha_dmq_from_pool, 0, 0, 0,
		REQUEST_ROUTE},
	{0, 0, 0, 0, 0, 0}
};

static param_export_t params[] = {
	{"pool_file", PARAM_STR, &gha_pool_file},
	{"schema_file", PARAM_STR, &gha_schema_file},
	{"own_address", PARAM_STR, &gha_own_address},
	{"serving_sipserver", PARAM_STR, &gha_serving},
	{"geo_location", PARAM_STR, &gha_geo_location},
	{"lb_algorithm", PARAM_STR, &gha_lb_name},
	{"lb_hash_key", PARAM_STR, &gha_lb_hash_key},
	{"event_callback", PARAM_STR, &gha_event_callback},
	{"rr_dn", PARAM_INT, &gha_rr_dn},
	{"end_pending_on_down", PARAM_INT, &gha_end_pending},
	{"t1_probe", PARAM_INT, &gha_t1_probe},
	{"t1_slots", PARAM_INT, &gha_t1_slots},
	{"down_grace", PARAM_INT, &gha_down_grace},
	{"max_pool_elements", PARAM_INT, &gha_max_pool_elements},
	{"rr_pool_name", PARAM_STR, &gha_rr_pool_name},
	{"rr_pool_port", PARAM_INT, &gha_rr_pool_port},
	{"dmq", PARAM_INT, &gha_dmq_enable},
	{"dmq_interval", PARAM_INT, &gha_dmq_interval},
	{"dmq_peer_timeout", PARAM_INT, &gha_dmq_peer_timeout},
	{"dmq_sync_timeout", PARAM_INT, &gha_dmq_sync_timeout},
	{"dmq_probing", PARAM_INT, &gha_dmq_probing},
	{0, 0, 0}
};

static pv_export_t pvs[] = {
	{{"ha", sizeof("ha") - 1}, PVT_OTHER, pv_get_ha, 0, pv_parse_ha_name, 0,
		0, 0},
	{{0, 0}, 0, 0, 0, 0, 0, 0, 0}
};

struct module_exports exports = {
	"genesys_ha",    /* module name */
	DEFAULT_DLFLAGS, /* dlopen flags */
	cmds,            /* exported functions */
	params,          /* exported parameters */
	gha_rpc_cmds,    /* RPC method exports */
	pvs,             /* exported pseudo-variables */
	gha_grace_reply, /* response handling function */
	mod_init,        /* module init function */
	child_init,      /* per-child init function */
	mod_destroy      /* module destroy function */
};
/* clang-format on */

static pid_t gha_main_pid;
static int gha_listeners_up;

/* a listener Kamailio tried to open and could not: not bound (udp_init
 * leaves the socket unbound, tcp_init/tls_init close it); Kamailio opens
 * them in this order and stops at the first failure */
static struct socket_info *failed_listener(void)
{
	struct socket_info **lists[] = {&udp_listen, &tcp_listen, &tls_listen};
	struct socket_info *si;
	union sockaddr_union su;
	socklen_t len;
	unsigned i;

	for(i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		for(si = *lists[i]; si; si = si->next) {
			if(si->socket < 0)
				return si;
			len = sizeof(su);
			if(getsockname(si->socket, &su.s, &len) < 0 || su_getport(&su) == 0)
				return si;
		}
	}
	return NULL;
}

/* mod_destroy: the main process ends after mod_init and before the
 * listeners were all open (Kamailio's own error says why, just before) */
static void gha_startup_failed(void)
{
	struct socket_info *si;

	if(gha_main_pid == 0 || gha_listeners_up || getpid() != gha_main_pid)
		return;
	/* set just before the core opens the listeners: earlier failures (a
	 * module after this one, the script's fixups) are not listeners' */
	if(!fixup_complete)
		return;
	si = failed_listener();
	if(si == NULL) {
		LM_ERR("start-up stopped while the listeners were opened (see the "
			   "error above); the proxy does not run\n");
		return;
	}
	if(si->sock_str.s == NULL)
		return;
	if(si->sockname.len == 4 && strncmp(si->sockname.s, "mgmt", 4) == 0) {
		LM_ERR("40007 PR_MGMT_LISTENER_CANNOT_START: the management "
			   "listener %.*s cannot be opened (see the error above); the "
			   "proxy does not run\n",
				si->sock_str.len, si->sock_str.s);
	} else {
		LM_ERR("40006 SPR_SIP_LISTENER_CANNOT_START: SIP listener %.*s "
			   "cannot be opened (see the error above); the proxy does not "
			   "run\n",
				si->sock_str.len, si->sock_str.s);
	}
}

/* every modparam's value, before anything is loaded (gha_params.c) */
static int check_params(void)
{
	gha_params_t p = GHA_PARAMS_DEFAULTS;
	char err[512];

	p.lb_algorithm = gha_lb_name.s;
	p.rr_dn = gha_rr_dn;
	p.down_grace = gha_down_grace;
	p.max_pool_elements = gha_max_pool_elements;
	p.serving_len = gha_serving.len;
	p.rr_pool_port = gha_rr_pool_port;
	p.rr_pool_name = gha_rr_pool_name.s;
	p.rr_pool_name_len = gha_rr_pool_name.len;
	p.end_pending_on_down = gha_end_pending;
	p.t1_probe = gha_t1_probe;
	p.t1_slots = gha_t1_slots;
	p.dmq = gha_dmq_enable;
	p.dmq_interval = gha_dmq_interval;
	p.dmq_peer_timeout = gha_dmq_peer_timeout;
	p.dmq_probing = gha_dmq_probing;
	p.dmq_sync_timeout = gha_dmq_sync_timeout;
	if(gha_params_check(&p, &gha_lb_alg, err, sizeof(err)) < 0) {
		LM_ERR("%s\n", err);
		return -1;
	}
	return 0;
}

static int mod_init(void)
{
	if(check_params() < 0)
		return -1;
	if(goos_load_api(&gha_goos) < 0) {
		LM_ERR("genesys_ha needs the genesys_oos module: add loadmodule "
			   "\"genesys_oos\" before loadmodule \"genesys_ha\"\n");
		return -1;
	}
	if(load_rr_api(&gha_rrb) < 0) {
		LM_ERR("genesys_ha needs the rr module: add loadmodule \"rr\"\n");
		return -1;
	}
	if(load_tm_api(&gha_tmb) < 0) {
		LM_ERR("genesys_ha needs the tm module: add loadmodule \"tm\"\n");
		return -1;
	}
	if(gha_route_init() < 0)
		return -1;
	if(gha_poolrr_init() < 0)
		return -1;
	if(gha_pending_init() < 0)
		return -1;
	/* once, before forking; never xmlCleanupParser() in a worker */
	xmlInitParser();
	if(gha_state_init() < 0)
		return -1;
	/* 40004 in child_init(PROC_POSTCHILDINIT) */
	ksr_module_set_flag(KSRMOD_FLAG_POSTCHILDINIT);
	/* 40006/40007 in mod_destroy when start-up stops before the listeners
	 * are all open */
	gha_main_pid = getpid();
	return gha_dmq_init();
}

static int child_init(int rank)
{
	if(rank == PROC_INIT) {
		/* main process: every listener is open */
		gha_listeners_up = 1;
	} else if(rank == PROC_POSTCHILDINIT) {
		/* main process, every process forked: the proxy serves */
		gha_state_log_initialized();
	}
	if(gha_pending_child_init(rank) < 0)
		return -1;
	if(gha_dmq_child_init(rank) < 0)
		return -1;
	/* the event process: event routes run there only */
	return gha_events_child_init(rank);
}

static void mod_destroy(void)
{
	gha_startup_failed();
	gha_pending_destroy();
	gha_dmq_destroy();
	gha_events_destroy();
	gha_state_destroy();
	gha_route_destroy();
}

/* clang-format off */
static sr_kemi_t sr_kemi_genesys_ha_exports[] = {
	{ str_init("genesys_ha"), str_init("ha_select_serving"),
		SR_KEMIP_INT, ki_ha_select_serving,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_ha"), str_init("ha_select"),
		SR_KEMIP_INT, ki_ha_select,
		{ SR_KEMIP_STR, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_ha"), str_init("ha_select_site"),
		SR_KEMIP_INT, ki_ha_select_site,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_ha"), str_init("ha_select_site_name"),
		SR_KEMIP_INT, ki_ha_select_site_name,
		{ SR_KEMIP_STR, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_ha"), str_init("ha_select_by_uri"),
		SR_KEMIP_INT, ki_ha_select_by_uri,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_ha"), str_init("ha_record_route"),
		SR_KEMIP_INT, ki_ha_record_route,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_ha"), str_init("ha_record_route_dn"),
		SR_KEMIP_INT, ki_ha_record_route_dn,
		{ SR_KEMIP_STR, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_ha"), str_init("ha_route_in_dialog"),
		SR_KEMIP_INT, ki_ha_route_in_dialog,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_ha"), str_init("ha_from_sipserver"),
		SR_KEMIP_INT, ki_ha_from_sipserver,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_ha"), str_init("ha_failover"),
		SR_KEMIP_INT, ki_ha_failover,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_ha"), str_init("ha_select_feature_server"),
		SR_KEMIP_INT, ki_ha_select_feature_server,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_ha"), str_init("ha_dmq_from_pool"),
		SR_KEMIP_INT, ki_ha_dmq_from_pool,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ {0, 0}, {0, 0}, 0, NULL, { 0, 0, 0, 0, 0, 0 } }
};
/* clang-format on */

int mod_register(char *path, int *dlflags, void *p1, void *p2)
{
	sr_kemi_modules_add(sr_kemi_genesys_ha_exports);
	return 0;
}
