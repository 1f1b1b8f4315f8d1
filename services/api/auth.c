/* auth.c - Bearer API keys (static from API_KEYS, hashed in the DB) and the
 * per-key rate limit: the bucket in Redis, leased to each loop, with the
 * process-local bucket of ratelimit.c when Redis cannot answer. */
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
#include "common/pgrow.h"
#include "common/redis.h"
#include "ratelimit.h"

#define MAX_KEY_LEN    256
#define KEYCACHE_SLOTS 1024
#define MICRO	       1000000LL

static unsigned str_hash(const char *s)
{
	unsigned h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* ------------------------------------------------------------------------ */
/* Shared limit: the bucket in Redis, leased to each loop in small batches.  */
/* ------------------------------------------------------------------------ */

/* KEYS[1] = <prefix>:ratelimit:<key_id>, a hash {t: millionths of a token,
 * ts: Redis TIME in microseconds of the last refill}. ARGV = rps, burst,
 * want. Refills, grants min(want, whole tokens), and returns {granted,
 * microseconds until the next token is due (0 when all were granted)}. The
 * key expires once it would be full again anyway. Numbers are formatted
 * with %.0f: Lua's default %.14g would round a microsecond timestamp. */
static const char rl_lua[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	"local rps, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
	"local cap = burst * 1000000\n"
	"local v = redis.call('HMGET', KEYS[1], 't', 'ts')\n"
	"local tok, ts = tonumber(v[1]), tonumber(v[2])\n"
	"if not tok or not ts then tok = cap; ts = now end\n"
	"if now > ts then tok = math.min(cap, tok + (now - ts) * rps); ts = now end\n"
	"local grant = math.min(want, math.floor(tok / 1000000))\n"
	"tok = tok - grant * 1000000\n"
	"redis.call('HSET', KEYS[1], 't', string.format('%.0f', tok), 'ts', string.format('%.0f', "
	"ts))\n"
	"redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rps) + 1000)\n"
	"local wait = 0\n"
	"if grant < want then wait = math.ceil((1000000 - tok) / rps) end\n"
	"return {grant, wait}\n";

/* SHA-1 of rl_lua, for EVALSHA; set once by auth_init. */
static char rl_sha[41];

#define LEASE_SLOTS   256
#define LEASE_LIFE_US 1000000u /* leased tokens unspent this long are dropped */

struct waiter {
	struct http_req *r;
	struct waiter *next;
};

/* One key's lease on one loop: tokens taken from the Redis bucket and not
 * yet spent, and the requests waiting for the next lease. Loop-private, so
 * the hot path takes no lock and makes no round trip while tokens last. */
struct lease {
	struct lease *next;
	struct loop *l;
	struct principal *who; /* the key's (its local fallback bucket's) */
	int64_t tokens;
	uint64_t expires_us;	  /* tokens are dropped after this */
	uint64_t denied_until_us; /* Redis said empty: 429 locally until then */
	bool asking;		  /* EVALSHA (or EVAL) in flight */
	bool eval;		  /* the script was unknown: send it whole */
	struct waiter *head, *tail;
	size_t nwait;
	char key[160]; /* <prefix>:ratelimit:<key_id> */
};

struct leases {
	struct lease *slots[LEASE_SLOTS];
};

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
	struct leases leases; /* this loop's leases of the shared rate limit */
};

static struct keycache *keycache_new(void)
{
	return calloc(1, sizeof(struct keycache));
}

/* After the loop's Redis client is freed: every lease's question has been
 * answered (failed), so no request still waits on one. */
void keycache_free(struct keycache *k)
{
	if (!k)
		return;
	for (int i = 0; i < LEASE_SLOTS; i++) {
		struct lease *e = k->leases.slots[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
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

static struct metric *m_auth_fail, *m_ratelimited, *m_leases, *m_local;

int auth_init(struct app *a)
{
	a->ratelimit = ratelimit_new(a->cfg.rate_rps, a->cfg.rate_burst);
	if (!a->ratelimit)
		return -1;
	unsigned char sha[20];
	if (!EVP_Digest(rl_lua, strlen(rl_lua), sha, NULL, EVP_sha1(), NULL))
		return -1;
	for (int i = 0; i < 20; i++)
		snprintf(rl_sha + 2 * i, 3, "%02x", sha[i]);
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
	m_leases = metrics_counter("rampart_rate_limit_leases_total",
				   "Token leases asked of the shared (Redis) rate limit", "");
	m_local = metrics_counter("rampart_rate_limit_local_total",
				  "Requests limited by the process-local bucket because Redis "
				  "could not answer",
				  "");
	return 0;
}

void auth_free(struct app *a)
{
	ratelimit_free(a->ratelimit);
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

static void too_many(struct loop *l, struct http_req *r, int retry_after)
{
	char secs[16];
	snprintf(secs, sizeof(secs), "%d", retry_after);
	metric_inc(m_ratelimited);
	http_req_add_header(r, "Retry-After", secs);
	http_reply_error(r, 429, "RATE_LIMITED", NULL,
			 "rate limit of %lld requests/s (burst %lld) exceeded; retry in %d s",
			 l->app->cfg.rate_rps, l->app->cfg.rate_burst, retry_after);
}

/* Applies the process-local bucket, then runs the handler. */
static void admit_local(struct loop *l, struct http_req *r, const char *key_id)
{
	int retry_after;
	struct principal *who = ratelimit_take(l->app->ratelimit, key_id, &retry_after);
	if (!who) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
		return;
	}
	if (retry_after > 0) {
		too_many(l, r, retry_after);
		return;
	}
	http_req_set_user(r, who);
	http_req_proceed(r);
}

static struct lease *lease_find(struct loop *l, const char *key_id)
{
	struct leases *t = &l->keys->leases;
	unsigned slot = str_hash(key_id) % LEASE_SLOTS;
	struct lease *e;
	for (e = t->slots[slot]; e; e = e->next)
		if (strcmp(e->who->key_id, key_id) == 0)
			return e;
	struct principal *who = ratelimit_principal(l->app->ratelimit, key_id);
	if (!who || !(e = calloc(1, sizeof(*e))))
		return NULL;
	e->l = l;
	e->who = who;
	rk_ratelimit_key(e->key, sizeof(e->key), l->app->cfg.base.redis_prefix, key_id);
	e->next = t->slots[slot];
	t->slots[slot] = e;
	return e;
}

static void lease_ask(struct lease *e);

/* At most one warning per 10 s per process. */
static void fallback_log(const char *err)
{
	static _Atomic uint64_t last_log_us;
	uint64_t now = clock_mono_us(), last = last_log_us;
	if ((last == 0 || now - last > 10 * MICRO) &&
	    atomic_compare_exchange_strong(&last_log_us, &last, now))
		log_event(LOG_WARN, "rate limit: Redis cannot answer; using the local bucket",
			  LF_S("error", err));
}

/* Hands waiting requests the tokens held: run them while tokens last; the
 * rest get 429 (retry_after > 0), the local bucket (retry_after == 0: Redis
 * could not answer) or keep waiting (retry_after < 0). */
static void lease_settle(struct lease *e, int retry_after)
{
	struct waiter *w;
	while ((w = e->head)) {
		if (e->tokens <= 0 && retry_after < 0)
			return;
		e->head = w->next;
		e->nwait--;
		struct http_req *r = w->r;
		free(w);
		if (e->tokens > 0) {
			e->tokens--;
			http_req_set_user(r, e->who);
			http_req_proceed(r);
		} else if (retry_after > 0) {
			too_many(e->l, r, retry_after);
		} else {
			metric_inc(m_local);
			admit_local(e->l, r, e->who->key_id);
		}
	}
	e->tail = NULL;
}

static void lease_cb(void *arg, redisReply *reply, const char *err)
{
	struct lease *e = arg;
	e->asking = false;
	if (err && reply && strncmp(err, "NOSCRIPT", 8) == 0 && !e->eval) {
		e->eval = true; /* Redis restarted or flushed: EVAL loads it again */
		lease_ask(e);
		if (e->asking)
			return;
	}
	if (err || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_INTEGER ||
	    reply->element[1]->type != REDIS_REPLY_INTEGER) {
		fallback_log(err ? err : "unexpected reply");
		lease_settle(e, 0);
		return;
	}
	e->eval = false;
	uint64_t now = clock_mono_us();
	e->tokens = reply->element[0]->integer;
	e->expires_us = now + LEASE_LIFE_US;
	long long wait_us = reply->element[1]->integer;
	if (wait_us > 0) { /* the bucket is empty: the rest wait for nothing */
		e->denied_until_us = now + (uint64_t)wait_us;
		lease_settle(e, (int)((wait_us + MICRO - 1) / MICRO));
		return;
	}
	/* All granted; requests that arrived meanwhile ask again. */
	lease_settle(e, -1);
	if (e->head) {
		lease_ask(e);
		if (!e->asking) {
			fallback_log("not connected");
			lease_settle(e, 0);
		}
	}
}

/* Asks Redis for a lease of RATE_LIMIT_LEASE tokens (or as many as wait,
 * if more: each waits for a token anyway). Not asking (Redis down) settles
 * the waiters on the local bucket. */
static void lease_ask(struct lease *e)
{
	struct app *a = e->l->app;
	char rps[24], burst[24], want[24];
	long long n = a->cfg.rate_lease;
	if ((long long)e->nwait > n)
		n = (long long)e->nwait;
	snprintf(rps, sizeof(rps), "%lld", a->cfg.rate_rps);
	snprintf(burst, sizeof(burst), "%lld", a->cfg.rate_burst);
	snprintf(want, sizeof(want), "%lld", n);
	const char *argv[] = {e->eval ? "EVAL" : "EVALSHA",
			      e->eval ? rl_lua : rl_sha,
			      "1",
			      e->key,
			      rps,
			      burst,
			      want};
	if (rds_command_argv(e->l->redis, lease_cb, e, 7, argv, NULL, 0) == 0) {
		e->asking = true;
		metric_inc(m_leases);
	}
}

/* Authenticated as key_id: apply its rate limit, then run the handler. */
static void admit(struct loop *l, struct http_req *r, const char *key_id)
{
	if (!l->app->cfg.rate_shared) {
		admit_local(l, r, key_id);
		return;
	}
	struct lease *e = lease_find(l, key_id);
	if (!e) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
		return;
	}
	uint64_t now = clock_mono_us();
	if (e->tokens > 0 && now >= e->expires_us)
		e->tokens = 0;
	if (e->tokens > 0 && !e->head) {
		e->tokens--;
		http_req_set_user(r, e->who);
		http_req_proceed(r);
		return;
	}
	if (!e->asking && now < e->denied_until_us) {
		uint64_t left = e->denied_until_us - now;
		too_many(l, r, (int)((left + MICRO - 1) / MICRO));
		return;
	}
	struct waiter *w = malloc(sizeof(*w));
	if (!w) {
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "out of memory");
		return;
	}
	w->r = r;
	w->next = NULL;
	if (e->tail)
		e->tail->next = w;
	else
		e->head = w;
	e->tail = w;
	e->nwait++;
	if (e->asking)
		return; /* the answer in flight settles it */
	lease_ask(e);
	if (!e->asking) { /* Redis down: the local bucket */
		fallback_log("not connected");
		lease_settle(e, 0);
	}
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
	static const char *const cols[] = {"id"};
	struct pgrow c;
	if (pgrow_map(&c, res, cols, 1) != 0) {
		log_event(LOG_ERROR, "api key lookup: unexpected result",
			  LF_S("request_id", http_req_id(r)), LF_S("error", c.err));
		http_reply_error(r, 503, "SERVICE_UNAVAILABLE", NULL, "cannot verify the API key");
		free(kl);
		return;
	}
	struct keyslot *s = keycache_slot(l->keys, kl->hash);
	memcpy(s->hash, kl->hash, 32);
	s->used = true;
	s->valid = pgrow_count(&c) == 1;
	s->expires_us = clock_mono_us() + (uint64_t)l->app->cfg.key_cache_seconds * 1000000u;
	if (s->valid)
		snprintf(s->key_id, sizeof(s->key_id), "%s", pgrow_text(&c, 0, 0));
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
