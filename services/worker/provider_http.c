/* provider_http.c - a real ramp provider over HTTP: the JSON REST contract of
 * docs/providers.md, spoken through the libcurl-multi client on the loop.
 * Every initiate carries an Idempotency-Key derived from the payment id and
 * the leg, so a retried initiate never charges twice. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/httpc.h"
#include "common/log.h"
#include "provider.h"

struct hprov {
	struct provider base;
	struct httpc *client;
	char *base_url;
	int timeout_ms;
};

struct hcall {
	enum prov_op op;
	prov_cb cb;
	void *arg;
};

static const char *const op_names[] = {"initiate_onramp", "poll_onramp", "initiate_offramp",
				       "poll_offramp", "refund"};

/* Retry-After in seconds (the only form providers use in practice), as ms. */
static unsigned long long retry_after_ms(const struct httpc_response *r)
{
	const char *v = httpc_header(r, "Retry-After");
	char *end;
	long long s = v ? strtoll(v, &end, 10) : -1;
	return v && end != v && s >= 0 && s < 86400 ? (unsigned long long)s * 1000u : 0;
}

static void done(void *arg, const struct httpc_response *r)
{
	struct hcall *c = arg;
	struct prov_result res = {0};
	json_t *body = NULL;

	if (!r->status) {
		res.outcome = PROV_RETRY;
		snprintf(res.error, sizeof(res.error), "%s: %s", op_names[c->op],
			 r->error ? r->error : "no response");
		goto out;
	}
	if (r->status == 408 || r->status == 425 || r->status == 429 || r->status >= 500) {
		res.outcome = PROV_RETRY;
		res.retry_after_ms = retry_after_ms(r);
		snprintf(res.error, sizeof(res.error), "%s: HTTP %ld", op_names[c->op], r->status);
		goto out;
	}
	body = json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
	if (r->status >= 400) {
		/* The provider refused: invalid account, limits, compliance... */
		const char *why = json_string_value(json_object_get(body, "error"));
		res.outcome = PROV_FAILED;
		snprintf(res.failure_code, sizeof(res.failure_code), "PROVIDER_REJECTED");
		snprintf(res.error, sizeof(res.error), "%s: HTTP %ld%s%s", op_names[c->op],
			 r->status, why ? ": " : "", why ? why : "");
		goto out;
	}
	const char *id = json_string_value(json_object_get(body, "id"));
	const char *status = json_string_value(json_object_get(body, "status"));
	if (!json_is_object(body) || !status || !id || !*id || strlen(id) >= sizeof(res.ref)) {
		/* A 2xx we cannot read: the provider misbehaves; try again. */
		res.outcome = PROV_RETRY;
		snprintf(res.error, sizeof(res.error), "%s: unreadable response", op_names[c->op]);
		goto out;
	}
	snprintf(res.ref, sizeof(res.ref), "%s", id);
	if (strcmp(status, "failed") == 0) {
		const char *why = json_string_value(json_object_get(body, "failure_reason"));
		res.outcome = PROV_FAILED;
		snprintf(res.failure_code, sizeof(res.failure_code), "%s",
			 c->op <= OP_POLL_ONRAMP ? "ONRAMP_FAILED"
			 : c->op == OP_REFUND	 ? "REFUND_FAILED"
						 : "OFFRAMP_FAILED");
		snprintf(res.error, sizeof(res.error), "%s failed: %s", op_names[c->op],
			 why ? why : "no reason given");
	} else if (strcmp(status, "completed") == 0) {
		res.outcome = PROV_OK;
	} else if (strcmp(status, "pending") == 0) {
		/* An initiate that is accepted is OK (the leg then gets polled). */
		res.outcome = c->op == OP_INITIATE_ONRAMP || c->op == OP_INITIATE_OFFRAMP
				      ? PROV_OK
				      : PROV_PENDING;
	} else {
		res.outcome = PROV_RETRY;
		snprintf(res.error, sizeof(res.error), "%s: unknown status \"%.40s\"",
			 op_names[c->op], status);
	}
out:
	json_decref(body);
	c->cb(c->arg, &res);
	free(c);
}

/* Percent-encodes s as one URL path segment (RFC 3986 unreserved pass). */
static void path_escape(const char *s, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (; *s && o + 4 < len; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

static int hp_call(struct provider *pv, enum prov_op op, const struct prov_payment *p, prov_cb cb,
		   void *arg)
{
	struct hprov *h = (struct hprov *)pv;
	char url[1024], idem[160] = "";
	const char *ref = op == OP_POLL_ONRAMP ? p->onramp_ref : p->offramp_ref;
	json_t *body = NULL;
	char *text = NULL;
	int rc = -1;

	switch (op) {
	case OP_INITIATE_ONRAMP:
		snprintf(url, sizeof(url), "%s/v1/onramp", h->base_url);
		body = json_pack("{s:s, s:I, s:s, s:s, s:s}", "payment_id", p->id, "amount",
				 (json_int_t)p->amount, "currency", p->currency, "source_account",
				 p->source_account, "chain", p->chain);
		snprintf(idem, sizeof(idem), "Idempotency-Key: %s:onramp", p->id);
		break;
	case OP_INITIATE_OFFRAMP:
		snprintf(url, sizeof(url), "%s/v1/offramp", h->base_url);
		body = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s?}", "payment_id", p->id, "amount",
				 (json_int_t)p->payout_amount, "currency", p->payout_currency,
				 "destination_account", p->destination_account, "chain", p->chain,
				 "onramp_id", p->onramp_ref);
		snprintf(idem, sizeof(idem), "Idempotency-Key: %s:offramp", p->id);
		break;
	case OP_REFUND:
		snprintf(url, sizeof(url), "%s/v1/refunds", h->base_url);
		body = json_pack("{s:s, s:I, s:s, s:s, s:s?}", "payment_id", p->id, "amount",
				 (json_int_t)p->amount, "currency", p->currency, "source_account",
				 p->source_account, "onramp_id", p->onramp_ref);
		snprintf(idem, sizeof(idem), "Idempotency-Key: %s:refund", p->id);
		break;
	case OP_POLL_ONRAMP:
	case OP_POLL_OFFRAMP: {
		char esc[300];
		if (!ref)
			return -1;
		path_escape(ref, esc, sizeof(esc));
		snprintf(url, sizeof(url), "%s/v1/%s/%s", h->base_url,
			 op == OP_POLL_ONRAMP ? "onramp" : "offramp", esc);
		idem[0] = '\0';
		break;
	}
	}
	struct hcall *c = calloc(1, sizeof(*c));
	if (!c || (body && !(text = json_dumps(body, JSON_COMPACT))))
		goto out;
	c->op = op;
	c->cb = cb;
	c->arg = arg;
	const char *headers[] = {"Content-Type: application/json", "Accept: application/json",
				 idem[0] ? idem : NULL, NULL};
	struct httpc_request req = {.method = body ? "POST" : "GET",
				    .url = url,
				    .headers = headers,
				    .body = text,
				    .body_len = text ? strlen(text) : 0,
				    .timeout_ms = h->timeout_ms,
				    .max_response = 16384};
	rc = httpc_send(h->client, &req, done, c);
	if (rc == 0)
		c = NULL;
out:
	free(c);
	free(text);
	json_decref(body);
	return rc;
}

static void hp_free(struct provider *pv)
{
	struct hprov *h = (struct hprov *)pv;
	free(h->base_url);
	free(h);
}

static const struct provider_ops http_ops = {"http", hp_call, hp_free};

struct provider *provider_http_new(struct event_base *base, struct httpc *client,
				   const char *base_url, int timeout_ms)
{
	(void)base;
	struct hprov *h = calloc(1, sizeof(*h));
	if (!h || !(h->base_url = strdup(base_url))) {
		free(h);
		return NULL;
	}
	size_t n = strlen(h->base_url);
	while (n > 0 && h->base_url[n - 1] == '/')
		h->base_url[--n] = '\0'; /* "http://p/" and "http://p" alike */
	h->base.ops = &http_ops;
	h->client = client;
	h->timeout_ms = timeout_ms;
	return &h->base;
}
