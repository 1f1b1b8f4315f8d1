/* chain_route.h - the deterministic chain-routing engine (SPEC 6): for each chain a cost
 * model (network fee in USD from gas price x typical USDC-transfer gas x native
 * token price), a settlement time, availability and a security tier; a choice
 * by amount, priority and customer tier; and the fee breakdown in minor units
 * of the source currency. Pure functions: no I/O, no clock, no allocation, and
 * no floating point (market data arrives here already in fixed point).
 *
 * The model (its constants are documented in docs/fees.md):
 *   - gas units per USDC transfer: ethereum 65,000; base 65,000; polygon
 *     65,000; arbitrum 250,000 (its gas units include the L1 data component);
 *     solana: 5,000 lamports base fee + priority fee x 50,000 compute units;
 *   - native token: ethereum, base, arbitrum ETH; polygon POL; solana SOL;
 *   - settlement seconds (standard / express): ethereum 300/90, base 60/20,
 *     polygon 300/120, arbitrum 60/20, solana 20/10; express prices gas at the
 *     chain's fast gas price, standard at its standard price;
 *   - security tier: 1 ethereum; 2 base, arbitrum; 3 polygon, solana.
 *     Amounts >= large_usd_cents need tier 1 (ethereum) when it is available,
 *     else the best available tier 2 chain with a risk factor saying so;
 *     amounts >= mid_usd_cents need tier <= 2; smaller amounts any tier;
 *   - choice among eligible chains: standard = lowest gas_cost + risk_premium,
 *     ties by settlement time then chain order; express = shortest settlement,
 *     ties by cost then chain order;
 *   - fees (each rounded up, money_fee): platform = amount x (platform_bps -
 *     tier discount, floored at 0); onramp, offramp by their bps; gas_cost =
 *     the network fee converted to the source currency; risk_premium = amount
 *     x (chain risk bps: ethereum 0, base 1, arbitrum 1, polygon 2, solana 2,
 *     + provider_minor_bps when the provider reports minor trouble);
 *   - a provider status of major or critical means no route at all. */
#ifndef COMMON_CHAIN_ROUTE_H
#define COMMON_CHAIN_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/money.h"

enum route_chain {
	CHAIN_ETHEREUM,
	CHAIN_BASE,
	CHAIN_POLYGON,
	CHAIN_ARBITRUM,
	CHAIN_SOLANA,
	CHAIN_COUNT
};
enum route_priority { PRIORITY_STANDARD, PRIORITY_EXPRESS };
enum route_tier { TIER_STANDARD, TIER_PREMIUM, TIER_ENTERPRISE, TIER_COUNT };
/* Statuspage indicator: none | minor | major | critical. */
enum route_status { STATUS_NONE, STATUS_MINOR, STATUS_MAJOR, STATUS_CRITICAL };

/* Names as they appear in the API ("ethereum", "express", "premium", "minor");
 * the parsers return 0, or -1 for an unknown name (exact, lower case). */
const char *route_chain_name(enum route_chain c);
const char *route_priority_name(enum route_priority p);
const char *route_tier_name(enum route_tier t);
const char *route_status_name(enum route_status s);
int route_chain_parse(const char *s, enum route_chain *out);
int route_priority_parse(const char *s, enum route_priority *out);
int route_tier_parse(const char *s, enum route_tier *out);
int route_status_parse(const char *s, enum route_status *out);

/* One chain's market data. EVM chains: gas prices in wei per gas. Solana:
 * priority fees in micro-lamports per compute unit. */
struct route_chain_market {
	int64_t gas_standard, gas_fast;
	int64_t native_usd_micros; /* price of the native token, micro-USD */
	bool unavailable;	   /* e.g. gas above its ceiling; never chosen */
	char why[96];		   /* the reason when unavailable */
};

struct route_market {
	struct route_chain_market chain[CHAIN_COUNT];
	enum route_status provider; /* the ramp provider's (Circle's) status */
	const char *provider_name;  /* "circle" */
};

struct route_config {
	int platform_bps, onramp_bps, offramp_bps; /* FEE_*_BPS */
	int tier_discount_bps[TIER_COUNT];	   /* off the platform fee */
	int provider_minor_bps;			   /* risk premium while degraded (5) */
	int64_t large_usd_cents;		   /* 50,000,000 = $500,000 */
	int64_t mid_usd_cents;			   /* 5,000,000 = $50,000 */
};

struct route_request {
	int64_t amount; /* minor units of from, > 0 */
	const struct currency *from, *to;
	int64_t from_per_usd; /* units of from per 1 USD, MONEY_RATE_SCALE fixed point */
	enum route_priority priority;
	enum route_tier tier;
};

/* Minor units of the source currency. */
struct route_fees {
	int64_t platform_fee, onramp_fee, offramp_fee, gas_cost, risk_premium, total;
};

struct route_candidate {
	enum route_chain chain;
	bool eligible;		/* available and allowed for this amount */
	char why[128];		/* when not eligible: the reason */
	int security_tier;	/* 1 (L1) .. 3 */
	int settlement_seconds; /* for the request's priority */
	int64_t network_fee_usd_micros;
	struct route_fees fees;
};

#define ROUTE_MAX_RISKS 6

struct route_result {
	struct route_candidate cand[CHAIN_COUNT]; /* indexed by enum route_chain */
	int chosen;				  /* enum route_chain, or -1: no route */
	char reasoning[384];			  /* why this chain, or why none */
	int64_t amount_usd_cents;		  /* the amount's USD value, rounded down */
	char fee_percent[24]; /* total / amount in percent, 4 decimals, "2.7001" */
	int n_risks;
	char risks[ROUTE_MAX_RISKS]
		  [128]; /* risk factors, e.g. "provider circle degraded (minor)" */
};

/* Prices every chain and picks one. Returns 0 (res->chosen may still be -1
 * with the reason in res->reasoning), or -1 when the request itself cannot be
 * priced (bad arguments, overflow) - callers validate before. */
int route_decide(const struct route_config *cfg, const struct route_market *m,
		 const struct route_request *req, struct route_result *res)
	__attribute__((warn_unused_result));

/* The model's thresholds and risk constants ($500,000, $50,000, 5 bps while
 * the provider is degraded), no tier discounts, and the given fee bps. */
void route_config_init(struct route_config *cfg, int platform_bps, int onramp_bps, int offramp_bps);

/* The built-in market, for when no market data exists: gas standard/fast
 * ethereum 20/40 gwei, base 0.05/0.1, polygon 30/50, arbitrum 0.01/0.02,
 * solana 1000/5000 micro-lamports/CU; ETH $3,000, POL $0.50, SOL $150;
 * provider "circle" operational. */
void route_market_defaults(struct route_market *m);

/* total / amount as a percent string with 4 decimals, rounded up
 * ("2.7001"). buf holds at least 24 bytes. */
void route_fee_percent(int64_t total, int64_t amount, char *buf, size_t len);

#endif
