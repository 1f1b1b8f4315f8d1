/* health.c - GET /health (dependency checks), /healthz, /readyz, /metrics. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "common/pg.h"
#include "common/redis.h"

#define HEALTH_DEADLINE_MS 2000

enum { CK_POSTGRES, CK_REDIS, CK_QUEUE, CK_DLQ, CK_COUNT };

struct check {
	bool done, up;
	uint64_t latency_us;
	long long a, b; /* queue: pending, lag; dlq: depth */
	bool has_lag;
	char error[160];
};

/* One /health request. Freed when it has replied and every callback it
 * started has come back (callbacks run exactly once, so this terminates). */
struct health {
	struct http_req *r;
	struct loop *l;
	int outstanding;
	bool replied;
	uint64_t start_us;
	struct event *deadline;
	struct check ck[CK_COUNT];
};

static void health_reply(struct health *h)
{
	static const char *const names[CK_COUNT] = {"postgres", "redis", "payments_queue",
						    "payments_dlq"};
	json_t *checks = json_array();
	bool down = false, degraded = false;

	h->replied = true;
	for (int i = 0; i < CK_COUNT; i++) {
		struct check *c = &h->ck[i];
		if (!c->done) {
			c->up = false;
			snprintf(c->error, sizeof(c->error), "no answer within %d ms",
				 HEALTH_DEADLINE_MS);
			c->latency_us = HEALTH_DEADLINE_MS * 1000u;
		}
		json_t *o = json_pack("{s:s, s:s, s:f}", "service", names[i], "status",
				      c->up ? "up" : "down", "latency_ms",
				      (double)c->latency_us / 1000.0);
		if (!c->up)
			json_object_set_new(o, "error", json_string(c->error));
		if (i == CK_QUEUE && c->up) {
			json_object_set_new(o, "pending", json_integer(c->a));
			json_object_set_new(o, "lag",
					    c->has_lag ? json_integer(c->b) : json_null());
		}
		if (i == CK_DLQ && c->up) {
			json_object_set_new(o, "depth", json_integer(c->a));
			if (c->a > 0) {
				json_object_set_new(o, "status", json_string("warn"));
				degraded = true;
			}
		}
		if (!c->up) {
			if (i == CK_POSTGRES || i == CK_REDIS)
				down = true;
			else
				degraded = true;
		}
		json_array_append_new(checks, o);
	}
	const char *overall = down ? "unhealthy" : degraded ? "degraded" : "healthy";
	http_reply_json(h->r, down ? 503 : 200,
			json_pack("{s:s, s:o}", "overall_status", overall, "checks", checks));
}

static void health_release(struct health *h)
{
	if (h->outstanding > 0 || !h->replied)
		return;
	if (h->deadline)
		event_free(h->deadline);
	free(h);
}

/* Records one check's outcome; replies once all are in. */
static void check_done(struct health *h, int which, bool up, const char *err)
{
	struct check *c = &h->ck[which];
	c->done = true;
	c->up = up;
	c->latency_us = clock_mono_us() - h->start_us;
	if (err)
		snprintf(c->error, sizeof(c->error), "%s", err);
	for (int i = 0; i < CK_COUNT; i++)
		if (!h->ck[i].done)
			return;
	if (!h->replied)
		health_reply(h);
}

static void pg_done(void *arg, const PGresult *res, const char *err)
{
	struct health *h = arg;
	(void)res;
	h->outstanding--;
	if (!h->replied)
		check_done(h, CK_POSTGRES, err == NULL, err);
	health_release(h);
}

static void ping_done(void *arg, redisReply *reply, const char *err)
{
	struct health *h = arg;
	(void)reply;
	h->outstanding--;
	if (!h->replied)
		check_done(h, CK_REDIS, err == NULL, err);
	health_release(h);
}

/* XINFO GROUPS <jobs>: pending and lag of the "workers" group. A missing
 * stream means nothing was ever queued: up, empty. */
static void xinfo_done(void *arg, redisReply *reply, const char *err)
{
	struct health *h = arg;
	struct check *c = &h->ck[CK_QUEUE];
	h->outstanding--;
	if (!h->replied) {
		if (err && reply && strstr(err, "no such key")) {
			c->has_lag = true;
			check_done(h, CK_QUEUE, true, NULL);
		} else if (err || !reply || reply->type != REDIS_REPLY_ARRAY) {
			check_done(h, CK_QUEUE, false, err ? err : "unexpected reply");
		} else {
			for (size_t g = 0; g < reply->elements; g++) {
				redisReply *grp = reply->element[g];
				if (grp->type != REDIS_REPLY_ARRAY)
					continue;
				for (size_t i = 0; i + 1 < grp->elements; i += 2) {
					redisReply *k = grp->element[i], *v = grp->element[i + 1];
					if (k->type != REDIS_REPLY_STRING)
						continue;
					if (strcmp(k->str, "pending") == 0 &&
					    v->type == REDIS_REPLY_INTEGER)
						c->a += v->integer;
					if (strcmp(k->str, "lag") == 0 &&
					    v->type == REDIS_REPLY_INTEGER) {
						c->b += v->integer;
						c->has_lag = true;
					}
				}
			}
			if (reply->elements == 0)
				c->has_lag = true;
			check_done(h, CK_QUEUE, true, NULL);
		}
	}
	health_release(h);
}

static void xlen_done(void *arg, redisReply *reply, const char *err)
{
	struct health *h = arg;
	h->outstanding--;
	if (!h->replied) {
		if (!err && reply && reply->type == REDIS_REPLY_INTEGER)
			h->ck[CK_DLQ].a = reply->integer;
		check_done(h, CK_DLQ, !err && reply && reply->type == REDIS_REPLY_INTEGER,
			   err ? err : "unexpected reply");
	}
	health_release(h);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct health *h = arg;
	(void)fd;
	(void)what;
	if (!h->replied)
		health_reply(h);
	health_release(h);
}

/* GET /health */
void health_full(struct http_req *r, void *arg)
{
	struct loop *l = arg;
	struct health *h = calloc(1, sizeof(*h));
	if (!h) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
		return;
	}
	h->r = r;
	h->l = l;
	h->start_us = clock_mono_us();
	h->deadline = evtimer_new(l->base, deadline_cb, h);
	struct timeval tv = {0, HEALTH_DEADLINE_MS * 1000};
	if (h->deadline)
		evtimer_add(h->deadline, &tv);

	/* Submit every check first, then record refusals, so a reply cannot
	 * happen while later checks are still being started. */
	bool refused[CK_COUNT] = {0};
	if (pg_query(l->pg, "SELECT 1", 0, NULL, pg_done, h) == 0)
		h->outstanding++;
	else
		refused[CK_POSTGRES] = true;
	if (rds_command(l->redis, ping_done, h, "PING") == 0)
		h->outstanding++;
	else
		refused[CK_REDIS] = true;
	if (rds_command(l->redis, xinfo_done, h, "XINFO GROUPS %s", l->app->jobs_key) == 0)
		h->outstanding++;
	else
		refused[CK_QUEUE] = true;
	if (rds_command(l->redis, xlen_done, h, "XLEN %s", l->app->dlq_key) == 0)
		h->outstanding++;
	else
		refused[CK_DLQ] = true;
	for (int i = 0; i < CK_COUNT; i++)
		if (refused[i] && !h->replied)
			check_done(h, i, false,
				   i == CK_POSTGRES ? "database unavailable"
						    : "redis not connected");
	health_release(h);
}

/* GET /healthz: the loop answers, so the process is alive. */
void health_live(struct http_req *r, void *arg)
{
	(void)arg;
	http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

/* GET /readyz: connected to both stores and not draining. */
void health_ready(struct http_req *r, void *arg)
{
	struct loop *l = arg;
	json_t *reasons = json_array();
	if (atomic_load(&l->app->draining))
		json_array_append_new(reasons, json_string("shutting down"));
	if (!pg_pool_ready(l->pg))
		json_array_append_new(reasons, json_string("postgres not connected"));
	if (!rds_connected(l->redis))
		json_array_append_new(reasons, json_string("redis not connected"));
	http_reply_ready(r, reasons);
}

/* GET /metrics: Prometheus text exposition. */
void health_metrics(struct http_req *r, void *arg)
{
	(void)arg;
	http_reply_metrics(r);
}
