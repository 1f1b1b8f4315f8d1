/* httpc.c - asynchronous HTTP client: libcurl's multi interface driven by libevent. */
#include "common/httpc.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"

#define HTTPC_DEFAULT_MAX_RESPONSE (64 * 1024)
#define HTTPC_DEFAULT_TIMEOUT_MS   30000
#define HTTPC_MAX_CONNECT_MS	   3000
#define HTTPC_MAX_HEADER_BYTES	   (8 * 1024) /* kept response headers, packed */
#define HTTPC_MAX_METHOD	   32
#define HTTPC_REQ_MAGIC		   0x68747063u /* "httc": guards httpc_header() */

/* A growable byte buffer, always NUL-terminated once non-empty. */
struct hbuf {
	char *data;
	size_t len;
	size_t cap;
};

/* One request, from httpc_send until its callback has returned. It is the
 * easy handle's CURLOPT_PRIVATE; the response handed to the callback is
 * embedded so httpc_header() can find the headers from it. */
struct hreq {
	unsigned magic;
	TAILQ_ENTRY(hreq) link;
	CURL *easy;
	struct curl_slist *headers;
	struct curl_slist *resolve; /* CURLOPT_RESOLVE pins; curl reads them until cleanup */
	httpc_cb cb;
	void *arg;
	uint64_t start_us;
	size_t max_response;
	struct hbuf body;
	bool truncated;
	struct hbuf hdrs; /* "name\0value\0" pairs of the last response only */
	struct httpc_response resp;
	char errbuf[CURL_ERROR_SIZE];
	char err[CURL_ERROR_SIZE + 64];
	const char *(*check_addr)(void *check_arg, const char *addr);
	void *check_arg;
	char refused[128]; /* "<address> is <reason>" when check_addr refused */
};
TAILQ_HEAD(hreq_list, hreq);

/* A socket curl asked us to watch; its address is curl's socketp. */
struct hsock {
	LIST_ENTRY(hsock) link;
	struct event ev;
	bool added;
};
LIST_HEAD(hsock_list, hsock);

struct httpc {
	struct event_base *base;
	CURLM *multi;
	struct event timer; /* curl's single timeout */
	struct hreq_list reqs;
	size_t npending;
	struct hsock_list socks;
	/* > 0 while one of our event callbacks runs: a user callback may call
	 * httpc_free then, and the struct must outlive the callback. */
	int depth;
	bool closing;
	struct metric *m_ok, *m_error, *m_timeout;
};

/* ---- process-wide initialisation ---- */

static pthread_once_t httpc_once = PTHREAD_ONCE_INIT;
static CURLcode httpc_global_rc = CURLE_FAILED_INIT;

static void httpc_global_init(void)
{
	const curl_version_info_data *v;

	httpc_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	if (httpc_global_rc != CURLE_OK) {
		log_error("httpc: curl_global_init: %s", curl_easy_strerror(httpc_global_rc));
		return;
	}
	v = curl_version_info(CURLVERSION_NOW);
	if (v == NULL || !(v->features & CURL_VERSION_ASYNCHDNS))
		log_warn("httpc: libcurl %s resolves host names synchronously; "
			 "a lookup will block the event loop",
			 v != NULL ? v->version : "(unknown)");
}

/* ---- buffers ---- */

/* Appends n bytes, growing up to limit bytes of content (plus the NUL).
 * The caller has checked len + n <= limit. Returns 0 or -1 (no memory). */
static int hbuf_append(struct hbuf *b, const char *p, size_t n, size_t limit)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *d;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (cap > limit + 1)
			cap = limit + 1;
		d = realloc(b->data, cap);
		if (d == NULL)
			return -1;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

/* ---- curl data callbacks ---- */

/* Keeps the first max_response bytes; the rest is read and dropped. */
static size_t write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct hreq *r = arg;
	size_t len = size * n;
	size_t room = r->max_response - r->body.len;
	size_t take = len < room ? len : room;

	if (take < len)
		r->truncated = true;
	if (take > 0 && hbuf_append(&r->body, data, take, r->max_response) != 0)
		return 0; /* fails the transfer with CURLE_WRITE_ERROR */
	return len;
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* curl passes one whole header line per call, status lines included. A
 * status line starts a new response (after 100 Continue, a proxy's CONNECT
 * reply), so the headers kept so far are dropped. Lines past the byte
 * budget, obsolete folded lines and lines holding a NUL are ignored. */
static size_t header_cb(char *data, size_t size, size_t n, void *arg)
{
	struct hreq *r = arg;
	size_t total = size * n;
	const char *p = data, *end = data + total, *colon, *name_end, *value;

	if (total >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		r->hdrs.len = 0;
		return total;
	}
	while (end > p && is_space(end[-1]))
		end--;
	/* A NUL would break the packed name/value pairs. */
	if (end == p || *p == ' ' || *p == '\t' || memchr(p, '\0', (size_t)(end - p)) != NULL)
		return total;
	colon = memchr(p, ':', (size_t)(end - p));
	if (colon == NULL || colon == p)
		return total;
	name_end = colon;
	while (name_end > p && is_space(name_end[-1]))
		name_end--;
	value = colon + 1;
	while (value < end && is_space(*value))
		value++;

	size_t nlen = (size_t)(name_end - p), vlen = (size_t)(end - value);
	if (r->hdrs.len + nlen + vlen + 2 > HTTPC_MAX_HEADER_BYTES)
		return total;
	/* Each append writes a NUL after the bytes, which the next one keeps. */
	if (hbuf_append(&r->hdrs, p, nlen, HTTPC_MAX_HEADER_BYTES) != 0 ||
	    hbuf_append(&r->hdrs, "", 1, HTTPC_MAX_HEADER_BYTES) != 0 ||
	    hbuf_append(&r->hdrs, value, vlen, HTTPC_MAX_HEADER_BYTES) != 0 ||
	    hbuf_append(&r->hdrs, "", 1, HTTPC_MAX_HEADER_BYTES) != 0)
		return 0;
	return total;
}

const char *httpc_header(const struct httpc_response *resp, const char *name)
{
	const struct hreq *r;
	size_t off = 0;

	if (resp == NULL || name == NULL)
		return NULL;
	/* resp is the one embedded in a struct hreq (the pointer given to the
	 * callback); the magic catches a copy passed by mistake in most cases. */
	r = (const struct hreq *)(const void *)((const char *)resp - offsetof(struct hreq, resp));
	if (r->magic != HTTPC_REQ_MAGIC)
		return NULL;
	while (off < r->hdrs.len) {
		const char *n = r->hdrs.data + off;
		const char *v = n + strlen(n) + 1;

		if (strcasecmp(n, name) == 0)
			return v;
		off = (size_t)(v + strlen(v) + 1 - r->hdrs.data);
	}
	return NULL;
}

/* ---- completion ---- */

/* Frees a request that is no longer in the multi handle nor the list. */
static void hreq_free(struct hreq *r)
{
	if (r == NULL)
		return;
	if (r->easy != NULL)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	curl_slist_free_all(r->resolve);
	free(r->body.data);
	free(r->hdrs.data);
	r->magic = 0;
	free(r);
}

/* Takes r out of the client (list and multi handle) so that its callback
 * may do anything, httpc_free included. */
static void hreq_detach(struct httpc *c, struct hreq *r)
{
	TAILQ_REMOVE(&c->reqs, r, link);
	c->npending--;
	if (c->multi != NULL)
		(void)curl_multi_remove_handle(c->multi, r->easy);
}

/* "what: detail", what being stable enough to match on. */
static void describe_error(struct hreq *r, CURLcode rc)
{
	const char *what = "request failed";
	const char *detail = r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(rc);
	long oserr = 0;
	size_t len;

	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		what = "timeout";
		break;
	case CURLE_COULDNT_CONNECT:
		(void)curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &oserr);
		what = oserr == ECONNREFUSED ? "connection refused" : "connect failed";
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		what = "name resolution failed";
		break;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
		what = "tls error";
		break;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		what = "connection lost";
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
		what = "unsupported protocol";
		break;
	case CURLE_URL_MALFORMAT:
		what = "bad url";
		break;
	default:
		break;
	}
	snprintf(r->err, sizeof(r->err), "%s: %s", what, detail);
	len = strlen(r->err);
	while (len > 0 && is_space(r->err[len - 1]))
		r->err[--len] = '\0';
}

/* Runs r's callback once and frees r. r is already detached. */
static void hreq_answer(struct hreq *r)
{
	r->resp.body = r->body.data != NULL ? r->body.data : "";
	r->resp.body_len = r->body.len;
	r->resp.truncated = r->truncated;
	r->cb(r->arg, &r->resp);
	hreq_free(r);
}

/* A transfer curl reports as done: detach, describe, answer. */
static void hreq_done(struct httpc *c, struct hreq *r, CURLcode rc)
{
	long status = 0;
	curl_off_t total_us = 0;

	(void)curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	(void)curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME_T, &total_us);
	hreq_detach(c, r);
	r->resp.latency_ms = (long)(total_us / 1000);
	if (rc == CURLE_OK && status > 0) {
		r->resp.status = status;
		metric_inc(c->m_ok);
	} else {
		/* An incomplete exchange is not a response, whatever arrived. */
		if (rc == CURLE_OK)
			rc = CURLE_GOT_NOTHING;
		r->resp.status = 0;
		r->resp.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
		describe_error(r, rc);
		if (r->refused[0] != '\0') {
			snprintf(r->err, sizeof(r->err), "address refused: %s", r->refused);
			r->resp.addr_refused = true;
		}
		r->resp.error = r->err;
		r->hdrs.len = 0;
		metric_inc(r->resp.timed_out ? c->m_timeout : c->m_error);
	}
	hreq_answer(r);
}

/* Answers every transfer curl has finished. Stops if a callback frees the
 * client (the rest were answered by httpc_free). */
static void check_done(struct httpc *c)
{
	CURLMsg *msg;
	int left;

	while (!c->closing && (msg = curl_multi_info_read(c->multi, &left)) != NULL) {
		char *priv = NULL;
		CURLcode rc = msg->data.result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		/* msg dies with curl_multi_remove_handle; copy first. */
		(void)curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		if (priv == NULL)
			continue;
		hreq_done(c, (struct hreq *)(void *)priv, rc);
	}
}

/* ---- libevent <-> curl ---- */

/* One step of curl for fd (or its timeout), then the completions. */
static void httpc_drive(struct httpc *c, curl_socket_t fd, int action)
{
	int running = 0;
	CURLMcode mc;

	c->depth++;
	mc = curl_multi_socket_action(c->multi, fd, action, &running);
	if (mc != CURLM_OK)
		log_error("httpc: curl_multi_socket_action: %s", curl_multi_strerror(mc));
	check_done(c);
	/* Unlike multi-event.c, the timer is not deleted when running == 0: a
	 * callback may just have added a transfer and armed it. curl clears it
	 * with timeout -1 itself. */
	if (--c->depth == 0 && c->closing)
		free(c); /* httpc_free ran inside a callback and left us the struct */
}

static void sock_event_cb(evutil_socket_t fd, short events, void *arg)
{
	int action = 0;

	if (events & EV_READ)
		action |= CURL_CSELECT_IN;
	if (events & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	httpc_drive(arg, fd, action);
}

static void timer_event_cb(evutil_socket_t fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	httpc_drive(arg, CURL_SOCKET_TIMEOUT, 0);
}

static void hsock_free(struct httpc *c, struct hsock *s)
{
	(void)c;
	if (s->added)
		event_del(&s->ev);
	LIST_REMOVE(s, link);
	free(s);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl asks, replacing the
 * previous interest, or stop watching it. curl calls this before it closes
 * a socket, so an fd number reused later gets a fresh event. Returning -1
 * makes curl fail the transfers. */
static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct httpc *c = userp;
	struct hsock *s = socketp;
	short kind = EV_PERSIST;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL)
			hsock_free(c, s);
		return 0;
	}
	if (s == NULL) {
		s = calloc(1, sizeof(*s));
		if (s == NULL) {
			log_error("httpc: out of memory watching a socket");
			return -1;
		}
		LIST_INSERT_HEAD(&c->socks, s, link);
		if (curl_multi_assign(c->multi, fd, s) != CURLM_OK) {
			hsock_free(c, s);
			return -1;
		}
	} else if (s->added) {
		event_del(&s->ev); /* event_assign needs a non-pending event */
		s->added = false;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (!(kind & (EV_READ | EV_WRITE)))
		return 0;
	if (event_assign(&s->ev, c->base, fd, kind, sock_event_cb, c) != 0 ||
	    event_add(&s->ev, NULL) != 0) {
		log_error("httpc: cannot watch socket %d", (int)fd);
		return -1;
	}
	s->added = true;
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: (re)arm or clear the one timer. socket_action
 * must not be called from here, so even a 0 ms timeout goes via the loop -
 * which is also how a new transfer is first started. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct httpc *c = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(&c->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (evtimer_add(&c->timer, &tv) != 0) {
		log_error("httpc: cannot arm the timer");
		return -1;
	}
	return 0;
}

/* ---- the client ---- */

struct httpc *httpc_new(struct event_base *base, int max_conns, int max_host)
{
	struct httpc *c = NULL;

	if (base == NULL || max_conns < 0 || max_host < 0)
		return NULL;
	if (pthread_once(&httpc_once, httpc_global_init) != 0 || httpc_global_rc != CURLE_OK)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail;
	c->base = base;
	TAILQ_INIT(&c->reqs);
	LIST_INIT(&c->socks);
	if (evtimer_assign(&c->timer, base, timer_event_cb, c) != 0)
		goto fail;
	c->multi = curl_multi_init();
	if (c->multi == NULL)
		goto fail;
	if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)max_conns) !=
		    CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)max_host) != CURLM_OK)
		goto fail;
	/* Keep as many idle connections as may be open: curl's default cache
	 * (4 per transfer in progress) shrinks as a burst ends and closes
	 * connections the next burst must open again. */
	if (max_conns > 0 &&
	    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)max_conns) != CURLM_OK)
		goto fail;
	c->m_ok = metrics_counter("rampart_httpc_requests_total",
				  "Outgoing HTTP requests by outcome", "outcome=\"ok\"");
	c->m_error = metrics_counter("rampart_httpc_requests_total",
				     "Outgoing HTTP requests by outcome", "outcome=\"error\"");
	c->m_timeout = metrics_counter("rampart_httpc_requests_total",
				       "Outgoing HTTP requests by outcome", "outcome=\"timeout\"");
	return c;
fail:
	log_error("httpc: cannot create a client");
	if (c != NULL && c->multi != NULL)
		curl_multi_cleanup(c->multi);
	free(c);
	return NULL;
}

void httpc_free(struct httpc *c)
{
	struct hreq *r;
	struct hsock *s;

	if (c == NULL || c->closing)
		return;
	c->closing = true;
	while ((r = TAILQ_FIRST(&c->reqs)) != NULL) {
		hreq_detach(c, r);
		r->resp.status = 0;
		r->resp.error = "client shutting down";
		r->resp.latency_ms = (long)((clock_mono_us() - r->start_us) / 1000);
		r->hdrs.len = 0;
		metric_inc(c->m_error);
		hreq_answer(r);
	}
	/* Closes cached connections, telling sock_cb to drop their events. */
	curl_multi_cleanup(c->multi);
	c->multi = NULL;
	while ((s = LIST_FIRST(&c->socks)) != NULL)
		hsock_free(c, s);
	evtimer_del(&c->timer);
	if (c->depth == 0)
		free(c);
}

size_t httpc_pending(const struct httpc *c)
{
	return c != NULL ? c->npending : 0;
}

/* ---- starting a request ---- */

static bool method_ok(const char *m)
{
	size_t n = 0;

	for (; m[n] != '\0'; n++)
		if (!(m[n] >= 'A' && m[n] <= 'Z') && !(m[n] >= 'a' && m[n] <= 'z') && m[n] != '-' &&
		    m[n] != '_')
			return false;
	return n > 0 && n <= HTTPC_MAX_METHOD;
}

/* Only http:// and https:// URLs that curl can parse. */
static bool url_ok(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL;
	bool ok = false;

	if (u == NULL)
		return false;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK)
		ok = strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0;
	curl_free(scheme);
	curl_url_cleanup(u);
	return ok;
}

/* Why req cannot be sent, or NULL if it can. */
static const char *request_problem(const struct httpc_request *req, const char *method)
{
	if (req->url == NULL || !url_ok(req->url))
		return "url is not an http(s) URL";
	if (!method_ok(method))
		return "bad method";
	if (req->body == NULL && req->body_len > 0)
		return "body_len without body";
	if (req->body != NULL && strcmp(method, "HEAD") == 0)
		return "HEAD with a body";
	if (req->timeout_ms < 0)
		return "negative timeout";
	if (req->max_response > SIZE_MAX / 4)
		return "max_response too large";
	/* CR or LF in a line would inject headers. */
	for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++)
		if (strpbrk(req->headers[i], "\r\n") != NULL)
			return "CR or LF in a header";
	for (size_t i = 0; req->resolve != NULL && req->resolve[i] != NULL; i++)
		if (strpbrk(req->resolve[i], "\r\n") != NULL || req->resolve[i][0] == '-')
			return "bad resolve entry";
	return NULL;
}

/* Builds the header list: the caller's lines, then "Expect:" so that curl
 * never waits for a 100 Continue before sending a body, unless the caller
 * set Expect. Returns 0 or -1 (no memory). */
static int build_headers(struct hreq *r, const char *const *headers)
{
	bool has_expect = false;
	struct curl_slist *l;

	for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
		if (strncasecmp(headers[i], "expect:", 7) == 0)
			has_expect = true;
		l = curl_slist_append(r->headers, headers[i]);
		if (l == NULL)
			return -1;
		r->headers = l;
	}
	if (!has_expect) {
		l = curl_slist_append(r->headers, "Expect:");
		if (l == NULL)
			return -1;
		r->headers = l;
	}
	return 0;
}

/* CURLOPT_OPENSOCKETFUNCTION: curl is about to connect to address; the
 * request's check_addr decides first (DNS rebinding: the address checked is
 * the one connected to, whatever resolved it). */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	struct hreq *r = clientp;
	char text[INET6_ADDRSTRLEN] = "";
	const void *raw = NULL;

	(void)purpose;
	if (address->family == AF_INET)
		raw = &((const struct sockaddr_in *)(const void *)&address->addr)->sin_addr;
	else if (address->family == AF_INET6)
		raw = &((const struct sockaddr_in6 *)(const void *)&address->addr)->sin6_addr;
	if (raw == NULL || inet_ntop(address->family, raw, text, sizeof(text)) == NULL) {
		snprintf(r->refused, sizeof(r->refused), "an address of family %d is not allowed",
			 address->family);
		return CURL_SOCKET_BAD;
	}
	const char *problem = r->check_addr(r->check_arg, text);
	if (problem != NULL) {
		snprintf(r->refused, sizeof(r->refused), "%s is %s", text, problem);
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

#define SETOPT(easy, opt, val)                                          \
	do {                                                            \
		if (curl_easy_setopt((easy), (opt), (val)) != CURLE_OK) \
			goto fail;                                      \
	} while (0)

/* The method and body. A body is sent with any method; POST, PUT and
 * PATCH without one send Content-Length: 0. */
static int set_method(CURL *e, const char *method, const char *body, size_t body_len)
{
	bool post = strcmp(method, "POST") == 0;

	if (body != NULL || post || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0) {
		SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body != NULL ? body_len : 0));
		/* Size first: COPYPOSTFIELDS copies that many bytes. */
		SETOPT(e, CURLOPT_COPYPOSTFIELDS, body != NULL ? body : "");
		if (!post)
			SETOPT(e, CURLOPT_CUSTOMREQUEST, method);
	} else if (strcmp(method, "HEAD") == 0) {
		SETOPT(e, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") == 0) {
		SETOPT(e, CURLOPT_HTTPGET, 1L);
	} else {
		SETOPT(e, CURLOPT_CUSTOMREQUEST, method);
	}
	return 0;
fail:
	return -1;
}

int httpc_send(struct httpc *c, const struct httpc_request *req, httpc_cb cb, void *arg)
{
	struct hreq *r = NULL;
	const char *method, *problem;
	long timeout_ms, connect_ms;

	if (c == NULL || c->closing || req == NULL || cb == NULL)
		return -1;
	method = req->method != NULL ? req->method : "GET";
	problem = request_problem(req, method);
	if (problem != NULL) {
		/* The URL is not logged: it may carry credentials. */
		log_event(LOG_WARN, "httpc: request refused", LF_S("reason", problem));
		return -1;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		goto fail;
	r->magic = HTTPC_REQ_MAGIC;
	r->cb = cb;
	r->arg = arg;
	r->start_us = clock_mono_us();
	r->max_response = req->max_response > 0 ? req->max_response : HTTPC_DEFAULT_MAX_RESPONSE;
	timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : HTTPC_DEFAULT_TIMEOUT_MS;
	connect_ms = timeout_ms < HTTPC_MAX_CONNECT_MS ? timeout_ms : HTTPC_MAX_CONNECT_MS;
	if (build_headers(r, req->headers) != 0)
		goto fail;
	r->easy = curl_easy_init();
	if (r->easy == NULL)
		goto fail;
	SETOPT(r->easy, CURLOPT_URL, req->url);
#if LIBCURL_VERSION_NUM >= 0x075500
	SETOPT(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(r->easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	SETOPT(r->easy, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	SETOPT(r->easy, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (set_method(r->easy, method, req->body, req->body_len) != 0)
		goto fail;
	SETOPT(r->easy, CURLOPT_HTTPHEADER, r->headers);
	for (size_t i = 0; req->resolve != NULL && req->resolve[i] != NULL; i++) {
		struct curl_slist *l = curl_slist_append(r->resolve, req->resolve[i]);
		if (l == NULL)
			goto fail;
		r->resolve = l;
	}
	if (r->resolve != NULL)
		SETOPT(r->easy, CURLOPT_RESOLVE, r->resolve);
	SETOPT(r->easy, CURLOPT_USERAGENT, "rampart-httpc");
	SETOPT(r->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	SETOPT(r->easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	SETOPT(r->easy, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(r->easy, CURLOPT_NOSIGNAL, 1L);
	SETOPT(r->easy, CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(r->easy, CURLOPT_WRITEDATA, r);
	SETOPT(r->easy, CURLOPT_HEADERFUNCTION, header_cb);
	SETOPT(r->easy, CURLOPT_HEADERDATA, r);
	SETOPT(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	SETOPT(r->easy, CURLOPT_PRIVATE, (void *)r);
	if (req->check_addr != NULL) {
		r->check_addr = req->check_addr;
		r->check_arg = req->check_arg;
		SETOPT(r->easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
		SETOPT(r->easy, CURLOPT_OPENSOCKETDATA, (void *)r);
	}
	/* Only arms curl's timer (timer_cb): the transfer starts from the loop. */
	if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK)
		goto fail;
	TAILQ_INSERT_TAIL(&c->reqs, r, link);
	c->npending++;
	return 0;
fail:
	log_error("httpc: cannot start %s request", method);
	hreq_free(r);
	return -1;
}
