/* ratelimit.c - the per-key token bucket and the process-local table of
 * buckets (see ratelimit.h). */
#include "ratelimit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "common/clock.h"
#include "common/ids.h"

#define RL_BUCKETS 1024
#define MICRO	   1000000LL

/* A caller's bucket. A pointer to its principal doubles as the request's
 * principal. */
struct bucket {
	struct principal who;
	struct bucket *next;
	int64_t tokens_micro; /* millionths of a request */
	uint64_t last_us;
};

struct ratelimit {
	pthread_mutex_t mu;
	int64_t rps, burst;
	struct bucket *slots[RL_BUCKETS];
};

int ratelimit_refill_take(int64_t *tokens_micro, uint64_t *last_us, uint64_t now_us, int64_t rps,
			  int64_t burst)
{
	/* Refill: rps tokens per second = rps millionths per microsecond. */
	int64_t cap = burst * MICRO;
	uint64_t elapsed = now_us > *last_us ? now_us - *last_us : 0;
	if (now_us > *last_us)
		*last_us = now_us;
	if (elapsed > (uint64_t)(cap / rps) + 1)
		*tokens_micro = cap;
	else if ((*tokens_micro += (int64_t)elapsed * rps) > cap)
		*tokens_micro = cap;
	if (*tokens_micro >= MICRO) {
		*tokens_micro -= MICRO;
		return 0;
	}
	int64_t per_sec = rps * MICRO;
	int retry_after = (int)((MICRO - *tokens_micro + per_sec - 1) / per_sec);
	return retry_after < 1 ? 1 : retry_after;
}

struct ratelimit *ratelimit_new(int64_t rps, int64_t burst)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));
	if (!rl)
		return NULL;
	pthread_mutex_init(&rl->mu, NULL);
	rl->rps = rps;
	rl->burst = burst;
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	for (int i = 0; i < RL_BUCKETS; i++) {
		struct bucket *b = rl->slots[i], *next;
		for (; b; b = next) {
			next = b->next;
			free(b);
		}
	}
	pthread_mutex_destroy(&rl->mu);
	free(rl);
}

/* key_id's bucket, created full on first use; NULL on OOM. Under rl->mu. */
static struct bucket *bucket_find(struct ratelimit *rl, const char *key_id, uint64_t now)
{
	size_t slot = (size_t)(id_hash(key_id) % RL_BUCKETS);
	struct bucket *b;
	for (b = rl->slots[slot]; b; b = b->next)
		if (strcmp(b->who.key_id, key_id) == 0)
			return b;
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	snprintf(b->who.key_id, sizeof(b->who.key_id), "%s", key_id);
	b->tokens_micro = rl->burst * MICRO;
	b->last_us = now;
	b->next = rl->slots[slot];
	rl->slots[slot] = b;
	return b;
}

struct principal *ratelimit_principal(struct ratelimit *rl, const char *key_id)
{
	pthread_mutex_lock(&rl->mu);
	struct bucket *b = bucket_find(rl, key_id, clock_mono_us());
	pthread_mutex_unlock(&rl->mu);
	return b ? &b->who : NULL;
}

struct principal *ratelimit_take(struct ratelimit *rl, const char *key_id, int *retry_after)
{
	pthread_mutex_lock(&rl->mu);
	/* The clock is read under the lock: a reading taken before it could be
	 * older than the last holder's, and now - last_us would wrap around to
	 * a huge "idle" time that refills the bucket (issue 13). */
	uint64_t now = clock_mono_us();
	struct bucket *b = bucket_find(rl, key_id, now);
	if (b)
		*retry_after = ratelimit_refill_take(&b->tokens_micro, &b->last_us, now, rl->rps,
						     rl->burst);
	pthread_mutex_unlock(&rl->mu);
	return b ? &b->who : NULL;
}
