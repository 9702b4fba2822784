/*
 * thresholds.h - the detectors' settings: every threshold, guard and
 * window length, their defaults (from SPEC.md) and their validation.
 *
 * The rules the settings feed (see detectors.c for the code):
 *
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
 *                     tasks (see below: evidence, not a count).
 *                     Impact by ratio: <= slow_high (3.0) -> 0.4 +
 *                     0.2*(r-raise)/(high-raise) (MEDIUM); > high -> 0.6 +
 *                     0.2*min(1,(r-high)/high) (HIGH). By success: 0.4 +
 *                     0.2*(success_raise - s)/success_raise (MEDIUM). The
 *                     larger applies. Clear (held slow_clear_hold_ms): the
 *                     failure evidence under half its line, and for the
 *                     durations either fresh evidence -- the agent's latest
 *                     slow_clear_tasks (4) judged tasks alone favour
 *                     tolerable (slow_ok) over slow (slow_high) by
 *                     slow_clear_evidence (3 nats), each task's log ratio
 *                     clipped at slow_ok^2/slow_high on the fast side --
 *                     or the slowness CUSUM under half of slow_evidence
 *                     with the median ratio of the latest slow_recent_tasks
 *                     under slow_clear (1.5) (or the CUSUM at 0 and the
 *                     median of the latest slow_min_agent_tasks under
 *                     slow_ok); or the agent has no finished task left in
 *                     the horizon ("no_data"). The fresh rule does not
 *                     wait for the fault's tasks to leave the longer
 *                     median, nor for the CUSUM to walk down from its cap.
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
 * Failures (failures.c), each raised and resolved:
 *   agent_down        an agent that has sent heartbeats goes silent for
 *                     down_intervals (3) of its own learned intervals plus
 *                     an allowance for jitter (max(down_slack_ms (1000),
 *                     4 x the mean absolute deviation of its gaps)). The
 *                     interval is learned from gaps under 1.5x the current
 *                     estimate (a missed beat does not stretch it); until
 *                     two gaps are seen, heartbeat_ms (5000) stands in.
 *                     Not down: an agent that unregistered or whose last
 *                     heartbeat said STOPPING. Resolves on its next
 *                     heartbeat or registration, or as "gone" after
 *                     down_forget_ms (1 h) of silence. Severity HIGH.
 *   agent_stuck       heartbeats go on and report tasks in flight, but the
 *                     progress counter has not moved for stuck_stall_ms
 *                     (60000: tool calls pause for tens of seconds) and no
 *                     task of the agent started or ended for
 *                     max(stuck_min_ms (60000), stuck_factor (3) x the
 *                     median of its task type); an agent that never
 *                     reported progress needs stuck_blind_factor (10)
 *                     times that. Resolves when progress moves, a task of
 *                     it ends or it goes idle. Severity MEDIUM.
 *   task_timeout      a task of the agent timed out. Resolves at the
 *                     agent's next completed task or after window_ms with
 *                     no further timeout. Severity LOW.
 *   quorum_loss       quorum_rounds (2) consecutive rounds of a group with
 *                     fewer participants than their quorum; resolves after
 *                     as many rounds at or above it. Severity CRITICAL.
 *   token_exhaustion  usage >= token_fail (0.99) of the budget; resolves
 *                     under token_fail_clear (0.95). CRITICAL.
 *   memory_exhaustion memory used >= memory_fail (0.98) of the limit;
 *                     resolves under memory_fail_clear (0.90). CRITICAL.
 *   queue_overflow    pending > queue_fail (200) on gauge_min_samples
 *                     samples; resolves under queue_fail_clear (150).
 *                     CRITICAL.
 *
 * Predictions (predict.c): agent_down from agent health (an agent that
 * reports DEGRADED on pred_degraded_beats (3) heartbeats in a row; its
 * slow-agent evidence adds to the similarity), each with a confidence of
 * 0.5 x similarity + 0.3 x the source's measured accuracy (the ledger;
 * pred_prior before any fate) + 0.2 x recency, published from
 * pred_threshold (0.7); withdrawn after pred_healthy_beats (3) healthy
 * heartbeats, or when the expected time plus pred_margin_ms passes with no
 * failure; fulfilled when the failure is raised. token_exhaustion,
 * memory_exhaustion and queue_overflow from resource trends and queue
 * growth (forecast.h): a budget that its operators have been seen to top
 * up at usage u is not forecast to run out below u + pred_topup_margin
 * (0.05).
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
 */
#ifndef SM_THRESHOLDS_H
#define SM_THRESHOLDS_H

#include <stdint.h>

#include "status.h"

#define SM_AGENT_TASKS 16       /* finished tasks kept per agent */
#define SM_SWARM_SAMPLES 512    /* durations kept for the swarm median */

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
    double slow_mad_k;          /* 0 (off): an extra guard, the ratio must
                                   also exceed the swarm's median ratio +
                                   k x 1.4826 x MAD (the reference's 3
                                   demanded ~4x on real task spreads) */
    double slow_ok;             /* 1.6: a ratio an agent may run at without
                                   being a bottleneck (the evidence test's
                                   null hypothesis; slow_high its
                                   alternative) */
    double slow_evidence;       /* 3.0: log-likelihood ratio (nats) for
                                   "slow" over "tolerable" to raise;
                                   the episode clears below half of it */
    double slow_clear_evidence; /* 3.0: log-likelihood ratio (nats) for
                                   "tolerable" over "slow" in the agent's
                                   latest slow_clear_tasks tasks alone
                                   (fresh evidence) that clears a raised
                                   agent; 0: off (only the rule on the
                                   spent CUSUM and the longer median) */
    uint32_t slow_clear_tasks;  /* 4: those latest completed tasks */
    double success_raise;       /* 0.55: the success rate of a failing
                                   agent (the reference's 0.70 sits too
                                   close to a healthy-but-unlucky 0.80 to
                                   tell apart in the tasks an agent runs) */
    double success_clear;       /* 0.80: the success rate of a healthy one */
    double success_evidence;    /* 5.0: log-likelihood ratio (nats) for
                                   "failing" over "healthy", accumulated
                                   task by task (CUSUM), to raise; the
                                   episode clears below half of it */
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
    double consensus_evidence;  /* 5.0: log-likelihood ratio (nats) for
                                   "degraded" (consensus_high) over
                                   "healthy" (consensus_clear), round by
                                   round, before a group is raised: a
                                   chance cluster in one window (3 timeouts
                                   in 20 rounds at a 2% base rate) is not
                                   evidence */

    double severity_margin;     /* 0.05: impact below a band's lower edge
                                   before severity steps down */
    int64_t slow_clear_hold_ms; /* 5000: a slow agent's clear condition must
                                   hold this long (event time) to resolve */
    int64_t slow_horizon_ms;    /* 600000: how far back an agent's tasks and
                                   a type's baseline reach (an agent finishes
                                   a few tasks a minute: the 60 s window
                                   holds too few to judge) */
    uint32_t slow_recent_tasks; /* 6: the agent's latest completed tasks
                                   whose median duration ratio is judged */
    uint32_t slow_min_type_tasks;   /* 10: durations of a task type before
                                   its baseline judges anyone */

    /* failures (above) */
    int64_t heartbeat_ms;       /* 5000 */
    double down_intervals;      /* 3.0 */
    int64_t down_forget_ms;     /* 3600000: a down agent silent this long is
                                   resolved "gone" (and may then expire) */
    int64_t down_slack_ms;      /* 1000 */
    double stuck_factor;        /* 3.0 */
    double stuck_blind_factor;  /* 10.0 */
    int64_t stuck_min_ms;       /* 60000 */
    int64_t stuck_stall_ms;     /* 60000 */
    uint32_t quorum_rounds;     /* 2 */
    double token_fail;          /* 0.99 */
    double token_fail_clear;    /* 0.95 */
    double memory_fail;         /* 0.98 */
    double memory_fail_clear;   /* 0.90 */
    uint32_t queue_fail;        /* 200 */
    uint32_t queue_fail_clear;  /* 150 */

    /* predictions (predict.c) */
    double pred_threshold;      /* 0.7: confidence to publish */
    double pred_prior;          /* 0.7: a source's accuracy before its
                                   ledger has any fate */
    int64_t pred_margin_ms;     /* 120000: a failure later than the expected
                                   time plus this is not the one forecast */
    int64_t pred_agent_eta_ms;  /* 180000: expected time from the first
                                   degraded sign to a death, until the
                                   ledger has learned it */
    uint32_t pred_degraded_beats;   /* 3: consecutive DEGRADED heartbeats
                                   before agent_down is predicted */
    uint32_t pred_healthy_beats;    /* 3: consecutive other ones before the
                                   prediction is withdrawn */
    double pred_topup_margin;   /* 0.05: a budget its operators have topped
                                   up (or whose period has restarted) at
                                   usage u is not forecast to run out
                                   until usage passes u + this */

    /* healing (heal.c) */
    double heal_preventive;     /* 0.8: a prediction's confidence for a
                                   preventive command */
    int64_t heal_restart_deadline_ms;   /* 90000 */
    int64_t heal_retry_deadline_ms;     /* 120000 */
    int64_t heal_rebalance_deadline_ms; /* 240000 */
    int64_t heal_quorum_deadline_ms;    /* 120000 */
    uint32_t heal_restart_max;  /* 3 restarts of one agent ... */
    uint32_t heal_swarm_restart_max;    /* 10 of the swarm ... */
    int64_t heal_restart_window_ms;     /* 600000 ... within this */
    int64_t heal_backoff_ms;    /* 5000: wait before the 2nd try, doubling */
    int64_t heal_backoff_max_ms;    /* 120000 */
    int64_t heal_hold_ms;       /* 120000: a restart held by the quorum
                                   guard waits this long, then escalates */
} sm_detect_config;

/* Fills *cfg with the defaults above. */
void sm_detect_config_default(sm_detect_config *cfg);

/* Checks ranges and orderings (clear < raise < critical, window a positive
 * multiple of tick, min samples >= 1, ...). Returns SM_OK or SM_ERR_CONFIG
 * with *why (if why != NULL) pointing at a static sentence naming the
 * offending field. */
sm_status sm_detect_config_validate(const sm_detect_config *cfg,
                                    const char **why);

#endif
