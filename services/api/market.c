/* market.c - market data for quotes: the feeengine's Redis snapshot
 * (<prefix>:market:snapshot, docs/fees.md), re-read once a second by loop 0:
 * FX rates (fx.<CUR> = units per 1 USD) to price quotes, and the gas prices,
 * token prices, chain availability and Circle status the router picks a
 * quote's chain with; money.h's and chain_route.h's defaults for anything missing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "common/evloop.h"
#include "common/log.h"
#include "common/rdsreply.h"
#include "common/redis.h"
#include "common/snapshot.h"

int market_init(struct market *m)
{
	memset(m, 0, sizeof(*m));
	route_market_defaults(&m->route);
	/* Only the chain choice uses it: the bps do not change it. */
	route_config_init(&m->route_cfg, 0, 0, 0);
	money_currencies(&m->n);
	m->per_usd = calloc(m->n, sizeof(*m->per_usd));
	if (!m->per_usd)
		return -1;
	pthread_mutex_init(&m->mu, NULL);
	return 0;
}

void market_free(struct market *m)
{
	if (!m->per_usd)
		return;
	pthread_mutex_destroy(&m->mu);
	free(m->per_usd);
	m->per_usd = NULL;
}

int64_t market_per_usd(struct market *m, const struct currency *c, enum snap_state *state)
{
	size_t n;
	const struct currency *all = money_currencies(&n);
	size_t idx = (size_t)(c - all);
	int64_t v = 0;

	pthread_mutex_lock(&m->mu);
	if (idx < m->n)
		v = m->per_usd[idx];
	if (v > 0)
		*state = m->state;
	pthread_mutex_unlock(&m->mu);
	if (v > 0)
		return v;
	*state = SNAP_DEFAULT;
	return c->per_usd;
}

const char *market_chain(struct market *m, int64_t amount, const struct currency *from,
			 const struct currency *to, int64_t from_per_usd, bool express, char *why,
			 size_t whylen)
{
	struct route_result res;
	struct route_request req = {.amount = amount,
				    .from = from,
				    .to = to,
				    .from_per_usd = from_per_usd,
				    .priority = express ? PRIORITY_EXPRESS : PRIORITY_STANDARD,
				    .tier = TIER_STANDARD};
	pthread_mutex_lock(&m->mu);
	int rc = route_decide(&m->route_cfg, &m->route, &req, &res);
	pthread_mutex_unlock(&m->mu);
	if (rc != 0) {
		snprintf(why, whylen, "the amount is too large to route");
		return NULL;
	}
	if (res.chosen < 0) {
		snprintf(why, whylen, "%s", res.reasoning);
		return NULL;
	}
	return route_chain_name((enum route_chain)res.chosen);
}

/* The snapshot's FX source as the api reports it: "live" when absent or
 * unknown, and "cached" once no fee engine has rewritten the snapshot for
 * MARKET_CACHE_TTL_SECONDS (it does every MARKET_REFRESH_SECONDS): its
 * rates are kept, but they are nobody's live view any more. */
static enum snap_state fx_state(const struct snapshot *s, int64_t now_s, int64_t ttl_s)
{
	const struct snap_meta *fx = &s->src[SNAP_FX];
	enum snap_state st = fx->has_state ? fx->state : SNAP_LIVE;
	if (s->as_of > 0 && st == SNAP_LIVE && now_s - s->as_of > ttl_s)
		st = SNAP_CACHED;
	return st;
}

/* HGETALL <prefix>:market:snapshot -> replaces the shared table. Invalid
 * values are ignored field by field (the default stays for that currency). */
static void snapshot_done(void *arg, redisReply *reply, const char *err)
{
	struct loop *l = arg;
	struct market *m = &l->app->market;
	size_t n;
	const struct currency *all = money_currencies(&n);
	static bool warned_bad;
	static struct snapshot s; /* loop 0 only; 2 KiB off the stack */
	const char *keys[SNAP_MAX_FIELDS], *vals[SNAP_MAX_FIELDS];

	if (err || !reply || reply->type != REDIS_REPLY_ARRAY)
		return; /* Redis down: keep the last rates we had */
	snapshot_init(&s);
	size_t nf = rr_pairs(reply, keys, vals, SNAP_MAX_FIELDS);
	for (size_t i = 0; i < nf; i++)
		if (snapshot_decode_field(&s, keys[i], vals[i]) == SNAP_FIELD_INVALID &&
		    !warned_bad) {
			log_event(LOG_WARN, "ignoring invalid snapshot rate",
				  LF_S("field", keys[i]), LF_S("value", vals[i]));
			warned_bad = true;
		}
	/* USD is the snapshot's reference: 1 by definition, even when unlisted. */
	const struct currency *usd = money_currency("USD");
	if (reply->elements > 0 && s.fx_per_usd[usd - all] == 0)
		s.fx_per_usd[usd - all] = MONEY_RATE_SCALE;
	enum snap_state st = fx_state(&s, clock_wall_ms() / 1000, l->app->cfg.market_ttl_s);
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->n; i++)
		m->per_usd[i] = i < SNAP_MAX_CURRENCIES ? s.fx_per_usd[i] : 0;
	m->state = st;
	m->as_of = s.src[SNAP_FX].as_of;
	m->have_snapshot = reply->elements > 0;
	m->route = s.route;
	pthread_mutex_unlock(&m->mu);
}

static void market_tick(void *arg)
{
	struct loop *l = arg;
	if (rds_connected(l->redis) &&
	    rds_command(l->redis, snapshot_done, l, "HGETALL %s", l->app->snapshot_key) != 0)
		log_debug("market snapshot read not sent");
}

void market_start(struct loop *l)
{
	l->market = timer_new(l->base, market_tick, l);
	if (!l->market)
		return;
	timer_every(l->market, 1000);
	timer_fire(l->market); /* read once right away */
}
