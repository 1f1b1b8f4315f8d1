/* jobd.c - the admin server and the graceful drain of a job-queue daemon. */
#include "common/jobd.h"

#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>

#include "common/clock.h"
#include "common/http.h"
#include "common/jobs.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pg.h"
#include "common/redis.h"

struct jobd {
	struct jobd_opts o;
	struct http_server *admin;
	struct event *drain_ev, *sigterm_ev, *sigint_ev;
	bool draining;
	uint64_t deadline_us;
};

/* GET /healthz: the loop answers. */
static void admin_live(struct http_req *r, void *arg)
{
	(void)arg;
	http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

/* GET /readyz: connected to PostgreSQL (when the daemon uses it) and Redis,
 * group present, not draining, and whatever the daemon's ready hook adds. */
static void admin_ready(struct http_req *r, void *arg)
{
	struct jobd *d = arg;
	json_t *reasons = json_array();
	if (d->draining)
		json_array_append_new(reasons, json_string("shutting down"));
	if (d->o.pg && !pg_pool_ready(d->o.pg))
		json_array_append_new(reasons, json_string("postgres not connected"));
	if (!jobq_ready(d->o.jobs))
		json_array_append_new(reasons, json_string("redis not connected or group missing"));
	if (d->o.ready)
		d->o.ready(d->o.arg, reasons);
	http_reply_ready(r, reasons);
}

/* GET /metrics */
static void admin_metrics(struct http_req *r, void *arg)
{
	struct jobd *d = arg;
	if (d->o.pg) {
		struct pg_pool_stats st;
		pg_pool_stats(d->o.pg, &st);
		metric_set(
			metrics_gauge("rampart_db_connections", "Open PostgreSQL connections", ""),
			st.connections);
		metric_set(metrics_gauge("rampart_db_queued", "Statements waiting for a connection",
					 ""),
			   st.queued);
	}
	if (d->o.gauges)
		d->o.gauges(d->o.arg);
	http_reply_metrics(r);
}

static const struct http_route admin_routes[] = {
	{"GET", "/healthz", admin_live, 0},
	{"GET", "/readyz", admin_ready, 0},
	{"GET", "/metrics", admin_metrics, 0},
};

/* Ends the loop once the jobs in progress are settled: handed-out jobs, and
 * settle commands (XACK after ZADD) still waiting for Redis. */
static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct jobd *d = arg;
	(void)fd;
	(void)what;
	size_t left = jobq_inflight(d->o.jobs) + rds_pending(jobq_redis(d->o.jobs));
	if (left > 0 && clock_mono_us() < d->deadline_us)
		return;
	if (left > 0)
		log_event(LOG_WARN, "grace period over; unfinished jobs will be reclaimed",
			  LF_I("inflight", (long long)left));
	event_base_loopbreak(d->o.base);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct jobd *d = arg;
	struct timeval tick = {0, 20000};
	(void)what;
	if (d->draining)
		return;
	log_event(LOG_INFO, "shutting down: no new jobs, finishing those in progress",
		  LF_S("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"),
		  LF_I("inflight", (long long)jobq_inflight(d->o.jobs)));
	d->draining = true;
	jobq_stop_reading(d->o.jobs);
	if (d->o.on_stop)
		d->o.on_stop(d->o.arg);
	d->deadline_us = clock_mono_us() + (uint64_t)d->o.grace_seconds * 1000000u;
	event_add(d->drain_ev, &tick);
}

struct jobd *jobd_new(const struct jobd_opts *o)
{
	struct jobd *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->o = *o;
	d->admin = http_server_new(o->base, admin_routes,
				   sizeof(admin_routes) / sizeof(admin_routes[0]), d);
	d->drain_ev = event_new(o->base, -1, EV_PERSIST, drain_tick, d);
	d->sigterm_ev = evsignal_new(o->base, SIGTERM, signal_cb, d);
	d->sigint_ev = evsignal_new(o->base, SIGINT, signal_cb, d);
	if (!d->admin || !d->drain_ev || !d->sigterm_ev || !d->sigint_ev ||
	    evsignal_add(d->sigterm_ev, NULL) || evsignal_add(d->sigint_ev, NULL) ||
	    http_server_listen(d->admin, o->host, o->port, false) != 0) {
		jobd_free(d);
		return NULL;
	}
	return d;
}

bool jobd_draining(const struct jobd *d)
{
	return d->draining;
}

void jobd_free(struct jobd *d)
{
	if (!d)
		return;
	if (d->admin)
		http_server_free(d->admin);
	struct event *evs[] = {d->drain_ev, d->sigterm_ev, d->sigint_ev};
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i])
			event_free(evs[i]);
	free(d);
}
