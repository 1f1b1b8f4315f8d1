/* receiver.c - a fast loopback webhook receiver for bench/webhooks.sh: answers
 * every POST with 204 and notes the latency from the event's created_at (in
 * its JSON body) to receipt.
 *
 *   GET /wait?n=N  answers once N deliveries have arrived (or after 120 s),
 *                  so the bench waits without polling anything;
 *   GET /stats     reports what arrived (count, p50, p99, max, first receipt
 *                  to last, the wall time of the last, a timeline) and starts
 *                  afresh.
 *
 * With a second argument "data", the latency runs from the created_at inside
 * the event's data (a payment's creation, i.e. its POST) instead. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SAMPLES 1000000
#define WAIT_MAX_S  120

static long long *lat_ms;
static size_t n;
static long long first_us, last_us;   /* CLOCK_MONOTONIC of the first and last receipt */
static long long last_wall_us;	      /* CLOCK_REALTIME of the last receipt */
static struct evhttp_request *waiter; /* a GET /wait not answered yet */
static size_t wait_n;
static struct event *wait_timer;
static int from_data; /* measure from data.created_at, not the event's */

static long long clock_us(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* created_at "2026-11-22T01:53:04.285Z" -> unix ms (UTC). */
static long long parse_ms(const char *s)
{
	struct tm tm = {0};
	int ms = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long)timegm(&tm) * 1000 + ms;
}

static int cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

/* First line: counts and latencies; second: receipts per 10 ms of latency. */
static void stats(struct evhttp_request *req)
{
	struct evbuffer *out = evbuffer_new();
	qsort(lat_ms, n, sizeof(*lat_ms), cmp);
	evbuffer_add_printf(out,
			    "received %zu p50_ms %lld p99_ms %lld max_ms %lld span_us %lld "
			    "last_wall_us %lld\n",
			    n, n ? lat_ms[n / 2] : 0, n ? lat_ms[(size_t)((double)n * 0.99)] : 0,
			    n ? lat_ms[n - 1] : 0, last_us - first_us, last_wall_us);
	evbuffer_add_printf(out, "timeline");
	for (size_t i = 0; i < n;) {
		long long bucket = lat_ms[i] / 10, k = 0;
		for (; i < n && lat_ms[i] / 10 == bucket; i++)
			k++;
		evbuffer_add_printf(out, "%s %lld-%lld ms: %lld", i - (size_t)k == 0 ? "" : ",",
				    bucket * 10, bucket * 10 + 9, k);
	}
	evbuffer_add_printf(out, "\n");
	n = 0;
	first_us = last_us = last_wall_us = 0;
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

static void wake_waiter(void)
{
	if (!waiter)
		return;
	struct evbuffer *out = evbuffer_new();
	evbuffer_add_printf(out, "received %zu\n", n);
	evhttp_send_reply(waiter, 200, "OK", out);
	evbuffer_free(out);
	waiter = NULL;
	evtimer_del(wait_timer);
}

static void wait_expired(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	wake_waiter();
}

static void on_req(struct evhttp_request *req, void *arg)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *uri = evhttp_request_get_uri(req);
	char buf[4096];
	(void)arg;
	if (evhttp_request_get_command(req) == EVHTTP_REQ_GET) {
		if (strncmp(uri, "/wait?n=", 8) == 0 && !waiter) {
			wait_n = (size_t)strtoull(uri + 8, NULL, 10);
			waiter = req;
			if (n >= wait_n) {
				wake_waiter();
			} else {
				struct timeval tv = {WAIT_MAX_S, 0};
				evtimer_add(wait_timer, &tv);
			}
		} else if (strcmp(uri, "/stats") == 0) {
			stats(req);
		} else {
			evhttp_send_reply(req, 404, "Not Found", NULL);
		}
		return;
	}
	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	evbuffer_copyout(in, buf, len);
	buf[len] = '\0';
	const char *c = buf;
	if (from_data) {
		c = strstr(buf, "\"data\":");
		c = c ? c : buf;
	}
	c = strstr(c, "\"created_at\":\"");
	long long t = c ? parse_ms(c + 14) : -1;
	if (t > 0 && n < MAX_SAMPLES) {
		last_us = clock_us(CLOCK_MONOTONIC);
		last_wall_us = clock_us(CLOCK_REALTIME);
		if (n == 0)
			first_us = last_us;
		lat_ms[n++] = last_wall_us / 1000 - t;
	}
	evhttp_send_reply(req, 204, "No Content", NULL);
	if (waiter && n >= wait_n)
		wake_waiter();
}

static void on_term(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
	char *end;
	long port = argc >= 2 ? strtol(argv[1], &end, 10) : 0;
	if (argc < 2 || argc > 3 || *end || port < 1 || port > 65535 ||
	    (argc == 3 && strcmp(argv[2], "data") != 0)) {
		fprintf(stderr, "usage: receiver PORT [data]\n");
		return 2;
	}
	from_data = argc == 3;
	lat_ms = calloc(MAX_SAMPLES, sizeof(*lat_ms));
	struct event_base *base = event_base_new();
	struct evhttp *http = evhttp_new(base);
	if (!lat_ms || !base || !http ||
	    evhttp_bind_socket(http, "127.0.0.1", (unsigned short)port) != 0) {
		fprintf(stderr, "receiver: cannot listen\n");
		return 1;
	}
	evhttp_set_gencb(http, on_req, NULL);
	wait_timer = evtimer_new(base, wait_expired, NULL);
	struct event *term = evsignal_new(base, SIGTERM, on_term, base);
	evsignal_add(term, NULL);
	event_base_dispatch(base);
	event_free(term);
	event_free(wait_timer);
	evhttp_free(http);
	event_base_free(base);
	free(lat_ms);
	return 0;
}
