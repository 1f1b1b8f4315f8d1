/* chain_route.c - the chain-routing engine (SPEC 6): prices every chain and picks one,
 * deterministically. */
#include "common/chain_route.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Unsigned 128-bit intermediates as in money.c; every operand is checked
 * non-negative before it is widened, and products that could pass 2^128 go
 * through mul_checked. */
typedef unsigned __int128 u128;

/* Exponents we accept from a currency, as money.c: 10^18 x 2^63 x 2^63 is
 * checked, never assumed. */
#define ROUTE_MAX_EXPONENT 18

#define WEI_PER_TOKEN	  UINT64_C(1000000000000000000) /* 10^18 */
#define LAMPORTS_PER_SOL  UINT64_C(1000000000)		/* 10^9 */
#define SOL_BASE_LAMPORTS UINT64_C(5000)
#define SOL_COMPUTE_UNITS UINT64_C(50000)
#define MICRO_LAMPORTS	  UINT64_C(1000000) /* per lamport */
#define MICROS_PER_USD	  UINT64_C(1000000)
#define CENTS_PER_USD	  UINT64_C(100)
#define USD_STRLEN	  48 /* "$9,223,372,036,854,775.80" and then some */
#define BPS_MAX		  10000
#define DEFAULT_PROVIDER  "circle" /* chain_route.h: the ramp provider is Circle */

/* One row per chain: the constants of chain_route.h's cost model. gas_units 0 means
 * Solana's lamport model (base fee + priority fee x compute units). */
struct chain_model {
	const char *name;
	const char *token; /* native token, for "no price for ETH" */
	uint64_t gas_units;
	int settle_standard, settle_express;
	int security_tier;
	int risk_bps;
};

/* clang-format off */
static const struct chain_model models[CHAIN_COUNT] = {
	[CHAIN_ETHEREUM] = {"ethereum", "ETH",  65000, 300,  90, 1, 0},
	[CHAIN_BASE]     = {"base",     "ETH",  65000,  60,  20, 2, 1},
	[CHAIN_POLYGON]  = {"polygon",  "POL",  65000, 300, 120, 3, 2},
	[CHAIN_ARBITRUM] = {"arbitrum", "ETH", 250000,  60,  20, 2, 1},
	[CHAIN_SOLANA]   = {"solana",   "SOL",      0,  20,  10, 3, 2},
};
/* clang-format on */

static const char *const priority_names[] = {"standard", "express"};
static const char *const tier_names[TIER_COUNT] = {"standard", "premium", "enterprise"};
static const char *const status_names[] = {"none", "minor", "major", "critical"};

#define N_PRIORITIES ((int)(sizeof(priority_names) / sizeof(priority_names[0])))
#define N_STATUSES   ((int)(sizeof(status_names) / sizeof(status_names[0])))

/* ---- names ---------------------------------------------------------------- */

/* Out-of-range values get "unknown" so a caller can always print the result. */
const char *route_chain_name(enum route_chain c)
{
	return (int)c >= 0 && c < CHAIN_COUNT ? models[c].name : "unknown";
}

const char *route_priority_name(enum route_priority p)
{
	return (int)p >= 0 && (int)p < N_PRIORITIES ? priority_names[p] : "unknown";
}

const char *route_tier_name(enum route_tier t)
{
	return (int)t >= 0 && t < TIER_COUNT ? tier_names[t] : "unknown";
}

const char *route_status_name(enum route_status s)
{
	return (int)s >= 0 && (int)s < N_STATUSES ? status_names[s] : "unknown";
}

/* Index of s in names[0..n), or -1; NULL never matches. */
static int find_name(const char *s, const char *const *names, int n)
{
	int i;

	if (!s)
		return -1;
	for (i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

int route_chain_parse(const char *s, enum route_chain *out)
{
	int i;

	if (!s || !out)
		return -1;
	for (i = 0; i < CHAIN_COUNT; i++) {
		if (strcmp(models[i].name, s) == 0) {
			*out = (enum route_chain)i;
			return 0;
		}
	}
	return -1;
}

int route_priority_parse(const char *s, enum route_priority *out)
{
	int i = find_name(s, priority_names, N_PRIORITIES);

	if (i < 0 || !out)
		return -1;
	*out = (enum route_priority)i;
	return 0;
}

int route_tier_parse(const char *s, enum route_tier *out)
{
	int i = find_name(s, tier_names, TIER_COUNT);

	if (i < 0 || !out)
		return -1;
	*out = (enum route_tier)i;
	return 0;
}

int route_status_parse(const char *s, enum route_status *out)
{
	int i = find_name(s, status_names, N_STATUSES);

	if (i < 0 || !out)
		return -1;
	*out = (enum route_status)i;
	return 0;
}

/* ---- fixed-point arithmetic --------------------------------------------- */

static u128 pow10_u128(int n)
{
	u128 p = 1;

	while (n-- > 0)
		p *= 10;
	return p;
}

static bool mul_checked(u128 a, u128 b, u128 *out)
{
	return !__builtin_mul_overflow(a, b, out);
}

static u128 div_ceil(u128 n, u128 d)
{
	return n / d + (n % d != 0);
}

static bool fits_int64(u128 v, int64_t *out)
{
	if (v > (u128)INT64_MAX)
		return false;
	*out = (int64_t)v;
	return true;
}

/* floor(amount * 10^(2 - exp) * SCALE / from_per_usd): the USD value in
 * cents. For exp > 2 the power moves to the divisor. amount, rate > 0. */
static int usd_cents(const struct route_request *req, int64_t *out)
{
	int exp = req->from->exponent;
	u128 num = (u128)req->amount * (u128)MONEY_RATE_SCALE; /* < 2^97 */
	u128 den = (u128)req->from_per_usd;

	if (exp <= 2)
		num *= pow10_u128(2 - exp); /* < 2^104 */
	else
		den *= pow10_u128(exp - 2); /* < 2^63 x 10^16 < 2^117 */
	return fits_int64(num / den, out) ? 0 : -1;
}

/* The network fee in micro-USD, rounded up. EVM: gas price (wei) x gas units
 * x token price (micro-USD) / 10^18. Solana: (5,000 + ceil(priority x 50,000
 * / 10^6)) lamports x SOL price / 10^9. gas >= 0, price > 0. -1 when the
 * result does not fit int64 (only absurd market data gets there). */
static int network_fee(const struct chain_model *cm, int64_t gas, int64_t price, int64_t *micros)
{
	u128 units, fee;

	if (cm->gas_units > 0) {
		units = (u128)gas * cm->gas_units; /* wei, < 2^82 */
		if (!mul_checked(units, (u128)price, &fee))
			return -1;
		fee = div_ceil(fee, WEI_PER_TOKEN);
	} else {
		units = SOL_BASE_LAMPORTS +
			div_ceil((u128)gas * SOL_COMPUTE_UNITS, MICRO_LAMPORTS); /* lamports */
		if (!mul_checked(units, (u128)price, &fee))
			return -1;
		fee = div_ceil(fee, LAMPORTS_PER_SOL);
	}
	return fits_int64(fee, micros) ? 0 : -1;
}

/* ceil(micros x from_per_usd x 10^exp / (10^6 x SCALE)): a micro-USD amount in
 * minor units of the source currency, rounded up (the customer covers it). */
static int gas_in_source(int64_t micros, int64_t from_per_usd, int exp, int64_t *out)
{
	u128 num = (u128)micros * (u128)from_per_usd; /* < 2^126 */

	if (!mul_checked(num, pow10_u128(exp), &num))
		return -1;
	num = div_ceil(num, (u128)MICROS_PER_USD * (u128)MONEY_RATE_SCALE);
	return fits_int64(num, out) ? 0 : -1;
}

/* ---- formatting ----------------------------------------------------------- */

static void appendf(char *buf, size_t len, size_t *off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* snprintf appending at *off; output is truncated at len, never overrun. */
static void appendf(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*off = (size_t)n >= len - *off ? len : *off + (size_t)n;
}

/* snprintf for the result's text fields, where truncating a long reason is
 * intended (and gcc's -Wformat-truncation cannot see through vsnprintf). */
static void fmt_trunc(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fmt_trunc(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* v with thousands separators: 1000000 -> "1,000,000". */
static void fmt_grouped(uint64_t v, char *buf, size_t len)
{
	char digits[24], out[32];
	int n, i, j = 0;

	n = snprintf(digits, sizeof(digits), "%" PRIu64, v);
	for (i = 0; i < n; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			out[j++] = ',';
		out[j++] = digits[i];
	}
	out[j] = '\0';
	snprintf(buf, len, "%s", out);
}

/* Cents as "$1,000,000.00". cents >= 0. */
static void fmt_usd_cents(int64_t cents, char *buf, size_t len)
{
	char whole[32];

	fmt_grouped((uint64_t)cents / CENTS_PER_USD, whole, sizeof(whole));
	snprintf(buf, len, "$%s.%02" PRIu64, whole, (uint64_t)cents % CENTS_PER_USD);
}

/* Micro-USD rounded up to a hundredth of a cent: "$0.0011", "$3.4726", and
 * "$1.50" when the last two places are zero. micros >= 0. */
static void fmt_usd_micros(int64_t micros, char *buf, size_t len)
{
	uint64_t h = ((uint64_t)micros + 99) / 100; /* ten-thousandths of a dollar */
	uint64_t frac = h % 10000;
	char whole[32];

	fmt_grouped(h / 10000, whole, sizeof(whole));
	if (frac % 100 == 0)
		snprintf(buf, len, "$%s.%02" PRIu64, whole, frac / 100);
	else
		snprintf(buf, len, "$%s.%04" PRIu64, whole, frac);
}

/* ceil(total x 100 / amount) to 4 decimals: ceil(total x 10^6 / amount) in
 * ten-thousandths of a percent. An invalid pair (amount <= 0, total < 0), or a
 * ratio too long for buf (a total some 10^16 times the amount), gives "" rather
 * than a truncated, wrong number. */
void route_fee_percent(int64_t total, int64_t amount, char *buf, size_t len)
{
	u128 v;
	int n;

	if (!buf || len == 0)
		return;
	buf[0] = '\0';
	if (amount <= 0 || total < 0)
		return;
	v = div_ceil((u128)total * 1000000u, (u128)amount); /* < 2^84 */
	if (v / 10000 > UINT64_MAX)
		return;
	n = snprintf(buf, len, "%" PRIu64 ".%04u", (uint64_t)(v / 10000), (unsigned)(v % 10000));
	if (n < 0 || (size_t)n >= len)
		buf[0] = '\0';
}

/* ---- routing -------------------------------------------------------------- */

static bool bps_ok(int bps)
{
	return bps >= 0 && bps <= BPS_MAX;
}

/* Everything route_decide trusts without checking again. */
static bool args_ok(const struct route_config *cfg, const struct route_market *m,
		    const struct route_request *req, const struct route_result *res)
{
	int t;

	if (!cfg || !m || !req || !res || !req->from)
		return false;
	if (req->amount <= 0 || req->from_per_usd <= 0)
		return false;
	if (req->from->exponent < 0 || req->from->exponent > ROUTE_MAX_EXPONENT)
		return false;
	if ((int)req->priority < 0 || (int)req->priority >= N_PRIORITIES)
		return false;
	if ((int)req->tier < 0 || req->tier >= TIER_COUNT)
		return false;
	if ((int)m->provider < 0 || (int)m->provider >= N_STATUSES)
		return false;
	if (!bps_ok(cfg->platform_bps) || !bps_ok(cfg->onramp_bps) || !bps_ok(cfg->offramp_bps) ||
	    !bps_ok(cfg->provider_minor_bps))
		return false;
	for (t = 0; t < TIER_COUNT; t++)
		if (cfg->tier_discount_bps[t] < 0)
			return false;
	return cfg->mid_usd_cents > 0 && cfg->large_usd_cents >= cfg->mid_usd_cents;
}

/* The gas price the request's priority pays on this chain. */
static int64_t chain_gas(const struct route_chain_market *cm, const struct route_request *req)
{
	return req->priority == PRIORITY_EXPRESS ? cm->gas_fast : cm->gas_standard;
}

/* A chain without a token price or with a negative gas price cannot be priced. */
static bool chain_priced(const struct route_chain_market *cm, const struct route_request *req)
{
	return cm->native_usd_micros > 0 && chain_gas(cm, req) >= 0;
}

/* The per-request facts every candidate shares. */
struct route_ctx {
	const struct route_config *cfg;
	const struct route_market *m;
	const struct route_request *req;
	const char *provider;
	int64_t platform_fee, onramp_fee, offramp_fee;
	int max_tier;	      /* highest security tier allowed for this amount */
	bool outage;	      /* provider major or critical */
	char usd[USD_STRLEN]; /* the amount's USD value, "$50.00" */
	char mid_usd[USD_STRLEN], large_usd[USD_STRLEN];
};

/* Fills cand for chain c: tier, settlement, fees when the chain has prices,
 * and eligibility with its reason. -1 on overflow. */
static int price_chain(const struct route_ctx *x, int c, struct route_candidate *cand)
{
	const struct chain_model *model = &models[c];
	const struct route_chain_market *cm = &x->m->chain[c];
	const struct route_request *req = x->req;
	bool express = req->priority == PRIORITY_EXPRESS;
	bool priced = chain_priced(cm, req);
	int risk_bps = model->risk_bps;
	struct route_fees *f = &cand->fees;

	memset(cand, 0, sizeof(*cand));
	cand->chain = (enum route_chain)c;
	cand->security_tier = model->security_tier;
	cand->settlement_seconds = express ? model->settle_express : model->settle_standard;

	/* Fees stay all zero without a price: a gas_cost of 0 would understate the route. */
	if (priced) {
		if (x->m->provider == STATUS_MINOR)
			risk_bps += x->cfg->provider_minor_bps;
		if (network_fee(model, chain_gas(cm, req), cm->native_usd_micros,
				&cand->network_fee_usd_micros) < 0)
			return -1;
		if (gas_in_source(cand->network_fee_usd_micros, req->from_per_usd,
				  req->from->exponent, &f->gas_cost) < 0)
			return -1;
		if (money_fee(req->amount, risk_bps, &f->risk_premium) != MONEY_OK)
			return -1;
		f->platform_fee = x->platform_fee;
		f->onramp_fee = x->onramp_fee;
		f->offramp_fee = x->offramp_fee;
		if (!money_add(f->platform_fee, f->onramp_fee, &f->total) ||
		    !money_add(f->total, f->offramp_fee, &f->total) ||
		    !money_add(f->total, f->gas_cost, &f->total) ||
		    !money_add(f->total, f->risk_premium, &f->total))
			return -1;
	}

	if (cm->unavailable) {
		/* why is a fixed array filled by someone else: never trust a NUL in it. */
		if (cm->why[0] != '\0')
			fmt_trunc(cand->why, sizeof(cand->why), "%.*s", (int)sizeof(cm->why),
				  cm->why);
		else
			fmt_trunc(cand->why, sizeof(cand->why), "%s unavailable", model->name);
	} else if (!priced) {
		fmt_trunc(cand->why, sizeof(cand->why), "no price for %s", model->token);
	} else if (x->outage) {
		fmt_trunc(cand->why, sizeof(cand->why), "provider %s reports a %s outage",
			  x->provider, route_status_name(x->m->provider));
	} else if (model->security_tier > x->max_tier) {
		if (model->security_tier == 3)
			fmt_trunc(cand->why, sizeof(cand->why),
				  "security tier 3 not allowed for %s and above", x->mid_usd);
		else
			fmt_trunc(cand->why, sizeof(cand->why),
				  "security tier %d not allowed for %s and above while ethereum L1 "
				  "is available",
				  model->security_tier, x->large_usd);
	} else {
		cand->eligible = true;
	}
	return 0;
}

static int64_t route_cost(const struct route_candidate *cand)
{
	/* For a priced candidate both are bounded by its overflow-checked total. */
	return cand->fees.gas_cost + cand->fees.risk_premium;
}

/* True when a is a better choice than b (b may be NULL). Chain order breaks
 * the last tie because callers scan in chain order and keep the first. */
static bool better(const struct route_candidate *a, const struct route_candidate *b, bool express)
{
	int64_t ca, cb;

	if (!b)
		return true;
	ca = route_cost(a);
	cb = route_cost(b);
	if (express) {
		if (a->settlement_seconds != b->settlement_seconds)
			return a->settlement_seconds < b->settlement_seconds;
		return ca < cb;
	}
	if (ca != cb)
		return ca < cb;
	return a->settlement_seconds < b->settlement_seconds;
}

static void add_risk(struct route_result *res, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Appends a risk factor, truncated to fit; silently dropped past ROUTE_MAX_RISKS. */
static void add_risk(struct route_result *res, const char *fmt, ...)
{
	va_list ap;

	if (res->n_risks >= ROUTE_MAX_RISKS)
		return;
	va_start(ap, fmt);
	vsnprintf(res->risks[res->n_risks], sizeof(res->risks[0]), fmt, ap);
	va_end(ap);
	res->n_risks++;
}

/* res->reasoning when no chain is eligible: each chain with its reason. */
static void explain_none(const struct route_ctx *x, struct route_result *res)
{
	size_t off = 0;
	int c;

	if (x->outage) {
		fmt_trunc(res->reasoning, sizeof(res->reasoning),
			  "no route: provider %s reports a %s outage (status indicator %s)",
			  x->provider, route_status_name(x->m->provider),
			  route_status_name(x->m->provider));
		return;
	}
	appendf(res->reasoning, sizeof(res->reasoning), &off,
		"no route: no eligible chain for a %s %s transfer (", x->usd,
		route_priority_name(x->req->priority));
	for (c = 0; c < CHAIN_COUNT; c++)
		appendf(res->reasoning, sizeof(res->reasoning), &off, "%s%s: %s", c ? "; " : "",
			models[c].name, res->cand[c].why);
	appendf(res->reasoning, sizeof(res->reasoning), &off, ")");
}

/* res->reasoning and the chosen chain's risk factors. */
static void explain_choice(const struct route_ctx *x, struct route_result *res)
{
	const struct route_candidate *ch = &res->cand[res->chosen];
	const char *name = models[res->chosen].name;
	const char *prio = route_priority_name(x->req->priority);
	bool express = x->req->priority == PRIORITY_EXPRESS;
	char fee[USD_STRLEN], facts[128];

	fmt_usd_micros(ch->network_fee_usd_micros, fee, sizeof(fee));
	if (express)
		fmt_trunc(facts, sizeof(facts), "settles in ~%d s, network fee %s",
			  ch->settlement_seconds, fee);
	else
		fmt_trunc(facts, sizeof(facts), "network fee %s, settles in ~%d s", fee,
			  ch->settlement_seconds);

	if (x->max_tier == 1) {
		fmt_trunc(res->reasoning, sizeof(res->reasoning),
			  "%s L1 for a %s %s transfer (security tier 1, %s)", name, x->usd, prio,
			  facts);
	} else if (res->amount_usd_cents >= x->cfg->large_usd_cents) {
		/* Large but ethereum is out: say so, then why this tier 2 chain. */
		fmt_trunc(res->reasoning, sizeof(res->reasoning),
			  "%s: ethereum L1 is not available for a %s %s transfer (%s), so the %s "
			  "security tier 2 chain (%s)",
			  name, x->usd, prio, res->cand[CHAIN_ETHEREUM].why,
			  express ? "fastest" : "cheapest", facts);
		add_risk(res, "large transfer routed off ethereum L1: %s",
			 res->cand[CHAIN_ETHEREUM].why);
	} else {
		fmt_trunc(res->reasoning, sizeof(res->reasoning),
			  "%s: %s %s chain for a %s %s transfer (%s)", name,
			  express ? "fastest" : "cheapest",
			  x->max_tier == 2 ? "security tier 1-2" : "eligible", x->usd, prio, facts);
	}
	if (ch->security_tier == 3)
		add_risk(res, "%s is security tier 3", name);
}

/* Validation, then every chain priced and judged, then the choice and its
 * explanation. All pointers are borrowed for the call; res is overwritten
 * (zeroed first) whenever the arguments are valid, and means nothing after -1. */
int route_decide(const struct route_config *cfg, const struct route_market *m,
		 const struct route_request *req, struct route_result *res)
{
	struct route_ctx x;
	const struct route_candidate *best = NULL;
	int platform_bps, c;
	bool large, eth_usable;

	if (!args_ok(cfg, m, req, res))
		return -1;
	memset(res, 0, sizeof(*res));
	res->chosen = -1;
	memset(&x, 0, sizeof(x));
	x.cfg = cfg;
	x.m = m;
	x.req = req;
	x.provider = m->provider_name && m->provider_name[0] ? m->provider_name : DEFAULT_PROVIDER;
	x.outage = m->provider >= STATUS_MAJOR;

	if (usd_cents(req, &res->amount_usd_cents) < 0)
		return -1;
	fmt_usd_cents(res->amount_usd_cents, x.usd, sizeof(x.usd));
	fmt_usd_cents(cfg->mid_usd_cents, x.mid_usd, sizeof(x.mid_usd));
	fmt_usd_cents(cfg->large_usd_cents, x.large_usd, sizeof(x.large_usd));

	/* A discount larger than the fee makes it free, never negative. */
	platform_bps = cfg->platform_bps - cfg->tier_discount_bps[req->tier];
	if (platform_bps < 0)
		platform_bps = 0;
	if (money_fee(req->amount, platform_bps, &x.platform_fee) != MONEY_OK ||
	    money_fee(req->amount, cfg->onramp_bps, &x.onramp_fee) != MONEY_OK ||
	    money_fee(req->amount, cfg->offramp_bps, &x.offramp_fee) != MONEY_OK)
		return -1;

	large = res->amount_usd_cents >= cfg->large_usd_cents;
	eth_usable = !m->chain[CHAIN_ETHEREUM].unavailable &&
		     chain_priced(&m->chain[CHAIN_ETHEREUM], req);
	if (large && eth_usable)
		x.max_tier = 1;
	else if (res->amount_usd_cents >= cfg->mid_usd_cents)
		x.max_tier = 2;
	else
		x.max_tier = 3;

	for (c = 0; c < CHAIN_COUNT; c++) {
		if (price_chain(&x, c, &res->cand[c]) < 0)
			return -1;
		if (res->cand[c].eligible &&
		    better(&res->cand[c], best, req->priority == PRIORITY_EXPRESS))
			best = &res->cand[c];
	}

	if (m->provider == STATUS_MINOR)
		add_risk(res, "provider %s degraded (status indicator minor)", x.provider);
	if (!best) {
		explain_none(&x, res);
		return 0;
	}
	res->chosen = (int)best->chain;
	explain_choice(&x, res);
	route_fee_percent(best->fees.total, req->amount, res->fee_percent,
			  sizeof(res->fee_percent));
	return 0;
}

void route_config_init(struct route_config *cfg, int platform_bps, int onramp_bps, int offramp_bps)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->platform_bps = platform_bps;
	cfg->onramp_bps = onramp_bps;
	cfg->offramp_bps = offramp_bps;
	cfg->provider_minor_bps = 5;
	cfg->large_usd_cents = 50000000; /* $500,000 */
	cfg->mid_usd_cents = 5000000;	 /* $50,000 */
}

void route_market_defaults(struct route_market *m)
{
	static const int64_t gwei = 1000000000;
	static const struct {
		int64_t standard, fast, native_usd_micros;
	} d[CHAIN_COUNT] = {
		[CHAIN_ETHEREUM] = {20 * gwei, 40 * gwei, 3000000000},
		[CHAIN_BASE] = {gwei / 20, gwei / 10, 3000000000},
		[CHAIN_POLYGON] = {30 * gwei, 50 * gwei, 500000},
		[CHAIN_ARBITRUM] = {gwei / 100, gwei / 50, 3000000000},
		[CHAIN_SOLANA] = {1000, 5000, 150000000},
	};
	memset(m, 0, sizeof(*m));
	for (int c = 0; c < CHAIN_COUNT; c++) {
		m->chain[c].gas_standard = d[c].standard;
		m->chain[c].gas_fast = d[c].fast;
		m->chain[c].native_usd_micros = d[c].native_usd_micros;
	}
	m->provider = STATUS_NONE;
	m->provider_name = "circle";
}
