/*
 * service_store.h - what the request/reply services keep in LMDB beside
 * the core's state: per-minute task aggregates (for `report` and the
 * periodic PerformanceReport) and the decision log (for `explain`).
 *
 * Keys (persist.h lists them with the core's):
 *   "r" 0 <swarm> 0 <minute, 8 bytes big-endian> <task type>
 *        -> an sm_perf_row (core/report.h byte layout): the finished tasks
 *           of that swarm, type and minute of event time
 *   "x" 0 <decision id, 8 bytes big-endian>
 *        -> u8 version (1), then a DecisionRecord (protobuf)
 *   "y" 0 <at_ms, 8 bytes big-endian> <decision id, 8 bytes big-endian>
 *        -> empty: the log in time order, for retention
 *
 * Writes ride on the state's group commit (sm_persist_set_extra): rows
 * and decisions changed since the last commit are put in the same batch,
 * and kept in memory until a batch that holds them commits. Retention is
 * bounded: aggregate rows older than perf_retention (event time, behind
 * the swarm's newest minute) and decisions beyond decision_log_max or
 * older than decision_log_age (behind the newest decision) are deleted by
 * a pass run before a commit, at most once per retention_every commits.
 *
 * Aggregates live in memory only while a minute is open (rows touched
 * since the last commit, and the swarm's newest minute); a late event for
 * a minute no longer in memory reads that row back from the store first,
 * so stored rows are always whole.
 *
 * Thread safety: none; the worker's thread only.
 */
#ifndef SM_SERVICE_STORE_H
#define SM_SERVICE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decision.h"
#include "event.h"
#include "report.h"
#include "status.h"
#include "store.h"

#define SM_MINUTE_MS 60000
#define SM_SVCSTORE_TYPES 32    /* task types a report tells apart; more
                                   are folded into "~other" */

typedef struct sm_svcstore sm_svcstore;

typedef struct sm_svcstore_config {
    int64_t perf_retention_ms;  /* aggregate rows kept, 24 h */
    int64_t decision_log_max;   /* decisions kept, 100000 */
    int64_t decision_log_age_ms;    /* and for at most, 7 days */
} sm_svcstore_config;

/* st may be NULL (no store: aggregates live in memory only while open,
 * nothing is logged). Sets *out only on SM_OK. */
sm_status sm_svcstore_create(sm_svcstore **out, sm_store *st,
                             const sm_svcstore_config *cfg);
void sm_svcstore_destroy(sm_svcstore *ss);

/* Counts the stored decision log (for retention). Must not be called
 * with a batch open. */
sm_status sm_svcstore_load(sm_svcstore *ss);

/* Adds one finished task (completed, failed, timed out) of swarm to its
 * minute's row. Other kinds are ignored. Errors: SM_ERR_NOMEM; store
 * errors reading a late minute back. */
sm_status sm_svcstore_on_task(sm_svcstore *ss, const char *swarm,
                              const sm_task_event *ev);

/* Queues the decision log records of decisions (encoded now), for the
 * next commit. Errors: SM_ERR_NOMEM, SM_ERR_FULL (65,536 already wait:
 * the store keeps failing); the ones not queued are counted in
 * sm_svcstore_stats.log_lost. */
sm_status sm_svcstore_log(sm_svcstore *ss, const sm_decision *d, size_t n);

/* Runs the retention pass when due (before a commit; no batch open). */
void sm_svcstore_before_commit(sm_svcstore *ss);

/* The persist extra writer (persist.h): write puts what is pending;
 * done clears it when committed. ud is the sm_svcstore. */
sm_status sm_svcstore_write(void *ud, sm_store *st);
void sm_svcstore_done(void *ud, bool committed);

/* The decision log record of id: *buf points to the protobuf
 * DecisionRecord (owned by ss, valid until the next call). Looks at the
 * pending records first, then the store. Errors: SM_ERR_NOT_FOUND,
 * store errors. */
sm_status sm_svcstore_explain(sm_svcstore *ss, uint64_t id,
                              const uint8_t **buf, size_t *len);

/* One segment of a report, in time order. */
typedef struct sm_report_point {
    int64_t start_ms;
    uint64_t count, ok, sum_ms;
} sm_report_point;

#define SM_REPORT_POINTS 12

typedef struct sm_report_type {
    char name[SM_ID_MAX];
    sm_perf_row all;
    sm_report_point pts[SM_REPORT_POINTS];
} sm_report_type;

typedef struct sm_report {
    int64_t start_ms, end_ms;   /* whole minutes: [start, end) */
    size_t n_points;            /* segments used, <= SM_REPORT_POINTS */
    sm_perf_row all;
    sm_report_point pts[SM_REPORT_POINTS];
    size_t n_types;
    sm_report_type types[SM_SVCSTORE_TYPES];
} sm_report;

/* The aggregates of swarm over [start_ms, end_ms) (rounded out to whole
 * minutes), only type `type` if not NULL, cut into up to
 * SM_REPORT_POINTS segments of whole minutes. Errors: SM_ERR_INVALID
 * (end <= start), store errors. */
sm_status sm_svcstore_report(sm_svcstore *ss, const char *swarm,
                             int64_t start_ms, int64_t end_ms,
                             const char *type, sm_report *out);

typedef struct sm_svcstore_stats {
    uint64_t rows_written, rows_expired, late_loaded, too_old;
    uint64_t logged, log_lost, log_expired;
    uint64_t log_count;         /* decisions in the stored log */
} sm_svcstore_stats;
void sm_svcstore_stats_get(const sm_svcstore *ss, sm_svcstore_stats *out);

#endif
