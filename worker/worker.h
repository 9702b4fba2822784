/*
 * worker.h - one swarm-medic worker: the struct built in main that carries
 * config, store, bus and state to every handler (no globals).
 *
 * Threading model: one thread owns everything. Input arrives through the
 * worker's inbox (inbox.h): sources running on their own threads (today
 * the cnats delivery thread of the input subscription, bus.c; later
 * JetStream fetches, request/reply endpoints, timers) push items, and the
 * worker thread pops them in batches, so the core state, the codec arena
 * and the LMDB write transaction are touched by exactly one thread, in
 * arrival order, with no locks beyond the inbox's own. cnats's threads
 * read the socket, push into the inbox (blocking while it is full: see
 * inbox.h for back-pressure), flush our publishes and run the connection
 * callbacks, which log and report a closed connection to the inbox.
 *
 * Each handler returns a verdict (sm_verdict): accepted, or dead-lettered
 * with a reason (later: nak with delay, term); the loop applies it (the
 * dead-letter publish, then the item's settle hook: a no-op on core NATS,
 * the JetStream ack later).
 *
 * Group commit: handlers change state in memory; the loop commits dirty
 * state to LMDB every commit_events events, after commit_interval of wall
 * time with uncommitted events, and whenever the input goes idle. The write
 * transaction is opened and closed inside sm_worker_flush and never spans
 * a publish. Conclusions wait for the commit of the state they reveal
 * (publish_after_commit): decided during a batch of input, they are held
 * in an outbox, and at the end of the batch the loop commits, then sends
 * them in order. A worker killed at any point restarts with every episode
 * it announced open, so it never announces one again; what it had decided
 * but not yet sent dies with the state that led to it. After a crash the
 * events since the last commit are lost from the windows (core NATS is
 * at-most-once); a re-delivered input that re-derives the same decision
 * yields the same decision id and Nats-Msg-Id. The meta record of each
 * commit carries the bus clock and the count of inputs handled (applied),
 * so a restart resumes both.
 *
 * Stop: on a stop signal the loop drains for real: the subscription is
 * drained at the server, every message already delivered is handled, the
 * windows get their final LMDB commit, and publishes are flushed before
 * the connection closes. A connection that closes under us ends the loop
 * the same way (what arrived is handled and committed) but sm_worker_run
 * then returns SM_ERR_BUS and the program exits non-zero.
 *
 * Lifecycle: sm_worker_create, sm_worker_open (store + load),
 * sm_worker_connect (bus + subscribe), sm_worker_run (until a stop signal),
 * sm_worker_destroy (flush, close).
 */
#ifndef SM_WORKER_H
#define SM_WORKER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "inbox.h"
#include "log.h"
#include "metrics.h"
#include "status.h"

typedef struct sm_worker sm_worker;

/* The longest a stop waits for delivered input to drain; then up to 1 s
 * for the bus's drain and 2 s for the publish flush follow. A supervisor's
 * stop timeout (systemd TimeoutStopSec, Kubernetes'
 * terminationGracePeriodSeconds) must exceed the sum (deploy/). */
#define SM_WORKER_DRAIN_MS 10000
#define SM_WORKER_STOP_MS (SM_WORKER_DRAIN_MS + 1000 + 2000)

/* Where conclusions and dead letters go: the bus, or (for replay and
 * tests) anything else. headers: NULL-terminated key, value list.
 * max_payload (optional, NULL: no limit): the largest message, headers
 * and data, the sink takes now, 0 if unknown; a dead letter that would
 * not fit goes out truncated (Medic-Truncated). */
typedef struct sm_sink {
    sm_status (*publish)(void *ud, const char *subject, const void *data,
                         size_t len, const char *const *headers);
    void *ud;
    int64_t (*max_payload)(void *ud);
} sm_sink;

/* What becomes of an input message. */
typedef enum sm_disposition {
    SM_DISP_ACCEPTED = 0,       /* state changed; acked */
    SM_DISP_DEADLETTER,         /* forwarded to the dead-letter subject with
                                   a reason; acked */
    SM_DISP_NAK,                /* redeliver after delay_ms (JetStream) */
    SM_DISP_TERM,               /* never redeliver (JetStream) */
} sm_disposition;

/* A handler's verdict on one message. */
typedef struct sm_verdict {
    sm_disposition disp;
    sm_status status;           /* SM_OK when accepted, else why not */
    const char *reason;         /* static sentence (Medic-Reason); NULL
                                   when accepted */
    bool internal;              /* our failure (memory), not the sender's */
    int64_t delay_ms;           /* SM_DISP_NAK */
} sm_verdict;

typedef struct sm_worker_stats {
    uint64_t events;            /* inputs accepted */
    uint64_t by_kind[7];        /* indexed by sm_input_kind */
    uint64_t deadletters;       /* inputs rejected and forwarded */
    uint64_t internal_errors;   /* of which our failure (out of memory) */
    uint64_t transitions;       /* conclusions published (bottleneck,
                                   failure, prediction messages) */
    uint64_t publish_errors;
    uint64_t not_durable;       /* conclusions sent although the state they
                                   reveal could not be committed first */
    uint64_t commits;
    uint64_t commit_failures;
    uint64_t commit_redone;     /* batches the commit thread could not
                                   write whole, redone on the event thread */
    uint64_t map_grown;         /* LMDB map grown ahead of a batch */
    uint64_t ahead_items;       /* items the loop handled with read-ahead
                                   hints (a swarm of many agents) */
    uint64_t agents_written;
    size_t swarms;              /* swarms held in memory */
    int64_t bus_ms;             /* the bus clock (handle.c) */
    uint64_t applied;           /* inputs handled (accepted or dead-lettered)
                                   since the store began: stored with the
                                   state at each commit, restored at open */
    uint64_t clock_jumps_held;  /* far-ahead times not (yet) confirmed */
    uint64_t skew_rejected;     /* events over max_skew ahead of the bus
                                   clock, dead-lettered */
    uint64_t swarm_cap_rejected;    /* inputs for a new swarm over max_swarms */
    uint64_t agent_cap_rejected;    /* inputs for a new agent over max_agents */
    uint64_t swarms_expired;    /* idle swarms removed (swarm_retention) */
    uint64_t deadletters_by_status[SM_METRICS_STATUSES];   /* by the
                                   verdict's sm_status (metrics.h) */
    uint64_t decisions[SM_METRICS_DEC_KINDS][SM_METRICS_DEC_TYPES];
                                /* conclusions published, by
                                   sm_decision_kind and type */
} sm_worker_stats;

/* cfg and log are borrowed and must outlive the worker. Sets *out only on
 * SM_OK. */
sm_status sm_worker_create(sm_worker **out, const sm_config *cfg,
                           const sm_log *log);
/* Flushes what is dirty (best effort, logged), closes bus and store,
 * frees. NULL is a no-op. */
void sm_worker_destroy(sm_worker *w);

/* Opens the LMDB environment and loads the windows it holds. */
sm_status sm_worker_open(sm_worker *w);
/* Connects to NATS and subscribes to cfg->input_subject; conclusions then
 * go to the bus. A server that is down or refuses us is retried with
 * backoff (reconnect_wait doubling to 5 s), each failure logged with its
 * reason, until a signal of `stop` is pending (then SM_ERR_BUS). Bad TLS
 * or credential files fail at once with SM_ERR_CONFIG. */
sm_status sm_worker_connect(sm_worker *w, const sigset_t *stop);
/* Sends conclusions to `sink` instead of the bus (before any handling). */
void sm_worker_set_sink(sm_worker *w, const sm_sink *sink);

/* The inbox sources push into (owned by the worker). */
sm_inbox *sm_worker_inbox(sm_worker *w);

/* Handles one input item and applies the verdict: parse the subject,
 * decode, only then get or create the swarm, update windows, publish
 * conclusions (with a store: commit first, see above); a rejected item
 * goes to the dead-letter subject with Medic-Reason, Medic-Status and
 * Medic-Subject headers; then the item is settled (acked). The item is
 * not released. Never fails the caller. */
sm_verdict sm_worker_handle_item(sm_worker *w, sm_item *it);

/* The same for a message without a source (offline replay): returns
 * SM_OK if accepted, else why it was dead-lettered. */
sm_status sm_worker_handle(sm_worker *w, const char *subject,
                           const void *data, size_t len);

/* Commits dirty windows to LMDB (group commit), applying retention. */
sm_status sm_worker_flush(sm_worker *w);

/* Consumes the inbox until one of `stop` is pending (the caller blocks
 * them in every thread before creating any), then drains: the bus stops
 * new input, what was delivered is handled, the store commits, publishes
 * are flushed. Returns SM_OK, the final commit's failure, or SM_ERR_BUS
 * when the input ended without being asked (connection closed for good);
 * what had arrived is handled and committed in that case too. */
sm_status sm_worker_run(sm_worker *w, const sigset_t *stop);

void sm_worker_stats_get(const sm_worker *w, sm_worker_stats *out);

/* Publishes the worker's figures into m (borrowed; must outlive the
 * worker) from the worker thread: at each phase change and each turn of
 * the loop (at most every SM_METRICS_PUBLISH_MS while busy), for the
 * HTTP endpoints (http.h) to read. Call before sm_worker_open. Without
 * it the worker publishes nothing (replay, tools). observe.c. */
void sm_worker_set_metrics(sm_worker *w, sm_metrics *m);

/* The swarm `id` the worker holds, or NULL (borrowed; valid until the next
 * input is handled). */
const sm_swarm *sm_worker_swarm(const sm_worker *w, const char *id);

#endif
