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
 * \brief genesys_ha :: what the DMQ messages say and what a received one
 * does (see gha_dmq_int.h; the text and the rules are gha_sync.c's)
 *
 * Owns: publishing this proxy's decisions (a new epoch, queued for the
 * DMQ process), applying a newer decision from a peer, the state bodies
 * (broadcast, and the answer to a query), and distributed probing (which
 * proxy probes which member, a peer's probe states taken over).
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/dprint.h"
#include "core/mem/pkg.h"

#include "gha_dmq_int.h"
#include "gha_state.h"

/* ---- decisions ---- */

static void fill(gha_decision_t *d, const gha_pair_t *pr)
{
	const gha_slot_t *s = pr->slot;

	snprintf(d->pair, sizeof(d->pair), "%.*s", pr->name.len, pr->name.s);
	d->active = s->st.active;
	d->epoch = s->dmq_epoch;
	snprintf(d->origin, sizeof(d->origin), "%s", s->dmq_origin);
	d->mstate[0] = s->st.mstate[0];
	d->mstate[1] = s->st.mstate[1];
	d->trigger = s->st.sw_trigger;
}

void gha_dmq_decided(gha_pool_t *p, int pi, const gha_pair_events_t *ev)
{
	gha_pair_t *pr = &p->pairs[pi];
	gha_decision_t d;
	int dropped = 0, tail;

	if(!gha_dmq_on() || !ev->switched || ev->trigger == GHA_TRIG_PEER)
		return;
	lock_get(&gha_root->lock);
	pr->slot->dmq_epoch++;
	snprintf(pr->slot->dmq_origin, sizeof(pr->slot->dmq_origin), "%s",
			gha_dmq_self);
	fill(&d, pr);
	d.trigger = ev->trigger;
	lock_release(&gha_root->lock);
	/* sent by the DMQ process: never a tm request from here (tm's reply
	 * lock, genesys_oos's callback, an RPC) */
	lock_get(&gha_droot->lock);
	if(gha_droot->qcount < GHA_DMQ_QUEUE) {
		tail = (gha_droot->qhead + gha_droot->qcount) % GHA_DMQ_QUEUE;
		gha_droot->q[tail] = d;
		gha_droot->qcount++;
	} else {
		dropped = 1;
	}
	lock_release(&gha_droot->lock);
	if(dropped)
		LM_WARN("DMQ queue full: the decision for pair '%s' (epoch %lu) goes "
				"with the next state broadcast\n",
				d.pair, d.epoch);
	else
		LM_INFO("SIP Server pair '%s': decision epoch %lu (%s active) "
				"published to the pool\n",
				d.pair, d.epoch, gha_role_name(d.active));
}

/* a decision from the pool: applied when newer than ours */
static void apply(gha_pool_t *p, const gha_decision_t *d, const char *sender)
{
	gha_pair_events_t ev;
	gha_pair_t *pr;
	unsigned long had;
	int pi, sw = 0, cmp;

	if(p == NULL
			|| (pi = gha_pool_find_pair(p, d->pair, (int)strlen(d->pair))) < 0)
		return;
	pr = &p->pairs[pi];
	memset(&ev, 0, sizeof(ev));
	lock_get(&gha_root->lock);
	had = pr->slot->dmq_epoch;
	cmp = gha_sync_cmp(
			d->epoch, d->origin, pr->slot->dmq_epoch, pr->slot->dmq_origin);
	if(cmp > 0) {
		pr->slot->dmq_epoch = d->epoch;
		snprintf(pr->slot->dmq_origin, sizeof(pr->slot->dmq_origin), "%s",
				d->origin);
		sw = gha_sync_apply(&pr->slot->st, d->active, (long)time(NULL), &ev);
	}
	lock_release(&gha_root->lock);
	if(!sw)
		return;
	counter_inc(gha_dcnt.applied);
	LM_NOTICE("SIP Server pair '%s': the pool decided %s %.*s (epoch %lu, "
			  "decided by proxy %s, trigger %s; had epoch %lu; from %s)\n",
			d->pair, gha_role_name(d->active), pr->m[d->active].uri.len,
			pr->m[d->active].uri.s, d->epoch, d->origin,
			gha_trigger_name(d->trigger), had, sender);
	gha_emit(p, pi, &ev);
}

/* ---- distributed probing ---- */

static int member_key(const gha_member_t *m, char *buf, int size)
{
	int n = snprintf(buf, (size_t)size, "%.*s", m->dst.len, m->dst.s);

	return (n < 0 || n >= size) ? -1 : 0;
}

/* the members this proxy probes (rank < dmq_probing): probed here */
void gha_dmq_probe_assign(gha_pool_t *p)
{
	char addr[GHA_DMQ_PEERS + 1][GHA_SYNC_ORIGIN_MAX + 1], key[256];
	const char *live[GHA_DMQ_PEERS + 1];
	int i, k, n;

	if(p == NULL)
		return;
	n = gha_dmq_live_set(addr, live, GHA_DMQ_PEERS + 1, NULL);
	for(i = 0; i < p->npairs; i++)
		for(k = 0; k < 2; k++) {
			const gha_member_t *m = &p->pairs[i].m[k];
			if(m->goos_id < 0 || member_key(m, key, sizeof(key)) < 0)
				continue;
			if(gha_sync_prober_rank(key, live, n, 0) < gha_dmq_probing)
				gha_goos.set_remote(m->goos_id, 0, GOOS_UNKNOWN);
		}
}

/* a line from `sender`: for a member it probes and this proxy does not,
 * its state is the member's state here */
static void probe_take(gha_pool_t *p, const gha_decision_t *d,
		const char *sender, char (*addr)[GHA_SYNC_ORIGIN_MAX + 1],
		const char **live, int n)
{
	char key[256];
	int pi, k, who;

	if((pi = gha_pool_find_pair(p, d->pair, (int)strlen(d->pair))) < 0)
		return;
	if(!gha_dmq_peer_settled(sender))
		return;
	for(who = 0; who < n && strcmp(live[who], sender) != 0; who++)
		;
	(void)addr;
	for(k = 0; k < 2; k++) {
		const gha_member_t *m = &p->pairs[pi].m[k];
		if(m->goos_id < 0 || d->mstate[k] == GHA_MS_UNKNOWN
				|| member_key(m, key, sizeof(key)) < 0)
			continue;
		if(gha_sync_prober_rank(key, live, n, 0) < gha_dmq_probing)
			continue; /* probed here */
		if(gha_sync_prober_rank(key, live, n, who) >= gha_dmq_probing)
			continue; /* the sender does not probe it either */
		gha_goos.set_remote(m->goos_id, 1, (goos_state_t)d->mstate[k]);
	}
}

void gha_dmq_member_changed(void)
{
	if(gha_droot && gha_dmq_probing > 0)
		__atomic_store_n(&gha_droot->state_now, 1, __ATOMIC_RELEASE);
}

/* ---- received bodies, state bodies ---- */

/* apply every line of body; the epochs summary for the peer's record */
void gha_dmq_apply_body(gha_pool_t *p, const char *body, int len, int pos,
		const char *sender, char *sum, int sumsize)
{
	char addr[GHA_DMQ_PEERS + 1][GHA_SYNC_ORIGIN_MAX + 1];
	const char *live[GHA_DMQ_PEERS + 1];
	gha_decision_t d;
	int rc, n = 0, k, nl = 0;

	if(gha_dmq_probing > 0)
		nl = gha_dmq_live_set(addr, live, GHA_DMQ_PEERS + 1, sender);

	sum[0] = '\0';
	while((rc = gha_sync_parse_line(body, len, &pos, &d)) != 0) {
		if(rc < 0) {
			LM_WARN("malformed line in a DMQ message from %s\n", sender);
			continue;
		}
		if(n < sumsize - 1) {
			k = snprintf(sum + n, (size_t)(sumsize - n), "%s%s=%lu/%s",
					n ? " " : "", d.pair, d.epoch, gha_role_name(d.active));
			n = (k > 0 && n + k < sumsize) ? n + k : sumsize - 1;
		}
		apply(p, &d, sender);
		if(gha_dmq_probing > 0 && p)
			probe_take(p, &d, sender, addr, live, nl);
	}
}

/* every pair's state as bodies of at most GHA_DMQ_BODY_MAX bytes; calls
 * send(body) per body; returns the number of bodies */
int gha_dmq_state_bodies(gha_pool_t *p, int kind, int max,
		void (*send)(str *body, void *arg), void *arg)
{
	char *buf, line[256];
	gha_decision_t d;
	str b;
	int i, n, hl, ll, nb = 0;

	if((buf = pkg_malloc((size_t)max + 512)) == NULL) {
		PKG_MEM_ERROR;
		return 0;
	}
	hl = gha_sync_fmt_header(buf, max, kind, gha_dmq_self);
	if(hl < 0) {
		pkg_free(buf);
		return 0;
	}
	n = hl;
	for(i = 0; p && i < p->npairs; i++) {
		lock_get(&gha_root->lock);
		fill(&d, &p->pairs[i]);
		lock_release(&gha_root->lock);
		if((ll = gha_sync_fmt_line(line, sizeof(line), &d)) < 0)
			continue;
		if(n + ll > max && n > hl) {
			b.s = buf;
			b.len = n;
			send(&b, arg);
			nb++;
			n = hl;
		}
		memcpy(buf + n, line, (size_t)ll);
		n += ll;
	}
	if(n > hl || nb == 0) {
		b.s = buf;
		b.len = n;
		send(&b, arg);
		nb++;
	}
	pkg_free(buf);
	return nb;
}
