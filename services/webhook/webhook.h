/* webhook.h - the webhook daemon's configuration and shared state. */
#ifndef WEBHOOK_WEBHOOK_H
#define WEBHOOK_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "common/config.h"
#include "common/ssrf.h"

struct event;
struct event_base;
struct jobd;
struct httpc;
struct job;
struct jobq;
struct pg_pool;
struct pg_batcher;
struct rds;
struct resolver;

struct webhook_config {
	struct cfg_base base; /* DATABASE_URL, REDIS_URL, REDIS_PREFIX, LOG_* */
	char metrics_host[64];
	int metrics_port;
	long long *schedule; /* WEBHOOK_RETRY_SCHEDULE: seconds before retry i */
	size_t nschedule;    /* retries before the DLQ */
	int timeout_ms;	     /* WEBHOOK_TIMEOUT_MS, per attempt */
	bool allow_private;  /* WEBHOOK_ALLOW_PRIVATE */
	int claim_idle_ms;
	int endpoint_concurrency; /* WEBHOOK_ENDPOINT_CONCURRENCY */
	int concurrency;	  /* WEBHOOK_CONCURRENCY: jobs in flight */
	int relay_interval_ms, relay_stale_s, relay_overdue_s;
	int db_pool_size, db_timeout_ms;
	int grace_seconds;
};

int webhook_config_load(struct webhook_config *c) __attribute__((warn_unused_result));
void webhook_config_free(struct webhook_config *c);

struct delivery;
struct wh_endpoint;
TAILQ_HEAD(delivery_list, delivery);
LIST_HEAD(wh_endpoint_list, wh_endpoint);
#define WH_ENDPOINT_BUCKETS 256

struct webhook {
	struct webhook_config cfg;
	struct event_base *base;
	struct pg_pool *pg;
	struct jobq *jobs;
	struct rds *redis; /* the queue's command connection (borrowed) */
	struct httpc *http;
	struct resolver *dns;
	struct jobd *daemon;			      /* admin server, SIGTERM drain */
	struct timer *relay;			      /* relay.c: WEBHOOK_RELAY_INTERVAL_MS */
	struct pg_batcher *load_batch, *record_batch; /* delivery.c */
	int stmt_cancel;
	struct delivery_list deliveries; /* every delivery context alive */
	/* Endpoints with work in progress or recently idle (their pace is
	 * kept), hashed by id. */
	struct wh_endpoint_list endpoints[WH_ENDPOINT_BUCKETS];
	uint64_t endpoints_swept_us;
	size_t sending; /* HTTP requests in flight */
	char consumer[96];
	bool draining, closing;
};

/* delivery.c: the job handler, per-endpoint caps, outcomes. */
int delivery_init(struct webhook *w) __attribute__((warn_unused_result));
void delivery_handle(void *webhook, struct job *job);
/* SIGTERM: jobs still waiting for their endpoint's turn go back (released). */
void delivery_release_waiting(struct webhook *w);
/* Teardown, first: cancels the address lookups in progress (their
 * deliveries are released by delivery_shutdown). */
void delivery_cancel_lookups(struct webhook *w);
/* Teardown, after httpc and the pool were freed: releases and frees what is
 * left (lookups in progress, waiting jobs). */
void delivery_shutdown(struct webhook *w);

/* relay.c: events -> deliveries -> jobs (the outbox relay). */
int webhook_relay_init(struct webhook *w) __attribute__((warn_unused_result));
void webhook_relay_start(struct webhook *w);

/* retry.c: the retry schedule, pure and unit-tested (the SSRF guard's
 * address classes are common/ssrf.h). */

/* The delay before retry number attempt (1 = after the first attempt) in
 * milliseconds, or -1 when the schedule is exhausted (DLQ). retry_after_s
 * (>= 0, from a 429/502/503's Retry-After; -1 if none) is a lower bound.
 * jitter in [0, 1) adds up to 10% of the step. */
long long retry_delay_ms(const long long *schedule, size_t n, int attempt, long long retry_after_s,
			 double jitter);

/* Parses a Retry-After value: delay-seconds or an HTTP-date (relative to
 * now_s). Returns seconds (>= 0, capped at a day) or -1. */
long long retry_after_parse(const char *v, long long now_s);

#endif
