/*
 * forecast.c - robust trends (Theil-Sen over decimated points) and the
 * raise / update / withdraw life of a prediction.
 */
#include "forecast.h"

#include <string.h>

#include "window.h"

#define PAIRS (SM_TREND_POINTS * (SM_TREND_POINTS - 1) / 2)
#define MAD_SIGMA 1.4826            /* MAD -> standard deviation (normal) */

/* ------------------------------------------------------------ helpers */

static bool is_finite(double v)
{
    return v == v && v <= 1.7976931348623157e308 &&
           v >= -1.7976931348623157e308;
}

static double absd(double v)
{
    return v < 0 ? -v : v;
}

static double clamp01(double x)
{
    if (!(x > 0.0))
        return 0.0;
    return x > 1.0 ? 1.0 : x;
}

/* floor(a / b) for b > 0, also for negative a. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b) != 0 && a < 0)
        q--;
    return q;
}

/* The i-th point held, oldest first. */
static const sm_trend_point *point_at(const sm_trend *t, uint32_t i)
{
    return &t->pts[(t->head + SM_TREND_POINTS - t->count + i) %
                   SM_TREND_POINTS];
}

/* ------------------------------------------------------------ sm_trend */

bool sm_trend_config_valid(const sm_trend_config *c)
{
    if (c == NULL || c->step_ms <= 0)
        return false;
    if (c->mode != SM_TREND_LAST && c->mode != SM_TREND_MIN)
        return false;
    if (c->min_points < 3 || c->max_points < c->min_points ||
        c->max_points > SM_TREND_POINTS)
        return false;
    if (c->change_run == 1 || (c->change_run && c->change_base < 3))
        return false;
    if (!(c->change_k >= 0) || !(c->noise_abs >= 0) ||
        !(c->noise_rel >= 0) || !(c->change_ratio >= 0))
        return false;
    return c->reset_drop >= 0 && c->reset_drop < 1;
}

void sm_trend_init(sm_trend *t)
{
    memset(t, 0, sizeof *t);
}

/* Forgets the ring and the fit (the open step is the caller's business). */
static void clear_fit(sm_trend *t)
{
    t->slope = t->level = t->quality = t->spread = t->band = 0.0;
    t->fit_n = 0;
    t->fit_ts_ms = 0;
}

/* Keeps only the newest `keep` points. */
static void keep_newest(sm_trend *t, uint32_t keep)
{
    if (keep < t->count)
        t->count = keep;
}

/* Theil-Sen over points [lo, hi) (oldest first): slope (per ms), level at
 * point hi - 1 and the residuals' MAD. Returns false without pairs. */
static bool theil_sen(const sm_trend *t, uint32_t lo, uint32_t hi,
                      double *slope_ms, double *level, double *mad)
{
    double work[PAIRS];
    size_t np = 0;
    for (uint32_t i = lo; i < hi; i++) {
        const sm_trend_point *a = point_at(t, i);
        for (uint32_t j = i + 1; j < hi; j++) {
            const sm_trend_point *b = point_at(t, j);
            if (b->ts_ms > a->ts_ms)
                work[np++] = (b->v - a->v) / (double)(b->ts_ms - a->ts_ms);
        }
    }
    if (np == 0)
        return false;
    double s = sm_stats_median(work, np);
    int64_t t_new = point_at(t, hi - 1)->ts_ms;
    size_t n = hi - lo;
    for (uint32_t i = lo; i < hi; i++) {
        const sm_trend_point *p = point_at(t, i);
        work[i - lo] = p->v - s * (double)(p->ts_ms - t_new);
    }
    double lv = sm_stats_median(work, n);
    for (uint32_t i = lo; i < hi; i++) {
        const sm_trend_point *p = point_at(t, i);
        work[i - lo] = p->v - (lv + s * (double)(p->ts_ms - t_new));
    }
    *mad = sm_stats_mad(work, n, sm_stats_median(work, n));
    *slope_ms = s;
    *level = lv;
    return true;
}

/* Kendall's tau-a of the points held (time order against value order). */
static double kendall_tau(const sm_trend *t)
{
    int64_t s = 0, pairs = 0;
    uint32_t n = t->count;
    for (uint32_t i = 0; i < n; i++) {
        const sm_trend_point *a = point_at(t, i);
        for (uint32_t j = i + 1; j < n; j++) {
            const sm_trend_point *b = point_at(t, j);
            if (b->ts_ms == a->ts_ms)
                continue;
            pairs++;
            s += (b->v > a->v) - (b->v < a->v);
        }
    }
    return pairs ? (double)s / (double)pairs : 0.0;
}

/* The noise band around a fit of the given level and residual MAD. */
static double noise_band(const sm_trend_config *cfg, double level, double mad)
{
    double band = cfg->change_k * MAD_SIGMA * mad;
    if (band < cfg->noise_abs)
        band = cfg->noise_abs;
    if (band < cfg->noise_rel * absd(level))
        band = cfg->noise_rel * absd(level);
    return band;
}

/* Whether the newest change_run points left the line the older ones
 * project: each beyond the older points' noise band, all on one side. */
static bool changed(sm_trend *t, const sm_trend_config *cfg)
{
    uint32_t run = cfg->change_run, n = t->count;
    if (run < 2 || n < run + cfg->change_base)
        return false;
    double s, lv, mad;
    if (!theil_sen(t, 0, n - run, &s, &lv, &mad))
        return false;
    double band = noise_band(cfg, lv, mad);
    const sm_trend_point *last_old = point_at(t, n - run - 1);
    int side = 0;
    for (uint32_t i = n - run; i < n; i++) {
        const sm_trend_point *p = point_at(t, i);
        double e = p->v - (lv + s * (double)(p->ts_ms - last_old->ts_ms));
        int sd = e > band ? 1 : e < -band ? -1 : 0;
        if (sd == 0 || (side != 0 && sd != side))
            return false;
        side = sd;
    }
    /* significant; now material: the run's own rate against the old one */
    if (!(cfg->change_ratio > 1))
        return true;
    const sm_trend_point *newest = point_at(t, n - 1);
    if (newest->ts_ms <= last_old->ts_ms)
        return false;
    double r = (newest->v - last_old->v) /
               (double)(newest->ts_ms - last_old->ts_ms);
    if ((r > 0) != (s > 0) || r == 0 || s == 0)
        return true;
    double a = absd(r), b = absd(s);
    return a >= cfg->change_ratio * b || b >= cfg->change_ratio * a;
}

/* Fits the ring; returns SM_TREND_CHANGE if it was cut at a change. */
static unsigned fit(sm_trend *t, const sm_trend_config *cfg)
{
    unsigned r = 0;
    clear_fit(t);
    if (t->count == 0)
        return 0;
    /* a silence: points older than the window say nothing about now */
    int64_t newest = point_at(t, t->count - 1)->ts_ms;
    int64_t horizon = (int64_t)cfg->max_points * cfg->step_ms;
    while (t->count > 1 && point_at(t, 0)->ts_ms < newest - horizon)
        t->count--;
    if (changed(t, cfg)) {
        /* the new regime: the run and the kink it starts from */
        keep_newest(t, cfg->change_run + 1);
        t->changes++;
        r = SM_TREND_CHANGE;
    }
    double slope_ms, level, mad;
    if (t->count < cfg->min_points ||
        !theil_sen(t, 0, t->count, &slope_ms, &level, &mad))
        return r;
    t->band = noise_band(cfg, level, mad);
    t->slope = slope_ms * 1000.0;
    t->level = level;
    t->fit_ts_ms = newest;
    t->fit_n = t->count;
    double tau = kendall_tau(t);
    t->quality = slope_ms > 0 ? clamp01(tau) : slope_ms < 0 ? clamp01(-tau)
                                                           : 0.0;
    if (cfg->mode == SM_TREND_MIN) {
        /* the saw's height: each step's max - min about the fitted line */
        double sp[SM_TREND_POINTS];
        for (uint32_t i = 0; i < t->count; i++) {
            const sm_trend_point *p = point_at(t, i);
            sp[i] = (double)p->rise - slope_ms * (double)p->rise_ms;
            if (sp[i] < 0)
                sp[i] = 0;
        }
        t->spread = sm_stats_median(sp, t->count);
    }
    return r;
}

/* Closes the open step: its point joins the ring and the ring is fitted. */
static unsigned commit(sm_trend *t, const sm_trend_config *cfg)
{
    if (t->cur_n == 0)
        return 0;
    sm_trend_point *p = &t->pts[t->head];
    p->ts_ms = t->cur_ts_ms;
    p->v = t->cur_v;
    double rise = t->cur_max - t->cur_min;
    p->rise = rise < 3.0e38 ? (float)rise : 3.0e38f;
    int64_t dt = t->cur_max_ts_ms - t->cur_min_ts_ms;
    p->rise_ms = dt > INT32_MAX ? INT32_MAX : dt < -INT32_MAX ? -INT32_MAX
                                                            : (int32_t)dt;
    t->head = (t->head + 1) % SM_TREND_POINTS;
    if (t->count < SM_TREND_POINTS)
        t->count++;
    keep_newest(t, cfg->max_points);
    t->cur_n = 0;
    return SM_TREND_POINT | fit(t, cfg);
}

static void open_step(sm_trend *t, const sm_trend_config *cfg, int64_t ts_ms)
{
    t->step_start_ms = floor_div(ts_ms, cfg->step_ms) * cfg->step_ms;
    t->cur_n = 0;
}

unsigned sm_trend_add(sm_trend *t, const sm_trend_config *cfg,
                      int64_t ts_ms, double v)
{
    if (!is_finite(v))
        return 0;
    unsigned r = 0;
    if (t->started && ts_ms < t->step_start_ms) {
        t->late++;
        return 0;
    }
    if (t->started && cfg->mode == SM_TREND_LAST && cfg->reset_drop > 0 &&
        t->last_v > 0 && v < t->last_v * (1.0 - cfg->reset_drop)) {
        t->count = 0;
        t->cur_n = 0;
        clear_fit(t);
        t->resets++;
        r |= SM_TREND_RESET;
    }
    if (!t->started) {
        t->started = 1;
        open_step(t, cfg, ts_ms);
    } else if (ts_ms >= t->step_start_ms + cfg->step_ms) {
        r |= commit(t, cfg);
        open_step(t, cfg, ts_ms);
    }
    if (t->cur_n == 0) {
        t->cur_ts_ms = t->cur_min_ts_ms = t->cur_max_ts_ms = ts_ms;
        t->cur_v = t->cur_min = t->cur_max = v;
    } else {
        if (cfg->mode == SM_TREND_LAST || v < t->cur_v) {
            t->cur_ts_ms = ts_ms;
            t->cur_v = v;
        }
        if (v < t->cur_min) {
            t->cur_min = v;
            t->cur_min_ts_ms = ts_ms;
        }
        if (v > t->cur_max) {
            t->cur_max = v;
            t->cur_max_ts_ms = ts_ms;
        }
    }
    t->cur_n++;
    t->last_ts_ms = ts_ms;
    t->last_v = v;
    return r;
}

unsigned sm_trend_tick(sm_trend *t, const sm_trend_config *cfg,
                       int64_t now_ms)
{
    if (!t->started || t->cur_n == 0 ||
        now_ms < t->step_start_ms + cfg->step_ms)
        return 0;
    unsigned r = commit(t, cfg);
    open_step(t, cfg, now_ms);
    return r;
}

double sm_trend_level(const sm_trend *t, int64_t now_ms)
{
    if (t->fit_n)
        return t->level + t->slope * (double)(now_ms - t->fit_ts_ms) / 1000.0;
    if (t->count)
        return point_at(t, t->count - 1)->v;
    return 0.0;
}

int64_t sm_trend_age_ms(const sm_trend *t, int64_t now_ms)
{
    if (t->count == 0)
        return -1;
    int64_t age = now_ms - point_at(t, t->count - 1)->ts_ms;
    return age < 0 ? 0 : age;
}

int64_t sm_trend_eta_ms(const sm_trend *t, int64_t now_ms, double limit)
{
    if (t->fit_n == 0)
        return -1;
    double level = sm_trend_level(t, now_ms);
    if (level >= limit)
        return 0;
    if (!(t->slope > 0))
        return -1;
    double eta = (limit - level) / t->slope * 1000.0;
    if (!(eta < (double)SM_TREND_ETA_MAX))
        return SM_TREND_ETA_MAX;
    return eta < 1.0 ? 1 : (int64_t)eta;
}

bool sm_trend_valid(const sm_trend *t)
{
    if (t->head >= SM_TREND_POINTS || t->count > SM_TREND_POINTS ||
        t->started > 1 || t->fit_n > t->count)
        return false;
    if (!is_finite(t->slope) || !is_finite(t->level) || !is_finite(t->spread) ||
        !(t->quality >= 0 && t->quality <= 1))
        return false;
    for (uint32_t i = 1; i < t->count; i++)
        if (point_at(t, i)->ts_ms < point_at(t, i - 1)->ts_ms)
            return false;
    return true;
}

/* --------------------------------------------------------- sm_forecast */

bool sm_forecast_config_valid(const sm_forecast_config *c)
{
    if (c == NULL || c->horizon_ms <= 0 || !(c->clear_factor >= 1))
        return false;
    if (!(c->q_raise >= 0 && c->q_raise <= 1) ||
        !(c->q_clear >= 0 && c->q_clear <= c->q_raise))
        return false;
    if (c->raise_steps < 1 || c->clear_steps < 1 || c->reserved != 0)
        return false;
    if (!(c->update_frac > 0) || c->update_min_ms < 0)
        return false;
    if (!(c->publish_min >= 0 && c->publish_min <= 1))
        return false;
    return c->fresh_ms >= 0 && c->stale_ms > c->fresh_ms;
}

void sm_forecast_init(sm_forecast *f)
{
    memset(f, 0, sizeof *f);
    f->eta_ms = -1;
}

double sm_forecast_confidence(const sm_forecast_config *cfg, double quality,
                              double accuracy, int64_t age_ms)
{
    double recency = 0.0;
    if (age_ms >= 0 && age_ms <= cfg->fresh_ms)
        recency = 1.0;
    else if (age_ms > cfg->fresh_ms && age_ms < cfg->stale_ms)
        recency = (double)(cfg->stale_ms - age_ms) /
                  (double)(cfg->stale_ms - cfg->fresh_ms);
    return 0.5 * clamp01(quality) + 0.3 * clamp01(accuracy) + 0.2 * recency;
}

static sm_fc_verdict verdict(sm_fc_action a, const char *reason,
                             const sm_fc_input *in, double conf)
{
    sm_fc_verdict v;
    v.action = a;
    v.reason = reason;
    v.eta_ms = in->eta_ms;
    v.fail_at_ms = (a == SM_FC_RAISE || a == SM_FC_UPDATE)
                       ? in->now_ms + in->eta_ms : 0;
    v.confidence = conf;
    return v;
}

/* Why a raised prediction should go, or NULL. */
static const char *clear_reason(const sm_forecast_config *cfg,
                                const sm_fc_input *in, bool broken)
{
    double out = (double)cfg->horizon_ms * (broken ? 1.0 : cfg->clear_factor);
    if (in->eta_ms < 0)
        return "not_approaching";
    if ((double)in->eta_ms > out)
        return "beyond_horizon";
    if (in->eta_ms > 0 && in->quality < cfg->q_clear)
        return "low_quality";
    return NULL;
}

sm_fc_verdict sm_forecast_step(sm_forecast *f, const sm_forecast_config *cfg,
                               const sm_fc_input *in)
{
    double conf = sm_forecast_confidence(cfg, in->quality, in->accuracy,
                                         in->age_ms);
    f->eta_ms = in->eta_ms;
    f->confidence = conf;

    if (!f->raised) {
        bool ok = in->eta_ms > 0 && in->eta_ms <= cfg->horizon_ms &&
                  in->quality >= cfg->q_raise &&
                  in->points >= cfg->raise_points &&
                  conf >= cfg->publish_min;
        f->run = ok ? f->run + 1 : 0;
        if (f->run < cfg->raise_steps)
            return verdict(SM_FC_NONE, "", in, conf);
        f->raised = 1;
        f->run = 0;
        f->raised_at_ms = f->published_at_ms = in->now_ms;
        f->fail_at_ms = in->now_ms + in->eta_ms;
        f->updates = 0;
        f->broken = 0;
        return verdict(SM_FC_RAISE, "approaching", in, conf);
    }

    if (in->reset)
        f->broken = 1;
    const char *why = clear_reason(cfg, in, f->broken);
    if (why != NULL) {
        f->run++;
        if (f->run < cfg->clear_steps)
            return verdict(SM_FC_NONE, "", in, conf);
        f->raised = 0;
        f->run = 0;
        return verdict(SM_FC_WITHDRAW, why, in, conf);
    }
    f->run = 0;
    if (in->eta_ms > 0 &&
        in->now_ms - f->published_at_ms >= cfg->update_min_ms) {
        double moved = (double)(in->now_ms + in->eta_ms - f->fail_at_ms);
        if (absd(moved) > cfg->update_frac * (double)in->eta_ms) {
            f->published_at_ms = in->now_ms;
            f->fail_at_ms = in->now_ms + in->eta_ms;
            f->updates++;
            return verdict(SM_FC_UPDATE, "eta_moved", in, conf);
        }
    }
    return verdict(SM_FC_NONE, "", in, conf);
}

sm_fc_verdict sm_forecast_eval(sm_forecast *f, const sm_forecast_config *cfg,
                               const sm_trend *t, int64_t now_ms,
                               double limit, double accuracy, bool reset)
{
    sm_fc_input in;
    in.now_ms = now_ms;
    in.eta_ms = sm_trend_eta_ms(t, now_ms, limit);
    in.quality = sm_trend_quality(t);
    in.points = sm_trend_points(t);
    in.age_ms = sm_trend_age_ms(t, now_ms);
    in.accuracy = accuracy;
    in.reset = reset;
    return sm_forecast_step(f, cfg, &in);
}

bool sm_forecast_valid(const sm_forecast *f)
{
    return f->raised <= 1 && f->broken <= 1 &&
           f->confidence >= 0 && f->confidence <= 1;
}

const char *sm_fc_action_str(sm_fc_action a)
{
    switch (a) {
    case SM_FC_NONE:     return "none";
    case SM_FC_RAISE:    return "raise";
    case SM_FC_UPDATE:   return "update";
    case SM_FC_WITHDRAW: return "withdraw";
    }
    return "unknown";
}

/* ------------------------------------------------------------- presets */

sm_status sm_fc_defaults(sm_fc_source src, sm_trend_config *tc,
                         sm_forecast_config *fc)
{
    sm_trend_config t;
    sm_forecast_config f;
    memset(&t, 0, sizeof t);
    memset(&f, 0, sizeof f);
    t.max_points = SM_TREND_POINTS;
    t.min_points = 3;
    t.change_run = 3;
    t.change_base = 3;
    t.change_k = 3.0;
    t.change_ratio = 2.0;
    f.clear_factor = 1.5;
    f.q_raise = 0.6;
    f.q_clear = 0.3;
    f.update_frac = 0.25;
    f.update_min_ms = 30000;
    f.publish_min = 0.7;
    switch (src) {
    case SM_FC_TOKENS:
        t.step_ms = 5000;
        t.mode = SM_TREND_LAST;
        t.reset_drop = 0.2;
        f.horizon_ms = 5 * 60000;
        f.raise_steps = 3;
        f.raise_points = 4;
        f.clear_steps = 3;
        f.fresh_ms = 10000;
        f.stale_ms = 60000;
        break;
    case SM_FC_MEMORY:
        t.step_ms = 90000;
        t.mode = SM_TREND_MIN;
        t.change_run = 2;
        t.change_base = 5;
        t.noise_rel = 0.03;
        f.horizon_ms = 15 * 60000;
        f.raise_steps = 1;
        f.raise_points = 3;
        f.clear_steps = 2;
        f.fresh_ms = 180000;
        f.stale_ms = 540000;
        break;
    case SM_FC_QUEUE:
        t.step_ms = 5000;
        t.mode = SM_TREND_LAST;
        t.change_run = 4;
        t.noise_abs = 3.0;
        t.noise_rel = 0.05;
        f.horizon_ms = 5 * 60000;
        f.raise_steps = 3;
        f.raise_points = 8;
        f.clear_steps = 5;
        f.fresh_ms = 10000;
        f.stale_ms = 60000;
        break;
    default:
        return SM_ERR_INVALID;
    }
    if (tc)
        *tc = t;
    if (fc)
        *fc = f;
    return SM_OK;
}
