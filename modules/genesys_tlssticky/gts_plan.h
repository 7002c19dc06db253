/*
 * genesys_tlssticky: the Contact rewrite plan (pure C)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 *
 * Given the Contacts of a REGISTER or of the registrar's 2xx as the glue
 * parsed them (byte ranges in the message), the flow tokens or the phone's
 * own Contacts, the Expires header and registrar_default_timeout (the cap),
 * compute the edits: which bytes of the message to replace (or where to
 * insert) with what.  gts_sip.c parses the message, asks the binding table
 * and applies each edit as a lump; nothing here knows Kamailio.
 */

#ifndef GTS_PLAN_H
#define GTS_PLAN_H

#include <stddef.h>

/* one Contact element (contact_t) of the message */
typedef struct gts_pcontact
{
	const char *s;	 /* the element: [display] <uri> params (name.s) */
	size_t len;		 /* its length (contact_t len) */
	size_t off;		 /* offset of s in the message */
	size_t name_len; /* display name as parsed (name.len) */
	const char *uri; /* the URI, within s */
	size_t uri_len;
	const char *user; /* user part of the URI, NULL: none */
	size_t user_len;
	int has_exp;	 /* an expires parameter */
	const char *exp; /* its value as written (may be empty) */
	size_t exp_len;
} gts_pcontact_t;

/* the Expires header */
typedef struct gts_phexp
{
	long val;	/* its value; -1 absent, -2 not a number */
	size_t off; /* offset and length of the value in the message */
	size_t len;
} gts_phexp_t;

typedef struct gts_plan_cfg
{
	const char *hostport; /* of the rewritten Contact (contact_socket) */
	size_t hostport_len;
	const char *transport; /* "", "tcp" or "tls" */
	const char *tparam;	   /* the token's URI parameter name */
	size_t tparam_len;
	int cap;			 /* registrar_default_timeout, 0: none */
	int default_expires; /* when a 2xx gives none */
} gts_plan_cfg_t;

#define GTS_EDIT_CONTACT 0
#define GTS_EDIT_EXPIRES 1

/* replace len bytes at off by text (len 0: insert text before off) */
typedef struct gts_edit
{
	size_t off;
	size_t len;
	const char *text; /* valid during the apply call only */
	size_t tlen;
	int hdr; /* GTS_EDIT_*: the header the bytes belong to */
	int idx; /* the Contact's index; -1 for the Expires header */
} gts_edit_t;

/* applies one edit; < 0 stops the plan */
typedef int (*gts_apply_f)(const gts_edit_t *e, void *arg);

/* the expires a Contact asks for: its parameter, else the header's value
 * hdr (-1: none); -2 when the parameter is not a number */
long gts_plan_contact_expires(const gts_pcontact_t *c, long hdr);

/* the expires of a rewritten REGISTER Contact (capped; -1: none) */
long gts_plan_register_expires(
		const gts_pcontact_t *c, long hdr, const gts_plan_cfg_t *cfg);

/* the expires a 2xx grants a Contact (default_expires when it gives
 * none or a bad one; capped) */
long gts_plan_reply_expires(
		const gts_pcontact_t *c, long hdr, const gts_plan_cfg_t *cfg);

/* REGISTER over a sticky transport: Contact i becomes
 * [display ]<sip:user@hostport;transport=T;P=tokens[i]>params;expires=E
 * (E = expires[i], none when < 0; tokens[i] NULL: left unchanged), then
 * the Expires header is capped.  Returns the number of Contacts rewritten,
 * -1 when one does not fit or apply failed (the plan stops there). */
int gts_plan_register(const gts_pcontact_t *cs, int n,
		const char *const *tokens, const long *expires, const gts_phexp_t *h,
		const gts_plan_cfg_t *cfg, gts_apply_f apply, void *arg);

/* the registrar's 2xx: Contact i with restore[i] (the phone's own
 * Contact URI, NUL-terminated) becomes [display ]<restore[i]>params;
 * expires=expires[i]; then every other Contact is capped (an expires
 * parameter over the cap lowered to it; ";expires=<cap>" added when
 * neither it nor the Expires header has one), then the Expires header is
 * capped.  With restore NULL (or all NULL) only the caps: a REGISTER over
 * a transport that is not sticky.  Returns 0, or -1 as above. */
int gts_plan_reply(const gts_pcontact_t *cs, int n, const char *const *restore,
		const long *expires, const gts_phexp_t *h, const gts_plan_cfg_t *cfg,
		gts_apply_f apply, void *arg);

#endif
