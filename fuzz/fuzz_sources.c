/* fuzz_sources.c - the market-data parsers of services/feeengine/sources.c
 * (ExchangeRate-API, CoinGecko, beaconcha.in, Blockscout, Solana RPC,
 * Statuspage) and src_decimal. Input: one byte choosing the parser and
 * whether a last good reading exists, then the response body. Invariants:
 * an accepted reading is positive and within the documented ceilings, a
 * refusal says why in a NUL-terminated message. */
#include <string.h>

#include "common/money.h"
#include "fuzz.h"
#include "sources.h"

#define GWEI 1000000000LL

static void check_err(const char *err, size_t len)
{
	FUZZ_CHECK(memchr(err, '\0', len) != NULL && err[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	if (size < 1)
		return 0;
	unsigned sel = data[0] % 7;
	bool with_last = data[0] & 0x80;
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	int rc;

	memset(err, 'x', sizeof(err));
	switch (sel) {
	case 0: {
		struct src_fx last = {.as_of = 1}, out;
		size_t n;
		const struct currency *cur = money_currencies(&n);
		for (size_t i = 0; i < n && i < 32; i++)
			last.per_usd[i] = cur[i].per_usd;
		rc = src_parse_fx(body, len, with_last ? &last : NULL, &out, err, sizeof(err));
		if (rc == 0) {
			int listed = 0;
			for (size_t i = 0; i < n && i < 32; i++) {
				FUZZ_CHECK(out.per_usd[i] >= 0);
				listed += out.per_usd[i] > 0;
			}
			FUZZ_CHECK(listed >= 1);
		}
		break;
	}
	case 1: {
		struct src_prices last = {3120550000LL, 142100000LL, 1000000LL, 520000LL}, out;
		rc = src_parse_prices(body, len, with_last ? &last : NULL, &out, err, sizeof(err));
		if (rc == 0) {
			FUZZ_CHECK(out.eth_usd_micros > 0 && out.sol_usd_micros > 0);
			FUZZ_CHECK(out.eth_usd_micros <= 10000000LL * 1000000LL);
			FUZZ_CHECK(out.usdc_usd_micros == 0 || (out.usdc_usd_micros >= 500000 &&
								out.usdc_usd_micros <= 1500000));
		}
		break;
	}
	case 2:
	case 3:
	case 4: {
		struct src_gas last = {17 * GWEI, 38 * GWEI}, out;
		int64_t ceiling = sel == 4 ? 100000000LL : 10000 * GWEI;
		if (sel == 2)
			rc = src_parse_eth_gas(body, len, with_last ? &last : NULL, &out, err,
					       sizeof(err));
		else if (sel == 3)
			rc = src_parse_blockscout(body, len, with_last ? &last : NULL, &out, err,
						  sizeof(err));
		else
			rc = src_parse_solana(body, len, with_last ? &last : NULL, &out, err,
					      sizeof(err));
		if (rc == 0)
			FUZZ_CHECK(out.standard >= 0 && out.fast >= 0 && out.standard <= ceiling &&
				   out.fast <= ceiling);
		break;
	}
	case 5: {
		struct src_status out;
		rc = src_parse_status(body, len, &out, err, sizeof(err));
		if (rc == 0) {
			FUZZ_CHECK(out.indicator >= 0 && out.indicator <= 3);
			FUZZ_CHECK(memchr(out.description, '\0', sizeof(out.description)) != NULL);
		}
		break;
	}
	default: {
		json_error_t je;
		json_t *v = json_loadb(body, len, JSON_DECODE_ANY, &je);
		int64_t out;
		rc = 0;
		if (v != NULL) {
			for (int scale = 0; scale <= 18; scale += 6)
				if (src_decimal(v, scale, &out) == 0)
					FUZZ_CHECK(out >= 0);
			json_decref(v);
		}
		return 0;
	}
	}
	if (rc != 0)
		check_err(err, sizeof(err));
	return 0;
}
