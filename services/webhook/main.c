/* main.c - rampart-webhook: relays committed events to webhook deliveries and
 * delivers them from the <prefix>:{webhooks} queue (SPEC 8), serving
 * /metrics, /healthz and /readyz on METRICS_LISTEN. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contracts.h"
#include "common/evloop.h"
#include "common/fdlimit.h"
#include "common/httpc.h"
#include "common/jobd.h"
#include "common/jobs.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pg.h"
#include "common/redis.h"
#include "common/resolve.h"
#include "webhook.h"

#define RAMPART_VERSION "0.1.0"

/* ---- admin and shutdown (common/jobd) --------------------------------------- */

static void webhook_gauges(void *arg)
{
	struct webhook *w = arg;
	metric_set(metrics_gauge("rampart_webhook_jobs_inflight",
				 "Delivery jobs taken and not yet settled", ""),
		   (int64_t)jobq_inflight(w->jobs));
	metric_set(metrics_gauge("rampart_webhook_requests_inflight",
				 "Webhook HTTP requests in flight", ""),
		   (int64_t)w->sending);
}

/* SIGTERM: reading has stopped; deliveries still waiting for their
 * endpoint's cap are handed back, the ones in progress finish. */
static void webhook_stop(void *arg)
{
	struct webhook *w = arg;
	w->draining = true;
	delivery_release_waiting(w);
}

/* ---- set-up ---------------------------------------------------------------- */

static int webhook_init(struct webhook *w)
{
	const struct webhook_config *c = &w->cfg;
	evloop_consumer_name(w->consumer, sizeof(w->consumer), "webhook");
	TAILQ_INIT(&w->deliveries);
	for (int i = 0; i < WH_ENDPOINT_BUCKETS; i++)
		LIST_INIT(&w->endpoints[i]);

	/* libcurl changes a socket's interest several times per request; the
	 * changelist folds each loop iteration's changes into one epoll_ctl. */
	w->base = evloop_new(true);
	if (!w->base)
		return -1;
	struct pg_pool_opts po = {.conninfo = c->base.database_url,
				  .size = c->db_pool_size,
				  .max_queue = 100000,
				  .max_pipeline = 512,
				  .query_timeout_ms = c->db_timeout_ms,
				  .connect_timeout_ms = 5000,
				  .name = "webhook"};
	w->pg = pg_pool_new(w->base, &po);
	struct jobq_opts jo = {.base = w->base,
			       .redis_url = c->base.redis_url,
			       .prefix = c->base.redis_prefix,
			       .queue = rk_queue(RQ_WEBHOOKS)->name,
			       .group = rk_queue(RQ_WEBHOOKS)->group,
			       .consumer = w->consumer,
			       .block_ms = 1000,
			       .batch = 128,
			       .max_inflight = c->concurrency,
			       .claim_idle_ms = c->claim_idle_ms,
			       .promote_ms = 50,
			       .maxlen = 1000000,
			       .command_timeout_ms = 5000};
	if (!w->pg || !(w->jobs = jobq_new(&jo, delivery_handle, w)))
		return -1;
	w->redis = jobq_redis(w->jobs);
	/* Connections are bounded by the job concurrency; per endpoint the
	 * delivery layer's cap applies (curl's per-host cap would queue
	 * requests inside curl, against their deadline). */
	w->http = httpc_new(w->base, c->concurrency, 0);
	w->dns = resolver_new(w->base);
	if (!w->http || !w->dns || delivery_init(w) != 0 || webhook_relay_init(w) != 0)
		return -1;
	struct jobd_opts dopt = {.base = w->base,
				 .pg = w->pg,
				 .jobs = w->jobs,
				 .host = c->metrics_host,
				 .port = c->metrics_port,
				 .grace_seconds = c->grace_seconds,
				 .on_stop = webhook_stop,
				 .gauges = webhook_gauges,
				 .arg = w};
	w->daemon = jobd_new(&dopt);
	return w->daemon ? 0 : -1;
}

/* Reverse order. Callbacks run by the frees below see w->closing and hand
 * their jobs back (released: pending in the stream, reclaimed later). */
static void webhook_free(struct webhook *w)
{
	w->closing = true;
	w->draining = true;
	/* evdns frees a cancelled lookup's state only from the loop: cancel
	 * them while everything is still up, and let the loop deliver that. */
	if (w->base && w->dns) {
		delivery_cancel_lookups(w);
		for (int i = 0; i < 10 && resolver_pending(w->dns) > 0; i++)
			evloop_run_once(w->base);
	}
	jobd_free(w->daemon);
	httpc_free(w->http);
	pg_batcher_free(w->load_batch);
	pg_batcher_free(w->record_batch);
	pg_pool_free(w->pg);
	if (w->base)
		delivery_shutdown(w);
	resolver_free(w->dns);
	jobq_free(w->jobs);
	timer_free(w->relay);
	evloop_free(w->base);
}

int main(int argc, char **argv)
{
	struct webhook w;
	int rc = 1;

	memset(&w, 0, sizeof(w));
	if ((rc = evloop_args(argc, argv, "rampart-webhook", RAMPART_VERSION)) >= 0)
		return rc;
	rc = 1;
	evloop_process_init();
	if (webhook_config_load(&w.cfg) != 0)
		return 1;
	log_init("webhook", w.cfg.base.log_level, w.cfg.base.log_json);
	/* A connection per delivery in flight, the pool, Redis, the admin port. */
	fd_limit_raise(w.cfg.concurrency + w.cfg.db_pool_size + 64);
	if (webhook_init(&w) != 0) {
		log_event(LOG_ERROR, "start-up failed", LF_S("consumer", w.consumer));
		goto done;
	}
	jobq_start(w.jobs);
	webhook_relay_start(&w);
	log_event(LOG_INFO, "rampart-webhook running", LF_S("consumer", w.consumer),
		  LF_I("metrics_port", w.cfg.metrics_port),
		  LF_I("allow_private", w.cfg.allow_private), LF_S("version", RAMPART_VERSION));
	evloop_run(w.base);
	rc = 0;
	log_event(LOG_INFO, "stopped", LF_I("exit_code", rc));
done:
	webhook_free(&w);
	webhook_config_free(&w.cfg);
	metrics_shutdown();
	evloop_shutdown();
	return rc;
}
