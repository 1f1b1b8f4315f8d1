/* test_admission.c - unit tests for common/admission: when a queue stands. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "common/admission.h"

#define MS 1000u

/* Reports one sojourn per millisecond from t (ms) to t + n (ms). */
static uint64_t feed(struct admission *a, uint64_t t, int n, uint64_t sojourn_ms)
{
	for (int i = 0; i < n; i++, t++)
		admission_observe(a, t * MS, sojourn_ms * MS);
	return t;
}

static void test_off_never_refuses(void **state)
{
	struct admission a;
	(void)state;
	admission_init(&a, 0, 100);
	feed(&a, 1, 1000, 5000);
	assert_false(admission_refuse(&a, 2000 * MS, 60000 * MS));
}

static void test_short_waits_admit(void **state)
{
	struct admission a;
	(void)state;
	admission_init(&a, 50, 100);
	uint64_t t = feed(&a, 1, 500, 3);
	assert_false(admission_refuse(&a, t * MS, 3 * MS));
}

/* Long waits, but one short one in each interval: the queue drained now
 * and then, so it does not stand (the minimum decides, not the mean). */
static void test_one_short_wait_per_interval_admits(void **state)
{
	struct admission a;
	(void)state;
	admission_init(&a, 50, 100);
	uint64_t t = 1;
	for (int k = 0; k < 5; k++) {
		t = feed(&a, t, 90, 400);
		t = feed(&a, t, 1, 10);
		t = feed(&a, t, 9, 400);
		assert_false(admission_refuse(&a, t * MS, 400 * MS));
	}
}

static void test_standing_queue_refuses_then_reopens(void **state)
{
	struct admission a;
	(void)state;
	admission_init(&a, 50, 100);
	uint64_t t = feed(&a, 1, 100, 5);
	assert_false(admission_refuse(&a, t * MS, 5 * MS));
	/* Every wait over the target for a whole interval: refuse. */
	t = feed(&a, t, 250, 80);
	assert_true(admission_refuse(&a, t * MS, 80 * MS));
	/* Still refusing while the backlog drains with long waits. */
	t = feed(&a, t, 100, 200);
	assert_true(admission_refuse(&a, t * MS, 200 * MS));
	/* Drained: the interval that saw the last long waits still refuses,
	 * the next one, with nothing waiting, reopens. */
	t += 60;
	assert_true(admission_refuse(&a, t * MS, 0));
	t += 110;
	assert_false(admission_refuse(&a, t * MS, 0));
}

/* Nothing finishes (a stalled server): the oldest waiting request decides,
 * once it has been over the target for a whole interval. */
static void test_stall_refuses_by_oldest_age(void **state)
{
	struct admission a;
	(void)state;
	admission_init(&a, 50, 100);
	uint64_t t = feed(&a, 1, 100, 5);
	assert_false(admission_refuse(&a, t * MS, 0));
	t += 160;
	assert_true(admission_refuse(&a, t * MS, 160 * MS));
	/* Within the same interval the verdict holds. */
	assert_true(admission_refuse(&a, (t + 10) * MS, 0));
	/* The next interval: the stall is over and nothing waits. */
	assert_false(admission_refuse(&a, (t + 120) * MS, 0));
}

/* A stall shorter than target + interval (a slow fsync, a lock held for a
 * moment) refuses nobody: an interval passes with nothing finished and the
 * oldest request past the target, but not yet for a whole interval. Those
 * waiting are answered when the stall ends; refusing new requests would
 * turn a short wait into errors at a load the server carries. */
static void test_short_stall_admits(void **state)
{
	struct admission a;
	(void)state;
	admission_init(&a, 50, 100);
	uint64_t t = feed(&a, 1, 100, 5);
	t += 120; /* 120 ms with nothing finished, the oldest 120 ms old */
	assert_false(admission_refuse(&a, t * MS, 120 * MS));
	t = feed(&a, t + 20, 200, 5); /* it ended at 140 ms: the queue drains */
	assert_false(admission_refuse(&a, t * MS, 5 * MS));
	/* The same stall, going on: once the oldest has been over the target
	 * for a whole interval, the next verdict refuses. */
	admission_init(&a, 50, 100);
	t = feed(&a, 1, 100, 5);
	t += 120;
	assert_false(admission_refuse(&a, t * MS, 120 * MS));
	t += 100;
	assert_true(admission_refuse(&a, t * MS, 220 * MS));
}

/* The answers that end a short stall: the first ones waited long, those
 * just behind them did not. An interval that ends after the first few is
 * not a standing queue: the waits over the target began only just now. */
static void test_drain_after_a_stall_admits(void **state)
{
	struct admission a;
	(void)state;
	admission_init(&a, 50, 100);
	uint64_t t = feed(&a, 1, 100, 5);
	assert_false(admission_refuse(&a, 150 * MS, 49 * MS)); /* stalled since 101 */
	t = feed(&a, 245, 5, 140);			       /* it ends: the oldest */
	assert_false(admission_refuse(&a, t * MS, 5 * MS));    /* the interval ends */
	t = feed(&a, t, 100, 3);			       /* those behind them */
	assert_false(admission_refuse(&a, t * MS, 3 * MS));
	/* Waits over the target going on for a whole interval do refuse. */
	t = feed(&a, t, 250, 140);
	assert_true(admission_refuse(&a, t * MS, 140 * MS));
}

/* Quiet, then stalled: the reports of an interval long past do not speak
 * for the present (the verdict is evaluated lazily, on the next call). */
static void test_old_reports_do_not_hide_a_stall(void **state)
{
	struct admission a;
	(void)state;
	admission_init(&a, 50, 100);
	uint64_t t = feed(&a, 1, 50, 2);
	t += 500; /* no calls at all for five intervals */
	assert_true(admission_refuse(&a, t * MS, 400 * MS));
	admission_init(&a, 50, 100);
	t = feed(&a, 1, 50, 2);
	t += 500;
	assert_false(admission_refuse(&a, t * MS, 0));
}

/* The verdict changes once per interval, not on every report. */
static void test_verdict_held_for_an_interval(void **state)
{
	struct admission a;
	(void)state;
	admission_init(&a, 50, 100);
	uint64_t t = feed(&a, 1, 200, 90);
	assert_true(admission_refuse(&a, t * MS, 90 * MS));
	admission_observe(&a, t * MS, 1 * MS);
	assert_true(admission_refuse(&a, (t + 1) * MS, 1 * MS));
	t = feed(&a, t + 1, 120, 2);
	assert_false(admission_refuse(&a, t * MS, 2 * MS));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_off_never_refuses),
		cmocka_unit_test(test_short_waits_admit),
		cmocka_unit_test(test_one_short_wait_per_interval_admits),
		cmocka_unit_test(test_standing_queue_refuses_then_reopens),
		cmocka_unit_test(test_stall_refuses_by_oldest_age),
		cmocka_unit_test(test_short_stall_admits),
		cmocka_unit_test(test_drain_after_a_stall_admits),
		cmocka_unit_test(test_old_reports_do_not_hide_a_stall),
		cmocka_unit_test(test_verdict_held_for_an_interval),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
