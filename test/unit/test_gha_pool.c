/* cmocka tests: genesys_ha pool model (gha_pool.c): URIs, validation,
 * flattening, lookups */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "genesys_ha/gha_pool.h"
#include "kg_test.h"

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

/* a pair of d: <sipserver> at line, its <primary> and <backup> below it */
static void add_pair(gha_draft_t *d, const char *name, const char *site,
		const char *primary, const char *backup, int line)
{
	gha_draft_pair_t *p = gha_draft_add_pair(d);

	p->name = strdup(name);
	p->site = strdup(site);
	p->uri[0] = strdup(primary);
	p->uri[1] = strdup(backup);
	p->line = line;
	p->uline[0] = line + 1;
	p->uline[1] = line + 2;
}

/* a draft with two pairs and a feature server */
static void mkdraft(gha_draft_t *d)
{
	gha_draft_proxy_t *x;
	gha_draft_fs_t *f;

	memset(d, 0, sizeof(*d));
	d->file = strdup("pool.xml");
	x = gha_draft_add_proxy(d);
	x->address = strdup("127.0.0.1:5060");
	x->site = strdup("east");
	x->line = 3;
	add_pair(d, "SIPS_A", "east", "sip:sips-a.example:5060",
			"sip:10.0.0.2;transport=tcp", 5);
	add_pair(d, "SIPS_B", "west", "sips:10.0.1.1", "sip:10.0.1.2:5080", 9);
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
	assert_null(p->pairs[0].slot); /* runtime state: gha_slots.c */
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

/* *slot becomes a copy of v (NULL: none), the old value freed */
static void set_str(char **slot, const char *v)
{
	free(*slot);
	*slot = v ? strdup(v) : NULL;
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

/* Each block below is one broken draft and the error it must give: the
 * mkdraft / change / expect lines repeat on purpose, one scenario a block. */
static void test_build_errors(void **state)
{
	gha_draft_t d;
	gha_build_opts_t o = opts();
	(void)state;

	mkdraft(&d);
	set_str(&d.pairs[1].name, "SIPS_A");
	expect(&d, &o, GHA_LOAD_CONFIG,
			"pool.xml:9: element <sipserver>: duplicate name 'SIPS_A' (first "
			"at line 5)");

	mkdraft(&d);
	set_str(&d.pairs[1].uri[1], "sip:10.0.1.2:99999");
	expect(&d, &o, GHA_LOAD_CONFIG,
			"pool.xml:11: element <backup> of 'SIPS_B': URI "
			"'sip:10.0.1.2:99999': bad port");

	mkdraft(&d);
	set_str(&d.pairs[0].uri[0], "sip:no-such-host.invalid");
	expect(&d, &o, GHA_LOAD_RESOLVE,
			"pool.xml:6: element <primary> of 'SIPS_A': cannot resolve host "
			"'no-such-host.invalid'");

	mkdraft(&d);
	set_str(&d.pairs[1].uri[0], "sip:10.0.0.2:5060");
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
	set_str(&d.fs[0].uri, "sip:10.0.2.1;transport=carrier-pigeon");
	expect(&d, &o, GHA_LOAD_CONFIG, "pool.xml:13: element <featureserver>");

	mkdraft(&d);
	gha_draft_add_proxy(&d)->address = strdup("127.0.0.1:5060");
	expect(&d, &o, GHA_LOAD_CONFIG, "duplicate address '127.0.0.1:5060'");

	mkdraft(&d);
	set_str(&d.proxies[0].address, "no-such-host.invalid:5060");
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

/* ---- lookup tables (hash) against the linear scans they replace ---- */

static int same(const gha_addr_t *a, const gha_addr_t *b)
{
	return a->af == b->af
		   && memcmp(a->ip, b->ip, a->af == AF_INET ? 4 : 16) == 0;
}

/* the former linear gha_pool_find_member_addr() */
static int lin_addr(const gha_pool_t *p, const gha_addr_t *a, int port,
		int any_port, int *member)
{
	int i, k, found = -1;
	for(i = 0; i < p->npairs; i++)
		for(k = 0; k < 2; k++) {
			const gha_member_t *m = &p->pairs[i].m[k];
			if(!same(&m->addr, a))
				continue;
			if(m->port == port) {
				*member = k;
				return i;
			}
			if(any_port && found < 0) {
				found = i;
				*member = k;
			}
		}
	return found;
}

/* the former linear gha_pool_find_member_host() */
static int lin_host(const gha_pool_t *p, const str *host, int port, int *member)
{
	int i, k;
	for(i = 0; i < p->npairs; i++)
		for(k = 0; k < 2; k++) {
			const gha_member_t *m = &p->pairs[i].m[k];
			int mp = port ? port : (m->proto == GHA_PROTO_TLS ? 5061 : 5060);
			if(m->port != mp)
				continue;
			if((m->host.len == host->len
					   && strncasecmp(m->host.s, host->s, host->len) == 0)
					|| (m->ip.len == host->len
							&& strncasecmp(m->ip.s, host->s, host->len) == 0)) {
				*member = k;
				return i;
			}
		}
	return -1;
}

static char *xstrdup_printf(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return strdup(buf);
}

/* n pairs: members spread over few addresses (many on one address with
 * different ports), IPv4 and IPv6, udp/tcp/tls, same host different ports */
static gha_pool_t *big_pool(int n)
{
	gha_draft_t d;
	gha_draft_pair_t *x;
	gha_pool_t *p = NULL;
	gha_build_opts_t o = opts();
	char err[512];
	int i, k;

	memset(&d, 0, sizeof(d));
	d.file = strdup("big.xml");
	for(i = 0; i < n; i++) {
		x = gha_draft_add_pair(&d);
		x->name = xstrdup_printf("SIPS_%d", i);
		x->line = i + 1;
		for(k = 0; k < 2; k++) {
			int v = 2 * i + k;
			switch(v % 5) {
				case 0: /* one address, many ports */
					x->uri[k] = xstrdup_printf("sip:10.1.0.1:%d", 10000 + v);
					break;
				case 1: /* IPv6 */
					x->uri[k] = xstrdup_printf(
							"sip:[2001:db8::%x]:%d;transport=tcp", v % 7,
							20000 + v);
					break;
				case 2: /* default port, TLS */
					x->uri[k] =
							xstrdup_printf("sips:10.2.%d.%d", v / 250, v % 250);
					break;
				case 3: /* a name: default port, 5070, others */
					if(v == 3)
						x->uri[k] = strdup("sip:sips-a.example");
					else if(v == 8)
						x->uri[k] = strdup("sip:sips-a.example:5070");
					else
						x->uri[k] = xstrdup_printf(
								"sip:sips-a.example:%d", 30000 + v);
					break;
				default:
					x->uri[k] = xstrdup_printf(
							"sip:10.3.%d.%d:5060", v / 250, v % 250);
			}
		}
	}
	assert_int_equal(
			gha_pool_build(&d, &o, &A, &p, err, sizeof(err)), GHA_LOAD_OK);
	gha_draft_free(&d);
	return p;
}

static void test_lookup_tables(void **state)
{
	gha_pool_t *p = big_pool(1000);
	gha_addr_t a;
	char buf[128];
	str h;
	int i, k, m1, m2, r1, r2, port, probe;
	static const int ports[] = {0, 5060, 5061, 5070, 10000, 20001, 30003};
	(void)state;

	/* every pair by name, none that is not */
	for(i = 0; i < p->npairs; i++) {
		snprintf(buf, sizeof(buf), "SIPS_%d", i);
		assert_int_equal(gha_pool_find_pair(p, buf, (int)strlen(buf)), i);
	}
	assert_int_equal(gha_pool_find_pair(p, "SIPS_1000", 9), -1);
	assert_int_equal(gha_pool_find_pair(p, "sips_1", 6), -1);
	assert_int_equal(gha_pool_find_pair(p, "", 0), -1);
	/* every member by address and port, by any port (TCP), by host and by
	 * ip text: exactly what the linear scans answered */
	for(i = 0; i < p->npairs; i++)
		for(k = 0; k < 2; k++) {
			const gha_member_t *m = &p->pairs[i].m[k];
			for(probe = -1; probe <= 1; probe++) {
				port = m->port + probe;
				m1 = m2 = -7;
				r1 = gha_pool_find_member_addr(p, &m->addr, port, 0, &m1);
				r2 = lin_addr(p, &m->addr, port, 0, &m2);
				assert_int_equal(r1, r2);
				if(r1 >= 0)
					assert_int_equal(m1, m2);
				r1 = gha_pool_find_member_addr(p, &m->addr, port, 1, &m1);
				r2 = lin_addr(p, &m->addr, port, 1, &m2);
				assert_int_equal(r1, r2);
				assert_int_equal(m1, m2);
			}
			assert_int_equal(
					gha_pool_find_member_addr(p, &m->addr, m->port, 0, &m1), i);
			assert_int_equal(m1, k);
			for(port = 0; port < (int)(sizeof(ports) / sizeof(ports[0]) + 1);
					port++) {
				int pp = port < (int)(sizeof(ports) / sizeof(ports[0]))
								 ? ports[port]
								 : m->port;
				r1 = gha_pool_find_member_host(p, &m->host, pp, &m1);
				r2 = lin_host(p, &m->host, pp, &m2);
				assert_int_equal(r1, r2);
				if(r1 >= 0)
					assert_int_equal(m1, m2);
				r1 = gha_pool_find_member_host(p, &m->ip, pp, &m1);
				r2 = lin_host(p, &m->ip, pp, &m2);
				assert_int_equal(r1, r2);
				if(r1 >= 0)
					assert_int_equal(m1, m2);
			}
			assert_int_equal(
					gha_pool_find_member_host(p, &m->ip, m->port, &m1), i);
			assert_int_equal(m1, k);
		}
	/* same host, different ports: each port its own member */
	h.s = "SIPS-A.EXAMPLE";
	h.len = 14;
	r1 = gha_pool_find_member_host(p, &h, 0, &m1);
	assert_true(r1 >= 0);
	assert_int_equal(p->pairs[r1].m[m1].port, 5060);
	r2 = gha_pool_find_member_host(p, &h, 30013, &m2);
	assert_true(r2 >= 0);
	assert_int_equal(p->pairs[r2].m[m2].port, 30013);
	assert_int_equal(gha_pool_find_member_host(p, &h, 30014, &m2), -1);
	/* TLS members on the default port: found with port 0 (5061) and 5061,
	 * not with 5060 */
	h.s = "10.2.0.2";
	h.len = 8;
	assert_int_equal(gha_pool_find_member_host(p, &h, 0, &m1), 1);
	assert_int_equal(m1, 0);
	assert_int_equal(gha_pool_find_member_host(p, &h, 5061, &m1), 1);
	assert_int_equal(gha_pool_find_member_host(p, &h, 5060, &m1), -1);
	/* IPv6: the ip text, with or without [] (a Request-URI keeps them) */
	h.s = "2001:db8::1";
	h.len = 11;
	assert_int_equal(gha_pool_find_member_host(p, &h, 20001, &m1), 0);
	assert_int_equal(m1, 1);
	h.s = "[2001:db8::1]";
	h.len = 13;
	assert_int_equal(gha_pool_find_member_host(p, &h, 20001, &m1), 0);
	assert_int_equal(gha_pool_find_member_host(p, &h, 0, &m1), -1);
	t_resolve("2001:db8::1", &a, NULL);
	assert_int_equal(gha_pool_find_member_addr(p, &a, 20001, 0, &m1), 0);
	assert_int_equal(m1, 1);
	/* TCP from an ephemeral port: the first member at the address */
	assert_int_equal(gha_pool_find_member_addr(p, &a, 40000, 0, &m1), -1);
	assert_int_equal(gha_pool_find_member_addr(p, &a, 40000, 1, &m1), 0);
	assert_int_equal(m1, 1);
	/* one address, many ports (UDP): each port its own member */
	t_resolve("10.1.0.1", &a, NULL);
	assert_int_equal(
			gha_pool_find_member_addr(p, &a, 10000 + 1990, 0, &m1), 995);
	assert_int_equal(m1, 0);
	assert_int_equal(gha_pool_find_member_addr(p, &a, 10001, 0, &m1), -1);
	/* an address that is not a member */
	t_resolve("10.9.9.9", &a, NULL);
	assert_int_equal(gha_pool_find_member_addr(p, &a, 5060, 1, &m1), -1);
	/* the tables are in the one block */
	assert_true(
			(char *)p->h_host > (char *)p
			&& (char *)(p->h_host + p->hmask_host + 1) <= (char *)p + p->size);
	gha_pool_free(p, &A);
	assert_int_equal(live, 0);
}

/* colliding hashes: a table of 8 slots with entries wrapping around */
static void test_lookup_small_and_wrap(void **state)
{
	int n;
	(void)state;
	for(n = 1; n <= 9; n++) {
		gha_pool_t *p = big_pool(n);
		char buf[32];
		int i, k, m;
		for(i = 0; i < n; i++) {
			snprintf(buf, sizeof(buf), "SIPS_%d", i);
			assert_int_equal(gha_pool_find_pair(p, buf, (int)strlen(buf)), i);
			for(k = 0; k < 2; k++) {
				const gha_member_t *mm = &p->pairs[i].m[k];
				assert_int_equal(gha_pool_find_member_addr(
										 p, &mm->addr, mm->port, 0, &m),
						i);
				assert_int_equal(m, k);
			}
		}
		assert_int_equal(gha_pool_find_pair(p, "SIPS_X", 6), -1);
		gha_pool_free(p, &A);
	}
	assert_int_equal(live, 0);
}

/* the build validates in steps (proxies, pairs, sites, unique members,
 * feature servers, serving_sipserver, own_address): with several errors
 * the first step's is the one reported */
static void test_build_error_order(void **state)
{
	gha_draft_t d;
	gha_build_opts_t o = opts();
	(void)state;

	mkdraft(&d);
	gha_draft_add_proxy(&d)->address = strdup("127.0.0.1:5060");
	set_str(&d.pairs[1].name, "SIPS_A");
	expect(&d, &o, GHA_LOAD_CONFIG, "duplicate address '127.0.0.1:5060'");

	mkdraft(&d);
	set_str(&d.pairs[1].name, "SIPS_A");
	set_str(&d.pairs[1].uri[0], "sip:10.0.0.2:5060");
	expect(&d, &o, GHA_LOAD_CONFIG, "duplicate name 'SIPS_A'");

	mkdraft(&d);
	set_str(&d.pairs[1].uri[0], "sip:10.0.0.2:5060");
	set_str(&d.fs[0].name, NULL);
	expect(&d, &o, GHA_LOAD_CONFIG, "is already a member of 'SIPS_A'");

	mkdraft(&d);
	set_str(&d.fs[0].name, NULL);
	o.serving = "SIPS_X";
	expect(&d, &o, GHA_LOAD_CONFIG,
			"pool.xml:13: element <featureserver>: missing or too long name");

	mkdraft(&d);
	o.own_address = "127.0.0.2:5060";
	expect(&d, &o, GHA_LOAD_CONFIG, "serving_sipserver 'SIPS_X'");
}

static void *no_alloc(size_t n, void *ctx)
{
	(void)n;
	(void)ctx;
	return NULL;
}

/* the allocator refuses the snapshot: no pool, the size in the message,
 * nothing of the build's own memory left (ASan's leak check) */
static void test_build_alloc_fails(void **state)
{
	static const gha_alloc_t none = {no_alloc, t_free, &live};
	gha_draft_t d;
	gha_pool_t *p = NULL;
	gha_build_opts_t o = opts();
	char err[512] = "";
	(void)state;

	mkdraft(&d);
	assert_int_equal(gha_pool_build(&d, &o, &none, &p, err, sizeof(err)),
			GHA_LOAD_NOMEM);
	assert_null(p);
	if(strstr(err, "out of memory (") == NULL
			|| strstr(err, " bytes for the pool)") == NULL)
		fail_msg("error '%s'", err);
	gha_draft_free(&d);
	assert_int_equal(live, 0);
}

/* duplicate checks are O(n) now: a large pool builds fast, and the
 * duplicates are still found with the first occurrence named */
static void test_build_large_duplicates(void **state)
{
	gha_draft_t d;
	gha_draft_pair_t *x;
	gha_build_opts_t o = opts();
	int i, n = 20000;
	(void)state;

	memset(&d, 0, sizeof(d));
	d.file = strdup("big.xml");
	for(i = 0; i < n; i++) {
		x = gha_draft_add_pair(&d);
		x->name = xstrdup_printf("SIPS_%d", i);
		x->line = i + 1;
		x->uri[0] = xstrdup_printf("sip:10.4.%d.%d:5060", i / 250, i % 250);
		x->uri[1] = xstrdup_printf("sip:10.4.%d.%d:5070", i / 250, i % 250);
	}
	set_str(&d.pairs[n - 1].uri[1], "sip:10.4.40.7:5060");
	expect(&d, &o, GHA_LOAD_CONFIG,
			"big.xml:20000: element <backup> of 'SIPS_19999': 10.4.40.7:5060 "
			"is already a member of 'SIPS_10007' (line 10008)");
}

/* the pairs of each site, in file order; no site: all pairs */
static void test_site_pairs(void **state)
{
	static const char *sites[] = {
			"east", "west", NULL, "east", "West", "", "west", "east"};
	gha_draft_t d;
	gha_draft_pair_t *x;
	gha_pool_t *p = NULL;
	gha_build_opts_t o = opts();
	char err[512];
	const int *idx;
	str st;
	int i, n;
	(void)state;

	memset(&d, 0, sizeof(d));
	d.file = strdup("sites.xml");
	for(i = 0; i < 8; i++) {
		x = gha_draft_add_pair(&d);
		x->name = xstrdup_printf("P%d", i);
		x->site = sites[i] ? strdup(sites[i]) : NULL;
		x->uri[0] = xstrdup_printf("sip:10.6.0.%d", 2 * i + 1);
		x->uri[1] = xstrdup_printf("sip:10.6.0.%d", 2 * i + 2);
	}
	assert_int_equal(
			gha_pool_build(&d, &o, &A, &p, err, sizeof(err)), GHA_LOAD_OK);
	gha_draft_free(&d);
	assert_int_equal(p->nsites, 4); /* east, west, "", West */
	st.s = "east";
	st.len = 4;
	n = gha_pool_site_pairs(p, &st, &idx);
	assert_int_equal(n, 3);
	assert_int_equal(idx[0], 0);
	assert_int_equal(idx[1], 3);
	assert_int_equal(idx[2], 7);
	st.s = "west";
	n = gha_pool_site_pairs(p, &st, &idx);
	assert_int_equal(n, 2);
	assert_int_equal(idx[0], 1);
	assert_int_equal(idx[1], 6);
	st.s = "West"; /* site names are case-sensitive */
	n = gha_pool_site_pairs(p, &st, &idx);
	assert_int_equal(n, 1);
	assert_int_equal(idx[0], 4);
	st.s = "north";
	st.len = 5;
	assert_int_equal(gha_pool_site_pairs(p, &st, &idx), 0);
	st.len = 0;
	n = gha_pool_site_pairs(p, &st, &idx);
	assert_int_equal(n, 8);
	for(i = 0; i < 8; i++)
		assert_int_equal(idx[i], i);
	assert_int_equal(gha_pool_site_pairs(p, NULL, &idx), 8);
	gha_pool_free(p, &A);
	assert_int_equal(live, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_uri_parse),
			cmocka_unit_test(test_uri_parse_errors),
			cmocka_unit_test(test_hostport),
			cmocka_unit_test(test_build_ok),
			cmocka_unit_test(test_build_errors),
			cmocka_unit_test(test_build_error_order),
			cmocka_unit_test(test_build_alloc_fails),
			cmocka_unit_test(test_default_resolver_literals),
			cmocka_unit_test(test_lookup_tables),
			cmocka_unit_test(test_lookup_small_and_wrap),
			cmocka_unit_test(test_build_large_duplicates),
			cmocka_unit_test(test_site_pairs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
