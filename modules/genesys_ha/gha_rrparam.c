/*
 * genesys_ha module: Record-Route parameter codec
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: Record-Route parameter codec (see gha_rrparam.h)
 */

#include <string.h>

#include "gha_rrparam.h"

static const char hex[] = "0123456789ABCDEF";

/* RFC 3261 unreserved characters but the separator '*' (and "!'()", which
 * some parsers mishandle): they go as they are, the rest as %HH */
static const unsigned char plain_tab[256] = {
		['a' ... 'z'] = 1,
		['A' ... 'Z'] = 1,
		['0' ... '9'] = 1,
		['-'] = 1,
		['_'] = 1,
		['.'] = 1,
		['~'] = 1,
};

#define plain(c) (plain_tab[(unsigned char)(c)])

static int hexval(int c)
{
	if(c >= '0' && c <= '9')
		return c - '0';
	if(c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* lower case hex is never produced: refused */
}

int gha_rr_escape(const str *in, char *out, int size)
{
	const unsigned char *s, *e;
	char *o, *oe;

	if(in == NULL || in->s == NULL || in->len <= 0 || in->len > GHA_RR_VAL_MAX
			|| size <= 0)
		return -1;
	s = (const unsigned char *)in->s;
	e = s + in->len;
	o = out;
	oe = out + size;
	for(; s < e; s++) {
		if(plain(*s)) {
			if(o >= oe)
				return -1;
			*o++ = (char)*s;
			continue;
		}
		/* the decoder refuses %00: never produce what cannot come back */
		if(*s == 0 || oe - o < 3)
			return -1;
		*o++ = '%';
		*o++ = hex[*s >> 4];
		*o++ = hex[*s & 15];
	}
	return (int)(o - out);
}

int gha_rr_encode(const str *pair, const str *dn, char *buf, int size)
{
	int o, n;
	const int lp = (int)sizeof(";" GHA_RR_PAIR "=") - 1;

	if(size < lp)
		return -1;
	memcpy(buf, ";" GHA_RR_PAIR "=", (size_t)lp);
	o = lp;
	n = gha_rr_escape(pair, buf + o, size - o);
	if(n < 0)
		return -1;
	o += n;
	if(dn && dn->s && dn->len > 0) {
		if(o + 1 > size)
			return -1;
		buf[o++] = GHA_RR_SEP;
		n = gha_rr_escape(dn, buf + o, size - o);
		if(n < 0)
			return -1;
		o += n;
	}
	return o;
}

int gha_rr_decode(const str *val, char *out, int size)
{
	int i, o = 0, h, l;

	if(val == NULL || val->s == NULL || val->len <= 0)
		return -1;
	for(i = 0; i < val->len; i++) {
		unsigned char c = (unsigned char)val->s[i];
		if(o >= size || o >= GHA_RR_VAL_MAX)
			return -1;
		if(plain(c)) {
			out[o++] = (char)c;
		} else if(c == '%') {
			if(i + 2 >= val->len)
				return -1;
			h = hexval((unsigned char)val->s[i + 1]);
			l = hexval((unsigned char)val->s[i + 2]);
			if(h < 0 || l < 0)
				return -1;
			c = (unsigned char)(h << 4 | l);
			/* an escaped plain character is not what we encode */
			if(plain(c) || c == 0)
				return -1;
			out[o++] = (char)c;
			i += 2;
		} else {
			return -1;
		}
	}
	return o;
}

int gha_rr_decode_value(
		const str *val, char *pair_out, char *dn_out, int *dn_len)
{
	const char *sep;
	str p, d;
	int n, m;

	*dn_len = 0;
	if(val == NULL || val->s == NULL || val->len <= 0)
		return -1;
	p = *val;
	sep = memchr(val->s, GHA_RR_SEP, (size_t)val->len);
	if(sep != NULL)
		p.len = (int)(sep - val->s);
	n = gha_rr_decode(&p, pair_out, GHA_RR_VAL_MAX);
	if(n < 0)
		return -1;
	if(sep == NULL)
		return n;
	/* a separator promises a DN: an empty one is not what we encode */
	d.s = (char *)sep + 1;
	d.len = val->len - p.len - 1;
	m = gha_rr_decode(&d, dn_out, GHA_RR_VAL_MAX);
	if(m < 0)
		return -1;
	*dn_len = m;
	return n;
}

int gha_uri_user(const char *s, int len, str *user)
{
	const char *p, *e, *at, *u;
	unsigned int sch;

	user->s = NULL;
	user->len = 0;
	if(s == NULL || len < 5)
		return -1;
	e = s + len;
	sch = ((unsigned int)(unsigned char)s[0]
				  | (unsigned int)(unsigned char)s[1] << 8
				  | (unsigned int)(unsigned char)s[2] << 16
				  | (unsigned int)(unsigned char)s[3] << 24)
		  | 0x20202020u;
	if(sch == ('t' | 'e' << 8 | 'l' << 16 | ':' << 24)) {
		/* tel: the number, up to the parameters */
		for(p = u = s + 4; p < e && *p != ';' && *p != '?'; p++)
			;
	} else {
		if(sch == ('s' | 'i' << 8 | 'p' << 16 | ':' << 24))
			u = s + 4;
		else if(sch == ('s' | 'i' << 8 | 'p' << 16 | 's' << 24)
				&& s[4] == ':')
			u = s + 5;
		else
			return -1;
		/* sip/sips: a user part only before an '@' (parse_uri() takes
		 * the user up to a password's ':' and lets ';' in) */
		at = memchr(u, '@', (size_t)(e - u));
		if(at == NULL)
			return -1;
		for(p = u; p < at && *p != ':'; p++)
			;
	}
	if(p == u)
		return -1;
	user->s = (char *)u;
	user->len = (int)(p - u);
	return 0;
}
