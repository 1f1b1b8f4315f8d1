/* sources.c - defensive parsers turning market-data responses into fixed-point readings. */
#include "sources.h"

#include "common/chain_route.h"
#include "common/money.h"
#include "common/utf8.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sanity ceilings, in the unit each reading is stored in. */
#define FX_MAX_PER_USD	(1000000LL * MONEY_RATE_SCALE) /* 1,000,000 units per USD */
#define PRICE_MAX	10000000000000LL	       /* $10,000,000 in micro-USD */
#define USDC_MIN	500000LL		       /* $0.50 */
#define USDC_MAX	1500000LL		       /* $1.50 */
#define EVM_GAS_MAX	10000000000000LL	       /* 10,000 gwei in wei */
#define SOLANA_FEE_MAX	100000000LL		       /* micro-lamports per CU */
#define SOLANA_SAMPLES	1000			       /* most fees read from one response */
#define ERR_VALUE_CHARS 40			       /* longest echo of a source's text in err */

#define GWEI_DECIMALS  9
#define MICRO_DECIMALS 6

/* ==== errors ============================================================= */

/* Formats the reason into err (when there is room for one); always -1. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return -1;
	va_start(ap, fmt);
	if (vsnprintf(err, errlen, fmt, ap) < 0)
		err[0] = '\0';
	va_end(ap);
	return -1;
}

/* Copies n bytes of text a source sent into buf (len >= ERR_VALUE_CHARS + 4)
 * for an error message: only printable ASCII survives (anything else, and
 * quotes, become '?', so a log line stays one clean line) and text past
 * ERR_VALUE_CHARS is cut with "...". Returns buf. */
static const char *echo(const char *s, size_t n, char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < n && i < ERR_VALUE_CHARS && i + 4 < len; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[i] = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? (char)c : '?';
	}
	buf[i] = '\0';
	if (i < n)
		memcpy(buf + i, "...", 4);
	return buf;
}

/* ==== decimals =========================================================== */

enum dec_err {
	DEC_OK,
	DEC_TYPE,     /* not a number or a string (null, bool, object, array) */
	DEC_SYNTAX,   /* a string that is not a plain decimal */
	DEC_NEGATIVE, /* below zero */
	DEC_RANGE,    /* does not fit int64 at the scale, or not finite */
};

static const char *dec_reason(enum dec_err e)
{
	switch (e) {
	case DEC_OK:
		return "ok";
	case DEC_TYPE:
		return "not a number";
	case DEC_SYNTAX:
		return "not a decimal number";
	case DEC_NEGATIVE:
		return "negative";
	case DEC_RANGE:
		return "out of range";
	}
	return "invalid";
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Bigger exponents only matter as "overflow" or "truncates to 0"; clamping
 * keeps the arithmetic on them trivially in range. */
#define DEC_MAX_EXP 100000

/* Parses s[0..n) = DIGIT+ ["." DIGIT+] and, when allow_exp, an exponent
 * ("e"|"E") ["+"|"-"] DIGIT+, into a fixed-point integer with `scale`
 * decimals; digits past them are truncated. No sign, no whitespace. Works on
 * the digits as text: the value is never held in a double. */
static enum dec_err dec_text(const char *s, size_t n, bool allow_exp, int scale, int64_t *out)
{
	size_t i = 0, intlen = 0, mant_end;
	long exp = 0, shift, taken = 0;
	bool exp_neg = false;
	int64_t r = 0;

	if (n > 0 && s[0] == '-')
		return DEC_NEGATIVE;
	while (i < n && is_digit(s[i]))
		i++;
	intlen = i;
	if (intlen == 0)
		return DEC_SYNTAX;
	if (i < n && s[i] == '.') {
		size_t start = ++i;

		while (i < n && is_digit(s[i]))
			i++;
		if (i == start)
			return DEC_SYNTAX;
	}
	mant_end = i;
	if (allow_exp && i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t start;

		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			exp_neg = s[i++] == '-';
		start = i;
		for (; i < n && is_digit(s[i]); i++)
			if (exp < DEC_MAX_EXP)
				exp = exp * 10 + (s[i] - '0');
		if (i == start)
			return DEC_SYNTAX;
		if (exp_neg)
			exp = -exp;
	}
	if (i != n)
		return DEC_SYNTAX;

	/* The result is the first `shift` digits of the mantissa, with zeros
	 * appended when the mantissa is shorter. */
	shift = (long)intlen + exp + scale;
	for (i = 0; i < mant_end && taken < shift; i++) {
		int d;

		if (s[i] == '.')
			continue;
		d = s[i] - '0';
		if (r > (INT64_MAX - d) / 10)
			return DEC_RANGE;
		r = r * 10 + d;
		taken++;
	}
	for (; r != 0 && taken < shift; taken++) {
		if (r > INT64_MAX / 10)
			return DEC_RANGE;
		r *= 10;
	}
	*out = r;
	return DEC_OK;
}

static enum dec_err decimal(const json_t *v, int scale, int64_t *out)
{
	if (v == NULL || out == NULL || scale < 0 || scale > 18)
		return DEC_TYPE;
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		int64_t r = (int64_t)i;
		int k;

		if (i < 0)
			return DEC_NEGATIVE;
		for (k = 0; k < scale; k++)
			if (__builtin_mul_overflow(r, 10, &r))
				return DEC_RANGE;
		*out = r;
		return DEC_OK;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		char buf[40];
		const char *p = buf;
		int n;

		if (!isfinite(d))
			return DEC_RANGE;
		if (d < 0)
			return DEC_NEGATIVE;
		/* 15 significant digits round-trip any decimal the source wrote
		 * with up to 15 digits: 0.919 prints as "0.919", not as the
		 * binary neighbour 0.91900000000000004. */
		n = snprintf(buf, sizeof(buf), "%.15g", d);
		if (n < 0 || (size_t)n >= sizeof(buf))
			return DEC_RANGE;
		if (buf[0] == '-') /* -0.0: compares equal to 0, prints a sign */
			p++;
		return dec_text(p, strlen(p), true, scale, out);
	}
	if (json_is_string(v))
		return dec_text(json_string_value(v), json_string_length(v), false, scale, out);
	return DEC_TYPE;
}

/* Strings take the plain grammar only: "1e5" is rejected, as no source sends
 * a decimal string in exponent form and money_rate_parse refuses them too. */
int src_decimal(const json_t *v, int scale, int64_t *out)
{
	int64_t r;

	if (out == NULL || decimal(v, scale, &r) != DEC_OK)
		return -1;
	*out = r;
	return 0;
}

/* ==== shared checks ====================================================== */

/* What a field must be: its bounds, and how to show its values in err. */
struct rule {
	const char *what; /* "gas price": in "0 is not a positive gas price" */
	int scale;	  /* decimals of the stored fixed point */
	int shown;	  /* decimals to show values with (the source's unit) */
	int64_t min, max;
};

/* Reads v (NULL = absent) under `rule` into *out. name is the field's path
 * for err ("rates.EUR"). */
static int read_field(const json_t *v, const char *name, const struct rule *rule, int64_t *out,
		      char *err, size_t errlen)
{
	char a[32], b[32];
	enum dec_err e;
	int64_t x;

	if (v == NULL)
		return fail(err, errlen, "%s: missing", name);
	if (json_is_null(v))
		return fail(err, errlen, "%s: null", name);
	e = decimal(v, rule->scale, &x);
	if (e != DEC_OK)
		return fail(err, errlen, "%s: %s", name, dec_reason(e));
	if (x < rule->min) {
		money_fixed_format(x, rule->shown, a, sizeof(a));
		if (rule->min <= 1)
			return fail(err, errlen, "%s: %s is not a positive %s", name, a,
				    rule->what);
		money_fixed_format(rule->min, rule->shown, b, sizeof(b));
		return fail(err, errlen, "%s: %s is below the floor %s for a %s", name, a, b,
			    rule->what);
	}
	if (x > rule->max) {
		money_fixed_format(x, rule->shown, a, sizeof(a));
		money_fixed_format(rule->max, rule->shown, b, sizeof(b));
		return fail(err, errlen, "%s: %s is above the ceiling %s for a %s", name, a, b,
			    rule->what);
	}
	*out = x;
	return 0;
}

/* The jump check: when there is a positive last value, the new one must stay
 * within SRC_MAX_JUMP times it either way. 128-bit products cannot overflow. */
static int check_jump(const char *name, int64_t now, int64_t last, int shown, char *err,
		      size_t errlen)
{
	char a[32], b[32];

	if (last <= 0)
		return 0;
	if ((__int128)now > (__int128)last * SRC_MAX_JUMP) {
		money_fixed_format(now, shown, a, sizeof(a));
		money_fixed_format(last, shown, b, sizeof(b));
		return fail(err, errlen, "%s: %s jumped more than %dx from %s", name, a,
			    SRC_MAX_JUMP, b);
	}
	if ((__int128)now * SRC_MAX_JUMP < (__int128)last) {
		money_fixed_format(now, shown, a, sizeof(a));
		money_fixed_format(last, shown, b, sizeof(b));
		return fail(err, errlen, "%s: %s dropped below 1/%d of %s", name, a, SRC_MAX_JUMP,
			    b);
	}
	return 0;
}

/* Parses body as a JSON object. The caller owns the result (json_decref);
 * NULL with err filled on failure. Duplicate keys are rejected: a body
 * saying two things about one field is not a reading to trust. */
static json_t *load_object(const char *body, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *v;

	if (body == NULL || len == 0) {
		fail(err, errlen, "empty body");
		return NULL;
	}
	v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (v == NULL) {
		char text[ERR_VALUE_CHARS + 4];

		fail(err, errlen, "malformed JSON at line %d column %d: %s", je.line, je.column,
		     echo(je.text, strnlen(je.text, sizeof(je.text)), text, sizeof(text)));
		return NULL;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		fail(err, errlen, "body: not a JSON object");
		return NULL;
	}
	return v;
}

/* An object member that must itself be an object; NULL with err filled. */
static const json_t *get_object(const json_t *parent, const char *key, const char *name, char *err,
				size_t errlen)
{
	const json_t *v = json_object_get(parent, key);

	if (v == NULL || json_is_null(v))
		fail(err, errlen, "%s: missing", name);
	else if (!json_is_object(v))
		fail(err, errlen, "%s: not an object", name);
	else
		return v;
	return NULL;
}

/* ==== ExchangeRate-API ==================================================== */

static const struct rule fx_rule = {"rate", MONEY_RATE_DECIMALS, MONEY_RATE_DECIMALS, 1,
				    FX_MAX_PER_USD};

/* {"result":"success","base_code":"USD","time_last_update_unix":N,"rates":{...}}
 * or {"result":"error","error-type":"unsupported-code"}. */
int src_parse_fx(const char *body, size_t len, const struct src_fx *last, struct src_fx *out,
		 char *err, size_t errlen)
{
	const struct currency *cur;
	const json_t *v, *rates;
	char text[ERR_VALUE_CHARS + 4];
	struct src_fx fx;
	size_t ncur = 0, i, listed = 0;
	json_t *root;
	int rc = -1;

	cur = money_currencies(&ncur);
	if (ncur > sizeof(fx.per_usd) / sizeof(fx.per_usd[0]))
		return fail(err, errlen, "internal: %zu currencies do not fit src_fx", ncur);
	if ((root = load_object(body, len, err, errlen)) == NULL)
		return -1;
	memset(&fx, 0, sizeof(fx));

	v = json_object_get(root, "result");
	if (v == NULL || json_is_null(v)) {
		fail(err, errlen, "result: missing");
		goto done;
	}
	if (!json_is_string(v)) {
		fail(err, errlen, "result: not a string");
		goto done;
	}
	if (strcmp(json_string_value(v), "success") != 0) {
		const json_t *type = json_object_get(root, "error-type");

		if (strcmp(json_string_value(v), "error") == 0 && json_is_string(type))
			fail(err, errlen, "result: error \"%s\"",
			     echo(json_string_value(type), json_string_length(type), text,
				  sizeof(text)));
		else
			fail(err, errlen, "result: \"%s\" is not success",
			     echo(json_string_value(v), json_string_length(v), text, sizeof(text)));
		goto done;
	}

	v = json_object_get(root, "base_code");
	if (v == NULL || json_is_null(v)) {
		fail(err, errlen, "base_code: missing");
		goto done;
	}
	if (!json_is_string(v)) {
		fail(err, errlen, "base_code: not a string");
		goto done;
	}
	/* Rates against another base would need a division to rebase, and a
	 * misconfigured URL is better caught than silently converted. */
	if (strcmp(json_string_value(v), "USD") != 0) {
		fail(err, errlen,
		     "base_code: \"%s\" is not USD (only USD-based rates are supported)",
		     echo(json_string_value(v), json_string_length(v), text, sizeof(text)));
		goto done;
	}

	v = json_object_get(root, "time_last_update_unix");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			fail(err, errlen, "time_last_update_unix: not a non-negative integer");
			goto done;
		}
		fx.as_of = (int64_t)json_integer_value(v);
	}

	if ((rates = get_object(root, "rates", "rates", err, errlen)) == NULL)
		goto done;
	for (i = 0; i < ncur; i++) {
		bool usd = strcmp(cur[i].code, "USD") == 0;
		char name[32];
		int64_t r;

		v = json_object_get(rates, cur[i].code);
		if (v == NULL)
			continue;
		snprintf(name, sizeof(name), "rates.%s", cur[i].code);
		if (read_field(v, name, &fx_rule, &r, err, errlen) != 0)
			goto done;
		if (usd && r != MONEY_RATE_SCALE) {
			char a[32];

			money_fixed_format(r, MONEY_RATE_DECIMALS, a, sizeof(a));
			fail(err, errlen, "%s: %s is not 1", name, a);
			goto done;
		}
		if (last != NULL &&
		    check_jump(name, r, last->per_usd[i], MONEY_RATE_DECIMALS, err, errlen) != 0)
			goto done;
		fx.per_usd[i] = r;
		if (!usd)
			listed++;
	}
	if (listed == 0) {
		fail(err, errlen, "rates: no supported currency besides USD");
		goto done;
	}
	*out = fx;
	rc = 0;
done:
	json_decref(root);
	return rc;
}

/* ==== CoinGecko ========================================================== */

static const struct rule price_rule = {"price", MICRO_DECIMALS, MICRO_DECIMALS, 1, PRICE_MAX};
static const struct rule usdc_rule = {"stablecoin price", MICRO_DECIMALS, MICRO_DECIMALS, USDC_MIN,
				      USDC_MAX};

/* Reads <coin>.usd. An optional coin that is absent, null, or lacks "usd"
 * (CoinGecko answers {} for a coin it has no USD quote for) reads as 0; one
 * that is there with a bad value rejects the update. */
static int read_price(const json_t *root, const char *coin, bool required, const struct rule *rule,
		      int64_t last, int64_t *out, char *err, size_t errlen)
{
	const json_t *obj = json_object_get(root, coin), *v;
	char name[32];

	*out = 0;
	if (!required && (obj == NULL || json_is_null(obj)))
		return 0;
	if ((obj = get_object(root, coin, coin, err, errlen)) == NULL)
		return -1;
	v = json_object_get(obj, "usd");
	if (!required && (v == NULL || json_is_null(v)))
		return 0;
	snprintf(name, sizeof(name), "%s.usd", coin);
	if (read_field(v, name, rule, out, err, errlen) != 0)
		return -1;
	return check_jump(name, *out, last, MICRO_DECIMALS, err, errlen);
}

/* {"ethereum":{"usd":3120.55,...},"solana":{...},"usd-coin":{...},"matic-network":{...}} */
int src_parse_prices(const char *body, size_t len, const struct src_prices *last,
		     struct src_prices *out, char *err, size_t errlen)
{
	static const struct src_prices none;
	struct src_prices p;
	json_t *root;
	int rc = -1;

	if (last == NULL)
		last = &none;
	if ((root = load_object(body, len, err, errlen)) == NULL)
		return -1;
	if (read_price(root, "ethereum", true, &price_rule, last->eth_usd_micros, &p.eth_usd_micros,
		       err, errlen) != 0 ||
	    read_price(root, "solana", true, &price_rule, last->sol_usd_micros, &p.sol_usd_micros,
		       err, errlen) != 0 ||
	    read_price(root, "usd-coin", false, &usdc_rule, last->usdc_usd_micros,
		       &p.usdc_usd_micros, err, errlen) != 0 ||
	    read_price(root, "matic-network", false, &price_rule, last->pol_usd_micros,
		       &p.pol_usd_micros, err, errlen) != 0)
		goto done;
	*out = p;
	rc = 0;
done:
	json_decref(root);
	return rc;
}

/* ==== gas ================================================================ */

static const struct rule wei_rule = {"gas price", 0, 0, 1, EVM_GAS_MAX};
static const struct rule gwei_rule = {"gas price", GWEI_DECIMALS, GWEI_DECIMALS, 1, EVM_GAS_MAX};

/* {"code":200,"data":{"rapid":..,"fast":..,"standard":..,"slow":..,"timestamp":ms}} */
int src_parse_eth_gas(const char *body, size_t len, const struct src_gas *last, struct src_gas *out,
		      char *err, size_t errlen)
{
	(void)last; /* gas has no jump check: see sources.h */
	const json_t *data, *v;
	const char *fast_name = "data.fast";
	struct src_gas g;
	json_t *root;
	int rc = -1;

	if ((root = load_object(body, len, err, errlen)) == NULL)
		return -1;
	v = json_object_get(root, "code");
	if (v != NULL && !json_is_null(v) &&
	    (!json_is_integer(v) || json_integer_value(v) != 200)) {
		if (json_is_integer(v))
			fail(err, errlen, "code: %" JSON_INTEGER_FORMAT " is not 200",
			     json_integer_value(v));
		else
			fail(err, errlen, "code: not an integer");
		goto done;
	}
	if ((data = get_object(root, "data", "data", err, errlen)) == NULL)
		goto done;
	if (read_field(json_object_get(data, "standard"), "data.standard", &wei_rule, &g.standard,
		       err, errlen) != 0)
		goto done;
	v = json_object_get(data, "fast");
	if (v == NULL || json_is_null(v)) {
		v = json_object_get(data, "rapid");
		fast_name = "data.rapid";
		if (v == NULL || json_is_null(v)) {
			fail(err, errlen, "data.fast: missing (and no data.rapid)");
			goto done;
		}
	}
	if (read_field(v, fast_name, &wei_rule, &g.fast, err, errlen) != 0)
		goto done;
	*out = g;
	rc = 0;
done:
	json_decref(root);
	return rc;
}

/* One Blockscout gas price: a number (or decimal string) of gwei, or an
 * object whose "price" is one. name is "gas_prices.<key>". */
static int read_blockscout_price(const json_t *v, const char *name, int64_t *out, char *err,
				 size_t errlen)
{
	char sub[48];

	if (json_is_object(v)) {
		snprintf(sub, sizeof(sub), "%s.price", name);
		return read_field(json_object_get(v, "price"), sub, &gwei_rule, out, err, errlen);
	}
	return read_field(v, name, &gwei_rule, out, err, errlen);
}

/* {"gas_prices":{"slow":..,"average":..,"fast":..},...}: each number or {"price":..} or null. */
int src_parse_blockscout(const char *body, size_t len, const struct src_gas *last,
			 struct src_gas *out, char *err, size_t errlen)
{
	(void)last; /* gas has no jump check: see sources.h */
	const json_t *prices, *v;
	struct src_gas g;
	json_t *root;
	int rc = -1;

	if ((root = load_object(body, len, err, errlen)) == NULL)
		return -1;
	if ((prices = get_object(root, "gas_prices", "gas_prices", err, errlen)) == NULL)
		goto done;
	if (read_blockscout_price(json_object_get(prices, "average"), "gas_prices.average",
				  &g.standard, err, errlen) != 0)
		goto done;
	v = json_object_get(prices, "fast");
	if (v == NULL || json_is_null(v))
		g.fast = g.standard;
	else if (read_blockscout_price(v, "gas_prices.fast", &g.fast, err, errlen) != 0)
		goto done;
	*out = g;
	rc = 0;
done:
	json_decref(root);
	return rc;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Fills err from a JSON-RPC error member; always -1. */
static int rpc_error(const json_t *e, char *err, size_t errlen)
{
	const json_t *code = json_object_get(e, "code"), *msg = json_object_get(e, "message");
	char text[ERR_VALUE_CHARS + 4] = "";

	if (json_is_string(msg))
		echo(json_string_value(msg), json_string_length(msg), text, sizeof(text));
	else if (json_is_string(e))
		echo(json_string_value(e), json_string_length(e), text, sizeof(text));
	if (json_is_integer(code))
		return fail(err, errlen, "rpc error %" JSON_INTEGER_FORMAT ": %s",
			    json_integer_value(code), text[0] != '\0' ? text : "(no message)");
	return fail(err, errlen, "rpc error: %s", text[0] != '\0' ? text : "(no message)");
}

/* {"jsonrpc":"2.0","result":[{"slot":..,"prioritizationFee":N},...],"id":1}
 * or {"jsonrpc":"2.0","error":{"code":-32005,"message":"..."},"id":1}. */
int src_parse_solana(const char *body, size_t len, const struct src_gas *last, struct src_gas *out,
		     char *err, size_t errlen)
{
	(void)last; /* gas has no jump check: see sources.h */
	int64_t fees[SOLANA_SAMPLES];
	const json_t *result, *v;
	size_t size, start, i, n = 0;
	struct src_gas g;
	json_t *root;
	int rc = -1;

	if ((root = load_object(body, len, err, errlen)) == NULL)
		return -1;
	v = json_object_get(root, "error");
	if (v != NULL && !json_is_null(v)) {
		rpc_error(v, err, errlen);
		goto done;
	}
	result = json_object_get(root, "result");
	if (result == NULL || json_is_null(result)) {
		fail(err, errlen, "result: missing");
		goto done;
	}
	if (!json_is_array(result)) {
		fail(err, errlen, "result: not an array");
		goto done;
	}
	size = json_array_size(result);
	if (size == 0) {
		fail(err, errlen, "result: empty (no recent prioritization fees)");
		goto done;
	}
	/* The node lists recent slots oldest first (about 150): past the cap,
	 * keep the newest. */
	start = size > SOLANA_SAMPLES ? size - SOLANA_SAMPLES : 0;
	for (i = start; i < size; i++) {
		const json_t *e = json_array_get(result, i);

		v = json_is_object(e) ? json_object_get(e, "prioritizationFee") : NULL;
		if (!json_is_object(e)) {
			fail(err, errlen, "result[%zu]: not an object", i);
			goto done;
		}
		if (v == NULL || json_is_null(v)) {
			fail(err, errlen, "result[%zu].prioritizationFee: missing", i);
			goto done;
		}
		if (!json_is_integer(v)) {
			fail(err, errlen, "result[%zu].prioritizationFee: not an integer", i);
			goto done;
		}
		if (json_integer_value(v) < 0) {
			fail(err, errlen,
			     "result[%zu].prioritizationFee: %" JSON_INTEGER_FORMAT " is negative",
			     i, json_integer_value(v));
			goto done;
		}
		fees[n++] = (int64_t)json_integer_value(v);
	}
	qsort(fees, n, sizeof(fees[0]), cmp_i64);
	/* Nearest rank: the lower median, and the ceil(0.75 n)-th smallest. */
	g.standard = fees[(n - 1) / 2];
	g.fast = fees[(3 * n + 3) / 4 - 1];
	/* The ceiling applies to the statistics, not to each sample: one
	 * absurd slot among 150 moves neither, and is no reason to go stale. */
	if (g.fast > SOLANA_FEE_MAX) {
		fail(err, errlen,
		     "result: 75th percentile %" PRId64 " is above the ceiling %lld micro-lamports",
		     g.fast, SOLANA_FEE_MAX);
		goto done;
	}
	*out = g;
	rc = 0;
done:
	json_decref(root);
	return rc;
}

/* ==== Statuspage ========================================================= */

/* Copies UTF-8 text s[0..n) into dst (len bytes, NUL-terminated), whole
 * characters only, with C0 and C1 control characters and DEL replaced by a
 * space so that the text stays on one line wherever it is shown. */
static void copy_text(char *dst, size_t len, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0;

	while (i < n && o + 1 < len) {
		size_t k = utf8_len(u + i);

		if (k == 0 || i + k > n) /* jansson validated; never expected */
			break;
		if (u[i] < 0x20 || u[i] == 0x7f || (u[i] == 0xc2 && u[i + 1] < 0xa0)) {
			dst[o++] = ' ';
		} else {
			if (o + k >= len)
				break;
			memcpy(dst + o, s + i, k);
			o += k;
		}
		i += k;
	}
	dst[o] = '\0';
}

/* {"page":{...},"status":{"indicator":"none|minor|major|critical","description":"..."}} */
int src_parse_status(const char *body, size_t len, struct src_status *out, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		enum route_status status;
	} indicators[] = {
		{"none", STATUS_NONE},
		{"minor", STATUS_MINOR},
		{"major", STATUS_MAJOR},
		{"critical", STATUS_CRITICAL},
	};
	const json_t *status, *v;
	struct src_status s;
	size_t i;
	json_t *root;
	int rc = -1;

	if ((root = load_object(body, len, err, errlen)) == NULL)
		return -1;
	memset(&s, 0, sizeof(s));
	if ((status = get_object(root, "status", "status", err, errlen)) == NULL)
		goto done;
	v = json_object_get(status, "indicator");
	if (v == NULL || json_is_null(v)) {
		fail(err, errlen, "status.indicator: missing");
		goto done;
	}
	if (!json_is_string(v)) {
		fail(err, errlen, "status.indicator: not a string");
		goto done;
	}
	for (i = 0; i < sizeof(indicators) / sizeof(indicators[0]); i++)
		if (strcmp(json_string_value(v), indicators[i].name) == 0)
			break;
	if (i == sizeof(indicators) / sizeof(indicators[0])) {
		char text[ERR_VALUE_CHARS + 4];

		fail(err, errlen, "status.indicator: unknown value \"%s\"",
		     echo(json_string_value(v), json_string_length(v), text, sizeof(text)));
		goto done;
	}
	s.indicator = (int)indicators[i].status;

	v = json_object_get(status, "description");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_string(v)) {
			fail(err, errlen, "status.description: not a string");
			goto done;
		}
		copy_text(s.description, sizeof(s.description), json_string_value(v),
			  json_string_length(v));
	}
	*out = s;
	rc = 0;
done:
	json_decref(root);
	return rc;
}
