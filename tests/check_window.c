/*
 * check_window.c - the rolling-window building blocks (core/window.h):
 * the time-bucketed counter ring, the bounded sample ring and the
 * quickselect median / MAD.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "window.h"
#include "runner.h"

static const uint32_t ONE[SM_RING_COUNTERS] = {1, 0};
static const uint32_t HIT[SM_RING_COUNTERS] = {1, 1};

/* ------------------------------------------------------------- sm_ring */

START_TEST(ring_geometry)
{
    sm_ring r;
    ck_assert_int_eq(sm_ring_init(&r, 60000, 1000), SM_OK);
    ck_assert_int_eq(r.nslots, 60);
    ck_assert_int_eq(r.slot_ms, 1000);

    /* too many slots: widened so that 64 slots still cover the window */
    ck_assert_int_eq(sm_ring_init(&r, 600000, 1000), SM_OK);
    ck_assert_int_le(r.nslots, SM_RING_SLOTS);
    ck_assert_int_ge((int64_t)r.nslots * r.slot_ms, 600000);

    ck_assert_int_eq(sm_ring_init(&r, 0, 1000), SM_ERR_INVALID);
    ck_assert_int_eq(sm_ring_init(&r, 1000, 0), SM_ERR_INVALID);
    ck_assert_int_eq(sm_ring_init(NULL, 1000, 10), SM_ERR_INVALID);
}
END_TEST

START_TEST(ring_counts_inside_window)
{
    sm_ring r;
    sm_ring_init(&r, 10000, 1000);
    for (int i = 0; i < 10; i++)
        ck_assert(sm_ring_add(&r, 100000 + i * 1000, i % 2 ? HIT : ONE));
    ck_assert_uint_eq(sm_ring_sum(&r, 0), 10);
    ck_assert_uint_eq(sm_ring_sum(&r, 1), 5);
    ck_assert_uint_eq(sm_ring_sum(&r, 2), 0);   /* out of range */
    ck_assert(sm_ring_valid(&r));
}
END_TEST

START_TEST(ring_evicts_slot_by_slot)
{
    sm_ring r;
    sm_ring_init(&r, 10000, 1000);
    /* one event per second for 10 s: all live */
    for (int i = 0; i < 10; i++)
        sm_ring_add(&r, i * 1000 + 500, ONE);
    ck_assert_uint_eq(sm_ring_sum(&r, 0), 10);
    /* each further second evicts exactly the oldest slot */
    for (int i = 10; i < 20; i++) {
        sm_ring_advance(&r, i * 1000);
        ck_assert_uint_eq(sm_ring_sum(&r, 0), (uint64_t)(19 - i));
    }
    ck_assert_uint_eq(sm_ring_sum(&r, 0), 0);
    ck_assert(sm_ring_valid(&r));
}
END_TEST

START_TEST(ring_long_jump_clears_all)
{
    sm_ring r;
    sm_ring_init(&r, 60000, 1000);
    for (int i = 0; i < 60; i++)
        sm_ring_add(&r, 1000000 + i * 1000, HIT);
    ck_assert_uint_eq(sm_ring_sum(&r, 1), 60);
    /* a jump of exactly one window drops everything */
    sm_ring_advance(&r, 1000000 + 59000 + 60000);
    ck_assert_uint_eq(sm_ring_sum(&r, 0), 0);
    ck_assert_uint_eq(sm_ring_sum(&r, 1), 0);
    /* and a jump of a year costs no more than one window of steps */
    sm_ring_add(&r, 1000000 + 59000 + 60000, ONE);
    sm_ring_advance(&r, INT64_C(1000000) + INT64_C(365) * 86400000);
    ck_assert_uint_eq(sm_ring_sum(&r, 0), 0);
    /* the ring is still usable after the jump */
    ck_assert(sm_ring_add(&r, INT64_C(1000000) + INT64_C(365) * 86400000,
                          ONE));
    ck_assert_uint_eq(sm_ring_sum(&r, 0), 1);
    ck_assert(sm_ring_valid(&r));
}
END_TEST

START_TEST(ring_partial_jump_keeps_recent)
{
    sm_ring r;
    sm_ring_init(&r, 10000, 1000);
    for (int i = 0; i < 10; i++)
        sm_ring_add(&r, 50000 + i * 1000, ONE);
    /* 3 slots forward: the 3 oldest are gone, 7 stay */
    sm_ring_advance(&r, 50000 + 12000);
    ck_assert_uint_eq(sm_ring_sum(&r, 0), 7);
}
END_TEST

START_TEST(ring_late_events)
{
    sm_ring r;
    sm_ring_init(&r, 10000, 1000);
    sm_ring_add(&r, 100000, ONE);
    /* late but inside the window: counted */
    ck_assert(sm_ring_add(&r, 95500, ONE));
    ck_assert_uint_eq(sm_ring_sum(&r, 0), 2);
    /* older than the oldest slot: refused, nothing changes */
    ck_assert(!sm_ring_add(&r, 90999, HIT));
    ck_assert_uint_eq(sm_ring_sum(&r, 0), 2);
    ck_assert_uint_eq(sm_ring_sum(&r, 1), 0);
    /* advancing backwards is a no-op */
    sm_ring_advance(&r, 50000);
    ck_assert_uint_eq(sm_ring_sum(&r, 0), 2);
    ck_assert_int_eq(r.head_start_ms, 100000);
    /* the late event leaves the window with its own slot */
    sm_ring_advance(&r, 105000);
    ck_assert_uint_eq(sm_ring_sum(&r, 0), 1);
}
END_TEST

START_TEST(ring_negative_time_aligns_down)
{
    sm_ring r;
    sm_ring_init(&r, 4000, 1000);
    sm_ring_add(&r, -1, ONE);
    ck_assert_int_eq(r.head_start_ms, -1000);
    sm_ring_add(&r, 0, ONE);
    ck_assert_int_eq(r.head_start_ms, 0);
    ck_assert_uint_eq(sm_ring_sum(&r, 0), 2);
}
END_TEST

START_TEST(ring_valid_rejects_damage)
{
    sm_ring r;
    sm_ring_init(&r, 10000, 1000);
    sm_ring_add(&r, 1000, HIT);
    ck_assert(sm_ring_valid(&r));
    sm_ring bad = r;
    bad.head = bad.nslots;
    ck_assert(!sm_ring_valid(&bad));
    bad = r;
    bad.sum[0] = 7;
    ck_assert(!sm_ring_valid(&bad));
    bad = r;
    bad.nslots = SM_RING_SLOTS + 1;
    ck_assert(!sm_ring_valid(&bad));
    bad = r;
    bad.count[SM_RING_SLOTS - 1][0] = 1;     /* beyond nslots */
    bad.sum[0]++;
    ck_assert(!sm_ring_valid(&bad));
}
END_TEST

/* The ring against a brute-force count over a long random stream: every
 * event is remembered with its slot, and the ring must agree with "events
 * whose slot is among the live ones" after every step. */
START_TEST(ring_matches_brute_force)
{
    enum { N = 20000 };
    static int64_t ts[N];
    sm_ring r;
    sm_ring_init(&r, 8000, 1000);
    uint32_t seed = 12345;
    int64_t now = 0;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        now += (seed >> 16) % 700;           /* 0..699 ms later */
        if ((seed >> 8) % 50 == 0)
            now += 20000;                    /* sometimes a long gap */
        ts[i] = now - (int64_t)((seed >> 4) % 3000);    /* some late */
        bool in = sm_ring_add(&r, ts[i], ONE);
        sm_ring_advance(&r, now);
        int64_t oldest = sm_ring_oldest_ms(&r);
        uint64_t want = 0;
        int64_t lo = i > 200 ? i - 200 : 0;  /* older ones are long gone */
        for (int64_t j = lo; j <= i; j++) {
            if (ts[j] >= oldest && (j != i || in))
                want++;
        }
        if (!in)
            ck_assert_int_lt(ts[i], oldest);
        ck_assert_uint_eq(sm_ring_sum(&r, 0), want);
    }
    ck_assert(sm_ring_valid(&r));
}
END_TEST

/* ---------------------------------------------------------- sm_samples */

START_TEST(samples_keep_newest)
{
    sm_sample slots[4];
    sm_samples s;
    sm_samples_init(&s, 4);
    for (uint32_t i = 1; i <= 6; i++)
        sm_samples_push(&s, slots, (sm_sample){i * 100, i, 0});
    ck_assert_uint_eq(s.count, 4);
    double v[8];
    size_t n = sm_samples_values(&s, slots, 0, 0, 0, v, 8);
    ck_assert_uint_eq(n, 4);
    /* oldest first: 3, 4, 5, 6 (1 and 2 were overwritten) */
    for (size_t i = 0; i < n; i++)
        ck_assert_double_eq(v[i], (double)(i + 3));
    ck_assert(sm_samples_valid(&s, 4));
    ck_assert(!sm_samples_valid(&s, 5));
}
END_TEST

START_TEST(samples_filter_by_time_and_flags)
{
    sm_sample slots[8];
    sm_samples s;
    sm_samples_init(&s, 8);
    sm_samples_push(&s, slots, (sm_sample){1000, 10, 1});
    sm_samples_push(&s, slots, (sm_sample){2000, 20, 3});
    sm_samples_push(&s, slots, (sm_sample){3000, 30, 1});
    sm_samples_push(&s, slots, (sm_sample){1500, 40, 3});  /* late */
    ck_assert_uint_eq(sm_samples_count(&s, slots, 0, 0, 0), 4);
    ck_assert_uint_eq(sm_samples_count(&s, slots, 1500, 0, 0), 3);
    ck_assert_uint_eq(sm_samples_count(&s, slots, 0, 2, 2), 2);
    ck_assert_uint_eq(sm_samples_count(&s, slots, 1600, 2, 2), 1);
    double v[8];
    ck_assert_uint_eq(sm_samples_values(&s, slots, 1500, 3, 3, v, 8), 2);
    ck_assert_double_eq(v[0], 20);
    ck_assert_double_eq(v[1], 40);
    /* out_cap bounds the copy */
    ck_assert_uint_eq(sm_samples_values(&s, slots, 0, 0, 0, v, 1), 1);
    sm_samples_clear(&s);
    ck_assert_uint_eq(sm_samples_count(&s, slots, 0, 0, 0), 0);
}
END_TEST

START_TEST(samples_zero_capacity)
{
    sm_samples s;
    sm_samples_init(&s, 0);
    sm_samples_push(&s, NULL, (sm_sample){1, 1, 1});
    ck_assert_uint_eq(s.count, 0);
    ck_assert(sm_samples_valid(&s, 0));
}
END_TEST

/* ------------------------------------------------------------ sm_stats */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

START_TEST(stats_median_small)
{
    double odd[] = {5, 1, 4, 2, 3};
    ck_assert_double_eq(sm_stats_median(odd, 5), 3);
    double even[] = {10, 1, 7, 2};
    ck_assert_double_eq(sm_stats_median(even, 4), 4.5);
    double one[] = {42};
    ck_assert_double_eq(sm_stats_median(one, 1), 42);
    ck_assert_double_eq(sm_stats_median(NULL, 0), 0);
    ck_assert_double_eq(sm_stats_select(odd, 5, 5), 0);   /* k out of range */
}
END_TEST

START_TEST(stats_median_robust_to_outlier)
{
    double v[] = {1000, 1000, 1000, 1000, 50000};
    ck_assert_double_eq(sm_stats_median(v, 5), 1000);
}
END_TEST

START_TEST(stats_mad_known_values)
{
    /* 1 1 2 2 4 6 9: median 2, deviations 1 1 0 0 2 4 7 -> MAD 1 */
    double v[] = {1, 1, 2, 2, 4, 6, 9};
    double med = sm_stats_median(v, 7);
    ck_assert_double_eq(med, 2);
    ck_assert_double_eq(sm_stats_mad(v, 7, med), 1);
    double same[] = {3, 3, 3, 3};
    ck_assert_double_eq(sm_stats_mad(same, 4, 3), 0);
}
END_TEST

START_TEST(stats_select_matches_sort)
{
    enum { N = 257 };
    double v[N], sorted[N], work[N];
    uint32_t seed = 99;
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + (size_t)(round * 7) % N;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1664525u + 1013904223u;
            /* few distinct values on odd rounds: many duplicates */
            v[i] = round % 2 ? (double)((seed >> 20) % 5)
                             : (double)(seed >> 8);
        }
        memcpy(sorted, v, n * sizeof *v);
        qsort(sorted, n, sizeof *sorted, cmp_double);
        for (size_t k = 0; k < n; k += 1 + n / 9) {
            memcpy(work, v, n * sizeof *v);
            ck_assert_double_eq(sm_stats_select(work, n, k), sorted[k]);
            for (size_t i = 0; i < k; i++)
                ck_assert(work[i] <= work[k]);
            for (size_t i = k + 1; i < n; i++)
                ck_assert(work[i] >= work[k]);
        }
        memcpy(work, v, n * sizeof *v);
        double want = n % 2 ? sorted[n / 2]
                            : (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
        ck_assert_double_eq(sm_stats_median(work, n), want);
    }
}
END_TEST

/* Many equal values must not degrade the select: 512 identical samples
 * (all tasks taking the same time) repeated many times completes. */
START_TEST(stats_all_equal_large)
{
    double v[512];
    for (int rep = 0; rep < 2000; rep++) {
        for (int i = 0; i < 512; i++)
            v[i] = 1000;
        ck_assert_double_eq(sm_stats_median(v, 512), 1000);
    }
}
END_TEST

static Suite *window_suite(void)
{
    Suite *s = suite_create("window");
    TCase *ring = tcase_create("ring");
    tcase_add_test(ring, ring_geometry);
    tcase_add_test(ring, ring_counts_inside_window);
    tcase_add_test(ring, ring_evicts_slot_by_slot);
    tcase_add_test(ring, ring_long_jump_clears_all);
    tcase_add_test(ring, ring_partial_jump_keeps_recent);
    tcase_add_test(ring, ring_late_events);
    tcase_add_test(ring, ring_negative_time_aligns_down);
    tcase_add_test(ring, ring_valid_rejects_damage);
    tcase_add_test(ring, ring_matches_brute_force);
    suite_add_tcase(s, ring);

    TCase *samples = tcase_create("samples");
    tcase_add_test(samples, samples_keep_newest);
    tcase_add_test(samples, samples_filter_by_time_and_flags);
    tcase_add_test(samples, samples_zero_capacity);
    suite_add_tcase(s, samples);

    TCase *stats = tcase_create("stats");
    tcase_add_test(stats, stats_median_small);
    tcase_add_test(stats, stats_median_robust_to_outlier);
    tcase_add_test(stats, stats_mad_known_values);
    tcase_add_test(stats, stats_select_matches_sort);
    tcase_add_test(stats, stats_all_equal_large);
    suite_add_tcase(s, stats);
    return s;
}

int main(void)
{
    return sm_run_suite(window_suite());
}
