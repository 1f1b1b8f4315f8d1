/* test_quotes.c - the pure steps of POST /v1/quotes (services/api/quotes.c):
 * body validation, pricing (fees, payout, rate source, the 400s), the text
 * forms, the response object and the insert's row, with hand-computed
 * values. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>

#include "app.h"

#define RATE(units) ((int64_t)(units)*10000000000LL) /* money.h's fixed point */

static const struct money_fees_bps bps = {200, 70, 50};

static json_t *body(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, 0, &err);
	assert_non_null(j);
	return j;
}

static void test_validate(void **state)
{
	(void)state;
	struct quote_input in;
	struct jv_error e;
	json_t *b = body("{\"from_currency\":\"USD\",\"to_currency\":\"EUR\",\"amount\":10000}");
	assert_int_equal(quotes_validate(b, &in, &e), 0);
	assert_int_equal(in.amount, 10000);
	assert_string_equal(in.from->code, "USD");
	assert_string_equal(in.to->code, "EUR");
	assert_string_equal(in.priority, "standard");
	json_decref(b);

	static const struct {
		const char *body, *code, *param;
	} bad[] = {
		{"{\"from_currency\":\"USD\",\"to_currency\":\"USD\",\"amount\":1}",
		 "SAME_CURRENCY", "to_currency"},
		{"{\"from_currency\":\"XXX\",\"to_currency\":\"USD\",\"amount\":1}",
		 "UNSUPPORTED_CURRENCY", "from_currency"},
		{"{\"from_currency\":\"USD\",\"to_currency\":\"EUR\",\"amount\":0}",
		 "INVALID_AMOUNT", "amount"},
		{"{\"from_currency\":\"USD\",\"to_currency\":\"EUR\",\"amount\":5,\"priority\":"
		 "\"fast\"}",
		 "INVALID_FIELD", "priority"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = body(bad[i].body);
		assert_int_equal(quotes_validate(b, &in, &e), -1);
		assert_int_equal(e.status, 400);
		assert_string_equal(e.code, bad[i].code);
		assert_string_equal(e.param, bad[i].param);
		json_decref(b);
	}
	b = body("{\"from_currency\":\"USD\",\"to_currency\":\"EUR\",\"amount\":5,"
		 "\"priority\":\"express\"}");
	assert_int_equal(quotes_validate(b, &in, &e), 0);
	assert_string_equal(in.priority, "express");
	json_decref(b);
}

/* 100.00 USD to EUR at 0.92: fees 2% + 0.7% + 0.5% = 3.20, payout
 * floor(96.80 x 0.92) = 89.05 EUR (89.056). */
static void test_price(void **state)
{
	(void)state;
	struct quote_input in = {10000, money_currency("USD"), money_currency("EUR"), "standard"};
	struct quote q = {0};
	struct jv_error e;
	assert_int_equal(
		quotes_price(&in, RATE(1), SNAP_LIVE, RATE(92) / 100, SNAP_LIVE, &bps, &q, &e), 0);
	assert_int_equal(q.amount, 10000);
	assert_int_equal(q.rate, 9200000000LL);
	assert_int_equal(q.m.platform_fee, 200);
	assert_int_equal(q.m.onramp_fee, 70);
	assert_int_equal(q.m.offramp_fee, 50);
	assert_int_equal(q.m.total_fees, 320);
	assert_int_equal(q.m.payout, 8905);
	assert_string_equal(q.rate_source, "live");
	assert_string_equal(q.priority, "standard");

	/* Fees round up: 12.34 USD -> ceil(24.68) = 25, ceil(8.638) = 9,
	 * ceil(6.17) = 7; payout in yen (no minor unit): floor(11.93 x 150). */
	in = (struct quote_input){1234, money_currency("USD"), money_currency("JPY"), "express"};
	assert_int_equal(quotes_price(&in, RATE(1), SNAP_LIVE, RATE(150), SNAP_LIVE, &bps, &q, &e),
			 0);
	assert_int_equal(q.m.platform_fee, 25);
	assert_int_equal(q.m.onramp_fee, 9);
	assert_int_equal(q.m.offramp_fee, 7);
	assert_int_equal(q.m.payout, 1789);
	assert_string_equal(q.priority, "express");
}

/* The quote is as fresh as its staler rate: default < cached < live. */
static void test_rate_source(void **state)
{
	(void)state;
	static const struct {
		enum snap_state from, to;
		const char *want;
	} cases[] = {
		{SNAP_LIVE, SNAP_LIVE, "live"},	      {SNAP_LIVE, SNAP_CACHED, "cached"},
		{SNAP_CACHED, SNAP_LIVE, "cached"},   {SNAP_CACHED, SNAP_DEFAULT, "default"},
		{SNAP_DEFAULT, SNAP_LIVE, "default"}, {SNAP_CACHED, SNAP_CACHED, "cached"},
	};
	struct quote_input in = {10000, money_currency("USD"), money_currency("EUR"), "standard"};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct quote q = {0};
		struct jv_error e;
		assert_int_equal(quotes_price(&in, RATE(1), cases[i].from, RATE(1), cases[i].to,
					      &bps, &q, &e),
				 0);
		assert_string_equal(q.rate_source, cases[i].want);
	}
}

static void test_price_errors(void **state)
{
	(void)state;
	struct quote q = {0};
	struct jv_error e;
	/* 0.03 USD: fees 0.01 x 3 eat it all. */
	struct quote_input in = {3, money_currency("USD"), money_currency("EUR"), "standard"};
	assert_int_equal(quotes_price(&in, RATE(1), SNAP_LIVE, RATE(1), SNAP_LIVE, &bps, &q, &e),
			 -1);
	assert_int_equal(e.status, 400);
	assert_string_equal(e.code, "AMOUNT_TOO_SMALL");
	assert_string_equal(e.param, "amount");
	assert_string_equal(e.message, "amount 3 USD does not cover the fees or pays out nothing");

	in = (struct quote_input){INT64_MAX, money_currency("USD"), money_currency("JPY"),
				  "standard"};
	assert_int_equal(quotes_price(&in, RATE(1), SNAP_LIVE, RATE(150), SNAP_LIVE, &bps, &q, &e),
			 -1);
	assert_string_equal(e.code, "AMOUNT_TOO_LARGE");
	assert_non_null(strstr(e.message, "is too large to convert to JPY"));

	in = (struct quote_input){100, money_currency("USD"), money_currency("EUR"), "standard"};
	assert_int_equal(quotes_price(&in, 0, SNAP_LIVE, RATE(1), SNAP_LIVE, &bps, &q, &e), -1);
	assert_string_equal(e.code, "INVALID_AMOUNT");
}

static void test_text_forms(void **state)
{
	(void)state;
	char t[32];
	quotes_format_time(0, t);
	assert_string_equal(t, "1970-01-01T00:00:00.000Z");
	quotes_format_time(1795139695123LL, t);
	assert_string_equal(t, "2026-11-20T01:54:55.123Z");
	quotes_format_time(1795139695007LL, t);
	assert_string_equal(t, "2026-11-20T01:54:55.007Z");

	struct quote q = {.rate = 9190000000LL, .created_ms = 1000, .expires_ms = 61000};
	quotes_set_text(&q);
	assert_string_equal(q.rate_str, "0.919");
	assert_string_equal(q.created_at, "1970-01-01T00:00:01.000Z");
	assert_string_equal(q.expires_at, "1970-01-01T00:01:01.000Z");
}

static struct quote sample(void)
{
	struct quote q = {
		.amount = 10000,
		.from = money_currency("USD"),
		.to = money_currency("EUR"),
		.rate = 9200000000LL,
		.m = {200, 70, 50, 320, 8905},
		.chain = "base",
		.priority = "standard",
		.rate_source = "cached",
		.created_ms = 1795139695123LL,
		.expires_ms = 1795139755123LL,
	};
	snprintf(q.id, sizeof(q.id), "quote_2f1c0b7e-6a55-4e0c-9a51-6d1f3b2b1c9e");
	quotes_set_text(&q);
	return q;
}

static void test_json(void **state)
{
	(void)state;
	struct quote q = sample();
	json_t *j = quotes_json(&q, q.created_ms + 15500);
	assert_non_null(j);
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(
		s,
		"{\"amount\":10000,\"chain\":\"base\",\"created_at\":\"2026-11-20T01:54:55.123Z\","
		"\"currency\":\"USD\",\"exchange_rate\":\"0.92\",\"expires_at\":"
		"\"2026-11-20T01:55:55.123Z\",\"fees\":{\"currency\":\"USD\",\"offramp_fee\":50,"
		"\"onramp_fee\":70,\"platform_fee\":200,\"total_fees\":320},\"guaranteed_payout\":"
		"8905,\"id\":\"quote_2f1c0b7e-6a55-4e0c-9a51-6d1f3b2b1c9e\",\"payout_currency\":"
		"\"EUR\",\"priority\":\"standard\",\"rate_source\":\"cached\","
		"\"valid_for_seconds\":44}");
	free(s);
	json_decref(j);
	/* Expired: 0, never negative. */
	j = quotes_json(&q, q.expires_ms + 1);
	assert_int_equal(json_integer_value(json_object_get(j, "valid_for_seconds")), 0);
	json_decref(j);
}

/* The row follows insert_sql's column order. */
static void test_row(void **state)
{
	(void)state;
	struct quote q = sample();
	struct quote_row_buf buf;
	const char *row[QUOTES_ROW_COLS];
	quotes_row(&q, "key_static_0", &buf, row);
	static const char *const want[QUOTES_ROW_COLS] = {
		"quote_2f1c0b7e-6a55-4e0c-9a51-6d1f3b2b1c9e",
		"key_static_0",
		"10000",
		"USD",
		"EUR",
		"0.92",
		"200",
		"70",
		"50",
		"320",
		"8905",
		"base",
		"standard",
		"cached",
		"2026-11-20T01:54:55.123Z",
		"2026-11-20T01:55:55.123Z",
	};
	for (int i = 0; i < QUOTES_ROW_COLS; i++)
		assert_string_equal(row[i], want[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validate),    cmocka_unit_test(test_price),
		cmocka_unit_test(test_rate_source), cmocka_unit_test(test_price_errors),
		cmocka_unit_test(test_text_forms),  cmocka_unit_test(test_json),
		cmocka_unit_test(test_row),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
