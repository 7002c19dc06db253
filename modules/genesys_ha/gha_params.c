/*
 * genesys_ha module: parameter validation (pure logic, no Kamailio runtime)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: the modparams' allowed values (see gha_params.h);
 * each message names the parameter, its value and what to use instead
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gha_params.h"
#include "gha_pair.h"
#include "gha_sync.h" /* GHA_SYNC_ORIGIN_MAX */

/* the message into err; -1 */
static int bad(char *err, size_t errlen, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* a host name as DNS has it: letters, digits, '.' and '-', at most 253,
 * not starting with '.' or '-', not ending with '.' */
static int valid_name(const char *s, int len)
{
	int i, c;

	if(len <= 0 || len > GHA_RR_POOL_NAME_MAX || s[0] == '.' || s[0] == '-'
			|| s[len - 1] == '.')
		return 0;
	for(i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if(!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
				   || (c >= '0' && c <= '9') || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

static int check_lb(
		const gha_params_t *p, int *lb_alg, char *err, size_t errlen)
{
	const char *lb = p->lb_algorithm ? p->lb_algorithm : "";

	if(strcasecmp(lb, "round-robin") == 0) {
		*lb_alg = GHA_LB_ROUND_ROBIN;
	} else if(strcasecmp(lb, "random") == 0) {
		*lb_alg = GHA_LB_RANDOM;
	} else if(strcasecmp(lb, "hash") == 0) {
		*lb_alg = GHA_LB_HASH;
	} else {
		return bad(err, errlen,
				"lb_algorithm '%s' is invalid: use round-robin, random or "
				"hash",
				lb);
	}
	return 0;
}

/* routing, the pool file, Record-Route */
static int check_routing(const gha_params_t *p, char *err, size_t errlen)
{
	if(p->rr_dn != 0 && p->rr_dn != 1)
		return bad(err, errlen,
				"rr_dn %d is invalid: use 1 (the DN in the Record-Route, seed"
				" 001) or 0 (the pair only)",
				p->rr_dn);
	if(p->down_grace < 0 || p->down_grace > GHA_DOWN_GRACE_MAX)
		return bad(err, errlen,
				"down_grace %d is invalid: use 0 (off: refuse at once while "
				"no member answers) to 60000 ms",
				p->down_grace);
	if(p->max_pool_elements < 1)
		return bad(err, errlen,
				"max_pool_elements %d is invalid: use a positive number of "
				"<sipserver>, <featureserver> and <proxy> elements",
				p->max_pool_elements);
	if(p->serving_len > GHA_NAME_MAX)
		return bad(err, errlen,
				"serving_sipserver is longer than %d characters", GHA_NAME_MAX);
	if(p->rr_pool_port != 0 && p->rr_pool_port != 1)
		return bad(err, errlen,
				"rr_pool_port %d is invalid: use 1 (the URI carries the "
				"port: A/AAAA records) or 0 (no port: SRV records)",
				p->rr_pool_port);
	if(p->rr_pool_name_len > 0
			&& !valid_name(p->rr_pool_name, p->rr_pool_name_len))
		return bad(err, errlen,
				"rr_pool_name '%.*s' is invalid: give the pool's FQDN "
				"(host name only, the seed's external-contact host, resolved "
				"by DNS to every proxy of the pool)",
				p->rr_pool_name_len, p->rr_pool_name);
	return 0;
}

/* pending transactions: end_pending_on_down, t1_probe, t1_slots */
static int check_pending(const gha_params_t *p, char *err, size_t errlen)
{
	if(p->end_pending_on_down != 0 && p->end_pending_on_down != 1)
		return bad(err, errlen, "end_pending_on_down %d is invalid: use 1 or 0",
				p->end_pending_on_down);
	if(p->t1_probe != 0 && p->t1_probe != 1)
		return bad(
				err, errlen, "t1_probe %d is invalid: use 1 or 0", p->t1_probe);
	if(p->t1_slots < GHA_T1_SLOTS_MIN || p->t1_slots > GHA_T1_SLOTS_MAX)
		return bad(err, errlen, "t1_slots %d is invalid: use %d to %d",
				p->t1_slots, GHA_T1_SLOTS_MIN, GHA_T1_SLOTS_MAX);
	return 0;
}

/* the pool acts as one: only with dmq set */
static int check_dmq(const gha_params_t *p, char *err, size_t errlen)
{
	if(!p->dmq)
		return 0;
	if(p->dmq_interval < GHA_DMQ_INTERVAL_MIN
			|| p->dmq_interval > GHA_DMQ_INTERVAL_MAX)
		return bad(err, errlen,
				"dmq_interval %d is invalid: use 100 to 60000 ms",
				p->dmq_interval);
	if(p->dmq_peer_timeout < p->dmq_interval)
		return bad(err, errlen,
				"dmq_peer_timeout %d must not be below dmq_interval %d",
				p->dmq_peer_timeout, p->dmq_interval);
	if(p->dmq_probing < 0 || p->dmq_probing > GHA_DMQ_PEERS_MAX)
		return bad(err, errlen,
				"dmq_probing %d is invalid: 0 (off: every proxy probes every "
				"member) or the number of proxies probing each member",
				p->dmq_probing);
	if(p->dmq_sync_timeout < 0
			|| p->dmq_sync_timeout > GHA_DMQ_SYNC_TIMEOUT_MAX)
		return bad(err, errlen,
				"dmq_sync_timeout %d is invalid: use 0 to 30000 ms",
				p->dmq_sync_timeout);
	return 0;
}

int gha_params_check_own_address(
		int dmq, int own_address_len, char *err, size_t errlen)
{
	if(dmq && (own_address_len <= 0 || own_address_len > GHA_SYNC_ORIGIN_MAX))
		return bad(err, errlen,
				"dmq needs own_address (this proxy's host:port as in the "
				"pool file's <proxy> elements): it names this proxy's "
				"decisions");
	return 0;
}

int gha_params_check(
		const gha_params_t *p, int *lb_alg, char *err, size_t errlen)
{
	int alg = GHA_LB_ROUND_ROBIN;

	if(check_lb(p, &alg, err, errlen) < 0 || check_routing(p, err, errlen) < 0
			|| check_pending(p, err, errlen) < 0
			|| check_dmq(p, err, errlen) < 0)
		return -1;
	*lb_alg = alg;
	return 0;
}
