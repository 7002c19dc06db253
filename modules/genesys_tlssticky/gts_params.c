/*
 * genesys_tlssticky: parameter validation (pure logic, no Kamailio deps)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

#include <stdio.h>
#include <string.h>

#include "gts_params.h"
#include "gts_table.h"

static int range(
		char *err, size_t errlen, const char *name, int v, int lo, int hi)
{
	if(v >= lo && v <= hi)
		return 0;
	snprintf(err, errlen, "modparam \"%s\" = %d is out of range: allowed %d-%d",
			name, v, lo, hi);
	return -1;
}

/* 1 when s is lo-hi characters of [A-Za-z0-9_-] */
static int word_ok(const char *s, size_t len, size_t lo, size_t hi)
{
	size_t i;

	if(s == NULL || len < lo || len > hi)
		return 0;
	for(i = 0; i < len; i++)
		if(!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
				   || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'
				   || s[i] == '_'))
			return 0;
	return 1;
}

static int policy(
		char *err, size_t errlen, const char *name, const char *s, int *out)
{
	*out = s ? gts_policy_parse(s, strlen(s)) : -1;
	if(*out >= 0)
		return 0;
	snprintf(err, errlen,
			"modparam \"%s\" = \"%s\" is invalid: allowed \"no-inbound\" or"
			" \"reconnect\"",
			name, s ? s : "");
	return -1;
}

int gts_params_check(const gts_params_t *p, int *tls_policy, int *tcp_policy,
		char *err, size_t errlen)
{
	if(p->secret == NULL || p->secret_len < GTS_SECRET_MIN) {
		snprintf(err, errlen,
				"modparam \"secret\" is %s: set the same secret of at least"
				" %d bytes on every proxy of the pool (e.g. openssl rand -hex"
				" 32)",
				p->secret_len > 0 ? "too short" : "missing", GTS_SECRET_MIN);
		return -1;
	}
	if(range(err, errlen, "tcp", p->tcp, 0, 1) < 0
			|| range(err, errlen, "registrar_default_timeout",
					   p->registrar_default_timeout, 0, GTS_EXPIRES_MAX)
					   < 0
			|| range(err, errlen, "default_expires", p->default_expires, 1,
					   GTS_EXPIRES_MAX)
					   < 0
			|| range(err, errlen, "pending_ttl", p->pending_ttl, 1,
					   GTS_PENDING_TTL_MAX)
					   < 0
			|| range(err, errlen, "max_contacts", p->max_contacts, 1,
					   GTS_MAX_CONTACTS_MAX)
					   < 0
			|| range(err, errlen, "max_bindings", p->max_bindings, 0,
					   GTS_MAX_BINDINGS_MAX)
					   < 0
			|| range(err, errlen, "hash_size", p->hash_size, GTS_HASH_SIZE_MIN,
					   GTS_HASH_SIZE_MAX)
					   < 0
			|| range(err, errlen, "timer_interval", p->timer_interval, 1,
					   GTS_TIMER_INTERVAL_MAX)
					   < 0
			|| range(err, errlen, "rr_token", p->rr_token, 0, 1) < 0
			|| range(err, errlen, "tcp_closed_hook", p->tcp_closed_hook, 0, 1)
					   < 0
			|| range(err, errlen, "inflight_max", p->inflight_max, 0,
					   GTS_INFLIGHT_MAX_MAX)
					   < 0
			|| range(err, errlen, "relay", p->relay, 0, 1) < 0
			|| range(err, errlen, "openssl_atfork", p->openssl_atfork, 0, 1)
					   < 0)
		return -1;
	if(p->hash_size & (p->hash_size - 1)) {
		snprintf(err, errlen,
				"modparam \"hash_size\" = %d must be a power of two (%d to"
				" %d)",
				p->hash_size, GTS_HASH_SIZE_MIN, GTS_HASH_SIZE_MAX);
		return -1;
	}
	if(!word_ok(p->token_param, p->token_param_len, 1, GTS_TOKEN_PARAM_MAX)) {
		snprintf(err, errlen,
				"modparam \"token_param\" must be 1-%d characters of"
				" [A-Za-z0-9_-]",
				GTS_TOKEN_PARAM_MAX);
		return -1;
	}
	if(policy(err, errlen, "tls_policy", p->tls_policy, tls_policy) < 0
			|| policy(err, errlen, "tcp_policy", p->tcp_policy, tcp_policy) < 0)
		return -1;
	if(!word_ok(p->relay_header, p->relay_header_len, GTS_RELAY_HEADER_MIN,
			   GTS_RELAY_HEADER_MAX)) {
		snprintf(err, errlen,
				"modparam \"relay_header\" must be a header name of %d-%d"
				" characters of [A-Za-z0-9_-]",
				GTS_RELAY_HEADER_MIN, GTS_RELAY_HEADER_MAX);
		return -1;
	}
	return 0;
}

int gts_params_secret_is_example(const gts_params_t *p)
{
	return p->secret != NULL && p->secret_len >= 9
		   && strncmp(p->secret, "CHANGE-ME", 9) == 0;
}
