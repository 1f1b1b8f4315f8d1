/* fees.c - POST /v1/fees/calculate (SPEC 6): the request is validated here,
 * added to <prefix>:{fees}:requests with reply_to = this loop's own reply
 * stream <prefix>:{fees}:replies:<host>-<pid>-<nonce>-<loop>, and the HTTP
 * request waits until the fee engine's reply with the same id arrives, or
 * FEE_TIMEOUT_MS passes (504 FEE_ENGINE_TIMEOUT). Many requests wait at once;
 * a reply for a request that already timed out finds nobody and is dropped.
 *
 * Each loop reads its reply stream on a connection of its own with
 * XREAD BLOCK from the last id it saw, so no reply between two reads is
 * missed. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "app.h"
#include "common/evloop.h"
#include "common/ids.h"
#include "common/jobs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/rdsreply.h"
#include "common/redis.h"

#define FEE_BUCKETS	    1024
#define FEE_READ_BLOCK_MS   1000
#define FEE_READ_COUNT	    "512"
#define FEE_REQUESTS_MAXLEN 100000L

struct fee_wait {
	LIST_ENTRY(fee_wait) link;
	struct fees_loop *fl;
	struct http_req *r;
	struct timer *timer;
	char id[64];
};
LIST_HEAD(fee_bucket, fee_wait);

struct fees_loop {
	struct loop *l;
	struct rds *rd;	    /* XREAD BLOCK on the reply stream only */
	struct timer *read; /* restarts reading, e.g. after Redis came back */
	bool reading;
	char stream[RK_KEY_LEN];   /* this loop's reply stream */
	char requests[RK_KEY_LEN]; /* <prefix>:{fees}:requests */
	char last_id[48];	   /* last reply entry seen */
	uint64_t seq;
	struct fee_bucket buckets[FEE_BUCKETS];
	size_t waiting;
};

static struct metric *m_timeouts, *m_dropped, *m_replies;

static struct fee_wait *wait_find(struct fees_loop *fl, const char *id)
{
	struct fee_wait *w;
	LIST_FOREACH(w, &fl->buckets[id_hash(id) % FEE_BUCKETS], link)
	if (strcmp(w->id, id) == 0)
		return w;
	return NULL;
}

static void wait_free(struct fee_wait *w)
{
	LIST_REMOVE(w, link);
	w->fl->waiting--;
	timer_free(w->timer);
	free(w);
}

/* ---- replies ---------------------------------------------------------------- */

static json_int_t int_value(const char *v)
{
	return v ? (json_int_t)strtoll(v, NULL, 10) : 0;
}

/* The SPEC 6 response from the fee engine's flat reply fields. */
static json_t *decision_json(const char *const *v)
{
	json_t *rf = v[FR_RISK_FACTORS] ? json_loads(v[FR_RISK_FACTORS], 0, NULL) : NULL;
	if (!json_is_array(rf)) {
		json_decref(rf);
		rf = json_array();
	}
	json_t *body = json_pack(
		"{s:I,s:s,s:s,s:{s:I,s:I,s:I,s:I,s:I},s:{s:s,s:s,s:s,s:s},s:I,s:f,s:o,s:s,s:s}",
		"total_fee", int_value(v[FR_TOTAL_FEE]), "currency", v[FR_CURRENCY] ?: "",
		"fee_percent", v[FR_FEE_PERCENT] ?: "", "fee_breakdown", "platform_fee",
		int_value(v[FR_PLATFORM_FEE]), "onramp_fee", int_value(v[FR_ONRAMP_FEE]),
		"offramp_fee", int_value(v[FR_OFFRAMP_FEE]), "gas_cost", int_value(v[FR_GAS_COST]),
		"risk_premium", int_value(v[FR_RISK_PREMIUM]), "recommended_provider", "onramp",
		v[FR_ONRAMP] ?: "", "offramp", v[FR_OFFRAMP] ?: "", "chain", v[FR_CHAIN] ?: "",
		"reasoning", v[FR_REASONING] ?: "", "estimated_settlement_time",
		int_value(v[FR_ESTIMATED_SETTLEMENT_TIME]), "confidence_score",
		v[FR_CONFIDENCE_SCORE] ? strtod(v[FR_CONFIDENCE_SCORE], NULL) : 0.0, "risk_factors",
		rf, "source", v[FR_SOURCE] ?: "", "market_data_as_of",
		v[FR_MARKET_DATA_AS_OF] ?: "");
	const char *reason = v[FR_FALLBACK_REASON];
	if (body && reason && *reason)
		json_object_set_new(body, "fallback_reason", json_string(reason));
	return body;
}

void fees_reply_answer(const char *const *v, struct fees_answer *out)
{
	memset(out, 0, sizeof(*out));
	if (v[FR_STATUS] && strcmp(v[FR_STATUS], FEE_REPLY_OK) == 0) {
		out->status = 200;
		if (!(out->body = decision_json(v))) {
			out->status = 502;
			out->code = "FEE_ENGINE_ERROR";
			out->message = "the fee engine's reply could not be read";
		}
		return;
	}
	long code = (long)int_value(v[FR_HTTP_STATUS]);
	out->status = code < 400 || code > 599 ? 502 : (int)code;
	out->code = v[FR_CODE] ?: "FEE_ENGINE_ERROR";
	out->message = v[FR_MESSAGE] ?: "the fee engine refused the request";
}

/* One entry of the reply stream: answers the request waiting for it. */
static void reply_entry(void *arg, const char *entry_id, const redisReply *fields)
{
	struct fees_loop *fl = arg;
	const char *v[FR_COUNT];
	struct fees_answer ans;

	snprintf(fl->last_id, sizeof(fl->last_id), "%s", entry_id);
	ct_read(&CT_FEE_REPLY, rr_field_get, fields, v);
	struct fee_wait *w = v[FR_ID] ? wait_find(fl, v[FR_ID]) : NULL;
	if (!w) { /* timed out already, or not ours */
		metric_inc(m_dropped);
		return;
	}
	metric_inc(m_replies);
	struct http_req *r = w->r;
	wait_free(w);
	fees_reply_answer(v, &ans);
	if (ans.status == 200)
		http_reply_json(r, 200, ans.body);
	else
		http_reply_error(r, ans.status, ans.code, NULL, "%s", ans.message);
}

static void read_send(struct fees_loop *fl);

/* XREAD reply: [[stream, [[id, [k, v, ...]], ...]]] or nil on timeout. */
static void read_done(void *arg, redisReply *reply, const char *err)
{
	struct fees_loop *fl = arg;
	fl->reading = false;
	if (err || !reply) {
		if (err && strcmp(err, "client shutting down") != 0)
			log_debug("fee replies read failed: %s", err);
		return; /* the read timer retries */
	}
	rr_xread_entries(reply, reply_entry, fl); /* nil on timeout: none */
	read_send(fl);
}

static void read_send(struct fees_loop *fl)
{
	const char *argv[] = {"XREAD", "COUNT",	  FEE_READ_COUNT, "BLOCK",
			      "1000",  "STREAMS", fl->stream,	  fl->last_id};
	if (fl->reading || !rds_connected(fl->rd))
		return;
	if (rds_command_argv(fl->rd, read_done, fl, 8, argv, NULL, FEE_READ_BLOCK_MS + 3000) == 0)
		fl->reading = true;
}

/* Starts (or restarts, after Redis came back) the reading. */
static void read_tick(void *arg)
{
	read_send(arg);
}

/* ---- requests ----------------------------------------------------------------- */

static void timeout_cb(void *arg)
{
	struct fee_wait *w = arg;
	struct http_req *r = w->r;
	int ms = w->fl->l->app->cfg.fee_timeout_ms;
	metric_inc(m_timeouts);
	wait_free(w);
	http_reply_error(r, 504, "FEE_ENGINE_TIMEOUT", NULL,
			 "the fee engine did not answer within %d ms", ms);
}

static void added(void *arg, const char *err)
{
	struct fee_wait *w = arg;
	if (!err)
		return; /* now waiting for the reply (or the timer) */
	struct http_req *r = w->r;
	if (strcmp(err, "client shutting down") != 0)
		log_event(LOG_WARN, "fee request not queued", LF_S("error", err));
	wait_free(w);
	http_reply_error(r, 503, "FEE_ENGINE_UNAVAILABLE", NULL,
			 "the fee request could not be queued: %s", err);
}

/* An optional member that must be one of choices; 0, or -1 after a 400. */
static int choice(const json_t *body, const char *name, const char *const *choices,
		  const char **out, struct jv_error *e)
{
	json_t *v = json_object_get(body, name);
	*out = choices[0];
	if (!v || json_is_null(v))
		return 0;
	const char *s = json_string_value(v);
	for (int i = 0; s && choices[i]; i++)
		if (strcmp(s, choices[i]) == 0) {
			*out = choices[i];
			return 0;
		}
	return jv_fail(e, 400, "INVALID_FIELD", name, "%s must be one of \"%s\", \"%s\"%s%s%s",
		       name, choices[0], choices[1], choices[2] ? ", \"" : "",
		       choices[2] ? choices[2] : "", choices[2] ? "\"" : "");
}

int fees_validate(const json_t *body, struct fees_input *in, struct jv_error *e)
{
	static const struct jv_field fields[] = {
		{"from_currency", JV_STRING, true, 16, NULL},
		{"to_currency", JV_STRING, true, 16, NULL},
		{"destination_country", JV_STRING, false, 2, NULL},
	};
	/* The names the feeengine parses back (route_priority_parse,
	 * route_tier_parse): one table, common/route.c. */
	const char *const priorities[] = {route_priority_name(PRIORITY_STANDARD),
					  route_priority_name(PRIORITY_EXPRESS), NULL};
	const char *const tiers[] = {route_tier_name(TIER_STANDARD), route_tier_name(TIER_PREMIUM),
				     route_tier_name(TIER_ENTERPRISE), NULL};

	if (jv_check(body, fields, sizeof(fields) / sizeof(fields[0]), e) != 0 ||
	    jv_amount(body, "amount", &in->amount, e) != 0)
		return -1;
	const char *names[2] = {"from_currency", "to_currency"};
	const struct currency **cur[2] = {&in->from, &in->to};
	for (int i = 0; i < 2; i++) {
		const char *code = jv_str(body, names[i]);
		if (!(*cur[i] = money_currency(code)))
			return jv_fail(e, 400, "UNSUPPORTED_CURRENCY", names[i],
				       "%s \"%s\" is not a supported currency", names[i], code);
	}
	if (in->from == in->to)
		return jv_fail(e, 400, "SAME_CURRENCY", "to_currency",
			       "from_currency and to_currency must differ");
	const char *country = jv_str(body, "destination_country");
	if (country && !(strlen(country) == 2 && country[0] >= 'A' && country[0] <= 'Z' &&
			 country[1] >= 'A' && country[1] <= 'Z'))
		return jv_fail(e, 400, "INVALID_FIELD", "destination_country",
			       "destination_country must be an ISO 3166-1 alpha-2 code such as "
			       "\"DE\"");
	in->country = country;
	if (choice(body, "priority", priorities, &in->priority, e) ||
	    choice(body, "customer_tier", tiers, &in->tier, e))
		return -1;
	return 0;
}

void fees_request_fields(const struct fees_input *in, const char *id, const char *reply_to,
			 int64_t deadline_ms, const char *request_id, struct fees_request_msg *m)
{
	snprintf(m->amount, sizeof(m->amount), "%" PRId64, in->amount);
	snprintf(m->deadline_ms, sizeof(m->deadline_ms), "%" PRId64, deadline_ms);
	memset(m->v, 0, sizeof(m->v));
	m->v[FQ_ID] = id;
	m->v[FQ_REPLY_TO] = reply_to;
	m->v[FQ_AMOUNT] = m->amount;
	m->v[FQ_FROM_CURRENCY] = in->from->code;
	m->v[FQ_TO_CURRENCY] = in->to->code;
	m->v[FQ_DESTINATION_COUNTRY] = in->country ? in->country : "";
	m->v[FQ_PRIORITY] = in->priority;
	m->v[FQ_CUSTOMER_TIER] = in->tier;
	m->v[FQ_DEADLINE_MS] = m->deadline_ms;
	m->v[FQ_REQUEST_ID] = request_id;
}

/* A waiting request with its timer, registered under a fresh id; NULL when
 * out of memory. */
static struct fee_wait *wait_new(struct loop *l, struct http_req *r)
{
	struct fees_loop *fl = l->fees;
	struct fee_wait *w = calloc(1, sizeof(*w));
	if (!w || !(w->timer = timer_new(l->base, timeout_cb, w))) {
		free(w);
		return NULL;
	}
	w->fl = fl;
	w->r = r;
	/* Unique within this loop's reply stream, the only place it is looked up. */
	snprintf(w->id, sizeof(w->id), "%04x-%" PRIu64, l->app->nonce & 0xffff, ++fl->seq);
	return w;
}

/* POST /v1/fees/calculate {amount, from_currency, to_currency,
 * destination_country?, priority?, customer_tier?}: validate, queue the
 * request (XADD through jobs_add), wait for the reply or the timeout. */
void fees_calculate(struct http_req *r, void *arg)
{
	struct loop *l = arg;
	struct fees_loop *fl = l->fees;
	int timeout_ms = l->app->cfg.fee_timeout_ms;
	struct fees_input in;
	struct jv_error e;
	struct fees_request_msg m;
	struct job_field f[FQ_COUNT];
	struct fee_wait *w;

	if (fees_validate(http_req_json(r), &in, &e) != 0) {
		http_reply_error(r, e.status, e.code, e.param[0] ? e.param : NULL, "%s", e.message);
		return;
	}
	if (!(w = wait_new(l, r))) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
		return;
	}
	fees_request_fields(&in, w->id, fl->stream, clock_wall_ms() + timeout_ms, http_req_id(r),
			    &m);
	int nf = ct_fields(&CT_FEE_REQUEST, m.v, f);
	if (jobs_add(l->redis, fl->requests, FEE_REQUESTS_MAXLEN, f, nf, added, w) != 0) {
		timer_free(w->timer);
		free(w);
		http_reply_error(r, 503, "FEE_ENGINE_UNAVAILABLE", NULL,
				 "the fee request could not be queued: redis not connected");
		return;
	}
	LIST_INSERT_HEAD(&fl->buckets[id_hash(w->id) % FEE_BUCKETS], w, link);
	fl->waiting++;
	timer_once(w->timer, timeout_ms);
	read_send(fl);
}

int fees_loop_init(struct loop *l)
{
	struct app *a = l->app;
	char host[64] = "api", name[32], instance[128];
	struct fees_loop *fl = calloc(1, sizeof(*fl));
	if (!fl)
		return -1;
	l->fees = fl;
	fl->l = l;
	for (size_t i = 0; i < FEE_BUCKETS; i++)
		LIST_INIT(&fl->buckets[i]);
	gethostname(host, sizeof(host) - 1);
	/* A nonce, so a restarted process with the same host and pid (pid 1 in
	 * a container) never reads its predecessor's replies as its own. */
	rk_queue_key(fl->requests, sizeof(fl->requests), a->cfg.base.redis_prefix, RQ_FEES,
		     RK_STREAM);
	snprintf(instance, sizeof(instance), "%s-%ld-%04x-%d", host, (long)getpid(),
		 a->nonce & 0xffff, l->index);
	rk_fee_reply_key(fl->stream, sizeof(fl->stream), a->cfg.base.redis_prefix, instance);
	snprintf(fl->last_id, sizeof(fl->last_id), "0-0");
	snprintf(name, sizeof(name), "api-%d-fees", l->index);
	struct rds_opts ro = {.url = a->cfg.base.redis_url,
			      .connect_timeout_ms = 3000,
			      .command_timeout_ms = a->cfg.redis_timeout_ms,
			      .name = name};
	fl->rd = rds_new(l->base, &ro);
	fl->read = timer_new(l->base, read_tick, fl);
	if (!fl->rd || !fl->read)
		return -1;
	timer_every(fl->read, 250);
	m_timeouts =
		metrics_counter("rampart_fee_timeouts_total",
				"Fee requests answered 504: no reply within FEE_TIMEOUT_MS", "");
	m_dropped =
		metrics_counter("rampart_fee_replies_dropped_total",
				"Fee replies that found no waiting request (timed out before)", "");
	m_replies = metrics_counter("rampart_fee_replies_total",
				    "Fee replies matched to a waiting request", "");
	return 0;
}

/* After the HTTP server was freed: waiting requests were marked gone. */
void fees_loop_free(struct loop *l)
{
	struct fees_loop *fl = l->fees;
	if (!fl)
		return;
	rds_free(fl->rd);
	for (size_t i = 0; i < FEE_BUCKETS; i++)
		while (!LIST_EMPTY(&fl->buckets[i])) {
			struct fee_wait *w = LIST_FIRST(&fl->buckets[i]);
			struct http_req *r = w->r;
			wait_free(w);
			http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "shutting down");
		}
	timer_free(fl->read);
	free(fl);
	l->fees = NULL;
}
