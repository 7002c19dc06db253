/* libFuzzer: genesys_tlssticky parameter helpers (attacker-controlled: the
 * URI and header parameters of Contacts in REGISTERs and 2xx replies, and
 * of every Request-URI) */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "genesys_tlssticky/gts_contact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	const char *v = NULL;
	size_t vl = 0;
	char out[1024], out2[1024];
	int n, m;

	if(gts_param_find(s, size, "gts", 3, &v, &vl)) {
		/* the value lies inside the input */
		if(v < s || v + vl > s + size)
			__builtin_trap();
	}
	n = gts_param_strip(s, size, "expires", 7, out, sizeof(out));
	if(n >= 0) {
		if((size_t)n >= sizeof(out) || out[n] != '\0')
			__builtin_trap();
		/* nothing named expires is left, and stripping is idempotent */
		if(gts_param_find(out, (size_t)n, "expires", 7, &v, &vl))
			__builtin_trap();
		m = gts_param_strip(out, (size_t)n, "expires", 7, out2, sizeof(out2));
		if(m != n || memcmp(out, out2, (size_t)n) != 0)
			__builtin_trap();
	}
	gts_contact_restore(out, sizeof(out), s, size > 64 ? 64 : size, s, size,
			"", 0, 5);
	gts_aor_key(out, sizeof(out), s, size / 2, s + size / 2, size - size / 2);
	return 0;
}
