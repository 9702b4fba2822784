/* Failure detection in the core (core/failures.c), on hand-built event
 * vectors: each failure raised when its signal says so, left alone on
 * the noise that looks like it, and resolved when it is over. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "runner.h"
#include "swarm.h"

#define T0 INT64_C(1700000000000)
#define MAXF 256

typedef struct fx {
    sm_swarm *sw;
    sm_decisions buf;
    size_t n;
    sm_decision f[MAXF];        /* failure decisions, in order */
} fx;

static void take(fx *x)
{
    for (size_t i = 0; i < x->buf.n; i++)
        if (x->buf.v[i].kind == SM_DEC_FAILURE && x->n < MAXF)
            x->f[x->n++] = x->buf.v[i];
    sm_decisions_clear(&x->buf);
}

static fx *fx_new_cfg(const sm_detect_config *cfg)
{
    fx *x = calloc(1, sizeof *x);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(sm_swarm_create(&x->sw, "s", cfg), SM_OK);
    return x;
}

static fx *fx_new(void)
{
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    return fx_new_cfg(&cfg);
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

static void task(fx *x, int64_t ts, const char *agent, const char *type,
                 sm_task_kind kind, uint32_t dur)
{
    sm_task_event e = {.ts_ms = ts, .agent = agent, .task_type = type,
                       .kind = kind, .priority = SM_PRIO_MEDIUM,
                       .duration_ms = dur};
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

static void advance(fx *x, int64_t ts)
{
    sm_swarm_advance(x->sw, ts, &x->buf);
    take(x);
}

/* The i-th failure decision of type t (0-based), or NULL. */
static const sm_decision *nth(const fx *x, sm_fail_type t, size_t i)
{
    for (size_t k = 0; k < x->n; k++)
        if (x->f[k].fail.type == t && i-- == 0)
            return &x->f[k];
    return NULL;
}

static size_t count(const fx *x, sm_fail_type t, sm_transition_kind tr)
{
    size_t n = 0;
    for (size_t k = 0; k < x->n; k++)
        n += x->f[k].fail.type == t && x->f[k].fail.transition == tr;
    return n;
}

/* Two agents beating every `every` ms from `from`, busy with progress
 * moving, in time order: `a` until a_to, `b` until b_to (inclusive). */
static void beats2(fx *x, const char *a, int64_t a_to, const char *b,
                   int64_t b_to, int64_t from, int64_t every)
{
    int64_t to = a_to > b_to ? a_to : b_to;
    for (int64_t t = from; t <= to; t += every) {
        if (t <= a_to)
            hb(x, t, a, 2, 1, (uint64_t)(t - T0));
        if (t <= b_to)
            hb(x, t, b, 2, 1, (uint64_t)(t - T0));
    }
}

/* ---- agent_down -------------------------------------------------------- */

/* Its own 2 s interval is learned: down after 3 of them (+ 1 s slack), not
 * after the 15 s the 5 s default would give; back on the next beat. */
START_TEST(down_after_three_learned_intervals)
{
    fx *x = fx_new();
    beats2(x, "a", T0 + 40000, "b", T0 + 60000, T0, 2000);  /* b: the clock */
    const sm_decision *d = nth(x, SM_FAIL_AGENT_DOWN, 0);
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(d->subject, "a");
    ck_assert_int_eq(d->fail.transition, SM_TR_RAISED);
    ck_assert_str_eq(d->fail.reason, "heartbeats_stopped");
    ck_assert_int_eq(d->fail.severity, SM_SEV_HIGH);
    ck_assert_int_ge(d->at_ms, T0 + 40000 + 6000);
    ck_assert_int_le(d->at_ms, T0 + 40000 + 7000 + 2000);  /* beat, tick */
    ck_assert_int_eq(d->evidence.signal, SM_SIG_HEARTBEAT);
    ck_assert_int_eq(d->evidence.ts_ms, T0 + 40000);
    ck_assert(sm_swarm_failure_raised(x->sw, SM_FAIL_AGENT_DOWN, "a"));
    ck_assert_uint_eq(count(x, SM_FAIL_AGENT_DOWN, SM_TR_RAISED), 1);
    hb(x, T0 + 61000, "a", 2, 1, 1);
    d = nth(x, SM_FAIL_AGENT_DOWN, 1);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->fail.transition, SM_TR_RESOLVED);
    ck_assert_str_eq(d->fail.reason, "heartbeat_back");
    ck_assert_int_eq(d->fail.raised_at_ms, nth(x, SM_FAIL_AGENT_DOWN, 0)->at_ms);
    ck_assert(!sm_swarm_failure_raised(x->sw, SM_FAIL_AGENT_DOWN, "a"));
    fx_free(x);
}
END_TEST

/* One missed beat (a 2x gap) and jitter are not a death; neither is an
 * agent that never beat, one that said STOPPING, or one that left. */
START_TEST(down_not_on_noise_or_departures)
{
    fx *x = fx_new();
    hb(x, T0, "stopping", 2, 0, 0);
    hb(x, T0, "leaver", 2, 0, 0);
    task(x, T0, "no-beats", "search", SM_TASK_STARTED, 0);
    hb(x, T0 + 5000, "stopping", 4, 0, 0);
    hb(x, T0 + 5000, "leaver", 2, 0, 0);
    life(x, T0 + 6000, "leaver", false);
    int64_t t = T0 + 6000;
    for (int i = 0; i < 60; i++) {
        int64_t gap = 5000 + ((i * 7919) % 1600) - 800;   /* +-0.8 s */
        if (i % 10 == 9)
            gap += 5000;                                  /* a missed beat */
        t += gap;
        hb(x, t, "jittery", 2, 1, (uint64_t)i);
    }
    advance(x, t + 4000);
    ck_assert_uint_eq(count(x, SM_FAIL_AGENT_DOWN, SM_TR_RAISED), 0);
    fx_free(x);
}
END_TEST

/* Killed and restarted: down, then resolved by its registration; a down
 * agent's slow-agent state does not survive its restart. */
START_TEST(down_resolved_by_restart)
{
    fx *x = fx_new();
    beats2(x, "a", T0 + 20000, "b", T0 + 60000, T0, 5000);
    ck_assert(sm_swarm_failure_raised(x->sw, SM_FAIL_AGENT_DOWN, "a"));
    life(x, T0 + 61000, "a", true);
    const sm_decision *d = nth(x, SM_FAIL_AGENT_DOWN, 1);
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(d->fail.reason, "registered");
    /* watched again from its next beat, not before (b, silent since
     * 60 s, is down by then: the clock did move) */
    advance(x, T0 + 120000);
    ck_assert(!sm_swarm_failure_raised(x->sw, SM_FAIL_AGENT_DOWN, "a"));
    ck_assert(sm_swarm_failure_raised(x->sw, SM_FAIL_AGENT_DOWN, "b"));
    fx_free(x);
}
END_TEST

/* ---- agent_stuck ------------------------------------------------------- */

/* Heartbeats go on, the progress counter freezes, no task event: stuck
 * after max(60 s, 3 x the type median) and 60 s of frozen progress;
 * resolved when the task ends. */
START_TEST(stuck_when_progress_freezes)
{
    fx *x = fx_new();
    int64_t t = T0;
    for (int i = 0; i < 12; i++) {          /* a "search" baseline: 3 s */
        task(x, t, "base", "search", SM_TASK_COMPLETED, 3000);
        t += 1000;
    }
    task(x, T0 + 20000, "a", "search", SM_TASK_STARTED, 0);
    hb(x, T0 + 20000, "a", 2, 1, 100);
    for (int64_t s = T0 + 25000; s <= T0 + 200000; s += 5000)
        hb(x, s, "a", 2, 1, 150);           /* frozen from 25 s */
    const sm_decision *d = nth(x, SM_FAIL_AGENT_STUCK, 0);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->fail.transition, SM_TR_RAISED);
    ck_assert_str_eq(d->fail.reason, "no_progress");
    ck_assert_int_ge(d->at_ms, T0 + 25000 + 60000);
    ck_assert_int_le(d->at_ms, T0 + 25000 + 60000 + 5000);
    task(x, T0 + 201000, "a", "search", SM_TASK_TIMED_OUT, 181000);
    d = nth(x, SM_FAIL_AGENT_STUCK, 1);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->fail.transition, SM_TR_RESOLVED);
    ck_assert_str_eq(d->fail.reason, "task_ended");
    fx_free(x);
}
END_TEST

/* A tool call pausing progress 40 s, a long task that keeps progressing,
 * and an idle agent are not stuck. */
START_TEST(stuck_not_on_pause_long_task_or_idle)
{
    fx *x = fx_new();
    task(x, T0, "pauser", "codegen", SM_TASK_STARTED, 0);
    task(x, T0, "long", "codegen", SM_TASK_STARTED, 0);
    uint64_t p = 0;
    for (int64_t s = T0; s <= T0 + 600000; s += 5000) {
        int64_t in = (s - T0) % 100000;     /* 40 s pauses each 100 s */
        hb(x, s, "pauser", 2, 1, in < 40000 ? p : ++p);
        hb(x, s, "long", 2, 1, (uint64_t)(s - T0));
        hb(x, s, "idle", 1, 0, 7);
    }
    ck_assert_uint_eq(count(x, SM_FAIL_AGENT_STUCK, SM_TR_RAISED), 0);
    fx_free(x);
}
END_TEST

/* ---- task_timeout, quorum, resources ------------------------------------ */

START_TEST(task_timeout_raised_and_resolved)
{
    fx *x = fx_new();
    task(x, T0, "a", "search", SM_TASK_TIMED_OUT, 30000);
    task(x, T0 + 1000, "a", "search", SM_TASK_TIMED_OUT, 30000);
    ck_assert_uint_eq(count(x, SM_FAIL_TASK_TIMEOUT, SM_TR_RAISED), 1);
    ck_assert_int_eq(nth(x, SM_FAIL_TASK_TIMEOUT, 0)->fail.severity, SM_SEV_LOW);
    task(x, T0 + 5000, "a", "search", SM_TASK_COMPLETED, 3000);
    const sm_decision *d = nth(x, SM_FAIL_TASK_TIMEOUT, 1);
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(d->fail.reason, "recovered");
    /* with no completion, it resolves a window after the last timeout */
    task(x, T0 + 10000, "b", "search", SM_TASK_TIMED_OUT, 30000);
    advance(x, T0 + 69000);
    ck_assert(sm_swarm_failure_raised(x->sw, SM_FAIL_TASK_TIMEOUT, "b"));
    advance(x, T0 + 71000);
    ck_assert(!sm_swarm_failure_raised(x->sw, SM_FAIL_TASK_TIMEOUT, "b"));
    fx_free(x);
}
END_TEST

static void round_of(fx *x, int64_t ts, const char *g, uint32_t parts,
                     uint32_t quorum, sm_round_outcome o)
{
    sm_consensus_round r = {.ts_ms = ts, .group = g, .outcome = o,
                            .duration_ms = 400, .participants = parts,
                            .quorum = quorum};
    ck_assert_int_eq(sm_swarm_on_consensus(x->sw, &r, &x->buf), SM_OK);
    take(x);
}

/* One round short of quorum is not a loss; two in a row are; two at
 * quorum again resolve it. Another group is untouched. */
START_TEST(quorum_loss_two_rounds)
{
    fx *x = fx_new();
    int64_t t = T0;
    round_of(x, t += 3000, "g0", 2, 3, SM_ROUND_TIMEOUT);
    round_of(x, t += 3000, "g0", 5, 3, SM_ROUND_OK);
    round_of(x, t += 3000, "g1", 5, 3, SM_ROUND_OK);
    ck_assert_uint_eq(count(x, SM_FAIL_QUORUM_LOSS, SM_TR_RAISED), 0);
    round_of(x, t += 3000, "g0", 2, 3, SM_ROUND_FAILED);
    round_of(x, t += 3000, "g0", 2, 3, SM_ROUND_TIMEOUT);
    const sm_decision *d = nth(x, SM_FAIL_QUORUM_LOSS, 0);
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(d->subject, "g0");
    ck_assert_int_eq(d->fail.severity, SM_SEV_CRITICAL);
    ck_assert(!sm_swarm_failure_raised(x->sw, SM_FAIL_QUORUM_LOSS, "g1"));
    round_of(x, t += 3000, "g0", 3, 3, SM_ROUND_OK);
    ck_assert(sm_swarm_failure_raised(x->sw, SM_FAIL_QUORUM_LOSS, "g0"));
    round_of(x, t += 3000, "g0", 4, 3, SM_ROUND_OK);
    d = nth(x, SM_FAIL_QUORUM_LOSS, 1);
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(d->fail.reason, "quorum_back");
    fx_free(x);
}
END_TEST

static void res(fx *x, int64_t ts, uint64_t used, uint64_t budget,
                uint64_t mem, uint64_t limit, uint32_t pending)
{
    sm_resource_sample s = {.ts_ms = ts, .source = "sched",
                            .token_budget = budget, .tokens_used = used,
                            .memory_used = mem, .memory_limit = limit,
                            .has_pending = true};
    s.pending[2] = pending;
    ck_assert_int_eq(sm_swarm_on_resource(x->sw, &s, &x->buf), SM_OK);
    take(x);
}

/* Budget spent, memory at its limit, pending over the critical level: each
 * raised at its line and resolved under its clear line, not in between. */
START_TEST(resource_failures)
{
    fx *x = fx_new();
    res(x, T0, 980, 1000, 7800, 8000, 190);
    ck_assert_uint_eq(x->n, 0);
    res(x, T0 + 1000, 990, 1000, 7840, 8000, 201);
    ck_assert_uint_eq(count(x, SM_FAIL_TOKEN_EXHAUSTION, SM_TR_RAISED), 1);
    ck_assert_uint_eq(count(x, SM_FAIL_MEMORY_EXHAUSTION, SM_TR_RAISED), 1);
    ck_assert_uint_eq(count(x, SM_FAIL_QUEUE_OVERFLOW, SM_TR_RAISED), 0);
    res(x, T0 + 2000, 960, 1000, 7300, 8000, 202);      /* between the lines */
    ck_assert_uint_eq(count(x, SM_FAIL_QUEUE_OVERFLOW, SM_TR_RAISED), 1);
    ck_assert_uint_eq(count(x, SM_FAIL_TOKEN_EXHAUSTION, SM_TR_RESOLVED), 0);
    ck_assert_uint_eq(count(x, SM_FAIL_MEMORY_EXHAUSTION, SM_TR_RESOLVED), 0);
    res(x, T0 + 3000, 500, 2000, 3000, 8000, 149);      /* top-up, GC, drain */
    ck_assert_uint_eq(count(x, SM_FAIL_TOKEN_EXHAUSTION, SM_TR_RESOLVED), 1);
    ck_assert_uint_eq(count(x, SM_FAIL_MEMORY_EXHAUSTION, SM_TR_RESOLVED), 1);
    ck_assert_uint_eq(count(x, SM_FAIL_QUEUE_OVERFLOW, SM_TR_RESOLVED), 1);
    ck_assert_str_eq(nth(x, SM_FAIL_QUEUE_OVERFLOW, 0)->subject, "sched");
    fx_free(x);
}
END_TEST

/* ---- persistence -------------------------------------------------------- */

static void copy_agent(void *ud, const char *agent, const void *blob,
                       size_t len)
{
    (void)agent;
    sm_swarm *to = ud;
    ck_assert_int_eq(sm_swarm_import_agent(to, blob, len), SM_OK);
}

/* A restored swarm keeps what it knew: an agent down stays down (resolved
 * by its next beat, with the original raise time), a beating agent that
 * then goes silent is noticed on the learned interval, a lost quorum and
 * a spent budget stay raised. */
START_TEST(failure_state_survives_export_import)
{
    fx *x = fx_new();
    beats2(x, "dead", T0 + 10000, "alive", T0 + 30000, T0, 2000);
    round_of(x, T0 + 30000, "g0", 1, 3, SM_ROUND_TIMEOUT);
    round_of(x, T0 + 30001, "g0", 1, 3, SM_ROUND_TIMEOUT);
    res(x, T0 + 30002, 999, 1000, 0, 0, 0);
    ck_assert(sm_swarm_failure_raised(x->sw, SM_FAIL_AGENT_DOWN, "dead"));
    int64_t raised = nth(x, SM_FAIL_AGENT_DOWN, 0)->at_ms;

    size_t need = sm_swarm_export(x->sw, NULL, 0);
    void *blob = malloc(need);
    ck_assert_uint_eq(sm_swarm_export(x->sw, blob, need), need);
    fx *y = fx_new();
    ck_assert_int_eq(sm_swarm_import(y->sw, blob, need), SM_OK);
    sm_swarm_visit_dirty(x->sw, copy_agent, y->sw);
    free(blob);
    ck_assert(sm_swarm_failure_raised(y->sw, SM_FAIL_AGENT_DOWN, "dead"));
    ck_assert(sm_swarm_failure_raised(y->sw, SM_FAIL_QUORUM_LOSS, "g0"));
    ck_assert(sm_swarm_failure_raised(y->sw, SM_FAIL_TOKEN_EXHAUSTION, ""));
    advance(y, T0 + 39000);
    ck_assert_uint_eq(count(y, SM_FAIL_AGENT_DOWN, SM_TR_RAISED), 1);
    ck_assert_str_eq(nth(y, SM_FAIL_AGENT_DOWN, 0)->subject, "alive");
    hb(y, T0 + 40000, "dead", 2, 1, 5);
    const sm_decision *d = nth(y, SM_FAIL_AGENT_DOWN, 1);
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(d->subject, "dead");
    ck_assert_int_eq(d->fail.raised_at_ms, raised);
    fx_free(x);
    fx_free(y);
}
END_TEST

/* The same events twice: the same failure decisions, ids included. */
START_TEST(failures_deterministic)
{
    fx *a = fx_new(), *b = fx_new();
    fx *both[] = {a, b};
    for (int i = 0; i < 2; i++) {
        task(both[i], T0, "y", "", SM_TASK_TIMED_OUT, 100);
        beats2(both[i], "x", T0 + 20000, "y", T0 + 90000, T0, 3000);
    }
    ck_assert_uint_gt(a->n, 1);
    ck_assert_uint_eq(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        ck_assert_uint_eq(a->f[i].id, b->f[i].id);
        ck_assert_int_eq(a->f[i].at_ms, b->f[i].at_ms);
    }
    fx_free(a);
    fx_free(b);
}
END_TEST

/* ---- predictions ------------------------------------------------------ */

typedef struct pfx {
    sm_swarm *sw;
    sm_decisions buf;
    size_t n;
    sm_decision p[MAXF];        /* prediction decisions, in order */
    size_t nf;
    sm_decision f[MAXF];        /* failure decisions */
} pfx;

static void ptake(pfx *x)
{
    for (size_t i = 0; i < x->buf.n; i++) {
        const sm_decision *d = &x->buf.v[i];
        if (d->kind == SM_DEC_PREDICTION && x->n < MAXF)
            x->p[x->n++] = *d;
        if (d->kind == SM_DEC_FAILURE && x->nf < MAXF)
            x->f[x->nf++] = *d;
    }
    sm_decisions_clear(&x->buf);
}

static pfx *pfx_new(void)
{
    pfx *x = calloc(1, sizeof *x);
    ck_assert_ptr_nonnull(x);
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    ck_assert_int_eq(sm_swarm_create(&x->sw, "s", &cfg), SM_OK);
    return x;
}

static void pfx_free(pfx *x)
{
    sm_swarm_destroy(x->sw);
    sm_decisions_free(&x->buf);
    free(x);
}

static void phb(pfx *x, int64_t ts, const char *agent, uint32_t state)
{
    sm_heartbeat h = {.ts_ms = ts, .agent = agent, .state = state,
                      .inflight = 1, .progress = (uint64_t)(ts - T0)};
    ck_assert_int_eq(sm_swarm_on_heartbeat(x->sw, &h, &x->buf), SM_OK);
    ptake(x);
}

static void pres(pfx *x, int64_t ts, double used, double budget, double mem,
                 double limit)
{
    sm_resource_sample s = {.ts_ms = ts, .source = "sched",
                            .token_budget = (uint64_t)budget,
                            .tokens_used = (uint64_t)used,
                            .memory_used = (uint64_t)mem,
                            .memory_limit = (uint64_t)limit};
    ck_assert_int_eq(sm_swarm_on_resource(x->sw, &s, &x->buf), SM_OK);
    ptake(x);
}

static size_t pcount(const pfx *x, sm_fail_type t, sm_pred_transition tr)
{
    size_t n = 0;
    for (size_t i = 0; i < x->n; i++)
        n += x->p[i].pred.type == t && x->p[i].pred.transition == tr;
    return n;
}

/* Degraded health signs on three beats in a row forecast agent_down;
 * the death fulfils it (lead and fate in the ledger); an agent that
 * recovers has its forecast withdrawn, which the ledger counts against
 * the source. */
START_TEST(agent_health_forecast_fulfilled_and_withdrawn)
{
    pfx *x = pfx_new();
    int64_t t = T0;
    for (; t < T0 + 30000; t += 5000) {
        phb(x, t, "dying", 2);
        phb(x, t, "wobbly", 2);
        phb(x, t, "clock", 2);
    }
    for (int i = 0; i < 4; i++, t += 5000) {
        phb(x, t, "dying", 3);
        phb(x, t, "wobbly", 3);
        phb(x, t, "clock", 2);
    }
    ck_assert_uint_eq(pcount(x, SM_FAIL_AGENT_DOWN, SM_PRED_RAISED), 2);
    const sm_decision *d = &x->p[0];
    ck_assert_int_eq(d->pred.source, SM_SRC_AGENT_HEALTH);
    ck_assert(d->pred.confidence >= 0.7 && d->pred.confidence <= 1.0);
    ck_assert_int_eq(d->pred.expected_in_ms, 180000);   /* nothing learned */
    int64_t raised = d->at_ms;
    for (int i = 0; i < 3; i++, t += 5000) {            /* wobbly recovers */
        phb(x, t, "wobbly", 2);
        phb(x, t, "clock", 2);
    }
    ck_assert_uint_eq(pcount(x, SM_FAIL_AGENT_DOWN, SM_PRED_WITHDRAWN), 1);
    for (int i = 0; i < 6; i++, t += 5000) {            /* dying is silent */
        phb(x, t, "wobbly", 2);
        phb(x, t, "clock", 2);
    }
    ck_assert_uint_eq(pcount(x, SM_FAIL_AGENT_DOWN, SM_PRED_FULFILLED), 1);
    ck_assert(x->nf >= 1);
    ck_assert_str_eq(x->f[0].subject, "dying");
    sm_pred_tally src[SM_SRC_COUNT + 1] = {0}, type[SM_FAIL_MAX + 1] = {0};
    sm_swarm_ledger_add(x->sw, src, type);
    ck_assert_uint_eq(src[SM_SRC_AGENT_HEALTH].raised, 2);
    ck_assert_uint_eq(src[SM_SRC_AGENT_HEALTH].fulfilled, 1);
    ck_assert_uint_eq(src[SM_SRC_AGENT_HEALTH].wrong, 1);
    ck_assert_uint_eq(type[SM_FAIL_AGENT_DOWN].fulfilled, 1);
    ck_assert_double_eq_tol(src[0].lead_s, (double)(x->f[0].at_ms - raised) / 1000.0,
                            1e-9);
    pfx_free(x);
}
END_TEST

/* A leak under a collection saw-tooth is forecast minutes ahead; the same
 * saw-tooth with no leak, and one spike near the limit, are not. */
START_TEST(memory_leak_forecast_sawtooth_and_spike_not)
{
    const double GB = 1e9, LIMIT = 8 * GB;
    for (int leak = 0; leak < 2; leak++) {
        pfx *x = pfx_new();
        int64_t fail_at = -1;
        for (int64_t s = 0; s < 1800; s++) {            /* 30 min at 1 Hz */
            double saw = (double)(s % 75) / 75.0 * 1.0 * GB;
            double mem = 3 * GB + saw + (leak ? 300e6 / 60.0 * (double)s : 0);
            if (!leak && s == 900)
                mem = 7.9 * GB;                         /* one spike */
            if (fail_at < 0 && mem >= 0.98 * LIMIT)
                fail_at = T0 + s * 1000;
            pres(x, T0 + s * 1000, 1, 1000000, mem, LIMIT);
        }
        size_t raised = pcount(x, SM_FAIL_MEMORY_EXHAUSTION, SM_PRED_RAISED);
        if (!leak) {
            ck_assert_uint_eq(raised, 0);
        } else {
            ck_assert_uint_ge(raised, 1);
            ck_assert(fail_at > 0);
            int64_t first = -1;
            for (size_t i = 0; i < x->n; i++)
                if (x->p[i].pred.type == SM_FAIL_MEMORY_EXHAUSTION &&
                    x->p[i].pred.transition == SM_PRED_RAISED && first < 0)
                    first = x->p[i].at_ms;
            ck_assert_msg(fail_at - first >= 60000,
                          "leak forecast only %lld ms ahead",
                          (long long)(fail_at - first));
        }
        pfx_free(x);
    }
}
END_TEST

/* A budget its operators top up at 70% is not forecast to run out while
 * usage climbs toward that level again; a burn past it is. */
START_TEST(token_forecast_learns_topups)
{
    pfx *x = pfx_new();
    double budget = 1e6, used = 0.5e6;
    int64_t t = T0;
    int topups = 0;
    for (; t < T0 + 1200000; t += 1000) {               /* 20 min */
        used += 1000;                                   /* 0.1%/s */
        if (used >= 0.7 * budget && topups < 3) {
            budget *= 1.5;                              /* operators step in */
            topups++;
        }
        if (topups == 3)
            break;
        pres(x, t, used, budget, 0, 0);
    }
    size_t before = pcount(x, SM_FAIL_TOKEN_EXHAUSTION, SM_PRED_RAISED);
    size_t standing = before - pcount(x, SM_FAIL_TOKEN_EXHAUSTION, SM_PRED_WITHDRAWN);
    ck_assert_uint_le(standing, 0);
    /* after the third top-up the burn runs on, 4x, past every top-up seen */
    for (int i = 0; i < 600 && used < 0.99 * budget; i++, t += 1000) {
        used += 4000;
        pres(x, t, used, budget, 0, 0);
    }
    ck_assert_uint_ge(pcount(x, SM_FAIL_TOKEN_EXHAUSTION, SM_PRED_RAISED), before + 1);
    pfx_free(x);
}
END_TEST

/* Agents in turn report DEGRADED once and die about 2 minutes later: the
 * pattern (a correlation, DEGRADED then agent_down) is learned from five
 * pairs, and each DEGRADED after that is met with a pattern forecast of
 * agent_down at once (one heartbeat: the agent's own health signs need
 * three), fulfilled by the death; the learner survives export/import. */
START_TEST(learned_pattern_forecasts_a_death)
{
    pfx *x = pfx_new();
    int64_t t = T0;
    char who[16];
    for (int i = 0; i < 9; i++) {
        snprintf(who, sizeof who, "v%d", i);
        for (int k = 0; k < 6; k++, t += 5000) {    /* healthy 30 s */
            phb(x, t, who, 2);
            phb(x, t, "clock", 2);
        }
        phb(x, t, who, 3);                          /* degraded: once */
        if (i == 8)
            break;
        for (int k = 0; k < 30; k++, t += 5000)     /* silent 150 s: dead */
            phb(x, t, "clock", 2);
    }
    size_t n_pat = 0;
    int64_t first_pat = -1;
    for (size_t i = 0; i < x->n; i++)
        if (x->p[i].pred.source == SM_SRC_PATTERN &&
            x->p[i].pred.transition == SM_PRED_RAISED) {
            n_pat++;
            if (first_pat < 0)
                first_pat = x->p[i].at_ms;
        }
    /* five pairs make a pattern: the sixth DEGRADED is the first met with
     * a forecast, and each after it */
    ck_assert_int_eq(first_pat, T0 + 5 * 180000 + 30000);
    ck_assert_uint_eq(n_pat, 4);
    size_t fulfilled = 0;
    for (size_t i = 0; i < x->n; i++)
        fulfilled += x->p[i].pred.source == SM_SRC_PATTERN &&
                     x->p[i].pred.transition == SM_PRED_FULFILLED;
    ck_assert_uint_eq(fulfilled, 3);    /* the ninth is still pending */
    const sm_decision *last = NULL;
    for (size_t i = 0; i < x->n; i++)
        if (x->p[i].pred.source == SM_SRC_PATTERN)
            last = &x->p[i];
    ck_assert_int_eq(last->pred.type, SM_FAIL_AGENT_DOWN);
    ck_assert(last->pred.confidence >= 0.7);
    ck_assert(last->pred.expected_in_ms > 0 && last->pred.expected_in_ms <= 180000);

    /* restored from its blob: the same forecast on the same next event */
    size_t need = sm_swarm_export(x->sw, NULL, 0);
    void *blob = malloc(need);
    ck_assert_uint_eq(sm_swarm_export(x->sw, blob, need), need);
    pfx *y = pfx_new();
    ck_assert_int_eq(sm_swarm_import(y->sw, blob, need), SM_OK);
    free(blob);
    size_t again = sm_swarm_export(y->sw, NULL, 0);
    ck_assert_uint_eq(again, need);
    pfx_free(x);
    pfx_free(y);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("failures");
    TCase *tc = tcase_create("down");
    tcase_add_test(tc, down_after_three_learned_intervals);
    tcase_add_test(tc, down_not_on_noise_or_departures);
    tcase_add_test(tc, down_resolved_by_restart);
    suite_add_tcase(s, tc);
    tc = tcase_create("stuck");
    tcase_add_test(tc, stuck_when_progress_freezes);
    tcase_add_test(tc, stuck_not_on_pause_long_task_or_idle);
    suite_add_tcase(s, tc);
    tc = tcase_create("others");
    tcase_add_test(tc, task_timeout_raised_and_resolved);
    tcase_add_test(tc, quorum_loss_two_rounds);
    tcase_add_test(tc, resource_failures);
    tcase_add_test(tc, failure_state_survives_export_import);
    tcase_add_test(tc, failures_deterministic);
    suite_add_tcase(s, tc);
    tc = tcase_create("predictions");
    tcase_add_test(tc, agent_health_forecast_fulfilled_and_withdrawn);
    tcase_add_test(tc, memory_leak_forecast_sawtooth_and_spike_not);
    tcase_add_test(tc, token_forecast_learns_topups);
    tcase_add_test(tc, learned_pattern_forecasts_a_death);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sm_run_suite(suite());
}
