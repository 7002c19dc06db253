/* cmocka tests: genesys_ha pool model (gha_pool.c): URIs, validation,
 * flattening, lookups */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "genesys_ha/gha_pool.h"

static void *t_alloc(size_t n, void *ctx)
{
	(*(int *)ctx)++;
	return malloc(n);
}

static void t_free(void *p, void *ctx)
{
	(*(int *)ctx)--;
	free(p);
}

static int live;
static const gha_alloc_t A = {t_alloc, t_free, &live};

/* resolver: IP literals, "sips-a.example" -> 10.0.0.1, else fails */
static int t_resolve(const char *host, gha_addr_t *out, void *ctx)
{
	(void)ctx;
	if(strcmp(host, "sips-a.example") == 0)
		host = "10.0.0.1";
	memset(out, 0, sizeof(*out));
	if(inet_pton(AF_INET, host, out->ip) == 1) {
		out->af = AF_INET;
		return 0;
	}
	if(inet_pton(AF_INET6, host, out->ip) == 1) {
		out->af = AF_INET6;
		return 0;
	}
	return -1;
}

static void test_uri_parse(void **state)
{
	gha_uri_t u;
	char err[256];
	const char *s;
	(void)state;
	s = "sip:10.0.0.1:5070;transport=tcp";
	assert_int_equal(gha_uri_parse(s, (int)strlen(s), &u, err, sizeof(err)), 0);
	assert_int_equal(u.port, 5070);
	assert_int_equal(u.proto, GHA_PROTO_TCP);
	assert_int_equal(u.host_type, 4);
	assert_int_equal(u.host.len, 8);
	s = "sips:user@[2001:db8::1]";
	assert_int_equal(gha_uri_parse(s, (int)strlen(s), &u, err, sizeof(err)), 0);
	assert_true(u.secure);
	assert_int_equal(u.host_type, 6);
	assert_int_equal(u.user.len, 4);
	assert_int_equal(u.port, 0);
	s = "SIP:sips-a.example;lr;transport=UDP";
	assert_int_equal(gha_uri_parse(s, (int)strlen(s), &u, err, sizeof(err)), 0);
	assert_int_equal(u.proto, GHA_PROTO_UDP);
	assert_int_equal(u.host_type, 0);
}

static void test_uri_parse_errors(void **state)
{
	gha_uri_t u;
	char err[256];
	const char *bad[] = {"", "http://x", "sip:", "sip:host:0", "sip:host:65536",
			"sip:host:12a", "sip:ho st", "sip:[::1", "sip:[zz::1]",
			"sip:h;transport=xyz", "sip:h;transport", "sip:-h", "sip:@h",
			"sip:h;;x", "sip:h?x=1", NULL};
	int i;
	(void)state;
	for(i = 0; bad[i]; i++) {
		err[0] = '\0';
		assert_int_equal(gha_uri_parse(bad[i], (int)strlen(bad[i]), &u, err,
								 sizeof(err)),
				-1);
		assert_true(strlen(err) > 0);
	}
	assert_int_equal(gha_uri_parse(NULL, 0, &u, err, sizeof(err)), -1);
}

static void test_hostport(void **state)
{
	str h;
	int port;
	char err[128];
	(void)state;
	assert_int_equal(gha_hostport_parse(
							 "127.0.0.1:5060", 14, &h, &port, err, sizeof(err)),
			0);
	assert_int_equal(port, 5060);
	assert_int_equal(h.len, 9);
	assert_int_equal(
			gha_hostport_parse("[::1]:5060", 10, &h, &port, err, sizeof(err)),
			0);
	assert_int_equal(h.len, 3);
	assert_int_equal(
			gha_hostport_parse("host", 4, &h, &port, err, sizeof(err)), -1);
	assert_int_equal(
			gha_hostport_parse("host:", 5, &h, &port, err, sizeof(err)), -1);
	assert_int_equal(
			gha_hostport_parse("host:1x", 7, &h, &port, err, sizeof(err)), -1);
}

/* a draft with two pairs and a feature server */
static void mkdraft(gha_draft_t *d)
{
	gha_draft_pair_t *p;
	gha_draft_proxy_t *x;
	gha_draft_fs_t *f;

	memset(d, 0, sizeof(*d));
	d->file = strdup("pool.xml");
	x = gha_draft_add_proxy(d);
	x->address = strdup("127.0.0.1:5060");
	x->site = strdup("east");
	x->line = 3;
	p = gha_draft_add_pair(d);
	p->name = strdup("SIPS_A");
	p->site = strdup("east");
	p->uri[0] = strdup("sip:sips-a.example:5060");
	p->uri[1] = strdup("sip:10.0.0.2;transport=tcp");
	p->line = 5;
	p->uline[0] = 6;
	p->uline[1] = 7;
	p = gha_draft_add_pair(d);
	p->name = strdup("SIPS_B");
	p->site = strdup("west");
	p->uri[0] = strdup("sips:10.0.1.1");
	p->uri[1] = strdup("sip:10.0.1.2:5080");
	p->line = 9;
	p->uline[0] = 10;
	p->uline[1] = 11;
	f = gha_draft_add_fs(d);
	f->name = strdup("FS1");
	f->site = strdup("east");
	f->uri = strdup("sip:10.0.2.1");
	f->line = 13;
}

static gha_build_opts_t opts(void)
{
	gha_build_opts_t o;
	memset(&o, 0, sizeof(o));
	o.resolve = t_resolve;
	o.now = 1000;
	return o;
}

static void test_build_ok(void **state)
{
	gha_draft_t d;
	gha_pool_t *p;
	gha_build_opts_t o = opts();
	char err[512];
	gha_addr_t a;
	str h;
	int m;
	(void)state;
	mkdraft(&d);
	o.own_address = "127.0.0.1:5060";
	o.serving = "SIPS_B";
	assert_int_equal(
			gha_pool_build(&d, &o, &A, &p, err, sizeof(err)), GHA_LOAD_OK);
	gha_draft_free(&d);
	assert_int_equal(live, 1);
	assert_int_equal(p->npairs, 2);
	assert_int_equal(p->nfs, 1);
	assert_int_equal(p->nproxies, 1);
	assert_int_equal(p->serving, 1);
	assert_int_equal(p->own_index, 0);
	assert_string_equal(p->own_site.s, "east");
	assert_string_equal(p->file.s, "pool.xml");
	assert_string_equal(p->pairs[0].name.s, "SIPS_A");
	/* the Record-Route parameter, escaped once at load */
	assert_string_equal(p->pairs[0].rr.s, ";gha=SIPS_A");
	assert_int_equal(p->pairs[0].rr.len, 11);
	assert_string_equal(p->pairs[1].rr.s, ";gha=SIPS_B");
	assert_string_equal(p->pairs[0].m[0].uri.s, "sip:sips-a.example:5060");
	assert_string_equal(p->pairs[0].m[0].host.s, "sips-a.example");
	/* resolved at load time: no DNS when used */
	assert_string_equal(p->pairs[0].m[0].dst.s, "sip:10.0.0.1:5060");
	assert_string_equal(
			p->pairs[0].m[1].dst.s, "sip:10.0.0.2:5060;transport=tcp");
	assert_int_equal(p->pairs[0].m[1].proto, GHA_PROTO_TCP);
	assert_string_equal(
			p->pairs[1].m[0].dst.s, "sip:10.0.1.1:5061;transport=tls");
	assert_int_equal(p->pairs[1].m[1].port, 5080);
	assert_int_equal(p->pairs[1].m[1].line, 11);
	assert_int_equal(p->pairs[0].m[0].goos_id, -1);
	assert_int_equal(p->pairs[0].st.active, GHA_PRIMARY);
	assert_int_equal(p->pairs[0].st.psince, 1000);
	assert_string_equal(p->fs[0].m.dst.s, "sip:10.0.2.1:5060");
	/* lookups */
	assert_int_equal(gha_pool_find_pair(p, "SIPS_B", 6), 1);
	assert_int_equal(gha_pool_find_pair(p, "SIPS_", 5), -1);
	t_resolve("10.0.1.2", &a, NULL);
	assert_int_equal(gha_pool_find_member_addr(p, &a, 5080, 0, &m), 1);
	assert_int_equal(m, GHA_BACKUP);
	assert_int_equal(gha_pool_find_member_addr(p, &a, 5060, 0, &m), -1);
	assert_int_equal(gha_pool_find_member_addr(p, &a, 40000, 1, &m), 1);
	h.s = "SIPS-A.example";
	h.len = 14;
	assert_int_equal(gha_pool_find_member_host(p, &h, 0, &m), 0);
	assert_int_equal(m, GHA_PRIMARY);
	h.s = "10.0.0.1";
	h.len = 8;
	assert_int_equal(gha_pool_find_member_host(p, &h, 5060, &m), 0);
	assert_int_equal(gha_pool_find_member_host(p, &h, 5062, &m), -1);
	t_resolve("10.0.2.1", &a, NULL);
	assert_int_equal(gha_pool_find_fs_addr(p, &a, 5060), 0);
	/* a feature server as a sender (any port: TCP/TLS) and as a target */
	assert_int_equal(gha_pool_find_fs_src(p, &a, 0), 0);
	assert_int_equal(gha_pool_find_fs_src(p, &a, 5060), 0);
	assert_int_equal(gha_pool_find_fs_src(p, &a, 41000), -1);
	h.s = "10.0.2.1";
	h.len = 8;
	assert_int_equal(gha_pool_find_fs_host(p, &h, 0), 0);
	assert_int_equal(gha_pool_find_fs_host(p, &h, 5060), 0);
	assert_int_equal(gha_pool_find_fs_host(p, &h, 5070), -1);
	h.s = "10.0.2.10";
	h.len = 9;
	assert_int_equal(gha_pool_find_fs_host(p, &h, 5060), -1);
	t_resolve("10.0.0.9", &a, NULL);
	assert_int_equal(gha_pool_find_fs_src(p, &a, 0), -1);
	/* everything lives inside the one block */
	assert_true((char *)p->pairs[1].m[1].ip.s < (char *)p + p->size);
	gha_pool_free(p, &A);
	assert_int_equal(live, 0);
}

static void expect(gha_draft_t *d, gha_build_opts_t *o, gha_load_rc_t rc,
		const char *needle)
{
	gha_pool_t *p = NULL;
	char err[512] = "";
	assert_int_equal(gha_pool_build(d, o, &A, &p, err, sizeof(err)), rc);
	assert_null(p);
	if(strstr(err, needle) == NULL)
		fail_msg("error '%s' does not contain '%s'", err, needle);
	gha_draft_free(d);
	assert_int_equal(live, 0);
}

static void test_build_errors(void **state)
{
	gha_draft_t d;
	gha_build_opts_t o = opts();
	(void)state;

	mkdraft(&d);
	free(d.pairs[1].name);
	d.pairs[1].name = strdup("SIPS_A");
	expect(&d, &o, GHA_LOAD_CONFIG,
			"pool.xml:9: element <sipserver>: duplicate name 'SIPS_A' (first "
			"at line 5)");

	mkdraft(&d);
	free(d.pairs[1].uri[1]);
	d.pairs[1].uri[1] = strdup("sip:10.0.1.2:99999");
	expect(&d, &o, GHA_LOAD_CONFIG,
			"pool.xml:11: element <backup> of 'SIPS_B': URI "
			"'sip:10.0.1.2:99999': bad port");

	mkdraft(&d);
	free(d.pairs[0].uri[0]);
	d.pairs[0].uri[0] = strdup("sip:no-such-host.invalid");
	expect(&d, &o, GHA_LOAD_RESOLVE,
			"pool.xml:6: element <primary> of 'SIPS_A': cannot resolve host "
			"'no-such-host.invalid'");

	mkdraft(&d);
	free(d.pairs[1].uri[0]);
	d.pairs[1].uri[0] = strdup("sip:10.0.0.2:5060");
	expect(&d, &o, GHA_LOAD_CONFIG, "is already a member of 'SIPS_A'");

	mkdraft(&d);
	o.serving = "SIPS_X";
	expect(&d, &o, GHA_LOAD_CONFIG,
			"serving_sipserver 'SIPS_X' is not a <sipserver>");
	o.serving = NULL;

	mkdraft(&d);
	o.own_address = "127.0.0.2:5060";
	expect(&d, &o, GHA_LOAD_OWN_ADDR,
			"own_address 127.0.0.2:5060 is not a <proxy> of the pool");
	mkdraft(&d);
	o.own_address = "127.0.0.1:5061";
	expect(&d, &o, GHA_LOAD_OWN_ADDR, "is not a <proxy>");
	o.own_address = NULL;

	mkdraft(&d);
	free(d.fs[0].uri);
	d.fs[0].uri = strdup("sip:10.0.2.1;transport=carrier-pigeon");
	expect(&d, &o, GHA_LOAD_CONFIG, "pool.xml:13: element <featureserver>");

	mkdraft(&d);
	gha_draft_add_proxy(&d)->address = strdup("127.0.0.1:5060");
	expect(&d, &o, GHA_LOAD_CONFIG, "duplicate address '127.0.0.1:5060'");

	mkdraft(&d);
	free(d.proxies[0].address);
	d.proxies[0].address = strdup("no-such-host.invalid:5060");
	expect(&d, &o, GHA_LOAD_RESOLVE, "element <proxy>: cannot resolve host");

	memset(&d, 0, sizeof(d));
	d.file = strdup("empty.xml");
	expect(&d, &o, GHA_LOAD_CONFIG, "empty.xml: no <sipserver> element");
}

static void test_default_resolver_literals(void **state)
{
	gha_addr_t a;
	(void)state;
	assert_int_equal(gha_resolve_default("127.0.0.5", &a, NULL), 0);
	assert_int_equal(a.af, AF_INET);
	assert_int_equal(a.ip[3], 5);
	assert_int_equal(gha_resolve_default("::1", &a, NULL), 0);
	assert_int_equal(a.af, AF_INET6);
	assert_int_equal(gha_resolve_default("no-such-host.invalid", &a, NULL), -1);
	assert_string_equal(gha_proto_name(GHA_PROTO_SCTP), "sctp");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_uri_parse),
			cmocka_unit_test(test_uri_parse_errors),
			cmocka_unit_test(test_hostport),
			cmocka_unit_test(test_build_ok),
			cmocka_unit_test(test_build_errors),
			cmocka_unit_test(test_default_resolver_literals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
