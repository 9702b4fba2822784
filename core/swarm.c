/*
 * swarm.c - one swarm: its clock, the dispatch of events to the
 * detectors, the tick sweep, queries and agent expiry.
 *
 * Design choices a reader should know:
 *  - Late events (ts older than the swarm clock) never move the clock back.
 *    Inside the window they count (ring slot of their ts; task samples keep
 *    their ts); older than the window they only refresh last-seen. A gauge
 *    sample older than the gauge's latest one is ignored.
 *  - A task sample is in the window while ts > now - window_ms.
 *  - Event timestamps outside [0, year 9999] are rejected (SM_ERR_INVALID)
 *    so that window arithmetic can never overflow; sm_swarm_advance()
 *    ignores such a time.
 *  - Lifecycle "unregistered" keeps the record (marked unregistered, task
 *    samples and evidence dropped so a re-registered agent starts clean)
 *    and resolves a raised slow-agent episode with reason "no_data";
 *    sm_swarm_expire() removes the record later. A registration of an
 *    agent that is down (a restart) drops them too. Unregistering an unknown agent only moves
 *    the clock.
 */
#include "swarm.h"

#include <stdlib.h>
#include <string.h>

#include "detectors.h"
#include "failures.h"
#include "heal.h"
#include "predict.h"
#include "swarm_int.h"

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b) != 0 && a < 0)
        q--;
    return q;
}

/* -------------------------------------------------------- clock, sweep */

static void sweep(sm_swarm *sw, sm_decisions *out)
{
    sm_detect_gauge_sweep(sw, SM_BN_TOKEN_EXHAUSTION, out);
    sm_detect_gauge_sweep(sw, SM_BN_QUOTA_EXCEEDED, out);
    if (sw->st.stats_dirty || sw->st.median_n > 0)
        sm_detect_stats_recompute(sw);
    uint32_t k = sw->ag.raised_head;
    while (k != SM_AGENT_NONE) {
        uint32_t next = sw->ag.v[k].next;
        sm_detect_agent(sw, k, out);
        k = next;
    }
    sm_detect_gauge_sweep(sw, SM_BN_QUEUE_BACKLOG, out);
    for (int i = 0; i < SM_GROUPS; i++)     /* slot order: deterministic */
        if (sw->st.groups[i].used)
            sm_detect_consensus(sw, &sw->st.groups[i], out);
    sm_fail_sweep(sw, out);
    sm_pred_sweep(sw, out);
}

/* The slot of consensus group `name`: its own, a free one, or the one
 * heard from least recently that has nothing raised (its window is
 * forgotten). NULL when every slot holds a raised group. */
static sm_group *group_slot(sm_swarm *sw, const char *name)
{
    sm_group *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < SM_GROUPS; i++) {
        sm_group *g = &sw->st.groups[i];
        if (!g->used) {
            if (free_slot == NULL)
                free_slot = g;
            continue;
        }
        if (strncmp(g->name, name, SM_ID_MAX) == 0)
            return g;
        if (!g->ep.raised && !g->qep.raised &&
            (oldest == NULL || g->last_ms < oldest->last_ms))
            oldest = g;
    }
    sm_group *g = free_slot != NULL ? free_slot : oldest;
    if (g == NULL)
        return NULL;
    memset(g, 0, sizeof *g);
    g->used = 1;
    sm_id_copy(g->name, name);
    sm_ring_init(&g->rounds, sw->cfg.window_ms, sw->cfg.tick_ms);
    /* the clock moves the rings of the groups it knows; a new one starts
     * at the swarm's now */
    sm_ring_advance(&g->rounds, sw->st.now_ms);
    return g;
}

/* Moves the clock to max(now, ts), evicts, and sweeps on a new tick. */
static void clock_advance(sm_swarm *sw, int64_t ts, sm_decisions *out)
{
    sm_swarm_state *st = &sw->st;
    if (st->started && ts <= st->now_ms)
        return;
    st->now_ms = ts;
    sw->dirty = true;
    for (int i = 0; i < SM_GROUPS; i++)
        if (st->groups[i].used)
            sm_ring_advance(&st->groups[i].rounds, ts);
    int64_t tick = floor_div(ts, sw->cfg.tick_ms);
    if (!st->started) {
        st->started = 1;
        st->tick = tick;
        st->stats_tick = tick;
        return;
    }
    if (tick > st->tick) {
        st->tick = tick;
        sweep(sw, out);
    }
}

/* An event of the swarm's own at ts (not a bus tick). */
static void note_event(sm_swarm *sw, int64_t ts)
{
    if (ts > sw->st.last_event_ms) {
        sw->st.last_event_ms = ts;
        sw->dirty = true;
    }
}

/* ------------------------------------------------------ create/destroy */

sm_status sm_swarm_create(sm_swarm **out, const char *id,
                          const sm_detect_config *cfg)
{
    if (out == NULL || sm_id_len(id) < 1 || cfg == NULL)
        return SM_ERR_INVALID;
    if (sm_detect_config_validate(cfg, NULL) != SM_OK)
        return SM_ERR_CONFIG;
    sm_swarm *sw = calloc(1, sizeof *sw); /* SM_ALLOC_OK */
    if (sw == NULL)
        return SM_ERR_NOMEM;
    if (sm_agents_init(&sw->ag) != SM_OK) {
        sm_swarm_destroy(sw);
        return SM_ERR_NOMEM;
    }
    sw->expire_retention_ms = -1;
    sw->cfg = *cfg;
    sm_detect_llr_terms(cfg, &sw->llr);
    static const sm_fc_source fc_src[F_COUNT] = {
        [F_TOKEN] = SM_FC_TOKENS, [F_MEMORY] = SM_FC_MEMORY,
        [F_QUEUE] = SM_FC_QUEUE,
    };
    for (int f = 0; f < F_COUNT; f++) {
        (void)sm_fc_defaults(fc_src[f], &sw->trend_cfg[f], &sw->fc_cfg[f]);
        sw->fc_cfg[f].publish_min = cfg->pred_threshold;
        sm_trend_init(&sw->st.trend[f]);
        sm_forecast_init(&sw->st.fc[f]);
    }
    (void)sm_pattern_init(&sw->st.pat, NULL);
    sm_id_copy(sw->st.id, id);
    for (int i = 0; i < SM_GROUPS; i++)
        sm_ring_init(&sw->st.groups[i].rounds, cfg->window_ms, cfg->tick_ms);
    sm_samples_init(&sw->st.dur_hdr, SM_SWARM_SAMPLES);
    sm_baselines_init(&sw->st.types);
    sw->dirty = true;
    *out = sw;
    return SM_OK;
}

void sm_swarm_destroy(sm_swarm *sw)
{
    if (sw == NULL)
        return;
    sm_agents_free(&sw->ag);
    free(sw);
}

const char *sm_swarm_id(const sm_swarm *sw)
{
    return sw == NULL ? "" : sw->st.id;
}

int64_t sm_swarm_now(const sm_swarm *sw)
{
    return sw == NULL ? 0 : sw->st.now_ms;
}

size_t sm_swarm_agent_count(const sm_swarm *sw)
{
    return sw == NULL ? 0 : sw->ag.n;
}

bool sm_swarm_has_agent(const sm_swarm *sw, const char *agent)
{
    return sw != NULL && sm_id_len(agent) > 0 &&
           sm_agents_find(&sw->ag, agent) != NULL;
}

void sm_swarm_prefetch_agent(const sm_swarm *sw, const char *agent, int stage)
{
    /* a small table stays in cache: the hint would only cost */
    if (sw == NULL || sw->ag.n < SM_PREFETCH_MIN_AGENTS || sm_id_len(agent) < 1)
        return;
    if (stage == 0)
        sm_agents_prefetch_slot(&sw->ag, agent);
    else
        sm_agents_prefetch_record(&sw->ag, agent);
}

int64_t sm_swarm_last_event(const sm_swarm *sw)
{
    return sw == NULL ? 0 : sw->st.last_event_ms;
}

bool sm_swarm_any_raised(const sm_swarm *sw)
{
    if (sw == NULL)
        return false;
    const sm_swarm_state *st = &sw->st;
    for (int t = 0; t <= SM_BN_COUNT; t++)
        if (st->ep[t].raised)
            return true;
    for (int i = 0; i < SM_GROUPS; i++)
        if (st->groups[i].used &&
            (st->groups[i].ep.raised || st->groups[i].qep.raised))
            return true;
    for (int f = 0; f < F_COUNT; f++)
        if (st->fail[f].raised || st->pred[f].raised)
            return true;
    for (uint32_t k = 0; k < sw->ag.n; k++) {
        const sm_agent *a = &sw->ag.v[k];
        if (a->s.raised || a->s.pred_raised || sm_fail_agent_raised(a))
            return true;
    }
    return false;
}

/* ------------------------------------------------------------- events */

static sm_status on_task(sm_swarm *sw, const sm_task_event *ev,
                           sm_decisions *out)
{
    if (sw == NULL || ev == NULL || !sm_ts_ok(ev->ts_ms))
        return SM_ERR_INVALID;
    if (ev->kind < SM_TASK_QUEUED || ev->kind > SM_TASK_CANCELLED)
        return SM_ERR_INVALID;
    if ((unsigned)ev->priority > SM_PRIO_BACKGROUND)
        return SM_ERR_INVALID;
    int len = sm_id_len(ev->agent);
    if (len < 0 || (len == 0 && ev->kind != SM_TASK_QUEUED))
        return SM_ERR_INVALID;

    uint32_t k = SM_AGENT_NONE;
    if (len > 0) {
        sm_status rc = sm_agents_get(&sw->ag, ev->agent, &k);
        if (rc != SM_OK)
            return rc;
    }
    clock_advance(sw, ev->ts_ms, out);
    note_event(sw, ev->ts_ms);
    if (k == SM_AGENT_NONE)
        return SM_OK;

    sm_agent *a = &sw->ag.v[k];
    if (ev->ts_ms > a->s.last_seen_ms || a->s.last_seen_ms == 0)
        a->s.last_seen_ms = ev->ts_ms;
    sm_agents_mark(&sw->ag, k);
    sm_fail_on_task(sw, k, ev, out);
    sm_heal_on_task(sw, ev);
    bool finished = ev->kind == SM_TASK_COMPLETED ||
                    ev->kind == SM_TASK_FAILED ||
                    ev->kind == SM_TASK_TIMED_OUT;
    if (!finished || ev->ts_ms < sm_horizon_since(sw))
        return SM_OK;

    /* a completed duration is judged against its own type's baseline */
    bool ok = ev->kind == SM_TASK_COMPLETED;
    sm_baselines *types = &sw->st.types;
    uint32_t slot = sm_baselines_slot(types, ev->task_type);
    double base = ok ? sm_baselines_median(types, slot,
                                           sw->cfg.slow_min_type_tasks)
                     : 0.0;
    sm_sample s = {ev->ts_ms, ev->duration_ms,
                   TASK_DONE | (ok ? TASK_OK : 0u)};
    if (base > 0) {
        double r = (double)ev->duration_ms * 1000.0 / base + 0.5;
        s.value = r < (double)UINT32_MAX ? (uint32_t)r : UINT32_MAX;
        s.flags |= TASK_RATIO;
    }
    sm_samples_push(&a->s.tasks_hdr, a->s.tasks, s);
    sm_detect_task_outcome(sw, k, ok, (s.flags & TASK_RATIO) ? s.value / 1000.0
                                                             : 0.0);
    if (ok) {
        if (!a->s.raised) {     /* the healthy majority sets the baseline */
            sm_baselines_push(types, slot, ev->ts_ms, ev->duration_ms);
            sm_baselines_refresh_slot(types, slot, sm_horizon_since(sw),
                                      sw->cfg.slow_min_type_tasks,
                                      sw->scratch);
        }
        if (s.flags & TASK_RATIO) {
            sm_sample r = {ev->ts_ms, s.value, TASK_OK};
            sm_samples_push(&sw->st.dur_hdr, sw->st.dur, r);
            sw->st.new_samples++;
        }
        sw->st.stats_dirty = 1;
        sw->dirty = true;
        sm_detect_stats_maybe(sw);
    }
    sm_detect_agent(sw, k, out);
    return SM_OK;
}

static sm_status on_heartbeat(sm_swarm *sw, const sm_heartbeat *ev,
                                sm_decisions *out)
{
    if (sw == NULL || ev == NULL || !sm_ts_ok(ev->ts_ms) ||
        sm_id_len(ev->agent) < 1 || ev->state > 4)
        return SM_ERR_INVALID;
    uint32_t k;
    sm_status rc = sm_agents_get(&sw->ag, ev->agent, &k);
    if (rc != SM_OK)
        return rc;
    clock_advance(sw, ev->ts_ms, out);
    note_event(sw, ev->ts_ms);
    sm_agent *a = &sw->ag.v[k];
    if (ev->ts_ms > a->s.last_seen_ms || a->s.last_seen_ms == 0)
        a->s.last_seen_ms = ev->ts_ms;
    sm_agents_mark(&sw->ag, k);
    sm_fail_on_heartbeat(sw, k, ev, out);
    return SM_OK;
}

static sm_status on_resource(sm_swarm *sw, const sm_resource_sample *ev,
                               sm_decisions *out)
{
    if (sw == NULL || ev == NULL || !sm_ts_ok(ev->ts_ms) ||
        sm_id_len(ev->source) < 0)
        return SM_ERR_INVALID;
    const sm_detect_config *c = &sw->cfg;
    clock_advance(sw, ev->ts_ms, out);
    note_event(sw, ev->ts_ms);

    sm_gauge *g = &sw->st.gauges[G_TOKEN];
    if (ev->token_budget > 0 && (!g->have || ev->ts_ms >= g->last_ms)) {
        g->have = 1;
        g->last_ms = ev->ts_ms;
        g->a = (double)ev->tokens_used;
        g->b = (double)ev->token_budget;
        g->value = g->a / g->b;
        sm_id_copy(g->source, ev->source);
        sw->dirty = true;
        sm_detect_gauge(sw, SM_BN_TOKEN_EXHAUSTION, g->value > c->token_raise,
                    g->value < c->token_clear, out);
    }
    g = &sw->st.gauges[G_QUOTA];
    if (ev->agent_quota > 0 && (!g->have || ev->ts_ms >= g->last_ms)) {
        g->have = 1;
        g->last_ms = ev->ts_ms;
        g->value = ev->active_agents;
        g->a = ev->agent_quota;
        sm_id_copy(g->source, ev->source);
        sw->dirty = true;
        sm_detect_gauge(sw, SM_BN_QUOTA_EXCEEDED, g->value >= g->a,
                    g->value < g->a * c->quota_clear, out);
    }
    g = &sw->st.gauges[G_QUEUE];
    if (ev->has_pending && (!g->have || ev->ts_ms >= g->last_ms)) {
        uint64_t p = 0;
        for (int i = 0; i < SM_PRIO_COUNT; i++)
            p += ev->pending[i];
        g->have = 1;
        g->last_ms = ev->ts_ms;
        g->value = (double)p;
        sm_id_copy(g->source, ev->source);
        sw->dirty = true;
        sm_detect_gauge(sw, SM_BN_QUEUE_BACKLOG, p > c->queue_raise,
                    p < c->queue_clear, out);
    }
    sm_fail_on_resource(sw, ev, out);
    return SM_OK;
}

static sm_status on_consensus(sm_swarm *sw, const sm_consensus_round *ev,
                                sm_decisions *out)
{
    if (sw == NULL || ev == NULL || !sm_ts_ok(ev->ts_ms) ||
        sm_id_len(ev->group) < 0)
        return SM_ERR_INVALID;
    if (ev->outcome < SM_ROUND_OK || ev->outcome > SM_ROUND_FAILED)
        return SM_ERR_INVALID;
    clock_advance(sw, ev->ts_ms, out);
    note_event(sw, ev->ts_ms);
    sm_heal_on_round(sw, ev);
    uint32_t delta[SM_RING_COUNTERS] = {
        1, ev->outcome == SM_ROUND_TIMEOUT ? 1u : 0u,
    };
    sm_group *g = group_slot(sw, ev->group);
    if (g == NULL)          /* SM_GROUPS groups raised at once: not followed */
        return SM_OK;
    sw->dirty = true;
    if (!sm_ring_add(&g->rounds, ev->ts_ms, delta))
        return SM_OK;
    if (ev->ts_ms > g->last_ms)
        g->last_ms = ev->ts_ms;
    sm_detect_consensus_round(sw, g, ev->outcome == SM_ROUND_TIMEOUT);
    sm_detect_consensus(sw, g, out);
    sm_fail_on_round(sw, g, ev, out);
    return SM_OK;
}

/* An agent that left, or came back from the dead, starts with a clean
 * record: its old tasks and evidence say nothing about the new process. */
static void forget_tasks(sm_agent *a)
{
    sm_samples_clear(&a->s.tasks_hdr);
    memset(a->s.tasks, 0, sizeof a->s.tasks);
    a->s.slow_llr = 0;
    a->s.fail_llr = 0;
}

static sm_status on_agent(sm_swarm *sw, const sm_agent_lifecycle *ev,
                            sm_decisions *out)
{
    if (sw == NULL || ev == NULL || !sm_ts_ok(ev->ts_ms) ||
        sm_id_len(ev->agent) < 1)
        return SM_ERR_INVALID;
    uint32_t k = SM_AGENT_NONE;
    if (ev->registered) {
        sm_status rc = sm_agents_get(&sw->ag, ev->agent, &k);
        if (rc != SM_OK)
            return rc;
    } else {
        const sm_agent *found = sm_agents_find(&sw->ag, ev->agent);
        if (found != NULL)
            k = (uint32_t)(found - sw->ag.v);
    }
    clock_advance(sw, ev->ts_ms, out);
    note_event(sw, ev->ts_ms);
    if (k == SM_AGENT_NONE)
        return SM_OK;

    sm_agent *a = &sw->ag.v[k];
    if (ev->ts_ms > a->s.last_seen_ms || a->s.last_seen_ms == 0)
        a->s.last_seen_ms = ev->ts_ms;
    sm_agents_mark(&sw->ag, k);
    sm_heal_on_agent(sw, ev);
    if (ev->registered) {
        if (a->s.fail & FAIL_DOWN)  /* a restart: a new process, new record */
            forget_tasks(a);
        a->s.flags = (uint8_t)(AGENT_REGISTERED |
                               (ev->dynamic ? AGENT_DYNAMIC : 0u));
        sm_fail_on_lifecycle(sw, k, ev, out);
        return SM_OK;
    }
    sm_evidence gone = {.signal = SM_SIG_AGENT, .ts_ms = ev->ts_ms};
    sm_id_copy(gone.id, ev->agent);
    sm_detect_agent_gone(sw, k, &gone, out);
    forget_tasks(a);
    a->s.flags = (uint8_t)((a->s.flags & AGENT_DYNAMIC) | AGENT_UNREGISTERED);
    sm_fail_on_lifecycle(sw, k, ev, out);
    return SM_OK;
}

/* The public handlers: the event, then the healer over the decisions it
 * led to (heal.h). */
#define HEALED(call)                                        \
    do {                                                    \
        size_t from_ = out != NULL ? out->n : 0;            \
        sm_status s_ = (call);                              \
        if (s_ == SM_OK)                                    \
            sm_heal_observe(sw, out, from_);                \
        return s_;                                          \
    } while (0)

sm_status sm_swarm_on_task(sm_swarm *sw, const sm_task_event *ev,
                           sm_decisions *out)
{
    HEALED(on_task(sw, ev, out));
}

sm_status sm_swarm_on_heartbeat(sm_swarm *sw, const sm_heartbeat *ev,
                                sm_decisions *out)
{
    HEALED(on_heartbeat(sw, ev, out));
}

sm_status sm_swarm_on_resource(sm_swarm *sw, const sm_resource_sample *ev,
                               sm_decisions *out)
{
    HEALED(on_resource(sw, ev, out));
}

sm_status sm_swarm_on_consensus(sm_swarm *sw, const sm_consensus_round *ev,
                                sm_decisions *out)
{
    HEALED(on_consensus(sw, ev, out));
}

sm_status sm_swarm_on_agent(sm_swarm *sw, const sm_agent_lifecycle *ev,
                            sm_decisions *out)
{
    HEALED(on_agent(sw, ev, out));
}

static sm_status on_outcome(sm_swarm *sw, int64_t ts_ms, uint64_t command,
                            uint32_t result, sm_decisions *out)
{
    if (sw == NULL || !sm_ts_ok(ts_ms))
        return SM_ERR_INVALID;
    clock_advance(sw, ts_ms, out);
    note_event(sw, ts_ms);
    sm_heal_on_outcome(sw, command, result);
    return SM_OK;
}

sm_status sm_swarm_on_outcome(sm_swarm *sw, int64_t ts_ms, uint64_t command,
                              uint32_t result, sm_decisions *out)
{
    HEALED(on_outcome(sw, ts_ms, command, result, out));
}

void sm_swarm_advance(sm_swarm *sw, int64_t now_ms, sm_decisions *out)
{
    if (sw == NULL || !sm_ts_ok(now_ms))
        return;
    size_t from = out != NULL ? out->n : 0;
    clock_advance(sw, now_ms, out);
    sm_heal_observe(sw, out, from);
}

sm_status sm_swarm_set_heal(sm_swarm *sw, const sm_heal_config *hc)
{
    if (sw == NULL || hc == NULL || hc->n_strategies > SM_HEAL_MAX_STRATEGIES ||
        (hc->n_strategies > 0 && hc->strategies == NULL))
        return SM_ERR_INVALID;
    for (size_t i = 0; i < hc->n_strategies; i++) {
        const sm_strategy *s = &hc->strategies[i];
        if (s->name == NULL || s->matches == NULL || s->plan == NULL ||
            s->max_tries == 0)
            return SM_ERR_INVALID;
    }
    sw->heal = *hc;
    return SM_OK;
}

static void heal_rows_add(sm_heal_tally *to, const sm_heal_tally *x, size_t n)
{
    for (size_t i = 0; to != NULL && i < n; i++)
        sm_heal_tally_add(&to[i], &x[i]);
}

void sm_swarm_heal_add(const sm_swarm *sw, sm_heal_tally *by_action,
                       sm_heal_tally *by_type, sm_heal_tally *by_strategy)
{
    if (sw == NULL)
        return;
    const sm_heal_state *h = &sw->st.heal;
    heal_rows_add(by_action, h->by_action, SM_ACT_COUNT + 1);
    heal_rows_add(by_type, h->by_type, SM_FAIL_MAX + 1);
    heal_rows_add(by_strategy, h->by_strategy, SM_HEAL_MAX_STRATEGIES);
}

size_t sm_swarm_heal_open(const sm_swarm *sw, sm_heal_visit_fn fn, void *ud)
{
    size_t n = 0;
    for (int i = 0; sw != NULL && i < SM_HEAL_EPS; i++) {
        const sm_heal_ep *e = &sw->st.heal.ep[i];
        if (!e->used || e->phase != HEAL_WAIT)
            continue;
        n++;
        if (fn != NULL)
            fn(ud, e->command, (sm_heal_action)e->action, e->agent,
               e->deadline_ms, e->answers);
    }
    return n;
}

bool sm_swarm_is_raised(const sm_swarm *sw, sm_bn_type t,
                        const char *subject)
{
    if (sw == NULL || t < SM_BN_TOKEN_EXHAUSTION ||
        t > SM_BN_CONSENSUS_TIMEOUT)
        return false;
    if (t == SM_BN_CONSENSUS_TIMEOUT) {
        /* "" (or NULL): any group */
        for (int i = 0; i < SM_GROUPS; i++) {
            const sm_group *g = &sw->st.groups[i];
            if (g->used && g->ep.raised &&
                (subject == NULL || subject[0] == '\0' ||
                 strncmp(g->name, subject, SM_ID_MAX) == 0))
                return true;
        }
        return false;
    }
    if (t != SM_BN_SLOW_AGENT)
        return sw->st.ep[t].raised != 0;
    if (sm_id_len(subject) < 1)
        return false;
    const sm_agent *a = sm_agents_find(&sw->ag, subject);
    return a != NULL && a->s.raised;
}

bool sm_swarm_failure_raised(const sm_swarm *sw, sm_fail_type t,
                             const char *subject)
{
    if (sw == NULL)
        return false;
    bool any = subject == NULL || subject[0] == '\0';
    switch (t) {
    case SM_FAIL_AGENT_DOWN:
    case SM_FAIL_AGENT_STUCK:
    case SM_FAIL_TASK_TIMEOUT: {
        if (any)
            return false;
        const sm_agent *a = sm_agents_find(&sw->ag, subject);
        uint32_t bit = t == SM_FAIL_AGENT_DOWN ? FAIL_DOWN
                       : t == SM_FAIL_AGENT_STUCK ? FAIL_STUCK : FAIL_TIMEOUT;
        return a != NULL && (a->s.fail & bit);
    }
    case SM_FAIL_QUORUM_LOSS:
        for (int i = 0; i < SM_GROUPS; i++) {
            const sm_group *g = &sw->st.groups[i];
            if (g->used && g->qep.raised &&
                (any || strncmp(g->name, subject, SM_ID_MAX) == 0))
                return true;
        }
        return false;
    case SM_FAIL_TOKEN_EXHAUSTION:
        return sw->st.fail[F_TOKEN].raised != 0;
    case SM_FAIL_MEMORY_EXHAUSTION:
        return sw->st.fail[F_MEMORY].raised != 0;
    case SM_FAIL_QUEUE_OVERFLOW:
        return sw->st.fail[F_QUEUE].raised != 0;
    }
    return false;
}

static void tally_add(sm_pred_tally *to, const sm_pred_tally *x)
{
    to->raised += x->raised;
    to->fulfilled += x->fulfilled;
    to->late += x->late;
    to->wrong += x->wrong;
    to->preempted += x->preempted;
    to->lead_s += x->lead_s;
    to->eta_err_s += x->eta_err_s;
}

void sm_swarm_ledger_add(const sm_swarm *sw, sm_pred_tally *by_source,
                         sm_pred_tally *by_type)
{
    if (sw == NULL)
        return;
    for (int i = 0; by_source && i <= SM_SRC_COUNT; i++)
        tally_add(&by_source[i], &sw->st.ledger.by_source[i]);
    for (int i = 0; by_type && i <= SM_FAIL_MAX; i++)
        tally_add(&by_type[i], &sw->st.ledger.by_type[i]);
}

/* -------------------------------------------------------- persistence */
size_t sm_swarm_expire(sm_swarm *sw, int64_t retention_ms,
                       sm_agent_visit_fn removed, void *ud)
{
    if (sw == NULL)
        return 0;
    if (retention_ms < 0)
        retention_ms = 0;
    /* a scan of every agent: at most once per tick for one retention */
    if (retention_ms == sw->expire_retention_ms &&
        sw->st.now_ms - sw->expire_at_ms < sw->cfg.tick_ms)
        return 0;
    sw->expire_retention_ms = retention_ms;
    sw->expire_at_ms = sw->st.now_ms;
    int64_t cutoff = sw->st.now_ms - retention_ms;
    size_t n = 0;
    /* downwards: the agent moved into a hole was already looked at */
    for (uint32_t k = sw->ag.n; k-- > 0;) {
        const sm_agent *a = &sw->ag.v[k];
        if (a->s.raised || sm_fail_agent_raised(a) ||
            a->s.last_seen_ms >= cutoff)
            continue;
        if (removed != NULL)
            removed(ud, a->s.id, NULL, 0);
        sm_agents_remove(&sw->ag, k);
        n++;
    }
    return n;
}
