/* ids.h - resource ids from OpenSSL's CSPRNG: "quote_" / "pay_" / "evt_" + UUIDv4. */
#ifndef COMMON_IDS_H
#define COMMON_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for the longest prefix we use plus '_' plus a 36-char UUID and a NUL. */
#define ID_MAX 64

/* Writes prefix + "_" + a random lower-case RFC 4122 version-4 UUID into out
 * (ID_MAX bytes). Returns 0, or -1 if the CSPRNG fails (logged). */
int id_new(const char *prefix, char out[ID_MAX]) __attribute__((warn_unused_result));

/* True when s is exactly prefix + "_" + a canonical lower-case UUID
 * (8-4-4-4-12 hex digits). Used to reject malformed ids before any query. */
bool id_valid(const char *prefix, const char *s);

/* FNV-1a of a NUL-terminated string: hash-table buckets, not security. */
uint64_t id_hash(const char *s);

/* Fills buf with n random bytes from the CSPRNG. Returns 0 or -1. */
int id_random_bytes(void *buf, size_t n) __attribute__((warn_unused_result));

#endif
