/*
 * genesys_ha module: shared state (root, snapshots, loading, init)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: shared state (see gha_state.h): the root and its
 * lock, this process's snapshot reference, loading and publishing a pool
 * file, counters and module init; the changes of the runtime state are in
 * gha_runtime.c
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/dprint.h"
#include "core/mem/shm_mem.h"
#include "core/route.h"
#include "core/pt.h"

#include "gha_state.h"
#include "gha_events.h"
#include "gha_xml.h"
#include "gha_xsd.h"

gha_root_t *gha_root = NULL;
goos_api_t gha_goos;
gha_counters_t gha_cnt;

/* this process's reference on a snapshot; a forked child starts without
 * one (a reference taken before the fork belongs to the parent) */
static gha_pool_t *my_snap = NULL;
static unsigned int my_gen = 0;
static int my_proc = -1;

/* event routes, looked up once and run by gha_events.c.
 * Kamailio 5.6's cfg lexer drops "genesys_" from event_route[genesys_ha:x]
 * (it takes [a-zA-Z][0-9a-zA-Z-]* before the ':'), so the routes are named
 * genesys-ha:... (as genesys_oos does); the mangled names are refused */
static str evname_switchover = str_init("genesys-ha:switchover");
static str evname_down = str_init("genesys-ha:pair-down");
static str evname_up = str_init("genesys-ha:pair-up");
static str evname_peer_down = str_init("genesys-ha:peer-down");
static str evname_peer_up = str_init("genesys-ha:peer-up");

/* clang-format off */
static counter_def_t gha_cnt_defs[] = {
	{&gha_cnt.switchovers, "switchovers", 0, 0, 0,
		"SIP Server pair switchovers (all triggers)"},
	{&gha_cnt.pair_down, "pair_down", 0, 0, 0,
		"times a SIP Server pair went out of service (both members silent)"},
	{&gha_cnt.pair_up, "pair_up", 0, 0, 0,
		"times a SIP Server pair came back into service"},
	{&gha_cnt.new_dialogs, "new_dialogs", 0, 0, 0,
		"initial requests sent to an active member"},
	{&gha_cnt.rejected, "rejected", 0, 0, 0,
		"initial requests refused: pair out of service, inactive or unknown"},
	{&gha_cnt.in_dialog, "in_dialog", 0, 0, 0,
		"in-dialog requests sent to a pair's current active member"},
	{&gha_cnt.route_refused, "route_refused", 0, 0, 0,
		"in-dialog requests refused: unknown or malformed pair in Route, "
		"or neither from nor to the pool"},
	{&gha_cnt.failovers, "failovers", 0, 0, 0,
		"failure_route retries on the other member"},
	{&gha_cnt.grace, "grace", 0, 0, 0,
		"requests and retries sent in a pair's down grace (no member known "
		"alive)"},
	{&gha_cnt.backup_requests, "backup_requests", 0, 0, 0,
		"requests received from a pair's non-active member"},
	{&gha_cnt.reloads, "reloads", 0, 0, 0, "successful pool reloads"},
	{&gha_cnt.reload_errors, "reload_errors", 0, 0, 0,
		"pool reloads refused (the running pool was kept)"},
	{0, 0, 0, 0, 0, 0}
};
/* clang-format on */

static void *shm_alloc_cb(size_t size, void *ctx)
{
	(void)ctx;
	return shm_malloc(size);
}

static void shm_free_cb(void *p, void *ctx)
{
	(void)ctx;
	shm_free(p);
}

static const gha_alloc_t shm_allocator = {shm_alloc_cb, shm_free_cb, NULL};

static const char *event_name(int rc)
{
	switch(rc) {
		case GHA_LOAD_CONFIG:
			return "SPR_ERROR_READING_CONFIG_DATA";
		case GHA_LOAD_RESOLVE:
			return "SPR_HOST_NOT_RESOLVED";
		case GHA_LOAD_OWN_ADDR:
			return "SPR_OWN_PROXY_ADDR_NOT_FOUND";
		default:
			return "SPR_ERROR_READING_CONFIG_DATA";
	}
}

static void snap_put(gha_pool_t *p)
{
	if(p == NULL || __atomic_sub_fetch(&p->refcnt, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	/* the last reference: its slots are released (a slot the published
	 * snapshot shares stays) */
	lock_get(&gha_root->lock);
	gha_slots_detach(gha_root->slots, p);
	lock_release(&gha_root->lock);
	gha_pool_free(p, &shm_allocator);
}

gha_pool_t *gha_snap(void)
{
	unsigned int g;
	gha_pool_t *p;

	if(gha_root == NULL)
		return NULL;
	if(my_proc != process_no) {
		my_snap = NULL;
		my_gen = 0;
		my_proc = process_no;
	}
	g = __atomic_load_n(&gha_root->generation, __ATOMIC_ACQUIRE);
	if(g == my_gen)
		return my_snap;
	lock_get(&gha_root->lock);
	p = gha_root->cur;
	g = gha_root->generation;
	if(p)
		__atomic_add_fetch(&p->refcnt, 1, __ATOMIC_ACQ_REL);
	lock_release(&gha_root->lock);
	snap_put(my_snap);
	my_snap = p;
	my_gen = g;
	return p;
}

int gha_serving_index(const gha_pool_t *p)
{
	if(p == NULL)
		return -1;
	if(p->serving >= 0)
		return p->serving;
	return p->npairs == 1 ? 0 : -1;
}

void gha_own_site(const gha_pool_t *p, str *site)
{
	if(gha_geo_location.len > 0) {
		*site = gha_geo_location;
	} else if(p && p->own_site.len > 0) {
		*site = p->own_site;
	} else {
		site->s = NULL;
		site->len = 0;
	}
}

/* ---- loading and publishing ---- */

static int same_dst(const gha_member_t *a, const gha_member_t *b)
{
	return a->dst.len == b->dst.len
		   && memcmp(a->dst.s, b->dst.s, (size_t)a->dst.len) == 0;
}

/* members of a snapshot as one index: 2 * pair + member, then the feature
 * servers */
static gha_member_t *member_at(gha_pool_t *p, int idx)
{
	return idx < 2 * p->npairs ? &p->pairs[idx >> 1].m[idx & 1]
							   : &p->fs[idx - 2 * p->npairs].m;
}

static int nmembers(const gha_pool_t *p)
{
	return 2 * p->npairs + p->nfs;
}

/* release the genesys_oos targets of p, but those marked in skip */
static void release_ids(gha_pool_t *p, const unsigned char *skip)
{
	gha_member_t *m;
	int i;

	for(i = 0; i < nmembers(p); i++) {
		m = member_at(p, i);
		if(m->goos_id >= 0 && !(skip && skip[i])) {
			gha_goos.release_target(m->goos_id);
			m->goos_id = -1;
		}
	}
}

static int register_one(gha_member_t *m, char *msg, int msglen)
{
	char why[256];

	m->goos_id =
			gha_goos.register_target_err(&m->dst, NULL, why, (int)sizeof(why));
	if(m->goos_id < 0) {
		snprintf(msg, (size_t)msglen,
				"genesys_oos refused target %.*s (line %d): %s", m->dst.len,
				m->dst.s, m->line, why);
		return -1;
	}
	return 0;
}

/* the member of cur that p's member idx continues (same pair or feature
 * server name, same role, same destination), or -1 */
static int same_member(gha_pool_t *p, gha_pool_t *cur, int idx)
{
	int i, j;
	str *name;

	if(idx < 2 * p->npairs) {
		i = idx >> 1;
		name = &p->pairs[i].name;
		/* an unchanged file keeps the order: no lookup */
		if(i < cur->npairs && cur->pairs[i].name.len == name->len
				&& memcmp(cur->pairs[i].name.s, name->s, (size_t)name->len)
						   == 0)
			j = i;
		else
			j = gha_pool_find_pair(cur, name->s, name->len);
		if(j < 0 || !same_dst(&cur->pairs[j].m[idx & 1], member_at(p, idx)))
			return -1;
		return 2 * j + (idx & 1);
	}
	/* feature servers: few, matched at the same place only */
	i = idx - 2 * p->npairs;
	if(i >= cur->nfs || !same_dst(&cur->fs[i].m, &p->fs[i].m)
			|| cur->fs[i].name.len != p->fs[i].name.len
			|| memcmp(cur->fs[i].name.s, p->fs[i].name.s,
					   (size_t)p->fs[i].name.len)
					   != 0)
		return -1;
	return 2 * cur->npairs + i;
}

/* undo register_ids(): ids taken over from cur stay with cur, the others
 * are released */
static void drop_ids(gha_pool_t *p, gha_pool_t *cur, unsigned char *kept)
{
	int i, j, n = nmembers(p);

	for(i = 0; i < n; i++) {
		j = cur ? same_member(p, cur, i) : -1;
		if(j >= 0 && kept[j] && member_at(p, i)->goos_id >= 0) {
			member_at(p, i)->goos_id = -1;
			kept[j] = 0;
		}
	}
	release_ids(p, NULL);
}

/* genesys_oos targets for the members of p.  A member that continues one
 * of the running snapshot cur takes over cur's target (reference and id:
 * no call into genesys_oos, whose lookup of a target is not O(1)); kept[]
 * (one per member of cur) marks those, for release_ids(cur, kept) after
 * the swap.  Others are registered.  On error nothing is left
 * registered. */
static int register_ids(gha_pool_t *p, gha_pool_t *cur, unsigned char *kept,
		char *msg, int msglen)
{
	int i, j, n = nmembers(p);

	for(i = 0; i < n; i++) {
		j = cur ? same_member(p, cur, i) : -1;
		if(j >= 0 && !kept[j]) {
			member_at(p, i)->goos_id = member_at(cur, j)->goos_id;
			kept[j] = 1;
			continue;
		}
		if(register_one(member_at(p, i), msg, msglen) < 0)
			goto error;
	}
	return 0;
error:
	drop_ids(p, cur, kept);
	return -1;
}

/* build, register, publish; 0 ok or an event id (40003/40005/40000) */
static int load_and_publish(char *msg, int msglen)
{
	gha_build_opts_t o;
	gha_pool_t *np = NULL, *old, *cur;
	gha_load_rc_t rc;
	char own[256], serving[GHA_NAME_MAX + 1];
	int *ms = NULL, *fss = NULL, i, k, st;
	unsigned char *kept;
	size_t nkept;
	long now = (long)time(NULL);

	memset(&o, 0, sizeof(o));
	snprintf(own, sizeof(own), "%.*s", gha_own_address.len,
			gha_own_address.s ? gha_own_address.s : "");
	snprintf(serving, sizeof(serving), "%.*s", gha_serving.len,
			gha_serving.s ? gha_serving.s : "");
	o.own_address = own[0] ? own : NULL;
	o.serving = serving[0] ? serving : NULL;
	o.now = now;
	o.max_elements = gha_max_pool_elements;
	rc = gha_xml_load(gha_pool_file.s,
			gha_schema_file.len > 0 ? gha_schema_file.s : NULL, gha_xsd_text,
			(int)sizeof(gha_xsd_text) - 1, &o, &shm_allocator, &np, msg,
			msglen);
	if(rc != GHA_LOAD_OK)
		return rc == GHA_LOAD_NOMEM ? GHA_LOAD_CONFIG : (int)rc;
	/* the running snapshot: only reloads replace it, one at a time */
	lock_get(&gha_root->lock);
	cur = gha_root->cur;
	lock_release(&gha_root->lock);
	nkept = cur ? (size_t)nmembers(cur) : 0;
	ms = pkg_malloc(sizeof(int) * (size_t)(nmembers(np) + 1) + nkept);
	if(ms == NULL) {
		PKG_MEM_ERROR;
		gha_pool_free(np, &shm_allocator);
		snprintf(msg, (size_t)msglen, "out of pkg memory");
		return GHA_LOAD_CONFIG;
	}
	kept = (unsigned char *)(ms + nmembers(np) + 1);
	memset(kept, 0, nkept);
	if(register_ids(np, cur, kept, msg, msglen) < 0) {
		pkg_free(ms);
		gha_pool_free(np, &shm_allocator);
		return GHA_LOAD_CONFIG;
	}
	/* the probe states of the targets (read before taking our lock) */
	fss = ms + 2 * np->npairs;
	for(i = 0; i < np->npairs; i++)
		for(k = 0; k < 2; k++)
			ms[2 * i + k] = (int)gha_goos.get_state(np->pairs[i].m[k].goos_id);
	for(i = 0; i < np->nfs; i++)
		fss[i] = (int)gha_goos.get_state(np->fs[i].m.goos_id);
	np->refcnt = 1; /* the published reference */

	lock_get(&gha_root->lock);
	old = gha_root->cur;
	np->generation = gha_root->generation + 1;
	/* every pair to its state slot: the same pair keeps its slot */
	if(gha_slots_reserve(gha_root->slots, np->npairs + np->nfs, &shm_allocator)
					< 0
			|| gha_slots_attach(gha_root->slots, np, old, ms, fss, now) < 0) {
		lock_release(&gha_root->lock);
		drop_ids(np, cur, kept);
		pkg_free(ms);
		gha_pool_free(np, &shm_allocator);
		snprintf(msg, (size_t)msglen,
				"out of shared memory for the state "
				"of %d pairs and feature servers",
				np->npairs + np->nfs);
		return GHA_LOAD_CONFIG;
	}
	gha_root->cur = np;
	__atomic_store_n(&gha_root->generation, np->generation, __ATOMIC_RELEASE);
	lock_release(&gha_root->lock);

	if(old) {
		/* the targets np took over stay registered */
		release_ids(old, old == cur ? kept : NULL);
		snap_put(old);
	}
	/* a state change between reading the probe states and the swap went
	 * to a slot np does not use (a pair whose members changed, a new
	 * feature server): apply what genesys_oos says now */
	for(i = 0; i < np->npairs; i++)
		for(k = 0; k < 2; k++) {
			st = (int)gha_goos.get_state(np->pairs[i].m[k].goos_id);
			if(st != gha_mstate(&np->pairs[i], k))
				gha_member_state(np->pairs[i].m[k].goos_id, st);
		}
	for(i = 0; i < np->nfs; i++) {
		st = (int)gha_goos.get_state(np->fs[i].m.goos_id);
		if(st != gha_fs_state(&np->fs[i]))
			gha_member_state(np->fs[i].m.goos_id, st);
	}
	pkg_free(ms);
	snprintf(msg, (size_t)msglen,
			"pool %.*s loaded: %d SIP Server pairs, %d feature servers, "
			"%d proxies (generation %u)",
			np->file.len, np->file.s, np->npairs, np->nfs, np->nproxies,
			np->generation);
	return 0;
}

int gha_reload(char *msg, int msglen)
{
	int rc, zero = 0;

	if(gha_pool_file.len <= 0) {
		snprintf(msg, (size_t)msglen, "no pool_file configured");
		return GHA_LOAD_CONFIG;
	}
	if(!__atomic_compare_exchange_n(&gha_root->reloading, &zero, 1, 0,
			   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		snprintf(msg, (size_t)msglen, "another reload is running");
		return -1;
	}
	rc = load_and_publish(msg, msglen);
	if(rc == 0) {
		counter_inc(gha_cnt.reloads);
		LM_NOTICE("reload: %s\n", msg);
	} else {
		counter_inc(gha_cnt.reload_errors);
		LM_ERR("%d %s: %s; reload refused, the running pool is kept\n", rc,
				event_name(rc), msg);
	}
	__atomic_store_n(&gha_root->reloading, 0, __ATOMIC_RELEASE);
	return rc;
}

static int lookup_route(str *name)
{
	int rt = route_lookup(&event_rt, name->s);
	if(rt >= 0 && event_rt.rlist[rt] == NULL)
		rt = -1;
	return rt;
}

/* what the lexer makes of event_route[genesys_ha:...] */
static int mangled_route(str *name)
{
	char *mangled = name->s + sizeof("genesys-") - 1; /* "ha:..." */

	if(route_lookup(&event_rt, mangled) < 0)
		return 0;
	LM_ERR("event_route[genesys_%s] cannot work: Kamailio's config parser "
		   "does not allow '_' before ':' in event route names; name it "
		   "event_route[%.*s]\n",
			mangled, name->len, name->s);
	return 1;
}

/* the 40004 line, built at mod_init, logged after the listeners are up */
static char gha_init_msg[GHA_ERR_MAX + 256];

int gha_state_init(void)
{
	char msg[GHA_ERR_MAX + 128];
	int rc;

	if(counter_register_array("genesys_ha", gha_cnt_defs) < 0) {
		LM_ERR("cannot register the statistics\n");
		return -1;
	}
	gha_root = shm_malloc(sizeof(*gha_root));
	if(gha_root == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	memset(gha_root, 0, sizeof(*gha_root));
	gha_root->slots = shm_malloc(sizeof(gha_slots_t));
	if(gha_root->slots == NULL) {
		SHM_MEM_ERROR;
		shm_free(gha_root);
		gha_root = NULL;
		return -1;
	}
	gha_slots_init(gha_root->slots);
	if(lock_init(&gha_root->lock) == NULL) {
		LM_ERR("cannot initialize the lock\n");
		shm_free(gha_root->slots);
		shm_free(gha_root);
		gha_root = NULL;
		return -1;
	}
	gha_root->started = (long)time(NULL);
	if(mangled_route(&evname_switchover) || mangled_route(&evname_down)
			|| mangled_route(&evname_up) || mangled_route(&evname_peer_down)
			|| mangled_route(&evname_peer_up))
		return -1;
	gha_events_lookup_peers(
			lookup_route(&evname_peer_down), lookup_route(&evname_peer_up));
	gha_events_lookup(lookup_route(&evname_switchover),
			lookup_route(&evname_down), lookup_route(&evname_up));
	if(gha_events_init() < 0)
		return -1;
	if(gha_goos.subscribe(gha_goos_cb, NULL) < 0) {
		LM_ERR("cannot subscribe to genesys_oos state changes\n");
		return -1;
	}
	if(gha_goos.subscribe_results(gha_result_cb, NULL) < 0) {
		LM_ERR("cannot subscribe to genesys_oos probe results\n");
		return -1;
	}
	if(gha_pool_file.len <= 0) {
		LM_WARN("pool_file is not set: no SIP Server pairs, the ha_select "
				"functions return -3\n");
		return 0;
	}
	rc = load_and_publish(msg, sizeof(msg));
	if(rc != 0) {
		LM_ERR("%d %s: %s\n", rc, event_name(rc), msg);
		return -1;
	}
	{
		gha_pool_t *p = gha_root->cur;
		int si = gha_serving_index(p);
		str site;
		gha_own_site(p, &site);
		/* logged by gha_state_log_initialized() once the listeners are up */
		snprintf(gha_init_msg, sizeof(gha_init_msg),
				"40004 SPR_PROXY_INITIALIZED: %s; serving SIP Server "
				"'%.*s', site '%.*s'",
				msg, si >= 0 ? p->pairs[si].name.len : 6,
				si >= 0 ? p->pairs[si].name.s : "(none)", site.len,
				site.s ? site.s : "");
	}
	return 0;
}

void gha_state_log_initialized(void)
{
	if(gha_init_msg[0] != '\0')
		LM_NOTICE("%s\n", gha_init_msg);
}

void gha_state_destroy(void)
{
	if(gha_root == NULL)
		return;
	/* other processes are gone: free the published snapshot */
	if(gha_root->cur) {
		gha_pool_free(gha_root->cur, &shm_allocator);
		gha_root->cur = NULL;
	}
	gha_slots_destroy(gha_root->slots, &shm_allocator);
	shm_free(gha_root->slots);
	lock_destroy(&gha_root->lock);
	shm_free(gha_root);
	gha_root = NULL;
}
