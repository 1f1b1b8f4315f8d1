/* test_ratelimit.c - unit tests for services/api/ratelimit: the token
 * bucket's arithmetic (burst, refill, retry-after, a clock going back, long
 * idle spells) and the table of buckets. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include "app.h"
#include "ratelimit.h"

#define MICRO 1000000LL

/* A full bucket of burst 3 at 1 request/s admits 3, then says 1 s. */
static void test_burst_then_denied(void **state)
{
	(void)state;
	int64_t tok = 3 * MICRO;
	uint64_t last = 1000;
	for (int i = 0; i < 3; i++)
		assert_int_equal(ratelimit_refill_take(&tok, &last, 1000, 1, 3), 0);
	assert_int_equal(tok, 0);
	assert_int_equal(ratelimit_refill_take(&tok, &last, 1000, 1, 3), 1);
	assert_int_equal(tok, 0); /* a refusal takes nothing */
}

/* Refill at rps tokens per second, to the microsecond. */
static void test_refill(void **state)
{
	(void)state;
	int64_t tok = 0;
	uint64_t last = 5000000;
	/* 10/s: a token every 100 ms. 99.999 ms is not enough. */
	assert_int_equal(ratelimit_refill_take(&tok, &last, 5000000 + 99999, 10, 5), 1);
	assert_int_equal(tok, 999990);
	assert_int_equal(last, 5000000 + 99999);
	assert_int_equal(ratelimit_refill_take(&tok, &last, 5000000 + 100000, 10, 5), 0);
	assert_int_equal(tok, 0);
	/* Half a second at 10/s: 5 tokens, the burst. */
	assert_int_equal(ratelimit_refill_take(&tok, &last, 5600000, 10, 5), 0);
	assert_int_equal(tok, 4 * MICRO);
}

/* Never above the burst, however long the bucket sat idle. */
static void test_capped_at_burst(void **state)
{
	(void)state;
	int64_t tok = 2 * MICRO;
	uint64_t last = 0;
	assert_int_equal(ratelimit_refill_take(&tok, &last, 3600ULL * MICRO, 100, 2), 0);
	assert_int_equal(tok, 1 * MICRO);
	tok = 0;
	assert_int_equal(ratelimit_refill_take(&tok, &last, UINT64_MAX / 2, 1000000, 7), 0);
	assert_int_equal(tok, 6 * MICRO);
}

/* A clock reading older than the last one refills nothing and does not move
 * the bucket's time back (issue 13: it once wrapped to a huge idle time). */
static void test_clock_going_back(void **state)
{
	(void)state;
	int64_t tok = 0;
	uint64_t last = 10 * MICRO;
	assert_int_equal(ratelimit_refill_take(&tok, &last, 9 * MICRO, 1, 100), 1);
	assert_int_equal(tok, 0);
	assert_int_equal(last, 10 * MICRO);
}

/* Retry-after is whole seconds, rounded up, at least 1. */
static void test_retry_after(void **state)
{
	(void)state;
	int64_t tok = 0;
	uint64_t last = 0;
	/* 1 request per second, empty: 1 s. */
	assert_int_equal(ratelimit_refill_take(&tok, &last, 0, 1, 1), 1);
	/* 1000/s: a token is 1 ms away, still 1 s (the header's unit). */
	assert_int_equal(ratelimit_refill_take(&tok, &last, 0, 1000, 1), 1);
	/* A quarter token at 1/s... */
	tok = MICRO / 4;
	assert_int_equal(ratelimit_refill_take(&tok, &last, 0, 1, 1), 1);
}

/* The table: one bucket per key, full on first use, the same principal every
 * time. */
static void test_table(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(1, 2);
	assert_non_null(rl);
	int ra = -1;
	struct principal *a = ratelimit_take(rl, "key_a", &ra);
	assert_non_null(a);
	assert_string_equal(a->key_id, "key_a");
	assert_int_equal(ra, 0);
	assert_ptr_equal(ratelimit_take(rl, "key_a", &ra), a);
	assert_int_equal(ra, 0);
	assert_ptr_equal(ratelimit_take(rl, "key_a", &ra), a);
	assert_int_equal(ra, 1);
	/* Another key has its own bucket. */
	struct principal *b = ratelimit_principal(rl, "key_b");
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_ptr_equal(ratelimit_take(rl, "key_b", &ra), b);
	assert_int_equal(ra, 0);
	ratelimit_free(rl);
	ratelimit_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_denied), cmocka_unit_test(test_refill),
		cmocka_unit_test(test_capped_at_burst),	  cmocka_unit_test(test_clock_going_back),
		cmocka_unit_test(test_retry_after),	  cmocka_unit_test(test_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
