/*
 * genesys_oos: the probe engine (timer process, tm probes, transport checks)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

#ifndef _GOOS_PROBE_H_
#define _GOOS_PROBE_H_

#include "core/str.h"
#include "core/ip_addr.h"

extern str goos_probe_from;				 /*!< From URI of the probes */
extern str goos_send_socket;			 /*!< default send socket (modparam) */
extern struct socket_info *goos_send_si; /*!< ... resolved */
extern int goos_transport_check;		 /*!< ICMP / TCP refused detection */

/*! bind tm (mod_init; goos_tmprobe.c) */
int goos_probe_init(void);

/*! tm's current transaction is set aside while an event route runs (it may
 * run inside tm's reply callback of a probe; goos_tmprobe.c) */
void goos_tm_ctx_push(void **t, int *branch);
void goos_tm_ctx_pop(void *t, int branch);

/*! main loop of the probe process (never returns) */
void goos_probe_loop(void);

#endif
