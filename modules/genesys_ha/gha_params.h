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
 * \brief genesys_ha :: the modparams' defaults and allowed values, checked
 * by mod_init before anything is loaded or allocated
 *
 * The parameters stay the module's globals (genesys_ha_mod.c,
 * gha_pending.c, gha_poolrr.c, gha_dmq.c), initialized from the defaults
 * below; mod_init copies them into a gha_params_t and calls
 * gha_params_check().  What needs Kamailio itself is checked where it is
 * used: lb_hash_key (a pv format, gha_route.c), pool_file and schema_file
 * (read by gha_state.c), the modules genesys_oos, tm, rr and dmq.
 */

#ifndef _GHA_PARAMS_H_
#define _GHA_PARAMS_H_

#include <stddef.h>

#include "gha_pool.h"

/* defaults (docs/genesys_ha.md, doc/genesys_ha_admin.xml) */
#define GHA_DEFAULT_LB_ALGORITHM "round-robin"
#define GHA_DEFAULT_RR_DN 1
#define GHA_DEFAULT_DOWN_GRACE 5000
#define GHA_DEFAULT_MAX_POOL_ELEMENTS GHA_MAX_POOL_ELEMENTS
#define GHA_DEFAULT_END_PENDING 1
#define GHA_DEFAULT_T1_PROBE 1
#define GHA_DEFAULT_T1_SLOTS 4096
#define GHA_DEFAULT_RR_POOL_PORT 1
#define GHA_DEFAULT_DMQ 0
#define GHA_DEFAULT_DMQ_INTERVAL 1000
#define GHA_DEFAULT_DMQ_PEER_TIMEOUT 3000
#define GHA_DEFAULT_DMQ_SYNC_TIMEOUT 1000
#define GHA_DEFAULT_DMQ_PROBING 0

/* allowed ranges */
#define GHA_DOWN_GRACE_MAX 60000 /* ms */
#define GHA_T1_SLOTS_MIN 16
#define GHA_T1_SLOTS_MAX (1 << 22)
#define GHA_DMQ_INTERVAL_MIN 100 /* ms */
#define GHA_DMQ_INTERVAL_MAX 60000
#define GHA_DMQ_SYNC_TIMEOUT_MAX 30000 /* ms */
/* the peers a proxy tracks (gha_dmq_int.h): dmq_probing at most */
#define GHA_DMQ_PEERS_MAX 64
#define GHA_RR_POOL_NAME_MAX 253 /* a DNS name */

/*! the modparams as set in the cfg (strings NUL-terminated as Kamailio
 * gives them; a length where only the length is checked) */
typedef struct gha_params
{
	const char *lb_algorithm; /*!< round-robin, random, hash */
	int rr_dn;				  /*!< 0/1 */
	int down_grace;			  /*!< ms, 0 off */
	int max_pool_elements;
	int serving_len;		  /*!< serving_sipserver: length, 0 not set */
	int rr_pool_port;		  /*!< 0/1 */
	const char *rr_pool_name; /*!< NULL or "": off */
	int rr_pool_name_len;
	int end_pending_on_down; /*!< 0/1 */
	int t1_probe;			 /*!< 0/1 */
	int t1_slots;
	int dmq; /*!< 0 off: the dmq_* parameters are not checked */
	int dmq_interval;
	int dmq_peer_timeout;
	int dmq_probing;
	int dmq_sync_timeout;
} gha_params_t;

/*! the defaults (nothing set in the cfg) */
#define GHA_PARAMS_DEFAULTS                                                   \
	{                                                                         \
		.lb_algorithm = GHA_DEFAULT_LB_ALGORITHM, .rr_dn = GHA_DEFAULT_RR_DN, \
		.down_grace = GHA_DEFAULT_DOWN_GRACE,                                 \
		.max_pool_elements = GHA_DEFAULT_MAX_POOL_ELEMENTS,                   \
		.end_pending_on_down = GHA_DEFAULT_END_PENDING,                       \
		.t1_probe = GHA_DEFAULT_T1_PROBE, .t1_slots = GHA_DEFAULT_T1_SLOTS,   \
		.rr_pool_port = GHA_DEFAULT_RR_POOL_PORT, .dmq = GHA_DEFAULT_DMQ,     \
		.dmq_interval = GHA_DEFAULT_DMQ_INTERVAL,                             \
		.dmq_peer_timeout = GHA_DEFAULT_DMQ_PEER_TIMEOUT,                     \
		.dmq_sync_timeout = GHA_DEFAULT_DMQ_SYNC_TIMEOUT,                     \
		.dmq_probing = GHA_DEFAULT_DMQ_PROBING                                \
	}

/*! check every value; on success returns 0 and the load-balancing
 * algorithm (GHA_LB_*) in *lb_alg, err untouched; on error returns -1
 * and writes one line naming the parameter, its value and what is allowed
 * into err (the first wrong parameter, in the order of the struct) */
int gha_params_check(
		const gha_params_t *p, int *lb_alg, char *err, size_t errlen);

/*! with dmq set: own_address (its length: 0 not set) given and not too
 * long, it names this proxy's decisions; 0 ok, else -1 and the message
 * in err.  Apart from gha_params_check() because gha_dmq_init() checks it
 * once the dmq module is found: when both are missing, "load dmq" is the
 * first thing the operator reads. */
int gha_params_check_own_address(
		int dmq, int own_address_len, char *err, size_t errlen);

#endif
