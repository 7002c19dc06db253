/*
 * genesys_ha module: pool file loader (libxml2, XSD-validated)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: pool file loader
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlschemas.h>

#include "gha_xml.h"

/* first error reported by libxml2 */
typedef struct xerr
{
	int set;
	int line;
	char elem[64];
	char msg[256];
} xerr_t;

static void xerr_capture(void *ud, xmlErrorPtr e)
{
	xerr_t *x = ud;
	size_t l;

	if(x->set || e == NULL)
		return;
	x->set = 1;
	x->line = e->line;
	if(e->node && ((xmlNodePtr)e->node)->name) {
		xmlNodePtr n = (xmlNodePtr)e->node;
		snprintf(x->elem, sizeof(x->elem), "%s", (const char *)n->name);
		if(x->line <= 0)
			x->line = (int)xmlGetLineNo(n);
	}
	snprintf(x->msg, sizeof(x->msg), "%s", e->message ? e->message : "error");
	l = strlen(x->msg);
	while(l > 0 && (x->msg[l - 1] == '\n' || x->msg[l - 1] == ' '))
		x->msg[--l] = '\0';
}

static char *prop(xmlNodePtr n, const char *name)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
	char *s;

	if(v == NULL)
		return NULL;
	s = strdup((const char *)v);
	xmlFree(v);
	return s;
}

static int is(xmlNodePtr n, const char *name)
{
	return n->type == XML_ELEMENT_NODE
		   && strcmp((const char *)n->name, name) == 0;
}

/* libxml2 keeps no line for a DTD node: find it in the text */
static int doctype_line(const char *file)
{
	char buf[1024];
	int line = 0, found = 0;
	FILE *f = fopen(file, "r");

	if(f == NULL)
		return 0;
	while(!found && fgets(buf, sizeof(buf), f)) {
		line++;
		found = strstr(buf, "<!DOCTYPE") != NULL;
	}
	fclose(f);
	return found ? line : 0;
}

static gha_load_rc_t nomem(char *err, int errlen)
{
	snprintf(err, (size_t)errlen, "out of memory reading the pool file");
	return GHA_LOAD_NOMEM;
}

/* the first pool element beyond max (a <sipserver>, <featureserver> or
 * <proxy>), or NULL when there are at most max */
static xmlNodePtr beyond_max(xmlNodePtr root, int max)
{
	xmlNodePtr n, c;
	int count = 0;

	for(n = root ? root->children : NULL; n; n = n->next) {
		if(n->type != XML_ELEMENT_NODE)
			continue;
		if(is(n, "proxies")) {
			for(c = n->children; c; c = c->next)
				if(c->type == XML_ELEMENT_NODE && ++count > max)
					return c;
		} else if(++count > max) {
			return n;
		}
	}
	return NULL;
}

gha_load_rc_t gha_xml_read(const char *file, const char *xsd_path,
		const char *xsd_buf, int xsd_len, int max_elements, gha_draft_t *d,
		char *err, int errlen)
{
	xmlParserCtxtPtr pctx = NULL;
	xmlDocPtr doc = NULL;
	xmlSchemaParserCtxtPtr sp = NULL;
	xmlSchemaPtr schema = NULL;
	xmlSchemaValidCtxtPtr vc = NULL;
	xmlNodePtr root, n, c;
	xerr_t xe;
	gha_load_rc_t rc = GHA_LOAD_CONFIG;
	FILE *f;

	memset(d, 0, sizeof(*d));
	memset(&xe, 0, sizeof(xe));
	d->file = strdup(file ? file : "");
	if(d->file == NULL)
		return nomem(err, errlen);
	f = fopen(d->file, "r");
	if(f == NULL) {
		snprintf(err, (size_t)errlen, "%s: cannot read the pool file: %s",
				d->file, strerror(errno));
		return GHA_LOAD_CONFIG;
	}
	fclose(f);

	pctx = xmlNewParserCtxt();
	if(pctx == NULL)
		return nomem(err, errlen);
	/* no network, no DTD loading, no entity substitution, no stderr */
	doc = xmlCtxtReadFile(pctx, d->file, NULL,
			XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING
					| XML_PARSE_BIG_LINES);
	if(doc == NULL) {
		xmlErrorPtr e = xmlCtxtGetLastError(pctx);
		char msg[256];
		size_t l;
		snprintf(msg, sizeof(msg), "%s",
				e && e->message ? e->message : "cannot parse");
		l = strlen(msg);
		while(l > 0 && msg[l - 1] == '\n')
			msg[--l] = '\0';
		snprintf(err, (size_t)errlen, "%s:%d: not well-formed XML: %s", d->file,
				e ? e->line : 0, msg);
		goto done;
	}
	if(doc->intSubset || doc->extSubset) {
		snprintf(err, (size_t)errlen,
				"%s:%d: element <!DOCTYPE>: DOCTYPE and entity declarations "
				"are not allowed in the pool file",
				d->file, doctype_line(d->file));
		goto done;
	}
	/* a count limit before the schema validation and the build, whose
	 * time and memory grow with it */
	if(max_elements > 0
			&& (n = beyond_max(xmlDocGetRootElement(doc), max_elements))
					   != NULL) {
		snprintf(err, (size_t)errlen,
				"%s:%ld: element <%s>: more than %d <sipserver>, "
				"<featureserver> and <proxy> elements (max_pool_elements)",
				d->file, xmlGetLineNo(n), (const char *)n->name, max_elements);
		goto done;
	}
	/* schema */
	if(xsd_path)
		sp = xmlSchemaNewParserCtxt(xsd_path);
	else
		sp = xmlSchemaNewMemParserCtxt(xsd_buf, xsd_len);
	if(sp == NULL) {
		snprintf(err, (size_t)errlen, "cannot create the schema parser");
		goto done;
	}
	xmlSchemaSetParserStructuredErrors(sp, xerr_capture, &xe);
	schema = xmlSchemaParse(sp);
	if(schema == NULL) {
		snprintf(err, (size_t)errlen, "schema %s is unusable: line %d: %s",
				xsd_path ? xsd_path : "(built-in)", xe.line,
				xe.set ? xe.msg : "cannot parse");
		goto done;
	}
	vc = xmlSchemaNewValidCtxt(schema);
	if(vc == NULL) {
		snprintf(err, (size_t)errlen, "cannot create the schema validator");
		goto done;
	}
	xmlSchemaSetValidStructuredErrors(vc, xerr_capture, &xe);
	if(xmlSchemaValidateDoc(vc, doc) != 0) {
		snprintf(err, (size_t)errlen, "%s:%d: element <%s>: %s", d->file,
				xe.line, xe.elem[0] ? xe.elem : "?",
				xe.set ? xe.msg : "does not match the schema");
		goto done;
	}

	/* the schema guarantees the shape; copy what we need with lines */
	root = xmlDocGetRootElement(doc);
	for(n = root ? root->children : NULL; n; n = n->next) {
		if(is(n, "proxies")) {
			for(c = n->children; c; c = c->next) {
				gha_draft_proxy_t *x;
				if(!is(c, "proxy"))
					continue;
				if((x = gha_draft_add_proxy(d)) == NULL)
					goto oom;
				x->line = (int)xmlGetLineNo(c);
				x->address = prop(c, "address");
				x->site = prop(c, "site");
			}
		} else if(is(n, "sipserver")) {
			gha_draft_pair_t *x = gha_draft_add_pair(d);
			if(x == NULL)
				goto oom;
			x->line = (int)xmlGetLineNo(n);
			x->name = prop(n, "name");
			x->site = prop(n, "site");
			for(c = n->children; c; c = c->next) {
				int k = is(c, "primary") ? 0 : is(c, "backup") ? 1 : -1;
				if(k < 0)
					continue;
				free(x->uri[k]);
				x->uri[k] = prop(c, "uri");
				x->uline[k] = (int)xmlGetLineNo(c);
			}
		} else if(is(n, "featureserver")) {
			gha_draft_fs_t *x = gha_draft_add_fs(d);
			if(x == NULL)
				goto oom;
			x->line = (int)xmlGetLineNo(n);
			x->name = prop(n, "name");
			x->site = prop(n, "site");
			x->uri = prop(n, "uri");
		}
	}
	rc = GHA_LOAD_OK;
	goto done;
oom:
	rc = nomem(err, errlen);
done:
	if(vc)
		xmlSchemaFreeValidCtxt(vc);
	if(schema)
		xmlSchemaFree(schema);
	if(sp)
		xmlSchemaFreeParserCtxt(sp);
	if(doc)
		xmlFreeDoc(doc);
	if(pctx)
		xmlFreeParserCtxt(pctx);
	return rc;
}

gha_load_rc_t gha_xml_load(const char *file, const char *xsd_path,
		const char *xsd_buf, int xsd_len, const gha_build_opts_t *o,
		const gha_alloc_t *a, gha_pool_t **out, char *err, int errlen)
{
	gha_draft_t d;
	gha_load_rc_t rc;

	*out = NULL;
	rc = gha_xml_read(
			file, xsd_path, xsd_buf, xsd_len, o->max_elements, &d, err, errlen);
	if(rc == GHA_LOAD_OK)
		rc = gha_pool_build(&d, o, a, out, err, errlen);
	gha_draft_free(&d);
	return rc;
}
