/*
 * genesys_oos: the shared target table
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

#ifndef _GOOS_TARGET_H_
#define _GOOS_TARGET_H_

#include <stdint.h>
#include <time.h>

#include "core/str.h"
#include "core/locking.h"
#include "core/ip_addr.h"

#include "api.h"
#include "goos_health.h"
#include "goos_sched.h"
#include "goos_heap.h"
#include "goos_params.h"

#define GOOS_URI_MAX 256
#define GOOS_SOCK_MAX 128

/* the table grows by chunks of targets that never move: an id stays valid
 * while the table grows, and no memory is taken for targets never used */
#define GOOS_CHUNK_BITS 8
#define GOOS_CHUNK (1 << GOOS_CHUNK_BITS)
#define GOOS_MAX_CHUNKS ((GOOS_MAX_TARGETS_MAX + GOOS_CHUNK) / GOOS_CHUNK)
/* buckets of the URI index (power of 2) */
#define GOOS_IDX_BUCKETS (1 << 16)

/*! transport-check state of a target: read and written by the probe
 * process only (in shm with the target, so that its size follows the
 * number of targets and never takes the probe process's pkg memory) */
typedef struct goos_side
{
	uint32_t gen; /*!< slot generation this state belongs to */
	int resolved; /*!< 1: dst valid, -1: cannot resolve, 0: not yet */
	int by_name;  /*!< the host is a name: resolve again for every probe */
	union sockaddr_union dst;
	int hashed;	  /*!< in the probe process's address hash */
	int dnext;	  /*!< next id in that hash bucket, -1: none */
	int usock;	  /*!< shared UDP socket of the check, -1: none */
	int conn_fd;  /*!< TCP connect in progress or -1 */
	int cidx;	  /*!< index in the list of connects, -1: none */
	int watching; /*!< a check runs for probe `seq` */
	uint32_t seq;
	int err;	/*!< errno seen for probe `seq`, 0: none */
	int queued; /*!< in the list of side events */
	/* TCP/TLS: the tm probe waits for the check's connect to succeed, so
	 * a refused target costs no tm send (and no core ERROR log lines) */
	int deferred;		 /*!< the tm probe waits for the connect */
	int ready;			 /*!< connect succeeded: send the tm probe now */
	int64_t defer_until; /*!< send it anyway at this time */
} goos_side_t;

/*! one probed target, in shm; every field is written under goos_root->lock
 * and read under it, except: `state` (atomic loads in the request path) and
 * the lookup fields (refs, gen, hash, uri, sock: lock-free lookups validate
 * them with the generation, see goos_find_nolock).  The fields the probe timer looks at on every tick
 * come first (one cache line), the buffers last. */
typedef struct goos_target
{
	int refs;			/*!< registrations; 0 = free slot */
	uint32_t gen;		/*!< bumped every time the slot is (re)used or freed */
	int started;		/*!< timer process planned the first probe */
	goos_sched_t sched; /*!< probe timing */

	/*! effective state (forced state wins): the one lock-free field,
	 * read with atomic loads in the request path */
	volatile int state;
	goos_health_t health; /*!< probed state with hysteresis */
	int forced;			  /*!< 0, GOOS_ACTIVE or GOOS_DOWN */
	int remote;			  /*!< not probed here periodically (api.h) */
	int remote_state;	  /*!< its state then, as another proxy saw it */
	int tc_off;			  /*!< transport check disabled for this target */
	int proto;			  /*!< PROTO_UDP/TCP/TLS from the URI */

	/* last completed probe, for RPC probe waiters */
	uint32_t done_seq;
	int done_result; /*!< goos_result_t, or -1 */
	int done_reason; /*!< goos_reason_t */

	/* visibility */
	time_t since;	 /*!< wall clock of the last effective change */
	int last_code;	 /*!< last reply code (0: none) */
	int last_rtt_ms; /*!< round trip of the last reply, -1: none */
	int last_reason; /*!< reason of the last effective change */
	unsigned long probes;
	unsigned long failures; /*!< timeouts + transport errors */
	unsigned long timeouts;
	unsigned long transport_errors;
	unsigned long late_replies;

	int rpc_refs;			/*!< of refs, taken by genesys_oos.add */
	uint32_t hash;			/*!< of the URI, for lookups */
	int inext;				/*!< next id in the URI index bucket, -1: none */
	int fnext;				/*!< next released slot (refs 0), -1: none */
	struct socket_info *si; /*!< resolved send socket or NULL */
	str uri;
	str sock; /*!< send socket "proto:ip:port", len 0 = tm's choice */
	char uri_buf[GOOS_URI_MAX];
	char sock_buf[GOOS_SOCK_MAX];
	goos_side_t side; /*!< probe process only */
} goos_target_t;

typedef struct goos_root
{
	gen_lock_t lock;
	int max_targets; /*!< the max_targets limit, GOOS_MAX_TARGETS_MAX for 0 */
	/*! slots allocated (a multiple of GOOS_CHUNK); written under the lock
	 * after the chunk, read lock-free with an acquire load */
	int capacity;
	int hiwater;   /*!< slots [hiwater, capacity) were never used */
	int live;	   /*!< targets registered */
	int free_head; /*!< last released slot, chained by fnext; -1: none */
	/*! set when something needs the probe process before its next planned
	 * event (a probe request, a cfg change); the first setter also writes
	 * a byte to wake_wr, which the process polls */
	volatile int kick;
	volatile int npending; /*!< probes in flight (all targets) */
	/*! when the probe process wakes next (INT64_MIN while it is awake):
	 * a target whose next event moves before it kicks the process */
	int64_t wake_ms;
	/*! the periods (s) every target is planned with: oos_check and
	 * oos_force as the probe process last re-planned them, written and
	 * read under the lock.  A probe completed in a SIP worker plans its
	 * next one with these, not with the worker's own view of the cfg
	 * group, which may be older or newer than the probe process's: a
	 * completion racing a change is then corrected by the re-plan. */
	int plan_check_s;
	int plan_force_s;
	int wake_rd;
	int wake_wr;
	/*! genesys_oos.probe requests waiting for a result (goos_probewait.h) */
	struct goos_wait *waiters;
	int nwaiters;
	/*! every live target whose next event is planned, keyed by the time
	 * the probe process must look at it (goos_sched_event) */
	goos_heap_t heap;
	/*! URI index: first id per bucket of t->hash, chained by t->inext;
	 * changed under the lock inside an odd idx_seq (a seqlock for the
	 * lock-free lookups of the request path) */
	uint32_t idx_seq;
	int idx[GOOS_IDX_BUCKETS];
	goos_target_t *chunks[GOOS_MAX_CHUNKS];
} goos_root_t;

/*! under the lock: the target's sched changed; moves it in the heap and
 * wakes the probe process when its next event comes before that wake-up */
void goos_table_rekey(goos_target_t *t, int id);

/*! under the lock: ask for an immediate probe of t */
void goos_target_want(goos_target_t *t, int id);


extern goos_root_t *goos_root;

/*! target `id` (< capacity) */
static inline goos_target_t *goos_tgt(int id)
{
	return &goos_root->chunks[id >> GOOS_CHUNK_BITS][id & (GOOS_CHUNK - 1)];
}

/*! the modparams; oos_check and oos_force are only their start values:
 * read the parameters in force with goos_params_now() (goos_cfg.h) */
extern goos_params_t goos_params;

/*! wake the probe process (any process, with or without the lock) */
void goos_kick(void);

/*! monotonic clock, ms (same clock in every process) */
int64_t goos_now_ms(void);

/*! create the table (idempotent: genesys_ha may bind before our mod_init) */
int goos_table_init(void);
void goos_table_destroy(void);

/*! register a target (see api.h); errors are logged; returns id or < 0 */
int goos_table_register(str *uri, str *sock);
/*! the same; on a refusal, why (also logged) in err (may be NULL) */
int goos_table_register_err(str *uri, str *sock, char *err, int errlen);
/*! the live target `id` with the table lock held (the caller releases
 * it), or NULL without the lock when `id` is not in use */
goos_target_t *goos_table_lock_live(int id);
int goos_table_release(int id);
/*! id of the first target with this URI, or -1 */
int goos_table_lookup(str *uri);
/*! id of the target with this URI and socket (sock NULL/empty: none) */
int goos_table_lookup_sock(str *uri, str *sock);
/*! lock-free effective state; GOOS_UNKNOWN for a bad id */
goos_state_t goos_table_state(int id);
/*! ask the timer process for an immediate probe; 0 ok, -1 bad id */
int goos_table_want_probe(int id, int only_if_not_up);

/*! a state change to notify after the lock is released */
typedef struct goos_change_rec
{
	goos_change_t ch;
	char uri_buf[GOOS_URI_MAX];
	char sock_buf[GOOS_SOCK_MAX];
	str sock;
	int rtt_ms;
	char detail[96]; /*!< why, in words, for the log line */
} goos_change_rec_t;

/*! set the effective state of t from its probed and forced state; fills
 * rec and returns 1 when it changed (call under the lock) */
int goos_target_update(goos_target_t *t, int id, goos_reason_t reason, int code,
		goos_change_rec_t *rec);

#endif
