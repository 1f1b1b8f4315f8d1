/* test_summary.c - the pure parts of GET /v1/summary: a consumer group's
 * counts from an XINFO GROUPS reply (Redis 7 and 6), market freshness from
 * the snapshot hash, the delivery success rate. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "replies.h"

/* One group as Redis 7 describes it; lag NULL = nil, omit_lag = Redis 6. */
static redisReply *group(const char *name, long long consumers, long long pending, redisReply *lag,
			 bool omit_lag)
{
	redisReply *kv[12];
	size_t n = 0;
	kv[n++] = r_str("name");
	kv[n++] = r_str(name);
	kv[n++] = r_str("consumers");
	kv[n++] = r_int(consumers);
	kv[n++] = r_str("pending");
	kv[n++] = r_int(pending);
	kv[n++] = r_str("last-delivered-id");
	kv[n++] = r_str("1700000000000-0");
	if (!omit_lag) {
		kv[n++] = r_str("entries-read");
		kv[n++] = r_int(7);
		kv[n++] = r_str("lag");
		kv[n++] = lag ? lag : r_nil();
	}
	return r_array(n, kv);
}

static void test_xinfo_picks_the_named_group(void **state)
{
	(void)state;
	redisReply *g[2] = {group("audit", 9, 99, r_int(999), false),
			    group("workers", 2, 5, r_int(12), false)};
	redisReply *groups = r_array(2, g);
	struct queue_counts q;
	summary_xinfo_group(groups, "workers", &q);
	assert_true(q.found);
	assert_int_equal(q.consumers, 2);
	assert_int_equal(q.in_flight, 5);
	assert_int_equal(q.lag, 12);
	freeReplyObject(groups);
}

static void test_xinfo_lag_unknown(void **state)
{
	(void)state;
	/* nil lag (entries deleted or trimmed past the group), and no lag at
	 * all (Redis 6): depth unknown, -1, the rest still read. */
	redisReply *g1[1] = {group("workers", 1, 3, NULL, false)};
	redisReply *g2[1] = {group("workers", 1, 4, NULL, true)};
	redisReply *a = r_array(1, g1), *b = r_array(1, g2);
	struct queue_counts q;
	summary_xinfo_group(a, "workers", &q);
	assert_true(q.found);
	assert_int_equal(q.lag, -1);
	assert_int_equal(q.in_flight, 3);
	summary_xinfo_group(b, "workers", &q);
	assert_int_equal(q.lag, -1);
	assert_int_equal(q.in_flight, 4);
	freeReplyObject(a);
	freeReplyObject(b);
}

static void test_xinfo_missing_group_or_garbage(void **state)
{
	(void)state;
	redisReply *g[1] = {group("other", 1, 1, r_int(1), false)};
	redisReply *groups = r_array(1, g), *empty = r_array(0, NULL), *s = r_str("x");
	struct queue_counts q;
	summary_xinfo_group(groups, "workers", &q);
	assert_false(q.found);
	assert_int_equal(q.in_flight, 0);
	assert_int_equal(q.lag, -1);
	summary_xinfo_group(empty, "workers", &q);
	assert_false(q.found);
	summary_xinfo_group(s, "workers", &q);
	assert_false(q.found);
	summary_xinfo_group(NULL, "workers", &q);
	assert_false(q.found);
	freeReplyObject(groups);
	freeReplyObject(empty);
	freeReplyObject(s);
}

static json_t *source(json_t *m, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(m, "sources"), i, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
			return v;
	}
	return NULL;
}

static void test_market_freshness(void **state)
{
	(void)state;
	const char *f[] = {"snapshot.as_of", "fx.as_of",	"fx.source",
			   "fx.EUR",	     "prices.as_of",	"prices.source",
			   "gas.base.as_of", "gas.base.source", "status.circle.source"};
	const char *v[] = {"1000", "970", "live", "0.919", "0", "default", "abc", "cached", "live"};
	json_t *m = summary_market_json(f, v, sizeof(f) / sizeof(f[0]), 1000);
	assert_non_null(m);
	assert_int_equal(json_integer_value(json_object_get(m, "as_of")), 1000);
	assert_int_equal(json_array_size(json_object_get(m, "sources")), 8);
	json_t *fx = source(m, "fx");
	assert_string_equal(json_string_value(json_object_get(fx, "source")), "live");
	assert_int_equal(json_integer_value(json_object_get(fx, "as_of")), 970);
	assert_int_equal(json_integer_value(json_object_get(fx, "age_seconds")), 30);
	/* as_of 0 is a built-in default: no reading, so no age. */
	json_t *pr = source(m, "prices");
	assert_string_equal(json_string_value(json_object_get(pr, "source")), "default");
	assert_true(json_is_null(json_object_get(pr, "age_seconds")));
	/* A value that is not a number is no timestamp either. */
	assert_true(json_is_null(json_object_get(source(m, "gas.base"), "as_of")));
	/* Absent from the hash: "missing". */
	assert_string_equal(json_string_value(json_object_get(source(m, "gas.solana"), "source")),
			    "missing");
	assert_string_equal(
		json_string_value(json_object_get(source(m, "status.circle"), "source")), "live");
	json_decref(m);

	/* No snapshot at all; a reading from the future ages 0, not negative. */
	const char *f2[] = {"fx.as_of", "fx.source"};
	const char *v2[] = {"2000", "live"};
	m = summary_market_json(f2, v2, 2, 1000);
	assert_true(json_is_null(json_object_get(m, "as_of")));
	assert_int_equal(json_integer_value(json_object_get(source(m, "fx"), "age_seconds")), 0);
	json_decref(m);
}

static void test_rate(void **state)
{
	(void)state;
	assert_int_equal(summary_rate_permille(0, 0), -1);
	assert_int_equal(summary_rate_permille(3, 5), 600);
	assert_int_equal(summary_rate_permille(5, 5), 1000);
	assert_int_equal(summary_rate_permille(0, 7), 0);
	assert_int_equal(summary_rate_permille(2, 3), 667); /* rounded half up */
	assert_int_equal(summary_rate_permille(1, 3), 333);
	assert_int_equal(summary_rate_permille(9, 5), 1000); /* clamped */
	assert_int_equal(summary_rate_permille(-1, 5), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xinfo_picks_the_named_group),
		cmocka_unit_test(test_xinfo_lag_unknown),
		cmocka_unit_test(test_xinfo_missing_group_or_garbage),
		cmocka_unit_test(test_market_freshness),
		cmocka_unit_test(test_rate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
