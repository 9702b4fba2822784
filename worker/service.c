/*
 * service.c - the request/reply endpoints (service.h): one short handler
 * per verb, each decoding its request, asking the core (core/query.h,
 * the ledger) or the service store, and packing its reply. Runs on the
 * worker thread.
 */
#include "service_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "hash.h"
#include "query.h"
#include "strategies.h"
#include "report.h"
#include "swarm_medic.pb-c.h"

const char *const sm_endpoint_names[EP_COUNT] = {
    [EP_REPORT] = "report", [EP_STATS] = "stats", [EP_SELECT] = "select",
    [EP_PLAN] = "plan", [EP_EXPLAIN] = "explain", [EP_STATUS] = "status",
};

#define DEFAULT_RANGE_MS (60 * 60 * 1000)
#define MAX_CANDIDATES 1024
#define MAX_PLAN_TASKS 4096
#define SELECT_TOP 16
#define STATUS_MAX 256

/* What a handler says: 0 and the reply packed into svc->out, or an error
 * code and sentence. */
typedef struct answer {
    int code;
    const char *text;
    size_t len;
    const uint8_t *data;        /* NULL: svc->out */
} answer;

static answer fail(int code, const char *text)
{
    return (answer){.code = code, .text = text};
}

static void tally(sm_service *svc, uint64_t *field);

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

sm_status sm_service_create(sm_service **out, const sm_config *cfg,
                            const sm_log *log, sm_registry *reg,
                            const sm_sink *sink)
{
    if (!out || !cfg || !log || !reg || !sink)
        return SM_ERR_INVALID;
    sm_service *svc = calloc(1, sizeof *svc);
    if (!svc)
        return SM_ERR_NOMEM;
    svc->cfg = cfg;
    svc->log = log;
    svc->reg = reg;
    svc->sink = sink;
    pthread_mutex_init(&svc->mu, NULL);
    pthread_mutex_init(&svc->state_mu, NULL);
    pthread_mutex_init(&svc->wmu, NULL);
    pthread_cond_init(&svc->wcv, NULL);
    sm_svcstore_config sc = {
        .perf_retention_ms = cfg->perf_retention_ms,
        .decision_log_max = cfg->decision_log_max,
        .decision_log_age_ms = cfg->decision_log_age_ms,
    };
    svc->report = malloc(sizeof *svc->report);
    sm_status s = svc->report ? sm_svcstore_create(&svc->ss, NULL, &sc)
                              : SM_ERR_NOMEM;
    if (s != SM_OK) {
        sm_service_destroy(svc);
        return s;
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(svc->started, sizeof svc->started, "%Y-%m-%dT%H:%M:%SZ", &tm);
    /* an instance id: 16 hex digits of the start time, pid and address */
    uint64_t h = sm_hash_u64(SM_HASH_INIT, (uint64_t)mono_ns());
    h = sm_hash_u64(h, (uint64_t)now);
    h = sm_hash_u64(h, (uint64_t)(uintptr_t)svc);
    snprintf(svc->id, sizeof svc->id, "%016llX", (unsigned long long)h);
    *out = svc;
    return SM_OK;
}

void sm_service_destroy(sm_service *svc)
{
    if (!svc)
        return;
    sm_service_serve_stop(svc);
    sm_srv_unsubscribe(svc);
    sm_svcstore_destroy(svc->ss);
    pthread_mutex_destroy(&svc->mu);
    pthread_mutex_destroy(&svc->state_mu);
    pthread_mutex_destroy(&svc->wmu);
    pthread_cond_destroy(&svc->wcv);
    free(svc->report);
    free(svc->out);
    free(svc->clocks);
    free(svc);
}

/* ---- commit windows ------------------------------------------------------ */

static sm_status extra_write(void *ud, sm_store *st)
{
    sm_service *svc = ud;
    return sm_svcstore_write(svc->ss, st);
}

static void extra_done(void *ud, bool committed)
{
    sm_service *svc = ud;
    sm_svcstore_done(svc->ss, committed);
}

void sm_service_wake(sm_service *svc)
{
    pthread_mutex_lock(&svc->wmu);
    if (svc->window)
        pthread_cond_signal(&svc->wcv);
    pthread_mutex_unlock(&svc->wmu);
}

/* The worker enters a commit: it lets go of the state. */
static void window_open(void *ud)
{
    sm_service *svc = ud;
    if (!svc->serving)
        return;
    pthread_mutex_lock(&svc->wmu);
    svc->window = true;
    pthread_cond_signal(&svc->wcv);
    pthread_mutex_unlock(&svc->wmu);
    pthread_mutex_unlock(&svc->state_mu);
}

/* The commit is over: the worker takes the state back (after the request
 * being answered, if any). */
static void window_close(void *ud)
{
    sm_service *svc = ud;
    if (!svc->serving)
        return;
    pthread_mutex_lock(&svc->wmu);
    svc->window = false;
    pthread_mutex_unlock(&svc->wmu);
    pthread_mutex_lock(&svc->state_mu);
}

/* The window thread: answers one waiting request at a time while a
 * window is open. */
static void *window_main(void *arg)
{
    sm_service *svc = arg;
    pthread_mutex_lock(&svc->wmu);
    for (;;) {
        while (!svc->quit && !(svc->window && sm_inbox_urgent_waiting(svc->ib)))
            pthread_cond_wait(&svc->wcv, &svc->wmu);
        if (svc->quit)
            break;
        pthread_mutex_unlock(&svc->wmu);
        pthread_mutex_lock(&svc->state_mu);
        sm_item it;
        if (sm_inbox_pop_urgent(svc->ib, &it, 1) == 1) {
            sm_service_handle(svc, &it);
            sm_item_release(&it);
            tally(svc, &svc->st.in_commit);
        }
        pthread_mutex_unlock(&svc->state_mu);
        pthread_mutex_lock(&svc->wmu);
    }
    pthread_mutex_unlock(&svc->wmu);
    return NULL;
}

sm_status sm_service_serve_start(sm_service *svc)
{
    if (svc->serving || !svc->ib)
        return SM_OK;           /* no bus: nothing to answer */
    pthread_mutex_lock(&svc->state_mu);
    svc->quit = false;
    if (pthread_create(&svc->window_thread, NULL, window_main, svc) != 0) {
        pthread_mutex_unlock(&svc->state_mu);
        return SM_ERR_NOMEM;
    }
    svc->serving = true;
    return SM_OK;
}

void sm_service_serve_stop(sm_service *svc)
{
    if (!svc->serving)
        return;
    pthread_mutex_lock(&svc->wmu);
    svc->quit = true;
    pthread_cond_signal(&svc->wcv);
    pthread_mutex_unlock(&svc->wmu);
    pthread_join(svc->window_thread, NULL);
    svc->serving = false;
    pthread_mutex_unlock(&svc->state_mu);
    sm_service_stats st;
    sm_service_stats_get(svc, &st);
    sm_log_write(svc->log, SM_LOG_INFO, "service_stats",
                 "requests=%llu errors=%llu not_owned=%llu no_reply=%llu busy=%llu "
                 "in_commit=%llu reports=%llu", (unsigned long long)st.requests,
                 (unsigned long long)st.errors, (unsigned long long)st.not_owned,
                 (unsigned long long)st.no_reply, (unsigned long long)st.busy,
                 (unsigned long long)st.in_commit, (unsigned long long)st.reports);
}

sm_status sm_service_attach_store(sm_service *svc, sm_store *st,
                                  sm_persist_extra *extra)
{
    sm_svcstore_config sc = {
        .perf_retention_ms = svc->cfg->perf_retention_ms,
        .decision_log_max = svc->cfg->decision_log_max,
        .decision_log_age_ms = svc->cfg->decision_log_age_ms,
    };
    sm_svcstore *ss;
    sm_status s = sm_svcstore_create(&ss, st, &sc);
    if (s == SM_OK)
        s = sm_svcstore_load(ss);
    if (s != SM_OK) {
        sm_svcstore_destroy(ss);
        return s;
    }
    sm_svcstore_destroy(svc->ss);
    svc->ss = ss;
    *extra = (sm_persist_extra){
        .write = extra_write, .done = extra_done, .sync_begin = window_open,
        .sync_end = window_close, .ud = svc,
    };
    return SM_OK;
}

sm_status sm_service_connect(sm_service *svc, sm_bus *bus, sm_inbox *ib)
{
    svc->ib = ib;
    return sm_srv_subscribe(svc, bus);
}

const char *sm_service_id(const sm_service *svc)
{
    return svc->id;
}

bool sm_service_owns(const sm_service *svc, const char *swarm)
{
    /* a swarm of a partition another worker took may still be in our
     * registry (frozen since): that worker answers for it */
    return sm_registry_find(svc->reg, swarm) != NULL &&
           (!svc->owner || svc->owner(svc->owner_ud, swarm));
}

void sm_service_set_owner(sm_service *svc, sm_service_owner_fn owns,
                          const void *ud)
{
    svc->owner = owns;
    svc->owner_ud = ud;
}

void sm_service_stats_get(sm_service *svc, sm_service_stats *out)
{
    pthread_mutex_lock(&svc->mu);
    *out = svc->st;
    pthread_mutex_unlock(&svc->mu);
}

/* ---- replies ------------------------------------------------------------ */

void sm_service_reply_error(const sm_service *svc, const char *reply, int code,
                            const char *text)
{
    char c[16];
    snprintf(c, sizeof c, "%d", code);
    const char *h[] = {"Nats-Service-Error", text, "Nats-Service-Error-Code", c,
                       NULL};
    (void)svc->sink->publish(svc->sink->ud, reply, "", 0, h);
}

/* Packs msg into svc->out. */
static answer pack(sm_service *svc, const ProtobufCMessage *msg)
{
    size_t need = protobuf_c_message_get_packed_size(msg);
    if (need > svc->out_cap) {
        size_t cap = need < 4096 ? 4096 : 2 * need;
        uint8_t *b = realloc(svc->out, cap);
        if (!b)
            return fail(500, "out of memory packing the reply");
        svc->out = b;
        svc->out_cap = cap;
    }
    return (answer){.len = protobuf_c_message_pack(msg, svc->out)};
}

/* ---- report ------------------------------------------------------------- */

static double mean_of(uint64_t sum, uint64_t n)
{
    return n ? (double)sum / (double)n : 0.0;
}

/* Trends of a series of points, in time order (oldest first). */
static void trends(const sm_report_point *pts, size_t n, int *dur, int *succ)
{
    double x[SM_REPORT_POINTS], yd[SM_REPORT_POINTS], ys[SM_REPORT_POINTS],
        w[SM_REPORT_POINTS];
    for (size_t i = 0; i < n; i++) {
        x[i] = (double)pts[i].start_ms;
        w[i] = (double)pts[i].count;
        yd[i] = mean_of(pts[i].sum_ms, pts[i].count);
        ys[i] = mean_of(pts[i].ok, pts[i].count);
    }
    *dur = (int)sm_perf_trend(x, yd, w, n, true);
    *succ = (int)sm_perf_trend(x, ys, w, n, false);
}

typedef struct report_pb {
    Swarmmedic__V1__PerformanceReport r;
    Swarmmedic__V1__Decision d;
    char id[17];
    Swarmmedic__V1__TypeReport types[SM_SVCSTORE_TYPES];
    Swarmmedic__V1__TypeReport *tp[SM_SVCSTORE_TYPES];
    Swarmmedic__V1__ReportPoint pts[SM_REPORT_POINTS];
    Swarmmedic__V1__ReportPoint *pp[SM_REPORT_POINTS];
} report_pb;

static void fill_type(Swarmmedic__V1__TypeReport *t, const sm_report_type *rt)
{
    const sm_perf_row *a = &rt->all;
    swarmmedic__v1__type_report__init(t);
    t->task_type = (char *)rt->name;
    t->task_count = a->count;
    t->mean_duration_ms = mean_of(a->sum_ms, a->count);
    t->p50_duration_ms = sm_perf_quantile(a, 0.50);
    t->p95_duration_ms = sm_perf_quantile(a, 0.95);
    t->p99_duration_ms = sm_perf_quantile(a, 0.99);
    t->tokens_per_task = mean_of(a->tokens, a->count);
    t->success_rate = mean_of(a->ok, a->count);
    int dur, succ;
    trends(rt->pts, SM_REPORT_POINTS, &dur, &succ);
    t->duration_trend = dur;
    t->success_trend = succ;
}

/* Builds the PerformanceReport of rep into *pb (pointers into pb). */
static void fill_report(report_pb *pb, const char *swarm, int64_t at_ms,
                        const sm_report *rep)
{
    const sm_perf_row *a = &rep->all;
    Swarmmedic__V1__PerformanceReport *r = &pb->r;
    swarmmedic__v1__performance_report__init(r);
    swarmmedic__v1__decision__init(&pb->d);
    uint64_t h = sm_hash_str(SM_HASH_INIT, "report");
    h = sm_hash_str(h, swarm);
    h = sm_hash_u64(sm_hash_u64(h, (uint64_t)rep->start_ms), (uint64_t)rep->end_ms);
    sm_decision_id_hex(h, pb->id, sizeof pb->id);
    pb->d.decision_id = pb->id;
    pb->d.swarm = (char *)swarm;
    pb->d.decided_at_ms = at_ms;
    r->decision = &pb->d;
    r->range_start_ms = rep->start_ms;
    r->range_end_ms = rep->end_ms;
    r->task_count = a->count;
    r->tasks_failed = a->count - a->ok;
    r->mean_duration_ms = mean_of(a->sum_ms, a->count);
    r->p50_duration_ms = sm_perf_quantile(a, 0.50);
    r->p95_duration_ms = sm_perf_quantile(a, 0.95);
    r->p99_duration_ms = sm_perf_quantile(a, 0.99);
    r->tokens_per_task = mean_of(a->tokens, a->count);
    r->success_rate = mean_of(a->ok, a->count);
    r->percentile_error = SM_PERF_ERROR;
    int dur, succ;
    trends(rep->pts, rep->n_points, &dur, &succ);
    r->duration_trend = dur;
    r->success_trend = succ;
    for (size_t i = 0; i < rep->n_types; i++) {
        fill_type(&pb->types[i], &rep->types[i]);
        pb->tp[i] = &pb->types[i];
    }
    r->n_types = rep->n_types;
    r->types = pb->tp;
    for (size_t i = 0; i < rep->n_points; i++) {
        Swarmmedic__V1__ReportPoint *p = &pb->pts[i];
        swarmmedic__v1__report_point__init(p);
        p->start_ms = rep->pts[i].start_ms;
        p->task_count = rep->pts[i].count;
        p->mean_duration_ms = mean_of(rep->pts[i].sum_ms, rep->pts[i].count);
        p->success_rate = mean_of(rep->pts[i].ok, rep->pts[i].count);
        pb->pp[i] = p;
    }
    r->n_points = rep->n_points;
    r->points = pb->pp;
}

static answer on_report(sm_service *svc, const sm_swarm *sw, const sm_item *it)
{
    Swarmmedic__V1__ReportRequest *q =
        swarmmedic__v1__report_request__unpack(NULL, it->len, it->data);
    if (!q)
        return fail(400, "undecodable ReportRequest");
    int64_t end = q->range_end_ms ? q->range_end_ms : sm_swarm_now(sw) + 1;
    int64_t start = q->range_start_ms ? q->range_start_ms : end - DEFAULT_RANGE_MS;
    const char *type = q->task_type && q->task_type[0] ? q->task_type : NULL;
    answer a;
    if (end <= start || start < 0 || end - start > svc->cfg->perf_retention_ms +
                                                       SM_MINUTE_MS) {
        a = fail(400, "range_start_ms must be before range_end_ms, within "
                      "perf_retention");
    } else if (sm_svcstore_report(svc->ss, sm_swarm_id(sw), start, end, type,
                                  svc->report) != SM_OK) {
        a = fail(500, "could not read the aggregates");
    } else {
        report_pb pb;
        fill_report(&pb, sm_swarm_id(sw), sm_swarm_now(sw), svc->report);
        a = pack(svc, &pb.r.base);
    }
    swarmmedic__v1__report_request__free_unpacked(q, NULL);
    return a;
}

/* ---- stats -------------------------------------------------------------- */

static void fill_tally(Swarmmedic__V1__PredictionTally *o, const char *name,
                       const sm_pred_tally *t)
{
    swarmmedic__v1__prediction_tally__init(o);
    uint32_t fates = t->fulfilled + t->late + t->wrong;
    o->name = (char *)name;
    o->raised = t->raised;
    o->fulfilled = t->fulfilled;
    o->late = t->late;
    o->wrong = t->wrong;
    o->open = t->raised - fates;
    o->accuracy = fates ? (double)t->fulfilled / fates : 0.0;
    o->false_positive_rate = fates ? (double)t->wrong / fates : 0.0;
    o->lead_mean_s = t->fulfilled ? t->lead_s / t->fulfilled : 0.0;
    o->eta_err_mean_s = t->fulfilled + t->late
                            ? t->eta_err_s / (t->fulfilled + t->late) : 0.0;
    o->target_met = fates > 0 && o->accuracy >= 0.7;
}

static void fill_heal(Swarmmedic__V1__HealingTally *o, const char *name,
                      const sm_heal_tally *t)
{
    sm_heal_summary m;
    sm_heal_summarize(t, &m);
    swarmmedic__v1__healing_tally__init(o);
    o->name = (char *)name;
    o->commands = t->commands;
    o->verified = t->verified;
    o->failed = t->failed;
    o->preempted = t->preempted;
    o->superseded = t->superseded;
    o->escalated = t->escalated;
    o->success_rate = m.success_rate;
    o->detect_mean_s = m.detect_mean_s;
    o->recover_mean_s = m.recover_mean_s;
    o->trend = m.trend;     /* the worker's log line says the same */
}

/* The healing rows of a StatsReply: all, then each action, failure type
 * and strategy that issued a command. */
typedef struct heal_pb {
    sm_heal_tally act[SM_ACT_COUNT + 1], typ[SM_FAIL_MAX + 1],
        strat[SM_HEAL_MAX_STRATEGIES], all;
    Swarmmedic__V1__HealingTally rows[1 + SM_ACT_COUNT + SM_FAIL_MAX + 1 +
                                      SM_HEAL_MAX_STRATEGIES];
    Swarmmedic__V1__HealingTally *pa[SM_ACT_COUNT + 1], *pt[SM_FAIL_MAX + 1],
        *ps[SM_HEAL_MAX_STRATEGIES];
} heal_pb;

static void fill_healing(heal_pb *h, const sm_swarm *sw,
                         Swarmmedic__V1__StatsReply *r)
{
    memset(h, 0, sizeof *h);
    sm_swarm_heal_add(sw, h->act, h->typ, h->strat);
    sm_heal_tally_all(h->act, &h->all);
    size_t k = 0;
    fill_heal(&h->rows[k], "all", &h->all);
    h->pa[r->n_healing_by_action++] = &h->rows[k++];
    for (int i = 1; i <= SM_ACT_COUNT; i++)
        if (h->act[i].commands && i != SM_ACT_ESCALATE) {
            fill_heal(&h->rows[k], sm_heal_action_str((sm_heal_action)i), &h->act[i]);
            h->pa[r->n_healing_by_action++] = &h->rows[k++];
        }
    for (int i = 0; i <= SM_FAIL_MAX; i++)
        if (h->typ[i].commands) {
            fill_heal(&h->rows[k], i ? sm_fail_type_str((sm_fail_type)i)
                                     : "bottleneck", &h->typ[i]);
            h->pt[r->n_healing_by_type++] = &h->rows[k++];
        }
    size_t n;
    const sm_strategy *table = sm_strategies(&n);
    for (size_t i = 0; i < n && i < SM_HEAL_MAX_STRATEGIES; i++)
        if (h->strat[i].commands) {
            fill_heal(&h->rows[k], table[i].name, &h->strat[i]);
            h->ps[r->n_healing_by_strategy++] = &h->rows[k++];
        }
    r->healings = h->all.commands;
    r->healing_by_action = h->pa;
    r->healing_by_type = h->pt;
    r->healing_by_strategy = h->ps;
}

static answer on_stats(sm_service *svc, const sm_swarm *sw, const sm_item *it)
{
    Swarmmedic__V1__StatsRequest *q =
        swarmmedic__v1__stats_request__unpack(NULL, it->len, it->data);
    if (!q)
        return fail(400, "undecodable StatsRequest");
    swarmmedic__v1__stats_request__free_unpacked(q, NULL);
    sm_pred_tally src[SM_SRC_COUNT + 1], typ[SM_FAIL_MAX + 1];
    memset(src, 0, sizeof src);
    memset(typ, 0, sizeof typ);
    sm_swarm_ledger_add(sw, src, typ);
    Swarmmedic__V1__PredictionTally ts[SM_SRC_COUNT + 1], ty[SM_FAIL_MAX + 1];
    Swarmmedic__V1__PredictionTally *tsp[SM_SRC_COUNT + 1], *typ_p[SM_FAIL_MAX + 1];
    Swarmmedic__V1__StatsReply r = SWARMMEDIC__V1__STATS_REPLY__INIT;
    r.swarm = (char *)sm_swarm_id(sw);
    r.at_ms = sm_swarm_now(sw);
    for (int i = 0; i <= SM_SRC_COUNT; i++) {
        fill_tally(&ts[i], i ? sm_pred_source_str((sm_pred_source)i) : "all",
                   &src[i]);
        tsp[r.n_by_source++] = &ts[i];
    }
    for (int i = 1; i <= SM_FAIL_MAX; i++) {
        if (!typ[i].raised)
            continue;
        fill_tally(&ty[r.n_by_type], sm_fail_type_str((sm_fail_type)i), &typ[i]);
        typ_p[r.n_by_type] = &ty[r.n_by_type];
        r.n_by_type++;
    }
    r.by_source = tsp;
    r.by_type = typ_p;
    heal_pb h;
    fill_healing(&h, sw, &r);
    return pack(svc, &r.base);
}

/* ---- select ------------------------------------------------------------- */

static bool ids_ok(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(ids[i]);
        if (l == 0 || l >= SM_ID_MAX)
            return false;
    }
    return true;
}

static answer select_reply(sm_service *svc, const sm_swarm *sw,
                           const Swarmmedic__V1__SelectRequest *q)
{
    sm_agent_score top[SELECT_TOP];
    size_t skip_ids[MAX_CANDIDATES], skipped = 0;
    size_t n = sm_query_select(sw, q->task_type, (const char *const *)q->candidates,
                               q->n_candidates, top, SELECT_TOP, NULL, &skipped,
                               skip_ids);
    Swarmmedic__V1__AgentScore sc[SELECT_TOP], *scp[SELECT_TOP];
    char *skipped_p[MAX_CANDIDATES];
    for (size_t i = 0; i < n; i++) {
        swarmmedic__v1__agent_score__init(&sc[i]);
        sc[i].agent = top[i].agent;
        sc[i].score = top[i].score;
        sc[i].success_rate = top[i].success;
        sc[i].speed = top[i].speed;
        sc[i].capacity = top[i].capacity;
        sc[i].affinity = top[i].affinity;
        sc[i].samples = top[i].samples;
        scp[i] = &sc[i];
    }
    for (size_t i = 0; i < skipped; i++)
        skipped_p[i] = q->candidates[skip_ids[i]];
    Swarmmedic__V1__SelectReply r = SWARMMEDIC__V1__SELECT_REPLY__INIT;
    r.swarm = (char *)sm_swarm_id(sw);
    r.agent = n ? top[0].agent : "";
    r.n_scores = n;
    r.scores = scp;
    r.n_skipped = skipped;
    r.skipped = skipped_p;
    return pack(svc, &r.base);
}

static answer on_select(sm_service *svc, const sm_swarm *sw, const sm_item *it)
{
    Swarmmedic__V1__SelectRequest *q =
        swarmmedic__v1__select_request__unpack(NULL, it->len, it->data);
    if (!q)
        return fail(400, "undecodable SelectRequest");
    answer a;
    if (q->n_candidates > MAX_CANDIDATES)
        a = fail(400, "more than 1024 candidates");
    else if (strlen(q->task_type) >= SM_ID_MAX || !ids_ok(q->candidates, q->n_candidates))
        a = fail(400, "a candidate or task type is empty or over 63 bytes");
    else
        a = select_reply(svc, sw, q);
    swarmmedic__v1__select_request__free_unpacked(q, NULL);
    return a;
}

/* ---- plan --------------------------------------------------------------- */

static const char *fate_str(sm_plan_fate f)
{
    return f == SM_PLAN_NO_BUDGET ? "no_budget_known" : "over_budget";
}

static answer plan_reply(sm_service *svc, const sm_swarm *sw,
                         const Swarmmedic__V1__PlanRequest *q)
{
    size_t n = q->n_tasks;
    sm_plan_task *t = calloc(n ? n : 1, sizeof *t);
    uint32_t *order = calloc(n ? n : 1, sizeof *order);
    sm_plan_fate *fate = calloc(n ? n : 1, sizeof *fate);
    char **adm = calloc(n ? n : 1, sizeof *adm);
    Swarmmedic__V1__PlanDeferred *df = calloc(n ? n : 1, sizeof *df);
    Swarmmedic__V1__PlanDeferred **dfp = calloc(n ? n : 1, sizeof *dfp);
    answer a = fail(500, "out of memory planning");
    sm_plan_result res;
    if (!t || !order || !fate || !adm || !df || !dfp)
        goto done;
    for (size_t i = 0; i < n; i++)
        t[i] = (sm_plan_task){.id = q->tasks[i]->task_id,
                              .priority = (sm_priority)q->tasks[i]->priority,
                              .tokens = q->tasks[i]->tokens_estimated};
    if (sm_query_plan(sw, t, n, q->aggressive, order, fate, &res) != SM_OK) {
        a = fail(400, "a task has no priority (1..5)");
        goto done;
    }
    Swarmmedic__V1__PlanReply r = SWARMMEDIC__V1__PLAN_REPLY__INIT;
    r.swarm = (char *)sm_swarm_id(sw);
    r.budget_remaining = res.remaining;
    r.budget_limit = res.limit;
    r.tokens_admitted = res.admitted_tokens;
    for (size_t k = 0; k < n; k++) {
        uint32_t i = order[k];
        if (fate[i] == SM_PLAN_ADMITTED) {
            adm[r.n_admitted++] = q->tasks[i]->task_id;
            continue;
        }
        swarmmedic__v1__plan_deferred__init(&df[r.n_deferred]);
        df[r.n_deferred].task_id = q->tasks[i]->task_id;
        df[r.n_deferred].reason = (char *)fate_str(fate[i]);
        dfp[r.n_deferred] = &df[r.n_deferred];
        r.n_deferred++;
    }
    r.admitted = adm;
    r.deferred = dfp;
    a = pack(svc, &r.base);
done:
    free(t);
    free(order);
    free(fate);
    free(adm);
    free(df);
    free(dfp);
    return a;
}

static answer on_plan(sm_service *svc, const sm_swarm *sw, const sm_item *it)
{
    Swarmmedic__V1__PlanRequest *q =
        swarmmedic__v1__plan_request__unpack(NULL, it->len, it->data);
    if (!q)
        return fail(400, "undecodable PlanRequest");
    answer a = q->n_tasks > MAX_PLAN_TASKS ? fail(400, "more than 4096 tasks")
                                           : plan_reply(svc, sw, q);
    swarmmedic__v1__plan_request__free_unpacked(q, NULL);
    return a;
}

/* ---- explain ------------------------------------------------------------ */

static bool parse_id(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; s[i] && i < 17; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return i == 16;
}

static answer on_explain(sm_service *svc, const sm_swarm *sw, const sm_item *it)
{
    Swarmmedic__V1__ExplainRequest *q =
        swarmmedic__v1__explain_request__unpack(NULL, it->len, it->data);
    if (!q)
        return fail(400, "undecodable ExplainRequest");
    uint64_t id;
    answer a;
    const uint8_t *buf;
    size_t len;
    if (!parse_id(q->decision_id, &id)) {
        a = fail(400, "decision_id must be 16 hex digits");
    } else {
        sm_status s = sm_svcstore_explain(svc->ss, id, &buf, &len);
        if (s == SM_ERR_NOT_FOUND)
            a = fail(404, "no such decision in the log");
        else if (s != SM_OK)
            a = fail(500, "could not read the decision log");
        else
            a = (answer){.data = buf, .len = len};
    }
    /* the log is shared by every swarm the worker holds: a decision of
     * another swarm is not this one's to explain */
    if (a.code == 0) {
        Swarmmedic__V1__DecisionRecord *r =
            swarmmedic__v1__decision_record__unpack(NULL, a.len, a.data);
        if (!r || !r->decision || strcmp(r->decision->swarm, sm_swarm_id(sw)) != 0)
            a = fail(404, "no such decision in this swarm's log");
        if (r)
            swarmmedic__v1__decision_record__free_unpacked(r, NULL);
    }
    swarmmedic__v1__explain_request__free_unpacked(q, NULL);
    return a;
}

/* ---- status ------------------------------------------------------------- */

static const char *open_type(const sm_open_item *o)
{
    return o->kind == SM_OPEN_BOTTLENECK ? sm_bn_type_str((sm_bn_type)o->type)
                                         : sm_fail_type_str((sm_fail_type)o->type);
}

static const char *open_kind(sm_open_kind k)
{
    return k == SM_OPEN_BOTTLENECK ? "bottleneck"
           : k == SM_OPEN_FAILURE ? "failure" : "prediction";
}

/* Healing commands in flight, for the status reply. */
#define COMMANDS_MAX 64

typedef struct commands_pb {
    size_t n;
    Swarmmedic__V1__OpenItem items[COMMANDS_MAX];
    Swarmmedic__V1__OpenItem *p[COMMANDS_MAX];
    char id[COMMANDS_MAX][17], answers[COMMANDS_MAX][17];
    char agent[COMMANDS_MAX][SM_ID_MAX];
} commands_pb;

static void command_open(void *ud, uint64_t command, sm_heal_action action,
                         const char *agent, int64_t deadline_ms, uint64_t answers)
{
    commands_pb *c = ud;
    if (c->n == COMMANDS_MAX)
        return;
    Swarmmedic__V1__OpenItem *o = &c->items[c->n];
    swarmmedic__v1__open_item__init(o);
    sm_decision_id_hex(command, c->id[c->n], 17);
    sm_decision_id_hex(answers, c->answers[c->n], 17);
    snprintf(c->agent[c->n], SM_ID_MAX, "%s", agent ? agent : "");
    o->kind = "command";
    o->type = (char *)sm_heal_action_str(action);
    o->subject = c->agent[c->n];
    o->eta_ms = deadline_ms;
    o->id = c->id[c->n];
    o->answers = c->answers[c->n];
    c->p[c->n] = o;
    c->n++;
}

static answer on_status(sm_service *svc, const sm_swarm *sw, const sm_item *it)
{
    Swarmmedic__V1__StatusRequest *q =
        swarmmedic__v1__status_request__unpack(NULL, it->len, it->data);
    if (!q)
        return fail(400, "undecodable StatusRequest");
    swarmmedic__v1__status_request__free_unpacked(q, NULL);
    static const size_t cap = STATUS_MAX;
    sm_open_item items[STATUS_MAX];
    Swarmmedic__V1__OpenItem pb[STATUS_MAX], *lists[3][STATUS_MAX];
    size_t n = sm_query_status(sw, items, cap), counts[3] = {0, 0, 0};
    if (n > cap)
        n = cap;
    for (size_t i = 0; i < n; i++) {
        const sm_open_item *o = &items[i];
        swarmmedic__v1__open_item__init(&pb[i]);
        pb[i].kind = (char *)open_kind(o->kind);
        pb[i].type = (char *)open_type(o);
        pb[i].subject = (char *)o->subject;
        pb[i].raised_at_ms = o->raised_at_ms;
        pb[i].severity = o->severity ? (char *)sm_severity_str(o->severity) : "";
        pb[i].confidence = o->confidence;
        pb[i].eta_ms = o->eta_ms;
        size_t l = (size_t)o->kind - 1;
        lists[l][counts[l]++] = &pb[i];
    }
    Swarmmedic__V1__StatusReply r = SWARMMEDIC__V1__STATUS_REPLY__INIT;
    r.swarm = (char *)sm_swarm_id(sw);
    r.at_ms = sm_swarm_now(sw);
    r.agents = (uint32_t)sm_swarm_agent_count(sw);
    r.n_bottlenecks = counts[0];
    r.bottlenecks = lists[0];
    r.n_failures = counts[1];
    r.failures = lists[1];
    r.n_predictions = counts[2];
    r.predictions = lists[2];
    commands_pb cp = {.n = 0};
    sm_swarm_heal_open(sw, command_open, &cp);
    r.n_commands = cp.n;
    r.commands = cp.p;
    return pack(svc, &r.base);
}

/* ---- dispatch ----------------------------------------------------------- */

typedef answer (*verb_fn)(sm_service *svc, const sm_swarm *sw, const sm_item *it);

static const verb_fn verbs[EP_COUNT] = {
    [EP_REPORT] = on_report, [EP_STATS] = on_stats, [EP_SELECT] = on_select,
    [EP_PLAN] = on_plan, [EP_EXPLAIN] = on_explain, [EP_STATUS] = on_status,
};

/* <prefix>.<swarm>.api.<verb>: the swarm token and the verb's index
 * (EP_COUNT when unknown). */
static bool parse_api(const sm_service *svc, const char *subject,
                      char swarm[SM_ID_MAX], sm_endpoint *ep)
{
    size_t pl = strlen(svc->cfg->output_prefix);
    if (strncmp(subject, svc->cfg->output_prefix, pl) != 0 || subject[pl] != '.')
        return false;
    const char *s = subject + pl + 1, *dot = strchr(s, '.');
    if (!dot || dot == s || (size_t)(dot - s) >= SM_ID_MAX ||
        strncmp(dot, ".api.", 5) != 0)
        return false;
    memcpy(swarm, s, (size_t)(dot - s));
    swarm[dot - s] = 0;
    *ep = EP_COUNT;
    for (int i = 0; i < EP_COUNT; i++)
        if (strcmp(dot + 5, sm_endpoint_names[i]) == 0)
            *ep = (sm_endpoint)i;
    return true;
}

bool sm_service_elsewhere(const sm_service *svc, const char *subject)
{
    char swarm[SM_ID_MAX];
    sm_endpoint ep;
    return svc->owner && parse_api(svc, subject, swarm, &ep) &&
           !svc->owner(svc->owner_ud, swarm);
}

static void count(sm_service *svc, sm_endpoint ep, const answer *a, int64_t ns)
{
    pthread_mutex_lock(&svc->mu);
    svc->st.requests++;
    svc->st.errors += a->code != 0;
    if (ep < EP_COUNT) {
        sm_ep_stats *e = &svc->eps[ep];
        e->requests++;
        e->processing_ns += ns;
        if (a->code) {
            e->errors++;
            snprintf(e->last_error, sizeof e->last_error, "%d:%s", a->code,
                     a->text);
        }
    }
    pthread_mutex_unlock(&svc->mu);
}

static void tally(sm_service *svc, uint64_t *field)
{
    pthread_mutex_lock(&svc->mu);
    (*field)++;
    pthread_mutex_unlock(&svc->mu);
}

void sm_service_handle(sm_service *svc, sm_item *it)
{
    int64_t t0 = mono_ns();
    char swarm[SM_ID_MAX];
    sm_endpoint ep = EP_COUNT;
    if (!parse_api(svc, it->subject, swarm, &ep) || !sm_service_owns(svc, swarm)) {
        tally(svc, &svc->st.not_owned);     /* another worker's to answer */
        return;
    }
    if (!it->reply || !it->reply[0]) {
        tally(svc, &svc->st.no_reply);
        sm_log_write(svc->log, SM_LOG_WARN, "request_without_reply",
                     "subject=%s", it->subject);
        return;
    }
    const sm_swarm *sw = sm_registry_find(svc->reg, swarm);
    answer a = ep < EP_COUNT ? verbs[ep](svc, sw, it)
                             : fail(400, "unknown verb: report, stats, select, "
                                         "plan, explain or status");
    /* counted before the reply leaves: whoever got it sees it in $SRV.STATS */
    count(svc, ep, &a, mono_ns() - t0);
    sm_status s = SM_OK;
    if (a.code == 0)
        s = svc->sink->publish(svc->sink->ud, it->reply, a.data ? a.data : svc->out,
                               a.len, NULL);
    else
        sm_service_reply_error(svc, it->reply, a.code, a.text);
    if (a.code != 0 || s != SM_OK)
        sm_log_write(svc->log, SM_LOG_INFO, "request_failed",
                     "subject=%s code=%d detail=\"%s\" publish=\"%s\"",
                     it->subject, a.code, a.code ? a.text : "",
                     sm_status_str(s));
}

/* ---- aggregates and the periodic report --------------------------------- */

static sm_report_clock *clock_of(sm_service *svc, const char *swarm)
{
    for (size_t i = 0; i < svc->n_clocks; i++)
        if (strcmp(svc->clocks[i].swarm, swarm) == 0)
            return &svc->clocks[i];
    if (svc->n_clocks == svc->cap_clocks) {
        size_t cap = svc->cap_clocks ? 2 * svc->cap_clocks : 8;
        sm_report_clock *v = realloc(svc->clocks, cap * sizeof *v);
        if (!v)
            return NULL;
        svc->clocks = v;
        svc->cap_clocks = cap;
    }
    sm_report_clock *c = &svc->clocks[svc->n_clocks++];
    snprintf(c->swarm, sizeof c->swarm, "%s", swarm);
    c->next_ms = 0;
    memset(&c->scale, 0, sizeof c->scale);
    return c;
}

/* Publishes the PerformanceReport of [start, end) on <prefix>.<swarm>.report. */
static void publish_report(sm_service *svc, const char *swarm, int64_t start,
                           int64_t end)
{
    char subject[256];
    snprintf(subject, sizeof subject, "%s.%s.report", svc->cfg->output_prefix,
             swarm);
    if (sm_svcstore_report(svc->ss, swarm, start, end, NULL, svc->report) != SM_OK)
        return;
    report_pb pb;
    fill_report(&pb, swarm, end, svc->report);
    answer a = pack(svc, &pb.r.base);
    if (a.code != 0)
        return;
    const char *h[] = {"Nats-Msg-Id", pb.id, NULL};
    sm_status s = svc->sink->publish(svc->sink->ud, subject, svc->out, a.len, h);
    tally(svc, &svc->st.reports);
    sm_log_write(svc->log, SM_LOG_DEBUG, "report",
                 "swarm=%s start_ms=%lld end_ms=%lld tasks=%llu published=%s",
                 swarm, (long long)start, (long long)end,
                 (unsigned long long)svc->report->all.count,
                 s == SM_OK ? "yes" : sm_status_str(s));
}

void sm_service_on_task(sm_service *svc, const char *swarm,
                        const sm_task_event *ev, int64_t prev_ms)
{
    int64_t iv = svc->cfg->report_interval_ms;
    sm_report_clock *c = iv > 0 ? clock_of(svc, swarm) : NULL;
    if (c) {
        int64_t next = (ev->ts_ms / iv + 1) * iv;
        if (c->next_ms == 0 && prev_ms > 0)     /* first sight since start */
            c->next_ms = (prev_ms / iv + 1) * iv;
        if (c->next_ms != 0 && ev->ts_ms >= c->next_ms)
            publish_report(svc, swarm, c->next_ms - iv, c->next_ms);
        if (next > c->next_ms)
            c->next_ms = next;
    }
    sm_status s = sm_svcstore_on_task(svc->ss, swarm, ev);
    if (s != SM_OK)
        sm_log_write(svc->log, SM_LOG_ERROR, "aggregate_failed",
                     "swarm=%s status=\"%s\"", swarm, sm_status_str(s));
}

/* ---- scaling ------------------------------------------------------------ */

#define SCALE_REMOVE_MAX 50

typedef struct scale_pb {
    Swarmmedic__V1__ScalingDecision m;
    Swarmmedic__V1__Decision d;
    Swarmmedic__V1__Evidence ev;
    Swarmmedic__V1__Metric metrics[3];
    Swarmmedic__V1__Metric *mp[3];
    char id[17];
    char subject[3 * SM_ID_MAX + 32];
    char ids[SCALE_REMOVE_MAX][SM_ID_MAX];
    char *idp[SCALE_REMOVE_MAX];
} scale_pb;

static void scale_metric(scale_pb *pb, int i, const char *name, double value,
                         double threshold)
{
    swarmmedic__v1__metric__init(&pb->metrics[i]);
    pb->metrics[i].name = (char *)name;
    pb->metrics[i].value = value;
    pb->metrics[i].threshold = threshold;
    pb->metrics[i].samples = 1;
    pb->mp[i] = &pb->metrics[i];
}

/* The ScalingDecision of change sd on sample ev. */
static void fill_scale(sm_service *svc, scale_pb *pb, const sm_swarm *sw,
                       const char *source, const sm_resource_sample *ev,
                       uint32_t pending, const sm_scale_decision *sd)
{
    const sm_config *c = svc->cfg;
    Swarmmedic__V1__ScalingDecision *m = &pb->m;
    swarmmedic__v1__scaling_decision__init(m);
    swarmmedic__v1__decision__init(&pb->d);
    swarmmedic__v1__evidence__init(&pb->ev);
    uint64_t h = sm_hash_str(sm_hash_str(SM_HASH_INIT, "scale"), sm_swarm_id(sw));
    h = sm_hash_u64(sm_hash_u64(h, (uint64_t)ev->ts_ms), sd->target);
    sm_decision_id_hex(h, pb->id, sizeof pb->id);
    snprintf(pb->subject, sizeof pb->subject, "swarm.%s.resource.%s",
             sm_swarm_id(sw), source);
    pb->ev.subject = pb->subject;
    pb->ev.ts_ms = ev->ts_ms;
    pb->ev.window_start_ms = ev->ts_ms - c->scale_stabilise_ms;
    pb->ev.window_end_ms = ev->ts_ms;
    scale_metric(pb, 0, "pending_tasks", pending,
                 (double)(sd->dir == SM_SCALE_UP ? c->scale_up_pending
                                                 : c->scale_down_pending));
    scale_metric(pb, 1, "active_agents", ev->active_agents,
                 (double)c->scale_max_agents);
    scale_metric(pb, 2, "agent_quota", ev->agent_quota, 0.0);
    pb->d.decision_id = pb->id;
    pb->d.swarm = (char *)sm_swarm_id(sw);
    pb->d.decided_at_ms = ev->ts_ms;
    pb->d.evidence = &pb->ev;
    pb->d.n_metrics = 3;
    pb->d.metrics = pb->mp;
    m->decision = &pb->d;
    m->direction = (Swarmmedic__V1__ScalingDecision__Direction)sd->dir;
    m->current_agents = sd->current;
    m->target_agents = sd->target;
    m->reason = (char *)sd->reason;
    m->cooldown_until_ms = sd->cooldown_until_ms;
    if (sd->dir == SM_SCALE_DOWN) {
        size_t n = sd->remove < SCALE_REMOVE_MAX ? sd->remove : SCALE_REMOVE_MAX;
        sm_query_idle_dynamic(sw, pb->ids, n);
        for (size_t i = 0; i < n; i++)
            pb->idp[i] = pb->ids[i];
        m->n_remove_agents = n;
        m->remove_agents = pb->idp;
    }
}

void sm_service_on_resource(sm_service *svc, const sm_swarm *sw,
                            const char *source, const sm_resource_sample *ev)
{
    const sm_config *c = svc->cfg;
    if (!c->scaling || !ev->has_pending || ev->active_agents == 0)
        return;
    sm_report_clock *rc = clock_of(svc, sm_swarm_id(sw));
    if (!rc)
        return;
    sm_scale_config sc = {
        .up_pending = (uint32_t)c->scale_up_pending,
        .per_agent = (uint32_t)(c->scale_per_agent > 0 ? c->scale_per_agent : 1),
        .down_pending = (uint32_t)c->scale_down_pending,
        .min_agents = 1,
        .max_agents = (uint32_t)c->scale_max_agents,
        .cooldown_ms = c->scale_cooldown_ms,
        .stabilise_ms = c->scale_stabilise_ms,
        .drain_ms = c->scale_drain_ms,
        .target_util = c->scale_target_util,
        .work_ms = c->scale_work_ms,
        .burst_ms = c->scale_burst_ms,
    };
    uint32_t pending = 0;
    for (int i = 0; i < SM_PRIO_COUNT; i++)
        pending += ev->pending[i];
    sm_scale_input in = {
        .ts_ms = ev->ts_ms, .pending = pending, .active = ev->active_agents,
        .quota = ev->agent_quota,
        .idle_dynamic = (uint32_t)sm_query_idle_dynamic(sw, NULL, 0),
        .tokens_short = sm_query_tokens_short(sw),
    };
    sm_query_work work;
    sm_query_work_of(sw, ev->ts_ms - c->scale_stabilise_ms, &work);
    in.done = work.done;
    in.busy = work.busy;
    sm_scale_decision sd;
    if (!sm_scale_step(&sc, &rc->scale, &in, &sd))
        return;
    scale_pb pb;
    fill_scale(svc, &pb, sw, source, ev, pending, &sd);
    answer a = pack(svc, &pb.m.base);
    if (a.code != 0)
        return;
    char subject[256];
    snprintf(subject, sizeof subject, "%s.%s.scale", c->output_prefix,
             sm_swarm_id(sw));
    const char *h[] = {"Nats-Msg-Id", pb.id, NULL};
    sm_status s = svc->sink->publish(svc->sink->ud, subject, svc->out, a.len, h);
    sm_log_write(svc->log, SM_LOG_INFO, "scale",
                 "swarm=%s direction=%s current=%u target=%u remove=%u pending=%u "
                 "reason=%s busy=%.1f busy_long=%.1f task_s=%.1f growth=%.2f "
                 "peak=%.0f at_ms=%lld id=%s published=%s", sm_swarm_id(sw),
                 sd.dir == SM_SCALE_UP ? "up" : "down", sd.current, sd.target,
                 sd.remove, pending, sd.reason, sd.busy_mean, sd.busy_long,
                 sd.task_s, sd.growth, sd.peak, (long long)ev->ts_ms, pb.id,
                 s == SM_OK ? "yes" : sm_status_str(s));
}

void sm_service_log(sm_service *svc, const sm_decision *d, size_t n)
{
    sm_status s = n > 0 ? sm_svcstore_log(svc->ss, d, n) : SM_OK;
    if (s != SM_OK)
        sm_log_write(svc->log, SM_LOG_ERROR, "decision_log_failed",
                     "count=%zu status=\"%s\" detail=\"not kept for explain\"",
                     n, sm_status_str(s));
}

void sm_service_before_commit(sm_service *svc, const sm_decision *d, size_t n)
{
    sm_service_log(svc, d, n);
    sm_svcstore_before_commit(svc->ss);
}
