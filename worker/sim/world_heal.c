/*
 * world_heal.c - the simulated coordinator (world.h, "The coordinator"):
 * HealingCommands taken at the world's current event time, carried out
 * after a seeded delay, answered with a HealingOutcome in the world's own
 * stream; the counters a judge needs.
 */
#include "world_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define ACT_RESTART SWARMMEDIC__V1__HEALING_COMMAND__ACTION__ACTION_AGENT_RESTART
#define ACT_RETRY SWARMMEDIC__V1__HEALING_COMMAND__ACTION__ACTION_TASK_RETRY
#define ACT_REBALANCE \
    SWARMMEDIC__V1__HEALING_COMMAND__ACTION__ACTION_RESOURCE_REBALANCE
#define ACT_QUORUM SWARMMEDIC__V1__HEALING_COMMAND__ACTION__ACTION_QUORUM_RECOVERY
#define ACT_ESCALATE SWARMMEDIC__V1__HEALING_COMMAND__ACTION__ACTION_ESCALATE
#define ACT_CUSTOM SWARMMEDIC__V1__HEALING_COMMAND__ACTION__ACTION_CUSTOM
/* The custom action this coordinator knows: worker/strategies.c's example
 * (stop assigning, let the task in flight finish, restart). */
#define DRAIN "drain_agent"
#define RES_DONE SWARMMEDIC__V1__HEALING_OUTCOME__RESULT__RESULT_DONE
#define RES_FAILED SWARMMEDIC__V1__HEALING_OUTCOME__RESULT__RESULT_FAILED
#define RES_REJECTED SWARMMEDIC__V1__HEALING_OUTCOME__RESULT__RESULT_REJECTED

void sm_wcoord_default(sm_wcoord *c)
{
    memset(c, 0, sizeof *c);
    c->delay_mean_s = 2.0;
    c->delay_jitter_s = 1.0;
}

static void copy_id(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

sm_status sm_wheal_decode(const void *data, size_t len, sm_wheal *out)
{
    if (data == NULL && len > 0)
        return SM_ERR_DECODE;
    Swarmmedic__V1__HealingCommand *m =
        swarmmedic__v1__healing_command__unpack(NULL, len, data);
    if (m == NULL || m->decision == NULL) {
        swarmmedic__v1__healing_command__free_unpacked(m, NULL);
        return SM_ERR_DECODE;
    }
    memset(out, 0, sizeof *out);
    copy_id(out->id, sizeof out->id, m->decision->decision_id);
    copy_id(out->swarm, sizeof out->swarm, m->decision->swarm);
    out->at_ms = m->decision->decided_at_ms;
    out->action = (int)m->action;
    copy_id(out->custom, sizeof out->custom, m->custom_action);
    copy_id(out->agent, sizeof out->agent, m->agent);
    copy_id(out->task_id, sizeof out->task_id, m->task_id);
    copy_id(out->target, sizeof out->target, m->target_agent);
    copy_id(out->subject, sizeof out->subject, m->subject);
    out->attempt = m->attempt;
    out->autonomy = (int)m->autonomy;
    for (size_t i = 0; i < m->n_steps && i < SM_WHEAL_STEPS; i++)
        copy_id(out->steps[out->n_steps++], SM_WHEAL_STEP, m->steps[i]);
    out->deadline_ms = m->deadline_ms;
    swarmmedic__v1__healing_command__free_unpacked(m, NULL);
    return SM_OK;
}

static uint32_t swarm_index(const sm_world *w, const char *id)
{
    for (uint32_t s = 0; s < w->cfg.n_swarms; s++)
        if (strcmp(w->cfg.swarms[s].id, id) == 0)
            return s;
    return UINT32_MAX;
}

/* "<prefix><n>" -> n, when n < limit. */
static bool index_of(const char *name, char prefix, uint32_t limit,
                     uint32_t *out)
{
    if (name[0] != prefix || name[1] < '0' || name[1] > '9')
        return false;
    char *end;
    unsigned long v = strtoul(name + 1, &end, 10);
    if (*end != 0 || v >= limit)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Registers up to n dynamic agents within the quota; how many. */
static uint32_t spawn(sm_world *w, uint32_t s, uint32_t n, int64_t t)
{
    wswarm_st *st = &w->sw[s];
    const sm_wswarm *c = &w->cfg.swarms[s];
    uint32_t coming = 0, added = 0;
    for (uint32_t a = c->agents + c->reserve; a < st->n_total; a++)
        coming += st->ag[a].live == 2;
    for (uint32_t a = c->agents + c->reserve; a < st->n_total && added < n;
         a++) {
        if (st->registered + coming >= st->quota)
            break;
        if (st->ag[a].live != 0)
            continue;
        st->ag[a].live = 2;
        coming++;
        added++;
        if (!sm_w_at(w, W_REG, s, a, t + 1 + added))
            return added;
    }
    return added;
}

/* Takes agent a's task in flight away: CANCELLED now, its pending end
 * void, a copy queued again (attempt + 1). */
static bool take_task(sm_world *w, uint32_t s, uint32_t a, int64_t t)
{
    wswarm_st *st = &w->sw[s];
    wagent *ag = &st->ag[a];
    witem c = ag->cur;
    wvoid v = {c.task, a, ag->epoch};
    if (!sm_w_ring_push(&st->voids, &v))
        return sm_w_nomem(w);
    witem cancel = c;
    cancel.what = W_CANCEL;
    cancel.ts = t;
    witem again = c;
    again.attempt = (uint8_t)((c.attempt > 1 ? c.attempt : 1) + 1);
    again.ts = t;
    ag->cur_dur = 0;
    if (!sm_w_push(w, cancel))
        return false;
    if (!sm_w_ring_push(&st->queue[again.prio - 1], &again))
        return sm_w_nomem(w);
    return true;
}

static bool quorum_lost(const sm_world *w, uint32_t s, uint32_t g,
                        int64_t now)
{
    const wswarm_st *st = &w->sw[s];
    for (size_t i = 0; i < w->cfg.n_faults; i++) {
        const sm_wfault *f = &w->cfg.faults[i];
        if (f->swarm == s && f->type == SM_WF_QUORUM_LOSS &&
            sm_w_has_group(f, g) && sm_w_intensity(w, f, now) > 0 &&
            !(st->group_healed[g] > 0 &&
              st->group_healed[g] >= w->cfg.start_ms + f->onset_ms))
            return true;
    }
    return false;
}

/* Whether agent m is being restarted, or about to be (a restart taken
 * and not yet carried out). */
static bool restarting(const sm_world *w, uint32_t s, uint32_t m)
{
    const wagent *ag = &w->sw[s].ag[m];
    if ((ag->live == 2 && ag->healed_at > 0) || ag->drain > 0)
        return true;
    for (size_t i = 0; i < w->n_pend; i++) {
        const hpend *p = &w->pend[i];
        uint32_t a;
        if (p->swarm == s && !p->applied && p->result == RES_DONE &&
            (p->cmd.action == ACT_RESTART || p->cmd.action == ACT_CUSTOM) &&
            index_of(p->cmd.agent, 'a', w->sw[s].n_total, &a) && a == m)
            return true;
    }
    return false;
}

/* Counts a restart of a live group member the group cannot spare. */
static void judge_quorum(sm_world *w, uint32_t s, const sm_wheal *cmd,
                         int64_t now)
{
    const sm_wswarm *c = &w->cfg.swarms[s];
    const wswarm_st *st = &w->sw[s];
    uint32_t a;
    if (c->groups == 0 || !index_of(cmd->agent, 'a', st->n_static, &a))
        return;
    uint32_t g = a / c->group_size;
    const wagent *ag = &st->ag[a];
    if (g >= c->groups || ag->live != 1 || ag->down)
        return;
    uint32_t quorum = c->group_size / 2 + 1;
    uint32_t parts = quorum_lost(w, s, g, now) ? quorum - 1 : c->group_size;
    for (uint32_t m = g * c->group_size;
         m < (g + 1) * c->group_size && m < st->n_static; m++)
        if (m != a && parts > 0 && restarting(w, s, m))
            parts--;
    if (parts <= quorum)
        w->hs.below_quorum++;
}

static void refuse(hpend *p, const char *fmt, const char *what)
    __attribute__((format(printf, 2, 0)));

static void refuse(hpend *p, const char *fmt, const char *what)
{
    p->result = RES_REJECTED;
    snprintf(p->detail, sizeof p->detail, fmt, what);
}

/* The registered agent a command names, or false (refused, p says why). */
static bool agent_of(sm_world *w, uint32_t s, hpend *p, uint32_t *a)
{
    if (!index_of(p->cmd.agent, 'a', w->sw[s].n_total, a)) {
        refuse(p, "no agent \"%s\"", p->cmd.agent);
        return false;
    }
    if (w->sw[s].ag[*a].live != 1) {
        refuse(p, "agent %s is not registered", p->cmd.agent);
        return false;
    }
    return true;
}

/* Agent a unregisters at t and registers again, healthy, a little later;
 * its task in flight (if any) is cancelled and queued again. */
static bool restart_agent(sm_world *w, uint32_t s, uint32_t a, int64_t t)
{
    wswarm_st *st = &w->sw[s];
    wagent *ag = &st->ag[a];
    if (!ag->down && ag->inflight > 0 && ag->cur_dur > 0 &&
        !take_task(w, s, a, t))
        return false;
    ag->epoch++;
    ag->inflight = 0;
    ag->stuck = 0;
    ag->down = 0;
    ag->progress = ag->shown = 0;
    ag->live = 2;
    ag->drain = 0;
    ag->healed_at = t;
    st->registered--;
    return sm_w_at(w, W_UNREG, s, a, t) &&
           sm_w_at(w, W_REG, s, a, t + SM_WCOORD_RESTART_MS) &&
           sm_w_dispatch(w, s, t);
}

/* agent_restart: unregistered now, registered again healthy. */
static bool heal_restart(sm_world *w, uint32_t s, hpend *p, int64_t t)
{
    uint32_t a;
    if (!agent_of(w, s, p, &a))
        return true;
    snprintf(p->detail, sizeof p->detail, "%s restarted", p->cmd.agent);
    return restart_agent(w, s, a, t);
}

/* drain_agent: no new work for the agent; once its task in flight ends it
 * is restarted (at once when it has none). *later: the outcome waits for
 * that. */
static bool heal_drain(sm_world *w, uint32_t s, hpend *p, int64_t t,
                       bool *later)
{
    uint32_t a;
    if (!agent_of(w, s, p, &a))
        return true;
    wagent *ag = &w->sw[s].ag[a];
    snprintf(p->detail, sizeof p->detail, "%s drained and restarted",
             p->cmd.agent);
    if (ag->down || ag->inflight == 0)
        return restart_agent(w, s, a, t);
    ag->drain = (uint32_t)(p - w->pend) + 1;
    *later = true;
    return true;
}

static bool push_outcome(sm_world *w, size_t cmd, int64_t at)
{
    witem o;
    memset(&o, 0, sizeof o);
    o.what = W_OUTCOME;
    o.swarm = w->pend[cmd].swarm;
    o.task = cmd;
    o.ts = at;
    return sm_w_push(w, o);
}

bool sm_w_drained(sm_world *w, uint32_t s, uint32_t a, int64_t t)
{
    size_t cmd = w->sw[s].ag[a].drain - 1;
    return restart_agent(w, s, a, t) &&
           push_outcome(w, cmd, t + SM_WCOORD_RESTART_MS + 1);
}

/* task_retry: the task queued again, for target_agent if it is free. */
static bool heal_retry(sm_world *w, uint32_t s, hpend *p, int64_t t)
{
    wswarm_st *st = &w->sw[s];
    const sm_wswarm *c = &w->cfg.swarms[s];
    size_t pre = strlen(c->id);
    uint64_t n = 0;
    const char *id = p->cmd.task_id;
    if (strncmp(id, c->id, pre) == 0 && id[pre] == '-' && id[pre + 1] == 't')
        n = strtoull(id + pre + 2, NULL, 10);
    witem again;
    bool found = false;
    for (uint32_t a = 0; n > 0 && !found && a < st->n_total; a++) {
        wagent *ag = &st->ag[a];
        if (ag->live == 1 && !ag->down && ag->cur_dur > 0 &&
            ag->cur.task == n) {
            again = ag->cur;
            if (!take_task(w, s, a, t))
                return false;
            /* the copy take_task queued is the retry; the agent is free */
            ring *q = &st->queue[again.prio - 1];
            q->n--;
            ag->inflight--;
            ag->stuck = 0;
            if (!sm_w_free_slot(w, s, a))
                return false;
            found = true;
        }
    }
    size_t kept = st->n_recent < SM_WCOORD_RECENT ? st->n_recent
                                                  : SM_WCOORD_RECENT;
    for (size_t i = 0; n > 0 && !found && i < kept; i++) {
        const witem *r = &st->recent[(st->n_recent - 1 - i) % SM_WCOORD_RECENT];
        if (r->task == n) {
            again = *r;
            found = true;
        }
    }
    if (!found) {
        refuse(p, "task \"%s\" is neither running nor recently ended",
               p->cmd.task_id);
        return true;
    }
    again.attempt = (uint8_t)((again.attempt > 1 ? again.attempt : 1) + 1);
    again.ts = t;
    uint32_t a;
    snprintf(p->detail, sizeof p->detail, "%s queued again", p->cmd.task_id);
    if (index_of(p->cmd.target, 'a', st->n_total, &a) &&
        st->ag[a].live == 1 && !st->ag[a].down &&
        st->ag[a].inflight < c->concurrency) {
        st->ag[a].inflight++;
        again.what = W_ASSIGN;
        again.agent = a;
        again.epoch = st->ag[a].epoch;
        again.ts = t + 1;
        return sm_w_push(w, again);
    }
    if (!sm_w_ring_push(&st->queue[again.prio - 1], &again))
        return sm_w_nomem(w);
    return sm_w_dispatch(w, s, t);
}

/* Ends the swarm faults of type ty begun by t. */
static void end_faults(sm_world *w, uint32_t s, sm_wfault_type ty, int64_t t)
{
    for (size_t i = 0; i < w->cfg.n_faults; i++) {
        const sm_wfault *f = &w->cfg.faults[i];
        if (f->swarm == s && f->type == ty &&
            w->cfg.start_ms + f->onset_ms <= t && w->fault_healed[i] == 0)
            w->fault_healed[i] = t;
    }
}

/* "name=N" -> N (0 when absent or bad). */
static uint32_t step_count(const char *step, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(step, name, n) != 0 || step[n] != '=')
        return 0;
    unsigned long v = strtoul(step + n + 1, NULL, 10);
    return v > 1000 ? 1000 : (uint32_t)v;
}

static bool heal_rebalance(sm_world *w, uint32_t s, hpend *p, int64_t t)
{
    wswarm_st *st = &w->sw[s];
    size_t did = 0;
    for (size_t i = 0; i < p->cmd.n_steps; i++) {
        const char *step = p->cmd.steps[i];
        uint32_t k;
        if (strcmp(step, "pause_low_priority") == 0) {
            st->paused_until = t + SM_WCOORD_PAUSE_MS;
        } else if (strcmp(step, "reallocate_budget") == 0) {
            end_faults(w, s, SM_WF_TOKEN_BURN, t);
            if (st->budget < 2.0 * st->used)
                st->budget = 2.0 * st->used;
        } else if (strcmp(step, "free_memory") == 0) {
            end_faults(w, s, SM_WF_MEMORY_LEAK, t);
            st->leak = 0;
        } else if ((k = step_count(step, "scale_up")) > 0) {
            spawn(w, s, k, t);
            if (w->status != SM_OK)
                return false;
        } else {
            continue;
        }
        did++;
    }
    if (did == 0) {
        refuse(p, "no step this coordinator knows (%s)",
               p->cmd.n_steps ? p->cmd.steps[0] : "none given");
        return true;
    }
    snprintf(p->detail, sizeof p->detail, "%zu of %zu steps done", did,
             p->cmd.n_steps);
    return true;
}

static bool heal_quorum(sm_world *w, uint32_t s, hpend *p, int64_t t)
{
    wswarm_st *st = &w->sw[s];
    uint32_t g, want = 0;
    if (!index_of(p->cmd.subject, 'g', w->cfg.swarms[s].groups, &g)) {
        refuse(p, "no consensus group \"%s\"", p->cmd.subject);
        return true;
    }
    for (size_t i = 0; i < p->cmd.n_steps; i++)
        want += step_count(p->cmd.steps[i], "spawn_agents");
    uint32_t got = spawn(w, s, want, t);
    if (w->status != SM_OK)
        return false;
    st->group_healed[g] = t;
    snprintf(p->detail, sizeof p->detail, "%u of %u agents spawned for %s",
             got, want, p->cmd.subject);
    return true;
}

/* The coordinator finishes a command: its effect (DONE), then the
 * outcome (after the restart's re-registration). */
bool sm_w_on_heal(sm_world *w, const witem *it)
{
    hpend *p = &w->pend[it->task];
    uint32_t s = p->swarm;
    int64_t t = it->ts, out_at = t;
    bool ok = true, later = false;
    p->applied = true;
    if (p->result == RES_DONE) {
        switch (p->cmd.action) {
        case ACT_RESTART:
            ok = heal_restart(w, s, p, t);
            if (p->result == RES_DONE)
                out_at = t + SM_WCOORD_RESTART_MS + 1;
            break;
        case ACT_RETRY:
            ok = heal_retry(w, s, p, t);
            break;
        case ACT_REBALANCE:
            ok = heal_rebalance(w, s, p, t);
            break;
        case ACT_QUORUM:
            ok = heal_quorum(w, s, p, t);
            break;
        case ACT_CUSTOM:            /* drain_agent, the one it knows */
            ok = heal_drain(w, s, p, t, &later);
            if (p->result == RES_DONE && !later)
                out_at = t + SM_WCOORD_RESTART_MS + 1;
            break;
        default:
            break;
        }
    }
    if (!ok)
        return false;
    w->hs.done += p->result == RES_DONE;
    w->hs.failed += p->result == RES_FAILED;
    w->hs.rejected += p->result == RES_REJECTED;
    return later || push_outcome(w, it->task, out_at);
}

int sm_w_on_outcome(sm_world *w, const witem *it, sm_sim_msg *out)
{
    hpend *p = &w->pend[it->task];
    Swarmmedic__V1__HealingOutcome m = SWARMMEDIC__V1__HEALING_OUTCOME__INIT;
    m.ts_ms = it->ts;
    m.command_id = p->cmd.id;
    m.result = (Swarmmedic__V1__HealingOutcome__Result)p->result;
    m.detail = p->detail;
    sm_w_subject(w, p->swarm, "outcome", p->cmd.id);
    out->kind = SM_SIM_OUTCOME;
    return sm_w_pack(w, &m.base, out) ? 1 : -1;
}

static hpend *remember_command(sm_world *w, const sm_wheal *cmd, uint32_t s)
{
    if (w->n_pend == w->cap_pend) {
        size_t cap = w->cap_pend ? w->cap_pend * 2 : 16;
        hpend *v = realloc(w->pend, cap * sizeof *v);
        if (v == NULL)
            return NULL;
        w->pend = v;
        w->cap_pend = cap;
    }
    hpend *p = &w->pend[w->n_pend++];
    memset(p, 0, sizeof *p);
    p->cmd = *cmd;
    p->swarm = s;
    return p;
}

sm_status sm_world_heal(sm_world *w, const sm_wheal *cmd)
{
    if (w == NULL || cmd == NULL)
        return SM_ERR_INVALID;
    w->hs.received++;
    int act = cmd->action > 0 && cmd->action < SM_WHEAL_ACTIONS ? cmd->action
                                                               : 0;
    w->hs.by_action[act]++;
    for (size_t i = 0; i < w->n_pend; i++)
        if (strcmp(w->pend[i].cmd.id, cmd->id) == 0) {
            w->hs.duplicates++;
            return SM_OK;
        }
    uint32_t s = swarm_index(w, cmd->swarm);
    if (s == UINT32_MAX) {
        w->hs.unknown_swarm++;
        return SM_OK;
    }
    hpend *p = remember_command(w, cmd, s);
    if (p == NULL)
        return SM_ERR_NOMEM;
    const sm_wcoord *c = &w->cfg.coord;
    if (act == ACT_ESCALATE) {
        w->hs.escalations++;
        return SM_OK;
    }
    if (cmd->autonomy != SWARMMEDIC__V1__AUTONOMY__AUTONOMY_ACT &&
        !(cmd->autonomy == SWARMMEDIC__V1__AUTONOMY__AUTONOMY_RECOMMEND &&
          c->take_recommend)) {
        w->hs.advice++;
        return SM_OK;
    }
    int64_t now = cmd->at_ms > w->now ? cmd->at_ms : w->now;
    if (act == ACT_RESTART || (act == ACT_CUSTOM && !strcmp(cmd->custom, DRAIN)))
        judge_quorum(w, s, cmd, now);     /* a drain ends in a restart */
    double u = sm_rng_uni(&w->crng);
    double d = c->delay_mean_s +
               sm_rng_range(&w->crng, -c->delay_jitter_s, c->delay_jitter_s);
    bool known = (act >= ACT_RESTART && act <= ACT_QUORUM) ||
                 (act == ACT_CUSTOM && strcmp(cmd->custom, DRAIN) == 0);
    if (!known)
        refuse(p, "unknown action \"%s\"",
               cmd->custom[0] ? cmd->custom : "unspecified");
    else if (u < c->reject_rate)
        refuse(p, "%s", "the coordinator declined it");
    else if (u < c->reject_rate + c->fail_rate) {
        p->result = RES_FAILED;
        snprintf(p->detail, sizeof p->detail, "carrying it out failed");
    } else
        p->result = RES_DONE;
    witem it;
    memset(&it, 0, sizeof it);
    it.what = W_HEAL;
    it.swarm = s;
    it.task = (uint64_t)(p - w->pend);
    it.ts = now + (d < 0.05 ? 50 : (int64_t)(d * 1000.0));
    return sm_w_push(w, it) ? SM_OK : SM_ERR_NOMEM;
}

void sm_world_heal_stats_of(const sm_world *w, sm_world_heal_stats *out)
{
    if (out == NULL)
        return;
    if (w == NULL)
        memset(out, 0, sizeof *out);
    else
        *out = w->hs;
}
