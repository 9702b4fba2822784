/*
 * check_scale.c - the scaling policy on vectors (the reference's rules,
 * cooldown, token gate, quota, stabilisation) and on a simulated queue
 * with bursts, where the decisions must settle without flapping and keep
 * the queue under 30 once the agents are there.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "scale.h"
#include "runner.h"

#define T0 INT64_C(1700000000000)

static sm_scale_input sample(int64_t t, uint32_t pending, uint32_t active)
{
    return (sm_scale_input){.ts_ms = T0 + t, .pending = pending,
                            .active = active, .idle_dynamic = active};
}

START_TEST(up_by_one_agent_per_20_surplus_then_cooldown)
{
    sm_scale_config c;
    sm_scale_config_default(&c);
    sm_scale_state s;
    memset(&s, 0, sizeof s);
    sm_scale_decision d;
    sm_scale_input in = sample(0, 75, 10);
    ck_assert(sm_scale_step(&c, &s, &in, &d));
    ck_assert_int_eq(d.dir, SM_SCALE_UP);
    ck_assert_uint_eq(d.target, 13);            /* 10 + ceil(45 / 20) */
    ck_assert_int_eq(d.cooldown_until_ms, T0 + 20000);
    ck_assert_str_eq(d.reason, "queue_backlog");
    in = sample(5000, 100, 13);
    ck_assert(!sm_scale_step(&c, &s, &in, &d));
    ck_assert_str_eq(d.reason, "cooldown");
    in = sample(20000, 100, 13);
    ck_assert(sm_scale_step(&c, &s, &in, &d));
    ck_assert_uint_eq(d.target, 17);            /* 13 + ceil(70 / 20) */
    /* at 30 pending exactly: steady */
    in = sample(60000, 30, 17);
    ck_assert(!sm_scale_step(&c, &s, &in, &d));
    ck_assert_str_eq(d.reason, "steady");
}
END_TEST

START_TEST(no_scaling_up_into_exhaustion_nor_past_quota_or_max)
{
    sm_scale_config c;
    sm_scale_config_default(&c);
    sm_scale_state s;
    memset(&s, 0, sizeof s);
    sm_scale_decision d;
    sm_scale_input in = sample(0, 500, 10);
    in.tokens_short = true;
    ck_assert(!sm_scale_step(&c, &s, &in, &d));
    ck_assert_str_eq(d.reason, "token_forecast");
    in.tokens_short = false;
    in.quota = 12;
    ck_assert(sm_scale_step(&c, &s, &in, &d));
    ck_assert_uint_eq(d.target, 12);
    memset(&s, 0, sizeof s);
    in = sample(0, 5000, 45);
    ck_assert(sm_scale_step(&c, &s, &in, &d));
    ck_assert_uint_eq(d.target, 50);
    in = sample(30000, 5000, 50);
    ck_assert(!sm_scale_step(&c, &s, &in, &d));
    ck_assert_str_eq(d.reason, "at_max");
}
END_TEST

START_TEST(down_waits_for_the_window_and_takes_idle_dynamic_agents_only)
{
    sm_scale_config c;
    sm_scale_config_default(&c);
    sm_scale_state s;
    memset(&s, 0, sizeof s);
    sm_scale_decision d;
    sm_scale_input in = sample(0, 50, 5);
    ck_assert(sm_scale_step(&c, &s, &in, &d));      /* up to 6 */
    /* drained at once: the recommendation of 6 stands for 60 s */
    in = sample(25000, 2, 6);
    ck_assert(!sm_scale_step(&c, &s, &in, &d));
    ck_assert_str_eq(d.reason, "stabilising");
    in = sample(59000, 2, 6);
    ck_assert(!sm_scale_step(&c, &s, &in, &d));
    /* the window has passed: down to the highest recent target, taking
     * half the idle dynamic agents (two idle: one goes) */
    in = sample(61000, 2, 6);
    in.idle_dynamic = 2;
    ck_assert(sm_scale_step(&c, &s, &in, &d));
    ck_assert_int_eq(d.dir, SM_SCALE_DOWN);
    ck_assert_uint_eq(d.remove, 1);
    ck_assert_uint_eq(d.target, 5);
    /* all five idle: but that target of 5 holds for a window */
    in = sample(81000, 2, 5);
    ck_assert(!sm_scale_step(&c, &s, &in, &d));
    ck_assert_str_eq(d.reason, "stabilising");
    /* then half of them, two, go */
    in = sample(122000, 2, 5);
    ck_assert(sm_scale_step(&c, &s, &in, &d));
    ck_assert_uint_eq(d.remove, 2);
    ck_assert_uint_eq(d.target, 3);
    /* no idle dynamic agent: hold */
    in = sample(200000, 2, 5);
    in.idle_dynamic = 0;
    ck_assert(!sm_scale_step(&c, &s, &in, &d));
    ck_assert_str_eq(d.reason, "no_idle_agent");
    /* never below one */
    memset(&s, 0, sizeof s);
    in = sample(0, 0, 1);
    ck_assert(!sm_scale_step(&c, &s, &in, &d));
}
END_TEST

/* The window spans its whole stabilise_ms however often samples come:
 * at one sample a second (the scheduler's rate, more samples than the
 * ring has slots) the first DOWN after an UP still waits for the window
 * to pass over the UP's recommendation, and then comes. */
START_TEST(window_spans_stabilise_at_any_sample_rate)
{
    sm_scale_config c;
    sm_scale_config_default(&c);
    for (int64_t every = 250; every <= 2000; every *= 2) {
        sm_scale_state s;
        memset(&s, 0, sizeof s);
        sm_scale_decision d;
        sm_scale_input in = sample(0, 70, 10);
        ck_assert(sm_scale_step(&c, &s, &in, &d));
        ck_assert_int_eq(d.dir, SM_SCALE_UP);
        uint32_t agents = d.target;
        int64_t first_down = -1;
        for (int64_t t = every; t <= 120000 && first_down < 0; t += every) {
            in = sample(t, 0, agents);
            in.idle_dynamic = 4;
            if (sm_scale_step(&c, &s, &in, &d)) {
                ck_assert_int_eq(d.dir, SM_SCALE_DOWN);
                first_down = t;
            }
        }
        ck_assert_msg(first_down > c.stabilise_ms, "every %lld ms: a DOWN "
                      "%lld ms after the UP", (long long)every,
                      (long long)first_down);
        ck_assert_int_le(first_down, c.stabilise_ms + 2 * c.stabilise_ms /
                         (SM_SCALE_HISTORY - 1) + every);
    }
}
END_TEST

/* A queue: tasks arrive (1 a second, 3 a second for 3 minutes every 15,
 * with noise of +-50%), each agent finishes one task every 10 s (so 10
 * agents keep up, 30 in a burst); busy agents are those the arrivals and
 * the queue keep working; the coordinator applies each decision at once.
 * Samples every 2 s for an hour. */
typedef struct queue_sim {
    uint64_t rng;
    double pending;
    uint32_t agents;
} queue_sim;

static double unit(queue_sim *q)
{
    q->rng = q->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(q->rng >> 11) / (double)(1ULL << 53);
}

/* What an hour of the bursty queue did. */
typedef struct bursty_run {
    int changes, downs;
    int reversals;          /* DOWN within stabilise_ms of an UP */
    int up_after_down;      /* UP within stabilise_ms of a DOWN */
    int flaps;              /* either, within cooldown + stabilise (the
                               score's flap) */
    int64_t calm, calm_over_30;
    uint32_t peak, end_of_cycle_max;
} bursty_run;

/* Runs the hour; with sized, the samples carry the work (tasks served
 * over the last 60 s, agents busy). */
static bursty_run bursty_hour(const sm_scale_config *c, bool sized)
{
    sm_scale_state s;
    memset(&s, 0, sizeof s);
    queue_sim q = {.rng = 42, .pending = 0, .agents = 5};
    bursty_run r;
    memset(&r, 0, sizeof r);
    double served[30] = {0};
    int last_dir = 0;
    int64_t last_change = -1000000;
    for (int64_t t = 0, i = 0; t < 3600 * 1000; t += 2000, i++) {
        int minute = (int)((t / 60000) % 15);
        double arrived = (minute < 3 ? 3.0 : 1.0) * 2.0 * (0.5 + unit(&q));
        double cap = q.agents * 0.2, work = q.pending + arrived;
        served[i % 30] = work < cap ? work : cap;
        q.pending = work - served[i % 30];
        double busy = arrived / 2.0 * 10.0 + q.pending, window = 0;
        for (int k = 0; k < 30; k++)
            window += served[k];
        sm_scale_input in = {.ts_ms = T0 + t, .pending = (uint32_t)q.pending,
                             .active = q.agents,
                             .idle_dynamic = busy >= q.agents ? 0
                                             : q.agents - (uint32_t)busy};
        if (sized) {
            in.busy = served[i % 30] / 0.2;
            in.done = window;
        }
        sm_scale_decision d;
        if (sm_scale_step(c, &s, &in, &d)) {
            int64_t since = t - last_change;
            r.changes++;
            r.downs += d.dir == SM_SCALE_DOWN;
            if (last_dir == SM_SCALE_UP && d.dir == SM_SCALE_DOWN &&
                since < c->stabilise_ms)
                r.reversals++;
            if (last_dir == SM_SCALE_DOWN && d.dir == SM_SCALE_UP &&
                since < c->stabilise_ms)
                r.up_after_down++;
            if (last_dir != 0 && (int)d.dir != last_dir &&
                since < c->cooldown_ms + c->stabilise_ms)
                r.flaps++;
            last_dir = (int)d.dir;
            last_change = t;
            q.agents = d.target;
        }
        if (q.agents > r.peak)
            r.peak = q.agents;
        if (minute >= 4) {          /* a minute after the burst and on */
            r.calm++;
            r.calm_over_30 += q.pending >= 30;
        }
        if (minute == 14 && q.agents > r.end_of_cycle_max)
            r.end_of_cycle_max = q.agents;
    }
    return r;
}

/* It gives agents back (4 DOWNs at least) and adds some (more than 4
 * UPs), within 50; the queue under 30 in 95% of the calm samples; at most
 * end_max agents at the end of each cycle. */
static void settles(const bursty_run *r, uint32_t end_max)
{
    ck_assert_int_ge(r->downs, 4);
    ck_assert_int_gt(r->changes - r->downs, 4);
    ck_assert_uint_le(r->peak, 50);
    ck_assert_msg(r->calm_over_30 * 20 <= r->calm,
                  "queue at or over 30 in %lld of %lld calm samples",
                  (long long)r->calm_over_30, (long long)r->calm);
    ck_assert_uint_le(r->end_of_cycle_max, end_max);
}

START_TEST(bursty_queue_settles_without_flapping)
{
    sm_scale_config c;
    sm_scale_config_default(&c);
    bursty_run r = bursty_hour(&c, false);
    /* flapping: shedding agents within the window after adding some;
     * adding right after shedding is counted apart (a burst may start
     * then) */
    ck_assert_int_eq(r.reversals, 0);
    ck_assert_int_le(r.up_after_down, 4);   /* at most once a burst */
    /* back near the 10 agents the calm load needs before the next burst */
    settles(&r, 15);
}
END_TEST

/* ---- sized by the work ----------------------------------------------- */

/* A swarm of 20 agents, 16 agents' worth of work in flight, 60 tasks
 * finished a minute (a task costs 16 agent-seconds), samples every
 * 2000 ms from t0 to t1 with pending(t) from f; returns the last
 * decision, and counts the changes in *changes (may be NULL). */
static sm_scale_decision calm(const sm_scale_config *c, sm_scale_state *s,
                              int64_t t0, int64_t t1, uint32_t pending,
                              uint32_t active, uint32_t idle, int *changes)
{
    sm_scale_decision d;
    memset(&d, 0, sizeof d);
    for (int64_t t = t0; t <= t1; t += 2000) {
        sm_scale_input in = sample(t, pending, active);
        in.idle_dynamic = idle;
        in.busy = 16;
        in.done = 60;
        if (sm_scale_step(c, s, &in, &d) && changes)
            (*changes)++;
    }
    return d;
}

/* A minute of calm (15 waiting), then 50 waiting at 62 s: the UP of
 * up_sized_by_drain_time_and_growth, to 31 agents. */
static sm_scale_decision burst(const sm_scale_config *c, sm_scale_state *s)
{
    memset(s, 0, sizeof *s);
    int changes = 0;
    calm(c, s, 0, 60000, 15, 20, 0, &changes);
    ck_assert_int_eq(changes, 0);
    sm_scale_input in = sample(62000, 50, 20);
    in.busy = 16;
    in.done = 60;
    sm_scale_decision d;
    ck_assert(sm_scale_step(c, s, &in, &d));
    return d;
}

/* UP by drain time: the window's mean work (16) plus the task cost (16
 * agent-seconds) times the backlog over 10 spread over 45 s, or the
 * queue's growth when that is larger; the reference alone would add one
 * agent. */
START_TEST(up_sized_by_drain_time_and_growth)
{
    sm_scale_config c;
    sm_scale_config_default(&c);
    sm_scale_state s;
    sm_scale_decision d = burst(&c, &s);
    ck_assert_int_eq(d.dir, SM_SCALE_UP);
    ck_assert_double_eq_tol(d.busy_mean, 16.0, 1e-9);
    ck_assert_double_eq_tol(d.task_s, 16.0, 1e-9);
    /* growth (50 - 15) over the 60 s since the oldest slot: 0.583/s, under
     * the backlog's 40 / 45 = 0.889/s: 16 + 0.889 x 16 = 30.2 */
    ck_assert_double_eq_tol(d.growth, 35.0 / 60.0, 1e-9);
    ck_assert_uint_eq(d.target, 31);
    ck_assert_str_eq(d.reason, "queue_backlog");

    /* a queue growing 1 task a second outruns a slow drain target: the
     * growth sizes it, 16 + 1.0 x 16 */
    c.drain_ms = 600000;
    memset(&s, 0, sizeof s);
    for (int64_t t = 0; t <= 58000; t += 2000) {
        sm_scale_input q = sample(t, (uint32_t)(t / 2000), 20);
        q.idle_dynamic = 0;
        q.busy = 16;
        q.done = 60;
        ck_assert(!sm_scale_step(&c, &s, &q, &d));
    }
    sm_scale_input in = sample(60000, 60, 20);
    in.busy = 16;
    in.done = 60;
    ck_assert(sm_scale_step(&c, &s, &in, &d));
    ck_assert_double_eq_tol(d.growth, 1.0, 1e-9);
    ck_assert_uint_eq(d.target, 32);

    /* without task figures: the reference's step, 20 + ceil(20 / 20) */
    sm_scale_config_default(&c);
    memset(&s, 0, sizeof s);
    in = sample(0, 50, 20);
    ck_assert(sm_scale_step(&c, &s, &in, &d));
    ck_assert_uint_eq(d.target, 21);
    ck_assert_double_eq_tol(d.task_s, 0.0, 1e-9);
}
END_TEST

/* DOWN with task figures: not within cooldown + window of an UP; to the
 * highest recommendation of the window, each one half way down to the
 * long mean work at target_util (16 / 0.8 = 20); not for less than a
 * tenth of the agents. The queue's peak is forgotten at once here
 * (burst_ms 1 s). */
START_TEST(down_by_window_half_way_to_the_work_not_for_less_than_a_tenth)
{
    sm_scale_config c;
    sm_scale_config_default(&c);
    c.burst_ms = 1000;
    sm_scale_state s;
    sm_scale_decision d = burst(&c, &s);
    ck_assert_uint_eq(d.target, 31);
    /* drained at once: every recommendation is 31 - ceil(11 / 2) = 25,
     * but the UP's 31 holds for the window, then cooldown + window hold */
    int changes = 0;
    d = calm(&c, &s, 64000, 140000, 0, 31, 11, &changes);
    ck_assert_int_eq(changes, 0);
    ck_assert_str_eq(d.reason, "stabilising");
    d = calm(&c, &s, 142000, 142000, 0, 31, 11, &changes);
    ck_assert_int_eq(changes, 1);
    ck_assert_int_eq(d.dir, SM_SCALE_DOWN);
    ck_assert_uint_eq(d.target, 25);
    ck_assert_uint_eq(d.remove, 6);
    /* at 25 the recommendation is 22, but 25 stands for a window */
    changes = 0;
    d = calm(&c, &s, 144000, 200000, 0, 25, 5, &changes);
    ck_assert_int_eq(changes, 0);
    d = calm(&c, &s, 202000, 204000, 0, 25, 5, &changes);
    ck_assert_int_eq(changes, 1);
    /* 22 then: its recommendation, 21, is less than a tenth (3) down */
    changes = 0;
    d = calm(&c, &s, 206000, 600000, 0, 22, 2, &changes);
    ck_assert_int_eq(changes, 0);
    ck_assert_str_eq(d.reason, "stabilising");
}
END_TEST

/* The queue's recent peak keeps the agents that would drain it: after a
 * burst of 50, no DOWN for two minutes with the default burst memory;
 * forgetting the peak at once, the DOWN comes at cooldown + window. */
START_TEST(a_recent_burst_keeps_its_agents)
{
    for (int forget = 0; forget <= 1; forget++) {
        sm_scale_config c;
        sm_scale_config_default(&c);
        if (forget)
            c.burst_ms = 1000;
        sm_scale_state s;
        sm_scale_decision d = burst(&c, &s);
        ck_assert_uint_eq(d.target, 31);
        int64_t first_down = -1;
        for (int64_t t = 64000; t <= 400000 && first_down < 0; t += 2000) {
            int changes = 0;
            d = calm(&c, &s, t, t, 0, 31, 11, &changes);
            if (changes) {
                ck_assert_int_eq(d.dir, SM_SCALE_DOWN);
                ck_assert_uint_ge(d.target, 20);
                first_down = t;
            }
        }
        if (forget)
            ck_assert_int_eq(first_down, 142000);
        else
            ck_assert_int_gt(first_down, 62000 + 120000);
    }
}
END_TEST

/* The bursty queue of bursty_queue_settles_without_flapping with the
 * work known: tasks served over the window and agents busy. No reversal
 * within cooldown + window either way (the score's flap), the queue under
 * 30 a minute after each burst, agents back near the calm need (10 at
 * 0.8: 13; a DOWN of less than a tenth is not made, so up to 16) before
 * the next. */
START_TEST(bursty_queue_sized_by_work_settles_without_flapping)
{
    sm_scale_config c;
    sm_scale_config_default(&c);
    bursty_run r = bursty_hour(&c, true);
    ck_assert_int_eq(r.flaps, 0);
    settles(&r, 16);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("scale");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, up_by_one_agent_per_20_surplus_then_cooldown);
    tcase_add_test(tc, window_spans_stabilise_at_any_sample_rate);
    tcase_add_test(tc, no_scaling_up_into_exhaustion_nor_past_quota_or_max);
    tcase_add_test(tc, down_waits_for_the_window_and_takes_idle_dynamic_agents_only);
    tcase_add_test(tc, bursty_queue_settles_without_flapping);
    tcase_add_test(tc, up_sized_by_drain_time_and_growth);
    tcase_add_test(tc, down_by_window_half_way_to_the_work_not_for_less_than_a_tenth);
    tcase_add_test(tc, a_recent_burst_keeps_its_agents);
    tcase_add_test(tc, bursty_queue_sized_by_work_settles_without_flapping);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sm_run_suite(suite());
}
