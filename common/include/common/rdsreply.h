/* rdsreply.h - reading hiredis replies without walking redisReply trees by
 * hand: strings and integers, flat field lists (HGETALL, a stream entry's
 * fields), the entries of an XREAD reply, and XINFO GROUPS. Pure; every
 * returned string is borrowed from the reply (valid until its callback
 * returns). */
#ifndef COMMON_RDSREPLY_H
#define COMMON_RDSREPLY_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

/* A string or status reply's text, else NULL. NULL-safe. */
const char *rr_str(const redisReply *r);

/* An integer reply, or a string holding a plain decimal integer (optional
 * '-'): true and *out; else false (*out untouched). NULL-safe. */
bool rr_int(const redisReply *r, long long *out) __attribute__((warn_unused_result));

/* In a flat [k1, v1, k2, v2, ...] array: the string value of field name, or
 * NULL (absent, not a string, not an array). */
const char *rr_field(const redisReply *flat, const char *name);

/* rr_field with the reply as a const void *: the getter ct_read takes. */
const char *rr_field_get(const void *flat, const char *name);

/* The string pairs of a flat array into keys/vals (at most max); pairs that
 * are not two strings are skipped. Returns how many. */
size_t rr_pairs(const redisReply *flat, const char **keys, const char **vals, size_t max);

/* Calls cb for each entry [id, [fields...]] of an XREAD/XRANGE-style reply
 * of ONE stream: [[stream, [[id, fields], ...]]] (XREAD), or the entries
 * array itself. Malformed entries are skipped. Returns the entries seen. */
typedef void (*rr_entry_cb)(void *arg, const char *id, const redisReply *fields);
size_t rr_xread_entries(const redisReply *reply, rr_entry_cb cb, void *arg);

/* One consumer group of XINFO GROUPS. */
struct rr_group {
	const char *name; /* borrowed; NULL if the reply had none */
	long long consumers, pending, lag;
	bool has_pending, has_lag; /* lag is nil when Redis cannot tell */
};

/* The groups of an XINFO GROUPS reply, at most max. Returns how many. */
size_t rr_xinfo_groups(const redisReply *reply, struct rr_group *out, size_t max);

/* The group named name: true and *out, else false. */
bool rr_xinfo_group(const redisReply *reply, const char *name, struct rr_group *out);

#endif
