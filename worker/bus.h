/*
 * bus.h - the NATS edge: connecting with the configured authentication and
 * TLS, publishing with headers, and turning natsStatus into sm_status.
 *
 * Connection state changes (disconnected, reconnected, closed, async
 * errors such as a slow consumer) are logged from cnats's own threads via
 * the sm_log given at connect; the sm_log must outlive the bus. cnats
 * reconnects for ever (max reconnect -1) and buffers publishes made while
 * disconnected (reconnect_buf bytes), so a server restart loses no output
 * the worker produced meanwhile.
 *
 * Thread safety: publishing is safe from any thread (cnats locks).
 */
#ifndef SM_BUS_H
#define SM_BUS_H

#include <nats/nats.h>
#include <stddef.h>

#include "config.h"
#include "log.h"
#include "status.h"

typedef struct sm_bus sm_bus;

/* Converts a cnats status, once, at the edge. */
sm_status sm_bus_status(natsStatus s);

/* Connects, once: a server that is down or refuses us is an error here
 * (the worker retries with backoff, sm_worker_connect). Once connected,
 * cnats reconnects for ever on its own. Errors: SM_ERR_BUS (message in
 * err), SM_ERR_CONFIG (unreadable TLS or credential files), SM_ERR_NOMEM. */
sm_status sm_bus_connect(sm_bus **out, const sm_config *cfg, const sm_log *log,
                         char *err, size_t errcap);
/* Flushes (up to 2 s), closes and frees. NULL is a no-op. */
void sm_bus_close(sm_bus *b);

natsConnection *sm_bus_conn(sm_bus *b);

/* Publishes data on subject with headers given as a NULL-terminated list
 * of key, value pairs (NULL for none). Errors: SM_ERR_BUS. */
sm_status sm_bus_publish(sm_bus *b, const char *subject, const void *data,
                         size_t len, const char *const *headers);

/* Counters read by the stats line. */
typedef struct sm_bus_stats {
    uint64_t reconnects;
    uint64_t disconnects;
    uint64_t publish_errors;
} sm_bus_stats;
void sm_bus_stats_get(sm_bus *b, sm_bus_stats *out);

#endif
