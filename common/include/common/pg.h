/* pg.h - an asynchronous PostgreSQL connection pool on libevent.
 *
 * libpq runs in non-blocking pipeline mode: many statements from many
 * requests are in flight on one connection at once, each followed by its own
 * sync point, so one failing statement never aborts another's. Connections
 * are opened with PQconnectStart/PQconnectPoll driven by socket events, lost
 * connections are reopened with exponential backoff, and statements wait in
 * a bounded queue while no connection can take them. No call here blocks.
 *
 * Callbacks: every accepted request's callback runs exactly once, never from
 * inside the call that submitted it, with err == NULL on success or a
 * message on failure (server error, connection lost, timeout, pool freed).
 * Results are borrowed until the callback returns. */
#ifndef COMMON_PG_H
#define COMMON_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct pg_pool;

struct pg_pool_opts {
	const char *conninfo;	/* URL or key=value string; copied */
	int size;		/* connections, >= 1 */
	int max_queue;		/* statements waiting for a connection; more are refused */
	int max_pipeline;	/* statements in flight per connection */
	int query_timeout_ms;	/* submit-to-result deadline (0 = none) */
	int connect_timeout_ms; /* per connection attempt */
	/* Admission (pg_pool_refusing, common/admission.h): the queueing delay
	 * (submit to result) above which, held for a whole interval, the pool
	 * reports that new work should be refused. 0 = never. */
	int admission_target_ms;
	int admission_interval_ms;
	const char *name; /* for logs and metrics labels, e.g. "api-0"; copied */
};

/* res: the statement's result (PGRES_TUPLES_OK / PGRES_COMMAND_OK), or the
 * server's error result when err comes from the server (so the caller can
 * read PG_DIAG_SQLSTATE), or NULL for client-side failures. */
typedef void (*pg_cb)(void *arg, const PGresult *res, const char *err);

/* For transactions: results of every statement, in order (n of them). On
 * failure err is set, res[i] is the failing statement's error result and the
 * statements after it are NULL; nothing was committed. */
typedef void (*pg_tx_cb)(void *arg, PGresult *const *res, int n, const char *err);

/* Creates the pool and starts connecting in the background. NULL on bad
 * options or allocation failure. */
struct pg_pool *pg_pool_new(struct event_base *base, const struct pg_pool_opts *opts);

/* Fails every waiting and in-flight statement with "pool shutting down",
 * closes the connections and frees the pool. Accepts NULL. */
void pg_pool_free(struct pg_pool *p);

/* Registers a statement that every connection prepares once (named
 * server-side prepared statement), so later executions skip parse and plan.
 * Returns its handle (>= 0) or -1. sql is copied. */
int pg_prepare(struct pg_pool *p, const char *sql, int nparams) __attribute__((warn_unused_result));

/* Runs one parameterised statement (params are text, NULL = SQL NULL; all
 * copied). Returns 0 if accepted (cb will run once), -1 if refused: queue
 * full, pool shutting down, too many params (cb will not run). */
int pg_query(struct pg_pool *p, const char *sql, int nparams, const char *const *params, pg_cb cb,
	     void *arg) __attribute__((warn_unused_result));

/* Same for a statement registered with pg_prepare. */
int pg_exec(struct pg_pool *p, int stmt, const char *const *params, pg_cb cb, void *arg)
	__attribute__((warn_unused_result));

/* One statement of a transaction: either sql or a prepared handle (sql NULL). */
struct pg_stmt {
	const char *sql;
	int stmt;
	int nparams;
	const char *const *params;
};

/* Runs the statements as one transaction: they are pipelined back to back
 * and share one sync point, so they commit together or not at all, in a
 * single round trip. Later statements cannot depend on earlier results except
 * through SQL (CTEs, subqueries). n <= 16. Same return contract as pg_query. */
int pg_tx(struct pg_pool *p, const struct pg_stmt *stmts, int n, pg_tx_cb cb, void *arg)
	__attribute__((warn_unused_result));

/* Runs a multi-statement SQL script with the simple query protocol (no
 * parameters: for migrations only). The script runs on a connection taken out
 * of pipeline mode for its duration. Same return contract. */
int pg_script(struct pg_pool *p, const char *sql, pg_cb cb, void *arg)
	__attribute__((warn_unused_result));

/* ---- batching across requests ---- */

/* A batcher merges single-row statements submitted during one loop
 * iteration into one statement over arrays: sql receives one text[] parameter
 * per column ($1 = column 0's values, ...), e.g.
 *   INSERT INTO t (a, b) SELECT * FROM unnest($1::text[], $2::bigint[])
 * so N concurrent inserts cost one statement and one commit. At most
 * max_inflight batches run at once; rows arriving meanwhile wait and go in the
 * next batch (<= max_rows); at most 16 batches' worth may wait, then rows
 * are refused. If the server rejects a batch, its rows are retried one by one
 * so one bad row fails alone. */
struct pg_batcher;
/* A row's outcome. On success res is the batch's result (borrowed until the
 * callback returns) and row the index of this input row's result row: when
 * the statement returns one row per input row in input order (e.g. SELECT
 * ... FROM unnest(...) WITH ORDINALITY ... ORDER BY ordinality), row i
 * belongs to input i; row is -1 when res has fewer rows. On failure res is
 * NULL, row -1 and err set. */
typedef void (*pg_row_cb)(void *arg, const PGresult *res, int row, const char *err);

struct pg_batcher *pg_batcher_new(struct pg_pool *p, const char *sql, int ncols, int max_rows,
				  int max_inflight);
void pg_batcher_free(struct pg_batcher *b); /* fails waiting rows; accepts NULL */

/* Adds a row (ncols text values, NULL = SQL NULL; copied). Returns 0 if
 * accepted (cb runs once), -1 if refused. */
int pg_batcher_add(struct pg_batcher *b, const char *const *values, pg_row_cb cb, void *arg)
	__attribute__((warn_unused_result));

/* ---- state ---- */

struct pg_pool_stats {
	int connections; /* open and ready */
	int connecting;
	int inflight; /* statements sent, result pending */
	int queued;   /* statements waiting for a connection */
	uint64_t reconnects;
};

void pg_pool_stats(const struct pg_pool *p, struct pg_pool_stats *out);

/* True when at least one connection is ready. */
bool pg_pool_ready(const struct pg_pool *p);

/* True while the pool's queue stands (admission.h): statements have waited
 * longer than the target for a whole admission interval, or none finished
 * in it and the oldest one waiting is older than target + interval. A
 * caller that can refuse work (an HTTP 503) should refuse it now rather than
 * add to the wait. Always false without an admission target. */
bool pg_pool_refusing(struct pg_pool *p);

/* The SQLSTATE of a server error result, or "" (borrowed). */
const char *pg_sqlstate(const PGresult *res);

#endif
