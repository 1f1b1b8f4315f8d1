/* json.h - jansson helpers: strict request parsing and validation. */
#ifndef COMMON_JSON_H
#define COMMON_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A client error found while reading a request: HTTP status, machine code,
 * human message, and the offending parameter ("" when none). */
struct jv_error {
	int status;
	char code[40];
	char message[200];
	char param[64];
};

/* Sets *err and returns -1, for one-line error returns. */
int jv_fail(struct jv_error *err, int status, const char *code, const char *param, const char *fmt,
	    ...) __attribute__((format(printf, 5, 6)));

/* Parses a request body that must be a JSON object.
 * Invalid UTF-8 or malformed JSON -> 400 INVALID_JSON (the message says which
 * and where); an integer beyond int64 -> 400 INVALID_AMOUNT; any other top
 * level value -> 400 INVALID_REQUEST. An empty body is malformed JSON.
 * Returns a new reference (caller json_decref's) or NULL with *err set. */
json_t *jv_parse_object(const char *buf, size_t len, struct jv_error *err);

enum jv_type { JV_STRING, JV_INT, JV_BOOL, JV_OBJECT, JV_ARRAY };

struct jv_field {
	const char *name;
	enum jv_type type;
	bool required;
	size_t max_len;	       /* JV_STRING: max bytes (0 = no bound); JV_OBJECT/ARRAY: max
				  serialised bytes (0 = no bound) */
	const char *type_code; /* error code for a wrong type; NULL = "INVALID_FIELD" */
};

/* Checks obj against the field table: each required field present and not
 * null (400 MISSING_FIELD), each present field of its type (400 type_code),
 * strings non-empty and within max_len (400 INVALID_FIELD). Unknown fields
 * are ignored. Returns 0 or -1 with *err set. */
int jv_check(const json_t *obj, const struct jv_field *fields, size_t n, struct jv_error *err)
	__attribute__((warn_unused_result));

/* Reads a strictly positive integer amount: wrong type, fractional,
 * zero or negative -> 400 INVALID_AMOUNT naming param. */
int jv_amount(const json_t *obj, const char *name, int64_t *out, struct jv_error *err)
	__attribute__((warn_unused_result));

/* The string member or NULL when absent or not a string; borrowed from obj. */
const char *jv_str(const json_t *obj, const char *name);

/* Serialises compactly; caller frees with free(). NULL on allocation failure. */
char *jv_dump(const json_t *v, size_t *len);

#endif
