/*
 * worker_int.h - the sm_worker struct, shared by worker.c (lifecycle and
 * loop) and handle.c (one handler per input subject). Not for other
 * modules.
 */
#ifndef SM_WORKER_INT_H
#define SM_WORKER_INT_H

#include "bus.h"
#include "encode.h"
#include "codec.h"
#include "inbox.h"
#include "js.h"
#include "persist.h"
#include "registry.h"
#include "store.h"
#include "worker.h"

struct sm_worker {
    const sm_config *cfg;
    const sm_log *log;
    sm_store *store;
    sm_persist *persist;
    sm_registry *reg;
    sm_codec *codec;
    sm_bus *bus;
    sm_inbox *inbox;
    sm_js *js;                  /* JetStream input (input = jetstream), or
                                   NULL: core NATS (bus.c) */
    bool send_before_commit;    /* JetStream: conclusions go out when
                                   decided, before the commit, and the
                                   output stream drops a re-decided one
                                   by its Nats-Msg-Id (js.h) */
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
    bool in_batch;              /* the loop holds conclusions until the end
                                   of its batch */
    sm_worker_stats st;
};

/* Commits the state (sm_worker_flush), then sends the conclusions held
 * in the outbox, in order (handle.c). The loop calls it at the end of
 * each batch; sm_worker_handle_item calls it itself outside one. */
void sm_worker_release(sm_worker *w);

#endif
