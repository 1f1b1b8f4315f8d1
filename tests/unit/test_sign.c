/* test_sign.c - unit tests for common/sign (Standard Webhooks signatures)
 * and the webhook daemon's pure decisions (common/ssrf.c: address classes;
 * services/webhook/retry.c: retry delays, Retry-After). */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include "common/sign.h"
#include "webhook.h"

/* Known answers computed independently with Python:
 *   import hmac, hashlib, base64
 *   def sig(secret, msg_id, ts, body):
 *       key = base64.b64decode(secret.split("_", 1)[1])
 *       mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256)
 *       return "v1," + base64.b64encode(mac.digest()).decode()
 * The first is also the Standard Webhooks specification's own example. */
static void test_known_answers(void **state)
{
	char out[SIGN_WEBHOOK_MAX];
	(void)state;
	const char body1[] = "{\"test\": 2432232314}";
	assert_int_equal(sign_webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
				      "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body1,
				      strlen(body1), out),
			 0);
	assert_string_equal(out, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");

	/* key = bytes(range(24)) */
	const char body2[] = "{\"id\":\"evt_x\",\"type\":\"payment.completed\"}";
	assert_int_equal(sign_webhook("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX",
				      "evt_00000000-0000-4000-8000-000000000000", 1700000000, body2,
				      strlen(body2), out),
			 0);
	assert_string_equal(out, "v1,73uKFSJuv2DZlTNl8UKYy/1slPxroxGyNCClsrddf5o=");

	/* A one-byte key (padding "=="), an empty body, timestamp 0. */
	assert_int_equal(sign_webhook("whsec_aw==", "m", 0, NULL, 0, out), 0);
	assert_string_equal(out, "v1,ixkEPdXtaARr/kK0ZfPtuoHLroxLc6nMvmYiWoU3Ix4=");
	/* The prefix is optional, as in the reference libraries. */
	assert_int_equal(sign_webhook("aw==", "m", 0, "", 0, out), 0);
	assert_string_equal(out, "v1,ixkEPdXtaARr/kK0ZfPtuoHLroxLc6nMvmYiWoU3Ix4=");
}

/* Body bytes after a NUL are signed too: the length, not strlen, counts. */
static void test_body_length_counts(void **state)
{
	char a[SIGN_WEBHOOK_MAX], b[SIGN_WEBHOOK_MAX];
	(void)state;
	assert_int_equal(sign_webhook("whsec_aw==", "m", 1, "x\0y", 3, a), 0);
	assert_int_equal(sign_webhook("whsec_aw==", "m", 1, "x\0z", 3, b), 0);
	assert_string_not_equal(a, b);
}

static void test_bad_secrets(void **state)
{
	char out[SIGN_WEBHOOK_MAX];
	unsigned char key[8];
	(void)state;
	const char *bad[] = {"",	   "whsec_",	   "whsec_abc",	    "whsec_a*b=",
			     "whsec_====", "whsec_ab\ncd", "whsec_AAAA AAA"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sign_webhook(bad[i], "m", 1, "{}", 2, out), -1);
	assert_int_equal(sign_webhook(NULL, "m", 1, "{}", 2, out), -1);
	/* Too long for the caller's buffer. */
	assert_int_equal(sign_secret_decode("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX", key, 8), -1);
	assert_int_equal(sign_secret_decode("whsec_AAECAwQFBgc=", key, 8), 8);
	assert_int_equal(key[7], 7);
}

static void test_ssrf_classes(void **state)
{
	(void)state;
	const char *refused[][2] = {
		{"127.0.0.1", "loopback"},	 {"127.255.0.9", "loopback"},
		{"10.1.2.3", "private"},	 {"172.16.0.1", "private"},
		{"172.31.255.255", "private"},	 {"192.168.1.1", "private"},
		{"100.64.0.1", "private"},	 {"169.254.169.254", "link-local"},
		{"0.0.0.0", "unspecified"},	 {"224.0.0.1", "multicast"},
		{"255.255.255.255", "reserved"}, {"::1", "loopback"},
		{"::", "unspecified"},		 {"fe80::1", "link-local"},
		{"fc00::1", "private"},		 {"fd12:3456::1", "private"},
		{"ff02::1", "multicast"},	 {"::ffff:127.0.0.1", "loopback"},
		{"::ffff:10.0.0.1", "private"},	 {"::ffff:169.254.1.1", "link-local"},
		{"64:ff9b::a00:1", "private"},	 {"::127.0.0.1", "reserved"},
		{"localhost", "not an address"}, {"", "not an address"},
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		const char *p = ssrf_address_problem(refused[i][0]);
		assert_non_null(p);
		assert_string_equal(p, refused[i][1]);
	}
	const char *allowed[] = {"93.184.216.34",  "8.8.8.8",	  "172.32.0.1",
				 "172.15.255.255", "100.128.0.1", "2606:4700::1111",
				 "::ffff:8.8.8.8", "192.169.0.1"};
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		assert_null(ssrf_address_problem(allowed[i]));
}

/* URLs: numeric spellings normalised as libcurl will use them; names
 * other than localhost are not resolved (NULL). No I/O. */
static void test_ssrf_urls(void **state)
{
	(void)state;
	char host[256];
	const char *refused[][3] = {
		{"http://127.0.0.1/", "127.0.0.1", "loopback"},
		{"http://2130706433/", "127.0.0.1", "loopback"},
		{"http://0x7f.1/", "127.0.0.1", "loopback"},
		{"http://0177.0.0.1:80/x", "127.0.0.1", "loopback"},
		{"http://127.1/", "127.0.0.1", "loopback"},
		{"http://[::1]:8080/", "::1", "loopback"},
		{"http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", "loopback"},
		{"https://u:p@localhost/", "localhost", "loopback"},
		{"http://LocalHost./", "LocalHost", "loopback"},
		{"http://a.b.localhost/", "a.b.localhost", "loopback"},
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		const char *p = ssrf_url_problem(refused[i][0], host, sizeof(host));
		assert_non_null(p);
		assert_string_equal(p, refused[i][2]);
		assert_string_equal(host, refused[i][1]);
	}
	const char *allowed[] = {"https://example.com/hooks", "http://localhost.example/",
				 "http://mylocalhost/"};
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		assert_null(ssrf_url_problem(allowed[i], host, sizeof(host)));
	assert_string_equal(ssrf_url_problem("http://[::1/", host, sizeof(host)), "not a URL");
}

static void test_retry_delays(void **state)
{
	const long long sched[] = {5, 300, 1800};
	(void)state;
	assert_int_equal(retry_delay_ms(sched, 3, 1, -1, 0), 5000);
	assert_int_equal(retry_delay_ms(sched, 3, 2, -1, 0), 300000);
	assert_int_equal(retry_delay_ms(sched, 3, 3, -1, 0), 1800000);
	assert_int_equal(retry_delay_ms(sched, 3, 4, -1, 0), -1);
	assert_int_equal(retry_delay_ms(sched, 3, 0, -1, 0), -1);
	/* Retry-After is a lower bound; the schedule wins when longer. */
	assert_int_equal(retry_delay_ms(sched, 3, 1, 60, 0), 60000);
	assert_int_equal(retry_delay_ms(sched, 3, 2, 60, 0), 300000);
	/* Jitter adds at most 10%. */
	long long j = retry_delay_ms(sched, 3, 1, -1, 0.99);
	assert_true(j >= 5000 && j < 5500);
}

static void test_retry_after(void **state)
{
	(void)state;
	assert_int_equal(retry_after_parse("120", 0), 120);
	assert_int_equal(retry_after_parse(" 7 ", 0), 7);
	assert_int_equal(retry_after_parse("0", 0), 0);
	assert_int_equal(retry_after_parse("99999999", 0), 86400);
	assert_int_equal(retry_after_parse("-5", 0), -1);
	assert_int_equal(retry_after_parse("soon", 0), -1);
	assert_int_equal(retry_after_parse("12abc", 0), -1);
	assert_int_equal(retry_after_parse(NULL, 0), -1);
	/* Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 */
	assert_int_equal(retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 - 30), 30);
	assert_int_equal(retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 + 30), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers), cmocka_unit_test(test_body_length_counts),
		cmocka_unit_test(test_bad_secrets),   cmocka_unit_test(test_ssrf_classes),
		cmocka_unit_test(test_ssrf_urls),     cmocka_unit_test(test_retry_delays),
		cmocka_unit_test(test_retry_after),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
