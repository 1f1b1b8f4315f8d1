/* payment.h - the payment states of SPEC 5, their legal transitions
 * (a table, data), the job step that advances each state, and the webhook
 * event type each state emits. Pure; shared by the api and the worker. */
#ifndef COMMON_PAYMENT_H
#define COMMON_PAYMENT_H

#include <stdbool.h>

enum pay_state {
	PAY_PENDING,	     /* accepted; on-ramp not started */
	PAY_ONRAMP_PENDING,  /* fiat -> USDC initiated, waiting for settlement */
	PAY_ONRAMP_COMPLETE, /* USDC bought; off-ramp not started */
	PAY_OFFRAMP_PENDING, /* USDC -> payout fiat initiated, waiting */
	PAY_COMPLETED,	     /* terminal: payout delivered */
	PAY_FAILED,	     /* terminal: failed before any money moved */
	PAY_REFUND_PENDING,  /* off-ramp failed after the on-ramp: returning funds */
	PAY_REFUNDED,	     /* terminal: funds returned */
	PAY_STATE_COUNT
};

/* The job steps (stream field "step"). */
enum pay_step {
	STEP_ONRAMP_INITIATE,
	STEP_ONRAMP_POLL,
	STEP_OFFRAMP_INITIATE,
	STEP_OFFRAMP_POLL,
	STEP_REFUND,
	STEP_COUNT
};

/* "PENDING", ... (static). */
const char *pay_state_name(enum pay_state s);
/* Parses a state name; returns 0 or -1. */
int pay_state_parse(const char *name, enum pay_state *out) __attribute__((warn_unused_result));
/* True for COMPLETED, FAILED, REFUNDED. */
bool pay_state_terminal(enum pay_state s);
/* True when from -> to is an edge of SPEC 5's diagram. */
bool pay_transition_allowed(enum pay_state from, enum pay_state to);
/* "payment." + lower-case state, e.g. "payment.onramp_complete" (static). */
const char *pay_event_type(enum pay_state s);
/* The state whose event type is `type`; 0, or -1 for an unknown type. */
int pay_event_parse(const char *type, enum pay_state *out) __attribute__((warn_unused_result));

/* "onramp_initiate", ... (static). */
const char *pay_step_name(enum pay_step s);
int pay_step_parse(const char *name, enum pay_step *out) __attribute__((warn_unused_result));
/* The state a payment must be in for the step to apply; a job whose payment
 * is elsewhere is stale (already done, or superseded) and is dropped. */
enum pay_state pay_step_state(enum pay_step s);
/* The step that advances a non-terminal state; -1 for terminal states. */
int pay_state_step(enum pay_state s);
/* Before the on-ramp settled, giving up means FAILED (no money moved);
 * after it, the USDC must be returned: REFUND_PENDING. */
enum pay_state pay_give_up_state(enum pay_state s);

#endif
