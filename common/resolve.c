/* resolve.c - asynchronous host name resolution over evdns. */
#include "common/resolve.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <sys/socket.h>

struct resolve_req;
LIST_HEAD(resolve_list, resolve_req);

struct resolver {
	struct evdns_base *dns;
	struct resolve_list live; /* lookups whose callback has not run yet */
};

/* A lookup. evdns owns the request until its callback runs (even after a
 * cancel, the callback runs later with EVUTIL_EAI_CANCEL), so this context
 * lives until then and is freed there. */
struct resolve_req {
	LIST_ENTRY(resolve_req) link;
	resolve_cb cb;
	void *arg;
	struct evdns_getaddrinfo_request *req;
	bool cancelled, starting, done;
};

bool resolve_is_numeric(const char *host)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

struct resolver *resolver_new(struct event_base *base)
{
	struct resolver *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	LIST_INIT(&r->live);
	r->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
					      EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (!r->dns) {
		free(r);
		return NULL;
	}
	return r;
}

size_t resolver_pending(const struct resolver *r)
{
	size_t n = 0;
	const struct resolve_req *q;
	if (r)
		LIST_FOREACH(q, &r->live, link)
	n++;
	return n;
}

void resolver_free(struct resolver *r)
{
	if (!r)
		return;
	evdns_base_free(r->dns, 1);
	/* evdns does not run the callback of every lookup it drops (one that
	 * was cancelled, or waits for its second address family, stays
	 * silent): free what is left, callbacks are no longer expected. */
	struct resolve_req *q;
	while ((q = LIST_FIRST(&r->live))) {
		LIST_REMOVE(q, link);
		free(q);
	}
	free(r);
}

static void on_result(int result, struct evutil_addrinfo *res, void *arg)
{
	struct resolve_req *q = arg;
	char addr[INET6_ADDRSTRLEN] = "";

	if (!q->cancelled) {
		if (result == 0 && res) {
			const void *a =
				res->ai_family == AF_INET6
					? (const void *)&(
						  (struct sockaddr_in6 *)(void *)res->ai_addr)
						  ->sin6_addr
					: (const void *)&(
						  (struct sockaddr_in *)(void *)res->ai_addr)
						  ->sin_addr;
			if (!evutil_inet_ntop(res->ai_family, a, addr, sizeof(addr)))
				addr[0] = '\0';
		}
		if (addr[0])
			q->cb(q->arg, addr, NULL);
		else
			q->cb(q->arg, NULL, result ? evutil_gai_strerror(result) : "no address");
	}
	if (res)
		evutil_freeaddrinfo(res);
	q->done = true;
	LIST_REMOVE(q, link);
	if (!q->starting)
		free(q);
}

struct resolve_req *resolve_start(struct resolver *r, const char *host, resolve_cb cb, void *arg)
{
	struct evutil_addrinfo hints = {0};
	struct resolve_req *q = calloc(1, sizeof(*q));
	if (!q) {
		cb(arg, NULL, "out of memory");
		return NULL;
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	q->cb = cb;
	q->arg = arg;
	q->starting = true;
	LIST_INSERT_HEAD(&r->live, q, link);
	q->req = evdns_getaddrinfo(r->dns, host, NULL, &hints, on_result, q);
	q->starting = false;
	if (q->done) { /* answered synchronously */
		free(q);
		return NULL;
	}
	return q;
}

void resolve_cancel(struct resolve_req *q)
{
	if (!q || q->cancelled)
		return;
	q->cancelled = true;
	evdns_getaddrinfo_cancel(q->req);
}
