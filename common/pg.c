/* pg.c - asynchronous PostgreSQL pool: libpq pipeline mode on libevent. */
#include "common/pg.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "common/admission.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/resolve.h"
#include "common/rnd.h"

#define PG_MAX_TX	  16
#define PG_BACKOFF_MIN_MS 100
#define PG_BACKOFF_MAX_MS 5000
#define PG_SWEEP_MS	  100

enum pgq_kind {
	Q_STMT,	   /* one statement (sql or prepared) and its own sync */
	Q_TX,	   /* several statements sharing one sync */
	Q_SCRIPT,  /* simple-protocol script, connection out of pipeline mode */
	Q_PREPARE, /* internal: prepare registered statements on one connection */
};

struct pgq_stmt {
	const char *sql; /* NULL: prepared statement `stmt` */
	int stmt;
	int nparams;
	const char **params;
};

/* One request: one malloc holds the struct, its statements, parameter
 * pointers and copies of every string. */
struct pgq {
	TAILQ_ENTRY(pgq) link;
	enum pgq_kind kind;
	pg_cb cb;
	pg_tx_cb txcb;
	void *arg;
	uint64_t deadline_us; /* 0 = none */
	uint64_t submit_us;   /* when it was submitted: its sojourn for admission */
	int n;		      /* statements */
	int idx;	      /* statement whose results we are reading; n = awaiting sync */
	bool got;	      /* a result arrived for statement idx */
	int prep_from;	      /* Q_PREPARE: first statement index prepared */
	PGresult *res[PG_MAX_TX];
	struct pgq_stmt stmts[];
};
TAILQ_HEAD(pgq_list, pgq);

enum conn_state { C_DOWN, C_CONNECTING, C_READY };

struct pg_conn {
	struct pg_pool *pool;
	int index;
	PGconn *pg;
	enum conn_state state;
	bool script; /* out of pipeline mode running a Q_SCRIPT */
	bool write_armed;
	int fd;
	struct event rev; /* socket readable (persistent while ready) */
	struct event wev; /* socket writable (armed while output is pending) */
	struct event tev; /* reconnect backoff and connect timeout */
	struct pgq_list inflight;
	int ninflight;
	int nprepared; /* registered statements known to be prepared here */
	int backoff_ms;
	uint64_t connect_deadline_us;
	struct resolve_req *resolving; /* host name lookup in progress */
	bool reconnect_now;	       /* a demand reconnect is due on the next tick */
};

struct pg_pool {
	struct event_base *base;
	char *conninfo;
	char *name;
	char *options; /* "-c statement_timeout=..." */
	int size, max_queue, max_pipeline, query_timeout_ms, connect_timeout_ms;
	struct pg_conn *conns;
	struct pgq_list queue;
	int nqueued;
	struct event dispatch_ev;
	struct event sweep_ev;
	char **stmt_sql;
	int *stmt_nparams;
	int nstmts;
	uint64_t reconnects;
	uint64_t last_demand_us; /* last reconnect brought forward by a request */
	char *dns_host;		 /* a host name to resolve before each connect, or NULL */
	struct resolver *resolver;
	struct admission admission; /* pg_pool_refusing */
};

static void conn_connect(struct pg_conn *c);
static void conn_fail(struct pg_conn *c, const char *why);
static void conn_read_cb(evutil_socket_t fd, short what, void *arg);
static void conn_write_cb(evutil_socket_t fd, short what, void *arg);

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */
/* ------------------------------------------------------------------------ */

static size_t str_size(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

/* Copies s into the arena at *cur, returning the copy (NULL stays NULL). */
static const char *arena_copy(char **cur, const char *s)
{
	if (!s)
		return NULL;
	size_t len = strlen(s) + 1;
	char *dst = *cur;
	memcpy(dst, s, len);
	*cur += len;
	return dst;
}

/* Builds a request from statements, copying every string. NULL on OOM. */
static struct pgq *pgq_new(struct pg_pool *p, enum pgq_kind kind, const struct pg_stmt *stmts,
			   int n)
{
	size_t size = sizeof(struct pgq) + (size_t)n * sizeof(struct pgq_stmt);
	for (int i = 0; i < n; i++) {
		size += str_size(stmts[i].sql);
		size += (size_t)stmts[i].nparams * sizeof(char *);
		for (int j = 0; j < stmts[i].nparams; j++)
			size += str_size(stmts[i].params[j]);
	}
	struct pgq *q = calloc(1, size);
	if (!q)
		return NULL;
	q->kind = kind;
	q->n = n;
	q->submit_us = clock_mono_us();
	if (p->query_timeout_ms > 0)
		q->deadline_us = q->submit_us + (uint64_t)p->query_timeout_ms * 1000u;
	const char **ptrs = (const char **)(void *)&q->stmts[n];
	size_t nptrs = 0;
	for (int i = 0; i < n; i++)
		nptrs += (size_t)stmts[i].nparams;
	char *cur = (char *)(ptrs + nptrs);
	for (int i = 0; i < n; i++) {
		struct pgq_stmt *s = &q->stmts[i];
		s->sql = arena_copy(&cur, stmts[i].sql);
		s->stmt = stmts[i].stmt;
		s->nparams = stmts[i].nparams;
		s->params = ptrs;
		for (int j = 0; j < s->nparams; j++)
			ptrs[j] = arena_copy(&cur, stmts[i].params[j]);
		ptrs += s->nparams;
	}
	return q;
}

/* Runs the request's callback once and frees it. err NULL = success. */
static void pgq_finish(struct pgq *q, const char *err)
{
	if (q->kind == Q_TX) {
		if (q->txcb)
			q->txcb(q->arg, q->res, q->n, err);
	} else if (q->kind != Q_PREPARE && q->cb) {
		q->cb(q->arg, q->res[0], err);
	}
	for (int i = 0; i < q->n && i < PG_MAX_TX; i++)
		PQclear(q->res[i]);
	free(q);
}

/* The first server error among the results, as text; NULL when all went well. */
static const char *pgq_error(const struct pgq *q)
{
	for (int i = 0; i < q->n; i++) {
		const PGresult *r = q->res[i];
		if (!r)
			return "statement produced no result";
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_PIPELINE_ABORTED)
			continue; /* follows the statement that failed */
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			const char *msg = PQresultErrorMessage(r);
			return msg && *msg ? msg : PQresStatus(st);
		}
	}
	for (int i = 0; i < q->n; i++)
		if (PQresultStatus(q->res[i]) == PGRES_PIPELINE_ABORTED)
			return "statement aborted by an earlier error in its transaction";
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Sending                                                                  */
/* ------------------------------------------------------------------------ */

static void conn_arm_write(struct pg_conn *c)
{
	int r = PQflush(c->pg);
	if (r < 0) {
		conn_fail(c, PQerrorMessage(c->pg));
		return;
	}
	if (r == 1 && !c->write_armed) {
		event_add(&c->wev, NULL);
		c->write_armed = true;
	} else if (r == 0 && c->write_armed) {
		event_del(&c->wev);
		c->write_armed = false;
	}
}

static bool send_stmt(struct pg_conn *c, const struct pgq_stmt *s)
{
	char name[16];
	if (s->sql)
		return PQsendQueryParams(c->pg, s->sql, s->nparams, NULL, s->params, NULL, NULL,
					 0) == 1;
	snprintf(name, sizeof(name), "rp%d", s->stmt);
	return PQsendQueryPrepared(c->pg, name, s->nparams, s->params, NULL, NULL, 0) == 1;
}

/* Queues an internal request preparing statements [nprepared, upto) here. */
static bool conn_prepare_upto(struct pg_conn *c, int upto)
{
	struct pg_pool *p = c->pool;
	int from = c->nprepared;
	int n = upto - from;
	if (n <= 0)
		return true;
	struct pgq *q = calloc(1, sizeof(*q) + (size_t)n * sizeof(struct pgq_stmt));
	if (!q)
		return false;
	q->kind = Q_PREPARE;
	q->submit_us = clock_mono_us(); /* its wait counts for admission too */
	q->n = n > PG_MAX_TX ? PG_MAX_TX : n;
	q->prep_from = from;
	for (int i = 0; i < q->n; i++) {
		char name[16];
		snprintf(name, sizeof(name), "rp%d", from + i);
		if (!PQsendPrepare(c->pg, name, p->stmt_sql[from + i], p->stmt_nparams[from + i],
				   NULL)) {
			free(q);
			return false;
		}
	}
	if (!PQpipelineSync(c->pg)) {
		free(q);
		return false;
	}
	c->nprepared = from + q->n;
	TAILQ_INSERT_TAIL(&c->inflight, q, link);
	c->ninflight++;
	return c->nprepared >= upto ? true : conn_prepare_upto(c, upto);
}

/* Sends q on c. Returns false if the connection broke (q not consumed). */
static bool conn_send(struct pg_conn *c, struct pgq *q)
{
	if (q->kind == Q_SCRIPT) {
		if (!PQexitPipelineMode(c->pg) || !PQsendQuery(c->pg, q->stmts[0].sql))
			return false;
		c->script = true;
	} else {
		int need = 0;
		for (int i = 0; i < q->n; i++)
			if (!q->stmts[i].sql && q->stmts[i].stmt + 1 > need)
				need = q->stmts[i].stmt + 1;
		if (need > c->nprepared && !conn_prepare_upto(c, need))
			return false;
		for (int i = 0; i < q->n; i++)
			if (!send_stmt(c, &q->stmts[i]))
				return false;
		if (!PQpipelineSync(c->pg))
			return false;
	}
	TAILQ_INSERT_TAIL(&c->inflight, q, link);
	c->ninflight++;
	return true;
}

/* The ready connection with the fewest statements in flight, or NULL. A
 * script needs an idle connection to itself. */
static struct pg_conn *pick_conn(struct pg_pool *p, bool script)
{
	struct pg_conn *best = NULL;
	for (int i = 0; i < p->size; i++) {
		struct pg_conn *c = &p->conns[i];
		if (c->state != C_READY || c->script || c->ninflight >= p->max_pipeline)
			continue;
		if (script && c->ninflight > 0)
			continue;
		if (!best || c->ninflight < best->ninflight)
			best = c;
	}
	return best;
}

static bool pool_any_connecting(const struct pg_pool *p)
{
	for (int i = 0; i < p->size; i++)
		if (p->conns[i].state == C_CONNECTING || p->conns[i].state == C_READY ||
		    p->conns[i].reconnect_now)
			return true;
	return false;
}

/* Every connection is waiting out its backoff, but a request wants the
 * database: bring one reconnect forward (at most every 100 ms), so service
 * resumes as soon as the server is back instead of after the backoff. The
 * request waits for that attempt and fails with it if the server is still
 * down. */
static void pool_demand_reconnect(struct pg_pool *p)
{
	uint64_t now = clock_mono_us();
	if (now - p->last_demand_us < 100000u)
		return;
	for (int i = 0; i < p->size; i++) {
		struct pg_conn *c = &p->conns[i];
		if (c->state == C_DOWN && !c->resolving) {
			struct timeval zero = {0, 0};
			p->last_demand_us = now;
			c->reconnect_now = true;
			evtimer_del(&c->tev);
			evtimer_add(&c->tev, &zero);
			return;
		}
	}
}

/* Moves waiting requests onto connections, then flushes each connection once. */
static void dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pg_pool *p = arg;
	struct pgq *q;
	(void)fd;
	(void)what;

	while ((q = TAILQ_FIRST(&p->queue)) != NULL) {
		struct pg_conn *c = pick_conn(p, q->kind == Q_SCRIPT);
		if (!c)
			break;
		TAILQ_REMOVE(&p->queue, q, link);
		p->nqueued--;
		if (!conn_send(c, q)) {
			/* Not sent: put it back at the head, drop the connection. */
			TAILQ_INSERT_HEAD(&p->queue, q, link);
			p->nqueued++;
			conn_fail(c, PQerrorMessage(c->pg));
			continue;
		}
	}
	for (int i = 0; i < p->size; i++)
		if (p->conns[i].state == C_READY && p->conns[i].ninflight > 0)
			conn_arm_write(&p->conns[i]);
}

static void schedule_dispatch(struct pg_pool *p)
{
	event_active(&p->dispatch_ev, EV_TIMEOUT, 0);
}

static int submit(struct pg_pool *p, struct pgq *q)
{
	if (p->nqueued >= p->max_queue) {
		log_event(LOG_WARN, "postgres queue full", LF_S("pool", p->name),
			  LF_I("queued", p->nqueued));
		free(q);
		return -1;
	}
	if (!pool_any_connecting(p))
		pool_demand_reconnect(p);
	if (!pool_any_connecting(p)) {
		free(q); /* every connection is in backoff: fail fast, don't queue */
		return -1;
	}
	TAILQ_INSERT_TAIL(&p->queue, q, link);
	p->nqueued++;
	schedule_dispatch(p);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Receiving                                                                */
/* ------------------------------------------------------------------------ */

/* Completes the head request of c. */
static void conn_complete_head(struct pg_conn *c, const char *err)
{
	struct pgq *q = TAILQ_FIRST(&c->inflight);
	uint64_t now = clock_mono_us();
	TAILQ_REMOVE(&c->inflight, q, link);
	c->ninflight--;
	admission_observe(&c->pool->admission, now, now - q->submit_us);
	if (q->kind == Q_PREPARE) {
		const char *e = err ? err : pgq_error(q);
		if (e)
			log_event(LOG_ERROR, "postgres prepare failed", LF_S("pool", c->pool->name),
				  LF_S("error", e));
	}
	pgq_finish(q, err ? err : pgq_error(q));
}

/* Reads every available result and completes finished requests. Returns
 * false if the connection failed (c is then down). */
static bool conn_drain(struct pg_conn *c)
{
	int spurious = 0;
	while (c->state == C_READY && !TAILQ_EMPTY(&c->inflight)) {
		if (PQisBusy(c->pg))
			return true;
		struct pgq *q = TAILQ_FIRST(&c->inflight);
		PGresult *res = PQgetResult(c->pg);

		if (q->kind == Q_SCRIPT) {
			if (res) {
				/* Keep the last result; an error result wins. */
				if (!q->res[0] || PQresultStatus(res) == PGRES_FATAL_ERROR ||
				    PQresultStatus(q->res[0]) != PGRES_FATAL_ERROR) {
					PQclear(q->res[0]);
					q->res[0] = res;
				} else {
					PQclear(res);
				}
				continue;
			}
			c->script = false;
			if (!PQenterPipelineMode(c->pg)) {
				conn_fail(c, PQerrorMessage(c->pg));
				return false;
			}
			conn_complete_head(c, NULL);
			continue;
		}

		if (q->idx < q->n) {
			if (!res) {
				if (!q->got) {
					/* Nothing for this statement yet: a stray NULL. */
					if (++spurious > 1)
						return true;
					continue;
				}
				q->idx++;
				q->got = false;
				continue;
			}
			spurious = 0;
			if (q->got || PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
				PQclear(res); /* extra results are not expected; drop */
				continue;
			}
			q->res[q->idx] = res;
			q->got = true;
			continue;
		}
		if (!res) {
			if (++spurious > 1)
				return true;
			continue;
		}
		ExecStatusType st = PQresultStatus(res);
		PQclear(res);
		if (st == PGRES_PIPELINE_SYNC)
			conn_complete_head(c, NULL);
	}
	return true;
}

static void conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;
	(void)fd;
	(void)what;
	if (!PQconsumeInput(c->pg)) {
		conn_fail(c, PQerrorMessage(c->pg));
		return;
	}
	if (!conn_drain(c))
		return;
	if (c->state == C_READY && TAILQ_EMPTY(&c->inflight)) {
		/* Idle: notifications or a server-initiated close show up here. */
		PGresult *res;
		while (!PQisBusy(c->pg) && (res = PQgetResult(c->pg)) != NULL)
			PQclear(res);
		if (PQstatus(c->pg) == CONNECTION_BAD) {
			conn_fail(c, PQerrorMessage(c->pg));
			return;
		}
	}
	if (!TAILQ_EMPTY(&c->pool->queue))
		schedule_dispatch(c->pool);
}

static void conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;
	(void)fd;
	(void)what;
	c->write_armed = false;
	conn_arm_write(c);
}

/* ------------------------------------------------------------------------ */
/* Connection life cycle                                                    */
/* ------------------------------------------------------------------------ */

static void conn_schedule_reconnect(struct pg_conn *c)
{
	int ms = c->backoff_ms ? c->backoff_ms : PG_BACKOFF_MIN_MS;
	/* Jitter in [ms/2, ms) so a pool's connections do not stampede. */
	int delay = ms / 2 + (int)rnd_below((uint64_t)(ms / 2 + 1));
	c->backoff_ms = ms * 2 > PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS : ms * 2;
	struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
	evtimer_add(&c->tev, &tv);
}

/* Fails every request that depends on the pool having a live connection. */
static void pool_fail_queue_if_dead(struct pg_pool *p)
{
	if (pool_any_connecting(p))
		return;
	struct pgq *q;
	while ((q = TAILQ_FIRST(&p->queue)) != NULL) {
		TAILQ_REMOVE(&p->queue, q, link);
		p->nqueued--;
		pgq_finish(q, "database unavailable");
	}
}

static void conn_close(struct pg_conn *c)
{
	if (event_initialized(&c->rev))
		event_del(&c->rev);
	if (event_initialized(&c->wev))
		event_del(&c->wev);
	c->write_armed = false;
	if (c->pg)
		PQfinish(c->pg);
	c->pg = NULL;
	c->fd = -1;
	c->script = false;
	c->nprepared = 0;
}

/* Drops the connection: in-flight requests fail (their outcome is unknown to
 * us, so they are not retried), and a reconnect is scheduled. */
static void conn_fail(struct pg_conn *c, const char *why)
{
	struct pg_pool *p = c->pool;
	char msg[256];
	snprintf(msg, sizeof(msg), "connection lost: %s", why && *why ? why : "unknown error");
	size_t l = strlen(msg);
	while (l > 0 && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
		msg[--l] = '\0';
	bool was_ready = c->state == C_READY;
	log_event(was_ready ? LOG_WARN : LOG_DEBUG, "postgres connection down",
		  LF_S("pool", p->name), LF_I("conn", c->index), LF_S("error", msg));
	conn_close(c);
	c->state = C_DOWN;
	evtimer_del(&c->tev);
	struct pgq *q;
	while ((q = TAILQ_FIRST(&c->inflight)) != NULL) {
		TAILQ_REMOVE(&c->inflight, q, link);
		c->ninflight--;
		pgq_finish(q, msg);
	}
	conn_schedule_reconnect(c);
	pool_fail_queue_if_dead(p);
}

static void conn_poll(struct pg_conn *c);

static void conn_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;
	(void)fd;
	if (what & EV_TIMEOUT) {
		if (c->state == C_CONNECTING && clock_mono_us() >= c->connect_deadline_us) {
			conn_fail(c, "connect timeout");
			return;
		}
	}
	conn_poll(c);
}

/* Advances PQconnectPoll and waits for what it asks for. */
static void conn_poll(struct pg_conn *c)
{
	struct pg_pool *p = c->pool;
	PostgresPollingStatusType st = PQconnectPoll(c->pg);
	if (st == PGRES_POLLING_FAILED) {
		conn_fail(c, PQerrorMessage(c->pg));
		return;
	}
	if (st == PGRES_POLLING_OK) {
		evtimer_del(&c->tev);
		if (PQsetnonblocking(c->pg, 1) != 0 || !PQenterPipelineMode(c->pg)) {
			conn_fail(c, PQerrorMessage(c->pg));
			return;
		}
		c->fd = PQsocket(c->pg);
		event_del(&c->rev);
		event_assign(&c->rev, p->base, c->fd, EV_READ | EV_PERSIST, conn_read_cb, c);
		event_assign(&c->wev, p->base, c->fd, EV_WRITE, conn_write_cb, c);
		event_add(&c->rev, NULL);
		c->state = C_READY;
		c->backoff_ms = 0;
		log_event(LOG_INFO, "postgres connected", LF_S("pool", p->name),
			  LF_I("conn", c->index), LF_I("server_version", PQserverVersion(c->pg)));
		schedule_dispatch(p);
		return;
	}
	/* Reading or writing: wait for the socket (it may change between calls). */
	short ev = st == PGRES_POLLING_WRITING ? EV_WRITE : EV_READ;
	uint64_t now = clock_mono_us();
	uint64_t left = c->connect_deadline_us > now ? c->connect_deadline_us - now : 0;
	struct timeval tv = {(time_t)(left / 1000000u), (suseconds_t)(left % 1000000u)};
	event_del(&c->rev);
	event_assign(&c->rev, p->base, PQsocket(c->pg), ev, conn_poll_cb, c);
	event_add(&c->rev, &tv);
}

/* Server notices and warnings go to our log instead of libpq's stderr. */
static void notice_cb(void *arg, const char *message)
{
	struct pg_conn *c = arg;
	char msg[512];
	snprintf(msg, sizeof(msg), "%s", message);
	size_t l = strlen(msg);
	while (l > 0 && msg[l - 1] == '\n')
		msg[--l] = '\0';
	log_event(LOG_DEBUG, "postgres notice", LF_S("pool", c->pool->name), LF_S("notice", msg));
}

static void conn_reconnect_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_connect(arg);
}

/* Opens the connection to hostaddr (a resolved address) or, when NULL, to
 * whatever the conninfo names. */
static void conn_start(struct pg_conn *c, const char *hostaddr)
{
	struct pg_pool *p = c->pool;
	char appname[64];
	snprintf(appname, sizeof(appname), "rampart-%s", p->name);
	const char *keys[] = {"dbname",		 "application_name",	       "options",
			      "client_encoding", hostaddr ? "hostaddr" : NULL, NULL};
	const char *vals[] = {p->conninfo, appname, p->options, "UTF8", hostaddr, NULL};

	if (c->pg)
		conn_close(c);
	c->pg = PQconnectStartParams(keys, vals, 1);
	if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
		c->state = C_CONNECTING; /* so conn_fail logs at debug level */
		conn_fail(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
		return;
	}
	PQsetNoticeProcessor(c->pg, notice_cb, c);
	c->state = C_CONNECTING;
	c->connect_deadline_us = clock_mono_us() + (uint64_t)p->connect_timeout_ms * 1000u;
	conn_poll(c);
}

static void conn_resolved(void *arg, const char *addr, const char *err)
{
	struct pg_conn *c = arg;
	char why[256];
	c->resolving = NULL;
	if (!addr) {
		snprintf(why, sizeof(why), "cannot resolve %s: %s", c->pool->dns_host, err);
		conn_fail(c, why);
		return;
	}
	conn_start(c, addr);
}

/* libpq would resolve a host name with the blocking system resolver inside
 * PQconnectStart, so names are resolved on the loop first and passed as
 * hostaddr (host stays for TLS and .pgpass). */
static void conn_connect(struct pg_conn *c)
{
	struct pg_pool *p = c->pool;
	c->reconnect_now = false;
	if (c->state == C_DOWN && c->backoff_ms)
		p->reconnects++;
	c->state = C_CONNECTING;
	if (!p->dns_host) {
		conn_start(c, NULL);
		return;
	}
	c->resolving = resolve_start(p->resolver, p->dns_host, conn_resolved, c);
}

/* The host name in conninfo that needs resolving, or NULL: none for
 * addresses, Unix sockets, multi-host lists or an explicit hostaddr. */
static char *conninfo_dns_host(const char *conninfo)
{
	char *err = NULL, *host = NULL;
	bool has_addr = false;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	if (!opts) {
		PQfreemem(err);
		return NULL;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (strcmp(o->keyword, "hostaddr") == 0 && o->val && *o->val)
			has_addr = true;
		if (strcmp(o->keyword, "host") == 0 && o->val && *o->val && o->val[0] != '/' &&
		    !strchr(o->val, ',') && !resolve_is_numeric(o->val))
			host = strdup(o->val);
	}
	PQconninfoFree(opts);
	if (has_addr) {
		free(host);
		return NULL;
	}
	return host;
}

/* ------------------------------------------------------------------------ */
/* Timeouts                                                                 */
/* ------------------------------------------------------------------------ */

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pg_pool *p = arg;
	uint64_t now = clock_mono_us();
	struct pgq *q;
	(void)fd;
	(void)what;

	while ((q = TAILQ_FIRST(&p->queue)) != NULL && q->deadline_us && q->deadline_us <= now) {
		TAILQ_REMOVE(&p->queue, q, link);
		p->nqueued--;
		admission_observe(&p->admission, now, now - q->submit_us);
		pgq_finish(q, "timeout waiting for a database connection");
	}
	/* A connection whose oldest statement is overdue is presumed stuck (the
	 * server-side statement_timeout would have answered by now): drop it. */
	for (int i = 0; i < p->size; i++) {
		struct pg_conn *c = &p->conns[i];
		q = TAILQ_FIRST(&c->inflight);
		if (c->state == C_READY && q && q->deadline_us &&
		    q->deadline_us + (uint64_t)PG_SWEEP_MS * 1000u * 10 <= now)
			conn_fail(c, "query timeout");
	}
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */
/* ------------------------------------------------------------------------ */

struct pg_pool *pg_pool_new(struct event_base *base, const struct pg_pool_opts *o)
{
	if (!base || !o || !o->conninfo || o->size < 1)
		return NULL;
	struct pg_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	char opts[96];
	p->base = base;
	p->size = o->size;
	p->max_queue = o->max_queue > 0 ? o->max_queue : 10000;
	p->max_pipeline = o->max_pipeline > 0 ? o->max_pipeline : 256;
	p->query_timeout_ms = o->query_timeout_ms;
	p->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 5000;
	admission_init(&p->admission, o->admission_target_ms, o->admission_interval_ms);
	p->conninfo = strdup(o->conninfo);
	p->name = strdup(o->name ? o->name : "pg");
	/* The server cancels a statement a little before our own deadline, so a
	 * slow statement fails alone instead of costing its connection. */
	if (o->query_timeout_ms > 0)
		snprintf(opts, sizeof(opts), "-c statement_timeout=%d", o->query_timeout_ms);
	else
		opts[0] = '\0';
	p->options = strdup(opts);
	p->conns = calloc((size_t)p->size, sizeof(*p->conns));
	if (!p->conninfo || !p->name || !p->options || !p->conns)
		goto fail;
	p->dns_host = conninfo_dns_host(p->conninfo);
	if (p->dns_host && !(p->resolver = resolver_new(base)))
		goto fail;
	TAILQ_INIT(&p->queue);
	event_assign(&p->dispatch_ev, base, -1, 0, dispatch_cb, p);
	event_assign(&p->sweep_ev, base, -1, EV_PERSIST, sweep_cb, p);
	struct timeval tv = {0, PG_SWEEP_MS * 1000};
	event_add(&p->sweep_ev, &tv);
	for (int i = 0; i < p->size; i++) {
		struct pg_conn *c = &p->conns[i];
		c->pool = p;
		c->index = i;
		c->fd = -1;
		TAILQ_INIT(&c->inflight);
		evtimer_assign(&c->tev, base, conn_reconnect_cb, c);
		event_assign(&c->rev, base, -1, 0, conn_poll_cb, c);
		event_assign(&c->wev, base, -1, 0, conn_write_cb, c);
		conn_connect(c);
	}
	return p;
fail:
	resolver_free(p->resolver);
	free(p->dns_host);
	free(p->conninfo);
	free(p->name);
	free(p->options);
	free(p->conns);
	free(p);
	return NULL;
}

void pg_pool_free(struct pg_pool *p)
{
	if (!p)
		return;
	struct pgq *q;
	while ((q = TAILQ_FIRST(&p->queue)) != NULL) {
		TAILQ_REMOVE(&p->queue, q, link);
		pgq_finish(q, "pool shutting down");
	}
	for (int i = 0; i < p->size; i++) {
		struct pg_conn *c = &p->conns[i];
		evtimer_del(&c->tev);
		resolve_cancel(c->resolving);
		conn_close(c);
		while ((q = TAILQ_FIRST(&c->inflight)) != NULL) {
			TAILQ_REMOVE(&c->inflight, q, link);
			pgq_finish(q, "pool shutting down");
		}
	}
	resolver_free(p->resolver);
	free(p->dns_host);
	event_del(&p->dispatch_ev);
	event_del(&p->sweep_ev);
	for (int i = 0; i < p->nstmts; i++)
		free(p->stmt_sql[i]);
	free(p->stmt_sql);
	free(p->stmt_nparams);
	free(p->conns);
	free(p->conninfo);
	free(p->name);
	free(p->options);
	free(p);
}

int pg_prepare(struct pg_pool *p, const char *sql, int nparams)
{
	char *copy = strdup(sql);
	char **s = realloc(p->stmt_sql, (size_t)(p->nstmts + 1) * sizeof(*s));
	if (s)
		p->stmt_sql = s;
	int *np = realloc(p->stmt_nparams, (size_t)(p->nstmts + 1) * sizeof(*np));
	if (np)
		p->stmt_nparams = np;
	if (!copy || !s || !np) {
		free(copy);
		return -1;
	}
	p->stmt_sql[p->nstmts] = copy;
	p->stmt_nparams[p->nstmts] = nparams;
	return p->nstmts++;
}

int pg_query(struct pg_pool *p, const char *sql, int nparams, const char *const *params, pg_cb cb,
	     void *arg)
{
	struct pg_stmt s = {.sql = sql, .stmt = -1, .nparams = nparams, .params = params};
	if (!sql || nparams < 0 || nparams > 65535)
		return -1;
	struct pgq *q = pgq_new(p, Q_STMT, &s, 1);
	if (!q)
		return -1;
	q->cb = cb;
	q->arg = arg;
	return submit(p, q);
}

int pg_exec(struct pg_pool *p, int stmt, const char *const *params, pg_cb cb, void *arg)
{
	if (stmt < 0 || stmt >= p->nstmts)
		return -1;
	struct pg_stmt s = {
		.sql = NULL, .stmt = stmt, .nparams = p->stmt_nparams[stmt], .params = params};
	struct pgq *q = pgq_new(p, Q_STMT, &s, 1);
	if (!q)
		return -1;
	q->cb = cb;
	q->arg = arg;
	return submit(p, q);
}

int pg_tx(struct pg_pool *p, const struct pg_stmt *stmts, int n, pg_tx_cb cb, void *arg)
{
	if (n < 1 || n > PG_MAX_TX)
		return -1;
	struct pg_stmt copy[PG_MAX_TX];
	for (int i = 0; i < n; i++) {
		copy[i] = stmts[i];
		if (!copy[i].sql) {
			if (copy[i].stmt < 0 || copy[i].stmt >= p->nstmts)
				return -1;
			copy[i].nparams = p->stmt_nparams[copy[i].stmt];
		}
	}
	struct pgq *q = pgq_new(p, Q_TX, copy, n);
	if (!q)
		return -1;
	q->txcb = cb;
	q->arg = arg;
	return submit(p, q);
}

int pg_script(struct pg_pool *p, const char *sql, pg_cb cb, void *arg)
{
	struct pg_stmt s = {.sql = sql, .stmt = -1};
	if (!sql)
		return -1;
	struct pgq *q = pgq_new(p, Q_SCRIPT, &s, 1);
	if (!q)
		return -1;
	q->cb = cb;
	q->arg = arg;
	return submit(p, q);
}

void pg_pool_stats(const struct pg_pool *p, struct pg_pool_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < p->size; i++) {
		const struct pg_conn *c = &p->conns[i];
		if (c->state == C_READY)
			out->connections++;
		else if (c->state == C_CONNECTING)
			out->connecting++;
		out->inflight += c->ninflight;
	}
	out->queued = p->nqueued;
	out->reconnects = p->reconnects;
}

bool pg_pool_refusing(struct pg_pool *p)
{
	uint64_t now = clock_mono_us();
	uint64_t oldest = now;
	const struct pgq *q;

	if (p->admission.target_us == 0)
		return false;
	if ((q = TAILQ_FIRST(&p->queue)) != NULL && q->submit_us < oldest)
		oldest = q->submit_us;
	for (int i = 0; i < p->size; i++)
		if ((q = TAILQ_FIRST(&p->conns[i].inflight)) != NULL && q->submit_us < oldest)
			oldest = q->submit_us;
	return admission_refuse(&p->admission, now, now - oldest);
}

bool pg_pool_ready(const struct pg_pool *p)
{
	for (int i = 0; i < p->size; i++)
		if (p->conns[i].state == C_READY)
			return true;
	return false;
}

const char *pg_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return s ? s : "";
}

/* ------------------------------------------------------------------------ */
/* Batching across requests                                                 */
/* ------------------------------------------------------------------------ */

struct brow {
	TAILQ_ENTRY(brow) link;
	pg_row_cb cb;
	void *arg;
	char *vals[]; /* ncols pointers into the same allocation, NULL = SQL NULL */
};
TAILQ_HEAD(brow_list, brow);

struct pg_batcher {
	struct pg_pool *pool;
	int stmt; /* the batch statement, prepared on every connection */
	int ncols, max_rows, max_inflight, inflight;
	struct brow_list waiting;
	int nwaiting; /* bounded: at most BATCH_MAX_WAITING batches' worth */
	struct event flush_ev;
};

/* Rows may wait for this many full batches before new ones are refused, so
 * memory stays bounded while the database is slow. */
#define BATCH_MAX_WAITING 16

struct batch {
	struct pg_batcher *b;
	struct brow_list rows;
	int nrows;
	bool single; /* a retry of one row after its batch failed */
};

static void batch_done(void *arg, const PGresult *res, const char *err);

static void brow_free(struct pg_batcher *b, struct brow *r)
{
	(void)b; /* the values live in the row's own allocation */
	free(r);
}

/* Runs every row's callback: on success with its result row (the i-th row
 * of res for the i-th input row, -1 if res has none), else with err. */
static void batch_finish(struct batch *bt, const PGresult *res, const char *err)
{
	struct brow *r;
	int i = 0, n = !err && res ? PQntuples(res) : 0;
	while ((r = TAILQ_FIRST(&bt->rows)) != NULL) {
		TAILQ_REMOVE(&bt->rows, r, link);
		r->cb(r->arg, err ? NULL : res, !err && i < n ? i : -1, err);
		brow_free(bt->b, r);
		i++;
	}
	free(bt);
}

static void batch_fail_rows(struct batch *bt, const char *err)
{
	batch_finish(bt, NULL, err);
}

/* A growable string for array literals. */
struct sbuf {
	char *p;
	size_t len, cap;
};

static bool sbuf_reserve(struct sbuf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return true;
	size_t ncap = b->cap ? b->cap : 256;
	while (ncap < b->len + extra + 1)
		ncap *= 2;
	char *np = realloc(b->p, ncap);
	if (!np)
		return false;
	b->p = np;
	b->cap = ncap;
	return true;
}

/* Appends v as an element of a PostgreSQL array literal: quoted, with '"'
 * and '\\' escaped; NULL as the bare word NULL. */
static bool sbuf_elem(struct sbuf *b, const char *v, bool first)
{
	if (!sbuf_reserve(b, (v ? 2 * strlen(v) : 4) + 3))
		return false;
	char *o = b->p + b->len;
	if (!first)
		*o++ = ',';
	if (!v) {
		memcpy(o, "NULL", 4);
		o += 4;
	} else {
		*o++ = '"';
		for (const char *s = v; *s; s++) {
			if (*s == '"' || *s == '\\')
				*o++ = '\\';
			*o++ = *s;
		}
		*o++ = '"';
	}
	b->len = (size_t)(o - b->p);
	return true;
}

/* Builds "{v1,v2,...}" of column col over the batch's rows. NULL on OOM. */
static char *batch_array(const struct batch *bt, int col)
{
	struct sbuf b = {0};
	bool first = true;
	struct brow *r;
	if (!sbuf_reserve(&b, 2))
		return NULL;
	b.p[b.len++] = '{';
	TAILQ_FOREACH(r, &bt->rows, link)
	{
		if (!sbuf_elem(&b, r->vals[col], first)) {
			free(b.p);
			return NULL;
		}
		first = false;
	}
	if (!sbuf_reserve(&b, 1)) {
		free(b.p);
		return NULL;
	}
	b.p[b.len++] = '}';
	b.p[b.len] = '\0';
	return b.p;
}

/* Sends one batch; on refusal its rows fail. */
static void batch_send(struct pg_batcher *b, struct batch *bt)
{
	char *arrays[64] = {0};
	int c, rc = -1;
	for (c = 0; c < b->ncols; c++)
		if (!(arrays[c] = batch_array(bt, c)))
			break;
	if (c == b->ncols)
		rc = pg_exec(b->pool, b->stmt, (const char *const *)arrays, batch_done, bt);
	for (c = 0; c < b->ncols; c++)
		free(arrays[c]);
	if (rc != 0) {
		batch_fail_rows(bt, "database unavailable");
		return;
	}
	b->inflight++;
}

static void batcher_flush(evutil_socket_t fd, short what, void *arg)
{
	struct pg_batcher *b = arg;
	(void)fd;
	(void)what;
	while (b->inflight < b->max_inflight && !TAILQ_EMPTY(&b->waiting)) {
		struct batch *bt = calloc(1, sizeof(*bt));
		if (!bt)
			return;
		bt->b = b;
		TAILQ_INIT(&bt->rows);
		struct brow *r;
		while (bt->nrows < b->max_rows && (r = TAILQ_FIRST(&b->waiting)) != NULL) {
			TAILQ_REMOVE(&b->waiting, r, link);
			b->nwaiting--;
			TAILQ_INSERT_TAIL(&bt->rows, r, link);
			bt->nrows++;
		}
		batch_send(b, bt);
	}
}

static void batch_done(void *arg, const PGresult *res, const char *err)
{
	struct batch *bt = arg;
	struct pg_batcher *b = bt->b;
	b->inflight--;
	if (err && res && bt->nrows > 1) {
		/* The server refused the batch (res is its error), so nothing was
		 * written and one bad row must not fail its neighbours: retry each
		 * alone. A lost connection (res NULL) leaves the outcome unknown:
		 * no retry then. */
		struct brow *r;
		while ((r = TAILQ_FIRST(&bt->rows)) != NULL) {
			TAILQ_REMOVE(&bt->rows, r, link);
			struct batch *one = calloc(1, sizeof(*one));
			if (!one) {
				r->cb(r->arg, NULL, -1, "out of memory");
				brow_free(b, r);
				continue;
			}
			one->b = b;
			one->single = true;
			one->nrows = 1;
			TAILQ_INIT(&one->rows);
			TAILQ_INSERT_TAIL(&one->rows, r, link);
			batch_send(b, one);
		}
		free(bt);
	} else {
		batch_finish(bt, res, err);
	}
	if (!TAILQ_EMPTY(&b->waiting))
		event_active(&b->flush_ev, EV_TIMEOUT, 0);
}

struct pg_batcher *pg_batcher_new(struct pg_pool *p, const char *sql, int ncols, int max_rows,
				  int max_inflight)
{
	if (!p || !sql || ncols < 1 || ncols > 64)
		return NULL;
	struct pg_batcher *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	/* Prepared once per connection: a batch costs no parse or plan. */
	b->stmt = pg_prepare(p, sql, ncols);
	if (b->stmt < 0) {
		free(b);
		return NULL;
	}
	b->pool = p;
	b->ncols = ncols;
	b->max_rows = max_rows > 0 ? max_rows : 256;
	b->max_inflight = max_inflight > 0 ? max_inflight : 2;
	TAILQ_INIT(&b->waiting);
	event_assign(&b->flush_ev, p->base, -1, 0, batcher_flush, b);
	return b;
}

void pg_batcher_free(struct pg_batcher *b)
{
	if (!b)
		return;
	struct brow *r;
	while ((r = TAILQ_FIRST(&b->waiting)) != NULL) {
		TAILQ_REMOVE(&b->waiting, r, link);
		b->nwaiting--;
		r->cb(r->arg, NULL, -1, "pool shutting down");
		brow_free(b, r);
	}
	event_del(&b->flush_ev);
	free(b);
}

int pg_batcher_add(struct pg_batcher *b, const char *const *values, pg_row_cb cb, void *arg)
{
	if (b->nwaiting >= b->max_rows * BATCH_MAX_WAITING)
		return -1;
	/* One allocation: the row, its value pointers, then the strings. */
	size_t size = sizeof(struct brow) + (size_t)b->ncols * sizeof(char *);
	for (int i = 0; i < b->ncols; i++)
		size += values[i] ? strlen(values[i]) + 1 : 0;
	struct brow *r = malloc(size);
	if (!r)
		return -1;
	char *cur = (char *)&r->vals[b->ncols];
	for (int i = 0; i < b->ncols; i++)
		r->vals[i] = (char *)arena_copy(&cur, values[i]);
	r->cb = cb;
	r->arg = arg;
	TAILQ_INSERT_TAIL(&b->waiting, r, link);
	b->nwaiting++;
	event_active(&b->flush_ev, EV_TIMEOUT, 0);
	return 0;
}
