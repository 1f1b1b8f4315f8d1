/* rnd.c - per-thread splitmix64 seeded from the CSPRNG (see rnd.h). */
#include "common/rnd.h"

#include <stdbool.h>

#include "common/clock.h"
#include "common/ids.h"

static _Thread_local uint64_t state;
static _Thread_local bool seeded;

void rnd_seed(uint64_t seed)
{
	state = seed;
	seeded = true;
}

uint64_t rnd_u64(void)
{
	if (!seeded) {
		uint64_t s;
		/* Should the CSPRNG fail, the clock and the state's address
		 * still tell threads and processes apart. */
		if (id_random_bytes(&s, sizeof(s)) != 0)
			s = clock_mono_us() ^ (uint64_t)(uintptr_t)&state;
		rnd_seed(s);
	}
	/* splitmix64 (Steele, Lea, Flood 2014) */
	uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t rnd_below(uint64_t n)
{
	if (n == 0)
		return 0;
	/* Rejection sampling: no modulo bias. */
	uint64_t limit = UINT64_MAX - UINT64_MAX % n;
	uint64_t v;
	do
		v = rnd_u64();
	while (v >= limit);
	return v % n;
}
