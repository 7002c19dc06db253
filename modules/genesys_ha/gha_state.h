/*
 * genesys_ha module: shared state (snapshots in shm, pair runtime state,
 * genesys_oos glue, events)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: shared state
 *
 * The pool is an immutable snapshot in one shm block (gha_pool_t).
 * Publishing a new snapshot (reload) is a pointer swap under root->lock;
 * every process keeps a counted reference on the snapshot it last used and
 * re-acquires only when the shared generation changed, so the request path
 * takes no lock.  The runtime state of each pair and feature server lives
 * outside the snapshots, in a slot of the state table (gha_slots.h) that
 * the snapshot's pair refers to, resolved when the snapshot is loaded; a
 * pair that stays the same across a reload keeps its slot, so a write made
 * through the previous snapshot is never lost.  Runtime state is written
 * under root->lock (short, never held while calling another module or
 * running a route) and read lock-free (aligned ints).
 */

#ifndef _GHA_STATE_H_
#define _GHA_STATE_H_

#include "core/str.h"
#include "core/locking.h"
#include "core/counters.h"
#include "genesys_oos/api.h"
#include "gha_pool.h"
#include "gha_slots.h"

/*! return codes of the script functions (never 0) */
#define GHA_RC_OK 1
#define GHA_RC_AS_IS 2			   /*!< nothing to change, relay as is */
#define GHA_RC_GRACE 3			   /*!< to a member not known alive (grace) */
#define GHA_RC_OUT_OF_SERVICE (-1) /*!< pair out of service */
#define GHA_RC_INACTIVE (-2)	   /*!< pair inactive: no new dialogs */
#define GHA_RC_UNKNOWN_PAIR (-3)   /*!< unknown pair (or no pool) */
#define GHA_RC_NOT_FOUND (-4)	   /*!< nothing matched */
#define GHA_RC_ERROR (-5)		   /*!< internal error, bad input */
#define GHA_RC_FOREIGN (-6) /*!< in-dialog: neither to nor from the pool */

typedef struct gha_root
{
	gen_lock_t lock;		 /*!< cur pointer and all runtime state */
	gha_pool_t *cur;		 /*!< published snapshot, or NULL */
	gha_slots_t *slots;		 /*!< runtime state of pairs and feature servers */
	unsigned int generation; /*!< bumped at every publish */
	int reloading;			 /*!< 1 while a reload runs (atomic) */
	unsigned int rr_pairs;	 /*!< round-robin position, pairs (atomic) */
	unsigned int rr_fs;		 /*!< round-robin position, feature servers */
	/*! latest deadline of an armed request verification (probe clock):
	 * probe results after it skip the pair scan (atomic) */
	int64_t verify_until_ms;
	long grace_until_ms; /*!< end of the latest down grace (atomic), 0 none */
	long started;
} gha_root_t;

/* module parameters (genesys_ha_mod.c) */
extern str gha_pool_file;
extern str gha_schema_file;
extern str gha_own_address;
extern str gha_serving;
extern str gha_geo_location;
extern str gha_lb_name;
extern str gha_lb_hash_key; /*!< lb_algorithm "hash": the key (pv format) */
extern str gha_event_callback;
extern int gha_lb_alg;
extern int gha_rr_dn;	   /*!< ha_record_route() adds the DN (default 1) */
extern int gha_down_grace; /*!< ms of down grace, 0 off (default 5000) */
/*! most <sipserver>, <featureserver> and <proxy> elements in a pool file */
extern int gha_max_pool_elements;

extern gha_root_t *gha_root;
extern goos_api_t gha_goos;

/* statistics */
typedef struct gha_counters
{
	counter_handle_t switchovers, pair_down, pair_up, new_dialogs, rejected,
			in_dialog, route_refused, failovers, backup_requests, reloads,
			reload_errors, grace;
} gha_counters_t;
extern gha_counters_t gha_cnt;

int gha_state_init(void);
/* 40004: called in the main process once every listener is open */
void gha_state_log_initialized(void);
void gha_state_destroy(void);

/*! the current snapshot for this process (no lock unless a reload
 * happened since the last call); NULL when no pool is loaded */
gha_pool_t *gha_snap(void);

/*! reload the pool file; 0 ok, else an event id with msg */
int gha_reload(char *msg, int msglen);

/*! the serving pair index of p, or -1 */
int gha_serving_index(const gha_pool_t *p);
/*! this proxy's site (geo_location, else own_address's site), may be empty */
void gha_own_site(const gha_pool_t *p, str *site);

/* the runtime state's changes (gha_runtime.c) */

/*! logs, counters, event routes of a pair's events (and, for a switchover
 * decided here, its publication to the pool: gha_dmq.c) */
void gha_emit(gha_pool_t *p, int pi, const gha_pair_events_t *ev);

/*! genesys_oos subscribers (subscribed by gha_state_init): a target's
 * state change; every completed probe (decides request verifications) */
void gha_goos_cb(const goos_change_t *ch, void *param);
void gha_result_cb(const goos_probe_result_t *r, void *param);

/*! apply a member/feature server state change (genesys_oos callback) */
void gha_member_state(int goos_id, int new_state);

/*! request from member 'member' of pair 'pi' (seed 003) */
void gha_request_from(gha_pool_t *p, int pi, int member);

/*! operator switchover; 0 ok, -1 other member down */
int gha_operator_switchover(gha_pool_t *p, int pi);

/*! relayed request to member failed; timeout != 0 for timeout/transport;
 * returns the member to retry on or -1 */
int gha_relay_failed(gha_pool_t *p, int pi, int member, int timeout);

/*! after a failed relay (gha_relay_failed() gave -1): the member to retry
 * on although it is not known alive (down grace), or -1 */
int gha_grace_retry_member(gha_pool_t *p, int pi, int member, int timeout);
/*! the member to route to while the pair is in its down grace, or -1
 * (lock-free) */
int gha_grace_target(const gha_pair_t *pr);
/*! monotonic clock, ms (> 0) */
long gha_now_ms(void);

/*! copy of a pair's runtime state, read under the lock (for RPC) */
void gha_pair_copy(gha_pool_t *p, int pi, gha_pair_state_t *out);
/*! copy of a feature server state (for RPC) */
void gha_fs_copy(gha_pool_t *p, int fi, int *state, long *since);

/*! lock-free reads for the request path */
static inline int gha_active(const gha_pair_t *pr)
{
	return __atomic_load_n(&pr->slot->st.active, __ATOMIC_RELAXED);
}
static inline int gha_pstate(const gha_pair_t *pr)
{
	return __atomic_load_n(&pr->slot->st.pstate, __ATOMIC_RELAXED);
}
static inline int gha_mstate(const gha_pair_t *pr, int m)
{
	return __atomic_load_n(&pr->slot->st.mstate[m], __ATOMIC_RELAXED);
}
static inline int gha_fs_state(const gha_fs_t *fs)
{
	return __atomic_load_n(&fs->slot->fs_state, __ATOMIC_RELAXED);
}
#define GHA_INC(x) __atomic_add_fetch(&(x), 1, __ATOMIC_RELAXED)

#endif
