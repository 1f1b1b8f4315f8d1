/* config.h - configuration from environment variables, validated (12-factor).
 *
 * Each getter reads one variable; when it is unset or empty the default is
 * used. A value that does not parse or is out of range prints
 * "config: NAME: <why>" to stderr and returns -1, so main() can exit non-zero
 * naming the variable. */
#ifndef COMMON_CONFIG_H
#define COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/log.h"

/* A string value; *out is malloc'ed (caller frees) and never NULL on success.
 * max_len bounds the value (0 = no bound). */
int cfg_str(const char *name, const char *def, size_t max_len, char **out)
	__attribute__((warn_unused_result));

/* A base-10 integer within [min, max]; rejects junk, signs where min >= 0
 * forbids them, and overflow. */
int cfg_int(const char *name, long long def, long long min, long long max, long long *out)
	__attribute__((warn_unused_result));

/* 1/0, true/false, yes/no, on/off (case-insensitive). */
int cfg_bool(const char *name, bool def, bool *out) __attribute__((warn_unused_result));

/* One of choices (NULL-terminated); *out is its index. */
int cfg_enum(const char *name, const char *def, const char *const *choices, int *out)
	__attribute__((warn_unused_result));

/* A listen address "host:port", ":port" (all interfaces) or "[v6]:port".
 * host receives the host part ("0.0.0.0" for ":port"), port 1..65535. */
int cfg_listen(const char *name, const char *def, char *host, size_t host_len, int *port)
	__attribute__((warn_unused_result));

/* One int-valued variable of a daemon's table: its name, default, range and
 * where it goes. */
struct cfg_int_var {
	const char *name;
	long long def, min, max; /* min and max within int's range */
	int *dst;
};

/* Reads vars[0..n) in order with cfg_int, each into its *dst. Stops at the
 * first bad value (reported as cfg_int does) and returns -1; else 0. */
int cfg_int_table(const struct cfg_int_var *vars, size_t n) __attribute__((warn_unused_result));

#define CFG_COUNT(table) (sizeof(table) / sizeof((table)[0]))

/* A comma-separated list of non-negative integers, e.g. "5,300,1800".
 * *out is malloc'ed (caller frees); *n >= 1 on success. */
int cfg_int_list(const char *name, const char *def, long long max, long long **out, size_t *n)
	__attribute__((warn_unused_result));

/* A URL whose scheme is one of schemes (NULL-terminated), e.g. {"redis", NULL}. */
int cfg_url(const char *name, const char *def, const char *const *schemes, char **out)
	__attribute__((warn_unused_result));

/* Reports a semantic error found after parsing (e.g. MIN > MAX) in the same
 * format: "config: NAME: <why>". Always returns -1. */
int cfg_fail(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The variables every daemon reads (SPEC 2): DATABASE_URL, REDIS_URL,
 * REDIS_PREFIX, LOG_LEVEL, LOG_FORMAT. Strings are malloc'ed; free with
 * cfg_base_free (accepts a zeroed struct). Returns 0 or -1 (reported). */
struct cfg_base {
	char *database_url;
	char *redis_url;
	char *redis_prefix;
	enum log_level log_level;
	bool log_json;
};

int cfg_base_load(struct cfg_base *b) __attribute__((warn_unused_result));
void cfg_base_free(struct cfg_base *b);

#endif
