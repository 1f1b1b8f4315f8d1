/* fuzz_bodies.c - the request bodies of POST /v1/quotes, /v1/payments,
 * /v1/webhook_endpoints and /v1/fees/calculate: jv_parse_object (what the
 * HTTP layer runs on every JSON body) then each route's pure validation.
 * Invariants: a refused body is a 4xx with a code and a message; an accepted
 * one holds what the handler relies on (supported, distinct currencies, a
 * positive amount, a valid quote id, a URL within its bound, known events). */
#include <string.h>

#include "app.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "fuzz.h"

static void check_error(const struct jv_error *e)
{
	FUZZ_CHECK(e->status >= 400 && e->status < 500);
	FUZZ_CHECK(e->code[0] != '\0' && memchr(e->code, '\0', sizeof(e->code)) != NULL);
	FUZZ_CHECK(e->message[0] != '\0' && memchr(e->message, '\0', sizeof(e->message)) != NULL);
	FUZZ_CHECK(memchr(e->param, '\0', sizeof(e->param)) != NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz", LOG_ERROR, true);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jv_error e;
	json_t *body = jv_parse_object((const char *)data, size, &e);

	if (body == NULL) {
		check_error(&e);
		return 0;
	}
	FUZZ_CHECK(json_is_object(body));

	struct quote_input q;
	if (quotes_validate(body, &q, &e) == 0) {
		FUZZ_CHECK(q.amount > 0 && q.from != NULL && q.to != NULL && q.from != q.to);
		FUZZ_CHECK(strcmp(q.priority, "standard") == 0 ||
			   strcmp(q.priority, "express") == 0);
	} else {
		check_error(&e);
	}

	/* The Idempotency-Key header, when the body names one, for the fuzzer. */
	struct payment_input p;
	if (payments_validate(body, jv_str(body, "x_idempotency_key"), &p, &e) == 0) {
		FUZZ_CHECK(p.quote_id != NULL && id_valid("quote", p.quote_id));
		FUZZ_CHECK(!p.has_amount || p.amount > 0);
	} else {
		check_error(&e);
	}

	const char *url = NULL;
	json_t *events = webhooks_validate(body, true, &url, &e);
	if (events != NULL) {
		FUZZ_CHECK(url != NULL && strlen(url) <= 2048);
		FUZZ_CHECK(strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0 ||
			   strncasecmp(url, "http", 4) == 0);
		FUZZ_CHECK(json_is_array(events) && json_array_size(events) > 0);
		json_decref(events);
	} else {
		check_error(&e);
	}

	struct fees_input f;
	if (fees_validate(body, &f, &e) == 0) {
		FUZZ_CHECK(f.amount > 0 && f.from != NULL && f.to != NULL && f.from != f.to);
		FUZZ_CHECK(f.country == NULL || strlen(f.country) == 2);
		FUZZ_CHECK(f.priority != NULL && f.tier != NULL);
	} else {
		check_error(&e);
	}
	json_decref(body);
	return 0;
}
