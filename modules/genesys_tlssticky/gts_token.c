/*
 * genesys_tlssticky: flow token codec (pure C, OpenSSL HMAC-SHA256)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include "gts_token.h"

#define GTS_TOKEN_VERSION 1
#define GTS_MAC_DOMAIN "gts1"

static const char b64url_alpha[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int gts_b64url_encode(
		const unsigned char *in, size_t len, char *out, size_t outsz)
{
	size_t i, o = 0;
	uint32_t v;

	if((len * 4 + 2) / 3 + 1 > outsz)
		return -1;
	for(i = 0; i + 2 < len; i += 3) {
		v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
		out[o++] = b64url_alpha[(v >> 18) & 63];
		out[o++] = b64url_alpha[(v >> 12) & 63];
		out[o++] = b64url_alpha[(v >> 6) & 63];
		out[o++] = b64url_alpha[v & 63];
	}
	if(len - i == 1) {
		v = (uint32_t)in[i] << 16;
		out[o++] = b64url_alpha[(v >> 18) & 63];
		out[o++] = b64url_alpha[(v >> 12) & 63];
	} else if(len - i == 2) {
		v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
		out[o++] = b64url_alpha[(v >> 18) & 63];
		out[o++] = b64url_alpha[(v >> 12) & 63];
		out[o++] = b64url_alpha[(v >> 6) & 63];
	}
	out[o] = '\0';
	return (int)o;
}

static int b64url_val(char c)
{
	if(c >= 'A' && c <= 'Z')
		return c - 'A';
	if(c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if(c >= '0' && c <= '9')
		return c - '0' + 52;
	if(c == '-')
		return 62;
	if(c == '_')
		return 63;
	return -1;
}

int gts_b64url_decode(
		const char *in, size_t len, unsigned char *out, size_t outsz)
{
	size_t i, o = 0;
	uint32_t v = 0;
	int bits = 0, d;

	if(len % 4 == 1)
		return -1;
	if(len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > outsz)
		return -1;
	for(i = 0; i < len; i++) {
		d = b64url_val(in[i]);
		if(d < 0)
			return -1;
		v = (v << 6) | (uint32_t)d;
		bits += 6;
		if(bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)((v >> bits) & 0xff);
		}
	}
	/* canonical form only: the unused low bits must be zero */
	if(bits > 0 && (v & ((1u << bits) - 1)) != 0)
		return -1;
	return (int)o;
}

int gts_addr_eq(const gts_addr_t *a, const gts_addr_t *b)
{
	return a->af == b->af && a->port == b->port
		   && memcmp(a->ip, b->ip, a->af == 6 ? 16 : 4) == 0;
}

int gts_flow_same_conn(const gts_flow_t *a, const gts_flow_t *b)
{
	return a->conid == b->conid && a->proto == b->proto
		   && gts_addr_eq(&a->src, &b->src)
		   && gts_addr_eq(&a->local, &b->local);
}

static unsigned char *put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
	return p + 4;
}

static uint32_t get32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16)
		   | ((uint32_t)p[2] << 8) | p[3];
}

static unsigned char *put_addr(unsigned char *p, const gts_addr_t *a)
{
	size_t n = a->af == 6 ? 16 : 4;
	memcpy(p, a->ip, n);
	p += n;
	p[0] = (unsigned char)(a->port >> 8);
	p[1] = (unsigned char)a->port;
	return p + 2;
}

static const unsigned char *get_addr(
		const unsigned char *p, gts_addr_t *a, int v6)
{
	size_t n = v6 ? 16 : 4;
	memset(a, 0, sizeof(*a));
	a->af = v6 ? 6 : 4;
	memcpy(a->ip, p, n);
	p += n;
	a->port = (uint16_t)((p[0] << 8) | p[1]);
	return p + 2;
}

/* one keyed HMAC context per process (made after fork, on first use):
 * re-initialising it with the same key skips the digest fetch and the key
 * schedule that the one-shot HMAC() redoes on every call */
static struct
{
	pid_t pid;
	EVP_MAC_CTX *ctx;
	size_t keylen;
	unsigned char key[256];
} mac_cache;

static int mac_init(const unsigned char *key, size_t keylen)
{
	EVP_MAC *m;
	OSSL_PARAM params[2];

	if(mac_cache.pid != getpid() || mac_cache.ctx == NULL) {
		/* a context inherited from the parent is left alone */
		m = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
		if(m == NULL)
			return -1;
		mac_cache.ctx = EVP_MAC_CTX_new(m);
		EVP_MAC_free(m);
		if(mac_cache.ctx == NULL)
			return -1;
		mac_cache.pid = getpid();
		mac_cache.keylen = (size_t)-1;
	}
	if(keylen == mac_cache.keylen
			&& memcmp(key, mac_cache.key, keylen) == 0)
		return EVP_MAC_init(mac_cache.ctx, NULL, 0, NULL) == 1 ? 0 : -1;
	params[0] = OSSL_PARAM_construct_utf8_string(
			OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	mac_cache.keylen = (size_t)-1;
	if(EVP_MAC_init(mac_cache.ctx, key, keylen, params) != 1)
		return -1;
	memcpy(mac_cache.key, key, keylen);
	mac_cache.keylen = keylen;
	return 0;
}

static int mac(const unsigned char *key, size_t keylen,
		const unsigned char *data, size_t len, unsigned char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t outl = 0;

	if(keylen == 0 || keylen > sizeof(mac_cache.key)) {
		/* unusual key: the one-shot path */
		unsigned char buf[GTS_RAW_MAX + sizeof(GTS_MAC_DOMAIN)];
		if(len + sizeof(GTS_MAC_DOMAIN) - 1 > sizeof(buf))
			return -1;
		memcpy(buf, GTS_MAC_DOMAIN, sizeof(GTS_MAC_DOMAIN) - 1);
		memcpy(buf + sizeof(GTS_MAC_DOMAIN) - 1, data, len);
		if(HMAC(EVP_sha256(), key, (int)keylen, buf,
				   len + sizeof(GTS_MAC_DOMAIN) - 1, md, &mdlen)
						== NULL
				|| mdlen < GTS_MAC_LEN)
			return -1;
		memcpy(out, md, GTS_MAC_LEN);
		return 0;
	}
	if(mac_init(key, keylen) < 0
			|| EVP_MAC_update(mac_cache.ctx,
					   (const unsigned char *)GTS_MAC_DOMAIN,
					   sizeof(GTS_MAC_DOMAIN) - 1)
					   != 1
			|| EVP_MAC_update(mac_cache.ctx, data, len) != 1
			|| EVP_MAC_final(mac_cache.ctx, md, &outl, sizeof(md)) != 1
			|| outl < GTS_MAC_LEN)
		return -1;
	memcpy(out, md, GTS_MAC_LEN);
	return 0;
}

#define GTS_F_SRC6 1
#define GTS_F_LOCAL6 2
#define GTS_F_RECONNECT 4
#define GTS_F_RELAY 8
#define GTS_F_RELAY6 16
#define GTS_F_ALL 31

static int raw_len(int flags)
{
	return 3 + 16 + ((flags & GTS_F_SRC6) ? 16 : 4) + 2
		   + ((flags & GTS_F_LOCAL6) ? 16 : 4) + 2
		   + ((flags & GTS_F_RELAY) ? 1 + ((flags & GTS_F_RELAY6) ? 16 : 4) + 2
									: 0)
		   + GTS_MAC_LEN;
}

int gts_token_encode(const gts_flow_t *f, const unsigned char *key,
		size_t keylen, char *out, size_t outsz)
{
	unsigned char raw[GTS_RAW_MAX];
	unsigned char *p = raw;

	if((f->src.af != 4 && f->src.af != 6)
			|| (f->local.af != 4 && f->local.af != 6)
			|| (f->relay.af != 0 && f->relay.af != 4 && f->relay.af != 6))
		return -1;
	*p++ = GTS_TOKEN_VERSION;
	*p++ = f->proto;
	*p++ = (unsigned char)((f->src.af == 6 ? GTS_F_SRC6 : 0)
						   | (f->local.af == 6 ? GTS_F_LOCAL6 : 0)
						   | (f->reconnect ? GTS_F_RECONNECT : 0)
						   | (f->relay.af != 0 ? GTS_F_RELAY : 0)
						   | (f->relay.af == 6 ? GTS_F_RELAY6 : 0));
	p = put32(p, f->aorh);
	p = put32(p, f->bid);
	p = put32(p, f->gen);
	p = put32(p, f->conid);
	p = put_addr(p, &f->src);
	p = put_addr(p, &f->local);
	if(f->relay.af != 0) {
		*p++ = f->relay_proto;
		p = put_addr(p, &f->relay);
	}
	if(mac(key, keylen, raw, (size_t)(p - raw), p) < 0)
		return -1;
	p += GTS_MAC_LEN;
	return gts_b64url_encode(raw, (size_t)(p - raw), out, outsz);
}

gts_tok_res_t gts_token_decode(const char *s, size_t len,
		const unsigned char *key, size_t keylen, gts_flow_t *f)
{
	unsigned char raw[GTS_RAW_MAX];
	unsigned char want[GTS_MAC_LEN];
	const unsigned char *p;
	int n, flags;

	if(len == 0 || len > GTS_TOKEN_MAX)
		return GTS_TOK_MALFORMED;
	n = gts_b64url_decode(s, len, raw, sizeof(raw));
	if(n < 3 || raw[0] != GTS_TOKEN_VERSION)
		return GTS_TOK_MALFORMED;
	flags = raw[2];
	if((flags & ~GTS_F_ALL)
			|| ((flags & GTS_F_RELAY6) && !(flags & GTS_F_RELAY)))
		return GTS_TOK_MALFORMED;
	if(n != raw_len(flags))
		return GTS_TOK_MALFORMED;
	if(mac(key, keylen, raw, (size_t)n - GTS_MAC_LEN, want) < 0)
		return GTS_TOK_ERROR;
	if(CRYPTO_memcmp(want, raw + n - GTS_MAC_LEN, GTS_MAC_LEN) != 0)
		return GTS_TOK_BADMAC;
	memset(f, 0, sizeof(*f));
	f->proto = raw[1];
	f->reconnect = (flags & GTS_F_RECONNECT) ? 1 : 0;
	p = raw + 3;
	f->aorh = get32(p);
	f->bid = get32(p + 4);
	f->gen = get32(p + 8);
	f->conid = get32(p + 12);
	p += 16;
	p = get_addr(p, &f->src, flags & GTS_F_SRC6);
	p = get_addr(p, &f->local, flags & GTS_F_LOCAL6);
	if(flags & GTS_F_RELAY) {
		f->relay_proto = *p++;
		get_addr(p, &f->relay, flags & GTS_F_RELAY6);
	}
	return GTS_TOK_OK;
}
