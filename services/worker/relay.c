/* relay.c - the worker's relay: re-enqueues payments whose job never reached
 * Redis (a crash between commit and XADD, Redis down, a job lost with Redis
 * data). The cleanup of expired quotes and Idempotency-Key records is
 * cleanup.c.
 *
 * Two passes find lost jobs. The overdue pass (every tick) takes payments
 * whose next step was due (next_due_at, written with every transition and
 * reschedule) more than RELAY_OVERDUE_SECONDS ago: a job lost in an outage
 * of N seconds is back about N + RELAY_OVERDUE_SECONDS later. The stale
 * pass is the backstop: live payments untouched for RELAY_STALE_SECONDS.
 * A re-queued job that was not lost after all (a slow step, a backlog) is a
 * duplicate, dropped by the state machine's compare-and-set; to keep those
 * few, overdue counts from the time up to which the queue has been read
 * (queue_horizon: a job waiting behind a backlog is not lost), and the
 * overdue pass pushes next_due_at forward by as long as the payment was
 * overdue (capped at the stale window), so a payment that stays overdue
 * is re-queued after 5, 10, 20, 40 ... s, not every tick. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/clock.h"
#include "common/contracts.h"
#include "common/evloop.h"
#include "common/jobs.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pg.h"
#include "common/pgrow.h"
#include "common/redis.h"
#include "worker.h"

#define RELAY_BATCH	    "500"
#define OVERDUE_MAX_BATCHES 10 /* per tick: up to 5000 overdue payments */

/* Both passes run unprepared (pg_query), planned for the tables as they
 * are: they run from start-up, and a prepared statement's generic plan,
 * made while payments was empty, would keep scanning the whole table once
 * it is not (the webhook relay's case, services/webhook/relay.c). */

/* Live payments untouched for a stale window, each at most once per window
 * (reconciled_at), claimed with SKIP LOCKED so several workers split them. */
static const char relay_sql[] =
	"UPDATE payments p SET reconciled_at = clock_timestamp() FROM ("
	" SELECT id FROM payments"
	" WHERE status NOT IN ('COMPLETED', 'FAILED', 'REFUNDED')"
	"  AND updated_at < clock_timestamp() - make_interval(secs => $1::int)"
	"  AND (reconciled_at IS NULL"
	"   OR reconciled_at < clock_timestamp() - make_interval(secs => $1::int))"
	" ORDER BY updated_at LIMIT $2::int FOR UPDATE SKIP LOCKED) s"
	" WHERE p.id = s.id RETURNING p.id, p.status";

/* Live payments whose next step is overdue by $1 s, most overdue first,
 * claimed with SKIP LOCKED; next_due_at moves forward by the time overdue
 * (at most $3 s), so each is re-queued again only if it stays overdue.
 * Overdue is counted from $4 (unix ms) when that is earlier than now: the
 * time up to which the queue has been read (queue_horizon). */
static const char overdue_sql[] =
	"UPDATE payments p SET next_due_at = clock_timestamp() + LEAST("
	"  clock_timestamp() - p.next_due_at, make_interval(secs => $3::int)) FROM ("
	" SELECT id FROM payments"
	" WHERE status NOT IN ('COMPLETED', 'FAILED', 'REFUNDED')"
	"  AND next_due_at < LEAST(clock_timestamp(),"
	"   timestamptz 'epoch' + $4::bigint * interval '1 millisecond')"
	"   - make_interval(secs => $1::int)"
	" ORDER BY next_due_at LIMIT $2::int FOR UPDATE SKIP LOCKED) s"
	" WHERE p.id = s.id RETURNING p.id, p.status";

static struct metric *m_relayed;
static struct metric *m_overdue;
static bool relay_busy, overdue_busy;
static int overdue_batches;
static int64_t overdue_horizon; /* this pass's $4: unix ms */

/* relay_sql's and overdue_sql's columns, read by name (common/pgrow.h). */
enum { RC_ID, RC_STATUS, RC_N };
static const char *const relay_cols[RC_N] = {"id", "status"};

/* XADDs the first step of each returned (id, status); returns how many. */
static int requeue_rows(struct worker *w, const PGresult *res, const char *pass)
{
	int n = 0;
	struct pgrow c;
	if (pgrow_map(&c, res, relay_cols, RC_N) != 0) {
		log_event(LOG_ERROR, "relay: unexpected result", LF_S("error", c.err),
			  LF_S("pass", pass));
		return 0;
	}
	for (int i = 0; i < pgrow_count(&c); i++) {
		enum pay_state st;
		const char *id = pgrow_text(&c, i, RC_ID);
		const char *status = pgrow_text(&c, i, RC_STATUS);
		if (pay_state_parse(status, &st) != 0 || pay_state_step(st) < 0)
			continue;
		const char *m[PJ_COUNT] = {
			[PJ_PAYMENT_ID] = id,
			[PJ_STEP] = pay_step_name((enum pay_step)pay_state_step(st)),
			[PJ_ATTEMPT] = "1",
			[PJ_REQUEST_ID] = "relay",
		};
		struct job_field f[PJ_COUNT];
		int nf = ct_fields(&CT_PAY_JOB, m, f);
		if (jobs_add(w->redis, jobq_stream_key(w->jobs), 1000000, f, nf, NULL, NULL) != 0) {
			log_event(LOG_WARN, "relay could not queue a job (next window retries)",
				  LF_S("payment_id", id), LF_S("pass", pass));
			continue;
		}
		n++;
		log_event(LOG_INFO, "relayed a stalled payment", LF_S("payment_id", id),
			  LF_S("status", status), LF_S("pass", pass));
	}
	return n;
}

static void relay_done(void *arg, const PGresult *res, const char *err)
{
	struct worker *w = arg;
	relay_busy = false;
	if (err) {
		log_event(LOG_WARN, "relay scan failed", LF_S("error", err));
		return;
	}
	metric_add(m_relayed, (uint64_t)requeue_rows(w, res, "stale"));
}

static void overdue_batch(struct worker *w);

static void overdue_done(void *arg, const PGresult *res, const char *err)
{
	struct worker *w = arg;
	overdue_busy = false;
	if (err) {
		log_event(LOG_WARN, "relay overdue scan failed", LF_S("error", err));
		return;
	}
	int n = requeue_rows(w, res, "overdue");
	metric_add(m_relayed, (uint64_t)n);
	metric_add(m_overdue, (uint64_t)n);
	if (PQntuples(res) == strtol(RELAY_BATCH, NULL, 10) &&
	    ++overdue_batches < OVERDUE_MAX_BATCHES && !w->draining && rds_connected(w->redis))
		overdue_batch(w);
}

static void overdue_batch(struct worker *w)
{
	char secs[16], cap[16], horizon[24];
	snprintf(secs, sizeof(secs), "%d", w->cfg.relay_overdue_s);
	snprintf(cap, sizeof(cap), "%d", w->cfg.relay_stale_s);
	snprintf(horizon, sizeof(horizon), "%" PRId64, overdue_horizon);
	const char *params[] = {secs, RELAY_BATCH, cap, horizon};
	if (pg_query(w->pg, overdue_sql, 4, params, overdue_done, w) == 0)
		overdue_busy = true;
}

/* Overdue counts from the queue's horizon when that is earlier than now:
 * a payment due after the last job read (while later ones wait unread),
 * after the oldest job in flight here, or after the oldest delayed job not yet
 * promoted may have its job waiting, not lost. Re-queueing it would only
 * make a duplicate for the compare-and-set to drop (20,000 payments queued
 * at once made 10,806 of them; docs/operations.md, Recovery). A lost job
 * is still found, once the queue has been read past its due time. */
static void queue_horizon(void *arg, int64_t horizon_ms, const char *err)
{
	struct worker *w = arg;
	overdue_busy = false;
	if (w->draining)
		return;
	overdue_horizon = clock_wall_ms();
	if (err)
		log_event(LOG_WARN, "relay could not read the queue's horizon (overdue from now)",
			  LF_S("error", err));
	else if (horizon_ms >= 0 && horizon_ms < overdue_horizon)
		overdue_horizon = horizon_ms;
	overdue_batches = 0;
	overdue_batch(w);
}

static void relay_tick(void *arg)
{
	struct worker *w = arg;
	char secs[16];
	if (w->draining)
		return;
	/* With Redis down nothing could be queued: the overdue pass waits
	 * rather than pushing due times forward for nothing. */
	if (!overdue_busy && rds_connected(w->redis) &&
	    jobq_horizon(w->jobs, queue_horizon, w) == 0)
		overdue_busy = true;
	if (relay_busy)
		return;
	snprintf(secs, sizeof(secs), "%d", w->cfg.relay_stale_s);
	const char *params[] = {secs, RELAY_BATCH};
	if (pg_query(w->pg, relay_sql, 2, params, relay_done, w) == 0)
		relay_busy = true;
}

int relay_init(struct worker *w)
{
	m_relayed = metrics_counter("rampart_relay_jobs_total",
				    "Jobs re-enqueued for payments that had stalled", "");
	m_overdue =
		metrics_counter("rampart_relay_overdue_jobs_total",
				"Jobs re-enqueued for payments whose next step was overdue", "");
	w->relay_timer = timer_new(w->base, relay_tick, w);
	return w->relay_timer ? 0 : -1;
}

void relay_start(struct worker *w)
{
	timer_every(w->relay_timer, w->cfg.relay_interval_ms);
}
