/*
 * genesys_tlssticky: flow token codec (pure C, OpenSSL HMAC-SHA256)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 *
 * A flow token names one flow (a TLS or TCP connection a phone opened to
 * this proxy) and, optionally, one binding (AOR + phone Contact) on it.
 * Layout before base64url (no padding), network byte order:
 *
 *   ver(1) proto(1) flags(1) aorh(4) bid(4) gen(4) conid(4)
 *   src-ip(4|16) src-port(2) local-ip(4|16) local-port(2)
 *   [relay-proto(1) relay-ip(4|16) relay-port(2)] mac(16)
 *
 * flags bit 0: src is IPv6, bit 1: local is IPv6, bit 2: the phone accepts
 * inbound connections (reconnect policy; connection tokens only), bit 3:
 * the relay address is present, bit 4: it is IPv6.  The relay address is
 * where the proxy that minted the token takes requests from the other
 * proxies of the pool (the proxy holding the flow).  mac is HMAC-SHA256 of
 * "gts1" + everything before it, truncated to 128 bits.  A connection
 * token (Record-Route) has bid = gen = aorh = 0.
 */

#ifndef GTS_TOKEN_H
#define GTS_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define GTS_MAC_LEN 16
#define GTS_RAW_MAX (1 + 1 + 1 + 16 + 2 * (16 + 2) + 1 + 16 + 2 + GTS_MAC_LEN)
/* base64url without padding of GTS_RAW_MAX bytes, plus a NUL */
#define GTS_TOKEN_MAX ((GTS_RAW_MAX * 4 + 2) / 3 + 1)
#define GTS_SECRET_MIN 16

typedef struct gts_addr
{
	uint8_t af; /* 4 or 6 */
	uint8_t ip[16];
	uint16_t port;
} gts_addr_t;

typedef struct gts_flow
{
	uint32_t aorh;  /* hash of the AOR: the table bucket */
	uint32_t bid;   /* binding id: hash of AOR + phone Contact URI */
	uint32_t gen;   /* generation: bumped on a new connection */
	uint32_t conid; /* Kamailio tcp connection id */
	uint8_t proto;  /* Kamailio PROTO_TCP / PROTO_TLS value */
	gts_addr_t src; /* the phone's source address */
	gts_addr_t local; /* our local socket */
	uint8_t reconnect; /* connection token: the phone's binding had the
						* reconnect policy (in-dialog requests may open a
						* new connection when this flow is gone) */
	uint8_t relay_proto; /* Kamailio PROTO_* of relay */
	gts_addr_t relay;	 /* the minting proxy's address for the other
						  * proxies of the pool; af 0: none */
} gts_flow_t;

typedef enum gts_tok_res {
	GTS_TOK_OK = 0,
	GTS_TOK_MALFORMED = -1, /* not base64url, bad length or version */
	GTS_TOK_BADMAC = -2,	/* forged or damaged */
	GTS_TOK_ERROR = -3		/* internal (crypto) error */
} gts_tok_res_t;

/* 1 when both flows name the same connection (conid, proto, src, local;
 * reconnect and relay are not compared) */
int gts_flow_same_conn(const gts_flow_t *a, const gts_flow_t *b);
int gts_addr_eq(const gts_addr_t *a, const gts_addr_t *b);

/* encode and sign; writes a NUL-terminated token into out (size >=
 * GTS_TOKEN_MAX); returns its length, or -1 */
int gts_token_encode(const gts_flow_t *f, const unsigned char *key,
		size_t keylen, char *out, size_t outsz);

/* decode and verify (constant-time MAC compare) */
gts_tok_res_t gts_token_decode(const char *s, size_t len,
		const unsigned char *key, size_t keylen, gts_flow_t *f);

/* base64url without padding; return output length or -1 */
int gts_b64url_encode(
		const unsigned char *in, size_t len, char *out, size_t outsz);
int gts_b64url_decode(
		const char *in, size_t len, unsigned char *out, size_t outsz);

#endif
