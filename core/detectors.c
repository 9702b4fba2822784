/*
 * detectors.c - the five bottleneck rules over one swarm's windows.
 *
 * The rules and their defaults are described in thresholds.h. This file
 * measures (swarm statistics, an agent's view, a gauge's runs, the
 * consensus rate) and decides when an episode raises, updates or
 * resolves; episode.c does the stepping and builds the decisions.
 *
 * Design choices a reader should know:
 *  - A raised slow agent is held (neither cleared nor updated) while the
 *    swarm has fewer than slow_min_swarm_tasks durations in the window:
 *    there is no trustworthy typical duration to compare with. It still
 *    resolves with "no_data" once none of its own tasks is left.
 *  - A gauge (token, quota, queue) whose latest sample is older than the
 *    window is stale: the tick sweep resolves it with "no_data" and resets
 *    its debounce runs.
 *  - Swarm-wide episodes (token, quota, queue, consensus) are one per type;
 *    their subject is the source or group that was reporting when raised.
 *  - Evidence: a gauge's decision rests on its latest resource sample, the
 *    consensus decision on the latest round, a slow agent's on its latest
 *    finished task (or the lifecycle event that unregistered it).
 */
#include "detectors.h"

#include <math.h>
#include <string.h>

#include "episode.h"
#include "predict.h"

/* What the slow-agent rule sees of one agent right now. */
typedef struct agent_view {
    uint32_t finished;
    uint32_t completed;
    double success;             /* completed / finished, 1 if none */
    uint32_t judged;            /* completed tasks with a ratio, used */
    double ratio;               /* their median duration / type baseline */
    double ratio_recent;        /* the same over the latest
                                   slow_min_agent_tasks of them, for a
                                   raised agent: clearing looks at what it
                                   does now */
    double clear_evidence;      /* nats for tolerable over slow in the
                                   latest slow_clear_tasks judged tasks
                                   alone, for a raised agent */
    uint32_t clear_n;           /* tasks behind it */
    bool ratio_known;
    bool ratio_over;            /* the duration rule fires */
    bool success_under;         /* the success rule fires */
    double impact;
    const char *reason;
} agent_view;

/* ------------------------------------------------------- swarm stats */

/* The swarm's duration spread: 1.4826 x MAD of the log ratios in the
 * horizon. It moves slowly, so it is redone once per tick only. */
static void spread_recompute(sm_swarm *sw, int64_t since)
{
    sm_swarm_state *st = &sw->st;
    size_t n = sm_samples_values(&st->dur_hdr, st->dur, since, TASK_OK,
                                 TASK_OK, sw->scratch, SM_SWARM_SAMPLES);
    for (size_t i = 0; i < n; i++)
        sw->scratch[i] = log(sw->scratch[i] > 0 ? sw->scratch[i] / 1000.0
                                                 : 1e-3);
    double lm = sm_stats_median(sw->scratch, n);
    st->spread = n > 0 ? MAD_SCALE * sm_stats_mad(sw->scratch, n, lm) : 0.0;
}

static void stats_redo(sm_swarm *sw, bool tick)
{
    sm_swarm_state *st = &sw->st;
    int64_t since = sm_horizon_since(sw);
    size_t n = sm_samples_values(&st->dur_hdr, st->dur, since, TASK_OK,
                                 TASK_OK, sw->scratch, SM_SWARM_SAMPLES);
    st->median = sm_stats_median(sw->scratch, n);
    st->mad = sm_stats_mad(sw->scratch, n, st->median);
    bool grew = st->median_n < sw->cfg.slow_min_swarm_tasks &&
                n >= sw->cfg.slow_min_swarm_tasks;
    st->median_n = (uint32_t)n;
    st->new_samples = 0;
    st->stats_dirty = 0;
    st->stats_tick = st->tick;
    if (tick || grew)
        spread_recompute(sw, since);
    if (tick)
        sm_baselines_refresh(&st->types, since, sw->scratch);
    sw->dirty = true;
}

void sm_detect_stats_recompute(sm_swarm *sw)
{
    stats_redo(sw, true);
}

/* The lazy rule: new samples exist and either enough of them piled up, a
 * tick passed, or the swarm is still below its minimum-sample guard; a
 * type's baseline is redone on its own, as often (baseline.h). */
void sm_detect_stats_maybe(sm_swarm *sw)
{
    sm_swarm_state *st = &sw->st;
    if (!st->stats_dirty)
        return;
    if (st->new_samples >= SM_RECOMPUTE_EVERY || st->tick > st->stats_tick ||
        st->median_n < sw->cfg.slow_min_swarm_tasks)
        stats_redo(sw, st->tick > st->stats_tick);
}

/* ------------------------------------------------------- slow agents */

static double slow_sigma(const sm_swarm *sw);

/* One task's log-likelihood ratio, slow (slow_high) over tolerable
 * (slow_ok), for lognormal durations of spread sg. Its log ratio is
 * clipped at m1 + (m1 - m0) so that a single 30x outlier cannot make the
 * case for slow alone; the evidence test adds these up (CUSUM) and clips
 * the fast side at -(m1 + (m1 - m0)). Clearing adds up the
 * opposite over an agent's latest tasks and clips the fast side at
 * m0 - (m1 - m0) (`clearing`): one very fast task weighs no more for
 * tolerable than the slowest one does for slow. */
static double slow_task_llr(const sm_swarm *sw, double sg, double ratio,
                            bool clearing)
{
    double m0 = sw->llr.slow_m0, m1 = sw->llr.slow_m1;
    double hi = m1 + (m1 - m0), lo = clearing ? m0 - (m1 - m0) : -hi;
    double x = log(ratio);
    x = x > hi ? hi : x < lo ? lo : x;
    return (m1 - m0) / (sg * sg) * (x - (m0 + m1) / 2);
}

/* What the slow-agent rule sees of agent a: over its finished tasks in the
 * slow horizon (newest first, SM_AGENT_TASKS at most), the success rate,
 * and the median ratio of duration to the task type's baseline over its
 * latest slow_recent_tasks completed tasks that have one. */
static void agent_measure(const sm_swarm *sw, const sm_agent *a, agent_view *v)
{
    const sm_detect_config *c = &sw->cfg;
    const sm_swarm_state *st = &sw->st;
    const sm_samples *h = &a->s.tasks_hdr;
    int64_t since = sm_horizon_since(sw);
    double r[SM_AGENT_TASKS];
    size_t nr = 0;

    /* a raised agent's latest slow_clear_tasks are read too (clearing) */
    size_t want = c->slow_recent_tasks;
    if (a->s.raised && c->slow_clear_tasks > want)
        want = c->slow_clear_tasks;
    memset(v, 0, sizeof *v);
    for (uint32_t i = 0; i < h->count; i++) {
        const sm_sample *x = sm_samples_at(h, a->s.tasks, h->count - 1 - i);
        if (x->ts_ms < since || !(x->flags & TASK_DONE))
            continue;
        v->finished++;
        if (!(x->flags & TASK_OK))
            continue;
        v->completed++;
        if ((x->flags & TASK_RATIO) && nr < want)
            r[nr++] = (double)x->value / 1000.0;
    }
    if (a->s.raised) {          /* only clearing looks at these */
        size_t nrecent = nr < c->slow_min_agent_tasks ? nr
                                                      : c->slow_min_agent_tasks;
        double recent[SM_AGENT_TASKS];
        memcpy(recent, r, nrecent * sizeof *recent);
        v->ratio_recent = sm_stats_median(recent, nrecent);
        /* fresh evidence: the latest tasks alone, none of the fault's
         * history that the CUSUM and the longer median still carry */
        v->clear_n = (uint32_t)(nr < c->slow_clear_tasks ? nr
                                                         : c->slow_clear_tasks);
        double sg = slow_sigma(sw);
        for (uint32_t i = 0; i < v->clear_n; i++)
            v->clear_evidence -= r[i] > 0 ? slow_task_llr(sw, sg, r[i], true)
                                          : 0.0;
    }
    if (nr > c->slow_recent_tasks)
        nr = c->slow_recent_tasks;
    v->judged = (uint32_t)nr;
    v->success = v->finished > 0 ? (double)v->completed / v->finished : 1.0;
    v->ratio_known = nr > 0;
    v->ratio = sm_stats_median(r, nr);
    double swarm = st->median / 1000.0, mad = st->mad / 1000.0;

    /* slow by either: the evidence test (sequential, over every task
     * since the agent last looked tolerable), or the recent median well
     * clear of the swarm's own spread */
    bool judged = v->ratio_known && nr >= c->slow_min_agent_tasks &&
                  st->median_n >= c->slow_min_swarm_tasks &&
                  v->ratio > c->slow_raise;
    v->ratio_over = judged &&
                    (a->s.slow_llr > c->slow_evidence ||
                     (c->slow_mad_k > 0 &&
                      v->ratio > swarm + c->slow_mad_k * MAD_SCALE * mad));
    v->success_under = v->finished >= c->success_min_tasks &&
                       a->s.fail_llr > c->success_evidence;

    double imp_r = 0.0, imp_s = 0.0;
    if (v->ratio_known) {
        if (v->ratio <= c->slow_high)
            imp_r = sm_band(0.4, 0.6, (v->ratio - c->slow_raise) /
                                   (c->slow_high - c->slow_raise));
        else
            imp_r = sm_band(0.6, 0.8, (v->ratio - c->slow_high) / c->slow_high);
    }
    if (v->finished > 0)
        imp_s = sm_band(0.4, 0.6, (c->success_raise - v->success) /
                               c->success_raise);
    v->impact = imp_r > imp_s ? imp_r : imp_s;
    if (v->impact < 0.4)
        v->impact = 0.4;
    bool by_success = v->success_under && (!v->ratio_over || imp_s > imp_r);
    v->reason = by_success ? "success_rate" : "duration_ratio";
}

static void agent_metrics(const sm_swarm *sw, const agent_view *v,
                          sm_decision *t)
{
    const sm_detect_config *c = &sw->cfg;
    sm_decision_metric(t, "duration_ratio", v->ratio, c->slow_raise, v->judged);
    sm_decision_metric(t, "swarm_median_ratio", sw->st.median / 1000.0, 0.0,
                       sw->st.median_n);
    sm_decision_metric(t, "swarm_mad_ratio", sw->st.mad / 1000.0,
                       c->slow_mad_k, sw->st.median_n);
    sm_decision_metric(t, "success_rate", v->success, c->success_raise, v->finished);
}

/* The input a slow-agent decision rests on: the agent's latest finished
 * task (the one just handled, on a task event), else its last sighting. */
static void agent_evidence(const sm_agent *a, sm_evidence *ev)
{
    const sm_samples *h = &a->s.tasks_hdr;
    memset(ev, 0, sizeof *ev);
    ev->signal = SM_SIG_TASK;
    sm_id_copy(ev->id, a->s.id);
    ev->ts_ms = h->count > 0 ? sm_samples_at(h, a->s.tasks, h->count - 1)->ts_ms
                             : a->s.last_seen_ms;
}

static void agent_decide(sm_swarm *sw, const sm_agent *a, const agent_view *v,
                         sm_transition_kind kind, const char *reason,
                         const sm_evidence *ev, sm_decisions *out)
{
    sm_evidence own;
    if (ev == NULL) {
        agent_evidence(a, &own);
        ev = &own;
    }
    sm_decision *d = sm_episode_decision(sw, out, SM_BN_SLOW_AGENT, kind,
                                         a->s.id, a->s.raised_at_ms,
                                         a->s.impact, a->s.severity, reason,
                                         ev);
    if (d == NULL)
        return;
    agent_metrics(sw, v, d);
    sm_decision_mint(&sw->mint, d);
}

static void agent_resolve(sm_swarm *sw, uint32_t k, const agent_view *v,
                          const char *reason, const sm_evidence *ev,
                          sm_decisions *out)
{
    sm_agent *a = &sw->ag.v[k];
    sm_agents_raised_unlink(&sw->ag, k);
    a->s.raised = 0;
    sm_agents_mark(&sw->ag, (uint32_t)(a - sw->ag.v));
    agent_decide(sw, a, v, SM_TR_RESOLVED, reason, ev, out);
}

/* Runs the slow-agent rule on agent k: raise, update or clear. */
void sm_detect_agent(sm_swarm *sw, uint32_t k, sm_decisions *out)
{
    const sm_detect_config *c = &sw->cfg;
    sm_agent *a = &sw->ag.v[k];
    /* an agent whose evidence is under both lines cannot be raised (the
     * MAD guard aside): nothing to measure, the common case */
    if (!a->s.raised && c->slow_mad_k <= 0 &&
        a->s.slow_llr <= c->slow_evidence &&
        a->s.fail_llr <= c->success_evidence)
        return;
    agent_view v;
    agent_measure(sw, a, &v);

    if (!a->s.raised) {
        if (!v.ratio_over && !v.success_under)
            return;
        a->s.raised = 1;
        a->s.raised_at_ms = sw->st.now_ms;
        a->s.clear_since_ms = 0;
        a->s.impact = v.impact;
        a->s.severity = (uint8_t)sm_severity_of(v.impact);
        sm_agents_mark(&sw->ag, (uint32_t)(a - sw->ag.v));
        sm_agents_raised_link(&sw->ag, k);
        agent_decide(sw, a, &v, SM_TR_RAISED, v.reason, NULL, out);
        sm_pred_happened(sw, SM_DEC_BOTTLENECK, SM_BN_SLOW_AGENT, a->s.id, out);
        return;
    }
    if (v.finished == 0) {
        agent_resolve(sw, k, &v, "no_data", NULL, out);
        return;
    }
    /* too few swarm samples to judge against: hold the episode as is */
    if (sw->st.median_n < c->slow_min_swarm_tasks)
        return;
    /* clear: the agent's latest slow_clear_tasks tasks alone favour
     * tolerable over slow by slow_clear_evidence (fresh evidence); or the
     * evidence is spent and the agent's latest tasks run at a tolerable
     * ratio, or its longer median is back under the clear line */
    bool fresh_ok = c->slow_clear_evidence > 0 &&
                    v.clear_n >= c->slow_clear_tasks &&
                    v.clear_evidence >= c->slow_clear_evidence;
    bool ratio_ok = !v.ratio_known || fresh_ok ||
                    (a->s.slow_llr < c->slow_evidence / 2 &&
                     (v.ratio < c->slow_clear ||
                      (a->s.slow_llr == 0.0 &&
                       v.judged >= c->slow_min_agent_tasks &&
                       v.ratio_recent < c->slow_ok)));
    bool success_ok = a->s.fail_llr < c->success_evidence / 2;
    if (ratio_ok && success_ok) {
        if (a->s.clear_since_ms == 0) {
            a->s.clear_since_ms = sw->st.now_ms;
            sm_agents_mark(&sw->ag, (uint32_t)(a - sw->ag.v));
        }
        if (sw->st.now_ms - a->s.clear_since_ms >= c->slow_clear_hold_ms)
            agent_resolve(sw, k, &v, "cleared", NULL, out);
        return;
    }
    if (a->s.clear_since_ms != 0) {
        a->s.clear_since_ms = 0;
        sm_agents_mark(&sw->ag, (uint32_t)(a - sw->ag.v));
    }
    uint8_t sev = (uint8_t)sm_severity_step(c, a->s.severity, v.impact);
    if (a->s.impact != v.impact)
        sm_agents_mark(&sw->ag, (uint32_t)(a - sw->ag.v));
    a->s.impact = v.impact;
    if (sev != a->s.severity) {
        a->s.severity = sev;
        agent_decide(sw, a, &v, SM_TR_UPDATED, v.reason, NULL, out);
    }
}

/* ------------------------------------------------- swarm-wide episodes */

static const char *type_reason(sm_bn_type t)
{
    switch (t) {
    case SM_BN_TOKEN_EXHAUSTION:  return "token_usage";
    case SM_BN_QUOTA_EXCEEDED:    return "active_agents";
    case SM_BN_QUEUE_BACKLOG:     return "pending_tasks";
    case SM_BN_CONSENSUS_TIMEOUT: return "timeout_rate";
    case SM_BN_SLOW_AGENT:        break;
    }
    return "duration_ratio";
}

static sm_gauge *gauge_of(sm_swarm *sw, sm_bn_type t)
{
    switch (t) {
    case SM_BN_TOKEN_EXHAUSTION: return &sw->st.gauges[G_TOKEN];
    case SM_BN_QUOTA_EXCEEDED:   return &sw->st.gauges[G_QUOTA];
    case SM_BN_QUEUE_BACKLOG:    return &sw->st.gauges[G_QUEUE];
    default:                     return NULL;
    }
}

/* The input an episode of type t (of group grp, for consensus) rests on:
 * the gauge's latest sample, or the group's latest round. */
static void type_evidence(const sm_swarm *sw, sm_bn_type t,
                          const sm_group *grp, sm_evidence *ev)
{
    memset(ev, 0, sizeof *ev);
    if (t == SM_BN_CONSENSUS_TIMEOUT) {
        ev->signal = SM_SIG_CONSENSUS;
        sm_id_copy(ev->id, grp->name);
        ev->ts_ms = grp->last_ms;
        return;
    }
    const sm_gauge *g = gauge_of((sm_swarm *)sw, t);
    if (g == NULL)
        return;
    ev->signal = SM_SIG_RESOURCE;
    sm_id_copy(ev->id, g->source);
    ev->ts_ms = g->last_ms;
}

/* Current impact of a swarm-wide type (of group grp, for consensus) from
 * its latest figures. */
static double type_impact(const sm_swarm *sw, sm_bn_type t,
                          const sm_group *grp)
{
    const sm_detect_config *c = &sw->cfg;
    const sm_swarm_state *st = &sw->st;
    double x;
    switch (t) {
    case SM_BN_TOKEN_EXHAUSTION:
        x = st->gauges[G_TOKEN].value;
        if (x <= c->token_critical)
            return sm_band(0.6, 0.8, (x - c->token_raise) /
                                  (c->token_critical - c->token_raise));
        return sm_band(0.8, 1.0, (x - c->token_critical) /
                              (1.0 - c->token_critical));
    case SM_BN_QUOTA_EXCEEDED: {
        double quota = st->gauges[G_QUOTA].a;
        x = st->gauges[G_QUOTA].value;
        return sm_band(0.8, 1.0, quota > 0 ? (x - quota) / quota : 0.0);
    }
    case SM_BN_QUEUE_BACKLOG: {
        double raise = c->queue_raise, crit = c->queue_critical;
        x = st->gauges[G_QUEUE].value;
        if (x <= crit)
            return sm_band(0.4, 0.8, (x - raise) / (crit - raise));
        return sm_band(0.8, 1.0, (x - crit) / crit);
    }
    case SM_BN_CONSENSUS_TIMEOUT: {
        uint64_t n = sm_ring_sum(&grp->rounds, 0);
        x = n > 0 ? (double)sm_ring_sum(&grp->rounds, 1) / (double)n : 0.0;
        if (x <= c->consensus_high)
            return sm_band(0.4, 0.6, (x - c->consensus_raise) /
                                  (c->consensus_high - c->consensus_raise));
        return sm_band(0.6, 0.8, (x - c->consensus_high) / c->consensus_high);
    }
    case SM_BN_SLOW_AGENT:
        break;
    }
    return 0.0;
}

static void type_metrics(const sm_swarm *sw, sm_bn_type t,
                         const sm_group *grp, bool resolving, uint32_t run,
                         sm_finding *tr)
{
    const sm_detect_config *c = &sw->cfg;
    const sm_swarm_state *st = &sw->st;
    const sm_gauge *g;
    switch (t) {
    case SM_BN_TOKEN_EXHAUSTION: {
        g = &st->gauges[G_TOKEN];
        double thr = resolving ? c->token_clear
                     : g->value > c->token_critical ? c->token_critical
                                                    : c->token_raise;
        sm_finding_metric(tr, "token_usage_ratio", g->value, thr, run);
        sm_finding_metric(tr, "tokens_used", g->a, 0.0, 1);
        sm_finding_metric(tr, "token_budget", g->b, 0.0, 1);
        break;
    }
    case SM_BN_QUOTA_EXCEEDED:
        g = &st->gauges[G_QUOTA];
        sm_finding_metric(tr, "active_agents", g->value,
                  resolving ? g->a * c->quota_clear : g->a, run);
        sm_finding_metric(tr, "agent_quota", g->a, 0.0, 1);
        break;
    case SM_BN_QUEUE_BACKLOG: {
        g = &st->gauges[G_QUEUE];
        double thr = resolving ? c->queue_clear
                     : g->value > c->queue_critical ? c->queue_critical
                                                    : c->queue_raise;
        sm_finding_metric(tr, "pending_tasks", g->value, thr, run);
        break;
    }
    case SM_BN_CONSENSUS_TIMEOUT: {
        uint64_t n = sm_ring_sum(&grp->rounds, 0);
        uint64_t to = sm_ring_sum(&grp->rounds, 1);
        double rate = n > 0 ? (double)to / (double)n : 0.0;
        double thr = resolving ? c->consensus_clear
                     : rate > c->consensus_high ? c->consensus_high
                                                : c->consensus_raise;
        sm_finding_metric(tr, "timeout_rate", rate, thr, (uint32_t)n);
        sm_finding_metric(tr, "rounds", (double)n, c->consensus_min_rounds,
                  (uint32_t)n);
        sm_finding_metric(tr, "timeouts", (double)to, 0.0, (uint32_t)n);
        sm_finding_metric(tr, "timeout_evidence", grp->llr,
                          c->consensus_evidence, (uint32_t)n);
        break;
    }
    case SM_BN_SLOW_AGENT:
        break;
    }
}
/* What swarm-wide type t shows now, for an episode step: `resolving`
 * picks the clear thresholds for the metrics, `run` is the number of
 * samples behind the step (a debounce run, consensus rounds), `reason`
 * NULL means the type's own. */
static void type_finding(const sm_swarm *sw, sm_bn_type t,
                         const sm_group *grp, bool resolving, uint32_t run,
                         const char *reason, sm_finding *f)
{
    memset(f, 0, sizeof *f);
    f->impact = type_impact(sw, t, grp);
    f->reason = reason != NULL ? reason : type_reason(t);
    type_evidence(sw, t, grp, &f->evidence);
    type_metrics(sw, t, grp, resolving, run, f);
}

/* The episode of type t: the swarm's own, or consensus group grp's. */
static sm_episode *episode_of(sm_swarm *sw, sm_bn_type t, sm_group *grp)
{
    return grp != NULL ? &grp->ep : &sw->st.ep[t];
}

static void ep_raise(sm_swarm *sw, sm_bn_type t, sm_group *grp,
                     const char *subject, uint32_t run, sm_decisions *out)
{
    sm_finding f;
    type_finding(sw, t, grp, false, run, NULL, &f);
    sm_episode_raise(sw, t, episode_of(sw, t, grp), subject, &f, out);
}

static void ep_resolve(sm_swarm *sw, sm_bn_type t, sm_group *grp,
                       const char *reason, uint32_t run, sm_decisions *out)
{
    sm_finding f;
    type_finding(sw, t, grp, true, run, reason, &f);
    sm_episode_resolve(sw, t, episode_of(sw, t, grp), &f, out);
}

static void ep_update(sm_swarm *sw, sm_bn_type t, sm_group *grp,
                      sm_decisions *out)
{
    sm_finding f;
    type_finding(sw, t, grp, false, 1, NULL, &f);
    sm_episode_update(sw, t, episode_of(sw, t, grp), &f, out);
}

/* One gauge sample has been stored: advance the debounce runs and decide. */
void sm_detect_gauge(sm_swarm *sw, sm_bn_type t, bool over, bool under,
                        sm_decisions *out)
{
    sm_gauge *g = gauge_of(sw, t);
    uint32_t min = sw->cfg.gauge_min_samples;
    if (over) {
        g->over_run++;
        g->under_run = 0;
    } else if (under) {
        g->under_run++;
        g->over_run = 0;
    } else {
        g->over_run = 0;
        g->under_run = 0;
    }
    if (!sw->st.ep[t].raised) {
        if (g->over_run >= min)
            ep_raise(sw, t, NULL, g->source, g->over_run, out);
        return;
    }
    if (g->under_run >= min) {
        ep_resolve(sw, t, NULL, "cleared", g->under_run, out);
        return;
    }
    /* under the clear line but not yet debounced: no severity churn */
    if (!under)
        ep_update(sw, t, NULL, out);
}

/* Sweep: a gauge with no sample inside the window is stale. */
void sm_detect_gauge_sweep(sm_swarm *sw, sm_bn_type t, sm_decisions *out)
{
    sm_gauge *g = gauge_of(sw, t);
    if (!g->have || g->last_ms >= sm_window_since(sw))
        return;
    g->have = 0;
    g->over_run = 0;
    g->under_run = 0;
    sw->dirty = true;
    if (sw->st.ep[t].raised)
        ep_resolve(sw, t, NULL, "no_data", 0, out);
}

void sm_detect_llr_terms(const sm_detect_config *c, sm_llr_terms *t)
{
    double p0 = 1.0 - c->success_clear, p1 = 1.0 - c->success_raise;
    t->slow_m0 = log(c->slow_ok);
    t->slow_m1 = log(c->slow_high);
    t->slow_mid = sqrt(c->slow_ok * c->slow_high);
    t->fail_ok = log((1.0 - p1) / (1.0 - p0));
    t->fail_bad = log(p1 / p0);
    t->cons_timeout = log(c->consensus_high / c->consensus_clear);
    t->cons_ok = log((1.0 - c->consensus_high) / (1.0 - c->consensus_clear));
}

void sm_detect_consensus_round(sm_swarm *sw, sm_group *g, bool timeout)
{
    const sm_detect_config *c = &sw->cfg;
    if (!timeout && g->llr == 0.0)
        return;
    double llr = timeout ? sw->llr.cons_timeout : sw->llr.cons_ok;
    double x = g->llr + llr, top = c->consensus_evidence * 1.5;
    g->llr = x < 0.0 ? 0.0 : x > top ? top : x;
}

void sm_detect_consensus(sm_swarm *sw, sm_group *g, sm_decisions *out)
{
    const sm_detect_config *c = &sw->cfg;
    const sm_bn_type t = SM_BN_CONSENSUS_TIMEOUT;
    uint64_t n = sm_ring_sum(&g->rounds, 0), to = sm_ring_sum(&g->rounds, 1);
    double rate = n > 0 ? (double)to / (double)n : 0.0;
    if (!g->ep.raised) {
        /* over the raise rate in the window, on evidence gathered round
         * by round: a chance cluster in one window is not a bottleneck */
        if (n >= c->consensus_min_rounds && rate > c->consensus_raise &&
            g->llr > c->consensus_evidence)
            ep_raise(sw, t, g, g->name, (uint32_t)n, out);
        return;
    }
    if (n == 0 || rate < c->consensus_clear) {
        ep_resolve(sw, t, g, n == 0 ? "no_data" : "cleared", (uint32_t)n,
                   out);
        g->llr = 0.0;           /* a new episode needs new evidence */
    } else {
        ep_update(sw, t, g, out);
    }
}

/* -------------------------------------------------------- clock, sweep */
/* The spread (sigma of log durations within a type) the slowness test
 * assumes: the swarm's, once enough ratios stand behind it, floored so a
 * very regular swarm does not turn every small delay into proof (0.5, a
 * typical spread, until the swarm has shown its own). */
static double slow_sigma(const sm_swarm *sw)
{
    const sm_swarm_state *st = &sw->st;
    if (st->median_n < sw->cfg.slow_min_swarm_tasks)
        return 0.5;
    return st->spread < 0.25 ? 0.25 : st->spread;
}

void sm_detect_task_outcome(sm_swarm *sw, uint32_t k, bool ok, double ratio)
{
    const sm_detect_config *c = &sw->cfg;
    sm_agent_state *s = &sw->ag.v[k].s;
    if (ok && ratio > 0 && (s->slow_llr > 0.0 || ratio > sw->llr.slow_mid)) {
        /* slow (slow_high) vs tolerable (slow_ok), task by task */
        double y = s->slow_llr + slow_task_llr(sw, slow_sigma(sw), ratio,
                                               false);
        double top = c->slow_evidence * 1.5;
        s->slow_llr = y < 0.0 ? 0.0 : y > top ? top : y;
    }
    /* one task's log likelihood ratio, failing vs healthy; the statistic
     * never goes below 0 nor far above the raise line, so it falls back
     * under the clear line within a few healthy tasks */
    if (ok && s->fail_llr == 0.0)
        return;                 /* the common case: nothing to undo */
    double x = s->fail_llr + (ok ? sw->llr.fail_ok : sw->llr.fail_bad);
    double cap = c->success_evidence + 1.0;
    s->fail_llr = x < 0.0 ? 0.0 : x > cap ? cap : x;
}

void sm_detect_agent_gone(sm_swarm *sw, uint32_t k, const sm_evidence *ev,
                          sm_decisions *out)
{
    const sm_agent *a = &sw->ag.v[k];
    if (!a->s.raised)
        return;
    agent_view v;
    agent_measure(sw, a, &v);
    agent_resolve(sw, k, &v, "no_data", ev, out);
}
