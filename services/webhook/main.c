/* main.c - rampart-webhook: relays committed events to webhook deliveries and
 * delivers them from the <prefix>:{webhooks} queue (SPEC 8), serving
 * /metrics, /healthz and /readyz on METRICS_LISTEN. */
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
#include "common/resolve.h"
#include "webhook.h"

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
	struct webhook *w = arg;
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
	struct webhook *w = arg;
	struct pg_pool_stats st;
	pg_pool_stats(w->pg, &st);
	metric_set(metrics_gauge("rampart_db_connections", "Open PostgreSQL connections", ""),
		   st.connections);
	metric_set(metrics_gauge("rampart_db_queued", "Statements waiting for a connection", ""),
		   st.queued);
	metric_set(metrics_gauge("rampart_webhook_jobs_inflight",
				 "Delivery jobs taken and not yet settled", ""),
		   (int64_t)jobq_inflight(w->jobs));
	metric_set(metrics_gauge("rampart_webhook_requests_inflight",
				 "Webhook HTTP requests in flight", ""),
		   (int64_t)w->sending);
	http_reply_metrics(r);
}

static const struct http_route admin_routes[] = {
	{"GET", "/healthz", admin_live, 0},
	{"GET", "/readyz", admin_ready, 0},
	{"GET", "/metrics", admin_metrics, 0},
};

/* ---- shutdown -------------------------------------------------------------- */

/* Ends the loop once the attempts in progress are settled (or the grace is
 * over: the rest stay pending in the stream and are reclaimed). */
static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct webhook *w = arg;
	(void)fd;
	(void)what;
	size_t left = jobq_inflight(w->jobs) + rds_pending(w->redis);
	if (left > 0 && clock_mono_us() < w->drain_deadline_us)
		return;
	if (left > 0)
		log_event(LOG_WARN, "grace period over; unfinished deliveries will be reclaimed",
			  LF_I("inflight", (long long)left));
	event_base_loopbreak(w->base);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct webhook *w = arg;
	struct timeval tick = {0, 20000};
	(void)what;
	if (w->draining)
		return;
	log_event(LOG_INFO, "shutting down: no new deliveries, finishing those in progress",
		  LF_S("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"),
		  LF_I("inflight", (long long)jobq_inflight(w->jobs)));
	w->draining = true;
	jobq_stop_reading(w->jobs);
	delivery_release_waiting(w);
	w->drain_deadline_us = clock_mono_us() + (uint64_t)w->cfg.grace_seconds * 1000000u;
	event_add(w->drain_ev, &tick);
}

/* ---- set-up ---------------------------------------------------------------- */

static int webhook_init(struct webhook *w)
{
	const struct webhook_config *c = &w->cfg;
	char host[64] = "webhook";
	gethostname(host, sizeof(host) - 1);
	snprintf(w->consumer, sizeof(w->consumer), "%s-%ld", host, (long)getpid());
	TAILQ_INIT(&w->deliveries);
	LIST_INIT(&w->endpoints);

	w->base = event_base_new();
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
			       .queue = "webhooks",
			       .group = "webhooks",
			       .consumer = w->consumer,
			       .block_ms = 1000,
			       .batch = 128,
			       .max_inflight = c->concurrency,
			       .claim_idle_ms = c->claim_idle_ms,
			       .promote_ms = 100,
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

/* Reverse order. Callbacks run by the frees below see w->closing and hand
 * their jobs back (released: pending in the stream, reclaimed later). */
static void webhook_free(struct webhook *w)
{
	w->closing = true;
	if (w->admin)
		http_server_free(w->admin);
	httpc_free(w->http);
	pg_batcher_free(w->load_batch);
	pg_batcher_free(w->record_batch);
	pg_pool_free(w->pg);
	if (w->base)
		delivery_shutdown(w);
	resolver_free(w->dns);
	jobq_free(w->jobs);
	const struct event *evs[] = {w->relay_ev, w->drain_ev, w->sigterm_ev, w->sigint_ev};
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i])
			event_free((struct event *)evs[i]);
	if (w->base)
		event_base_free(w->base);
}

int main(int argc, char **argv)
{
	struct webhook w;
	int rc = 1;

	memset(&w, 0, sizeof(w));
	if (argc > 1) {
		if (strcmp(argv[1], "--version") == 0) {
			printf("rampart-webhook %s\n", RAMPART_VERSION);
			return 0;
		}
		fprintf(strcmp(argv[1], "--help") == 0 ? stdout : stderr,
			"usage: rampart-webhook [--version | --help]\n"
			"Configuration comes from the environment; see README.md.\n");
		return strcmp(argv[1], "--help") == 0 ? 0 : 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (webhook_config_load(&w.cfg) != 0)
		return 1;
	log_init("webhook", w.cfg.base.log_level, w.cfg.base.log_json);
	srand((unsigned)clock_mono_us());
	if (webhook_init(&w) != 0) {
		log_event(LOG_ERROR, "start-up failed", LF_S("consumer", w.consumer));
		goto done;
	}
	jobq_start(w.jobs);
	webhook_relay_start(&w);
	log_event(LOG_INFO, "rampart-webhook running", LF_S("consumer", w.consumer),
		  LF_I("metrics_port", w.cfg.metrics_port),
		  LF_I("allow_private", w.cfg.allow_private), LF_S("version", RAMPART_VERSION));
	event_base_dispatch(w.base);
	rc = 0;
	log_event(LOG_INFO, "stopped", LF_I("exit_code", rc));
done:
	webhook_free(&w);
	webhook_config_free(&w.cfg);
	metrics_shutdown();
	libevent_global_shutdown();
	return rc;
}
