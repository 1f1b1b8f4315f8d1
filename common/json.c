/* json.c - strict parsing and validation of JSON request bodies over jansson. */
#include "common/json.h"
#include "common/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Cuts s at its first byte that is not valid UTF-8 (e.g. a character split
 * by snprintf's truncation), so it can be put into a JSON string. */
static void utf8_cut(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p != '\0') {
		size_t n = utf8_len(p);

		if (n == 0) {
			*p = '\0';
			return;
		}
		p += n;
	}
}

/* Fills *err (when err is non-NULL); param NULL reads as "". Always -1. */
int jv_fail(struct jv_error *err, int status, const char *code, const char *param, const char *fmt,
	    ...)
{
	va_list ap;
	int n;

	if (err == NULL)
		return -1;
	err->status = status;
	snprintf(err->code, sizeof(err->code), "%s", code != NULL ? code : "");
	snprintf(err->param, sizeof(err->param), "%s", param != NULL ? param : "");
	utf8_cut(err->param);
	va_start(ap, fmt);
	n = vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	if (n < 0)
		err->message[0] = '\0';
	utf8_cut(err->message);
	return -1;
}

/* JSON_DECODE_ANY so that a scalar top level parses and gets the precise
 * INVALID_REQUEST answer rather than a syntax error. Duplicate keys are
 * accepted (the last one wins), as most JSON parsers do. */
json_t *jv_parse_object(const char *buf, size_t len, struct jv_error *err)
{
	json_error_t je;
	json_t *v;

	if (buf == NULL)
		buf = "";
	v = json_loadb(buf, len, JSON_DECODE_ANY, &je);
	if (v == NULL) {
		switch (json_error_code(&je)) {
		case json_error_invalid_utf8:
			jv_fail(err, 400, "INVALID_JSON", NULL, "request body is not valid UTF-8");
			break;
		case json_error_numeric_overflow:
			/* "too big integer", "too big negative integer" and "real
			 * number overflow": only amounts are numbers in our API. */
			jv_fail(err, 400, "INVALID_AMOUNT", "amount",
				"number out of range: amounts must fit in a signed 64-bit integer");
			break;
		default:
			jv_fail(err, 400, "INVALID_JSON", NULL,
				"malformed JSON at line %d column %d: %s",
				je.line < 1 ? 1 : je.line, je.column < 1 ? 1 : je.column, je.text);
			break;
		}
		return NULL;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		jv_fail(err, 400, "INVALID_REQUEST", NULL, "request body must be a JSON object");
		return NULL;
	}
	return v;
}

static bool jv_type_ok(const json_t *v, enum jv_type t)
{
	switch (t) {
	case JV_STRING:
		return json_is_string(v);
	case JV_INT:
		return json_is_integer(v);
	case JV_BOOL:
		return json_is_boolean(v);
	case JV_OBJECT:
		return json_is_object(v);
	case JV_ARRAY:
		return json_is_array(v);
	}
	return false;
}

static const char *jv_type_name(enum jv_type t)
{
	switch (t) {
	case JV_STRING:
		return "a string";
	case JV_INT:
		return "an integer";
	case JV_BOOL:
		return "a boolean";
	case JV_OBJECT:
		return "an object";
	case JV_ARRAY:
		return "an array";
	}
	return "of another type";
}

int jv_check(const json_t *obj, const struct jv_field *fields, size_t n, struct jv_error *err)
{
	size_t i;

	if (!json_is_object(obj))
		return jv_fail(err, 400, "INVALID_REQUEST", NULL,
			       "request body must be a JSON object");
	for (i = 0; i < n; i++) {
		const struct jv_field *f = &fields[i];
		const json_t *v = json_object_get(obj, f->name);

		if (v == NULL || json_is_null(v)) {
			if (f->required)
				return jv_fail(err, 400, "MISSING_FIELD", f->name, "%s is required",
					       f->name);
			continue;
		}
		if (!jv_type_ok(v, f->type))
			return jv_fail(err, 400,
				       f->type_code != NULL ? f->type_code : "INVALID_FIELD",
				       f->name, "%s must be %s", f->name, jv_type_name(f->type));
		if (f->type == JV_STRING) {
			size_t len = json_string_length(v);

			if (len == 0)
				return jv_fail(err, 400, "INVALID_FIELD", f->name,
					       "%s must not be empty", f->name);
			if (f->max_len > 0 && len > f->max_len)
				return jv_fail(err, 400, "INVALID_FIELD", f->name,
					       "%s must be at most %zu bytes", f->name, f->max_len);
		} else if ((f->type == JV_OBJECT || f->type == JV_ARRAY) && f->max_len > 0) {
			/* With a NULL buffer json_dumpb only measures. */
			size_t len = json_dumpb(v, NULL, 0, JSON_COMPACT);

			if (len > f->max_len)
				return jv_fail(err, 400, "INVALID_FIELD", f->name,
					       "%s must be at most %zu bytes when serialised",
					       f->name, f->max_len);
		}
	}
	return 0;
}

int jv_amount(const json_t *obj, const char *name, int64_t *out, struct jv_error *err)
{
	const json_t *v = json_object_get(obj, name);
	json_int_t n;

	if (v == NULL || json_is_null(v))
		return jv_fail(err, 400, "MISSING_FIELD", name, "%s is required", name);
	if (!json_is_integer(v))
		return jv_fail(err, 400, "INVALID_AMOUNT", name,
			       "%s must be a positive integer in minor units", name);
	n = json_integer_value(v);
	if (n <= 0)
		return jv_fail(err, 400, "INVALID_AMOUNT", name,
			       "%s must be a positive integer in minor units", name);
	*out = (int64_t)n;
	return 0;
}

const char *jv_str(const json_t *obj, const char *name)
{
	return json_string_value(json_object_get(obj, name));
}

/* Measures first, then serialises into our own malloc'ed buffer so the
 * caller's free() matches even if jansson's allocator was replaced. */
char *jv_dump(const json_t *v, size_t *len)
{
	const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
	size_t n;
	char *buf;

	if (v == NULL)
		return NULL;
	n = json_dumpb(v, NULL, 0, flags);
	if (n == 0)
		return NULL;
	buf = malloc(n + 1);
	if (buf == NULL)
		return NULL;
	if (json_dumpb(v, buf, n, flags) != n) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}
