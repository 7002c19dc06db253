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

static int plain(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		   || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'
		   || c == '~';
}

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
	int i, o = 0;

	if(in == NULL || in->s == NULL || in->len <= 0
			|| in->len > GHA_RR_VAL_MAX)
		return -1;
	for(i = 0; i < in->len; i++) {
		unsigned char c = (unsigned char)in->s[i];
		/* the decoder refuses %00: never produce what cannot come back */
		if(c == 0)
			return -1;
		if(plain(c)) {
			if(o + 1 > size)
				return -1;
			out[o++] = (char)c;
		} else {
			if(o + 3 > size)
				return -1;
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	return o;
}

int gha_rr_encode(const str *pair, const str *dn, char *buf, int size)
{
	int o = 0, n;
	const int lp = (int)sizeof(";" GHA_RR_PAIR "=") - 1;
	const int ld = (int)sizeof(";" GHA_RR_DN "=") - 1;

	if(size < lp)
		return -1;
	memcpy(buf, ";" GHA_RR_PAIR "=", (size_t)lp);
	o = lp;
	n = gha_rr_escape(pair, buf + o, size - o);
	if(n < 0)
		return -1;
	o += n;
	if(dn && dn->s && dn->len > 0) {
		if(o + ld > size)
			return -1;
		memcpy(buf + o, ";" GHA_RR_DN "=", (size_t)ld);
		o += ld;
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
