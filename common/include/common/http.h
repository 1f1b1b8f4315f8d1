/* http.h - the HTTP server layer over evhttp: routing with path parameters,
 * the JSON error model, body limits, content type, X-Request-Id, access log
 * and per-route metrics.
 *
 * Every request ends in exactly one reply, possibly from a later callback:
 * handlers may return before replying and reply when a database or Redis
 * answer arrives. If the client goes away first, the request context stays
 * valid (http_req_gone() turns true) until the handler replies; the reply is
 * then discarded. So a late reply never writes into a freed request. */
#ifndef COMMON_HTTP_H
#define COMMON_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct http_server;
struct http_req;

/* Largest accepted request body (SPEC 4): larger is 413 BODY_TOO_LARGE. */
#define HTTP_MAX_BODY	(64 * 1024)
#define HTTP_MAX_PARAMS 4

typedef void (*http_handler)(struct http_req *r, void *app);

enum http_route_flags {
	HTTP_JSON_BODY = 1 << 0, /* body must be application/json (415), parsed
				    into a JSON object before the handler runs
				    (http_req_json); parse errors are answered */
	HTTP_AUTH = 1 << 1,	 /* run the server's auth hook first */
	HTTP_SHED = 1 << 2,	 /* may be refused under overload: the admit
				    hook runs first (before auth) */
};

struct http_route {
	const char *method;  /* "GET", "POST", "DELETE", ... */
	const char *pattern; /* "/v1/quotes/{id}": {name} matches one path segment */
	http_handler handler;
	unsigned flags;
};

/* Called before the handler of an HTTP_AUTH route. It must either reply
 * (e.g. 401, 429) and return, or call http_req_proceed(r) exactly once, now
 * or later from another callback. */
typedef void (*http_auth_hook)(struct http_req *r, void *app);

/* Creates a server on base with a route table (borrowed: keep it static).
 * Unknown paths get 404 NOT_FOUND, known paths with another method 405
 * METHOD_NOT_ALLOWED with an Allow header, all JSON. service names the
 * access-log/metrics. app is passed to handlers and the hook. */
struct http_server *http_server_new(struct event_base *base, const struct http_route *routes,
				    size_t nroutes, void *app);
void http_server_set_auth(struct http_server *s, http_auth_hook hook);

/* Called before an HTTP_SHED route (and before its auth hook). Returns 0 to
 * admit the request, or the seconds a client should wait before retrying:
 * the server then answers 503 OVERLOADED with that Retry-After at once,
 * without running anything else for the request. */
typedef int (*http_admit_hook)(void *app);

void http_server_set_admit(struct http_server *s, http_admit_hook hook);

/* Binds host:port (SO_REUSEADDR, and SO_REUSEPORT when reuseport, so several
 * loops can each own a listener on the same port) and starts accepting.
 * Returns 0 or -1 (logged). */
int http_server_listen(struct http_server *s, const char *host, int port, bool reuseport)
	__attribute__((warn_unused_result));

/* Accepts on fd, a socket already bound and listening (the fuzzing harness
 * listens on an ephemeral loopback port this way). The server owns fd from
 * then on. Returns 0 or -1. */
int http_server_listen_fd(struct http_server *s, int fd) __attribute__((warn_unused_result));

/* Stops accepting new connections; requests in progress continue. */
void http_server_stop_accepting(struct http_server *s);

/* Requests received but not yet answered, or answered but not yet written
 * out (a drain must not end the loop with replies still queued). */
size_t http_server_inflight(const struct http_server *s);

/* Frees the server and closes its connections. Requests still waiting for
 * a handler's reply are marked gone; their later replies are dropped and
 * their contexts freed then. */
void http_server_free(struct http_server *s);

/* ---- request accessors (all borrowed from r, valid until the reply) ---- */

const char *http_req_method(const struct http_req *r);
const char *http_req_path(const struct http_req *r); /* without query string */
/* The matched route pattern (for metrics and logs), e.g. "/v1/quotes/{id}". */
const char *http_req_route(const struct http_req *r);
/* Value of path parameter {name}, or NULL. */
const char *http_req_param(const struct http_req *r, const char *name);
/* Decoded query-string parameter, or NULL. */
const char *http_req_query(const struct http_req *r, const char *name);
/* True when the query string is malformed (e.g. "?%%%" or "?a&b": every
 * part must be name=value); http_req_query then finds nothing. */
bool http_req_query_malformed(const struct http_req *r);
/* Request header (case-insensitive), or NULL. */
const char *http_req_header(const struct http_req *r, const char *name);
/* The request id: the client's X-Request-Id when it is 1..128 printable
 * characters, else a generated "req_" + 24 hex digits. */
const char *http_req_id(const struct http_req *r);
/* Raw body bytes (not NUL-terminated) and their length. */
const char *http_req_body(const struct http_req *r, size_t *len);
/* Parsed object for HTTP_JSON_BODY routes, borrowed; else NULL. */
json_t *http_req_json(const struct http_req *r);
/* True once the client has disconnected. */
bool http_req_gone(const struct http_req *r);
/* Microseconds since the request arrived. */
uint64_t http_req_elapsed_us(const struct http_req *r);

/* Per-request slots for the application (e.g. the authenticated key id). */
void http_req_set_user(struct http_req *r, void *user);
void *http_req_user(const struct http_req *r);

/* Continue to the handler after the auth hook accepted the request. */
void http_req_proceed(struct http_req *r);

/* ---- replies: exactly one per request ---- */

/* Adds a response header (before the reply). */
void http_req_add_header(struct http_req *r, const char *name, const char *value);

/* Replies with body serialised as JSON; steals the reference to body
 * (NULL body sends no content, e.g. 204). */
void http_reply_json(struct http_req *r, int status, json_t *body);

/* Replies {"error": {"code", "message", "param"?}}; param may be NULL. */
void http_reply_error(struct http_req *r, int status, const char *code, const char *param,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Readiness probes: 200 {"status": "ready"} when reasons is empty, else
 * 503 {"status": "not_ready", "reasons": [...]}. Steals reasons (an array
 * of strings). */
void http_reply_ready(struct http_req *r, json_t *reasons);

/* GET /metrics: the process's metrics registry as Prometheus text. */
void http_reply_metrics(struct http_req *r);

/* Replies with raw bytes and a content type. */
void http_reply_raw(struct http_req *r, int status, const char *content_type, const void *data,
		    size_t len);

/* Appends s to b as a JSON string (quoted and escaped; invalid UTF-8
 * becomes U+FFFD), for bodies written by hand. At most 6 * strlen(s) + 2
 * bytes. */
struct evbuffer;
void http_json_str(struct evbuffer *b, const char *s);

#endif
