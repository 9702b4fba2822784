/*
 * worker_int.h - the sm_worker struct, shared by worker.c (lifecycle and
 * loop) and handle.c (one handler per input subject). Not for other
 * modules.
 */
#ifndef SM_WORKER_INT_H
#define SM_WORKER_INT_H

#include "bus.h"
#include "codec.h"
#include "inbox.h"
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
    sm_sink sink;
    sm_decisions decisions;     /* what the core decided in the current
                                   call; published after it returns */
    uint64_t uncommitted;       /* events since the last commit */
    sm_swarm *touched;          /* the swarm the current input went to */
    int64_t bus_ms;             /* the bus clock (handle.c); 0: none yet */
    int64_t bus_tick;           /* floor(bus_ms / tick) at the last move */
    int64_t jump_ms;            /* a far-ahead time waiting to be confirmed */
    const sm_swarm *jump_by;    /* the swarm that showed it */
    int64_t expired_at_ms;      /* bus time of the last look for idle
                                   swarms (handle.c) */
    int64_t skew_ms;            /* an event time over max_skew ahead of the
                                   bus, waiting for a second producer to
                                   confirm it (handle.c); 0: none */
    char skew_swarm[SM_ID_MAX]; /* the producer that showed it: swarm and */
    char skew_id[SM_ID_MAX];    /* subject id (agent, source, group) */
    sm_worker_stats st;
};

#endif
