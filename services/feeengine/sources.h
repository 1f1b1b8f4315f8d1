/* sources.h - defensive parsers for the market-data sources' responses
 * (shapes in ../shared/EXTERNAL_APIS.md). Each takes a response body and the
 * source's last good reading (or NULL), and either fills a new reading and
 * returns 0, or returns -1 with a one-line reason in err: malformed JSON, a
 * missing field, a wrong type, an absurd value (non-positive or beyond a
 * sanity ceiling), or, for FX rates and token prices, a jump of more than
 * SRC_MAX_JUMP times (either way) from the last good value. Gas prices have
 * no jump check: 10x spikes and crashes are real (a mint on Ethereum, an idle
 * L2, Solana's priority fees going to 0); their ceilings guard them. A rejected update never
 * changes *out's caller state: callers keep their last good reading.
 *
 * Numbers: JSON numbers are read by jansson; a real is converted to fixed
 * point at once by src_decimal (formatted with 15 significant digits, then
 * parsed as a decimal string), so no arithmetic is ever done in floating
 * point. Pure functions, no I/O. */
#ifndef FEEENGINE_SOURCES_H
#define FEEENGINE_SOURCES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRC_MAX_JUMP 10 /* a value moving more than 10x (or to a tenth) is rejected */

/* A JSON integer, real, or decimal string (e.g. Blockscout's "4.83") as a
 * fixed-point integer with `scale` decimal places (0..18), truncated past
 * them. Rejects null, booleans, non-finite or negative values, junk strings
 * and overflow. Returns 0 or -1. */
int src_decimal(const json_t *v, int scale, int64_t *out);

/* ExchangeRate-API: {"result":"success","base_code":"USD",
 * "time_last_update_unix":N,"rates":{"EUR":0.919,...}}. Currencies are those
 * of money.h (others ignored); per_usd[i] indexes money_currencies(), 0 when
 * the source did not list it. At least one listed currency other than USD is
 * required; any listed known currency with a bad value rejects the update.
 * as_of = time_last_update_unix (0 if absent). */
struct src_fx {
	int64_t per_usd[32]; /* MONEY_RATE_SCALE fixed point */
	int64_t as_of;
};
int src_parse_fx(const char *body, size_t len, const struct src_fx *last, struct src_fx *out,
		 char *err, size_t errlen);

/* CoinGecko simple price: {"ethereum":{"usd":3120.55,...},"solana":{...},
 * "usd-coin":{...},"matic-network":{...}}. ethereum and solana are required;
 * usd-coin (must be within 0.5..1.5) and matic-network are optional (0 when
 * absent). Prices in micro-USD; ceiling $10,000,000. */
struct src_prices {
	int64_t eth_usd_micros, sol_usd_micros, usdc_usd_micros, pol_usd_micros;
};
int src_parse_prices(const char *body, size_t len, const struct src_prices *last,
		     struct src_prices *out, char *err, size_t errlen);

/* Gas prices in wei per gas (EVM) or micro-lamports per compute unit
 * (Solana): standard and fast. */
struct src_gas {
	int64_t standard, fast;
};

/* beaconcha.in: {"code":200,"data":{"rapid":..,"fast":..,"standard":..,
 * "slow":..,"timestamp":ms}} in wei. standard = data.standard, fast =
 * data.fast (data.rapid when fast is missing). Ceiling 10,000 gwei. */
int src_parse_eth_gas(const char *body, size_t len, const struct src_gas *last, struct src_gas *out,
		      char *err, size_t errlen);

/* Blockscout /api/v2/stats, both shapes: gas_prices.{slow,average,fast}
 * each a number (gwei) or an object {"price": gwei, ...} or null.
 * standard = average, fast = fast (average when fast is null or absent).
 * average is required. Ceiling 10,000 gwei. */
int src_parse_blockscout(const char *body, size_t len, const struct src_gas *last,
			 struct src_gas *out, char *err, size_t errlen);

/* Solana getRecentPrioritizationFees: {"result":[{"slot":..,
 * "prioritizationFee":N},...]} -> standard = median, fast = 75th percentile
 * (nearest rank) of the fees. An "error" object or an empty result is
 * rejected with the RPC's message. Ceiling 100,000,000 micro-lamports per CU. */
int src_parse_solana(const char *body, size_t len, const struct src_gas *last, struct src_gas *out,
		     char *err, size_t errlen);

/* The JSON-RPC request body the Solana source is POSTed. */
#define SRC_SOLANA_REQUEST \
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getRecentPrioritizationFees\",\"params\":[]}"

/* Statuspage status.json: {"status":{"indicator":"none|minor|major|critical",
 * "description":"..."}}. indicator: 0 none, 1 minor, 2 major, 3 critical
 * (enum route_status); description copied (truncated to fit). */
struct src_status {
	int indicator;
	char description[96];
};
int src_parse_status(const char *body, size_t len, struct src_status *out, char *err,
		     size_t errlen);

#endif
