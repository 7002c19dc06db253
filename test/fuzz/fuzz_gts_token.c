/* libFuzzer: genesys_tlssticky flow token decoder (attacker-controlled: it
 * arrives in the Request-URI of any request sent to the proxy) */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "genesys_tlssticky/gts_token.h"

static const unsigned char key[] = "fuzzing-secret-0123456789abcdef";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gts_flow_t f;
	unsigned char raw[512];
	char again[GTS_TOKEN_MAX + 1];

	memset(&f, 0, sizeof(f));
	if(gts_token_decode((const char *)data, size, key, sizeof(key) - 1, &f)
			== GTS_TOK_OK) {
		/* a token that verifies must re-encode to a token that verifies */
		int n = gts_token_encode(&f, key, sizeof(key) - 1, again, sizeof(again));
		if(n > 0) {
			gts_flow_t g;
			if(gts_token_decode(again, (size_t)n, key, sizeof(key) - 1, &g)
					!= GTS_TOK_OK)
				__builtin_trap();
		}
	}
	gts_b64url_decode((const char *)data, size, raw, sizeof(raw));

	/* round trip: any flow encodes to a token that decodes to the same flow */
	if(size >= sizeof(gts_flow_t)) {
		gts_flow_t in, out;
		int n;
		memcpy(&in, data, sizeof(in));
		in.src.af = (in.src.af & 1) ? 6 : 4;
		in.local.af = (in.local.af & 1) ? 6 : 4;
		in.relay.af = (uint8_t)(in.relay.af % 3 == 0 ? 0
										: in.relay.af % 3 == 1 ? 4 : 6);
		n = gts_token_encode(&in, key, sizeof(key) - 1, again, sizeof(again));
		if(n > 0) {
			memset(&out, 0, sizeof(out));
			if(gts_token_decode(again, (size_t)n, key, sizeof(key) - 1, &out)
					!= GTS_TOK_OK)
				__builtin_trap();
			if(!gts_flow_same_conn(&in, &out) || in.bid != out.bid
					|| in.gen != out.gen || in.relay.af != out.relay.af
					|| (in.relay.af && !gts_addr_eq(&in.relay, &out.relay)))
				__builtin_trap();
		}
	}
	return 0;
}
