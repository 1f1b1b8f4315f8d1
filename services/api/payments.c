/* payments.c - POST /v1/payments, GET /v1/payments/{id}, GET /v1/payments:
 * payments against rate-locked quotes, with Idempotency-Key (SPEC 4). */
#include <event2/buffer.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "common/contracts.h"
#include "common/ids.h"
#include "common/jobs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/payment.h"
#include "common/pg.h"

#define ACCOUNT_MAX	   256	/* bytes of source_account / destination_account */
#define METADATA_MAX	   8192 /* bytes of metadata, serialised compactly */
#define IDEM_KEY_MAX	   255
#define LIST_LIMIT_DEFAULT 20
#define LIST_LIMIT_MAX	   100
#define JOBS_MAXLEN	   1000000L

/* An Idempotency-Key row still "in_flight" this long after its payment
 * committed belongs to a request that died before storing its response
 * (see payment_create_sql): replays then render the payment as it is now. */
#define IDEM_STALE_MIN_SECONDS 30

/* ------------------------------------------------------------------------ */
/* SQL                                                                      */
/* ------------------------------------------------------------------------ */

/* Runs first, in the same transaction, when an Idempotency-Key was sent: an
 * expired row of the key is replaced as if it had never been. */
static const char idem_expire_sql[] = "DELETE FROM idempotency_keys"
				      " WHERE api_key_id = $1 AND key = $2 AND expires_at <= now()";

/* The key's row as of now (after a concurrent request committed it). */
static const char idem_get_sql[] =
	"SELECT request_hash, state, response_status, response_body, payment_id,"
	" state = 'in_flight' AND created_at < now() - make_interval(secs => $3)"
	" FROM idempotency_keys WHERE api_key_id = $1 AND key = $2 AND expires_at > now()";

/* After the commit: the response a replay sends. */
static const char idem_store_sql[] =
	"UPDATE idempotency_keys SET state = 'complete', response_status = $3, response_body = $4"
	" WHERE api_key_id = $1 AND key = $2 AND payment_id = $5";

/* A payment as the columns payment_render() writes out, selected from the
 * payments row alias a (a string literal) and history, the text of its
 * "history" entries joined by commas (NULL = none). Rendering in C costs
 * PostgreSQL less than building jsonb, and the api need not parse it. */
/* clang-format off */
#define PAYMENT_COLS(a, history)                                                       \
	a ".id, " a ".status, " a ".quote_id, " a ".amount, " a ".currency, "          \
	a ".payout_amount, " a ".payout_currency, trim_scale(" a ".exchange_rate)::text, " \
	a ".platform_fee, " a ".onramp_fee, " a ".offramp_fee, " a ".total_fees, "     \
	a ".chain, " a ".source_account, " a ".destination_account, "                  \
	a ".metadata::text, " a ".failure_code, rampart_time_json(" a ".created_at), " \
	"rampart_time_json(" a ".updated_at), " history
/* clang-format on */
enum {
	PC_ID,
	PC_STATUS,
	PC_QUOTE_ID,
	PC_AMOUNT,
	PC_CURRENCY,
	PC_PAYOUT_AMOUNT,
	PC_PAYOUT_CURRENCY,
	PC_RATE,
	PC_PLATFORM_FEE,
	PC_ONRAMP_FEE,
	PC_OFFRAMP_FEE,
	PC_TOTAL_FEES,
	PC_CHAIN,
	PC_SOURCE,
	PC_DESTINATION,
	PC_METADATA,
	PC_FAILURE_CODE,
	PC_CREATED,
	PC_UPDATED,
	PC_HISTORY,
	PC_N
};

/* One "history" entry of the payment_history row alias h, as compact JSON
 * text in the SPEC's key order (to_json escapes the strings). */
/* clang-format off */
#define HISTORY_ENTRY_SQL(h)                                                        \
	"'{\"from_status\":' || coalesce(to_json(" h ".from_status)::text, 'null')" \
	" || ',\"status\":' || to_json(" h ".to_status)::text"                      \
	" || ',\"at\":\"' || rampart_time_json(" h ".created_at)"                   \
	" || '\",\"reason\":' || coalesce(to_json(" h ".reason)::text, 'null') || '}'"
/* A payment p's history, oldest first. */
#define PAYMENT_HISTORY_SQL                                                         \
	"(SELECT string_agg(" HISTORY_ENTRY_SQL("h") ", ',' ORDER BY h.id)"         \
	" FROM payment_history h WHERE h.payment_id = p.id)"

/* GET /v1/payments/{id} (and a stale key's replay): the lookups of one loop
 * iteration in one statement,
 * one result row per id in input order, all NULL where there is no payment.
 * The array is read through a sub-select so that the planner cannot count
 * its elements: with unnest($1) it could, each execution's own plan then
 * looked cheaper than the generic one, and the server planned every batch
 * anew (45% of its time under this load, docs/performance.md). */
static const char get_batch_sql[] =
	"SELECT x.* FROM unnest((SELECT $1::text[])) WITH ORDINALITY AS k(id, n)"
	" LEFT JOIN LATERAL ("
	"  SELECT " PAYMENT_COLS("p", PAYMENT_HISTORY_SQL) " FROM payments p WHERE p.id = k.id"
	" ) x ON true ORDER BY k.n";
/* clang-format on */

/* Creates a payment in one statement, so one implicit transaction: consumes
 * the quote (single use: only one UPDATE can match used_at IS NULL, the
 * others wait for its row lock and then match nothing), inserts the payment
 * with the quote's numbers, its first history row, its payment.pending event
 * and, with an Idempotency-Key, the key's row, all committed together.
 *
 * Sibling CTEs cannot read each other's rows through the tables, so the new
 * payment travels as the whole-row value "row" of the INSERT's RETURNING.
 * k is the key's row as of the statement's snapshot: when it exists the
 * quote is not touched. One row: the new payment's id (NULL = nothing
 * created); then why nothing was created: the quote as of the snapshot
 * (NULL = no such quote; 'raced' = it looked usable but another transaction
 * consumed it meanwhile) and the key's row (CREATE_KEY_COL); then the new
 * payment (CREATE_PAYMENT_COL, PAYMENT_COLS).
 *
 *   $1 quote_id, $2 payment id, $3 event id, $4 api key id, $5 source_account,
 *   $6 destination_account, $7 metadata (json text or NULL), $8 amount or
 *   NULL, $9 currency or NULL, $10 Idempotency-Key or NULL, $11 SHA-256 of
 *   the body, $12 seconds after which an in_flight key row is stale. */
static const char create_sql[] =
	"WITH k AS ("
	" SELECT request_hash, state, response_status, response_body, payment_id,"
	"  state = 'in_flight' AND created_at < now() - make_interval(secs => $12) AS stale"
	" FROM idempotency_keys"
	" WHERE api_key_id = $4 AND key = $10 AND expires_at > now()"
	"), q AS ("
	" UPDATE quotes SET used_at = now()"
	" WHERE id = $1 AND used_at IS NULL AND expires_at > now()"
	"  AND ($8::bigint IS NULL OR amount = $8)"
	"  AND ($9::text IS NULL OR $9 IN (currency, payout_currency))"
	"  AND NOT EXISTS (SELECT 1 FROM k)"
	" RETURNING *"
	"), p AS ("
	" INSERT INTO payments (id, api_key_id, quote_id, status, amount, currency,"
	"  payout_amount, payout_currency, exchange_rate, platform_fee, onramp_fee,"
	"  offramp_fee, total_fees, chain, source_account, destination_account, metadata)"
	" SELECT $2, $4, q.id, 'PENDING', q.amount, q.currency, q.guaranteed_payout,"
	"  q.payout_currency, q.exchange_rate, q.platform_fee, q.onramp_fee, q.offramp_fee,"
	"  q.total_fees, q.chain, $5, $6, coalesce($7::jsonb, '{}')"
	" FROM q"
	" RETURNING payments AS row"
	"), h AS ("
	" INSERT INTO payment_history (payment_id, from_status, to_status)"
	" SELECT (p.row).id, NULL, 'PENDING' FROM p"
	" RETURNING *"
	"), e AS ("
	" INSERT INTO events (id, type, payment_id, data)"
	" SELECT $3, 'payment.pending', (p.row).id, rampart_payment_json(p.row) FROM p"
	"), i AS ("
	" INSERT INTO idempotency_keys (api_key_id, key, request_hash, payment_id, expires_at)"
	" SELECT $4, $10, $11, (p.row).id, now() + interval '24 hours' FROM p"
	" WHERE $10 IS NOT NULL"
	")"
	" SELECT (SELECT (p.row).id FROM p),"
	"  (SELECT CASE"
	"   WHEN $8::bigint IS NOT NULL AND x.amount <> $8 THEN 'amount'"
	"   WHEN $9::text IS NOT NULL AND $9 NOT IN (x.currency, x.payout_currency)"
	"    THEN 'currency'"
	"   WHEN x.used_at IS NOT NULL THEN 'used'"
	"   WHEN x.expires_at <= clock_timestamp() THEN 'expired'"
	"   ELSE 'raced' END"
	"   FROM quotes x WHERE x.id = $1),"
	/* clang-format off */
	"  k.request_hash, k.state, k.response_status, k.response_body, k.payment_id, k.stale,"
	"  " PAYMENT_COLS("n", "(SELECT string_agg(" HISTORY_ENTRY_SQL("h") ", ',') FROM h)")
	" FROM (VALUES (1)) AS one LEFT JOIN k ON true"
	" LEFT JOIN (SELECT (p.row).* FROM p) AS n ON true";
/* clang-format on */
#define CREATE_PARAMS	   12
#define CREATE_KEY_COL	   2 /* k's columns (answer_from_key) */
#define CREATE_PAYMENT_COL 8 /* the new payment's (PAYMENT_COLS) */

/* A page of payments, newest first, after the starting_after payment ($2,
 * NULL = from the newest): one row per payment, each with whether the cursor
 * exists first, then the payment's columns (PAYMENT_COLS, without history);
 * one row of NULL columns for an empty page. $1 = page size + 1 (to learn
 * has_more). The status variant orders by status too, which the equality
 * makes a no-op, so that payments_by_status serves it even with a generic
 * plan. */
/* clang-format off */
#define LIST_SQL(where, order)                                                          \
	"WITH c AS (SELECT created_at, id FROM payments WHERE id = $2)"                 \
	" SELECT $2::text IS NULL OR EXISTS (SELECT 1 FROM c), s.*"                     \
	" FROM (VALUES (1)) AS one LEFT JOIN LATERAL ("                                 \
	"  SELECT " PAYMENT_COLS("p", "NULL") ", p.created_at AS at_, p.id AS id_"      \
	"  FROM payments p WHERE " where " (p.created_at, p.id) < ("                    \
	"   SELECT coalesce(max(c.created_at), 'infinity'), coalesce(max(c.id), '')"    \
	"   FROM c)"                                                                    \
	"  ORDER BY " order " p.created_at DESC, p.id DESC LIMIT $1) s ON true"         \
	" ORDER BY s.at_ DESC, s.id_ DESC"
/* clang-format on */
static const char list_sql[] = LIST_SQL("", "");
static const char list_status_sql[] = LIST_SQL("p.status = $3 AND", "p.status,");

/* ------------------------------------------------------------------------ */
/* Shared helpers                                                           */
/* ------------------------------------------------------------------------ */

static struct metric *m_created, *m_replayed, *m_enqueue_failed;

int payments_init(struct loop *l)
{
	struct pg_pool *pg = l->pg;
	l->stmts[STMT_PAYMENT_CREATE] = pg_prepare(pg, create_sql, CREATE_PARAMS);
	l->stmts[STMT_PAYMENT_IDEM_EXPIRE] = pg_prepare(pg, idem_expire_sql, 2);
	l->stmts[STMT_PAYMENT_IDEM_GET] = pg_prepare(pg, idem_get_sql, 3);
	l->stmts[STMT_PAYMENT_IDEM_STORE] = pg_prepare(pg, idem_store_sql, 5);
	l->stmts[STMT_PAYMENT_LIST] = pg_prepare(pg, list_sql, 2);
	l->stmts[STMT_PAYMENT_LIST_STATUS] = pg_prepare(pg, list_status_sql, 3);
	for (int s = STMT_PAYMENT_CREATE; s <= STMT_PAYMENT_LIST_STATUS; s++)
		if (l->stmts[s] < 0)
			return -1;
	/* GETs batch like quote inserts (quotes.c), one batch in flight per
	 * loop: at saturation (measured before get_batch_sql's sub-select) 1
	 * did 9,910-10,633 GETs/s, 2 did 8,159-8,913 and one statement per
	 * GET 8,507-9,274 (docs/performance.md). */
	l->payment_get = pg_batcher_new(pg, get_batch_sql, 1, 256, 1);
	if (!l->payment_get)
		return -1;
	m_created = metrics_counter("rampart_payments_created_total", "Payments created", "");
	m_replayed = metrics_counter("rampart_payment_replays_total",
				     "POST /v1/payments answered from an Idempotency-Key", "");
	m_enqueue_failed =
		metrics_counter("rampart_payment_enqueue_failures_total",
				"Created payments whose first job could not be added to Redis "
				"(the worker's relay re-enqueues them)",
				"");
	return 0;
}

static void reply_db_down(struct http_req *r, const char *what, const char *err)
{
	log_event(LOG_WARN, what, LF_S("request_id", http_req_id(r)), LF_S("error", err));
	http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "database unavailable");
}

/* Appends a string column (http_json_str), or null. */
static void put_str(struct evbuffer *b, const char *v)
{
	if (v)
		http_json_str(b, v);
	else
		evbuffer_add(b, "null", 4);
}

/* Appends an integer column's text, or null. */
static void put_num(struct evbuffer *b, const char *v)
{
	evbuffer_add(b, v ? v : "null", strlen(v ? v : "null"));
}
#define PUT(b, lit) evbuffer_add(b, lit, sizeof(lit) - 1)

/* Appends the payment in row of res, its PAYMENT_COLS from column col, as
 * sent to clients: compact JSON, keys in the SPEC's order, "history" last
 * when history is set. -1 on OOM (b may then hold part of it). */
static int payment_write(struct evbuffer *b, const PGresult *res, int row, int col, bool history)
{
	const char *v[PC_N];
	/* Room for all of it first, so that no append below can fail: the keys
	 * and punctuation take 303 bytes; each value at most 6 times its
	 * length plus 2, or 4 as null; currency is written twice. */
	size_t need = 512 + 6 * (size_t)PQgetlength(res, row, col + PC_CURRENCY) + 2;
	for (int i = 0; i < PC_N; i++) {
		v[i] = PQgetisnull(res, row, col + i) ? NULL : PQgetvalue(res, row, col + i);
		need += 6 * (size_t)PQgetlength(res, row, col + i) + 6;
	}
	/* metadata is jsonb text ({"k": "v"}): re-dumped compactly unless empty. */
	char *meta = NULL;
	size_t mlen = 0;
	if (v[PC_METADATA] && strcmp(v[PC_METADATA], "{}") != 0) {
		json_t *m = json_loads(v[PC_METADATA], JSON_DECODE_ANY, NULL);
		meta = m ? jv_dump(m, &mlen) : NULL;
		json_decref(m);
		if (!meta)
			return -1;
	}
	if (evbuffer_expand(b, need + mlen) != 0) {
		free(meta);
		return -1;
	}
	PUT(b, "{\"id\":");
	put_str(b, v[PC_ID]);
	PUT(b, ",\"status\":");
	put_str(b, v[PC_STATUS]);
	PUT(b, ",\"quote_id\":");
	put_str(b, v[PC_QUOTE_ID]);
	PUT(b, ",\"amount\":");
	put_num(b, v[PC_AMOUNT]);
	PUT(b, ",\"currency\":");
	put_str(b, v[PC_CURRENCY]);
	PUT(b, ",\"payout_amount\":");
	put_num(b, v[PC_PAYOUT_AMOUNT]);
	PUT(b, ",\"payout_currency\":");
	put_str(b, v[PC_PAYOUT_CURRENCY]);
	PUT(b, ",\"exchange_rate\":");
	put_str(b, v[PC_RATE]);
	PUT(b, ",\"fees\":{\"platform_fee\":");
	put_num(b, v[PC_PLATFORM_FEE]);
	PUT(b, ",\"onramp_fee\":");
	put_num(b, v[PC_ONRAMP_FEE]);
	PUT(b, ",\"offramp_fee\":");
	put_num(b, v[PC_OFFRAMP_FEE]);
	PUT(b, ",\"total_fees\":");
	put_num(b, v[PC_TOTAL_FEES]);
	PUT(b, ",\"currency\":");
	put_str(b, v[PC_CURRENCY]);
	PUT(b, "},\"chain\":");
	put_str(b, v[PC_CHAIN]);
	PUT(b, ",\"source_account\":");
	put_str(b, v[PC_SOURCE]);
	PUT(b, ",\"destination_account\":");
	put_str(b, v[PC_DESTINATION]);
	PUT(b, ",\"metadata\":");
	if (meta)
		evbuffer_add(b, meta, mlen);
	else
		put_num(b, v[PC_METADATA]); /* "{}" as it is, or null */
	PUT(b, ",\"failure_code\":");
	put_str(b, v[PC_FAILURE_CODE]);
	PUT(b, ",\"created_at\":");
	put_str(b, v[PC_CREATED]);
	PUT(b, ",\"updated_at\":");
	put_str(b, v[PC_UPDATED]);
	if (history) {
		/* compact JSON objects already (HISTORY_ENTRY_SQL) */
		PUT(b, ",\"history\":[");
		if (v[PC_HISTORY])
			evbuffer_add(b, v[PC_HISTORY], strlen(v[PC_HISTORY]));
		PUT(b, "]");
	}
	PUT(b, "}");
	free(meta);
	return 0;
}

/* payment_write's text as a string. NULL on OOM; caller frees. */
static char *payment_render(const PGresult *res, int row, int col, bool history, size_t *len)
{
	struct evbuffer *b = evbuffer_new();
	char *out = NULL;
	if (b && payment_write(b, res, row, col, history) == 0) {
		*len = evbuffer_get_length(b);
		if ((out = malloc(*len + 1)) != NULL) {
			evbuffer_remove(b, out, *len);
			out[*len] = '\0';
		}
	}
	if (b)
		evbuffer_free(b);
	return out;
}

/* Replies with a payment's text (owned by the caller). */
static void reply_payment(struct http_req *r, int status, const char *text, size_t len)
{
	http_reply_raw(r, status, "application/json", text, len);
}

/* ------------------------------------------------------------------------ */
/* POST /v1/payments                                                        */
/* ------------------------------------------------------------------------ */

/* What the statement's snapshot said about the quote when it created
 * nothing. */
enum quote_state { QS_MISSING, QS_AMOUNT_MISMATCH, QS_CURRENCY_MISMATCH, QS_USED, QS_EXPIRED };

/* One POST /v1/payments, from validation to the reply; freed after the
 * reply once every callback it started has run. */
struct pay_create {
	struct http_req *r;
	struct loop *l;
	char pay_id[ID_MAX];
	char evt_id[ID_MAX];
	char quote_id[ID_MAX];
	char key_id[sizeof(((struct principal *)0)->key_id)];
	char request_id[136]; /* X-Request-Id: at most 128 characters */
	bool has_key;
	char idem_key[IDEM_KEY_MAX + 1];
	char hash[65]; /* hex SHA-256 of the raw body */
	enum quote_state qs;
	/* After the commit: the 202 body, sent once the job is queued and the
	 * response stored (outstanding counts the callbacks still due). */
	char *body;
	size_t body_len;
	int outstanding;
};

static void create_free(struct pay_create *pc)
{
	free(pc->body);
	free(pc);
}

static void reply_quote_error(struct pay_create *pc)
{
	struct http_req *r = pc->r;
	switch (pc->qs) {
	case QS_MISSING:
		http_reply_error(r, 404, "QUOTE_NOT_FOUND", "quote_id",
				 "no quote %s (unknown or expired and cleaned up)", pc->quote_id);
		break;
	case QS_AMOUNT_MISMATCH:
		http_reply_error(r, 400, "QUOTE_MISMATCH", "amount",
				 "amount does not match the amount of quote %s", pc->quote_id);
		break;
	case QS_CURRENCY_MISMATCH:
		http_reply_error(
			r, 400, "QUOTE_MISMATCH", "currency",
			"currency is neither the source nor the payout currency of quote %s",
			pc->quote_id);
		break;
	case QS_USED:
		http_reply_error(r, 409, "QUOTE_ALREADY_USED", "quote_id",
				 "quote %s has already been used by a payment", pc->quote_id);
		break;
	case QS_EXPIRED:
		http_reply_error(r, 400, "QUOTE_EXPIRED", "quote_id",
				 "quote %s has expired: request a new quote", pc->quote_id);
		break;
	}
	create_free(pc);
}

static void replay_headers(struct pay_create *pc)
{
	metric_inc(m_replayed);
	http_req_add_header(pc->r, "Idempotent-Replayed", "true");
}

/* The payment of a stale in_flight key, as it is now. */
static void stale_get_done(void *arg, const PGresult *res, int row, const char *err)
{
	struct pay_create *pc = arg;
	size_t len = 0;
	char *text;
	if (err) {
		reply_db_down(pc->r, "payment lookup failed", err);
	} else if (row < 0 || PQgetisnull(res, row, PC_ID)) {
		http_reply_error(pc->r, 409, "IDEMPOTENCY_KEY_IN_USE", NULL,
				 "a request with this Idempotency-Key is still in progress");
	} else if (!(text = payment_render(res, row, 0, true, &len))) {
		http_reply_error(pc->r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
	} else {
		replay_headers(pc);
		reply_payment(pc->r, 202, text, len);
		free(text);
	}
	create_free(pc);
}

/* Answers from the key's row: columns request_hash, state,
 * response_status, response_body, payment_id, stale starting at col. */
static void answer_from_key(struct pay_create *pc, const PGresult *res, int col)
{
	struct http_req *r = pc->r;
	const char *hash = PQgetvalue(res, 0, col);
	const char *state = PQgetvalue(res, 0, col + 1);
	bool stale = strcmp(PQgetvalue(res, 0, col + 5), "t") == 0;

	if (strcmp(hash, pc->hash) != 0) {
		http_reply_error(r, 422, "IDEMPOTENCY_KEY_REUSED", NULL,
				 "this Idempotency-Key was used with a different request body");
	} else if (strcmp(state, "complete") == 0 && !PQgetisnull(res, 0, col + 2)) {
		int status = (int)strtol(PQgetvalue(res, 0, col + 2), NULL, 10);
		replay_headers(pc);
		reply_payment(r, status, PQgetvalue(res, 0, col + 3),
			      (size_t)PQgetlength(res, 0, col + 3));
	} else if (stale) {
		const char *params[] = {PQgetvalue(res, 0, col + 4)};
		if (pg_batcher_add(pc->l->payment_get, params, stale_get_done, pc) == 0)
			return;
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "database unavailable");
	} else {
		http_reply_error(r, 409, "IDEMPOTENCY_KEY_IN_USE", NULL,
				 "a request with this Idempotency-Key is still in progress; "
				 "retry shortly");
	}
	create_free(pc);
}

static void idem_get_done(void *arg, const PGresult *res, const char *err)
{
	struct pay_create *pc = arg;
	if (err) {
		reply_db_down(pc->r, "idempotency key lookup failed", err);
		create_free(pc);
	} else if (PQntuples(res) == 1) {
		answer_from_key(pc, res, 0);
	} else {
		reply_quote_error(pc);
	}
}

/* Longer than a healthy request can spend between its commit and storing
 * its response (one Redis command and one statement, each with a deadline). */
static long long stale_seconds(const struct loop *l)
{
	long long s =
		2LL * ((long long)l->app->cfg.db_timeout_ms + l->app->cfg.redis_timeout_ms) / 1000;
	return s > IDEM_STALE_MIN_SECONDS ? s : IDEM_STALE_MIN_SECONDS;
}

/* Nothing was created and a key was sent: a concurrent request with the
 * same key may have committed since our snapshot, so look again. */
static void idem_lookup(struct pay_create *pc)
{
	char stale[24];
	snprintf(stale, sizeof(stale), "%lld", stale_seconds(pc->l));
	const char *params[] = {pc->key_id, pc->idem_key, stale};
	if (pg_exec(pc->l->pg, pc->l->stmts[STMT_PAYMENT_IDEM_GET], params, idem_get_done, pc) !=
	    0) {
		http_reply_error(pc->r, 503, "SERVICE_UNAVAILABLE", NULL, "database unavailable");
		create_free(pc);
	}
}

/* One of the post-commit callbacks is done; the last one replies. */
static void created_step_done(struct pay_create *pc)
{
	if (--pc->outstanding > 0)
		return;
	reply_payment(pc->r, 202, pc->body, pc->body_len);
	create_free(pc);
}

static void enqueue_done(void *arg, const char *err)
{
	struct pay_create *pc = arg;
	if (err) {
		metric_inc(m_enqueue_failed);
		log_event(LOG_WARN, "payment job not queued; the relay will re-enqueue it",
			  LF_S("request_id", pc->request_id), LF_S("payment_id", pc->pay_id),
			  LF_S("error", err));
	}
	created_step_done(pc);
}

static void idem_store_done(void *arg, const PGresult *res, const char *err)
{
	struct pay_create *pc = arg;
	(void)res;
	if (err)
		log_event(LOG_WARN, "idempotent response not stored",
			  LF_S("request_id", pc->request_id), LF_S("payment_id", pc->pay_id),
			  LF_S("error", err));
	created_step_done(pc);
}

/* The payment is committed: queue its first job and store the response for
 * replays (both at once), then answer 202. Neither failing undoes the
 * payment: the relay re-enqueues stalled PENDING payments, and a key whose
 * response was not stored replays the payment's current state. */
static void created(struct pay_create *pc, const PGresult *res)
{
	struct loop *l = pc->l;
	char stream[256];

	metric_inc(m_created);
	log_event(LOG_INFO, "payment created", LF_S("request_id", pc->request_id),
		  LF_S("payment_id", pc->pay_id), LF_S("quote_id", pc->quote_id));
	pc->body = payment_render(res, 0, CREATE_PAYMENT_COL, true, &pc->body_len);
	if (!pc->body) {
		http_reply_error(pc->r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
		create_free(pc);
		return;
	}
	pc->outstanding = 1; /* held until both requests are sent */

	rk_queue_key(stream, sizeof(stream), l->app->cfg.base.redis_prefix, RQ_PAYMENTS, RK_STREAM);
	const char *m[PJ_COUNT] = {[PJ_PAYMENT_ID] = pc->pay_id,
				   [PJ_STEP] = pay_step_name(pay_state_step(PAY_PENDING)),
				   [PJ_ATTEMPT] = "1",
				   [PJ_REQUEST_ID] = pc->request_id};
	struct job_field job[PJ_COUNT];
	int nf = ct_fields(&CT_PAY_JOB, m, job);
	if (jobs_add(l->redis, stream, JOBS_MAXLEN, job, nf, enqueue_done, pc) == 0) {
		pc->outstanding++;
	} else {
		metric_inc(m_enqueue_failed);
		log_event(LOG_WARN,
			  "payment job not queued (redis unavailable); the relay will "
			  "re-enqueue it",
			  LF_S("request_id", pc->request_id), LF_S("payment_id", pc->pay_id));
	}

	if (pc->has_key) {
		const char *params[] = {pc->key_id, pc->idem_key, "202", pc->body, pc->pay_id};
		if (pg_exec(l->pg, l->stmts[STMT_PAYMENT_IDEM_STORE], params, idem_store_done,
			    pc) == 0)
			pc->outstanding++;
		else
			log_event(LOG_WARN, "idempotent response not stored (database unavailable)",
				  LF_S("request_id", pc->request_id),
				  LF_S("payment_id", pc->pay_id));
	}
	created_step_done(pc);
}

/* The creation statement's outcome. */
static void create_result(struct pay_create *pc, const PGresult *res, const char *err)
{
	struct http_req *r = pc->r;
	if (err) {
		const char *state = pg_sqlstate(res);
		if (strcmp(state, "23505") == 0) {
			/* A unique violation: the key was committed by a concurrent
			 * request with another body (the key's primary key), or the
			 * quote's payment exists (payments.quote_id). */
			pc->qs = QS_USED;
			if (pc->has_key) {
				idem_lookup(pc);
				return;
			}
			reply_quote_error(pc);
			return;
		}
		if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0) {
			/* Data the database refused: a bad value slipped past
			 * validation. Still the client's request, so a 4xx. */
			log_event(LOG_WARN, "payment refused by the database",
				  LF_S("request_id", pc->request_id), LF_S("sqlstate", state),
				  LF_S("error", err));
			http_reply_error(r, 400, "INVALID_REQUEST", NULL,
					 "the payment could not be stored: invalid data");
		} else {
			reply_db_down(r, "payment not created", err);
		}
		create_free(pc);
		return;
	}
	if (PQntuples(res) != 1) {
		reply_db_down(r, "payment not created", "unexpected result");
		create_free(pc);
		return;
	}
	if (!PQgetisnull(res, 0, 0)) {
		created(pc, res);
		return;
	}
	const char *qs = PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1);
	pc->qs = !qs			       ? QS_MISSING
		 : strcmp(qs, "amount") == 0   ? QS_AMOUNT_MISMATCH
		 : strcmp(qs, "currency") == 0 ? QS_CURRENCY_MISMATCH
		 : strcmp(qs, "expired") == 0  ? QS_EXPIRED
					       : QS_USED; /* "used", or "raced" */
	if (!PQgetisnull(res, 0, CREATE_KEY_COL))
		answer_from_key(pc, res, CREATE_KEY_COL);
	else if (pc->has_key)
		idem_lookup(pc);
	else
		reply_quote_error(pc);
}

static void create_done(void *arg, const PGresult *res, const char *err)
{
	create_result(arg, res, err);
}

/* [DELETE expired key, create]: the create statement's result decides. */
static void create_tx_done(void *arg, PGresult *const *res, int n, const char *err)
{
	(void)n;
	create_result(arg, res[1] ? res[1] : res[0], err);
}

/* Idempotency-Key: 1..255 printable ASCII characters. */
static bool idem_key_valid(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > IDEM_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)k[i] < 0x20 || (unsigned char)k[i] > 0x7e)
			return false;
	return true;
}

static int sha256_hex(const void *data, size_t len, char out[65])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char h[32];
	if (!EVP_Digest(data, len, h, NULL, EVP_sha256(), NULL))
		return -1;
	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[h[i] >> 4];
		out[2 * i + 1] = digits[h[i] & 15];
	}
	out[64] = '\0';
	return 0;
}

int payments_validate(const json_t *body, const char *idem_key, struct payment_input *in,
		      struct jv_error *e)
{
	static const struct jv_field fields[] = {
		{"source_account", JV_STRING, true, ACCOUNT_MAX, NULL},
		{"destination_account", JV_STRING, true, ACCOUNT_MAX, NULL},
		{"metadata", JV_OBJECT, false, METADATA_MAX, NULL},
		{"currency", JV_STRING, false, 16, NULL},
	};

	in->amount = 0;
	in->has_amount = false;
	if (idem_key && !idem_key_valid(idem_key))
		return jv_fail(e, 400, "INVALID_IDEMPOTENCY_KEY", NULL,
			       "Idempotency-Key must be 1 to %d printable ASCII characters",
			       IDEM_KEY_MAX);
	const json_t *jquote = json_object_get(body, "quote_id");
	if (!jquote || json_is_null(jquote))
		return jv_fail(e, 400, "MISSING_FIELD", "quote_id", "quote_id is required");
	if (jv_check(body, fields, sizeof(fields) / sizeof(fields[0]), e) != 0)
		return -1;
	in->quote_id = json_string_value(jquote);
	if (!in->quote_id || !id_valid("quote", in->quote_id))
		return jv_fail(e, 400, "INVALID_ID", "quote_id",
			       "quote ids look like quote_<uuid>, e.g. "
			       "quote_2f1c0b7e-6a55-4e0c-9a51-6d1f3b2b1c9e");
	const json_t *jamount = json_object_get(body, "amount");
	if (jamount && !json_is_null(jamount)) {
		if (jv_amount(body, "amount", &in->amount, e) != 0)
			return -1;
		in->has_amount = true;
	}
	return 0;
}

/* POST /v1/payments {quote_id, source_account, destination_account,
 *                    metadata?, amount?, currency?}   [Idempotency-Key] */
void payments_create(struct http_req *r, void *arg)
{
	struct loop *l = arg;
	json_t *body = http_req_json(r);
	const char *ikey = http_req_header(r, "Idempotency-Key");
	struct jv_error e;
	struct pay_create *pc = NULL;
	char *metadata = NULL;
	struct payment_input in;

	if (payments_validate(body, ikey, &in, &e) != 0)
		goto bad;
	const char *quote_id = in.quote_id;
	int64_t amount = in.amount;
	bool has_amount = in.has_amount;
	const json_t *jmeta = json_object_get(body, "metadata");
	if (json_is_object(jmeta) && !(metadata = jv_dump(jmeta, NULL)))
		goto oom;

	pc = calloc(1, sizeof(*pc));
	if (!pc)
		goto oom;
	pc->r = r;
	pc->l = l;
	snprintf(pc->quote_id, sizeof(pc->quote_id), "%s", quote_id);
	snprintf(pc->key_id, sizeof(pc->key_id), "%s", auth_principal(r)->key_id);
	snprintf(pc->request_id, sizeof(pc->request_id), "%s", http_req_id(r));
	if (ikey) {
		size_t len;
		const char *raw = http_req_body(r, &len);
		pc->has_key = true;
		snprintf(pc->idem_key, sizeof(pc->idem_key), "%s", ikey);
		if (sha256_hex(raw ? raw : "", len, pc->hash) != 0)
			goto oom;
	}
	if (id_new("pay", pc->pay_id) != 0 || id_new("evt", pc->evt_id) != 0) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "random source unavailable");
		goto done;
	}

	char amount_s[24], stale[24];
	snprintf(amount_s, sizeof(amount_s), "%" PRId64, amount);
	snprintf(stale, sizeof(stale), "%lld", stale_seconds(l));
	const char *params[CREATE_PARAMS] = {
		pc->quote_id,
		pc->pay_id,
		pc->evt_id,
		pc->key_id,
		jv_str(body, "source_account"),
		jv_str(body, "destination_account"),
		metadata,
		has_amount ? amount_s : NULL,
		jv_str(body, "currency"),
		pc->has_key ? pc->idem_key : NULL,
		pc->has_key ? pc->hash : NULL,
		stale,
	};
	int rc;
	if (pc->has_key) {
		const char *expire_params[] = {pc->key_id, pc->idem_key};
		const struct pg_stmt tx[] = {
			{NULL, l->stmts[STMT_PAYMENT_IDEM_EXPIRE], 2, expire_params},
			{NULL, l->stmts[STMT_PAYMENT_CREATE], CREATE_PARAMS, params},
		};
		rc = pg_tx(l->pg, tx, 2, create_tx_done, pc);
	} else {
		rc = pg_exec(l->pg, l->stmts[STMT_PAYMENT_CREATE], params, create_done, pc);
	}
	if (rc != 0) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "database unavailable");
		goto done;
	}
	pc = NULL; /* owned by the callback now */
	goto done;

bad:
	http_reply_error(r, e.status, e.code, e.param[0] ? e.param : NULL, "%s", e.message);
	goto done;
oom:
	http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
done:
	free(metadata);
	if (pc)
		create_free(pc);
}

/* ------------------------------------------------------------------------ */
/* GET /v1/payments/{id}                                                    */
/* ------------------------------------------------------------------------ */

static void get_done(void *arg, const PGresult *res, int row, const char *err)
{
	struct http_req *r = arg;
	size_t len = 0;
	char *text;
	if (err) {
		reply_db_down(r, "payment lookup failed", err);
		return;
	}
	if (row < 0 || PQgetisnull(res, row, PC_ID)) {
		http_reply_error(r, 404, "PAYMENT_NOT_FOUND", "id", "no payment %s",
				 http_req_param(r, "id"));
		return;
	}
	text = payment_render(res, row, 0, true, &len);
	if (!text) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
		return;
	}
	reply_payment(r, 200, text, len);
	free(text);
}

const char *payment_id_param(struct http_req *r)
{
	const char *id = http_req_param(r, "id");
	if (id && id_valid("pay", id))
		return id;
	http_reply_error(r, 400, "INVALID_ID", "id",
			 "payment ids look like pay_<uuid>, e.g. "
			 "pay_2f1c0b7e-6a55-4e0c-9a51-6d1f3b2b1c9e");
	return NULL;
}

/* GET /v1/payments/{id} */
void payments_get(struct http_req *r, void *arg)
{
	struct loop *l = arg;
	const char *id = payment_id_param(r);
	if (!id)
		return;
	const char *params[] = {id};
	if (pg_batcher_add(l->payment_get, params, get_done, r) != 0)
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "database unavailable");
}

/* ------------------------------------------------------------------------ */
/* GET /v1/payments                                                         */
/* ------------------------------------------------------------------------ */

struct pay_list {
	struct http_req *r;
	int limit;
};

static void list_done(void *arg, const PGresult *res, const char *err)
{
	struct pay_list *pl = arg;
	struct http_req *r = pl->r;
	int limit = pl->limit;
	free(pl);
	if (err) {
		reply_db_down(r, "payment list failed", err);
		return;
	}
	int n = PQntuples(res);
	if (n < 1) {
		reply_db_down(r, "payment list failed", "unexpected result");
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		http_reply_error(r, 400, "INVALID_FIELD", "starting_after", "no payment %s",
				 http_req_query(r, "starting_after"));
		return;
	}
	if (PQgetisnull(res, 0, 1 + PC_ID))
		n = 0; /* the one row of an empty page */
	bool has_more = n > limit;
	if (has_more)
		n = limit;
	/* {"object":"list","data":[...],"has_more":...}, as jansson wrote it */
	struct evbuffer *b = evbuffer_new();
	int i = -1;
	if (b && PUT(b, "{\"object\":\"list\",\"data\":[") == 0)
		for (i = 0; i < n; i++)
			if ((i > 0 && PUT(b, ",") != 0) || payment_write(b, res, i, 1, false) != 0)
				break;
	if (i == n &&
	    (has_more ? PUT(b, "],\"has_more\":true}") : PUT(b, "],\"has_more\":false}")) == 0)
		http_reply_raw(r, 200, "application/json", evbuffer_pullup(b, -1),
			       evbuffer_get_length(b));
	else
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
	if (b)
		evbuffer_free(b);
}

static bool status_valid(const char *s)
{
	enum pay_state st;
	return pay_state_parse(s, &st) == 0;
}

/* "1".."100" in plain decimal digits, else -1. */
static int parse_limit(const char *s)
{
	int v = 0;
	size_t n = strlen(s);
	if (n == 0 || n > 3)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v >= 1 && v <= LIST_LIMIT_MAX ? v : -1;
}

/* GET /v1/payments?status=&limit=&starting_after= */
void payments_list(struct http_req *r, void *arg)
{
	struct loop *l = arg;
	const char *status = http_req_query(r, "status");
	const char *limit_s = http_req_query(r, "limit");
	const char *after = http_req_query(r, "starting_after");
	int limit = LIST_LIMIT_DEFAULT;

	if (http_req_query_malformed(r)) {
		http_reply_error(r, 400, "INVALID_REQUEST", NULL,
				 "malformed query string: use name=value pairs separated by &");
		return;
	}
	if (status && !status_valid(status)) {
		char states[160] = "";
		size_t used = 0;
		for (int i = 0; i < PAY_STATE_COUNT && used < sizeof(states); i++)
			used += (size_t)snprintf(states + used, sizeof(states) - used, "%s%s",
						 i ? ", " : "", pay_state_name((enum pay_state)i));
		http_reply_error(r, 400, "INVALID_FIELD", "status", "status must be one of %s",
				 states);
		return;
	}
	if (limit_s && (limit = parse_limit(limit_s)) < 0) {
		http_reply_error(r, 400, "INVALID_FIELD", "limit",
				 "limit must be an integer from 1 to %d", LIST_LIMIT_MAX);
		return;
	}
	if (after && !id_valid("pay", after)) {
		http_reply_error(r, 400, "INVALID_FIELD", "starting_after",
				 "starting_after must be a payment id (pay_<uuid>)");
		return;
	}
	struct pay_list *pl = malloc(sizeof(*pl));
	if (!pl) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
		return;
	}
	pl->r = r;
	pl->limit = limit;
	char fetch[8];
	snprintf(fetch, sizeof(fetch), "%d", limit + 1);
	const char *params[] = {fetch, after, status};
	int stmt = status ? STMT_PAYMENT_LIST_STATUS : STMT_PAYMENT_LIST;
	if (pg_exec(l->pg, l->stmts[stmt], params, list_done, pl) != 0) {
		free(pl);
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "database unavailable");
	}
}
