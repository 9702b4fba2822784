/*
 * agents.h - a swarm's agent table: one small record per agent, found by
 * id in O(1), with the two lists the detectors and the store need.
 *
 * Records are dense (an array, n used) behind an open-addressing index
 * (linear probing, FNV-1a of the id, doubled when the load would pass
 * 0.5; removal by backward shift, no tombstones). A slot carries the id's
 * hash next to the record index, so a probe compares hashes without
 * touching the (large, cold) records.
 *
 * Two intrusive lists ride on the records:
 *  - the raised list: agents with a raised slow-agent episode, kept in
 *    (raised_at, id) order so the tick sweep visits them in an order that
 *    does not depend on how the table was filled (a replay and an import
 *    give the same order);
 *  - the dirty list: agents changed since the last commit, so a commit
 *    costs O(changed agents), not O(agents).
 *
 * The store keeps agents in pages of SM_AGENT_PAGE consecutive records
 * (page p: records p * SM_AGENT_PAGE ..), so a commit writes one value
 * per page with a dirty agent, not one per agent. A removal changes two
 * pages (the hole the last record moves into, and the last page): it
 * marks an agent of each dirty, and sets `shrunk` (the last page may be
 * gone) until the next clean.
 *
 * Allocation: only sm_agents_init() and growth when a new agent does not
 * fit (doubling). Record indexes are stable until sm_agents_remove() (the
 * last record moves into the hole) or a growth (pointers, not indexes,
 * move). Internal to core/.
 */
#ifndef SM_AGENTS_H
#define SM_AGENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "status.h"
#include "thresholds.h"
#include "window.h"

#define SM_AGENT_NONE UINT32_MAX

#define AGENT_REGISTERED 1u
#define AGENT_UNREGISTERED 2u
#define AGENT_DYNAMIC 4u

/* sm_agent_state.fail bits (failures.c) */
#define FAIL_DOWN 1u            /* agent_down raised */
#define FAIL_STUCK 2u           /* agent_stuck raised */
#define FAIL_TIMEOUT 4u         /* task_timeout raised */
#define FAIL_STOPPING 8u        /* its last heartbeat said STOPPING */
#define FAIL_PROGRESS 16u       /* it has reported a progress counter */
#define FAIL_WATCH 32u          /* beating since it (re)registered */
#define FAIL_BITS 63u

#define SM_WAKE_NEVER INT64_MAX

/* What is persisted of an agent (encode.c gives the byte layout). */
typedef struct sm_agent_state {
    char id[SM_ID_MAX];
    int64_t last_seen_ms;
    int64_t raised_at_ms;
    int64_t clear_since_ms;     /* clear condition holds since; 0: not */
    double impact;
    double fail_llr;            /* failure evidence: a CUSUM of the log
                                   likelihood ratio, failing vs healthy */
    double slow_llr;            /* slowness evidence: a CUSUM of the log
                                   likelihood ratio, slow vs tolerable */
    sm_samples tasks_hdr;
    uint8_t raised;
    uint8_t severity;
    uint8_t flags;              /* AGENT_* */
    uint8_t reserved[5];
    sm_sample tasks[SM_AGENT_TASKS];
    /* failure detection (failures.c) */
    int64_t hb_last_ms;         /* latest heartbeat; 0: none, not watched */
    int64_t act_ms;             /* latest start or end of one of its tasks */
    int64_t prog_ms;            /* when its progress counter last moved */
    int64_t down_at_ms;         /* raised at, while FAIL_DOWN */
    int64_t stuck_at_ms;        /* raised at, while FAIL_STUCK */
    int64_t timeout_at_ms;      /* raised at, while FAIL_TIMEOUT */
    int64_t timeout_last_ms;    /* its latest timed-out task */
    uint64_t progress;          /* latest progress counter */
    uint32_t hb_interval_ms;    /* learned heartbeat interval; 0: unknown */
    uint32_t hb_dev_ms;         /* mean absolute deviation of its gaps */
    uint8_t hb_gaps;            /* gaps learned from (capped at 255) */
    uint8_t inflight;           /* tasks in flight at its last heartbeat */
    uint8_t task_type;          /* baseline slot of its latest started
                                   task; SM_TYPE_NONE: none */
    uint8_t fail;               /* FAIL_* bits */
    /* agent-health prediction of agent_down (predict.c) */
    uint8_t degraded_run;       /* consecutive heartbeats saying DEGRADED */
    uint8_t healthy_run;        /* consecutive ones saying otherwise */
    uint8_t pred_raised;        /* a prediction is standing */
    int64_t pred_at_ms;         /* raised at */
    int64_t pred_eta_ms;        /* failure expected at (event time) */
    double pred_conf;           /* confidence last published */
} sm_agent_state;

typedef struct sm_agent {
    sm_agent_state s;           /* the persisted part */
    uint32_t prev, next;        /* raised list (indexes), NONE at the ends */
    uint32_t dirty;             /* position in the dirty list + 1; 0: clean */
    uint32_t hash;              /* low 32 bits of the id's FNV-1a */
} sm_agent;

typedef struct sm_agent_slot {
    uint32_t e;                 /* agent index + 1, 0 = empty */
    uint32_t h;                 /* low 32 bits of the id's FNV-1a */
} sm_agent_slot;

typedef struct sm_agents {
    sm_agent *v;                /* dense, n used of cap / 2 */
    int64_t *wake;              /* by index, beside v: the event time the
                                   failure check must look at the agent
                                   again (SM_WAKE_NEVER: no need); a
                                   dense array so that the sweep's scan
                                   touches 8 bytes an agent */
    uint32_t n;
    sm_agent_slot *slots;       /* open addressing, linear probing */
    uint32_t cap;               /* slots, a power of two */
    uint32_t raised_head, raised_tail;
    uint32_t *dirty;            /* indexes of dirty agents (capacity cap/2) */
    uint32_t n_dirty;
    bool shrunk;                /* an agent removed since the last clean */
    uint64_t *pmark;            /* scratch of the page visit (encode.c):
                                   a bit a page, all zero between visits */
} sm_agents;

/* An empty table. Errors: SM_ERR_NOMEM (t is then safe to free). */
sm_status sm_agents_init(sm_agents *t);
void sm_agents_free(sm_agents *t);

/* The agent `id`, or NULL. */
sm_agent *sm_agents_find(const sm_agents *t, const char *id);
/* Index of agent `id` (non-empty, vetted), created zeroed if new.
 * Errors: SM_ERR_NOMEM (table unchanged). */
sm_status sm_agents_get(sm_agents *t, const char *id, uint32_t *out);
/* Removes agent k (must not be raised): the last agent takes its index;
 * the pages that changed are marked (see above). */
void sm_agents_remove(sm_agents *t, uint32_t k);

/* Hints for a batch of events, changing nothing (a prefetch of what the
 * handling of an event for `id` will read): _slot fetches the index slot
 * where id's probe starts; _record, issued later (once that slot is in
 * cache), finds the agent and fetches its record and wake time. An absent
 * id costs a probe. With 100 k agents a lookup's two cache misses were
 * half of an event's handling; a step or two ahead they overlap it. */
void sm_agents_prefetch_slot(const sm_agents *t, const char *id);
void sm_agents_prefetch_record(const sm_agents *t, const char *id);
/* Fetches every cache line of agent record a (write: for a change). */
static inline void sm_agent_prefetch(const sm_agent *a, bool write)
{
    const char *p = (const char *)a;
    for (size_t off = 0; off < sizeof *a; off += 64) {
        if (write)
            __builtin_prefetch(p + off, 1, 1);
        else
            __builtin_prefetch(p + off, 0, 0);
    }
}

/* When the failure check must next look at agent k. */
static inline void sm_agents_wake(sm_agents *t, uint32_t k, int64_t at_ms)
{
    t->wake[k] = at_ms;
}

/* Dirty list: mark is O(1) and idempotent until sm_agents_clean(). */
void sm_agents_mark(sm_agents *t, uint32_t k);
void sm_agents_unmark(sm_agents *t, uint32_t k);
void sm_agents_clean(sm_agents *t);

/* Raised list in (raised_at, id) order. */
void sm_agents_raised_link(sm_agents *t, uint32_t k);
void sm_agents_raised_unlink(sm_agents *t, uint32_t k);

#endif
