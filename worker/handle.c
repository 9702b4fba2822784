/*
 * handle.c - one short handler per input subject, the verdict each returns
 * (accepted or dead-lettered with a reason) and how it is applied, and the
 * publication of conclusions. Everything runs on the worker's thread.
 *
 * Order inside a handler: the subject is parsed and the payload decoded
 * before any swarm state exists, so input that cannot be read never
 * creates a swarm; only then is the swarm got or created and the event
 * handed to its detectors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker_int.h"

/* ---- output ---------------------------------------------------------- */

/* Sends one encoded decision with its id as the Nats-Msg-Id. */
static sm_status send_decision(sm_worker *w, const sm_decision *d,
                               const char *subject, const uint8_t *buf,
                               size_t len, char id[17])
{
    sm_decision_id_hex(d->id, id, 17);
    const char *headers[] = {"Nats-Msg-Id", id, NULL};
    sm_status s = w->sink.publish(w->sink.ud, subject, buf, len, headers);
    if (s != SM_OK)
        w->st.publish_errors++;
    else
        w->st.transitions++;
    if (s == SM_OK)
        sm_worker_count_decision(&w->st, d);
    return s;
}

/* The log line of a decision sent (published: "yes" or why not). */
static void log_decision(sm_worker *w, const sm_decision *d, const char *id,
                         const char *published)
{
    const char *subject = d->subject[0] ? d->subject : "-";
    switch (d->kind) {
    case SM_DEC_BOTTLENECK:
        sm_log_write(w->log, SM_LOG_INFO, "bottleneck",
                     "swarm=%s type=%s transition=%s severity=%s impact=%.3f "
                     "subject=%s reason=%s at_ms=%lld id=%s published=%s",
                     d->swarm, sm_bn_type_str(d->bn.type),
                     sm_transition_str(d->bn.transition),
                     sm_severity_str(d->bn.severity), d->bn.impact, subject,
                     d->bn.reason, (long long)d->at_ms, id, published);
        break;
    case SM_DEC_FAILURE:
        sm_log_write(w->log, d->fail.transition == SM_TR_RAISED ? SM_LOG_WARN
                                                                 : SM_LOG_INFO,
                     "failure",
                     "swarm=%s type=%s transition=%s severity=%s subject=%s "
                     "reason=%s at_ms=%lld id=%s published=%s",
                     d->swarm, sm_fail_type_str(d->fail.type),
                     sm_transition_str(d->fail.transition),
                     sm_severity_str(d->fail.severity), subject,
                     d->fail.reason, (long long)d->at_ms, id, published);
        break;
    case SM_DEC_PREDICTION:
        sm_log_write(w->log, SM_LOG_INFO, "prediction",
                     "swarm=%s type=%s transition=%s source=%s confidence=%.2f "
                     "expected_in_ms=%lld subject=%s at_ms=%lld id=%s published=%s",
                     d->swarm, sm_fail_type_str(d->pred.type),
                     sm_pred_transition_str(d->pred.transition),
                     sm_pred_source_str(d->pred.source), d->pred.confidence,
                     (long long)d->pred.expected_in_ms, subject,
                     (long long)d->at_ms, id, published);
        break;
    case SM_DEC_HEAL:
        sm_log_write(w->log, d->heal.action == SM_ACT_ESCALATE ? SM_LOG_WARN
                                                               : SM_LOG_INFO,
                     "healing",
                     "swarm=%s action=%s strategy=%s autonomy=%s agent=%s "
                     "task=%s target=%s subject=%s attempt=%u preventive=%s "
                     "reason=%s deadline_ms=%lld at_ms=%lld id=%s published=%s",
                     d->swarm,
                     d->heal.custom ? d->heal.custom
                                    : sm_heal_action_str(d->heal.action),
                     d->heal.strategy ? d->heal.strategy : "-",
                     sm_autonomy_str(d->heal.autonomy),
                     d->heal.agent[0] ? d->heal.agent : "-",
                     d->heal.task[0] ? d->heal.task : "-",
                     d->heal.target[0] ? d->heal.target : "-", subject,
                     d->heal.attempt, d->heal.preventive ? "yes" : "no",
                     d->heal.reason ? d->heal.reason : "-",
                     (long long)d->heal.deadline_ms, (long long)d->at_ms, id,
                     published);
        break;
    case SM_DEC_VERDICT:
        sm_log_write(w->log, d->verdict.verdict == SM_VERDICT_FAILED
                                 ? SM_LOG_WARN : SM_LOG_INFO,
                     "healing_verdict",
                     "swarm=%s verdict=%s reason=%s action=%s agent=%s "
                     "subject=%s attempt=%u outcome=%u recover_ms=%lld "
                     "at_ms=%lld id=%s published=%s",
                     d->swarm, sm_verdict_str(d->verdict.verdict),
                     d->verdict.reason,
                     d->verdict.custom ? d->verdict.custom
                                       : sm_heal_action_str(d->verdict.action),
                     d->verdict.agent[0] ? d->verdict.agent : "-", subject,
                     d->verdict.attempt, d->verdict.outcome,
                     (long long)(d->verdict.recovered_ms
                                     ? d->verdict.recovered_ms -
                                           d->verdict.first_evidence_ms
                                     : -1),
                     (long long)d->at_ms, id, published);
        break;
    }
}

/* Sends one decision, whatever its kind; a command at autonomy OBSERVE is
 * logged, never published. */
static void send_now(sm_worker *w, const sm_decision *d)
{
    char subject[256], id[17];
    const uint8_t *buf;
    size_t len;
    if (d->kind == SM_DEC_HEAL && d->heal.autonomy == SM_AUTO_OBSERVE) {
        sm_decision_id_hex(d->id, id, sizeof id);
        log_decision(w, d, id, "no (observe)");
        return;
    }
    if (sm_output_subject(w->cfg->output_prefix, d, subject, sizeof subject) !=
            SM_OK ||
        sm_codec_decision(w->codec, d, &buf, &len) != SM_OK) {
        w->st.publish_errors++;
        sm_log_write(w->log, SM_LOG_ERROR, "encode_failed",
                     "swarm=%s kind=%d", d->swarm, (int)d->kind);
        return;
    }
    sm_status s = send_decision(w, d, subject, buf, len, id);
    log_decision(w, d, id, s == SM_OK ? "yes" : sm_status_str(s));
}

/* Takes what the core decided during the last call, in order, and
 * empties the buffer. With a store, a conclusion is not sent yet: it
 * waits in the outbox for the commit of the state it reveals
 * (sm_worker_release), so a worker killed after sending it restarts with
 * its episode open and never derives it again. Without a store (offline
 * replay), or with publish_after_commit off, it is sent at once. */
static void publish_decisions(sm_worker *w)
{
    bool hold = w->persist && w->cfg->publish_after_commit;
    for (size_t i = 0; i < w->decisions.n; i++) {
        const sm_decision *d = &w->decisions.v[i];
        if (sm_js_replayed(w->js)) {
            /* a taken partition's rebuild: its previous owner published
             * this one (js.h "Partitions") */
            char id[17];
            sm_decision_id_hex(d->id, id, sizeof id);
            log_decision(w, d, id, "no (replay)");
            continue;
        }
        sm_decision *held = hold ? sm_decisions_push(&w->outbox) : NULL;
        if (held) {
            *held = *d;
        } else {
            if (hold) {         /* no room to hold it: sent, not durable */
                w->outbox.lost = 0;
                w->st.not_durable++;
            }
            if (w->persist)     /* for explain, written by the next commit */
                sm_service_log(w->svc, d, 1);
            send_now(w, d);
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

void sm_worker_send_held(sm_worker *w, sm_decisions *held)
{
    for (size_t i = 0; i < held->n; i++)
        send_now(w, &held->v[i]);
    sm_decisions_clear(held);
}

void sm_worker_release(sm_worker *w)
{
    if (w->outbox.n == 0)
        return;
    if (w->writer && !w->store_failing) {
        /* the run loop with a commit thread: the outbox goes out once
         * the batch that holds its state is written (worker.c) */
        sm_worker_commit_async(w, true, false);
        return;
    }
    sm_worker_release_now(w);
}

void sm_worker_release_now(sm_worker *w)
{
    if (w->outbox.n == 0)
        return;
    if (w->send_before_commit) {
        /* JetStream (js.h): sent first, each acknowledged by the output
         * stream, then the commit; a crash between them re-decides them
         * with the same ids, which the stream drops */
        for (size_t i = 0; i < w->outbox.n; i++)
            send_now(w, &w->outbox.v[i]);
        if (!w->store_failing)
            sm_worker_flush(w);
        sm_decisions_clear(&w->outbox);
        return;
    }
    /* a store that failed its last commit is retried by the loop's group
     * commit, not by every batch with a conclusion */
    sm_status s = w->store_failing ? SM_ERR_STORE : sm_worker_flush(w);
    if (s != SM_OK) {
        /* the store could not take it (logged by the flush): conclusions
         * are not withheld for that, but a crash may repeat them */
        w->st.not_durable += w->outbox.n;
        sm_log_write(w->log, SM_LOG_ERROR, "conclusions_not_durable",
                     "count=%zu status=\"%s\" detail=\"published before the "
                     "state they reveal was committed\"", w->outbox.n,
                     sm_status_str(s));
    }
    for (size_t i = 0; i < w->outbox.n; i++)
        send_now(w, &w->outbox.v[i]);
    sm_decisions_clear(&w->outbox);
}

/* ---- verdicts ---------------------------------------------------------- */

static sm_verdict accepted(void)
{
    return (sm_verdict){.disp = SM_DISP_ACCEPTED, .status = SM_OK};
}

/* The sender's fault: bad subject, bytes or contents. */
static sm_verdict rejected(sm_status s, const char *why)
{
    return (sm_verdict){.disp = SM_DISP_DEADLETTER, .status = s, .reason = why};
}

/* Ours: the input was fine but we could not take it (memory). Core NATS
 * cannot redeliver, so it is dead-lettered (never silently dropped) and
 * counted as an internal error; a JetStream source will nak it instead. */
static sm_verdict internal(sm_status s)
{
    return (sm_verdict){
        .disp = SM_DISP_DEADLETTER, .status = s, .internal = true,
        .reason = s == SM_ERR_NOMEM ? "internal error: worker out of memory"
                                    : "internal error in the worker",
    };
}

/* What a core call's status means for the message. */
static sm_verdict core_verdict(sm_status s)
{
    if (s == SM_OK)
        return accepted();
    if (s == SM_ERR_INVALID)
        return rejected(s, "rejected by the detectors (bad id or enum)");
    return internal(s);
}

static void bus_move(sm_worker *w, int64_t t);

/* Whether an event at ts may move the clocks (see "clock skew" below);
 * if not, *v says why. */
static bool skew_ok(sm_worker *w, const sm_subject *subj, int64_t ts,
                    sm_verdict *v);

/* Admits a decoded event at ts that would create agent `agent` if new
 * (NULL: it creates none): its time must not be too far ahead of the bus
 * clock, a new swarm must fit under max_swarms and a new agent under
 * max_agents; then the swarm named by the subject is got, or created on
 * first use. Returns false with *v set when the event is not taken. */
static bool admit(sm_worker *w, const sm_subject *subj, int64_t ts,
                  const char *agent, sm_swarm **sw, sm_verdict *v)
{
    if (!skew_ok(w, subj, ts, v))
        return false;
    const sm_config *c = w->cfg;
    sm_swarm *found = sm_registry_find(w->reg, subj->swarm);
    if (!found && c->max_swarms > 0 &&
        sm_registry_count(w->reg) >= (size_t)c->max_swarms) {
        w->st.swarm_cap_rejected++;
        *v = rejected(SM_ERR_FULL, "the worker holds max_swarms swarms: a "
                                   "new swarm is not taken");
        return false;
    }
    if (found && agent && agent[0] && c->max_agents > 0 &&
        sm_swarm_agent_count(found) >= (size_t)c->max_agents &&
        !sm_swarm_has_agent(found, agent)) {
        w->st.agent_cap_rejected++;
        *v = rejected(SM_ERR_FULL, "the swarm holds max_agents agents: a new "
                                   "agent is not taken");
        return false;
    }
    sm_status s = found ? SM_OK : sm_registry_get(w->reg, subj->swarm, &found);
    w->touched = s == SM_OK ? found : NULL;
    if (s != SM_OK) {
        *v = internal(s);
        return false;
    }
    *sw = found;
    return true;
}

/* ---- one handler per subject ------------------------------------------
 * Each decodes into a core event, then gets the swarm and hands the event
 * to its detectors, and says what became of the message. */

typedef sm_verdict (*handler_fn)(sm_worker *w, const sm_subject *subj,
                                 const sm_item *it);

/* What a failed decode means: the sender's bytes, or our memory. */
static sm_verdict decode_verdict(sm_status s, const char *why)
{
    return s == SM_ERR_NOMEM ? internal(s) : rejected(s, why);
}

static sm_verdict on_task(sm_worker *w, const sm_subject *subj,
                          const sm_item *it)
{
    sm_task_event ev;
    const char *why = "undecodable";
    sm_swarm *sw = NULL;
    sm_verdict v;
    sm_status s = sm_codec_task(w->codec, subj, it->data, it->len, &ev, &why);
    if (s != SM_OK)
        return decode_verdict(s, why);
    if (!admit(w, subj, ev.ts_ms, ev.agent, &sw, &v))
        return v;
    int64_t prev = sm_swarm_last_event(sw);
    s = sm_swarm_on_task(sw, &ev, &w->decisions);
    if (s == SM_OK)     /* report aggregates (service.h) */
        sm_service_on_task(w->svc, subj->swarm, &ev, prev);
    return core_verdict(s);
}

static sm_verdict on_heartbeat(sm_worker *w, const sm_subject *subj,
                               const sm_item *it)
{
    sm_heartbeat ev;
    const char *why = "undecodable";
    sm_swarm *sw = NULL;
    sm_verdict v;
    sm_status s = sm_codec_heartbeat(w->codec, subj, it->data, it->len, &ev, &why);
    if (s != SM_OK)
        return decode_verdict(s, why);
    if (!admit(w, subj, ev.ts_ms, ev.agent, &sw, &v))
        return v;
    return core_verdict(sm_swarm_on_heartbeat(sw, &ev, &w->decisions));
}

static sm_verdict on_resource(sm_worker *w, const sm_subject *subj,
                              const sm_item *it)
{
    sm_resource_sample ev;
    const char *why = "undecodable";
    sm_swarm *sw = NULL;
    sm_verdict v;
    sm_status s = sm_codec_resource(w->codec, subj, it->data, it->len, &ev, &why);
    if (s != SM_OK)
        return decode_verdict(s, why);
    if (!admit(w, subj, ev.ts_ms, NULL, &sw, &v))
        return v;
    s = sm_swarm_on_resource(sw, &ev, &w->decisions);
    if (s == SM_OK)     /* scaling (service.h) */
        sm_service_on_resource(w->svc, sw, ev.source, &ev);
    return core_verdict(s);
}

static sm_verdict on_consensus(sm_worker *w, const sm_subject *subj,
                               const sm_item *it)
{
    sm_consensus_round ev;
    const char *why = "undecodable";
    sm_swarm *sw = NULL;
    sm_verdict v;
    sm_status s = sm_codec_consensus(w->codec, subj, it->data, it->len, &ev, &why);
    if (s != SM_OK)
        return decode_verdict(s, why);
    if (!admit(w, subj, ev.ts_ms, NULL, &sw, &v))
        return v;
    return core_verdict(sm_swarm_on_consensus(sw, &ev, &w->decisions));
}

static sm_verdict on_agent(sm_worker *w, const sm_subject *subj,
                           const sm_item *it)
{
    sm_agent_lifecycle ev;
    const char *why = "undecodable";
    sm_swarm *sw = NULL;
    sm_verdict v;
    sm_status s = sm_codec_agent(w->codec, subj, it->data, it->len, &ev, &why);
    if (s != SM_OK)
        return decode_verdict(s, why);
    if (!admit(w, subj, ev.ts_ms, ev.registered ? ev.agent : NULL, &sw, &v))
        return v;
    return core_verdict(sm_swarm_on_agent(sw, &ev, &w->decisions));
}

/* A coordinator's report on a healing command: the swarm's healer
 * verifies the command with it (core/heal.h). */
static sm_verdict on_outcome(sm_worker *w, const sm_subject *subj,
                             const sm_item *it)
{
    sm_outcome ev;
    const char *why = "undecodable";
    sm_swarm *sw = NULL;
    sm_verdict v;
    sm_status s = sm_codec_outcome(w->codec, subj, it->data, it->len, &ev, &why);
    if (s != SM_OK)
        return decode_verdict(s, why);
    if (!admit(w, subj, ev.ts_ms, NULL, &sw, &v))
        return v;
    return core_verdict(sm_swarm_on_outcome(sw, ev.ts_ms, ev.command, ev.result,
                                            &w->decisions));
}

static const handler_fn handlers[] = {
    [SM_IN_TASK] = on_task,           [SM_IN_HEARTBEAT] = on_heartbeat,
    [SM_IN_RESOURCE] = on_resource,   [SM_IN_CONSENSUS] = on_consensus,
    [SM_IN_AGENT] = on_agent,         [SM_IN_OUTCOME] = on_outcome,
};

/* ---- applying a verdict ------------------------------------------------ */

/* Bytes headers take in a message ("NATS/1.0" line, "Key: Value" lines,
 * blank line), with room to spare. */
static size_t header_bytes(const char *const *h)
{
    size_t n = sizeof "NATS/1.0\r\n\r\n" + 64;
    for (size_t i = 0; h[i] && h[i + 1]; i += 2)
        n += strlen(h[i]) + strlen(h[i + 1]) + 4;
    return n;
}

/* How much of a len-byte payload with headers h fits the sink: all of it,
 * or (over its max payload) what fits beside h and a Medic-Truncated
 * header naming the length, which is then appended to h (2 free slots). */
static size_t deadletter_fit(const sm_worker *w, size_t len, const char **h,
                             size_t n_h, char orig[24])
{
    int64_t max = w->sink.max_payload ? w->sink.max_payload(w->sink.ud) : 0;
    if (max <= 0 || len + header_bytes(h) <= (uint64_t)max)
        return len;
    snprintf(orig, 24, "%zu", len);
    h[n_h] = "Medic-Truncated";
    h[n_h + 1] = orig;
    size_t need = header_bytes(h);
    size_t room = (size_t)max > need ? (size_t)max - need : 0;
    return room < len ? room : len;
}

/* Forwards a rejected input with the reason and its subject: untouched,
 * or its first bytes when it and the headers would exceed what the bus
 * takes (a message at the server's max payload), so nothing is lost
 * without a trace. */
static void deadletter(sm_worker *w, const sm_item *it, const sm_verdict *v)
{
    w->st.deadletters++;
    if ((unsigned)v->status < SM_METRICS_STATUSES)
        w->st.deadletters_by_status[v->status]++;
    if (v->internal)
        w->st.internal_errors++;
    char orig[24];
    const char *headers[] = {"Medic-Reason", v->reason, "Medic-Status",
                             sm_status_str(v->status), "Medic-Subject",
                             it->subject, NULL, NULL, NULL};
    size_t len = deadletter_fit(w, it->len, headers, 6, orig);
    sm_status s = w->sink.publish(w->sink.ud, w->cfg->deadletter_subject,
                                  it->data, len, headers);
    if (s != SM_OK)
        w->st.publish_errors++;
    sm_log_write(w->log, v->internal ? SM_LOG_ERROR : SM_LOG_WARN,
                 v->internal ? "internal_error" : "input_rejected",
                 "subject=%s bytes=%zu reason=\"%s\" status=\"%s\" forwarded=%s "
                 "forwarded_bytes=%zu total=%llu",
                 it->subject, it->len, v->reason, sm_status_str(v->status),
                 s == SM_OK ? w->cfg->deadletter_subject : sm_status_str(s),
                 len, (unsigned long long)w->st.deadletters);
}

static void apply(sm_worker *w, sm_item *it, const sm_verdict *v,
                  sm_input_kind kind)
{
    sm_settle how = SM_SETTLE_ACK;
    switch (v->disp) {
    case SM_DISP_ACCEPTED:
        w->st.events++;
        w->st.by_kind[kind]++;
        w->uncommitted++;
        break;
    case SM_DISP_DEADLETTER:
        deadletter(w, it, v);
        break;
    case SM_DISP_NAK:
        how = SM_SETTLE_NAK;
        break;
    case SM_DISP_TERM:
        how = SM_SETTLE_TERM;
        break;
    }
    if (sm_item_settle(it, how, v->delay_ms) != SM_OK)
        sm_log_write(w->log, SM_LOG_WARN, "settle_failed", "subject=%s",
                     it->subject);
}

/* ---- the bus clock -----------------------------------------------------
 * SPEC, "The flow": a swarm that goes quiet still has a clock. The bus
 * clock is the latest event time the worker has seen on any swarm; each
 * time it enters a new tick, every swarm is advanced to it (registry
 * order), so a dead agent in a silent swarm is noticed and a stale
 * episode resolves. It is a function of the input sequence alone, so a
 * replay moves it exactly as the live run did.
 *
 * One swarm's clock can be wrong (a producer with a skewed clock): a
 * forward jump over clock_jump_ms is held until an event of another swarm
 * shows a time at least as far ahead; the bus then moves to the lesser of
 * the two. A worker with one swarm never needs its bus clock (the swarm's
 * own events move it). The clock (w->clock) is stored in the meta record
 * with the state at each commit and comes back with it at a restart. */

/* The swarms one clock drives: pc, a partition's (js.h sm_js_clock), or
 * NULL for the worker's bus clock, which drives the unpartitioned ones. */
typedef struct clock_swarms {
    sm_worker *w;
    const sm_js_clock *pc;
} clock_swarms;

static void advance_one(void *ud, sm_swarm *sw)
{
    clock_swarms *c = ud;
    if (sm_js_clock_of(c->w->js, sm_swarm_id(sw)) != c->pc)
        return;                 /* another clock's */
    sm_swarm_advance(sw, c->pc ? c->pc->bus_ms : c->w->clock.bus_ms,
                     &c->w->decisions);
    publish_decisions(c->w);
}

/* ---- idle swarms ---------------------------------------------------------
 * A swarm with no event of its own for swarm_retention of bus time and
 * nothing raised is forgotten: taken out of the registry, and its keys
 * queued for deletion by the next commit. It comes back as a new swarm if
 * it speaks again. Looked for once a minute of bus time, at a bus tick, so
 * a replay forgets exactly what the live run forgot. */

#define EXPIRE_EVERY_MS 60000

typedef struct idle_list {
    const sm_worker *w;
    char (*ids)[SM_ID_MAX];
    size_t n;
} idle_list;

static void find_idle(void *ud, sm_swarm *sw)
{
    idle_list *l = ud;
    int64_t last = sm_swarm_last_event(sw);
    /* partitioned: idle by its partition's clock, and only if ours */
    const sm_js_clock *pc = sm_js_clock_of(l->w->js, sm_swarm_id(sw));
    if (pc && !sm_js_owns(l->w->js, sm_swarm_id(sw)))
        return;
    int64_t now = pc ? pc->bus_ms : l->w->clock.bus_ms;
    if (now - last > l->w->cfg->swarm_retention_ms &&
        !sm_swarm_any_raised(sw))
        snprintf(l->ids[l->n++], SM_ID_MAX, "%s", sm_swarm_id(sw));
}

static void expire_swarms(sm_worker *w)
{
    if (w->cfg->swarm_retention_ms <= 0 ||
        w->clock.bus_ms - w->clock.expired_at_ms < EXPIRE_EVERY_MS)
        return;
    w->clock.expired_at_ms = w->clock.bus_ms;
    idle_list l = {w, NULL, 0};
    size_t n = sm_registry_count(w->reg);
    if (n == 0 || !(l.ids = malloc(n * sizeof *l.ids)))
        return;                 /* out of memory: looked for next minute */
    sm_registry_foreach(w->reg, find_idle, &l);
    if (l.n > 0 && w->writer)   /* the scan below needs the store back */
        sm_worker_commit_async(w, false, true);
    for (size_t i = 0; i < l.n; i++) {
        const sm_swarm *sw = sm_registry_find(w->reg, l.ids[i]);
        int64_t idle = w->clock.bus_ms - sm_swarm_last_event(sw);
        sm_status s = w->persist ? sm_persist_forget_swarm(w->persist, l.ids[i])
                                 : SM_OK;
        if (s != SM_OK) {
            sm_log_write(w->log, SM_LOG_ERROR, "swarm_expire_failed",
                         "swarm=%s status=\"%s\" detail=\"%s\"", l.ids[i],
                         sm_status_str(s), sm_store_error(w->store));
            continue;           /* kept, tried again next minute */
        }
        if (strcmp(w->clock.jump_swarm, l.ids[i]) == 0) {
            w->clock.jump_ms = 0;
            w->clock.jump_swarm[0] = 0;
        }
        (void)sm_registry_remove(w->reg, l.ids[i]);
        w->st.swarms_expired++;
        sm_log_write(w->log, SM_LOG_INFO, "swarm_expired",
                     "swarm=%s idle_ms=%lld swarm_retention_ms=%lld swarms=%zu",
                     l.ids[i], (long long)idle,
                     (long long)w->cfg->swarm_retention_ms,
                     sm_registry_count(w->reg));
    }
    free(l.ids);
}

/* A clock (pc, or NULL: the bus clock) moved to t: on a new tick (*last
 * holds the one of its last advance), advances the swarms it drives, then
 * forgets idle swarms. */
static void tick_swarms(sm_worker *w, int64_t *last, int64_t t,
                        const sm_js_clock *pc)
{
    int64_t tick = t / w->cfg->detect.tick_ms;
    if (tick == *last)
        return;
    *last = tick;
    clock_swarms c = {w, pc};
    sm_registry_foreach(w->reg, advance_one, &c);
    expire_swarms(w);
}

/* Moves the bus clock to t (never back) and, on a new tick, the swarms it
 * drives. */
static void bus_move(sm_worker *w, int64_t t)
{
    if (t <= w->clock.bus_ms)
        return;
    w->clock.jump_ms = 0;
    w->clock.jump_swarm[0] = 0;
    w->clock.bus_ms = t;
    w->st.bus_ms = t;
    tick_swarms(w, &w->bus_tick, t, NULL);
}

/* Partitioned input (js.h sm_js_clock): the swarm's partition clock moves
 * to t and, on its new tick, the partition's swarms; the worker's bus
 * clock is the latest of its partitions (metrics, skew). No held jump:
 * max_skew bounds a skewed producer. */
static void part_clock(sm_worker *w, sm_js_clock *pc, int64_t t)
{
    if (t <= pc->bus_ms)
        return;
    pc->bus_ms = t;
    if (t > w->clock.bus_ms) {
        w->clock.bus_ms = t;
        w->st.bus_ms = t;
    }
    tick_swarms(w, &pc->tick, t, pc);
}

static void bus_clock(sm_worker *w, const sm_swarm *from)
{
    int64_t t = sm_swarm_now(from);
    sm_js_clock *pc = sm_js_clock_of(w->js, sm_swarm_id(from));
    if (pc) {
        part_clock(w, pc, t);
        return;
    }
    if (t <= w->clock.bus_ms)
        return;
    if (w->clock.bus_ms != 0 && t - w->clock.bus_ms > w->cfg->clock_jump_ms) {
        if (w->clock.jump_ms == 0 ||
            strcmp(w->clock.jump_swarm, sm_swarm_id(from)) == 0) {
            if (w->clock.jump_ms == 0)
                w->st.clock_jumps_held++;
            w->clock.jump_ms = t;
            snprintf(w->clock.jump_swarm, sizeof w->clock.jump_swarm, "%s",
                     sm_swarm_id(from));
            return;
        }
        t = t < w->clock.jump_ms ? t : w->clock.jump_ms;    /* confirmed by a second */
    }
    bus_move(w, t);
}

/* ---- clock skew ---------------------------------------------------------
 * An event more than max_skew ahead of the bus clock is never applied: a
 * year-ahead stamp from one producer would pin its swarm's clock (stored
 * with it), and every event after it would then be late. It is
 * dead-lettered with the reason. Time that really jumps (input resuming
 * after a pause longer than max_skew) is told apart by a second
 * producer: an event of another producer (another swarm, or another
 * agent, source or group of the subject) within max_skew of the held time
 * confirms the jump; the bus moves to the lesser of the two and the event
 * is taken. The first event of the jump stays dead-lettered. With
 * subject_ids = payload the id token is a bucket, so a producer here is a
 * swarm's bucket of agents, not one agent.
 *
 * Before the bus has a time (the first event of a worker whose store gave
 * it none) there is nothing to compare with: the event is taken. Like the
 * bus clock, all of this follows from the input order alone. */

static bool same_producer(const sm_worker *w, const sm_subject *subj)
{
    return strcmp(w->clock.skew_swarm, subj->swarm) == 0 &&
           strcmp(w->clock.skew_id, subj->id) == 0;
}

static bool skew_ok(sm_worker *w, const sm_subject *subj, int64_t ts,
                    sm_verdict *v)
{
    int64_t max = w->cfg->max_skew_ms;
    if (max <= 0 || w->clock.bus_ms == 0 || ts - w->clock.bus_ms <= max)
        return true;
    if (w->clock.skew_ms != 0 && !same_producer(w, subj) &&
        ts - w->clock.skew_ms <= max && w->clock.skew_ms - ts <= max) {
        int64_t to = ts < w->clock.skew_ms ? ts : w->clock.skew_ms;
        sm_log_write(w->log, SM_LOG_WARN, "clock_jump_confirmed",
                     "subject=%s from_ms=%lld to_ms=%lld first_swarm=%s "
                     "first_id=%s", subj->swarm, (long long)w->clock.bus_ms,
                     (long long)to, w->clock.skew_swarm, w->clock.skew_id);
        w->clock.skew_ms = 0;
        bus_move(w, to);
        return true;
    }
    if (w->clock.skew_ms == 0 || !same_producer(w, subj) || ts > w->clock.skew_ms) {
        w->clock.skew_ms = ts;
        snprintf(w->clock.skew_swarm, sizeof w->clock.skew_swarm, "%s", subj->swarm);
        snprintf(w->clock.skew_id, sizeof w->clock.skew_id, "%s", subj->id);
    }
    w->st.skew_rejected++;
    sm_log_write(w->log, SM_LOG_WARN, "clock_skew",
                 "swarm=%s id=%s ts_ms=%lld bus_ms=%lld ahead_ms=%lld "
                 "max_skew_ms=%lld total=%llu", subj->swarm, subj->id,
                 (long long)ts, (long long)w->clock.bus_ms,
                 (long long)(ts - w->clock.bus_ms), (long long)max,
                 (unsigned long long)w->st.skew_rejected);
    *v = rejected(SM_ERR_INVALID,
                  "event time more than max_skew ahead of the bus clock "
                  "(a skewed producer clock?)");
    return false;
}

/* Parses the item's subject into a (no hints). */
static void parse_item(const sm_worker *w, const sm_item *it, sm_ahead *a)
{
    a->why = "unknown";
    a->parsed = sm_subject_parse(it->subject, &a->subj, &a->why);
    a->subj.id_in_payload = w->ids_in_payload;
}

void sm_worker_ahead(const sm_worker *w, const sm_item *it, sm_ahead *a)
{
    parse_item(w, it, a);
    a->sw = NULL;
    a->removed = sm_registry_removed(w->reg);
    if (a->parsed != SM_OK || it->reject || a->subj.id_in_payload ||
        (a->subj.kind != SM_IN_TASK && a->subj.kind != SM_IN_HEARTBEAT &&
         a->subj.kind != SM_IN_AGENT))
        return;
    a->sw = sm_registry_find(w->reg, a->subj.swarm);
    sm_swarm_prefetch_agent(a->sw, a->subj.id, 0);
}

void sm_worker_ahead_record(const sm_worker *w, const sm_ahead *a)
{
    /* an item handled since may have removed the swarm */
    if (a->sw && a->removed == sm_registry_removed(w->reg))
        sm_swarm_prefetch_agent(a->sw, a->subj.id, 1);
}

sm_verdict sm_worker_handle_item(sm_worker *w, sm_item *it)
{
    sm_ahead a;
    parse_item(w, it, &a);
    return sm_worker_handle_ahead(w, it, &a);
}

sm_verdict sm_worker_handle_ahead(sm_worker *w, sm_item *it, const sm_ahead *a)
{
    sm_subject subj = a->subj;  /* the handlers' own copy */
    sm_status s = a->parsed;
    sm_verdict v;
    w->touched = NULL;
    if (it->reject) {           /* the source's: a poison message */
        v = rejected(SM_ERR_INVALID, it->reject);
    } else if (s != SM_OK) {
        v = rejected(s, a->why);
    } else {
        v = handlers[subj.kind](w, &subj, it);
        if (w->decisions.n > 0 || w->decisions.lost > 0)  /* most: none */
            publish_decisions(w);
        if (v.disp == SM_DISP_ACCEPTED && w->touched != NULL)
            bus_clock(w, w->touched);
    }
    apply(w, it, &v, s == SM_OK && !it->reject ? subj.kind : 0);
    w->applied++;
    if (!w->in_batch)
        sm_worker_release(w);
    return v;
}

sm_status sm_worker_handle(sm_worker *w, const char *subject,
                           const void *data, size_t len)
{
    sm_item it;
    sm_item_plain(&it, subject, data, len, NULL);
    return sm_worker_handle_item(w, &it).status;
}
