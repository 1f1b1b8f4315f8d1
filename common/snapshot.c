/* snapshot.c - the market snapshot's fields: the encoder and the decoder. */
#include "common/snapshot.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/money.h"

#define FIELD_WRITTEN "snapshot.as_of"
#define FX_PREFIX     "fx."
#define GAS_PREFIX    "gas."

#define N_FX	       "fx"
#define N_PRICES       "prices"
#define N_GAS_ETHEREUM GAS_PREFIX "ethereum"
#define N_GAS_BASE     GAS_PREFIX "base"
#define N_GAS_POLYGON  GAS_PREFIX "polygon"
#define N_GAS_ARBITRUM GAS_PREFIX "arbitrum"
#define N_GAS_SOLANA   GAS_PREFIX "solana"
#define N_CIRCLE       "status.circle"

static const char *const source_names[SNAP_SOURCE_COUNT] = {
	[SNAP_FX] = N_FX,
	[SNAP_PRICES] = N_PRICES,
	[SNAP_GAS_ETHEREUM] = N_GAS_ETHEREUM,
	[SNAP_GAS_BASE] = N_GAS_BASE,
	[SNAP_GAS_POLYGON] = N_GAS_POLYGON,
	[SNAP_GAS_ARBITRUM] = N_GAS_ARBITRUM,
	[SNAP_GAS_SOLANA] = N_GAS_SOLANA,
	[SNAP_CIRCLE] = N_CIRCLE,
};

/* snapshot.as_of, then each source's freshness fields, in source order. */
#define META(name) name ".as_of", name ".source"
static const char *const meta_fields[SNAP_META_NFIELDS] = {
	FIELD_WRITTEN,	      META(N_FX),	  META(N_PRICES),
	META(N_GAS_ETHEREUM), META(N_GAS_BASE),	  META(N_GAS_POLYGON),
	META(N_GAS_ARBITRUM), META(N_GAS_SOLANA), META(N_CIRCLE),
};

static const enum snap_source chain_gas[CHAIN_COUNT] = {
	[CHAIN_ETHEREUM] = SNAP_GAS_ETHEREUM, [CHAIN_BASE] = SNAP_GAS_BASE,
	[CHAIN_POLYGON] = SNAP_GAS_POLYGON,   [CHAIN_ARBITRUM] = SNAP_GAS_ARBITRUM,
	[CHAIN_SOLANA] = SNAP_GAS_SOLANA,
};

/* The price fields, and the chains each one prices. */
static const struct {
	const char *field;
	enum route_chain chains[3];
	int n;
} prices[] = {{"price.ETH", {CHAIN_ETHEREUM, CHAIN_BASE, CHAIN_ARBITRUM}, 3},
	      {"price.SOL", {CHAIN_SOLANA}, 1},
	      {"price.POL", {CHAIN_POLYGON}, 1}};
#define PRICE_USDC	   "price.USDC"
#define PRICE_SCALE	   6 /* micro-USD */
#define CIRCLE_DESCRIPTION ".description"
#define AVAILABLE_YES	   "yes"

static const char *const state_names[] = {
	[SNAP_LIVE] = "live", [SNAP_CACHED] = "cached", [SNAP_DEFAULT] = "default"};

const char *snap_source_name(enum snap_source s)
{
	return (unsigned)s < SNAP_SOURCE_COUNT ? source_names[s] : "unknown";
}

enum snap_source snap_gas_source(enum route_chain c)
{
	return chain_gas[(unsigned)c < CHAIN_COUNT ? c : CHAIN_ETHEREUM];
}

const char *snap_state_name(enum snap_state s)
{
	return (unsigned)s <= SNAP_DEFAULT ? state_names[s] : state_names[SNAP_DEFAULT];
}

int snap_state_parse(const char *s, enum snap_state *out)
{
	for (int i = 0; s && i <= SNAP_DEFAULT; i++)
		if (strcmp(s, state_names[i]) == 0) {
			*out = (enum snap_state)i;
			return 0;
		}
	return -1;
}

/* Gas is written in gwei (wei / 10^9), Solana's fee as it is. */
static int gas_scale(enum route_chain c)
{
	return c == CHAIN_SOLANA ? 0 : 9;
}

static const char *gas_unit(enum route_chain c)
{
	return c == CHAIN_SOLANA ? "micro-lamports/CU" : "gwei";
}

void snapshot_init(struct snapshot *s)
{
	memset(s, 0, sizeof(*s));
	route_market_defaults(&s->route);
}

/* ---- encoding ---------------------------------------------------------------- */

static char *put(struct snap_fields *o, const char *key)
{
	if (o->n >= SNAP_MAX_FIELDS)
		return NULL;
	snprintf(o->key[o->n], SNAP_KEY_LEN, "%s", key);
	return o->val[o->n++];
}

static void put_str(struct snap_fields *o, const char *key, const char *val)
{
	char *v = put(o, key);
	if (v)
		snprintf(v, SNAP_VALUE_LEN, "%s", val);
}

static void put_int(struct snap_fields *o, const char *key, int64_t val)
{
	char *v = put(o, key);
	if (v)
		snprintf(v, SNAP_VALUE_LEN, "%" PRId64, val);
}

static void put_fixed(struct snap_fields *o, const char *key, int64_t val, int scale)
{
	char *v = put(o, key);
	if (v)
		money_fixed_format(val, scale, v, SNAP_VALUE_LEN);
}

/* <name><suffix> into k. */
static const char *name_of(char *k, size_t len, enum snap_source src, const char *suffix)
{
	snprintf(k, len, "%s%s", source_names[src], suffix);
	return k;
}

/* <name>.as_of and <name>.source of one source. */
static void put_meta(struct snap_fields *o, const struct snapshot *s, enum snap_source src)
{
	char k[SNAP_KEY_LEN];
	const struct snap_meta *m = &s->src[src];
	put_int(o, name_of(k, sizeof(k), src, ".as_of"), m->state == SNAP_DEFAULT ? 0 : m->as_of);
	put_str(o, name_of(k, sizeof(k), src, ".source"), snap_state_name(m->state));
}

void snapshot_encode(const struct snapshot *s, struct snap_fields *o)
{
	size_t n;
	const struct currency *all = money_currencies(&n);
	char k[SNAP_KEY_LEN];

	o->n = o->nunlisted = 0;
	/* A currency the FX source does not list is left out (and removed if
	 * an earlier snapshot had it): the api then prices it from its own
	 * built-in rate and says so. */
	for (size_t i = 0; i < n && i < SNAP_MAX_CURRENCIES; i++) {
		char *v;
		snprintf(k, sizeof(k), "%s%s", FX_PREFIX, all[i].code);
		if (s->fx_per_usd[i] <= 0)
			snprintf(o->unlisted[o->nunlisted++], SNAP_KEY_LEN, "%s", k);
		else if ((v = put(o, k)))
			money_rate_format(s->fx_per_usd[i], v, SNAP_VALUE_LEN);
	}
	put_meta(o, s, SNAP_FX);

	for (size_t i = 0; i < sizeof(prices) / sizeof(prices[0]); i++)
		put_fixed(o, prices[i].field, s->route.chain[prices[i].chains[0]].native_usd_micros,
			  PRICE_SCALE);
	put_fixed(o, PRICE_USDC, s->usdc_usd_micros, PRICE_SCALE);
	put_meta(o, s, SNAP_PRICES);

	for (int c = 0; c < CHAIN_COUNT; c++) {
		enum snap_source src = chain_gas[c];
		const struct route_chain_market *cm = &s->route.chain[c];
		put_fixed(o, name_of(k, sizeof(k), src, ".standard"), cm->gas_standard,
			  gas_scale((enum route_chain)c));
		put_fixed(o, name_of(k, sizeof(k), src, ".fast"), cm->gas_fast,
			  gas_scale((enum route_chain)c));
		put_str(o, name_of(k, sizeof(k), src, ".unit"), gas_unit((enum route_chain)c));
		put_str(o, name_of(k, sizeof(k), src, ".available"),
			cm->unavailable ? cm->why : AVAILABLE_YES);
		put_meta(o, s, src);
	}

	put_str(o, source_names[SNAP_CIRCLE], route_status_name(s->route.provider));
	put_str(o, name_of(k, sizeof(k), SNAP_CIRCLE, CIRCLE_DESCRIPTION), s->circle_description);
	put_meta(o, s, SNAP_CIRCLE);
	put_int(o, FIELD_WRITTEN, s->as_of);
}

/* ---- decoding ---------------------------------------------------------------- */

/* A positive integer in plain digits, else 0. */
static int64_t secs(const char *v)
{
	int64_t x;
	return money_count_parse(v, &x) ? x : 0;
}

/* <name>.as_of or <name>.source of a source; false if key is neither. */
static bool decode_meta(struct snapshot *s, const char *key, const char *value)
{
	for (int i = 0; i < SNAP_SOURCE_COUNT; i++) {
		size_t len = strlen(source_names[i]);
		if (strncmp(key, source_names[i], len) != 0)
			continue;
		const char *rest = key + len;
		struct snap_meta *m = &s->src[i];
		if (strcmp(rest, ".as_of") == 0) {
			m->as_of = secs(value);
			return true;
		}
		if (strcmp(rest, ".source") == 0) {
			m->has_raw = true;
			snprintf(m->raw, sizeof(m->raw), "%s", value);
			m->has_state = snap_state_parse(value, &m->state) == 0;
			return true;
		}
	}
	return false;
}

/* gas.<chain>.<what>. */
static enum snap_decoded decode_gas(struct snapshot *s, const char *key, const char *value)
{
	char name[16];
	enum route_chain c;
	int64_t x;
	const char *dot = strchr(key, '.');
	if (!dot || (size_t)(dot - key) >= sizeof(name))
		return SNAP_FIELD_IGNORED;
	memcpy(name, key, (size_t)(dot - key));
	name[dot - key] = '\0';
	if (route_chain_parse(name, &c) != 0)
		return SNAP_FIELD_IGNORED;
	struct route_chain_market *cm = &s->route.chain[c];
	if (strcmp(dot, ".standard") == 0 && money_fixed_parse(value, gas_scale(c), &x))
		cm->gas_standard = x;
	else if (strcmp(dot, ".fast") == 0 && money_fixed_parse(value, gas_scale(c), &x))
		cm->gas_fast = x;
	else if (strcmp(dot, ".unit") == 0)
		; /* fixed by the chain (gas_unit): nothing to read */
	else if (strcmp(dot, ".available") == 0) {
		cm->unavailable = strcmp(value, AVAILABLE_YES) != 0;
		snprintf(cm->why, sizeof(cm->why), "%s", value);
	} else
		return SNAP_FIELD_IGNORED;
	return SNAP_FIELD_OK;
}

enum snap_decoded snapshot_decode_field(struct snapshot *s, const char *key, const char *value)
{
	size_t n;
	const struct currency *all = money_currencies(&n);
	int64_t x;
	enum route_status st;

	if (!key || !value)
		return SNAP_FIELD_IGNORED;
	s->nfields++;
	if (strcmp(key, FIELD_WRITTEN) == 0) {
		s->as_of = secs(value);
		return SNAP_FIELD_OK;
	}
	if (decode_meta(s, key, value))
		return SNAP_FIELD_OK;
	if (strncmp(key, FX_PREFIX, strlen(FX_PREFIX)) == 0) {
		const struct currency *c = money_currency(key + strlen(FX_PREFIX));
		size_t i = c ? (size_t)(c - all) : SNAP_MAX_CURRENCIES;
		if (i >= SNAP_MAX_CURRENCIES)
			return SNAP_FIELD_IGNORED;
		if (money_rate_parse(value, &x) != MONEY_OK)
			return SNAP_FIELD_INVALID;
		s->fx_per_usd[i] = x;
		return SNAP_FIELD_OK;
	}
	for (size_t i = 0; i < sizeof(prices) / sizeof(prices[0]); i++)
		if (strcmp(key, prices[i].field) == 0) {
			if (!money_fixed_parse(value, PRICE_SCALE, &x) || x <= 0)
				return SNAP_FIELD_IGNORED;
			for (int j = 0; j < prices[i].n; j++)
				s->route.chain[prices[i].chains[j]].native_usd_micros = x;
			return SNAP_FIELD_OK;
		}
	if (strcmp(key, PRICE_USDC) == 0) {
		if (!money_fixed_parse(value, PRICE_SCALE, &x) || x <= 0)
			return SNAP_FIELD_IGNORED;
		s->usdc_usd_micros = x;
		return SNAP_FIELD_OK;
	}
	if (strcmp(key, source_names[SNAP_CIRCLE]) == 0) {
		if (route_status_parse(value, &st) != 0)
			return SNAP_FIELD_IGNORED;
		s->route.provider = st;
		return SNAP_FIELD_OK;
	}
	size_t clen = strlen(source_names[SNAP_CIRCLE]);
	if (strncmp(key, source_names[SNAP_CIRCLE], clen) == 0 &&
	    strcmp(key + clen, CIRCLE_DESCRIPTION) == 0) {
		snprintf(s->circle_description, sizeof(s->circle_description), "%s", value);
		return SNAP_FIELD_OK;
	}
	if (strncmp(key, GAS_PREFIX, strlen(GAS_PREFIX)) == 0)
		return decode_gas(s, key + strlen(GAS_PREFIX), value);
	return SNAP_FIELD_IGNORED;
}

const char *const *snapshot_meta_fields(void)
{
	return meta_fields;
}
