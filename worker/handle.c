/*
 * handle.c - one short handler per input subject, the dead-letter path and
 * the publication of conclusions. Everything runs on the worker's thread.
 */
#include <stdio.h>
#include <string.h>

#include "worker_int.h"

/* ---- output ---------------------------------------------------------- */

/* Core callback: publish one Bottleneck transition. */
static void emit_bottleneck(void *ud, const sm_transition *t)
{
    sm_worker *w = ud;
    char subject[256], id[17];
    const uint8_t *buf;
    size_t len;
    if (sm_bottleneck_subject(w->cfg->output_prefix, t, subject,
                              sizeof subject) != SM_OK ||
        sm_codec_bottleneck(w->codec, t, w->cur_subject, &buf, &len) != SM_OK) {
        w->st.publish_errors++;
        sm_log_write(w->log, SM_LOG_ERROR, "encode_failed", "swarm=%s type=%s",
                     t->swarm, sm_bn_type_str(t->type));
        return;
    }
    sm_decision_id_hex(t->decision_id, id, sizeof id);
    const char *headers[] = {"Nats-Msg-Id", id, NULL};
    sm_status s = w->sink.publish(w->sink.ud, subject, buf, len, headers);
    if (s != SM_OK)
        w->st.publish_errors++;
    else
        w->st.transitions++;
    sm_log_write(w->log, SM_LOG_INFO, "bottleneck",
                 "swarm=%s type=%s transition=%s severity=%s impact=%.3f "
                 "subject=%s reason=%s at_ms=%lld id=%s published=%s",
                 t->swarm, sm_bn_type_str(t->type), sm_transition_str(t->kind),
                 sm_severity_str(t->severity), t->impact,
                 t->subject[0] ? t->subject : "-", t->reason,
                 (long long)t->at_ms, id, s == SM_OK ? "yes" : sm_status_str(s));
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
    return core_status(sm_swarm_on_task(sw, &ev, emit_bottleneck, w), why);
}

static sm_status on_heartbeat(sm_worker *w, const sm_subject *subj,
                              const void *data, size_t len, sm_swarm *sw,
                              const char **why)
{
    sm_heartbeat ev;
    sm_status s = sm_codec_heartbeat(w->codec, subj, data, len, &ev, why);
    if (s != SM_OK)
        return s;
    return core_status(sm_swarm_on_heartbeat(sw, &ev, emit_bottleneck, w), why);
}

static sm_status on_resource(sm_worker *w, const sm_subject *subj,
                             const void *data, size_t len, sm_swarm *sw,
                             const char **why)
{
    sm_resource_sample ev;
    sm_status s = sm_codec_resource(w->codec, subj, data, len, &ev, why);
    if (s != SM_OK)
        return s;
    return core_status(sm_swarm_on_resource(sw, &ev, emit_bottleneck, w), why);
}

static sm_status on_consensus(sm_worker *w, const sm_subject *subj,
                              const void *data, size_t len, sm_swarm *sw,
                              const char **why)
{
    sm_consensus_round ev;
    sm_status s = sm_codec_consensus(w->codec, subj, data, len, &ev, why);
    if (s != SM_OK)
        return s;
    return core_status(sm_swarm_on_consensus(sw, &ev, emit_bottleneck, w), why);
}

static sm_status on_agent(sm_worker *w, const sm_subject *subj,
                          const void *data, size_t len, sm_swarm *sw,
                          const char **why)
{
    sm_agent_lifecycle ev;
    sm_status s = sm_codec_agent(w->codec, subj, data, len, &ev, why);
    if (s != SM_OK)
        return s;
    return core_status(sm_swarm_on_agent(sw, &ev, emit_bottleneck, w), why);
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
    sm_swarm_advance(sw, ev.ts_ms, emit_bottleneck, w);
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
    w->cur_subject = subject;
    s = handlers[subj.kind](w, &subj, data, len, sw, &why);
    w->cur_subject = NULL;
    if (s != SM_OK)
        return deadletter(w, subject, data, len, s, why);
    w->st.events++;
    w->st.by_kind[subj.kind]++;
    w->uncommitted++;
    return SM_OK;
}
