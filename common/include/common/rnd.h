/* rnd.h - fast non-cryptographic random numbers for jitter and nonces: one
 * generator per thread (no shared state, no lock), seeded from the CSPRNG
 * on first use, so replicas and threads do not draw the same sequence. What
 * checksrc's ban on rand() points to. Not for secrets or ids: those are
 * ids.h's (OpenSSL's CSPRNG). */
#ifndef COMMON_RND_H
#define COMMON_RND_H

#include <stdint.h>

/* 64 random bits. */
uint64_t rnd_u64(void);

/* Uniform in [0, n); 0 when n is 0. */
uint64_t rnd_below(uint64_t n);

/* Seeds the calling thread's generator (tests: a fixed sequence). */
void rnd_seed(uint64_t seed);

#endif
