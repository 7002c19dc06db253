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
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

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
static int doctype_line(const char *buf, size_t len)
{
	size_t i;
	int line = 1;

	for(i = 0; i + 9 <= len; i++) {
		if(buf[i] == '\n')
			line++;
		else if(buf[i] == '<' && memcmp(buf + i, "<!DOCTYPE", 9) == 0)
			return line;
	}
	return 0;
}

static const char *file_kind(mode_t m)
{
	if(S_ISDIR(m))
		return "a directory";
	if(S_ISFIFO(m))
		return "a FIFO";
	if(S_ISSOCK(m))
		return "a socket";
	if(S_ISCHR(m) || S_ISBLK(m))
		return "a device";
	return "not a regular file";
}

/* the whole pool file in a malloc'ed buffer: a regular file of at most
 * GHA_XML_FILE_MAX bytes, opened without blocking (a FIFO would block the
 * reading process until a writer comes); GHA_LOAD_OK or an error in err */
static gha_load_rc_t read_pool_file(
		const char *file, char **out, size_t *outlen, char *err, int errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0, cap;
	ssize_t n;
	int fd;

	*out = NULL;
	*outlen = 0;
	fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if(fd < 0) {
		snprintf(err, (size_t)errlen, "%s: cannot read the pool file: %s", file,
				strerror(errno));
		return GHA_LOAD_CONFIG;
	}
	if(fstat(fd, &st) < 0) {
		snprintf(err, (size_t)errlen, "%s: cannot read the pool file: %s", file,
				strerror(errno));
		goto error;
	}
	if(!S_ISREG(st.st_mode)) {
		snprintf(err, (size_t)errlen,
				"%s: cannot read the pool file: it is %s, not a regular file",
				file, file_kind(st.st_mode));
		goto error;
	}
	if(st.st_size > GHA_XML_FILE_MAX) {
		snprintf(err, (size_t)errlen,
				"%s: the pool file has %lld bytes, more than the %d a pool "
				"file may have",
				file, (long long)st.st_size, GHA_XML_FILE_MAX);
		goto error;
	}
	/* one byte more than the file has: a file that grew meanwhile is
	 * caught below (read again, up to the limit) */
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	if(buf == NULL) {
		close(fd);
		snprintf(err, (size_t)errlen, "out of memory reading the pool file");
		return GHA_LOAD_NOMEM;
	}
	while(got <= (size_t)GHA_XML_FILE_MAX) {
		if(got == cap) {
			char *nb;
			if(cap > (size_t)GHA_XML_FILE_MAX)
				break;
			cap = cap * 2 > (size_t)GHA_XML_FILE_MAX + 1
						  ? (size_t)GHA_XML_FILE_MAX + 1
						  : cap * 2;
			nb = realloc(buf, cap);
			if(nb == NULL) {
				snprintf(err, (size_t)errlen,
						"out of memory reading the pool file");
				goto error;
			}
			buf = nb;
		}
		n = read(fd, buf + got, cap - got);
		if(n < 0 && errno == EINTR)
			continue;
		if(n < 0) {
			snprintf(err, (size_t)errlen, "%s: cannot read the pool file: %s",
					file, strerror(errno));
			goto error;
		}
		if(n == 0)
			break;
		got += (size_t)n;
	}
	if(got > (size_t)GHA_XML_FILE_MAX) {
		snprintf(err, (size_t)errlen,
				"%s: the pool file has more than the %d bytes a pool file may "
				"have",
				file, GHA_XML_FILE_MAX);
		goto error;
	}
	close(fd);
	*out = buf;
	*outlen = got;
	return GHA_LOAD_OK;
error:
	free(buf);
	close(fd);
	return GHA_LOAD_CONFIG;
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
	char *buf = NULL;
	size_t len = 0;

	memset(d, 0, sizeof(*d));
	memset(&xe, 0, sizeof(xe));
	d->file = strdup(file ? file : "");
	if(d->file == NULL)
		return nomem(err, errlen);
	rc = read_pool_file(d->file, &buf, &len, err, errlen);
	if(rc != GHA_LOAD_OK)
		return rc;
	rc = GHA_LOAD_CONFIG;
	if(len == 0) {
		snprintf(err, (size_t)errlen,
				"%s:1: not well-formed XML: the file is empty", d->file);
		goto done;
	}

	pctx = xmlNewParserCtxt();
	if(pctx == NULL) {
		rc = nomem(err, errlen);
		goto done;
	}
	/* no network, no DTD loading, no entity substitution, no stderr; the
	 * first error is the one to report (the last is often a consequence:
	 * "Couldn't find end of Start Tag" after the attribute that broke it) */
	xmlSetStructuredErrorFunc(&xe, xerr_capture);
	doc = xmlCtxtReadMemory(pctx, buf, (int)len, d->file, NULL,
			XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING
					| XML_PARSE_BIG_LINES);
	xmlSetStructuredErrorFunc(NULL, NULL);
	if(doc == NULL) {
		xmlErrorPtr e = xmlCtxtGetLastError(pctx);
		if(!xe.set && e != NULL) /* no structured error came: the last one */
			xerr_capture(&xe, e);
		snprintf(err, (size_t)errlen, "%s:%d: not well-formed XML: %s", d->file,
				xe.line, xe.set ? xe.msg : "cannot parse");
		len = strlen(err);
		while(len > 0 && err[len - 1] == '\n')
			err[--len] = '\0';
		goto done;
	}
	memset(&xe, 0, sizeof(xe));
	if(doc->intSubset || doc->extSubset) {
		snprintf(err, (size_t)errlen,
				"%s:%d: element <!DOCTYPE>: DOCTYPE and entity declarations "
				"are not allowed in the pool file",
				d->file, doctype_line(buf, len));
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
			gha_draft_pair_t *x;
			if((x = gha_draft_add_pair(d)) == NULL)
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
			gha_draft_fs_t *x;
			if((x = gha_draft_add_fs(d)) == NULL)
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
	free(buf);
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
