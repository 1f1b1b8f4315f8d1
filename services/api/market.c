/* market.c - market data for quotes: the feeengine's Redis snapshot
 * (<prefix>:market:snapshot, docs/fees.md), re-read once a second by loop 0:
 * FX rates (fx.<CUR> = units per 1 USD) to price quotes, and the gas prices,
 * token prices, chain availability and Circle status the router picks a
 * quote's chain with; money.h's and route.h's defaults for anything missing. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "common/log.h"
#include "common/redis.h"

const char *const market_sources[N_MARKET_SOURCES] = {"fx",	    "prices",	    "gas.ethereum",
						      "gas.base",   "gas.polygon",  "gas.arbitrum",
						      "gas.solana", "status.circle"};

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

int64_t market_per_usd(struct market *m, const struct currency *c, const char **source)
{
	size_t n;
	const struct currency *all = money_currencies(&n);
	size_t idx = (size_t)(c - all);
	int64_t v = 0;

	pthread_mutex_lock(&m->mu);
	if (idx < m->n)
		v = m->per_usd[idx];
	/* The source strings are literals picked in snapshot_done's caller. */
	if (v > 0)
		*source = strcmp(m->source, "cached") == 0    ? "cached"
			  : strcmp(m->source, "default") == 0 ? "default"
							      : "live";
	pthread_mutex_unlock(&m->mu);
	if (v > 0)
		return v;
	*source = "default";
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

/* One of the router's fields (price.*, gas.<chain>.*, status.circle) into
 * r; anything unreadable leaves the default. */
static void route_field(struct route_market *r, const char *k, const char *v)
{
	static const struct {
		const char *field;
		enum route_chain chains[3];
		int n;
	} prices[] = {{"price.ETH", {CHAIN_ETHEREUM, CHAIN_BASE, CHAIN_ARBITRUM}, 3},
		      {"price.POL", {CHAIN_POLYGON}, 1},
		      {"price.SOL", {CHAIN_SOLANA}, 1}};
	int64_t x;
	enum route_chain c;
	enum route_status st;

	for (size_t i = 0; i < sizeof(prices) / sizeof(prices[0]); i++)
		if (strcmp(k, prices[i].field) == 0) {
			if (money_fixed_parse(v, 6, &x) && x > 0)
				for (int j = 0; j < prices[i].n; j++)
					r->chain[prices[i].chains[j]].native_usd_micros = x;
			return;
		}
	if (strcmp(k, "status.circle") == 0) {
		if (route_status_parse(v, &st) == 0)
			r->provider = st;
		return;
	}
	if (strncmp(k, "gas.", 4) != 0)
		return;
	char name[16];
	const char *dot = strchr(k + 4, '.');
	if (!dot || (size_t)(dot - (k + 4)) >= sizeof(name))
		return;
	memcpy(name, k + 4, (size_t)(dot - (k + 4)));
	name[dot - (k + 4)] = '\0';
	if (route_chain_parse(name, &c) != 0)
		return;
	int scale = c == CHAIN_SOLANA ? 0 : 9; /* micro-lamports, or gwei -> wei */
	if (strcmp(dot, ".standard") == 0 && money_fixed_parse(v, scale, &x))
		r->chain[c].gas_standard = x;
	else if (strcmp(dot, ".fast") == 0 && money_fixed_parse(v, scale, &x))
		r->chain[c].gas_fast = x;
	else if (strcmp(dot, ".available") == 0) {
		r->chain[c].unavailable = strcmp(v, "yes") != 0;
		snprintf(r->chain[c].why, sizeof(r->chain[c].why), "%s", v);
	}
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

	if (err || !reply || reply->type != REDIS_REPLY_ARRAY)
		return; /* Redis down: keep the last rates we had */
	int64_t *fresh = calloc(m->n, sizeof(*fresh));
	if (!fresh)
		return;
	char source[16] = "";
	int64_t as_of = 0, written = 0;
	struct route_market route;
	route_market_defaults(&route);
	for (size_t i = 0; i + 1 < reply->elements; i += 2) {
		const redisReply *k = reply->element[i], *v = reply->element[i + 1];
		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		if (strcmp(k->str, "snapshot.as_of") == 0) {
			written = strtoll(v->str, NULL, 10);
			continue;
		}
		if (strncmp(k->str, "fx.", 3) != 0) {
			route_field(&route, k->str, v->str);
			continue;
		}
		const char *field = k->str + 3;
		if (strcmp(field, "source") == 0) {
			snprintf(source, sizeof(source), "%s", v->str);
			continue;
		}
		if (strcmp(field, "as_of") == 0) {
			as_of = strtoll(v->str, NULL, 10);
			continue;
		}
		const struct currency *c = money_currency(field);
		int64_t rate;
		if (!c)
			continue;
		if (money_rate_parse(v->str, &rate) != MONEY_OK) {
			if (!warned_bad)
				log_event(LOG_WARN, "ignoring invalid snapshot rate",
					  LF_S("field", k->str), LF_S("value", v->str));
			warned_bad = true;
			continue;
		}
		fresh[c - all] = rate;
	}
	/* USD is the snapshot's reference: 1 by definition, even when unlisted. */
	const struct currency *usd = money_currency("USD");
	if (reply->elements > 0 && fresh[usd - all] == 0)
		fresh[usd - all] = MONEY_RATE_SCALE;
	if (strcmp(source, "live") != 0 && strcmp(source, "cached") != 0 &&
	    strcmp(source, "default") != 0)
		snprintf(source, sizeof(source), "live"); /* absent or unknown */
	/* A snapshot no fee engine has rewritten for MARKET_CACHE_TTL_SECONDS
	 * (it does every MARKET_REFRESH_SECONDS): its rates are kept, but they
	 * are nobody's live view any more. */
	if (written > 0 && strcmp(source, "live") == 0 &&
	    clock_wall_ms() / 1000 - written > l->app->cfg.market_ttl_s)
		snprintf(source, sizeof(source), "cached");
	pthread_mutex_lock(&m->mu);
	memcpy(m->per_usd, fresh, m->n * sizeof(*fresh));
	snprintf(m->source, sizeof(m->source), "%s", source);
	m->as_of = as_of;
	m->have_snapshot = reply->elements > 0;
	m->route = route;
	pthread_mutex_unlock(&m->mu);
	free(fresh);
}

static void market_tick(evutil_socket_t fd, short what, void *arg)
{
	struct loop *l = arg;
	(void)fd;
	(void)what;
	if (rds_connected(l->redis) &&
	    rds_command(l->redis, snapshot_done, l, "HGETALL %s", l->app->snapshot_key) != 0)
		log_debug("market snapshot read not sent");
}

void market_start(struct loop *l)
{
	struct timeval tv = {1, 0};
	l->market_ev = event_new(l->base, -1, EV_PERSIST, market_tick, l);
	if (!l->market_ev)
		return;
	event_add(l->market_ev, &tv);
	event_active(l->market_ev, EV_TIMEOUT, 0); /* read once right away */
}
