/*
 * episode.c - severity bands and the life of bottleneck episodes.
 */
#include "episode.h"

#include "predict.h"

#include <string.h>

static double clamp01(double x)
{
    if (!(x > 0.0))
        return 0.0;
    return x > 1.0 ? 1.0 : x;
}

double sm_band(double lo, double hi, double frac)
{
    double v = lo + (hi - lo) * clamp01(frac);
    if (hi < 1.0 && v > hi - EDGE_EPS)
        v = hi - EDGE_EPS;
    return v;
}

/* Lower edge of a severity's impact band. */
static double band_lower(uint32_t sev)
{
    switch (sev) {
    case SM_SEV_CRITICAL: return 0.8;
    case SM_SEV_HIGH:     return 0.6;
    case SM_SEV_MEDIUM:   return 0.4;
    default:              return 0.0;
    }
}

uint32_t sm_severity_step(const sm_detect_config *c, uint32_t current,
                          double impact)
{
    uint32_t sev = (uint32_t)sm_severity_of(impact);
    if (sev >= current || impact >= band_lower(current) - c->severity_margin)
        return sev >= current ? sev : current;
    return sev;
}

sm_decision *sm_episode_decision(const sm_swarm *sw, sm_decisions *out,
                                 sm_bn_type type, sm_transition_kind kind,
                                 const char *subject, int64_t raised_at_ms,
                                 double impact, uint32_t severity,
                                 const char *reason,
                                 const sm_evidence *evidence)
{
    sm_decision *d = sm_decisions_push(out);
    if (d == NULL)
        return NULL;
    d->kind = SM_DEC_BOTTLENECK;
    d->at_ms = sw->st.now_ms;
    sm_id_copy(d->swarm, sw->st.id);
    sm_id_copy(d->subject, subject);
    d->evidence = *evidence;
    d->evidence.window_end_ms = sw->st.now_ms;
    d->evidence.window_start_ms = sw->st.now_ms - sw->cfg.window_ms;
    d->bn.type = type;
    d->bn.transition = kind;
    d->bn.severity = (sm_severity)severity;
    d->bn.impact = impact;
    d->bn.raised_at_ms = raised_at_ms;
    d->bn.reason = reason;
    return d;
}

void sm_finding_metric(sm_finding *f, const char *name, double value,
                       double threshold, uint32_t samples)
{
    if (f->n_metrics >= SM_MAX_METRICS)
        return;
    f->metrics[f->n_metrics++] = (sm_metric){name, value, threshold, samples};
}

static void episode_decide(sm_swarm *sw, sm_bn_type t, const sm_episode *e,
                           sm_transition_kind k, const sm_finding *f,
                           sm_decisions *out)
{
    sm_decision *d = sm_episode_decision(sw, out, t, k, e->subject,
                                         e->raised_at_ms, e->impact,
                                         e->severity, f->reason, &f->evidence);
    if (d == NULL)
        return;
    for (size_t i = 0; i < f->n_metrics; i++)
        d->metrics[i] = f->metrics[i];
    d->n_metrics = f->n_metrics;
    sm_decision_mint(&sw->mint, d);
}

void sm_episode_raise(sm_swarm *sw, sm_bn_type t, sm_episode *e,
                      const char *subject, const sm_finding *f,
                      sm_decisions *out)
{
    e->raised = 1;
    e->raised_at_ms = sw->st.now_ms;
    e->impact = f->impact;
    e->severity = (uint32_t)sm_severity_of(e->impact);
    sm_id_copy(e->subject, subject);
    sw->dirty = true;
    episode_decide(sw, t, e, SM_TR_RAISED, f, out);
    sm_pred_happened(sw, SM_DEC_BOTTLENECK, (int)t, subject, out);
}

void sm_episode_resolve(sm_swarm *sw, sm_bn_type t, sm_episode *e,
                        const sm_finding *f, sm_decisions *out)
{
    e->raised = 0;
    sw->dirty = true;
    episode_decide(sw, t, e, SM_TR_RESOLVED, f, out);
}

void sm_episode_update(sm_swarm *sw, sm_bn_type t, sm_episode *e,
                       const sm_finding *f, sm_decisions *out)
{
    uint32_t sev = sm_severity_step(&sw->cfg, e->severity, f->impact);
    if (f->impact != e->impact)
        sw->dirty = true;
    e->impact = f->impact;
    if (sev == e->severity)
        return;
    e->severity = sev;
    episode_decide(sw, t, e, SM_TR_UPDATED, f, out);
}
