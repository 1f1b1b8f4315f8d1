/* contracts.c - the names of every Redis key and stream field the daemons share. */
#include "common/contracts.h"

#include <stdio.h>
#include <string.h>

#include "common/jobs.h"

static const struct rk_queue_def queues[RQ_COUNT] = {
	[RQ_PAYMENTS] = {"payments", "jobs", "workers"},
	[RQ_WEBHOOKS] = {"webhooks", "jobs", "webhooks"},
	[RQ_FEES] = {"fees", "requests", "feeengines"},
};

const struct rk_queue_def *rk_queue(enum rk_queue q)
{
	return &queues[(unsigned)q < RQ_COUNT ? q : RQ_PAYMENTS];
}

void rk_queue_key(char *out, size_t len, const char *prefix, enum rk_queue q, enum rk_part part)
{
	const struct rk_queue_def *d = rk_queue(q);
	jobs_key(out, len, prefix, d->name,
		 part == RK_DELAYED ? "delayed"
		 : part == RK_DLQ   ? "dlq"
				    : d->stream_kind);
}

void rk_snapshot_key(char *out, size_t len, const char *prefix)
{
	snprintf(out, len, "%s:market:snapshot", prefix);
}

void rk_fee_decisions_key(char *out, size_t len, const char *prefix)
{
	snprintf(out, len, "%s:{%s}:decisions", prefix, queues[RQ_FEES].name);
}

void rk_fee_replies_prefix(char *out, size_t len, const char *prefix)
{
	snprintf(out, len, "%s:{%s}:replies:", prefix, queues[RQ_FEES].name);
}

void rk_fee_reply_key(char *out, size_t len, const char *prefix, const char *instance)
{
	snprintf(out, len, "%s:{%s}:replies:%s", prefix, queues[RQ_FEES].name, instance);
}

void rk_ratelimit_key(char *out, size_t len, const char *prefix, const char *key_id)
{
	snprintf(out, len, "%s:ratelimit:%s", prefix, key_id);
}

#define FALLBACK_DOT FEE_DECISION_FALLBACK "."

const char *fee_decision_reason_field(char *out, size_t len, const char *reason)
{
	snprintf(out, len, "%s%s", FALLBACK_DOT, reason);
	return out;
}

const char *fee_decision_reason_of(const char *field)
{
	size_t n = strlen(FALLBACK_DOT);
	return field && strncmp(field, FALLBACK_DOT, n) == 0 ? field + n : NULL;
}

/* ---- streams ---------------------------------------------------------------- */

static const char *const pay_job_names[PJ_COUNT] = {
	[PJ_PAYMENT_ID] = "payment_id",
	[PJ_STEP] = "step",
	[PJ_ATTEMPT] = "attempt",
	[PJ_REQUEST_ID] = "request_id",
};
const struct ct_stream CT_PAY_JOB = {"payment job", PJ_COUNT, pay_job_names};

static const char *const wh_job_names[WJ_COUNT] = {
	[WJ_EVENT_ID] = "event_id",
	[WJ_ENDPOINT_ID] = "endpoint_id",
	[WJ_ATTEMPT] = "attempt",
	[WJ_REDELIVERY] = "redelivery",
};
const struct ct_stream CT_WH_JOB = {"webhook job", WJ_COUNT, wh_job_names};

static const char *const fee_req_names[FQ_COUNT] = {
	[FQ_ID] = "id",
	[FQ_REPLY_TO] = "reply_to",
	[FQ_AMOUNT] = "amount",
	[FQ_FROM_CURRENCY] = "from_currency",
	[FQ_TO_CURRENCY] = "to_currency",
	[FQ_DESTINATION_COUNTRY] = "destination_country",
	[FQ_PRIORITY] = "priority",
	[FQ_CUSTOMER_TIER] = "customer_tier",
	[FQ_DEADLINE_MS] = "deadline_ms",
	[FQ_REQUEST_ID] = "request_id",
};
const struct ct_stream CT_FEE_REQUEST = {"fee request", FQ_COUNT, fee_req_names};

static const char *const fee_reply_names[FR_COUNT] = {
	[FR_ID] = "id",
	[FR_STATUS] = "status",
	[FR_CURRENCY] = "currency",
	[FR_TOTAL_FEE] = "total_fee",
	[FR_FEE_PERCENT] = "fee_percent",
	[FR_PLATFORM_FEE] = "platform_fee",
	[FR_ONRAMP_FEE] = "onramp_fee",
	[FR_OFFRAMP_FEE] = "offramp_fee",
	[FR_GAS_COST] = "gas_cost",
	[FR_RISK_PREMIUM] = "risk_premium",
	[FR_ONRAMP] = "onramp",
	[FR_OFFRAMP] = "offramp",
	[FR_CHAIN] = "chain",
	[FR_REASONING] = "reasoning",
	[FR_ESTIMATED_SETTLEMENT_TIME] = "estimated_settlement_time",
	[FR_CONFIDENCE_SCORE] = "confidence_score",
	[FR_RISK_FACTORS] = "risk_factors",
	[FR_SOURCE] = "source",
	[FR_FALLBACK_REASON] = "fallback_reason",
	[FR_MARKET_DATA_AS_OF] = "market_data_as_of",
	[FR_HTTP_STATUS] = "http_status",
	[FR_CODE] = "code",
	[FR_MESSAGE] = "message",
};
const struct ct_stream CT_FEE_REPLY = {"fee reply", FR_COUNT, fee_reply_names};

int ct_fields(const struct ct_stream *s, const char *const *v, struct job_field *out)
{
	int n = 0;
	for (int i = 0; i < s->n; i++)
		if (v[i])
			out[n++] = (struct job_field){s->names[i], v[i]};
	return n;
}

static const char *get_job(const void *job, const char *name)
{
	return job_get(job, name);
}

void ct_read_job(const struct ct_stream *s, const struct job *job, const char **v)
{
	ct_read(s, get_job, job, v);
}

void ct_read(const struct ct_stream *s, const char *(*get)(const void *src, const char *name),
	     const void *src, const char **v)
{
	for (int i = 0; i < s->n; i++)
		v[i] = get(src, s->names[i]);
}
