/* config.c - the fee engine's configuration (SPEC 2), validated at start-up. */
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "feeengine.h"

/* The public endpoints (EXTERNAL_APIS.md); tests point them at loopback stubs. */
static const struct {
	const char *var, *def;
} source_urls[SRC_COUNT] = {
	[SRC_FX] = {"MARKET_FX_URL", "https://open.er-api.com/v6/latest/USD"},
	[SRC_PRICES] =
		{"MARKET_PRICES_URL",
		 "https://api.coingecko.com/api/v3/simple/price?ids=ethereum,solana,usd-coin,"
		 "matic-network&vs_currencies=usd&include_last_updated_at=true"},
	[SRC_GAS_ETHEREUM] = {"MARKET_ETH_GAS_URL", "https://beaconcha.in/api/v1/execution/gasnow"},
	[SRC_GAS_BASE] = {"MARKET_BASE_GAS_URL", "https://base.blockscout.com/api/v2/stats"},
	[SRC_GAS_POLYGON] = {"MARKET_POLYGON_GAS_URL",
			     "https://polygon.blockscout.com/api/v2/stats"},
	[SRC_GAS_ARBITRUM] = {"MARKET_ARBITRUM_GAS_URL",
			      "https://arbitrum.blockscout.com/api/v2/stats"},
	[SRC_GAS_SOLANA] = {"MARKET_SOLANA_RPC_URL", "https://api.mainnet-beta.solana.com"},
	[SRC_CIRCLE] = {"MARKET_CIRCLE_STATUS_URL", "https://status.circle.com/api/v2/status.json"},
};

int fee_config_load(struct fee_config *c)
{
	static const char *const http_schemes[] = {"http", "https", NULL};
	long long *discounts = NULL;
	size_t ndiscounts = 0;

	memset(c, 0, sizeof(*c));
	if (cfg_base_load(&c->base) ||
	    cfg_listen("METRICS_LISTEN", "0.0.0.0:9103", c->metrics_host, sizeof(c->metrics_host),
		       &c->metrics_port) ||
	    cfg_str("ANTHROPIC_API_KEY", "", 512, &c->anthropic_key) ||
	    cfg_url("ANTHROPIC_BASE_URL", "https://api.anthropic.com", http_schemes,
		    &c->anthropic_url) ||
	    cfg_str("ANTHROPIC_MODEL", "claude-sonnet-4-5", 128, &c->anthropic_model))
		goto fail;
	for (int i = 0; i < SRC_COUNT; i++)
		if (cfg_url(source_urls[i].var, source_urls[i].def, http_schemes, &c->src_url[i]))
			goto fail;
	/* A trailing slash on the base URL would make "//v1/messages". */
	size_t ul = strlen(c->anthropic_url);
	while (ul > 0 && c->anthropic_url[ul - 1] == '/')
		c->anthropic_url[--ul] = '\0';

	const struct cfg_int_var ints[] = {
		{"MARKET_REFRESH_SECONDS", 60, 1, 86400, &c->refresh_s},
		{"MARKET_CACHE_TTL_SECONDS", 120, 1, 7 * 86400, &c->cache_ttl_s},
		{"MARKET_FETCH_TIMEOUT_MS", 5000, 100, 120000, &c->fetch_timeout_ms},
		{"FEE_AI_TIMEOUT_MS", 10000, 100, 120000, &c->ai_timeout_ms},
		{"FEE_AI_CACHE_SECONDS", 30, 0, 3600, &c->ai_cache_s},
		{"FEE_AI_MAX_DEVIATION_BPS", 2000, 0, 10000, &c->ai_max_deviation_bps},
		{"FEE_PLATFORM_BPS", 200, 0, 10000, &c->route.platform_bps},
		{"FEE_ONRAMP_BPS", 70, 0, 10000, &c->route.onramp_bps},
		{"FEE_OFFRAMP_BPS", 50, 0, 10000, &c->route.offramp_bps},
		{"JOB_CLAIM_IDLE_MS", 30000, 100, 86400000, &c->claim_idle_ms},
		{"FEE_CONCURRENCY", 4096, 1, 100000, &c->concurrency},
		/* Above the api's FEE_TIMEOUT_MS: requests in progress are answered. */
		{"SHUTDOWN_GRACE_SECONDS", 15, 0, 3600, &c->grace_seconds},
		{"MARKET_FX_REFRESH_SECONDS", 3600, 1, 86400, &c->fx_refresh_s},
	};
	if (cfg_int_table(ints, CFG_COUNT(ints)) != 0)
		goto fail;
	if (c->route.platform_bps + c->route.onramp_bps + c->route.offramp_bps >= 10000) {
		cfg_fail("FEE_PLATFORM_BPS", "FEE_PLATFORM_BPS + FEE_ONRAMP_BPS + FEE_OFFRAMP_BPS "
					     "must be below 10000");
		goto fail;
	}
	/* Discounts off the platform fee: standard, premium, enterprise. */
	if (cfg_int_list("FEE_TIER_DISCOUNT_BPS", "0,50,100", 10000, &discounts, &ndiscounts))
		goto fail;
	if (ndiscounts != TIER_COUNT) {
		free(discounts);
		cfg_fail("FEE_TIER_DISCOUNT_BPS",
			 "want 3 values (standard,premium,enterprise), got %zu", ndiscounts);
		goto fail;
	}
	for (int t = 0; t < TIER_COUNT; t++)
		c->route.tier_discount_bps[t] = (int)discounts[t];
	free(discounts);
	int tiers[TIER_COUNT];
	for (int t = 0; t < TIER_COUNT; t++)
		tiers[t] = c->route.tier_discount_bps[t];
	route_config_init(&c->route, c->route.platform_bps, c->route.onramp_bps,
			  c->route.offramp_bps);
	for (int t = 0; t < TIER_COUNT; t++)
		c->route.tier_discount_bps[t] = tiers[t];
	return 0;
fail:
	fee_config_free(c);
	return -1;
}

void fee_config_free(struct fee_config *c)
{
	cfg_base_free(&c->base);
	for (int i = 0; i < SRC_COUNT; i++)
		free(c->src_url[i]);
	free(c->anthropic_key);
	free(c->anthropic_url);
	free(c->anthropic_model);
	memset(c, 0, sizeof(*c));
}
