/* test_http.c - component tests of the HTTP server: real loop on 127.0.0.1, raw-socket client. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/http.h"
#include "common/log.h"
#include "common/metrics.h"

#define WATCHDOG_S 5
#define MAX_RESP   12

/* One parsed response, as the client thread saw it. */
struct resp {
	int status; /* -1 when nothing (complete) was read */
	char head[4096];
	char body[8192];
	size_t blen;
};

/* A client connection with a read buffer, so pipelined responses that
 * arrive in one recv are split correctly. */
struct conn {
	int fd;
	char buf[32768];
	size_t len;
};

/* Everything a test shares between the loop thread (server, handlers) and
 * the client thread (script). The test thread asserts after both stop. */
struct fx {
	struct event_base *base;
	struct http_server *srv;
	int port;
	struct event *watchdog;
	bool timed_out;
	pthread_t client;
	void (*script)(struct fx *);

	struct resp resp[MAX_RESP];
	int nresp;
	int keep_fd; /* a client socket the test closes itself */

	/* handler side (loop thread) */
	struct event *slow_timer;
	int slow_ms;
	struct http_req *held;
	struct event *auth_timer;
	struct http_req *auth_held;
	bool gone_at_reply;
	bool path_after_gone_ok;
	size_t inflight_before, inflight_after;
	atomic_int slow_done;
	atomic_int hung;
};

/* ---- handlers ---- */

/* GET /v1/quotes/{id}?x= */
static void h_get_quote(struct http_req *r, void *app)
{
	(void)app;
	http_reply_json(r, 200,
			json_pack("{s:s, s:s?, s:s, s:s, s:s}", "id", http_req_param(r, "id"), "x",
				  http_req_query(r, "x"), "route", http_req_route(r), "method",
				  http_req_method(r), "path", http_req_path(r)));
}

/* DELETE /v1/quotes/{id} */
static void h_delete_quote(struct http_req *r, void *app)
{
	(void)app;
	http_reply_json(r, 204, NULL);
}

/* POST /v1/quotes, POST /v1/payments: echoes the parsed body. */
static void h_echo(struct http_req *r, void *app)
{
	(void)app;
	http_reply_json(r, 201,
			json_pack("{s:O, s:s?}", "got", http_req_json(r), "user",
				  (const char *)http_req_user(r)));
}

/* GET /v1/payments?limit=&status= */
static void h_list(struct http_req *r, void *app)
{
	(void)app;
	http_reply_json(r, 200,
			json_pack("{s:s?, s:s?, s:s?}", "limit", http_req_query(r, "limit"),
				  "status", http_req_query(r, "status"), "id",
				  http_req_param(r, "id")));
}

/* GET /v1/events/{id}/attempts/{n} */
static void h_two_params(struct http_req *r, void *app)
{
	(void)app;
	http_reply_json(r, 200,
			json_pack("{s:s, s:s}", "id", http_req_param(r, "id"), "n",
				  http_req_param(r, "n")));
}

/* GET /slow: answered later from a timer. */
static void h_slow(struct http_req *r, void *app)
{
	struct fx *f = app;
	struct timeval tv = {0, f->slow_ms * 1000};

	f->held = r;
	evtimer_add(f->slow_timer, &tv);
}

static void on_slow_timer(evutil_socket_t fd, short what, void *arg)
{
	struct fx *f = arg;
	struct http_req *r = f->held;

	(void)fd;
	(void)what;
	f->held = NULL;
	f->gone_at_reply = http_req_gone(r);
	f->path_after_gone_ok =
		strcmp(http_req_path(r), "/slow") == 0 && strcmp(http_req_route(r), "/slow") == 0;
	f->inflight_before = http_server_inflight(f->srv);
	http_reply_json(r, 200, json_pack("{s:b}", "slow", 1));
	f->inflight_after = http_server_inflight(f->srv);
	atomic_fetch_add(&f->slow_done, 1);
}

/* GET /hang: never answered by the handler. */
static void h_hang(struct http_req *r, void *app)
{
	struct fx *f = app;

	f->held = r;
	atomic_store(&f->hung, 1);
}

/* GET /double: a buggy handler that replies twice. */
static void h_double(struct http_req *r, void *app)
{
	(void)app;
	http_reply_json(r, 200, json_pack("{s:i}", "n", 1));
	http_reply_json(r, 500, json_pack("{s:i}", "n", 2));
	http_reply_error(r, 500, "X", NULL, "again");
	http_req_add_header(r, "X-Late", "1");
}

/* GET / */
static void h_root(struct http_req *r, void *app)
{
	(void)app;
	http_reply_raw(r, 200, "text/plain", "ok", 2);
}

static char key_good[] = "key_good", key_later[] = "key_later";

static void auth_hook(struct http_req *r, void *app)
{
	struct fx *f = app;
	const char *a = http_req_header(r, "Authorization");
	struct timeval tv = {0, 50000};

	if (a != NULL && strcmp(a, "Bearer good") == 0) {
		http_req_set_user(r, key_good);
		http_req_proceed(r);
	} else if (a != NULL && strcmp(a, "Bearer later") == 0) {
		http_req_set_user(r, key_later);
		f->auth_held = r;
		evtimer_add(f->auth_timer, &tv);
	} else {
		http_reply_error(r, 401, "UNAUTHORIZED", NULL, "missing or invalid API key");
	}
}

static void on_auth_timer(evutil_socket_t fd, short what, void *arg)
{
	struct fx *f = arg;
	struct http_req *r = f->auth_held;

	(void)fd;
	(void)what;
	f->auth_held = NULL;
	http_req_proceed(r);
}

static const struct http_route routes[] = {
	{"GET", "/v1/quotes/{id}", h_get_quote, 0},
	{"DELETE", "/v1/quotes/{id}", h_delete_quote, 0},
	{"POST", "/v1/quotes", h_echo, HTTP_JSON_BODY},
	{"GET", "/v1/payments", h_list, 0},
	{"POST", "/v1/payments", h_echo, HTTP_JSON_BODY | HTTP_AUTH},
	{"GET", "/v1/events/{id}/attempts/{n}", h_two_params, 0},
	{"GET", "/slow", h_slow, 0},
	{"GET", "/hang", h_hang, 0},
	{"GET", "/double", h_double, 0},
	{"GET", "/", h_root, 0},
};

/* ---- client side (client thread: no cmocka asserts here) ---- */

static int conn_open(struct conn *c, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {3, 0};

	c->len = 0;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sends one request; body NULL sends no Content-Length. hdrs is extra
 * header lines, each ending in CRLF. */
static int send_req(struct conn *c, const char *method, const char *target, const char *hdrs,
		    const char *body, size_t blen)
{
	char head[2048];
	int n;

	if (body != NULL)
		n = snprintf(head, sizeof(head),
			     "%s %s HTTP/1.1\r\nHost: test\r\n%sContent-Length: %zu\r\n\r\n",
			     method, target, hdrs != NULL ? hdrs : "", blen);
	else
		n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: test\r\n%s\r\n", method,
			     target, hdrs != NULL ? hdrs : "");
	if (n < 0 || (size_t)n >= sizeof(head) || send_all(c->fd, head, (size_t)n) != 0)
		return -1;
	return body != NULL ? send_all(c->fd, body, blen) : 0;
}

/* Value of header name in a raw response head, copied into out. */
static bool head_value(const char *head, const char *name, char *out, size_t cap)
{
	size_t nlen = strlen(name);
	const char *line = strstr(head, "\r\n");

	while (line != NULL && line[2] != '\r') {
		const char *p = line + 2, *eol = strstr(p, "\r\n");

		if (eol == NULL)
			break;
		if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			size_t len;

			p += nlen + 1;
			p += strspn(p, " ");
			len = (size_t)(eol - p);
			if (len >= cap)
				len = cap - 1;
			memcpy(out, p, len);
			out[len] = '\0';
			return true;
		}
		line = eol;
	}
	return false;
}

static int conn_fill(struct conn *c)
{
	ssize_t n;

	if (c->len == sizeof(c->buf))
		return -1;
	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n <= 0)
		return -1;
	c->len += (size_t)n;
	return 0;
}

/* Reads one response into out. Returns 0 or -1. */
static int read_resp(struct conn *c, struct resp *out)
{
	char *end, clen[32];
	size_t hlen, blen = 0;

	out->status = -1;
	out->head[0] = out->body[0] = '\0';
	out->blen = 0;
	while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
		if (conn_fill(c) != 0)
			return -1;
	hlen = (size_t)(end - c->buf) + 4;
	if (hlen >= sizeof(out->head))
		return -1;
	memcpy(out->head, c->buf, hlen);
	out->head[hlen] = '\0';
	if (head_value(out->head, "Content-Length", clen, sizeof(clen)))
		blen = strtoul(clen, NULL, 10);
	if (blen >= sizeof(out->body))
		return -1;
	while (c->len < hlen + blen)
		if (conn_fill(c) != 0)
			return -1;
	memcpy(out->body, c->buf + hlen, blen);
	out->body[blen] = '\0';
	out->blen = blen;
	memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
	c->len -= hlen + blen;
	if (sscanf(out->head, "HTTP/1.%*d %d", &out->status) != 1)
		out->status = -1;
	return 0;
}

/* One request and its response, recorded in the next f->resp slot. */
static void rt(struct fx *f, struct conn *c, const char *method, const char *target,
	       const char *hdrs, const char *body, size_t blen)
{
	struct resp *out = &f->resp[f->nresp++];

	out->status = -1;
	if (send_req(c, method, target, hdrs, body, blen) == 0)
		(void)read_resp(c, out);
}

static void wait_flag(atomic_int *flag, int want)
{
	for (int i = 0; i < 300 && atomic_load(flag) < want; i++)
		usleep(10000);
}

static void *client_main(void *arg)
{
	struct fx *f = arg;

	f->script(f);
	event_base_loopbreak(f->base);
	return NULL;
}

/* ---- fixture ---- */

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	struct fx *f = arg;

	(void)fd;
	(void)what;
	f->timed_out = true;
	event_base_loopbreak(f->base);
}

static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->keep_fd = -1;
	f->slow_ms = 100;
	f->base = event_base_new();
	assert_non_null(f->base);
	f->srv = http_server_new(f->base, routes, sizeof(routes) / sizeof(routes[0]), f);
	assert_non_null(f->srv);
	http_server_set_auth(f->srv, auth_hook);
	f->port = free_port();
	assert_true(f->port > 0);
	assert_int_equal(http_server_listen(f->srv, "127.0.0.1", f->port, false), 0);
	f->watchdog = evtimer_new(f->base, on_watchdog, f);
	f->slow_timer = evtimer_new(f->base, on_slow_timer, f);
	f->auth_timer = evtimer_new(f->base, on_auth_timer, f);
	assert_non_null(f->watchdog);
	assert_non_null(f->slow_timer);
	assert_non_null(f->auth_timer);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	http_server_free(f->srv);
	if (f->keep_fd >= 0)
		close(f->keep_fd);
	event_free(f->watchdog);
	event_free(f->slow_timer);
	event_free(f->auth_timer);
	event_base_free(f->base);
	free(f);
	return 0;
}

/* Runs script on a client thread while this thread runs the loop; fails
 * if the whole exchange takes longer than WATCHDOG_S. */
static void fx_run(struct fx *f, void (*script)(struct fx *))
{
	struct timeval tv = {WATCHDOG_S, 0};

	f->script = script;
	evtimer_add(f->watchdog, &tv);
	assert_int_equal(pthread_create(&f->client, NULL, client_main, f), 0);
	event_base_dispatch(f->base);
	assert_int_equal(pthread_join(f->client, NULL), 0);
	evtimer_del(f->watchdog);
	if (f->timed_out)
		fail_msg("watchdog: no progress within %d s", WATCHDOG_S);
}

/* ---- assertion helpers (test thread) ---- */

static json_t *body_json(const struct resp *r)
{
	json_error_t e;
	json_t *v = json_loadb(r->body, r->blen, 0, &e);

	if (v == NULL)
		fail_msg("response body is not JSON: %s", r->body);
	return v;
}

static void assert_header(const struct resp *r, const char *name, const char *want)
{
	char v[512];

	if (!head_value(r->head, name, v, sizeof(v)))
		fail_msg("missing header %s in:\n%s", name, r->head);
	assert_string_equal(v, want);
}

/* Status, JSON content type, error code and (optionally) message. */
static void assert_error(const struct resp *r, int status, const char *code, const char *msg)
{
	json_t *v;

	assert_int_equal(r->status, status);
	assert_header(r, "Content-Type", "application/json");
	v = body_json(r);
	assert_string_equal(json_string_value(json_object_get(json_object_get(v, "error"), "code")),
			    code);
	if (msg != NULL)
		assert_string_equal(
			json_string_value(json_object_get(json_object_get(v, "error"), "message")),
			msg);
	json_decref(v);
}

static const char *jstr(json_t *v, const char *key)
{
	return json_string_value(json_object_get(v, key));
}

static bool is_generated_id(const char *s)
{
	if (strncmp(s, "req_", 4) != 0 || strlen(s) != 28)
		return false;
	for (s += 4; *s != '\0'; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/* Value of one exposition line ("name{labels}"), or -1 when absent. */
static long long metric_value(const char *series)
{
	struct evbuffer *b = evbuffer_new();
	long long v = -1;
	size_t slen = strlen(series);
	char *text, *line;

	assert_non_null(b);
	assert_int_equal(metrics_render(b), 0);
	evbuffer_add(b, "", 1);
	text = (char *)evbuffer_pullup(b, -1);
	for (line = text; line != NULL && *line != '\0';) {
		if (strncmp(line, series, slen) == 0 && line[slen] == ' ') {
			v = strtoll(line + slen + 1, NULL, 10);
			break;
		}
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	evbuffer_free(b);
	return v;
}

/* ---- tests ---- */

static void script_routing(struct fx *f)
{
	struct conn c;

	if (conn_open(&c, f->port) != 0)
		return;
	/* All on one keep-alive connection. */
	rt(f, &c, "GET", "/v1/quotes/q%201?x=a+b", NULL, NULL, 0);
	rt(f, &c, "GET", "/v1/events/evt_1/attempts/3", NULL, NULL, 0);
	rt(f, &c, "GET", "/", NULL, NULL, 0);
	rt(f, &c, "DELETE", "/v1/quotes/q1", NULL, NULL, 0);
	rt(f, &c, "GET", "/v1/payments?limit=5&status=pending", NULL, NULL, 0);
	rt(f, &c, "GET", "/v1/payments", NULL, NULL, 0);
	conn_close(&c);
}

static void test_routing(void **state)
{
	struct fx *f = *state;
	long long before = metric_value("rampart_http_requests_total{route=\"/v1/quotes/{id}\","
					"method=\"GET\",code=\"200\"}");
	json_t *v;

	fx_run(f, script_routing);
	assert_int_equal(f->nresp, 6);

	assert_int_equal(f->resp[0].status, 200);
	assert_header(&f->resp[0], "Content-Type", "application/json");
	v = body_json(&f->resp[0]);
	assert_string_equal(jstr(v, "id"), "q 1");
	assert_string_equal(jstr(v, "x"), "a b");
	assert_string_equal(jstr(v, "route"), "/v1/quotes/{id}");
	assert_string_equal(jstr(v, "method"), "GET");
	assert_string_equal(jstr(v, "path"), "/v1/quotes/q%201");
	json_decref(v);

	assert_int_equal(f->resp[1].status, 200);
	v = body_json(&f->resp[1]);
	assert_string_equal(jstr(v, "id"), "evt_1");
	assert_string_equal(jstr(v, "n"), "3");
	json_decref(v);

	assert_int_equal(f->resp[2].status, 200);
	assert_header(&f->resp[2], "Content-Type", "text/plain");
	assert_string_equal(f->resp[2].body, "ok");

	assert_int_equal(f->resp[3].status, 204);
	assert_int_equal(f->resp[3].blen, 0);

	assert_int_equal(f->resp[4].status, 200);
	v = body_json(&f->resp[4]);
	assert_string_equal(jstr(v, "limit"), "5");
	assert_string_equal(jstr(v, "status"), "pending");
	assert_true(json_is_null(json_object_get(v, "id")));
	json_decref(v);

	assert_int_equal(f->resp[5].status, 200);
	v = body_json(&f->resp[5]);
	assert_true(json_is_null(json_object_get(v, "limit")));
	json_decref(v);

	/* Per-route metrics. */
	assert_int_equal(metric_value("rampart_http_requests_total{route=\"/v1/quotes/{id}\","
				      "method=\"GET\",code=\"200\"}"),
			 (before < 0 ? 0 : before) + 1);
	assert_true(metric_value("rampart_http_requests_total{route=\"/v1/quotes/{id}\","
				 "method=\"DELETE\",code=\"204\"}") >= 1);
	assert_true(metric_value("rampart_http_request_duration_seconds_count{route=\"/v1/"
				 "payments\"}") >= 2);
	assert_int_equal(http_server_inflight(f->srv), 0);
}

static void script_not_found(struct fx *f)
{
	struct conn c;
	char deep[64];

	for (int i = 0; i < 20; i++)
		memcpy(deep + 2 * i, "/a", 2);
	deep[40] = '\0';
	if (conn_open(&c, f->port) != 0)
		return;
	rt(f, &c, "GET", "/x", NULL, NULL, 0);
	rt(f, &c, "GET", "/v1/quotes/", NULL, NULL, 0);
	rt(f, &c, "GET", "/v1/quotes/abc/", NULL, NULL, 0);
	rt(f, &c, "GET", "/v1/payments/", NULL, NULL, 0);
	rt(f, &c, "GET", deep, NULL, NULL, 0);
	rt(f, &c, "GET", "/v1/quotes//", NULL, NULL, 0);
	conn_close(&c);
}

static void test_not_found(void **state)
{
	struct fx *f = *state;

	fx_run(f, script_not_found);
	assert_int_equal(f->nresp, 6);
	assert_int_equal(f->resp[0].status, 404);
	assert_header(&f->resp[0], "Content-Type", "application/json");
	assert_string_equal(
		f->resp[0].body,
		"{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"no route for GET /x\"}}");
	assert_error(&f->resp[1], 404, "NOT_FOUND", "no route for GET /v1/quotes/");
	for (int i = 2; i < 6; i++)
		assert_error(&f->resp[i], 404, "NOT_FOUND", NULL);
	assert_true(metric_value("rampart_http_requests_total{route=\"-\",method=\"GET\","
				 "code=\"404\"}") >= 6);
}

static void script_method(struct fx *f)
{
	struct conn c;

	if (conn_open(&c, f->port) != 0)
		return;
	rt(f, &c, "PUT", "/v1/payments", NULL, "{}", 2);
	rt(f, &c, "POST", "/v1/quotes/q1", NULL, "{}", 2);
	rt(f, &c, "GET", "/v1/quotes", NULL, NULL, 0);
	rt(f, &c, "OPTIONS", "/v1/quotes/q1", NULL, NULL, 0);
	conn_close(&c);
}

static void test_method_not_allowed(void **state)
{
	struct fx *f = *state;

	fx_run(f, script_method);
	assert_int_equal(f->nresp, 4);
	assert_error(&f->resp[0], 405, "METHOD_NOT_ALLOWED", NULL);
	assert_header(&f->resp[0], "Allow", "GET, POST");
	assert_error(&f->resp[1], 405, "METHOD_NOT_ALLOWED", NULL);
	assert_header(&f->resp[1], "Allow", "GET, DELETE");
	assert_error(&f->resp[2], 405, "METHOD_NOT_ALLOWED", NULL);
	assert_header(&f->resp[2], "Allow", "POST");
	assert_error(&f->resp[3], 405, "METHOD_NOT_ALLOWED", NULL);
}

static void script_json_body(struct fx *f)
{
	static const char json_ct[] = "Content-Type: application/json\r\n";
	const size_t big = 70 * 1024;
	char *body = malloc(big);
	struct conn c;

	if (body == NULL || conn_open(&c, f->port) != 0) {
		free(body);
		return;
	}
	rt(f, &c, "POST", "/v1/quotes", "Content-Type: text/plain\r\n", "{}", 2);
	rt(f, &c, "POST", "/v1/quotes", NULL, "{}", 2);
	rt(f, &c, "POST", "/v1/quotes", "Content-Type: Application/JSON; charset=utf-8\r\n",
	   "{\"amount\":5}", 12);
	/* 70 KiB of valid JSON: rejected for its size alone. */
	memset(body, ' ', big);
	body[0] = '{';
	body[big - 1] = '}';
	rt(f, &c, "POST", "/v1/quotes", json_ct, body, big);
	rt(f, &c, "POST", "/v1/quotes", json_ct, "{bad", 4);
	rt(f, &c, "POST", "/v1/quotes", json_ct, "[1]", 3);
	rt(f, &c, "POST", "/v1/quotes", "Content-Type: application/jsonx\r\n", "{}", 2);
	/* Exactly the limit is accepted. */
	memset(body, ' ', HTTP_MAX_BODY);
	body[0] = '{';
	body[HTTP_MAX_BODY - 1] = '}';
	rt(f, &c, "POST", "/v1/quotes", json_ct, body, HTTP_MAX_BODY);
	conn_close(&c);
	free(body);
}

static void test_json_body(void **state)
{
	struct fx *f = *state;
	json_t *v;

	fx_run(f, script_json_body);
	assert_int_equal(f->nresp, 8);
	assert_error(&f->resp[0], 415, "UNSUPPORTED_MEDIA_TYPE", NULL);
	assert_error(&f->resp[1], 415, "UNSUPPORTED_MEDIA_TYPE", NULL);

	assert_int_equal(f->resp[2].status, 201);
	v = body_json(&f->resp[2]);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "got"), "amount")),
			 5);
	assert_true(json_is_null(json_object_get(v, "user")));
	json_decref(v);

	assert_error(&f->resp[3], 413, "BODY_TOO_LARGE", NULL);
	assert_error(&f->resp[4], 400, "INVALID_JSON", NULL);
	assert_error(&f->resp[5], 400, "INVALID_REQUEST", NULL);
	assert_error(&f->resp[6], 415, "UNSUPPORTED_MEDIA_TYPE", NULL);
	assert_int_equal(f->resp[7].status, 201);
}

static void script_request_id(struct fx *f)
{
	char hdr[256], id128[129];
	struct conn c;

	memset(id128, 'k', 128);
	id128[128] = '\0';
	if (conn_open(&c, f->port) != 0)
		return;
	rt(f, &c, "GET", "/v1/quotes/a", "X-Request-Id: abc-123_XYZ\r\n", NULL, 0);
	rt(f, &c, "GET", "/v1/quotes/a", NULL, NULL, 0);
	rt(f, &c, "GET", "/v1/quotes/a", "X-Request-Id: has space\r\n", NULL, 0);
	snprintf(hdr, sizeof(hdr), "X-Request-Id: %s\r\n", id128);
	rt(f, &c, "GET", "/v1/quotes/a", hdr, NULL, 0);
	snprintf(hdr, sizeof(hdr), "X-Request-Id: %sk\r\n", id128);
	rt(f, &c, "GET", "/v1/quotes/a", hdr, NULL, 0);
	rt(f, &c, "GET", "/nowhere", "X-Request-Id: e404\r\n", NULL, 0);
	rt(f, &c, "GET", "/nowhere", NULL, NULL, 0);
	conn_close(&c);
}

static void test_request_id(void **state)
{
	struct fx *f = *state;
	char a[200], b[200];

	fx_run(f, script_request_id);
	assert_int_equal(f->nresp, 7);
	for (int i = 0; i < 7; i++)
		assert_true(head_value(f->resp[i].head, "X-Request-Id", a, sizeof(a)));
	assert_header(&f->resp[0], "X-Request-Id", "abc-123_XYZ");

	assert_true(head_value(f->resp[1].head, "X-Request-Id", a, sizeof(a)));
	assert_true(is_generated_id(a));
	assert_true(head_value(f->resp[2].head, "X-Request-Id", b, sizeof(b)));
	assert_true(is_generated_id(b));
	assert_string_not_equal(a, b);

	assert_true(head_value(f->resp[3].head, "X-Request-Id", a, sizeof(a)));
	assert_int_equal(strlen(a), 128);
	assert_true(head_value(f->resp[4].head, "X-Request-Id", a, sizeof(a)));
	assert_true(is_generated_id(a));

	assert_error(&f->resp[5], 404, "NOT_FOUND", NULL);
	assert_header(&f->resp[5], "X-Request-Id", "e404");
	assert_true(head_value(f->resp[6].head, "X-Request-Id", a, sizeof(a)));
	assert_true(is_generated_id(a));
}

static void script_auth(struct fx *f)
{
	static const char json_ct[] = "Content-Type: application/json\r\n";
	struct conn c;

	if (conn_open(&c, f->port) != 0)
		return;
	rt(f, &c, "POST", "/v1/payments", json_ct, "{}", 2);
	/* Authentication comes before the body checks. */
	rt(f, &c, "POST", "/v1/payments", "Content-Type: text/plain\r\n", "x", 1);
	rt(f, &c, "POST", "/v1/payments",
	   "Authorization: Bearer good\r\nContent-Type: "
	   "application/json\r\n",
	   "{\"a\":1}", 7);
	rt(f, &c, "POST", "/v1/payments",
	   "Authorization: Bearer later\r\nContent-Type: "
	   "application/json\r\n",
	   "{\"a\":2}", 7);
	rt(f, &c, "POST", "/v1/payments",
	   "Authorization: Bearer good\r\nContent-Type: "
	   "text/plain\r\n",
	   "{}", 2);
	rt(f, &c, "POST", "/v1/payments",
	   "Authorization: Bearer later\r\nContent-Type: "
	   "application/json\r\n",
	   "{oops", 5);
	conn_close(&c);
}

static void test_auth(void **state)
{
	struct fx *f = *state;
	json_t *v;

	fx_run(f, script_auth);
	assert_int_equal(f->nresp, 6);
	assert_error(&f->resp[0], 401, "UNAUTHORIZED", NULL);
	assert_error(&f->resp[1], 401, "UNAUTHORIZED", NULL);

	assert_int_equal(f->resp[2].status, 201);
	v = body_json(&f->resp[2]);
	assert_string_equal(jstr(v, "user"), "key_good");
	json_decref(v);

	/* Proceeded from a timer after the hook returned. */
	assert_int_equal(f->resp[3].status, 201);
	v = body_json(&f->resp[3]);
	assert_string_equal(jstr(v, "user"), "key_later");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "got"), "a")), 2);
	json_decref(v);

	assert_error(&f->resp[4], 415, "UNSUPPORTED_MEDIA_TYPE", NULL);
	assert_error(&f->resp[5], 400, "INVALID_JSON", NULL);
}

static void script_async(struct fx *f)
{
	struct conn c;

	if (conn_open(&c, f->port) != 0)
		return;
	rt(f, &c, "GET", "/slow", "X-Request-Id: slow-1\r\n", NULL, 0);
	/* The connection reads again after a late reply. */
	rt(f, &c, "GET", "/v1/quotes/after", NULL, NULL, 0);
	conn_close(&c);
}

static void test_async_reply(void **state)
{
	struct fx *f = *state;
	json_t *v;

	fx_run(f, script_async);
	assert_int_equal(f->nresp, 2);
	assert_int_equal(f->resp[0].status, 200);
	assert_header(&f->resp[0], "X-Request-Id", "slow-1");
	v = body_json(&f->resp[0]);
	assert_true(json_is_true(json_object_get(v, "slow")));
	json_decref(v);
	assert_false(f->gone_at_reply);
	assert_int_equal(f->inflight_before, 1);
	/* Answered but still being written: a drain must keep waiting. */
	assert_int_equal(f->inflight_after, 1);
	assert_int_equal(f->resp[1].status, 200);
	assert_int_equal(http_server_inflight(f->srv), 0);
}

static void script_gone(struct fx *f)
{
	struct conn c;

	if (conn_open(&c, f->port) != 0)
		return;
	if (send_req(&c, "GET", "/slow", NULL, NULL, 0) != 0)
		return;
	usleep(50000);
	conn_close(&c);
	wait_flag(&f->slow_done, 1);
	/* The server still serves others. */
	if (conn_open(&c, f->port) != 0)
		return;
	rt(f, &c, "GET", "/v1/quotes/still", NULL, NULL, 0);
	conn_close(&c);
}

static void test_client_gone(void **state)
{
	struct fx *f = *state;
	long long before = metric_value("rampart_http_replies_dropped_total");

	f->slow_ms = 300;
	fx_run(f, script_gone);
	assert_int_equal(atomic_load(&f->slow_done), 1);
	assert_true(f->gone_at_reply);
	assert_true(f->path_after_gone_ok);
	assert_int_equal(f->inflight_before, 1);
	assert_int_equal(f->inflight_after, 0); /* dropped: nothing to write */
	assert_int_equal(metric_value("rampart_http_replies_dropped_total"),
			 (before < 0 ? 0 : before) + 1);
	assert_int_equal(f->nresp, 1);
	assert_int_equal(f->resp[0].status, 200);
}

static void script_pipelined(struct fx *f)
{
	static const char two[] = "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
				  "GET /v1/quotes/p3 HTTP/1.1\r\nHost: t\r\n\r\n";
	struct conn c;

	if (conn_open(&c, f->port) != 0)
		return;
	/* The second request arrives while the first waits for its timer. */
	if (send_req(&c, "GET", "/slow", NULL, NULL, 0) != 0)
		return;
	usleep(30000);
	if (send_req(&c, "GET", "/v1/quotes/p2", NULL, NULL, 0) != 0)
		return;
	(void)read_resp(&c, &f->resp[f->nresp++]);
	(void)read_resp(&c, &f->resp[f->nresp++]);
	/* Both in one segment: evhttp has the second already buffered. */
	if (send_all(c.fd, two, sizeof(two) - 1) != 0)
		return;
	(void)read_resp(&c, &f->resp[f->nresp++]);
	(void)read_resp(&c, &f->resp[f->nresp++]);
	conn_close(&c);
}

static void test_pipelined(void **state)
{
	struct fx *f = *state;
	json_t *v;

	fx_run(f, script_pipelined);
	assert_int_equal(f->nresp, 4);
	for (int i = 0; i < 4; i += 2) {
		assert_int_equal(f->resp[i].status, 200);
		v = body_json(&f->resp[i]);
		assert_true(json_is_true(json_object_get(v, "slow")));
		json_decref(v);
		assert_int_equal(f->resp[i + 1].status, 200);
		v = body_json(&f->resp[i + 1]);
		assert_string_equal(jstr(v, "id"), i == 0 ? "p2" : "p3");
		json_decref(v);
	}
	assert_int_equal(atomic_load(&f->slow_done), 2);
}

static void script_double(struct fx *f)
{
	struct conn c;

	if (conn_open(&c, f->port) != 0)
		return;
	rt(f, &c, "GET", "/double", NULL, NULL, 0);
	rt(f, &c, "GET", "/v1/quotes/next", NULL, NULL, 0);
	conn_close(&c);
}

static void test_double_reply(void **state)
{
	struct fx *f = *state;

	fx_run(f, script_double);
	assert_int_equal(f->nresp, 2);
	assert_int_equal(f->resp[0].status, 200);
	assert_string_equal(f->resp[0].body, "{\"n\":1}");
	assert_int_equal(f->resp[1].status, 200);
	assert_int_equal(http_server_inflight(f->srv), 0);
}

static void script_hang(struct fx *f)
{
	struct conn c;

	if (conn_open(&c, f->port) != 0)
		return;
	if (send_req(&c, "GET", "/hang?q=1", "X-Request-Id: hang-1\r\n", NULL, 0) != 0)
		return;
	wait_flag(&f->hung, 1);
	f->keep_fd = c.fd; /* stays open until after http_server_free */
}

static void test_server_free_outstanding(void **state)
{
	struct fx *f = *state;
	struct http_req *r;

	fx_run(f, script_hang);
	assert_int_equal(atomic_load(&f->hung), 1);
	r = f->held;
	assert_non_null(r);
	assert_int_equal(http_server_inflight(f->srv), 1);
	assert_false(http_req_gone(r));

	http_server_free(f->srv);
	f->srv = NULL;
	/* The context outlives the server until its reply. */
	assert_true(http_req_gone(r));
	assert_string_equal(http_req_path(r), "/hang");
	assert_string_equal(http_req_route(r), "/hang");
	assert_string_equal(http_req_id(r), "hang-1");
	assert_string_equal(http_req_query(r, "q"), "1");
	assert_null(http_req_header(r, "Host"));
	http_reply_json(r, 200, json_object()); /* dropped, context freed */
	f->held = NULL;
}

static void test_listen(void **state)
{
	struct fx *f = *state;
	struct http_server *a, *b, *c;
	int port = free_port();

	(void)f;
	a = http_server_new(f->base, routes, 1, NULL);
	b = http_server_new(f->base, routes, 1, NULL);
	c = http_server_new(f->base, routes, 1, NULL);
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_int_equal(http_server_listen(a, "127.0.0.1", port, true), 0);
	assert_int_equal(http_server_listen(b, "127.0.0.1", port, true), 0);
	assert_int_equal(http_server_listen(c, "127.0.0.1", port, false), -1);
	assert_int_equal(http_server_listen(c, "127.0.0.1", 0, false), -1);
	assert_int_equal(http_server_listen(c, "localhost", port, false), -1);
	http_server_stop_accepting(a);
	http_server_stop_accepting(b);
	/* The port is free again once both listeners are gone. */
	assert_int_equal(http_server_listen(a, "127.0.0.1", port, false), 0);
	http_server_free(a);
	http_server_free(b);
	http_server_free(c);
	http_server_free(NULL);
}

static void test_bad_routes(void **state)
{
	static const struct http_route bad1[] = {{"FETCH", "/x", h_root, 0}};
	static const struct http_route bad2[] = {{"GET", "x", h_root, 0}};
	static const struct http_route bad3[] = {{"GET", "/a/{id", h_root, 0}};
	static const struct http_route bad4[] = {{"GET", "/{a}/{b}/{c}/{d}/{e}", h_root, 0}};
	static const struct http_route bad5[] = {{"GET", "/a/{}", h_root, 0}};
	struct fx *f = *state;

	assert_null(http_server_new(f->base, bad1, 1, NULL));
	assert_null(http_server_new(f->base, bad2, 1, NULL));
	assert_null(http_server_new(f->base, bad3, 1, NULL));
	assert_null(http_server_new(f->base, bad4, 1, NULL));
	assert_null(http_server_new(f->base, bad5, 1, NULL));
}

static int group_teardown(void **state)
{
	(void)state;
	metrics_shutdown();
	libevent_global_shutdown();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_routing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_method_not_allowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_double_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_free_outstanding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_routes, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	log_init("test_http", LOG_INFO, true);
	if (evthread_use_pthreads() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
