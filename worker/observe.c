/*
 * observe.c - what an operator sees of the worker: its figures copied into
 * a metrics snapshot (metrics.h) for the HTTP thread, and systemd told of
 * readiness, the watchdog and the drain (notify.h). Runs on the worker
 * thread only; the HTTP thread reads the published copy.
 */
#include <string.h>

#include "worker_int.h"

void sm_worker_set_metrics(sm_worker *w, sm_metrics *m)
{
    w->metrics = m;
}

void sm_worker_count_decision(sm_worker_stats *st, const sm_decision *d)
{
    int type = d->kind == SM_DEC_BOTTLENECK ? (int)d->bn.type
             : d->kind == SM_DEC_FAILURE    ? (int)d->fail.type
             : d->kind == SM_DEC_PREDICTION ? (int)d->pred.type
             : d->kind == SM_DEC_HEAL       ? (int)d->heal.action
             : d->kind == SM_DEC_VERDICT    ? (int)d->verdict.verdict : -1;
    if ((unsigned)d->kind < SM_METRICS_DEC_KINDS &&
        (unsigned)type < SM_METRICS_DEC_TYPES)
        st->decisions[d->kind][type]++;
}

static void add_agents(void *ud, sm_swarm *sw)
{
    *(size_t *)ud += sm_swarm_agent_count(sw);
}

/* The worker's figures, as they are now. */
static void snapshot(sm_worker *w, sm_metrics_snap *s, int64_t now)
{
    sm_metrics_snap_init(s);
    s->phase = w->phase;
    s->turn_ms = now;
    s->bus_connected = sm_bus_connected(w->bus);
    s->store_open = w->store != NULL;
    memcpy(s->events_by_kind, w->st.by_kind, sizeof s->events_by_kind);
    memcpy(s->deadletters_by_status, w->st.deadletters_by_status,
           sizeof s->deadletters_by_status);
    memcpy(s->decisions, w->st.decisions, sizeof s->decisions);
    s->internal_errors = w->st.internal_errors;
    s->skew_rejected = w->st.skew_rejected;
    s->swarm_cap_rejected = w->st.swarm_cap_rejected;
    s->agent_cap_rejected = w->st.agent_cap_rejected;
    s->publish_errors = w->st.publish_errors;
    s->not_durable = w->st.not_durable;
    s->commits = w->st.commits;
    s->commit_failures = w->st.commit_failures;
    s->commit_redone = w->st.commit_redone;
    int64_t rc = sm_bus_reconnects(w->bus);
    s->reconnects = rc > 0 ? (uint64_t)rc : 0;
    sm_inbox_stats is;
    sm_inbox_stats_get(w->inbox, &is);
    s->inbox_full_waits = is.full_waits;
    s->inbox_depth = is.queued;
    s->bus_dropped = sm_bus_dropped(w->bus);
    s->outbox_depth = w->outbox.n;
    s->uncommitted = w->uncommitted;
    s->swarms = sm_registry_count(w->reg);
    sm_registry_foreach(w->reg, add_agents, &s->agents);
    s->swarms_expired = w->st.swarms_expired;
    /* while the commit thread has the store, the figures last read */
    sm_store_stats ss;
    if (w->store && !sm_writer_busy(w->writer) &&
        sm_store_stats_get(w->store, &ss) == SM_OK)
        w->store_seen = ss;
    if (w->store) {
        s->store_used_bytes = w->store_seen.used_bytes;
        s->store_map_bytes = w->store_seen.map_size;
        s->store_entries = w->store_seen.entries;
    }
    s->bus_ms = w->clock.bus_ms;
    s->applied = w->applied;
    s->handle_latency = w->handle_latency;
    s->commit_latency = w->commit_latency;
    /* consumer_lag: JetStream only (-1, unexposed, on core NATS);
     * partitions_owned stays -1 until partitions exist (js.h) */
    if (w->js) {
        sm_js_stats j;
        sm_js_stats_get(w->js, &j);
        s->consumer_lag = j.pending;
        s->partitions_owned = j.partitions_owned;
    }
}

static void publish(sm_worker *w, int64_t now)
{
    if (!w->metrics)
        return;
    sm_metrics_snap s;
    snapshot(w, &s, now);
    sm_metrics_publish(w->metrics, &s);
    w->published_ms = now;
}

void sm_worker_phase(sm_worker *w, sm_phase p)
{
    w->phase = p;
    if (p == SM_PHASE_RUNNING)
        sm_notify_ready(&w->notify, "connected and subscribed");
    else if (p == SM_PHASE_DRAINING)
        sm_notify_stopping(&w->notify);
    publish(w, sm_metrics_now_ms());
}

void sm_worker_turn(sm_worker *w, bool now)
{
    int64_t t = sm_metrics_now_ms();
    sm_notify_watchdog(&w->notify, t);
    if (now || t - w->published_ms >= SM_METRICS_PUBLISH_MS)
        publish(w, t);
}
