/* cleanup.c - the worker's cleanup timer: deletes expired quotes no payment
 * used and Idempotency-Key records past their 24 h, in bounded batches. */
#include <event2/event.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/pg.h"
#include "worker.h"

#define CLEANUP_BATCH	    "1000"
#define CLEANUP_MAX_BATCHES 20 /* per tick: bounded work, the rest next tick */

/* Expired quotes no payment used, oldest first, and Idempotency-Key records
 * past their 24 h, in bounded batches; the counts of both. */
static const char cleanup_sql[] =
	"WITH q AS (DELETE FROM quotes WHERE id IN (SELECT id FROM quotes"
	"  WHERE used_at IS NULL AND expires_at < now()"
	"  ORDER BY expires_at LIMIT $1::int FOR UPDATE SKIP LOCKED) RETURNING 1),"
	" k AS (DELETE FROM idempotency_keys WHERE (api_key_id, key) IN ("
	"  SELECT api_key_id, key FROM idempotency_keys WHERE expires_at < now()"
	"  LIMIT $1::int FOR UPDATE SKIP LOCKED) RETURNING 1)"
	" SELECT (SELECT count(*) FROM q), (SELECT count(*) FROM k)";

static struct metric *m_cleaned;
static bool cleanup_busy;
static int cleanup_batches;

static void cleanup_batch(struct worker *w);

static void cleanup_done(void *arg, const PGresult *res, const char *err)
{
	struct worker *w = arg;
	cleanup_busy = false;
	if (err) {
		log_event(LOG_WARN, "quote cleanup failed", LF_S("error", err));
		return;
	}
	long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	long keys = strtol(PQgetvalue(res, 0, 1), NULL, 10);
	if (n > 0) {
		metric_add(m_cleaned, (uint64_t)n);
		log_event(LOG_INFO, "expired quotes deleted", LF_I("count", n));
	}
	if (keys > 0)
		log_event(LOG_INFO, "expired idempotency keys deleted", LF_I("count", keys));
	if (keys > n)
		n = keys;
	if (n == strtol(CLEANUP_BATCH, NULL, 10) && ++cleanup_batches < CLEANUP_MAX_BATCHES &&
	    !w->draining)
		cleanup_batch(w);
}

static void cleanup_batch(struct worker *w)
{
	const char *params[] = {CLEANUP_BATCH};
	if (pg_exec(w->pg, w->stmt_cleanup, params, cleanup_done, w) == 0)
		cleanup_busy = true;
}

static void cleanup_tick(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	(void)fd;
	(void)what;
	if (cleanup_busy || w->draining)
		return;
	cleanup_batches = 0;
	cleanup_batch(w);
}

int cleanup_init(struct worker *w)
{
	w->stmt_cleanup = pg_prepare(w->pg, cleanup_sql, 1);
	m_cleaned = metrics_counter("rampart_quotes_cleaned_total",
				    "Expired, unused quotes deleted", "");
	w->cleanup_ev = event_new(w->base, -1, EV_PERSIST, cleanup_tick, w);
	return w->stmt_cleanup >= 0 && w->cleanup_ev ? 0 : -1;
}

void cleanup_start(struct worker *w)
{
	struct timeval cleanup = {w->cfg.cleanup_interval_s, 0};
	event_add(w->cleanup_ev, &cleanup);
}
