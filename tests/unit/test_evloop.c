/* test_evloop.c - common/evloop: timers fire as armed (once, every, now),
 * stop and re-arm; a signal reaches its watcher on the loop; the daemons'
 * shared argument handling. A real loop, bounded by a one-shot watchdog. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/evloop.h"

struct counts {
	struct event_base *b;
	struct timer *t;
	int fired, stop_after;
	char sig[16];
};

static void count(void *arg)
{
	struct counts *c = arg;
	if (++c->fired >= c->stop_after)
		evloop_stop(c->b);
}

static void watchdog(void *arg)
{
	evloop_stop(arg);
}

static struct timer *arm_watchdog(struct event_base *b)
{
	struct timer *w = timer_new(b, watchdog, b);
	assert_non_null(w);
	timer_once(w, 5000);
	return w;
}

static void test_every_and_stop(void **state)
{
	(void)state;
	struct counts c = {.b = evloop_new(false), .stop_after = 3};
	assert_non_null(c.b);
	struct timer *w = arm_watchdog(c.b);
	c.t = timer_new(c.b, count, &c);
	timer_every(c.t, 5);
	evloop_run(c.b);
	assert_int_equal(c.fired, 3); /* periodic: fired again and again */
	timer_stop(c.t);
	evloop_run_once(c.b);
	assert_int_equal(c.fired, 3);
	timer_free(c.t);
	timer_free(w);
	evloop_free(c.b);
}

static void test_once_and_fire(void **state)
{
	(void)state;
	struct counts c = {.b = evloop_new(true), .stop_after = 1};
	struct timer *w = arm_watchdog(c.b);
	c.t = timer_new(c.b, count, &c);
	timer_fire(c.t); /* now, never armed */
	evloop_run(c.b);
	assert_int_equal(c.fired, 1);
	/* a one-shot re-armed after a periodic arming is one-shot again */
	c.fired = 0;
	c.stop_after = 100;
	timer_every(c.t, 1000);
	timer_once(c.t, 1);
	timer_free(w);
	w = timer_new(c.b, watchdog, c.b);
	timer_once(w, 50);
	evloop_run(c.b);
	assert_int_equal(c.fired, 1);
	timer_free(c.t);
	timer_free(w);
	evloop_free(c.b);
	timer_free(NULL);
	evloop_free(NULL);
}

static void test_once(void **state)
{
	(void)state;
	struct counts c = {.b = evloop_new(false), .stop_after = 2};
	struct timer *w = arm_watchdog(c.b);
	assert_int_equal(evloop_once(c.b, 0, count, &c), 0);
	assert_int_equal(evloop_once(c.b, 2, count, &c), 0);
	assert_int_equal(c.fired, 0); /* never from inside the call */
	evloop_run(c.b);
	assert_int_equal(c.fired, 2);
	timer_free(w);
	evloop_free(c.b);
}

static void on_signal(void *arg, const char *sig)
{
	struct counts *c = arg;
	snprintf(c->sig, sizeof(c->sig), "%s", sig);
	evloop_stop(c->b);
}

static void raise_term(void *arg)
{
	(void)arg;
	kill(getpid(), SIGTERM);
}

static void test_sigstop(void **state)
{
	(void)state;
	struct counts c = {.b = evloop_new(false)};
	struct timer *w = arm_watchdog(c.b);
	struct sigstop *s = sigstop_new(c.b, on_signal, &c);
	assert_non_null(s);
	struct timer *r = timer_new(c.b, raise_term, NULL);
	timer_once(r, 1);
	evloop_run(c.b);
	assert_string_equal(c.sig, "SIGTERM");
	sigstop_free(s);
	timer_free(r);
	timer_free(w);
	evloop_free(c.b);
}

static void test_args(void **state)
{
	(void)state;
	char prog[] = "rampart-x", v[] = "--version", h[] = "--help", x[] = "--frobnicate";
	char *none[] = {prog, NULL};
	char *version[] = {prog, v, NULL};
	char *help[] = {prog, h, NULL};
	char *bad[] = {prog, x, NULL};
	assert_int_equal(evloop_args(1, none, "rampart-x", "0.1.0"), -1);
	assert_int_equal(evloop_args(2, version, "rampart-x", "0.1.0"), 0);
	assert_int_equal(evloop_args(2, help, "rampart-x", "0.1.0"), 0);
	assert_int_equal(evloop_args(2, bad, "rampart-x", "0.1.0"), 2);
	char name[96];
	evloop_consumer_name(name, sizeof(name), "x");
	char pid[24];
	snprintf(pid, sizeof(pid), "-%ld", (long)getpid());
	assert_non_null(strstr(name, pid));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_and_stop), cmocka_unit_test(test_once_and_fire),
		cmocka_unit_test(test_once),	       cmocka_unit_test(test_sigstop),
		cmocka_unit_test(test_args),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	evloop_shutdown();
	return rc;
}
