/*
 * check_query.c - the services' core questions on vectors: agent
 * selection (40/30/20/10, 0.5 without history, speed within a type),
 * the token plan (weight per token, 90% / 95%), what is open (status),
 * and the report arithmetic (log-bucket percentiles within their bound,
 * trends read in time order, the row byte layout), and the work the
 * scaler sizes on.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "report.h"
#include "swarm.h"
#include "runner.h"

#define T0 INT64_C(1700000000000)

static sm_swarm *new_swarm(void)
{
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    cfg.slow_min_type_tasks = 3;
    sm_swarm *sw = NULL;
    ck_assert_int_eq(sm_swarm_create(&sw, "s1", &cfg), SM_OK);
    return sw;
}

static void task(sm_swarm *sw, int64_t ts, const char *agent, const char *type,
                 sm_task_kind kind, uint32_t dur)
{
    sm_task_event ev = {.ts_ms = ts, .agent = agent, .task_type = type,
                        .kind = kind, .priority = SM_PRIO_MEDIUM,
                        .tokens_used = 100, .duration_ms = dur};
    ck_assert_int_eq(sm_swarm_on_task(sw, &ev, NULL), SM_OK);
}

static void beat(sm_swarm *sw, int64_t ts, const char *agent, uint32_t inflight)
{
    sm_heartbeat hb = {.ts_ms = ts, .agent = agent, .state = 2,
                       .inflight = inflight};
    ck_assert_int_eq(sm_swarm_on_heartbeat(sw, &hb, NULL), SM_OK);
}

/* a: three search tasks at 1000 ms set the baseline (no ratio yet), then
 * two more at 1000 ms (ratio 1) and one failure; b: two search tasks at
 * 2000 ms (ratio 2) after the baseline; c: only a heartbeat. */
static sm_swarm *selection_swarm(void)
{
    sm_swarm *sw = new_swarm();
    int64_t t = T0;
    for (int i = 0; i < 3; i++)
        task(sw, t += 1000, "a", "search", SM_TASK_COMPLETED, 1000);
    task(sw, t += 1000, "a", "search", SM_TASK_COMPLETED, 1000);
    task(sw, t += 1000, "a", "search", SM_TASK_COMPLETED, 1000);
    task(sw, t += 1000, "a", "search", SM_TASK_FAILED, 300);
    task(sw, t += 1000, "b", "code", SM_TASK_STARTED, 0);
    task(sw, t += 1000, "b", "search", SM_TASK_COMPLETED, 2000);
    task(sw, t += 1000, "b", "search", SM_TASK_COMPLETED, 2000);
    task(sw, t += 1000, "a", "search", SM_TASK_STARTED, 0);
    beat(sw, t += 1000, "a", 1);
    beat(sw, t += 1000, "b", 3);
    beat(sw, t += 1000, "c", 0);
    return sw;
}

START_TEST(select_scores_by_the_40_30_20_10_rule)
{
    sm_swarm *sw = selection_swarm();
    sm_agent_score out[8];
    size_t eligible = 0, skipped = 9;
    size_t n = sm_query_select(sw, "search", NULL, 0, out, 8, &eligible,
                               &skipped, NULL);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(eligible, 3);
    ck_assert_uint_eq(skipped, 0);
    /* a: success 5/6, speed 1 (median ratio 1), capacity 2/3, affinity 1 */
    ck_assert_str_eq(out[0].agent, "a");
    ck_assert_uint_eq(out[0].samples, 6);
    ck_assert_double_eq_tol(out[0].success, 5.0 / 6.0, 1e-12);
    ck_assert_double_eq_tol(out[0].speed, 1.0, 1e-12);
    ck_assert_double_eq_tol(out[0].capacity, 2.0 / 3.0, 1e-12);
    ck_assert_double_eq_tol(out[0].affinity, 1.0, 1e-12);
    ck_assert_double_eq_tol(out[0].score,
                            0.4 * 5.0 / 6.0 + 0.3 + 0.2 * 2.0 / 3.0 + 0.1, 1e-12);
    /* b: success 1, speed 1/2 (ratio 2 within search), no free slot,
     * latest started task "code": no affinity */
    ck_assert_str_eq(out[1].agent, "b");
    ck_assert_double_eq_tol(out[1].speed, 0.5, 1e-12);
    ck_assert_double_eq_tol(out[1].capacity, 0.0, 1e-12);
    ck_assert_double_eq_tol(out[1].affinity, 0.0, 1e-12);
    ck_assert_double_eq_tol(out[1].score, 0.4 + 0.15, 1e-12);
    /* c: no history */
    ck_assert_str_eq(out[2].agent, "c");
    ck_assert_uint_eq(out[2].samples, 0);
    ck_assert_double_eq_tol(out[2].score, 0.5, 1e-12);
    sm_swarm_destroy(sw);
}
END_TEST

START_TEST(select_skips_unknown_and_unregistered_candidates)
{
    sm_swarm *sw = selection_swarm();
    sm_agent_lifecycle bye = {.ts_ms = T0 + 20000, .agent = "b",
                              .registered = false};
    ck_assert_int_eq(sm_swarm_on_agent(sw, &bye, NULL), SM_OK);
    const char *cand[] = {"zz", "b", "c"};
    sm_agent_score out[1];
    size_t eligible = 0, skipped = 0, ids[3];
    size_t n = sm_query_select(sw, "search", cand, 3, out, 1, &eligible,
                               &skipped, ids);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(eligible, 1);
    ck_assert_str_eq(out[0].agent, "c");
    ck_assert_uint_eq(skipped, 2);
    ck_assert_uint_eq(ids[0], 0);
    ck_assert_uint_eq(ids[1], 1);
    sm_swarm_destroy(sw);
}
END_TEST

static void budget(sm_swarm *sw, int64_t ts, uint64_t used, uint64_t total)
{
    sm_resource_sample r = {.ts_ms = ts, .source = "coord",
                            .token_budget = total, .tokens_used = used};
    ck_assert_int_eq(sm_swarm_on_resource(sw, &r, NULL), SM_OK);
}

START_TEST(plan_admits_by_weight_per_token_within_90_percent)
{
    sm_swarm *sw = new_swarm();
    sm_plan_task t[] = {
        {"low-big", SM_PRIO_LOW, 500},      /* 1/500 = 0.002 */
        {"crit", SM_PRIO_CRITICAL, 400},    /* 10/400 = 0.025 */
        {"high", SM_PRIO_HIGH, 300},        /* 5/300 = 0.0167 */
        {"med", SM_PRIO_MEDIUM, 100},       /* 2/100 = 0.02 */
        {"bg", SM_PRIO_BACKGROUND, 50},     /* 0.5/50 = 0.01 */
    };
    uint32_t order[5];
    sm_plan_fate fate[5];
    sm_plan_result res;
    /* no budget reported yet: everything deferred, saying why */
    ck_assert_int_eq(sm_query_plan(sw, t, 5, false, order, fate, &res), SM_OK);
    ck_assert(!res.budget_known);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(fate[i], SM_PLAN_NO_BUDGET);
    budget(sw, T0, 9000, 10000);            /* 1000 left: 900 at 90% */
    ck_assert_int_eq(sm_query_plan(sw, t, 5, false, order, fate, &res), SM_OK);
    ck_assert_uint_eq(res.remaining, 1000);
    ck_assert_uint_eq(res.limit, 900);
    const uint32_t want[] = {1, 3, 2, 4, 0};
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(order[i], want[i]);
    /* crit 400, med 100, high 300 = 800; bg 50 = 850; low-big over */
    ck_assert_int_eq(fate[1], SM_PLAN_ADMITTED);
    ck_assert_int_eq(fate[3], SM_PLAN_ADMITTED);
    ck_assert_int_eq(fate[2], SM_PLAN_ADMITTED);
    ck_assert_int_eq(fate[4], SM_PLAN_ADMITTED);
    ck_assert_int_eq(fate[0], SM_PLAN_OVER_BUDGET);
    ck_assert_uint_eq(res.admitted_tokens, 850);
    /* aggressive: 95% = 950; still no room for 500 more */
    ck_assert_int_eq(sm_query_plan(sw, t, 5, true, order, fate, &res), SM_OK);
    ck_assert_uint_eq(res.limit, 950);
    ck_assert_int_eq(fate[0], SM_PLAN_OVER_BUDGET);
    /* a bad priority is refused whole */
    t[2].priority = 0;
    ck_assert_int_eq(sm_query_plan(sw, t, 5, false, order, fate, &res),
                     SM_ERR_INVALID);
    sm_swarm_destroy(sw);
}
END_TEST

START_TEST(plan_skips_a_task_that_does_not_fit_and_admits_smaller_ones)
{
    sm_swarm *sw = new_swarm();
    budget(sw, T0, 0, 1000);                /* 900 admissible */
    sm_plan_task t[] = {
        {"a", SM_PRIO_CRITICAL, 800},       /* 0.0125: first */
        {"b", SM_PRIO_CRITICAL, 850},       /* 0.0118: does not fit */
        {"c", SM_PRIO_LOW, 100},            /* 0.01: fits */
        {"d", SM_PRIO_LOW, 0},              /* 0 tokens: ranks first */
    };
    uint32_t order[4];
    sm_plan_fate fate[4];
    sm_plan_result res;
    ck_assert_int_eq(sm_query_plan(sw, t, 4, false, order, fate, &res), SM_OK);
    ck_assert_uint_eq(order[0], 3);
    ck_assert_int_eq(fate[0], SM_PLAN_ADMITTED);
    ck_assert_int_eq(fate[1], SM_PLAN_OVER_BUDGET);
    ck_assert_int_eq(fate[2], SM_PLAN_ADMITTED);
    ck_assert_int_eq(fate[3], SM_PLAN_ADMITTED);
    ck_assert_uint_eq(res.admitted_tokens, 900);
    sm_swarm_destroy(sw);
}
END_TEST

START_TEST(status_lists_what_is_open)
{
    sm_swarm *sw = new_swarm();
    sm_open_item out[8];
    ck_assert_uint_eq(sm_query_status(sw, out, 8), 0);
    /* token use over 80% on two samples (gauge_min_samples) raises the
     * token_exhaustion bottleneck */
    budget(sw, T0, 9500, 10000);
    budget(sw, T0 + 1000, 9600, 10000);
    ck_assert(sm_swarm_is_raised(sw, SM_BN_TOKEN_EXHAUSTION, ""));
    size_t n = sm_query_status(sw, out, 8);
    ck_assert_uint_ge(n, 1);
    size_t bn = 0;
    for (size_t i = 0; i < n && i < 8; i++) {
        if (out[i].kind == SM_OPEN_BOTTLENECK) {
            bn++;
            ck_assert_int_eq(out[i].type, SM_BN_TOKEN_EXHAUSTION);
            ck_assert_int_eq(out[i].raised_at_ms, T0 + 1000);
            ck_assert_int_ge(out[i].severity, SM_SEV_LOW);
        }
    }
    ck_assert_uint_eq(bn, 1);
    /* a cap of 0 still counts */
    ck_assert_uint_eq(sm_query_status(sw, NULL, 0), n);
    sm_swarm_destroy(sw);
}
END_TEST

START_TEST(percentiles_are_within_the_stated_bound)
{
    sm_perf_row r;
    memset(&r, 0, sizeof r);
    /* 1..10000 ms: the true q-quantile is ceil(q n) */
    for (uint32_t d = 1; d <= 10000; d++)
        sm_perf_add(&r, d, d % 10 != 0, 5);
    ck_assert_uint_eq(r.count, 10000);
    ck_assert_uint_eq(r.ok, 9000);
    ck_assert_uint_eq(r.tokens, 50000);
    const double qs[] = {0.5, 0.95, 0.99};
    for (int i = 0; i < 3; i++) {
        double truth = ceil(qs[i] * 10000), got = sm_perf_quantile(&r, qs[i]);
        ck_assert_msg(fabs(got - truth) <= SM_PERF_ERROR * truth,
                      "q=%.2f got %.1f truth %.0f", qs[i], got, truth);
    }
    /* below 8 ms a bucket is one ms: exact */
    sm_perf_row s;
    memset(&s, 0, sizeof s);
    sm_perf_add(&s, 3, true, 0);
    sm_perf_add(&s, 5, true, 0);
    sm_perf_add(&s, 7, true, 0);
    ck_assert_double_eq(sm_perf_quantile(&s, 0.5), 5.0);
    /* every duration sits in its bucket */
    for (uint32_t d = 8; d < 5000000; d = d * 5 / 4 + 1) {
        double mid = sm_perf_bucket_mid(sm_perf_bucket(d));
        ck_assert_msg(fabs(mid - d) <= SM_PERF_ERROR * d, "d=%u mid=%.1f", d, mid);
    }
    ck_assert_uint_lt(sm_perf_bucket(UINT32_MAX), SM_PERF_BUCKETS);
}
END_TEST

START_TEST(rows_round_trip_and_bad_bytes_are_refused)
{
    sm_perf_row r, back;
    memset(&r, 0, sizeof r);
    for (uint32_t d = 100; d < 90000; d += 777)
        sm_perf_add(&r, d, d & 1, d / 3);
    uint8_t buf[SM_PERF_ROW_MAX];
    size_t n = sm_perf_encode(&r, buf, sizeof buf);
    ck_assert_uint_gt(n, 0);
    ck_assert_int_eq(sm_perf_decode(&back, buf, n), SM_OK);
    ck_assert_mem_eq(&r, &back, sizeof r);
    ck_assert_int_eq(sm_perf_decode(&back, buf, n - 1), SM_ERR_CORRUPT);
    buf[0] = 9;
    ck_assert_int_eq(sm_perf_decode(&back, buf, n), SM_ERR_VERSION);
    ck_assert_uint_eq(sm_perf_encode(&r, buf, 10), 0);
}
END_TEST

START_TEST(trends_read_in_time_order)
{
    const double x[] = {0, 1, 2, 3, 4};
    const double up[] = {100, 110, 120, 130, 140};    /* +40% over the mean */
    const double flat[] = {100, 101, 99, 100, 100};
    const double w[] = {5, 5, 5, 5, 5};
    const double w_few[] = {5, 0, 0, 0, 5};
    ck_assert_int_eq(sm_perf_trend(x, up, w, 5, true), SM_TREND_DEGRADING);
    ck_assert_int_eq(sm_perf_trend(x, up, w, 5, false), SM_TREND_IMPROVING);
    ck_assert_int_eq(sm_perf_trend(x, flat, w, 5, true), SM_TREND_STABLE);
    ck_assert_int_eq(sm_perf_trend(x, up, w_few, 5, true), SM_TREND_NONE);
    /* newest-first data read as given would flip the answer: the order is
     * the caller's, oldest first */
    const double down[] = {140, 130, 120, 110, 100};
    ck_assert_int_eq(sm_perf_trend(x, down, w, 5, true), SM_TREND_IMPROVING);
    const double rate[] = {0.9, 0.88, 0.8, 0.75, 0.7};
    ck_assert_int_eq(sm_perf_trend(x, rate, w, 5, false), SM_TREND_DEGRADING);
}
END_TEST

/* The work the scaler sizes on: tasks finished since a time (any
 * outcome), agents' worth in flight at the last heartbeats (over the most
 * one agent reported), and an agent whose ring filled within the span
 * counted at its ring's rate. */
START_TEST(work_counts_finished_tasks_and_agents_worth_in_flight)
{
    sm_swarm *sw = selection_swarm();
    sm_query_work wk;
    sm_query_work_of(sw, T0, &wk);
    ck_assert_double_eq_tol(wk.done, 8.0, 1e-9);    /* a: 6 (one failed), b: 2 */
    ck_assert_uint_eq(wk.concurrency, 3);           /* b reported 3 */
    ck_assert_double_eq_tol(wk.busy, 4.0 / 3.0, 1e-9);
    sm_query_work_of(sw, T0 + 5500, &wk);
    ck_assert_double_eq_tol(wk.done, 3.0, 1e-9);    /* a's failure, b's two */
    /* d finishes 20 tasks 100 ms apart, its ring keeps the last 16 */
    int64_t t = T0 + 12000;
    for (int i = 0; i < 20; i++)
        task(sw, t += 100, "d", "search", SM_TASK_COMPLETED, 50);
    sm_query_work_of(sw, T0 + 13000, &wk);
    ck_assert_double_eq_tol(wk.done, 11.0, 1e-9);   /* 13000..14000 */
    /* since 12000: the 16 held span 12500..14000, so 16 x 2000 / 1500 */
    sm_query_work_of(sw, T0 + 12000, &wk);
    ck_assert_double_eq_tol(wk.done, 16.0 * 2000.0 / 1500.0, 1e-9);
    ck_assert_double_eq_tol(wk.busy, 4.0 / 3.0, 1e-9);  /* d never beat */
    sm_swarm_destroy(sw);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("query");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, select_scores_by_the_40_30_20_10_rule);
    tcase_add_test(tc, select_skips_unknown_and_unregistered_candidates);
    tcase_add_test(tc, plan_admits_by_weight_per_token_within_90_percent);
    tcase_add_test(tc, plan_skips_a_task_that_does_not_fit_and_admits_smaller_ones);
    tcase_add_test(tc, status_lists_what_is_open);
    tcase_add_test(tc, percentiles_are_within_the_stated_bound);
    tcase_add_test(tc, rows_round_trip_and_bad_bytes_are_refused);
    tcase_add_test(tc, trends_read_in_time_order);
    tcase_add_test(tc, work_counts_finished_tasks_and_agents_worth_in_flight);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sm_run_suite(suite());
}
