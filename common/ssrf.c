/* ssrf.c - address classes for the SSRF guard (see ssrf.h). */
#include "common/ssrf.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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

const char *ssrf_url_problem(const char *url, char *host, size_t hostlen)
{
	CURLU *u = curl_url();
	char *h = NULL;
	const char *problem = NULL;
	unsigned char a[16];

	if (hostlen)
		host[0] = '\0';
	/* libcurl's parser (pure, no I/O) normalises numeric IPv4 spellings
	 * (2130706433, 0x7f.1, 0177.0.0.1) to dotted quads, as the daemon's
	 * requests will see them. */
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK || !h) {
		problem = "not a URL";
		goto done;
	}
	size_t n = strlen(h);
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') { /* IPv6 literal */
		h[n - 1] = '\0';
		memmove(h, h + 1, n - 1);
		n -= 2;
	}
	char *zone = strchr(h, '%');
	if (zone)
		*zone = '\0';		 /* fe80::1%eth0: judged by the address */
	while (n > 0 && h[n - 1] == '.') /* "localhost." is localhost */
		h[--n] = '\0';
	snprintf(host, hostlen, "%s", h);
	if (inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1)
		problem = ssrf_address_problem(h);
	else if (strcasecmp(h, "localhost") == 0 ||
		 (n > 10 && strcasecmp(h + n - 10, ".localhost") == 0))
		problem = "loopback";
done:
	curl_free(h);
	curl_url_cleanup(u);
	return problem;
}
