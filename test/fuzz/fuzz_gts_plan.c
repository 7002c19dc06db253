/* libFuzzer: genesys_tlssticky Contact rewrite plan (attacker-controlled:
 * the Contact elements and Expires of REGISTERs and 2xx replies).  The
 * input is one Contact element; the harness finds its URI and expires
 * parameter the way the parser would roughly, and checks that every edit
 * stays inside the message, edits do not overlap, and the texts are
 * bounded. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "genesys_tlssticky/gts_plan.h"

#define PFX "Contact: "

typedef struct chk
{
	size_t msglen;
	size_t end; /* end of the previous edit of the same kind */
	int n;
} chk_t;

static int check(const gts_edit_t *e, void *arg)
{
	chk_t *c = arg;
	if(e->off > c->msglen || e->len > c->msglen - e->off)
		__builtin_trap();
	if(e->tlen == 0 || e->tlen > 4096 || e->text == NULL)
		__builtin_trap();
	if(e->hdr == GTS_EDIT_CONTACT && (e->off < sizeof(PFX) - 1 || e->idx != 0))
		__builtin_trap();
	if(e->hdr == GTS_EDIT_EXPIRES && e->idx != -1)
		__builtin_trap();
	c->n++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char msg[sizeof(PFX) + 8192];
	gts_pcontact_t pc;
	gts_plan_cfg_t cfg;
	gts_phexp_t h;
	const char *tok[1] = {"TOKEN"};
	const char *uri[1] = {"sip:1001@192.0.2.7:5061;transport=tls"};
	long ex[1];
	const char *lt, *gt, *x;
	chk_t c;

	if(size < 2 || size > 8192)
		return 0;
	memcpy(msg, PFX, sizeof(PFX) - 1);
	memcpy(msg + sizeof(PFX) - 1, data + 1, size - 1);
	memset(&pc, 0, sizeof(pc));
	pc.s = msg + sizeof(PFX) - 1;
	pc.len = size - 1;
	pc.off = sizeof(PFX) - 1;
	lt = memchr(pc.s, '<', pc.len);
	gt = lt ? memchr(lt, '>', pc.len - (size_t)(lt - pc.s)) : NULL;
	pc.uri = lt && gt ? lt + 1 : pc.s;
	pc.uri_len = lt && gt ? (size_t)(gt - lt - 1) : pc.len;
	/* the parser's name: the display name, or up to the URI and beyond */
	pc.name_len = data[0] % 2 ? (size_t)(pc.uri - pc.s) : pc.len;
	x = memmem(pc.uri + pc.uri_len,
			pc.len - (size_t)(pc.uri + pc.uri_len - pc.s), "expires=", 8);
	if(x) {
		pc.has_exp = 1;
		pc.exp = x + 8;
		while(pc.exp + pc.exp_len < pc.s + pc.len && pc.exp[pc.exp_len] != ';'
				&& pc.exp[pc.exp_len] != ',')
			pc.exp_len++;
	}
	pc.user = pc.uri;
	pc.user_len = pc.uri_len > 4 ? 4 : pc.uri_len;

	memset(&h, 0, sizeof(h));
	h.val = (data[0] & 2) ? 7200 : -1;
	h.off = 0;
	h.len = 7;
	cfg.hostport = "10.0.0.1:5060";
	cfg.hostport_len = 13;
	cfg.transport = (data[0] & 4) ? "tls" : "";
	cfg.tparam = "gts";
	cfg.tparam_len = 3;
	cfg.cap = (data[0] & 8) ? 300 : 0;
	cfg.default_expires = 3600;

	/* the message's length past the element: edits must stay inside */
	memset(&c, 0, sizeof(c));
	c.msglen = sizeof(PFX) - 1 + size - 1;
	ex[0] = gts_plan_register_expires(&pc, h.val, &cfg);
	if(gts_plan_contact_expires(&pc, h.val) != -2)
		gts_plan_register(&pc, 1, tok, ex, &h, &cfg, check, &c);
	ex[0] = gts_plan_reply_expires(&pc, h.val, &cfg);
	if(ex[0] < 0)
		__builtin_trap();
	gts_plan_reply(&pc, 1, uri, ex, &h, &cfg, check, &c);
	gts_plan_reply(&pc, 1, NULL, NULL, &h, &cfg, check, &c);
	return 0;
}
