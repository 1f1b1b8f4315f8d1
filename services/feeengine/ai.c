/* ai.c - Claude-assisted fee decisions (SPEC 6). One Messages API request per
 * distinct decision, forcing the fee_decision tool; the answer is checked
 * against guardrails and anything wrong (timeout, 4xx, 429, 5xx, 529, not
 * JSON, no tool call, a value outside the guardrails) is an outcome the
 * caller turns into the deterministic fallback.
 *
 * Decisions are cached by key (amount band, corridor, priority, tier, market
 * version) for FEE_AI_CACHE_SECONDS, and identical requests arriving while a
 * call is in flight wait for it instead of calling again. A cached decision
 * is kept as the chosen chain plus each fee component's ratio to the
 * deterministic one, and re-applied to each request's own amount. Failures
 * are cached too, for at most AI_NEGATIVE_TTL_S, so a Claude outage costs one
 * call per key every few seconds, not one per request.
 *
 * The API key is sent in x-api-key and never logged. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "common/clock.h"
#include "common/evloop.h"
#include "common/httpc.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/utf8.h"
#include "feeengine.h"

#define AI_MAX_ENTRIES	  10000
#define AI_BUCKETS	  4096
#define AI_NEGATIVE_TTL_S 5
#define AI_REASONING_MAX  1000
#define AI_RISK_MAX	  120
#define AI_MARGIN_MS	  50 /* answer this much before the request's deadline */
#define AI_API_VERSION	  "2023-06-01"

static const char *const outcome_names[AI_OUTCOME_COUNT] = {
	[AI_OK] = "ok",
	[AI_DISABLED] = "disabled",
	[AI_TIMEOUT] = "timeout",
	[AI_TRANSPORT] = "transport_error",
	[AI_RATE_LIMITED] = "rate_limited",
	[AI_OVERLOADED] = "overloaded",
	[AI_SERVER_ERROR] = "server_error",
	[AI_CLIENT_ERROR] = "client_error",
	[AI_MALFORMED] = "malformed",
	[AI_GUARDRAIL] = "guardrail",
};

const char *ai_outcome_name(enum ai_outcome o)
{
	return o < AI_OUTCOME_COUNT ? outcome_names[o] : "unknown";
}

/* ---- parsing and guardrails (pure) ---------------------------------------- */

static const char *const fee_fields[5] = {"platform_fee", "onramp_fee", "offramp_fee", "gas_cost",
					  "risk_premium"};

static int64_t *fee_slot(struct route_fees *f, int i)
{
	int64_t *slots[5] = {&f->platform_fee, &f->onramp_fee, &f->offramp_fee, &f->gas_cost,
			     &f->risk_premium};
	return slots[i];
}

static bool valid_text(const char *s, size_t max)
{
	size_t len = strlen(s);
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len;) {
		size_t l = utf8_len((const unsigned char *)s + i);
		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

/* ai within max_dev_bps of det, with one minor unit of rounding slack. */
static bool within(int64_t ai, int64_t det, int max_dev_bps)
{
	__int128 diff = (__int128)ai - det;
	if (diff < 0)
		diff = -diff;
	return diff <= 1 || diff * 10000 <= (__int128)det * max_dev_bps;
}

#define FAIL(o, ...)                                \
	do {                                        \
		snprintf(why, whylen, __VA_ARGS__); \
		json_decref(root);                  \
		return (o);                         \
	} while (0)

enum ai_outcome ai_parse_decision(const char *body, size_t len, const struct route_result *det,
				  int max_dev_bps, struct ai_decision *out, char *why,
				  size_t whylen)
{
	json_error_t jerr;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	struct ai_decision d;

	memset(&d, 0, sizeof(d));
	if (!root)
		FAIL(AI_MALFORMED, "response is not JSON: %s", jerr.text);
	json_t *content = json_object_get(root, "content");
	if (!json_is_object(root) || !json_is_array(content))
		FAIL(AI_MALFORMED, "response has no content array");
	json_t *input = NULL, *block;
	size_t i;
	json_array_foreach(content, i, block)
	{
		const char *type = json_string_value(json_object_get(block, "type"));
		const char *name = json_string_value(json_object_get(block, "name"));
		if (type && name && strcmp(type, "tool_use") == 0 &&
		    strcmp(name, "fee_decision") == 0) {
			input = json_object_get(block, "input");
			break;
		}
	}
	if (!json_is_object(input))
		FAIL(AI_MALFORMED, "no fee_decision tool call in the response");

	const char *chain = json_string_value(json_object_get(input, "chain"));
	if (!chain)
		FAIL(AI_MALFORMED, "chain missing or not a string");
	if (route_chain_parse(chain, &d.chain) != 0)
		FAIL(AI_GUARDRAIL, "chain \"%.40s\" is not a candidate", chain);
	const struct route_candidate *c = &det->cand[d.chain];
	if (!c->eligible)
		FAIL(AI_GUARDRAIL, "chain %s is not an eligible candidate (%s)", chain, c->why);

	json_t *fees = json_object_get(input, "fees");
	if (!json_is_object(fees))
		FAIL(AI_MALFORMED, "fees missing or not an object");
	for (int k = 0; k < 5; k++) {
		json_t *v = json_object_get(fees, fee_fields[k]);
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			FAIL(AI_MALFORMED, "fees.%s missing or not a non-negative integer",
			     fee_fields[k]);
		int64_t ai = json_integer_value(v),
			dv = *fee_slot((struct route_fees *)&c->fees, k);
		if (!within(ai, dv, max_dev_bps))
			FAIL(AI_GUARDRAIL,
			     "fees.%s %" PRId64 " is outside %d bps of the deterministic %" PRId64,
			     fee_fields[k], ai, max_dev_bps, dv);
		*fee_slot(&d.fees, k) = ai;
	}
	d.fees.total = d.fees.platform_fee + d.fees.onramp_fee + d.fees.offramp_fee +
		       d.fees.gas_cost + d.fees.risk_premium; /* each bounded by det: no overflow */

	json_t *conf = json_object_get(input, "confidence");
	if (!json_is_number(conf))
		FAIL(AI_MALFORMED, "confidence missing or not a number");
	double cv = json_number_value(conf); /* a score, not money */
	if (!(cv >= 0.0 && cv <= 1.0))
		FAIL(AI_GUARDRAIL, "confidence %g is outside [0,1]", cv);
	d.confidence_milli = (int)lround(cv * 1000.0);

	const char *reasoning = json_string_value(json_object_get(input, "reasoning"));
	if (!reasoning)
		FAIL(AI_MALFORMED, "reasoning missing or not a string");
	if (!valid_text(reasoning, AI_REASONING_MAX))
		FAIL(AI_GUARDRAIL, "reasoning is empty, longer than %d bytes or not UTF-8",
		     AI_REASONING_MAX);
	snprintf(d.reasoning, sizeof(d.reasoning), "%s", reasoning);

	json_t *risks = json_object_get(input, "risk_factors");
	if (risks && !json_is_array(risks))
		FAIL(AI_MALFORMED, "risk_factors is not an array");
	if (json_array_size(risks) > ROUTE_MAX_RISKS)
		FAIL(AI_GUARDRAIL, "more than %d risk factors", ROUTE_MAX_RISKS);
	json_t *r;
	json_array_foreach(risks, i, r)
	{
		const char *s = json_string_value(r);
		if (!s)
			FAIL(AI_MALFORMED, "risk_factors[%zu] is not a string", i);
		if (!valid_text(s, AI_RISK_MAX))
			FAIL(AI_GUARDRAIL, "risk_factors[%zu] is empty, too long or not UTF-8", i);
		snprintf(d.risks[d.n_risks++], sizeof(d.risks[0]), "%s", s);
	}

	json_t *st = json_object_get(input, "estimated_settlement_time");
	if (!json_is_integer(st))
		FAIL(AI_MALFORMED, "estimated_settlement_time missing or not an integer (seconds)");
	if (json_integer_value(st) < 1 || json_integer_value(st) > 86400)
		FAIL(AI_GUARDRAIL,
		     "estimated_settlement_time %" JSON_INTEGER_FORMAT " is outside 1..86400 s",
		     json_integer_value(st));
	d.settlement_seconds = (int)json_integer_value(st);
	json_decref(root);
	*out = d;
	return AI_OK;
}

#undef FAIL

/* ---- the request ------------------------------------------------------------ */

static const char system_prompt[] =
	"You are the fee analyst of rampart, a cross-currency payment orchestrator that "
	"converts fiat to USDC (on-ramp) and USDC to the payout fiat (off-ramp). The user "
	"message is a JSON document: the payment request, the market context, and the "
	"candidate chains the deterministic engine priced (fees in minor units of the source "
	"currency). Choose one eligible candidate chain and the fee components for it by "
	"calling the fee_decision tool. Stay within the guardrails: each fee component within "
	"guardrails.max_deviation_bps of that chain's deterministic component, confidence "
	"between 0 and 1, at most 6 short risk factors, reasoning under 1000 bytes. Prefer "
	"safety for large amounts and cost for small ones; say why in one or two sentences.";

static json_t *fees_json(const struct route_fees *f)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "platform_fee", (json_int_t)f->platform_fee,
			 "onramp_fee", (json_int_t)f->onramp_fee, "offramp_fee",
			 (json_int_t)f->offramp_fee, "gas_cost", (json_int_t)f->gas_cost,
			 "risk_premium", (json_int_t)f->risk_premium, "total",
			 (json_int_t)f->total);
}

static json_t *tool_schema(void)
{
	json_t *fee_props = json_object();
	for (int k = 0; k < 5; k++)
		json_object_set_new(fee_props, fee_fields[k],
				    json_pack("{s:s,s:i}", "type", "integer", "minimum", 0));
	json_t *chains = json_array();
	for (int c = 0; c < CHAIN_COUNT; c++)
		json_array_append_new(chains, json_string(route_chain_name((enum route_chain)c)));
	return json_pack(
		"{s:s,s:{s:o,s:{s:s,s:o,s:[sssss]},s:{s:s},s:{s:s,s:i,s:i},s:{s:s,s:{s:s},s:i},"
		"s:{s:s,s:i,s:s}},s:[ssssss]}",
		"type", "object", "properties", "chain",
		json_pack("{s:s,s:o}", "type", "string", "enum", chains), "fees", "type", "object",
		"properties", fee_props, "required", "platform_fee", "onramp_fee", "offramp_fee",
		"gas_cost", "risk_premium", "reasoning", "type", "string", "confidence", "type",
		"number", "minimum", 0, "maximum", 1, "risk_factors", "type", "array", "items",
		"type", "string", "maxItems", ROUTE_MAX_RISKS, "estimated_settlement_time", "type",
		"integer", "minimum", 1, "description", "seconds", "required", "chain", "fees",
		"reasoning", "confidence", "risk_factors", "estimated_settlement_time");
}

char *ai_request_body(const struct feeengine *fe, const struct route_request *req,
		      const struct route_result *det, const char *destination_country)
{
	const struct market_view *v = &fe->view;
	json_t *cands = json_array();
	char usd[32];

	for (int c = 0; c < CHAIN_COUNT; c++) {
		const struct route_candidate *k = &det->cand[c];
		char fee_usd[32];
		snprintf(fee_usd, sizeof(fee_usd), "%" PRId64 ".%06" PRId64,
			 k->network_fee_usd_micros / 1000000, k->network_fee_usd_micros % 1000000);
		json_t *o =
			json_pack("{s:s,s:b,s:i,s:i,s:s,s:o}", "chain", route_chain_name(k->chain),
				  "eligible", k->eligible, "security_tier", k->security_tier,
				  "settlement_seconds", k->settlement_seconds, "network_fee_usd",
				  fee_usd, "fees", fees_json(&k->fees));
		if (!k->eligible)
			json_object_set_new(o, "why_not", json_string(k->why));
		json_array_append_new(cands, o);
	}
	json_t *states = json_object();
	for (int i = 0; i < SRC_COUNT; i++)
		json_object_set_new(states, fe->src[i].name,
				    json_string(src_state_name(v->state[i])));
	json_t *risks = json_array();
	for (int i = 0; i < det->n_risks; i++)
		json_array_append_new(risks, json_string(det->risks[i]));
	snprintf(usd, sizeof(usd), "%" PRId64 ".%02" PRId64, det->amount_usd_cents / 100,
		 det->amount_usd_cents % 100);
	json_t *ctx = json_pack(
		"{s:{s:I,s:s,s:s,s:s,s:s,s:s,s:s},s:{s:I,s:s,s:s,s:o},s:o,s:s,s:o,s:{s:i}}",
		"request", "amount", (json_int_t)req->amount, "from_currency", req->from->code,
		"to_currency", req->to->code, "destination_country",
		destination_country ? destination_country : "", "priority",
		route_priority_name(req->priority), "customer_tier", route_tier_name(req->tier),
		"amount_usd", usd, "market", "as_of", (json_int_t)v->as_of, "provider_status",
		route_status_name(v->route.provider), "provider_description", v->circle_description,
		"sources", states, "candidates", cands, "deterministic_choice",
		det->chosen >= 0 ? route_chain_name((enum route_chain)det->chosen) : "",
		"deterministic_risk_factors", risks, "guardrails", "max_deviation_bps",
		fe->cfg.ai_max_deviation_bps);
	char *ctx_text = ctx ? json_dumps(ctx, JSON_COMPACT) : NULL;
	json_decref(ctx);
	if (!ctx_text)
		return NULL;
	json_t *tool = json_pack("{s:s,s:s,s:o}", "name", "fee_decision", "description",
				 "Record the routing and fee decision for this payment.",
				 "input_schema", tool_schema());
	json_t *body = json_pack(
		"{s:s,s:i,s:s,s:[{s:s,s:s}],s:[o],s:{s:s,s:s}}", "model", fe->cfg.anthropic_model,
		"max_tokens", 1024, "system", system_prompt, "messages", "role", "user", "content",
		ctx_text, "tools", tool, "tool_choice", "type", "tool", "name", "fee_decision");
	free(ctx_text);
	char *out = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	return out;
}

/* ---- cache, coalescing and the call ------------------------------------------ */

struct ai_waiter {
	TAILQ_ENTRY(ai_waiter) link;
	ai_cb cb;
	void *arg;
	struct route_result det; /* this request's own deterministic result */
};
TAILQ_HEAD(ai_waiter_list, ai_waiter);

struct ai_entry {
	LIST_ENTRY(ai_entry) bucket;
	TAILQ_ENTRY(ai_entry) order; /* by creation: expiry order, eviction */
	char key[160];
	uint64_t hash;
	bool pending;
	int64_t expires_ms;
	int64_t deadline_ms; /* of the first request: the call ends before it */
	enum ai_outcome outcome;
	char why[200];
	struct ai_decision d;
	int64_t ratio_ppm[5]; /* AI fee / deterministic fee, per component */
	struct ai_waiter_list waiters;
	/* the call */
	struct feeengine *fe;
	char *body;
	int attempts;
	struct timer *retry;
	struct route_result det; /* the first request's, for the guardrails */
};
LIST_HEAD(ai_bucket, ai_entry);
TAILQ_HEAD(ai_entry_list, ai_entry);

struct ai_cache {
	struct ai_bucket buckets[AI_BUCKETS];
	struct ai_entry_list order;
	size_t n;
	char *url;
	char *key_header; /* "x-api-key: ..." - never logged */
	struct metric *m_calls[AI_OUTCOME_COUNT];
	struct metric *m_hit, *m_miss, *m_joined, *m_entries;
};

static void entry_free(struct ai_cache *c, struct ai_entry *e)
{
	LIST_REMOVE(e, bucket);
	TAILQ_REMOVE(&c->order, e, order);
	c->n--;
	timer_free(e->retry);
	free(e->body);
	free(e);
}

/* Drops expired entries (oldest first) and, over the bound, the oldest
 * finished ones. Pending entries stay: their waiters need them. */
static void cache_trim(struct ai_cache *c, int64_t now_ms)
{
	struct ai_entry *e, *next;
	for (e = TAILQ_FIRST(&c->order); e; e = next) {
		next = TAILQ_NEXT(e, order);
		if (e->pending)
			continue;
		if (e->expires_ms <= now_ms || c->n > AI_MAX_ENTRIES)
			entry_free(c, e);
		else
			break;
	}
	metric_set(c->m_entries, (int64_t)c->n);
}

/* The decision for one request: the cached ratios applied to its own
 * deterministic fees, the guardrails checked again for its amount. */
static enum ai_outcome apply(const struct ai_entry *e, const struct route_result *det,
			     int max_dev_bps, struct ai_decision *out, const char **why)
{
	if (e->outcome != AI_OK) {
		*why = e->why;
		return e->outcome;
	}
	const struct route_candidate *c = &det->cand[e->d.chain];
	if (!c->eligible) {
		*why = "the cached decision's chain is not eligible for this request";
		return AI_GUARDRAIL;
	}
	*out = e->d;
	for (int k = 0; k < 5; k++) {
		int64_t dv = *fee_slot((struct route_fees *)&c->fees, k);
		__int128 v = ((__int128)dv * e->ratio_ppm[k] + 999999) / 1000000;
		if (!within((int64_t)v, dv, max_dev_bps)) {
			*why = "the cached decision's fees are outside the guardrails for this "
			       "amount";
			return AI_GUARDRAIL;
		}
		*fee_slot(&out->fees, k) = (int64_t)v;
	}
	out->fees.total = out->fees.platform_fee + out->fees.onramp_fee + out->fees.offramp_fee +
			  out->fees.gas_cost + out->fees.risk_premium;
	*why = NULL;
	return AI_OK;
}

static void answer(struct feeengine *fe, struct ai_entry *e, struct ai_waiter *w)
{
	struct ai_decision d;
	const char *why = NULL;
	memset(&d, 0, sizeof(d));
	enum ai_outcome o = apply(e, &w->det, fe->cfg.ai_max_deviation_bps, &d, &why);
	w->cb(w->arg, o, o == AI_OK ? &d : NULL, why);
}

static void finish(struct ai_entry *e, enum ai_outcome o, const char *why)
{
	struct feeengine *fe = e->fe;
	struct ai_cache *c = fe->cache;
	int64_t now = clock_wall_ms();

	e->pending = false;
	e->outcome = o;
	snprintf(e->why, sizeof(e->why), "%s", why ? why : "");
	metric_inc(c->m_calls[o]);
	if (o == AI_OK) {
		const struct route_candidate *k = &e->det.cand[e->d.chain];
		for (int i = 0; i < 5; i++) {
			int64_t dv = *fee_slot((struct route_fees *)&k->fees, i);
			int64_t av = *fee_slot(&e->d.fees, i);
			e->ratio_ppm[i] = dv > 0 ? (int64_t)((__int128)av * 1000000 / dv) : 1000000;
		}
		log_debug("fee decision from claude: %s", route_chain_name(e->d.chain));
	} else {
		log_event(LOG_WARN, "claude fee decision not used: falling back",
			  LF_S("outcome", ai_outcome_name(o)), LF_S("reason", e->why),
			  LF_I("attempts", e->attempts));
	}
	int ttl = o == AI_OK ? fe->cfg.ai_cache_s
			     : (fe->cfg.ai_cache_s < AI_NEGATIVE_TTL_S ? fe->cfg.ai_cache_s
								       : AI_NEGATIVE_TTL_S);
	e->expires_ms = now + (int64_t)ttl * 1000;
	free(e->body);
	e->body = NULL;
	struct ai_waiter *w;
	while ((w = TAILQ_FIRST(&e->waiters))) {
		TAILQ_REMOVE(&e->waiters, w, link);
		answer(fe, e, w);
		free(w);
	}
	if (ttl == 0 || fe->closing)
		entry_free(c, e);
}

static void call_send(struct ai_entry *e);

static void retry_tick(void *arg)
{
	call_send(arg);
}

/* Whether to try once more (429/5xx/529, within the deadline). */
static bool retry_later(struct ai_entry *e, const struct httpc_response *r)
{
	int64_t left = e->deadline_ms - AI_MARGIN_MS - clock_wall_ms();
	long wait_ms = 200;
	const char *ra = httpc_header(r, "retry-after");
	if (ra) {
		char *end;
		long s = strtol(ra, &end, 10);
		if (end != ra && s >= 0 && s < 3600)
			wait_ms = s * 1000;
	}
	/* Worth it only if a useful request still fits after the wait. */
	if (e->attempts >= 2 || e->fe->draining || wait_ms + 500 > left)
		return false;
	if (!e->retry && !(e->retry = timer_new(e->fe->base, retry_tick, e)))
		return false;
	timer_once(e->retry, wait_ms);
	return true;
}

static void call_done(void *arg, const struct httpc_response *r)
{
	struct ai_entry *e = arg;
	struct feeengine *fe = e->fe;
	char why[200] = "";
	enum ai_outcome o;

	if (r->error) {
		o = r->timed_out ? AI_TIMEOUT : AI_TRANSPORT;
		snprintf(why, sizeof(why), "%s", r->error);
	} else if (r->status == 200) {
		o = ai_parse_decision(r->body, r->body_len, &e->det, fe->cfg.ai_max_deviation_bps,
				      &e->d, why, sizeof(why));
	} else {
		/* The error's type from {"type":"error","error":{"type":...}}. */
		json_t *root = json_loadb(r->body, r->body_len, 0, NULL);
		const char *etype =
			json_string_value(json_object_get(json_object_get(root, "error"), "type"));
		snprintf(why, sizeof(why), "HTTP %ld %s", r->status, etype ? etype : "");
		json_decref(root);
		o = r->status == 429   ? AI_RATE_LIMITED
		    : r->status == 529 ? AI_OVERLOADED
		    : r->status >= 500 ? AI_SERVER_ERROR
				       : AI_CLIENT_ERROR;
		if (o != AI_CLIENT_ERROR && !fe->closing && retry_later(e, r)) {
			metric_inc(fe->cache->m_calls[o]);
			log_event(LOG_INFO, "claude busy: retrying once", LF_S("reason", why));
			return;
		}
	}
	finish(e, o, why);
}

static void call_send(struct ai_entry *e)
{
	struct feeengine *fe = e->fe;
	struct ai_cache *c = fe->cache;
	int64_t left = e->deadline_ms - AI_MARGIN_MS - clock_wall_ms();
	int timeout = fe->cfg.ai_timeout_ms;

	if (left < timeout)
		timeout = (int)(left > 0 ? left : 0);
	if (timeout < 50) {
		finish(e, AI_TIMEOUT, "no time left before the request's deadline");
		return;
	}
	const char *headers[] = {c->key_header, "anthropic-version: " AI_API_VERSION,
				 "content-type: application/json", NULL};
	struct httpc_request req = {.method = "POST",
				    .url = c->url,
				    .headers = headers,
				    .body = e->body,
				    .body_len = strlen(e->body),
				    .timeout_ms = timeout,
				    .max_response = 64 * 1024};
	e->attempts++;
	if (httpc_send(fe->http, &req, call_done, e) != 0)
		finish(e, AI_TRANSPORT, "request not started");
}

void ai_decide(struct feeengine *fe, const char *key, const struct route_request *req,
	       const struct route_result *det, const char *destination_country, int64_t deadline_ms,
	       ai_cb cb, void *arg)
{
	struct ai_cache *c = fe->cache;

	if (!c) {
		cb(arg, AI_DISABLED, NULL, "ANTHROPIC_API_KEY is not set");
		return;
	}
	int64_t now = clock_wall_ms();
	cache_trim(c, now);
	uint64_t h = id_hash(key);
	struct ai_bucket *b = &c->buckets[h % AI_BUCKETS];
	struct ai_entry *e;
	LIST_FOREACH(e, b, bucket)
	if (e->hash == h && strcmp(e->key, key) == 0)
		break;
	struct ai_waiter *w = malloc(sizeof(*w));
	if (!w) {
		cb(arg, AI_TRANSPORT, NULL, "out of memory");
		return;
	}
	w->cb = cb;
	w->arg = arg;
	w->det = *det;
	if (e && !e->pending) {
		metric_inc(c->m_hit);
		answer(fe, e, w);
		free(w);
		return;
	}
	if (e) { /* a call for the same key is in flight: wait for it */
		metric_inc(c->m_joined);
		TAILQ_INSERT_TAIL(&e->waiters, w, link);
		return;
	}
	metric_inc(c->m_miss);
	e = calloc(1, sizeof(*e));
	if (!e || !(e->body = ai_request_body(fe, req, det, destination_country))) {
		free(e);
		free(w);
		cb(arg, AI_TRANSPORT, NULL, "out of memory");
		return;
	}
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->hash = h;
	e->fe = fe;
	e->pending = true;
	e->deadline_ms = deadline_ms;
	e->det = *det;
	TAILQ_INIT(&e->waiters);
	TAILQ_INSERT_TAIL(&e->waiters, w, link);
	LIST_INSERT_HEAD(b, e, bucket);
	TAILQ_INSERT_TAIL(&c->order, e, order);
	c->n++;
	call_send(e); /* may finish at once: the waiter is answered inside */
}

int ai_init(struct feeengine *fe)
{
	if (!fe->cfg.anthropic_key[0]) {
		log_event(LOG_INFO, "ANTHROPIC_API_KEY not set: fee decisions use the "
				    "deterministic engine only (source fallback)");
		return 0;
	}
	struct ai_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	fe->cache = c;
	for (size_t i = 0; i < AI_BUCKETS; i++)
		LIST_INIT(&c->buckets[i]);
	TAILQ_INIT(&c->order);
	size_t ul = strlen(fe->cfg.anthropic_url) + sizeof("/v1/messages");
	size_t kl = strlen(fe->cfg.anthropic_key) + sizeof("x-api-key: ");
	c->url = malloc(ul);
	c->key_header = malloc(kl);
	if (!c->url || !c->key_header)
		return -1;
	snprintf(c->url, ul, "%s/v1/messages", fe->cfg.anthropic_url);
	snprintf(c->key_header, kl, "x-api-key: %s", fe->cfg.anthropic_key);
	for (int o = AI_OK; o < AI_OUTCOME_COUNT; o++) {
		char labels[48];
		if (o == AI_DISABLED)
			continue;
		snprintf(labels, sizeof(labels), "outcome=\"%s\"", outcome_names[o]);
		c->m_calls[o] = metrics_counter("rampart_fee_ai_calls_total",
						"Claude calls (attempts) by outcome", labels);
	}
	c->m_hit =
		metrics_counter("rampart_fee_ai_cache_total",
				"AI decisions by cache result: hit, miss (a call), joined (waited "
				"for a call in flight)",
				"result=\"hit\"");
	c->m_miss =
		metrics_counter("rampart_fee_ai_cache_total",
				"AI decisions by cache result: hit, miss (a call), joined (waited "
				"for a call in flight)",
				"result=\"miss\"");
	c->m_joined = metrics_counter("rampart_fee_ai_cache_total",
				      "AI decisions by cache result: hit, miss (a call), joined "
				      "(waited for a call in flight)",
				      "result=\"joined\"");
	c->m_entries =
		metrics_gauge("rampart_fee_ai_cache_entries", "AI decision cache entries", "");
	log_event(LOG_INFO, "claude fee analysis enabled", LF_S("model", fe->cfg.anthropic_model),
		  LF_S("base_url", fe->cfg.anthropic_url),
		  LF_I("timeout_ms", fe->cfg.ai_timeout_ms));
	return 0;
}

/* After httpc_free (calls in flight were failed and their waiters answered). */
void ai_free(struct feeengine *fe)
{
	struct ai_cache *c = fe->cache;
	if (!c)
		return;
	struct ai_entry *e;
	while ((e = TAILQ_FIRST(&c->order))) {
		struct ai_waiter *w;
		while ((w = TAILQ_FIRST(&e->waiters))) { /* e.g. waiting for a retry */
			TAILQ_REMOVE(&e->waiters, w, link);
			w->cb(w->arg, AI_TRANSPORT, NULL, "shutting down");
			free(w);
		}
		entry_free(c, e);
	}
	free(c->url);
	free(c->key_header);
	free(c);
	fe->cache = NULL;
}
