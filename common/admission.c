/* admission.c - CoDel-style refusal of new work while a queue stands (admission.h). */
#include "common/admission.h"

void admission_init(struct admission *a, int target_ms, int interval_ms)
{
	a->target_us = target_ms > 0 ? (uint64_t)target_ms * 1000u : 0;
	a->interval_us = (uint64_t)(interval_ms > 0 ? interval_ms : 1) * 1000u;
	a->interval_end_us = 0;
	a->min_us = UINT64_MAX;
	a->above = false;
	a->above_since_us = 0;
	a->standing = false;
}

/* Closes the interval that ended by now_us, if any, and opens the next. */
static void roll(struct admission *a, uint64_t now_us, uint64_t oldest_age_us)
{
	if (a->interval_end_us == 0) { /* first call: start the first interval */
		a->interval_end_us = now_us + a->interval_us;
		return;
	}
	if (now_us < a->interval_end_us)
		return;
	/* The verdict is the last whole interval's: the queue stands once
	 * requests have waited over the target for a whole interval, as CoDel
	 * asks. Every report in it over the target, and the run of such
	 * reports begun at least an interval ago: the first answers after a
	 * short stall wait long, those just behind them do not, and an
	 * interval that ends between the two says nothing. If a whole interval
	 * has passed since the one that holds the reports, nothing finished in
	 * it: then the oldest waiting request decides, past target + interval.
	 * So a stall shorter than that refuses nobody. */
	if (a->min_us != UINT64_MAX && now_us - a->interval_end_us < a->interval_us)
		a->standing = a->min_us > a->target_us && a->above &&
			      now_us - a->above_since_us >= a->interval_us;
	else
		a->standing = oldest_age_us > a->target_us + a->interval_us;
	a->min_us = UINT64_MAX;
	a->interval_end_us = now_us + a->interval_us;
}

void admission_observe(struct admission *a, uint64_t now_us, uint64_t sojourn_us)
{
	if (a->target_us == 0)
		return;
	/* A report that ends an interval belongs to the next one: it did not
	 * exist while that interval's verdict could still be made. */
	if (a->interval_end_us != 0 && now_us >= a->interval_end_us)
		roll(a, now_us, sojourn_us);
	if (sojourn_us < a->min_us)
		a->min_us = sojourn_us;
	if (sojourn_us <= a->target_us)
		a->above = false;
	else if (!a->above) {
		a->above = true;
		a->above_since_us = now_us;
	}
	if (a->interval_end_us == 0)
		a->interval_end_us = now_us + a->interval_us;
}

bool admission_refuse(struct admission *a, uint64_t now_us, uint64_t oldest_age_us)
{
	if (a->target_us == 0)
		return false;
	roll(a, now_us, oldest_age_us);
	return a->standing;
}
