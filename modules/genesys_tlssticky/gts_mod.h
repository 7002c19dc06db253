/*
 * genesys_tlssticky: shared module state (Kamailio side)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

#ifndef GTS_MOD_H
#define GTS_MOD_H

#include "core/str.h"
#include "core/locking.h"
#include "core/counters.h"
#include "core/socket_info.h"
#include "core/events.h"
#include "modules/rr/api.h"

#include "gts_table.h"
#include "gts_inflight.h"

#define GTS_RING_SIZE 8192

/* the shm root: the table and the closed-connection ring */
typedef struct gts_root
{
	gts_table_t table;
	gen_lock_set_t *locks;
	gen_lock_t *ring_lock;
	int ring_n;
	int ring_overflow;
	uint32_t ring[GTS_RING_SIZE];
	/* requests in flight over phones' flows (gts_flowtx.c) */
	gts_inflight_t inflight;
	gen_lock_set_t *if_locks;
} gts_root_t;

typedef struct gts_counters
{
	counter_handle_t registers; /* REGISTERs whose Contacts were rewritten */
	counter_handle_t committed; /* bindings committed by a 2xx */
	counter_handle_t removed;	/* bindings removed (any reason) */
	counter_handle_t routed;	/* requests sent over a phone's flow */
	counter_handle_t reconnect; /* requests sent by the reconnect policy */
	counter_handle_t flow_failed; /* flow gone: 430/480 */
	counter_handle_t forged;	/* forged or malformed (bad HMAC, ...) */
	counter_handle_t stale;		/* valid token of an older generation */
	counter_handle_t foreign;	/* valid token of another proxy */
	counter_handle_t relayed;	/* foreign: relayed to the token's proxy */
} gts_counters_t;

typedef struct gts_cfg
{
	str secret;
	int tcp;			   /* also make TCP flows sticky */
	int tls_policy;
	int tcp_policy;
	int registrar_default_timeout; /* cap, 0 = none */
	int default_expires;
	int pending_ttl;
	int max_contacts;
	int max_bindings;
	int hash_size;
	int timer_interval;
	int rr_token;
	int tcp_closed_hook;
	int inflight_max; /* requests in flight tracked, 0 = none */
	str token_param;
	str contact_socket;
	int relay;			/* relay requests with another proxy's token */
	str relay_address;	/* "proto:ip:port" for tokens we mint */
	str relay_header;	/* loop marker of a relayed request */
	int openssl_atfork; /* reset OpenSSL thread state at fork (issue 3791) */
	/* resolved at init */
	uint8_t relay_proto;
	gts_addr_t relay_addr; /* af 0: tokens name no relay address */
	struct socket_info *csock;
	str contact_hostport; /* shm/pkg-static "host:port" */
	const char *contact_transport; /* "" / "tcp" / "tls" */
} gts_cfg_t;

extern gts_root_t *gts_root;
extern gts_cfg_t gts_cfg;
extern gts_counters_t gts_cnt;
extern rr_api_t gts_rrb;
extern int gts_have_rr;

int gts_sip_register(struct sip_msg *msg, int policy);
int gts_sip_reply(struct sip_msg *msg);
int gts_sip_route(struct sip_msg *msg);
int gts_sip_rr(struct sip_msg *msg);
void gts_flow_closed(uint32_t conid);
void gts_sweep(int64_t now);
int gts_tcp_closed_cb(sr_event_param_t *evp);
void gts_timer(unsigned int ticks, void *param);

/* helpers shared with the RPC */
int gts_flow_alive(const gts_flow_t *f);
int gts_mint(const gts_flow_t *f, char *out, size_t outsz);
int gts_rewritten_contact(const gts_view_t *v, char *out, size_t outsz);
void gts_addr_str(const gts_addr_t *a, char *out, size_t outsz);

/* shared by gts_sip.c (REGISTER, 2xx) and gts_route.c (toward phones) */
struct ip_addr;
void gts_addr_to_ip(const gts_addr_t *a, struct ip_addr *ip);
int gts_sticky_proto(int proto);
int gts_conn_of_msg(struct sip_msg *msg, gts_conn_t *c);
struct socket_info *gts_local_socket(const gts_flow_t *f);
int gts_fork_init(void);

/* requests in flight when a flow closes (gts_flowtx.c) */
int gts_flowtx_init(void);
void gts_flowtx_destroy(void);
void gts_flowtx_track(struct sip_msg *msg, uint32_t conid, int policy);
void gts_flowtx_closed(uint32_t conid);

#endif
