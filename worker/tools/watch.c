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
                                           line, sizeof line) == SM_OK)) {
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
    natsSubscription *s1 = NULL, *s2 = NULL;
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
        natsSubscription *subs[2] = {s1, s2};
        for (int i = 0; i < 2; i++) {
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
    sm_bus_close(bus);
    return s;
}
