/* cmocka tests: genesys_ha pool file loader (gha_xml.c) with the shipped
 * schema etc/genesys-pool.xsd and sample etc/genesys-pool.xml */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <libxml/parser.h>

#include "genesys_ha/gha_xml.h"
#include "kg_test.h"

#define XSD GHA_TEST_TOP "/etc/genesys-pool.xsd"
#define SAMPLE GHA_TEST_TOP "/etc/genesys-pool.xml"

static const gha_alloc_t A = {t_alloc, t_free, NULL};
static char path[64];

static const char *write_file(const char *text)
{
	FILE *f;
	int fd;

	strcpy(path, "/tmp/gha_xml_XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static gha_load_rc_t load(const char *text, gha_pool_t **p, char *err)
{
	gha_build_opts_t o;
	gha_load_rc_t rc;

	memset(&o, 0, sizeof(o));
	o.now = 1;
	write_file(text);
	rc = gha_xml_load(path, XSD, NULL, 0, &o, &A, p, err, 512);
	unlink(path);
	return rc;
}

static void expect_err(
		const char *text, gha_load_rc_t want, int line, const char *needle)
{
	gha_pool_t *p = NULL;
	char err[512] = "", prefix[128];

	assert_int_equal(load(text, &p, err), want);
	assert_null(p);
	snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
	if(strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("error '%s' does not start with '%s'", err, prefix);
	if(strstr(err, needle) == NULL)
		fail_msg("error '%s' does not contain '%s'", err, needle);
}

#define HEAD "<?xml version=\"1.0\"?>\n"

static void test_sample_file_loads(void **state)
{
	gha_build_opts_t o;
	gha_pool_t *p = NULL;
	char err[512] = "";
	(void)state;
	memset(&o, 0, sizeof(o));
	o.own_address = "127.0.0.1:5060";
	o.serving = "SIPS_East";
	assert_int_equal(
			gha_xml_load(SAMPLE, XSD, NULL, 0, &o, &A, &p, err, sizeof(err)),
			GHA_LOAD_OK);
	assert_non_null(p);
	assert_int_equal(p->npairs, 1);
	assert_int_equal(p->nfs, 1);
	assert_string_equal(p->own_site.s, "east");
	assert_string_equal(
			p->pairs[0].m[1].dst.s, "sip:127.0.0.12:5060;transport=udp");
	gha_pool_free(p, &A);
}

static void test_lines_and_elements(void **state)
{
	gha_pool_t *p = NULL;
	char err[512];
	(void)state;
	assert_int_equal(
			load(HEAD "<pool>\n"
					  "  <proxies><proxy address=\"127.0.0.1:5060\"/>"
					  "</proxies>\n"
					  "  <sipserver name=\"A\">\n"
					  "    <primary uri=\"sip:10.1.1.1\"/>\n"
					  "    <backup uri=\"sip:10.1.1.2\"/>\n"
					  "  </sipserver>\n"
					  "  <sipserver name=\"B\" site=\"w\">\n"
					  "    <primary uri=\"sip:10.1.2.1\"/>\n"
					  "    <backup uri=\"sip:10.1.2.2\"/>\n"
					  "  </sipserver>\n"
					  "  <featureserver name=\"F\" uri=\"sip:10.1.3.1\"/>\n"
					  "</pool>\n",
					&p, err),
			GHA_LOAD_OK);
	assert_int_equal(p->pairs[0].line, 4);
	assert_int_equal(p->pairs[0].m[1].line, 6);
	assert_int_equal(p->pairs[1].m[0].line, 9);
	assert_string_equal(p->pairs[1].site.s, "w");
	assert_int_equal(p->pairs[0].site.len, 0);
	gha_pool_free(p, &A);
}

static void test_not_well_formed(void **state)
{
	(void)state;
	/* the first error (line 4), not the last ("Premature end of data",
	 * line 5) */
	expect_err(HEAD "<pool>\n  <sipserver name=\"A\">\n</pool>\n",
			GHA_LOAD_CONFIG, 4,
			"not well-formed XML: Opening and ending tag mismatch: sipserver "
			"line 3 and pool");
}

static void test_schema_violation(void **state)
{
	(void)state;
	/* backup missing */
	expect_err(HEAD "<pool>\n"
					"  <sipserver name=\"A\">\n"
					"    <primary uri=\"sip:10.1.1.1\"/>\n"
					"  </sipserver>\n"
					"</pool>\n",
			GHA_LOAD_CONFIG, 3, "element <sipserver>");
	/* unknown element */
	expect_err(HEAD "<pool>\n"
					"  <sipserver name=\"A\">\n"
					"    <primary uri=\"sip:10.1.1.1\"/>\n"
					"    <backup uri=\"sip:10.1.1.2\"/>\n"
					"    <tertiary uri=\"sip:10.1.1.3\"/>\n"
					"  </sipserver>\n"
					"</pool>\n",
			GHA_LOAD_CONFIG, 6, "element <tertiary>");
	/* bad attribute value */
	expect_err(HEAD "<pool>\n"
					"  <sipserver name=\"bad/name\">\n"
					"    <primary uri=\"sip:10.1.1.1\"/>\n"
					"    <backup uri=\"sip:10.1.1.2\"/>\n"
					"  </sipserver>\n"
					"</pool>\n",
			GHA_LOAD_CONFIG, 3, "element <sipserver>");
	/* not a pool at all */
	expect_err(HEAD "<config/>\n", GHA_LOAD_CONFIG, 2, "element <config>");
}

static void test_semantic_errors_have_lines(void **state)
{
	(void)state;
	expect_err(HEAD "<pool>\n"
					"  <sipserver name=\"A\">\n"
					"    <primary uri=\"sip:10.1.1.1\"/>\n"
					"    <backup uri=\"sip:10.1.1.2\"/>\n"
					"  </sipserver>\n"
					"  <sipserver name=\"A\">\n"
					"    <primary uri=\"sip:10.1.2.1\"/>\n"
					"    <backup uri=\"sip:10.1.2.2\"/>\n"
					"  </sipserver>\n"
					"</pool>\n",
			GHA_LOAD_CONFIG, 7, "duplicate name 'A' (first at line 3)");
	expect_err(HEAD "<pool>\n"
					"  <sipserver name=\"A\">\n"
					"    <primary uri=\"sip:10.1.1.1\"/>\n"
					"    <backup uri=\"sip:no-such-host.invalid\"/>\n"
					"  </sipserver>\n"
					"</pool>\n",
			GHA_LOAD_RESOLVE, 5,
			"element <backup> of 'A': cannot resolve host "
			"'no-such-host.invalid'");
	expect_err(HEAD "<pool>\n"
					"  <sipserver name=\"A\">\n"
					"    <primary uri=\"sip:10.1.1.1:5060x\"/>\n"
					"    <backup uri=\"sip:10.1.1.2\"/>\n"
					"  </sipserver>\n"
					"</pool>\n",
			GHA_LOAD_CONFIG, 4, "element <primary> of 'A'");
}

static void test_doctype_refused(void **state)
{
	(void)state;
	expect_err(HEAD "<!DOCTYPE pool [\n"
					"  <!ENTITY x \"sip:10.1.1.1\">\n"
					"]>\n"
					"<pool>\n"
					"  <sipserver name=\"A\">\n"
					"    <primary uri=\"&x;\"/>\n"
					"    <backup uri=\"sip:10.1.1.2\"/>\n"
					"  </sipserver>\n"
					"</pool>\n",
			GHA_LOAD_CONFIG, 2, "DOCTYPE");
	/* an external entity is never fetched */
	expect_err(HEAD "<!DOCTYPE pool SYSTEM \"http://127.0.0.1:1/x.dtd\">\n"
					"<pool/>\n",
			GHA_LOAD_CONFIG, 2, "DOCTYPE");
}

static void test_missing_file_and_schema(void **state)
{
	gha_build_opts_t o;
	gha_pool_t *p = NULL;
	char err[512];
	(void)state;
	memset(&o, 0, sizeof(o));
	assert_int_equal(gha_xml_load("/nonexistent/pool.xml", XSD, NULL, 0, &o, &A,
							 &p, err, sizeof(err)),
			GHA_LOAD_CONFIG);
	assert_non_null(strstr(err, "/nonexistent/pool.xml: cannot read"));
	assert_int_equal(
			gha_xml_load(SAMPLE, NULL, "<bad", 4, &o, &A, &p, err, sizeof(err)),
			GHA_LOAD_CONFIG);
	assert_non_null(strstr(err, "is unusable"));
}

/* a FIFO or a directory given as the pool file: a clear error at once (a
 * FIFO used to block the reading process until a writer came) */
static void test_not_a_regular_file(void **state)
{
	gha_build_opts_t o;
	gha_pool_t *p = NULL;
	char err[512], fifo[64];
	(void)state;
	memset(&o, 0, sizeof(o));
	strcpy(fifo, "/tmp/gha_xml_fifo_XXXXXX");
	assert_non_null(mkdtemp(fifo));
	strcat(fifo, "/pool.xml");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	alarm(5); /* a blocking open fails the test instead of hanging it */
	assert_int_equal(
			gha_xml_load(fifo, XSD, NULL, 0, &o, &A, &p, err, sizeof(err)),
			GHA_LOAD_CONFIG);
	alarm(0);
	assert_null(p);
	if(strstr(err, "pool.xml: cannot read the pool file: it is a FIFO, not a "
				   "regular file")
			== NULL)
		fail_msg("unexpected error '%s'", err);
	unlink(fifo);
	*strrchr(fifo, '/') = '\0';
	assert_int_equal(
			gha_xml_load(fifo, XSD, NULL, 0, &o, &A, &p, err, sizeof(err)),
			GHA_LOAD_CONFIG);
	if(strstr(err, ": cannot read the pool file: it is a directory, not a "
				   "regular file")
			== NULL)
		fail_msg("unexpected error '%s'", err);
	rmdir(fifo);
}

/* the first error libxml2 reports, not the last (a consequence of it) */
static void test_first_xml_error(void **state)
{
	(void)state;
	expect_err(HEAD "<pool>\n"
					"  <sipserver name=\"A\" site=>\n"
					"    <primary uri=\"sip:10.1.1.1\"/>\n"
					"  </sipserver>\n"
					"</pool>\n",
			GHA_LOAD_CONFIG, 3, "AttValue: \" or ' expected");
	expect_err("", GHA_LOAD_CONFIG, 1, "the file is empty");
}

/* more than GHA_XML_FILE_MAX bytes (the count limit: test_element_limit) */
static void test_limits(void **state)
{
	gha_pool_t *p = NULL;
	char err[512] = "", *big;
	size_t n, i;
	(void)state;

	n = GHA_XML_FILE_MAX + 100;
	big = malloc(n + 32);
	assert_non_null(big);
	strcpy(big, HEAD "<pool>\n<!--");
	for(i = strlen(big); i < n - 10; i++)
		big[i] = 'x';
	strcpy(big + i, "-->\n</pool>\n");
	assert_int_equal(load(big, &p, err), GHA_LOAD_CONFIG);
	if(strstr(err, "more than the 67108864 a pool file may have") == NULL)
		fail_msg("unexpected error '%s'", err);
	free(big);
}

static gha_load_rc_t load_max(
		const char *text, int max, gha_pool_t **p, char *err)
{
	gha_build_opts_t o;
	gha_load_rc_t rc;

	memset(&o, 0, sizeof(o));
	o.now = 1;
	o.max_elements = max;
	write_file(text);
	rc = gha_xml_load(path, XSD, NULL, 0, &o, &A, p, err, 512);
	unlink(path);
	return rc;
}

#define SIX                                                      \
	HEAD "<pool version=\"1\">\n"                                \
		 "<proxies>\n"                                           \
		 "<proxy address=\"127.0.0.1:5060\"/>\n"                 \
		 "<proxy address=\"127.0.0.2:5060\"/>\n"                 \
		 "</proxies>\n"                                          \
		 "<sipserver name=\"A\"><primary uri=\"sip:10.0.0.1\"/>" \
		 "<backup uri=\"sip:10.0.0.2\"/></sipserver>\n"          \
		 "<sipserver name=\"B\"><primary uri=\"sip:10.0.0.3\"/>" \
		 "<backup uri=\"sip:10.0.0.4\"/></sipserver>\n"          \
		 "<sipserver name=\"C\"><primary uri=\"sip:10.0.0.5\"/>" \
		 "<backup uri=\"sip:10.0.0.6\"/></sipserver>\n"          \
		 "<featureserver name=\"F\" uri=\"sip:10.0.0.7\"/>\n"    \
		 "</pool>\n"

/* max_pool_elements: <sipserver>, <featureserver> and <proxy> together */
static void test_element_limit(void **state)
{
	gha_pool_t *p = NULL;
	char err[512] = "", prefix[256];
	(void)state;

	assert_int_equal(load_max(SIX, 6, &p, err), GHA_LOAD_OK);
	assert_int_equal(p->npairs + p->nfs + p->nproxies, 6);
	gha_pool_free(p, &A);
	p = NULL;
	assert_int_equal(load_max(SIX, 0, &p, err), GHA_LOAD_OK);
	gha_pool_free(p, &A);
	p = NULL;
	assert_int_equal(load_max(SIX, 5, &p, err), GHA_LOAD_CONFIG);
	assert_null(p);
	snprintf(prefix, sizeof(prefix),
			"%s:10: element <featureserver>: more than 5 <sipserver>, "
			"<featureserver> and <proxy> elements (max_pool_elements)",
			path);
	if(strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("error '%s' does not start with '%s'", err, prefix);
	assert_non_null(strstr(err, "max_pool_elements"));
	assert_int_equal(load_max(SIX, 1, &p, err), GHA_LOAD_CONFIG);
	snprintf(prefix, sizeof(prefix), "%s:5: element <proxy>", path);
	if(strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("error '%s' does not start with '%s'", err, prefix);
}

/* a large pool: lines beyond 65535 are still right in errors */
static void test_large_pool_lines(void **state)
{
	gha_pool_t *p = NULL;
	char err[512] = "", prefix[256];
	char *text, *w;
	int i, n = 20000;
	size_t cap = (size_t)n * 200 + 256;
	(void)state;

	text = malloc(cap);
	assert_non_null(text);
	w = text + sprintf(text, HEAD "<pool version=\"1\">\n");
	for(i = 0; i < n; i++)
		w += sprintf(w,
				"  <sipserver name=\"SIPS_%d\">\n"
				"    <primary uri=\"sip:10.5.%d.%d:5060\"/>\n"
				"    <backup uri=\"sip:10.5.%d.%d:%d\"/>\n"
				"  </sipserver>\n",
				i, i / 250, i % 250, i / 250, i % 250,
				i == n - 1 ? 5060 : 5070);
	sprintf(w, "</pool>\n");
	/* the last backup duplicates its own primary, at line 80001: libxml2
	 * keeps 16-bit lines in elements (XML_PARSE_BIG_LINES takes larger
	 * ones from the next text node: 80001 or 80002), never 65535 */
	assert_int_equal(load_max(text, 0, &p, err), GHA_LOAD_CONFIG);
	snprintf(prefix, sizeof(prefix), "%s:8000", path);
	if(strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("error '%s' does not start with '%s'", err, prefix);
	snprintf(prefix, sizeof(prefix),
			": element <backup> of 'SIPS_%d': "
			"10.5.79.249:5060 is already a member of 'SIPS_%d' (line 8000",
			n - 1, n - 1);
	if(strstr(err, prefix) == NULL)
		fail_msg("error '%s' does not contain '%s'", err, prefix);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_sample_file_loads),
			cmocka_unit_test(test_lines_and_elements),
			cmocka_unit_test(test_not_well_formed),
			cmocka_unit_test(test_schema_violation),
			cmocka_unit_test(test_semantic_errors_have_lines),
			cmocka_unit_test(test_doctype_refused),
			cmocka_unit_test(test_missing_file_and_schema),
			cmocka_unit_test(test_not_a_regular_file),
			cmocka_unit_test(test_first_xml_error),
			cmocka_unit_test(test_limits),
			cmocka_unit_test(test_element_limit),
			cmocka_unit_test(test_large_pool_lines),
	};
	int rc;
	xmlInitParser();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	xmlCleanupParser(); /* a test binary, not a kamailio worker */
	return rc;
}
