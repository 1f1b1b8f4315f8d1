/* app.h - the api daemon's shared state (one per process) and per-loop state
 * (one per event-loop thread). */
#ifndef API_APP_H
#define API_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/chain_route.h"
#include "common/clock.h"
#include "common/contracts.h"
#include "common/http.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/money.h"
#include "common/snapshot.h"
#include "config.h"

struct event_base;
struct pg_pool;
struct pg_batcher;
struct rds;
struct ratelimit;
struct keycache;
struct fees_loop;

/* Rates the api prices quotes with: the market snapshot's fx.<CUR> where it
 * had a valid one, else the built-in default (money.h). Written by loop 0's
 * refresh timer, read by every loop under the mutex. */
struct market {
	pthread_mutex_t mu;
	size_t n;	       /* currencies known to money.h */
	int64_t *per_usd;      /* 0 = no snapshot value: use the default */
	enum snap_state state; /* of the snapshot's FX rates (fx.source, aged) */
	int64_t as_of;	       /* fx.as_of, unix seconds, 0 when unknown */
	bool have_snapshot;
	struct route_market route;     /* the snapshot's gas, prices, availability,
					  Circle status; route_market_defaults where absent */
	struct route_config route_cfg; /* the router's constants and FEE_*_BPS */
};

/* The identity of an authenticated caller, for rate limits and ownership. */
struct principal {
	char key_id[48];
};

struct loop;

struct app {
	struct api_config cfg;
	struct market market;
	struct ratelimit *ratelimit;
	unsigned char (*static_hashes)[32]; /* SHA-256 of each API_KEYS key */
	size_t n_static;
	struct loop *loops;
	int nloops;
	atomic_bool draining;
	char snapshot_key[128]; /* <prefix>:market:snapshot */
	char jobs_key[128];	/* <prefix>:{payments}:jobs */
	char dlq_key[128];	/* <prefix>:{payments}:dlq */
	char wh_jobs_key[128];	/* <prefix>:{webhooks}:jobs (/health) */
	char wh_dlq_key[128];	/* <prefix>:{webhooks}:dlq (/health) */
	unsigned nonce;		/* random per process: names its fee reply streams */
};

/* An event (alias e) as a json value, with its deliveries and every
 * attempt: GET /v1/events/{id} and GET /v1/payments/{id}/events. */
#define EVENT_JSON_SQL                                                                         \
	"json_build_object('id', e.id, 'object', 'event', 'type', e.type,"                     \
	" 'created_at', rampart_time_json(e.created_at), 'data', e.data,"                      \
	" 'deliveries', coalesce((SELECT json_agg(json_build_object("                          \
	"   'endpoint_id', d.endpoint_id, 'url', w.url, 'state', d.state,"                     \
	"   'attempts', coalesce((SELECT json_agg(json_build_object("                          \
	"     'attempt', a.attempt, 'status_code', a.status_code, 'latency_ms', a.latency_ms," \
	"     'error', a.error, 'at', rampart_time_json(a.created_at))"                        \
	"     ORDER BY a.created_at, a.id) FROM webhook_attempts a"                            \
	"    WHERE a.event_id = d.event_id AND a.endpoint_id = d.endpoint_id), '[]'))"         \
	"   ORDER BY d.created_at, d.endpoint_id)"                                             \
	"  FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id"         \
	"  WHERE d.event_id = e.id), '[]'))"

/* Prepared statements, registered on every loop's pool in the same order. */
enum api_stmt {
	STMT_KEY_LOOKUP,
	STMT_QUOTE_GET,
	STMT_PAYMENT_CREATE,
	STMT_PAYMENT_IDEM_EXPIRE,
	STMT_PAYMENT_IDEM_GET,
	STMT_PAYMENT_IDEM_STORE,
	STMT_PAYMENT_LIST,
	STMT_PAYMENT_LIST_STATUS,
	STMT_WEBHOOK_CREATE,
	STMT_WEBHOOK_LIST,
	STMT_WEBHOOK_DELETE,
	STMT_EVENT_GET,
	STMT_EVENT_REDELIVER,
	STMT_PAYMENT_EVENTS,
	STMT_COUNT,
};

/* summary.c: payments by state, folded from payment_history (an append-only
 * log: a payment's count moves from its from_status to its to_status), so a
 * refresh reads only the transitions since the last fold. */
#define SUMMARY_STATES 8
struct summary_counts {
	int64_t by_state[SUMMARY_STATES]; /* SPEC 5 order */
	int64_t folded_to;		  /* payment_history.id folded up to */
	uint64_t generation;		  /* bumped by every fold */
	uint64_t recounted_us;		  /* when the fold last started from 0 */
};

struct loop {
	struct app *app;
	int index;
	pthread_t thread;
	struct event_base *base;
	struct http_server *http;
	struct pg_pool *pg;
	struct pg_batcher *quote_insert;
	struct pg_batcher *payment_get;
	struct rds *redis;
	struct keycache *keys;
	struct fees_loop *fees; /* fees.c: reply stream reader, waiting requests */
	struct summary_counts summary;
	int stmts[STMT_COUNT];
	struct timer *stop;   /* fired from the main thread on SIGTERM */
	struct timer *drain;  /* polls until in-flight requests are answered */
	struct timer *market; /* loop 0: re-reads the snapshot every second */
	struct timer *gauges; /* pool gauges for /metrics */
	uint64_t drain_deadline_us;
};

/* ---- auth.c ---- */
int auth_init(struct app *a) __attribute__((warn_unused_result));
void auth_free(struct app *a);
/* Per loop: the key cache and the key lookup statement. */
int auth_loop_init(struct loop *l) __attribute__((warn_unused_result));
void keycache_free(struct keycache *k);
/* The HTTP_AUTH hook: Bearer key, then the per-key rate limit. */
void auth_hook(struct http_req *r, void *loop);
/* The caller of an authenticated request (borrowed from r). */
const struct principal *auth_principal(const struct http_req *r);

/* ---- market.c: the snapshot's fields are common/snapshot.h's ---- */
int market_init(struct market *m) __attribute__((warn_unused_result));
void market_free(struct market *m);
/* Starts loop 0's once-a-second refresh from Redis. */
void market_start(struct loop *l);
/* Units of currency c per 1 USD and where it came from ("live", "cached",
 * "default"). */
int64_t market_per_usd(struct market *m, const struct currency *c, enum snap_state *state);
/* The chain the router picks for a quote (standard tier), or NULL with the
 * reason in why when there is no route (the provider is down). */
const char *market_chain(struct market *m, int64_t amount, const struct currency *from,
			 const struct currency *to, int64_t from_per_usd, bool express, char *why,
			 size_t whylen);

/* ---- quotes.c ---- */
int quotes_init(struct loop *l) __attribute__((warn_unused_result));
void quotes_create(struct http_req *r, void *loop);
/* The pure checks of POST /v1/quotes' body (fields, amount, currencies,
 * priority): 0, or -1 with *e the client error. Borrowed from body. */
struct quote_input {
	int64_t amount;
	const struct currency *from, *to;
	const char *priority; /* "standard" or "express" (static) */
};
int quotes_validate(const json_t *body, struct quote_input *in, struct jv_error *e)
	__attribute__((warn_unused_result));
void quotes_get(struct http_req *r, void *loop);

/* A quote (SPEC 4) as priced, stored and shown. Strings are static or
 * borrowed (from the market snapshot's names or a query result). */
struct quote {
	char id[ID_MAX];
	int64_t amount;
	const struct currency *from, *to;
	int64_t rate; /* to per from, money.h's fixed point */
	struct money_quote m;
	const char *chain;
	const char *priority;
	const char *rate_source; /* "live", "cached" or "default" */
	int64_t created_ms, expires_ms;
	/* Text forms, made once (quotes_set_text) and shared by the row and
	 * the response. */
	char rate_str[MONEY_RATE_STRLEN];
	char created_at[32], expires_at[32];
};

/* The pure steps of POST /v1/quotes between validation and the insert. */

/* Prices in (amount, currencies, priority) at the two per-USD rates, each
 * with its source; the quote is as fresh as its staler rate. Fills q's
 * amount, currencies, priority, rate, fees, payout and rate_source. 0, or -1
 * with *e the client error (400 AMOUNT_TOO_SMALL, AMOUNT_TOO_LARGE,
 * INVALID_AMOUNT). */
int quotes_price(const struct quote_input *in, int64_t from_per_usd, enum snap_state from_state,
		 int64_t to_per_usd, enum snap_state to_state, const struct money_fees_bps *bps,
		 struct quote *q, struct jv_error *e) __attribute__((warn_unused_result));

/* RFC 3339 UTC with milliseconds: 2026-11-22T01:41:35.123Z */
void quotes_format_time(int64_t ms, char out[32]);

/* Fills q's text forms (rate, created_at, expires_at) from its numbers. */
void quotes_set_text(struct quote *q);

/* The quote object of SPEC 4 as seen at now_ms (valid_for_seconds). New
 * reference; NULL on OOM. */
json_t *quotes_json(const struct quote *q, int64_t now_ms);

/* The insert's row (INSERT_COLS texts, in insert_sql's order): numbers
 * are written into buf; the rest point into q and key_id. Valid while q,
 * key_id and buf are. */
#define QUOTES_ROW_COLS 16
struct quote_row_buf {
	char amount[24], platform_fee[24], onramp_fee[24], offramp_fee[24], total_fees[24],
		payout[24];
};
void quotes_row(const struct quote *q, const char *key_id, struct quote_row_buf *buf,
		const char *row[QUOTES_ROW_COLS]);

/* ---- payments.c ---- */
int payments_init(struct loop *l) __attribute__((warn_unused_result));
void payments_create(struct http_req *r, void *loop);
/* The pure checks of POST /v1/payments (Idempotency-Key, may be NULL, and
 * the body): 0, or -1 with *e the client error. quote_id is borrowed. */
struct payment_input {
	const char *quote_id;
	int64_t amount;
	bool has_amount;
};
int payments_validate(const json_t *body, const char *idem_key, struct payment_input *in,
		      struct jv_error *e) __attribute__((warn_unused_result));
void payments_get(struct http_req *r, void *loop);
/* The request's {id} when it is a well-formed payment id; else NULL, with
 * 400 INVALID_ID already answered. */
const char *payment_id_param(struct http_req *r);
void payments_list(struct http_req *r, void *loop);

/* ---- webhooks.c ---- */
int webhooks_init(struct loop *l) __attribute__((warn_unused_result));
void webhooks_create(struct http_req *r, void *loop);
/* The pure checks of POST /v1/webhook_endpoints' body: the events as a new
 * array without duplicates (caller json_decref's) and *url (borrowed), or
 * NULL with *e the client error. Unless allow_private (WEBHOOK_ALLOW_PRIVATE),
 * a URL whose host is a literal private/loopback/reserved address or
 * localhost is refused: it could never be delivered. */
json_t *webhooks_validate(const json_t *body, bool allow_private, const char **url,
			  struct jv_error *e);
void webhooks_list(struct http_req *r, void *loop);
void webhooks_delete(struct http_req *r, void *loop);
void events_get(struct http_req *r, void *loop);
void events_redeliver(struct http_req *r, void *loop);

/* ---- fees.c ---- */
int fees_loop_init(struct loop *l) __attribute__((warn_unused_result));
void fees_loop_free(struct loop *l);
void fees_calculate(struct http_req *r, void *loop);
/* The pure checks of POST /v1/fees/calculate's body: 0, or -1 with *e the
 * client error. country (NULL when absent) is borrowed from body;
 * priority and tier are static. */
struct fees_input {
	int64_t amount;
	const struct currency *from, *to;
	const char *country, *priority, *tier;
};
int fees_validate(const json_t *body, struct fees_input *in, struct jv_error *e)
	__attribute__((warn_unused_result));
/* The fee request's fields (common/contracts.h: CT_FEE_REQUEST) for a
 * validated input: values borrowed from in, id, reply_to and request_id,
 * the numbers formatted into m. Pure. */
struct fees_request_msg {
	const char *v[FQ_COUNT];
	char amount[24], deadline_ms[24];
};
void fees_request_fields(const struct fees_input *in, const char *id, const char *reply_to,
			 int64_t deadline_ms, const char *request_id, struct fees_request_msg *m);
/* The HTTP answer to the fee engine's reply fields v (CT_FEE_REPLY): status
 * 200 with *body (caller json_decref's), or an error status with code and
 * message (borrowed from v, or static). Pure. */
struct fees_answer {
	int status;
	json_t *body;
	const char *code, *message;
};
void fees_reply_answer(const char *const *v, struct fees_answer *out);

/* ---- summary.c: the operator dashboard and what it reads ---- */
int summary_init(struct loop *l) __attribute__((warn_unused_result));
void summary_get(struct http_req *r, void *loop);	 /* GET /v1/summary */
void payment_events_get(struct http_req *r, void *loop); /* GET /v1/payments/{id}/events */
void dashboard_get(struct http_req *r, void *loop);	 /* GET /dashboard[/{file}] */
/* Pure parts, for the unit tests. redisReply is hiredis'. */
struct redisReply;
struct queue_counts {
	int64_t consumers, in_flight, lag; /* lag -1: unknown (Redis < 7, or trimmed) */
	bool found;
};
/* Reads group's consumers, pending and lag from an XINFO GROUPS reply. */
void summary_xinfo_group(const struct redisReply *groups, const char *group,
			 struct queue_counts *out);
/* {"as_of", "sources": [{name, source, as_of, age_seconds}]} from the
 * snapshot hash's fields and values (HGETALL), now in unix seconds. */
json_t *summary_market_json(const char *const *fields, const char *const *values, size_t n,
			    int64_t now_s);
/* Succeeded per mille of attempts (0..1000, rounded), -1 when none. */
int summary_rate_permille(int64_t succeeded, int64_t attempts);

/* ---- health.c ---- */
void health_full(struct http_req *r, void *loop);
void health_live(struct http_req *r, void *loop);
void health_ready(struct http_req *r, void *loop);
void health_metrics(struct http_req *r, void *loop);

/* ---- openapi.c ---- */
/* GET /openapi.json: docs/openapi.yaml as JSON, embedded at build time. */
void openapi_get(struct http_req *r, void *loop);

/* ---- migrate.c ---- */
/* Applies pending embedded migrations; blocks the calling thread on its own
 * private event loop (start-up only). Returns 0 or -1. */
int migrate_run(const char *database_url) __attribute__((warn_unused_result));

/* ---- keys.c ---- */
/* `rampart-api keys create NAME | list | revoke ID` (argv after "keys"):
 * blocking, before any loop. Returns the exit status: 0, 1 (database or
 * not found), 2 (usage). */
int keys_main(const char *database_url, int argc, char **argv);

#endif
