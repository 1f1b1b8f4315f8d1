/* retry.c - the webhook retry schedule: when to try a delivery again (the
 * schedule's step, jitter, a Retry-After honoured). Pure, so unit-tested. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "webhook.h"

#define RETRY_AFTER_MAX_S 86400

long long retry_delay_ms(const long long *schedule, size_t n, int attempt, long long retry_after_s,
			 double jitter)
{
	if (attempt < 1 || (size_t)attempt > n)
		return -1;
	long long step = schedule[attempt - 1];
	if (retry_after_s > step)
		step = retry_after_s;
	if (jitter < 0 || jitter >= 1)
		jitter = 0;
	/* Jitter only adds, so a Retry-After is always honoured. */
	return step * 1000 + (long long)((double)step * 100.0 * jitter);
}

long long retry_after_parse(const char *v, long long now_s)
{
	char *end;
	if (!v)
		return -1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v >= '0' && *v <= '9') {
		long long s = strtoll(v, &end, 10);
		while (*end == ' ' || *end == '\t')
			end++;
		if (*end)
			return -1;
		return s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : s;
	}
	time_t t = curl_getdate(v, NULL); /* an HTTP-date; pure parsing */
	if (t == (time_t)-1)
		return -1;
	long long d = (long long)t - now_s;
	if (d < 0)
		d = 0;
	return d > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : d;
}
