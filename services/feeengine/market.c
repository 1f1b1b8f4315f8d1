/* market.c - the market-data refresher (SPEC 6). Every MARKET_REFRESH_SECONDS
 * all sources are fetched at once through libcurl multi on the loop, each with
 * MARKET_FETCH_TIMEOUT_MS (FX, which changes daily, at most every
 * MARKET_FX_REFRESH_SECONDS after a good answer). A good answer makes the source "live"; a failed
 * or rejected one keeps the last good value ("cached") until MARKET_CACHE_TTL_SECONDS after it was
 * fetched, then the built-in default
 * ("default"). When every fetch of a round has finished, the view the fee
 * decisions use is rebuilt and the snapshot hash <prefix>:market:snapshot is
 * written (fields in docs/fees.md). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/evloop.h"
#include "common/httpc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/money.h"
#include "common/redis.h"
#include "feeengine.h"

#define GWEI ((int64_t)1000000000)

/* The gas source of each chain. */
#define chain_gas(c) ((enum src_id)snap_gas_source((enum route_chain)(c)))

/* Congestion ceilings on the standard gas price: above it a chain is not
 * routed through (wei per gas; Solana: micro-lamports per compute unit). */
static const int64_t chain_ceiling[CHAIN_COUNT] = {
	[CHAIN_ETHEREUM] = 300 * GWEI,	    [CHAIN_BASE] = 20 * GWEI,
	[CHAIN_POLYGON] = 3000 * GWEI,	    [CHAIN_ARBITRUM] = 20 * GWEI,
	[CHAIN_SOLANA] = (int64_t)10000000,
};

const char *src_state_name(enum src_state s)
{
	return snap_state_name((enum snap_state)s);
}

/* Built-in defaults: what the fee engine assumes with no data at all (the
 * router's own defaults, so the api's quotes assume the same). */
static void set_defaults(struct source *s)
{
	size_t n;
	const struct currency *all = money_currencies(&n);
	struct route_market rm;

	route_market_defaults(&rm);
	memset(&s->def, 0, sizeof(s->def));
	switch (s->id) {
	case SRC_FX:
		for (size_t i = 0; i < n && i < 32; i++)
			s->def.fx.per_usd[i] = all[i].per_usd;
		break;
	case SRC_PRICES:
		s->def.prices.eth_usd_micros = rm.chain[CHAIN_ETHEREUM].native_usd_micros;
		s->def.prices.sol_usd_micros = rm.chain[CHAIN_SOLANA].native_usd_micros;
		s->def.prices.pol_usd_micros = rm.chain[CHAIN_POLYGON].native_usd_micros;
		s->def.prices.usdc_usd_micros = 1000000; /* $1 */
		break;
	case SRC_CIRCLE:
		s->def.status.indicator = STATUS_NONE;
		snprintf(s->def.status.description, sizeof(s->def.status.description),
			 "no status data: assumed operational");
		break;
	case SRC_COUNT:
		break;
	default: /* a chain's gas */
		for (int c = 0; c < CHAIN_COUNT; c++)
			if (chain_gas(c) == s->id)
				s->def.gas = (struct src_gas){rm.chain[c].gas_standard,
							      rm.chain[c].gas_fast};
		break;
	}
}

/* The reading in force: the last good one unless the source is on defaults. */
static const void *in_force(const struct source *s)
{
	return s->state == STATE_DEFAULT ? (const void *)&s->def : (const void *)&s->good;
}

/* ---- the view the decisions use ------------------------------------------- */

static void build_view(struct feeengine *fe, int64_t now)
{
	static struct market_view before;
	struct market_view *v = &fe->view;
	before = *v;
	size_t n;
	const struct currency *all = money_currencies(&n);

	v->as_of = now;
	for (int i = 0; i < SRC_COUNT; i++)
		v->state[i] = fe->src[i].state;

	const struct src_fx *fx = in_force(&fe->src[SRC_FX]);
	for (size_t i = 0; i < n && i < 32; i++)
		v->fx_per_usd[i] = fx->per_usd[i] > 0 ? fx->per_usd[i] : all[i].per_usd;

	const struct src_prices *p = in_force(&fe->src[SRC_PRICES]);
	const struct src_prices *pd = &fe->src[SRC_PRICES].def.prices;
	int64_t eth = p->eth_usd_micros > 0 ? p->eth_usd_micros : pd->eth_usd_micros;
	int64_t sol = p->sol_usd_micros > 0 ? p->sol_usd_micros : pd->sol_usd_micros;
	int64_t pol = p->pol_usd_micros > 0 ? p->pol_usd_micros : pd->pol_usd_micros;

	for (int c = 0; c < CHAIN_COUNT; c++) {
		struct route_chain_market *cm = &v->route.chain[c];
		const struct src_gas *g = in_force(&fe->src[chain_gas(c)]);
		memset(cm, 0, sizeof(*cm));
		cm->gas_standard = g->standard;
		cm->gas_fast = g->fast >= g->standard ? g->fast : g->standard;
		cm->native_usd_micros = c == CHAIN_POLYGON ? pol : c == CHAIN_SOLANA ? sol : eth;
		if (g->standard > chain_ceiling[c]) {
			cm->unavailable = true;
			if (c == CHAIN_SOLANA)
				snprintf(cm->why, sizeof(cm->why),
					 "solana congested: priority fee %" PRId64
					 " micro-lamports/CU above its ceiling",
					 g->standard);
			else
				snprintf(cm->why, sizeof(cm->why),
					 "%s congested: gas %" PRId64
					 " gwei above its ceiling of %" PRId64 " gwei",
					 route_chain_name((enum route_chain)c), g->standard / GWEI,
					 chain_ceiling[c] / GWEI);
		}
	}
	const struct src_status *st = in_force(&fe->src[SRC_CIRCLE]);
	v->route.provider = (enum route_status)st->indicator;
	v->route.provider_name = "circle";
	snprintf(v->circle_description, sizeof(v->circle_description), "%s", st->description);
	/* Decisions (and cached AI answers) are keyed by this version. */
	if (memcmp(before.fx_per_usd, v->fx_per_usd, sizeof(v->fx_per_usd)) != 0 ||
	    memcmp(&before.route, &v->route, sizeof(v->route)) != 0 ||
	    memcmp(before.state, v->state, sizeof(v->state)) != 0)
		v->version++;
}

/* ---- the snapshot hash --------------------------------------------------- */

/* The snapshot of the view in force (pure): the rates of the currencies
 * the FX source lists, every source's state and age, the router's market. */
static void snapshot_of(const struct feeengine *fe, struct snapshot *s)
{
	const struct market_view *v = &fe->view;
	const struct src_fx *fx = in_force(&fe->src[SRC_FX]);
	const struct src_prices *p = in_force(&fe->src[SRC_PRICES]);
	size_t n;
	money_currencies(&n);

	snapshot_init(s);
	s->as_of = v->as_of;
	for (size_t i = 0; i < n && i < SNAP_MAX_CURRENCIES; i++)
		s->fx_per_usd[i] = fx->per_usd[i] > 0 ? v->fx_per_usd[i] : 0;
	for (int i = 0; i < SRC_COUNT; i++) {
		s->src[i].as_of = fe->src[i].good_at;
		s->src[i].state = (enum snap_state)fe->src[i].state;
	}
	s->route = v->route;
	s->usdc_usd_micros = p->usdc_usd_micros > 0
				     ? p->usdc_usd_micros
				     : fe->src[SRC_PRICES].def.prices.usdc_usd_micros;
	snprintf(s->circle_description, sizeof(s->circle_description), "%s", v->circle_description);
}

static void snapshot_retry(struct feeengine *fe)
{
	if (!fe->draining)
		timer_once(fe->write_retry, 500);
}

static void snapshot_done(void *arg, redisReply *reply, const char *err)
{
	struct feeengine *fe = arg;
	(void)reply;
	if (fe->closing)
		return;
	if (err) {
		log_event(LOG_WARN, "market snapshot not written: retrying", LF_S("error", err));
		snapshot_retry(fe);
		return;
	}
	if (!fe->snapshot_written)
		log_event(LOG_INFO, "market snapshot written", LF_S("key", fe->snapshot_key));
	fe->snapshot_written = true;
}

static void hdel_done(void *arg, redisReply *reply, const char *err)
{
	(void)arg;
	(void)reply;
	if (err)
		log_event(LOG_DEBUG, "unlisted FX fields not removed this time",
			  LF_S("error", err));
}

/* HDEL the unlisted currencies' rates, then HSET every field. */
static void snapshot_write(struct feeengine *fe)
{
	struct snap_fields *o = &fe->snap_out;
	const char *hdel[2 + SNAP_MAX_CURRENCIES] = {"HDEL", fe->snapshot_key};
	const char *hset[2 + 2 * SNAP_MAX_FIELDS] = {"HSET", fe->snapshot_key};
	int nhdel = 2, nhset = 2;

	snapshot_of(fe, &fe->snap);
	snapshot_encode(&fe->snap, o);
	for (int i = 0; i < o->nunlisted; i++)
		hdel[nhdel++] = o->unlisted[i];
	for (int i = 0; i < o->n; i++) {
		hset[nhset++] = o->key[i];
		hset[nhset++] = o->val[i];
	}
	if (nhdel > 2 && rds_connected(fe->redis) &&
	    rds_command_argv(fe->redis, hdel_done, fe, nhdel, hdel, NULL, 0) != 0)
		log_event(LOG_DEBUG, "unlisted FX fields not removed this time");
	if (!rds_connected(fe->redis) ||
	    rds_command_argv(fe->redis, snapshot_done, fe, nhset, hset, NULL, 0) != 0) {
		if (fe->snapshot_written)
			log_event(LOG_WARN, "market snapshot not written: retrying",
				  LF_S("error", "redis not connected"));
		snapshot_retry(fe); /* at start-up Redis may simply not be up yet */
	}
}

static void write_tick(void *arg)
{
	snapshot_write(arg);
}

/* ---- fetching -------------------------------------------------------------- */

static void source_metrics(struct source *s)
{
	char labels[64];
	snprintf(labels, sizeof(labels), "source=\"%s\",outcome=\"ok\"", s->name);
	s->m_ok = metrics_counter("rampart_market_fetch_total",
				  "Market-data fetches by source and outcome", labels);
	snprintf(labels, sizeof(labels), "source=\"%s\",outcome=\"rejected\"", s->name);
	s->m_rejected = metrics_counter("rampart_market_fetch_total",
					"Market-data fetches by source and outcome", labels);
	snprintf(labels, sizeof(labels), "source=\"%s\",outcome=\"failed\"", s->name);
	s->m_failed = metrics_counter("rampart_market_fetch_total",
				      "Market-data fetches by source and outcome", labels);
	snprintf(labels, sizeof(labels), "source=\"%s\"", s->name);
	s->m_age = metrics_gauge("rampart_market_source_age_seconds",
				 "Age of the value in force per source (-1: built-in default)",
				 labels);
	s->m_state = metrics_gauge(
		"rampart_market_source_state",
		"Where each source's value comes from: 0 live, 1 cached, 2 default", labels);
}

static int parse_source(struct source *s, const char *body, size_t len, char *err, size_t errlen)
{
	bool have_last = s->state != STATE_DEFAULT;
	struct source tmp = *s;

	switch (s->id) {
	case SRC_FX:
		if (src_parse_fx(body, len, have_last ? &s->good.fx : NULL, &tmp.good.fx, err,
				 errlen))
			return -1;
		break;
	case SRC_PRICES:
		if (src_parse_prices(body, len, have_last ? &s->good.prices : NULL,
				     &tmp.good.prices, err, errlen))
			return -1;
		break;
	case SRC_GAS_ETHEREUM:
		if (src_parse_eth_gas(body, len, have_last ? &s->good.gas : NULL, &tmp.good.gas,
				      err, errlen))
			return -1;
		break;
	case SRC_GAS_BASE:
	case SRC_GAS_POLYGON:
	case SRC_GAS_ARBITRUM:
		if (src_parse_blockscout(body, len, have_last ? &s->good.gas : NULL, &tmp.good.gas,
					 err, errlen))
			return -1;
		break;
	case SRC_GAS_SOLANA:
		if (src_parse_solana(body, len, have_last ? &s->good.gas : NULL, &tmp.good.gas, err,
				     errlen))
			return -1;
		break;
	case SRC_CIRCLE:
		if (src_parse_status(body, len, &tmp.good.status, err, errlen))
			return -1;
		break;
	case SRC_COUNT:
		return -1;
	}
	s->good = tmp.good;
	return 0;
}

/* Failures are logged when a source's error changes, not every refresh; with
 * every source on defaults (no internet, as under make run) one line says so. */
static void log_failures(struct feeengine *fe, int on_default)
{
	if (on_default == SRC_COUNT) {
		if (!fe->said_offline)
			log_event(LOG_INFO,
				  "no market source reachable: fees and quotes use built-in "
				  "defaults (said once; per-source state in the snapshot and "
				  "/metrics)",
				  LF_S("fx_error", fe->src[SRC_FX].last_error));
		fe->said_offline = true;
		for (int i = 0; i < SRC_COUNT; i++)
			snprintf(fe->src[i].logged_error, sizeof(fe->src[i].logged_error), "%s",
				 fe->src[i].last_error);
		return;
	}
	fe->said_offline = false;
	for (int i = 0; i < SRC_COUNT; i++) {
		struct source *s = &fe->src[i];
		if (!s->last_error[0] || strcmp(s->last_error, s->logged_error) == 0)
			continue;
		log_event(LOG_WARN, "market source failed", LF_S("source", s->name),
			  LF_S("error", s->last_error), LF_S("using", src_state_name(s->state)));
		snprintf(s->logged_error, sizeof(s->logged_error), "%s", s->last_error);
	}
}

static void refresh_finish(struct feeengine *fe)
{
	int64_t now = clock_wall_ms() / 1000;
	int on_default = 0;

	for (int i = 0; i < SRC_COUNT; i++) {
		struct source *s = &fe->src[i];
		if (s->state == STATE_CACHED && now - s->good_at > fe->cfg.cache_ttl_s) {
			log_event(LOG_WARN, "market source past its cache TTL: using the default",
				  LF_S("source", s->name), LF_I("age_seconds", now - s->good_at),
				  LF_S("last_error", s->last_error));
			s->state = STATE_DEFAULT;
		}
		on_default += s->state == STATE_DEFAULT;
		metric_set(s->m_state, (int64_t)s->state);
		metric_set(s->m_age, s->state == STATE_DEFAULT ? -1 : now - s->good_at);
	}
	log_failures(fe, on_default);
	build_view(fe, now);
	snapshot_write(fe);
	fe->refreshing = false;
}

static void fetch_done(void *arg, const struct httpc_response *r)
{
	struct source *s = arg;
	struct feeengine *fe = s->fe;
	char err[160] = "";

	s->fetching = false;
	if (fe->closing)
		return;
	if (r->error) {
		snprintf(err, sizeof(err), "%s", r->error);
		metric_inc(s->m_failed);
	} else if (r->status != 200) {
		snprintf(err, sizeof(err), "HTTP %ld", r->status);
		metric_inc(s->m_failed);
	} else if (r->truncated) {
		snprintf(err, sizeof(err), "response larger than the limit");
		metric_inc(s->m_rejected);
	} else if (parse_source(s, r->body, r->body_len, err, sizeof(err)) != 0) {
		metric_inc(s->m_rejected);
	} else {
		if (s->logged_error[0])
			log_event(LOG_INFO, "market source recovered", LF_S("source", s->name));
		s->state = STATE_LIVE;
		s->good_at = clock_wall_ms() / 1000;
		s->last_error[0] = s->logged_error[0] = '\0';
		metric_inc(s->m_ok);
	}
	if (err[0]) {
		if (s->state == STATE_LIVE)
			s->state = STATE_CACHED; /* until MARKET_CACHE_TTL_SECONDS */
		snprintf(s->last_error, sizeof(s->last_error), "%s", err);
	}
	if (--fe->fetches_left == 0)
		refresh_finish(fe);
}

static void refresh_tick(void *arg)
{
	struct feeengine *fe = arg;
	static const char *const get_headers[] = {"Accept: application/json",
						  "User-Agent: rampart-feeengine", NULL};
	static const char *const post_headers[] = {"Accept: application/json",
						   "Content-Type: application/json",
						   "User-Agent: rampart-feeengine", NULL};
	if (fe->refreshing || fe->draining)
		return;
	fe->refreshing = true;
	fe->fetches_left = 1; /* held until every request is started */
	int64_t now = clock_wall_ms() / 1000;
	for (int i = 0; i < SRC_COUNT; i++) {
		struct source *s = &fe->src[i];
		bool post = s->id == SRC_GAS_SOLANA;
		/* ExchangeRate-API updates once a day and asks to be fetched at
		 * most hourly: a good FX reading stays live that long. */
		if (s->id == SRC_FX && s->state == STATE_LIVE &&
		    now - s->good_at < fe->cfg.fx_refresh_s)
			continue;
		struct httpc_request req = {
			.method = post ? "POST" : "GET",
			.url = fe->cfg.src_url[i],
			.headers = post ? post_headers : get_headers,
			.body = post ? SRC_SOLANA_REQUEST : NULL,
			.body_len = post ? strlen(SRC_SOLANA_REQUEST) : 0,
			.timeout_ms = fe->cfg.fetch_timeout_ms,
			.max_response = 256 * 1024,
		};
		fe->fetches_left++;
		if (httpc_send(fe->http, &req, fetch_done, s) != 0) {
			fe->fetches_left--;
			snprintf(s->last_error, sizeof(s->last_error), "request not started");
			metric_inc(s->m_failed);
			if (s->state == STATE_LIVE)
				s->state = STATE_CACHED;
			continue;
		}
		s->fetching = true;
	}
	if (--fe->fetches_left == 0)
		refresh_finish(fe);
}

int feed_init(struct feeengine *fe)
{
	for (int i = 0; i < SRC_COUNT; i++) {
		struct source *s = &fe->src[i];
		s->fe = fe;
		s->id = (enum src_id)i;
		s->name = snap_source_name((enum snap_source)i);
		s->state = STATE_DEFAULT;
		set_defaults(s);
		source_metrics(s);
	}
	build_view(fe, clock_wall_ms() / 1000); /* the defaults, until the first refresh */
	fe->refresh = timer_new(fe->base, refresh_tick, fe);
	fe->write_retry = timer_new(fe->base, write_tick, fe);
	return fe->refresh && fe->write_retry ? 0 : -1;
}

void feed_start(struct feeengine *fe)
{
	timer_every(fe->refresh, fe->cfg.refresh_s * 1000L);
	timer_fire(fe->refresh); /* first refresh right away */
}

void feed_free(struct feeengine *fe)
{
	timer_free(fe->refresh);
	timer_free(fe->write_retry);
	fe->refresh = fe->write_retry = NULL;
}
