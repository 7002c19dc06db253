/* libFuzzer: genesys_ha Record-Route parameter decoder (attacker-controlled:
 * the pair id and DN come back in the Route header of in-dialog requests) */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "genesys_ha/gha_rrparam.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[GHA_RR_VAL_MAX + 1], again[3 * GHA_RR_VAL_MAX + 1];
	char back[GHA_RR_VAL_MAX + 1];
	str in, dec, enc;
	int n, m, k;

	in.s = (char *)data;
	in.len = (int)size;
	n = gha_rr_decode(&in, out, sizeof(out) - 1);
	if(n < 0)
		return 0;
	if(n == 0 || n > GHA_RR_VAL_MAX)
		__builtin_trap();
	/* what decodes must be exactly what the encoder produces */
	dec.s = out;
	dec.len = n;
	m = gha_rr_escape(&dec, again, sizeof(again));
	if(m != (int)size || memcmp(again, data, size) != 0)
		__builtin_trap();
	enc.s = again;
	enc.len = m;
	k = gha_rr_decode(&enc, back, sizeof(back) - 1);
	if(k != n || memcmp(back, out, (size_t)n) != 0)
		__builtin_trap();
	return 0;
}
