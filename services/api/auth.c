/* auth.c - Bearer API keys (static from API_KEYS, hashed in the DB) and the
 * per-key token-bucket rate limit. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pg.h"

#define MAX_KEY_LEN    256
#define KEYCACHE_SLOTS 1024
#define RL_BUCKETS     1024
#define MICRO	       1000000LL

/* ------------------------------------------------------------------------ */
/* Rate limit: one token bucket per key id, shared by all loops.            */
/* ------------------------------------------------------------------------ */

/* A caller's bucket. Buckets live until exit, so a pointer to one doubles as
 * the request's principal; there is one per valid key, which bounds them. */
struct bucket {
	struct principal who; /* first: (struct principal *) works */
	struct bucket *next;
	int64_t tokens_micro; /* millionths of a request */
	uint64_t last_us;
};

struct ratelimit {
	pthread_mutex_t mu;
	int64_t rps, burst;
	struct bucket *slots[RL_BUCKETS];
};

static unsigned str_hash(const char *s)
{
	unsigned h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Takes one token from key_id's bucket. Returns its bucket, with *retry_after
 * = 0 when allowed or the seconds until a token is due; NULL on OOM. */
static struct bucket *ratelimit_take(struct ratelimit *rl, const char *key_id, int *retry_after)
{
	unsigned slot = str_hash(key_id) % RL_BUCKETS;
	struct bucket *b;

	pthread_mutex_lock(&rl->mu);
	/* The clock is read under the lock: a reading taken before it could be
	 * older than the last holder's, and now - last_us would wrap around to
	 * a huge "idle" time that refills the bucket (issue 13). */
	uint64_t now = clock_mono_us();
	for (b = rl->slots[slot]; b; b = b->next)
		if (strcmp(b->who.key_id, key_id) == 0)
			break;
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b) {
			pthread_mutex_unlock(&rl->mu);
			return NULL;
		}
		snprintf(b->who.key_id, sizeof(b->who.key_id), "%s", key_id);
		b->tokens_micro = rl->burst * MICRO;
		b->last_us = now;
		b->next = rl->slots[slot];
		rl->slots[slot] = b;
	}
	/* Refill: rps tokens per second = rps millionths per microsecond. */
	int64_t cap = rl->burst * MICRO;
	uint64_t elapsed = now > b->last_us ? now - b->last_us : 0;
	if (now > b->last_us)
		b->last_us = now;
	if (elapsed > (uint64_t)(cap / rl->rps) + 1)
		b->tokens_micro = cap;
	else if ((b->tokens_micro += (int64_t)elapsed * rl->rps) > cap)
		b->tokens_micro = cap;
	if (b->tokens_micro >= MICRO) {
		b->tokens_micro -= MICRO;
		*retry_after = 0;
	} else {
		int64_t per_sec = rl->rps * MICRO;
		*retry_after = (int)((MICRO - b->tokens_micro + per_sec - 1) / per_sec);
		if (*retry_after < 1)
			*retry_after = 1;
	}
	pthread_mutex_unlock(&rl->mu);
	return b;
}

/* ------------------------------------------------------------------------ */
/* Key cache: DB key lookups per loop, direct-mapped, so memory is fixed.   */
/* ------------------------------------------------------------------------ */

struct keyslot {
	unsigned char hash[32];
	char key_id[48];
	bool used, valid;
	uint64_t expires_us;
};

struct keycache {
	struct keyslot slots[KEYCACHE_SLOTS];
};

static struct keycache *keycache_new(void)
{
	return calloc(1, sizeof(struct keycache));
}

void keycache_free(struct keycache *k)
{
	free(k);
}

static struct keyslot *keycache_slot(struct keycache *k, const unsigned char hash[32])
{
	unsigned idx = ((unsigned)hash[0] << 8 | hash[1]) % KEYCACHE_SLOTS;
	return &k->slots[idx];
}

/* ------------------------------------------------------------------------ */
/* The hook                                                                  */
/* ------------------------------------------------------------------------ */

static struct metric *m_auth_fail, *m_ratelimited;

int auth_init(struct app *a)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));
	if (!rl)
		return -1;
	pthread_mutex_init(&rl->mu, NULL);
	rl->rps = a->cfg.rate_rps;
	rl->burst = a->cfg.rate_burst;
	a->ratelimit = rl;
	a->n_static = a->cfg.n_api_keys;
	a->static_hashes = calloc(a->n_static ? a->n_static : 1, 32);
	if (!a->static_hashes)
		return -1;
	for (size_t i = 0; i < a->n_static; i++) {
		const char *k = a->cfg.api_keys[i];
		if (!EVP_Digest(k, strlen(k), a->static_hashes[i], NULL, EVP_sha256(), NULL))
			return -1;
	}
	m_auth_fail = metrics_counter("rampart_auth_failures_total",
				      "Requests refused for a missing, unknown or revoked key", "");
	m_ratelimited = metrics_counter("rampart_rate_limited_total",
					"Requests refused by the per-key rate limit", "");
	return 0;
}

void auth_free(struct app *a)
{
	struct ratelimit *rl = a->ratelimit;
	if (rl) {
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
	free(a->static_hashes);
	a->ratelimit = NULL;
	a->static_hashes = NULL;
}

int auth_loop_init(struct loop *l)
{
	l->keys = keycache_new();
	l->stmts[STMT_KEY_LOOKUP] = pg_prepare(
		l->pg, "SELECT id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", 1);
	return l->keys && l->stmts[STMT_KEY_LOOKUP] >= 0 ? 0 : -1;
}

const struct principal *auth_principal(const struct http_req *r)
{
	return http_req_user(r);
}

static void hex32(const unsigned char h[32], char out[65])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[h[i] >> 4];
		out[2 * i + 1] = digits[h[i] & 15];
	}
	out[64] = '\0';
}

static void unauthorized(struct http_req *r, const char *why)
{
	metric_inc(m_auth_fail);
	http_req_add_header(r, "WWW-Authenticate", "Bearer realm=\"rampart\"");
	http_reply_error(r, 401, "UNAUTHORIZED", NULL, "%s", why);
}

/* Authenticated as key_id: apply its rate limit, then run the handler. */
static void admit(struct loop *l, struct http_req *r, const char *key_id)
{
	int retry_after;
	struct bucket *b = ratelimit_take(l->app->ratelimit, key_id, &retry_after);
	if (!b) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
		return;
	}
	if (retry_after > 0) {
		char secs[16];
		snprintf(secs, sizeof(secs), "%d", retry_after);
		metric_inc(m_ratelimited);
		http_req_add_header(r, "Retry-After", secs);
		http_reply_error(
			r, 429, "RATE_LIMITED", NULL,
			"rate limit of %lld requests/s (burst %lld) exceeded; retry in %d s",
			l->app->cfg.rate_rps, l->app->cfg.rate_burst, retry_after);
		return;
	}
	http_req_set_user(r, &b->who);
	http_req_proceed(r);
}

struct key_lookup {
	struct loop *l;
	struct http_req *r;
	unsigned char hash[32];
};

/* SELECT id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL */
static void key_lookup_done(void *arg, const PGresult *res, const char *err)
{
	struct key_lookup *kl = arg;
	struct loop *l = kl->l;
	struct http_req *r = kl->r;

	if (err) {
		log_event(LOG_WARN, "api key lookup failed", LF_S("request_id", http_req_id(r)),
			  LF_S("error", err));
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL,
				 "cannot verify the API key: database unavailable");
		free(kl);
		return;
	}
	struct keyslot *s = keycache_slot(l->keys, kl->hash);
	memcpy(s->hash, kl->hash, 32);
	s->used = true;
	s->valid = PQntuples(res) == 1;
	s->expires_us = clock_mono_us() + (uint64_t)l->app->cfg.key_cache_seconds * 1000000u;
	if (s->valid)
		snprintf(s->key_id, sizeof(s->key_id), "%s", PQgetvalue(res, 0, 0));
	free(kl);
	if (!s->valid)
		unauthorized(r, "unknown or revoked API key");
	else
		admit(l, r, s->key_id);
}

void auth_hook(struct http_req *r, void *arg)
{
	struct loop *l = arg;
	struct app *a = l->app;
	const char *h = http_req_header(r, "Authorization");
	unsigned char hash[32];

	if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
		unauthorized(
			r, "missing or malformed Authorization header: expected \"Bearer <key>\"");
		return;
	}
	const char *key = h + 7;
	while (*key == ' ')
		key++;
	size_t len = strlen(key);
	if (len == 0 || len > MAX_KEY_LEN) {
		unauthorized(
			r, "missing or malformed Authorization header: expected \"Bearer <key>\"");
		return;
	}
	if (!EVP_Digest(key, len, hash, NULL, EVP_sha256(), NULL)) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "cannot hash the API key");
		return;
	}
	/* Static keys: compare digests in constant time, and every one of them,
	 * so timing tells nothing about which key or how much of it matched. */
	size_t match = a->n_static;
	for (size_t i = 0; i < a->n_static; i++)
		if (CRYPTO_memcmp(hash, a->static_hashes[i], 32) == 0)
			match = i;
	if (match < a->n_static) {
		char hex[65], id[48];
		hex32(hash, hex);
		snprintf(id, sizeof(id), "key_static_%.12s", hex);
		admit(l, r, id);
		return;
	}
	struct keyslot *s = keycache_slot(l->keys, hash);
	if (s->used && CRYPTO_memcmp(s->hash, hash, 32) == 0 && s->expires_us > clock_mono_us()) {
		if (s->valid)
			admit(l, r, s->key_id);
		else
			unauthorized(r, "unknown or revoked API key");
		return;
	}
	struct key_lookup *kl = calloc(1, sizeof(*kl));
	char hex[65];
	hex32(hash, hex);
	const char *params[] = {hex};
	if (!kl) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
		return;
	}
	kl->l = l;
	kl->r = r;
	memcpy(kl->hash, hash, 32);
	if (pg_exec(l->pg, l->stmts[STMT_KEY_LOOKUP], params, key_lookup_done, kl) != 0) {
		free(kl);
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL,
				 "cannot verify the API key: database unavailable");
	}
}
