/* quotes.c - POST /v1/quotes and GET /v1/quotes/{id}: rate-locked quotes. */
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pg.h"
#include "common/pgrow.h"

/* Concurrent quote inserts are merged into one statement over arrays: one
 * round trip and one commit for a whole loop iteration's worth of quotes. */
static const char insert_sql[] =
	"INSERT INTO quotes (id, api_key_id, amount, currency, payout_currency, exchange_rate,"
	" platform_fee, onramp_fee, offramp_fee, total_fees, guaranteed_payout, chain, priority,"
	" rate_source, created_at, expires_at)"
	" SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],"
	" $6::numeric[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[],"
	" $12::text[], $13::text[], $14::text[], $15::timestamptz[], $16::timestamptz[])";
#define INSERT_COLS QUOTES_ROW_COLS

static const char get_sql[] =
	"SELECT id, amount, currency, payout_currency, exchange_rate::text AS exchange_rate,"
	" platform_fee, onramp_fee, offramp_fee, total_fees, guaranteed_payout, chain, priority,"
	" rate_source, (extract(epoch FROM created_at) * 1000)::bigint AS created_ms,"
	" (extract(epoch FROM expires_at) * 1000)::bigint AS expires_ms"
	" FROM quotes WHERE id = $1";

/* get_sql's columns, read by name (common/pgrow.h). */
enum {
	QC_ID,
	QC_AMOUNT,
	QC_CURRENCY,
	QC_PAYOUT_CURRENCY,
	QC_RATE,
	QC_PLATFORM_FEE,
	QC_ONRAMP_FEE,
	QC_OFFRAMP_FEE,
	QC_TOTAL_FEES,
	QC_PAYOUT,
	QC_CHAIN,
	QC_PRIORITY,
	QC_RATE_SOURCE,
	QC_CREATED_MS,
	QC_EXPIRES_MS,
	QC_N
};
static const char *const get_cols[QC_N] = {
	"id",		"amount",     "currency",    "payout_currency", "exchange_rate",
	"platform_fee", "onramp_fee", "offramp_fee", "total_fees",	"guaranteed_payout",
	"chain",	"priority",   "rate_source", "created_ms",	"expires_ms",
};

struct quote_req {
	struct http_req *r;
	struct loop *l;
	struct quote q;
};

static struct metric *m_created, *m_insert_failed;

int quotes_init(struct loop *l)
{
	/* One batch in flight per loop: the quotes that arrive while it
	 * commits ride in the next one (group commit). More in flight made
	 * smaller batches and more commits: 4 in flight did 7,016-8,250
	 * quotes/s where 1 did 7,594-8,888, one ahead in every alternating
	 * round at saturation (docs/performance.md). */
	l->quote_insert = pg_batcher_new(l->pg, insert_sql, INSERT_COLS, 512, 1);
	l->stmts[STMT_QUOTE_GET] = pg_prepare(l->pg, get_sql, 1);
	if (!l->quote_insert || l->stmts[STMT_QUOTE_GET] < 0)
		return -1;
	m_created = metrics_counter("rampart_quotes_created_total", "Quotes created", "");
	m_insert_failed = metrics_counter("rampart_quote_insert_failures_total",
					  "Quotes not stored because the database failed", "");
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The pure steps: pricing, text forms, the response, the row.              */
/* ------------------------------------------------------------------------ */

int quotes_price(const struct quote_input *in, int64_t from_per_usd, enum snap_state from_state,
		 int64_t to_per_usd, enum snap_state to_state, const struct money_fees_bps *bps,
		 struct quote *q, struct jv_error *e)
{
	q->amount = in->amount;
	q->from = in->from;
	q->to = in->to;
	q->priority = in->priority;
	/* The quote is as fresh as its staler rate (live < cached < default). */
	q->rate_source = snap_state_name(from_state > to_state ? from_state : to_state);
	enum money_err me = money_cross_rate(from_per_usd, to_per_usd, &q->rate);
	if (me == MONEY_OK)
		me = money_quote(q->amount, q->rate, q->from, q->to, bps, &q->m);
	switch (me) {
	case MONEY_OK:
		return 0;
	case MONEY_ETOOSMALL:
		return jv_fail(e, 400, "AMOUNT_TOO_SMALL", "amount",
			       "amount %" PRId64 " %s does not cover the fees or pays out nothing",
			       q->amount, q->from->code);
	case MONEY_EOVERFLOW:
		return jv_fail(e, 400, "AMOUNT_TOO_LARGE", "amount",
			       "amount %" PRId64 " %s is too large to convert to %s", q->amount,
			       q->from->code, q->to->code);
	default:
		return jv_fail(e, 400, "INVALID_AMOUNT", "amount",
			       "amount must be a positive integer in minor units");
	}
}

void quotes_format_time(int64_t ms, char out[32])
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

void quotes_set_text(struct quote *q)
{
	money_rate_format(q->rate, q->rate_str, sizeof(q->rate_str));
	quotes_format_time(q->created_ms, q->created_at);
	quotes_format_time(q->expires_ms, q->expires_at);
}

json_t *quotes_json(const struct quote *q, int64_t now_ms)
{
	int64_t left_ms = q->expires_ms - now_ms;
	return json_pack(
		"{s:s, s:I, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:s}, s:I, s:s, s:s, s:s,"
		" s:s, s:s, s:I, s:s}",
		"id", q->id, "amount", (json_int_t)q->amount, "currency", q->from->code,
		"exchange_rate", q->rate_str, "fees", "platform_fee", (json_int_t)q->m.platform_fee,
		"onramp_fee", (json_int_t)q->m.onramp_fee, "offramp_fee",
		(json_int_t)q->m.offramp_fee, "total_fees", (json_int_t)q->m.total_fees, "currency",
		q->from->code, "guaranteed_payout", (json_int_t)q->m.payout, "payout_currency",
		q->to->code, "chain", q->chain, "priority", q->priority, "rate_source",
		q->rate_source, "expires_at", q->expires_at, "valid_for_seconds",
		(json_int_t)(left_ms > 0 ? left_ms / 1000 : 0), "created_at", q->created_at);
}

void quotes_row(const struct quote *q, const char *key_id, struct quote_row_buf *buf,
		const char *row[QUOTES_ROW_COLS])
{
	snprintf(buf->amount, sizeof(buf->amount), "%" PRId64, q->amount);
	snprintf(buf->platform_fee, sizeof(buf->platform_fee), "%" PRId64, q->m.platform_fee);
	snprintf(buf->onramp_fee, sizeof(buf->onramp_fee), "%" PRId64, q->m.onramp_fee);
	snprintf(buf->offramp_fee, sizeof(buf->offramp_fee), "%" PRId64, q->m.offramp_fee);
	snprintf(buf->total_fees, sizeof(buf->total_fees), "%" PRId64, q->m.total_fees);
	snprintf(buf->payout, sizeof(buf->payout), "%" PRId64, q->m.payout);
	const char *r[QUOTES_ROW_COLS] = {
		q->id,
		key_id,
		buf->amount,
		q->from->code,
		q->to->code,
		q->rate_str,
		buf->platform_fee,
		buf->onramp_fee,
		buf->offramp_fee,
		buf->total_fees,
		buf->payout,
		q->chain,
		q->priority,
		q->rate_source,
		q->created_at,
		q->expires_at,
	};
	memcpy(row, r, sizeof(r));
}

/* ------------------------------------------------------------------------ */
/* The handlers                                                              */
/* ------------------------------------------------------------------------ */

static void insert_done(void *arg, const PGresult *res, int row, const char *err)
{
	struct quote_req *qr = arg;
	(void)res;
	(void)row;
	if (err) {
		metric_inc(m_insert_failed);
		log_event(LOG_WARN, "quote not stored", LF_S("request_id", http_req_id(qr->r)),
			  LF_S("quote_id", qr->q.id), LF_S("error", err));
		http_reply_error(qr->r, 503, "SERVICE_UNAVAILABLE", NULL,
				 "the quote could not be stored: database unavailable");
	} else {
		metric_inc(m_created);
		http_reply_json(qr->r, 201, quotes_json(&qr->q, clock_wall_ms()));
	}
	free(qr);
}

static int currency_param(const json_t *body, const char *name, const struct currency **out,
			  struct jv_error *e)
{
	const char *code = jv_str(body, name);
	*out = money_currency(code);
	if (*out)
		return 0;
	return jv_fail(e, 400, "UNSUPPORTED_CURRENCY", name,
		       "%s \"%s\" is not a supported currency", name, code);
}

int quotes_validate(const json_t *body, struct quote_input *in, struct jv_error *e)
{
	static const struct jv_field fields[] = {
		{"from_currency", JV_STRING, true, 16, NULL},
		{"to_currency", JV_STRING, true, 16, NULL},
		{"priority", JV_STRING, false, 16, NULL},
	};

	if (jv_check(body, fields, sizeof(fields) / sizeof(fields[0]), e) != 0 ||
	    jv_amount(body, "amount", &in->amount, e) != 0)
		return -1;
	if (currency_param(body, "from_currency", &in->from, e) ||
	    currency_param(body, "to_currency", &in->to, e))
		return -1;
	if (in->from == in->to)
		return jv_fail(e, 400, "SAME_CURRENCY", "to_currency",
			       "from_currency and to_currency must differ");
	in->priority = "standard";
	const char *prio = jv_str(body, "priority");
	if (prio && strcmp(prio, "standard") != 0) {
		if (strcmp(prio, "express") != 0)
			return jv_fail(e, 400, "INVALID_FIELD", "priority",
				       "priority must be \"standard\" or \"express\"");
		in->priority = "express";
	}
	return 0;
}

/* POST /v1/quotes {from_currency, to_currency, amount, priority?}
 * Validate, price (quotes_price), pick the chain on the market snapshot,
 * then one batched INSERT; the answer is sent once the row is stored. */
void quotes_create(struct http_req *r, void *arg)
{
	struct loop *l = arg;
	struct app *a = l->app;
	struct jv_error e;
	struct quote q = {0};
	struct quote_input in;
	enum snap_state src_from, src_to;
	const struct money_fees_bps bps = {a->cfg.fee_platform_bps, a->cfg.fee_onramp_bps,
					   a->cfg.fee_offramp_bps};

	if (quotes_validate(http_req_json(r), &in, &e) != 0)
		goto client_error;
	int64_t from_usd = market_per_usd(&a->market, in.from, &src_from);
	int64_t to_usd = market_per_usd(&a->market, in.to, &src_to);
	if (quotes_price(&in, from_usd, src_from, to_usd, src_to, &bps, &q, &e) != 0)
		goto client_error;
	/* The chain: the fee engine's router on the snapshot's market data
	 * (common/chain_route.h), as POST /v1/fees/calculate would pick it. */
	char why[256];
	q.chain = market_chain(&a->market, q.amount, q.from, q.to, from_usd,
			       strcmp(q.priority, "express") == 0, why, sizeof(why));
	if (!q.chain) {
		http_reply_error(r, 503, "NO_ROUTE", NULL, "%s", why);
		return;
	}
	if (id_new("quote", q.id) != 0) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "random source unavailable");
		return;
	}
	q.created_ms = clock_wall_ms();
	q.expires_ms = q.created_ms + a->cfg.quote_ttl * 1000;
	quotes_set_text(&q);

	struct quote_req *qr = malloc(sizeof(*qr));
	if (!qr) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
		return;
	}
	qr->r = r;
	qr->l = l;
	qr->q = q;
	struct quote_row_buf buf;
	const char *row[INSERT_COLS];
	quotes_row(&q, auth_principal(r)->key_id, &buf, row);
	if (pg_batcher_add(l->quote_insert, row, insert_done, qr) != 0) {
		free(qr);
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "database unavailable");
	}
	return;
client_error:
	http_reply_error(r, e.status, e.code, e.param[0] ? e.param : NULL, "%s", e.message);
}

static void get_done(void *arg, const PGresult *res, const char *err)
{
	struct http_req *r = arg;
	struct quote q = {0};
	if (err) {
		log_event(LOG_WARN, "quote lookup failed", LF_S("request_id", http_req_id(r)),
			  LF_S("error", err));
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "database unavailable");
		return;
	}
	if (PQntuples(res) != 1) {
		http_reply_error(r, 404, "QUOTE_NOT_FOUND", "id",
				 "no quote %s (unknown or expired and cleaned up)",
				 http_req_param(r, "id"));
		return;
	}
	struct pgrow c;
	if (pgrow_map(&c, res, get_cols, QC_N) != 0) {
		log_event(LOG_ERROR, "quote lookup: unexpected result", LF_S("error", c.err));
		http_reply_error(r, 500, "INTERNAL_ERROR", NULL, "stored quote is unreadable");
		return;
	}
	snprintf(q.id, sizeof(q.id), "%s", pgrow_text(&c, 0, QC_ID));
	q.from = money_currency(pgrow_text(&c, 0, QC_CURRENCY));
	q.to = money_currency(pgrow_text(&c, 0, QC_PAYOUT_CURRENCY));
	q.chain = pgrow_text(&c, 0, QC_CHAIN);
	q.priority = pgrow_text(&c, 0, QC_PRIORITY);
	q.rate_source = pgrow_text(&c, 0, QC_RATE_SOURCE);
	if (!q.from || !q.to || money_rate_parse(pgrow_text(&c, 0, QC_RATE), &q.rate) != MONEY_OK ||
	    !pgrow_int64(&c, 0, QC_AMOUNT, &q.amount) ||
	    !pgrow_int64(&c, 0, QC_PLATFORM_FEE, &q.m.platform_fee) ||
	    !pgrow_int64(&c, 0, QC_ONRAMP_FEE, &q.m.onramp_fee) ||
	    !pgrow_int64(&c, 0, QC_OFFRAMP_FEE, &q.m.offramp_fee) ||
	    !pgrow_int64(&c, 0, QC_TOTAL_FEES, &q.m.total_fees) ||
	    !pgrow_int64(&c, 0, QC_PAYOUT, &q.m.payout) ||
	    !pgrow_int64(&c, 0, QC_CREATED_MS, &q.created_ms) ||
	    !pgrow_int64(&c, 0, QC_EXPIRES_MS, &q.expires_ms)) {
		log_event(LOG_ERROR, "stored quote is unreadable", LF_S("quote_id", q.id));
		http_reply_error(r, 500, "INTERNAL_ERROR", NULL, "stored quote is unreadable");
		return;
	}
	quotes_set_text(&q);
	http_reply_json(r, 200, quotes_json(&q, clock_wall_ms()));
}

/* GET /v1/quotes/{id} */
void quotes_get(struct http_req *r, void *arg)
{
	struct loop *l = arg;
	const char *id = http_req_param(r, "id");
	if (!id || !id_valid("quote", id)) {
		http_reply_error(r, 400, "INVALID_ID", "id",
				 "quote ids look like quote_<uuid>, e.g. "
				 "quote_2f1c0b7e-6a55-4e0c-9a51-6d1f3b2b1c9e");
		return;
	}
	const char *params[] = {id};
	if (pg_exec(l->pg, l->stmts[STMT_QUOTE_GET], params, get_done, r) != 0)
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "database unavailable");
}
