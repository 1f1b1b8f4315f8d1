/* steps.c - the payment state machine at work: one job = one step of one
 * payment. Load the payment, call the provider, commit the transition
 * (compare-and-set + history + outbox event in one statement), schedule the
 * next step, acknowledge. A job whose payment has moved on is stale: it is
 * acknowledged and dropped, so replays are harmless. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/contracts.h"
#include "common/ids.h"
#include "common/jobs.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pg.h"
#include "common/rnd.h"
#include "worker.h"

/* Transient database errors retry the same step after this long. */
#define DB_RETRY_MS   1000
#define RETRY_BASE_MS 500
#define RETRY_MAX_MS  60000

/* Loads of the jobs that arrived together, in one statement: one result
 * row per id, in input order (status NULL = no such payment). */
static const char load_sql[] =
	"SELECT p.status, p.amount, p.currency, p.payout_amount, p.payout_currency,"
	" p.source_account, p.destination_account, p.chain, p.onramp_ref, p.offramp_ref,"
	" (extract(epoch FROM clock_timestamp() - p.updated_at) * 1000)::bigint"
	" FROM unnest($1::text[]) WITH ORDINALITY AS i(id, ord)"
	" LEFT JOIN payments p ON p.id = i.id ORDER BY i.ord";

/* The compare-and-set, for every transition that is ready at the same time
 * (one statement, one commit): a payment is updated only from its expected
 * state, and its history row and outbox event are written only if it was.
 * One result row per input row, in input order: 1 = done, 0 = the payment
 * was not in the expected state (the job is stale). */
static const char transition_sql[] =
	"WITH i AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],"
	"  $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],"
	"  $12::bigint[])"
	" WITH ORDINALITY AS t(id, from_status, to_status, reason, onramp_ref, offramp_ref,"
	"  refund_ref, failure_code, failure_message, event_id, event_type, next_due, ord)),"
	" u AS (UPDATE payments p SET status = i.to_status, updated_at = clock_timestamp(),"
	"  next_due_at = timestamptz 'epoch' + i.next_due * interval '1 millisecond',"
	"  onramp_ref = COALESCE(i.onramp_ref, p.onramp_ref),"
	"  offramp_ref = COALESCE(i.offramp_ref, p.offramp_ref),"
	"  refund_ref = COALESCE(i.refund_ref, p.refund_ref),"
	"  failure_code = COALESCE(i.failure_code, p.failure_code),"
	"  failure_message = COALESCE(i.failure_message, p.failure_message)"
	"  FROM i WHERE p.id = i.id AND p.status = i.from_status"
	"  RETURNING p AS row, i.ord, i.from_status, i.reason, i.event_id, i.event_type),"
	" h AS (INSERT INTO payment_history (payment_id, from_status, to_status, reason)"
	"  SELECT (row).id, from_status, (row).status, reason FROM u),"
	" e AS (INSERT INTO events (id, type, payment_id, data)"
	"  SELECT event_id, event_type, (row).id, rampart_payment_json(row) FROM u)"
	" SELECT (u.ord IS NOT NULL)::int FROM i LEFT JOIN u ON u.ord = i.ord ORDER BY i.ord";
#define TRANSITION_COLS 12

/* When a payment's next step is due, recorded as its job is rescheduled
 * without a transition (a poll still pending, a retry, NULL for a refund
 * left to an operator): the relay re-queues a payment overdue by
 * RELAY_OVERDUE_SECONDS, so the due time must follow its job. Only while
 * the payment is still in the state the job was for. */
static const char due_sql[] =
	"UPDATE payments p SET next_due_at = timestamptz 'epoch' + i.due * interval '1 millisecond'"
	" FROM unnest($1::text[], $2::text[], $3::bigint[]) AS i(id, status, due)"
	" WHERE p.id = i.id AND p.status = i.status";

/* One job being worked on. */
struct step {
	struct worker *w;
	struct job *job; /* NULL once settled */
	enum pay_step step;
	int attempt;
	char request_id[80];
	char id[ID_MAX];
	enum pay_state state;
	long long amount, payout, age_ms;
	char currency[8], payout_currency[8], chain[32];
	char source[257], dest[257], onramp_ref[96], offramp_ref[96];
	/* the transition being committed */
	enum pay_state to;
	struct prov_result res;
	uint64_t due_ms; /* when the next step is due (0: none, terminal) */
	bool give_up;	 /* attempts exhausted: DLQ after the transition */
	char reason[200];
};

static struct metric *m_stale, *m_stranded, *m_dead;

static void step_free(struct step *s)
{
	free(s);
}

static void due_done(void *arg, const PGresult *res, int row, const char *err)
{
	(void)arg;
	(void)res;
	(void)row;
	if (err)
		log_event(LOG_WARN,
			  "could not record when a payment is due (the relay may repeat it)",
			  LF_S("error", err));
}

/* Records in the payment's row when its next step is due (0: never, the
 * stale window only), alongside the Redis write that schedules it. */
static void record_due(const struct step *s, uint64_t due_ms)
{
	char due[24];
	snprintf(due, sizeof(due), "%" PRIu64, due_ms);
	const char *params[] = {s->id, pay_state_name(s->state), due_ms ? due : NULL};
	if (pg_batcher_add(s->w->due_batch, params, due_done, NULL) != 0)
		log_event(LOG_WARN, "could not record when a payment is due (pool busy)",
			  LF_S("payment_id", s->id));
}

/* ---- settling ------------------------------------------------------------ */

static void fields_for(const struct step *s, enum pay_step step, int attempt, char *abuf,
		       size_t alen, struct job_field f[PJ_COUNT])
{
	snprintf(abuf, alen, "%d", attempt);
	const char *m[PJ_COUNT] = {[PJ_PAYMENT_ID] = s->id,
				   [PJ_STEP] = pay_step_name(step),
				   [PJ_ATTEMPT] = abuf,
				   [PJ_REQUEST_ID] = s->request_id};
	(void)ct_fields(&CT_PAY_JOB, m, f); /* every field present: PJ_COUNT of them */
}

/* Settles the job with a follow-up step due at due_ms (0 = now). */
static void settle_next(struct step *s, enum pay_step step, int attempt, uint64_t due_ms)
{
	struct job_field f[PJ_COUNT];
	char a[16];
	fields_for(s, step, attempt, a, sizeof(a), f);
	if (due_ms == 0)
		jobq_next(s->w->jobs, s->job, f, PJ_COUNT);
	else
		jobq_retry(s->w->jobs, s->job, f, PJ_COUNT, due_ms);
	s->job = NULL;
}

static void settle_ack(struct step *s)
{
	jobq_ack(s->w->jobs, s->job);
	s->job = NULL;
}

/* Jitter in [0, ms/4]: spreads polls and retries of many payments. */
static uint64_t jitter(uint64_t ms)
{
	return ms / 4 ? rnd_below(ms / 4 + 1) : 0;
}

/* How long to wait before polling a leg again: a quarter of the time the
 * payment has spent in its state, within [poll_min, poll_max]. Young legs
 * are polled often, old ones rarely. */
static uint64_t poll_due(const struct step *s)
{
	const struct worker_config *c = &s->w->cfg;
	uint64_t d = s->age_ms > 0 ? (uint64_t)s->age_ms / 4 : 0;
	if (d < (uint64_t)c->poll_min_ms)
		d = (uint64_t)c->poll_min_ms;
	if (d > (uint64_t)c->poll_max_ms)
		d = (uint64_t)c->poll_max_ms;
	return (uint64_t)clock_wall_ms() + d + jitter(d);
}

/* Exponential backoff for transient failures (attempt 1 -> base). */
static uint64_t retry_due(const struct step *s)
{
	uint64_t d = RETRY_BASE_MS;
	for (int i = 1; i < s->attempt && d < RETRY_MAX_MS; i++)
		d *= 2;
	if (d > RETRY_MAX_MS)
		d = RETRY_MAX_MS;
	if (s->res.retry_after_ms > d)
		d = s->res.retry_after_ms;
	return (uint64_t)clock_wall_ms() + d + jitter(d);
}

/* The database failed us: try the same step again soon. */
static void retry_db(struct step *s, const char *err)
{
	log_event(LOG_WARN, "payment step postponed: database error", LF_S("payment_id", s->id),
		  LF_S("step", pay_step_name(s->step)), LF_S("error", err));
	settle_next(s, s->step, s->attempt, (uint64_t)clock_wall_ms() + DB_RETRY_MS);
	step_free(s);
}

/* ---- after a committed transition --------------------------------------------- */

static void after_transition(struct step *s)
{
	if (s->give_up) {
		/* Attempts exhausted: the job goes to the DLQ; a refund, if money
		 * moved, starts as a fresh job. */
		if (s->to == PAY_REFUND_PENDING) {
			struct job_field f[PJ_COUNT];
			char a[16];
			fields_for(s, STEP_REFUND, 1, a, sizeof(a), f);
			if (jobs_add(s->w->redis, jobq_stream_key(s->w->jobs), 1000000, f, PJ_COUNT,
				     NULL, NULL) != 0)
				log_event(LOG_WARN, "refund job not queued; the relay will",
					  LF_S("payment_id", s->id));
		}
		metric_inc(m_dead);
		jobq_dead(s->w->jobs, s->job, s->reason);
		s->job = NULL;
		step_free(s);
		return;
	}
	/* The step that advances the new state (common/payment.h): a poll
	 * of a new leg is due later, an off-ramp to start or a refund now. */
	int next = pay_state_step(s->to);
	if (next < 0) /* terminal */
		settle_ack(s);
	else
		settle_next(s, (enum pay_step)next, 1,
			    s->to == PAY_ONRAMP_PENDING || s->to == PAY_OFFRAMP_PENDING ? s->due_ms
											: 0);
	step_free(s);
}

static void transition_done(void *arg, const PGresult *res, int row, const char *err)
{
	struct step *s = arg;
	if (err || row < 0) {
		retry_db(s, err ? err : "no result for the transition");
		return;
	}
	if (strcmp(PQgetvalue(res, row, 0), "1") != 0) {
		/* Lost the compare-and-set: another job got there first. */
		metric_inc(m_stale);
		log_event(LOG_DEBUG, "stale job dropped", LF_S("payment_id", s->id),
			  LF_S("step", pay_step_name(s->step)));
		settle_ack(s);
		step_free(s);
		return;
	}
	char labels[64];
	snprintf(labels, sizeof(labels), "to=\"%s\"", pay_state_name(s->to));
	metric_inc(metrics_counter("rampart_payment_transitions_total",
				   "Payment state transitions committed", labels));
	log_event(LOG_INFO, "payment transition", LF_S("payment_id", s->id),
		  LF_S("request_id", s->request_id), LF_S("from", pay_state_name(s->state)),
		  LF_S("to", pay_state_name(s->to)), LF_S("step", pay_step_name(s->step)));
	after_transition(s);
}

/* The one function that changes a payment's state: commits s->state ->
 * to with the references and failure the step produced. */
static void transition(struct step *s, enum pay_state to, const char *reason)
{
	char evt[ID_MAX];
	s->to = to;
	if (!pay_transition_allowed(s->state, to) || id_new("evt", evt) != 0) {
		log_event(LOG_ERROR, "illegal transition refused", LF_S("payment_id", s->id),
			  LF_S("from", pay_state_name(s->state)), LF_S("to", pay_state_name(to)));
		jobq_dead(s->w->jobs, s->job, "illegal transition");
		step_free(s);
		return;
	}
	const char *ref = s->res.ref[0] ? s->res.ref : NULL;
	const bool failing = to == PAY_FAILED || to == PAY_REFUND_PENDING;
	char due[24];
	/* The next step's due time, committed with the transition: a first
	 * poll of a new leg, or at once (an off-ramp to start, a refund). */
	if (to == PAY_ONRAMP_PENDING || to == PAY_OFFRAMP_PENDING) {
		s->age_ms = 0;
		s->due_ms = poll_due(s);
	} else {
		s->due_ms = pay_state_terminal(to) ? 0 : (uint64_t)clock_wall_ms();
	}
	snprintf(due, sizeof(due), "%" PRIu64, s->due_ms);
	const char *params[TRANSITION_COLS] = {
		s->id,
		pay_state_name(s->state),
		pay_state_name(to),
		reason,
		to == PAY_ONRAMP_PENDING ? ref : NULL,
		to == PAY_OFFRAMP_PENDING ? ref : NULL,
		to == PAY_REFUNDED ? ref : NULL,
		failing ? (s->res.failure_code[0] ? s->res.failure_code : "PROVIDER_ERROR") : NULL,
		failing && s->res.error[0] ? s->res.error : NULL,
		evt,
		pay_event_type(to),
		s->due_ms ? due : NULL,
	};
	if (pg_batcher_add(s->w->transition_batch, params, transition_done, s) != 0)
		retry_db(s, "database unavailable");
}

/* ---- provider outcome ----------------------------------------------------- */

static void provider_done(void *arg, const struct prov_result *r)
{
	struct step *s = arg;
	char labels[96];
	static const char *const outcomes[] = {"ok", "pending", "failed", "retry"};

	s->res = *r;
	snprintf(labels, sizeof(labels), "step=\"%s\",outcome=\"%s\"", pay_step_name(s->step),
		 outcomes[r->outcome]);
	metric_inc(metrics_counter("rampart_provider_calls_total",
				   "Provider calls by step and outcome", labels));
	switch (r->outcome) {
	case PROV_OK: {
		static const enum pay_state next[STEP_COUNT] = {
			[STEP_ONRAMP_INITIATE] = PAY_ONRAMP_PENDING,
			[STEP_ONRAMP_POLL] = PAY_ONRAMP_COMPLETE,
			[STEP_OFFRAMP_INITIATE] = PAY_OFFRAMP_PENDING,
			[STEP_OFFRAMP_POLL] = PAY_COMPLETED,
			[STEP_REFUND] = PAY_REFUNDED,
		};
		transition(s, next[s->step], NULL);
		return;
	}
	case PROV_PENDING: {
		uint64_t due = poll_due(s);
		record_due(s, due);
		settle_next(s, s->step, s->attempt, due);
		step_free(s);
		return;
	}
	case PROV_FAILED:
		if (s->step == STEP_REFUND) {
			/* Nothing left to try automatically: an operator must act. */
			metric_inc(m_stranded);
			log_event(LOG_ERROR, "refund refused: payment needs an operator",
				  LF_S("payment_id", s->id), LF_S("error", r->error));
			snprintf(s->reason, sizeof(s->reason), "refund refused: %s", r->error);
			record_due(s, 0); /* left to an operator (and the stale window) */
			jobq_dead(s->w->jobs, s->job, s->reason);
			metric_inc(m_dead);
			step_free(s);
			return;
		}
		transition(s, pay_give_up_state(s->state), r->error);
		return;
	case PROV_RETRY:
		if (s->attempt < s->w->cfg.max_attempts) {
			log_event(LOG_INFO, "provider call will be retried",
				  LF_S("payment_id", s->id), LF_S("step", pay_step_name(s->step)),
				  LF_I("attempt", s->attempt), LF_S("error", r->error));
			s->attempt++;
			uint64_t due = retry_due(s);
			record_due(s, due);
			settle_next(s, s->step, s->attempt, due);
			step_free(s);
			return;
		}
		snprintf(s->reason, sizeof(s->reason), "%s: %d attempts failed, last: %s",
			 pay_step_name(s->step), s->attempt, r->error);
		log_event(LOG_WARN, "provider attempts exhausted", LF_S("payment_id", s->id),
			  LF_S("step", pay_step_name(s->step)), LF_S("error", r->error));
		if (s->step == STEP_REFUND) {
			metric_inc(m_stranded);
			log_event(LOG_ERROR, "refund attempts exhausted: payment needs an operator",
				  LF_S("payment_id", s->id));
			record_due(s, 0);
			metric_inc(m_dead);
			jobq_dead(s->w->jobs, s->job, s->reason);
			step_free(s);
			return;
		}
		s->give_up = true;
		snprintf(s->res.failure_code, sizeof(s->res.failure_code), "PROVIDER_UNAVAILABLE");
		transition(s, pay_give_up_state(s->state), s->reason);
		return;
	}
}

/* ---- loading ------------------------------------------------------------ */

static void copy_col(const PGresult *res, int row, int col, char *dst, size_t len)
{
	snprintf(dst, len, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

static void load_done(void *arg, const PGresult *res, int row, const char *err)
{
	struct step *s = arg;
	static const enum prov_op ops[STEP_COUNT] = {
		[STEP_ONRAMP_INITIATE] = OP_INITIATE_ONRAMP,
		[STEP_ONRAMP_POLL] = OP_POLL_ONRAMP,
		[STEP_OFFRAMP_INITIATE] = OP_INITIATE_OFFRAMP,
		[STEP_OFFRAMP_POLL] = OP_POLL_OFFRAMP,
		[STEP_REFUND] = OP_REFUND,
	};
	if (err || row < 0) {
		retry_db(s, err ? err : "no result for the load");
		return;
	}
	if (PQgetisnull(res, row, 0)) {
		log_event(LOG_ERROR, "job for an unknown payment", LF_S("payment_id", s->id));
		metric_inc(m_dead);
		jobq_dead(s->w->jobs, s->job, "unknown payment");
		step_free(s);
		return;
	}
	if (pay_state_parse(PQgetvalue(res, row, 0), &s->state) != 0 ||
	    s->state != pay_step_state(s->step)) {
		metric_inc(m_stale);
		log_event(LOG_DEBUG, "stale job dropped", LF_S("payment_id", s->id),
			  LF_S("step", pay_step_name(s->step)),
			  LF_S("status", PQgetvalue(res, row, 0)));
		settle_ack(s);
		step_free(s);
		return;
	}
	s->amount = strtoll(PQgetvalue(res, row, 1), NULL, 10);
	copy_col(res, row, 2, s->currency, sizeof(s->currency));
	s->payout = strtoll(PQgetvalue(res, row, 3), NULL, 10);
	copy_col(res, row, 4, s->payout_currency, sizeof(s->payout_currency));
	copy_col(res, row, 5, s->source, sizeof(s->source));
	copy_col(res, row, 6, s->dest, sizeof(s->dest));
	copy_col(res, row, 7, s->chain, sizeof(s->chain));
	copy_col(res, row, 8, s->onramp_ref, sizeof(s->onramp_ref));
	copy_col(res, row, 9, s->offramp_ref, sizeof(s->offramp_ref));
	s->age_ms = strtoll(PQgetvalue(res, row, 10), NULL, 10);

	struct prov_payment p = {
		.id = s->id,
		.amount = s->amount,
		.currency = s->currency,
		.payout_amount = s->payout,
		.payout_currency = s->payout_currency,
		.source_account = s->source,
		.destination_account = s->dest,
		.chain = s->chain,
		.onramp_ref = s->onramp_ref[0] ? s->onramp_ref : NULL,
		.offramp_ref = s->offramp_ref[0] ? s->offramp_ref : NULL,
	};
	if (provider_call(s->w->provider, ops[s->step], &p, provider_done, s) != 0) {
		struct prov_result r = {.outcome = PROV_RETRY};
		snprintf(r.error, sizeof(r.error), "provider refused the call");
		provider_done(s, &r);
	}
}

/* ---- the handler ---------------------------------------------------------- */

void steps_handle(void *arg, struct job *job)
{
	struct worker *w = arg;
	const char *m[PJ_COUNT];
	ct_read_job(&CT_PAY_JOB, job, m);
	const char *id = m[PJ_PAYMENT_ID], *step = m[PJ_STEP];
	const char *attempt = m[PJ_ATTEMPT], *rid = m[PJ_REQUEST_ID];
	struct step *s = calloc(1, sizeof(*s));
	char *end = NULL;
	long n = attempt ? strtol(attempt, &end, 10) : 1;

	if (!s) {
		jobq_release(w->jobs, job); /* reclaimed later */
		return;
	}
	s->w = w;
	s->job = job;
	if (!id || !id_valid("pay", id) || !step || pay_step_parse(step, &s->step) != 0 ||
	    (attempt && (*end || n < 1 || n > 1000))) {
		log_event(LOG_ERROR, "malformed job", LF_S("job_id", job->id),
			  LF_S("payment_id", id), LF_S("step", step));
		metric_inc(m_dead);
		jobq_dead(w->jobs, job,
			  "malformed job: needs payment_id, a known step, attempt >= 1");
		step_free(s);
		return;
	}
	s->attempt = (int)n;
	snprintf(s->id, sizeof(s->id), "%s", id);
	snprintf(s->request_id, sizeof(s->request_id), "%s", rid && *rid ? rid : "-");
	const char *params[] = {s->id};
	if (pg_batcher_add(w->load_batch, params, load_done, s) != 0)
		retry_db(s, "database unavailable");
}

int steps_init(struct worker *w)
{
	/* As many batches in flight as connections, up to 256 jobs each. */
	w->load_batch = pg_batcher_new(w->pg, load_sql, 1, 256, w->cfg.db_pool_size);
	w->transition_batch =
		pg_batcher_new(w->pg, transition_sql, TRANSITION_COLS, 256, w->cfg.db_pool_size);
	m_stale = metrics_counter("rampart_jobs_stale_total",
				  "Jobs dropped because their payment had moved on", "");
	m_stranded = metrics_counter("rampart_payments_stranded_total",
				     "Refunds that failed for good: an operator must act", "");
	m_dead = metrics_counter("rampart_payment_jobs_dead_total",
				 "Payment jobs sent to the dead-letter queue", "");
	w->due_batch = pg_batcher_new(w->pg, due_sql, 3, 256, 1);
	return w->load_batch && w->transition_batch && w->due_batch ? 0 : -1;
}
