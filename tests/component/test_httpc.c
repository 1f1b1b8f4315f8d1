/* test_httpc.c - component tests of common/httpc against a small evhttp
 * server on the same event loop, each under a watchdog. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/httpc.h"
#include "common/metrics.h"

#define BIG_BODY   (1024 * 1024)
#define SLOW_MS	   2000
#define WATCHDOG_S 10

/* ---- the test server ---- */

struct server {
	struct evhttp *http;
	int port;
	int slow_pending; /* /slow requests not answered yet */
	int requests;	  /* requests received */
	char *big;
};

struct slow_reply {
	struct server *s;
	struct evhttp_request *req;
	struct event *ev;
};

static void slow_fire(evutil_socket_t fd, short what, void *arg)
{
	struct slow_reply *sr = arg;
	struct evbuffer *b = evbuffer_new();

	(void)fd;
	(void)what;
	evbuffer_add_printf(b, "{\"slow\":true}");
	/* If the client left, libevent has detached req and frees it here. */
	evhttp_send_reply(sr->req, 200, "OK", b);
	evbuffer_free(b);
	sr->s->slow_pending--;
	event_free(sr->ev);
	free(sr);
}

static const char *method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	default:
		return "OTHER";
	}
}

/* GET /ok, /slow, /big, /status/503, /redirect; any /echo. */
static void route(struct evhttp_request *req, void *arg)
{
	struct server *s = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct evbuffer *b = evbuffer_new();

	s->requests++;
	if (path == NULL)
		path = "";
	if (strcmp(path, "/ok") == 0) {
		evhttp_add_header(out, "Content-Type", "application/json");
		evbuffer_add_printf(b, "{\"ok\":true}");
		evhttp_send_reply(req, 200, "OK", b);
	} else if (strcmp(path, "/slow") == 0) {
		struct slow_reply *sr = calloc(1, sizeof(*sr));
		struct timeval tv = {SLOW_MS / 1000, (SLOW_MS % 1000) * 1000};

		sr->s = s;
		sr->req = req;
		sr->ev = evtimer_new(evhttp_connection_get_base(evhttp_request_get_connection(req)),
				     slow_fire, sr);
		evtimer_add(sr->ev, &tv);
		s->slow_pending++;
	} else if (strcmp(path, "/big") == 0) {
		evbuffer_add(b, s->big, BIG_BODY);
		evhttp_send_reply(req, 200, "OK", b);
	} else if (strcmp(path, "/status/503") == 0) {
		evhttp_add_header(out, "Retry-After", "7");
		evbuffer_add_printf(b, "unavailable");
		evhttp_send_reply(req, 503, "Service Unavailable", b);
	} else if (strcmp(path, "/redirect") == 0) {
		evhttp_add_header(out, "Location", "/ok");
		evbuffer_add_printf(b, "moved");
		evhttp_send_reply(req, 302, "Found", b);
	} else if (strcmp(path, "/echo") == 0) {
		const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Test");

		evbuffer_add_printf(b, "%s\n%s\n", method_name(evhttp_request_get_command(req)),
				    h != NULL ? h : "-");
		evbuffer_add_buffer(b, evhttp_request_get_input_buffer(req));
		evhttp_send_reply(req, 200, "OK", b);
	} else {
		evhttp_send_reply(req, 404, "Not Found", b);
	}
	evbuffer_free(b);
}

static void server_start(struct server *s, struct event_base *base)
{
	struct evhttp_bound_socket *h;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	memset(s, 0, sizeof(*s));
	s->big = malloc(BIG_BODY);
	assert_non_null(s->big);
	memset(s->big, 'x', BIG_BODY);
	s->http = evhttp_new(base);
	assert_non_null(s->http);
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	evhttp_set_gencb(s->http, route, s);
	h = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
	assert_non_null(h);
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(h), (struct sockaddr *)&sin, &len),
			 0);
	s->port = ntohs(sin.sin_port);
}

/* A loopback port nobody listens on (bound, then released). */
static int free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

/* ---- a loop with a watchdog ---- */

struct env {
	struct event_base *base;
	struct event *watchdog;
	struct server srv;
	struct httpc *c;
	int done;
};

/* What one callback saw, copied out of the borrowed response. */
struct result {
	struct env *e;
	int calls;
	long status;
	bool has_error, timed_out, truncated, addr_refused;
	char error[512];
	char body[256];
	size_t body_len, body_strlen;
	char retry_after[32], location[64], content_type[64];
	long latency_ms;
	uint64_t at_us;
};

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	fail_msg("watchdog: test did not finish in time");
}

static void env_init(struct env *e, int max_conns, int max_host)
{
	struct timeval tv = {WATCHDOG_S, 0};

	memset(e, 0, sizeof(*e));
	e->base = event_base_new();
	assert_non_null(e->base);
	e->watchdog = evtimer_new(e->base, watchdog_cb, e);
	evtimer_add(e->watchdog, &tv);
	server_start(&e->srv, e->base);
	e->c = httpc_new(e->base, max_conns, max_host);
	assert_non_null(e->c);
}

static void pump(struct env *e, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	event_base_loopexit(e->base, &tv);
	event_base_dispatch(e->base);
}

static void run_until(struct env *e, int expected)
{
	while (e->done < expected)
		event_base_loop(e->base, EVLOOP_ONCE);
}

/* Lets the server answer its /slow requests, so nothing leaks. */
static void env_free(struct env *e)
{
	httpc_free(e->c);
	while (e->srv.slow_pending > 0)
		event_base_loop(e->base, EVLOOP_ONCE);
	pump(e, 20);
	evhttp_free(e->srv.http);
	free(e->srv.big);
	event_free(e->watchdog);
	event_base_free(e->base);
}

static void url(const struct env *e, char *buf, size_t n, const char *path)
{
	snprintf(buf, n, "http://127.0.0.1:%d%s", e->srv.port, path);
}

static void copy_str(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src != NULL ? src : "");
}

static void cb(void *arg, const struct httpc_response *r)
{
	struct result *res = arg;

	res->calls++;
	res->e->done++;
	res->at_us = clock_mono_us();
	res->status = r->status;
	res->has_error = r->error != NULL;
	copy_str(res->error, sizeof(res->error), r->error);
	res->timed_out = r->timed_out;
	res->addr_refused = r->addr_refused;
	res->truncated = r->truncated;
	res->body_len = r->body_len;
	res->body_strlen = strlen(r->body);
	memcpy(res->body, r->body,
	       r->body_len < sizeof(res->body) - 1 ? r->body_len : sizeof(res->body) - 1);
	copy_str(res->retry_after, sizeof(res->retry_after), httpc_header(r, "retry-after"));
	copy_str(res->location, sizeof(res->location), httpc_header(r, "LOCATION"));
	copy_str(res->content_type, sizeof(res->content_type), httpc_header(r, "Content-Type"));
	res->latency_ms = r->latency_ms;
}

static void send_get(struct env *e, struct result *res, const char *path, int timeout_ms)
{
	char u[128];

	url(e, u, sizeof(u), path);
	res->e = e;
	const struct httpc_request req = {.method = "GET", .url = u, .timeout_ms = timeout_ms};
	assert_int_equal(httpc_send(e->c, &req, cb, res), 0);
}

/* ---- tests ---- */

static void test_get_ok(void **state)
{
	struct env e;
	struct result res = {0}, head = {0};
	char u[128];

	(void)state;
	env_init(&e, 0, 0);
	send_get(&e, &res, "/ok", 2000);
	/* Never answered inside httpc_send. */
	assert_int_equal(res.calls, 0);
	assert_int_equal(httpc_pending(e.c), 1);
	run_until(&e, 1);
	assert_int_equal(res.calls, 1);
	assert_int_equal(res.status, 200);
	assert_false(res.has_error);
	assert_false(res.timed_out);
	assert_false(res.truncated);
	assert_string_equal(res.body, "{\"ok\":true}");
	assert_int_equal(res.body_len, 11);
	assert_string_equal(res.content_type, "application/json");
	assert_true(res.latency_ms >= 0 && res.latency_ms < 2000);
	assert_int_equal(httpc_pending(e.c), 0);

	url(&e, u, sizeof(u), "/ok");
	head.e = &e;
	const struct httpc_request hr = {.method = "HEAD", .url = u, .timeout_ms = 2000};
	assert_int_equal(httpc_send(e.c, &hr, cb, &head), 0);
	run_until(&e, 2);
	assert_int_equal(head.status, 200);
	assert_int_equal(head.body_len, 0);
	assert_int_equal(head.body_strlen, 0);
	env_free(&e);
}

static void test_post_echo(void **state)
{
	struct env e;
	struct result res = {0}, put = {0};
	char u[128];
	static const char body[] = "a=1\0b=2"; /* a NUL inside: sent as is */
	const char *const headers[] = {"X-Test: abc", "Content-Type: text/plain", NULL};

	(void)state;
	env_init(&e, 0, 0);
	url(&e, u, sizeof(u), "/echo");
	res.e = &e;
	const struct httpc_request req = {.method = "POST",
					  .url = u,
					  .headers = headers,
					  .body = body,
					  .body_len = sizeof(body) - 1,
					  .timeout_ms = 2000};
	assert_int_equal(httpc_send(e.c, &req, cb, &res), 0);
	put.e = &e;
	const struct httpc_request preq = {
		.method = "PUT", .url = u, .body = "xyz", .body_len = 3, .timeout_ms = 2000};
	assert_int_equal(httpc_send(e.c, &preq, cb, &put), 0);
	run_until(&e, 2);
	assert_int_equal(res.status, 200);
	assert_int_equal(res.body_len, 9 + sizeof(body) - 1);
	assert_memory_equal(res.body, "POST\nabc\na=1\0b=2", res.body_len);
	assert_int_equal(put.status, 200);
	assert_string_equal(put.body, "PUT\n-\nxyz");
	env_free(&e);
}

#define NCONC 100

static void test_concurrent(void **state)
{
	struct env e;
	static struct result res[NCONC];
	static char bodies[NCONC][16];
	char u_ok[128], u_echo[128];

	(void)state;
	memset(res, 0, sizeof(res));
	env_init(&e, 16, 8);
	url(&e, u_ok, sizeof(u_ok), "/ok");
	url(&e, u_echo, sizeof(u_echo), "/echo");
	for (int i = 0; i < NCONC; i++) {
		res[i].e = &e;
		snprintf(bodies[i], sizeof(bodies[i]), "n=%d", i);
		const struct httpc_request req = {.method = i % 2 ? "POST" : "GET",
						  .url = i % 2 ? u_echo : u_ok,
						  .body = i % 2 ? bodies[i] : NULL,
						  .body_len = i % 2 ? strlen(bodies[i]) : 0,
						  .timeout_ms = 5000};
		assert_int_equal(httpc_send(e.c, &req, cb, &res[i]), 0);
	}
	assert_int_equal(e.done, 0);
	assert_int_equal(httpc_pending(e.c), NCONC);
	run_until(&e, NCONC);
	pump(&e, 100); /* a second answer would show up here */
	assert_int_equal(e.done, NCONC);
	assert_int_equal(httpc_pending(e.c), 0);
	for (int i = 0; i < NCONC; i++) {
		char want[64];

		assert_int_equal(res[i].calls, 1);
		assert_int_equal(res[i].status, 200);
		if (i % 2) {
			snprintf(want, sizeof(want), "POST\n-\n%s", bodies[i]);
			assert_string_equal(res[i].body, want);
		} else {
			assert_string_equal(res[i].body, "{\"ok\":true}");
		}
	}
	env_free(&e);
}

static void test_timeout(void **state)
{
	struct env e;
	struct result res = {0};
	struct evbuffer *m;
	uint64_t t0;

	(void)state;
	env_init(&e, 0, 0);
	t0 = clock_mono_us();
	send_get(&e, &res, "/slow", 200);
	run_until(&e, 1);
	assert_int_equal(res.calls, 1);
	assert_int_equal(res.status, 0);
	assert_true(res.timed_out);
	assert_true(res.has_error);
	print_message("timeout error: %s\n", res.error);
	assert_true(strncmp(res.error, "timeout", 7) == 0);
	assert_true(res.at_us - t0 >= 150 * 1000);
	assert_true(res.at_us - t0 < 1000 * 1000);
	assert_true(res.latency_ms >= 150 && res.latency_ms < 1000);

	m = evbuffer_new();
	assert_int_equal(metrics_render(m), 0);
	evbuffer_add(m, "", 1);
	assert_non_null(strstr((const char *)evbuffer_pullup(m, -1),
			       "rampart_httpc_requests_total{outcome=\"timeout\"}"));
	evbuffer_free(m);
	env_free(&e);
}

static void test_truncated(void **state)
{
	struct env e;
	struct result small = {0}, dflt = {0};
	char u[128];

	(void)state;
	env_init(&e, 0, 0);
	url(&e, u, sizeof(u), "/big");
	small.e = &e;
	const struct httpc_request req = {.url = u, .timeout_ms = 5000, .max_response = 1000};
	assert_int_equal(httpc_send(e.c, &req, cb, &small), 0);
	send_get(&e, &dflt, "/big", 5000);
	run_until(&e, 2);
	assert_int_equal(small.status, 200);
	assert_false(small.has_error);
	assert_true(small.truncated);
	assert_int_equal(small.body_len, 1000);
	assert_int_equal(small.body_strlen, 1000);
	assert_int_equal(dflt.status, 200);
	assert_true(dflt.truncated);
	assert_int_equal(dflt.body_len, 64 * 1024);
	assert_int_equal(dflt.body_strlen, 64 * 1024);
	env_free(&e);
}

static void test_503_retry_after(void **state)
{
	struct env e;
	struct result res = {0};

	(void)state;
	env_init(&e, 0, 0);
	send_get(&e, &res, "/status/503", 2000);
	run_until(&e, 1);
	assert_int_equal(res.status, 503);
	assert_false(res.has_error);
	assert_string_equal(res.retry_after, "7");
	assert_string_equal(res.body, "unavailable");
	env_free(&e);
}

static void test_redirect_not_followed(void **state)
{
	struct env e;
	struct result res = {0};

	(void)state;
	env_init(&e, 0, 0);
	send_get(&e, &res, "/redirect", 2000);
	run_until(&e, 1);
	pump(&e, 50);
	assert_int_equal(res.calls, 1);
	assert_int_equal(res.status, 302);
	assert_string_equal(res.location, "/ok");
	assert_string_equal(res.body, "moved");
	env_free(&e);
}

static void test_connection_refused(void **state)
{
	struct env e;
	struct result res = {0};
	char u[128];

	(void)state;
	env_init(&e, 0, 0);
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/ok", free_port());
	res.e = &e;
	const struct httpc_request req = {.url = u, .timeout_ms = 2000};
	assert_int_equal(httpc_send(e.c, &req, cb, &res), 0);
	run_until(&e, 1);
	assert_int_equal(res.status, 0);
	assert_true(res.has_error);
	assert_false(res.timed_out);
	print_message("refused error: %s\n", res.error);
	assert_non_null(strstr(res.error, "connection refused"));
	assert_int_equal(res.body_len, 0);
	env_free(&e);
}

static void test_free_with_pending(void **state)
{
	struct env e;
	struct result res[5];

	(void)state;
	memset(res, 0, sizeof(res));
	env_init(&e, 0, 0);
	for (int i = 0; i < 3; i++)
		send_get(&e, &res[i], "/slow", 5000);
	pump(&e, 200); /* on the wire, waiting for the server */
	assert_int_equal(e.srv.slow_pending, 3);
	for (int i = 3; i < 5; i++)
		send_get(&e, &res[i], "/ok", 5000); /* not started yet */
	assert_int_equal(httpc_pending(e.c), 5);
	httpc_free(e.c);
	e.c = NULL;
	assert_int_equal(e.done, 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(res[i].calls, 1);
		assert_int_equal(res[i].status, 0);
		assert_string_equal(res[i].error, "client shutting down");
	}
	env_free(&e);
	for (int i = 0; i < 5; i++)
		assert_int_equal(res[i].calls, 1);
}

/* The first answer frees the client; the others fail at once, and the
 * client's memory outlives the callback that freed it (ASan checks). */
static void free_cb(void *arg, const struct httpc_response *r)
{
	struct result *res = arg;
	struct env *e = res->e;

	cb(arg, r);
	if (e->c != NULL) {
		struct httpc *c = e->c;

		e->c = NULL;
		httpc_free(c);
	}
}

static void test_free_in_callback(void **state)
{
	struct env e;
	struct result res[3];
	char u[128];

	(void)state;
	memset(res, 0, sizeof(res));
	env_init(&e, 0, 0);
	url(&e, u, sizeof(u), "/ok");
	res[0].e = &e;
	const struct httpc_request req = {.url = u, .timeout_ms = 2000};
	assert_int_equal(httpc_send(e.c, &req, free_cb, &res[0]), 0);
	send_get(&e, &res[1], "/slow", 5000);
	send_get(&e, &res[2], "/slow", 5000);
	run_until(&e, 3);
	pump(&e, 50);
	assert_int_equal(res[0].calls, 1);
	assert_int_equal(res[0].status, 200);
	for (int i = 1; i < 3; i++) {
		assert_int_equal(res[i].calls, 1);
		assert_string_equal(res[i].error, "client shutting down");
	}
	assert_null(e.c);
	env_free(&e);
}

/* A callback that starts the next request: the new transfer must start
 * even though curl had nothing running when the callback ran. */
struct chain {
	struct env *e;
	struct result res;
	int left;
	char url[128];
};

static void chain_cb(void *arg, const struct httpc_response *r)
{
	struct chain *ch = arg;

	cb(&ch->res, r);
	if (r->status == 200 && --ch->left > 0) {
		const struct httpc_request req = {.url = ch->url, .timeout_ms = 2000};

		assert_int_equal(httpc_send(ch->e->c, &req, chain_cb, ch), 0);
	}
}

static void test_send_from_callback(void **state)
{
	struct env e;
	struct chain ch;

	(void)state;
	env_init(&e, 0, 0);
	memset(&ch, 0, sizeof(ch));
	ch.e = &e;
	ch.res.e = &e;
	ch.left = 5;
	url(&e, ch.url, sizeof(ch.url), "/ok");
	const struct httpc_request req = {.url = ch.url, .timeout_ms = 2000};
	assert_int_equal(httpc_send(e.c, &req, chain_cb, &ch), 0);
	run_until(&e, 5);
	assert_int_equal(ch.res.calls, 5);
	assert_int_equal(ch.res.status, 200);
	env_free(&e);
}

/* resolve pins a name to an address: a name that no resolver knows
 * reaches the loopback server (the webhook daemon's SSRF guard relies on
 * it to connect to the address it checked). */
static void test_resolve_pin(void **state)
{
	struct env e;
	struct result res = {0};
	char u[128], pin[96];
	const char *const bad_pin[] = {"x:1:127.0.0.1\r\n", NULL};

	(void)state;
	env_init(&e, 0, 0);
	res.e = &e;
	snprintf(u, sizeof(u), "http://pinned.invalid:%d/ok", e.srv.port);
	snprintf(pin, sizeof(pin), "pinned.invalid:%d:127.0.0.1", e.srv.port);
	const char *const resolve[] = {pin, NULL};
	const struct httpc_request req = {
		.method = "GET", .url = u, .timeout_ms = 2000, .resolve = resolve};
	assert_int_equal(httpc_send(e.c, &req, cb, &res), 0);
	run_until(&e, 1);
	assert_int_equal(res.status, 200);
	assert_string_equal(res.body, "{\"ok\":true}");
	const struct httpc_request bad = {.url = u, .timeout_ms = 2000, .resolve = bad_pin};
	assert_int_equal(httpc_send(e.c, &bad, cb, &res), -1);
	env_free(&e);
}

/* check_addr sees the address curl connects to (after the pin), and a
 * refusal means no connection: the server sees nothing. Loopback only. */
struct seen {
	int calls;
	char addr[64];
	const char *answer;
};

static const char *check_addr(void *arg, const char *addr)
{
	struct seen *s = arg;
	s->calls++;
	snprintf(s->addr, sizeof(s->addr), "%s", addr);
	return s->answer;
}

static void test_check_addr(void **state)
{
	struct env e;
	struct result res = {0};
	struct seen seen = {0};
	char u[128], pin[96];

	(void)state;
	env_init(&e, 0, 0);
	res.e = &e;
	/* A name pinned to 127.0.0.1 (as if DNS had said so when connecting,
	 * whatever an earlier lookup said): refused before any byte is sent. */
	snprintf(u, sizeof(u), "http://rebound.invalid:%d/ok", e.srv.port);
	snprintf(pin, sizeof(pin), "rebound.invalid:%d:127.0.0.1", e.srv.port);
	const char *const resolve[] = {pin, NULL};
	seen.answer = "loopback";
	struct httpc_request req = {.url = u,
				    .timeout_ms = 2000,
				    .resolve = resolve,
				    .check_addr = check_addr,
				    .check_arg = &seen};
	assert_int_equal(httpc_send(e.c, &req, cb, &res), 0);
	run_until(&e, 1);
	assert_int_equal(res.status, 0);
	assert_true(res.addr_refused);
	assert_non_null(strstr(res.error, "address refused: 127.0.0.1 is loopback"));
	assert_int_equal(seen.calls, 1);
	assert_string_equal(seen.addr, "127.0.0.1");
	assert_int_equal(e.srv.requests, 0);

	/* A literal address is checked too (no pin involved). */
	struct result lit = {.e = &e};
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/ok", e.srv.port);
	req.resolve = NULL;
	assert_int_equal(httpc_send(e.c, &req, cb, &lit), 0);
	run_until(&e, 2);
	assert_true(lit.addr_refused);
	assert_int_equal(e.srv.requests, 0);

	/* Allowed: the request goes through, and the check saw the address. */
	struct result ok = {.e = &e};
	seen.answer = NULL;
	seen.addr[0] = '\0';
	req.resolve = resolve;
	snprintf(u, sizeof(u), "http://rebound.invalid:%d/ok", e.srv.port);
	assert_int_equal(httpc_send(e.c, &req, cb, &ok), 0);
	run_until(&e, 3);
	assert_int_equal(ok.status, 200);
	assert_false(ok.addr_refused);
	assert_string_equal(seen.addr, "127.0.0.1");
	assert_int_equal(e.srv.requests, 1);
	env_free(&e);
}

static void test_bad_requests(void **state)
{
	struct env e;
	struct result res = {0};
	char ok[128];
	const char *const crlf[] = {"X-A: 1\r\nX-Injected: 2", NULL};

	(void)state;
	env_init(&e, 0, 0);
	res.e = &e;
	url(&e, ok, sizeof(ok), "/ok");
	const struct httpc_request bad[] = {
		{.url = "ftp://127.0.0.1/file", .timeout_ms = 1000},
		{.url = "file:///etc/passwd", .timeout_ms = 1000},
		{.url = "not a url", .timeout_ms = 1000},
		{.url = NULL},
		{.method = "GE T", .url = ok},
		{.method = "", .url = ok},
		{.url = ok, .headers = crlf},
		{.method = "POST", .url = ok, .body = NULL, .body_len = 5},
		{.url = ok, .timeout_ms = -1},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(httpc_send(e.c, &bad[i], cb, &res), -1);
	assert_int_equal(httpc_send(e.c, &bad[0], NULL, &res), -1);
	assert_int_equal(httpc_send(NULL, &bad[0], cb, &res), -1);
	pump(&e, 50);
	assert_int_equal(res.calls, 0);
	assert_int_equal(httpc_pending(e.c), 0);
	assert_null(httpc_new(NULL, 0, 0));
	httpc_free(NULL);
	env_free(&e);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_ok),
		cmocka_unit_test(test_post_echo),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_503_retry_after),
		cmocka_unit_test(test_redirect_not_followed),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test(test_free_with_pending),
		cmocka_unit_test(test_free_in_callback),
		cmocka_unit_test(test_send_from_callback),
		cmocka_unit_test(test_resolve_pin),
		cmocka_unit_test(test_check_addr),
		cmocka_unit_test(test_bad_requests),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	metrics_shutdown();
	return rc;
}
