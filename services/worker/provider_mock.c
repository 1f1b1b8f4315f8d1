/* provider_mock.c - a deterministic provider for development and tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/evloop.h"
#include "provider.h"

struct mock {
	struct provider base;
	struct event_base *evb;
	struct mock_opts o;
};

struct mock_call {
	prov_cb cb;
	void *arg;
	struct prov_result res;
};

/* splitmix64: a well-mixed 64-bit hash step. */
static unsigned long long mix(unsigned long long x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* A number fixed by (seed, payment, leg, salt): the same on every worker. */
static unsigned long long draw(const struct mock *m, const char *id, int leg, int salt)
{
	unsigned long long h = 1469598103934665603ULL; /* FNV-1a of the id */
	for (const char *c = id; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ULL;
	return mix(m->o.seed ^ mix(h ^ ((unsigned long long)leg << 32) ^ (unsigned long long)salt));
}

static long long settle_ms(const struct mock *m, const char *id, int leg)
{
	long long span = (long long)m->o.settle_max_ms - m->o.settle_min_ms + 1;
	return m->o.settle_min_ms + (long long)(draw(m, id, leg, 1) % (unsigned long long)span);
}

static bool leg_fails(const struct mock *m, const struct prov_payment *p, int leg)
{
	static const char *const forced[] = {"mock:fail_onramp", "mock:fail_offramp"};
	if (p->destination_account && strcmp(p->destination_account, forced[leg]) == 0)
		return true;
	/* fail_rate in [0, 1] against a uniform draw in [0, 1): a probability,
	 * never an amount. */
	double u = (double)(draw(m, p->id, leg, 2) >> 11) / 9007199254740992.0;
	return u < m->o.fail_rate;
}

static void deliver(void *arg)
{
	struct mock_call *c = arg;
	c->cb(c->arg, &c->res);
	free(c);
}

/* Polls a leg initiated at the time its reference carries. */
static void poll_leg(const struct mock *m, const struct prov_payment *p, const char *ref, int leg,
		     struct prov_result *r)
{
	const char *t = ref ? strrchr(ref, '_') : NULL;
	long long started = t ? strtoll(t + 1, NULL, 10) : 0;
	if (!t || started <= 0) {
		r->outcome = PROV_FAILED;
		snprintf(r->failure_code, sizeof(r->failure_code), "PROVIDER_ERROR");
		snprintf(r->error, sizeof(r->error), "unknown reference %s", ref ? ref : "(none)");
		return;
	}
	if (clock_wall_ms() < started + settle_ms(m, p->id, leg)) {
		r->outcome = PROV_PENDING;
		return;
	}
	if (leg_fails(m, p, leg)) {
		r->outcome = PROV_FAILED;
		snprintf(r->failure_code, sizeof(r->failure_code), "%s",
			 leg == 0 ? "ONRAMP_FAILED" : "OFFRAMP_FAILED");
		snprintf(r->error, sizeof(r->error), "mock %s leg failed",
			 leg == 0 ? "on-ramp" : "off-ramp");
		return;
	}
	r->outcome = PROV_OK;
}

static int mock_call(struct provider *pv, enum prov_op op, const struct prov_payment *p, prov_cb cb,
		     void *arg)
{
	struct mock *m = (struct mock *)pv;
	struct mock_call *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	c->cb = cb;
	c->arg = arg;
	switch (op) {
	case OP_INITIATE_ONRAMP:
	case OP_INITIATE_OFFRAMP:
		c->res.outcome = PROV_OK;
		snprintf(c->res.ref, sizeof(c->res.ref), "mock_%s_%lld",
			 op == OP_INITIATE_ONRAMP ? "on" : "off", (long long)clock_wall_ms());
		break;
	case OP_POLL_ONRAMP:
		poll_leg(m, p, p->onramp_ref, 0, &c->res);
		break;
	case OP_POLL_OFFRAMP:
		poll_leg(m, p, p->offramp_ref, 1, &c->res);
		break;
	case OP_REFUND:
		if (p->destination_account &&
		    strcmp(p->destination_account, "mock:fail_refund") == 0) {
			c->res.outcome = PROV_FAILED;
			snprintf(c->res.failure_code, sizeof(c->res.failure_code), "REFUND_FAILED");
			snprintf(c->res.error, sizeof(c->res.error), "mock refund refused");
		} else {
			c->res.outcome = PROV_OK;
			snprintf(c->res.ref, sizeof(c->res.ref), "mock_refund_%lld",
				 (long long)clock_wall_ms());
		}
		break;
	}
	/* Never answer from inside the call. */
	if (evloop_once(m->evb, 0, deliver, c) != 0) {
		free(c);
		return -1;
	}
	return 0;
}

static void mock_free(struct provider *pv)
{
	free(pv);
}

static const struct provider_ops mock_ops = {"mock", mock_call, mock_free};

struct provider *provider_mock_new(struct event_base *base, const struct mock_opts *o)
{
	struct mock *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->base.ops = &mock_ops;
	m->evb = base;
	m->o = *o;
	if (m->o.settle_max_ms < m->o.settle_min_ms)
		m->o.settle_max_ms = m->o.settle_min_ms;
	return &m->base;
}
