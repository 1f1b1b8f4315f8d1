/* ratelimit.h - the per-key token bucket: its pure arithmetic
 * (ratelimit_refill_take) and the process-local table of buckets that all
 * loops share. The shared limit (the bucket in Redis, leased to each loop)
 * is auth.c's; it falls back on this one when Redis cannot answer. */
#ifndef API_RATELIMIT_H
#define API_RATELIMIT_H

#include <stdint.h>

struct principal;
struct ratelimit;

/* The refill-and-take of one bucket, in millionths of a request: refills
 * rps tokens per second since *last_us (a clock that goes back refills
 * nothing; an idle spell fills it to burst), then takes one token. Returns 0
 * when a token was taken, else the whole seconds (>= 1) until one is due.
 * Pure: the caller supplies now_us and keeps the state. rps, burst >= 1. */
int ratelimit_refill_take(int64_t *tokens_micro, uint64_t *last_us, uint64_t now_us, int64_t rps,
			  int64_t burst);

/* A table of buckets, one per key id, created full on first use; they live
 * until ratelimit_free (one per valid key, which bounds them). NULL on OOM. */
struct ratelimit *ratelimit_new(int64_t rps, int64_t burst);
void ratelimit_free(struct ratelimit *rl);

/* key_id's principal (its bucket's identity), without taking a token; NULL
 * on OOM. The pointer stays valid until ratelimit_free. Thread-safe. */
struct principal *ratelimit_principal(struct ratelimit *rl, const char *key_id);

/* Takes one token from key_id's bucket: its principal, with *retry_after 0
 * when allowed or the seconds until a token is due; NULL on OOM.
 * Thread-safe. */
struct principal *ratelimit_take(struct ratelimit *rl, const char *key_id, int *retry_after);

#endif
