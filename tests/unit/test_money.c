/* test_money.c - unit tests for common/money: every rounding rule, with hand-computed values. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include "common/money.h"

#define SCALE MONEY_RATE_SCALE

/* Sentinel written into outputs to prove failing calls leave them untouched. */
#define UNTOUCHED ((int64_t)0x5a5a5a5a5a5a5a5aLL)

/* ---- currency table ------------------------------------------------------ */

static void test_currency_lookup(void **state)
{
	const struct currency *c;

	(void)state;
	c = money_currency("USD");
	assert_non_null(c);
	assert_string_equal(c->code, "USD");
	assert_int_equal(c->exponent, 2);
	assert_int_equal(c->per_usd, SCALE);

	c = money_currency("JPY");
	assert_non_null(c);
	assert_int_equal(c->exponent, 0);
	assert_int_equal(c->per_usd, 1512000000000LL);

	c = money_currency("USDC");
	assert_non_null(c);
	assert_int_equal(c->exponent, 6);
	assert_int_equal(c->per_usd, SCALE);

	c = money_currency("KWD");
	assert_non_null(c);
	assert_int_equal(c->exponent, 3);
	assert_int_equal(c->per_usd, 3070000000LL);

	c = money_currency("IDR");
	assert_non_null(c);
	assert_int_equal(c->exponent, 2);
	assert_int_equal(c->per_usd, 15700 * SCALE);

	/* Exact, case-sensitive match only. */
	assert_null(money_currency("usd"));
	assert_null(money_currency("Usd"));
	assert_null(money_currency("US"));
	assert_null(money_currency("USDCX"));
	assert_null(money_currency("USD "));
	assert_null(money_currency(""));
	assert_null(money_currency("XXX"));
	assert_null(money_currency(NULL));
}

/* The table's fixed-point literals must equal the decimal rates they claim. */
static void test_currency_table(void **state)
{
	static const struct {
		const char *code;
		int exponent;
		const char *per_usd;
	} want[] = {
		{"USD", 2, "1"},    {"EUR", 2, "0.92"},	 {"GBP", 2, "0.79"},  {"JPY", 0, "151.2"},
		{"CHF", 2, "0.88"}, {"CAD", 2, "1.36"},	 {"AUD", 2, "1.52"},  {"NZD", 2, "1.65"},
		{"MXN", 2, "17.1"}, {"BRL", 2, "5.05"},	 {"INR", 2, "83.3"},  {"SGD", 2, "1.34"},
		{"HKD", 2, "7.82"}, {"CNY", 2, "7.23"},	 {"KRW", 0, "1330"},  {"SEK", 2, "10.5"},
		{"NOK", 2, "10.6"}, {"DKK", 2, "6.87"},	 {"PLN", 2, "4"},     {"ZAR", 2, "18.5"},
		{"PHP", 2, "56.5"}, {"IDR", 2, "15700"}, {"KWD", 3, "0.307"}, {"BHD", 3, "0.376"},
		{"USDC", 6, "1"},
	};
	const struct currency *all;
	size_t n = 0, i, j;

	(void)state;
	all = money_currencies(&n);
	assert_non_null(all);
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct currency *c = money_currency(want[i].code);
		int64_t rate = 0;
		char buf[MONEY_RATE_STRLEN];

		assert_non_null(c);
		assert_int_equal(c->exponent, want[i].exponent);
		assert_int_equal(money_rate_parse(want[i].per_usd, &rate), MONEY_OK);
		assert_int_equal(c->per_usd, rate);
		money_rate_format(c->per_usd, buf, sizeof(buf));
		assert_string_equal(buf, want[i].per_usd);
	}
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			assert_string_not_equal(all[i].code, all[j].code);
}

/* ---- fees: ceil(amount * bps / 10000) ------------------------------------ */

static void test_fee_rounds_up(void **state)
{
	int64_t fee;

	(void)state;
	assert_int_equal(money_fee(1, 200, &fee), MONEY_OK); /* 0.02 -> 1 */
	assert_int_equal(fee, 1);
	assert_int_equal(money_fee(10000, 200, &fee), MONEY_OK); /* exactly 200 */
	assert_int_equal(fee, 200);
	assert_int_equal(money_fee(10001, 200, &fee), MONEY_OK); /* 200.02 -> 201 */
	assert_int_equal(fee, 201);
	assert_int_equal(money_fee(9999, 200, &fee), MONEY_OK); /* 199.98 -> 200 */
	assert_int_equal(fee, 200);
	assert_int_equal(money_fee(100000, 70, &fee), MONEY_OK); /* exactly 700 */
	assert_int_equal(fee, 700);
	assert_int_equal(money_fee(10001, 50, &fee), MONEY_OK); /* 50.005 -> 51 */
	assert_int_equal(fee, 51);
	assert_int_equal(money_fee(1, 1, &fee), MONEY_OK); /* 0.0001 -> 1 */
	assert_int_equal(fee, 1);
}

static void test_fee_bounds(void **state)
{
	int64_t fee;

	(void)state;
	assert_int_equal(money_fee(100000, 0, &fee), MONEY_OK);
	assert_int_equal(fee, 0);
	assert_int_equal(money_fee(1, 0, &fee), MONEY_OK);
	assert_int_equal(fee, 0);
	assert_int_equal(money_fee(12345, 10000, &fee), MONEY_OK);
	assert_int_equal(fee, 12345);
	assert_int_equal(money_fee(1, 10000, &fee), MONEY_OK);
	assert_int_equal(fee, 1);
}

static void test_fee_int64_max(void **state)
{
	int64_t fee;

	(void)state;
	/* ceil(INT64_MAX * 10000 / 10000) = INT64_MAX: the intermediate must not wrap. */
	assert_int_equal(money_fee(INT64_MAX, 10000, &fee), MONEY_OK);
	assert_int_equal(fee, INT64_MAX);
	/* 9223372036854775807 / 10000 = 922337203685477.5807 -> ...478 */
	assert_int_equal(money_fee(INT64_MAX, 1, &fee), MONEY_OK);
	assert_int_equal(fee, 922337203685478LL);
	/* INT64_MAX - 922337203685477.5807 = 9222449699651090329.4193 -> ...330 */
	assert_int_equal(money_fee(INT64_MAX, 9999, &fee), MONEY_OK);
	assert_int_equal(fee, 9222449699651090330LL);
}

static void test_fee_invalid(void **state)
{
	int64_t fee = UNTOUCHED;

	(void)state;
	assert_int_equal(money_fee(0, 200, &fee), MONEY_EINVAL);
	assert_int_equal(money_fee(-1, 200, &fee), MONEY_EINVAL);
	assert_int_equal(money_fee(INT64_MIN, 200, &fee), MONEY_EINVAL);
	assert_int_equal(money_fee(100, -1, &fee), MONEY_EINVAL);
	assert_int_equal(money_fee(100, 10001, &fee), MONEY_EINVAL);
	assert_int_equal(money_fee(100, 200, NULL), MONEY_EINVAL);
	assert_int_equal(fee, UNTOUCHED);
}

/* ---- conversion: floor(net * rate * 10^(exp_to - exp_from)) -------------- */

static void test_convert_rounds_down(void **state)
{
	int64_t p;

	(void)state;
	/* USD -> EUR at 0.92, both exponent 2. */
	assert_int_equal(money_convert(96800, 9200000000LL, 2, 2, &p), MONEY_OK);
	assert_int_equal(p, 89056); /* exact */
	assert_int_equal(money_convert(3, 9200000000LL, 2, 2, &p), MONEY_OK);
	assert_int_equal(p, 2); /* 2.76 -> 2 */
	assert_int_equal(money_convert(1, 9200000000LL, 2, 2, &p), MONEY_OK);
	assert_int_equal(p, 0); /* 0.92 -> 0, OK here; money_quote calls it too small */
	assert_int_equal(money_convert(12345, 9205000000LL, 2, 2, &p), MONEY_OK);
	assert_int_equal(p, 11363); /* 11363.5725 -> 11363 */
	/* 0.9999999999 of 1 is still 0, never rounded up. */
	assert_int_equal(money_convert(1, SCALE - 1, 2, 2, &p), MONEY_OK);
	assert_int_equal(p, 0);
}

static void test_convert_jpy_usd(void **state)
{
	int64_t p;

	(void)state;
	/* JPY (exp 0) -> USD (exp 2) at 0.0066137566: 1000 JPY = 6.6137566 USD = 661 cents. */
	assert_int_equal(money_convert(1000, 66137566, 0, 2, &p), MONEY_OK);
	assert_int_equal(p, 661);
	assert_int_equal(money_convert(151, 66137566, 0, 2, &p), MONEY_OK);
	assert_int_equal(p, 99); /* 99.867...  */
	assert_int_equal(money_convert(152, 66137566, 0, 2, &p), MONEY_OK);
	assert_int_equal(p, 100); /* 100.529... */
	assert_int_equal(money_convert(1, 66137566, 0, 2, &p), MONEY_OK);
	assert_int_equal(p, 0); /* 0.66 of a cent */

	/* USD (exp 2) -> JPY (exp 0) at 151.2: 1.00 USD = 151.2 JPY -> 151. */
	assert_int_equal(money_convert(100, 1512000000000LL, 2, 0, &p), MONEY_OK);
	assert_int_equal(p, 151);
	assert_int_equal(money_convert(1, 1512000000000LL, 2, 0, &p), MONEY_OK);
	assert_int_equal(p, 1); /* 1.512 */
	assert_int_equal(money_convert(96800, 1512000000000LL, 2, 0, &p), MONEY_OK);
	assert_int_equal(p, 146361); /* 968 * 151.2 = 146361.6 */
}

static void test_convert_usdc_kwd(void **state)
{
	int64_t p;

	(void)state;
	/* USD (2) -> USDC (6) at 1: 123.45 USD = 123450000 micro-USDC. */
	assert_int_equal(money_convert(12345, SCALE, 2, 6, &p), MONEY_OK);
	assert_int_equal(p, 123450000);
	/* USDC (6) -> USD (2): 1.999999 USDC -> 199.9999 cents -> 199. */
	assert_int_equal(money_convert(1999999, SCALE, 6, 2, &p), MONEY_OK);
	assert_int_equal(p, 199);
	assert_int_equal(money_convert(9999, SCALE, 6, 2, &p), MONEY_OK);
	assert_int_equal(p, 0);

	/* USD (2) -> KWD (3) at 0.307: 1000.00 USD = 307.000 KWD. */
	assert_int_equal(money_convert(100000, 3070000000LL, 2, 3, &p), MONEY_OK);
	assert_int_equal(p, 307000);
	/* 0.01 USD = 0.00307 KWD = 3.07 fils -> 3. */
	assert_int_equal(money_convert(1, 3070000000LL, 2, 3, &p), MONEY_OK);
	assert_int_equal(p, 3);
	/* KWD (3) -> USD (2) at 3.2573289902: 1.000 KWD = 325.73 cents -> 325. */
	assert_int_equal(money_convert(1000, 32573289902LL, 3, 2, &p), MONEY_OK);
	assert_int_equal(p, 325);
}

static void test_convert_overflow(void **state)
{
	int64_t p = UNTOUCHED;

	(void)state;
	assert_int_equal(money_convert(INT64_MAX, SCALE, 2, 2, &p), MONEY_OK);
	assert_int_equal(p, INT64_MAX);
	/* Just below 1: INT64_MAX * 0.9999999999 = 9223372035932438603.31... */
	assert_int_equal(money_convert(INT64_MAX, SCALE - 1, 2, 2, &p), MONEY_OK);
	assert_int_equal(p, 9223372035932438603LL);

	p = UNTOUCHED;
	assert_int_equal(money_convert(INT64_MAX, 2 * SCALE, 2, 2, &p), MONEY_EOVERFLOW);
	assert_int_equal(money_convert(INT64_MAX, SCALE, 0, 1, &p), MONEY_EOVERFLOW);
	assert_int_equal(money_convert(INT64_MAX / 10 + 1, SCALE, 0, 1, &p), MONEY_EOVERFLOW);
	/* net * rate * 10^18 is past 2^128: must be caught before the multiply wraps. */
	assert_int_equal(money_convert(INT64_MAX, INT64_MAX, 0, 18, &p), MONEY_EOVERFLOW);
	assert_int_equal(money_convert(1, INT64_MAX, 0, 18, &p), MONEY_EOVERFLOW);
	/* Here net * rate * 10 wraps u128 to a value whose quotient (3689348814) would look
	 * valid: only the pre-multiply check catches it. */
	assert_int_equal(money_convert(3689348814741910324LL, INT64_MAX, 0, 1, &p),
			 MONEY_EOVERFLOW);
	assert_int_equal(p, UNTOUCHED);

	/* The largest shift still works when the result is small. */
	assert_int_equal(money_convert(1, 1, 0, 18, &p), MONEY_OK);
	assert_int_equal(p, 100000000); /* 1e-10 * 1e18 */
	assert_int_equal(money_convert(INT64_MAX, INT64_MAX, 18, 0, &p), MONEY_OK);
	assert_int_equal(p, 8507059173LL); /* (2^63-1)^2 / 1e28 = 8507059173.02... */
	/* 9223372036854775807 / 10 = 922337203685477580.7 */
	assert_int_equal(money_convert(INT64_MAX, SCALE, 1, 0, &p), MONEY_OK);
	assert_int_equal(p, 922337203685477580LL);
}

static void test_convert_invalid(void **state)
{
	int64_t p = UNTOUCHED;

	(void)state;
	assert_int_equal(money_convert(0, SCALE, 2, 2, &p), MONEY_EINVAL);
	assert_int_equal(money_convert(-1, SCALE, 2, 2, &p), MONEY_EINVAL);
	assert_int_equal(money_convert(1, 0, 2, 2, &p), MONEY_EINVAL);
	assert_int_equal(money_convert(1, -SCALE, 2, 2, &p), MONEY_EINVAL);
	assert_int_equal(money_convert(1, SCALE, -1, 2, &p), MONEY_EINVAL);
	assert_int_equal(money_convert(1, SCALE, 2, -1, &p), MONEY_EINVAL);
	assert_int_equal(money_convert(1, SCALE, 19, 2, &p), MONEY_EINVAL);
	assert_int_equal(money_convert(1, SCALE, 2, 19, &p), MONEY_EINVAL);
	assert_int_equal(money_convert(1, SCALE, 2, 2, NULL), MONEY_EINVAL);
	assert_int_equal(p, UNTOUCHED);
}

/* ---- cross rates: to_per_usd / from_per_usd, floor to 10 dp --------------- */

static void test_cross_rate(void **state)
{
	int64_t r;

	(void)state;
	/* JPY -> USD: 1 / 151.2 = 0.00661375661375... -> 0.0066137566 */
	assert_int_equal(money_cross_rate(1512000000000LL, SCALE, &r), MONEY_OK);
	assert_int_equal(r, 66137566);
	/* USD -> JPY: 151.2 / 1 */
	assert_int_equal(money_cross_rate(SCALE, 1512000000000LL, &r), MONEY_OK);
	assert_int_equal(r, 1512000000000LL);
	/* EUR -> GBP: 0.79 / 0.92 = 0.85869565217... -> 0.8586956521 */
	assert_int_equal(money_cross_rate(9200000000LL, 7900000000LL, &r), MONEY_OK);
	assert_int_equal(r, 8586956521LL);
	/* KWD -> USD: 1 / 0.307 = 3.25732899022... -> 3.2573289902 */
	assert_int_equal(money_cross_rate(3070000000LL, SCALE, &r), MONEY_OK);
	assert_int_equal(r, 32573289902LL);
	/* Same currency: exactly 1. */
	assert_int_equal(money_cross_rate(9200000000LL, 9200000000LL, &r), MONEY_OK);
	assert_int_equal(r, SCALE);
	/* USD -> IDR */
	assert_int_equal(money_cross_rate(SCALE, 15700 * SCALE, &r), MONEY_OK);
	assert_int_equal(r, 15700 * SCALE);
	/* Smallest non-zero result: 1e-10. */
	assert_int_equal(money_cross_rate(SCALE * 10000, SCALE / 1000000, &r), MONEY_OK);
	assert_int_equal(r, 1);
}

static void test_cross_rate_errors(void **state)
{
	int64_t r = UNTOUCHED;

	(void)state;
	assert_int_equal(money_cross_rate(0, SCALE, &r), MONEY_EINVAL);
	assert_int_equal(money_cross_rate(SCALE, 0, &r), MONEY_EINVAL);
	assert_int_equal(money_cross_rate(-SCALE, SCALE, &r), MONEY_EINVAL);
	assert_int_equal(money_cross_rate(SCALE, -SCALE, &r), MONEY_EINVAL);
	assert_int_equal(money_cross_rate(SCALE, SCALE, NULL), MONEY_EINVAL);
	/* INT64_MAX / 1e-10 does not fit. */
	assert_int_equal(money_cross_rate(1, INT64_MAX, &r), MONEY_EOVERFLOW);
	assert_int_equal(money_cross_rate(1, SCALE, &r), MONEY_EOVERFLOW);
	/* 1e-10 / 922337203.68 rounds down to zero. */
	assert_int_equal(money_cross_rate(INT64_MAX, 1, &r), MONEY_ETOOSMALL);
	assert_int_equal(r, UNTOUCHED);
	/* The largest exact result. */
	assert_int_equal(money_cross_rate(SCALE, INT64_MAX, &r), MONEY_OK);
	assert_int_equal(r, INT64_MAX);
}

/* ---- full quotes ---------------------------------------------------------- */

static const struct money_fees_bps std_bps = {.platform = 200, .onramp = 70, .offramp = 50};

static void test_quote_usd_eur(void **state)
{
	struct money_quote q;

	(void)state;
	/* 1000.00 USD -> EUR at 0.92, fees 2% / 0.7% / 0.5%. */
	assert_int_equal(money_quote(100000, 9200000000LL, money_currency("USD"),
				     money_currency("EUR"), &std_bps, &q),
			 MONEY_OK);
	assert_int_equal(q.platform_fee, 2000);
	assert_int_equal(q.onramp_fee, 700);
	assert_int_equal(q.offramp_fee, 500);
	assert_int_equal(q.total_fees, 3200);
	assert_int_equal(q.payout, 89056); /* floor(96800 * 0.92) */
}

static void test_quote_rounding(void **state)
{
	struct money_quote q;

	(void)state;
	/* 100.01 USD: fees 200.02 -> 201, 70.007 -> 71, 50.005 -> 51; net 9678;
	 * 9678 * 0.92 = 8903.76 -> 8903. */
	assert_int_equal(money_quote(10001, 9200000000LL, money_currency("USD"),
				     money_currency("EUR"), &std_bps, &q),
			 MONEY_OK);
	assert_int_equal(q.platform_fee, 201);
	assert_int_equal(q.onramp_fee, 71);
	assert_int_equal(q.offramp_fee, 51);
	assert_int_equal(q.total_fees, 323);
	assert_int_equal(q.payout, 8903);
}

static void test_quote_jpy_usd(void **state)
{
	const struct currency *jpy = money_currency("JPY"), *usd = money_currency("USD");
	struct money_fees_bps zero = {0, 0, 0};
	struct money_quote q;
	int64_t rate;

	(void)state;
	assert_int_equal(money_cross_rate(jpy->per_usd, usd->per_usd, &rate), MONEY_OK);
	assert_int_equal(rate, 66137566);
	/* 10000 JPY: fees 200 + 70 + 50 = 320; 9680 * 0.0066137566 = 64.0211... USD -> 6402. */
	assert_int_equal(money_quote(10000, rate, jpy, usd, &std_bps, &q), MONEY_OK);
	assert_int_equal(q.platform_fee, 200);
	assert_int_equal(q.onramp_fee, 70);
	assert_int_equal(q.offramp_fee, 50);
	assert_int_equal(q.total_fees, 320);
	assert_int_equal(q.payout, 6402);

	/* 1.00 USD -> JPY, no fees: 151.2 -> 151 yen. */
	assert_int_equal(money_quote(100, 1512000000000LL, usd, jpy, &zero, &q), MONEY_OK);
	assert_int_equal(q.total_fees, 0);
	assert_int_equal(q.payout, 151);
}

static void test_quote_usdc_kwd(void **state)
{
	const struct currency *usd = money_currency("USD");
	struct money_quote q;

	(void)state;
	/* 1000.00 USD -> USDC: net 968.00 -> 968000000 micro-USDC. */
	assert_int_equal(money_quote(100000, SCALE, usd, money_currency("USDC"), &std_bps, &q),
			 MONEY_OK);
	assert_int_equal(q.total_fees, 3200);
	assert_int_equal(q.payout, 968000000);
	/* 1000.00 USD -> KWD at 0.307: 968 * 0.307 = 297.176 KWD = 297176 fils. */
	assert_int_equal(
		money_quote(100000, 3070000000LL, usd, money_currency("KWD"), &std_bps, &q),
		MONEY_OK);
	assert_int_equal(q.payout, 297176);
}

static void test_quote_too_small(void **state)
{
	const struct currency *usd = money_currency("USD"), *eur = money_currency("EUR");
	struct money_fees_bps zero = {0, 0, 0}, all = {10000, 0, 0};
	struct money_quote q;

	(void)state;
	memset(&q, 0x5a, sizeof(q));
	/* 0.01 USD: each fee rounds up to 1 cent, 3 >= 1. */
	assert_int_equal(money_quote(1, 9200000000LL, usd, eur, &std_bps, &q), MONEY_ETOOSMALL);
	/* 0.03 USD: fees 1+1+1 = 3, equal to the amount. */
	assert_int_equal(money_quote(3, 9200000000LL, usd, eur, &std_bps, &q), MONEY_ETOOSMALL);
	/* 0.04 USD: net 1 cent, 0.92 cent -> payout 0. */
	assert_int_equal(money_quote(4, 9200000000LL, usd, eur, &std_bps, &q), MONEY_ETOOSMALL);
	/* No fees but 1 cent * 0.92 still rounds to 0. */
	assert_int_equal(money_quote(1, 9200000000LL, usd, eur, &zero, &q), MONEY_ETOOSMALL);
	/* A 100% fee eats everything. */
	assert_int_equal(money_quote(100000, 9200000000LL, usd, eur, &all, &q), MONEY_ETOOSMALL);
	/* 1 JPY -> USD at 0.0066137566 = 0.66 cent. */
	assert_int_equal(money_quote(1, 66137566, money_currency("JPY"), usd, &zero, &q),
			 MONEY_ETOOSMALL);
	assert_int_equal(q.payout, (int64_t)0x5a5a5a5a5a5a5a5aLL);

	/* 0.02 USD without fees: 1.84 -> 1, the smallest payout that passes. */
	assert_int_equal(money_quote(2, 9200000000LL, usd, eur, &zero, &q), MONEY_OK);
	assert_int_equal(q.payout, 1);
}

static void test_quote_int64_max(void **state)
{
	const struct currency *usd = money_currency("USD");
	struct money_fees_bps heavy = {10000, 10000, 0};
	struct money_quote q;
	int64_t rate;

	(void)state;
	memset(&q, 0x5a, sizeof(q));
	/* USD -> IDR multiplies by 15700: must be EOVERFLOW, never a wrapped payout. */
	assert_int_equal(
		money_quote(INT64_MAX, 15700 * SCALE, usd, money_currency("IDR"), &std_bps, &q),
		MONEY_EOVERFLOW);
	/* Also with the real cross rate from the table. */
	assert_int_equal(money_cross_rate(usd->per_usd, money_currency("IDR")->per_usd, &rate),
			 MONEY_OK);
	assert_int_equal(money_quote(INT64_MAX, rate, usd, money_currency("IDR"), &std_bps, &q),
			 MONEY_EOVERFLOW);
	/* USD -> USDC scales by 10^4. */
	assert_int_equal(money_quote(INT64_MAX, SCALE, usd, money_currency("USDC"), &std_bps, &q),
			 MONEY_EOVERFLOW);
	/* Two 100% fees sum past int64. */
	assert_int_equal(money_quote(INT64_MAX, SCALE, usd, usd, &heavy, &q), MONEY_EOVERFLOW);
	assert_int_equal(q.payout, (int64_t)0x5a5a5a5a5a5a5a5aLL);

	/* USD -> EUR shrinks, so the largest amount still prices exactly:
	 * fees ceil(M*.02) = 184467440737095517, ceil(M*.007) = 64563604257983431,
	 * ceil(M*.005) = 46116860184273880; net 8928224131675422979;
	 * * 0.92 = 8213966201141389140.68 -> ...140. */
	assert_int_equal(
		money_quote(INT64_MAX, 9200000000LL, usd, money_currency("EUR"), &std_bps, &q),
		MONEY_OK);
	assert_int_equal(q.platform_fee, 184467440737095517LL);
	assert_int_equal(q.onramp_fee, 64563604257983431LL);
	assert_int_equal(q.offramp_fee, 46116860184273880LL);
	assert_int_equal(q.total_fees, 295147905179352828LL);
	assert_int_equal(q.payout, 8213966201141389140LL);
}

static void test_quote_invalid(void **state)
{
	const struct currency *usd = money_currency("USD"), *eur = money_currency("EUR");
	struct money_fees_bps neg = {-1, 0, 0}, big = {0, 0, 10001};
	struct money_quote q;

	(void)state;
	assert_int_equal(money_quote(0, SCALE, usd, eur, &std_bps, &q), MONEY_EINVAL);
	assert_int_equal(money_quote(-100, SCALE, usd, eur, &std_bps, &q), MONEY_EINVAL);
	assert_int_equal(money_quote(INT64_MIN, SCALE, usd, eur, &std_bps, &q), MONEY_EINVAL);
	assert_int_equal(money_quote(100, 0, usd, eur, &std_bps, &q), MONEY_EINVAL);
	assert_int_equal(money_quote(100, -1, usd, eur, &std_bps, &q), MONEY_EINVAL);
	assert_int_equal(money_quote(100, SCALE, usd, eur, &neg, &q), MONEY_EINVAL);
	assert_int_equal(money_quote(100, SCALE, usd, eur, &big, &q), MONEY_EINVAL);
	assert_int_equal(money_quote(100, SCALE, NULL, eur, &std_bps, &q), MONEY_EINVAL);
	assert_int_equal(money_quote(100, SCALE, usd, NULL, &std_bps, &q), MONEY_EINVAL);
	assert_int_equal(money_quote(100, SCALE, usd, eur, NULL, &q), MONEY_EINVAL);
	assert_int_equal(money_quote(100, SCALE, usd, eur, &std_bps, NULL), MONEY_EINVAL);
}

/* ---- overflow-checked helpers --------------------------------------------- */

static void test_add_sub(void **state)
{
	int64_t r = UNTOUCHED;

	(void)state;
	assert_true(money_add(INT64_MAX, 0, &r));
	assert_int_equal(r, INT64_MAX);
	assert_true(money_add(INT64_MIN, INT64_MAX, &r));
	assert_int_equal(r, -1);
	assert_true(money_add(INT64_MAX - 1, 1, &r));
	assert_int_equal(r, INT64_MAX);
	r = UNTOUCHED;
	assert_false(money_add(INT64_MAX, 1, &r));
	assert_false(money_add(INT64_MIN, -1, &r));
	assert_false(money_add(INT64_MAX, INT64_MAX, &r));
	assert_int_equal(r, UNTOUCHED);

	assert_true(money_sub(INT64_MAX, INT64_MAX, &r));
	assert_int_equal(r, 0);
	assert_true(money_sub(-1, INT64_MIN, &r));
	assert_int_equal(r, INT64_MAX);
	assert_true(money_sub(INT64_MIN + 1, 1, &r));
	assert_int_equal(r, INT64_MIN);
	r = UNTOUCHED;
	assert_false(money_sub(INT64_MIN, 1, &r));
	assert_false(money_sub(0, INT64_MIN, &r));
	assert_false(money_sub(INT64_MAX, -1, &r));
	assert_int_equal(r, UNTOUCHED);
}

static void test_mul(void **state)
{
	int64_t r = UNTOUCHED;

	(void)state;
	assert_true(money_mul(INT64_MAX, 1, &r));
	assert_int_equal(r, INT64_MAX);
	assert_true(money_mul(-1, INT64_MAX, &r));
	assert_int_equal(r, -INT64_MAX);
	assert_true(money_mul(INT64_MIN, 1, &r));
	assert_int_equal(r, INT64_MIN);
	assert_true(money_mul(0, INT64_MIN, &r));
	assert_int_equal(r, 0);
	/* floor(sqrt(INT64_MAX)) = 3037000499 */
	assert_true(money_mul(3037000499LL, 3037000499LL, &r));
	assert_int_equal(r, 9223372030926249001LL);
	r = UNTOUCHED;
	assert_false(money_mul(3037000500LL, 3037000500LL, &r));
	assert_false(money_mul(INT64_MAX, 2, &r));
	assert_false(money_mul(INT64_MIN, -1, &r));
	assert_false(money_mul(-1, INT64_MIN, &r));
	assert_false(money_mul(INT64_MIN, INT64_MIN, &r));
	assert_int_equal(r, UNTOUCHED);
}

/* ---- rate parsing and formatting ------------------------------------------ */

static void test_rate_parse_ok(void **state)
{
	static const struct {
		const char *s;
		int64_t want;
	} cases[] = {
		{"1", 10000000000LL},
		{"0.919", 9190000000LL},
		{"151.2", 1512000000000LL},
		{"0.0066137566", 66137566LL},
		{"0.0000000001", 1LL},
		{"1.0", 10000000000LL},
		{"15700", 157000000000000LL},
		{"007.5", 75000000000LL},
		/* Past 10 decimals: truncated, never rounded. */
		{"0.00661375661", 66137566LL},
		{"0.006613756699999", 66137566LL},
		{"0.99999999999", 9999999999LL},
		{"1.00000000009", 10000000000LL},
		/* The int64 edge. */
		{"922337203.6854775807", INT64_MAX},
		{"922337203.68547758079", INT64_MAX},
		{"922337203", 922337203LL * 10000000000LL},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t r = 0;

		assert_int_equal(money_rate_parse(cases[i].s, &r), MONEY_OK);
		assert_int_equal(r, cases[i].want);
	}
}

static void test_rate_parse_reject(void **state)
{
	static const char *const bad[] = {
		"",	 "-1",	"+1",	"1e3",	"1E3",	"0",	"0.0",		 "0.0000000000",
		"abc",	 "1.",	".5",	".",	" 1",	"1 ",	"1\n",		 "\t1",
		"1.2.3", "1,5", "0x10", "1..2", "-0.5", "1.5x", "0.00000000001", "inf",
		"nan",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t r = UNTOUCHED;

		assert_int_equal(money_rate_parse(bad[i], &r), MONEY_EINVAL);
		assert_int_equal(r, UNTOUCHED);
	}
	assert_int_equal(money_rate_parse(NULL, &(int64_t){0}), MONEY_EINVAL);
	assert_int_equal(money_rate_parse("1", NULL), MONEY_EINVAL);
}

static void test_rate_parse_overflow(void **state)
{
	static const char *const big[] = {
		"922337203.6854775808",
		"922337204",
		"922337203.9",
		"9223372036854775807",
		"99999999999999999999999999999999",
		"100000000000000000000.5",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		int64_t r = UNTOUCHED;

		assert_int_equal(money_rate_parse(big[i], &r), MONEY_EOVERFLOW);
		assert_int_equal(r, UNTOUCHED);
	}
}

static void test_rate_format(void **state)
{
	static const struct {
		int64_t rate;
		const char *want;
	} cases[] = {
		{10000000000LL, "1"},
		{9190000000LL, "0.919"},
		{1512000000000LL, "151.2"},
		{66137566LL, "0.0066137566"},
		{1LL, "0.0000000001"},
		{1000000000000LL, "100"}, /* integer zeros stay */
		{157000000000000LL, "15700"},
		{10000000001LL, "1.0000000001"},
		{INT64_MAX, "922337203.6854775807"},
		{0, "0"},
		{-15000000000LL, "-1.5"},
		{INT64_MIN, "-922337203.6854775808"},
	};
	char buf[MONEY_RATE_STRLEN];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		money_rate_format(cases[i].rate, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].want);
	}
	/* A short buffer truncates like snprintf and stays terminated. */
	money_rate_format(1512000000000LL, buf, 4);
	assert_string_equal(buf, "151");
	money_rate_format(1512000000000LL, buf, 1);
	assert_string_equal(buf, "");
}

static void test_rate_round_trip(void **state)
{
	static const char *const strs[] = {
		"1",	 "0.919", "151.2",	  "0.0066137566", "0.0000000001",
		"15700", "1330",  "0.8586956521", "3.2573289902", "922337203.6854775807",
		"100",	 "10.05",
	};
	static const int64_t rates[] = {
		1,
		9,
		10,
		66137566,
		9190000000LL,
		SCALE,
		SCALE + 1,
		1512000000000LL,
		INT64_MAX,
		INT64_MAX - 1,
		1234567890123456789LL,
	};
	char buf[MONEY_RATE_STRLEN];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		int64_t r;

		assert_int_equal(money_rate_parse(strs[i], &r), MONEY_OK);
		money_rate_format(r, buf, sizeof(buf));
		assert_string_equal(buf, strs[i]);
	}
	for (i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		int64_t r;

		money_rate_format(rates[i], buf, sizeof(buf));
		assert_int_equal(money_rate_parse(buf, &r), MONEY_OK);
		assert_int_equal(r, rates[i]);
	}
}

/* ---- fixed point and integers from text ---------------------------------- */

static void test_fixed_format(void **state)
{
	(void)state;
	char b[48];
	money_fixed_format(3120550000LL, 6, b, sizeof(b));
	assert_string_equal(b, "3120.55");
	money_fixed_format(25000000000LL, 9, b, sizeof(b));
	assert_string_equal(b, "25");
	money_fixed_format(1, 9, b, sizeof(b));
	assert_string_equal(b, "0.000000001");
	money_fixed_format(0, 6, b, sizeof(b));
	assert_string_equal(b, "0");
	money_fixed_format(10000000, 0, b, sizeof(b));
	assert_string_equal(b, "10000000");
	money_fixed_format(-1500000, 6, b, sizeof(b));
	assert_string_equal(b, "-1.5");
	money_fixed_format(INT64_MIN, 0, b, sizeof(b));
	assert_string_equal(b, "-9223372036854775808");
	money_fixed_format(123456, 6, b, 4); /* truncated, terminated */
	assert_string_equal(b, "0.1");
}

static void test_fixed_parse(void **state)
{
	(void)state;
	int64_t v = UNTOUCHED;
	assert_true(money_fixed_parse("3120.55", 6, &v));
	assert_int_equal(v, 3120550000LL);
	assert_true(money_fixed_parse("25", 9, &v));
	assert_int_equal(v, 25000000000LL);
	assert_true(money_fixed_parse("0", 9, &v));
	assert_int_equal(v, 0);
	assert_true(money_fixed_parse("0.1234567", 6, &v)); /* truncated */
	assert_int_equal(v, 123456);
	assert_true(money_fixed_parse("10000000", 0, &v));
	assert_int_equal(v, 10000000);
	v = UNTOUCHED;
	assert_false(money_fixed_parse("", 6, &v));
	assert_false(money_fixed_parse("-1", 6, &v));
	assert_false(money_fixed_parse("0.0", 6, &v));
	assert_false(money_fixed_parse("1e3", 6, &v));
	assert_false(money_fixed_parse("1.5x", 6, &v));
	assert_false(money_fixed_parse("99999999999", 6, &v)); /* past the rate range */
	assert_false(money_fixed_parse("1", 11, &v));
	assert_false(money_fixed_parse(NULL, 6, &v));
	assert_int_equal(v, UNTOUCHED);
}

static void test_fixed_round_trip(void **state)
{
	(void)state;
	static const int64_t vals[] = {1, 9, 10, 123456789, 3120550000LL, 50000000000LL};
	char b[48];
	for (int scale = 0; scale <= 10; scale++)
		for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
			int64_t back = 0, p = 1;
			for (int k = 0; k < scale; k++)
				p *= 10;
			if (vals[i] / p > 900000000) /* past money_rate_parse's whole part */
				continue;
			money_fixed_format(vals[i], scale, b, sizeof(b));
			assert_true(money_fixed_parse(b, scale, &back));
			assert_int_equal(back, vals[i]);
		}
}

static void test_count_parse(void **state)
{
	(void)state;
	int64_t v = UNTOUCHED;
	assert_true(money_count_parse("1700000000000", &v));
	assert_int_equal(v, 1700000000000LL);
	assert_true(money_count_parse("9223372036854775807", &v));
	assert_int_equal(v, INT64_MAX);
	v = UNTOUCHED;
	assert_false(money_count_parse("9223372036854775808", &v));
	assert_false(money_count_parse("0", &v));
	assert_false(money_count_parse("-5", &v));
	assert_false(money_count_parse("+5", &v));
	assert_false(money_count_parse("5 ", &v));
	assert_false(money_count_parse("1.5", &v));
	assert_false(money_count_parse("", &v));
	assert_false(money_count_parse(NULL, &v));
	assert_int_equal(v, UNTOUCHED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_currency_lookup),
		cmocka_unit_test(test_currency_table),
		cmocka_unit_test(test_fee_rounds_up),
		cmocka_unit_test(test_fee_bounds),
		cmocka_unit_test(test_fee_int64_max),
		cmocka_unit_test(test_fee_invalid),
		cmocka_unit_test(test_convert_rounds_down),
		cmocka_unit_test(test_convert_jpy_usd),
		cmocka_unit_test(test_convert_usdc_kwd),
		cmocka_unit_test(test_convert_overflow),
		cmocka_unit_test(test_convert_invalid),
		cmocka_unit_test(test_cross_rate),
		cmocka_unit_test(test_cross_rate_errors),
		cmocka_unit_test(test_quote_usd_eur),
		cmocka_unit_test(test_quote_rounding),
		cmocka_unit_test(test_quote_jpy_usd),
		cmocka_unit_test(test_quote_usdc_kwd),
		cmocka_unit_test(test_quote_too_small),
		cmocka_unit_test(test_quote_int64_max),
		cmocka_unit_test(test_quote_invalid),
		cmocka_unit_test(test_add_sub),
		cmocka_unit_test(test_mul),
		cmocka_unit_test(test_rate_parse_ok),
		cmocka_unit_test(test_rate_parse_reject),
		cmocka_unit_test(test_rate_parse_overflow),
		cmocka_unit_test(test_rate_format),
		cmocka_unit_test(test_rate_round_trip),
		cmocka_unit_test(test_fixed_format),
		cmocka_unit_test(test_fixed_parse),
		cmocka_unit_test(test_fixed_round_trip),
		cmocka_unit_test(test_count_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
