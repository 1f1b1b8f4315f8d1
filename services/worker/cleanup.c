/* cleanup.c - the worker's cleanup timer: deletes expired quotes no payment
 * used and Idempotency-Key records past their 24 h, in bounded batches. */
#include <stdlib.h>

#include "common/evloop.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pg.h"
#include "common/pgrow.h"
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
	" SELECT (SELECT count(*) FROM q) AS quotes_deleted,"
	" (SELECT count(*) FROM k) AS keys_deleted";

/* cleanup_sql's columns, read by name (common/pgrow.h). */
enum { CC_QUOTES, CC_KEYS, CC_N };
static const char *const cleanup_cols[CC_N] = {"quotes_deleted", "keys_deleted"};

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
	struct pgrow c;
	int64_t n, keys;
	if (pgrow_map(&c, res, cleanup_cols, CC_N) != 0 || pgrow_count(&c) != 1 ||
	    !pgrow_int64(&c, 0, CC_QUOTES, &n) || !pgrow_int64(&c, 0, CC_KEYS, &keys)) {
		log_event(LOG_ERROR, "quote cleanup: unexpected result",
			  LF_S("error", c.err[0] ? c.err : "not one row of two counts"));
		return;
	}
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
	/* Unprepared, planned for the tables as they are (relay.c). */
	if (pg_query(w->pg, cleanup_sql, 1, params, cleanup_done, w) == 0)
		cleanup_busy = true;
}

static void cleanup_tick(void *arg)
{
	struct worker *w = arg;
	if (cleanup_busy || w->draining)
		return;
	cleanup_batches = 0;
	cleanup_batch(w);
}

int cleanup_init(struct worker *w)
{
	m_cleaned = metrics_counter("rampart_quotes_cleaned_total",
				    "Expired, unused quotes deleted", "");
	w->cleanup_timer = timer_new(w->base, cleanup_tick, w);
	return w->cleanup_timer ? 0 : -1;
}

void cleanup_start(struct worker *w)
{
	timer_every(w->cleanup_timer, (long)w->cfg.cleanup_interval_s * 1000);
}
