/* fuzz_http.c - the HTTP server layer (common/http.c over evhttp) end to
 * end: the input is written as raw bytes on a loopback TCP connection to
 * the server (listening on an ephemeral port), with routes shaped like the api's (path parameters,
 * a JSON body behind the auth hook, query strings, error replies that echo client bytes).
 * Invariants: no answer is a 5xx; every answer starts with an HTTP/1.x status line; every JSON
 * answer with a body parses as JSON (client bytes in error messages are escaped, invalid UTF-8
 * replaced). */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/http.h"
#include "common/log.h"
#include "fuzz.h"

static struct event_base *base;
static struct http_server *srv;
static int lfd = -1;
static struct sockaddr_in laddr;

static void auth(struct http_req *r, void *app)
{
	const char *h = http_req_header(r, "Authorization");
	(void)app;
	if (h == NULL || strcmp(h, "Bearer k") != 0) {
		http_reply_error(r, 401, "UNAUTHORIZED", NULL, "no key %s", h ? h : "");
		return;
	}
	http_req_proceed(r);
}

static void t_post(struct http_req *r, void *app)
{
	(void)app;
	http_reply_json(r, 201, json_incref(http_req_json(r)));
}

static void t_get(struct http_req *r, void *app)
{
	const char *q = http_req_query(r, "q");
	(void)app;
	if (http_req_query_malformed(r)) {
		http_reply_error(r, 400, "INVALID_REQUEST", NULL, "malformed query %s",
				 http_req_path(r));
		return;
	}
	http_req_add_header(r, "X-Echo-Id", http_req_id(r));
	http_reply_error(r, 404, "NOT_FOUND", "id", "no %s (q=%s, x=%s)", http_req_param(r, "id"),
			 q ? q : "", http_req_header(r, "X-Custom") ?: "");
}

static void t_delete(struct http_req *r, void *app)
{
	(void)app;
	FUZZ_CHECK(http_req_param(r, "id") != NULL && http_req_param(r, "sub") != NULL);
	http_reply_json(r, 204, NULL);
}

static void metrics(struct http_req *r, void *app)
{
	(void)app;
	http_reply_metrics(r);
}

static const struct http_route routes[] = {
	{"POST", "/t/{id}", t_post, HTTP_AUTH | HTTP_JSON_BODY},
	{"GET", "/t/{id}", t_get, 0},
	{"DELETE", "/t/{id}/{sub}", t_delete, HTTP_AUTH},
	{"GET", "/metrics", metrics, 0},
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	socklen_t len = sizeof(laddr);
	(void)argc;
	(void)argv;
	log_init("fuzz", LOG_ERROR, true);
	base = event_base_new();
	srv = http_server_new(base, routes, sizeof(routes) / sizeof(routes[0]), NULL);
	FUZZ_CHECK(base != NULL && srv != NULL);
	http_server_set_auth(srv, auth);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&laddr, 0, sizeof(laddr));
	laddr.sin_family = AF_INET;
	laddr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	FUZZ_CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&laddr, sizeof(laddr)) == 0 &&
		   listen(lfd, 16) == 0 && getsockname(lfd, (struct sockaddr *)&laddr, &len) == 0);
	FUZZ_CHECK(fcntl(lfd, F_SETFL, O_NONBLOCK) == 0 && http_server_listen_fd(srv, lfd) == 0);
	return 0;
}

/* Checks every answer in out[0..n). */
static void check_answers(const char *out, size_t n)
{
	size_t off = 0;
	while (off < n) {
		const char *p = out + off;
		size_t left = n - off;
		if (!(left >= 12 && memcmp(p, "HTTP/1.", 7) == 0))
			fprintf(stderr, "answer: %.*s\n", (int)(left < 400 ? left : 400), p);
		FUZZ_CHECK(left >= 12 &&
			   (memcmp(p, "HTTP/1.1 ", 9) == 0 || memcmp(p, "HTTP/1.0 ", 9) == 0));
		int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
		if (status >= 500)
			fprintf(stderr, "answer: %.*s\n", (int)(left < 400 ? left : 400), p);
		FUZZ_CHECK(status >= 100 && status < 500);
		const char *end = memmem(p, left, "\r\n\r\n", 4);
		if (end == NULL)
			return; /* cut short when we stopped reading */
		size_t head = (size_t)(end - p) + 4;
		const char *cl = memmem(p, head, "\r\nContent-Length: ", 18);
		bool json = memmem(p, head, "\r\nContent-Type: application/json", 32) != NULL;
		size_t blen = cl != NULL ? strtoul(cl + 18, NULL, 10) : left - head;
		off += head;
		/* A HEAD answer has a length but no body: the next answer follows. */
		if (blen > n - off || (n - off >= 7 && memcmp(out + off, "HTTP/1.", 7) == 0))
			continue;
		if (json && blen > 0) {
			json_error_t je;
			json_t *v = json_loadb(out + off, blen, JSON_DECODE_ANY, &je);
			if (v == NULL)
				fprintf(stderr, "not JSON: %.*s (%s)\n", (int)blen, out + off,
					je.text);
			FUZZ_CHECK(v != NULL);
			json_decref(v);
		}
		off += blen;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[1 << 20];
	size_t got = 0, sent = 0;
	bool shut = false, eof = false;
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	/* Closed with a reset: tens of thousands of runs a minute would
	 * otherwise run out of ephemeral ports in TIME_WAIT. */
	struct linger lg = {1, 0};
	FUZZ_CHECK(c >= 0 && setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0);
	int rc = connect(c, (struct sockaddr *)&laddr, sizeof(laddr));
	if (rc != 0 && errno == EINTR) {
		/* A signal (libFuzzer's timers) interrupted the blocking connect:
		 * the connection goes on; wait for it and take its outcome. */
		struct pollfd pw = {.fd = c, .events = POLLOUT};
		int err = 0;
		socklen_t len = sizeof(err);
		while (poll(&pw, 1, -1) < 0 && errno == EINTR)
			;
		rc = getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0 ? 0 : -1;
	}
	if (rc != 0) {
		perror("fuzz_http: connect");
		abort();
	}
	FUZZ_CHECK(fcntl(c, F_SETFL, O_NONBLOCK) == 0);
	for (int i = 0; i < 2000 && !eof; i++) {
		if (sent < size) {
			ssize_t w = send(c, data + sent, size - sent, MSG_NOSIGNAL);
			if (w > 0)
				sent += (size_t)w;
			else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				sent = size;
		}
		if (sent == size && !shut) {
			shutdown(c, SHUT_WR);
			shut = true;
		}
		event_base_loop(base, EVLOOP_NONBLOCK);
		for (;;) {
			char tmp[65536];
			ssize_t r = recv(c, tmp, sizeof(tmp), 0);
			if (r > 0) {
				size_t k = (size_t)r < sizeof(out) - got ? (size_t)r
									 : sizeof(out) - got;
				memcpy(out + got, tmp, k);
				got += k;
				continue;
			}
			if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
				eof = true;
			break;
		}
	}
	close(c);
	for (int i = 0; i < 4; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	check_answers(out, got);
	return 0;
}
