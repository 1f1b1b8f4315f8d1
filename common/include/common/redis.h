/* redis.h - an asynchronous Redis client on hiredis' libevent adapter, with
 * reconnection and deadlines. Debian's hiredis 0.14 has no async timeouts,
 * so connect and command deadlines are our own timers: a command unanswered
 * past its deadline fails with "timeout" and the connection, now of unknown
 * state, is dropped and reopened with backoff.
 *
 * Every accepted command's callback runs exactly once, never from inside the
 * call that submitted it. */
#ifndef COMMON_REDIS_H
#define COMMON_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct rds;

struct rds_opts {
	const char *url; /* redis://[:password@]host[:port][/db]; copied */
	int connect_timeout_ms;
	int command_timeout_ms; /* 0 = none; commands that block (XREADGROUP
				   BLOCK) pass their own via rds_command_argv_t */
	const char *name;	/* for logs; copied */
};

/* reply: borrowed until the callback returns; NULL when err is a transport
 * error (not connected, timeout, connection lost, client freed). A server
 * error reply (REDIS_REPLY_ERROR) sets err to its text and reply to it. */
typedef void (*rds_cb)(void *arg, redisReply *reply, const char *err);

/* Parses the URL and starts connecting. NULL on a bad URL (logged). */
struct rds *rds_new(struct event_base *base, const struct rds_opts *opts);

/* Fails every pending command with "client shutting down", disconnects and
 * frees. Accepts NULL. Never call it from inside an rds callback. */
void rds_free(struct rds *r);

/* Sends a command built like redisCommand's format. Returns 0 if accepted,
 * -1 if refused (not connected: commands are never queued while down, so
 * callers see failures at once and decide themselves). */
int rds_command(struct rds *r, rds_cb cb, void *arg, const char *fmt, ...)
	__attribute__((warn_unused_result));

/* Same with an argument vector; timeout_ms overrides the default (0 = the
 * client's default, -1 = none). */
int rds_command_argv(struct rds *r, rds_cb cb, void *arg, int argc, const char **argv,
		     const size_t *argvlen, int timeout_ms) __attribute__((warn_unused_result));

bool rds_connected(const struct rds *r);

/* The configured DB prefix helpers live with the callers; this is the raw
 * client. Number of commands awaiting replies. */
size_t rds_pending(const struct rds *r);

#endif
