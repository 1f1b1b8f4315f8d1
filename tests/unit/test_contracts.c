/* test_contracts.c - the names the daemons share over Redis (common/contracts),
 * the reply readers (common/rdsreply), and the fee request/reply both ends
 * build from them (services/api/fees.c against services/feeengine/fees.c's
 * field list). */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "common/contracts.h"
#include "common/jobs.h"
#include "common/payment.h"
#include "common/rdsreply.h"
#include "replies.h"

/* ---- keys ---- */

static void test_keys(void **state)
{
	(void)state;
	char k[RK_KEY_LEN];
	rk_queue_key(k, sizeof(k), "rampart", RQ_PAYMENTS, RK_STREAM);
	assert_string_equal(k, "rampart:{payments}:jobs");
	rk_queue_key(k, sizeof(k), "rampart", RQ_PAYMENTS, RK_DELAYED);
	assert_string_equal(k, "rampart:{payments}:delayed");
	rk_queue_key(k, sizeof(k), "p", RQ_WEBHOOKS, RK_DLQ);
	assert_string_equal(k, "p:{webhooks}:dlq");
	rk_queue_key(k, sizeof(k), "rampart", RQ_FEES, RK_STREAM);
	assert_string_equal(k, "rampart:{fees}:requests");
	assert_string_equal(rk_queue(RQ_PAYMENTS)->group, "workers");
	assert_string_equal(rk_queue(RQ_WEBHOOKS)->group, "webhooks");
	assert_string_equal(rk_queue(RQ_FEES)->group, "feeengines");
	rk_snapshot_key(k, sizeof(k), "rampart");
	assert_string_equal(k, "rampart:market:snapshot");
	rk_fee_decisions_key(k, sizeof(k), "rampart");
	assert_string_equal(k, "rampart:{fees}:decisions");
	rk_fee_replies_prefix(k, sizeof(k), "rampart");
	assert_string_equal(k, "rampart:{fees}:replies:");
	rk_fee_reply_key(k, sizeof(k), "rampart", "h-1-00ab-0");
	assert_string_equal(k, "rampart:{fees}:replies:h-1-00ab-0");
	rk_ratelimit_key(k, sizeof(k), "rampart", "key_1");
	assert_string_equal(k, "rampart:ratelimit:key_1");

	char f[64];
	assert_string_equal(fee_decision_reason_field(f, sizeof(f), "timeout"), "fallback.timeout");
	assert_string_equal(fee_decision_reason_of(f), "timeout");
	assert_null(fee_decision_reason_of(FEE_DECISION_FALLBACK));
	assert_null(fee_decision_reason_of(FEE_DECISION_AI));
}

/* ---- fields ---- */

/* A job as jobq hands it over, from fields. */
static void job_of(struct job *j, const struct job_field *f, int n)
{
	memset(j, 0, sizeof(*j));
	j->nfields = n;
	for (int i = 0; i < n; i++)
		j->fields[i] = f[i];
}

static void test_pay_job_round_trip(void **state)
{
	(void)state;
	const char *m[PJ_COUNT] = {[PJ_PAYMENT_ID] = "pay_1",
				   [PJ_STEP] = pay_step_name(STEP_ONRAMP_POLL),
				   [PJ_ATTEMPT] = "2",
				   [PJ_REQUEST_ID] = "req"};
	struct job_field f[PJ_COUNT];
	assert_int_equal(ct_fields(&CT_PAY_JOB, m, f), PJ_COUNT);
	assert_string_equal(f[0].key, "payment_id");
	assert_string_equal(f[1].key, "step");
	assert_string_equal(f[1].value, "onramp_poll");
	struct job j;
	job_of(&j, f, PJ_COUNT);
	const char *back[PJ_COUNT];
	ct_read_job(&CT_PAY_JOB, &j, back);
	for (int i = 0; i < PJ_COUNT; i++)
		assert_string_equal(back[i], m[i]);
}

static void test_wh_job_optional_field(void **state)
{
	(void)state;
	const char *m[WJ_COUNT] = {
		[WJ_EVENT_ID] = "evt_1", [WJ_ENDPOINT_ID] = "we_1", [WJ_ATTEMPT] = "1"};
	struct job_field f[WJ_COUNT];
	int n = ct_fields(&CT_WH_JOB, m, f);
	assert_int_equal(n, 3); /* redelivery absent */
	struct job j;
	job_of(&j, f, n);
	const char *back[WJ_COUNT];
	ct_read_job(&CT_WH_JOB, &j, back);
	assert_string_equal(back[WJ_EVENT_ID], "evt_1");
	assert_string_equal(back[WJ_ENDPOINT_ID], "we_1");
	assert_null(back[WJ_REDELIVERY]);
}

/* The api's request as the feeengine reads it. */
static void test_fee_request(void **state)
{
	(void)state;
	struct fees_input in = {.amount = 100000,
				.from = money_currency("USD"),
				.to = money_currency("EUR"),
				.country = NULL,
				.priority = "express",
				.tier = "premium"};
	struct fees_request_msg m;
	fees_request_fields(&in, "00ab-7", "rampart:{fees}:replies:x", 1700000000123LL, "req_9",
			    &m);
	struct job_field f[FQ_COUNT];
	int n = ct_fields(&CT_FEE_REQUEST, m.v, f);
	assert_int_equal(n, FQ_COUNT);
	assert_true(n <= JOB_MAX_FIELDS);
	struct job j;
	job_of(&j, f, n);
	assert_string_equal(job_get(&j, "amount"), "100000");
	assert_string_equal(job_get(&j, "deadline_ms"), "1700000000123");
	assert_string_equal(job_get(&j, "destination_country"), "");
	const char *back[FQ_COUNT];
	ct_read_job(&CT_FEE_REQUEST, &j, back);
	assert_string_equal(back[FQ_ID], "00ab-7");
	assert_string_equal(back[FQ_REPLY_TO], "rampart:{fees}:replies:x");
	assert_string_equal(back[FQ_FROM_CURRENCY], "USD");
	assert_string_equal(back[FQ_TO_CURRENCY], "EUR");
	assert_string_equal(back[FQ_PRIORITY], "express");
	assert_string_equal(back[FQ_CUSTOMER_TIER], "premium");
	assert_string_equal(back[FQ_REQUEST_ID], "req_9");
}

static void test_rr_scalars(void **state)
{
	(void)state;
	long long v = 7;
	redisReply *i = r_int(42), *s = r_str("-12"), *bad = r_str("12x"), *nil = r_nil();
	assert_true(rr_int(i, &v));
	assert_int_equal(v, 42);
	assert_true(rr_int(s, &v));
	assert_int_equal(v, -12);
	assert_false(rr_int(bad, &v));
	assert_false(rr_int(nil, &v));
	assert_false(rr_int(NULL, &v));
	assert_int_equal(v, -12);
	assert_string_equal(rr_str(s), "-12");
	assert_null(rr_str(i));
	assert_null(rr_str(NULL));
	freeReplyObject(i);
	freeReplyObject(s);
	freeReplyObject(bad);
	freeReplyObject(nil);
}

static void test_rr_fields(void **state)
{
	(void)state;
	redisReply *h =
		r_arr(6, r_str("a"), r_str("1"), r_str("b"), r_int(2), r_str("c"), r_str("3"));
	assert_string_equal(rr_field(h, "a"), "1");
	assert_null(rr_field(h, "b")); /* not a string */
	assert_string_equal(rr_field(h, "c"), "3");
	assert_null(rr_field(h, "d"));
	const char *k[4], *v[4];
	assert_int_equal(rr_pairs(h, k, v, 4), 2);
	assert_string_equal(k[1], "c");
	assert_string_equal(v[1], "3");
	freeReplyObject(h);
}

struct seen {
	int n;
	char ids[4][24];
	char status[4][8];
};

static void on_entry(void *arg, const char *id, const redisReply *fields)
{
	struct seen *s = arg;
	snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", id);
	snprintf(s->status[s->n], sizeof(s->status[0]), "%s", rr_field(fields, "status") ?: "-");
	s->n++;
}

/* XREAD's [[stream, [[id, fields], ...]]] and a fee reply read from it. */
static void test_rr_xread_fee_reply(void **state)
{
	(void)state;
	redisReply *x =
		r_arr(1, r_arr(2, r_str("rampart:{fees}:replies:x"),
			       r_arr(3,
				     r_arr(2, r_str("1-0"),
					   r_arr(8, r_str("id"), r_str("a"), r_str("status"),
						 r_str(FEE_REPLY_ERROR), r_str("http_status"),
						 r_str("503"), r_str("code"), r_str("NO_ROUTE"))),
				     r_str("junk"),
				     r_arr(2, r_str("1-1"),
					   r_arr(4, r_str("id"), r_str("b"), r_str("status"),
						 r_str(FEE_REPLY_OK))))));
	struct seen s = {0};
	assert_int_equal(rr_xread_entries(x, on_entry, &s), 2);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.ids[0], "1-0");
	assert_string_equal(s.status[0], "error");
	assert_string_equal(s.ids[1], "1-1");

	const redisReply *fields = x->element[0]->element[1]->element[0]->element[1];
	const char *v[FR_COUNT];
	struct fees_answer a;
	ct_read(&CT_FEE_REPLY, rr_field_get, fields, v);
	assert_string_equal(v[FR_ID], "a");
	fees_reply_answer(v, &a);
	assert_int_equal(a.status, 503);
	assert_string_equal(a.code, "NO_ROUTE");
	assert_string_equal(a.message, "the fee engine refused the request");
	assert_null(a.body);
	freeReplyObject(x);
	redisReply *nil = r_nil();
	assert_int_equal(rr_xread_entries(nil, on_entry, &s), 0);
	freeReplyObject(nil);
}

static void test_fee_reply_ok(void **state)
{
	(void)state;
	const char *v[FR_COUNT] = {
		[FR_ID] = "a",
		[FR_STATUS] = FEE_REPLY_OK,
		[FR_CURRENCY] = "USD",
		[FR_TOTAL_FEE] = "3200",
		[FR_FEE_PERCENT] = "3.2",
		[FR_PLATFORM_FEE] = "2000",
		[FR_CHAIN] = "base",
		[FR_CONFIDENCE_SCORE] = "0.750",
		[FR_RISK_FACTORS] = "[\"x\"]",
		[FR_SOURCE] = FEE_SOURCE_FALLBACK,
		[FR_FALLBACK_REASON] = "disabled",
	};
	struct fees_answer a;
	fees_reply_answer(v, &a);
	assert_int_equal(a.status, 200);
	assert_non_null(a.body);
	assert_int_equal(json_integer_value(json_object_get(a.body, "total_fee")), 3200);
	assert_string_equal(json_string_value(json_object_get(a.body, "fallback_reason")),
			    "disabled");
	assert_int_equal(json_array_size(json_object_get(a.body, "risk_factors")), 1);
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(a.body, "fee_breakdown"), "platform_fee")),
			 2000);
	json_decref(a.body);

	const char *bad[FR_COUNT] = {
		[FR_ID] = "a", [FR_STATUS] = "error", [FR_HTTP_STATUS] = "200"};
	fees_reply_answer(bad, &a);
	assert_int_equal(a.status, 502); /* an error reply never answers 2xx */
	assert_string_equal(a.code, "FEE_ENGINE_ERROR");
}

static void test_xinfo_groups(void **state)
{
	(void)state;
	redisReply *g = r_arr(2,
			      r_arr(8, r_str("name"), r_str("workers"), r_str("consumers"),
				    r_int(2), r_str("pending"), r_int(5), r_str("lag"), r_int(7)),
			      r_arr(6, r_str("name"), r_str("other"), r_str("pending"), r_int(1),
				    r_str("lag"), r_nil()));
	struct rr_group out;
	assert_true(rr_xinfo_group(g, "workers", &out));
	assert_int_equal(out.consumers, 2);
	assert_int_equal(out.pending, 5);
	assert_true(out.has_lag);
	assert_int_equal(out.lag, 7);
	assert_true(rr_xinfo_group(g, "other", &out));
	assert_false(out.has_lag);
	assert_false(rr_xinfo_group(g, "nobody", &out));
	freeReplyObject(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_pay_job_round_trip),
		cmocka_unit_test(test_wh_job_optional_field),
		cmocka_unit_test(test_fee_request),
		cmocka_unit_test(test_rr_scalars),
		cmocka_unit_test(test_rr_fields),
		cmocka_unit_test(test_rr_xread_fee_reply),
		cmocka_unit_test(test_fee_reply_ok),
		cmocka_unit_test(test_xinfo_groups),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
