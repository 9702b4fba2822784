/*
 * service_srv.c - the services' cnats side (service.h): the api
 * subscription feeding the inbox's urgent lane, and NATS service
 * discovery ($SRV.PING, $SRV.INFO, $SRV.STATS, each also .<name> and
 * .<name>.<id>) answered on cnats's thread in the io.nats.micro.v1 JSON
 * shapes (ADR-32), built with jansson.
 */
#include "service_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_nats.h"

#define DRAIN_MS 2000

/* ---- the api subscription ------------------------------------------------ */

/* On cnats's delivery thread: to the worker's urgent lane, or "busy". */
static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *m,
                       void *closure)
{
    (void)nc;
    (void)sub;
    sm_service *svc = closure;
    sm_item it;
    sm_bus_item(&it, m);
    sm_status s = sm_inbox_push_urgent(svc->ib, &it);
    if (s == SM_OK) {
        sm_service_wake(svc);
        return;
    }
    /* busy, but only the owner says so: another worker's "busy" would
     * reach the asker before the owner's answer */
    if (s == SM_ERR_FULL && sm_service_elsewhere(svc, it.subject)) {
        pthread_mutex_lock(&svc->mu);
        svc->st.not_owned++;
        pthread_mutex_unlock(&svc->mu);
    } else if (s == SM_ERR_FULL && it.reply && it.reply[0]) {
        sm_service_reply_error(svc, it.reply, 503,
                               "busy: too many requests waiting");
        pthread_mutex_lock(&svc->mu);
        svc->st.busy++;
        pthread_mutex_unlock(&svc->mu);
    }
    natsMsg_Destroy(m);
}

/* ---- $SRV ------------------------------------------------------------------ */

enum { SRV_PING, SRV_INFO, SRV_STATS };
static const char *const srv_verbs[] = {"PING", "INFO", "STATS"};
static const char *const srv_types[] = {
    "io.nats.micro.v1.ping_response", "io.nats.micro.v1.info_response",
    "io.nats.micro.v1.stats_response",
};

/* The api subject of an endpoint: <prefix>.*.api.<verb>. */
static void ep_subject(const sm_service *svc, int ep, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s.*.api.%s", svc->cfg->output_prefix,
             sm_endpoint_names[ep]);
}

static json_t *srv_common(const sm_service *svc, int kind)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:{}}", "type", srv_types[kind],
                     "name", SM_SERVICE_NAME, "id", svc->id, "version",
                     SM_SERVICE_VERSION, "metadata");
}

static json_t *info_endpoints(const sm_service *svc)
{
    json_t *a = json_array();
    char subj[256];
    for (int i = 0; a && i < EP_COUNT; i++) {
        ep_subject(svc, i, subj, sizeof subj);
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:{}}", "name",
                                           sm_endpoint_names[i], "subject", subj,
                                           "queue_group", "", "metadata"));
    }
    return a;
}

static json_t *stats_endpoints(sm_service *svc)
{
    json_t *a = json_array();
    char subj[256];
    sm_ep_stats eps[EP_COUNT];
    pthread_mutex_lock(&svc->mu);
    memcpy(eps, svc->eps, sizeof eps);
    pthread_mutex_unlock(&svc->mu);
    for (int i = 0; a && i < EP_COUNT; i++) {
        const sm_ep_stats *e = &eps[i];
        ep_subject(svc, i, subj, sizeof subj);
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:I}", "name",
                         sm_endpoint_names[i], "subject", subj, "queue_group", "",
                         "num_requests", (json_int_t)e->requests, "num_errors",
                         (json_int_t)e->errors, "last_error", e->last_error,
                         "processing_time", (json_int_t)e->processing_ns,
                         "average_processing_time",
                         (json_int_t)(e->requests ? e->processing_ns /
                                                        (int64_t)e->requests
                                                  : 0)));
    }
    return a;
}

/* The closure of a $SRV subscription: the service and the verb. */
typedef struct srv_sub {
    sm_service *svc;
    int kind;
} srv_sub;

static srv_sub *srv_closures(sm_service *svc)
{
    /* three closures kept inside the service's reply buffer would move;
     * a static table of kinds per service is simplest: allocated once */
    srv_sub *c = calloc(3, sizeof *c);
    for (int i = 0; c && i < 3; i++)
        c[i] = (srv_sub){.svc = svc, .kind = i};
    return c;
}

static void on_srv(natsConnection *nc, natsSubscription *sub, natsMsg *m,
                   void *closure)
{
    (void)sub;
    const srv_sub *c = closure;
    sm_service *svc = c->svc;
    const char *reply = natsMsg_GetReply(m);
    json_t *j = reply ? srv_common(svc, c->kind) : NULL;
    if (j && c->kind == SRV_INFO) {
        json_object_set_new(j, "description",
                            json_string("swarm-medic: performance reports, "
                                        "agent selection, token plans, "
                                        "decision explanations for the "
                                        "swarms this worker holds"));
        json_object_set_new(j, "endpoints", info_endpoints(svc));
    } else if (j && c->kind == SRV_STATS) {
        json_object_set_new(j, "started", json_string(svc->started));
        json_object_set_new(j, "endpoints", stats_endpoints(svc));
    }
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text)
        natsConnection_PublishString(nc, reply, text);
    free(text);
    json_decref(j);
    natsMsg_Destroy(m);
}

/* ---- subscribe / unsubscribe --------------------------------------------- */

static sm_status sub_one(sm_service *svc, const char *subject,
                         natsMsgHandler cb, void *closure)
{
    if (svc->n_subs == SM_SRV_SUBS)
        return SM_ERR_INVALID;
    natsSubscription *s = NULL;
    natsStatus ns = natsConnection_Subscribe(&s, svc->nc, subject, cb, closure);
    if (ns != NATS_OK) {
        sm_log_write(svc->log, SM_LOG_ERROR, "subscribe_failed",
                     "subject=%s status=\"%s\"", subject, natsStatus_GetText(ns));
        return sm_bus_status(ns);
    }
    svc->subs[svc->n_subs++] = s;
    return SM_OK;
}

sm_status sm_srv_subscribe(sm_service *svc, sm_bus *bus)
{
    svc->nc = sm_bus_conn(bus);
    srv_sub *c = srv_closures(svc);
    if (!c)
        return SM_ERR_NOMEM;
    svc->srv_closures = c;
    char subject[256];
    snprintf(subject, sizeof subject, "%s.*.api.*", svc->cfg->output_prefix);
    sm_status s = sub_one(svc, subject, on_request, svc);
    for (int k = 0; k < 3 && s == SM_OK; k++) {
        snprintf(subject, sizeof subject, "$SRV.%s", srv_verbs[k]);
        s = sub_one(svc, subject, on_srv, &c[k]);
        snprintf(subject, sizeof subject, "$SRV.%s.%s", srv_verbs[k],
                 SM_SERVICE_NAME);
        if (s == SM_OK)
            s = sub_one(svc, subject, on_srv, &c[k]);
        snprintf(subject, sizeof subject, "$SRV.%s.%s.%s", srv_verbs[k],
                 SM_SERVICE_NAME, svc->id);
        if (s == SM_OK)
            s = sub_one(svc, subject, on_srv, &c[k]);
    }
    if (s == SM_OK)     /* the server has our interest before we say so */
        s = sm_bus_status(natsConnection_FlushTimeout(svc->nc, 2000));
    if (s == SM_OK)
        sm_log_write(svc->log, SM_LOG_INFO, "service_ready",
                     "name=%s id=%s api=%s.*.api.* endpoints=%d", SM_SERVICE_NAME,
                     svc->id, svc->cfg->output_prefix, EP_COUNT);
    return s;
}

void sm_srv_unsubscribe(sm_service *svc)
{
    for (size_t i = 0; i < svc->n_subs; i++)
        if (natsSubscription_Drain(svc->subs[i]) == NATS_OK)
            natsSubscription_WaitForDrainCompletion(svc->subs[i], DRAIN_MS);
    for (size_t i = 0; i < svc->n_subs; i++)
        natsSubscription_Destroy(svc->subs[i]);
    svc->n_subs = 0;
    free(svc->srv_closures);
    svc->srv_closures = NULL;
}
