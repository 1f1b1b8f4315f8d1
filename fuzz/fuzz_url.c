/* fuzz_url.c - URL and header handling outside the HTTP server: the webhook
 * URL check of POST /v1/webhook_endpoints (webhooks_validate), the SSRF
 * guard's address classification (ssrf_address_problem, against an
 * independent reading of the address with inet_pton), Retry-After parsing
 * (retry_after_parse) and resolve_is_numeric. Input: the string, up to the
 * first NUL. */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "common/json.h"
#include "common/log.h"
#include "common/resolve.h"
#include "fuzz.h"
#include "webhook.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz", LOG_ERROR, true);
	return 0;
}

/* Loopback, private, link-local, unspecified, multicast or reserved IPv4. */
static bool v4_blocked(const unsigned char *a)
{
	return a[0] == 0 || a[0] == 127 || a[0] == 10 || (a[0] == 172 && a[1] >= 16 && a[1] < 32) ||
	       (a[0] == 192 && a[1] == 168) || (a[0] == 169 && a[1] == 254) || a[0] >= 224 ||
	       (a[0] == 100 && a[1] >= 64 && a[1] < 128);
}

static void address(const char *s)
{
	unsigned char a[16];
	const char *why = ssrf_address_problem(s);

	if (inet_pton(AF_INET, s, a) == 1) {
		FUZZ_CHECK(v4_blocked(a) == (why != NULL) ||
			   (a[0] == 192 && a[1] == 0 && a[2] == 0));
	} else if (inet_pton(AF_INET6, s, a) == 1) {
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		static const unsigned char zero[15] = {0};
		if (memcmp(a, mapped, 12) == 0 && v4_blocked(a + 12))
			FUZZ_CHECK(why != NULL); /* ::ffff:127.0.0.1 and the like */
		if (memcmp(a, zero, 15) == 0 && a[15] <= 1)
			FUZZ_CHECK(why != NULL); /* :: and ::1 */
		if (a[0] == 0xff || (a[0] & 0xfe) == 0xfc ||
		    (a[0] == 0xfe && (a[1] & 0xc0) == 0x80))
			FUZZ_CHECK(why != NULL);
	} else {
		FUZZ_CHECK(why != NULL && strcmp(why, "not an address") == 0);
	}
}

static void webhook_url(const char *s, size_t len)
{
	json_t *body = json_object();
	json_t *url = json_stringn(s, len);
	struct jv_error e;
	const char *got = NULL;

	if (body == NULL || url == NULL) { /* invalid UTF-8: the parser refuses it first */
		json_decref(body);
		json_decref(url);
		return;
	}
	json_object_set_new(body, "url", url);
	json_object_set_new(body, "events", json_pack("[s]", "*"));
	json_t *events = webhooks_validate(body, false, &got, &e);
	if (events != NULL) {
		FUZZ_CHECK(got != NULL && strlen(got) == len && len <= 2048);
		FUZZ_CHECK(strncasecmp(got, "http://", 7) == 0 ||
			   strncasecmp(got, "https://", 8) == 0);
		for (size_t i = 0; i < len; i++)
			FUZZ_CHECK((unsigned char)got[i] > 0x20 && (unsigned char)got[i] != 0x7f);
		json_decref(events);
	} else {
		FUZZ_CHECK(e.status == 400 && e.code[0] != '\0');
	}
	json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size);
	if (s == NULL)
		return 0;
	webhook_url((const char *)data, size);
	address(s);
	(void)resolve_is_numeric(s);
	long long ra = retry_after_parse(s, 1800000000LL);
	FUZZ_CHECK(ra == -1 || (ra >= 0 && ra <= 86400));
	free(s);
	return 0;
}
