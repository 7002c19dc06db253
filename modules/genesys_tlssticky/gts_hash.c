/*
 * genesys_tlssticky: FNV-1a string hash (pure C)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

#include "common/kg_hash.h"
#include "gts_hash.h"

uint32_t gts_hash(uint32_t h, const char *s, size_t len)
{
	return kg_fnv1a(h, s, len);
}
