/* cmocka tests: genesys_tlssticky flow token codec (gts_token.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "genesys_tlssticky/gts_token.h"

static const unsigned char KEY[] = "0123456789abcdef-pool-secret";
#define KEYLEN (sizeof(KEY) - 1)

static gts_flow_t sample(void)
{
	gts_flow_t f;
	memset(&f, 0, sizeof(f));
	f.aorh = 0xdeadbeef;
	f.bid = 0x01020304;
	f.gen = 7;
	f.conid = 4242;
	f.proto = 3;
	f.src.af = 4;
	f.src.ip[0] = 192;
	f.src.ip[1] = 0;
	f.src.ip[2] = 2;
	f.src.ip[3] = 10;
	f.src.port = 50123;
	f.local.af = 4;
	f.local.ip[0] = 10;
	f.local.ip[3] = 1;
	f.local.port = 5061;
	return f;
}

static int flow_eq(const gts_flow_t *a, const gts_flow_t *b)
{
	return a->aorh == b->aorh && a->bid == b->bid && a->gen == b->gen
		   && gts_flow_same_conn(a, b);
}

static void test_b64url_roundtrip(void **state)
{
	unsigned char in[64], out[64];
	char enc[128];
	int i, len, n;
	(void)state;
	for(i = 0; i < 64; i++)
		in[i] = (unsigned char)(i * 37 + 11);
	for(len = 0; len <= 64; len++) {
		n = gts_b64url_encode(in, (size_t)len, enc, sizeof(enc));
		assert_true(n >= 0);
		assert_int_equal(strlen(enc), (size_t)n);
		/* URI-safe alphabet, no padding */
		assert_null(strpbrk(enc, "+/=;?&%"));
		assert_int_equal(gts_b64url_decode(enc, (size_t)n, out, sizeof(out)),
				len);
		assert_memory_equal(in, out, (size_t)len);
	}
}

static void test_b64url_rejects(void **state)
{
	unsigned char out[16];
	(void)state;
	assert_int_equal(gts_b64url_decode("abc=", 4, out, sizeof(out)), -1);
	assert_int_equal(gts_b64url_decode("ab+c", 4, out, sizeof(out)), -1);
	assert_int_equal(gts_b64url_decode("a", 1, out, sizeof(out)), -1);
	/* non-canonical: unused low bits set ("AB" -> 0x00 with bits 0001) */
	assert_int_equal(gts_b64url_decode("AB", 2, out, sizeof(out)), -1);
	assert_int_equal(gts_b64url_decode("AA", 2, out, sizeof(out)), 1);
	/* output buffer too small */
	assert_int_equal(gts_b64url_decode("AAAAAAAA", 8, out, 2), -1);
	/* encode: output buffer too small */
	assert_int_equal(gts_b64url_encode(out, 6, (char *)out, 4), -1);
}

static void test_roundtrip_v4(void **state)
{
	gts_flow_t f = sample(), g;
	char tok[GTS_TOKEN_MAX];
	int n;
	(void)state;
	n = gts_token_encode(&f, KEY, KEYLEN, tok, sizeof(tok));
	assert_true(n > 0 && n < GTS_TOKEN_MAX);
	/* compact: 47 raw bytes -> 63 characters */
	assert_int_equal(n, 63);
	assert_int_equal(gts_token_decode(tok, (size_t)n, KEY, KEYLEN, &g),
			GTS_TOK_OK);
	assert_true(flow_eq(&f, &g));
}

static void test_roundtrip_v6(void **state)
{
	gts_flow_t f = sample(), g;
	char tok[GTS_TOKEN_MAX];
	int n, i;
	(void)state;
	f.src.af = 6;
	for(i = 0; i < 16; i++)
		f.src.ip[i] = (uint8_t)(0x20 + i);
	f.local.af = 6;
	f.local.ip[15] = 1;
	n = gts_token_encode(&f, KEY, KEYLEN, tok, sizeof(tok));
	assert_true(n > 0 && n < GTS_TOKEN_MAX);
	assert_int_equal(gts_token_decode(tok, (size_t)n, KEY, KEYLEN, &g),
			GTS_TOK_OK);
	assert_true(flow_eq(&f, &g));
	assert_int_equal(g.src.af, 6);
	assert_int_equal(g.local.af, 6);
}

/* the reconnect flag of connection tokens: carried, signed, and a token
 * with an unknown flag bit is malformed */
static void test_reconnect_flag(void **state)
{
	gts_flow_t f = sample(), g;
	char tok[GTS_TOKEN_MAX], plain[GTS_TOKEN_MAX];
	unsigned char raw[GTS_RAW_MAX];
	int n, m;
	(void)state;
	f.aorh = f.bid = f.gen = 0;
	n = gts_token_encode(&f, KEY, KEYLEN, plain, sizeof(plain));
	assert_true(n > 0);
	assert_int_equal(gts_token_decode(plain, (size_t)n, KEY, KEYLEN, &g),
			GTS_TOK_OK);
	assert_int_equal(g.reconnect, 0);
	f.reconnect = 1;
	n = gts_token_encode(&f, KEY, KEYLEN, tok, sizeof(tok));
	assert_true(n > 0);
	assert_string_not_equal(tok, plain);
	assert_int_equal(gts_token_decode(tok, (size_t)n, KEY, KEYLEN, &g),
			GTS_TOK_OK);
	assert_int_equal(g.reconnect, 1);
	assert_true(flow_eq(&f, &g));
	/* the flag is under the MAC: clearing it breaks the signature */
	m = gts_b64url_decode(tok, (size_t)n, raw, sizeof(raw));
	assert_true(m > 3);
	raw[2] &= (unsigned char)~4;
	n = gts_b64url_encode(raw, (size_t)m, tok, sizeof(tok));
	assert_int_equal(gts_token_decode(tok, (size_t)n, KEY, KEYLEN, &g),
			GTS_TOK_BADMAC);
	/* an unknown flag bit */
	raw[2] |= 32;
	n = gts_b64url_encode(raw, (size_t)m, tok, sizeof(tok));
	assert_int_equal(gts_token_decode(tok, (size_t)n, KEY, KEYLEN, &g),
			GTS_TOK_MALFORMED);
}

/* the relay address (where the minting proxy takes requests relayed by
 * the other proxies of the pool): carried, signed, optional */
static void test_relay_address(void **state)
{
	gts_flow_t f = sample(), g;
	char tok[GTS_TOKEN_MAX], plain[GTS_TOKEN_MAX];
	unsigned char raw[GTS_RAW_MAX];
	int n, m, i;
	(void)state;
	n = gts_token_encode(&f, KEY, KEYLEN, plain, sizeof(plain));
	assert_int_equal(gts_token_decode(plain, (size_t)n, KEY, KEYLEN, &g),
			GTS_TOK_OK);
	assert_int_equal(g.relay.af, 0); /* none */
	f.relay.af = 4;
	f.relay.ip[0] = 10;
	f.relay.ip[3] = 2;
	f.relay.port = 5060;
	f.relay_proto = 1;
	n = gts_token_encode(&f, KEY, KEYLEN, tok, sizeof(tok));
	/* 47 + 7 raw bytes -> 72 characters */
	assert_int_equal(n, 72);
	assert_int_equal(gts_token_decode(tok, (size_t)n, KEY, KEYLEN, &g),
			GTS_TOK_OK);
	assert_true(flow_eq(&f, &g));
	assert_true(gts_addr_eq(&f.relay, &g.relay));
	assert_int_equal(g.relay_proto, 1);
	/* under the MAC: another relay address breaks the signature */
	m = gts_b64url_decode(tok, (size_t)n, raw, sizeof(raw));
	assert_int_equal(m, 54);
	raw[m - GTS_MAC_LEN - 3] ^= 1;
	n = gts_b64url_encode(raw, (size_t)m, tok, sizeof(tok));
	assert_int_equal(gts_token_decode(tok, (size_t)n, KEY, KEYLEN, &g),
			GTS_TOK_BADMAC);
	/* IPv6 */
	f.relay.af = 6;
	for(i = 0; i < 16; i++)
		f.relay.ip[i] = (uint8_t)(0xfd + i);
	n = gts_token_encode(&f, KEY, KEYLEN, tok, sizeof(tok));
	assert_int_equal(gts_token_decode(tok, (size_t)n, KEY, KEYLEN, &g),
			GTS_TOK_OK);
	assert_int_equal(g.relay.af, 6);
	assert_true(gts_addr_eq(&f.relay, &g.relay));
	/* "relay is IPv6" without "relay present": malformed */
	m = gts_b64url_decode(plain, strlen(plain), raw, sizeof(raw));
	raw[2] |= 16;
	n = gts_b64url_encode(raw, (size_t)m, tok, sizeof(tok));
	assert_int_equal(gts_token_decode(tok, (size_t)n, KEY, KEYLEN, &g),
			GTS_TOK_MALFORMED);
	/* bad family refused at encode */
	f.relay.af = 5;
	assert_int_equal(gts_token_encode(&f, KEY, KEYLEN, tok, sizeof(tok)), -1);
}

static void test_deterministic(void **state)
{
	/* a refresh over the same flow must give SIP Server the same Contact */
	gts_flow_t f = sample();
	char a[GTS_TOKEN_MAX], b[GTS_TOKEN_MAX];
	(void)state;
	gts_token_encode(&f, KEY, KEYLEN, a, sizeof(a));
	gts_token_encode(&f, KEY, KEYLEN, b, sizeof(b));
	assert_string_equal(a, b);
	f.gen++;
	gts_token_encode(&f, KEY, KEYLEN, b, sizeof(b));
	assert_string_not_equal(a, b);
}

static void test_every_field_is_signed(void **state)
{
	gts_flow_t f = sample(), g;
	char tok[GTS_TOKEN_MAX];
	unsigned char raw[GTS_RAW_MAX];
	int n, rawlen, i, bit;
	(void)state;
	n = gts_token_encode(&f, KEY, KEYLEN, tok, sizeof(tok));
	rawlen = gts_b64url_decode(tok, (size_t)n, raw, sizeof(raw));
	assert_int_equal(rawlen, 47);
	/* flip every bit of the token: never accepted */
	for(i = 0; i < rawlen; i++) {
		for(bit = 0; bit < 8; bit++) {
			char t2[GTS_TOKEN_MAX];
			int m;
			raw[i] ^= (unsigned char)(1u << bit);
			m = gts_b64url_encode(raw, (size_t)rawlen, t2, sizeof(t2));
			assert_int_not_equal(
					gts_token_decode(t2, (size_t)m, KEY, KEYLEN, &g),
					GTS_TOK_OK);
			raw[i] ^= (unsigned char)(1u << bit);
		}
	}
}

static void test_other_secret_refused(void **state)
{
	gts_flow_t f = sample(), g;
	char tok[GTS_TOKEN_MAX];
	static const unsigned char other[] = "0123456789abcdef-pool-secreT";
	int n;
	(void)state;
	n = gts_token_encode(&f, KEY, KEYLEN, tok, sizeof(tok));
	assert_int_equal(
			gts_token_decode(tok, (size_t)n, other, sizeof(other) - 1, &g),
			GTS_TOK_BADMAC);
	/* the per-process MAC context follows key changes both ways */
	assert_int_equal(gts_token_decode(tok, (size_t)n, KEY, KEYLEN, &g),
			GTS_TOK_OK);
	assert_int_equal(
			gts_token_decode(tok, (size_t)n, other, sizeof(other) - 1, &g),
			GTS_TOK_BADMAC);
	/* a prefix of the key is another key */
	assert_int_equal(gts_token_decode(tok, (size_t)n, KEY, KEYLEN - 1, &g),
			GTS_TOK_BADMAC);
}

static void test_long_key_one_shot_path(void **state)
{
	unsigned char big[300];
	gts_flow_t f = sample(), g;
	char tok[GTS_TOKEN_MAX];
	int n;
	(void)state;
	memset(big, 'k', sizeof(big));
	n = gts_token_encode(&f, big, sizeof(big), tok, sizeof(tok));
	assert_true(n > 0);
	assert_int_equal(gts_token_decode(tok, (size_t)n, big, sizeof(big), &g),
			GTS_TOK_OK);
	big[299] = 'j';
	assert_int_equal(gts_token_decode(tok, (size_t)n, big, sizeof(big), &g),
			GTS_TOK_BADMAC);
}

static void test_malformed(void **state)
{
	gts_flow_t f = sample(), g;
	char tok[GTS_TOKEN_MAX];
	int n;
	(void)state;
	assert_int_equal(gts_token_decode("", 0, KEY, KEYLEN, &g),
			GTS_TOK_MALFORMED);
	assert_int_equal(gts_token_decode("abc", 3, KEY, KEYLEN, &g),
			GTS_TOK_MALFORMED);
	assert_int_equal(gts_token_decode("!!!!", 4, KEY, KEYLEN, &g),
			GTS_TOK_MALFORMED);
	n = gts_token_encode(&f, KEY, KEYLEN, tok, sizeof(tok));
	/* truncated */
	assert_int_equal(gts_token_decode(tok, (size_t)n - 4, KEY, KEYLEN, &g),
			GTS_TOK_MALFORMED);
	/* too long */
	{
		char big[GTS_TOKEN_MAX * 2];
		memset(big, 'A', sizeof(big));
		assert_int_equal(gts_token_decode(big, sizeof(big), KEY, KEYLEN, &g),
				GTS_TOK_MALFORMED);
	}
	/* bad address family refused at encode */
	f.src.af = 5;
	assert_int_equal(gts_token_encode(&f, KEY, KEYLEN, tok, sizeof(tok)), -1);
	/* output too small */
	f = sample();
	assert_int_equal(gts_token_encode(&f, KEY, KEYLEN, tok, 10), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_b64url_roundtrip),
			cmocka_unit_test(test_b64url_rejects),
			cmocka_unit_test(test_roundtrip_v4),
			cmocka_unit_test(test_roundtrip_v6),
			cmocka_unit_test(test_deterministic),
			cmocka_unit_test(test_reconnect_flag),
			cmocka_unit_test(test_relay_address),
			cmocka_unit_test(test_every_field_is_signed),
			cmocka_unit_test(test_other_secret_refused),
			cmocka_unit_test(test_long_key_one_shot_path),
			cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
