/* sign.c - Standard Webhooks signatures with OpenSSL's HMAC-SHA256. */
#include "common/sign.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

#define SIGN_MAX_KEY 256 /* bytes; Standard Webhooks keys are 24..64 */

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

int sign_secret_decode(const char *secret, unsigned char *key, size_t key_len)
{
	unsigned char buf[SIGN_MAX_KEY + 3];
	size_t n, pad = 0;

	if (!secret)
		return -1;
	if (strncmp(secret, "whsec_", 6) == 0)
		secret += 6;
	n = strlen(secret);
	if (n == 0 || n % 4 != 0 || n / 4 * 3 > sizeof(buf))
		return -1;
	/* EVP_DecodeBlock accepts stray whitespace and counts padding as
	 * zero bytes: check the alphabet ourselves and subtract the padding. */
	while (pad < 2 && secret[n - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < n - pad; i++)
		if (!b64_char(secret[i]))
			return -1;
	int got = EVP_DecodeBlock(buf, (const unsigned char *)secret, (int)n);
	if (got < 0 || (size_t)got < pad)
		return -1;
	got -= (int)pad;
	if (got == 0 || (size_t)got > key_len)
		return -1;
	memcpy(key, buf, (size_t)got);
	OPENSSL_cleanse(buf, sizeof(buf));
	return got;
}

int sign_webhook(const char *secret, const char *msg_id, long long timestamp, const char *body,
		 size_t body_len, char out[SIGN_WEBHOOK_MAX])
{
	unsigned char key[SIGN_MAX_KEY], mac[EVP_MAX_MD_SIZE];
	char ts[24];
	size_t mac_len = 0;
	EVP_MAC *hmac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	int rc = -1;
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
			       OSSL_PARAM_construct_end()};

	int key_len = sign_secret_decode(secret, key, sizeof(key));
	if (key_len < 0 || !msg_id || (!body && body_len > 0))
		return -1;
	int tl = snprintf(ts, sizeof(ts), "%lld", timestamp);
	hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
	if (!ctx || !EVP_MAC_init(ctx, key, (size_t)key_len, params) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)msg_id, strlen(msg_id)) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)tl) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
	    (body_len > 0 && !EVP_MAC_update(ctx, (const unsigned char *)body, body_len)) ||
	    !EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac))) {
		log_error("sign: HMAC-SHA256 failed");
		goto done;
	}
	memcpy(out, "v1,", 3);
	/* 32 bytes -> 44 characters + NUL: fits SIGN_WEBHOOK_MAX - 3. */
	EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)mac_len);
	rc = 0;
done:
	OPENSSL_cleanse(key, sizeof(key));
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(hmac);
	return rc;
}
