/* ssrf.h - which addresses an outgoing webhook may reach (SSRF guard): pure
 * checks shared by the api (at registration) and the webhook daemon (at
 * resolution and again at connect time). Unit-tested. */
#ifndef COMMON_SSRF_H
#define COMMON_SSRF_H

#include <stddef.h>

/* NULL when a numeric IPv4/IPv6 address may be a webhook target; else why
 * not ("loopback", "private", "link-local", "unspecified", "multicast",
 * "reserved", "not an address"), a static string. IPv4-mapped and NAT64
 * IPv6 addresses are judged by the IPv4 address inside. */
const char *ssrf_address_problem(const char *addr);

/* For an http(s) URL that parses: NULL when its host may be public, else
 * why it never can be, with the host as libcurl will use it in host (e.g.
 * "127.0.0.1" for http://2130706433/ or http://0x7f.1/, "::1" for
 * http://[::1]/): a literal address with a problem above, or "localhost"
 * and names under .localhost (RFC 6761: always loopback). Other names are
 * not resolved here (their answers may change; the daemon judges them at
 * each delivery). "not a URL" when libcurl cannot parse it. */
const char *ssrf_url_problem(const char *url, char *host, size_t hostlen);

#endif
