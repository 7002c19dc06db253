/* cmocka tests: genesys_ha parameter validation (gha_params.c): defaults,
 * ranges, and messages that name the parameter and its value */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "genesys_ha/gha_params.h"
#include "genesys_ha/gha_pair.h"

static gha_params_t defaults(void)
{
	gha_params_t p = GHA_PARAMS_DEFAULTS;
	return p;
}

/* p is refused with a message containing needle (one line); the
 * algorithm out-parameter is left alone */
static void refused(const gha_params_t *p, const char *needle)
{
	char err[512] = "";
	int alg = -7;

	assert_int_equal(gha_params_check(p, &alg, err, sizeof(err)), -1);
	if(strstr(err, needle) == NULL)
		fail_msg("error '%s' does not contain '%s'", err, needle);
	assert_null(strchr(err, '\n'));
	assert_int_equal(alg, -7);
}

static void accepted(const gha_params_t *p)
{
	char err[512] = "";
	int alg = -7;

	if(gha_params_check(p, &alg, err, sizeof(err)) != 0)
		fail_msg("refused: %s", err);
	assert_string_equal(err, "");
	assert_true(alg >= GHA_LB_ROUND_ROBIN && alg <= GHA_LB_HASH);
}

/* *field (a member of p) is accepted at lo and hi and refused just outside
 * them, with a message containing below / above; then it is put back */
static void range(gha_params_t *p, int *field, int lo, int hi,
		const char *below, const char *above)
{
	int keep = *field;

	*field = lo;
	accepted(p);
	*field = hi;
	accepted(p);
	*field = lo - 1;
	refused(p, below);
	*field = hi + 1;
	refused(p, above);
	*field = keep;
}

static void test_defaults_are_valid(void **state)
{
	gha_params_t p = defaults();
	char err[64] = "";
	int alg = -1;
	(void)state;

	assert_int_equal(gha_params_check(&p, &alg, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(alg, GHA_LB_ROUND_ROBIN);
	assert_string_equal(p.lb_algorithm, "round-robin");
	assert_int_equal(p.rr_dn, 1);
	assert_int_equal(p.down_grace, 5000);
	assert_int_equal(p.max_pool_elements, 100000);
	assert_int_equal(p.rr_pool_port, 1);
	assert_int_equal(p.end_pending_on_down, 1);
	assert_int_equal(p.t1_probe, 1);
	assert_int_equal(p.t1_slots, 4096);
	assert_int_equal(p.dmq, 0);
	assert_int_equal(p.dmq_interval, 1000);
	assert_int_equal(p.dmq_peer_timeout, 3000);
	assert_int_equal(p.dmq_probing, 0);
	assert_int_equal(p.dmq_sync_timeout, 1000);
}

/* the default the admin guide gives for parameter name: the text after
 * "Default value is " in its section */
static const char *doc_default(
		const char *doc, const char *name, char *buf, size_t size)
{
	char id[128];
	const char *s, *e;
	size_t n;

	snprintf(id, sizeof(id), "<section id=\"genesys_ha.p.%s\">", name);
	if((s = strstr(doc, id)) == NULL)
		return NULL;
	e = strstr(s, "</section>");
	if((s = strstr(s, "Default value is ")) == NULL || (e && s > e))
		return NULL;
	s += strlen("Default value is ");
	if(strncmp(s, "<quote>", 7) == 0)
		s += 7;
	for(n = 0; s[n] && s[n] != '.' && s[n] != '<' && n + 1 < size; n++)
		buf[n] = s[n];
	buf[n] = '\0';
	return buf;
}

/* the defaults are those the admin guide documents */
static void test_defaults_match_the_admin_guide(void **state)
{
	struct
	{
		const char *name;
		int val;
	} ints[] = {{"rr_dn", GHA_DEFAULT_RR_DN},
			{"down_grace", GHA_DEFAULT_DOWN_GRACE},
			{"max_pool_elements", GHA_DEFAULT_MAX_POOL_ELEMENTS},
			{"rr_pool_port", GHA_DEFAULT_RR_POOL_PORT},
			{"end_pending_on_down", GHA_DEFAULT_END_PENDING},
			{"t1_probe", GHA_DEFAULT_T1_PROBE},
			{"t1_slots", GHA_DEFAULT_T1_SLOTS}, {"dmq", GHA_DEFAULT_DMQ},
			{"dmq_interval", GHA_DEFAULT_DMQ_INTERVAL},
			{"dmq_peer_timeout", GHA_DEFAULT_DMQ_PEER_TIMEOUT},
			{"dmq_probing", GHA_DEFAULT_DMQ_PROBING},
			{"dmq_sync_timeout", GHA_DEFAULT_DMQ_SYNC_TIMEOUT}};
	char *doc, buf[64];
	const char *v;
	FILE *f;
	long len;
	size_t i;
	(void)state;

	f = fopen(GHA_TEST_TOP "/modules/genesys_ha/doc/genesys_ha_admin.xml", "r");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	assert_true(len > 0);
	rewind(f);
	doc = malloc((size_t)len + 1);
	assert_non_null(doc);
	assert_int_equal(fread(doc, 1, (size_t)len, f), (size_t)len);
	doc[len] = '\0';
	fclose(f);
	for(i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		v = doc_default(doc, ints[i].name, buf, sizeof(buf));
		if(v == NULL || atoi(v) != ints[i].val)
			fail_msg("%s: the admin guide says '%s', the module %d",
					ints[i].name, v ? v : "(nothing)", ints[i].val);
	}
	v = doc_default(doc, "lb_algorithm", buf, sizeof(buf));
	assert_non_null(v);
	assert_string_equal(v, GHA_DEFAULT_LB_ALGORITHM);
	free(doc);
}

/* The validation cases below set a field and expect accepted() or
 * refused(message) one value at a time (range() for plain ranges): the
 * value and the message it must give are the check, so they are spelled out
 * and look alike. */
static void test_lb_algorithm(void **state)
{
	static const struct
	{
		const char *name;
		int alg;
	} ok[] = {{"round-robin", GHA_LB_ROUND_ROBIN},
			{"Round-Robin", GHA_LB_ROUND_ROBIN}, {"random", GHA_LB_RANDOM},
			{"RANDOM", GHA_LB_RANDOM}, {"hash", GHA_LB_HASH}};
	gha_params_t p = defaults();
	char err[256];
	size_t i;
	int alg;
	(void)state;

	for(i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		p.lb_algorithm = ok[i].name;
		alg = -1;
		assert_int_equal(gha_params_check(&p, &alg, err, sizeof(err)), 0);
		assert_int_equal(alg, ok[i].alg);
	}
	p.lb_algorithm = "weighted";
	refused(&p, "lb_algorithm 'weighted' is invalid: use round-robin, "
				"random or hash");
	p.lb_algorithm = "";
	refused(&p, "lb_algorithm '' is invalid");
	p.lb_algorithm = "round-robin ";
	refused(&p, "lb_algorithm 'round-robin ' is invalid");
	p.lb_algorithm = NULL;
	refused(&p, "lb_algorithm '' is invalid");
}

static void test_switches_are_0_or_1(void **state)
{
	gha_params_t p;
	int v;
	(void)state;

	for(v = 0; v <= 1; v++) {
		p = defaults();
		p.rr_dn = v;
		p.rr_pool_port = v;
		p.end_pending_on_down = v;
		p.t1_probe = v;
		accepted(&p);
	}
	p = defaults();
	p.rr_dn = 2;
	refused(&p, "rr_dn 2 is invalid: use 1 (the DN in the Record-Route");
	p = defaults();
	p.rr_pool_port = -1;
	refused(&p, "rr_pool_port -1 is invalid: use 1");
	p = defaults();
	p.end_pending_on_down = 2;
	refused(&p, "end_pending_on_down 2 is invalid: use 1 or 0");
	p = defaults();
	p.t1_probe = -1;
	refused(&p, "t1_probe -1 is invalid: use 1 or 0");
}

static void test_ranges(void **state)
{
	gha_params_t p;
	(void)state;

	p = defaults();
	/* 0: off */
	range(&p, &p.down_grace, 0, 60000, "down_grace -1 is invalid: use 0 (off",
			"down_grace 60001 is invalid");

	p.max_pool_elements = 1;
	accepted(&p);
	p.max_pool_elements = 0;
	refused(&p, "max_pool_elements 0 is invalid: use a positive number");
	p.max_pool_elements = 100000;

	range(&p, &p.t1_slots, 16, 1 << 22,
			"t1_slots 15 is invalid: use 16 to 4194304",
			"t1_slots 4194305 is invalid");
	p.t1_slots = 8;
	refused(&p, "t1_slots 8 is invalid: use 16 to 4194304");
	p.t1_slots = 4096;

	p.serving_len = 64;
	accepted(&p);
	p.serving_len = 65;
	refused(&p, "serving_sipserver is longer than 64 characters");
}

static void test_rr_pool_name(void **state)
{
	static const char *good[] = {
			"pool.example.com", "a", "sip-pool-1.lab", "POOL.Example.COM"};
	static const char *bad[] = {".pool.example.com", "-pool.example.com",
			"pool.example.com.", "pool_1.example.com", "pool.example.com:5060",
			"sip:pool.example.com", "pool example"};
	gha_params_t p = defaults();
	char name[300], needle[320];
	size_t i;
	(void)state;

	p.rr_pool_name = ""; /* off */
	p.rr_pool_name_len = 0;
	accepted(&p);
	for(i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		p.rr_pool_name = good[i];
		p.rr_pool_name_len = (int)strlen(good[i]);
		accepted(&p);
	}
	for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p.rr_pool_name = bad[i];
		p.rr_pool_name_len = (int)strlen(bad[i]);
		snprintf(needle, sizeof(needle),
				"rr_pool_name '%s' is invalid: give the pool's FQDN", bad[i]);
		refused(&p, needle);
	}
	/* a DNS name has at most 253 characters */
	memset(name, 'a', sizeof(name));
	p.rr_pool_name = name;
	p.rr_pool_name_len = 253;
	accepted(&p);
	p.rr_pool_name_len = 254;
	refused(&p, "is invalid: give the pool's FQDN");
	/* only its length is read: a name cut out of a longer buffer */
	p.rr_pool_name = "pool.example.com:5060";
	p.rr_pool_name_len = 16;
	accepted(&p);
}

/* dmq 0: the dmq_* parameters are not looked at */
static void test_dmq_off_checks_nothing(void **state)
{
	gha_params_t p = defaults();
	(void)state;

	p.dmq = 0;
	p.dmq_interval = 1;
	p.dmq_peer_timeout = 0;
	p.dmq_probing = -5;
	p.dmq_sync_timeout = 999999;
	accepted(&p);
}

static void test_dmq(void **state)
{
	gha_params_t p = defaults();
	(void)state;

	p.dmq = 1;
	accepted(&p);
	p.dmq_peer_timeout = 60000; /* not below any dmq_interval */
	range(&p, &p.dmq_interval, 100, 60000,
			"dmq_interval 99 is invalid: use 100 to 60000 ms",
			"dmq_interval 60001 is invalid");
	p.dmq_interval = 60000; /* equal: allowed */
	accepted(&p);
	p.dmq_peer_timeout = 59999;
	refused(&p, "dmq_peer_timeout 59999 must not be below dmq_interval "
				"60000");
	p.dmq_interval = 1000;
	p.dmq_peer_timeout = 3000;

	range(&p, &p.dmq_probing, 0, 64, "dmq_probing -1 is invalid",
			"dmq_probing 65 is invalid: 0 (off: every proxy probes");

	/* 0: no start sync */
	range(&p, &p.dmq_sync_timeout, 0, 30000, "dmq_sync_timeout -1 is invalid",
			"dmq_sync_timeout 30001 is invalid: use 0 to 30000 ms");
}

/* with dmq: own_address given, at most 64 characters (a decision's
 * origin); checked apart, once the dmq module is found */
static void test_dmq_own_address(void **state)
{
	char err[512] = "";
	(void)state;

	assert_int_equal(gha_params_check_own_address(0, 0, err, sizeof(err)), 0);
	assert_int_equal(gha_params_check_own_address(1, 14, err, sizeof(err)), 0);
	assert_int_equal(gha_params_check_own_address(1, 64, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(gha_params_check_own_address(1, 0, err, sizeof(err)), -1);
	assert_string_equal(err,
			"dmq needs own_address (this proxy's host:port as in the pool "
			"file's <proxy> elements): it names this proxy's decisions");
	err[0] = '\0';
	assert_int_equal(gha_params_check_own_address(1, 65, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "dmq needs own_address"));
}

/* several wrong parameters: the first is reported; a short buffer gets a
 * cut, terminated message */
static void test_first_error_and_short_buffer(void **state)
{
	gha_params_t p = defaults();
	char err[16];
	int alg = 0;
	(void)state;

	p.lb_algorithm = "weighted";
	p.rr_dn = 2;
	p.t1_slots = 1;
	refused(&p, "lb_algorithm");
	p.lb_algorithm = "hash";
	refused(&p, "rr_dn 2");
	p.rr_dn = 1;
	refused(&p, "t1_slots 1");
	memset(err, 'x', sizeof(err));
	assert_int_equal(gha_params_check(&p, &alg, err, sizeof(err)), -1);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_memory_equal(err, "t1_slots 1 is i", sizeof(err) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_defaults_are_valid),
			cmocka_unit_test(test_defaults_match_the_admin_guide),
			cmocka_unit_test(test_lb_algorithm),
			cmocka_unit_test(test_switches_are_0_or_1),
			cmocka_unit_test(test_ranges),
			cmocka_unit_test(test_rr_pool_name),
			cmocka_unit_test(test_dmq_off_checks_nothing),
			cmocka_unit_test(test_dmq),
			cmocka_unit_test(test_dmq_own_address),
			cmocka_unit_test(test_first_error_and_short_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
