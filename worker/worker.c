/*
 * worker.c - lifecycle, the consume loop, drain and group commit. No cnats
 * here: the bus (bus.h) and the inbox (inbox.h) are the input's edge.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "proc.h"
#include "strategies.h"
#include "worker_int.h"

/* Items the inbox holds before sources block (then cnats's pending_limit
 * applies): about 1 MB of item headers, well under a second of input. */
#define INBOX_CAPACITY 16384
/* Items handled per inbox lock. */
#define BATCH 256
/* How long a stop waits for the input to drain (worker.h). */
#define DRAIN_MS SM_WORKER_DRAIN_MS
/* The longest one wait for input lasts: a stop signal, the systemd
 * watchdog and the partition leases are seen to between two waits, so
 * not only once per commit_interval (600 s of it made a quiet worker
 * deaf to SIGTERM for 600 s). */
#define WAIT_MAX_MS 200

static sm_status bus_sink(void *ud, const char *subject, const void *data,
                          size_t len, const char *const *headers)
{
    return sm_bus_publish(ud, subject, data, len, headers);
}

static int64_t bus_max_payload(void *ud)
{
    return sm_bus_max_payload(ud);
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
    w->ids_in_payload = strcmp(cfg->subject_ids, "payload") == 0;
    sm_hist_init(&w->handle_latency, SM_HIST_HANDLE);
    sm_hist_init(&w->commit_latency, SM_HIST_COMMIT);
    sm_notify_init(&w->notify);
    sm_status s = sm_registry_create(&w->reg, &cfg->detect);
    char err[256];
    if (s == SM_OK && cfg->heal &&
        sm_registry_set_autonomy(w->reg, cfg->autonomy, err, sizeof err) != SM_OK) {
        sm_log_write(log, SM_LOG_ERROR, "config", "detail=\"%s\"", err);
        s = SM_ERR_CONFIG;
    }
    if (s == SM_OK)
        s = sm_codec_create(&w->codec);
    if (s == SM_OK)
        s = sm_inbox_create(&w->inbox, INBOX_CAPACITY);
    if (s == SM_OK)
        s = sm_service_create(&w->svc, cfg, log, w->reg, &w->sink);
    if (s != SM_OK) {
        sm_worker_destroy(w);
        return s;
    }
    *out = w;
    return SM_OK;
}

/* Each key the load did not take as it stands, with what became of it. */
static void log_dropped(void *ud, const void *key, size_t klen, const char *why)
{
    const sm_worker *w = ud;
    char text[4 * 140 + 8];
    sm_persist_key_text(key, klen, text, sizeof text);
    sm_log_write(w->log, SM_LOG_WARN, "store_dropped", "key=\"%s\" reason=\"%s\"",
                 text, why);
}

static void latest_clock(void *ud, sm_swarm *sw)
{
    int64_t *t = ud;
    if (sm_swarm_now(sw) > *t)
        *t = sm_swarm_now(sw);
}

/* The bus clock and the input count the loaded state was built at, from
 * the meta record; a store written before it recorded them gives the
 * latest swarm clock (its events were the bus) and no count. */
static void restore_clock(sm_worker *w, const sm_persist_load_result *lr)
{
    if (lr->have_meta) {
        w->applied = lr->meta.applied_seq;
        w->clock = lr->meta.bus;
    }
    if (w->clock.bus_ms == 0)
        sm_registry_foreach(w->reg, latest_clock, &w->clock.bus_ms);
    w->bus_tick = w->clock.bus_ms / w->cfg->detect.tick_ms;
    w->st.bus_ms = w->clock.bus_ms;
}

sm_status sm_worker_open(sm_worker *w)
{
    char why[320] = "";
    sm_store_config sc = {
        .dir = w->cfg->store_dir,
        .map_size = (size_t)w->cfg->map_size,
        .map_max = (size_t)w->cfg->map_max,
    };
    sm_status s = sm_store_open(&w->store, &sc, why, sizeof why);
    if (s != SM_OK) {
        sm_log_write(w->log, SM_LOG_ERROR, "store_open_failed",
                     "dir=%s status=\"%s\" detail=\"%s\"", sc.dir,
                     sm_status_str(s), why);
        return s;
    }
    s = sm_persist_create(&w->persist, w->store);
    if (s != SM_OK)
        return s;
    sm_persist_on_drop(w->persist, log_dropped, w);
    sm_persist_extra extra;
    s = sm_service_attach_store(w->svc, w->store, &extra);
    if (s != SM_OK)
        return s;
    sm_persist_set_extra(w->persist, &extra);
    sm_persist_load_result lr;
    s = sm_persist_load(w->persist, w->reg, &lr);
    if (s == SM_OK)
        restore_clock(w, &lr);
    /* "ok" only when every key was loaded as it stands; otherwise each
     * one not was logged above (store_dropped) */
    bool whole = lr.corrupt == 0 && lr.newer == 0 && lr.unknown == 0;
    sm_log_write(w->log, s != SM_OK ? SM_LOG_ERROR : whole ? SM_LOG_INFO : SM_LOG_WARN,
                 "store_loaded",
                 "dir=%s status=\"%s\" swarms=%zu agents=%zu corrupt_skipped=%zu "
                 "newer_kept=%zu held_swarms=%zu unknown_kept=%zu applied=%llu "
                 "bus_ms=%lld",
                 sc.dir, s != SM_OK ? sm_status_str(s) : whole ? "ok" : "partial",
                 sm_registry_count(w->reg), lr.agents, lr.corrupt, lr.newer,
                 lr.held, lr.unknown, (unsigned long long)w->applied,
                 (long long)w->clock.bus_ms);
    if (s == SM_OK && w->cfg->max_swarms > 0 &&
        sm_registry_count(w->reg) > (size_t)w->cfg->max_swarms)
        sm_log_write(w->log, SM_LOG_WARN, "store_over_max_swarms",
                     "swarms=%zu max_swarms=%lld detail=\"all kept; no new swarm "
                     "is taken until idle ones expire\"", sm_registry_count(w->reg),
                     (long long)w->cfg->max_swarms);
    return s;
}

/* Sleeps up to ms, in slices, unless a stop signal is pending. Returns
 * true if one is. */
static bool wait_or_stop(sm_worker *w, int64_t ms, const sigset_t *stop)
{
    for (int64_t slept = 0; slept < ms; slept += 50) {
        if (sm_proc_stop_pending(stop, NULL))
            return true;
        sm_proc_sleep_ms(50);
        sm_worker_turn(w, false);
    }
    return sm_proc_stop_pending(stop, NULL);
}

static bool js_owns(const void *ud, const char *swarm)
{
    return sm_js_owns(ud, swarm);
}

/* JetStream input (js.h): streams and consumer, conclusions into the
 * output stream as soon as decided. A server that does not answer the
 * JetStream API yet (starting, electing) is retried like a connect. */
static sm_status connect_js(sm_worker *w, const sigset_t *stop)
{
    char err[512], url[512];
    sm_status s;
    for (unsigned attempt = 1;; attempt++) {
        s = sm_js_open(&w->js, w->bus, w->cfg, w->log, w->persist, w->inbox,
                       err, sizeof err);
        if (s == SM_OK)
            break;
        sm_log_write(w->log, SM_LOG_ERROR, "js_setup_failed",
                     "attempt=%u status=\"%s\" detail=\"%s\" retry=%s", attempt,
                     sm_status_str(s), err, s == SM_ERR_BUS ? "yes" : "no");
        if (s != SM_ERR_BUS || wait_or_stop(w, 1000, stop))
            return s;
    }
    w->sink.publish = sm_js_publish;
    w->sink.ud = w->js;
    w->sink.max_payload = sm_js_max_payload;
    w->send_before_commit = true;
    if (w->cfg->partitions > 0)
        sm_service_set_owner(w->svc, js_owns, w->js);
    s = sm_service_connect(w->svc, w->bus, w->inbox);
    if (s != SM_OK)
        return s;
    sm_log_write(w->log, SM_LOG_INFO, "subscribed",
                 "subject=%s url=%s input=jetstream stream=%s consumer=%s "
                 "out_stream=%s", w->cfg->input_subject,
                 sm_log_url(w->cfg->nats_url, url, sizeof url), w->cfg->js_stream,
                 w->cfg->js_consumer, w->cfg->js_out_stream);
    return SM_OK;
}

sm_status sm_worker_connect(sm_worker *w, const sigset_t *stop)
{
    char err[512];
    int64_t wait_ms = w->cfg->reconnect_wait_ms > 100 ? w->cfg->reconnect_wait_ms : 100;
    sm_status s;
    sm_worker_phase(w, SM_PHASE_CONNECTING);
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
        if (wait_or_stop(w, wait_ms, stop)) {
            sm_log_write(w->log, SM_LOG_WARN, "stopping",
                         "detail=\"stopped before ever connecting\"");
            return SM_ERR_BUS;
        }
        if (wait_ms < 5000)
            wait_ms *= 2;
    }
    if (strcmp(w->cfg->input, "jetstream") == 0)
        return connect_js(w, stop);
    s = sm_bus_subscribe(w->bus, w->cfg->input_subject, w->cfg->pending_limit,
                         w->inbox);
    if (s != SM_OK)
        return s;
    /* Make sure the server has our interest before we report ready. */
    for (unsigned attempt = 1; (s = sm_bus_flush(w->bus, 2000)) != SM_OK; attempt++) {
        sm_log_write(w->log, SM_LOG_WARN, "subscribe_unconfirmed",
                     "subject=%s attempt=%u status=\"%s\" retry=yes "
                     "detail=\"the server did not confirm the subscription\"",
                     w->cfg->input_subject, attempt, sm_status_str(s));
        if (wait_or_stop(w, wait_ms, stop)) {
            sm_log_write(w->log, SM_LOG_WARN, "stopping",
                         "detail=\"stopped before the subscription was confirmed\"");
            return SM_ERR_BUS;
        }
    }
    w->sink.publish = bus_sink;
    w->sink.ud = w->bus;
    w->sink.max_payload = bus_max_payload;
    s = sm_service_connect(w->svc, w->bus, w->inbox);
    if (s != SM_OK)
        return s;
    char url[512];
    sm_log_write(w->log, SM_LOG_INFO, "subscribed", "subject=%s url=%s",
                 w->cfg->input_subject,
                 sm_log_url(w->cfg->nats_url, url, sizeof url));
    return SM_OK;
}

sm_inbox *sm_worker_inbox(sm_worker *w)
{
    return w->inbox;
}

void sm_worker_set_sink(sm_worker *w, const sm_sink *sink)
{
    w->sink = *sink;
}

/* Seconds from a to b (monotonic). */
static double elapsed_s(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* Logs a commit's outcome: debug when all went in, warn or error when
 * something did not (it is kept in memory and retried). */
/* held_s: how long the worker thread spent on the commit (all of it on
 * the event thread; preparing the log with the commit thread); write_s:
 * how long the store took. */
static void log_commit(sm_worker *w, sm_status s, const sm_persist_result *r,
                       const char *how, double held_s, double write_s,
                       uint64_t events, uint64_t applied)
{
    bool notable = s != SM_OK || r->grows || r->prunes || r->map_full;
    /* a swarm that could not be written is kept in memory and retried at
     * the next commit; the others are committed all the same */
    sm_log_write(w->log, notable ? (s == SM_OK ? SM_LOG_WARN : SM_LOG_ERROR)
                                 : SM_LOG_DEBUG,
                 s == SM_OK ? "store_commit" : "store_commit_failed",
                 "status=\"%s\" swarms=%zu agents_written=%zu agents_deleted=%zu "
                 "swarms_deleted=%zu swarms_failed=%zu failed_swarm=%s "
                 "map_full=%zu grows=%zu prunes=%zu kept_in_memory=%s by=%s "
                 "held_ms=%.1f write_ms=%.1f "
                 "events_total=%llu applied=%llu detail=\"%s\"",
                 sm_status_str(s), r->swarms_written, r->agents_written,
                 r->agents_deleted, r->swarms_deleted, r->swarms_failed,
                 r->swarms_failed ? r->failed_swarm : "-", r->map_full, r->grows,
                 r->prunes, s == SM_OK ? "no" : "yes", how, held_s * 1000,
                 write_s * 1000,
                 (unsigned long long)events, (unsigned long long)applied,
                 sm_store_error(w->store));
}

static void note_big_swarm(void *ud, sm_swarm *sw)
{
    bool *big = ud;
    *big = *big || sm_swarm_agent_count(sw) >= SM_PREFETCH_MIN_AGENTS;
}

/* What a commit records beside the state: the services' records, the
 * applied count, the bus clock, the JetStream cursor (and the ack the
 * commit will send). Also, as good a moment as any: whether the loop
 * hints records ahead until the next commit (a swarm of many agents). */
static void before_commit(sm_worker *w)
{
    bool big = false;
    sm_registry_foreach(w->reg, note_big_swarm, &big);
    w->hint_agents = big;
    sm_service_before_commit(w->svc, w->outbox.v, w->outbox.n);
    sm_persist_set_applied(w->persist, w->applied);
    sm_persist_set_bus(w->persist, &w->clock);
    sm_js_before_commit(w->js, w->persist);
}

sm_status sm_worker_flush(sm_worker *w)
{
    if (!w->persist)
        return SM_OK;
    if (w->writer)              /* the batch in hand goes first */
        sm_worker_commit_async(w, false, true);
    sm_persist_result r;
    before_commit(w);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sm_status s = sm_persist_flush(w->persist, w->reg, w->cfg->retention_ms, &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    sm_hist_observe(&w->commit_latency, elapsed_s(&t0, &t1));
    w->store_failing = s != SM_OK;
    if (s == SM_OK) {
        sm_js_committed(w->js);     /* ack what the commit made durable */
        w->st.commits++;
        w->uncommitted = 0;
    } else {
        w->st.commit_failures++;
    }
    w->st.agents_written += r.agents_written;
    double took = elapsed_s(&t0, &t1);
    log_commit(w, s, &r, "event_thread", took, took, w->st.events, w->applied);
    return s;
}

/* ---- the commit thread (writer.h) ---------------------------------------- */

static void commit_done(sm_worker *w, const sm_writer_result *res);

static void wake_loop(void *ud)
{
    sm_worker *w = ud;
    sm_inbox_wake(w->inbox);
}

/* Room in the map for a prepared batch (sm_store_make_room), made before
 * the writer gets it: here, on the event thread with the writer idle and
 * the services' readers shut out (as sm_worker_flush grows), rather than
 * failed on the writer with MDB_MAP_FULL and redone here (a first commit
 * of 100 k agents did that twice: 64 MiB maps, 66 MB stores). Up to
 * map_max; beyond it the batch goes as it is, and a full map is handled
 * as ever (persist.h: grow, then prune). */
static void make_room(sm_worker *w, size_t bytes)
{
    unsigned grown = 0;
    (void)sm_store_make_room(w->store, bytes, &grown);
    w->st.map_grown += grown;
}

/* Prepares the next batch (encoding only) and hands it to the writer;
 * the conclusions of the outbox wait for it in `inflight` (JetStream:
 * sent now, before the commit, as sm_worker_release does). */
static void commit_begin(sm_worker *w)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    before_commit(w);
    sm_persist_result r;
    sm_status s = sm_persist_prepare(w->persist, w->reg, w->cfg->retention_ms,
                                     sm_writer_log(w->writer), &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (s != SM_OK) {
        /* not even recorded (out of memory): on the event thread */
        sm_log_write(w->log, SM_LOG_WARN, "store_commit_prepare_failed",
                     "status=\"%s\" detail=\"committing on the event thread\"",
                     sm_status_str(s));
        if (w->outbox.n > 0)
            sm_worker_release_now(w);
        else
            sm_worker_flush(w);
        return;
    }
    if (w->send_before_commit) {
        sm_worker_send_held(w, &w->outbox);
    } else {
        sm_decisions t = w->inflight;   /* empty: sent at completion */
        w->inflight = w->outbox;
        w->outbox = t;
    }
    w->inflight_events = w->uncommitted;
    w->uncommitted = 0;
    w->inflight_res = r;
    w->inflight_held_s = elapsed_s(&t0, &t1);
    w->inflight_total = w->st.events;
    w->inflight_applied = w->applied;
    make_room(w, sm_store_log_bytes(sm_writer_log(w->writer)));
    /* A small batch is written here: its LMDB work is less than what a
     * hand-over and a wake-up of this thread cost in latency. */
    sm_writer_result wr;
    /* (commit_thread_min, 1 MiB: 100 agents make ~25 KB, 100 k ~28 MB) */
    if (sm_store_log_bytes(sm_writer_log(w->writer)) <
        (size_t)w->cfg->commit_thread_min) {
        w->inflight_how = "event_thread";
        sm_persist_window(w->persist, true);    /* requests, meanwhile */
        sm_status hs = sm_writer_write_here(w->writer, &wr);
        sm_persist_window(w->persist, false);
        if (hs != SM_OK)        /* not written: redone as a failure */
            wr = (sm_writer_result){.applied = hs};
        w->inflight_held_s += wr.seconds;
        commit_done(w, &wr);
        return;
    }
    w->inflight_how = "commit_thread";
    sm_status ss = sm_writer_submit(w->writer);
    if (ss != SM_OK) {
        wr = (sm_writer_result){.applied = ss};
        commit_done(w, &wr);
    }
}

/* Takes the outcome of the batch in hand, if written (wait: waits).
 * Written: the JetStream ack, then its conclusions. Not (wholly)
 * written: memory holds it again (persist.h), and the commit is redone
 * on the event thread, which grows the map, prunes and reports as
 * without a commit thread. Returns whether the writer is free. */
static bool commit_finish(sm_worker *w, bool wait)
{
    sm_writer_result wr;
    if (!sm_writer_busy(w->writer))
        return true;
    if (!sm_writer_poll(w->writer, wait, &wr))
        return false;
    commit_done(w, &wr);
    return true;
}

/* The outcome of the prepared batch, written by either thread. */
static void commit_done(sm_worker *w, const sm_writer_result *res)
{
    sm_writer_result wr = *res;
    sm_persist_result r;
    memset(&r, 0, sizeof r);
    sm_status s = sm_persist_complete(w->persist, w->reg, wr.applied,
                                      wr.part_status, &r);
    sm_hist_observe(&w->commit_latency, wr.seconds);
    if (s == SM_OK) {
        w->store_failing = false;
        sm_js_committed(w->js);     /* ack what the commit made durable */
        w->st.commits++;
        w->st.agents_written += w->inflight_res.agents_written;
        log_commit(w, s, &w->inflight_res, w->inflight_how, w->inflight_held_s,
                   wr.seconds, w->inflight_total, w->inflight_applied);
        sm_worker_send_held(w, &w->inflight);
        return;
    }
    sm_log_write(w->log, SM_LOG_WARN, "store_commit_redo",
                 "status=\"%s\" swarms_failed=%zu failed_swarm=%s "
                 "detail=\"the commit thread could not write all of the batch "
                 "(%s); kept in memory, committing on the event thread\"",
                 sm_status_str(s), r.swarms_failed,
                 r.swarms_failed ? r.failed_swarm : "-", sm_store_error(w->store));
    w->uncommitted += w->inflight_events;
    w->st.commit_redone++;
    sm_status fs = sm_worker_flush(w);
    if (fs != SM_OK && w->inflight.n > 0) {
        w->st.not_durable += w->inflight.n;
        sm_log_write(w->log, SM_LOG_ERROR, "conclusions_not_durable",
                     "count=%zu status=\"%s\" detail=\"published before the "
                     "state they reveal was committed\"", w->inflight.n,
                     sm_status_str(fs));
    }
    sm_worker_send_held(w, &w->inflight);
}

void sm_worker_commit_async(sm_worker *w, bool start, bool wait)
{
    if (!w->writer || !commit_finish(w, wait) || !start)
        return;
    commit_begin(w);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* CPU time of the whole process (every thread), user and system, ms. */
static long long cpu_ms(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return ((long long)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
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

/* The JetStream figures beside the stats line (js.h). */
static void log_js(const sm_worker *w, const char *event)
{
    sm_js_stats j;
    sm_js_stats_get(w->js, &j);
    sm_log_write(w->log, SM_LOG_INFO, "js_stats",
                 "at=%s js_fetched=%llu js_redelivered_seen=%llu "
                 "js_poison=%llu js_gaps=%llu js_acks=%llu js_dup_dropped=%llu "
                 "js_applied_seq=%llu partitions_owned=%lld leases_taken=%llu "
                 "leases_lost=%llu leases_handed_back=%llu takeovers=%llu "
                 "not_owned_skipped=%llu not_owned_dropped=%llu "
                 "replay_suppressed=%llu", event, (unsigned long long)j.fetched,
                 (unsigned long long)j.redelivered_seen,
                 (unsigned long long)j.poison, (unsigned long long)j.gaps,
                 (unsigned long long)j.acks, (unsigned long long)j.dup_dropped,
                 (unsigned long long)j.applied_seq, (long long)j.partitions_owned,
                 (unsigned long long)j.leases_taken, (unsigned long long)j.leases_lost,
                 (unsigned long long)j.leases_handed_back,
                 (unsigned long long)j.takeovers,
                 (unsigned long long)j.not_owned_skipped,
                 (unsigned long long)j.not_owned_dropped,
                 (unsigned long long)j.replay_suppressed);
}

static void log_stats(sm_worker *w, const char *event, int64_t started)
{
    /* while the commit thread has the store, the figures last read */
    sm_store_stats ss;
    if (w->store && !sm_writer_busy(w->writer) &&
        sm_store_stats_get(w->store, &ss) == SM_OK)
        w->store_seen = ss;
    ss = w->store_seen;
    int64_t el = wall_ms() - started;
    sm_inbox_stats is;
    sm_inbox_stats_get(w->inbox, &is);
    sm_log_write(w->log, SM_LOG_INFO, event,
                 "events=%llu deadletters=%llu internal_errors=%llu conclusions=%llu "
                 "publish_errors=%llu inbox_full_waits=%llu dropped=%lld "
                 "commits=%llu commit_failures=%llu commit_redone=%llu "
                 "map_grown=%llu swarms=%zu skew_rejected=%llu "
                 "swarm_cap_rejected=%llu agent_cap_rejected=%llu "
                 "swarms_expired=%llu not_durable=%llu applied=%llu wall_ms=%lld "
                 "events_per_s=%.0f cpu_ms=%lld max_rss_kb=%ld store_used_bytes=%zu "
                 "store_map_bytes=%zu store_entries=%zu",
                 (unsigned long long)w->st.events,
                 (unsigned long long)w->st.deadletters,
                 (unsigned long long)w->st.internal_errors,
                 (unsigned long long)w->st.transitions,
                 (unsigned long long)w->st.publish_errors,
                 (unsigned long long)is.full_waits, (long long)sm_bus_dropped(w->bus),
                 (unsigned long long)w->st.commits,
                 (unsigned long long)w->st.commit_failures,
                 (unsigned long long)w->st.commit_redone,
                 (unsigned long long)w->st.map_grown,
                 sm_registry_count(w->reg),
                 (unsigned long long)w->st.skew_rejected,
                 (unsigned long long)w->st.swarm_cap_rejected,
                 (unsigned long long)w->st.agent_cap_rejected,
                 (unsigned long long)w->st.swarms_expired,
                 (unsigned long long)w->st.not_durable,
                 (unsigned long long)w->applied, (long long)el,
                 el > 0 ? (double)w->st.events * 1000.0 / (double)el : 0.0,
                 cpu_ms(), max_rss_kb(), ss.used_bytes, ss.map_size, ss.entries);
    if (w->js)
        log_js(w, event);
}

typedef struct ledger_sum {
    sm_pred_tally by_source[SM_SRC_COUNT + 1];
    sm_pred_tally by_type[SM_FAIL_MAX + 1];
} ledger_sum;

static void ledger_of(void *ud, sm_swarm *sw)
{
    ledger_sum *l = ud;
    sm_swarm_ledger_add(sw, l->by_source, l->by_type);
}

static void log_tally(const sm_worker *w, const char *what, const char *name,
                      const sm_pred_tally *t)
{
    uint32_t fates = t->fulfilled + t->late + t->wrong;
    double acc = fates ? (double)t->fulfilled / fates : 0.0;
    sm_log_write(w->log, SM_LOG_INFO, "predictions",
                 "%s=%s raised=%u fulfilled=%u late=%u wrong=%u preempted=%u "
                 "open=%u accuracy=%.3f false_positive_rate=%.3f lead_mean_s=%.1f "
                 "eta_err_mean_s=%.1f target_met=%s",
                 what, name, t->raised, t->fulfilled, t->late, t->wrong,
                 t->preempted, t->raised - fates - t->preempted, acc,
                 fates ? (double)t->wrong / fates : 0.0,
                 t->fulfilled ? t->lead_s / t->fulfilled : 0.0,
                 t->fulfilled + t->late ? t->eta_err_s / (t->fulfilled + t->late)
                                        : 0.0,
                 fates == 0 ? "unknown" : acc >= 0.7 ? "yes" : "no");
}

/* The prediction ledger over every swarm: overall, then each source and
 * failure type that has raised one (SPEC capability 4's statistics). */
static void log_ledger(sm_worker *w)
{
    ledger_sum l;
    memset(&l, 0, sizeof l);
    sm_registry_foreach(w->reg, ledger_of, &l);
    log_tally(w, "source", "all", &l.by_source[0]);
    for (int i = 1; i <= SM_SRC_COUNT; i++)
        if (l.by_source[i].raised)
            log_tally(w, "source", sm_pred_source_str((sm_pred_source)i),
                      &l.by_source[i]);
    for (int i = 1; i <= SM_FAIL_MAX; i++)
        if (l.by_type[i].raised)
            log_tally(w, "type", sm_fail_type_str((sm_fail_type)i),
                      &l.by_type[i]);
}

/* Answers the requests waiting on the inbox's urgent lane (service.h).
 * Returns how many. */
static size_t serve_requests(sm_worker *w)
{
    sm_item req[16];
    size_t total = 0, n;
    while ((n = sm_inbox_pop_urgent(w->inbox, req, 16)) > 0) {
        for (size_t i = 0; i < n; i++) {
            sm_service_handle(w->svc, &req[i]);
            sm_item_release(&req[i]);
        }
        total += n;
    }
    return total;
}

typedef struct heal_sum {
    sm_heal_tally by_action[SM_ACT_COUNT + 1];
    sm_heal_tally by_type[SM_FAIL_MAX + 1];
    sm_heal_tally by_strategy[SM_HEAL_MAX_STRATEGIES];
} heal_sum;

static void heal_of(void *ud, sm_swarm *sw)
{
    heal_sum *h = ud;
    sm_swarm_heal_add(sw, h->by_action, h->by_type, h->by_strategy);
}

/* One line of healing analytics (SPEC capability 6): success rate (a
 * pre-empted failure counts as a success, a superseded command as
 * neither), times, the trend of the last 16 verdicts against the whole,
 * and a recommendation when a strategy fails too often. */
static void log_heal(const sm_worker *w, const char *what, const char *name,
                     const sm_heal_tally *t)
{
    static const char *const trends[] = {"unknown", "improving", "stable",
                                         "degrading"};
    sm_heal_summary m;
    sm_heal_summarize(t, &m);
    const char *advice = m.judged >= 5 && m.success_rate < 0.85
                             ? "success_below_85pct:review_strategy_or_autonomy"
                             : "-";
    sm_log_write(w->log, SM_LOG_INFO, "healing_stats",
                 "%s=%s commands=%u verified=%u failed=%u preempted=%u "
                 "superseded=%u escalated=%u success_rate=%.3f "
                 "detect_mean_s=%.1f recover_mean_s=%.1f trend=%s "
                 "recommendation=%s target_met=%s",
                 what, name, t->commands, t->verified, t->failed, t->preempted,
                 t->superseded, t->escalated, m.success_rate, m.detect_mean_s,
                 m.recover_mean_s, trends[m.trend], advice,
                 m.judged == 0 ? "unknown" : m.success_rate >= 0.85 ? "yes" : "no");
}

/* Healing analytics over every swarm: overall, per action, per failure
 * type and per strategy that issued a command. */
static void log_healing(sm_worker *w)
{
    heal_sum h;
    memset(&h, 0, sizeof h);
    sm_registry_foreach(w->reg, heal_of, &h);
    sm_heal_tally all;
    sm_heal_tally_all(h.by_action, &all);
    log_heal(w, "action", "all", &all);
    for (int i = 1; i <= SM_ACT_COUNT; i++)
        if (h.by_action[i].commands && i != SM_ACT_ESCALATE)
            log_heal(w, "action", sm_heal_action_str((sm_heal_action)i),
                     &h.by_action[i]);
    for (int i = 0; i <= SM_FAIL_MAX; i++)
        if (h.by_type[i].commands)
            log_heal(w, "type", i ? sm_fail_type_str((sm_fail_type)i)
                                  : "bottleneck", &h.by_type[i]);
    size_t n;
    const sm_strategy *table = sm_strategies(&n);
    for (size_t i = 0; i < n && i < SM_HEAL_MAX_STRATEGIES; i++)
        if (h.by_strategy[i].commands)
            log_heal(w, "strategy", table[i].name, &h.by_strategy[i]);
}

/* Pops one batch (waiting up to wait_ms for it), handles and releases
 * each item; requests are answered first and between any two items.
 * Returns how many items and requests. */
static size_t handle_batch(sm_worker *w, int64_t wait_ms)
{
    sm_item batch[BATCH];
    sm_ahead ahead[3];          /* items i .. i+2, parsed */
    size_t served = serve_requests(w);
    size_t n = sm_inbox_pop(w->inbox, batch, BATCH, served ? 0 : wait_ms);
    /* with many agents their records are cache misses: hinted a step or
     * two ahead, they overlap the handling of the items in between (with
     * few, the hints would only cost) */
    bool hint = w->hint_agents;
    w->st.ahead_items += hint ? n : 0;
    w->in_batch = true;
    for (size_t j = 0; hint && j < 2 && j < n; j++)
        sm_worker_ahead(w, &batch[j], &ahead[j]);
    for (size_t i = 0; i < n; i++) {
        if (hint && i + 2 < n)
            sm_worker_ahead(w, &batch[i + 2], &ahead[(i + 2) % 3]);
        if (hint && i + 1 < n)
            sm_worker_ahead_record(w, &ahead[(i + 1) % 3]);
        /* one item in SM_METRICS_HANDLE_SAMPLE is timed: a clock read
         * can cost more than a tenth of an item's handling */
        bool timed = w->handle_seq++ % SM_METRICS_HANDLE_SAMPLE == 0;
        struct timespec t0, t1;
        if (timed)
            clock_gettime(CLOCK_MONOTONIC, &t0);
        if (sm_item_seen(&batch[i]))
            w->uncommitted++;   /* held already: acked by the next commit */
        else if (hint)
            sm_worker_handle_ahead(w, &batch[i], &ahead[i % 3]);
        else
            sm_worker_handle_item(w, &batch[i]);
        if (timed) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            sm_hist_observe(&w->handle_latency, elapsed_s(&t0, &t1));
        }
        if (sm_inbox_urgent_waiting(w->inbox))
            served += serve_requests(w);
    }
    /* Released together: cnats hands each message to its collector
     * thread, and wakes it if it sleeps; one at a time, between two
     * items, that was a futex wake-up and a context switch per message. */
    for (size_t i = 0; i < n; i++)
        sm_item_release(&batch[i]);
    w->in_batch = false;
    sm_worker_release(w);       /* one commit for the batch's conclusions */
    return n + served + serve_requests(w);
}

/* Group commit: after commit_events, after commit_ms of wall time with
 * uncommitted events, or when the input goes idle. */
static void maybe_commit(sm_worker *w, bool idle, int64_t now, int64_t *last)
{
    bool due = w->uncommitted > 0 &&
               (idle || w->uncommitted >= (uint64_t)w->cfg->commit_events ||
                now - *last >= w->cfg->commit_ms);
    if (w->writer) {
        /* the outcome of the batch in hand, if written; then the next
         * one if due, or if conclusions wait for one */
        if (!commit_finish(w, false))
            return;
        if (due || (w->outbox.n > 0 && !w->store_failing)) {
            commit_begin(w);
            *last = now;
        }
        return;
    }
    if (due) {
        sm_worker_flush(w);
        *last = now;
    }
}

/* Says so, at most once a second, when sources found the inbox full. */
static void note_backpressure(sm_worker *w, const sm_inbox_stats *is,
                              int64_t now, uint64_t *seen, int64_t *last)
{
    if (is->full_waits == *seen || now - *last < 1000)
        return;
    sm_log_write(w->log, SM_LOG_WARN, "inbox_full",
                 "full_waits=%llu capacity=%d pending_limit=%lld dropped=%lld "
                 "detail=\"input faster than the worker: sources wait, then "
                 "the bus drops beyond pending_limit\"",
                 (unsigned long long)is->full_waits, INBOX_CAPACITY,
                 (long long)w->cfg->pending_limit, (long long)sm_bus_dropped(w->bus));
    *seen = is->full_waits;
    *last = now;
}

/* Stops new input and handles everything already delivered: the bus
 * drains the subscription (its source reports done after the last
 * message), we pop until no source is open and the inbox is empty. */
static void drain(sm_worker *w, bool input_lost)
{
    sm_js_drain(w->js);
    sm_status s = input_lost ? SM_OK : sm_bus_drain(w->bus, DRAIN_MS);
    if (s != SM_OK)
        sm_log_write(w->log, SM_LOG_ERROR, "drain_failed", "status=\"%s\"",
                     sm_status_str(s));
    /* Wait for the source's end only if it is draining; otherwise take
     * what is queued. */
    bool wait_source = !input_lost && s == SM_OK;
    int64_t until = wall_ms() + DRAIN_MS + 1000;
    uint64_t before = w->st.events + w->st.deadletters;
    sm_inbox_stats is;
    for (;;) {
        sm_worker_turn(w, false);
        if (handle_batch(w, 50) > 0)
            continue;
        sm_inbox_stats_get(w->inbox, &is);
        if (is.queued == 0 &&
            (!wait_source || is.sources == 0 || is.failure != SM_OK))
            break;
        if (wall_ms() > until) {
            sm_log_write(w->log, SM_LOG_ERROR, "drain_timeout",
                         "queued=%zu sources=%zu", is.queued, is.sources);
            break;
        }
    }
    if (!input_lost && s == SM_OK)
        s = sm_bus_drain_wait(w->bus, 1000);
    sm_log_write(w->log, s == SM_OK ? SM_LOG_INFO : SM_LOG_WARN, "drained",
                 "handled=%llu status=\"%s\"",
                 (unsigned long long)(w->st.events + w->st.deadletters - before),
                 sm_status_str(s));
}

sm_status sm_worker_run(sm_worker *w, const sigset_t *stop)
{
    int64_t started = wall_ms(), last_commit = started, last_stats = started;
    int64_t last_full = 0;
    /* idle: no input for idle_ms, seen over waits of at most WAIT_MAX_MS */
    int64_t idle_ms = w->cfg->commit_ms > 0 ? w->cfg->commit_ms : 50;
    int64_t wait_ms = idle_ms < WAIT_MAX_MS ? idle_ms : WAIT_MAX_MS;
    int64_t last_input = started;
    uint64_t full_seen = 0;
    sm_status lost = SM_OK;
    if (sm_service_serve_start(w->svc) != SM_OK)    /* commit windows */
        sm_log_write(w->log, SM_LOG_WARN, "service_windows_off",
                     "detail=\"requests wait for commits\"");
    if (w->persist && w->cfg->commit_thread) {
        sm_status ws = sm_writer_start(&w->writer, w->store, wake_loop, w);
        if (ws != SM_OK)
            sm_log_write(w->log, SM_LOG_WARN, "commit_thread_off",
                         "status=\"%s\" detail=\"commits on the event thread\"",
                         sm_status_str(ws));
    }
    sm_worker_phase(w, SM_PHASE_RUNNING);
    for (;;) {
        int64_t t0 = sm_proc_mono_ns();
        bool quiet = handle_batch(w, wait_ms) == 0;
        bool woken = quiet && sm_proc_mono_ns() - t0 < wait_ms * 1000000;
        sm_js_poll(w->js);      /* partitions taken, lost, handed back */
        int64_t now = wall_ms();
        if (!quiet)
            last_input = now;
        /* a wait cut short with nothing in it was a wake-up (a commit
         * done): idle at once, as when every wait was idle_ms long */
        bool idle = quiet && (woken || now - last_input >= idle_ms);
        maybe_commit(w, idle, now, &last_commit);
        sm_worker_turn(w, idle);
        if (w->cfg->stats_ms > 0 && now - last_stats >= w->cfg->stats_ms) {
            log_stats(w, "stats", started);
            log_ledger(w);
            log_healing(w);
            last_stats = now;
        }
        sm_inbox_stats is;
        sm_inbox_stats_get(w->inbox, &is);
        note_backpressure(w, &is, now, &full_seen, &last_full);
        if (is.failure != SM_OK || is.sources == 0) {
            lost = is.failure != SM_OK ? is.failure : SM_ERR_BUS;
            sm_log_write(w->log, SM_LOG_ERROR, "input_lost",
                         "status=\"%s\" sources=%zu detail=\"the input ended "
                         "without a stop signal (connection closed?); handling "
                         "what arrived, committing, exiting non-zero\"",
                         sm_status_str(is.failure), is.sources);
            break;
        }
        int sig = 0;
        if (sm_proc_stop_pending(stop, &sig)) {
            sigwait(stop, &sig);
            sm_log_write(w->log, SM_LOG_INFO, "stopping",
                         "signal=%d detail=\"draining the subscription\"", sig);
            break;
        }
    }
    sm_worker_phase(w, SM_PHASE_DRAINING);
    drain(w, lost != SM_OK);
    /* The batch in hand and its conclusions; then, on this thread, the
     * conclusions that waited for a commit the busy writer had not begun
     * (committed and sent, in the order release_now keeps for the mode);
     * then whatever else is dirty. */
    sm_worker_commit_async(w, false, true);
    sm_writer_stop(w->writer);
    w->writer = NULL;
    sm_worker_release_now(w);
    sm_status s = sm_worker_flush(w);
    if (s == SM_OK)
        sm_js_hand_back(w->js);     /* committed: others take them now */
    if (w->bus && lost == SM_OK) {
        sm_status fs = sm_bus_flush(w->bus, 2000);
        if (fs != SM_OK)
            sm_log_write(w->log, SM_LOG_ERROR, "publish_flush_failed",
                         "status=\"%s\"", sm_status_str(fs));
    }
    sm_service_serve_stop(w->svc);
    log_stats(w, "stopped", started);
    log_ledger(w);
    log_healing(w);
    sm_worker_phase(w, SM_PHASE_STOPPED);
    return lost != SM_OK ? lost : s;
}

const sm_swarm *sm_worker_swarm(const sm_worker *w, const char *id)
{
    return sm_registry_find(w->reg, id);
}

void sm_worker_stats_get(const sm_worker *w, sm_worker_stats *out)
{
    *out = w->st;
    out->swarms = sm_registry_count(w->reg);
    out->applied = w->applied;
}

void sm_worker_destroy(sm_worker *w)
{
    if (!w)
        return;
    /* Wake a source blocked on a full inbox, close the bus (its last
     * callback has run when this returns), then free what is queued. */
    if (w->inbox)
        sm_inbox_close(w->inbox);
    sm_service_destroy(w->svc);     /* its subscriptions drain first */
    sm_js_close(w->js);
    sm_bus_close(w->bus);
    sm_writer_stop(w->writer);  /* before the store; its outcome dropped */
    sm_inbox_destroy(w->inbox);
    sm_persist_destroy(w->persist);
    sm_store_close(w->store);
    sm_registry_destroy(w->reg);
    sm_codec_destroy(w->codec);
    sm_decisions_free(&w->decisions);
    sm_decisions_free(&w->outbox);
    sm_decisions_free(&w->inflight);
    free(w);
}
