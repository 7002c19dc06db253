/*
 * genesys_tlssticky: FNV-1a string hash (pure C)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

#include "gts_hash.h"

uint32_t gts_hash(uint32_t h, const char *s, size_t len)
{
	size_t i;
	for(i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}
