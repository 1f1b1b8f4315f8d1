/* worker.h - the worker daemon's configuration and shared state. */
#ifndef WORKER_WORKER_H
#define WORKER_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/payment.h"
#include "provider.h"

struct event;
struct event_base;
struct jobd;
struct jobq;
struct pg_pool;
struct pg_batcher;
struct rds;
struct httpc;
struct job;

struct worker_config {
	struct cfg_base base; /* DATABASE_URL, REDIS_URL, REDIS_PREFIX, LOG_* */
	char metrics_host[64];
	int metrics_port;
	int provider_http; /* PROVIDER: 0 mock, 1 http */
	char *provider_base_url;
	int provider_timeout_ms;
	int mock_settle_min_ms, mock_settle_max_ms;
	char *mock_fail_rate; /* MOCK_FAIL_RATE as given, "0".."1" */
	double fail_rate;     /* parsed: a probability, not money */
	long long mock_seed;
	int max_attempts;
	int claim_idle_ms;
	int cleanup_interval_s;
	int relay_interval_ms, relay_stale_s, relay_overdue_s;
	int poll_min_ms, poll_max_ms;
	int concurrency; /* WORKER_CONCURRENCY: jobs in flight */
	int db_pool_size, db_timeout_ms;
	int grace_seconds;
};

int worker_config_load(struct worker_config *c) __attribute__((warn_unused_result));
void worker_config_free(struct worker_config *c);

struct worker {
	struct worker_config cfg;
	struct event_base *base;
	struct pg_pool *pg;
	struct jobq *jobs;
	struct rds *redis; /* the queue's command connection (borrowed) */
	struct httpc *http;
	struct provider *provider;
	struct jobd *daemon; /* admin server, SIGTERM drain */
	struct timer *relay_timer, *cleanup_timer;
	struct pg_batcher *load_batch, *transition_batch, *due_batch; /* steps.c */
	char consumer[96];
	bool draining; /* SIGTERM seen: maintenance timers idle */
};

/* steps.c: the job handler and transitions. */
int steps_init(struct worker *w) __attribute__((warn_unused_result));
void steps_handle(void *worker, struct job *job);

/* relay.c: re-enqueues stalled payments. */
int relay_init(struct worker *w) __attribute__((warn_unused_result));
void relay_start(struct worker *w);

/* cleanup.c: deletes expired quotes and Idempotency-Key records. */
int cleanup_init(struct worker *w) __attribute__((warn_unused_result));
void cleanup_start(struct worker *w);

#endif
