/*
 * worker.c - lifecycle, the consume loop and group commit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc.h"
#include "worker_int.h"

static sm_status bus_sink(void *ud, const char *subject, const void *data,
                          size_t len, const char *const *headers)
{
    return sm_bus_publish(ud, subject, data, len, headers);
}

sm_status sm_worker_create(sm_worker **out, const sm_config *cfg,
                           const sm_log *log)
{
    if (!out || !cfg || !log)
        return SM_ERR_INVALID;
    sm_worker *w = calloc(1, sizeof *w);
    if (!w)
        return SM_ERR_NOMEM;
    w->cfg = cfg;
    w->log = log;
    sm_status s = sm_registry_create(&w->reg, &cfg->detect);
    if (s == SM_OK)
        s = sm_codec_create(&w->codec);
    if (s != SM_OK) {
        sm_worker_destroy(w);
        return s;
    }
    *out = w;
    return SM_OK;
}

sm_status sm_worker_open(sm_worker *w)
{
    sm_store_config sc = {
        .dir = w->cfg->store_dir,
        .map_size = (size_t)w->cfg->map_size,
        .map_max = (size_t)w->cfg->map_max,
    };
    sm_status s = sm_store_open(&w->store, &sc);
    if (s != SM_OK) {
        sm_log_write(w->log, SM_LOG_ERROR, "store_open_failed",
                     "dir=%s status=\"%s\" detail=\"%s\"", sc.dir,
                     sm_status_str(s), w->store ? sm_store_error(w->store) : "");
        return s;
    }
    s = sm_persist_create(&w->persist, w->store);
    if (s != SM_OK)
        return s;
    sm_persist_load_result lr;
    s = sm_persist_load(w->persist, w->reg, &lr);
    sm_log_write(w->log, s == SM_OK ? SM_LOG_INFO : SM_LOG_ERROR, "store_loaded",
                 "dir=%s status=\"%s\" swarms=%zu agents=%zu corrupt_skipped=%zu newer_kept=%zu",
                 sc.dir, sm_status_str(s), lr.swarms, lr.agents, lr.corrupt, lr.newer);
    return s;
}

/* Sleeps up to ms, in slices, unless a stop signal is pending. Returns
 * true if one is. */
static bool wait_or_stop(int64_t ms, const sigset_t *stop)
{
    for (int64_t slept = 0; slept < ms; slept += 50) {
        if (sm_proc_stop_pending(stop, NULL))
            return true;
        nats_Sleep(50);
    }
    return sm_proc_stop_pending(stop, NULL);
}

sm_status sm_worker_connect(sm_worker *w, const sigset_t *stop)
{
    char err[512];
    int64_t wait_ms = w->cfg->reconnect_wait_ms > 100 ? w->cfg->reconnect_wait_ms : 100;
    sm_status s;
    /* cnats's own retry-on-failed-connect blocks inside Connect for ever
     * on an authorization error, deaf to signals and silent: retry here,
     * saying why each attempt failed. */
    for (unsigned attempt = 1;; attempt++) {
        s = sm_bus_connect(&w->bus, w->cfg, w->log, err, sizeof err);
        if (s == SM_OK)
            break;
        sm_log_write(w->log, s == SM_ERR_BUS ? SM_LOG_WARN : SM_LOG_ERROR,
                     "bus_connect_failed", "attempt=%u detail=\"%s\"%s", attempt,
                     err, s == SM_ERR_BUS ? " retry=yes" : " retry=no");
        if (s != SM_ERR_BUS)
            return s;           /* bad TLS or credential files: fatal */
        if (wait_or_stop(wait_ms, stop)) {
            sm_log_write(w->log, SM_LOG_WARN, "stopping",
                         "detail=\"stopped before ever connecting\"");
            return SM_ERR_BUS;
        }
        if (wait_ms < 5000)
            wait_ms *= 2;
    }
    natsConnection *nc = sm_bus_conn(w->bus);
    natsStatus ns = natsConnection_SubscribeSync(&w->sub, nc, w->cfg->input_subject);
    if (ns == NATS_OK)
        ns = natsSubscription_SetPendingLimits(w->sub, (int)w->cfg->pending_limit,
                                               -1);
    if (ns != NATS_OK) {
        sm_log_write(w->log, SM_LOG_ERROR, "subscribe_failed", "subject=%s status=\"%s\"",
                     w->cfg->input_subject, natsStatus_GetText(ns));
        return sm_bus_status(ns);
    }
    /* Make sure the server has our interest before we report ready. */
    natsConnection_FlushTimeout(nc, 2000);
    w->sink.publish = bus_sink;
    w->sink.ud = w->bus;
    sm_log_write(w->log, SM_LOG_INFO, "subscribed", "subject=%s url=%s",
                 w->cfg->input_subject, w->cfg->nats_url);
    return SM_OK;
}

void sm_worker_set_sink(sm_worker *w, const sm_sink *sink)
{
    w->sink = *sink;
}

sm_status sm_worker_flush(sm_worker *w)
{
    if (!w->persist)
        return SM_OK;
    sm_persist_result r;
    sm_status s = sm_persist_flush(w->persist, w->reg, w->cfg->retention_ms, &r);
    if (s == SM_OK) {
        w->st.commits++;
        w->st.agents_written += r.agents_written;
        w->uncommitted = 0;
    } else {
        w->st.commit_failures++;
    }
    bool notable = s != SM_OK || r.grows || r.prunes || r.map_full;
    sm_log_write(w->log, notable ? (s == SM_OK ? SM_LOG_WARN : SM_LOG_ERROR)
                                 : SM_LOG_DEBUG,
                 s == SM_OK ? "store_commit" : "store_commit_failed",
                 "status=\"%s\" swarms=%zu agents_written=%zu agents_deleted=%zu "
                 "map_full=%zu grows=%zu prunes=%zu kept_in_memory=%s "
                 "events_total=%llu detail=\"%s\"",
                 sm_status_str(s), r.swarms_written, r.agents_written,
                 r.agents_deleted, r.map_full, r.grows, r.prunes,
                 s == SM_OK ? "no" : "yes", (unsigned long long)w->st.events,
                 sm_store_error(w->store));
    return s;
}

static int64_t wall_ms(void)
{
    return nats_Now();
}

/* Peak resident set of this process, from VmHWM in /proc/self/status.
 * (getrusage's ru_maxrss survives execve on Linux, so a worker started by
 * a large process would report its parent's peak.) -1 if unavailable. */
static long max_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static void log_stats(sm_worker *w, const char *event, int64_t started)
{
    sm_store_stats ss = {0};
    if (w->store)
        sm_store_stats_get(w->store, &ss);
    int64_t el = wall_ms() - started;
    sm_log_write(w->log, SM_LOG_INFO, event,
                 "events=%llu deadletters=%llu bottlenecks=%llu publish_errors=%llu "
                 "commits=%llu commit_failures=%llu swarms=%zu wall_ms=%lld "
                 "events_per_s=%.0f max_rss_kb=%ld store_used_bytes=%zu "
                 "store_map_bytes=%zu store_entries=%zu",
                 (unsigned long long)w->st.events,
                 (unsigned long long)w->st.deadletters,
                 (unsigned long long)w->st.transitions,
                 (unsigned long long)w->st.publish_errors,
                 (unsigned long long)w->st.commits,
                 (unsigned long long)w->st.commit_failures,
                 sm_registry_count(w->reg), (long long)el,
                 el > 0 ? (double)w->st.events * 1000.0 / (double)el : 0.0,
                 max_rss_kb(), ss.used_bytes, ss.map_size, ss.entries);
}

/* Handles whatever the subscription still holds after Drain. */
static void drain(sm_worker *w)
{
    natsSubscription_Drain(w->sub);
    for (;;) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, w->sub, 200) != NATS_OK)
            break;
        sm_worker_handle(w, natsMsg_GetSubject(m), natsMsg_GetData(m),
                         (size_t)natsMsg_GetDataLength(m));
        natsMsg_Destroy(m);
    }
}

sm_status sm_worker_run(sm_worker *w, const sigset_t *stop)
{
    int64_t started = wall_ms(), last_commit = started, last_stats = started;
    int64_t idle_ms = w->cfg->commit_ms > 0 ? w->cfg->commit_ms : 50;
    uint64_t n = 0;
    for (;;) {
        natsMsg *m = NULL;
        natsStatus ns = natsSubscription_NextMsg(&m, w->sub, idle_ms);
        if (ns == NATS_OK) {
            sm_worker_handle(w, natsMsg_GetSubject(m), natsMsg_GetData(m),
                             (size_t)natsMsg_GetDataLength(m));
            natsMsg_Destroy(m);
        } else if (ns != NATS_TIMEOUT) {
            sm_log_write(w->log, SM_LOG_ERROR, "subscription_error",
                         "status=\"%s\"", natsStatus_GetText(ns));
            if (ns == NATS_CONNECTION_CLOSED || ns == NATS_INVALID_SUBSCRIPTION)
                break;
        }
        bool idle = ns == NATS_TIMEOUT;
        if (!idle && (++n & 63) != 0 && w->uncommitted < (uint64_t)w->cfg->commit_events)
            continue;           /* the common case: no clock, no syscall */
        int64_t now = wall_ms();
        if (w->uncommitted > 0 &&
            (idle || w->uncommitted >= (uint64_t)w->cfg->commit_events ||
             now - last_commit >= w->cfg->commit_ms)) {
            sm_worker_flush(w);
            last_commit = now;
        }
        if (w->cfg->stats_ms > 0 && now - last_stats >= w->cfg->stats_ms) {
            log_stats(w, "stats", started);
            last_stats = now;
        }
        int sig = 0;
        if (sm_proc_stop_pending(stop, &sig)) {
            sigwait(stop, &sig);
            sm_log_write(w->log, SM_LOG_INFO, "stopping",
                         "signal=%d detail=\"draining the subscription\"", sig);
            break;
        }
    }
    drain(w);
    sm_status s = sm_worker_flush(w);
    natsConnection_FlushTimeout(sm_bus_conn(w->bus), 2000);
    log_stats(w, "stopped", started);
    return s;
}

void sm_worker_stats_get(const sm_worker *w, sm_worker_stats *out)
{
    *out = w->st;
}

void sm_worker_destroy(sm_worker *w)
{
    if (!w)
        return;
    if (w->sub)
        natsSubscription_Destroy(w->sub);
    sm_bus_close(w->bus);
    sm_persist_destroy(w->persist);
    sm_store_close(w->store);
    sm_registry_destroy(w->reg);
    sm_codec_destroy(w->codec);
    sm_decisions_free(&w->decisions);
    free(w);
}
