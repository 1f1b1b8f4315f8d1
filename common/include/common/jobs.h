/* jobs.h - job queues on Redis streams (SPEC 7).
 *
 * A queue named Q under prefix P uses three keys, all with the hash tag {Q}
 * so multi-key scripts are valid on Redis Cluster:
 *   P:{Q}:jobs     stream of jobs, consumer group (e.g. "workers")
 *   P:{Q}:delayed  sorted set of jobs due later, score = due time in unix ms
 *   P:{Q}:dlq      stream of jobs that exhausted their attempts, with "error"
 * Jobs are flat, human-readable fields (payment_id, step, attempt,
 * request_id, ...). A delayed job is stored as the member
 * "k1=v1|k2=v2|..." (values must not contain '|'), so ZRANGE shows it as it
 * is; a Lua script moves every due member to the stream atomically, so two
 * workers never promote the same job twice.
 *
 * Delivery is at least once: a job is acknowledged (XACK) only when its
 * handler says so; entries left pending by a dead consumer are reclaimed
 * with XAUTOCLAIM after claim_idle_ms and handed to a live one. */
#ifndef COMMON_JOBS_H
#define COMMON_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct rds;
struct jobq;

#define JOB_MAX_FIELDS 12

struct job_field {
	const char *key;
	const char *value;
};

/* A job handed to a handler. Owned by the queue; valid until the handler
 * settles it with exactly one of jobq_ack / jobq_retry / jobq_dead /
 * jobq_release. */
struct job {
	char id[48]; /* stream entry id, e.g. "1700000000000-0" */
	int nfields;
	struct job_field fields[JOB_MAX_FIELDS]; /* strings owned by the job */
	long long deliveries; /* times delivered (1 on first read, more after reclaims) */
};

/* The value of field key, or NULL (borrowed from the job). */
const char *job_get(const struct job *j, const char *key);

/* Writes "<prefix>:{<queue>}:<kind>" (kind "jobs", "delayed", "dlq"). */
void jobs_key(char *out, size_t len, const char *prefix, const char *queue, const char *kind);

/* Completion of a producer call: err NULL on success. */
typedef void (*jobs_cb)(void *arg, const char *err);

/* ---- producing (any process with a Redis client) ---- */

/* XADD stream MAXLEN ~ maxlen * fields... Returns 0 if sent (cb runs once,
 * cb may be NULL), -1 if refused (not connected, bad fields). */
int jobs_add(struct rds *r, const char *stream, long maxlen, const struct job_field *f, int n,
	     jobs_cb cb, void *arg) __attribute__((warn_unused_result));

/* ZADD delayed due_ms "k=v|k=v...": the job runs when due (promoted by a
 * consumer's promoter). Same job (same fields) scheduled twice is one
 * member: the later due time wins. Values containing '|' are refused. */
int jobs_add_delayed(struct rds *r, const char *delayed, uint64_t due_ms, const struct job_field *f,
		     int n, jobs_cb cb, void *arg) __attribute__((warn_unused_result));

/* ---- consuming ---- */

struct jobq_opts {
	struct event_base *base;
	const char *redis_url;	 /* the queue opens its own connections: one for
				    commands, one for the blocking XREADGROUP */
	const char *prefix;	 /* e.g. "rampart" */
	const char *queue;	 /* e.g. "payments" */
	const char *group;	 /* e.g. "workers" */
	const char *consumer;	 /* unique per process, e.g. hostname-pid */
	int block_ms;		 /* XREADGROUP BLOCK (default 1000) */
	int batch;		 /* COUNT per read (default 64) */
	int max_inflight;	 /* unsettled jobs at most; reading pauses above (default 1024) */
	int claim_idle_ms;	 /* JOB_CLAIM_IDLE_MS (default 30000) */
	int promote_ms;		 /* how often due delayed jobs are promoted (default 100) */
	long maxlen;		 /* MAXLEN ~ of the stream and the DLQ (default 1000000) */
	int command_timeout_ms;	 /* default 5000 */
	const char *stream_kind; /* last part of the stream key: NULL = "jobs";
				    the fee requests use "requests" */
	bool no_delayed;	 /* no delayed set: never promote (fee requests) */
	/* XREADGROUP ... NOACK: entries are not kept pending, so nothing is
	 * acknowledged or reclaimed; jobq_ack only settles locally and a job
	 * lost with its consumer stays lost. For work whose requester has its
	 * own deadline and gives up by itself (fee requests). */
	bool noack;
};

/* Called once per delivered job; must settle it (now or later). */
typedef void (*jobq_handler)(void *arg, struct job *job);

/* Creates the queue; nothing is read until jobq_start. NULL on bad options. */
struct jobq *jobq_new(const struct jobq_opts *o, jobq_handler handler, void *arg);

/* Creates the consumer group if missing (XGROUP CREATE ... 0 MKSTREAM, once
 * connected: jobs queued before any consumer existed are not skipped), then reads new entries,
 * promotes due delayed jobs and reclaims idle ones, until jobq_stop_reading. */
void jobq_start(struct jobq *q);

/* Stops reading and reclaiming (SIGTERM); jobs already handed out may still
 * be settled. Promotion stops too. */
void jobq_stop_reading(struct jobq *q);

/* Jobs handed to the handler and not yet settled. */
size_t jobq_inflight(const struct jobq *q);

/* True when both connections are up and the group exists. */
bool jobq_ready(const struct jobq *q);

/* The queue's horizon, so that a job still waiting in the queue is not
 * taken for a lost one (the worker's overdue relay): cb gets the earliest
 * of the XADD time (unix ms) of the last entry the group has read, when
 * newer ones wait unread; of the oldest job in flight in this process;
 * and of the oldest delayed job's due time. -1: none of these
 * (nothing waits or is in flight). Every job due before the horizon has
 * been read and settled, unless lost. One EVAL on the command connection;
 * returns -1 if it could not be sent (cb is not called). */
typedef void (*jobq_horizon_cb)(void *arg, int64_t horizon_ms, const char *err);
int jobq_horizon(struct jobq *q, jobq_horizon_cb cb, void *arg);

/* The command connection, for producing on the same queue (jobs_add...). */
struct rds *jobq_redis(struct jobq *q);

/* Name ("payments") and consumer group of this queue (borrowed). */
const char *jobq_name(const struct jobq *q);
const char *jobq_group(const struct jobq *q);

/* Keys of this queue (borrowed). */
const char *jobq_stream_key(const struct jobq *q);
const char *jobq_delayed_key(const struct jobq *q);
const char *jobq_dlq_key(const struct jobq *q);

/* ---- settling a job: exactly one per job; each frees the job ---- */

/* Done: XACK. */
void jobq_ack(struct jobq *q, struct job *job);

/* Schedules the follow-up job (fields, due at due_ms, e.g. a retry with
 * attempt+1 or the next poll) in the delayed set, then XACKs this one, in
 * that order, so a crash in between repeats work instead of losing it. */
void jobq_retry(struct jobq *q, struct job *job, const struct job_field *f, int n, uint64_t due_ms);

/* Schedules a follow-up now (XADD to the stream), then XACKs this one. */
void jobq_next(struct jobq *q, struct job *job, const struct job_field *f, int n);

/* Gives up: XADD to the DLQ (the job's fields plus "error" and
 * "deliveries"), then XACK. */
void jobq_dead(struct jobq *q, struct job *job, const char *error);

/* Leaves the job pending (not acknowledged), e.g. on shutdown: another
 * consumer reclaims it after claim_idle_ms. */
void jobq_release(struct jobq *q, struct job *job);

/* Fails nothing, acknowledges nothing: drops connections and frees. Call
 * after every handed-out job was settled or released. Accepts NULL. */
void jobq_free(struct jobq *q);

#endif
