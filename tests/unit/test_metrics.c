/* test_metrics.c - unit tests for the Prometheus registry and its exposition text. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"

#define THREADS	   4
#define PER_THREAD 100000

/* Renders the registry; caller frees. */
static char *render(void)
{
	struct evbuffer *b = evbuffer_new();
	size_t len;
	char *s;

	assert_non_null(b);
	assert_int_equal(metrics_render(b), 0);
	len = evbuffer_get_length(b);
	s = malloc(len + 1);
	assert_non_null(s);
	assert_int_equal(evbuffer_remove(b, s, len), (int)len);
	s[len] = '\0';
	evbuffer_free(b);
	return s;
}

static int reset(void **state)
{
	(void)state;
	metrics_shutdown();
	return 0;
}

static void test_render(void **state)
{
	static const double bounds[] = {0.005, 0.1, 1};
	struct metric *c, *g, *h, *h2, *c2;
	char *text;

	(void)state;
	c = metrics_counter("rampart_http_requests_total", "HTTP requests.",
			    "route=\"/v1/quotes\",code=\"201\"");
	g = metrics_gauge("rampart_queue_depth", "Jobs waiting.", "");
	h = metrics_histogram("rampart_http_request_duration_seconds", "Request latency.",
			      "route=\"/x\"", bounds, 3);
	h2 = metrics_histogram("rampart_job_seconds", "Job time.", "", bounds, 3);
	c2 = metrics_counter("rampart_http_requests_total", "ignored: first help wins",
			     "route=\"/v1/quotes\",code=\"400\"");
	assert_non_null(c);
	assert_non_null(g);
	assert_non_null(h);
	assert_non_null(h2);
	assert_non_null(c2);

	/* Same name and labels: same series. */
	assert_ptr_equal(c, metrics_counter("rampart_http_requests_total", "HTTP requests.",
					    "route=\"/v1/quotes\",code=\"201\""));
	/* A name is one kind only. */
	assert_null(metrics_gauge("rampart_http_requests_total", "x", "route=\"/other\""));
	assert_null(metrics_counter("rampart_queue_depth", "x", ""));
	/* Invalid names and bounds. */
	assert_null(metrics_counter("9bad", "x", ""));
	assert_null(metrics_counter("bad-name", "x", ""));
	{
		static const double desc[] = {1, 0.5};
		assert_null(metrics_histogram("rampart_h", "x", "", desc, 2));
	}

	metric_inc(c);
	metric_add(c, 2);
	metric_inc(c2);
	metric_set(g, 10);
	metric_gauge_add(g, -15);
	metric_observe_us(h, 5000);    /* exactly 0.005 s: in le="0.005" */
	metric_observe_us(h, 5001);    /* le="0.1" */
	metric_observe_us(h, 2500000); /* +Inf */
	metric_observe_us(h2, 1);

	/* Updates through NULL or the wrong kind are ignored. */
	metric_inc(NULL);
	metric_add(NULL, 1);
	metric_set(NULL, 1);
	metric_gauge_add(NULL, 1);
	metric_observe_us(NULL, 1);
	metric_observe_us(c, 1);
	metric_set(c, 100);

	text = render();
	assert_string_equal(
		text, "# HELP rampart_http_requests_total HTTP requests.\n"
		      "# TYPE rampart_http_requests_total counter\n"
		      "rampart_http_requests_total{route=\"/v1/quotes\",code=\"201\"} 3\n"
		      "rampart_http_requests_total{route=\"/v1/quotes\",code=\"400\"} 1\n"
		      "# HELP rampart_queue_depth Jobs waiting.\n"
		      "# TYPE rampart_queue_depth gauge\n"
		      "rampart_queue_depth -5\n"
		      "# HELP rampart_http_request_duration_seconds Request latency.\n"
		      "# TYPE rampart_http_request_duration_seconds histogram\n"
		      "rampart_http_request_duration_seconds_bucket{route=\"/x\",le=\"0.005\"} 1\n"
		      "rampart_http_request_duration_seconds_bucket{route=\"/x\",le=\"0.1\"} 2\n"
		      "rampart_http_request_duration_seconds_bucket{route=\"/x\",le=\"1\"} 2\n"
		      "rampart_http_request_duration_seconds_bucket{route=\"/x\",le=\"+Inf\"} 3\n"
		      "rampart_http_request_duration_seconds_sum{route=\"/x\"} 2.510001\n"
		      "rampart_http_request_duration_seconds_count{route=\"/x\"} 3\n"
		      "# HELP rampart_job_seconds Job time.\n"
		      "# TYPE rampart_job_seconds histogram\n"
		      "rampart_job_seconds_bucket{le=\"0.005\"} 1\n"
		      "rampart_job_seconds_bucket{le=\"0.1\"} 1\n"
		      "rampart_job_seconds_bucket{le=\"1\"} 1\n"
		      "rampart_job_seconds_bucket{le=\"+Inf\"} 1\n"
		      "rampart_job_seconds_sum 0.000001\n"
		      "rampart_job_seconds_count 1\n");
	free(text);
}

static void test_latency_bounds(void **state)
{
	struct metric *h;
	char *text;

	(void)state;
	assert_int_equal(metrics_latency_nbounds, 14);
	h = metrics_histogram("lat_seconds", "Latency with\\ a\nnewline.", "",
			      metrics_latency_bounds, metrics_latency_nbounds);
	assert_non_null(h);
	metric_observe_us(h, 500); /* 0.0005 s */
	text = render();
	assert_string_equal(text, "# HELP lat_seconds Latency with\\\\ a\\nnewline.\n"
				  "# TYPE lat_seconds histogram\n"
				  "lat_seconds_bucket{le=\"0.0005\"} 1\n"
				  "lat_seconds_bucket{le=\"0.001\"} 1\n"
				  "lat_seconds_bucket{le=\"0.0025\"} 1\n"
				  "lat_seconds_bucket{le=\"0.005\"} 1\n"
				  "lat_seconds_bucket{le=\"0.01\"} 1\n"
				  "lat_seconds_bucket{le=\"0.025\"} 1\n"
				  "lat_seconds_bucket{le=\"0.05\"} 1\n"
				  "lat_seconds_bucket{le=\"0.1\"} 1\n"
				  "lat_seconds_bucket{le=\"0.25\"} 1\n"
				  "lat_seconds_bucket{le=\"0.5\"} 1\n"
				  "lat_seconds_bucket{le=\"1\"} 1\n"
				  "lat_seconds_bucket{le=\"2.5\"} 1\n"
				  "lat_seconds_bucket{le=\"5\"} 1\n"
				  "lat_seconds_bucket{le=\"10\"} 1\n"
				  "lat_seconds_bucket{le=\"+Inf\"} 1\n"
				  "lat_seconds_sum 0.000500\n"
				  "lat_seconds_count 1\n");
	free(text);
}

static void *worker(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < PER_THREAD; i++) {
		/* Looked up every time, as request handlers do, racing registration. */
		struct metric *c = metrics_counter("conc_total", "Concurrent.", "t=\"all\"");
		struct metric *g = metrics_gauge("conc_gauge", "Concurrent gauge.", "");
		struct metric *h =
			metrics_histogram("conc_seconds", "Concurrent histogram.", "",
					  metrics_latency_bounds, metrics_latency_nbounds);

		if (c == NULL || g == NULL || h == NULL)
			return (void *)1;
		metric_inc(c);
		metric_gauge_add(g, (i & 1) ? 3 : -1);
		metric_observe_us(h, (uint64_t)(i % 1000));
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	pthread_t t[THREADS];
	char *text, want[256];
	unsigned long long sum_us;
	void *ret;
	int i;

	(void)state;
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker, NULL), 0);
	for (i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_null(ret);
	}
	text = render();
	snprintf(want, sizeof(want), "\nconc_total{t=\"all\"} %d\n", THREADS * PER_THREAD);
	assert_non_null(strstr(text, want));
	/* Per thread: 50000 * 3 - 50000 * 1. */
	snprintf(want, sizeof(want), "\nconc_gauge %d\n", THREADS * (PER_THREAD / 2) * 2);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want), "\nconc_seconds_count %d\n", THREADS * PER_THREAD);
	assert_non_null(strstr(text, want));
	/* Sum of i % 1000 over 100000 i is 100 * 499500 us per thread. */
	sum_us = (unsigned long long)THREADS * 100 * 499500;
	snprintf(want, sizeof(want), "\nconc_seconds_sum %llu.%06llu\n", sum_us / 1000000,
		 sum_us % 1000000);
	assert_non_null(strstr(text, want));
	/* One # TYPE per name despite the racing registrations. */
	assert_non_null(strstr(text, "# TYPE conc_total counter\n"));
	assert_null(strstr(strstr(text, "# TYPE conc_total") + 1, "# TYPE conc_total"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_render, reset),
		cmocka_unit_test_teardown(test_latency_bounds, reset),
		cmocka_unit_test_teardown(test_concurrent, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
