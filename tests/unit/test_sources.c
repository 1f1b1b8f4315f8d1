/* test_sources.c - unit tests for the market-data parsers: exact fixed-point readings, every
 * rejection. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/money.h"
#include "sources.h"

#define N(a)	  (sizeof(a) / sizeof((a)[0]))
#define SCALE	  MONEY_RATE_SCALE
#define SENTINEL  0x5a
#define BAD	  INT64_MIN /* "expect rejection" in tables of expected values */
#define GWEI(x)	  ((int64_t)(x)*1000000000LL)
#define MICROS(x) ((int64_t)(x)*1000000LL)

/* The examples of EXTERNAL_APIS.md, verbatim. */
static const char fx_example[] =
	"{\"result\":\"success\",\"base_code\":\"USD\",\"time_last_update_unix\":1585872397,\n"
	" \"time_next_update_unix\":1585959987,\"rates\":{\"USD\":1,\"EUR\":0.919,\"GBP\":0.806,"
	"\"JPY\":151.2}}";
static const char prices_example[] =
	"{\"ethereum\":{\"usd\":3120.55,\"last_updated_at\":1711356300},\n"
	" \"solana\":{\"usd\":142.1,\"last_updated_at\":1711356290},\n"
	" \"usd-coin\":{\"usd\":0.9998,\"last_updated_at\":1711356300}}";
static const char eth_gas_example[] =
	"{\"code\":200,\"data\":{\"rapid\":69000000000,\"fast\":38200000000,\"standard\":"
	"17122906179,"
	"\n \"slow\":15280244053,\"timestamp\":1654610878715,\"priceUSD\":1760.29}}";
static const char blockscout_flat[] =
	"{\"gas_prices\":{\"slow\":0.1,\"average\":0.57,\"fast\":1.05},\"gas_price_updated_at\":"
	"\"2025-03-10T14:47:27.175157Z\",\n \"coin_price\":\"4.83\",\"average_block_time\":2364}";
static const char blockscout_objects[] =
	"{\"gas_prices\":{\"slow\":{\"price\":0.1,\"fiat_price\":\"0.01\",\"time\":15000,"
	"\"base_fee\":0.09,\"priority_fee\":0.01},\n \"average\":{\"price\":0.57,\"fiat_price\":"
	"\"0.02\",\"time\":12000,\"base_fee\":0.5,\"priority_fee\":0.07},\n \"fast\":null},"
	"\"coin_price\":\"0.52\"}";
static const char solana_example[] = "{\"jsonrpc\":\"2.0\",\"result\":[{\"slot\":348125,"
				     "\"prioritizationFee\":0},{\"slot\":348126,"
				     "\"prioritizationFee\":1000}],\"id\":1}";
static const char status_example[] =
	"{\"page\":{\"id\":\"y2j98763l56x\",\"name\":\"Circle\",\"updated_at\":\"2025-03-11T00:52:"
	"20-"
	"07:00\"},\n \"status\":{\"indicator\":\"none\",\"description\":\"All Systems "
	"Operational\"}}";

/* Index of a currency in money_currencies(), for src_fx.per_usd. */
static size_t cur_index(const char *code)
{
	const struct currency *all;
	size_t n = 0, i;

	all = money_currencies(&n);
	for (i = 0; i < n; i++)
		if (strcmp(all[i].code, code) == 0)
			return i;
	fail_msg("unknown currency %s", code);
	return 0;
}

/* ---- src_decimal --------------------------------------------------------- */

struct dec_case {
	const char *json; /* JSON text of the value */
	int scale;
	int64_t want; /* BAD = rejected */
};

static const struct dec_case dec_cases[] = {
	/* integers are exact */
	{"0", 0, 0},
	{"42", 0, 42},
	{"42", 10, 420000000000LL},
	{"17122906179", 0, 17122906179LL},
	{"9223372036854775807", 0, INT64_MAX},
	{"9223372036854775807", 1, BAD},
	{"922337203", 10, 9223372030000000000LL},
	{"922337204", 10, BAD},
	{"-1", 0, BAD},
	{"-9223372036854775808", 0, BAD},
	/* reals: formatted with %.15g, parsed as decimal text */
	{"0.919", 10, 9190000000LL},
	{"151.2", 10, 1512000000000LL},
	{"3120.55", 6, 3120550000LL},
	{"0.9998", 6, 999800},
	{"0.57", 9, 570000000},
	{"1.05", 9, 1050000000},
	{"0.1", 1, 1},
	{"0.1", 0, 0},
	{"2.0", 0, 2},
	{"1.7e-05", 10, 170000},
	{"1.7e-05", 5, 1},
	{"1.7e-05", 4, 0},
	{"0.00017", 10, 1700000},
	{"2e+20", 0, BAD},
	{"1e+20", 10, BAD},
	{"1e20", 0, BAD},
	{"1e+18", 0, 1000000000000000000LL},
	{"1.5E3", 2, 150000},
	{"123456.789", 2, 12345678}, /* truncated, not rounded */
	{"0.999999999999", 3, 999},
	{"1e308", 0, BAD},
	{"1e-300", 18, 0},
	{"5e-324", 18, 0},
	{"-0.0", 4, 0}, /* negative zero is zero */
	{"-0.5", 4, BAD},
	{"-1e-300", 4, BAD},
	/* decimal strings: plain grammar only */
	{"\"4.83\"", 6, 4830000},
	{"\"0.01\"", 9, 10000000},
	{"\"4.8399\"", 2, 483},
	{"\"0\"", 3, 0},
	{"\"007\"", 0, 7},
	{"\"0.00000000000000000000001\"", 18, 0},
	{"\"99999999999999999999\"", 0, BAD},
	{"\"\"", 0, BAD},
	{"\"abc\"", 0, BAD},
	{"\"-1\"", 0, BAD},
	{"\"+1\"", 0, BAD},
	{"\"1e5\"", 0, BAD}, /* exponents are for reals only */
	{"\" 1\"", 0, BAD},
	{"\"1 \"", 0, BAD},
	{"\"1.\"", 0, BAD},
	{"\".5\"", 0, BAD},
	{"\"1.2.3\"", 0, BAD},
	{"\"0x10\"", 0, BAD},
	{"\"NaN\"", 0, BAD},
	{"\"Infinity\"", 0, BAD},
	/* other types */
	{"true", 0, BAD},
	{"false", 0, BAD},
	{"null", 0, BAD},
	{"{}", 0, BAD},
	{"[1]", 0, BAD},
	/* scale out of range */
	{"1", -1, BAD},
	{"1", 19, BAD},
	{"1", 18, 1000000000000000000LL},
};

static void test_decimal(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(dec_cases); i++) {
		const struct dec_case *c = &dec_cases[i];
		int64_t got = SENTINEL;
		json_error_t je;
		json_t *v = json_loads(c->json, JSON_DECODE_ANY, &je);
		int rc;

		if (v == NULL)
			fail_msg("case %zu (%s) does not parse: %s", i, c->json, je.text);
		rc = src_decimal(v, c->scale, &got);
		json_decref(v);
		if (c->want == BAD) {
			if (rc != -1)
				fail_msg("case %zu (%s, %d) accepted as %lld", i, c->json, c->scale,
					 (long long)got);
			assert_int_equal(got, SENTINEL);
			continue;
		}
		if (rc != 0)
			fail_msg("case %zu (%s, %d) rejected", i, c->json, c->scale);
		if (got != c->want)
			fail_msg("case %zu (%s, %d): got %lld want %lld", i, c->json, c->scale,
				 (long long)got, (long long)c->want);
	}
}

/* Values jansson's parser cannot produce, built directly. */
static void test_decimal_built(void **state)
{
	int64_t got = SENTINEL;
	json_t *v;

	(void)state;
	assert_int_equal(src_decimal(NULL, 0, &got), -1);
	assert_int_equal(got, SENTINEL);

	v = json_stringn("1\0002", 3); /* embedded NUL */
	assert_non_null(v);
	assert_int_equal(src_decimal(v, 0, &got), -1);
	assert_int_equal(got, SENTINEL);
	assert_int_equal(src_decimal(v, 0, NULL), -1);
	json_decref(v);

	v = json_real(0.57);
	assert_non_null(v);
	assert_int_equal(src_decimal(v, 9, &got), 0);
	assert_int_equal(got, 570000000);
	json_decref(v);

	v = json_real(1.7976931348623157e308);
	assert_non_null(v);
	got = SENTINEL;
	assert_int_equal(src_decimal(v, 0, &got), -1);
	assert_int_equal(got, SENTINEL);
	json_decref(v);
}

/* ---- generic rejection table: one body, every parser --------------------- */

enum parser { P_FX, P_PRICES, P_ETH, P_BLOCKSCOUT, P_SOLANA, P_STATUS };

/* The readings a parser may fill, all behind one sentinel. */
struct outs {
	struct src_fx fx;
	struct src_prices prices;
	struct src_gas gas;
	struct src_status status;
};

/* Runs parser p on body with last = NULL unless given; returns rc. */
static int run(enum parser p, const char *body, size_t len, const void *last, struct outs *o,
	       char *err, size_t errlen)
{
	switch (p) {
	case P_FX:
		return src_parse_fx(body, len, last, &o->fx, err, errlen);
	case P_PRICES:
		return src_parse_prices(body, len, last, &o->prices, err, errlen);
	case P_ETH:
		return src_parse_eth_gas(body, len, last, &o->gas, err, errlen);
	case P_BLOCKSCOUT:
		return src_parse_blockscout(body, len, last, &o->gas, err, errlen);
	case P_SOLANA:
		return src_parse_solana(body, len, last, &o->gas, err, errlen);
	case P_STATUS:
		return src_parse_status(body, len, &o->status, err, errlen);
	}
	return 0;
}

/* Asserts p rejects body with a reason containing `want` (NULL: any reason)
 * and leaves its output exactly as the sentinel fill left it. */
static void expect_reject(enum parser p, const char *body, size_t len, const void *last,
			  const char *want)
{
	struct outs o, before;
	char err[160];
	int rc;

	memset(&o, SENTINEL, sizeof(o));
	memcpy(&before, &o, sizeof(o));
	memset(err, 0, sizeof(err));
	rc = run(p, body, len, last, &o, err, sizeof(err));
	if (rc != -1)
		fail_msg("parser %d accepted %.*s", (int)p, (int)(len > 200 ? 200 : len),
			 body ? body : "(null)");
	if (err[0] == '\0')
		fail_msg("parser %d: no reason for %.*s", (int)p, (int)(len > 200 ? 200 : len),
			 body ? body : "(null)");
	if (want != NULL && strstr(err, want) == NULL)
		fail_msg("parser %d: reason \"%s\" lacks \"%s\"", (int)p, err, want);
	assert_memory_equal(&o, &before, sizeof(o));
}

static void expect_reject_s(enum parser p, const char *body, const void *last, const char *want)
{
	expect_reject(p, body, strlen(body), last, want);
}

/* Bodies no parser may accept. */
static void test_garbage(void **state)
{
	static const struct {
		const char *body;
		size_t len; /* 0 = strlen */
		const char *want;
	} cases[] = {
		{"", 0, "empty body"},
		{"{", 0, "malformed JSON"},
		{"{\"a\":}", 0, "malformed JSON"},
		{"[]", 0, "not a JSON object"},
		{"[{\"result\":\"success\"}]", 0, "not a JSON object"},
		{"null", 0, NULL},
		{"123", 0, NULL},
		{"\"x\"", 0, NULL},
		{"{}", 0, NULL},
		{"{\"a\":1,\"a\":2}", 0, "malformed JSON"},
		{"{\"a\":NaN}", 0, "malformed JSON"},
		{"{\"a\":1e400}", 0, "malformed JSON"},
		{"{\"a\":99999999999999999999}", 0, "malformed JSON"},
		{"{\"a\":\"\xff\"}", 0, "malformed JSON"},
		{"{} trailing", 0, "malformed JSON"},
		{"{}\0{}", 5, "malformed JSON"},
		{"<html><body>502 Bad Gateway</body></html>", 0, "malformed JSON"},
	};
	enum parser p;
	size_t i;
	char *deep;

	(void)state;
	for (p = P_FX; p <= P_STATUS; p++) {
		for (i = 0; i < N(cases); i++)
			expect_reject(p, cases[i].body,
				      cases[i].len ? cases[i].len : strlen(cases[i].body), NULL,
				      cases[i].want);
		expect_reject(p, NULL, 0, NULL, "empty body");
		expect_reject(p, "{}", 0, NULL, "empty body");
	}

	/* Deep nesting must neither recurse without bound nor be accepted. */
	deep = malloc(200001);
	assert_non_null(deep);
	memset(deep, '[', 100000);
	memset(deep + 100000, ']', 100000);
	deep[200000] = '\0';
	for (p = P_FX; p <= P_STATUS; p++)
		expect_reject(p, deep, 200000, NULL, NULL);
	free(deep);
}

/* A NULL err or a tiny one is fine; a short one is truncated and terminated. */
static void test_err_buffer(void **state)
{
	struct src_gas g;
	char err[8];

	(void)state;
	assert_int_equal(src_parse_solana("[]", 2, NULL, &g, NULL, 0), -1);
	assert_int_equal(src_parse_solana("[]", 2, NULL, &g, err, 0), -1);
	memset(err, 'x', sizeof(err));
	assert_int_equal(src_parse_solana("{}", 2, NULL, &g, err, sizeof(err)), -1);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_memory_equal(err, "result:", 7);
}

/* ---- ExchangeRate-API ------------------------------------------------------ */

static void test_fx_example(void **state)
{
	struct src_fx fx;
	char err[160] = "";

	(void)state;
	memset(&fx, SENTINEL, sizeof(fx));
	if (src_parse_fx(fx_example, strlen(fx_example), NULL, &fx, err, sizeof(err)) != 0)
		fail_msg("rejected: %s", err);
	assert_int_equal(fx.per_usd[cur_index("USD")], SCALE);
	assert_int_equal(fx.per_usd[cur_index("EUR")], 9190000000LL);
	assert_int_equal(fx.per_usd[cur_index("GBP")], 8060000000LL);
	assert_int_equal(fx.per_usd[cur_index("JPY")], 1512000000000LL);
	assert_int_equal(fx.per_usd[cur_index("CHF")], 0);
	assert_int_equal(fx.per_usd[cur_index("USDC")], 0);
	assert_int_equal(fx.as_of, 1585872397);
}

/* Lenient where it is safe: strings, integers, unknown codes, no USD, no time. */
static void test_fx_accepts(void **state)
{
	struct src_fx fx;
	char err[160] = "";
	const char *body =
		"{\"result\":\"success\",\"base_code\":\"USD\",\"rates\":{\"EUR\":\"0.92\","
		"\"KRW\":1330,\"XYZ\":\"junk\",\"IDR\":1.57e4}}";

	(void)state;
	if (src_parse_fx(body, strlen(body), NULL, &fx, err, sizeof(err)) != 0)
		fail_msg("rejected: %s", err);
	assert_int_equal(fx.per_usd[cur_index("EUR")], 9200000000LL);
	assert_int_equal(fx.per_usd[cur_index("KRW")], 1330 * SCALE);
	assert_int_equal(fx.per_usd[cur_index("IDR")], 15700 * SCALE);
	assert_int_equal(fx.per_usd[cur_index("USD")], 0);
	assert_int_equal(fx.as_of, 0);
}

#define FX_OK_HEAD "{\"result\":\"success\",\"base_code\":\"USD\","

static void test_fx_rejects(void **state)
{
	static const struct {
		const char *body, *want;
	} cases[] = {
		{"{\"result\":\"error\",\"error-type\":\"unsupported-code\"}",
		 "result: error \"unsupported-code\""},
		{"{\"result\":\"error\"}", "result: \"error\" is not success"},
		{"{\"base_code\":\"USD\",\"rates\":{\"EUR\":0.9}}", "result: missing"},
		{"{\"result\":true,\"base_code\":\"USD\",\"rates\":{\"EUR\":0.9}}",
		 "result: not a string"},
		{"{\"result\":\"success\",\"base_code\":\"EUR\",\"rates\":{\"USD\":1.08}}",
		 "base_code: \"EUR\" is not USD"},
		{"{\"result\":\"success\",\"rates\":{\"EUR\":0.9}}", "base_code: missing"},
		{"{\"result\":\"success\",\"base_code\":1,\"rates\":{\"EUR\":0.9}}",
		 "base_code: not a string"},
		{FX_OK_HEAD "\"time_last_update_unix\":\"x\",\"rates\":{\"EUR\":0.9}}",
		 "time_last_update_unix"},
		{FX_OK_HEAD "\"time_last_update_unix\":-5,\"rates\":{\"EUR\":0.9}}",
		 "time_last_update_unix"},
		{FX_OK_HEAD "\"rates\":[0.9]}", "rates: not an object"},
		{FX_OK_HEAD "\"rates\":null}", "rates: missing"},
		{FX_OK_HEAD "\"x\":1}", "rates: missing"},
		{FX_OK_HEAD "\"rates\":{}}", "rates: no supported currency besides USD"},
		{FX_OK_HEAD "\"rates\":{\"USD\":1}}", "rates: no supported currency besides USD"},
		{FX_OK_HEAD "\"rates\":{\"XYZ\":1}}", "rates: no supported currency besides USD"},
		{FX_OK_HEAD "\"rates\":{\"USD\":1.5,\"EUR\":0.9}}", "rates.USD: 1.5 is not 1"},
		{FX_OK_HEAD "\"rates\":{\"USD\":0.9999999999,\"EUR\":0.9}}", "rates.USD"},
		{FX_OK_HEAD "\"rates\":{\"EUR\":true}}", "rates.EUR: not a number"},
		{FX_OK_HEAD "\"rates\":{\"EUR\":\"abc\"}}", "rates.EUR: not a decimal number"},
		{FX_OK_HEAD "\"rates\":{\"EUR\":null}}", "rates.EUR: null"},
		{FX_OK_HEAD "\"rates\":{\"EUR\":{\"v\":1}}}", "rates.EUR: not a number"},
		{FX_OK_HEAD "\"rates\":{\"EUR\":-0.9}}", "rates.EUR: negative"},
		{FX_OK_HEAD "\"rates\":{\"EUR\":0}}", "rates.EUR: 0 is not a positive rate"},
		{FX_OK_HEAD "\"rates\":{\"EUR\":1e-11}}", "rates.EUR: 0 is not a positive rate"},
		{FX_OK_HEAD "\"rates\":{\"EUR\":1000000.5}}", "rates.EUR: 1000000.5 is above"},
		{FX_OK_HEAD "\"rates\":{\"EUR\":1e300}}", "rates.EUR: out of range"},
		/* one bad known currency spoils the update */
		{FX_OK_HEAD "\"rates\":{\"EUR\":0.9,\"GBP\":\"\"}}", "rates.GBP"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(cases); i++)
		expect_reject_s(P_FX, cases[i].body, NULL, cases[i].want);
}

static void test_fx_jump(void **state)
{
	struct src_fx last, fx;
	char err[160] = "";
	const char *up100 = FX_OK_HEAD "\"rates\":{\"EUR\":91.9}}";
	const char *down100 = FX_OK_HEAD "\"rates\":{\"EUR\":0.00919}}";
	const char *up5 = FX_OK_HEAD "\"rates\":{\"EUR\":4.595,\"JPY\":151200}}";
	const char *up10 = FX_OK_HEAD "\"rates\":{\"EUR\":9.19}}";

	(void)state;
	memset(&last, 0, sizeof(last));
	last.per_usd[cur_index("EUR")] = 9190000000LL;
	expect_reject_s(P_FX, up100, &last, "rates.EUR: 91.9 jumped more than 10x from 0.919");
	expect_reject_s(P_FX, down100, &last, "rates.EUR: 0.00919 dropped below 1/10 of 0.919");

	/* 5x is within bounds; JPY had no last value, so anything goes. */
	if (src_parse_fx(up5, strlen(up5), &last, &fx, err, sizeof(err)) != 0)
		fail_msg("5x rejected: %s", err);
	assert_int_equal(fx.per_usd[cur_index("EUR")], 45950000000LL);
	assert_int_equal(fx.per_usd[cur_index("JPY")], 151200 * SCALE);
	/* Exactly 10x is still accepted. */
	if (src_parse_fx(up10, strlen(up10), &last, &fx, err, sizeof(err)) != 0)
		fail_msg("10x rejected: %s", err);
}

/* ---- CoinGecko ------------------------------------------------------------- */

static void test_prices_example(void **state)
{
	struct src_prices p;
	char err[160] = "";
	const char *with_pol = "{\"ethereum\":{\"usd\":3000},\"solana\":{\"usd\":\"150.5\"},"
			       "\"usd-coin\":{},\"matic-network\":{\"usd\":0.2134}}";

	(void)state;
	memset(&p, SENTINEL, sizeof(p));
	if (src_parse_prices(prices_example, strlen(prices_example), NULL, &p, err, sizeof(err)) !=
	    0)
		fail_msg("rejected: %s", err);
	assert_int_equal(p.eth_usd_micros, 3120550000LL);
	assert_int_equal(p.sol_usd_micros, 142100000LL);
	assert_int_equal(p.usdc_usd_micros, 999800);
	assert_int_equal(p.pol_usd_micros, 0);

	if (src_parse_prices(with_pol, strlen(with_pol), NULL, &p, err, sizeof(err)) != 0)
		fail_msg("rejected: %s", err);
	assert_int_equal(p.eth_usd_micros, MICROS(3000));
	assert_int_equal(p.sol_usd_micros, 150500000);
	assert_int_equal(p.usdc_usd_micros, 0);
	assert_int_equal(p.pol_usd_micros, 213400);
}

#define SOL_OK "\"solana\":{\"usd\":142.1}"

static void test_prices_rejects(void **state)
{
	static const struct {
		const char *body, *want;
	} cases[] = {
		{"{" SOL_OK "}", "ethereum: missing"},
		{"{\"ethereum\":{\"usd\":3120.55}}", "solana: missing"},
		{"{\"ethereum\":3120.55," SOL_OK "}", "ethereum: not an object"},
		{"{\"ethereum\":{}," SOL_OK "}", "ethereum.usd: missing"},
		{"{\"ethereum\":{\"usd\":null}," SOL_OK "}", "ethereum.usd: null"},
		{"{\"ethereum\":{\"usd\":\"n/a\"}," SOL_OK "}", "ethereum.usd: not a decimal"},
		{"{\"ethereum\":{\"usd\":[1]}," SOL_OK "}", "ethereum.usd: not a number"},
		{"{\"ethereum\":{\"usd\":-3120.55}," SOL_OK "}", "ethereum.usd: negative"},
		{"{\"ethereum\":{\"usd\":0}," SOL_OK "}",
		 "ethereum.usd: 0 is not a positive price"},
		{"{\"ethereum\":{\"usd\":0.0000001}," SOL_OK "}", "ethereum.usd: 0 is not"},
		{"{\"ethereum\":{\"usd\":10000000.01}," SOL_OK "}",
		 "ethereum.usd: 10000000.01 is above"},
		{"{\"ethereum\":{\"usd\":1e30}," SOL_OK "}", "ethereum.usd: out of range"},
		{"{\"ethereum\":{\"usd\":3120.55}," SOL_OK ",\"usd-coin\":{\"usd\":0.4}}",
		 "usd-coin.usd: 0.4 is below the floor 0.5"},
		{"{\"ethereum\":{\"usd\":3120.55}," SOL_OK ",\"usd-coin\":{\"usd\":1.6}}",
		 "usd-coin.usd: 1.6 is above the ceiling 1.5"},
		{"{\"ethereum\":{\"usd\":3120.55}," SOL_OK ",\"usd-coin\":1}",
		 "usd-coin: not an object"},
		{"{\"ethereum\":{\"usd\":3120.55}," SOL_OK ",\"matic-network\":{\"usd\":false}}",
		 "matic-network.usd: not a number"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(cases); i++)
		expect_reject_s(P_PRICES, cases[i].body, NULL, cases[i].want);
}

static void test_prices_jump(void **state)
{
	struct src_prices last = {3120550000LL, 142100000LL, 1000000, 0}, p;
	char err[160] = "";
	const char *up100 = "{\"ethereum\":{\"usd\":312055}," SOL_OK "}";
	const char *up5 = "{\"ethereum\":{\"usd\":15602.75},\"solana\":{\"usd\":28.42},"
			  "\"matic-network\":{\"usd\":0.5}}";

	(void)state;
	expect_reject_s(P_PRICES, up100, &last,
			"ethereum.usd: 312055 jumped more than 10x from 3120.55");
	if (src_parse_prices(up5, strlen(up5), &last, &p, err, sizeof(err)) != 0)
		fail_msg("5x rejected: %s", err);
	assert_int_equal(p.eth_usd_micros, 15602750000LL);
	assert_int_equal(p.sol_usd_micros, 28420000);
	assert_int_equal(p.pol_usd_micros, 500000);
}

/* ---- beaconcha.in ---------------------------------------------------------- */

struct gas_case {
	const char *body;
	int64_t standard, fast; /* standard BAD = rejected */
	const char *want;	/* reason substring when rejected */
};

static void run_gas_cases(enum parser p, const struct gas_case *cases, size_t n,
			  const struct src_gas *last)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct gas_case *c = &cases[i];
		struct outs o;
		char err[160] = "";

		if (c->standard == BAD) {
			expect_reject_s(p, c->body, last, c->want);
			continue;
		}
		memset(&o, SENTINEL, sizeof(o));
		if (run(p, c->body, strlen(c->body), last, &o, err, sizeof(err)) != 0)
			fail_msg("parser %d case %zu rejected: %s", (int)p, i, err);
		if (o.gas.standard != c->standard || o.gas.fast != c->fast)
			fail_msg("parser %d case %zu: got %lld/%lld want %lld/%lld", (int)p, i,
				 (long long)o.gas.standard, (long long)o.gas.fast,
				 (long long)c->standard, (long long)c->fast);
	}
}

static void test_eth_gas(void **state)
{
	static const struct gas_case cases[] = {
		{eth_gas_example, 17122906179LL, 38200000000LL, NULL},
		{"{\"data\":{\"standard\":1,\"rapid\":5}}", 1, 5, NULL},
		{"{\"data\":{\"standard\":1,\"fast\":null,\"rapid\":5}}", 1, 5, NULL},
		{"{\"data\":{\"standard\":1.5e10,\"fast\":\"20000000000\"}}", 15000000000LL,
		 20000000000LL, NULL},
		{"{\"code\":200,\"data\":{\"standard\":10000000000000,\"fast\":10000000000000}}",
		 GWEI(10000), GWEI(10000), NULL},
		{"{\"code\":500,\"data\":{\"standard\":1,\"fast\":2}}", BAD, 0,
		 "code: 500 is not 200"},
		{"{\"code\":\"200\",\"data\":{\"standard\":1,\"fast\":2}}", BAD, 0, "code: not an"},
		{"{\"code\":200}", BAD, 0, "data: missing"},
		{"{\"data\":[1,2]}", BAD, 0, "data: not an object"},
		{"{\"data\":{\"fast\":2}}", BAD, 0, "data.standard: missing"},
		{"{\"data\":{\"standard\":1}}", BAD, 0, "data.fast: missing (and no data.rapid)"},
		{"{\"data\":{\"standard\":0,\"fast\":2}}", BAD, 0,
		 "data.standard: 0 is not a positive gas price"},
		{"{\"data\":{\"standard\":0.5,\"fast\":2}}", BAD, 0, "data.standard: 0 is not"},
		{"{\"data\":{\"standard\":-1,\"fast\":2}}", BAD, 0, "data.standard: negative"},
		{"{\"data\":{\"standard\":1,\"fast\":true}}", BAD, 0, "data.fast: not a number"},
		{"{\"data\":{\"standard\":1,\"rapid\":{}}}", BAD, 0, "data.rapid: not a number"},
		{"{\"data\":{\"standard\":10000000000001,\"fast\":2}}", BAD, 0,
		 "data.standard: 10000000000001 is above the ceiling 10000000000000"},
		{"{\"data\":{\"standard\":1e19,\"fast\":2}}", BAD, 0,
		 "data.standard: out of range"},
	};
	/* Gas spikes and crashes are real: no jump check, the ceiling guards. */
	static const struct gas_case jumps[] = {
		{"{\"data\":{\"standard\":1712290617900,\"fast\":38200000000}}", 1712290617900LL,
		 38200000000LL, NULL},
		{"{\"data\":{\"standard\":17122906179,\"fast\":382000000}}", 17122906179LL,
		 382000000LL, NULL},
		{"{\"data\":{\"standard\":85614530895,\"fast\":7640000000}}", 85614530895LL,
		 7640000000LL, NULL},
	};
	const struct src_gas last = {17122906179LL, 38200000000LL};

	(void)state;
	run_gas_cases(P_ETH, cases, N(cases), NULL);
	run_gas_cases(P_ETH, jumps, N(jumps), &last);
}

/* ---- Blockscout ------------------------------------------------------------ */

static void test_blockscout(void **state)
{
	static const struct gas_case cases[] = {
		{blockscout_flat, 570000000, 1050000000, NULL},
		{blockscout_objects, 570000000, 570000000, NULL},
		{"{\"gas_prices\":{\"average\":0.57}}", 570000000, 570000000, NULL},
		{"{\"gas_prices\":{\"average\":{\"price\":0.001},\"fast\":{\"price\":0.002}}}",
		 1000000, 2000000, NULL},
		{"{\"gas_prices\":{\"average\":\"0.57\",\"fast\":2}}", 570000000, GWEI(2), NULL},
		{"{\"gas_prices\":{\"average\":1.7e-05}}", 17000, 17000, NULL},
		{"{\"gas_prices\":{\"average\":0.0}}", BAD, 0,
		 "gas_prices.average: 0 is not a positive gas price"},
		{"{\"gas_prices\":{\"average\":1e-10}}", BAD, 0, "gas_prices.average: 0 is not"},
		{"{\"gas_prices\":{\"average\":{\"price\":0}}}", BAD, 0,
		 "gas_prices.average.price: 0 is not"},
		{"{\"gas_prices\":{\"average\":null,\"fast\":1}}", BAD, 0,
		 "gas_prices.average: null"},
		{"{\"gas_prices\":{\"slow\":0.1,\"fast\":1}}", BAD, 0,
		 "gas_prices.average: missing"},
		{"{\"gas_prices\":{\"average\":{\"fiat_price\":\"0.02\"}}}", BAD, 0,
		 "gas_prices.average.price: missing"},
		{"{\"gas_prices\":{\"average\":[0.57]}}", BAD, 0,
		 "gas_prices.average: not a number"},
		{"{\"gas_prices\":{\"average\":-0.57}}", BAD, 0, "gas_prices.average: negative"},
		{"{\"gas_prices\":{\"average\":0.57,\"fast\":\"fast\"}}", BAD, 0,
		 "gas_prices.fast: not a decimal"},
		{"{\"gas_prices\":{\"average\":0.57,\"fast\":{\"price\":true}}}", BAD, 0,
		 "gas_prices.fast.price: not a number"},
		{"{\"gas_prices\":{\"average\":10000.000000001}}", BAD, 0,
		 "gas_prices.average: 10000.000000001 is above the ceiling 10000"},
		{"{\"gas_prices\":null,\"coin_price\":\"4.83\"}", BAD, 0, "gas_prices: missing"},
		{"{\"coin_price\":\"4.83\"}", BAD, 0, "gas_prices: missing"},
		{"{\"gas_prices\":\"0.57\"}", BAD, 0, "gas_prices: not an object"},
	};
	static const struct gas_case jumps[] = {
		{"{\"gas_prices\":{\"average\":57,\"fast\":1.05}}", GWEI(57), 1050000000, NULL},
		{"{\"gas_prices\":{\"average\":0.57,\"fast\":0.0105}}", 570000000, 10500000, NULL},
		{"{\"gas_prices\":{\"average\":2.85,\"fast\":0.21}}", 2850000000LL, 210000000,
		 NULL},
	};
	const struct src_gas last = {570000000, 1050000000};

	(void)state;
	run_gas_cases(P_BLOCKSCOUT, cases, N(cases), NULL);
	run_gas_cases(P_BLOCKSCOUT, jumps, N(jumps), &last);
}

/* ---- Solana ---------------------------------------------------------------- */

static void test_solana(void **state)
{
	static const struct gas_case cases[] = {
		{solana_example, 0, 1000, NULL},
		{"{\"result\":[{\"prioritizationFee\":7}]}", 7, 7, NULL},
		/* sorted 10..50: median index 2, p75 index ceil(3.75)-1 = 3 */
		{"{\"result\":[{\"prioritizationFee\":50},{\"prioritizationFee\":10},"
		 "{\"prioritizationFee\":40},{\"prioritizationFee\":20},{\"prioritizationFee\":30}]"
		 "}",
		 30, 40, NULL},
		/* n = 4: lower median index 1, p75 index 2 */
		{"{\"result\":[{\"prioritizationFee\":4},{\"prioritizationFee\":3},"
		 "{\"prioritizationFee\":2},{\"prioritizationFee\":1}]}",
		 2, 3, NULL},
		{"{\"result\":[{\"prioritizationFee\":0},{\"prioritizationFee\":0}]}", 0, 0, NULL},
		{"{\"result\":[{\"prioritizationFee\":100000000}]}", 100000000, 100000000, NULL},
		{"{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32005,\"message\":\"Node is behind\"},"
		 "\"id\":1}",
		 BAD, 0, "rpc error -32005: Node is behind"},
		{"{\"error\":{\"message\":\"boom\"}}", BAD, 0, "rpc error: boom"},
		{"{\"error\":{\"code\":-32600}}", BAD, 0, "rpc error -32600: (no message)"},
		{"{\"error\":\"rate limited\"}", BAD, 0, "rpc error: rate limited"},
		{"{\"error\":{\"code\":1,\"message\":\"a\\nb\\\"c\"},\"result\":[]}", BAD, 0,
		 "rpc error 1: a?b?c"},
		{"{\"jsonrpc\":\"2.0\",\"result\":[],\"id\":1}", BAD, 0, "result: empty"},
		{"{\"jsonrpc\":\"2.0\",\"id\":1}", BAD, 0, "result: missing"},
		{"{\"result\":null}", BAD, 0, "result: missing"},
		{"{\"result\":{\"prioritizationFee\":1}}", BAD, 0, "result: not an array"},
		{"{\"result\":[1,2]}", BAD, 0, "result[0]: not an object"},
		{"{\"result\":[{\"prioritizationFee\":1},{\"slot\":2}]}", BAD, 0,
		 "result[1].prioritizationFee: missing"},
		{"{\"result\":[{\"prioritizationFee\":-1}]}", BAD, 0,
		 "result[0].prioritizationFee: -1 is negative"},
		{"{\"result\":[{\"prioritizationFee\":1.5}]}", BAD, 0,
		 "result[0].prioritizationFee: not an integer"},
		{"{\"result\":[{\"prioritizationFee\":\"1000\"}]}", BAD, 0, "not an integer"},
		{"{\"result\":[{\"prioritizationFee\":200000000},{\"prioritizationFee\":2}]}", BAD,
		 0, "result: 75th percentile 200000000 is above the ceiling"},
	};
	static const struct gas_case jumps[] = {
		{"{\"result\":[{\"prioritizationFee\":10000}]}", 10000, 10000, NULL},
		{"{\"result\":[{\"prioritizationFee\":500}]}", 500, 500, NULL},
	};
	static const struct gas_case from_zero[] = {
		{"{\"result\":[{\"prioritizationFee\":123456}]}", 123456, 123456, NULL},
	};
	const struct src_gas last = {100, 200}, zero = {0, 0};

	(void)state;
	run_gas_cases(P_SOLANA, cases, N(cases), NULL);
	run_gas_cases(P_SOLANA, jumps, N(jumps), &last);
	run_gas_cases(P_SOLANA, from_zero, N(from_zero), &zero);
}

/* Past 1000 samples only the newest (last) 1000 are read. */
static void test_solana_cap(void **state)
{
	const size_t n = 1500, entry = sizeof("{\"prioritizationFee\":999},") - 1;
	struct src_gas g;
	char err[160] = "", *body, *p;
	size_t i;

	(void)state;
	body = malloc(n * entry + 32);
	assert_non_null(body);
	p = body + snprintf(body, 32, "{\"result\":[");
	for (i = 0; i < n; i++)
		p += snprintf(p, entry + 1, "{\"prioritizationFee\":%3d},", i < 500 ? 999 : 5);
	p[-1] = ']';
	*p++ = '}';
	*p = '\0';
	if (src_parse_solana(body, strlen(body), NULL, &g, err, sizeof(err)) != 0)
		fail_msg("rejected: %s", err);
	assert_int_equal(g.standard, 5);
	assert_int_equal(g.fast, 5);
	free(body);
}

static void test_solana_request(void **state)
{
	json_t *v = json_loads(SRC_SOLANA_REQUEST, 0, NULL);

	(void)state;
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(v, "method")),
			    "getRecentPrioritizationFees");
	json_decref(v);
}

/* ---- Statuspage ------------------------------------------------------------ */

static void test_status(void **state)
{
	static const struct {
		const char *body;
		int indicator; /* -1 = rejected */
		const char *text;
	} cases[] = {
		{status_example, 0, "All Systems Operational"},
		{"{\"status\":{\"indicator\":\"minor\",\"description\":\"Minor Service Outage\"}}",
		 1, "Minor Service Outage"},
		{"{\"status\":{\"indicator\":\"major\"}}", 2, ""},
		{"{\"status\":{\"indicator\":\"critical\",\"description\":null}}", 3, ""},
		{"{\"status\":{\"indicator\":\"none\",\"description\":"
		 "\"a\\nb\\tc\\u007fd\\u0085e\"}}",
		 0, "a b c d e"},
		{"{\"status\":{\"indicator\":\"none\",\"description\":\"caf\xc3\xa9 "
		 "\xe2\x9c\x93\"}}",
		 0, "caf\xc3\xa9 \xe2\x9c\x93"},
		{"{\"status\":{\"indicator\":\"maintenance\"}}", -1,
		 "status.indicator: unknown value \"maintenance\""},
		{"{\"status\":{\"indicator\":\"None\"}}", -1, "unknown value \"None\""},
		{"{\"status\":{\"indicator\":\"\"}}", -1, "unknown value \"\""},
		{"{\"status\":{\"indicator\":\"x\\ny\"}}", -1, "unknown value \"x?y\""},
		{"{\"status\":{\"indicator\":0}}", -1, "status.indicator: not a string"},
		{"{\"status\":{\"description\":\"ok\"}}", -1, "status.indicator: missing"},
		{"{\"status\":{\"indicator\":\"none\",\"description\":5}}", -1,
		 "status.description: not a string"},
		{"{\"status\":\"none\"}", -1, "status: not an object"},
		{"{\"page\":{}}", -1, "status: missing"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		struct src_status s;
		char err[160] = "";

		if (cases[i].indicator < 0) {
			expect_reject_s(P_STATUS, cases[i].body, NULL, cases[i].text);
			continue;
		}
		memset(&s, SENTINEL, sizeof(s));
		if (src_parse_status(cases[i].body, strlen(cases[i].body), &s, err, sizeof(err)) !=
		    0)
			fail_msg("case %zu rejected: %s", i, err);
		assert_int_equal(s.indicator, cases[i].indicator);
		assert_string_equal(s.description, cases[i].text);
	}
}

/* Long texts: the description is cut on a character boundary, the echoed
 * indicator is cut with "...", and err stays terminated. */
static void test_status_truncation(void **state)
{
	char body[1024], err[160] = "";
	struct src_status s;
	size_t i, n;
	char *p;

	(void)state;
	p = body + snprintf(body, sizeof(body),
			    "{\"status\":{\"indicator\":\"none\","
			    "\"description\":\"");
	for (i = 0; i < 100; i++) {
		memcpy(p, "\xc3\xa9", 2); /* U+00E9, two bytes */
		p += 2;
	}
	snprintf(p, sizeof(body) - (size_t)(p - body), "\"}}");
	if (src_parse_status(body, strlen(body), &s, err, sizeof(err)) != 0)
		fail_msg("rejected: %s", err);
	n = strlen(s.description);
	assert_int_equal(n, 94); /* 47 whole characters fit in 95 bytes */
	for (i = 0; i < n; i += 2)
		assert_memory_equal(s.description + i, "\xc3\xa9", 2);

	p = body + snprintf(body, sizeof(body), "{\"status\":{\"indicator\":\"");
	memset(p, 'z', 500);
	p += 500;
	snprintf(p, sizeof(body) - (size_t)(p - body), "\"}}");
	expect_reject_s(P_STATUS, body, NULL, "zzzz...\"");
	memset(err, 0, sizeof(err));
	assert_int_equal(src_parse_status(body, strlen(body), &s, err, sizeof(err)), -1);
	assert_true(strlen(err) < 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decimal),	       cmocka_unit_test(test_decimal_built),
		cmocka_unit_test(test_garbage),	       cmocka_unit_test(test_err_buffer),
		cmocka_unit_test(test_fx_example),     cmocka_unit_test(test_fx_accepts),
		cmocka_unit_test(test_fx_rejects),     cmocka_unit_test(test_fx_jump),
		cmocka_unit_test(test_prices_example), cmocka_unit_test(test_prices_rejects),
		cmocka_unit_test(test_prices_jump),    cmocka_unit_test(test_eth_gas),
		cmocka_unit_test(test_blockscout),     cmocka_unit_test(test_solana),
		cmocka_unit_test(test_solana_cap),     cmocka_unit_test(test_solana_request),
		cmocka_unit_test(test_status),	       cmocka_unit_test(test_status_truncation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
