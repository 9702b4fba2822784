/*
 * scale.h - how many agents a swarm should run (SPEC capability 5): a
 * scaling policy on queue depth, damped so that it never flaps.
 *
 * The reference: up when more than 30 tasks are pending, one agent per 20
 * pending over that; down when fewer than 10 are pending, one idle
 * dynamic agent at a time; at least 1, at most 50 agents (and the
 * swarm's quota); 20 s of cooldown after a change. Beyond it (and where
 * it differs):
 *   - down sheds half the idle dynamic agents (at least one) per step:
 *     with the window below a step comes at most once per window, and
 *     one agent a minute would keep a swarm over-provisioned for an hour
 *     after a burst;
 *   - a stabilisation window: the swarm scales down only to the HIGHEST
 *     target recommended over the last stabilise_ms, so a queue that
 *     dips between two bursts does not shed the agents the next burst
 *     needs (up is taken at once: a backlog costs more than an agent);
 *   - a token gate: no scaling up while token exhaustion is forecast or
 *     raised (more agents would burn the rest of the budget faster);
 *   - down only removes idle dynamic agents (never static ones, never
 *     one with a task in flight), and never below min_agents.
 *
 * sm_scale_step is a pure function of the configuration, the caller's
 * sm_scale_state (plain data, one per swarm) and one sample; time is the
 * sample's event time. Nothing here allocates, logs or reads a clock.
 */
#ifndef SM_SCALE_H
#define SM_SCALE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct sm_scale_config {
    uint32_t up_pending;        /* 30: scale up above this */
    uint32_t per_agent;         /* 20: one agent per this many over it */
    uint32_t down_pending;      /* 10: scale down below this */
    uint32_t min_agents;        /* 1 */
    uint32_t max_agents;        /* 50 */
    int64_t cooldown_ms;        /* 20 s between two changes */
    int64_t stabilise_ms;       /* 60 s: down to the highest recent target */
} sm_scale_config;

void sm_scale_config_default(sm_scale_config *c);

/* One sample of what the swarm looks like (event time ts_ms). */
typedef struct sm_scale_input {
    int64_t ts_ms;
    uint32_t pending;           /* tasks waiting */
    uint32_t active;            /* agents running */
    uint32_t quota;             /* agent quota; 0: none reported */
    uint32_t idle_dynamic;      /* dynamic agents with nothing in flight */
    bool tokens_short;          /* token exhaustion forecast or raised */
} sm_scale_input;

#define SM_SCALE_HISTORY 32

/* Per swarm, owned by the caller; zero it to start. */
typedef struct sm_scale_state {
    int64_t last_change_ms;     /* event time of the last UP or DOWN; 0: none */
    uint32_t n;                 /* recommendations held (a ring) */
    uint32_t head;
    int64_t at[SM_SCALE_HISTORY];
    uint32_t want[SM_SCALE_HISTORY];
} sm_scale_state;

typedef enum sm_scale_dir {
    SM_SCALE_HOLD = 0,
    SM_SCALE_UP = 1,            /* values mirror ScalingDecision.Direction */
    SM_SCALE_DOWN = 2,
} sm_scale_dir;

typedef struct sm_scale_decision {
    sm_scale_dir dir;
    uint32_t current, target;
    uint32_t remove;            /* DOWN: idle dynamic agents to remove */
    const char *reason;         /* static: "queue_backlog", "queue_drained",
                                   "cooldown", "token_forecast",
                                   "stabilising", "at_max", "no_idle_agent",
                                   "steady" */
    int64_t cooldown_until_ms;
} sm_scale_decision;

/* Takes one sample: records its recommendation and says what to do.
 * Returns true for a change (UP or DOWN: publish it; the state then
 * counts it for the cooldown), false for a hold (out->reason says why). */
bool sm_scale_step(const sm_scale_config *c, sm_scale_state *s,
                   const sm_scale_input *in, sm_scale_decision *out);

#endif
