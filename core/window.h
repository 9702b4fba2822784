/*
 * window.h - rolling-window building blocks for the detectors.
 *
 * Three small, allocation-free pieces, all plain old data so that a struct
 * holding them can be copied byte for byte into a persistence blob:
 *
 *   sm_ring     a time-bucketed ring of counters: SM_RING_SLOTS fixed slots
 *               at most, each slot_ms wide, together covering a window.
 *               Slots are evicted as event time advances (O(1) amortised;
 *               a jump longer than the window clears everything at once).
 *               Running sums make "how many in the window" O(1).
 *   sm_samples  a bounded ring of (ts, value, flags) samples over a caller
 *               owned array: the newest `cap` samples are kept, the oldest
 *               is overwritten. Readers filter on ts >= since, so a
 *               late sample simply counts while it is inside the window.
 *   sm_stats    median and MAD by quickselect on a caller-provided scratch
 *               array (reordered in place; no allocation).
 *
 * Time is event time in ms, passed in by the caller; nothing here reads a
 * clock. Thread safety: none; each structure belongs to one caller.
 */
#ifndef SM_WINDOW_H
#define SM_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* ------------------------------------------------------------- sm_ring */

#define SM_RING_SLOTS 64        /* most slots a ring can have */
#define SM_RING_COUNTERS 2      /* counters per slot (e.g. total, hits) */

typedef struct sm_ring {
    int64_t slot_ms;            /* width of one slot */
    int64_t head_start_ms;      /* start of the newest slot (if started) */
    uint32_t nslots;            /* slots in use, 1..SM_RING_SLOTS */
    uint32_t head;              /* index of the newest slot */
    uint32_t started;           /* 0 until the first advance/add */
    uint32_t reserved;          /* zero; keeps the layout free of padding */
    uint64_t sum[SM_RING_COUNTERS];             /* over all live slots */
    uint32_t count[SM_RING_SLOTS][SM_RING_COUNTERS];
} sm_ring;

/* Sets up an empty ring covering at least window_ms with slots of the
 * given width when window_ms / slot_ms <= SM_RING_SLOTS; otherwise the
 * slots are widened to ceil(window_ms / SM_RING_SLOTS). Slot starts are
 * aligned to multiples of the (final) slot width. The live window is the
 * newest slot plus the nslots - 1 before it. Returns SM_ERR_INVALID if r is
 * NULL or either length is not positive; SM_OK otherwise. */
sm_status sm_ring_init(sm_ring *r, int64_t window_ms, int64_t slot_ms);

/* Zeroes every counter; keeps the geometry. */
void sm_ring_clear(sm_ring *r);

/* Moves the newest slot forward to the one holding now_ms, evicting the
 * slots that left the window. A now_ms inside or before the newest slot
 * does nothing (time never goes back). Costs at most nslots steps. */
void sm_ring_advance(sm_ring *r, int64_t now_ms);

/* Adds delta[i] to counter i of the slot holding ts_ms (advancing first if
 * ts_ms is past the newest slot). Returns false, and changes nothing, when
 * ts_ms is older than the oldest live slot (a late event out of window). */
bool sm_ring_add(sm_ring *r, int64_t ts_ms,
                 const uint32_t delta[SM_RING_COUNTERS]);

/* Sum of counter `which` over the live slots (0 if which is out of range). */
uint64_t sm_ring_sum(const sm_ring *r, unsigned which);

/* Start of the oldest live slot (meaningless before the first add). */
int64_t sm_ring_oldest_ms(const sm_ring *r);

/* Whether the geometry and indexes are consistent (used to vet a ring
 * read back from a blob). */
bool sm_ring_valid(const sm_ring *r);

/* ---------------------------------------------------------- sm_samples */

typedef struct sm_sample {
    int64_t ts_ms;
    uint32_t value;
    uint32_t flags;             /* caller-defined bits */
} sm_sample;

typedef struct sm_samples {
    uint32_t cap;               /* slots in the caller's array */
    uint32_t head;              /* index of the next write */
    uint32_t count;             /* samples held, <= cap */
    uint32_t reserved;          /* zero */
} sm_samples;

/* Empties the ring and records its capacity (the caller's array must have
 * at least cap elements for every later call). cap 0 makes a ring that
 * holds nothing. */
void sm_samples_init(sm_samples *s, uint32_t cap);

/* Forgets every sample (capacity kept). */
void sm_samples_clear(sm_samples *s);

/* Appends v to slots[], overwriting the oldest sample when full. */
void sm_samples_push(sm_samples *s, sm_sample *slots, sm_sample v);

/* The i-th sample held, oldest first (i < s->count; i = count - 1 is the
 * newest). */
static inline const sm_sample *sm_samples_at(const sm_samples *s,
                                             const sm_sample *slots,
                                             uint32_t i)
{
    return &slots[(s->head + s->cap - s->count + i) % s->cap];
}

/* Number of held samples with ts_ms >= since_ms and (flags & mask) ==
 * want. */
uint32_t sm_samples_count(const sm_samples *s, const sm_sample *slots,
                          int64_t since_ms, uint32_t mask, uint32_t want);

/* Copies the values of the samples count() would count into out[] (at
 * most out_cap) and returns how many were written. */
size_t sm_samples_values(const sm_samples *s, const sm_sample *slots,
                         int64_t since_ms, uint32_t mask, uint32_t want,
                         double *out, size_t out_cap);

/* Whether the indexes are consistent with cap (vetting a blob). */
bool sm_samples_valid(const sm_samples *s, uint32_t cap);

/* ------------------------------------------------------------ sm_stats */

/* The k-th smallest (0-based) of v[0..n-1]; reorders v so that v[k] holds
 * it, smaller-or-equal values before and greater-or-equal after.
 * Deterministic (median-of-three pivots). Requires k < n; returns 0 for
 * n == 0. */
double sm_stats_select(double *v, size_t n, size_t k);

/* Median of v[0..n-1] (mean of the two middle values when n is even);
 * reorders v. Returns 0 for n == 0. */
double sm_stats_median(double *v, size_t n);

/* Median absolute deviation around `median`: overwrites v[i] with
 * |v[i] - median| and returns their median (unscaled). 0 for n == 0. */
double sm_stats_mad(double *v, size_t n, double median);

#endif
