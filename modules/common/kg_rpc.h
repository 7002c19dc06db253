/*
 * kamailio-genesys: bounded RPC faults, shared by the modules
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

#ifndef _KG_RPC_H_
#define _KG_RPC_H_

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/rpc.h"
#include "core/str.h"

/*!
 * The ctl module (kamcmd's binrpc) cannot send a fault text of 255
 * characters or more: the whole fault is lost and kamcmd prints nothing. So
 * every fault goes through kg_rpc_fault(), which cuts the text to
 * KG_RPC_FAULT_MAX characters ("..." at the end), and an argument echoed in
 * a fault or a reply shows at most KG_RPC_ECHO_MAX characters of it:
 *
 *   kg_rpc_fault(rpc, ctx, 404, "unknown pair '" KG_ECHO_FMT "'",
 *           KG_ECHO(&name));
 */
#define KG_RPC_FAULT_MAX 200
#define KG_RPC_ECHO_MAX 64

#define KG_ECHO_FMT "%.*s%s"
#define KG_ECHO(sp)                                                   \
	((sp)->s == NULL ? 0                                              \
					 : ((sp)->len > KG_RPC_ECHO_MAX ? KG_RPC_ECHO_MAX \
													: (sp)->len)),    \
			((sp)->s ? (sp)->s : ""),                                 \
			((sp)->s != NULL && (sp)->len > KG_RPC_ECHO_MAX ? "..." : "")

static inline void kg_rpc_fault(rpc_t *rpc, void *ctx, int code,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static inline void kg_rpc_fault(
		rpc_t *rpc, void *ctx, int code, const char *fmt, ...)
{
	char buf[KG_RPC_FAULT_MAX + 1];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if(n < 0) {
		strcpy(buf, "internal error formatting the fault");
	} else if(n > KG_RPC_FAULT_MAX) {
		memcpy(buf + KG_RPC_FAULT_MAX - 3, "...", 4);
	}
	rpc->fault(ctx, code, "%s", buf);
}

/*!
 * 0 when the command has no argument left; else a 400 fault "too many
 * arguments" (usage appended) and -1. The optional scan ("*") makes no
 * fault of its own when nothing is left.
 */
static inline int kg_rpc_no_more(rpc_t *rpc, void *ctx, const char *usage)
{
	str extra = STR_NULL;

	if(rpc->scan(ctx, "*.S", &extra) < 1)
		return 0;
	kg_rpc_fault(rpc, ctx, 400,
			"too many arguments (from '" KG_ECHO_FMT "' on); usage: %s",
			KG_ECHO(&extra), usage);
	return -1;
}

#endif
