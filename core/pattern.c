/*
 * pattern.c - pattern learning over a swarm's happenings (pattern.h has
 * the rules and the figures). Recording is O(1); learning is done on
 * demand from the ring and the hour tables, so the state holds nothing
 * derived and a copy of it is all there is to keep.
 */
#include "pattern.h"

#include <math.h>
#include <string.h>

#define HOUR_MS INT64_C(3600000)
#define DAY_MS INT64_C(86400000)
#define GEN_DAYS SM_PAT_SPIKE_GEN_DAYS
#define GEN_MS (GEN_DAYS * DAY_MS)

_Static_assert(sizeof(sm_pattern_state) == SM_PATTERN_STATE_BYTES,
               "sm_pattern_state changed size: update pattern.h");
_Static_assert(sizeof(sm_pattern_event) == 16, "padding in the ring");
_Static_assert(sizeof(sm_pattern) == 64, "padding in sm_pattern");
_Static_assert(GEN_DAYS >= 1 && GEN_DAYS <= 8, "day bits are a uint8_t");
_Static_assert(SM_PAT_CODES <= 65536, "codes are uint16_t");

static const char *const REASON[] = {
    [SM_PAT_NONE] = "no learned pattern forecasts it",
    [SM_PAT_SEQUENCE] = "the latest happenings have been followed by it "
                        "before (sequence)",
    [SM_PAT_FREQUENCY] = "it recurs at a regular interval and the next one "
                         "is due (frequency)",
    [SM_PAT_CORRELATION] = "a happening that has preceded it more often "
                           "than chance has just occurred (correlation)",
    [SM_PAT_SPIKE] = "it clusters in this hour of day (spike)",
};

/* floor(a / b) for b > 0, also for negative a. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b) != 0 && a < 0)
        q--;
    return q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    return a - floor_div(a, b) * b;
}

static unsigned popcount8(uint8_t v)
{
    unsigned n = 0;
    for (; v; v &= (uint8_t)(v - 1))
        n++;
    return n;
}

/* ------------------------------------------------------------ settings */

void sm_pattern_config_default(sm_pattern_config *cfg)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->corr_window_ms = 300000;
    cfg->horizon_ms = HOUR_MS;
    cfg->history_ms = 7 * DAY_MS;
    cfg->confidence = 0.7;
    cfg->shrink = 1.0;
    cfg->max_cv = 0.3;
    cfg->min_lift = 2.0;
    cfg->spike_factor = 2.0;
    cfg->spike_alpha = 0.001;
    cfg->min_occurrences = 5;
    cfg->spike_min_days = 2;
}

static bool in(double v, double lo, double hi)
{
    return isfinite(v) && v >= lo && v <= hi;
}

sm_status sm_pattern_config_check(const sm_pattern_config *c)
{
    if (c == NULL)
        return SM_ERR_INVALID;
    if (c->corr_window_ms <= 0 || c->corr_window_ms > DAY_MS ||
        c->horizon_ms <= 0 || c->horizon_ms > SM_PAT_TS_MAX ||
        c->history_ms <= 0 || c->history_ms > SM_PAT_TS_MAX ||
        !in(c->confidence, 0, 1) || !(c->confidence > 0) ||
        !in(c->shrink, 0, 1e6) || !in(c->max_cv, 0, 1e6) ||
        !(c->max_cv > 0) || !in(c->min_lift, 1, 1e6) ||
        !in(c->spike_factor, 1, 1e6) || !in(c->spike_alpha, 0, 1) ||
        !(c->spike_alpha > 0) || c->min_occurrences < 1 ||
        c->spike_min_days < 1 || c->spike_min_days > 2 * GEN_DAYS)
        return SM_ERR_CONFIG;
    return SM_OK;
}

sm_status sm_pattern_init(sm_pattern_state *st, const sm_pattern_config *cfg)
{
    if (st == NULL)
        return SM_ERR_INVALID;
    sm_pattern_config def;
    if (cfg == NULL) {
        sm_pattern_config_default(&def);
        cfg = &def;
    }
    if (sm_pattern_config_check(cfg) != SM_OK)
        return SM_ERR_CONFIG;
    memset(st, 0, sizeof *st);
    st->cfg = *cfg;
    return SM_OK;
}

sm_status sm_pattern_set_config(sm_pattern_state *st,
                                const sm_pattern_config *cfg)
{
    if (st == NULL)
        return SM_ERR_INVALID;
    sm_pattern_config def;
    if (cfg == NULL) {
        sm_pattern_config_default(&def);
        cfg = &def;
    }
    if (sm_pattern_config_check(cfg) != SM_OK)
        return SM_ERR_CONFIG;
    st->cfg = *cfg;
    return SM_OK;
}

/* ----------------------------------------------------------- recording */

/* The i-th happening of the ring, oldest first (i < count). */
static const sm_pattern_event *ev_at(const sm_pattern_state *st, uint32_t i)
{
    return &st->ring[(st->head + SM_PAT_HISTORY - st->count + i) %
                     SM_PAT_HISTORY];
}

static int64_t gen_of(int64_t ts_ms)
{
    return floor_div(floor_div(ts_ms, DAY_MS), GEN_DAYS);
}

/* Counts the happening in its hour of day, starting a new generation
 * (the current one becomes the previous, the older one is dropped) when
 * ts_ms is in a later one. */
static void spike_add(sm_pattern_state *st, int64_t ts_ms, unsigned code)
{
    int64_t gen = gen_of(ts_ms);
    if (st->total == 1) {
        st->spike_gen = gen;
    } else if (gen > st->spike_gen) {
        if (gen == st->spike_gen + 1) {
            memcpy(st->spike_count[1], st->spike_count[0],
                   sizeof st->spike_count[0]);
            memcpy(st->spike_days[1], st->spike_days[0],
                   sizeof st->spike_days[0]);
        } else {
            memset(st->spike_count[1], 0, sizeof st->spike_count[1]);
            memset(st->spike_days[1], 0, sizeof st->spike_days[1]);
        }
        memset(st->spike_count[0], 0, sizeof st->spike_count[0]);
        memset(st->spike_days[0], 0, sizeof st->spike_days[0]);
        st->spike_gen = gen;
    }
    int64_t day = floor_div(ts_ms, DAY_MS);
    unsigned hour = (unsigned)floor_mod(floor_div(ts_ms, HOUR_MS),
                                        SM_PAT_HOURS);
    unsigned bit = (unsigned)(day - gen * GEN_DAYS);
    if (st->spike_count[0][code][hour] < UINT16_MAX)
        st->spike_count[0][code][hour]++;
    st->spike_days[0][code][hour] |= (uint8_t)(1u << bit);
}

sm_status sm_pattern_record(sm_pattern_state *st, int64_t ts_ms,
                            unsigned code, uint32_t subject)
{
    if (st == NULL || code >= SM_PAT_CODES || ts_ms > SM_PAT_TS_MAX ||
        ts_ms < -SM_PAT_TS_MAX)
        return SM_ERR_INVALID;
    if (st->total == 0)
        st->first_ts_ms = ts_ms;
    else if (ts_ms < st->newest_ts_ms)
        ts_ms = st->newest_ts_ms;
    st->newest_ts_ms = ts_ms;
    st->total++;

    sm_pattern_event *e = &st->ring[st->head];
    e->ts_ms = ts_ms;
    e->subject = subject;
    e->code = (uint16_t)code;
    e->reserved = 0;
    st->head = (st->head + 1) % SM_PAT_HISTORY;
    if (st->count < SM_PAT_HISTORY)
        st->count++;

    spike_add(st, ts_ms, code);
    return SM_OK;
}

/* ------------------------------------------------------------ learning */

/* The part of the ring a question is asked of: happenings lo .. n - 1
 * (oldest first), those no older than history_ms before now. */
typedef struct view {
    const sm_pattern_state *st;
    const sm_pattern_config *cfg;
    int64_t now;                /* max(now_ms, newest), clamped */
    uint32_t lo;
    uint32_t n;
} view;

static void view_make(view *v, const sm_pattern_state *st, int64_t now_ms)
{
    if (now_ms > SM_PAT_TS_MAX)
        now_ms = SM_PAT_TS_MAX;
    if (now_ms < -SM_PAT_TS_MAX)
        now_ms = -SM_PAT_TS_MAX;
    if (st->total > 0 && now_ms < st->newest_ts_ms)
        now_ms = st->newest_ts_ms;
    v->st = st;
    v->cfg = &st->cfg;
    v->now = now_ms;
    v->n = st->count;
    int64_t cutoff = now_ms - st->cfg.history_ms;
    uint32_t lo = 0;
    while (lo < v->n && ev_at(st, lo)->ts_ms < cutoff)
        lo++;
    v->lo = lo;
}

static const sm_pattern_event *at(const view *v, uint32_t i)
{
    return ev_at(v->st, i);
}

/* Mean and sample standard deviation of x[0..n-1] (two passes). */
static void moments(const double *x, uint32_t n, double *mean, double *sd)
{
    double sum = 0, dev = 0;
    for (uint32_t i = 0; i < n; i++)
        sum += x[i];
    *mean = n ? sum / n : 0;
    for (uint32_t i = 0; i < n; i++)
        dev += (x[i] - *mean) * (x[i] - *mean);
    *sd = n > 1 ? sqrt(dev / (n - 1)) : 0;
}

static int64_t to_ms(double v)
{
    return (int64_t)llround(v);
}

/* The n-gram ctx[0..m-1] x over the view: how often the context is
 * followed by anything, and by x (with the delays from the context's last
 * happening to x). False when count(ctx, x) < min_occurrences. */
static bool seq_eval(const view *v, const uint16_t *ctx, unsigned m,
                     unsigned x, sm_pattern *p)
{
    double gaps[SM_PAT_HISTORY];
    uint32_t trials = 0, hits = 0, nx = 0;
    for (uint32_t i = v->lo; i < v->n; i++)
        nx += at(v, i)->code == x;
    for (uint32_t j = v->lo; j + m < v->n; j++) {
        unsigned k = 0;
        while (k < m && at(v, j + k)->code == ctx[k])
            k++;
        if (k < m)
            continue;
        trials++;
        const sm_pattern_event *next = at(v, j + m);
        if (next->code == x)
            gaps[hits++] = (double)(next->ts_ms - at(v, j + m - 1)->ts_ms);
    }
    if (hits < v->cfg->min_occurrences)
        return false;
    double p0 = (double)nx / (double)(v->n - v->lo);
    double k0 = v->cfg->shrink;
    double mean, sd;
    moments(gaps, hits, &mean, &sd);
    memset(p, 0, sizeof *p);
    p->kind = SM_PAT_SEQUENCE;
    p->code = (uint16_t)x;
    p->ctx_len = (uint16_t)m;
    for (unsigned k = 0; k < m; k++)
        p->ctx[k] = ctx[k];
    p->support = hits;
    p->trials = trials;
    p->confidence = ((double)hits + k0 * p0) / ((double)trials + k0);
    p->lift = ((double)hits / trials) / p0;
    p->mean_ms = to_ms(mean);
    p->spread_ms = to_ms(sd);
    return true;
}

/* x's rhythm: the gaps between its consecutive occurrences in the view.
 * *last is its newest occurrence (NULL if none). False unless there are
 * at least min_occurrences (and 2) gaps with cv < max_cv. */
static bool freq_eval(const view *v, unsigned x, sm_pattern *p,
                      const sm_pattern_event **last)
{
    double gaps[SM_PAT_HISTORY];
    uint32_t n = 0;
    const sm_pattern_event *prev = NULL;
    for (uint32_t i = v->lo; i < v->n; i++) {
        const sm_pattern_event *e = at(v, i);
        if (e->code != x)
            continue;
        if (prev != NULL)
            gaps[n++] = (double)(e->ts_ms - prev->ts_ms);
        prev = e;
    }
    *last = prev;
    if (n < v->cfg->min_occurrences || n < 2)
        return false;
    double mean, sd;
    moments(gaps, n, &mean, &sd);
    if (!(mean > 0))
        return false;
    double cv = sd / mean;
    if (!(cv < v->cfg->max_cv))
        return false;
    memset(p, 0, sizeof *p);
    p->kind = SM_PAT_FREQUENCY;
    p->code = (uint16_t)x;
    p->support = n;
    p->trials = n;
    p->confidence = (1.0 - cv) * (double)n / ((double)n + v->cfg->shrink);
    p->mean_ms = to_ms(mean);
    p->spread_ms = to_ms(sd);
    return true;
}

/* What the view says of "A, then B within W", for every A at once. */
typedef struct corr_acc {
    uint32_t n;                 /* A's whose window has closed */
    uint32_t hits;              /* of those, followed by B within W */
    uint32_t open;              /* 1 + index of the latest A still inside
                                   its window with no B since; 0: none */
    uint32_t reserved;
    double sum;                 /* of the delays A -> B of the hits */
    double dev;                 /* of their squared deviations */
} corr_acc;

/* One pass from the newest happening to the oldest, carrying the nearest
 * B after each one (so each delay is a later B minus an earlier A), and a
 * second pass for the spread. *p0 = chance that a window of W holds a B
 * (1 - exp(-lambda W), lambda = B's count / the view's span). */
static void corr_scan(const view *v, unsigned b, corr_acc acc[SM_PAT_CODES],
                      double *p0)
{
    int64_t w = v->cfg->corr_window_ms;
    uint32_t nb = 0;
    memset(acc, 0, SM_PAT_CODES * sizeof acc[0]);
    for (int pass = 0; pass < 2; pass++) {
        bool have_b = false;
        int64_t b_ts = 0;
        for (uint32_t i = v->n; i-- > v->lo;) {
            const sm_pattern_event *e = at(v, i);
            if (e->code == b) {
                have_b = true;
                b_ts = e->ts_ms;
                nb += pass == 0;
                continue;
            }
            corr_acc *a = &acc[e->code];
            if (e->ts_ms + w > v->now) {        /* window still open */
                if (pass == 0 && !have_b && a->open == 0)
                    a->open = i + 1;
                continue;
            }
            bool hit = have_b && b_ts - e->ts_ms <= w;
            double d = (double)(b_ts - e->ts_ms);
            if (pass == 0) {
                a->n++;
                if (hit) {
                    a->hits++;
                    a->sum += d;
                }
            } else if (hit) {
                double mean = a->sum / a->hits;
                a->dev += (d - mean) * (d - mean);
            }
        }
    }
    int64_t span = v->n > v->lo ? v->now - at(v, v->lo)->ts_ms : 0;
    *p0 = span > 0 ? 1.0 - exp(-((double)nb / (double)span) * (double)w)
                   : 1.0;
}

/* The correlation A -> B from its accumulator; false unless hits >=
 * min_occurrences and lift > min_lift. */
static bool corr_pattern(const view *v, const corr_acc *a, unsigned A,
                         unsigned B, double p0, sm_pattern *p)
{
    if (a->hits < v->cfg->min_occurrences)
        return false;
    double expected = (double)a->n * p0;
    double lift = expected > 0 ? (double)a->hits / expected : 0;
    if (!(lift > v->cfg->min_lift))
        return false;
    double k0 = v->cfg->shrink;
    double mean = a->sum / a->hits;
    double sd = a->hits > 1 ? sqrt(a->dev / (a->hits - 1)) : 0;
    memset(p, 0, sizeof *p);
    p->kind = SM_PAT_CORRELATION;
    p->code = (uint16_t)B;
    p->ctx_len = 1;
    p->ctx[0] = (uint16_t)A;
    p->support = a->hits;
    p->trials = a->n;
    p->confidence = ((double)a->hits + k0 * p0) / ((double)a->n + k0);
    p->lift = lift;
    p->mean_ms = to_ms(mean);
    p->spread_ms = to_ms(sd);
    return true;
}

/* P(X >= c) for X ~ Poisson(lambda), c > lambda > 0 (the spike's lift
 * guard comes first): the terms from c on shrink by lambda / (k + 1) < 1
 * each, by under 1/2 at the default factor, so a few dozen suffice (200
 * at most). */
static double log_factorial(uint32_t c)
{
    /* exact below 32; above, Stirling's series (error under 1e-12).
     * Not lgamma: it writes the global signgam, and readers here may run
     * side by side. */
    if (c < 32) {
        double sum = 0;
        for (uint32_t k = 2; k <= c; k++)
            sum += log((double)k);
        return sum;
    }
    double n = (double)c;
    return n * log(n) - n + 0.5 * log(2.0 * 3.14159265358979323846 * n) +
           1.0 / (12.0 * n) - 1.0 / (360.0 * n * n * n);
}

static double poisson_tail(double lambda, uint32_t c)
{
    double term = exp(-lambda + c * log(lambda) - log_factorial(c));
    double sum = 0;
    for (uint32_t k = c; k < c + 200 && term > sum * 1e-17; k++) {
        sum += term;
        term *= lambda / (k + 1);
    }
    return sum;
}

/* Which spike generations count at now, and the hours they cover (from
 * the learner's first happening at the earliest). False: none. */
typedef struct spike_win {
    bool use[2];
    int64_t h0, h1;             /* first and last absolute hour covered */
} spike_win;

static bool spike_window(const view *v, spike_win *w)
{
    const sm_pattern_state *st = v->st;
    if (st->total == 0)
        return false;
    int64_t g = gen_of(v->now);
    int64_t start;
    if (g == st->spike_gen) {
        w->use[0] = w->use[1] = true;
        start = (g - 1) * GEN_MS;
    } else if (g == st->spike_gen + 1) {
        w->use[0] = true;           /* the current one is now the older */
        w->use[1] = false;
        start = st->spike_gen * GEN_MS;
    } else {
        return false;
    }
    if (start < st->first_ts_ms)
        start = st->first_ts_ms;
    w->h0 = floor_div(start, HOUR_MS);
    w->h1 = floor_div(v->now, HOUR_MS);
    return true;
}

/* Hours H in [h0, h1] with H mod 24 == hour (days that hour was covered). */
static int64_t exposure(const spike_win *w, unsigned hour)
{
    return floor_div(w->h1 - hour, SM_PAT_HOURS) -
           floor_div(w->h0 - 1 - hour, SM_PAT_HOURS);
}

static bool spike_eval(const view *v, const spike_win *w, unsigned x,
                       unsigned hour, sm_pattern *p)
{
    const sm_pattern_state *st = v->st;
    uint32_t total = 0, cnt = 0, days = 0;
    for (int g = 0; g < 2; g++) {
        if (!w->use[g])
            continue;
        for (unsigned h = 0; h < SM_PAT_HOURS; h++)
            total += st->spike_count[g][x][h];
        cnt += st->spike_count[g][x][hour];
        days += popcount8(st->spike_days[g][x][hour]);
    }
    if (cnt < v->cfg->min_occurrences || days < v->cfg->spike_min_days)
        return false;
    int64_t exp_h = exposure(w, hour);
    int64_t all = w->h1 - w->h0 + 1;
    if (exp_h <= 0 || all <= 0)
        return false;
    double rate = (double)cnt / (double)exp_h;
    double mean = (double)total / (double)all;
    double lift = rate / mean;
    if (!(lift > v->cfg->spike_factor) ||
        !(poisson_tail(mean * (double)exp_h, cnt) <
          v->cfg->spike_alpha / SM_PAT_HOURS))
        return false;
    memset(p, 0, sizeof *p);
    p->kind = SM_PAT_SPIKE;
    p->code = (uint16_t)x;
    p->hour = (uint16_t)hour;
    p->support = cnt;
    p->trials = (uint32_t)exp_h;
    p->days = days;
    p->confidence = (double)days / ((double)exp_h + v->cfg->shrink);
    p->lift = lift;
    return true;
}

/* ---------------------------------------------------------- prediction */

/* Takes candidate p (counting from trigger_ts) as the best if its moment
 * has not passed, it is due within the horizon and it beats the best. */
static void consider(const view *v, sm_pattern_forecast *best,
                     const sm_pattern *p, int64_t trigger_ts,
                     uint32_t subject)
{
    int64_t eta;
    if (p->kind == SM_PAT_SPIKE) {
        eta = trigger_ts > v->now ? trigger_ts - v->now : 0;
    } else {
        int64_t elapsed = v->now - trigger_ts;
        if ((double)elapsed > (double)p->mean_ms + 3.0 * (double)p->spread_ms)
            return;
        eta = p->mean_ms - elapsed;
        if (eta < 0)
            eta = 0;
    }
    if (eta > v->cfg->horizon_ms)
        return;
    if (best->pattern.kind != SM_PAT_NONE &&
        !(p->confidence > best->confidence))
        return;
    best->pattern = *p;
    best->confidence = p->confidence;
    best->eta_ms = eta;
    best->trigger_ts_ms = trigger_ts;
    best->trigger_subject = subject;
    best->reasoning = REASON[p->kind];
}

bool sm_pattern_predict(const sm_pattern_state *st, int64_t now_ms,
                        unsigned target_code, sm_pattern_forecast *out)
{
    if (out == NULL)
        return false;
    memset(out, 0, sizeof *out);
    out->reasoning = REASON[SM_PAT_NONE];
    if (st == NULL || target_code >= SM_PAT_CODES)
        return false;
    view v;
    view_make(&v, st, now_ms);
    unsigned x = target_code;
    sm_pattern p;

    /* sequences: the latest two, then the latest one, as the context */
    for (unsigned m = 2; m >= 1; m--) {
        if (v.n - v.lo < m)
            continue;
        uint16_t ctx[2];
        for (unsigned k = 0; k < m; k++)
            ctx[k] = at(&v, v.n - m + k)->code;
        const sm_pattern_event *last = at(&v, v.n - 1);
        if (seq_eval(&v, ctx, m, x, &p))
            consider(&v, out, &p, last->ts_ms, last->subject);
    }

    const sm_pattern_event *last;
    if (freq_eval(&v, x, &p, &last))
        consider(&v, out, &p, last->ts_ms, last->subject);

    corr_acc acc[SM_PAT_CODES];
    double p0;
    corr_scan(&v, x, acc, &p0);
    for (unsigned a = 0; a < SM_PAT_CODES; a++) {
        if (a == x || acc[a].open == 0 ||
            !corr_pattern(&v, &acc[a], a, x, p0, &p))
            continue;
        const sm_pattern_event *trig = at(&v, acc[a].open - 1);
        consider(&v, out, &p, trig->ts_ms, trig->subject);
    }

    spike_win w;
    if (spike_window(&v, &w)) {
        int64_t h_now = floor_div(v.now, HOUR_MS);
        for (int64_t d = 0; d <= SM_PAT_HOURS; d++) {
            int64_t start = (h_now + d) * HOUR_MS;
            if (start - v.now > v.cfg->horizon_ms)
                break;
            unsigned hour = (unsigned)floor_mod(h_now + d, SM_PAT_HOURS);
            if (spike_eval(&v, &w, x, hour, &p)) {
                consider(&v, out, &p, start, 0);
                break;
            }
        }
    }
    return out->pattern.kind != SM_PAT_NONE &&
           out->confidence >= st->cfg.confidence;
}

/* ------------------------------------------------------------- listing */

static void emit(const view *v, const sm_pattern *p, sm_pattern *out,
                 size_t cap, size_t *total)
{
    if (!(p->confidence >= v->cfg->confidence))
        return;
    if (*total < cap)
        out[*total] = *p;
    (*total)++;
}

size_t sm_pattern_list(const sm_pattern_state *st, int64_t now_ms,
                       sm_pattern *out, size_t cap)
{
    if (st == NULL)
        return 0;
    if (out == NULL)
        cap = 0;
    view v;
    view_make(&v, st, now_ms);
    size_t total = 0;
    sm_pattern p;

    /* sequences: each distinct n-gram once, where it first appears */
    for (unsigned m = 1; m <= 2; m++) {
        for (uint32_t j = v.lo; j + m < v.n; j++) {
            bool seen = false;
            for (uint32_t i = v.lo; i < j && !seen; i++) {
                unsigned k = 0;
                while (k <= m && at(&v, i + k)->code == at(&v, j + k)->code)
                    k++;
                seen = k > m;
            }
            if (seen)
                continue;
            uint16_t ctx[2];
            for (unsigned k = 0; k < m; k++)
                ctx[k] = at(&v, j + k)->code;
            if (seq_eval(&v, ctx, m, at(&v, j + m)->code, &p))
                emit(&v, &p, out, cap, &total);
        }
    }

    const sm_pattern_event *last;
    for (unsigned x = 0; x < SM_PAT_CODES; x++)
        if (freq_eval(&v, x, &p, &last))
            emit(&v, &p, out, cap, &total);

    bool present[SM_PAT_CODES] = {false};
    for (uint32_t i = v.lo; i < v.n; i++)
        present[at(&v, i)->code] = true;
    for (unsigned b = 0; b < SM_PAT_CODES; b++) {
        if (!present[b])
            continue;
        corr_acc acc[SM_PAT_CODES];
        double p0;
        corr_scan(&v, b, acc, &p0);
        for (unsigned a = 0; a < SM_PAT_CODES; a++)
            if (a != b && corr_pattern(&v, &acc[a], a, b, p0, &p))
                emit(&v, &p, out, cap, &total);
    }

    spike_win w;
    if (spike_window(&v, &w))
        for (unsigned x = 0; x < SM_PAT_CODES; x++)
            for (unsigned h = 0; h < SM_PAT_HOURS; h++)
                if (spike_eval(&v, &w, x, h, &p))
                    emit(&v, &p, out, cap, &total);
    return total;
}

/* ------------------------------------------------------------- vetting */

bool sm_pattern_valid(const sm_pattern_state *st)
{
    if (st == NULL || sm_pattern_config_check(&st->cfg) != SM_OK ||
        st->head >= SM_PAT_HISTORY || st->count > SM_PAT_HISTORY ||
        st->total < st->count || st->head != st->total % SM_PAT_HISTORY ||
        st->count != (st->total < SM_PAT_HISTORY ? st->total
                                                 : SM_PAT_HISTORY))
        return false;
    if (st->total == 0)
        return true;
    if (st->first_ts_ms > st->newest_ts_ms ||
        st->first_ts_ms < -SM_PAT_TS_MAX ||
        st->newest_ts_ms > SM_PAT_TS_MAX ||
        st->spike_gen != gen_of(st->newest_ts_ms))
        return false;
    int64_t prev = st->first_ts_ms;
    for (uint32_t i = 0; i < st->count; i++) {
        const sm_pattern_event *e = ev_at(st, i);
        if (e->code >= SM_PAT_CODES || e->reserved != 0 || e->ts_ms < prev)
            return false;
        prev = e->ts_ms;
    }
    if (prev != st->newest_ts_ms)
        return false;
    for (int g = 0; g < 2; g++)
        for (unsigned x = 0; x < SM_PAT_CODES; x++)
            for (unsigned h = 0; h < SM_PAT_HOURS; h++)
                if (st->spike_days[g][x][h] >> GEN_DAYS)
                    return false;
    return true;
}

const char *sm_pattern_kind_str(sm_pattern_kind k)
{
    switch (k) {
    case SM_PAT_NONE: return "none";
    case SM_PAT_SEQUENCE: return "sequence";
    case SM_PAT_FREQUENCY: return "frequency";
    case SM_PAT_CORRELATION: return "correlation";
    case SM_PAT_SPIKE: return "spike";
    }
    return "unknown";
}
