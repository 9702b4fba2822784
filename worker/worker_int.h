/*
 * worker_int.h - the sm_worker struct, shared by worker.c (lifecycle and
 * loop), handle.c (one handler per input subject) and observe.c (what an
 * operator sees: metrics, systemd notifications). Not for other modules.
 */
#ifndef SM_WORKER_INT_H
#define SM_WORKER_INT_H

#include "bus.h"
#include "encode.h"
#include "codec.h"
#include "inbox.h"
#include "js.h"
#include "metrics.h"
#include "notify.h"
#include "persist.h"
#include "registry.h"
#include "service.h"
#include "store.h"
#include "worker.h"
#include "writer.h"

struct sm_worker {
    const sm_config *cfg;
    const sm_log *log;
    bool ids_in_payload;        /* cfg->subject_ids is "payload" */
    sm_store *store;
    sm_persist *persist;
    sm_registry *reg;
    sm_codec *codec;
    sm_bus *bus;
    sm_inbox *inbox;
    sm_js *js;                  /* JetStream input (input = jetstream), or
                                   NULL: core NATS (bus.c) */
    bool send_before_commit;    /* JetStream: the outbox is sent at the
                                   end of a batch before the commit, and
                                   the output stream drops a re-decided
                                   conclusion by its Nats-Msg-Id (js.h) */
    sm_service *svc;            /* request/reply endpoints (service.h) */
    sm_sink sink;
    sm_decisions decisions;     /* what the core decided in the current
                                   call; published after it returns */
    uint64_t uncommitted;       /* events since the last commit */
    sm_swarm *touched;          /* the swarm the current input went to */
    sm_bus_state clock;         /* the bus clock (handle.c), stored in the
                                   meta record at each commit */
    int64_t bus_tick;           /* floor(bus_ms / tick) at the last move */
    uint64_t applied;           /* inputs handled since the store began:
                                   the meta record's applied_seq */
    sm_decisions outbox;        /* conclusions waiting for the commit of
                                   the state they reveal (worker.c) */
    bool store_failing;         /* the last commit failed (worker.c) */
    /* the commit thread (writer.h), run loop only: NULL otherwise */
    sm_writer *writer;
    sm_decisions inflight;      /* conclusions held for the batch the
                                   writer has in hand */
    uint64_t inflight_events;   /* events that batch holds */
    sm_persist_result inflight_res; /* what it writes (sm_persist_prepare) */
    uint64_t inflight_total, inflight_applied;  /* events and inputs it
                                                   holds (for the log) */
    double inflight_held_s;     /* the worker thread's time preparing it */
    const char *inflight_how;   /* "commit_thread", or "event_thread" for
                                   a small batch written in place */
    sm_store_stats store_seen;  /* the store's figures when last read:
                                   shown while the writer has the store */
    bool hint_agents;           /* a swarm held SM_PREFETCH_MIN_AGENTS or
                                   more at the last commit: the loop hints
                                   records ahead (worker.c handle_batch) */
    bool in_batch;              /* the loop holds conclusions until the end
                                   of its batch */
    sm_worker_stats st;
    /* operations (observe.c): all touched by the worker thread only */
    sm_metrics *metrics;        /* borrowed; NULL: nothing published */
    sm_phase phase;
    sm_hist handle_latency;     /* per input item, one in
                                   SM_METRICS_HANDLE_SAMPLE (worker.c) */
    uint64_t handle_seq;        /* items popped, for that sampling */
    sm_hist commit_latency;     /* per sm_worker_flush (worker.c) */
    sm_notify notify;           /* systemd readiness and watchdog */
    int64_t published_ms;       /* monotonic ms of the last publish */
};

/* Commits the state (sm_worker_flush), then sends the conclusions held
 * in the outbox, in order (handle.c). The loop calls it at the end of
 * each batch; sm_worker_handle_item calls it itself outside one. */
void sm_worker_release(sm_worker *w);
/* sm_worker_release without the commit thread: commits on the spot,
 * then sends (handle.c). */
void sm_worker_release_now(sm_worker *w);
/* An item the loop will handle soon (handle.c), parsed once: its subject,
 * and the swarm its agent token names (NULL: none) while the registry
 * has removed `removed` swarms. */
typedef struct sm_ahead {
    sm_subject subj;
    sm_status parsed;
    const char *why;            /* parsed != SM_OK: what is wrong */
    const sm_swarm *sw;
    uint64_t removed;
} sm_ahead;
/* Parses item it into *a and hints its agent's index slot into the cache
 * (two items ahead of its handling); sm_worker_ahead_record then hints
 * the agent's record (one ahead: sm_swarm_prefetch_agent). Hints change
 * nothing. */
void sm_worker_ahead(const sm_worker *w, const sm_item *it, sm_ahead *a);
void sm_worker_ahead_record(const sm_worker *w, const sm_ahead *a);
/* sm_worker_handle_item on an item parsed by sm_worker_ahead. */
sm_verdict sm_worker_handle_ahead(sm_worker *w, sm_item *it, const sm_ahead *a);
/* Sends the conclusions in held, in order, and empties it (handle.c). */
void sm_worker_send_held(sm_worker *w, sm_decisions *held);
/* The run loop's commit through the commit thread (worker.c): takes the
 * outcome of the batch in hand if it is written (wait: waits for it) and
 * then, if start and the writer is free, prepares and hands over the
 * next one. Only with a commit thread (w->writer). */
void sm_worker_commit_async(sm_worker *w, bool start, bool wait);

/* Enters phase p: publishes the figures at once, and tells systemd
 * (READY=1 on entering RUNNING, STOPPING=1 on DRAINING). observe.c. */
void sm_worker_phase(sm_worker *w, sm_phase p);
/* One turn of a loop (consume, drain, connect retry): pings the systemd
 * watchdog when due, publishes the figures if SM_METRICS_PUBLISH_MS
 * passed or `now` is true. observe.c. */
void sm_worker_turn(sm_worker *w, bool now);
/* Counts a published conclusion by kind and type (handle.c). observe.c. */
void sm_worker_count_decision(sm_worker_stats *st, const sm_decision *d);

#endif
