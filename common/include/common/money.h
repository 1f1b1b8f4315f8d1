/* money.h - exact money arithmetic: currencies, fixed-point rates, fees, payouts. */
#ifndef COMMON_MONEY_H
#define COMMON_MONEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exchange rates are fixed-point integers with 10 decimal places:
 * 0.9205 is stored as 9205000000. */
#define MONEY_RATE_DECIMALS 10
#define MONEY_RATE_SCALE    10000000000LL

/* Longest formatted rate: 19 digits, a dot, a sign and a NUL, rounded up. */
#define MONEY_RATE_STRLEN 32

struct currency {
	const char *code; /* ISO 4217 code, e.g. "USD"; "USDC" for the stablecoin */
	int exponent;	  /* minor-unit exponent: USD 2, JPY 0, USDC 6 */
	int64_t per_usd;  /* built-in default rate: units of this currency per 1 USD */
};

enum money_err {
	MONEY_OK = 0,
	MONEY_EINVAL,	 /* a non-positive amount or rate, or a bad argument */
	MONEY_EOVERFLOW, /* a result does not fit in int64 */
	MONEY_ETOOSMALL, /* the fees eat the whole amount, or the payout rounds to 0 */
};

/* The currency with this code (exact, upper case), or NULL when unsupported.
 * The returned pointer is static. */
const struct currency *money_currency(const char *code);

/* All supported currencies, for docs and iteration; *n receives the count. */
const struct currency *money_currencies(size_t *n);

/* Parses a positive decimal string ("0.919", "151.2", "1") into a
 * fixed-point rate. Digits past the 10th decimal place are truncated (rounding
 * down favours the platform). Rejects signs, exponents, empty strings, junk,
 * zero and values that overflow. Returns MONEY_OK or an error. */
enum money_err money_rate_parse(const char *s, int64_t *rate) __attribute__((warn_unused_result));

/* Formats a fixed-point rate with trailing zeros removed: 9190000000 ->
 * "0.919", 10000000000 -> "1". buf must hold MONEY_RATE_STRLEN bytes. */
void money_rate_format(int64_t rate, char *buf, size_t len);

/* Formats v / 10^scale (scale 0..18) with trailing zeros removed:
 * (3120550000, 6) -> "3120.55", (25000000000, 9) -> "25". The one
 * fixed-point formatter: market-data values in the snapshot, logs. */
void money_fixed_format(int64_t v, int scale, char *buf, size_t len);

/* Parses a decimal string as fixed point with `scale` decimals (0..10),
 * truncating further digits: ("3120.55", 6) -> 3120550000. "0" is 0; any
 * other value must be positive (money_rate_parse's grammar). The one decimal
 * parser for market data. Returns false on junk or overflow. */
bool money_fixed_parse(const char *s, int scale, int64_t *out) __attribute__((warn_unused_result));

/* Parses a positive integer in plain decimal digits ("1700000000000"): no
 * sign, no spaces, no junk, > 0, fits int64. Amounts and deadlines read
 * back from Redis fields. */
bool money_count_parse(const char *s, int64_t *out) __attribute__((warn_unused_result));

/* Cross rate from two per-USD rates: units of `to` per one unit of `from`
 * = to_per_usd / from_per_usd, rounded down to 10 decimal places. */
enum money_err money_cross_rate(int64_t from_per_usd, int64_t to_per_usd, int64_t *rate)
	__attribute__((warn_unused_result));

/* fee = ceil(amount * bps / 10000). amount > 0, 0 <= bps <= 10000. */
enum money_err money_fee(int64_t amount, int bps, int64_t *fee) __attribute__((warn_unused_result));

/* payout = floor(net * rate / 10^10 * 10^(exp_to - exp_from)), net > 0. */
enum money_err money_convert(int64_t net, int64_t rate, int exp_from, int exp_to, int64_t *payout)
	__attribute__((warn_unused_result));

struct money_fees_bps {
	int platform, onramp, offramp;
};

struct money_quote {
	int64_t platform_fee, onramp_fee, offramp_fee, total_fees; /* source minor units */
	int64_t payout;						   /* payout minor units */
};

/* Prices a quote per SPEC section 3: each fee rounded up, payout rounded down.
 * MONEY_ETOOSMALL when total fees >= amount or the payout is 0. */
enum money_err money_quote(int64_t amount, int64_t rate, const struct currency *from,
			   const struct currency *to, const struct money_fees_bps *bps,
			   struct money_quote *out) __attribute__((warn_unused_result));

/* Overflow-checked int64 helpers: false (and *out untouched) on overflow. */
bool money_add(int64_t a, int64_t b, int64_t *out) __attribute__((warn_unused_result));
bool money_sub(int64_t a, int64_t b, int64_t *out) __attribute__((warn_unused_result));
bool money_mul(int64_t a, int64_t b, int64_t *out) __attribute__((warn_unused_result));

#endif
