/*
 * bus.c - every cnats call the worker makes: connect, publish, the input
 * subscription as an inbox source, drain, flush, close.
 */
#include "bus_nats.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sm_bus {
    natsConnection *nc;
    const sm_log *log;
    natsSubscription *sub;      /* the input, a source of inbox */
    sm_inbox *inbox;
    atomic_bool draining;       /* sm_bus_drain started: the end is ours */
    atomic_bool closing;        /* sm_bus_close started: a disconnect is ours */
    atomic_bool closed;         /* on_closed ran: no callback will follow */
    atomic_bool sub_done;       /* on_sub_done ran: no delivery will follow */
    atomic_bool sub_lost;       /* ... and we had not asked for the end */
};

sm_status sm_bus_status(natsStatus s)
{
    switch (s) {
    case NATS_OK: return SM_OK;
    case NATS_NO_MEMORY: return SM_ERR_NOMEM;
    case NATS_TIMEOUT: return SM_ERR_TIMEOUT;
    case NATS_INVALID_ARG: return SM_ERR_INVALID;
    case NATS_MAX_PAYLOAD: return SM_ERR_FULL;
    default: return SM_ERR_BUS;
    }
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    sm_bus *b = closure;
    if (atomic_load(&b->closing))
        return;
    sm_log_write(b->log, SM_LOG_WARN, "bus_disconnected",
                 "detail=\"lost the NATS server; reconnecting, outputs are buffered\"");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    sm_bus *b = closure;
    char url[256] = "", shown[256];
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    sm_log_write(b->log, SM_LOG_INFO, "bus_reconnected", "url=%s",
                 sm_log_url(url, shown, sizeof shown));
}

/* A close we did not ask for (cnats gave up: a server error it cannot
 * reconnect from) ends the input with a failure. */
static void on_closed(natsConnection *nc, void *closure)
{
    sm_bus *b = closure;
    bool ours = atomic_load(&b->closing);
    char last[256] = "";
    const char *text = NULL;
    if (!ours && natsConnection_GetLastError(nc, &text) != NATS_OK && text)
        snprintf(last, sizeof last, "%s", text);
    sm_log_write(b->log, ours ? SM_LOG_INFO : SM_LOG_ERROR, "bus_closed",
                 "expected=%s detail=\"%s\"", ours ? "yes" : "no",
                 ours ? "closed by us" : last);
    if (!ours && b->inbox)
        sm_inbox_fail(b->inbox, SM_ERR_BUS);
    atomic_store(&b->closed, true);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
                     void *closure)
{
    (void)nc;
    sm_bus *b = closure;
    int64_t dropped = 0;
    if (sub)
        natsSubscription_GetDropped(sub, &dropped);
    sm_log_write(b->log, SM_LOG_ERROR, "bus_async_error",
                 "status=\"%s\" dropped_total=%lld", natsStatus_GetText(err),
                 (long long)dropped);
}

static natsStatus set_auth(natsOptions *o, const sm_config *cfg)
{
    natsStatus s = NATS_OK;
    if (cfg->nats_user && cfg->nats_user[0])
        s = natsOptions_SetUserInfo(o, cfg->nats_user,
                                    cfg->nats_password ? cfg->nats_password : "");
    if (s == NATS_OK && cfg->nats_token && cfg->nats_token[0])
        s = natsOptions_SetToken(o, cfg->nats_token);
    if (s == NATS_OK && cfg->nats_creds && cfg->nats_creds[0])
        s = natsOptions_SetUserCredentialsFromFiles(o, cfg->nats_creds, NULL);
    if (s == NATS_OK && cfg->nats_nkey_seed && cfg->nats_nkey_seed[0])
        s = natsOptions_SetNKeyFromSeed(o, NULL, cfg->nats_nkey_seed);
    return s;
}

static bool set(const char *v) { return v && v[0]; }

static natsStatus set_tls(natsOptions *o, const sm_config *cfg)
{
    natsStatus s = NATS_OK;
    if (!set(cfg->tls_ca) && !set(cfg->tls_cert) && !cfg->tls_insecure)
        return NATS_OK;
    s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK && set(cfg->tls_ca))
        s = natsOptions_LoadCATrustedCertificates(o, cfg->tls_ca);
    if (s == NATS_OK && set(cfg->tls_cert))
        s = natsOptions_LoadCertificatesChain(o, cfg->tls_cert,
                                              set(cfg->tls_key) ? cfg->tls_key : cfg->tls_cert);
    if (s == NATS_OK && set(cfg->tls_hostname))
        s = natsOptions_SetExpectedHostname(o, cfg->tls_hostname);
    if (s == NATS_OK && cfg->tls_insecure)
        s = natsOptions_SkipServerVerification(o, true);
    return s;
}

sm_status sm_bus_connect(sm_bus **out, const sm_config *cfg, const sm_log *log,
                         char *err, size_t errcap)
{
    sm_bus *b = calloc(1, sizeof *b);
    if (!b)
        return SM_ERR_NOMEM;
    b->log = log;
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    const char *step = "options";
    if (s == NATS_OK) s = natsOptions_SetURL(o, cfg->nats_url);
    if (s == NATS_OK) s = natsOptions_SetName(o, cfg->name);
    if (s == NATS_OK) s = natsOptions_SetTimeout(o, cfg->connect_timeout_ms);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(o, cfg->reconnect_wait_ms);
    if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(o, (int)cfg->reconnect_buf);
    if (s == NATS_OK) s = natsOptions_SetMaxPendingMsgs(o, (int)cfg->pending_limit);
    if (s == NATS_OK) s = natsOptions_SetSendAsap(o, cfg->send_asap);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(o, on_disconnected, b);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(o, on_reconnected, b);
    if (s == NATS_OK) s = natsOptions_SetClosedCB(o, on_closed, b);
    if (s == NATS_OK) s = natsOptions_SetErrorHandler(o, on_error, b);
    if (s == NATS_OK) { step = "authentication"; s = set_auth(o, cfg); }
    if (s == NATS_OK) { step = "tls"; s = set_tls(o, cfg); }
    if (s == NATS_OK) {
        step = "connect";
        s = natsConnection_Connect(&b->nc, o);
    }
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
        char url[512];
        snprintf(err, errcap, "%s to %s failed: %s (%s)", step,
                 sm_log_url(cfg->nats_url, url, sizeof url),
                 natsStatus_GetText(s), nats_GetLastError(NULL));
        free(b);
        return (strcmp(step, "connect") == 0) ? SM_ERR_BUS : SM_ERR_CONFIG;
    }
    *out = b;
    return SM_OK;
}

void sm_bus_close(sm_bus *b)
{
    if (!b)
        return;
    if (b->nc) {
        /* A connection cnats is closing or has closed on its own was not
         * closed by us, even if its callbacks run only now. */
        bool lost = natsConnection_Status(b->nc) == NATS_CONN_STATUS_CLOSED ||
                    atomic_load(&b->sub_lost);
        if (!lost)
            natsConnection_FlushTimeout(b->nc, 2000);
        atomic_store(&b->closing, !lost);
        natsConnection_Close(b->nc);
        /* cnats runs the subscription's completion and the disconnected
         * and closed callbacks later, on its own threads, with b as
         * closure: free b only after the last one. */
        for (int i = 0; i < 5000 && !atomic_load(&b->closed); i++)
            nats_Sleep(1);
        for (int i = 0; b->sub && i < 5000 && !atomic_load(&b->sub_done); i++)
            nats_Sleep(1);
        natsSubscription_Destroy(b->sub);
        natsConnection_Destroy(b->nc);
    }
    free(b);
}

natsConnection *sm_bus_conn(sm_bus *b)
{
    return b->nc;
}

/* ---- the input subscription as an inbox source ------------------------ */

static const char *msg_header(const sm_item *it, const char *key)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(it->src, key, &v) != NATS_OK)
        return NULL;
    return v;
}

static void msg_release(sm_item *it)
{
    natsMsg_Destroy(it->src);
}

/* Core NATS has no acknowledgement: settle is a no-op (NULL). A JetStream
 * source will map it to natsMsg_Ack / NakWithDelay / Term. */
static const sm_item_ops core_ops = {
    .header = msg_header,
    .release = msg_release,
};

void sm_bus_item(sm_item *it, natsMsg *m)
{
    *it = (sm_item){
        .subject = natsMsg_GetSubject(m),
        .reply = natsMsg_GetReply(m),
        .data = natsMsg_GetData(m),
        .len = (size_t)natsMsg_GetDataLength(m),
        .ops = &core_ops,
        .src = m,
    };
}

/* On cnats's delivery thread for b->sub. */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m,
                   void *closure)
{
    (void)nc;
    (void)sub;
    sm_bus *b = closure;
    sm_item it;
    sm_bus_item(&it, m);
    if (sm_inbox_push(b->inbox, &it) != SM_OK)
        natsMsg_Destroy(m);     /* inbox closed: we are going down */
}

/* After the subscription's last delivery (drained, or closed with the
 * connection). */
static void on_sub_done(void *closure)
{
    sm_bus *b = closure;
    bool ours = atomic_load(&b->draining) || atomic_load(&b->closing);
    if (!ours)
        atomic_store(&b->sub_lost, true);
    sm_inbox_source_done(b->inbox, ours ? SM_OK : SM_ERR_BUS);
    atomic_store(&b->sub_done, true);
}

sm_status sm_bus_subscribe(sm_bus *b, const char *subject,
                           int64_t pending_limit, sm_inbox *ib)
{
    if (b->sub)
        return SM_ERR_INVALID;
    b->inbox = ib;
    natsStatus s = natsConnection_Subscribe(&b->sub, b->nc, subject, on_msg, b);
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(b->sub, (int)pending_limit, -1);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(b->sub, on_sub_done, b);
    if (s != NATS_OK) {
        sm_log_write(b->log, SM_LOG_ERROR, "subscribe_failed",
                     "subject=%s status=\"%s\"", subject, natsStatus_GetText(s));
        if (b->sub) {
            natsSubscription_Unsubscribe(b->sub);
            natsSubscription_Destroy(b->sub);
            b->sub = NULL;
        }
        return sm_bus_status(s);
    }
    sm_inbox_source_open(ib);
    return SM_OK;
}

sm_status sm_bus_drain(sm_bus *b, int64_t timeout_ms)
{
    if (!b || !b->sub)
        return SM_OK;
    atomic_store(&b->draining, true);
    return sm_bus_status(natsSubscription_DrainTimeout(b->sub, timeout_ms));
}

sm_status sm_bus_drain_wait(sm_bus *b, int64_t timeout_ms)
{
    if (!b || !b->sub)
        return SM_OK;
    natsStatus s = natsSubscription_WaitForDrainCompletion(b->sub, timeout_ms);
    if (s == NATS_OK)
        s = natsSubscription_DrainCompletionStatus(b->sub);
    return sm_bus_status(s);
}

sm_status sm_bus_flush(sm_bus *b, int64_t timeout_ms)
{
    return sm_bus_status(natsConnection_FlushTimeout(b->nc, timeout_ms));
}

int64_t sm_bus_max_payload(sm_bus *b)
{
    if (!b || !b->nc)
        return 0;
    int64_t max = natsConnection_GetMaxPayload(b->nc);
    return max > 0 ? max : 0;
}

int64_t sm_bus_dropped(sm_bus *b)
{
    int64_t d = -1;
    if (!b || !b->sub || natsSubscription_GetDropped(b->sub, &d) != NATS_OK)
        return -1;
    return d;
}

void sm_bus_library_close(int64_t timeout_ms)
{
    nats_CloseAndWait(timeout_ms);
}

sm_status sm_bus_publish(sm_bus *b, const char *subject, const void *data,
                         size_t len, const char *const *headers)
{
    natsStatus s;
    if (!headers) {
        s = natsConnection_Publish(b->nc, subject, data, (int)len);
    } else {
        natsMsg *m = NULL;
        s = natsMsg_Create(&m, subject, NULL, data, (int)len);
        for (size_t i = 0; s == NATS_OK && headers[i] && headers[i + 1]; i += 2)
            s = natsMsgHeader_Set(m, headers[i], headers[i + 1]);
        if (s == NATS_OK)
            s = natsConnection_PublishMsg(b->nc, m);
        natsMsg_Destroy(m);
    }
    return sm_bus_status(s);
}

/* ---- for the operations endpoints (metrics.h) -------------------------- */

bool sm_bus_connected(sm_bus *b)
{
    return b && b->nc &&
           natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED;
}

int64_t sm_bus_reconnects(sm_bus *b)
{
    natsStatistics *st = NULL;
    uint64_t reconnects = 0;
    int64_t r = -1;
    if (b && b->nc && natsStatistics_Create(&st) == NATS_OK &&
        natsConnection_GetStats(b->nc, st) == NATS_OK &&
        natsStatistics_GetCounts(st, NULL, NULL, NULL, NULL, &reconnects) == NATS_OK)
        r = (int64_t)reconnects;
    natsStatistics_Destroy(st);
    return r;
}
