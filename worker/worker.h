/*
 * worker.h - one swarm-medic worker: the struct built in main that carries
 * config, store, bus and state to every handler (no globals).
 *
 * Threading model: one thread owns everything. The worker consumes its
 * input subject through a single synchronous cnats subscription and pulls
 * messages with natsSubscription_NextMsg on the main thread, so the core
 * state, the codec arena and the LMDB write transaction are touched by
 * exactly one thread, in bus order, with no locks. cnats's own threads
 * only read the socket (filling the subscription's pending queue), flush
 * our publishes and run the connection callbacks, which only log.
 *
 * Group commit: handlers change state in memory; the loop commits dirty
 * state to LMDB every commit_events events, after commit_interval of wall
 * time with uncommitted events, and whenever the input goes idle. The write
 * transaction is opened and closed inside sm_worker_flush and never spans
 * a publish. Conclusions are published as soon as they are decided, before
 * the commit: after a crash the events since the last commit are lost from
 * the windows (core NATS is at-most-once), and a re-delivered input that
 * re-derives the same decision yields the same decision id and thus the
 * same Nats-Msg-Id, which JetStream deduplicates.
 *
 * Lifecycle: sm_worker_create, sm_worker_open (store + load),
 * sm_worker_connect (bus + subscribe), sm_worker_run (until a stop signal),
 * sm_worker_destroy (flush, close).
 */
#ifndef SM_WORKER_H
#define SM_WORKER_H

#include <signal.h>
#include <stdint.h>

#include "config.h"
#include "log.h"
#include "status.h"

typedef struct sm_worker sm_worker;

/* Where conclusions and dead letters go: the bus, or (for replay and
 * tests) anything else. headers: NULL-terminated key, value list. */
typedef struct sm_sink {
    sm_status (*publish)(void *ud, const char *subject, const void *data,
                         size_t len, const char *const *headers);
    void *ud;
} sm_sink;

typedef struct sm_worker_stats {
    uint64_t events;            /* inputs accepted */
    uint64_t by_kind[7];        /* indexed by sm_input_kind */
    uint64_t deadletters;       /* inputs rejected and forwarded */
    uint64_t transitions;       /* Bottleneck messages published */
    uint64_t publish_errors;
    uint64_t commits;
    uint64_t commit_failures;
    uint64_t agents_written;
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

/* Handles one input message: parse the subject, decode, update windows,
 * publish conclusions; rejected input goes to the dead-letter subject.
 * Never fails the caller: returns SM_OK if accepted, else why it was
 * dead-lettered. */
sm_status sm_worker_handle(sm_worker *w, const char *subject,
                           const void *data, size_t len);

/* Commits dirty windows to LMDB (group commit), applying retention. */
sm_status sm_worker_flush(sm_worker *w);

/* Consumes until one of `stop` is pending (the caller blocks them in every
 * thread before creating any), then drains the subscription, commits and
 * returns SM_OK. */
sm_status sm_worker_run(sm_worker *w, const sigset_t *stop);

void sm_worker_stats_get(const sm_worker *w, sm_worker_stats *out);

#endif
