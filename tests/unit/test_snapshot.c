/* test_snapshot.c - the market snapshot's one encoder (the feeengine's) and
 * one decoder (the api's, /health's, /v1/summary's): a round trip, the wire
 * names docs/fees.md lists, and what a reader does with bad values. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>

#include "common/money.h"
#include "common/snapshot.h"

static const char *value_of(const struct snap_fields *o, const char *key)
{
	for (int i = 0; i < o->n; i++)
		if (strcmp(o->key[i], key) == 0)
			return o->val[i];
	return NULL;
}

static void sample(struct snapshot *s)
{
	size_t n;
	const struct currency *all = money_currencies(&n);
	snapshot_init(s);
	s->as_of = 1700000100;
	for (size_t i = 0; i < n && i < SNAP_MAX_CURRENCIES; i++)
		s->fx_per_usd[i] = all[i].per_usd;
	s->fx_per_usd[money_currency("EUR") - all] = 9190000000LL;
	s->fx_per_usd[money_currency("GBP") - all] = 0; /* unlisted */
	for (int i = 0; i < SNAP_SOURCE_COUNT; i++) {
		s->src[i].state = SNAP_LIVE;
		s->src[i].as_of = 1700000000 + i;
	}
	s->src[SNAP_GAS_SOLANA].state = SNAP_DEFAULT;
	s->src[SNAP_PRICES].state = SNAP_CACHED;
	/* price.ETH prices Ethereum, Base and Arbitrum alike */
	for (int c = 0; c < CHAIN_COUNT; c++) {
		struct route_chain_market *cm = &s->route.chain[c];
		cm->native_usd_micros = 3120550000LL;
		cm->gas_standard = 25000000000LL + c;
		cm->gas_fast = 30000000000LL;
	}
	s->route.chain[CHAIN_POLYGON].native_usd_micros = 410000;
	s->route.chain[CHAIN_SOLANA].native_usd_micros = 151200000;
	s->route.chain[CHAIN_SOLANA].gas_standard = 5000;
	s->route.chain[CHAIN_SOLANA].gas_fast = 100000;
	s->route.chain[CHAIN_POLYGON].unavailable = true;
	snprintf(s->route.chain[CHAIN_POLYGON].why, sizeof(s->route.chain[0].why),
		 "polygon congested: gas 4000 gwei above its ceiling of 3000 gwei");
	s->route.provider = STATUS_MINOR;
	s->usdc_usd_micros = 999800;
	snprintf(s->circle_description, sizeof(s->circle_description), "Minor Service Outage");
}

static void test_wire_names(void **state)
{
	(void)state;
	static struct snapshot s;
	static struct snap_fields o;
	sample(&s);
	snapshot_encode(&s, &o);
	assert_string_equal(value_of(&o, "fx.EUR"), "0.919");
	assert_null(value_of(&o, "fx.GBP"));
	assert_int_equal(o.nunlisted, 1);
	assert_string_equal(o.unlisted[0], "fx.GBP");
	assert_string_equal(value_of(&o, "fx.source"), "live");
	assert_string_equal(value_of(&o, "fx.as_of"), "1700000000");
	assert_string_equal(value_of(&o, "price.ETH"), "3120.55");
	assert_string_equal(value_of(&o, "price.SOL"), "151.2");
	assert_string_equal(value_of(&o, "price.POL"), "0.41");
	assert_string_equal(value_of(&o, "price.USDC"), "0.9998");
	assert_string_equal(value_of(&o, "prices.source"), "cached");
	assert_string_equal(value_of(&o, "gas.ethereum.standard"), "25");
	assert_string_equal(value_of(&o, "gas.base.standard"), "25.000000001");
	assert_string_equal(value_of(&o, "gas.ethereum.unit"), "gwei");
	assert_string_equal(value_of(&o, "gas.ethereum.available"), "yes");
	assert_string_equal(value_of(&o, "gas.polygon.available"),
			    "polygon congested: gas 4000 gwei above its ceiling of 3000 gwei");
	assert_string_equal(value_of(&o, "gas.solana.standard"), "5000");
	assert_string_equal(value_of(&o, "gas.solana.unit"), "micro-lamports/CU");
	assert_string_equal(value_of(&o, "gas.solana.source"), "default");
	assert_string_equal(value_of(&o, "gas.solana.as_of"), "0"); /* a default has no age */
	assert_string_equal(value_of(&o, "status.circle"), "minor");
	assert_string_equal(value_of(&o, "status.circle.description"), "Minor Service Outage");
	assert_string_equal(value_of(&o, "status.circle.source"), "live");
	assert_string_equal(value_of(&o, "snapshot.as_of"), "1700000100");
}

static void test_round_trip(void **state)
{
	(void)state;
	static struct snapshot s, back;
	static struct snap_fields o;
	sample(&s);
	snapshot_encode(&s, &o);
	snapshot_init(&back);
	for (int i = 0; i < o.n; i++)
		assert_int_equal(snapshot_decode_field(&back, o.key[i], o.val[i]), SNAP_FIELD_OK);
	assert_int_equal((int)back.nfields, o.n);
	assert_int_equal(back.as_of, s.as_of);
	assert_memory_equal(back.fx_per_usd, s.fx_per_usd, sizeof(s.fx_per_usd));
	for (int i = 0; i < SNAP_SOURCE_COUNT; i++) {
		assert_true(back.src[i].has_state);
		assert_int_equal(back.src[i].state, s.src[i].state);
		assert_int_equal(back.src[i].as_of,
				 s.src[i].state == SNAP_DEFAULT ? 0 : s.src[i].as_of);
	}
	for (int c = 0; c < CHAIN_COUNT; c++) {
		const struct route_chain_market *a = &s.route.chain[c], *b = &back.route.chain[c];
		assert_int_equal(b->native_usd_micros, a->native_usd_micros);
		assert_int_equal(b->gas_standard, a->gas_standard);
		assert_int_equal(b->gas_fast, a->gas_fast);
		assert_int_equal(b->unavailable, a->unavailable);
		if (a->unavailable)
			assert_string_equal(b->why, a->why);
	}
	assert_int_equal(back.route.provider, s.route.provider);
	assert_int_equal(back.usdc_usd_micros, s.usdc_usd_micros);
	assert_string_equal(back.circle_description, s.circle_description);
}

static void test_decode_bad_values(void **state)
{
	(void)state;
	struct snapshot s, defaults;
	snapshot_init(&s);
	snapshot_init(&defaults);
	assert_int_equal(snapshot_decode_field(&s, "fx.EUR", "-1"), SNAP_FIELD_INVALID);
	assert_int_equal(snapshot_decode_field(&s, "fx.EUR", "abc"), SNAP_FIELD_INVALID);
	assert_int_equal(snapshot_decode_field(&s, "fx.XXX", "1"), SNAP_FIELD_IGNORED);
	assert_int_equal(snapshot_decode_field(&s, "price.ETH", "0"), SNAP_FIELD_IGNORED);
	assert_int_equal(snapshot_decode_field(&s, "gas.mars.standard", "1"), SNAP_FIELD_IGNORED);
	assert_int_equal(snapshot_decode_field(&s, "gas.base.standard", "1e9"), SNAP_FIELD_IGNORED);
	assert_int_equal(snapshot_decode_field(&s, "status.circle", "sideways"),
			 SNAP_FIELD_IGNORED);
	assert_int_equal(snapshot_decode_field(&s, "snapshot.as_of", "soon"), SNAP_FIELD_OK);
	assert_int_equal(snapshot_decode_field(&s, "fx.source", "stale"), SNAP_FIELD_OK);
	assert_int_equal(snapshot_decode_field(&s, "fx.EUR", NULL), SNAP_FIELD_IGNORED);
	assert_int_equal(s.as_of, 0);
	assert_false(s.src[SNAP_FX].has_state); /* not one of the three */
	assert_true(s.src[SNAP_FX].has_raw);
	assert_string_equal(s.src[SNAP_FX].raw, "stale");
	assert_int_equal(s.fx_per_usd[0], 0);
	assert_memory_equal(&s.route, &defaults.route, sizeof(s.route));
}

static void test_meta_fields(void **state)
{
	(void)state;
	const char *const *f = snapshot_meta_fields();
	assert_string_equal(f[0], "snapshot.as_of");
	assert_string_equal(f[1], "fx.as_of");
	assert_string_equal(f[2], "fx.source");
	assert_string_equal(f[SNAP_META_NFIELDS - 2], "status.circle.as_of");
	assert_string_equal(f[SNAP_META_NFIELDS - 1], "status.circle.source");
	for (int i = 0; i < SNAP_SOURCE_COUNT; i++) {
		char k[SNAP_KEY_LEN];
		snprintf(k, sizeof(k), "%s.source", snap_source_name((enum snap_source)i));
		assert_string_equal(f[2 + 2 * i], k);
	}
	assert_int_equal(snap_gas_source(CHAIN_SOLANA), SNAP_GAS_SOLANA);
	enum snap_state st;
	assert_int_equal(snap_state_parse("cached", &st), 0);
	assert_int_equal(st, SNAP_CACHED);
	assert_int_equal(snap_state_parse("Cached", &st), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wire_names),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_decode_bad_values),
		cmocka_unit_test(test_meta_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
