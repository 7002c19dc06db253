/* libFuzzer: genesys_ha URI and host:port parsers (pool file values and
 * Request-URIs compared against the pool), and the snapshot's hash lookups
 * with the input as pair name and Request-URI host */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "genesys_ha/gha_pool.h"
#include "../unit/kg_test.h"

/* a pool of 40 pairs (IPv4 and IPv6, udp/tcp/tls, default ports), built
 * once */
static gha_pool_t *pool(void)
{
	static gha_pool_t *p;
	static const gha_alloc_t a = {t_alloc, t_free, NULL};
	gha_build_opts_t o;
	gha_draft_t d;
	gha_draft_pair_t *x;
	char buf[96], err[256];
	int i;

	if(p)
		return p;
	memset(&d, 0, sizeof(d));
	memset(&o, 0, sizeof(o));
	d.file = strdup("fuzz.xml");
	for(i = 0; i < 40; i++) {
		x = gha_draft_add_pair(&d);
		snprintf(buf, sizeof(buf), "P%d", i);
		x->name = strdup(buf);
		if(i % 3)
			snprintf(buf, sizeof(buf), "sip:10.0.%d.1:%d", i, 5060 + i);
		else
			snprintf(buf, sizeof(buf), "sips:10.0.%d.1", i);
		x->uri[0] = strdup(buf);
		snprintf(buf, sizeof(buf), "sip:[2001:db8::%x]:5060;transport=tcp",
				i + 1);
		x->uri[1] = strdup(buf);
	}
	if(gha_pool_build(&d, &o, &a, &p, err, sizeof(err)) != GHA_LOAD_OK)
		__builtin_trap();
	gha_draft_free(&d);
	return p;
}

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
	{
		gha_pool_t *p = pool();
		str h = {(char *)data, (int)size};
		int m = -1, pi;
		pi = gha_pool_find_pair(p, (const char *)data, (int)size);
		if(pi >= p->npairs)
			__builtin_trap();
		pi = gha_pool_find_member_host(
				p, &h, size ? 5060 + data[0] % 64 : 0, &m);
		if(pi >= p->npairs || (pi >= 0 && (m < 0 || m > 1)))
			__builtin_trap();
		pi = gha_pool_find_member_host(p, &h, 0, &m);
		if(pi >= p->npairs || (pi >= 0 && (m < 0 || m > 1)))
			__builtin_trap();
	}
	return 0;
}
