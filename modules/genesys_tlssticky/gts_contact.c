/*
 * genesys_tlssticky: Contact and parameter string helpers (pure C)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gts_contact.h"

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* calls cb for each param [ps, pe) of the list; stops when cb returns 1 */
typedef int (*param_cb)(const char *ps, const char *pe, void *arg);

static void param_each(const char *s, size_t len, param_cb cb, void *arg)
{
	const char *p = s, *end = s + len, *ps;
	int quoted;

	while(p < end) {
		while(p < end && (*p == ';' || is_ws(*p)))
			p++;
		if(p >= end)
			break;
		ps = p;
		quoted = 0;
		while(p < end && (quoted || *p != ';')) {
			if(*p == '"')
				quoted = !quoted;
			p++;
		}
		if(cb(ps, p, arg))
			return;
	}
}

struct find_arg
{
	const char *name;
	size_t nlen;
	const char *val;
	size_t vlen;
	int found;
};

static size_t name_len(const char *ps, const char *pe)
{
	const char *p = ps;
	while(p < pe && *p != '=' && !is_ws(*p))
		p++;
	return (size_t)(p - ps);
}

static int find_cb(const char *ps, const char *pe, void *arg)
{
	struct find_arg *a = arg;
	const char *v;

	if(name_len(ps, pe) != a->nlen || strncasecmp(ps, a->name, a->nlen) != 0)
		return 0;
	v = ps + a->nlen;
	while(v < pe && is_ws(*v))
		v++;
	if(v < pe && *v == '=') {
		v++;
		while(v < pe && is_ws(*v))
			v++;
	}
	while(pe > v && is_ws(pe[-1]))
		pe--;
	a->val = v;
	a->vlen = (size_t)(pe - v);
	a->found = 1;
	return 1;
}

int gts_param_find(const char *s, size_t len, const char *name, size_t nlen,
		const char **val, size_t *vlen)
{
	struct find_arg a = {name, nlen, NULL, 0, 0};
	param_each(s, len, find_cb, &a);
	if(!a.found)
		return 0;
	*val = a.val;
	*vlen = a.vlen;
	return 1;
}

struct strip_arg
{
	const char *name;
	size_t nlen;
	char *out;
	size_t outsz;
	size_t o;
	int err;
};

static int strip_cb(const char *ps, const char *pe, void *arg)
{
	struct strip_arg *a = arg;
	size_t n = (size_t)(pe - ps);

	while(n > 0 && is_ws(ps[n - 1]))
		n--;
	if(name_len(ps, pe) == a->nlen && strncasecmp(ps, a->name, a->nlen) == 0)
		return 0;
	if(a->o + n + 2 > a->outsz) {
		a->err = 1;
		return 1;
	}
	a->out[a->o++] = ';';
	memcpy(a->out + a->o, ps, n);
	a->o += n;
	return 0;
}

int gts_param_strip(const char *s, size_t len, const char *name, size_t nlen,
		char *out, size_t outsz)
{
	struct strip_arg a = {name, nlen, out, outsz, 0, 0};
	if(outsz == 0)
		return -1;
	param_each(s, len, strip_cb, &a);
	if(a.err)
		return -1;
	out[a.o] = '\0';
	return (int)a.o;
}

struct wbuf
{
	char *s;
	size_t sz;
	size_t o;
	int err;
};

static void put(struct wbuf *w, const char *s, size_t n)
{
	if(w->err || w->o + n + 1 > w->sz) {
		w->err = 1;
		return;
	}
	memcpy(w->s + w->o, s, n);
	w->o += n;
	w->s[w->o] = '\0';
}

static void puts_(struct wbuf *w, const char *s)
{
	put(w, s, strlen(s));
}

static void put_expires(struct wbuf *w, long expires)
{
	char num[32];
	int n;
	if(expires < 0)
		return;
	n = snprintf(num, sizeof(num), ";expires=%ld", expires);
	put(w, num, (size_t)n);
}

int gts_contact_build(char *out, size_t outsz, const char *display,
		size_t dlen, const char *user, size_t ulen, const char *hostport,
		size_t hlen, const char *transport, const char *tparam,
		size_t tplen, const char *token, const char *hdr_params,
		size_t hplen, long expires)
{
	struct wbuf w = {out, outsz, 0, 0};

	if(dlen > 0) {
		put(&w, display, dlen);
		put(&w, " ", 1);
	}
	puts_(&w, "<sip:");
	if(ulen > 0) {
		put(&w, user, ulen);
		put(&w, "@", 1);
	}
	put(&w, hostport, hlen);
	if(transport && *transport) {
		puts_(&w, ";transport=");
		puts_(&w, transport);
	}
	put(&w, ";", 1);
	put(&w, tparam, tplen);
	put(&w, "=", 1);
	puts_(&w, token);
	put(&w, ">", 1);
	put(&w, hdr_params, hplen);
	put_expires(&w, expires);
	return w.err ? -1 : (int)w.o;
}

int gts_contact_restore(char *out, size_t outsz, const char *display,
		size_t dlen, const char *uri, size_t ulen, const char *hdr_params,
		size_t hplen, long expires)
{
	struct wbuf w = {out, outsz, 0, 0};

	if(dlen > 0) {
		put(&w, display, dlen);
		put(&w, " ", 1);
	}
	put(&w, "<", 1);
	put(&w, uri, ulen);
	put(&w, ">", 1);
	put(&w, hdr_params, hplen);
	put_expires(&w, expires);
	return w.err ? -1 : (int)w.o;
}

int gts_aor_key(char *out, size_t outsz, const char *user, size_t ulen,
		const char *host, size_t hlen)
{
	size_t i, o = 0;
	if(ulen + hlen + 2 > outsz || hlen == 0)
		return -1;
	if(ulen > 0) {
		memcpy(out, user, ulen);
		o = ulen;
		out[o++] = '@';
	}
	for(i = 0; i < hlen; i++)
		out[o++] = (char)tolower((unsigned char)host[i]);
	out[o] = '\0';
	return (int)o;
}

long gts_expires_cap(long requested, long cap)
{
	if(cap <= 0)
		return requested;
	if(requested < 0 || requested > cap)
		return cap;
	return requested;
}
