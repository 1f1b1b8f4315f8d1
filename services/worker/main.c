/* main.c - rampart-worker: drives payments through SPEC 5's state machine
 * from the <prefix>:{payments} queue, relays stalled payments, deletes
 * expired quotes, serves /metrics, /healthz and /readyz on METRICS_LISTEN. */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/http.h"
#include "common/httpc.h"
#include "common/jobs.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pg.h"
#include "common/redis.h"
#include "worker.h"

#define RAMPART_VERSION "0.1.0"

/* ---- admin HTTP ------------------------------------------------------------ */

/* GET /healthz */
static void admin_live(struct http_req *r, void *arg)
{
	(void)arg;
	http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

/* GET /readyz: connected to PostgreSQL and Redis, group present, not draining. */
static void admin_ready(struct http_req *r, void *arg)
{
	struct worker *w = arg;
	json_t *reasons = json_array();
	if (w->draining)
		json_array_append_new(reasons, json_string("shutting down"));
	if (!pg_pool_ready(w->pg))
		json_array_append_new(reasons, json_string("postgres not connected"));
	if (!jobq_ready(w->jobs))
		json_array_append_new(reasons, json_string("redis not connected or group missing"));
	http_reply_ready(r, reasons);
}

/* GET /metrics */
static void admin_metrics(struct http_req *r, void *arg)
{
	struct worker *w = arg;
	struct pg_pool_stats st;
	pg_pool_stats(w->pg, &st);
	metric_set(metrics_gauge("rampart_db_connections", "Open PostgreSQL connections", ""),
		   st.connections);
	metric_set(metrics_gauge("rampart_db_queued", "Statements waiting for a connection", ""),
		   st.queued);
	metric_set(metrics_gauge("rampart_worker_jobs_inflight", "Jobs being worked on", ""),
		   (int64_t)jobq_inflight(w->jobs));
	http_reply_metrics(r);
}

static const struct http_route admin_routes[] = {
	{"GET", "/healthz", admin_live, 0},
	{"GET", "/readyz", admin_ready, 0},
	{"GET", "/metrics", admin_metrics, 0},
};

/* ---- shutdown -------------------------------------------------------------- */

/* Ends the loop once the steps in progress are done (or the grace is over;
 * the rest stay pending in the stream and another worker reclaims them). */
static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	(void)fd;
	(void)what;
	/* In flight: jobs being worked on, and settle commands (XACK after ZADD)
	 * still waiting for Redis; a job is done only when both are. */
	size_t left = jobq_inflight(w->jobs) + rds_pending(w->redis);
	if (left > 0 && clock_mono_us() < w->drain_deadline_us)
		return;
	if (left > 0)
		log_event(LOG_WARN, "grace period over; unfinished jobs will be reclaimed",
			  LF_I("inflight", (long long)left));
	event_base_loopbreak(w->base);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tick = {0, 20000};
	(void)what;
	if (w->draining)
		return;
	log_event(LOG_INFO, "shutting down: no new jobs, finishing those in progress",
		  LF_S("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"),
		  LF_I("inflight", (long long)jobq_inflight(w->jobs)));
	w->draining = true;
	jobq_stop_reading(w->jobs);
	w->drain_deadline_us = clock_mono_us() + (uint64_t)w->cfg.grace_seconds * 1000000u;
	event_add(w->drain_ev, &tick);
}

/* ---- set-up ---------------------------------------------------------------- */

static int worker_init(struct worker *w)
{
	const struct worker_config *c = &w->cfg;
	char host[64] = "worker";
	gethostname(host, sizeof(host) - 1);
	snprintf(w->consumer, sizeof(w->consumer), "%s-%ld", host, (long)getpid());

	w->base = event_base_new();
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
			       .queue = "payments",
			       .group = "workers",
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
		w->http = httpc_new(w->base, 256, 64);
		w->provider = w->http ? provider_http_new(w->base, w->http, c->provider_base_url,
							  c->provider_timeout_ms)
				      : NULL;
	} else {
		struct mock_opts mo = {c->mock_settle_min_ms, c->mock_settle_max_ms, c->fail_rate,
				       (unsigned long long)c->mock_seed};
		w->provider = provider_mock_new(w->base, &mo);
	}
	if (!w->provider || steps_init(w) != 0 || relay_init(w) != 0)
		return -1;
	w->admin = http_server_new(w->base, admin_routes,
				   sizeof(admin_routes) / sizeof(admin_routes[0]), w);
	w->drain_ev = event_new(w->base, -1, EV_PERSIST, drain_tick, w);
	w->sigterm_ev = evsignal_new(w->base, SIGTERM, signal_cb, w);
	w->sigint_ev = evsignal_new(w->base, SIGINT, signal_cb, w);
	if (!w->admin || !w->drain_ev || !w->sigterm_ev || !w->sigint_ev ||
	    evsignal_add(w->sigterm_ev, NULL) || evsignal_add(w->sigint_ev, NULL))
		return -1;
	return http_server_listen(w->admin, c->metrics_host, c->metrics_port, false);
}

/* Reverse order. Jobs whose steps were cut short stay pending in the stream. */
static void worker_free(struct worker *w)
{
	if (w->admin)
		http_server_free(w->admin);
	pg_batcher_free(w->load_batch);
	pg_batcher_free(w->transition_batch);
	pg_pool_free(w->pg);
	provider_free(w->provider);
	httpc_free(w->http);
	jobq_free(w->jobs);
	const struct event *evs[] = {w->relay_ev, w->cleanup_ev, w->drain_ev, w->sigterm_ev,
				     w->sigint_ev};
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i])
			event_free((struct event *)evs[i]);
	if (w->base)
		event_base_free(w->base);
}

int main(int argc, char **argv)
{
	struct worker w;
	int rc = 1;

	memset(&w, 0, sizeof(w));
	if (argc > 1) {
		if (strcmp(argv[1], "--version") == 0) {
			printf("rampart-worker %s\n", RAMPART_VERSION);
			return 0;
		}
		fprintf(argc > 1 && strcmp(argv[1], "--help") == 0 ? stdout : stderr,
			"usage: rampart-worker [--version | --help]\n"
			"Configuration comes from the environment; see README.md.\n");
		return strcmp(argv[1], "--help") == 0 ? 0 : 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (worker_config_load(&w.cfg) != 0)
		return 1;
	log_init("worker", w.cfg.base.log_level, w.cfg.base.log_json);
	srand((unsigned)clock_mono_us());
	if (worker_init(&w) != 0) {
		log_event(LOG_ERROR, "start-up failed", LF_S("consumer", w.consumer));
		goto done;
	}
	jobq_start(w.jobs);
	relay_start(&w);
	log_event(LOG_INFO, "rampart-worker running", LF_S("consumer", w.consumer),
		  LF_S("provider", w.provider->ops->name), LF_I("metrics_port", w.cfg.metrics_port),
		  LF_S("version", RAMPART_VERSION));
	event_base_dispatch(w.base);
	rc = 0;
	log_event(LOG_INFO, "stopped", LF_I("exit_code", rc));
done:
	worker_free(&w);
	worker_config_free(&w.cfg);
	metrics_shutdown();
	libevent_global_shutdown();
	return rc;
}
