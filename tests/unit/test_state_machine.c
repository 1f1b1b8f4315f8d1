/* test_state_machine.c - the payment transition table is exactly SPEC 5's
 * diagram, and every step maps to the state it advances. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include "common/payment.h"

static void test_edges_are_the_spec(void **state)
{
	/* Every allowed edge, listed by hand from SPEC 5. */
	static const enum pay_state allowed[][2] = {
		{PAY_PENDING, PAY_ONRAMP_PENDING},
		{PAY_PENDING, PAY_FAILED},
		{PAY_ONRAMP_PENDING, PAY_ONRAMP_COMPLETE},
		{PAY_ONRAMP_PENDING, PAY_FAILED},
		{PAY_ONRAMP_COMPLETE, PAY_OFFRAMP_PENDING},
		{PAY_ONRAMP_COMPLETE, PAY_REFUND_PENDING},
		{PAY_OFFRAMP_PENDING, PAY_COMPLETED},
		{PAY_OFFRAMP_PENDING, PAY_REFUND_PENDING},
		{PAY_REFUND_PENDING, PAY_REFUNDED},
	};
	(void)state;
	int count = 0;
	for (int from = 0; from < PAY_STATE_COUNT; from++) {
		for (int to = 0; to < PAY_STATE_COUNT; to++) {
			bool want = false;
			for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
				if (allowed[i][0] == (enum pay_state)from &&
				    allowed[i][1] == (enum pay_state)to)
					want = true;
			if (pay_transition_allowed(from, to) != want)
				fail_msg("%s -> %s: allowed=%d, want %d", pay_state_name(from),
					 pay_state_name(to), !want, want);
			count += want;
		}
	}
	assert_int_equal(count, 9);
	/* No way out of a terminal state, and no edge into PENDING. */
	for (int to = 0; to < PAY_STATE_COUNT; to++) {
		assert_false(pay_transition_allowed(PAY_COMPLETED, to));
		assert_false(pay_transition_allowed(PAY_FAILED, to));
		assert_false(pay_transition_allowed(PAY_REFUNDED, to));
		assert_false(pay_transition_allowed(to, PAY_PENDING));
	}
	assert_false(pay_transition_allowed(PAY_STATE_COUNT, PAY_PENDING));
	assert_false(pay_transition_allowed(PAY_PENDING, PAY_STATE_COUNT));
}

static void test_names_round_trip(void **state)
{
	(void)state;
	for (int s = 0; s < PAY_STATE_COUNT; s++) {
		enum pay_state back;
		assert_int_equal(pay_state_parse(pay_state_name(s), &back), 0);
		assert_int_equal(back, s);
		/* event type = "payment." + lower-case state name */
		char want[64] = "payment.";
		size_t n = strlen(want);
		for (const char *c = pay_state_name(s); *c; c++)
			want[n++] = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
		want[n] = '\0';
		assert_string_equal(pay_event_type(s), want);
	}
	enum pay_state st;
	assert_int_equal(pay_state_parse("pending", &st), -1);
	assert_int_equal(pay_state_parse("", &st), -1);
	assert_int_equal(pay_state_parse(NULL, &st), -1);
	for (int s = 0; s < STEP_COUNT; s++) {
		enum pay_step back;
		assert_int_equal(pay_step_parse(pay_step_name(s), &back), 0);
		assert_int_equal(back, s);
	}
	enum pay_step sp;
	assert_int_equal(pay_step_parse("ONRAMP_POLL", &sp), -1);
}

static void test_steps_and_states(void **state)
{
	(void)state;
	assert_int_equal(pay_step_state(STEP_ONRAMP_INITIATE), PAY_PENDING);
	assert_int_equal(pay_step_state(STEP_ONRAMP_POLL), PAY_ONRAMP_PENDING);
	assert_int_equal(pay_step_state(STEP_OFFRAMP_INITIATE), PAY_ONRAMP_COMPLETE);
	assert_int_equal(pay_step_state(STEP_OFFRAMP_POLL), PAY_OFFRAMP_PENDING);
	assert_int_equal(pay_step_state(STEP_REFUND), PAY_REFUND_PENDING);
	for (int s = 0; s < PAY_STATE_COUNT; s++) {
		int step = pay_state_step(s);
		if (pay_state_terminal(s)) {
			assert_int_equal(step, -1);
		} else {
			assert_true(step >= 0);
			assert_int_equal(pay_step_state(step), s);
		}
	}
	assert_true(pay_state_terminal(PAY_COMPLETED));
	assert_true(pay_state_terminal(PAY_FAILED));
	assert_true(pay_state_terminal(PAY_REFUNDED));
	assert_false(pay_state_terminal(PAY_REFUND_PENDING));
}

/* Giving up before the on-ramp settled loses nothing: FAILED. After it,
 * the USDC exists and must be returned: REFUND_PENDING. */
static void test_give_up(void **state)
{
	(void)state;
	assert_int_equal(pay_give_up_state(PAY_PENDING), PAY_FAILED);
	assert_int_equal(pay_give_up_state(PAY_ONRAMP_PENDING), PAY_FAILED);
	assert_int_equal(pay_give_up_state(PAY_ONRAMP_COMPLETE), PAY_REFUND_PENDING);
	assert_int_equal(pay_give_up_state(PAY_OFFRAMP_PENDING), PAY_REFUND_PENDING);
	for (int s = 0; s < PAY_STATE_COUNT; s++)
		if (!pay_state_terminal(s) && s != PAY_REFUND_PENDING)
			assert_true(pay_transition_allowed(s, pay_give_up_state(s)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edges_are_the_spec),
		cmocka_unit_test(test_names_round_trip),
		cmocka_unit_test(test_steps_and_states),
		cmocka_unit_test(test_give_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
