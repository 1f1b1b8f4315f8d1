/* metrics.h - a process-wide Prometheus registry: counters, gauges,
 * histograms, rendered as text exposition format 0.0.4. Thread-safe:
 * updates are relaxed atomics, registration takes a mutex. */
#ifndef COMMON_METRICS_H
#define COMMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct metric;
struct evbuffer;

/* Returns the series name{labels}, creating it on first use; the same name
 * and labels always return the same pointer, valid until metrics_shutdown().
 * labels is the inside of the braces, already escaped, e.g.
 * "route=\"/v1/quotes\",code=\"201\"", or "" for none. help is borrowed
 * (pass a string literal). NULL only on allocation failure; every update
 * function accepts NULL and does nothing. */
struct metric *metrics_counter(const char *name, const char *help, const char *labels);
struct metric *metrics_gauge(const char *name, const char *help, const char *labels);

/* Histogram with upper bounds in seconds (ascending, +Inf implied). bounds is
 * copied. Observations are in microseconds so no float is summed. */
struct metric *metrics_histogram(const char *name, const char *help, const char *labels,
				 const double *bounds, size_t nbounds);

/* Default latency buckets: 0.5 ms .. 10 s. */
extern const double metrics_latency_bounds[];
extern const size_t metrics_latency_nbounds;

void metric_inc(struct metric *m);
void metric_add(struct metric *m, uint64_t v);
void metric_set(struct metric *m, int64_t v);	    /* gauges */
void metric_gauge_add(struct metric *m, int64_t d); /* gauges, may be negative */
void metric_observe_us(struct metric *m, uint64_t usec);

/* Appends the text exposition of every series, grouped by name with one
 * # HELP and # TYPE line each, to out. Returns 0 or -1. */
int metrics_render(struct evbuffer *out) __attribute__((warn_unused_result));

/* Frees every series (end of process, after all threads stopped). */
void metrics_shutdown(void);

#endif
