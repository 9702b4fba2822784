/*
 * check_coord.c - the simulated coordinator (worker/sim/world.h,
 * sm_world_heal): each action changes the running world as a real
 * coordinator's would, each against a control world that got no command
 * (same seed, same faults); the outcome rates; determinism; the duplicate,
 * advice and below-quorum counters.
 */
#include <check.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "simgen.h"
#include "support.h"
#include "swarm_medic.pb-c.h"
#include "watch.h"
#include "world.h"

#define T0 SM_SIM_DEFAULT_START_MS
#define AT(s) (T0 + (int64_t)((s) * 1000))

/* ---- worlds ------------------------------------------------------------ */

/* One swarm of 12 agents (groups g0 = a0..a4, g1 = a5..a9), 10 minutes. */
static void base(sm_world_config *c)
{
    sm_world_config_default(c);
    c->seed = 7;
    c->duration_ms = 600000;
    c->swarms[0].agents = 12;
    c->swarms[0].burst_every_s = 0;
}

static sm_wfault *fault(sm_world_config *c, sm_wfault_type type, uint32_t agent,
                        double onset_s, double end_s, double magnitude)
{
    sm_wfault *f = &c->faults[c->n_faults++];
    memset(f, 0, sizeof *f);
    f->type = type;
    f->onset_ms = (int64_t)(onset_s * 1000);
    f->end_ms = (int64_t)(end_s * 1000);
    f->magnitude = magnitude;
    if (type != SM_WF_QUORUM_LOSS && type != SM_WF_TOKEN_BURN &&
        type != SM_WF_MEMORY_LEAK) {
        f->agents[0] = agent;
        f->n_agents = 1;
    } else if (type == SM_WF_QUORUM_LOSS) {
        f->groups[0] = agent;
        f->n_groups = 1;
    }
    return f;
}

static sm_world *make(const sm_world_config *c)
{
    sm_world *w = NULL;
    char why[256] = "";
    ck_assert_msg(sm_world_config_validate(c, why, sizeof why) == SM_OK, "%s",
                  why);
    ck_assert_int_eq(sm_world_create(&w, c), SM_OK);
    return w;
}

static sm_wheal command(const char *id, int action, const char *agent)
{
    sm_wheal h;
    memset(&h, 0, sizeof h);
    snprintf(h.id, sizeof h.id, "%s", id);
    snprintf(h.swarm, sizeof h.swarm, "s0");
    snprintf(h.agent, sizeof h.agent, "%s", agent);
    h.action = action;
    h.autonomy = SWARMMEDIC__V1__AUTONOMY__AUTONOMY_ACT;
    h.attempt = 1;
    return h;
}

static void step(sm_wheal *h, const char *s)
{
    snprintf(h->steps[h->n_steps++], SM_WHEAL_STEP, "%s", s);
}

/* ---- watching the stream ------------------------------------------------ */

/* What one agent, one group and the coordinator did from `after` on. */
typedef struct obs {
    const char *agent;
    const char *task;           /* a task to follow, or NULL */
    int64_t after;
    int completed, failed, cancelled, heartbeats, registered, unregistered;
    double dur_sum;
    int64_t registered_at;
    int task_queued, task_attempt;
    char task_agent[SM_WORLD_ID];
    int rounds, rounds_quorum;  /* of g0, participants >= quorum */
    int outcomes, done, failed_o, rejected;
    char detail[128];
    int64_t outcome_at;
    char failed_task[64];       /* the first FAILED task of the agent */
    int dynamic_regs;
} obs;

static void see_task(obs *o, const sm_sim_msg *m)
{
    Swarmmedic__V1__TaskEvent *t =
        swarmmedic__v1__task_event__unpack(NULL, m->len, m->payload);
    ck_assert_ptr_nonnull(t);
    if (o->task && strcmp(t->task_id, o->task) == 0 &&
        t->kind == SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_QUEUED) {
        o->task_queued++;
        o->task_attempt = (int)t->attempt;
        snprintf(o->task_agent, sizeof o->task_agent, "%s", t->agent);
    }
    if (o->agent && strcmp(t->agent, o->agent) == 0) {
        switch (t->kind) {
        case SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_COMPLETED:
            o->completed++;
            o->dur_sum += t->duration_ms;
            break;
        case SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_FAILED:
            o->failed++;
            if (!o->failed_task[0])
                snprintf(o->failed_task, sizeof o->failed_task, "%s",
                         t->task_id);
            break;
        case SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_CANCELLED:
            o->cancelled++;
            break;
        default:
            break;
        }
    }
    swarmmedic__v1__task_event__free_unpacked(t, NULL);
}

static void see(obs *o, const sm_sim_msg *m)
{
    if (m->ts_ms < o->after)
        return;
    switch (m->kind) {
    case SM_SIM_TASK:
        see_task(o, m);
        break;
    case SM_SIM_HEARTBEAT: {
        Swarmmedic__V1__Heartbeat *h =
            swarmmedic__v1__heartbeat__unpack(NULL, m->len, m->payload);
        ck_assert_ptr_nonnull(h);
        o->heartbeats += o->agent && strcmp(h->agent, o->agent) == 0;
        swarmmedic__v1__heartbeat__free_unpacked(h, NULL);
        break;
    }
    case SM_SIM_AGENT: {
        Swarmmedic__V1__AgentLifecycle *a =
            swarmmedic__v1__agent_lifecycle__unpack(NULL, m->len, m->payload);
        ck_assert_ptr_nonnull(a);
        bool reg = a->kind ==
                   SWARMMEDIC__V1__AGENT_LIFECYCLE__KIND__KIND_REGISTERED;
        if (o->agent && strcmp(a->agent, o->agent) == 0) {
            o->registered += reg;
            o->unregistered += !reg;
            if (reg && !o->registered_at)
                o->registered_at = m->ts_ms;
        }
        o->dynamic_regs += reg && a->dynamic;
        swarmmedic__v1__agent_lifecycle__free_unpacked(a, NULL);
        break;
    }
    case SM_SIM_CONSENSUS: {
        Swarmmedic__V1__ConsensusRound *r =
            swarmmedic__v1__consensus_round__unpack(NULL, m->len, m->payload);
        ck_assert_ptr_nonnull(r);
        if (strcmp(r->group, "g0") == 0) {
            o->rounds++;
            o->rounds_quorum += r->participants >= r->quorum;
        }
        swarmmedic__v1__consensus_round__free_unpacked(r, NULL);
        break;
    }
    case SM_SIM_OUTCOME: {
        Swarmmedic__V1__HealingOutcome *h =
            swarmmedic__v1__healing_outcome__unpack(NULL, m->len, m->payload);
        ck_assert_ptr_nonnull(h);
        char want[96];
        snprintf(want, sizeof want, "swarm.s0.outcome.%s", h->command_id);
        ck_assert_str_eq(m->subject, want);
        ck_assert_int_eq(h->ts_ms, m->ts_ms);
        o->outcomes++;
        o->done += h->result ==
                   SWARMMEDIC__V1__HEALING_OUTCOME__RESULT__RESULT_DONE;
        o->failed_o += h->result ==
                       SWARMMEDIC__V1__HEALING_OUTCOME__RESULT__RESULT_FAILED;
        o->rejected += h->result ==
                       SWARMMEDIC__V1__HEALING_OUTCOME__RESULT__RESULT_REJECTED;
        snprintf(o->detail, sizeof o->detail, "%s", h->detail);
        o->outcome_at = m->ts_ms;
        swarmmedic__v1__healing_outcome__free_unpacked(h, NULL);
        break;
    }
    default:
        break;
    }
}

/* Plays w up to the first message at or after t (seen too); NULL o: none
 * watched. Returns false when the run ended first. */
static bool play_to(sm_world *w, int64_t t, obs *o)
{
    sm_sim_msg m;
    while (sm_world_next(w, &m)) {
        if (o)
            see(o, &m);
        if (m.ts_ms >= t)
            return true;
    }
    ck_assert_int_eq(sm_world_status(w), SM_OK);
    return false;
}

static void play_out(sm_world *w, obs *o)
{
    play_to(w, INT64_MAX, o);
}

/* ---- actions ------------------------------------------------------------ */

/* A stuck agent is restarted: its hung task is cancelled and queued
 * again, it unregisters, registers ~2 s later and completes tasks again;
 * its twin without the command completes none. */
START_TEST(restart_unsticks_agent)
{
    sm_world_config c;
    base(&c);
    fault(&c, SM_WF_STUCK_AGENT, 2, 60, 0, 0);
    sm_world *healed = make(&c), *control = make(&c);
    obs h = {.agent = "a2", .after = AT(200)}, k = h;
    play_to(healed, AT(200), &h);
    play_to(control, AT(200), &k);
    sm_wheal r = command("00000000000000a1", 1, "a2");
    ck_assert_int_eq(sm_world_heal(healed, &r), SM_OK);
    play_out(healed, &h);
    play_out(control, &k);
    ck_assert_int_eq(k.completed, 0);
    ck_assert_int_eq(k.unregistered, 0);
    ck_assert_int_eq(h.unregistered, 1);
    ck_assert_int_eq(h.registered, 1);
    ck_assert_int_eq(h.cancelled, 1);
    ck_assert_int_gt(h.completed, 5);
    ck_assert_int_eq(h.outcomes, 1);
    ck_assert_int_eq(h.done, 1);
    ck_assert_int_ge(h.outcome_at, h.registered_at);
    /* delay 2 +- 1 s, then the restart's 2 s */
    ck_assert_int_ge(h.registered_at, AT(200) + 1000 + SM_WCOORD_RESTART_MS);
    ck_assert_int_le(h.registered_at, AT(201) + 3000 + SM_WCOORD_RESTART_MS);
    sm_world_heal_stats st;
    sm_world_heal_stats_of(healed, &st);
    ck_assert_uint_eq(st.received, 1);
    ck_assert_uint_eq(st.done, 1);
    ck_assert_uint_eq(st.by_action[1], 1);
    sm_world_destroy(healed);
    sm_world_destroy(control);
}
END_TEST

/* A 6x slowed agent comes back at normal speed; the control stays slow. */
START_TEST(restart_cures_slow_agent)
{
    sm_world_config c;
    base(&c);
    fault(&c, SM_WF_SLOW_AGENT, 1, 30, 0, 6.0);
    sm_world *healed = make(&c), *control = make(&c);
    play_to(healed, AT(120), NULL);
    play_to(control, AT(120), NULL);
    sm_wheal r = command("00000000000000b1", 1, "a1");
    ck_assert_int_eq(sm_world_heal(healed, &r), SM_OK);
    obs h = {.agent = "a1", .after = AT(240)}, k = h;
    play_out(healed, &h);
    play_out(control, &k);
    ck_assert_int_gt(h.completed, 8);
    ck_assert_int_gt(k.completed, 2);
    double fast = h.dur_sum / h.completed, slow = k.dur_sum / k.completed;
    ck_assert_msg(fast * 3 < slow, "restarted %.0f ms vs slowed %.0f ms", fast,
                  slow);
    ck_assert_int_gt(h.completed, 2 * k.completed);
    sm_world_destroy(healed);
    sm_world_destroy(control);
}
END_TEST

/* A crashed agent restarted early beats its scheduled revival: heartbeats
 * come back at once, and the revival at the fault's end does not
 * register it a second time. */
START_TEST(restart_revives_dead_agent)
{
    sm_world_config c;
    base(&c);
    fault(&c, SM_WF_CRASH_RESTART, 3, 60, 500, 0);
    sm_world *healed = make(&c), *control = make(&c);
    play_to(healed, AT(120), NULL);
    play_to(control, AT(120), NULL);
    sm_wheal r = command("00000000000000c1", 1, "a3");
    ck_assert_int_eq(sm_world_heal(healed, &r), SM_OK);
    obs h = {.agent = "a3", .after = AT(120)}, k = h;
    play_to(healed, AT(490), &h);
    play_to(control, AT(490), &k);
    ck_assert_int_eq(k.heartbeats, 0);
    ck_assert_int_gt(h.heartbeats, 50);
    ck_assert_int_eq(h.registered, 1);
    obs h2 = {.agent = "a3", .after = AT(490)}, k2 = h2;
    play_out(healed, &h2);
    play_out(control, &k2);
    ck_assert_int_eq(k2.registered, 1);     /* the control's revival */
    ck_assert_int_eq(h2.registered, 0);     /* already back */
    sm_world_destroy(healed);
    sm_world_destroy(control);
}
END_TEST

/* A task the failing agent failed is retried on a healthy agent: QUEUED
 * there with attempt 2. */
START_TEST(retry_moves_task)
{
    sm_world_config c;
    base(&c);
    fault(&c, SM_WF_FAILING_AGENT, 4, 30, 0, 1.0);
    sm_world *w = make(&c);
    obs o = {.agent = "a4", .after = AT(30)};
    sm_sim_msg m;
    while (!o.failed_task[0] && sm_world_next(w, &m))
        see(&o, &m);
    ck_assert_str_ne(o.failed_task, "");
    char task[64];
    snprintf(task, sizeof task, "%s", o.failed_task);
    sm_wheal r = command("00000000000000d1", 2, "a4");
    snprintf(r.task_id, sizeof r.task_id, "%s", task);
    snprintf(r.target, sizeof r.target, "a11");
    ck_assert_int_eq(sm_world_heal(w, &r), SM_OK);
    obs t = {.task = task, .after = m.ts_ms};
    play_out(w, &t);
    ck_assert_int_eq(t.task_queued, 1);
    ck_assert_int_eq(t.task_attempt, 2);
    ck_assert_int_eq(t.done, 1);
    /* a11 takes it when free, else the next free agent does */
    ck_assert_str_ne(t.task_agent, "a4");
    sm_world_destroy(w);

    /* An unknown task is rejected, with a reason. */
    w = make(&c);
    play_to(w, AT(60), NULL);
    snprintf(r.id, sizeof r.id, "00000000000000d2");
    snprintf(r.task_id, sizeof r.task_id, "s0-t999999");
    ck_assert_int_eq(sm_world_heal(w, &r), SM_OK);
    obs u = {.after = AT(60)};
    play_out(w, &u);
    ck_assert_int_eq(u.rejected, 1);
    ck_assert_ptr_nonnull(strstr(u.detail, "s0-t999999"));
    sm_world_destroy(w);
}
END_TEST

/* reallocate_budget ends a burn and frees budget; free_memory reclaims a
 * leak; the control keeps both. */
START_TEST(rebalance_frees_budget_and_memory)
{
    sm_world_config c;
    base(&c);
    fault(&c, SM_WF_TOKEN_BURN, 0, 20, 0, 4.0);
    fault(&c, SM_WF_MEMORY_LEAK, 0, 20, 0, 600.0);
    sm_world *healed = make(&c), *control = make(&c);
    play_to(healed, AT(240), NULL);
    play_to(control, AT(240), NULL);
    sm_world_gauges g0;
    sm_world_gauges_of(healed, 0, &g0);
    ck_assert_double_gt(g0.token_ratio, 0.6);
    ck_assert_double_gt(g0.memory_ratio, 0.6);
    sm_wheal r = command("00000000000000e1", 3, "");
    snprintf(r.subject, sizeof r.subject, "scheduler");
    step(&r, "reallocate_budget");
    step(&r, "free_memory");
    ck_assert_int_eq(sm_world_heal(healed, &r), SM_OK);
    obs o = {.after = AT(240)};
    play_to(healed, AT(400), &o);
    play_to(control, AT(400), NULL);
    sm_world_gauges gh, gk;
    sm_world_gauges_of(healed, 0, &gh);
    sm_world_gauges_of(control, 0, &gk);
    ck_assert_int_eq(o.done, 1);
    ck_assert_double_lt(gh.token_ratio, 0.6);
    ck_assert_double_gt(gk.token_ratio, 0.9);
    ck_assert_double_lt(gh.memory_ratio, 0.5);
    ck_assert_double_gt(gk.memory_ratio, 0.8);
    sm_world_destroy(healed);
    sm_world_destroy(control);
}
END_TEST

/* pause_low_priority holds LOW and BACKGROUND back; scale_up=N registers
 * N dynamic agents. */
START_TEST(rebalance_pauses_and_scales)
{
    sm_world_config c;
    base(&c);
    sm_world *w = make(&c);
    play_to(w, AT(60), NULL);
    sm_wheal r = command("00000000000000e2", 3, "");
    step(&r, "pause_low_priority");
    step(&r, "scale_up=3");
    step(&r, "juggle");             /* unknown steps are skipped */
    ck_assert_int_eq(sm_world_heal(w, &r), SM_OK);
    obs o = {.after = AT(60)};
    play_to(w, AT(70), &o);
    ck_assert_int_eq(o.done, 1);
    ck_assert_int_ge(o.dynamic_regs, 3);
    ck_assert_ptr_nonnull(strstr(o.detail, "2 of 3"));
    /* Low-priority work waits: QUEUED events of LOW/BACKGROUND tasks stop
     * for the pause and come back after it. */
    int low_in = 0, low_after = 0;
    sm_sim_msg m;
    while (sm_world_next(w, &m)) {
        if (m.kind != SM_SIM_TASK)
            continue;
        Swarmmedic__V1__TaskEvent *t =
            swarmmedic__v1__task_event__unpack(NULL, m.len, m.payload);
        bool low = t->priority >= SWARMMEDIC__V1__PRIORITY__PRIORITY_LOW &&
                   t->kind == SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_QUEUED;
        if (low && m.ts_ms > AT(80) && m.ts_ms < AT(60) + SM_WCOORD_PAUSE_MS)
            low_in++;
        if (low && m.ts_ms > AT(60) + SM_WCOORD_PAUSE_MS)
            low_after++;
        swarmmedic__v1__task_event__free_unpacked(t, NULL);
    }
    ck_assert_int_eq(low_in, 0);
    ck_assert_int_gt(low_after, 20);

    /* No step it knows: rejected. */
    sm_world_destroy(w);
    w = make(&c);
    play_to(w, AT(60), NULL);
    sm_wheal bad = command("00000000000000e3", 3, "");
    step(&bad, "juggle");
    ck_assert_int_eq(sm_world_heal(w, &bad), SM_OK);
    obs b = {.after = AT(60)};
    play_out(w, &b);
    ck_assert_int_eq(b.rejected, 1);
    sm_world_destroy(w);
}
END_TEST

/* Quorum recovery on g0: agents join, rounds regain quorum. */
START_TEST(quorum_recovery_restores_rounds)
{
    sm_world_config c;
    base(&c);
    fault(&c, SM_WF_QUORUM_LOSS, 0, 30, 0, 0);
    sm_world *healed = make(&c), *control = make(&c);
    play_to(healed, AT(120), NULL);
    play_to(control, AT(120), NULL);
    sm_wheal r = command("00000000000000f1", 4, "");
    snprintf(r.subject, sizeof r.subject, "g0");
    step(&r, "spawn_agents=2");
    ck_assert_int_eq(sm_world_heal(healed, &r), SM_OK);
    obs first = {.after = AT(120)};
    play_to(healed, AT(130), &first);
    play_to(control, AT(130), NULL);
    ck_assert_int_eq(first.done, 1);
    ck_assert_int_ge(first.dynamic_regs, 2);
    obs h = {.after = AT(130)}, k = h;
    play_out(healed, &h);
    play_out(control, &k);
    ck_assert_int_gt(h.rounds, 100);
    ck_assert_int_eq(h.rounds_quorum, h.rounds);
    ck_assert_int_eq(k.rounds_quorum, 0);
    sm_world_destroy(healed);
    sm_world_destroy(control);
}
END_TEST

/* drain_agent: the slowed agent takes no new task, finishes the one in
 * flight (COMPLETED, not CANCELLED), then restarts and comes back at
 * normal speed; the outcome follows the re-registration. */
START_TEST(drain_agent_finishes_then_restarts)
{
    sm_world_config c;
    base(&c);
    fault(&c, SM_WF_SLOW_AGENT, 1, 30, 0, 6.0);
    sm_world *w = make(&c);
    /* to a moment a1 is busy */
    sm_sim_msg m;
    bool running = false;
    while (!running && sm_world_next(w, &m)) {
        if (m.ts_ms < AT(100) || m.kind != SM_SIM_TASK)
            continue;
        Swarmmedic__V1__TaskEvent *t =
            swarmmedic__v1__task_event__unpack(NULL, m.len, m.payload);
        running = strcmp(t->agent, "a1") == 0 &&
                  t->kind == SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_STARTED;
        swarmmedic__v1__task_event__free_unpacked(t, NULL);
    }
    ck_assert(running);
    int64_t from = m.ts_ms;
    sm_wheal d = command("0000000000000601", 5, "a1");
    snprintf(d.custom, sizeof d.custom, "drain_agent");
    ck_assert_int_eq(sm_world_heal(w, &d), SM_OK);
    /* Until it unregisters: no QUEUED for a1, its task ends COMPLETED
     * or FAILED, never CANCELLED. */
    int queued = 0, ended = 0, cancelled = 0;
    int64_t unreg = 0, reg = 0, outcome = 0;
    while (!outcome && sm_world_next(w, &m)) {
        if (m.kind == SM_SIM_TASK) {
            Swarmmedic__V1__TaskEvent *t =
                swarmmedic__v1__task_event__unpack(NULL, m.len, m.payload);
            if (!strcmp(t->agent, "a1") && !unreg) {
                queued += t->kind == SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_QUEUED;
                ended += t->kind == SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_COMPLETED ||
                         t->kind == SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_FAILED;
                cancelled += t->kind == SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_CANCELLED;
            }
            swarmmedic__v1__task_event__free_unpacked(t, NULL);
        } else if (m.kind == SM_SIM_AGENT && !strcmp(m.subject, "swarm.s0.agent.a1")) {
            *(unreg ? &reg : &unreg) = m.ts_ms;
        } else if (m.kind == SM_SIM_OUTCOME) {
            outcome = m.ts_ms;
            ck_assert_str_eq(m.subject, "swarm.s0.outcome.0000000000000601");
        }
    }
    ck_assert_int_gt(unreg, from + 3000);       /* it waited for the task */
    ck_assert_int_eq(queued, 0);
    ck_assert_int_eq(ended, 1);
    ck_assert_int_eq(cancelled, 0);
    ck_assert_int_eq(reg, unreg + SM_WCOORD_RESTART_MS);
    ck_assert_int_ge(outcome, reg);
    obs after = {.agent = "a1", .after = outcome};
    play_out(w, &after);
    ck_assert_int_gt(after.completed, 10);
    ck_assert_msg(after.dur_sum / after.completed < 20000, "still slow: %.0f ms",
                  after.dur_sum / after.completed);
    sm_world_destroy(w);
}
END_TEST

/* ---- rates, advice, duplicates, quorum guard ---------------------------- */

/* Every command of a run at fail 0.3, reject 0.2: about those shares,
 * and a FAILED or REJECTED restart leaves the stuck agent stuck. */
START_TEST(outcome_rates)
{
    sm_world_config c;
    base(&c);
    c.coord.fail_rate = 0.3;
    c.coord.reject_rate = 0.2;
    sm_world *w = make(&c);
    obs o = {.after = 0};
    for (int i = 0; i < 300; i++) {
        play_to(w, AT(1 + i), &o);
        char id[24];
        snprintf(id, sizeof id, "%016x", 0x1000 + i);
        sm_wheal r = command(id, 3, "");
        step(&r, "pause_low_priority");
        ck_assert_int_eq(sm_world_heal(w, &r), SM_OK);
    }
    play_out(w, &o);
    ck_assert_int_eq(o.outcomes, 300);
    ck_assert_int_eq(o.done + o.failed_o + o.rejected, 300);
    ck_assert_int_gt(o.failed_o, 60);
    ck_assert_int_lt(o.failed_o, 120);
    ck_assert_int_gt(o.rejected, 35);
    ck_assert_int_lt(o.rejected, 85);
    sm_world_heal_stats st;
    sm_world_heal_stats_of(w, &st);
    ck_assert_uint_eq(st.failed, (uint64_t)o.failed_o);
    ck_assert_uint_eq(st.rejected, (uint64_t)o.rejected);
    sm_world_destroy(w);

    for (int k = 0; k < 2; k++) {
        base(&c);
        c.coord.fail_rate = k == 0 ? 1.0 : 0.0;
        c.coord.reject_rate = k == 1 ? 1.0 : 0.0;
        fault(&c, SM_WF_STUCK_AGENT, 2, 60, 0, 0);
        w = make(&c);
        play_to(w, AT(200), NULL);
        sm_wheal r = command("00000000000000a9", 1, "a2");
        ck_assert_int_eq(sm_world_heal(w, &r), SM_OK);
        obs s = {.agent = "a2", .after = AT(200)};
        play_out(w, &s);
        ck_assert_int_eq(k == 0 ? s.failed_o : s.rejected, 1);
        ck_assert_int_eq(s.completed, 0);
        ck_assert_int_eq(s.unregistered, 0);
        sm_world_destroy(w);
    }
}
END_TEST

/* RECOMMEND is advice unless the coordinator takes it; OBSERVE never;
 * an escalation is counted, not answered; an unknown custom action is
 * rejected with its name. */
START_TEST(advice_escalation_custom)
{
    for (int take = 0; take < 2; take++) {
        sm_world_config c;
        base(&c);
        c.coord.take_recommend = take;
        sm_world *w = make(&c);
        play_to(w, AT(60), NULL);
        sm_wheal rec = command("0000000000000101", 3, "");
        step(&rec, "pause_low_priority");
        rec.autonomy = SWARMMEDIC__V1__AUTONOMY__AUTONOMY_RECOMMEND;
        sm_wheal see_only = rec;
        snprintf(see_only.id, sizeof see_only.id, "0000000000000102");
        see_only.autonomy = SWARMMEDIC__V1__AUTONOMY__AUTONOMY_OBSERVE;
        sm_wheal esc = command("0000000000000103", 6, "a1");
        sm_wheal custom = command("0000000000000104", 5, "a1");
        snprintf(custom.custom, sizeof custom.custom, "reboot_datacenter");
        ck_assert_int_eq(sm_world_heal(w, &rec), SM_OK);
        ck_assert_int_eq(sm_world_heal(w, &see_only), SM_OK);
        ck_assert_int_eq(sm_world_heal(w, &esc), SM_OK);
        ck_assert_int_eq(sm_world_heal(w, &custom), SM_OK);
        obs o = {.after = AT(60)};
        play_out(w, &o);
        ck_assert_int_eq(o.outcomes, 1 + take);
        ck_assert_int_eq(o.rejected, 1);
        ck_assert_int_eq(o.done, take);
        sm_world_heal_stats st;
        sm_world_heal_stats_of(w, &st);
        ck_assert_uint_eq(st.received, 4);
        ck_assert_uint_eq(st.advice, 2 - (uint64_t)take);
        ck_assert_uint_eq(st.escalations, 1);
        ck_assert_uint_eq(st.by_action[6], 1);
        ck_assert_uint_eq(st.by_action[5], 1);
        sm_world_destroy(w);
    }
    /* The rejection names the action. */
    sm_world_config c;
    base(&c);
    sm_world *w = make(&c);
    play_to(w, AT(60), NULL);
    sm_wheal custom = command("0000000000000105", 5, "a1");
    snprintf(custom.custom, sizeof custom.custom, "reboot_datacenter");
    sm_world_heal(w, &custom);
    obs o = {.after = AT(60)};
    play_out(w, &o);
    ck_assert_ptr_nonnull(strstr(o.detail, "reboot_datacenter"));
    sm_world_destroy(w);
}
END_TEST

/* The same id twice: carried out once, answered once, counted. */
START_TEST(duplicates_counted_not_repeated)
{
    sm_world_config c;
    base(&c);
    fault(&c, SM_WF_STUCK_AGENT, 2, 60, 0, 0);
    sm_world *w = make(&c);
    play_to(w, AT(200), NULL);
    sm_wheal r = command("00000000000000aa", 1, "a2");
    ck_assert_int_eq(sm_world_heal(w, &r), SM_OK);
    obs o = {.agent = "a2", .after = AT(200)};
    play_to(w, AT(230), &o);
    ck_assert_int_eq(sm_world_heal(w, &r), SM_OK);
    play_out(w, &o);
    ck_assert_int_eq(o.outcomes, 1);
    ck_assert_int_eq(o.unregistered, 1);
    sm_world_heal_stats st;
    sm_world_heal_stats_of(w, &st);
    ck_assert_uint_eq(st.received, 2);
    ck_assert_uint_eq(st.duplicates, 1);
    sm_world_destroy(w);
}
END_TEST

/* Restarting a live member of a group that lost quorum is an action below
 * quorum; a member of a healthy group, or an agent in no group, is not;
 * two members of a 5-group restarted at once leave 3 = quorum: the
 * second one counts. */
START_TEST(below_quorum_counted)
{
    sm_world_config c;
    base(&c);
    fault(&c, SM_WF_QUORUM_LOSS, 0, 30, 0, 0);
    sm_world *w = make(&c);
    play_to(w, AT(120), NULL);
    sm_world_heal_stats st;
    const char *agents[] = {"a6", "a11", "a1"};
    uint64_t want[] = {0, 0, 1};
    for (int i = 0; i < 3; i++) {
        char id[24];
        snprintf(id, sizeof id, "%016x", 0x300 + i);
        sm_wheal r = command(id, 1, agents[i]);
        ck_assert_int_eq(sm_world_heal(w, &r), SM_OK);
        sm_world_heal_stats_of(w, &st);
        ck_assert_uint_eq(st.below_quorum, want[i]);
    }
    sm_world_destroy(w);

    /* g1 = a5..a9, quorum 3: a5 and a6 taken out leave 3, none to spare
     * for a7; once a5 and a6 are back, a7 may go. */
    base(&c);
    w = make(&c);
    play_to(w, AT(120), NULL);
    const char *g1[] = {"a5", "a6", "a7"};
    for (int i = 0; i < 3; i++) {
        char id[24];
        snprintf(id, sizeof id, "%016x", 0x400 + i);
        sm_wheal r = command(id, 1, g1[i]);
        ck_assert_int_eq(sm_world_heal(w, &r), SM_OK);
        sm_world_heal_stats_of(w, &st);
        ck_assert_uint_eq(st.below_quorum, i == 2 ? 1 : 0);
    }
    play_to(w, AT(200), NULL);
    sm_wheal again = command("0000000000000410", 1, "a8");
    ck_assert_int_eq(sm_world_heal(w, &again), SM_OK);
    sm_world_heal_stats_of(w, &st);
    ck_assert_uint_eq(st.below_quorum, 1);
    sm_world_destroy(w);
}
END_TEST

/* ---- determinism -------------------------------------------------------- */

/* A digest of a whole run with commands at fixed points. */
static uint64_t run_digest(uint64_t seed, double fail)
{
    sm_world_config c;
    base(&c);
    c.seed = seed;
    c.coord.fail_rate = fail;
    fault(&c, SM_WF_STUCK_AGENT, 2, 60, 0, 0);
    fault(&c, SM_WF_QUORUM_LOSS, 1, 30, 0, 0);
    sm_world *w = make(&c);
    uint64_t h = 1469598103934665603ULL;
    sm_sim_msg m;
    int k = 0;
    while (sm_world_next(w, &m)) {
        for (size_t i = 0; i < m.len; i++)
            h = (h ^ m.payload[i]) * 1099511628211ULL;
        for (const char *p = m.subject; *p; p++)
            h = (h ^ (uint8_t)*p) * 1099511628211ULL;
        if (k == 0 && m.ts_ms >= AT(150)) {
            sm_wheal r = command("0000000000000501", 1, "a2");
            sm_world_heal(w, &r);
            sm_wheal q = command("0000000000000502", 4, "");
            snprintf(q.subject, sizeof q.subject, "g1");
            step(&q, "spawn_agents=2");
            sm_world_heal(w, &q);
            k = 1;
        }
    }
    ck_assert_int_eq(sm_world_status(w), SM_OK);
    sm_world_destroy(w);
    return h;
}

START_TEST(same_seed_same_commands_same_bytes)
{
    uint64_t a = run_digest(11, 0.5), b = run_digest(11, 0.5);
    ck_assert_uint_eq(a, b);
    ck_assert_uint_ne(a, run_digest(12, 0.5));
    /* the outcomes, and so the world, differ */
    ck_assert_uint_ne(run_digest(11, 0.0), run_digest(11, 1.0));
}
END_TEST

/* ---- the wire ----------------------------------------------------------- */

START_TEST(decode_command)
{
    Swarmmedic__V1__Decision d = SWARMMEDIC__V1__DECISION__INIT;
    d.decision_id = "0123456789abcdef";
    d.swarm = "s3";
    d.decided_at_ms = AT(42);
    Swarmmedic__V1__HealingCommand m = SWARMMEDIC__V1__HEALING_COMMAND__INIT;
    char *steps[] = {"unregister", "reregister", "restore_state"};
    m.decision = &d;
    m.action = SWARMMEDIC__V1__HEALING_COMMAND__ACTION__ACTION_AGENT_RESTART;
    m.agent = "a9";
    m.subject = "a9";
    m.autonomy = SWARMMEDIC__V1__AUTONOMY__AUTONOMY_ACT;
    m.attempt = 2;
    m.n_steps = 3;
    m.steps = steps;
    m.deadline_ms = AT(102);
    uint8_t buf[512];
    size_t n = swarmmedic__v1__healing_command__pack(&m, buf);
    sm_wheal h;
    ck_assert_int_eq(sm_wheal_decode(buf, n, &h), SM_OK);
    ck_assert_str_eq(h.id, "0123456789abcdef");
    ck_assert_str_eq(h.swarm, "s3");
    ck_assert_int_eq(h.at_ms, AT(42));
    ck_assert_int_eq(h.action, 1);
    ck_assert_str_eq(h.agent, "a9");
    ck_assert_uint_eq(h.n_steps, 3);
    ck_assert_str_eq(h.steps[2], "restore_state");
    ck_assert_uint_eq(h.attempt, 2);
    ck_assert_int_eq(h.deadline_ms, AT(102));
    m.decision = NULL;
    n = swarmmedic__v1__healing_command__pack(&m, buf);
    ck_assert_int_eq(sm_wheal_decode(buf, n, &h), SM_ERR_DECODE);
    ck_assert_int_eq(sm_wheal_decode("\xff\xff\xff", 3, &h), SM_ERR_DECODE);
}
END_TEST

START_TEST(config_checked)
{
    sm_world_config c;
    base(&c);
    char why[256];
    c.coord.fail_rate = 0.7;
    c.coord.reject_rate = 0.4;
    ck_assert_int_eq(sm_world_config_validate(&c, why, sizeof why),
                     SM_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(why, "coordinator"));
    base(&c);
    c.coord.delay_jitter_s = c.coord.delay_mean_s + 1;
    ck_assert_int_eq(sm_world_config_validate(&c, why, sizeof why),
                     SM_ERR_CONFIG);
}
END_TEST

/* ---- the demo's lines (swarm-medic watch) -------------------------------- */

START_TEST(watch_prints_the_loop)
{
    Swarmmedic__V1__Decision d = SWARMMEDIC__V1__DECISION__INIT;
    d.decision_id = "00000000000000c1";
    d.swarm = "s0";
    d.decided_at_ms = AT(30);
    Swarmmedic__V1__HealingCommand c = SWARMMEDIC__V1__HEALING_COMMAND__INIT;
    char *steps[] = {"unregister", "reregister"};
    c.decision = &d;
    c.action = SWARMMEDIC__V1__HEALING_COMMAND__ACTION__ACTION_AGENT_RESTART;
    c.failure_type = SWARMMEDIC__V1__FAILURE_TYPE__FAILURE_TYPE_AGENT_STUCK;
    c.agent = "a2";
    c.attempt = 1;
    c.autonomy = SWARMMEDIC__V1__AUTONOMY__AUTONOMY_ACT;
    c.deadline_ms = AT(90);
    c.n_steps = 2;
    c.steps = steps;
    uint8_t buf[512];
    char line[1024];
    size_t n = swarmmedic__v1__healing_command__pack(&c, buf);
    ck_assert_int_eq(sm_watch_format_heal(buf, n, line, sizeof line), SM_OK);
    ck_assert_ptr_nonnull(strstr(line, "HEAL"));
    ck_assert_ptr_nonnull(strstr(line, "agent_restart"));
    ck_assert_ptr_nonnull(strstr(line, "agent_stuck"));
    ck_assert_ptr_nonnull(strstr(line, " act "));
    ck_assert_ptr_nonnull(strstr(line, "deadline=+60s"));
    c.deadline_ms = 0;                  /* an escalation has none */
    n = swarmmedic__v1__healing_command__pack(&c, buf);
    ck_assert_int_eq(sm_watch_format_heal(buf, n, line, sizeof line), SM_OK);
    ck_assert_ptr_null(strstr(line, "deadline"));
    c.deadline_ms = AT(90);
    n = swarmmedic__v1__healing_command__pack(&c, buf);
    ck_assert_int_eq(sm_watch_format_heal(buf, n, line, sizeof line), SM_OK);
    ck_assert_ptr_nonnull(strstr(line, "steps=unregister,reregister"));

    Swarmmedic__V1__HealingOutcome o = SWARMMEDIC__V1__HEALING_OUTCOME__INIT;
    o.ts_ms = AT(34);
    o.command_id = "00000000000000c1";
    o.result = SWARMMEDIC__V1__HEALING_OUTCOME__RESULT__RESULT_DONE;
    o.detail = "a2 restarted";
    n = swarmmedic__v1__healing_outcome__pack(&o, buf);
    ck_assert_int_eq(sm_watch_format_outcome("swarm.s0.outcome.00000000000000c1",
                                             buf, n, line, sizeof line), SM_OK);
    ck_assert_ptr_nonnull(strstr(line, "s0     OUTCOME  DONE"));
    ck_assert_ptr_nonnull(strstr(line, "a2 restarted"));

    Swarmmedic__V1__HealingVerdict v = SWARMMEDIC__V1__HEALING_VERDICT__INIT;
    v.decision = &d;
    v.command_id = "00000000000000c1";
    v.action = c.action;
    v.verdict = SWARMMEDIC__V1__HEALING_VERDICT__VERDICT__VERDICT_VERIFIED;
    v.reason = "failure_resolved";
    v.first_evidence_ms = AT(10);
    v.recovered_at_ms = AT(40);
    n = swarmmedic__v1__healing_verdict__pack(&v, buf);
    ck_assert_int_eq(sm_watch_format_verdict(buf, n, line, sizeof line), SM_OK);
    ck_assert_ptr_nonnull(strstr(line, "VERDICT"));
    ck_assert_ptr_nonnull(strstr(line, "VERIFIED"));
    ck_assert_ptr_nonnull(strstr(line, "recovered 30.0s"));
    ck_assert_int_eq(sm_watch_format_verdict("\xff", 1, line, sizeof line),
                     SM_ERR_DECODE);
}
END_TEST

/* ---- the coordinator on a real bus (swarm-sim --coordinator) ------------- */

static natsMsg *next_on(natsSubscription *sub, int timeout_ms)
{
    natsMsg *m = NULL;
    return natsSubscription_NextMsg(&m, sub, timeout_ms) == NATS_OK ? m : NULL;
}

/* swarm-sim plays a scenario with --coordinator under a worker's
 * output_prefix of its own (ops.medic): a HealingCommand published on
 * ops.medic.s0.heal.agent_restart is carried out (a2 unregisters and
 * registers again) and answered on swarm.s0.outcome.<id>; one on the
 * default prefix is not its to take. */
START_TEST(coordinator_on_the_bus)
{
    char dir[256], path[512], log[512], sim[512];
    sm_test_tmpdir(dir, sizeof dir, "coord");
    snprintf(path, sizeof path, "%s/loop.json", dir);
    snprintf(log, sizeof log, "%s/sim.log", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"name\": \"loop\", \"duration_s\": 50, \"seed\": 3,"
          " \"swarms\": [{\"agents\": 12}],"
          " \"faults\": [{\"type\": \"stuck_agent\", \"agents\": [\"a2\"],"
          " \"onset_s\": 5}],"
          " \"coordinator\": {\"delay_s\": 0.5, \"jitter_s\": 0.2}}", f);
    fclose(f);
    sm_test_server srv;
    sm_test_server_start(&srv, 0, NULL);
    natsConnection *nc = NULL;
    natsSubscription *outcomes = NULL, *a2 = NULL, *any = NULL;
    ck_assert_int_eq(natsConnection_ConnectTo(&nc, srv.url), NATS_OK);
    ck_assert_int_eq(natsConnection_SubscribeSync(&outcomes, nc,
                                                  "swarm.s0.outcome.*"), NATS_OK);
    ck_assert_int_eq(natsConnection_SubscribeSync(&a2, nc, "swarm.s0.agent.a2"),
                     NATS_OK);
    ck_assert_int_eq(natsConnection_SubscribeSync(&any, nc, "swarm.s0.resource.>"),
                     NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(nc, 2000), NATS_OK);
    sm_test_bin(sim, sizeof sim, "swarm-sim");
    const char *argv[] = {sim, "--scenario", path, "--url", srv.url,
                          "--coordinator", "--output-prefix", "ops.medic",
                          "--pace", "10", "--quiet", NULL};
    pid_t pid = sm_test_spawn(argv, log, false);
    /* A message it published after subscribing: it listens now. */
    natsMsg *first = next_on(any, 10000);
    ck_assert_msg(first != NULL, "swarm-sim published nothing");
    natsMsg_Destroy(first);

    Swarmmedic__V1__Decision d = SWARMMEDIC__V1__DECISION__INIT;
    d.decision_id = "00000000000000b5";
    d.swarm = "s0";
    Swarmmedic__V1__HealingCommand c = SWARMMEDIC__V1__HEALING_COMMAND__INIT;
    c.decision = &d;
    c.action = SWARMMEDIC__V1__HEALING_COMMAND__ACTION__ACTION_AGENT_RESTART;
    c.agent = "a2";
    c.autonomy = SWARMMEDIC__V1__AUTONOMY__AUTONOMY_ACT;
    uint8_t buf[256];
    /* first one on the default prefix (not listened to: its outcome would
     * come first), then the one on its own */
    d.decision_id = "00000000000000a1";
    size_t n = swarmmedic__v1__healing_command__pack(&c, buf);
    ck_assert_int_eq(natsConnection_Publish(nc, "medic.s0.heal.agent_restart",
                                            buf, (int)n), NATS_OK);
    d.decision_id = "00000000000000b5";
    n = swarmmedic__v1__healing_command__pack(&c, buf);
    natsMsg *cmd = NULL;
    ck_assert_int_eq(natsMsg_Create(&cmd, "ops.medic.s0.heal.agent_restart", NULL,
                                    (const char *)buf, (int)n), NATS_OK);
    natsMsgHeader_Set(cmd, "Nats-Msg-Id", d.decision_id);
    ck_assert_int_eq(natsConnection_PublishMsg(nc, cmd), NATS_OK);
    natsMsg_Destroy(cmd);
    ck_assert_int_eq(natsConnection_FlushTimeout(nc, 2000), NATS_OK);

    natsMsg *out = next_on(outcomes, 15000);
    ck_assert_msg(out != NULL, "no HealingOutcome");
    ck_assert_str_eq(natsMsg_GetSubject(out), "swarm.s0.outcome.00000000000000b5");
    Swarmmedic__V1__HealingOutcome *o = swarmmedic__v1__healing_outcome__unpack(
        NULL, (size_t)natsMsg_GetDataLength(out),
        (const uint8_t *)natsMsg_GetData(out));
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(o->command_id, "00000000000000b5");
    ck_assert_int_eq(o->result, SWARMMEDIC__V1__HEALING_OUTCOME__RESULT__RESULT_DONE);
    swarmmedic__v1__healing_outcome__free_unpacked(o, NULL);
    natsMsg_Destroy(out);
    int unreg = 0, reg = 0;
    for (natsMsg *m; (m = next_on(a2, 100)) != NULL; natsMsg_Destroy(m)) {
        Swarmmedic__V1__AgentLifecycle *l = swarmmedic__v1__agent_lifecycle__unpack(
            NULL, (size_t)natsMsg_GetDataLength(m),
            (const uint8_t *)natsMsg_GetData(m));
        ck_assert_ptr_nonnull(l);
        bool r = l->kind == SWARMMEDIC__V1__AGENT_LIFECYCLE__KIND__KIND_REGISTERED;
        reg += r;
        unreg += !r;
        swarmmedic__v1__agent_lifecycle__free_unpacked(l, NULL);
    }
    ck_assert_int_eq(unreg, 1);
    ck_assert_int_eq(reg, 2);           /* at the start, and back */
    ck_assert_int_eq(sm_test_wait(pid, 30000), 0);
    natsSubscription_Destroy(outcomes);
    natsSubscription_Destroy(a2);
    natsSubscription_Destroy(any);
    natsConnection_Destroy(nc);
    sm_test_server_stop(&srv);
    sm_test_rmtree(dir);
}
END_TEST

/* ---- the closed loop on a real bus: worker + swarm-sim --coordinator ---- */

/* A nats-server, a worker with a store, a listener on medic.s0.heal.> and
 * medic.s0.verdict.>, and the scenario file. */
typedef struct loop_rig {
    char dir[256], scenario[400], store[400], wlog[400], slog[400];
    sm_test_server srv;
    natsConnection *nc;
    natsSubscription *out;      /* medic.s0.>: commands and verdicts in
                                   the order the worker sent them */
    pid_t worker, sim;
    int starts;
} loop_rig;

/* One HealingCommand or HealingVerdict seen. */
typedef struct seen_heal {
    bool verdict;
    char id[24], answers[24];
    int action, failure, result;        /* result: Verdict */
    uint32_t attempt;
} seen_heal;

typedef struct loop_log {
    seen_heal v[256];
    size_t n;
} loop_log;

static void loop_open(loop_rig *r, const char *scenario_json)
{
    memset(r, 0, sizeof *r);
    sm_test_tmpdir(r->dir, sizeof r->dir, "loop");
    snprintf(r->scenario, sizeof r->scenario, "%s/loop.json", r->dir);
    snprintf(r->store, sizeof r->store, "%s/data", r->dir);
    snprintf(r->slog, sizeof r->slog, "%s/sim.log", r->dir);
    FILE *f = fopen(r->scenario, "w");
    ck_assert_ptr_nonnull(f);
    fputs(scenario_json, f);
    fclose(f);
    sm_test_server_start(&r->srv, 0, NULL);
    ck_assert_int_eq(natsConnection_ConnectTo(&r->nc, r->srv.url), NATS_OK);
    /* one subscription: with one for commands and one for verdicts, a
     * verdict and the command sent right after it could be read in the
     * other order, and counted as a storm */
    ck_assert_int_eq(natsConnection_SubscribeSync(&r->out, r->nc, "medic.s0.>"),
                     NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(r->nc, 2000), NATS_OK);
}

static void loop_worker(loop_rig *r)
{
    char bin[512], url[128], store[440];
    sm_test_bin(bin, sizeof bin, "swarm-medic");
    snprintf(url, sizeof url, "--nats-url=%s", r->srv.url);
    snprintf(store, sizeof store, "--store-dir=%s", r->store);
    snprintf(r->wlog, sizeof r->wlog, "%s/worker-%d.log", r->dir, ++r->starts);
    const char *argv[] = {bin, url, store, "--stats-interval=0",
                          "--commit-interval=20ms", NULL};
    r->worker = sm_test_spawn(argv, r->wlog, true);
    ck_assert_msg(sm_test_wait_for_text(r->wlog, "event=subscribed", 30000),
                  "worker did not subscribe");
}

/* swarm-sim --coordinator at pace `pace`, with extra flags. */
static void loop_sim(loop_rig *r, const char *pace, const char *const *extra)
{
    char bin[512];
    sm_test_bin(bin, sizeof bin, "swarm-sim");
    const char *argv[24] = {bin, "--scenario", r->scenario, "--url",
                            r->srv.url, "--coordinator", "--pace", pace,
                            "--quiet"};
    int n = 9;
    for (int i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    r->sim = sm_test_spawn(argv, r->slog, false);
}

/* Takes the commands and verdicts that arrived within wait_ms, in order. */
static void loop_drain(loop_rig *r, loop_log *lg, int wait_ms)
{
    static const char heal[] = "medic.s0.heal.", verdict[] = "medic.s0.verdict.";
    for (int idle = 0; idle < 2;) {
        bool got = false;
        for (;;) {
            natsMsg *m = next_on(r->out, idle ? wait_ms / 2 : 20);
            if (m == NULL)
                break;
            const char *subj = natsMsg_GetSubject(m);
            int i = strncmp(subj, heal, sizeof heal - 1) == 0       ? 0
                    : strncmp(subj, verdict, sizeof verdict - 1) == 0 ? 1
                                                                      : -1;
            if (i < 0) {
                natsMsg_Destroy(m);     /* bottlenecks, failures, ... */
                continue;
            }
            got = true;
            ck_assert_uint_lt(lg->n, 256);
            seen_heal *s = &lg->v[lg->n++];
            memset(s, 0, sizeof *s);
            s->verdict = i == 1;
            const uint8_t *d = (const uint8_t *)natsMsg_GetData(m);
            size_t len = (size_t)natsMsg_GetDataLength(m);
            if (i == 0) {
                Swarmmedic__V1__HealingCommand *c =
                    swarmmedic__v1__healing_command__unpack(NULL, len, d);
                ck_assert_ptr_nonnull(c);
                snprintf(s->id, sizeof s->id, "%s", c->decision->decision_id);
                snprintf(s->answers, sizeof s->answers, "%s", c->answers);
                s->action = (int)c->action;
                s->failure = (int)c->failure_type;
                s->attempt = c->attempt;
                swarmmedic__v1__healing_command__free_unpacked(c, NULL);
            } else {
                Swarmmedic__V1__HealingVerdict *v =
                    swarmmedic__v1__healing_verdict__unpack(NULL, len, d);
                ck_assert_ptr_nonnull(v);
                snprintf(s->id, sizeof s->id, "%s", v->command_id);
                snprintf(s->answers, sizeof s->answers, "%s", v->answers);
                s->action = (int)v->action;
                s->failure = (int)v->failure_type;
                s->result = (int)v->verdict;
                swarmmedic__v1__healing_verdict__free_unpacked(v, NULL);
            }
            natsMsg_Destroy(m);
        }
        idle = got ? 0 : idle + 1;
    }
}

/* Drains until the simulator exits, then a little more. */
static void loop_run_out(loop_rig *r, loop_log *lg, int timeout_ms)
{
    int waited = 0;
    while (sm_test_wait(r->sim, 0) < 0 && waited < timeout_ms) {
        loop_drain(r, lg, 200);
        waited += 200;
    }
    ck_assert_msg(waited < timeout_ms, "swarm-sim did not finish");
    loop_drain(r, lg, 1500);
}

static void loop_close(loop_rig *r)
{
    if (r->worker > 0) {
        kill(r->worker, SIGTERM);
        sm_test_wait(r->worker, 10000);
    }
    natsSubscription_Destroy(r->out);
    natsConnection_Destroy(r->nc);
    sm_test_server_stop(&r->srv);
    sm_test_rmtree(r->dir);
}

/* Storms: a command for an `answers` whose earlier command (not an
 * escalation) has no verdict yet. */
static int storms_of(const loop_log *lg)
{
    int storms = 0;
    for (size_t i = 0; i < lg->n; i++) {
        const seen_heal *c = &lg->v[i];
        if (c->verdict)
            continue;
        for (size_t j = 0; j < i; j++) {
            const seen_heal *e = &lg->v[j];
            if (e->verdict || e->action == 6 || strcmp(e->answers, c->answers) ||
                strcmp(e->id, c->id) == 0)
                continue;
            bool answered = false;
            for (size_t k = j + 1; k < i; k++)
                answered |= lg->v[k].verdict && !strcmp(lg->v[k].id, e->id);
            storms += !answered;
        }
    }
    return storms;
}

static bool verified(const loop_log *lg, int failure)
{
    for (size_t i = 0; i < lg->n; i++)
        if (lg->v[i].verdict && lg->v[i].failure == failure &&
            lg->v[i].result == 1)
            return true;
    return false;
}

/* Each failure type the simulated faults raise ends in a verified
 * recovery: a stuck agent and a dead one restarted, a lost quorum
 * recovered, the dead agent's timed-out task retried. */
START_TEST(loop_verifies_each_failure_on_the_bus)
{
    loop_rig r;
    loop_open(&r, "{\"name\": \"loop\", \"duration_s\": 240, \"seed\": 5,"
              " \"swarms\": [{\"agents\": 20}],"
              " \"faults\": ["
              " {\"type\": \"stuck_agent\", \"agents\": [\"a12\"], \"onset_s\": 30},"
              " {\"type\": \"crash_restart\", \"agents\": [\"a14\"], \"onset_s\": 80,"
              "  \"end_s\": 235},"
              " {\"type\": \"quorum_loss\", \"groups\": [\"g1\"], \"onset_s\": 150}]}");
    loop_worker(&r);
    loop_sim(&r, "20", NULL);
    loop_log lg = {.n = 0};
    loop_run_out(&r, &lg, 90000);
    ck_assert_msg(verified(&lg, SWARMMEDIC__V1__FAILURE_TYPE__FAILURE_TYPE_AGENT_STUCK),
                  "agent_stuck not verified");
    ck_assert_msg(verified(&lg, SWARMMEDIC__V1__FAILURE_TYPE__FAILURE_TYPE_AGENT_DOWN),
                  "agent_down not verified");
    ck_assert_msg(verified(&lg, SWARMMEDIC__V1__FAILURE_TYPE__FAILURE_TYPE_QUORUM_LOSS),
                  "quorum_loss not verified");
    ck_assert_int_eq(storms_of(&lg), 0);
    for (size_t i = 0; i < lg.n; i++)   /* nothing had to be escalated */
        ck_assert_int_ne(lg.v[i].action, 6);
    loop_close(&r);
}
END_TEST

/* A coordinator that rejects everything: each try gets its verdict before
 * the next command, then an escalation, and nothing after it. */
START_TEST(rejecting_coordinator_gets_an_escalation)
{
    loop_rig r;
    loop_open(&r, "{\"name\": \"loop\", \"duration_s\": 260, \"seed\": 5,"
              " \"swarms\": [{\"agents\": 20}],"
              " \"faults\": ["
              " {\"type\": \"stuck_agent\", \"agents\": [\"a12\"], \"onset_s\": 30}]}");
    loop_worker(&r);
    const char *reject[] = {"--coord-reject", "1", NULL};
    loop_sim(&r, "30", reject);
    loop_log lg = {.n = 0};
    loop_run_out(&r, &lg, 90000);
    int commands = 0, escalations = 0, failed = 0;
    for (size_t i = 0; i < lg.n; i++) {
        commands += !lg.v[i].verdict;
        escalations += !lg.v[i].verdict && lg.v[i].action == 6;
        failed += lg.v[i].verdict && lg.v[i].result == 2;
    }
    ck_assert_int_eq(escalations, 1);
    ck_assert_int_ge(failed, 1);
    ck_assert_int_eq(storms_of(&lg), 0);
    ck_assert_int_le(commands, 5);
    ck_assert_msg(!lg.v[lg.n - 1].verdict || lg.v[lg.n - 1].action != 6,
                  "the escalation is the last word");
    loop_close(&r);
}
END_TEST

/* kill -9 of the worker between a command and its outcome: after the
 * restart no other command is minted for the same episode and try. */
START_TEST(kill9_between_command_and_outcome)
{
    loop_rig r;
    loop_open(&r, "{\"name\": \"loop\", \"duration_s\": 260, \"seed\": 5,"
              " \"swarms\": [{\"agents\": 20}],"
              " \"faults\": ["
              " {\"type\": \"stuck_agent\", \"agents\": [\"a12\"], \"onset_s\": 30}]}");
    loop_worker(&r);
    const char *slow[] = {"--coord-delay", "40", NULL};
    loop_sim(&r, "20", slow);
    loop_log lg = {.n = 0};
    int waited = 0;
    while (lg.n == 0 && waited < 60000) {
        loop_drain(&r, &lg, 100);
        waited += 100;
    }
    ck_assert_msg(lg.n > 0 && !lg.v[0].verdict, "no command before the kill");
    kill(r.worker, SIGKILL);
    ck_assert_int_eq(sm_test_wait(r.worker, 10000), 128 + SIGKILL);
    loop_worker(&r);
    loop_run_out(&r, &lg, 90000);
    for (size_t i = 0; i < lg.n; i++)
        for (size_t j = 0; j < i; j++) {
            const seen_heal *a = &lg.v[j], *b = &lg.v[i];
            if (a->verdict || b->verdict || a->action == 6 || b->action == 6)
                continue;
            ck_assert_msg(strcmp(a->answers, b->answers) != 0 ||
                          a->attempt != b->attempt || strcmp(a->id, b->id) == 0,
                          "a second command %s for episode %s try %u after the "
                          "restart (first %s)", b->id, b->answers, b->attempt,
                          a->id);
        }
    int msgs = 0, again = 0;
    for (size_t i = 0; i < lg.n; i++) {
        if (lg.v[i].verdict)
            continue;
        msgs++;
        for (size_t j = 0; j < i; j++)
            if (!lg.v[j].verdict && !strcmp(lg.v[j].id, lg.v[i].id)) {
                again++;
                break;
            }
    }
    fprintf(stderr, "kill9 loop: %d command messages, %d of them an id sent "
            "before (same command again, Nats-Msg-Id dedups it)\n", msgs, again);
    ck_assert_int_eq(storms_of(&lg), 0);
    ck_assert_msg(verified(&lg, SWARMMEDIC__V1__FAILURE_TYPE__FAILURE_TYPE_AGENT_STUCK),
                  "the restart was not verified after the worker's restart");
    loop_close(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("coord");
    TCase *act = tcase_create("actions");
    tcase_set_timeout(act, 60);
    tcase_add_test(act, restart_unsticks_agent);
    tcase_add_test(act, restart_cures_slow_agent);
    tcase_add_test(act, restart_revives_dead_agent);
    tcase_add_test(act, retry_moves_task);
    tcase_add_test(act, rebalance_frees_budget_and_memory);
    tcase_add_test(act, rebalance_pauses_and_scales);
    tcase_add_test(act, quorum_recovery_restores_rounds);
    tcase_add_test(act, drain_agent_finishes_then_restarts);
    suite_add_tcase(s, act);
    TCase *judge = tcase_create("judge");
    tcase_set_timeout(judge, 60);
    tcase_add_test(judge, outcome_rates);
    tcase_add_test(judge, advice_escalation_custom);
    tcase_add_test(judge, duplicates_counted_not_repeated);
    tcase_add_test(judge, below_quorum_counted);
    tcase_add_test(judge, same_seed_same_commands_same_bytes);
    tcase_add_test(judge, decode_command);
    tcase_add_test(judge, config_checked);
    tcase_add_test(judge, watch_prints_the_loop);
    suite_add_tcase(s, judge);
    TCase *bus = tcase_create("bus");
    tcase_set_timeout(bus, 180);
    tcase_add_test(bus, coordinator_on_the_bus);
    tcase_add_test(bus, loop_verifies_each_failure_on_the_bus);
    tcase_add_test(bus, rejecting_coordinator_gets_an_escalation);
    tcase_add_test(bus, kill9_between_command_and_outcome);
    suite_add_tcase(s, bus);
    return sm_run_suite(s);
}
