/* The swarm simulator: determinism, wire validity, rate, fault specs, and,
 * through the core detector, a baseline that raises nothing and faults that
 * raise exactly their bottleneck and then clear. Also the swarm-sim
 * program: dry run, flag errors, a connect failure and a real bus. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "codec.h"
#include "evq.h"
#include "swarm.h"
#include "hash.h"
#include "simgen.h"
#include "support.h"
#include "swarm_medic.pb-c.h"
#include "runner.h"

#define T0 SM_SIM_DEFAULT_START_MS

/* For per-event checks in hot loops: Check's ck_assert records every
 * passing assertion (a write per call), which would dominate the run. */
#define REQUIRE(cond)                                                        \
    do {                                                                     \
        if (!(cond))                                                         \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);            \
    } while (0)
#define REQUIRE_MSG(cond, ...)                                               \
    do {                                                                     \
        if (!(cond))                                                         \
            ck_abort_msg(__VA_ARGS__);                                       \
    } while (0)

/* ------------------------------------------------------------ helpers */

static sm_sim *sim_new(const sm_sim_config *cfg)
{
    sm_sim *sim = NULL;
    char why[256] = "";
    ck_assert_msg(sm_sim_config_validate(cfg, why, sizeof why) == SM_OK,
                  "config: %s", why);
    ck_assert_int_eq(sm_sim_create(&sim, cfg), SM_OK);
    ck_assert_ptr_nonnull(sim);
    return sim;
}

/* FNV-1a over every subject, timestamp and payload of a run. */
static uint64_t stream_hash(const sm_sim_config *cfg, uint64_t *count)
{
    sm_sim *sim = sim_new(cfg);
    sm_sim_msg m;
    uint64_t h = SM_HASH_INIT, n = 0;
    while (sm_sim_next(sim, &m)) {
        h = sm_hash_str(h, m.subject);
        h = sm_hash_u64(h, (uint64_t)m.ts_ms);
        h = sm_hash_bytes(h, m.payload, m.len);
        n++;
    }
    ck_assert_int_eq(sm_sim_status(sim), SM_OK);
    ck_assert_uint_eq(sm_sim_count(sim), n);
    sm_sim_destroy(sim);
    *count = n;
    return h;
}

/* A transition the detector emitted. */
typedef struct rec {
    sm_bn_type type;
    sm_transition_kind kind;
    uint32_t swarm;
    char subject[SM_ID_MAX];
    int64_t at;
} rec;

#define MAX_SWARMS 4
#define MAX_RECS 512

/* The core detector, one sm_swarm per simulated swarm. */
typedef struct feeder {
    sm_swarm *sw[MAX_SWARMS];
    uint32_t n;
    rec recs[MAX_RECS];
    size_t n_recs;
    sm_decisions out;           /* what the last call decided */
} feeder;

/* Keeps what the last call decided. */
static void take_decisions(feeder *f)
{
    for (size_t i = 0; i < f->out.n; i++) {
        const sm_decision *t = &f->out.v[i];
        if (t->kind != SM_DEC_BOTTLENECK)
            continue;           /* failures: the scenario suite scores them */
        ck_assert_msg(f->n_recs < MAX_RECS, "too many transitions");
        rec *r = &f->recs[f->n_recs++];
        r->type = t->bn.type;
        r->kind = t->bn.transition;
        r->swarm = (uint32_t)atoi(t->swarm + 1);
        snprintf(r->subject, sizeof r->subject, "%s", t->subject);
        r->at = t->at_ms;
    }
    sm_decisions_clear(&f->out);
}

static void feeder_init(feeder *f, uint32_t swarms)
{
    sm_detect_config dc;
    sm_detect_config_default(&dc);
    memset(f, 0, sizeof *f);
    ck_assert_uint_le(swarms, MAX_SWARMS);
    f->n = swarms;
    for (uint32_t i = 0; i < swarms; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%u", i);
        ck_assert_int_eq(sm_swarm_create(&f->sw[i], id, &dc), SM_OK);
    }
}

static void feeder_free(feeder *f)
{
    sm_decisions_free(&f->out);
    for (uint32_t i = 0; i < f->n; i++)
        sm_swarm_destroy(f->sw[i]);
}

/* Decodes m with protobuf-c, turns it into a core event and feeds it. */
static void feed(feeder *f, const sm_sim_msg *m)
{
    REQUIRE(m->swarm < f->n);
    sm_swarm *sw = f->sw[m->swarm];
    sm_status rc = SM_ERR_INVALID;
    switch (m->kind) {
    case SM_SIM_TASK: {
        Swarmmedic__V1__TaskEvent *p =
            swarmmedic__v1__task_event__unpack(NULL, m->len, m->payload);
        REQUIRE(p != NULL);
        sm_task_event ev = {p->ts_ms, p->agent, p->task_type, p->task_id, (sm_task_kind)p->kind,
                            (sm_priority)p->priority, p->tokens_used,
                            p->duration_ms};
        rc = sm_swarm_on_task(sw, &ev, &f->out);
        swarmmedic__v1__task_event__free_unpacked(p, NULL);
        break;
    }
    case SM_SIM_HEARTBEAT: {
        Swarmmedic__V1__Heartbeat *p =
            swarmmedic__v1__heartbeat__unpack(NULL, m->len, m->payload);
        REQUIRE(p != NULL);
        sm_heartbeat ev = {p->ts_ms, p->agent, (uint32_t)p->state,
                           p->inflight, p->progress};
        rc = sm_swarm_on_heartbeat(sw, &ev, &f->out);
        swarmmedic__v1__heartbeat__free_unpacked(p, NULL);
        break;
    }
    case SM_SIM_RESOURCE: {
        Swarmmedic__V1__ResourceSample *p =
            swarmmedic__v1__resource_sample__unpack(NULL, m->len, m->payload);
        REQUIRE(p != NULL);
        sm_resource_sample ev;
        memset(&ev, 0, sizeof ev);
        ev.ts_ms = p->ts_ms;
        ev.source = p->source;
        ev.token_budget = p->token_budget;
        ev.tokens_used = p->tokens_used;
        ev.memory_used = p->memory_used_bytes;
        ev.memory_limit = p->memory_limit_bytes;
        ev.has_pending = p->n_pending > 0;
        for (size_t i = 0; i < p->n_pending; i++) {
            int pr = p->pending[i]->priority;
            REQUIRE(pr >= 1 && pr <= SM_PRIO_COUNT);
            ev.pending[pr - 1] += p->pending[i]->count;
        }
        ev.active_agents = p->active_agents;
        ev.agent_quota = p->agent_quota;
        rc = sm_swarm_on_resource(sw, &ev, &f->out);
        swarmmedic__v1__resource_sample__free_unpacked(p, NULL);
        break;
    }
    case SM_SIM_CONSENSUS: {
        Swarmmedic__V1__ConsensusRound *p =
            swarmmedic__v1__consensus_round__unpack(NULL, m->len, m->payload);
        REQUIRE(p != NULL);
        sm_consensus_round ev = {p->ts_ms, p->group,
                                 (sm_round_outcome)p->outcome, p->duration_ms,
                                 p->participants, p->quorum};
        rc = sm_swarm_on_consensus(sw, &ev, &f->out);
        swarmmedic__v1__consensus_round__free_unpacked(p, NULL);
        break;
    }
    case SM_SIM_AGENT: {
        Swarmmedic__V1__AgentLifecycle *p =
            swarmmedic__v1__agent_lifecycle__unpack(NULL, m->len, m->payload);
        REQUIRE(p != NULL);
        sm_agent_lifecycle ev = {p->ts_ms, p->agent,
            p->kind == SWARMMEDIC__V1__AGENT_LIFECYCLE__KIND__KIND_REGISTERED,
            p->dynamic != 0};
        rc = sm_swarm_on_agent(sw, &ev, &f->out);
        swarmmedic__v1__agent_lifecycle__free_unpacked(p, NULL);
        break;
    }
    case SM_SIM_OUTCOME:        /* the simple profile has no coordinator */
        ck_abort_msg("an outcome without a command");
        break;
    }
    take_decisions(f);
    REQUIRE_MSG(rc == SM_OK, "%s at %lld: %s", m->subject,
                  (long long)m->ts_ms, sm_status_str(rc));
}

/* Plays a whole run through the detector. */
static void play(const sm_sim_config *cfg, feeder *f)
{
    feeder_init(f, cfg->swarms);
    sm_sim *sim = sim_new(cfg);
    sm_sim_msg m;
    while (sm_sim_next(sim, &m))
        feed(f, &m);
    ck_assert_int_eq(sm_sim_status(sim), SM_OK);
    sm_sim_destroy(sim);
}

static void dump(const feeder *f)
{
    for (size_t i = 0; i < f->n_recs; i++) {
        const rec *r = &f->recs[i];
        fprintf(stderr, "  +%.1fs s%u %s %s %s\n", (r->at - T0) / 1000.0,
                r->swarm, sm_bn_type_str(r->type),
                sm_transition_str(r->kind), r->subject);
    }
}

static sm_bn_type bn_of(sm_sim_fault_kind k)
{
    switch (k) {
    case SM_SIM_FAULT_TOKEN: return SM_BN_TOKEN_EXHAUSTION;
    case SM_SIM_FAULT_QUOTA: return SM_BN_QUOTA_EXCEEDED;
    case SM_SIM_FAULT_SLOW: return SM_BN_SLOW_AGENT;
    case SM_SIM_FAULT_QUEUE: return SM_BN_QUEUE_BACKLOG;
    case SM_SIM_FAULT_CONSENSUS: return SM_BN_CONSENSUS_TIMEOUT;
    }
    return (sm_bn_type)0;
}

/* Asserts that f recorded, for fault `fl`, exactly one RAISED of its type
 * on its swarm inside [start, end) and one RESOLVED in [end, until). */
static void expect_episode(const feeder *f, const sm_sim_fault *fl,
                           int64_t until)
{
    sm_bn_type want = bn_of(fl->kind);
    int64_t s = T0 + fl->start_ms, e = T0 + fl->end_ms;
    int raised = 0, resolved = 0;
    int64_t raised_at = 0;
    for (size_t i = 0; i < f->n_recs; i++) {
        const rec *r = &f->recs[i];
        if (r->type != want || r->swarm != fl->swarm || r->at < s ||
            r->at >= until)
            continue;
        if (r->kind == SM_TR_RAISED) {
            raised++;
            raised_at = r->at;
            ck_assert_msg(r->at < e, "%s raised at +%.1fs, after the fault "
                          "ended (+%.1fs)", sm_bn_type_str(want),
                          (r->at - T0) / 1000.0, fl->end_ms / 1000.0);
            if (want == SM_BN_SLOW_AGENT)
                ck_assert_str_eq(r->subject, "a1");
        } else if (r->kind == SM_TR_RESOLVED) {
            resolved++;
            ck_assert_msg(r->at >= e && r->at > raised_at,
                          "%s resolved at +%.1fs, before the fault ended",
                          sm_bn_type_str(want), (r->at - T0) / 1000.0);
        }
    }
    if (raised != 1 || resolved != 1)
        dump(f);
    ck_assert_msg(raised == 1, "%s (fault %s %lld-%lld ms on s%u): raised %d "
                  "times, want 1", sm_bn_type_str(want),
                  sm_sim_fault_kind_str(fl->kind), (long long)fl->start_ms,
                  (long long)fl->end_ms, fl->swarm, raised);
    ck_assert_msg(resolved == 1, "%s: resolved %d times, want 1",
                  sm_bn_type_str(want), resolved);
}

static size_t count_kind(const feeder *f, sm_transition_kind k)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n_recs; i++)
        n += f->recs[i].kind == k;
    return n;
}

/* ------------------------------------------------------------ tests */

START_TEST(deterministic)
{
    sm_sim_config cfg;
    sm_sim_config_default(&cfg);
    sm_sim_config_demo(&cfg);
    cfg.rate = 200;
    uint64_t n1, n2, n3;
    uint64_t h1 = stream_hash(&cfg, &n1);
    uint64_t h2 = stream_hash(&cfg, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_uint_eq(h1, h2);
    ck_assert_uint_gt(n1, 100000);
    cfg.seed = 2;
    uint64_t h3 = stream_hash(&cfg, &n3);
    ck_assert_uint_ne(h1, h3);
    /* A swarm's stream does not depend on how many others there are. */
    sm_sim_config one;
    sm_sim_config_default(&one);
    one.swarms = 1;
    one.rate = 50.0 / 2;
    one.duration_ms = 60000;
    sm_sim_config two = one;
    two.swarms = 2;
    two.rate = 50.0;
    sm_sim *a = sim_new(&one), *b = sim_new(&two);
    sm_sim_msg ma, mb;
    uint64_t ha = SM_HASH_INIT, hb = SM_HASH_INIT;
    while (sm_sim_next(a, &ma))
        ha = sm_hash_bytes(sm_hash_str(ha, ma.subject), ma.payload, ma.len);
    while (sm_sim_next(b, &mb))
        if (mb.swarm == 0)
            hb = sm_hash_bytes(sm_hash_str(hb, mb.subject), mb.payload,
                               mb.len);
    ck_assert_uint_eq(ha, hb);
    sm_sim_destroy(a);
    sm_sim_destroy(b);
}
END_TEST

/* Compares a subject token with an expected string. */
static void token_is(const char *subject, int idx, const char *want)
{
    const char *p = subject;
    for (int i = 0; i < idx; i++) {
        p = strchr(p, '.');
        REQUIRE(p != NULL);
        p++;
    }
    size_t n = strcspn(p, ".");
    REQUIRE_MSG(strlen(want) == n && strncmp(p, want, n) == 0,
                  "%s: token %d is not %s", subject, idx, want);
}

START_TEST(wire_valid)
{
    sm_sim_config cfg;
    sm_sim_config_default(&cfg);
    sm_sim_config_demo(&cfg);
    cfg.swarms = 3;
    cfg.agents = 7;
    cfg.rate = 150;
    sm_sim *sim = sim_new(&cfg);
    sm_codec *codec;
    ck_assert_int_eq(sm_codec_create(&codec), SM_OK);
    sm_sim_msg m;
    int64_t last = 0;
    uint64_t by_kind[SM_SIM_KINDS] = {0}, task_kinds[7] = {0};
    uint64_t timeouts = 0;
    char sw[16];
    while (sm_sim_next(sim, &m)) {
        REQUIRE(m.ts_ms >= last);
        REQUIRE(m.ts_ms >= T0);
        last = m.ts_ms;
        REQUIRE(m.kind < SM_SIM_KINDS);
        by_kind[m.kind]++;
        snprintf(sw, sizeof sw, "s%u", m.swarm);
        token_is(m.subject, 0, "swarm");
        token_is(m.subject, 1, sw);
        token_is(m.subject, 2, sm_sim_kind_str(m.kind));

        /* The worker's own codec accepts it. */
        sm_subject subj;
        const char *why = NULL;
        REQUIRE(sm_subject_parse(m.subject, &subj, &why) == SM_OK);
        union {
            sm_task_event t;
            sm_heartbeat h;
            sm_resource_sample r;
            sm_consensus_round c;
            sm_agent_lifecycle a;
        } ev;
        sm_status rc = SM_ERR_INVALID;

        switch (m.kind) {
        case SM_SIM_TASK: {
            Swarmmedic__V1__TaskEvent *p =
                swarmmedic__v1__task_event__unpack(NULL, m.len, m.payload);
            REQUIRE(p != NULL);
            REQUIRE(p->ts_ms == m.ts_ms);
            token_is(m.subject, 3, p->agent);
            REQUIRE(p->kind >= 1 && p->kind <= 6);
            REQUIRE(p->priority >= 1 && p->priority <= 5);
            REQUIRE(strncmp(p->task_id, sw, strlen(sw)) == 0);
            REQUIRE(p->attempt == 1);
            task_kinds[p->kind]++;
            if (p->kind == SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_COMPLETED ||
                p->kind == SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_FAILED) {
                REQUIRE(p->duration_ms > 0);
                REQUIRE(p->tokens_used > 0);
            }
            swarmmedic__v1__task_event__free_unpacked(p, NULL);
            rc = sm_codec_task(codec, &subj, m.payload, m.len, &ev.t, &why);
            break;
        }
        case SM_SIM_HEARTBEAT: {
            Swarmmedic__V1__Heartbeat *p =
                swarmmedic__v1__heartbeat__unpack(NULL, m.len, m.payload);
            REQUIRE(p != NULL);
            REQUIRE(p->ts_ms == m.ts_ms);
            token_is(m.subject, 3, p->agent);
            REQUIRE(p->state == SWARMMEDIC__V1__HEARTBEAT__STATE__STATE_IDLE ||
                      p->state == SWARMMEDIC__V1__HEARTBEAT__STATE__STATE_BUSY);
            REQUIRE((p->inflight > 0) == (p->current_task[0] != 0));
            swarmmedic__v1__heartbeat__free_unpacked(p, NULL);
            rc = sm_codec_heartbeat(codec, &subj, m.payload, m.len, &ev.h,
                                    &why);
            break;
        }
        case SM_SIM_RESOURCE: {
            Swarmmedic__V1__ResourceSample *p =
                swarmmedic__v1__resource_sample__unpack(NULL, m.len,
                                                        m.payload);
            REQUIRE(p != NULL);
            REQUIRE(p->ts_ms == m.ts_ms);
            token_is(m.subject, 3, p->source);
            REQUIRE(strcmp(p->source, "scheduler") == 0);
            REQUIRE(p->token_budget > p->tokens_used);
            REQUIRE(p->n_pending == 5);
            REQUIRE(p->agent_quota == 11);  /* 7 + 4 */
            swarmmedic__v1__resource_sample__free_unpacked(p, NULL);
            rc = sm_codec_resource(codec, &subj, m.payload, m.len, &ev.r,
                                   &why);
            break;
        }
        case SM_SIM_CONSENSUS: {
            Swarmmedic__V1__ConsensusRound *p =
                swarmmedic__v1__consensus_round__unpack(NULL, m.len,
                                                        m.payload);
            REQUIRE(p != NULL);
            REQUIRE(p->ts_ms == m.ts_ms);
            token_is(m.subject, 3, p->group);
            REQUIRE(p->outcome == 1 || p->outcome == 2);
            timeouts += p->outcome == 2;
            REQUIRE(p->quorum <= p->participants);
            swarmmedic__v1__consensus_round__free_unpacked(p, NULL);
            rc = sm_codec_consensus(codec, &subj, m.payload, m.len, &ev.c,
                                    &why);
            break;
        }
        case SM_SIM_AGENT: {
            Swarmmedic__V1__AgentLifecycle *p =
                swarmmedic__v1__agent_lifecycle__unpack(NULL, m.len,
                                                        m.payload);
            REQUIRE(p != NULL);
            REQUIRE(p->ts_ms == T0);
            token_is(m.subject, 3, p->agent);
            REQUIRE(p->kind ==
                SWARMMEDIC__V1__AGENT_LIFECYCLE__KIND__KIND_REGISTERED);
            swarmmedic__v1__agent_lifecycle__free_unpacked(p, NULL);
            rc = sm_codec_agent(codec, &subj, m.payload, m.len, &ev.a, &why);
            break;
        }
        case SM_SIM_OUTCOME:
            ck_abort_msg("an outcome without a command");
            break;
        }
        REQUIRE_MSG(rc == SM_OK, "codec rejects %s: %s", m.subject,
                      why ? why : "?");
    }
    ck_assert_int_eq(sm_sim_status(sim), SM_OK);
    for (int k = 0; k <= SM_SIM_AGENT; k++)    /* no coordinator here */
        ck_assert_uint_gt(by_kind[k], 0);
    ck_assert_uint_eq(by_kind[SM_SIM_OUTCOME], 0);
    ck_assert_uint_eq(by_kind[SM_SIM_AGENT], 3 * 7);
    /* QUEUED, STARTED, then mostly COMPLETED, a few FAILED. */
    ck_assert_uint_gt(task_kinds[1], 1000);
    ck_assert_uint_le(task_kinds[2], task_kinds[1]);
    ck_assert_uint_le(task_kinds[3] + task_kinds[4], task_kinds[2]);
    ck_assert_uint_gt(task_kinds[4], 0);
    double fail = (double)task_kinds[4] / (task_kinds[3] + task_kinds[4]);
    ck_assert_msg(fail > 0.01 && fail < 0.05, "failure share %.3f", fail);
    ck_assert_uint_gt(timeouts, 10);    /* the consensus fault */
    sm_codec_destroy(codec);
    sm_sim_destroy(sim);
}
END_TEST

START_TEST(rate_honoured)
{
    static const struct {
        uint32_t swarms, agents;
        double rate;
    } cases[] = {
        {2, 20, 50}, {1, 5, 20}, {3, 10, 300}, {2, 20, 1000}, {1, 100, 5000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sm_sim_config cfg;
        sm_sim_config_default(&cfg);
        cfg.swarms = cases[i].swarms;
        cfg.agents = cases[i].agents;
        cfg.rate = cases[i].rate;
        cfg.duration_ms = 120000;
        sm_sim *sim = sim_new(&cfg);
        sm_sim_msg m;
        uint64_t n = 0, per_s[120] = {0};
        while (sm_sim_next(sim, &m)) {
            n++;
            int64_t sec = (m.ts_ms - T0) / 1000;
            REQUIRE(sec >= 0 && sec < 120);
            per_s[sec]++;
        }
        sm_sim_destroy(sim);
        double got = (double)n / 120.0;
        ck_assert_msg(got > cases[i].rate * 0.8 && got < cases[i].rate * 1.2,
                      "case %zu: %.1f events/s for %.0f", i, got,
                      cases[i].rate);
        /* Spread over time too: every later 10 s stretch within 20%. */
        for (int s = 10; s + 10 <= 120; s += 10) {
            uint64_t k = 0;
            for (int j = s; j < s + 10; j++)
                k += per_s[j];
            ck_assert_msg(k / 10.0 > cases[i].rate * 0.8 &&
                          k / 10.0 < cases[i].rate * 1.2,
                          "case %zu: %.1f events/s in [%d, %d) s", i, k / 10.0,
                          s, s + 10);
        }
    }
}
END_TEST

START_TEST(times_parse)
{
    int64_t ms = -1;
    char why[256];
    static const struct {
        const char *s;
        int64_t ms;
    } good[] = {
        {"1500ms", 1500}, {"90s", 90000}, {"10m", 600000}, {"1.5m", 90000},
        {"1h", 3600000}, {"1m30s", 90000}, {"0s", 0}, {"2.5s", 2500},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ck_assert_msg(sm_sim_parse_time(good[i].s, &ms, why, sizeof why) ==
                      SM_OK, "%s: %s", good[i].s, why);
        ck_assert_int_eq(ms, good[i].ms);
    }
    static const struct {
        const char *s, *why;
    } bad[] = {
        {"30", "time \"30\" needs a unit (ms, s, m or h)"},
        {"", "empty time"},
        {"abc", "time \"abc\" is not a number with a unit"},
        {"5d", "time \"5d\" has an unknown unit at \"d\""},
        {"-5s", "is not a number with a unit"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = 0;
        ck_assert_int_eq(sm_sim_parse_time(bad[i].s, &ms, why, sizeof why),
                         SM_ERR_INVALID);
        ck_assert_msg(strstr(why, bad[i].why) != NULL, "%s: got \"%s\"",
                      bad[i].s, why);
    }
}
END_TEST

START_TEST(faults_parse)
{
    sm_sim_fault f;
    char why[256] = "";
    ck_assert_int_eq(sm_sim_fault_parse("slow:0:30s-90s", &f, why, sizeof why),
                     SM_OK);
    ck_assert_int_eq(f.kind, SM_SIM_FAULT_SLOW);
    ck_assert_uint_eq(f.swarm, 0);
    ck_assert_int_eq(f.start_ms, 30000);
    ck_assert_int_eq(f.end_ms, 90000);
    ck_assert_int_eq(sm_sim_fault_parse("queue:s1:1m-2m30s", &f, why,
                                        sizeof why), SM_OK);
    ck_assert_int_eq(f.kind, SM_SIM_FAULT_QUEUE);
    ck_assert_uint_eq(f.swarm, 1);
    ck_assert_int_eq(f.start_ms, 60000);
    ck_assert_int_eq(f.end_ms, 150000);
    const char *kinds[] = {"token", "quota", "slow", "queue", "consensus"};
    for (int k = 0; k < 5; k++) {
        char spec[64];
        snprintf(spec, sizeof spec, "%s:12:1500ms-2m", kinds[k]);
        ck_assert_int_eq(sm_sim_fault_parse(spec, &f, why, sizeof why), SM_OK);
        ck_assert_int_eq(f.kind, k + 1);
        ck_assert_str_eq(sm_sim_fault_kind_str(f.kind), kinds[k]);
        ck_assert_uint_eq(f.swarm, 12);
        ck_assert_int_eq(f.start_ms, 1500);
        ck_assert_int_eq(f.end_ms, 120000);
    }

    static const struct {
        const char *spec, *why;
    } bad[] = {
        {"slow:0:30-90s",
         "fault \"slow:0:30-90s\": time \"30\" needs a unit (ms, s, m or h)"},
        {"fast:0:1s-2s", "fault \"fast:0:1s-2s\": unknown kind \"fast\" "
                         "(token, quota, slow, queue or consensus)"},
        {"slow:x:1s-2s", "fault \"slow:x:1s-2s\": swarm \"x\" is not a swarm "
                         "number"},
        {"slow::1s-2s", "swarm \"\" is not a swarm number"},
        {"slow:0:90s-30s", "fault \"slow:0:90s-30s\": the end (30s) must be "
                           "after the start (90s)"},
        {"slow:0:30s-30s", "must be after the start"},
        {"slow:0", "fault \"slow:0\" is not kind:swarm:start-end (e.g. "
                   "slow:0:30s-90s)"},
        {"slow:0:30s", "is not kind:swarm:start-end"},
        {"slow:0:1s-2s:x", "is not kind:swarm:start-end"},
        {"", "is not kind:swarm:start-end"},
        {"slow:0:1s-2w", "time \"2w\" has an unknown unit"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = 0;
        ck_assert_int_eq(sm_sim_fault_parse(bad[i].spec, &f, why, sizeof why),
                         SM_ERR_INVALID);
        ck_assert_msg(strstr(why, bad[i].why) != NULL, "%s: got \"%s\"",
                      bad[i].spec, why);
    }

    /* What only the whole config can tell. */
    sm_sim_config cfg;
    sm_sim_config_default(&cfg);
    ck_assert_int_eq(sm_sim_config_add_fault(&cfg, "slow:2:1s-2s", why,
                                             sizeof why), SM_OK);
    ck_assert_int_eq(sm_sim_config_validate(&cfg, why, sizeof why),
                     SM_ERR_CONFIG);
    ck_assert_str_eq(why, "fault 1 (slow) is on swarm 2 but the swarms are "
                          "0..1");
    sm_sim *sim = NULL;
    ck_assert_int_eq(sm_sim_create(&sim, &cfg), SM_ERR_CONFIG);
    ck_assert_ptr_null(sim);
    sm_sim_config_default(&cfg);
    ck_assert_int_eq(sm_sim_config_add_fault(&cfg, "queue:0:10m-11m", why,
                                             sizeof why), SM_OK);
    ck_assert_int_eq(sm_sim_config_validate(&cfg, why, sizeof why),
                     SM_ERR_CONFIG);
    ck_assert_str_eq(why, "fault 1 (queue) starts at 600000 ms, after the run "
                          "ends (600000 ms)");
    sm_sim_config_default(&cfg);
    for (int i = 0; i < SM_SIM_MAX_FAULTS; i++)
        ck_assert_int_eq(sm_sim_config_add_fault(&cfg, "token:0:1s-2s", why,
                                                 sizeof why), SM_OK);
    ck_assert_int_eq(sm_sim_config_add_fault(&cfg, "token:0:1s-2s", why,
                                             sizeof why), SM_ERR_FULL);
    sm_sim_config_default(&cfg);
    cfg.rate = 0;
    ck_assert_int_eq(sm_sim_config_validate(&cfg, why, sizeof why),
                     SM_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(why, "event rate"));
    cfg.rate = 10;
    cfg.agents = 0;
    ck_assert_int_eq(sm_sim_config_validate(&cfg, why, sizeof why),
                     SM_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(why, "agents per swarm"));
}
END_TEST

START_TEST(demo_scenario)
{
    sm_sim_fault f[8];
    ck_assert_uint_eq(sm_sim_demo_faults(f, 8), 5);
    ck_assert_uint_eq(sm_sim_demo_faults(f, 2), 2);
    ck_assert_uint_eq(sm_sim_demo_faults(f, 8), 5);
    bool seen[SM_SIM_FAULT_KINDS + 1] = {false};
    for (int i = 0; i < 5; i++) {
        ck_assert(!seen[f[i].kind]);
        seen[f[i].kind] = true;
        ck_assert_uint_eq(f[i].swarm, 0);
        ck_assert_int_ge(f[i].end_ms - f[i].start_ms, 60000);
        if (i > 0)
            ck_assert_int_ge(f[i].start_ms - f[i - 1].end_ms, 70000);
        ck_assert_int_le(f[i].end_ms, SM_SIM_DEMO_DURATION_MS);
    }
}
END_TEST

/* The strongest property: a plain swarm never looks sick. */
START_TEST(baseline_raises_nothing)
{
    static const struct {
        uint64_t seed;
        uint32_t swarms, agents;
        double rate;
    } cases[] = {
        {1, 2, 20, 50}, {2, 2, 20, 50}, {3, 2, 20, 1000}, {4, 1, 3, 10},
        {5, 4, 8, 120},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sm_sim_config cfg;
        sm_sim_config_default(&cfg);
        cfg.seed = cases[i].seed;
        cfg.swarms = cases[i].swarms;
        cfg.agents = cases[i].agents;
        cfg.rate = cases[i].rate;
        cfg.duration_ms = 10 * 60 * 1000;
        feeder f;
        play(&cfg, &f);
        if (f.n_recs != 0)
            dump(&f);
        ck_assert_msg(f.n_recs == 0, "case %zu: %zu transitions on a "
                      "healthy swarm", i, f.n_recs);
        feeder_free(&f);
    }
}
END_TEST

/* One fault on swarm 1, 2:00-3:00 of a 6-minute run: its bottleneck, and
 * only it, is raised during the fault and resolved after. */
static void single_fault(sm_sim_fault_kind k)
{
    static const struct {
        uint64_t seed;
        double rate;
    } cases[] = {{1, 50}, {7, 50}, {3, 1000}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sm_sim_config cfg;
        sm_sim_config_default(&cfg);
        cfg.seed = cases[i].seed;
        cfg.rate = cases[i].rate;
        cfg.duration_ms = 6 * 60 * 1000;
        cfg.n_faults = 1;
        cfg.faults[0] = (sm_sim_fault){k, 1, 120000, 180000};
        feeder f;
        play(&cfg, &f);
        expect_episode(&f, &cfg.faults[0], T0 + cfg.duration_ms);
        for (size_t j = 0; j < f.n_recs; j++) {
            if (f.recs[j].type != bn_of(k) || f.recs[j].swarm != 1)
                dump(&f);
            ck_assert_msg(f.recs[j].type == bn_of(k) && f.recs[j].swarm == 1,
                          "seed %llu rate %.0f: %s on s%u during a %s fault",
                          (unsigned long long)cases[i].seed, cases[i].rate,
                          sm_bn_type_str(f.recs[j].type), f.recs[j].swarm,
                          sm_sim_fault_kind_str(k));
        }
        ck_assert_uint_eq(count_kind(&f, SM_TR_RAISED), 1);
        ck_assert_uint_eq(count_kind(&f, SM_TR_RESOLVED), 1);
        feeder_free(&f);
    }
}

START_TEST(fault_token) { single_fault(SM_SIM_FAULT_TOKEN); }
END_TEST
START_TEST(fault_quota) { single_fault(SM_SIM_FAULT_QUOTA); }
END_TEST
START_TEST(fault_slow) { single_fault(SM_SIM_FAULT_SLOW); }
END_TEST
START_TEST(fault_queue) { single_fault(SM_SIM_FAULT_QUEUE); }
END_TEST
START_TEST(fault_consensus) { single_fault(SM_SIM_FAULT_CONSENSUS); }
END_TEST

START_TEST(demo_raises_and_resolves_all)
{
    static const double rates[] = {50, 1000};
    for (size_t r = 0; r < 2; r++) {
        sm_sim_config cfg;
        sm_sim_config_default(&cfg);
        sm_sim_config_demo(&cfg);
        cfg.rate = rates[r];
        feeder f;
        play(&cfg, &f);
        for (size_t i = 0; i < cfg.n_faults; i++) {
            int64_t until = i + 1 < cfg.n_faults
                                ? T0 + cfg.faults[i + 1].start_ms
                                : T0 + cfg.duration_ms;
            expect_episode(&f, &cfg.faults[i], until);
        }
        ck_assert_uint_eq(count_kind(&f, SM_TR_RAISED), 5);
        ck_assert_uint_eq(count_kind(&f, SM_TR_RESOLVED), 5);
        for (size_t j = 0; j < f.n_recs; j++)
            ck_assert_uint_eq(f.recs[j].swarm, 0);
        feeder_free(&f);
    }
}
END_TEST

/* ------------------------------------------------------------ program */

static int run_sim(const char *const *args, const char *log)
{
    char bin[600];
    const char *argv[32];
    sm_test_bin(bin, sizeof bin, "swarm-sim");
    argv[0] = bin;
    int n = 1;
    for (; args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    unlink(log);
    pid_t pid = sm_test_spawn(argv, log, false);
    return sm_test_wait(pid, 60000);
}

START_TEST(program_flags)
{
    char dir[256], log[300];
    sm_test_tmpdir(dir, sizeof dir, "sim");
    snprintf(log, sizeof log, "%s/out", dir);

    const char *dry[] = {"--dry-run", "--count", "100", "--seed=9", NULL};
    ck_assert_int_eq(run_sim(dry, log), 0);
    char *out = sm_test_slurp(log);
    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(strstr(out, "1767225600000 swarm.s0.agent.a0 "));
    ck_assert_ptr_nonnull(strstr(out, "swarm-sim: 100 events (task "));
    int lines = 0;      /* event lines: "<ts> <subject> <bytes>" */
    for (char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        lines += strncmp(p, "17672", 5) == 0;
    ck_assert_int_eq(lines, 100);
    free(out);

    static const struct {
        const char *args[4];
        const char *err;
    } bad[] = {
        {{"--bogus", NULL}, "swarm-sim: unknown flag --bogus"},
        {{"--rate", "fast", NULL}, "--rate 'fast' is not a positive number"},
        {{"--fault", "slow:0:30-90s", NULL},
         "--fault: fault \"slow:0:30-90s\": time \"30\" needs a unit"},
        {{"--fault", "slow:3:1m-2m", NULL},
         "fault 1 (slow) is on swarm 3 but the swarms are 0..1"},
        {{"--pace", "slowly", NULL}, "--pace 'slowly' is not fast, real"},
        {{"--duration", "10", NULL}, "--duration: time \"10\" needs a unit"},
        {{"--count", NULL}, "--count needs a value"},
        {{"extra", NULL}, "unexpected argument 'extra'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(run_sim(bad[i].args, log), 2);
        out = sm_test_slurp(log);
        ck_assert_msg(out && strstr(out, bad[i].err), "want \"%s\", got %s",
                      bad[i].err, out ? out : "nothing");
        free(out);
    }
    const char *help[] = {"--help", NULL};
    ck_assert_int_eq(run_sim(help, log), 0);
    out = sm_test_slurp(log);
    ck_assert_ptr_nonnull(strstr(out, "--fault SPEC"));
    free(out);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(program_connect_failure)
{
    char dir[256], log[300];
    sm_test_tmpdir(dir, sizeof dir, "sim");
    snprintf(log, sizeof log, "%s/out", dir);
    /* A port nothing listens on: a server started and stopped. */
    sm_test_server srv;
    sm_test_server_start(&srv, 0, NULL);
    char url[64];
    snprintf(url, sizeof url, "%s", srv.url);
    sm_test_server_stop(&srv);
    sm_test_rmtree(srv.dir);
    const char *args[] = {"--url", url, "--count", "10", NULL};
    ck_assert_int_eq(run_sim(args, log), 1);
    char *out = sm_test_slurp(log);
    ck_assert_ptr_nonnull(strstr(out, "swarm-sim: cannot connect to"));
    free(out);
    sm_test_rmtree(dir);
}
END_TEST

static void count_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                      void *closure)
{
    (void)nc;
    (void)sub;
    uint64_t *n = closure;
    __atomic_add_fetch(n, 1, __ATOMIC_SEQ_CST);
    natsMsg_Destroy(msg);
}

START_TEST(program_publishes)
{
    char dir[256], log[300];
    sm_test_tmpdir(dir, sizeof dir, "sim");
    snprintf(log, sizeof log, "%s/out", dir);
    sm_test_server srv;
    sm_test_server_start(&srv, 0, NULL);

    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    uint64_t got = 0;
    ck_assert_int_eq(natsConnection_ConnectTo(&nc, srv.url), NATS_OK);
    ck_assert_int_eq(natsConnection_Subscribe(&sub, nc, "swarm.>", count_msg,
                                              &got), NATS_OK);
    natsSubscription_SetPendingLimits(sub, -1, -1);
    ck_assert_int_eq(natsConnection_Flush(nc), NATS_OK);

    const char *args[] = {"--url", srv.url, "--count", "5000", "--demo",
                          "--rate", "1000", "--pace", "fast", NULL};
    ck_assert_int_eq(run_sim(args, log), 0);
    for (int i = 0; i < 500 && __atomic_load_n(&got, __ATOMIC_SEQ_CST) < 5000;
         i++)
        nats_Sleep(10);
    ck_assert_uint_eq(__atomic_load_n(&got, __ATOMIC_SEQ_CST), 5000);
    char *out = sm_test_slurp(log);
    ck_assert_ptr_nonnull(strstr(out, "swarm-sim: 5000 events (task "));
    free(out);

    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    nats_Close();
    sm_test_server_stop(&srv);
    sm_test_rmtree(srv.dir);
    sm_test_rmtree(dir);
}
END_TEST


/* ------------------------------------------------------------ realistic */

#include <dirent.h>
#include <math.h>

#include "scenario.h"
#include "world.h"

#define SCENARIOS "tests/scenarios"

static sm_sim *world_new(const sm_world_config *wc)
{
    sm_sim *sim = NULL;
    char why[256] = "";
    ck_assert_msg(sm_world_config_validate(wc, why, sizeof why) == SM_OK,
                  "world: %s", why);
    ck_assert_int_eq(sm_sim_create_world(&sim, wc), SM_OK);
    return sim;
}

static uint64_t world_hash(const sm_world_config *wc, uint64_t *count)
{
    sm_sim *sim = world_new(wc);
    sm_sim_msg m;
    uint64_t h = SM_HASH_INIT, n = 0;
    int64_t last = 0;
    while (sm_sim_next(sim, &m)) {
        REQUIRE(m.ts_ms >= last);
        last = m.ts_ms;
        h = sm_hash_str(h, m.subject);
        h = sm_hash_u64(h, (uint64_t)m.ts_ms);
        h = sm_hash_bytes(h, m.payload, m.len);
        n++;
    }
    ck_assert_int_eq(sm_sim_status(sim), SM_OK);
    sm_sim_destroy(sim);
    *count = n;
    return h;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* q-quantile of v[0..n) (sorts v). */
static uint32_t quantile(uint32_t *v, size_t n, double q)
{
    ck_assert_uint_gt(n, 0);
    qsort(v, n, sizeof *v, cmp_u32);
    size_t i = (size_t)(q * (double)(n - 1));
    return v[i];
}

START_TEST(world_deterministic)
{
    sm_world_config wc;
    sm_world_config_default(&wc);
    wc.duration_ms = 5 * 60 * 1000;
    wc.n_swarms = 2;
    sm_wswarm_default(&wc.swarms[1], 1);
    wc.swarms[1].speed = 2.0;
    wc.n_faults = 1;
    wc.faults[0].type = SM_WF_SLOW_AGENT;
    wc.faults[0].onset_ms = 60000;
    wc.faults[0].end_ms = 200000;
    wc.faults[0].magnitude = 3.5;
    wc.faults[0].n_agents = 1;
    uint64_t n1, n2, n3;
    uint64_t h1 = world_hash(&wc, &n1);
    uint64_t h2 = world_hash(&wc, &n2);
    ck_assert_uint_eq(h1, h2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_uint_gt(n1, 5000);
    wc.seed = 2;
    uint64_t h3 = world_hash(&wc, &n3);
    ck_assert_uint_ne(h1, h3);
}
END_TEST

START_TEST(world_math)
{
    /* Own exp/log against libm (the test may use it; the generator not). */
    for (double x = -20; x <= 20; x += 0.37)
        ck_assert_msg(fabs(sm_world_exp(x) / exp(x) - 1) < 1e-12,
                      "exp(%g)", x);
    for (double x = 1e-6; x < 1e6; x *= 3.7)
        ck_assert_msg(fabs(sm_world_log(x) - log(x)) < 1e-12, "log(%g)", x);
}
END_TEST

#define MAXA 128
#define MAXT 8

/* Everything the realistic stream is measured on. */
typedef struct wstats {
    uint32_t *dur[MAXT];        /* completed durations per type */
    size_t n_dur[MAXT];
    uint32_t med[MAXT];
    uint64_t completed, failed, timed_out, typed_tasks, task_events;
    uint32_t fail_dur_sum_ratio_n;
    bool cluster;               /* two failures within 20 tasks of an agent */
    uint64_t since_fail[MAXA];
    uint32_t max_inflight;
    int64_t last_hb[MAXA];
    int64_t hb_gap_min, hb_gap_max;
    uint64_t hb_missed;          /* gaps over 1.6x the period */
    uint64_t last_prog[MAXA];
    int64_t prog_since[MAXA];
    int64_t longest_stall;
    uint64_t hb_busy, hb_idle;
    uint64_t reserve_busy;      /* busy heartbeats of reserve agents */
    uint64_t reserve_idle;
    char groups[8][8];
    int n_groups;
    uint64_t rounds, timeouts, lost_quorum;
    uint32_t max_pending;
    uint32_t last_pending;
    uint32_t max_active, min_active;
    uint64_t dyn_reg, dyn_unreg;
    double max_token, max_memory;
    uint64_t outliers;
} wstats;

static int group_index(wstats *st, const char *g)
{
    for (int i = 0; i < st->n_groups; i++)
        if (strcmp(st->groups[i], g) == 0)
            return i;
    if (st->n_groups < 8)
        snprintf(st->groups[st->n_groups++], 8, "%s", g);
    return st->n_groups - 1;
}

static const char *const type_names[4] = {"search", "summarize", "codegen",
                                          "review"};

static int type_index(const char *t)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(type_names[i], t) == 0)
            return i;
    return -1;
}

/* Runs wc (swarm 0 only is measured) and fills st. */
static void measure(const sm_world_config *wc, uint32_t first_reserve,
                    wstats *st)
{
    memset(st, 0, sizeof *st);
    st->hb_gap_min = INT64_MAX;
    st->min_active = UINT32_MAX;
    for (int t = 0; t < MAXT; t++) {
        st->dur[t] = malloc(200000 * sizeof(uint32_t));
        ck_assert_ptr_nonnull(st->dur[t]);
    }
    sm_sim *sim = world_new(wc);
    sm_sim_msg m;
    while (sm_sim_next(sim, &m)) {
        if (m.swarm != 0)
            continue;
        switch (m.kind) {
        case SM_SIM_TASK: {
            Swarmmedic__V1__TaskEvent *t =
                swarmmedic__v1__task_event__unpack(NULL, m.len, m.payload);
            REQUIRE(t != NULL);
            st->task_events++;
            int ty = type_index(t->task_type);
            st->typed_tasks += ty >= 0;
            uint32_t a = (uint32_t)atoi(t->agent + 1);
            REQUIRE(a < MAXA);
            if (t->kind == SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_COMPLETED &&
                ty >= 0) {
                st->completed++;
                st->dur[ty][st->n_dur[ty]++] = t->duration_ms;
                st->since_fail[a]++;
            } else if (t->kind ==
                       SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_FAILED) {
                st->failed++;
                if (st->since_fail[a] < 20 && st->since_fail[a] > 0 &&
                    st->failed > 1)
                    st->cluster = true;
                st->since_fail[a] = 0;
            } else if (t->kind ==
                       SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_TIMED_OUT) {
                st->timed_out++;
            }
            swarmmedic__v1__task_event__free_unpacked(t, NULL);
            break;
        }
        case SM_SIM_HEARTBEAT: {
            Swarmmedic__V1__Heartbeat *h =
                swarmmedic__v1__heartbeat__unpack(NULL, m.len, m.payload);
            REQUIRE(h != NULL);
            uint32_t a = (uint32_t)atoi(h->agent + 1);
            REQUIRE(a < MAXA);
            if (h->inflight > st->max_inflight)
                st->max_inflight = h->inflight;
            if (st->last_hb[a]) {
                int64_t gap = h->ts_ms - st->last_hb[a];
                if (gap < st->hb_gap_min)
                    st->hb_gap_min = gap;
                if (gap > st->hb_gap_max)
                    st->hb_gap_max = gap;
                if (gap > 8000 && gap < 12000)
                    st->hb_missed++;
            }
            st->last_hb[a] = h->ts_ms;
            bool busy = h->state != SWARMMEDIC__V1__HEARTBEAT__STATE__STATE_IDLE;
            st->hb_busy += busy;
            st->hb_idle += !busy;
            if (a >= first_reserve) {
                st->reserve_busy += busy;
                st->reserve_idle += !busy;
            }
            if (busy && h->progress == st->last_prog[a]) {
                if (h->ts_ms - st->prog_since[a] > st->longest_stall)
                    st->longest_stall = h->ts_ms - st->prog_since[a];
            } else {
                st->prog_since[a] = h->ts_ms;
            }
            REQUIRE(h->progress >= st->last_prog[a]);
            st->last_prog[a] = h->progress;
            swarmmedic__v1__heartbeat__free_unpacked(h, NULL);
            break;
        }
        case SM_SIM_CONSENSUS: {
            Swarmmedic__V1__ConsensusRound *c =
                swarmmedic__v1__consensus_round__unpack(NULL, m.len,
                                                        m.payload);
            REQUIRE(c != NULL);
            group_index(st, c->group);
            st->rounds++;
            st->timeouts += c->outcome ==
                SWARMMEDIC__V1__CONSENSUS_ROUND__OUTCOME__OUTCOME_TIMEOUT;
            st->lost_quorum += c->participants < c->quorum;
            swarmmedic__v1__consensus_round__free_unpacked(c, NULL);
            break;
        }
        case SM_SIM_RESOURCE: {
            Swarmmedic__V1__ResourceSample *r =
                swarmmedic__v1__resource_sample__unpack(NULL, m.len,
                                                        m.payload);
            REQUIRE(r != NULL);
            uint32_t p = 0;
            REQUIRE(r->n_pending == 5);
            for (size_t i = 0; i < r->n_pending; i++)
                p += r->pending[i]->count;
            st->last_pending = p;
            if (p > st->max_pending)
                st->max_pending = p;
            if (r->active_agents > st->max_active)
                st->max_active = r->active_agents;
            if (m.ts_ms > wc->start_ms + 5000 &&
                r->active_agents < st->min_active)
                st->min_active = r->active_agents;
            REQUIRE(r->active_agents <= r->agent_quota);
            double tk = (double)r->tokens_used / (double)r->token_budget;
            double mem = (double)r->memory_used_bytes /
                         (double)r->memory_limit_bytes;
            if (tk > st->max_token)
                st->max_token = tk;
            if (mem > st->max_memory)
                st->max_memory = mem;
            swarmmedic__v1__resource_sample__free_unpacked(r, NULL);
            break;
        }
        case SM_SIM_AGENT: {
            Swarmmedic__V1__AgentLifecycle *l =
                swarmmedic__v1__agent_lifecycle__unpack(NULL, m.len,
                                                        m.payload);
            REQUIRE(l != NULL);
            uint32_t a = (uint32_t)atoi(l->agent + 1);
            if (a < MAXA && l->kind ==
                SWARMMEDIC__V1__AGENT_LIFECYCLE__KIND__KIND_REGISTERED)
                st->last_prog[a] = 0;   /* a restart starts it over */
            if (l->dynamic)
                (*(l->kind == SWARMMEDIC__V1__AGENT_LIFECYCLE__KIND__KIND_REGISTERED
                       ? &st->dyn_reg : &st->dyn_unreg))++;
            swarmmedic__v1__agent_lifecycle__free_unpacked(l, NULL);
            break;
        }
        case SM_SIM_OUTCOME:    /* no coordinator in these runs */
            ck_abort_msg("an outcome without a command");
            break;
        }
    }
    ck_assert_int_eq(sm_sim_status(sim), SM_OK);
    sm_sim_destroy(sim);
    for (int t = 0; t < 4; t++) {
        if (st->n_dur[t] == 0)
            continue;
        st->med[t] = quantile(st->dur[t], st->n_dur[t], 0.5);
        for (size_t i = 0; i < st->n_dur[t]; i++)
            st->outliers += st->dur[t][i] > 8 * st->med[t];
    }
}

static void wstats_free(wstats *st)
{
    for (int t = 0; t < MAXT; t++)
        free(st->dur[t]);
}

/* The steady 100-agent world shows what real swarms show (SPEC.md). */
START_TEST(world_realistic_steady)
{
    sm_world_config wc;
    sm_world_config_default(&wc);
    wc.duration_ms = 25 * 60 * 1000;
    wc.swarms[0].agents = 100;
    wc.swarms[0].reserve = 6;
    wc.swarms[0].groups = 3;
    wstats st;
    measure(&wc, 100, &st);

    /* Types differ by an order of magnitude, each right-skewed. */
    ck_assert_uint_gt(st.n_dur[0], 1000);
    ck_assert_uint_gt(st.n_dur[2], 300);
    ck_assert_uint_ge(st.med[0], 2500);
    ck_assert_uint_le(st.med[0], 3500);
    ck_assert_uint_ge(st.med[2], 25000);
    ck_assert_uint_le(st.med[2], 35000);
    ck_assert_uint_gt(st.med[2], 8 * st.med[0]);
    for (int t = 0; t < 4; t++) {
        uint32_t p90 = quantile(st.dur[t], st.n_dur[t], 0.9);
        uint32_t p10 = quantile(st.dur[t], st.n_dur[t], 0.1);
        ck_assert_msg(p90 - st.med[t] > st.med[t] - p10,
                      "%s not right-skewed", type_names[t]);
    }
    ck_assert_uint_gt(st.outliers, 5);        /* 10-30x single tasks */
    ck_assert_uint_eq(st.typed_tasks, st.task_events);

    /* Failures at a few percent, clustered sometimes. */
    double fr = (double)st.failed / (double)(st.failed + st.completed);
    ck_assert_msg(fr > 0.015 && fr < 0.06, "failure rate %.3f", fr);
    ck_assert(st.cluster);

    /* One task at a time; heartbeats jitter and miss; progress stalls. */
    ck_assert_uint_eq(st.max_inflight, 1);
    ck_assert_int_lt(st.hb_gap_min, 4500);
    ck_assert_int_gt(st.hb_gap_max, 8000);
    ck_assert_uint_gt(st.hb_missed, 10);
    ck_assert_int_ge(st.longest_stall, 10000);
    ck_assert_uint_gt(st.hb_busy, st.hb_idle / 4);
    ck_assert_uint_gt(st.hb_idle, 100);

    /* Reserve agents idle nearly always. */
    ck_assert_uint_gt(st.reserve_idle, 1000);
    ck_assert_uint_lt(st.reserve_busy * 20, st.reserve_idle);

    /* Three groups with a few percent timeouts; a quiet baseline queue. */
    ck_assert_int_eq(st.n_groups, 3);
    double tr = (double)st.timeouts / (double)st.rounds;
    ck_assert_msg(tr > 0.005 && tr < 0.05, "timeout rate %.3f", tr);
    ck_assert_uint_lt(st.max_pending, 50);
    ck_assert_double_lt(st.max_token, 0.75);
    ck_assert_double_lt(st.max_memory, 0.6);
    ck_assert_uint_lt(st.max_active, 106 + 25);
    wstats_free(&st);
}
END_TEST

/* A surge backs the queue up, the autoscaler adds dynamic agents, and the
 * queue drains after; the dynamic agents go again. */
START_TEST(world_surge_and_autoscaler)
{
    sm_world_config wc;
    sm_world_config_default(&wc);
    wc.duration_ms = 20 * 60 * 1000;
    wc.n_faults = 1;
    sm_wfault *f = &wc.faults[0];
    f->type = SM_WF_QUEUE_SURGE;
    f->onset_ms = 300000;
    f->ramp_ms = 30000;
    f->end_ms = 600000;
    f->magnitude = 2.5;
    wstats st;
    measure(&wc, 1000, &st);
    ck_assert_uint_gt(st.max_pending, 100);
    ck_assert_uint_lt(st.last_pending, 20);
    ck_assert_uint_gt(st.dyn_reg, 3);
    ck_assert_uint_gt(st.dyn_unreg, 1);
    ck_assert_uint_eq(st.max_active, 40 + 10);  /* the quota */
    wstats_free(&st);
}
END_TEST

/* Each fault shows in the stream. */
START_TEST(world_faults_show)
{
    sm_world_config wc;
    sm_world_config_default(&wc);
    wc.duration_ms = 15 * 60 * 1000;
    wc.n_faults = 5;
    sm_wfault *f = wc.faults;
    f[0].type = SM_WF_QUORUM_LOSS;
    f[0].onset_ms = 100000;
    f[0].end_ms = 300000;
    f[1].type = SM_WF_TOKEN_BURN;
    f[1].onset_ms = 100000;
    f[1].end_ms = 500000;
    f[1].magnitude = 15;
    f[2].type = SM_WF_MEMORY_LEAK;
    f[2].onset_ms = 60000;
    f[2].end_ms = 800000;
    f[2].magnitude = 400;
    f[3].type = SM_WF_CRASH_RESTART;
    f[3].onset_ms = 200000;
    f[3].end_ms = 400000;
    f[3].n_agents = 1;
    f[3].agents[0] = 4;
    f[4].type = SM_WF_STUCK_AGENT;
    f[4].onset_ms = 200000;
    f[4].end_ms = 600000;
    f[4].n_agents = 1;
    f[4].agents[0] = 5;
    wstats st;
    measure(&wc, 1000, &st);
    ck_assert_uint_gt(st.lost_quorum, 30);
    ck_assert_double_ge(st.max_token, 0.95);
    ck_assert_double_gt(st.max_memory, 0.85);
    ck_assert_uint_ge(st.timed_out, 1);       /* the stuck task, at least */
    ck_assert_int_gt(st.hb_gap_max, 150000);  /* the crashed agent */
    ck_assert_int_ge(st.longest_stall, 300000);   /* the stuck agent */
    wstats_free(&st);
}
END_TEST

/* A slow agent's tasks of a type take the factor longer. */
START_TEST(world_slow_agent)
{
    sm_world_config wc;
    sm_world_config_default(&wc);
    wc.duration_ms = 40 * 60 * 1000;
    wc.swarms[0].agents = 10;
    wc.n_faults = 1;
    wc.faults[0].type = SM_WF_SLOW_AGENT;
    wc.faults[0].magnitude = 3.5;
    wc.faults[0].n_agents = 1;
    wc.faults[0].agents[0] = 3;
    sm_sim *sim = world_new(&wc);
    sm_sim_msg m;
    uint32_t *slow = malloc(100000 * sizeof *slow);
    uint32_t *norm = malloc(100000 * sizeof *norm);
    size_t ns = 0, nn = 0;
    while (sm_sim_next(sim, &m)) {
        if (m.kind != SM_SIM_TASK)
            continue;
        Swarmmedic__V1__TaskEvent *t =
            swarmmedic__v1__task_event__unpack(NULL, m.len, m.payload);
        if (t->kind == SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_COMPLETED &&
            strcmp(t->task_type, "search") == 0) {
            if (strcmp(t->agent, "a3") == 0)
                slow[ns++] = t->duration_ms;
            else
                norm[nn++] = t->duration_ms;
        }
        swarmmedic__v1__task_event__free_unpacked(t, NULL);
    }
    sm_sim_destroy(sim);
    ck_assert_uint_gt(ns, 20);
    double r = (double)quantile(slow, ns, 0.5) / quantile(norm, nn, 0.5);
    /* 3.5 with the noise of a median of some 30 lognormal draws */
    ck_assert_msg(r > 2.8 && r < 4.6, "slow ratio %.2f", r);
    free(slow);
    free(norm);
}
END_TEST

static const sm_label *find_label(const sm_scenario *sc, sm_label_class c,
                                  sm_label_kind kind, const char *type,
                                  const char *subject)
{
    const sm_label *l = sm_scenario_labels(sc)->v;
    size_t n = sm_scenario_labels(sc)->n;
    for (size_t i = 0; i < n; i++)
        if (l[i].cls == c && l[i].kind == kind &&
            strcmp(l[i].type, type) == 0 &&
            strcmp(l[i].subject, subject) == 0)
            return &l[i];
    return NULL;
}

static sm_scenario *scenario_text(const char *json)
{
    sm_scenario *sc = NULL;
    char err[512] = "";
    sm_status rc = sm_scenario_parse(json, strlen(json), &sc, err, sizeof err);
    ck_assert_msg(rc == SM_OK, "parse: %s", err);
    return sc;
}

/* Every scenario file loads, is named after its file, and has labels;
 * there are at least 14; a scenario's stream is its world's. */
START_TEST(scenarios_load)
{
    DIR *d = opendir(SCENARIOS);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        char path[512], err[512] = "";
        snprintf(path, sizeof path, "%s/%s", SCENARIOS, e->d_name);
        sm_scenario *sc = NULL;
        ck_assert_msg(sm_scenario_load(path, &sc, err, sizeof err) == SM_OK,
                      "%s", err);
        ck_assert_msg(strncmp(sm_scenario_name(sc), e->d_name, len - 5) == 0
                      && sm_scenario_name(sc)[len - 5] == 0,
                      "%s is named %s", path, sm_scenario_name(sc));
        const sm_label *l = sm_scenario_labels(sc)->v;
        size_t nl = sm_scenario_labels(sc)->n;
        ck_assert_msg(nl > 0, "%s has no labels", path);
        const sm_world_config *w = sm_scenario_world(sc);
        for (size_t i = 0; i < nl; i++) {
            ck_assert(l[i].cls >= SM_LABEL_MUST && l[i].cls <= SM_LABEL_NEVER);
            ck_assert_int_le(l[i].from_ms, l[i].to_ms);
            ck_assert_int_ge(l[i].from_ms, w->start_ms);
            ck_assert_int_le(l[i].to_ms, w->start_ms + w->duration_ms);
            ck_assert(!l[i].relative);
            ck_assert(l[i].type[0] && l[i].swarm[0]);
        }
        sm_sim *sim = NULL;
        ck_assert_int_eq(sm_sim_create_scenario(&sim, sc), SM_OK);
        sm_sim_msg m;
        ck_assert(sm_sim_next(sim, &m));
        ck_assert_int_eq(m.ts_ms, w->start_ms);
        sm_sim_destroy(sim);
        sm_scenario_destroy(sc);
        n++;
    }
    closedir(d);
    ck_assert_int_ge(n, 14);
}
END_TEST

/* When agent `who` of swarm 0 completed the last task it started in
 * [from, to) in the scenario's stream (-1: none): the end of the work a
 * fault over [from, to) slowed. */
static int64_t last_started_in(const sm_scenario *sc, const char *who,
                               int64_t from, int64_t to)
{
    sm_sim *sim = NULL;
    ck_assert_int_eq(sm_sim_create_scenario(&sim, sc), SM_OK);
    sm_sim_msg m;
    int64_t last = -1;
    while (sm_sim_next(sim, &m)) {
        if (m.kind != SM_SIM_TASK || m.swarm != 0)
            continue;
        Swarmmedic__V1__TaskEvent *p =
            swarmmedic__v1__task_event__unpack(NULL, m.len, m.payload);
        REQUIRE(p != NULL);
        int64_t start = p->ts_ms - (int64_t)p->duration_ms;
        if (p->kind == SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_COMPLETED &&
            strcmp(p->agent, who) == 0 && start >= from && start < to &&
            p->ts_ms > last)
            last = p->ts_ms;
        swarmmedic__v1__task_event__free_unpacked(p, NULL);
    }
    sm_sim_destroy(sim);
    return last;
}

#define ONE_SWARM "\"seed\": 3, \"duration_s\": 900, " \
    "\"swarms\": [{\"id\": \"s0\", \"agents\": 30}]"

/* The derivation rules, one per case the header documents. */
START_TEST(scenario_label_rules)
{
    sm_scenario *sc = scenario_text("{\"name\": \"x\", " ONE_SWARM ", "
        "\"faults\": ["
        "{\"type\": \"slow_agent\", \"swarm\": \"s0\", \"agents\": [\"a3\"],"
        " \"onset_s\": 100, \"end_s\": 700, \"factor\": 3.5},"
        "{\"type\": \"slow_agent\", \"swarm\": \"s0\", \"agents\": [\"a4\"],"
        " \"onset_s\": 100, \"end_s\": 700, \"factor\": 1.7},"
        "{\"type\": \"slow_agent\", \"swarm\": \"s0\", \"agents\": [\"a5\"],"
        " \"onset_s\": 100, \"end_s\": 700, \"factor\": 2.1},"
        "{\"type\": \"failing_agent\", \"swarm\": \"s0\", \"agents\": [\"a6\"],"
        " \"onset_s\": 100, \"end_s\": 700, \"rate\": 0.2},"
        "{\"type\": \"consensus_degradation\", \"swarm\": \"s0\","
        " \"groups\": [\"g1\"], \"onset_s\": 100, \"ramp_s\": 60,"
        " \"end_s\": 700, \"rate\": 0.4},"
        "{\"type\": \"crash_restart\", \"swarm\": \"s0\", \"agents\": [\"a7\"],"
        " \"onset_s\": 200, \"end_s\": 400}],"
        "\"labels\": {\"never\": [{\"type\": \"queue_backlog\","
        " \"swarm\": \"s0\", \"from_s\": 10, \"to_s\": 20}]}}");
    int64_t t0 = sm_scenario_world(sc)->start_ms;
    const sm_label *l = find_label(sc, SM_LABEL_MUST, SM_KIND_BOTTLENECK,
                                   "slow_agent", "a3");
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->from_ms, t0 + 100000);
    /* it ends with the work the fault slowed: a3's task in flight at 700 s
     * began at 3.5x and ends later; resolved within 3 minutes of that */
    int64_t slowed = last_started_in(sc, "a3", t0 + 100000, t0 + 700000);
    ck_assert_int_gt(slowed, t0 + 700000);
    ck_assert_int_eq(l->to_ms, slowed);
    ck_assert_int_eq(l->resolve_within_ms, 180000);
    ck_assert_int_eq(l->severity, 3);
    ck_assert_int_gt(l->raise_within_ms, 120000);
    ck_assert_str_eq(l->note, "derived from fault 1 (slow_agent)");
    ck_assert_ptr_nonnull(find_label(sc, SM_LABEL_NEVER, SM_KIND_BOTTLENECK,
                                     "slow_agent", "a4"));
    ck_assert_ptr_null(find_label(sc, SM_LABEL_MUST, SM_KIND_BOTTLENECK,
                                  "slow_agent", "a5"));
    ck_assert_ptr_nonnull(find_label(sc, SM_LABEL_MAY, SM_KIND_BOTTLENECK,
                                     "slow_agent", "a5"));
    ck_assert_ptr_nonnull(find_label(sc, SM_LABEL_NEVER, SM_KIND_BOTTLENECK,
                                     "slow_agent", "a6"));
    l = find_label(sc, SM_LABEL_MUST, SM_KIND_BOTTLENECK, "consensus_timeout", "g1");
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->from_ms, t0 + 160000);
    ck_assert_int_eq(l->severity, 3);
    ck_assert_ptr_null(find_label(sc, SM_LABEL_MUST, SM_KIND_BOTTLENECK,
                                  "consensus_timeout", "g0"));
    ck_assert_ptr_nonnull(find_label(sc, SM_LABEL_MUST, SM_KIND_FAILURE,
                                     "agent_down", "a7"));
    l = find_label(sc, SM_LABEL_NEVER, SM_KIND_BOTTLENECK, "queue_backlog", "");
    ck_assert_ptr_nonnull(l);
    ck_assert_str_eq(l->note, "");       /* written by hand */
    ck_assert_int_eq(l->from_ms, t0 + 10000);
    sm_scenario_destroy(sc);

    /* Gauges: a burn that crosses must, one that stops short never. */
    sc = scenario_text("{\"name\": \"y\", " ONE_SWARM ", \"faults\": ["
        "{\"type\": \"token_burn\", \"swarm\": \"s0\", \"onset_s\": 100,"
        " \"end_s\": 500, \"factor\": 15}]}");
    l = find_label(sc, SM_LABEL_MUST, SM_KIND_BOTTLENECK, "token_exhaustion",
                   "scheduler");
    ck_assert_ptr_nonnull(l);
    ck_assert_int_gt(l->from_ms, t0 + 100000);
    ck_assert_int_lt(l->from_ms, t0 + 500000);
    ck_assert_int_eq(l->severity, 4);
    sm_scenario_destroy(sc);
    sc = scenario_text("{\"name\": \"z\", " ONE_SWARM ", \"faults\": ["
        "{\"type\": \"token_burn\", \"swarm\": \"s0\", \"onset_s\": 100,"
        " \"end_s\": 500, \"factor\": 15, \"stop_at\": 0.65}],"
        " \"derive_labels\": true}");
    ck_assert_ptr_nonnull(find_label(sc, SM_LABEL_NEVER, SM_KIND_BOTTLENECK,
                                     "token_exhaustion", "scheduler"));
    ck_assert_ptr_null(find_label(sc, SM_LABEL_MUST, SM_KIND_BOTTLENECK,
                                  "token_exhaustion", "scheduler"));
    sm_scenario_destroy(sc);
}
END_TEST

/* Bad scenarios are refused with a sentence naming the problem. */
START_TEST(scenario_errors)
{
    static const struct { const char *json, *says; } bad[] = {
        {"{\"name\": \"x\", " ONE_SWARM ", \"fautls\": []}", "fautls"},
        {"{\"name\": \"x\", " ONE_SWARM ", \"faults\": [{\"type\": \"slow\","
         " \"swarm\": \"s0\"}]}", "type"},
        {"{\"name\": \"x\", " ONE_SWARM ", \"faults\": [{\"type\":"
         " \"slow_agent\", \"swarm\": \"s0\", \"agents\": [\"a99\"],"
         " \"factor\": 3}]}", "a99"},
        {"{\"name\": \"x\", " ONE_SWARM ", \"faults\": [{\"type\":"
         " \"slow_agent\", \"swarm\": \"s9\", \"agents\": [\"a1\"]}]}",
         "swarm"},
        {"{\"name\": \"x\", \"duration_s\": 60, \"swarms\": [{\"id\":"
         " \"s0\", \"agnets\": 3}]}", "agnets"},
        {"{\"name\": \"x\", " ONE_SWARM ", \"labels\": {\"must\": [{\"type\":"
         " \"slow_agent\", \"swarm\": \"s7\", \"from_s\": 1, \"to_s\": 2}]}}",
         "s7"},
        {"{\"name\": \"x\", " ONE_SWARM ", \"floor\": {\"recal\": 1}}",
         "recal"},
        {"{\"name\": \"x\", " ONE_SWARM ", \"labels\": {\"must\": [{\"type\":"
         " \"slow_agent\", \"swarm\": \"s0\", \"severity\": \"huge\"}]}}",
         "severity"},
        {"{\"name\": \"x\", " ONE_SWARM, "line"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sm_scenario *sc = NULL;
        char err[512] = "";
        sm_status rc = sm_scenario_parse(bad[i].json, strlen(bad[i].json),
                                         &sc, err, sizeof err);
        ck_assert_msg(rc == SM_ERR_CONFIG, "case %zu accepted", i);
        ck_assert_ptr_null(sc);
        ck_assert_msg(strstr(err, bad[i].says) != NULL, "case %zu: %s", i,
                      err);
    }
    sm_scenario *sc = NULL;
    char err[256];
    ck_assert_int_eq(sm_scenario_load("/nonexistent.json", &sc, err,
                                      sizeof err), SM_ERR_IO);
}
END_TEST

/* The labels file a scenario writes (--labels-out) is score's labels file:
 * sm_labels_load_file reads the same labels back, and the floor with them;
 * hand-written relative times come out absolute. */
START_TEST(labels_file)
{
    sm_scenario *sc = scenario_text("{\"name\": \"x\", " ONE_SWARM ", "
        "\"faults\": [{\"type\": \"slow_agent\", \"swarm\": \"s0\","
        " \"agents\": [\"a3\"], \"onset_s\": 100, \"end_s\": 700,"
        " \"factor\": 3.5}],"
        "\"labels\": {\"never\": [{\"type\": \"queue_backlog\","
        " \"swarm\": \"s0\", \"from_s\": 10, \"to_s\": 20,"
        " \"note\": \"by hand\"}, {\"type\": \"quota_exceeded\","
        " \"swarm\": \"s0\"}]},"
        "\"floor\": {\"recall\": 1, \"precision\": 0.97, \"flaps\": 0}}");
    char path[] = "/tmp/sm_labels_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    char err[512] = "";
    ck_assert_msg(sm_scenario_write_labels(sc, path, err, sizeof err) == SM_OK,
                  "%s", err);
    sm_labels got = {0};
    ck_assert_msg(sm_labels_load_file(path, &got, err, sizeof err) == SM_OK,
                  "%s", err);
    sm_score_floors fl;
    sm_score_floors_init(&fl);
    ck_assert_int_eq(sm_score_floors_load_file(&fl, path, err, sizeof err),
                     SM_OK);
    unlink(path);
    const sm_labels *want = sm_scenario_labels(sc);
    ck_assert_uint_eq(got.n, want->n);
    /* The file groups labels by class, each class in the scenario's order. */
    size_t order[64], k = 0;
    ck_assert_uint_le(want->n, 64);
    for (int c = SM_LABEL_MUST; c <= SM_LABEL_NEVER; c++)
        for (size_t i = 0; i < want->n; i++)
            if ((int)want->v[i].cls == c)
                order[k++] = i;
    size_t hand = 0;
    for (size_t i = 0; i < got.n; i++) {
        const sm_label *a = &got.v[i], *b = &want->v[order[i]];
        if (order[i] == 0)
            hand = i;
        ck_assert_int_eq(a->cls, b->cls);
        ck_assert_int_eq(a->kind, b->kind);
        ck_assert_str_eq(a->type, b->type);
        ck_assert_str_eq(a->swarm, b->swarm);
        ck_assert_str_eq(a->subject, b->subject);
        ck_assert(!a->relative);
        ck_assert_int_eq(a->from_ms, b->from_ms);
        ck_assert_int_eq(a->to_ms, b->to_ms);
        ck_assert_int_eq(a->severity, b->severity);
        ck_assert_int_eq(a->raise_within_ms, b->raise_within_ms);
        ck_assert_int_eq(a->resolve_within_ms, b->resolve_within_ms);
        ck_assert_str_eq(a->note, b->note);
    }
    int64_t t0 = sm_scenario_world(sc)->start_ms;
    ck_assert_int_eq(got.v[hand].from_ms, t0 + 10000);
    ck_assert_str_eq(got.v[hand].note, "by hand");
    ck_assert_int_eq(got.v[hand + 1].from_ms, t0);
    ck_assert_int_eq(got.v[hand + 1].to_ms, t0 + 900000);
    ck_assert(fl.recall == 1.0 && fl.precision == 0.97 && fl.flaps == 0);
    ck_assert(isnan(fl.forbidden));
    sm_labels_free(&got);
    sm_scenario_destroy(sc);
}
END_TEST

/* ------------------------------------------------------------ event queue */

typedef struct qev {
    int64_t ts;
    uint64_t seq;
    uint32_t id;        /* push order, to check ties */
} qev;

/* Out-of-order times come out sorted; each pop returns the whole element. */
START_TEST(evq_order)
{
    static const int64_t ts[] = {50, 10, 40, 10, 30, 0, 20, 40, 5, 60, 15};
    size_t n = sizeof ts / sizeof ts[0];
    sm_evq q;
    ck_assert_int_eq(sm_evq_init(&q, sizeof(qev), 64), SM_OK);
    for (size_t i = 0; i < n; i++) {
        qev e = {.ts = ts[i], .seq = 999, .id = (uint32_t)i};
        ck_assert_int_eq(sm_evq_push(&q, &e), SM_OK);
    }
    ck_assert_uint_eq(sm_evq_len(&q), n);
    sm_evq_key k;
    ck_assert(sm_evq_peek(&q, &k));
    ck_assert_int_eq(k.ts, 0);
    ck_assert_uint_eq(k.seq, 5);        /* the queue's counter, not the 999 */
    int64_t prev = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        qev e;
        ck_assert(sm_evq_pop(&q, &e));
        ck_assert_int_ge(e.ts, prev);
        ck_assert_int_eq(e.ts, ts[e.id]);
        ck_assert_uint_eq(e.seq, e.id);
        prev = e.ts;
    }
    qev e = {.id = 77};
    ck_assert(!sm_evq_pop(&q, &e));
    ck_assert_uint_eq(e.id, 77);
    ck_assert(!sm_evq_peek(&q, &k));
    sm_evq_free(&q);
    sm_evq_free(&q);
    sm_evq_free(NULL);
}
END_TEST

/* Equal times come out in push order, even when pushed between pops. */
START_TEST(evq_ties_by_seq)
{
    sm_evq q;
    ck_assert_int_eq(sm_evq_init(&q, sizeof(qev), 4), SM_OK);
    uint32_t id = 0;
    for (int i = 0; i < 20; i++) {
        qev e = {.ts = (i % 2) ? 7 : 3, .id = id++};
        ck_assert_int_eq(sm_evq_push(&q, &e), SM_OK);
    }
    qev e;
    ck_assert(sm_evq_pop(&q, &e));
    ck_assert_int_eq(e.ts, 3);
    ck_assert_uint_eq(e.id, 0);
    qev late = {.ts = 3, .id = id++};   /* ties with the threes, pushed last */
    ck_assert_int_eq(sm_evq_push(&q, &late), SM_OK);
    uint32_t last3 = 0, last7 = 0;
    size_t threes = 1, sevens = 0;
    while (sm_evq_pop(&q, &e)) {
        if (e.ts == 3) {
            ck_assert_int_eq(sevens, 0);
            ck_assert_uint_gt(e.id, last3);
            last3 = e.id;
            threes++;
        } else {
            ck_assert_int_eq(e.ts, 7);
            ck_assert(sevens == 0 || e.id > last7);
            last7 = e.id;
            sevens++;
        }
    }
    ck_assert_uint_eq(last3, late.id);
    ck_assert_uint_eq(threes, 11);
    ck_assert_uint_eq(sevens, 10);
    sm_evq_free(&q);
}
END_TEST

/* From room for one, the queue grows as pushed and keeps its order. */
START_TEST(evq_growth)
{
    sm_evq q;
    ck_assert_int_eq(sm_evq_init(&q, sizeof(qev), 0), SM_OK);
    enum { N = 5000 };
    uint64_t x = 12345;
    for (uint32_t i = 0; i < N; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        qev e = {.ts = (int64_t)(x >> 54), .id = i};     /* 0..1023 */
        REQUIRE(sm_evq_push(&q, &e) == SM_OK);
    }
    ck_assert_uint_eq(sm_evq_len(&q), N);
    qev prev = {.ts = -1}, e;
    size_t got = 0;
    while (sm_evq_pop(&q, &e)) {
        REQUIRE(e.ts > prev.ts || (e.ts == prev.ts && e.id > prev.id));
        prev = e;
        got++;
    }
    ck_assert_uint_eq(got, N);
    sm_evq_free(&q);
    sm_evq bad;
    ck_assert_int_eq(sm_evq_init(&bad, 8, 4), SM_ERR_INVALID);
    ck_assert_int_eq(sm_evq_push(&bad, &e), SM_ERR_INVALID);
    sm_evq_free(&bad);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("simgen");
    TCase *gen = tcase_create("generator");
    tcase_add_test(gen, evq_order);
    tcase_add_test(gen, evq_ties_by_seq);
    tcase_add_test(gen, evq_growth);
    tcase_add_test(gen, deterministic);
    tcase_add_test(gen, wire_valid);
    tcase_add_test(gen, rate_honoured);
    tcase_add_test(gen, times_parse);
    tcase_add_test(gen, faults_parse);
    tcase_add_test(gen, demo_scenario);
    tcase_set_timeout(gen, 120);
    suite_add_tcase(s, gen);

    TCase *world = tcase_create("world");
    tcase_add_test(world, world_deterministic);
    tcase_add_test(world, world_math);
    tcase_add_test(world, world_realistic_steady);
    tcase_add_test(world, world_surge_and_autoscaler);
    tcase_add_test(world, world_faults_show);
    tcase_add_test(world, world_slow_agent);
    tcase_add_test(world, scenarios_load);
    tcase_add_test(world, scenario_label_rules);
    tcase_add_test(world, scenario_errors);
    tcase_add_test(world, labels_file);
    tcase_set_timeout(world, 120);
    suite_add_tcase(s, world);

    TCase *det = tcase_create("detector");
    tcase_add_test(det, baseline_raises_nothing);
    tcase_add_test(det, fault_token);
    tcase_add_test(det, fault_quota);
    tcase_add_test(det, fault_slow);
    tcase_add_test(det, fault_queue);
    tcase_add_test(det, fault_consensus);
    tcase_add_test(det, demo_raises_and_resolves_all);
    tcase_set_timeout(det, 300);
    suite_add_tcase(s, det);

    TCase *prog = tcase_create("program");
    tcase_add_test(prog, program_flags);
    tcase_add_test(prog, program_connect_failure);
    tcase_add_test(prog, program_publishes);
    tcase_set_timeout(prog, 120);
    suite_add_tcase(s, prog);
    return s;
}

int main(void)
{
    return sm_run_suite(suite());
}
