/*
 * heal.c - healing episodes: commands planned by the strategy table,
 * verified by the signal and the coordinator's outcome, retried with
 * backoff, escalated when spent (heal.h says what and why).
 *
 * Design choices a reader should know:
 *  - The healer reads decisions, not events: what it heals is exactly what
 *    the swarm published, and the detectors know nothing of it. Only
 *    three event facts reach it directly: a retried task's end, a
 *    consensus round's participants (the quorum guard) and outcomes.
 *  - A full look at every open episode happens once per tick, and at
 *    once for an episode whose signal or outcome just changed: a verdict
 *    lags its evidence by at most one tick.
 *  - Verification of a restart is the agent's state (registered, beating
 *    since the command, the failure bit clear), not the RESOLVED decision:
 *    a restart resolves agent_down with "unregistered" before the agent
 *    has proved anything.
 */
#include "heal.h"

#include <string.h>

#include "hash.h"
#include "query.h"
#include "swarm_int.h"

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

const char *sm_heal_action_str(sm_heal_action a)
{
    switch (a) {
    case SM_ACT_RESTART:   return "agent_restart";
    case SM_ACT_RETRY:     return "task_retry";
    case SM_ACT_REBALANCE: return "resource_rebalance";
    case SM_ACT_QUORUM:    return "quorum_recovery";
    case SM_ACT_CUSTOM:    return "custom";
    case SM_ACT_ESCALATE:  return "escalate";
    }
    return "unknown";
}

sm_heal_action sm_heal_action_parse(const char *s)
{
    for (int a = 1; s != NULL && a <= SM_ACT_COUNT; a++)
        if (strcmp(s, sm_heal_action_str((sm_heal_action)a)) == 0)
            return (sm_heal_action)a;
    return (sm_heal_action)0;
}

const char *sm_autonomy_str(sm_autonomy a)
{
    switch (a) {
    case SM_AUTO_OBSERVE:   return "observe";
    case SM_AUTO_RECOMMEND: return "recommend";
    case SM_AUTO_ACT:       return "act";
    }
    return "unknown";
}

sm_autonomy sm_autonomy_parse(const char *s)
{
    for (int a = SM_AUTO_OBSERVE; s != NULL && a <= SM_AUTO_ACT; a++)
        if (strcmp(s, sm_autonomy_str((sm_autonomy)a)) == 0)
            return (sm_autonomy)a;
    return (sm_autonomy)0;
}

/* ------------------------------------------------------------ queries */

/* Whether agent state s is one a task may be given to. */
static bool healthy(const sm_agent_state *s)
{
    return (s->flags & AGENT_REGISTERED) && !(s->flags & AGENT_UNREGISTERED) &&
           !(s->fail & (FAIL_DOWN | FAIL_STUCK | FAIL_TIMEOUT | FAIL_STOPPING)) &&
           !s->raised && !s->pred_raised;
}

double sm_heal_pick_agent(const sm_swarm *sw, const char *task_type,
                          const char *not, char *out)
{
    /* the select endpoint's ranking (query.h), then this module's own
     * bar: nobody slow, timing out, stopping or forecast to die */
    sm_agent_score ranked[SM_HEAL_PICK];
    size_t n = sm_query_select(sw, task_type, NULL, 0, ranked, SM_HEAL_PICK,
                               NULL, NULL, NULL);
    for (size_t i = 0; i < n; i++) {
        if (not != NULL && strncmp(ranked[i].agent, not, SM_ID_MAX) == 0)
            continue;
        const sm_agent *a = sm_agents_find(&sw->ag, ranked[i].agent);
        if (a == NULL || !healthy(&a->s))
            continue;
        memcpy(out, ranked[i].agent, SM_ID_MAX);
        return ranked[i].score;
    }
    return -1;
}

static sm_heal_group *group_of(sm_heal_state *h, uint64_t name)
{
    sm_heal_group *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < SM_GROUPS; i++) {
        sm_heal_group *g = &h->groups[i];
        if (g->name == name)
            return g;
        if (g->name == 0 && free_slot == NULL)
            free_slot = g;
        if (oldest == NULL || g->at_ms < oldest->at_ms)
            oldest = g;
    }
    sm_heal_group *g = free_slot != NULL ? free_slot : oldest;
    memset(g, 0, sizeof *g);
    g->name = name;
    return g;
}

uint32_t sm_heal_group_shortfall(const sm_swarm *sw, const char *group)
{
    uint64_t name = sm_hash_str(SM_HASH_INIT, group ? group : "");
    for (int i = 0; i < SM_GROUPS; i++) {
        const sm_heal_group *g = &sw->st.heal.groups[i];
        if (g->name == name)
            return g->spare < 0 ? (uint32_t)-g->spare : 0;
    }
    return 0;
}

/* Whether no group of the swarm heard from within the window has a
 * participant to spare: a live agent's restart could lose a quorum. */
static bool quorum_tight(const sm_swarm *sw)
{
    int64_t since = sw->st.now_ms - sw->cfg.window_ms;
    for (int i = 0; i < SM_GROUPS; i++) {
        const sm_heal_group *g = &sw->st.heal.groups[i];
        if (g->name != 0 && g->at_ms >= since && g->spare <= 0)
            return true;
    }
    return false;
}

/* --------------------------------------------------------- strategies */

/* Appends step s (truncated to SM_STEP_MAX - 1 bytes) and, when value
 * is not UINT32_MAX, "=<value>". */
static void step_n(sm_heal_plan *p, const char *s, uint32_t value)
{
    if (p->n_steps >= SM_HEAL_STEPS)
        return;
    char *q = p->steps[p->n_steps++];
    size_t n = 0;
    while (s[n] != '\0' && n < SM_STEP_MAX - 12)
        q[n] = s[n], n++;
    if (value != UINT32_MAX) {
        char digits[10];
        int d = 0;
        do {
            digits[d++] = (char)('0' + value % 10);
            value /= 10;
        } while (value > 0);
        q[n++] = '=';
        while (d > 0)
            q[n++] = digits[--d];
    }
    q[n] = '\0';
}

static void step(sm_heal_plan *p, const char *s)
{
    step_n(p, s, UINT32_MAX);
}

bool sm_heal_restart_matches(const sm_heal_case *c)
{
    int t = c->type;
    return (c->kind == SM_DEC_FAILURE &&
            (t == SM_FAIL_AGENT_DOWN || t == SM_FAIL_AGENT_STUCK)) ||
           (c->kind == SM_DEC_PREDICTION && t == SM_FAIL_AGENT_DOWN &&
            c->subject[0] != '\0');
}

bool sm_heal_restart_plan(const sm_heal_case *c, sm_heal_plan *p)
{
    p->action = SM_ACT_RESTART;
    sm_id_copy(p->agent, c->subject);
    step(p, "unregister");
    step(p, "reregister");
    step(p, "restore_state");
    p->restarts = true;
    return true;
}

bool sm_heal_retry_matches(const sm_heal_case *c)
{
    return c->kind == SM_DEC_FAILURE && c->type == SM_FAIL_TASK_TIMEOUT &&
           c->task[0] != '\0';
}

bool sm_heal_retry_plan(const sm_heal_case *c, sm_heal_plan *p)
{
    p->action = SM_ACT_RETRY;
    sm_id_copy(p->agent, c->subject);
    sm_id_copy(p->task, c->task);
    if (sm_heal_pick_agent(c->sw, c->task_type, c->subject, p->target) < 0)
        return false;       /* nobody healthy: the next strategy */
    step(p, "requeue");
    return true;
}

bool sm_heal_rebalance_matches(const sm_heal_case *c)
{
    int t = c->type;
    return (c->kind == SM_DEC_FAILURE || c->kind == SM_DEC_PREDICTION) &&
           (t == SM_FAIL_TOKEN_EXHAUSTION || t == SM_FAIL_MEMORY_EXHAUSTION ||
            t == SM_FAIL_QUEUE_OVERFLOW);
}

bool sm_heal_rebalance_plan(const sm_heal_case *c, sm_heal_plan *p)
{
    p->action = SM_ACT_REBALANCE;
    if (c->type == SM_FAIL_TOKEN_EXHAUSTION) {
        /* fewer tokens burned, and budget moved to the swarm */
        step(p, "pause_low_priority");
        step(p, "reallocate_budget");
    } else if (c->type == SM_FAIL_MEMORY_EXHAUSTION) {
        step(p, "free_memory");
    } else {
        /* a queue: capacity, one agent per 20 tasks over the clear line
         * (SPEC capability 5); pausing work would only pile it up */
        const sm_gauge *q = &c->sw->st.gauges[G_QUOTA];
        if (q->have && q->a > 0 && q->value >= q->a)
            return false;       /* no room to add agents: a human's call */
        const sm_gauge *g = &c->sw->st.gauges[G_QUEUE];
        double over = g->have ? g->value - c->sw->cfg.queue_clear : 0;
        uint32_t n = over > 20 ? (uint32_t)((over + 19) / 20) : 1u;
        step_n(p, "scale_up", n > 50 ? 50 : n);
    }
    return true;
}

bool sm_heal_quorum_matches(const sm_heal_case *c)
{
    return c->kind == SM_DEC_FAILURE && c->type == SM_FAIL_QUORUM_LOSS;
}

bool sm_heal_quorum_plan(const sm_heal_case *c, sm_heal_plan *p)
{
    p->action = SM_ACT_QUORUM;
    uint32_t n = sm_heal_group_shortfall(c->sw, c->subject);
    step_n(p, "spawn_agents", n > 0 ? n : 1u);
    return true;
}

/* ------------------------------------------------------------ episodes */

static sm_heal_ep *ep_find(sm_heal_state *h, uint32_t kind, int type,
                           const char *subject)
{
    for (int i = 0; i < SM_HEAL_EPS; i++) {
        sm_heal_ep *e = &h->ep[i];
        if (e->used && e->kind == kind && e->type == type &&
            strncmp(e->subject, subject, SM_ID_MAX) == 0)
            return e;
    }
    return NULL;
}

static void ep_free(sm_swarm *sw, sm_heal_ep *e)
{
    memset(e, 0, sizeof *e);
    sw->st.heal.n_open--;
    sw->dirty = true;
}

static sm_autonomy autonomy_of(const sm_swarm *sw, sm_heal_action a)
{
    sm_autonomy x = sw->heal.autonomy[a];
    return x >= SM_AUTO_OBSERVE && x <= SM_AUTO_ACT ? x : SM_AUTO_OBSERVE;
}

static int64_t default_deadline(const sm_detect_config *c, sm_heal_action a)
{
    switch (a) {
    case SM_ACT_RESTART:   return c->heal_restart_deadline_ms;
    case SM_ACT_RETRY:     return c->heal_retry_deadline_ms;
    case SM_ACT_QUORUM:    return c->heal_quorum_deadline_ms;
    case SM_ACT_REBALANCE:
    case SM_ACT_CUSTOM:
    case SM_ACT_ESCALATE:  break;
    }
    return c->heal_rebalance_deadline_ms;
}

/* How many restarts of `agent` (0: of anyone) since `since`, and when
 * the latest was (*last, 0 if none). */
static uint32_t restarts_since(const sm_heal_state *h, uint64_t agent,
                               int64_t since, int64_t *last)
{
    uint32_t n = 0;
    int64_t latest = 0;
    for (int i = 0; i < SM_HEAL_RESTARTS; i++) {
        const sm_heal_restart *r = &h->restarts[i];
        if (r->agent != 0 && r->at_ms >= since && (agent == 0 || r->agent == agent)) {
            n++;
            latest = r->at_ms > latest ? r->at_ms : latest;
        }
    }
    if (last != NULL)
        *last = latest;
    return n;
}

/* base x 2^(k-1), at most max, plus 0..50% jitter drawn from key and k:
 * deterministic. */
static int64_t backoff_of(const sm_detect_config *c, uint64_t key, uint32_t k)
{
    int64_t wait = c->heal_backoff_ms;
    for (uint32_t i = 1; i < k && wait < c->heal_backoff_max_ms; i++)
        wait *= 2;
    wait = min64(wait, c->heal_backoff_max_ms);
    uint64_t j = sm_hash_u64(sm_hash_u64(SM_HASH_INIT, key), k);
    return wait + wait * (int64_t)(j % 500) / 1000;
}

static void restart_note(sm_heal_state *h, const char *agent, int64_t at_ms)
{
    sm_heal_restart *r = &h->restarts[h->restart_head];
    r->agent = sm_hash_str(SM_HASH_INIT, agent);
    r->at_ms = at_ms;
    h->restart_head = (h->restart_head + 1) % SM_HEAL_RESTARTS;
}

static void row_verdict(sm_heal_row *r, sm_verdict_kind v, double detect_s,
                        double recover_s)
{
    bool good = v == SM_VERDICT_VERIFIED || v == SM_VERDICT_PREEMPTED;
    if (v == SM_VERDICT_VERIFIED) {
        r->verified++;
        r->detect_s += detect_s;
        r->recover_s += recover_s;
    } else if (v == SM_VERDICT_PREEMPTED) {
        r->preempted++;
    } else if (v == SM_VERDICT_FAILED) {
        r->failed++;
    } else {
        r->superseded++;
        return;                 /* says nothing of the strategy */
    }
    r->recent = (r->recent << 1 | (good ? 1u : 0u)) & 0xffffu;
    if (r->recent_n < 16)
        r->recent_n++;
}

static sm_heal_row *type_row(sm_heal_state *h, const sm_heal_ep *e)
{
    int t = e->kind == SM_DEC_BOTTLENECK ? 0 : e->type;
    return &h->by_type[t >= 0 && t <= SM_FAIL_MAX ? t : 0];
}

/* Appends the header every healing decision shares. */
static sm_decision *heal_decision(sm_swarm *sw, sm_decisions *out,
                                  sm_decision_kind kind, const sm_heal_ep *e)
{
    sm_decision *d = sm_decisions_push(out);
    if (d == NULL)
        return NULL;
    d->kind = kind;
    d->at_ms = sw->st.now_ms;
    sm_id_copy(d->swarm, sw->st.id);
    memcpy(d->subject, e->subject, SM_ID_MAX);
    /* it rests on what the decision it answers rests on */
    d->evidence.signal = (sm_signal)e->ev_signal;
    memcpy(d->evidence.id, e->ev_id, SM_ID_MAX);
    d->evidence.ts_ms = e->ev_ts_ms;
    d->evidence.window_start_ms = e->ev_from_ms;
    d->evidence.window_end_ms = sw->st.now_ms;
    return d;
}

static const char *strategy_name(const sm_swarm *sw, const sm_heal_ep *e)
{
    return e->strategy < sw->heal.n_strategies
               ? sw->heal.strategies[e->strategy].name : "";
}

/* Gives the current command of e its verdict (once). */
static void verdict(sm_swarm *sw, sm_heal_ep *e, sm_verdict_kind v,
                    const char *reason, int64_t recovered_ms,
                    sm_decisions *out)
{
    sm_heal_state *h = &sw->st.heal;
    double detect_s = (double)(e->detected_ms - e->first_ms) / 1000.0;
    double recover_s = (double)(recovered_ms - e->first_ms) / 1000.0;
    row_verdict(&h->by_action[e->action], v, detect_s, recover_s);
    row_verdict(type_row(h, e), v, detect_s, recover_s);
    if (e->strategy < SM_HEAL_MAX_STRATEGIES)
        row_verdict(&h->by_strategy[e->strategy], v, detect_s, recover_s);
    sm_decision *d = heal_decision(sw, out, SM_DEC_VERDICT, e);
    if (d != NULL) {
        sm_heal_verdict *x = &d->verdict;
        x->verdict = v;
        x->action = (sm_heal_action)e->action;
        x->command = e->command;
        x->answers = e->answers;
        x->type = e->kind == SM_DEC_BOTTLENECK ? 0 : e->type;
        x->attempt = e->attempt;
        x->outcome = e->outcome;
        x->first_evidence_ms = e->first_ms;
        x->detected_ms = e->detected_ms;
        x->commanded_ms = e->commanded_ms;
        x->recovered_ms = recovered_ms;
        x->strategy = strategy_name(sw, e);
        x->custom = e->action == SM_ACT_CUSTOM && e->strategy < sw->heal.n_strategies
                        ? sw->heal.strategies[e->strategy].name : NULL;
        x->reason = reason;
        memcpy(x->agent, e->agent, SM_ID_MAX);
        sm_decision_metric(d, "time_to_recover_s",
                           recovered_ms ? recover_s : 0, 0, 1);
        sm_decision_mint(&sw->mint, d);
    }
    sw->dirty = true;
}

/* Fills the shared part of a command decision from e and appends it. */
static sm_decision *command(sm_swarm *sw, sm_heal_ep *e, sm_heal_action a,
                            sm_autonomy autonomy, sm_decisions *out)
{
    sm_decision *d = heal_decision(sw, out, SM_DEC_HEAL, e);
    if (d == NULL)
        return NULL;
    sm_heal_cmd *c = &d->heal;
    c->action = a;
    c->autonomy = autonomy;
    c->answers_kind = (sm_decision_kind)e->kind;
    c->type = e->kind == SM_DEC_BOTTLENECK ? 0 : e->type;
    c->bn_type = e->kind == SM_DEC_BOTTLENECK ? e->type : 0;
    c->attempt = e->attempt;
    c->preventive = e->kind == SM_DEC_PREDICTION;
    c->answers = e->answers;
    c->strategy = strategy_name(sw, e);
    return d;
}

/* The escalation of e: its strategies are spent (or a guard forbids). */
static void escalate(sm_swarm *sw, sm_heal_ep *e, const char *reason,
                     sm_decisions *out)
{
    uint64_t failed = e->command;
    e->attempt++;
    e->phase = HEAL_SPENT;
    sm_autonomy au = autonomy_of(sw, SM_ACT_ESCALATE);
    sm_decision *d = command(sw, e, SM_ACT_ESCALATE, au, out);
    if (d != NULL) {
        d->heal.escalates = failed;
        d->heal.reason = reason;
        d->heal.strategy = "escalate";
        memcpy(d->heal.agent, e->subject, SM_ID_MAX);
        sm_decision_mint(&sw->mint, d);
    }
    if (au != SM_AUTO_OBSERVE) {
        sw->st.heal.by_action[SM_ACT_ESCALATE].commands++;
        sw->st.heal.by_action[SM_ACT_ESCALATE].escalated++;
        type_row(&sw->st.heal, e)->escalated++;
    }
    sw->dirty = true;
}

/* The case of episode e for strategy tries `tries`. */
static void case_of(const sm_swarm *sw, const sm_heal_ep *e, uint32_t tries,
                    sm_heal_case *c)
{
    memset(c, 0, sizeof *c);
    c->kind = (sm_decision_kind)e->kind;
    c->type = e->type;
    c->subject = e->subject;
    c->task = e->task;
    c->task_type = e->task_slot < SM_TASK_TYPES && sw->st.types.t[e->task_slot].used
                       ? sw->st.types.t[e->task_slot].name : "";
    c->attempt = (uint32_t)e->attempt + 1;
    c->tries = tries;
    c->now_ms = sw->st.now_ms;
    c->sw = sw;
}

/* Issues the next command of e, starting the search at strategy `from`
 * with `tries` tries of it already made; escalates when no strategy
 * plans one or a guard forbids it. */
static void next_command(sm_swarm *sw, sm_heal_ep *e, uint32_t from,
                         uint32_t tries, sm_decisions *out)
{
    const sm_heal_config *hc = &sw->heal;
    sm_heal_plan p;
    uint32_t i = from;
    bool matched = e->attempt > 0;
    for (; i < hc->n_strategies; i++, tries = 0) {
        const sm_strategy *s = &hc->strategies[i];
        if (tries >= s->max_tries)
            continue;
        sm_heal_case c;
        case_of(sw, e, tries, &c);
        if (!s->matches(&c))
            continue;
        matched = true;
        memset(&p, 0, sizeof p);
        if (s->plan(&c, &p) && p.action >= SM_ACT_RESTART &&
            p.action <= SM_ACT_CUSTOM)
            break;
    }
    if (i >= hc->n_strategies) {
        if (!matched) {             /* no strategy for it: not ours */
            e->phase = HEAL_SPENT;
            return;
        }
        escalate(sw, e, e->attempt ? "strategies_spent" : "no_plan", out);
        return;
    }
    const sm_detect_config *cfg = &sw->cfg;
    int64_t now = sw->st.now_ms;
    /* a restart is of the episode's agent unless the plan names one */
    const char *agent = p.agent[0] || !p.restarts ? p.agent : e->subject;
    sm_agent *a = sm_agents_find(&sw->ag, agent);
    bool live = a == NULL || !(a->s.fail & FAIL_DOWN);
    if (p.restarts) {
        int64_t since = now - cfg->heal_restart_window_ms, last = 0;
        uint64_t ah = sm_hash_str(SM_HASH_INIT, agent);
        uint32_t k = restarts_since(&sw->st.heal, ah, since, &last);
        if (k >= cfg->heal_restart_max ||
            restarts_since(&sw->st.heal, 0, since, NULL) >=
                cfg->heal_swarm_restart_max) {
            escalate(sw, e, "restart_cap", out);
            return;
        }
        /* restart intensity: the agent's k-th restart in the window waits
         * its backoff after the one before */
        int64_t at = k > 0 ? last + backoff_of(cfg, ah, k) : 0;
        if (now < at) {
            e->phase = HEAL_BACKOFF;
            e->next_ms = at;
            e->strategy = (uint8_t)i;
            e->tries = (uint8_t)tries;
            sw->dirty = true;
            return;
        }
        if (live && quorum_tight(sw)) {
            if (e->phase != HEAL_HELD) {
                e->phase = HEAL_HELD;
                e->next_ms = now + cfg->heal_hold_ms;
                e->strategy = (uint8_t)i;
                e->tries = (uint8_t)tries;
            } else if (now >= e->next_ms) {
                escalate(sw, e, "quorum_guard", out);
            }
            sw->dirty = true;
            return;
        }
    }
    e->strategy = (uint8_t)i;
    e->tries = (uint8_t)(tries + 1);
    e->attempt++;
    e->action = (uint8_t)p.action;
    e->autonomy = (uint8_t)autonomy_of(sw, p.action);
    e->outcome = 0;
    e->task_done = 0;
    e->restarts = p.restarts;
    e->commanded_ms = now;
    e->deadline_ms = now + (p.deadline_ms > 0 ? p.deadline_ms
                                              : default_deadline(cfg, p.action));
    if (e->kind == SM_DEC_PREDICTION && e->next_ms > e->deadline_ms)
        e->deadline_ms = e->next_ms;    /* a forecast: its eta + margin */
    sm_id_copy(e->agent, p.action == SM_ACT_RETRY && p.target[0] ? p.target
                                                                  : agent);
    e->phase = e->autonomy == SM_AUTO_OBSERVE ? HEAL_SPENT : HEAL_WAIT;
    if (p.restarts && e->autonomy == SM_AUTO_ACT)
        restart_note(&sw->st.heal, agent, now);
    sm_decision *d = command(sw, e, p.action, (sm_autonomy)e->autonomy, out);
    if (d != NULL) {
        sm_heal_cmd *c = &d->heal;
        c->deadline_ms = e->deadline_ms;
        c->custom = p.action == SM_ACT_CUSTOM ? p.custom : NULL;
        sm_id_copy(c->agent, agent);
        sm_id_copy(c->task, p.task);
        sm_id_copy(c->target, p.target);
        c->n_steps = p.n_steps;
        memcpy(c->steps, p.steps, sizeof c->steps);
        sm_decision_mint(&sw->mint, d);
        e->command = d->id;
    } else {
        /* no buffer to append to: the id is still the command's */
        sm_decision tmp;
        memset(&tmp, 0, sizeof tmp);
        tmp.kind = SM_DEC_HEAL;
        sm_id_copy(tmp.swarm, sw->st.id);
        tmp.heal.action = p.action;
        tmp.heal.answers = e->answers;
        tmp.heal.attempt = e->attempt;
        sm_decision_mint(NULL, &tmp);
        e->command = tmp.id;
    }
    if (e->autonomy != SM_AUTO_OBSERVE) {
        sw->st.heal.by_action[p.action].commands++;
        type_row(&sw->st.heal, e)->commands++;
        if (i < SM_HEAL_MAX_STRATEGIES)
            sw->st.heal.by_strategy[i].commands++;
    }
    sw->dirty = true;
}

/* Exponential backoff with deterministic jitter before the episode's
 * next try. */
static int64_t backoff(const sm_swarm *sw, const sm_heal_ep *e)
{
    return backoff_of(&sw->cfg, e->answers, e->attempt);
}

/* Whether the current command of e has done what it was for. */
static bool recovered(const sm_swarm *sw, const sm_heal_ep *e, int64_t *at)
{
    if (e->restarts) {
        const sm_agent *a = sm_agents_find(&sw->ag, e->agent);
        if (a == NULL)
            return false;
        const sm_agent_state *s = &a->s;
        uint32_t bit = e->kind != SM_DEC_FAILURE ? 0
                       : e->type == SM_FAIL_AGENT_DOWN ? FAIL_DOWN
                       : e->type == SM_FAIL_AGENT_STUCK ? FAIL_STUCK : 0;
        /* a live agent must have been restarted; a dead one beating
         * again is back, restarted or not */
        bool ok = (s->flags & AGENT_REGISTERED) &&
                  !(s->flags & AGENT_UNREGISTERED) && !(s->fail & bit) &&
                  s->hb_last_ms > e->commanded_ms &&
                  (e->restarted || (e->kind == SM_DEC_FAILURE &&
                                    e->type == SM_FAIL_AGENT_DOWN));
        if (e->kind == SM_DEC_BOTTLENECK)
            ok = ok && !s->raised;
        if (e->kind == SM_DEC_PREDICTION)   /* the forecast must go too */
            ok = ok && e->over == HEAL_OVER_GOOD;
        if (ok)
            *at = s->hb_last_ms;
        return ok;
    }
    if (e->action == SM_ACT_RETRY && e->task_done == 1) {
        *at = e->over_ms;
        return true;
    }
    if (e->action != SM_ACT_RETRY && e->over == HEAL_OVER_GOOD) {
        *at = e->over_ms;
        return true;
    }
    return false;
}

/* Looks at episode e: verdicts, next tries, the end. */
static void look(sm_swarm *sw, sm_heal_ep *e, sm_decisions *out)
{
    int64_t now = sw->st.now_ms, at = 0;
    if (e->phase == HEAL_WAIT) {
        /* advice nobody reported carrying out takes no credit for a
         * recovery: it may have come on its own */
        bool shown = e->autonomy == SM_AUTO_ACT || e->outcome == 1;
        if (recovered(sw, e, &at)) {
            if (!shown)
                verdict(sw, e, SM_VERDICT_SUPERSEDED, "recovered_unreported",
                        at, out);
            else
                verdict(sw, e, e->kind == SM_DEC_PREDICTION
                                   ? SM_VERDICT_PREEMPTED : SM_VERDICT_VERIFIED,
                        e->kind == SM_DEC_PREDICTION ? "prediction_withdrawn"
                        : e->action == SM_ACT_RETRY  ? "task_completed"
                        : e->restarts                ? "agent_back"
                                                     : "failure_resolved",
                        at, out);
            e->phase = HEAL_SPENT;
            e->over = e->over ? e->over : HEAL_OVER_GOOD;
        } else if (e->kind == SM_DEC_PREDICTION && e->over == HEAL_OVER_ENDED) {
            verdict(sw, e, SM_VERDICT_FAILED, "failure_came", 0, out);
            e->phase = HEAL_SPENT;
        } else if (e->over == HEAL_OVER_ENDED) {
            verdict(sw, e, SM_VERDICT_SUPERSEDED, "episode_ended", 0, out);
            e->phase = HEAL_SPENT;
        } else if (e->outcome == 2 || e->outcome == 3 || e->task_done == 2 ||
                   now >= e->deadline_ms) {
            verdict(sw, e, SM_VERDICT_FAILED,
                    e->outcome == 2   ? "outcome_failed"
                    : e->outcome == 3 ? "outcome_rejected"
                    : e->task_done == 2 ? "retry_failed"
                                        : "deadline_passed",
                    0, out);
            if (e->over != HEAL_OVER_NO) {
                e->phase = HEAL_SPENT;
            } else if (e->kind == SM_DEC_PREDICTION) {
                e->phase = HEAL_SPENT;  /* a forecast gets one try */
            } else if (e->autonomy != SM_AUTO_ACT) {
                e->phase = HEAL_SPENT;  /* advice is given once: no retry,
                                           no escalation of it */
            } else {
                e->phase = HEAL_BACKOFF;
                e->next_ms = now + backoff(sw, e);
            }
        }
    }
    if (e->over != HEAL_OVER_NO && e->phase != HEAL_WAIT) {
        ep_free(sw, e);
        return;
    }
    if ((e->phase == HEAL_BACKOFF && now >= e->next_ms) ||
        e->phase == HEAL_HELD)
        next_command(sw, e, e->strategy, e->tries, out);
}

/* The first event time behind decision d: where its own metrics say the
 * trouble began (a stuck agent's progress froze, a timed-out task
 * started), else its evidence's time. */
static int64_t first_evidence(const sm_decision *d)
{
    int64_t at = d->evidence.ts_ms > 0 && d->evidence.ts_ms < d->at_ms
                     ? d->evidence.ts_ms : d->at_ms;
    const char *since = NULL;
    int64_t from = d->at_ms;
    if (d->kind == SM_DEC_FAILURE && d->fail.type == SM_FAIL_AGENT_STUCK)
        since = "no_progress_ms";       /* counted back from the decision */
    else if (d->kind == SM_DEC_FAILURE && d->fail.type == SM_FAIL_TASK_TIMEOUT) {
        since = "duration_ms";          /* counted back from the task's end */
        from = d->evidence.ts_ms;
    }
    for (size_t i = 0; since != NULL && i < d->n_metrics; i++)
        if (strcmp(d->metrics[i].name, since) == 0 &&
            d->metrics[i].value > 0 && d->metrics[i].value < 1e12) {
            int64_t t = from - (int64_t)d->metrics[i].value;
            return t < at && t >= 0 ? t : at;
        }
    return at;
}

/* A decision that opens an episode: a failure raised, a forecast
 * confident enough, a bottleneck raised. */
static void open_episode(sm_swarm *sw, const sm_decision *d, uint32_t kind,
                         int type, sm_decisions *out)
{
    sm_heal_state *h = &sw->st.heal;
    if (sw->heal.n_strategies == 0 || ep_find(h, kind, type, d->subject))
        return;
    /* the failure a preventive command was for came: that command's
     * verdict goes first (the FULFILLED forecast may follow it) */
    sm_heal_ep *pre = kind == SM_DEC_FAILURE
                          ? ep_find(h, SM_DEC_PREDICTION, type, d->subject)
                          : NULL;
    if (pre != NULL) {
        pre->over = HEAL_OVER_ENDED;
        pre->over_ms = sw->st.now_ms;
        look(sw, pre, out);
    }
    /* a forecast of a failure being healed already adds nothing */
    if (kind == SM_DEC_PREDICTION &&
        ep_find(h, SM_DEC_FAILURE, type, d->subject) != NULL)
        return;
    sm_heal_ep *e = NULL;
    for (int i = 0; i < SM_HEAL_EPS && e == NULL; i++)
        if (!h->ep[i].used)
            e = &h->ep[i];
    if (e == NULL) {
        h->dropped++;
        sw->dirty = true;
        return;
    }
    memset(e, 0, sizeof *e);
    e->used = 1;
    e->kind = (uint8_t)kind;
    e->type = type;
    e->answers = d->id;
    e->detected_ms = d->at_ms;
    e->first_ms = first_evidence(d);
    e->task_slot = SM_TYPE_NONE;
    memcpy(e->subject, d->subject, SM_ID_MAX);
    e->ev_signal = (uint8_t)d->evidence.signal;
    memcpy(e->ev_id, d->evidence.id, SM_ID_MAX);
    e->ev_ts_ms = d->evidence.ts_ms;
    e->ev_from_ms = d->evidence.window_start_ms;
    if (kind == SM_DEC_FAILURE && type == SM_FAIL_TASK_TIMEOUT) {
        memcpy(e->task, d->fail.task, SM_ID_MAX);
        const sm_agent *a = sm_agents_find(&sw->ag, d->subject);
        if (a != NULL)
            e->task_slot = a->s.task_type;
    }
    if (kind == SM_DEC_PREDICTION)      /* its deadline: eta + margin */
        e->next_ms = d->at_ms + d->pred.expected_in_ms + sw->cfg.pred_margin_ms;
    h->n_open++;
    sw->dirty = true;
    next_command(sw, e, 0, 0, out);
    if (e->attempt == 0 && e->phase == HEAL_SPENT)
        ep_free(sw, e);             /* no strategy for it */
}

/* A decision that ends an episode's signal. */
static void close_episode(sm_swarm *sw, uint32_t kind, int type,
                          const char *subject, uint8_t over, sm_decisions *out)
{
    sm_heal_ep *e = ep_find(&sw->st.heal, kind, type, subject);
    if (e == NULL)
        return;
    e->over = over;
    e->over_ms = sw->st.now_ms;
    sw->dirty = true;
    look(sw, e, out);
}

static void observe_one(sm_swarm *sw, const sm_decision *d, sm_decisions *out)
{
    switch (d->kind) {
    case SM_DEC_FAILURE:
        if (d->fail.transition == SM_TR_RAISED) {
            open_episode(sw, d, SM_DEC_FAILURE, d->fail.type, out);
        } else {
            const char *r = d->fail.reason ? d->fail.reason : "";
            /* an agent unregistering proves nothing; one gone ends it */
            if (strcmp(r, "unregistered") == 0) {
                sm_heal_ep *e = ep_find(&sw->st.heal, SM_DEC_FAILURE,
                                        d->fail.type, d->subject);
                if (e == NULL || e->restarts || e->phase == HEAL_WAIT)
                    break;
            }
            close_episode(sw, SM_DEC_FAILURE, d->fail.type, d->subject,
                          strcmp(r, "gone") == 0 ||
                                  strcmp(r, "unregistered") == 0
                              ? HEAL_OVER_ENDED : HEAL_OVER_GOOD, out);
        }
        break;
    case SM_DEC_PREDICTION:
        if (d->pred.transition == SM_PRED_RAISED ||
            d->pred.transition == SM_PRED_UPDATED) {
            if (d->pred.confidence >= sw->cfg.heal_preventive)
                open_episode(sw, d, SM_DEC_PREDICTION, d->pred.type, out);
        } else {
            close_episode(sw, SM_DEC_PREDICTION, d->pred.type, d->subject,
                          d->pred.transition == SM_PRED_WITHDRAWN
                              ? HEAL_OVER_GOOD : HEAL_OVER_ENDED, out);
        }
        break;
    case SM_DEC_BOTTLENECK:
        if (d->bn.transition == SM_TR_RAISED)
            open_episode(sw, d, SM_DEC_BOTTLENECK, d->bn.type, out);
        else if (d->bn.transition == SM_TR_RESOLVED) {
            /* "no_data": the agent left or died, not cured; but the
             * unregistering of a restart in flight proves nothing yet
             * (the agent's state will) */
            bool cleared = d->bn.reason && strcmp(d->bn.reason, "cleared") == 0;
            sm_heal_ep *e = ep_find(&sw->st.heal, SM_DEC_BOTTLENECK,
                                    d->bn.type, d->subject);
            if (!cleared && e != NULL && e->restarts && e->phase == HEAL_WAIT)
                break;
            close_episode(sw, SM_DEC_BOTTLENECK, d->bn.type, d->subject,
                          cleared ? HEAL_OVER_GOOD : HEAL_OVER_ENDED, out);
        }
        break;
    case SM_DEC_HEAL:
    case SM_DEC_VERDICT:
        break;
    }
}

void sm_heal_observe(sm_swarm *sw, sm_decisions *out, size_t from)
{
    if (out == NULL)
        return;
    size_t end = out->n;    /* what the healer appends is not read again */
    for (size_t i = from; i < end; i++) {
        sm_decision d = out->v[i];      /* a copy: appends may move v */
        observe_one(sw, &d, out);
    }
    sm_heal_state *h = &sw->st.heal;
    int64_t tick = sw->st.tick;
    if (tick == h->tick || h->n_open == 0) {
        h->tick = tick;
        return;
    }
    h->tick = tick;
    for (int i = 0; i < SM_HEAL_EPS; i++)
        if (h->ep[i].used)
            look(sw, &h->ep[i], out);
}

void sm_heal_on_task(sm_swarm *sw, const sm_task_event *ev)
{
    sm_heal_state *h = &sw->st.heal;
    if (h->n_open == 0 || ev->task_id == NULL || ev->task_id[0] == '\0' ||
        (ev->kind != SM_TASK_COMPLETED && ev->kind != SM_TASK_FAILED &&
         ev->kind != SM_TASK_TIMED_OUT))
        return;
    for (int i = 0; i < SM_HEAL_EPS; i++) {
        sm_heal_ep *e = &h->ep[i];
        if (!e->used || e->phase != HEAL_WAIT || e->action != SM_ACT_RETRY ||
            ev->ts_ms < e->commanded_ms ||
            strncmp(e->task, ev->task_id, SM_ID_MAX) != 0)
            continue;
        e->task_done = ev->kind == SM_TASK_COMPLETED ? 1 : 2;
        e->over_ms = ev->ts_ms;
        h->tick = INT64_MIN;    /* look at once, at the end of this call */
        sw->dirty = true;
    }
}

void sm_heal_on_agent(sm_swarm *sw, const sm_agent_lifecycle *ev)
{
    sm_heal_state *h = &sw->st.heal;
    if (h->n_open == 0 || !ev->registered)
        return;
    for (int i = 0; i < SM_HEAL_EPS; i++) {
        sm_heal_ep *e = &h->ep[i];
        if (e->used && e->phase == HEAL_WAIT && e->restarts &&
            ev->ts_ms >= e->commanded_ms &&
            strncmp(e->agent, ev->agent, SM_ID_MAX) == 0) {
            e->restarted = 1;
            sw->dirty = true;
        }
    }
}

void sm_heal_on_round(sm_swarm *sw, const sm_consensus_round *ev)
{
    if (ev->quorum == 0)
        return;
    sm_heal_group *g = group_of(&sw->st.heal,
                                sm_hash_str(SM_HASH_INIT, ev->group ? ev->group : ""));
    if (ev->ts_ms < g->at_ms)
        return;
    g->at_ms = ev->ts_ms;
    g->spare = (int32_t)ev->participants - (int32_t)ev->quorum;
    sw->dirty = true;
}

void sm_heal_on_outcome(sm_swarm *sw, uint64_t command, uint32_t result)
{
    sm_heal_state *h = &sw->st.heal;
    for (int i = 0; i < SM_HEAL_EPS; i++) {
        sm_heal_ep *e = &h->ep[i];
        if (!e->used || e->phase != HEAL_WAIT || e->command != command)
            continue;
        e->outcome = (uint8_t)(result <= 3 ? result : 0);
        h->tick = INT64_MIN;    /* look at once */
        sw->dirty = true;
    }
}

bool sm_heal_preempting(const sm_swarm *sw, sm_fail_type type,
                        const char *subject)
{
    for (int i = 0; i < SM_HEAL_EPS; i++) {
        const sm_heal_ep *e = &sw->st.heal.ep[i];
        if (e->used && e->kind == SM_DEC_PREDICTION && e->type == (int)type &&
            e->phase == HEAL_WAIT && e->autonomy == SM_AUTO_ACT &&
            strncmp(e->subject, subject ? subject : "", SM_ID_MAX) == 0)
            return true;
    }
    return false;
}

/* ------------------------------------------------------------ analytics */

void sm_heal_tally_add(sm_heal_tally *to, const sm_heal_tally *x)
{
    to->commands += x->commands;
    to->verified += x->verified;
    to->failed += x->failed;
    to->preempted += x->preempted;
    to->superseded += x->superseded;
    to->escalated += x->escalated;
    to->detect_s += x->detect_s;
    to->recover_s += x->recover_s;
    /* the recent verdicts of several rows: the latest row's */
    to->recent = x->recent;
    to->recent_n = x->recent_n;
}

void sm_heal_tally_all(const sm_heal_tally *by_action, sm_heal_tally *all)
{
    memset(all, 0, sizeof *all);
    for (int i = 1; i <= SM_ACT_COUNT; i++)
        if (i != SM_ACT_ESCALATE)
            sm_heal_tally_add(all, &by_action[i]);
    all->recent = 0;
    all->recent_n = 0;
    all->escalated = by_action[SM_ACT_ESCALATE].escalated;
}

void sm_heal_summarize(const sm_heal_tally *t, sm_heal_summary *out)
{
    uint32_t good = t->verified + t->preempted;
    out->judged = good + t->failed;
    out->success_rate = out->judged ? (double)good / out->judged : 0.0;
    out->detect_mean_s = t->verified ? t->detect_s / t->verified : 0.0;
    out->recover_mean_s = t->verified ? t->recover_s / t->verified : 0.0;
    unsigned recent = 0;
    for (uint32_t v = t->recent; v; v &= v - 1)
        recent++;
    double r = t->recent_n ? (double)recent / t->recent_n : out->success_rate;
    out->trend = t->recent_n < 4 || out->judged < 8 ? 0
                 : r > out->success_rate + 0.1 ? 1
                 : r < out->success_rate - 0.1 ? 3 : 2;
}
