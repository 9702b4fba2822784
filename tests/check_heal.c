/* Healing in the core (core/heal.c) with the worker's strategy table
 * (worker/strategies.c), on hand-built event vectors: each built-in
 * strategy commands, is verified by the signal and the outcome, retries
 * with backoff, escalates once spent; the caps, the quorum guard,
 * autonomy, preventive commands and the state across export/import. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "runner.h"
#include "strategies.h"
#include "swarm.h"

#define T0 INT64_C(1700000000000)
#define MAXD 256

typedef struct fx {
    sm_swarm *sw;
    sm_decisions buf;
    size_t n;
    sm_decision d[MAXD];        /* heal and verdict decisions, in order */
} fx;

static void take(fx *x)
{
    for (size_t i = 0; i < x->buf.n; i++) {
        const sm_decision *d = &x->buf.v[i];
        if (getenv("HEAL_DUMP"))
            fprintf(stderr, "%lld kind=%d subj=%s %s act=%d att=%u verdict=%d %s\n",
                    (long long)(d->at_ms - T0), d->kind, d->subject,
                    d->kind == SM_DEC_FAILURE ? sm_fail_type_str(d->fail.type) : "",
                    d->kind == SM_DEC_HEAL ? (int)d->heal.action : 0,
                    d->kind == SM_DEC_HEAL ? d->heal.attempt : 0,
                    d->kind == SM_DEC_VERDICT ? (int)d->verdict.verdict : 0,
                    d->kind == SM_DEC_VERDICT ? d->verdict.reason
                    : d->kind == SM_DEC_FAILURE ? d->fail.reason : "");
        if ((d->kind == SM_DEC_HEAL || d->kind == SM_DEC_VERDICT) && x->n < MAXD)
            x->d[x->n++] = *d;
    }
    sm_decisions_clear(&x->buf);
}

static fx *fx_new_cfg(const sm_detect_config *cfg, const char *autonomy)
{
    fx *x = calloc(1, sizeof *x);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(sm_swarm_create(&x->sw, "s", cfg), SM_OK);
    sm_heal_config hc;
    char err[256];
    ck_assert_int_eq(sm_heal_config_for(autonomy, "s", &hc, err, sizeof err), SM_OK);
    ck_assert_int_eq(sm_swarm_set_heal(x->sw, &hc), SM_OK);
    return x;
}

static fx *fx_new(void)
{
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    return fx_new_cfg(&cfg, "*=act");
}

static void fx_free(fx *x)
{
    sm_swarm_destroy(x->sw);
    sm_decisions_free(&x->buf);
    free(x);
}

static void hb(fx *x, int64_t ts, const char *agent, uint32_t state,
               uint32_t inflight, uint64_t progress)
{
    sm_heartbeat h = {.ts_ms = ts, .agent = agent, .state = state,
                      .inflight = inflight, .progress = progress};
    ck_assert_int_eq(sm_swarm_on_heartbeat(x->sw, &h, &x->buf), SM_OK);
    take(x);
}

static void task(fx *x, int64_t ts, const char *agent, const char *id,
                 sm_task_kind kind, uint32_t dur)
{
    sm_task_event e = {.ts_ms = ts, .agent = agent, .task_type = "search",
                       .task_id = id, .kind = kind,
                       .priority = SM_PRIO_MEDIUM, .duration_ms = dur};
    ck_assert_int_eq(sm_swarm_on_task(x->sw, &e, &x->buf), SM_OK);
    take(x);
}

static void life(fx *x, int64_t ts, const char *agent, bool registered)
{
    sm_agent_lifecycle e = {.ts_ms = ts, .agent = agent,
                            .registered = registered};
    ck_assert_int_eq(sm_swarm_on_agent(x->sw, &e, &x->buf), SM_OK);
    take(x);
}

static void round_of(fx *x, int64_t ts, const char *g, uint32_t parts,
                     uint32_t quorum)
{
    sm_consensus_round r = {.ts_ms = ts, .group = g,
                            .outcome = parts >= quorum ? SM_ROUND_OK
                                                       : SM_ROUND_TIMEOUT,
                            .duration_ms = 400, .participants = parts,
                            .quorum = quorum};
    ck_assert_int_eq(sm_swarm_on_consensus(x->sw, &r, &x->buf), SM_OK);
    take(x);
}

static void res(fx *x, int64_t ts, uint64_t used, uint64_t budget)
{
    sm_resource_sample s = {.ts_ms = ts, .source = "sched",
                            .token_budget = budget, .tokens_used = used};
    ck_assert_int_eq(sm_swarm_on_resource(x->sw, &s, &x->buf), SM_OK);
    take(x);
}

static void outcome(fx *x, int64_t ts, uint64_t cmd, uint32_t result)
{
    ck_assert_int_eq(sm_swarm_on_outcome(x->sw, ts, cmd, result, &x->buf), SM_OK);
    take(x);
}

static void advance(fx *x, int64_t ts)
{
    sm_swarm_advance(x->sw, ts, &x->buf);
    take(x);
}

/* The i-th decision of kind k (0-based), or NULL. */
static const sm_decision *nth(const fx *x, sm_decision_kind k, size_t i)
{
    for (size_t j = 0; j < x->n; j++)
        if (x->d[j].kind == k && i-- == 0)
            return &x->d[j];
    return NULL;
}

/* The i-th decision of kind k about `subject`, or NULL. */
static const sm_decision *nth_of(const fx *x, sm_decision_kind k,
                                 const char *subject, size_t i)
{
    for (size_t j = 0; j < x->n; j++)
        if (x->d[j].kind == k && strcmp(x->d[j].subject, subject) == 0 &&
            i-- == 0)
            return &x->d[j];
    return NULL;
}

static size_t count_of(const fx *x, sm_decision_kind k, const char *subject)
{
    size_t n = 0;
    for (size_t j = 0; j < x->n; j++)
        n += x->d[j].kind == k && strcmp(x->d[j].subject, subject) == 0;
    return n;
}

static size_t count(const fx *x, sm_decision_kind k)
{
    size_t n = 0;
    for (size_t j = 0; j < x->n; j++)
        n += x->d[j].kind == k;
    return n;
}

/* Agents beat every 2 s from `from` to `to` (progress moving). */
static void beats(fx *x, const char *const *agents, size_t n, int64_t from,
                  int64_t to)
{
    for (int64_t t = from; t <= to; t += 2000)
        for (size_t i = 0; i < n; i++)
            hb(x, t, agents[i], 2, 1, (uint64_t)(t - T0));
}

/* "a" dies at T0 + 20 s: agent_down and its restart command. */
static const sm_decision *kill_a(fx *x)
{
    static const char *const ab[] = {"a", "b"};
    life(x, T0, "a", true);
    life(x, T0, "b", true);
    beats(x, ab, 2, T0, T0 + 20000);
    static const char *const b[] = {"b"};
    beats(x, b, 1, T0 + 22000, T0 + 30000);
    ck_assert(sm_swarm_failure_raised(x->sw, SM_FAIL_AGENT_DOWN, "a"));
    const sm_decision *c = nth(x, SM_DEC_HEAL, 0);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* ---- agent restart ------------------------------------------------------- */

/* agent_down: one restart command (ACT, its steps, a deadline); the agent
 * re-registers and beats: VERIFIED, once, and nothing more is commanded. */
START_TEST(restart_verified_by_the_agent_coming_back)
{
    fx *x = fx_new();
    const sm_decision *c = kill_a(x);
    ck_assert_int_eq(c->heal.action, SM_ACT_RESTART);
    ck_assert_int_eq(c->heal.autonomy, SM_AUTO_ACT);
    ck_assert_int_eq(c->heal.type, SM_FAIL_AGENT_DOWN);
    ck_assert_str_eq(c->heal.agent, "a");
    ck_assert_str_eq(c->heal.strategy, "agent_restart");
    ck_assert_uint_eq(c->heal.attempt, 1);
    ck_assert_uint_eq(c->heal.n_steps, 3);
    ck_assert_str_eq(c->heal.steps[0], "unregister");
    ck_assert_int_eq(c->heal.deadline_ms, c->at_ms + 90000);
    ck_assert_uint_ne(c->heal.answers, 0);
    uint64_t id = c->id;
    int64_t at = c->at_ms;
    outcome(x, at + 1000, id, 1);          /* DONE: not yet proof */
    ck_assert_uint_eq(count(x, SM_DEC_VERDICT), 0);
    life(x, at + 1500, "a", false);
    life(x, at + 2000, "a", true);
    ck_assert_uint_eq(count(x, SM_DEC_VERDICT), 0);
    hb(x, at + 3000, "a", 1, 0, 1);
    advance(x, at + 4000);
    const sm_decision *v = nth(x, SM_DEC_VERDICT, 0);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->verdict.verdict, SM_VERDICT_VERIFIED);
    ck_assert_uint_eq(v->verdict.command, id);
    ck_assert_uint_eq(v->verdict.outcome, 1);
    ck_assert_int_eq(v->verdict.recovered_ms, at + 3000);
    ck_assert_int_le(v->verdict.first_evidence_ms, v->verdict.detected_ms);
    static const char *const ab[] = {"a", "b"};
    beats(x, ab, 2, at + 5000, at + 600000);
    ck_assert_uint_eq(count(x, SM_DEC_HEAL), 1);
    ck_assert_uint_eq(count(x, SM_DEC_VERDICT), 1);
    sm_heal_tally by_action[SM_ACT_COUNT + 1] = {0};
    sm_swarm_heal_add(x->sw, by_action, NULL, NULL);
    ck_assert_uint_eq(by_action[SM_ACT_RESTART].commands, 1);
    ck_assert_uint_eq(by_action[SM_ACT_RESTART].verified, 1);
    fx_free(x);
}
END_TEST

/* A coordinator that rejects: FAILED at once, the second try after the
 * backoff (5 s, +0..50% jitter), FAILED again, then one escalation naming
 * it; then silence, however long the agent stays down: no storm. */
START_TEST(rejected_twice_then_escalated_not_stormed)
{
    fx *x = fx_new();
    const sm_decision *c = kill_a(x);
    uint64_t first = c->id;
    int64_t at = c->at_ms;
    outcome(x, at + 500, first, 3);
    const sm_decision *v = nth(x, SM_DEC_VERDICT, 0);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->verdict.verdict, SM_VERDICT_FAILED);
    ck_assert_str_eq(v->verdict.reason, "outcome_rejected");
    advance(x, at + 5400);
    ck_assert_uint_eq(count_of(x, SM_DEC_HEAL, "a"), 1);  /* backing off */
    advance(x, at + 12000);
    const sm_decision *c2 = nth_of(x, SM_DEC_HEAL, "a", 1);
    ck_assert_ptr_nonnull(c2);
    ck_assert_uint_eq(c2->heal.attempt, 2);
    ck_assert_int_eq(c2->heal.action, SM_ACT_RESTART);
    ck_assert_uint_ne(c2->id, first);
    ck_assert_int_ge(c2->at_ms, at + 500 + 5000);
    uint64_t second = c2->id;
    outcome(x, c2->at_ms + 500, second, 2);
    advance(x, c2->at_ms + 30000);
    const sm_decision *e = nth_of(x, SM_DEC_HEAL, "a", 2);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->heal.action, SM_ACT_ESCALATE);
    ck_assert_uint_eq(e->heal.escalates, second);
    ck_assert_str_eq(e->heal.reason, "strategies_spent");
    advance(x, c2->at_ms + 3000000);
    ck_assert_uint_eq(count_of(x, SM_DEC_HEAL, "a"), 3);
    ck_assert_uint_eq(count_of(x, SM_DEC_VERDICT, "a"), 2);
    fx_free(x);
}
END_TEST

/* No outcome and no signal: the deadline fails the command. */
START_TEST(deadline_fails_a_silent_command)
{
    fx *x = fx_new();
    const sm_decision *c = kill_a(x);
    int64_t dl = c->heal.deadline_ms;
    advance(x, dl - 1000);
    ck_assert_uint_eq(count(x, SM_DEC_VERDICT), 0);
    advance(x, dl + 1000);
    const sm_decision *v = nth(x, SM_DEC_VERDICT, 0);
    ck_assert_ptr_nonnull(v);
    ck_assert_str_eq(v->verdict.reason, "deadline_passed");
    fx_free(x);
}
END_TEST

/* An agent that dies again and again is restarted at most 3 times in the
 * 10-minute window; the 4th episode escalates with "restart_cap". */
START_TEST(restart_cap_per_agent)
{
    fx *x = fx_new();
    kill_a(x);
    static const char *const b[] = {"b"};
    int64_t t = T0 + 30000;
    for (int round = 0; round < 4; round++) {
        const sm_decision *c = nth(x, SM_DEC_HEAL, (size_t)round);
        ck_assert_ptr_nonnull(c);
        if (round == 3) {
            ck_assert_int_eq(c->heal.action, SM_ACT_ESCALATE);
            ck_assert_str_eq(c->heal.reason, "restart_cap");
            break;
        }
        ck_assert_int_eq(c->heal.action, SM_ACT_RESTART);
        life(x, t, "a", true);              /* back ... */
        for (int i = 0; i < 8; i++, t += 2000) {
            hb(x, t, "a", 2, 1, (uint64_t)t);
            hb(x, t, "b", 2, 1, (uint64_t)t);
        }
        beats(x, b, 1, t, t + 12000);       /* ... and dead again */
        t += 14000;
    }
    ck_assert_uint_eq(count(x, SM_DEC_HEAL), 4);
    fx_free(x);
}
END_TEST

/* Restart intensity: an agent restarted a minute ago that dies again
 * waits out the backoff (heal_backoff, doubling) before its next restart. */
START_TEST(restart_intensity_backs_off)
{
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    cfg.heal_backoff_ms = 60000;
    fx *x = fx_new_cfg(&cfg, "*=act");
    const sm_decision *c = kill_a(x);
    int64_t first = c->at_ms;
    int64_t t = first + 2000;
    life(x, t, "a", true);
    for (int i = 0; i < 6; i++, t += 2000) {
        hb(x, t, "a", 2, 1, (uint64_t)t);
        hb(x, t, "b", 2, 1, (uint64_t)t);
    }
    for (; t < first + 120000; t += 2000)       /* a dead again */
        hb(x, t, "b", 2, 1, (uint64_t)t);
    const sm_decision *c2 = nth_of(x, SM_DEC_HEAL, "a", 1);
    ck_assert_ptr_nonnull(c2);
    ck_assert_int_eq(c2->heal.action, SM_ACT_RESTART);
    ck_assert_int_ge(c2->at_ms, first + 60000);
    ck_assert_int_le(c2->at_ms, first + 91000);     /* + at most 50% */
    fx_free(x);
}
END_TEST

/* ---- quorum guard -------------------------------------------------------- */

/* A stuck (live) agent is not restarted while a group has no participant
 * to spare: held, then escalated with "quorum_guard". A down agent's
 * restart takes nothing from a quorum and goes ahead. */
START_TEST(quorum_guard_holds_a_live_restart)
{
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    fx *x = fx_new_cfg(&cfg, "*=act");
    life(x, T0, "a", true);
    int64_t t = T0;
    task(x, t, "a", "t1", SM_TASK_STARTED, 0);
    for (; t <= T0 + 170000; t += 2000) {
        hb(x, t, "a", 2, 1, 7);             /* busy, progress frozen */
        if (t % 6000 == 0)
            round_of(x, t, "g0", 3, 3);     /* at quorum: none to spare */
    }
    ck_assert(sm_swarm_failure_raised(x->sw, SM_FAIL_AGENT_STUCK, "a"));
    ck_assert_uint_eq(count(x, SM_DEC_HEAL), 0);   /* held */
    for (; t <= T0 + 200000; t += 2000) {
        hb(x, t, "a", 2, 1, 7);
        if (t % 6000 == 0)
            round_of(x, t, "g0", 3, 3);
    }
    const sm_decision *e = nth(x, SM_DEC_HEAL, 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->heal.action, SM_ACT_ESCALATE);
    ck_assert_str_eq(e->heal.reason, "quorum_guard");
    fx_free(x);

    x = fx_new();                           /* the same quorum, a dead agent */
    static const char *const ab[] = {"a", "b"};
    life(x, T0, "a", true);
    beats(x, ab, 2, T0, T0 + 20000);
    for (t = T0 + 22000; t <= T0 + 40000; t += 2000) {
        hb(x, t, "b", 2, 1, (uint64_t)t);
        round_of(x, t, "g0", 3, 3);
    }
    const sm_decision *c = nth(x, SM_DEC_HEAL, 0);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->heal.action, SM_ACT_RESTART);
    fx_free(x);
}
END_TEST

/* ---- the other strategies ------------------------------------------------ */

/* task_timeout: the task again on a healthy agent (not the one that timed
 * out, not a dead one); its completion there verifies the retry. */
START_TEST(retry_on_a_healthy_agent_verified_by_completion)
{
    fx *x = fx_new();
    static const char *const abc[] = {"a", "b", "c"};
    for (size_t i = 0; i < 3; i++)
        life(x, T0, abc[i], true);
    beats(x, abc, 3, T0, T0 + 10000);
    static const char *const ab[] = {"a", "b"};
    beats(x, ab, 2, T0 + 12000, T0 + 30000);     /* c dies */
    task(x, T0 + 30500, "a", "t9", SM_TASK_TIMED_OUT, 60000);
    const sm_decision *c = NULL;
    for (size_t i = 0; (c = nth(x, SM_DEC_HEAL, i)) != NULL; i++)
        if (c->heal.action == SM_ACT_RETRY)
            break;
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->heal.task, "t9");
    ck_assert_str_eq(c->heal.agent, "a");
    ck_assert_str_eq(c->heal.target, "b");
    uint64_t id = c->id;
    task(x, T0 + 32000, "b", "t9", SM_TASK_STARTED, 0);
    task(x, T0 + 35000, "b", "t9", SM_TASK_COMPLETED, 3000);
    const sm_decision *v = NULL;
    for (size_t i = 0; (v = nth(x, SM_DEC_VERDICT, i)) != NULL; i++)
        if (v->verdict.command == id)
            break;
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->verdict.verdict, SM_VERDICT_VERIFIED);
    ck_assert_str_eq(v->verdict.reason, "task_completed");
    fx_free(x);
}
END_TEST

/* quorum_loss: spawn the shortfall (quorum 5, 3 participants: 2); rounds
 * at quorum again resolve the failure and verify the command. */
START_TEST(quorum_recovery_spawns_the_shortfall)
{
    fx *x = fx_new();
    round_of(x, T0 + 3000, "g0", 3, 5);
    round_of(x, T0 + 6000, "g0", 3, 5);
    const sm_decision *c = nth(x, SM_DEC_HEAL, 0);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->heal.action, SM_ACT_QUORUM);
    ck_assert_str_eq(c->subject, "g0");
    ck_assert_str_eq(c->heal.steps[0], "spawn_agents=2");
    round_of(x, T0 + 9000, "g0", 5, 5);
    round_of(x, T0 + 12000, "g0", 5, 5);
    advance(x, T0 + 13000);
    const sm_decision *v = nth(x, SM_DEC_VERDICT, 0);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->verdict.verdict, SM_VERDICT_VERIFIED);
    ck_assert_str_eq(v->verdict.reason, "failure_resolved");
    fx_free(x);
}
END_TEST

/* token_exhaustion: rebalance (pause low priority, reallocate budget),
 * published as a recommendation under the default autonomy. */
START_TEST(rebalance_recommended_by_default)
{
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    fx *x = fx_new_cfg(&cfg, SM_AUTONOMY_DEFAULT);
    res(x, T0 + 1000, 995, 1000);
    res(x, T0 + 2000, 996, 1000);
    const sm_decision *c = nth(x, SM_DEC_HEAL, 0);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->heal.action, SM_ACT_REBALANCE);
    ck_assert_int_eq(c->heal.autonomy, SM_AUTO_RECOMMEND);
    ck_assert_str_eq(c->heal.steps[0], "pause_low_priority");
    ck_assert_str_eq(c->heal.steps[1], "reallocate_budget");
    uint64_t id = c->id;
    res(x, T0 + 3000, 996, 2000);           /* a top-up nobody reported */
    res(x, T0 + 4000, 997, 2000);
    advance(x, T0 + 5000);
    const sm_decision *v = nth(x, SM_DEC_VERDICT, 0);
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(v->verdict.command, id);
    ck_assert_int_eq(v->verdict.verdict, SM_VERDICT_SUPERSEDED);
    ck_assert_str_eq(v->verdict.reason, "recovered_unreported");
    fx_free(x);

    /* the same advice, taken and reported DONE: VERIFIED */
    x = fx_new_cfg(&cfg, SM_AUTONOMY_DEFAULT);
    res(x, T0 + 1000, 995, 1000);
    res(x, T0 + 2000, 996, 1000);
    c = nth(x, SM_DEC_HEAL, 0);
    ck_assert_ptr_nonnull(c);
    outcome(x, T0 + 2500, c->id, 1);
    res(x, T0 + 3000, 996, 2000);
    res(x, T0 + 4000, 997, 2000);
    advance(x, T0 + 5000);
    v = nth(x, SM_DEC_VERDICT, 0);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->verdict.verdict, SM_VERDICT_VERIFIED);
    fx_free(x);
}
END_TEST

/* OBSERVE: the command is appended for the log, never verified. Per
 * swarm: another swarm's entry does not apply. */
START_TEST(observe_is_logged_not_verified)
{
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    fx *x = fx_new_cfg(&cfg, "*=act,s/agent_restart=observe,t/*=act");
    const sm_decision *c = kill_a(x);
    ck_assert_int_eq(c->heal.autonomy, SM_AUTO_OBSERVE);
    advance(x, c->at_ms + 600000);
    ck_assert_uint_eq(count_of(x, SM_DEC_HEAL, "a"), 1);
    ck_assert_uint_eq(count(x, SM_DEC_VERDICT), 0);
    fx_free(x);
    sm_heal_config hc;
    char err[256];
    ck_assert_int_eq(sm_heal_config_for("agent_restart=sometimes", NULL, &hc,
                                        err, sizeof err), SM_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "agent_restart=sometimes"));
    ck_assert_int_eq(sm_heal_config_for("/x=act", NULL, &hc, err, sizeof err),
                     SM_ERR_CONFIG);
}
END_TEST

/* ---- preventive healing -------------------------------------------------- */

/* Degraded beats forecast agent_down; at the preventive confidence the
 * agent is restarted before it dies; the forecast is withdrawn, the
 * command PREEMPTED, and the ledger counts a pre-emption, not a miss. */
START_TEST(preventive_restart_preempts_the_forecast)
{
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    cfg.heal_preventive = 0.7;
    fx *x = fx_new_cfg(&cfg, "*=act");
    life(x, T0, "a", true);
    int64_t t = T0;
    for (; t < T0 + 20000; t += 2000)
        hb(x, t, "a", 2, 1, (uint64_t)t);
    for (int i = 0; i < 4; i++, t += 2000)
        hb(x, t, "a", 3, 1, (uint64_t)t);   /* DEGRADED */
    const sm_decision *c = nth(x, SM_DEC_HEAL, 0);
    ck_assert_ptr_nonnull(c);
    ck_assert(c->heal.preventive);
    ck_assert_int_eq(c->heal.action, SM_ACT_RESTART);
    ck_assert_int_eq(c->heal.answers_kind, SM_DEC_PREDICTION);
    life(x, t, "a", false);
    life(x, t + 1000, "a", true);
    hb(x, t + 2000, "a", 1, 0, 1);
    advance(x, t + 3000);
    const sm_decision *v = nth(x, SM_DEC_VERDICT, 0);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->verdict.verdict, SM_VERDICT_PREEMPTED);
    sm_pred_tally by_source[SM_SRC_COUNT + 1] = {0};
    sm_swarm_ledger_add(x->sw, by_source, NULL);
    ck_assert_uint_eq(by_source[0].preempted, 1);
    ck_assert_uint_eq(by_source[0].wrong, 0);
    fx_free(x);
}
END_TEST

/* ---- custom strategies --------------------------------------------------- */

/* The example custom strategy, drain_agent, answers a slow agent; and a
 * strategy table of one's own is used as given (here: a custom action
 * for agent_down ahead of the built-ins). */
static bool page_matches(const sm_heal_case *c)
{
    return c->kind == SM_DEC_FAILURE && c->type == SM_FAIL_AGENT_DOWN;
}

static bool page_plan(const sm_heal_case *c, sm_heal_plan *p)
{
    p->action = SM_ACT_CUSTOM;
    p->custom = "page_owner";
    snprintf(p->agent, sizeof p->agent, "%s", c->subject);
    p->n_steps = 1;
    snprintf(p->steps[0], sizeof p->steps[0], "page");
    return true;
}

START_TEST(custom_strategies_without_editing_the_core)
{
    sm_heal_case hc = {.kind = SM_DEC_BOTTLENECK, .type = SM_BN_SLOW_AGENT,
                       .subject = "a7", .task = "", .task_type = ""};
    sm_heal_plan p;
    memset(&p, 0, sizeof p);
    ck_assert(sm_strategy_drain_agent.matches(&hc));
    ck_assert(sm_strategy_drain_agent.plan(&hc, &p));
    ck_assert_int_eq(p.action, SM_ACT_CUSTOM);
    ck_assert_str_eq(p.custom, "drain_agent");
    ck_assert_str_eq(p.agent, "a7");
    ck_assert(p.restarts);
    hc.type = SM_BN_QUEUE_BACKLOG;
    ck_assert(!sm_strategy_drain_agent.matches(&hc));

    static const sm_strategy mine[] = {
        {"page_owner", 1, page_matches, page_plan},
        SM_HEAL_BUILTINS,
    };
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    fx *x = fx_new_cfg(&cfg, "*=act");
    sm_heal_config h = {.strategies = mine, .n_strategies = 5};
    for (int a = 1; a <= SM_ACT_COUNT; a++)
        h.autonomy[a] = SM_AUTO_ACT;
    ck_assert_int_eq(sm_swarm_set_heal(x->sw, &h), SM_OK);
    const sm_decision *c = kill_a(x);
    ck_assert_int_eq(c->heal.action, SM_ACT_CUSTOM);
    ck_assert_str_eq(c->heal.custom, "page_owner");
    outcome(x, c->at_ms + 100, c->id, 2);       /* failed: the next one */
    advance(x, c->at_ms + 20000);
    const sm_decision *c2 = nth_of(x, SM_DEC_HEAL, "a", 1);
    ck_assert_ptr_nonnull(c2);
    ck_assert_int_eq(c2->heal.action, SM_ACT_RESTART);
    h.n_strategies = SM_HEAL_MAX_STRATEGIES + 1;
    ck_assert_int_eq(sm_swarm_set_heal(x->sw, &h), SM_ERR_INVALID);
    fx_free(x);
}
END_TEST

/* ---- state --------------------------------------------------------------- */

static void copy_agent(void *ud, const char *agent, const void *blob,
                       size_t len)
{
    (void)agent;
    ck_assert_int_eq(sm_swarm_import_agent(ud, blob, len), SM_OK);
}

/* A restored swarm knows its command: the same events again (a
 * redelivery after a crash) issue nothing new, and the coordinator's
 * outcome still verifies the original command. */
START_TEST(command_state_survives_export_import)
{
    fx *x = fx_new();
    const sm_decision *c = kill_a(x);
    uint64_t id = c->id;
    int64_t at = c->at_ms;
    size_t need = sm_swarm_export(x->sw, NULL, 0);
    void *blob = malloc(need);
    ck_assert_uint_eq(sm_swarm_export(x->sw, blob, need), need);
    fx *y = fx_new();
    ck_assert_int_eq(sm_swarm_import(y->sw, blob, need), SM_OK);
    sm_swarm_visit_dirty(x->sw, copy_agent, y->sw);
    free(blob);
    static const char *const b[] = {"b"};
    beats(y, b, 1, T0 + 22000, T0 + 30000);     /* redelivered */
    advance(y, at + 2000);
    ck_assert_uint_eq(count(y, SM_DEC_HEAL), 0);
    size_t n = sm_swarm_heal_open(y->sw, NULL, NULL);
    ck_assert_uint_eq(n, 1);
    outcome(y, at + 3000, id, 3);
    const sm_decision *v = nth(y, SM_DEC_VERDICT, 0);
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(v->verdict.command, id);
    ck_assert_int_eq(v->verdict.verdict, SM_VERDICT_FAILED);
    fx_free(x);
    fx_free(y);
}
END_TEST

/* The same events give the same commands, byte for byte. */
START_TEST(healing_deterministic)
{
    fx *x = fx_new(), *y = fx_new();
    kill_a(x);
    kill_a(y);
    advance(x, T0 + 500000);
    advance(y, T0 + 500000);
    ck_assert_uint_eq(x->n, y->n);
    ck_assert_uint_ge(x->n, 3);
    for (size_t i = 0; i < x->n; i++) {
        ck_assert_uint_eq(x->d[i].id, y->d[i].id);
        ck_assert_int_eq(x->d[i].at_ms, y->d[i].at_ms);
    }
    fx_free(x);
    fx_free(y);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("heal");
    TCase *tc = tcase_create("restart");
    tcase_add_test(tc, restart_verified_by_the_agent_coming_back);
    tcase_add_test(tc, rejected_twice_then_escalated_not_stormed);
    tcase_add_test(tc, deadline_fails_a_silent_command);
    tcase_add_test(tc, restart_cap_per_agent);
    tcase_add_test(tc, restart_intensity_backs_off);
    tcase_add_test(tc, quorum_guard_holds_a_live_restart);
    suite_add_tcase(s, tc);
    tc = tcase_create("strategies");
    tcase_add_test(tc, retry_on_a_healthy_agent_verified_by_completion);
    tcase_add_test(tc, quorum_recovery_spawns_the_shortfall);
    tcase_add_test(tc, rebalance_recommended_by_default);
    tcase_add_test(tc, observe_is_logged_not_verified);
    tcase_add_test(tc, preventive_restart_preempts_the_forecast);
    tcase_add_test(tc, custom_strategies_without_editing_the_core);
    suite_add_tcase(s, tc);
    tc = tcase_create("state");
    tcase_add_test(tc, command_state_survives_export_import);
    tcase_add_test(tc, healing_deterministic);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sm_run_suite(suite());
}
