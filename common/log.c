/* log.c - structured log lines on stdout, one write(2) per line (SPEC 9). */
#include "common/log.h"
#include "common/utf8.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* A line is built in a stack buffer of this size. It equals PIPE_BUF on
 * Linux, so a line written to a pipe is never interleaved with another. */
#define LOG_LINE_MAX 4096
/* Bytes kept free at the end of the line for closing it after truncation:
 * a closing quote, ',"truncated":true', '}' and '\n'. */
#define LOG_TAIL 32
/* Longest escaped string value, so one huge value cannot crowd out the
 * fields after it. */
#define LOG_VALUE_MAX 1024
/* Longest formatted log_fmt message before escaping. */
#define LOG_MSG_MAX 2048

/* Set once by log_init before any thread logs, read-only afterwards. */
static const char *log_service = "rampart";
static enum log_level log_level_min = LOG_INFO;
static bool log_json = true;

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};

/* A line under construction: b[0..len) holds the bytes so far, content
 * stops at cap (< sizeof line) so the tail always fits. truncated records
 * that something was cut or dropped. */
struct log_buf {
	char *b;
	size_t len;
	size_t cap;
	bool truncated;
};

void log_init(const char *service, enum log_level level, bool json)
{
	if (service != NULL && service[0] != '\0')
		log_service = service;
	if (level >= LOG_DEBUG && level <= LOG_ERROR)
		log_level_min = level;
	log_json = json;
}

int log_parse_level(const char *s, enum log_level *out)
{
	if (s == NULL)
		return -1;
	if (strcasecmp(s, "debug") == 0)
		*out = LOG_DEBUG;
	else if (strcasecmp(s, "info") == 0)
		*out = LOG_INFO;
	else if (strcasecmp(s, "warn") == 0 || strcasecmp(s, "warning") == 0)
		*out = LOG_WARN;
	else if (strcasecmp(s, "error") == 0)
		*out = LOG_ERROR;
	else
		return -1;
	return 0;
}

bool log_enabled(enum log_level level)
{
	return level >= log_level_min;
}

/* Appends n bytes if they fit before cap; false (and nothing written) if not. */
static bool lb_put(struct log_buf *lb, const char *s, size_t n)
{
	if (lb->len + n > lb->cap)
		return false;
	memcpy(lb->b + lb->len, s, n);
	lb->len += n;
	return true;
}

/* Appends into the reserved tail; callers guarantee the room (LOG_TAIL). */
static void lb_force(struct log_buf *lb, const char *s)
{
	size_t n = strlen(s);

	memcpy(lb->b + lb->len, s, n);
	lb->len += n;
}

/* Appends s JSON-escaped (without quotes), at most max bytes of output and
 * always leaving one byte before cap for a closing quote. Control characters
 * become escapes, invalid UTF-8 bytes U+FFFD. Returns false if s was cut. */
static bool lb_escape(struct log_buf *lb, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t start = lb->len;

	while (*p != '\0') {
		char tmp[8];
		const char *out = tmp;
		size_t n, adv;

		if (*p == '"' || *p == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)*p;
			n = 2;
			adv = 1;
		} else if (*p < 0x20) {
			adv = 1;
			n = 2;
			tmp[0] = '\\';
			switch (*p) {
			case '\n':
				tmp[1] = 'n';
				break;
			case '\r':
				tmp[1] = 'r';
				break;
			case '\t':
				tmp[1] = 't';
				break;
			case '\b':
				tmp[1] = 'b';
				break;
			case '\f':
				tmp[1] = 'f';
				break;
			default:
				n = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04x", (unsigned)*p);
			}
		} else {
			adv = utf8_len(p);
			if (adv == 0) {
				out = "\\ufffd";
				n = 6;
				adv = 1;
			} else {
				out = (const char *)p;
				n = adv;
			}
		}
		if (lb->len - start + n > max || lb->len + n + 1 > lb->cap)
			return false;
		memcpy(lb->b + lb->len, out, n);
		lb->len += n;
		p += adv;
	}
	return true;
}

/* Appends "s" (or null for NULL), cut to LOG_VALUE_MAX; the closing quote
 * always fits because lb_escape leaves room for it. */
static void lb_string(struct log_buf *lb, const char *s)
{
	if (s == NULL) {
		if (!lb_put(lb, "null", 4))
			lb->truncated = true;
		return;
	}
	if (!lb_put(lb, "\"", 1)) {
		lb->truncated = true;
		return;
	}
	if (!lb_escape(lb, s, LOG_VALUE_MAX))
		lb->truncated = true;
	lb->b[lb->len++] = '"';
}

/* Appends ,"key": (JSON) or " key=" (text); on lack of room rolls back to
 * mark and returns false. */
static bool lb_key(struct log_buf *lb, const char *key, size_t mark)
{
	if (log_json) {
		if (lb_put(lb, ",\"", 2) && lb_escape(lb, key != NULL ? key : "", 128) &&
		    lb_put(lb, "\":", 2))
			return true;
	} else {
		if (lb_put(lb, " ", 1) && lb_escape(lb, key != NULL ? key : "", 128) &&
		    lb_put(lb, "=", 1))
			return true;
	}
	lb->len = mark;
	lb->truncated = true;
	return false;
}

/* True when a text-format value can be written bare (key=value). */
static bool text_bare(const char *s)
{
	if (s[0] == '\0')
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || *s == '"' || *s == '=' || *s == '\\' ||
		    (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* Appends one field in the current format; a field that does not fit at
 * all is dropped. */
static void lb_field(struct log_buf *lb, const struct log_field *f)
{
	size_t mark = lb->len;
	char num[32];
	int n;

	if (!lb_key(lb, f->key, mark))
		return;
	if (f->is_num) {
		n = snprintf(num, sizeof(num), "%lld", f->num);
		if (n < 0 || !lb_put(lb, num, (size_t)n)) {
			lb->len = mark;
			lb->truncated = true;
		}
		return;
	}
	if (!log_json && f->str != NULL && text_bare(f->str)) {
		if (!lb_escape(lb, f->str, LOG_VALUE_MAX))
			lb->truncated = true;
		return;
	}
	lb_string(lb, f->str);
}

/* Formats the current UTC time as RFC 3339 with milliseconds. */
static void log_timestamp(char *out, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	char base[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, cap, "%s.%03uZ", base, (unsigned)(ts.tv_nsec / 1000000L) % 1000u);
}

/* Writes all of buf to stdout, retrying on EINTR and partial writes. Errors
 * are ignored: there is nowhere left to report them. */
static void log_write(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(STDOUT_FILENO, buf, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += w;
		len -= (size_t)w;
	}
}

void log_fields(enum log_level level, const char *msg, const struct log_field *f, size_t n)
{
	char line[LOG_LINE_MAX], ts[64];
	struct log_buf lb = {.b = line, .len = 0, .cap = sizeof(line) - LOG_TAIL};
	const char *lvl;
	size_t i;

	if (!log_enabled(level))
		return;
	lvl = level >= LOG_DEBUG && level <= LOG_ERROR ? log_level_names[level] : "error";
	log_timestamp(ts, sizeof(ts));
	if (msg == NULL)
		msg = "";
	if (log_json) {
		/* ts, level and service are short and safe: they always fit. */
		lb.len = (size_t)snprintf(line, lb.cap,
					  "{\"ts\":\"%s\",\"level\":\"%s\",\"service\":", ts, lvl);
		lb_string(&lb, log_service);
		lb_key(&lb, "msg", lb.len);
		lb_string(&lb, msg);
	} else {
		lb.len = (size_t)snprintf(line, lb.cap, "%s %s ", ts, lvl);
		if (!lb_escape(&lb, log_service, 128))
			lb.truncated = true;
		lb_put(&lb, ": ", 2);
		if (!lb_escape(&lb, msg, LOG_VALUE_MAX))
			lb.truncated = true;
	}
	for (i = 0; i < n && f != NULL; i++)
		lb_field(&lb, &f[i]);
	if (lb.truncated)
		lb_force(&lb, log_json ? ",\"truncated\":true" : " truncated=true");
	lb_force(&lb, log_json ? "}\n" : "\n");
	log_write(line, lb.len);
}

void log_fmt(enum log_level level, const char *fmt, ...)
{
	char msg[LOG_MSG_MAX];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_fields(level, msg, NULL, 0);
}
