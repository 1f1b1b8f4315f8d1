/* sign.h - Standard Webhooks signatures (SPEC 8): HMAC-SHA256 over
 * "<msg_id>.<timestamp>.<body>", keyed with the base64-decoded part of a
 * "whsec_<base64>" secret, written as "v1,<base64>". Pure: no I/O. */
#ifndef COMMON_SIGN_H
#define COMMON_SIGN_H

#include <stddef.h>

/* "v1," + 44 base64 characters + NUL, with room to spare. */
#define SIGN_WEBHOOK_MAX 64

/* Decodes the key of a "whsec_<base64>" secret (the prefix is optional, as
 * in the reference libraries) into key (key_len bytes of room). Returns the
 * key length (>= 1), or -1 for a malformed secret or one too long. */
int sign_secret_decode(const char *secret, unsigned char *key, size_t key_len)
	__attribute__((warn_unused_result));

/* Writes "v1,<base64 HMAC-SHA256(key, msg_id "." timestamp "." body)>" into
 * out (SIGN_WEBHOOK_MAX bytes). body is body_len raw bytes (need not be
 * NUL-terminated). All arguments are borrowed. Returns 0, or -1 for a
 * malformed secret or an OpenSSL failure (logged). */
int sign_webhook(const char *secret, const char *msg_id, long long timestamp, const char *body,
		 size_t body_len, char out[SIGN_WEBHOOK_MAX]) __attribute__((warn_unused_result));

#endif
