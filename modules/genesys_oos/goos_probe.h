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

/* timer process tick: the resolution of every deadline and period */
#define GOOS_TICK_MS 10

extern str goos_probe_from;			   /*!< From URI of the probes */
extern str goos_send_socket;		   /*!< default send socket (modparam) */
extern struct socket_info *goos_send_si; /*!< ... resolved */
extern int goos_transport_check;	   /*!< ICMP / TCP refused detection */

/*! bind tm (mod_init) */
int goos_probe_init(void);

/*! the timer process main function (fork_basic_utimer) */
void goos_probe_timer(unsigned int ticks, void *param);

#endif
