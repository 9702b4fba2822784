#include "bus.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sm_bus {
    natsConnection *nc;
    const sm_log *log;
    atomic_uint_fast64_t reconnects;
    atomic_uint_fast64_t disconnects;
    atomic_uint_fast64_t publish_errors;
    atomic_bool closing;        /* sm_bus_close started: a disconnect is ours */
    atomic_bool closed;         /* on_closed ran: no callback will follow */
};

sm_status sm_bus_status(natsStatus s)
{
    switch (s) {
    case NATS_OK: return SM_OK;
    case NATS_NO_MEMORY: return SM_ERR_NOMEM;
    case NATS_TIMEOUT: return SM_ERR_TIMEOUT;
    case NATS_INVALID_ARG: return SM_ERR_INVALID;
    default: return SM_ERR_BUS;
    }
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    sm_bus *b = closure;
    if (atomic_load(&b->closing))
        return;
    atomic_fetch_add(&b->disconnects, 1);
    sm_log_write(b->log, SM_LOG_WARN, "bus_disconnected",
                 "detail=\"lost the NATS server; reconnecting, outputs are buffered\"");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    sm_bus *b = closure;
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    atomic_fetch_add(&b->reconnects, 1);
    sm_log_write(b->log, SM_LOG_INFO, "bus_reconnected", "url=%s", url);
}

static void on_closed(natsConnection *nc, void *closure)
{
    (void)nc;
    sm_bus *b = closure;
    sm_log_write(b->log, SM_LOG_INFO, "bus_closed", "%s", "");
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
        snprintf(err, errcap, "%s to %s failed: %s (%s)", step, cfg->nats_url,
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
        natsConnection_FlushTimeout(b->nc, 2000);
        atomic_store(&b->closing, true);
        natsConnection_Close(b->nc);
        /* cnats runs the disconnected and closed callbacks later, on its
         * own thread, with b as closure: free b only after the last one. */
        for (int i = 0; i < 5000 && !atomic_load(&b->closed); i++)
            nats_Sleep(1);
        natsConnection_Destroy(b->nc);
    }
    free(b);
}

natsConnection *sm_bus_conn(sm_bus *b)
{
    return b->nc;
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
    if (s != NATS_OK)
        atomic_fetch_add(&b->publish_errors, 1);
    return sm_bus_status(s);
}

void sm_bus_stats_get(sm_bus *b, sm_bus_stats *out)
{
    out->reconnects = atomic_load(&b->reconnects);
    out->disconnects = atomic_load(&b->disconnects);
    out->publish_errors = atomic_load(&b->publish_errors);
}
