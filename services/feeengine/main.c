/* main.c - rampart-feeengine: refreshes market data into the Redis snapshot
 * and answers fee requests from <prefix>:{fees}:requests (SPEC 6), serving
 * /metrics, /healthz and /readyz on METRICS_LISTEN. No PostgreSQL. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contracts.h"
#include "common/evloop.h"
#include "common/httpc.h"
#include "common/jobd.h"
#include "common/jobs.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/redis.h"
#include "feeengine.h"

#define RAMPART_VERSION "0.1.0"

static void fee_gauges(void *arg)
{
	struct feeengine *fe = arg;
	metric_set(metrics_gauge("rampart_fee_requests_inflight",
				 "Fee requests read and not yet answered", ""),
		   (int64_t)fe->pending);
}

/* Ready once a snapshot reached Redis (SPEC: ready once a snapshot exists). */
static void fee_ready(void *arg, json_t *reasons)
{
	struct feeengine *fe = arg;
	if (!fe->snapshot_written)
		json_array_append_new(reasons, json_string("no market snapshot written yet"));
}

static void fee_stop(void *arg)
{
	struct feeengine *fe = arg;
	fe->draining = true;
	if (fe->refresh)
		timer_stop(fe->refresh);
}

static int fee_init(struct feeengine *fe)
{
	const struct fee_config *c = &fe->cfg;
	evloop_consumer_name(fe->consumer, sizeof(fe->consumer), "feeengine");
	rk_snapshot_key(fe->snapshot_key, sizeof(fe->snapshot_key), c->base.redis_prefix);

	fe->base = evloop_new(false);
	if (!fe->base)
		return -1;
	struct jobq_opts jo = {.base = fe->base,
			       .redis_url = c->base.redis_url,
			       .prefix = c->base.redis_prefix,
			       .queue = rk_queue(RQ_FEES)->name,
			       .stream_kind = rk_queue(RQ_FEES)->stream_kind,
			       .no_delayed = true,
			       .noack = true, /* a request outlives no deadline: see fees.c */
			       .group = rk_queue(RQ_FEES)->group,
			       .consumer = fe->consumer,
			       .block_ms = 1000,
			       .batch = 256,
			       .max_inflight = c->concurrency,
			       .claim_idle_ms = c->claim_idle_ms,
			       .maxlen = 100000,
			       .command_timeout_ms = 5000};
	if (!(fe->jobs = jobq_new(&jo, fees_handle, fe)))
		return -1;
	fe->redis = jobq_redis(fe->jobs);
	fe->http = httpc_new(fe->base, 256, 0);
	if (!fe->http || feed_init(fe) != 0 || fees_init(fe) != 0 || ai_init(fe) != 0)
		return -1;
	struct jobd_opts dopt = {.base = fe->base,
				 .jobs = fe->jobs,
				 .host = c->metrics_host,
				 .port = c->metrics_port,
				 .grace_seconds = c->grace_seconds,
				 .on_stop = fee_stop,
				 .gauges = fee_gauges,
				 .ready = fee_ready,
				 .arg = fe};
	fe->daemon = jobd_new(&dopt);
	return fe->daemon ? 0 : -1;
}

/* Reverse order; callbacks run by httpc_free see fe->closing. */
static void fee_free(struct feeengine *fe)
{
	fe->closing = true;
	jobd_free(fe->daemon);
	httpc_free(fe->http);
	ai_free(fe);
	feed_free(fe);
	jobq_free(fe->jobs);
	evloop_free(fe->base);
}

int main(int argc, char **argv)
{
	static struct feeengine fe; /* large (the view, the sources): not on the stack */
	int rc = 1;

	if ((rc = evloop_args(argc, argv, "rampart-feeengine", RAMPART_VERSION)) >= 0)
		return rc;
	rc = 1;
	evloop_process_init();
	if (fee_config_load(&fe.cfg) != 0)
		return 1;
	log_init("feeengine", fe.cfg.base.log_level, fe.cfg.base.log_json);
	if (fee_init(&fe) != 0) {
		log_event(LOG_ERROR, "start-up failed", LF_S("consumer", fe.consumer));
		goto done;
	}
	jobq_start(fe.jobs);
	feed_start(&fe);
	log_event(LOG_INFO, "rampart-feeengine running", LF_S("consumer", fe.consumer),
		  LF_I("metrics_port", fe.cfg.metrics_port), LF_I("refresh_s", fe.cfg.refresh_s),
		  LF_I("ai", fe.cache != NULL), LF_S("version", RAMPART_VERSION));
	evloop_run(fe.base);
	rc = 0;
	log_event(LOG_INFO, "stopped", LF_I("exit_code", rc));
done:
	fee_free(&fe);
	fee_config_free(&fe.cfg);
	metrics_shutdown();
	evloop_shutdown();
	return rc;
}
