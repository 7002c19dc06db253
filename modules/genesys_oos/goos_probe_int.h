/*
 * genesys_oos: shared by the three files of the probe engine
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_oos :: probe engine internals
 *
 * What goos_probe.c (the probe process's pass and poll loop), goos_side.c
 * (the transport check) and goos_tmprobe.c (tm probes and the completion of
 * a probe) share: the job of one probe, the jobs and completions of the
 * current pass, and the functions each calls in the others.  Not for the
 * rest of the module (goos_probe.h is).
 */

#ifndef _GOOS_PROBE_INT_H_
#define _GOOS_PROBE_INT_H_

#include <stdint.h>

#include "modules/tm/t_hooks.h"

#include "goos_target.h"

/* targets a pass takes at most; the rest is taken by the next pass, at
 * once (the heap keeps them in time order, so none is starved) */
#define GOOS_BATCH 256
/* completions a pass records at most: one per target taken, plus failed
 * tm sends of its jobs */
#define GOOS_NRECS (2 * GOOS_BATCH + 4)

typedef struct goos_job
{
	int id;
	uint32_t seq;
	uint32_t gen;
	int proto;
	int tc_off;
	int direct; /*!< its check already ran (deferred TCP probe): tm only */
	struct socket_info *si;
	char uri_buf[GOOS_URI_MAX];
	str uri;
	char sock_buf[GOOS_SOCK_MAX];
	str sock;
} goos_job_t;

/* goos_probe.c, probe process only: the current pass */
extern goos_job_t goos_jobs[GOOS_BATCH];
extern goos_change_rec_t goos_recs[GOOS_NRECS];
extern int goos_njobs, goos_nrecs, goos_ncompl;
extern struct pollfd *goos_pfds;

/* goos_side.c, probe process only: the UDP check sockets (polled as
 * goos_pfds[1 ...]), the TCP connects in progress (polled after them) and
 * the targets with a side event for the next pass */
extern int goos_nusocks;
extern int *goos_conns, goos_nconns;
extern int *goos_sev, goos_nsev;

/* goos_side.c */
int goos_side_init(void);
void goos_conn_del(goos_side_t *sd);
void goos_side_reset(goos_side_t *sd, int id, uint32_t gen);
void goos_side_stop(goos_side_t *sd);
void goos_side_collect(int64_t now, int npoll);
void goos_side_start(goos_job_t *job);
const char *goos_errno_detail(int proto, int err);
int goos_usock_fd(int i);

/* goos_tmprobe.c */
int goos_complete(goos_target_t *t, int id, goos_result_t res,
		goos_reason_t reason, int code, int rtt, const char *detail,
		int64_t now, goos_change_rec_t *rec);
void goos_tm_send(goos_job_t *job);

#endif
