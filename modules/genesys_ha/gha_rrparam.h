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
 * \brief genesys_ha :: the Record-Route parameters that carry the SIP
 * Server pair and the DN of a dialog (seed 001 "Route and Record-Route
 * headers"): ";gha=<pair name>;ghadn=<DN>", each value escaped to URI
 * parameter characters (RFC 3261 unreserved, the rest as %HH).
 *
 * The pair is identified by its name, so a Route stays meaningful across
 * pool reloads; decoding is strict: anything that is not exactly what
 * gha_rr_encode() produces is refused.
 */

#ifndef _GHA_RRPARAM_H_
#define _GHA_RRPARAM_H_

#include "core/str.h"

#define GHA_RR_PAIR "gha"
#define GHA_RR_DN "ghadn"
/*! largest decoded value (pair names are at most 64 characters) */
#define GHA_RR_VAL_MAX 64

/*! write ";gha=<pair>[;ghadn=<dn>]" to buf; returns the length, or -1 when
 * it does not fit or an input is empty/too long */
int gha_rr_encode(const str *pair, const str *dn, char *buf, int size);

/*! escape one value; returns the length or -1 */
int gha_rr_escape(const str *in, char *out, int size);

/*! unescape and check one parameter value; returns the decoded length, or
 * -1 (empty, too long, bad character, bad or needless escape) */
int gha_rr_decode(const str *val, char *out, int size);

#endif
