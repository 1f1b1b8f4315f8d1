/* money.c - exact money arithmetic in integers: currencies, fixed-point rates, fees, payouts. */
#include "common/money.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Intermediates are unsigned 128-bit: every operand is validated positive first, and
 * amount * rate < 2^126 always fits. A scalar typedef (against STYLE's callback-only
 * rule) because spelling out "unsigned __int128" a dozen times hides the arithmetic. */
typedef unsigned __int128 u128;

/* Exponents we accept from a currency: 10^(10 + 18) still fits in u128 with room. */
#define MONEY_MAX_EXPONENT 18

#define MAJOR(n) ((int64_t)(n)*MONEY_RATE_SCALE)

/* Built-in per-USD rates: the fallback when the market snapshot has neither a
 * live nor a cached FX value (SPEC 6). One row per line, so formatting is off. */
/* clang-format off */
static const struct currency currencies[] = {
	{"USD",  2, MAJOR(1)},
	{"EUR",  2, 9200000000LL},    /* 0.92 */
	{"GBP",  2, 7900000000LL},    /* 0.79 */
	{"JPY",  0, 1512000000000LL}, /* 151.2 */
	{"CHF",  2, 8800000000LL},    /* 0.88 */
	{"CAD",  2, 13600000000LL},   /* 1.36 */
	{"AUD",  2, 15200000000LL},   /* 1.52 */
	{"NZD",  2, 16500000000LL},   /* 1.65 */
	{"MXN",  2, 171000000000LL},  /* 17.1 */
	{"BRL",  2, 50500000000LL},   /* 5.05 */
	{"INR",  2, 833000000000LL},  /* 83.3 */
	{"SGD",  2, 13400000000LL},   /* 1.34 */
	{"HKD",  2, 78200000000LL},   /* 7.82 */
	{"CNY",  2, 72300000000LL},   /* 7.23 */
	{"KRW",  0, MAJOR(1330)},
	{"SEK",  2, 105000000000LL},  /* 10.5 */
	{"NOK",  2, 106000000000LL},  /* 10.6 */
	{"DKK",  2, 68700000000LL},   /* 6.87 */
	{"PLN",  2, MAJOR(4)},
	{"ZAR",  2, 185000000000LL},  /* 18.5 */
	{"PHP",  2, 565000000000LL},  /* 56.5 */
	{"IDR",  2, MAJOR(15700)},
	{"KWD",  3, 3070000000LL},    /* 0.307 */
	{"BHD",  3, 3760000000LL},    /* 0.376 */
	{"USDC", 6, MAJOR(1)},
};
/* clang-format on */

#define N_CURRENCIES (sizeof(currencies) / sizeof(currencies[0]))

/* 10^n as u128 for 0 <= n <= 38; callers pass at most MONEY_MAX_EXPONENT. */
static u128 pow10_u128(int n)
{
	u128 p = 1;

	while (n-- > 0)
		p *= 10;
	return p;
}

/* Table is tiny; a linear scan beats keeping it sorted by hand. */
const struct currency *money_currency(const char *code)
{
	size_t i;

	if (!code)
		return NULL;
	for (i = 0; i < N_CURRENCIES; i++)
		if (strcmp(currencies[i].code, code) == 0)
			return &currencies[i];
	return NULL;
}

/* Returns the static table; *n receives its length. */
const struct currency *money_currencies(size_t *n)
{
	if (n)
		*n = N_CURRENCIES;
	return currencies;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Grammar: DIGIT+ [ "." DIGIT+ ]. No sign, exponent, whitespace, or bare dots
 * ("1." and ".5" are rejected). Overflow is EOVERFLOW, everything else EINVAL;
 * a value that truncates to 0 (e.g. "0.00000000001") is EINVAL like "0". */
enum money_err money_rate_parse(const char *s, int64_t *rate)
{
	int64_t whole = 0, frac = 0;
	int nfrac = 0;
	const char *p = s;

	if (!s || !rate || !is_digit(*p))
		return MONEY_EINVAL;
	for (; is_digit(*p); p++) {
		if (whole > (INT64_MAX / MONEY_RATE_SCALE - (*p - '0')) / 10)
			return MONEY_EOVERFLOW;
		whole = whole * 10 + (*p - '0');
	}
	if (*p == '.') {
		p++;
		if (!is_digit(*p))
			return MONEY_EINVAL;
		for (; is_digit(*p); p++) {
			if (nfrac < MONEY_RATE_DECIMALS) {
				frac = frac * 10 + (*p - '0');
				nfrac++;
			}
		}
	}
	if (*p != '\0')
		return MONEY_EINVAL;
	for (; nfrac < MONEY_RATE_DECIMALS; nfrac++)
		frac *= 10;
	/* whole <= INT64_MAX / SCALE, so only the addition can overflow. */
	if (whole * MONEY_RATE_SCALE > INT64_MAX - frac)
		return MONEY_EOVERFLOW;
	if (whole == 0 && frac == 0)
		return MONEY_EINVAL;
	*rate = whole * MONEY_RATE_SCALE + frac;
	return MONEY_OK;
}

/* Any int64 is formatted (negatives get a '-'); output is truncated to len
 * like snprintf when buf is short. */
void money_fixed_format(int64_t v, int scale, char *buf, size_t len)
{
	uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v, div = 1;
	char tmp[48];
	size_t n;

	if (!buf || len == 0)
		return;
	if (scale < 0)
		scale = 0;
	if (scale > 18)
		scale = 18;
	for (int i = 0; i < scale; i++)
		div *= 10;
	if (scale == 0) {
		snprintf(buf, len, "%s%" PRIu64, v < 0 ? "-" : "", mag);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s%" PRIu64 ".%0*" PRIu64, v < 0 ? "-" : "", mag / div, scale,
		 mag % div);
	n = strlen(tmp);
	while (tmp[n - 1] == '0')
		tmp[--n] = '\0';
	if (tmp[n - 1] == '.')
		tmp[--n] = '\0';
	snprintf(buf, len, "%s", tmp);
}

/* A rate is a fixed-point number with MONEY_RATE_DECIMALS places. */
void money_rate_format(int64_t rate, char *buf, size_t len)
{
	money_fixed_format(rate, MONEY_RATE_DECIMALS, buf, len);
}

bool money_fixed_parse(const char *s, int scale, int64_t *out)
{
	int64_t v;
	if (!s || !out || scale < 0 || scale > MONEY_RATE_DECIMALS)
		return false;
	if (strcmp(s, "0") == 0) {
		*out = 0;
		return true;
	}
	if (money_rate_parse(s, &v) != MONEY_OK)
		return false;
	for (int i = scale; i < MONEY_RATE_DECIMALS; i++)
		v /= 10;
	*out = v;
	return true;
}

bool money_count_parse(const char *s, int64_t *out)
{
	int64_t v = 0;
	if (!s || !out || !is_digit(*s))
		return false;
	for (; is_digit(*s); s++) {
		if (v > (INT64_MAX - (*s - '0')) / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	if (*s != '\0' || v <= 0)
		return false;
	*out = v;
	return true;
}

/* rate = floor(to * 10^10 / from). Both inputs must be positive (EINVAL);
 * a cross rate that rounds down to 0 is ETOOSMALL, one past int64 EOVERFLOW. */
enum money_err money_cross_rate(int64_t from_per_usd, int64_t to_per_usd, int64_t *rate)
{
	u128 r;

	if (from_per_usd <= 0 || to_per_usd <= 0 || !rate)
		return MONEY_EINVAL;
	r = (u128)to_per_usd * (u128)MONEY_RATE_SCALE / (u128)from_per_usd;
	if (r > INT64_MAX)
		return MONEY_EOVERFLOW;
	if (r == 0)
		return MONEY_ETOOSMALL;
	*rate = (int64_t)r;
	return MONEY_OK;
}

/* fee = ceil(amount * bps / 10000); never exceeds amount, so never overflows. */
enum money_err money_fee(int64_t amount, int bps, int64_t *fee)
{
	u128 f;

	if (amount <= 0 || bps < 0 || bps > 10000 || !fee)
		return MONEY_EINVAL;
	f = ((u128)amount * (u128)bps + 9999) / 10000;
	if (f > INT64_MAX)
		return MONEY_EOVERFLOW;
	*fee = (int64_t)f;
	return MONEY_OK;
}

/* payout = floor(net * rate * 10^exp_to / (10^10 * 10^exp_from)), exact.
 * Exponents must be in 0..18. A payout of 0 is MONEY_OK here; money_quote
 * turns it into ETOOSMALL. */
enum money_err money_convert(int64_t net, int64_t rate, int exp_from, int exp_to, int64_t *payout)
{
	u128 num, den, p;
	int shift;

	if (net <= 0 || rate <= 0 || !payout)
		return MONEY_EINVAL;
	if (exp_from < 0 || exp_from > MONEY_MAX_EXPONENT || exp_to < 0 ||
	    exp_to > MONEY_MAX_EXPONENT)
		return MONEY_EINVAL;
	num = (u128)net * (u128)rate; /* < 2^126 */
	den = (u128)MONEY_RATE_SCALE;
	shift = exp_to - exp_from;
	if (shift >= 0) {
		p = pow10_u128(shift);
		/* If num * p wraps u128, the quotient would be >= 2^128 / 10^10 > INT64_MAX. */
		if (num > ~(u128)0 / p)
			return MONEY_EOVERFLOW;
		num *= p;
	} else {
		den *= pow10_u128(-shift);
	}
	num /= den;
	if (num > INT64_MAX)
		return MONEY_EOVERFLOW;
	*payout = (int64_t)num;
	return MONEY_OK;
}

static bool bps_ok(int bps)
{
	return bps >= 0 && bps <= 10000;
}

/* Validation first (EINVAL), then fees; a total that does not fit int64 is
 * EOVERFLOW even though it also exceeds the amount. *out is written only on
 * MONEY_OK. All pointers are borrowed for the call. */
enum money_err money_quote(int64_t amount, int64_t rate, const struct currency *from,
			   const struct currency *to, const struct money_fees_bps *bps,
			   struct money_quote *out)
{
	struct money_quote q;
	enum money_err err;
	int64_t net;

	if (amount <= 0 || rate <= 0 || !from || !to || !bps || !out)
		return MONEY_EINVAL;
	if (!bps_ok(bps->platform) || !bps_ok(bps->onramp) || !bps_ok(bps->offramp))
		return MONEY_EINVAL;

	memset(&q, 0, sizeof(q));
	if ((err = money_fee(amount, bps->platform, &q.platform_fee)) != MONEY_OK)
		return err;
	if ((err = money_fee(amount, bps->onramp, &q.onramp_fee)) != MONEY_OK)
		return err;
	if ((err = money_fee(amount, bps->offramp, &q.offramp_fee)) != MONEY_OK)
		return err;
	if (!money_add(q.platform_fee, q.onramp_fee, &q.total_fees) ||
	    !money_add(q.total_fees, q.offramp_fee, &q.total_fees))
		return MONEY_EOVERFLOW;
	if (q.total_fees >= amount)
		return MONEY_ETOOSMALL;
	net = amount - q.total_fees;

	err = money_convert(net, rate, from->exponent, to->exponent, &q.payout);
	if (err != MONEY_OK)
		return err;
	if (q.payout == 0)
		return MONEY_ETOOSMALL;
	*out = q;
	return MONEY_OK;
}

/* The builtins write the wrapped value even on overflow, hence the temporary. */
bool money_add(int64_t a, int64_t b, int64_t *out)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		return false;
	*out = r;
	return true;
}

bool money_sub(int64_t a, int64_t b, int64_t *out)
{
	int64_t r;

	if (__builtin_sub_overflow(a, b, &r))
		return false;
	*out = r;
	return true;
}

bool money_mul(int64_t a, int64_t b, int64_t *out)
{
	int64_t r;

	if (__builtin_mul_overflow(a, b, &r))
		return false;
	*out = r;
	return true;
}
