/* libFuzzer: genesys_ha URI and host:port parsers (pool file values and
 * Request-URIs compared against the pool) */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "genesys_ha/gha_pool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gha_uri_t u;
	str host;
	int port;
	char err[128];

	if(size > 4096)
		return 0;
	memset(&u, 0, sizeof(u));
	if(gha_uri_parse((const char *)data, (int)size, &u, err, sizeof(err)) == 0) {
		/* parsed pieces point into the input */
		if(u.host.len < 0 || u.host.s < (const char *)data
				|| u.host.s + u.host.len > (const char *)data + size)
			__builtin_trap();
		if(u.port < 0 || u.port > 65535)
			__builtin_trap();
	}
	if(gha_hostport_parse((const char *)data, (int)size, &host, &port, err,
			   sizeof(err))
			== 0) {
		if(host.len < 0 || host.s < (const char *)data
				|| host.s + host.len > (const char *)data + size)
			__builtin_trap();
		if(port < 0 || port > 65535)
			__builtin_trap();
	}
	return 0;
}
