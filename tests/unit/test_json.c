/* test_json.c - unit tests for request body parsing and field validation. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/json.h"

/* A body and the error it must produce (code NULL = accepted). */
struct parse_case {
	const char *body;
	size_t len; /* 0 = strlen(body) */
	const char *code;
	const char *param;
	const char *message; /* exact message, or NULL to skip */
};

static const struct parse_case parse_cases[] = {
	{"{}", 0, NULL, NULL, NULL},
	{"{\"a\":1,\"a\":2}", 0, NULL, NULL, NULL},
	{" \n{\"amount\": 9223372036854775807}\n", 0, NULL, NULL, NULL},
	{"", 0, "INVALID_JSON", "",
	 "malformed JSON at line 1 column 1: unexpected token near end of file"},
	{"   ", 0, "INVALID_JSON", "", NULL},
	{"{", 0, "INVALID_JSON", "",
	 "malformed JSON at line 1 column 1: string or '}' expected near end of file"},
	{"{\n\"a\":,}", 0, "INVALID_JSON", "",
	 "malformed JSON at line 2 column 5: unexpected token near ','"},
	{"{} x", 0, "INVALID_JSON", "", NULL},
	{"{\"a\":NaN}", 0, "INVALID_JSON", "", NULL},
	{"{\"a\":\"\\u0000\"}", 0, "INVALID_JSON", "", NULL},
	{"{\"a\":\"\\ud800\"}", 0, "INVALID_JSON", "", NULL},
	{"{\"a\":\"\xff\"}", 0, "INVALID_JSON", "", "request body is not valid UTF-8"},
	{"{\"a\xc3\":1}", 0, "INVALID_JSON", "", "request body is not valid UTF-8"},
	{"{\"a\":\"\xed\xa0\x80\"}", 0, "INVALID_JSON", "", "request body is not valid UTF-8"},
	{"\xff", 0, "INVALID_JSON", "", "request body is not valid UTF-8"},
	{"[1,2]", 0, "INVALID_REQUEST", "", "request body must be a JSON object"},
	{"123", 0, "INVALID_REQUEST", "", "request body must be a JSON object"},
	{"\"str\"", 0, "INVALID_REQUEST", "", "request body must be a JSON object"},
	{"null", 0, "INVALID_REQUEST", "", "request body must be a JSON object"},
	{"{\"amount\":99999999999999999999}", 0, "INVALID_AMOUNT", "amount",
	 "number out of range: amounts must fit in a signed 64-bit integer"},
	{"{\"amount\":9223372036854775808}", 0, "INVALID_AMOUNT", "amount", NULL},
	{"{\"amount\":-99999999999999999999}", 0, "INVALID_AMOUNT", "amount", NULL},
	{"{\"amount\":1e400}", 0, "INVALID_AMOUNT", "amount", NULL},
	/* An embedded NUL byte ends nothing: the whole buffer is parsed. */
	{"{}\0{}", 5, "INVALID_JSON", "", NULL},
};

static void test_parse(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		size_t len = c->len != 0 ? c->len : strlen(c->body);
		struct jv_error err;
		json_t *v;

		memset(&err, 0, sizeof(err));
		v = jv_parse_object(c->body, len, &err);
		if (c->code == NULL) {
			if (v == NULL)
				fail_msg("case %zu rejected: %s %s", i, err.code, err.message);
			assert_true(json_is_object(v));
			json_decref(v);
			continue;
		}
		if (v != NULL)
			fail_msg("case %zu accepted", i);
		assert_int_equal(err.status, 400);
		assert_string_equal(err.code, c->code);
		assert_string_equal(err.param, c->param);
		if (c->message != NULL)
			assert_string_equal(err.message, c->message);
		assert_true(err.message[0] != '\0');
	}
}

static const struct jv_field fields[] = {
	{"name", JV_STRING, true, 8, NULL}, {"count", JV_INT, false, 0, NULL},
	{"flag", JV_BOOL, false, 0, NULL},  {"meta", JV_OBJECT, false, 16, NULL},
	{"list", JV_ARRAY, false, 0, NULL}, {"currency", JV_STRING, false, 0, "INVALID_CURRENCY"},
};

struct check_case {
	const char *body;
	const char *code; /* NULL = valid */
	const char *param;
	const char *message;
};

static const struct check_case check_cases[] = {
	{"{\"name\":\"a\"}", NULL, NULL, NULL},
	{"{\"name\":\"12345678\",\"count\":-3,\"flag\":false,\"meta\":{\"k\":\"v\"},\"list\":[],"
	 "\"currency\":\"USD\",\"other\":[1]}",
	 NULL, NULL, NULL},
	{"{\"name\":\"a\",\"count\":null,\"meta\":null}", NULL, NULL, NULL},
	{"{}", "MISSING_FIELD", "name", "name is required"},
	{"{\"name\":null}", "MISSING_FIELD", "name", "name is required"},
	{"{\"name\":5}", "INVALID_FIELD", "name", "name must be a string"},
	{"{\"name\":\"\"}", "INVALID_FIELD", "name", "name must not be empty"},
	{"{\"name\":\"123456789\"}", "INVALID_FIELD", "name", "name must be at most 8 bytes"},
	/* Eight bytes but four characters: the bound is in bytes. */
	{"{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", NULL, NULL, NULL},
	{"{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9x\"}", "INVALID_FIELD", "name", NULL},
	{"{\"name\":\"a\",\"count\":1.0}", "INVALID_FIELD", "count", "count must be an integer"},
	{"{\"name\":\"a\",\"count\":\"1\"}", "INVALID_FIELD", "count", "count must be an integer"},
	{"{\"name\":\"a\",\"flag\":1}", "INVALID_FIELD", "flag", "flag must be a boolean"},
	{"{\"name\":\"a\",\"meta\":[]}", "INVALID_FIELD", "meta", "meta must be an object"},
	{"{\"name\":\"a\",\"meta\":{\"key\":\"0123456789\"}}", "INVALID_FIELD", "meta",
	 "meta must be at most 16 bytes when serialised"},
	{"{\"name\":\"a\",\"list\":{}}", "INVALID_FIELD", "list", "list must be an array"},
	{"{\"name\":\"a\",\"currency\":1}", "INVALID_CURRENCY", "currency",
	 "currency must be a string"},
	{"{\"name\":\"a\",\"currency\":\"\"}", "INVALID_FIELD", "currency",
	 "currency must not be empty"},
};

static void test_check(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
		const struct check_case *c = &check_cases[i];
		struct jv_error err;
		json_t *v;
		int rc;

		memset(&err, 0, sizeof(err));
		v = jv_parse_object(c->body, strlen(c->body), &err);
		if (v == NULL)
			fail_msg("case %zu does not parse: %s", i, err.message);
		rc = jv_check(v, fields, sizeof(fields) / sizeof(fields[0]), &err);
		json_decref(v);
		if (c->code == NULL) {
			if (rc != 0)
				fail_msg("case %zu rejected: %s %s", i, err.code, err.message);
			continue;
		}
		if (rc != -1)
			fail_msg("case %zu accepted", i);
		assert_int_equal(err.status, 400);
		assert_string_equal(err.code, c->code);
		assert_string_equal(err.param, c->param);
		if (c->message != NULL)
			assert_string_equal(err.message, c->message);
	}
}

struct amount_case {
	const char *body;
	int64_t want; /* 0 = must be rejected */
	const char *code;
};

static const struct amount_case amount_cases[] = {
	{"{\"amount\":1}", 1, NULL},
	{"{\"amount\":12345}", 12345, NULL},
	{"{\"amount\":9223372036854775807}", INT64_MAX, NULL},
	{"{}", 0, "MISSING_FIELD"},
	{"{\"amount\":null}", 0, "MISSING_FIELD"},
	{"{\"amount\":0}", 0, "INVALID_AMOUNT"},
	{"{\"amount\":-5}", 0, "INVALID_AMOUNT"},
	{"{\"amount\":10.5}", 0, "INVALID_AMOUNT"},
	{"{\"amount\":10.0}", 0, "INVALID_AMOUNT"},
	{"{\"amount\":\"100\"}", 0, "INVALID_AMOUNT"},
	{"{\"amount\":1e30}", 0, "INVALID_AMOUNT"},
	{"{\"amount\":true}", 0, "INVALID_AMOUNT"},
	{"{\"amount\":[1]}", 0, "INVALID_AMOUNT"},
};

static void test_amount(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(amount_cases) / sizeof(amount_cases[0]); i++) {
		const struct amount_case *c = &amount_cases[i];
		struct jv_error err;
		int64_t got = -1;
		json_t *v;
		int rc;

		memset(&err, 0, sizeof(err));
		v = jv_parse_object(c->body, strlen(c->body), &err);
		assert_non_null(v);
		rc = jv_amount(v, "amount", &got, &err);
		json_decref(v);
		if (c->code == NULL) {
			if (rc != 0)
				fail_msg("case %zu rejected: %s", i, err.message);
			assert_true(got == c->want);
			continue;
		}
		if (rc != -1)
			fail_msg("case %zu accepted", i);
		assert_true(got == -1);
		assert_int_equal(err.status, 400);
		assert_string_equal(err.code, c->code);
		assert_string_equal(err.param, "amount");
		if (strcmp(c->code, "INVALID_AMOUNT") == 0)
			assert_string_equal(err.message,
					    "amount must be a positive integer in minor units");
		else
			assert_string_equal(err.message, "amount is required");
	}
}

static void test_fail_truncates_utf8(void **state)
{
	struct jv_error err;
	char big[400];
	size_t i;

	(void)state;
	/* 199 bytes fit in message; "é" is two bytes and must not be split. */
	memset(big, 'x', 198);
	for (i = 198; i + 2 < sizeof(big); i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	big[i] = '\0';
	assert_int_equal(jv_fail(&err, 400, "INVALID_FIELD", NULL, "%s", big), -1);
	assert_int_equal(strlen(err.message), 198);
	assert_string_equal(err.param, "");
	assert_int_equal(jv_fail(NULL, 400, "X", NULL, "ignored"), -1);
}

static void test_str_and_dump(void **state)
{
	json_t *v = json_pack("{s:s, s:i, s:[i,i]}", "a", "b\"c", "n", 5, "l", 1, 2);
	size_t len = 0;
	char *s;

	(void)state;
	assert_non_null(v);
	assert_string_equal(jv_str(v, "a"), "b\"c");
	assert_null(jv_str(v, "n"));
	assert_null(jv_str(v, "missing"));
	assert_null(jv_str(NULL, "a"));
	s = jv_dump(v, &len);
	assert_non_null(s);
	assert_int_equal(len, strlen(s));
	/* jansson keeps insertion order. */
	assert_string_equal(s, "{\"a\":\"b\\\"c\",\"n\":5,\"l\":[1,2]}");
	free(s);
	json_decref(v);

	v = json_integer(7);
	s = jv_dump(v, NULL);
	assert_string_equal(s, "7");
	free(s);
	json_decref(v);
	assert_null(jv_dump(NULL, &len));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),	     cmocka_unit_test(test_check),
		cmocka_unit_test(test_amount),	     cmocka_unit_test(test_fail_truncates_utf8),
		cmocka_unit_test(test_str_and_dump),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
