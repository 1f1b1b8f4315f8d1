/* test_jobs.c - component tests of common/jobs against a real Redis
 * (REDIS_URL), each on a real event loop under a watchdog, each under its
 * own key prefix so reruns and parallel runs do not collide. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/jobs.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/redis.h"

#define MAX_SEEN 64

static const char *redis_url;

/* A copy of a reply, so tests can look at it after the callback. */
struct rnode {
	int type;
	long long integer;
	char *str;
	size_t n;
	struct rnode **el;
};

struct env {
	struct event_base *base;
	struct event *watchdog;
	struct rds *r; /* raw commands */
	char prefix[64];
	char stream[128], delayed[128], dlq[128];
};

enum policy { P_ACK, P_HOLD, P_RETRY, P_NEXT, P_DEAD, P_STOP };

struct seen {
	char id[48];
	char fields[256]; /* "k=v,k=v" */
	long long deliveries;
	int64_t at_ms;
};

/* What one queue's handler saw and did. */
struct rec {
	struct jobq *q;
	enum policy policy;
	int count;
	struct seen seen[MAX_SEEN];
	struct job *held[MAX_SEEN];
	int nheld, max_held;
	uint64_t retry_due;
};

/* ------------------------------------------------------------------------ */
/* Harness                                                                  */
/* ------------------------------------------------------------------------ */

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	fail_msg("watchdog: test did not finish in time");
}

static void pump(struct env *e, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_base_loopexit(e->base, &tv);
	event_base_dispatch(e->base);
}

/* Runs the loop until cond holds or ms pass. */
#define WAIT_FOR(e, cond, ms)                                             \
	do {                                                              \
		uint64_t until_ = clock_mono_us() + (uint64_t)(ms)*1000u; \
		while (!(cond) && clock_mono_us() < until_)               \
			pump((e), 10);                                    \
	} while (0)

static struct rnode *rnode_copy(const redisReply *r)
{
	struct rnode *n = calloc(1, sizeof(*n));
	assert_non_null(n);
	n->type = r->type;
	n->integer = r->integer;
	if (r->str)
		n->str = strndup(r->str, r->len);
	if (r->type == REDIS_REPLY_ARRAY) {
		n->n = r->elements;
		n->el = calloc(r->elements + 1, sizeof(*n->el));
		for (size_t i = 0; i < r->elements; i++)
			n->el[i] = rnode_copy(r->element[i]);
	}
	return n;
}

static void rnode_free(struct rnode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		rnode_free(n->el[i]);
	free(n->el);
	free(n->str);
	free(n);
}

struct rawwait {
	bool done;
	struct rnode *node;
	char err[256];
};

static void raw_cb(void *arg, redisReply *reply, const char *err)
{
	struct rawwait *w = arg;
	w->done = true;
	if (err)
		snprintf(w->err, sizeof(w->err), "%s", err);
	else
		w->node = rnode_copy(reply);
}

/* Runs a command (NULL-terminated string arguments) on the raw client and
 * returns a copy of its reply; fails the test on an error. */
static struct rnode *raw(struct env *e, ...)
{
	const char *argv[32];
	int argc = 0;
	va_list ap;
	va_start(ap, e);
	for (const char *a; (a = va_arg(ap, const char *)) && argc < 32;)
		argv[argc++] = a;
	va_end(ap);
	struct rawwait w = {0};
	assert_int_equal(rds_command_argv(e->r, raw_cb, &w, argc, argv, NULL, 0), 0);
	while (!w.done)
		event_base_loop(e->base, EVLOOP_ONCE);
	if (!w.node)
		fail_msg("%s: %s", argv[0], w.err);
	return w.node;
}

static long long raw_int(struct env *e, const char *cmd, const char *key)
{
	struct rnode *n = raw(e, cmd, key, NULL);
	assert_int_equal(n->type, REDIS_REPLY_INTEGER);
	long long v = n->integer;
	rnode_free(n);
	return v;
}

/* XPENDING stream workers: the number of delivered, unacknowledged entries. */
static long long pending_count(struct env *e)
{
	struct rnode *n = raw(e, "XPENDING", e->stream, "workers", NULL);
	assert_int_equal(n->type, REDIS_REPLY_ARRAY);
	long long v = n->el[0]->integer;
	rnode_free(n);
	return v;
}

static void env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	e->base = event_base_new();
	e->watchdog = evtimer_new(e->base, watchdog_cb, e);
	struct timeval tv = {20, 0};
	evtimer_add(e->watchdog, &tv);
	struct rds_opts o = {.url = redis_url, .command_timeout_ms = 2000, .name = "test"};
	e->r = rds_new(e->base, &o);
	assert_non_null(e->r);
	snprintf(e->prefix, sizeof(e->prefix), "jt%d-%ld", (int)getpid(), (long)random());
	jobs_key(e->stream, sizeof(e->stream), e->prefix, "payments", "jobs");
	jobs_key(e->delayed, sizeof(e->delayed), e->prefix, "payments", "delayed");
	jobs_key(e->dlq, sizeof(e->dlq), e->prefix, "payments", "dlq");
	WAIT_FOR(e, rds_connected(e->r), 3000);
	assert_true(rds_connected(e->r));
}

static void env_free(struct env *e)
{
	rnode_free(raw(e, "DEL", e->stream, e->delayed, e->dlq, NULL));
	rds_free(e->r);
	event_free(e->watchdog);
	event_base_free(e->base);
}

static void handler(void *arg, struct job *job);

static struct jobq *queue_new(struct env *e, struct rec *rc, const char *consumer,
			      struct jobq_opts *o)
{
	o->base = e->base;
	o->redis_url = redis_url;
	o->prefix = e->prefix;
	o->queue = "payments";
	o->group = "workers";
	o->consumer = consumer;
	if (!o->block_ms)
		o->block_ms = 200;
	if (!o->promote_ms)
		o->promote_ms = 20;
	rc->q = jobq_new(o, handler, rc);
	assert_non_null(rc->q);
	return rc->q;
}

static void start_ready(struct env *e, struct jobq *q)
{
	jobq_start(q);
	WAIT_FOR(e, jobq_ready(q), 3000);
	assert_true(jobq_ready(q));
	pump(e, 30); /* the first blocking read is on its way */
}

static void handler(void *arg, struct job *job)
{
	struct rec *rc = arg;
	assert_true(rc->count < MAX_SEEN);
	struct seen *s = &rc->seen[rc->count++];
	snprintf(s->id, sizeof(s->id), "%s", job->id);
	size_t off = 0;
	for (int i = 0; i < job->nfields; i++)
		off += (size_t)snprintf(s->fields + off, sizeof(s->fields) - off, "%s%s=%s",
					i ? "," : "", job->fields[i].key, job->fields[i].value);
	s->deliveries = job->deliveries;
	s->at_ms = clock_wall_ms();

	const char *attempt = job_get(job, "attempt");
	switch (rc->policy) {
	case P_ACK:
		jobq_ack(rc->q, job);
		break;
	case P_HOLD:
		rc->held[rc->nheld++] = job;
		if (rc->nheld > rc->max_held)
			rc->max_held = rc->nheld;
		break;
	case P_RETRY:
		if (attempt && strcmp(attempt, "1") == 0) {
			struct job_field f[] = {{"payment_id", job_get(job, "payment_id")},
						{"step", "poll"},
						{"attempt", "2"}};
			rc->retry_due = (uint64_t)clock_wall_ms() + 600;
			jobq_retry(rc->q, job, f, 3, rc->retry_due);
		} else {
			jobq_ack(rc->q, job);
		}
		break;
	case P_NEXT:
		if (strcmp(job_get(job, "step"), "onramp") == 0) {
			struct job_field f[] = {{"payment_id", job_get(job, "payment_id")},
						{"step", "offramp"}};
			jobq_next(rc->q, job, f, 2);
		} else {
			jobq_ack(rc->q, job);
		}
		break;
	case P_DEAD:
		jobq_dead(rc->q, job, "provider said no");
		break;
	case P_STOP: /* stops mid-batch: the rest of the batch is released */
		jobq_stop_reading(rc->q);
		jobq_ack(rc->q, job);
		break;
	}
}

static void settle_held(struct rec *rc)
{
	for (int i = 0; i < rc->nheld; i++)
		jobq_ack(rc->q, rc->held[i]);
	rc->nheld = 0;
}

static void add_job(struct env *e, const char *payment_id, const char *step)
{
	struct job_field f[] = {{"payment_id", payment_id}, {"step", step}, {"attempt", "1"}};
	assert_int_equal(jobs_add(e->r, e->stream, 1000, f, 3, NULL, NULL), 0);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

static void add_done(void *arg, const char *err)
{
	int *n = arg;
	assert_null(err);
	(*n)++;
}

static void test_add_read_ack(void **state)
{
	struct env e;
	struct rec rc = {.policy = P_ACK};
	struct jobq_opts o = {0};
	int added = 0;
	(void)state;
	env_init(&e);
	struct jobq *q = queue_new(&e, &rc, "c1", &o);
	assert_string_equal(jobq_stream_key(q), e.stream);
	assert_string_equal(jobq_delayed_key(q), e.delayed);
	assert_string_equal(jobq_dlq_key(q), e.dlq);
	start_ready(&e, q);

	struct job_field f[] = {{"payment_id", "pay_1"},
				{"step", "onramp"},
				{"attempt", "1"},
				{"request_id", "req a|b=c"}};
	assert_int_equal(jobs_add(jobq_redis(q), e.stream, 1000, f, 4, add_done, &added), 0);
	WAIT_FOR(&e, rc.count == 1, 3000);
	assert_int_equal(rc.count, 1);
	assert_int_equal(added, 1);
	assert_string_equal(rc.seen[0].fields,
			    "payment_id=pay_1,step=onramp,attempt=1,request_id=req a|b=c");
	assert_int_equal(rc.seen[0].deliveries, 1);
	WAIT_FOR(&e, pending_count(&e) == 0, 3000);
	assert_int_equal(pending_count(&e), 0);
	assert_int_equal(jobq_inflight(q), 0);
	pump(&e, 100);
	assert_int_equal(rc.count, 1);
	jobq_free(q);
	env_free(&e);
}

/* Delayed jobs run when due, not before, and once each although two
 * queues promote every 20 ms. */
static void test_delayed_once(void **state)
{
	struct env e;
	struct rec a = {.policy = P_ACK}, b = {.policy = P_ACK};
	struct jobq_opts oa = {0}, ob = {0};
	char ids[20][16];
	(void)state;
	env_init(&e);
	queue_new(&e, &a, "ca", &oa);
	queue_new(&e, &b, "cb", &ob);
	start_ready(&e, a.q);
	start_ready(&e, b.q);

	uint64_t due = (uint64_t)clock_wall_ms() + 700;
	for (int i = 0; i < 20; i++) {
		snprintf(ids[i], sizeof(ids[i]), "pay_%d", i);
		struct job_field f[] = {{"payment_id", ids[i]}, {"step", "poll"}};
		assert_int_equal(jobs_add_delayed(e.r, e.delayed, due, f, 2, NULL, NULL), 0);
	}
	pump(&e, 300);
	assert_int_equal(a.count + b.count, 0);
	assert_int_equal(raw_int(&e, "ZCARD", e.delayed), 20);

	WAIT_FOR(&e, a.count + b.count >= 20, 5000);
	pump(&e, 500);
	assert_int_equal(a.count + b.count, 20);
	assert_int_equal(raw_int(&e, "ZCARD", e.delayed), 0);
	assert_int_equal(raw_int(&e, "XLEN", e.stream), 20);
	int found[20] = {0};
	for (int k = 0; k < 2; k++) {
		struct rec *rc = k ? &b : &a;
		for (int i = 0; i < rc->count; i++) {
			assert_true(rc->seen[i].at_ms >= (int64_t)due);
			int n = -1;
			assert_int_equal(sscanf(rc->seen[i].fields, "payment_id=pay_%d", &n), 1);
			assert_true(n >= 0 && n < 20);
			found[n]++;
		}
	}
	for (int i = 0; i < 20; i++)
		assert_int_equal(found[i], 1);
	jobq_free(a.q);
	jobq_free(b.q);
	env_free(&e);
}

/* Consumer A takes a job and dies; B reclaims it after claim_idle_ms. */
static void test_reclaim(void **state)
{
	struct env e;
	struct rec a = {.policy = P_HOLD}, b = {.policy = P_ACK};
	struct jobq_opts oa = {.claim_idle_ms = 60000}, ob = {.claim_idle_ms = 200};
	(void)state;
	env_init(&e);
	queue_new(&e, &a, "dying", &oa);
	start_ready(&e, a.q);
	add_job(&e, "pay_r", "onramp");
	WAIT_FOR(&e, a.count == 1, 3000);
	assert_int_equal(a.count, 1);
	jobq_release(a.q, a.held[0]);
	jobq_free(a.q);
	assert_int_equal(pending_count(&e), 1);

	queue_new(&e, &b, "alive", &ob);
	start_ready(&e, b.q);
	WAIT_FOR(&e, b.count == 1, 3000);
	assert_int_equal(b.count, 1);
	assert_string_equal(b.seen[0].id, a.seen[0].id);
	assert_string_equal(b.seen[0].fields, "payment_id=pay_r,step=onramp,attempt=1");
	assert_int_equal(b.seen[0].deliveries, 2);
	WAIT_FOR(&e, pending_count(&e) == 0, 3000);
	assert_int_equal(pending_count(&e), 0);
	jobq_free(b.q);
	env_free(&e);
}

/* A job held by a slow handler past claim_idle_ms is not handed out twice
 * by its own queue. */
static void test_reclaim_skips_inflight(void **state)
{
	struct env e;
	struct rec b = {.policy = P_HOLD};
	struct jobq_opts ob = {.claim_idle_ms = 150};
	(void)state;
	env_init(&e);
	queue_new(&e, &b, "slow", &ob);
	start_ready(&e, b.q);
	add_job(&e, "pay_s", "onramp");
	WAIT_FOR(&e, b.count == 1, 3000);
	pump(&e, 800);
	assert_int_equal(b.count, 1);
	assert_int_equal(jobq_inflight(b.q), 1);
	settle_held(&b);
	assert_int_equal(jobq_inflight(b.q), 0);
	WAIT_FOR(&e, pending_count(&e) == 0, 3000);
	assert_int_equal(pending_count(&e), 0);
	jobq_free(b.q);
	env_free(&e);
}

/* jobq_retry puts the follow-up in the delayed set, then acks; it runs
 * when due with its new fields. */
static void test_retry(void **state)
{
	struct env e;
	struct rec rc = {.policy = P_RETRY};
	struct jobq_opts o = {0};
	(void)state;
	env_init(&e);
	queue_new(&e, &rc, "c1", &o);
	start_ready(&e, rc.q);
	add_job(&e, "pay_t", "onramp");
	WAIT_FOR(&e, rc.count == 1 && pending_count(&e) == 0, 3000);
	assert_int_equal(rc.count, 1);
	assert_int_equal(pending_count(&e), 0);
	struct rnode *z = raw(&e, "ZRANGE", e.delayed, "0", "-1", "WITHSCORES", NULL);
	assert_int_equal(z->n, 2);
	assert_string_equal(z->el[0]->str, "payment_id=pay_t|step=poll|attempt=2");
	assert_int_equal(strtoull(z->el[1]->str, NULL, 10), rc.retry_due);
	rnode_free(z);

	WAIT_FOR(&e, rc.count == 2, 3000);
	assert_int_equal(rc.count, 2);
	assert_string_equal(rc.seen[1].fields, "payment_id=pay_t,step=poll,attempt=2");
	assert_true(rc.seen[1].at_ms >= (int64_t)rc.retry_due);
	assert_int_equal(rc.seen[1].deliveries, 1);
	WAIT_FOR(&e, pending_count(&e) == 0, 3000);
	assert_int_equal(pending_count(&e), 0);
	assert_int_equal(raw_int(&e, "ZCARD", e.delayed), 0);
	jobq_free(rc.q);
	env_free(&e);
}

/* jobq_next adds the follow-up to the stream at once. */
static void test_next(void **state)
{
	struct env e;
	struct rec rc = {.policy = P_NEXT};
	struct jobq_opts o = {0};
	(void)state;
	env_init(&e);
	queue_new(&e, &rc, "c1", &o);
	start_ready(&e, rc.q);
	add_job(&e, "pay_n", "onramp");
	WAIT_FOR(&e, rc.count == 2, 3000);
	assert_int_equal(rc.count, 2);
	assert_string_equal(rc.seen[1].fields, "payment_id=pay_n,step=offramp");
	WAIT_FOR(&e, pending_count(&e) == 0, 3000);
	assert_int_equal(pending_count(&e), 0);
	jobq_free(rc.q);
	env_free(&e);
}

/* jobq_dead writes the job's fields, "error" and "deliveries" to the DLQ. */
static void test_dead(void **state)
{
	struct env e;
	struct rec rc = {.policy = P_DEAD};
	struct jobq_opts o = {0};
	(void)state;
	env_init(&e);
	queue_new(&e, &rc, "c1", &o);
	start_ready(&e, rc.q);
	add_job(&e, "pay_d", "offramp");
	WAIT_FOR(&e, rc.count == 1 && pending_count(&e) == 0, 3000);
	assert_int_equal(pending_count(&e), 0);
	struct rnode *x = raw(&e, "XRANGE", e.dlq, "-", "+", NULL);
	assert_int_equal(x->n, 1);
	struct rnode *f = x->el[0]->el[1];
	const char *want[] = {"payment_id", "pay_d", "step",  "offramp",
			      "attempt",    "1",     "error", "provider said no",
			      "deliveries", "1"};
	assert_int_equal(f->n, 10);
	for (size_t i = 0; i < 10; i++)
		assert_string_equal(f->el[i]->str, want[i]);
	rnode_free(x);
	jobq_free(rc.q);
	env_free(&e);
}

struct hz {
	bool done;
	int64_t ms;
	char err[128];
};

static void hz_cb(void *arg, int64_t ms, const char *err)
{
	struct hz *w = arg;
	w->done = true;
	w->ms = ms;
	if (err)
		snprintf(w->err, sizeof(w->err), "%s", err);
}

static int64_t horizon(struct env *e, struct jobq *q)
{
	struct hz w = {0};
	assert_int_equal(jobq_horizon(q, hz_cb, &w), 0);
	while (!w.done)
		event_base_loop(e->base, EVLOOP_ONCE);
	assert_string_equal(w.err, "");
	return w.ms;
}

/* The horizon: the earliest of the last entry read while newer ones wait
 * unread, the oldest one in flight here, the oldest delayed job; -1 when
 * none of them exists. */
static void test_horizon(void **state)
{
	struct env e;
	struct rec rc = {.policy = P_HOLD};
	struct jobq_opts o = {.max_inflight = 2, .batch = 10};
	char id[16];
	(void)state;
	env_init(&e);
	queue_new(&e, &rc, "c1", &o);
	start_ready(&e, rc.q);
	assert_int_equal(horizon(&e, rc.q), -1); /* nothing queued */
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "pay_%d", i);
		add_job(&e, id, "onramp");
		pump(&e, 5); /* distinct milliseconds */
	}
	WAIT_FOR(&e, rc.count == 2, 3000);
	assert_int_equal(rc.count, 2);
	/* Two in flight, three unread: the oldest in flight. */
	int64_t first = strtoll(rc.seen[0].id, NULL, 10);
	assert_int_equal(horizon(&e, rc.q), first);
	/* The first settled: the second is the oldest in flight (and the last
	 * read, with three unread). */
	jobq_ack(rc.q, rc.held[0]);
	rc.held[0] = rc.held[1];
	rc.nheld = 1;
	WAIT_FOR(&e, rc.count == 3, 3000);
	assert_int_equal(rc.count, 3);
	assert_int_equal(horizon(&e, rc.q), strtoll(rc.seen[1].id, NULL, 10));
	while (rc.count < 5) {
		int before = rc.count;
		settle_held(&rc);
		WAIT_FOR(&e, rc.count > before, 3000);
		assert_true(rc.count > before);
	}
	settle_held(&rc);
	WAIT_FOR(&e, pending_count(&e) == 0, 3000);
	assert_int_equal(horizon(&e, rc.q), -1); /* all read and settled */
	/* An entry pending in Redis but not in flight here (its consumer died,
	 * or a Redis restart lost its acknowledgement) does not count. */
	jobq_stop_reading(rc.q);
	pump(&e, 300); /* the blocked read comes back empty */
	add_job(&e, "pay_ghost", "onramp");
	rnode_free(raw(&e, "XREADGROUP", "GROUP", "workers", "ghost", "COUNT", "1", "STREAMS",
		       e.stream, ">", NULL));
	assert_int_equal(pending_count(&e), 1);
	assert_int_equal(horizon(&e, rc.q), -1);
	struct job_field f[] = {{"payment_id", "pay_late"}, {"step", "poll"}};
	uint64_t due = (uint64_t)clock_wall_ms() + 60000;
	assert_int_equal(jobs_add_delayed(e.r, e.delayed, due, f, 2, NULL, NULL), 0);
	assert_int_equal(horizon(&e, rc.q), (int64_t)due);
	jobq_free(rc.q);
	env_free(&e);
}

/* With max_inflight 3, three jobs are out at most; settling resumes. */
static void test_max_inflight(void **state)
{
	struct env e;
	struct rec rc = {.policy = P_HOLD};
	struct jobq_opts o = {.max_inflight = 3, .batch = 10};
	char ids[10][16];
	(void)state;
	env_init(&e);
	queue_new(&e, &rc, "c1", &o);
	start_ready(&e, rc.q);
	for (int i = 0; i < 10; i++) {
		snprintf(ids[i], sizeof(ids[i]), "pay_%d", i);
		add_job(&e, ids[i], "onramp");
	}
	WAIT_FOR(&e, rc.count == 3, 3000);
	pump(&e, 400);
	assert_int_equal(rc.count, 3);
	assert_int_equal(jobq_inflight(rc.q), 3);
	while (rc.count < 10) {
		int before = rc.count;
		settle_held(&rc);
		WAIT_FOR(&e, rc.count > before, 3000);
		assert_true(rc.count > before);
		pump(&e, 50);
	}
	settle_held(&rc);
	assert_int_equal(rc.max_held, 3);
	for (int i = 0; i < 10; i++) {
		char want[64];
		snprintf(want, sizeof(want), "payment_id=pay_%d,step=onramp,attempt=1", i);
		assert_string_equal(rc.seen[i].fields, want);
	}
	WAIT_FOR(&e, pending_count(&e) == 0, 3000);
	assert_int_equal(pending_count(&e), 0);
	jobq_free(rc.q);
	env_free(&e);
}

/* After jobq_stop_reading nothing is handed out; the entry the blocked
 * read brings back stays pending (for a reclaim), later ones undelivered. */
static void test_stop_reading(void **state)
{
	struct env e;
	struct rec rc = {.policy = P_ACK};
	struct jobq_opts o = {.block_ms = 500};
	(void)state;
	env_init(&e);
	queue_new(&e, &rc, "c1", &o);
	start_ready(&e, rc.q);
	jobq_stop_reading(rc.q);
	add_job(&e, "pay_1", "onramp");
	pump(&e, 700);
	add_job(&e, "pay_2", "onramp");
	pump(&e, 700);
	assert_int_equal(rc.count, 0);
	assert_int_equal(jobq_inflight(rc.q), 0);
	assert_int_equal(pending_count(&e), 1);
	assert_int_equal(raw_int(&e, "XLEN", e.stream), 2);
	jobq_free(rc.q);
	env_free(&e);
}

/* A handler that stops reading mid-batch gets no more of that batch. */
static void test_stop_mid_batch(void **state)
{
	struct env e;
	struct rec rc = {.policy = P_STOP};
	struct jobq_opts o = {.batch = 10};
	(void)state;
	env_init(&e);
	/* The group first, then five jobs, then a queue that reads them in one batch. */
	queue_new(&e, &rc, "c1", &o);
	start_ready(&e, rc.q);
	jobq_free(rc.q);
	pump(&e, 100); /* the server sees its blocked read go before the jobs come */
	for (int i = 0; i < 5; i++)
		add_job(&e, "pay_m", "onramp");
	queue_new(&e, &rc, "c1", &o);
	jobq_start(rc.q);
	WAIT_FOR(&e, rc.count >= 1, 3000);
	pump(&e, 300);
	assert_int_equal(rc.count, 1);
	assert_int_equal(jobq_inflight(rc.q), 0);
	WAIT_FOR(&e, pending_count(&e) == 4, 3000);
	assert_int_equal(pending_count(&e), 4);
	jobq_free(rc.q);
	env_free(&e);
}

/* On a prefix with no keys the group is created (with the stream). */
static void test_group_on_empty_prefix(void **state)
{
	struct env e;
	struct rec rc = {.policy = P_ACK};
	struct jobq_opts o = {0};
	(void)state;
	env_init(&e);
	assert_int_equal(raw_int(&e, "EXISTS", e.stream), 0);
	queue_new(&e, &rc, "c1", &o);
	assert_false(jobq_ready(rc.q));
	start_ready(&e, rc.q);
	struct rnode *g = raw(&e, "XINFO", "GROUPS", e.stream, NULL);
	assert_int_equal(g->n, 1);
	assert_string_equal(g->el[0]->el[0]->str, "name");
	assert_string_equal(g->el[0]->el[1]->str, "workers");
	rnode_free(g);
	assert_int_equal(raw_int(&e, "XLEN", e.stream), 0);
	/* A second queue finds the group there (BUSYGROUP) and is ready too. */
	struct rec rc2 = {.policy = P_ACK};
	struct jobq_opts o2 = {0};
	queue_new(&e, &rc2, "c2", &o2);
	start_ready(&e, rc2.q);
	jobq_free(rc2.q);
	jobq_free(rc.q);
	env_free(&e);
}

/* The stream (and its group) vanish; the queue recreates the group and
 * gets the jobs added since. */
static void test_group_recreated(void **state)
{
	struct env e;
	struct rec rc = {.policy = P_ACK};
	struct jobq_opts o = {.block_ms = 200};
	(void)state;
	env_init(&e);
	queue_new(&e, &rc, "c1", &o);
	start_ready(&e, rc.q);
	rnode_free(raw(&e, "DEL", e.stream, NULL));
	add_job(&e, "pay_g", "onramp");
	WAIT_FOR(&e, rc.count == 1, 5000);
	assert_int_equal(rc.count, 1);
	assert_string_equal(rc.seen[0].fields, "payment_id=pay_g,step=onramp,attempt=1");
	WAIT_FOR(&e, pending_count(&e) == 0, 3000);
	assert_int_equal(pending_count(&e), 0);
	jobq_free(rc.q);
	env_free(&e);
}

/* The command connection is down when the handler settles: the job is
 * forgotten locally, stays pending, and comes back through a reclaim. */
static void test_settle_while_down(void **state)
{
	struct env e;
	struct rec rc = {.policy = P_HOLD};
	struct jobq_opts o = {.claim_idle_ms = 300};
	struct rawwait w = {0};
	char id[32];
	(void)state;
	env_init(&e);
	queue_new(&e, &rc, "c1", &o);
	start_ready(&e, rc.q);
	add_job(&e, "pay_k", "onramp");
	WAIT_FOR(&e, rc.count == 1, 3000);
	assert_int_equal(rc.count, 1);

	/* Kill exactly the queue's command connection, found by its own id. */
	assert_int_equal(rds_command(jobq_redis(rc.q), raw_cb, &w, "CLIENT ID"), 0);
	WAIT_FOR(&e, w.done, 3000);
	assert_non_null(w.node);
	snprintf(id, sizeof(id), "%lld", w.node->integer);
	rnode_free(w.node);
	rnode_free(raw(&e, "CLIENT", "KILL", "ID", id, NULL));
	WAIT_FOR(&e, !rds_connected(jobq_redis(rc.q)), 3000);
	assert_false(rds_connected(jobq_redis(rc.q)));
	rc.policy = P_ACK;
	settle_held(&rc);
	assert_int_equal(jobq_inflight(rc.q), 0);
	assert_int_equal(pending_count(&e), 1);

	WAIT_FOR(&e, rc.count == 2, 5000);
	assert_int_equal(rc.count, 2);
	assert_string_equal(rc.seen[1].id, rc.seen[0].id);
	assert_int_equal(rc.seen[1].deliveries, 2);
	WAIT_FOR(&e, pending_count(&e) == 0, 3000);
	assert_int_equal(pending_count(&e), 0);
	jobq_free(rc.q);
	env_free(&e);
}

/* Every series of the jobs metrics exists for the queue. */
static void test_metrics(void **state)
{
	struct evbuffer *out = evbuffer_new();
	(void)state;
	assert_int_equal(metrics_render(out), 0);
	size_t len = evbuffer_get_length(out);
	char *text = calloc(1, len + 1);
	evbuffer_copyout(out, text, len);
	const char *names[] = {"rampart_jobs_read_total{queue=\"payments\"}",
			       "rampart_jobs_acked_total{queue=\"payments\"}",
			       "rampart_jobs_retried_total{queue=\"payments\"} 1",
			       "rampart_jobs_dead_total{queue=\"payments\"} 1",
			       "rampart_jobs_reclaimed_total{queue=\"payments\"}",
			       "rampart_jobs_promoted_total{queue=\"payments\"}",
			       "rampart_jobs_inflight{queue=\"payments\"} 0"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strstr(text, names[i]))
			fail_msg("missing %s in\n%s", names[i], text);
	free(text);
	evbuffer_free(out);
}

/* A NOACK queue on another stream kind (the fee requests' shape): entries
 * are never pending, not even while a handler holds them, so settling
 * sends nothing and nothing is ever reclaimed; no delayed set is read. */
static void test_noack_stream_kind(void **state)
{
	struct env e;
	struct rec rc = {.policy = P_HOLD};
	struct jobq_opts o = {
		.stream_kind = "requests", .noack = true, .no_delayed = true, .claim_idle_ms = 100};
	char stream[128];
	(void)state;
	env_init(&e);
	jobs_key(stream, sizeof(stream), e.prefix, "payments", "requests");
	struct jobq *q = queue_new(&e, &rc, "c1", &o);
	assert_string_equal(jobq_stream_key(q), stream);
	start_ready(&e, q);
	struct job_field f[] = {{"id", "r1"}, {"reply_to", "x"}};
	for (int i = 0; i < 3; i++)
		assert_int_equal(jobs_add(jobq_redis(q), stream, 1000, f, 2, NULL, NULL), 0);
	WAIT_FOR(&e, rc.count == 3, 3000);
	assert_int_equal(rc.count, 3);
	assert_int_equal(jobq_inflight(q), 3);
	struct rnode *n = raw(&e, "XPENDING", stream, "workers", NULL);
	assert_int_equal(n->el[0]->integer, 0);
	rnode_free(n);
	pump(&e, 400); /* past claim_idle_ms: nothing is handed out again */
	assert_int_equal(rc.count, 3);
	for (int i = 0; i < rc.nheld; i++)
		jobq_ack(q, rc.held[i]);
	assert_int_equal(jobq_inflight(q), 0);
	assert_int_equal(raw_int(&e, "EXISTS", e.stream), 0); /* the "jobs" stream unused */
	jobq_free(q);
	rnode_free(raw(&e, "DEL", stream, NULL));
	env_free(&e);
}

/* Producer-side validation and helpers. */
static void test_fields_refused(void **state)
{
	struct env e;
	(void)state;
	env_init(&e);
	struct job_field bar_value[] = {{"payment_id", "a|b"}};
	struct job_field bar_key[] = {{"pay|id", "a"}};
	struct job_field eq_key[] = {{"pay=id", "a"}};
	struct job_field null_value[] = {{"payment_id", NULL}};
	struct job_field empty_key[] = {{"", "x"}};
	struct job_field ok[] = {{"payment_id", "p=1"}, {"step", ""}};
	struct job_field nine[JOB_MAX_FIELDS + 1];
	for (int i = 0; i < JOB_MAX_FIELDS + 1; i++)
		nine[i] = (struct job_field){"k", "v"};
	assert_int_equal(jobs_add_delayed(e.r, e.delayed, 1, bar_value, 1, NULL, NULL), -1);
	assert_int_equal(jobs_add_delayed(e.r, e.delayed, 1, bar_key, 1, NULL, NULL), -1);
	assert_int_equal(jobs_add_delayed(e.r, e.delayed, 1, eq_key, 1, NULL, NULL), -1);
	assert_int_equal(jobs_add_delayed(e.r, e.delayed, 1, null_value, 1, NULL, NULL), -1);
	assert_int_equal(jobs_add_delayed(e.r, e.delayed, 1, ok, 0, NULL, NULL), -1);
	assert_int_equal(jobs_add_delayed(e.r, e.delayed, 1, nine, JOB_MAX_FIELDS + 1, NULL, NULL),
			 -1);
	assert_int_equal(jobs_add(e.r, e.stream, 10, null_value, 1, NULL, NULL), -1);
	assert_int_equal(jobs_add(e.r, e.stream, 10, empty_key, 1, NULL, NULL), -1);
	assert_int_equal(jobs_add(e.r, e.stream, 10, ok, 0, NULL, NULL), -1);
	assert_int_equal(raw_int(&e, "EXISTS", e.delayed), 0);
	assert_int_equal(raw_int(&e, "EXISTS", e.stream), 0);

	/* The same job scheduled twice is one member; the later due time wins. */
	int added = 0;
	assert_int_equal(jobs_add_delayed(e.r, e.delayed, 5000, ok, 2, add_done, &added), 0);
	assert_int_equal(jobs_add_delayed(e.r, e.delayed, 3000, ok, 2, add_done, &added), 0);
	WAIT_FOR(&e, added == 2, 3000);
	struct rnode *z = raw(&e, "ZRANGE", e.delayed, "0", "-1", "WITHSCORES", NULL);
	assert_int_equal(z->n, 2);
	assert_string_equal(z->el[0]->str, "payment_id=p=1|step=");
	assert_string_equal(z->el[1]->str, "5000");
	rnode_free(z);

	char key[64];
	jobs_key(key, sizeof(key), "rampart", "payments", "jobs");
	assert_string_equal(key, "rampart:{payments}:jobs");
	struct job j = {.nfields = 1, .fields = {{"step", "poll"}}};
	assert_string_equal(job_get(&j, "step"), "poll");
	assert_null(job_get(&j, "attempt"));

	struct jobq_opts bad = {.base = e.base,
				.redis_url = redis_url,
				.prefix = "p",
				.queue = "a}b",
				.group = "g",
				.consumer = "c"};
	assert_null(jobq_new(&bad, handler, NULL));
	bad.queue = "q";
	bad.consumer = NULL;
	assert_null(jobq_new(&bad, handler, NULL));
	bad.consumer = "c";
	bad.redis_url = "http://nope";
	assert_null(jobq_new(&bad, handler, NULL));
	jobq_free(NULL);
	env_free(&e);
}

int main(void)
{
	redis_url = getenv("REDIS_URL");
	if (!redis_url) {
		fprintf(stderr, "test_jobs: REDIS_URL is required\n");
		return 1;
	}
	log_init("test_jobs", LOG_ERROR, false);
	srandom((unsigned)clock_mono_us() ^ (unsigned)getpid());
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_read_ack),
		cmocka_unit_test(test_delayed_once),
		cmocka_unit_test(test_reclaim),
		cmocka_unit_test(test_reclaim_skips_inflight),
		cmocka_unit_test(test_retry),
		cmocka_unit_test(test_next),
		cmocka_unit_test(test_dead),
		cmocka_unit_test(test_max_inflight),
		cmocka_unit_test(test_horizon),
		cmocka_unit_test(test_stop_reading),
		cmocka_unit_test(test_stop_mid_batch),
		cmocka_unit_test(test_group_on_empty_prefix),
		cmocka_unit_test(test_group_recreated),
		cmocka_unit_test(test_settle_while_down),
		cmocka_unit_test(test_noack_stream_kind),
		cmocka_unit_test(test_fields_refused),
		cmocka_unit_test(test_metrics),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	metrics_shutdown();
	return rc;
}
