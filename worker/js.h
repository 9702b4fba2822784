/*
 * js.h - JetStream input and output: a durable pull consumer on the input
 * stream as a source of the worker's inbox, acknowledged only after the
 * LMDB commit that holds each event's effect, and conclusions published
 * into an output stream that drops duplicates by Nats-Msg-Id. Every
 * JetStream call of the worker lives in js.c (beside bus.c, whose
 * connection it uses).
 *
 * Exactly-once effects, how:
 *
 *  - Input. A fetch thread per consumer pulls batches
 *    (natsSubscription_Fetch) and pushes each message into the inbox as
 *    an sm_item carrying its stream sequence. The worker thread handles
 *    items in order. Settling an item (accepted or dead-lettered) only
 *    records it as applied in memory (the consumer's cursor); at each
 *    group commit the worker stores the cursor in the same LMDB
 *    transaction as the state (sm_js_before_commit, persist.h cursors),
 *    and after the commit acknowledges the highest applied message (the
 *    consumer's ack policy is "all", so one ack covers the commit).
 *    An item whose stream sequence is at or below the cursor is a
 *    redelivery of what the state already holds: it is acknowledged and
 *    not handled again (sm_item_seen).
 *
 *  - Order. A cursor can only skip redeliveries if nothing after a
 *    message was applied before it. The consumer reads the whole input
 *    stream, so stream sequences are contiguous: the fetch thread knows
 *    the next sequence owed, pushes messages in that order, and holds one
 *    that comes early (a delivery before it was lost on the way, or went
 *    to the pull request of a worker that died: the server redelivers it
 *    only after ack_wait, behind newer ones) until the owed ones are
 *    redelivered; a sequence gone from the stream (deleted, expired) is
 *    stepped over. At start, if the consumer delivered beyond the stored
 *    cursor to somebody who never acknowledged, the first fetch waits
 *    one ack_wait, so those come back first. A consumer whose
 *    acknowledged floor is beyond the store (a new or older store: a
 *    restore, another host) is recreated at the store's cursor, so the
 *    windows are rebuilt from the retained stream.
 *
 *  - Output. Conclusions are published (js_PublishMsg, waiting for the
 *    stream's acknowledgement) at the end of the batch that decided them,
 *    BEFORE the commit of the state that produced them (the worker's
 *    outbox, sm_worker_release), with their decision id as
 *    Nats-Msg-Id. A worker killed before the commit re-derives them from
 *    the redelivered input with the same ids, and the output stream
 *    (duplicate window js_dup_window) drops them. Dead letters of a
 *    JetStream input get the id "dl.<cursor>.<stream sequence>" (the
 *    consumer's name, or <js_stream>_P<k> for a partition).
 *    Subscribers that must never see a repeat consume the output stream;
 *    a plain core subscription on medic.> sees every publish.
 *
 *  - Poison. A message delivered js_max_deliver times or more (the
 *    server's count: each crash while it was in flight counts) and not
 *    yet applied is dead-lettered with the reason, unhandled.
 *
 * Streams: the input stream on input_subject (partitions: one stream per
 * partition, below) and the output stream on
 * <output_prefix>.> are created at start when absent (js_setup true) or
 * only checked (false: left to the deploy configs). A stream that exists
 * with subjects that do not cover ours, another retention than limits, or
 * (output) no duplicate window is a configuration error with a sentence.
 * The consumer is the worker's own: created, and recreated when its
 * configuration is not ours.
 *
 * Threads: sm_js_open/close, sm_js_poll, sm_js_hand_back and the commit
 * hooks run on the worker thread; one fetch thread per consumer pushes
 * into the inbox; with partitions a lease thread does every KV round trip
 * and tells the worker thread what it took or lost through one atomic
 * state per partition; publishing is safe from the worker thread only
 * (it uses the current item).
 */
#ifndef SM_JS_H
#define SM_JS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "config.h"
#include "inbox.h"
#include "log.h"
#include "persist.h"
#include "status.h"

typedef struct sm_js sm_js;

/* Checks or creates the streams, creates or checks the consumer
 * cfg->js_consumer filtered on cfg->input_subject positioned after the
 * cursor p holds for it, binds a pull subscription, and starts its fetch
 * thread as a source of ib. b, cfg, log, p and ib are borrowed and must
 * outlive the sm_js. Errors: SM_ERR_CONFIG (a stream that does not match,
 * or is missing while js_setup is false: err says which and why),
 * SM_ERR_BUS (JetStream not enabled or not answering), SM_ERR_NOMEM. */
sm_status sm_js_open(sm_js **out, sm_bus *b, const sm_config *cfg,
                     const sm_log *log, sm_persist *p, sm_inbox *ib,
                     char *err, size_t errcap);
/* Stops fetching (the fetch threads end, their sources report done to the
 * inbox within about half a second). Messages fetched and not yet pushed
 * are left unacknowledged (the server redelivers them). */
void sm_js_drain(sm_js *js);
/* Stops, joins, frees. NULL is a no-op. */
void sm_js_close(sm_js *js);

/* Before a commit (when it is prepared): stores each consumer's applied
 * stream sequence in p (written in the commit's batch) and notes the
 * message the commit will acknowledge, so that what is applied while the
 * commit is being written is acknowledged only by a later one. */
void sm_js_before_commit(sm_js *js, sm_persist *p);
/* After a commit that wrote them: acknowledges what it made durable. */
void sm_js_committed(sm_js *js);

/* A sink (worker.h sm_sink) publishing into the output stream and
 * waiting for its acknowledgement, retrying while the server is away (up
 * to ack_wait). ud is the sm_js. Errors: SM_ERR_BUS, SM_ERR_TIMEOUT. */
sm_status sm_js_publish(void *ud, const char *subject, const void *data,
                        size_t len, const char *const *headers);

/* The sink's max_payload: the server's (bus.h). ud is the sm_js. */
int64_t sm_js_max_payload(void *ud);

/* The partition of a swarm among n (n >= 1): FNV-1a (32-bit) of the
 * swarm id modulo n, as nats-server's partition(n, 1) subject mapping
 * computes it for swarm.<swarm>.<kind>.<id> (deploy/: "swarm.*.*.*" to
 * "part.{{partition(n,1)}}.swarm.{{wildcard(1)}}.{{wildcard(2)}}.
 * {{wildcard(3)}}"), so a worker knows which partition a swarm's events
 * are in. check_jetstream holds it to a real server's mapping. */
uint32_t sm_js_partition(const char *swarm, uint32_t n);

/* ---- partitions (config partitions > 0) ----
 * Swarms are spread over N partition streams <js_stream>_P<k> on
 * part.<k>.> (the server maps swarm.<s>.> there with partition(N,1)),
 * each owned by one worker at a time through a lease: key p<k> of the
 * KV bucket lease_bucket, value "<worker_id> <seq>". A lease thread
 * renews what it holds every lease_ttl/3 (kvStore_Update with the last
 * revision: a failed one means another wrote the key, and the partition
 * stops at once); takes a partition whose key is absent, handed back
 * ("- <seq>") or unchanged for lease_ttl as it observed it (its holder
 * is gone: no clocks compared across hosts); and keeps a share of
 * ceil(N / live members), members being keys w.<id> renewed the same
 * way. <seq> is the committed stream sequence of the partition: the
 * next owner publishes no conclusion it re-decides up to it (the old
 * owner did). The worker thread starts and stops the partition sources
 * in sm_js_poll; each is a durable consumer of this worker's alone
 * (<js_consumer>_<worker_id>_P<k>, removed by the server when idle)
 * starting after the store's cursor <js_stream>_P<k>, so a takeover
 * rebuilds the windows from the retained stream. */

/* Worker thread, each turn of the loop: starts sources for partitions
 * just taken, stops those lost or being handed back (and says when a
 * hand-back is committed). No-op when not partitioned. */
void sm_js_poll(sm_js *js);
/* Worker thread, after the final commit of a drain: hands every lease
 * back at once ("- <seq>"), so others take them without waiting for
 * lease_ttl, and leaves the members. */
void sm_js_hand_back(sm_js *js);
/* Whether the swarm's partition is ours (true when not partitioned).
 * Any thread (atomics only). */
bool sm_js_owns(const sm_js *js, const char *swarm);
/* A partition's bus clock (handle.c): the latest event time of its
 * stream, stored beside its cursor (<js_stream>_P<k>_clock). Each
 * partition is totally ordered only within itself, so its swarms are
 * advanced by its own clock: a partition that lags behind another (its
 * fetch thread slower, or rebuilding after a takeover) never sees its
 * agents as silent because another partition's events are ahead, and a
 * replay on another worker decides exactly what its owner decided. */
typedef struct sm_js_clock {
    int64_t bus_ms;             /* latest event time of the partition */
    int64_t tick;               /* bus_ms / tick at the last advance */
    uint32_t part;
} sm_js_clock;
/* The clock of the swarm's partition, or NULL when not partitioned.
 * Worker thread. */
sm_js_clock *sm_js_clock_of(sm_js *js, const char *swarm);
/* Whether the item being handled (worker thread) is one the previous
 * owner of its partition applied and whose conclusions it published: at
 * or below the floor its lease carried. Counted (replay_suppressed) each
 * time it says true: the caller drops what the item decided. The output
 * stream's duplicate window alone would drop only the recent ones. */
bool sm_js_replayed(sm_js *js);
/* Partitions owned, -1 when not partitioned. */
int64_t sm_js_owned(const sm_js *js);
/* The balance rule: the share of n partitions a worker holds among
 * `members` live ones, ceil(n / members) (n when members is 0). */
uint32_t sm_js_lease_target(uint32_t n, uint32_t members);
/* Parses a lease value "<owner> <seq>" (len bytes, not terminated):
 * false when it is not one. */
bool sm_js_lease_parse(const char *value, size_t len, char *owner, size_t cap,
                       uint64_t *seq);

typedef struct sm_js_stats {
    uint64_t fetched;           /* messages pushed into the inbox */
    uint64_t redelivered_seen;  /* redeliveries skipped (state held them) */
    uint64_t poison;            /* dead-lettered after js_max_deliver */
    uint64_t gaps;              /* lost deliveries detected (then waited) */
    uint64_t acks;              /* acknowledgements sent (one a commit) */
    uint64_t dup_dropped;       /* conclusions the output stream dropped as
                                   duplicates (re-decided after a restart) */
    uint64_t applied_seq;       /* stream sequence applied, summed over
                                   consumers */
    int64_t pending;            /* consumer lag: messages of the stream not
                                   yet delivered to us, as the last
                                   delivery said (NumPending; 0 before) */
    /* partitions (0, and -1 owned, when not partitioned) */
    int64_t partitions_owned;   /* partitions whose items we handle */
    uint64_t leases_taken;      /* leases we took (any reason) */
    uint64_t leases_lost;       /* leases another took from us, or not
                                   renewed in time */
    uint64_t leases_handed_back;/* given back (a drain, a rebalance) */
    uint64_t takeovers;         /* leases taken from a holder gone silent */
    uint64_t not_owned_skipped; /* items of a lost partition not handled */
    uint64_t not_owned_dropped; /* conclusions of a lost partition's swarm
                                   not published */
    uint64_t replay_suppressed; /* conclusions re-decided while rebuilding
                                   a taken partition's windows, up to the
                                   previous owner's floor: not published */
} sm_js_stats;
/* Counters (worker thread). */
void sm_js_stats_get(const sm_js *js, sm_js_stats *out);

/* Messages of the consumer's filter not yet delivered plus delivered and
 * not acknowledged, asked of the server (a round trip: not for the
 * worker thread's hot path; sm_js_stats.pending is free). -1 if unknown. */
int64_t sm_js_lag(sm_js *js);

#endif
