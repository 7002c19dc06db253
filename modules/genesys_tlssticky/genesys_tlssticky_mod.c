/*
 * genesys_tlssticky module: Kamailio glue
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 *
 * TLS (and TCP) connection stickiness for phones that never accept an
 * inbound connection: the Contact of a REGISTER names this proxy and
 * carries a signed flow token; requests for the phone go back over the
 * connection it opened (see doc/genesys_tlssticky_admin.xml).
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sr_module.h"
#include "core/dprint.h"
#include "core/mod_fix.h"
#include "core/kemi.h"
#include "core/events.h"
#include "core/timer.h"
#include "core/ut.h"
#include "core/tcp_conn.h"
#include "core/resolve.h"
#include "core/mem/shm_mem.h"
#include "core/parser/parse_uri.h"

#include "gts_mod.h"
#include "gts_params.h"
#include "gts_rpc.h"

MODULE_VERSION

gts_root_t *gts_root = NULL;
gts_counters_t gts_cnt;
rr_api_t gts_rrb;
int gts_have_rr = 0;

static char *tls_policy_s = "no-inbound";
static char *tcp_policy_s = "reconnect";

/* clang-format off */
gts_cfg_t gts_cfg = {
	.secret = STR_NULL,
	.tcp = 0,
	.registrar_default_timeout = 0,
	.default_expires = 3600,
	.pending_ttl = 64,
	.max_contacts = 16,
	.max_bindings = 200000,
	.hash_size = 16384,
	.timer_interval = 1,
	.rr_token = 1,
	.tcp_closed_hook = 1,
	.inflight_max = 16384,
	.token_param = str_init("gts"),
	.contact_socket = STR_NULL,
	.relay = 1,
	.relay_address = STR_NULL,
	.relay_header = str_init("X-Genesys-Sticky-Relay"),
	.openssl_atfork = 1,
};
/* clang-format on */

static int mod_init(void);
static int child_init(int rank);
static void mod_destroy(void);

static int w_sticky_register(struct sip_msg *msg, char *p1, char *p2);
static int w_sticky_register_policy(struct sip_msg *msg, char *p1, char *p2);
static int w_sticky_reply(struct sip_msg *msg, char *p1, char *p2);
static int w_sticky_route(struct sip_msg *msg, char *p1, char *p2);
static int w_sticky_rr(struct sip_msg *msg, char *p1, char *p2);
static int w_sticky_flow_closed(struct sip_msg *msg, char *p1, char *p2);
static int w_sticky_flow_closed0(struct sip_msg *msg, char *p1, char *p2);

static counter_val_t gts_cnt_bindings(counter_handle_t h, void *param);

/* clang-format off */
static cmd_export_t cmds[] = {
	{"sticky_register", (cmd_function)w_sticky_register, 0,
		0, 0, REQUEST_ROUTE},
	{"sticky_register", (cmd_function)w_sticky_register_policy, 1,
		fixup_spve_null, fixup_free_spve_null, REQUEST_ROUTE},
	{"sticky_reply", (cmd_function)w_sticky_reply, 0,
		0, 0, ONREPLY_ROUTE},
	{"sticky_route", (cmd_function)w_sticky_route, 0,
		0, 0, REQUEST_ROUTE},
	{"sticky_rr", (cmd_function)w_sticky_rr, 0,
		0, 0, REQUEST_ROUTE},
	{"sticky_flow_closed", (cmd_function)w_sticky_flow_closed0, 0,
		0, 0, EVENT_ROUTE},
	{"sticky_flow_closed", (cmd_function)w_sticky_flow_closed, 1,
		fixup_igp_null, fixup_free_igp_null, ANY_ROUTE},
	{0, 0, 0, 0, 0, 0}
};

static param_export_t params[] = {
	{"secret",                    PARAM_STR, &gts_cfg.secret},
	{"tcp",                       PARAM_INT, &gts_cfg.tcp},
	{"tls_policy",                PARAM_STRING, &tls_policy_s},
	{"tcp_policy",                PARAM_STRING, &tcp_policy_s},
	{"registrar_default_timeout", PARAM_INT, &gts_cfg.registrar_default_timeout},
	{"default_expires",           PARAM_INT, &gts_cfg.default_expires},
	{"pending_ttl",               PARAM_INT, &gts_cfg.pending_ttl},
	{"max_contacts",              PARAM_INT, &gts_cfg.max_contacts},
	{"max_bindings",              PARAM_INT, &gts_cfg.max_bindings},
	{"hash_size",                 PARAM_INT, &gts_cfg.hash_size},
	{"timer_interval",            PARAM_INT, &gts_cfg.timer_interval},
	{"rr_token",                  PARAM_INT, &gts_cfg.rr_token},
	{"tcp_closed_hook",           PARAM_INT, &gts_cfg.tcp_closed_hook},
	{"inflight_max",              PARAM_INT, &gts_cfg.inflight_max},
	{"token_param",               PARAM_STR, &gts_cfg.token_param},
	{"contact_socket",            PARAM_STR, &gts_cfg.contact_socket},
	{"relay",                     PARAM_INT, &gts_cfg.relay},
	{"relay_address",             PARAM_STR, &gts_cfg.relay_address},
	{"relay_header",              PARAM_STR, &gts_cfg.relay_header},
	{"openssl_atfork",            PARAM_INT, &gts_cfg.openssl_atfork},
	{0, 0, 0}
};

static counter_def_t gts_cnt_defs[] = {
	{&gts_cnt.registers, "registers", 0, 0, 0,
		"REGISTERs whose Contacts were rewritten"},
	{&gts_cnt.committed, "committed", 0, 0, 0,
		"bindings committed or refreshed by a registrar 2xx"},
	{&gts_cnt.removed, "removed", 0, 0, 0,
		"bindings removed (expiry, connection closed, registrar, newer flow)"},
	{&gts_cnt.routed, "routed", 0, 0, 0,
		"requests sent over a phone's own flow"},
	{&gts_cnt.reconnect, "reconnect", 0, 0, 0,
		"requests sent to a phone's Contact by the reconnect policy"},
	{&gts_cnt.flow_failed, "flow_failed", 0, 0, 0,
		"requests for a phone whose flow is gone (430/480)"},
	{&gts_cnt.forged, "forged", 0, 0, 0,
		"forged or malformed flow tokens refused"},
	{&gts_cnt.stale, "stale", 0, 0, 0,
		"flow tokens of an older registration of the phone refused"},
	{&gts_cnt.foreign, "foreign", 0, 0, 0,
		"requests with a valid flow token of another proxy of the pool"},
	{&gts_cnt.relayed, "relayed", 0, 0, 0,
		"requests relayed to the proxy that holds the phone's flow"},
	{0, "bindings", 0, gts_cnt_bindings, 0,
		"bindings in the table (pending and active)"},
	{0, 0, 0, 0, 0, 0}
};

struct module_exports exports = {
	"genesys_tlssticky", /* module name */
	DEFAULT_DLFLAGS, /* dlopen flags */
	cmds,            /* exported functions */
	params,          /* exported parameters */
	gts_rpc_cmds,    /* RPC method exports */
	0,               /* exported pseudo-variables */
	0,               /* response handling function */
	mod_init,        /* module init function */
	child_init,      /* per-child init function */
	mod_destroy      /* module destroy function */
};
/* clang-format on */

/* ---- injected table operations: shm and the bucket lock set ---- */

static void *gts_shm_alloc(size_t size)
{
	return shm_malloc(size);
}

static void gts_shm_free(void *p)
{
	shm_free(p);
}

static void gts_lock(void *ctx, unsigned int idx)
{
	gen_lock_set_t *set = ctx;
	lock_set_get(set, idx);
}

static void gts_unlock(void *ctx, unsigned int idx)
{
	gen_lock_set_t *set = ctx;
	lock_set_release(set, idx);
}

static counter_val_t gts_cnt_bindings(counter_handle_t h, void *param)
{
	return gts_root ? (counter_val_t)gts_table_count(&gts_root->table) : 0;
}

/* ---- init ---- */

static int resolve_contact_socket(void)
{
	struct socket_info *si = NULL;
	str host;
	int port = 0, proto = 0;
	static char hp[256];
	str *addr, *pstr;

	if(gts_cfg.contact_socket.len > 0) {
		if(parse_phostport(gts_cfg.contact_socket.s, &host.s, &host.len, &port,
				   &proto)
				< 0) {
			LM_ERR("modparam \"contact_socket\" = \"%.*s\" does not parse:"
				   " expected proto:address:port, e.g. udp:10.0.0.1:5060\n",
					gts_cfg.contact_socket.len, gts_cfg.contact_socket.s);
			return -1;
		}
		si = grep_sock_info(
				&host, (unsigned short)port, (unsigned short)proto);
		if(si == NULL) {
			LM_ERR("modparam \"contact_socket\" = \"%.*s\" is not a listen"
				   " socket of this proxy\n",
					gts_cfg.contact_socket.len, gts_cfg.contact_socket.s);
			return -1;
		}
	} else {
		si = udp_listen ? udp_listen : tcp_listen;
		if(si == NULL) {
			LM_ERR("no UDP or TCP listen socket for the rewritten Contact:"
				   " set modparam \"contact_socket\"\n");
			return -1;
		}
	}
	gts_cfg.csock = si;
	addr = si->useinfo.name.len > 0 ? &si->useinfo.name : &si->address_str;
	pstr = si->useinfo.port_no_str.len > 0 ? &si->useinfo.port_no_str
										   : &si->port_no_str;
	if(addr->len + pstr->len + 4 > (int)sizeof(hp))
		return -1;
	if(si->address.af == AF_INET6 && addr->s[0] != '[')
		gts_cfg.contact_hostport.len = snprintf(hp, sizeof(hp), "[%.*s]:%.*s",
				addr->len, addr->s, pstr->len, pstr->s);
	else
		gts_cfg.contact_hostport.len = snprintf(hp, sizeof(hp), "%.*s:%.*s",
				addr->len, addr->s, pstr->len, pstr->s);
	gts_cfg.contact_hostport.s = hp;
	switch(si->proto) {
		case PROTO_TCP:
			gts_cfg.contact_transport = "tcp";
			break;
		case PROTO_TLS:
			gts_cfg.contact_transport = "tls";
			break;
		default:
			gts_cfg.contact_transport = "";
	}
	LM_INFO("rewritten Contacts name %.*s%s%s\n", gts_cfg.contact_hostport.len,
			gts_cfg.contact_hostport.s,
			*gts_cfg.contact_transport ? " transport " : "",
			gts_cfg.contact_transport);
	return 0;
}

/* the address other proxies of the pool relay requests for our phones to:
 * modparam "relay_address" (proto:ip:port), else the contact socket's own
 * address; a wildcard address cannot be named: no relay address */
static int resolve_relay_address(void)
{
	struct socket_info *si = gts_cfg.csock;
	struct ip_addr *ip, ipb;
	str host;
	int port = 0, proto = 0;

	memset(&gts_cfg.relay_addr, 0, sizeof(gts_cfg.relay_addr));
	if(gts_cfg.relay_address.len > 0) {
		if(parse_phostport(
				   gts_cfg.relay_address.s, &host.s, &host.len, &port, &proto)
						< 0
				|| port <= 0 || port > 65535 || str2ipxbuf(&host, &ipb) < 0) {
			LM_ERR("modparam \"relay_address\" = \"%.*s\" does not parse:"
				   " expected proto:IP:port, e.g. udp:10.0.0.1:5060 (an IP"
				   " address, no name)\n",
					gts_cfg.relay_address.len, gts_cfg.relay_address.s);
			return -1;
		}
		ip = &ipb;
		if(proto == PROTO_NONE)
			proto = PROTO_UDP;
	} else {
		ip = &si->address;
		port = si->port_no;
		proto = si->proto;
	}
	if(ip_addr_any(ip)) {
		LM_WARN("the contact socket listens on a wildcard address: flow"
				" tokens name no relay address, requests for our phones"
				" reaching another proxy of the pool are refused there;"
				" set modparam \"relay_address\"\n");
		return 0;
	}
	if(proto != PROTO_UDP && proto != PROTO_TCP && proto != PROTO_TLS) {
		LM_ERR("relay address: transport must be udp, tcp or tls\n");
		return -1;
	}
	gts_cfg.relay_addr.af = ip->af == AF_INET6 ? 6 : 4;
	memcpy(gts_cfg.relay_addr.ip, ip->u.addr, ip->len);
	gts_cfg.relay_addr.port = (uint16_t)port;
	gts_cfg.relay_proto = (uint8_t)proto;
	return 0;
}

/* every modparam that needs no core service (gts_params.c) */
static int check_params(void)
{
	gts_params_t p;
	char err[256];

	memset(&p, 0, sizeof(p));
	p.secret = gts_cfg.secret.s;
	p.secret_len = gts_cfg.secret.s ? (size_t)gts_cfg.secret.len : 0;
	p.tcp = gts_cfg.tcp;
	p.tls_policy = tls_policy_s;
	p.tcp_policy = tcp_policy_s;
	p.registrar_default_timeout = gts_cfg.registrar_default_timeout;
	p.default_expires = gts_cfg.default_expires;
	p.pending_ttl = gts_cfg.pending_ttl;
	p.max_contacts = gts_cfg.max_contacts;
	p.max_bindings = gts_cfg.max_bindings;
	p.hash_size = gts_cfg.hash_size;
	p.timer_interval = gts_cfg.timer_interval;
	p.rr_token = gts_cfg.rr_token;
	p.tcp_closed_hook = gts_cfg.tcp_closed_hook;
	p.inflight_max = gts_cfg.inflight_max;
	p.token_param = gts_cfg.token_param.s;
	p.token_param_len = (size_t)gts_cfg.token_param.len;
	p.relay = gts_cfg.relay;
	p.relay_header = gts_cfg.relay_header.s;
	p.relay_header_len = (size_t)gts_cfg.relay_header.len;
	p.openssl_atfork = gts_cfg.openssl_atfork;
	if(gts_params_check(
			   &p, &gts_cfg.tls_policy, &gts_cfg.tcp_policy, err, sizeof(err))
			< 0) {
		LM_ERR("%s\n", err);
		return -1;
	}
	if(gts_params_secret_is_example(&p))
		LM_WARN("modparam \"secret\" is the example secret of the reference"
				" configuration: anyone who read it can forge flow tokens;"
				" set your own (openssl rand -hex 32), the same on every"
				" proxy of the pool\n");
	return 0;
}

static int mod_init(void)
{
	gts_table_ops_t ops;
	gts_flow_t probe;
	char tok[GTS_TOKEN_MAX];
	unsigned int nlocks;

	if(check_params() < 0)
		return -1;
	/* the fork fix: the core forks its processes only after mod_init */
	if(gts_fork_init() < 0)
		return -1;
	if(resolve_contact_socket() < 0 || resolve_relay_address() < 0)
		return -1;

	/* OpenSSL works (after tls.so set its allocators, when loaded) */
	memset(&probe, 0, sizeof(probe));
	probe.src.af = probe.local.af = 4;
	if(gts_mint(&probe, tok, sizeof(tok)) < 0) {
		LM_ERR("HMAC-SHA256 (OpenSSL) does not work: cannot sign flow"
			   " tokens\n");
		return -1;
	}

	if(load_rr_api(&gts_rrb) == 0) {
		gts_have_rr = 1;
	} else {
		memset(&gts_rrb, 0, sizeof(gts_rrb));
		LM_INFO("rr module not loaded: no flow token in Record-Route,"
				" in-dialog requests toward phones use normal routing\n");
	}

	gts_root = shm_malloc(sizeof(*gts_root));
	if(gts_root == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	memset(gts_root, 0, sizeof(*gts_root));
	gts_root->ring_lock = lock_alloc();
	if(gts_root->ring_lock == NULL || lock_init(gts_root->ring_lock) == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	nlocks = gts_cfg.hash_size < 1024 ? (unsigned int)gts_cfg.hash_size : 1024;
	gts_root->locks = lock_set_alloc(nlocks);
	if(gts_root->locks == NULL || lock_set_init(gts_root->locks) == NULL) {
		LM_ERR("cannot allocate %u bucket locks\n", nlocks);
		return -1;
	}
	ops.alloc = gts_shm_alloc;
	ops.free = gts_shm_free;
	ops.lock = gts_lock;
	ops.unlock = gts_unlock;
	ops.ctx = gts_root->locks;
	if(gts_table_init(&gts_root->table, (unsigned int)gts_cfg.hash_size,
			   nlocks, gts_cfg.max_bindings, &ops)
			!= GTS_OK) {
		SHM_MEM_ERROR;
		return -1;
	}

	if(counter_register_array("genesys_tlssticky", gts_cnt_defs) < 0) {
		LM_ERR("cannot register the statistics\n");
		return -1;
	}
	if(gts_flowtx_init() < 0)
		return -1;
	if(register_timer(gts_timer, 0, gts_cfg.timer_interval) < 0) {
		LM_ERR("cannot register the sweep timer\n");
		return -1;
	}
	if(gts_cfg.tcp_closed_hook) {
		if(sr_event_register_cb(SREV_TCP_CLOSED, gts_tcp_closed_cb) != 0) {
			LM_ERR("cannot hook TCP connection close (another module, e.g."
				   " tcpops with closed_event, already did): set modparam"
				   " \"tcp_closed_hook\" to 0 and call sticky_flow_closed($conid)"
				   " in event_route[tcp:closed]\n");
			return -1;
		}
	}
	return 0;
}

static int child_init(int rank)
{
	return 0;
}

static void mod_destroy(void)
{
	if(gts_root == NULL)
		return;
	gts_flowtx_destroy();
	if(gts_root->table.buckets)
		gts_table_destroy(&gts_root->table);
	if(gts_root->locks) {
		lock_set_destroy(gts_root->locks);
		lock_set_dealloc(gts_root->locks);
	}
	if(gts_root->ring_lock) {
		lock_destroy(gts_root->ring_lock);
		lock_dealloc(gts_root->ring_lock);
	}
	shm_free(gts_root);
	gts_root = NULL;
}

/* ---- script functions: w_ wrappers and ki_ implementations ---- */

static int ki_sticky_register(struct sip_msg *msg)
{
	return gts_sip_register(msg, -1);
}

static int ki_sticky_register_policy(struct sip_msg *msg, str *policy)
{
	int p = gts_policy_parse(policy->s, (size_t)policy->len);
	if(p < 0) {
		LM_ERR("sticky_register(): policy \"%.*s\" is invalid: allowed"
			   " \"no-inbound\" or \"reconnect\"\n",
				policy->len, policy->s);
		return -3;
	}
	return gts_sip_register(msg, p);
}

static int ki_sticky_reply(struct sip_msg *msg)
{
	return gts_sip_reply(msg);
}

static int ki_sticky_route(struct sip_msg *msg)
{
	return gts_sip_route(msg);
}

static int ki_sticky_rr(struct sip_msg *msg)
{
	return gts_sip_rr(msg);
}

static int ki_sticky_flow_closed(struct sip_msg *msg, int conid)
{
	if(conid <= 0)
		return -1;
	gts_flow_closed((uint32_t)conid);
	return 1;
}

/* in event_route[tcp:closed]: the faked message carries the connection's
 * receive info, whose proto_reserved1 is the connection id ($conid is
 * already null there: the connection is unhashed) */
static int ki_sticky_flow_closed_current(struct sip_msg *msg)
{
	return ki_sticky_flow_closed(msg, msg->rcv.proto_reserved1);
}

static int w_sticky_flow_closed0(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_sticky_flow_closed_current(msg);
}

static int w_sticky_register(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_sticky_register(msg);
}

static int w_sticky_register_policy(struct sip_msg *msg, char *p1, char *p2)
{
	str s;
	if(fixup_get_svalue(msg, (gparam_t *)p1, &s) < 0) {
		LM_ERR("sticky_register(): cannot get the policy\n");
		return -3;
	}
	return ki_sticky_register_policy(msg, &s);
}

static int w_sticky_reply(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_sticky_reply(msg);
}

static int w_sticky_route(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_sticky_route(msg);
}

static int w_sticky_rr(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_sticky_rr(msg);
}

static int w_sticky_flow_closed(struct sip_msg *msg, char *p1, char *p2)
{
	int conid;
	if(fixup_get_ivalue(msg, (gparam_t *)p1, &conid) < 0) {
		LM_ERR("sticky_flow_closed(): cannot get the connection id\n");
		return -1;
	}
	return ki_sticky_flow_closed(msg, conid);
}

/* clang-format off */
static sr_kemi_t sr_kemi_genesys_tlssticky_exports[] = {
	{ str_init("genesys_tlssticky"), str_init("sticky_register"),
		SR_KEMIP_INT, ki_sticky_register,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_tlssticky"), str_init("sticky_register_policy"),
		SR_KEMIP_INT, ki_sticky_register_policy,
		{ SR_KEMIP_STR, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_tlssticky"), str_init("sticky_reply"),
		SR_KEMIP_INT, ki_sticky_reply,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_tlssticky"), str_init("sticky_route"),
		SR_KEMIP_INT, ki_sticky_route,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_tlssticky"), str_init("sticky_rr"),
		SR_KEMIP_INT, ki_sticky_rr,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_tlssticky"), str_init("sticky_flow_closed"),
		SR_KEMIP_INT, ki_sticky_flow_closed,
		{ SR_KEMIP_INT, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("genesys_tlssticky"), str_init("sticky_flow_closed_current"),
		SR_KEMIP_INT, ki_sticky_flow_closed_current,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ {0, 0}, {0, 0}, 0, NULL, { 0, 0, 0, 0, 0, 0 } }
};
/* clang-format on */

int mod_register(char *path, int *dlflags, void *p1, void *p2)
{
	sr_kemi_modules_add(sr_kemi_genesys_tlssticky_exports);
	return 0;
}
