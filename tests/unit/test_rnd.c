/* test_rnd.c - unit tests for common/rnd: splitmix64's reference values,
 * bounds, rough uniformity, and threads that do not share a sequence. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <pthread.h>

#include "common/rnd.h"

/* splitmix64 seeded with 1234567 (the reference sequence). */
static void test_reference(void **state)
{
	(void)state;
	rnd_seed(1234567);
	assert_true(rnd_u64() == 6457827717110365317ULL);
	assert_true(rnd_u64() == 3203168211198807973ULL);
	assert_true(rnd_u64() == 9817491932198370423ULL);
}

static void test_below(void **state)
{
	(void)state;
	rnd_seed(42);
	assert_true(rnd_below(0) == 0);
	assert_true(rnd_below(1) == 0);
	unsigned counts[6] = {0};
	for (int i = 0; i < 60000; i++) {
		uint64_t v = rnd_below(6);
		assert_true(v < 6);
		counts[v]++;
	}
	/* Each face 10000 +- 5 %: far wider than chance (sd ~ 91). */
	for (int i = 0; i < 6; i++)
		assert_true(counts[i] > 9500 && counts[i] < 10500);
	for (int i = 0; i < 1000; i++)
		assert_true(rnd_below(UINT64_MAX / 3 * 2) < UINT64_MAX / 3 * 2);
}

static void *draw(void *out)
{
	*(uint64_t *)out = rnd_u64();
	return NULL;
}

/* Unseeded threads draw from the CSPRNG-seeded state: different values. */
static void test_threads_differ(void **state)
{
	(void)state;
	uint64_t a = 0, b = 0;
	pthread_t t1, t2;
	assert_int_equal(pthread_create(&t1, NULL, draw, &a), 0);
	assert_int_equal(pthread_create(&t2, NULL, draw, &b), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	assert_true(a != b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference),
		cmocka_unit_test(test_below),
		cmocka_unit_test(test_threads_differ),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
