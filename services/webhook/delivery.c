/* delivery.c - one webhook delivery attempt per job: load the event and the
 * endpoint, check where the URL's host resolves (SSRF guard), sign and POST
 * the event (Standard Webhooks, SPEC 8), record the attempt, then settle the
 * job: delivered, endpoint disabled (410), retried on the schedule through
 * the delayed set, or dead-lettered. Each endpoint has at most
 * WEBHOOK_ENDPOINT_CONCURRENCY requests in flight; its other deliveries,
 * loaded and ready, wait in a bounded queue of its own, so a slow or dead
 * endpoint never delays others. */
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/contracts.h"
#include "common/httpc.h"
#include "common/ids.h"
#include "common/jobs.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pg.h"
#include "common/resolve.h"
#include "common/rnd.h"
#include "common/sign.h"
#include "webhook.h"

#define REQUEUE_MS    250	       /* delay of a requeued job (DB down), plus jitter as much */
#define DEFER_MIN_MS  20	       /* a job deferred because its endpoint is saturated ... */
#define DEFER_MAX_MS  60000	       /* ... stays away its backlog's drain time, within these */
#define FAST_DRAIN_MS 100	       /* a backlog that drains this fast is never deferred */
#define IDLE_KEEP_US  (60u * 1000000u) /* an idle endpoint's pace is kept this long */
#define MAX_RESPONSE  1024	       /* response body bytes read; the rest is dropped */
#define MAX_ATTEMPT   100000

/* Where a delivery is. One writer: dl_stage_set. */
enum dl_stage {
	DL_LOADING,    /* event/endpoint/delivery query in flight */
	DL_CANCELLING, /* marking the delivery cancelled (endpoint gone) */
	DL_RESOLVING,  /* host lookup in flight */
	DL_WAITING,    /* ready, in its endpoint's queue for a slot */
	DL_SENDING,    /* HTTP request in flight */
	DL_RECORDING,  /* attempt row being written */
};

/* How the job is settled once the work is done. */
enum dl_settle { SETTLE_ACK, SETTLE_RETRY, SETTLE_REQUEUE, SETTLE_DEAD, SETTLE_RELEASE };

struct wh_endpoint {
	LIST_ENTRY(wh_endpoint) link;
	char id[128];
	int preparing;	      /* loading, cancelling or resolving */
	int nwaiting;	      /* ready, waiting for a slot */
	int active;	      /* HTTP requests in flight: the slots (the cap) */
	int recording;	      /* past their HTTP answer, being recorded */
	uint64_t answer_us;   /* its answer time, moving average; 0 = none yet */
	uint64_t answered_us; /* its last answer, or the request that found none in
				 flight, whichever is later (monotonic) */
	uint64_t idle_us;     /* since when it has had no work; 0 = busy */
	struct delivery_list waiting;
};

struct delivery {
	TAILQ_ENTRY(delivery) link;	 /* w->deliveries */
	TAILQ_ENTRY(delivery) wait_link; /* ep->waiting while DL_WAITING */
	struct webhook *w;
	struct job *job; /* owned by the queue until settled */
	struct wh_endpoint *ep;
	enum dl_stage stage;
	bool preparing;	  /* counted in ep->preparing */
	bool started;	  /* holds a slot: counted in ep->active */
	bool recording;	  /* counted in ep->recording */
	bool busy;	  /* deferred because its endpoint was saturated ... */
	long defer_ms;	  /* ... for this long (plus jitter) */
	uint64_t sent_us; /* when its request started (monotonic) */
	char event_id[128];
	int attempt;
	char *body, *url, *secret; /* malloc'ed */
	size_t body_len;
	char host[256];
	long port;
	char addr[64]; /* the checked address the request goes to */
	struct resolve_req *rq;
	/* The attempt's outcome. */
	long status;
	long latency_ms;
	char error[320];
	const char *state;   /* webhook_deliveries.state to record */
	const char *disable; /* disabled_reason to set on the endpoint, or NULL */
	enum dl_settle settle;
	uint64_t due_ms; /* SETTLE_RETRY */
};

static struct metric *m_delivered, *m_failed, *m_retried, *m_dead, *m_cancelled, *m_latency,
	*m_deferred;

/* The delivery, event and endpoint of every job that starts in the same
 * loop iteration, in one statement: one row per (event, endpoint) in input
 * order; the last column says whether both exist. */
static const char load_sql[] =
	"SELECT e.type, rampart_time_json(e.created_at), e.data::text, w.url, w.secret,"
	" w.enabled, w.deleted_at IS NOT NULL, coalesce(d.state, 'pending'),"
	" e.id IS NOT NULL AND w.id IS NOT NULL"
	" FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS i(event_id, endpoint_id, ord)"
	" LEFT JOIN events e ON e.id = i.event_id"
	" LEFT JOIN webhook_endpoints w ON w.id = i.endpoint_id"
	" LEFT JOIN webhook_deliveries d ON d.event_id = i.event_id AND d.endpoint_id = "
	"i.endpoint_id"
	" ORDER BY i.ord";

/* The attempts finished in the same loop iteration, in one statement (one
 * commit): each attempt row, each delivery's state and (after a 410) its
 * endpoint's. A delivery already delivered stays delivered. A delivery can
 * only be updated once per statement, hence DISTINCT ON (its latest). */
static const char record_sql[] =
	"WITH i AS (SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[],"
	"  $5::int[], $6::text[], $7::text[], $8::text[], $9::bigint[]) WITH ORDINALITY AS"
	"  t(event_id, endpoint_id, attempt, status_code, latency_ms, error, state, disable,"
	"  next_ms, ord)),"
	" a AS (INSERT INTO webhook_attempts"
	"  (event_id, endpoint_id, attempt, status_code, latency_ms, error)"
	"  SELECT event_id, endpoint_id, attempt, status_code, latency_ms, error FROM i),"
	" e AS (UPDATE webhook_endpoints w SET enabled = false, disabled_reason = i.disable,"
	"  updated_at = now() FROM i WHERE w.id = i.endpoint_id AND i.disable IS NOT NULL),"
	" d AS (INSERT INTO webhook_deliveries AS d"
	"  (event_id, endpoint_id, state, attempts, delivered_at, next_attempt_at)"
	"  SELECT DISTINCT ON (event_id, endpoint_id) event_id, endpoint_id, state, 1,"
	"  CASE WHEN state = 'delivered' THEN clock_timestamp() END,"
	"  coalesce(timestamptz 'epoch' + next_ms * interval '1 millisecond', clock_timestamp())"
	"  FROM i ORDER BY event_id, endpoint_id, ord DESC"
	"  ON CONFLICT (event_id, endpoint_id) DO UPDATE SET"
	"  state = CASE WHEN d.state = 'delivered' THEN d.state ELSE EXCLUDED.state END,"
	"  next_attempt_at = EXCLUDED.next_attempt_at,"
	"  attempts = d.attempts + 1, delivered_at = coalesce(d.delivered_at,"
	"  EXCLUDED.delivered_at), updated_at = clock_timestamp())"
	" SELECT 1 FROM i ORDER BY ord";

static const char cancel_sql[] =
	"UPDATE webhook_deliveries SET state = 'cancelled', updated_at = clock_timestamp()"
	" WHERE event_id = $1 AND endpoint_id = $2 AND state = 'pending'";

static const char *const stage_names[] = {"loading", "cancelling", "resolving",
					  "waiting", "sending",	   "recording"};

static void dl_stage_set(struct delivery *d, enum dl_stage to)
{
	if (log_enabled(LOG_DEBUG))
		log_event(LOG_DEBUG, "delivery stage", LF_S("event_id", d->event_id),
			  LF_S("endpoint_id", d->ep->id), LF_S("from", stage_names[d->stage]),
			  LF_S("to", stage_names[to]));
	d->stage = to;
}

/* ---- endpoints and their queues ------------------------------------------ */

/* Frees the endpoints idle for IDLE_KEEP_US (all idle ones if all). */
static void endpoints_sweep(struct webhook *w, bool all)
{
	uint64_t now = clock_mono_us();
	for (int i = 0; i < WH_ENDPOINT_BUCKETS; i++) {
		struct wh_endpoint *ep = LIST_FIRST(&w->endpoints[i]), *next;
		for (; ep; ep = next) {
			next = LIST_NEXT(ep, link);
			if (ep->idle_us > 0 && (all || now - ep->idle_us > IDLE_KEEP_US)) {
				LIST_REMOVE(ep, link);
				free(ep);
			}
		}
	}
	w->endpoints_swept_us = now;
}

static struct wh_endpoint *endpoint_get(struct webhook *w, const char *id)
{
	struct wh_endpoint_list *bucket = &w->endpoints[id_hash(id) % WH_ENDPOINT_BUCKETS];
	struct wh_endpoint *ep;
	if (clock_mono_us() - w->endpoints_swept_us > IDLE_KEEP_US / 4)
		endpoints_sweep(w, false);
	LIST_FOREACH(ep, bucket, link)
	if (strcmp(ep->id, id) == 0) {
		ep->idle_us = 0;
		return ep;
	}
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return NULL;
	snprintf(ep->id, sizeof(ep->id), "%s", id);
	TAILQ_INIT(&ep->waiting);
	LIST_INSERT_HEAD(bucket, ep, link);
	return ep;
}

/* No work left: kept a while, so its next burst starts knowing its pace. */
static void endpoint_maybe_idle(struct wh_endpoint *ep)
{
	if (ep->preparing == 0 && ep->nwaiting == 0 && ep->active == 0 && ep->recording == 0)
		ep->idle_us = clock_mono_us();
}

static void send_attempt(struct delivery *d);
static void settle(struct delivery *d, enum dl_settle how);

static void delivery_free(struct delivery *d)
{
	TAILQ_REMOVE(&d->w->deliveries, d, link);
	free(d->body);
	free(d->url);
	if (d->secret)
		OPENSSL_cleanse(d->secret, strlen(d->secret));
	free(d->secret);
	free(d);
}

static void prepared(struct delivery *d)
{
	if (d->preparing) {
		d->preparing = false;
		d->ep->preparing--;
	}
}

/* Sends the endpoint's waiting deliveries while it has free slots (one that
 * cannot be sent is settled without taking one). */
static void start_waiting(struct webhook *w, struct wh_endpoint *ep)
{
	while (!w->draining && !w->closing && ep->active < w->cfg.endpoint_concurrency &&
	       ep->nwaiting > 0) {
		struct delivery *next = TAILQ_FIRST(&ep->waiting);
		TAILQ_REMOVE(&ep->waiting, next, wait_link);
		ep->nwaiting--;
		send_attempt(next);
	}
}

/* A delivery is loaded and its address checked: it takes one of its
 * endpoint's slots, or waits in line for one. The slots bound requests in
 * flight to the endpoint, not database reads and writes around them. */
static void ready(struct delivery *d)
{
	struct wh_endpoint *ep = d->ep;
	prepared(d);
	if (d->w->draining) { /* SIGTERM: not sent, handed back */
		settle(d, SETTLE_RELEASE);
		return;
	}
	dl_stage_set(d, DL_WAITING);
	TAILQ_INSERT_TAIL(&ep->waiting, d, wait_link);
	ep->nwaiting++;
	start_waiting(d->w, ep);
}

/* The endpoint has answered (or failed to): its slot goes to the next
 * waiting delivery while this attempt is recorded. */
static void slot_release(struct delivery *d)
{
	if (!d->started)
		return;
	d->started = false;
	d->recording = true;
	d->ep->active--;
	d->ep->recording++;
	start_waiting(d->w, d->ep);
}

/* Settles the job as d->settle says, frees d, and starts the endpoint's
 * next waiting job if there is room. */
static void finish(struct delivery *d)
{
	struct webhook *w = d->w;
	struct wh_endpoint *ep = d->ep;
	struct job *job = d->job;

	if (w->closing && d->settle != SETTLE_RELEASE)
		d->settle = SETTLE_RELEASE; /* teardown: hand it back */
	switch (d->settle) {
	case SETTLE_ACK:
		jobq_ack(w->jobs, job);
		break;
	case SETTLE_RETRY:
	case SETTLE_REQUEUE: {
		char attempt[16];
		snprintf(attempt, sizeof(attempt), "%d",
			 d->settle == SETTLE_RETRY ? d->attempt + 1 : d->attempt);
		const char *m[WJ_COUNT] = {[WJ_EVENT_ID] = d->event_id,
					   [WJ_ENDPOINT_ID] = ep->id,
					   [WJ_ATTEMPT] = attempt};
		struct job_field f[WJ_COUNT];
		int nf = ct_fields(&CT_WH_JOB, m, f);
		/* Saturated endpoint: back when its backlog has drained.
		 * Anything else: give the trouble time. */
		long base = d->busy ? d->defer_ms : REQUEUE_MS;
		uint64_t due = d->settle == SETTLE_RETRY
				       ? d->due_ms
				       : (uint64_t)clock_wall_ms() +
						 ((uint64_t)base + rnd_below((uint64_t)base));
		jobq_retry(w->jobs, job, f, nf, due);
		break;
	}
	case SETTLE_DEAD:
		jobq_dead(w->jobs, job, d->error[0] ? d->error : "delivery failed");
		break;
	case SETTLE_RELEASE:
		jobq_release(w->jobs, job);
		break;
	}
	prepared(d);
	if (d->started)
		ep->active--;
	if (d->recording)
		ep->recording--;
	delivery_free(d);
	start_waiting(w, ep);
	endpoint_maybe_idle(ep);
}

static void settle(struct delivery *d, enum dl_settle how)
{
	d->settle = how;
	finish(d);
}

/* ---- recording an attempt --------------------------------------------------- */

static void record_done(void *arg, const PGresult *res, int row, const char *err)
{
	struct delivery *d = arg;
	(void)res;
	(void)row;
	/* The job is settled by the outcome even when the row could not be
	 * written: an unrecorded success leaves the delivery never attempted,
	 * so the relay's stale pass sends it again (receivers deduplicate). */
	if (err && !d->w->closing)
		log_event(LOG_WARN, "could not record a webhook attempt", LF_S("error", err),
			  LF_S("event_id", d->event_id), LF_S("endpoint_id", d->ep->id));
	finish(d);
}

/* Writes the attempt (status, latency, error) and the delivery's new state,
 * then settles as d->settle says. */
static void record(struct delivery *d)
{
	char attempt[16], status[16], latency[24], next[24];
	snprintf(attempt, sizeof(attempt), "%d", d->attempt);
	snprintf(next, sizeof(next), "%" PRIu64, d->due_ms);
	snprintf(status, sizeof(status), "%ld", d->status);
	snprintf(latency, sizeof(latency), "%ld", d->latency_ms);
	const char *params[] = {d->event_id, d->ep->id, attempt, d->status > 0 ? status : NULL,
				d->latency_ms >= 0 ? latency : NULL, d->error[0] ? d->error : NULL,
				d->state, d->disable,
				/* when the retry is due: the relay's overdue pass
				 * finds it if its job is lost */
				d->settle == SETTLE_RETRY ? next : NULL};
	dl_stage_set(d, DL_RECORDING);
	if (pg_batcher_add(d->w->record_batch, params, record_done, d) != 0) {
		log_event(LOG_WARN, "could not record a webhook attempt (pool busy)",
			  LF_S("event_id", d->event_id), LF_S("endpoint_id", d->ep->id));
		finish(d);
	}
}

/* A failed attempt: retry on the schedule (honouring retry_after_s, -1 if
 * none), or dead-letter once it is exhausted. Then record. */
static void failed_attempt(struct delivery *d, long long retry_after_s)
{
	long long delay =
		retry_delay_ms(d->w->cfg.schedule, d->w->cfg.nschedule, d->attempt, retry_after_s,
			       (double)rnd_below(1u << 30) / (double)(1u << 30));
	if (delay < 0) {
		d->state = "dead";
		d->settle = SETTLE_DEAD;
		metric_inc(m_dead);
	} else {
		d->state = "pending";
		d->settle = SETTLE_RETRY;
		d->due_ms = (uint64_t)clock_wall_ms() + (uint64_t)delay;
		metric_inc(m_retried);
	}
	log_event(LOG_INFO,
		  delay < 0 ? "webhook delivery failed; schedule exhausted, dead-lettered"
			    : "webhook delivery failed; will retry",
		  LF_S("event_id", d->event_id), LF_S("endpoint_id", d->ep->id),
		  LF_I("attempt", d->attempt), LF_I("status", d->status),
		  LF_S("error", d->error[0] ? d->error : NULL), LF_I("retry_in_ms", delay));
	record(d);
}

/* ---- sending ------------------------------------------------------------------ */

/* The SSRF guard refused the target (d->error says why): dead for good,
 * retrying will not make the address public. */
static void refused(struct delivery *d)
{
	d->state = "dead";
	d->settle = SETTLE_DEAD;
	metric_inc(m_failed);
	log_event(LOG_WARN, "webhook target refused", LF_S("endpoint_id", d->ep->id),
		  LF_S("event_id", d->event_id), LF_S("error", d->error));
	record(d);
}

/* httpc's check_addr: the address curl actually connects to must be public
 * too (not only the one resolved and pinned: DNS rebinding, a proxy). */
static const char *connect_check(void *arg, const char *addr)
{
	(void)arg;
	return ssrf_address_problem(addr);
}

static void http_done(void *arg, const struct httpc_response *r)
{
	struct delivery *d = arg;
	struct webhook *w = d->w;
	w->sending--;
	if (w->closing) {
		settle(d, SETTLE_RELEASE);
		return;
	}
	slot_release(d);
	struct wh_endpoint *ep = d->ep;
	uint64_t now = clock_mono_us(), took = now > d->sent_us ? now - d->sent_us : 1;
	ep->answer_us = ep->answer_us > 0 ? (ep->answer_us * 7 + took) / 8 : took;
	ep->answered_us = now;
	d->status = r->status;
	d->latency_ms = r->latency_ms;
	metric_observe_us(m_latency, (uint64_t)(r->latency_ms > 0 ? r->latency_ms : 0) * 1000u);
	if (r->addr_refused) { /* the connect-time SSRF check (check_addr) */
		snprintf(d->error, sizeof(d->error),
			 "refused at connect: %s (WEBHOOK_ALLOW_PRIVATE=0)", r->error);
		refused(d);
	} else if (r->error) {
		snprintf(d->error, sizeof(d->error), "%s", r->error);
		failed_attempt(d, -1);
	} else if (r->status >= 200 && r->status < 300) {
		d->state = "delivered";
		d->settle = SETTLE_ACK;
		metric_inc(m_delivered);
		log_event(LOG_INFO, "webhook delivered", LF_S("event_id", d->event_id),
			  LF_S("endpoint_id", d->ep->id), LF_I("attempt", d->attempt),
			  LF_I("status", r->status), LF_I("latency_ms", r->latency_ms));
		record(d);
	} else if (r->status == 410) {
		snprintf(d->error, sizeof(d->error),
			 "receiver answered 410 Gone; endpoint disabled");
		d->state = "failed";
		d->disable = "receiver answered 410 Gone";
		d->settle = SETTLE_ACK;
		metric_inc(m_failed);
		log_event(LOG_WARN, "webhook endpoint disabled: the receiver answered 410",
			  LF_S("endpoint_id", d->ep->id), LF_S("event_id", d->event_id));
		record(d);
	} else {
		long long ra = -1;
		if (r->status == 429 || r->status == 502 || r->status == 503)
			ra = retry_after_parse(httpc_header(r, "retry-after"),
					       (long long)(clock_wall_ms() / 1000));
		snprintf(d->error, sizeof(d->error), "HTTP %ld", r->status);
		failed_attempt(d, ra);
	}
}

static void send_attempt(struct delivery *d)
{
	struct webhook *w = d->w;
	const char *addr = d->addr;
	char sig[SIGN_WEBHOOK_MAX], h_id[160], h_ts[48], h_sig[SIGN_WEBHOOK_MAX + 32], pin[400];
	long long now = (long long)(clock_wall_ms() / 1000);

	if (sign_webhook(d->secret, d->event_id, now, d->body, d->body_len, sig) != 0) {
		snprintf(d->error, sizeof(d->error),
			 "endpoint secret is not a valid whsec_ secret");
		d->status = 0;
		d->latency_ms = -1;
		d->state = "dead";
		d->settle = SETTLE_DEAD;
		metric_inc(m_dead);
		record(d);
		return;
	}
	snprintf(h_id, sizeof(h_id), "webhook-id: %s", d->event_id);
	snprintf(h_ts, sizeof(h_ts), "webhook-timestamp: %lld", now);
	snprintf(h_sig, sizeof(h_sig), "webhook-signature: %s", sig);
	const char *headers[] = {"Content-Type: application/json", h_id, h_ts, h_sig, NULL};
	/* Pin the name to the address that was checked, so curl cannot
	 * resolve it again to another one (DNS rebinding). */
	const char *resolve[] = {pin, NULL};
	bool pinned = !resolve_is_numeric(d->host);
	if (pinned)
		snprintf(pin, sizeof(pin), strchr(addr, ':') ? "%s:%ld:[%s]" : "%s:%ld:%s", d->host,
			 d->port, addr);
	struct httpc_request req = {.method = "POST",
				    .url = d->url,
				    .headers = headers,
				    .body = d->body,
				    .body_len = d->body_len,
				    .timeout_ms = w->cfg.timeout_ms,
				    .max_response = MAX_RESPONSE,
				    .resolve = pinned ? resolve : NULL,
				    .check_addr = w->cfg.allow_private ? NULL : connect_check};
	dl_stage_set(d, DL_SENDING);
	if (httpc_send(w->http, &req, http_done, d) != 0) {
		snprintf(d->error, sizeof(d->error), "could not start the request");
		d->latency_ms = -1;
		failed_attempt(d, -1);
		return;
	}
	d->started = true; /* its slot, until the answer */
	d->sent_us = clock_mono_us();
	if (d->ep->active == 0) /* waiting for it starts now */
		d->ep->answered_us = d->sent_us;
	d->ep->active++;
	w->sending++;
}

static void resolved(void *arg, const char *addr, const char *err)
{
	struct delivery *d = arg;
	struct webhook *w = d->w;
	d->rq = NULL;
	if (!addr) {
		snprintf(d->error, sizeof(d->error), "cannot resolve %s: %s", d->host,
			 err ? err : "no address");
		d->latency_ms = -1;
		failed_attempt(d, -1);
		return;
	}
	const char *problem = ssrf_address_problem(addr);
	if (problem && !w->cfg.allow_private) {
		snprintf(d->error, sizeof(d->error),
			 "refused: %s is a private address (%s; WEBHOOK_ALLOW_PRIVATE=0)", addr,
			 problem);
		d->latency_ms = -1;
		refused(d);
		return;
	}
	snprintf(d->addr, sizeof(d->addr), "%s", addr);
	ready(d);
}

/* Splits the endpoint URL into host and port. Returns 0 or -1 (d->error set). */
static int parse_url(struct delivery *d)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *scheme = NULL;
	int rc = -1;
	if (!u || curl_url_set(u, CURLUPART_URL, d->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		snprintf(d->error, sizeof(d->error), "endpoint URL does not parse");
		goto done;
	}
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		snprintf(d->error, sizeof(d->error), "endpoint URL scheme must be http or https");
		goto done;
	}
	size_t n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') { /* IPv6 literal */
		host[n - 1] = '\0';
		memmove(host, host + 1, n - 1);
	}
	if (!*host || strlen(host) >= sizeof(d->host) || strchr(host, '%')) {
		snprintf(d->error, sizeof(d->error), "endpoint URL host is not usable");
		goto done;
	}
	snprintf(d->host, sizeof(d->host), "%s", host);
	d->port = strtol(port, NULL, 10);
	rc = 0;
done:
	curl_free(host);
	curl_free(port);
	curl_free(scheme);
	curl_url_cleanup(u);
	return rc;
}

/* ---- loading -------------------------------------------------------------------- */

static void cancel_done(void *arg, const PGresult *res, const char *err)
{
	struct delivery *d = arg;
	(void)res;
	if (err && !d->w->closing) {
		log_event(LOG_WARN, "could not cancel a delivery", LF_S("error", err),
			  LF_S("event_id", d->event_id));
		settle(d, SETTLE_REQUEUE);
		return;
	}
	metric_inc(m_cancelled);
	settle(d, SETTLE_ACK);
}

/* {id, type, created_at, data}: built from the stored event, so every
 * attempt sends the same bytes. Returns 0 or -1. */
static int build_body(struct delivery *d, const PGresult *res, int row)
{
	json_error_t jerr;
	json_t *data = json_loads(PQgetvalue(res, row, 2), 0, &jerr);
	if (!data)
		return -1;
	json_t *o = json_pack("{s:s, s:s, s:s, s:o}", "id", d->event_id, "type",
			      PQgetvalue(res, row, 0), "created_at", PQgetvalue(res, row, 1),
			      "data", data);
	d->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!d->body)
		return -1;
	d->body_len = strlen(d->body);
	return 0;
}

static void load_done(void *arg, const PGresult *res, int row, const char *err)
{
	struct delivery *d = arg;
	struct webhook *w = d->w;
	if (!err && row < 0)
		err = "no result row";
	if (err) {
		if (!w->closing)
			log_event(LOG_WARN, "could not load a delivery; requeued",
				  LF_S("error", err), LF_S("event_id", d->event_id));
		settle(d, SETTLE_REQUEUE);
		return;
	}
	if (PQgetvalue(res, row, 8)[0] != 't') {
		log_event(LOG_WARN, "delivery dropped: event or endpoint unknown",
			  LF_S("event_id", d->event_id), LF_S("endpoint_id", d->ep->id));
		settle(d, SETTLE_ACK);
		return;
	}
	bool enabled = PQgetvalue(res, row, 5)[0] == 't';
	bool deleted = PQgetvalue(res, row, 6)[0] == 't';
	const char *state = PQgetvalue(res, row, 7);
	if (deleted || !enabled) {
		const char *params[] = {d->event_id, d->ep->id};
		log_event(LOG_INFO, "delivery cancelled: endpoint deleted or disabled",
			  LF_S("event_id", d->event_id), LF_S("endpoint_id", d->ep->id));
		dl_stage_set(d, DL_CANCELLING);
		if (pg_exec(w->pg, w->stmt_cancel, params, cancel_done, d) != 0)
			settle(d, SETTLE_REQUEUE);
		return;
	}
	if (strcmp(state, "pending") != 0) { /* delivered, or settled for good */
		settle(d, SETTLE_ACK);
		return;
	}
	d->url = strdup(PQgetvalue(res, row, 3));
	d->secret = strdup(PQgetvalue(res, row, 4));
	if (!d->url || !d->secret || build_body(d, res, row) != 0) {
		snprintf(d->error, sizeof(d->error), "cannot build the request body");
		settle(d, SETTLE_DEAD);
		return;
	}
	if (parse_url(d) != 0) {
		d->latency_ms = -1;
		d->state = "dead";
		d->settle = SETTLE_DEAD;
		metric_inc(m_dead);
		record(d);
		return;
	}
	dl_stage_set(d, DL_RESOLVING);
	/* resolve_start may answer before it returns (literal, hosts file):
	 * then it returns NULL and d may already be gone. */
	struct resolve_req *rq = resolve_start(w->dns, d->host, resolved, d);
	if (rq)
		d->rq = rq;
}

static void begin(struct delivery *d)
{
	struct webhook *w = d->w;
	const char *params[] = {d->event_id, d->ep->id};
	d->preparing = true;
	d->ep->preparing++;
	dl_stage_set(d, DL_LOADING);
	if (pg_batcher_add(w->load_batch, params, load_done, d) != 0)
		settle(d, SETTLE_REQUEUE);
}

/* ---- the job handler ---------------------------------------------------------- */

/* About how long the endpoint's backlog (loading or waiting for a slot) takes
 * to drain at the pace it answers: per slot, its average answer time, or the
 * time it has kept us waiting since its last answer if that is longer (before
 * its first answer, only the latter; 0 with nothing sent yet). */
static long long drain_ms(const struct webhook *w, const struct wh_endpoint *ep)
{
	uint64_t per = ep->answer_us, now = clock_mono_us();
	if (ep->active > 0 && now - ep->answered_us > per)
		per = now - ep->answered_us;
	return (long long)((uint64_t)(ep->preparing + ep->nwaiting) * per /
			   (uint64_t)w->cfg.endpoint_concurrency / 1000u);
}

/* How long a job for a saturated endpoint stays away: its backlog's drain
 * time, so a fast endpoint's jobs are back in tens of ms and a dead one's are
 * not read again and again while it times out. */
static long defer_ms(long long drain)
{
	return drain < DEFER_MIN_MS   ? DEFER_MIN_MS
	       : drain > DEFER_MAX_MS ? DEFER_MAX_MS
				      : (long)drain;
}

/* A job {event_id, endpoint_id, attempt}: starts loading it, unless its
 * endpoint already has too many deliveries waiting. */
void delivery_handle(void *arg, struct job *job)
{
	struct webhook *w = arg;
	const char *m[WJ_COUNT];
	ct_read_job(&CT_WH_JOB, job, m);
	const char *event_id = m[WJ_EVENT_ID];
	const char *endpoint_id = m[WJ_ENDPOINT_ID];
	const char *attempt = m[WJ_ATTEMPT];
	char *end = NULL;
	long n = attempt ? strtol(attempt, &end, 10) : 0;

	if (!event_id || !endpoint_id || !*event_id || !*endpoint_id ||
	    strlen(event_id) >= sizeof(((struct delivery *)0)->event_id) ||
	    strlen(endpoint_id) >= sizeof(((struct wh_endpoint *)0)->id) || !attempt || *end ||
	    n < 1 || n > MAX_ATTEMPT) {
		jobq_dead(w->jobs, job, "malformed job: needs event_id, endpoint_id, attempt >= 1");
		return;
	}
	if (w->draining) {
		jobq_release(w->jobs, job);
		return;
	}
	struct delivery *d = calloc(1, sizeof(*d));
	struct wh_endpoint *ep = d ? endpoint_get(w, endpoint_id) : NULL;
	if (!ep) {
		free(d);
		jobq_release(w->jobs, job);
		return;
	}
	d->w = w;
	d->job = job;
	d->ep = ep;
	d->attempt = (int)n;
	d->latency_ms = -1;
	snprintf(d->event_id, sizeof(d->event_id), "%s", event_id);
	TAILQ_INSERT_TAIL(&w->deliveries, d, link);
	/* One endpoint may hold up to half the daemon's in-flight jobs before
	 * its slots (loading or waiting for one); beyond, its jobs are
	 * deferred, so the other half stays free for the other endpoints -
	 * unless it answers fast enough to clear them within FAST_DRAIN_MS,
	 * when deferring would only delay them. */
	long long drain = drain_ms(w, ep);
	if (ep->preparing + ep->nwaiting < (w->cfg.concurrency + 1) / 2 ||
	    (ep->answer_us > 0 && drain < FAST_DRAIN_MS)) { /* its pace is known */
		begin(d);
	} else {
		d->busy = true;
		d->defer_ms = defer_ms(drain);
		metric_inc(m_deferred);
		log_event(LOG_DEBUG, "delivery deferred: its endpoint has too many waiting",
			  LF_S("event_id", d->event_id), LF_S("endpoint_id", ep->id),
			  LF_I("backlog", ep->preparing + ep->nwaiting), LF_I("drain_ms", drain),
			  LF_I("answer_us", (long long)ep->answer_us),
			  LF_I("defer_ms", d->defer_ms));
		settle(d, SETTLE_REQUEUE); /* this endpoint is saturated: come back later */
	}
}

void delivery_release_waiting(struct webhook *w)
{
	for (int i = 0; i < WH_ENDPOINT_BUCKETS; i++) {
		struct wh_endpoint *ep;
		LIST_FOREACH(ep, &w->endpoints[i], link)
		{
			struct delivery *d;
			while ((d = TAILQ_FIRST(&ep->waiting))) {
				TAILQ_REMOVE(&ep->waiting, d, wait_link);
				ep->nwaiting--;
				jobq_release(w->jobs, d->job);
				delivery_free(d);
			}
			endpoint_maybe_idle(ep);
		}
	}
}

void delivery_cancel_lookups(struct webhook *w)
{
	struct delivery *d;
	TAILQ_FOREACH(d, &w->deliveries, link)
	if (d->rq) {
		resolve_cancel(d->rq);
		d->rq = NULL; /* its callback will not run; released at shutdown */
	}
}

void delivery_shutdown(struct webhook *w)
{
	struct delivery *d;
	delivery_release_waiting(w);
	while ((d = TAILQ_FIRST(&w->deliveries))) {
		if (d->rq)
			resolve_cancel(d->rq);
		d->rq = NULL;
		settle(d, SETTLE_RELEASE);
	}
	endpoints_sweep(w, true);
}

int delivery_init(struct webhook *w)
{
	/* Loads and records of the deliveries that reach that point in the same
	 * loop iteration share one statement (and one commit). */
	w->load_batch = pg_batcher_new(w->pg, load_sql, 2, 256, w->cfg.db_pool_size);
	w->record_batch = pg_batcher_new(w->pg, record_sql, 9, 256, w->cfg.db_pool_size);
	w->stmt_cancel = pg_prepare(w->pg, cancel_sql, 2);
	const char *help = "Webhook delivery attempts by outcome";
	m_delivered =
		metrics_counter("rampart_webhook_deliveries_total", help, "outcome=\"delivered\"");
	m_failed = metrics_counter("rampart_webhook_deliveries_total", help, "outcome=\"failed\"");
	m_retried =
		metrics_counter("rampart_webhook_deliveries_total", help, "outcome=\"retried\"");
	m_dead = metrics_counter("rampart_webhook_deliveries_total", help, "outcome=\"dead\"");
	m_cancelled =
		metrics_counter("rampart_webhook_deliveries_total", help, "outcome=\"cancelled\"");
	m_deferred = metrics_counter(
		"rampart_webhook_jobs_deferred_total",
		"Jobs put back for a while: their endpoint had too many waiting", "");
	m_latency = metrics_histogram("rampart_webhook_latency_seconds",
				      "Webhook request latency (each attempt)", "",
				      metrics_latency_bounds, metrics_latency_nbounds);
	return w->load_batch && w->record_batch && w->stmt_cancel >= 0 ? 0 : -1;
}
