/*
 * handle.c - one short handler per input subject, the dead-letter path and
 * the publication of conclusions. Everything runs on the worker's thread.
 */
#include <stdio.h>
#include <string.h>

#include "worker_int.h"

/* ---- output ---------------------------------------------------------- */

/* Publishes one Bottleneck decision. */
static void publish_bottleneck(sm_worker *w, const sm_decision *d)
{
    char subject[256], id[17];
    const uint8_t *buf;
    size_t len;
    if (sm_bottleneck_subject(w->cfg->output_prefix, d, subject,
                              sizeof subject) != SM_OK ||
        sm_codec_bottleneck(w->codec, d, &buf, &len) != SM_OK) {
        w->st.publish_errors++;
        sm_log_write(w->log, SM_LOG_ERROR, "encode_failed", "swarm=%s type=%s",
                     d->swarm, sm_bn_type_str(d->bn.type));
        return;
    }
    sm_decision_id_hex(d->id, id, sizeof id);
    const char *headers[] = {"Nats-Msg-Id", id, NULL};
    sm_status s = w->sink.publish(w->sink.ud, subject, buf, len, headers);
    if (s != SM_OK)
        w->st.publish_errors++;
    else
        w->st.transitions++;
    sm_log_write(w->log, SM_LOG_INFO, "bottleneck",
                 "swarm=%s type=%s transition=%s severity=%s impact=%.3f "
                 "subject=%s reason=%s at_ms=%lld id=%s published=%s",
                 d->swarm, sm_bn_type_str(d->bn.type),
                 sm_transition_str(d->bn.transition),
                 sm_severity_str(d->bn.severity), d->bn.impact,
                 d->subject[0] ? d->subject : "-", d->bn.reason,
                 (long long)d->at_ms, id, s == SM_OK ? "yes" : sm_status_str(s));
}

/* Publishes what the core decided during the last call, in order, and
 * empties the buffer. */
static void publish_decisions(sm_worker *w)
{
    for (size_t i = 0; i < w->decisions.n; i++) {
        const sm_decision *d = &w->decisions.v[i];
        switch (d->kind) {
        case SM_DEC_BOTTLENECK:
            publish_bottleneck(w, d);
            break;
        }
    }
    if (w->decisions.lost > 0) {
        sm_log_write(w->log, SM_LOG_ERROR, "decisions_lost",
                     "count=%llu detail=\"out of memory growing the decision buffer\"",
                     (unsigned long long)w->decisions.lost);
        w->st.publish_errors += w->decisions.lost;
        w->decisions.lost = 0;
    }
    sm_decisions_clear(&w->decisions);
}

/* Forwards a rejected input, untouched, with the reason and its subject. */
static sm_status deadletter(sm_worker *w, const char *subject,
                            const void *data, size_t len, sm_status why_s,
                            const char *why)
{
    w->st.deadletters++;
    const char *headers[] = {"Medic-Reason", why, "Medic-Status",
                             sm_status_str(why_s), "Medic-Subject", subject,
                             NULL};
    sm_status s = w->sink.publish(w->sink.ud, w->cfg->deadletter_subject, data,
                                  len, headers);
    if (s != SM_OK)
        w->st.publish_errors++;
    sm_log_write(w->log, SM_LOG_WARN, "input_rejected",
                 "subject=%s bytes=%zu reason=\"%s\" forwarded=%s total=%llu",
                 subject, len, why, s == SM_OK ? w->cfg->deadletter_subject
                                                 : sm_status_str(s),
                 (unsigned long long)w->st.deadletters);
    return why_s;
}

/* ---- one handler per subject ------------------------------------------
 * Each decodes into a core event and hands it to the swarm's detectors.
 * A non-OK return carries *why for the dead letter. */

typedef sm_status (*handler_fn)(sm_worker *w, const sm_subject *subj,
                                const void *data, size_t len, sm_swarm *sw,
                                const char **why);

static sm_status core_status(sm_status s, const char **why)
{
    if (s != SM_OK)
        *why = "rejected by the detectors (bad id or enum)";
    return s;
}

static sm_status on_task(sm_worker *w, const sm_subject *subj,
                         const void *data, size_t len, sm_swarm *sw,
                         const char **why)
{
    sm_task_event ev;
    sm_status s = sm_codec_task(w->codec, subj, data, len, &ev, why);
    if (s != SM_OK)
        return s;
    return core_status(sm_swarm_on_task(sw, &ev, &w->decisions), why);
}

static sm_status on_heartbeat(sm_worker *w, const sm_subject *subj,
                              const void *data, size_t len, sm_swarm *sw,
                              const char **why)
{
    sm_heartbeat ev;
    sm_status s = sm_codec_heartbeat(w->codec, subj, data, len, &ev, why);
    if (s != SM_OK)
        return s;
    return core_status(sm_swarm_on_heartbeat(sw, &ev, &w->decisions), why);
}

static sm_status on_resource(sm_worker *w, const sm_subject *subj,
                             const void *data, size_t len, sm_swarm *sw,
                             const char **why)
{
    sm_resource_sample ev;
    sm_status s = sm_codec_resource(w->codec, subj, data, len, &ev, why);
    if (s != SM_OK)
        return s;
    return core_status(sm_swarm_on_resource(sw, &ev, &w->decisions), why);
}

static sm_status on_consensus(sm_worker *w, const sm_subject *subj,
                              const void *data, size_t len, sm_swarm *sw,
                              const char **why)
{
    sm_consensus_round ev;
    sm_status s = sm_codec_consensus(w->codec, subj, data, len, &ev, why);
    if (s != SM_OK)
        return s;
    return core_status(sm_swarm_on_consensus(sw, &ev, &w->decisions), why);
}

static sm_status on_agent(sm_worker *w, const sm_subject *subj,
                          const void *data, size_t len, sm_swarm *sw,
                          const char **why)
{
    sm_agent_lifecycle ev;
    sm_status s = sm_codec_agent(w->codec, subj, data, len, &ev, why);
    if (s != SM_OK)
        return s;
    return core_status(sm_swarm_on_agent(sw, &ev, &w->decisions), why);
}

/* Healing outcomes are validated and counted; acting on them (verifying
 * healing) belongs to the healing module, which is not built yet. They
 * still move the swarm's event time. */
static sm_status on_outcome(sm_worker *w, const sm_subject *subj,
                            const void *data, size_t len, sm_swarm *sw,
                            const char **why)
{
    sm_outcome ev;
    sm_status s = sm_codec_outcome(w->codec, subj, data, len, &ev, why);
    if (s != SM_OK)
        return s;
    sm_swarm_advance(sw, ev.ts_ms, &w->decisions);
    return SM_OK;
}

static const handler_fn handlers[] = {
    [SM_IN_TASK] = on_task,           [SM_IN_HEARTBEAT] = on_heartbeat,
    [SM_IN_RESOURCE] = on_resource,   [SM_IN_CONSENSUS] = on_consensus,
    [SM_IN_AGENT] = on_agent,         [SM_IN_OUTCOME] = on_outcome,
};

sm_status sm_worker_handle(sm_worker *w, const char *subject,
                           const void *data, size_t len)
{
    sm_subject subj;
    const char *why = "unknown";
    sm_status s = sm_subject_parse(subject, &subj, &why);
    if (s != SM_OK)
        return deadletter(w, subject, data, len, s, why);
    sm_swarm *sw = NULL;
    s = sm_registry_get(w->reg, subj.swarm, &sw);
    if (s != SM_OK)
        return deadletter(w, subject, data, len, s,
                          "could not create state for this swarm");
    s = handlers[subj.kind](w, &subj, data, len, sw, &why);
    publish_decisions(w);
    if (s != SM_OK)
        return deadletter(w, subject, data, len, s, why);
    w->st.events++;
    w->st.by_kind[subj.kind]++;
    w->uncommitted++;
    return SM_OK;
}
