/* test_config.c - unit tests for the environment configuration getters. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"

#define VAR "RAMPART_TEST_VAR"

/* Captured stderr of the last capture_begin/capture_end pair. */
static char captured[1024];
static int saved_stderr = -1;
static FILE *capture_file;

static void capture_begin(void)
{
	fflush(stderr);
	capture_file = tmpfile();
	assert_non_null(capture_file);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_true(dup2(fileno(capture_file), STDERR_FILENO) >= 0);
}

static void capture_end(void)
{
	size_t n;

	fflush(stderr);
	assert_true(dup2(saved_stderr, STDERR_FILENO) >= 0);
	close(saved_stderr);
	rewind(capture_file);
	n = fread(captured, 1, sizeof(captured) - 1, capture_file);
	captured[n] = '\0';
	fclose(capture_file);
	capture_file = NULL;
}

/* Sets VAR (NULL unsets it). */
static void set(const char *value)
{
	if (value == NULL)
		assert_int_equal(unsetenv(VAR), 0);
	else
		assert_int_equal(setenv(VAR, value, 1), 0);
}

static int teardown(void **state)
{
	(void)state;
	unsetenv(VAR);
	return 0;
}

static long long int_of(const char *value, int *rc)
{
	long long v = -12345;

	set(value);
	capture_begin();
	*rc = cfg_int(VAR, 42, 0, 1000, &v);
	capture_end();
	return v;
}

static void test_int(void **state)
{
	static const char *const bad[] = {
		"12abc", " 5",	"5 ", "0x10", "-5", "+5", "1001", "abc", "99999999999999999999",
		"1.5",	 "5,6", "-"};
	long long v;
	size_t i;
	int rc;

	(void)state;
	assert_int_equal(int_of(NULL, &rc), 42);
	assert_int_equal(rc, 0);
	assert_int_equal(int_of("", &rc), 42);
	assert_int_equal(rc, 0);
	assert_int_equal(int_of("0", &rc), 0);
	assert_int_equal(rc, 0);
	assert_int_equal(int_of("1000", &rc), 1000);
	assert_int_equal(rc, 0);
	assert_int_equal(int_of("0077", &rc), 77);
	assert_int_equal(rc, 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = int_of(bad[i], &rc);
		if (rc != -1)
			fail_msg("cfg_int accepted \"%s\"", bad[i]);
		assert_int_equal(v, -12345); /* *out untouched on error */
		/* Exactly one line naming the variable. */
		assert_true(strncmp(captured, "config: " VAR ": ", strlen("config: " VAR ": ")) ==
			    0);
		assert_non_null(strchr(captured, '\n'));
		assert_int_equal(strchr(captured, '\n')[1], '\0');
	}

	/* Range message, and the value echoed back. */
	int_of("1001", &rc);
	assert_string_equal(captured,
			    "config: " VAR
			    ": out of range: must be between 0 and 1000 (got \"1001\")\n");
	int_of("12abc", &rc);
	assert_string_equal(captured, "config: " VAR ": not a base-10 integer (got \"12abc\")\n");

	/* Negative values where min < 0. */
	set("-5");
	assert_int_equal(cfg_int(VAR, 0, -10, 10, &v), 0);
	assert_int_equal(v, -5);
	set("-11");
	capture_begin();
	rc = cfg_int(VAR, 0, -10, 10, &v);
	capture_end();
	assert_int_equal(rc, -1);
	set("-9223372036854775808");
	assert_int_equal(cfg_int(VAR, 0, INT64_MIN, INT64_MAX, &v), 0);
	assert_true(v == INT64_MIN);
}

static void test_str(void **state)
{
	char *s = NULL;
	int rc;

	(void)state;
	set(NULL);
	assert_int_equal(cfg_str(VAR, "def", 0, &s), 0);
	assert_string_equal(s, "def");
	free(s);
	set("");
	assert_int_equal(cfg_str(VAR, NULL, 0, &s), 0);
	assert_string_equal(s, "");
	free(s);
	set("hello");
	assert_int_equal(cfg_str(VAR, "def", 5, &s), 0);
	assert_string_equal(s, "hello");
	free(s);

	/* Too long: the value itself (maybe a secret) is not echoed. */
	set("sk-secret-value");
	s = NULL;
	capture_begin();
	rc = cfg_str(VAR, "def", 5, &s);
	capture_end();
	assert_int_equal(rc, -1);
	assert_null(s);
	assert_string_equal(captured, "config: " VAR ": must be at most 5 bytes (got 15 bytes)\n");
}

static void test_bool(void **state)
{
	static const char *const yes[] = {"1", "true", "TRUE", "yes", "On"};
	static const char *const no[] = {"0", "false", "No", "off", "OFF"};
	static const char *const bad[] = {"2", "y", "truee", " true", "enabled"};
	bool b;
	size_t i;
	int rc;

	(void)state;
	set(NULL);
	assert_int_equal(cfg_bool(VAR, true, &b), 0);
	assert_true(b);
	set("");
	assert_int_equal(cfg_bool(VAR, false, &b), 0);
	assert_false(b);
	for (i = 0; i < 5; i++) {
		set(yes[i]);
		b = false;
		assert_int_equal(cfg_bool(VAR, false, &b), 0);
		assert_true(b);
		set(no[i]);
		assert_int_equal(cfg_bool(VAR, true, &b), 0);
		assert_false(b);
		set(bad[i]);
		capture_begin();
		rc = cfg_bool(VAR, true, &b);
		capture_end();
		assert_int_equal(rc, -1);
		assert_non_null(strstr(captured, "config: " VAR ": must be one of"));
	}
}

static void test_enum(void **state)
{
	static const char *const choices[] = {"json", "text", NULL};
	int i = -1;
	int rc;

	(void)state;
	set(NULL);
	assert_int_equal(cfg_enum(VAR, "text", choices, &i), 0);
	assert_int_equal(i, 1);
	set("json");
	assert_int_equal(cfg_enum(VAR, "text", choices, &i), 0);
	assert_int_equal(i, 0);
	set("TEXT");
	assert_int_equal(cfg_enum(VAR, "json", choices, &i), 0);
	assert_int_equal(i, 1);
	set("yaml");
	capture_begin();
	rc = cfg_enum(VAR, "json", choices, &i);
	capture_end();
	assert_int_equal(rc, -1);
	assert_string_equal(captured,
			    "config: " VAR ": must be one of: json, text (got \"yaml\")\n");
}

static void test_listen(void **state)
{
	static const char *const bad[] = {"8080",     "0.0.0.0:",  "0.0.0.0:0",	   "0.0.0.0:65536",
					  "host:80x", "[::1]8080", "[::1:8080",	   "[zz]:80",
					  "::1:8080", "a b:80",	   "127.0.0.1:-1", ":"};
	char host[64];
	int port = 0;
	size_t i;
	int rc;

	(void)state;
	set(NULL);
	assert_int_equal(cfg_listen(VAR, "0.0.0.0:8080", host, sizeof(host), &port), 0);
	assert_string_equal(host, "0.0.0.0");
	assert_int_equal(port, 8080);
	set(":9101");
	assert_int_equal(cfg_listen(VAR, "0.0.0.0:8080", host, sizeof(host), &port), 0);
	assert_string_equal(host, "0.0.0.0");
	assert_int_equal(port, 9101);
	set("[::1]:8080");
	assert_int_equal(cfg_listen(VAR, NULL, host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 8080);
	set("localhost:65535");
	assert_int_equal(cfg_listen(VAR, NULL, host, sizeof(host), &port), 0);
	assert_string_equal(host, "localhost");
	assert_int_equal(port, 65535);
	set("127.0.0.1:1");
	assert_int_equal(cfg_listen(VAR, NULL, host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 1);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		set(bad[i]);
		capture_begin();
		if (cfg_listen(VAR, NULL, host, sizeof(host), &port) != -1) {
			capture_end();
			fail_msg("cfg_listen accepted \"%s\"", bad[i]);
		}
		capture_end();
		assert_true(strncmp(captured, "config: " VAR ": ", 8) == 0);
	}

	/* Host buffer too small. */
	set("localhost:80");
	capture_begin();
	rc = cfg_listen(VAR, NULL, host, 4, &port);
	capture_end();
	assert_int_equal(rc, -1);
}

static void test_int_list(void **state)
{
	static const char *const bad[] = {"5,,300", "5,",   ",5",	"5,abc",
					  "5,-1",   "5, 6", "5,100001", "99999999999999999999",
					  ","};
	long long *v = NULL;
	size_t n = 0, i;
	int rc;

	(void)state;
	set(NULL);
	assert_int_equal(cfg_int_list(VAR, "5,300,1800", 100000, &v, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(v[0], 5);
	assert_int_equal(v[1], 300);
	assert_int_equal(v[2], 1800);
	free(v);
	set("7");
	assert_int_equal(cfg_int_list(VAR, "5,300,1800", 100000, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0], 7);
	free(v);
	set("0,100000");
	assert_int_equal(cfg_int_list(VAR, "5", 100000, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[1], 100000);
	free(v);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		set(bad[i]);
		v = NULL;
		capture_begin();
		if (cfg_int_list(VAR, "5", 100000, &v, &n) != -1) {
			capture_end();
			fail_msg("cfg_int_list accepted \"%s\"", bad[i]);
		}
		capture_end();
		assert_null(v);
	}
	set("5,,300");
	capture_begin();
	rc = cfg_int_list(VAR, "5", 100000, &v, &n);
	capture_end();
	assert_int_equal(rc, -1);
	assert_string_equal(captured, "config: " VAR ": item 2 is empty (got \"5,,300\")\n");
}

static void test_url(void **state)
{
	static const char *const redis[] = {"redis", "rediss", NULL};
	static const char *const bad[] = {"http://x", "redis://",    "redis:/x",     "redis",
					  "redis//x", "redis://a b", "redis://a\nb", "xredis://h"};
	char *s = NULL;
	size_t i;
	int rc;

	(void)state;
	set(NULL);
	assert_int_equal(cfg_url(VAR, "redis://127.0.0.1:6379/0", redis, &s), 0);
	assert_string_equal(s, "redis://127.0.0.1:6379/0");
	free(s);
	set("rediss://:pw@cache:6380/1");
	assert_int_equal(cfg_url(VAR, "redis://127.0.0.1:6379/0", redis, &s), 0);
	assert_string_equal(s, "rediss://:pw@cache:6380/1");
	free(s);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		set(bad[i]);
		s = NULL;
		capture_begin();
		if (cfg_url(VAR, NULL, redis, &s) != -1) {
			capture_end();
			fail_msg("cfg_url accepted \"%s\"", bad[i]);
		}
		capture_end();
		assert_null(s);
		/* One line even for a value with a newline in it. */
		assert_int_equal(strchr(captured, '\n')[1], '\0');
	}

	/* Passwords are not echoed. */
	set("postgres://rampart:hunter2@db/rampart");
	capture_begin();
	rc = cfg_url(VAR, NULL, redis, &s);
	capture_end();
	assert_int_equal(rc, -1);
	assert_string_equal(captured,
			    "config: " VAR ": must be a URL starting with redis:// or rediss:// "
			    "(got \"postgres://***@db/rampart\")\n");
}

static void test_fail(void **state)
{
	int rc;

	(void)state;
	capture_begin();
	rc = cfg_fail("MOCK_SETTLE_MIN_MS", "must not exceed %s", "MOCK_SETTLE_MAX_MS");
	capture_end();
	assert_int_equal(rc, -1);
	assert_string_equal(captured,
			    "config: MOCK_SETTLE_MIN_MS: must not exceed MOCK_SETTLE_MAX_MS\n");
}

/* The daemons' tables of int variables: defaults, values, the first bad
 * one reported and nothing after it read. */
static void test_int_table(void **state)
{
	int a = -1, b = -1, c = -1;
	const struct cfg_int_var table[] = {
		{"RAMPART_TEST_A", 7, 0, 10, &a},
		{VAR, 5, 1, 100, &b},
		{"RAMPART_TEST_C", 3, 0, 10, &c},
	};

	(void)state;
	unsetenv("RAMPART_TEST_A");
	unsetenv("RAMPART_TEST_C");
	set("42");
	assert_int_equal(cfg_int_table(table, CFG_COUNT(table)), 0);
	assert_int_equal(a, 7);
	assert_int_equal(b, 42);
	assert_int_equal(c, 3);

	a = b = c = -1;
	set("101");
	capture_begin();
	assert_int_equal(cfg_int_table(table, CFG_COUNT(table)), -1);
	capture_end();
	assert_string_equal(captured,
			    "config: RAMPART_TEST_VAR: out of range: must be between 1 and 100 "
			    "(got \"101\")\n");
	assert_int_equal(a, 7);
	assert_int_equal(b, -1);
	assert_int_equal(c, -1);

	const struct cfg_int_var wide[] = {{VAR, 5, 0, 1LL << 40, &b}};
	capture_begin();
	assert_int_equal(cfg_int_table(wide, 1), -1);
	capture_end();
	assert_non_null(strstr(captured, "does not fit an int"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_int, teardown),
		cmocka_unit_test_teardown(test_str, teardown),
		cmocka_unit_test_teardown(test_bool, teardown),
		cmocka_unit_test_teardown(test_enum, teardown),
		cmocka_unit_test_teardown(test_listen, teardown),
		cmocka_unit_test_teardown(test_int_list, teardown),
		cmocka_unit_test_teardown(test_url, teardown),
		cmocka_unit_test_teardown(test_fail, teardown),
		cmocka_unit_test_teardown(test_int_table, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
