/*
 * genesys_ha module: runtime state slots (pure logic, no Kamailio runtime)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: runtime state outside the pool snapshots
 *
 * The runtime state of a pair (active member, member and pair states, last
 * switchover, verification, counters) and of a feature server lives in a
 * slot of one table in shm, not in the immutable snapshot.  A slot is keyed
 * by what it is the state of: a pair by its name and its two members'
 * destinations, a feature server by its destination.  A reload attaches the
 * new snapshot's pairs to their slots (load time, never per request): a
 * pair that is still the same keeps its slot, so a switchover written by a
 * process that still holds the previous snapshot lands in the state the new
 * snapshot reads, and is never lost.  A pair whose members changed gets a
 * new slot that starts from the probe states (and keeps the active member
 * when it is still a member), as before.  A slot is released when the last
 * snapshot referring to it is freed.
 *
 * Slots never move: the table grows by chunks; a hash of the keys (fixed
 * number of buckets, chained through the slots) finds a key in O(1).  All
 * table changes are made by the caller under one lock (the module's state
 * lock); reading and writing a slot's state is the caller's business.
 */

#ifndef _GHA_SLOTS_H_
#define _GHA_SLOTS_H_

#include <stdint.h>
#include "gha_pool.h"

#define GHA_SLOT_KEY_MAX 400
#define GHA_SLOT_CHUNK 64	 /*!< slots per chunk */
#define GHA_SLOT_CHUNKS 4096 /*!< chunks at most (262144 slots) */
#define GHA_SLOT_BUCKETS 1024

enum gha_slot_kind
{
	GHA_SLOT_FREE = 0,
	GHA_SLOT_PAIR = 1,
	GHA_SLOT_FS = 2
};

typedef struct gha_slot
{
	/* ---- runtime state (the caller's locking) ---- */
	gha_pair_state_t st;	  /*!< pairs: under the module's state lock */
	unsigned long n_new;	  /*!< new dialogs routed (atomic increments) */
	unsigned long n_rejected; /*!< new dialogs refused (atomic increments) */
	unsigned long n_indialog; /*!< in-dialog requests routed (atomic) */
	unsigned long n_failover; /*!< failure_route retargets (atomic) */
	unsigned long n_grace;	  /*!< requests routed in the down grace (atomic) */
	int fs_state;			  /*!< feature servers: gha_mstate_t */
	long fs_since;
	unsigned int gen;	/*!< generation of the last snapshot attached */
	unsigned int epoch; /*!< the last gha_slots_attach() that took it */
	/* pairs, pool-wide decisions (gha_dmq.c): epoch and origin of the last
	 * switchover decision known, under the module's state lock */
	unsigned long dmq_epoch;
	char dmq_origin[65];
	/* ---- identity (the table's) ---- */
	int kind; /*!< enum gha_slot_kind */
	int refs; /*!< snapshots referring to the slot */
	int idx;  /*!< own index */
	int next; /*!< next in the bucket chain or the free list, -1 */
	uint32_t hash;
	int key_len;
	char key[GHA_SLOT_KEY_MAX];
} gha_slot_t;

typedef struct gha_slots
{
	int nchunks;
	int nslots;	   /*!< capacity: nchunks * GHA_SLOT_CHUNK */
	int used;	   /*!< slots with refs > 0 */
	int free_head; /*!< free list, -1 empty */
	unsigned int epoch; /*!< gha_slots_attach() calls */
	int bucket[GHA_SLOT_BUCKETS];
	gha_slot_t *chunk[GHA_SLOT_CHUNKS];
} gha_slots_t;

/*! an empty table (no chunk yet) */
void gha_slots_init(gha_slots_t *t);
/*! free the chunks */
void gha_slots_destroy(gha_slots_t *t, const gha_alloc_t *a);

/*! make sure n more slots can be taken; 0 ok, -1 out of memory */
int gha_slots_reserve(gha_slots_t *t, int n, const gha_alloc_t *a);

/*! the key of a pair (name, primary dst, backup dst) or of a feature
 * server (its dst); the length, or -1 when it does not fit */
int gha_slots_pair_key(const gha_pair_t *pr, char *buf, int size);
int gha_slots_fs_key(const gha_fs_t *fs, char *buf, int size);

/*! take a reference on the slot of (kind, key); *created = 1 when the
 * slot was free (its runtime part zeroed); NULL when the table is full
 * (reserve first) or the key too long */
gha_slot_t *gha_slots_get(
		gha_slots_t *t, int kind, const char *key, int len, int *created);
/*! drop a reference; the slot is free again at the last one */
void gha_slots_put(gha_slots_t *t, gha_slot_t *s);
/*! slot by index (tests, RPC) or NULL */
gha_slot_t *gha_slots_at(gha_slots_t *t, int idx);

/*!
 * Attach every pair and feature server of np (a new snapshot, not
 * published yet) to its slot, after gha_slots_reserve(t, npairs + nfs).
 * old: the snapshot published until now, or NULL.  A slot that old uses
 * for the same key is shared as is (known by the generation of the last
 * snapshot attached to it, set to np->generation on success).  Any other
 * slot starts anew: a pair from the probe states ms[2 * i + k] (member k of
 * pair i), or, for a member that old had in a pair of the same name, its
 * state there and its being active; a feature server from fss[i].
 * O(1) per pair and feature server (O(old's pairs) for a pair whose
 * members changed).  Returns 0, or -1 (table full: nothing attached).
 */
int gha_slots_attach(gha_slots_t *t, gha_pool_t *np, const gha_pool_t *old,
		const int *ms, const int *fss, long now);

/*! drop the references of p's pairs and feature servers (p is freed) */
void gha_slots_detach(gha_slots_t *t, gha_pool_t *p);

#endif
