/*
 * inbox.h - the worker's input: items from any source, queued for the one
 * thread that owns the worker's state.
 *
 * An sm_item is one input message as a handler sees it: subject, reply
 * subject, payload, headers through an accessor (sm_item_header), and the
 * settle hooks (ack, nak with delay, term) that tell the source what became
 * of it. The source supplies those through sm_item_ops: for a core NATS
 * subscription they are no-ops, for a JetStream pull consumer they will be
 * the JetStream acks. sm_item_plain() builds an item with no source at all
 * (replay, tests): headers from a NULL-terminated key, value list, no-op
 * hooks.
 *
 * The sm_inbox is a bounded multi-producer, single-consumer queue of items:
 * sources push from their own threads (cnats's subscription delivery
 * threads, later a fetch loop or a timer), the worker thread pops batches.
 * One mutex and two condition variables; a producer signals only when the
 * consumer is waiting, the consumer only when a producer is and the queue
 * is down to half its capacity (a blocked producer then has room for
 * many items, not one pop's worth), and the
 * consumer takes up to a whole batch per lock, so the cost per message is
 * one uncontended lock and an item copy.
 *
 * Back-pressure: when the inbox is full, sm_inbox_push blocks its producer
 * until the worker pops. A blocked cnats delivery thread stops emptying
 * its subscription's pending queue; when that reaches pending_limit cnats
 * drops messages and reports a slow consumer (bus.c logs bus_async_error
 * with the dropped total). The inbox logs nothing itself; it counts the
 * times it was found full (sm_inbox_stats) and the worker logs that.
 *
 * Sources: each source registers (sm_inbox_source_open) and reports its
 * end (sm_inbox_source_done) after its last push, with SM_OK when it ended
 * because we drained or closed it, or a failure status (the connection
 * closed under us). The worker uses this to drain for real: stop the
 * sources, pop until none is open and the queue is empty, then commit.
 *
 * Thread safety: push, source_open/done, close and stats from any thread;
 * pop from one thread at a time. Items in the queue own their source
 * message; whoever pops one releases it (sm_item_release).
 */
#ifndef SM_INBOX_H
#define SM_INBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct sm_item sm_item;

/* What became of an item, told back to its source. */
typedef enum sm_settle {
    SM_SETTLE_ACK = 0,          /* done with it (accepted or dead-lettered) */
    SM_SETTLE_NAK,              /* redeliver after delay_ms */
    SM_SETTLE_TERM,             /* never redeliver */
} sm_settle;

/* A source's hooks. Any may be NULL (no headers, no-op settle, nothing to
 * release). header returns a value borrowed from the item, or NULL. */
typedef struct sm_item_ops {
    const char *(*header)(const sm_item *it, const char *key);
    /* Whether the state already holds the item (a redelivery of what was
     * applied before): the worker then settles it without handling it.
     * Called on the worker thread just before handling. */
    bool (*seen)(const sm_item *it);
    sm_status (*settle)(sm_item *it, sm_settle how, int64_t delay_ms);
    void (*release)(sm_item *it);
} sm_item_ops;

/* One input message. Strings and data are borrowed from the source message
 * (src) and live until sm_item_release. */
struct sm_item {
    const char *subject;
    const char *reply;          /* NULL when none */
    const void *data;
    size_t len;
    const sm_item_ops *ops;
    void *src;                  /* the source's message (e.g. a natsMsg) */
    const char *const *headers; /* plain items: key, value, ..., NULL */
    void *ctx;                  /* the source that pushed it (its hooks') */
    uint64_t seq;               /* the source's sequence (JetStream: the
                                   stream sequence), 0 if none */
    const char *reject;         /* set by the source: dead-letter the item
                                   unhandled, with this reason (static),
                                   e.g. a poison message redelivered
                                   js_max_deliver times */
};

/* Fills *it with a source-less item over borrowed memory. headers: a
 * NULL-terminated key, value list, or NULL. */
void sm_item_plain(sm_item *it, const char *subject, const void *data,
                   size_t len, const char *const *headers);

/* The value of header key (case-sensitive, first one), or NULL. */
const char *sm_item_header(const sm_item *it, const char *key);
/* Whether the source says the state already holds the item. */
bool sm_item_seen(const sm_item *it);
/* Tells the source what became of the item. Errors: the source's. */
sm_status sm_item_settle(sm_item *it, sm_settle how, int64_t delay_ms);
/* Releases the source message. The item must not be used after. */
void sm_item_release(sm_item *it);

typedef struct sm_inbox sm_inbox;

/* Creates an inbox holding at most capacity (>= 1) items. */
sm_status sm_inbox_create(sm_inbox **out, size_t capacity);
/* Releases every item still queued, frees. No producer may be inside
 * push (close first, then stop the sources). NULL is a no-op. */
void sm_inbox_destroy(sm_inbox *ib);

/* Queues a copy of *it, blocking while the inbox is full. Returns SM_OK
 * (the inbox owns the item now), or SM_ERR_INVALID once the inbox is
 * closed (the caller still owns it and should release it). */
sm_status sm_inbox_push(sm_inbox *ib, const sm_item *it);

/* Moves up to max items into out, in push order, waiting up to timeout_ms
 * (0: not at all) for the first. Returns how many (0 on timeout, or at
 * once when no source is open and the queue is empty). */
size_t sm_inbox_pop(sm_inbox *ib, sm_item *out, size_t max,
                    int64_t timeout_ms);

/* Makes the consumer's current or next wait in sm_inbox_pop return at
 * once (with what is queued, maybe nothing): e.g. the commit thread
 * telling the worker its batch is written (writer.h). From any thread. */
void sm_inbox_wake(sm_inbox *ib);
/* The urgent lane: requests that must not wait behind the event queue
 * (request/reply endpoints, service.h). A small ring of its own, never
 * blocking: when it is full the push fails with SM_ERR_FULL and the
 * source answers "busy" itself. The consumer takes urgent items with
 * sm_inbox_pop_urgent, checks for them between events with
 * sm_inbox_urgent_waiting (one atomic load, no lock), and a consumer
 * waiting in sm_inbox_pop wakes (returning 0) when one arrives. Urgent
 * items are popped in push order among themselves. */
#define SM_INBOX_URGENT_CAP 1024
sm_status sm_inbox_push_urgent(sm_inbox *ib, const sm_item *it);
/* Moves up to max urgent items into out without waiting. */
size_t sm_inbox_pop_urgent(sm_inbox *ib, sm_item *out, size_t max);
/* Whether urgent items wait (a relaxed read: may lag a push by a moment,
 * never reports one that is not there). */
bool sm_inbox_urgent_waiting(sm_inbox *ib);

/* A source starts pushing. */
void sm_inbox_source_open(sm_inbox *ib);
/* A source made its last push. why: SM_OK for an end we asked for, else
 * the failure (the first failure is kept, sm_inbox_failure). */
void sm_inbox_source_done(sm_inbox *ib, sm_status why);
/* Records a failure of the input without ending a source (e.g. the
 * connection closed for good). Wakes the consumer. */
void sm_inbox_fail(sm_inbox *ib, sm_status why);

/* Refuses further pushes and wakes blocked producers (they get
 * SM_ERR_INVALID). Items already queued can still be popped. */
void sm_inbox_close(sm_inbox *ib);

typedef struct sm_inbox_stats {
    size_t queued;              /* items waiting now */
    size_t sources;             /* sources open now */
    sm_status failure;          /* first failure reported, SM_OK if none */
    uint64_t pushed;
    uint64_t full_waits;        /* pushes that found the inbox full */
    uint64_t refused;           /* pushes after close */
} sm_inbox_stats;
void sm_inbox_stats_get(sm_inbox *ib, sm_inbox_stats *out);

#endif
