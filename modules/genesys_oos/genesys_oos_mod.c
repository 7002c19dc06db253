/*
 * genesys_oos module: Kamailio glue
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_oos :: active out-of-service detection by OPTIONS probing
 *
 * Exports, parameters, script functions (w_ -> ki_), KEMI, the API binder
 * and init.  The engine is in goos_probe.c (pass and poll loop),
 * goos_side.c (transport check) and goos_tmprobe.c (tm probes), the table
 * in goos_target.c, notifications in goos_notify.c, RPC in goos_rpc.c and
 * goos_probewait.c; pure logic in goos_health.c, goos_sched.c and
 * goos_params.c.
 */

#include <stdlib.h>
#include <string.h>
#include <ctype.h>

#include "core/sr_module.h"
#include "core/dprint.h"
#include "core/mod_fix.h"
#include "core/kemi.h"
#include "core/mem/mem.h"
#include "core/cfg/cfg_struct.h"
#include "core/socket_info.h"
#include "core/rpc_lookup.h"
#include "core/pt.h"
#include "core/parser/parse_uri.h"

#include "api.h"
#include "goos_target.h"
#include "goos_notify.h"
#include "goos_probe.h"
#include "goos_rpc.h"
#include "goos_cfg.h"

MODULE_VERSION

goos_params_t goos_params = GOOS_PARAMS_DEFAULTS;

/* `target` modparams, kept until mod_init registers them */
typedef struct goos_cfg_target
{
	char *spec;
	struct goos_cfg_target *next;
} goos_cfg_target_t;
static goos_cfg_target_t *goos_cfg_targets = NULL;
static goos_cfg_target_t **goos_cfg_tail = &goos_cfg_targets;

static int mod_init(void);
static int child_init(int rank);
static void mod_destroy(void);
static int goos_param_target(modparam_t type, void *val);
static int w_oos_is_active(sip_msg_t *msg, char *puri, char *p2);
static int w_oos_report_failure(sip_msg_t *msg, char *puri, char *p2);
static int w_oos_report_alive(sip_msg_t *msg, char *puri, char *p2);
static int bind_genesys_oos(goos_api_t *api);

/* clang-format off */
static cmd_export_t cmds[] = {
	{"oos_is_active", (cmd_function)w_oos_is_active, 1, fixup_spve_null,
		fixup_free_spve_null, ANY_ROUTE},
	{"oos_report_failure", (cmd_function)w_oos_report_failure, 1,
		fixup_spve_null, fixup_free_spve_null, ANY_ROUTE},
	{"oos_report_alive", (cmd_function)w_oos_report_alive, 1,
		fixup_spve_null, fixup_free_spve_null, ANY_ROUTE},
	{"bind_genesys_oos", (cmd_function)(void (*)(void))bind_genesys_oos, NO_SCRIPT, 0, 0, 0},
	{0, 0, 0, 0, 0, 0}
};

static param_export_t params[] = {
	{"oos_check",       PARAM_INT, &goos_params.check_s},
	{"oos_force",       PARAM_INT, &goos_params.force_s},
	{"oos_timeout",     PARAM_INT, &goos_params.timeout_ms},
	{"fail_threshold",  PARAM_INT, &goos_params.fail_threshold},
	{"ok_threshold",    PARAM_INT, &goos_params.ok_threshold},
	{"max_targets",     PARAM_INT, &goos_params.max_targets},
	{"probe_slots",     PARAM_INT, &goos_params.probe_slots},
	{"target",          PARAM_STRING | PARAM_USE_FUNC,
		(void *)goos_param_target},
	{"probe_from",      PARAM_STR, &goos_probe_from},
	{"send_socket",     PARAM_STR, &goos_send_socket},
	{"transport_check", PARAM_INT, &goos_transport_check},
	{"event_callback",  PARAM_STR, &goos_event_callback},
	{0, 0, 0}
};

static pv_export_t mod_pvs[] = {
	{{"goos", (sizeof("goos") - 1)}, PVT_OTHER, goos_pv_get, 0,
		goos_pv_parse_name, 0, 0, 0},
	{{0, 0}, 0, 0, 0, 0, 0, 0, 0}
};

struct module_exports exports = {
	"genesys_oos",   /* module name */
	DEFAULT_DLFLAGS, /* dlopen flags */
	cmds,            /* exported functions */
	params,          /* exported parameters */
	goos_rpc_cmds,   /* RPC method exports */
	mod_pvs,         /* exported pseudo-variables */
	0,               /* response handling function */
	mod_init,        /* module init function */
	child_init,      /* per-child init function */
	mod_destroy      /* module destroy function */
};
/* clang-format on */

static int goos_param_target(modparam_t type, void *val)
{
	goos_cfg_target_t *ct;

	(void)type;
	ct = (goos_cfg_target_t *)pkg_malloc(sizeof(goos_cfg_target_t));
	if(ct == NULL) {
		PKG_MEM_ERROR;
		return -1;
	}
	ct->spec = (char *)val;
	ct->next = NULL;
	*goos_cfg_tail = ct;
	goos_cfg_tail = &ct->next;
	return 0;
}

/* "<uri> [socket=proto:ip:port]" */
static int goos_register_cfg_target(char *spec)
{
	struct sip_uri puri;
	str uri, sock = STR_NULL;
	char *p = spec, *e;

	while(*p && isspace((unsigned char)*p))
		p++;
	e = p;
	while(*e && !isspace((unsigned char)*e))
		e++;
	uri.s = p;
	uri.len = (int)(e - p);
	p = e;
	while(*p && isspace((unsigned char)*p))
		p++;
	if(*p) {
		if(strncmp(p, "socket=", 7) != 0) {
			LM_ERR("modparam target='%s' is invalid: expected "
				   "'<sip-uri> [socket=proto:ip:port]'\n",
					spec);
			return -1;
		}
		sock.s = p + 7;
		e = sock.s;
		while(*e && !isspace((unsigned char)*e))
			e++;
		sock.len = (int)(e - sock.s);
		if(sock.len == 0 || *e) {
			LM_ERR("modparam target='%s' is invalid: expected "
				   "'<sip-uri> [socket=proto:ip:port]'\n",
					spec);
			return -1;
		}
	}
	if(uri.len <= 0 || uri.len >= GOOS_URI_MAX
			|| parse_uri(uri.s, uri.len, &puri) < 0
			|| (puri.type != SIP_URI_T && puri.type != SIPS_URI_T)
			|| puri.host.len <= 0) {
		LM_ERR("modparam target='%s' is not a valid SIP URI (expected "
			   "sip:host[:port][;transport=udp|tcp|tls] "
			   "[socket=proto:ip:port])\n",
				spec);
		return -1;
	}
	if(goos_table_register(&uri, sock.len ? &sock : NULL) < 0) {
		LM_ERR("modparam target='%s' cannot be registered (see above)\n", spec);
		return -1;
	}
	return 0;
}

static int goos_default_from(void)
{
	struct socket_info *si = get_first_socket();
	str host = str_init("localhost"), port = STR_NULL;
	int len;

	if(goos_probe_from.s != NULL && goos_probe_from.len > 0)
		return 0;
	if(si) {
		host = si->useinfo.name.len > 0 ? si->useinfo.name : si->address_str;
		port = si->useinfo.port_no_str.len > 0 ? si->useinfo.port_no_str
											   : si->port_no_str;
	}
	len = sizeof("sip:genesys-oos@") - 1 + host.len + 1 + port.len + 2;
	goos_probe_from.s = (char *)pkg_malloc(len + 1);
	if(goos_probe_from.s == NULL) {
		PKG_MEM_ERROR;
		return -1;
	}
	if(si && si->address.af == AF_INET6 && host.s[0] != '[')
		goos_probe_from.len = snprintf(goos_probe_from.s, len + 1,
				"sip:genesys-oos@[%.*s]:%.*s", host.len, host.s, port.len,
				port.s);
	else if(port.len > 0)
		goos_probe_from.len = snprintf(goos_probe_from.s, len + 1,
				"sip:genesys-oos@%.*s:%.*s", host.len, host.s, port.len,
				port.s);
	else
		goos_probe_from.len = snprintf(goos_probe_from.s, len + 1,
				"sip:genesys-oos@%.*s", host.len, host.s);
	return 0;
}

static int mod_init(void)
{
	char err[256];
	goos_cfg_target_t *ct;
	struct sip_uri puri;

	if(goos_params_check(&goos_params, err, sizeof(err)) < 0) {
		LM_ERR("%s\n", err);
		return -1;
	}
	if(goos_transport_check != 0 && goos_transport_check != 1) {
		LM_ERR("modparam transport_check=%d is out of range (allowed 0-1)\n",
				goos_transport_check);
		return -1;
	}
	if(goos_probe_from.s != NULL && goos_probe_from.len > 0
			&& (parse_uri(goos_probe_from.s, goos_probe_from.len, &puri) < 0
					|| (puri.type != SIP_URI_T && puri.type != SIPS_URI_T))) {
		LM_ERR("modparam probe_from='%.*s' is not a valid SIP URI\n",
				goos_probe_from.len, goos_probe_from.s);
		return -1;
	}
	if(goos_send_socket.s != NULL && goos_send_socket.len > 0) {
		goos_send_si = lookup_local_socket(&goos_send_socket);
		if(goos_send_si == NULL) {
			LM_ERR("modparam send_socket='%.*s' is not a listen socket "
				   "(expected proto:ip:port of a listen= line)\n",
					goos_send_socket.len, goos_send_socket.s);
			return -1;
		}
	} else {
		goos_send_socket.len = 0;
	}
	if(goos_default_from() < 0)
		return -1;
	if(goos_cfg_declare() < 0)
		return -1;
	if(goos_probe_init() < 0)
		return -1;
	if(goos_notify_init() < 0)
		return -1;
	if(goos_table_init() < 0)
		return -1;
	for(ct = goos_cfg_targets; ct; ct = ct->next) {
		if(goos_register_cfg_target(ct->spec) < 0)
			return -1;
	}
	register_procs(1);
	cfg_register_child(1);
	LM_INFO("oos_check=%d s oos_force=%d s oos_timeout=%d ms "
			"fail_threshold=%d ok_threshold=%d probe_from=%.*s\n",
			goos_params.check_s, goos_params.force_s, goos_params.timeout_ms,
			goos_params.fail_threshold, goos_params.ok_threshold,
			goos_probe_from.len, goos_probe_from.s);
	return 0;
}

static int child_init(int rank)
{
	int pid;

	goos_notify_seal();
	if(rank != PROC_MAIN)
		return 0;
	pid = fork_process(PROC_TIMER, "GENESYS_OOS PROBE TIMER", 1);
	if(pid < 0) {
		LM_ERR("cannot start the genesys_oos probe process\n");
		return -1;
	}
	if(pid == 0) {
		/* the probe process: tm and the cfg framework as in a timer */
		if(cfg_child_init())
			return -1;
		goos_probe_loop();
		exit(-1);
	}
	return 0;
}

static void mod_destroy(void)
{
	goos_cfg_target_t *ct;

	while(goos_cfg_targets) {
		ct = goos_cfg_targets;
		goos_cfg_targets = ct->next;
		pkg_free(ct);
	}
	goos_table_destroy();
}

/* ---- script functions ---- */

/*! 1: active; -1: inactive; -2: down; -3: not probed yet; -4: no target */
static int ki_oos_is_active(sip_msg_t *msg, str *uri)
{
	int id;

	(void)msg;
	id = goos_table_lookup(uri);
	if(id < 0)
		return -4;
	switch(goos_table_state(id)) {
		case GOOS_ACTIVE:
			return 1;
		case GOOS_INACTIVE:
			return -1;
		case GOOS_DOWN:
			return -2;
		default:
			return -3;
	}
}

/*! 1: probe requested; -4: no such target */
static int ki_oos_report_failure(sip_msg_t *msg, str *uri)
{
	int id;

	(void)msg;
	id = goos_table_lookup(uri);
	if(id < 0 || goos_table_want_probe(id, 0) < 0)
		return -4;
	return 1;
}

/*! 1: done (a DOWN or unknown target is probed at once); -4: no target */
static int ki_oos_report_alive(sip_msg_t *msg, str *uri)
{
	int id;

	(void)msg;
	id = goos_table_lookup(uri);
	if(id < 0 || goos_table_want_probe(id, 1) < 0)
		return -4;
	return 1;
}

static int goos_get_uri(sip_msg_t *msg, char *puri, str *uri)
{
	if(get_str_fparam(uri, msg, (fparam_t *)puri) < 0 || uri->len <= 0) {
		LM_ERR("cannot get the target URI parameter\n");
		return -1;
	}
	return 0;
}

static int w_oos_is_active(sip_msg_t *msg, char *puri, char *p2)
{
	str uri;

	(void)p2;
	if(goos_get_uri(msg, puri, &uri) < 0)
		return -5;
	return ki_oos_is_active(msg, &uri);
}

static int w_oos_report_failure(sip_msg_t *msg, char *puri, char *p2)
{
	str uri;

	(void)p2;
	if(goos_get_uri(msg, puri, &uri) < 0)
		return -5;
	return ki_oos_report_failure(msg, &uri);
}

static int w_oos_report_alive(sip_msg_t *msg, char *puri, char *p2)
{
	str uri;

	(void)p2;
	if(goos_get_uri(msg, puri, &uri) < 0)
		return -5;
	return ki_oos_report_alive(msg, &uri);
}

/* ---- API ---- */

static int goos_api_report_failure(int id)
{
	return goos_table_want_probe(id, 0);
}

static int goos_api_report_alive(int id)
{
	return goos_table_want_probe(id, 1);
}

static const char *goos_api_state_name(goos_state_t st)
{
	return goos_health_state_name((int)st);
}

static int bind_genesys_oos(goos_api_t *api)
{
	if(api == NULL)
		return -1;
	/* genesys_ha may bind (and register) before our mod_init ran */
	if(goos_table_init() < 0)
		return -1;
	api->register_target = goos_table_register;
	api->release_target = goos_table_release;
	api->lookup = goos_table_lookup;
	api->get_state = goos_table_state;
	api->subscribe = goos_notify_subscribe;
	api->report_failure = goos_api_report_failure;
	api->report_alive = goos_api_report_alive;
	api->probe_now = goos_api_report_failure;
	api->state_name = goos_api_state_name;
	api->subscribe_results = goos_notify_subscribe_results;
	api->now_ms = goos_now_ms;
	api->register_target_err = goos_table_register_err;
	api->set_remote = goos_set_remote;
	return 0;
}

/* ---- KEMI ---- */

/* clang-format off */
static sr_kemi_t sr_kemi_genesys_oos_exports[] = {
	{ str_init("genesys_oos"), str_init("oos_is_active"),
		SR_KEMIP_INT, ki_oos_is_active,
		{ SR_KEMIP_STR, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_oos"), str_init("oos_report_failure"),
		SR_KEMIP_INT, ki_oos_report_failure,
		{ SR_KEMIP_STR, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_oos"), str_init("oos_report_alive"),
		SR_KEMIP_INT, ki_oos_report_alive,
		{ SR_KEMIP_STR, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ {0, 0}, {0, 0}, 0, NULL, { 0, 0, 0, 0, 0, 0 } }
};
/* clang-format on */

int mod_register(char *path, int *dlflags, void *p1, void *p2)
{
	(void)path;
	(void)dlflags;
	(void)p1;
	(void)p2;
	sr_kemi_modules_add(sr_kemi_genesys_oos_exports);
	return 0;
}
