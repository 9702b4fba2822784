/*
 * decision.h - what the core concludes, and the buffer it concludes into.
 *
 * Every module of the core that decides something (bottleneck detectors
 * now; failure detection, prediction and healing beside them later)
 * appends an sm_decision to a caller-owned sm_decisions buffer during an
 * sm_swarm_on_*() call. The core never publishes: the worker encodes and
 * sends each decision after the call returns, in buffer order, which is
 * the deterministic order the core decided them in.
 *
 * A decision carries everything the core itself knows about it: its id,
 * the swarm, what it is about (agent, source or group), the event time it
 * was taken, and its evidence: which input signal it rests on (kind, the
 * entity's id and that input's event time) and the window it looked at.
 * The worker turns the evidence into the input subject
 * swarm.<swarm>.<signal>.<id>; the core knows nothing of subjects.
 *
 * Decision ids are minted in one place, sm_decision_mint(): FNV-1a over the
 * fields that make a decision the same decision (same decision, same id,
 * so a re-derived decision carries the same Nats-Msg-Id). Those fields
 * do not tell apart two episodes of one kind raised in the same
 * millisecond (raised, resolved, raised again on inputs stamped alike),
 * nor two severity changes of one episode in one millisecond: each swarm
 * keeps an sm_minter that numbers such repeats, so distinct decisions get
 * distinct ids, and the same input sequence the same ids.
 *
 * Strings inside a decision are copied (ids) or static (reason, metric
 * names): a decision stays valid after the call that produced it, until
 * the buffer is cleared or freed.
 *
 * Thread safety: none; one buffer per thread.
 */
#ifndef SM_DECISION_H
#define SM_DECISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "status.h"

#define SM_MAX_METRICS 6

/* What kind of decision. */
typedef enum sm_decision_kind {
    SM_DEC_BOTTLENECK = 1,
    SM_DEC_FAILURE = 2,
    SM_DEC_PREDICTION = 3,
    SM_DEC_HEAL = 4,            /* a healing command (heal.h) */
    SM_DEC_VERDICT = 5,         /* what became of one */
} sm_decision_kind;

typedef enum sm_bn_type {
    SM_BN_TOKEN_EXHAUSTION = 1,
    SM_BN_QUOTA_EXCEEDED = 2,
    SM_BN_SLOW_AGENT = 3,
    SM_BN_QUEUE_BACKLOG = 4,
    SM_BN_CONSENSUS_TIMEOUT = 5,
} sm_bn_type;               /* values mirror swarmmedic.v1.BottleneckType */
#define SM_BN_COUNT 5

/* Failure types the core detects; values mirror swarmmedic.v1.FailureType
 * (the reference's other values are not emitted: schema comment). */
typedef enum sm_fail_type {
    SM_FAIL_AGENT_DOWN = 1,
    SM_FAIL_TASK_TIMEOUT = 3,
    SM_FAIL_TOKEN_EXHAUSTION = 5,
    SM_FAIL_MEMORY_EXHAUSTION = 6,
    SM_FAIL_QUORUM_LOSS = 8,
    SM_FAIL_AGENT_STUCK = 10,
    SM_FAIL_QUEUE_OVERFLOW = 11,
} sm_fail_type;
#define SM_FAIL_MAX 11          /* highest value, for tables indexed by it */

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

/* The input signal a decision rests on; values mirror the worker's input
 * kinds, and sm_signal_str() gives the subject token. */
typedef enum sm_signal {
    SM_SIG_NONE = 0,
    SM_SIG_TASK = 1,
    SM_SIG_HEARTBEAT = 2,
    SM_SIG_RESOURCE = 3,
    SM_SIG_CONSENSUS = 4,
    SM_SIG_AGENT = 5,
    SM_SIG_OUTCOME = 6,
} sm_signal;

/* Static strings: "token_exhaustion", "quota_exceeded", "slow_agent",
 * "queue_backlog", "consensus_timeout"; "unknown" otherwise. These are the
 * <type> token of the output subject. */
const char *sm_bn_type_str(sm_bn_type t);
/* Static strings, the <failure_type> token of the output subject:
 * "agent_down", "agent_stuck", "task_timeout", "quorum_loss",
 * "token_exhaustion", "memory_exhaustion", "queue_overflow"; "unknown"
 * otherwise. */
const char *sm_fail_type_str(sm_fail_type t);
/* "low", "medium", "high", "critical". */
const char *sm_severity_str(sm_severity s);
/* "raised", "updated", "resolved". */
const char *sm_transition_str(sm_transition_kind k);
/* "task", "heartbeat", "resource", "consensus", "agent", "outcome"; "" for
 * SM_SIG_NONE and unknown values. */
const char *sm_signal_str(sm_signal s);
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

/* The input a decision rests on, and the window it was judged over. */
typedef struct sm_evidence {
    sm_signal signal;           /* SM_SIG_NONE: no input (never today) */
    char id[SM_ID_MAX];         /* agent, source or group of that input */
    int64_t ts_ms;              /* event time of that input */
    int64_t window_start_ms;
    int64_t window_end_ms;
} sm_evidence;

/* A bottleneck episode's change. */
typedef struct sm_bottleneck {
    sm_bn_type type;
    sm_transition_kind transition;
    sm_severity severity;       /* at this transition (last one, if RESOLVED) */
    double impact;
    int64_t raised_at_ms;       /* event time the episode was raised */
    const char *reason;         /* static: "token_usage", "active_agents",
                                   "duration_ratio", "success_rate",
                                   "pending_tasks", "timeout_rate",
                                   "cleared", "no_data" */
} sm_bottleneck;

/* A failure's change: raised when detected, resolved when over (a failure
 * has no UPDATED: its severity is fixed by its type). */
typedef struct sm_failure {
    sm_fail_type type;
    sm_transition_kind transition;  /* SM_TR_RAISED or SM_TR_RESOLVED */
    sm_severity severity;
    int64_t raised_at_ms;       /* event time the failure was raised */
    const char *reason;         /* static: "heartbeats_stopped",
                                   "no_progress", "timed_out",
                                   "below_quorum", "budget_spent",
                                   "memory_limit", "pending_critical";
                                   resolving: "heartbeat_back",
                                   "unregistered", "task_ended",
                                   "quorum_back", "recovered",
                                   "no_data" */
    char task[SM_ID_MAX];       /* task_timeout raised: the task; else "" */
} sm_failure;

/* Where a prediction comes from; values mirror Prediction.Source. */
typedef enum sm_pred_source {
    SM_SRC_PATTERN = 1,
    SM_SRC_RESOURCE_TREND = 2,
    SM_SRC_AGENT_HEALTH = 3,
    SM_SRC_QUEUE_GROWTH = 4,
    SM_SRC_BOTTLENECK = 5,
} sm_pred_source;
#define SM_SRC_COUNT 5

/* A prediction's change; values mirror Prediction.Transition. */
typedef enum sm_pred_transition {
    SM_PRED_RAISED = 1,
    SM_PRED_UPDATED = 2,        /* the estimate moved materially */
    SM_PRED_WITHDRAWN = 3,      /* the trend turned */
    SM_PRED_FULFILLED = 4,      /* the failure it forecast was raised */
} sm_pred_transition;

/* "pattern", "resource_trend", "agent_health", "queue_growth",
 * "bottleneck"; "unknown" otherwise. */
const char *sm_pred_source_str(sm_pred_source s);
/* "raised", "updated", "withdrawn", "fulfilled". */
const char *sm_pred_transition_str(sm_pred_transition t);

/* A forecast of a failure. */
typedef struct sm_prediction {
    sm_fail_type type;          /* the failure forecast */
    sm_pred_transition transition;
    sm_pred_source source;
    double confidence;          /* 0..1 (0 when withdrawn) */
    int64_t expected_in_ms;     /* from at_ms to the failure */
    int64_t raised_at_ms;
    const char *reasoning;      /* static */
    const char *action;         /* static: the recommended action */
} sm_prediction;

/* Healing actions; values mirror HealingCommand.Action. */
typedef enum sm_heal_action {
    SM_ACT_RESTART = 1,
    SM_ACT_RETRY = 2,
    SM_ACT_REBALANCE = 3,
    SM_ACT_QUORUM = 4,
    SM_ACT_CUSTOM = 5,
    SM_ACT_ESCALATE = 6,
} sm_heal_action;
#define SM_ACT_COUNT 6

/* Values mirror the schema's Autonomy. */
typedef enum sm_autonomy {
    SM_AUTO_OBSERVE = 1,        /* logged only */
    SM_AUTO_RECOMMEND = 2,      /* published as advice */
    SM_AUTO_ACT = 3,            /* published to be carried out */
} sm_autonomy;

#define SM_STEP_MAX 32
#define SM_CMD_STEPS 4

/* A healing command (heal.h). */
typedef struct sm_heal_cmd {
    sm_heal_action action;
    sm_autonomy autonomy;
    sm_decision_kind answers_kind;  /* failure, prediction or bottleneck */
    int type;                   /* sm_fail_type answered or forecast (0 for
                                   a bottleneck: bn_type says which) */
    int bn_type;                /* sm_bn_type for a bottleneck, else 0 */
    uint32_t attempt;           /* 1-based try of the episode */
    bool preventive;
    int64_t deadline_ms;        /* event time to be verified by */
    uint64_t answers;           /* id of the decision it answers */
    uint64_t escalates;         /* ESCALATE: the command that failed */
    const char *strategy;       /* static: the strategy's name */
    const char *custom;         /* static: the custom action, or NULL */
    const char *reason;         /* static: why (ESCALATE: "strategies_spent",
                                   "restart_cap", "quorum_guard") */
    char agent[SM_ID_MAX];
    char task[SM_ID_MAX];
    char target[SM_ID_MAX];
    size_t n_steps;
    char steps[SM_CMD_STEPS][SM_STEP_MAX];
} sm_heal_cmd;

/* Values mirror HealingVerdict.Verdict. */
typedef enum sm_verdict_kind {
    SM_VERDICT_VERIFIED = 1,
    SM_VERDICT_FAILED = 2,
    SM_VERDICT_PREEMPTED = 3,
    SM_VERDICT_SUPERSEDED = 4,
} sm_verdict_kind;

/* What became of a command. */
typedef struct sm_heal_verdict {
    sm_verdict_kind verdict;
    sm_heal_action action;
    uint64_t command;
    uint64_t answers;
    int type;                   /* sm_fail_type, 0 for a bottleneck */
    uint32_t attempt;
    uint32_t outcome;           /* HealingOutcome.Result, 0: none came */
    int64_t first_evidence_ms;
    int64_t detected_ms;
    int64_t commanded_ms;
    int64_t recovered_ms;       /* VERIFIED, PREEMPTED: when; else 0 */
    const char *strategy;       /* static */
    const char *custom;         /* static or NULL */
    const char *reason;         /* static: "failure_resolved",
                                   "task_completed", "prediction_withdrawn",
                                   "outcome_failed", "outcome_rejected",
                                   "deadline_passed", "retry_failed",
                                   "failure_came", "agent_gone", ... */
    char agent[SM_ID_MAX];
} sm_heal_verdict;

/* "verified", "failed", "preempted", "superseded". */
const char *sm_verdict_str(sm_verdict_kind v);

typedef struct sm_decision {
    sm_decision_kind kind;
    uint64_t id;                /* minted by sm_decision_mint() */
    int64_t at_ms;              /* event time of the decision */
    char swarm[SM_ID_MAX];
    char subject[SM_ID_MAX];    /* agent (slow agent; agent failures),
                                   source (token, quota, queue, memory) or
                                   group (consensus, quorum); may be "" */
    sm_evidence evidence;
    size_t n_metrics;
    sm_metric metrics[SM_MAX_METRICS];
    union {
        sm_bottleneck bn;       /* kind SM_DEC_BOTTLENECK */
        sm_failure fail;        /* kind SM_DEC_FAILURE */
        sm_prediction pred;     /* kind SM_DEC_PREDICTION */
        sm_heal_cmd heal;       /* kind SM_DEC_HEAL */
        sm_heal_verdict verdict;    /* kind SM_DEC_VERDICT */
    };
} sm_decision;

/* What a swarm remembers to keep its decision ids distinct (in memory
 * only; zeroed it is empty). The ids minted at the latest event time:
 * an id already taken in that millisecond is taken again only by a
 * repeat, which gets an ordinal mixed in. An episode opened as a repeat
 * (raised in the same ms as an earlier one of its key) keeps its ordinal
 * until it closes, so its later decisions differ from the earlier
 * episode's too. Past SM_MINT_IDS ids in one ms, further ids of that ms
 * mix in their rank instead. */
#define SM_MINT_IDS 64
#define SM_MINT_OPEN 16
typedef struct sm_minter {
    int64_t at_ms;              /* the event time ids[] are for */
    uint32_t n;                 /* ids minted at at_ms */
    uint32_t n_open;
    uint64_t ids[SM_MINT_IDS];
    uint64_t open_key[SM_MINT_OPEN];    /* episodes opened as repeats */
    uint32_t open_ord[SM_MINT_OPEN];    /* ... and their ordinals */
} sm_minter;

/* Sets d->id from the fields that identify the decision. For a bottleneck:
 * FNV-1a of swarm, type, subject, raised_at_ms, transition (and at_ms,
 * severity for UPDATED). For a failure: the kind, swarm, type, subject,
 * raised_at_ms and transition. For a prediction: the same and at_ms.
 * With m (the swarm's minter), a repeat in one millisecond of an id or of
 * an episode gets its ordinal mixed in (see sm_minter); the first of each
 * keeps the formula's id. m NULL: the formula alone. Deterministic: the
 * same decisions minted in the same order get the same ids. */
void sm_decision_mint(sm_minter *m, sm_decision *d);

/* Appends a metric; ignored past SM_MAX_METRICS. */
void sm_decision_metric(sm_decision *d, const char *name, double value,
                        double threshold, uint32_t samples);

/* A caller-owned, growable list of decisions. Zero-initialised (or
 * sm_decisions_init) it is empty; it grows by doubling when an append
 * finds it full and keeps its capacity across sm_decisions_clear(), so a
 * warm buffer allocates nothing per event. */
typedef struct sm_decisions {
    sm_decision *v;
    size_t n;                   /* decisions held */
    size_t cap;
    uint64_t lost;              /* appends dropped because growing failed */
} sm_decisions;

void sm_decisions_init(sm_decisions *ds);
/* Forgets the decisions held (capacity kept). */
void sm_decisions_clear(sm_decisions *ds);
/* Frees the storage; the buffer is empty and usable again. */
void sm_decisions_free(sm_decisions *ds);
/* A new, zeroed decision at the end, or NULL (ds NULL, or out of memory:
 * ds->lost is counted). Valid until the next push, clear or free. */
sm_decision *sm_decisions_push(sm_decisions *ds);

#endif
