/* metrics.c - the process-wide Prometheus registry and its text rendering. */
#include "common/metrics.h"

#include <event2/buffer.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_HASH_SIZE 1024

enum metric_kind { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

static const char *const metric_kind_names[] = {"counter", "gauge", "histogram"};

/* All series sharing a name: one # HELP / # TYPE block when rendered. */
struct metric_family {
	char *name;
	const char *help; /* borrowed string literal */
	enum metric_kind kind;
	struct metric *first, *last; /* series in registration order */
	struct metric_family *next;  /* families in registration order */
};

/* One series. Everything but the atomics is immutable once published. */
struct metric {
	struct metric_family *family;
	char *labels; /* inside of the braces, "" for none */
	struct metric *next_in_family;
	struct metric *hash_next; /* bucket chain, set before publication */
	size_t hash;

	_Atomic uint64_t counter;
	_Atomic int64_t gauge;

	/* Histograms: nbounds upper bounds plus +Inf. buckets are per-bucket
	 * (not cumulative) counts; rendering accumulates them, and _count is
	 * their total so it always equals the +Inf bucket. */
	size_t nbounds;
	double *bounds;
	uint64_t *bounds_us;
	_Atomic uint64_t *buckets;
	_Atomic uint64_t sum_us;
};

const double metrics_latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					 0.1,	 0.25,	0.5,	1,     2.5,  5,	    10};
const size_t metrics_latency_nbounds =
	sizeof(metrics_latency_bounds) / sizeof(metrics_latency_bounds[0]);

/* reg_lock serialises registration, rendering and shutdown. Lookups of
 * existing series do not take it: hash chains only ever grow at the head,
 * published with release stores, so a reader with an acquire load sees a
 * fully built series. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(struct metric *) reg_hash[METRICS_HASH_SIZE];
static struct metric_family *reg_families, *reg_families_last;

/* FNV-1a over name, a separator and labels. */
static size_t metric_hash(const char *name, const char *labels)
{
	uint64_t h = 1469598103934665603ULL;
	const char *p;

	for (p = name; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (p = labels; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return (size_t)h;
}

static struct metric *metric_lookup(const char *name, const char *labels, size_t h)
{
	struct metric *m =
		atomic_load_explicit(&reg_hash[h % METRICS_HASH_SIZE], memory_order_acquire);

	for (; m != NULL; m = m->hash_next)
		if (m->hash == h && strcmp(m->family->name, name) == 0 &&
		    strcmp(m->labels, labels) == 0)
			return m;
	return NULL;
}

/* Prometheus metric names: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static bool metric_name_ok(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0')
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];
		bool alpha =
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';

		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

static char *metric_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

static void metric_free(struct metric *m)
{
	if (m == NULL)
		return;
	free(m->labels);
	free(m->bounds);
	free(m->bounds_us);
	free((void *)m->buckets);
	free(m);
}

/* Finds or creates the series; histogram bounds are only read on creation.
 * NULL on allocation failure, on an invalid name or bounds, or when name is
 * already registered as another kind (a programming error: the families'
 * # TYPE lines would lie). */
static struct metric *metric_get(enum metric_kind kind, const char *name, const char *help,
				 const char *labels, const double *bounds, size_t nbounds)
{
	struct metric_family *fam = NULL, *new_fam = NULL;
	struct metric *m = NULL;
	size_t h, i;

	if (!metric_name_ok(name))
		return NULL;
	if (labels == NULL)
		labels = "";
	h = metric_hash(name, labels);
	m = metric_lookup(name, labels, h);
	if (m != NULL)
		return m->family->kind == kind ? m : NULL;

	pthread_mutex_lock(&reg_lock);
	/* Another thread may have registered it since the lock-free lookup. */
	m = metric_lookup(name, labels, h);
	if (m != NULL) {
		pthread_mutex_unlock(&reg_lock);
		return m->family->kind == kind ? m : NULL;
	}
	for (fam = reg_families; fam != NULL; fam = fam->next)
		if (strcmp(fam->name, name) == 0)
			break;
	if (fam != NULL && fam->kind != kind)
		goto fail;
	if (fam == NULL) {
		new_fam = calloc(1, sizeof(*new_fam));
		if (new_fam == NULL)
			goto fail;
		new_fam->name = metric_strdup(name);
		if (new_fam->name == NULL)
			goto fail;
		new_fam->help = help != NULL ? help : "";
		new_fam->kind = kind;
		fam = new_fam;
	}

	m = calloc(1, sizeof(*m));
	if (m == NULL)
		goto fail;
	m->family = fam;
	m->hash = h;
	m->labels = metric_strdup(labels);
	if (m->labels == NULL)
		goto fail;
	atomic_init(&m->counter, 0);
	atomic_init(&m->gauge, 0);
	atomic_init(&m->sum_us, 0);
	if (kind == METRIC_HISTOGRAM) {
		m->nbounds = nbounds;
		m->bounds = calloc(nbounds + 1, sizeof(*m->bounds));
		m->bounds_us = calloc(nbounds + 1, sizeof(*m->bounds_us));
		m->buckets = calloc(nbounds + 1, sizeof(*m->buckets));
		if (m->bounds == NULL || m->bounds_us == NULL || m->buckets == NULL)
			goto fail;
		for (i = 0; i < nbounds; i++) {
			m->bounds[i] = bounds[i];
			m->bounds_us[i] = (uint64_t)(bounds[i] * 1e6 + 0.5);
		}
		for (i = 0; i <= nbounds; i++)
			atomic_init(&m->buckets[i], 0);
	}

	if (new_fam != NULL) {
		if (reg_families_last != NULL)
			reg_families_last->next = new_fam;
		else
			reg_families = new_fam;
		reg_families_last = new_fam;
	}
	if (fam->last != NULL)
		fam->last->next_in_family = m;
	else
		fam->first = m;
	fam->last = m;
	m->hash_next = atomic_load_explicit(&reg_hash[h % METRICS_HASH_SIZE], memory_order_relaxed);
	atomic_store_explicit(&reg_hash[h % METRICS_HASH_SIZE], m, memory_order_release);
	pthread_mutex_unlock(&reg_lock);
	return m;

fail:
	pthread_mutex_unlock(&reg_lock);
	metric_free(m);
	if (new_fam != NULL)
		free(new_fam->name);
	free(new_fam);
	return NULL;
}

struct metric *metrics_counter(const char *name, const char *help, const char *labels)
{
	return metric_get(METRIC_COUNTER, name, help, labels, NULL, 0);
}

struct metric *metrics_gauge(const char *name, const char *help, const char *labels)
{
	return metric_get(METRIC_GAUGE, name, help, labels, NULL, 0);
}

/* bounds must be finite, non-negative and strictly ascending; else NULL. */
struct metric *metrics_histogram(const char *name, const char *help, const char *labels,
				 const double *bounds, size_t nbounds)
{
	size_t i;

	if (nbounds > 0 && bounds == NULL)
		return NULL;
	for (i = 0; i < nbounds; i++)
		if (!isfinite(bounds[i]) || bounds[i] < 0 || bounds[i] > 1e12 ||
		    (i > 0 && bounds[i] <= bounds[i - 1]))
			return NULL;
	return metric_get(METRIC_HISTOGRAM, name, help, labels, bounds, nbounds);
}

/* Counters count up; on a gauge these add too, on a histogram they do nothing. */
void metric_inc(struct metric *m)
{
	metric_add(m, 1);
}

void metric_add(struct metric *m, uint64_t v)
{
	if (m == NULL)
		return;
	if (m->family->kind == METRIC_COUNTER)
		atomic_fetch_add_explicit(&m->counter, v, memory_order_relaxed);
	else if (m->family->kind == METRIC_GAUGE)
		atomic_fetch_add_explicit(&m->gauge, (int64_t)v, memory_order_relaxed);
}

void metric_set(struct metric *m, int64_t v)
{
	if (m == NULL || m->family->kind != METRIC_GAUGE)
		return;
	atomic_store_explicit(&m->gauge, v, memory_order_relaxed);
}

void metric_gauge_add(struct metric *m, int64_t d)
{
	if (m == NULL || m->family->kind != METRIC_GAUGE)
		return;
	atomic_fetch_add_explicit(&m->gauge, d, memory_order_relaxed);
}

void metric_observe_us(struct metric *m, uint64_t usec)
{
	size_t i;

	if (m == NULL || m->family->kind != METRIC_HISTOGRAM)
		return;
	for (i = 0; i < m->nbounds && usec > m->bounds_us[i]; i++)
		;
	atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->sum_us, usec, memory_order_relaxed);
}

/* Shortest decimal form of v that reads back exactly: 0.005 -> "0.005",
 * 10 -> "10". */
static void format_bound(char *out, size_t cap, double v)
{
	int prec;

	/* %g would write 10 as "1e+01". */
	if (v == (double)(long long)v && v < 1e15) {
		snprintf(out, cap, "%lld", (long long)v);
		return;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(out, cap, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

/* # HELP text escapes backslash and newline (exposition format 0.0.4). */
static int render_help(struct evbuffer *out, const struct metric_family *f)
{
	const char *p;

	if (evbuffer_add_printf(out, "# HELP %s ", f->name) < 0)
		return -1;
	for (p = f->help; *p != '\0'; p++) {
		int rc;

		if (*p == '\\')
			rc = evbuffer_add(out, "\\\\", 2);
		else if (*p == '\n')
			rc = evbuffer_add(out, "\\n", 2);
		else
			rc = evbuffer_add(out, p, 1);
		if (rc != 0)
			return -1;
	}
	if (evbuffer_add_printf(out, "\n# TYPE %s %s\n", f->name, metric_kind_names[f->kind]) < 0)
		return -1;
	return 0;
}

static int render_histogram(struct evbuffer *out, const char *name, const struct metric *m)
{
	const char *sep = m->labels[0] != '\0' ? "," : "";
	uint64_t cum = 0, sum;
	char le[32];
	size_t i;

	for (i = 0; i <= m->nbounds; i++) {
		cum += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
		if (i < m->nbounds)
			format_bound(le, sizeof(le), m->bounds[i]);
		else
			memcpy(le, "+Inf", 5);
		if (evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, m->labels,
					sep, le, (unsigned long long)cum) < 0)
			return -1;
	}
	sum = atomic_load_explicit(&m->sum_us, memory_order_relaxed);
	/* Seconds with microsecond precision, printed exactly from integers. */
	if (m->labels[0] != '\0') {
		if (evbuffer_add_printf(out, "%s_sum{%s} %llu.%06llu\n%s_count{%s} %llu\n", name,
					m->labels, (unsigned long long)(sum / 1000000),
					(unsigned long long)(sum % 1000000), name, m->labels,
					(unsigned long long)cum) < 0)
			return -1;
	} else {
		if (evbuffer_add_printf(out, "%s_sum %llu.%06llu\n%s_count %llu\n", name,
					(unsigned long long)(sum / 1000000),
					(unsigned long long)(sum % 1000000), name,
					(unsigned long long)cum) < 0)
			return -1;
	}
	return 0;
}

static int render_series(struct evbuffer *out, const struct metric_family *f,
			 const struct metric *m)
{
	const char *lb = m->labels[0] != '\0' ? "{" : "";
	const char *rb = m->labels[0] != '\0' ? "}" : "";
	int rc = 0;

	switch (f->kind) {
	case METRIC_COUNTER:
		rc = evbuffer_add_printf(out, "%s%s%s%s %llu\n", f->name, lb, m->labels, rb,
					 (unsigned long long)atomic_load_explicit(
						 &m->counter, memory_order_relaxed));
		break;
	case METRIC_GAUGE:
		rc = evbuffer_add_printf(
			out, "%s%s%s%s %lld\n", f->name, lb, m->labels, rb,
			(long long)atomic_load_explicit(&m->gauge, memory_order_relaxed));
		break;
	case METRIC_HISTOGRAM:
		return render_histogram(out, f->name, m);
	}
	return rc < 0 ? -1 : 0;
}

int metrics_render(struct evbuffer *out)
{
	const struct metric_family *f;
	const struct metric *m;
	int rc = 0;

	if (out == NULL)
		return -1;
	pthread_mutex_lock(&reg_lock);
	for (f = reg_families; f != NULL && rc == 0; f = f->next) {
		rc = render_help(out, f);
		for (m = f->first; m != NULL && rc == 0; m = m->next_in_family)
			rc = render_series(out, f, m);
	}
	pthread_mutex_unlock(&reg_lock);
	return rc;
}

void metrics_shutdown(void)
{
	struct metric_family *f, *fnext;
	struct metric *m, *mnext;
	size_t i;

	pthread_mutex_lock(&reg_lock);
	for (i = 0; i < METRICS_HASH_SIZE; i++)
		atomic_store_explicit(&reg_hash[i], NULL, memory_order_relaxed);
	for (f = reg_families; f != NULL; f = fnext) {
		fnext = f->next;
		for (m = f->first; m != NULL; m = mnext) {
			mnext = m->next_in_family;
			metric_free(m);
		}
		free(f->name);
		free(f);
	}
	reg_families = reg_families_last = NULL;
	pthread_mutex_unlock(&reg_lock);
}
