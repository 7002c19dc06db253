/*
 * genesys_tlssticky: FNV-1a string hash (pure C)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 *
 * The binding table's bucket and binding ids, and the REGISTER transaction
 * key, hash with it.  The values end up in flow tokens (aorh, bid): every
 * proxy of a pool must compute the same ones, so the function never
 * changes.
 */

#ifndef GTS_HASH_H
#define GTS_HASH_H

#include <stddef.h>
#include <stdint.h>

/* 32-bit FNV-1a over a byte string, continuing from h (start with
 * GTS_HASH_INIT) */
#define GTS_HASH_INIT 2166136261u
uint32_t gts_hash(uint32_t h, const char *s, size_t len);

#endif
