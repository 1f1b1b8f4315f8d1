/* rate.c - a constant-arrival-rate HTTP load generator for make bench (wrk2
 * is not in Debian): request i is due at start + i / rate, whatever happened
 * to the ones before it, and its latency runs from that due time, not from
 * when a connection was free to send it, so queueing in front of a slow
 * server is counted (coordinated omission corrected). With -r 0 it runs
 * closed-loop instead (each connection sends again as soon as it has an
 * answer; latency from the send): that measures throughput at saturation.
 *
 *   rate -u http://127.0.0.1:8080 -p /v1/quotes -m POST -H 'Authorization: Bearer k'
 *        -b '{"amount":{n}}' -r 1000 -d 10 -c 64 [-f ids.txt] [-T timeline.tsv]
 *
 * Templates (path, header values, body): {n} is the request's number from 1,
 * {line} the n-th line of the -f file (wrapping around). Prints one JSON
 * object on stdout: counts (ok = 2xx, non2xx, errors = no answer, unsent =
 * due but never sent before the deadline), achieved rate and exact latency
 * percentiles of the 2xx answers and of the others, in ms. -T writes one
 * line per second of the run: second, answers, 2xx, others, p50, p99 (ms). */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_HEADERS 16
#define GRACE_S	    10 /* after the last due time, how long answers are awaited */

struct conn {
	struct evhttp_connection *evcon;
	int index;
	uint64_t sched_us; /* the request in flight: when it was due */
	uint64_t seq;
	bool busy;
};

struct samples {
	uint32_t *us;
	size_t n, cap;
};

/* One second of the timeline. */
struct second {
	struct samples lat;
	uint64_t ok, other;
};

static struct event_base *base;
static struct conn *conns;
static int nconns;
static int *idle; /* stack of idle connection indexes */
static int nidle;
static double rate;
static double duration_s;
static const char *host;
static int port;
static const char *path_tpl, *body_tpl, *method_name = "GET";
static enum evhttp_cmd_type method = EVHTTP_REQ_GET;
static const char *hdr_name[MAX_HEADERS], *hdr_tpl[MAX_HEADERS];
static int nhdr;
static char **lines;
static size_t nlines;
static uint64_t start_us, end_us, deadline_us;
static uint64_t total; /* requests due in the run (constant-rate mode) */
static uint64_t next_seq;
static uint64_t sent, done_ok, done_other, errors;
static struct samples lat_ok, lat_other;
static struct second *seconds;
static size_t nseconds;
static struct event *timer;
static bool stopping;

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void samples_add(struct samples *s, uint64_t us)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		uint32_t *p = realloc(s->us, cap * sizeof(*p));
		if (!p) {
			fputs("rate: out of memory\n", stderr);
			exit(2);
		}
		s->us = p;
		s->cap = cap;
	}
	s->us[s->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The pct-th percentile (0..100) of sorted samples, in ms; 0 when empty. */
static double pct_ms(const struct samples *s, double pct)
{
	if (s->n == 0)
		return 0;
	size_t i = (size_t)(pct / 100.0 * (double)s->n);
	if (i >= s->n)
		i = s->n - 1;
	return s->us[i] / 1000.0;
}

/* Appends tpl to out with {n} and {line} replaced for request seq. */
static void expand(struct evbuffer *out, const char *tpl, uint64_t seq)
{
	const char *p = tpl;
	while (*p) {
		const char *b = strchr(p, '{');
		if (!b) {
			evbuffer_add(out, p, strlen(p));
			break;
		}
		evbuffer_add(out, p, (size_t)(b - p));
		if (strncmp(b, "{n}", 3) == 0) {
			evbuffer_add_printf(out, "%llu", (unsigned long long)seq);
			p = b + 3;
		} else if (strncmp(b, "{line}", 6) == 0 && nlines > 0) {
			const char *l = lines[(seq - 1) % nlines];
			evbuffer_add(out, l, strlen(l));
			p = b + 6;
		} else {
			evbuffer_add(out, b, 1);
			p = b + 1;
		}
	}
}

/* tpl expanded for seq as a NUL-terminated string; the caller frees it. */
static char *expand_str(const char *tpl, uint64_t seq)
{
	struct evbuffer *b = evbuffer_new();
	expand(b, tpl, seq);
	evbuffer_add(b, "", 1);
	size_t len = evbuffer_get_length(b);
	char *s = malloc(len);
	if (s)
		evbuffer_remove(b, s, len);
	evbuffer_free(b);
	return s;
}

static void finish_check(void);
static void send_next(struct conn *c, uint64_t seq, uint64_t sched);

static void record(uint64_t sched, int code)
{
	uint64_t now = now_us();
	uint64_t lat = now > sched ? now - sched : 0;
	bool ok = code >= 200 && code < 300;
	if (code <= 0)
		errors++;
	else if (ok)
		done_ok++;
	else
		done_other++;
	if (code > 0)
		samples_add(ok ? &lat_ok : &lat_other, lat);
	size_t sec = (size_t)((now - start_us) / 1000000u);
	if (sec < nseconds) {
		if (ok)
			seconds[sec].ok++;
		else
			seconds[sec].other++;
		samples_add(&seconds[sec].lat, lat);
	}
}

/* Sends what is due on idle connections (constant rate), or keeps every
 * connection busy (closed loop, rate 0). */
static void pump(void)
{
	uint64_t now = now_us();
	if (stopping)
		return;
	if (rate <= 0) {
		while (nidle > 0 && now < end_us)
			send_next(&conns[idle[--nidle]], next_seq + 1, now);
		return;
	}
	uint64_t due = (uint64_t)((double)(now - start_us) * rate / 1e6) + 1;
	if (due > total)
		due = total;
	while (nidle > 0 && next_seq < due) {
		uint64_t sched = start_us + (uint64_t)((double)next_seq * 1e6 / rate);
		send_next(&conns[idle[--nidle]], next_seq + 1, sched);
	}
}

static void on_response(struct evhttp_request *req, void *arg)
{
	struct conn *c = arg;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	c->busy = false;
	record(c->sched_us, code);
	idle[nidle++] = c->index;
	pump();
	finish_check();
}

static void send_next(struct conn *c, uint64_t seq, uint64_t sched)
{
	struct evhttp_request *req = evhttp_request_new(on_response, c);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char *path = expand_str(path_tpl, seq);
	next_seq = seq;
	c->busy = true;
	c->seq = seq;
	c->sched_us = sched;
	evhttp_add_header(h, "Host", host);
	for (int i = 0; i < nhdr; i++) {
		char *v = expand_str(hdr_tpl[i], seq);
		evhttp_add_header(h, hdr_name[i], v);
		free(v);
	}
	if (body_tpl) {
		evhttp_add_header(h, "Content-Type", "application/json");
		expand(evhttp_request_get_output_buffer(req), body_tpl, seq);
	}
	sent++;
	if (evhttp_make_request(c->evcon, req, method, path) != 0) {
		/* evhttp freed req: count it as an error and free the connection. */
		c->busy = false;
		errors++;
		idle[nidle++] = c->index;
	}
	free(path);
}

static void finish_check(void)
{
	uint64_t now = now_us();
	bool all_sent = rate > 0 ? next_seq >= total : now >= end_us;
	if (stopping || !(all_sent || now >= deadline_us))
		return;
	if (nidle < nconns && now < deadline_us)
		return;
	stopping = true;
	event_base_loopexit(base, NULL);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	pump();
	finish_check();
	if (stopping)
		return;
	/* Wake at the next due time (constant rate) or every 10 ms. */
	uint64_t now = now_us(), wait = 10000;
	if (rate > 0 && next_seq < total) {
		uint64_t next = start_us + (uint64_t)((double)next_seq * 1e6 / rate);
		wait = next > now ? next - now : 0;
		if (wait > 10000)
			wait = 10000;
	}
	struct timeval tv = {.tv_sec = 0, .tv_usec = (suseconds_t)wait};
	evtimer_add(timer, &tv);
}

static int read_lines(const char *file)
{
	FILE *f = fopen(file, "r");
	char buf[4096];
	size_t cap = 0;
	if (!f)
		return -1;
	while (fgets(buf, sizeof(buf), f)) {
		buf[strcspn(buf, "\r\n")] = '\0';
		if (!buf[0])
			continue;
		if (nlines == cap) {
			cap = cap ? cap * 2 : 1024;
			char **p = realloc(lines, cap * sizeof(*p));
			if (!p) {
				fclose(f);
				return -1;
			}
			lines = p;
		}
		lines[nlines++] = strdup(buf);
	}
	fclose(f);
	return nlines > 0 ? 0 : -1;
}

static void usage(void)
{
	fputs("usage: rate -u http://HOST:PORT -p PATH [-m METHOD] [-H 'Name: value']... [-b "
	      "BODY]\n"
	      "            [-f LINES] -r RATE|0 -d SECONDS [-c CONNS] [-T TIMELINE]\n",
	      stderr);
	exit(2);
}

static double num_arg(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || v < 0)
		usage();
	return v;
}

static void print_result(const char *label, const struct samples *s)
{
	printf("\"%s\":{\"n\":%zu,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,"
	       "\"max_ms\":%.3f}",
	       label, s->n, pct_ms(s, 50), pct_ms(s, 90), pct_ms(s, 99), pct_ms(s, 99.9),
	       s->n ? s->us[s->n - 1] / 1000.0 : 0);
}

int main(int argc, char **argv)
{
	const char *url = NULL, *timeline = NULL;
	int opt;
	nconns = 64;
	while ((opt = getopt(argc, argv, "u:p:m:H:b:f:r:d:c:T:")) != -1) {
		switch (opt) {
		case 'u':
			url = optarg;
			break;
		case 'p':
			path_tpl = optarg;
			break;
		case 'm':
			method_name = optarg;
			break;
		case 'H': {
			char *colon = strchr(optarg, ':');
			if (!colon || nhdr == MAX_HEADERS)
				usage();
			*colon = '\0';
			hdr_name[nhdr] = optarg;
			hdr_tpl[nhdr++] = colon + 1 + strspn(colon + 1, " ");
			break;
		}
		case 'b':
			body_tpl = optarg;
			break;
		case 'f':
			if (read_lines(optarg) != 0) {
				fprintf(stderr, "rate: cannot read lines from %s\n", optarg);
				return 2;
			}
			break;
		case 'r':
			rate = num_arg(optarg);
			break;
		case 'd':
			duration_s = num_arg(optarg);
			break;
		case 'c':
			nconns = (int)num_arg(optarg);
			break;
		case 'T':
			timeline = optarg;
			break;
		default:
			usage();
		}
	}
	if (!url || !path_tpl || duration_s <= 0 || nconns < 1 || strncmp(url, "http://", 7) != 0)
		usage();
	if (strcmp(method_name, "GET") == 0)
		method = EVHTTP_REQ_GET;
	else if (strcmp(method_name, "POST") == 0)
		method = EVHTTP_REQ_POST;
	else
		usage();

	/* http://HOST:PORT */
	static char hostbuf[256];
	snprintf(hostbuf, sizeof(hostbuf), "%s", url + 7);
	char *colon = strchr(hostbuf, ':');
	if (!colon)
		usage();
	*colon = '\0';
	port = (int)strtol(colon + 1, NULL, 10);
	host = hostbuf;

	signal(SIGPIPE, SIG_IGN);
	struct event_config *cfg = event_config_new();
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	conns = calloc((size_t)nconns, sizeof(*conns));
	idle = calloc((size_t)nconns, sizeof(*idle));
	if (!base || !conns || !idle)
		return 2;
	for (int i = 0; i < nconns; i++) {
		conns[i].index = i;
		conns[i].evcon = evhttp_connection_base_new(base, NULL, host, (ev_uint16_t)port);
		evhttp_connection_set_timeout(conns[i].evcon, 60);
		evhttp_connection_set_retries(conns[i].evcon, 0);
		idle[nidle++] = nconns - 1 - i;
	}
	nseconds = (size_t)duration_s + GRACE_S + 1;
	seconds = calloc(nseconds, sizeof(*seconds));
	total = (uint64_t)(rate * duration_s);
	start_us = now_us();
	end_us = start_us + (uint64_t)(duration_s * 1e6);
	deadline_us = end_us + GRACE_S * 1000000u;
	timer = evtimer_new(base, on_timer, NULL);
	on_timer(-1, 0, NULL);
	event_base_dispatch(base);

	uint64_t last = now_us();
	double elapsed = (double)(last - start_us) / 1e6;
	qsort(lat_ok.us, lat_ok.n, sizeof(uint32_t), cmp_u32);
	qsort(lat_other.us, lat_other.n, sizeof(uint32_t), cmp_u32);
	uint64_t answered = done_ok + done_other;
	uint64_t unsent = rate > 0 && total > next_seq ? total - next_seq : 0;
	printf("{\"target_rps\":%.1f,\"duration_s\":%.1f,\"conns\":%d,\"sent\":%llu,\"ok\":%llu,"
	       "\"non2xx\":%llu,\"errors\":%llu,\"unanswered\":%llu,\"unsent\":%llu,"
	       "\"elapsed_s\":%.3f,\"rps\":%.1f,",
	       rate, duration_s, nconns, (unsigned long long)sent, (unsigned long long)done_ok,
	       (unsigned long long)done_other, (unsigned long long)errors,
	       (unsigned long long)(sent - answered - errors), (unsigned long long)unsent, elapsed,
	       (double)answered / (rate > 0 ? duration_s : elapsed));
	print_result("lat_2xx", &lat_ok);
	putchar(',');
	print_result("lat_other", &lat_other);
	puts("}");

	if (timeline) {
		FILE *f = fopen(timeline, "w");
		if (!f) {
			fprintf(stderr, "rate: cannot write %s\n", timeline);
			return 2;
		}
		fputs("# second\tanswers\t2xx\tother\tp50_ms\tp99_ms\n", f);
		for (size_t i = 0; i < nseconds && (double)i < elapsed; i++) {
			struct samples *s = &seconds[i].lat;
			qsort(s->us, s->n, sizeof(uint32_t), cmp_u32);
			fprintf(f, "%zu\t%llu\t%llu\t%llu\t%.3f\t%.3f\n", i,
				(unsigned long long)(seconds[i].ok + seconds[i].other),
				(unsigned long long)seconds[i].ok,
				(unsigned long long)seconds[i].other, pct_ms(s, 50), pct_ms(s, 99));
			free(s->us);
		}
		fclose(f);
	}
	for (int i = 0; i < nconns; i++)
		evhttp_connection_free(conns[i].evcon);
	event_free(timer);
	event_base_free(base);
	for (size_t i = 0; i < nlines; i++)
		free(lines[i]);
	free(lines);
	free(lat_ok.us);
	free(lat_other.us);
	free(seconds);
	free(conns);
	free(idle);
	return 0;
}
