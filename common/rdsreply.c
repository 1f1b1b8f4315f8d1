/* rdsreply.c - typed reads of hiredis replies. */
#include "common/rdsreply.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *rr_str(const redisReply *r)
{
	return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) && r->str
		       ? r->str
		       : NULL;
}

bool rr_int(const redisReply *r, long long *out)
{
	if (r && r->type == REDIS_REPLY_INTEGER) {
		*out = r->integer;
		return true;
	}
	const char *s = rr_str(r);
	if (!s || !((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9')))
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (*end || errno)
		return false;
	*out = v;
	return true;
}

const char *rr_field(const redisReply *flat, const char *name)
{
	if (!flat || flat->type != REDIS_REPLY_ARRAY || !name)
		return NULL;
	for (size_t i = 0; i + 1 < flat->elements; i += 2) {
		const redisReply *k = flat->element[i], *v = flat->element[i + 1];
		if (k && k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0)
			return v && v->type == REDIS_REPLY_STRING ? v->str : NULL;
	}
	return NULL;
}

const char *rr_field_get(const void *flat, const char *name)
{
	return rr_field(flat, name);
}

size_t rr_pairs(const redisReply *flat, const char **keys, const char **vals, size_t max)
{
	size_t n = 0;
	if (!flat || flat->type != REDIS_REPLY_ARRAY)
		return 0;
	for (size_t i = 0; i + 1 < flat->elements && n < max; i += 2) {
		const redisReply *k = flat->element[i], *v = flat->element[i + 1];
		if (!k || !v || k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		keys[n] = k->str;
		vals[n] = v->str;
		n++;
	}
	return n;
}

size_t rr_xread_entries(const redisReply *reply, rr_entry_cb cb, void *arg)
{
	const redisReply *entries = reply;
	size_t seen = 0;
	if (!reply || reply->type != REDIS_REPLY_ARRAY)
		return 0;
	/* XREAD: [[stream, entries]]; XRANGE: entries. */
	if (reply->elements == 1 && reply->element[0]->type == REDIS_REPLY_ARRAY &&
	    reply->element[0]->elements == 2 &&
	    reply->element[0]->element[0]->type == REDIS_REPLY_STRING &&
	    reply->element[0]->element[1]->type == REDIS_REPLY_ARRAY)
		entries = reply->element[0]->element[1];
	for (size_t i = 0; i < entries->elements; i++) {
		const redisReply *e = entries->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING ||
		    e->element[1]->type != REDIS_REPLY_ARRAY)
			continue;
		seen++;
		cb(arg, e->element[0]->str, e->element[1]);
	}
	return seen;
}

size_t rr_xinfo_groups(const redisReply *reply, struct rr_group *out, size_t max)
{
	size_t n = 0;
	if (!reply || reply->type != REDIS_REPLY_ARRAY)
		return 0;
	for (size_t g = 0; g < reply->elements && n < max; g++) {
		const redisReply *kv = reply->element[g];
		struct rr_group *o = &out[n];
		if (!kv || kv->type != REDIS_REPLY_ARRAY)
			continue;
		memset(o, 0, sizeof(*o));
		for (size_t i = 0; i + 1 < kv->elements; i += 2) {
			const char *k = rr_str(kv->element[i]);
			const redisReply *v = kv->element[i + 1];
			if (!k)
				continue;
			if (strcmp(k, "name") == 0)
				o->name = rr_str(v);
			else if (strcmp(k, "consumers") == 0 && !rr_int(v, &o->consumers))
				o->consumers = 0;
			else if (strcmp(k, "pending") == 0)
				o->has_pending = rr_int(v, &o->pending);
			else if (strcmp(k, "lag") == 0)
				o->has_lag = rr_int(v, &o->lag);
		}
		n++;
	}
	return n;
}

bool rr_xinfo_group(const redisReply *reply, const char *name, struct rr_group *out)
{
	struct rr_group all[16];
	size_t n = rr_xinfo_groups(reply, all, sizeof(all) / sizeof(all[0]));
	for (size_t i = 0; i < n; i++)
		if (all[i].name && strcmp(all[i].name, name) == 0) {
			*out = all[i];
			return true;
		}
	return false;
}
