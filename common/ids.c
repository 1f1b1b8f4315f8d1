/* ids.c - prefixed UUIDv4 resource ids ("pay_<uuid>") drawn from OpenSSL's CSPRNG. */
#include "common/ids.h"

#include <limits.h>
#include <string.h>

#include <openssl/rand.h>

#define UUID_LEN 36

/* Positions of the dashes in the canonical 8-4-4-4-12 form. */
static bool uuid_dash_at(size_t i)
{
	return i == 8 || i == 13 || i == 18 || i == 23;
}

/* A prefix is a non-empty run of [a-z0-9] short enough that prefix_uuid fits ID_MAX. */
static bool prefix_ok(const char *prefix, size_t *len)
{
	size_t i, n;

	if (!prefix)
		return false;
	n = strlen(prefix);
	if (n == 0 || n + 1 + UUID_LEN + 1 > ID_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char c = prefix[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			return false;
	}
	*len = n;
	return true;
}

/* RAND_bytes takes an int length, so large requests go in chunks.
 * Does not log: common/ids has no logging dependency, the caller reports -1. */
int id_random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;

	if (!buf && n > 0)
		return -1;
	while (n > 0) {
		int chunk = n > INT_MAX ? INT_MAX : (int)n;

		if (RAND_bytes(p, chunk) != 1)
			return -1;
		p += chunk;
		n -= (size_t)chunk;
	}
	return 0;
}

/* out is caller-owned, ID_MAX bytes; on -1 (bad prefix or CSPRNG failure) it
 * holds an empty string. */
int id_new(const char *prefix, char out[ID_MAX])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	size_t plen, i, o, k = 0;

	if (!out)
		return -1;
	out[0] = '\0';
	if (!prefix_ok(prefix, &plen))
		return -1;
	if (id_random_bytes(b, sizeof(b)) != 0)
		return -1;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant 10xx */

	memcpy(out, prefix, plen);
	o = plen;
	out[o++] = '_';
	for (i = 0; i < UUID_LEN; i++) {
		if (uuid_dash_at(i)) {
			out[o++] = '-';
			continue;
		}
		out[o++] = hex[(k & 1) ? (b[k / 2] & 0x0f) : (b[k / 2] >> 4)];
		k++;
	}
	out[o] = '\0';
	return 0;
}

/* Checks shape only (prefix, dashes, lower-case hex), not the version nibble:
 * ids minted elsewhere stay valid as long as they are canonical. */
bool id_valid(const char *prefix, const char *s)
{
	size_t plen, i;

	if (!prefix || !s)
		return false;
	plen = strlen(prefix);
	if (plen == 0 || strncmp(s, prefix, plen) != 0 || s[plen] != '_')
		return false;
	s += plen + 1;
	for (i = 0; i < UUID_LEN; i++) {
		char c = s[i];

		if (uuid_dash_at(i)) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return false;
		}
	}
	return s[UUID_LEN] == '\0';
}

uint64_t id_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}
