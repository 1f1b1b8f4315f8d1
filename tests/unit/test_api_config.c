/* test_api_config.c - the api daemon's configuration: defaults, and every
 * bad value stops start-up naming its variable. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static const char *const vars[] = {
	"DATABASE_URL",
	"REDIS_URL",
	"REDIS_PREFIX",
	"API_LISTEN",
	"API_KEYS",
	"RATE_LIMIT_RPS",
	"RATE_LIMIT_BURST",
	"QUOTE_TTL_SECONDS",
	"FEE_PLATFORM_BPS",
	"FEE_ONRAMP_BPS",
	"FEE_OFFRAMP_BPS",
	"LOG_LEVEL",
	"LOG_FORMAT",
	"API_THREADS",
	"DB_POOL_SIZE",
	"DB_QUERY_TIMEOUT_MS",
	"REDIS_TIMEOUT_MS",
	"API_KEY_CACHE_SECONDS",
	"SHUTDOWN_GRACE_SECONDS",
	"RATE_LIMIT_SHARED",
	"RATE_LIMIT_LEASE",
	"WEBHOOK_ALLOW_PRIVATE",
};

static int clear_env(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	return 0;
}

/* Loads with stderr captured into buf; returns api_config_load's result. */
static int load_capturing(struct api_config *c, char *buf, size_t len)
{
	fflush(stderr);
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	int saved = dup(2);
	dup2(fileno(tmp), 2);
	int rc = api_config_load(c);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	size_t n = fread(buf, 1, len - 1, tmp);
	buf[n] = '\0';
	fclose(tmp);
	return rc;
}

static void test_defaults(void **state)
{
	struct api_config c;
	char err[512];
	(void)state;
	assert_int_equal(load_capturing(&c, err, sizeof(err)), 0);
	assert_string_equal(c.base.database_url,
			    "postgres://rampart:rampart@127.0.0.1:5432/rampart");
	assert_string_equal(c.base.redis_url, "redis://127.0.0.1:6379/0");
	assert_string_equal(c.base.redis_prefix, "rampart");
	assert_string_equal(c.listen_host, "0.0.0.0");
	assert_int_equal(c.listen_port, 8080);
	assert_int_equal(c.n_api_keys, 0);
	assert_int_equal(c.rate_rps, 1000);
	assert_int_equal(c.rate_burst, 2000);
	assert_true(c.rate_shared);
	assert_int_equal(c.rate_lease, 10); /* 1 % of 1000/s */
	assert_false(c.webhook_allow_private);
	assert_int_equal(c.quote_ttl, 60);
	assert_int_equal(c.fee_platform_bps, 200);
	assert_int_equal(c.fee_onramp_bps, 70);
	assert_int_equal(c.fee_offramp_bps, 50);
	assert_true(c.base.log_json);
	assert_true(c.threads >= 1);
	api_config_free(&c);
}

static void test_api_keys_list(void **state)
{
	struct api_config c;
	char err[512];
	(void)state;
	setenv("API_KEYS", " sk_a, sk_b ,,sk_c", 1);
	assert_int_equal(load_capturing(&c, err, sizeof(err)), 0);
	assert_int_equal(c.n_api_keys, 3);
	assert_string_equal(c.api_keys[0], "sk_a");
	assert_string_equal(c.api_keys[1], "sk_b");
	assert_string_equal(c.api_keys[2], "sk_c");
	api_config_free(&c);
}

/* RATE_LIMIT_LEASE's automatic size: 1 % of the rate, at most burst/10 and
 * 100, at least 1; an explicit one at most the burst. */
static void test_rate_lease(void **state)
{
	static const struct {
		const char *rps, *burst, *lease;
		long long want;
	} cases[] = {
		{"1000", "2000", NULL, 10},	    {"50", "100", NULL, 1},
		{"1000000", "10000000", NULL, 100}, {"10000", "50", NULL, 5},
		{"1000", "2000", "500", 500},	    {"1000", "20", "500", 20},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct api_config c;
		char err[512];
		clear_env(NULL);
		setenv("RATE_LIMIT_RPS", cases[i].rps, 1);
		setenv("RATE_LIMIT_BURST", cases[i].burst, 1);
		if (cases[i].lease)
			setenv("RATE_LIMIT_LEASE", cases[i].lease, 1);
		assert_int_equal(load_capturing(&c, err, sizeof(err)), 0);
		if (c.rate_lease != cases[i].want)
			fail_msg("case %zu: lease %lld, want %lld", i, c.rate_lease, cases[i].want);
		api_config_free(&c);
	}
	clear_env(NULL);
}

/* Each bad value: load fails and the message names the variable. */
static void test_bad_values(void **state)
{
	static const struct {
		const char *var, *value;
	} bad[] = {
		{"DATABASE_URL", "mysql://x"},	{"REDIS_URL", "http://x"},
		{"API_LISTEN", "8080"},		{"API_LISTEN", "127.0.0.1:70000"},
		{"API_KEYS", "sk a"},		{"RATE_LIMIT_RPS", "fast"},
		{"RATE_LIMIT_RPS", "0"},	{"RATE_LIMIT_BURST", "-1"},
		{"QUOTE_TTL_SECONDS", "60s"},	{"FEE_PLATFORM_BPS", "10001"},
		{"FEE_ONRAMP_BPS", "1.5"},	{"FEE_OFFRAMP_BPS", "9999"},
		{"LOG_LEVEL", "loud"},		{"LOG_FORMAT", "xml"},
		{"API_THREADS", "-2"},		{"DB_POOL_SIZE", "0"},
		{"DB_QUERY_TIMEOUT_MS", "abc"}, {"REDIS_TIMEOUT_MS", "1"},
		{"API_KEY_CACHE_SECONDS", "x"}, {"SHUTDOWN_GRACE_SECONDS", "99999"},
		{"RATE_LIMIT_SHARED", "2"},	{"RATE_LIMIT_LEASE", "-1"},
		{"RATE_LIMIT_LEASE", "1001"},	{"WEBHOOK_ALLOW_PRIVATE", "maybe"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct api_config c;
		char err[512], want[64];
		clear_env(NULL);
		setenv(bad[i].var, bad[i].value, 1);
		int rc = load_capturing(&c, err, sizeof(err));
		if (rc != -1)
			fail_msg("%s=%s was accepted", bad[i].var, bad[i].value);
		/* FEE_OFFRAMP_BPS=9999 is valid alone; the sum check names the fees. */
		snprintf(want, sizeof(want), "config: %s:",
			 strcmp(bad[i].value, "9999") == 0 ? "FEE_PLATFORM_BPS" : bad[i].var);
		if (!strstr(err, want))
			fail_msg("%s=%s: message %s does not name it", bad[i].var, bad[i].value,
				 err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_defaults, clear_env),
		cmocka_unit_test_setup(test_api_keys_list, clear_env),
		cmocka_unit_test_setup(test_rate_lease, clear_env),
		cmocka_unit_test_setup(test_bad_values, clear_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
