/* webhooks.c - webhook endpoints (create, list, delete) and the event log
 * (GET /v1/events/{id}, manual redelivery) of SPEC 4 and 8. Delivery itself is
 * the webhook daemon's: this file only writes rows and queues jobs for it. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "common/contracts.h"
#include "common/ids.h"
#include "common/jobs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/payment.h"
#include "common/pg.h"
#include "common/redis.h"
#include "common/ssrf.h"

#define URL_MAX		2048 /* bytes; the table's CHECK says the same */
#define DESCRIPTION_MAX 512
#define SECRET_BYTES	24 /* base64: 32 characters */
#define LIST_LIMIT	100
#define JOBS_MAXLEN	1000000L

/* ------------------------------------------------------------------------ */
/* SQL                                                                      */
/* ------------------------------------------------------------------------ */

/* The public endpoint object, without the secret. json (not jsonb) keeps the
 * keys in this order, so the text goes to the client as it is. */
#define ENDPOINT_JSON(w)                                                                          \
	"'id', " w ".id, 'object', 'webhook_endpoint', 'url', " w ".url, 'events', " w ".events," \
	" 'enabled', " w ".enabled, 'disabled_reason', " w ".disabled_reason,"                    \
	" 'created_at', rampart_time_json(" w ".created_at)"

/* $1 id, $2 api key id, $3 url, $4 events as a JSON array of strings,
 * $5 secret. The only answer that carries the secret. */
static const char create_sql[] =
	"INSERT INTO webhook_endpoints (id, api_key_id, url, events, secret)"
	" VALUES ($1, $2, $3, ARRAY(SELECT jsonb_array_elements_text($4::jsonb)), $5)"
	" RETURNING json_build_object(" ENDPOINT_JSON(
		"webhook_endpoints") ","
				     " 'secret', secret)::text, id";

/* Live endpoints, newest first: one row with the whole list object. $1 is
 * the page size; one more row is read to learn has_more. */
static const char list_sql[] =
	"WITH w AS (SELECT * FROM webhook_endpoints WHERE deleted_at IS NULL"
	" ORDER BY created_at DESC, id DESC LIMIT $1::int + 1)"
	" SELECT json_build_object('object', 'list', 'data', coalesce("
	"  (SELECT json_agg(json_build_object(" ENDPOINT_JSON(
		"p") ") ORDER BY p.created_at DESC,"
		     "   p.id DESC) FROM (SELECT * FROM w ORDER BY created_at DESC, id DESC LIMIT "
		     "$1) p),"
		     "  '[]'), 'has_more', (SELECT count(*) > $1::int FROM w))::text";

/* Soft delete, and cancel the endpoint's deliveries still waiting, in one
 * statement (so one transaction). Returns 1 row: whether the endpoint was
 * live. Deliveries already in flight in the daemon see deleted_at. */
static const char delete_sql[] =
	"WITH w AS (UPDATE webhook_endpoints SET deleted_at = now(), enabled = false,"
	"  updated_at = now() WHERE id = $1 AND deleted_at IS NULL RETURNING id),"
	" d AS (UPDATE webhook_deliveries SET state = 'cancelled', updated_at = now()"
	"  WHERE endpoint_id IN (SELECT id FROM w) AND state = 'pending')"
	" SELECT EXISTS (SELECT 1 FROM w)";

/* An event with its deliveries and every attempt, in one round trip. */
static const char event_get_sql[] = "SELECT " EVENT_JSON_SQL "::text"
				    " FROM events e WHERE e.id = $1";

/* Every live (not deleted, enabled) endpoint subscribed to the event's type
 * gets its delivery back to 'pending' (created if missing; attempts kept).
 * One row: whether the event exists, and the endpoint ids as a JSON array,
 * oldest endpoint first. */
static const char redeliver_sql[] =
	"WITH e AS (SELECT id, type FROM events WHERE id = $1),"
	" t AS (SELECT w.id, w.created_at FROM webhook_endpoints w, e"
	"  WHERE w.deleted_at IS NULL AND w.enabled"
	"  AND (e.type = ANY (w.events) OR '*' = ANY (w.events))),"
	" u AS (INSERT INTO webhook_deliveries (event_id, endpoint_id, state)"
	"  SELECT $1, t.id, 'pending' FROM t"
	"  ON CONFLICT (event_id, endpoint_id) DO UPDATE SET state = 'pending', updated_at = now()"
	"  RETURNING endpoint_id)"
	" SELECT EXISTS (SELECT 1 FROM e),"
	"  coalesce((SELECT json_agg(t.id ORDER BY t.created_at, t.id)"
	"   FROM t JOIN u ON u.endpoint_id = t.id), '[]')::text";

/* ------------------------------------------------------------------------ */
/* Shared helpers                                                           */
/* ------------------------------------------------------------------------ */

static struct metric *m_created, *m_deleted, *m_redelivered, *m_enqueue_failed;

int webhooks_init(struct loop *l)
{
	struct pg_pool *pg = l->pg;
	l->stmts[STMT_WEBHOOK_CREATE] = pg_prepare(pg, create_sql, 5);
	l->stmts[STMT_WEBHOOK_LIST] = pg_prepare(pg, list_sql, 1);
	l->stmts[STMT_WEBHOOK_DELETE] = pg_prepare(pg, delete_sql, 1);
	l->stmts[STMT_EVENT_GET] = pg_prepare(pg, event_get_sql, 1);
	l->stmts[STMT_EVENT_REDELIVER] = pg_prepare(pg, redeliver_sql, 1);
	for (int s = STMT_WEBHOOK_CREATE; s <= STMT_EVENT_REDELIVER; s++)
		if (l->stmts[s] < 0)
			return -1;
	m_created = metrics_counter("rampart_webhook_endpoints_created_total",
				    "Webhook endpoints created", "");
	m_deleted = metrics_counter("rampart_webhook_endpoints_deleted_total",
				    "Webhook endpoints deleted", "");
	m_redelivered =
		metrics_counter("rampart_event_redeliveries_total",
				"Deliveries queued again by POST /v1/events/{id}/redeliver", "");
	m_enqueue_failed = metrics_counter("rampart_event_redelivery_enqueue_failures_total",
					   "Redelivery jobs that could not be added to Redis", "");
	return 0;
}

static void reply_db_down(struct http_req *r, const char *what, const char *err)
{
	log_event(LOG_WARN, what, LF_S("request_id", http_req_id(r)), LF_S("error", err));
	http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "database unavailable");
}

/* Replies with a JSON text made by PostgreSQL (borrowed). */
static void reply_text(struct http_req *r, int status, const PGresult *res, int col)
{
	http_reply_raw(r, status, "application/json", PQgetvalue(res, 0, col),
		       (size_t)PQgetlength(res, 0, col));
}

static void reply_bad_endpoint_id(struct http_req *r)
{
	http_reply_error(r, 400, "INVALID_ID", "id",
			 "webhook endpoint ids look like we_<uuid>, e.g. "
			 "we_2f1c0b7e-6a55-4e0c-9a51-6d1f3b2b1c9e");
}

static void reply_bad_event_id(struct http_req *r)
{
	http_reply_error(r, 400, "INVALID_ID", "id",
			 "event ids look like evt_<uuid>, e.g. "
			 "evt_2f1c0b7e-6a55-4e0c-9a51-6d1f3b2b1c9e");
}

/* ------------------------------------------------------------------------ */
/* Validation (pure)                                                        */
/* ------------------------------------------------------------------------ */

/* An absolute http:// or https:// URL with a host: scheme (any case), then an
 * authority holding a non-empty host (a name, IPv4, or [IPv6]) and an
 * optional port 1..65535; no spaces or control characters anywhere. Whether
 * the host resolves, or is private, is the daemon's concern at delivery. */
static bool url_valid(const char *url)
{
	const char *p;
	size_t n = strlen(url);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] == 0x7f)
			return false;
	if (strncasecmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		p = url + 8;
	else
		return false;
	size_t alen = strcspn(p, "/?#");
	const char *end = p + alen;
	const char *at = NULL;
	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q;
	const char *host = at ? at + 1 : p;
	const char *port = NULL;
	if (host < end && *host == '[') {
		const char *close = memchr(host, ']', (size_t)(end - host));
		if (!close || close == host + 1)
			return false;
		if (close + 1 < end) {
			if (close[1] != ':')
				return false;
			port = close + 2;
		}
	} else {
		const char *colon = memchr(host, ':', (size_t)(end - host));
		if ((colon ? colon : end) == host)
			return false;
		if (colon)
			port = colon + 1;
	}
	if (port) {
		long v = 0;
		if (port == end || end - port > 5)
			return false;
		for (const char *q = port; q < end; q++) {
			if (*q < '0' || *q > '9')
				return false;
			v = v * 10 + (*q - '0');
		}
		if (v < 1 || v > 65535)
			return false;
	}
	return true;
}

/* The event types of SPEC 8 an endpoint may subscribe to, besides "*": one
 * per payment state (common/payment.h). */
static bool event_type_known(const char *s)
{
	enum pay_state st;
	return pay_event_parse(s, &st) == 0;
}

/* Checks the events member and returns it as a new array without
 * duplicates (caller json_decref's), or NULL with *e set. */
static json_t *events_checked(const json_t *body, struct jv_error *e)
{
	const json_t *ev = json_object_get(body, "events");
	json_t *out = NULL;
	size_t i;
	const json_t *v;
	bool star = false;

	if (!ev || json_is_null(ev)) {
		jv_fail(e, 400, "MISSING_FIELD", "events", "events is required");
		return NULL;
	}
	if (!json_is_array(ev)) {
		jv_fail(e, 400, "INVALID_FIELD", "events",
			"events must be an array of event types");
		return NULL;
	}
	if (json_array_size(ev) == 0) {
		jv_fail(e, 400, "INVALID_EVENTS", "events",
			"events must name at least one event type, or be [\"*\"] for all");
		return NULL;
	}
	if (!(out = json_array())) {
		jv_fail(e, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
		return NULL;
	}
	json_array_foreach(ev, i, v)
	{
		const char *s = json_string_value(v);
		if (!s) {
			jv_fail(e, 400, "INVALID_FIELD", "events",
				"events must be an array of strings (element %zu is not)", i);
			goto fail;
		}
		if (strcmp(s, "*") == 0) {
			star = true;
		} else if (!event_type_known(s)) {
			/* %.60s: the message buffer is 200 bytes. */
			jv_fail(e, 400, "INVALID_EVENTS", "events",
				"unknown event type \"%.60s\"; see the list in docs/api.md", s);
			goto fail;
		}
		bool dup = false;
		size_t j;
		const json_t *w;
		json_array_foreach(out, j, w)
		{
			if (strcmp(json_string_value(w), s) == 0)
				dup = true;
		}
		if (!dup && json_array_append_new(out, json_string(s)) != 0) {
			jv_fail(e, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
			goto fail;
		}
	}
	if (star && json_array_size(out) > 1) {
		jv_fail(e, 400, "INVALID_EVENTS", "events",
			"\"*\" subscribes to every event type and must be alone");
		goto fail;
	}
	return out;
fail:
	json_decref(out);
	return NULL;
}

/* "whsec_" + base64 of SECRET_BYTES random bytes. Returns 0 or -1. */
static int secret_new(char out[64])
{
	unsigned char raw[SECRET_BYTES];
	memcpy(out, "whsec_", 6);
	if (id_random_bytes(raw, sizeof(raw)) != 0)
		return -1;
	/* 4 * ceil(24 / 3) = 32 characters plus a NUL: fits in 64 - 6. */
	EVP_EncodeBlock((unsigned char *)out + 6, raw, (int)sizeof(raw));
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

/* ------------------------------------------------------------------------ */
/* POST /v1/webhook_endpoints                                               */
/* ------------------------------------------------------------------------ */

static void create_done(void *arg, const PGresult *res, const char *err)
{
	struct http_req *r = arg;
	if (err) {
		/* Only the SQLSTATE is logged: a constraint error's detail holds
		 * the failing row, secret included. */
		const char *state = pg_sqlstate(res);
		log_event(LOG_WARN, "webhook endpoint not created",
			  LF_S("request_id", http_req_id(r)), LF_S("sqlstate", state));
		if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)
			http_reply_error(r, 400, "INVALID_REQUEST", NULL,
					 "the webhook endpoint could not be stored: invalid data");
		else
			http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL,
					 "database unavailable");
		return;
	}
	if (PQntuples(res) != 1) {
		reply_db_down(r, "webhook endpoint not created", "unexpected result");
		return;
	}
	metric_inc(m_created);
	log_event(LOG_INFO, "webhook endpoint created", LF_S("request_id", http_req_id(r)),
		  LF_S("endpoint_id", PQgetvalue(res, 0, 1)));
	reply_text(r, 201, res, 0);
}

json_t *webhooks_validate(const json_t *body, bool allow_private, const char **url_out,
			  struct jv_error *e)
{
	static const struct jv_field fields[] = {
		{"description", JV_STRING, false, DESCRIPTION_MAX, NULL},
	};
	json_t *events;

	const json_t *jurl = json_object_get(body, "url");
	if (!jurl || json_is_null(jurl)) {
		jv_fail(e, 400, "MISSING_FIELD", "url", "url is required");
		return NULL;
	}
	const char *url = json_string_value(jurl);
	if (!url) {
		jv_fail(e, 400, "INVALID_FIELD", "url", "url must be a string");
		return NULL;
	}
	if (json_string_length(jurl) > URL_MAX) {
		jv_fail(e, 400, "INVALID_URL", "url", "url must be at most %d bytes", URL_MAX);
		return NULL;
	}
	if (strlen(url) != json_string_length(jurl) || !url_valid(url)) {
		jv_fail(e, 400, "INVALID_URL", "url",
			"url must be an absolute http:// or https:// URL with a host");
		return NULL;
	}
	if (!allow_private) {
		char host[256];
		const char *why = ssrf_url_problem(url, host, sizeof(host));
		if (why && strcmp(why, "not a URL") == 0) {
			jv_fail(e, 400, "INVALID_URL", "url",
				"url must be an absolute http:// or https:// URL with a host");
			return NULL;
		}
		if (why) {
			jv_fail(e, 400, "INVALID_URL", "url",
				"url's host %s is not a public address (%s): webhooks are not "
				"delivered there (WEBHOOK_ALLOW_PRIVATE=0)",
				host, why);
			return NULL;
		}
	}
	if (!(events = events_checked(body, e)))
		return NULL;
	if (jv_check(body, fields, sizeof(fields) / sizeof(fields[0]), e) != 0) {
		json_decref(events);
		return NULL;
	}
	*url_out = url;
	return events;
}

/* POST /v1/webhook_endpoints {url, events, description?} */
void webhooks_create(struct http_req *r, void *arg)
{
	struct loop *l = arg;
	json_t *body = http_req_json(r);
	json_t *events = NULL;
	char *events_text = NULL;
	char id[ID_MAX], secret[64];
	struct jv_error e;
	const char *url = NULL;

	if (!(events = webhooks_validate(body, l->app->cfg.webhook_allow_private, &url, &e)))
		goto bad;
	if (!(events_text = jv_dump(events, NULL))) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
		goto done;
	}
	if (id_new("we", id) != 0 || secret_new(secret) != 0) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "random source unavailable");
		goto done;
	}
	const char *params[] = {id, auth_principal(r)->key_id, url, events_text, secret};
	if (pg_exec(l->pg, l->stmts[STMT_WEBHOOK_CREATE], params, create_done, r) != 0)
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "database unavailable");
	OPENSSL_cleanse(secret, sizeof(secret)); /* pg_exec copied it */
	goto done;
bad:
	http_reply_error(r, e.status, e.code, e.param[0] ? e.param : NULL, "%s", e.message);
done:
	free(events_text);
	json_decref(events);
}

/* ------------------------------------------------------------------------ */
/* GET /v1/webhook_endpoints                                                */
/* ------------------------------------------------------------------------ */

static void list_done(void *arg, const PGresult *res, const char *err)
{
	struct http_req *r = arg;
	if (err) {
		reply_db_down(r, "webhook endpoint list failed", err);
		return;
	}
	if (PQntuples(res) != 1) {
		reply_db_down(r, "webhook endpoint list failed", "unexpected result");
		return;
	}
	reply_text(r, 200, res, 0);
}

/* GET /v1/webhook_endpoints */
void webhooks_list(struct http_req *r, void *arg)
{
	struct loop *l = arg;
	char limit[8];
	snprintf(limit, sizeof(limit), "%d", LIST_LIMIT);
	const char *params[] = {limit};
	if (pg_exec(l->pg, l->stmts[STMT_WEBHOOK_LIST], params, list_done, r) != 0)
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "database unavailable");
}

/* ------------------------------------------------------------------------ */
/* DELETE /v1/webhook_endpoints/{id}                                        */
/* ------------------------------------------------------------------------ */

static void delete_done(void *arg, const PGresult *res, const char *err)
{
	struct http_req *r = arg;
	if (err) {
		reply_db_down(r, "webhook endpoint not deleted", err);
		return;
	}
	if (PQntuples(res) != 1) {
		reply_db_down(r, "webhook endpoint not deleted", "unexpected result");
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		http_reply_error(r, 404, "WEBHOOK_ENDPOINT_NOT_FOUND", "id",
				 "no webhook endpoint %s (unknown or already deleted)",
				 http_req_param(r, "id"));
		return;
	}
	metric_inc(m_deleted);
	log_event(LOG_INFO, "webhook endpoint deleted", LF_S("request_id", http_req_id(r)),
		  LF_S("endpoint_id", http_req_param(r, "id")));
	http_reply_json(r, 204, NULL);
}

/* DELETE /v1/webhook_endpoints/{id} */
void webhooks_delete(struct http_req *r, void *arg)
{
	struct loop *l = arg;
	const char *id = http_req_param(r, "id");
	if (!id || !id_valid("we", id)) {
		reply_bad_endpoint_id(r);
		return;
	}
	const char *params[] = {id};
	if (pg_exec(l->pg, l->stmts[STMT_WEBHOOK_DELETE], params, delete_done, r) != 0)
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "database unavailable");
}

/* ------------------------------------------------------------------------ */
/* GET /v1/events/{id}                                                      */
/* ------------------------------------------------------------------------ */

static void event_get_done(void *arg, const PGresult *res, const char *err)
{
	struct http_req *r = arg;
	if (err) {
		reply_db_down(r, "event lookup failed", err);
		return;
	}
	if (PQntuples(res) != 1) {
		http_reply_error(r, 404, "EVENT_NOT_FOUND", "id", "no event %s",
				 http_req_param(r, "id"));
		return;
	}
	reply_text(r, 200, res, 0);
}

/* GET /v1/events/{id} */
void events_get(struct http_req *r, void *arg)
{
	struct loop *l = arg;
	const char *id = http_req_param(r, "id");
	if (!id || !id_valid("evt", id)) {
		reply_bad_event_id(r);
		return;
	}
	const char *params[] = {id};
	if (pg_exec(l->pg, l->stmts[STMT_EVENT_GET], params, event_get_done, r) != 0)
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "database unavailable");
}

/* ------------------------------------------------------------------------ */
/* POST /v1/events/{id}/redeliver                                           */
/* ------------------------------------------------------------------------ */

/* One redelivery: the endpoints whose deliveries went back to pending, and
 * the XADDs still due. Freed after the reply, once every XADD answered. */
struct redeliver {
	struct http_req *r;
	struct loop *l;
	char evt_id[ID_MAX];
	json_t *endpoints; /* array of endpoint ids */
	int outstanding;
	int failed;
};

static void redeliver_free(struct redeliver *rd)
{
	json_decref(rd->endpoints);
	free(rd);
}

/* One of the XADDs (or the submitting loop's hold) is done; the last one
 * replies. */
static void redeliver_step_done(struct redeliver *rd)
{
	if (--rd->outstanding > 0)
		return;
	if (rd->failed > 0) {
		/* The deliveries stay 'pending' without a job: asking again
		 * queues them (a job twice is harmless, delivery is at least
		 * once anyway). */
		log_event(LOG_WARN, "redelivery jobs not queued",
			  LF_S("request_id", http_req_id(rd->r)), LF_S("event_id", rd->evt_id),
			  LF_I("failed", rd->failed));
		http_reply_error(rd->r, 503, "SERVICE_UNAVAILABLE", NULL,
				 "redis unavailable: the redelivery was not queued, try again");
	} else {
		json_t *out = json_pack("{s:s, s:s, s:O}", "id", rd->evt_id, "object", "event",
					"redelivered_to", rd->endpoints);
		if (!out) {
			http_reply_error(rd->r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
		} else {
			metric_add(m_redelivered, (uint64_t)json_array_size(rd->endpoints));
			log_event(LOG_INFO, "event redelivery queued",
				  LF_S("request_id", http_req_id(rd->r)),
				  LF_S("event_id", rd->evt_id),
				  LF_I("endpoints", (long long)json_array_size(rd->endpoints)));
			http_reply_json(rd->r, 202, out);
		}
	}
	redeliver_free(rd);
}

static void redeliver_enqueued(void *arg, const char *err)
{
	struct redeliver *rd = arg;
	if (err) {
		metric_inc(m_enqueue_failed);
		rd->failed++;
	}
	redeliver_step_done(rd);
}

/* One job per endpoint, all sent at once. */
static void redeliver_enqueue(struct redeliver *rd)
{
	struct loop *l = rd->l;
	char stream[256];
	size_t i;
	json_t *v;

	rk_queue_key(stream, sizeof(stream), l->app->cfg.base.redis_prefix, RQ_WEBHOOKS, RK_STREAM);
	rd->outstanding = 1; /* held until every XADD is sent */
	json_array_foreach(rd->endpoints, i, v)
	{
		const char *m[WJ_COUNT] = {[WJ_EVENT_ID] = rd->evt_id,
					   [WJ_ENDPOINT_ID] = json_string_value(v),
					   [WJ_ATTEMPT] = "1",
					   [WJ_REDELIVERY] = "1"};
		struct job_field job[WJ_COUNT];
		int n = ct_fields(&CT_WH_JOB, m, job);
		if (jobs_add(l->redis, stream, JOBS_MAXLEN, job, n, redeliver_enqueued, rd) == 0) {
			rd->outstanding++;
		} else {
			metric_inc(m_enqueue_failed);
			rd->failed++;
		}
	}
	redeliver_step_done(rd);
}

static void redeliver_done(void *arg, const PGresult *res, const char *err)
{
	struct redeliver *rd = arg;
	struct http_req *r = rd->r;
	if (err) {
		reply_db_down(r, "redelivery failed", err);
		redeliver_free(rd);
		return;
	}
	if (PQntuples(res) != 1) {
		reply_db_down(r, "redelivery failed", "unexpected result");
		redeliver_free(rd);
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		http_reply_error(r, 404, "EVENT_NOT_FOUND", "id", "no event %s", rd->evt_id);
		redeliver_free(rd);
		return;
	}
	rd->endpoints = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
	if (!json_is_array(rd->endpoints)) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
		redeliver_free(rd);
		return;
	}
	redeliver_enqueue(rd);
}

/* POST /v1/events/{id}/redeliver   (no body) */
void events_redeliver(struct http_req *r, void *arg)
{
	struct loop *l = arg;
	const char *id = http_req_param(r, "id");
	if (!id || !id_valid("evt", id)) {
		reply_bad_event_id(r);
		return;
	}
	/* Refuse before touching the database: with Redis down the
	 * deliveries would be set pending and no job would follow. */
	if (!rds_connected(l->redis)) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "redis unavailable");
		return;
	}
	struct redeliver *rd = calloc(1, sizeof(*rd));
	if (!rd) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
		return;
	}
	rd->r = r;
	rd->l = l;
	snprintf(rd->evt_id, sizeof(rd->evt_id), "%s", id);
	const char *params[] = {rd->evt_id};
	if (pg_exec(l->pg, l->stmts[STMT_EVENT_REDELIVER], params, redeliver_done, rd) != 0) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "database unavailable");
		redeliver_free(rd);
	}
}
