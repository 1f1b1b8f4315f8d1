/* test_redis.c - component tests of common/redis against a real Redis
 * (REDIS_URL), each on a real event loop under a watchdog. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/redis.h"

static const char *redis_url;

struct env {
	struct event_base *base;
	struct event *watchdog;
	struct rds *r;
	int done, errors, expected;
	char last_err[256];
	char last_value[256];
};

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	fail_msg("watchdog: test did not finish in time");
}

static void pump(struct env *e, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_base_loopexit(e->base, &tv);
	event_base_dispatch(e->base);
}

static void env_init(struct env *e, const char *url, int timeout_ms)
{
	memset(e, 0, sizeof(*e));
	e->base = event_base_new();
	e->watchdog = evtimer_new(e->base, watchdog_cb, e);
	struct timeval tv = {20, 0};
	evtimer_add(e->watchdog, &tv);
	struct rds_opts o = {.url = url,
			     .connect_timeout_ms = 1000,
			     .command_timeout_ms = timeout_ms,
			     .name = "component"};
	e->r = rds_new(e->base, &o);
	assert_non_null(e->r);
}

static void wait_connected(struct env *e)
{
	for (int i = 0; i < 200 && !rds_connected(e->r); i++)
		pump(e, 20);
	assert_true(rds_connected(e->r));
}

static void env_free(struct env *e)
{
	rds_free(e->r);
	event_free(e->watchdog);
	event_base_free(e->base);
}

static void run_until_done(struct env *e)
{
	while (e->done < e->expected)
		event_base_loop(e->base, EVLOOP_ONCE);
}

static void cb(void *arg, redisReply *reply, const char *err)
{
	struct env *e = arg;
	e->done++;
	if (err) {
		e->errors++;
		snprintf(e->last_err, sizeof(e->last_err), "%s", err);
	} else if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS) {
		snprintf(e->last_value, sizeof(e->last_value), "%s", reply->str);
	} else if (reply->type == REDIS_REPLY_INTEGER) {
		snprintf(e->last_value, sizeof(e->last_value), "%lld", reply->integer);
	}
}

static void test_commands(void **state)
{
	struct env e;
	(void)state;
	env_init(&e, redis_url, 2000);
	wait_connected(&e);
	e.expected = 1001;
	assert_int_equal(rds_command(e.r, cb, &e, "DEL comp:counter"), 0);
	for (int i = 0; i < 999; i++)
		assert_int_equal(rds_command(e.r, cb, &e, "INCR comp:counter"), 0);
	assert_int_equal(rds_command(e.r, cb, &e, "GET comp:counter"), 0);
	run_until_done(&e);
	assert_int_equal(e.errors, 0);
	assert_string_equal(e.last_value, "999");
	env_free(&e);
}

static void test_error_reply(void **state)
{
	struct env e;
	(void)state;
	env_init(&e, redis_url, 2000);
	wait_connected(&e);
	e.expected = 2;
	assert_int_equal(rds_command(e.r, cb, &e, "SET comp:str hello"), 0);
	assert_int_equal(rds_command(e.r, cb, &e, "INCR comp:str"), 0);
	run_until_done(&e);
	assert_int_equal(e.errors, 1);
	assert_non_null(strstr(e.last_err, "not an integer"));
	/* A server error does not hurt the connection. */
	e.expected = 3;
	assert_int_equal(rds_command(e.r, cb, &e, "GET comp:str"), 0);
	run_until_done(&e);
	assert_string_equal(e.last_value, "hello");
	env_free(&e);
}

/* A command past its deadline fails with "timeout", the connection is
 * replaced, and the client works again without help. */
static void test_timeout_and_recovery(void **state)
{
	struct env e;
	(void)state;
	env_init(&e, redis_url, 200);
	wait_connected(&e);
	e.expected = 2;
	assert_int_equal(rds_command(e.r, cb, &e, "BLPOP comp:nothing 1"), 0);
	assert_int_equal(rds_command(e.r, cb, &e, "PING"), 0);
	run_until_done(&e);
	assert_int_equal(e.errors, 2);
	assert_false(rds_connected(e.r));
	pump(&e, 1200); /* the server finishes sleeping; we reconnect */
	wait_connected(&e);
	e.errors = 0;
	e.expected = 3;
	assert_int_equal(rds_command(e.r, cb, &e, "PING"), 0);
	run_until_done(&e);
	assert_int_equal(e.errors, 0);
	assert_string_equal(e.last_value, "PONG");
	env_free(&e);
}

/* The server closes our connection: pending commands fail, we reconnect. */
static void test_killed_connection(void **state)
{
	struct env e;
	(void)state;
	env_init(&e, redis_url, 2000);
	wait_connected(&e);
	e.expected = 2;
	assert_int_equal(rds_command(e.r, cb, &e, "CLIENT KILL TYPE normal SKIPME no"), 0);
	assert_int_equal(rds_command(e.r, cb, &e, "PING"), 0);
	run_until_done(&e);
	assert_true(e.errors >= 1);
	wait_connected(&e);
	e.errors = 0;
	e.expected = 3;
	assert_int_equal(rds_command(e.r, cb, &e, "PING"), 0);
	run_until_done(&e);
	assert_int_equal(e.errors, 0);
	env_free(&e);
}

/* Not connected: commands are refused at once, never queued. */
static void test_refused_while_down(void **state)
{
	struct env e;
	(void)state;
	env_init(&e, "redis://127.0.0.1:1/0", 200);
	pump(&e, 100);
	assert_false(rds_connected(e.r));
	assert_int_equal(rds_command(e.r, cb, &e, "PING"), -1);
	env_free(&e);
}

static void test_free_fails_pending(void **state)
{
	struct env e;
	(void)state;
	env_init(&e, redis_url, 5000);
	wait_connected(&e);
	for (int i = 0; i < 5; i++)
		assert_int_equal(rds_command(e.r, cb, &e, "BLPOP comp:nothing 0.2"), 0);
	rds_free(e.r);
	e.r = NULL;
	assert_int_equal(e.done, 5);
	assert_int_equal(e.errors, 5);
	assert_string_equal(e.last_err, "client shutting down");
	env_free(&e);
}

static void test_bad_url(void **state)
{
	struct event_base *base = event_base_new();
	(void)state;
	const char *bad[] = {"http://x", "redis://", "redis://h:0", "redis://h:99999",
			     "redis://h:6379/x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rds_opts o = {.url = bad[i], .name = "bad"};
		assert_null(rds_new(base, &o));
	}
	event_base_free(base);
}

/* A host name is resolved on the loop (evdns), then connected by address. */
static void test_hostname(void **state)
{
	struct env e;
	char url[256];
	const char *at = strstr(redis_url, "127.0.0.1");
	(void)state;
	if (!at)
		skip();
	snprintf(url, sizeof(url), "%.*slocalhost%s", (int)(at - redis_url), redis_url, at + 9);
	env_init(&e, url, 2000);
	wait_connected(&e);
	e.expected = 1;
	assert_int_equal(rds_command(e.r, cb, &e, "PING"), 0);
	run_until_done(&e);
	assert_string_equal(e.last_value, "PONG");
	env_free(&e);
}

int main(void)
{
	redis_url = getenv("REDIS_URL");
	if (!redis_url) {
		fprintf(stderr, "test_redis: REDIS_URL is required\n");
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_error_reply),
		cmocka_unit_test(test_timeout_and_recovery),
		cmocka_unit_test(test_killed_connection),
		cmocka_unit_test(test_refused_while_down),
		cmocka_unit_test(test_free_fails_pending),
		cmocka_unit_test(test_bad_url),
		cmocka_unit_test(test_hostname),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
