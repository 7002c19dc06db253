/*
 * genesys_oos: the shared target table
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_oos :: the target table in shm
 *
 * The table grows by chunks of GOOS_CHUNK targets as targets register, up
 * to modparam max_targets (0: no limit but GOOS_MAX_TARGETS_MAX) and the
 * shared memory; nothing is reserved for targets never registered.  Slots
 * never move, so a target id (the slot index) stays valid until the
 * target is released.  Every field except `state` is accessed under the
 * table lock; `state` (the effective state) is written under the lock and
 * read lock-free with an atomic load, which is all the request path needs.
 * The lock is never held while calling tm, running an event route or a
 * subscriber callback: changes are copied into goos_change_rec_t records
 * and notified after unlocking.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/dprint.h"
#include "core/mem/shm_mem.h"
#include "core/parser/parse_uri.h"
#include "core/socket_info.h"

#include "common/kg_hash.h"
#include "goos_target.h"

goos_root_t *goos_root = NULL;

int64_t goos_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t goos_hash(const str *s)
{
	return kg_fnv1a(KG_FNV_SEED, s->s, s->len > 0 ? (size_t)s->len : 0);
}

void goos_kick(void)
{
	if(__atomic_exchange_n(&goos_root->kick, 1, __ATOMIC_ACQ_REL) == 0
			&& goos_root->wake_wr >= 0) {
		/* non-blocking: a full pipe already wakes the process */
		if(write(goos_root->wake_wr, "k", 1) < 0 && errno != EAGAIN)
			LM_DBG("wake-up write: %s\n", strerror(errno));
	}
}

/* one more chunk of GOOS_CHUNK targets, and room for them in the heap;
 * under the lock (or before any other process exists) */
static int goos_table_grow(void)
{
	goos_target_t *c;
	void *mem, *old;
	int k = goos_root->capacity >> GOOS_CHUNK_BITS, i, cap;

	if(k >= GOOS_MAX_CHUNKS)
		return -1;
	c = (goos_target_t *)shm_malloc(sizeof(goos_target_t) * GOOS_CHUNK);
	if(c == NULL)
		return -1;
	memset(c, 0, sizeof(goos_target_t) * GOOS_CHUNK);
	for(i = 0; i < GOOS_CHUNK; i++) {
		c[i].side.conn_fd = -1;
		c[i].side.cidx = -1;
		c[i].side.usock = -1;
		c[i].side.dnext = -1;
	}
	cap = goos_root->capacity + GOOS_CHUNK;
	if(cap > goos_root->heap.cap) {
		/* the heap doubles: O(1) amortized per target */
		int hcap = goos_root->heap.cap * 2;
		if(hcap < cap)
			hcap = cap;
		mem = shm_malloc(goos_heap_bytes(hcap));
		if(mem == NULL) {
			shm_free(c);
			return -1;
		}
		if(goos_root->heap.cap == 0) {
			goos_heap_init(&goos_root->heap, mem, hcap);
		} else {
			old = goos_heap_grow(&goos_root->heap, mem, hcap);
			shm_free(old);
		}
	}
	/* lock-free readers check the id against the capacity first */
	__atomic_store_n(&goos_root->chunks[k], c, __ATOMIC_RELEASE);
	__atomic_store_n(&goos_root->capacity, cap, __ATOMIC_RELEASE);
	LM_DBG("target table: %d slots of %lu bytes\n", cap,
			(unsigned long)sizeof(goos_target_t));
	return 0;
}

int goos_table_init(void)
{
	int fds[2];

	if(goos_root != NULL)
		return 0;
	goos_root = (goos_root_t *)shm_malloc(sizeof(goos_root_t));
	if(goos_root == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	memset(goos_root, 0, sizeof(goos_root_t));
	goos_root->max_targets = goos_params.max_targets > 0
									 ? goos_params.max_targets
									 : GOOS_MAX_TARGETS_MAX;
	goos_root->wake_ms = INT64_MIN;
	goos_root->plan_check_s = goos_params.check_s;
	goos_root->plan_force_s = goos_params.force_s;
	goos_root->wake_rd = goos_root->wake_wr = -1;
	memset(goos_root->idx, 0xff, sizeof(goos_root->idx)); /* all -1 */
	goos_root->free_head = -1;
	if(goos_table_grow() < 0) {
		SHM_MEM_ERROR;
		shm_free(goos_root);
		goos_root = NULL;
		return -1;
	}
	if(pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
		LM_ERR("cannot create the genesys_oos wake-up pipe: %s\n",
				strerror(errno));
		goos_table_destroy();
		return -1;
	}
	goos_root->wake_rd = fds[0];
	goos_root->wake_wr = fds[1];
	if(lock_init(&goos_root->lock) == NULL) {
		LM_ERR("cannot initialize the genesys_oos table lock\n");
		goos_table_destroy();
		return -1;
	}
	return 0;
}

void goos_table_destroy(void)
{
	int k;

	if(goos_root == NULL)
		return;
	if(goos_root->wake_rd >= 0)
		close(goos_root->wake_rd);
	if(goos_root->wake_wr >= 0)
		close(goos_root->wake_wr);
	lock_destroy(&goos_root->lock);
	for(k = 0; k < GOOS_MAX_CHUNKS && goos_root->chunks[k]; k++)
		shm_free(goos_root->chunks[k]);
	if(goos_root->heap.ent)
		shm_free(goos_root->heap.ent);
	shm_free(goos_root);
	goos_root = NULL;
}

void goos_table_rekey(goos_target_t *t, int id)
{
	int64_t ev = t->started ? goos_sched_event(&t->sched) : 0;

	if(t->refs <= 0 || ev == GOOS_NEVER) {
		goos_heap_del(&goos_root->heap, id);
		return;
	}
	goos_heap_set(&goos_root->heap, id, ev);
	if(ev < goos_root->wake_ms)
		goos_kick();
}

void goos_target_want(goos_target_t *t, int id)
{
	t->sched.want = 1;
	goos_table_rekey(t, id);
}

static int goos_same_sock(goos_target_t *t, str *sock)
{
	int len = (sock && sock->s) ? sock->len : 0;

	return t->sock.len == len
		   && (len == 0 || memcmp(t->sock.s, sock->s, len) == 0);
}

/* the URI index, under the lock: O(1) lookups by URI whatever the number
 * of targets (registrations of a whole pool at each reload, and
 * oos_is_active() in the request path) */
static void goos_idx_begin(void)
{
	__atomic_store_n(
			&goos_root->idx_seq, goos_root->idx_seq + 1, __ATOMIC_RELAXED);
	/* the odd sequence is visible before any change of the index */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void goos_idx_end(void)
{
	__atomic_store_n(
			&goos_root->idx_seq, goos_root->idx_seq + 1, __ATOMIC_RELEASE);
}

static void goos_idx_add(goos_target_t *t, int id)
{
	int *head = &goos_root->idx[t->hash & (GOOS_IDX_BUCKETS - 1)];

	goos_idx_begin();
	__atomic_store_n(&t->inext, *head, __ATOMIC_RELAXED);
	__atomic_store_n(head, id, __ATOMIC_RELAXED);
	goos_idx_end();
}

static void goos_idx_del(goos_target_t *t, int id)
{
	int *pp = &goos_root->idx[t->hash & (GOOS_IDX_BUCKETS - 1)];

	goos_idx_begin();
	for(; *pp >= 0; pp = &goos_tgt(*pp)->inext) {
		if(*pp == id) {
			__atomic_store_n(pp, t->inext, __ATOMIC_RELAXED);
			break;
		}
	}
	goos_idx_end();
}

static int goos_match(
		goos_target_t *t, uint32_t h, str *uri, str *sock, int match_sock)
{
	return t->refs > 0 && t->hash == h && t->uri.len == uri->len
		   && memcmp(t->uri_buf, uri->s, uri->len) == 0
		   && (!match_sock || goos_same_sock(t, sock));
}

/* under the lock: the lowest id with this URI (and socket) */
static int goos_find(str *uri, str *sock, int match_sock)
{
	uint32_t h = goos_hash(uri);
	int i, best = -1;

	for(i = goos_root->idx[h & (GOOS_IDX_BUCKETS - 1)]; i >= 0;
			i = goos_tgt(i)->inext) {
		if(goos_match(goos_tgt(i), h, uri, sock, match_sock)
				&& (best < 0 || i < best))
			best = i;
	}
	return best;
}

/* log the refusal and give it to the caller (err may be NULL) */
#define REG_REFUSE(fmt, ...)                                 \
	do {                                                     \
		LM_ERR(fmt "\n", __VA_ARGS__);                       \
		if(err != NULL && errlen > 0)                        \
			snprintf(err, (size_t)errlen, fmt, __VA_ARGS__); \
		return -1;                                           \
	} while(0)

int goos_table_register(str *uri, str *sock)
{
	return goos_table_register_err(uri, sock, NULL, 0);
}

int goos_table_register_err(str *uri, str *sock, char *err, int errlen)
{
	struct sip_uri puri;
	struct socket_info *si = NULL;
	goos_target_t *t;
	int id, i, proto;
	str s;

	if(goos_root == NULL && goos_table_init() < 0)
		REG_REFUSE("%s", "genesys_oos cannot create its target table");
	if(uri == NULL || uri->s == NULL || uri->len <= 0)
		REG_REFUSE("%s", "empty target URI");
	/* parse a copy: parse_uri keeps pointers into the buffer */
	if(uri->len >= GOOS_URI_MAX)
		REG_REFUSE("target URI [%.*s] is too long (max %d characters)",
				uri->len, uri->s, GOOS_URI_MAX - 1);
	if(parse_uri(uri->s, uri->len, &puri) < 0
			|| (puri.type != SIP_URI_T && puri.type != SIPS_URI_T)
			|| puri.host.len <= 0)
		REG_REFUSE("target URI [%.*s] is not a valid sip: or sips: URI",
				uri->len, uri->s);
	proto = puri.proto;
	if(puri.type == SIPS_URI_T)
		proto = PROTO_TLS;
	if(proto == PROTO_NONE)
		proto = PROTO_UDP;
	if(proto != PROTO_UDP && proto != PROTO_TCP && proto != PROTO_TLS)
		REG_REFUSE("target URI [%.*s]: only udp, tcp and tls transports can "
				   "be probed",
				uri->len, uri->s);
	if(sock != NULL && sock->s != NULL && sock->len > 0) {
		if(sock->len >= GOOS_SOCK_MAX)
			REG_REFUSE("send socket [%.*s] is too long", sock->len, sock->s);
		s = *sock;
		si = lookup_local_socket(&s);
		if(si == NULL)
			REG_REFUSE("target [%.*s]: send socket [%.*s] is not one of the "
					   "listen sockets (use proto:ip:port of a listen= line)",
					uri->len, uri->s, sock->len, sock->s);
	} else {
		sock = NULL;
	}

	lock_get(&goos_root->lock);
	id = goos_find(uri, sock, 1);
	if(id >= 0) {
		goos_tgt(id)->refs++;
		lock_release(&goos_root->lock);
		return id;
	}
	if(goos_root->live >= goos_root->max_targets) {
		lock_release(&goos_root->lock);
		REG_REFUSE("target [%.*s] refused: max_targets=%d reached (%d "
				   "targets registered; 0 = no limit)",
				uri->len, uri->s, goos_params.max_targets, goos_root->live);
	}
	/* a released slot (the last released first), else a new one: slots
	 * are reused before the table grows */
	i = goos_root->free_head >= 0 ? goos_root->free_head : goos_root->hiwater;
	if(i == goos_root->capacity && goos_table_grow() < 0) {
		lock_release(&goos_root->lock);
		REG_REFUSE("cannot register target [%.*s]: no shared memory to grow "
				   "the genesys_oos target table beyond %d targets (%lu bytes "
				   "each): raise the shared memory size (kamailio -m)",
				uri->len, uri->s, goos_root->capacity,
				(unsigned long)(sizeof(goos_target_t) + sizeof(goos_hent_t)
								+ sizeof(int)));
	}
	t = goos_tgt(i);
	if(i == goos_root->free_head)
		goos_root->free_head = t->fnext;
	memcpy(t->uri_buf, uri->s, uri->len);
	t->uri_buf[uri->len] = '\0';
	t->uri.s = t->uri_buf;
	t->uri.len = uri->len;
	t->sock.s = t->sock_buf;
	t->sock.len = 0;
	if(sock) {
		memcpy(t->sock_buf, sock->s, sock->len);
		t->sock_buf[sock->len] = '\0';
		t->sock.len = sock->len;
	}
	t->si = si;
	t->proto = proto;
	t->hash = goos_hash(uri);
	goos_health_reset(&t->health);
	t->forced = 0;
	t->remote = 0;
	t->remote_state = 0;
	t->started = 0;
	t->tc_off = 0;
	t->rpc_refs = 0;
	t->sched.pending = 0;
	t->sched.want = 0;
	t->done_seq = t->sched.seq;
	t->done_result = -1;
	t->since = time(NULL);
	t->last_code = 0;
	t->last_rtt_ms = -1;
	t->last_reason = GOOS_R_REPLY;
	t->probes = t->failures = t->timeouts = t->transport_errors = 0;
	t->late_replies = 0;
	/* lock-free readers (goos_find_nolock) validate a slot by its
	 * generation: publish the contents before the new generation, and the
	 * generation before the slot is in use */
	__atomic_store_n(&t->gen, t->gen + 1, __ATOMIC_RELEASE);
	__atomic_store_n(&t->state, GOOS_UNKNOWN, __ATOMIC_RELEASE);
	__atomic_store_n(&t->refs, 1, __ATOMIC_RELEASE);
	if(i >= goos_root->hiwater)
		__atomic_store_n(&goos_root->hiwater, i + 1, __ATOMIC_RELEASE);
	goos_root->live++;
	goos_idx_add(t, i);
	goos_table_rekey(t, i); /* the probe process starts it at once */
	lock_release(&goos_root->lock);
	LM_INFO("target %d [%.*s]%s%.*s registered\n", i, uri->len, uri->s,
			sock ? " via " : "", sock ? sock->len : 0, sock ? sock->s : "");
	return i;
}

goos_target_t *goos_table_lock_live(int id)
{
	goos_target_t *t;

	if(goos_root == NULL || id < 0
			|| id >= __atomic_load_n(&goos_root->capacity, __ATOMIC_ACQUIRE))
		return NULL;
	t = goos_tgt(id);
	lock_get(&goos_root->lock);
	if(t->refs <= 0) {
		lock_release(&goos_root->lock);
		return NULL;
	}
	return t;
}

int goos_table_release(int id)
{
	goos_target_t *t;

	if((t = goos_table_lock_live(id)) == NULL)
		return -1;
	t->refs--;
	if(t->refs == 0) {
		/* a reply still on its way must not land on the next user */
		t->sched.seq++;
		if(t->sched.pending)
			goos_root->npending--;
		t->sched.pending = 0;
		t->sched.want = 0;
		t->started = 0;
		goos_idx_del(t, id);
		goos_heap_del(&goos_root->heap, id);
		t->fnext = goos_root->free_head;
		goos_root->free_head = id;
		goos_root->live--;
		/* the probe process drops its check state of the slot when it
		 * sees the new generation */
		__atomic_store_n(&t->gen, t->gen + 1, __ATOMIC_RELEASE);
		__atomic_store_n(&t->state, GOOS_UNKNOWN, __ATOMIC_RELEASE);
		LM_INFO("target %d [%.*s] released\n", id, t->uri.len, t->uri.s);
	}
	lock_release(&goos_root->lock);
	return 0;
}

/* goos_find without the lock, for the request path: the index is walked
 * between two reads of its sequence (a seqlock: a change meanwhile means
 * walking it again), and a slot is compared between two reads of its
 * generation; ids never point outside the table (chunks are never freed
 * while Kamailio runs) */
static int goos_find_nolock(str *uri, str *sock, int match_sock)
{
	uint32_t h = goos_hash(uri), s1, s2, g1, g2;
	goos_target_t *t;
	int i, cap, steps, ok, best;

	for(;;) {
		s1 = __atomic_load_n(&goos_root->idx_seq, __ATOMIC_ACQUIRE);
		if(s1 & 1)
			continue; /* a registration is changing the index */
		cap = __atomic_load_n(&goos_root->capacity, __ATOMIC_ACQUIRE);
		best = -1;
		steps = 0;
		i = __atomic_load_n(
				&goos_root->idx[h & (GOOS_IDX_BUCKETS - 1)], __ATOMIC_RELAXED);
		while(i >= 0 && i < cap && steps++ < cap) {
			t = goos_tgt(i);
			g1 = __atomic_load_n(&t->gen, __ATOMIC_ACQUIRE);
			ok = __atomic_load_n(&t->refs, __ATOMIC_ACQUIRE) > 0 && t->hash == h
				 && t->uri.len == uri->len
				 && memcmp(t->uri_buf, uri->s, uri->len) == 0
				 && (!match_sock || goos_same_sock(t, sock));
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			g2 = __atomic_load_n(&t->gen, __ATOMIC_RELAXED);
			if(ok && g1 == g2 && (best < 0 || i < best))
				best = i;
			i = __atomic_load_n(&t->inext, __ATOMIC_RELAXED);
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&goos_root->idx_seq, __ATOMIC_RELAXED);
		if(s1 == s2)
			return best;
	}
}

int goos_table_lookup(str *uri)
{
	if(goos_root == NULL || uri == NULL || uri->s == NULL
			|| uri->len >= GOOS_URI_MAX)
		return -1;
	return goos_find_nolock(uri, NULL, 0);
}

int goos_table_lookup_sock(str *uri, str *sock)
{
	if(goos_root == NULL || uri == NULL || uri->s == NULL
			|| uri->len >= GOOS_URI_MAX)
		return -1;
	return goos_find_nolock(uri, sock, 1);
}

goos_state_t goos_table_state(int id)
{
	if(goos_root == NULL || id < 0
			|| id >= __atomic_load_n(&goos_root->capacity, __ATOMIC_ACQUIRE))
		return GOOS_UNKNOWN;
	return (goos_state_t)__atomic_load_n(
			&goos_tgt(id)->state, __ATOMIC_ACQUIRE);
}

int goos_table_want_probe(int id, int only_if_not_up)
{
	goos_target_t *t;
	int st;

	if((t = goos_table_lock_live(id)) == NULL)
		return -1;
	st = t->health.state;
	if(!only_if_not_up || st == GOOS_H_DOWN || st == GOOS_H_UNKNOWN)
		goos_target_want(t, id);
	lock_release(&goos_root->lock);
	return 0;
}

int goos_target_update(goos_target_t *t, int id, goos_reason_t reason, int code,
		goos_change_rec_t *rec)
{
	int old = t->state;
	int eff = t->forced	  ? t->forced
			  : t->remote ? t->remote_state
						  : t->health.state;

	if(eff == old)
		return 0;
	__atomic_store_n(&t->state, eff, __ATOMIC_RELEASE);
	t->since = time(NULL);
	t->last_reason = reason;
	memset(rec, 0, sizeof(*rec));
	rec->ch.id = id;
	memcpy(rec->uri_buf, t->uri.s, t->uri.len);
	rec->uri_buf[t->uri.len] = '\0';
	rec->ch.uri.s = rec->uri_buf;
	rec->ch.uri.len = t->uri.len;
	memcpy(rec->sock_buf, t->sock.s, t->sock.len);
	rec->sock_buf[t->sock.len] = '\0';
	rec->sock.s = rec->sock_buf;
	rec->sock.len = t->sock.len;
	rec->ch.old_state = (goos_state_t)old;
	rec->ch.new_state = (goos_state_t)eff;
	rec->ch.reason = reason;
	rec->ch.code = code;
	rec->rtt_ms = t->last_rtt_ms;
	return 1;
}
