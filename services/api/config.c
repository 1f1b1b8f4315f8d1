/* config.c - the api daemon's configuration (SPEC 2), validated at start-up. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"

#define MAX_API_KEY_LEN 256

/* Splits API_KEYS on commas, trimming blanks; rejects control characters,
 * spaces inside a key and over-long keys. */
static int parse_api_keys(struct api_config *c, const char *list)
{
	const char *p = list;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (!*p)
			break;
		const char *end = p;
		while (*end && *end != ',')
			end++;
		size_t len = (size_t)(end - p);
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len > MAX_API_KEY_LEN)
			return cfg_fail("API_KEYS", "a key is longer than %d characters",
					MAX_API_KEY_LEN);
		for (size_t i = 0; i < len; i++)
			if (!isgraph((unsigned char)p[i]))
				return cfg_fail("API_KEYS",
						"keys must be printable ASCII without spaces");
		char **keys = realloc(c->api_keys, (c->n_api_keys + 1) * sizeof(*keys));
		if (!keys)
			return cfg_fail("API_KEYS", "out of memory");
		c->api_keys = keys;
		if (!(keys[c->n_api_keys] = strndup(p, len)))
			return cfg_fail("API_KEYS", "out of memory");
		c->n_api_keys++;
		p = end;
	}
	return 0;
}

int api_config_load(struct api_config *c)
{
	char *keys = NULL;

	memset(c, 0, sizeof(*c));
	if (cfg_base_load(&c->base) ||
	    cfg_listen("API_LISTEN", "0.0.0.0:8080", c->listen_host, sizeof(c->listen_host),
		       &c->listen_port) ||
	    cfg_str("API_KEYS", "", 0, &keys) || parse_api_keys(c, keys) ||
	    cfg_int("RATE_LIMIT_RPS", 1000, 1, 1000000, &c->rate_rps) ||
	    cfg_int("RATE_LIMIT_BURST", 2000, 1, 10000000, &c->rate_burst) ||
	    cfg_bool("RATE_LIMIT_SHARED", true, &c->rate_shared) ||
	    cfg_int("RATE_LIMIT_LEASE", 0, 0, 1000, &c->rate_lease) ||
	    cfg_bool("WEBHOOK_ALLOW_PRIVATE", false, &c->webhook_allow_private) ||
	    cfg_int("QUOTE_TTL_SECONDS", 60, 1, 86400, &c->quote_ttl))
		goto fail;
	/* The int-valued variables, as a table: name, default, range, field. */
	const struct cfg_int_var ints[] = {
		{"FEE_PLATFORM_BPS", 200, 0, 10000, &c->fee_platform_bps},
		{"FEE_ONRAMP_BPS", 70, 0, 10000, &c->fee_onramp_bps},
		{"FEE_OFFRAMP_BPS", 50, 0, 10000, &c->fee_offramp_bps},
		{"API_THREADS", 0, 0, 256, &c->threads},
		{"DB_POOL_SIZE", 4, 1, 64, &c->db_pool_size},
		{"DB_QUERY_TIMEOUT_MS", 5000, 10, 600000, &c->db_timeout_ms},
		{"API_ADMISSION_TARGET_MS", 50, 0, 600000, &c->admission_target_ms},
		{"API_ADMISSION_INTERVAL_MS", 100, 1, 600000, &c->admission_interval_ms},
		{"REDIS_TIMEOUT_MS", 2000, 10, 600000, &c->redis_timeout_ms},
		{"API_KEY_CACHE_SECONDS", 30, 0, 86400, &c->key_cache_seconds},
		{"SHUTDOWN_GRACE_SECONDS", 10, 0, 3600, &c->grace_seconds},
		{"FEE_TIMEOUT_MS", 12000, 100, 120000, &c->fee_timeout_ms},
		{"MARKET_CACHE_TTL_SECONDS", 120, 1, 7 * 86400, &c->market_ttl_s},
	};
	if (cfg_int_table(ints, CFG_COUNT(ints)) != 0)
		goto fail;
	if (c->fee_platform_bps + c->fee_onramp_bps + c->fee_offramp_bps >= 10000) {
		cfg_fail("FEE_PLATFORM_BPS", "the three FEE_*_BPS together must be below 10000");
		goto fail;
	}
	if (c->rate_lease == 0) { /* auto: 10 ms of the rate, at most a tenth of the burst */
		c->rate_lease = c->rate_rps / 100;
		if (c->rate_lease > c->rate_burst / 10)
			c->rate_lease = c->rate_burst / 10;
		if (c->rate_lease > 100)
			c->rate_lease = 100;
		if (c->rate_lease < 1)
			c->rate_lease = 1;
	}
	if (c->rate_lease > c->rate_burst)
		c->rate_lease = c->rate_burst;
	if (c->threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		c->threads = n > 0 ? (int)n : 1;
	}
	free(keys);
	return 0;
fail:
	free(keys);
	api_config_free(c);
	return -1;
}

void api_config_free(struct api_config *c)
{
	cfg_base_free(&c->base);
	for (size_t i = 0; i < c->n_api_keys; i++)
		free(c->api_keys[i]);
	free(c->api_keys);
	memset(c, 0, sizeof(*c));
}
