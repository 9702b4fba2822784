/*
 * metrics.c - the snapshot exchange between the worker thread and the HTTP
 * thread, the health and readiness rules, and the Prometheus text.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "heal.h"

struct sm_metrics {
    pthread_mutex_t mu;
    sm_metrics_snap snap;
};

/* Bucket bounds, seconds. */
static const double handle_le[] = {1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5,
                                   1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2,
                                   1e-1};
static const double commit_le[] = {1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3,
                                   1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0,
                                   2.5, 10.0};

void sm_hist_init(sm_hist *h, sm_hist_kind kind)
{
    const double *le = kind == SM_HIST_COMMIT ? commit_le : handle_le;
    size_t n = kind == SM_HIST_COMMIT ? sizeof commit_le / sizeof *commit_le
                                      : sizeof handle_le / sizeof *handle_le;
    memset(h, 0, sizeof *h);
    h->n = n;
    memcpy(h->le, le, n * sizeof *le);
}

void sm_hist_observe(sm_hist *h, double seconds)
{
    size_t i = 0;
    while (i < h->n && seconds > h->le[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum += seconds;
}

const char *sm_phase_str(sm_phase p)
{
    static const char *const names[] = {"starting", "connecting", "running",
                                        "draining", "stopped"};
    return (unsigned)p < sizeof names / sizeof *names ? names[p] : "unknown";
}

void sm_metrics_snap_init(sm_metrics_snap *s)
{
    memset(s, 0, sizeof *s);
    s->bus_dropped = -1;
    s->consumer_lag = -1;
    s->partitions_owned = -1;
    s->turn_ms = sm_metrics_now_ms();
    sm_hist_init(&s->handle_latency, SM_HIST_HANDLE);
    sm_hist_init(&s->commit_latency, SM_HIST_COMMIT);
}

sm_status sm_metrics_create(sm_metrics **out)
{
    sm_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return SM_ERR_NOMEM;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return SM_ERR_NOMEM;
    }
    sm_metrics_snap_init(&m->snap);
    *out = m;
    return SM_OK;
}

void sm_metrics_destroy(sm_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void sm_metrics_publish(sm_metrics *m, const sm_metrics_snap *s)
{
    pthread_mutex_lock(&m->mu);
    m->snap = *s;
    pthread_mutex_unlock(&m->mu);
}

void sm_metrics_read(sm_metrics *m, sm_metrics_snap *out)
{
    pthread_mutex_lock(&m->mu);
    *out = m->snap;
    pthread_mutex_unlock(&m->mu);
}

int64_t sm_metrics_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool sm_metrics_healthy(const sm_metrics_snap *s, int64_t now_ms,
                        const char **why)
{
    bool looping = s->phase == SM_PHASE_RUNNING || s->phase == SM_PHASE_DRAINING ||
                   s->phase == SM_PHASE_CONNECTING;
    if (looping && now_ms - s->turn_ms > SM_METRICS_STALL_MS) {
        *why = "the worker loop has not turned for 30 s";
        return false;
    }
    if (s->phase == SM_PHASE_STOPPED) {
        *why = "the worker has stopped";
        return false;
    }
    *why = "alive";
    return true;
}

bool sm_metrics_ready(const sm_metrics_snap *s, const char **why)
{
    if (s->phase == SM_PHASE_DRAINING || s->phase == SM_PHASE_STOPPED)
        *why = "draining: not taking new input";
    else if (s->phase != SM_PHASE_RUNNING)
        *why = "not connected and subscribed yet";
    else if (!s->bus_connected)
        *why = "disconnected from NATS (reconnecting)";
    else if (!s->store_open)
        *why = "the store is not open";
    else {
        *why = "ready";
        return true;
    }
    return false;
}

/* ---- rendering ---------------------------------------------------------- */

typedef struct out {
    char *buf;
    size_t len, cap;
    bool nomem;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out *o, const char *fmt, ...)
{
    if (o->nomem)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->nomem = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = (o->cap + (size_t)n + 1) * 2;
        char *b = realloc(o->buf, cap);
        if (!b) {
            o->nomem = true;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
}

/* # HELP and # TYPE lines of a family. */
static void family(out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP swarm_medic_%s %s\n# TYPE swarm_medic_%s %s\n", name, help,
        name, type);
}

static void gauge(out *o, const char *name, const char *help, double v)
{
    family(o, name, "gauge", help);
    put(o, "swarm_medic_%s %.15g\n", name, v);
}

static void counter(out *o, const char *name, const char *help, uint64_t v)
{
    family(o, name, "counter", help);
    put(o, "swarm_medic_%s %llu\n", name, (unsigned long long)v);
}

static void histogram(out *o, const char *name, const char *help,
                      const sm_hist *h)
{
    family(o, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t i = 0; i < h->n; i++) {
        cum += h->bucket[i];
        put(o, "swarm_medic_%s_bucket{le=\"%g\"} %llu\n", name, h->le[i],
            (unsigned long long)cum);
    }
    put(o, "swarm_medic_%s_bucket{le=\"+Inf\"} %llu\n", name,
        (unsigned long long)h->count);
    put(o, "swarm_medic_%s_sum %.9g\nswarm_medic_%s_count %llu\n", name, h->sum,
        name, (unsigned long long)h->count);
}

/* A label value for a dead letter's status (sm_status_str has spaces). */
static const char *status_slug(int s)
{
    static const char *const slugs[SM_METRICS_STATUSES] = {
        "ok", "invalid", "nomem", "full", "not_found", "decode", "config",
        "store", "map_full", "corrupt", "bus", "io", "timeout", "version"};
    return s >= 0 && s < SM_METRICS_STATUSES ? slugs[s] : "unknown";
}

static const char *dec_kind_name(int k)
{
    return k == SM_DEC_BOTTLENECK ? "bottleneck"
         : k == SM_DEC_FAILURE    ? "failure"
         : k == SM_DEC_PREDICTION ? "prediction"
         : k == SM_DEC_HEAL       ? "heal"
         : k == SM_DEC_VERDICT    ? "verdict" : "unknown";
}

/* The type label of a kind's type index, "unknown" for a hole. */
static const char *dec_type_name(int kind, int type)
{
    switch (kind) {
    case SM_DEC_BOTTLENECK:
        return type <= SM_BN_COUNT ? sm_bn_type_str((sm_bn_type)type) : "unknown";
    case SM_DEC_HEAL:
        return type <= SM_ACT_COUNT ? sm_heal_action_str((sm_heal_action)type)
                                    : "unknown";
    case SM_DEC_VERDICT:
        return type <= SM_VERDICT_SUPERSEDED ? sm_verdict_str((sm_verdict_kind)type)
                                             : "unknown";
    default:
        return sm_fail_type_str((sm_fail_type)type);
    }
}

static void render_input(out *o, const sm_metrics_snap *s)
{
    family(o, "events_total", "counter",
           "Input events accepted, by kind (the subject's kind token).");
    for (int k = SM_IN_TASK; k <= SM_IN_OUTCOME; k++)
        put(o, "swarm_medic_events_total{kind=\"%s\"} %llu\n",
            sm_input_kind_str((sm_input_kind)k),
            (unsigned long long)s->events_by_kind[k]);
    family(o, "deadletters_total", "counter",
           "Input rejected and forwarded to the dead-letter subject, by reason "
           "(decode: malformed payload; invalid: bad subject or values; full: "
           "a cap; nomem: our memory).");
    for (int st = 1; st < SM_METRICS_STATUSES; st++)
        if (s->deadletters_by_status[st] || st == SM_ERR_DECODE ||
            st == SM_ERR_INVALID || st == SM_ERR_FULL)
            put(o, "swarm_medic_deadletters_total{reason=\"%s\"} %llu\n",
                status_slug(st), (unsigned long long)s->deadletters_by_status[st]);
    family(o, "rejected_total", "counter",
           "Dead letters by the rule that refused them.");
    put(o, "swarm_medic_rejected_total{rule=\"max_skew\"} %llu\n"
           "swarm_medic_rejected_total{rule=\"max_swarms\"} %llu\n"
           "swarm_medic_rejected_total{rule=\"max_agents\"} %llu\n",
        (unsigned long long)s->skew_rejected,
        (unsigned long long)s->swarm_cap_rejected,
        (unsigned long long)s->agent_cap_rejected);
    counter(o, "internal_errors_total",
            "Inputs dead-lettered for our own failure (out of memory).",
            s->internal_errors);
    counter(o, "applied_total",
            "Inputs handled (accepted or dead-lettered) since the store began.",
            s->applied);
}

static void render_output(out *o, const sm_metrics_snap *s)
{
    family(o, "decisions_total", "counter",
           "Conclusions published, by kind and type (heal: by action; "
           "verdict: by what became of the command).");
    for (int k = 1; k < SM_METRICS_DEC_KINDS; k++)
        for (int t = 1; t < SM_METRICS_DEC_TYPES; t++) {
            const char *name = dec_type_name(k, t);
            if (strcmp(name, "unknown") == 0)
                continue;
            put(o, "swarm_medic_decisions_total{kind=\"%s\",type=\"%s\"} %llu\n",
                dec_kind_name(k), name, (unsigned long long)s->decisions[k][t]);
        }
    counter(o, "publish_errors_total", "Publishes that failed.",
            s->publish_errors);
    counter(o, "not_durable_total",
            "Conclusions sent before the state they reveal was committed.",
            s->not_durable);
}

static void render_state(out *o, const sm_metrics_snap *s)
{
    counter(o, "commits_total", "LMDB commits.", s->commits);
    counter(o, "commit_failures_total", "LMDB commits that failed.",
            s->commit_failures);
    counter(o, "commit_redone_total",
            "Batches the commit thread could not write whole, redone on the "
            "event thread.", s->commit_redone);
    histogram(o, "commit_seconds", "Time one LMDB group commit takes.",
              &s->commit_latency);
    histogram(o, "handle_seconds",
              "Time the worker takes to handle one input message (one "
              "message in 32 is timed).",
              &s->handle_latency);
    counter(o, "reconnects_total", "Reconnections to NATS.", s->reconnects);
    counter(o, "inbox_full_waits_total",
            "Times a source found the inbox full and waited.",
            s->inbox_full_waits);
    if (s->bus_dropped >= 0)
        counter(o, "bus_dropped_total",
                "Messages the NATS client dropped for us (slow consumer).",
                (uint64_t)s->bus_dropped);
    gauge(o, "inbox_depth", "Input items waiting for the worker.",
          (double)s->inbox_depth);
    gauge(o, "outbox_depth", "Conclusions waiting for the commit of their state.",
          (double)s->outbox_depth);
    gauge(o, "uncommitted_events", "Events since the last commit.",
          (double)s->uncommitted);
    gauge(o, "swarms", "Swarms held in memory.", (double)s->swarms);
    gauge(o, "agents", "Agents held in memory, over every swarm.",
          (double)s->agents);
    counter(o, "swarms_expired_total", "Idle swarms forgotten.",
            s->swarms_expired);
    gauge(o, "store_used_bytes", "LMDB pages in use, in bytes.",
          (double)s->store_used_bytes);
    gauge(o, "store_map_bytes", "LMDB map size, in bytes.",
          (double)s->store_map_bytes);
    gauge(o, "store_entries", "Keys in the LMDB database.",
          (double)s->store_entries);
    gauge(o, "bus_clock_seconds", "The bus clock (latest event time), Unix s.",
          (double)s->bus_ms / 1000.0);
    if (s->consumer_lag >= 0)
        gauge(o, "consumer_lag", "JetStream messages not yet delivered to us.",
              (double)s->consumer_lag);
    if (s->partitions_owned >= 0)
        gauge(o, "partitions_owned", "Partitions whose lease this worker holds.",
              (double)s->partitions_owned);
}

sm_status sm_metrics_render(const sm_metrics_snap *s, char **buf, size_t *len)
{
    out o = {0};
    const char *why;
    render_input(&o, s);
    render_output(&o, s);
    render_state(&o, s);
    family(&o, "up", "gauge", "1: connected, subscribed, store open, not draining.");
    put(&o, "swarm_medic_up %d\n", sm_metrics_ready(s, &why) ? 1 : 0);
    family(&o, "phase", "gauge", "The worker's phase (1 for the current one).");
    for (int p = SM_PHASE_STARTING; p <= SM_PHASE_STOPPED; p++)
        put(&o, "swarm_medic_phase{phase=\"%s\"} %d\n", sm_phase_str((sm_phase)p),
            s->phase == (sm_phase)p);
    if (o.nomem || !o.buf) {
        free(o.buf);
        return SM_ERR_NOMEM;
    }
    *buf = o.buf;
    *len = o.len;
    return SM_OK;
}
