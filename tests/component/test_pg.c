/* test_pg.c - component tests of common/pg against a real PostgreSQL
 * (DATABASE_URL), each on a real event loop under a watchdog. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pg.h"

static const char *db_url;

/* ---- a loop with a watchdog ---- */

struct env {
	struct event_base *base;
	struct event *watchdog;
	struct pg_pool *pool;
	int done, errors, expected;
	char last_err[512];
	char last_value[256];
};

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	fail_msg("watchdog: test did not finish in time");
}

/* A loop and a pool with admission control (target_ms 0: off). */
static void env_init_admission(struct env *e, int size, int timeout_ms, int target_ms,
			       int interval_ms)
{
	memset(e, 0, sizeof(*e));
	e->base = event_base_new();
	assert_non_null(e->base);
	e->watchdog = evtimer_new(e->base, watchdog_cb, e);
	struct timeval tv = {20, 0};
	evtimer_add(e->watchdog, &tv);
	struct pg_pool_opts o = {.conninfo = db_url,
				 .size = size,
				 .max_queue = 100000,
				 .max_pipeline = 1000,
				 .query_timeout_ms = timeout_ms,
				 .connect_timeout_ms = 5000,
				 .admission_target_ms = target_ms,
				 .admission_interval_ms = interval_ms,
				 .name = "component"};
	e->pool = pg_pool_new(e->base, &o);
	assert_non_null(e->pool);
}

static void env_init(struct env *e, int size, int timeout_ms)
{
	env_init_admission(e, size, timeout_ms, 0, 0);
}

static void env_free(struct env *e)
{
	pg_pool_free(e->pool);
	event_free(e->watchdog);
	event_base_free(e->base);
}

static void run_until_done(struct env *e)
{
	while (e->done < e->expected)
		event_base_loop(e->base, EVLOOP_ONCE);
}

static void count_cb(void *arg, const PGresult *res, const char *err)
{
	struct env *e = arg;
	e->done++;
	if (err) {
		e->errors++;
		snprintf(e->last_err, sizeof(e->last_err), "%s", err);
	} else if (PQntuples(res) > 0) {
		snprintf(e->last_value, sizeof(e->last_value), "%s", PQgetvalue(res, 0, 0));
	}
}

/* Waits for the pool's first connection, through a trivial query. */
static void wait_connected(struct env *e)
{
	e->expected = e->done + 1;
	assert_int_equal(pg_query(e->pool, "SELECT 1", 0, NULL, count_cb, e), 0);
	run_until_done(e);
	e->errors = 0;
}

/* ---- tests ---- */

static void test_params_and_types(void **state)
{
	struct env e;
	(void)state;
	env_init(&e, 1, 5000);
	const char *p[] = {"40", "2"};
	e.expected = 1;
	assert_int_equal(pg_query(e.pool, "SELECT ($1::int + $2::int)::text", 2, p, count_cb, &e),
			 0);
	run_until_done(&e);
	assert_int_equal(e.errors, 0);
	assert_string_equal(e.last_value, "42");

	/* A quote character in a parameter is data, never SQL. */
	const char *q[] = {"it's'); DROP TABLE x; --"};
	e.expected = 2;
	assert_int_equal(pg_query(e.pool, "SELECT $1::text", 1, q, count_cb, &e), 0);
	run_until_done(&e);
	assert_string_equal(e.last_value, q[0]);
	env_free(&e);
}

static void test_prepared(void **state)
{
	struct env e;
	(void)state;
	env_init(&e, 2, 5000);
	int s = pg_prepare(e.pool, "SELECT upper($1::text)", 1);
	assert_true(s >= 0);
	const char *p[] = {"rampart"};
	e.expected = 50;
	for (int i = 0; i < 50; i++)
		assert_int_equal(pg_exec(e.pool, s, p, count_cb, &e), 0);
	run_until_done(&e);
	assert_int_equal(e.errors, 0);
	assert_string_equal(e.last_value, "RAMPART");
	env_free(&e);
}

/* Thousands of statements in flight on two connections: every callback runs
 * exactly once and one failing statement fails alone. */
static void test_pipeline_many(void **state)
{
	struct env e;
	(void)state;
	env_init(&e, 2, 10000);
	e.expected = 5000;
	for (int i = 0; i < 5000; i++) {
		char v[16];
		snprintf(v, sizeof(v), "%d", i);
		const char *p[] = {v};
		const char *sql = i == 2500 ? "SELECT 1 / ($1::int - 2500)" : "SELECT $1::int";
		assert_int_equal(pg_query(e.pool, sql, 1, p, count_cb, &e), 0);
	}
	run_until_done(&e);
	assert_int_equal(e.done, 5000);
	assert_int_equal(e.errors, 1);
	assert_non_null(strstr(e.last_err, "division by zero"));
	env_free(&e);
}

struct sqlstate_env {
	struct env *e;
	char state[8];
};

static void sqlstate_cb(void *arg, const PGresult *res, const char *err)
{
	struct sqlstate_env *s = arg;
	s->e->done++;
	assert_non_null(err);
	snprintf(s->state, sizeof(s->state), "%s", pg_sqlstate(res));
}

static void test_server_error_has_sqlstate(void **state)
{
	struct env e;
	struct sqlstate_env s = {.e = &e};
	(void)state;
	env_init(&e, 1, 5000);
	e.expected = 1;
	assert_int_equal(pg_query(e.pool, "SELECT * FROM no_such_table", 0, NULL, sqlstate_cb, &s),
			 0);
	run_until_done(&e);
	assert_string_equal(s.state, "42P01"); /* undefined_table */
	env_free(&e);
}

static void tx_cb(void *arg, PGresult *const *res, int n, const char *err)
{
	struct env *e = arg;
	e->done++;
	if (err) {
		e->errors++;
		snprintf(e->last_err, sizeof(e->last_err), "%s", err);
		return;
	}
	assert_int_equal(n, 3);
	snprintf(e->last_value, sizeof(e->last_value), "%s", PQgetvalue(res[2], 0, 0));
}

/* A transaction commits as a whole, or not at all. */
static void test_tx_atomic(void **state)
{
	struct env e;
	(void)state;
	env_init(&e, 1, 5000);
	e.expected = 1;
	assert_int_equal(pg_script(e.pool,
				   "DROP TABLE IF EXISTS comp_tx;"
				   " CREATE TABLE comp_tx (k text PRIMARY KEY, v int)",
				   count_cb, &e),
			 0);
	run_until_done(&e);
	assert_int_equal(e.errors, 0);

	const char *a[] = {"a", "1"}, *b[] = {"b", "2"};
	struct pg_stmt ok[] = {
		{.sql = "INSERT INTO comp_tx VALUES ($1, $2::int)", .nparams = 2, .params = a},
		{.sql = "INSERT INTO comp_tx VALUES ($1, $2::int)", .nparams = 2, .params = b},
		{.sql = "SELECT count(*)::text FROM comp_tx", .nparams = 0},
	};
	e.expected = 2;
	assert_int_equal(pg_tx(e.pool, ok, 3, tx_cb, &e), 0);
	run_until_done(&e);
	assert_int_equal(e.errors, 0);
	assert_string_equal(e.last_value, "2");

	/* The second insert violates the primary key: the first is rolled back. */
	const char *c[] = {"c", "3"};
	struct pg_stmt bad[] = {
		{.sql = "INSERT INTO comp_tx VALUES ($1, $2::int)", .nparams = 2, .params = c},
		{.sql = "INSERT INTO comp_tx VALUES ($1, $2::int)", .nparams = 2, .params = a},
		{.sql = "SELECT count(*)::text FROM comp_tx", .nparams = 0},
	};
	e.expected = 3;
	assert_int_equal(pg_tx(e.pool, bad, 3, tx_cb, &e), 0);
	run_until_done(&e);
	assert_int_equal(e.errors, 1);
	assert_non_null(strstr(e.last_err, "duplicate key"));

	e.expected = 4;
	assert_int_equal(pg_query(e.pool, "SELECT count(*)::text FROM comp_tx WHERE k = 'c'", 0,
				  NULL, count_cb, &e),
			 0);
	run_until_done(&e);
	assert_string_equal(e.last_value, "0");
	env_free(&e);
}

static void row_cb(void *arg, const PGresult *res, int row, const char *err)
{
	struct env *e = arg;
	(void)res;
	(void)row;
	e->done++;
	if (err) {
		e->errors++;
		snprintf(e->last_err, sizeof(e->last_err), "%s", err);
	}
}

/* Rows added in one loop iteration go in one statement; a bad row fails
 * alone, and odd characters survive the array encoding. */
static void test_batcher(void **state)
{
	struct env e;
	(void)state;
	env_init(&e, 1, 5000);
	e.expected = 1;
	assert_int_equal(
		pg_script(e.pool,
			  "DROP TABLE IF EXISTS comp_batch;"
			  " CREATE TABLE comp_batch (k text PRIMARY KEY, v bigint CHECK (v >= 0),"
			  " note text)",
			  count_cb, &e),
		0);
	run_until_done(&e);
	struct pg_batcher *b = pg_batcher_new(
		e.pool,
		"INSERT INTO comp_batch SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])",
		3, 100, 2);
	assert_non_null(b);
	e.expected = 1 + 300;
	for (int i = 0; i < 300; i++) {
		char k[16], v[16];
		snprintf(k, sizeof(k), "k%d", i);
		snprintf(v, sizeof(v), "%d", i == 150 ? -1 : i); /* row 150 breaks the CHECK */
		const char *row[] = {k, v, i % 2 ? "quote\" back\\slash {brace}, comma" : NULL};
		assert_int_equal(pg_batcher_add(b, row, row_cb, &e), 0);
	}
	run_until_done(&e);
	assert_int_equal(e.errors, 1);
	assert_non_null(strstr(e.last_err, "check constraint"));

	e.expected = 302;
	assert_int_equal(pg_query(e.pool,
				  "SELECT count(*) || '/' || count(note) || '/' ||"
				  " max(note) FROM comp_batch",
				  0, NULL, count_cb, &e),
			 0);
	run_until_done(&e);
	assert_string_equal(e.last_value, "299/150/quote\" back\\slash {brace}, comma");
	pg_batcher_free(b);
	env_free(&e);
}

struct rowres {
	struct env *e;
	char want[32];
	bool ok;
};

static void rowres_cb(void *arg, const PGresult *res, int row, const char *err)
{
	struct rowres *rr = arg;
	rr->e->done++;
	rr->ok = !err && row >= 0 && strcmp(PQgetvalue(res, row, 0), rr->want) == 0;
}

/* Each row gets its own result row when the statement keeps input order. */
static void test_batcher_row_results(void **state)
{
	struct env e;
	struct rowres rr[50];
	(void)state;
	env_init(&e, 1, 5000);
	struct pg_batcher *b = pg_batcher_new(e.pool,
					      "SELECT upper(i.v) FROM unnest($1::text[]) WITH "
					      "ORDINALITY AS i(v, ord) ORDER BY i.ord",
					      1, 16, 2);
	assert_non_null(b);
	e.expected = 50;
	for (int i = 0; i < 50; i++) {
		char v[16];
		snprintf(v, sizeof(v), "row%d", i);
		snprintf(rr[i].want, sizeof(rr[i].want), "ROW%d", i);
		rr[i].e = &e;
		rr[i].ok = false;
		const char *row[] = {v};
		assert_int_equal(pg_batcher_add(b, row, rowres_cb, &rr[i]), 0);
	}
	run_until_done(&e);
	for (int i = 0; i < 50; i++)
		if (!rr[i].ok)
			fail_msg("row %d did not get its own result", i);
	pg_batcher_free(b);
	env_free(&e);
}

/* Rows waiting for a batch are bounded: past 16 batches' worth, refused. */
static void test_batcher_bounded(void **state)
{
	struct env e;
	(void)state;
	env_init(&e, 1, 5000);
	struct pg_batcher *b =
		pg_batcher_new(e.pool, "SELECT count(*) FROM unnest($1::text[])", 1, 1, 1);
	assert_non_null(b);
	const char *row[] = {"x"};
	for (int i = 0; i < 16; i++)
		assert_int_equal(pg_batcher_add(b, row, row_cb, &e), 0);
	assert_int_equal(pg_batcher_add(b, row, row_cb, &e), -1);
	e.expected = 16;
	run_until_done(&e);
	assert_int_equal(e.errors, 0);
	assert_int_equal(pg_batcher_add(b, row, row_cb, &e), 0); /* room again */
	e.expected = 17;
	run_until_done(&e);
	pg_batcher_free(b);
	env_free(&e);
}

/* A statement slower than the deadline is cancelled by the server
 * (statement_timeout) and fails alone; the pool keeps working. */
static void test_timeout(void **state)
{
	struct env e;
	(void)state;
	env_init(&e, 1, 300);
	wait_connected(&e);
	e.expected = e.done + 2;
	assert_int_equal(pg_query(e.pool, "SELECT pg_sleep(2)", 0, NULL, count_cb, &e), 0);
	assert_int_equal(pg_query(e.pool, "SELECT 'after'", 0, NULL, count_cb, &e), 0);
	run_until_done(&e);
	assert_int_equal(e.errors, 1);
	assert_string_equal(e.last_value, "after");
	env_free(&e);
}

/* Connections killed by the server: in-flight statements fail with a clear
 * error, the pool reconnects by itself and later statements succeed. */
static void test_reconnect_after_kill(void **state)
{
	struct env e, killer;
	(void)state;
	env_init(&e, 2, 5000);
	env_init(&killer, 1, 5000);
	wait_connected(&e);
	wait_connected(&killer);

	e.expected = e.done + 1;
	assert_int_equal(pg_query(e.pool, "SELECT pg_sleep(5)", 0, NULL, count_cb, &e), 0);
	event_base_loop(e.base, EVLOOP_NONBLOCK);
	killer.expected = killer.done + 1;
	assert_int_equal(
		pg_query(killer.pool,
			 "SELECT pg_sleep(0.2), count(pg_terminate_backend(pid))::text FROM"
			 " pg_stat_activity WHERE application_name = 'rampart-component'"
			 " AND pid <> pg_backend_pid()",
			 0, NULL, count_cb, &killer),
		0);
	/* Drive both loops until the victim's statement has failed. */
	while (e.done < e.expected) {
		event_base_loop(killer.base, EVLOOP_NONBLOCK);
		event_base_loop(e.base, EVLOOP_NONBLOCK);
	}
	assert_int_equal(e.errors, 1);
	assert_non_null(strstr(e.last_err, "connection lost"));
	run_until_done(&killer);

	/* Back in business without any action from the caller: statements are
	 * refused only while every connection is in backoff. */
	for (int tries = 0; tries < 100; tries++) {
		e.errors = 0;
		if (pg_query(e.pool, "SELECT 'again'", 0, NULL, count_cb, &e) != 0) {
			struct timeval tv = {0, 50000};
			event_base_loopexit(e.base, &tv);
			event_base_dispatch(e.base);
			continue;
		}
		e.expected = e.done + 1;
		run_until_done(&e);
		if (e.errors == 0)
			break;
	}
	assert_int_equal(e.errors, 0);
	assert_string_equal(e.last_value, "again");
	struct pg_pool_stats st;
	pg_pool_stats(e.pool, &st);
	assert_true(st.reconnects >= 1);
	env_free(&killer);
	env_free(&e);
}

/* Freeing the pool runs every pending callback once, with an error. */
static void test_free_fails_pending(void **state)
{
	struct env e;
	(void)state;
	env_init(&e, 1, 5000);
	for (int i = 0; i < 10; i++)
		assert_int_equal(pg_query(e.pool, "SELECT pg_sleep(1)", 0, NULL, count_cb, &e), 0);
	event_base_loop(e.base, EVLOOP_NONBLOCK);
	pg_pool_free(e.pool);
	e.pool = NULL;
	assert_int_equal(e.done, 10);
	assert_int_equal(e.errors, 10);
	assert_non_null(strstr(e.last_err, "shutting down"));
	env_free(&e);
}

/* Nothing listening: statements fail promptly instead of queueing forever. */
static void test_unreachable_server(void **state)
{
	struct env e;
	const char *saved = db_url;
	(void)state;
	db_url = "postgres://rampart@127.0.0.1:1/rampart";
	env_init(&e, 1, 1000);
	db_url = saved;
	e.expected = 1;
	if (pg_query(e.pool, "SELECT 1", 0, NULL, count_cb, &e) == 0) {
		run_until_done(&e);
		assert_int_equal(e.errors, 1);
	}
	env_free(&e);
}

/* A host name is resolved on the loop (evdns) and passed as hostaddr. */
static void test_hostname(void **state)
{
	struct env e;
	char url[512];
	const char *saved = db_url, *at = strstr(db_url, "127.0.0.1");
	(void)state;
	if (!at)
		skip(); /* only meaningful when the test server is on 127.0.0.1 */
	snprintf(url, sizeof(url), "%.*slocalhost%s", (int)(at - db_url), db_url, at + 9);
	db_url = url;
	env_init(&e, 1, 5000);
	db_url = saved;
	e.expected = 1;
	assert_int_equal(pg_query(e.pool, "SELECT 'resolved'", 0, NULL, count_cb, &e), 0);
	run_until_done(&e);
	assert_int_equal(e.errors, 0);
	assert_string_equal(e.last_value, "resolved");
	env_free(&e);
}

/* Runs the loop for ms milliseconds. */
static void run_for(struct env *e, int ms)
{
	struct timeval tv = {0, ms * 1000};
	event_base_loopexit(e->base, &tv);
	event_base_dispatch(e->base);
}

/* The statements a connection prepares before its first use of them wait
 * like any other: admission control counts their wait from when they were
 * sent. (They counted from time zero: a prepare held up by a stall, here a
 * lock, made the pool refuse at once, as if it had waited for hours.) */
static void test_prepare_wait_counts_from_send(void **state)
{
	struct env e;
	(void)state;
	env_init_admission(&e, 1, 10000, 50, 100);
	PGconn *locker = PQconnectdb(db_url);
	assert_int_equal(PQstatus(locker), CONNECTION_OK);
	PGresult *r = PQexec(locker, "CREATE TABLE IF NOT EXISTS component_prepare_wait (x int)");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	r = PQexec(locker, "BEGIN; LOCK TABLE component_prepare_wait IN ACCESS EXCLUSIVE MODE");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	wait_connected(&e);
	run_for(&e, 150); /* more than an interval with nothing reported */
	/* Its prepare waits on the lock (parse analysis needs the table). */
	int s = pg_prepare(e.pool, "SELECT count(*)::text FROM component_prepare_wait", 0);
	assert_true(s >= 0);
	e.expected = e.done + 1;
	assert_int_equal(pg_exec(e.pool, s, NULL, count_cb, &e), 0);
	run_for(&e, 80);
	/* Nothing finished for a whole interval and the oldest request, the
	 * prepare, has waited about 80 ms: under target + interval. */
	assert_false(pg_pool_refusing(e.pool));
	r = PQexec(locker, "COMMIT");
	PQclear(r);
	run_until_done(&e);
	assert_int_equal(e.errors, 0);
	assert_string_equal(e.last_value, "0");
	PQclear(PQexec(locker, "DROP TABLE component_prepare_wait"));
	PQfinish(locker);
	env_free(&e);
}

int main(void)
{
	db_url = getenv("DATABASE_URL");
	if (!db_url) {
		fprintf(stderr, "test_pg: DATABASE_URL is required\n");
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_params_and_types),
		cmocka_unit_test(test_prepared),
		cmocka_unit_test(test_pipeline_many),
		cmocka_unit_test(test_server_error_has_sqlstate),
		cmocka_unit_test(test_tx_atomic),
		cmocka_unit_test(test_batcher),
		cmocka_unit_test(test_batcher_bounded),
		cmocka_unit_test(test_batcher_row_results),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_reconnect_after_kill),
		cmocka_unit_test(test_free_fails_pending),
		cmocka_unit_test(test_unreachable_server),
		cmocka_unit_test(test_hostname),
		cmocka_unit_test(test_prepare_wait_counts_from_send),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
