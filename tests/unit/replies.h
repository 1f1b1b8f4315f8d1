/* replies.h - hand-built hiredis replies for unit tests of reply readers.
 * Each is calloc'd as hiredis's own are, so freeReplyObject frees a tree. */
#ifndef TESTS_UNIT_REPLIES_H
#define TESTS_UNIT_REPLIES_H

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static inline redisReply *r_str(const char *s)
{
	redisReply *r = calloc(1, sizeof(*r));
	r->type = REDIS_REPLY_STRING;
	r->str = strdup(s);
	r->len = strlen(s);
	return r;
}

static inline redisReply *r_int(long long v)
{
	redisReply *r = calloc(1, sizeof(*r));
	r->type = REDIS_REPLY_INTEGER;
	r->integer = v;
	return r;
}

static inline redisReply *r_nil(void)
{
	redisReply *r = calloc(1, sizeof(*r));
	r->type = REDIS_REPLY_NIL;
	return r;
}

/* An array of the n replies in items (taken over). */
static inline redisReply *r_array(size_t n, redisReply **items)
{
	redisReply *r = calloc(1, sizeof(*r));
	r->type = REDIS_REPLY_ARRAY;
	r->elements = n;
	r->element = calloc(n ? n : 1, sizeof(*r->element));
	for (size_t i = 0; i < n; i++)
		r->element[i] = items[i];
	return r;
}

/* The same from n redisReply * arguments. */
static inline redisReply *r_arr(size_t n, ...)
{
	va_list ap;
	redisReply *items[64];

	va_start(ap, n);
	for (size_t i = 0; i < n && i < 64; i++)
		items[i] = va_arg(ap, redisReply *);
	va_end(ap);
	return r_array(n < 64 ? n : 64, items);
}

#endif
