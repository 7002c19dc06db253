/*
 * genesys_tlssticky: the Contact rewrite plan (pure C)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "gts_plan.h"
#include "gts_contact.h"
#include "gts_table.h"

#define GTS_PLAN_BUF (GTS_URI_MAX + GTS_TOKEN_MAX + 1024)

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* as the core's str2int(): an optional '+', then digits, at most
 * UINT_MAX; 0 and the value, or -1 */
static int to_uint(const char *s, size_t len, unsigned int *r)
{
	size_t i = 0;
	unsigned int c;

	*r = 0;
	if(len > 0 && s[0] == '+')
		i++;
	for(; i < len; i++) {
		c = (unsigned char)s[i];
		if(c < '0' || c > '9')
			return -1;
		c -= '0';
		if(*r > UINT_MAX / 10 || (*r == UINT_MAX / 10 && c > UINT_MAX % 10))
			return -1;
		*r = *r * 10 + c;
	}
	return 0;
}

long gts_plan_contact_expires(const gts_pcontact_t *c, long hdr)
{
	const char *s = c->exp;
	size_t len = c->exp_len;
	unsigned int v;

	if(!c->has_exp)
		return hdr;
	while(len > 0 && is_ws(*s)) {
		s++;
		len--;
	}
	while(len > 0 && is_ws(s[len - 1]))
		len--;
	if(len == 0 || to_uint(s, len, &v) < 0)
		return -2;
	return (long)v;
}

long gts_plan_register_expires(
		const gts_pcontact_t *c, long hdr, const gts_plan_cfg_t *cfg)
{
	return gts_expires_cap(gts_plan_contact_expires(c, hdr), cfg->cap);
}

long gts_plan_reply_expires(
		const gts_pcontact_t *c, long hdr, const gts_plan_cfg_t *cfg)
{
	long e = gts_plan_contact_expires(c, hdr);
	if(e < 0)
		e = cfg->default_expires;
	return gts_expires_cap(e, cfg->cap);
}

/* header params of the element: after the URI (and its '>') */
static void params_of(const gts_pcontact_t *c, const char **p, size_t *plen)
{
	const char *s = c->uri + c->uri_len;
	const char *end = c->s + c->len;

	if(s < end && *s == '>')
		s++;
	*p = s;
	*plen = s < end ? (size_t)(end - s) : 0;
}

/* the display name, trimmed; none when the parsed name runs into the URI
 * (no display name: the name starts where the URI does) */
static void display_of(const gts_pcontact_t *c, const char **d, size_t *dlen)
{
	const char *s = c->s;
	size_t len = c->name_len;

	if(len > 0 && s + len > c->uri)
		len = 0;
	while(len > 0 && is_ws(*s)) {
		s++;
		len--;
	}
	while(len > 0 && is_ws(s[len - 1]))
		len--;
	*d = s;
	*dlen = len;
}

static int replace_contact(const gts_pcontact_t *c, int idx, const char *out,
		int len, gts_apply_f apply, void *arg)
{
	gts_edit_t e;

	if(len < 0)
		return -1;
	e.off = c->off;
	e.len = c->len;
	e.text = out;
	e.tlen = (size_t)len;
	e.hdr = GTS_EDIT_CONTACT;
	e.idx = idx;
	return apply(&e, arg) < 0 ? -1 : 0;
}

/* what a rewritten or restored element keeps of the old one: its display
 * name and its header parameters without expires (into params, of
 * GTS_PLAN_BUF bytes); returns the length of those or -1 */
static int kept_parts(
		const gts_pcontact_t *c, char *params, const char **disp, size_t *dlen)
{
	const char *hp;
	size_t hplen;

	params_of(c, &hp, &hplen);
	display_of(c, disp, dlen);
	return gts_param_strip(hp, hplen, "expires", 7, params, GTS_PLAN_BUF);
}

static int rewrite(const gts_pcontact_t *c, int idx, const char *token,
		long expires, const gts_plan_cfg_t *cfg, gts_apply_f apply, void *arg)
{
	char params[GTS_PLAN_BUF];
	char out[GTS_PLAN_BUF];
	const char *disp;
	size_t dlen;
	int plen, len;

	plen = kept_parts(c, params, &disp, &dlen);
	len = plen < 0 ? -1
				   : gts_contact_build(out, sizeof(out), disp, dlen, c->user,
						   c->user ? c->user_len : 0, cfg->hostport,
						   cfg->hostport_len, cfg->transport, cfg->tparam,
						   cfg->tparam_len, token, params, (size_t)plen,
						   expires);
	return replace_contact(c, idx, out, len, apply, arg);
}

static int restore(const gts_pcontact_t *c, int idx, const char *uri,
		long expires, gts_apply_f apply, void *arg)
{
	char params[GTS_PLAN_BUF];
	char out[GTS_PLAN_BUF];
	const char *disp;
	size_t dlen;
	int plen, len;

	plen = kept_parts(c, params, &disp, &dlen);
	len = plen < 0 ? -1
				   : gts_contact_restore(out, sizeof(out), disp, dlen, uri,
						   strlen(uri), params, (size_t)plen, expires);
	return replace_contact(c, idx, out, len, apply, arg);
}

/* the cap on one Contact left in place: an expires parameter larger than
 * the cap is lowered to it; a Contact without one gets ";expires=<cap>"
 * when there is no Expires header either (hexp < 0), so neither the
 * registrar nor the phone falls back to a longer default */
static int cap_contact(const gts_pcontact_t *c, int idx, long hexp, int cap,
		gts_apply_f apply, void *arg)
{
	char buf[32];
	const char *end;
	gts_edit_t e;
	long v;
	int len;

	if(cap <= 0)
		return 0;
	if(c->has_exp) {
		v = gts_plan_contact_expires(c, -1);
		if(v < 0 || v <= cap)
			return 0; /* in range, or not a number: the registrar decides */
		len = snprintf(buf, sizeof(buf), "%d", cap);
		e.off = c->off + (size_t)(c->exp - c->s);
		e.len = c->exp_len;
	} else {
		if(hexp >= 0)
			return 0; /* the (capped) Expires header applies */
		len = snprintf(buf, sizeof(buf), ";expires=%d", cap);
		end = c->s + c->len;
		while(end > c->uri && is_ws(end[-1]))
			end--;
		e.off = c->off + (size_t)(end - c->s);
		e.len = 0;
	}
	e.text = buf;
	e.tlen = (size_t)len;
	e.hdr = GTS_EDIT_CONTACT;
	e.idx = idx;
	return apply(&e, arg) < 0 ? -1 : 0;
}

static int cap_header(
		const gts_phexp_t *h, int cap, gts_apply_f apply, void *arg)
{
	char buf[32];
	gts_edit_t e;

	if(h->val <= 0 || cap <= 0 || h->val <= cap)
		return 0;
	e.off = h->off;
	e.len = h->len;
	e.text = buf;
	e.tlen = (size_t)snprintf(buf, sizeof(buf), "%d", cap);
	e.hdr = GTS_EDIT_EXPIRES;
	e.idx = -1;
	return apply(&e, arg) < 0 ? -1 : 0;
}

int gts_plan_register(const gts_pcontact_t *cs, int n,
		const char *const *tokens, const long *expires, const gts_phexp_t *h,
		const gts_plan_cfg_t *cfg, gts_apply_f apply, void *arg)
{
	int i, rewritten = 0;

	for(i = 0; i < n; i++) {
		if(tokens[i] == NULL)
			continue;
		if(rewrite(&cs[i], i, tokens[i], expires[i], cfg, apply, arg) < 0)
			return -1;
		rewritten++;
	}
	if(cap_header(h, cfg->cap, apply, arg) < 0)
		return -1;
	return rewritten;
}

int gts_plan_reply(const gts_pcontact_t *cs, int n,
		const char *const *restore_uri, const long *expires,
		const gts_phexp_t *h, const gts_plan_cfg_t *cfg, gts_apply_f apply,
		void *arg)
{
	int i;

	if(restore_uri)
		for(i = 0; i < n; i++)
			if(restore_uri[i]
					&& restore(&cs[i], i, restore_uri[i], expires[i], apply,
							   arg)
							   < 0)
				return -1;
	for(i = 0; i < n; i++)
		if((restore_uri == NULL || restore_uri[i] == NULL)
				&& cap_contact(&cs[i], i, h->val, cfg->cap, apply, arg) < 0)
			return -1;
	return cap_header(h, cfg->cap, apply, arg);
}
