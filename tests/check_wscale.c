/*
 * check_wscale.c - the simulated coordinator's scaling (worker/sim/world.h,
 * sm_world_scale): UP registers dynamic agents up to the target within the
 * quota, after the coordinator's delay; DOWN unregisters only the named
 * idle dynamic agents; duplicates, holds and unknown swarms are counted;
 * the world's own autoscaler can be switched off. Then the loop's scaling
 * figures (worker/tools/score.h): flaps on a hand-made sequence, and the
 * scaling-surge scenario on its fixed seed.
 */
#include <check.h>
#include <math.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "runner.h"
#include "scenario.h"
#include "score.h"
#include "simgen.h"
#include "support.h"
#include "swarm_medic.pb-c.h"
#include "world.h"

#define T0 SM_SIM_DEFAULT_START_MS
#define AT(s) (T0 + (int64_t)((s) * 1000))
#define UP SWARMMEDIC__V1__SCALING_DECISION__DIRECTION__DIRECTION_UP
#define DOWN SWARMMEDIC__V1__SCALING_DECISION__DIRECTION__DIRECTION_DOWN
#define HOLD SWARMMEDIC__V1__SCALING_DECISION__DIRECTION__DIRECTION_HOLD

/* One swarm of 12 static agents, 8 dynamic slots, quota 18, no bursts,
 * the world's autoscaler off, 10 minutes. */
static void base(sm_world_config *c)
{
    sm_world_config_default(c);
    c->seed = 11;
    c->duration_ms = 600000;
    c->swarms[0].agents = 12;
    c->swarms[0].max_dynamic = 8;
    c->swarms[0].quota = 18;
    c->swarms[0].burst_every_s = 0;
    c->swarms[0].autoscale_off = 1;
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

static sm_wscale decision(const char *id, int dir, uint32_t current,
                          uint32_t target)
{
    sm_wscale d;
    memset(&d, 0, sizeof d);
    snprintf(d.id, sizeof d.id, "%s", id);
    snprintf(d.swarm, sizeof d.swarm, "s0");
    d.dir = dir;
    d.current = current;
    d.target = target;
    return d;
}

static void name(sm_wscale *d, const char *agent)
{
    snprintf(d->remove[d->n_remove++], SM_WORLD_ID, "%s", agent);
}

/* Lifecycles seen: per agent index (a<i>), registered and unregistered
 * counts and the first time of each. */
typedef struct life {
    int reg[32], unreg[32];
    int64_t first_reg, first_unreg;
    int dynamic_reg;
} life;

static void see(life *l, const sm_sim_msg *m)
{
    if (m->kind != SM_SIM_AGENT)
        return;
    Swarmmedic__V1__AgentLifecycle *a =
        swarmmedic__v1__agent_lifecycle__unpack(NULL, m->len, m->payload);
    ck_assert_ptr_nonnull(a);
    int i = atoi(a->agent + 1);
    ck_assert(i >= 0 && i < 32);
    if (a->kind == SWARMMEDIC__V1__AGENT_LIFECYCLE__KIND__KIND_REGISTERED) {
        l->reg[i]++;
        l->dynamic_reg += a->dynamic;
        if (!l->first_reg)
            l->first_reg = m->ts_ms;
    } else {
        l->unreg[i]++;
        if (!l->first_unreg)
            l->first_unreg = m->ts_ms;
    }
    swarmmedic__v1__agent_lifecycle__free_unpacked(a, NULL);
}

/* Plays w up to the first message at or after t; lifecycles into l. */
static void play_to(sm_world *w, int64_t t, life *l)
{
    sm_sim_msg m;
    while (sm_world_next(w, &m)) {
        if (l)
            see(l, &m);
        if (m.ts_ms >= t)
            return;
    }
    ck_assert_int_eq(sm_world_status(w), SM_OK);
}

/* UP: dynamic agents register, after the delay, up to the target; a
 * second UP past the quota stops at the quota. */
START_TEST(up_registers_dynamic_agents_to_the_target)
{
    sm_world_config c;
    base(&c);
    sm_world *w = make(&c);
    play_to(w, AT(60), NULL);
    sm_world_gauges g;
    sm_world_gauges_of(w, 0, &g);
    ck_assert_uint_eq(g.active, 12);
    sm_wscale d = decision("up-1", UP, 12, 15);
    ck_assert_int_eq(sm_world_scale(w, &d), SM_OK);
    life l;
    memset(&l, 0, sizeof l);
    play_to(w, AT(70), &l);
    ck_assert_int_eq(l.dynamic_reg, 3);
    /* not before the coordinator's delay (2 s +- 1 s) */
    ck_assert_int_ge(l.first_reg, AT(60) + 1000);
    ck_assert_int_le(l.first_reg, AT(60) + 3100);
    for (int a = 12; a < 15; a++)
        ck_assert_int_eq(l.reg[a], 1);
    play_to(w, AT(75), NULL);
    sm_world_gauges_of(w, 0, &g);
    ck_assert_uint_eq(g.active, 15);
    /* past the quota (18): three more, not ten */
    d = decision("up-2", UP, 15, 25);
    ck_assert_int_eq(sm_world_scale(w, &d), SM_OK);
    play_to(w, AT(90), NULL);
    sm_world_gauges_of(w, 0, &g);
    ck_assert_uint_eq(g.active, 18);
    /* an UP to what is there already adds none */
    d = decision("up-3", UP, 18, 16);
    ck_assert_int_eq(sm_world_scale(w, &d), SM_OK);
    play_to(w, AT(100), NULL);
    sm_world_scale_stats st;
    sm_world_scale_stats_of(w, &st);
    ck_assert_uint_eq(st.received, 3);
    ck_assert_uint_eq(st.up, 3);
    ck_assert_uint_eq(st.added, 6);
    ck_assert_uint_eq(st.down, 0);
    sm_world_destroy(w);
}
END_TEST

/* DOWN: only the named dynamic agents that are idle unregister; a static
 * agent, an unknown one and a dynamic one not registered are refused. */
START_TEST(down_removes_only_named_idle_dynamic_agents)
{
    sm_world_config c;
    base(&c);
    c.swarms[0].utilisation = 0.05;     /* agents mostly idle */
    sm_world *w = make(&c);
    play_to(w, AT(30), NULL);
    sm_wscale d = decision("up", UP, 12, 16);
    ck_assert_int_eq(sm_world_scale(w, &d), SM_OK);
    play_to(w, AT(60), NULL);
    d = decision("down", DOWN, 16, 13);
    name(&d, "a12");
    name(&d, "a13");
    name(&d, "a14");
    name(&d, "a0");         /* static */
    name(&d, "a99");        /* no such agent */
    name(&d, "a17");        /* dynamic, never registered */
    ck_assert_int_eq(sm_world_scale(w, &d), SM_OK);
    life l;
    memset(&l, 0, sizeof l);
    play_to(w, INT64_MAX, &l);
    sm_world_scale_stats st;
    sm_world_scale_stats_of(w, &st);
    ck_assert_uint_eq(st.down, 1);
    ck_assert_uint_eq(st.removed + st.refused, 6);
    ck_assert_uint_ge(st.refused, 3);
    ck_assert_uint_ge(st.removed, 2);   /* at 5% utilisation */
    int gone = 0;
    for (int a = 12; a <= 14; a++)
        gone += l.unreg[a];
    ck_assert_int_eq(gone, (int)st.removed);
    ck_assert_int_eq(l.unreg[0], 0);
    ck_assert_int_eq(l.unreg[15], 0);   /* dynamic, not named */
    ck_assert_int_ge(l.first_unreg, AT(60) + 1000);
    sm_world_gauges g;
    sm_world_gauges_of(w, 0, &g);
    ck_assert_uint_eq(g.active, 16 - st.removed);
    sm_world_destroy(w);
}
END_TEST

/* A repeated id, a HOLD and another swarm are counted, not applied. */
START_TEST(duplicates_holds_and_strangers_counted)
{
    sm_world_config c;
    base(&c);
    sm_world *w = make(&c);
    play_to(w, AT(30), NULL);
    sm_wscale d = decision("once", UP, 12, 14);
    ck_assert_int_eq(sm_world_scale(w, &d), SM_OK);
    d.target = 18;
    ck_assert_int_eq(sm_world_scale(w, &d), SM_OK);
    d = decision("hold", HOLD, 12, 12);
    ck_assert_int_eq(sm_world_scale(w, &d), SM_OK);
    d = decision("other", UP, 12, 18);
    snprintf(d.swarm, sizeof d.swarm, "s7");
    ck_assert_int_eq(sm_world_scale(w, &d), SM_OK);
    ck_assert_int_eq(sm_world_scale(w, NULL), SM_ERR_INVALID);
    play_to(w, AT(60), NULL);
    sm_world_scale_stats st;
    sm_world_scale_stats_of(w, &st);
    ck_assert_uint_eq(st.received, 4);
    ck_assert_uint_eq(st.duplicates, 1);
    ck_assert_uint_eq(st.holds, 1);
    ck_assert_uint_eq(st.unknown_swarm, 1);
    ck_assert_uint_eq(st.added, 2);
    sm_world_gauges g;
    sm_world_gauges_of(w, 0, &g);
    ck_assert_uint_eq(g.active, 14);
    sm_world_destroy(w);
}
END_TEST

/* autoscale_off: a queue over 30 gets no dynamic agent from the world;
 * with the autoscaler on it does. */
START_TEST(autoscaler_switch)
{
    for (int off = 0; off <= 1; off++) {
        sm_world_config c;
        base(&c);
        c.swarms[0].autoscale_off = (uint32_t)off;
        c.swarms[0].utilisation = 1.6;          /* the queue grows */
        sm_world *w = make(&c);
        life l;
        memset(&l, 0, sizeof l);
        play_to(w, INT64_MAX, &l);
        sm_world_load ld;
        sm_world_load_of(w, 0, &ld);
        ck_assert_uint_gt(ld.queue_max, 30);
        if (off)
            ck_assert_int_eq(l.dynamic_reg, 0);
        else
            ck_assert_int_gt(l.dynamic_reg, 0);
        sm_world_destroy(w);
    }
}
END_TEST

/* The load figures: a saturated swarm is busy near 100% with a long
 * queue; an idle one is not; p95 within max, shares within 0..1. */
START_TEST(load_figures)
{
    double util[2];
    for (int busy = 0; busy <= 1; busy++) {
        sm_world_config c;
        base(&c);
        c.swarms[0].utilisation = busy ? 1.6 : 0.1;
        sm_world *w = make(&c);
        sm_world_load ld;
        sm_world_load_of(w, 0, &ld);
        ck_assert_uint_eq(ld.samples, 0);
        ck_assert(isnan(ld.agent_util));
        play_to(w, INT64_MAX, NULL);
        sm_world_load_of(w, 0, &ld);
        ck_assert_uint_ge(ld.samples, 590);
        ck_assert(ld.seconds > 590 && ld.seconds <= 600);
        ck_assert_uint_le(ld.queue_p95, ld.queue_max);
        ck_assert(ld.queue_under >= 0 && ld.queue_under <= 1);
        ck_assert_uint_eq(ld.agents_min, 12);
        ck_assert_uint_eq(ld.agents_max, 12);
        ck_assert(ld.token_util > 0 && ld.token_util < 1);
        util[busy] = ld.agent_util;
        if (busy) {
            ck_assert(ld.queue_under < 0.5);
            ck_assert(ld.queue_mean > 30);
        } else {
            ck_assert(ld.queue_under > 0.99);
        }
        sm_world_destroy(w);
    }
    ck_assert(util[0] < 0.3);
    ck_assert(util[1] > 0.95);
}
END_TEST

/* The ScalingDecision as the coordinator reads it, from the wire. */
START_TEST(decode_decision)
{
    Swarmmedic__V1__Decision h = SWARMMEDIC__V1__DECISION__INIT;
    h.decision_id = "dec-1";
    h.swarm = "s0";
    h.decided_at_ms = AT(5);
    Swarmmedic__V1__ScalingDecision m = SWARMMEDIC__V1__SCALING_DECISION__INIT;
    char *names[] = {"a12", "a13"};
    m.decision = &h;
    m.direction = DOWN;
    m.current_agents = 14;
    m.target_agents = 12;
    m.n_remove_agents = 2;
    m.remove_agents = names;
    uint8_t buf[256];
    size_t n = swarmmedic__v1__scaling_decision__pack(&m, buf);
    sm_wscale d;
    ck_assert_int_eq(sm_wscale_decode(buf, n, &d), SM_OK);
    ck_assert_str_eq(d.id, "dec-1");
    ck_assert_str_eq(d.swarm, "s0");
    ck_assert_int_eq(d.at_ms, AT(5));
    ck_assert_int_eq(d.dir, DOWN);
    ck_assert_uint_eq(d.current, 14);
    ck_assert_uint_eq(d.target, 12);
    ck_assert_uint_eq(d.n_remove, 2);
    ck_assert_str_eq(d.remove[1], "a13");
    /* the scorer reads the same bytes */
    sm_score_scale_event e;
    bool is;
    ck_assert_int_eq(sm_score_decode_scale("medic.s0.scale", buf, n, &e, &is),
                     SM_OK);
    ck_assert(is);
    ck_assert_int_eq(e.dir, DOWN);
    ck_assert_uint_eq(e.remove, 2);
    ck_assert_int_eq(sm_score_decode_scale("medic.s0.heal.restart", buf, n,
                                           &e, &is), SM_OK);
    ck_assert(!is);
    /* no decision header, garbage */
    m.decision = NULL;
    n = swarmmedic__v1__scaling_decision__pack(&m, buf);
    ck_assert_int_eq(sm_wscale_decode(buf, n, &d), SM_ERR_DECODE);
    ck_assert_int_eq(sm_wscale_decode("\xff\xff\xff", 3, &d), SM_ERR_DECODE);
    ck_assert_int_eq(sm_score_decode_scale("medic.s0.scale", "\xff\xff\xff", 3,
                                           &e, &is), SM_ERR_DECODE);
}
END_TEST

static sm_score_scale_event ev(const char *swarm, double at_s, int dir)
{
    sm_score_scale_event e;
    memset(&e, 0, sizeof e);
    snprintf(e.swarm, sizeof e.swarm, "%s", swarm);
    e.at_ms = AT(at_s);
    e.dir = dir;
    return e;
}

/* Flaps: a reversal of the same swarm's previous direction within the
 * window; the same direction, a reversal later than the window, another
 * swarm's decision in between are not. */
START_TEST(flaps_on_a_hand_made_sequence)
{
    sm_score_scale_event e[] = {
        ev("s0", 0, UP),
        ev("s0", 20, UP),       /* same direction */
        ev("s1", 30, DOWN),     /* another swarm's first */
        ev("s0", 70, DOWN),     /* 50 s after an UP: flap 1 */
        ev("s0", 200, UP),      /* 130 s after: not */
        ev("s1", 210, UP),      /* 180 s after s1's DOWN: not */
        ev("s0", 279, DOWN),    /* 79 s: flap 2 */
        ev("s0", 359, UP),      /* exactly 80 s: not */
        ev("s1", 230, DOWN),    /* 20 s after s1's UP: flap 3 */
    };
    size_t n = sizeof e / sizeof e[0];
    ck_assert_uint_eq(sm_score_scale_flaps(e, n, 80000), 3);
    ck_assert_uint_eq(sm_score_scale_flaps(e, n, 10000), 0);
    ck_assert_uint_eq(sm_score_scale_flaps(e, n, 1000000), 6);
    ck_assert_uint_eq(sm_score_scale_flaps(e, 0, 80000), 0);
}
END_TEST

/* The scaling-surge scenario on its seed: the worker scales the swarm up
 * for the surge and back down after, without a flap; every decision is
 * applied; the figures are consistent. */
START_TEST(surge_scenario_figures)
{
    sm_scenario *sc = NULL;
    char err[512] = "";
    ck_assert_msg(sm_scenario_load("tests/scenarios/scaling-surge.json", &sc,
                                   err, sizeof err) == SM_OK, "%s", err);
    sm_config cfg;
    ck_assert_int_eq(sm_config_init(&cfg), SM_OK);
    ck_assert_uint_ge(sm_scenario_n_settings(sc), 1);
    ck_assert_ptr_null(sm_scenario_setting(sc, 99, NULL));
    for (size_t i = 0; i < sm_scenario_n_settings(sc); i++) {
        const char *v, *k = sm_scenario_setting(sc, i, &v);
        ck_assert_int_eq(sm_config_set(&cfg, k, v, "test", err, sizeof err),
                         SM_OK);
    }
    ck_assert(cfg.scaling);
    sm_sim *sim = NULL;
    sm_score_input in;
    ck_assert_int_eq(sm_scenario_loop_input(sc, NULL, &sim, &in), SM_OK);
    sm_log log = {.out = stderr, .level = SM_LOG_ERROR};
    sm_score_report rep;
    ck_assert_msg(sm_score_run(&cfg, &log, &in, &rep, err, sizeof err) == SM_OK,
                  "%s", err);
    const sm_score_scaling *s = &rep.scale;
    const sm_score_load *l = &s->load;
    printf("scaling-surge: %zu decisions (%zu up, %zu down), %zu flaps; queue "
           "mean %.1f p95 %u max %u under30 %.3f; agents %u..%u util %.3f; "
           "tokens %.3f\n", s->decisions, s->up, s->down, s->flaps,
           l->queue_mean, l->queue_p95, l->queue_max, l->queue_under,
           l->agents_min, l->agents_max, l->agent_util, l->token_util);
    ck_assert(s->on && s->load_on);
    ck_assert_int_eq(s->window_ms, 80000);
    ck_assert_uint_eq(s->decisions, s->up + s->down);
    ck_assert_uint_gt(s->up, 0);
    ck_assert_uint_gt(s->down, 0);
    ck_assert_uint_eq(s->flaps, 0);
    ck_assert_uint_eq(s->hook_errors, 0);
    ck_assert_uint_eq(l->applied_up, s->up);
    ck_assert_uint_eq(l->applied_down, s->down);
    ck_assert_uint_eq(l->agents_min, 20);
    ck_assert_uint_ge(l->agents_max, 30);        /* scaled for the surge */
    ck_assert_uint_gt(l->removed, 0);            /* and back down */
    ck_assert_uint_le(l->removed, l->added);
    ck_assert_uint_le(l->queue_p95, l->queue_max);
    ck_assert(l->queue_under > 0.5 && l->queue_under <= 1);
    ck_assert(l->agent_util > 0.5 && l->agent_util < 1);
    sm_score_report_free(&rep);
    sm_sim_destroy(sim);
    sm_scenario_destroy(sc);
    sm_config_free(&cfg);
}
END_TEST

/* ---- swarm-sim --coordinator on a real bus -------------------------------- */

static natsMsg *next_on(natsSubscription *sub, int timeout_ms)
{
    natsMsg *m = NULL;
    return natsSubscription_NextMsg(&m, sub, timeout_ms) == NATS_OK ? m : NULL;
}

static void publish_decision(natsConnection *nc, const char *id, int dir,
                             uint32_t target, char **remove, size_t n_remove)
{
    Swarmmedic__V1__Decision h = SWARMMEDIC__V1__DECISION__INIT;
    h.decision_id = (char *)id;
    h.swarm = "s0";
    Swarmmedic__V1__ScalingDecision m = SWARMMEDIC__V1__SCALING_DECISION__INIT;
    m.decision = &h;
    m.direction = (Swarmmedic__V1__ScalingDecision__Direction)dir;
    m.current_agents = 12;
    m.target_agents = target;
    m.remove_agents = remove;
    m.n_remove_agents = n_remove;
    uint8_t buf[256];
    size_t n = swarmmedic__v1__scaling_decision__pack(&m, buf);
    ck_assert_int_eq(natsConnection_Publish(nc, "medic.s0.scale", buf, (int)n),
                     NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(nc, 2000), NATS_OK);
}

/* Lifecycles on the bus until `want` of kind `reg` (dynamic ones for
 * REGISTERED) came, or none for wait_ms: how many; *a12 counts a12's among
 * them, *a0 every UNREGISTERED of a0. */
static int lifecycles(natsSubscription *sub, bool reg, int want, int wait_ms,
                      int *a12, int *a0)
{
    int got = 0;
    for (natsMsg *m; got < want && (m = next_on(sub, wait_ms)) != NULL;
         natsMsg_Destroy(m)) {
        Swarmmedic__V1__AgentLifecycle *l =
            swarmmedic__v1__agent_lifecycle__unpack(
                NULL, (size_t)natsMsg_GetDataLength(m),
                (const uint8_t *)natsMsg_GetData(m));
        ck_assert_ptr_nonnull(l);
        bool r = l->kind ==
                 SWARMMEDIC__V1__AGENT_LIFECYCLE__KIND__KIND_REGISTERED;
        if (r == reg && (!reg || l->dynamic)) {
            got++;
            *a12 += strcmp(l->agent, "a12") == 0;
        }
        *a0 += !r && strcmp(l->agent, "a0") == 0;
        swarmmedic__v1__agent_lifecycle__free_unpacked(l, NULL);
    }
    return got;
}

/* swarm-sim --coordinator takes ScalingDecisions from medic.*.scale: an UP
 * to 14 registers two dynamic agents; a DOWN naming a12 and the static a0
 * unregisters a12 only. */
START_TEST(coordinator_scales_on_the_bus)
{
    char dir[256], path[512], log[512], sim[512];
    sm_test_tmpdir(dir, sizeof dir, "wscale");
    snprintf(path, sizeof path, "%s/scale.json", dir);
    snprintf(log, sizeof log, "%s/sim.log", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"name\": \"scale\", \"duration_s\": 60, \"seed\": 5,"
          " \"swarms\": [{\"agents\": 12, \"max_dynamic\": 4,"
          " \"utilisation\": 0.01, \"burst_every_s\": 0,"
          " \"autoscale_off\": 1}],"
          " \"coordinator\": {\"delay_s\": 0.5, \"jitter_s\": 0.2}}", f);
    fclose(f);
    sm_test_server srv;
    sm_test_server_start(&srv, 0, NULL);
    natsConnection *nc = NULL;
    natsSubscription *agents = NULL, *res = NULL;
    ck_assert_int_eq(natsConnection_ConnectTo(&nc, srv.url), NATS_OK);
    ck_assert_int_eq(natsConnection_SubscribeSync(&agents, nc,
                                                  "swarm.s0.agent.*"), NATS_OK);
    ck_assert_int_eq(natsConnection_SubscribeSync(&res, nc,
                                                  "swarm.s0.resource.>"), NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(nc, 2000), NATS_OK);
    sm_test_bin(sim, sizeof sim, "swarm-sim");
    const char *argv[] = {sim, "--scenario", path, "--url", srv.url,
                          "--coordinator", "--pace", "10", "--quiet", NULL};
    pid_t pid = sm_test_spawn(argv, log, false);
    natsMsg *first = next_on(res, 10000);
    ck_assert_msg(first != NULL, "swarm-sim published nothing");
    natsMsg_Destroy(first);
    int a12 = 0, a0 = 0;
    publish_decision(nc, "00000000000000c1", UP, 14, NULL, 0);
    ck_assert_int_eq(lifecycles(agents, true, 2, 15000, &a12, &a0), 2);
    ck_assert_int_eq(a12, 1);
    char *names[] = {"a12", "a0"};
    a12 = 0;
    publish_decision(nc, "00000000000000c2", DOWN, 13, names, 2);
    ck_assert_int_eq(lifecycles(agents, false, 1, 15000, &a12, &a0), 1);
    ck_assert_int_eq(a12, 1);
    ck_assert_int_eq(sm_test_wait(pid, 30000), 0);
    /* to the end: a0 never unregistered, nothing else came off */
    int rest = 0;
    ck_assert_int_eq(lifecycles(agents, false, 1000, 500, &rest, &a0), 0);
    ck_assert_int_eq(a0, 0);
    natsSubscription_Destroy(agents);
    natsSubscription_Destroy(res);
    natsConnection_Destroy(nc);
    sm_test_server_stop(&srv);
    sm_test_rmtree(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("wscale");
    TCase *tc = tcase_create("coordinator");
    tcase_add_test(tc, up_registers_dynamic_agents_to_the_target);
    tcase_add_test(tc, down_removes_only_named_idle_dynamic_agents);
    tcase_add_test(tc, duplicates_holds_and_strangers_counted);
    tcase_add_test(tc, autoscaler_switch);
    tcase_add_test(tc, load_figures);
    tcase_add_test(tc, decode_decision);
    tcase_add_test(tc, flaps_on_a_hand_made_sequence);
    tcase_add_test(tc, surge_scenario_figures);
    tcase_add_test(tc, coordinator_scales_on_the_bus);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sm_run_suite(suite());
}
