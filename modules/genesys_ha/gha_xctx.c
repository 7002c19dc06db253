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
 */

#include <string.h>

#include "core/dprint.h"
#include "core/route.h"
#include "core/xavp.h"

#include "gha_xctx.h"
#include "gha_pair.h"

static str xname = str_init("gha");
static str f_pair = str_init("pair");
static str f_role = str_init("role");
static str f_member = str_init("member");
static str f_state = str_init("state");
static str f_dn = str_init("dn");

static int add_str(sr_xavp_t **list, str *name, const char *s, int len)
{
	sr_xval_t v;

	if(len <= 0)
		return 0;
	memset(&v, 0, sizeof(v));
	v.type = SR_XTYPE_STR;
	v.v.s.s = (char *)s;
	v.v.s.len = len;
	return xavp_add_value(name, &v, list) == NULL ? -1 : 0;
}

void gha_xctx_store(const gha_ctx_t *c)
{
	sr_xavp_t *list = NULL;
	const char *n;
	sr_xval_t v;

	/* an onreply_route may run in parallel with another on the same
	 * transaction: its list is not ours to change */
	if(!(get_route_type() & (REQUEST_ROUTE | FAILURE_ROUTE)))
		return;
	xavp_rm_by_name(&xname, 1, NULL);
	if(c->pair_len <= 0 && c->member_len <= 0)
		return;
	n = c->role >= 0 ? gha_role_name(c->role) : NULL;
	if(add_str(&list, &f_pair, c->pair, c->pair_len) < 0
			|| (n && add_str(&list, &f_role, n, (int)strlen(n)) < 0)
			|| add_str(&list, &f_member, c->member, c->member_len) < 0
			|| add_str(&list, &f_dn, c->dn, c->dn_len) < 0)
		goto error;
	if(c->state >= 0) {
		n = gha_pstate_name(c->state);
		if(add_str(&list, &f_state, n, (int)strlen(n)) < 0)
			goto error;
	}
	memset(&v, 0, sizeof(v));
	v.type = SR_XTYPE_XAVP;
	v.v.xavp = list;
	if(xavp_add_value(&xname, &v, NULL) == NULL)
		goto error;
	return;
error:
	LM_ERR("cannot store $xavp(gha): out of shared memory; $ha(...) in "
		   "a failure_route of another process will be empty\n");
	xavp_destroy_list(&list);
}

static int get_str(sr_xavp_t *list, str *name, char *dst, int size)
{
	sr_xavp_t *x = xavp_get(name, list);
	int l;

	if(x == NULL || x->val.type != SR_XTYPE_STR || x->val.v.s.len <= 0)
		return 0;
	l = x->val.v.s.len < size - 1 ? x->val.v.s.len : size - 1;
	memcpy(dst, x->val.v.s.s, (size_t)l);
	dst[l] = '\0';
	return l;
}

static int name_index(
		sr_xavp_t *list, str *name, const char *(*f)(int), int lo, int hi)
{
	char buf[32];
	int i, l = get_str(list, name, buf, sizeof(buf));

	if(l <= 0)
		return -1;
	for(i = lo; i <= hi; i++)
		if(strcmp(f(i), buf) == 0)
			return i;
	return -1;
}

int gha_xctx_load(gha_ctx_t *c)
{
	sr_xavp_t *r = xavp_get(&xname, NULL);
	sr_xavp_t *l;

	if(r == NULL || r->val.type != SR_XTYPE_XAVP)
		return 0;
	l = r->val.v.xavp;
	c->pair_len = get_str(l, &f_pair, c->pair, sizeof(c->pair));
	c->member_len = get_str(l, &f_member, c->member, sizeof(c->member));
	c->dn_len = get_str(l, &f_dn, c->dn, sizeof(c->dn));
	c->role = name_index(l, &f_role, gha_role_name, GHA_PRIMARY, GHA_BACKUP);
	c->state = name_index(
			l, &f_state, gha_pstate_name, GHA_PS_UNKNOWN, GHA_PS_DOWN);
	return 1;
}
