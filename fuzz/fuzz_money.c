/* fuzz_money.c - common/money.c: rate parsing and formatting, cross rates,
 * fees, conversion, whole quotes and the overflow-checked helpers, against
 * 128-bit reference arithmetic. Input: a rate as text up to the first NUL,
 * then raw bytes for the integers. */
#include <string.h>

#include "common/money.h"
#include "fuzz.h"

typedef __int128 i128;

static int64_t take64(const uint8_t **p, size_t *n)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++) {
		v = v << 8 | (*n > 0 ? **p : 0);
		if (*n > 0) {
			(*p)++;
			(*n)--;
		}
	}
	return (int64_t)v;
}

static void rate_text(const char *s)
{
	int64_t rate, again;
	char buf[MONEY_RATE_STRLEN];

	if (money_rate_parse(s, &rate) != MONEY_OK)
		return;
	FUZZ_CHECK(rate > 0);
	money_rate_format(rate, buf, sizeof(buf));
	FUZZ_CHECK(memchr(buf, '\0', sizeof(buf)) != NULL);
	/* What it writes, it reads back to the same value. */
	FUZZ_CHECK(money_rate_parse(buf, &again) == MONEY_OK && again == rate);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t tlen = nul != NULL ? (size_t)(nul - data) : size;
	char *text = fuzz_str(data, tlen);
	if (text == NULL)
		return 0;
	rate_text(text);
	free(text);

	const uint8_t *p = nul != NULL ? nul + 1 : data + size;
	size_t n = nul != NULL ? size - tlen - 1 : 0;
	int64_t a = take64(&p, &n), b = take64(&p, &n), c = take64(&p, &n);
	int64_t out;

	/* The checked helpers agree with 128-bit arithmetic. */
	i128 sum = (i128)a + b, diff = (i128)a - b, prod = (i128)a * b;
	bool ok = money_add(a, b, &out);
	FUZZ_CHECK(ok == (sum >= INT64_MIN && sum <= INT64_MAX) && (!ok || out == (int64_t)sum));
	ok = money_sub(a, b, &out);
	FUZZ_CHECK(ok == (diff >= INT64_MIN && diff <= INT64_MAX) && (!ok || out == (int64_t)diff));
	ok = money_mul(a, b, &out);
	FUZZ_CHECK(ok == (prod >= INT64_MIN && prod <= INT64_MAX) && (!ok || out == (int64_t)prod));

	/* fee = ceil(amount * bps / 10000) */
	int bps = (int)((uint64_t)c % 20001) - 5000;
	if (money_fee(a, bps, &out) == MONEY_OK) {
		FUZZ_CHECK(a > 0 && bps >= 0 && bps <= 10000);
		i128 exact = (i128)a * bps;
		FUZZ_CHECK(out == (int64_t)((exact + 9999) / 10000) && out <= a);
	}

	int64_t rate;
	if (money_cross_rate(a, b, &rate) == MONEY_OK)
		FUZZ_CHECK(a > 0 && b > 0 && rate > 0);

	size_t ncur;
	const struct currency *cur = money_currencies(&ncur);
	const struct currency *from = &cur[(uint64_t)c % ncur],
			      *to = &cur[((uint64_t)c >> 8) % ncur];
	int64_t payout;
	if (money_convert(a, b, from->exponent, to->exponent, &payout) == MONEY_OK)
		FUZZ_CHECK(a > 0 && b > 0 && payout >= 0);

	struct money_fees_bps fb = {(int)((uint64_t)c >> 16 & 0x3fff) % 10001,
				    (int)((uint64_t)c >> 30 & 0x3fff) % 10001,
				    (int)((uint64_t)c >> 44 & 0x3fff) % 10001};
	struct money_quote q;
	if (money_quote(a, b, from, to, &fb, &q) == MONEY_OK) {
		FUZZ_CHECK(q.platform_fee >= 0 && q.onramp_fee >= 0 && q.offramp_fee >= 0);
		FUZZ_CHECK(q.total_fees == q.platform_fee + q.onramp_fee + q.offramp_fee);
		FUZZ_CHECK(q.total_fees < a && q.payout > 0);
		/* The payout never exceeds the exact conversion of the net amount. */
		int64_t exact;
		FUZZ_CHECK(money_convert(a - q.total_fees, b, from->exponent, to->exponent,
					 &exact) == MONEY_OK &&
			   exact == q.payout);
	}
	return 0;
}
