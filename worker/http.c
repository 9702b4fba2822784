/*
 * http.c - /metrics, /healthz and /readyz over libmicrohttpd. Every call
 * of libmicrohttpd lives here.
 */
#include "http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct sm_http {
    struct MHD_Daemon *d;
    sm_metrics *m;
    int port;
};

sm_status sm_http_parse_listen(const char *listen, char *host, size_t hostcap,
                               int *port, char *err, size_t errcap)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    const char *h = listen;
    size_t hlen = colon ? (size_t)(colon - listen) : 0;
    if (colon && listen[0] == '[' && hlen >= 2 && listen[hlen - 1] == ']') {
        h = listen + 1;         /* [v6 address] */
        hlen -= 2;
    }
    char *end;
    errno = 0;
    long p = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || hlen == 0 || hlen >= hostcap || errno || end == colon + 1 ||
        *end || p < 0 || p > 65535) {
        snprintf(err, errcap, "http_listen '%s' is not host:port (e.g. "
                 "127.0.0.1:9464; port 0 picks a free one; empty: off)",
                 listen ? listen : "");
        return SM_ERR_CONFIG;
    }
    memcpy(host, h, hlen);
    host[hlen] = 0;
    *port = (int)p;
    return SM_OK;
}

/* Queues a response of `body` (copied or, with owned, freed by MHD). */
static enum MHD_Result respond(struct MHD_Connection *c, unsigned code,
                               const char *type, char *body, size_t len,
                               bool owned)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (!r) {
        if (owned)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ok = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ok;
}

/* A probe's answer: 200 "ok: why" or 503 "why". */
static enum MHD_Result probe(struct MHD_Connection *c, bool ok, const char *why)
{
    char text[160];
    int n = snprintf(text, sizeof text, "%s%s\n", ok ? "ok: " : "", why);
    return respond(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                   "text/plain; charset=utf-8", text, (size_t)n, false);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    sm_http *h = cls;
    static char nothing[] = "";
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", nothing, 0,
                       false);
    sm_metrics_snap s;
    sm_metrics_read(h->m, &s);
    const char *why = "";
    bool ok;
    if (strcmp(url, "/healthz") == 0) {
        ok = sm_metrics_healthy(&s, sm_metrics_now_ms(), &why);
        return probe(c, ok, why);
    }
    if (strcmp(url, "/readyz") == 0) {
        ok = sm_metrics_ready(&s, &why);
        return probe(c, ok, why);
    }
    if (strcmp(url, "/metrics") == 0) {
        char *body;
        size_t len;
        if (sm_metrics_render(&s, &body, &len) != SM_OK)
            return probe(c, false, "out of memory rendering the metrics");
        return respond(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                       body, len, true);
    }
    static char missing[] = "not found: /metrics, /healthz, /readyz\n";
    return respond(c, MHD_HTTP_NOT_FOUND, "text/plain", missing,
                   sizeof missing - 1, false);
}

sm_status sm_http_start(sm_http **out, const char *listen, sm_metrics *m,
                        char *err, size_t errcap)
{
    char host[256], port_text[8];
    int port;
    sm_status s = sm_http_parse_listen(listen, host, sizeof host, &port, err,
                                       errcap);
    if (s != SM_OK)
        return s;
    snprintf(port_text, sizeof port_text, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, port_text, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errcap, "http_listen '%s': %s", listen, gai_strerror(rc));
        return SM_ERR_CONFIG;
    }
    sm_http *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        return SM_ERR_NOMEM;
    }
    h->m = m;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, h,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)5,
                            MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d) {
        snprintf(err, errcap, "http_listen '%s': cannot listen (address in "
                 "use or not local?)", listen);
        free(h);
        return SM_ERR_IO;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    *out = h;
    return SM_OK;
}

int sm_http_port(const sm_http *h)
{
    return h->port;
}

void sm_http_stop(sm_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
