/* snapshot.h - the market snapshot, the hash <prefix>:market:snapshot
 * (rk_snapshot_key; fields in docs/fees.md) that the feeengine writes and
 * the api reads: one encoder, one decoder, one list of field names. Pure.
 *
 * Fields: fx.<CUR> (units per 1 USD, 10 decimals), price.ETH/SOL/POL/USDC
 * (USD), gas.<chain>.standard/.fast (gwei; Solana micro-lamports per CU),
 * .unit, .available ("yes" or why not), status.circle (+ .description), and
 * per source <name>.as_of (unix s, 0 = built-in default) and <name>.source
 * (live|cached|default); snapshot.as_of is when the hash was written. */
#ifndef COMMON_SNAPSHOT_H
#define COMMON_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/chain_route.h"

/* The market-data sources, in the snapshot's order. */
enum snap_source {
	SNAP_FX,
	SNAP_PRICES,
	SNAP_GAS_ETHEREUM,
	SNAP_GAS_BASE,
	SNAP_GAS_POLYGON,
	SNAP_GAS_ARBITRUM,
	SNAP_GAS_SOLANA,
	SNAP_CIRCLE,
	SNAP_SOURCE_COUNT
};

/* Where a source's value comes from. */
enum snap_state { SNAP_LIVE, SNAP_CACHED, SNAP_DEFAULT };

/* "fx", "prices", "gas.ethereum", ..., "status.circle" (static). */
const char *snap_source_name(enum snap_source s);
/* The gas source of a chain. */
enum snap_source snap_gas_source(enum route_chain c);
/* "live", "cached", "default" (static). */
const char *snap_state_name(enum snap_state s);
int snap_state_parse(const char *s, enum snap_state *out) __attribute__((warn_unused_result));

#define SNAP_MAX_CURRENCIES  32
#define SNAP_DESCRIPTION_LEN 96

struct snap_meta {
	int64_t as_of;	/* <name>.as_of: unix s; 0 absent, invalid or a default */
	bool has_state; /* <name>.source was one of the three names */
	enum snap_state state;
	bool has_raw; /* <name>.source was present at all */
	char raw[16]; /* ... as written (truncated), for display */
};

struct snapshot {
	int64_t as_of;				 /* snapshot.as_of; 0 absent */
	int64_t fx_per_usd[SNAP_MAX_CURRENCIES]; /* money_currencies() order; 0 = unlisted */
	struct snap_meta src[SNAP_SOURCE_COUNT];
	/* Native token prices (price.ETH for Ethereum, Base and Arbitrum), gas,
	 * availability and Circle's status; route_market_defaults where absent. */
	struct route_market route;
	int64_t usdc_usd_micros; /* price.USDC; 0 absent */
	char circle_description[SNAP_DESCRIPTION_LEN];
	size_t nfields; /* fields decoded (known or not): 0 = no snapshot */
};

/* An empty snapshot: no fields, route_market_defaults, nothing listed. */
void snapshot_init(struct snapshot *s);

/* ---- encoding (the feeengine) ---- */

#define SNAP_MAX_FIELDS 128
#define SNAP_KEY_LEN	40
#define SNAP_VALUE_LEN	112

struct snap_fields {
	int n;
	char key[SNAP_MAX_FIELDS][SNAP_KEY_LEN];
	char val[SNAP_MAX_FIELDS][SNAP_VALUE_LEN];
	int nunlisted; /* fx.<CUR> of the currencies not listed: to HDEL */
	char unlisted[SNAP_MAX_CURRENCIES][SNAP_KEY_LEN];
};

/* Every field of s, in the snapshot's order, into out (caller's storage:
 * about 20 KiB). Gas and prices are written with fixed-point decimals
 * (money_fixed_format), rates with money_rate_format. A source whose state
 * is SNAP_DEFAULT is written with as_of 0. */
void snapshot_encode(const struct snapshot *s, struct snap_fields *out);

/* ---- decoding (the api) ---- */

enum snap_decoded {
	SNAP_FIELD_OK,	    /* applied */
	SNAP_FIELD_IGNORED, /* unknown field or unreadable value: the default stays */
	SNAP_FIELD_INVALID, /* an fx.<CUR> rate that is not a positive decimal */
};

/* Applies one field of the hash (HGETALL, HMGET) to s. */
enum snap_decoded snapshot_decode_field(struct snapshot *s, const char *key, const char *value);

/* The freshness fields, for an HMGET: "snapshot.as_of", then <name>.as_of
 * and <name>.source of each source in order (static). */
#define SNAP_META_NFIELDS (1 + 2 * SNAP_SOURCE_COUNT)
const char *const *snapshot_meta_fields(void);

#endif
