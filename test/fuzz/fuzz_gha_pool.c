/* libFuzzer: genesys_ha SIP URI and host:port parsers (pool file values;
 * the same code must never crash on any input) */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "genesys_ha/gha_pool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gha_uri_t u;
	char err[256];
	str h;
	int port;
	const char *s = (const char *)data;

	if(size > 4096)
		return 0;
	if(gha_uri_parse(s, (int)size, &u, err, sizeof(err)) == 0) {
		/* a parsed URI points inside the input, with a sane port */
		if(u.host.s < s || u.host.s + u.host.len > s + size || u.host.len <= 0)
			__builtin_trap();
		if(u.port < 0 || u.port > 65535)
			__builtin_trap();
	}
	if(gha_hostport_parse(s, (int)size, &h, &port, err, sizeof(err)) == 0) {
		if(port < 1 || port > 65535 || h.len <= 0)
			__builtin_trap();
	}
	return 0;
}
