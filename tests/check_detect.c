/*
 * check_detect.c - the five bottleneck detectors (core/swarm.h, core/detectors.c).
 *
 * Each test drives one sm_swarm with hand-written events and reads the
 * transitions it emits. Vectors sit at the thresholds: just over raises,
 * at or just below does not. Time is event time only; nothing here looks
 * at a clock.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "swarm.h"
#include "hash.h"
#include "runner.h"

#define MAXTR 1024
#define T0 INT64_C(1700000000000)       /* an ordinary epoch-ms start */

/* ------------------------------------------------------------ recorder */

typedef struct rec {
    size_t n;                   /* kept in tr[] */
    size_t total;               /* seen */
    uint64_t digest;            /* over every field of every transition */
    sm_decision tr[MAXTR];      /* bottlenecks */
    size_t nf;                  /* kept in ftr[] */
    sm_decision ftr[MAXTR];     /* failures */
    sm_decisions buf;           /* what the core appends during a call */
} rec;

static uint64_t hash_double(uint64_t h, double d)
{
    return sm_hash_bytes(h, &d, sizeof d);
}

static uint64_t tr_digest(uint64_t h, const sm_decision *t)
{
    if (t->kind == SM_DEC_FAILURE) {
        h = sm_hash_u64(h, (uint64_t)t->fail.type << 8 | t->fail.transition);
        h = sm_hash_str(h, t->subject);
        h = sm_hash_str(h, t->fail.reason);
        h = sm_hash_u64(h, (uint64_t)t->at_ms);
        return sm_hash_u64(h, t->id);
    }
    if (t->kind == SM_DEC_PREDICTION) {
        h = sm_hash_u64(h, (uint64_t)t->pred.type << 8 | t->pred.transition);
        h = sm_hash_str(h, t->subject);
        h = hash_double(h, t->pred.confidence);
        h = sm_hash_u64(h, (uint64_t)t->pred.expected_in_ms);
        h = sm_hash_u64(h, (uint64_t)t->at_ms);
        return sm_hash_u64(h, t->id);
    }
    h = sm_hash_u64(h, (uint64_t)t->bn.type);
    h = sm_hash_u64(h, (uint64_t)t->bn.transition);
    h = sm_hash_u64(h, (uint64_t)t->bn.severity);
    h = hash_double(h, t->bn.impact);
    h = sm_hash_str(h, t->swarm);
    h = sm_hash_str(h, t->subject);
    h = sm_hash_str(h, t->bn.reason);
    h = sm_hash_u64(h, (uint64_t)t->at_ms);
    h = sm_hash_u64(h, (uint64_t)t->bn.raised_at_ms);
    h = sm_hash_u64(h, (uint64_t)t->evidence.window_start_ms);
    h = sm_hash_u64(h, (uint64_t)t->evidence.window_end_ms);
    h = sm_hash_u64(h, t->id);
    h = sm_hash_u64(h, t->n_metrics);
    for (size_t i = 0; i < t->n_metrics; i++) {
        h = sm_hash_str(h, t->metrics[i].name);
        h = hash_double(h, t->metrics[i].value);
        h = hash_double(h, t->metrics[i].threshold);
        h = sm_hash_u64(h, t->metrics[i].samples);
    }
    return h;
}

/* Takes what the last call decided out of the buffer. */
static void drain(rec *r)
{
    for (size_t i = 0; i < r->buf.n; i++) {
        const sm_decision *t = &r->buf.v[i];
        r->digest = tr_digest(r->digest, t);
        if (t->kind != SM_DEC_BOTTLENECK) {    /* kept apart: tr[] is
                                                  bottlenecks */
            if (r->nf < MAXTR)
                r->ftr[r->nf++] = *t;
            continue;
        }
        r->total++;
        if (r->n < MAXTR)
            r->tr[r->n++] = *t;
    }
    ck_assert_uint_eq(r->buf.lost, 0);
    sm_decisions_clear(&r->buf);
}

static sm_status fed(rec *r, sm_status s)
{
    drain(r);
    return s;
}

static rec *rec_new(void)
{
    rec *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    r->digest = SM_HASH_INIT;
    return r;
}

/* Forgets what was recorded; keeps the decision buffer. */
static void rec_reset(rec *r)
{
    sm_decisions buf = r->buf;
    memset(r, 0, sizeof *r);
    r->buf = buf;
    r->digest = SM_HASH_INIT;
}

static void rec_free(rec *r)
{
    sm_decisions_free(&r->buf);
    free(r);
}

static size_t count(const rec *r, sm_bn_type t, sm_transition_kind k)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->tr[i].bn.type == t && r->tr[i].bn.transition == k)
            n++;
    }
    return n;
}

/* The last transition of type t, or NULL. */
static const sm_decision *last_of(const rec *r, sm_bn_type t)
{
    for (size_t i = r->n; i-- > 0;) {
        if (r->tr[i].bn.type == t)
            return &r->tr[i];
    }
    return NULL;
}

static const sm_metric *metric(const sm_decision *t, const char *name)
{
    for (size_t i = 0; i < t->n_metrics; i++) {
        if (strcmp(t->metrics[i].name, name) == 0)
            return &t->metrics[i];
    }
    return NULL;
}

/* -------------------------------------------------------------- events */

static sm_swarm *mk_cfg(const char *id, const sm_detect_config *cfg)
{
    sm_swarm *sw = NULL;
    ck_assert_int_eq(sm_swarm_create(&sw, id, cfg), SM_OK);
    ck_assert_ptr_nonnull(sw);
    return sw;
}

static sm_swarm *mk(void)
{
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    return mk_cfg("swarm-a", &cfg);
}

static void token(sm_swarm *sw, rec *r, int64_t ts, uint64_t used,
                  uint64_t budget)
{
    sm_resource_sample s = {.ts_ms = ts, .source = "coord-1",
                            .token_budget = budget, .tokens_used = used};
    ck_assert_int_eq(fed(r, sm_swarm_on_resource(sw, &s, &r->buf)), SM_OK);
}

static void quota(sm_swarm *sw, rec *r, int64_t ts, uint32_t active,
                  uint32_t q)
{
    sm_resource_sample s = {.ts_ms = ts, .source = "coord-1",
                            .active_agents = active, .agent_quota = q};
    ck_assert_int_eq(fed(r, sm_swarm_on_resource(sw, &s, &r->buf)), SM_OK);
}

/* Spreads p over two priorities so the detector has to sum them. */
static void queue(sm_swarm *sw, rec *r, int64_t ts, uint32_t p)
{
    sm_resource_sample s = {.ts_ms = ts, .source = "coord-1",
                            .has_pending = true};
    s.pending[0] = p / 3;
    s.pending[4] = p - p / 3;
    ck_assert_int_eq(fed(r, sm_swarm_on_resource(sw, &s, &r->buf)), SM_OK);
}

static void round_at(sm_swarm *sw, rec *r, int64_t ts, sm_round_outcome o)
{
    sm_consensus_round c = {.ts_ms = ts, .group = "grp-1", .outcome = o,
                            .participants = 5, .quorum = 3};
    ck_assert_int_eq(fed(r, sm_swarm_on_consensus(sw, &c, &r->buf)), SM_OK);
}

static void task(sm_swarm *sw, rec *r, int64_t ts, const char *agent,
                 sm_task_kind k, uint32_t dur)
{
    sm_task_event e = {.ts_ms = ts, .agent = agent, .kind = k,
                       .priority = SM_PRIO_MEDIUM, .duration_ms = dur};
    ck_assert_int_eq(fed(r, sm_swarm_on_task(sw, &e, &r->buf)), SM_OK);
}

static void beat(sm_swarm *sw, rec *r, int64_t ts, const char *agent)
{
    sm_heartbeat h = {.ts_ms = ts, .agent = agent, .state = 1};
    ck_assert_int_eq(fed(r, sm_swarm_on_heartbeat(sw, &h, &r->buf)), SM_OK);
}

static void lifecycle(sm_swarm *sw, rec *r, int64_t ts, const char *agent,
                      bool registered)
{
    sm_agent_lifecycle l = {.ts_ms = ts, .agent = agent,
                            .registered = registered};
    ck_assert_int_eq(fed(r, sm_swarm_on_agent(sw, &l, &r->buf)), SM_OK);
}

/* Ten normal agents n0..n9 each completing `per` tasks of `ms`, one event
 * every 100 ms from *ts (so a tick passes every 10 events). */
static void normal_load(sm_swarm *sw, rec *r, int64_t *ts, int per,
                        uint32_t ms)
{
    char id[16];
    for (int i = 0; i < per; i++) {
        for (int a = 0; a < 10; a++) {
            snprintf(id, sizeof id, "n%d", a);
            task(sw, r, *ts, id, SM_TASK_COMPLETED, ms);
            *ts += 100;
        }
    }
}

static void tasks_of(sm_swarm *sw, rec *r, int64_t *ts, const char *agent,
                     int n, sm_task_kind k, uint32_t ms)
{
    for (int i = 0; i < n; i++) {
        task(sw, r, *ts, agent, k, ms);
        *ts += 100;
    }
}

/* --------------------------------------------------------------- token */

START_TEST(token_raised_just_over)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    token(sw, r, T0, 810, 1000);
    ck_assert_uint_eq(r->n, 0);                 /* debounce: 1 of 2 */
    token(sw, r, T0 + 1000, 810, 1000);
    ck_assert_uint_eq(r->n, 1);
    const sm_decision *t = &r->tr[0];
    ck_assert_int_eq(t->bn.type, SM_BN_TOKEN_EXHAUSTION);
    ck_assert_int_eq(t->bn.transition, SM_TR_RAISED);
    ck_assert_int_eq(t->bn.severity, SM_SEV_HIGH);
    ck_assert_str_eq(t->bn.reason, "token_usage");
    ck_assert_str_eq(t->subject, "coord-1");
    ck_assert_str_eq(t->swarm, "swarm-a");
    ck_assert_int_eq(t->at_ms, T0 + 1000);
    ck_assert_int_eq(t->bn.raised_at_ms, T0 + 1000);
    ck_assert_int_eq(t->evidence.window_end_ms, T0 + 1000);
    ck_assert_int_eq(t->evidence.window_start_ms, T0 + 1000 - 60000);
    const sm_metric *m = metric(t, "token_usage_ratio");
    ck_assert_ptr_nonnull(m);
    ck_assert_double_eq_tol(m->value, 0.81, 1e-12);
    ck_assert_double_eq(m->threshold, 0.80);
    ck_assert_uint_eq(m->samples, 2);
    ck_assert(sm_swarm_is_raised(sw, SM_BN_TOKEN_EXHAUSTION, ""));
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(token_not_raised_at_or_below)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    for (int i = 0; i < 10; i++)                /* exactly 0.80, held */
        token(sw, r, T0 + i * 1000, 800, 1000);
    for (int i = 10; i < 20; i++)               /* just below */
        token(sw, r, T0 + i * 1000, 799, 1000);
    ck_assert_uint_eq(r->total, 0);
    ck_assert(!sm_swarm_is_raised(sw, SM_BN_TOKEN_EXHAUSTION, ""));
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(token_single_spike_debounced)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    for (int i = 0; i < 20; i++)
        token(sw, r, T0 + i * 1000, i % 2 ? 990 : 500, 1000);
    ck_assert_uint_eq(r->total, 0);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(token_severity_bands)
{
    static const struct { uint64_t used; sm_severity sev; } v[] = {
        {850, SM_SEV_HIGH},
        {900, SM_SEV_HIGH},         /* at critical: capped below 0.8 */
        {910, SM_SEV_CRITICAL},
        {1200, SM_SEV_CRITICAL},    /* over budget: impact capped at 1 */
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        sm_swarm *sw = mk();
        rec *r = rec_new();
        token(sw, r, T0, v[i].used, 1000);
        token(sw, r, T0 + 1000, v[i].used, 1000);
        ck_assert_uint_eq(r->n, 1);
        ck_assert_int_eq(r->tr[0].bn.severity, v[i].sev);
        ck_assert(r->tr[0].bn.impact <= 1.0);
        ck_assert_int_eq(sm_severity_of(r->tr[0].bn.impact), v[i].sev);
        sm_swarm_destroy(sw);
        rec_free(r);
    }
}
END_TEST

START_TEST(token_hysteresis_no_flap)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    token(sw, r, ts += 1000, 850, 1000);
    token(sw, r, ts += 1000, 850, 1000);
    ck_assert_uint_eq(count(r, SM_BN_TOKEN_EXHAUSTION, SM_TR_RAISED), 1);
    for (int i = 0; i < 20; i++)
        token(sw, r, ts += 1000, i % 2 ? 810 : 790, 1000);
    for (int i = 0; i < 20; i++)
        token(sw, r, ts += 1000, i % 2 ? 820 : 780, 1000);
    ck_assert_uint_eq(r->n, 1);     /* one RAISED, no UPDATED, no RESOLVED */
    ck_assert(sm_swarm_is_raised(sw, SM_BN_TOKEN_EXHAUSTION, ""));
    /* one sample under clear is not enough (debounce) */
    token(sw, r, ts += 1000, 700, 1000);
    ck_assert_uint_eq(r->n, 1);
    token(sw, r, ts += 1000, 700, 1000);
    ck_assert_uint_eq(r->n, 2);
    ck_assert_int_eq(r->tr[1].bn.transition, SM_TR_RESOLVED);
    ck_assert_str_eq(r->tr[1].bn.reason, "cleared");
    ck_assert_int_eq(r->tr[1].bn.raised_at_ms, r->tr[0].bn.raised_at_ms);
    ck_assert_double_eq(metric(&r->tr[1], "token_usage_ratio")->threshold,
                        0.75);
    ck_assert(!sm_swarm_is_raised(sw, SM_BN_TOKEN_EXHAUSTION, ""));
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(token_updated_on_severity_change)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    token(sw, r, T0, 850, 1000);
    token(sw, r, T0 + 1000, 850, 1000);
    token(sw, r, T0 + 2000, 870, 1000);         /* same band: silent */
    ck_assert_uint_eq(r->n, 1);
    token(sw, r, T0 + 3000, 950, 1000);
    ck_assert_uint_eq(r->n, 2);
    ck_assert_int_eq(r->tr[1].bn.transition, SM_TR_UPDATED);
    ck_assert_int_eq(r->tr[1].bn.severity, SM_SEV_CRITICAL);
    ck_assert_int_eq(r->tr[1].bn.raised_at_ms, T0 + 1000);
    ck_assert_uint_ne(r->tr[1].id, r->tr[0].id);
    token(sw, r, T0 + 4000, 850, 1000);         /* back to HIGH */
    ck_assert_uint_eq(r->n, 3);
    ck_assert_int_eq(r->tr[2].bn.transition, SM_TR_UPDATED);
    ck_assert_int_eq(r->tr[2].bn.severity, SM_SEV_HIGH);
    ck_assert_uint_ne(r->tr[2].id, r->tr[1].id);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(token_unreported_budget_leaves_gauge)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    token(sw, r, T0, 850, 1000);
    token(sw, r, T0 + 1000, 0, 0);              /* no budget: not a sample */
    token(sw, r, T0 + 2000, 850, 1000);
    ck_assert_uint_eq(r->n, 1);                 /* two consecutive samples */
    for (int i = 3; i < 10; i++)
        token(sw, r, T0 + i * 1000, 0, 0);
    ck_assert_uint_eq(r->n, 1);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(token_stale_gauge_resolves_no_data)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    token(sw, r, T0, 850, 1000);
    token(sw, r, T0 + 1000, 850, 1000);
    sm_swarm_advance(sw, T0 + 1000 + 59000, &r->buf);
    drain(r);
    ck_assert_uint_eq(r->n, 1);                 /* still inside the window */
    sm_swarm_advance(sw, T0 + 1000 + 61000, &r->buf);
    drain(r);
    ck_assert_uint_eq(r->n, 2);
    ck_assert_int_eq(r->tr[1].bn.transition, SM_TR_RESOLVED);
    ck_assert_str_eq(r->tr[1].bn.reason, "no_data");
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

/* --------------------------------------------------------------- quota */

START_TEST(quota_raised_at_quota_not_below)
{
    /* SPEC: "active agents at or over the agent quota" */
    sm_swarm *sw = mk();
    rec *r = rec_new();
    for (int i = 0; i < 10; i++)
        quota(sw, r, T0 + i * 1000, 9, 10);
    ck_assert_uint_eq(r->total, 0);
    quota(sw, r, T0 + 10000, 10, 10);
    ck_assert_uint_eq(r->total, 0);             /* debounce */
    quota(sw, r, T0 + 11000, 10, 10);
    ck_assert_uint_eq(r->n, 1);
    ck_assert_int_eq(r->tr[0].bn.type, SM_BN_QUOTA_EXCEEDED);
    ck_assert_int_eq(r->tr[0].bn.severity, SM_SEV_CRITICAL);
    ck_assert_str_eq(r->tr[0].bn.reason, "active_agents");
    ck_assert_double_eq(metric(&r->tr[0], "active_agents")->value, 10);
    ck_assert_double_eq(metric(&r->tr[0], "agent_quota")->value, 10);
    /* 9 of 10 is not under 90%: stays raised */
    for (int i = 0; i < 10; i++)
        quota(sw, r, T0 + 12000 + i * 1000, 9, 10);
    ck_assert_uint_eq(r->n, 1);
    quota(sw, r, T0 + 30000, 8, 10);
    quota(sw, r, T0 + 31000, 8, 10);
    ck_assert_uint_eq(r->n, 2);
    ck_assert_int_eq(r->tr[1].bn.transition, SM_TR_RESOLVED);
    ck_assert_str_eq(r->tr[1].bn.reason, "cleared");
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

/* --------------------------------------------------------------- queue */

START_TEST(queue_raised_just_over)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    for (int i = 0; i < 10; i++)
        queue(sw, r, T0 + i * 1000, 50);
    ck_assert_uint_eq(r->total, 0);
    queue(sw, r, T0 + 10000, 51);
    queue(sw, r, T0 + 11000, 51);
    ck_assert_uint_eq(r->n, 1);
    ck_assert_int_eq(r->tr[0].bn.type, SM_BN_QUEUE_BACKLOG);
    ck_assert_int_eq(r->tr[0].bn.severity, SM_SEV_MEDIUM);
    ck_assert_str_eq(r->tr[0].bn.reason, "pending_tasks");
    ck_assert_double_eq(metric(&r->tr[0], "pending_tasks")->value, 51);
    ck_assert_double_eq(metric(&r->tr[0], "pending_tasks")->threshold, 50);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(queue_severity_bands)
{
    static const struct { uint32_t p; sm_severity sev; } v[] = {
        {60, SM_SEV_MEDIUM},
        {199, SM_SEV_HIGH},
        {200, SM_SEV_HIGH},         /* at critical: capped below 0.8 */
        {201, SM_SEV_CRITICAL},
        {5000, SM_SEV_CRITICAL},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        sm_swarm *sw = mk();
        rec *r = rec_new();
        queue(sw, r, T0, v[i].p);
        queue(sw, r, T0 + 1000, v[i].p);
        ck_assert_uint_eq(r->n, 1);
        ck_assert_int_eq(r->tr[0].bn.severity, v[i].sev);
        ck_assert(r->tr[0].bn.impact >= 0.4 && r->tr[0].bn.impact <= 1.0);
        sm_swarm_destroy(sw);
        rec_free(r);
    }
}
END_TEST

START_TEST(queue_no_pending_figures_leaves_gauge)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    queue(sw, r, T0, 300);
    token(sw, r, T0 + 500, 100, 1000);          /* carries no queue */
    queue(sw, r, T0 + 1000, 300);
    ck_assert_uint_eq(count(r, SM_BN_QUEUE_BACKLOG, SM_TR_RAISED), 1);
    /* hovering between clear (40) and raise (50) keeps it raised */
    for (int i = 0; i < 10; i++)
        queue(sw, r, T0 + 2000 + i * 1000, i % 2 ? 45 : 55);
    ck_assert_uint_eq(count(r, SM_BN_QUEUE_BACKLOG, SM_TR_RESOLVED), 0);
    queue(sw, r, T0 + 20000, 39);
    queue(sw, r, T0 + 21000, 39);
    ck_assert_uint_eq(count(r, SM_BN_QUEUE_BACKLOG, SM_TR_RESOLVED), 1);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

/* ----------------------------------------------------------- consensus */

/* n rounds, the last `timeouts` of them timing out, 100 ms apart. */
static void rounds(sm_swarm *sw, rec *r, int64_t *ts, int n, int timeouts)
{
    for (int i = 0; i < n; i++) {
        round_at(sw, r, *ts, i >= n - timeouts ? SM_ROUND_TIMEOUT
                                               : SM_ROUND_OK);
        *ts += 100;
    }
}

/* Held steadily between the clear and the raise line, a raised gauge stays
 * raised: the clear line, not the raise line, ends an episode. (A detector
 * that cleared on "not over the raise line" passes the alternating
 * hysteresis tests above, never this.) */
START_TEST(token_held_between_clear_and_raise_stays_raised)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    token(sw, r, ts += 1000, 850, 1000);
    token(sw, r, ts += 1000, 850, 1000);
    ck_assert_uint_eq(count(r, SM_BN_TOKEN_EXHAUSTION, SM_TR_RAISED), 1);
    for (int i = 0; i < 30; i++)
        token(sw, r, ts += 1000, 780, 1000);    /* 0.75 < 0.78 < 0.80 */
    ck_assert_uint_eq(count(r, SM_BN_TOKEN_EXHAUSTION, SM_TR_RESOLVED), 0);
    ck_assert(sm_swarm_is_raised(sw, SM_BN_TOKEN_EXHAUSTION, ""));
    token(sw, r, ts += 1000, 749, 1000);
    token(sw, r, ts += 1000, 749, 1000);
    ck_assert_uint_eq(count(r, SM_BN_TOKEN_EXHAUSTION, SM_TR_RESOLVED), 1);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(queue_held_between_clear_and_raise_stays_raised)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    queue(sw, r, ts += 1000, 60);
    queue(sw, r, ts += 1000, 60);
    ck_assert_uint_eq(count(r, SM_BN_QUEUE_BACKLOG, SM_TR_RAISED), 1);
    for (int i = 0; i < 30; i++)
        queue(sw, r, ts += 1000, 45);           /* 40 < 45 < 50 */
    ck_assert_uint_eq(count(r, SM_BN_QUEUE_BACKLOG, SM_TR_RESOLVED), 0);
    ck_assert(sm_swarm_is_raised(sw, SM_BN_QUEUE_BACKLOG, ""));
    queue(sw, r, ts += 1000, 39);
    queue(sw, r, ts += 1000, 39);
    ck_assert_uint_eq(count(r, SM_BN_QUEUE_BACKLOG, SM_TR_RESOLVED), 1);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(quota_held_between_clear_and_quota_stays_raised)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    quota(sw, r, ts += 1000, 20, 20);
    quota(sw, r, ts += 1000, 20, 20);
    ck_assert_uint_eq(count(r, SM_BN_QUOTA_EXCEEDED, SM_TR_RAISED), 1);
    for (int i = 0; i < 30; i++)
        quota(sw, r, ts += 1000, 19, 20);       /* 18 <= 19 < 20 */
    ck_assert_uint_eq(count(r, SM_BN_QUOTA_EXCEEDED, SM_TR_RESOLVED), 0);
    ck_assert(sm_swarm_is_raised(sw, SM_BN_QUOTA_EXCEEDED, ""));
    quota(sw, r, ts += 1000, 17, 20);
    quota(sw, r, ts += 1000, 17, 20);
    ck_assert_uint_eq(count(r, SM_BN_QUOTA_EXCEEDED, SM_TR_RESOLVED), 1);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(consensus_min_rounds_guard)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    rounds(sw, r, &ts, 9, 9);                   /* 100% but only 9 rounds */
    ck_assert_uint_eq(r->total, 0);
    round_at(sw, r, ts, SM_ROUND_OK);           /* 10th: 9/10 */
    ck_assert_uint_eq(r->n, 1);
    ck_assert_int_eq(r->tr[0].bn.type, SM_BN_CONSENSUS_TIMEOUT);
    ck_assert_int_eq(r->tr[0].bn.severity, SM_SEV_HIGH);
    ck_assert_str_eq(r->tr[0].subject, "grp-1");
    ck_assert_str_eq(r->tr[0].bn.reason, "timeout_rate");
    ck_assert_double_eq(metric(&r->tr[0], "rounds")->value, 10);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(consensus_not_raised_at_threshold)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    /* timeouts first, so the rate only falls: 2/20 = 10% exactly at the
     * end, and every prefix of >= 10 rounds is at most 2/10 = 20%... */
    for (int i = 0; i < 20; i++)
        round_at(sw, r, ts += 100, i % 10 == 9 ? SM_ROUND_TIMEOUT
                                               : SM_ROUND_OK);
    /* prefixes: 1/10 = 10%, 1/11.., 2/20 = 10%: never over */
    ck_assert_uint_eq(r->total, 0);
    /* FAILED rounds count as rounds, not as timeouts */
    for (int i = 0; i < 20; i++)
        round_at(sw, r, ts += 100, SM_ROUND_FAILED);
    ck_assert_uint_eq(r->total, 0);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

/* A swarm whose consensus rule is the window rate alone: the evidence
 * needed is a hair, so the band and clear tests below see the rate rules
 * in isolation (consensus_needs_evidence tests the evidence). */
static sm_swarm *mk_rate_only(void)
{
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    cfg.consensus_evidence = 0.01;
    return mk_cfg("swarm-a", &cfg);
}

START_TEST(consensus_bands_and_update)
{
    sm_swarm *sw = mk_rate_only();
    rec *r = rec_new();
    int64_t ts = T0;
    rounds(sw, r, &ts, 20, 3);                  /* ends at 3/20 = 15% */
    ck_assert_uint_eq(r->n, 1);
    ck_assert_int_eq(r->tr[0].bn.transition, SM_TR_RAISED);
    ck_assert_int_eq(r->tr[0].bn.severity, SM_SEV_MEDIUM);
    ck_assert_double_eq(metric(&r->tr[0], "timeout_rate")->value,
                        2.0 / 19.0);
    sm_swarm_destroy(sw);

    sw = mk_rate_only();
    rec_reset(r);
    ts = T0;
    rounds(sw, r, &ts, 20, 5);                  /* ends at 5/20 = 25% */
    ck_assert_int_eq(count(r, SM_BN_CONSENSUS_TIMEOUT, SM_TR_RAISED), 1);
    ck_assert_int_eq(r->tr[0].bn.severity, SM_SEV_MEDIUM);     /* at 2/17 */
    ck_assert_int_eq(count(r, SM_BN_CONSENSUS_TIMEOUT, SM_TR_UPDATED), 1);
    const sm_decision *t = last_of(r, SM_BN_CONSENSUS_TIMEOUT);
    ck_assert_int_eq(t->bn.transition, SM_TR_UPDATED);
    ck_assert_int_eq(t->bn.severity, SM_SEV_HIGH);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(consensus_rounds_age_out)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    rounds(sw, r, &ts, 10, 5);
    ck_assert_uint_eq(r->n, 1);
    sm_swarm_advance(sw, ts + 30000, &r->buf);
    drain(r);
    ck_assert_uint_eq(r->n, 1);
    sm_swarm_advance(sw, ts + 61000, &r->buf);
    drain(r);
    ck_assert_uint_eq(r->n, 2);
    ck_assert_int_eq(r->tr[1].bn.transition, SM_TR_RESOLVED);
    ck_assert_str_eq(r->tr[1].bn.reason, "no_data");
    ck_assert(!sm_swarm_is_raised(sw, SM_BN_CONSENSUS_TIMEOUT, ""));
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(consensus_clears_below_clear_rate)
{
    sm_swarm *sw = mk_rate_only();
    rec *r = rec_new();
    int64_t ts = T0;
    rounds(sw, r, &ts, 10, 2);                  /* 20%: raised */
    ck_assert_uint_eq(count(r, SM_BN_CONSENSUS_TIMEOUT, SM_TR_RAISED), 1);
    rounds(sw, r, &ts, 30, 0);                  /* 2/40 = 5%: not below */
    ck_assert_uint_eq(count(r, SM_BN_CONSENSUS_TIMEOUT, SM_TR_RESOLVED), 0);
    round_at(sw, r, ts, SM_ROUND_OK);           /* 2/41 < 5% */
    ck_assert_uint_eq(count(r, SM_BN_CONSENSUS_TIMEOUT, SM_TR_RESOLVED), 1);
    ck_assert_str_eq(last_of(r, SM_BN_CONSENSUS_TIMEOUT)->bn.reason, "cleared");
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

/* Timeouts are evidence round by round (degraded 20% vs healthy 5%): a
 * chance cluster that tips one window over 10% is not a bottleneck, a
 * sustained rate is; each group is judged on its own rounds and raised
 * under its own name. */
START_TEST(consensus_needs_evidence)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    for (int i = 0; i < 200; i++) {             /* 40 s of healthy rounds */
        round_at(sw, r, ts, SM_ROUND_OK);
        ts += 200;
    }
    rounds(sw, r, &ts, 20, 3);                  /* 3 of the last 20: 15% */
    ck_assert_uint_eq(r->total, 0);
    for (int i = 0; i < 60; i++) {              /* g1 degrades: 1 in 3 */
        sm_consensus_round c = {.ts_ms = ts += 200, .group = "g1",
                                .outcome = i % 3 == 0 ? SM_ROUND_TIMEOUT
                                                      : SM_ROUND_OK,
                                .participants = 5, .quorum = 3};
        ck_assert_int_eq(fed(r, sm_swarm_on_consensus(sw, &c, &r->buf)),
                         SM_OK);
        round_at(sw, r, ts += 200, SM_ROUND_OK);    /* grp-1 stays fine */
    }
    ck_assert_uint_eq(count(r, SM_BN_CONSENSUS_TIMEOUT, SM_TR_RAISED), 1);
    const sm_decision *t = last_of(r, SM_BN_CONSENSUS_TIMEOUT);
    ck_assert_str_eq(t->subject, "g1");
    ck_assert_str_eq(t->evidence.id, "g1");
    ck_assert(sm_swarm_is_raised(sw, SM_BN_CONSENSUS_TIMEOUT, "g1"));
    ck_assert(!sm_swarm_is_raised(sw, SM_BN_CONSENSUS_TIMEOUT, "grp-1"));
    ck_assert(sm_swarm_is_raised(sw, SM_BN_CONSENSUS_TIMEOUT, ""));
    ck_assert_double_gt(metric(t, "timeout_evidence")->value, 5.0);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(consensus_late_round_out_of_window_ignored)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0 + 100000;
    round_at(sw, r, ts, SM_ROUND_OK);
    /* ten timeouts from two minutes ago: outside the window */
    for (int i = 0; i < 10; i++)
        round_at(sw, r, T0 - 20000 + i, SM_ROUND_TIMEOUT);
    ck_assert_uint_eq(r->total, 0);
    ck_assert_int_eq(sm_swarm_now(sw), ts);     /* clock did not go back */
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

/* ---------------------------------------------------------- slow agent */

/* Normal swarm of 30 tasks at 1000 ms, then `who` finishes n tasks at ms. */
static void slow_scenario(sm_swarm *sw, rec *r, int64_t *ts,
                          const char *who, int n, uint32_t ms)
{
    normal_load(sw, r, ts, 3, 1000);
    tasks_of(sw, r, ts, who, n, SM_TASK_COMPLETED, ms);
}

/* 2.5x its type's baseline: the evidence (tolerable 1.6x vs slow 3x, at
 * the floor spread 0.25) crosses 3 nats on the 3rd task, and the agent is
 * judged once it has slow_min_agent_tasks (5). */
START_TEST(slow_raised_just_over)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    slow_scenario(sw, r, &ts, "slow", 4, 2500);
    ck_assert_uint_eq(r->n, 0);
    tasks_of(sw, r, &ts, "slow", 1, SM_TASK_COMPLETED, 2500);
    ck_assert_uint_eq(r->n, 1);
    const sm_decision *t = &r->tr[0];
    ck_assert_int_eq(t->bn.type, SM_BN_SLOW_AGENT);
    ck_assert_int_eq(t->bn.transition, SM_TR_RAISED);
    ck_assert_int_eq(t->bn.severity, SM_SEV_MEDIUM);
    ck_assert_str_eq(t->subject, "slow");
    ck_assert_str_eq(t->bn.reason, "duration_ratio");
    ck_assert_double_eq_tol(metric(t, "duration_ratio")->value, 2.5, 1e-9);
    ck_assert_uint_eq(metric(t, "duration_ratio")->samples, 5);
    ck_assert_double_eq(metric(t, "swarm_median_ratio")->value, 1.0);
    ck_assert_double_eq(metric(t, "success_rate")->value, 1.0);
    ck_assert(sm_swarm_is_raised(sw, SM_BN_SLOW_AGENT, "slow"));
    ck_assert(!sm_swarm_is_raised(sw, SM_BN_SLOW_AGENT, "n0"));
    ck_assert(!sm_swarm_is_raised(sw, SM_BN_SLOW_AGENT, "nobody"));
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

/* Over slow_raise (2.0) but below the evidence test's midpoint between
 * tolerable (1.6) and slow (3.0), about 2.19x: however many tasks, no
 * case builds up. */
START_TEST(slow_not_raised_at_ratio)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    slow_scenario(sw, r, &ts, "slow", 16, 2100);
    ck_assert_uint_eq(r->total, 0);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(slow_severity_bands)
{
    static const struct { uint32_t ms; sm_severity sev; } v[] = {
        {2500, SM_SEV_MEDIUM},
        {3000, SM_SEV_MEDIUM},      /* at slow_high: capped below 0.6 */
        {3500, SM_SEV_HIGH},
        {60000, SM_SEV_HIGH},       /* HIGH is the top band of the type */
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        sm_swarm *sw = mk();
        rec *r = rec_new();
        int64_t ts = T0;
        slow_scenario(sw, r, &ts, "slow", 5, v[i].ms);
        ck_assert_uint_eq(r->n, 1);
        ck_assert_int_eq(r->tr[0].bn.severity, v[i].sev);
        sm_swarm_destroy(sw);
        rec_free(r);
    }
}
END_TEST

START_TEST(slow_min_agent_tasks_guard)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    slow_scenario(sw, r, &ts, "slow", 4, 10000);
    ck_assert_uint_eq(r->total, 0);             /* 4 tasks never flag */
    tasks_of(sw, r, &ts, "slow", 1, SM_TASK_COMPLETED, 10000);
    ck_assert_uint_eq(r->n, 1);                 /* the 5th does */
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(slow_min_swarm_tasks_guard)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    /* 24 normal tasks (the first 10 build the type baseline, 14 are
     * judged) + the agent's own 5 = 19 judged swarm samples */
    for (int i = 0; i < 24; i++) {
        char id[16];
        snprintf(id, sizeof id, "n%d", i % 7);
        task(sw, r, ts += 100, id, SM_TASK_COMPLETED, 1000);
    }
    tasks_of(sw, r, &ts, "slow", 5, SM_TASK_COMPLETED, 10000);
    ck_assert_uint_eq(r->total, 0);
    task(sw, r, ts += 100, "n0", SM_TASK_COMPLETED, 1000);     /* 20th */
    ck_assert_uint_eq(r->total, 0);     /* judged on its own next task */
    tasks_of(sw, r, &ts, "slow", 1, SM_TASK_COMPLETED, 10000);
    ck_assert_uint_eq(r->n, 1);
    ck_assert_int_eq(r->tr[0].bn.transition, SM_TR_RAISED);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(slow_outlier_does_not_flag)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    normal_load(sw, r, &ts, 3, 1000);
    static const uint32_t odd[] = {1000, 1000, 50000, 1000, 1000, 1000};
    for (size_t i = 0; i < 6; i++)
        task(sw, r, ts += 100, "odd", SM_TASK_COMPLETED, odd[i]);
    tasks_of(sw, r, &ts, "steady-slow", 5, SM_TASK_COMPLETED, 2500);
    ck_assert_uint_eq(r->n, 1);
    ck_assert_str_eq(r->tr[0].subject, "steady-slow");
    ck_assert(!sm_swarm_is_raised(sw, SM_BN_SLOW_AGENT, "odd"));
    ck_assert(sm_swarm_is_raised(sw, SM_BN_SLOW_AGENT, "steady-slow"));
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

/* A naturally spread swarm (200..4000 ms) and an agent at about 2.4x the
 * median: over slow_raise, but within what the swarm's own spread makes
 * ordinary, so the evidence never builds (by default; the optional MAD
 * guard, slow_mad_k, is a second way to raise, and at 3 MADs it does not
 * either). */
static size_t mad_run(double k)
{
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    cfg.slow_mad_k = k;
    sm_swarm *sw = mk_cfg("spread", &cfg);
    rec *r = rec_new();
    int64_t ts = T0;
    for (int rep = 0; rep < 4; rep++) {
        for (int i = 0; i < 20; i++) {
            char id[16];
            snprintf(id, sizeof id, "w%d", i);
            task(sw, r, ts += 100, id, SM_TASK_COMPLETED,
                 (uint32_t)(200 + 200 * i));
        }
    }
    tasks_of(sw, r, &ts, "tail", 5, SM_TASK_COMPLETED, 5000);
    size_t n = count(r, SM_BN_SLOW_AGENT, SM_TR_RAISED);
    if (n > 0)
        ck_assert_double_gt(metric(&r->tr[0], "duration_ratio")->value, 2.0);
    sm_swarm_destroy(sw);
    rec_free(r);
    return n;
}

START_TEST(slow_mad_guard)
{
    ck_assert_uint_eq(mad_run(0.0), 0);
    ck_assert_uint_eq(mad_run(3.0), 0);
}
END_TEST

/* Failures are evidence too, task by task: failing (45%) vs healthy (20%).
 * An agent failing 3 tasks in 5 is raised on its 15th task (5.04 nats); one failing 1 in 5 (80%
 * success, healthy but unlucky) never is, however long it runs; nine
 * failures are below success_min_tasks (10). */
START_TEST(slow_success_rate_rule)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    normal_load(sw, r, &ts, 3, 1000);
    static const sm_task_kind flaky[] = {
        SM_TASK_FAILED, SM_TASK_COMPLETED, SM_TASK_TIMED_OUT,
        SM_TASK_COMPLETED, SM_TASK_FAILED,
    };
    static const sm_task_kind fine[] = {
        SM_TASK_COMPLETED, SM_TASK_COMPLETED, SM_TASK_FAILED,
        SM_TASK_COMPLETED, SM_TASK_COMPLETED,
    };
    for (int i = 0; i < 40; i++) {
        if (i < 15)
            task(sw, r, ts += 100, "flaky", flaky[i % 5], 1000);
        task(sw, r, ts += 100, "fine", fine[i % 5], 1000);
        if (i < 9)
            task(sw, r, ts += 100, "few", SM_TASK_FAILED, 1000);
        /* cancelled and started are not finishes */
        task(sw, r, ts += 100, "fine", SM_TASK_CANCELLED, 0);
        task(sw, r, ts += 100, "fine", SM_TASK_STARTED, 0);
    }
    ck_assert(!sm_swarm_is_raised(sw, SM_BN_SLOW_AGENT, "fine"));
    ck_assert(!sm_swarm_is_raised(sw, SM_BN_SLOW_AGENT, "few"));
    ck_assert_uint_eq(r->n, 1);
    const sm_decision *t = &r->tr[0];
    ck_assert_str_eq(t->subject, "flaky");
    ck_assert_str_eq(t->bn.reason, "success_rate");
    ck_assert_int_eq(t->bn.severity, SM_SEV_MEDIUM);
    ck_assert_double_eq_tol(metric(t, "success_rate")->value, 0.4, 1e-12);
    ck_assert_uint_eq(metric(t, "success_rate")->samples, 15);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

/* Timed-out and failed durations are not duration samples: 80 timeouts of
 * 60 s do not drag the swarm median up. */
START_TEST(slow_failed_durations_not_in_median)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    normal_load(sw, r, &ts, 3, 1000);
    for (int i = 0; i < 80; i++) {
        char id[16];
        snprintf(id, sizeof id, "t%d", i % 8);
        task(sw, r, ts += 100, id, i % 2 ? SM_TASK_TIMED_OUT
                                         : SM_TASK_FAILED, 60000);
    }
    size_t before = r->n;                       /* t0..t7 flagged by success */
    ck_assert_uint_eq(before, 8);
    tasks_of(sw, r, &ts, "slow", 5, SM_TASK_COMPLETED, 2500);
    ck_assert_uint_eq(r->n, before + 1);
    const sm_decision *t = last_of(r, SM_BN_SLOW_AGENT);
    ck_assert_str_eq(t->subject, "slow");
    ck_assert_double_eq(metric(t, "swarm_median_ratio")->value, 1.0);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(slow_updated_on_severity_change)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    slow_scenario(sw, r, &ts, "slow", 5, 2500);
    ck_assert_int_eq(r->tr[0].bn.severity, SM_SEV_MEDIUM);
    normal_load(sw, r, &ts, 1, 1000);
    tasks_of(sw, r, &ts, "slow", 5, SM_TASK_COMPLETED, 4000);
    ck_assert_uint_eq(count(r, SM_BN_SLOW_AGENT, SM_TR_UPDATED), 1);
    const sm_decision *t = last_of(r, SM_BN_SLOW_AGENT);
    ck_assert_int_eq(t->bn.transition, SM_TR_UPDATED);
    ck_assert_int_eq(t->bn.severity, SM_SEV_HIGH);
    ck_assert_int_eq(t->bn.raised_at_ms, r->tr[0].bn.raised_at_ms);
    ck_assert_uint_eq(count(r, SM_BN_SLOW_AGENT, SM_TR_RESOLVED), 0);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(slow_resolved_when_quiet_by_advance)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    slow_scenario(sw, r, &ts, "slow", 5, 2500);
    ck_assert_uint_eq(r->n, 1);
    sm_swarm_advance(sw, ts + 300000, &r->buf);    /* inside the horizon */
    drain(r);
    ck_assert_uint_eq(r->n, 1);
    sm_swarm_advance(sw, ts + 601000, &r->buf);
    drain(r);
    ck_assert_uint_eq(r->n, 2);
    ck_assert_int_eq(r->tr[1].bn.transition, SM_TR_RESOLVED);
    ck_assert_str_eq(r->tr[1].bn.reason, "no_data");
    ck_assert_str_eq(r->tr[1].subject, "slow");
    ck_assert_int_eq(r->tr[1].bn.severity, SM_SEV_MEDIUM);
    ck_assert(!sm_swarm_is_raised(sw, SM_BN_SLOW_AGENT, "slow"));
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(slow_resolved_when_quiet_by_other_events)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    slow_scenario(sw, r, &ts, "slow", 5, 2500);
    /* only other agents talk; their heartbeats move event time */
    for (int i = 0; i < 62; i++)
        beat(sw, r, ts + i * 10000, "n1");
    ck_assert_uint_eq(count(r, SM_BN_SLOW_AGENT, SM_TR_RESOLVED), 1);
    ck_assert_str_eq(last_of(r, SM_BN_SLOW_AGENT)->bn.reason, "no_data");
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(slow_hold_stops_resolve_reraise_churn)
{
    /* At the end of a slowdown the agent's last tasks are half slow, half
     * normal, and its median swings across the thresholds from one task to
     * the next. The hold keeps it one episode: no RESOLVED then RAISED. */
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    slow_scenario(sw, r, &ts, "slow", 5, 2500);
    normal_load(sw, r, &ts, 1, 1000);
    for (int k = 0; k < 8; k++) {
        tasks_of(sw, r, &ts, "slow", 5, SM_TASK_COMPLETED, 1000);
        tasks_of(sw, r, &ts, "slow", 5, SM_TASK_COMPLETED, 2500);
    }
    ck_assert_uint_eq(count(r, SM_BN_SLOW_AGENT, SM_TR_RAISED), 1);
    ck_assert_uint_eq(count(r, SM_BN_SLOW_AGENT, SM_TR_RESOLVED), 0);
    sm_swarm_destroy(sw);
    rec_free(r);

    /* the same stream without the hold churns: the hold is what stops it */
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    cfg.slow_clear_hold_ms = 0;
    sw = mk_cfg("swarm-a", &cfg);
    r = rec_new();
    ts = T0;
    slow_scenario(sw, r, &ts, "slow", 5, 2500);
    normal_load(sw, r, &ts, 1, 1000);
    for (int k = 0; k < 8; k++) {
        tasks_of(sw, r, &ts, "slow", 5, SM_TASK_COMPLETED, 1000);
        tasks_of(sw, r, &ts, "slow", 5, SM_TASK_COMPLETED, 2500);
    }
    ck_assert_uint_gt(count(r, SM_BN_SLOW_AGENT, SM_TR_RESOLVED), 0);
    ck_assert_uint_gt(count(r, SM_BN_SLOW_AGENT, SM_TR_RAISED), 1);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(severity_does_not_flap_at_a_band_edge)
{
    /* token usage alternating 0.89 / 0.91 straddles the critical edge:
     * one step up to critical, and no step down until clearly below */
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    token(sw, r, ts += 1000, 850, 1000);
    token(sw, r, ts += 1000, 850, 1000);      /* raised: high */
    for (int i = 0; i < 20; i++)
        token(sw, r, ts += 1000, (i % 2) ? 890 : 910, 1000);
    ck_assert_uint_eq(count(r, SM_BN_TOKEN_EXHAUSTION, SM_TR_RAISED), 1);
    ck_assert_uint_eq(count(r, SM_BN_TOKEN_EXHAUSTION, SM_TR_UPDATED), 1);
    ck_assert_int_eq(last_of(r, SM_BN_TOKEN_EXHAUSTION)->bn.severity, SM_SEV_CRITICAL);
    token(sw, r, ts += 1000, 850, 1000);      /* impact 0.70 < 0.80 - 0.05 */
    ck_assert_uint_eq(count(r, SM_BN_TOKEN_EXHAUSTION, SM_TR_UPDATED), 2);
    ck_assert_int_eq(last_of(r, SM_BN_TOKEN_EXHAUSTION)->bn.severity, SM_SEV_HIGH);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(slow_resolved_cleared_when_fast_again)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    slow_scenario(sw, r, &ts, "slow", 5, 2500);
    normal_load(sw, r, &ts, 1, 1000);
    tasks_of(sw, r, &ts, "slow", 5, SM_TASK_COMPLETED, 1000);
    ck_assert_uint_eq(count(r, SM_BN_SLOW_AGENT, SM_TR_RESOLVED), 0);
    tasks_of(sw, r, &ts, "slow", 1, SM_TASK_COMPLETED, 1000);  /* 6 of 11 */
    /* normal now, but it must stay normal for slow_clear_hold_ms (5 s) */
    ck_assert_uint_eq(count(r, SM_BN_SLOW_AGENT, SM_TR_RESOLVED), 0);
    for (int i = 1; i <= 4; i++)
        beat(sw, r, ts + i * 1000, "n1");
    ck_assert_uint_eq(count(r, SM_BN_SLOW_AGENT, SM_TR_RESOLVED), 0);
    for (int i = 5; i <= 6; i++)
        beat(sw, r, ts + i * 1000, "n1");
    ck_assert_uint_eq(count(r, SM_BN_SLOW_AGENT, SM_TR_RESOLVED), 1);
    const sm_decision *t = last_of(r, SM_BN_SLOW_AGENT);
    ck_assert_str_eq(t->bn.reason, "cleared");
    ck_assert_double_lt(metric(t, "duration_ratio")->value, 1.5);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

/* A raised agent clears on fresh evidence: its latest slow_clear_tasks (4)
 * tasks alone favour tolerable over slow by slow_clear_evidence, although
 * its longer median (6 tasks, two of them from the slowdown) is still over
 * the clear line and its CUSUM is not at 0 (the last task ran 2.4x): the
 * rule before it held such an agent as long as the fault's tasks stayed
 * among its latest six. A single fast task cannot do it alone. */
/* A slow agent (4x) raised, then three tasks of first_ms and one of
 * last_ms, then 6 s of heartbeats: how many RESOLVED ("cleared"). */
static int fresh_clear_run(const sm_detect_config *cfg, uint32_t first_ms,
                           uint32_t last_ms)
{
    sm_swarm *sw = mk_cfg("swarm-a", cfg);
    rec *r = rec_new();
    int64_t ts = T0;
    slow_scenario(sw, r, &ts, "slow", 8, 4000);
    ck_assert_uint_eq(count(r, SM_BN_SLOW_AGENT, SM_TR_RAISED), 1);
    normal_load(sw, r, &ts, 1, 1000);
    tasks_of(sw, r, &ts, "slow", 3, SM_TASK_COMPLETED, first_ms);
    tasks_of(sw, r, &ts, "slow", 1, SM_TASK_COMPLETED, last_ms);
    for (int i = 1; i <= 6; i++)
        beat(sw, r, ts + i * 1000, "n1");
    int resolved = (int)count(r, SM_BN_SLOW_AGENT, SM_TR_RESOLVED);
    if (resolved > 0)
        ck_assert_str_eq(last_of(r, SM_BN_SLOW_AGENT)->bn.reason, "cleared");
    sm_swarm_destroy(sw);
    rec_free(r);
    return resolved;
}

START_TEST(slow_clears_on_fresh_evidence)
{
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    ck_assert_int_eq(fresh_clear_run(&cfg, 1000, 2400), 1);
    cfg.slow_clear_evidence = 0;        /* the rule before: held */
    ck_assert_int_eq(fresh_clear_run(&cfg, 1000, 2400), 0);
    /* the line matters: at the floor spread (0.25) those four tasks give
     * about 23 nats for tolerable */
    sm_detect_config_default(&cfg);
    cfg.slow_clear_evidence = 30;
    ck_assert_int_eq(fresh_clear_run(&cfg, 1000, 2400), 0);
    cfg.slow_clear_evidence = 20;
    ck_assert_int_eq(fresh_clear_run(&cfg, 1000, 2400), 1);
}
END_TEST

START_TEST(slow_one_fast_task_does_not_clear)
{
    /* three more tasks at 4x and one at 0.2x: the latest four do not
     * favour tolerable (the fast one is clipped at 0.85x); four at 0.85x
     * do */
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    ck_assert_int_eq(fresh_clear_run(&cfg, 4000, 200), 0);
    ck_assert_int_eq(fresh_clear_run(&cfg, 850, 850), 1);
}
END_TEST

START_TEST(slow_unregister_resolves_and_restarts_clean)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    slow_scenario(sw, r, &ts, "slow", 5, 2500);
    size_t agents = sm_swarm_agent_count(sw);
    lifecycle(sw, r, ts += 100, "slow", false);
    ck_assert_uint_eq(r->n, 2);
    ck_assert_int_eq(r->tr[1].bn.transition, SM_TR_RESOLVED);
    ck_assert_str_eq(r->tr[1].bn.reason, "no_data");
    ck_assert_uint_eq(sm_swarm_agent_count(sw), agents);   /* kept */
    /* re-registered, its old slow tasks are gone: one more slow task is
     * not enough to flag it again */
    lifecycle(sw, r, ts += 100, "slow", true);
    tasks_of(sw, r, &ts, "slow", 1, SM_TASK_COMPLETED, 2500);
    ck_assert_uint_eq(r->n, 2);
    /* unregistering an unknown agent creates nothing */
    lifecycle(sw, r, ts += 100, "ghost", false);
    ck_assert_uint_eq(sm_swarm_agent_count(sw), agents);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(slow_late_tasks_out_of_window_ignored)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0 + 700000;
    normal_load(sw, r, &ts, 3, 1000);
    /* five very slow tasks stamped beyond the slow horizon (10 min) */
    for (int i = 0; i < 5; i++)
        task(sw, r, T0 + i, "late", SM_TASK_COMPLETED, 10000);
    ck_assert_uint_eq(r->total, 0);
    ck_assert_int_eq(sm_swarm_now(sw), ts - 100);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

/* -------------------------------------------------------- decision ids */

static uint64_t expected_id(const sm_decision *t)
{
    uint64_t h = sm_hash_str(SM_HASH_INIT, t->swarm);
    h = sm_hash_u64(h, (uint64_t)t->bn.type);
    h = sm_hash_str(h, t->subject);
    h = sm_hash_u64(h, (uint64_t)t->bn.raised_at_ms);
    h = sm_hash_u64(h, (uint64_t)t->bn.transition);
    if (t->bn.transition == SM_TR_UPDATED) {
        h = sm_hash_u64(h, (uint64_t)t->at_ms);
        h = sm_hash_u64(h, (uint64_t)t->bn.severity);
    }
    return h;
}

START_TEST(decision_ids_follow_the_formula)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    token(sw, r, ts += 1000, 850, 1000);
    token(sw, r, ts += 1000, 850, 1000);        /* raised */
    token(sw, r, ts += 1000, 950, 1000);        /* updated */
    token(sw, r, ts += 1000, 100, 1000);
    token(sw, r, ts += 1000, 100, 1000);        /* resolved */
    token(sw, r, ts += 1000, 850, 1000);
    token(sw, r, ts += 1000, 850, 1000);        /* a second episode */
    slow_scenario(sw, r, &ts, "slow", 5, 2500);
    ck_assert_uint_eq(r->n, 5);
    for (size_t i = 0; i < r->n; i++)
        ck_assert_uint_eq(r->tr[i].id, expected_id(&r->tr[i]));
    /* all distinct: kinds and episodes differ */
    for (size_t i = 0; i < r->n; i++) {
        for (size_t j = i + 1; j < r->n; j++)
            ck_assert_uint_ne(r->tr[i].id, r->tr[j].id);
    }
    ck_assert_int_eq(r->tr[3].bn.transition, SM_TR_RAISED);
    ck_assert_int_ne(r->tr[3].bn.raised_at_ms, r->tr[0].bn.raised_at_ms);
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

/* Every id a run decided, bottlenecks then failures. */
static size_t ids_of(const rec *r, uint64_t *ids)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        ids[n++] = r->tr[i].id;
    for (size_t i = 0; i < r->nf; i++)
        ids[n++] = r->ftr[i].id;
    return n;
}

/* Several decisions of one kind in one millisecond: a token episode
 * raised, its severity up and down twice, resolved, and a second episode
 * raised in the same ms that resolves a second later; an agent's task
 * timing out three times in one ms (raised, resolved, raised, ...), the
 * last one resolved later. */
static void same_ms_run(sm_swarm *sw, rec *r)
{
    static const uint64_t used[] = {850, 850, 950, 760, 950, 760,
                                    100, 100, 850, 850};
    for (size_t i = 0; i < sizeof used / sizeof used[0]; i++)
        token(sw, r, T0, used[i], 1000);
    token(sw, r, T0 + 1000, 100, 1000);
    token(sw, r, T0 + 1000, 100, 1000);
    for (int i = 0; i < 5; i++)
        task(sw, r, T0 + 1000, "a",
             i % 2 ? SM_TASK_COMPLETED : SM_TASK_TIMED_OUT, 100);
    task(sw, r, T0 + 2000, "a", SM_TASK_COMPLETED, 100);
}

START_TEST(decision_ids_distinct_within_one_ms)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    same_ms_run(sw, r);
    ck_assert_uint_eq(count(r, SM_BN_TOKEN_EXHAUSTION, SM_TR_RAISED), 2);
    ck_assert_uint_eq(count(r, SM_BN_TOKEN_EXHAUSTION, SM_TR_UPDATED), 4);
    ck_assert_uint_eq(count(r, SM_BN_TOKEN_EXHAUSTION, SM_TR_RESOLVED), 2);
    ck_assert_uint_eq(r->nf, 6);
    uint64_t ids[2 * MAXTR];
    size_t n = ids_of(r, ids);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            ck_assert_msg(ids[i] != ids[j], "decisions %zu and %zu share id "
                          "%016llx", i, j, (unsigned long long)ids[i]);
    /* the first of each stays what the formula gives */
    ck_assert_uint_eq(r->tr[0].id, expected_id(&r->tr[0]));
    sm_swarm_destroy(sw);
    rec_free(r);
}
END_TEST

START_TEST(decision_ids_same_on_replay)
{
    sm_swarm *a = mk(), *b = mk();
    rec *ra = rec_new(), *rb = rec_new();
    same_ms_run(a, ra);
    same_ms_run(b, rb);
    uint64_t ia[2 * MAXTR], ib[2 * MAXTR];
    size_t na = ids_of(ra, ia), nb = ids_of(rb, ib);
    ck_assert_uint_eq(na, nb);
    ck_assert_uint_gt(na, 10);
    for (size_t i = 0; i < na; i++)
        ck_assert_uint_eq(ia[i], ib[i]);
    sm_swarm_destroy(a);
    sm_swarm_destroy(b);
    rec_free(ra);
    rec_free(rb);
}
END_TEST

/* ------------------------------------------------- mixed workload, replay */

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Event i of a reproducible workload touching every detector: phases of
 * 2000 events (100 s) with calm, stressed and very stressed figures. */
static void workload(sm_swarm *sw, rec *r, uint64_t seed, int from, int to)
{
    for (int i = from; i < to; i++) {
        uint64_t x = mix(seed ^ (uint64_t)i);
        int64_t ts = T0 + (int64_t)i * 50;
        int phase = (i / 2000) % 3;
        unsigned kind = (unsigned)(x % 100);
        char id[16];
        snprintf(id, sizeof id, "ag%u", (unsigned)((x >> 8) % 40));
        if (kind < 55) {
            unsigned a = (unsigned)((x >> 8) % 40);
            uint32_t ms = 800 + (uint32_t)((x >> 20) % 400);
            if (a < 2)
                ms *= phase == 0 ? 1 : 3;
            sm_task_kind k = SM_TASK_COMPLETED;
            if (a == 3 && phase > 0 && (x >> 40) % 2)
                k = SM_TASK_FAILED;
            task(sw, r, ts, id, k, ms);
        } else if (kind < 65) {
            beat(sw, r, ts, id);
        } else if (kind < 80) {
            static const uint64_t used[] = {500, 860, 950};
            static const uint32_t pend[] = {10, 120, 260};
            static const uint32_t active[] = {5, 10, 12};
            sm_resource_sample s = {.ts_ms = ts, .source = "coord",
                                    .token_budget = 1000,
                                    .tokens_used = used[phase],
                                    .has_pending = true,
                                    .active_agents = active[phase],
                                    .agent_quota = 10};
            s.pending[1] = pend[phase];
            ck_assert_int_eq(fed(r, sm_swarm_on_resource(sw, &s, &r->buf)),
                             SM_OK);
        } else if (kind < 98) {
            unsigned pct = phase == 0 ? 0 : phase == 1 ? 15 : 30;
            round_at(sw, r, ts, (x >> 32) % 100 < pct ? SM_ROUND_TIMEOUT
                                                       : SM_ROUND_OK);
        } else {
            lifecycle(sw, r, ts, "ag2", (x >> 16) % 2);
        }
    }
}

#define WORK_N 12000

START_TEST(determinism_identical_runs)
{
    sm_swarm *a = mk(), *b = mk(), *c = mk();
    rec *ra = rec_new(), *rb = rec_new(), *rc = rec_new();
    workload(a, ra, 7, 0, WORK_N);
    workload(b, rb, 7, 0, WORK_N);
    workload(c, rc, 8, 0, WORK_N);              /* another stream */
    ck_assert_uint_gt(ra->total, 10);
    for (int t = SM_BN_TOKEN_EXHAUSTION; t <= SM_BN_CONSENSUS_TIMEOUT; t++)
        ck_assert_uint_gt(count(ra, (sm_bn_type)t, SM_TR_RAISED), 0);
    ck_assert_uint_eq(ra->total, rb->total);
    ck_assert_uint_eq(ra->digest, rb->digest);
    ck_assert_uint_ne(ra->digest, rc->digest);
    /* same decisions, same ids */
    for (size_t i = 0; i < ra->n; i++)
        ck_assert_uint_eq(ra->tr[i].id, rb->tr[i].id);
    sm_swarm_destroy(a);
    sm_swarm_destroy(b);
    sm_swarm_destroy(c);
    rec_free(ra);
    rec_free(rb);
    rec_free(rc);
}
END_TEST

/* Agent blobs collected by a visitor. */
typedef struct blobs {
    size_t n;
    size_t len[256];
    unsigned char data[256][1024];
    uint64_t digest;            /* order-independent: sum of FNV(id, blob) */
    size_t removed;
} blobs;

static void collect(void *ud, const char *agent, const void *blob,
                    size_t len)
{
    blobs *b = ud;
    if (blob == NULL) {
        b->removed++;
        return;
    }
    ck_assert_uint_lt(b->n, 256);
    ck_assert_uint_le(len, 1024);
    memcpy(b->data[b->n], blob, len);
    b->len[b->n++] = len;
    b->digest += sm_hash_bytes(sm_hash_str(SM_HASH_INIT, agent), blob, len);
}

static size_t export_to(const sm_swarm *sw, unsigned char **out)
{
    size_t need = sm_swarm_export(sw, NULL, 0);
    ck_assert_uint_gt(need, 0);
    *out = malloc(need);
    ck_assert_ptr_nonnull(*out);
    ck_assert_uint_eq(sm_swarm_export(sw, *out, need), need);
    return need;
}

START_TEST(export_import_round_trip)
{
    sm_swarm *a = mk();
    rec *ra = rec_new(), *rb = rec_new();
    workload(a, ra, 11, 0, WORK_N / 2);

    unsigned char *ea;
    size_t na = export_to(a, &ea);
    blobs *ag = calloc(1, sizeof *ag);
    sm_swarm_visit_dirty(a, collect, ag);
    ck_assert_uint_eq(ag->n, sm_swarm_agent_count(a));
    sm_swarm_clear_dirty(a);

    sm_swarm *b = mk();
    ck_assert_int_eq(sm_swarm_import(b, ea, na), SM_OK);
    for (size_t i = 0; i < ag->n; i++)
        ck_assert_int_eq(sm_swarm_import_agent(b, ag->data[i], ag->len[i]),
                         SM_OK);
    ck_assert_uint_eq(sm_swarm_agent_count(b), sm_swarm_agent_count(a));
    ck_assert(!sm_swarm_is_dirty(b));
    unsigned char *eb;
    size_t nb = export_to(b, &eb);
    ck_assert_uint_eq(na, nb);
    ck_assert_mem_eq(ea, eb, na);
    free(eb);

    /* the same future on both gives the same decisions and state */
    rec_reset(ra);
    workload(a, ra, 11, WORK_N / 2, WORK_N);
    workload(b, rb, 11, WORK_N / 2, WORK_N);
    ck_assert_uint_gt(rb->total, 0);
    ck_assert_uint_eq(ra->total, rb->total);
    ck_assert_uint_eq(ra->digest, rb->digest);
    free(ea);
    na = export_to(a, &ea);
    nb = export_to(b, &eb);
    ck_assert_mem_eq(ea, eb, na);
    blobs *da = calloc(1, sizeof *da), *db = calloc(1, sizeof *db);
    sm_swarm_visit_dirty(a, collect, da);
    sm_swarm_visit_dirty(b, collect, db);
    ck_assert_uint_gt(da->n, 0);
    ck_assert_uint_eq(da->n, db->n);
    ck_assert_uint_eq(da->digest, db->digest);

    free(ea);
    free(eb);
    free(ag);
    free(da);
    free(db);
    rec_free(ra);
    rec_free(rb);
    sm_swarm_destroy(a);
    sm_swarm_destroy(b);
}
END_TEST

START_TEST(import_rejects_bad_blobs)
{
    sm_swarm *a = mk();
    rec *r = rec_new();
    workload(a, r, 3, 0, 3000);
    unsigned char *e;
    size_t n = export_to(a, &e);
    blobs *ag = calloc(1, sizeof *ag);
    sm_swarm_visit_dirty(a, collect, ag);
    ck_assert_uint_gt(ag->n, 0);

    sm_swarm *b = mk();
    task(b, r, T0, "x", SM_TASK_COMPLETED, 10);
    unsigned char *before;
    size_t nbefore = export_to(b, &before);

    ck_assert_int_eq(sm_swarm_import(b, e, n - 1), SM_ERR_CORRUPT);
    ck_assert_int_eq(sm_swarm_import(b, e, 8), SM_ERR_CORRUPT);
    ck_assert_int_eq(sm_swarm_import(b, NULL, n), SM_ERR_CORRUPT);
    e[n / 2] ^= 0x40;                           /* one flipped bit */
    ck_assert_int_eq(sm_swarm_import(b, e, n), SM_ERR_CORRUPT);
    e[n / 2] ^= 0x40;
    e[4] ^= 1;                                  /* another version */
    ck_assert_int_eq(sm_swarm_import(b, e, n), SM_ERR_CORRUPT);
    e[4] ^= 1;
    /* an agent blob is not a swarm blob, and the reverse */
    ck_assert_int_eq(sm_swarm_import(b, ag->data[0], ag->len[0]),
                     SM_ERR_CORRUPT);
    ck_assert_int_eq(sm_swarm_import_agent(b, e, n), SM_ERR_CORRUPT);
    ck_assert_int_eq(sm_swarm_import_agent(b, ag->data[0], ag->len[0] - 1),
                     SM_ERR_CORRUPT);
    ag->data[0][ag->len[0] - 3] ^= 0x10;
    ck_assert_int_eq(sm_swarm_import_agent(b, ag->data[0], ag->len[0]),
                     SM_ERR_CORRUPT);

    /* a blob of another swarm, or of another window geometry */
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    sm_swarm *other = mk_cfg("swarm-b", &cfg);
    ck_assert_int_eq(sm_swarm_import(other, e, n), SM_ERR_CORRUPT);
    sm_swarm_destroy(other);
    cfg.window_ms = 120000;
    other = mk_cfg("swarm-a", &cfg);
    ck_assert_int_eq(sm_swarm_import(other, e, n), SM_ERR_CORRUPT);
    sm_swarm_destroy(other);

    /* none of it touched b */
    unsigned char *after;
    size_t nafter = export_to(b, &after);
    ck_assert_uint_eq(nbefore, nafter);
    ck_assert_mem_eq(before, after, nbefore);
    ck_assert_uint_eq(sm_swarm_agent_count(b), 1);
    /* and the untouched blob still imports */
    ck_assert_int_eq(sm_swarm_import(b, e, n), SM_OK);

    free(e);
    free(before);
    free(after);
    free(ag);
    rec_free(r);
    sm_swarm_destroy(a);
    sm_swarm_destroy(b);
}
END_TEST

/* ---- the agent blob format (layout: core/detect.c, above
 * AGENT_BLOB_MAX). Offsets below are into the blob: a 24-byte header
 * (magic, version, size, reserved, check), then the body. */

#define HDR 24
#define B_RAISED (HDR + 48)
#define B_SEV (HDR + 49)
#define B_FLAGS (HDR + 50)
#define B_IDLEN (HDR + 51)
#define B_ID (HDR + 52)

/* The body checksum, a copy of blob_check() in core/detect.c: lets a test
 * re-seal a blob it edited so the edit reaches the field checks behind
 * the checksum. */
static uint64_t body_check(const unsigned char *p, size_t n)
{
    uint64_t h = SM_HASH_INIT ^ (uint64_t)n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, sizeof w);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    return sm_hash_bytes(h, p + i, n - i);
}

/* Sets size to len and the checksum to that of the body. */
static void reseal(unsigned char *b, size_t len)
{
    uint32_t size = (uint32_t)len;
    memcpy(b + 8, &size, sizeof size);
    uint64_t c = body_check(b + HDR, len - HDR);
    memcpy(b + 16, &c, sizeof c);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* The one dirty agent blob of sw (asserts there is exactly one). */
static size_t one_blob(const sm_swarm *sw, unsigned char *out)
{
    blobs *b = calloc(1, sizeof *b);
    ck_assert_ptr_nonnull(b);
    sm_swarm_visit_dirty(sw, collect, b);
    ck_assert_uint_eq(b->n, 1);
    size_t n = b->len[0];
    memcpy(out, b->data[0], n);
    free(b);
    return n;
}

/* Imports blob into a fresh swarm (with src's swarm part) and exports the
 * agent again: a late heartbeat marks it dirty without changing it. */
static size_t reexport(const sm_swarm *src, const unsigned char *blob,
                       size_t len, const char *id, unsigned char *out)
{
    unsigned char *e;
    size_t n = export_to(src, &e);
    sm_swarm *b = mk();
    rec *r = rec_new();
    ck_assert_int_eq(sm_swarm_import(b, e, n), SM_OK);
    ck_assert_int_eq(sm_swarm_import_agent(b, blob, len), SM_OK);
    beat(b, r, 1, id);
    size_t m = one_blob(b, out);
    free(e);
    rec_free(r);
    sm_swarm_destroy(b);
    return m;
}

START_TEST(agent_blob_layout)
{
    sm_swarm *a = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    tasks_of(a, r, &ts, "ag-7", 20, SM_TASK_COMPLETED, 10);
    task(a, r, ts, "ag-7", SM_TASK_FAILED, 0);
    unsigned char b[1024];
    size_t n = one_blob(a, b);
    /* header, fixed fields, 4-byte id, 16 narrow samples of 9 bytes, the
     * failure block (present: the agent ran tasks) */
    ck_assert_uint_eq(n, HDR + 52 + 4 + 1 + 16 * 9 + 1 + 103);
    ck_assert_mem_eq(b, "SMAG", 4);
    ck_assert_uint_eq(le32(b + 4), 5);
    ck_assert_uint_eq(le32(b + 8), n);
    ck_assert_uint_eq(le32(b + 12), 0);
    ck_assert_int_eq((int64_t)le64(b + HDR), ts);     /* last seen */
    ck_assert_uint_eq(b[B_RAISED], 0);
    ck_assert_uint_eq(b[B_IDLEN], 4);
    ck_assert_mem_eq(b + B_ID, "ag-7", 4);
    const unsigned char *c = b + B_ID + 4;
    ck_assert_uint_eq(c[0], 16);
    /* oldest first: the 6th completed task (5 were overwritten) */
    const unsigned char *s0 = c + 1;
    ck_assert_uint_eq(s0[0], 3);                    /* done | ok, not
                                                       judged yet */
    ck_assert_uint_eq(le32(s0 + 1), 1500);          /* age */
    ck_assert_uint_eq(le32(s0 + 5), 10);            /* value: ms */
    const unsigned char *s9 = c + 1 + 5 * 9;        /* the 11th task */
    ck_assert_uint_eq(s9[0], 7);                    /* done | ok | ratio */
    ck_assert_uint_eq(le32(s9 + 5), 1000);          /* 1.000 x its type */
    const unsigned char *s15 = c + 1 + 15 * 9;
    ck_assert_uint_eq(s15[0], 1);                   /* done, failed */
    ck_assert_uint_eq(le32(s15 + 1), 0);
    ck_assert_uint_eq(le32(s15 + 5), 0);

    /* export -> import -> export gives the same bytes */
    unsigned char again[1024];
    ck_assert_uint_eq(reexport(a, b, n, "ag-7", again), n);
    ck_assert_mem_eq(again, b, n);

    /* a fresh agent has no samples: the blob is header, fields, id and
     * (it beat) the failure block */
    sm_swarm_clear_dirty(a);
    beat(a, r, ts, "x");
    ck_assert_uint_eq(one_blob(a, b), HDR + 52 + 1 + 1 + 1 + 103);

    /* a longest id, no padding either way */
    char id[SM_ID_MAX];
    memset(id, 'q', SM_ID_MAX - 1);
    id[SM_ID_MAX - 1] = '\0';
    sm_swarm_clear_dirty(a);
    task(a, r, ts, id, SM_TASK_COMPLETED, 7);
    n = one_blob(a, b);
    ck_assert_uint_eq(n, HDR + 52 + (SM_ID_MAX - 1) + 1 + 9 + 1 + 103);
    ck_assert_uint_eq(reexport(a, b, n, id, again), n);
    ck_assert_mem_eq(again, b, n);
    rec_free(r);
    sm_swarm_destroy(a);
}
END_TEST

/* A sample far behind last_seen (over 2^32 ms) takes the wide form and
 * still round-trips. */
START_TEST(agent_blob_wide_sample)
{
    sm_swarm *a = mk();
    rec *r = rec_new();
    task(a, r, T0, "w", SM_TASK_COMPLETED, 42);
    int64_t later = T0 + INT64_C(60) * 86400000;    /* 60 days */
    beat(a, r, later, "w");
    task(a, r, later, "w", SM_TASK_COMPLETED, 43);
    unsigned char b[1024], again[1024];
    size_t n = one_blob(a, b);
    ck_assert_uint_eq(n, HDR + 52 + 1 + 1 + 13 + 9 + 1 + 103);
    const unsigned char *s0 = b + B_ID + 1 + 1;
    ck_assert_uint_eq(s0[0], 0x80 | 3);
    ck_assert_int_eq((int64_t)le64(s0 + 1), T0);
    ck_assert_uint_eq(le32(s0 + 9), 42);
    ck_assert_uint_eq(s0[13], 3);                   /* narrow */
    ck_assert_uint_eq(le32(s0 + 14), 0);
    ck_assert_uint_eq(reexport(a, b, n, "w", again), n);
    ck_assert_mem_eq(again, b, n);

    /* the wide form where the narrow one fits is not canonical */
    unsigned char x[1024];
    memcpy(x, b, n);
    /* the last (narrow, age 0) sample rewritten wide with the same ts */
    unsigned char *s1 = x + (s0 - b) + 13;
    unsigned char wide[13];
    wide[0] = 0x80 | 3;
    for (int i = 0; i < 8; i++)
        wide[1 + i] = (unsigned char)((uint64_t)later >> (8 * i));
    memcpy(wide + 9, s1 + 5, 4);
    memcpy(s1, wide, 13);
    reseal(x, n + 4);
    sm_swarm *o = mk();
    ck_assert_int_eq(sm_swarm_import_agent(o, x, n + 4), SM_ERR_CORRUPT);
    ck_assert_uint_eq(sm_swarm_agent_count(o), 0);
    sm_swarm_destroy(o);
    rec_free(r);
    sm_swarm_destroy(a);
}
END_TEST

/* Expects blob (len bytes, re-sealed) to be rejected and to change
 * nothing. */
static void assert_rejected(unsigned char *blob, size_t len, bool seal)
{
    sm_swarm *o = mk();
    if (seal)
        reseal(blob, len);
    ck_assert_int_eq(sm_swarm_import_agent(o, blob, len), SM_ERR_CORRUPT);
    ck_assert_uint_eq(sm_swarm_agent_count(o), 0);
    sm_swarm_destroy(o);
}

START_TEST(agent_blob_rejects_malformed)
{
    sm_swarm *a = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    tasks_of(a, r, &ts, "ag-12", 9, SM_TASK_COMPLETED, 10);
    unsigned char b[1024], x[1100];
    size_t n = one_blob(a, b);
    const size_t cnt = B_ID + 5;                    /* the sample count */
    ck_assert_uint_eq(b[cnt], 9);
    ck_assert_uint_eq(n, cnt + 1 + 9 * 9 + 1 + 103);

    /* truncated at every length, as stored and re-sealed */
    for (size_t len = 0; len < n; len++) {
        memcpy(x, b, n);
        assert_rejected(x, len, false);
        if (len >= HDR) {
            memcpy(x, b, n);
            assert_rejected(x, len, true);
        }
    }
    /* longer: trailing bytes, as stored and re-sealed */
    for (size_t extra = 1; extra <= 16; extra++) {
        memcpy(x, b, n);
        memset(x + n, 0, extra);
        assert_rejected(x, n + extra, false);
        memcpy(x, b, n);
        memset(x + n, 0, extra);
        assert_rejected(x, n + extra, true);
    }
    /* one flipped bit anywhere, not re-sealed: the checksum or header; in
     * the upper bytes of the version word (5..7) it makes a version no
     * build can have written (over ours + 255): damage, not a newer
     * build's blob. A version a little above ours is a newer build's,
     * refused as such (the caller keeps it). */
    memcpy(x, b, n);
    x[4] = (unsigned char)(x[4] + 1);
    sm_swarm *newer = mk();
    ck_assert_int_eq(sm_swarm_import_agent(newer, x, n), SM_ERR_VERSION);
    ck_assert_uint_eq(sm_swarm_agent_count(newer), 0);
    sm_swarm_destroy(newer);
    for (size_t i = 0; i < n; i++) {
        memcpy(x, b, n);
        x[i] ^= 0x04;
        assert_rejected(x, n, false);
    }
    /* an oversized count: over SM_AGENT_TASKS, or more than are there */
    static const unsigned char counts[] = {17, 255, 10};
    for (size_t i = 0; i < sizeof counts; i++) {
        memcpy(x, b, n);
        x[cnt] = counts[i];
        assert_rejected(x, n, true);
    }
    /* 17 well-formed records behind a count of 17 */
    memcpy(x, b, n);
    x[cnt] = 17;
    for (size_t i = 9; i < 17; i++)
        memcpy(x + cnt + 1 + i * 9, x + cnt + 1, 9);
    assert_rejected(x, cnt + 1 + 17 * 9, true);
    /* fewer than are there */
    memcpy(x, b, n);
    x[cnt] = 8;
    assert_rejected(x, n, true);
    /* a bad id length: 0, too long, or not matching the bytes */
    static const unsigned char idlens[] = {0, SM_ID_MAX, 255, 4, 6};
    for (size_t i = 0; i < sizeof idlens; i++) {
        memcpy(x, b, n);
        x[B_IDLEN] = idlens[i];
        assert_rejected(x, n, true);
    }
    /* an empty id, the rest of the blob well-formed */
    memcpy(x, b, B_IDLEN);
    x[B_IDLEN] = 0;
    memcpy(x + B_ID, b + B_ID + 5, n - (B_ID + 5));
    assert_rejected(x, n - 5, true);
    /* the longest id field with a 64-byte length, padded out */
    memcpy(x, b, B_IDLEN);
    x[B_IDLEN] = SM_ID_MAX;
    memset(x + B_ID, 'z', SM_ID_MAX);
    x[B_ID + SM_ID_MAX] = 0;
    assert_rejected(x, B_ID + SM_ID_MAX + 1, true);
    /* a NUL inside the id */
    memcpy(x, b, n);
    x[B_ID + 2] = 0;
    assert_rejected(x, n, true);
    /* enum and flag ranges */
    memcpy(x, b, n);
    x[B_RAISED] = 2;
    assert_rejected(x, n, true);
    memcpy(x, b, n);
    x[B_SEV] = SM_SEV_CRITICAL + 1;
    assert_rejected(x, n, true);
    memcpy(x, b, n);
    x[B_RAISED] = 1;                                /* raised, severity 0 */
    x[B_SEV] = 0;
    assert_rejected(x, n, true);
    memcpy(x, b, n);
    x[B_FLAGS] = 0x08;
    assert_rejected(x, n, true);
    static const unsigned char tags[] = {0, 2, 4, 0x40, 0x13};
    for (size_t i = 0; i < sizeof tags; i++) {
        memcpy(x, b, n);
        x[cnt + 1 + 9 * 4] = tags[i];
        assert_rejected(x, n, true);
    }
    /* timestamps out of range: last_seen negative, a sample before 0 */
    memcpy(x, b, n);
    x[HDR + 7] = 0x80;
    assert_rejected(x, n, true);
    memcpy(x, b, n);
    memset(x + cnt + 2, 0xff, 4);                   /* age 2^32 - 1 */
    memset(x + HDR, 0, 8);                          /* last_seen 0 */
    assert_rejected(x, n, true);
    /* another version, re-sealed */
    memcpy(x, b, n);
    x[4] = 2;
    assert_rejected(x, n, true);

    /* the untouched blob imports, and re-seal is faithful */
    memcpy(x, b, n);
    reseal(x, n);
    ck_assert_mem_eq(x, b, n);
    sm_swarm *o = mk();
    ck_assert_int_eq(sm_swarm_import_agent(o, b, n), SM_OK);
    ck_assert_uint_eq(sm_swarm_agent_count(o), 1);
    sm_swarm_destroy(o);
    rec_free(r);
    sm_swarm_destroy(a);
}
END_TEST

/* Two agents raised in the same millisecond resolve in (raised_at, id)
 * order in the sweep, whatever order they were raised or imported in. */
START_TEST(sweep_order_is_canonical)
{
    sm_swarm *a = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    normal_load(a, r, &ts, 3, 1000);
    for (int i = 0; i < 5; i++) {
        task(a, r, ts, "zeta", SM_TASK_COMPLETED, 3000);
        task(a, r, ts, "alpha", SM_TASK_COMPLETED, 3000);
        ts += 100;
    }
    ck_assert_uint_eq(r->n, 2);
    ck_assert_str_eq(r->tr[0].subject, "zeta");     /* raised first */
    ck_assert_int_eq(r->tr[0].bn.raised_at_ms, r->tr[1].bn.raised_at_ms);

    unsigned char *e;
    size_t n = export_to(a, &e);
    blobs *ag = calloc(1, sizeof *ag);
    sm_swarm_visit_dirty(a, collect, ag);
    sm_swarm *b = mk();
    ck_assert_int_eq(sm_swarm_import(b, e, n), SM_OK);
    for (size_t i = ag->n; i-- > 0;)                /* reverse order */
        ck_assert_int_eq(sm_swarm_import_agent(b, ag->data[i], ag->len[i]),
                         SM_OK);
    rec *rb = rec_new();
    sm_swarm_advance(a, ts + 601000, &r->buf);
    drain(r);
    sm_swarm_advance(b, ts + 601000, &rb->buf);
    drain(rb);
    ck_assert_uint_eq(r->n, 4);
    ck_assert_str_eq(r->tr[2].subject, "alpha");
    ck_assert_str_eq(r->tr[3].subject, "zeta");
    ck_assert_uint_eq(rb->n, 2);
    ck_assert_str_eq(rb->tr[0].subject, "alpha");
    ck_assert_str_eq(rb->tr[1].subject, "zeta");
    free(e);
    free(ag);
    rec_free(r);
    rec_free(rb);
    sm_swarm_destroy(a);
    sm_swarm_destroy(b);
}
END_TEST

/* -------------------------------------------------------------- dirty */

START_TEST(dirty_tracking)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    blobs *b = calloc(1, sizeof *b);
    ck_assert(sm_swarm_is_dirty(sw));
    sm_swarm_clear_dirty(sw);
    ck_assert(!sm_swarm_is_dirty(sw));

    beat(sw, r, T0, "a1");
    beat(sw, r, T0, "a2");
    ck_assert(sm_swarm_is_dirty(sw));           /* clock moved */
    sm_swarm_visit_dirty(sw, collect, b);
    ck_assert_uint_eq(b->n, 2);
    sm_swarm_clear_dirty(sw);
    ck_assert(!sm_swarm_is_dirty(sw));

    memset(b, 0, sizeof *b);
    sm_swarm_visit_dirty(sw, collect, b);
    ck_assert_uint_eq(b->n, 0);

    task(sw, r, T0, "a2", SM_TASK_COMPLETED, 100);  /* same ms */
    memset(b, 0, sizeof *b);
    sm_swarm_visit_dirty(sw, collect, b);
    ck_assert_uint_eq(b->n, 1);
    ck_assert(sm_swarm_is_dirty(sw));           /* swarm sample ring */
    sm_swarm_clear_dirty(sw);

    /* a resource sample changes the swarm part only */
    token(sw, r, T0, 10, 1000);
    ck_assert(sm_swarm_is_dirty(sw));
    memset(b, 0, sizeof *b);
    sm_swarm_visit_dirty(sw, collect, b);
    ck_assert_uint_eq(b->n, 0);
    sm_swarm_clear_dirty(sw);

    /* an imported agent is not dirty */
    beat(sw, r, T0, "a3");
    memset(b, 0, sizeof *b);
    sm_swarm_visit_dirty(sw, collect, b);
    ck_assert_uint_eq(b->n, 1);
    sm_swarm *other = mk();
    ck_assert_int_eq(sm_swarm_import_agent(other, b->data[0], b->len[0]),
                     SM_OK);
    ck_assert_uint_eq(sm_swarm_agent_count(other), 1);
    blobs *ob = calloc(1, sizeof *ob);
    sm_swarm_visit_dirty(other, collect, ob);
    ck_assert_uint_eq(ob->n, 0);

    free(ob);
    free(b);
    rec_free(r);
    sm_swarm_destroy(other);
    sm_swarm_destroy(sw);
}
END_TEST

/* ------------------------------------------------------------- expire */

START_TEST(expire_idle_non_raised_only)
{
    sm_swarm *sw = mk();
    rec *r = rec_new();
    int64_t ts = T0;
    slow_scenario(sw, r, &ts, "slow", 5, 2500);     /* slow raised at ~T0+3.5s */
    beat(sw, r, T0 + 50000, "recent");
    ck_assert(sm_swarm_is_raised(sw, SM_BN_SLOW_AGENT, "slow"));
    size_t before = sm_swarm_agent_count(sw);       /* n0..n9, slow, recent */
    ck_assert_uint_eq(before, 12);
    blobs *b = calloc(1, sizeof *b);
    /* now = T0+50000: n0..n9 were last seen before T0+3000 */
    size_t gone = sm_swarm_expire(sw, 40000, collect, b);
    ck_assert_uint_eq(gone, 10);
    ck_assert_uint_eq(b->removed, 10);
    ck_assert_uint_eq(sm_swarm_agent_count(sw), 2);
    ck_assert(sm_swarm_is_raised(sw, SM_BN_SLOW_AGENT, "slow"));
    /* the survivors are still found (no new record on their next event) */
    beat(sw, r, T0 + 50001, "recent");
    beat(sw, r, T0 + 50001, "slow");
    ck_assert_uint_eq(sm_swarm_agent_count(sw), 2);
    sm_swarm_advance(sw, T0 + 50002, &r->buf);
    drain(r);
    ck_assert_uint_eq(sm_swarm_expire(sw, 0, NULL, NULL), 1);  /* recent */
    ck_assert(sm_swarm_is_raised(sw, SM_BN_SLOW_AGENT, "slow"));
    free(b);
    rec_free(r);
    sm_swarm_destroy(sw);
}
END_TEST

/* Removing half of 3000 agents scattered across the hash table keeps every
 * survivor reachable and every removed one gone. */
START_TEST(expire_keeps_table_consistent)
{
    enum { N = 3000 };
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    cfg.down_forget_ms = 30000;     /* the early ones are down, then gone */
    sm_swarm *sw = mk_cfg("swarm-a", &cfg);
    rec *r = rec_new();
    char id[16];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "a%d", i);
        /* odd agents seen late, even agents early */
        beat(sw, r, T0 + (i % 2 ? 100000 : 0) + i, id);
    }
    ck_assert_uint_eq(sm_swarm_agent_count(sw), N);
    ck_assert_uint_eq(sm_swarm_expire(sw, 50000, NULL, NULL), N / 2);
    ck_assert_uint_eq(sm_swarm_agent_count(sw), N / 2);
    for (int i = 1; i < N; i += 2) {
        snprintf(id, sizeof id, "a%d", i);
        beat(sw, r, T0 + 200000, id);
    }
    ck_assert_uint_eq(sm_swarm_agent_count(sw), N / 2);
    for (int i = 0; i < N; i += 2) {
        snprintf(id, sizeof id, "a%d", i);
        beat(sw, r, T0 + 200000, id);
    }
    ck_assert_uint_eq(sm_swarm_agent_count(sw), N);
    rec_free(r);
    sm_swarm_destroy(sw);
}
END_TEST

/* ------------------------------------------------------------- config */

START_TEST(config_defaults_valid)
{
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    const char *why = "x";
    ck_assert_int_eq(sm_detect_config_validate(&cfg, &why), SM_OK);
    ck_assert_ptr_null(why);
    ck_assert_int_eq(cfg.window_ms, 60000);
    ck_assert_double_eq(cfg.token_raise, 0.80);
    ck_assert_uint_eq(cfg.queue_critical, 200);
}
END_TEST

START_TEST(config_rejects_bad_orderings)
{
    static const struct { const char *field; } want[] = {
        {"token_clear"}, {"token_raise"}, {"window_ms"}, {"tick_ms"},
        {"gauge_min_samples"}, {"slow_clear"}, {"slow_raise"},
        {"success_raise"}, {"queue_clear"}, {"queue_raise"},
        {"consensus_clear"}, {"consensus_raise"}, {"consensus_min_rounds"},
        {"slow_min_agent_tasks"}, {"token_clear"}, {"quota_clear"},
        {"window_ms"}, {"slow_clear_tasks"}, {"slow_clear_tasks"},
        {"slow_clear_evidence"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        sm_detect_config c;
        sm_detect_config_default(&c);
        switch (i) {
        case 0: c.token_clear = 0.80; break;            /* == raise */
        case 1: c.token_critical = 0.80; break;         /* == raise */
        case 2: c.window_ms = 60500; break;             /* not a multiple */
        case 3: c.tick_ms = 0; break;
        case 4: c.gauge_min_samples = 0; break;
        case 5: c.slow_clear = 2.5; break;              /* > raise */
        case 6: c.slow_high = 1.9; break;               /* < raise */
        case 7: c.success_raise = 0.9; break;           /* > clear */
        case 8: c.queue_clear = 60; break;              /* > raise */
        case 9: c.queue_critical = 50; break;           /* == raise */
        case 10: c.consensus_clear = 0.2; break;
        case 11: c.consensus_high = 0.05; break;
        case 12: c.consensus_min_rounds = 0; break;
        case 13: c.slow_min_agent_tasks = SM_AGENT_TASKS + 1; break;
        case 14: c.token_clear = 0.0 / 0.0; break;      /* NaN */
        case 15: c.quota_clear = 1.5; break;
        case 16: c.window_ms = INT64_MAX - 7; c.tick_ms = 1; break;
        case 17: c.slow_clear_tasks = 1; break;         /* one task */
        case 18: c.slow_clear_tasks = SM_AGENT_TASKS + 1; break;
        case 19: c.slow_clear_evidence = -1; break;
        }
        const char *why = NULL;
        ck_assert_int_eq(sm_detect_config_validate(&c, &why), SM_ERR_CONFIG);
        ck_assert_ptr_nonnull(why);
        ck_assert_msg(strstr(why, want[i].field) == why,
                      "case %zu: \"%s\" does not name %s", i, why,
                      want[i].field);
        sm_swarm *sw = NULL;
        ck_assert_int_eq(sm_swarm_create(&sw, "s", &c), SM_ERR_CONFIG);
        ck_assert_ptr_null(sw);
    }
    ck_assert_int_eq(sm_detect_config_validate(NULL, NULL), SM_ERR_CONFIG);
}
END_TEST

/* ------------------------------------------------------ bad input, misc */

START_TEST(invalid_input_changes_nothing)
{
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    sm_swarm *sw = NULL;
    char long_id[SM_ID_MAX + 1];
    memset(long_id, 'x', SM_ID_MAX);
    long_id[SM_ID_MAX] = '\0';
    ck_assert_int_eq(sm_swarm_create(&sw, long_id, &cfg), SM_ERR_INVALID);
    ck_assert_int_eq(sm_swarm_create(&sw, "", &cfg), SM_ERR_INVALID);
    ck_assert_int_eq(sm_swarm_create(&sw, "s", NULL), SM_ERR_INVALID);
    ck_assert_ptr_null(sw);
    sm_swarm_destroy(NULL);

    sw = mk();
    rec *r = rec_new();
    beat(sw, r, T0, "a");
    sm_task_event e = {.ts_ms = T0 + 5000, .agent = long_id,
                       .kind = SM_TASK_COMPLETED};
    ck_assert_int_eq(fed(r, sm_swarm_on_task(sw, &e, &r->buf)), SM_ERR_INVALID);
    long_id[SM_ID_MAX - 1] = '\0';              /* 63 bytes: fits */
    ck_assert_int_eq(fed(r, sm_swarm_on_task(sw, &e, &r->buf)), SM_OK);
    e.ts_ms = T0 + 9000;
    e.agent = NULL;
    ck_assert_int_eq(fed(r, sm_swarm_on_task(sw, &e, &r->buf)), SM_ERR_INVALID);
    e.agent = "";
    ck_assert_int_eq(fed(r, sm_swarm_on_task(sw, &e, &r->buf)), SM_ERR_INVALID);
    e.kind = 0;
    e.agent = "a";
    ck_assert_int_eq(fed(r, sm_swarm_on_task(sw, &e, &r->buf)), SM_ERR_INVALID);
    e.kind = 7;
    ck_assert_int_eq(fed(r, sm_swarm_on_task(sw, &e, &r->buf)), SM_ERR_INVALID);
    sm_consensus_round c = {.ts_ms = T0 + 9000, .group = "g", .outcome = 9};
    ck_assert_int_eq(fed(r, sm_swarm_on_consensus(sw, &c, &r->buf)),
                     SM_ERR_INVALID);
    sm_heartbeat h = {.ts_ms = T0 + 9000, .agent = NULL};
    ck_assert_int_eq(fed(r, sm_swarm_on_heartbeat(sw, &h, &r->buf)),
                     SM_ERR_INVALID);
    sm_agent_lifecycle l = {.ts_ms = T0 + 9000, .agent = ""};
    ck_assert_int_eq(fed(r, sm_swarm_on_agent(sw, &l, &r->buf)), SM_ERR_INVALID);
    ck_assert_int_eq(fed(r, sm_swarm_on_resource(sw, NULL, &r->buf)),
                     SM_ERR_INVALID);
    /* timestamps that would overflow the window arithmetic */
    sm_resource_sample rs = {.ts_ms = INT64_MAX, .source = "c",
                             .token_budget = 1, .tokens_used = 1};
    ck_assert_int_eq(fed(r, sm_swarm_on_resource(sw, &rs, &r->buf)),
                     SM_ERR_INVALID);
    c.outcome = SM_ROUND_OK;
    c.ts_ms = -1;
    ck_assert_int_eq(fed(r, sm_swarm_on_consensus(sw, &c, &r->buf)),
                     SM_ERR_INVALID);
    sm_swarm_advance(sw, INT64_MAX, &r->buf);
    drain(r);
    ck_assert_int_eq(sm_swarm_now(sw), T0 + 5000);  /* clock untouched */
    ck_assert_uint_eq(sm_swarm_agent_count(sw), 2);

    /* QUEUED may come before an agent is assigned */
    e.kind = SM_TASK_QUEUED;
    e.agent = "";
    ck_assert_int_eq(fed(r, sm_swarm_on_task(sw, &e, &r->buf)), SM_OK);
    ck_assert_uint_eq(sm_swarm_agent_count(sw), 2);
    ck_assert_int_eq(sm_swarm_now(sw), T0 + 9000);
    ck_assert_str_eq(sm_swarm_id(sw), "swarm-a");
    rec_free(r);
    sm_swarm_destroy(sw);
}
END_TEST

START_TEST(strings_and_recommendations)
{
    ck_assert_str_eq(sm_bn_type_str(SM_BN_TOKEN_EXHAUSTION),
                     "token_exhaustion");
    ck_assert_str_eq(sm_bn_type_str(SM_BN_CONSENSUS_TIMEOUT),
                     "consensus_timeout");
    ck_assert_str_eq(sm_bn_type_str((sm_bn_type)0), "unknown");
    ck_assert_str_eq(sm_severity_str(SM_SEV_CRITICAL), "critical");
    ck_assert_str_eq(sm_transition_str(SM_TR_RESOLVED), "resolved");
    ck_assert_int_eq(sm_severity_of(0.8), SM_SEV_CRITICAL);
    ck_assert_int_eq(sm_severity_of(0.7999), SM_SEV_HIGH);
    ck_assert_int_eq(sm_severity_of(0.6), SM_SEV_HIGH);
    ck_assert_int_eq(sm_severity_of(0.4), SM_SEV_MEDIUM);
    ck_assert_int_eq(sm_severity_of(0.39), SM_SEV_LOW);
    static const size_t want[] = {0, 3, 2, 3, 3, 3};
    for (int t = SM_BN_TOKEN_EXHAUSTION; t <= SM_BN_CONSENSUS_TIMEOUT; t++) {
        const char *const *recs = sm_bn_recommendations((sm_bn_type)t);
        size_t n = 0;
        while (recs[n] != NULL)
            n++;
        ck_assert_uint_eq(n, want[t]);
    }
    ck_assert_str_eq(sm_bn_recommendations(SM_BN_TOKEN_EXHAUSTION)[0],
                     "Increase token budget");
    ck_assert_ptr_null(sm_bn_recommendations((sm_bn_type)99)[0]);
}
END_TEST

/* ------------------------------------------------------------- scale */

/* Counts and forgets what the last call decided. */
/* Counts the bottleneck decisions (agents here beat once a 100 s: they
 * are rightly down, which is not what this test looks at). */
static sm_status count_only(sm_status s, sm_decisions *ds, size_t *n)
{
    for (size_t i = 0; i < ds->n; i++)
        *n += ds->v[i].kind == SM_DEC_BOTTLENECK;
    sm_decisions_clear(ds);
    return s;
}

/* 1e6 events over 100k agents completes (the Check timeout is the only
 * bound; no wall-clock assertion). The swarm blob does not grow with the
 * number of agents, and one slow agent among them is still found. */
START_TEST(scale_100k_agents_1m_events)
{
    enum { AGENTS = 100000, EVENTS = 1000000 };
    sm_swarm *sw = mk();
    size_t n = 0;
    sm_decisions ds;
    sm_decisions_init(&ds);
    char id[16];
    for (int i = 0; i < EVENTS; i++) {
        int a = i % AGENTS;
        snprintf(id, sizeof id, "agent-%d", a);
        int64_t ts = T0 + i;                    /* 1000 s, 1000 ticks */
        if (i % 1000 == 500) {                  /* one agent at 5x */
            sm_task_event e = {.ts_ms = ts, .agent = "agent-slow",
                               .kind = SM_TASK_COMPLETED,
                               .duration_ms = 5000};
            ck_assert_int_eq(count_only(sm_swarm_on_task(sw, &e, &ds), &ds, &n),
                             SM_OK);
        }
        if (i % 4 == 3) {
            sm_heartbeat h = {.ts_ms = ts, .agent = id, .state = 2};
            ck_assert_int_eq(count_only(sm_swarm_on_heartbeat(sw, &h, &ds), &ds, &n),
                             SM_OK);
            continue;
        }
        sm_task_event e = {.ts_ms = ts, .agent = id,
                           .kind = SM_TASK_COMPLETED,
                           .duration_ms = 900 + (uint32_t)(i % 200)};
        ck_assert_int_eq(count_only(sm_swarm_on_task(sw, &e, &ds), &ds, &n), SM_OK);
    }
    ck_assert_uint_eq(sm_swarm_agent_count(sw), AGENTS + 1);
    /* the swarm blob holds swarm-wide windows only: bounded by the
     * sample rings, whatever the number of agents */
    ck_assert_uint_lt(sm_swarm_export(sw, NULL, 0), 16384);
    ck_assert(sm_swarm_is_raised(sw, SM_BN_SLOW_AGENT, "agent-slow"));
    ck_assert(!sm_swarm_is_raised(sw, SM_BN_SLOW_AGENT, "agent-7"));
    ck_assert_uint_eq(n, 1);                    /* only that one, once */
    sm_decisions_free(&ds);
    sm_swarm_destroy(sw);
}
END_TEST

static Suite *detect_suite(void)
{
    Suite *s = suite_create("detect");
    TCase *tc = tcase_create("token");
    tcase_add_test(tc, token_raised_just_over);
    tcase_add_test(tc, token_not_raised_at_or_below);
    tcase_add_test(tc, token_single_spike_debounced);
    tcase_add_test(tc, token_severity_bands);
    tcase_add_test(tc, token_hysteresis_no_flap);
    tcase_add_test(tc, token_updated_on_severity_change);
    tcase_add_test(tc, token_unreported_budget_leaves_gauge);
    tcase_add_test(tc, token_stale_gauge_resolves_no_data);
    suite_add_tcase(s, tc);

    tc = tcase_create("quota_queue");
    tcase_add_test(tc, quota_raised_at_quota_not_below);
    tcase_add_test(tc, queue_raised_just_over);
    tcase_add_test(tc, queue_severity_bands);
    tcase_add_test(tc, queue_no_pending_figures_leaves_gauge);
    suite_add_tcase(s, tc);

    tc = tcase_create("consensus");
    tcase_add_test(tc, token_held_between_clear_and_raise_stays_raised);
    tcase_add_test(tc, queue_held_between_clear_and_raise_stays_raised);
    tcase_add_test(tc, quota_held_between_clear_and_quota_stays_raised);
    tcase_add_test(tc, consensus_min_rounds_guard);
    tcase_add_test(tc, consensus_not_raised_at_threshold);
    tcase_add_test(tc, consensus_bands_and_update);
    tcase_add_test(tc, consensus_rounds_age_out);
    tcase_add_test(tc, consensus_clears_below_clear_rate);
    tcase_add_test(tc, consensus_needs_evidence);
    tcase_add_test(tc, consensus_late_round_out_of_window_ignored);
    suite_add_tcase(s, tc);

    tc = tcase_create("slow_agent");
    tcase_add_test(tc, slow_raised_just_over);
    tcase_add_test(tc, slow_not_raised_at_ratio);
    tcase_add_test(tc, slow_severity_bands);
    tcase_add_test(tc, slow_min_agent_tasks_guard);
    tcase_add_test(tc, slow_min_swarm_tasks_guard);
    tcase_add_test(tc, slow_outlier_does_not_flag);
    tcase_add_test(tc, slow_mad_guard);
    tcase_add_test(tc, slow_success_rate_rule);
    tcase_add_test(tc, slow_failed_durations_not_in_median);
    tcase_add_test(tc, slow_updated_on_severity_change);
    tcase_add_test(tc, slow_resolved_when_quiet_by_advance);
    tcase_add_test(tc, slow_resolved_when_quiet_by_other_events);
    tcase_add_test(tc, slow_resolved_cleared_when_fast_again);
    tcase_add_test(tc, slow_clears_on_fresh_evidence);
    tcase_add_test(tc, slow_one_fast_task_does_not_clear);
    tcase_add_test(tc, slow_hold_stops_resolve_reraise_churn);
    tcase_add_test(tc, severity_does_not_flap_at_a_band_edge);
    tcase_add_test(tc, slow_unregister_resolves_and_restarts_clean);
    tcase_add_test(tc, slow_late_tasks_out_of_window_ignored);
    suite_add_tcase(s, tc);

    tc = tcase_create("decisions");
    tcase_add_test(tc, decision_ids_follow_the_formula);
    tcase_add_test(tc, decision_ids_distinct_within_one_ms);
    tcase_add_test(tc, decision_ids_same_on_replay);
    tcase_add_test(tc, determinism_identical_runs);
    suite_add_tcase(s, tc);

    tc = tcase_create("persistence");
    tcase_add_test(tc, export_import_round_trip);
    tcase_add_test(tc, import_rejects_bad_blobs);
    tcase_add_test(tc, agent_blob_layout);
    tcase_add_test(tc, agent_blob_wide_sample);
    tcase_add_test(tc, agent_blob_rejects_malformed);
    tcase_add_test(tc, sweep_order_is_canonical);
    tcase_add_test(tc, dirty_tracking);
    tcase_add_test(tc, expire_idle_non_raised_only);
    tcase_add_test(tc, expire_keeps_table_consistent);
    suite_add_tcase(s, tc);

    tc = tcase_create("config_misc");
    tcase_add_test(tc, config_defaults_valid);
    tcase_add_test(tc, config_rejects_bad_orderings);
    tcase_add_test(tc, invalid_input_changes_nothing);
    tcase_add_test(tc, strings_and_recommendations);
    suite_add_tcase(s, tc);

    tc = tcase_create("scale");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, scale_100k_agents_1m_events);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sm_run_suite(detect_suite());
}
