/*
 * metrics.h - what the worker shows an operator: a snapshot of its
 * counters, gauges and latency histograms, the health and readiness rules
 * judged from it, and its Prometheus text exposition (format 0.0.4).
 *
 * Threading: the worker thread owns every figure and, now and then (each
 * turn of its loop, at most every SM_METRICS_PUBLISH_MS while busy),
 * copies them into an sm_metrics_snap and publishes it
 * (sm_metrics_publish: one memcpy under a mutex). The HTTP thread (http.h)
 * reads a copy (sm_metrics_read, the same mutex) and renders it without
 * any lock held. Neither thread ever waits on the other for longer than a
 * copy of the struct, so a scrape never stalls the handling of events,
 * and the HTTP thread never touches core state.
 *
 * Histograms (sm_hist) are plain values: the worker thread observes into
 * its own, then copies them into the snapshot. Buckets are fixed, in
 * seconds, chosen for the figure they measure (sm_hist_init).
 *
 * Hooks for the JetStream mode (worker/js*): consumer_lag and
 * partitions_owned are -1 until a JetStream source fills them in the
 * snapshot (sm_worker_observe, observe.c); at -1 they are not exposed.
 */
#ifndef SM_METRICS_H
#define SM_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decision.h"
#include "status.h"

/* Indexes of tables by sm_status / sm_input_kind / sm_decision_kind. */
#define SM_METRICS_STATUSES (SM_ERR_VERSION + 1)
#define SM_METRICS_KINDS 7          /* sm_input_kind, [0] unused */
#define SM_METRICS_DEC_KINDS 6      /* sm_decision_kind, [0] unused */
#define SM_METRICS_DEC_TYPES (SM_FAIL_MAX + 1)  /* by sm_bn_type, sm_fail_type
                                   (failures, predictions), sm_heal_action
                                   (commands), sm_verdict_kind (verdicts) */

/* How often a busy worker publishes its snapshot, at most (wall ms). */
#define SM_METRICS_PUBLISH_MS 100
/* The handling histogram times one input item in this many (the first,
 * then every 32nd): a clock read costs about 20 ns on a bare machine, 74 ns
 * on the shared virtual one we test on, against about 1.2 us for handling
 * an item. */
#define SM_METRICS_HANDLE_SAMPLE 32
/* A loop that has not turned for this long is not healthy (wall ms). */
#define SM_METRICS_STALL_MS 30000

#define SM_HIST_MAX 16

/* A latency histogram: bucket[i] counts observations <= le[i] (and above
 * le[i - 1]); bucket[n] those above le[n - 1] (+Inf). */
typedef struct sm_hist {
    size_t n;
    double le[SM_HIST_MAX];     /* upper bounds, seconds, ascending */
    uint64_t bucket[SM_HIST_MAX + 1];
    uint64_t count;
    double sum;                 /* seconds */
} sm_hist;

typedef enum sm_hist_kind {
    SM_HIST_HANDLE = 0,         /* handling one input: 1 us .. 100 ms
                                   (sampled, SM_METRICS_HANDLE_SAMPLE) */
    SM_HIST_COMMIT,             /* one LMDB commit: 100 us .. 10 s */
} sm_hist_kind;

/* Empties h and sets the buckets of kind. */
void sm_hist_init(sm_hist *h, sm_hist_kind kind);
/* Counts one observation of `seconds`. */
void sm_hist_observe(sm_hist *h, double seconds);

/* Where the worker is in its life. */
typedef enum sm_phase {
    SM_PHASE_STARTING = 0,      /* opening the store */
    SM_PHASE_CONNECTING,        /* connecting and subscribing */
    SM_PHASE_RUNNING,           /* consuming */
    SM_PHASE_DRAINING,          /* stop asked: handling what arrived */
    SM_PHASE_STOPPED,
} sm_phase;

const char *sm_phase_str(sm_phase p);

typedef struct sm_metrics_snap {
    sm_phase phase;
    int64_t turn_ms;            /* monotonic ms of the loop's last turn
                                   (sm_metrics_now_ms) */
    bool bus_connected;
    bool store_open;
    uint64_t events_by_kind[SM_METRICS_KINDS];
    uint64_t deadletters_by_status[SM_METRICS_STATUSES];
    uint64_t internal_errors;
    uint64_t skew_rejected, swarm_cap_rejected, agent_cap_rejected;
    uint64_t decisions[SM_METRICS_DEC_KINDS][SM_METRICS_DEC_TYPES];
    uint64_t publish_errors;
    uint64_t not_durable;
    uint64_t commits, commit_failures, commit_redone;
    uint64_t reconnects;
    uint64_t inbox_full_waits;
    int64_t bus_dropped;        /* -1 unknown */
    size_t inbox_depth;         /* items waiting for the worker */
    size_t outbox_depth;        /* conclusions waiting for a commit */
    uint64_t uncommitted;       /* events since the last commit */
    size_t swarms, agents;
    uint64_t swarms_expired;
    size_t store_used_bytes, store_map_bytes, store_entries;
    int64_t bus_ms;             /* the bus clock (event time) */
    uint64_t applied;
    sm_hist handle_latency;
    sm_hist commit_latency;
    int64_t consumer_lag;       /* JetStream: messages not yet delivered
                                   to us, -1 when not in JetStream mode */
    int64_t partitions_owned;   /* partitions whose lease we hold, -1
                                   when not partitioned */
} sm_metrics_snap;

/* Zeroes *s with hooks at -1 and the histograms' buckets set. */
void sm_metrics_snap_init(sm_metrics_snap *s);

typedef struct sm_metrics sm_metrics;

/* Creates the exchange (holding an initial snapshot: STARTING). Sets *out
 * only on SM_OK. */
sm_status sm_metrics_create(sm_metrics **out);
/* NULL is a no-op. No thread may be inside publish or read. */
void sm_metrics_destroy(sm_metrics *m);

/* Replaces the published snapshot with a copy of *s. Any thread. */
void sm_metrics_publish(sm_metrics *m, const sm_metrics_snap *s);
/* Copies the published snapshot into *out. Any thread. */
void sm_metrics_read(sm_metrics *m, sm_metrics_snap *out);

/* Monotonic clock in ms, the base of turn_ms. */
int64_t sm_metrics_now_ms(void);

/* Healthy: the process is alive and its loop turning (a loop that has
 * not turned for SM_METRICS_STALL_MS while running or draining is not).
 * *why: a static sentence either way. */
bool sm_metrics_healthy(const sm_metrics_snap *s, int64_t now_ms,
                        const char **why);
/* Ready: running, connected to NATS, store open (not draining). */
bool sm_metrics_ready(const sm_metrics_snap *s, const char **why);

/* Renders s as Prometheus text exposition 0.0.4 into a malloc'd,
 * NUL-terminated buffer (*out, length *len); the caller frees it.
 * Errors: SM_ERR_NOMEM. */
sm_status sm_metrics_render(const sm_metrics_snap *s, char **out, size_t *len);

#endif
