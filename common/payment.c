/* payment.c - payment states, the transition table, the step mapping and the
 * webhook event type of each state: shared by the api, worker and summary. */
#include "common/payment.h"

#include <string.h>

static const char *const state_names[PAY_STATE_COUNT] = {
	[PAY_PENDING] = "PENDING",
	[PAY_ONRAMP_PENDING] = "ONRAMP_PENDING",
	[PAY_ONRAMP_COMPLETE] = "ONRAMP_COMPLETE",
	[PAY_OFFRAMP_PENDING] = "OFFRAMP_PENDING",
	[PAY_COMPLETED] = "COMPLETED",
	[PAY_FAILED] = "FAILED",
	[PAY_REFUND_PENDING] = "REFUND_PENDING",
	[PAY_REFUNDED] = "REFUNDED",
};

static const char *const event_types[PAY_STATE_COUNT] = {
	[PAY_PENDING] = "payment.pending",
	[PAY_ONRAMP_PENDING] = "payment.onramp_pending",
	[PAY_ONRAMP_COMPLETE] = "payment.onramp_complete",
	[PAY_OFFRAMP_PENDING] = "payment.offramp_pending",
	[PAY_COMPLETED] = "payment.completed",
	[PAY_FAILED] = "payment.failed",
	[PAY_REFUND_PENDING] = "payment.refund_pending",
	[PAY_REFUNDED] = "payment.refunded",
};

/* SPEC 5:
 *   PENDING -> ONRAMP_PENDING -> ONRAMP_COMPLETE -> OFFRAMP_PENDING -> COMPLETED
 *      \            \                                  \
 *       -> FAILED    -> FAILED                          -> REFUND_PENDING -> REFUNDED
 * ONRAMP_COMPLETE -> REFUND_PENDING covers an off-ramp that cannot even be
 * started once the USDC is bought (permanent refusal, attempts exhausted). */
static const bool edges[PAY_STATE_COUNT][PAY_STATE_COUNT] = {
	[PAY_PENDING] = {[PAY_ONRAMP_PENDING] = true, [PAY_FAILED] = true},
	[PAY_ONRAMP_PENDING] = {[PAY_ONRAMP_COMPLETE] = true, [PAY_FAILED] = true},
	[PAY_ONRAMP_COMPLETE] = {[PAY_OFFRAMP_PENDING] = true, [PAY_REFUND_PENDING] = true},
	[PAY_OFFRAMP_PENDING] = {[PAY_COMPLETED] = true, [PAY_REFUND_PENDING] = true},
	[PAY_REFUND_PENDING] = {[PAY_REFUNDED] = true},
};

static const char *const step_names[STEP_COUNT] = {
	[STEP_ONRAMP_INITIATE] = "onramp_initiate",
	[STEP_ONRAMP_POLL] = "onramp_poll",
	[STEP_OFFRAMP_INITIATE] = "offramp_initiate",
	[STEP_OFFRAMP_POLL] = "offramp_poll",
	[STEP_REFUND] = "refund",
};

static const enum pay_state step_states[STEP_COUNT] = {
	[STEP_ONRAMP_INITIATE] = PAY_PENDING,
	[STEP_ONRAMP_POLL] = PAY_ONRAMP_PENDING,
	[STEP_OFFRAMP_INITIATE] = PAY_ONRAMP_COMPLETE,
	[STEP_OFFRAMP_POLL] = PAY_OFFRAMP_PENDING,
	[STEP_REFUND] = PAY_REFUND_PENDING,
};

const char *pay_state_name(enum pay_state s)
{
	return (unsigned)s < PAY_STATE_COUNT ? state_names[s] : "UNKNOWN";
}

int pay_state_parse(const char *name, enum pay_state *out)
{
	for (int i = 0; name && i < PAY_STATE_COUNT; i++) {
		if (strcmp(state_names[i], name) == 0) {
			*out = (enum pay_state)i;
			return 0;
		}
	}
	return -1;
}

bool pay_state_terminal(enum pay_state s)
{
	return s == PAY_COMPLETED || s == PAY_FAILED || s == PAY_REFUNDED;
}

bool pay_transition_allowed(enum pay_state from, enum pay_state to)
{
	return (unsigned)from < PAY_STATE_COUNT && (unsigned)to < PAY_STATE_COUNT &&
	       edges[from][to];
}

const char *pay_event_type(enum pay_state s)
{
	return (unsigned)s < PAY_STATE_COUNT ? event_types[s] : "payment.unknown";
}

int pay_event_parse(const char *type, enum pay_state *out)
{
	for (int i = 0; type && i < PAY_STATE_COUNT; i++) {
		if (strcmp(event_types[i], type) == 0) {
			*out = (enum pay_state)i;
			return 0;
		}
	}
	return -1;
}

const char *pay_step_name(enum pay_step s)
{
	return (unsigned)s < STEP_COUNT ? step_names[s] : "unknown";
}

int pay_step_parse(const char *name, enum pay_step *out)
{
	for (int i = 0; name && i < STEP_COUNT; i++) {
		if (strcmp(step_names[i], name) == 0) {
			*out = (enum pay_step)i;
			return 0;
		}
	}
	return -1;
}

enum pay_state pay_step_state(enum pay_step s)
{
	return step_states[s];
}

int pay_state_step(enum pay_state s)
{
	for (int i = 0; i < STEP_COUNT; i++)
		if (step_states[i] == s)
			return i;
	return -1;
}

enum pay_state pay_give_up_state(enum pay_state s)
{
	return s == PAY_PENDING || s == PAY_ONRAMP_PENDING ? PAY_FAILED : PAY_REFUND_PENDING;
}
