/*
 * event.h - the swarm's input events as the core sees them.
 *
 * The worker decodes protobuf messages (schema/swarm_medic.proto) into these
 * plain structs and hands them to the core. Strings are borrowed: they must
 * stay valid for the duration of the call that receives the event and are
 * copied by the core if it keeps them. Timestamps are event time in ms since
 * the Unix epoch; the core never reads a clock.
 */
#ifndef SM_EVENT_H
#define SM_EVENT_H

#include <stdbool.h>
#include <stdint.h>

/* Longest agent, source, group or swarm id the core keeps, including NUL.
 * Longer ids are rejected at the edge (dead-lettered), never truncated. */
#define SM_ID_MAX 64

/* Agents per stored page (core/encode.h, "Agent pages"). Four of the
 * largest agent blobs and the key stay under LMDB's largest node on a
 * 4 KiB page (~2 KB), so a page never goes to overflow pages, whose
 * allocation fragments the free list. */
#define SM_AGENT_PAGE 4u

/* Values mirror swarmmedic.v1.TaskEvent.Kind. */
typedef enum sm_task_kind {
    SM_TASK_QUEUED = 1,
    SM_TASK_STARTED = 2,
    SM_TASK_COMPLETED = 3,
    SM_TASK_FAILED = 4,
    SM_TASK_TIMED_OUT = 5,
    SM_TASK_CANCELLED = 6,
} sm_task_kind;

/* Values mirror swarmmedic.v1.Priority. */
typedef enum sm_priority {
    SM_PRIO_CRITICAL = 1,
    SM_PRIO_HIGH = 2,
    SM_PRIO_MEDIUM = 3,
    SM_PRIO_LOW = 4,
    SM_PRIO_BACKGROUND = 5,
} sm_priority;
#define SM_PRIO_COUNT 5

typedef struct sm_task_event {
    int64_t ts_ms;
    const char *agent;          /* may be "" for QUEUED */
    const char *task_type;      /* "" or NULL: no type */
    const char *task_id;        /* "" or NULL: none (healing retries it) */
    sm_task_kind kind;
    sm_priority priority;
    uint64_t tokens_used;
    uint32_t duration_ms;       /* COMPLETED, FAILED, TIMED_OUT */
} sm_task_event;

typedef struct sm_heartbeat {
    int64_t ts_ms;
    const char *agent;
    uint32_t state;             /* swarmmedic.v1.Heartbeat.State */
    uint32_t inflight;
    uint64_t progress;
} sm_heartbeat;

/* A zero token_budget / agent_quota means "not reported"; has_pending false
 * means the sample carries no queue figures. */
typedef struct sm_resource_sample {
    int64_t ts_ms;
    const char *source;
    uint64_t token_budget;
    uint64_t tokens_used;
    uint64_t memory_used;
    uint64_t memory_limit;
    bool has_pending;
    uint32_t pending[SM_PRIO_COUNT];    /* index priority - 1 */
    uint32_t active_agents;
    uint32_t agent_quota;
} sm_resource_sample;

/* Values mirror swarmmedic.v1.ConsensusRound.Outcome. */
typedef enum sm_round_outcome {
    SM_ROUND_OK = 1,
    SM_ROUND_TIMEOUT = 2,
    SM_ROUND_FAILED = 3,
} sm_round_outcome;

typedef struct sm_consensus_round {
    int64_t ts_ms;
    const char *group;
    sm_round_outcome outcome;
    uint32_t duration_ms;
    uint32_t participants;
    uint32_t quorum;
} sm_consensus_round;

typedef struct sm_agent_lifecycle {
    int64_t ts_ms;
    const char *agent;
    bool registered;            /* false: unregistered */
    bool dynamic;
} sm_agent_lifecycle;

#endif
