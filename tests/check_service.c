/*
 * check_service.c - the request/reply endpoints and $SRV discovery on
 * real parts: a nats-server on a random loopback port, the swarm-medic
 * binary on a temporary LMDB directory, and this test as a plain cnats
 * client. Each endpoint's reply is checked field by field on a fixed
 * vector of events; malformed requests get error replies; a swarm the
 * worker does not hold gets no reply from it; aggregates and the
 * decision log survive a restart; the periodic PerformanceReport goes
 * out when event time closes an interval.
 */
#include <check.h>
#include <jansson.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "registry.h"
#include "report.h"
#include "service_int.h"
#include "service_store.h"
#include "store.h"
#include "support.h"
#include "swarm_medic.pb-c.h"
#include "runner.h"

#define T0 INT64_C(1700000040000)   /* a whole minute */
#define WAIT_MS 5000

typedef struct rig {
    sm_test_server srv;
    char dir[256], log[320], store[320];
    pid_t worker;
    int starts;
    natsConnection *nc;
    natsSubscription *out;      /* medic.s1.> outputs */
} rig;

static void start_worker_with(rig *r, const char *extra)
{
    char bin[512], url[128], store[400];
    sm_test_bin(bin, sizeof bin, "swarm-medic");
    snprintf(url, sizeof url, "--nats-url=%s", r->srv.url);
    snprintf(store, sizeof store, "--store-dir=%s", r->store);
    const char *argv[] = {bin, url, store, "--log-level=debug",
                          "--stats-interval=0", "--commit-interval=20ms",
                          "--slow-min-type-tasks=3", "--report-interval=1m",
                          extra, NULL};
    snprintf(r->log, sizeof r->log, "%s/worker-%d.log", r->dir, ++r->starts);
    r->worker = sm_test_spawn(argv, r->log, true);
    ck_assert_msg(sm_test_wait_for_text(r->log, "event=subscribed", 30000),
                  "worker did not subscribe; log:\n%s", SM_TEST_TAIL(r->log));
}

static void start_worker(rig *r)
{
    start_worker_with(r, NULL);
}

static void stop_worker(rig *r)
{
    kill(r->worker, SIGTERM);
    int rc = sm_test_wait(r->worker, 60000);
    ck_assert_msg(rc == 0, "worker exited %d; log:\n%s", rc, SM_TEST_TAIL(r->log));
    r->worker = 0;
}

static void rig_up_with(rig *r, const char *extra)
{
    memset(r, 0, sizeof *r);
    sm_test_server_start(&r->srv, 0, NULL);
    sm_test_tmpdir(r->dir, sizeof r->dir, "svc");
    snprintf(r->store, sizeof r->store, "%s/data", r->dir);
    start_worker_with(r, extra);
    ck_assert_int_eq(natsConnection_ConnectTo(&r->nc, r->srv.url), NATS_OK);
    ck_assert_int_eq(natsConnection_SubscribeSync(&r->out, r->nc, "medic.s1.>"),
                     NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(r->nc, 2000), NATS_OK);
}

static void rig_up(rig *r)
{
    rig_up_with(r, NULL);
}

static void rig_down(rig *r)
{
    natsSubscription_Destroy(r->out);
    natsConnection_Destroy(r->nc);
    if (r->worker > 0)
        stop_worker(r);
    sm_test_server_stop(&r->srv);
    sm_test_rmtree(r->srv.dir);
    sm_test_rmtree(r->dir);
}

/* ---- the vector ----------------------------------------------------------- */

static void pub(rig *r, const char *subject, const ProtobufCMessage *m)
{
    uint8_t buf[1024];
    size_t n = protobuf_c_message_pack(m, buf);
    ck_assert_int_eq(natsConnection_Publish(r->nc, subject, buf, (int)n), NATS_OK);
}

static void task(rig *r, int64_t ts, const char *agent, const char *type,
                 int kind, uint32_t dur)
{
    Swarmmedic__V1__TaskEvent e = SWARMMEDIC__V1__TASK_EVENT__INIT;
    char subject[128];
    e.ts_ms = ts;
    e.agent = (char *)agent;
    e.task_id = "t";
    e.task_type = (char *)type;
    e.kind = kind;
    e.priority = SWARMMEDIC__V1__PRIORITY__PRIORITY_MEDIUM;
    e.tokens_used = kind == 2 ? 0 : 100;
    e.duration_ms = dur;
    snprintf(subject, sizeof subject, "swarm.s1.task.%s", agent);
    pub(r, subject, &e.base);
}

static void beat(rig *r, int64_t ts, const char *agent, uint32_t inflight)
{
    Swarmmedic__V1__Heartbeat h = SWARMMEDIC__V1__HEARTBEAT__INIT;
    char subject[128];
    h.ts_ms = ts;
    h.agent = (char *)agent;
    h.state = SWARMMEDIC__V1__HEARTBEAT__STATE__STATE_BUSY;
    h.inflight = inflight;
    snprintf(subject, sizeof subject, "swarm.s1.heartbeat.%s", agent);
    pub(r, subject, &h.base);
}

static void usage(rig *r, int64_t ts, uint64_t used, uint64_t budget)
{
    Swarmmedic__V1__ResourceSample s = SWARMMEDIC__V1__RESOURCE_SAMPLE__INIT;
    s.ts_ms = ts;
    s.source = "coord";
    s.token_budget = budget;
    s.tokens_used = used;
    pub(r, "swarm.s1.resource.coord", &s.base);
}

enum { STARTED = 2, COMPLETED = 3, FAILED = 4 };

/* As check_query's selection swarm, on the bus; then token use at 95% and
 * 96% of the budget (a token_exhaustion bottleneck). */
static void feed_vector(rig *r)
{
    int64_t t = T0;
    for (int i = 0; i < 5; i++)
        task(r, t += 1000, "a", "search", COMPLETED, 1000);
    task(r, t += 1000, "a", "search", FAILED, 300);
    task(r, t += 1000, "b", "code", STARTED, 0);
    task(r, t += 1000, "b", "search", COMPLETED, 2000);
    task(r, t += 1000, "b", "search", COMPLETED, 2000);
    task(r, t += 1000, "a", "search", STARTED, 0);
    beat(r, t += 1000, "a", 1);
    beat(r, t += 1000, "b", 3);
    beat(r, t += 1000, "c", 0);
    usage(r, t += 1000, 9500, 10000);
    usage(r, t += 1000, 9600, 10000);
    ck_assert_int_eq(natsConnection_FlushTimeout(r->nc, 2000), NATS_OK);
}

/* ---- requests ------------------------------------------------------------- */

static natsStatus request(rig *r, const char *swarm, const char *verb,
                          const void *data, size_t len, natsMsg **reply,
                          int64_t timeout)
{
    char subject[128];
    snprintf(subject, sizeof subject, "medic.%s.api.%s", swarm, verb);
    return natsConnection_Request(reply, r->nc, subject, data, (int)len, timeout);
}

static natsMsg *ask(rig *r, const char *verb, const ProtobufCMessage *m)
{
    uint8_t buf[4096];
    size_t n = m ? protobuf_c_message_pack(m, buf) : 0;
    natsMsg *reply = NULL;
    natsStatus s = request(r, "s1", verb, buf, n, &reply, WAIT_MS);
    ck_assert_msg(s == NATS_OK, "%s: %s; log:\n%s", verb, natsStatus_GetText(s),
                  SM_TEST_TAIL(r->log));
    const char *err = NULL;
    if (natsMsgHeader_Get(reply, "Nats-Service-Error", &err) == NATS_OK)
        ck_abort_msg("%s answered an error: %s", verb, err);
    return reply;
}

/* The error code a request is answered with ("" if none). */
static void ask_error(rig *r, const char *verb, const void *data, size_t len,
                      const char *want_code)
{
    natsMsg *reply = NULL;
    natsStatus s = request(r, "s1", verb, data, len, &reply, WAIT_MS);
    ck_assert_msg(s == NATS_OK, "%s: no reply (%s)", verb, natsStatus_GetText(s));
    const char *code = NULL, *text = NULL;
    ck_assert_int_eq(natsMsgHeader_Get(reply, "Nats-Service-Error-Code", &code),
                     NATS_OK);
    ck_assert_int_eq(natsMsgHeader_Get(reply, "Nats-Service-Error", &text), NATS_OK);
    ck_assert_str_eq(code, want_code);
    ck_assert_uint_gt(strlen(text), 10);
    ck_assert_int_eq(natsMsg_GetDataLength(reply), 0);
    natsMsg_Destroy(reply);
}

/* The reply to a request, or NULL while the worker does not hold the
 * swarm yet (requests overtake events: the first ones may come before
 * the event that creates it, and a swarm not held gets no reply). */
static natsMsg *ask_soon(rig *r, const char *verb, const ProtobufCMessage *m)
{
    uint8_t buf[4096];
    size_t n = protobuf_c_message_pack(m, buf);
    natsMsg *reply = NULL;
    natsStatus s = request(r, "s1", verb, buf, n, &reply, 250);
    if (s == NATS_TIMEOUT)
        return NULL;
    ck_assert_msg(s == NATS_OK, "%s: %s", verb, natsStatus_GetText(s));
    return reply;
}

/* Requests overtake events (they are answered before the event queue):
 * poll the report until the vector's 8 finished tasks are in. */
static Swarmmedic__V1__PerformanceReport *report_when(rig *r, uint64_t tasks)
{
    Swarmmedic__V1__ReportRequest q = SWARMMEDIC__V1__REPORT_REQUEST__INIT;
    q.range_start_ms = T0;
    q.range_end_ms = T0 + 60000;
    for (int i = 0; i < 200; i++) {
        natsMsg *m = ask_soon(r, "report", &q.base);
        if (!m)
            continue;
        Swarmmedic__V1__PerformanceReport *p =
            swarmmedic__v1__performance_report__unpack(
                NULL, (size_t)natsMsg_GetDataLength(m),
                (const uint8_t *)natsMsg_GetData(m));
        natsMsg_Destroy(m);
        ck_assert_ptr_nonnull(p);
        if (p->task_count == tasks)
            return p;
        swarmmedic__v1__performance_report__free_unpacked(p, NULL);
        nats_Sleep(20);
    }
    ck_abort_msg("the report never held %llu tasks", (unsigned long long)tasks);
    return NULL;
}

/* Waits until the status shows the token bottleneck (the vector's end). */
static Swarmmedic__V1__StatusReply *status_when_raised(rig *r)
{
    Swarmmedic__V1__StatusRequest q = SWARMMEDIC__V1__STATUS_REQUEST__INIT;
    for (int i = 0; i < 200; i++) {
        natsMsg *m = ask_soon(r, "status", &q.base);
        if (!m)
            continue;
        Swarmmedic__V1__StatusReply *s = swarmmedic__v1__status_reply__unpack(
            NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
        natsMsg_Destroy(m);
        ck_assert_ptr_nonnull(s);
        if (s->n_bottlenecks > 0)
            return s;
        swarmmedic__v1__status_reply__free_unpacked(s, NULL);
        nats_Sleep(20);
    }
    ck_abort_msg("no bottleneck ever open");
    return NULL;
}

static void check_report(const Swarmmedic__V1__PerformanceReport *p)
{
    /* a: 5 x 1000 ms and one failure at 300; b: 2 x 2000 ms */
    ck_assert_int_eq(p->range_start_ms, T0);
    ck_assert_int_eq(p->range_end_ms, T0 + 60000);
    ck_assert_uint_eq(p->task_count, 8);
    ck_assert_uint_eq(p->tasks_failed, 1);
    ck_assert_double_eq_tol(p->mean_duration_ms, 9300.0 / 8, 1e-9);
    ck_assert_double_eq_tol(p->success_rate, 7.0 / 8, 1e-12);
    ck_assert_double_eq_tol(p->tokens_per_task, 100.0, 1e-12);
    ck_assert_double_eq(p->p50_duration_ms, sm_perf_bucket_mid(sm_perf_bucket(1000)));
    ck_assert_double_eq(p->p95_duration_ms, sm_perf_bucket_mid(sm_perf_bucket(2000)));
    ck_assert_double_eq(p->p99_duration_ms, sm_perf_bucket_mid(sm_perf_bucket(2000)));
    ck_assert_double_eq(p->percentile_error, SM_PERF_ERROR);
    ck_assert_uint_eq(p->n_types, 1);
    ck_assert_str_eq(p->types[0]->task_type, "search");
    ck_assert_uint_eq(p->types[0]->task_count, 8);
    ck_assert_uint_eq(p->n_points, 1);      /* one minute: no trend to read */
    ck_assert_int_eq(p->duration_trend, 0);
    ck_assert_str_eq(p->decision->swarm, "s1");
}

/* What the first token_exhaustion Bottleneck published said. */
typedef struct published {
    char id[17];
    double value, threshold;
    size_t n_metrics;
} published;

static void keep_bottleneck(natsMsg *m, published *pb)
{
    Swarmmedic__V1__Bottleneck *b = swarmmedic__v1__bottleneck__unpack(
        NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_ge(b->decision->n_metrics, 1);
    pb->n_metrics = b->decision->n_metrics;
    pb->value = b->decision->metrics[0]->value;
    pb->threshold = b->decision->metrics[0]->threshold;
    swarmmedic__v1__bottleneck__free_unpacked(b, NULL);
}

static void bottleneck_id(rig *r, published *pb)
{
    char *id = pb->id;
    for (int i = 0; i < 200; i++) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, r->out, 100) != NATS_OK)
            continue;
        const char *v = NULL;
        bool hit = strcmp(natsMsg_GetSubject(m), "medic.s1.bottleneck.token_exhaustion") == 0 &&
                   natsMsgHeader_Get(m, "Nats-Msg-Id", &v) == NATS_OK;
        if (hit) {
            snprintf(id, 17, "%s", v);
            keep_bottleneck(m, pb);
        }
        natsMsg_Destroy(m);
        if (hit)
            return;
    }
    ck_abort_msg("no token_exhaustion bottleneck published");
}

static void check_explain(rig *r, const published *pb)
{
    const char *id = pb->id;
    Swarmmedic__V1__ExplainRequest q = SWARMMEDIC__V1__EXPLAIN_REQUEST__INIT;
    q.decision_id = (char *)id;
    natsMsg *m = ask(r, "explain", &q.base);
    Swarmmedic__V1__DecisionRecord *d = swarmmedic__v1__decision_record__unpack(
        NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    natsMsg_Destroy(m);
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(d->kind, "bottleneck");
    ck_assert_str_eq(d->type, "token_exhaustion");
    ck_assert_str_eq(d->transition, "raised");
    ck_assert_str_eq(d->decision->decision_id, id);
    ck_assert_str_eq(d->decision->swarm, "s1");
    ck_assert_int_eq(d->decision->decided_at_ms, T0 + 15000);
    ck_assert_str_eq(d->decision->evidence->subject, "swarm.s1.resource.coord");
    /* the evidence and thresholds, as published */
    ck_assert_uint_eq(d->decision->n_metrics, pb->n_metrics);
    ck_assert_str_eq(d->decision->metrics[0]->name, "token_usage_ratio");
    ck_assert_double_eq_tol(d->decision->metrics[0]->value, 0.96, 1e-9);
    ck_assert_double_eq(d->decision->metrics[0]->value, pb->value);
    ck_assert_double_eq(d->decision->metrics[0]->threshold, pb->threshold);
    ck_assert_double_gt(d->decision->metrics[0]->threshold, 0.0);
    swarmmedic__v1__decision_record__free_unpacked(d, NULL);
}

static void check_select(rig *r)
{
    Swarmmedic__V1__SelectRequest q = SWARMMEDIC__V1__SELECT_REQUEST__INIT;
    q.task_type = "search";
    char *cand[] = {"b", "c", "a", "ghost"};
    q.candidates = cand;
    q.n_candidates = 4;
    natsMsg *m = ask(r, "select", &q.base);
    Swarmmedic__V1__SelectReply *s = swarmmedic__v1__select_reply__unpack(
        NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    natsMsg_Destroy(m);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->agent, "a");
    ck_assert_uint_eq(s->n_scores, 3);
    ck_assert_str_eq(s->scores[0]->agent, "a");
    ck_assert_double_eq_tol(s->scores[0]->score,
                            0.4 * 5.0 / 6.0 + 0.3 + 0.2 * 2.0 / 3.0 + 0.1, 1e-12);
    ck_assert_str_eq(s->scores[1]->agent, "b");
    ck_assert_double_eq_tol(s->scores[1]->score, 0.55, 1e-12);
    ck_assert_str_eq(s->scores[2]->agent, "c");
    ck_assert_double_eq_tol(s->scores[2]->score, 0.5, 1e-12);
    ck_assert_uint_eq(s->n_skipped, 1);
    ck_assert_str_eq(s->skipped[0], "ghost");
    swarmmedic__v1__select_reply__free_unpacked(s, NULL);
}

static void check_plan(rig *r)
{
    /* 400 tokens left, 360 admissible: high (5/90), crit (10/200), then
     * med (2/100) does not fit, bg (0.5/50) does, low (1/500) does not */
    Swarmmedic__V1__PlanTask t[5];
    Swarmmedic__V1__PlanTask *tp[5];
    const char *ids[] = {"crit", "med", "high", "bg", "low"};
    const int prio[] = {1, 3, 2, 5, 4};
    const uint64_t tok[] = {200, 100, 90, 50, 500};
    for (int i = 0; i < 5; i++) {
        swarmmedic__v1__plan_task__init(&t[i]);
        t[i].task_id = (char *)ids[i];
        t[i].priority = prio[i];
        t[i].tokens_estimated = tok[i];
        tp[i] = &t[i];
    }
    Swarmmedic__V1__PlanRequest q = SWARMMEDIC__V1__PLAN_REQUEST__INIT;
    q.tasks = tp;
    q.n_tasks = 5;
    natsMsg *m = ask(r, "plan", &q.base);
    Swarmmedic__V1__PlanReply *p = swarmmedic__v1__plan_reply__unpack(
        NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    natsMsg_Destroy(m);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(p->budget_remaining, 400);
    ck_assert_uint_eq(p->budget_limit, 360);
    ck_assert_uint_eq(p->tokens_admitted, 340);
    ck_assert_uint_eq(p->n_admitted, 3);
    ck_assert_str_eq(p->admitted[0], "high");
    ck_assert_str_eq(p->admitted[1], "crit");
    ck_assert_str_eq(p->admitted[2], "bg");
    ck_assert_uint_eq(p->n_deferred, 2);
    ck_assert_str_eq(p->deferred[0]->task_id, "med");
    ck_assert_str_eq(p->deferred[0]->reason, "over_budget");
    ck_assert_str_eq(p->deferred[1]->task_id, "low");
    swarmmedic__v1__plan_reply__free_unpacked(p, NULL);
}

static void check_stats(rig *r)
{
    Swarmmedic__V1__StatsRequest q = SWARMMEDIC__V1__STATS_REQUEST__INIT;
    natsMsg *m = ask(r, "stats", &q.base);
    Swarmmedic__V1__StatsReply *s = swarmmedic__v1__stats_reply__unpack(
        NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    natsMsg_Destroy(m);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->swarm, "s1");
    ck_assert_uint_eq(s->n_by_source, 6);
    const char *names[] = {"all", "pattern", "resource_trend", "agent_health",
                           "queue_growth", "bottleneck"};
    uint32_t sum = 0;
    for (int i = 0; i < 6; i++) {
        ck_assert_str_eq(s->by_source[i]->name, names[i]);
        if (i > 0)
            sum += s->by_source[i]->raised;
    }
    ck_assert_uint_eq(s->by_source[0]->raised, sum);
    swarmmedic__v1__stats_reply__free_unpacked(s, NULL);
}

START_TEST(every_endpoint_answers_exactly_and_survives_a_restart)
{
    rig r;
    rig_up(&r);
    feed_vector(&r);
    Swarmmedic__V1__StatusReply *st = status_when_raised(&r);
    ck_assert_str_eq(st->swarm, "s1");
    ck_assert_uint_eq(st->agents, 3);
    ck_assert_uint_eq(st->n_bottlenecks, 1);
    ck_assert_str_eq(st->bottlenecks[0]->kind, "bottleneck");
    ck_assert_str_eq(st->bottlenecks[0]->type, "token_exhaustion");
    ck_assert_int_eq(st->bottlenecks[0]->raised_at_ms, T0 + 15000);
    ck_assert_uint_eq(st->n_commands, 0);
    swarmmedic__v1__status_reply__free_unpacked(st, NULL);
    Swarmmedic__V1__PerformanceReport *p = report_when(&r, 8);
    check_report(p);
    swarmmedic__v1__performance_report__free_unpacked(p, NULL);
    check_select(&r);
    check_plan(&r);
    check_stats(&r);
    published pb;
    bottleneck_id(&r, &pb);
    check_explain(&r, &pb);

    /* from LMDB after a restart: the aggregates and the log */
    stop_worker(&r);
    start_worker(&r);
    p = report_when(&r, 8);
    check_report(p);
    swarmmedic__v1__performance_report__free_unpacked(p, NULL);
    check_explain(&r, &pb);

    /* the next minute's first task closes the interval: the periodic
     * report of [T0, T0 + 1 min) goes out */
    task(&r, T0 + 61000, "a", "search", COMPLETED, 1000);
    bool seen = false;
    for (int i = 0; i < 100 && !seen; i++) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, r.out, 100) != NATS_OK)
            continue;
        if (strcmp(natsMsg_GetSubject(m), "medic.s1.report") == 0) {
            p = swarmmedic__v1__performance_report__unpack(
                NULL, (size_t)natsMsg_GetDataLength(m),
                (const uint8_t *)natsMsg_GetData(m));
            ck_assert_ptr_nonnull(p);
            check_report(p);
            swarmmedic__v1__performance_report__free_unpacked(p, NULL);
            seen = true;
        }
        natsMsg_Destroy(m);
    }
    ck_assert_msg(seen, "no PerformanceReport on medic.s1.report");
    rig_down(&r);
}
END_TEST

/* A conclusion sent before its commit (publish_after_commit off) is in
 * the decision log all the same, before and after a restart. */
START_TEST(explain_finds_conclusions_sent_before_their_commit)
{
    rig r;
    rig_up_with(&r, "--publish-after-commit=false");
    feed_vector(&r);
    Swarmmedic__V1__StatusReply *st = status_when_raised(&r);
    swarmmedic__v1__status_reply__free_unpacked(st, NULL);
    published pb;
    bottleneck_id(&r, &pb);
    check_explain(&r, &pb);
    stop_worker(&r);
    start_worker_with(&r, "--publish-after-commit=false");
    check_explain(&r, &pb);
    rig_down(&r);
}
END_TEST

START_TEST(malformed_requests_get_errors_and_other_swarms_silence)
{
    rig r;
    rig_up(&r);
    feed_vector(&r);
    Swarmmedic__V1__StatusReply *st = status_when_raised(&r);
    swarmmedic__v1__status_reply__free_unpacked(st, NULL);
    static const char junk[] = "\xff\xff\xff\xff\x0f garbage";
    ask_error(&r, "select", junk, sizeof junk - 1, "400");
    ask_error(&r, "report", junk, sizeof junk - 1, "400");
    ask_error(&r, "nope", "", 0, "400");
    Swarmmedic__V1__ExplainRequest e = SWARMMEDIC__V1__EXPLAIN_REQUEST__INIT;
    uint8_t buf[256];
    e.decision_id = "not-an-id";
    ask_error(&r, "explain", buf, protobuf_c_message_pack(&e.base, buf), "400");
    e.decision_id = "00000000000000ff";
    ask_error(&r, "explain", buf, protobuf_c_message_pack(&e.base, buf), "404");
    Swarmmedic__V1__ReportRequest q = SWARMMEDIC__V1__REPORT_REQUEST__INIT;
    q.range_start_ms = T0 + 60000;
    q.range_end_ms = T0;
    ask_error(&r, "report", buf, protobuf_c_message_pack(&q.base, buf), "400");
    Swarmmedic__V1__PlanTask t = SWARMMEDIC__V1__PLAN_TASK__INIT, *tp = &t;
    t.task_id = "x";
    Swarmmedic__V1__PlanRequest pq = SWARMMEDIC__V1__PLAN_REQUEST__INIT;
    pq.tasks = &tp;
    pq.n_tasks = 1;                     /* no priority */
    ask_error(&r, "plan", buf, protobuf_c_message_pack(&pq.base, buf), "400");
    /* a swarm this worker does not hold: no reply at all */
    natsMsg *m = NULL;
    natsStatus s = request(&r, "elsewhere", "status", "", 0, &m, 300);
    ck_assert_int_eq(s, NATS_TIMEOUT);
    /* and the events kept flowing: the worker still answers */
    check_select(&r);
    rig_down(&r);
}
END_TEST

/* ---- $SRV --------------------------------------------------------------- */

static json_t *srv(rig *r, const char *subject)
{
    natsMsg *m = NULL;
    ck_assert_int_eq(natsConnection_RequestString(&m, r->nc, subject, "", WAIT_MS),
                     NATS_OK);
    json_error_t err;
    json_t *j = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0,
                           &err);
    ck_assert_msg(j != NULL, "%s: not JSON: %s", subject, err.text);
    natsMsg_Destroy(m);
    return j;
}

static const char *str_of(json_t *j, const char *key)
{
    const char *v = json_string_value(json_object_get(j, key));
    ck_assert_msg(v != NULL, "no string %s", key);
    return v;
}

START_TEST(srv_discovery_lists_the_worker_and_its_endpoints)
{
    rig r;
    rig_up(&r);
    json_t *ping = srv(&r, "$SRV.PING");
    ck_assert_str_eq(str_of(ping, "type"), "io.nats.micro.v1.ping_response");
    ck_assert_str_eq(str_of(ping, "name"), "swarm-medic");
    ck_assert_str_eq(str_of(ping, "version"), "1.0.0");
    char id[64];
    snprintf(id, sizeof id, "%s", str_of(ping, "id"));
    ck_assert_uint_gt(strlen(id), 0);
    json_decref(ping);

    json_t *info = srv(&r, "$SRV.INFO.swarm-medic");
    ck_assert_str_eq(str_of(info, "type"), "io.nats.micro.v1.info_response");
    ck_assert_str_eq(str_of(info, "id"), id);
    json_t *eps = json_object_get(info, "endpoints");
    ck_assert_uint_eq(json_array_size(eps), 6);
    const char *names[] = {"report", "stats", "select", "plan", "explain", "status"};
    for (size_t i = 0; i < 6; i++) {
        json_t *e = json_array_get(eps, i);
        char want[64];
        snprintf(want, sizeof want, "medic.*.api.%s", names[i]);
        ck_assert_str_eq(str_of(e, "name"), names[i]);
        ck_assert_str_eq(str_of(e, "subject"), want);
    }
    json_decref(info);

    /* two good selects and one bad one, then the stats by id */
    feed_vector(&r);
    Swarmmedic__V1__StatusReply *st = status_when_raised(&r);
    swarmmedic__v1__status_reply__free_unpacked(st, NULL);
    check_select(&r);
    check_select(&r);
    ask_error(&r, "select", "\xff", 1, "400");
    char subject[128];
    snprintf(subject, sizeof subject, "$SRV.STATS.swarm-medic.%s", id);
    json_t *stats = srv(&r, subject);
    ck_assert_str_eq(str_of(stats, "type"), "io.nats.micro.v1.stats_response");
    ck_assert_uint_gt(strlen(str_of(stats, "started")), 0);
    eps = json_object_get(stats, "endpoints");
    ck_assert_uint_eq(json_array_size(eps), 6);
    json_t *sel = json_array_get(eps, 2);
    ck_assert_str_eq(str_of(sel, "name"), "select");
    ck_assert_int_eq(json_integer_value(json_object_get(sel, "num_requests")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(sel, "num_errors")), 1);
    ck_assert_str_eq(str_of(sel, "last_error"), "400:undecodable SelectRequest");
    ck_assert_int_gt(json_integer_value(json_object_get(sel, "processing_time")), 0);
    ck_assert_int_gt(json_integer_value(json_object_get(sel, "average_processing_time")), 0);
    json_t *stat = json_array_get(eps, 5);
    ck_assert_str_eq(str_of(stat, "name"), "status");
    ck_assert_int_ge(json_integer_value(json_object_get(stat, "num_requests")), 1);
    json_decref(stats);
    /* another id: nobody answers */
    natsMsg *m = NULL;
    ck_assert_int_ne(natsConnection_RequestString(&m, r.nc,
                                                  "$SRV.PING.swarm-medic.NOTUS", "",
                                                  300), NATS_OK);
    rig_down(&r);
}
END_TEST

/* ---- healing: commands in flight, analytics, explain -------------------- */

/* The Nats-Msg-Id of the first message on a subject starting with prefix. */
static void first_id(rig *r, const char *prefix, char id[17])
{
    for (int i = 0; i < 100; i++) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, r->out, 100) != NATS_OK)
            continue;
        const char *v = NULL;
        bool hit = strncmp(natsMsg_GetSubject(m), prefix, strlen(prefix)) == 0 &&
                   natsMsgHeader_Get(m, "Nats-Msg-Id", &v) == NATS_OK;
        if (hit)
            snprintf(id, 17, "%s", v);
        natsMsg_Destroy(m);
        if (hit)
            return;
    }
    ck_abort_msg("nothing on %s", prefix);
}

START_TEST(healing_commands_show_in_status_stats_and_explain)
{
    rig r;
    rig_up(&r);
    /* agent x beats twice, then goes silent while the swarm's clock moves
     * on: agent_down, and a restart command answering it */
    beat(&r, T0, "x", 0);
    beat(&r, T0 + 1, "x", 0);
    for (int64_t t = 10000; t <= 60000; t += 10000)
        usage(&r, T0 + t, 100, 10000);
    char failure[17], command[17];
    first_id(&r, "medic.s1.failure.agent_down", failure);
    first_id(&r, "medic.s1.heal.agent_restart", command);
    Swarmmedic__V1__StatusRequest q = SWARMMEDIC__V1__STATUS_REQUEST__INIT;
    natsMsg *m = ask(&r, "status", &q.base);
    Swarmmedic__V1__StatusReply *st = swarmmedic__v1__status_reply__unpack(
        NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    natsMsg_Destroy(m);
    ck_assert_ptr_nonnull(st);
    ck_assert_uint_eq(st->n_failures, 1);
    ck_assert_str_eq(st->failures[0]->type, "agent_down");
    ck_assert_uint_eq(st->n_commands, 1);
    ck_assert_str_eq(st->commands[0]->kind, "command");
    ck_assert_str_eq(st->commands[0]->type, "agent_restart");
    ck_assert_str_eq(st->commands[0]->subject, "x");
    ck_assert_str_eq(st->commands[0]->id, command);
    ck_assert_str_eq(st->commands[0]->answers, failure);
    ck_assert_int_gt(st->commands[0]->eta_ms, T0);
    swarmmedic__v1__status_reply__free_unpacked(st, NULL);

    Swarmmedic__V1__StatsRequest sq = SWARMMEDIC__V1__STATS_REQUEST__INIT;
    m = ask(&r, "stats", &sq.base);
    Swarmmedic__V1__StatsReply *s = swarmmedic__v1__stats_reply__unpack(
        NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    natsMsg_Destroy(m);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->healings, 1);
    ck_assert_uint_eq(s->n_healing_by_action, 2);
    ck_assert_str_eq(s->healing_by_action[0]->name, "all");
    ck_assert_str_eq(s->healing_by_action[1]->name, "agent_restart");
    ck_assert_uint_eq(s->healing_by_action[1]->commands, 1);
    ck_assert_uint_eq(s->healing_by_action[1]->verified, 0);    /* in flight */
    ck_assert_uint_eq(s->n_healing_by_type, 1);
    ck_assert_str_eq(s->healing_by_type[0]->name, "agent_down");
    ck_assert_uint_eq(s->n_healing_by_strategy, 1);
    swarmmedic__v1__stats_reply__free_unpacked(s, NULL);

    Swarmmedic__V1__ExplainRequest e = SWARMMEDIC__V1__EXPLAIN_REQUEST__INIT;
    e.decision_id = command;
    m = ask(&r, "explain", &e.base);
    Swarmmedic__V1__DecisionRecord *d = swarmmedic__v1__decision_record__unpack(
        NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    natsMsg_Destroy(m);
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(d->kind, "heal");
    ck_assert_str_eq(d->type, "agent_restart");
    ck_assert_str_eq(d->subject, "x");
    swarmmedic__v1__decision_record__free_unpacked(d, NULL);
    rig_down(&r);
}
END_TEST

/* ---- scaling ------------------------------------------------------------- */

static void lifecycle(rig *r, int64_t ts, const char *agent)
{
    Swarmmedic__V1__AgentLifecycle a = SWARMMEDIC__V1__AGENT_LIFECYCLE__INIT;
    char subject[128];
    a.ts_ms = ts;
    a.agent = (char *)agent;
    a.kind = SWARMMEDIC__V1__AGENT_LIFECYCLE__KIND__KIND_REGISTERED;
    a.dynamic = true;
    snprintf(subject, sizeof subject, "swarm.s1.agent.%s", agent);
    pub(r, subject, &a.base);
}

static void queue_sample(rig *r, int64_t ts, uint32_t pending, uint32_t active)
{
    Swarmmedic__V1__PendingByPriority p = SWARMMEDIC__V1__PENDING_BY_PRIORITY__INIT;
    Swarmmedic__V1__PendingByPriority *pp = &p;
    p.priority = SWARMMEDIC__V1__PRIORITY__PRIORITY_HIGH;
    p.count = pending;
    Swarmmedic__V1__ResourceSample s = SWARMMEDIC__V1__RESOURCE_SAMPLE__INIT;
    s.ts_ms = ts;
    s.source = "coord";
    s.pending = &pp;
    s.n_pending = 1;
    s.active_agents = active;
    pub(r, "swarm.s1.resource.coord", &s.base);
}

static Swarmmedic__V1__ScalingDecision *next_scale(rig *r, char id[17])
{
    for (int i = 0; i < 100; i++) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, r->out, 100) != NATS_OK)
            continue;
        Swarmmedic__V1__ScalingDecision *d = NULL;
        const char *v = NULL;
        if (strcmp(natsMsg_GetSubject(m), "medic.s1.scale") == 0 &&
            natsMsgHeader_Get(m, "Nats-Msg-Id", &v) == NATS_OK) {
            snprintf(id, 17, "%s", v);
            d = swarmmedic__v1__scaling_decision__unpack(
                NULL, (size_t)natsMsg_GetDataLength(m),
                (const uint8_t *)natsMsg_GetData(m));
        }
        natsMsg_Destroy(m);
        if (d)
            return d;
    }
    ck_abort_msg("no ScalingDecision on medic.s1.scale");
    return NULL;
}

START_TEST(scaling_decisions_go_out_up_then_down_by_idle_dynamic_agents)
{
    rig r;
    memset(&r, 0, sizeof r);
    sm_test_server_start(&r.srv, 0, NULL);
    sm_test_tmpdir(r.dir, sizeof r.dir, "svc");
    snprintf(r.store, sizeof r.store, "%s/data", r.dir);
    start_worker_with(&r, "--scaling=true");
    ck_assert_int_eq(natsConnection_ConnectTo(&r.nc, r.srv.url), NATS_OK);
    ck_assert_int_eq(natsConnection_SubscribeSync(&r.out, r.nc, "medic.s1.>"), NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(r.nc, 2000), NATS_OK);
    lifecycle(&r, T0, "d2");
    lifecycle(&r, T0 + 1, "d1");
    beat(&r, T0 + 2, "d1", 0);
    beat(&r, T0 + 3, "d2", 0);
    queue_sample(&r, T0 + 1000, 75, 10);
    char id[17];
    Swarmmedic__V1__ScalingDecision *d = next_scale(&r, id);
    ck_assert_int_eq(d->direction, SWARMMEDIC__V1__SCALING_DECISION__DIRECTION__DIRECTION_UP);
    ck_assert_uint_eq(d->current_agents, 10);
    ck_assert_uint_eq(d->target_agents, 13);
    ck_assert_str_eq(d->reason, "queue_backlog");
    ck_assert_int_eq(d->cooldown_until_ms, T0 + 21000);
    ck_assert_str_eq(d->decision->decision_id, id);
    ck_assert_str_eq(d->decision->evidence->subject, "swarm.s1.resource.coord");
    swarmmedic__v1__scaling_decision__free_unpacked(d, NULL);
    /* drained, inside the cooldown and the window: nothing; after the
     * window: one of the two idle dynamic agents, the first by id */
    for (int64_t t = 10000; t <= 60000; t += 10000) {   /* alive, idle */
        beat(&r, T0 + t, "d1", 0);
        beat(&r, T0 + t + 1, "d2", 0);
        if (t == 30000)
            queue_sample(&r, T0 + t + 2, 2, 13);
    }
    queue_sample(&r, T0 + 62000, 2, 13);
    d = next_scale(&r, id);
    ck_assert_int_eq(d->direction, SWARMMEDIC__V1__SCALING_DECISION__DIRECTION__DIRECTION_DOWN);
    ck_assert_uint_eq(d->target_agents, 12);
    ck_assert_uint_eq(d->n_remove_agents, 1);
    ck_assert_str_eq(d->remove_agents[0], "d1");
    ck_assert_int_eq(d->decision->decided_at_ms, T0 + 62000);
    swarmmedic__v1__scaling_decision__free_unpacked(d, NULL);
    rig_down(&r);
}
END_TEST

/* ---- retention, on the service store alone -------------------------------- */

/* One group commit as the persister makes it: the retention pass, then the
 * extra writer inside a batch, then done. */
static void commit_once(sm_svcstore *ss, sm_store *st)
{
    sm_svcstore_before_commit(ss);
    ck_assert_int_eq(sm_store_begin(st), SM_OK);
    ck_assert_int_eq(sm_svcstore_write(ss, st), SM_OK);
    ck_assert_int_eq(sm_store_commit(st), SM_OK);
    sm_svcstore_done(ss, true);
}

static void log_one(sm_svcstore *ss, uint64_t id, int64_t at)
{
    sm_decision d;
    memset(&d, 0, sizeof d);
    d.kind = SM_DEC_BOTTLENECK;
    d.id = id;
    d.at_ms = at;
    snprintf(d.swarm, sizeof d.swarm, "s1");
    d.bn.type = SM_BN_QUEUE_BACKLOG;
    d.bn.transition = SM_TR_RAISED;
    d.bn.severity = SM_SEV_HIGH;
    d.bn.reason = "pending_tasks";
    ck_assert_int_eq(sm_svcstore_log(ss, &d, 1), SM_OK);
}

static bool logged(sm_svcstore *ss, uint64_t id)
{
    const uint8_t *buf;
    size_t len;
    sm_status s = sm_svcstore_explain(ss, id, &buf, &len);
    ck_assert(s == SM_OK || s == SM_ERR_NOT_FOUND);
    return s == SM_OK;
}

/* A batch prepared for the commit thread (or written in a commit window)
 * takes the log records when it is recorded (done), before they are in
 * the store: explain still finds them then, and from the store after. */
START_TEST(decision_log_explains_a_batch_in_flight)
{
    char dir[256];
    sm_test_tmpdir(dir, sizeof dir, "svcstore");
    sm_store_config sc = {.dir = dir, .map_size = 4 << 20, .map_max = 4 << 20};
    sm_store *st = NULL, *log = NULL;
    ck_assert_int_eq(sm_store_open(&st, &sc, NULL, 0), SM_OK);
    ck_assert_int_eq(sm_store_log_open(&log), SM_OK);
    sm_svcstore_config cfg = {.perf_retention_ms = 10 * 60000,
                              .decision_log_max = 100,
                              .decision_log_age_ms = 3600000};
    sm_svcstore *ss = NULL;
    ck_assert_int_eq(sm_svcstore_create(&ss, st, &cfg), SM_OK);
    log_one(ss, 7, T0);
    sm_svcstore_before_commit(ss);
    ck_assert_int_eq(sm_store_begin(log), SM_OK);      /* sm_persist_prepare */
    ck_assert_int_eq(sm_svcstore_write(ss, log), SM_OK);
    ck_assert_int_eq(sm_store_commit(log), SM_OK);
    sm_svcstore_done(ss, true);
    ck_assert(logged(ss, 7));                           /* in flight */
    ck_assert_int_eq(sm_store_apply(st, log, NULL, NULL), SM_OK);
    log_one(ss, 8, T0 + 1000);
    commit_once(ss, st);                                /* the next batch */
    ck_assert(logged(ss, 7) && logged(ss, 8));          /* from the store */
    sm_svcstore_destroy(ss);
    sm_store_close(log);
    sm_store_close(st);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(decision_log_and_aggregates_keep_their_bounds)
{
    char dir[256];
    sm_test_tmpdir(dir, sizeof dir, "svcstore");
    sm_store_config sc = {.dir = dir, .map_size = 4 << 20, .map_max = 4 << 20};
    sm_store *st = NULL;
    ck_assert_int_eq(sm_store_open(&st, &sc, NULL, 0), SM_OK);
    sm_svcstore_config cfg = {.perf_retention_ms = 10 * 60000,
                              .decision_log_max = 3,
                              .decision_log_age_ms = 3600000};
    sm_svcstore *ss = NULL;
    ck_assert_int_eq(sm_svcstore_create(&ss, st, &cfg), SM_OK);
    /* five decisions, one per commit: the log keeps the newest three */
    for (uint64_t id = 1; id <= 5; id++) {
        log_one(ss, id, T0 + (int64_t)id * 1000);
        commit_once(ss, st);
    }
    sm_svcstore_stats stats;
    sm_svcstore_stats_get(ss, &stats);
    ck_assert_uint_eq(stats.log_count, 3);
    ck_assert_uint_eq(stats.log_expired, 2);
    ck_assert(!logged(ss, 1) && !logged(ss, 2));
    ck_assert(logged(ss, 3) && logged(ss, 4) && logged(ss, 5));
    /* and a reopened store counts what it holds */
    sm_svcstore *again = NULL;
    ck_assert_int_eq(sm_svcstore_create(&again, st, &cfg), SM_OK);
    ck_assert_int_eq(sm_svcstore_load(again), SM_OK);
    sm_svcstore_stats_get(again, &stats);
    ck_assert_uint_eq(stats.log_count, 3);
    sm_svcstore_destroy(again);

    /* a task at minute 0 and one at minute 20: with 10 minutes kept, a
     * late one for minute 1 is refused and minute 0 goes at the next
     * retention pass */
    sm_task_event ev = {.ts_ms = T0, .agent = "a", .task_type = "x",
                        .kind = SM_TASK_COMPLETED, .duration_ms = 500};
    ck_assert_int_eq(sm_svcstore_on_task(ss, "s1", &ev), SM_OK);
    commit_once(ss, st);
    ev.ts_ms = T0 + 20 * 60000;
    ck_assert_int_eq(sm_svcstore_on_task(ss, "s1", &ev), SM_OK);
    ev.ts_ms = T0 + 60000;
    ck_assert_int_eq(sm_svcstore_on_task(ss, "s1", &ev), SM_OK);
    sm_svcstore_stats_get(ss, &stats);
    ck_assert_uint_eq(stats.too_old, 1);
    sm_report *rep = malloc(sizeof *rep);
    ck_assert_int_eq(sm_svcstore_report(ss, "s1", T0, T0 + 30 * 60000, NULL, rep),
                     SM_OK);
    ck_assert_uint_eq(rep->all.count, 2);
    for (int i = 0; i < 64; i++)    /* a retention pass comes within 64 */
        commit_once(ss, st);
    ck_assert_int_eq(sm_svcstore_report(ss, "s1", T0, T0 + 30 * 60000, NULL, rep),
                     SM_OK);
    ck_assert_uint_eq(rep->all.count, 1);
    ck_assert_uint_eq(rep->n_points, 12);   /* 30 minutes in 12 segments */
    ck_assert_int_eq(rep->pts[0].start_ms, T0);
    ck_assert_uint_eq(rep->pts[8].count, 1);    /* minute 20 of 30 */
    sm_svcstore_stats_get(ss, &stats);
    ck_assert_uint_eq(stats.rows_expired, 1);
    free(rep);
    sm_svcstore_destroy(ss);
    sm_store_close(st);
    sm_test_rmtree(dir);
}
END_TEST

/* ---- who says "busy" ------------------------------------------------------ */

/* Partitions 0 and 1 of 2 by name: this worker owns the swarms whose
 * name starts with 'm'. */
static bool owns_m(const void *ud, const char *swarm)
{
    (void)ud;
    return swarm[0] == 'm';
}

static sm_status no_publish(void *ud, const char *subject, const void *data,
                            size_t len, const char *const *headers)
{
    (void)ud, (void)subject, (void)data, (void)len, (void)headers;
    return SM_OK;
}

/* The delivery thread answers "busy" (503) only for a swarm this worker
 * owns: with partitions, another worker's "busy" would reach the asker
 * before the owner's answer. Unpartitioned, every request is its own. */
START_TEST(busy_is_said_only_for_owned_swarms)
{
    sm_config cfg;
    ck_assert_int_eq(sm_config_init(&cfg), SM_OK);
    sm_registry *reg = NULL;
    ck_assert_int_eq(sm_registry_create(&reg, &cfg.detect), SM_OK);
    sm_log lg = {.out = stderr, .level = SM_LOG_ERROR};
    sm_sink sink = {.publish = no_publish};
    sm_service *svc = NULL;
    ck_assert_int_eq(sm_service_create(&svc, &cfg, &lg, reg, &sink), SM_OK);
    ck_assert(!sm_service_elsewhere(svc, "medic.x1.api.status"));  /* no partitions */
    sm_service_set_owner(svc, owns_m, NULL);
    ck_assert(sm_service_elsewhere(svc, "medic.x1.api.status"));
    ck_assert(!sm_service_elsewhere(svc, "medic.m1.api.status"));
    ck_assert(!sm_service_elsewhere(svc, "medic.m1.api.nope"));    /* its 400 */
    ck_assert(!sm_service_elsewhere(svc, "other.x1.api.status"));  /* no swarm */
    ck_assert(!sm_service_elsewhere(svc, "medic.x1.status"));
    sm_service_destroy(svc);
    sm_registry_destroy(reg);
    sm_config_free(&cfg);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("service");
    TCase *tc = tcase_create("bus");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, every_endpoint_answers_exactly_and_survives_a_restart);
    tcase_add_test(tc, explain_finds_conclusions_sent_before_their_commit);
    tcase_add_test(tc, malformed_requests_get_errors_and_other_swarms_silence);
    tcase_add_test(tc, srv_discovery_lists_the_worker_and_its_endpoints);
    tcase_add_test(tc, scaling_decisions_go_out_up_then_down_by_idle_dynamic_agents);
    tcase_add_test(tc, healing_commands_show_in_status_stats_and_explain);
    suite_add_tcase(s, tc);
    TCase *st = tcase_create("store");
    tcase_set_timeout(st, 60);
    tcase_add_test(st, decision_log_and_aggregates_keep_their_bounds);
    tcase_add_test(st, decision_log_explains_a_batch_in_flight);
    tcase_add_test(st, busy_is_said_only_for_owned_swarms);
    suite_add_tcase(s, st);
    return s;
}

int main(void)
{
    return sm_run_suite(suite());
}
