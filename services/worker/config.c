/* config.c - the worker's configuration (SPEC 2), validated at start-up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "worker.h"

/* MOCK_FAIL_RATE: a probability in [0, 1] written as a decimal. */
static int parse_rate(const char *s, double *out)
{
	char *end;
	if (!*s || strspn(s, "0123456789.") != strlen(s))
		return -1;
	double v = strtod(s, &end);
	if (*end || v < 0 || v > 1)
		return -1;
	*out = v;
	return 0;
}

int worker_config_load(struct worker_config *c)
{
	static const char *const providers[] = {"mock", "http", NULL};
	static const char *const http_schemes[] = {"http", "https", NULL};

	memset(c, 0, sizeof(*c));
	if (cfg_base_load(&c->base) ||
	    cfg_listen("METRICS_LISTEN", "0.0.0.0:9101", c->metrics_host, sizeof(c->metrics_host),
		       &c->metrics_port) ||
	    cfg_enum("PROVIDER", "mock", providers, &c->provider_http) ||
	    cfg_str("MOCK_FAIL_RATE", "0", 32, &c->mock_fail_rate) ||
	    cfg_int("MOCK_SEED", 1, 0, 0x7fffffffffffffffLL, &c->mock_seed))
		goto fail;
	if (parse_rate(c->mock_fail_rate, &c->fail_rate) != 0) {
		cfg_fail("MOCK_FAIL_RATE", "must be a decimal from 0 to 1 (got \"%s\")",
			 c->mock_fail_rate);
		goto fail;
	}
	if (c->provider_http) {
		if (cfg_url("PROVIDER_BASE_URL", NULL, http_schemes, &c->provider_base_url))
			goto fail;
		if (!c->provider_base_url || !*c->provider_base_url) {
			cfg_fail("PROVIDER_BASE_URL", "is required with PROVIDER=http");
			goto fail;
		}
	}
	const struct cfg_int_var ints[] = {
		{"MOCK_SETTLE_MIN_MS", 90000, 0, 86400000, &c->mock_settle_min_ms},
		{"MOCK_SETTLE_MAX_MS", 120000, 0, 86400000, &c->mock_settle_max_ms},
		{"MAX_ATTEMPTS", 5, 1, 100, &c->max_attempts},
		{"JOB_CLAIM_IDLE_MS", 30000, 100, 86400000, &c->claim_idle_ms},
		{"QUOTE_CLEANUP_INTERVAL_SECONDS", 60, 1, 86400, &c->cleanup_interval_s},
		{"RELAY_INTERVAL_MS", 1000, 10, 3600000, &c->relay_interval_ms},
		{"RELAY_STALE_SECONDS", 300, 1, 86400, &c->relay_stale_s},
		{"RELAY_OVERDUE_SECONDS", 5, 1, 86400, &c->relay_overdue_s},
		{"POLL_MIN_MS", 200, 0, 3600000, &c->poll_min_ms},
		{"POLL_MAX_MS", 30000, 1, 3600000, &c->poll_max_ms},
		{"PROVIDER_TIMEOUT_MS", 10000, 10, 600000, &c->provider_timeout_ms},
		{"WORKER_CONCURRENCY", 1024, 1, 100000, &c->concurrency},
		{"DB_POOL_SIZE", 4, 1, 64, &c->db_pool_size},
		{"DB_QUERY_TIMEOUT_MS", 5000, 10, 600000, &c->db_timeout_ms},
		{"SHUTDOWN_GRACE_SECONDS", 10, 0, 3600, &c->grace_seconds},
	};
	if (cfg_int_table(ints, CFG_COUNT(ints)) != 0)
		goto fail;
	if (c->mock_settle_max_ms < c->mock_settle_min_ms) {
		cfg_fail("MOCK_SETTLE_MAX_MS", "must be at least MOCK_SETTLE_MIN_MS");
		goto fail;
	}
	if (c->poll_max_ms < c->poll_min_ms) {
		cfg_fail("POLL_MAX_MS", "must be at least POLL_MIN_MS");
		goto fail;
	}
	return 0;
fail:
	worker_config_free(c);
	return -1;
}

void worker_config_free(struct worker_config *c)
{
	cfg_base_free(&c->base);
	free(c->provider_base_url);
	free(c->mock_fail_rate);
	memset(c, 0, sizeof(*c));
}
