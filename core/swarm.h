/*
 * swarm.h - one swarm as the core sees it: the rolling windows of its
 * events, its agents, its open episodes, and the decisions events lead to.
 *
 * An sm_swarm is fed events (event.h) and appends what it concludes to a
 * caller-owned decision buffer (decision.h); the caller publishes them
 * after the call returns. Nothing here reads a clock, logs or does I/O.
 *
 * Time is event time only. Each sm_swarm_on_*() call first advances the
 * swarm's clock to max(now, event ts) (an older event does not move it
 * back), evicts what left the window, and, when the clock crossed a tick
 * boundary (cfg.tick_ms), sweeps: re-evaluates the swarm-wide detectors
 * and every raised agent, so that bottlenecks clear even when their signal
 * goes quiet. The same sequence of calls always yields the same decisions,
 * byte for byte: replays are exact.
 *
 * Cost: O(1) amortised per event, independent of window length and of the
 * number of agents. The only allocations happen in sm_swarm_create(), when
 * the agent table doubles (a new agent, never a repeated one) and when a
 * decision buffer grows.
 *
 * Modules behind this header: swarm.c (clock, dispatch, sweep, expiry),
 * agents.c (the agent table), detectors.c (the rules; thresholds.h
 * describes them), episode.c (raise / update / resolve and the decisions
 * they append), encode.c (persisted format, encode.h).
 *
 * Thread safety: none. One sm_swarm is used by one thread at a time.
 */
#ifndef SM_SWARM_H
#define SM_SWARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decision.h"
#include "event.h"
#include "status.h"
#include "heal.h"
#include "thresholds.h"

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
/* Whether agent `agent` is held. */
bool sm_swarm_has_agent(const sm_swarm *sw, const char *agent);
/* A hint, changing nothing: an event for `agent` is coming. Issue stage 0
 * two events ahead and stage 1 one event ahead (agents.h: the index slot,
 * then the record), so their cache misses overlap the handling of the
 * events in between. A swarm of fewer than SM_PREFETCH_MIN_AGENTS agents
 * is skipped: its table stays in cache. */
#define SM_PREFETCH_MIN_AGENTS 2048u
void sm_swarm_prefetch_agent(const sm_swarm *sw, const char *agent, int stage);
/* Latest event time of an event of the swarm's own (an sm_swarm_on_*()
 * call that succeeded; sm_swarm_advance() does not count), 0 before any.
 * Persisted with the swarm. */
int64_t sm_swarm_last_event(const sm_swarm *sw);
/* Whether anything is raised in the swarm: a bottleneck, a failure or a
 * prediction, swarm-wide or on any agent or group. O(agents). */
bool sm_swarm_any_raised(const sm_swarm *sw);

/* Event handlers. Each updates the windows, runs the detectors the event
 * touches (plus the tick sweep when due) and appends each decision to
 * `out` (NULL: decisions are dropped). Errors: SM_ERR_INVALID (NULL or
 * over-long id, unknown enum value, time outside year 0..9999),
 * SM_ERR_NOMEM (agent table could not grow); on error the state is
 * unchanged and nothing is appended. */
sm_status sm_swarm_on_task(sm_swarm *sw, const sm_task_event *ev,
                           sm_decisions *out);
sm_status sm_swarm_on_heartbeat(sm_swarm *sw, const sm_heartbeat *ev,
                                sm_decisions *out);
sm_status sm_swarm_on_resource(sm_swarm *sw, const sm_resource_sample *ev,
                               sm_decisions *out);
sm_status sm_swarm_on_consensus(sm_swarm *sw, const sm_consensus_round *ev,
                                sm_decisions *out);
sm_status sm_swarm_on_agent(sm_swarm *sw, const sm_agent_lifecycle *ev,
                            sm_decisions *out);
/* A coordinator's HealingOutcome for command `command` (its decision id;
 * result 1 DONE, 2 FAILED, 3 REJECTED): moves the clock like any event
 * and feeds the command's verification (heal.h); an unknown command only
 * moves the clock. Errors: SM_ERR_INVALID (NULL, ts_ms outside year
 * 0..9999). */
sm_status sm_swarm_on_outcome(sm_swarm *sw, int64_t ts_ms, uint64_t command,
                              uint32_t result, sm_decisions *out);
/* Advances event time without an event (an explicit tick carrying bus
 * time) and runs the sweep if due. */
void sm_swarm_advance(sm_swarm *sw, int64_t now_ms, sm_decisions *out);

/* Whether bottleneck `t` is raised for `subject` ("" for swarm-wide types;
 * the agent id for SM_BN_SLOW_AGENT). */
bool sm_swarm_is_raised(const sm_swarm *sw, sm_bn_type t,
                        const char *subject);

/* Whether failure `t` is raised for `subject` (the agent for agent_down,
 * agent_stuck and task_timeout; the group for quorum_loss, "" any; token,
 * memory and queue are swarm-wide: subject ignored). */
bool sm_swarm_failure_raised(const sm_swarm *sw, sm_fail_type t,
                             const char *subject);

/* What became of a swarm's predictions (predict.c keeps the ledger). */
typedef struct sm_pred_tally {
    uint32_t raised;
    uint32_t fulfilled;         /* the failure came within eta + margin */
    uint32_t late;              /* it came, but after eta + margin */
    uint32_t wrong;             /* withdrawn or expired with no failure */
    double lead_s;              /* sum over fulfilled: failure - raise */
    double eta_err_s;           /* sum over fulfilled and late:
                                   |failure - expected| */
    uint32_t preempted;         /* withdrawn while a preventive command
                                   stood (not counted wrong) */
} sm_pred_tally;

/* Healing analytics (heal.c): what became of the commands, by action,
 * by failure type or by strategy. */
typedef struct sm_heal_tally {
    uint32_t commands;          /* published (recommend or act) */
    uint32_t verified, failed, preempted, superseded, escalated;
    uint32_t recent;            /* the last 16 verdicts, 1 = verified or
                                   pre-empted (newest in bit 0) */
    uint32_t recent_n;          /* verdicts in recent, <= 16 */
    double detect_s;            /* sum over verified: detected - first
                                   evidence */
    double recover_s;           /* sum over verified: recovered - first
                                   evidence */
} sm_heal_tally;

/* What a tally says: success rate (a pre-emption counts as a success, a
 * superseded command as neither; 0 when nothing was judged), mean times,
 * and the trend of the last 16 verdicts against the whole (0 unknown:
 * fewer than 4 recent or 8 judged; 1 improving, 2 stable, 3 degrading:
 * more than 0.1 above, within, below; values mirror
 * PerformanceReport.Trend). */
typedef struct sm_heal_summary {
    uint32_t judged;            /* verified + pre-empted + failed */
    double success_rate;
    double detect_mean_s, recover_mean_s;
    int trend;
} sm_heal_summary;
void sm_heal_summarize(const sm_heal_tally *t, sm_heal_summary *out);
/* Adds x's counts and sums into to (recent verdicts: x's). */
void sm_heal_tally_add(sm_heal_tally *to, const sm_heal_tally *x);
/* The overall row from the by-action rows (SM_ACT_COUNT + 1 of them):
 * every action's commands and verdicts but the escalations, which count
 * as escalated. */
void sm_heal_tally_all(const sm_heal_tally *by_action, sm_heal_tally *all);

/* Adds the swarm's healing analytics into by_action (SM_ACT_COUNT + 1
 * rows, by sm_heal_action), by_type (SM_FAIL_MAX + 1 rows, [0]: answers
 * to bottlenecks) and by_strategy (SM_HEAL_MAX_STRATEGIES rows, by the
 * index in the strategy table); each may be NULL. */
void sm_swarm_heal_add(const sm_swarm *sw, sm_heal_tally *by_action,
                       sm_heal_tally *by_type, sm_heal_tally *by_strategy);

/* How the swarm heals (heal.h): the strategy table (must outlive the
 * swarm) and the autonomy per action; copied. Before it is set the swarm
 * heals nothing. Errors: SM_ERR_INVALID (more than SM_HEAL_MAX_STRATEGIES
 * strategies, one without a name, matches or plan, or max_tries 0). */
sm_status sm_swarm_set_heal(sm_swarm *sw, const sm_heal_config *hc);

/* Visitor over the commands in flight: each call gets the command's id,
 * action, agent, deadline and the id of what it answers. */
typedef void (*sm_heal_visit_fn)(void *ud, uint64_t command,
                                 sm_heal_action action, const char *agent,
                                 int64_t deadline_ms, uint64_t answers);
/* Calls fn for each command awaiting its verdict; returns how many. */
size_t sm_swarm_heal_open(const sm_swarm *sw, sm_heal_visit_fn fn, void *ud);

/* Adds the swarm's ledger into by_source (SM_SRC_COUNT + 1 rows, [0] all
 * sources) and by_type (SM_FAIL_MAX + 1 rows, by sm_fail_type). */
void sm_swarm_ledger_add(const sm_swarm *sw, sm_pred_tally *by_source,
                         sm_pred_tally *by_type);

/* Visitor over agents: blob (len bytes) is the agent's encoded state
 * (encode.h), or NULL (len 0) for an agent removed. blob lives on the
 * caller's stack and is valid only during the call: copy it to keep it. */
typedef void (*sm_agent_visit_fn)(void *ud, const char *agent,
                                  const void *blob, size_t len);

/* Removes agents whose last event is older than now - retention_ms and
 * that have no raised bottleneck or failure; calls removed(ud, agent, NULL, 0) for
 * each before it goes. Returns how many were removed. The scan visits every agent, so
 * a call with the same retention_ms within one tick_ms of event time of
 * the previous scan returns 0 at once. */
size_t sm_swarm_expire(sm_swarm *sw, int64_t retention_ms,
                       sm_agent_visit_fn removed, void *ud);

#endif
