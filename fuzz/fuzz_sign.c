/* fuzz_sign.c - webhook signing (common/sign.c): sign_secret_decode and
 * sign_webhook against an independent HMAC-SHA256 with OpenSSL's one-shot
 * HMAC(). Input: secret NUL msg_id NUL 8 bytes of timestamp, then the
 * body. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "common/log.h"
#include "common/sign.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz", LOG_ERROR, true);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul1 = memchr(data, 0, size);
	if (nul1 == NULL)
		return 0;
	const uint8_t *rest = nul1 + 1;
	const uint8_t *nul2 = memchr(rest, 0, size - (size_t)(rest - data));
	if (nul2 == NULL || (size_t)(data + size - (nul2 + 1)) < 8)
		return 0;
	const char *secret = (const char *)data, *msg_id = (const char *)rest;
	const uint8_t *p = nul2 + 1;
	long long ts = 0;
	for (int i = 0; i < 8; i++)
		ts = (long long)((unsigned long long)ts << 8 | p[i]);
	const char *body = (const char *)p + 8;
	size_t body_len = size - (size_t)(p + 8 - data);

	unsigned char key[256];
	int klen = sign_secret_decode(secret, key, sizeof(key));
	FUZZ_CHECK(klen == -1 || (klen >= 1 && klen <= (int)sizeof(key)));

	char sig[SIGN_WEBHOOK_MAX];
	memset(sig, 'x', sizeof(sig));
	int rc = sign_webhook(secret, msg_id, ts, body, body_len, sig);
	if (klen < 0) {
		FUZZ_CHECK(rc != 0);
		return 0;
	}
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(strncmp(sig, "v1,", 3) == 0 && strlen(sig) == 3 + 44);

	/* The same MAC computed independently. */
	char tsbuf[32];
	int tl = snprintf(tsbuf, sizeof(tsbuf), "%lld", ts);
	size_t mlen = strlen(msg_id), total = mlen + 1 + (size_t)tl + 1 + body_len;
	unsigned char *msg = malloc(total > 0 ? total : 1), mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	unsigned char b64[100];
	if (msg == NULL)
		return 0;
	memcpy(msg, msg_id, mlen);
	msg[mlen] = '.';
	memcpy(msg + mlen + 1, tsbuf, (size_t)tl);
	msg[mlen + 1 + (size_t)tl] = '.';
	if (body_len > 0)
		memcpy(msg + mlen + 2 + (size_t)tl, body, body_len);
	FUZZ_CHECK(HMAC(EVP_sha256(), key, klen, msg, total, mac, &maclen) != NULL && maclen == 32);
	EVP_EncodeBlock(b64, mac, (int)maclen);
	FUZZ_CHECK(strcmp(sig + 3, (const char *)b64) == 0);
	free(msg);
	return 0;
}
