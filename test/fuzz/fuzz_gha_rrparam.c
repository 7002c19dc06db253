/* libFuzzer: genesys_ha Record-Route parameter codec. The decoder reads the
 * "gha" parameter of the Route of any in-dialog request, and the DN comes
 * from any caller's From URI, so its input is attacker-controlled. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "genesys_ha/gha_rrparam.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[256], esc[3 * GHA_RR_VAL_MAX + 1], back[GHA_RR_VAL_MAX + 1];
	char pair[GHA_RR_VAL_MAX + 1], dn[GHA_RR_VAL_MAX + 1];
	str in, e, u;
	int n, m, dl;

	if(size > 4096)
		return 0;
	in.s = (char *)data;
	in.len = (int)size;
	/* decoding any input: bounded, never past `out` */
	n = gha_rr_decode(&in, out, sizeof(out));
	if(n > (int)sizeof(out))
		__builtin_trap();

	n = gha_rr_decode_value(&in, pair, dn, &dl);
	if(n > GHA_RR_VAL_MAX || dl < 0 || dl > GHA_RR_VAL_MAX || (n < 0 && dl))
		__builtin_trap();

	/* the user part of a URI: inside the input, never empty */
	if(gha_uri_user(in.s, in.len, &u) == 0
			&& (u.len <= 0 || u.s < in.s || u.s + u.len > in.s + in.len))
		__builtin_trap();

	/* escaping then decoding gives the original back */
	n = gha_rr_escape(&in, esc, sizeof(esc));
	if(n > 0) {
		e.s = esc;
		e.len = n;
		m = gha_rr_decode(&e, back, sizeof(back));
		if(m != (int)size || memcmp(back, data, size) != 0)
			__builtin_trap();
	}
	return 0;
}
