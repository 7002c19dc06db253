/* cmocka tests: genesys_tlssticky parameter validation (gts_params.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "genesys_tlssticky/gts_params.h"
#include "genesys_tlssticky/gts_table.h"

#define SECRET "0123456789abcdef0123456789abcdef"

/* the module's defaults (genesys_tlssticky_mod.c) with a secret */
static gts_params_t defaults(void)
{
	gts_params_t p;
	memset(&p, 0, sizeof(p));
	p.secret = SECRET;
	p.secret_len = strlen(SECRET);
	p.tls_policy = "no-inbound";
	p.tcp_policy = "reconnect";
	p.default_expires = 3600;
	p.pending_ttl = 64;
	p.max_contacts = 16;
	p.max_bindings = 200000;
	p.hash_size = 16384;
	p.timer_interval = 1;
	p.rr_token = 1;
	p.tcp_closed_hook = 1;
	p.inflight_max = 16384;
	p.token_param = "gts";
	p.token_param_len = 3;
	p.relay = 1;
	p.relay_header = "X-Genesys-Sticky-Relay";
	p.relay_header_len = strlen(p.relay_header);
	p.openssl_atfork = 1;
	return p;
}

static int check(const gts_params_t *p, char *err, size_t errlen)
{
	int tls = -9, tcp = -9;
	err[0] = '\0';
	return gts_params_check(p, &tls, &tcp, err, errlen);
}

static void test_defaults_are_valid(void **state)
{
	char err[256] = "";
	int tls = -9, tcp = -9;
	gts_params_t p = defaults();
	(void)state;
	assert_int_equal(gts_params_check(&p, &tls, &tcp, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(tls, GTS_POL_NO_INBOUND);
	assert_int_equal(tcp, GTS_POL_RECONNECT);
	assert_int_equal(gts_params_secret_is_example(&p), 0);
}

/* p is refused; the message contains needle (unless NULL) */
static void refused(const gts_params_t *p, const char *needle)
{
	char err[256];

	assert_int_equal(check(p, err, sizeof(err)), -1);
	if(needle)
		assert_non_null(strstr(err, needle));
}

static void accepted(const gts_params_t *p)
{
	char err[256];

	assert_int_equal(check(p, err, sizeof(err)), 0);
}

/* The cases below set a parameter and expect accepted() or refused() one
 * value at a time: the value and the message it must give are the check,
 * so they are spelled out and look alike (as in test_goos_params.c). */
static void test_secret(void **state)
{
	char err[256];
	gts_params_t p = defaults();
	(void)state;
	p.secret = NULL;
	p.secret_len = 0;
	refused(&p, "modparam \"secret\" is missing");
	p.secret = "short";
	p.secret_len = 5;
	assert_int_equal(check(&p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "modparam \"secret\" is too short"));
	assert_non_null(strstr(err, "at least 16 bytes"));
	/* exactly the minimum is enough */
	p.secret = "0123456789abcdef";
	p.secret_len = 16;
	accepted(&p);
	/* the reference configuration's example: valid, but flagged */
	p.secret = "CHANGE-ME-0123456789";
	p.secret_len = strlen(p.secret);
	accepted(&p);
	assert_int_equal(gts_params_secret_is_example(&p), 1);
	p.secret_len = 8; /* "CHANGE-M" */
	assert_int_equal(gts_params_secret_is_example(&p), 0);
}

static void test_ranges(void **state)
{
	static const struct
	{
		const char *name;
		size_t off;
		int lo, hi;
	} r[] = {
			{"tcp", offsetof(gts_params_t, tcp), 0, 1},
			{"registrar_default_timeout",
					offsetof(gts_params_t, registrar_default_timeout), 0,
					31536000},
			{"default_expires", offsetof(gts_params_t, default_expires), 1,
					31536000},
			{"pending_ttl", offsetof(gts_params_t, pending_ttl), 1, 3600},
			{"max_contacts", offsetof(gts_params_t, max_contacts), 1, 256},
			{"max_bindings", offsetof(gts_params_t, max_bindings), 0,
					100000000},
			{"hash_size", offsetof(gts_params_t, hash_size), 16, 1 << 24},
			{"timer_interval", offsetof(gts_params_t, timer_interval), 1, 60},
			{"rr_token", offsetof(gts_params_t, rr_token), 0, 1},
			{"tcp_closed_hook", offsetof(gts_params_t, tcp_closed_hook), 0, 1},
			{"inflight_max", offsetof(gts_params_t, inflight_max), 0, 1 << 24},
			{"relay", offsetof(gts_params_t, relay), 0, 1},
			{"openssl_atfork", offsetof(gts_params_t, openssl_atfork), 0, 1},
	};
	char err[256], want[128];
	size_t i;
	(void)state;
	for(i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		gts_params_t p = defaults();
		int *v = (int *)((char *)&p + r[i].off);
		*v = r[i].lo;
		accepted(&p);
		*v = r[i].hi;
		accepted(&p);
		*v = r[i].lo - 1;
		assert_int_equal(check(&p, err, sizeof(err)), -1);
		snprintf(want, sizeof(want),
				"modparam \"%s\" = %d is out of range: allowed %d-%d",
				r[i].name, r[i].lo - 1, r[i].lo, r[i].hi);
		assert_string_equal(err, want);
		*v = r[i].hi + 1;
		assert_int_equal(check(&p, err, sizeof(err)), -1);
		assert_non_null(strstr(err, r[i].name));
	}
}

static void test_hash_size_power_of_two(void **state)
{
	char err[256];
	gts_params_t p = defaults();
	(void)state;
	p.hash_size = 1000;
	assert_int_equal(check(&p, err, sizeof(err)), -1);
	assert_string_equal(err, "modparam \"hash_size\" = 1000 must be a power of"
							 " two (16 to 16777216)");
	p.hash_size = 1024;
	accepted(&p);
}

static void test_token_param(void **state)
{
	gts_params_t p = defaults();
	(void)state;
	p.token_param = "a-b_C9";
	p.token_param_len = 6;
	accepted(&p);
	p.token_param = "abcdefghijklmnop"; /* 16 */
	p.token_param_len = 16;
	accepted(&p);
	p.token_param_len = 17;
	p.token_param = "abcdefghijklmnopq";
	refused(&p, "modparam \"token_param\" must be 1-16");
	p.token_param = "";
	p.token_param_len = 0;
	refused(&p, NULL);
	p.token_param = "g=t";
	p.token_param_len = 3;
	refused(&p, NULL);
	p.token_param = "g;t";
	refused(&p, NULL);
	p.token_param = NULL;
	refused(&p, NULL);
}

static void test_policies(void **state)
{
	char err[256];
	int tls = -9, tcp = -9;
	gts_params_t p = defaults();
	(void)state;
	p.tls_policy = "RECONNECT";
	p.tcp_policy = "No-Inbound";
	assert_int_equal(gts_params_check(&p, &tls, &tcp, err, sizeof(err)), 0);
	assert_int_equal(tls, GTS_POL_RECONNECT);
	assert_int_equal(tcp, GTS_POL_NO_INBOUND);
	p.tls_policy = "sometimes";
	assert_int_equal(check(&p, err, sizeof(err)), -1);
	assert_string_equal(err, "modparam \"tls_policy\" = \"sometimes\" is"
							 " invalid: allowed \"no-inbound\" or"
							 " \"reconnect\"");
	p.tls_policy = "reconnect";
	p.tcp_policy = "";
	refused(&p, "modparam \"tcp_policy\" = \"\" is invalid");
}

static void test_relay_header(void **state)
{
	char big[65];
	gts_params_t p = defaults();
	(void)state;
	p.relay_header = "X1";
	p.relay_header_len = 2;
	accepted(&p);
	p.relay_header_len = 1;
	refused(&p, "modparam \"relay_header\" must be a header"
				" name of 2-64");
	memset(big, 'h', sizeof(big));
	p.relay_header = big;
	p.relay_header_len = 64;
	accepted(&p);
	p.relay_header_len = 65;
	refused(&p, NULL);
	p.relay_header = "X-Relay: 1";
	p.relay_header_len = strlen(p.relay_header);
	refused(&p, NULL);
}

static void test_short_error_buffer(void **state)
{
	char err[8];
	gts_params_t p = defaults();
	(void)state;
	/* cut, NUL-terminated, never overrun */
	p.hash_size = 1000;
	assert_int_equal(check(&p, err, sizeof(err)), -1);
	assert_int_equal(strlen(err), sizeof(err) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_defaults_are_valid),
			cmocka_unit_test(test_secret),
			cmocka_unit_test(test_ranges),
			cmocka_unit_test(test_hash_size_power_of_two),
			cmocka_unit_test(test_token_param),
			cmocka_unit_test(test_policies),
			cmocka_unit_test(test_relay_header),
			cmocka_unit_test(test_short_error_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
