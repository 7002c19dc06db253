/*
 * genesys_ha module: Record-Route by the pool's name
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: Record-Route naming the pool (rr_pool_name)
 *
 * The Record-Route is built as the rr module builds its own (same lumps,
 * same conditions: modules/rr/record.c build_rr()), with the pool's name
 * where rr puts this proxy's address, and the socket's port and transport:
 * "<sip:POOL:PORT[;transport=PROTO][;r2=on];lr;params>" (toward the
 * previous hop no transport for UDP with a port, as rr writes its own
 * address).  Toward a phone or gateway on its own TCP/TLS connection the
 * Record-Route names this proxy, exactly as rr's.  The parameter lump has
 * rr's type, so add_rr_param() (sticky_rr()) called after it finds it, in
 * both Record-Routes of a double Record-Route.
 * Nothing is allocated but the lumps (pkg); no DNS: the name is only
 * written, and recognised as ours through the core alias list.
 */

#include <string.h>

#include "core/dprint.h"
#include "core/sr_module.h"
#include "core/data_lump.h"
#include "core/name_alias.h"
#include "core/mem/pkg.h"
#include "core/ip_addr.h"
#include "core/socket_info.h"
#include "core/parser/parse_uri.h"
#include "core/parser/parse_from.h"

#include "gha_poolrr.h"
#include "gha_params.h"

str gha_rr_pool_name = STR_NULL;
int gha_rr_pool_port = GHA_DEFAULT_RR_POOL_PORT;

/* rr's own parameters, read once at start-up (find_param_export) */
static int rr_double = 1;
static int rr_full_lr = 0;
static int rr_fromtag = 0;
static int rr_sockname = 0;

#define PRR_PREFIX "Record-Route: <sip:"
#define PRR_PREFIX_SIPS "Record-Route: <sips:"
#define PRR_TRANSPORT ";transport="
#define PRR_R2 ";r2=on"
#define PRR_LR ";lr"
#define PRR_LR_FULL ";lr=on"
#define PRR_FTAG ";ftag="
#define PRR_TERM ">\r\n"

/* build(): which Record-Route */
#define PRR_OUT 0	  /* toward the next hop: the pool */
#define PRR_IN_POOL 1 /* toward the previous hop: the pool */
#define PRR_IN_OWN 2  /* toward the previous hop: this proxy */

static int rr_int(struct sr_module *rr, char *name, int *val)
{
	modparam_t t;
	int *p = (int *)find_param_export(rr, name, PARAM_INT, &t);

	if(p == NULL) {
		LM_ERR("cannot read the rr module's parameter %s\n", name);
		return -1;
	}
	*val = *p;
	return 0;
}

int gha_poolrr_init(void)
{
	struct sr_module *rr;
	int user = 0;

	/* rr_pool_port and rr_pool_name's syntax: checked by gha_params.c */
	if(gha_rr_pool_name.len <= 0)
		return 0;
	rr = find_module_by_name("rr");
	if(rr == NULL || rr_int(rr, "enable_double_rr", &rr_double) < 0
			|| rr_int(rr, "enable_full_lr", &rr_full_lr) < 0
			|| rr_int(rr, "append_fromtag", &rr_fromtag) < 0
			|| rr_int(rr, "add_username", &user) < 0
			|| rr_int(rr, "sockname_mode", &rr_sockname) < 0)
		return -1;
	if(user != 0) {
		LM_ERR("rr_pool_name cannot be used with the rr module's "
			   "add_username: set it to 0\n");
		return -1;
	}
	/* the name is ours on every proxy of the pool: loose_route() and
	 * "uri == myself" take it as this proxy (core alias=, any port and
	 * transport) */
	if(add_alias(gha_rr_pool_name.s, gha_rr_pool_name.len, 0, 0) < 0) {
		LM_ERR("cannot add '%.*s' to the aliases\n", gha_rr_pool_name.len,
				gha_rr_pool_name.s);
		return -1;
	}
	LM_INFO("Record-Route by the pool's name '%.*s' (%s): every proxy of "
			"the pool takes its dialogs' in-dialog requests\n",
			gha_rr_pool_name.len, gha_rr_pool_name.s,
			gha_rr_pool_port ? "with the socket's port" : "no port");
	return 0;
}

int gha_poolrr_applies(void)
{
	return gha_rr_pool_name.len > 0;
}

/* the previous hop reaches any proxy of the pool: a pool member, or over a
 * connectionless transport; a phone or gateway on its own TCP/TLS
 * connection only reaches (and is only reached through) this proxy */
static int inbound_pool(sip_msg_t *msg, int from_member)
{
	return from_member || msg->rcv.proto == PROTO_UDP
		   || msg->rcv.proto == PROTO_SCTP;
}

static char *pkg_dup(const char *s, int len)
{
	char *p = pkg_malloc(len > 0 ? len : 1);

	if(p == NULL) {
		PKG_MEM_ERROR;
		return NULL;
	}
	memcpy(p, s, len);
	return p;
}

/* "Record-Route: <sip:POOL[:PORT][;transport=PROTO]" toward the previous
 * hop: the receiving socket is known now, so the text is written at once
 * (as rr's SUBST_RCV_ALL would: the advertised port if any; no transport
 * for UDP when the port is there, RFC 3263 4.1 takes UDP then) */
static int inbound_head(sip_msg_t *msg, const char *pre, char **out)
{
	struct socket_info *si = msg->rcv.bind_address;
	str port = STR_NULL, proto = STR_NULL;
	int plen = (int)strlen(pre), n;
	char *p;

	if(si == NULL) {
		LM_ERR("no receiving socket\n");
		return -1;
	}
	if(gha_rr_pool_port)
		port = si->useinfo.port_no > 0 ? si->useinfo.port_no_str
									   : si->port_no_str;
	if((msg->rcv.proto != PROTO_UDP || !gha_rr_pool_port)
			&& get_valid_proto_string(msg->rcv.proto, 1, 0, &proto) < 0) {
		LM_ERR("unknown transport %d\n", (int)msg->rcv.proto);
		return -1;
	}
	n = plen + gha_rr_pool_name.len + (port.len > 0 ? 1 + port.len : 0)
		+ (proto.len > 0 ? (int)sizeof(PRR_TRANSPORT) - 1 + proto.len : 0);
	if((p = pkg_malloc(n)) == NULL) {
		PKG_MEM_ERROR;
		return -1;
	}
	*out = p;
	memcpy(p, pre, plen);
	p += plen;
	memcpy(p, gha_rr_pool_name.s, gha_rr_pool_name.len);
	p += gha_rr_pool_name.len;
	if(port.len > 0) {
		*p++ = ':';
		memcpy(p, port.s, port.len);
		p += port.len;
	}
	if(proto.len > 0) {
		memcpy(p, PRR_TRANSPORT, sizeof(PRR_TRANSPORT) - 1);
		p += sizeof(PRR_TRANSPORT) - 1;
		memcpy(p, proto.s, proto.len);
	}
	return n;
}

/* one Record-Route after l (its head) and before l2 (its tail), as rr's
 * build_rr(): inbound names the receiving socket's port and transport
 * (written now), outbound the sending one's (substituted when the request
 * is sent: that socket is not chosen yet) */
static int build(sip_msg_t *msg, struct lump *l, struct lump *l2, str *params,
		str *tag, int inbound, int sips)
{
	const char *pre = sips ? PRR_PREFIX_SIPS : PRR_PREFIX;
	int plen = (int)strlen(pre), hlen, slen, lrlen;
	char *hdr = NULL, *suffix = NULL, *p;

	if(inbound == PRR_IN_OWN) {
		/* this proxy's receiving socket, as rr's own Record-Route */
		if((hdr = pkg_dup(pre, plen)) == NULL)
			return -1;
		hlen = plen;
	} else if(inbound == PRR_IN_POOL) {
		if((hlen = inbound_head(msg, pre, &hdr)) < 0)
			return -1;
	} else {
		hlen = plen + gha_rr_pool_name.len + (gha_rr_pool_port ? 1 : 0);
		if((hdr = pkg_malloc(hlen)) == NULL) {
			PKG_MEM_ERROR;
			return -1;
		}
		memcpy(hdr, pre, plen);
		memcpy(hdr + plen, gha_rr_pool_name.s, gha_rr_pool_name.len);
		if(gha_rr_pool_port)
			hdr[hlen - 1] = ':';
	}
	if((l = insert_new_lump_after(l, hdr, hlen, 0)) == NULL)
		goto err;
	hdr = NULL;
	if(inbound == PRR_IN_OWN
			&& (l = insert_subst_lump_after(
						l, rr_sockname ? SUBST_RCV_ALL_EX : SUBST_RCV_ALL, 0))
					   == NULL)
		goto err0;
	if(inbound == PRR_OUT) {
		if(gha_rr_pool_port
				&& (l = insert_subst_lump_after(l, SUBST_SND_PORT, 0)) == NULL)
			goto err0;
		if((p = pkg_dup(PRR_TRANSPORT, sizeof(PRR_TRANSPORT) - 1)) == NULL)
			goto err0;
		if((l = insert_new_lump_after(l, p, sizeof(PRR_TRANSPORT) - 1, 0))
				== NULL) {
			pkg_free(p);
			goto err0;
		}
		if((l = insert_subst_lump_after(l, SUBST_SND_PROTO, 0)) == NULL)
			goto err0;
	}
	if(rr_double) {
		if((l = insert_cond_lump_after(
					l, rr_double == 2 ? COND_TRUE : COND_IF_DIFF_REALMS, 0))
				== NULL)
			goto err0;
		if((p = pkg_dup(PRR_R2, sizeof(PRR_R2) - 1)) == NULL)
			goto err0;
		if((l = insert_new_lump_after(l, p, sizeof(PRR_R2) - 1, 0)) == NULL) {
			pkg_free(p);
			goto err0;
		}
	}
	lrlen = rr_full_lr ? sizeof(PRR_LR_FULL) - 1 : sizeof(PRR_LR) - 1;
	slen = lrlen + (params ? params->len : 0)
		   + (tag && tag->len > 0 ? (int)sizeof(PRR_FTAG) - 1 + tag->len : 0);
	if((suffix = pkg_malloc(slen)) == NULL) {
		PKG_MEM_ERROR;
		goto err0;
	}
	p = suffix;
	memcpy(p, rr_full_lr ? PRR_LR_FULL : PRR_LR, lrlen);
	p += lrlen;
	if(tag && tag->len > 0) {
		memcpy(p, PRR_FTAG, sizeof(PRR_FTAG) - 1);
		p += sizeof(PRR_FTAG) - 1;
		memcpy(p, tag->s, tag->len);
		p += tag->len;
	}
	if(params && params->len > 0)
		memcpy(p, params->s, params->len);
	/* rr's type: add_rr_param() finds this lump */
	if((l2 = insert_new_lump_before(l2, suffix, slen, HDR_RECORDROUTE_T))
			== NULL)
		goto err;
	suffix = NULL;
	if((p = pkg_dup(PRR_TERM, sizeof(PRR_TERM) - 1)) == NULL)
		goto err0;
	if(insert_new_lump_before(l2, p, sizeof(PRR_TERM) - 1, 0) == NULL) {
		pkg_free(p);
		goto err0;
	}
	return 0;
err:
	if(hdr)
		pkg_free(hdr);
	if(suffix)
		pkg_free(suffix);
err0:
	LM_ERR("cannot add the pool's Record-Route (lumps)\n");
	return -1;
}

int gha_poolrr_add(sip_msg_t *msg, str *params, int from_member)
{
	struct lump *l, *l2;
	str *tag = NULL;
	int off, sips;

	if(msg->headers == NULL) {
		LM_ERR("no headers\n");
		return -1;
	}
	if(rr_fromtag) {
		/* ha_record_route() is for initial requests: the From tag */
		if(parse_from_header(msg) < 0) {
			LM_ERR("cannot parse the From header\n");
			return -1;
		}
		tag = &get_from(msg)->tag_value;
	}
	sips = parse_sip_msg_uri(msg) >= 0 && msg->parsed_uri.type == SIPS_URI_T;
	off = (int)(msg->headers->name.s - msg->buf);
	if(rr_double) {
		/* toward the next hop: only when the request leaves on another
		 * socket or transport (rr: COND_IF_DIFF_REALMS) */
		l = anchor_lump(msg, off, 0, HDR_RECORDROUTE_T);
		l2 = anchor_lump(msg, off, 0, 0);
		if(l == NULL || l2 == NULL)
			return -1;
		l = insert_cond_lump_after(
				l, rr_double == 2 ? COND_TRUE : COND_IF_DIFF_REALMS, 0);
		l2 = insert_cond_lump_before(
				l2, rr_double == 2 ? COND_TRUE : COND_IF_DIFF_REALMS, 0);
		if(l == NULL || l2 == NULL
				|| build(msg, l, l2, params, tag, PRR_OUT, sips) < 0)
			return -1;
	}
	l = anchor_lump(msg, off, 0, HDR_RECORDROUTE_T);
	l2 = anchor_lump(msg, off, 0, 0);
	if(l == NULL || l2 == NULL)
		return -1;
	return build(msg, l, l2, params, tag,
			inbound_pool(msg, from_member) ? PRR_IN_POOL : PRR_IN_OWN, sips);
}
