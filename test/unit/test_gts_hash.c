/* cmocka tests: genesys_tlssticky FNV-1a hash (gts_hash.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "genesys_tlssticky/gts_hash.h"

static void test_reference_values(void **state)
{
	(void)state;
	/* FNV-1a reference values */
	assert_int_equal(gts_hash(GTS_HASH_INIT, "", 0), 0x811c9dc5u);
	assert_int_equal(gts_hash(GTS_HASH_INIT, "a", 1), 0xe40c292cu);
	assert_int_equal(gts_hash(GTS_HASH_INIT, "foobar", 6), 0xbf9cf968u);
}

static void test_continues(void **state)
{
	uint32_t h;
	(void)state;
	/* hashing in pieces is hashing the concatenation: the table hashes
	 * "aor\nuri" and the transaction key "callid cseq" this way */
	h = gts_hash(GTS_HASH_INIT, "foo", 3);
	h = gts_hash(h, "bar", 3);
	assert_int_equal(h, gts_hash(GTS_HASH_INIT, "foobar", 6));
	/* bytes above 0x7f hash as unsigned */
	assert_int_not_equal(gts_hash(GTS_HASH_INIT, "\xff", 1),
			gts_hash(GTS_HASH_INIT, "\x7f", 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_reference_values),
			cmocka_unit_test(test_continues),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
