/*
 * check_pattern.c - pattern learning (core/pattern.h): correlations that
 * fire (the reference's never could), no pattern in noise, the minimum
 * occurrences, regular intervals, sequences, hour-of-day spikes, a fixed
 * size and ageing out, time read forward, determinism.
 *
 * Inputs come from a xorshift generator with fixed seeds (never rand()),
 * so every run sees the same happenings; nothing reads the clock.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pattern.h"
#include "runner.h"

#define SEC INT64_C(1000)
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
/* 2023-11-14 00:00:00 UTC: a day start, so hours below are UTC hours */
#define T0 INT64_C(1699920000000)

/* The caller's code space (pattern.h: the caller owns it). */
enum {
    C_DEGRADED = 1,     /* heartbeat went DEGRADED */
    C_DOWN = 2,         /* failure agent_down raised */
    C_QUORUM = 3,       /* failure quorum_loss raised */
    C_BACKLOG = 4,      /* bottleneck queue_backlog raised */
    C_SLOW = 5,         /* bottleneck slow_agent raised */
    C_TICK = 6,         /* something regular */
    C_NOISE = 20,       /* noise codes are C_NOISE .. C_NOISE + 19 */
    N_NOISE = 20,
};

/* ------------------------------------------------------------ helpers */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t xorshift(rng *r)
{
    uint64_t x = r->s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return r->s = x;
}

/* Uniform in [lo, hi]. */
static int64_t uni(rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(xorshift(r) % (uint64_t)(hi - lo + 1));
}

static unsigned noise_code(rng *r)
{
    return C_NOISE + (unsigned)uni(r, 0, N_NOISE - 1);
}

/* A schedule of happenings, put in time order before it is fed. */
typedef struct hap {
    int64_t ts;
    unsigned code;
    uint32_t subject;
} hap;

#define SCHED_MAX 4096
typedef struct sched {
    hap h[SCHED_MAX];
    size_t n;
} sched;

static void add(sched *s, int64_t ts, unsigned code, uint32_t subject)
{
    ck_assert_uint_lt(s->n, SCHED_MAX);
    s->h[s->n++] = (hap){ts, code, subject};
}

/* Noise codes at random gaps in [gap_lo, gap_hi] over [from, to). */
static void add_noise(sched *s, rng *r, int64_t from, int64_t to,
                      int64_t gap_lo, int64_t gap_hi)
{
    for (int64_t t = from + uni(r, gap_lo, gap_hi); t < to;
         t += uni(r, gap_lo, gap_hi))
        add(s, t, noise_code(r), (uint32_t)uni(r, 1, 50));
}

/* Sorts and records the schedule; returns the last time fed. */
static int64_t feed(sm_pattern_state *st, sched *s)
{
    /* insertion sort: stable, and the schedules are small */
    for (size_t i = 1; i < s->n; i++) {
        hap v = s->h[i];
        size_t j = i;
        while (j > 0 && s->h[j - 1].ts > v.ts) {
            s->h[j] = s->h[j - 1];
            j--;
        }
        s->h[j] = v;
    }
    int64_t last = 0;
    for (size_t i = 0; i < s->n; i++) {
        ck_assert_int_eq(sm_pattern_record(st, s->h[i].ts, s->h[i].code,
                                           s->h[i].subject), SM_OK);
        last = s->h[i].ts;
    }
    s->n = 0;
    return last;
}

static sched S;     /* one schedule per test process (tests are forked) */

static void init(sm_pattern_state *st)
{
    ck_assert_int_eq(sm_pattern_init(st, NULL), SM_OK);
}

/* The learned pattern of a kind forecasting `code` (with context ctx0,
 * or any when ctx0 < 0), or NULL. */
static const sm_pattern *find(const sm_pattern *p, size_t n,
                              sm_pattern_kind kind, unsigned code, int ctx0)
{
    for (size_t i = 0; i < n; i++)
        if (p[i].kind == kind && p[i].code == code &&
            (ctx0 < 0 || p[i].ctx[0] == (unsigned)ctx0))
            return &p[i];
    return NULL;
}

static sm_pattern L[4096];

static size_t list(const sm_pattern_state *st, int64_t now)
{
    size_t n = sm_pattern_list(st, now, L, sizeof L / sizeof L[0]);
    ck_assert_uint_le(n, sizeof L / sizeof L[0]);
    return n;
}

/* `pairs` DEGRADED -> agent_down pairs, the DEGRADEDs 8-45 minutes apart
 * (irregular), each down 60-180 s after its DEGRADED, in noise (a
 * happening every 30-120 s) until 10 minutes after the last. Returns the
 * mean delay; *last_ts the last time fed. */
static double degraded_then_down(sm_pattern_state *st, uint64_t seed,
                                 int pairs, int64_t *last_ts)
{
    rng r = {seed};
    double sum = 0;
    int64_t a = T0, end = T0;
    for (int k = 0; k < pairs; k++) {
        a += uni(&r, 8 * MIN, 45 * MIN);
        int64_t d = uni(&r, 60 * SEC, 180 * SEC);
        add(&S, a, C_DEGRADED, 100 + (uint32_t)k);
        add(&S, a + d, C_DOWN, 100 + (uint32_t)k);
        sum += (double)d;
        end = a + d + 10 * MIN;
    }
    add_noise(&S, &r, T0, end, 30 * SEC, 120 * SEC);
    *last_ts = feed(st, &S);
    return sum / pairs;
}

/* `reps` times: backlog, slow agent 30 s later, agent_down ~10 min after
 * that (beyond W: only the sequence can see it), noise between the
 * triples. Returns the last time fed. */
static int64_t backlog_slow_down(sm_pattern_state *st, uint64_t seed,
                                 int reps)
{
    rng r = {seed};
    int64_t t = T0;
    for (int k = 0; k < reps; k++) {
        int64_t to = t + uni(&r, 15 * MIN, 30 * MIN);
        add_noise(&S, &r, t, to, 40 * SEC, 200 * SEC);
        add(&S, to, C_BACKLOG, 1);
        add(&S, to + 30 * SEC, C_SLOW, 2);
        t = to + 30 * SEC + 600 * SEC + uni(&r, -20 * SEC, 20 * SEC);
        add(&S, t, C_DOWN, 2);
    }
    add_noise(&S, &r, t, t + 20 * MIN, 40 * SEC, 200 * SEC);
    return feed(st, &S);
}

/* -------------------------------------------------------- correlation */

START_TEST(correlation_fires)
{
    sm_pattern_state st;
    init(&st);
    int64_t t;
    double mean = degraded_then_down(&st, 0x9e3779b97f4a7c15ULL, 8, &t);

    /* learned, well over chance */
    size_t n = list(&st, t);
    const sm_pattern *c = find(L, n, SM_PAT_CORRELATION, C_DOWN, C_DEGRADED);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(c->support, 8);
    ck_assert_uint_eq(c->trials, 8);
    ck_assert_double_gt(c->lift, 2.0);
    ck_assert_double_ge(c->confidence, 0.7);
    ck_assert_int_le(llabs(c->mean_ms - (int64_t)llround(mean)), 1);
    /* P(B within W | A) shrunk by one pseudo-trial toward chance p0, and
     * p0 = hits / (lift x trials) */
    double p0 = 8.0 / (c->lift * 8.0);
    ck_assert_double_eq_tol(c->confidence, (8.0 + p0) / 9.0, 1e-12);
    ck_assert_double_lt(c->confidence, 1.0);

    /* a new DEGRADED: agent_down is forecast, due a learned mean later */
    int64_t a = t + 2 * MIN;
    ck_assert_int_eq(sm_pattern_record(&st, a, C_DEGRADED, 777), SM_OK);
    sm_pattern_forecast f;
    ck_assert(sm_pattern_predict(&st, a + 1 * SEC, C_DOWN, &f));
    ck_assert_int_eq(f.pattern.kind, SM_PAT_CORRELATION);
    ck_assert_uint_eq(f.pattern.ctx[0], C_DEGRADED);
    ck_assert_double_ge(f.confidence, 0.7);
    ck_assert_double_le(f.confidence, 1.0);
    ck_assert_int_eq(f.eta_ms, f.pattern.mean_ms - 1 * SEC);
    ck_assert_int_ge(f.eta_ms, 59 * SEC);
    ck_assert_int_le(f.eta_ms, 179 * SEC);
    ck_assert_int_eq(f.trigger_ts_ms, a);
    ck_assert_uint_eq(f.trigger_subject, 777);
    ck_assert_str_eq(f.reasoning, "a happening that has preceded it more "
                     "often than chance has just occurred (correlation)");

    /* later in the window the eta shrinks by the time gone */
    sm_pattern_forecast g;
    ck_assert(sm_pattern_predict(&st, a + 31 * SEC, C_DOWN, &g));
    ck_assert_int_eq(g.eta_ms, f.eta_ms > 30 * SEC ? f.eta_ms - 30 * SEC : 0);

    /* it says nothing of the other failures */
    ck_assert(!sm_pattern_predict(&st, a + 1 * SEC, C_QUORUM, &g));
    ck_assert_int_eq(g.pattern.kind, SM_PAT_NONE);

    /* once the agent_down came, the DEGRADED is answered */
    ck_assert_int_eq(sm_pattern_record(&st, a + 90 * SEC, C_DOWN, 777), SM_OK);
    sm_pattern_predict(&st, a + 91 * SEC, C_DOWN, &g);
    ck_assert_int_ne(g.pattern.kind, SM_PAT_CORRELATION);

    /* a DEGRADED whose window ran out with no agent_down forecasts nothing */
    ck_assert_int_eq(sm_pattern_record(&st, a + 20 * MIN, C_DEGRADED, 5), SM_OK);
    sm_pattern_predict(&st, a + 26 * MIN, C_DOWN, &g);
    ck_assert_int_ne(g.pattern.kind, SM_PAT_CORRELATION);
}
END_TEST

/* Time runs forward: agent_down 60-180 s BEFORE each DEGRADED is "down
 * then DEGRADED", never "DEGRADED then down" (the reference read its
 * newest-first history backwards). */
START_TEST(correlation_has_a_direction)
{
    sm_pattern_state st;
    init(&st);
    rng r = {42};
    add_noise(&S, &r, T0, T0 + 4 * HOUR, 30 * SEC, 120 * SEC);
    for (int k = 0; k < 8; k++) {
        int64_t a = T0 + 10 * MIN + k * 25 * MIN;
        add(&S, a, C_DOWN, 1);
        add(&S, a + uni(&r, 60 * SEC, 180 * SEC), C_DEGRADED, 1);
    }
    int64_t t = feed(&st, &S);
    size_t n = list(&st, t);
    ck_assert_ptr_nonnull(find(L, n, SM_PAT_CORRELATION, C_DEGRADED, C_DOWN));
    ck_assert_ptr_null(find(L, n, SM_PAT_CORRELATION, C_DOWN, C_DEGRADED));

    sm_pattern_forecast f;
    ck_assert_int_eq(sm_pattern_record(&st, t + 5 * MIN, C_DEGRADED, 1), SM_OK);
    ck_assert(!sm_pattern_predict(&st, t + 5 * MIN + SEC, C_DOWN, &f));
}
END_TEST

/* A follower that comes every minute anyway follows everything within W:
 * P(B within W | A) is near 1, but no more than chance (lift ~1). */
START_TEST(frequent_follower_is_not_a_correlation)
{
    sm_pattern_state st;
    init(&st);
    rng r = {12};
    for (int64_t t = T0; t < T0 + 3 * HOUR; t += uni(&r, 40 * SEC, 80 * SEC))
        add(&S, t, C_BACKLOG, 1);
    for (int k = 0; k < 10; k++)
        add(&S, T0 + 10 * MIN + k * 15 * MIN + uni(&r, 0, 5 * MIN), C_SLOW, 1);
    int64_t t = feed(&st, &S);
    ck_assert_ptr_null(find(L, list(&st, t), SM_PAT_CORRELATION, C_BACKLOG,
                            C_SLOW));
    sm_pattern_record(&st, t + 10 * SEC, C_SLOW, 1);
    sm_pattern_forecast f;
    sm_pattern_predict(&st, t + 11 * SEC, C_BACKLOG, &f);
    ck_assert_int_ne(f.pattern.kind, SM_PAT_CORRELATION);
}
END_TEST

/* ---------------------------------------------------------------- noise */

static void assert_nothing(const sm_pattern_state *st, int64_t now)
{
    sm_pattern_forecast f;
    for (unsigned c = 0; c < SM_PAT_CODES; c++) {
        ck_assert_msg(!sm_pattern_predict(st, now, c, &f),
                      "code %u forecast (%s, %.3f) in noise", c,
                      sm_pattern_kind_str(f.pattern.kind), f.confidence);
        ck_assert_double_lt(f.confidence, 0.7);
    }
    ck_assert_uint_eq(sm_pattern_list(st, now, NULL, 0), 0);
}

START_TEST(noise_learns_nothing)
{
    for (uint64_t seed = 1; seed <= 4; seed++) {
        sm_pattern_state st;
        init(&st);
        rng r = {seed * 0x2545f4914f6cdd1dULL};
        /* about ten hours, a happening every 10-300 s, checked as it goes */
        int64_t t = T0;
        for (int i = 0; i < 240; i++) {
            t += uni(&r, 10 * SEC, 300 * SEC);
            ck_assert_int_eq(sm_pattern_record(&st, t, noise_code(&r), 1),
                             SM_OK);
            if (i % 20 == 19)
                assert_nothing(&st, t + uni(&r, 0, 60 * SEC));
        }
    }
}
END_TEST

/* Noise over several days: no hour of day stands out either. */
START_TEST(noise_over_days_has_no_spike)
{
    sm_pattern_state st;
    init(&st);
    rng r = {777};
    int64_t t = T0;
    while (t < T0 + 5 * DAY) {
        t += uni(&r, 2 * MIN, 20 * MIN);
        ck_assert_int_eq(sm_pattern_record(&st, t, noise_code(&r), 1), SM_OK);
    }
    for (int h = 0; h < 24; h++)
        assert_nothing(&st, t + h * HOUR);
}
END_TEST

/* --------------------------------------------------- minimum occurrences */

START_TEST(fewer_than_five_learn_nothing)
{
    sm_pattern_state st;
    sm_pattern_forecast f;
    int64_t t;

    /* 4 pairs: not a correlation; 5: one (the guard is the count) */
    init(&st);
    degraded_then_down(&st, 11, 4, &t);
    ck_assert_ptr_null(find(L, list(&st, t), SM_PAT_CORRELATION, C_DOWN, -1));
    sm_pattern_record(&st, t + MIN, C_DEGRADED, 1);
    ck_assert(!sm_pattern_predict(&st, t + MIN + SEC, C_DOWN, &f));

    init(&st);
    degraded_then_down(&st, 11, 5, &t);
    ck_assert_ptr_nonnull(find(L, list(&st, t), SM_PAT_CORRELATION, C_DOWN,
                               C_DEGRADED));
    sm_pattern_record(&st, t + MIN, C_DEGRADED, 1);
    ck_assert(sm_pattern_predict(&st, t + MIN + SEC, C_DOWN, &f));
    ck_assert_int_eq(f.pattern.kind, SM_PAT_CORRELATION);

    /* 5 occurrences at a perfect rhythm are 4 gaps: nothing; 6 are 5
     * (a noise code after each, so that tick is not followed by tick) */
    init(&st);
    rng n = {77};
    for (int k = 0; k < 5; k++) {
        sm_pattern_record(&st, T0 + k * 10 * MIN, C_TICK, 1);
        sm_pattern_record(&st, T0 + k * 10 * MIN + 5 * MIN, noise_code(&n), 1);
    }
    ck_assert_uint_eq(sm_pattern_list(&st, T0 + 46 * MIN, NULL, 0), 0);
    ck_assert(!sm_pattern_predict(&st, T0 + 46 * MIN, C_TICK, &f));
    sm_pattern_record(&st, T0 + 50 * MIN, C_TICK, 1);
    ck_assert(sm_pattern_predict(&st, T0 + 51 * MIN, C_TICK, &f));
    ck_assert_int_eq(f.pattern.kind, SM_PAT_FREQUENCY);
    ck_assert_uint_eq(f.pattern.support, 5);
    ck_assert_int_eq(f.eta_ms, 9 * MIN);

    /* 4 backlog, slow, down triples: no sequence; 5: one */
    init(&st);
    t = backlog_slow_down(&st, 8, 4);
    sm_pattern_record(&st, t + MIN, C_BACKLOG, 1);
    sm_pattern_record(&st, t + MIN + 30 * SEC, C_SLOW, 1);
    ck_assert(!sm_pattern_predict(&st, t + 2 * MIN, C_DOWN, &f));
    ck_assert_ptr_null(find(L, list(&st, t + 2 * MIN), SM_PAT_SEQUENCE,
                            C_DOWN, -1));
    init(&st);
    t = backlog_slow_down(&st, 8, 5);
    sm_pattern_record(&st, t + MIN, C_BACKLOG, 1);
    sm_pattern_record(&st, t + MIN + 30 * SEC, C_SLOW, 1);
    ck_assert(sm_pattern_predict(&st, t + 2 * MIN, C_DOWN, &f));
    ck_assert_int_eq(f.pattern.kind, SM_PAT_SEQUENCE);

    /* 4 quorum losses at 14:xx over 4 days: no spike */
    init(&st);
    rng r = {5};
    add_noise(&S, &r, T0, T0 + 4 * DAY, 20 * MIN, 40 * MIN);
    for (int d = 0; d < 4; d++)
        add(&S, T0 + d * DAY + 14 * HOUR + uni(&r, 0, 59 * MIN), C_QUORUM, 1);
    t = feed(&st, &S);
    ck_assert_uint_eq(sm_pattern_list(&st, t, NULL, 0), 0);
    ck_assert(!sm_pattern_predict(&st, T0 + 4 * DAY + 14 * HOUR, C_QUORUM,
                                  &f));
}
END_TEST

/* ------------------------------------------------------------ frequency */

START_TEST(regular_interval)
{
    sm_pattern_state st;
    init(&st);
    rng r = {2024};
    int64_t t = T0, last = 0;
    for (int k = 0; k < 20; k++) {
        t += 600 * SEC + uni(&r, -30 * SEC, 30 * SEC);
        add(&S, t, C_TICK, 9);
        last = t;
    }
    add_noise(&S, &r, T0, t, 45 * SEC, 200 * SEC);
    feed(&st, &S);

    sm_pattern_forecast f;
    ck_assert(sm_pattern_predict(&st, last + 200 * SEC, C_TICK, &f));
    ck_assert_int_eq(f.pattern.kind, SM_PAT_FREQUENCY);
    ck_assert_uint_eq(f.pattern.support, 19);
    ck_assert_int_le(llabs(f.pattern.mean_ms - 600 * SEC), 30 * SEC);
    ck_assert_int_le(f.pattern.spread_ms, 30 * SEC);
    ck_assert_double_ge(f.confidence, 0.7);
    /* counted from the newest occurrence, not the oldest */
    ck_assert_int_eq(f.trigger_ts_ms, last);
    ck_assert_int_eq(f.eta_ms, f.pattern.mean_ms - 200 * SEC);

    size_t n = list(&st, last + 200 * SEC);
    ck_assert_ptr_nonnull(find(L, n, SM_PAT_FREQUENCY, C_TICK, -1));

    /* long overdue: the rhythm is broken, no forecast */
    ck_assert(!sm_pattern_predict(&st, last + 30 * MIN, C_TICK, &f));
}
END_TEST

/* A rhythm of 2 hours is forecast only once the next one is within the
 * horizon (1 h). */
START_TEST(regular_interval_beyond_horizon)
{
    sm_pattern_state st;
    init(&st);
    rng r = {8};
    int64_t t = T0;
    for (int k = 0; k < 8; k++) {
        t += 2 * HOUR + uni(&r, -5 * MIN, 5 * MIN);
        add(&S, t, C_TICK, 1);
    }
    add_noise(&S, &r, T0, t, 10 * MIN, 30 * MIN);
    feed(&st, &S);
    sm_pattern_forecast f;
    ck_assert(!sm_pattern_predict(&st, t + 30 * MIN, C_TICK, &f));
    ck_assert(sm_pattern_predict(&st, t + 90 * MIN, C_TICK, &f));
    ck_assert_int_eq(f.pattern.kind, SM_PAT_FREQUENCY);
    ck_assert_int_eq(f.eta_ms, f.pattern.mean_ms - 90 * MIN);
}
END_TEST

/* A code at random gaps is not regular however often it comes. */
START_TEST(irregular_interval)
{
    sm_pattern_state st;
    init(&st);
    rng r = {99};
    int64_t t = T0;
    for (int k = 0; k < 40; k++) {
        t += uni(&r, 60 * SEC, 1200 * SEC);
        sm_pattern_record(&st, t, C_TICK, 9);
        sm_pattern_record(&st, t + uni(&r, 1, 59) * SEC, noise_code(&r), 9);
    }
    sm_pattern_forecast f;
    ck_assert(!sm_pattern_predict(&st, t + 100 * SEC, C_TICK, &f));
    ck_assert_int_ne(f.pattern.kind, SM_PAT_FREQUENCY);
}
END_TEST

/* ------------------------------------------------------------- sequence */

START_TEST(sequence_trigram)
{
    sm_pattern_state st;
    init(&st);
    int64_t t = backlog_slow_down(&st, 31337, 8);

    sm_pattern_record(&st, t + MIN, C_BACKLOG, 1);
    sm_pattern_record(&st, t + MIN + 30 * SEC, C_SLOW, 3);
    sm_pattern_forecast f;
    ck_assert(sm_pattern_predict(&st, t + 2 * MIN, C_DOWN, &f));
    ck_assert_int_eq(f.pattern.kind, SM_PAT_SEQUENCE);
    ck_assert_uint_eq(f.pattern.ctx_len, 2);
    ck_assert_uint_eq(f.pattern.ctx[0], C_BACKLOG);
    ck_assert_uint_eq(f.pattern.ctx[1], C_SLOW);
    ck_assert_uint_eq(f.pattern.support, 8);
    ck_assert_uint_eq(f.trigger_subject, 3);
    ck_assert_int_le(llabs(f.pattern.mean_ms - 600 * SEC), 20 * SEC);
    ck_assert_int_eq(f.eta_ms, f.pattern.mean_ms - 30 * SEC);
    /* P(down | backlog, slow) = 8/8, shrunk toward down's base rate */
    double p0 = 1.0 / f.pattern.lift;
    ck_assert_double_eq_tol(f.confidence, (8.0 + p0) / (8.0 + 1.0), 1e-12);
    ck_assert_double_lt(f.confidence, 1.0);

    size_t n = list(&st, t + 2 * MIN);
    int tri = 0;
    for (size_t i = 0; i < n; i++)
        tri += L[i].kind == SM_PAT_SEQUENCE && L[i].ctx_len == 2 &&
               L[i].code == C_DOWN;
    ck_assert_int_eq(tri, 1);
}
END_TEST

/* ---------------------------------------------------------------- spike */

/* Six days of background; quorum_loss twice in 14:00-14:59 UTC each day
 * and once a day at a random hour. */
static int64_t quorum_at_two(sm_pattern_state *st, uint64_t seed, int days)
{
    rng r = {seed};
    add_noise(&S, &r, T0, T0 + days * DAY, 20 * MIN, 40 * MIN);
    for (int d = 0; d < days; d++) {
        add(&S, T0 + d * DAY + 14 * HOUR + uni(&r, 0, 59 * MIN), C_QUORUM, 1);
        add(&S, T0 + d * DAY + 14 * HOUR + uni(&r, 0, 59 * MIN), C_QUORUM, 1);
        add(&S, T0 + d * DAY + uni(&r, 0, DAY - 1), C_QUORUM, 1);
    }
    return feed(st, &S);
}

START_TEST(hour_of_day_spike)
{
    sm_pattern_state st;
    init(&st);
    quorum_at_two(&st, 8, 6);
    int64_t day6 = T0 + 6 * DAY;

    sm_pattern_forecast f;
    /* 13:30: due at 14:00 */
    ck_assert(sm_pattern_predict(&st, day6 + 13 * HOUR + 30 * MIN, C_QUORUM,
                                 &f));
    ck_assert_int_eq(f.pattern.kind, SM_PAT_SPIKE);
    ck_assert_uint_eq(f.pattern.hour, 14);
    ck_assert_uint_eq(f.pattern.days, 6);
    ck_assert_uint_eq(f.pattern.trials, 6);
    ck_assert_uint_ge(f.pattern.support, 12);
    ck_assert_double_gt(f.pattern.lift, 2.0);
    ck_assert_int_eq(f.eta_ms, 30 * MIN);
    ck_assert_int_eq(f.trigger_ts_ms, day6 + 14 * HOUR);
    ck_assert_double_ge(f.confidence, 0.7);
    /* 14:10: due now */
    ck_assert(sm_pattern_predict(&st, day6 + 14 * HOUR + 10 * MIN, C_QUORUM,
                                 &f));
    ck_assert_int_eq(f.eta_ms, 0);
    /* 03:00 and 16:00: not soon */
    ck_assert(!sm_pattern_predict(&st, day6 + 3 * HOUR, C_QUORUM, &f));
    ck_assert(!sm_pattern_predict(&st, day6 + 16 * HOUR, C_QUORUM, &f));

    size_t n = list(&st, day6 + 13 * HOUR);
    const sm_pattern *p = find(L, n, SM_PAT_SPIKE, C_QUORUM, -1);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(p->hour, 14);
    int spikes = 0;
    for (size_t i = 0; i < n; i++)
        spikes += L[i].kind == SM_PAT_SPIKE;
    ck_assert_int_eq(spikes, 1);
}
END_TEST

/* A burst on one day is not an hour-of-day pattern. */
START_TEST(one_day_burst_is_not_a_spike)
{
    sm_pattern_state st;
    init(&st);
    rng r = {3};
    add_noise(&S, &r, T0, T0 + 4 * DAY, 20 * MIN, 40 * MIN);
    for (int k = 0; k < 10; k++)
        add(&S, T0 + 2 * DAY + 14 * HOUR + k * 5 * MIN, C_QUORUM, 1);
    int64_t t = feed(&st, &S);
    sm_pattern_forecast f;
    ck_assert(!sm_pattern_predict(&st, T0 + 4 * DAY + 14 * HOUR, C_QUORUM,
                                  &f));
    ck_assert_int_ne(f.pattern.kind, SM_PAT_SPIKE);
    ck_assert_ptr_null(find(L, list(&st, t), SM_PAT_SPIKE, C_QUORUM, -1));
}
END_TEST

/* A code busy all day long, half as busy again at 14:00: that hour is
 * significantly busier (a Poisson test alone would take it) but not
 * twice the mean, so not a spike. */
START_TEST(busier_hour_under_twice_is_not_a_spike)
{
    sm_pattern_state st;
    init(&st);
    rng r = {21};
    for (int64_t t = T0; t < T0 + 6 * DAY; t += 10 * MIN) {
        int64_t hour = (t / HOUR) % 24;
        add(&S, t + uni(&r, 0, 60 * SEC), C_BACKLOG, 1);
        if (hour == 14 && (t / (10 * MIN)) % 2 == 0)
            add(&S, t + uni(&r, 2 * MIN, 8 * MIN), C_BACKLOG, 1);
    }
    int64_t t = feed(&st, &S);
    sm_pattern_forecast f;
    sm_pattern_predict(&st, T0 + 6 * DAY + 13 * HOUR + 30 * MIN, C_BACKLOG,
                       &f);
    ck_assert_int_ne(f.pattern.kind, SM_PAT_SPIKE);
    ck_assert_ptr_null(find(L, list(&st, t), SM_PAT_SPIKE, C_BACKLOG, -1));
}
END_TEST

/* ----------------------------------------------------- bounded, ageing */

START_TEST(bounded_state)
{
    static sm_pattern_state st;
    init(&st);
    ck_assert_uint_eq(sizeof st, SM_PATTERN_STATE_BYTES);
    ck_assert_uint_eq(sizeof st, 13432);
    rng r = {1};
    int64_t t = T0;
    for (int i = 0; i < 1000000; i++) {
        t += uni(&r, 1, 2000);
        ck_assert_int_eq(sm_pattern_record(&st, t, (unsigned)uni(&r, 0, 63),
                                           (uint32_t)i), SM_OK);
    }
    ck_assert_uint_eq(st.total, 1000000);
    ck_assert_uint_eq(st.count, SM_PAT_HISTORY);
    ck_assert(sm_pattern_valid(&st));
    /* the ring holds the newest 256, oldest first */
    ck_assert_int_eq(st.newest_ts_ms, t);
    ck_assert_uint_eq(st.ring[(st.head + SM_PAT_HISTORY - 1) % SM_PAT_HISTORY]
                          .subject, 999999);
    sm_pattern_forecast f;
    for (unsigned c = 0; c < SM_PAT_CODES; c++)
        ck_assert(!sm_pattern_predict(&st, t, c, &f));
}
END_TEST

START_TEST(stopped_patterns_age_out)
{
    sm_pattern_state st, copy;
    sm_pattern_forecast f;
    int64_t t;

    /* pushed out of the ring by 256 newer happenings */
    init(&st);
    degraded_then_down(&st, 0x9e3779b97f4a7c15ULL, 8, &t);
    copy = st;
    ck_assert_ptr_nonnull(find(L, list(&st, t), SM_PAT_CORRELATION, C_DOWN,
                               C_DEGRADED));
    rng r = {6};
    for (int i = 0; i < SM_PAT_HISTORY; i++)
        sm_pattern_record(&st, t + (i + 1) * 10 * SEC, noise_code(&r), 1);
    t += SM_PAT_HISTORY * 10 * SEC;
    ck_assert_ptr_null(find(L, list(&st, t), SM_PAT_CORRELATION, C_DOWN, -1));
    sm_pattern_record(&st, t + MIN, C_DEGRADED, 1);
    ck_assert(!sm_pattern_predict(&st, t + MIN + SEC, C_DOWN, &f));

    /* or by time alone: older than history_ms (7 days) */
    st = copy;
    int64_t later = t + 7 * DAY + HOUR;
    ck_assert_uint_eq(sm_pattern_list(&st, later, NULL, 0), 0);
    sm_pattern_record(&st, later, C_DEGRADED, 1);
    ck_assert(!sm_pattern_predict(&st, later + SEC, C_DOWN, &f));

    /* a spike is forgotten two generations (7-14 days) after it stopped */
    init(&st);
    t = quorum_at_two(&st, 8, 6);
    ck_assert(sm_pattern_predict(&st, T0 + 6 * DAY + 13 * HOUR + 30 * MIN,
                                 C_QUORUM, &f));
    copy = st;
    int64_t quiet = T0 + 21 * DAY + 13 * HOUR + 30 * MIN;
    ck_assert(!sm_pattern_predict(&st, quiet, C_QUORUM, &f));   /* time */
    rng q = {4};
    add_noise(&S, &q, t, T0 + 21 * DAY, 20 * MIN, 40 * MIN);
    feed(&st, &S);                                              /* and data */
    ck_assert(!sm_pattern_predict(&st, quiet, C_QUORUM, &f));
    ck_assert_ptr_null(find(L, list(&st, quiet), SM_PAT_SPIKE, C_QUORUM, -1));
    /* on the way: a day after it stopped it still stands (6 days of 7
     * with it); three days after, it has faded under the floor (its hour
     * has gone on being covered without it) */
    ck_assert(sm_pattern_predict(&copy, T0 + 7 * DAY + 13 * HOUR + 30 * MIN,
                                 C_QUORUM, &f));
    ck_assert(!sm_pattern_predict(&copy, T0 + 9 * DAY + 13 * HOUR + 30 * MIN,
                                  C_QUORUM, &f));
    ck_assert_int_eq(f.pattern.kind, SM_PAT_SPIKE);
    ck_assert_double_lt(f.confidence, 0.7);
}
END_TEST

/* --------------------------------------------------------- determinism */

static void build(sm_pattern_state *st)
{
    int64_t t;
    init(st);
    degraded_then_down(st, 0xabcdefULL, 8, &t);
    rng r = {17};
    add_noise(&S, &r, t, T0 + 6 * DAY, 20 * MIN, 40 * MIN);
    for (int d = 1; d < 6; d++)
        for (int k = 0; k < 3; k++)
            add(&S, T0 + d * DAY + 9 * HOUR + uni(&r, 0, 59 * MIN), C_BACKLOG,
                (uint32_t)k);
    feed(st, &S);
}

START_TEST(deterministic)
{
    static sm_pattern_state a, b;
    static sm_pattern la[512], lb[512];
    build(&a);
    build(&b);
    ck_assert_int_eq(memcmp(&a, &b, sizeof a), 0);
    ck_assert(sm_pattern_valid(&a));
    for (int64_t now = T0 + 6 * DAY; now < T0 + 7 * DAY; now += 37 * MIN) {
        size_t na = sm_pattern_list(&a, now, la, 512);
        size_t nb = sm_pattern_list(&b, now, lb, 512);
        ck_assert_uint_eq(na, nb);
        ck_assert_int_eq(memcmp(la, lb, (na < 512 ? na : 512) * sizeof la[0]),
                         0);
        for (unsigned c = 0; c < SM_PAT_CODES; c++) {
            sm_pattern_forecast fa, fb;
            bool ya = sm_pattern_predict(&a, now, c, &fa);
            bool yb = sm_pattern_predict(&b, now, c, &fb);
            ck_assert_int_eq(ya, yb);
            ck_assert_int_eq(memcmp(&fa, &fb, sizeof fa), 0);
        }
    }
    /* and the input was not empty of patterns */
    sm_pattern_forecast f;
    ck_assert(sm_pattern_predict(&a, T0 + 6 * DAY + 8 * HOUR + 40 * MIN,
                                 C_BACKLOG, &f));
    ck_assert_int_eq(f.pattern.kind, SM_PAT_SPIKE);
}
END_TEST

/* ----------------------------------------------------------- contracts */

START_TEST(inputs_and_settings)
{
    sm_pattern_state st;
    sm_pattern_config cfg;
    sm_pattern_forecast f;

    sm_pattern_config_default(&cfg);
    ck_assert_int_eq(cfg.min_occurrences, 5);
    ck_assert_double_eq(cfg.confidence, 0.7);
    ck_assert_int_eq(sm_pattern_config_check(&cfg), SM_OK);
    cfg.confidence = 0;
    ck_assert_int_eq(sm_pattern_init(&st, &cfg), SM_ERR_CONFIG);
    cfg.confidence = NAN;
    ck_assert_int_eq(sm_pattern_config_check(&cfg), SM_ERR_CONFIG);
    sm_pattern_config_default(&cfg);
    cfg.corr_window_ms = 2 * DAY;
    ck_assert_int_eq(sm_pattern_config_check(&cfg), SM_ERR_CONFIG);
    ck_assert_int_eq(sm_pattern_init(NULL, NULL), SM_ERR_INVALID);

    init(&st);
    ck_assert_int_eq(sm_pattern_record(&st, T0, SM_PAT_CODES, 1),
                     SM_ERR_INVALID);
    ck_assert_int_eq(sm_pattern_record(&st, SM_PAT_TS_MAX + 1, 1, 1),
                     SM_ERR_INVALID);
    ck_assert_uint_eq(st.total, 0);
    ck_assert(!sm_pattern_predict(&st, T0, SM_PAT_CODES, &f));
    ck_assert_ptr_nonnull(f.reasoning);
    ck_assert(!sm_pattern_predict(&st, T0, 1, &f));
    ck_assert_int_eq(f.pattern.kind, SM_PAT_NONE);
    ck_assert_str_eq(f.reasoning, "no learned pattern forecasts it");
    ck_assert_uint_eq(sm_pattern_list(&st, T0, NULL, 0), 0);

    /* a late happening is taken at the newest time: the ring stays ordered */
    sm_pattern_record(&st, T0 + MIN, 1, 1);
    sm_pattern_record(&st, T0, 2, 1);
    ck_assert_int_eq(st.ring[1].ts_ms, T0 + MIN);
    ck_assert(sm_pattern_valid(&st));
    st.ring[0].code = SM_PAT_CODES;
    ck_assert(!sm_pattern_valid(&st));

    /* a stricter learner: the 8-pair correlation (conf ~0.9) no longer
     * reaches a 0.95 floor */
    int64_t t;
    init(&st);
    degraded_then_down(&st, 0x9e3779b97f4a7c15ULL, 8, &t);
    sm_pattern_config_default(&cfg);
    cfg.confidence = 0.95;
    ck_assert_int_eq(sm_pattern_set_config(&st, &cfg), SM_OK);
    sm_pattern_record(&st, t + MIN, C_DEGRADED, 1);
    ck_assert(!sm_pattern_predict(&st, t + MIN + SEC, C_DOWN, &f));
    ck_assert_int_eq(f.pattern.kind, SM_PAT_CORRELATION);
    ck_assert_double_lt(f.confidence, 0.95);

    ck_assert_str_eq(sm_pattern_kind_str(SM_PAT_SPIKE), "spike");
    ck_assert_str_eq(sm_pattern_kind_str((sm_pattern_kind)99), "unknown");
}
END_TEST

static Suite *pattern_suite(void)
{
    Suite *s = suite_create("pattern");
    TCase *learn = tcase_create("learn");
    tcase_add_test(learn, correlation_fires);
    tcase_add_test(learn, correlation_has_a_direction);
    tcase_add_test(learn, frequent_follower_is_not_a_correlation);
    tcase_add_test(learn, noise_learns_nothing);
    tcase_add_test(learn, noise_over_days_has_no_spike);
    tcase_add_test(learn, fewer_than_five_learn_nothing);
    tcase_add_test(learn, regular_interval);
    tcase_add_test(learn, regular_interval_beyond_horizon);
    tcase_add_test(learn, irregular_interval);
    tcase_add_test(learn, sequence_trigram);
    tcase_add_test(learn, hour_of_day_spike);
    tcase_add_test(learn, one_day_burst_is_not_a_spike);
    tcase_add_test(learn, busier_hour_under_twice_is_not_a_spike);
    suite_add_tcase(s, learn);

    TCase *bound = tcase_create("bounded");
    tcase_add_test(bound, bounded_state);
    tcase_add_test(bound, stopped_patterns_age_out);
    tcase_add_test(bound, deterministic);
    tcase_add_test(bound, inputs_and_settings);
    suite_add_tcase(s, bound);
    return s;
}

int main(void)
{
    return sm_run_suite(pattern_suite());
}
