/* config.h - the api daemon's configuration, read from the environment. */
#ifndef API_CONFIG_H
#define API_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"

struct api_config {
	struct cfg_base base; /* DATABASE_URL, REDIS_URL, REDIS_PREFIX, LOG_* */
	char listen_host[64];
	int listen_port;
	char **api_keys; /* static keys from API_KEYS */
	size_t n_api_keys;
	long long rate_rps, rate_burst;
	bool rate_shared;	    /* RATE_LIMIT_SHARED: the bucket lives in Redis */
	long long rate_lease;	    /* RATE_LIMIT_LEASE: tokens a loop leases at once (0 = auto) */
	bool webhook_allow_private; /* WEBHOOK_ALLOW_PRIVATE: as the webhook daemon's */
	long long quote_ttl;
	int fee_platform_bps, fee_onramp_bps, fee_offramp_bps;
	int threads;	   /* API_THREADS: event loops; 0 in the env = one per core */
	int db_pool_size;  /* DB_POOL_SIZE: connections per loop */
	int db_timeout_ms; /* DB_QUERY_TIMEOUT_MS */
	/* API_ADMISSION_TARGET_MS / _INTERVAL_MS: refuse HTTP_SHED routes with
	 * 503 OVERLOADED while the loop's database queue stands (0 = never). */
	int admission_target_ms;
	int admission_interval_ms;
	int redis_timeout_ms;  /* REDIS_TIMEOUT_MS */
	int key_cache_seconds; /* API_KEY_CACHE_SECONDS: DB key lookups cached this long */
	int grace_seconds;     /* SHUTDOWN_GRACE_SECONDS */
	int fee_timeout_ms;    /* FEE_TIMEOUT_MS: POST /v1/fees/calculate waits this long */
	int market_ttl_s;      /* MARKET_CACHE_TTL_SECONDS: an older snapshot is "cached" */
};

/* Reads and validates every variable. Returns 0, or -1 after printing
 * "config: NAME: why" for the first bad one. On success free with
 * api_config_free. */
int api_config_load(struct api_config *c) __attribute__((warn_unused_result));
void api_config_free(struct api_config *c);

#endif
