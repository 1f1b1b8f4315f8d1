/* contracts.h - what the daemons agree on over Redis, in one place: every
 * key and stream name (built from REDIS_PREFIX), each stream's fields, and
 * the fee-decision counters. A field or key is named here once; services
 * spell it through these enums and functions, so a rename is one edit and a
 * mismatch fails to compile. The market snapshot's fields live in
 * snapshot.h, the payment states and event types in payment.h.
 *
 * A message is an array of values indexed by its stream's field enum
 * (NULL = the field is absent); ct_fields turns it into job fields for
 * jobs_add / jobq_next / jobq_retry (or an XADD's argv), ct_read fills it
 * back from a received job or a reply. Pure: no I/O. */
#ifndef COMMON_CONTRACTS_H
#define COMMON_CONTRACTS_H

#include <stdbool.h>
#include <stddef.h>

struct job;
struct job_field;

/* Room for any key below with a prefix of up to 64 bytes. */
#define RK_KEY_LEN 192

/* ---- queues (jobs.h: <prefix>:{<name>}:<kind>) ---------------------------- */

enum rk_queue {
	RQ_PAYMENTS, /* payment steps: api, worker relay -> worker */
	RQ_WEBHOOKS, /* webhook deliveries: webhook relay, api redelivery -> webhook */
	RQ_FEES,     /* fee requests: api -> feeengine */
	RQ_COUNT
};

enum rk_part { RK_STREAM, RK_DELAYED, RK_DLQ };

struct rk_queue_def {
	const char *name;	 /* the hash tag, e.g. "payments" */
	const char *stream_kind; /* last part of the stream key: "jobs" or "requests" */
	const char *group;	 /* the consumer group */
};

/* The queue's names (static). */
const struct rk_queue_def *rk_queue(enum rk_queue q);

/* "<prefix>:{<queue>}:<kind>" of one part of a queue. */
void rk_queue_key(char *out, size_t len, const char *prefix, enum rk_queue q, enum rk_part part);

/* "<prefix>:market:snapshot", the feeengine's market data (snapshot.h). */
void rk_snapshot_key(char *out, size_t len, const char *prefix);

/* "<prefix>:{fees}:decisions", a hash of fee-decision counters. */
void rk_fee_decisions_key(char *out, size_t len, const char *prefix);

/* "<prefix>:{fees}:replies:", the start of every api loop's reply stream. */
void rk_fee_replies_prefix(char *out, size_t len, const char *prefix);

/* "<prefix>:{fees}:replies:<instance>", one api loop's reply stream. */
void rk_fee_reply_key(char *out, size_t len, const char *prefix, const char *instance);

/* "<prefix>:ratelimit:<key_id>", one API key's shared token bucket. */
void rk_ratelimit_key(char *out, size_t len, const char *prefix, const char *key_id);

/* ---- the fee-decision counters (HINCRBY in <prefix>:{fees}:decisions) ---- */

#define FEE_DECISION_AI	      "ai"
#define FEE_DECISION_FALLBACK "fallback"
/* "fallback.<reason>"; returns a pointer to out. */
const char *fee_decision_reason_field(char *out, size_t len, const char *reason);
/* The reason of a "fallback.<reason>" field, or NULL for any other field. */
const char *fee_decision_reason_of(const char *field);

/* ---- streams and their fields --------------------------------------------- */

struct ct_stream {
	const char *what; /* for logs: "payment job" */
	int n;
	const char *const *names;
};

/* <prefix>:{payments}:jobs: one step of one payment. */
enum pay_job_field { PJ_PAYMENT_ID, PJ_STEP, PJ_ATTEMPT, PJ_REQUEST_ID, PJ_COUNT };
extern const struct ct_stream CT_PAY_JOB;

/* <prefix>:{webhooks}:jobs: one delivery attempt of one event to one
 * endpoint; redelivery "1" when an operator asked for it. */
enum wh_job_field { WJ_EVENT_ID, WJ_ENDPOINT_ID, WJ_ATTEMPT, WJ_REDELIVERY, WJ_COUNT };
extern const struct ct_stream CT_WH_JOB;

/* <prefix>:{fees}:requests: POST /v1/fees/calculate, answered on reply_to
 * (an rk_fee_reply_key) until deadline_ms (unix ms). */
enum fee_req_field {
	FQ_ID,
	FQ_REPLY_TO,
	FQ_AMOUNT,
	FQ_FROM_CURRENCY,
	FQ_TO_CURRENCY,
	FQ_DESTINATION_COUNTRY,
	FQ_PRIORITY,
	FQ_CUSTOMER_TIER,
	FQ_DEADLINE_MS,
	FQ_REQUEST_ID,
	FQ_COUNT
};
extern const struct ct_stream CT_FEE_REQUEST;

/* A reply on <prefix>:{fees}:replies:<instance>: id, status, then either the
 * decision (status FEE_REPLY_OK) or http_status, code, message
 * (FEE_REPLY_ERROR). */
enum fee_reply_field {
	FR_ID,
	FR_STATUS,
	FR_CURRENCY,
	FR_TOTAL_FEE,
	FR_FEE_PERCENT,
	FR_PLATFORM_FEE,
	FR_ONRAMP_FEE,
	FR_OFFRAMP_FEE,
	FR_GAS_COST,
	FR_RISK_PREMIUM,
	FR_ONRAMP,
	FR_OFFRAMP,
	FR_CHAIN,
	FR_REASONING,
	FR_ESTIMATED_SETTLEMENT_TIME,
	FR_CONFIDENCE_SCORE,
	FR_RISK_FACTORS, /* a JSON array of strings */
	FR_SOURCE,	 /* FEE_SOURCE_AI or FEE_SOURCE_FALLBACK */
	FR_FALLBACK_REASON,
	FR_MARKET_DATA_AS_OF,
	FR_HTTP_STATUS,
	FR_CODE,
	FR_MESSAGE,
	FR_COUNT
};
extern const struct ct_stream CT_FEE_REPLY;
#define FEE_REPLY_OK	    "ok"
#define FEE_REPLY_ERROR	    "error"
#define FEE_SOURCE_AI	    "ai"
#define FEE_SOURCE_FALLBACK "fallback"

/* The present (non-NULL) values of v (s->n of them, indexed by the stream's
 * enum) as fields, in enum order, into out (room for s->n). Returns how many.
 * The fields borrow the names (static) and the values. */
int ct_fields(const struct ct_stream *s, const char *const *v, struct job_field *out);

/* Fills v (s->n entries) from a received job: each field's value or NULL.
 * Borrowed from the job. */
void ct_read_job(const struct ct_stream *s, const struct job *job, const char **v);

/* The same from any source of fields: get(src, name) returns a value or
 * NULL (e.g. a stream entry's fields in a Redis reply, rdsreply.h). */
void ct_read(const struct ct_stream *s, const char *(*get)(const void *src, const char *name),
	     const void *src, const char **v);

#endif
