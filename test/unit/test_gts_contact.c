/* cmocka tests: genesys_tlssticky Contact helpers (gts_contact.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "genesys_tlssticky/gts_contact.h"

static void find(const char *s, const char *name, const char *want)
{
	const char *v = NULL;
	size_t n = 0;
	int r = gts_param_find(s, strlen(s), name, strlen(name), &v, &n);
	if(want == NULL) {
		assert_int_equal(r, 0);
		return;
	}
	assert_int_equal(r, 1);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(v, want, n);
}

static void test_param_find(void **state)
{
	(void)state;
	find("transport=tls;gts=ABC-_1", "gts", "ABC-_1");
	find(";gts=ABC;lr", "gts", "ABC");
	find(";GTS = ABC ;lr", "gts", "ABC");
	find(";lr;gts", "gts", "");
	find(";xgts=1;gtsx=2", "gts", NULL);
	find("", "gts", NULL);
	find(";a=\"x;gts=1\";b=2", "gts", NULL); /* inside quotes */
	find(";a=\"x;gts=1\";gts=2", "gts", "2");
}

static void strip(const char *s, const char *name, const char *want)
{
	char out[256];
	int n = gts_param_strip(s, strlen(s), name, strlen(name), out, sizeof(out));
	assert_int_equal(n, (int)strlen(want));
	assert_string_equal(out, want);
}

static void test_param_strip(void **state)
{
	char small[4];
	(void)state;
	strip(";expires=60;q=0.5", "expires", ";q=0.5");
	strip(";q=0.5;EXPIRES=60", "expires", ";q=0.5");
	strip(";expires=60", "expires", "");
	strip("", "expires", "");
	strip(";+sip.instance=\"<urn:uuid:1;expires=5>\";expires=1;reg-id=1",
			"expires", ";+sip.instance=\"<urn:uuid:1;expires=5>\";reg-id=1");
	strip(" ;q=1 ; expires=3 ", "expires", ";q=1");
	assert_int_equal(gts_param_strip(";q=0.5;reg-id=1", 15, "expires", 7,
							 small, sizeof(small)),
			-1);
}

static void test_contact_build(void **state)
{
	char out[512];
	int n;
	(void)state;
	n = gts_contact_build(out, sizeof(out), "\"Agent 1\"", 9, "1001", 4,
			"10.0.0.1:5060", 13, "", "gts", 3, "TOKEN", ";q=0.5", 6, 300);
	assert_string_equal(out, "\"Agent 1\" <sip:1001@10.0.0.1:5060;gts=TOKEN>"
							 ";q=0.5;expires=300");
	assert_int_equal(n, (int)strlen(out));
	n = gts_contact_build(out, sizeof(out), NULL, 0, NULL, 0, "[2001:db8::1]:5060",
			18, "tcp", "gts", 3, "T", "", 0, -1);
	assert_string_equal(out, "<sip:[2001:db8::1]:5060;transport=tcp;gts=T>");
	assert_int_equal(gts_contact_build(out, 20, NULL, 0, "1001", 4,
							 "10.0.0.1:5060", 13, "", "gts", 3, "TOKEN", "", 0,
							 -1),
			-1);
}

static void test_contact_restore(void **state)
{
	char out[256];
	(void)state;
	gts_contact_restore(out, sizeof(out), NULL, 0,
			"sip:1001@192.0.2.1:5061;transport=tls", 37, ";reg-id=1", 9, 120);
	assert_string_equal(out, "<sip:1001@192.0.2.1:5061;transport=tls>;reg-id=1;"
							 "expires=120");
	assert_int_equal(gts_contact_restore(out, 8, NULL, 0, "sip:a@b", 7, "", 0,
							 -1),
			-1);
}

static void test_aor_key(void **state)
{
	char out[64];
	(void)state;
	assert_int_equal(gts_aor_key(out, sizeof(out), "Alice", 5, "Example.COM", 11),
			17);
	assert_string_equal(out, "Alice@example.com");
	assert_int_equal(gts_aor_key(out, sizeof(out), NULL, 0, "H", 1), 1);
	assert_string_equal(out, "h");
	assert_int_equal(gts_aor_key(out, 4, "abc", 3, "def", 3), -1);
	assert_int_equal(gts_aor_key(out, sizeof(out), "abc", 3, "", 0), -1);
}

static void test_expires_cap(void **state)
{
	(void)state;
	assert_int_equal(gts_expires_cap(3600, 0), 3600);
	assert_int_equal(gts_expires_cap(-1, 0), -1);
	assert_int_equal(gts_expires_cap(3600, 120), 120);
	assert_int_equal(gts_expires_cap(60, 120), 60);
	assert_int_equal(gts_expires_cap(-1, 120), 120);
	assert_int_equal(gts_expires_cap(0, 120), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_param_find),
			cmocka_unit_test(test_param_strip),
			cmocka_unit_test(test_contact_build),
			cmocka_unit_test(test_contact_restore),
			cmocka_unit_test(test_aor_key),
			cmocka_unit_test(test_expires_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
