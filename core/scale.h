/*
 * scale.h - how many agents a swarm should run (SPEC capability 5): a
 * scaling policy on queue depth and drain time, damped so that it does
 * not flap.
 *
 * The reference: up when more than 30 tasks are pending, one agent per 20
 * pending over that; down when fewer than 10 are pending, one idle
 * dynamic agent at a time; at least 1, at most 50 agents (and the
 * swarm's quota); 20 s of cooldown after a change. Those stay the
 * triggers and the limits; the sizing is by the work (Little's law) once
 * the swarm's task figures are known, the reference's before:
 *   - the work: `busy`, agents' worth of tasks in flight at each sample
 *     (from heartbeats), its mean over the stabilisation window and its
 *     exponential mean over about work_ms; a task's cost, task_s = mean
 *     busy x window / tasks finished in it (agent-seconds a task: Little's
 *     law, whatever the agents' concurrency); the queue's growth over the
 *     window (tasks a second, 0 when it shrank);
 *   - UP (more than up_pending waiting): agents = the window's mean work +
 *     task_s x the larger of the growth and the backlog over down_pending
 *     spread over drain_ms (so arrivals that outrun the agents and a
 *     backlog already there are both drained, without counting a burst
 *     twice), and at least the mean work at target_util; an UP whose need
 *     outgrew the previous UP's target may follow it after a quarter of
 *     the cooldown (a burst on a growing surge);
 *   - DOWN (fewer than down_pending waiting): half way down to what the
 *     long mean work needs at target_util, and never below what would
 *     drain the recent peak of the queue (decaying over burst_ms) within
 *     drain_ms: a swarm that has bursts keeps the agents a burst needs,
 *     so the next burst does not scale it up again;
 *   - a stabilisation window: the swarm scales down only to the HIGHEST
 *     target recommended over the last stabilise_ms, only by a tenth of
 *     its agents at least (one agent is not worth a change), and not
 *     within cooldown + stabilise_ms of an UP; up is taken at once (a
 *     backlog costs more than an agent);
 *   - a token gate: no scaling up while token exhaustion is forecast or
 *     raised (more agents would burn the rest of the budget faster);
 *   - down only removes idle dynamic agents (never static ones, never
 *     one with a task in flight), and never below min_agents.
 * Without task figures (input done 0, or less than half a window seen)
 * the reference's rules size the steps: one agent per per_agent over
 * up_pending; half the idle dynamic agents (at least one) under
 * down_pending.
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
    uint32_t per_agent;         /* 20: one agent per this many over it
                                   (without task figures) */
    uint32_t down_pending;      /* 10: scale down below this */
    uint32_t min_agents;        /* 1 */
    uint32_t max_agents;        /* 50 */
    int64_t cooldown_ms;        /* 20 s between two changes */
    int64_t stabilise_ms;       /* 60 s: down to the highest recent target;
                                   also the span of the mean work, the
                                   task cost and the growth */
    int64_t drain_ms;           /* 45 s: the backlog over down_pending
                                   drained within this */
    int64_t work_ms;            /* 120 s: the long mean of the work (the
                                   down target) follows it over about this */
    int64_t burst_ms;           /* 480 s: the queue's recent peak decays
                                   over about this */
    double target_util;         /* 0.8: the share of their time agents
                                   should be busy (SPEC: 70-80%); a value
                                   outside (0, 1] means 0.8 */
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
    double done;                /* tasks finished over the last
                                   stabilise_ms (sm_query_work_of); 0:
                                   unknown, the reference's sizing */
    double busy;                /* agents' worth of tasks in flight now */
} sm_scale_input;

#define SM_SCALE_HISTORY 32

/* Per swarm, owned by the caller; zero it to start. */
typedef struct sm_scale_state {
    int64_t last_change_ms;     /* event time of the last UP or DOWN; 0: none */
    int64_t last_up_ms;         /* of the last UP; 0: none */
    uint32_t last_up_target;    /* its target */
    uint32_t n;                 /* slots held: a ring, one slot per
                                   stabilise_ms/31 of event time, holding
                                   the highest recommendation of that
                                   span, its samples' busy summed and
                                   its latest pending */
    int64_t first_ms;           /* the first sample's event time */
    int64_t long_ms;            /* the latest sample in the long means */
    double busy_long;           /* busy's exponential mean (work_ms) */
    double peak;                /* pending's peak, decaying (burst_ms) */
    uint32_t head;
    uint32_t reserved;
    int64_t at[SM_SCALE_HISTORY];
    uint32_t want[SM_SCALE_HISTORY];
    uint32_t samples[SM_SCALE_HISTORY];
    uint32_t pending[SM_SCALE_HISTORY];
    uint32_t reserved2;
    double busy[SM_SCALE_HISTORY];
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
    /* the figures it was sized on (all 0 without task figures) */
    double busy_mean;           /* agents' worth of work in flight, mean
                                   over the window */
    double busy_long;           /* and over about work_ms */
    double task_s;              /* agent-seconds a task takes */
    double growth;              /* tasks a second the queue grew by */
    double peak;                /* the queue's recent peak */
} sm_scale_decision;

/* Takes one sample: records its recommendation and says what to do.
 * Returns true for a change (UP or DOWN: publish it; the state then
 * counts it for the cooldown), false for a hold (out->reason says why). */
bool sm_scale_step(const sm_scale_config *c, sm_scale_state *s,
                   const sm_scale_input *in, sm_scale_decision *out);

#endif
