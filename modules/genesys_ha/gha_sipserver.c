/*
 * genesys_ha module: requests, replies and failures of the SIP Servers
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: what comes from a pair member: its requests
 * (ha_from_sipserver(): a request from a non-active member may switch the
 * pair over), its replies while a down grace is open (gha_grace_reply(),
 * core's response hook) and its failures to answer a relayed request
 * (ha_failover(): retry on the other member).  Request path: no shm
 * allocation, no DNS, no lock (runtime state is read lock-free; a
 * switchover triggered here takes the state lock briefly, see
 * gha_runtime.c)
 */

#include <string.h>

#include "core/dprint.h"
#include "core/dset.h"
#include "core/parser/parse_cseq.h"
#include "core/ip_addr.h"
#include "modules/tm/h_table.h"
#include "modules/tm/t_lookup.h"

#include "gha_state.h"
#include "gha_route.h"
#include "gha_pending.h"
#include "gha_xctx.h"

/* core's response hook (every reply, before tm): while a down grace is
 * open somewhere, a reply from a member not known active (a backup being
 * promoted answers the requests sent to it in the grace) makes genesys_oos
 * probe it at once, so that the pair switches to it in one round trip
 * instead of at its next periodic probe.  Nothing allocated, one load and
 * a clock read per reply otherwise. */
int gha_grace_reply(sip_msg_t *msg)
{
	gha_pool_t *p;
	gha_addr_t a;
	int pi, m;
	long until = __atomic_load_n(&gha_root->grace_until_ms, __ATOMIC_RELAXED);

	if(until <= 0 || gha_now_ms() >= until)
		return 1;
	if(parse_headers(msg, HDR_CSEQ_F, 0) < 0 || msg->cseq == NULL
			|| get_cseq(msg)->method_id == METHOD_OPTIONS)
		return 1; /* probes are genesys_oos's business */
	if((p = gha_snap()) == NULL)
		return 1;
	gha_to_addr(&msg->rcv.src_ip, &a);
	pi = gha_pool_find_member_addr(
			p, &a, msg->rcv.src_port, msg->rcv.proto != PROTO_UDP, &m);
	if(pi >= 0 && gha_mstate(&p->pairs[pi], m) != GHA_MS_ACTIVE)
		gha_goos.probe_now(p->pairs[pi].m[m].goos_id);
	return 1;
}

int ki_ha_from_sipserver(sip_msg_t *msg)
{
	gha_pool_t *p = gha_snap();
	gha_addr_t a;
	gha_ctx_t *c;
	int pi, m;

	if(p == NULL)
		return GHA_RC_NOT_FOUND;
	gha_to_addr(&msg->rcv.src_ip, &a);
	pi = gha_pool_find_member_addr(
			p, &a, msg->rcv.src_port, msg->rcv.proto != PROTO_UDP, &m);
	if(pi < 0)
		return GHA_RC_NOT_FOUND;
	c = gha_ctx(msg);
	gha_ctx_set_pair(c, &p->pairs[pi], m);
	c->from_member = 1;
	if(msg->first_line.type == SIP_REQUEST)
		gha_request_from(p, pi, m);
	c->state = gha_pstate(&p->pairs[pi]);
	if(msg->first_line.type == SIP_REQUEST)
		gha_xctx_store(msg, c);
	return GHA_RC_OK;
}

/* pair member of the branch's destination */
static int branch_member(gha_pool_t *p, struct ua_client *uac, int *member)
{
	struct ip_addr ip;
	gha_addr_t a;

	su2ip_addr(&ip, &uac->request.dst.to);
	gha_to_addr(&ip, &a);
	return gha_pool_find_member_addr(
			p, &a, su_getport(&uac->request.dst.to), 0, member);
}

/* the branch could not be sent at all (TCP/TLS connect refused, send
 * error): tm marks it so (t_fwd.c) and t_relay() fails */
static int send_failed(const struct ua_client *uac)
{
	return uac->icode == 908 && uac->reply == NULL;
}

int ki_ha_failover(sip_msg_t *msg)
{
	gha_pool_t *p = gha_snap();
	struct cell *t;
	struct ua_client *uac;
	gha_ctx_t *c;
	gha_pair_t *pr;
	const char *why;
	int b, i, pi, qi, m, k, to, timeout, grace = 0, tried = 0;

	if(p == NULL)
		return GHA_RC_NOT_FOUND;
	if(msg->first_line.type == SIP_REQUEST
			&& (msg->REQ_METHOD & (METHOD_ACK | METHOD_CANCEL)))
		return GHA_RC_NOT_FOUND; /* not relayed in their own transaction */
	t = gha_tmb.t_gett();
	if(t == NULL || t == T_UNDEFINED) {
		if(!is_route_type(FAILURE_ROUTE))
			return GHA_RC_NOT_FOUND; /* t_relay() failed before sending */
		LM_ERR("ha_failover() needs a transaction\n");
		return GHA_RC_ERROR;
	}
	/* a send that failed at once is the newest branch (request_route after
	 * t_relay() failed, or failure_route after the retry's t_relay()
	 * failed); else the branch failure_route runs for */
	b = t->nr_of_outgoings - 1;
	if(b < 0 || !send_failed(&t->uac[b])) {
		if(!is_route_type(FAILURE_ROUTE))
			return GHA_RC_NOT_FOUND;
		b = gha_tmb.t_get_picked_branch();
	}
	if(b < 0 || b >= t->nr_of_outgoings)
		return GHA_RC_NOT_FOUND;
	uac = &t->uac[b];
	timeout = uac->reply == FAKED_REPLY || uac->reply == NULL
			  || uac->last_received == 0;
	if(!timeout && uac->last_received != 503)
		return GHA_RC_NOT_FOUND; /* an answer: not a member failure */
	why = send_failed(uac) ? "send failed" : (timeout ? "no answer" : "503");
	pi = branch_member(p, uac, &m);
	if(pi < 0)
		return GHA_RC_NOT_FOUND;
	for(i = 0; i < t->nr_of_outgoings; i++) {
		qi = branch_member(p, &t->uac[i], &k);
		if(qi == pi)
			tried |= 1 << k;
	}
	pr = &p->pairs[pi];
	to = gha_relay_failed(p, pi, m, timeout);
	if(to < 0 || (tried & (1 << to))) {
		/* the other member is not known alive: tried anyway in the down
		 * grace, or after no answer at all (gha_pair.h) */
		k = gha_grace_retry_member(p, pi, m, timeout);
		if(k >= 0 && !(tried & (1 << k))) {
			to = k;
			grace = 1;
		}
	}
	c = gha_ctx_load(msg); /* keeps the DN request_route saw */
	gha_ctx_set_pair(c, pr, to >= 0 ? to : m);
	if(grace || gha_grace_target(pr) >= 0)
		c->state = GHA_PS_GRACE;
	if(to < 0 || (tried & (1 << to))) {
		LM_NOTICE("pair '%.*s': request to %s %.*s failed (%s) and the "
				  "other member is not known alive or was tried: no retry\n",
				pr->name.len, pr->name.s, gha_role_name(m), pr->m[m].uri.len,
				pr->m[m].uri.s, why);
		return GHA_RC_OUT_OF_SERVICE;
	}
	if(set_dst_uri(msg, &pr->m[to].dst) < 0) {
		LM_ERR("cannot set the destination\n");
		return GHA_RC_ERROR;
	}
	gha_pending_note(msg, pr->m[to].proto);
	ruri_mark_new(); /* re-use the R-URI for the new branch */
	LM_NOTICE("pair '%.*s': request to %s %.*s failed (%s): retrying on %s "
			  "%.*s%s\n",
			pr->name.len, pr->name.s, gha_role_name(m), pr->m[m].uri.len,
			pr->m[m].uri.s, why, gha_role_name(to), pr->m[to].uri.len,
			pr->m[to].uri.s, grace ? " (not known alive: down grace)" : "");
	GHA_INC(pr->slot->n_failover);
	gha_xctx_store(msg, c);
	counter_inc(gha_cnt.failovers);
	if(grace) {
		GHA_INC(pr->slot->n_grace);
		counter_inc(gha_cnt.grace);
		return GHA_RC_GRACE;
	}
	return GHA_RC_OK;
}
