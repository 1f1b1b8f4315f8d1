/* test_ids.c - unit tests for common/ids: UUIDv4 shape, uniqueness, and id_valid. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdlib.h>
#include <string.h>

#include "common/ids.h"

#define N_UNIQUE 10000

static const char *const prefixes[] = {"quote", "pay", "evt"};

#define N_PREFIXES (sizeof(prefixes) / sizeof(prefixes[0]))

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Asserts id is prefix + "_" + a lower-case 8-4-4-4-12 UUID with version 4 and
 * the RFC 4122 variant. */
static void check_shape(const char *prefix, const char *id)
{
	size_t plen = strlen(prefix), i;
	const char *u;

	assert_int_equal(strlen(id), plen + 1 + 36);
	assert_memory_equal(id, prefix, plen);
	assert_int_equal(id[plen], '_');
	u = id + plen + 1;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(u[i], '-');
		else
			assert_true(is_lower_hex(u[i]));
	}
	assert_int_equal(u[14], '4');
	assert_non_null(strchr("89ab", u[19]));
}

static void test_format(void **state)
{
	char id[ID_MAX];
	size_t i;
	int n;

	(void)state;
	for (i = 0; i < N_PREFIXES; i++) {
		for (n = 0; n < 200; n++) {
			assert_int_equal(id_new(prefixes[i], id), 0);
			check_shape(prefixes[i], id);
			assert_true(id_valid(prefixes[i], id));
		}
	}
	assert_int_equal(id_new("quote", id), 0);
	assert_int_equal(strlen(id), 42); /* "quote_" + 36 */
	assert_int_equal(id_new("pay", id), 0);
	assert_int_equal(strlen(id), 40);
	assert_int_equal(id_new("evt", id), 0);
	assert_int_equal(strlen(id), 40);
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_unique(void **state)
{
	char(*ids)[ID_MAX] = calloc(N_UNIQUE, sizeof(*ids));
	size_t i;

	(void)state;
	assert_non_null(ids);
	for (i = 0; i < N_UNIQUE; i++)
		assert_int_equal(id_new("pay", ids[i]), 0);
	qsort(ids, N_UNIQUE, sizeof(*ids), cmp_id);
	for (i = 1; i < N_UNIQUE; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
	free(ids);
}

/* Every hex position except the fixed version nibble varies, so no bit is stuck. */
static void test_randomness_spread(void **state)
{
	char id[ID_MAX], first[ID_MAX];
	bool differs[36] = {false};
	int n, i;

	(void)state;
	assert_int_equal(id_new("evt", first), 0);
	for (n = 0; n < 1000; n++) {
		assert_int_equal(id_new("evt", id), 0);
		for (i = 0; i < 36; i++)
			if (id[4 + i] != first[4 + i])
				differs[i] = true;
	}
	for (i = 0; i < 36; i++) {
		bool fixed = i == 8 || i == 13 || i == 14 || i == 18 || i == 23;

		assert_int_equal(differs[i], !fixed);
	}
}

static void test_new_bad_prefix(void **state)
{
	char id[ID_MAX];
	char long_prefix[ID_MAX];

	(void)state;
	memset(long_prefix, 'a', sizeof(long_prefix) - 1);
	long_prefix[sizeof(long_prefix) - 1] = '\0';

	memset(id, 'x', sizeof(id));
	assert_int_equal(id_new(NULL, id), -1);
	assert_string_equal(id, "");
	assert_int_equal(id_new("", id), -1);
	assert_int_equal(id_new("PAY", id), -1);
	assert_int_equal(id_new("pay_", id), -1);
	assert_int_equal(id_new("p y", id), -1);
	assert_int_equal(id_new(long_prefix, id), -1);
	assert_string_equal(id, "");

	/* The longest prefix that fits: 26 + 1 + 36 + NUL = 64. */
	long_prefix[ID_MAX - 1 - 36 - 1] = '\0';
	assert_int_equal(id_new(long_prefix, id), 0);
	check_shape(long_prefix, id);
	long_prefix[ID_MAX - 1 - 36 - 1] = 'a';
	long_prefix[ID_MAX - 1 - 36] = '\0';
	assert_int_equal(id_new(long_prefix, id), -1);
}

static void test_random_bytes(void **state)
{
	unsigned char a[32], b[32], zero[32];

	(void)state;
	memset(zero, 0, sizeof(zero));
	assert_int_equal(id_random_bytes(a, sizeof(a)), 0);
	assert_int_equal(id_random_bytes(b, sizeof(b)), 0);
	/* 2^-256 chances of a false failure. */
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(id_random_bytes(a, 0), 0);
	assert_int_equal(id_random_bytes(NULL, 0), 0);
	assert_int_equal(id_random_bytes(NULL, 1), -1);
}

static void test_valid_accepts(void **state)
{
	char id[ID_MAX];

	(void)state;
	assert_true(id_valid("pay", "pay_123e4567-e89b-42d3-a456-426614174000"));
	assert_true(id_valid("quote", "quote_00000000-0000-4000-8000-000000000000"));
	assert_true(id_valid("evt", "evt_ffffffff-ffff-4fff-bfff-ffffffffffff"));
	assert_int_equal(id_new("quote", id), 0);
	assert_true(id_valid("quote", id));
}

static void test_valid_rejects(void **state)
{
	static const char *const bad[] = {
		/* wrong prefix */
		"quote_123e4567-e89b-42d3-a456-426614174000",
		"evt_123e4567-e89b-42d3-a456-426614174000",
		"payx_123e4567-e89b-42d3-a456-426614174000",
		"Pay_123e4567-e89b-42d3-a456-426614174000",
		"pay-123e4567-e89b-42d3-a456-426614174000",
		"pay123e4567-e89b-42d3-a456-426614174000",
		"_123e4567-e89b-42d3-a456-426614174000",
		"123e4567-e89b-42d3-a456-426614174000",
		" pay_123e4567-e89b-42d3-a456-426614174000",
		/* upper case */
		"pay_123E4567-E89B-42D3-A456-426614174000",
		"pay_123e4567-e89b-42d3-a456-42661417400A",
		/* wrong length */
		"pay_123e4567-e89b-42d3-a456-42661417400",
		"pay_123e4567-e89b-42d3-a456-4266141740000",
		"pay_123e4567-e89b-42d3-a456-426614174000 ",
		"pay_123e4567-e89b-42d3-a456-426614174000\n",
		"pay_",
		"pay",
		"",
		/* missing or misplaced dashes */
		"pay_123e4567e89b42d3a456426614174000",
		"pay_123e4567ae89b-42d3-a456-426614174000",
		"pay_123e456-7e89b-42d3-a456-426614174000",
		"pay_123e4567-e89b-42d3-a4564-26614174000",
		"pay_{123e4567-e89b-42d3-a456-42661417400}",
		/* non-hex */
		"pay_123g4567-e89b-42d3-a456-426614174000",
		"pay_123e4567-e89b-42d3-a456-42661417400z",
		"pay_123e4567-e89b-42d3-a456-4266141740 0",
		"pay_123e4567-e89b-42d3-a456_426614174000",
	};
	char id[ID_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (id_valid("pay", bad[i]))
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_false(id_valid("pay", NULL));
	assert_false(id_valid(NULL, "pay_123e4567-e89b-42d3-a456-426614174000"));
	assert_false(id_valid("", "_123e4567-e89b-42d3-a456-426614174000"));
	/* A real id under another resource's prefix. */
	assert_int_equal(id_new("pay", id), 0);
	assert_false(id_valid("quote", id));
	assert_false(id_valid("evt", id));
	assert_false(id_valid("pa", id));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_unique),
		cmocka_unit_test(test_randomness_spread),
		cmocka_unit_test(test_new_bad_prefix),
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_valid_accepts),
		cmocka_unit_test(test_valid_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
