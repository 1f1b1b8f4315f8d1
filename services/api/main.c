/* main.c - rampart-api: configuration, one event loop per core sharing the
 * port through SO_REUSEPORT, signals, graceful drain, teardown. */
#include <event2/thread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "common/contracts.h"
#include "common/evloop.h"
#include "common/fdlimit.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pg.h"
#include "common/redis.h"
#include "common/rnd.h"

#define RAMPART_VERSION	 "0.1.0"
#define API_CLIENTS_ROOM 10000 /* client connections the open-file limit makes room for */

static const struct http_route routes[] = {
	{"POST", "/v1/quotes", quotes_create, HTTP_AUTH | HTTP_SHED | HTTP_JSON_BODY},
	{"GET", "/v1/quotes/{id}", quotes_get, HTTP_AUTH | HTTP_SHED},
	{"POST", "/v1/payments", payments_create, HTTP_AUTH | HTTP_SHED | HTTP_JSON_BODY},
	{"GET", "/v1/payments", payments_list, HTTP_AUTH | HTTP_SHED},
	{"GET", "/v1/payments/{id}", payments_get, HTTP_AUTH | HTTP_SHED},
	{"GET", "/v1/payments/{id}/events", payment_events_get, HTTP_AUTH | HTTP_SHED},
	{"GET", "/v1/summary", summary_get, HTTP_AUTH | HTTP_SHED},
	{"POST", "/v1/webhook_endpoints", webhooks_create, HTTP_AUTH | HTTP_SHED | HTTP_JSON_BODY},
	{"GET", "/v1/webhook_endpoints", webhooks_list, HTTP_AUTH | HTTP_SHED},
	{"DELETE", "/v1/webhook_endpoints/{id}", webhooks_delete, HTTP_AUTH | HTTP_SHED},
	{"GET", "/v1/events/{id}", events_get, HTTP_AUTH | HTTP_SHED},
	{"POST", "/v1/events/{id}/redeliver", events_redeliver, HTTP_AUTH | HTTP_SHED},
	{"POST", "/v1/fees/calculate", fees_calculate, HTTP_AUTH | HTTP_JSON_BODY},
	{"GET", "/health", health_full, 0},
	{"GET", "/healthz", health_live, 0},
	{"GET", "/readyz", health_ready, 0},
	{"GET", "/metrics", health_metrics, 0},
	{"GET", "/openapi.json", openapi_get, 0},
	{"GET", "/dashboard", dashboard_get, 0},
	{"GET", "/dashboard/{file}", dashboard_get, 0},
};

/* ------------------------------------------------------------------------ */
/* Per-loop gauges and shutdown                                             */
/* ------------------------------------------------------------------------ */

static void gauges_tick(void *arg)
{
	struct loop *l = arg;
	struct pg_pool_stats st;
	char labels[32];
	snprintf(labels, sizeof(labels), "loop=\"%d\"", l->index);
	pg_pool_stats(l->pg, &st);
	metric_set(metrics_gauge("rampart_db_connections", "Open PostgreSQL connections", labels),
		   st.connections);
	metric_set(metrics_gauge("rampart_db_inflight", "Statements awaiting results", labels),
		   st.inflight);
	metric_set(
		metrics_gauge("rampart_db_queued", "Statements waiting for a connection", labels),
		st.queued);
	metric_set(metrics_gauge("rampart_redis_connected", "1 when connected to Redis", labels),
		   rds_connected(l->redis));
	metric_set(metrics_gauge("rampart_http_inflight", "Requests not yet answered", labels),
		   (int64_t)http_server_inflight(l->http));
}

/* Waits for in-flight requests (or the grace period), then ends the loop. */
static void drain_tick(void *arg)
{
	struct loop *l = arg;
	size_t left = http_server_inflight(l->http);
	if (left > 0 && clock_mono_us() < l->drain_deadline_us)
		return;
	if (left > 0)
		log_event(LOG_WARN, "grace period over, dropping requests", LF_I("loop", l->index),
			  LF_I("inflight", (long long)left));
	evloop_stop(l->base);
}

static void stop_cb(void *arg)
{
	struct loop *l = arg;
	http_server_stop_accepting(l->http);
	l->drain_deadline_us = clock_mono_us() + (uint64_t)l->app->cfg.grace_seconds * 1000000u;
	timer_every(l->drain, 20);
}

static void *loop_main(void *arg)
{
	struct loop *l = arg;
	evloop_run(l->base);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Set-up and teardown                                                      */
/* ------------------------------------------------------------------------ */

/* Admission (HTTP_SHED routes): while this loop's database queue stands,
 * new requests are refused with 503 OVERLOADED and Retry-After: 1 instead of
 * joining the wait (API_ADMISSION_TARGET_MS, docs/operations.md). */
static int admit_hook(void *arg)
{
	struct loop *l = arg;

	return pg_pool_refusing(l->pg) ? 1 : 0;
}

static int loop_init(struct app *a, struct loop *l, int index)
{
	char name[32];
	l->app = a;
	l->index = index;
	/* No epoll changelist (evloop_new(false)): it defers epoll_ctl(DEL) to
	 * the next loop pass, after evhttp has closed a finished connection's
	 * socket, so a loop would DEL a descriptor number that another loop's
	 * accept4 may already own again (harmless to the kernel, a data race on
	 * the descriptor for ThreadSanitizer). Without it every DEL precedes the
	 * close (see conn_bev in common/http.c); its cost is measured in
	 * docs/reliability.md. */
	l->base = evloop_new(false);
	if (!l->base)
		return -1;
	snprintf(name, sizeof(name), "api-%d", index);
	struct pg_pool_opts po = {.conninfo = a->cfg.base.database_url,
				  .size = a->cfg.db_pool_size,
				  .max_queue = 10000,
				  .max_pipeline = 512,
				  .query_timeout_ms = a->cfg.db_timeout_ms,
				  .admission_target_ms = a->cfg.admission_target_ms,
				  .admission_interval_ms = a->cfg.admission_interval_ms,
				  .connect_timeout_ms = 5000,
				  .name = name};
	struct rds_opts ro = {.url = a->cfg.base.redis_url,
			      .connect_timeout_ms = 3000,
			      .command_timeout_ms = a->cfg.redis_timeout_ms,
			      .name = name};
	l->pg = pg_pool_new(l->base, &po);
	l->redis = rds_new(l->base, &ro);
	l->http = http_server_new(l->base, routes, sizeof(routes) / sizeof(routes[0]), l);
	if (!l->pg || !l->redis || !l->http)
		return -1;
	http_server_set_auth(l->http, auth_hook);
	http_server_set_admit(l->http, admit_hook);
	if (auth_loop_init(l) != 0 || quotes_init(l) != 0 || payments_init(l) != 0 ||
	    webhooks_init(l) != 0 || fees_loop_init(l) != 0 || summary_init(l) != 0)
		return -1;
	l->stop = timer_new(l->base, stop_cb, l);
	l->drain = timer_new(l->base, drain_tick, l);
	l->gauges = timer_new(l->base, gauges_tick, l);
	if (!l->stop || !l->drain || !l->gauges)
		return -1;
	timer_every(l->gauges, 1000);
	if (index == 0)
		market_start(l);
	return http_server_listen(l->http, a->cfg.listen_host, a->cfg.listen_port, a->nloops > 1);
}

/* Reverse order of loop_init. The HTTP server goes first so that requests
 * still waiting on the database are marked gone; the pool and Redis client
 * then fail their callbacks, whose replies are dropped. */
static void loop_free(struct loop *l)
{
	if (l->http)
		http_server_free(l->http);
	fees_loop_free(l);
	pg_batcher_free(l->quote_insert);
	pg_batcher_free(l->payment_get);
	pg_pool_free(l->pg);
	rds_free(l->redis);
	keycache_free(l->keys);
	timer_free(l->market);
	timer_free(l->stop);
	timer_free(l->drain);
	timer_free(l->gauges);
	evloop_free(l->base);
}

static void signal_cb(void *arg, const char *sig)
{
	struct event_base *main_base = arg;
	log_event(LOG_INFO, "shutting down", LF_S("signal", sig));
	evloop_stop(main_base);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: rampart-api [--migrate | --version | --help]\n"
		     "       rampart-api keys create NAME | keys list | keys revoke ID\n"
		     "  (no option)  serve the REST API on API_LISTEN\n"
		     "  --migrate    apply pending database migrations and exit\n"
		     "  keys ...     manage the API keys stored (hashed) in PostgreSQL\n"
		     "Configuration comes from the environment; see README.md.\n");
}

int main(int argc, char **argv)
{
	struct app a;
	bool migrate = false;
	int rc = 1;
	int keys_at = 0; /* argv index of "keys", 0 = not the keys subcommand */

	memset(&a, 0, sizeof(a));
	if (argc > 1 && strcmp(argv[1], "keys") == 0)
		keys_at = 1;
	for (int i = 1; i < argc && !keys_at; i++) {
		if (strcmp(argv[i], "--migrate") == 0) {
			migrate = true;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("rampart-api %s\n", RAMPART_VERSION);
			return 0;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "rampart-api: unknown option %s\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	evloop_process_init(); /* SIGPIPE ignored */
	if (api_config_load(&a.cfg) != 0)
		return 1;
	log_init("api", a.cfg.base.log_level, a.cfg.base.log_json);
	if (keys_at) {
		rc = keys_main(a.cfg.base.database_url, argc - keys_at - 1, argv + keys_at + 1);
		api_config_free(&a.cfg);
		return rc;
	}
	if (migrate) {
		rc = migrate_run(a.cfg.base.database_url) == 0 ? 0 : 1;
		api_config_free(&a.cfg);
		return rc;
	}

	/* Client connections are not capped by evhttp (libevent 2.1): make
	 * room for many, as Redis does for maxclients, plus each loop's pool,
	 * Redis connections and listeners. Accepting stops at the limit. */
	fd_limit_raise(API_CLIENTS_ROOM + (long)a.cfg.threads * (a.cfg.db_pool_size + 8) + 64);
	evthread_use_pthreads(); /* libevent itself: the main thread fires each loop's stop timer */
	const char *prefix = a.cfg.base.redis_prefix;
	rk_snapshot_key(a.snapshot_key, sizeof(a.snapshot_key), prefix);
	rk_queue_key(a.jobs_key, sizeof(a.jobs_key), prefix, RQ_PAYMENTS, RK_STREAM);
	rk_queue_key(a.dlq_key, sizeof(a.dlq_key), prefix, RQ_PAYMENTS, RK_DLQ);
	rk_queue_key(a.wh_jobs_key, sizeof(a.wh_jobs_key), prefix, RQ_WEBHOOKS, RK_STREAM);
	rk_queue_key(a.wh_dlq_key, sizeof(a.wh_dlq_key), prefix, RQ_WEBHOOKS, RK_DLQ);
	a.nonce = (unsigned)rnd_u64();
	atomic_init(&a.draining, false);
	struct event_base *main_base = evloop_new(false);
	struct sigstop *signals = NULL;
	if (!main_base || market_init(&a.market) != 0 || auth_init(&a) != 0)
		goto done;
	a.nloops = a.cfg.threads;
	a.loops = calloc((size_t)a.nloops, sizeof(*a.loops));
	if (!a.loops)
		goto done;
	for (int i = 0; i < a.nloops; i++) {
		if (loop_init(&a, &a.loops[i], i) != 0) {
			log_event(LOG_ERROR, "start-up failed", LF_I("loop", i));
			goto done;
		}
	}
	if (!(signals = sigstop_new(main_base, signal_cb, main_base)))
		goto done;
	int started = 0;
	for (; started < a.nloops; started++)
		if (pthread_create(&a.loops[started].thread, NULL, loop_main, &a.loops[started]))
			break;
	log_event(LOG_INFO, "rampart-api listening", LF_S("host", a.cfg.listen_host),
		  LF_I("port", a.cfg.listen_port), LF_I("loops", a.nloops),
		  LF_S("version", RAMPART_VERSION));
	if (started == a.nloops)
		evloop_run(main_base);

	/* Drain: readiness turns 503, listeners close, in-flight requests finish. */
	atomic_store(&a.draining, true);
	for (int i = 0; i < started; i++)
		timer_fire(a.loops[i].stop);
	for (int i = 0; i < started; i++)
		pthread_join(a.loops[i].thread, NULL);
	rc = started == a.nloops ? 0 : 1;
	log_event(LOG_INFO, "stopped", LF_I("exit_code", rc));
done:
	sigstop_free(signals);
	for (int i = 0; a.loops && i < a.nloops; i++)
		loop_free(&a.loops[i]);
	free(a.loops);
	auth_free(&a);
	market_free(&a.market);
	evloop_free(main_base);
	api_config_free(&a.cfg);
	metrics_shutdown();
	evloop_shutdown();
	return rc;
}
