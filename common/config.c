/* config.c - typed, validated getters over environment variables (SPEC 2). */
#include "common/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest value echoed back in an error line; the rest is elided. */
#define CFG_ECHO_MAX 120

/* The raw value of name, or def when the variable is unset or empty. Borrowed
 * from the environment (or def); may be NULL when def is NULL. */
static const char *cfg_raw(const char *name, const char *def)
{
	const char *v = getenv(name);

	if (v == NULL || v[0] == '\0')
		return def;
	return v;
}

/* Appends value to out (size cap) as a quoted, printable echo: control and
 * non-ASCII bytes become \xNN so the error stays on one line. */
static void cfg_echo(char *out, size_t cap, const char *value)
{
	size_t o = 0, i;

	if (cap < 8)
		return;
	out[o++] = '"';
	for (i = 0; value[i] != '\0'; i++) {
		unsigned char c = (unsigned char)value[i];
		char tmp[8];
		size_t n;

		if (i >= CFG_ECHO_MAX) {
			memcpy(tmp, "...", 3);
			n = 3;
			if (o + n + 2 > cap)
				break;
			memcpy(out + o, tmp, n);
			o += n;
			break;
		}
		if (c == '"' || c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			n = 2;
		} else if (c < 0x20 || c >= 0x7f) {
			n = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", c);
		} else {
			tmp[0] = (char)c;
			n = 1;
		}
		if (o + n + 2 > cap)
			break;
		memcpy(out + o, tmp, n);
		o += n;
	}
	out[o++] = '"';
	out[o] = '\0';
}

/* Prints "config: NAME: <reason> (got "<value>")" as one line. value NULL
 * omits the echo (for secrets). Always returns -1. */
static int cfg_bad(const char *name, const char *value, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int cfg_bad(const char *name, const char *value, const char *fmt, ...)
{
	char why[512], echo[CFG_ECHO_MAX * 4 + 16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (value != NULL) {
		cfg_echo(echo, sizeof(echo), value);
		fprintf(stderr, "config: %s: %s (got %s)\n", name, why, echo);
	} else {
		fprintf(stderr, "config: %s: %s\n", name, why);
	}
	return -1;
}

int cfg_fail(const char *name, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	fprintf(stderr, "config: %s: %s\n", name, why);
	return -1;
}

/* Parses s as base-10 digits with an optional sign (only when allow_sign).
 * Returns 0, -1 for junk, -2 for a value beyond long long. */
static int cfg_parse_ll(const char *s, bool allow_sign, long long *out)
{
	const char *p = s;
	char *end = NULL;
	long long v;

	if (allow_sign && (*p == '-' || *p == '+'))
		p++;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno == ERANGE)
		return -2;
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* *out is a malloc'ed copy of the value or def (NULL def reads as ""). */
int cfg_str(const char *name, const char *def, size_t max_len, char **out)
{
	const char *v = cfg_raw(name, def);
	size_t len;
	char *copy;

	if (v == NULL)
		v = "";
	len = strlen(v);
	if (max_len > 0 && len > max_len)
		/* The value may be a secret (API keys): report its size only. */
		return cfg_bad(name, NULL, "must be at most %zu bytes (got %zu bytes)", max_len,
			       len);
	copy = malloc(len + 1);
	if (copy == NULL)
		return cfg_fail(name, "out of memory");
	memcpy(copy, v, len + 1);
	*out = copy;
	return 0;
}

int cfg_int(const char *name, long long def, long long min, long long max, long long *out)
{
	const char *v = cfg_raw(name, NULL);
	long long n;
	int rc;

	if (v == NULL) {
		*out = def;
		return 0;
	}
	rc = cfg_parse_ll(v, min < 0, &n);
	if (rc == -1 && min >= 0 && (v[0] == '-' || v[0] == '+') && cfg_parse_ll(v, true, &n) != -1)
		rc = -2; /* a well-formed signed number where none is allowed */
	if (rc == -1)
		return cfg_bad(name, v, "not a base-10 integer");
	if (rc == -2 || n < min || n > max)
		return cfg_bad(name, v, "out of range: must be between %lld and %lld", min, max);
	*out = n;
	return 0;
}

int cfg_int_table(const struct cfg_int_var *vars, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		long long v;
		if (vars[i].min < INT_MIN || vars[i].max > INT_MAX)
			return cfg_fail(vars[i].name, "range [%lld, %lld] does not fit an int",
					vars[i].min, vars[i].max);
		if (cfg_int(vars[i].name, vars[i].def, vars[i].min, vars[i].max, &v) != 0)
			return -1;
		*vars[i].dst = (int)v;
	}
	return 0;
}

int cfg_bool(const char *name, bool def, bool *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};
	const char *v = cfg_raw(name, NULL);
	size_t i;

	if (v == NULL) {
		*out = def;
		return 0;
	}
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return cfg_bad(name, v, "must be one of 1/0, true/false, yes/no, on/off");
}

/* Matching is case-insensitive ("JSON" selects "json"). */
int cfg_enum(const char *name, const char *def, const char *const *choices, int *out)
{
	const char *v = cfg_raw(name, def);
	char list[256];
	size_t used = 0;
	int i;

	for (i = 0; v != NULL && choices[i] != NULL; i++) {
		if (strcasecmp(v, choices[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	list[0] = '\0';
	for (i = 0; choices[i] != NULL && used < sizeof(list); i++) {
		int n = snprintf(list + used, sizeof(list) - used, "%s%s", i > 0 ? ", " : "",
				 choices[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	return cfg_bad(name, v != NULL ? v : "", "must be one of: %s", list);
}

/* True when s is a plausible host name or IPv4 address (letters, digits,
 * dots, dashes). Resolution happens later, when binding. */
static bool cfg_host_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-'))
			return false;
	}
	return true;
}

int cfg_listen(const char *name, const char *def, char *host, size_t host_len, int *port)
{
	const char *v = cfg_raw(name, def);
	const char *h, *colon;
	char v6[INET6_ADDRSTRLEN + 1];
	struct in6_addr a6;
	size_t hlen;
	long long p;

	if (v == NULL)
		v = "";
	if (v[0] == '[') {
		const char *rb = strchr(v, ']');

		if (rb == NULL || rb[1] != ':')
			return cfg_bad(name, v, "must be host:port, :port or [v6]:port");
		h = v + 1;
		hlen = (size_t)(rb - h);
		colon = rb + 1;
		if (hlen == 0 || hlen >= sizeof(v6))
			return cfg_bad(name, v, "not a valid IPv6 address");
		memcpy(v6, h, hlen);
		v6[hlen] = '\0';
		if (inet_pton(AF_INET6, v6, &a6) != 1)
			return cfg_bad(name, v, "not a valid IPv6 address");
	} else {
		colon = strrchr(v, ':');
		if (colon == NULL)
			return cfg_bad(name, v, "must be host:port, :port or [v6]:port");
		if (colon == v) {
			h = "0.0.0.0";
			hlen = strlen(h);
		} else {
			h = v;
			hlen = (size_t)(colon - v);
			if (memchr(h, ':', hlen) != NULL)
				return cfg_bad(name, v,
					       "IPv6 hosts must be in brackets: [v6]:port");
			if (!cfg_host_ok(h, hlen))
				return cfg_bad(name, v, "not a valid host");
		}
	}
	if (cfg_parse_ll(colon + 1, false, &p) != 0 || p < 1 || p > 65535)
		return cfg_bad(name, v, "port must be an integer between 1 and 65535");
	if (hlen + 1 > host_len)
		return cfg_bad(name, v, "host longer than %zu bytes",
			       host_len > 0 ? host_len - 1 : 0);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (int)p;
	return 0;
}

int cfg_int_list(const char *name, const char *def, long long max, long long **out, size_t *n)
{
	const char *v = cfg_raw(name, def);
	const char *p, *end;
	long long *vals = NULL;
	size_t count = 1, i = 0;
	char item[32];

	if (v == NULL || v[0] == '\0')
		return cfg_bad(name, "", "must be a comma-separated list of integers");
	for (p = v; *p != '\0'; p++)
		if (*p == ',')
			count++;
	vals = calloc(count, sizeof(*vals));
	if (vals == NULL)
		return cfg_fail(name, "out of memory");
	for (p = v; i < count; p = end + 1, i++) {
		size_t len;

		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		len = (size_t)(end - p);
		if (len == 0) {
			cfg_bad(name, v, "item %zu is empty", i + 1);
			goto fail;
		}
		if (len >= sizeof(item)) {
			cfg_bad(name, v, "item %zu is not a non-negative integer", i + 1);
			goto fail;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		switch (cfg_parse_ll(item, false, &vals[i])) {
		case 0:
			break;
		case -2:
			cfg_bad(name, v, "item %zu must be at most %lld", i + 1, max);
			goto fail;
		default:
			cfg_bad(name, v, "item %zu is not a non-negative integer", i + 1);
			goto fail;
		}
		if (vals[i] > max) {
			cfg_bad(name, v, "item %zu must be at most %lld", i + 1, max);
			goto fail;
		}
	}
	*out = vals;
	*n = count;
	return 0;
fail:
	free(vals);
	return -1;
}

/* Copies a URL for an error echo with any userinfo replaced by "***", so
 * passwords in DATABASE_URL or REDIS_URL never reach the logs. */
static void cfg_redact_url(const char *v, char *out, size_t cap)
{
	const char *auth = strstr(v, "://");
	const char *at, *slash;

	snprintf(out, cap, "%s", v);
	if (auth == NULL)
		return;
	auth += 3;
	slash = strchr(auth, '/');
	at = strchr(auth, '@');
	if (at == NULL || (slash != NULL && at > slash))
		return;
	snprintf(out, cap, "%.*s***%s", (int)(auth - v), v, at);
}

int cfg_url(const char *name, const char *def, const char *const *schemes, char **out)
{
	const char *v = cfg_raw(name, def);
	char shown[CFG_ECHO_MAX * 2], list[256];
	size_t used = 0, len, i;
	char *copy;

	if (v == NULL)
		v = "";
	cfg_redact_url(v, shown, sizeof(shown));
	for (i = 0; v[i] != '\0'; i++)
		if ((unsigned char)v[i] <= 0x20 || v[i] == 0x7f)
			return cfg_bad(name, shown,
				       "must not contain spaces or control characters");
	for (i = 0; schemes[i] != NULL; i++) {
		size_t sl = strlen(schemes[i]);

		if (strncasecmp(v, schemes[i], sl) == 0 && strncmp(v + sl, "://", 3) == 0 &&
		    v[sl + 3] != '\0')
			break;
	}
	if (schemes[i] == NULL) {
		list[0] = '\0';
		for (i = 0; schemes[i] != NULL && used < sizeof(list); i++) {
			int n = snprintf(list + used, sizeof(list) - used, "%s%s://",
					 i > 0 ? " or " : "", schemes[i]);
			if (n < 0)
				break;
			used += (size_t)n;
		}
		return cfg_bad(name, shown, "must be a URL starting with %s", list);
	}
	len = strlen(v);
	copy = malloc(len + 1);
	if (copy == NULL)
		return cfg_fail(name, "out of memory");
	memcpy(copy, v, len + 1);
	*out = copy;
	return 0;
}

int cfg_base_load(struct cfg_base *b)
{
	static const char *const pg_schemes[] = {"postgres", "postgresql", NULL};
	static const char *const redis_schemes[] = {"redis", NULL};
	static const char *const formats[] = {"json", "text", NULL};
	char *level = NULL;
	int fmt;

	memset(b, 0, sizeof(*b));
	if (cfg_url("DATABASE_URL", "postgres://rampart:rampart@127.0.0.1:5432/rampart", pg_schemes,
		    &b->database_url) ||
	    cfg_url("REDIS_URL", "redis://127.0.0.1:6379/0", redis_schemes, &b->redis_url) ||
	    cfg_str("REDIS_PREFIX", "rampart", 64, &b->redis_prefix) ||
	    cfg_str("LOG_LEVEL", "info", 16, &level))
		goto fail;
	if (log_parse_level(level, &b->log_level) != 0) {
		cfg_fail("LOG_LEVEL", "must be debug, info, warn or error (got \"%s\")", level);
		goto fail;
	}
	if (cfg_enum("LOG_FORMAT", "json", formats, &fmt))
		goto fail;
	b->log_json = fmt == 0;
	free(level);
	return 0;
fail:
	free(level);
	cfg_base_free(b);
	return -1;
}

void cfg_base_free(struct cfg_base *b)
{
	free(b->database_url);
	free(b->redis_url);
	free(b->redis_prefix);
	memset(b, 0, sizeof(*b));
}
