/*
 * failures.c - failure detection (failures.h; the rules are in
 * thresholds.h).
 *
 * Design choices a reader should know:
 *  - An agent is watched for agent_down only once it has sent a heartbeat
 *    since it (re)registered: an agent that never beats is never "down",
 *    and a restarted one is watched again from its first beat.
 *  - A heartbeat older than the agent's latest heartbeat or event is
 *    ignored here (it says nothing about now); late task events still
 *    count as activity.
 *  - The heartbeat interval is an exponentially weighted mean (1/8) of the
 *    gaps under 1.5x the current estimate, with the mean absolute
 *    deviation beside it; both are doubles rounded to whole ms when
 *    stored, so a replay and a restored state compute the same deadline.
 *  - Stuck needs both: no task of the agent started or ended for long
 *    (its type's median times stuck_factor) and a progress counter frozen
 *    for stuck_stall_ms. One long task that progresses is not stuck; a
 *    tool call that pauses progress for tens of seconds is not stuck.
 */
#include "failures.h"

#include <string.h>

#include "baseline.h"
#include "detectors.h"
#include "predict.h"

#define GAP_LEARN 1.5           /* a longer gap is a missed beat */

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* Appends a failure decision taken now; NULL when out is NULL or full.
 * Call sm_decision_mint() once the metrics are in. */
static sm_decision *fail_decision(const sm_swarm *sw, sm_decisions *out,
                                  sm_fail_type type, sm_transition_kind tr,
                                  const char *subject, int64_t raised_at_ms,
                                  sm_severity severity, const char *reason,
                                  sm_signal signal, const char *signal_id,
                                  int64_t signal_ts)
{
    sm_decision *d = sm_decisions_push(out);
    if (d == NULL)
        return NULL;
    d->kind = SM_DEC_FAILURE;
    d->at_ms = sw->st.now_ms;
    sm_id_copy(d->swarm, sw->st.id);
    sm_id_copy(d->subject, subject);
    d->evidence.signal = signal;
    sm_id_copy(d->evidence.id, signal_id);
    d->evidence.ts_ms = signal_ts;
    d->evidence.window_start_ms = sw->st.now_ms - sw->cfg.window_ms;
    d->evidence.window_end_ms = sw->st.now_ms;
    d->fail.type = type;
    d->fail.transition = tr;
    d->fail.severity = severity;
    d->fail.raised_at_ms = raised_at_ms;
    d->fail.reason = reason;
    return d;
}

static void emit(sm_swarm *sw, sm_decision *d)
{
    if (d != NULL)
        sm_decision_mint(&sw->mint, d);
}

/* ------------------------------------------------------- agent failures */

static sm_severity agent_severity(uint32_t bit)
{
    return bit == FAIL_DOWN ? SM_SEV_HIGH
           : bit == FAIL_STUCK ? SM_SEV_MEDIUM : SM_SEV_LOW;
}

static sm_fail_type agent_type(uint32_t bit)
{
    return bit == FAIL_DOWN ? SM_FAIL_AGENT_DOWN
           : bit == FAIL_STUCK ? SM_FAIL_AGENT_STUCK : SM_FAIL_TASK_TIMEOUT;
}

static int64_t *raised_at(sm_agent_state *s, uint32_t bit)
{
    return bit == FAIL_DOWN ? &s->down_at_ms
           : bit == FAIL_STUCK ? &s->stuck_at_ms : &s->timeout_at_ms;
}

/* Raises failure `bit` of agent k; returns the decision for metrics. */
static sm_decision *agent_raise(sm_swarm *sw, uint32_t k, uint32_t bit,
                                const char *reason, sm_signal sig,
                                int64_t sig_ts, sm_decisions *out)
{
    sm_agent_state *s = &sw->ag.v[k].s;
    s->fail = (uint8_t)(s->fail | bit);
    *raised_at(s, bit) = sw->st.now_ms;
    sm_agents_mark(&sw->ag, k);
    sm_pred_happened(sw, SM_DEC_FAILURE, (int)agent_type(bit), s->id, out);
    return fail_decision(sw, out, agent_type(bit), SM_TR_RAISED, s->id,
                         sw->st.now_ms, agent_severity(bit), reason, sig,
                         s->id, sig_ts);
}

/* Resolves failure `bit` of agent k if it is raised. */
static void agent_resolve(sm_swarm *sw, uint32_t k, uint32_t bit,
                          const char *reason, sm_signal sig, int64_t sig_ts,
                          sm_decisions *out)
{
    sm_agent_state *s = &sw->ag.v[k].s;
    if (!(s->fail & bit))
        return;
    s->fail = (uint8_t)(s->fail & ~bit);
    sm_agents_mark(&sw->ag, k);
    emit(sw, fail_decision(sw, out, agent_type(bit), SM_TR_RESOLVED, s->id,
                       *raised_at(s, bit), agent_severity(bit), reason, sig,
                       s->id, sig_ts));
    *raised_at(s, bit) = 0;
}

static bool watched(const sm_agent_state *s)
{
    return (s->fail & FAIL_WATCH) && !(s->fail & FAIL_STOPPING) &&
           !(s->flags & AGENT_UNREGISTERED);
}

/* The agent's heartbeat interval: learned, or the configured one. */
static double interval_of(const sm_swarm *sw, const sm_agent_state *s)
{
    return s->hb_gaps >= 2 ? (double)s->hb_interval_ms
                           : (double)sw->cfg.heartbeat_ms;
}

/* Silence after the latest heartbeat that makes the agent down. */
static int64_t down_after(const sm_swarm *sw, const sm_agent_state *s)
{
    double slack = s->hb_gaps >= 2 ? 4.0 * s->hb_dev_ms : 0.0;
    if (slack < (double)sw->cfg.down_slack_ms)
        slack = (double)sw->cfg.down_slack_ms;
    return (int64_t)(sw->cfg.down_intervals * interval_of(sw, s) + slack);
}

/* Time with no task event before the agent may be stuck. */
static int64_t stuck_age(const sm_swarm *sw, const sm_agent_state *s)
{
    double med = s->task_type < SM_TASK_TYPES
                     ? sm_baselines_median(&sw->st.types, s->task_type,
                                           sw->cfg.slow_min_type_tasks)
                     : 0.0;
    double age = sw->cfg.stuck_factor * med;
    if (age < (double)sw->cfg.stuck_min_ms)
        age = (double)sw->cfg.stuck_min_ms;
    if (!(s->fail & FAIL_PROGRESS))
        age *= sw->cfg.stuck_blind_factor;
    return (int64_t)age;
}

/* When the agent counts as stuck if nothing changes, or SM_WAKE_NEVER. */
static int64_t stuck_time(const sm_swarm *sw, const sm_agent_state *s)
{
    if (s->inflight == 0 || !watched(s) || (s->fail & (FAIL_DOWN | FAIL_STUCK)))
        return SM_WAKE_NEVER;
    return max64(s->act_ms + stuck_age(sw, s),
                 max64(s->prog_ms, s->act_ms) + sw->cfg.stuck_stall_ms);
}

/* Looks at agent k now: raises what is due, resolves a quiet task
 * timeout, and sets the agent's next wake time. */
static void agent_check(sm_swarm *sw, uint32_t k, sm_decisions *out)
{
    sm_agent_state *s = &sw->ag.v[k].s;
    int64_t now = sw->st.now_ms, wake = SM_WAKE_NEVER;
    if (watched(s) && !(s->fail & FAIL_DOWN)) {
        int64_t after = down_after(sw, s);
        if (now - s->hb_last_ms >= after) {
            sm_decision *d = agent_raise(sw, k, FAIL_DOWN, "heartbeats_stopped",
                                         SM_SIG_HEARTBEAT, s->hb_last_ms, out);
            if (d != NULL) {
                sm_decision_metric(d, "silence_ms", (double)(now - s->hb_last_ms),
                                   (double)after, s->hb_gaps);
                sm_decision_metric(d, "heartbeat_interval_ms",
                                   interval_of(sw, s), 0, s->hb_gaps);
            }
            emit(sw, d);
            /* a dead agent is not a slow one: its slow-agent episode ends
             * here, on the same evidence, instead of going stale */
            sm_evidence gone = {.signal = SM_SIG_HEARTBEAT,
                                .ts_ms = s->hb_last_ms};
            sm_id_copy(gone.id, s->id);
            sm_detect_agent_gone(sw, k, &gone, out);
            sm_pred_agent_failed(sw, k, SM_FAIL_AGENT_DOWN, out);
        } else {
            wake = s->hb_last_ms + after;
        }
    }
    if (s->fail & FAIL_DOWN) {
        int64_t gone = s->hb_last_ms + sw->cfg.down_forget_ms;
        if (now >= gone) {
            agent_resolve(sw, k, FAIL_DOWN, "gone", SM_SIG_HEARTBEAT,
                          s->hb_last_ms, out);
            s->fail = (uint8_t)(s->fail & ~FAIL_WATCH);
        } else {
            wake = gone;
        }
    }
    int64_t t = stuck_time(sw, s);
    if (t != SM_WAKE_NEVER && now >= t) {
        sm_decision *d = agent_raise(sw, k, FAIL_STUCK, "no_progress",
                                     SM_SIG_HEARTBEAT, s->hb_last_ms, out);
        if (d != NULL) {
            sm_decision_metric(d, "no_progress_ms",
                               (double)(now - max64(s->prog_ms, s->act_ms)),
                               (double)sw->cfg.stuck_stall_ms, 0);
            sm_decision_metric(d, "no_task_event_ms", (double)(now - s->act_ms),
                               (double)stuck_age(sw, s), 0);
        }
        emit(sw, d);
    } else {
        wake = min64(wake, t);
    }
    if (s->fail & FAIL_TIMEOUT) {
        int64_t quiet = s->timeout_last_ms + sw->cfg.window_ms;
        if (now >= quiet)
            agent_resolve(sw, k, FAIL_TIMEOUT, "quiet", SM_SIG_TASK,
                          s->timeout_last_ms, out);
        else
            wake = min64(wake, quiet);
    }
    wake = min64(wake, sm_pred_agent_check(sw, k, out));
    sm_agents_wake(&sw->ag, k, wake);
}

bool sm_fail_agent_raised(const sm_agent *a)
{
    return (a->s.fail & (FAIL_DOWN | FAIL_STUCK | FAIL_TIMEOUT)) != 0;
}

void sm_fail_rewake(sm_swarm *sw, uint32_t k)
{
    sm_agent_state *s = &sw->ag.v[k].s;
    int64_t wake = SM_WAKE_NEVER;
    if (watched(s) && !(s->fail & FAIL_DOWN))
        wake = s->hb_last_ms + down_after(sw, s);
    if (s->fail & FAIL_DOWN)
        wake = s->hb_last_ms + sw->cfg.down_forget_ms;
    wake = min64(wake, stuck_time(sw, s));
    if (s->fail & FAIL_TIMEOUT)
        wake = min64(wake, s->timeout_last_ms + sw->cfg.window_ms);
    if (s->pred_raised)
        wake = min64(wake, s->pred_eta_ms + sw->cfg.pred_margin_ms);
    sm_agents_wake(&sw->ag, k, wake);
}

void sm_fail_sweep(sm_swarm *sw, sm_decisions *out)
{
    int64_t now = sw->st.now_ms;
    const int64_t *wake = sw->ag.wake;
    for (uint32_t k = 0; k < sw->ag.n; k++)     /* index order: deterministic */
        if (wake[k] <= now)
            agent_check(sw, k, out);
}

/* Learns the heartbeat interval from a gap (ms) between two beats. */
static void learn_gap(sm_agent_state *s, int64_t gap)
{
    if (gap <= 0 || gap > (int64_t)UINT32_MAX)
        return;
    double g = (double)gap, iv = s->hb_interval_ms, dev = s->hb_dev_ms;
    if (s->hb_gaps == 0) {
        iv = g;
        dev = 0;
    } else if (g < GAP_LEARN * iv) {
        double w = s->hb_gaps == 1 ? 0.5 : 0.125;
        iv += (g - iv) * w;
        double e = g > iv ? g - iv : iv - g;
        dev += (e - dev) * w;
    } else {
        return;                 /* a missed beat */
    }
    s->hb_interval_ms = (uint32_t)(iv + 0.5);
    s->hb_dev_ms = (uint32_t)(dev + 0.5);
    if (s->hb_gaps < 255)
        s->hb_gaps++;
}

/* After an event of agent k. Its deadlines only move later while its
 * failure state stays as it was (a beat, a task event), so a wake-up
 * already set still comes first and the sweep's look then recomputes it:
 * the full look runs only when the state changed or none is set (most
 * events cost no look at all). */
static void look_again(sm_swarm *sw, uint32_t k, uint8_t before,
                       sm_decisions *out)
{
    if (sw->ag.v[k].s.fail != before || sw->ag.wake[k] == SM_WAKE_NEVER)
        agent_check(sw, k, out);
}

void sm_fail_on_heartbeat(sm_swarm *sw, uint32_t k, const sm_heartbeat *ev,
                          sm_decisions *out)
{
    sm_agent_state *s = &sw->ag.v[k].s;
    uint8_t before = s->fail;
    if (ev->ts_ms < s->last_seen_ms ||
        ((s->fail & FAIL_WATCH) && ev->ts_ms <= s->hb_last_ms))
        return;                 /* late: says nothing about now */
    if (s->fail & FAIL_WATCH) {
        learn_gap(s, ev->ts_ms - s->hb_last_ms);
    } else {
        /* watched from now: what it did before is not known to be stuck */
        s->act_ms = max64(s->act_ms, ev->ts_ms);
        s->prog_ms = max64(s->prog_ms, ev->ts_ms);
    }
    s->hb_last_ms = ev->ts_ms;
    uint32_t f = s->fail | FAIL_WATCH;
    f = ev->state == 4 ? (f | FAIL_STOPPING) : (f & ~FAIL_STOPPING);
    if (ev->progress != s->progress) {
        if (ev->progress > 0)
            f |= FAIL_PROGRESS;
        s->progress = ev->progress;
        s->prog_ms = ev->ts_ms;
    }
    s->fail = (uint8_t)f;
    s->inflight = (uint8_t)(ev->inflight > 255 ? 255 : ev->inflight);
    if (s->prog_ms == ev->ts_ms)
        agent_resolve(sw, k, FAIL_STUCK, "progress", SM_SIG_HEARTBEAT,
                      ev->ts_ms, out);
    else if (s->inflight == 0)
        agent_resolve(sw, k, FAIL_STUCK, "idle", SM_SIG_HEARTBEAT, ev->ts_ms,
                      out);
    agent_resolve(sw, k, FAIL_DOWN, "heartbeat_back", SM_SIG_HEARTBEAT,
                  ev->ts_ms, out);
    sm_pred_on_heartbeat(sw, k, ev, out);
    look_again(sw, k, before, out);
}

void sm_fail_on_task(sm_swarm *sw, uint32_t k, const sm_task_event *ev,
                     sm_decisions *out)
{
    sm_agent_state *s = &sw->ag.v[k].s;
    if (ev->kind == SM_TASK_QUEUED)
        return;
    uint8_t before = s->fail;
    s->act_ms = max64(s->act_ms, ev->ts_ms);
    if (ev->kind == SM_TASK_STARTED) {
        s->task_type = (uint8_t)sm_baselines_slot(&sw->st.types, ev->task_type);
        if (s->inflight == 0)
            s->inflight = 1;    /* until its next heartbeat says */
    } else if (s->fail & (FAIL_STUCK | FAIL_TIMEOUT)) {
        agent_resolve(sw, k, FAIL_STUCK, "task_ended", SM_SIG_TASK, ev->ts_ms,
                      out);
        if (ev->kind == SM_TASK_COMPLETED)
            agent_resolve(sw, k, FAIL_TIMEOUT, "recovered", SM_SIG_TASK,
                          ev->ts_ms, out);
    }
    if (ev->kind == SM_TASK_TIMED_OUT) {
        s->timeout_last_ms = max64(s->timeout_last_ms, ev->ts_ms);
        if (!(s->fail & FAIL_TIMEOUT)) {
            sm_decision *d = agent_raise(sw, k, FAIL_TIMEOUT, "timed_out",
                                         SM_SIG_TASK, ev->ts_ms, out);
            if (d != NULL) {
                sm_decision_metric(d, "duration_ms", ev->duration_ms, 0, 1);
                sm_id_copy(d->fail.task, ev->task_id);
            }
            emit(sw, d);
        }
    }
    look_again(sw, k, before, out);
}

void sm_fail_on_lifecycle(sm_swarm *sw, uint32_t k,
                          const sm_agent_lifecycle *ev, sm_decisions *out)
{
    sm_agent_state *s = &sw->ag.v[k].s;
    const char *why = ev->registered ? "registered" : "unregistered";
    if (!ev->registered || (s->fail & FAIL_DOWN))
        sm_pred_agent_gone(sw, k, why, out);
    agent_resolve(sw, k, FAIL_DOWN, why, SM_SIG_AGENT, ev->ts_ms, out);
    agent_resolve(sw, k, FAIL_STUCK, why, SM_SIG_AGENT, ev->ts_ms, out);
    if (!ev->registered)
        agent_resolve(sw, k, FAIL_TIMEOUT, why, SM_SIG_AGENT, ev->ts_ms, out);
    /* watched again from its next heartbeat */
    s->fail = (uint8_t)(s->fail & ~(FAIL_WATCH | FAIL_STOPPING));
    s->inflight = 0;
    agent_check(sw, k, out);
}

/* ------------------------------------------------------ swarm failures */

static const sm_fail_type swarm_type[F_COUNT] = {
    [F_TOKEN] = SM_FAIL_TOKEN_EXHAUSTION,
    [F_MEMORY] = SM_FAIL_MEMORY_EXHAUSTION,
    [F_QUEUE] = SM_FAIL_QUEUE_OVERFLOW,
};

static const char *const swarm_reason[F_COUNT] = {
    [F_TOKEN] = "budget_spent",
    [F_MEMORY] = "memory_limit",
    [F_QUEUE] = "pending_critical",
};

static const char *const swarm_metric[F_COUNT] = {
    [F_TOKEN] = "token_usage_ratio",
    [F_MEMORY] = "memory_usage_ratio",
    [F_QUEUE] = "pending_tasks",
};

/* Steps swarm-wide failure f on a sample whose figure is `value`: over
 * the failure line (`over`), under its clear line (`under`). */
static void swarm_step(sm_swarm *sw, int f, const sm_resource_sample *ev,
                       double value, double line, bool over, bool under,
                       uint32_t need, sm_decisions *out)
{
    sm_episode *e = &sw->st.fail[f];
    sw->st.fail_run[f] = over ? sw->st.fail_run[f] + 1 : 0;
    if (!e->raised && sw->st.fail_run[f] >= need) {
        e->raised = 1;
        e->raised_at_ms = sw->st.now_ms;
        e->severity = SM_SEV_CRITICAL;
        sm_id_copy(e->subject, ev->source);
        sw->dirty = true;
        sm_decision *d = fail_decision(sw, out, swarm_type[f], SM_TR_RAISED,
                                       e->subject, e->raised_at_ms,
                                       SM_SEV_CRITICAL, swarm_reason[f],
                                       SM_SIG_RESOURCE, ev->source, ev->ts_ms);
        if (d != NULL)
            sm_decision_metric(d, swarm_metric[f], value, line, 1);
        emit(sw, d);
        sm_pred_swarm_failed(sw, f, out);
        sm_pred_happened(sw, SM_DEC_FAILURE, (int)swarm_type[f], e->subject,
                         out);
    } else if (e->raised && under) {
        e->raised = 0;
        sw->dirty = true;
        sm_decision *d = fail_decision(sw, out, swarm_type[f], SM_TR_RESOLVED,
                                       e->subject, e->raised_at_ms,
                                       SM_SEV_CRITICAL, "recovered",
                                       SM_SIG_RESOURCE, ev->source, ev->ts_ms);
        if (d != NULL)
            sm_decision_metric(d, swarm_metric[f], value, line, 1);
        emit(sw, d);
    }
}

void sm_fail_on_resource(sm_swarm *sw, const sm_resource_sample *ev,
                         sm_decisions *out)
{
    const sm_detect_config *c = &sw->cfg;
    if (ev->token_budget > 0) {
        sm_pred_sample(sw, F_TOKEN, ev->source, ev->ts_ms,
                       (double)ev->tokens_used,
                       c->token_fail * (double)ev->token_budget, out);
        double r = (double)ev->tokens_used / (double)ev->token_budget;
        swarm_step(sw, F_TOKEN, ev, r, c->token_fail, r >= c->token_fail,
                   r < c->token_fail_clear, 1, out);
    }
    if (ev->memory_limit > 0) {
        sm_pred_sample(sw, F_MEMORY, ev->source, ev->ts_ms,
                       (double)ev->memory_used,
                       c->memory_fail * (double)ev->memory_limit, out);
        double r = (double)ev->memory_used / (double)ev->memory_limit;
        swarm_step(sw, F_MEMORY, ev, r, c->memory_fail, r >= c->memory_fail,
                   r < c->memory_fail_clear, 1, out);
    }
    if (ev->has_pending) {
        uint64_t p = 0;
        for (int i = 0; i < SM_PRIO_COUNT; i++)
            p += ev->pending[i];
        sm_pred_sample(sw, F_QUEUE, ev->source, ev->ts_ms, (double)p,
                       (double)c->queue_fail, out);
        swarm_step(sw, F_QUEUE, ev, (double)p, c->queue_fail,
                   p > c->queue_fail, p < c->queue_fail_clear,
                   c->gauge_min_samples, out);
    }
}

void sm_fail_on_round(sm_swarm *sw, sm_group *g, const sm_consensus_round *ev,
                      sm_decisions *out)
{
    if (ev->quorum == 0)
        return;                 /* the round names no quorum */
    bool below = ev->participants < ev->quorum;
    g->q_below = below ? g->q_below + 1 : 0;
    g->q_above = below ? 0 : g->q_above + 1;
    sm_episode *e = &g->qep;
    uint32_t need = sw->cfg.quorum_rounds;
    if (!e->raised && g->q_below >= need) {
        e->raised = 1;
        e->raised_at_ms = sw->st.now_ms;
        e->severity = SM_SEV_CRITICAL;
        sm_id_copy(e->subject, g->name);
        sm_pred_happened(sw, SM_DEC_FAILURE, SM_FAIL_QUORUM_LOSS, g->name, out);
    } else if (e->raised && g->q_above >= need) {
        e->raised = 0;
    } else {
        return;
    }
    sw->dirty = true;
    sm_decision *d = fail_decision(
        sw, out, SM_FAIL_QUORUM_LOSS, e->raised ? SM_TR_RAISED : SM_TR_RESOLVED,
        g->name, e->raised_at_ms, SM_SEV_CRITICAL,
        e->raised ? "below_quorum" : "quorum_back", SM_SIG_CONSENSUS, g->name,
        ev->ts_ms);
    if (d != NULL) {
        sm_decision_metric(d, "participants", ev->participants, ev->quorum, 1);
        sm_decision_metric(d, "rounds", below ? g->q_below : g->q_above, need,
                           below ? g->q_below : g->q_above);
    }
    emit(sw, d);
}
