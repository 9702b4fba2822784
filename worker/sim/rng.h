/*
 * rng.h - the simulators' pseudo-random numbers: splitmix64 and the
 * uniform draws built on it.
 *
 * A generator is one uint64_t of state, owned by the caller (one per
 * swarm in both simulators) and advanced by every draw; the same seed
 * gives the same stream on every machine (integer arithmetic and one
 * exact scaling to double). The golden recordings and the scenario scores
 * are made of these streams: changing any function here changes them.
 * Header-only (static inline), no state of its own, thread-safe as long
 * as a state is not shared between threads.
 */
#ifndef SM_RNG_H
#define SM_RNG_H

#include <stdint.h>

/* The next 64 random bits of *s (splitmix64). */
static inline uint64_t sm_rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The starting state of stream n (a swarm's number) of the run seeded
 * with seed: independent streams from one seed. */
static inline uint64_t sm_rng_stream(uint64_t seed, uint32_t n)
{
    uint64_t base = sm_rng_next(&seed);
    uint64_t k = base ^ ((uint64_t)(n + 1) * 0xd1b54a32d192ed03ULL);
    return sm_rng_next(&k);
}

/* Uniform in [0, 1), 53 bits. */
static inline double sm_rng_uni(uint64_t *s)
{
    return (double)(sm_rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform in [lo, hi). */
static inline double sm_rng_range(uint64_t *s, double lo, double hi)
{
    return lo + (hi - lo) * sm_rng_uni(s);
}

/* Uniform integer in [0, n) (modulo, so very slightly biased for n not a
 * power of two); 0 without a draw when n is 0. */
static inline uint32_t sm_rng_below(uint64_t *s, uint32_t n)
{
    return n ? (uint32_t)(sm_rng_next(s) % n) : 0;
}

#endif
