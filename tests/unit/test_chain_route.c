/* test_chain_route.c - unit tests for common/chain_route: names, the cost model, eligibility,
 * choice and fees, with hand-computed values. */
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

#include "common/chain_route.h"

#define SCALE MONEY_RATE_SCALE
#define GWEI  1000000000LL

/* ---- fixtures ---------------------------------------------------------------
 *
 * The realistic market used throughout, and its network fees in micro-USD
 * (each rounded up), worked by hand:
 *
 *   ETH $3,120.55 = 3,120,550,000 micro-USD; SOL $142.10 = 142,100,000;
 *   POL $0.52 = 520,000.
 *
 *   standard                                          micro-USD
 *   ethereum 17.12 gwei x 65,000 x 3,120,550,000 / 1e18 = 3,472,548.04 -> 3,472,549
 *   base      0.57 gwei x 65,000 x 3,120,550,000 / 1e18 =   115,616.3775 -> 115,617
 *   polygon     30 gwei x 65,000 x       520,000 / 1e18 =     1,014 (exact)
 *   arbitrum  0.01 gwei x 250,000 x 3,120,550,000 / 1e18 =     7,801.375 -> 7,802
 *   solana   5,000 + ceil(1,000 x 50,000 / 1e6) = 5,050 lamports
 *            x 142,100,000 / 1e9                          =       717.605 -> 718
 *
 *   express (fast gas)
 *   ethereum 38.2 gwei x 65,000 x 3,120,550,000 / 1e18  = 7,748,325.65 -> 7,748,326
 *   base     1.05 gwei x 65,000 x 3,120,550,000 / 1e18  =   212,977.5375 -> 212,978
 *   polygon    45 gwei x 65,000 x 520,000 / 1e18        =     1,521 (exact)
 *   arbitrum 0.02 gwei x 250,000 x 3,120,550,000 / 1e18 =    15,602.75 -> 15,603
 *   solana   5,000 + ceil(5,000 x 50,000 / 1e6) = 5,250 lamports
 *            x 142,100,000 / 1e9                          =       746.025 -> 747
 */
static const int64_t fee_std[CHAIN_COUNT] = {3472549, 115617, 1014, 7802, 718};
static const int64_t fee_fast[CHAIN_COUNT] = {7748326, 212978, 1521, 15603, 747};

#define ETH_USD 3120550000LL
#define SOL_USD 142100000LL
#define POL_USD 520000LL

static struct route_market market(void)
{
	struct route_market m;

	memset(&m, 0, sizeof(m));
	m.chain[CHAIN_ETHEREUM] =
		(struct route_chain_market){1712 * GWEI / 100, 382 * GWEI / 10, ETH_USD, false, ""};
	m.chain[CHAIN_BASE] =
		(struct route_chain_market){57 * GWEI / 100, 105 * GWEI / 100, ETH_USD, false, ""};
	m.chain[CHAIN_POLYGON] =
		(struct route_chain_market){30 * GWEI, 45 * GWEI, POL_USD, false, ""};
	m.chain[CHAIN_ARBITRUM] =
		(struct route_chain_market){GWEI / 100, GWEI / 50, ETH_USD, false, ""};
	m.chain[CHAIN_SOLANA] = (struct route_chain_market){1000, 5000, SOL_USD, false, ""};
	m.provider = STATUS_NONE;
	m.provider_name = "circle";
	return m;
}

/* The fee engine's defaults (services/feeengine/config.c). */
static struct route_config config(void)
{
	struct route_config c = {
		.platform_bps = 200,
		.onramp_bps = 70,
		.offramp_bps = 50,
		.tier_discount_bps = {0, 50, 100},
		.provider_minor_bps = 5,
		.large_usd_cents = 50000000, /* $500,000 */
		.mid_usd_cents = 5000000,    /* $50,000 */
	};
	return c;
}

/* A request at the currency's built-in rate, to EUR (or USD when from is EUR). */
static struct route_request request(const char *code, int64_t amount, enum route_priority p)
{
	struct route_request r;

	memset(&r, 0, sizeof(r));
	r.amount = amount;
	r.from = money_currency(code);
	assert_non_null(r.from);
	r.to = money_currency(strcmp(code, "EUR") == 0 ? "USD" : "EUR");
	r.from_per_usd = r.from->per_usd;
	r.priority = p;
	r.tier = TIER_STANDARD;
	return r;
}

static void set_unavailable(struct route_market *m, enum route_chain c, const char *why)
{
	m->chain[c].unavailable = true;
	snprintf(m->chain[c].why, sizeof(m->chain[c].why), "%s", why);
}

static int64_t cost(const struct route_candidate *c)
{
	return c->fees.gas_cost + c->fees.risk_premium;
}

/* Invariants of every successful result, checked independently of the engine:
 * candidates indexed by chain, fee totals add up, the chosen chain is eligible
 * and no eligible chain beats it under chain_route.h's rule, risk strings fit. */
static void check_result(const struct route_result *res, const struct route_request *req)
{
	bool express = req->priority == PRIORITY_EXPRESS;
	int c, any = 0;

	for (c = 0; c < CHAIN_COUNT; c++) {
		const struct route_candidate *k = &res->cand[c];
		const struct route_fees *f = &k->fees;

		assert_int_equal(k->chain, c);
		assert_true(k->security_tier >= 1 && k->security_tier <= 3);
		assert_true(strlen(k->why) < sizeof(k->why));
		if (k->eligible)
			assert_string_equal(k->why, "");
		else
			assert_string_not_equal(k->why, "");
		assert_int_equal(f->total, f->platform_fee + f->onramp_fee + f->offramp_fee +
						   f->gas_cost + f->risk_premium);
		any |= k->eligible;
	}
	assert_true(strlen(res->reasoning) > 0 && strlen(res->reasoning) < sizeof(res->reasoning));
	assert_true(res->n_risks >= 0 && res->n_risks <= ROUTE_MAX_RISKS);
	for (c = 0; c < res->n_risks; c++)
		assert_true(strlen(res->risks[c]) > 0 &&
			    strlen(res->risks[c]) < sizeof(res->risks[0]));
	if (res->chosen < 0) {
		assert_int_equal(res->chosen, -1);
		assert_false(any);
		assert_string_equal(res->fee_percent, "");
		return;
	}
	assert_true(res->chosen < CHAIN_COUNT);
	assert_true(res->cand[res->chosen].eligible);
	for (c = 0; c < CHAIN_COUNT; c++) {
		const struct route_candidate *a = &res->cand[c], *b = &res->cand[res->chosen];
		bool beats;

		if (!a->eligible || c == res->chosen)
			continue;
		if (express)
			beats = a->settlement_seconds < b->settlement_seconds ||
				(a->settlement_seconds == b->settlement_seconds &&
				 (cost(a) < cost(b) || (cost(a) == cost(b) && c < res->chosen)));
		else
			beats = cost(a) < cost(b) ||
				(cost(a) == cost(b) &&
				 (a->settlement_seconds < b->settlement_seconds ||
				  (a->settlement_seconds == b->settlement_seconds &&
				   c < res->chosen)));
		assert_false(beats);
	}
	assert_string_not_equal(res->fee_percent, "");
}

/* route_decide must succeed; the invariants are checked on the way out. */
static void decide(const struct route_config *cfg, const struct route_market *m,
		   const struct route_request *req, struct route_result *res)
{
	assert_int_equal(route_decide(cfg, m, req, res), 0);
	check_result(res, req);
}

static bool has_risk(const struct route_result *res, const char *text)
{
	int i;

	for (i = 0; i < res->n_risks; i++)
		if (strstr(res->risks[i], text))
			return true;
	return false;
}

/* ---- names ---------------------------------------------------------------- */

static void test_names_round_trip(void **state)
{
	static const char *const chains[] = {"ethereum", "base", "polygon", "arbitrum", "solana"};
	static const char *const prios[] = {"standard", "express"};
	static const char *const tiers[] = {"standard", "premium", "enterprise"};
	static const char *const statuses[] = {"none", "minor", "major", "critical"};
	enum route_chain c;
	enum route_priority p;
	enum route_tier t;
	enum route_status s;
	int i;

	(void)state;
	for (i = 0; i < CHAIN_COUNT; i++) {
		assert_string_equal(route_chain_name((enum route_chain)i), chains[i]);
		assert_int_equal(route_chain_parse(chains[i], &c), 0);
		assert_int_equal(c, i);
	}
	for (i = 0; i < 2; i++) {
		assert_string_equal(route_priority_name((enum route_priority)i), prios[i]);
		assert_int_equal(route_priority_parse(prios[i], &p), 0);
		assert_int_equal(p, i);
	}
	for (i = 0; i < TIER_COUNT; i++) {
		assert_string_equal(route_tier_name((enum route_tier)i), tiers[i]);
		assert_int_equal(route_tier_parse(tiers[i], &t), 0);
		assert_int_equal(t, i);
	}
	for (i = 0; i < 4; i++) {
		assert_string_equal(route_status_name((enum route_status)i), statuses[i]);
		assert_int_equal(route_status_parse(statuses[i], &s), 0);
		assert_int_equal(s, i);
	}
	/* Out of range still prints. */
	assert_string_equal(route_chain_name(CHAIN_COUNT), "unknown");
	assert_string_equal(route_chain_name((enum route_chain) - 1), "unknown");
	assert_string_equal(route_priority_name((enum route_priority)2), "unknown");
	assert_string_equal(route_tier_name(TIER_COUNT), "unknown");
	assert_string_equal(route_status_name((enum route_status)4), "unknown");
}

static void test_names_reject(void **state)
{
	static const char *const bad[] = {
		"",	    "Ethereum",	 "ETHEREUM", " base",	 "base ",
		"eth",	    "sol",	 "Express",  "STANDARD", "fast",
		"premium!", "Minor",	 "MAJOR",    "none\n",	 "enterprise2",
		"unknown",  "critical ", "arb",	     "poly",
	};
	enum route_chain c = CHAIN_SOLANA;
	enum route_priority p = PRIORITY_EXPRESS;
	enum route_tier t = TIER_ENTERPRISE;
	enum route_status s = STATUS_CRITICAL;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(route_chain_parse(bad[i], &c), -1);
		assert_int_equal(route_priority_parse(bad[i], &p), -1);
		assert_int_equal(route_tier_parse(bad[i], &t), -1);
		assert_int_equal(route_status_parse(bad[i], &s), -1);
	}
	/* Failed parses leave the output alone. */
	assert_int_equal(c, CHAIN_SOLANA);
	assert_int_equal(p, PRIORITY_EXPRESS);
	assert_int_equal(t, TIER_ENTERPRISE);
	assert_int_equal(s, STATUS_CRITICAL);

	/* A name valid for another enum is not valid here. */
	assert_int_equal(route_chain_parse("standard", &c), -1);
	assert_int_equal(route_priority_parse("premium", &p), -1);
	assert_int_equal(route_tier_parse("express", &t), -1);
	assert_int_equal(route_status_parse("base", &s), -1);

	assert_int_equal(route_chain_parse(NULL, &c), -1);
	assert_int_equal(route_priority_parse(NULL, &p), -1);
	assert_int_equal(route_tier_parse(NULL, &t), -1);
	assert_int_equal(route_status_parse(NULL, &s), -1);
	assert_int_equal(route_chain_parse("base", NULL), -1);
	assert_int_equal(route_priority_parse("express", NULL), -1);
	assert_int_equal(route_tier_parse("premium", NULL), -1);
	assert_int_equal(route_status_parse("minor", NULL), -1);
}

/* ---- fee_percent: ceil(total x 100 / amount) to 4 decimals ----------------- */

static void test_fee_percent(void **state)
{
	static const struct {
		int64_t total, amount;
		const char *want;
	} cases[] = {
		{0, 100, "0.0000"},
		{0, 1, "0.0000"},
		{27001, 1000000, "2.7001"},   /* exact */
		{270001, 10000000, "2.7001"}, /* 2.70001 -> up */
		{162, 5000, "3.2400"},	      /* exact */
		{14, 333, "4.2043"},	      /* 4.204204... -> up */
		{1, 3, "33.3334"},	      /* 33.3333... -> up */
		{2, 3, "66.6667"},	      /* 66.6666... -> up */
		{1, 1000000, "0.0001"},	      /* exact */
		{1, 1000001, "0.0001"},	      /* 0.0000999... -> up */
		{1, INT64_MAX, "0.0001"},     /* tiny, never 0 */
		{1, 1, "100.0000"},
		{5, 1, "500.0000"},
		{INT64_MAX, INT64_MAX, "100.0000"},
		{100000000000000LL, 1, "10000000000000000.0000"}, /* 22 chars: fits */
	};
	char buf[24];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(buf, 'x', sizeof(buf));
		route_fee_percent(cases[i].total, cases[i].amount, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].want);
	}
}

static void test_fee_percent_invalid(void **state)
{
	char buf[24], small[5];

	(void)state;
	memset(buf, 'x', sizeof(buf));
	route_fee_percent(1, 0, buf, sizeof(buf));
	assert_string_equal(buf, "");
	memset(buf, 'x', sizeof(buf));
	route_fee_percent(1, -5, buf, sizeof(buf));
	assert_string_equal(buf, "");
	memset(buf, 'x', sizeof(buf));
	route_fee_percent(-1, 5, buf, sizeof(buf));
	assert_string_equal(buf, "");
	/* INT64_MAX / 1 = 922,337,203,685,477,580,700%: too long for 24 bytes, so
	 * "" rather than a truncated wrong number. */
	memset(buf, 'x', sizeof(buf));
	route_fee_percent(INT64_MAX, 1, buf, sizeof(buf));
	assert_string_equal(buf, "");
	/* "2.7001" needs 7 bytes. */
	memset(small, 'x', sizeof(small));
	route_fee_percent(27001, 1000000, small, sizeof(small));
	assert_string_equal(small, "");
	/* Nothing written at all without room. */
	small[0] = 'x';
	route_fee_percent(27001, 1000000, small, 0);
	assert_int_equal(small[0], 'x');
	route_fee_percent(27001, 1000000, NULL, 24);
}

/* ---- the USD value of the amount ------------------------------------------ */

static void test_usd_conversion(void **state)
{
	static const struct {
		const char *code;
		int64_t amount, want_cents;
	} cases[] = {
		{"USD", 5000, 5000}, /* $50.00 */
		{"USD", 1, 1},
		{"EUR", 10000, 10869},	  /* EUR 100 / 0.92 = $108.6956... -> down */
		{"EUR", 92, 100},	  /* EUR 0.92 = $1.00 exactly */
		{"JPY", 15120, 10000},	  /* 15,120 / 151.2 = $100.00 exactly (exponent 0) */
		{"JPY", 1, 0},		  /* 1 yen = $0.0066 -> 0 cents */
		{"JPY", 2, 1},		  /* 2 yen = $0.0132 -> 1 cent */
		{"KWD", 307, 100},	  /* 0.307 KWD (exponent 3) = $1.00 exactly */
		{"KWD", 1000, 325},	  /* 1 KWD / 0.307 = $3.2573... -> 325 */
		{"KWD", 3, 0},		  /* 0.003 KWD = $0.0097 -> 0 */
		{"USDC", 50000000, 5000}, /* 50 USDC (exponent 6) */
		{"USDC", 9999, 0},	  /* just under a cent */
		{"USDC", 10000, 1},	  /* exactly a cent */
		{"USDC", 1, 0},
		{"USD", INT64_MAX, INT64_MAX}, /* fits: rate 1, exponent 2 */
	};
	struct route_config cfg = config();
	struct route_market m = market();
	struct route_result res;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct route_request req =
			request(cases[i].code, cases[i].amount, PRIORITY_STANDARD);

		decide(&cfg, &m, &req, &res);
		assert_int_equal(res.amount_usd_cents, cases[i].want_cents);
	}

	/* A live rate rather than the built-in one: EUR at 0.919. 919 euro cents
	 * = $10.00 exactly. */
	{
		struct route_request req = request("EUR", 919, PRIORITY_STANDARD);

		req.from_per_usd = 9190000000LL;
		decide(&cfg, &m, &req, &res);
		assert_int_equal(res.amount_usd_cents, 1000);
	}
}

/* ---- network fees and their conversion (gas_cost) ------------------------- */

static void test_network_fees(void **state)
{
	struct route_config cfg = config();
	struct route_market m = market();
	struct route_result res;
	struct route_request req = request("USD", 5000, PRIORITY_STANDARD);
	int c;

	(void)state;
	decide(&cfg, &m, &req, &res);
	for (c = 0; c < CHAIN_COUNT; c++)
		assert_int_equal(res.cand[c].network_fee_usd_micros, fee_std[c]);
	req.priority = PRIORITY_EXPRESS;
	decide(&cfg, &m, &req, &res);
	for (c = 0; c < CHAIN_COUNT; c++)
		assert_int_equal(res.cand[c].network_fee_usd_micros, fee_fast[c]);

	/* Solana without a priority fee: 5,000 lamports x 142,100,000 / 1e9
	 * = 710.5 -> 711. With 1 micro-lamport per CU: ceil(50,000 / 1e6) = 1
	 * more lamport: 5,001 x 142,100,000 / 1e9 = 710.6421 -> 711. With 20
	 * (exactly 1 lamport): same 5,001. With 21: ceil(1.05) = 2 -> 5,002 x
	 * 0.1421 = 710.7842 -> 711; with 10,000: 5,500 x 0.1421 = 781.55 -> 782. */
	{
		static const struct {
			int64_t prio, want;
		} sol[] = {{0, 711}, {1, 711}, {20, 711}, {21, 711}, {10000, 782}};
		size_t i;

		req.priority = PRIORITY_STANDARD;
		for (i = 0; i < sizeof(sol) / sizeof(sol[0]); i++) {
			m.chain[CHAIN_SOLANA].gas_standard = sol[i].prio;
			decide(&cfg, &m, &req, &res);
			assert_int_equal(res.cand[CHAIN_SOLANA].network_fee_usd_micros,
					 sol[i].want);
		}
	}

	/* SOL at $1,000,000 (1e12 micro-USD): 5,050 x 1e12 / 1e9 = 5,050,000 exactly. */
	m = market();
	m.chain[CHAIN_SOLANA].native_usd_micros = 1000000000000LL;
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.cand[CHAIN_SOLANA].network_fee_usd_micros, 5050000);

	/* Zero gas price is a price: the EVM fee is 0 and gas_cost 0. */
	m = market();
	m.chain[CHAIN_BASE].gas_standard = 0;
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.cand[CHAIN_BASE].network_fee_usd_micros, 0);
	assert_int_equal(res.cand[CHAIN_BASE].fees.gas_cost, 0);
	assert_true(res.cand[CHAIN_BASE].eligible);
}

/* gas_cost = ceil(micros x from_per_usd x 10^exp / (1e6 x 1e10)), per currency:
 *
 *   USD (rate 1, exp 2): ceil(micros / 10,000)
 *     ethereum 3,472,549 / 10,000 = 347.25 -> 348; base 115,617 -> 11.56 -> 12;
 *     polygon 1,014 -> 1; arbitrum 7,802 -> 1; solana 718 -> 1
 *   EUR (0.92, exp 2): ceil(micros x 0.92 / 10,000)
 *     ethereum 3,194,745.08 / 10,000 -> 320; base 106,367.64 -> 11; others 1
 *   JPY (151.2, exp 0): ceil(micros x 151.2 / 1e6)
 *     ethereum 525,049,408.8 / 1e6 = 525.05 -> 526; base 17,481,290.4 -> 18;
 *     polygon 153,316.8 -> 1; arbitrum 1,179,662.4 -> 2; solana 108,561.6 -> 1
 *   KWD (0.307, exp 3): ceil(micros x 0.307 / 1,000)
 *     ethereum 1,066,072.543 / 1,000 -> 1,067; base 35,494.419 -> 36;
 *     polygon 311.298 -> 1; arbitrum 2,395.214 -> 3; solana 220.426 -> 1
 *   USDC (1, exp 6): exactly the micro-USD fee. */
static void test_gas_cost_by_currency(void **state)
{
	static const struct {
		const char *code;
		int64_t amount;
		int64_t want[CHAIN_COUNT];
	} cases[] = {
		{"USD", 5000, {348, 12, 1, 1, 1}},
		{"EUR", 5000, {320, 11, 1, 1, 1}},
		{"JPY", 7560, {526, 18, 1, 2, 1}},
		{"KWD", 15350, {1067, 36, 1, 3, 1}},
		{"USDC", 50000000, {3472549, 115617, 1014, 7802, 718}},
	};
	struct route_config cfg = config();
	struct route_market m = market();
	struct route_result res;
	size_t i;
	int c;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct route_request req =
			request(cases[i].code, cases[i].amount, PRIORITY_STANDARD);

		decide(&cfg, &m, &req, &res);
		for (c = 0; c < CHAIN_COUNT; c++)
			assert_int_equal(res.cand[c].fees.gas_cost, cases[i].want[c]);
	}
}

/* ---- choosing a chain ----------------------------------------------------- */

/* $50 USD, standard. Fees in cents on 5,000: platform ceil(5,000 x 200 / 1e4)
 * = 100, onramp 35, offramp 25. gas_cost (above) and risk premium ceil(5,000 x
 * bps / 1e4):
 *
 *   chain     gas  risk bps  risk  gas+risk  settles  total
 *   ethereum  348     0       0      348      300      508
 *   base       12     1       1       13       60      173
 *   polygon     1     2       1        2      300      162
 *   arbitrum    1     1       1        2       60      162
 *   solana      1     2       1        2       20      162
 *
 * At $50 every fee rounds up to a whole cent, so polygon, arbitrum and solana
 * tie at 2 cents; the tie goes to the shortest settlement: solana (20 s). */
static void test_choose_50_usd_standard(void **state)
{
	static const int64_t want_gas[CHAIN_COUNT] = {348, 12, 1, 1, 1};
	static const int64_t want_risk[CHAIN_COUNT] = {0, 1, 1, 1, 1};
	static const int64_t want_total[CHAIN_COUNT] = {508, 173, 162, 162, 162};
	static const int want_settle[CHAIN_COUNT] = {300, 60, 300, 60, 20};
	static const int want_sec[CHAIN_COUNT] = {1, 2, 3, 2, 3};
	struct route_config cfg = config();
	struct route_market m = market();
	struct route_request req = request("USD", 5000, PRIORITY_STANDARD);
	struct route_result res;
	int c;

	(void)state;
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.amount_usd_cents, 5000);
	for (c = 0; c < CHAIN_COUNT; c++) {
		const struct route_candidate *k = &res.cand[c];

		assert_true(k->eligible);
		assert_int_equal(k->security_tier, want_sec[c]);
		assert_int_equal(k->settlement_seconds, want_settle[c]);
		assert_int_equal(k->fees.platform_fee, 100);
		assert_int_equal(k->fees.onramp_fee, 35);
		assert_int_equal(k->fees.offramp_fee, 25);
		assert_int_equal(k->fees.gas_cost, want_gas[c]);
		assert_int_equal(k->fees.risk_premium, want_risk[c]);
		assert_int_equal(k->fees.total, want_total[c]);
	}
	assert_int_equal(res.chosen, CHAIN_SOLANA);
	/* 162 / 5,000 = 3.24% exactly. Solana's fee 718 micro-USD shows as $0.0008. */
	assert_string_equal(res.fee_percent, "3.2400");
	assert_string_equal(res.reasoning, "solana: cheapest eligible chain for a $50.00 standard "
					   "transfer (network fee $0.0008, settles in ~20 s)");
	assert_int_equal(res.n_risks, 1);
	assert_string_equal(res.risks[0], "solana is security tier 3");
}

/* With solana out the tie is polygon (300 s) vs arbitrum (60 s): arbitrum.
 * With solana and arbitrum out: polygon (2) beats base (13). */
static void test_choose_50_usd_ties(void **state)
{
	struct route_config cfg = config();
	struct route_market m = market();
	struct route_request req = request("USD", 5000, PRIORITY_STANDARD);
	struct route_result res;

	(void)state;
	set_unavailable(&m, CHAIN_SOLANA, "rpc down");
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.chosen, CHAIN_ARBITRUM);
	assert_int_equal(res.n_risks, 0);
	assert_string_equal(res.reasoning,
			    "arbitrum: cheapest eligible chain for a $50.00 standard "
			    "transfer (network fee $0.0079, settles in ~60 s)");

	set_unavailable(&m, CHAIN_ARBITRUM, "sequencer down");
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.chosen, CHAIN_POLYGON);
	assert_true(has_risk(&res, "polygon is security tier 3"));
	assert_string_equal(res.reasoning, "polygon: cheapest eligible chain for a $50.00 standard "
					   "transfer (network fee $0.0011, settles in ~300 s)");

	/* Equal cost and equal settlement: chain order. With zero gas on both,
	 * base and arbitrum cost 0 + 1 = 1 and settle in 60 s -> base, which comes
	 * first. */
	m = market();
	set_unavailable(&m, CHAIN_SOLANA, "rpc down");
	set_unavailable(&m, CHAIN_POLYGON, "rpc down");
	m.chain[CHAIN_BASE].gas_standard = 0;
	m.chain[CHAIN_ARBITRUM].gas_standard = 0;
	decide(&cfg, &m, &req, &res);
	assert_int_equal(cost(&res.cand[CHAIN_BASE]), 1);
	assert_int_equal(cost(&res.cand[CHAIN_ARBITRUM]), 1);
	assert_int_equal(res.chosen, CHAIN_BASE);
}

/* $50 in USDC (exponent 6) prices to the micro-USD, so the tie of the cent
 * rounding disappears. Risk premium = 50,000,000 x bps / 1e4:
 *   ethereum 3,472,549 + 0 = 3,472,549; base 115,617 + 5,000 = 120,617;
 *   polygon 1,014 + 10,000 = 11,014; arbitrum 7,802 + 5,000 = 12,802;
 *   solana 718 + 10,000 = 10,718 -> solana, strictly cheapest. */
static void test_choose_50_usdc_standard(void **state)
{
	static const int64_t want_cost[CHAIN_COUNT] = {3472549, 120617, 11014, 12802, 10718};
	struct route_config cfg = config();
	struct route_market m = market();
	struct route_request req = request("USDC", 50000000, PRIORITY_STANDARD);
	struct route_result res;
	int c;

	(void)state;
	decide(&cfg, &m, &req, &res);
	for (c = 0; c < CHAIN_COUNT; c++)
		assert_int_equal(cost(&res.cand[c]), want_cost[c]);
	assert_int_equal(res.chosen, CHAIN_SOLANA);
	/* platform 1,000,000 + onramp 350,000 + offramp 250,000 + 718 + 10,000
	 * = 1,610,718 of 50,000,000 = 3.221436% -> 3.2215 */
	assert_int_equal(res.cand[CHAIN_SOLANA].fees.total, 1610718);
	assert_string_equal(res.fee_percent, "3.2215");
}

/* $5,000 USD standard (500,000 cents): the risk premium now outweighs gas.
 *   ethereum 348 + 0 = 348; base 12 + 50 = 62; polygon 1 + 100 = 101;
 *   arbitrum 1 + 50 = 51; solana 1 + 100 = 101 -> arbitrum, an L2. */
static void test_choose_5000_usd_standard(void **state)
{
	static const int64_t want_cost[CHAIN_COUNT] = {348, 62, 101, 51, 101};
	struct route_config cfg = config();
	struct route_market m = market();
	struct route_request req = request("USD", 500000, PRIORITY_STANDARD);
	struct route_result res;
	int c;

	(void)state;
	decide(&cfg, &m, &req, &res);
	for (c = 0; c < CHAIN_COUNT; c++)
		assert_int_equal(cost(&res.cand[c]), want_cost[c]);
	assert_int_equal(res.chosen, CHAIN_ARBITRUM);
	assert_int_equal(res.n_risks, 0);
	/* 10,000 + 3,500 + 2,500 + 51 = 16,051 of 500,000 = 3.2102% exactly. */
	assert_int_equal(res.cand[CHAIN_ARBITRUM].fees.total, 16051);
	assert_string_equal(res.fee_percent, "3.2102");
}

/* $50 express: settlement (express) ethereum 90, base 20, polygon 120,
 * arbitrum 20, solana 10 -> solana, whatever it costs. Its fast fee is 747
 * micro-USD -> 1 cent gas, 1 cent risk. */
static void test_choose_50_usd_express(void **state)
{
	static const int want_settle[CHAIN_COUNT] = {90, 20, 120, 20, 10};
	struct route_config cfg = config();
	struct route_market m = market();
	struct route_request req = request("USD", 5000, PRIORITY_EXPRESS);
	struct route_result res;
	int c;

	(void)state;
	decide(&cfg, &m, &req, &res);
	for (c = 0; c < CHAIN_COUNT; c++)
		assert_int_equal(res.cand[c].settlement_seconds, want_settle[c]);
	assert_int_equal(res.chosen, CHAIN_SOLANA);
	assert_string_equal(res.reasoning, "solana: fastest eligible chain for a $50.00 express "
					   "transfer (settles in ~10 s, network fee $0.0008)");
	/* Still the fastest when it is by far the dearest. */
	m.chain[CHAIN_SOLANA].gas_fast = 100000000;
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.chosen, CHAIN_SOLANA);
	assert_true(cost(&res.cand[CHAIN_SOLANA]) > cost(&res.cand[CHAIN_BASE]));

	/* Without solana, base and arbitrum tie at 20 s: fast gas base 212,978
	 * -> 22 cents + 1 = 23, arbitrum 15,603 -> 2 + 1 = 3 -> arbitrum. */
	m = market();
	set_unavailable(&m, CHAIN_SOLANA, "rpc down");
	decide(&cfg, &m, &req, &res);
	assert_int_equal(cost(&res.cand[CHAIN_BASE]), 23);
	assert_int_equal(cost(&res.cand[CHAIN_ARBITRUM]), 3);
	assert_int_equal(res.chosen, CHAIN_ARBITRUM);
}

/* $1,000,000 (100,000,000 cents) >= $500,000: ethereum only.
 * Fees: platform 2,000,000, onramp 700,000, offramp 500,000, gas 348, risk 0
 * = 3,200,348 of 100,000,000 = 3.200348% -> 3.2004. */
static void test_choose_large_ethereum(void **state)
{
	struct route_config cfg = config();
	struct route_market m = market();
	struct route_request req = request("USD", 100000000, PRIORITY_STANDARD);
	struct route_result res;
	int c;

	(void)state;
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.chosen, CHAIN_ETHEREUM);
	assert_non_null(strstr(res.reasoning, "L1"));
	assert_string_equal(res.reasoning,
			    "ethereum L1 for a $1,000,000.00 standard transfer "
			    "(security tier 1, network fee $3.4726, settles in ~300 s)");
	assert_int_equal(res.cand[CHAIN_ETHEREUM].fees.total, 3200348);
	assert_string_equal(res.fee_percent, "3.2004");
	assert_int_equal(res.n_risks, 0);
	assert_string_equal(res.cand[CHAIN_BASE].why, "security tier 2 not allowed for $500,000.00 "
						      "and above while ethereum L1 is available");
	assert_string_equal(res.cand[CHAIN_ARBITRUM].why, res.cand[CHAIN_BASE].why);
	assert_string_equal(res.cand[CHAIN_POLYGON].why,
			    "security tier 3 not allowed for $50,000.00 and above");
	assert_string_equal(res.cand[CHAIN_SOLANA].why, res.cand[CHAIN_POLYGON].why);
	/* Ineligible candidates are still priced. */
	for (c = 0; c < CHAIN_COUNT; c++)
		assert_true(res.cand[c].fees.total > 0);
	assert_int_equal(res.cand[CHAIN_ARBITRUM].fees.gas_cost, 1);

	/* Express too: ethereum is the only eligible chain. */
	req.priority = PRIORITY_EXPRESS;
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.chosen, CHAIN_ETHEREUM);
	assert_non_null(strstr(res.reasoning, "L1"));

	/* The threshold itself counts as large: exactly $500,000. */
	req = request("USD", 50000000, PRIORITY_STANDARD);
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.chosen, CHAIN_ETHEREUM);
	assert_false(res.cand[CHAIN_ARBITRUM].eligible);
	/* One cent under it is mid: ethereum 348 beats arbitrum 1 + 4,999.9999 -> 5,001. */
	req.amount = 49999999;
	decide(&cfg, &m, &req, &res);
	assert_true(res.cand[CHAIN_ARBITRUM].eligible);
	assert_false(res.cand[CHAIN_POLYGON].eligible);
}

/* $1,000,000 with ethereum unavailable: tier 2 chains become eligible.
 * base 12 + 10,000 = 10,012, arbitrum 1 + 10,000 = 10,001 -> arbitrum. */
static void test_choose_large_off_l1(void **state)
{
	struct route_config cfg = config();
	struct route_market m = market();
	struct route_request req = request("USD", 100000000, PRIORITY_STANDARD);
	struct route_result res;

	(void)state;
	set_unavailable(&m, CHAIN_ETHEREUM, "gas 250 gwei above the 200 gwei ceiling");
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.chosen, CHAIN_ARBITRUM);
	assert_false(res.cand[CHAIN_ETHEREUM].eligible);
	assert_string_equal(res.cand[CHAIN_ETHEREUM].why,
			    "gas 250 gwei above the 200 gwei ceiling");
	assert_true(res.cand[CHAIN_BASE].eligible);
	assert_false(res.cand[CHAIN_POLYGON].eligible);
	assert_false(res.cand[CHAIN_SOLANA].eligible);
	assert_int_equal(res.n_risks, 1);
	assert_string_equal(res.risks[0], "large transfer routed off ethereum L1: gas 250 gwei "
					  "above the 200 gwei ceiling");
	assert_string_equal(res.reasoning,
			    "arbitrum: ethereum L1 is not available for a $1,000,000.00 standard "
			    "transfer (gas 250 gwei above the 200 gwei ceiling), so the cheapest "
			    "security tier 2 chain (network fee $0.0079, settles in ~60 s)");

	/* Express: base and arbitrum both 20 s; arbitrum's 2 + 10,000 beats base's 22 + 10,000. */
	req.priority = PRIORITY_EXPRESS;
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.chosen, CHAIN_ARBITRUM);
	assert_true(has_risk(&res, "large transfer routed off ethereum L1"));
	assert_non_null(strstr(res.reasoning, "fastest security tier 2 chain"));

	/* Ethereum without a usable gas price counts as unavailable too. */
	m = market();
	m.chain[CHAIN_ETHEREUM].gas_standard = -1;
	req.priority = PRIORITY_STANDARD;
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.chosen, CHAIN_ARBITRUM);
	assert_string_equal(res.cand[CHAIN_ETHEREUM].why, "no price for ETH");
	assert_string_equal(res.risks[0],
			    "large transfer routed off ethereum L1: no price for ETH");

	/* Without an ETH price every ETH chain is out, and tier 3 is not allowed:
	 * no route, and the reasoning names each chain's reason. */
	m = market();
	m.chain[CHAIN_ETHEREUM].native_usd_micros = 0;
	m.chain[CHAIN_BASE].native_usd_micros = 0;
	m.chain[CHAIN_ARBITRUM].native_usd_micros = 0;
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.chosen, -1);
	assert_int_equal(res.n_risks, 0);
	assert_string_equal(
		res.reasoning,
		"no route: no eligible chain for a $1,000,000.00 standard transfer "
		"(ethereum: no price for ETH; base: no price for ETH; polygon: security "
		"tier 3 not allowed for $50,000.00 and above; arbitrum: no price for ETH; "
		"solana: security tier 3 not allowed for $50,000.00 and above)");
}

/* $100,000 (10,000,000 cents) is mid: tier <= 2, never polygon or solana.
 * Standard: ethereum 348 + 0, base 12 + 1,000, arbitrum 1 + 1,000 ->
 * ethereum. Express: base and arbitrum tie at 20 s; base 22 + 1,000,
 * arbitrum 2 + 1,000 -> arbitrum. */
static void test_choose_mid(void **state)
{
	struct route_config cfg = config();
	struct route_market m = market();
	struct route_request req = request("USD", 10000000, PRIORITY_STANDARD);
	struct route_result res;
	int c, p;

	(void)state;
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.chosen, CHAIN_ETHEREUM);
	assert_string_equal(res.reasoning, "ethereum: cheapest security tier 1-2 chain for a "
					   "$100,000.00 standard transfer (network fee $3.4726, "
					   "settles in ~300 s)");
	req.priority = PRIORITY_EXPRESS;
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.chosen, CHAIN_ARBITRUM);

	/* Even when polygon and solana are by far the cheapest and fastest. */
	for (p = PRIORITY_STANDARD; p <= PRIORITY_EXPRESS; p++) {
		m = market();
		m.chain[CHAIN_ETHEREUM].gas_standard = m.chain[CHAIN_ETHEREUM].gas_fast =
			5000 * GWEI;
		m.chain[CHAIN_BASE].gas_standard = m.chain[CHAIN_BASE].gas_fast = 5000 * GWEI;
		m.chain[CHAIN_ARBITRUM].gas_standard = m.chain[CHAIN_ARBITRUM].gas_fast =
			5000 * GWEI;
		m.chain[CHAIN_POLYGON].gas_standard = m.chain[CHAIN_POLYGON].gas_fast = 0;
		m.chain[CHAIN_SOLANA].gas_standard = m.chain[CHAIN_SOLANA].gas_fast = 0;
		req.priority = (enum route_priority)p;
		for (c = 0; c < CHAIN_COUNT; c++) {
			decide(&cfg, &m, &req, &res);
			assert_true(res.chosen != CHAIN_POLYGON && res.chosen != CHAIN_SOLANA);
			assert_false(res.cand[CHAIN_POLYGON].eligible);
			assert_false(res.cand[CHAIN_SOLANA].eligible);
			/* Knock out one tier 1-2 chain at a time. */
			if (c == CHAIN_ETHEREUM || c == CHAIN_BASE || c == CHAIN_ARBITRUM)
				set_unavailable(&m, (enum route_chain)c, "down");
		}
		/* All three out: no route rather than a tier 3 chain. */
		decide(&cfg, &m, &req, &res);
		assert_int_equal(res.chosen, -1);
		assert_non_null(strstr(res.reasoning, "no eligible chain for a $100,000.00"));
	}

	/* $50,000 exactly is mid; one cent less is not. */
	m = market();
	req = request("USD", 5000000, PRIORITY_EXPRESS);
	decide(&cfg, &m, &req, &res);
	assert_false(res.cand[CHAIN_SOLANA].eligible);
	req.amount = 4999999;
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.chosen, CHAIN_SOLANA);

	/* Mid is judged in USD: 15,120,000 yen = $100,000. */
	req = request("JPY", 15120000, PRIORITY_EXPRESS);
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.amount_usd_cents, 10000000);
	assert_false(res.cand[CHAIN_SOLANA].eligible);
	assert_int_equal(res.chosen, CHAIN_ARBITRUM);
}

/* ---- provider status ------------------------------------------------------ */

static void test_provider_outage(void **state)
{
	static const struct {
		enum route_status s;
		const char *reasoning, *why;
	} cases[] = {
		{STATUS_MAJOR,
		 "no route: provider circle reports a major outage (status indicator major)",
		 "provider circle reports a major outage"},
		{STATUS_CRITICAL,
		 "no route: provider circle reports a critical outage (status indicator critical)",
		 "provider circle reports a critical outage"},
	};
	static const int64_t amounts[] = {1, 5000, 10000000, 100000000};
	struct route_config cfg = config();
	struct route_result res;
	size_t i, j;
	int c, p;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (j = 0; j < sizeof(amounts) / sizeof(amounts[0]); j++) {
			for (p = PRIORITY_STANDARD; p <= PRIORITY_EXPRESS; p++) {
				struct route_market m = market();
				struct route_request req =
					request("USD", amounts[j], (enum route_priority)p);

				m.provider = cases[i].s;
				decide(&cfg, &m, &req, &res);
				assert_int_equal(res.chosen, -1);
				assert_string_equal(res.reasoning, cases[i].reasoning);
				assert_string_equal(res.fee_percent, "");
				for (c = 0; c < CHAIN_COUNT; c++) {
					assert_false(res.cand[c].eligible);
					assert_string_equal(res.cand[c].why, cases[i].why);
					/* Still priced, for display. */
					assert_true(res.cand[c].fees.total > 0);
				}
			}
		}
	}

	/* A chain's own reason wins over the provider's. */
	{
		struct route_market m = market();
		struct route_request req = request("USD", 5000, PRIORITY_STANDARD);

		m.provider = STATUS_MAJOR;
		set_unavailable(&m, CHAIN_POLYGON, "rpc down");
		decide(&cfg, &m, &req, &res);
		assert_string_equal(res.cand[CHAIN_POLYGON].why, "rpc down");
		assert_string_equal(res.cand[CHAIN_BASE].why,
				    "provider circle reports a major outage");
	}

	/* The provider's name comes from the market; "circle" when unset. */
	{
		struct route_market m = market();
		struct route_request req = request("USD", 5000, PRIORITY_STANDARD);

		m.provider = STATUS_CRITICAL;
		m.provider_name = "acme";
		decide(&cfg, &m, &req, &res);
		assert_non_null(strstr(res.reasoning, "provider acme reports a critical outage"));
		m.provider_name = NULL;
		decide(&cfg, &m, &req, &res);
		assert_non_null(strstr(res.reasoning, "provider circle"));
	}
}

/* Minor: routing goes on with provider_minor_bps (5) added to every chain's
 * risk. $50 USD: risk = ceil(5,000 x bps / 1e4):
 *   ethereum 0+5 -> 2.5 -> 3; base 1+5 -> 3; polygon 2+5 -> 3.5 -> 4;
 *   arbitrum 1+5 -> 3; solana 2+5 -> 4.
 *   gas+risk: ethereum 351, base 15, polygon 5, arbitrum 4, solana 5
 *   -> arbitrum now wins outright. */
static void test_provider_minor(void **state)
{
	static const int64_t want_risk[CHAIN_COUNT] = {3, 3, 4, 3, 4};
	struct route_config cfg = config();
	struct route_market m = market();
	struct route_request req = request("USD", 5000, PRIORITY_STANDARD);
	struct route_result res;
	int c;

	(void)state;
	m.provider = STATUS_MINOR;
	decide(&cfg, &m, &req, &res);
	for (c = 0; c < CHAIN_COUNT; c++) {
		assert_true(res.cand[c].eligible);
		assert_int_equal(res.cand[c].fees.risk_premium, want_risk[c]);
	}
	assert_int_equal(res.chosen, CHAIN_ARBITRUM);
	assert_int_equal(res.n_risks, 1);
	assert_string_equal(res.risks[0], "provider circle degraded (status indicator minor)");

	/* On USDC the 5 bps show exactly: 50,000,000 x 5 / 1e4 = 25,000 more. */
	req = request("USDC", 50000000, PRIORITY_STANDARD);
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.cand[CHAIN_ETHEREUM].fees.risk_premium, 25000);
	assert_int_equal(res.cand[CHAIN_BASE].fees.risk_premium, 30000);
	assert_int_equal(res.cand[CHAIN_SOLANA].fees.risk_premium, 35000);
	/* solana 718 + 35,000 stays cheapest (polygon 36,014; arbitrum 37,802). */
	assert_int_equal(res.chosen, CHAIN_SOLANA);
	assert_int_equal(res.n_risks, 2);
	assert_string_equal(res.risks[0], "provider circle degraded (status indicator minor)");
	assert_string_equal(res.risks[1], "solana is security tier 3");

	/* Large and off L1 while degraded: both risks, provider first. */
	req = request("USD", 100000000, PRIORITY_STANDARD);
	set_unavailable(&m, CHAIN_ETHEREUM, "gas above ceiling");
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.chosen, CHAIN_ARBITRUM);
	assert_int_equal(res.n_risks, 2);
	assert_string_equal(res.risks[0], "provider circle degraded (status indicator minor)");
	assert_string_equal(res.risks[1],
			    "large transfer routed off ethereum L1: gas above ceiling");

	/* STATUS_NONE adds nothing. */
	m = market();
	req = request("USD", 5000, PRIORITY_STANDARD);
	decide(&cfg, &m, &req, &res);
	assert_false(has_risk(&res, "degraded"));
	assert_int_equal(res.cand[CHAIN_ETHEREUM].fees.risk_premium, 0);
}

/* ---- availability ----------------------------------------------------------- */

static void test_each_chain_unavailable(void **state)
{
	static const int64_t amounts[] = {1, 5000, 500000, 10000000, 100000000};
	struct route_config cfg = config();
	struct route_result res;
	size_t j;
	int c, p, t;

	(void)state;
	for (c = 0; c < CHAIN_COUNT; c++) {
		for (j = 0; j < sizeof(amounts) / sizeof(amounts[0]); j++) {
			for (p = PRIORITY_STANDARD; p <= PRIORITY_EXPRESS; p++) {
				for (t = 0; t < TIER_COUNT; t++) {
					struct route_market m = market();
					struct route_request req =
						request("USD", amounts[j], (enum route_priority)p);

					req.tier = (enum route_tier)t;
					set_unavailable(&m, (enum route_chain)c, "test outage");
					decide(&cfg, &m, &req, &res);
					assert_true(res.chosen != c);
					assert_true(res.chosen >=
						    0); /* another chain always fits */
					assert_false(res.cand[c].eligible);
					assert_string_equal(res.cand[c].why, "test outage");
					/* Unavailable chains still get their price computed. */
					assert_true(res.cand[c].network_fee_usd_micros > 0);
				}
			}
		}
	}
}

static void test_all_unavailable(void **state)
{
	struct route_config cfg = config();
	struct route_market m = market();
	struct route_request req = request("USD", 5000, PRIORITY_EXPRESS);
	struct route_result res;
	int c;

	(void)state;
	for (c = 0; c < CHAIN_COUNT; c++)
		set_unavailable(&m, (enum route_chain)c, "down");
	m.chain[CHAIN_SOLANA].why[0] = '\0'; /* no reason given: one is made up */
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.chosen, -1);
	assert_string_equal(res.reasoning,
			    "no route: no eligible chain for a $50.00 express transfer (ethereum: "
			    "down; base: down; polygon: down; arbitrum: down; solana: solana "
			    "unavailable)");
	assert_string_equal(res.fee_percent, "");
	assert_int_equal(res.n_risks, 0);
}

/* No price (native price 0 or negative, gas price negative) makes a chain
 * ineligible, with every fee left at 0 rather than a misleading total. */
static void test_no_price(void **state)
{
	struct route_config cfg = config();
	struct route_market m;
	struct route_request req = request("USD", 5000, PRIORITY_STANDARD);
	struct route_result res;

	(void)state;
	m = market();
	m.chain[CHAIN_SOLANA].native_usd_micros = 0;
	decide(&cfg, &m, &req, &res);
	assert_false(res.cand[CHAIN_SOLANA].eligible);
	assert_string_equal(res.cand[CHAIN_SOLANA].why, "no price for SOL");
	assert_int_equal(res.cand[CHAIN_SOLANA].fees.total, 0);
	assert_int_equal(res.cand[CHAIN_SOLANA].network_fee_usd_micros, 0);
	assert_int_equal(res.chosen, CHAIN_ARBITRUM);

	m = market();
	m.chain[CHAIN_POLYGON].native_usd_micros = -520000;
	decide(&cfg, &m, &req, &res);
	assert_string_equal(res.cand[CHAIN_POLYGON].why, "no price for POL");

	/* A negative gas price only matters for the priority that uses it. */
	m = market();
	m.chain[CHAIN_BASE].gas_fast = -1;
	decide(&cfg, &m, &req, &res);
	assert_true(res.cand[CHAIN_BASE].eligible);
	req.priority = PRIORITY_EXPRESS;
	decide(&cfg, &m, &req, &res);
	assert_false(res.cand[CHAIN_BASE].eligible);
	assert_string_equal(res.cand[CHAIN_BASE].why, "no price for ETH");
	assert_int_equal(res.cand[CHAIN_BASE].fees.total, 0);

	/* Unavailable and unpriced: the market's reason is the one shown. */
	m = market();
	m.chain[CHAIN_ETHEREUM].native_usd_micros = 0;
	set_unavailable(&m, CHAIN_ETHEREUM, "beaconcha.in unreachable");
	decide(&cfg, &m, &req, &res);
	assert_string_equal(res.cand[CHAIN_ETHEREUM].why, "beaconcha.in unreachable");
}

/* why is a fixed char[96] someone else fills: one without a NUL must be
 * copied without reading past it, and long texts are cut to fit. */
static void test_long_reasons_truncated(void **state)
{
	struct route_config cfg = config();
	struct route_market m = market();
	struct route_request req = request("USD", 100000000, PRIORITY_STANDARD);
	struct route_result res;
	int c;

	(void)state;
	for (c = 0; c < CHAIN_COUNT; c++) {
		m.chain[c].unavailable = c != CHAIN_BASE;
		memset(m.chain[c].why, 'x', sizeof(m.chain[c].why)); /* no NUL at all */
	}
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.chosen, CHAIN_BASE);
	assert_int_equal(strlen(res.cand[CHAIN_ETHEREUM].why), sizeof(m.chain[0].why));
	/* "large transfer routed off ethereum L1: " (39) + 96 x's = 135 > 127. */
	assert_int_equal(res.n_risks, 1);
	assert_int_equal(strlen(res.risks[0]), sizeof(res.risks[0]) - 1);
	assert_non_null(strstr(res.risks[0], "large transfer routed off ethereum L1: xxx"));

	/* No route: four 96-char reasons do not fit 384 bytes; cut, terminated. */
	m.chain[CHAIN_BASE].unavailable = true;
	req.amount = 5000;
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.chosen, -1);
	assert_int_equal(strlen(res.reasoning), sizeof(res.reasoning) - 1);
}

/* ---- fees --------------------------------------------------------------------- */

/* Tier discounts come off the platform fee only. $50 USD: platform bps
 * standard 200 -> 100 cents, premium 150 -> 75, enterprise 100 -> 50. A
 * discount above the platform bps floors at 0 rather than paying out. */
static void test_tier_discounts(void **state)
{
	static const int64_t want_platform[TIER_COUNT] = {100, 75, 50};
	struct route_config cfg = config();
	struct route_market m = market();
	struct route_request req = request("USD", 5000, PRIORITY_STANDARD);
	struct route_result res;
	int t, c;

	(void)state;
	for (t = 0; t < TIER_COUNT; t++) {
		req.tier = (enum route_tier)t;
		decide(&cfg, &m, &req, &res);
		for (c = 0; c < CHAIN_COUNT; c++) {
			assert_int_equal(res.cand[c].fees.platform_fee, want_platform[t]);
			assert_int_equal(res.cand[c].fees.onramp_fee, 35);
			assert_int_equal(res.cand[c].fees.offramp_fee, 25);
		}
		/* Solana total: platform + 35 + 25 + 1 + 1. */
		assert_int_equal(res.cand[CHAIN_SOLANA].fees.total, want_platform[t] + 62);
	}
	/* enterprise: 50 + 62 = 112 of 5,000 = 2.24%. */
	assert_string_equal(res.fee_percent, "2.2400");

	cfg.tier_discount_bps[TIER_PREMIUM] = 500;    /* > 200 */
	cfg.tier_discount_bps[TIER_ENTERPRISE] = 200; /* == 200 */
	for (t = TIER_PREMIUM; t <= TIER_ENTERPRISE; t++) {
		req.tier = (enum route_tier)t;
		decide(&cfg, &m, &req, &res);
		assert_int_equal(res.cand[CHAIN_SOLANA].fees.platform_fee, 0);
		assert_int_equal(res.cand[CHAIN_SOLANA].fees.total, 62);
	}
	/* Discount 199 leaves 1 bps: ceil(5,000 / 1e4) = 1. */
	cfg.tier_discount_bps[TIER_PREMIUM] = 199;
	req.tier = TIER_PREMIUM;
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.cand[CHAIN_SOLANA].fees.platform_fee, 1);
}

/* Every fee rounds up on its own.
 *   amount 1 cent: platform ceil(0.02) = 1, onramp ceil(0.007) = 1, offramp
 *     ceil(0.005) = 1; risk: ethereum 0 bps -> 0, others ceil(0.0001 or
 *     0.0002) = 1; gas as at $50 (348, 12, 1, 1, 1).
 *     solana: 1+1+1+1+1 = 5 = 500% of the amount.
 *   amount 333 cents: platform ceil(6.66) = 7, onramp ceil(2.331) = 3,
 *     offramp ceil(1.665) = 2; risk ceil(0.0333) = 1 (1 bps) or ceil(0.0666)
 *     = 1 (2 bps), 0 on ethereum; solana total 7+3+2+1+1 = 14 of 333 =
 *     4.204204...% -> 4.2043. */
static void test_rounding_up(void **state)
{
	static const struct {
		int64_t amount, platform, onramp, offramp;
		int64_t total[CHAIN_COUNT];
		const char *percent;
	} cases[] = {
		{1, 1, 1, 1, {351, 16, 5, 5, 5}, "500.0000"},
		{333, 7, 3, 2, {360, 25, 14, 14, 14}, "4.2043"},
		/* 10,001 cents: 200.02 -> 201, 70.007 -> 71, 50.005 -> 51;
		 * risk 1.0001 -> 2 (1 bps), 2.0002 -> 3 (2 bps). gas+risk: arbitrum
		 * 1 + 2 = 3 is cheapest; 201+71+51+1+2 = 326 of 10,001 = 3.25967...%. */
		{10001, 201, 71, 51, {671, 337, 327, 326, 327}, "3.2597"},
	};
	struct route_config cfg = config();
	struct route_market m = market();
	struct route_result res;
	size_t i;
	int c;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct route_request req = request("USD", cases[i].amount, PRIORITY_STANDARD);

		decide(&cfg, &m, &req, &res);
		for (c = 0; c < CHAIN_COUNT; c++) {
			assert_int_equal(res.cand[c].fees.platform_fee, cases[i].platform);
			assert_int_equal(res.cand[c].fees.onramp_fee, cases[i].onramp);
			assert_int_equal(res.cand[c].fees.offramp_fee, cases[i].offramp);
			assert_int_equal(res.cand[c].fees.total, cases[i].total[c]);
		}
		assert_string_equal(res.fee_percent, cases[i].percent);
	}
}

/* ---- overflow and bad arguments ---------------------------------------------- */

static void test_overflow(void **state)
{
	static const struct currency huge = {"XXX", 18, INT64_MAX};
	struct route_config cfg = config();
	struct route_market m = market();
	struct route_request req;
	struct route_result res;

	(void)state;
	/* INT64_MAX US cents is representable: $92,233,720,368,547,758.07, large,
	 * so ethereum. Fees: ceil(INT64_MAX x 200 / 1e4) + x70 + x50 + 348 =
	 * 295,147,905,179,353,176, fee percent 3.2001 (3.2000000000000000377 up). */
	req = request("USD", INT64_MAX, PRIORITY_STANDARD);
	decide(&cfg, &m, &req, &res);
	assert_int_equal(res.chosen, CHAIN_ETHEREUM);
	assert_int_equal(res.amount_usd_cents, INT64_MAX);
	assert_int_equal(res.cand[CHAIN_ETHEREUM].fees.total, 295147905179353176LL);
	assert_string_equal(res.fee_percent, "3.2001");

	/* INT64_MAX euro cents are worth more than INT64_MAX US cents (/ 0.92). */
	req = request("EUR", INT64_MAX, PRIORITY_STANDARD);
	assert_int_equal(route_decide(&cfg, &m, &req, &res), -1);

	/* Yen at 1 per USD: INT64_MAX x 100 cents. */
	req = request("JPY", INT64_MAX, PRIORITY_STANDARD);
	req.from_per_usd = SCALE;
	assert_int_equal(route_decide(&cfg, &m, &req, &res), -1);

	/* The fees' sum: 10000 + 10000 bps of INT64_MAX. */
	req = request("USD", INT64_MAX, PRIORITY_STANDARD);
	cfg.platform_bps = 10000;
	cfg.onramp_bps = 10000;
	assert_int_equal(route_decide(&cfg, &m, &req, &res), -1);
	cfg = config();

	/* Absurd market data: INT64_MAX wei x 250,000 x INT64_MAX micro-USD
	 * passes 2^128. */
	m.chain[CHAIN_ARBITRUM].gas_standard = INT64_MAX;
	m.chain[CHAIN_ARBITRUM].native_usd_micros = INT64_MAX;
	req = request("USD", 5000, PRIORITY_STANDARD);
	assert_int_equal(route_decide(&cfg, &m, &req, &res), -1);

	/* Fits u128 but not int64: INT64_MAX x 65,000 x 1e14 = 6.0e37 < 2^128,
	 * / 1e18 = 6.0e19 micro-USD > INT64_MAX. */
	m = market();
	m.chain[CHAIN_BASE].gas_standard = INT64_MAX;
	m.chain[CHAIN_BASE].native_usd_micros = 100000000000000LL;
	assert_int_equal(route_decide(&cfg, &m, &req, &res), -1);

	/* The same on Solana: INT64_MAX micro-lamports per CU. */
	m = market();
	m.chain[CHAIN_SOLANA].gas_standard = INT64_MAX;
	m.chain[CHAIN_SOLANA].native_usd_micros = INT64_MAX;
	assert_int_equal(route_decide(&cfg, &m, &req, &res), -1);

	/* A sane fee that no longer fits once converted to a currency with 18
	 * decimals at INT64_MAX units per USD: 3,472,549 x 9.2e18 x 1e18 = 3.2e43
	 * passes 2^128. */
	m = market();
	req = request("USD", 5000, PRIORITY_STANDARD);
	req.from = &huge;
	req.from_per_usd = INT64_MAX;
	assert_int_equal(route_decide(&cfg, &m, &req, &res), -1);
}

static void test_bad_arguments(void **state)
{
	static const struct currency weird = {"XXX", 19, SCALE};
	struct route_config cfg = config(), c2;
	struct route_market m = market(), m2;
	struct route_request req = request("USD", 5000, PRIORITY_STANDARD), r2;
	struct route_result res;

	(void)state;
	assert_int_equal(route_decide(NULL, &m, &req, &res), -1);
	assert_int_equal(route_decide(&cfg, NULL, &req, &res), -1);
	assert_int_equal(route_decide(&cfg, &m, NULL, &res), -1);
	assert_int_equal(route_decide(&cfg, &m, &req, NULL), -1);

	r2 = req;
	r2.amount = 0;
	assert_int_equal(route_decide(&cfg, &m, &r2, &res), -1);
	r2.amount = -5000;
	assert_int_equal(route_decide(&cfg, &m, &r2, &res), -1);
	r2 = req;
	r2.from_per_usd = 0;
	assert_int_equal(route_decide(&cfg, &m, &r2, &res), -1);
	r2.from_per_usd = -SCALE;
	assert_int_equal(route_decide(&cfg, &m, &r2, &res), -1);
	r2 = req;
	r2.from = NULL;
	assert_int_equal(route_decide(&cfg, &m, &r2, &res), -1);
	r2 = req;
	r2.from = &weird;
	assert_int_equal(route_decide(&cfg, &m, &r2, &res), -1);
	r2 = req;
	r2.priority = (enum route_priority)2;
	assert_int_equal(route_decide(&cfg, &m, &r2, &res), -1);
	r2 = req;
	r2.tier = TIER_COUNT;
	assert_int_equal(route_decide(&cfg, &m, &r2, &res), -1);
	r2 = req;
	r2.tier = (enum route_tier) - 1;
	assert_int_equal(route_decide(&cfg, &m, &r2, &res), -1);

	m2 = m;
	m2.provider = (enum route_status)4;
	assert_int_equal(route_decide(&cfg, &m2, &req, &res), -1);

	c2 = cfg;
	c2.platform_bps = 10001;
	assert_int_equal(route_decide(&c2, &m, &req, &res), -1);
	c2 = cfg;
	c2.onramp_bps = -1;
	assert_int_equal(route_decide(&c2, &m, &req, &res), -1);
	c2 = cfg;
	c2.offramp_bps = 20000;
	assert_int_equal(route_decide(&c2, &m, &req, &res), -1);
	c2 = cfg;
	c2.provider_minor_bps = -5;
	assert_int_equal(route_decide(&c2, &m, &req, &res), -1);
	c2 = cfg;
	c2.tier_discount_bps[TIER_PREMIUM] = -50;
	assert_int_equal(route_decide(&c2, &m, &req, &res), -1);
	c2 = cfg;
	c2.mid_usd_cents = 0;
	assert_int_equal(route_decide(&c2, &m, &req, &res), -1);
	c2 = cfg;
	c2.large_usd_cents = c2.mid_usd_cents - 1;
	assert_int_equal(route_decide(&c2, &m, &req, &res), -1);
	/* large == mid is allowed. */
	c2 = cfg;
	c2.large_usd_cents = c2.mid_usd_cents;
	decide(&c2, &m, &req, &res);

	/* A degraded provider's bps that push a chain's risk past 10000. */
	c2 = cfg;
	c2.provider_minor_bps = 10000;
	m2 = m;
	m2.provider = STATUS_MINOR;
	assert_int_equal(route_decide(&c2, &m2, &req, &res), -1);

	/* The destination currency is not needed for routing. */
	r2 = req;
	r2.to = NULL;
	decide(&cfg, &m, &r2, &res);
}

/* Pure: the same inputs give byte-identical results, and res is fully
 * overwritten whatever it held before. */
static void test_deterministic(void **state)
{
	struct route_config cfg = config();
	struct route_market m = market();
	struct route_request req = request("KWD", 123456, PRIORITY_EXPRESS);
	struct route_result a, b;

	(void)state;
	memset(&a, 0x00, sizeof(a));
	memset(&b, 0xa5, sizeof(b));
	m.provider = STATUS_MINOR;
	decide(&cfg, &m, &req, &a);
	decide(&cfg, &m, &req, &b);
	assert_memory_equal(&a, &b, sizeof(a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_round_trip),
		cmocka_unit_test(test_names_reject),
		cmocka_unit_test(test_fee_percent),
		cmocka_unit_test(test_fee_percent_invalid),
		cmocka_unit_test(test_usd_conversion),
		cmocka_unit_test(test_network_fees),
		cmocka_unit_test(test_gas_cost_by_currency),
		cmocka_unit_test(test_choose_50_usd_standard),
		cmocka_unit_test(test_choose_50_usd_ties),
		cmocka_unit_test(test_choose_50_usdc_standard),
		cmocka_unit_test(test_choose_5000_usd_standard),
		cmocka_unit_test(test_choose_50_usd_express),
		cmocka_unit_test(test_choose_large_ethereum),
		cmocka_unit_test(test_choose_large_off_l1),
		cmocka_unit_test(test_choose_mid),
		cmocka_unit_test(test_provider_outage),
		cmocka_unit_test(test_provider_minor),
		cmocka_unit_test(test_each_chain_unavailable),
		cmocka_unit_test(test_all_unavailable),
		cmocka_unit_test(test_no_price),
		cmocka_unit_test(test_long_reasons_truncated),
		cmocka_unit_test(test_tier_discounts),
		cmocka_unit_test(test_rounding_up),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_deterministic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
