#include "watch.h"
#include "proc.h"

#include <nats/nats.h>
#include <string.h>
#include <time.h>

#include "bus_nats.h"
#include "swarm.h"
#include "swarm_medic.pb-c.h"

static const char *transition_name(int k)
{
    static const char *const n[] = {"?", "RAISED", "UPDATED", "RESOLVED"};
    return (k >= 1 && k <= 3) ? n[k] : n[0];
}

static void utc(int64_t ms, char *buf, size_t cap)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%03dZ", (int)(ms % 1000));
}

/* Appends the decision's metrics to buf at n; returns the new length. */
static int metrics_of(const Swarmmedic__V1__Decision *d, char *buf, size_t cap,
                      int n)
{
    for (size_t i = 0; i < d->n_metrics && n > 0 && (size_t)n < cap; i++) {
        const Swarmmedic__V1__Metric *m = d->metrics[i];
        n += snprintf(buf + n, cap - (size_t)n, " %s=%.4g", m->name, m->value);
        if (m->threshold != 0 && (size_t)n < cap)
            n += snprintf(buf + n, cap - (size_t)n, "(thr %.4g)", m->threshold);
    }
    return n;
}

sm_status sm_watch_format(const void *data, size_t len, char *buf, size_t cap)
{
    Swarmmedic__V1__Bottleneck *b =
        swarmmedic__v1__bottleneck__unpack(NULL, len, data);
    if (!b || !b->decision) {
        if (b)
            swarmmedic__v1__bottleneck__free_unpacked(b, NULL);
        return SM_ERR_DECODE;
    }
    const Swarmmedic__V1__Decision *d = b->decision;
    char when[40];
    utc(d->decided_at_ms, when, sizeof when);
    int n = snprintf(buf, cap, "%s  %-6s %-8s %-17s %-8s %-8s", when, d->swarm,
                     transition_name(b->transition), sm_bn_type_str((sm_bn_type)b->type),
                     sm_severity_str((sm_severity)b->severity),
                     b->n_affected ? b->affected[0] : "-");
    n = metrics_of(d, buf, cap, n);
    if (b->n_recommendations && n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, "  -> %s", b->recommendations[0]);
    swarmmedic__v1__bottleneck__free_unpacked(b, NULL);
    return SM_OK;
}

sm_status sm_watch_format_failure(const void *data, size_t len, char *buf,
                                  size_t cap)
{
    Swarmmedic__V1__Failure *f = swarmmedic__v1__failure__unpack(NULL, len, data);
    if (!f || !f->decision) {
        if (f)
            swarmmedic__v1__failure__free_unpacked(f, NULL);
        return SM_ERR_DECODE;
    }
    const Swarmmedic__V1__Decision *d = f->decision;
    char when[40];
    utc(d->decided_at_ms, when, sizeof when);
    int n = snprintf(buf, cap, "%s  %-6s %-8s FAILURE %-17s %-8s %-8s %s", when,
                     d->swarm, transition_name(f->transition),
                     sm_fail_type_str((sm_fail_type)f->type),
                     sm_severity_str((sm_severity)f->severity),
                     f->subject[0] ? f->subject : "-", f->reason);
    metrics_of(d, buf, cap, n);
    swarmmedic__v1__failure__free_unpacked(f, NULL);
    return SM_OK;
}

sm_status sm_watch_format_prediction(const void *data, size_t len, char *buf,
                                     size_t cap)
{
    Swarmmedic__V1__Prediction *p =
        swarmmedic__v1__prediction__unpack(NULL, len, data);
    if (!p || !p->decision) {
        if (p)
            swarmmedic__v1__prediction__free_unpacked(p, NULL);
        return SM_ERR_DECODE;
    }
    const Swarmmedic__V1__Decision *d = p->decision;
    char when[40];
    utc(d->decided_at_ms, when, sizeof when);
    int n = snprintf(buf, cap, "%s  %-6s %-9s PREDICT %-17s %-8s in %llds "
                     "confidence=%.2f source=%s",
                     when, d->swarm,
                     sm_pred_transition_str((sm_pred_transition)p->transition),
                     sm_fail_type_str((sm_fail_type)p->failure_type),
                     p->subject[0] ? p->subject : "-",
                     (long long)(p->expected_in_ms / 1000), p->confidence,
                     sm_pred_source_str((sm_pred_source)p->source));
    if (p->transition == SWARMMEDIC__V1__PREDICTION__TRANSITION__TRANSITION_RAISED &&
        n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, "  -> %s", p->recommended_action);
    swarmmedic__v1__prediction__free_unpacked(p, NULL);
    return SM_OK;
}

/* An enum value's name without its prefix, lower case: "agent_restart"
 * for ACTION_AGENT_RESTART. */
static const char *enum_token(const ProtobufCEnumDescriptor *d, int v,
                              char *buf, size_t cap)
{
    const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value(d, v);
    const char *name = e ? e->name : "?";
    const char *u = strchr(name, '_');
    name = u && e ? u + 1 : name;
    size_t i = 0;
    for (; name[i] && i + 1 < cap; i++)
        buf[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    buf[i] = 0;
    return buf;
}

sm_status sm_watch_format_heal(const void *data, size_t len, char *buf,
                               size_t cap)
{
    Swarmmedic__V1__HealingCommand *c =
        swarmmedic__v1__healing_command__unpack(NULL, len, data);
    if (!c || !c->decision) {
        swarmmedic__v1__healing_command__free_unpacked(c, NULL);
        return SM_ERR_DECODE;
    }
    const Swarmmedic__V1__Decision *d = c->decision;
    char when[40], act[40], aut[24];
    utc(d->decided_at_ms, when, sizeof when);
    enum_token(&swarmmedic__v1__healing_command__action__descriptor,
               (int)c->action, act, sizeof act);
    enum_token(&swarmmedic__v1__autonomy__descriptor, (int)c->autonomy, aut,
               sizeof aut);
    const char *what = c->action ==
        SWARMMEDIC__V1__HEALING_COMMAND__ACTION__ACTION_CUSTOM ? c->custom_action : act;
    const char *on = c->agent[0] ? c->agent : c->subject[0] ? c->subject : "-";
    int n = snprintf(buf, cap, "%s  %-6s HEAL     %-18s %-17s %-8s attempt=%u "
                     "%s id=%s", when, d->swarm, what,
                     c->failure_type ? sm_fail_type_str((sm_fail_type)c->failure_type)
                                     : "bottleneck", on,
                     c->attempt, aut, d->decision_id);
    if (c->deadline_ms > 0 && n > 0 && (size_t)n < cap)    /* none: escalate */
        n += snprintf(buf + n, cap - (size_t)n, " deadline=+%llds",
                      (long long)((c->deadline_ms - d->decided_at_ms) / 1000));
    for (size_t i = 0; i < c->n_steps && n > 0 && (size_t)n < cap; i++)
        n += snprintf(buf + n, cap - (size_t)n, "%s%s", i ? "," : " steps=",
                      c->steps[i]);
    if (c->target_agent[0] && n > 0 && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, " target=%s", c->target_agent);
    if (c->escalates[0] && n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, " escalates=%s", c->escalates);
    swarmmedic__v1__healing_command__free_unpacked(c, NULL);
    return SM_OK;
}

sm_status sm_watch_format_verdict(const void *data, size_t len, char *buf,
                                  size_t cap)
{
    Swarmmedic__V1__HealingVerdict *v =
        swarmmedic__v1__healing_verdict__unpack(NULL, len, data);
    if (!v || !v->decision) {
        swarmmedic__v1__healing_verdict__free_unpacked(v, NULL);
        return SM_ERR_DECODE;
    }
    const Swarmmedic__V1__Decision *d = v->decision;
    char when[40], act[40], ver[24];
    utc(d->decided_at_ms, when, sizeof when);
    enum_token(&swarmmedic__v1__healing_command__action__descriptor,
               (int)v->action, act, sizeof act);
    enum_token(&swarmmedic__v1__healing_verdict__verdict__descriptor,
               (int)v->verdict, ver, sizeof ver);
    for (char *p = ver; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    const char *what = v->action ==
        SWARMMEDIC__V1__HEALING_COMMAND__ACTION__ACTION_CUSTOM && v->custom_action[0]
        ? v->custom_action : act;
    int n = snprintf(buf, cap, "%s  %-6s VERDICT  %-18s %-17s %-8s %-10s "
                     "reason=%s id=%s", when, d->swarm, what,
                     v->failure_type ? sm_fail_type_str((sm_fail_type)v->failure_type)
                                     : "bottleneck",
                     v->subject[0] ? v->subject : v->agent[0] ? v->agent : "-",
                     ver, v->reason, v->command_id);
    if (v->recovered_at_ms > 0 && v->first_evidence_ms > 0 && n > 0 &&
        (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, " recovered %.1fs after the "
                 "first evidence", (double)(v->recovered_at_ms -
                                            v->first_evidence_ms) / 1000.0);
    swarmmedic__v1__healing_verdict__free_unpacked(v, NULL);
    return SM_OK;
}

sm_status sm_watch_format_outcome(const char *subject, const void *data,
                                  size_t len, char *buf, size_t cap)
{
    Swarmmedic__V1__HealingOutcome *o =
        swarmmedic__v1__healing_outcome__unpack(NULL, len, data);
    if (!o)
        return SM_ERR_DECODE;
    char when[40], res[24], swarm[64] = "-";
    utc(o->ts_ms, when, sizeof when);
    enum_token(&swarmmedic__v1__healing_outcome__result__descriptor,
               (int)o->result, res, sizeof res);
    for (char *p = res; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    const char *dot = strchr(subject, '.');
    if (dot) {
        const char *end = strchr(dot + 1, '.');
        size_t k = end ? (size_t)(end - dot - 1) : strlen(dot + 1);
        snprintf(swarm, sizeof swarm, "%.*s", (int)k, dot + 1);
    }
    snprintf(buf, cap, "%s  %-6s OUTCOME  %-8s id=%s %s", when, swarm, res,
             o->command_id, o->detail);
    swarmmedic__v1__healing_outcome__free_unpacked(o, NULL);
    return SM_OK;
}

static void print_msg(const sm_config *cfg, natsMsg *m, FILE *out)
{
    const char *subj = natsMsg_GetSubject(m);
    char line[2048];
    if (strcmp(subj, cfg->deadletter_subject) == 0) {
        const char *reason = "", *orig = "";
        natsMsgHeader_Get(m, "Medic-Reason", &reason);
        natsMsgHeader_Get(m, "Medic-Subject", &orig);
        char o[512], r[512];
        fprintf(out, "DEAD-LETTER  %s  (%d bytes): %s\n",
                sm_log_escape(orig, o, sizeof o), natsMsg_GetDataLength(m),
                sm_log_escape(reason, r, sizeof r));
    } else if ((strstr(subj, ".bottleneck.") &&
                sm_watch_format(natsMsg_GetData(m),
                                (size_t)natsMsg_GetDataLength(m), line,
                                sizeof line) == SM_OK) ||
               (strstr(subj, ".failure.") &&
                sm_watch_format_failure(natsMsg_GetData(m),
                                        (size_t)natsMsg_GetDataLength(m), line,
                                        sizeof line) == SM_OK) ||
               (strstr(subj, ".prediction.") &&
                sm_watch_format_prediction(natsMsg_GetData(m),
                                           (size_t)natsMsg_GetDataLength(m),
                                           line, sizeof line) == SM_OK) ||
               (strstr(subj, ".heal.") &&
                sm_watch_format_heal(natsMsg_GetData(m),
                                     (size_t)natsMsg_GetDataLength(m), line,
                                     sizeof line) == SM_OK) ||
               (strstr(subj, ".verdict.") &&
                sm_watch_format_verdict(natsMsg_GetData(m),
                                        (size_t)natsMsg_GetDataLength(m), line,
                                        sizeof line) == SM_OK) ||
               (strstr(subj, ".outcome.") &&
                sm_watch_format_outcome(subj, natsMsg_GetData(m),
                                        (size_t)natsMsg_GetDataLength(m), line,
                                        sizeof line) == SM_OK)) {
        fprintf(out, "%s\n", line);
    } else {
        char o[512];
        fprintf(out, "%s  (%d bytes)\n", sm_log_escape(subj, o, sizeof o),
                natsMsg_GetDataLength(m));
    }
    fflush(out);
}

sm_status sm_watch_run(const sm_config *cfg, const sm_log *log, FILE *out,
                       const sigset_t *stop, int64_t max_msgs)
{
    char err[512], subj[256];
    sm_bus *bus = NULL;
    natsSubscription *s1 = NULL, *s2 = NULL, *s3 = NULL;
    sm_status s = sm_bus_connect(&bus, cfg, log, err, sizeof err);
    if (s != SM_OK) {
        sm_log_write(log, SM_LOG_ERROR, "bus_connect_failed", "detail=\"%s\"", err);
        return s;
    }
    natsConnection *nc = sm_bus_conn(bus);
    snprintf(subj, sizeof subj, "%s.>", cfg->output_prefix);
    /* <prefix>.> covers the dead-letter subject unless it lies elsewhere;
     * then a second subscription, polled in turn (order across the two
     * does not matter to a reader). */
    natsStatus ns = natsConnection_SubscribeSync(&s1, nc, subj);
    if (ns == NATS_OK &&
        strncmp(cfg->deadletter_subject, cfg->output_prefix,
                strlen(cfg->output_prefix)) != 0)
        ns = natsConnection_SubscribeSync(&s2, nc, cfg->deadletter_subject);
    /* The coordinators' HealingOutcomes: <input prefix>.*.outcome.* */
    size_t il = strlen(cfg->input_subject);
    if (ns == NATS_OK && il > 2 && strcmp(cfg->input_subject + il - 2, ".>") == 0) {
        char osubj[256];
        snprintf(osubj, sizeof osubj, "%.*s.*.outcome.*", (int)(il - 2),
                 cfg->input_subject);
        ns = natsConnection_SubscribeSync(&s3, nc, osubj);
    }
    if (ns == NATS_OK)
        ns = natsConnection_FlushTimeout(nc, 2000);
    if (ns != NATS_OK) {
        sm_log_write(log, SM_LOG_ERROR, "subscribe_failed", "status=\"%s\"",
                     natsStatus_GetText(ns));
        s = sm_bus_status(ns);
        goto cleanup;
    }
    char url[512];
    fprintf(out, "watching %s on %s\n", subj,
            sm_log_url(cfg->nats_url, url, sizeof url));
    fflush(out);
    int64_t printed = 0;
    while (!sm_proc_stop_pending(stop, NULL) && (max_msgs <= 0 || printed < max_msgs)) {
        natsSubscription *subs[3] = {s1, s2, s3};
        for (int i = 0; i < 3; i++) {
            natsMsg *m = NULL;
            if (subs[i] && natsSubscription_NextMsg(&m, subs[i], 50) == NATS_OK) {
                print_msg(cfg, m, out);
                natsMsg_Destroy(m);
                printed++;
            }
        }
    }
cleanup:
    natsSubscription_Destroy(s1);
    natsSubscription_Destroy(s2);
    natsSubscription_Destroy(s3);
    sm_bus_close(bus);
    return s;
}
