/* admission.h - refuse new work while a queue stands (CoDel-style).
 *
 * A queue that drains now and then is healthy; one whose *shortest* wait
 * stays above a target for a whole interval is a standing queue, and every
 * request added to it only waits longer (CoDel, Nichols and Jacobson, 2012;
 * used for request queues as in "Fail at Scale", ACM Queue 2015). The owner
 * of a queue reports each finished request's sojourn (submit to result);
 * admission_refuse() then says whether new requests should be refused now.
 *
 * The state changes once per interval. At the end of an interval the
 * queue is "standing" if requests have waited over the target for a whole
 * interval: every sojourn reported in it exceeded the target, and so has
 * every one reported since the first of that unbroken run, at least an
 * interval ago. When nothing finished in it, the oldest unfinished request
 * decides: standing once it has waited target + interval (a stalled
 * server). So a stall shorter than target + interval, such as a slow
 * fsync, refuses nobody: its waiters are answered when it ends, the
 * first of them late, those behind them on time. A refusing queue reopens
 * at most two intervals after its backlog has drained, and one that was
 * open admits at most two intervals' worth of requests into a queue that
 * has just begun to stand. Pure state: no clock of its own, no I/O; not
 * thread-safe (one per event loop). */
#ifndef COMMON_ADMISSION_H
#define COMMON_ADMISSION_H

#include <stdbool.h>
#include <stdint.h>

struct admission {
	uint64_t target_us;   /* 0: never refuse */
	uint64_t interval_us; /* > 0 */
	uint64_t interval_end_us;
	uint64_t min_us;	 /* shortest sojourn in this interval; UINT64_MAX: none yet */
	bool above;		 /* the last report was over the target */
	uint64_t above_since_us; /* first report of that run over the target */
	bool standing;		 /* the verdict of the last complete interval */
};

/* target_ms 0 turns admission off; interval_ms < 1 is taken as 1. */
void admission_init(struct admission *a, int target_ms, int interval_ms);

/* A request that waited sojourn_us (submit to result) finished at now_us. */
void admission_observe(struct admission *a, uint64_t now_us, uint64_t sojourn_us);

/* True while new requests should be refused. oldest_age_us: how long the
 * oldest unfinished request has waited (0: none). */
bool admission_refuse(struct admission *a, uint64_t now_us, uint64_t oldest_age_us);

#endif
