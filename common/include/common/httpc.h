/* httpc.h - an asynchronous HTTP client: libcurl's multi interface driven by
 * libevent (socket and timer callbacks), so hundreds of requests are in
 * flight on one loop and none blocks it. Redirects are never followed;
 * response bodies are read up to a limit. */
#ifndef COMMON_HTTPC_H
#define COMMON_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct httpc;

struct httpc_request {
	const char *method; /* "GET", "POST", ... */
	const char *url;
	const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
	const char *body;	    /* sent as is (copied), may be NULL */
	size_t body_len;
	int timeout_ms;	     /* whole-request deadline (connect included) */
	size_t max_response; /* body bytes kept (default 64 KiB); more is cut, not an error */
	/* NULL-terminated curl CURLOPT_RESOLVE entries "host:port:address"
	 * (IPv6 in brackets), or NULL: the request connects to that address
	 * for host:port instead of resolving the name, e.g. to pin the address
	 * an SSRF check approved (no DNS rebinding in between). Copied. */
	const char *const *resolve;
	/* Optional: called with every address curl is about to connect to (as
	 * text, e.g. "127.0.0.1", "::1"), after any resolve pin and for every
	 * connection attempt, so what is checked is the address actually
	 * connected to. NULL allows it; a reason (static string) refuses it:
	 * no socket is opened and the request fails with error "address
	 * refused: <address> is <reason>" (response.addr_refused set). */
	const char *(*check_addr)(void *check_arg, const char *addr);
	void *check_arg;
};

struct httpc_response {
	long status;	   /* HTTP status, 0 when no response (see error) */
	const char *error; /* NULL on a response; else e.g. "timeout", "connection refused" */
	bool timed_out;
	bool addr_refused; /* check_addr refused the address to connect to */
	const char *body;  /* NUL-terminated, borrowed until the callback returns */
	size_t body_len;
	bool truncated; /* the body was longer than max_response */
	long latency_ms;
};

/* A response header's value (case-insensitive name), or NULL; borrowed. */
const char *httpc_header(const struct httpc_response *r, const char *name);

typedef void (*httpc_cb)(void *arg, const struct httpc_response *r);

/* max_conns bounds connections in total (0 = unlimited); max_host bounds
 * connections per host (0 = unlimited). NULL on failure. */
struct httpc *httpc_new(struct event_base *base, int max_conns, int max_host);

/* Fails every pending request with error "client shutting down" (callbacks
 * run inside this call) and frees. Accepts NULL. */
void httpc_free(struct httpc *c);

/* Starts a request; returns 0 if started (cb runs exactly once, never
 * inside this call), -1 if refused (bad arguments, out of memory). */
int httpc_send(struct httpc *c, const struct httpc_request *req, httpc_cb cb, void *arg)
	__attribute__((warn_unused_result));

/* Requests started and not yet answered. */
size_t httpc_pending(const struct httpc *c);

#endif
