/*
 * http.h - the worker's operations endpoints over HTTP (libmicrohttpd):
 *
 *   GET /metrics   Prometheus text exposition 0.0.4 (metrics.h)
 *   GET /healthz   200 while the process is alive and its loop turning,
 *                  else 503 with the reason
 *   GET /readyz    200 when connected to NATS and subscribed, the store
 *                  open and not draining, else 503 with the reason
 *
 * Anything else is 404; a method other than GET or HEAD is 405.
 *
 * libmicrohttpd runs its own thread (internal polling). That thread reads
 * nothing but the sm_metrics exchange (a copy of the snapshot under its
 * mutex): it never touches the worker's state, so a slow or stuck scraper
 * costs the worker nothing. At most 16 connections, 5 s idle timeout.
 *
 * The sm_metrics is borrowed and must outlive the server.
 */
#ifndef SM_HTTP_H
#define SM_HTTP_H

#include <stddef.h>

#include "metrics.h"
#include "status.h"

typedef struct sm_http sm_http;

/* Parses "host:port" ("127.0.0.1:9464", "[::1]:9464", "0.0.0.0:0";
 * port 0 picks a free one). Errors: SM_ERR_CONFIG with a sentence in err. */
sm_status sm_http_parse_listen(const char *listen, char *host, size_t hostcap,
                               int *port, char *err, size_t errcap);

/* Listens on `listen` and serves from m. Sets *out only on SM_OK.
 * Errors: SM_ERR_CONFIG (bad address), SM_ERR_IO (cannot listen; err
 * says why), SM_ERR_NOMEM. */
sm_status sm_http_start(sm_http **out, const char *listen, sm_metrics *m,
                        char *err, size_t errcap);
/* The port actually bound (useful with port 0). */
int sm_http_port(const sm_http *h);
/* Stops the server thread and frees. NULL is a no-op. */
void sm_http_stop(sm_http *h);

#endif
