/* jobd.h - what every daemon built around a job queue (worker, webhook, feeengine)
 * shares: the admin HTTP server (/healthz, /readyz, /metrics) and the
 * SIGTERM/SIGINT drain (stop reading, let the jobs in progress settle, end
 * the loop; jobs still unsettled after the grace stay pending in the stream
 * and another consumer reclaims them). */
#ifndef COMMON_JOBD_H
#define COMMON_JOBD_H

#include <stdbool.h>

struct event_base;
struct jobq;
struct pg_pool;
struct jobd;
struct json_t;

struct jobd_opts {
	struct event_base *base;
	struct pg_pool *pg; /* readiness: a connection is up (NULL: no PostgreSQL) */
	struct jobq *jobs;  /* readiness, drain */
	const char *host;   /* METRICS_LISTEN */
	int port;
	int grace_seconds;	    /* SHUTDOWN_GRACE_SECONDS */
	void (*on_stop)(void *arg); /* draining begins (reading already stopped) */
	void (*gauges)(void *arg);  /* sets the daemon's own gauges before /metrics */
	/* Appends the daemon's own reasons not to be ready (JSON strings) to
	 * the array; NULL = none. */
	void (*ready)(void *arg, struct json_t *reasons);
	void *arg;
};

/* Starts the admin server and the signal handlers. NULL on failure (logged). */
struct jobd *jobd_new(const struct jobd_opts *o);

bool jobd_draining(const struct jobd *d);

/* Stops the admin server and the handlers. Accepts NULL. */
void jobd_free(struct jobd *d);

#endif
