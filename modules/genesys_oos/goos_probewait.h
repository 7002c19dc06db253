/*
 * genesys_oos: genesys_oos.probe requests waiting for their probe's result
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

#ifndef _GOOS_PROBEWAIT_H_
#define _GOOS_PROBEWAIT_H_

#include <stdint.h>

#include "core/rpc.h"

#include "goos_target.h"

/* requests waiting at most, all targets together */
#define GOOS_WAIT_MAX 1024

/*! a genesys_oos.probe request waiting for the result of probe `seq` of
 * target `id` (shm, chained from goos_root->waiters under the table lock) */
typedef struct goos_wait
{
	struct goos_wait *next;
	int id;
	uint32_t gen;
	uint32_t seq;
	int64_t deadline_ms;
	/*! the RPC transport's delayed reply, answered by the process that
	 * completes the probe; NULL: the transport cannot wait (ctl, i.e.
	 * kamcmd): the command answered at once, the result is only logged */
	rpc_delayed_ctx_t *dctx;
	/* filled when the request leaves the list */
	int fault; /*!< 0: the probe's result below, else an RPC fault code */
	int result, reason, code, rtt_ms, state, forced;
	char uri[GOOS_URI_MAX];
} goos_wait_t;

/*! a new request for target `id` (not in any list yet), or NULL (no shm) */
goos_wait_t *goos_wait_new(int id, uint32_t seq, rpc_delayed_ctx_t *dctx);

/*! under the lock: w waits for its probe of t; 0, or 1 when an identical
 * request without a delayed reply already waits (w is freed), -1 when
 * GOOS_WAIT_MAX requests wait (w is not taken) */
int goos_wait_add(goos_target_t *t, goos_wait_t *w);

/*! under the lock, after a probe of t completed: its waiting requests
 * leave the list, with the result; goos_wait_reply() answers them */
void goos_wait_done(goos_target_t *t, int id);

/*! under the lock (probe process, every pass): requests whose target was
 * released or whose deadline passed leave the list with a fault */
void goos_wait_sweep(int64_t now);

/*! with no genesys_oos lock held: answer (delayed reply) and log the
 * requests that left the list in this process */
void goos_wait_reply(void);

#endif
