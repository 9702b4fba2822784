/*
 * detect.h - per-swarm rolling windows and the five bottleneck detectors.
 *
 * An sm_swarm holds everything the detectors need about one swarm: the
 * swarm-wide rolling window (task durations, outcomes, consensus rounds),
 * the latest resource gauges, one small record per agent, and the state of
 * every bottleneck episode (raised or not, since when, at what severity).
 *
 * Time is event time only. Each sm_swarm_on_*() call first advances the
 * swarm's clock to max(now, event ts) (an older event does not move it
 * back), evicts what left the window, and, when the clock crossed a tick
 * boundary (cfg.tick_ms), re-evaluates the swarm-wide detectors and every
 * raised agent so that bottlenecks clear even when their signal goes quiet.
 * The same sequence of calls always yields the same transitions, byte for
 * byte: replays are exact.
 *
 * Cost: O(1) amortised per event, independent of window length and of the
 * number of agents (agent lookup is a hash table; swarm statistics are
 * recomputed from a bounded sample ring at most once per tick or per
 * SM_RECOMPUTE_EVERY new samples). The only allocations happen in
 * sm_swarm_create() and when the agent table doubles (a new agent, never a
 * repeated one).
 *
 * Detectors (defaults from SPEC.md; all thresholds in sm_detect_config).
 * "Over" is strict: at exactly the raise threshold nothing is raised.
 *
 *   token exhaustion  u = tokens_used / token_budget of the latest sample
 *                     with a budget. Raise: u > token_raise (0.80) on
 *                     gauge_min_samples consecutive samples; clear: u <
 *                     token_clear (0.75) on as many. Impact: u <=
 *                     token_critical (0.90) -> 0.6 + 0.2*(u-raise)/(crit-raise)
 *                     (HIGH); u > crit -> 0.8 + 0.2*min(1,(u-crit)/(1-crit))
 *                     (CRITICAL).
 *   quota exceeded    active_agents >= agent_quota (quota > 0), debounced
 *                     like token; clear: active < quota * quota_clear (0.9).
 *                     Impact 0.8 + 0.2*min(1,(active-quota)/quota) (CRITICAL).
 *   slow agent        per agent: median duration of its completed tasks in
 *                     the window (last SM_AGENT_TASKS at most) against the
 *                     swarm's median over the window; ratio = agent/swarm.
 *                     Needs >= slow_min_agent_tasks for the agent and
 *                     slow_min_swarm_tasks for the swarm. Raise: ratio >
 *                     slow_raise (2.0) and agent median > swarm median +
 *                     slow_mad_k * 1.4826 * MAD (so a naturally spread swarm
 *                     does not flag its tail), or success rate (completed /
 *                     finished incl. failed and timed out) < success_raise
 *                     (0.70) over at least success_min_tasks (10) finished
 *                     tasks. Impact by ratio: <= slow_high (3.0) -> 0.4 +
 *                     0.2*(r-raise)/(high-raise) (MEDIUM); > high -> 0.6 +
 *                     0.2*min(1,(r-high)/high) (HIGH). By success: 0.4 +
 *                     0.2*(success_raise - s)/success_raise (MEDIUM). The
 *                     larger applies. Clear: ratio < slow_clear (1.5) and
 *                     success >= success_clear (0.80), or the agent has no
 *                     finished task left in the window.
 *   queue backlog     pending = sum of pending over priorities, latest
 *                     sample with pending figures. Raise: pending >
 *                     queue_raise (50), debounced; clear: pending <
 *                     queue_clear (40). Impact: <= queue_critical (200) ->
 *                     0.4 + 0.4*(p-raise)/(crit-raise) (MEDIUM..HIGH); >
 *                     crit -> 0.8 + 0.2*min(1,(p-crit)/crit) (CRITICAL).
 *   consensus timeout rate = timed-out rounds / rounds in the window, with
 *                     >= consensus_min_rounds rounds. Raise: rate >
 *                     consensus_raise (0.10); clear: rate < consensus_clear
 *                     (0.05) or no round left in the window. Impact: <=
 *                     consensus_high (0.20) -> 0.4 + 0.2*(r-raise)/(high-raise)
 *                     (MEDIUM); > high -> 0.6 + 0.2*min(1,(r-high)/high) (HIGH).
 *
 * Every impact inside a band is capped just below the band's upper edge,
 * so the severity is the band's. Severity from impact: >= 0.8 CRITICAL,
 * >= 0.6 HIGH, >= 0.4 MEDIUM, else LOW. While raised, a change of severity
 * emits an UPDATED transition: a step up as soon as the impact enters the
 * higher band, a step down only once the impact is severity_margin (0.05)
 * below the lower edge of the current band, so a figure hovering at a band
 * edge does not flap between two severities. A raised slow agent resolves
 * only after its clear condition has held for slow_clear_hold_ms (5 s) of
 * event time, so an agent whose last 16 tasks are half slow, half normal
 * (as at the end of a slowdown) does not resolve and re-raise.
 *
 * Thread safety: none. One sm_swarm is used by one thread at a time.
 */
#ifndef SM_DETECT_H
#define SM_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "status.h"

#define SM_AGENT_TASKS 16       /* finished tasks kept per agent */
#define SM_SWARM_SAMPLES 512    /* durations kept for the swarm median */
#define SM_RECOMPUTE_EVERY 256  /* new samples before the median is redone */
#define SM_MAX_METRICS 6

typedef struct sm_detect_config {
    int64_t window_ms;          /* rolling window, 60000 */
    int64_t tick_ms;            /* sweep granularity in event time, 1000 */
    uint32_t gauge_min_samples; /* consecutive samples to raise/clear, 2 */

    double token_raise;         /* 0.80 */
    double token_critical;      /* 0.90 */
    double token_clear;         /* 0.75 */

    double quota_clear;         /* 0.90 of quota */

    double slow_raise;          /* 2.0 x swarm median */
    double slow_high;           /* 3.0 */
    double slow_clear;          /* 1.5 */
    double slow_mad_k;          /* 3.0 */
    double success_raise;       /* 0.70 */
    double success_clear;       /* 0.80 */
    uint32_t slow_min_agent_tasks;  /* 5 */
    uint32_t success_min_tasks;     /* 10 finished tasks before the success
                                       rule may fire: with 5, a 3%-failure
                                       agent shows 2 failures in 5 about
                                       once per 120 agent-windows */
    uint32_t slow_min_swarm_tasks;  /* 20 */

    uint32_t queue_raise;       /* 50 */
    uint32_t queue_critical;    /* 200 */
    uint32_t queue_clear;       /* 40 */

    double consensus_raise;     /* 0.10 */
    double consensus_high;      /* 0.20 */
    double consensus_clear;     /* 0.05 */
    uint32_t consensus_min_rounds;  /* 10 */

    double severity_margin;     /* 0.05: impact below a band's lower edge
                                   before severity steps down */
    int64_t slow_clear_hold_ms; /* 5000: a slow agent's clear condition must
                                   hold this long (event time) to resolve */
} sm_detect_config;

/* Fills *cfg with the defaults above. */
void sm_detect_config_default(sm_detect_config *cfg);

/* Checks ranges and orderings (clear < raise < critical, window a positive
 * multiple of tick, min samples >= 1, ...). Returns SM_OK or SM_ERR_CONFIG
 * with *why (if why != NULL) pointing at a static sentence naming the
 * offending field. */
sm_status sm_detect_config_validate(const sm_detect_config *cfg,
                                    const char **why);

typedef enum sm_bn_type {
    SM_BN_TOKEN_EXHAUSTION = 1,
    SM_BN_QUOTA_EXCEEDED = 2,
    SM_BN_SLOW_AGENT = 3,
    SM_BN_QUEUE_BACKLOG = 4,
    SM_BN_CONSENSUS_TIMEOUT = 5,
} sm_bn_type;               /* values mirror swarmmedic.v1.BottleneckType */
#define SM_BN_COUNT 5

typedef enum sm_severity {
    SM_SEV_LOW = 1,
    SM_SEV_MEDIUM = 2,
    SM_SEV_HIGH = 3,
    SM_SEV_CRITICAL = 4,
} sm_severity;              /* values mirror swarmmedic.v1.Severity */

typedef enum sm_transition_kind {
    SM_TR_RAISED = 1,
    SM_TR_UPDATED = 2,
    SM_TR_RESOLVED = 3,
} sm_transition_kind;       /* values mirror Bottleneck.Transition */

/* Static strings: "token_exhaustion", "quota_exceeded", "slow_agent",
 * "queue_backlog", "consensus_timeout"; "unknown" otherwise. These are the
 * <type> token of the output subject. */
const char *sm_bn_type_str(sm_bn_type t);
/* "low", "medium", "high", "critical". */
const char *sm_severity_str(sm_severity s);
/* "raised", "updated", "resolved". */
const char *sm_transition_str(sm_transition_kind k);
/* Severity band of an impact score in [0, 1]. */
sm_severity sm_severity_of(double impact);
/* Static, NULL-terminated list of recommendations for a type. */
const char *const *sm_bn_recommendations(sm_bn_type t);

typedef struct sm_metric {
    const char *name;           /* static, e.g. "token_usage_ratio" */
    double value;
    double threshold;           /* the threshold it was compared with */
    uint32_t samples;           /* samples behind value */
} sm_metric;

/* One change of a bottleneck episode. Passed to the emit callback; valid
 * only during the callback (copy what you keep). */
typedef struct sm_transition {
    sm_bn_type type;
    sm_transition_kind kind;
    sm_severity severity;       /* at this transition (last one, if RESOLVED) */
    double impact;
    const char *swarm;
    const char *subject;        /* agent (slow agent), source (token, quota,
                                   queue) or group (consensus); may be "" */
    const char *reason;         /* static: "token_usage", "active_agents",
                                   "duration_ratio", "success_rate",
                                   "pending_tasks", "timeout_rate",
                                   "cleared", "no_data" */
    int64_t at_ms;              /* event time of the decision */
    int64_t raised_at_ms;       /* event time the episode was raised */
    int64_t window_start_ms;
    int64_t window_end_ms;
    uint64_t decision_id;       /* FNV-1a of swarm, type, subject,
                                   raised_at_ms, kind (and at_ms, severity
                                   for UPDATED): same decision, same id */
    size_t n_metrics;
    sm_metric metrics[SM_MAX_METRICS];
} sm_transition;

/* Called synchronously for each transition, in a deterministic order. */
typedef void (*sm_emit_fn)(void *ud, const sm_transition *t);

typedef struct sm_swarm sm_swarm;

/* Creates an empty swarm. `id` is copied (1..SM_ID_MAX-1 bytes); `cfg` is
 * copied and must validate. Sets *out only on SM_OK. Errors:
 * SM_ERR_INVALID, SM_ERR_CONFIG, SM_ERR_NOMEM. */
sm_status sm_swarm_create(sm_swarm **out, const char *id,
                          const sm_detect_config *cfg);
/* Frees everything. NULL is a no-op. */
void sm_swarm_destroy(sm_swarm *sw);

const char *sm_swarm_id(const sm_swarm *sw);
/* Current event time of the swarm (0 before the first event). */
int64_t sm_swarm_now(const sm_swarm *sw);
/* Number of agents held. */
size_t sm_swarm_agent_count(const sm_swarm *sw);

/* Event handlers. Each updates the windows, runs the detectors the event
 * touches (plus the tick sweep when due) and calls emit (may be NULL) for
 * each transition. Errors: SM_ERR_INVALID (NULL or over-long id, unknown
 * enum value), SM_ERR_NOMEM (agent table could not grow); on error the
 * state is unchanged. */
sm_status sm_swarm_on_task(sm_swarm *sw, const sm_task_event *ev,
                           sm_emit_fn emit, void *ud);
sm_status sm_swarm_on_heartbeat(sm_swarm *sw, const sm_heartbeat *ev,
                                sm_emit_fn emit, void *ud);
sm_status sm_swarm_on_resource(sm_swarm *sw, const sm_resource_sample *ev,
                               sm_emit_fn emit, void *ud);
sm_status sm_swarm_on_consensus(sm_swarm *sw, const sm_consensus_round *ev,
                                sm_emit_fn emit, void *ud);
sm_status sm_swarm_on_agent(sm_swarm *sw, const sm_agent_lifecycle *ev,
                            sm_emit_fn emit, void *ud);
/* Advances event time without an event (an explicit tick carrying bus
 * time) and runs the sweep if due. */
void sm_swarm_advance(sm_swarm *sw, int64_t now_ms, sm_emit_fn emit,
                      void *ud);

/* Whether bottleneck `t` is raised for `subject` ("" for swarm-wide types;
 * the agent id for SM_BN_SLOW_AGENT). */
bool sm_swarm_is_raised(const sm_swarm *sw, sm_bn_type t,
                        const char *subject);

/* ---- persistence (used by worker/persist.c; the store never looks
 * inside a blob). Blobs are versioned records with a checksummed body:
 * the swarm blob is a fixed-layout record of this build; an agent blob is
 * explicitly encoded (little-endian, variable length: the id without
 * padding and only the samples held, so a busy agent is ~200 bytes, at
 * most a few hundred; layout in detect.c). Import vets every field and
 * rejects a blob of another version, a wrong size (short, long or
 * truncated) or a bad checksum with SM_ERR_CORRUPT.
 * Dirty tracking: every mutation marks the swarm part and/or the agent it
 * touched dirty; sm_swarm_clear_dirty() is called once the store has
 * committed them. */

/* Writes the swarm-wide state into buf if cap is large enough; returns the
 * size needed either way. */
size_t sm_swarm_export(const sm_swarm *sw, void *buf, size_t cap);
/* Replaces the swarm-wide state. Errors: SM_ERR_CORRUPT. */
sm_status sm_swarm_import(sm_swarm *sw, const void *buf, size_t len);

/* Visitor over agent blobs. blob is NULL (len 0) for a removed agent.
 * Otherwise blob (len bytes, len varies by agent) lives on the caller's
 * stack and is valid only during the call: copy it to keep it. */
typedef void (*sm_agent_visit_fn)(void *ud, const char *agent,
                                  const void *blob, size_t len);
/* Whether the swarm-wide part changed since the last clear. */
bool sm_swarm_is_dirty(const sm_swarm *sw);
/* Calls fn for each agent changed since the last clear, in the order they
 * changed (a dirty list: O(changed agents), not O(agents)), with the
 * agent's blob encoded into a stack buffer (no allocation). */
void sm_swarm_visit_dirty(const sm_swarm *sw, sm_agent_visit_fn fn, void *ud);
void sm_swarm_clear_dirty(sm_swarm *sw);
/* Adds or replaces one agent from its blob. Errors: SM_ERR_CORRUPT,
 * SM_ERR_NOMEM. The agent is not marked dirty. */
sm_status sm_swarm_import_agent(sm_swarm *sw, const void *blob, size_t len);

/* Removes agents whose last event is older than now - retention_ms and
 * that have no raised bottleneck; calls removed(ud, agent, NULL, 0) for
 * each before it goes. Returns how many were removed. The scan visits
 * every agent, so a call with the same retention_ms within one tick_ms of
 * event time of the previous scan returns 0 at once. */
size_t sm_swarm_expire(sm_swarm *sw, int64_t retention_ms,
                       sm_agent_visit_fn removed, void *ud);

#endif
