/*
 * heal.h - self-healing: what the core commands when a failure is raised
 * (or forecast), how it verifies that the command worked, and when it
 * gives up and escalates.
 *
 * The healer watches the decisions the other modules of the core append
 * during an sm_swarm_on_*() call (it runs at the end of each call, over
 * that call's decisions): a failure raised opens a healing episode, a
 * prediction at or above heal_preventive opens a preventive one, and a
 * bottleneck raised opens one when a strategy matches it. For each
 * episode it asks the strategy table (sm_heal_config.strategies, held
 * outside the core: worker/strategies.c) in order for a plan, and appends
 * a command decision (SM_DEC_HEAL). It then verifies the command by the
 * signal itself and by the coordinator's HealingOutcome:
 *   - agent_down, agent_stuck: the agent is registered, beats again after
 *     the command, and the failure is over;
 *   - task_timeout: the retried task completed (on any agent), or the
 *     failure is over;
 *   - quorum_loss, token / memory exhaustion, queue overflow: the failure
 *     is over;
 *   - a preventive command: the prediction was withdrawn (the failure was
 *     pre-empted; the ledger counts it so), not fulfilled;
 *   - a bottleneck: it resolved.
 * An outcome FAILED or REJECTED, or the deadline passing with the signal
 * still bad, fails the command (a verdict decision, SM_DEC_VERDICT); the
 * next try follows after an exponential backoff with deterministic
 * jitter, with the same strategy up to its max_tries, then the next
 * strategy that matches; when none is left, an ESCALATE command. Every
 * command gets exactly one verdict.
 *
 * Guards: at most heal_restart_max restarts of one agent and
 * heal_swarm_restart_max of the swarm within heal_restart_window_ms (then
 * escalate); no restart of a live agent while a consensus group of the
 * swarm has no participant to spare (held up to heal_hold_ms, then
 * escalate): an agent that is down may be restarted; one command at a
 * time per episode. Autonomy per action (sm_heal_config.autonomy):
 * OBSERVE appends the command for the log only (the worker does not
 * publish it, no verdict follows), RECOMMEND and ACT are published and
 * verified alike.
 *
 * Everything here is state of the swarm (persisted with it, encode.c):
 * after a restart or a redelivered event no second command is minted for
 * an episode that has one. Ids: a command's id is FNV-1a of the swarm,
 * the decision it answers, the attempt and the action, so a re-derived
 * command carries the same Nats-Msg-Id.
 *
 * Internal to core/ except the types and sm_heal_builtin_*() that a
 * strategy table outside the core uses (swarm.h re-exports what the
 * worker needs).
 */
#ifndef SM_HEAL_H
#define SM_HEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decision.h"

struct sm_swarm;

/* What a strategy is asked to heal. */
typedef struct sm_heal_case {
    sm_decision_kind kind;      /* SM_DEC_FAILURE, SM_DEC_PREDICTION
                                   (preventive) or SM_DEC_BOTTLENECK */
    int type;                   /* sm_fail_type (failure, prediction) or
                                   sm_bn_type (bottleneck) */
    const char *subject;        /* agent, group or resource source; "" */
    const char *task;           /* task_timeout: the task that timed out */
    const char *task_type;      /* its type, "" when unknown */
    uint32_t attempt;           /* 1-based: the episode's try being planned */
    uint32_t tries;             /* this strategy's tries so far, this episode */
    int64_t now_ms;             /* event time */
    const struct sm_swarm *sw;  /* read-only: sm_heal_pick_agent() */
} sm_heal_case;

#define SM_HEAL_STEPS 4

/* What a strategy plans; zeroed before plan() is called. Strings are
 * copied into the command (steps up to SM_STEP_MAX - 1 bytes). */
typedef struct sm_heal_plan {
    sm_heal_action action;
    const char *custom;         /* SM_ACT_CUSTOM: the action's name (static;
                                   also the subject token) */
    char agent[SM_ID_MAX];
    char task[SM_ID_MAX];
    char target[SM_ID_MAX];     /* task retry: the agent to run it */
    size_t n_steps;
    char steps[SM_HEAL_STEPS][SM_STEP_MAX];
    int64_t deadline_ms;        /* from now; 0: the action's default */
    bool restarts;              /* restarts a (live) agent: the restart
                                   caps and the quorum guard apply */
} sm_heal_plan;

/* A healing strategy. `matches` says whether it applies to a case at all;
 * `plan` fills the command and returns false when it cannot act now (no
 * healthy agent to retry on, say): the next strategy is asked. Both are
 * pure functions of the case (no I/O, no clock): replays stay exact. */
typedef struct sm_strategy {
    const char *name;           /* static, unique in the table */
    uint32_t max_tries;         /* tries of this strategy per episode, >= 1 */
    bool (*matches)(const sm_heal_case *c);
    bool (*plan)(const sm_heal_case *c, sm_heal_plan *p);
} sm_strategy;

/* How a swarm heals: the strategy table (static, outside the core) and
 * the autonomy of each action. Zeroed: no strategies, nothing healed. */
typedef struct sm_heal_config {
    const sm_strategy *strategies;
    size_t n_strategies;        /* <= SM_HEAL_MAX_STRATEGIES */
    sm_autonomy autonomy[SM_ACT_COUNT + 1];     /* by action; 0: OBSERVE */
} sm_heal_config;
#define SM_HEAL_MAX_STRATEGIES 16

/* The built-in strategies (SPEC capability 2), for the table:
 *   agent_restart     agent_down, agent_stuck (and a preventive agent_down):
 *                     unregister, reregister, restore_state; 2 tries.
 *   task_retry        task_timeout: the task again on the best healthy
 *                     agent (sm_heal_pick_agent); 3 tries.
 *   resource_rebalance token, memory exhaustion, queue overflow (failure or
 *                     forecast): pause_low_priority plus reallocate_budget,
 *                     free_memory or scale_up=N; 1 try.
 *   quorum_recovery   quorum_loss: spawn_agents=N (the shortfall of the
 *                     group's last round, at least 1); 2 tries. */
bool sm_heal_restart_matches(const sm_heal_case *c);
bool sm_heal_restart_plan(const sm_heal_case *c, sm_heal_plan *p);
bool sm_heal_retry_matches(const sm_heal_case *c);
bool sm_heal_retry_plan(const sm_heal_case *c, sm_heal_plan *p);
bool sm_heal_rebalance_matches(const sm_heal_case *c);
bool sm_heal_rebalance_plan(const sm_heal_case *c, sm_heal_plan *p);
bool sm_heal_quorum_matches(const sm_heal_case *c);
bool sm_heal_quorum_plan(const sm_heal_case *c, sm_heal_plan *p);
/* Table lines for them, as the built-ins are meant to be used. */
#define SM_HEAL_BUILTINS                                                   \
    {"agent_restart", 2, sm_heal_restart_matches, sm_heal_restart_plan},   \
    {"task_retry", 3, sm_heal_retry_matches, sm_heal_retry_plan},          \
    {"resource_rebalance", 1, sm_heal_rebalance_matches,                   \
     sm_heal_rebalance_plan},                                              \
    {"quorum_recovery", 2, sm_heal_quorum_matches, sm_heal_quorum_plan}

/* The healthiest registered agent for a task of `task_type` other than
 * `not` (NULL: none excluded): the best of the SM_HEAL_PICK best ranked
 * by sm_query_select() (query.h: SPEC capability 5's 40/30/20/10 score,
 * speed within the type) that is not down, stuck, timing out, slow,
 * stopping, unregistered or forecast to die. Writes the id into out
 * (SM_ID_MAX) and returns its score, or returns -1 (none).
 * Deterministic. */
#define SM_HEAL_PICK 32
double sm_heal_pick_agent(const struct sm_swarm *sw, const char *task_type,
                          const char *not, char *out);

/* The shortfall of group `group`'s last round (quorum - participants),
 * 0 when it held or the group is unknown. */
uint32_t sm_heal_group_shortfall(const struct sm_swarm *sw, const char *group);

/* "agent_restart", "task_retry", "resource_rebalance", "quorum_recovery",
 * "custom", "escalate"; and the reverse (0 if unknown). */
const char *sm_heal_action_str(sm_heal_action a);
sm_heal_action sm_heal_action_parse(const char *s);
/* "observe", "recommend", "act"; and the reverse (0 if unknown). */
const char *sm_autonomy_str(sm_autonomy a);
sm_autonomy sm_autonomy_parse(const char *s);

/* ---- inside the core ---------------------------------------------------- */

/* Runs at the end of each sm_swarm_on_*() / sm_swarm_advance() call: reads
 * the decisions out->v[from .. out->n) that the call appended, opens and
 * closes episodes, and, when the clock crossed a tick since its last look
 * (or something changed), checks every open episode: verdicts, next tries,
 * escalations. out NULL: nothing (the decisions were dropped). */
void sm_heal_observe(struct sm_swarm *sw, sm_decisions *out, size_t from);
/* A task event (the retried task's fate). Cheap when no retry is open. */
void sm_heal_on_task(struct sm_swarm *sw, const sm_task_event *ev);
/* An agent's lifecycle event (a restart's re-registration). */
void sm_heal_on_agent(struct sm_swarm *sw, const sm_agent_lifecycle *ev);
/* A consensus round: the group's participants to spare. */
void sm_heal_on_round(struct sm_swarm *sw, const sm_consensus_round *ev);
/* A coordinator's outcome for command `command`; result 1 DONE, 2 FAILED,
 * 3 REJECTED. An unknown command is ignored. */
void sm_heal_on_outcome(struct sm_swarm *sw, uint64_t command, uint32_t result);
/* Whether a preventive command stands for prediction (type, subject): the
 * ledger then counts a withdrawal as pre-empted, not wrong. */
bool sm_heal_preempting(const struct sm_swarm *sw, sm_fail_type type,
                        const char *subject);

#endif
