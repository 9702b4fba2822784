/*
 * pattern.h - pattern learning over a swarm's happenings, as a source of
 * failure predictions (SPEC capability 3, and source "pattern" of 4).
 *
 * A happening is (event time, code, subject): "bottleneck slow_agent
 * raised", "failure agent_down raised", "heartbeat went DEGRADED", ...
 * The caller owns the code space: it maps what it wants learned to small
 * integers below SM_PAT_CODES (64) and keeps that mapping stable for as
 * long as the state lives (a state read back under another mapping learns
 * nonsense). Feed transitions, not every sample: one happening when an
 * agent goes DEGRADED, not one per DEGRADED heartbeat, or the history
 * fills with repeats. The subject (a hash of the agent or group, the
 * caller's choice) is kept and handed back as the trigger's subject; the
 * learning itself ignores it (patterns are per swarm).
 *
 * Four kinds of pattern are learned, each needing min_occurrences (5):
 *
 *   sequence     n-grams (n = 2, 3) of codes, subject ignored: the chance
 *                that the happening after context c1 (or c1 c2) is x,
 *                (count(c, x) + shrink * p(x)) / (count(c, any) + shrink),
 *                p(x) the share of x in the history (shrinkage toward the
 *                base rate while the context is rare). Needs count(c, x)
 *                >= min_occurrences. The learned delay is the time from
 *                the context's last happening to x.
 *   frequency    a code that recurs at a regular interval: the gaps
 *                between its consecutive occurrences, mean and sample
 *                standard deviation; regular when there are at least
 *                min_occurrences gaps and their coefficient of variation
 *                is under max_cv (0.3). Confidence (1 - cv) * n / (n +
 *                shrink), i.e. 1 - cv shrunk toward 1, the cv of no
 *                rhythm at all (a Poisson process); the next one is due
 *                one mean after the last.
 *   correlation  B follows A (A != B) within corr_window_ms (W, 5 min)
 *                more often than chance. Over the occurrences of A whose
 *                window has closed (A + W <= now), hits = those with a B
 *                within W after them. Chance: B's base rate lambda =
 *                occurrences of B / the history's span, and the chance
 *                that a window of W holds at least one B, p0 = 1 -
 *                exp(-lambda W) (the Poisson form of lambda x W, which
 *                it approaches for rare B and which, unlike it, stays a
 *                probability when B is frequent). expected = count(A) x
 *                p0; lift = hits / expected. Learned when hits >=
 *                min_occurrences and lift > min_lift (2). Confidence =
 *                P(B within W | A) shrunk toward p0: (hits + shrink p0) /
 *                (count(A) + shrink). It can fire: 8 A's each followed by
 *                B among noise give a lift near 6 (tests/check_pattern.c).
 *   spike        a code that clusters in an hour of day (UTC, hour =
 *                floor(ts / 3600000) mod 24, integer arithmetic): its rate
 *                in that hour (occurrences / hours of that hour-of-day
 *                covered since the learner's first happening, within the
 *                two generations below) over its mean rate per hour
 *                exceeds spike_factor (2), with at least
 *                min_occurrences occurrences on at least spike_min_days
 *                (2) distinct days, and a count that noise at the mean
 *                rate would reach with a chance under spike_alpha / 24
 *                (the Poisson upper tail; alpha 0.001 for the code's 24
 *                hours together: among 24 hours of many codes some hour
 *                is bound to look busy now and then).
 *                Confidence = days with it in that hour / (days that
 *                hour was covered + shrink).
 *
 * A pattern is learned (listed, and able to forecast) when it passes its
 * guards above and its confidence reaches `confidence` (0.7).
 *
 * Time runs forward. Happenings are kept oldest first and every delay is a
 * later time minus an earlier one; the newest occurrence is the one a
 * forecast counts from. (The reference read newest-first data backwards
 * and its correlation rule could never fire; tests hold both.) A happening
 * older than the newest one recorded is taken at the newest time, so the
 * history stays ordered.
 *
 * Bounded history, and what ages out:
 *   - the last SM_PAT_HISTORY (256) happenings in a ring; sequences,
 *     frequencies and correlations are computed from those of them that
 *     are less than history_ms (7 days) older than `now`. A pattern that
 *     stopped loses its support as 256 newer happenings push it out, or as
 *     its happenings grow older than history_ms, whichever comes first;
 *     nothing else decays it (no weights: a counted happening counts 1).
 *   - spikes: counts per code and hour of day, and a bit per day with
 *     any, in two generations of SM_PAT_SPIKE_GEN_DAYS (7) days each (the
 *     current one and the one before it). A new generation drops the
 *     older one, so a spike is forgotten 7 to 14 days after it stopped;
 *     its confidence sinks before that, each day its hour passes without
 *     it (6 days of 7 is 0.75, 6 of 10 under 0.7).
 *
 * Fixed size: an sm_pattern_state is SM_PATTERN_STATE_BYTES (13432) bytes
 * however many happenings it has seen (4096 of ring, 9216 of hour tables),
 * plain fields, no pointers and no padding: it can be copied byte for byte.
 * It is not a persisted format (encode.c will write one, field by field).
 *
 * Cost: sm_pattern_record is O(1) (a new spike generation copies 6 KB
 * once a week). Learning is done on demand from the ring: predict is
 * O(SM_PAT_HISTORY + SM_PAT_CODES) for one target, list is
 * O(SM_PAT_HISTORY^2 + SM_PAT_CODES x SM_PAT_HISTORY). Neither allocates
 * (a few KB of stack) and neither writes the state.
 *
 * Purity and determinism: no clock (time is the happenings' and the
 * caller's now_ms), no I/O, no allocation; the same calls give the same
 * state and the same outputs, bit for bit, on the same build.
 * Thread safety: none; a state belongs to one caller. Readers (predict,
 * list) take it const and may run concurrently with each other.
 */
#ifndef SM_PATTERN_H
#define SM_PATTERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define SM_PAT_CODES 64             /* codes are 0 .. SM_PAT_CODES - 1 */
#define SM_PAT_HISTORY 256          /* happenings kept in the ring */
#define SM_PAT_HOURS 24
#define SM_PAT_SPIKE_GEN_DAYS 7     /* days per spike generation (<= 8) */
#define SM_PAT_TS_MAX INT64_C(253402300799999)  /* |ts| limit, year 9999 */
#define SM_PATTERN_STATE_BYTES 13432

typedef enum sm_pattern_kind {
    SM_PAT_NONE = 0,
    SM_PAT_SEQUENCE = 1,
    SM_PAT_FREQUENCY = 2,
    SM_PAT_CORRELATION = 3,
    SM_PAT_SPIKE = 4,
} sm_pattern_kind;

/* The settings; sm_pattern_config_default gives the values in brackets. */
typedef struct sm_pattern_config {
    int64_t corr_window_ms;     /* W of a correlation [300000]; <= 1 day */
    int64_t horizon_ms;         /* forecast only what is due within [1 h] */
    int64_t history_ms;         /* ring happenings older are ignored [7 d] */
    double confidence;          /* a pattern's floor to count [0.7] */
    double shrink;              /* pseudo-count toward chance [1.0] */
    double max_cv;              /* frequency: gaps regular under [0.3] */
    double min_lift;            /* correlation: over chance by [2.0] */
    double spike_factor;        /* spike: hour rate over mean rate [2.0] */
    double spike_alpha;         /* spike: chance of its count in noise,
                                   over a code's 24 hours, under [0.001] */
    uint32_t min_occurrences;   /* occurrences behind a pattern [5] */
    uint32_t spike_min_days;    /* spike: distinct days [2]; 1..14 */
} sm_pattern_config;

/* One happening of the ring. */
typedef struct sm_pattern_event {
    int64_t ts_ms;
    uint32_t subject;
    uint16_t code;
    uint16_t reserved;          /* zero */
} sm_pattern_event;

/* The learner of one swarm. Fields are for copying and vetting only;
 * use the functions below. */
typedef struct sm_pattern_state {
    sm_pattern_config cfg;
    uint64_t total;             /* happenings recorded, ever */
    int64_t first_ts_ms;        /* the first one (if total > 0) */
    int64_t newest_ts_ms;       /* the newest one (if total > 0) */
    int64_t spike_gen;          /* generation of spike_*[0]: day / 7 */
    uint32_t head;              /* ring index of the next write */
    uint32_t count;             /* happenings in the ring, <= HISTORY */
    /* [0] the current generation, [1] the one before it */
    uint16_t spike_count[2][SM_PAT_CODES][SM_PAT_HOURS];   /* saturating */
    uint8_t spike_days[2][SM_PAT_CODES][SM_PAT_HOURS];     /* bit = day */
    sm_pattern_event ring[SM_PAT_HISTORY];
} sm_pattern_state;

/* A learned pattern, as list and predict describe it. */
typedef struct sm_pattern {
    sm_pattern_kind kind;
    uint16_t code;              /* the happening it forecasts (B, x) */
    uint16_t ctx_len;           /* sequence: 1 or 2; correlation: 1 */
    uint16_t ctx[2];            /* sequence: the context, oldest first;
                                   correlation: ctx[0] = A */
    uint16_t hour;              /* spike: hour of day, UTC */
    uint16_t reserved;
    uint32_t support;           /* sequence: count(c, x); frequency: gaps;
                                   correlation: hits; spike: occurrences
                                   in the hour */
    uint32_t trials;            /* sequence: count(c, any); frequency:
                                   gaps; correlation: closed A's; spike:
                                   days the hour was covered */
    uint32_t days;              /* spike: days with it in the hour */
    uint32_t reserved2;
    double confidence;          /* 0..1, as the kind defines it above */
    double lift;                /* sequence: P(x | c) / p(x); correlation:
                                   hits / expected; spike: hour rate /
                                   mean rate; frequency: 0 */
    int64_t mean_ms;            /* learned delay: context -> x, period,
                                   A -> B; spike: 0 */
    int64_t spread_ms;          /* its standard deviation */
} sm_pattern;

/* What the learned patterns say about one target code. */
typedef struct sm_pattern_forecast {
    sm_pattern pattern;         /* the best; kind SM_PAT_NONE if none */
    double confidence;          /* pattern.confidence (0 if none) */
    int64_t eta_ms;             /* from now_ms to the expected happening,
                                   >= 0 (0: due now) */
    int64_t trigger_ts_ms;      /* what it counts from: the context's last
                                   happening, the A, the last occurrence,
                                   the spike hour's start */
    uint32_t trigger_subject;   /* that happening's subject (spike: 0) */
    uint32_t reserved;
    const char *reasoning;      /* static, never NULL */
} sm_pattern_forecast;

/* Fills *cfg with the defaults. */
void sm_pattern_config_default(sm_pattern_config *cfg);

/* SM_OK if every setting is in range (windows > 0, corr_window_ms <= 1
 * day, confidence in (0, 1], shrink >= 0, max_cv > 0, min_lift >= 1,
 * spike_factor >= 1, spike_alpha in (0, 1], min_occurrences >= 1, spike_min_days 1..14);
 * SM_ERR_CONFIG otherwise, SM_ERR_INVALID for NULL. */
sm_status sm_pattern_config_check(const sm_pattern_config *cfg);

/* Makes st an empty learner with cfg (NULL: the defaults). Returns
 * SM_ERR_INVALID for a NULL st, SM_ERR_CONFIG for a bad cfg (st is then
 * left untouched). */
sm_status sm_pattern_init(sm_pattern_state *st, const sm_pattern_config *cfg);

/* Replaces the settings of a learner (e.g. one copied back from a blob),
 * keeping what it has seen. Same returns as sm_pattern_init. */
sm_status sm_pattern_set_config(sm_pattern_state *st,
                                const sm_pattern_config *cfg);

/* Records a happening. ts_ms before the newest recorded one is taken as
 * the newest. Returns SM_ERR_INVALID (nothing recorded) for a NULL st, a
 * code >= SM_PAT_CODES or |ts_ms| > SM_PAT_TS_MAX; SM_OK otherwise. */
sm_status sm_pattern_record(sm_pattern_state *st, int64_t ts_ms,
                            unsigned code, uint32_t subject);

/* Whether the learned patterns forecast target_code soon (within
 * horizon_ms of now_ms): true when the best pattern's confidence reaches
 * cfg.confidence. *out is always filled (zeroed first): the best pattern
 * that passes its guards, even under the threshold, or kind SM_PAT_NONE.
 *
 * Candidates, for the target x:
 *   sequence     the latest one or two happenings as the context;
 *   frequency    x's own rhythm, counted from its latest occurrence;
 *   correlation  for each A, its latest occurrence still inside its
 *                window (now < A + W) with no x since;
 *   spike        the nearest spike hour of x starting within horizon_ms
 *                (the current hour: eta 0).
 * eta = max(0, mean_ms - (now - trigger)). A candidate whose moment has
 * passed (now - trigger > mean + 3 spread) or whose eta is beyond
 * horizon_ms does not count. The best is the highest confidence, ties to
 * the lower kind. now_ms before the newest happening counts as the newest.
 * Returns false for a NULL st or out, or a target >= SM_PAT_CODES. */
bool sm_pattern_predict(const sm_pattern_state *st, int64_t now_ms,
                        unsigned target_code, sm_pattern_forecast *out);

/* The learned patterns at now_ms (guards passed, confidence reached), in
 * a fixed order: sequences (bigrams, then trigrams, by first appearance
 * in the history), frequencies by code, correlations by (B, A), spikes by
 * (code, hour). Writes the first min(total, cap) to out[] (out may be
 * NULL when cap is 0) and returns the total (as snprintf does). */
size_t sm_pattern_list(const sm_pattern_state *st, int64_t now_ms,
                       sm_pattern *out, size_t cap);

/* Whether a state's indexes, codes, order and settings are consistent
 * (vetting a copy read back from a blob). */
bool sm_pattern_valid(const sm_pattern_state *st);

/* "none", "sequence", "frequency", "correlation", "spike"; "unknown". */
const char *sm_pattern_kind_str(sm_pattern_kind k);

#endif
