/*
 * genesys_tlssticky: flows in Kamailio terms (addresses, connections,
 * sockets, tokens), shared by gts_sip.c, gts_route.c and gts_rpc.c
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

#include <stdio.h>
#include <string.h>

#include "core/dprint.h"
#include "core/ip_addr.h"
#include "core/tcp_conn.h"
#include "core/socket_info.h"
#include "core/parser/msg_parser.h"
#include "core/parser/parse_uri.h"

#include "gts_mod.h"
#include "gts_contact.h"

static int ip2gts(const struct ip_addr *ip, unsigned short port, gts_addr_t *a)
{
	memset(a, 0, sizeof(*a));
	if(ip->af == AF_INET) {
		a->af = 4;
		memcpy(a->ip, ip->u.addr, 4);
	} else if(ip->af == AF_INET6) {
		a->af = 6;
		memcpy(a->ip, ip->u.addr, 16);
	} else {
		return -1;
	}
	a->port = port;
	return 0;
}

void gts_addr_to_ip(const gts_addr_t *a, struct ip_addr *ip)
{
	memset(ip, 0, sizeof(*ip));
	ip->af = a->af == 6 ? AF_INET6 : AF_INET;
	ip->len = a->af == 6 ? 16 : 4;
	memcpy(ip->u.addr, a->ip, ip->len);
}

void gts_addr_str(const gts_addr_t *a, char *out, size_t outsz)
{
	struct ip_addr ip;
	gts_addr_to_ip(a, &ip);
	if(a->af == 6)
		snprintf(out, outsz, "[%s]:%u", ip_addr2a(&ip), a->port);
	else
		snprintf(out, outsz, "%s:%u", ip_addr2a(&ip), a->port);
}

int gts_sticky_proto(int proto)
{
	return proto == PROTO_TLS || (proto == PROTO_TCP && gts_cfg.tcp);
}

int gts_conn_of_msg(struct sip_msg *msg, gts_conn_t *c)
{
	memset(c, 0, sizeof(*c));
	c->conid = (uint32_t)msg->rcv.proto_reserved1;
	c->proto = (uint8_t)msg->rcv.proto;
	if(ip2gts(&msg->rcv.src_ip, msg->rcv.src_port, &c->src) < 0
			|| ip2gts(&msg->rcv.dst_ip, msg->rcv.dst_port, &c->local) < 0)
		return -1;
	return 0;
}

/* every token names where the other proxies of the pool relay requests
 * for the flow (relay_address) */
int gts_mint(const gts_flow_t *f, char *out, size_t outsz)
{
	gts_flow_t t = *f;
	t.relay = gts_cfg.relay_addr;
	t.relay_proto = gts_cfg.relay_proto;
	return gts_token_encode(&t, (const unsigned char *)gts_cfg.secret.s,
			(size_t)gts_cfg.secret.len, out, outsz);
}

/* 1 when the connection of f is open and still from the phone's address */
int gts_flow_alive(const gts_flow_t *f)
{
	struct tcp_connection *c;
	struct ip_addr ip;
	int alive = 0;

	c = tcpconn_get((int)f->conid, 0, 0, 0, 0);
	if(c == NULL)
		return 0;
	gts_addr_to_ip(&f->src, &ip);
	if(c->state != S_CONN_BAD && c->rcv.src_port == f->src.port
			&& ip_addr_cmp(&c->rcv.src_ip, &ip))
		alive = 1;
	tcpconn_put(c);
	return alive;
}

struct socket_info *gts_local_socket(const gts_flow_t *f)
{
	struct ip_addr ip;
	gts_addr_to_ip(&f->local, &ip);
	return find_si(&ip, f->local.port, f->proto);
}

int gts_rewritten_contact(const gts_view_t *v, char *out, size_t outsz)
{
	char tok[GTS_TOKEN_MAX];
	struct sip_uri pu;

	if(gts_mint(&v->flow, tok, sizeof(tok)) < 0)
		return -1;
	if(parse_uri((char *)v->uri, (int)strlen(v->uri), &pu) < 0)
		memset(&pu, 0, sizeof(pu));
	return gts_contact_build(out, outsz, NULL, 0, pu.user.s,
			(size_t)pu.user.len, gts_cfg.contact_hostport.s,
			(size_t)gts_cfg.contact_hostport.len, gts_cfg.contact_transport,
			gts_cfg.token_param.s, (size_t)gts_cfg.token_param.len, tok, "", 0,
			-1);
}
