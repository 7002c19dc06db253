/*
 * genesys_ha module: $ha(...) context carried by the transaction (xavp)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: $xavp(gha) (see gha_xctx.h)
 *
 * One xavp, one shm allocation per request that got a pair: its value is
 * the text "<pair> TAB <role> TAB <state> TAB <dn> TAB <member>" in room
 * for the longest values, so a later change for the same message (the DN
 * from ha_record_route(), ha_from_sipserver() then ha_route_in_dialog())
 * rewrites it in place.
 */

#include <stdio.h>
#include <string.h>

#include "core/dprint.h"
#include "core/route.h"
#include "core/xavp.h"
#include "core/parser/msg_parser.h"

#include "gha_xctx.h"
#include "gha_pair.h"

/* room: pair, role, state, dn, member and the tabs */
#define XCTX_CAP (GHA_NAME_MAX + 8 + 16 + GHA_NAME_MAX + 256 + 8)

static str xname = str_init("gha");

/* the xavp this process made for the message it routes now */
static sr_xavp_t *x_node = NULL;
static unsigned int x_id = 0;
static int x_pid = -1;

static int fmt(const gha_ctx_t *c, char *buf)
{
	int n;

	memset(buf, 0, XCTX_CAP + 1);
	n = snprintf(buf, XCTX_CAP + 1, "%.*s\t%s\t%s\t%.*s\t%.*s", c->pair_len,
			c->pair, c->role >= 0 ? gha_role_name(c->role) : "",
			c->state >= 0 ? gha_pstate_name(c->state) : "", c->dn_len, c->dn,
			c->member_len, c->member);
	return n < 0 ? 0 : (n > XCTX_CAP ? XCTX_CAP : n);
}

void gha_xctx_store(sip_msg_t *msg, const gha_ctx_t *c)
{
	char buf[XCTX_CAP + 1];
	sr_xavp_t *x;
	sr_xval_t v;
	int n;

	/* an onreply_route may run in parallel with another on the same
	 * transaction: its list is not ours to change; no failure_route for
	 * an ACK */
	if(!(get_route_type() & (REQUEST_ROUTE | FAILURE_ROUTE))
			|| (msg->first_line.type == SIP_REQUEST
					&& msg->first_line.u.request.method_value == METHOD_ACK))
		return;
	n = fmt(c, buf);
	x = xavp_get(&xname, NULL);
	if(x != NULL && x == x_node && x_id == msg->id && x_pid == msg->pid
			&& x->val.type == SR_XTYPE_STR) {
		/* ours, made for this message: in place */
		memcpy(x->val.v.s.s, buf, (size_t)n + 1);
		x->val.v.s.len = n;
		return;
	}
	if(x != NULL)
		xavp_rm_by_name(&xname, 1, NULL);
	memset(&v, 0, sizeof(v));
	v.type = SR_XTYPE_STR;
	v.v.s.s = buf;
	v.v.s.len = XCTX_CAP; /* the room, then the length */
	x = xavp_add_value(&xname, &v, NULL);
	if(x == NULL) {
		LM_ERR("cannot store $xavp(gha): out of shared memory; $ha(...) in "
			   "a failure_route of another process will be empty\n");
		x_node = NULL;
		return;
	}
	x->val.v.s.len = n;
	x_node = x;
	x_id = msg->id;
	x_pid = msg->pid;
}

/* the next tab-separated field of s (at *pos) into dst; its length */
static int field(const str *s, int *pos, char *dst, int size)
{
	int b = *pos, e = b, l;

	while(e < s->len && s->s[e] != '\t')
		e++;
	*pos = e + 1;
	l = e - b;
	if(l <= 0 || b >= s->len) {
		dst[0] = '\0';
		return 0;
	}
	if(l > size - 1)
		l = size - 1;
	memcpy(dst, s->s + b, (size_t)l);
	dst[l] = '\0';
	return l;
}

static int name_index(const char *name, const char *(*f)(int), int lo, int hi)
{
	int i;

	if(name[0] == '\0')
		return -1;
	for(i = lo; i <= hi; i++)
		if(strcmp(f(i), name) == 0)
			return i;
	return -1;
}

int gha_xctx_load(gha_ctx_t *c)
{
	sr_xavp_t *x = xavp_get(&xname, NULL);
	char role[16], state[32];
	int pos = 0;

	if(x == NULL || x->val.type != SR_XTYPE_STR)
		return 0;
	c->pair_len = field(&x->val.v.s, &pos, c->pair, sizeof(c->pair));
	field(&x->val.v.s, &pos, role, sizeof(role));
	field(&x->val.v.s, &pos, state, sizeof(state));
	c->dn_len = field(&x->val.v.s, &pos, c->dn, sizeof(c->dn));
	c->member_len = field(&x->val.v.s, &pos, c->member, sizeof(c->member));
	c->role = name_index(role, gha_role_name, GHA_PRIMARY, GHA_BACKUP);
	c->state = name_index(
			state, gha_pstate_name, GHA_PS_UNKNOWN, GHA_PS_DOWN);
	return 1;
}
