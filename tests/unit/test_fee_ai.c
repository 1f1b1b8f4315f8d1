/* test_fee_ai.c - unit tests for the fee engine's reading of Claude's answers
 * (ai_parse_decision: the Messages API shape, the fee_decision tool call and
 * every guardrail) against a deterministic result from route_decide. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>

#include "feeengine.h"

#define GWEI 1000000000LL

/* $5,000.00 USD -> EUR, standard, on a calm market: every chain eligible. */
static void deterministic(struct route_result *res)
{
	static const struct route_config cfg = {
		.platform_bps = 200,
		.onramp_bps = 70,
		.offramp_bps = 50,
		.tier_discount_bps = {0, 50, 100},
		.provider_minor_bps = 5,
		.large_usd_cents = 50000000,
		.mid_usd_cents = 5000000,
	};
	struct route_market m;
	memset(&m, 0, sizeof(m));
	int64_t gas[CHAIN_COUNT][2] = {{17 * GWEI, 38 * GWEI},
				       {GWEI / 2, GWEI},
				       {30 * GWEI, 45 * GWEI},
				       {GWEI / 100, GWEI / 50},
				       {1000, 5000}};
	int64_t price[CHAIN_COUNT] = {3120550000LL, 3120550000LL, 520000LL, 3120550000LL,
				      142100000LL};
	for (int c = 0; c < CHAIN_COUNT; c++) {
		m.chain[c].gas_standard = gas[c][0];
		m.chain[c].gas_fast = gas[c][1];
		m.chain[c].native_usd_micros = price[c];
	}
	m.provider = STATUS_NONE;
	m.provider_name = "circle";
	struct route_request req = {.amount = 500000,
				    .from = money_currency("USD"),
				    .to = money_currency("EUR"),
				    .from_per_usd = MONEY_RATE_SCALE,
				    .priority = PRIORITY_STANDARD,
				    .tier = TIER_STANDARD};
	assert_int_equal(route_decide(&cfg, &m, &req, res), 0);
	assert_true(res->chosen >= 0);
}

/* A Messages API success body whose fee_decision input is `input`. */
static void body_with(char *out, size_t len, const char *input)
{
	snprintf(
		out, len,
		"{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\","
		"\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"fee_decision\","
		"\"input\":%s}],\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":1,"
		"\"output_tokens\":1}}",
		input);
}

/* The input for chain c with its deterministic fees scaled by pct percent. */
static void input_for(char *out, size_t len, const struct route_result *det, enum route_chain c,
		      int pct, const char *extra)
{
	const struct route_fees *f = &det->cand[c].fees;
	snprintf(out, len,
		 "{\"chain\":\"%s\",\"fees\":{\"platform_fee\":%lld,\"onramp_fee\":%lld,"
		 "\"offramp_fee\":%lld,\"gas_cost\":%lld,\"risk_premium\":%lld},%s}",
		 route_chain_name(c), (long long)(f->platform_fee * pct / 100),
		 (long long)(f->onramp_fee * pct / 100), (long long)(f->offramp_fee * pct / 100),
		 (long long)(f->gas_cost * pct / 100), (long long)(f->risk_premium * pct / 100),
		 extra);
}

static const char good_tail[] =
	"\"reasoning\":\"arbitrum is cheap and healthy\",\"confidence\":0.9,"
	"\"risk_factors\":[\"rollup sequencer\"],\"estimated_settlement_time\":60";

static void test_valid_decision(void **state)
{
	struct route_result det;
	struct ai_decision d;
	char in[1024], body[2048], why[200] = "";
	(void)state;
	deterministic(&det);
	input_for(in, sizeof(in), &det, CHAIN_ARBITRUM, 100, good_tail);
	body_with(body, sizeof(body), in);
	assert_int_equal(ai_parse_decision(body, strlen(body), &det, 2000, &d, why, sizeof(why)),
			 AI_OK);
	assert_int_equal(d.chain, CHAIN_ARBITRUM);
	assert_int_equal(d.confidence_milli, 900);
	assert_int_equal(d.settlement_seconds, 60);
	assert_int_equal(d.n_risks, 1);
	assert_string_equal(d.risks[0], "rollup sequencer");
	assert_string_equal(d.reasoning, "arbitrum is cheap and healthy");
	assert_int_equal(d.fees.total, det.cand[CHAIN_ARBITRUM].fees.total);

	/* 15% lower is inside 2000 bps; integers 0 and 1 are valid confidences. */
	input_for(in, sizeof(in), &det, CHAIN_ARBITRUM, 85,
		  "\"reasoning\":\"r\",\"confidence\":1,\"risk_factors\":[],"
		  "\"estimated_settlement_time\":1");
	body_with(body, sizeof(body), in);
	assert_int_equal(ai_parse_decision(body, strlen(body), &det, 2000, &d, why, sizeof(why)),
			 AI_OK);
	assert_int_equal(d.confidence_milli, 1000);
}

struct bad_case {
	const char *name;
	int chain; /* -1: a literal input */
	int pct;
	const char *tail_or_input;
	enum ai_outcome want;
	const char *why_has;
};

static void test_rejections(void **state)
{
	struct route_result det;
	char in[2048], body[4096], why[200];
	char long_reason[1100];
	(void)state;
	deterministic(&det);
	memset(long_reason, 'x', sizeof(long_reason));
	snprintf(long_reason, sizeof(long_reason),
		 "\"reasoning\":\"%01001d\",\"confidence\":0.5,\"risk_factors\":[],"
		 "\"estimated_settlement_time\":60",
		 0);
	const struct bad_case cases[] = {
		{"fees 10x", CHAIN_ARBITRUM, 1000, good_tail, AI_GUARDRAIL, "outside"},
		{"fees 30% low", CHAIN_ARBITRUM, 70, good_tail, AI_GUARDRAIL, "outside"},
		{"unknown chain", -1, 0,
		 "{\"chain\":\"dogecoin\",\"fees\":{},\"reasoning\":\"r\",\"confidence\":0.5}",
		 AI_GUARDRAIL, "dogecoin"},
		{"no chain", -1, 0, "{\"fees\":{}}", AI_MALFORMED, "chain"},
		{"fees missing", -1, 0, "{\"chain\":\"base\"}", AI_MALFORMED, "fees"},
		{"fee a string", -1, 0, "{\"chain\":\"base\",\"fees\":{\"platform_fee\":\"100\"}}",
		 AI_MALFORMED, "platform_fee"},
		{"confidence 1.5", CHAIN_ARBITRUM, 100,
		 "\"reasoning\":\"r\",\"confidence\":1.5,\"risk_factors\":[],"
		 "\"estimated_settlement_time\":60",
		 AI_GUARDRAIL, "confidence"},
		{"confidence string", CHAIN_ARBITRUM, 100,
		 "\"reasoning\":\"r\",\"confidence\":\"high\",\"risk_factors\":[],"
		 "\"estimated_settlement_time\":60",
		 AI_MALFORMED, "confidence"},
		{"empty reasoning", CHAIN_ARBITRUM, 100,
		 "\"reasoning\":\"\",\"confidence\":0.5,\"risk_factors\":[],"
		 "\"estimated_settlement_time\":60",
		 AI_GUARDRAIL, "reasoning"},
		{"reasoning too long", CHAIN_ARBITRUM, 100, long_reason, AI_GUARDRAIL, "reasoning"},
		{"7 risk factors", CHAIN_ARBITRUM, 100,
		 "\"reasoning\":\"r\",\"confidence\":0.5,\"risk_factors\":[\"a\",\"b\",\"c\","
		 "\"d\",\"e\",\"f\",\"g\"],\"estimated_settlement_time\":60",
		 AI_GUARDRAIL, "risk"},
		{"risk not a string", CHAIN_ARBITRUM, 100,
		 "\"reasoning\":\"r\",\"confidence\":0.5,\"risk_factors\":[7],"
		 "\"estimated_settlement_time\":60",
		 AI_MALFORMED, "risk_factors[0]"},
		{"settlement text", CHAIN_ARBITRUM, 100,
		 "\"reasoning\":\"r\",\"confidence\":0.5,\"risk_factors\":[],"
		 "\"estimated_settlement_time\":\"5 minutes\"",
		 AI_MALFORMED, "estimated_settlement_time"},
		{"settlement 0", CHAIN_ARBITRUM, 100,
		 "\"reasoning\":\"r\",\"confidence\":0.5,\"risk_factors\":[],"
		 "\"estimated_settlement_time\":0",
		 AI_GUARDRAIL, "estimated_settlement_time"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_case *c = &cases[i];
		struct ai_decision d;
		memset(&d, 0x5a, sizeof(d));
		struct ai_decision before = d;
		if (c->chain >= 0)
			input_for(in, sizeof(in), &det, (enum route_chain)c->chain, c->pct,
				  c->tail_or_input);
		else
			snprintf(in, sizeof(in), "%s", c->tail_or_input);
		body_with(body, sizeof(body), in);
		why[0] = '\0';
		enum ai_outcome o =
			ai_parse_decision(body, strlen(body), &det, 2000, &d, why, sizeof(why));
		if (o != c->want || !strstr(why, c->why_has))
			fail_msg("%s: outcome %s, why \"%s\"", c->name, ai_outcome_name(o), why);
		assert_memory_equal(&d, &before, sizeof(d)); /* untouched */
	}
}

static void test_not_a_tool_call(void **state)
{
	struct route_result det;
	struct ai_decision d;
	char why[200];
	(void)state;
	deterministic(&det);
	const char *bodies[] = {
		"",
		"{\"id\": \"msg_01\", \"content\": [",
		"[]",
		"{\"content\":\"text\"}",
		"{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"I think "
		"base.\"}],"
		"\"stop_reason\":\"end_turn\"}",
		"{\"type\":\"message\",\"content\":[{\"type\":\"tool_use\",\"name\":\"other\","
		"\"input\":{}}]}",
		"{\"type\":\"message\",\"content\":[{\"type\":\"tool_use\",\"name\":\"fee_"
		"decision\","
		"\"input\":\"base\"}]}",
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		assert_int_equal(ai_parse_decision(bodies[i], strlen(bodies[i]), &det, 2000, &d,
						   why, sizeof(why)),
				 AI_MALFORMED);
}

static void test_ineligible_chain(void **state)
{
	struct route_result det;
	struct ai_decision d;
	char in[1024], body[2048], why[200];
	(void)state;
	deterministic(&det);
	det.cand[CHAIN_POLYGON].eligible = false;
	snprintf(det.cand[CHAIN_POLYGON].why, sizeof(det.cand[0].why), "polygon congested");
	input_for(in, sizeof(in), &det, CHAIN_POLYGON, 100, good_tail);
	body_with(body, sizeof(body), in);
	assert_int_equal(ai_parse_decision(body, strlen(body), &det, 2000, &d, why, sizeof(why)),
			 AI_GUARDRAIL);
	assert_non_null(strstr(why, "polygon congested"));
}

/* With 0 bps of freedom only the deterministic fees (+-1 minor unit) pass. */
static void test_zero_deviation(void **state)
{
	struct route_result det;
	struct ai_decision d;
	char in[1024], body[2048], why[200];
	(void)state;
	deterministic(&det);
	input_for(in, sizeof(in), &det, CHAIN_BASE, 100, good_tail);
	body_with(body, sizeof(body), in);
	assert_int_equal(ai_parse_decision(body, strlen(body), &det, 0, &d, why, sizeof(why)),
			 AI_OK);
	input_for(in, sizeof(in), &det, CHAIN_BASE, 99, good_tail);
	body_with(body, sizeof(body), in);
	assert_int_equal(ai_parse_decision(body, strlen(body), &det, 0, &d, why, sizeof(why)),
			 AI_GUARDRAIL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_decision),	cmocka_unit_test(test_rejections),
		cmocka_unit_test(test_not_a_tool_call), cmocka_unit_test(test_ineligible_chain),
		cmocka_unit_test(test_zero_deviation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
