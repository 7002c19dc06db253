/*
 * kamailio-genesys: string hashing shared by the modules (pure C)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief FNV-1a over bytes, and murmur3's 32-bit finalizer for tables that
 * index by the low bits (FNV's low bits alone cluster for keys that differ
 * only in their last characters: SIPS_1, SIPS_2 ...)
 */

#ifndef _KG_HASH_H_
#define _KG_HASH_H_

#include <stddef.h>
#include <stdint.h>

#define KG_FNV_SEED 2166136261u

/*! FNV-1a of n bytes, continuing from h (KG_FNV_SEED to start) */
static inline uint32_t kg_fnv1a(uint32_t h, const void *p, size_t n)
{
	const unsigned char *c = (const unsigned char *)p;
	size_t i;

	for(i = 0; i < n; i++) {
		h ^= c[i];
		h *= 16777619u;
	}
	return h;
}

/*! murmur3's finalizer: every input bit reaches every output bit */
static inline uint32_t kg_hash_mix(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

#endif
