/* cmocka tests: genesys_tlssticky Contact rewrite plan (gts_plan.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "genesys_tlssticky/gts_plan.h"

/* the edits a plan made, applied to a copy of the message */
#define MAX_EDITS 16
typedef struct rec
{
	gts_edit_t e[MAX_EDITS];
	char text[MAX_EDITS][2048];
	int n;
	int fail_at; /* apply fails on this edit (-1: never) */
} rec_t;

static int record(const gts_edit_t *e, void *arg)
{
	rec_t *r = arg;
	if(r->n == r->fail_at)
		return -1;
	assert_true(r->n < MAX_EDITS);
	assert_true(e->tlen > 0 && e->tlen < sizeof(r->text[0]));
	r->e[r->n] = *e;
	memcpy(r->text[r->n], e->text, e->tlen);
	r->text[r->n][e->tlen] = '\0';
	r->e[r->n].text = r->text[r->n];
	r->n++;
	return 0;
}

static void rec_init(rec_t *r)
{
	memset(r, 0, sizeof(*r));
	r->fail_at = -1;
}

/* msg with every edit of r applied (edits do not overlap) */
static char *render(const char *msg, const rec_t *r)
{
	static char out[8192];
	size_t pos = 0, o = 0;
	int done[MAX_EDITS] = {0};
	int k, i, best;

	for(k = 0; k < r->n; k++) {
		best = -1;
		for(i = 0; i < r->n; i++)
			if(!done[i] && (best < 0 || r->e[i].off < r->e[best].off))
				best = i;
		done[best] = 1;
		assert_true(r->e[best].off >= pos);
		assert_true(r->e[best].off + r->e[best].len <= strlen(msg));
		memcpy(out + o, msg + pos, r->e[best].off - pos);
		o += r->e[best].off - pos;
		memcpy(out + o, r->e[best].text, r->e[best].tlen);
		o += r->e[best].tlen;
		pos = r->e[best].off + r->e[best].len;
	}
	strcpy(out + o, msg + pos);
	return out;
}

/* a Contact element of msg: elem is its text, display its display name
 * (NULL: none), uri and user as found in it */
static gts_pcontact_t pc_of(const char *msg, const char *elem,
		const char *display, const char *uri, const char *user)
{
	gts_pcontact_t c;
	const char *e = strstr(msg, elem), *x;

	assert_non_null(e);
	memset(&c, 0, sizeof(c));
	c.s = e;
	c.len = strlen(elem);
	c.off = (size_t)(e - msg);
	c.uri = strstr(e, uri);
	c.uri_len = strlen(uri);
	/* the parser's name: the display name, else runs into the URI */
	c.name_len = display ? strlen(display) : c.len;
	if(user) {
		c.user = strstr(c.uri, user);
		c.user_len = strlen(user);
	}
	x = strstr(c.uri + c.uri_len, "expires=");
	if(x && x < e + c.len) {
		c.has_exp = 1;
		c.exp = x + 8;
		c.exp_len = strcspn(c.exp, "; \r\n,"); /* the parser trims it */
	}
	return c;
}

static gts_phexp_t hexp_of(const char *msg)
{
	gts_phexp_t h;
	const char *x = strstr(msg, "\r\nExpires: ");
	memset(&h, 0, sizeof(h));
	h.val = -1;
	if(x) {
		x += 11;
		h.off = (size_t)(x - msg);
		h.len = strcspn(x, "\r");
		h.val = strtol(x, NULL, 10);
	}
	return h;
}

static gts_plan_cfg_t cfg(int cap)
{
	gts_plan_cfg_t c;
	c.hostport = "10.0.0.1:5060";
	c.hostport_len = 13;
	c.transport = "";
	c.tparam = "gts";
	c.tparam_len = 3;
	c.cap = cap;
	c.default_expires = 3600;
	return c;
}

static void test_contact_expires(void **state)
{
	static const struct
	{
		const char *v;
		long want;
	} t[] = {
			{"60", 60},
			{" 60 ", 60},
			{"+5", 5},
			{"0", 0},
			{"4294967295", 4294967295L},
			{"4294967296", -2},
			{"6O", -2},
			{"-1", -2},
			{"", -2},
			{"  ", -2},
	};
	gts_pcontact_t c;
	size_t i;
	(void)state;
	memset(&c, 0, sizeof(c));
	/* no parameter: the header's value (or -1) */
	assert_int_equal(gts_plan_contact_expires(&c, 120), 120);
	assert_int_equal(gts_plan_contact_expires(&c, -1), -1);
	c.has_exp = 1;
	for(i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		c.exp = t[i].v;
		c.exp_len = strlen(t[i].v);
		assert_int_equal(gts_plan_contact_expires(&c, 120), t[i].want);
	}
}

static void test_expires_capped(void **state)
{
	gts_pcontact_t c;
	gts_plan_cfg_t k = cfg(300);
	(void)state;
	memset(&c, 0, sizeof(c));
	/* REGISTER: the request, capped; nothing asked and no cap: none */
	assert_int_equal(gts_plan_register_expires(&c, 3600, &k), 300);
	assert_int_equal(gts_plan_register_expires(&c, 60, &k), 60);
	assert_int_equal(gts_plan_register_expires(&c, -1, &k), 300);
	k.cap = 0;
	assert_int_equal(gts_plan_register_expires(&c, -1, &k), -1);
	assert_int_equal(gts_plan_register_expires(&c, 0, &k), 0);
	/* 2xx: default_expires when it gives none or a bad one */
	assert_int_equal(gts_plan_reply_expires(&c, -1, &k), 3600);
	c.has_exp = 1;
	c.exp = "x";
	c.exp_len = 1;
	assert_int_equal(gts_plan_reply_expires(&c, 60, &k), 3600);
	k.cap = 300;
	assert_int_equal(gts_plan_reply_expires(&c, 60, &k), 300);
	c.exp = "0";
	assert_int_equal(gts_plan_reply_expires(&c, 60, &k), 0);
}

/* The plan cases below each spell out the whole message they expect after
 * the edits: alike in shape, but the expected text is what each one checks. */
static const char REG[] =
		"REGISTER sip:example.com SIP/2.0\r\n"
		"Contact: \"Agent 1\" <sip:1001@192.0.2.7:5061;transport=tls>"
		";expires=600;+sip.instance=\"<urn:uuid:1>\", "
		"<sip:1001@192.0.2.7:5062;transport=tls>;reg-id=1\r\n"
		"Expires: 3600\r\n"
		"\r\n";

/* the two Contact elements of REG; user2: the user found in the second */
static void reg_contacts(gts_pcontact_t cs[2], const char *user2)
{
	cs[0] = pc_of(REG,
			"\"Agent 1\" <sip:1001@192.0.2.7:5061;transport=tls>"
			";expires=600;+sip.instance=\"<urn:uuid:1>\"",
			"\"Agent 1\"", "sip:1001@192.0.2.7:5061;transport=tls", "1001");
	cs[1] = pc_of(REG, "<sip:1001@192.0.2.7:5062;transport=tls>;reg-id=1", NULL,
			"sip:1001@192.0.2.7:5062;transport=tls", user2);
}

static void test_register_rewrite(void **state)
{
	gts_pcontact_t cs[2];
	gts_plan_cfg_t k = cfg(300);
	gts_phexp_t h = hexp_of(REG);
	const char *tok[2] = {"TOKEN1", "TOKEN2"};
	long ex[2];
	rec_t r;
	(void)state;
	reg_contacts(cs, "1001");
	ex[0] = gts_plan_register_expires(&cs[0], h.val, &k);
	ex[1] = gts_plan_register_expires(&cs[1], h.val, &k);
	assert_int_equal(ex[0], 300);
	assert_int_equal(ex[1], 300);
	rec_init(&r);
	assert_int_equal(gts_plan_register(cs, 2, tok, ex, &h, &k, record, &r), 2);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.e[0].idx, 0);
	assert_int_equal(r.e[0].hdr, GTS_EDIT_CONTACT);
	assert_int_equal(r.e[2].idx, -1);
	assert_int_equal(r.e[2].hdr, GTS_EDIT_EXPIRES);
	assert_string_equal(render(REG, &r),
			"REGISTER sip:example.com SIP/2.0\r\n"
			"Contact: \"Agent 1\" <sip:1001@10.0.0.1:5060;gts=TOKEN1>"
			";+sip.instance=\"<urn:uuid:1>\";expires=300, "
			"<sip:1001@10.0.0.1:5060;gts=TOKEN2>;reg-id=1;expires=300\r\n"
			"Expires: 300\r\n"
			"\r\n");
}

static void test_register_no_cap_unknown_contact(void **state)
{
	gts_pcontact_t cs[2];
	gts_plan_cfg_t k = cfg(0);
	gts_phexp_t h = hexp_of(REG);
	const char *tok[2] = {NULL, "T2"};
	long ex[2];
	rec_t r;
	(void)state;
	reg_contacts(cs, NULL);
	ex[0] = gts_plan_register_expires(&cs[0], h.val, &k);
	ex[1] = gts_plan_register_expires(&cs[1], h.val, &k);
	assert_int_equal(ex[0], 600);
	assert_int_equal(ex[1], 3600);
	rec_init(&r);
	/* the first without a binding (de-registration of an unknown one):
	 * unchanged, not even capped; no cap: the Expires header stays */
	assert_int_equal(gts_plan_register(cs, 2, tok, ex, &h, &k, record, &r), 1);
	assert_string_equal(render(REG, &r),
			"REGISTER sip:example.com SIP/2.0\r\n"
			"Contact: \"Agent 1\" <sip:1001@192.0.2.7:5061;transport=tls>"
			";expires=600;+sip.instance=\"<urn:uuid:1>\", "
			"<sip:10.0.0.1:5060;gts=T2>;reg-id=1;expires=3600\r\n"
			"Expires: 3600\r\n"
			"\r\n");
	/* none rewritten */
	tok[1] = NULL;
	rec_init(&r);
	assert_int_equal(gts_plan_register(cs, 2, tok, ex, &h, &k, record, &r), 0);
	assert_int_equal(r.n, 0);
}

static const char OK[] =
		"SIP/2.0 200 OK\r\n"
		"Contact: <sip:1001@10.0.0.1:5060;gts=TOK>;expires=3600, "
		"<sip:2002@192.0.2.9:5060>;expires=7200 , "
		"<sip:3003@192.0.2.9:5060> \r\n"
		"Contact: <sip:4004@192.0.2.9:5060>;expires=bad;q=1\r\n"
		"\r\n";

static void test_reply_restore_and_cap(void **state)
{
	gts_pcontact_t cs[4];
	gts_plan_cfg_t k = cfg(300);
	gts_phexp_t h = hexp_of(OK);
	const char *uris[4] = {
			"sip:1001@192.0.2.7:5061;transport=tls", NULL, NULL, NULL};
	long ex[4] = {-1, -1, -1, -1};
	rec_t r;
	(void)state;
	cs[0] = pc_of(OK, "<sip:1001@10.0.0.1:5060;gts=TOK>;expires=3600", NULL,
			"sip:1001@10.0.0.1:5060;gts=TOK", "1001");
	cs[1] = pc_of(OK, "<sip:2002@192.0.2.9:5060>;expires=7200 ", NULL,
			"sip:2002@192.0.2.9:5060", "2002");
	cs[2] = pc_of(OK, "<sip:3003@192.0.2.9:5060> ", NULL,
			"sip:3003@192.0.2.9:5060", "3003");
	cs[3] = pc_of(OK, "<sip:4004@192.0.2.9:5060>;expires=bad;q=1", NULL,
			"sip:4004@192.0.2.9:5060", "4004");
	assert_int_equal(h.val, -1);
	ex[0] = gts_plan_reply_expires(&cs[0], h.val, &k);
	assert_int_equal(ex[0], 300);
	rec_init(&r);
	assert_int_equal(gts_plan_reply(cs, 4, uris, ex, &h, &k, record, &r), 0);
	/* ours first, then the caps in order */
	assert_int_equal(r.n, 3);
	assert_int_equal(r.e[0].idx, 0);
	assert_int_equal(r.e[1].idx, 1);
	assert_int_equal(r.e[2].idx, 2);
	assert_int_equal(r.e[2].len, 0); /* an insertion */
	assert_string_equal(render(OK, &r),
			"SIP/2.0 200 OK\r\n"
			"Contact: <sip:1001@192.0.2.7:5061;transport=tls>;expires=300, "
			"<sip:2002@192.0.2.9:5060>;expires=300 , "
			"<sip:3003@192.0.2.9:5060>;expires=300 \r\n"
			"Contact: <sip:4004@192.0.2.9:5060>;expires=bad;q=1\r\n"
			"\r\n");
}

static const char OK_HDR[] = "SIP/2.0 200 OK\r\n"
							 "Contact: <sip:3003@192.0.2.9:5060>, "
							 "<sip:2002@192.0.2.9:5060>;expires=200\r\n"
							 "Expires: 7200\r\n"
							 "\r\n";

static void test_caps_only(void **state)
{
	gts_pcontact_t cs[2];
	gts_plan_cfg_t k = cfg(300);
	gts_phexp_t h = hexp_of(OK_HDR);
	rec_t r;
	(void)state;
	cs[0] = pc_of(OK_HDR, "<sip:3003@192.0.2.9:5060>", NULL,
			"sip:3003@192.0.2.9:5060", "3003");
	cs[1] = pc_of(OK_HDR, "<sip:2002@192.0.2.9:5060>;expires=200", NULL,
			"sip:2002@192.0.2.9:5060", "2002");
	/* an Expires header: no ";expires" added, the header is capped */
	rec_init(&r);
	assert_int_equal(gts_plan_reply(cs, 2, NULL, NULL, &h, &k, record, &r), 0);
	assert_string_equal(render(OK_HDR, &r),
			"SIP/2.0 200 OK\r\n"
			"Contact: <sip:3003@192.0.2.9:5060>, "
			"<sip:2002@192.0.2.9:5060>;expires=200\r\n"
			"Expires: 300\r\n"
			"\r\n");
	/* no cap: nothing at all */
	k.cap = 0;
	rec_init(&r);
	assert_int_equal(gts_plan_reply(cs, 2, NULL, NULL, &h, &k, record, &r), 0);
	assert_int_equal(r.n, 0);
	/* no Contact: only the header */
	k.cap = 300;
	rec_init(&r);
	assert_int_equal(
			gts_plan_reply(NULL, 0, NULL, NULL, &h, &k, record, &r), 0);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.text[0], "300");
}

static void test_apply_failure_stops(void **state)
{
	gts_pcontact_t cs[2];
	gts_plan_cfg_t k = cfg(300);
	gts_phexp_t h = hexp_of(REG);
	const char *tok[2] = {"T1", "T2"};
	long ex[2] = {300, 300};
	rec_t r;
	(void)state;
	reg_contacts(cs, "1001");
	rec_init(&r);
	r.fail_at = 1;
	assert_int_equal(gts_plan_register(cs, 2, tok, ex, &h, &k, record, &r), -1);
	assert_int_equal(r.n, 1);
	rec_init(&r);
	r.fail_at = 2; /* the Expires header */
	assert_int_equal(gts_plan_register(cs, 2, tok, ex, &h, &k, record, &r), -1);
	/* a 2xx whose only edit, the Expires header's cap, fails */
	rec_init(&r);
	r.fail_at = 0;
	assert_int_equal(gts_plan_reply(cs, 2, NULL, NULL, &h, &k, record, &r), -1);
	assert_int_equal(r.n, 0);
}

static void test_too_long_refused(void **state)
{
	static char msg[8192];
	gts_pcontact_t c;
	gts_plan_cfg_t k = cfg(0);
	gts_phexp_t h;
	const char *tok[1] = {"T"};
	const char *uris[1] = {"sip:a@b"};
	long ex[1] = {-1};
	rec_t r;
	size_t n;
	(void)state;
	n = (size_t)snprintf(msg, sizeof(msg), "Contact: <sip:a@b>;x=");
	memset(msg + n, 'v', 4000);
	msg[n + 4000] = '\0';
	memset(&h, 0, sizeof(h));
	h.val = -1;
	memset(&c, 0, sizeof(c));
	c.s = msg + 9;
	c.len = strlen(c.s);
	c.off = 9;
	c.name_len = c.len;
	c.uri = msg + 10;
	c.uri_len = 7;
	rec_init(&r);
	assert_int_equal(gts_plan_register(&c, 1, tok, ex, &h, &k, record, &r), -1);
	assert_int_equal(gts_plan_reply(&c, 1, uris, ex, &h, &k, record, &r), -1);
	assert_int_equal(r.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_contact_expires),
			cmocka_unit_test(test_expires_capped),
			cmocka_unit_test(test_register_rewrite),
			cmocka_unit_test(test_register_no_cap_unknown_contact),
			cmocka_unit_test(test_reply_restore_and_cap),
			cmocka_unit_test(test_caps_only),
			cmocka_unit_test(test_apply_failure_stops),
			cmocka_unit_test(test_too_long_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
