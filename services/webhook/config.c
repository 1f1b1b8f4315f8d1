/* config.c - the webhook daemon's configuration (SPEC 2), validated at start-up. */
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "webhook.h"

#define SCHEDULE_MAX_S (7LL * 86400)

int webhook_config_load(struct webhook_config *c)
{

	memset(c, 0, sizeof(*c));
	if (cfg_base_load(&c->base) ||
	    cfg_listen("METRICS_LISTEN", "0.0.0.0:9102", c->metrics_host, sizeof(c->metrics_host),
		       &c->metrics_port) ||
	    cfg_int_list("WEBHOOK_RETRY_SCHEDULE", "5,300,1800,7200,18000,36000", SCHEDULE_MAX_S,
			 &c->schedule, &c->nschedule) ||
	    cfg_bool("WEBHOOK_ALLOW_PRIVATE", false, &c->allow_private))
		goto fail;
	const struct cfg_int_var ints[] = {
		{"WEBHOOK_TIMEOUT_MS", 10000, 100, 600000, &c->timeout_ms},
		{"JOB_CLAIM_IDLE_MS", 30000, 100, 86400000, &c->claim_idle_ms},
		{"WEBHOOK_ENDPOINT_CONCURRENCY", 64, 1, 1000, &c->endpoint_concurrency},
		{"WEBHOOK_CONCURRENCY", 1024, 1, 100000, &c->concurrency},
		{"WEBHOOK_RELAY_INTERVAL_MS", 20, 10, 3600000, &c->relay_interval_ms},
		{"WEBHOOK_RELAY_STALE_SECONDS", 120, 1, 86400, &c->relay_stale_s},
		{"WEBHOOK_RELAY_OVERDUE_SECONDS", 5, 1, 86400, &c->relay_overdue_s},
		{"DB_POOL_SIZE", 4, 1, 64, &c->db_pool_size},
		{"DB_QUERY_TIMEOUT_MS", 5000, 10, 600000, &c->db_timeout_ms},
		{"SHUTDOWN_GRACE_SECONDS", 10, 0, 3600, &c->grace_seconds},
	};
	if (cfg_int_table(ints, CFG_COUNT(ints)) != 0)
		goto fail;
	return 0;
fail:
	webhook_config_free(c);
	return -1;
}

void webhook_config_free(struct webhook_config *c)
{
	cfg_base_free(&c->base);
	free(c->schedule);
	memset(c, 0, sizeof(*c));
}
