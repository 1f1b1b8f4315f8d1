/* jobd.c - the admin server and the graceful drain of a job-queue daemon. */
#include "common/jobd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/evloop.h"
#include "common/http.h"
#include "common/jobs.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pg.h"
#include "common/rdsreply.h"
#include "common/redis.h"

#define QUEUE_SAMPLE_SECONDS 5

/* The queue's gauges, sampled by a timer with three non-blocking commands
 * (XINFO GROUPS, XLEN, ZCARD) on the queue's command connection. Its own
 * allocation: replies may come back after jobd_free (the connection is
 * freed later, by jobq_free, failing them), so the last one frees it. */
struct sampler {
	struct rds *redis;
	char group[64];
	int outstanding;
	bool orphaned;
	struct metric *pending, *lag, *delayed, *dlq;
};

struct jobd {
	struct jobd_opts o;
	struct http_server *admin;
	struct timer *drain, *sample;
	struct sigstop *signals;
	struct sampler *sampler;
	bool draining;
	uint64_t deadline_us;
};

static bool sample_reply_done(struct sampler *s)
{
	s->outstanding--;
	if (s->orphaned && s->outstanding == 0) {
		free(s);
		return true;
	}
	return s->orphaned;
}

/* XINFO GROUPS <stream>: this group's pending (read, not acknowledged) and
 * lag (not read yet; nil when Redis cannot tell, then the gauge keeps its
 * last value). No stream yet: nothing was ever queued. */
static void sample_groups(void *arg, redisReply *reply, const char *err)
{
	struct sampler *s = arg;
	if (sample_reply_done(s))
		return;
	if (err && reply && strstr(err, "no such key")) {
		metric_set(s->pending, 0);
		metric_set(s->lag, 0);
		return;
	}
	struct rr_group g;
	if (err || !rr_xinfo_group(reply, s->group, &g))
		return;
	if (g.has_pending)
		metric_set(s->pending, g.pending);
	if (g.has_lag)
		metric_set(s->lag, g.lag);
}

static void sample_count(struct metric *m, const redisReply *reply, const char *err)
{
	if (!err && reply && reply->type == REDIS_REPLY_INTEGER)
		metric_set(m, reply->integer);
}

static void sample_delayed(void *arg, redisReply *reply, const char *err)
{
	struct sampler *s = arg;
	if (!sample_reply_done(s))
		sample_count(s->delayed, reply, err);
}

static void sample_dlq(void *arg, redisReply *reply, const char *err)
{
	struct sampler *s = arg;
	if (!sample_reply_done(s))
		sample_count(s->dlq, reply, err);
}

static void sample_tick(void *arg)
{
	struct jobd *d = arg;
	struct sampler *s = d->sampler;
	/* One round at a time; none while draining (the drain waits for every
	 * pending command of this connection). */
	if (d->draining || s->outstanding > 0 || !rds_connected(s->redis))
		return;
	struct jobq *q = d->o.jobs;
	if (rds_command(s->redis, sample_groups, s, "XINFO GROUPS %s", jobq_stream_key(q)) == 0)
		s->outstanding++;
	if (rds_command(s->redis, sample_delayed, s, "ZCARD %s", jobq_delayed_key(q)) == 0)
		s->outstanding++;
	if (rds_command(s->redis, sample_dlq, s, "XLEN %s", jobq_dlq_key(q)) == 0)
		s->outstanding++;
}

static struct sampler *sampler_new(struct jobq *q)
{
	struct sampler *s = calloc(1, sizeof(*s));
	char labels[96];
	if (!s)
		return NULL;
	s->redis = jobq_redis(q);
	snprintf(s->group, sizeof(s->group), "%s", jobq_group(q));
	snprintf(labels, sizeof(labels), "queue=\"%s\"", jobq_name(q));
	s->pending = metrics_gauge("rampart_queue_pending",
				   "Jobs read by the consumer group and not yet acknowledged "
				   "(XINFO GROUPS pending), sampled every 5 s",
				   labels);
	s->lag = metrics_gauge("rampart_queue_lag",
			       "Jobs in the stream not yet read by the consumer group "
			       "(XINFO GROUPS lag), sampled every 5 s",
			       labels);
	s->delayed = metrics_gauge("rampart_queue_delayed",
				   "Jobs scheduled for later (retries, polls): ZCARD of the "
				   "delayed set, sampled every 5 s",
				   labels);
	s->dlq = metrics_gauge("rampart_queue_dlq_depth",
			       "Entries in the dead-letter stream (XLEN), sampled every 5 s",
			       labels);
	return s;
}

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
static void drain_tick(void *arg)
{
	struct jobd *d = arg;
	size_t left = jobq_inflight(d->o.jobs) + rds_pending(jobq_redis(d->o.jobs));
	if (left > 0 && clock_mono_us() < d->deadline_us)
		return;
	if (left > 0)
		log_event(LOG_WARN, "grace period over; unfinished jobs will be reclaimed",
			  LF_I("inflight", (long long)left));
	evloop_stop(d->o.base);
}

static void signal_cb(void *arg, const char *sig)
{
	struct jobd *d = arg;
	if (d->draining)
		return;
	log_event(LOG_INFO, "shutting down: no new jobs, finishing those in progress",
		  LF_S("signal", sig), LF_I("inflight", (long long)jobq_inflight(d->o.jobs)));
	d->draining = true;
	jobq_stop_reading(d->o.jobs);
	if (d->o.on_stop)
		d->o.on_stop(d->o.arg);
	d->deadline_us = clock_mono_us() + (uint64_t)d->o.grace_seconds * 1000000u;
	timer_every(d->drain, 20);
}

struct jobd *jobd_new(const struct jobd_opts *o)
{
	struct jobd *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->o = *o;
	d->admin = http_server_new(o->base, admin_routes,
				   sizeof(admin_routes) / sizeof(admin_routes[0]), d);
	d->drain = timer_new(o->base, drain_tick, d);
	d->sample = timer_new(o->base, sample_tick, d);
	d->signals = sigstop_new(o->base, signal_cb, d);
	d->sampler = sampler_new(o->jobs);
	if (!d->admin || !d->drain || !d->sample || !d->signals || !d->sampler ||
	    http_server_listen(d->admin, o->host, o->port, false) != 0) {
		jobd_free(d);
		return NULL;
	}
	timer_every(d->sample, QUEUE_SAMPLE_SECONDS * 1000);
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
	timer_free(d->drain);
	timer_free(d->sample);
	sigstop_free(d->signals);
	if (d->sampler) {
		if (d->sampler->outstanding == 0)
			free(d->sampler);
		else
			d->sampler->orphaned = true;
	}
	free(d);
}
