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
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "app.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/redis.h"

#define FEE_BUCKETS	    1024
#define FEE_READ_BLOCK_MS   1000
#define FEE_READ_COUNT	    "512"
#define FEE_REQUESTS_MAXLEN "100000"

struct fee_wait {
	LIST_ENTRY(fee_wait) link;
	struct fees_loop *fl;
	struct http_req *r;
	struct event *timer;
	char id[64];
};
LIST_HEAD(fee_bucket, fee_wait);

struct fees_loop {
	struct loop *l;
	struct rds *rd; /* XREAD BLOCK on the reply stream only */
	struct event *read_ev;
	bool reading;
	char stream[192];   /* this loop's reply stream */
	char requests[128]; /* <prefix>:{fees}:requests */
	char last_id[48];   /* last reply entry seen */
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
	event_free(w->timer);
	free(w);
}

/* ---- replies ---------------------------------------------------------------- */

static const char *field(const redisReply *f, const char *name)
{
	for (size_t i = 0; i + 1 < f->elements; i += 2)
		if (f->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(f->element[i]->str, name) == 0 &&
		    f->element[i + 1]->type == REDIS_REPLY_STRING)
			return f->element[i + 1]->str;
	return NULL;
}

static json_int_t int_field(const redisReply *f, const char *name)
{
	const char *v = field(f, name);
	return v ? (json_int_t)strtoll(v, NULL, 10) : 0;
}

/* The SPEC 6 response from the fee engine's flat reply fields. */
static void reply_ok(struct http_req *r, const redisReply *f)
{
	const char *risks = field(f, "risk_factors"), *source = field(f, "source");
	const char *conf = field(f, "confidence_score");
	json_t *rf = risks ? json_loads(risks, 0, NULL) : NULL;
	if (!json_is_array(rf)) {
		json_decref(rf);
		rf = json_array();
	}
	json_t *body = json_pack(
		"{s:I,s:s,s:s,s:{s:I,s:I,s:I,s:I,s:I},s:{s:s,s:s,s:s,s:s},s:I,s:f,s:o,s:s,s:s}",
		"total_fee", int_field(f, "total_fee"), "currency", field(f, "currency") ?: "",
		"fee_percent", field(f, "fee_percent") ?: "", "fee_breakdown", "platform_fee",
		int_field(f, "platform_fee"), "onramp_fee", int_field(f, "onramp_fee"),
		"offramp_fee", int_field(f, "offramp_fee"), "gas_cost", int_field(f, "gas_cost"),
		"risk_premium", int_field(f, "risk_premium"), "recommended_provider", "onramp",
		field(f, "onramp") ?: "", "offramp", field(f, "offramp") ?: "", "chain",
		field(f, "chain") ?: "", "reasoning", field(f, "reasoning") ?: "",
		"estimated_settlement_time", int_field(f, "estimated_settlement_time"),
		"confidence_score", conf ? strtod(conf, NULL) : 0.0, "risk_factors", rf, "source",
		source ?: "", "market_data_as_of", field(f, "market_data_as_of") ?: "");
	const char *reason = field(f, "fallback_reason");
	if (body && reason && *reason)
		json_object_set_new(body, "fallback_reason", json_string(reason));
	if (!body) {
		http_reply_error(r, 502, "FEE_ENGINE_ERROR", NULL,
				 "the fee engine's reply could not be read");
		return;
	}
	http_reply_json(r, 200, body);
}

static void reply_entry(struct fees_loop *fl, const redisReply *f)
{
	const char *id = field(f, "id"), *status = field(f, "status");
	struct fee_wait *w = id ? wait_find(fl, id) : NULL;

	if (!w) { /* timed out already, or not ours */
		metric_inc(m_dropped);
		return;
	}
	metric_inc(m_replies);
	struct http_req *r = w->r;
	wait_free(w);
	if (status && strcmp(status, "ok") == 0) {
		reply_ok(r, f);
		return;
	}
	long code = (long)int_field(f, "http_status");
	if (code < 400 || code > 599)
		code = 502;
	http_reply_error(r, (int)code, field(f, "code") ?: "FEE_ENGINE_ERROR", NULL, "%s",
			 field(f, "message") ?: "the fee engine refused the request");
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
		return; /* read_ev retries */
	}
	if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1) {
		const redisReply *s = reply->element[0];
		const redisReply *entries =
			s->type == REDIS_REPLY_ARRAY && s->elements == 2 ? s->element[1] : NULL;
		for (size_t i = 0;
		     entries && entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
			const redisReply *e = entries->element[i];
			if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
			    e->element[0]->type != REDIS_REPLY_STRING)
				continue;
			snprintf(fl->last_id, sizeof(fl->last_id), "%s", e->element[0]->str);
			if (e->element[1]->type == REDIS_REPLY_ARRAY)
				reply_entry(fl, e->element[1]);
		}
	}
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
static void read_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	read_send(arg);
}

/* ---- requests ----------------------------------------------------------------- */

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fee_wait *w = arg;
	(void)fd;
	(void)what;
	struct http_req *r = w->r;
	int ms = w->fl->l->app->cfg.fee_timeout_ms;
	metric_inc(m_timeouts);
	wait_free(w);
	http_reply_error(r, 504, "FEE_ENGINE_TIMEOUT", NULL,
			 "the fee engine did not answer within %d ms", ms);
}

static void added(void *arg, redisReply *reply, const char *err)
{
	struct fee_wait *w = arg;
	(void)reply;
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
	static const char *const priorities[] = {"standard", "express", NULL};
	static const char *const tiers[] = {"standard", "premium", "enterprise", NULL};

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

/* POST /v1/fees/calculate {amount, from_currency, to_currency,
 * destination_country?, priority?, customer_tier?} */
void fees_calculate(struct http_req *r, void *arg)
{
	struct loop *l = arg;
	struct fees_loop *fl = l->fees;
	json_t *body = http_req_json(r);
	struct jv_error e;
	struct fees_input in;

	if (fees_validate(body, &in, &e) != 0) {
		http_reply_error(r, e.status, e.code, e.param[0] ? e.param : NULL, "%s", e.message);
		return;
	}
	int64_t amount = in.amount;
	const struct currency *cur[2] = {in.from, in.to};
	const char *country = in.country, *prio = in.priority, *tier = in.tier;

	struct fee_wait *w = calloc(1, sizeof(*w));
	if (!w || !(w->timer = event_new(l->base, -1, 0, timeout_cb, w))) {
		free(w);
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
		return;
	}
	w->fl = fl;
	w->r = r;
	/* Unique within this loop's reply stream, the only place it is looked up. */
	snprintf(w->id, sizeof(w->id), "%04x-%" PRIu64, l->app->nonce & 0xffff, ++fl->seq);
	int timeout_ms = l->app->cfg.fee_timeout_ms;
	char amount_s[24], deadline[24];
	snprintf(amount_s, sizeof(amount_s), "%" PRId64, amount);
	snprintf(deadline, sizeof(deadline), "%" PRId64, clock_wall_ms() + timeout_ms);
	const char *argv[] = {"XADD",
			      fl->requests,
			      "MAXLEN",
			      "~",
			      FEE_REQUESTS_MAXLEN,
			      "*",
			      "id",
			      w->id,
			      "reply_to",
			      fl->stream,
			      "amount",
			      amount_s,
			      "from_currency",
			      cur[0]->code,
			      "to_currency",
			      cur[1]->code,
			      "destination_country",
			      country ? country : "",
			      "priority",
			      prio,
			      "customer_tier",
			      tier,
			      "deadline_ms",
			      deadline,
			      "request_id",
			      http_req_id(r)};
	if (rds_command_argv(l->redis, added, w, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL,
			     0) != 0) {
		event_free(w->timer);
		free(w);
		http_reply_error(r, 503, "FEE_ENGINE_UNAVAILABLE", NULL,
				 "the fee request could not be queued: redis not connected");
		return;
	}
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	LIST_INSERT_HEAD(&fl->buckets[id_hash(w->id) % FEE_BUCKETS], w, link);
	fl->waiting++;
	event_add(w->timer, &tv);
	read_send(fl);
}

int fees_loop_init(struct loop *l)
{
	struct app *a = l->app;
	char host[64] = "api", name[32];
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
	snprintf(fl->requests, sizeof(fl->requests), "%s:{fees}:requests",
		 a->cfg.base.redis_prefix);
	snprintf(fl->stream, sizeof(fl->stream), "%s:{fees}:replies:%s-%ld-%04x-%d",
		 a->cfg.base.redis_prefix, host, (long)getpid(), a->nonce & 0xffff, l->index);
	snprintf(fl->last_id, sizeof(fl->last_id), "0-0");
	snprintf(name, sizeof(name), "api-%d-fees", l->index);
	struct rds_opts ro = {.url = a->cfg.base.redis_url,
			      .connect_timeout_ms = 3000,
			      .command_timeout_ms = a->cfg.redis_timeout_ms,
			      .name = name};
	struct timeval tv = {0, 250000};
	fl->rd = rds_new(l->base, &ro);
	fl->read_ev = event_new(l->base, -1, EV_PERSIST, read_tick, fl);
	if (!fl->rd || !fl->read_ev)
		return -1;
	event_add(fl->read_ev, &tv);
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
	if (fl->read_ev)
		event_free(fl->read_ev);
	free(fl);
	l->fees = NULL;
}
