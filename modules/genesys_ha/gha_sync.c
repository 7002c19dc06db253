/*
 * genesys_ha module: pool-wide decisions (pure logic, no Kamailio runtime)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: pool-wide decisions (see gha_sync.h)
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "common/kg_hash.h"
#include "gha_sync.h"

/* "host:port", "[v6]:port" or "host" -> address bytes (16, v4 mapped into
 * the last 4 with a leading 0xff marker so v4 < v6 stays stable) and port;
 * 0 ok, -1 not an IP literal */
static int origin_key(const char *s, unsigned char *ip, int *port)
{
	char host[GHA_SYNC_ORIGIN_MAX + 1];
	const char *colon, *end;
	size_t hl;
	struct in_addr a4;

	*port = 0;
	memset(ip, 0, 17);
	if(s[0] == '[') {
		end = strchr(s, ']');
		if(end == NULL)
			return -1;
		hl = (size_t)(end - s - 1);
		if(hl >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if(end[1] == ':')
			*port = atoi(end + 2);
		ip[0] = 1;
		return inet_pton(AF_INET6, host, ip + 1) == 1 ? 0 : -1;
	}
	colon = strrchr(s, ':');
	hl = colon ? (size_t)(colon - s) : strlen(s);
	if(hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if(colon)
		*port = atoi(colon + 1);
	if(inet_pton(AF_INET, host, &a4) != 1)
		return -1;
	memcpy(ip + 13, &a4, 4);
	return 0;
}

int gha_sync_origin_cmp(const char *a, const char *b)
{
	unsigned char ia[17], ib[17];
	int pa, pb, c;

	if(origin_key(a, ia, &pa) == 0 && origin_key(b, ib, &pb) == 0) {
		c = memcmp(ia, ib, sizeof(ia));
		if(c != 0)
			return c;
		return pa < pb ? -1 : (pa > pb ? 1 : 0);
	}
	return strcmp(a, b);
}

int gha_sync_cmp(
		unsigned long ea, const char *oa, unsigned long eb, const char *ob)
{
	if(ea != eb)
		return ea > eb ? 1 : -1;
	if(ea == 0)
		return 0; /* nobody decided anything yet */
	/* equal epochs: the lower origin wins, i.e. is "newer" */
	return -gha_sync_origin_cmp(oa, ob);
}

int gha_sync_fmt_header(char *buf, int size, int kind, const char *sender)
{
	int n = snprintf(
			buf, (size_t)size, GHA_SYNC_MAGIC " %c %s\n", (char)kind, sender);

	return (n < 0 || n >= size) ? -1 : n;
}

int gha_sync_fmt_line(char *buf, int size, const gha_decision_t *d)
{
	int n = snprintf(buf, (size_t)size, "%s %d %lu %s %d %d %d\n", d->pair,
			d->active, d->epoch, d->origin[0] ? d->origin : "-", d->mstate[0],
			d->mstate[1], d->trigger);

	return (n < 0 || n >= size) ? -1 : n;
}

/* copy body[*pos..eol) into line (NUL-terminated); the line's length, -1
 * at the end of the body, -2 too long (skipped) */
static int next_line(const char *body, int len, int *pos, char *line, int size)
{
	int s = *pos, e;

	while(s < len && (body[s] == '\n' || body[s] == '\r'))
		s++;
	if(s >= len) {
		*pos = len;
		return -1;
	}
	for(e = s; e < len && body[e] != '\n'; e++)
		;
	*pos = e < len ? e + 1 : len;
	if(e > s && body[e - 1] == '\r')
		e--;
	if(e - s >= size)
		return -2;
	memcpy(line, body + s, (size_t)(e - s));
	line[e - s] = '\0';
	return e - s;
}

int gha_sync_parse_header(const char *body, int len, int *kind, char *sender,
		int sender_size, int *next)
{
	char line[GHA_SYNC_ORIGIN_MAX + 16], k, snd[GHA_SYNC_ORIGIN_MAX + 1];
	char magic[8];
	int pos = 0;

	if(body == NULL || len <= 0)
		return -1;
	if(next_line(body, len, &pos, line, (int)sizeof(line)) < 0)
		return -1;
	if(sscanf(line, "%7s %c %64s", magic, &k, snd) != 3
			|| strcmp(magic, GHA_SYNC_MAGIC) != 0)
		return -1;
	if(k != GHA_SYNC_DECISION && k != GHA_SYNC_STATE && k != GHA_SYNC_QUERY
			&& k != GHA_SYNC_REPLY)
		return -1;
	if((int)strlen(snd) >= sender_size)
		return -1;
	strcpy(sender, snd);
	*kind = k;
	*next = pos;
	return 0;
}

int gha_sync_parse_line(const char *body, int len, int *pos, gha_decision_t *d)
{
	char line[GHA_SYNC_PAIR_MAX + GHA_SYNC_ORIGIN_MAX + 96], extra[2];
	int n;

	n = next_line(body, len, pos, line, (int)sizeof(line));
	if(n == -1)
		return 0;
	if(n < 0)
		return -1;
	memset(d, 0, sizeof(*d));
	if(sscanf(line, "%64s %d %lu %64s %d %d %d %1s", d->pair, &d->active,
			   &d->epoch, d->origin, &d->mstate[0], &d->mstate[1], &d->trigger,
			   extra)
			!= 7)
		return -1;
	if(d->active != GHA_PRIMARY && d->active != GHA_BACKUP)
		return -1;
	if(strcmp(d->origin, "-") == 0)
		d->origin[0] = '\0';
	if(d->mstate[0] < GHA_MS_UNKNOWN || d->mstate[0] > GHA_MS_DOWN
			|| d->mstate[1] < GHA_MS_UNKNOWN || d->mstate[1] > GHA_MS_DOWN)
		return -1;
	if(d->trigger < GHA_TRIG_NONE || d->trigger > GHA_TRIG_PEER)
		d->trigger = GHA_TRIG_NONE;
	return 1;
}

static uint32_t score(const char *member, const char *proxy)
{
	uint32_t h;

	/* FNV-1a of "member|proxy", then murmur3's finalizer: FNV's low bits
	 * alone mix poorly */
	h = kg_fnv1a(KG_FNV_SEED, member, strlen(member));
	h = kg_fnv1a(h, "|", 1);
	h = kg_fnv1a(h, proxy, strlen(proxy));
	return kg_hash_mix(h);
}

int gha_sync_prober_rank(
		const char *member, const char *const *live, int n, int who)
{
	uint32_t mine, o;
	int i, rank = 0;

	if(who < 0 || who >= n)
		return -1;
	mine = score(member, live[who]);
	for(i = 0; i < n; i++) {
		if(i == who)
			continue;
		o = score(member, live[i]);
		if(o > mine || (o == mine && strcmp(live[i], live[who]) < 0))
			rank++;
	}
	return rank;
}

int gha_sync_apply(
		gha_pair_state_t *st, int active, long now, gha_pair_events_t *ev)
{
	return gha_ps_adopt(st, active, GHA_TRIG_PEER, now, ev);
}
