/* relay.c - the outbox relay: each committed event becomes one delivery per
 * matching live endpoint (webhook_deliveries, in the same transaction that
 * marks the event published) and one job per delivery on
 * <prefix>:{webhooks}:jobs. A crash or a Redis failure between the commit
 * and the XADD leaves deliveries 'pending' and never attempted; a Redis
 * failure while a retry is scheduled (or a Redis crash losing its last
 * writes) leaves a failed delivery 'pending' with no job. The overdue pass
 * (about every second) re-queues pending deliveries whose next attempt
 * (next_attempt_at: now at creation, the retry's due time after a failed
 * attempt) is overdue by WEBHOOK_RELAY_OVERDUE_SECONDS, and pushes that due
 * time forward by as long as it was overdue (capped at the stale window),
 * so one that stays overdue (its endpoint's backlog defers it) is re-queued
 * after 5, 10, 20 ... s, not every pass. The stale pass, once per
 * WEBHOOK_RELAY_STALE_SECONDS, stays as the backstop for rows without a
 * due time. Publishing twice is harmless: receivers deduplicate by
 * webhook-id and the delivery handler skips deliveries already made. */
#include <stdio.h>
#include <stdlib.h>

#include "common/contracts.h"
#include "common/evloop.h"
#include "common/jobs.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pg.h"
#include "common/pgrow.h"
#include "common/redis.h"
#include "webhook.h"

#define RELAY_FIRST	 50  /* events claimed by a pass after an idle one */
#define RELAY_BATCH	 500 /* ... doubling while passes come back full */
#define RELAY_MAXLEN	 1000000
#define STALE_EVERY_MS	 5000 /* the stale pass runs about this often */
#define OVERDUE_EVERY_MS 1000 /* the overdue pass runs about this often */

/* The statements below are not prepared (pg_query, not pg_exec): each run
 * is planned for the tables as they are then. A prepared statement settles
 * on a generic plan after five runs, and these run from start-up, on tables
 * that may be empty: the relay's generic plan, made on an empty (vacuumed)
 * events table, scanned events and payments in a nested loop, and once
 * 20,000 payments' 80,000 events arrived each pass hit DB_QUERY_TIMEOUT_MS
 * (105 s for one pass without the timeout) until autovacuum's next ANALYZE
 * replaced the plan, a minute or more later. Planning relay_sql takes about
 * 0.3 ms, three times its prepared run when idle, so a quiet relay's tick
 * runs probe_sql instead, which is cheap to plan, and the pass only when
 * it finds an unpublished event. */

/* Is any event unpublished? (an index probe of events_unpublished) */
static const char probe_sql[] = "SELECT 1 FROM events WHERE published_at IS NULL LIMIT 1";

/* Claims unpublished events in order (SKIP LOCKED: several daemons split
 * them), creates their deliveries and marks them published, in one
 * statement, hence one transaction. An endpoint gets the events of payments
 * made with its own API key (tenants never see each other's payments);
 * events without a payment go to every endpoint subscribed to them. The
 * deliveries come back as inserted, not joined back to ev to sort them by
 * seq: the planner, estimating one unpublished event, joined 500 x 500
 * rows by nested loop (85% of the statement); deliveries run concurrently
 * anyway. Every row carries the count of events claimed, and a pass whose
 * events matched no endpoint still returns one row, with NULL ids, so the
 * relay knows its batch was full either way. */
static const char relay_sql[] =
	"WITH ev AS (SELECT e.id, e.seq, e.type, p.api_key_id FROM events e"
	"  LEFT JOIN payments p ON p.id = e.payment_id"
	"  WHERE e.published_at IS NULL ORDER BY e.seq LIMIT $1::int FOR UPDATE OF e SKIP LOCKED),"
	" pub AS (UPDATE events e SET published_at = clock_timestamp() FROM ev WHERE e.id = ev.id),"
	" ins AS (INSERT INTO webhook_deliveries (event_id, endpoint_id)"
	"  SELECT ev.id, w.id FROM ev JOIN webhook_endpoints w"
	"   ON w.enabled AND w.deleted_at IS NULL"
	"   AND (ev.api_key_id IS NULL OR w.api_key_id = ev.api_key_id)"
	"   AND (ev.type = ANY (w.events) OR '*' = ANY (w.events))"
	"  ON CONFLICT DO NOTHING RETURNING event_id, endpoint_id)"
	" SELECT ins.event_id, ins.endpoint_id, n.events"
	" FROM (SELECT count(*) AS events FROM ev) n LEFT JOIN ins ON true";

/* Deliveries created but never attempted for a stale window: their job was
 * lost. updated_at is bumped so each is re-queued once per window. */
static const char stale_sql[] =
	"UPDATE webhook_deliveries d SET updated_at = clock_timestamp() FROM ("
	" SELECT event_id, endpoint_id FROM webhook_deliveries"
	" WHERE state = 'pending' AND attempts = 0"
	"  AND updated_at < clock_timestamp() - make_interval(secs => $1::int)"
	" ORDER BY updated_at LIMIT $2::int FOR UPDATE SKIP LOCKED) s"
	" WHERE d.event_id = s.event_id AND d.endpoint_id = s.endpoint_id"
	" RETURNING d.event_id, d.endpoint_id";

/* Pending deliveries whose next attempt is overdue by $1 s (the job that
 * should have made it was lost), most overdue first; each comes back with
 * the attempt number to queue. */
static const char overdue_sql[] =
	"UPDATE webhook_deliveries d SET next_attempt_at = clock_timestamp() + LEAST("
	"  clock_timestamp() - d.next_attempt_at, make_interval(secs => $3::int)) FROM ("
	" SELECT event_id, endpoint_id FROM webhook_deliveries"
	" WHERE state = 'pending'"
	"  AND next_attempt_at < clock_timestamp() - make_interval(secs => $1::int)"
	" ORDER BY next_attempt_at LIMIT $2::int FOR UPDATE SKIP LOCKED) s"
	" WHERE d.event_id = s.event_id AND d.endpoint_id = s.endpoint_id"
	" RETURNING d.event_id, d.endpoint_id, d.attempts + 1 AS attempt";

static struct metric *m_events, *m_queued, *m_requeued, *m_overdue;
static bool relay_busy, stale_busy, overdue_busy;
static unsigned ticks;
static int batch_size = RELAY_FIRST;
static bool quiet; /* the last pass claimed no event: the next tick probes first */

static void relay_batch(struct webhook *w);

/* A statement's error, logged as what (not while shutting down, when the
 * pool fails whatever is in flight). True if there was one. */
static bool failed(const struct webhook *w, const char *err, const char *what)
{
	if (err && !w->closing)
		log_event(LOG_WARN, what, LF_S("error", err));
	return err != NULL;
}

/* The passes' columns, read by name (common/pgrow.h); relay_sql adds
 * events, overdue_sql attempt. */
enum { DC_EVENT_ID, DC_ENDPOINT_ID, DC_ATTEMPT, DC_N };
static const char *const delivery_cols[DC_N] = {"event_id", "endpoint_id", "attempt"};

/* XADDs one job per returned (event_id, endpoint_id), with the attempt
 * number from the attempt column (with_attempt; else the first). A refused
 * XADD is left to the overdue and stale passes. Returns how many were
 * queued. */
static int queue_rows(struct webhook *w, const PGresult *res, const char *why, bool with_attempt)
{
	int queued = 0;
	struct pgrow c;
	if (pgrow_map(&c, res, delivery_cols, with_attempt ? DC_N : DC_ATTEMPT) != 0) {
		log_event(LOG_ERROR, "relay: unexpected result", LF_S("error", c.err),
			  LF_S("pass", why));
		return 0;
	}
	for (int i = 0; i < pgrow_count(&c); i++) {
		if (pgrow_isnull(&c, i, DC_EVENT_ID)) /* relay_sql: claimed events, no delivery */
			continue;
		const char *m[WJ_COUNT] = {
			[WJ_EVENT_ID] = pgrow_text(&c, i, DC_EVENT_ID),
			[WJ_ENDPOINT_ID] = pgrow_text(&c, i, DC_ENDPOINT_ID),
			[WJ_ATTEMPT] = with_attempt ? pgrow_text(&c, i, DC_ATTEMPT) : "1",
		};
		struct job_field f[WJ_COUNT];
		int nf = ct_fields(&CT_WH_JOB, m, f);
		if (jobs_add(w->redis, jobq_stream_key(w->jobs), RELAY_MAXLEN, f, nf, NULL, NULL) !=
		    0) {
			log_event(LOG_WARN,
				  "relay could not queue a delivery (the stale pass retries)",
				  LF_S("event_id", f[0].value), LF_S("endpoint_id", f[1].value),
				  LF_S("pass", why));
			continue;
		}
		queued++;
	}
	return queued;
}

static void relay_done(void *arg, const PGresult *res, const char *err)
{
	struct webhook *w = arg;
	relay_busy = false;
	if (failed(w, err, "relay pass failed"))
		return;
	/* Every row carries the count of events the pass claimed. */
	static const char *const events_col[] = {"events"};
	struct pgrow ec;
	int64_t events = 0;
	if (pgrow_map(&ec, res, events_col, 1) != 0) {
		log_event(LOG_ERROR, "relay: unexpected result", LF_S("error", ec.err));
		return;
	}
	if (pgrow_count(&ec) > 0 && !pgrow_int64(&ec, 0, 0, &events))
		events = 0;
	quiet = events == 0;
	int queued = queue_rows(w, res, "relay", false);
	metric_add(m_queued, (uint64_t)queued);
	if (events > 0) {
		metric_add(m_events, (uint64_t)events);
		log_event(LOG_DEBUG, "events relayed", LF_I("events", events),
			  LF_I("deliveries", queued));
	}
	/* A full batch: more are probably waiting, so the next pass runs now
	 * and takes twice as many. The first pass after a quiet spell is small,
	 * so the first deliveries of a burst leave without waiting for a large
	 * statement. A full batch counts whether or not its events matched an
	 * endpoint: before, a batch of unmatched events (payment.onramp_pending
	 * with only payment.completed subscribed) returned no row and waited
	 * for the next tick at RELAY_FIRST events, and the events behind it
	 * with them (20,000 payments' completed webhooks arrived 98 s after the
	 * last payment completed; docs/performance.md). */
	if (events >= batch_size && !w->draining) {
		batch_size = batch_size * 2 < RELAY_BATCH ? batch_size * 2 : RELAY_BATCH;
		relay_batch(w);
	} else {
		batch_size = RELAY_FIRST;
	}
}

static void stale_done(void *arg, const PGresult *res, const char *err)
{
	struct webhook *w = arg;
	stale_busy = false;
	if (failed(w, err, "relay stale pass failed"))
		return;
	int n = queue_rows(w, res, "stale", false);
	if (n > 0) {
		metric_add(m_requeued, (uint64_t)n);
		log_event(LOG_INFO, "re-queued deliveries whose job was lost", LF_I("count", n));
	}
}

static void overdue_done(void *arg, const PGresult *res, const char *err)
{
	struct webhook *w = arg;
	overdue_busy = false;
	if (failed(w, err, "relay overdue pass failed"))
		return;
	int n = queue_rows(w, res, "overdue", true);
	if (n > 0) {
		metric_add(m_overdue, (uint64_t)n);
		log_event(LOG_INFO, "re-queued deliveries whose next attempt was overdue",
			  LF_I("count", n));
	}
}

static void relay_batch(struct webhook *w)
{
	char batch[16];
	snprintf(batch, sizeof(batch), "%d", batch_size);
	const char *params[] = {batch};
	if (pg_query(w->pg, relay_sql, 1, params, relay_done, w) == 0)
		relay_busy = true;
}

static void probe_done(void *arg, const PGresult *res, const char *err)
{
	struct webhook *w = arg;
	relay_busy = false;
	if (failed(w, err, "relay probe failed"))
		return;
	if (PQntuples(res) > 0 && !w->draining)
		relay_batch(w);
}

static void relay_tick(void *arg)
{
	struct webhook *w = arg;
	if (w->draining)
		return;
	if (!relay_busy) {
		if (!quiet)
			relay_batch(w);
		else if (pg_query(w->pg, probe_sql, 0, NULL, probe_done, w) == 0)
			relay_busy = true;
	}
	unsigned tick = ticks++;
	unsigned oevery = (unsigned)(OVERDUE_EVERY_MS / w->cfg.relay_interval_ms);
	/* With Redis down nothing could be queued: the pass waits rather than
	 * pushing due times forward for nothing. */
	if (!overdue_busy && tick % (oevery > 0 ? oevery : 1) == 0 && rds_connected(w->redis)) {
		char secs[16], batch[16], cap[16];
		snprintf(secs, sizeof(secs), "%d", w->cfg.relay_overdue_s);
		snprintf(batch, sizeof(batch), "%d", RELAY_BATCH);
		snprintf(cap, sizeof(cap), "%d", w->cfg.relay_stale_s);
		const char *params[] = {secs, batch, cap};
		if (pg_query(w->pg, overdue_sql, 3, params, overdue_done, w) == 0)
			overdue_busy = true;
	}
	unsigned every = (unsigned)(STALE_EVERY_MS / w->cfg.relay_interval_ms);
	if (!stale_busy && tick % (every > 0 ? every : 1) == 0) {
		char secs[16], batch[16];
		snprintf(secs, sizeof(secs), "%d", w->cfg.relay_stale_s);
		snprintf(batch, sizeof(batch), "%d", RELAY_BATCH);
		const char *params[] = {secs, batch};
		if (pg_query(w->pg, stale_sql, 2, params, stale_done, w) == 0)
			stale_busy = true;
	}
}

int webhook_relay_init(struct webhook *w)
{
	m_events = metrics_counter("rampart_webhook_events_relayed_total",
				   "Events fanned out to webhook deliveries", "");
	m_queued = metrics_counter("rampart_webhook_jobs_queued_total",
				   "Delivery jobs queued by the relay", "");
	m_requeued = metrics_counter("rampart_webhook_jobs_requeued_total",
				     "Delivery jobs re-queued by the stale pass (job lost)", "");
	m_overdue = metrics_counter("rampart_webhook_jobs_overdue_total",
				    "Delivery jobs re-queued by the overdue pass (job lost)", "");
	w->relay = timer_new(w->base, relay_tick, w);
	return w->relay ? 0 : -1;
}

/* The first pass runs at once, not one interval later: a daemon started
 * after a stop relays the backlog its predecessor left straight away. */
void webhook_relay_start(struct webhook *w)
{
	timer_every(w->relay, w->cfg.relay_interval_ms);
	relay_tick(w);
}
