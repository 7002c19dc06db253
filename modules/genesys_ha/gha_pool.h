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
 * \brief genesys_ha :: pool model: SIP URI parsing, draft -> validated
 * immutable snapshot (one allocation), lookups
 *
 * The XML loader (gha_xml.c) fills a gha_draft_t (libc memory, C strings,
 * line numbers); gha_pool_build() validates it (URIs, duplicates, serving
 * pair, host resolution, own address) and flattens it into one block
 * obtained from the injected allocator (shm in the module).  The runtime
 * state of the pairs and feature servers is not in the block: each refers
 * to a slot of the state table (gha_slots.h) that outlives snapshots.
 */

#ifndef _GHA_POOL_H_
#define _GHA_POOL_H_

#include <stddef.h>
#include <stdint.h>
#include "core/str.h"
#include "gha_pair.h"

#define GHA_NAME_MAX 64
#define GHA_ERR_MAX 512
/*! default of the max_pool_elements parameter */
#define GHA_MAX_POOL_ELEMENTS 100000

/*! transport of a member (values equal Kamailio's PROTO_*) */
enum gha_proto
{
	GHA_PROTO_NONE = 0,
	GHA_PROTO_UDP = 1,
	GHA_PROTO_TCP = 2,
	GHA_PROTO_TLS = 3,
	GHA_PROTO_SCTP = 4
};

/*! result classes of loading a pool: the seed's log event ids */
typedef enum gha_load_rc
{
	GHA_LOAD_OK = 0,
	GHA_LOAD_CONFIG = 40003,   /*!< SPR_ERROR_READING_CONFIG_DATA */
	GHA_LOAD_RESOLVE = 40005,  /*!< SPR_HOST_NOT_RESOLVED */
	GHA_LOAD_OWN_ADDR = 40000, /*!< SPR_OWN_PROXY_ADDR_NOT_FOUND */
	GHA_LOAD_NOMEM = -1
} gha_load_rc_t;

/*! a parsed sip:/sips: URI (pointers into the parsed text) */
typedef struct gha_uri
{
	int secure;	   /*!< sips: */
	str user;	   /*!< may be empty */
	str host;	   /*!< without [] for IPv6 */
	int host_type; /*!< 4, 6 or 0 (a name) */
	int port;	   /*!< 0 when absent */
	int proto;	   /*!< enum gha_proto, NONE when absent */
} gha_uri_t;

/*! parse "sip:[user@]host[:port][;params]" strictly; 0 ok, -1 with err */
int gha_uri_parse(const char *s, int len, gha_uri_t *u, char *err, int errlen);

/*! parse "host:port" (IPv6 in brackets); 0 ok, -1 with err */
int gha_hostport_parse(
		const char *s, int len, str *host, int *port, char *err, int errlen);

/*! a resolved address */
typedef struct gha_addr
{
	int af;				  /*!< AF_INET or AF_INET6 */
	unsigned char ip[16]; /*!< network order */
} gha_addr_t;

/*! host resolution (load time only); 0 ok, -1 not resolvable */
typedef int (*gha_resolve_f)(const char *host, gha_addr_t *out, void *ctx);

/*! the default resolver: literals, then getaddrinfo() */
int gha_resolve_default(const char *host, gha_addr_t *out, void *ctx);

/*! injected allocator for the snapshot block */
typedef struct gha_alloc
{
	void *(*alloc)(size_t size, void *ctx);
	void (*free)(void *p, void *ctx);
	void *ctx;
} gha_alloc_t;

/* ---- draft: what the file said, before validation (libc memory) ---- */

typedef struct gha_draft_proxy
{
	char *address;
	char *site;
	int line;
} gha_draft_proxy_t;

typedef struct gha_draft_pair
{
	char *name;
	char *site;
	char *uri[2]; /*!< primary, backup */
	int line;
	int uline[2];
} gha_draft_pair_t;

typedef struct gha_draft_fs
{
	char *name;
	char *site;
	char *uri;
	int line;
} gha_draft_fs_t;

typedef struct gha_draft
{
	char *file;
	gha_draft_proxy_t *proxies;
	int nproxies, cproxies;
	gha_draft_pair_t *pairs;
	int npairs, cpairs;
	gha_draft_fs_t *fs;
	int nfs, cfs;
} gha_draft_t;

gha_draft_proxy_t *gha_draft_add_proxy(gha_draft_t *d);
gha_draft_pair_t *gha_draft_add_pair(gha_draft_t *d);
gha_draft_fs_t *gha_draft_add_fs(gha_draft_t *d);
void gha_draft_free(gha_draft_t *d);

/* ---- snapshot: validated, flattened, immutable ---- */

struct gha_slot;

typedef struct gha_member
{
	str uri;  /*!< as configured */
	str host; /*!< as configured */
	str dst;  /*!< "sip:<ip>:<port>[;transport=x]": no DNS when used */
	str ip;	  /*!< resolved address, text */
	gha_addr_t addr;
	int port;  /*!< explicit or default (5060/5061) */
	int proto; /*!< enum gha_proto, UDP when absent */
	int line;
	int goos_id; /*!< genesys_oos target id, -1 before registration */
} gha_member_t;

typedef struct gha_pair
{
	str name;
	str site;
	str rr; /*!< ";gha=<name escaped>": ha_record_route()'s parameter */
	int line;
	gha_member_t m[2]; /*!< GHA_PRIMARY, GHA_BACKUP */
	/*! runtime state and counters, outside the snapshot (gha_slots.h);
	 * NULL until the glue attaches the snapshot */
	struct gha_slot *slot;
} gha_pair_t;

typedef struct gha_fs
{
	str name;
	str site;
	gha_member_t m;
	struct gha_slot *slot; /*!< its state (gha_slots.h), NULL until attached */
} gha_fs_t;

typedef struct gha_proxy
{
	str address; /*!< host:port as configured */
	str host;
	int port;
	str site;
	gha_addr_t addr;
} gha_proxy_t;

/*! the pairs of one site (site attribute of <sipserver>; empty: none) */
typedef struct gha_site
{
	str name;  /*!< the site of its pairs (in the block) */
	int first; /*!< its first entry in gha_pool_t.site_pairs */
	int n;	   /*!< its number of pairs */
} gha_site_t;

typedef struct gha_pool
{
	int refcnt;				 /*!< owned by the glue (atomic builtins) */
	unsigned int generation; /*!< set by the glue */
	long loaded_at;
	str file;
	str own_site;  /*!< site of own_address in the file, or empty */
	int own_index; /*!< index in proxies of own_address, or -1 */
	int serving;   /*!< index of the serving pair, or -1 */
	int nproxies, npairs, nfs;
	gha_proxy_t *proxies;
	gha_pair_t *pairs;
	gha_fs_t *fs;
	/* lookup tables (open addressing, linear probing, at most half full;
	 * a slot holds index + 1, 0 is empty), built with the snapshot: every
	 * per-request lookup is O(1) whatever the size of the pool */
	uint32_t hmask_pair; /*!< pair name -> pair index */
	uint32_t *h_pair;
	uint32_t hmask_mem;	  /*!< member id = 2 * pair index + member */
	uint32_t *h_addrport; /*!< resolved address and port -> member id */
	uint32_t *h_ip;		  /*!< resolved address -> first member at it */
	uint32_t hmask_host;
	uint32_t *h_host; /*!< configured host or ip text + port -> member id */
	int nsites;
	gha_site_t *sites;
	uint32_t hmask_site;
	uint32_t *h_site; /*!< site name -> site index */
	int *site_pairs;  /*!< pair indexes by site, file order in a site */
	int *all_pairs;	  /*!< 0 .. npairs - 1 */
	size_t size;	  /*!< bytes of the block */
} gha_pool_t;

/*! build options */
typedef struct gha_build_opts
{
	const char *own_address; /*!< "host:port" or NULL */
	const char *serving;	 /*!< serving_sipserver or NULL */
	gha_resolve_f resolve;	 /*!< NULL: gha_resolve_default */
	void *resolve_ctx;
	long now;
	int max_elements; /*!< gha_xml_load(): most <sipserver>,
						   <featureserver> and <proxy> elements together
						   (0: no limit) */
} gha_build_opts_t;

/*! validate + flatten; returns GHA_LOAD_OK and *out, or an event id with
 * "file:line: element: reason" in err */
gha_load_rc_t gha_pool_build(const gha_draft_t *d, const gha_build_opts_t *o,
		const gha_alloc_t *a, gha_pool_t **out, char *err, int errlen);

void gha_pool_free(gha_pool_t *p, const gha_alloc_t *a);

/* ---- lookups (no allocation, no locks: the snapshot is immutable; each
 * is a hash lookup, its cost does not depend on the size of the pool) ---- */

/*! pair index by name, or -1 */
int gha_pool_find_pair(const gha_pool_t *p, const char *name, int len);
/*! member whose resolved address (and port unless any_port) matches:
 * returns pair index and sets *member (0/1), or -1 */
int gha_pool_find_member_addr(const gha_pool_t *p, const gha_addr_t *a,
		int port, int any_port, int *member);
/*! member whose configured host or resolved ip equals host (case
 * insensitive; an IPv6 reference may keep its []) and whose port equals
 * port (0: the member's default port, 5061 for TLS, else 5060): pair index
 * and *member, or -1; the first such member in file order */
int gha_pool_find_member_host(
		const gha_pool_t *p, const str *host, int port, int *member);
/*! the pairs of a site: their count, and their indexes (file order) in
 * *idx; an empty or NULL site: all pairs; an unknown site: 0 */
int gha_pool_site_pairs(const gha_pool_t *p, const str *site, const int **idx);
/*! same for feature servers: index or -1 */
int gha_pool_find_fs_addr(const gha_pool_t *p, const gha_addr_t *a, int port);
/*! feature server sending from address a: port compared unless 0 (a
 * TCP/TLS peer sends from any port); index or -1 */
int gha_pool_find_fs_src(const gha_pool_t *p, const gha_addr_t *a, int port);
/*! feature server whose configured host or resolved ip equals host and
 * whose port equals port (0: default port): index or -1 */
int gha_pool_find_fs_host(const gha_pool_t *p, const str *host, int port);

/*! "udp", "tcp", ... */
const char *gha_proto_name(int proto);

#endif
