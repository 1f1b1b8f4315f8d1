/* http.c - HTTP server over evhttp: routing, JSON errors, limits, request ids, logs, metrics. */
#include "common/http.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>
#include <event2/http_struct.h> /* major/minor: no accessor in 2.1 */
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "common/clock.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/utf8.h"

/* evhttp's own body limit. Bodies up to this size are read so that we can
 * answer 413 in our JSON format; beyond it evhttp answers by itself. */
#define HTTP_EVHTTP_MAX_BODY  (1024 * 1024)
#define HTTP_MAX_HEADERS_SIZE (32 * 1024)
/* Idle keep-alive connections are closed after this many seconds. */
#define HTTP_IDLE_TIMEOUT_S 60
/* Longest path (in segments) that can match a route; longer is 404. */
#define HTTP_MAX_SEGS	     16
#define HTTP_MAX_LISTENERS   4
#define HTTP_BACKLOG	     1024
#define HTTP_ACCEPT_PAUSE_MS 100       /* accepting pauses this long when accept() fails */
#define HTTP_ACCEPT_LOG_US   10000000u /* ... and says so at most this often */
#define HTTP_REQ_ID_MAX	     128
/* Per-route cache of (method, status) -> counter. Misses fall back to the
 * registry (a mutex), so the size only matters for speed. */
#define HTTP_CODE_SLOTS 8

#define HTTP_METHODS_ALLOWED                                                     \
	(EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | \
	 EVHTTP_REQ_PATCH | EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE)

static const struct {
	enum evhttp_cmd_type type;
	const char *name;
} http_methods[] = {
	{EVHTTP_REQ_GET, "GET"},	 {EVHTTP_REQ_POST, "POST"},
	{EVHTTP_REQ_PUT, "PUT"},	 {EVHTTP_REQ_DELETE, "DELETE"},
	{EVHTTP_REQ_PATCH, "PATCH"},	 {EVHTTP_REQ_HEAD, "HEAD"},
	{EVHTTP_REQ_OPTIONS, "OPTIONS"}, {EVHTTP_REQ_TRACE, "TRACE"},
	{EVHTTP_REQ_CONNECT, "CONNECT"},
};

/* One segment of a compiled pattern. For a parameter, text/len is its name
 * inside the (static) pattern, without the braces. */
struct route_seg {
	const char *text;
	size_t len;
	bool param;
};

struct code_slot {
	int code;
	enum evhttp_cmd_type method;
	struct metric *m;
};

/* A compiled route, or the "-" pseudo-route of unmatched requests. */
struct route_ent {
	const struct http_route *def; /* NULL for "-" */
	const char *label;	      /* def->pattern or "-" */
	enum evhttp_cmd_type method;
	struct route_seg segs[HTTP_MAX_SEGS];
	size_t nsegs;
	struct metric *duration;
	struct code_slot codes[HTTP_CODE_SLOTS];
	size_t ncodes;
};

struct http_server {
	struct event_base *base;
	struct evhttp *http;
	void *app;
	http_auth_hook auth;
	http_admit_hook admit;
	struct route_ent *routes;
	size_t nroutes;
	struct route_ent nomatch;
	struct evhttp_bound_socket *bound[HTTP_MAX_LISTENERS];
	size_t nbound;
	struct http_req *pending; /* unanswered contexts, doubly linked */
	size_t inflight;
	size_t writing;		  /* replies handed to evhttp, not yet fully written */
	struct http_req *zombies; /* answered, freed by reap_ev */
	struct event reap_ev;
	bool reap_active;
	unsigned char id_prefix[6]; /* random per server: ids unique across loops */
	uint64_t seq;		    /* request counter */
	struct metric *dropped;
	struct http_server *next_server; /* the registry (accept_failed) */
	struct event accept_ev;		 /* resumes accepting */
	bool accept_paused;
	uint64_t accept_logged_us;
	unsigned long accept_failures; /* since the last log line */
};

/* The request context. Everything the accessors return after the client
 * has gone (path, method, route, params, query, id, json) lives here; only
 * headers and body are read from the evhttp_request, while it exists. */
struct http_req {
	struct http_server *srv;    /* NULL once the server is freed */
	struct evhttp_request *req; /* NULL once replied or gone */
	struct route_ent *route;    /* for metrics; valid while srv != NULL */
	const char *route_label;    /* static pattern or "-" */
	const char *method;	    /* static */
	enum evhttp_cmd_type type;
	struct http_req *prev, *next; /* srv->pending or srv->zombies */
	struct event gone_ev;	      /* client-close watcher while waiting */
	uint64_t start_us;
	json_t *json;
	void *user;
	const char *path;
	const char *query_raw; /* NULL when the URI has none */
	struct evkeyvalq query;
	const char *pnames[HTTP_MAX_PARAMS]; /* into the static pattern */
	size_t pname_len[HTTP_MAX_PARAMS];
	const char *pvals[HTTP_MAX_PARAMS];
	size_t nparams;
	bool gone;
	bool replied;
	bool proceeded;
	bool closecb_set;
	bool watching;
	bool query_parsed;
	bool query_bad; /* the query string is malformed (its list is empty) */
	char id[HTTP_REQ_ID_MAX + 1];
	char buf[]; /* path, NUL, path split into NUL-ended segments, NUL, query, NUL */
};

static const char *method_name(enum evhttp_cmd_type t)
{
	for (size_t i = 0; i < sizeof(http_methods) / sizeof(http_methods[0]); i++)
		if (http_methods[i].type == t)
			return http_methods[i].name;
	return "UNKNOWN";
}

static bool method_parse(const char *s, enum evhttp_cmd_type *out)
{
	for (size_t i = 0; i < sizeof(http_methods) / sizeof(http_methods[0]); i++) {
		if (strcmp(http_methods[i].name, s) == 0) {
			*out = http_methods[i].type;
			return true;
		}
	}
	return false;
}

static const struct {
	int status;
	const char *text;
} reason_phrases[] = {
	{200, "OK"},
	{201, "Created"},
	{202, "Accepted"},
	{204, "No Content"},
	{304, "Not Modified"},
	{400, "Bad Request"},
	{401, "Unauthorized"},
	{403, "Forbidden"},
	{404, "Not Found"},
	{405, "Method Not Allowed"},
	{409, "Conflict"},
	{413, "Payload Too Large"},
	{415, "Unsupported Media Type"},
	{422, "Unprocessable Entity"},
	{429, "Too Many Requests"},
	{500, "Internal Server Error"},
	{502, "Bad Gateway"},
	{503, "Service Unavailable"},
	{504, "Gateway Timeout"},
};

/* NULL lets evhttp use the class name ("Client Error"). */
static const char *reason_phrase(int status)
{
	for (size_t i = 0; i < sizeof(reason_phrases) / sizeof(reason_phrases[0]); i++)
		if (reason_phrases[i].status == status)
			return reason_phrases[i].text;
	return NULL;
}

/* ---- paths and routes ---- */

struct path_seg {
	const char *p;
	size_t len;
};

/* Splits an absolute path into segments: "/" has none, "/a/" has "a" and
 * "". Returns the count, or -1 when the path is not absolute or has more
 * than HTTP_MAX_SEGS segments (such a path matches no route). */
static int split_path(const char *path, struct path_seg segs[HTTP_MAX_SEGS])
{
	const char *p = path + 1;
	int n = 0;

	if (path[0] != '/')
		return -1;
	if (*p == '\0')
		return 0;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);

		if (n == HTTP_MAX_SEGS)
			return -1;
		segs[n].p = p;
		segs[n].len = len;
		n++;
		if (slash == NULL)
			return n;
		p = slash + 1;
	}
}

/* Compiles def into e. Returns 0, or -1 (logged) for a malformed pattern. */
static int route_compile(struct route_ent *e, const struct http_route *def)
{
	struct path_seg segs[HTTP_MAX_SEGS];
	size_t nparams = 0;
	int n;

	memset(e, 0, sizeof(*e));
	e->def = def;
	e->label = def->pattern;
	if (def->method == NULL || def->pattern == NULL || def->handler == NULL ||
	    !method_parse(def->method, &e->method))
		goto fail;
	n = split_path(def->pattern, segs);
	if (n < 0)
		goto fail;
	for (int i = 0; i < n; i++) {
		const char *s = segs[i].p;
		size_t len = segs[i].len;
		bool open = len > 0 && s[0] == '{', close = len > 0 && s[len - 1] == '}';

		if (open != close || (open && len < 3) || memchr(s + 1, '{', len - 1) != NULL)
			goto fail;
		if (open) {
			if (++nparams > HTTP_MAX_PARAMS)
				goto fail;
			e->segs[i] =
				(struct route_seg){.text = s + 1, .len = len - 2, .param = true};
		} else {
			e->segs[i] = (struct route_seg){.text = s, .len = len};
		}
	}
	e->nsegs = (size_t)n;
	return 0;
fail:
	log_event(LOG_ERROR, "http: bad route", LF_S("method", def->method),
		  LF_S("pattern", def->pattern));
	return -1;
}

static bool route_match(const struct route_ent *e, const struct path_seg *segs, int n)
{
	if (e->nsegs != (size_t)n)
		return false;
	for (int i = 0; i < n; i++) {
		if (e->segs[i].param) {
			if (segs[i].len == 0)
				return false;
		} else if (segs[i].len != e->segs[i].len ||
			   memcmp(segs[i].p, e->segs[i].text, segs[i].len) != 0) {
			return false;
		}
	}
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s in place; "%00" and malformed escapes stay as they are. */
static void pct_decode(char *s)
{
	char *w = s;

	for (const char *p = s; *p != '\0'; p++) {
		if (p[0] == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
			int v = hexval(p[1]) * 16 + hexval(p[2]);

			if (v != 0) {
				*w++ = (char)v;
				p += 2;
				continue;
			}
		}
		*w++ = *p;
	}
	*w = '\0';
}

/* ---- metrics ---- */

/* Copies in to out (cap bytes) with Prometheus label escaping. */
static void label_escape(char *out, size_t cap, const char *in)
{
	size_t o = 0;

	for (; *in != '\0' && o + 3 < cap; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}

static void route_metrics_init(struct route_ent *e)
{
	char route[256], labels[300];

	label_escape(route, sizeof(route), e->label);
	snprintf(labels, sizeof(labels), "route=\"%s\"", route);
	e->duration = metrics_histogram("rampart_http_request_duration_seconds",
					"HTTP request latency by route.", labels,
					metrics_latency_bounds, metrics_latency_nbounds);
}

/* The requests_total series for (route, method, code), cached per route. */
static struct metric *route_counter(struct route_ent *e, enum evhttp_cmd_type method, int code)
{
	char route[256], labels[340];
	struct metric *m;

	for (size_t i = 0; i < e->ncodes; i++)
		if (e->codes[i].code == code && e->codes[i].method == method)
			return e->codes[i].m;
	label_escape(route, sizeof(route), e->label);
	snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\",code=\"%d\"", route,
		 method_name(method), code);
	m = metrics_counter("rampart_http_requests_total",
			    "HTTP requests by route, method and status code.", labels);
	if (m != NULL && e->ncodes < HTTP_CODE_SLOTS)
		e->codes[e->ncodes++] = (struct code_slot){.code = code, .method = method, .m = m};
	return m;
}

static struct metric *dropped_counter(void)
{
	return metrics_counter("rampart_http_replies_dropped_total",
			       "Replies discarded because the client had gone.", "");
}

/* ---- JSON output into an evbuffer, without allocating ---- */

void http_json_str(struct evbuffer *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *run = p;

	evbuffer_add(b, "\"", 1);
	while (*p != '\0') {
		char esc[8];
		size_t n = utf8_len(p);

		if (n > 1 || (n == 1 && *p >= 0x20 && *p != '"' && *p != '\\')) {
			p += n;
			continue;
		}
		evbuffer_add(b, run, (size_t)(p - run));
		if (n == 0)
			evbuffer_add(b, "\\ufffd", 6);
		else if (*p == '"' || *p == '\\')
			evbuffer_add_printf(b, "\\%c", *p);
		else if (*p == '\n')
			evbuffer_add(b, "\\n", 2);
		else if (*p == '\t')
			evbuffer_add(b, "\\t", 2);
		else if (*p == '\r')
			evbuffer_add(b, "\\r", 2);
		else {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			evbuffer_add(b, esc, 6);
		}
		run = ++p;
	}
	evbuffer_add(b, run, (size_t)(p - run));
	evbuffer_add(b, "\"", 1);
}

static int evb_dump_cb(const char *buf, size_t size, void *data)
{
	return evbuffer_add(data, buf, size);
}

/* ---- request contexts ---- */

static void req_free(struct http_req *r)
{
	if (r->query_parsed)
		evhttp_clear_headers(&r->query);
	json_decref(r->json);
	free(r);
}

static void pending_unlink(struct http_server *s, struct http_req *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		s->pending = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	s->inflight--;
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *s = arg;
	struct http_req *r;

	(void)fd;
	(void)what;
	s->reap_active = false;
	while ((r = s->zombies) != NULL) {
		s->zombies = r->next;
		req_free(r);
	}
}

/* Ends r's life as an unanswered request. The context itself is freed on
 * the next loop pass rather than now, so that a second reply from the same
 * callback finds r->replied set instead of freed memory. */
static void req_retire(struct http_req *r)
{
	struct http_server *s = r->srv;

	r->replied = true;
	if (s == NULL) {
		req_free(r);
		return;
	}
	pending_unlink(s, r);
	r->next = s->zombies;
	s->zombies = r;
	if (!s->reap_active) {
		s->reap_active = true;
		event_active(&s->reap_ev, EV_TIMEOUT, 0);
	}
}

/* Stops watching r's connection (before a reply or on server shutdown). */
static void req_disarm(struct http_req *r)
{
	if (r->watching) {
		event_del(&r->gone_ev);
		r->watching = false;
	}
	if (r->closecb_set) {
		struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);

		if (evcon != NULL)
			evhttp_connection_set_closecb(evcon, NULL, NULL);
		r->closecb_set = false;
	}
}

/* evhttp close callback of a connection whose request is waiting for its
 * handler; it runs in evhttp_connection_free before the connection's
 * requests are freed (evhttp_free, or an error evhttp saw itself). evhttp
 * frees the request right after this returns, unless it had already
 * unlinked it from the connection (EOF or timeout while evhttp was still
 * reading, libevent < 2.1.9), in which case it is ours to free. */
static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
	struct http_req *r = arg;
	struct evhttp_request *req = r->req;

	(void)evcon;
	if (r->watching) {
		event_del(&r->gone_ev);
		r->watching = false;
	}
	r->closecb_set = false;
	r->req = NULL;
	r->gone = true;
	if (req != NULL && evhttp_request_get_connection(req) == NULL)
		evhttp_request_free(req);
	log_event(LOG_DEBUG, "http: client gone", LF_S("request_id", r->id), LF_S("path", r->path));
}

/* Readable socket while a request waits for its handler. libevent 2.1.12
 * stops reading a connection while its request is with the user, so it
 * would only notice a disconnect when writing the reply; we peek instead. */
static void on_client_readable(evutil_socket_t fd, short what, void *arg)
{
	struct http_req *r = arg;
	struct evhttp_connection *evcon;
	char c;
	ssize_t n;

	(void)what;
	r->watching = false;
	n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0)
		return; /* a pipelined request: evhttp reads it after our reply */
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		if (event_add(&r->gone_ev, NULL) == 0)
			r->watching = true;
		return;
	}
	/* EOF or reset: detach r, then let evhttp free the connection and,
	 * with it, the request. */
	evcon = evhttp_request_get_connection(r->req);
	req_disarm(r);
	r->req = NULL;
	r->gone = true;
	log_event(LOG_DEBUG, "http: client gone", LF_S("request_id", r->id), LF_S("path", r->path));
	evhttp_connection_free(evcon);
}

/* Watches a request that its handler left waiting: a client disconnect
 * marks the context gone and lets evhttp free the connection and request. */
static void req_arm(struct http_req *r)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;

	if (evcon == NULL)
		return;
	/* evhttp serves one request per connection at a time (the next one is
	 * read only after this reply is written), so the close callback can
	 * carry the context itself: no per-connection bookkeeping. */
	evhttp_connection_set_closecb(evcon, on_conn_close, r);
	r->closecb_set = true;
	if (fd < 0)
		return;
	event_assign(&r->gone_ev, r->srv->base, fd, EV_READ, on_client_readable, r);
	if (event_add(&r->gone_ev, NULL) == 0)
		r->watching = true;
	/* Already done by libevent 2.1.12; older 2.1 releases kept reading and
	 * aborted ("illegal connection state") on a pipelined request. */
	bufferevent_disable(bev, EV_READ);
}

/* Generates "req_" + 24 hex digits: the server's random prefix and a
 * counter. Request ids correlate log lines; they need to be unique, not
 * unpredictable, so the CSPRNG is asked once per server, not per request. */
static void gen_id(struct http_server *s, char *o)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[12];
	uint64_t n = ++s->seq;

	memcpy(raw, s->id_prefix, 6);
	for (size_t i = 0; i < 6; i++)
		raw[6 + i] = (unsigned char)(n >> (8 * (5 - i)));
	memcpy(o, "req_", 4);
	o += 4;
	for (size_t i = 0; i < sizeof(raw); i++) {
		*o++ = hex[raw[i] >> 4];
		*o++ = hex[raw[i] & 15];
	}
	*o = '\0';
}

static void req_gen_id(struct http_req *r)
{
	gen_id(r->srv, r->id);
}

/* A client id is used when it is 1..128 printable ASCII characters. */
static bool req_id_valid(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (n == HTTP_REQ_ID_MAX || (unsigned char)s[n] < 0x21 ||
		    (unsigned char)s[n] > 0x7e)
			return false;
	return n > 0;
}

/* Creates the context of req (one allocation, owned by the server until
 * the reply). path and query are copied; match may be NULL. */
static struct http_req *req_new(struct http_server *s, struct evhttp_request *req, const char *path,
				const char *query, struct route_ent *match,
				const struct path_seg *segs, int nsegs)
{
	size_t plen = strlen(path), qlen = query != NULL ? strlen(query) + 1 : 0;
	struct http_req *r = malloc(sizeof(*r) + 2 * (plen + 1) + qlen);
	const char *client_id;
	char *split;

	if (r == NULL)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->srv = s;
	r->req = req;
	r->start_us = clock_mono_us();
	r->type = evhttp_request_get_command(req);
	r->method = method_name(r->type);
	r->route = match != NULL ? match : &s->nomatch;
	r->route_label = r->route->label;

	memcpy(r->buf, path, plen + 1);
	r->path = r->buf;
	split = r->buf + plen + 1;
	memcpy(split, path, plen + 1);
	if (query != NULL) {
		memcpy(split + plen + 1, query, qlen);
		r->query_raw = split + plen + 1;
	}
	if (match != NULL) {
		for (int i = 0; i < nsegs; i++) {
			char *v = split + (segs[i].p - path);

			v[segs[i].len] = '\0';
			if (!match->segs[i].param)
				continue;
			pct_decode(v);
			r->pnames[r->nparams] = match->segs[i].text;
			r->pname_len[r->nparams] = match->segs[i].len;
			r->pvals[r->nparams] = v;
			r->nparams++;
		}
	}

	client_id = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Request-Id");
	if (client_id != NULL && req_id_valid(client_id))
		memcpy(r->id, client_id, strlen(client_id) + 1);
	else
		req_gen_id(r);

	r->next = s->pending;
	if (s->pending != NULL)
		s->pending->prev = r;
	s->pending = r;
	s->inflight++;
	return r;
}

/* ---- replies ---- */

/* Reports a reply attempt on an answered context. */
static bool req_replied_already(struct http_req *r, int status)
{
	if (!r->replied)
		return false;
	log_event(LOG_ERROR, "http: second reply ignored", LF_S("request_id", r->id),
		  LF_S("method", r->method), LF_S("path", r->path), LF_I("status", status));
	return true;
}

/* Discards the reply of a request whose client has gone. */
static void req_drop(struct http_req *r, int status)
{
	log_event(LOG_INFO, "request", LF_S("request_id", r->id), LF_S("method", r->method),
		  LF_S("path", r->path), LF_S("route", r->route_label), LF_I("status", status),
		  LF_I("duration_us", clock_mono_us() - r->start_us), LF_I("bytes", 0),
		  LF_S("dropped", "client gone"));
	metric_inc(r->srv != NULL ? r->srv->dropped : dropped_counter());
	req_retire(r);
}

/* evhttp finished writing a reply. (A connection that fails while writing
 * frees its request without this call: the count then stays high and a
 * drain waits out its grace period, the safe side.) */
static void on_reply_written(struct evhttp_request *req, void *arg)
{
	struct http_server *s = arg;
	(void)req;
	if (s->writing > 0)
		s->writing--;
}

/* Sends the response prepared in r->req's output buffer and retires r. */
static void req_send(struct http_req *r, int status, const char *content_type)
{
	struct evhttp_request *req = r->req;
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	size_t bytes = evbuffer_get_length(evhttp_request_get_output_buffer(req));
	uint64_t dur;

	/* The close callback goes now; the client-close watcher only after
	 * evhttp_send_reply has re-enabled reading on the socket (it returns
	 * without writing or freeing anything): deleting it before would make
	 * two extra epoll_ctl calls per request (read off, then on again). */
	bool watching = r->watching;
	r->watching = false;
	req_disarm(r);
	r->watching = watching;
	evhttp_add_header(oh, "X-Request-Id", r->id);
	if (content_type != NULL)
		evhttp_add_header(oh, "Content-Type", content_type);
	if (status < 200 || status == 204 || status == 304 || r->type == EVHTTP_REQ_HEAD)
		bytes = 0; /* evhttp sends no body */
	if (r->srv != NULL) {
		evhttp_request_set_on_complete_cb(req, on_reply_written, r->srv);
		r->srv->writing++;
	}
	evhttp_send_reply(req, status, reason_phrase(status), NULL);
	req_disarm(r);
	r->req = NULL;

	dur = clock_mono_us() - r->start_us;
	log_event(LOG_INFO, "request", LF_S("request_id", r->id), LF_S("method", r->method),
		  LF_S("path", r->path), LF_S("route", r->route_label), LF_I("status", status),
		  LF_I("duration_us", dur), LF_I("bytes", bytes));
	metric_inc(route_counter(r->route, r->type, status));
	metric_observe_us(r->route->duration, dur);
	req_retire(r);
}

void http_reply_json(struct http_req *r, int status, json_t *body)
{
	struct evbuffer *out;

	if (req_replied_already(r, status)) {
		json_decref(body);
		return;
	}
	if (r->gone) {
		json_decref(body);
		req_drop(r, status);
		return;
	}
	if (body == NULL) {
		req_send(r, status, NULL);
		return;
	}
	out = evhttp_request_get_output_buffer(r->req);
	if (json_dump_callback(body, evb_dump_cb, out,
			       JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9)) != 0) {
		json_decref(body);
		evbuffer_drain(out, evbuffer_get_length(out));
		log_event(LOG_ERROR, "http: cannot serialise reply", LF_S("request_id", r->id));
		http_reply_error(r, 500, "INTERNAL_ERROR", NULL, "internal error");
		return;
	}
	json_decref(body);
	req_send(r, status, "application/json");
}

void http_reply_error(struct http_req *r, int status, const char *code, const char *param,
		      const char *fmt, ...)
{
	struct evbuffer *out;
	char msg[512];
	va_list ap;

	if (req_replied_already(r, status))
		return;
	if (r->gone) {
		req_drop(r, status);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	out = evhttp_request_get_output_buffer(r->req);
	evbuffer_add(out, "{\"error\":{\"code\":", 17);
	http_json_str(out, code);
	evbuffer_add(out, ",\"message\":", 11);
	http_json_str(out, msg);
	if (param != NULL && param[0] != '\0') {
		evbuffer_add(out, ",\"param\":", 9);
		http_json_str(out, param);
	}
	evbuffer_add(out, "}}", 2);
	req_send(r, status, "application/json");
}

void http_reply_raw(struct http_req *r, int status, const char *content_type, const void *data,
		    size_t len)
{
	if (req_replied_already(r, status))
		return;
	if (r->gone) {
		req_drop(r, status);
		return;
	}
	if (len > 0)
		evbuffer_add(evhttp_request_get_output_buffer(r->req), data, len);
	req_send(r, status, content_type);
}

void http_req_add_header(struct http_req *r, const char *name, const char *value)
{
	if (r->replied) {
		log_event(LOG_ERROR, "http: header added after the reply",
			  LF_S("request_id", r->id), LF_S("header", name));
		return;
	}
	if (r->gone)
		return;
	evhttp_add_header(evhttp_request_get_output_headers(r->req), name, value);
}

/* ---- dispatch ---- */

/* True for "application/json", any case, optionally followed by
 * parameters ("; charset=utf-8"). */
static bool is_json_type(const char *ct)
{
	static const char want[] = "application/json";

	if (ct == NULL)
		return false;
	ct += strspn(ct, " \t");
	if (strncasecmp(ct, want, sizeof(want) - 1) != 0)
		return false;
	ct += sizeof(want) - 1;
	ct += strspn(ct, " \t");
	return *ct == '\0' || *ct == ';';
}

/* Body checks of HTTP_JSON_BODY routes, then the handler. */
static void req_run(struct http_req *r)
{
	const struct http_route *def = r->route->def;

	if (def->flags & HTTP_JSON_BODY) {
		struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
		size_t len = evbuffer_get_length(in);
		const char *data;
		struct jv_error err;

		if (!is_json_type(http_req_header(r, "Content-Type"))) {
			http_reply_error(r, 415, "UNSUPPORTED_MEDIA_TYPE", NULL,
					 "Content-Type must be application/json");
			return;
		}
		if (len > HTTP_MAX_BODY) {
			http_reply_error(r, 413, "BODY_TOO_LARGE", NULL,
					 "request body is larger than %d bytes", HTTP_MAX_BODY);
			return;
		}
		data = len > 0 ? (const char *)evbuffer_pullup(in, -1) : "";
		if (data == NULL) {
			http_reply_error(r, 500, "INTERNAL_ERROR", NULL, "out of memory");
			return;
		}
		r->json = jv_parse_object(data, len, &err);
		if (r->json == NULL) {
			http_reply_error(r, err.status, err.code, err.param, "%s", err.message);
			return;
		}
	}
	def->handler(r, r->srv->app);
}

/* Writes the methods in mask, in route-table order, as "GET, POST". */
static void allow_list(const struct http_server *s, unsigned mask, char *out, size_t cap)
{
	unsigned done = 0;
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < s->nroutes; i++) {
		unsigned m = (unsigned)s->routes[i].method;

		if (!(mask & m) || (done & m))
			continue;
		done |= m;
		o += (size_t)snprintf(out + o, cap - o, "%s%s", o > 0 ? ", " : "",
				      method_name(s->routes[i].method));
		if (o >= cap)
			return;
	}
}

/* evhttp generic callback: every request that evhttp parsed. */
/* 503 for a request its server's admit hook refused (HTTP_SHED routes). */
static void refuse_overloaded(struct http_req *r, int retry_after)
{
	char secs[16];

	metric_inc(metrics_counter("rampart_http_refused_total",
				   "Requests refused at once with 503 OVERLOADED because a queue "
				   "they would wait in stands (admission control)",
				   ""));
	snprintf(secs, sizeof(secs), "%d", retry_after);
	http_req_add_header(r, "Retry-After", secs);
	http_reply_error(r, 503, "OVERLOADED", NULL,
			 "overloaded: requests are waiting too long for the database; retry after "
			 "%d s",
			 retry_after);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct http_server *s = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	struct path_seg segs[HTTP_MAX_SEGS];
	struct route_ent *match = NULL;
	unsigned allow = 0;
	struct http_req *r;
	int nsegs, retry_after;

	if (path == NULL)
		path = "";
	/* evhttp accepts "HTTP/0.1" or "HTTP/1.11" request lines and answers
	 * with that version in the status line, which no client can read: 1.x
	 * beyond 1.1 is served as 1.1, anything else refused in 1.0. */
	bool old_version = req->major != 1 || req->minor < 0; /* or "HTTP/1.-1" */
	if (old_version) {
		req->major = 1;
		req->minor = 0;
	} else if (req->minor > 1) {
		req->minor = 1;
	}
	nsegs = split_path(path, segs);
	for (size_t i = 0; nsegs >= 0 && i < s->nroutes; i++) {
		if (!route_match(&s->routes[i], segs, nsegs))
			continue;
		/* HEAD is GET without a body (evhttp drops it, keeping the length). */
		if (s->routes[i].method == method ||
		    (method == EVHTTP_REQ_HEAD && s->routes[i].method == EVHTTP_REQ_GET)) {
			match = &s->routes[i];
			break;
		}
		allow |= (unsigned)s->routes[i].method;
	}

	r = req_new(s, req, path, query, match, segs, nsegs);
	if (r == NULL) {
		log_event(LOG_ERROR, "http: out of memory", LF_S("path", path));
		evhttp_send_error(req, 503, NULL);
		return;
	}

	if (old_version) {
		http_reply_error(r, 400, "INVALID_REQUEST", NULL, "HTTP version not supported");
	} else if (match == NULL && allow != 0) {
		char list[128];

		allow_list(s, allow, list, sizeof(list));
		http_req_add_header(r, "Allow", list);
		http_reply_error(r, 405, "METHOD_NOT_ALLOWED", NULL, "%s is not allowed on %s",
				 r->method, r->path);
	} else if (match == NULL) {
		http_reply_error(r, 404, "NOT_FOUND", NULL, "no route for %s %s", r->method,
				 r->path);
	} else if ((match->def->flags & HTTP_SHED) && s->admit != NULL &&
		   (retry_after = s->admit(s->app)) > 0) {
		refuse_overloaded(r, retry_after);
	} else if (match->def->flags & HTTP_AUTH) {
		if (s->auth != NULL) {
			s->auth(r, s->app);
		} else {
			/* Fail closed: a protected route without a hook is a bug. */
			log_event(LOG_ERROR, "http: HTTP_AUTH route but no auth hook",
				  LF_S("route", match->label));
			http_reply_error(r, 500, "INTERNAL_ERROR", NULL, "internal error");
		}
	} else {
		r->proceeded = true;
		req_run(r);
	}
	/* r is not freed before the next loop pass, even if answered. */
	if (!r->replied && !r->gone)
		req_arm(r);
}

void http_req_proceed(struct http_req *r)
{
	if (r->replied || r->proceeded) {
		log_event(LOG_ERROR, "http: http_req_proceed misused", LF_S("request_id", r->id),
			  LF_S("reason", r->replied ? "already answered" : "called twice"));
		return;
	}
	r->proceeded = true;
	if (r->gone) {
		req_drop(r, 0); /* nobody is listening: skip the handler */
		return;
	}
	req_run(r);
}

/* ---- server ---- */

/* ---- accepting at the open-file limit ---- */

/* Out of descriptors, accept() fails while the connection stays queued, so
 * the listening socket stays readable: evhttp's listener (libevent 2.1) logs
 * and retries at once, and the loop spins at 100% CPU. Each server sets an
 * error callback that stops accepting for HTTP_ACCEPT_PAUSE_MS instead (the
 * kernel's backlog holds new connections meanwhile). libevent hands that
 * callback only the evhttp, so servers are found in a registry. */
static pthread_mutex_t servers_mu = PTHREAD_MUTEX_INITIALIZER;
static struct http_server *servers;

static void servers_link(struct http_server *s, bool add)
{
	pthread_mutex_lock(&servers_mu);
	struct http_server **p = &servers;
	while (*p != NULL && *p != s)
		p = &(*p)->next_server;
	if (add && *p == NULL) {
		s->next_server = servers;
		servers = s;
	} else if (!add && *p == s) {
		*p = s->next_server;
	}
	pthread_mutex_unlock(&servers_mu);
}

static void accepting(struct http_server *s, bool on)
{
	for (size_t i = 0; i < s->nbound; i++) {
		struct evconnlistener *lev = evhttp_bound_socket_get_listener(s->bound[i]);
		if (on)
			evconnlistener_enable(lev);
		else
			evconnlistener_disable(lev);
	}
	s->accept_paused = !on;
}

static void accept_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	accepting(arg, true);
}

static void accept_failed(struct evconnlistener *lev, void *http)
{
	int err = EVUTIL_SOCKET_ERROR();
	struct http_server *s;
	pthread_mutex_lock(&servers_mu);
	for (s = servers; s != NULL && s->http != http; s = s->next_server)
		;
	pthread_mutex_unlock(&servers_mu);
	if (s == NULL) { /* not ours: never spin */
		evconnlistener_disable(lev);
		return;
	}
	struct timeval tv = {0, HTTP_ACCEPT_PAUSE_MS * 1000};
	accepting(s, false);
	evtimer_add(&s->accept_ev, &tv);
	s->accept_failures++;
	uint64_t now = clock_mono_us();
	if (s->accept_logged_us == 0 || now - s->accept_logged_us >= HTTP_ACCEPT_LOG_US) {
		log_event(LOG_WARN, "http: cannot accept connections; pausing",
			  LF_S("error", evutil_socket_error_to_string(err)),
			  LF_I("pause_ms", HTTP_ACCEPT_PAUSE_MS),
			  LF_I("failures", (long long)s->accept_failures));
		s->accept_logged_us = now;
		s->accept_failures = 0;
	}
}

/* ---- evhttp's own error replies ---- */

/* evhttp answers some requests itself, before our callback sees them: a
 * malformed request line, header or Content-Length, headers beyond
 * HTTP_MAX_HEADERS_SIZE (400), a body beyond HTTP_EVHTTP_MAX_BODY or a bad
 * chunk (413), a method it does not know (501). libevent 2.1 writes those as
 * an HTML page and has no hook to change it (evhttp_set_errorcb is 2.2), so
 * every connection's output buffer is watched: a complete evhttp error page
 * (status line, "Content-Type: text/html", ending in "</HTML>\n"; our own
 * replies are never HTML) is replaced by the same error in SPEC 4's JSON
 * shape, with an X-Request-Id, and an unknown method's 501 becomes 405
 * METHOD_NOT_ALLOWED. evhttp closes the connection after it, as before. */
static void on_output(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
	static const char tail[] = "</HTML>\n", ctype[] = "\r\nContent-Type: text/html\r\n";
	struct http_server *s = arg;
	size_t len = evbuffer_get_length(out);
	char head[24], end[sizeof(tail) - 1], id[HTTP_REQ_ID_MAX + 1], body[200];
	struct evbuffer_ptr pos, hend;
	const char *code, *msg;
	int status, n;

	if (info->n_added == 0 || len < 64)
		return;
	if (evbuffer_ptr_set(out, &pos, len - sizeof(end), EVBUFFER_PTR_SET) != 0 ||
	    evbuffer_copyout_from(out, &pos, end, sizeof(end)) != (ev_ssize_t)sizeof(end) ||
	    memcmp(end, tail, sizeof(end)) != 0)
		return;
	/* "HTTP/1.1 400": the version echoes the request's ("HTTP/1.11"). */
	ev_ssize_t hl = evbuffer_copyout(out, head, sizeof(head) - 1);
	if (hl < 12 || memcmp(head, "HTTP/", 5) != 0)
		return;
	head[hl] = '\0';
	const char *sp = strchr(head, ' ');
	if (sp == NULL || sp[1] < '1' || sp[1] > '5' || sp[2] < '0' || sp[2] > '9' || sp[3] < '0' ||
	    sp[3] > '9')
		return;
	hend = evbuffer_search(out, "\r\n\r\n", 4, NULL);
	if (hend.pos < 0 ||
	    evbuffer_search_range(out, ctype, sizeof(ctype) - 1, NULL, &hend).pos < 0)
		return;
	status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
	switch (status) {
	case 413:
		code = "BODY_TOO_LARGE";
		msg = "request headers or body too large";
		break;
	case 501:
	case 405:
		status = 405;
		code = "METHOD_NOT_ALLOWED";
		msg = "method not supported";
		break;
	case 503:
		code = "SERVICE_UNAVAILABLE";
		msg = "service unavailable";
		break;
	default:
		status = 400;
		code = "INVALID_REQUEST";
		msg = "malformed HTTP request";
		break;
	}
	gen_id(s, id);
	n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code,
		     msg);
	evbuffer_drain(out, len);
	evbuffer_add_printf(out,
			    "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
			    "Content-Length: %d\r\nX-Request-Id: %s\r\nConnection: close\r\n\r\n%s",
			    status, reason_phrase(status), n, id, body);
	log_event(LOG_INFO, "request", LF_S("request_id", id), LF_S("route", "-"),
		  LF_I("status", status), LF_S("error", "malformed request (refused by evhttp)"));
}

/* evhttp's bufferevent for each accepted connection, with on_output
 * watching what it writes. BEV_OPT_CLOSE_ON_FREE (evhttp's own default is 0)
 * makes the bufferevent close the socket after deleting its events; with 0,
 * libevent 2.1's evhttp_connection_free closes the socket first and the
 * epoll_ctl(DEL) then names a closed descriptor, which another thread's
 * accept4 may have reused (a race on the descriptor under ThreadSanitizer). */
static struct bufferevent *conn_bev(struct event_base *base, void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);

	if (bev != NULL && evbuffer_add_cb(bufferevent_get_output(bev), on_output, arg) == NULL)
		log_fmt(LOG_WARN, "http: cannot watch a connection's output");
	return bev;
}

struct http_server *http_server_new(struct event_base *base, const struct http_route *routes,
				    size_t nroutes, void *app)
{
	struct http_server *s = calloc(1, sizeof(*s));

	if (s == NULL)
		goto fail;
	s->base = base;
	s->app = app;
	s->nroutes = nroutes;
	if (id_random_bytes(s->id_prefix, sizeof(s->id_prefix)) != 0)
		goto fail;
	s->routes = calloc(nroutes > 0 ? nroutes : 1, sizeof(*s->routes));
	if (s->routes == NULL)
		goto fail;
	for (size_t i = 0; i < nroutes; i++) {
		if (route_compile(&s->routes[i], &routes[i]) != 0)
			goto fail;
		route_metrics_init(&s->routes[i]);
	}
	s->nomatch.label = "-";
	route_metrics_init(&s->nomatch);
	s->dropped = dropped_counter();

	if (event_assign(&s->reap_ev, base, -1, 0, on_reap, s) != 0 ||
	    evtimer_assign(&s->accept_ev, base, accept_resume, s) != 0)
		goto fail;
	s->http = evhttp_new(base);
	if (s->http == NULL)
		goto fail;
	evhttp_set_gencb(s->http, on_request, s);
	/* All methods reach us, so that 405 is our JSON, not evhttp's 501;
	 * but CONNECT, which evhttp never closes after the reply (a tunnel)
	 * and answers without a Content-Length when we reply: its 501 is
	 * rewritten to a 405 with one (on_output). */
	evhttp_set_allowed_methods(s->http, HTTP_METHODS_ALLOWED);
	evhttp_set_max_body_size(s->http, HTTP_EVHTTP_MAX_BODY);
	evhttp_set_max_headers_size(s->http, HTTP_MAX_HEADERS_SIZE);
	evhttp_set_timeout(s->http, HTTP_IDLE_TIMEOUT_S);
	evhttp_set_bevcb(s->http, conn_bev, s);
	servers_link(s, true);
	return s;
fail:
	log_fmt(LOG_ERROR, "http: cannot create server");
	if (s != NULL) {
		free(s->routes);
		free(s);
	}
	return NULL;
}

void http_server_set_admit(struct http_server *s, http_admit_hook hook)
{
	s->admit = hook;
}

void http_server_set_auth(struct http_server *s, http_auth_hook hook)
{
	s->auth = hook;
}

int http_server_listen(struct http_server *s, const char *host, int port, bool reuseport)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
	};
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char portstr[8], hbuf[NI_MAXHOST], sbuf[NI_MAXSERV], addr[NI_MAXHOST + NI_MAXSERV + 4];
	struct evhttp_bound_socket *bound;
	const int one = 1;
	int fd = -1, rc;

	if (port < 1 || port > 65535 || s->nbound == HTTP_MAX_LISTENERS) {
		log_event(LOG_ERROR, "http: cannot listen", LF_S("host", host), LF_I("port", port),
			  LF_S("error",
			       port < 1 || port > 65535 ? "bad port" : "too many listeners"));
		return -1;
	}
	snprintf(portstr, sizeof(portstr), "%d", port);
	/* Listener set-up, before any loop runs. */
	const char *node = host != NULL && host[0] != '\0' ? host : NULL;
	rc = getaddrinfo(node, portstr, &hints, &ai); /* checksrc:allow */
	if (rc != 0) {
		log_event(LOG_ERROR, "http: bad listen address", LF_S("host", host),
			  LF_S("error", gai_strerror(rc)));
		return -1;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
		goto fail;
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
		goto fail;
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, HTTP_BACKLOG) != 0)
		goto fail;
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, sslen, hbuf, sizeof(hbuf), sbuf, sizeof(sbuf),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		goto fail;
	/* evhttp's listener closes fd when freed (LEV_OPT_CLOSE_ON_FREE). */
	bound = evhttp_accept_socket_with_handle(s->http, fd);
	if (bound == NULL) {
		fd = -1; /* evhttp may have closed it already: leak rather than close twice */
		goto fail;
	}
	s->bound[s->nbound++] = bound;
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bound), accept_failed);
	if (s->accept_paused)
		evconnlistener_disable(evhttp_bound_socket_get_listener(bound));
	snprintf(addr, sizeof(addr), ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", hbuf, sbuf);
	log_event(LOG_INFO, "http: listening", LF_S("address", addr),
		  LF_I("reuseport", reuseport ? 1 : 0));
	freeaddrinfo(ai);
	return 0;
fail:
	log_event(LOG_ERROR, "http: cannot listen", LF_S("host", host), LF_I("port", port),
		  LF_S("error", strerror(errno)));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return -1;
}

int http_server_listen_fd(struct http_server *s, int fd)
{
	struct evhttp_bound_socket *bound;

	if (s->nbound == HTTP_MAX_LISTENERS)
		return -1;
	bound = evhttp_accept_socket_with_handle(s->http, fd);
	if (bound == NULL)
		return -1;
	s->bound[s->nbound++] = bound;
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bound), accept_failed);
	return 0;
}

void http_server_stop_accepting(struct http_server *s)
{
	evtimer_del(&s->accept_ev);
	for (size_t i = 0; i < s->nbound; i++)
		evhttp_del_accept_socket(s->http, s->bound[i]);
	s->nbound = 0;
}

size_t http_server_inflight(const struct http_server *s)
{
	return s->inflight + s->writing;
}

/* Detaches every waiting context first (their evhttp requests die with the
 * connections in evhttp_free); those contexts are freed by their replies. */
void http_server_free(struct http_server *s)
{
	struct http_req *r;

	if (s == NULL)
		return;
	servers_link(s, false);
	evtimer_del(&s->accept_ev);
	while ((r = s->pending) != NULL) {
		pending_unlink(s, r);
		if (!r->gone) {
			req_disarm(r);
			r->req = NULL;
			r->gone = true;
		}
		r->srv = NULL;
		r->route = NULL;
	}
	event_del(&s->reap_ev);
	on_reap(-1, 0, s);
	if (s->http != NULL)
		evhttp_free(s->http);
	free(s->routes);
	free(s);
}

/* ---- request accessors ---- */

const char *http_req_method(const struct http_req *r)
{
	return r->method;
}

const char *http_req_path(const struct http_req *r)
{
	return r->path;
}

const char *http_req_route(const struct http_req *r)
{
	return r->route_label;
}

const char *http_req_param(const struct http_req *r, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < r->nparams; i++)
		if (r->pname_len[i] == len && memcmp(r->pnames[i], name, len) == 0)
			return r->pvals[i];
	return NULL;
}

/* Parses the query string on first use; the cast is the lazy cache, r is ours. */
static void query_parse(const struct http_req *r)
{
	struct http_req *w = (struct http_req *)r;

	if (r->query_parsed || r->query_raw == NULL)
		return;
	/* On a malformed query the list is left empty. */
	w->query_bad = evhttp_parse_query_str(r->query_raw, &w->query) != 0;
	w->query_parsed = true;
}

const char *http_req_query(const struct http_req *r, const char *name)
{
	if (r->query_raw == NULL)
		return NULL;
	query_parse(r);
	return evhttp_find_header(&((struct http_req *)r)->query, name);
}

bool http_req_query_malformed(const struct http_req *r)
{
	query_parse(r);
	return r->query_bad;
}

const char *http_req_header(const struct http_req *r, const char *name)
{
	if (r->req == NULL)
		return NULL;
	return evhttp_find_header(evhttp_request_get_input_headers(r->req), name);
}

const char *http_req_id(const struct http_req *r)
{
	return r->id;
}

const char *http_req_body(const struct http_req *r, size_t *len)
{
	struct evbuffer *in;

	*len = 0;
	if (r->req == NULL)
		return NULL;
	in = evhttp_request_get_input_buffer(r->req);
	*len = evbuffer_get_length(in);
	if (*len == 0)
		return NULL;
	return (const char *)evbuffer_pullup(in, -1);
}

json_t *http_req_json(const struct http_req *r)
{
	return r->json;
}

bool http_req_gone(const struct http_req *r)
{
	return r->gone;
}

uint64_t http_req_elapsed_us(const struct http_req *r)
{
	return clock_mono_us() - r->start_us;
}

void http_req_set_user(struct http_req *r, void *user)
{
	r->user = user;
}

void *http_req_user(const struct http_req *r)
{
	return r->user;
}

void http_reply_ready(struct http_req *r, json_t *reasons)
{
	if (json_array_size(reasons) == 0) {
		json_decref(reasons);
		http_reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
		return;
	}
	http_reply_json(r, 503, json_pack("{s:s, s:o}", "status", "not_ready", "reasons", reasons));
}

void http_reply_metrics(struct http_req *r)
{
	struct evbuffer *buf = evbuffer_new();
	if (buf == NULL || metrics_render(buf) != 0) {
		if (buf != NULL)
			evbuffer_free(buf);
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "cannot render metrics");
		return;
	}
	size_t len = evbuffer_get_length(buf);
	http_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", evbuffer_pullup(buf, -1),
		       len);
	evbuffer_free(buf);
}
