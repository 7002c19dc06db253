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
 * \brief genesys_ha :: the Record-Route parameter that carries the SIP
 * Server pair and the DN of a dialog (seed 001 "Route and Record-Route
 * headers"): ";gha=<pair name>[*<DN>]", each value escaped to URI
 * parameter characters (RFC 3261 unreserved but '*', the rest as %HH), so
 * the '*' between them is never part of either.
 *
 * One short parameter instead of two: every character of the Record-Route
 * is copied into the relayed INVITE and its replies and parsed again by
 * every in-dialog request, so it is paid on each message of the call.
 *
 * The pair is identified by its name, so a Route stays meaningful across
 * pool reloads; decoding is strict: anything that is not exactly what
 * gha_rr_encode() produces is refused.
 */

#ifndef _GHA_RRPARAM_H_
#define _GHA_RRPARAM_H_

#include "core/str.h"

#define GHA_RR_PAIR "gha"
/*! between the pair and the DN in the parameter value */
#define GHA_RR_SEP '*'
/*! largest decoded value (pair names are at most 64 characters) */
#define GHA_RR_VAL_MAX 64

/*! write ";gha=<pair>[*<dn>]" to buf; returns the length, or -1 when it
 * does not fit or an input is empty/too long */
int gha_rr_encode(const str *pair, const str *dn, char *buf, int size);

/*! escape one value; returns the length or -1 */
int gha_rr_escape(const str *in, char *out, int size);

/*! unescape and check one escaped value; returns the decoded length, or
 * -1 (empty, too long, bad character, bad or needless escape) */
int gha_rr_decode(const str *val, char *out, int size);

/*! split and decode a "gha" value into the pair (pair_out, at least
 * GHA_RR_VAL_MAX + 1 bytes) and the DN (dn_out, same size; *dn_len 0 when
 * the value has none); returns the pair's length or -1 when any part is
 * malformed */
int gha_rr_decode_value(
		const str *val, char *pair_out, char *dn_out, int *dn_len);

/*! the user part of a SIP, SIPS or tel URI (what parse_uri() calls the
 * user), found without a full parse; returns 0 and sets user, or -1 when
 * the URI has none */
int gha_uri_user(const char *s, int len, str *user);

#endif
