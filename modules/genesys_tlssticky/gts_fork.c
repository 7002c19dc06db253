/*
 * genesys_tlssticky: OpenSSL thread-local state and fork()
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 *
 * Kamailio 5.6's tls module makes OpenSSL allocate in shared memory
 * (CRYPTO_set_mem_functions with shm_malloc). OpenSSL 3 keeps per-thread
 * state (the error queue, the thread's handler list) behind pthread keys;
 * when the main process has used OpenSSL before it forks the workers (tls
 * and this module do, in mod_init), every worker inherits pointers to the
 * SAME shm blocks and they use and free them concurrently: "qm_free(): BUG:
 * freeing already freed pointer ... tls_init.c: ser_free", then SIGSEGV,
 * after a few dozen to a few hundred TLS connections (Kamailio issues 3695,
 * 3791). Kamailio 5.7.5/5.8 added the core parameter tls_threads_mode=2
 * (an at-fork child handler nulling the first pthread keys), which 5.6
 * lacks; upstream's development branch (2026) replaced it by a
 * pthread_atfork prepare handler calling OPENSSL_thread_stop(), OpenSSL's
 * own bookkeeping: the forking process releases its thread state just
 * before fork() and each child starts with none and builds its own on
 * first use. This file installs that handler from this module, for the
 * Kamailio 5.6 of Debian 12.
 */

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/dprint.h"

#include "gts_mod.h"

static int gts_atfork_installed = 0;

/* runs in the process that calls fork(), right before it: its OpenSSL
 * per-thread state is freed (with the allocator that made it: shm, from
 * this very process), the pthread keys are left null, the child inherits
 * nulls; the parent rebuilds its state the next time it uses OpenSSL */
static void gts_atfork_prepare(void)
{
	OPENSSL_thread_stop();
}

int gts_fork_init(void)
{
	int rc;

	if(!gts_cfg.openssl_atfork) {
		LM_NOTICE("modparam \"openssl_atfork\" is 0: OpenSSL thread state is"
				  " NOT reset at fork; with Kamailio 5.6 and OpenSSL 3 the"
				  " TLS workers share it and crash under load (issue"
				  " 3791): set it to 1 unless the core does it"
				  " (tls_threads_mode=2, Kamailio 5.7.5+)\n");
		return 0;
	}
	if(gts_atfork_installed)
		return 0;
	rc = pthread_atfork(gts_atfork_prepare, NULL, NULL);
	if(rc != 0) {
		LM_ERR("pthread_atfork() failed: %s: cannot reset OpenSSL thread"
			   " state at fork\n",
				strerror(rc));
		return -1;
	}
	gts_atfork_installed = 1;
	LM_INFO("OpenSSL thread state reset at fork active"
			" (pthread_atfork + OPENSSL_thread_stop, as Kamailio's"
			" tls_threads_mode=2; %s)\n",
			OpenSSL_version(OPENSSL_VERSION));
	return 0;
}
