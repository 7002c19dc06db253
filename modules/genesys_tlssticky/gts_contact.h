/*
 * genesys_tlssticky: Contact and parameter string helpers (pure C)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

#ifndef GTS_CONTACT_H
#define GTS_CONTACT_H

#include <stddef.h>

/* find parameter `name` in a ';'-separated list ("a=1;b;c=2", a leading
 * ';' is allowed); names compare case-insensitively.  Returns 1 and the
 * value (empty for a flag) or 0. */
int gts_param_find(const char *s, size_t len, const char *name, size_t nlen,
		const char **val, size_t *vlen);

/* copy s without parameter `name` (every occurrence, with its ';') into
 * out; returns the length written or -1 when out is too small */
int gts_param_strip(const char *s, size_t len, const char *name, size_t nlen,
		char *out, size_t outsz);

/* the Contact SIP Server is given:
 *   [display ]<sip:[user@]host[:port][;transport=T];P=TOKEN>HDRPARAMS[;expires=E]
 * hdr_params must already lack "expires" when expires >= 0.  Returns
 * the length or -1 when out is too small. */
int gts_contact_build(char *out, size_t outsz, const char *display,
		size_t dlen, const char *user, size_t ulen, const char *hostport,
		size_t hlen, const char *transport, const char *tparam,
		size_t tplen, const char *token, const char *hdr_params,
		size_t hplen, long expires);

/* "<uri>HDRPARAMS[;expires=E]" with the display name: the phone's own
 * Contact restored in a 2xx */
int gts_contact_restore(char *out, size_t outsz, const char *display,
		size_t dlen, const char *uri, size_t ulen, const char *hdr_params,
		size_t hplen, long expires);

/* AOR key "user@host" with the host lowercased; returns length or -1 */
int gts_aor_key(char *out, size_t outsz, const char *user, size_t ulen,
		const char *host, size_t hlen);

/* the expires to use: requested (contact param, else Expires header; -1
 * when neither) capped at cap (0: no cap).  Returns -1 when there is
 * nothing to write (no request value and no cap). */
long gts_expires_cap(long requested, long cap);

#endif
