/*
 * episode.h - bottleneck episodes: severity bands, the raise / update /
 * resolve life of an episode, and the decision each step appends.
 *
 * An episode is one bottleneck from its raise to its resolve. Swarm-wide
 * episodes (token, quota, queue, consensus: one per type) live in the
 * swarm state; slow-agent episodes live in the agent records and are
 * stepped by detectors.c, which builds their decisions with
 * sm_episode_decision() too. What a signal shows (impact, reason,
 * evidence, metrics) is measured by the detectors and handed in as an
 * sm_finding: an episode knows nothing of any rule. Internal to core/.
 */
#ifndef SM_EPISODE_H
#define SM_EPISODE_H

#include <stdint.h>

#include "decision.h"
#include "swarm_int.h"

/* Impact inside the band [lo, hi): lo + (hi - lo) * frac, frac clamped to
 * [0, 1], capped just below hi unless hi is the top of the scale, so the
 * severity is the band's. */
double sm_band(double lo, double hi, double frac);

/* The severity to publish for `impact` while `current` is published: up
 * at once, down only once impact is severity_margin below the current
 * band's lower edge. */
uint32_t sm_severity_step(const sm_detect_config *c, uint32_t current,
                          double impact);

/* Appends a bottleneck decision taken now (the swarm's event time), with
 * the window ending now, and returns it for metrics; NULL when out is NULL
 * or could not grow. Call sm_decision_mint() once the metrics are in. */
sm_decision *sm_episode_decision(const sm_swarm *sw, sm_decisions *out,
                                 sm_bn_type type, sm_transition_kind kind,
                                 const char *subject, int64_t raised_at_ms,
                                 double impact, uint32_t severity,
                                 const char *reason,
                                 const sm_evidence *evidence);

/* What a detector measured for one step of a swarm-wide episode. */
typedef struct sm_finding {
    double impact;
    const char *reason;         /* static */
    sm_evidence evidence;
    size_t n_metrics;
    sm_metric metrics[SM_MAX_METRICS];
} sm_finding;

/* Appends a metric to a finding; ignored past SM_MAX_METRICS. */
void sm_finding_metric(sm_finding *f, const char *name, double value,
                       double threshold, uint32_t samples);

/* Episode e (a swarm-wide one, or a consensus group's) of type t, stepped
 * on what the detector found. */
void sm_episode_raise(sm_swarm *sw, sm_bn_type t, sm_episode *e,
                      const char *subject, const sm_finding *f,
                      sm_decisions *out);
void sm_episode_resolve(sm_swarm *sw, sm_bn_type t, sm_episode *e,
                        const sm_finding *f, sm_decisions *out);
/* Takes the finding's impact for a raised episode; UPDATED on a severity
 * change. */
void sm_episode_update(sm_swarm *sw, sm_bn_type t, sm_episode *e,
                       const sm_finding *f, sm_decisions *out);

#endif
