/*
 * replay.h - recorded streams through the same pipeline.
 *
 * Offline replay feeds each record of a recording (recfile.h) to
 * sm_worker_handle, in file order, with no bus: the worker's sink collects
 * the conclusions instead of publishing them. Decisions read only the
 * events' own timestamps, so two replays of one recording give the same
 * conclusions, byte for byte. By default no LMDB is opened (the windows
 * live in memory for the run); opts.store_dir replays with persistence.
 *
 * Outputs, each optional:
 *   - a recording of the conclusions (same format as the input; recv_ms of
 *     each output is the recv_ms of the input that caused it);
 *   - JSON lines, one per conclusion: {"subject":..., "headers":{...},
 *     "message":{...}} where message is the Bottleneck rendered by
 *     pbjson.h from the protobuf-c descriptors; a dead letter has
 *     "payload_bytes" instead of "message".
 *
 * Replay onto a bus publishes the records (subject, headers, payload) to
 * a NATS server at the recorded pace, a multiple of it, or flat out.
 *
 * A recording that breaks part-way (truncated, CRC) is replayed up to the
 * break; the run then returns SM_ERR_CORRUPT and stats.error names the
 * record and byte offset.
 */
#ifndef SM_REPLAY_H
#define SM_REPLAY_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "log.h"
#include "status.h"

typedef struct sm_replay_stats {
    uint64_t records;           /* records read */
    uint64_t accepted;          /* inputs accepted by the worker */
    uint64_t deadletters;
    uint64_t outputs;           /* conclusions written or handed out */
    int64_t first_recv_ms;
    int64_t last_recv_ms;
    int64_t wall_ns;            /* time spent replaying (for rates) */
    char error[256];            /* why the run stopped early, "" if it did not */
} sm_replay_stats;

/* One conclusion handed to a caller (backtest, tests). Views valid only
 * during the call. */
typedef void (*sm_replay_output_fn)(void *ud, int64_t recv_ms,
                                    const char *subject,
                                    const char *const *headers,
                                    const void *data, size_t len);

typedef struct sm_replay_opts {
    const char *out_rec;        /* recording of conclusions, or NULL */
    FILE *out_json;             /* JSON lines, or NULL */
    sm_replay_output_fn fn;     /* also hand each conclusion here, or NULL */
    void *ud;
    const char *store_dir;      /* replay with LMDB persistence, or NULL */
} sm_replay_opts;

/* Replays `path` offline. *st is always filled. Errors: SM_ERR_IO,
 * SM_ERR_CORRUPT, SM_ERR_INVALID (unreadable recording: st->error says
 * why), SM_ERR_NOMEM, store errors when opts->store_dir is set. */
sm_status sm_replay_offline(const sm_config *cfg, const sm_log *log,
                            const char *path, const sm_replay_opts *opts,
                            sm_replay_stats *st);

/* Publishes the records of `path` to cfg's NATS server. speed: 0 = as fast
 * as possible; 1 = recorded pace; k = k times faster (> 0). Stops early
 * when a signal in `stop` is pending, also in the middle of a gap between
 * receive times (it sleeps in slices of 50 ms); receive times are
 * compared in saturating arithmetic, so any file's are safe (a record
 * received before the first is due at once). */
sm_status sm_replay_to_bus(const sm_config *cfg, const sm_log *log,
                           const char *path, double speed,
                           const sigset_t *stop, sm_replay_stats *st);

#endif
