/* test_log.c - unit tests for structured log lines: escaping, truncation, levels. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

/* stdout captured between capture_begin and capture_end. */
static char out[16384];
static size_t out_len;
static int saved_stdout = -1;
static FILE *capture_file;

static void capture_begin(void)
{
	fflush(stdout);
	capture_file = tmpfile();
	assert_non_null(capture_file);
	saved_stdout = dup(STDOUT_FILENO);
	assert_true(saved_stdout >= 0);
	assert_true(dup2(fileno(capture_file), STDOUT_FILENO) >= 0);
}

static void capture_end(void)
{
	assert_true(dup2(saved_stdout, STDOUT_FILENO) >= 0);
	close(saved_stdout);
	rewind(capture_file);
	out_len = fread(out, 1, sizeof(out) - 1, capture_file);
	out[out_len] = '\0';
	fclose(capture_file);
	capture_file = NULL;
}

/* Parses the single captured line; caller json_decref's. */
static json_t *parse_line(void)
{
	json_error_t je;
	json_t *v;

	assert_true(out_len > 0);
	assert_int_equal(out[out_len - 1], '\n');
	assert_null(memchr(out, '\n', out_len - 1));
	v = json_loadb(out, out_len, 0, &je);
	if (v == NULL)
		fail_msg("not JSON (%s): %s", je.text, out);
	return v;
}

static void test_json_line(void **state)
{
	const char *keys[] = {"ts",	    "level",  "service", "msg",
			      "request_id", "amount", "nil",	 "bad\"key"};
	json_t *v;
	void *it;
	const char *ts;
	size_t i;

	(void)state;
	log_init("api", LOG_INFO, true);
	capture_begin();
	log_event(LOG_WARN, "quote \"q\"\nline2\t\x01", LF_S("request_id", "req_\xff\xfe\xc3(x"),
		  LF_I("amount", -42), LF_S("nil", NULL), LF_S("bad\"key", "\xe2\x82\xac ok"));
	capture_end();
	v = parse_line();
	assert_string_equal(json_string_value(json_object_get(v, "level")), "warn");
	assert_string_equal(json_string_value(json_object_get(v, "service")), "api");
	assert_string_equal(json_string_value(json_object_get(v, "msg")),
			    "quote \"q\"\nline2\t\x01");
	assert_string_equal(json_string_value(json_object_get(v, "request_id")),
			    "req_\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd(x");
	assert_int_equal(json_integer_value(json_object_get(v, "amount")), -42);
	assert_true(json_is_null(json_object_get(v, "nil")));
	assert_string_equal(json_string_value(json_object_get(v, "bad\"key")), "\xe2\x82\xac ok");
	assert_null(json_object_get(v, "truncated"));

	/* Keys in order: ts, level, service, msg, then the fields. */
	for (i = 0, it = json_object_iter(v); it != NULL; i++, it = json_object_iter_next(v, it)) {
		assert_true(i < sizeof(keys) / sizeof(keys[0]));
		assert_string_equal(json_object_iter_key(it), keys[i]);
	}
	assert_int_equal(i, sizeof(keys) / sizeof(keys[0]));

	/* RFC 3339 UTC with milliseconds: 2026-11-22T01:41:35.123Z */
	ts = json_string_value(json_object_get(v, "ts"));
	assert_non_null(ts);
	assert_int_equal(strlen(ts), 24);
	assert_true(ts[4] == '-' && ts[7] == '-' && ts[10] == 'T' && ts[13] == ':' &&
		    ts[16] == ':' && ts[19] == '.' && ts[23] == 'Z');
	json_decref(v);
}

static void test_levels(void **state)
{
	enum log_level l = LOG_ERROR;

	(void)state;
	assert_int_equal(log_parse_level("debug", &l), 0);
	assert_int_equal(l, LOG_DEBUG);
	assert_int_equal(log_parse_level("warning", &l), 0);
	assert_int_equal(l, LOG_WARN);
	assert_int_equal(log_parse_level("WARN", &l), 0);
	assert_int_equal(l, LOG_WARN);
	assert_int_equal(log_parse_level("error", &l), 0);
	assert_int_equal(l, LOG_ERROR);
	assert_int_equal(log_parse_level("info", &l), 0);
	assert_int_equal(l, LOG_INFO);
	assert_int_equal(log_parse_level("verbose", &l), -1);
	assert_int_equal(log_parse_level(NULL, &l), -1);

	log_init("svc", LOG_WARN, true);
	assert_false(log_enabled(LOG_INFO));
	assert_true(log_enabled(LOG_ERROR));
	capture_begin();
	log_info("dropped %d", 1);
	log_event(LOG_DEBUG, "dropped", LF_I("n", 1));
	capture_end();
	assert_int_equal(out_len, 0);

	capture_begin();
	log_error("kept %d%%", 7);
	capture_end();
	{
		json_t *v = parse_line();
		assert_string_equal(json_string_value(json_object_get(v, "msg")), "kept 7%");
		assert_string_equal(json_string_value(json_object_get(v, "level")), "error");
		json_decref(v);
	}
}

static void test_truncation(void **state)
{
	static char big[10000];
	struct log_field f[40];
	json_t *v;
	size_t i;

	(void)state;
	log_init("svc", LOG_DEBUG, true);
	memset(big, '"', sizeof(big) - 1); /* each escapes to two bytes */
	for (i = 0; i < 40; i++)
		f[i] = LF_S("field", big);
	capture_begin();
	log_fields(LOG_INFO, big, f, 40);
	capture_end();
	assert_true(out_len <= 4096);
	v = parse_line();
	assert_true(json_is_true(json_object_get(v, "truncated")));
	assert_true(json_string_length(json_object_get(v, "msg")) > 100);
	json_decref(v);

	/* A multi-byte character is never split by the cut. */
	memset(big, 0, sizeof(big));
	for (i = 0; i + 3 < sizeof(big) - 1; i += 3)
		memcpy(big + i, "\xe2\x82\xac", 3);
	capture_begin();
	log_fields(LOG_INFO, big, NULL, 0);
	capture_end();
	v = parse_line();
	assert_true(json_is_true(json_object_get(v, "truncated")));
	json_decref(v);
}

static void test_text_format(void **state)
{
	(void)state;
	log_init("worker", LOG_INFO, false);
	capture_begin();
	log_event(LOG_INFO, "payment moved\nnext", LF_S("payment_id", "pay_1"),
		  LF_S("note", "two words"), LF_I("attempt", 3));
	capture_end();
	/* "<ts> info worker: payment moved\nnext payment_id=pay_1 ..." */
	assert_int_equal(out[24], ' ');
	assert_string_equal(out + 25, "info worker: payment moved\\nnext payment_id=pay_1 "
				      "note=\"two words\" attempt=3\n");
	log_init("rampart", LOG_INFO, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_line),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_text_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
