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

START_TEST(bursty_queue_settles_without_flapping)
{
    sm_scale_config c;
    sm_scale_config_default(&c);
    sm_scale_state s;
    memset(&s, 0, sizeof s);
    queue_sim q = {.rng = 42, .pending = 0, .agents = 5};
    int last_dir = 0, changes = 0, downs = 0, reversals = 0, up_after_down = 0;
    int64_t last_change = -1000000, calm = 0, calm_over_30 = 0;
    uint32_t peak = 0, end_of_cycle_max = 0;
    for (int64_t t = 0; t < 3600 * 1000; t += 2000) {
        int minute = (int)((t / 60000) % 15);
        double arrived = (minute < 3 ? 3.0 : 1.0) * 2.0 * (0.5 + unit(&q));
        q.pending += arrived - q.agents * 0.2;
        if (q.pending < 0)
            q.pending = 0;
        double busy = arrived / 2.0 * 10.0 + q.pending;
        sm_scale_input in = {.ts_ms = T0 + t, .pending = (uint32_t)q.pending,
                             .active = q.agents,
                             .idle_dynamic = busy >= q.agents ? 0
                                             : q.agents - (uint32_t)busy};
        sm_scale_decision d;
        if (sm_scale_step(&c, &s, &in, &d)) {
            changes++;
            downs += d.dir == SM_SCALE_DOWN;
            /* flapping: shedding agents within the window after adding
             * some; adding right after shedding is counted apart (a
             * burst may start then) */
            if (last_dir == SM_SCALE_UP && d.dir == SM_SCALE_DOWN &&
                t - last_change < c.stabilise_ms)
                reversals++;
            if (last_dir == SM_SCALE_DOWN && d.dir == SM_SCALE_UP &&
                t - last_change < c.stabilise_ms)
                up_after_down++;
            last_dir = (int)d.dir;
            last_change = t;
            q.agents = d.target;
        }
        if (q.agents > peak)
            peak = q.agents;
        if (minute >= 4) {          /* a minute after the burst and on */
            calm++;
            calm_over_30 += q.pending >= 30;
        }
        if (minute == 14 && q.agents > end_of_cycle_max)
            end_of_cycle_max = q.agents;
    }
    ck_assert_int_eq(reversals, 0);
    ck_assert_int_le(up_after_down, 4);     /* at most once a burst */
    ck_assert_int_ge(downs, 4);             /* it does give agents back */
    ck_assert_int_gt(changes - downs, 4);
    ck_assert_uint_le(peak, 50);
    ck_assert_msg(calm_over_30 * 20 <= calm,
                  "queue at or over 30 in %lld of %lld calm samples",
                  (long long)calm_over_30, (long long)calm);
    /* back near the 10 agents the calm load needs before the next burst */
    ck_assert_uint_le(end_of_cycle_max, 15);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("scale");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, up_by_one_agent_per_20_surplus_then_cooldown);
    tcase_add_test(tc, no_scaling_up_into_exhaustion_nor_past_quota_or_max);
    tcase_add_test(tc, down_waits_for_the_window_and_takes_idle_dynamic_agents_only);
    tcase_add_test(tc, bursty_queue_settles_without_flapping);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sm_run_suite(suite());
}
