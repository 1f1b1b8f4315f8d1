/* fuzz_ai.c - ai_parse_decision (services/feeengine/ai.c): a Messages API
 * response body read against a deterministic route result. Input: one byte
 * for the deviation allowed (0..2550 bps), then the body. Invariants: an
 * accepted decision names an eligible chain, has fees within the allowed
 * deviation, confidence in 0..1000, at most ROUTE_MAX_RISKS risks,
 * settlement 1..86400 s, NUL-terminated text; every refusal says why. */
#include <string.h>

#include "feeengine.h"
#include "fuzz.h"

#define GWEI 1000000000LL

static struct route_result det;

int LLVMFuzzerInitialize(int *argc, char ***argv)
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
	int64_t gas[CHAIN_COUNT][2] = {{17 * GWEI, 38 * GWEI},
				       {GWEI / 2, GWEI},
				       {30 * GWEI, 45 * GWEI},
				       {GWEI / 100, GWEI / 50},
				       {1000, 5000}};
	int64_t price[CHAIN_COUNT] = {3120550000LL, 3120550000LL, 520000LL, 3120550000LL,
				      142100000LL};
	(void)argc;
	(void)argv;
	memset(&m, 0, sizeof(m));
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
	FUZZ_CHECK(route_decide(&cfg, &m, &req, &det) == 0 && det.chosen >= 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ai_decision d;
	char why[200];
	if (size < 1)
		return 0;
	int dev = data[0] * 10;
	memset(why, 'x', sizeof(why));
	memset(&d, 0xa5, sizeof(d));
	enum ai_outcome o = ai_parse_decision((const char *)data + 1, size - 1, &det, dev, &d, why,
					      sizeof(why));
	FUZZ_CHECK(o == AI_OK || o == AI_MALFORMED || o == AI_GUARDRAIL);
	if (o != AI_OK) {
		FUZZ_CHECK(memchr(why, '\0', sizeof(why)) != NULL && why[0] != '\0');
		return 0;
	}
	FUZZ_CHECK(d.chain >= 0 && d.chain < CHAIN_COUNT && det.cand[d.chain].eligible);
	FUZZ_CHECK(d.confidence_milli >= 0 && d.confidence_milli <= 1000);
	FUZZ_CHECK(d.n_risks >= 0 && d.n_risks <= ROUTE_MAX_RISKS);
	for (int i = 0; i < d.n_risks; i++)
		FUZZ_CHECK(memchr(d.risks[i], '\0', sizeof(d.risks[i])) != NULL);
	FUZZ_CHECK(d.settlement_seconds >= 1 && d.settlement_seconds <= 86400);
	FUZZ_CHECK(memchr(d.reasoning, '\0', sizeof(d.reasoning)) != NULL &&
		   d.reasoning[0] != '\0');
	const struct route_fees *ref = &det.cand[d.chain].fees;
	int64_t got[] = {d.fees.platform_fee, d.fees.onramp_fee, d.fees.offramp_fee,
			 d.fees.gas_cost, d.fees.risk_premium};
	int64_t want[] = {ref->platform_fee, ref->onramp_fee, ref->offramp_fee, ref->gas_cost,
			  ref->risk_premium};
	for (int i = 0; i < 5; i++) {
		FUZZ_CHECK(got[i] >= 0);
		__int128 delta = got[i] > want[i] ? got[i] - want[i] : want[i] - got[i];
		/* within dev bps of the deterministic component (1 minor unit of slack
		 * for rounding) */
		FUZZ_CHECK(delta * 10000 <= (__int128)want[i] * dev + 10000);
	}
	FUZZ_CHECK(d.fees.total == got[0] + got[1] + got[2] + got[3] + got[4]);
	return 0;
}
