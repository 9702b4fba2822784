/*
 * query.c - read-only questions to one swarm: select, plan, status
 * (query.h). Reads the swarm's inside (swarm_int.h), never writes it.
 */
#include "query.h"

#include <stdlib.h>

#include "swarm_int.h"

/* ---------------------------------------------------------- select */

/* Slot of task type `name` in the baselines, or SM_TYPE_NONE if the swarm
 * has not seen it (the baselines are not touched). */
static uint32_t type_slot(const sm_baselines *b, const char *name)
{
    const char *n = name ? name : "";
    for (uint32_t i = 0; i < SM_TASK_TYPES; i++)
        if (b->t[i].used && strcmp(b->t[i].name, n) == 0)
            return i;
    return SM_TYPE_NONE;
}

/* The ratio samples of an agent's finished, completed tasks (x 1000). */
static size_t ratios(const sm_agent_state *s, double *v, size_t cap)
{
    return sm_samples_values(&s->tasks_hdr, s->tasks, INT64_MIN,
                             TASK_DONE | TASK_OK | TASK_RATIO,
                             TASK_DONE | TASK_OK | TASK_RATIO, v, cap);
}

static void score_agent(const sm_agent_state *s, uint32_t slot,
                        sm_agent_score *o)
{
    memset(o, 0, sizeof *o);
    memcpy(o->agent, s->id, SM_ID_MAX);
    uint32_t done = sm_samples_count(&s->tasks_hdr, s->tasks, INT64_MIN,
                                     TASK_DONE, TASK_DONE);
    uint32_t ok = sm_samples_count(&s->tasks_hdr, s->tasks, INT64_MIN,
                                   TASK_DONE | TASK_OK, TASK_DONE | TASK_OK);
    o->samples = done;
    if (done == 0) {
        o->score = SM_SELECT_NO_HISTORY;
        return;
    }
    o->success = (double)ok / done;
    double v[SM_AGENT_TASKS];
    size_t n = ratios(s, v, SM_AGENT_TASKS);
    if (n == 0) {
        o->speed = 0.5;
    } else {
        double r = sm_stats_median(v, n) / 1000.0;
        o->speed = r <= 1.0 ? 1.0 : 1.0 / r;
    }
    unsigned busy = s->inflight < SM_SELECT_SLOTS ? s->inflight : SM_SELECT_SLOTS;
    o->capacity = (double)(SM_SELECT_SLOTS - busy) / SM_SELECT_SLOTS;
    o->affinity = slot != SM_TYPE_NONE && s->task_type == slot ? 1.0 : 0.0;
    o->score = SM_SELECT_W_SUCCESS * o->success + SM_SELECT_W_SPEED * o->speed +
               SM_SELECT_W_CAPACITY * o->capacity +
               SM_SELECT_W_AFFINITY * o->affinity;
}

static bool eligible(const sm_agent_state *s)
{
    return !(s->flags & AGENT_UNREGISTERED) &&
           !(s->fail & (FAIL_DOWN | FAIL_STUCK));
}

static bool better(const sm_agent_score *a, const sm_agent_score *b)
{
    if (a->score != b->score)
        return a->score > b->score;
    return strcmp(a->agent, b->agent) < 0;
}

/* Keeps out[0..*len) best first, at most cap: inserts sc where it goes. */
static void keep_best(sm_agent_score *out, size_t cap, size_t *len,
                      const sm_agent_score *sc)
{
    if (cap == 0)
        return;
    size_t i = *len;
    if (i == cap) {
        if (!better(sc, &out[cap - 1]))
            return;
        i = cap - 1;
    } else {
        (*len)++;
    }
    while (i > 0 && better(sc, &out[i - 1])) {
        out[i] = out[i - 1];
        i--;
    }
    out[i] = *sc;
}

size_t sm_query_select(const sm_swarm *sw, const char *task_type,
                       const char *const *candidates, size_t n,
                       sm_agent_score *out, size_t cap, size_t *eligible_n,
                       size_t *skipped, size_t *skipped_ids)
{
    size_t len = 0, ok = 0, skip = 0;
    uint32_t slot = type_slot(&sw->st.types, task_type);
    sm_agent_score sc;
    if (n == 0) {
        for (uint32_t k = 0; k < sw->ag.n; k++) {
            const sm_agent_state *s = &sw->ag.v[k].s;
            if (!eligible(s))
                continue;
            score_agent(s, slot, &sc);
            keep_best(out, cap, &len, &sc);
            ok++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const sm_agent *a = sm_id_len(candidates[i]) > 0
                                ? sm_agents_find(&sw->ag, candidates[i]) : NULL;
        if (a == NULL || !eligible(&a->s)) {
            if (skipped_ids)
                skipped_ids[skip] = i;
            skip++;
            continue;
        }
        score_agent(&a->s, slot, &sc);
        keep_best(out, cap, &len, &sc);
        ok++;
    }
    if (eligible_n)
        *eligible_n = ok;
    if (skipped)
        *skipped = skip;
    return len;
}

/* ------------------------------------------------------------ plan */

double sm_plan_weight(sm_priority p)
{
    switch (p) {
    case SM_PRIO_CRITICAL: return 10.0;
    case SM_PRIO_HIGH: return 5.0;
    case SM_PRIO_MEDIUM: return 2.0;
    case SM_PRIO_LOW: return 1.0;
    case SM_PRIO_BACKGROUND: return 0.5;
    }
    return 0.0;
}

/* Whether task a ranks before task b (weight per token, then input order). */
static bool ranks_before(const sm_plan_task *t, uint32_t a, uint32_t b)
{
    /* w_a / tok_a > w_b / tok_b, cross-multiplied: exact for 0 tokens */
    double l = sm_plan_weight(t[a].priority) * (double)t[b].tokens;
    double r = sm_plan_weight(t[b].priority) * (double)t[a].tokens;
    if (l != r)
        return l > r;
    return a < b;
}

/* Bottom-up merge sort of idx[0..n) through tmp (stable, no allocation). */
static void rank(const sm_plan_task *t, uint32_t *idx, uint32_t *tmp, size_t n)
{
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n;
            size_t hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = ranks_before(t, idx[j], idx[i]) ? idx[j++] : idx[i++];
            while (i < mid)
                tmp[k++] = idx[i++];
            while (j < hi)
                tmp[k++] = idx[j++];
        }
        memcpy(idx, tmp, n * sizeof *idx);
    }
}

sm_status sm_query_plan(const sm_swarm *sw, const sm_plan_task *tasks,
                        size_t n, bool aggressive, uint32_t *order,
                        sm_plan_fate *fate, sm_plan_result *res)
{
    if (!sw || !res || (n > 0 && (!tasks || !order || !fate)))
        return SM_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (sm_plan_weight(tasks[i].priority) == 0.0)
            return SM_ERR_INVALID;
    memset(res, 0, sizeof *res);
    const sm_gauge *g = &sw->st.gauges[G_TOKEN];
    res->budget_known = g->have && g->b > 0;
    if (res->budget_known) {
        res->remaining = g->b > g->a ? (uint64_t)(g->b - g->a) : 0;
        double share = aggressive ? SM_PLAN_SHARE_AGGRESSIVE : SM_PLAN_SHARE;
        res->limit = (uint64_t)((double)res->remaining * share);
    }
    /* fate doubles as the merge buffer: both are n 32-bit words */
    _Static_assert(sizeof(sm_plan_fate) == sizeof(uint32_t), "fate size");
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    rank(tasks, order, (uint32_t *)fate, n);
    for (size_t r = 0; r < n; r++) {
        uint32_t i = order[r];
        if (!res->budget_known) {
            fate[i] = SM_PLAN_NO_BUDGET;
        } else if (tasks[i].tokens <= res->limit - res->admitted_tokens) {
            fate[i] = SM_PLAN_ADMITTED;
            res->admitted_tokens += tasks[i].tokens;
        } else {
            fate[i] = SM_PLAN_OVER_BUDGET;
        }
    }
    return SM_OK;
}

/* --------------------------------------------------------- scaling */

size_t sm_query_idle_dynamic(const sm_swarm *sw, char (*ids)[SM_ID_MAX],
                             size_t cap)
{
    size_t n = 0, kept = 0;
    for (uint32_t k = 0; k < sw->ag.n; k++) {
        const sm_agent_state *s = &sw->ag.v[k].s;
        if (!(s->flags & AGENT_DYNAMIC) || !eligible(s) || s->inflight > 0 ||
            (s->fail & FAIL_TIMEOUT))
            continue;
        n++;
        if (cap == 0)
            continue;
        /* keep the cap smallest ids, sorted */
        size_t i;
        if (kept < cap)
            i = kept++;
        else if (strcmp(s->id, ids[cap - 1]) >= 0)
            continue;
        else
            i = cap - 1;        /* the largest kept id drops out */
        while (i > 0 && strcmp(s->id, ids[i - 1]) < 0) {
            memcpy(ids[i], ids[i - 1], SM_ID_MAX);
            i--;
        }
        memcpy(ids[i], s->id, SM_ID_MAX);
    }
    return n;
}

void sm_query_work_of(const sm_swarm *sw, int64_t since_ms, sm_query_work *out)
{
    memset(out, 0, sizeof *out);
    uint32_t inflight = 0, most = 0;
    int64_t now = sw->st.now_ms;
    for (uint32_t k = 0; k < sw->ag.n; k++) {
        const sm_agent_state *s = &sw->ag.v[k].s;
        uint32_t n = sm_samples_count(&s->tasks_hdr, s->tasks, since_ms,
                                      TASK_DONE, TASK_DONE);
        int64_t oldest = n > 0 ? sm_samples_at(&s->tasks_hdr, s->tasks, 0)->ts_ms
                               : since_ms;
        if (n > 0 && n == s->tasks_hdr.cap && oldest > since_ms && now > oldest)
            out->done += (double)n * (double)(now - since_ms) /
                         (double)(now - oldest);
        else
            out->done += n;
        if (!eligible(s) || s->hb_last_ms == 0)
            continue;
        inflight += s->inflight;
        if (s->inflight > most)
            most = s->inflight;
    }
    out->concurrency = most > 0 ? most : 1;
    out->busy = (double)inflight / out->concurrency;
}

bool sm_query_tokens_short(const sm_swarm *sw)
{
    return sw->st.fail[F_TOKEN].raised || sw->st.pred[F_TOKEN].raised ||
           sw->st.pat_pred[SM_FAIL_TOKEN_EXHAUSTION].raised;
}

/* ---------------------------------------------------------- status */

typedef struct collect {
    sm_open_item *out;
    size_t cap, n;
} collect;

static void add(collect *c, sm_open_kind kind, int type, const char *subject,
                int64_t at, int severity, double conf, int64_t eta)
{
    if (c->n < c->cap) {
        sm_open_item *o = &c->out[c->n];
        memset(o, 0, sizeof *o);
        o->kind = kind;
        o->type = type;
        if (subject)
            memcpy(o->subject, subject, SM_ID_MAX);
        o->subject[SM_ID_MAX - 1] = 0;
        o->raised_at_ms = at;
        o->severity = severity;
        o->confidence = conf;
        o->eta_ms = eta;
    }
    c->n++;
}

static const int fail_of[F_COUNT] = {
    [F_TOKEN] = SM_FAIL_TOKEN_EXHAUSTION,
    [F_MEMORY] = SM_FAIL_MEMORY_EXHAUSTION,
    [F_QUEUE] = SM_FAIL_QUEUE_OVERFLOW,
};

static void open_bottlenecks(const sm_swarm *sw, collect *c)
{
    const sm_swarm_state *st = &sw->st;
    for (int t = 1; t <= SM_BN_COUNT; t++)
        if (t != SM_BN_SLOW_AGENT && t != SM_BN_CONSENSUS_TIMEOUT &&
            st->ep[t].raised)
            add(c, SM_OPEN_BOTTLENECK, t, st->ep[t].subject,
                st->ep[t].raised_at_ms, (int)st->ep[t].severity, 0, 0);
    for (uint32_t k = sw->ag.raised_head; k != SM_AGENT_NONE;
         k = sw->ag.v[k].next) {
        const sm_agent_state *s = &sw->ag.v[k].s;
        add(c, SM_OPEN_BOTTLENECK, SM_BN_SLOW_AGENT, s->id, s->raised_at_ms,
            s->severity, 0, 0);
    }
    for (int g = 0; g < SM_GROUPS; g++)
        if (st->groups[g].used && st->groups[g].ep.raised)
            add(c, SM_OPEN_BOTTLENECK, SM_BN_CONSENSUS_TIMEOUT,
                st->groups[g].name, st->groups[g].ep.raised_at_ms,
                (int)st->groups[g].ep.severity, 0, 0);
}

static void open_failures(const sm_swarm *sw, collect *c)
{
    const sm_swarm_state *st = &sw->st;
    for (int f = 0; f < F_COUNT; f++)
        if (st->fail[f].raised)
            add(c, SM_OPEN_FAILURE, fail_of[f], st->fail[f].subject,
                st->fail[f].raised_at_ms, (int)st->fail[f].severity, 0, 0);
    for (uint32_t k = 0; k < sw->ag.n; k++) {
        const sm_agent_state *s = &sw->ag.v[k].s;
        if (s->fail & FAIL_DOWN)
            add(c, SM_OPEN_FAILURE, SM_FAIL_AGENT_DOWN, s->id, s->down_at_ms,
                SM_SEV_HIGH, 0, 0);
        if (s->fail & FAIL_STUCK)
            add(c, SM_OPEN_FAILURE, SM_FAIL_AGENT_STUCK, s->id, s->stuck_at_ms,
                SM_SEV_MEDIUM, 0, 0);
        if (s->fail & FAIL_TIMEOUT)
            add(c, SM_OPEN_FAILURE, SM_FAIL_TASK_TIMEOUT, s->id,
                s->timeout_at_ms, SM_SEV_LOW, 0, 0);
    }
    for (int g = 0; g < SM_GROUPS; g++)
        if (st->groups[g].used && st->groups[g].qep.raised)
            add(c, SM_OPEN_FAILURE, SM_FAIL_QUORUM_LOSS, st->groups[g].name,
                st->groups[g].qep.raised_at_ms,
                (int)st->groups[g].qep.severity, 0, 0);
}

static void open_predictions(const sm_swarm *sw, collect *c)
{
    const sm_swarm_state *st = &sw->st;
    for (int f = 0; f < F_COUNT; f++)
        if (st->pred[f].raised)
            add(c, SM_OPEN_PREDICTION, fail_of[f], st->pred[f].subject,
                st->pred[f].raised_at_ms, 0, st->pred[f].confidence,
                st->pred[f].eta_ms);
    for (int t = 1; t <= SM_FAIL_MAX; t++)
        if (st->pat_pred[t].raised)
            add(c, SM_OPEN_PREDICTION, t, st->pat_pred[t].subject,
                st->pat_pred[t].raised_at_ms, 0, st->pat_pred[t].confidence,
                st->pat_pred[t].eta_ms);
    for (uint32_t k = 0; k < sw->ag.n; k++) {
        const sm_agent_state *s = &sw->ag.v[k].s;
        if (s->pred_raised)
            add(c, SM_OPEN_PREDICTION, SM_FAIL_AGENT_DOWN, s->id, s->pred_at_ms,
                0, s->pred_conf, s->pred_eta_ms);
    }
}

size_t sm_query_status(const sm_swarm *sw, sm_open_item *out, size_t cap)
{
    collect c = {.out = out, .cap = out ? cap : 0};
    open_bottlenecks(sw, &c);
    open_failures(sw, &c);
    open_predictions(sw, &c);
    return c.n;
}
