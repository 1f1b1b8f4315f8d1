/* resolve.h - host name resolution on the event loop (libevent's evdns), so
 * clients never call the blocking system resolver from a loop thread. */
#ifndef COMMON_RESOLVE_H
#define COMMON_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct resolver;
struct resolve_req;

/* addr: a numeric IPv4/IPv6 address (borrowed until the callback returns),
 * or NULL with err set. */
typedef void (*resolve_cb)(void *arg, const char *addr, const char *err);

/* True for an IPv4/IPv6 literal, which needs no resolution. */
bool resolve_is_numeric(const char *host);

/* A resolver reading /etc/resolv.conf and /etc/hosts. NULL on failure. */
struct resolver *resolver_new(struct event_base *base);

/* Frees the resolver; lookups still pending are cancelled (their callbacks
 * never run). Accepts NULL. */
void resolver_free(struct resolver *r);

/* Lookups whose callback has not run yet (cancelled ones included: evdns
 * reports a cancellation from the loop, and frees its own state only then,
 * so a daemon shutting down with lookups in flight cancels them and runs
 * the loop until this is 0 before resolver_free). */
size_t resolver_pending(const struct resolver *r);

/* Resolves host to one address. cb runs exactly once unless cancelled, and
 * may run before this returns (hosts file, literal): then the result is
 * NULL. Otherwise the handle can cancel the lookup until cb has run. */
struct resolve_req *resolve_start(struct resolver *r, const char *host, resolve_cb cb, void *arg);

/* Cancels a pending lookup: its callback will not run. */
void resolve_cancel(struct resolve_req *q);

#endif
