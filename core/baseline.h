/*
 * baseline.h - what normal looks like, per task type: the recent
 * durations of each type a swarm runs, and their median.
 *
 * Real swarms mix task types whose durations differ by an order of
 * magnitude (a search of seconds, a code generation of half a minute), so
 * a duration means nothing until it is compared with its own type. A
 * swarm keeps one baseline per type name (TaskEvent.task_type): the last
 * SM_TYPE_SAMPLES completed durations of that type from agents that are
 * not raised (the healthy majority: a slow agent, once flagged, does not
 * drag the baseline it is judged against), and their median over the
 * baseline horizon.
 *
 * Up to SM_TASK_TYPES names; slot 0 holds tasks without a type and, once
 * the table is full, every further name (so an unbounded set of names
 * costs nothing but precision). Plain data, copied into the swarm blob by
 * encode.c. Internal to core/.
 */
#ifndef SM_BASELINE_H
#define SM_BASELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "event.h"
#include "window.h"

#define SM_TASK_TYPES 16
#define SM_TYPE_SAMPLES 64
#define SM_TYPE_REFRESH 16      /* new samples before the median is redone */
#define SM_TYPE_NONE 0xffu      /* no slot (an agent with no started task) */

typedef struct sm_type_baseline {
    char name[SM_ID_MAX];
    uint32_t used;              /* slot taken */
    uint32_t len;               /* strlen(name), and */
    uint64_t head;              /* its first 8 bytes, zero-padded: compared
                                   before the rest of the name; not
                                   persisted (sm_baselines_rehash) */
    uint32_t fresh;             /* samples since the last median */
    double median;              /* ms, over the horizon; 0: none */
    uint32_t median_n;          /* samples behind it */
    uint32_t reserved;
    sm_samples hdr;
    sm_sample dur[SM_TYPE_SAMPLES];
} sm_type_baseline;

typedef struct sm_baselines {
    sm_type_baseline t[SM_TASK_TYPES];
} sm_baselines;

void sm_baselines_init(sm_baselines *b);
/* The slot of type `name` (vetted id, "" allowed), taken if new. */
uint32_t sm_baselines_slot(sm_baselines *b, const char *name);
/* Adds a completed duration of the type in `slot`. */
void sm_baselines_push(sm_baselines *b, uint32_t slot, int64_t ts_ms,
                       uint32_t duration_ms);
/* Redoes every type's median over ts >= since_ms (a tick: old samples
 * age out). scratch holds SM_TYPE_SAMPLES doubles. */
void sm_baselines_refresh(sm_baselines *b, int64_t since_ms, double *scratch);
/* Redoes one type's median when due (called after each push): after
 * SM_TYPE_REFRESH new samples, or at each new one while fewer than min_n
 * stand behind it. */
void sm_baselines_refresh_slot(sm_baselines *b, uint32_t slot,
                               int64_t since_ms, uint32_t min_n,
                               double *scratch);
/* The type's median duration if at least min_n samples stand behind it,
 * else 0. */
double sm_baselines_median(const sm_baselines *b, uint32_t slot,
                           uint32_t min_n);
/* Recomputes every slot's name key (len, head) after an import. */
void sm_baselines_rehash(sm_baselines *b);
/* Whether the baselines hold only valid slots (for import). */
bool sm_baselines_valid(const sm_baselines *b);

#endif
