/* log.h - structured logging: one JSON object per line on stdout (SPEC 9). */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* One extra field of a log line. Build them with LF_S / LF_I. */
struct log_field {
	const char *key;
	const char *str; /* used when !is_num; NULL is written as null */
	long long num;
	bool is_num;
};

#define LF_S(k, v) ((struct log_field){.key = (k), .str = (v)})
#define LF_I(k, v) ((struct log_field){.key = (k), .num = (long long)(v), .is_num = true})

/* Sets the service name written in every line, the minimum level and the
 * format (json = true, else a human "text" format). Call once at start-up,
 * before any thread logs. service is borrowed for the life of the process. */
void log_init(const char *service, enum log_level level, bool json);

/* "debug", "info", "warn"/"warning", "error" -> level. Returns 0 or -1. */
int log_parse_level(const char *s, enum log_level *out) __attribute__((warn_unused_result));

bool log_enabled(enum log_level level);

/* Writes {"ts","level","service","msg", fields...} as one line with a single
 * write(2), so lines from several threads never interleave. Strings are
 * JSON-escaped. Thread-safe. */
void log_fields(enum log_level level, const char *msg, const struct log_field *f, size_t n);

/* printf-style message with no extra fields. */
void log_fmt(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_event(level, msg, ...)                                                     \
	do {                                                                           \
		if (log_enabled(level)) {                                              \
			const struct log_field lf_[] = {__VA_ARGS__};                  \
			log_fields((level), (msg), lf_, sizeof(lf_) / sizeof(lf_[0])); \
		}                                                                      \
	} while (0)

#define log_debug(...) log_fmt(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_fmt(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_fmt(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_fmt(LOG_ERROR, __VA_ARGS__)

#endif
