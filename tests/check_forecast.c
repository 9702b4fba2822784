/*
 * check_forecast.c - the forecasters (core/forecast.h): the robust trend,
 * the raise / update / withdraw life of a prediction, and vectors shaped
 * like the faults real swarms show (a leak under a garbage-collection
 * saw-tooth, a spike, token burns that run on or stop short, budget
 * top-ups, queue surges that grow or drain).
 *
 * Vectors are generated here with a seeded xorshift64* (no rand(), no
 * libm), each run over several seeds; time is event time only. The
 * figures a run observes (lead times, ETA errors) are printed as
 * "forecast: ..." lines and asserted against fixed bounds.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forecast.h"
#include "runner.h"

#define T0 INT64_C(1700000000000)       /* an ordinary epoch-ms start */
#define SEC INT64_C(1000)
#define GB 1e9
#define MB 1e6
#define NSEEDS 16

/* --------------------------------------------------------------- prng */

typedef struct prng {
    uint64_t s;
} prng;

static void prng_seed(prng *r, uint64_t seed)
{
    r->s = seed * UINT64_C(0x9E3779B97F4A7C15) + 1;
}

static uint64_t prng_next(prng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * UINT64_C(0x2545F4914F6CDD1D);
}

/* Uniform in [lo, hi). */
static double unif(prng *r, double lo, double hi)
{
    return lo + (hi - lo) * (double)(prng_next(r) >> 11) * 0x1.0p-53;
}

/* ------------------------------------------------------------- driver */

static double secs(int64_t ms)
{
    return (double)ms / 1000.0;
}

/* One trend and one forecast fed a stream, with what happened to them. */
typedef struct drive {
    sm_trend_config tc;
    sm_forecast_config fc;
    sm_trend t;
    sm_forecast f;
    double accuracy;            /* the source's accuracy input */
    bool minus_spread;          /* memory: the limit less the saw height */
    int raises, updates, withdraws;
    int64_t first_raise_ms;     /* -1: never */
    int64_t first_withdraw_ms;  /* -1: never */
    int64_t last_withdraw_ms;   /* -1: never */
    int64_t last_raise_ms;
    sm_fc_verdict raise;        /* the first RAISE */
    sm_fc_verdict last_pub;     /* the last RAISE or UPDATE */
    double max_slope, min_slope;    /* over the fits of 6+ points */
    uint64_t digest;            /* FNV-1a over every verdict and fit */
    bool trace;                 /* FC_TRACE set: print every evaluation */
} drive;

static void drive_init(drive *d, sm_fc_source src)
{
    memset(d, 0, sizeof *d);
    ck_assert_int_eq(sm_fc_defaults(src, &d->tc, &d->fc), SM_OK);
    sm_trend_init(&d->t);
    sm_forecast_init(&d->f);
    d->accuracy = 0.6;
    d->minus_spread = src == SM_FC_MEMORY;
    d->first_raise_ms = d->first_withdraw_ms = d->last_withdraw_ms = -1;
    d->max_slope = -1e300;
    d->min_slope = 1e300;
    d->digest = UINT64_C(14695981039346656037);
    d->trace = getenv("FC_TRACE") != NULL;
}

static void mix(drive *d, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        d->digest ^= b[i];
        d->digest *= UINT64_C(1099511628211);
    }
}

/* Feeds one sample; evaluates the forecast on each new point, a reset,
 * or when the caller says the limit moved. */
static void drive_sample(drive *d, int64_t ts, double v, double limit,
                         bool limit_moved)
{
    unsigned r = sm_trend_add(&d->t, &d->tc, ts, v);
    if (!r && !limit_moved)
        return;
    if (d->minus_spread)
        limit -= sm_trend_spread(&d->t);
    bool reset = limit_moved || (r & (SM_TREND_RESET | SM_TREND_CHANGE));
    sm_fc_verdict v2 = sm_forecast_eval(&d->f, &d->fc, &d->t, ts, limit,
                                        d->accuracy, reset);
    if (sm_trend_points(&d->t) >= 6) {
        double s = sm_trend_slope(&d->t);
        if (s > d->max_slope)
            d->max_slope = s;
        if (s < d->min_slope)
            d->min_slope = s;
    }
    mix(d, &v2.action, sizeof v2.action);
    mix(d, &v2.eta_ms, sizeof v2.eta_ms);
    mix(d, &v2.fail_at_ms, sizeof v2.fail_at_ms);
    mix(d, &v2.confidence, sizeof v2.confidence);
    mix(d, &d->t.slope, sizeof d->t.slope);
    mix(d, &d->t.level, sizeof d->t.level);
    mix(d, &d->t.quality, sizeof d->t.quality);
    if (d->trace)
        printf("  %.0f v=%.4g %s %s eta=%.0f conf=%.2f q=%.2f n=%u "
               "slope=%.4g band=%.3g\n", secs(ts - T0), v,
               sm_fc_action_str(v2.action), v2.reason, secs(v2.eta_ms),
               v2.confidence, sm_trend_quality(&d->t),
               sm_trend_points(&d->t), sm_trend_slope(&d->t), d->t.band);
    switch (v2.action) {
    case SM_FC_RAISE:
        if (d->raises++ == 0) {
            d->first_raise_ms = ts;
            d->raise = v2;
        }
        d->last_raise_ms = ts;
        d->last_pub = v2;
        break;
    case SM_FC_UPDATE:
        d->updates++;
        d->last_pub = v2;
        break;
    case SM_FC_WITHDRAW:
        if (d->withdraws++ == 0)
            d->first_withdraw_ms = ts;
        d->last_withdraw_ms = ts;
        break;
    case SM_FC_NONE:
        break;
    }
}

/* ------------------------------------------------------ memory vectors */

typedef struct memgen {
    prng r;
    double base, amp, limit;
    double saw, step;           /* the saw-tooth and its rise per second */
    double leak_mb_min;         /* 0: none */
    int64_t onset_ms, ramp_ms;  /* of the leak, from T0 */
    double leak;                /* bytes leaked so far */
} memgen;

static void memgen_period(memgen *g)
{
    g->step = g->amp * unif(&g->r, 0.9, 1.1) / unif(&g->r, 60, 90);
}

static void memgen_init(memgen *g, uint64_t seed, double leak_mb_min)
{
    memset(g, 0, sizeof *g);
    prng_seed(&g->r, seed);
    g->base = 3 * GB;
    g->amp = 1 * GB;
    g->limit = 8 * GB;
    g->saw = g->base;
    g->leak_mb_min = leak_mb_min;
    g->onset_ms = 300 * SEC;
    g->ramp_ms = 60 * SEC;
    memgen_period(g);
}

/* The true floor (the collections' level) at rel_ms. */
static double memgen_floor_at(const memgen *g, int64_t rel_ms)
{
    if (rel_ms <= g->onset_ms)
        return g->base;
    double t = secs(rel_ms - g->onset_ms), ramp = secs(g->ramp_ms);
    double rate = g->leak_mb_min * MB / 60.0;
    double leak = t < ramp ? rate * t * t / (2 * ramp)
                           : rate * (ramp / 2 + (t - ramp));
    return g->base + leak;
}

/* One sample a second; returns memory used at rel_ms. */
static double memgen_next(memgen *g, int64_t rel_ms)
{
    g->saw += g->step * unif(&g->r, 0.5, 1.5);
    if (g->saw > g->base + g->amp) {        /* a collection */
        g->saw = g->base + unif(&g->r, -0.1, 0.1) * GB;
        memgen_period(g);
    }
    g->leak = memgen_floor_at(g, rel_ms) - g->base;
    double m = g->saw + g->leak;
    return m > 0.99 * g->limit ? 0.99 * g->limit : m;
}

/* ------------------------------------------------------ token vectors */

typedef struct tokgen {
    prng r;
    double budget0, budget, used;
    double rate;                /* steady tokens per second */
    double burn;                /* extra x rate at full effect; 0: none */
    int64_t onset_ms, ramp_ms;
    double stop_at;             /* the burn ends for good at this ratio */
    bool stopped;
    int64_t stopped_ms;         /* -1 */
    double topup_at;            /* operators top up past this; 0: never */
    int64_t topup_due_ms;       /* -1: none pending */
} tokgen;

static void tokgen_init(tokgen *g, uint64_t seed, double steady_s)
{
    memset(g, 0, sizeof *g);
    prng_seed(&g->r, seed);
    g->budget0 = g->budget = 40e6;
    g->rate = g->budget / steady_s;
    g->used = 0.35 * g->budget;
    g->stopped_ms = -1;
    g->topup_due_ms = -1;
}

/* One sample a second: completions land in chunks (0-4 a second, each
 * 0.3-1.7x the mean), the burn on top. Returns true if the budget jumped
 * (a top-up) at this sample. */
static bool tokgen_next(tokgen *g, int64_t rel_ms)
{
    for (int k = 0; k < 4; k++)
        if (unif(&g->r, 0, 1) < 0.25)
            g->used += g->rate * unif(&g->r, 0.3, 1.7);
    if (g->burn > 0 && !g->stopped && rel_ms >= g->onset_ms) {
        double x = rel_ms < g->onset_ms + g->ramp_ms
                       ? secs(rel_ms - g->onset_ms) / secs(g->ramp_ms) : 1.0;
        g->used += g->burn * g->rate * x * unif(&g->r, 0.8, 1.2);
        if (g->stop_at > 0 && g->used >= g->stop_at * g->budget) {
            g->stopped = true;
            g->stopped_ms = rel_ms;
        }
    }
    if (g->used > g->budget)
        g->used = g->budget;
    bool burning = g->burn > 0 && !g->stopped && rel_ms >= g->onset_ms;
    if (g->topup_at > 0 && !burning && g->topup_due_ms < 0 &&
        g->used > g->topup_at * g->budget)
        g->topup_due_ms = rel_ms + (int64_t)unif(&g->r, 20, 90) * SEC;
    if (g->topup_due_ms >= 0 && rel_ms >= g->topup_due_ms) {
        g->budget += 0.5 * g->budget0;
        g->topup_due_ms = -1;
        return true;
    }
    return false;
}

/* ------------------------------------------------------ queue vectors */

typedef struct quegen {
    prng r;
    double pending;
    double arrive, serve;       /* per second, baseline */
} quegen;

static void quegen_init(quegen *g, uint64_t seed)
{
    memset(g, 0, sizeof *g);
    prng_seed(&g->r, seed);
    g->arrive = 2.0;
    g->serve = 2.5;
}

/* A Poisson-like count with mean m (sum of 8 Bernoulli slots). */
static double count(prng *r, double m)
{
    double n = 0;
    for (int k = 0; k < 8; k++)
        if (unif(r, 0, 1) < m / 8)
            n++;
    return n;
}

static double quegen_next(quegen *g, double arrive, double serve)
{
    g->pending += count(&g->r, arrive);
    g->pending -= count(&g->r, serve);
    if (g->pending < 0)
        g->pending = 0;
    return g->pending;
}

/* =================================================== sm_trend units */

static sm_trend_config plain_cfg(uint32_t mode)
{
    sm_trend_config c;
    memset(&c, 0, sizeof c);
    c.step_ms = 5000;
    c.mode = mode;
    c.max_points = SM_TREND_POINTS;
    c.min_points = 3;
    c.change_run = 0;
    c.change_base = 3;
    c.change_k = 3;
    return c;
}

START_TEST(trend_exact_line)
{
    sm_trend_config c = plain_cfg(SM_TREND_LAST);
    sm_trend t;
    sm_trend_init(&t);
    unsigned points = 0;
    for (int s = 0; s <= 100; s++)
        points += sm_trend_add(&t, &c, T0 + s * SEC, 100.0 + 2.0 * s) &
                  SM_TREND_POINT;
    ck_assert_uint_eq(points, 20);      /* steps closed by seconds 5..100 */
    ck_assert(sm_trend_ready(&t));
    ck_assert_uint_eq(sm_trend_points(&t), SM_TREND_POINTS);
    ck_assert_double_eq_tol(sm_trend_slope(&t), 2.0, 1e-12);
    ck_assert_double_eq(sm_trend_quality(&t), 1.0);
    /* the newest point is second 99 (v = 298): level extrapolates */
    ck_assert_double_eq_tol(sm_trend_level(&t, T0 + 110 * SEC), 320.0, 1e-9);
    /* 400 is reached at second 150: 40 s after second 110 */
    ck_assert_int_eq(sm_trend_eta_ms(&t, T0 + 110 * SEC, 400.0), 40000);
    ck_assert_int_eq(sm_trend_eta_ms(&t, T0 + 110 * SEC, 300.0), 0);
    ck_assert_int_eq(sm_trend_age_ms(&t, T0 + 110 * SEC), 11000);

    /* a falling line: never approaches a limit above */
    sm_trend_init(&t);
    for (int s = 0; s <= 100; s++)
        sm_trend_add(&t, &c, T0 + s * SEC, 1000.0 - 3.0 * s);
    ck_assert_double_eq_tol(sm_trend_slope(&t), -3.0, 1e-12);
    ck_assert_double_eq(sm_trend_quality(&t), 1.0);
    ck_assert_int_eq(sm_trend_eta_ms(&t, T0 + 100 * SEC, 2000.0), -1);
}
END_TEST

/* Quality is Kendall's tau-a: ties count neither way. A queue at 0 for
 * four steps, then at 1 for four: 16 of 28 pairs agree, none disagrees. */
START_TEST(trend_quality_is_kendall_tau)
{
    sm_trend_config c = plain_cfg(SM_TREND_LAST);
    sm_trend t;
    sm_trend_init(&t);
    for (int k = 0; k <= 8; k++)
        sm_trend_add(&t, &c, T0 + k * 5 * SEC, k < 4 ? 0.0 : 1.0);
    ck_assert_uint_eq(sm_trend_points(&t), 8);
    ck_assert(sm_trend_slope(&t) > 0);
    ck_assert_double_eq_tol(sm_trend_quality(&t), 16.0 / 28.0, 1e-12);
    /* noise around a flat line: low quality */
    prng r;
    prng_seed(&r, 11);
    sm_trend_init(&t);
    for (int k = 0; k <= 40; k++)
        sm_trend_add(&t, &c, T0 + k * 5 * SEC, 100.0 + unif(&r, -5, 5));
    ck_assert(sm_trend_quality(&t) < 0.4);
}
END_TEST

START_TEST(trend_ignores_outliers)
{
    sm_trend_config c = plain_cfg(SM_TREND_LAST);
    sm_trend t;
    sm_trend_init(&t);
    /* one point a step; 4 of the 16 points held are wild (25%) */
    for (int k = 0; k < 40; k++) {
        double v = 50.0 + 0.5 * k * 5;
        if (k % 4 == 1)
            v += (k % 8 == 1) ? 1000.0 : -700.0;
        sm_trend_add(&t, &c, T0 + k * 5 * SEC, v);
    }
    sm_trend_tick(&t, &c, T0 + 40 * 5 * SEC);
    ck_assert_double_eq_tol(sm_trend_slope(&t), 0.5, 0.5 * 0.02);
    ck_assert_double_eq_tol(sm_trend_level(&t, T0 + 39 * 5 * SEC),
                            50.0 + 0.5 * 39 * 5, 1.0);
    /* a least-squares line would have been dragged: the last wild point
     * is a +1000 near the newest end */
    ck_assert(sm_trend_quality(&t) > 0.3 && sm_trend_quality(&t) < 1.0);
}
END_TEST

START_TEST(trend_min_mode_takes_the_floor)
{
    sm_trend_config c = plain_cfg(SM_TREND_MIN);
    c.step_ms = 10000;
    sm_trend t;
    sm_trend_init(&t);
    /* a saw of 10 s: 5 .. 9.5 then back, the floor rising 1 a step */
    for (int s = 0; s < 200; s++) {
        double v = 5.0 + 0.5 * (s % 10) + (s / 10);
        if (s == 57)
            v = 1e6;                    /* a spike: never a point */
        sm_trend_add(&t, &c, T0 + s * SEC, v);
    }
    ck_assert(sm_trend_ready(&t));
    ck_assert_double_eq_tol(sm_trend_slope(&t), 0.1, 1e-12);
    ck_assert_double_eq(sm_trend_quality(&t), 1.0);
    /* each point is the step's first sample, the floor */
    ck_assert_int_eq(t.fit_ts_ms, T0 + 180 * SEC);
    ck_assert_double_eq_tol(t.level, 5.0 + 18, 1e-9);
    /* the saw's height, the rise inside a step taken out: 4.5 - 0.9 */
    ck_assert_double_eq_tol(sm_trend_spread(&t), 3.6, 1e-9);
}
END_TEST

START_TEST(trend_late_nan_tick_gap)
{
    sm_trend_config c = plain_cfg(SM_TREND_LAST);
    sm_trend t;
    sm_trend_init(&t);
    for (int s = 0; s < 30; s++)
        sm_trend_add(&t, &c, T0 + s * SEC, (double)s);
    uint32_t n = sm_trend_points(&t);
    ck_assert_uint_eq(n, 5);
    /* late (before the open step) and non-finite samples change nothing */
    ck_assert_uint_eq(sm_trend_add(&t, &c, T0 + 3 * SEC, 1e9), 0);
    ck_assert_uint_eq(t.late, 1);
    ck_assert_uint_eq(sm_trend_add(&t, &c, T0 + 29 * SEC, 0.0 / 0.0), 0);
    ck_assert_uint_eq(sm_trend_add(&t, &c, T0 + 29 * SEC, 1.0 / 0.0), 0);
    ck_assert_uint_eq(sm_trend_points(&t), n);
    /* a tick inside the open step does nothing; at its end it closes it */
    ck_assert_uint_eq(sm_trend_tick(&t, &c, T0 + 29 * SEC + 999), 0);
    ck_assert_uint_eq(sm_trend_tick(&t, &c, T0 + 30 * SEC), SM_TREND_POINT);
    ck_assert_uint_eq(sm_trend_points(&t), n + 1);
    ck_assert_uint_eq(sm_trend_tick(&t, &c, T0 + 60 * SEC), 0);  /* empty */
    /* a silence longer than the window: the old points leave the fit */
    sm_trend_add(&t, &c, T0 + 1000 * SEC, 500.0);
    sm_trend_add(&t, &c, T0 + 1005 * SEC, 505.0);
    ck_assert(!sm_trend_ready(&t));
    ck_assert_int_eq(sm_trend_eta_ms(&t, T0 + 1005 * SEC, 1e6), -1);
    ck_assert(sm_trend_valid(&t));
}
END_TEST

START_TEST(trend_reset_on_drop)
{
    sm_trend_config c = plain_cfg(SM_TREND_LAST);
    c.reset_drop = 0.2;
    sm_trend t;
    sm_trend_init(&t);
    for (int s = 0; s < 100; s++)
        sm_trend_add(&t, &c, T0 + s * SEC, 1000.0 + 10.0 * s);
    ck_assert(sm_trend_ready(&t));
    /* a 15% dip is not a reset; a 30% drop is */
    ck_assert_uint_eq(sm_trend_add(&t, &c, T0 + 100 * SEC, 1990.0 * 0.85) &
                      SM_TREND_RESET, 0);
    ck_assert_uint_eq(sm_trend_add(&t, &c, T0 + 101 * SEC, 1990.0 * 0.85 *
                                   0.7) & SM_TREND_RESET, SM_TREND_RESET);
    ck_assert(!sm_trend_ready(&t));
    ck_assert_uint_eq(t.count, 0);
    ck_assert_uint_eq(t.resets, 1);
}
END_TEST

/* A change of regime (a slope 10x steeper) is followed within a few
 * steps, not after a third of the window. */
START_TEST(trend_follows_a_change)
{
    sm_trend_config c;
    ck_assert_int_eq(sm_fc_defaults(SM_FC_TOKENS, &c, NULL), SM_OK);
    sm_trend t;
    sm_trend_init(&t);
    prng r;
    prng_seed(&r, 7);
    double v = 1e6;
    int64_t seen = -1;
    for (int s = 0; s < 300; s++) {
        v += (s < 200 ? 100.0 : 1000.0) * unif(&r, 0.6, 1.4);
        sm_trend_add(&t, &c, T0 + s * SEC, v);
        if (s > 200 && seen < 0 && sm_trend_slope(&t) > 700)
            seen = s;
    }
    ck_assert_uint_ge(t.changes, 1);
    ck_assert_int_ge(seen, 0);
    printf("forecast: slope x10 followed after %d s (tokens preset)\n",
           (int)seen - 200);
    ck_assert_int_le(seen - 200, 25);
    ck_assert_double_eq_tol(sm_trend_slope(&t), 1000.0, 150.0);
}
END_TEST

START_TEST(trend_config_and_sizes)
{
    sm_trend_config tc;
    sm_forecast_config fc;
    for (int s = SM_FC_TOKENS; s <= SM_FC_QUEUE; s++) {
        ck_assert_int_eq(sm_fc_defaults((sm_fc_source)s, &tc, &fc), SM_OK);
        ck_assert(sm_trend_config_valid(&tc));
        ck_assert(sm_forecast_config_valid(&fc));
    }
    ck_assert_int_eq(sm_fc_defaults((sm_fc_source)9, &tc, &fc),
                     SM_ERR_INVALID);
    sm_trend_config bad = tc;
    bad.step_ms = 0;
    ck_assert(!sm_trend_config_valid(&bad));
    bad = tc;
    bad.min_points = 2;
    ck_assert(!sm_trend_config_valid(&bad));
    bad = tc;
    bad.max_points = SM_TREND_POINTS + 1;
    ck_assert(!sm_trend_config_valid(&bad));
    bad = tc;
    bad.change_run = 1;
    ck_assert(!sm_trend_config_valid(&bad));
    bad = tc;
    bad.reset_drop = 1.0;
    ck_assert(!sm_trend_config_valid(&bad));
    sm_forecast_config fb = fc;
    fb.q_clear = fb.q_raise + 0.1;
    ck_assert(!sm_forecast_config_valid(&fb));
    fb = fc;
    fb.stale_ms = fb.fresh_ms;
    ck_assert(!sm_forecast_config_valid(&fb));
    fb = fc;
    fb.raise_steps = 0;
    ck_assert(!sm_forecast_config_valid(&fb));

    /* the promise of the header: a few hundred bytes, plain data */
    ck_assert_uint_le(sizeof(sm_trend), 600);
    ck_assert_uint_le(sizeof(sm_forecast), 64);
    sm_trend t;
    sm_trend_init(&t);
    ck_assert(sm_trend_valid(&t));
    t.head = SM_TREND_POINTS;
    ck_assert(!sm_trend_valid(&t));
    sm_forecast f;
    sm_forecast_init(&f);
    ck_assert(sm_forecast_valid(&f));
    f.raised = 2;
    ck_assert(!sm_forecast_valid(&f));
    ck_assert_str_eq(sm_fc_action_str(SM_FC_WITHDRAW), "withdraw");
    ck_assert_str_eq(sm_fc_action_str((sm_fc_action)42), "unknown");
}
END_TEST

/* ================================================ sm_forecast units */

static sm_forecast_config unit_fc(void)
{
    sm_forecast_config c;
    memset(&c, 0, sizeof c);
    c.horizon_ms = 600 * SEC;
    c.clear_factor = 1.5;
    c.q_raise = 0.6;
    c.q_clear = 0.3;
    c.raise_steps = 3;
    c.clear_steps = 2;
    c.raise_points = 5;
    c.update_frac = 0.25;
    c.update_min_ms = 30 * SEC;
    c.publish_min = 0.7;
    c.fresh_ms = 10 * SEC;
    c.stale_ms = 60 * SEC;
    return c;
}

static sm_fc_verdict step(sm_forecast *f, const sm_forecast_config *c,
                          int64_t now_s, int64_t eta_s, double q, bool reset)
{
    sm_fc_input in;
    in.now_ms = T0 + now_s * SEC;
    in.eta_ms = eta_s < 0 ? eta_s : eta_s * SEC;
    in.quality = q;
    in.points = 8;
    in.age_ms = 2 * SEC;
    in.accuracy = 0.6;
    in.reset = reset;
    return sm_forecast_step(f, c, &in);
}

START_TEST(forecast_confidence_formula)
{
    sm_forecast_config c = unit_fc();
    /* 0.5 x 0.8 + 0.3 x 0.6 + 0.2 x 1 */
    ck_assert_double_eq_tol(sm_forecast_confidence(&c, 0.8, 0.6, 0), 0.78,
                            1e-12);
    /* recency halfway between fresh (10 s) and stale (60 s): 0.5 */
    ck_assert_double_eq_tol(sm_forecast_confidence(&c, 0.8, 0.6, 35 * SEC),
                            0.68, 1e-12);
    ck_assert_double_eq_tol(sm_forecast_confidence(&c, 0.8, 0.6, 60 * SEC),
                            0.58, 1e-12);
    ck_assert_double_eq_tol(sm_forecast_confidence(&c, 0.8, 0.6, -1), 0.58,
                            1e-12);
    ck_assert_double_eq(sm_forecast_confidence(&c, 2.0, 2.0, 0), 1.0);
}
END_TEST

START_TEST(forecast_raise_needs_steps_quality_confidence)
{
    sm_forecast_config c = unit_fc();
    sm_forecast f;
    sm_forecast_init(&f);
    /* two good steps, a bad one, then three good ones */
    ck_assert_int_eq(step(&f, &c, 0, 300, 0.9, false).action, SM_FC_NONE);
    ck_assert_int_eq(step(&f, &c, 5, 295, 0.9, false).action, SM_FC_NONE);
    ck_assert_int_eq(step(&f, &c, 10, 700, 0.9, false).action, SM_FC_NONE);
    ck_assert_int_eq(step(&f, &c, 15, 290, 0.9, false).action, SM_FC_NONE);
    ck_assert_int_eq(step(&f, &c, 20, 285, 0.9, false).action, SM_FC_NONE);
    sm_fc_verdict v = step(&f, &c, 25, 280, 0.9, false);
    ck_assert_int_eq(v.action, SM_FC_RAISE);
    ck_assert_str_eq(v.reason, "approaching");
    ck_assert_int_eq(v.fail_at_ms, T0 + (25 + 280) * SEC);
    ck_assert_double_eq_tol(v.confidence, 0.5 * 0.9 + 0.18 + 0.2, 1e-12);
    ck_assert_uint_eq(f.raised, 1);

    /* quality 0.55 < q_raise never raises; 0.62 passes q_raise but its
     * confidence (0.69) is under the publish threshold */
    sm_forecast_init(&f);
    for (int k = 0; k < 10; k++)
        ck_assert_int_eq(step(&f, &c, k * 5, 300, 0.55, false).action,
                         SM_FC_NONE);
    for (int k = 10; k < 20; k++)
        ck_assert_int_eq(step(&f, &c, k * 5, 300, 0.62, false).action,
                         SM_FC_NONE);
    /* an ETA of 0 (already over) is not a prediction */
    for (int k = 20; k < 30; k++)
        ck_assert_int_eq(step(&f, &c, k * 5, 0, 1.0, false).action,
                         SM_FC_NONE);
    /* just inside the horizon raises, just beyond does not */
    sm_forecast_init(&f);
    for (int k = 0; k < 10; k++)
        ck_assert_int_eq(step(&f, &c, k * 5, 601, 1.0, false).action,
                         SM_FC_NONE);
    step(&f, &c, 50, 600, 1.0, false);
    step(&f, &c, 55, 600, 1.0, false);
    ck_assert_int_eq(step(&f, &c, 60, 600, 1.0, false).action, SM_FC_RAISE);
}
END_TEST

START_TEST(forecast_update_and_withdraw)
{
    sm_forecast_config c = unit_fc();
    sm_forecast f;
    sm_forecast_init(&f);
    step(&f, &c, 0, 400, 0.9, false);
    step(&f, &c, 5, 395, 0.9, false);
    ck_assert_int_eq(step(&f, &c, 10, 390, 0.9, false).action, SM_FC_RAISE);
    /* fail_at 400; the ETA keeps to it: nothing to say */
    ck_assert_int_eq(step(&f, &c, 50, 350, 0.9, false).action, SM_FC_NONE);
    /* it moves to 200 (by 200 s > 25% of 150) but too soon after the
     * publish (20 s < 30 s); then it is due */
    ck_assert_int_eq(step(&f, &c, 30, 170, 0.9, false).action, SM_FC_NONE);
    sm_fc_verdict v = step(&f, &c, 50, 150, 0.9, false);
    ck_assert_int_eq(v.action, SM_FC_UPDATE);
    ck_assert_str_eq(v.reason, "eta_moved");
    ck_assert_int_eq(v.fail_at_ms, T0 + 200 * SEC);
    /* a move under 25% of the ETA is not material */
    ck_assert_int_eq(step(&f, &c, 90, 140, 0.9, false).action, SM_FC_NONE);
    /* in the hysteresis band (ETA 700 s: past the horizon, under 1.5x) it
     * stays raised: 700 vs fail_at 200 is an update */
    ck_assert_int_eq(step(&f, &c, 100, 700, 0.9, false).action,
                     SM_FC_UPDATE);
    /* beyond 1.5 x horizon: one step is not enough, two are */
    ck_assert_int_eq(step(&f, &c, 105, 901, 0.9, false).action, SM_FC_NONE);
    ck_assert_int_eq(step(&f, &c, 110, 500, 0.9, false).action, SM_FC_NONE);
    ck_assert_int_eq(step(&f, &c, 115, -1, 0.9, false).action, SM_FC_NONE);
    v = step(&f, &c, 120, -1, 0.9, false);
    ck_assert_int_eq(v.action, SM_FC_WITHDRAW);
    ck_assert_str_eq(v.reason, "not_approaching");
    ck_assert_uint_eq(f.raised, 0);

    /* raised again; low quality withdraws; a reset withdraws at once */
    for (int k = 0; k < 3; k++)
        step(&f, &c, 200 + k * 5, 300, 0.9, false);
    ck_assert_uint_eq(f.raised, 1);
    step(&f, &c, 220, 300, 0.2, false);
    v = step(&f, &c, 225, 300, 0.2, false);
    ck_assert_int_eq(v.action, SM_FC_WITHDRAW);
    ck_assert_str_eq(v.reason, "low_quality");
    for (int k = 0; k < 3; k++)
        step(&f, &c, 300 + k * 5, 300, 0.9, false);
    ck_assert_uint_eq(f.raised, 1);
    /* without a break, an ETA in the hysteresis band (600..900 s) holds
     * it; after a break (a change, a top-up) the band no longer does */
    ck_assert_int_eq(step(&f, &c, 345, 800, 0.9, false).action, SM_FC_UPDATE);
    for (int k = 1; k < 4; k++)
        ck_assert_int_eq(step(&f, &c, 345 + k * 5, 800 - k * 5, 0.9,
                              false).action, SM_FC_NONE);
    ck_assert_uint_eq(f.raised, 1);
    ck_assert_int_eq(step(&f, &c, 380, 290, 0.9, true).action, SM_FC_UPDATE);
    ck_assert_uint_eq(f.broken, 1);
    ck_assert_int_eq(step(&f, &c, 385, 700, 0.9, false).action, SM_FC_NONE);
    v = step(&f, &c, 390, 700, 0.9, false);
    ck_assert_int_eq(v.action, SM_FC_WITHDRAW);
    ck_assert_str_eq(v.reason, "beyond_horizon");
    /* an ETA of 0 (the limit reached) keeps a raised prediction */
    for (int k = 0; k < 3; k++)
        step(&f, &c, 400 + k * 5, 60, 0.9, false);
    ck_assert_uint_eq(f.raised, 1);
    ck_assert_uint_eq(f.broken, 0);     /* a raise starts unbroken */
    for (int k = 0; k < 10; k++)
        ck_assert_int_eq(step(&f, &c, 420 + k * 5, 0, 0.0, false).action,
                         SM_FC_NONE);
    ck_assert_uint_eq(f.raised, 1);
}
END_TEST

/* ===================================================== memory vectors */

/* A 300 MB/min leak under a 1 GB saw-tooth of 60-90 s, limit 8 GB. */
START_TEST(memory_leak_under_sawtooth)
{
    for (uint64_t seed = 1; seed <= NSEEDS; seed++) {
        memgen g;
        memgen_init(&g, seed, 300);
        drive d;
        drive_init(&d, SM_FC_MEMORY);
        double target = 0.9 * g.limit;
        int64_t floor90 = -1, peak90 = -1;
        double slope = 0;
        for (int64_t rel = 0; rel <= 1800 * SEC; rel += SEC) {
            double m = memgen_next(&g, rel);
            if (rel == 1000 * SEC)      /* before the peaks are clipped */
                slope = sm_trend_slope(&d.t);
            if (floor90 < 0 && memgen_floor_at(&g, rel) >= target)
                floor90 = rel;
            if (peak90 < 0 && m >= target)
                peak90 = rel;
            drive_sample(&d, T0 + rel, m, target, false);
        }
        ck_assert_int_ge(floor90, 0);
        ck_assert_int_ge(d.first_raise_ms, 0);
        int64_t raised = d.first_raise_ms - T0;
        int64_t lead = floor90 - raised;
        /* the forecast is of the peaks reaching 90% (limit less the saw
         * height): its error against the first sample over the line */
        int64_t actual = T0 + peak90;
        double err = secs(d.raise.fail_at_ms - actual);
        double err_last = secs(d.last_pub.fail_at_ms - actual);
        double left_last = secs(actual - (d.last_pub.fail_at_ms -
                                          d.last_pub.eta_ms));
        printf("forecast: memory leak seed %d: raised %.0f s after onset, "
               "%.0f s before the floor reaches 90%% (%.0f s before a peak "
               "does); ETA at raise %.0f s, error %+.0f s (%+.0f%%); last "
               "publish %.0f s ahead, error %+.0f s; %d updates, %d "
               "withdrawals\n",
               (int)seed, secs(raised - g.onset_ms), secs(lead),
               secs(peak90 - raised), secs(d.raise.eta_ms), err,
               100.0 * err / secs(peak90 - raised), left_last, err_last,
               d.updates, d.withdraws);
        ck_assert_int_ge(lead, 60 * SEC);
        ck_assert_int_le(raised - g.onset_ms, 360 * SEC);
        /* the first estimate stands on 3 points, one of them the kink at
         * the onset: it may be late by most of the time left; the updates
         * close the gap */
        ck_assert(err > -0.5 * secs(peak90 - raised) &&
                  err < 1.0 * secs(peak90 - raised));
        /* the first sample over the line waits for a saw peak: up to one
         * period (90 s) of error is the saw's, not the forecast's */
        ck_assert(err_last > -0.25 * left_last - 90 &&
                  err_last < 0.25 * left_last + 90);
        ck_assert_int_eq(d.withdraws, 0);
        ck_assert_int_eq(d.raises, 1);
        /* the slope it settled on: 300 MB/min = 5 MB/s */
        ck_assert_double_eq_tol(slope, 5 * MB, 0.75 * MB);
    }
}
END_TEST

/* No leak, one sample at 7.9 GB: nothing raised, the floor stays flat. */
START_TEST(memory_single_spike)
{
    for (uint64_t seed = 1; seed <= NSEEDS; seed++) {
        memgen g;
        memgen_init(&g, seed, 0);
        drive d;
        drive_init(&d, SM_FC_MEMORY);
        for (int64_t rel = 0; rel <= 1800 * SEC; rel += SEC) {
            double m = memgen_next(&g, rel);
            if (rel == 900 * SEC)
                m = 7.9 * GB;
            drive_sample(&d, T0 + rel, m, 0.9 * g.limit, false);
        }
        ck_assert_int_eq(d.raises, 0);
        ck_assert(d.max_slope < 0.5 * MB);      /* 30 MB/min */
        ck_assert(sm_trend_level(&d.t, T0 + 1800 * SEC) < 3.2 * GB);
        ck_assert_double_eq_tol(sm_trend_spread(&d.t), 1.0 * GB, 0.15 * GB);
    }
}
END_TEST

/* The saw-tooth alone for 30 min: nothing raised. */
START_TEST(memory_sawtooth_no_leak)
{
    double worst = 0;
    for (uint64_t seed = 1; seed <= NSEEDS; seed++) {
        memgen g;
        memgen_init(&g, seed + 100, 0);
        drive d;
        drive_init(&d, SM_FC_MEMORY);
        for (int64_t rel = 0; rel <= 1800 * SEC; rel += SEC)
            drive_sample(&d, T0 + rel, memgen_next(&g, rel), 0.9 * g.limit,
                         false);
        ck_assert_int_eq(d.raises, 0);
        ck_assert(d.max_slope < 0.5 * MB);
        ck_assert(d.min_slope > -0.5 * MB);
        if (d.max_slope > worst)
            worst = d.max_slope;
    }
    printf("forecast: saw-tooth without leak: steepest floor slope %.1f "
           "MB/min over %d seeds\n", worst * 60 / MB, NSEEDS);
}
END_TEST

/* ====================================================== token vectors */

typedef struct tokrun {
    drive d;
    int64_t at80, at90, at99;   /* rel ms usage reached x budget; -1 */
} tokrun;

static void token_run(tokrun *tr, tokgen *g, int64_t dur_ms, double spent)
{
    drive_init(&tr->d, SM_FC_TOKENS);
    tr->at80 = tr->at90 = tr->at99 = -1;
    for (int64_t rel = 0; rel <= dur_ms; rel += SEC) {
        bool topup = tokgen_next(g, rel);
        double u = g->used / g->budget;
        if (tr->at80 < 0 && u >= 0.8)
            tr->at80 = rel;
        if (tr->at90 < 0 && u >= 0.9)
            tr->at90 = rel;
        if (tr->at99 < 0 && u >= 0.99)
            tr->at99 = rel;
        drive_sample(&tr->d, T0 + rel, g->used, spent * g->budget, topup);
    }
}

/* 12x from a steady burn that would last an hour: raised >= 60 s before
 * 80% and 90% of the budget. */
START_TEST(token_burn_roomy_budget)
{
    for (uint64_t seed = 1; seed <= NSEEDS; seed++) {
        tokgen g;
        tokgen_init(&g, seed, 3600);
        g.burn = 12;
        g.onset_ms = 300 * SEC;
        g.ramp_ms = 60 * SEC;
        tokrun tr;
        token_run(&tr, &g, 900 * SEC, 0.99);
        ck_assert_int_ge(tr.at90, 0);
        ck_assert_int_ge(tr.d.first_raise_ms, 0);
        int64_t raised = tr.d.first_raise_ms - T0;
        double err = secs(tr.d.raise.fail_at_ms - (T0 + tr.at99));
        printf("forecast: token burn 12x (1 h budget) seed %d: raised %.0f s "
               "after onset; lead to 80%% %.0f s, 90%% %.0f s, 99%% %.0f s; "
               "ETA error at raise %+.0f s\n", (int)seed,
               secs(raised - g.onset_ms), secs(tr.at80 - raised),
               secs(tr.at90 - raised), secs(tr.at99 - raised), err);
        ck_assert_int_ge(tr.at80 - raised, 60 * SEC);
        ck_assert_int_ge(tr.at90 - raised, 60 * SEC);
        ck_assert_int_eq(tr.d.withdraws, 0);
    }
}
END_TEST

/* The simulator's burn: 12x with a budget of 30 min of steady use, from
 * 0.48: 80% comes ~70 s after onset, too soon to be 60 s ahead of; the
 * budget is spent (99%) ~95 s after onset: raised >= 60 s before that. */
START_TEST(token_burn_tight_budget)
{
    for (uint64_t seed = 1; seed <= NSEEDS; seed++) {
        tokgen g;
        tokgen_init(&g, seed, 1800);
        g.burn = 12;
        g.onset_ms = 240 * SEC;
        g.ramp_ms = 60 * SEC;
        tokrun tr;
        token_run(&tr, &g, 600 * SEC, 0.99);
        ck_assert_int_ge(tr.at99, 0);
        ck_assert_int_ge(tr.d.first_raise_ms, 0);
        int64_t raised = tr.d.first_raise_ms - T0;
        printf("forecast: token burn 12x (30 min budget) seed %d: raised "
               "%.0f s after onset; lead to 80%% %.0f s, 90%% %.0f s, 99%% "
               "%.0f s; ETA error at raise %+.0f s\n", (int)seed,
               secs(raised - g.onset_ms), secs(tr.at80 - raised),
               secs(tr.at90 - raised), secs(tr.at99 - raised),
               secs(tr.d.raise.fail_at_ms - (T0 + tr.at99)));
        ck_assert_int_ge(tr.at99 - raised, 60 * SEC);
        ck_assert_int_ge(tr.at90 - raised, 40 * SEC);
    }
}
END_TEST

/* Steady use with operators topping up (+50%) past 68%, 40 min: the
 * budget never gets within the horizon; nothing raised, and a top-up
 * leaves the rate intact. */
START_TEST(token_topups_steady)
{
    for (uint64_t seed = 1; seed <= NSEEDS; seed++) {
        tokgen g;
        tokgen_init(&g, seed, 1800);
        g.topup_at = 0.68;
        drive d;
        drive_init(&d, SM_FC_TOKENS);
        int topups = 0, n = 0;
        int64_t min_eta = INT64_MAX;
        double sum = 0;
        for (int64_t rel = 0; rel <= 2400 * SEC; rel += SEC) {
            bool topup = tokgen_next(&g, rel);
            double before = sm_trend_slope(&d.t);
            uint32_t head = d.t.head;
            drive_sample(&d, T0 + rel, g.used, 0.99 * g.budget, topup);
            if (topup) {
                /* the budget moved, the burn rate did not: the trend
                 * is untouched unless the sample also closed a step */
                topups++;
                ck_assert(sm_trend_ready(&d.t));
                if (d.t.head == head)
                    ck_assert(sm_trend_slope(&d.t) == before);
            }
            if (sm_trend_ready(&d.t)) {
                sum += sm_trend_slope(&d.t);
                n++;
            }
            if (!d.f.raised && d.f.eta_ms > 0 && d.f.eta_ms < min_eta)
                min_eta = d.f.eta_ms;
        }
        /* on average the slope is the steady rate (no bias) */
        ck_assert_int_gt(n, 2000);
        ck_assert_double_eq_tol(sum / n, g.rate, 0.1 * g.rate);
        ck_assert_uint_eq(d.t.resets, 0);
        printf("forecast: steady use with top-ups seed %d: %d top-ups, "
               "shortest ETA %.0f s (horizon %.0f s)\n", (int)seed, topups,
               secs(min_eta), secs(d.fc.horizon_ms));
        ck_assert_int_ge(topups, 2);
        ck_assert_int_eq(d.raises, 0);
        ck_assert_int_gt(min_eta, d.fc.horizon_ms);
    }
}
END_TEST

/* A 10x burn that stops short at 70%: withdrawn within 60 s of the stop
 * (or never raised), and not raised again. */
START_TEST(token_burn_stops_short)
{
    for (uint64_t seed = 1; seed <= NSEEDS; seed++) {
        tokgen g;
        tokgen_init(&g, seed, 1800);
        g.burn = 10;
        g.onset_ms = 240 * SEC;
        g.ramp_ms = 30 * SEC;
        g.stop_at = 0.7;
        g.topup_at = 0.68;
        tokrun tr;
        token_run(&tr, &g, 1200 * SEC, 0.99);
        ck_assert_int_ge(g.stopped_ms, 0);
        ck_assert_int_lt(tr.at80, 0);
        printf("forecast: burn stopping at 70%% seed %d: stopped %.0f s "
               "after onset; raised %d, withdrawn %.0f s after the stop\n",
               (int)seed, secs(g.stopped_ms - g.onset_ms), tr.d.raises,
               tr.d.raises ? secs(tr.d.last_withdraw_ms - T0 - g.stopped_ms)
                           : 0.0);
        ck_assert_int_le(tr.d.raises, 1);
        if (tr.d.raises) {
            ck_assert_int_eq(tr.d.withdraws, 1);
            ck_assert_int_ge(tr.d.last_withdraw_ms - T0, g.stopped_ms);
            ck_assert_int_le(tr.d.last_withdraw_ms - T0 - g.stopped_ms,
                             60 * SEC);
        }
        ck_assert_int_eq(tr.d.f.raised, 0);
    }
}
END_TEST

/* ====================================================== queue vectors */

/* A surge to ~100 over 60 s that the swarm drains (an autoscaler adds
 * capacity): not raised for 200, or withdrawn within a minute of the
 * peak. */
START_TEST(queue_surge_drains)
{
    for (uint64_t seed = 1; seed <= NSEEDS; seed++) {
        quegen g;
        quegen_init(&g, seed);
        drive d;
        drive_init(&d, SM_FC_QUEUE);
        double peak = 0;
        int64_t peak_at = 0;
        for (int64_t rel = 0; rel <= 900 * SEC; rel += SEC) {
            double a = g.arrive, s = g.serve;
            if (rel >= 300 * SEC && rel < 360 * SEC)
                a = 4.2;                        /* net +1.7/s */
            if (rel >= 360 * SEC && rel < 480 * SEC)
                s = 3.8;                        /* scaled up: net -1.8/s */
            double p = quegen_next(&g, a, s);
            if (p > peak) {
                peak = p;
                peak_at = rel;
            }
            drive_sample(&d, T0 + rel, p, 200, false);
        }
        printf("forecast: queue surge that drains seed %d: peak %.0f at "
               "%.0f s; raised %d, withdrawn %.0f s after the peak\n",
               (int)seed, peak, secs(peak_at),
               d.raises, d.raises ? secs(d.last_withdraw_ms - T0 - peak_at)
                                  : 0.0);
        ck_assert(peak > 60 && peak < 140);
        ck_assert_int_eq(d.f.raised, 0);
        ck_assert_int_le(d.raises, 1);
        if (d.raises)
            ck_assert_int_le(d.last_withdraw_ms - T0 - peak_at, 60 * SEC);
    }
}
END_TEST

/* A surge that keeps growing (net +1/s) to 300: raised >= 60 s before
 * 200. */
START_TEST(queue_surge_grows)
{
    for (uint64_t seed = 1; seed <= NSEEDS; seed++) {
        quegen g;
        quegen_init(&g, seed);
        drive d;
        drive_init(&d, SM_FC_QUEUE);
        int64_t at200 = -1;
        for (int64_t rel = 0; rel <= 900 * SEC; rel += SEC) {
            double a = g.arrive;
            if (rel >= 300 * SEC)
                a = 3.5;                        /* net +1/s */
            double p = quegen_next(&g, a, g.serve);
            if (at200 < 0 && p >= 200)
                at200 = rel;
            drive_sample(&d, T0 + rel, p, 200, false);
        }
        ck_assert_int_ge(at200, 0);
        ck_assert_int_ge(d.first_raise_ms, 0);
        int64_t raised = d.first_raise_ms - T0;
        printf("forecast: queue growing to 300 seed %d: raised %.0f s after "
               "onset, %.0f s before 200; ETA error at raise %+.0f s; net "
               "growth %.2f/s\n", (int)seed, secs(raised - 300 * SEC),
               secs(at200 - raised),
               secs(d.raise.fail_at_ms - (T0 + at200)),
               sm_trend_slope(&d.t));
        ck_assert_int_ge(at200 - raised, 60 * SEC);
        ck_assert_int_eq(d.raises, 1);
    }
}
END_TEST

/* Steady queue with bursts of 15 tasks every ~150 s, 30 min: nothing. */
START_TEST(queue_bursts_steady)
{
    for (uint64_t seed = 1; seed <= NSEEDS; seed++) {
        quegen g;
        quegen_init(&g, seed);
        drive d;
        drive_init(&d, SM_FC_QUEUE);
        int64_t next_burst = (int64_t)unif(&g.r, 60, 240) * SEC;
        for (int64_t rel = 0; rel <= 1800 * SEC; rel += SEC) {
            if (rel >= next_burst) {
                g.pending += 15;
                next_burst = rel + (int64_t)unif(&g.r, 60, 240) * SEC;
            }
            drive_sample(&d, T0 + rel, quegen_next(&g, g.arrive, g.serve),
                         200, false);
        }
        ck_assert_int_eq(d.raises, 0);
    }
}
END_TEST

/* ======================================================== determinism */

START_TEST(same_inputs_same_outputs)
{
    drive a, b;
    memgen ga, gb;
    memgen_init(&ga, 3, 300);
    memgen_init(&gb, 3, 300);
    drive_init(&a, SM_FC_MEMORY);
    drive_init(&b, SM_FC_MEMORY);
    for (int64_t rel = 0; rel <= 1800 * SEC; rel += SEC) {
        drive_sample(&a, T0 + rel, memgen_next(&ga, rel), 7.2 * GB, false);
        drive_sample(&b, T0 + rel, memgen_next(&gb, rel), 7.2 * GB, false);
    }
    ck_assert_uint_eq(a.digest, b.digest);
    ck_assert_int_eq(memcmp(&a.t, &b.t, sizeof a.t), 0);
    ck_assert_int_eq(memcmp(&a.f, &b.f, sizeof a.f), 0);
    ck_assert_int_gt(a.raises, 0);

    tokgen ta, tb;
    tokgen_init(&ta, 5, 1800);
    tokgen_init(&tb, 5, 1800);
    ta.burn = tb.burn = 12;
    ta.onset_ms = tb.onset_ms = 240 * SEC;
    ta.ramp_ms = tb.ramp_ms = 60 * SEC;
    tokrun ra, rb;
    token_run(&ra, &ta, 600 * SEC, 0.99);
    token_run(&rb, &tb, 600 * SEC, 0.99);
    ck_assert_uint_eq(ra.d.digest, rb.d.digest);
    ck_assert_int_eq(memcmp(&ra.d.t, &rb.d.t, sizeof ra.d.t), 0);
    ck_assert_int_eq(memcmp(&ra.d.f, &rb.d.f, sizeof ra.d.f), 0);

    /* a different seed gives a different stream: the digest can fail */
    memgen_init(&gb, 4, 300);
    drive_init(&b, SM_FC_MEMORY);
    for (int64_t rel = 0; rel <= 1800 * SEC; rel += SEC)
        drive_sample(&b, T0 + rel, memgen_next(&gb, rel), 7.2 * GB, false);
    ck_assert_uint_ne(a.digest, b.digest);

    /* a state copied byte for byte (a persisted blob) carries on alike */
    drive c = a;
    memgen gc = ga;
    for (int64_t rel = 1801 * SEC; rel <= 2400 * SEC; rel += SEC) {
        double m = memgen_next(&ga, rel);
        drive_sample(&a, T0 + rel, m, 7.2 * GB, false);
        drive_sample(&c, T0 + rel, memgen_next(&gc, rel), 7.2 * GB, false);
    }
    ck_assert_uint_eq(a.digest, c.digest);
    ck_assert(sm_trend_valid(&c.t));
    ck_assert(sm_forecast_valid(&c.f));
}
END_TEST

static Suite *forecast_suite(void)
{
    Suite *s = suite_create("forecast");
    TCase *tr = tcase_create("trend");
    tcase_add_test(tr, trend_exact_line);
    tcase_add_test(tr, trend_quality_is_kendall_tau);
    tcase_add_test(tr, trend_ignores_outliers);
    tcase_add_test(tr, trend_min_mode_takes_the_floor);
    tcase_add_test(tr, trend_late_nan_tick_gap);
    tcase_add_test(tr, trend_reset_on_drop);
    tcase_add_test(tr, trend_follows_a_change);
    tcase_add_test(tr, trend_config_and_sizes);
    suite_add_tcase(s, tr);

    TCase *fc = tcase_create("forecast");
    tcase_add_test(fc, forecast_confidence_formula);
    tcase_add_test(fc, forecast_raise_needs_steps_quality_confidence);
    tcase_add_test(fc, forecast_update_and_withdraw);
    suite_add_tcase(s, fc);

    TCase *mem = tcase_create("memory");
    tcase_add_test(mem, memory_leak_under_sawtooth);
    tcase_add_test(mem, memory_single_spike);
    tcase_add_test(mem, memory_sawtooth_no_leak);
    suite_add_tcase(s, mem);

    TCase *tok = tcase_create("tokens");
    tcase_add_test(tok, token_burn_roomy_budget);
    tcase_add_test(tok, token_burn_tight_budget);
    tcase_add_test(tok, token_topups_steady);
    tcase_add_test(tok, token_burn_stops_short);
    suite_add_tcase(s, tok);

    TCase *q = tcase_create("queue");
    tcase_add_test(q, queue_surge_drains);
    tcase_add_test(q, queue_surge_grows);
    tcase_add_test(q, queue_bursts_steady);
    suite_add_tcase(s, q);

    TCase *det = tcase_create("determinism");
    tcase_add_test(det, same_inputs_same_outputs);
    suite_add_tcase(s, det);
    return s;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);   /* figures survive a failed test */
    return sm_run_suite(forecast_suite());
}
