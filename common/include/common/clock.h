/* clock.h - the two clocks rampart uses: monotonic for deadlines, wall for timestamps. */
#ifndef COMMON_CLOCK_H
#define COMMON_CLOCK_H

#include <stdint.h>

/* Microseconds on CLOCK_MONOTONIC: deadlines, latencies, rate limits. */
uint64_t clock_mono_us(void);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME): stored timestamps. */
int64_t clock_wall_ms(void);

#endif
