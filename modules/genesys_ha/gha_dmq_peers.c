/*
 * genesys_ha module: the pool acts as one (Kamailio's dmq module)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: the pool's other proxies as seen over DMQ (see
 * gha_dmq_int.h)
 *
 * Owns the peer table in gha_droot: a peer is created when a message
 * from it arrives or when it is a <proxy> of the pool file, is up while it
 * is heard, down (40002, event peer-down) after dmq_peer_timeout ms of
 * silence, forgotten when it left the pool file.  Also: the set of live
 * proxies that distributed probing ranks, and the RPC genesys_ha.peers.
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/dprint.h"
#include "core/mem/pkg.h"

#include "gha_dmq_int.h"
#include "gha_rpc.h"
#include "gha_state.h"
#include "gha_events.h"

static const char *peer_state_names[] = {"unknown", "up", "down"};

/* the peer's record (gha_droot->lock held); created when the table has
 * room */
static gha_dmq_peer_t *peer_get(const char *addr)
{
	int i;

	for(i = 0; i < gha_droot->npeers; i++)
		if(strcmp(gha_droot->peer[i].addr, addr) == 0)
			return &gha_droot->peer[i];
	if(gha_droot->npeers >= GHA_DMQ_PEERS)
		return NULL;
	i = gha_droot->npeers++;
	memset(&gha_droot->peer[i], 0, sizeof(gha_droot->peer[i]));
	snprintf(gha_droot->peer[i].addr, sizeof(gha_droot->peer[i].addr), "%s",
			addr);
	gha_droot->peer[i].since = (long)time(NULL);
	return &gha_droot->peer[i];
}

/* a message from peer 'addr' arrived */
void gha_dmq_peer_seen(const char *addr, const char *epochs)
{
	gha_dmq_peer_t *pe;
	int was = -1;

	lock_get(&gha_droot->lock);
	if((pe = peer_get(addr)) != NULL) {
		was = pe->state;
		pe->last_ms = gha_now_ms();
		pe->last_wall = (long)time(NULL);
		pe->n_rx++;
		if(epochs)
			snprintf(pe->epochs, sizeof(pe->epochs), "%s", epochs);
		if(pe->state != GHA_PEER_UP) {
			pe->state = GHA_PEER_UP;
			pe->since = pe->last_wall;
			pe->up_ms = pe->last_ms;
		}
	}
	lock_release(&gha_droot->lock);
	if(was == GHA_PEER_DOWN)
		LM_NOTICE("proxy %s of the pool answers DMQ again\n", addr);
	else if(was == GHA_PEER_UNKNOWN)
		LM_INFO("proxy %s of the pool is up (DMQ)\n", addr);
	if(was == GHA_PEER_DOWN || was == GHA_PEER_UNKNOWN)
		gha_events_push_peer(GHA_EV_PEER_UP, addr);
}

/* the live proxies: this one first, then every peer up (and `extra`, the
 * sender of a message, when given and not there); their count */
int gha_dmq_live_set(char (*addr)[GHA_SYNC_ORIGIN_MAX + 1], const char **live,
		int max, const char *extra)
{
	int i, n = 0, have = 0;

	snprintf(addr[n], sizeof(addr[n]), "%s", gha_dmq_self);
	live[n] = addr[n];
	n++;
	lock_get(&gha_droot->lock);
	for(i = 0; i < gha_droot->npeers && n < max; i++) {
		if(gha_droot->peer[i].state != GHA_PEER_UP)
			continue;
		if(extra && strcmp(gha_droot->peer[i].addr, extra) == 0)
			have = 1;
		memcpy(addr[n], gha_droot->peer[i].addr, sizeof(addr[n]));
		live[n] = addr[n];
		n++;
	}
	lock_release(&gha_droot->lock);
	if(extra && !have && n < max && strcmp(extra, gha_dmq_self) != 0) {
		snprintf(addr[n], sizeof(addr[n]), "%s", extra);
		live[n] = addr[n];
		n++;
	}
	return n;
}

/* a peer heard continuously for dmq_peer_timeout ms: its probe states
 * are fresh (a proxy back from a freeze or a partition first sends what
 * it knew before; its own probes correct that within its next period) */
int gha_dmq_peer_settled(const char *addr)
{
	gha_dmq_peer_t *pe;
	int ok = 0;
	long now = gha_now_ms();

	lock_get(&gha_droot->lock);
	for(pe = gha_droot->peer; pe < gha_droot->peer + gha_droot->npeers; pe++)
		if(strcmp(pe->addr, addr) == 0) {
			ok = pe->state == GHA_PEER_UP && pe->up_ms > 0
				 && now - pe->up_ms >= gha_dmq_peer_timeout;
			break;
		}
	lock_release(&gha_droot->lock);
	return ok;
}

static int in_pool_file(gha_pool_t *p, const char *addr)
{
	int i, n = (int)strlen(addr);

	if(p == NULL)
		return 1;
	for(i = 0; i < p->nproxies; i++)
		if(p->proxies[i].address.len == n
				&& memcmp(p->proxies[i].address.s, addr, (size_t)n) == 0)
			return 1;
	return 0;
}

void gha_dmq_check_peers(gha_pool_t *p, long now_ms)
{
	char down[GHA_DMQ_PEERS][GHA_SYNC_ORIGIN_MAX + 1];
	long silent[GHA_DMQ_PEERS];
	gha_dmq_peer_t *pe;
	int i, nd = 0;

	lock_get(&gha_droot->lock);
	/* every proxy of the pool file is a peer (never seen: unknown) */
	for(i = 0; p && i < p->nproxies; i++) {
		char a[GHA_SYNC_ORIGIN_MAX + 1];
		snprintf(a, sizeof(a), "%.*s", p->proxies[i].address.len,
				p->proxies[i].address.s);
		if(i != p->own_index && strcmp(a, gha_dmq_self) != 0)
			peer_get(a);
	}
	for(i = 0; i < gha_droot->npeers; i++) {
		pe = &gha_droot->peer[i];
		if(now_ms - pe->last_ms > gha_dmq_peer_timeout
				&& !in_pool_file(p, pe->addr)) {
			/* removed from the pool file (reload): forgotten, no 40002 */
			gha_droot->peer[i] = gha_droot->peer[--gha_droot->npeers];
			i--;
			continue;
		}
		if(pe->state == GHA_PEER_UP
				&& now_ms - pe->last_ms > gha_dmq_peer_timeout) {
			pe->state = GHA_PEER_DOWN;
			pe->since = (long)time(NULL);
			memcpy(down[nd], pe->addr, sizeof(down[nd]));
			silent[nd++] = now_ms - pe->last_ms;
		}
	}
	lock_release(&gha_droot->lock);
	for(i = 0; i < nd; i++) {
		counter_inc(gha_dcnt.peer_down);
		LM_ERR("40002 SPR_OTHER_PROXY_INSTANCE_DISCONNECTED: proxy %s of the "
			   "pool does not answer DMQ (silent for %ld ms); decisions go on "
			   "without it and it gets the pool's state when it is back\n",
				down[i], silent[i]);
		gha_events_push_peer(GHA_EV_PEER_DOWN, down[i]);
	}
}

/* ---- genesys_ha.peers ---- */

const char *gha_dmq_rpc_peers_doc[] = {
		"Show the pool's other proxies as seen over DMQ: state, last "
		"contact, the epoch each has for each pair; this proxy's epochs",
		0};

void gha_dmq_rpc_peers(rpc_t *rpc, void *ctx)
{
	gha_dmq_peer_t *copy;
	gha_pool_t *p = gha_snap();
	void *th, *arr, *h;
	char ts[32], ts2[32], own[GHA_DMQ_EPOCHS_MAX],
			from[GHA_SYNC_ORIGIN_MAX + 1];
	long now = gha_now_ms(), after;
	int i, n, k, synced;

	if(rpc->add(ctx, "{", &th) < 0)
		return;
	if(!gha_dmq_on()) {
		rpc->struct_add(th, "s", "dmq", "off");
		return;
	}
	copy = pkg_malloc(sizeof(gha_dmq_peer_t) * GHA_DMQ_PEERS);
	if(copy == NULL) {
		PKG_MEM_ERROR;
		rpc->fault(ctx, 500, "out of memory");
		return;
	}
	lock_get(&gha_droot->lock);
	n = gha_droot->npeers;
	memcpy(copy, gha_droot->peer, sizeof(gha_dmq_peer_t) * (size_t)n);
	after = gha_droot->synced_after_ms;
	memcpy(from, gha_droot->synced_from, sizeof(from));
	lock_release(&gha_droot->lock);
	synced = __atomic_load_n(&gha_droot->synced, __ATOMIC_ACQUIRE);
	own[0] = '\0';
	for(i = 0, k = 0; p && i < p->npairs && k < (int)sizeof(own) - 1; i++) {
		int w;
		lock_get(&gha_root->lock);
		w = snprintf(own + k, sizeof(own) - (size_t)k, "%s%.*s=%lu/%s",
				k ? " " : "", p->pairs[i].name.len, p->pairs[i].name.s,
				p->pairs[i].slot->dmq_epoch,
				gha_role_name(p->pairs[i].slot->st.active));
		lock_release(&gha_root->lock);
		k = (w > 0 && k + w < (int)sizeof(own)) ? k + w : (int)sizeof(own) - 1;
	}
	rpc->struct_add(th, "d", "probing", gha_dmq_probing);
	rpc->struct_add(th, "ssssd", "dmq", "on", "self", gha_dmq_self, "epochs",
			own, "start_sync",
			synced == 1 ? "answered" : (synced == 2 ? "timed out" : "waiting"),
			"start_sync_ms", synced == 1 ? (int)after : -1);
	if(synced == 1)
		rpc->struct_add(th, "s", "start_sync_from", from);
	if(rpc->struct_add(th, "[", "peers", &arr) < 0)
		goto done;
	for(i = 0; i < n; i++) {
		gha_rpc_fmt_time(copy[i].last_wall, ts, sizeof(ts));
		gha_rpc_fmt_time(copy[i].since, ts2, sizeof(ts2));
		if(rpc->array_add(arr, "{", &h) < 0)
			goto done;
		rpc->struct_add(h, "ssssdds", "address", copy[i].addr, "state",
				peer_state_names[copy[i].state], "since", ts2, "last_contact",
				ts, "last_contact_ms_ago",
				copy[i].last_ms > 0 ? (int)(now - copy[i].last_ms) : -1,
				"messages", (int)copy[i].n_rx, "epochs",
				copy[i].epochs[0] ? copy[i].epochs : "(none yet)");
	}
done:
	pkg_free(copy);
}
