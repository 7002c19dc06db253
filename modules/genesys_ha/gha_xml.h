/*
 * genesys_ha module: pool file loader (libxml2, XSD-validated)
 *
 * Copyright (C) 2026 kamailio-genesys contributors
 *
 * This file is part of kamailio-genesys, modules for Kamailio.
 * Licensed under the GNU General Public License, version 2 or later.
 */

/*!
 * \file
 * \brief genesys_ha :: read the pool file into a draft: well-formedness,
 * no DOCTYPE, no network, XSD validation, line numbers in every error
 *
 * The caller runs xmlInitParser() once (mod_init); this file never calls
 * xmlCleanupParser().
 */

#ifndef _GHA_XML_H_
#define _GHA_XML_H_

#include "gha_pool.h"

/*! a pool file larger than this is refused (bytes): 100,000 elements
 * (max_pool_elements' default) of some 300 bytes each fit */
#define GHA_XML_FILE_MAX (64 * 1024 * 1024)

/*! read and validate 'file' against the schema given as a path (xsd_path)
 * or in memory (xsd_buf/xsd_len); fills d (caller frees with
 * gha_draft_free).  The file must be a regular file (a FIFO, directory
 * or device is refused without blocking) of at most GHA_XML_FILE_MAX bytes;
 * a file with more than max_elements (> 0) <sipserver>, <featureserver>
 * and <proxy> elements is refused before the schema validation.  Returns
 * GHA_LOAD_OK or GHA_LOAD_CONFIG with "file:line: element <x>: reason" in
 * err (the first error libxml2 reports). */
gha_load_rc_t gha_xml_read(const char *file, const char *xsd_path,
		const char *xsd_buf, int xsd_len, int max_elements, gha_draft_t *d,
		char *err, int errlen);

/*! gha_xml_read() + gha_pool_build() */
gha_load_rc_t gha_xml_load(const char *file, const char *xsd_path,
		const char *xsd_buf, int xsd_len, const gha_build_opts_t *o,
		const gha_alloc_t *a, gha_pool_t **out, char *err, int errlen);

#endif
