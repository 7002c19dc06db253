/*
 * genesys_ha module: the pool model (pure logic, no Kamailio runtime)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: pool model: URI parsing, validation, flattening
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdarg.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "common/kg_hash.h"
#include "gha_pool.h"
#include "gha_rrparam.h"

const char *gha_proto_name(int proto)
{
	switch(proto) {
		case GHA_PROTO_UDP:
			return "udp";
		case GHA_PROTO_TCP:
			return "tcp";
		case GHA_PROTO_TLS:
			return "tls";
		case GHA_PROTO_SCTP:
			return "sctp";
		default:
			return "any";
	}
}

static void seterr(char *err, int errlen, const char *fmt, ...)
{
	va_list ap;

	if(err == NULL || errlen <= 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, (size_t)errlen, fmt, ap);
	va_end(ap);
}

static int is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		   || (c >= '0' && c <= '9');
}

/* RFC 3261 hostname characters (and IPv4 digits/dots) */
static int is_hostchar(int c)
{
	return is_alnum(c) || c == '-' || c == '.';
}

/* user part: unreserved / escaped / user-unreserved */
static int is_userchar(int c)
{
	return is_alnum(c) || strchr("-_.!~*'()%&=+$,;?/", c) != NULL;
}

static int is_paramchar(int c)
{
	return is_alnum(c) || strchr("-_.!~*'()%[]/:&+$", c) != NULL;
}

static int parse_port(const char *s, int len, int *port)
{
	int i, v = 0;

	if(len < 1 || len > 5)
		return -1;
	for(i = 0; i < len; i++) {
		if(s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if(v < 1 || v > 65535)
		return -1;
	*port = v;
	return 0;
}

/* host (name, IPv4 or [IPv6]) at s; returns chars consumed or -1 */
static int parse_host(const char *s, int len, str *host, int *type)
{
	int i;
	char buf[64];
	unsigned char tmp[16];

	if(len <= 0)
		return -1;
	if(s[0] == '[') {
		for(i = 1; i < len && s[i] != ']'; i++)
			;
		if(i >= len || i - 1 <= 0 || i - 1 >= (int)sizeof(buf))
			return -1;
		memcpy(buf, s + 1, (size_t)(i - 1));
		buf[i - 1] = '\0';
		if(inet_pton(AF_INET6, buf, tmp) != 1)
			return -1;
		host->s = (char *)s + 1;
		host->len = i - 1;
		*type = 6;
		return i + 1;
	}
	for(i = 0; i < len && is_hostchar((unsigned char)s[i]); i++)
		;
	if(i == 0 || s[0] == '.' || s[0] == '-' || s[i - 1] == '-')
		return -1;
	host->s = (char *)s;
	host->len = i;
	*type = 0;
	if(i < (int)sizeof(buf)) {
		memcpy(buf, s, (size_t)i);
		buf[i] = '\0';
		if(inet_pton(AF_INET, buf, tmp) == 1)
			*type = 4;
	}
	return i;
}

int gha_uri_parse(const char *s, int len, gha_uri_t *u, char *err, int errlen)
{
	int i, n, at = -1;
	const char *p, *end, *pn, *pv;
	int pnl, pvl;

	memset(u, 0, sizeof(*u));
	if(s == NULL || len <= 0) {
		seterr(err, errlen, "empty URI");
		return -1;
	}
	end = s + len;
	if(len > 4 && strncasecmp(s, "sip:", 4) == 0) {
		p = s + 4;
	} else if(len > 5 && strncasecmp(s, "sips:", 5) == 0) {
		p = s + 5;
		u->secure = 1;
	} else {
		seterr(err, errlen, "URI '%.*s' does not start with sip: or sips:", len,
				s);
		return -1;
	}
	/* user part: up to the first '@' before any ';' of the host params */
	for(i = 0; p + i < end; i++) {
		if(p[i] == '@') {
			at = i;
			break;
		}
	}
	if(at >= 0) {
		for(i = 0; i < at; i++) {
			if(!is_userchar((unsigned char)p[i])) {
				seterr(err, errlen, "URI '%.*s': bad character in user part",
						len, s);
				return -1;
			}
		}
		if(at == 0) {
			seterr(err, errlen, "URI '%.*s': empty user part", len, s);
			return -1;
		}
		u->user.s = (char *)p;
		u->user.len = at;
		p += at + 1;
	}
	n = parse_host(p, (int)(end - p), &u->host, &u->host_type);
	if(n < 0) {
		seterr(err, errlen, "URI '%.*s': bad host", len, s);
		return -1;
	}
	p += n;
	if(p < end && *p == ':') {
		p++;
		for(i = 0; p + i < end && p[i] >= '0' && p[i] <= '9'; i++)
			;
		if(parse_port(p, i, &u->port) < 0) {
			seterr(err, errlen, "URI '%.*s': bad port", len, s);
			return -1;
		}
		p += i;
	}
	while(p < end) {
		if(*p != ';') {
			seterr(err, errlen, "URI '%.*s': unexpected '%c' after host", len,
					s, *p);
			return -1;
		}
		p++;
		pn = p;
		while(p < end && *p != '=' && *p != ';') {
			if(!is_paramchar((unsigned char)*p)) {
				seterr(err, errlen, "URI '%.*s': bad parameter", len, s);
				return -1;
			}
			p++;
		}
		pnl = (int)(p - pn);
		pv = NULL;
		pvl = 0;
		if(p < end && *p == '=') {
			p++;
			pv = p;
			while(p < end && *p != ';') {
				if(!is_paramchar((unsigned char)*p)) {
					seterr(err, errlen, "URI '%.*s': bad parameter", len, s);
					return -1;
				}
				p++;
			}
			pvl = (int)(p - pv);
		}
		if(pnl == 0) {
			seterr(err, errlen, "URI '%.*s': empty parameter", len, s);
			return -1;
		}
		if(pnl == 9 && strncasecmp(pn, "transport", 9) == 0) {
			if(pv == NULL) {
				seterr(err, errlen, "URI '%.*s': transport without value", len,
						s);
				return -1;
			}
			if(pvl == 3 && strncasecmp(pv, "udp", 3) == 0)
				u->proto = GHA_PROTO_UDP;
			else if(pvl == 3 && strncasecmp(pv, "tcp", 3) == 0)
				u->proto = GHA_PROTO_TCP;
			else if(pvl == 3 && strncasecmp(pv, "tls", 3) == 0)
				u->proto = GHA_PROTO_TLS;
			else if(pvl == 4 && strncasecmp(pv, "sctp", 4) == 0)
				u->proto = GHA_PROTO_SCTP;
			else {
				seterr(err, errlen,
						"URI '%.*s': transport '%.*s' is not udp, tcp, tls "
						"or sctp",
						len, s, pvl, pv);
				return -1;
			}
		}
	}
	return 0;
}

int gha_hostport_parse(
		const char *s, int len, str *host, int *port, char *err, int errlen)
{
	int n, type;

	n = parse_host(s, len, host, &type);
	if(n < 0 || n >= len || s[n] != ':'
			|| parse_port(s + n + 1, len - n - 1, port) < 0) {
		seterr(err, errlen, "'%.*s' is not host:port", len, s);
		return -1;
	}
	return 0;
}

int gha_resolve_default(const char *host, gha_addr_t *out, void *ctx)
{
	struct addrinfo hints, *res = NULL;
	int rc;

	(void)ctx;
	memset(out, 0, sizeof(*out));
	if(inet_pton(AF_INET, host, out->ip) == 1) {
		out->af = AF_INET;
		return 0;
	}
	if(inet_pton(AF_INET6, host, out->ip) == 1) {
		out->af = AF_INET6;
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if(rc != 0 || res == NULL)
		return -1;
	if(res->ai_family == AF_INET) {
		out->af = AF_INET;
		memcpy(out->ip, &((struct sockaddr_in *)res->ai_addr)->sin_addr, 4);
	} else if(res->ai_family == AF_INET6) {
		out->af = AF_INET6;
		memcpy(out->ip, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, 16);
	} else {
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return 0;
}

/* ---- draft ---- */

static void *grow(void *arr, int *cap, int n, size_t elsz)
{
	void *p;
	int nc;

	if(n < *cap)
		return arr;
	nc = *cap ? *cap * 2 : 8;
	p = realloc(arr, (size_t)nc * elsz);
	if(p == NULL)
		return NULL;
	memset((char *)p + (size_t)*cap * elsz, 0, (size_t)(nc - *cap) * elsz);
	*cap = nc;
	return p;
}

gha_draft_proxy_t *gha_draft_add_proxy(gha_draft_t *d)
{
	void *p = grow(d->proxies, &d->cproxies, d->nproxies, sizeof(*d->proxies));
	if(p == NULL)
		return NULL;
	d->proxies = p;
	return &d->proxies[d->nproxies++];
}

gha_draft_pair_t *gha_draft_add_pair(gha_draft_t *d)
{
	void *p = grow(d->pairs, &d->cpairs, d->npairs, sizeof(*d->pairs));
	if(p == NULL)
		return NULL;
	d->pairs = p;
	return &d->pairs[d->npairs++];
}

gha_draft_fs_t *gha_draft_add_fs(gha_draft_t *d)
{
	void *p = grow(d->fs, &d->cfs, d->nfs, sizeof(*d->fs));
	if(p == NULL)
		return NULL;
	d->fs = p;
	return &d->fs[d->nfs++];
}

void gha_draft_free(gha_draft_t *d)
{
	int i;

	for(i = 0; i < d->nproxies; i++) {
		free(d->proxies[i].address);
		free(d->proxies[i].site);
	}
	for(i = 0; i < d->npairs; i++) {
		free(d->pairs[i].name);
		free(d->pairs[i].site);
		free(d->pairs[i].uri[0]);
		free(d->pairs[i].uri[1]);
	}
	for(i = 0; i < d->nfs; i++) {
		free(d->fs[i].name);
		free(d->fs[i].site);
		free(d->fs[i].uri);
	}
	free(d->proxies);
	free(d->pairs);
	free(d->fs);
	free(d->file);
	memset(d, 0, sizeof(*d));
}

/* ---- hash tables ----
 *
 * Open addressing with linear probing in arrays of uint32_t: a slot holds
 * an index + 1, 0 is an empty slot; a table has at least twice as many
 * slots as entries (a power of two), so a probe sequence ends after a few
 * slots.  Used for the duplicate checks of the build (O(n) instead of
 * pairwise) and for the lookups of the snapshot (O(1) per request). */

static uint32_t hash_name(const char *s, int len)
{
	return kg_hash_mix(kg_fnv1a(KG_FNV_SEED, s, (size_t)len));
}

/* host text, case-insensitive, and port */
static uint32_t hash_host(const char *s, int len, int port)
{
	uint32_t h = KG_FNV_SEED;
	int i;

	for(i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		h ^= (c >= 'A' && c <= 'Z') ? c + 32 : c;
		h *= 16777619u;
	}
	return kg_hash_mix(h ^ (uint32_t)port);
}

static uint32_t hash_addr(const gha_addr_t *a)
{
	return kg_fnv1a(
			KG_FNV_SEED ^ (uint32_t)a->af, a->ip, a->af == AF_INET ? 4 : 16);
}

static uint32_t hash_addrport(const gha_addr_t *a, int port)
{
	return kg_hash_mix(hash_addr(a) ^ (uint32_t)port);
}

/* mask of a table for n entries: at least 2n slots, a power of two */
static uint32_t ht_mask(int n)
{
	uint32_t sz = 8;

	while(sz < 2u * (uint32_t)n)
		sz <<= 1;
	return sz - 1;
}

/* is entry a equal to entry b (indexes) */
typedef int (*ht_eq_f)(const void *ctx, uint32_t a, uint32_t b);

/* insert index id; with eq, an equal entry already there wins: returns
 * its index and does not insert; else -1 */
static int ht_insert(uint32_t *slot, uint32_t mask, uint32_t h, uint32_t id,
		ht_eq_f eq, const void *ctx)
{
	uint32_t i = h & mask;

	while(slot[i]) {
		if(eq && eq(ctx, slot[i] - 1, id))
			return (int)(slot[i] - 1);
		i = (i + 1) & mask;
	}
	slot[i] = id + 1;
	return -1;
}

/* a libc table for the checks of one build */
static uint32_t *ht_tmp(int n, uint32_t *mask)
{
	*mask = ht_mask(n);
	return calloc((size_t)*mask + 1, sizeof(uint32_t));
}

static int eq_proxy(const void *ctx, uint32_t a, uint32_t b)
{
	const gha_draft_t *d = ctx;
	return strcasecmp(d->proxies[a].address, d->proxies[b].address) == 0;
}

static int eq_pair(const void *ctx, uint32_t a, uint32_t b)
{
	const gha_draft_t *d = ctx;
	return strcmp(d->pairs[a].name, d->pairs[b].name) == 0;
}

static int eq_fs(const void *ctx, uint32_t a, uint32_t b)
{
	const gha_draft_t *d = ctx;
	return strcmp(d->fs[a].name, d->fs[b].name) == 0;
}

static int eq_site(const void *ctx, uint32_t a, uint32_t b)
{
	const gha_draft_t *d = ctx;
	const char *x = d->pairs[a].site ? d->pairs[a].site : "";
	const char *y = d->pairs[b].site ? d->pairs[b].site : "";
	return strcmp(x, y) == 0;
}

static uint32_t hash_lower(const char *s)
{
	return hash_host(s, (int)strlen(s), 0);
}

/* ---- build ---- */

/* a member as validated, before flattening */
typedef struct vmember
{
	const char *uri;
	char host[256];
	char ip[64];
	char dst[128];
	gha_addr_t addr;
	int port, proto, line;
} vmember_t;

static const char *nz(const char *s)
{
	return s ? s : "";
}

static gha_load_rc_t check_member(const gha_draft_t *d, const char *elem,
		const char *owner, const char *uri, int line, const gha_build_opts_t *o,
		vmember_t *vm, char *err, int errlen)
{
	gha_uri_t u;
	char why[256];
	gha_resolve_f res = o->resolve ? o->resolve : gha_resolve_default;
	const char *file = nz(d->file);

	memset(vm, 0, sizeof(*vm));
	vm->uri = uri;
	vm->line = line;
	if(uri == NULL
			|| gha_uri_parse(uri, (int)strlen(uri), &u, why, sizeof(why)) < 0) {
		seterr(err, errlen, "%s:%d: element <%s> of '%s': %s", file, line, elem,
				owner, uri ? why : "missing uri");
		return GHA_LOAD_CONFIG;
	}
	if(u.host.len >= (int)sizeof(vm->host)) {
		seterr(err, errlen, "%s:%d: element <%s> of '%s': host too long", file,
				line, elem, owner);
		return GHA_LOAD_CONFIG;
	}
	memcpy(vm->host, u.host.s, (size_t)u.host.len);
	vm->host[u.host.len] = '\0';
	vm->proto = u.proto ? u.proto : (u.secure ? GHA_PROTO_TLS : GHA_PROTO_UDP);
	if(u.secure && u.proto && u.proto != GHA_PROTO_TLS) {
		seterr(err, errlen,
				"%s:%d: element <%s> of '%s': sips: URI with transport=%s",
				file, line, elem, owner, gha_proto_name(u.proto));
		return GHA_LOAD_CONFIG;
	}
	vm->port = u.port ? u.port : (vm->proto == GHA_PROTO_TLS ? 5061 : 5060);
	if(res(vm->host, &vm->addr, o->resolve_ctx) < 0) {
		seterr(err, errlen,
				"%s:%d: element <%s> of '%s': cannot resolve host '%s'", file,
				line, elem, owner, vm->host);
		return GHA_LOAD_RESOLVE;
	}
	if(inet_ntop(vm->addr.af, vm->addr.ip, vm->ip, sizeof(vm->ip)) == NULL) {
		seterr(err, errlen, "%s:%d: element <%s> of '%s': bad address", file,
				line, elem, owner);
		return GHA_LOAD_RESOLVE;
	}
	if(vm->addr.af == AF_INET6)
		snprintf(vm->dst, sizeof(vm->dst), "sip:[%s]:%d", vm->ip, vm->port);
	else
		snprintf(vm->dst, sizeof(vm->dst), "sip:%s:%d", vm->ip, vm->port);
	if(u.proto || u.secure) {
		size_t l = strlen(vm->dst);
		snprintf(vm->dst + l, sizeof(vm->dst) - l, ";transport=%s",
				gha_proto_name(vm->proto));
	}
	return GHA_LOAD_OK;
}

static int same_addr(const gha_addr_t *a, const gha_addr_t *b)
{
	return a->af == b->af
		   && memcmp(a->ip, b->ip, a->af == AF_INET ? 4 : 16) == 0;
}

static int eq_vmember(const void *ctx, uint32_t a, uint32_t b)
{
	const vmember_t *v = ctx;
	return same_addr(&v[a].addr, &v[b].addr) && v[a].port == v[b].port;
}

static const gha_member_t *member_of(const gha_pool_t *p, uint32_t id)
{
	return &p->pairs[id >> 1].m[id & 1];
}

static int eq_member_addr(const void *ctx, uint32_t a, uint32_t b)
{
	const gha_pool_t *p = ctx;
	return same_addr(&member_of(p, a)->addr, &member_of(p, b)->addr);
}

static int streqi(const str *a, const char *s, int len)
{
	return a->len == len && strncasecmp(a->s, s, (size_t)len) == 0;
}

/* the lookup tables of a flattened snapshot (tables zeroed) */
static void build_tables(gha_pool_t *p)
{
	const gha_member_t *m;
	uint32_t i;

	for(i = 0; i < (uint32_t)p->npairs; i++)
		ht_insert(p->h_pair, p->hmask_pair,
				hash_name(p->pairs[i].name.s, p->pairs[i].name.len), i, NULL,
				NULL);
	for(i = 0; i < 2 * (uint32_t)p->npairs; i++) {
		m = member_of(p, i);
		/* address and port are unique (checked) */
		ht_insert(p->h_addrport, p->hmask_mem, hash_addrport(&m->addr, m->port),
				i, NULL, NULL);
		/* the first member at an address (in file order) */
		ht_insert(p->h_ip, p->hmask_mem, kg_hash_mix(hash_addr(&m->addr)), i,
				eq_member_addr, p);
		/* every member under its host and its ip text (lookups take the
		 * first match in file order) */
		ht_insert(p->h_host, p->hmask_host,
				hash_host(m->host.s, m->host.len, m->port), i, NULL, NULL);
		if(!streqi(&m->host, m->ip.s, m->ip.len))
			ht_insert(p->h_host, p->hmask_host,
					hash_host(m->ip.s, m->ip.len, m->port), i, NULL, NULL);
	}
}

/* string area writer for flattening */
typedef struct sarea
{
	char *p;
	char *end;
} sarea_t;

static void put(sarea_t *a, str *dst, const char *s)
{
	size_t l = s ? strlen(s) : 0;

	dst->s = a->p;
	dst->len = (int)l;
	if(l)
		memcpy(a->p, s, l);
	a->p[l] = '\0';
	a->p += l + 1;
}

static size_t slen(const char *s)
{
	return (s ? strlen(s) : 0) + 1;
}

static size_t member_strlen(const vmember_t *v)
{
	return slen(v->uri) + slen(v->host) + slen(v->dst) + slen(v->ip);
}

static void put_member(sarea_t *a, gha_member_t *m, const vmember_t *v)
{
	put(a, &m->uri, v->uri);
	put(a, &m->host, v->host);
	put(a, &m->dst, v->dst);
	put(a, &m->ip, v->ip);
	m->addr = v->addr;
	m->port = v->port;
	m->proto = v->proto;
	m->line = v->line;
	m->goos_id = -1;
}

/* what gha_pool_build works out before it allocates the snapshot: the
 * validated elements, in libc memory (build_release frees it) */
typedef struct build
{
	const gha_draft_t *d;
	const gha_build_opts_t *o;
	gha_resolve_f res;
	const char *file; /*!< for the messages, never NULL */
	char *err;
	int errlen;
	vmember_t *pm;	   /*!< pair members: 2 per pair, primary first */
	vmember_t *fm;	   /*!< feature servers */
	gha_addr_t *paddr; /*!< each <proxy>'s resolved address */
	uint32_t *ht, hm;  /*!< a scratch table for the duplicate checks */
	int *site_of;	   /*!< each pair's site (index) */
	int *site_first;   /*!< each site's first pair */
	int nsites;
	int own;	  /*!< own_address: index of the <proxy>, or -1 */
	int serving;  /*!< serving_sipserver: index of the pair, or -1 */
	size_t strsz; /*!< bytes of the strings the snapshot will hold */
} build_t;

static gha_load_rc_t build_nomem(build_t *b)
{
	seterr(b->err, b->errlen, "out of memory");
	return GHA_LOAD_NOMEM;
}

/* the scratch table, emptied for the next duplicate check */
static void ht_clear(build_t *b)
{
	memset(b->ht, 0, ((size_t)b->hm + 1) * sizeof(*b->ht));
}

/* the arrays of the validated elements, and the scratch table for the
 * duplicate checks (O(n) instead of pairwise) sized for its largest use,
 * the members, 2 per pair */
static gha_load_rc_t build_alloc(build_t *b)
{
	const gha_draft_t *d = b->d;
	int largest = 2 * d->npairs > d->nproxies + d->nfs ? 2 * d->npairs
													   : d->nproxies + d->nfs;

	b->pm = calloc((size_t)d->npairs * 2, sizeof(*b->pm));
	b->fm = calloc((size_t)(d->nfs + 1), sizeof(*b->fm));
	b->paddr = calloc((size_t)(d->nproxies + 1), sizeof(*b->paddr));
	b->ht = ht_tmp(largest, &b->hm);
	if(b->pm == NULL || b->fm == NULL || b->paddr == NULL || b->ht == NULL)
		return build_nomem(b);
	return GHA_LOAD_OK;
}

static void build_release(build_t *b)
{
	free(b->site_of);
	free(b->ht);
	free(b->pm);
	free(b->fm);
	free(b->paddr);
}

/* <proxy>: host:port, unique (case-insensitive), resolved */
static gha_load_rc_t check_proxies(build_t *b)
{
	const gha_draft_t *d = b->d;
	char hbuf[256];
	str h;
	int i, j, port;

	ht_clear(b);
	for(i = 0; i < d->nproxies; i++) {
		const gha_draft_proxy_t *x = &d->proxies[i];
		if(x->address == NULL
				|| gha_hostport_parse(x->address, (int)strlen(x->address), &h,
						   &port, hbuf, sizeof(hbuf))
						   < 0) {
			seterr(b->err, b->errlen, "%s:%d: element <proxy>: %s", b->file,
					x->line, x->address ? hbuf : "missing address");
			return GHA_LOAD_CONFIG;
		}
		j = ht_insert(
				b->ht, b->hm, hash_lower(x->address), (uint32_t)i, eq_proxy, d);
		if(j >= 0) {
			seterr(b->err, b->errlen,
					"%s:%d: element <proxy>: duplicate address '%s' (first "
					"at line %d)",
					b->file, x->line, x->address, d->proxies[j].line);
			return GHA_LOAD_CONFIG;
		}
		snprintf(hbuf, sizeof(hbuf), "%.*s", h.len, h.s);
		if(b->res(hbuf, &b->paddr[i], b->o->resolve_ctx) < 0) {
			seterr(b->err, b->errlen,
					"%s:%d: element <proxy>: cannot resolve host '%s'", b->file,
					x->line, hbuf);
			return GHA_LOAD_RESOLVE;
		}
		b->strsz += slen(x->address) + slen(hbuf) + slen(x->site);
	}
	return GHA_LOAD_OK;
}

/* <sipserver>: a name, unique; its primary and backup valid (check_member) */
static gha_load_rc_t check_pairs(build_t *b)
{
	const gha_draft_t *d = b->d;
	gha_load_rc_t rc;
	int i, j, k;

	ht_clear(b);
	for(i = 0; i < d->npairs; i++) {
		const gha_draft_pair_t *x = &d->pairs[i];
		if(x->name == NULL || x->name[0] == '\0'
				|| strlen(x->name) > GHA_NAME_MAX) {
			seterr(b->err, b->errlen,
					"%s:%d: element <sipserver>: missing or too long name",
					b->file, x->line);
			return GHA_LOAD_CONFIG;
		}
		j = ht_insert(b->ht, b->hm, hash_name(x->name, (int)strlen(x->name)),
				(uint32_t)i, eq_pair, d);
		if(j >= 0) {
			seterr(b->err, b->errlen,
					"%s:%d: element <sipserver>: duplicate name '%s' "
					"(first "
					"at line %d)",
					b->file, x->line, x->name, d->pairs[j].line);
			return GHA_LOAD_CONFIG;
		}
		for(k = 0; k < 2; k++) {
			rc = check_member(d, k == 0 ? "primary" : "backup", x->name,
					x->uri[k], x->uline[k] ? x->uline[k] : x->line, b->o,
					&b->pm[2 * i + k], b->err, b->errlen);
			if(rc != GHA_LOAD_OK)
				return rc;
			b->strsz += member_strlen(&b->pm[2 * i + k]);
		}
		/* name, site, and the name as a Record-Route parameter (each
		 * character escaped at most to %HH) */
		b->strsz += slen(x->name) + slen(x->site) + sizeof(";" GHA_RR_PAIR "=")
					+ 3 * strlen(x->name);
	}
	return GHA_LOAD_OK;
}

/* sites: the pairs of each, for ha_select_site(); site_of[pair] and
 * site_first[site], sites numbered in order of first appearance */
static gha_load_rc_t collect_sites(build_t *b)
{
	const gha_draft_t *d = b->d;
	int i, j;

	b->site_of = calloc((size_t)d->npairs * 2, sizeof(int));
	if(b->site_of == NULL)
		return build_nomem(b);
	b->site_first = b->site_of + d->npairs;
	ht_clear(b);
	for(i = 0; i < d->npairs; i++) {
		const char *st = d->pairs[i].site ? d->pairs[i].site : "";
		j = ht_insert(b->ht, b->hm, hash_name(st, (int)strlen(st)), (uint32_t)i,
				eq_site, d);
		if(j < 0) {
			b->site_first[b->nsites] = i;
			b->site_of[i] = b->nsites++;
		} else {
			b->site_of[i] = b->site_of[j];
		}
	}
	return GHA_LOAD_OK;
}

/* the same SIP Server in two places would make its state ambiguous */
static gha_load_rc_t check_members_unique(build_t *b)
{
	const gha_draft_t *d = b->d;
	const vmember_t *pm = b->pm;
	int i, j;

	ht_clear(b);
	for(i = 0; i < d->npairs * 2; i++) {
		j = ht_insert(b->ht, b->hm, hash_addrport(&pm[i].addr, pm[i].port),
				(uint32_t)i, eq_vmember, pm);
		if(j >= 0) {
			seterr(b->err, b->errlen,
					"%s:%d: element <%s> of '%s': %s:%d is already a "
					"member of '%s' (line %d)",
					b->file, pm[i].line, i % 2 ? "backup" : "primary",
					d->pairs[i / 2].name, pm[i].ip, pm[i].port,
					d->pairs[j / 2].name, pm[j].line);
			return GHA_LOAD_CONFIG;
		}
	}
	return GHA_LOAD_OK;
}

/* <featureserver>: a name, unique; its URI valid (check_member) */
static gha_load_rc_t check_fs(build_t *b)
{
	const gha_draft_t *d = b->d;
	gha_load_rc_t rc;
	int i, j;

	ht_clear(b);
	for(i = 0; i < d->nfs; i++) {
		const gha_draft_fs_t *x = &d->fs[i];
		if(x->name == NULL || x->name[0] == '\0'
				|| strlen(x->name) > GHA_NAME_MAX) {
			seterr(b->err, b->errlen,
					"%s:%d: element <featureserver>: missing or too long name",
					b->file, x->line);
			return GHA_LOAD_CONFIG;
		}
		j = ht_insert(b->ht, b->hm, hash_name(x->name, (int)strlen(x->name)),
				(uint32_t)i, eq_fs, d);
		if(j >= 0) {
			seterr(b->err, b->errlen,
					"%s:%d: element <featureserver>: duplicate name '%s' "
					"(first at line %d)",
					b->file, x->line, x->name, d->fs[j].line);
			return GHA_LOAD_CONFIG;
		}
		rc = check_member(d, "featureserver", x->name, x->uri, x->line, b->o,
				&b->fm[i], b->err, b->errlen);
		if(rc != GHA_LOAD_OK)
			return rc;
		b->strsz += member_strlen(&b->fm[i]) + slen(x->name) + slen(x->site);
	}
	return GHA_LOAD_OK;
}

/* serving_sipserver: a pair of the pool (the last of that name) */
static gha_load_rc_t find_serving(build_t *b)
{
	const gha_draft_t *d = b->d;
	int i;

	b->serving = -1;
	if(b->o->serving == NULL || b->o->serving[0] == '\0')
		return GHA_LOAD_OK;
	for(i = 0; i < d->npairs; i++)
		if(strcmp(d->pairs[i].name, b->o->serving) == 0)
			b->serving = i;
	if(b->serving < 0) {
		seterr(b->err, b->errlen,
				"%s: serving_sipserver '%s' is not a <sipserver> of the "
				"pool",
				b->file, b->o->serving);
		return GHA_LOAD_CONFIG;
	}
	return GHA_LOAD_OK;
}

/* own_address: the first <proxy> with its resolved address and port */
static gha_load_rc_t find_own(build_t *b)
{
	const gha_draft_t *d = b->d;
	const char *own_address = b->o->own_address;
	gha_addr_t oa;
	char hbuf[256];
	str h;
	int i, port;

	b->own = -1;
	if(own_address == NULL || own_address[0] == '\0')
		return GHA_LOAD_OK;
	if(gha_hostport_parse(own_address, (int)strlen(own_address), &h, &port,
			   hbuf, sizeof(hbuf))
			< 0) {
		seterr(b->err, b->errlen, "own_address: %s", hbuf);
		return GHA_LOAD_OWN_ADDR;
	}
	snprintf(hbuf, sizeof(hbuf), "%.*s", h.len, h.s);
	if(b->res(hbuf, &oa, b->o->resolve_ctx) < 0) {
		seterr(b->err, b->errlen, "own_address: cannot resolve host '%s'",
				hbuf);
		return GHA_LOAD_RESOLVE;
	}
	for(i = 0; i < d->nproxies && b->own < 0; i++) {
		str ph;
		int pp;
		char tmp[8];
		if(gha_hostport_parse(d->proxies[i].address,
				   (int)strlen(d->proxies[i].address), &ph, &pp, tmp, 1)
				< 0)
			continue;
		if(pp == port && same_addr(&b->paddr[i], &oa))
			b->own = i;
	}
	if(b->own < 0) {
		seterr(b->err, b->errlen,
				"%s: own_address %s is not a <proxy> of the pool (%d "
				"listed)",
				b->file, own_address, d->nproxies);
		return GHA_LOAD_OWN_ADDR;
	}
	return GHA_LOAD_OK;
}

/* the snapshot's one block, zeroed, its arrays and hash tables laid out
 * (strings area in *sa); NULL when the allocator fails */
static gha_pool_t *pool_layout(build_t *b, const gha_alloc_t *a, sarea_t *sa)
{
	const gha_draft_t *d = b->d;
	uint32_t hm_pair, hm_mem, hm_host, hm_site;
	size_t sz, tabsz;
	gha_pool_t *p;

	b->strsz += slen(d->file);
	hm_pair = ht_mask(d->npairs);
	hm_mem = ht_mask(2 * d->npairs);
	hm_host = ht_mask(4 * d->npairs); /* host and ip text of each member */
	hm_site = ht_mask(b->nsites);
	tabsz = ((size_t)hm_pair + 1 + 2 * ((size_t)hm_mem + 1) + (size_t)hm_host
					+ 1 + (size_t)hm_site + 1 + 2 * (size_t)d->npairs)
			* sizeof(uint32_t);
	sz = sizeof(gha_pool_t) + (size_t)d->nproxies * sizeof(gha_proxy_t)
		 + (size_t)d->npairs * sizeof(gha_pair_t)
		 + (size_t)d->nfs * sizeof(gha_fs_t)
		 + (size_t)b->nsites * sizeof(gha_site_t) + tabsz + b->strsz;
	p = a->alloc(sz, a->ctx);
	if(p == NULL) {
		seterr(b->err, b->errlen, "out of memory (%zu bytes for the pool)", sz);
		return NULL;
	}
	memset(p, 0, sz);
	p->size = sz;
	p->nproxies = d->nproxies;
	p->npairs = d->npairs;
	p->nfs = d->nfs;
	p->pairs = (gha_pair_t *)(p + 1);
	p->fs = (gha_fs_t *)(p->pairs + d->npairs);
	p->proxies = (gha_proxy_t *)(p->fs + d->nfs);
	p->nsites = b->nsites;
	p->sites = (gha_site_t *)(p->proxies + d->nproxies);
	p->hmask_pair = hm_pair;
	p->h_pair = (uint32_t *)(p->sites + b->nsites);
	p->hmask_mem = hm_mem;
	p->h_addrport = p->h_pair + hm_pair + 1;
	p->h_ip = p->h_addrport + hm_mem + 1;
	p->hmask_host = hm_host;
	p->h_host = p->h_ip + hm_mem + 1;
	p->hmask_site = hm_site;
	p->h_site = p->h_host + hm_host + 1;
	p->site_pairs = (int *)(p->h_site + hm_site + 1);
	p->all_pairs = p->site_pairs + d->npairs;
	sa->p = (char *)(p->all_pairs + d->npairs);
	sa->end = (char *)p + sz;
	return p;
}

/* the validated elements copied into the snapshot (strings into sa);
 * -1 when they overran the block (cannot happen: sizes computed above) */
static int pool_fill(const build_t *b, gha_pool_t *p, sarea_t *sa)
{
	const gha_draft_t *d = b->d;
	char hbuf[256];
	str h;
	int i, n;

	p->loaded_at = b->o->now;
	p->own_index = b->own;
	p->serving = b->serving;
	put(sa, &p->file, d->file);
	for(i = 0; i < d->nproxies; i++) {
		gha_proxy_t *x = &p->proxies[i];
		put(sa, &x->address, d->proxies[i].address);
		gha_hostport_parse(
				x->address.s, x->address.len, &h, &x->port, hbuf, sizeof(hbuf));
		snprintf(hbuf, sizeof(hbuf), "%.*s", h.len, h.s);
		put(sa, &x->host, hbuf);
		put(sa, &x->site, d->proxies[i].site);
		x->addr = b->paddr[i];
	}
	if(b->own >= 0)
		p->own_site = p->proxies[b->own].site;
	for(i = 0; i < d->npairs; i++) {
		gha_pair_t *x = &p->pairs[i];
		put(sa, &x->name, d->pairs[i].name);
		put(sa, &x->site, d->pairs[i].site);
		/* escaped once here, copied by every ha_record_route() */
		n = gha_rr_encode(&x->name, NULL, sa->p, (int)(sa->end - sa->p));
		x->rr.s = sa->p;
		x->rr.len = n > 0 ? n : 0;
		sa->p += x->rr.len;
		*sa->p++ = '\0';
		x->line = d->pairs[i].line;
		put_member(sa, &x->m[0], &b->pm[2 * i]);
		put_member(sa, &x->m[1], &b->pm[2 * i + 1]);
	}
	for(i = 0; i < d->nfs; i++) {
		gha_fs_t *x = &p->fs[i];
		put(sa, &x->name, d->fs[i].name);
		put(sa, &x->site, d->fs[i].site);
		put_member(sa, &x->m, &b->fm[i]);
	}
	return sa->p > sa->end ? -1 : 0;
}

/* the snapshot's sites: counts, first entries and the site table, then
 * the pairs of each site in file order (site_first is reused) */
static void pool_sites(build_t *b, gha_pool_t *p)
{
	int *site_pos = b->site_first; /* next free entry of each site */
	int i, n;

	for(i = 0; i < p->npairs; i++)
		p->sites[b->site_of[i]].n++;
	for(i = 0, n = 0; i < b->nsites; i++) {
		p->sites[i].name = p->pairs[b->site_first[i]].site;
		p->sites[i].first = n;
		n += p->sites[i].n;
		ht_insert(p->h_site, p->hmask_site,
				hash_name(p->sites[i].name.s, p->sites[i].name.len),
				(uint32_t)i, NULL, NULL);
	}
	for(i = 0; i < b->nsites; i++)
		site_pos[i] = p->sites[i].first;
	for(i = 0; i < p->npairs; i++) {
		p->site_pairs[site_pos[b->site_of[i]]++] = i;
		p->all_pairs[i] = i;
	}
}

/* validate every element (the first error found is the one reported, in
 * this order), then flatten into one block from the allocator */
gha_load_rc_t gha_pool_build(const gha_draft_t *d, const gha_build_opts_t *o,
		const gha_alloc_t *a, gha_pool_t **out, char *err, int errlen)
{
	build_t b;
	gha_load_rc_t rc;
	gha_pool_t *p;
	sarea_t sa;

	*out = NULL;
	memset(&b, 0, sizeof(b));
	b.d = d;
	b.o = o;
	b.res = o->resolve ? o->resolve : gha_resolve_default;
	b.file = nz(d->file);
	b.err = err;
	b.errlen = errlen;
	if(d->npairs == 0) {
		seterr(err, errlen, "%s: no <sipserver> element", b.file);
		return GHA_LOAD_CONFIG;
	}
	if((rc = build_alloc(&b)) != GHA_LOAD_OK
			|| (rc = check_proxies(&b)) != GHA_LOAD_OK
			|| (rc = check_pairs(&b)) != GHA_LOAD_OK
			|| (rc = collect_sites(&b)) != GHA_LOAD_OK
			|| (rc = check_members_unique(&b)) != GHA_LOAD_OK
			|| (rc = check_fs(&b)) != GHA_LOAD_OK
			|| (rc = find_serving(&b)) != GHA_LOAD_OK
			|| (rc = find_own(&b)) != GHA_LOAD_OK)
		goto done;
	if((p = pool_layout(&b, a, &sa)) == NULL) {
		rc = GHA_LOAD_NOMEM;
		goto done;
	}
	if(pool_fill(&b, p, &sa) < 0) {
		a->free(p, a->ctx);
		seterr(err, errlen, "internal error: pool size");
		rc = GHA_LOAD_NOMEM;
		goto done;
	}
	build_tables(p);
	pool_sites(&b, p);
	*out = p;
done:
	build_release(&b);
	return rc;
}

void gha_pool_free(gha_pool_t *p, const gha_alloc_t *a)
{
	if(p)
		a->free(p, a->ctx);
}

int gha_pool_find_pair(const gha_pool_t *p, const char *name, int len)
{
	const gha_pair_t *pr;
	uint32_t i;

	if(p->h_pair == NULL || len < 0)
		return -1;
	for(i = hash_name(name, len) & p->hmask_pair; p->h_pair[i];
			i = (i + 1) & p->hmask_pair) {
		pr = &p->pairs[p->h_pair[i] - 1];
		if(pr->name.len == len && memcmp(pr->name.s, name, (size_t)len) == 0)
			return (int)(p->h_pair[i] - 1);
	}
	return -1;
}

int gha_pool_find_member_addr(const gha_pool_t *p, const gha_addr_t *a,
		int port, int any_port, int *member)
{
	const gha_member_t *m;
	uint32_t i, id;

	if(p->h_addrport == NULL)
		return -1;
	for(i = hash_addrport(a, port) & p->hmask_mem; p->h_addrport[i];
			i = (i + 1) & p->hmask_mem) {
		id = p->h_addrport[i] - 1;
		m = member_of(p, id);
		if(m->port == port && same_addr(&m->addr, a)) {
			*member = (int)(id & 1);
			return (int)(id >> 1);
		}
	}
	if(!any_port)
		return -1;
	for(i = kg_hash_mix(hash_addr(a)) & p->hmask_mem; p->h_ip[i];
			i = (i + 1) & p->hmask_mem) {
		id = p->h_ip[i] - 1;
		if(same_addr(&member_of(p, id)->addr, a)) {
			*member = (int)(id & 1);
			return (int)(id >> 1);
		}
	}
	return -1;
}

/* first member (lowest id) under (host, port) whose port is port and,
 * with tls >= 0, whose transport is TLS (1) or not (0); best: id + 1 */
static void find_host(const gha_pool_t *p, const char *s, int len, int port,
		int tls, uint32_t *best)
{
	const gha_member_t *m;
	uint32_t i, id;

	for(i = hash_host(s, len, port) & p->hmask_host; p->h_host[i];
			i = (i + 1) & p->hmask_host) {
		id = p->h_host[i] - 1;
		if(*best && id + 1 >= *best)
			continue;
		m = member_of(p, id);
		if(m->port != port || (tls >= 0 && (m->proto == GHA_PROTO_TLS) != tls))
			continue;
		if(streqi(&m->host, s, len) || streqi(&m->ip, s, len))
			*best = id + 1;
	}
}

int gha_pool_find_member_host(
		const gha_pool_t *p, const str *host, int port, int *member)
{
	const char *s = host->s;
	int len = host->len;
	uint32_t best = 0;

	if(p->h_host == NULL || len <= 0)
		return -1;
	/* an IPv6 reference: the members' texts have no [] */
	if(len > 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
	}
	if(port) {
		find_host(p, s, len, port, -1, &best);
	} else {
		/* the member's default port: 5061 for TLS, 5060 else */
		find_host(p, s, len, 5060, 0, &best);
		find_host(p, s, len, 5061, 1, &best);
	}
	if(best == 0)
		return -1;
	*member = (int)((best - 1) & 1);
	return (int)((best - 1) >> 1);
}

int gha_pool_site_pairs(const gha_pool_t *p, const str *site, const int **idx)
{
	const gha_site_t *s;
	uint32_t i;

	if(site == NULL || site->len <= 0) {
		*idx = p->all_pairs;
		return p->npairs;
	}
	*idx = NULL;
	if(p->h_site == NULL)
		return 0;
	for(i = hash_name(site->s, site->len) & p->hmask_site; p->h_site[i];
			i = (i + 1) & p->hmask_site) {
		s = &p->sites[p->h_site[i] - 1];
		if(s->name.len == site->len
				&& memcmp(s->name.s, site->s, (size_t)site->len) == 0) {
			*idx = p->site_pairs + s->first;
			return s->n;
		}
	}
	return 0;
}

int gha_pool_find_fs_addr(const gha_pool_t *p, const gha_addr_t *a, int port)
{
	int i;

	for(i = 0; i < p->nfs; i++) {
		if(same_addr(&p->fs[i].m.addr, a) && p->fs[i].m.port == port)
			return i;
	}
	return -1;
}

int gha_pool_find_fs_src(const gha_pool_t *p, const gha_addr_t *a, int port)
{
	int i;

	for(i = 0; i < p->nfs; i++) {
		if(same_addr(&p->fs[i].m.addr, a)
				&& (port == 0 || p->fs[i].m.port == port))
			return i;
	}
	return -1;
}

int gha_pool_find_fs_host(const gha_pool_t *p, const str *host, int port)
{
	int i;

	for(i = 0; i < p->nfs; i++) {
		const gha_member_t *m = &p->fs[i].m;
		int mp = port ? port : (m->proto == GHA_PROTO_TLS ? 5061 : 5060);
		if(m->port != mp)
			continue;
		if((m->host.len == host->len
				   && strncasecmp(m->host.s, host->s, (size_t)host->len) == 0)
				|| (m->ip.len == host->len
						&& strncasecmp(m->ip.s, host->s, (size_t)host->len)
								   == 0))
			return i;
	}
	return -1;
}
