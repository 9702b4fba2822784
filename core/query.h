/*
 * query.h - read-only questions to one swarm, for the request/reply
 * services (SPEC capability 5 and "Requests"): which agent should take a
 * task (select), which tasks fit the remaining token budget (plan), and
 * what is open now (status).
 *
 * Nothing here changes the swarm, reads a clock or allocates: the caller
 * owns every output array and says how large it is. The answers are a
 * function of the swarm's state at its current event time, so the same
 * state gives the same answer byte for byte.
 *
 * Thread safety: none beyond the swarm's own (one thread at a time; a
 * query reads what the owning thread writes, so it runs on that thread).
 */
#ifndef SM_QUERY_H
#define SM_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "status.h"
#include "swarm.h"

/* ---------------------------------------------------------- select */

/* Health score weights and references (SPEC capability 5). */
#define SM_SELECT_W_SUCCESS 0.4
#define SM_SELECT_W_SPEED 0.3
#define SM_SELECT_W_CAPACITY 0.2
#define SM_SELECT_W_AFFINITY 0.1
#define SM_SELECT_NO_HISTORY 0.5    /* score of an agent with no finished task */
#define SM_SELECT_SLOTS 3           /* concurrent tasks an agent takes */

/* One agent's score for a task. */
typedef struct sm_agent_score {
    char agent[SM_ID_MAX];
    double score;           /* 0.4 success + 0.3 speed + 0.2 capacity
                               + 0.1 affinity; SM_SELECT_NO_HISTORY when
                               samples == 0 (the terms are then 0) */
    double success;         /* completed / finished, over the tasks held */
    double speed;           /* min(1, 1 / median duration ratio): the ratio
                               is each task's duration over its own type's
                               baseline, so speed compares within a type;
                               0.5 when no finished task had a baseline */
    double capacity;        /* free slots of SM_SELECT_SLOTS at its last
                               heartbeat (in-flight tasks) */
    double affinity;        /* 1 if its latest started task was of the
                               requested type, else 0 */
    uint32_t samples;       /* finished tasks behind success */
} sm_agent_score;

/* Scores the candidates (n ids; n == 0: every agent of the swarm) for a
 * task of type task_type ("" or NULL: untyped) and writes the eligible
 * ones into out (at most cap), best first (score, then id, descending
 * score, ascending id). An agent is eligible when the swarm holds it, it
 * is not unregistered and no agent_down or agent_stuck failure is raised
 * on it; the others are counted in *skipped (may be NULL) and, when
 * skipped_ids is not NULL, their indexes into candidates written there
 * (up to n). Returns how many were written to out; *eligible (may be
 * NULL) gets how many were eligible in all (may exceed cap). */
size_t sm_query_select(const sm_swarm *sw, const char *task_type,
                       const char *const *candidates, size_t n,
                       sm_agent_score *out, size_t cap, size_t *eligible,
                       size_t *skipped, size_t *skipped_ids);

/* ------------------------------------------------------------ plan */

#define SM_PLAN_SHARE 0.90          /* of the remaining budget */
#define SM_PLAN_SHARE_AGGRESSIVE 0.95

typedef struct sm_plan_task {
    const char *id;         /* borrowed */
    sm_priority priority;   /* 1..5 */
    uint64_t tokens;        /* estimated */
} sm_plan_task;

typedef enum sm_plan_fate {
    SM_PLAN_ADMITTED = 1,
    SM_PLAN_OVER_BUDGET = 2,    /* did not fit in what was left */
    SM_PLAN_NO_BUDGET = 3,      /* the swarm never reported a budget */
} sm_plan_fate;

typedef struct sm_plan_result {
    bool budget_known;      /* a resource sample carried a budget */
    uint64_t remaining;     /* budget - used at the latest sample */
    uint64_t limit;         /* floor(remaining x share) */
    uint64_t admitted_tokens;
} sm_plan_result;

/* Priority weight: CRITICAL 10, HIGH 5, MEDIUM 2, LOW 1, BACKGROUND 0.5;
 * 0 for a value outside 1..5. */
double sm_plan_weight(sm_priority p);

/* Ranks tasks by priority weight per estimated token (a task estimated
 * at 0 tokens ranks first; ties keep input order) and admits them in
 * that order while the admitted total stays within limit; a task that
 * does not fit is deferred and smaller ones after it may still fit.
 * order[n] gets the rank order (indexes into tasks), fate[n] each
 * task's fate, by input index. Errors: SM_ERR_INVALID (NULL with n > 0,
 * a priority outside 1..5; nothing written). */
sm_status sm_query_plan(const sm_swarm *sw, const sm_plan_task *tasks,
                        size_t n, bool aggressive, uint32_t *order,
                        sm_plan_fate *fate, sm_plan_result *res);

/* --------------------------------------------------------- scaling */

/* Dynamic agents that could go now: registered, dynamic, nothing in
 * flight at their last heartbeat, no failure raised. Returns how many
 * there are; writes the first cap of them in id order into ids. */
size_t sm_query_idle_dynamic(const sm_swarm *sw, char (*ids)[SM_ID_MAX],
                             size_t cap);

/* The work a swarm's agents did and hold, for sizing by drain time. */
typedef struct sm_query_work {
    double done;            /* tasks finished (any outcome) with event time
                               >= since_ms; an agent whose ring of
                               SM_AGENT_TASKS filled within the span counts
                               at the rate its ring shows */
    double busy;            /* agents' worth of tasks in flight at the
                               last heartbeats of the agents not gone
                               (unregistered, down or stuck): their
                               sum over the most any one reported (the
                               agents' concurrency, at least 1) */
    uint32_t concurrency;   /* that most (1 when none is in flight) */
} sm_query_work;

/* Fills *out (never NULL) from the agents' task rings and heartbeats. O(agents
 * x SM_AGENT_TASKS). */
void sm_query_work_of(const sm_swarm *sw, int64_t since_ms, sm_query_work *out);

/* Whether token exhaustion is raised or forecast (the scaling gate). */
bool sm_query_tokens_short(const sm_swarm *sw);

/* ---------------------------------------------------------- status */

typedef enum sm_open_kind {
    SM_OPEN_BOTTLENECK = 1,
    SM_OPEN_FAILURE = 2,
    SM_OPEN_PREDICTION = 3,
} sm_open_kind;

/* One thing open now. */
typedef struct sm_open_item {
    sm_open_kind kind;
    int type;               /* sm_bn_type or sm_fail_type (for a
                               prediction: the failure forecast) */
    char subject[SM_ID_MAX];    /* agent, group, resource source or "" */
    int64_t raised_at_ms;
    int severity;           /* sm_severity; 0 when the item has none */
    double confidence;      /* predictions */
    int64_t eta_ms;         /* predictions: failure expected at */
} sm_open_item;

/* Writes what is open in the swarm into out (at most cap): swarm-wide
 * bottlenecks, then slow agents (raised order), then consensus groups;
 * failures swarm-wide, per agent, per group; predictions likewise.
 * Returns how many are open in all (may exceed cap). O(agents). */
size_t sm_query_status(const sm_swarm *sw, sm_open_item *out, size_t cap);

#endif
