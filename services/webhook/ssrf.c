/* ssrf.c - which addresses a webhook may reach, and when to retry: the
 * daemon's pure decisions, kept apart from I/O so they are unit-tested. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "webhook.h"

#define RETRY_AFTER_MAX_S 86400

static const char *ipv4_problem(const unsigned char a[4])
{
	if (a[0] == 0)
		return "unspecified";
	if (a[0] == 127)
		return "loopback";
	if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) ||
	    (a[0] == 100 && (a[1] & 0xc0) == 64)) /* 100.64/10, carrier-grade NAT */
		return "private";
	if (a[0] == 169 && a[1] == 254)
		return "link-local";
	if (a[0] >= 224 && a[0] <= 239)
		return "multicast";
	if (a[0] >= 240 || (a[0] == 192 && a[1] == 0 && a[2] == 0))
		return "reserved";
	return NULL;
}

const char *ssrf_address_problem(const char *addr)
{
	unsigned char a[16];
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
	static const unsigned char zero[16] = {0};

	if (!addr)
		return "not an address";
	if (inet_pton(AF_INET, addr, a) == 1)
		return ipv4_problem(a);
	if (inet_pton(AF_INET6, addr, a) != 1)
		return "not an address";
	if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)
		return ipv4_problem(a + 12);
	if (memcmp(a, zero, 16) == 0)
		return "unspecified";
	if (memcmp(a, zero, 15) == 0 && a[15] == 1)
		return "loopback";
	if (memcmp(a, zero, 12) == 0) /* deprecated IPv4-compatible ::a.b.c.d */
		return "reserved";
	if (a[0] == 0xff)
		return "multicast";
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return "link-local";
	if ((a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)) /* ULA, site-local */
		return "private";
	return NULL;
}

long long retry_delay_ms(const long long *schedule, size_t n, int attempt, long long retry_after_s,
			 double jitter)
{
	if (attempt < 1 || (size_t)attempt > n)
		return -1;
	long long step = schedule[attempt - 1];
	if (retry_after_s > step)
		step = retry_after_s;
	if (jitter < 0 || jitter >= 1)
		jitter = 0;
	/* Jitter only adds, so a Retry-After is always honoured. */
	return step * 1000 + (long long)((double)step * 100.0 * jitter);
}

long long retry_after_parse(const char *v, long long now_s)
{
	char *end;
	if (!v)
		return -1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v >= '0' && *v <= '9') {
		long long s = strtoll(v, &end, 10);
		while (*end == ' ' || *end == '\t')
			end++;
		if (*end)
			return -1;
		return s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : s;
	}
	time_t t = curl_getdate(v, NULL); /* an HTTP-date; pure parsing */
	if (t == (time_t)-1)
		return -1;
	long long d = (long long)t - now_s;
	if (d < 0)
		d = 0;
	return d > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : d;
}
