/*
 * report.h - performance over a time range (SPEC capability 6): per-minute
 * aggregates of finished tasks, merged into a report with mean, p50, p95,
 * p99 duration, tokens per task, success rate and trends read in time
 * order.
 *
 * An sm_perf_row aggregates the tasks of one swarm, one task type and one
 * minute of event time: counts, sums and a fixed log-bucket histogram of
 * durations (8 linear buckets per octave, HDR style: a duration d >= 8 ms
 * with top bit e falls in bucket 8e + the next 3 bits; below 8 ms, one
 * bucket per ms). A percentile is read as the middle of its bucket, so its
 * relative error is at most SM_PERF_ERROR (1/16, 6.25%); below 8 ms it is
 * exact. Rows merge by addition, so a report over any range is exact up to
 * that bound, whatever the number of tasks.
 *
 * Rows are persisted by the worker (explicit byte layout below, version
 * byte first); the core never does I/O. Nothing here allocates.
 * Thread safety: none; plain data.
 */
#ifndef SM_REPORT_H
#define SM_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define SM_PERF_BUCKETS 256
#define SM_PERF_ERROR 0.0625
#define SM_PERF_ROW_VERSION 1
/* Largest encoded row: header plus every bucket. */
#define SM_PERF_ROW_MAX (1 + 5 * 10 + 2 + SM_PERF_BUCKETS * (1 + 5))

typedef struct sm_perf_row {
    uint64_t count;         /* finished tasks: completed, failed, timed out */
    uint64_t ok;            /* completed */
    uint64_t sum_ms;        /* their durations */
    uint64_t tokens;        /* their tokens_used */
    uint32_t hist[SM_PERF_BUCKETS];
} sm_perf_row;

/* Bucket of a duration, and the middle of a bucket (ms). */
unsigned sm_perf_bucket(uint32_t duration_ms);
double sm_perf_bucket_mid(unsigned b);

/* Adds one finished task. */
void sm_perf_add(sm_perf_row *r, uint32_t duration_ms, bool ok,
                 uint64_t tokens);
/* dst += src. */
void sm_perf_merge(sm_perf_row *dst, const sm_perf_row *src);
/* The q-quantile (0 < q <= 1) of the durations: the middle of the bucket
 * holding the ceil(q x count)-th smallest; 0 when empty. */
double sm_perf_quantile(const sm_perf_row *r, double q);

/* Byte layout, little-endian varints (LEB128):
 *   u8 version (1), varint count, ok, sum_ms, tokens, varint nonzero
 *   buckets, then per nonzero bucket: u8 index, varint count.
 * encode returns the length written (at most SM_PERF_ROW_MAX; 0 if cap is
 * too small). decode: SM_ERR_VERSION (newer), SM_ERR_CORRUPT. */
size_t sm_perf_encode(const sm_perf_row *r, uint8_t *buf, size_t cap);
sm_status sm_perf_decode(sm_perf_row *r, const uint8_t *buf, size_t len);

typedef enum sm_trend_dir {
    SM_TREND_NONE = 0,          /* too few points to say */
    SM_TREND_IMPROVING = 1,     /* values mirror PerformanceReport.Trend */
    SM_TREND_STABLE = 2,
    SM_TREND_DEGRADING = 3,
} sm_trend_dir;

#define SM_TREND_MIN_POINTS 3
#define SM_TREND_REL 0.10       /* duration: change of 10% over the range */
#define SM_TREND_ABS 0.05       /* success rate: change of 5 points */

/* The trend of y over x (time order, oldest first), weighted by w (task
 * counts; points with w == 0 are ignored): the weighted least-squares
 * slope times the span of x is the change over the range. For a duration
 * (lower_better) a change over +SM_TREND_REL of the mean degrades, under
 * -SM_TREND_REL improves; for a rate the change is compared with
 * SM_TREND_ABS, up improves. SM_TREND_NONE with fewer than
 * SM_TREND_MIN_POINTS points. */
sm_trend_dir sm_perf_trend(const double *x, const double *y, const double *w,
                           size_t n, bool lower_better);

#endif
