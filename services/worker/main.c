/* main.c - rampart-worker: drives payments through SPEC 5's state machine
 * from the <prefix>:{payments} queue, relays stalled payments, deletes
 * expired quotes, serves /metrics, /healthz and /readyz on METRICS_LISTEN. */
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
#include "worker.h"

#define RAMPART_VERSION	   "0.1.0"
#define PROVIDER_MAX_CONNS 256 /* connections to the ramp provider */

/* ---- admin and shutdown (common/jobd) --------------------------------------- */

static void worker_gauges(void *arg)
{
	struct worker *w = arg;
	metric_set(metrics_gauge("rampart_worker_jobs_inflight", "Jobs being worked on", ""),
		   (int64_t)jobq_inflight(w->jobs));
}

/* SIGTERM: reading has stopped; the maintenance timers stop too. */
static void worker_stop(void *arg)
{
	struct worker *w = arg;
	w->draining = true;
}

/* ---- set-up ---------------------------------------------------------------- */

static int worker_init(struct worker *w)
{
	const struct worker_config *c = &w->cfg;
	evloop_consumer_name(w->consumer, sizeof(w->consumer), "worker");
	w->base = evloop_new(false);
	if (!w->base)
		return -1;
	struct pg_pool_opts po = {.conninfo = c->base.database_url,
				  .size = c->db_pool_size,
				  .max_queue = 100000,
				  .max_pipeline = 512,
				  .query_timeout_ms = c->db_timeout_ms,
				  .connect_timeout_ms = 5000,
				  .name = "worker"};
	w->pg = pg_pool_new(w->base, &po);
	struct jobq_opts jo = {.base = w->base,
			       .redis_url = c->base.redis_url,
			       .prefix = c->base.redis_prefix,
			       .queue = rk_queue(RQ_PAYMENTS)->name,
			       .group = rk_queue(RQ_PAYMENTS)->group,
			       .consumer = w->consumer,
			       .block_ms = 1000,
			       .batch = 128,
			       .max_inflight = c->concurrency,
			       .claim_idle_ms = c->claim_idle_ms,
			       .promote_ms = 50,
			       .maxlen = 1000000,
			       .command_timeout_ms = 5000};
	if (!w->pg || !(w->jobs = jobq_new(&jo, steps_handle, w)))
		return -1;
	w->redis = jobq_redis(w->jobs);
	if (c->provider_http) {
		w->http = httpc_new(w->base, PROVIDER_MAX_CONNS, 64);
		w->provider = w->http ? provider_http_new(w->base, w->http, c->provider_base_url,
							  c->provider_timeout_ms)
				      : NULL;
	} else {
		struct mock_opts mo = {c->mock_settle_min_ms, c->mock_settle_max_ms, c->fail_rate,
				       (unsigned long long)c->mock_seed};
		w->provider = provider_mock_new(w->base, &mo);
	}
	if (!w->provider || steps_init(w) != 0 || relay_init(w) != 0 || cleanup_init(w) != 0)
		return -1;
	struct jobd_opts dopt = {.base = w->base,
				 .pg = w->pg,
				 .jobs = w->jobs,
				 .host = c->metrics_host,
				 .port = c->metrics_port,
				 .grace_seconds = c->grace_seconds,
				 .on_stop = worker_stop,
				 .gauges = worker_gauges,
				 .arg = w};
	w->daemon = jobd_new(&dopt);
	return w->daemon ? 0 : -1;
}

/* Reverse order. Jobs whose steps were cut short stay pending in the stream. */
static void worker_free(struct worker *w)
{
	jobd_free(w->daemon);
	pg_batcher_free(w->load_batch);
	pg_batcher_free(w->transition_batch);
	pg_batcher_free(w->due_batch);
	pg_pool_free(w->pg);
	provider_free(w->provider);
	httpc_free(w->http);
	jobq_free(w->jobs);
	timer_free(w->relay_timer);
	timer_free(w->cleanup_timer);
	evloop_free(w->base);
}

int main(int argc, char **argv)
{
	struct worker w;
	int rc = 1;

	memset(&w, 0, sizeof(w));
	if ((rc = evloop_args(argc, argv, "rampart-worker", RAMPART_VERSION)) >= 0)
		return rc;
	rc = 1;
	evloop_process_init();
	if (worker_config_load(&w.cfg) != 0)
		return 1;
	log_init("worker", w.cfg.base.log_level, w.cfg.base.log_json);
	fd_limit_raise(PROVIDER_MAX_CONNS + w.cfg.db_pool_size + 64); /* + pool, Redis, admin */
	if (worker_init(&w) != 0) {
		log_event(LOG_ERROR, "start-up failed", LF_S("consumer", w.consumer));
		goto done;
	}
	jobq_start(w.jobs);
	relay_start(&w);
	cleanup_start(&w);
	log_event(LOG_INFO, "rampart-worker running", LF_S("consumer", w.consumer),
		  LF_S("provider", w.provider->ops->name), LF_I("metrics_port", w.cfg.metrics_port),
		  LF_S("version", RAMPART_VERSION));
	evloop_run(w.base);
	rc = 0;
	log_event(LOG_INFO, "stopped", LF_I("exit_code", rc));
done:
	worker_free(&w);
	worker_config_free(&w.cfg);
	metrics_shutdown();
	evloop_shutdown();
	return rc;
}
