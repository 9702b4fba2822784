#include "window.h"

#include <string.h>

/* ------------------------------------------------------------- sm_ring */

/* floor(a / b) for b > 0, also for negative a. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b) != 0 && a < 0)
        q--;
    return q;
}

static int64_t slot_start(const sm_ring *r, int64_t ts_ms)
{
    return floor_div(ts_ms, r->slot_ms) * r->slot_ms;
}

sm_status sm_ring_init(sm_ring *r, int64_t window_ms, int64_t slot_ms)
{
    if (r == NULL || window_ms <= 0 || slot_ms <= 0)
        return SM_ERR_INVALID;
    memset(r, 0, sizeof *r);
    if (slot_ms > window_ms)
        slot_ms = window_ms;
    int64_t n = (window_ms + slot_ms - 1) / slot_ms;
    if (n > SM_RING_SLOTS) {
        slot_ms = (window_ms + SM_RING_SLOTS - 1) / SM_RING_SLOTS;
        n = (window_ms + slot_ms - 1) / slot_ms;
    }
    r->slot_ms = slot_ms;
    r->nslots = (uint32_t)n;
    return SM_OK;
}

void sm_ring_clear(sm_ring *r)
{
    memset(r->count, 0, sizeof r->count);
    memset(r->sum, 0, sizeof r->sum);
}

static void evict_slot(sm_ring *r, uint32_t idx)
{
    for (unsigned c = 0; c < SM_RING_COUNTERS; c++) {
        r->sum[c] -= r->count[idx][c];
        r->count[idx][c] = 0;
    }
}

void sm_ring_advance(sm_ring *r, int64_t now_ms)
{
    int64_t start = slot_start(r, now_ms);
    if (!r->started) {
        r->started = 1;
        r->head = 0;
        r->head_start_ms = start;
        return;
    }
    if (start <= r->head_start_ms)
        return;
    int64_t steps = (start - r->head_start_ms) / r->slot_ms;
    if (steps >= (int64_t)r->nslots) {
        sm_ring_clear(r);
    } else {
        for (int64_t i = 0; i < steps; i++) {
            r->head = (r->head + 1) % r->nslots;
            evict_slot(r, r->head);
        }
    }
    r->head_start_ms = start;
}

int64_t sm_ring_oldest_ms(const sm_ring *r)
{
    return r->head_start_ms - (int64_t)(r->nslots - 1) * r->slot_ms;
}

bool sm_ring_add(sm_ring *r, int64_t ts_ms,
                 const uint32_t delta[SM_RING_COUNTERS])
{
    if (!r->started || ts_ms >= r->head_start_ms + r->slot_ms)
        sm_ring_advance(r, ts_ms);
    if (ts_ms < sm_ring_oldest_ms(r))
        return false;
    int64_t back = (r->head_start_ms - slot_start(r, ts_ms)) / r->slot_ms;
    uint32_t idx = (uint32_t)((r->head + r->nslots - (uint32_t)back)
                              % r->nslots);
    for (unsigned c = 0; c < SM_RING_COUNTERS; c++) {
        r->count[idx][c] += delta[c];
        r->sum[c] += delta[c];
    }
    return true;
}

uint64_t sm_ring_sum(const sm_ring *r, unsigned which)
{
    if (which >= SM_RING_COUNTERS)
        return 0;
    return r->sum[which];
}

bool sm_ring_valid(const sm_ring *r)
{
    if (r->slot_ms <= 0 || r->nslots == 0 || r->nslots > SM_RING_SLOTS)
        return false;
    if (r->head >= r->nslots || r->started > 1 || r->reserved != 0)
        return false;
    for (unsigned c = 0; c < SM_RING_COUNTERS; c++) {
        uint64_t total = 0;
        for (uint32_t i = 0; i < SM_RING_SLOTS; i++) {
            if (i >= r->nslots && r->count[i][c] != 0)
                return false;
            total += r->count[i][c];
        }
        if (total != r->sum[c])
            return false;
    }
    return true;
}

/* ---------------------------------------------------------- sm_samples */

void sm_samples_init(sm_samples *s, uint32_t cap)
{
    memset(s, 0, sizeof *s);
    s->cap = cap;
}

void sm_samples_clear(sm_samples *s)
{
    s->head = 0;
    s->count = 0;
}

void sm_samples_push(sm_samples *s, sm_sample *slots, sm_sample v)
{
    if (s->cap == 0)
        return;
    slots[s->head] = v;
    s->head = (s->head + 1) % s->cap;
    if (s->count < s->cap)
        s->count++;
}

/* Index of the i-th held sample, oldest first. */
static bool sample_matches(const sm_sample *x, int64_t since_ms,
                           uint32_t mask, uint32_t want)
{
    return x->ts_ms >= since_ms && (x->flags & mask) == want;
}

uint32_t sm_samples_count(const sm_samples *s, const sm_sample *slots,
                          int64_t since_ms, uint32_t mask, uint32_t want)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->count; i++) {
        if (sample_matches(sm_samples_at(s, slots, i), since_ms, mask, want))
            n++;
    }
    return n;
}

size_t sm_samples_values(const sm_samples *s, const sm_sample *slots,
                         int64_t since_ms, uint32_t mask, uint32_t want,
                         double *out, size_t out_cap)
{
    size_t n = 0;
    for (uint32_t i = 0; i < s->count && n < out_cap; i++) {
        const sm_sample *x = sm_samples_at(s, slots, i);
        if (sample_matches(x, since_ms, mask, want))
            out[n++] = (double)x->value;
    }
    return n;
}

bool sm_samples_valid(const sm_samples *s, uint32_t cap)
{
    if (s->cap != cap || s->reserved != 0)
        return false;
    if (cap == 0)
        return s->head == 0 && s->count == 0;
    return s->head < cap && s->count <= cap;
}

/* ------------------------------------------------------------ sm_stats */

static void swap_d(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

double sm_stats_select(double *v, size_t n, size_t k)
{
    if (n == 0 || k >= n)
        return 0.0;
    if (n <= 24) {
        /* an agent's window (16 at most): insertion sort beats the
         * partition's branches; the k-th value is the same either way */
        for (size_t i = 1; i < n; i++) {
            double x = v[i];
            size_t j = i;
            for (; j > 0 && v[j - 1] > x; j--)
                v[j] = v[j - 1];
            v[j] = x;
        }
        return v[k];
    }
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        /* median of three as the pivot value, then a three-way partition:
         * [lo, lt) < pivot, [lt, gt) == pivot, [gt, hi] > pivot, so runs of
         * equal values (common with durations) cost one pass */
        double a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi];
        double pivot = a < b ? (b < c ? b : (a < c ? c : a))
                             : (a < c ? a : (b < c ? c : b));
        size_t lt = lo, i = lo, gt = hi + 1;
        while (i < gt) {
            if (v[i] < pivot) {
                swap_d(&v[lt], &v[i]);
                lt++;
                i++;
            } else if (v[i] > pivot) {
                gt--;
                swap_d(&v[i], &v[gt]);
            } else {
                i++;
            }
        }
        if (k < lt)
            hi = lt - 1;
        else if (k >= gt)
            lo = gt;
        else
            return v[k];
    }
    return v[k];
}

double sm_stats_median(double *v, size_t n)
{
    if (n == 0)
        return 0.0;
    size_t k = n / 2;
    double upper = sm_stats_select(v, n, k);
    if (n % 2 == 1)
        return upper;
    /* v[0..k-1] are <= upper: the lower middle is their maximum */
    double lower = v[0];
    for (size_t i = 1; i < k; i++) {
        if (v[i] > lower)
            lower = v[i];
    }
    return (lower + upper) / 2.0;
}

double sm_stats_mad(double *v, size_t n, double median)
{
    for (size_t i = 0; i < n; i++) {
        double d = v[i] - median;
        v[i] = d < 0 ? -d : d;
    }
    return sm_stats_median(v, n);
}
