/* redis.c - asynchronous Redis client: hiredis + libevent, reconnects, deadlines. */
#include "common/redis.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/resolve.h"
#include "common/rnd.h"

#define RDS_BACKOFF_MIN_MS 100
#define RDS_BACKOFF_MAX_MS 5000
#define RDS_SWEEP_MS	   100

/* One command awaiting its reply. hiredis holds a pointer to it as privdata
 * until it calls reply_cb (with a reply, or NULL on teardown); `done` is set
 * once the user's callback has run (e.g. on timeout), after which the
 * hiredis callback only frees it. */
struct rcmd {
	TAILQ_ENTRY(rcmd) link;
	struct rds *r;
	rds_cb cb;
	void *arg;
	uint64_t deadline_us; /* 0 = none */
	bool done;
};
TAILQ_HEAD(rcmd_list, rcmd);

struct rds {
	struct event_base *base;
	char *name;
	char *host;
	int port;
	char *user;
	char *password;
	int db;
	int connect_timeout_ms;
	int command_timeout_ms;

	redisAsyncContext *ac; /* NULL while down */
	bool connected;
	bool freeing;
	int backoff_ms;
	uint64_t connect_deadline_us;
	struct event reconnect_ev;
	struct event sweep_ev;
	struct rcmd_list pending; /* in send order, so oldest first */
	size_t npending;
	struct resolver *resolver;     /* when host is a name, not an address */
	struct resolve_req *resolving; /* lookup in progress */
};

static void rds_connect(struct rds *r);
static void rds_connect_addr(struct rds *r, const char *addr);

/* ------------------------------------------------------------------------ */
/* URL                                                                      */
/* ------------------------------------------------------------------------ */

/* Parses redis://[[user]:password@]host[:port][/db] into r. 0 or -1. */
static int parse_url(struct rds *r, const char *url)
{
	const char *p = url;
	char *end;
	if (strncmp(p, "redis://", 8) != 0)
		return -1;
	p += 8;
	const char *at = strchr(p, '@');
	const char *slash = strchr(p, '/');
	if (at && (!slash || at < slash)) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		if (colon) {
			if (colon > p)
				r->user = strndup(p, (size_t)(colon - p));
			r->password = strndup(colon + 1, (size_t)(at - colon - 1));
		} else {
			r->password = strndup(p, (size_t)(at - p));
		}
		p = at + 1;
	}
	const char *hend = p;
	if (*p == '[') { /* [v6] */
		hend = strchr(p, ']');
		if (!hend)
			return -1;
		r->host = strndup(p + 1, (size_t)(hend - p - 1));
		hend++;
	} else {
		while (*hend && *hend != ':' && *hend != '/')
			hend++;
		r->host = strndup(p, (size_t)(hend - p));
	}
	if (!r->host || !*r->host)
		return -1;
	r->port = 6379;
	p = hend;
	if (*p == ':') {
		long port = strtol(p + 1, &end, 10);
		if (end == p + 1 || port < 1 || port > 65535)
			return -1;
		r->port = (int)port;
		p = end;
	}
	if (*p == '/' && p[1]) {
		long db = strtol(p + 1, &end, 10);
		if (end == p + 1 || *end || db < 0 || db > 65535)
			return -1;
		r->db = (int)db;
	} else if (*p && strcmp(p, "/") != 0) {
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Replies                                                                  */
/* ------------------------------------------------------------------------ */

static void rcmd_remove(struct rds *r, struct rcmd *c)
{
	TAILQ_REMOVE(&r->pending, c, link);
	r->npending--;
}

/* hiredis' callback for every command: reply NULL means torn down. */
static void reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rcmd *c = privdata;
	struct rds *r = c->r;
	redisReply *rep = reply;
	(void)ac;

	if (!c->done) {
		c->done = true;
		rcmd_remove(r, c);
		if (!rep)
			c->cb(c->arg, NULL,
			      r->freeing ? "client shutting down" : "connection lost");
		else if (rep->type == REDIS_REPLY_ERROR)
			c->cb(c->arg, rep, rep->str ? rep->str : "error reply");
		else
			c->cb(c->arg, rep, NULL);
	}
	free(c);
}

/* Replies to the AUTH/SELECT sent on connect. */
static void setup_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rds *r = privdata;
	redisReply *rep = reply;
	if (rep && rep->type == REDIS_REPLY_ERROR) {
		log_event(LOG_ERROR, "redis connection setup failed", LF_S("client", r->name),
			  LF_S("error", rep->str));
		redisAsyncDisconnect(ac);
	}
}

/* ------------------------------------------------------------------------ */
/* Connection life cycle                                                    */
/* ------------------------------------------------------------------------ */

static void schedule_reconnect(struct rds *r)
{
	if (r->freeing)
		return;
	int ms = r->backoff_ms ? r->backoff_ms : RDS_BACKOFF_MIN_MS;
	int delay = ms / 2 + (int)rnd_below((uint64_t)(ms / 2 + 1));
	r->backoff_ms = ms * 2 > RDS_BACKOFF_MAX_MS ? RDS_BACKOFF_MAX_MS : ms * 2;
	struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
	evtimer_add(&r->reconnect_ev, &tv);
}

static void connect_cb(const redisAsyncContext *ac, int status)
{
	struct rds *r = ac->data;
	if (status != REDIS_OK) {
		log_event(LOG_DEBUG, "redis connect failed", LF_S("client", r->name),
			  LF_S("error", ac->errstr));
		r->ac = NULL; /* hiredis frees the context after this callback */
		r->connected = false;
		schedule_reconnect(r);
		return;
	}
	r->connected = true;
	r->backoff_ms = 0;
	log_event(LOG_INFO, "redis connected", LF_S("client", r->name), LF_S("host", r->host),
		  LF_I("port", r->port));
}

static void disconnect_cb(const redisAsyncContext *ac, int status)
{
	struct rds *r = ac->data;
	r->ac = NULL;
	r->connected = false;
	if (r->freeing)
		return;
	log_event(LOG_WARN, "redis connection lost", LF_S("client", r->name),
		  LF_S("error", status == REDIS_OK ? "closed" : ac->errstr));
	schedule_reconnect(r);
}

static void resolved(void *arg, const char *addr, const char *err)
{
	struct rds *r = arg;
	r->resolving = NULL;
	if (!addr) {
		log_event(LOG_WARN, "redis host not resolved", LF_S("client", r->name),
			  LF_S("host", r->host), LF_S("error", err));
		schedule_reconnect(r);
		return;
	}
	rds_connect_addr(r, addr);
}

static void rds_connect(struct rds *r)
{
	if (!r->resolver)
		rds_connect_addr(r, r->host);
	else
		r->resolving = resolve_start(r->resolver, r->host, resolved, r);
}

static void reconnect_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rds_connect(arg);
}

/* Connects to addr, a numeric address (hiredis would otherwise resolve a
 * name with the blocking system resolver). */
static void rds_connect_addr(struct rds *r, const char *addr)
{
	redisAsyncContext *ac = redisAsyncConnect(addr, r->port);
	if (!ac || ac->err) {
		log_event(LOG_DEBUG, "redis connect failed", LF_S("client", r->name),
			  LF_S("error", ac ? ac->errstr : "out of memory"));
		if (ac)
			redisAsyncFree(ac);
		schedule_reconnect(r);
		return;
	}
	ac->data = r;
	if (redisLibeventAttach(ac, r->base) != REDIS_OK) {
		redisAsyncFree(ac);
		schedule_reconnect(r);
		return;
	}
	redisAsyncSetConnectCallback(ac, connect_cb);
	redisAsyncSetDisconnectCallback(ac, disconnect_cb);
	r->ac = ac;
	r->connect_deadline_us = clock_mono_us() + (uint64_t)r->connect_timeout_ms * 1000u;
	/* Queued now, sent first once connected: commands pipelined after them
	 * run authenticated and in the right database. */
	if (r->password) {
		if (r->user)
			redisAsyncCommand(ac, setup_cb, r, "AUTH %s %s", r->user, r->password);
		else
			redisAsyncCommand(ac, setup_cb, r, "AUTH %s", r->password);
	}
	if (r->db)
		redisAsyncCommand(ac, setup_cb, r, "SELECT %d", r->db);
}

/* Drops the connection (from a timer, never from a hiredis callback). */
static void drop_connection(struct rds *r, const char *why)
{
	redisAsyncContext *ac = r->ac;
	if (!ac)
		return;
	log_event(LOG_WARN, "redis connection dropped", LF_S("client", r->name),
		  LF_S("reason", why));
	bool was_connected = r->connected;
	r->ac = NULL;
	r->connected = false;
	redisAsyncFree(ac); /* runs reply_cb(NULL) for every pending command */
	if (!was_connected)
		schedule_reconnect(r); /* no disconnect callback for a failed connect */
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rds *r = arg;
	uint64_t now = clock_mono_us();
	struct rcmd *c, *tmp;
	(void)fd;
	(void)what;

	if (r->ac && !r->connected && now >= r->connect_deadline_us) {
		drop_connection(r, "connect timeout");
		return;
	}
	bool overdue = false;
	for (c = TAILQ_FIRST(&r->pending); c; c = tmp) {
		tmp = TAILQ_NEXT(c, link);
		if (c->deadline_us && c->deadline_us <= now) {
			c->done = true;
			rcmd_remove(r, c);
			c->cb(c->arg, NULL, "timeout");
			overdue = true; /* hiredis still holds c; reply_cb frees it */
		}
	}
	/* A connection that missed a deadline is in an unknown state: replies
	 * would now be matched to the wrong commands' callers. Start over. */
	if (overdue)
		drop_connection(r, "command timeout");
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */
/* ------------------------------------------------------------------------ */

struct rds *rds_new(struct event_base *base, const struct rds_opts *o)
{
	struct rds *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->base = base;
	r->name = strdup(o->name ? o->name : "redis");
	r->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 3000;
	r->command_timeout_ms = o->command_timeout_ms;
	TAILQ_INIT(&r->pending);
	if (!r->name || !o->url || parse_url(r, o->url) != 0) {
		log_event(LOG_ERROR, "bad redis url (want redis://[:password@]host[:port][/db])",
			  LF_S("client", o->name));
		goto fail;
	}
	if (!resolve_is_numeric(r->host) && !(r->resolver = resolver_new(base)))
		goto fail;
	evtimer_assign(&r->reconnect_ev, base, reconnect_cb, r);
	event_assign(&r->sweep_ev, base, -1, EV_PERSIST, sweep_cb, r);
	struct timeval tv = {0, RDS_SWEEP_MS * 1000};
	event_add(&r->sweep_ev, &tv);
	rds_connect(r);
	return r;
fail:
	free(r->name);
	free(r->host);
	free(r->user);
	free(r->password);
	free(r);
	return NULL;
}

void rds_free(struct rds *r)
{
	if (!r)
		return;
	r->freeing = true;
	evtimer_del(&r->reconnect_ev);
	event_del(&r->sweep_ev);
	resolve_cancel(r->resolving);
	resolver_free(r->resolver);
	if (r->ac) {
		redisAsyncContext *ac = r->ac;
		r->ac = NULL;
		redisAsyncFree(ac);
	}
	free(r->name);
	free(r->host);
	free(r->user);
	free(r->password);
	free(r);
}

static struct rcmd *rcmd_new(struct rds *r, rds_cb cb, void *arg, int timeout_ms)
{
	if (!r->ac || !r->connected)
		return NULL;
	struct rcmd *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->r = r;
	c->cb = cb;
	c->arg = arg;
	if (timeout_ms == 0)
		timeout_ms = r->command_timeout_ms;
	if (timeout_ms > 0)
		c->deadline_us = clock_mono_us() + (uint64_t)timeout_ms * 1000u;
	return c;
}

static void rcmd_track(struct rds *r, struct rcmd *c)
{
	TAILQ_INSERT_TAIL(&r->pending, c, link);
	r->npending++;
}

int rds_command(struct rds *r, rds_cb cb, void *arg, const char *fmt, ...)
{
	struct rcmd *c = rcmd_new(r, cb, arg, 0);
	if (!c)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	int rc = redisvAsyncCommand(r->ac, reply_cb, c, fmt, ap);
	va_end(ap);
	if (rc != REDIS_OK) {
		free(c);
		return -1;
	}
	rcmd_track(r, c);
	return 0;
}

int rds_command_argv(struct rds *r, rds_cb cb, void *arg, int argc, const char **argv,
		     const size_t *argvlen, int timeout_ms)
{
	struct rcmd *c = rcmd_new(r, cb, arg, timeout_ms);
	if (!c)
		return -1;
	if (redisAsyncCommandArgv(r->ac, reply_cb, c, argc, argv, argvlen) != REDIS_OK) {
		free(c);
		return -1;
	}
	rcmd_track(r, c);
	return 0;
}

bool rds_connected(const struct rds *r)
{
	return r->connected;
}

size_t rds_pending(const struct rds *r)
{
	return r->npending;
}
