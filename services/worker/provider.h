/* provider.h - the on/off-ramp provider interface (SPEC 5): every call is
 * asynchronous on the loop and calls back exactly once, never from inside
 * the call. Implementations: provider_mock.c, provider_http.c. */
#ifndef WORKER_PROVIDER_H
#define WORKER_PROVIDER_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;

enum prov_outcome {
	PROV_OK,      /* initiated / settled / refunded */
	PROV_PENDING, /* poll: not settled yet */
	PROV_FAILED,  /* permanent: the provider refused or the leg failed */
	PROV_RETRY,   /* transient: timeout, 5xx, connection error; try again */
};

struct prov_result {
	enum prov_outcome outcome;
	char ref[96];		 /* initiate: the provider's reference */
	char error[160];	 /* FAILED/RETRY: why */
	char failure_code[48];	 /* FAILED: machine code for payments.failure_code */
	uint64_t retry_after_ms; /* RETRY: the provider's hint, 0 = none */
};

/* What a provider needs to know about a payment (all borrowed for the call). */
struct prov_payment {
	const char *id;
	long long amount;
	const char *currency;
	long long payout_amount;
	const char *payout_currency;
	const char *source_account;
	const char *destination_account;
	const char *chain;
	const char *onramp_ref;	 /* set once the on-ramp was initiated */
	const char *offramp_ref; /* set once the off-ramp was initiated */
};

typedef void (*prov_cb)(void *arg, const struct prov_result *r);

enum prov_op {
	OP_INITIATE_ONRAMP,
	OP_POLL_ONRAMP,
	OP_INITIATE_OFFRAMP,
	OP_POLL_OFFRAMP,
	OP_REFUND
};

struct provider;
struct provider_ops {
	const char *name;
	/* Starts op for p. Returns 0 (cb will run once) or -1 (refused). */
	int (*call)(struct provider *pv, enum prov_op op, const struct prov_payment *p, prov_cb cb,
		    void *arg);
	void (*free)(struct provider *pv);
};

struct provider {
	const struct provider_ops *ops;
};

/* The mock: deterministic for a seed. Each leg settles settle_min..max ms
 * after it was initiated (the time is carried in the reference, so any
 * worker can poll it) and fails permanently with probability fail_rate.
 * Test accounts force outcomes, like a card processor's test cards: a
 * destination_account of "mock:fail_onramp", "mock:fail_offramp" or
 * "mock:fail_refund" fails that leg. */
struct mock_opts {
	int settle_min_ms, settle_max_ms;
	double fail_rate;
	unsigned long long seed;
};
struct provider *provider_mock_new(struct event_base *base, const struct mock_opts *o);

struct httpc;
/* The http provider: the JSON REST contract of docs/providers.md. */
struct provider *provider_http_new(struct event_base *base, struct httpc *client,
				   const char *base_url, int timeout_ms);

static inline int provider_call(struct provider *pv, enum prov_op op, const struct prov_payment *p,
				prov_cb cb, void *arg)
{
	return pv->ops->call(pv, op, p, cb, arg);
}

static inline void provider_free(struct provider *pv)
{
	if (pv)
		pv->ops->free(pv);
}

#endif
