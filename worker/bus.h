/*
 * bus.h - the NATS edge: connecting with the configured authentication and
 * TLS, publishing with headers, and feeding subscriptions into the worker's
 * inbox. Every cnats call of the worker lives in bus.c; nothing here names
 * a cnats type (tools that still need the raw connection use bus_nats.h).
 *
 * Input: sm_bus_subscribe makes an asynchronous cnats subscription a
 * source of an sm_inbox (inbox.h). cnats's delivery thread for the
 * subscription wraps each natsMsg in an sm_item (subject, reply, headers
 * through natsMsgHeader_Get, no-op settle hooks for core NATS) and pushes
 * it, blocking while the inbox is full; beyond that, cnats holds up to
 * pending_limit messages, then drops and reports a slow consumer
 * (logged as bus_async_error with the dropped total). The worker thread
 * releases each item (natsMsg_Destroy) after handling it.
 *
 * End of input: sm_bus_drain unsubscribes at the server and lets cnats
 * deliver what was already sent to us; after the last one the source
 * reports done (SM_OK) to the inbox. A connection that closes for good
 * (not by sm_bus_close) reports SM_ERR_BUS to the inbox instead.
 *
 * Connection state changes (disconnected, reconnected, closed, async
 * errors such as a slow consumer) are logged from cnats's own threads via
 * the sm_log given at connect; the sm_log must outlive the bus. cnats
 * reconnects for ever (max reconnect -1), re-subscribes, and buffers
 * publishes made while disconnected (reconnect_buf bytes), so a server
 * restart loses no output the worker produced meanwhile.
 *
 * Thread safety: publishing is safe from any thread (cnats locks); the
 * rest from the thread that owns the bus.
 */
#ifndef SM_BUS_H
#define SM_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "inbox.h"
#include "log.h"
#include "status.h"

typedef struct sm_bus sm_bus;

/* Connects, once: a server that is down or refuses us is an error here
 * (the worker retries with backoff, sm_worker_connect). Once connected,
 * cnats reconnects for ever on its own. Errors: SM_ERR_BUS (message in
 * err), SM_ERR_CONFIG (unreadable TLS or credential files), SM_ERR_NOMEM. */
sm_status sm_bus_connect(sm_bus **out, const sm_config *cfg, const sm_log *log,
                         char *err, size_t errcap);
/* Flushes (up to 2 s), closes and frees, after cnats's last callback on
 * this bus has run. NULL is a no-op. */
void sm_bus_close(sm_bus *b);

/* Subscribes to subject as a source of ib (one subscription per bus);
 * ib must outlive the bus. pending_limit: messages cnats holds for us
 * beyond the inbox before it drops. The server may not have our interest
 * yet: confirm with sm_bus_flush. Errors: SM_ERR_BUS, SM_ERR_NOMEM,
 * SM_ERR_INVALID (a second subscription). */
sm_status sm_bus_subscribe(sm_bus *b, const char *subject,
                           int64_t pending_limit, sm_inbox *ib);

/* Starts draining the subscription: no new messages from the server,
 * those already received still reach the inbox, then the source reports
 * done. Does not wait. No subscription: SM_OK (nothing to drain). */
sm_status sm_bus_drain(sm_bus *b, int64_t timeout_ms);
/* Waits up to timeout_ms for the drain to complete and returns its
 * outcome (SM_ERR_TIMEOUT if it did not complete). */
sm_status sm_bus_drain_wait(sm_bus *b, int64_t timeout_ms);

/* A round trip to the server: every publish before it was received, and
 * every subscription is registered. Errors: SM_ERR_TIMEOUT, SM_ERR_BUS. */
sm_status sm_bus_flush(sm_bus *b, int64_t timeout_ms);

/* Publishes data on subject with headers given as a NULL-terminated list
 * of key, value pairs (NULL for none). Errors: SM_ERR_FULL (headers and
 * data over the server's max payload), SM_ERR_BUS. */
sm_status sm_bus_publish(sm_bus *b, const char *subject, const void *data,
                         size_t len, const char *const *headers);

/* The largest message, headers and payload, the server takes (its
 * max_payload), in bytes; 0 if unknown. */
int64_t sm_bus_max_payload(sm_bus *b);

/* Messages cnats dropped for us (slow consumer), -1 if unknown. */
int64_t sm_bus_dropped(sm_bus *b);

/* Whether the connection is up now (not reconnecting, not closed). Any
 * thread; false for NULL. */
bool sm_bus_connected(sm_bus *b);
/* Times cnats reconnected, -1 if unknown (NULL). Any thread. */
int64_t sm_bus_reconnects(sm_bus *b);

/* At program exit, after every bus is closed: releases cnats's library
 * threads, waiting up to timeout_ms. */
void sm_bus_library_close(int64_t timeout_ms);

#endif
