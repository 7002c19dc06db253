/* cmocka tests: genesys_ha Record-Route parameter codec (gha_rrparam.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "genesys_ha/gha_rrparam.h"

static str S(const char *s)
{
	str r = {(char *)s, (int)strlen(s)};
	return r;
}

static void test_encode_plain(void **state)
{
	char buf[256];
	str p = S("SIPS_East"), dn = S("1001");
	int n;
	(void)state;
	n = gha_rr_encode(&p, &dn, buf, sizeof(buf));
	assert_int_equal(n, (int)strlen(";gha=SIPS_East*1001"));
	assert_memory_equal(buf, ";gha=SIPS_East*1001", n);
	n = gha_rr_encode(&p, NULL, buf, sizeof(buf));
	assert_memory_equal(buf, ";gha=SIPS_East", n);
	assert_int_equal(n, 14);
}

static void test_escape_roundtrip(void **state)
{
	char buf[256], out[64];
	str p = S("SIP Server;a=b%"), v;
	int n;
	(void)state;
	n = gha_rr_escape(&p, buf, sizeof(buf));
	assert_int_equal(n, (int)strlen("SIP%20Server%3Ba%3Db%25"));
	assert_memory_equal(buf, "SIP%20Server%3Ba%3Db%25", n);
	v.s = buf;
	v.len = n;
	n = gha_rr_decode(&v, out, sizeof(out));
	assert_int_equal(n, p.len);
	assert_memory_equal(out, p.s, n);
}

static void test_decode_refuses_tampering(void **state)
{
	char out[64];
	str v;
	const char *bad[] = {"", "a b", "a;b", "%4", "%zz", "%41" /* plain A */,
			"%3b" /* lower case */, "%00", "a\"b", "<x>", NULL};
	int i;
	(void)state;
	for(i = 0; bad[i]; i++) {
		v = S(bad[i]);
		assert_int_equal(gha_rr_decode(&v, out, sizeof(out)), -1);
	}
	v.s = NULL;
	v.len = 3;
	assert_int_equal(gha_rr_decode(&v, out, sizeof(out)), -1);
	v = S("SIPS_East");
	assert_int_equal(gha_rr_decode(&v, out, sizeof(out)), 9);
}

static void test_limits(void **state)
{
	char buf[512], out[128];
	char longname[80];
	str v;
	(void)state;
	memset(longname, 'a', sizeof(longname));
	v.s = longname;
	v.len = 64;
	assert_true(gha_rr_escape(&v, buf, sizeof(buf)) == 64);
	v.len = 65;
	assert_int_equal(gha_rr_escape(&v, buf, sizeof(buf)), -1);
	assert_int_equal(gha_rr_decode(&v, out, sizeof(out)), -1);
	v.len = 10;
	/* buffer too small */
	assert_int_equal(gha_rr_escape(&v, buf, 5), -1);
	assert_int_equal(gha_rr_encode(&v, NULL, buf, 8), -1);
	assert_int_equal(gha_rr_decode(&v, out, 4), -1);
	v.len = 0;
	assert_int_equal(gha_rr_encode(&v, NULL, buf, sizeof(buf)), -1);
}

static void test_decode_value(void **state)
{
	char pair[GHA_RR_VAL_MAX + 1], dn[GHA_RR_VAL_MAX + 1], buf[512];
	str p = S("SIPS*East"), d = S("+1 001*"), v;
	int n, dl;
	(void)state;
	/* a '*' inside a value is escaped: the separator stays unique */
	n = gha_rr_encode(&p, &d, buf, sizeof(buf));
	assert_memory_equal(buf, ";gha=SIPS%2AEast*%2B1%20001%2A", n);
	v.s = buf + 5;
	v.len = n - 5;
	assert_int_equal(gha_rr_decode_value(&v, pair, dn, &dl), 9);
	assert_memory_equal(pair, "SIPS*East", 9);
	assert_int_equal(dl, 7);
	assert_memory_equal(dn, "+1 001*", 7);
	v = S("SIPS_East");
	dl = 99;
	assert_int_equal(gha_rr_decode_value(&v, pair, dn, &dl), 9);
	assert_int_equal(dl, 0);
	/* empty parts, a second separator, a bad escape: refused */
	v = S("SIPS_East*");
	assert_int_equal(gha_rr_decode_value(&v, pair, dn, &dl), -1);
	v = S("*1001");
	assert_int_equal(gha_rr_decode_value(&v, pair, dn, &dl), -1);
	v = S("a*b*c");
	assert_int_equal(gha_rr_decode_value(&v, pair, dn, &dl), -1);
	v = S("a*%4");
	assert_int_equal(gha_rr_decode_value(&v, pair, dn, &dl), -1);
	v = S("");
	assert_int_equal(gha_rr_decode_value(&v, pair, dn, &dl), -1);
}

static void check_user(const char *uri, const char *want)
{
	str u;
	int r = gha_uri_user(uri, (int)strlen(uri), &u);
	if(want == NULL) {
		assert_int_equal(r, -1);
		assert_int_equal(u.len, 0);
		return;
	}
	assert_int_equal(r, 0);
	assert_int_equal(u.len, (int)strlen(want));
	assert_memory_equal(u.s, want, u.len);
}

static void test_uri_user(void **state)
{
	(void)state;
	check_user("sip:1001@example.com", "1001");
	check_user("SIP:1001@example.com;transport=tcp", "1001");
	check_user("sips:alice@[::1]:5061", "alice");
	check_user("sip:alice:secret@host", "alice");
	check_user("sip:+1234;npdi@host;user=phone", "+1234;npdi");
	check_user("tel:+15551234;phone-context=x", "+15551234");
	check_user("TEL:5551234", "5551234");
	check_user("sip:example.com", NULL);
	check_user("sip:example.com:5060;x=y", NULL);
	check_user("sip:@example.com", NULL);
	check_user("sip::pw@example.com", NULL);
	check_user("tel:;x", NULL);
	check_user("http://a@b", NULL);
	check_user("sipx:a@b", NULL);
	check_user("sip:", NULL);
	check_user("", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_encode_plain),
			cmocka_unit_test(test_escape_roundtrip),
			cmocka_unit_test(test_decode_refuses_tampering),
			cmocka_unit_test(test_limits),
			cmocka_unit_test(test_decode_value),
			cmocka_unit_test(test_uri_user),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
