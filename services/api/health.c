/* health.c - GET /health (dependency checks), /healthz, /readyz, /metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "common/evloop.h"
#include "common/pg.h"
#include "common/rdsreply.h"
#include "common/redis.h"

#define HEALTH_DEADLINE_MS 2000

enum { CK_POSTGRES, CK_REDIS, CK_QUEUE, CK_DLQ, CK_WH_QUEUE, CK_WH_DLQ, CK_MARKET, CK_COUNT };

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
	struct timer *deadline;
	struct check ck[CK_COUNT];
	json_t *market; /* the market_data check's body, built when its reply came */
};

static void health_reply(struct health *h)
{
	static const char *const names[CK_COUNT] = {
		"postgres",	  "redis",	  "payments_queue", "payments_dlq",
		"webhooks_queue", "webhooks_dlq", "market_data"};
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
		if ((i == CK_QUEUE || i == CK_WH_QUEUE) && c->up) {
			json_object_set_new(o, "pending", json_integer(c->a));
			json_object_set_new(o, "lag",
					    c->has_lag ? json_integer(c->b) : json_null());
		}
		if ((i == CK_DLQ || i == CK_WH_DLQ) && c->up) {
			json_object_set_new(o, "depth", json_integer(c->a));
			if (c->a > 0) {
				json_object_set_new(o, "status", json_string("warn"));
				degraded = true;
			}
		}
		if (i == CK_MARKET && c->up && h->market) {
			json_object_update(o, h->market);
			if (c->error[0]) {
				json_object_set_new(o, "status", json_string("warn"));
				json_object_set_new(o, "reason", json_string(c->error));
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
	timer_free(h->deadline);
	json_decref(h->market);
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

/* XINFO GROUPS <jobs>: pending and lag of the queue's consumer group. A
 * missing stream means nothing was ever queued: up, empty. */
static void xinfo_reply(struct health *h, int which, redisReply *reply, const char *err)
{
	struct check *c = &h->ck[which];
	h->outstanding--;
	if (!h->replied) {
		if (err && reply && strstr(err, "no such key")) {
			c->has_lag = true;
			check_done(h, which, true, NULL);
		} else if (err || !reply || reply->type != REDIS_REPLY_ARRAY) {
			check_done(h, which, false, err ? err : "unexpected reply");
		} else {
			struct rr_group g[16];
			size_t n = rr_xinfo_groups(reply, g, sizeof(g) / sizeof(g[0]));
			for (size_t i = 0; i < n; i++) {
				c->a += g[i].has_pending ? g[i].pending : 0;
				c->b += g[i].has_lag ? g[i].lag : 0;
				c->has_lag |= g[i].has_lag;
			}
			if (reply->elements == 0)
				c->has_lag = true;
			check_done(h, which, true, NULL);
		}
	}
	health_release(h);
}

static void xinfo_done(void *arg, redisReply *reply, const char *err)
{
	xinfo_reply(arg, CK_QUEUE, reply, err);
}

static void wh_xinfo_done(void *arg, redisReply *reply, const char *err)
{
	xinfo_reply(arg, CK_WH_QUEUE, reply, err);
}

static void xlen_reply(struct health *h, int which, redisReply *reply, const char *err)
{
	h->outstanding--;
	if (!h->replied) {
		long long depth;
		bool ok = !err && reply && reply->type == REDIS_REPLY_INTEGER &&
			  rr_int(reply, &depth);
		if (ok)
			h->ck[which].a = depth;
		check_done(h, which, ok, err ? err : "unexpected reply");
	}
	health_release(h);
}

static void xlen_done(void *arg, redisReply *reply, const char *err)
{
	xlen_reply(arg, CK_DLQ, reply, err);
}

static void wh_xlen_done(void *arg, redisReply *reply, const char *err)
{
	xlen_reply(arg, CK_WH_DLQ, reply, err);
}

/* HMGET <snapshot> snapshot.as_of, then <source>.as_of and <source>.source
 * per source. Up (fresh) when the snapshot exists, was rewritten within
 * MARKET_CACHE_TTL_SECONDS and no source is on its built-in default; else
 * "warn" with the reason, and overall "degraded": quotes still work, on
 * older or built-in rates. */
static void market_done(void *arg, redisReply *reply, const char *err)
{
	struct health *h = arg;
	h->outstanding--;
	if (h->replied) {
		health_release(h);
		return;
	}
	if (err || !reply || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != SNAP_META_NFIELDS) {
		check_done(h, CK_MARKET, false, err ? err : "unexpected reply");
		health_release(h);
		return;
	}
	struct snapshot snap;
	const char *const *names = snapshot_meta_fields();
	snapshot_init(&snap);
	for (size_t i = 0; i < SNAP_META_NFIELDS; i++)
		(void)snapshot_decode_field(&snap, names[i], rr_str(reply->element[i]));
	long long now = (long long)(clock_wall_ms() / 1000);
	long long written = snap.as_of;
	long long ttl = h->l->app->cfg.market_ttl_s;
	json_t *sources = json_object();
	char defaults[96] = "";
	size_t used = 0;
	for (size_t i = 0; i < SNAP_SOURCE_COUNT; i++) {
		const struct snap_meta *m = &snap.src[i];
		const char *name = snap_source_name((enum snap_source)i);
		long long as_of = m->as_of;
		/* Absent or unknown: on its built-in default. */
		enum snap_state st = m->has_state ? m->state : SNAP_DEFAULT;
		const char *src = snap_state_name(st);
		json_object_set_new(sources, name,
				    json_pack("{s:s, s:o}", "source", src, "age_seconds",
					      as_of > 0 ? json_integer(now - as_of) : json_null()));
		if (st == SNAP_DEFAULT && used < sizeof(defaults))
			used += (size_t)snprintf(defaults + used, sizeof(defaults) - used, "%s%s",
						 used ? ", " : "", name);
	}
	h->market = json_pack("{s:o, s:o}", "snapshot_age_seconds",
			      written > 0 ? json_integer(now - written) : json_null(), "sources",
			      sources);
	char why[160] = "";
	if (written == 0)
		snprintf(why, sizeof(why),
			 "no market snapshot in Redis (is a feeengine running?): built-in rates");
	else if (now - written > ttl)
		snprintf(why, sizeof(why),
			 "snapshot not rewritten for %lld s (MARKET_CACHE_TTL_SECONDS %lld)",
			 now - written, ttl);
	else if (defaults[0])
		snprintf(why, sizeof(why), "on built-in defaults: %s", defaults);
	check_done(h, CK_MARKET, true, why[0] ? why : NULL);
	health_release(h);
}

static int market_send(struct health *h)
{
	const char *argv[2 + SNAP_META_NFIELDS] = {"HMGET", h->l->app->snapshot_key};
	const char *const *names = snapshot_meta_fields();
	for (size_t i = 0; i < SNAP_META_NFIELDS; i++)
		argv[2 + i] = names[i];
	return rds_command_argv(h->l->redis, market_done, h, 2 + SNAP_META_NFIELDS, argv, NULL, 0);
}

static void deadline_cb(void *arg)
{
	struct health *h = arg;
	if (!h->replied)
		health_reply(h);
	health_release(h);
}

/* GET /health */
void health_full(struct http_req *r, void *arg)
{
	struct loop *l = arg;
	struct app *a = l->app;
	struct health *h = calloc(1, sizeof(*h));
	if (!h) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
		return;
	}
	h->r = r;
	h->l = l;
	h->start_us = clock_mono_us();
	h->deadline = timer_new(l->base, deadline_cb, h);
	if (h->deadline)
		timer_once(h->deadline, HEALTH_DEADLINE_MS);

	/* Submit every check first, then record refusals, so a reply cannot
	 * happen while later checks are still being started. */
	bool refused[CK_COUNT] = {0};
	int sent[CK_COUNT];
	sent[CK_POSTGRES] = pg_query(l->pg, "SELECT 1", 0, NULL, pg_done, h);
	sent[CK_REDIS] = rds_command(l->redis, ping_done, h, "PING");
	sent[CK_QUEUE] = rds_command(l->redis, xinfo_done, h, "XINFO GROUPS %s", a->jobs_key);
	sent[CK_DLQ] = rds_command(l->redis, xlen_done, h, "XLEN %s", a->dlq_key);
	sent[CK_WH_QUEUE] =
		rds_command(l->redis, wh_xinfo_done, h, "XINFO GROUPS %s", a->wh_jobs_key);
	sent[CK_WH_DLQ] = rds_command(l->redis, wh_xlen_done, h, "XLEN %s", a->wh_dlq_key);
	sent[CK_MARKET] = market_send(h);
	for (int i = 0; i < CK_COUNT; i++) {
		if (sent[i] == 0)
			h->outstanding++;
		else
			refused[i] = true;
	}
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
