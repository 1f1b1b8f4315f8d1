/* jobs.c - job queues on Redis streams: produce, read, reclaim, promote, settle (SPEC 7). */
#include "common/jobs.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/redis.h"

#define JOBS_PROMOTE_LIMIT 500	      /* delayed jobs moved per script run */
#define JOBS_WATCH_MS	   100	      /* group creation and read resumption */
#define JOBS_LOG_EVERY_US  5000000ull /* repeated server errors: one line per 5 s */
#define JOBS_MAX_ARGS	   (6 + 2 * (JOB_MAX_FIELDS + 2))

/* Moves every member of KEYS[1] (delayed) due by ARGV[1] (unix ms), at most
 * ARGV[2] of them, to the stream KEYS[2] (MAXLEN ~ ARGV[3] when > 0). A
 * member is "k=v|k=v..."; the split is at the first '=' of each part, so
 * values may hold '='. Atomic: two promoters never move a member twice. */
static const char promote_lua[] =
	"local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])\n"
	"local maxlen = tonumber(ARGV[3])\n"
	"for _, m in ipairs(due) do\n"
	"  local args = {KEYS[2]}\n"
	"  if maxlen > 0 then\n"
	"    args[#args + 1] = 'MAXLEN'; args[#args + 1] = '~'; args[#args + 1] = ARGV[3]\n"
	"  end\n"
	"  args[#args + 1] = '*'\n"
	"  local nf = 0\n"
	"  for kv in string.gmatch(m, '[^|]+') do\n"
	"    local eq = string.find(kv, '=', 1, true)\n"
	"    if eq and eq > 1 then\n"
	"      args[#args + 1] = string.sub(kv, 1, eq - 1)\n"
	"      args[#args + 1] = string.sub(kv, eq + 1)\n"
	"      nf = nf + 1\n"
	"    end\n"
	"  end\n"
	"  if nf > 0 then redis.call('XADD', unpack(args)) end\n"
	"  redis.call('ZREM', KEYS[1], m)\n"
	"end\n"
	"return #due\n";

/* Two of the horizon's three parts (jobq_horizon), for the stream KEYS[1]
 * read by group ARGV[1] and the delayed set KEYS[2]: the earlier of the
 * XADD time (an ID's milliseconds) of the last entry handed to the group,
 * if newer entries wait unread, and of the oldest delayed job's due time;
 * -1 if neither exists (or there is no such group). */
static const char horizon_lua[] =
	"local function ms(id) return tonumber(string.match(id, '^(%d+)-')) end\n"
	"local function seq(id) return tonumber(string.match(id, '-(%d+)$')) end\n"
	"local h = -1\n"
	"local function take(t) if t and (h < 0 or t < h) then h = t end end\n"
	"local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])\n"
	"if ok then\n"
	"  for _, g in ipairs(groups) do\n"
	"    local f = {}\n"
	"    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end\n"
	"    if f['name'] == ARGV[1] then\n"
	"      local last = f['last-delivered-id']\n"
	"      local tail = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)\n"
	"      if #tail > 0 then\n"
	"        local t = tail[1][1]\n"
	"        if ms(t) > ms(last) or (ms(t) == ms(last) and seq(t) > seq(last)) then\n"
	"          take(ms(last))\n"
	"        end\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"local d = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')\n"
	"if #d > 0 then take(tonumber(d[2])) end\n"
	"return h\n";

/* A job handed out (or about to be): one allocation holding the job and
 * its strings. Linked in the queue's in-flight list until settled. */
struct jitem {
	TAILQ_ENTRY(jitem) link;
	bool handed; /* the handler has it (else still being prepared) */
	struct job job;
	char strings[];
};
TAILQ_HEAD(jitem_list, jitem);

/* Kinds of repeated failure whose log lines are throttled. */
enum jobs_logk { LOGK_READ, LOGK_CLAIM, LOGK_PROMOTE, LOGK_GROUP, LOGK_N };

struct jobq {
	struct event_base *base;
	jobq_handler handler;
	void *arg;
	char *queue, *group, *consumer;
	char *stream, *delayed, *dlq;
	int block_ms, batch, max_inflight, claim_idle_ms, promote_ms, command_timeout_ms;
	long maxlen;

	struct rds *cmd; /* everything but the blocking read */
	struct rds *rd;	 /* XREADGROUP BLOCK only */

	bool started, stopped, freeing;
	bool no_delayed;	 /* never promote: the queue has no delayed set */
	bool noack;		 /* XREADGROUP NOACK: nothing pending, nothing to ack or reclaim */
	bool group_ok;		 /* XGROUP CREATE answered OK or BUSYGROUP */
	bool group_lost;	 /* a command said NOGROUP: recreate from 0 */
	bool group_busy;	 /* XGROUP CREATE in flight */
	bool reading;		 /* XREADGROUP in flight */
	bool claiming;		 /* XAUTOCLAIM (+ XPENDING) in flight */
	bool promoting;		 /* promotion script in flight */
	bool loading;		 /* SCRIPT LOAD in flight */
	char sha[41];		 /* of promote_lua once loaded, else "" */
	char cursor[48];	 /* XAUTOCLAIM scan position */
	struct jitem_list items; /* in flight in this process */
	size_t inflight;
	uint64_t last_log_us[LOGK_N];

	struct event watch_ev, promote_ev, claim_ev;

	struct metric *m_read, *m_acked, *m_retried, *m_dead, *m_reclaimed, *m_promoted;
	struct metric *m_inflight;
};

static void start_read(struct jobq *q);
static void claim_send(struct jobq *q);
static void promote_send(struct jobq *q);

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

const char *job_get(const struct job *j, const char *key)
{
	if (!j || !key)
		return NULL;
	for (int i = 0; i < j->nfields; i++)
		if (strcmp(j->fields[i].key, key) == 0)
			return j->fields[i].value;
	return NULL;
}

void jobs_key(char *out, size_t len, const char *prefix, const char *queue, const char *kind)
{
	snprintf(out, len, "%s:{%s}:%s", prefix, queue, kind);
}

static char *key_dup(const char *prefix, const char *queue, const char *kind)
{
	size_t len = strlen(prefix) + strlen(queue) + strlen(kind) + 5;
	char *s = malloc(len);
	if (s)
		jobs_key(s, len, prefix, queue, kind);
	return s;
}

/* True once per JOBS_LOG_EVERY_US for this kind: a Redis that keeps
 * answering an error every 100 ms should not flood the log. */
static bool log_due(struct jobq *q, enum jobs_logk k)
{
	uint64_t now = clock_mono_us();
	if (q->last_log_us[k] && now - q->last_log_us[k] < JOBS_LOG_EVERY_US)
		return false;
	q->last_log_us[k] = now;
	return true;
}

/* NOGROUP: the group (or its stream) is gone. UNBLOCKED: Redis 7 ends a
 * blocked XREADGROUP that way when its stream is deleted, which takes the
 * group with it (or on CLIENT UNBLOCK ... ERROR, after which re-creating
 * the group just answers BUSYGROUP). */
static bool is_nogroup(const char *err)
{
	return err && (strncmp(err, "NOGROUP", 7) == 0 || strncmp(err, "UNBLOCKED", 9) == 0);
}

/* Fields of a job to produce: 1..JOB_MAX_FIELDS, non-empty keys, no NULLs;
 * for a delayed member also no '|' anywhere and no '=' in keys. */
static bool fields_ok(const struct job_field *f, int n, bool member)
{
	if (!f || n < 1 || n > JOB_MAX_FIELDS)
		return false;
	for (int i = 0; i < n; i++) {
		if (!f[i].key || !f[i].value || !f[i].key[0])
			return false;
		if (member && (strpbrk(f[i].key, "|=") || strchr(f[i].value, '|')))
			return false;
	}
	return true;
}

/* "k1=v1|k2=v2..." for valid fields, else NULL. Caller frees. */
static char *member_new(const struct job_field *f, int n)
{
	if (!fields_ok(f, n, true))
		return NULL;
	size_t len = 1;
	for (int i = 0; i < n; i++)
		len += strlen(f[i].key) + strlen(f[i].value) + 2;
	char *m = malloc(len);
	if (!m)
		return NULL;
	size_t off = 0;
	for (int i = 0; i < n; i++)
		off += (size_t)snprintf(m + off, len - off, "%s%s=%s", i ? "|" : "", f[i].key,
					f[i].value);
	return m;
}

/* Compares stream ids "ms-seq" numerically. */
static int id_cmp(const char *a, const char *b)
{
	char *end;
	unsigned long long am = strtoull(a, &end, 10);
	unsigned long long as = *end == '-' ? strtoull(end + 1, NULL, 10) : 0;
	unsigned long long bm = strtoull(b, &end, 10);
	unsigned long long bs = *end == '-' ? strtoull(end + 1, NULL, 10) : 0;
	if (am != bm)
		return am < bm ? -1 : 1;
	return as < bs ? -1 : as > bs;
}

/* ------------------------------------------------------------------------ */
/* Producing                                                                */
/* ------------------------------------------------------------------------ */

struct add_ctx {
	jobs_cb cb;
	void *arg;
};

static void add_cb(void *arg, redisReply *reply, const char *err)
{
	struct add_ctx *c = arg;
	(void)reply;
	if (c->cb)
		c->cb(c->arg, err);
	free(c);
}

/* Sends argv on r; the ctx carrying (cb, arg) is freed by add_cb. */
static int add_send(struct rds *r, int argc, const char **argv, jobs_cb cb, void *arg)
{
	struct add_ctx *c = malloc(sizeof(*c));
	if (!c)
		return -1;
	c->cb = cb;
	c->arg = arg;
	if (rds_command_argv(r, add_cb, c, argc, argv, NULL, 0) != 0) {
		free(c);
		return -1;
	}
	return 0;
}

/* Fills argv with XADD key [MAXLEN ~ n] * and returns the count used;
 * maxbuf holds the number's text. */
static int xadd_head(const char **argv, const char *key, long maxlen, char *maxbuf, size_t len)
{
	int argc = 0;
	argv[argc++] = "XADD";
	argv[argc++] = key;
	if (maxlen > 0) {
		snprintf(maxbuf, len, "%ld", maxlen);
		argv[argc++] = "MAXLEN";
		argv[argc++] = "~";
		argv[argc++] = maxbuf;
	}
	argv[argc++] = "*";
	return argc;
}

int jobs_add(struct rds *r, const char *stream, long maxlen, const struct job_field *f, int n,
	     jobs_cb cb, void *arg)
{
	const char *argv[JOBS_MAX_ARGS];
	char maxbuf[24];
	if (!r || !stream || !fields_ok(f, n, false))
		return -1;
	int argc = xadd_head(argv, stream, maxlen, maxbuf, sizeof(maxbuf));
	for (int i = 0; i < n; i++) {
		argv[argc++] = f[i].key;
		argv[argc++] = f[i].value;
	}
	return add_send(r, argc, argv, cb, arg);
}

/* ZADD GT: a member scheduled again keeps the later of its due times. */
int jobs_add_delayed(struct rds *r, const char *delayed, uint64_t due_ms, const struct job_field *f,
		     int n, jobs_cb cb, void *arg)
{
	char due[24];
	if (!r || !delayed)
		return -1;
	char *member = member_new(f, n);
	if (!member)
		return -1;
	snprintf(due, sizeof(due), "%" PRIu64, due_ms);
	const char *argv[] = {"ZADD", delayed, "GT", due, member};
	int rc = add_send(r, 5, argv, cb, arg);
	free(member);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Jobs in flight                                                           */
/* ------------------------------------------------------------------------ */

static struct jitem *item_of(struct job *job)
{
	return (struct jitem *)(void *)((char *)job - offsetof(struct jitem, job));
}

static struct jitem *item_find(struct jobq *q, const char *id)
{
	struct jitem *it;
	/* A list walk: at most max_inflight jobs, and only reclaims look. */
	for (it = TAILQ_FIRST(&q->items); it; it = TAILQ_NEXT(it, link))
		if (strcmp(it->job.id, id) == 0)
			return it;
	return NULL;
}

/* The id of a stream entry [id, fields], or NULL if malformed. */
static const char *entry_id(const redisReply *e)
{
	if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING ||
	    e->element[0]->len >= sizeof(((struct job *)0)->id))
		return NULL;
	return e->element[0]->str;
}

/* Builds a job from the entry [id, [k, v, ...]] with one allocation.
 * NULL if malformed, or with *deleted set if its fields are nil (an entry
 * trimmed or deleted after it was delivered). */
static struct jitem *item_new(struct jobq *q, const redisReply *e, bool *deleted)
{
	*deleted = false;
	const char *id = entry_id(e);
	if (!id)
		return NULL;
	const redisReply *f = e->element[1];
	if (f->type == REDIS_REPLY_NIL) {
		*deleted = true;
		return NULL;
	}
	if (f->type != REDIS_REPLY_ARRAY)
		return NULL;
	size_t npairs = f->elements / 2;
	if (npairs > JOB_MAX_FIELDS) {
		log_event(LOG_WARN, "job has too many fields; extra ones dropped",
			  LF_S("queue", q->queue), LF_S("id", id), LF_I("fields", npairs));
		npairs = JOB_MAX_FIELDS;
	}
	size_t size = 0;
	for (size_t i = 0; i < npairs * 2; i++) {
		if (f->element[i]->type != REDIS_REPLY_STRING)
			return NULL;
		size += f->element[i]->len + 1;
	}
	struct jitem *it = calloc(1, sizeof(*it) + size);
	if (!it)
		return NULL;
	snprintf(it->job.id, sizeof(it->job.id), "%s", id);
	char *p = it->strings;
	for (size_t i = 0; i < npairs * 2; i++) {
		const redisReply *s = f->element[i];
		memcpy(p, s->str, s->len);
		p[s->len] = '\0';
		if (i % 2 == 0)
			it->job.fields[i / 2].key = p;
		else
			it->job.fields[i / 2].value = p;
		p += s->len + 1;
	}
	it->job.nfields = (int)npairs;
	it->job.deliveries = 1;
	return it;
}

static void item_track(struct jobq *q, struct jitem *it)
{
	TAILQ_INSERT_TAIL(&q->items, it, link);
	q->inflight++;
	metric_gauge_add(q->m_inflight, 1);
}

/* Forgets a job locally and frees it; reading resumes below the limit. */
static void item_forget(struct jobq *q, struct jitem *it)
{
	TAILQ_REMOVE(&q->items, it, link);
	q->inflight--;
	metric_gauge_add(q->m_inflight, -1);
	free(it);
	start_read(q);
}

/* Hands items[0..n) to the handler in order. Once reading stopped (maybe
 * by the handler itself) the rest are released: they stay pending. */
static void hand_out(struct jobq *q, struct jitem **items, size_t n, struct metric *m)
{
	for (size_t i = 0; i < n; i++) {
		struct jitem *it = items[i];
		if (q->stopped || q->freeing) {
			item_forget(q, it);
			continue;
		}
		it->handed = true;
		metric_inc(m);
		q->handler(q->arg, &it->job);
	}
}

/* ------------------------------------------------------------------------ */
/* Acknowledging and settling                                               */
/* ------------------------------------------------------------------------ */

static void ack_cb(void *arg, redisReply *reply, const char *err)
{
	struct jobq *q = arg;
	if (q->freeing)
		return;
	if (err)
		log_event(LOG_WARN, "job ack failed; it stays pending and will be reclaimed",
			  LF_S("queue", q->queue), LF_S("error", err));
	else if (reply->type == REDIS_REPLY_INTEGER && reply->integer > 0)
		metric_inc(q->m_acked);
}

static void drop_cb(void *arg, redisReply *reply, const char *err)
{
	struct jobq *q = arg;
	(void)reply;
	if (!q->freeing && err)
		log_event(LOG_WARN, "ack of a deleted entry failed", LF_S("queue", q->queue),
			  LF_S("error", err));
}

/* XACK stream group id; counted as a settled job when counted is true
 * (else it drops a deleted entry from the pending list). */
static void send_ack(struct jobq *q, const char *id, bool counted)
{
	const char *argv[] = {"XACK", q->stream, q->group, id};
	if (rds_command_argv(q->cmd, counted ? ack_cb : drop_cb, q, 4, argv, NULL, 0) != 0)
		log_event(LOG_WARN, "job not acknowledged: redis unavailable; it stays pending",
			  LF_S("queue", q->queue), LF_S("id", id));
}

enum settle_kind { SETTLE_RETRY, SETTLE_NEXT, SETTLE_DEAD };

/* A follow-up write awaiting its reply before the XACK that settles id. */
struct settle {
	struct jobq *q;
	enum settle_kind kind;
	char id[48];
};

static const char *settle_name(enum settle_kind k)
{
	return k == SETTLE_RETRY ? "retry" : k == SETTLE_NEXT ? "next" : "dead";
}

/* The XACK goes out only once the follow-up (ZADD/XADD) succeeded. Mere
 * pipelining would keep the order but not the condition: a ZADD refused
 * with OOM or WRONGTYPE followed by an XACK that succeeds would lose the
 * job. Left pending instead, it is reclaimed and run again. */
static void settle_cb(void *arg, redisReply *reply, const char *err)
{
	struct settle *s = arg;
	struct jobq *q = s->q;
	(void)reply;
	if (!q->freeing) {
		if (err) {
			log_event(
				LOG_ERROR,
				"job follow-up not written; it stays pending and will be reclaimed",
				LF_S("queue", q->queue), LF_S("id", s->id),
				LF_S("op", settle_name(s->kind)), LF_S("error", err));
		} else {
			if (s->kind == SETTLE_RETRY)
				metric_inc(q->m_retried);
			else if (s->kind == SETTLE_DEAD)
				metric_inc(q->m_dead);
			send_ack(q, s->id, true);
		}
	}
	free(s);
}

/* Sends the follow-up argv (its reply triggers the XACK), then forgets it. */
static void settle_then_ack(struct jobq *q, struct jitem *it, enum settle_kind kind, int argc,
			    const char **argv)
{
	struct settle *s = malloc(sizeof(*s));
	if (s) {
		s->q = q;
		s->kind = kind;
		snprintf(s->id, sizeof(s->id), "%s", it->job.id);
	}
	if (!s || rds_command_argv(q->cmd, settle_cb, s, argc, argv, NULL, 0) != 0) {
		log_event(LOG_WARN, "job not settled: redis unavailable; it stays pending",
			  LF_S("queue", q->queue), LF_S("id", it->job.id),
			  LF_S("op", settle_name(kind)));
		free(s);
	}
	item_forget(q, it);
}

void jobq_ack(struct jobq *q, struct job *job)
{
	if (!q || !job)
		return;
	struct jitem *it = item_of(job);
	if (q->noack)
		metric_inc(q->m_acked); /* read with NOACK: nothing pending in Redis */
	else
		send_ack(q, it->job.id, true);
	item_forget(q, it);
}

void jobq_retry(struct jobq *q, struct job *job, const struct job_field *f, int n, uint64_t due_ms)
{
	char due[24];
	if (!q || !job)
		return;
	struct jitem *it = item_of(job);
	char *member = member_new(f, n);
	if (!member) {
		/* A bug in the caller; losing the job would be worse than
		 * seeing it again after claim_idle_ms. */
		log_event(LOG_ERROR, "retry with bad fields refused; job left pending",
			  LF_S("queue", q->queue), LF_S("id", it->job.id));
		item_forget(q, it);
		return;
	}
	snprintf(due, sizeof(due), "%" PRIu64, due_ms);
	const char *argv[] = {"ZADD", q->delayed, "GT", due, member};
	settle_then_ack(q, it, SETTLE_RETRY, 5, argv);
	free(member);
}

void jobq_next(struct jobq *q, struct job *job, const struct job_field *f, int n)
{
	const char *argv[JOBS_MAX_ARGS];
	char maxbuf[24];
	if (!q || !job)
		return;
	struct jitem *it = item_of(job);
	if (!fields_ok(f, n, false)) {
		log_event(LOG_ERROR, "next with bad fields refused; job left pending",
			  LF_S("queue", q->queue), LF_S("id", it->job.id));
		item_forget(q, it);
		return;
	}
	int argc = xadd_head(argv, q->stream, q->maxlen, maxbuf, sizeof(maxbuf));
	for (int i = 0; i < n; i++) {
		argv[argc++] = f[i].key;
		argv[argc++] = f[i].value;
	}
	settle_then_ack(q, it, SETTLE_NEXT, argc, argv);
}

void jobq_dead(struct jobq *q, struct job *job, const char *error)
{
	const char *argv[JOBS_MAX_ARGS];
	char maxbuf[24], deliveries[24];
	if (!q || !job)
		return;
	struct jitem *it = item_of(job);
	int argc = xadd_head(argv, q->dlq, q->maxlen, maxbuf, sizeof(maxbuf));
	for (int i = 0; i < job->nfields; i++) {
		/* A job replayed from the DLQ carries the old verdict: replace it. */
		if (strcmp(job->fields[i].key, "error") == 0 ||
		    strcmp(job->fields[i].key, "deliveries") == 0)
			continue;
		argv[argc++] = job->fields[i].key;
		argv[argc++] = job->fields[i].value;
	}
	snprintf(deliveries, sizeof(deliveries), "%lld", job->deliveries);
	argv[argc++] = "error";
	argv[argc++] = error ? error : "";
	argv[argc++] = "deliveries";
	argv[argc++] = deliveries;
	log_event(LOG_WARN, "job dead-lettered", LF_S("queue", q->queue), LF_S("id", job->id),
		  LF_S("error", error), LF_I("deliveries", job->deliveries));
	settle_then_ack(q, it, SETTLE_DEAD, argc, argv);
}

void jobq_release(struct jobq *q, struct job *job)
{
	if (!q || !job)
		return;
	item_forget(q, item_of(job));
}

/* ------------------------------------------------------------------------ */
/* Consumer group                                                           */
/* ------------------------------------------------------------------------ */

static void group_lost(struct jobq *q, const char *err)
{
	if (q->group_ok)
		log_event(LOG_WARN, "consumer group gone; recreating it", LF_S("queue", q->queue),
			  LF_S("group", q->group), LF_S("error", err));
	q->group_ok = false;
	q->group_lost = true;
}

static void group_cb(void *arg, redisReply *reply, const char *err)
{
	struct jobq *q = arg;
	(void)reply;
	q->group_busy = false;
	if (q->freeing)
		return;
	if (err && strncmp(err, "BUSYGROUP", 9) != 0) {
		if (reply && log_due(q, LOGK_GROUP))
			log_event(LOG_ERROR, "cannot create consumer group",
				  LF_S("queue", q->queue), LF_S("group", q->group),
				  LF_S("error", err));
		return; /* the watch timer tries again */
	}
	if (!err)
		log_event(LOG_INFO, "consumer group created", LF_S("queue", q->queue),
			  LF_S("stream", q->stream), LF_S("group", q->group));
	q->group_ok = true;
	q->group_lost = false;
	start_read(q);
}

/* XGROUP CREATE stream group 0 MKSTREAM. From the start of the stream, not
 * "$": producers (the api) queue jobs before the first consumer ever ran,
 * and after NOGROUP whatever the stream holds was added since; no consumer
 * has seen those entries, so skipping them would lose them. Steps are
 * idempotent, so a replay after an operator recreated the group is safe. */
static void ensure_group(struct jobq *q)
{
	if (q->group_ok || q->group_busy || q->freeing || !rds_connected(q->cmd))
		return;
	const char *argv[] = {"XGROUP", "CREATE", q->stream, q->group, "0", "MKSTREAM"};
	if (rds_command_argv(q->cmd, group_cb, q, 6, argv, NULL, 0) == 0)
		q->group_busy = true;
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */
/* ------------------------------------------------------------------------ */

/* Turns a list of entries into tracked jobs (deleted ones are acked and
 * skipped; with skip_inflight, ids this process already holds are skipped
 * too). Returns the array (caller frees) and its length in *n. */
static struct jitem **items_from_entries(struct jobq *q, const redisReply *entries,
					 bool skip_inflight, size_t *n)
{
	*n = 0;
	struct jitem **items = calloc(entries->elements ? entries->elements : 1, sizeof(*items));
	if (!items)
		return NULL;
	for (size_t i = 0; i < entries->elements; i++) {
		const redisReply *e = entries->element[i];
		const char *id = entry_id(e);
		bool deleted;
		if (!id) {
			log_event(LOG_WARN, "malformed stream entry skipped",
				  LF_S("queue", q->queue));
			continue;
		}
		if (skip_inflight && item_find(q, id))
			continue; /* still being handled here: not a lost job */
		struct jitem *it = item_new(q, e, &deleted);
		if (deleted) {
			send_ack(q, id, false);
			continue;
		}
		if (!it) {
			log_event(LOG_WARN, "unreadable job skipped", LF_S("queue", q->queue),
				  LF_S("id", id));
			continue;
		}
		item_track(q, it);
		items[(*n)++] = it;
	}
	return items;
}

/* XREADGROUP reply: nil, or [[stream, [[id, [k, v...]]...]]]. */
static void read_cb(void *arg, redisReply *reply, const char *err)
{
	struct jobq *q = arg;
	q->reading = false;
	if (q->freeing)
		return;
	if (err) {
		if (is_nogroup(err))
			group_lost(q, err);
		else if (reply && log_due(q, LOGK_READ))
			log_event(LOG_ERROR, "job read failed", LF_S("queue", q->queue),
				  LF_S("error", err));
		return; /* transport errors: rds reconnects, the watch timer reads again */
	}
	/* Stopped meanwhile: whatever came stays pending and is reclaimed. */
	if (q->stopped)
		return;
	if (reply->type == REDIS_REPLY_ARRAY) {
		for (size_t s = 0; s < reply->elements; s++) {
			const redisReply *st = reply->element[s];
			if (st->type != REDIS_REPLY_ARRAY || st->elements < 2 ||
			    st->element[1]->type != REDIS_REPLY_ARRAY)
				continue;
			size_t n;
			struct jitem **items = items_from_entries(q, st->element[1], false, &n);
			if (!items)
				continue;
			hand_out(q, items, n, q->m_read);
			free(items);
		}
	}
	start_read(q);
}

/* XREADGROUP GROUP g c COUNT n BLOCK ms STREAMS stream >, while started,
 * not stopped and below max_inflight. Its deadline is block_ms plus the
 * usual command deadline. */
static void start_read(struct jobq *q)
{
	char count[16], block[16];
	if (!q->started || q->stopped || q->freeing || q->reading || !q->group_ok)
		return;
	if (q->inflight >= (size_t)q->max_inflight || !rds_connected(q->rd))
		return;
	size_t room = (size_t)q->max_inflight - q->inflight;
	snprintf(count, sizeof(count), "%zu", room < (size_t)q->batch ? room : (size_t)q->batch);
	snprintf(block, sizeof(block), "%d", q->block_ms);
	const char *argv[12] = {"XREADGROUP", "GROUP", q->group, q->consumer,
				"COUNT",      count,   "BLOCK",	 block};
	int argc = 8;
	if (q->noack)
		argv[argc++] = "NOACK";
	argv[argc++] = "STREAMS";
	argv[argc++] = q->stream;
	argv[argc++] = ">";
	if (rds_command_argv(q->rd, read_cb, q, argc, argv, NULL,
			     q->block_ms + q->command_timeout_ms) == 0)
		q->reading = true;
}

/* ------------------------------------------------------------------------ */
/* Reclaiming                                                               */
/* ------------------------------------------------------------------------ */

/* Jobs claimed by XAUTOCLAIM, awaiting their delivery counts. */
struct claim {
	struct jobq *q;
	struct jitem **items;
	size_t n;
};

static void claim_done(struct jobq *q)
{
	q->claiming = false;
	/* Mid-scan: go on through the pending list now, not next period. */
	if (strcmp(q->cursor, "0-0") != 0)
		claim_send(q);
}

/* XPENDING stream group min max count consumer: [[id, consumer, idle,
 * deliveries]...]. Ids missing from it keep deliveries = 2. */
static void pending_cb(void *arg, redisReply *reply, const char *err)
{
	struct claim *c = arg;
	struct jobq *q = c->q;
	if (q->freeing) {
		free(c->items); /* the jobs themselves are freed by jobq_free */
		free(c);
		return;
	}
	if (!err && reply->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i < reply->elements; i++) {
			const redisReply *p = reply->element[i];
			if (p->type != REDIS_REPLY_ARRAY || p->elements < 4 ||
			    p->element[0]->type != REDIS_REPLY_STRING ||
			    p->element[3]->type != REDIS_REPLY_INTEGER)
				continue;
			for (size_t k = 0; k < c->n; k++)
				if (strcmp(c->items[k]->job.id, p->element[0]->str) == 0)
					c->items[k]->job.deliveries = p->element[3]->integer;
		}
	}
	for (size_t k = 0; k < c->n; k++)
		log_event(LOG_INFO, "job reclaimed", LF_S("queue", q->queue),
			  LF_S("id", c->items[k]->job.id),
			  LF_I("deliveries", c->items[k]->job.deliveries));
	hand_out(q, c->items, c->n, q->m_reclaimed);
	free(c->items);
	free(c);
	claim_done(q);
}

/* XAUTOCLAIM reply (Redis 7): [cursor, [[id, fields]...], [deleted ids]]. */
static void claim_cb(void *arg, redisReply *reply, const char *err)
{
	struct jobq *q = arg;
	char count[24];
	if (q->freeing)
		return;
	if (err) {
		q->claiming = false;
		if (is_nogroup(err))
			group_lost(q, err);
		else if (reply && log_due(q, LOGK_CLAIM))
			log_event(LOG_ERROR, "job reclaim failed", LF_S("queue", q->queue),
				  LF_S("error", err));
		return;
	}
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    reply->element[1]->type != REDIS_REPLY_ARRAY ||
	    reply->element[0]->len >= sizeof(q->cursor)) {
		q->claiming = false;
		snprintf(q->cursor, sizeof(q->cursor), "0-0");
		return;
	}
	snprintf(q->cursor, sizeof(q->cursor), "%s", reply->element[0]->str);
	if (q->stopped) {
		/* Claimed to us but not handed: pending, reclaimed again later. */
		q->claiming = false;
		return;
	}
	struct claim *c = calloc(1, sizeof(*c));
	if (c) {
		c->q = q;
		c->items = items_from_entries(q, reply->element[1], true, &c->n);
	}
	if (!c || !c->items || c->n == 0) {
		if (c)
			free(c->items);
		free(c);
		claim_done(q);
		return;
	}
	/* The delivery counts: XAUTOCLAIM does not say, XPENDING over the
	 * claimed id range does, in one round trip. */
	const char *lo = c->items[0]->job.id, *hi = lo;
	for (size_t k = 1; k < c->n; k++) {
		if (id_cmp(c->items[k]->job.id, lo) < 0)
			lo = c->items[k]->job.id;
		if (id_cmp(c->items[k]->job.id, hi) > 0)
			hi = c->items[k]->job.id;
		c->items[k]->job.deliveries = 2;
	}
	c->items[0]->job.deliveries = 2;
	snprintf(count, sizeof(count), "%zu", q->inflight + 16);
	const char *argv[] = {"XPENDING", q->stream, q->group, lo, hi, count, q->consumer};
	if (rds_command_argv(q->cmd, pending_cb, c, 7, argv, NULL, 0) != 0)
		pending_cb(c, NULL, "not connected");
}

/* XAUTOCLAIM stream group consumer claim_idle_ms cursor COUNT n. */
static void claim_send(struct jobq *q)
{
	char idle[16], count[16];
	if (!q->started || q->stopped || q->freeing || q->claiming || !q->group_ok)
		return;
	if (q->inflight >= (size_t)q->max_inflight || !rds_connected(q->cmd))
		return;
	size_t room = (size_t)q->max_inflight - q->inflight;
	snprintf(idle, sizeof(idle), "%d", q->claim_idle_ms);
	snprintf(count, sizeof(count), "%zu", room < (size_t)q->batch ? room : (size_t)q->batch);
	const char *argv[] = {"XAUTOCLAIM", q->stream, q->group, q->consumer,
			      idle,	    q->cursor, "COUNT",	 count};
	if (rds_command_argv(q->cmd, claim_cb, q, 8, argv, NULL, 0) == 0)
		q->claiming = true;
}

/* ------------------------------------------------------------------------ */
/* Promoting delayed jobs                                                   */
/* ------------------------------------------------------------------------ */

static void load_cb(void *arg, redisReply *reply, const char *err)
{
	struct jobq *q = arg;
	q->loading = false;
	if (q->freeing || err)
		return;
	if (reply->type == REDIS_REPLY_STRING && reply->len == 40)
		memcpy(q->sha, reply->str, 41);
}

static void promote_cb(void *arg, redisReply *reply, const char *err)
{
	struct jobq *q = arg;
	q->promoting = false;
	if (q->freeing)
		return;
	if (err) {
		if (strncmp(err, "NOSCRIPT", 8) == 0) { /* server restarted or flushed */
			q->sha[0] = '\0';
			promote_send(q);
		} else if (reply && log_due(q, LOGK_PROMOTE)) {
			log_event(LOG_ERROR, "delayed job promotion failed",
				  LF_S("queue", q->queue), LF_S("error", err));
		}
		return;
	}
	if (reply->type != REDIS_REPLY_INTEGER || reply->integer <= 0)
		return;
	metric_add(q->m_promoted, (uint64_t)reply->integer);
	if (reply->integer >= JOBS_PROMOTE_LIMIT) /* more may be due */
		promote_send(q);
}

/* EVALSHA promote_lua 2 delayed stream now limit maxlen; EVAL (plus a
 * SCRIPT LOAD for next time) until the script's sha is known. */
static void promote_send(struct jobq *q)
{
	char now[24], limit[16], maxlen[24];
	if (!q->started || q->stopped || q->freeing || q->promoting || !rds_connected(q->cmd))
		return;
	snprintf(now, sizeof(now), "%" PRId64, clock_wall_ms());
	snprintf(limit, sizeof(limit), "%d", JOBS_PROMOTE_LIMIT);
	snprintf(maxlen, sizeof(maxlen), "%ld", q->maxlen);
	const char *argv[] = {q->sha[0] ? "EVALSHA" : "EVAL",
			      q->sha[0] ? q->sha : promote_lua,
			      "2",
			      q->delayed,
			      q->stream,
			      now,
			      limit,
			      maxlen};
	if (!q->sha[0] && !q->loading) {
		const char *load[] = {"SCRIPT", "LOAD", promote_lua};
		if (rds_command_argv(q->cmd, load_cb, q, 3, load, NULL, 0) == 0)
			q->loading = true;
	}
	if (rds_command_argv(q->cmd, promote_cb, q, 8, argv, NULL, 0) == 0)
		q->promoting = true;
}

/* ------------------------------------------------------------------------ */
/* Horizon                                                                  */
/* ------------------------------------------------------------------------ */

struct horizon_call {
	struct jobq *q;
	jobq_horizon_cb cb;
	void *arg;
};

static void horizon_cb(void *arg, redisReply *reply, const char *err)
{
	struct horizon_call *c = arg;
	struct jobq *q = c->q;
	int64_t h = -1;
	if (!err && reply->type != REDIS_REPLY_INTEGER)
		err = "unexpected reply to the horizon script";
	if (!err && q->freeing)
		err = "job queue closing";
	if (!err) {
		h = reply->integer;
		/* The third part: the oldest job in flight here. Not XPENDING:
		 * entries whose acknowledgement a Redis restart lost are pending
		 * there for the reclaim window without being worked on. */
		struct jitem *it;
		TAILQ_FOREACH(it, &q->items, link)
		{
			int64_t ms = strtoll(it->job.id, NULL, 10);
			if (ms > 0 && (h < 0 || ms < h))
				h = ms;
		}
	}
	c->cb(c->arg, h, err);
	free(c);
}

int jobq_horizon(struct jobq *q, jobq_horizon_cb cb, void *arg)
{
	struct horizon_call *c = malloc(sizeof(*c));
	if (!c)
		return -1;
	c->q = q;
	c->cb = cb;
	c->arg = arg;
	const char *argv[] = {"EVAL", horizon_lua, "2", q->stream, q->delayed, q->group};
	if (rds_command_argv(q->cmd, horizon_cb, c, 6, argv, NULL, 0) != 0) {
		free(c);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Timers                                                                   */
/* ------------------------------------------------------------------------ */

/* Creates the group once connected and restarts reading after an outage. */
static void watch_tick(evutil_socket_t fd, short what, void *arg)
{
	struct jobq *q = arg;
	(void)fd;
	(void)what;
	ensure_group(q);
	start_read(q);
}

static void promote_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	promote_send(arg);
}

static void claim_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	claim_send(arg);
}

static void timer_add(struct event *ev, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_add(ev, &tv);
}

/* ------------------------------------------------------------------------ */
/* Life cycle                                                               */
/* ------------------------------------------------------------------------ */

/* A queue name goes into a hash tag and a metric label. */
static bool queue_name_ok(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (*s == '{' || *s == '}' || *s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
			return false;
	return true;
}

static struct rds *open_rds(const struct jobq_opts *o, const char *role, int timeout_ms)
{
	char name[128];
	snprintf(name, sizeof(name), "jobs-%s-%s", o->queue, role);
	struct rds_opts ro = {.url = o->redis_url, .command_timeout_ms = timeout_ms, .name = name};
	return rds_new(o->base, &ro);
}

static int or_default(int v, int def)
{
	return v > 0 ? v : def;
}

struct jobq *jobq_new(const struct jobq_opts *o, jobq_handler handler, void *arg)
{
	char labels[160];
	if (!o || !o->base || !o->redis_url || !handler || !o->prefix || !*o->prefix ||
	    !queue_name_ok(o->queue) || !o->group || !*o->group || !o->consumer || !*o->consumer) {
		log_event(LOG_ERROR, "bad job queue options", LF_S("queue", o ? o->queue : NULL));
		return NULL;
	}
	struct jobq *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->base = o->base;
	q->handler = handler;
	q->arg = arg;
	q->block_ms = or_default(o->block_ms, 1000);
	q->batch = or_default(o->batch, 64);
	q->max_inflight = or_default(o->max_inflight, 1024);
	q->claim_idle_ms = or_default(o->claim_idle_ms, 30000);
	q->promote_ms = or_default(o->promote_ms, 100);
	q->command_timeout_ms = or_default(o->command_timeout_ms, 5000);
	q->maxlen = o->maxlen > 0 ? o->maxlen : 1000000;
	snprintf(q->cursor, sizeof(q->cursor), "0-0");
	TAILQ_INIT(&q->items);
	q->queue = strdup(o->queue);
	q->group = strdup(o->group);
	q->consumer = strdup(o->consumer);
	q->stream = key_dup(o->prefix, o->queue, o->stream_kind ? o->stream_kind : "jobs");
	q->no_delayed = o->no_delayed;
	q->noack = o->noack;
	q->delayed = key_dup(o->prefix, o->queue, "delayed");
	q->dlq = key_dup(o->prefix, o->queue, "dlq");
	if (!q->queue || !q->group || !q->consumer || !q->stream || !q->delayed || !q->dlq)
		goto fail;
	if (!(q->cmd = open_rds(o, "cmd", q->command_timeout_ms)) ||
	    !(q->rd = open_rds(o, "read", q->command_timeout_ms)))
		goto fail;
	event_assign(&q->watch_ev, q->base, -1, EV_PERSIST, watch_tick, q);
	event_assign(&q->promote_ev, q->base, -1, EV_PERSIST, promote_tick, q);
	event_assign(&q->claim_ev, q->base, -1, EV_PERSIST, claim_tick, q);

	snprintf(labels, sizeof(labels), "queue=\"%s\"", q->queue);
	q->m_read = metrics_counter("rampart_jobs_read_total",
				    "Jobs read from the stream and handed to a handler", labels);
	q->m_acked = metrics_counter("rampart_jobs_acked_total",
				     "Jobs acknowledged (XACK confirmed), however settled", labels);
	q->m_retried = metrics_counter("rampart_jobs_retried_total",
				       "Follow-up jobs scheduled in the delayed set", labels);
	q->m_dead = metrics_counter("rampart_jobs_dead_total", "Jobs moved to the DLQ", labels);
	q->m_reclaimed =
		metrics_counter("rampart_jobs_reclaimed_total",
				"Idle pending jobs reclaimed and handed to a handler", labels);
	q->m_promoted = metrics_counter("rampart_jobs_promoted_total",
					"Delayed jobs moved to the stream when due", labels);
	q->m_inflight = metrics_gauge("rampart_jobs_inflight",
				      "Jobs handed to handlers and not yet settled", labels);
	return q;
fail:
	rds_free(q->cmd);
	rds_free(q->rd);
	free(q->queue);
	free(q->group);
	free(q->consumer);
	free(q->stream);
	free(q->delayed);
	free(q->dlq);
	free(q);
	return NULL;
}

void jobq_start(struct jobq *q)
{
	if (!q || q->started || q->stopped)
		return;
	q->started = true;
	int claim_ms = q->claim_idle_ms / 2 > 100 ? q->claim_idle_ms / 2 : 100;
	timer_add(&q->watch_ev, JOBS_WATCH_MS);
	if (!q->no_delayed)
		timer_add(&q->promote_ev, q->promote_ms);
	if (!q->noack)
		timer_add(&q->claim_ev, claim_ms);
	ensure_group(q);
	start_read(q);
}

void jobq_stop_reading(struct jobq *q)
{
	if (!q)
		return;
	q->stopped = true;
	event_del(&q->watch_ev);
	event_del(&q->promote_ev);
	event_del(&q->claim_ev);
}

size_t jobq_inflight(const struct jobq *q)
{
	return q ? q->inflight : 0;
}

bool jobq_ready(const struct jobq *q)
{
	return q && q->group_ok && rds_connected(q->cmd) && rds_connected(q->rd);
}

struct rds *jobq_redis(struct jobq *q)
{
	return q ? q->cmd : NULL;
}

const char *jobq_name(const struct jobq *q)
{
	return q->queue;
}

const char *jobq_group(const struct jobq *q)
{
	return q->group;
}

const char *jobq_stream_key(const struct jobq *q)
{
	return q->stream;
}

const char *jobq_delayed_key(const struct jobq *q)
{
	return q->delayed;
}

const char *jobq_dlq_key(const struct jobq *q)
{
	return q->dlq;
}

/* Never from inside the handler or any rds callback (rds_free's rule).
 * The "freeing" flag makes every callback that rds_free runs synchronously
 * (pending commands failed with "client shutting down") return at once.
 * Settle commands still awaiting replies are dropped, so their jobs stay
 * pending: drain first (rds_pending(jobq_redis(q)) == 0) on a clean stop. */
void jobq_free(struct jobq *q)
{
	if (!q)
		return;
	q->freeing = true;
	event_del(&q->watch_ev);
	event_del(&q->promote_ev);
	event_del(&q->claim_ev);
	rds_free(q->rd);
	rds_free(q->cmd);
	size_t unsettled = 0;
	struct jitem *it;
	while ((it = TAILQ_FIRST(&q->items))) {
		if (it->handed)
			unsettled++;
		TAILQ_REMOVE(&q->items, it, link);
		metric_gauge_add(q->m_inflight, -1);
		free(it);
	}
	if (unsettled)
		log_event(LOG_WARN, "job queue freed with unsettled jobs; they stay pending",
			  LF_S("queue", q->queue), LF_I("jobs", unsettled));
	free(q->queue);
	free(q->group);
	free(q->consumer);
	free(q->stream);
	free(q->delayed);
	free(q->dlq);
	free(q);
}
