/*
 * genesys_tlssticky: parameter validation (pure logic, no Kamailio deps)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 *
 * What mod_init() checks before it touches shm, sockets or OpenSSL; the
 * socket parameters (contact_socket, relay_address) need the core and are
 * checked in genesys_tlssticky_mod.c.
 */

#ifndef GTS_PARAMS_H
#define GTS_PARAMS_H

#include <stddef.h>

/* allowed ranges */
#define GTS_EXPIRES_MAX 31536000 /* one year */
#define GTS_PENDING_TTL_MAX 3600
#define GTS_MAX_CONTACTS_MAX 256
#define GTS_MAX_BINDINGS_MAX 100000000
#define GTS_HASH_SIZE_MIN 16
#define GTS_HASH_SIZE_MAX (1 << 24)
#define GTS_TIMER_INTERVAL_MAX 60
#define GTS_INFLIGHT_MAX_MAX (1 << 24)
#define GTS_TOKEN_PARAM_MAX 16
#define GTS_RELAY_HEADER_MIN 2
#define GTS_RELAY_HEADER_MAX 64

/* the modparams, as set in the cfg (strings not NUL-terminated except
 * the policies) */
typedef struct gts_params
{
	const char *secret; /* NULL: not set */
	size_t secret_len;
	int tcp;
	const char *tls_policy;
	const char *tcp_policy;
	int registrar_default_timeout;
	int default_expires;
	int pending_ttl;
	int max_contacts;
	int max_bindings;
	int hash_size;
	int timer_interval;
	int rr_token;
	int tcp_closed_hook;
	int inflight_max;
	const char *token_param;
	size_t token_param_len;
	int relay;
	const char *relay_header;
	size_t relay_header_len;
	int openssl_atfork;
} gts_params_t;

/* check every value; on success returns 0 and the parsed policies
 * (GTS_POL_*) in *tls_policy and *tcp_policy; on error returns -1 and
 * writes one line naming the parameter, its value and what is allowed
 * into err */
int gts_params_check(const gts_params_t *p, int *tls_policy, int *tcp_policy,
		char *err, size_t errlen);

/* 1 when the secret is the example of the reference configuration
 * ("CHANGE-ME..."): valid, but anyone who read the example can forge
 * tokens */
int gts_params_secret_is_example(const gts_params_t *p);

#endif
