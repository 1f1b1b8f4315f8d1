/* feeengine.h - the fee engine's configuration and shared state: market data
 * (market.c), fee requests from the api (fees.c) and Claude (ai.c). */
#ifndef FEEENGINE_FEEENGINE_H
#define FEEENGINE_FEEENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/chain_route.h"
#include "common/config.h"
#include "common/snapshot.h"
#include "sources.h"

struct event;
struct event_base;
struct httpc;
struct job;
struct jobd;
struct jobq;
struct rds;

/* The market sources, in snapshot order. */
/* The snapshot's sources (common/snapshot.h), under the feeengine's names. */
enum src_id {
	SRC_FX = SNAP_FX,
	SRC_PRICES = SNAP_PRICES,
	SRC_GAS_ETHEREUM = SNAP_GAS_ETHEREUM,
	SRC_GAS_BASE = SNAP_GAS_BASE,
	SRC_GAS_POLYGON = SNAP_GAS_POLYGON,
	SRC_GAS_ARBITRUM = SNAP_GAS_ARBITRUM,
	SRC_GAS_SOLANA = SNAP_GAS_SOLANA,
	SRC_CIRCLE = SNAP_CIRCLE,
	SRC_COUNT = SNAP_SOURCE_COUNT
};

struct fee_config {
	struct cfg_base base;
	char metrics_host[64];
	int metrics_port;
	char *src_url[SRC_COUNT];  /* MARKET_*_URL */
	int refresh_s;		   /* MARKET_REFRESH_SECONDS */
	int fx_refresh_s;	   /* MARKET_FX_REFRESH_SECONDS: FX changes daily */
	int cache_ttl_s;	   /* MARKET_CACHE_TTL_SECONDS */
	int fetch_timeout_ms;	   /* MARKET_FETCH_TIMEOUT_MS, per source */
	char *anthropic_key;	   /* ANTHROPIC_API_KEY, "" = deterministic only */
	char *anthropic_url;	   /* ANTHROPIC_BASE_URL */
	char *anthropic_model;	   /* ANTHROPIC_MODEL */
	int ai_timeout_ms;	   /* FEE_AI_TIMEOUT_MS */
	int ai_cache_s;		   /* FEE_AI_CACHE_SECONDS */
	int ai_max_deviation_bps;  /* FEE_AI_MAX_DEVIATION_BPS: guardrail per component */
	struct route_config route; /* FEE_*_BPS, FEE_TIER_DISCOUNT_BPS, thresholds */
	int claim_idle_ms;
	int concurrency; /* FEE_CONCURRENCY: requests in flight */
	int grace_seconds;
};

int fee_config_load(struct fee_config *c) __attribute__((warn_unused_result));
void fee_config_free(struct fee_config *c);

/* Where a source's current value comes from (SPEC 6). */
/* The snapshot's states (common/snapshot.h), under the feeengine's names. */
enum src_state { STATE_LIVE = SNAP_LIVE, STATE_CACHED = SNAP_CACHED, STATE_DEFAULT = SNAP_DEFAULT };
const char *src_state_name(enum src_state s);

/* One source: its last good reading and how old it is. */
struct source {
	struct feeengine *fe;
	enum src_id id;
	const char *name; /* "fx", "prices", "gas.ethereum", ... */
	enum src_state state;
	int64_t good_at; /* unix seconds of the last good reading, 0 = never */
	bool fetching;
	char last_error[160];	/* of the last failed fetch, "" after a good one */
	char logged_error[160]; /* last error logged: each new one is said once */
	union {
		struct src_fx fx;
		struct src_prices prices;
		struct src_gas gas;
		struct src_status status;
	} good, def; /* last good reading, built-in default */
	struct metric *m_ok, *m_rejected, *m_failed, *m_age, *m_state;
};

/* The market as the fee decisions see it (built after every refresh). */
struct market_view {
	int64_t as_of;			 /* unix seconds of the refresh, 0 = none yet */
	uint64_t version;		 /* changes when anything below changes */
	int64_t fx_per_usd[32];		 /* money_currencies() order, never 0 */
	struct route_market route;	 /* per chain prices and availability */
	enum src_state state[SRC_COUNT]; /* per source */
	char circle_description[96];
};

struct ai_cache;

struct feeengine {
	struct fee_config cfg;
	struct event_base *base;
	struct jobq *jobs;
	struct rds *redis; /* the queue's command connection (borrowed) */
	struct httpc *http;
	struct jobd *daemon;
	struct timer *refresh;	   /* MARKET_REFRESH_SECONDS */
	struct timer *write_retry; /* retries a snapshot write Redis refused */
	struct source src[SRC_COUNT];
	struct market_view view;
	bool refreshing;
	bool snapshot_written;	/* ready: a snapshot reached Redis */
	int fetches_left;	/* of the refresh in progress */
	bool said_offline;	/* logged once that every source is on defaults */
	struct ai_cache *cache; /* ai.c */
	size_t pending;		/* fee requests being decided */
	char consumer[96];
	char snapshot_key[128];
	struct snapshot snap;	     /* the last snapshot written (market.c) */
	struct snap_fields snap_out; /* ... encoded: 20 KiB, off the stack */
	bool draining, closing;
};

/* ---- market.c: the refresher and the snapshot ---- */
int feed_init(struct feeengine *fe) __attribute__((warn_unused_result));
void feed_start(struct feeengine *fe);
void feed_free(struct feeengine *fe);

/* ---- fees.c: the consumer of <prefix>:{fees}:requests ---- */
int fees_init(struct feeengine *fe) __attribute__((warn_unused_result));
void fees_handle(void *feeengine, struct job *job);

/* ---- ai.c: Claude, guardrails, the decision cache ---- */

/* Claude's answer after the guardrails: fees in minor units of the source
 * currency, checked against the deterministic candidate for its chain. */
struct ai_decision {
	enum route_chain chain;
	struct route_fees fees;
	char reasoning[1024];
	int confidence_milli; /* 0..1000 */
	int n_risks;
	char risks[ROUTE_MAX_RISKS][128];
	int settlement_seconds;
};

/* Why the AI answer was not used; AI_OK when it was. */
enum ai_outcome {
	AI_OK,
	AI_DISABLED,	 /* no ANTHROPIC_API_KEY */
	AI_TIMEOUT,	 /* FEE_AI_TIMEOUT_MS or the request's deadline */
	AI_TRANSPORT,	 /* connection refused, reset, DNS */
	AI_RATE_LIMITED, /* 429 */
	AI_OVERLOADED,	 /* 529 */
	AI_SERVER_ERROR, /* other 5xx */
	AI_CLIENT_ERROR, /* 4xx other than 429 */
	AI_MALFORMED,	 /* not JSON, no fee_decision tool call, missing fields */
	AI_GUARDRAIL,	 /* a value outside the guardrails */
	AI_OUTCOME_COUNT
};
const char *ai_outcome_name(enum ai_outcome o);

/* Parses a Messages API response body and checks the fee_decision tool call
 * against the deterministic result (guardrails: chain among the eligible
 * candidates, each fee component within max_dev_bps of that chain's
 * deterministic one, confidence in [0,1], reasoning 1..1000 bytes of UTF-8,
 * at most ROUTE_MAX_RISKS risk factors of at most 120 bytes, settlement
 * 1..86400 s). Returns AI_OK, AI_MALFORMED or AI_GUARDRAIL, with a reason. */
enum ai_outcome ai_parse_decision(const char *body, size_t len, const struct route_result *det,
				  int max_dev_bps, struct ai_decision *out, char *why,
				  size_t whylen);

/* The Messages API request body for this decision (malloc'ed JSON). */
char *ai_request_body(const struct feeengine *fe, const struct route_request *req,
		      const struct route_result *det, const char *destination_country);

typedef void (*ai_cb)(void *arg, enum ai_outcome o, const struct ai_decision *d, const char *why);

/* Asks Claude (or the cache) for a decision; cb runs exactly once, maybe
 * inside this call (cache hit, disabled). deadline_ms: unix ms by which the
 * answer is useless. key identifies identical requests (cache, coalescing). */
void ai_decide(struct feeengine *fe, const char *key, const struct route_request *req,
	       const struct route_result *det, const char *destination_country, int64_t deadline_ms,
	       ai_cb cb, void *arg);
int ai_init(struct feeengine *fe) __attribute__((warn_unused_result));
void ai_free(struct feeengine *fe);

#endif
