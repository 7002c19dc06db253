/*
 * genesys_ha module: the per-message context behind $ha(...)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: what $ha(...) shows: the process-local context of
 * the message being routed (filled by the routing functions, gha_route.c,
 * gha_indialog.c, gha_sipserver.c, and by the event process for its
 * routes), read back from $xavp(gha) in a route run by another process
 * (gha_xctx.c); and the $ha(key) pseudo-variable.  No lock, no shm.
 */

#include <string.h>

#include "core/dprint.h"

#include "gha_state.h"
#include "gha_route.h"
#include "gha_xctx.h"

static gha_ctx_t _ctx;

void gha_ctx_save(gha_ctx_t *save)
{
	*save = _ctx;
}

void gha_ctx_restore(const gha_ctx_t *save)
{
	_ctx = *save;
}

gha_ctx_t *gha_ctx(sip_msg_t *msg)
{
	if(_ctx.msg_id != msg->id || _ctx.msg_pid != msg->pid) {
		/* lengths only: the buffers are read up to their length */
		_ctx.pair_len = 0;
		_ctx.member_len = 0;
		_ctx.dn_len = 0;
		_ctx.old_member_len = 0;
		_ctx.from_member = 0;
		_ctx.pr = NULL;
		_ctx.msg_id = msg->id;
		_ctx.msg_pid = msg->pid;
		_ctx.role = -1;
		_ctx.state = -1;
		_ctx.trigger = -1;
	}
	return &_ctx;
}

/* the context of msg; when the process-local one belongs to another
 * message (a failure_route run by another process than request_route),
 * what request_route stored in $xavp(gha) (gha_xctx.h) */
gha_ctx_t *gha_ctx_load(sip_msg_t *msg)
{
	if(_ctx.msg_id == msg->id && _ctx.msg_pid == msg->pid)
		return &_ctx;
	gha_ctx(msg);
	gha_xctx_load(&_ctx);
	return &_ctx;
}

int gha_ctx_cpy(char *dst, int size, const str *s)
{
	int l = s->len < size - 1 ? s->len : size - 1;
	if(l > 0)
		memcpy(dst, s->s, (size_t)l);
	dst[l > 0 ? l : 0] = '\0';
	return l > 0 ? l : 0;
}

void gha_ctx_set_pair(gha_ctx_t *c, const gha_pair_t *pr, int member)
{
	c->pair_len = gha_ctx_cpy(c->pair, sizeof(c->pair), &pr->name);
	c->pr = pr;
	c->role = member;
	c->member_len =
			gha_ctx_cpy(c->member, sizeof(c->member), &pr->m[member].uri);
	c->state = gha_pstate(pr);
}

/* ---- $ha(key) ---- */

enum
{
	HA_PV_PAIR = 1,
	HA_PV_ROLE,
	HA_PV_MEMBER,
	HA_PV_STATE,
	HA_PV_DN,
	HA_PV_TRIGGER,
	HA_PV_OLD_MEMBER
};

int pv_parse_ha_name(pv_spec_t *sp, str *in)
{
	int k = 0;

	if(sp == NULL || in == NULL || in->len <= 0)
		return -1;
	if(in->len == 4 && strncmp(in->s, "pair", 4) == 0)
		k = HA_PV_PAIR;
	else if(in->len == 4 && strncmp(in->s, "role", 4) == 0)
		k = HA_PV_ROLE;
	else if(in->len == 6 && strncmp(in->s, "member", 6) == 0)
		k = HA_PV_MEMBER;
	else if(in->len == 5 && strncmp(in->s, "state", 5) == 0)
		k = HA_PV_STATE;
	else if(in->len == 2 && strncmp(in->s, "dn", 2) == 0)
		k = HA_PV_DN;
	else if(in->len == 7 && strncmp(in->s, "trigger", 7) == 0)
		k = HA_PV_TRIGGER;
	else if(in->len == 10 && strncmp(in->s, "old_member", 10) == 0)
		k = HA_PV_OLD_MEMBER;
	if(k == 0) {
		LM_ERR("unknown $ha(%.*s): use pair, role, member, state, dn, "
			   "trigger or old_member\n",
				in->len, in->s);
		return -1;
	}
	sp->pvp.pvn.type = PV_NAME_INTSTR;
	sp->pvp.pvn.u.isname.type = 0;
	sp->pvp.pvn.u.isname.name.n = k;
	return 0;
}

static int pv_str(
		sip_msg_t *msg, pv_param_t *param, pv_value_t *res, char *s, int len)
{
	str v;

	if(len <= 0)
		return pv_get_null(msg, param, res);
	v.s = s;
	v.len = len;
	return pv_get_strval(msg, param, res, &v);
}

static int pv_cstr(
		sip_msg_t *msg, pv_param_t *param, pv_value_t *res, const char *s)
{
	return pv_str(msg, param, res, (char *)s, (int)strlen(s));
}

int pv_get_ha(sip_msg_t *msg, pv_param_t *param, pv_value_t *res)
{
	gha_ctx_t *c;

	if(msg == NULL || param == NULL)
		return -1;
	c = gha_ctx_load(msg);
	switch(param->pvn.u.isname.name.n) {
		case HA_PV_PAIR:
			return pv_str(msg, param, res, c->pair, c->pair_len);
		case HA_PV_ROLE:
			if(c->role < 0)
				return pv_get_null(msg, param, res);
			return pv_cstr(msg, param, res, gha_role_name(c->role));
		case HA_PV_MEMBER:
			return pv_str(msg, param, res, c->member, c->member_len);
		case HA_PV_STATE:
			if(c->state < 0)
				return pv_get_null(msg, param, res);
			return pv_cstr(msg, param, res, gha_pstate_name(c->state));
		case HA_PV_DN:
			return pv_str(msg, param, res, c->dn, c->dn_len);
		case HA_PV_TRIGGER:
			if(c->trigger < 0)
				return pv_get_null(msg, param, res);
			return pv_cstr(msg, param, res, gha_trigger_name(c->trigger));
		case HA_PV_OLD_MEMBER:
			return pv_str(msg, param, res, c->old_member, c->old_member_len);
	}
	return pv_get_null(msg, param, res);
}
