/*
 * forecast.h - the forecasters behind predictions: "this resource runs out
 * in N seconds", said early, and not on noise.
 *
 * Two pieces, plain data the caller embeds (no allocation, no pointers, no
 * padding: a struct can be copied byte for byte into a persistence blob):
 *
 *   sm_trend     level and slope of one gauge sampled irregularly
 *                (ts_ms, value). Samples are decimated into one point per
 *                fixed event-time step (steps aligned to multiples of
 *                step_ms): the step's LAST sample (tokens consumed, pending
 *                tasks) or its MIN (memory: under a garbage-collection
 *                saw-tooth the floor a collection leaves is the signal, and
 *                a spike never becomes a point), stamped with that
 *                sample's own time. A ring of the newest points (at most
 *                SM_TREND_POINTS) is fitted once per step by Theil-Sen:
 *                slope = median of the pairwise slopes, level = median of
 *                the intercepts at the newest point, so up to ~29% of the
 *                points can be wild without moving the fit. Quality is
 *                Kendall's tau oriented by the slope (the share of
 *                agreeing pairs minus the share of disagreeing ones, ties
 *                counting as neither): 1 on a clean monotone trend, ~0 on
 *                noise around a flat line. Together the two are the
 *                Mann-Kendall trend test.
 *
 *                A robust fit lags a real change of regime (a burn's
 *                onset, a surge that peaks): it moves only once about a
 *                third of the points have changed. So before each fit the
 *                newest `change_run` points are held against the line the
 *                older ones (at least change_base of them) project: when
 *                all lie on one side, each beyond the older points' noise
 *                band (change_k x 1.4826 x the MAD of their residuals, at
 *                least noise_abs and noise_rel x |level|), and the run's
 *                own rate differs materially from the old slope (by
 *                change_ratio or more, or in sign), the older points
 *                belong to another regime: only the run and the point it
 *                bends from are kept (SM_TREND_CHANGE). One odd point
 *                cannot do this; change_run points in a row can. A drop of
 *                more than reset_drop of the previous sample (LAST mode: a
 *                budget period restarting, a counter reset) clears the
 *                ring (SM_TREND_RESET): nothing before it says anything
 *                about the rate after it.
 *
 *                Why MIN points a GC period long, not 5-15 s: under a
 *                saw-tooth of 60-90 s most short steps hold no collection,
 *                so their minimum is a point up the ramp, not the floor;
 *                with more than ~29% such points Theil-Sen breaks down.
 *                A step at least one period long always holds a floor (the
 *                price: a point every 90 s, a leak seen in 3-6 minutes).
 *
 *   sm_forecast  the life of one prediction over the trend's estimates:
 *                RAISE once the ETA is inside the horizon with enough
 *                quality and confidence for raise_steps consecutive
 *                evaluations; UPDATE when the expected failure time moves
 *                by more than update_frac of the ETA, at most once per
 *                update_min_ms; WITHDRAW when the trend no longer
 *                approaches the limit, the ETA is beyond horizon x
 *                clear_factor, or quality falls under q_clear, for
 *                clear_steps consecutive evaluations. After a known break
 *                (a change of regime, a reset, a limit moved by an
 *                operator) the band between horizon and horizon x
 *                clear_factor no longer holds a raised prediction.
 *                Confidence per SPEC capability 4:
 *                  0.5 x similarity (the fit quality)
 *                + 0.3 x the source's historical accuracy (a caller input)
 *                + 0.2 x recency (1 while the newest point is fresh,
 *                        falling linearly to 0 at stale_ms).
 *
 * Sources (sm_fc_defaults gives both configurations for each):
 *   tokens  value = tokens_used (absolute, not the ratio: a budget top-up
 *           then moves the limit and leaves the burn rate intact), limit =
 *           the usage at which the budget counts as spent; LAST points
 *           every 5 s, a change after 3 points; raise after 3 evaluations
 *           inside a 5 min horizon (at steady use a swarm in the simulator
 *           sits 6-9 min from exhaustion just before its operators top
 *           up: 10 min would cry wolf every cycle). A budget that jumps:
 *           pass reset = true on that evaluation.
 *   memory  value = memory_used_bytes, MIN points every 90 s (at least a
 *           collection period, so each point is a floor), a change after
 *           2 points against 5; limit = the failure level minus
 *           sm_trend_spread() (the saw's height: the peaks, not the floor,
 *           reach the limit first); horizon 15 min, raise on 1 evaluation
 *           (a point is 90 s of evidence).
 *   queue   value = pending tasks (all priorities), LAST points every 5 s;
 *           the slope is the net growth, arrivals minus drain, in tasks
 *           per second; limit = the critical level (200). Pending tasks
 *           wander like a random walk and bursts land at once, so: a
 *           change after 4 points, raise on a fit of 8 points (40 s) for
 *           3 evaluations inside a 5 min horizon, withdraw after 5. A
 *           surge that drains on its own turns the slope negative and the
 *           prediction, if raised, is withdrawn.
 *
 * Cost: sm_trend_add is O(1) except when it closes a step: then the fit
 * costs O(n^2) on n <= SM_TREND_POINTS points (120 pairwise slopes at most,
 * quickselect), once per step, not per sample. sm_forecast_step is O(1).
 * Nothing allocates, reads a clock or logs.
 *
 * Determinism: IEEE double arithmetic only (no libm), fixed orders of
 * evaluation, deterministic quickselect (window.h): the same samples and
 * calls give the same state and outputs, bit for bit.
 *
 * Persistence: every field of sm_trend and sm_forecast matters (the open
 * step, the previous sample, the ring, the fit, the runs and the published
 * failure time) except those marked diagnostic (band, changes, resets,
 * late, updates). The configurations are not stored inside:
 * the caller keeps them (a configuration change with old state is legal;
 * the ring is refitted at the next step). Validate a blob read back with
 * sm_trend_valid() / sm_forecast_valid().
 *
 * Thread safety: none; each structure belongs to one caller.
 */
#ifndef SM_FORECAST_H
#define SM_FORECAST_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"

/* ------------------------------------------------------------ sm_trend */

#define SM_TREND_POINTS 16          /* most points a trend keeps */
#define SM_TREND_ETA_MAX INT64_C(10000000000000)   /* ~317 years: "never" */

/* sm_trend_add / sm_trend_tick result bits. */
#define SM_TREND_POINT 1u           /* a step closed: a point and a new fit */
#define SM_TREND_RESET 2u           /* a drop cleared the ring */
#define SM_TREND_CHANGE 4u          /* the fit cut the ring at a change of
                                       regime */

typedef enum sm_trend_mode {
    SM_TREND_LAST = 0,              /* a step's point: its last sample */
    SM_TREND_MIN = 1,               /* its lowest sample (first on ties) */
} sm_trend_mode;

typedef struct sm_trend_config {
    int64_t step_ms;                /* decimation step, > 0 */
    uint32_t mode;                  /* sm_trend_mode */
    uint32_t max_points;            /* ring size, min_points..SM_TREND_POINTS;
                                       points older than max_points x step_ms
                                       before the newest are dropped too */
    uint32_t min_points;            /* fewer: no estimate; >= 3 */
    uint32_t change_run;            /* newest points beyond the band that
                                       make a change; >= 2 (0: never) */
    uint32_t change_base;           /* older points the change is judged
                                       against (their fit and MAD), >= 3 */
    double change_k;                /* band: change_k x 1.4826 x MAD */
    double change_ratio;            /* and the run's rate at least this
                                       times the old slope, or under 1 /
                                       this, or of the other sign (<= 1:
                                       the band alone decides) */
    double noise_abs;               /* the band is at least this (units) */
    double noise_rel;               /* ... and at least this x |level| */
    double reset_drop;              /* LAST: a sample under (1 - reset_drop)
                                       x the previous clears; 0: never */
} sm_trend_config;

typedef struct sm_trend_point {
    int64_t ts_ms;                  /* time of the sample chosen */
    double v;                       /* its value */
    float rise;                     /* the step's max - min */
    int32_t rise_ms;                /* from the min to the max (< 0: the
                                       max came first) */
} sm_trend_point;

typedef struct sm_trend {
    /* the open step */
    int64_t step_start_ms;          /* aligned start of the open step */
    int64_t cur_ts_ms;              /* the candidate point's sample */
    double cur_v;
    double cur_min, cur_max;        /* over the open step */
    int64_t cur_min_ts_ms;          /* and when */
    int64_t cur_max_ts_ms;
    uint32_t cur_n;                 /* samples in the open step (0: none) */
    uint32_t started;               /* 0 until the first sample */
    int64_t last_ts_ms;             /* the previous sample (reset_drop) */
    double last_v;
    /* the ring, oldest first from (head - count) */
    uint32_t head;                  /* next write */
    uint32_t count;                 /* points held */
    sm_trend_point pts[SM_TREND_POINTS];
    /* the fit, redone at each point */
    double slope;                   /* units per second */
    double level;                   /* fitted value at fit_ts_ms */
    double quality;                 /* oriented Kendall tau, [0, 1] */
    double spread;                  /* MIN: median of the steps' max -
                                       min about the fitted line */
    double band;                    /* the last fit's noise band
                                       (diagnostic) */
    int64_t fit_ts_ms;              /* the newest point's time */
    uint32_t fit_n;                 /* points behind the fit; 0: none */
    /* diagnostics */
    uint32_t changes;               /* regime changes (ring cut) */
    uint32_t resets;                /* drops that cleared the ring */
    uint32_t late;                  /* samples before the open step */
} sm_trend;

/* Whether cfg is usable: step_ms > 0, 3 <= min_points <= max_points <=
 * SM_TREND_POINTS, mode known, change_run 0 or >= 2 (then change_base >=
 * 3), change_k, change_ratio, noise_abs, noise_rel >= 0, 0 <= reset_drop
 * < 1. */
bool sm_trend_config_valid(const sm_trend_config *cfg);

/* Empties t (no samples, no estimate). */
void sm_trend_init(sm_trend *t);

/* Adds a sample. A sample in a later step first closes the open one (its
 * point is added to the ring and the ring refitted). A sample before the
 * open step is late: counted and ignored; NaN and infinities are ignored.
 * Returns a mask: SM_TREND_POINT when a point was added (evaluate the
 * forecast then), with SM_TREND_CHANGE when that fit found a change of
 * regime; SM_TREND_RESET when a drop cleared the ring; 0 otherwise. Pass
 * reset = true to the forecast on CHANGE or RESET. */
unsigned sm_trend_add(sm_trend *t, const sm_trend_config *cfg,
                      int64_t ts_ms, double v);

/* Event time passes without a sample (a tick carrying bus time): closes
 * the open step if now_ms is at or past its end. Returns SM_TREND_POINT
 * (and SM_TREND_CHANGE) when it did, else 0. */
unsigned sm_trend_tick(sm_trend *t, const sm_trend_config *cfg,
                       int64_t now_ms);

/* Whether a fit stands (at least min_points points). */
static inline bool sm_trend_ready(const sm_trend *t)
{
    return t->fit_n > 0;
}

/* Slope in units per second (0 without an estimate). For the queue: the
 * net growth, arrivals minus drain. */
static inline double sm_trend_slope(const sm_trend *t)
{
    return t->fit_n ? t->slope : 0.0;
}

/* The fitted level extrapolated to now_ms (the newest point's value
 * without a fit; 0 when empty). */
double sm_trend_level(const sm_trend *t, int64_t now_ms);

/* Fit quality in [0, 1] (0 without an estimate). */
static inline double sm_trend_quality(const sm_trend *t)
{
    return t->fit_n ? t->quality : 0.0;
}

/* MIN mode: the median height of the saw-tooth over the steps held (max -
 * min within a step, the fitted trend between the two taken out); 0 in
 * LAST mode or without a fit. */
static inline double sm_trend_spread(const sm_trend *t)
{
    return t->spread;
}

/* Points behind the fit (0: no estimate). */
static inline uint32_t sm_trend_points(const sm_trend *t)
{
    return t->fit_n;
}

/* Age of the newest point at now_ms (>= 0), or -1 when there is none. */
int64_t sm_trend_age_ms(const sm_trend *t, int64_t now_ms);

/* Expected ms from now_ms until the level reaches `limit` from below:
 * 0 if the extrapolated level is already at or over it, -1 if there is no
 * estimate or the slope is not positive (not approaching), else
 * (limit - level) / slope, at most SM_TREND_ETA_MAX. */
int64_t sm_trend_eta_ms(const sm_trend *t, int64_t now_ms, double limit);

/* Whether t is consistent (vetting a blob read back). */
bool sm_trend_valid(const sm_trend *t);

/* --------------------------------------------------------- sm_forecast */

typedef enum sm_fc_action {
    SM_FC_NONE = 0,
    SM_FC_RAISE,
    SM_FC_UPDATE,
    SM_FC_WITHDRAW,
} sm_fc_action;

typedef struct sm_forecast_config {
    int64_t horizon_ms;             /* raise when 0 < ETA <= horizon */
    double clear_factor;            /* withdraw when ETA > horizon x this
                                       (>= 1) */
    double q_raise;                 /* quality needed to raise */
    double q_clear;                 /* under this (raised): withdraw */
    uint32_t raise_steps;           /* consecutive evaluations, >= 1 */
    uint32_t clear_steps;           /* consecutive evaluations, >= 1 */
    uint32_t raise_points;          /* points behind the fit to raise */
    uint32_t reserved;              /* zero */
    double update_frac;             /* failure time moved by more than
                                       this x the ETA: update */
    int64_t update_min_ms;          /* at most one publish per this */
    double publish_min;             /* confidence needed to raise (0.7) */
    int64_t fresh_ms;               /* age <= this: recency 1 */
    int64_t stale_ms;               /* age >= this: recency 0 (> fresh) */
} sm_forecast_config;

/* One evaluation's inputs (sm_forecast_eval builds them from a trend). */
typedef struct sm_fc_input {
    int64_t now_ms;
    int64_t eta_ms;                 /* sm_trend_eta_ms(): -1, 0 or ms */
    double quality;                 /* [0, 1] */
    int64_t age_ms;                 /* newest evidence's age; < 0: none */
    double accuracy;                /* the source's measured accuracy in
                                       [0, 1]; a prior of 0.6 without
                                       history */
    uint32_t points;                /* points behind the estimate */
    bool reset;                     /* a known break: the trend found a
                                       change or cleared its ring, or the
                                       limit moved (a top-up) */
} sm_fc_input;

typedef struct sm_fc_verdict {
    sm_fc_action action;
    const char *reason;             /* static: RAISE "approaching"; UPDATE
                                       "eta_moved"; WITHDRAW
                                       "not_approaching", "beyond_horizon",
                                       "low_quality"; NONE "" */
    int64_t eta_ms;                 /* as input */
    int64_t fail_at_ms;             /* now + eta (RAISE/UPDATE), else 0 */
    double confidence;              /* this evaluation's */
} sm_fc_verdict;

typedef struct sm_forecast {
    uint32_t raised;                /* 0 or 1 */
    uint32_t run;                   /* consecutive evaluations meeting the
                                       condition that would change state */
    int64_t raised_at_ms;           /* of the current raise */
    int64_t published_at_ms;        /* last RAISE or UPDATE */
    int64_t fail_at_ms;             /* expected failure time published */
    int64_t eta_ms;                 /* the latest evaluation's */
    double confidence;              /* the latest evaluation's */
    uint32_t updates;               /* UPDATEs of the current raise */
    uint32_t broken;                /* a break since the raise: held to
                                       the raise horizon */
} sm_forecast;

/* Whether cfg is usable (see the fields). */
bool sm_forecast_config_valid(const sm_forecast_config *cfg);

/* Not raised, no runs. */
void sm_forecast_init(sm_forecast *f);

/* Confidence of one evaluation: 0.5 quality + 0.3 accuracy + 0.2 recency,
 * each clamped to [0, 1] (recency from age_ms, fresh_ms, stale_ms). */
double sm_forecast_confidence(const sm_forecast_config *cfg, double quality,
                              double accuracy, int64_t age_ms);

/* One evaluation (once per trend point, and when the limit moves):
 * advances the runs, decides and returns the verdict. Not raised: RAISE
 * when 0 < ETA <= horizon, quality >= q_raise, points >= raise_points and
 * confidence >= publish_min held for raise_steps evaluations in a row (an
 * ETA of 0, the limit already reached, is the failure detector's
 * business, not a prediction). Raised: WITHDRAW when ETA < 0, ETA >
 * horizon x clear_factor or quality < q_clear held for clear_steps
 * evaluations in a row; after a break (in->reset) the hysteresis band is
 * waived until the next raise: ETA > horizon is enough, since the regime
 * that justified the raise is gone and noise in it is no longer the
 * question. Else UPDATE when the ETA is positive, update_min_ms have
 * passed since the last publish and |now + ETA - published failure time|
 * > update_frac x ETA. An ETA of 0 keeps a raised prediction (the failure
 * is due). Confidence falling under publish_min does not withdraw by
 * itself (hysteresis through q_clear). */
sm_fc_verdict sm_forecast_step(sm_forecast *f, const sm_forecast_config *cfg,
                               const sm_fc_input *in);

/* sm_forecast_step on a trend: eta to `limit`, quality and age at now_ms. */
sm_fc_verdict sm_forecast_eval(sm_forecast *f, const sm_forecast_config *cfg,
                               const sm_trend *t, int64_t now_ms,
                               double limit, double accuracy, bool reset);

/* Whether f is consistent (vetting a blob read back). */
bool sm_forecast_valid(const sm_forecast *f);

/* Static names: "none", "raise", "update", "withdraw"; "unknown". */
const char *sm_fc_action_str(sm_fc_action a);

/* ------------------------------------------------------------- presets */

typedef enum sm_fc_source {
    SM_FC_TOKENS = 0,
    SM_FC_MEMORY,
    SM_FC_QUEUE,
} sm_fc_source;

/* The default configurations of a source (see the top of this file).
 * Either output may be NULL. SM_ERR_INVALID for an unknown source. */
sm_status sm_fc_defaults(sm_fc_source src, sm_trend_config *tc,
                         sm_forecast_config *fc);

#endif
