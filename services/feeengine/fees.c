/* fees.c - the consumer of <prefix>:{fees}:requests (SPEC 6, 7). Each request
 * (fields id, reply_to, amount, from_currency, to_currency,
 * destination_country, priority, customer_tier, deadline_ms, request_id) is
 * priced by the deterministic engine, optionally refined by Claude (ai.c), and
 * answered on the api instance's reply stream with flat fields:
 *   id, status=ok, currency, total_fee, fee_percent, platform_fee, onramp_fee,
 *   offramp_fee, gas_cost, risk_premium, onramp, offramp, chain, reasoning,
 *   estimated_settlement_time, confidence_score, risk_factors (a JSON array),
 *   source (ai|fallback), fallback_reason, market_data_as_of
 * or id, status=error, http_status, code, message. A request read after its
 * deadline is dropped: its caller has already answered 504.
 *
 * Requests are read with NOACK: a request lives only until its deadline
 * (FEE_TIMEOUT_MS, seconds), far shorter than JOB_CLAIM_IDLE_MS, so reclaiming
 * one from a dead fee engine would only ever find it expired. Without a
 * pending list there is no XACK per request either. A fee engine killed mid-
 * request costs that request a 504; its caller may simply ask again. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/contracts.h"
#include "common/ids.h"
#include "common/jobs.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/money.h"
#include "common/redis.h"
#include "feeengine.h"

#define REPLY_MAXLEN   "10000"
#define REPLY_EXPIRE_S "300"
#define FALLBACK_CONF  750 /* SPEC 6: confidence_score 0.75 */

struct fee_req {
	struct feeengine *fe;
	struct job *job;
	char id[64];
	char reply_to[192];
	char dest[8];
	struct route_request req;
	struct route_result det;
	int64_t deadline_ms;
	int64_t market_as_of; /* of the view the decision was made from */
	uint64_t start_us;
	int replies_left; /* XADD and EXPIRE answers still due */
};

static struct metric *m_requests[4], *m_fallback[AI_OUTCOME_COUNT], *m_latency;
enum { REQ_AI, REQ_FALLBACK, REQ_REFUSED, REQ_EXPIRED };

int fees_init(struct feeengine *fe)
{
	static const char *const req_labels[4] = {"outcome=\"ai\"", "outcome=\"fallback\"",
						  "outcome=\"refused\"", "outcome=\"expired\""};
	(void)fe;
	for (int i = 0; i < 4; i++)
		m_requests[i] = metrics_counter(
			"rampart_fee_requests_total",
			"Fee requests by outcome: ai, fallback (deterministic), refused (an error "
			"reply), expired (read after its deadline, dropped)",
			req_labels[i]);
	for (int o = AI_DISABLED; o < AI_OUTCOME_COUNT; o++) {
		char labels[48];
		snprintf(labels, sizeof(labels), "reason=\"%s\"", ai_outcome_name(o));
		m_fallback[o] = metrics_counter(
			"rampart_fee_fallback_total",
			"Fee decisions answered by the deterministic fallback, by reason", labels);
	}
	m_latency = metrics_histogram("rampart_fee_decision_seconds",
				      "Time from reading a fee request to sending its reply", "",
				      metrics_latency_bounds, metrics_latency_nbounds);
	return 0;
}

/* ---- AI vs fallback counters for the operator dashboard -------------------- */

static void counted(void *arg, redisReply *reply, const char *err)
{
	(void)arg;
	(void)reply;
	(void)err; /* a lost increment only makes the dashboard's count low */
}

/* HINCRBY <prefix>:{fees}:decisions ai|fallback 1, and fallback.<reason>:
 * totals since the hash was created, read by the api's GET /v1/summary. */
static void count_decision(struct feeengine *fe, enum ai_outcome o)
{
	char key[RK_KEY_LEN], reason[64];
	rk_fee_decisions_key(key, sizeof(key), fe->cfg.base.redis_prefix);
	int rc = rds_command(fe->redis, counted, NULL, "HINCRBY %s %s 1", key,
			     o == AI_OK ? FEE_DECISION_AI : FEE_DECISION_FALLBACK);
	if (rc == 0 && o != AI_OK)
		rc = rds_command(
			fe->redis, counted, NULL, "HINCRBY %s %s 1", key,
			fee_decision_reason_field(reason, sizeof(reason), ai_outcome_name(o)));
	(void)rc; /* Redis down: the decision is answered all the same */
}

/* ---- the reply ------------------------------------------------------------- */

/* A reply's fields (common/contracts.h), NULL = absent. */
struct reply {
	const char *v[FR_COUNT];
	char nums[FR_COUNT][32];
};

static void put(struct reply *r, enum fee_reply_field k, const char *v)
{
	r->v[k] = v;
}

static void put_int(struct reply *r, enum fee_reply_field k, int64_t v)
{
	snprintf(r->nums[k], sizeof(r->nums[0]), "%" PRId64, v);
	r->v[k] = r->nums[k];
}

static void fee_req_free(struct fee_req *f)
{
	f->fe->pending--;
	free(f);
}

static void reply_sent(void *arg, redisReply *reply, const char *err)
{
	struct fee_req *f = arg;
	(void)reply;
	if (err && !f->fe->closing)
		log_event(LOG_WARN, "fee reply not written", LF_S("id", f->id), LF_S("error", err));
	if (--f->replies_left > 0)
		return;
	if (f->fe->closing)
		jobq_release(f->fe->jobs, f->job);
	else
		jobq_ack(f->fe->jobs, f->job);
	fee_req_free(f);
}

/* Whether reply_to's expiry is due for a refresh: at most once a minute
 * per stream (a small table of recently refreshed streams, by hash). */
static bool expire_due(const char *key)
{
	static struct {
		uint64_t hash;
		int64_t at_s;
	} seen[256];
	uint64_t h = id_hash(key);
	int64_t now = clock_wall_ms() / 1000;
	size_t i = h % 256;
	if (seen[i].hash == h && now - seen[i].at_s < 60)
		return false;
	seen[i].hash = h;
	seen[i].at_s = now;
	return true;
}

/* XADD reply_to MAXLEN ~ 10000 * fields..., and about once a minute per
 * stream EXPIRE reply_to 300, so the stream of an api instance that went
 * away disappears by itself. The request was read with NOACK: nothing to
 * acknowledge in Redis. */
static void reply_send(struct fee_req *f, struct reply *r)
{
	struct rds *redis = f->fe->redis;
	const char *expire[] = {"EXPIRE", f->reply_to, REPLY_EXPIRE_S};
	const char *argv[6 + 2 * FR_COUNT] = {"XADD", f->reply_to,  "MAXLEN",
					      "~",    REPLY_MAXLEN, "*"};
	struct job_field fields[FR_COUNT];
	int argc = 6, nf = ct_fields(&CT_FEE_REPLY, r->v, fields);
	for (int i = 0; i < nf; i++) {
		argv[argc++] = fields[i].key;
		argv[argc++] = fields[i].value;
	}

	metric_observe_us(m_latency, clock_mono_us() - f->start_us);
	f->replies_left = 1;
	if (rds_command_argv(redis, reply_sent, f, argc, argv, NULL, 0) != 0)
		f->replies_left--;
	if (expire_due(f->reply_to) && f->replies_left == 1 &&
	    rds_command_argv(redis, reply_sent, f, 3, expire, NULL, 0) == 0)
		f->replies_left++;
	if (f->replies_left == 0) {
		log_event(LOG_WARN, "fee reply not written", LF_S("id", f->id),
			  LF_S("error", "redis not connected"));
		jobq_release(f->fe->jobs, f->job); /* its caller times out (504) */
		fee_req_free(f);
	}
}

static void reply_head(struct fee_req *f, struct reply *r, const char *status)
{
	memset(r->v, 0, sizeof(r->v));
	put(r, FR_ID, f->id);
	put(r, FR_STATUS, status);
}

static void reply_error(struct fee_req *f, int http_status, const char *code, const char *msg)
{
	struct reply r;
	reply_head(f, &r, FEE_REPLY_ERROR);
	put_int(&r, FR_HTTP_STATUS, http_status);
	put(&r, FR_CODE, code);
	put(&r, FR_MESSAGE, msg);
	metric_inc(m_requests[REQ_REFUSED]);
	reply_send(f, &r);
}

static void reply_decision(struct fee_req *f, enum ai_outcome o, const struct ai_decision *ai,
			   const char *why)
{
	struct feeengine *fe = f->fe;
	const struct route_candidate *c = &f->det.cand[f->det.chosen];
	const struct route_fees *fees = o == AI_OK ? &ai->fees : &c->fees;
	enum route_chain chain = o == AI_OK ? ai->chain : (enum route_chain)f->det.chosen;
	struct reply r;
	char pct[24], conf[16], as_of[32];

	reply_head(f, &r, FEE_REPLY_OK);
	put(&r, FR_CURRENCY, f->req.from->code);
	put_int(&r, FR_TOTAL_FEE, fees->total);
	route_fee_percent(fees->total, f->req.amount, pct, sizeof(pct));
	put(&r, FR_FEE_PERCENT, pct);
	put_int(&r, FR_PLATFORM_FEE, fees->platform_fee);
	put_int(&r, FR_ONRAMP_FEE, fees->onramp_fee);
	put_int(&r, FR_OFFRAMP_FEE, fees->offramp_fee);
	put_int(&r, FR_GAS_COST, fees->gas_cost);
	put_int(&r, FR_RISK_PREMIUM, fees->risk_premium);
	put(&r, FR_ONRAMP, fe->view.route.provider_name);
	put(&r, FR_OFFRAMP, fe->view.route.provider_name);
	put(&r, FR_CHAIN, route_chain_name(chain));
	put(&r, FR_REASONING, o == AI_OK ? ai->reasoning : f->det.reasoning);
	put_int(&r, FR_ESTIMATED_SETTLEMENT_TIME,
		o == AI_OK ? ai->settlement_seconds : c->settlement_seconds);
	int milli = o == AI_OK ? ai->confidence_milli : FALLBACK_CONF;
	snprintf(conf, sizeof(conf), "%d.%03d", milli / 1000, milli % 1000);
	put(&r, FR_CONFIDENCE_SCORE, conf);

	/* Risk factors: the deterministic ones (market and routing facts),
	 * then Claude's, as a JSON array. */
	json_t *risks = json_array();
	for (int i = 0; i < f->det.n_risks; i++)
		json_array_append_new(risks, json_string(f->det.risks[i]));
	for (int i = 0; o == AI_OK && i < ai->n_risks; i++)
		json_array_append_new(risks, json_string(ai->risks[i]));
	char defaults[160] = "";
	size_t used = 0;
	for (int i = 0; i < SRC_COUNT; i++) {
		if (fe->view.state[i] != STATE_DEFAULT)
			continue;
		int w = snprintf(defaults + used, sizeof(defaults) - used, "%s%s", used ? ", " : "",
				 fe->src[i].name);
		if (w > 0 && (size_t)w < sizeof(defaults) - used)
			used += (size_t)w;
	}
	if (used) {
		char line[200];
		snprintf(line, sizeof(line), "market data on built-in defaults: %s", defaults);
		json_array_append_new(risks, json_string(line));
	}
	char *risks_text = json_dumps(risks, JSON_COMPACT);
	json_decref(risks);
	put(&r, FR_RISK_FACTORS, risks_text ? risks_text : "[]");
	put(&r, FR_SOURCE, o == AI_OK ? FEE_SOURCE_AI : FEE_SOURCE_FALLBACK);
	put(&r, FR_FALLBACK_REASON, o == AI_OK ? "" : ai_outcome_name(o));
	time_t t = (time_t)f->market_as_of;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(as_of, sizeof(as_of), "%Y-%m-%dT%H:%M:%SZ", &tm);
	put(&r, FR_MARKET_DATA_AS_OF, as_of);

	if (o == AI_OK) {
		metric_inc(m_requests[REQ_AI]);
	} else {
		metric_inc(m_requests[REQ_FALLBACK]);
		metric_inc(m_fallback[o]);
		if (o != AI_DISABLED)
			log_debug("fee fallback: %s", why ? why : ai_outcome_name(o));
	}
	count_decision(fe, o);
	reply_send(f, &r);
	free(risks_text);
}

static void ai_done(void *arg, enum ai_outcome o, const struct ai_decision *d, const char *why)
{
	reply_decision(arg, o, d, why);
}

/* ---- reading a request ------------------------------------------------------ */

/* The amount's USD band, for the AI cache key: identical requests differ
 * only within a band. The router's own thresholds are edges, so one band
 * never mixes amounts with different eligible chains. */
static int usd_band(const struct route_config *rc, int64_t cents)
{
	const int64_t edges[] = {
		10000,	     100000,	  1000000, rc->mid_usd_cents, rc->large_usd_cents,
		100000000LL, 1000000000LL};
	int b = 0;
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		b += cents >= edges[i];
	return b;
}

void fees_handle(void *arg, struct job *job)
{
	struct feeengine *fe = arg;
	const char *m[FQ_COUNT];
	ct_read_job(&CT_FEE_REQUEST, job, m);
	const char *id = m[FQ_ID], *reply_to = m[FQ_REPLY_TO];
	char prefix[RK_KEY_LEN];
	size_t n;
	const struct currency *all = money_currencies(&n);

	/* Only this installation's reply streams: a request cannot make the
	 * fee engine write to an arbitrary key. */
	rk_fee_replies_prefix(prefix, sizeof(prefix), fe->cfg.base.redis_prefix);
	if (!id || !*id || strlen(id) >= 64 || !reply_to ||
	    strncmp(reply_to, prefix, strlen(prefix)) != 0 || strlen(reply_to) >= 192) {
		log_event(LOG_WARN, "fee request without a usable id or reply_to: dropped",
			  LF_S("entry", job->id));
		jobq_ack(fe->jobs, job);
		return;
	}
	struct fee_req *f = calloc(1, sizeof(*f));
	if (!f) {
		jobq_release(fe->jobs, job);
		return;
	}
	fe->pending++;
	f->fe = fe;
	f->job = job;
	f->start_us = clock_mono_us();
	snprintf(f->id, sizeof(f->id), "%s", id);
	snprintf(f->reply_to, sizeof(f->reply_to), "%s", reply_to);

	if (!money_count_parse(m[FQ_DEADLINE_MS], &f->deadline_ms) ||
	    f->deadline_ms <= clock_wall_ms()) {
		metric_inc(m_requests[REQ_EXPIRED]);
		jobq_ack(fe->jobs, job);
		fee_req_free(f);
		return;
	}
	/* The api validated all of this; a request that fails here was not
	 * written by it. */
	const char *dest = m[FQ_DESTINATION_COUNTRY];
	if (!money_count_parse(m[FQ_AMOUNT], &f->req.amount) ||
	    !(f->req.from = money_currency(m[FQ_FROM_CURRENCY] ?: "")) ||
	    !(f->req.to = money_currency(m[FQ_TO_CURRENCY] ?: "")) ||
	    route_priority_parse(m[FQ_PRIORITY] ?: route_priority_name(PRIORITY_STANDARD),
				 &f->req.priority) ||
	    route_tier_parse(m[FQ_CUSTOMER_TIER] ?: route_tier_name(TIER_STANDARD), &f->req.tier)) {
		reply_error(f, 400, "INVALID_REQUEST", "malformed fee request");
		return;
	}
	snprintf(f->dest, sizeof(f->dest), "%s", dest ? dest : "");
	f->req.from_per_usd = fe->view.fx_per_usd[f->req.from - all];
	f->market_as_of = fe->view.as_of;
	if (route_decide(&fe->cfg.route, &fe->view.route, &f->req, &f->det) != 0) {
		reply_error(f, 400, "INVALID_AMOUNT", "amount too large to price");
		return;
	}
	if (f->det.chosen < 0) {
		reply_error(f, 503, "NO_ROUTE", f->det.reasoning);
		return;
	}
	char key[160];
	snprintf(key, sizeof(key), "%d|%s|%s|%s|%s|%s|%" PRIu64,
		 usd_band(&fe->cfg.route, f->det.amount_usd_cents), f->req.from->code,
		 f->req.to->code, f->dest, route_priority_name(f->req.priority),
		 route_tier_name(f->req.tier), fe->view.version);
	ai_decide(fe, key, &f->req, &f->det, f->dest, f->deadline_ms, ai_done, f);
}
