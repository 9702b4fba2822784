/*
 * world.h - the realistic simulated world: swarms as real ones behave
 * (SPEC.md, "What real swarms look like"), with parameterised, partial and
 * gradual faults. It is the model the scenarios (tests/scenarios/, loaded
 * by scenario.h) run on; the tidy generator of simgen.h stays as the
 * "simple" profile for the benchmark and the golden recordings.
 *
 * Use it through simgen.h: sm_sim_create_world() gives an sm_sim whose
 * sm_sim_next() yields this world's stream (subjects and payloads as in
 * SPEC.md's bus contract).
 *
 * The model, per swarm (every figure a parameter of sm_wswarm, defaults in
 * brackets):
 *   - agents a0..aN-1 [40], registered at the start (static), plus
 *     `reserve` static agents [0] that take work only when more than
 *     `reserve_pending` [20] tasks wait, so they idle for minutes, plus up
 *     to `max_dynamic` dynamic agents [max(4, N/4)] the autoscaler adds and
 *     removes (AgentLifecycle dynamic=true); agent ids are shared between
 *     swarms (every swarm has an a0), as are group names (g0, g1, ...).
 *   - task types with their own lognormal durations [search 3 s, sigma 0.45,
 *     weight 5, 800 tokens; summarize 8 s, 0.5, 3, 2500; codegen 30 s,
 *     0.55, 1.5, 9000; review 12 s, 0.5, 2, 3000], divided by the swarm's
 *     `speed` [1.0]; rare outliers (`outlier_rate` [0.004]) take 10-30x
 *     the draw. TaskEvent.task_type names the type.
 *   - independent failures at `fail_rate` [0.03] per task, no spacing: a
 *     failed task ends after 10-80% of its duration with a share of its
 *     tokens.
 *   - Poisson arrivals at `arrival_per_s` [0: `utilisation` [0.6] of the
 *     swarm's capacity, agents x concurrency / mean duration], plus bursts
 *     (`burst_every_s` [150] mean gap, exponential; `burst_tasks` [15], half
 *     to 1.5x, within 5 s), into a priority queue (CRITICAL first, FIFO
 *     within a priority); an agent runs `concurrency` [1] tasks at once, the
 *     agent idle longest gets the next one. QUEUED is published when the
 *     task is assigned (on the agent's subject), STARTED 20-300 ms later;
 *     the wait shows in ResourceSample.pending by priority.
 *   - heartbeats every `heartbeat_s` [5] +- `heartbeat_jitter_s` [0.8],
 *     each missed with `heartbeat_miss` [0.01]; progress counts tokens
 *     done and freezes for 10-40 s during tool calls (`stall_rate` [0.35]
 *     of tasks over 12 s).
 *   - a ResourceSample from "scheduler" every `resource_s` [1]: token
 *     budget and usage, memory with a garbage-collection saw-tooth
 *     (`memory_gb` [3] of `memory_limit_gb` [8]), pending by priority,
 *     active_agents = registered agents, agent_quota (`quota` [N + reserve
 *     + max_dynamic]).
 *   - `groups` [2] consensus groups g0.. of `group_size` [5] (quorum
 *     size/2+1), each with a round every `round_s` [3] +-20%, and
 *     independent timeouts at `timeout_rate` [0.02].
 *   - the autoscaler, every `scale_every_s` [10]: more than
 *     `scale_up_pending` [30] waiting -> adds 1 + (pending-30)/20 dynamic
 *     agents within the quota; fewer than `scale_down_pending` [5] and 30 s
 *     since the last change -> removes one idle dynamic agent.
 *   - the token budget `budget` [0: 30 minutes of expected use], usage
 *     starting at 35%; when usage passes `topup_at` [0.68] of the budget,
 *     an operator adds `topup_frac` [0.5] of the initial budget 20-90 s
 *     later.
 *
 * Faults (sm_wfault; times relative to the start; intensity x(t) is 0
 * before onset, rises linearly over ramp (x^2 for shape "accelerating"),
 * holds 1 until end, 0 after; end 0 = the end of the run):
 *   slow_agent        listed agents' new tasks take 1 + (magnitude-1)x
 *                     times longer (magnitude: the factor).
 *   failing_agent     listed agents fail tasks with probability
 *                     magnitude x (at least the base rate).
 *   slow_fraction     `fraction` of the swarm (or the listed agents),
 *                     spread over the ids, slowed like slow_agent.
 *   token_burn        extra consumption of magnitude x the swarm's normal
 *                     token rate, times x; operators do not top up while
 *                     it lasts; `stop_at` (0..1, 0 none): the burn stops
 *                     when usage reaches that share of the budget; at the
 *                     end an operator tops the budget up to 2x the usage.
 *   memory_leak       magnitude MB per minute that garbage collection does
 *                     not reclaim (the saw-tooth climbs); capped at 99% of
 *                     the limit; freed at the end.
 *   queue_surge       arrivals times 1 + magnitude x; the queue drains on
 *                     its own or grows, depending on capacity.
 *   quota_saturation  a surge (magnitude as queue_surge) while the
 *                     autoscaler scales up from 5 waiting tasks: the quota
 *                     fills.
 *   consensus_degradation  the listed groups (all when none) time out with
 *                     probability magnitude x.
 *   quorum_loss       the listed groups (all when none) have quorum-1
 *                     participants: rounds time out (70%) or fail.
 *   stuck_agent       listed agents' task in flight at onset (or their
 *                     next) never ends; heartbeats go on, BUSY, progress
 *                     frozen; at end it is reported TIMED_OUT.
 *   degrading_agent   listed agents slow toward magnitude and fail up to
 *                     40% more over the ramp (heartbeat DEGRADED), then die
 *                     at onset + ramp (no heartbeats, tasks in flight
 *                     reported TIMED_OUT); at end (if within the run) they
 *                     re-register.
 *   crash_restart     listed agents die at onset and re-register at end.
 *
 * The coordinator (sm_world_heal, below): the world also plays the
 * coordinator that swarm-medic's HealingCommands are addressed to
 * (issue 9). A command handed in at the world's current event time is
 * carried out after a delay (sm_wcoord: mean +- jitter), succeeds, fails
 * or is rejected at the configured rates (draws from a coordinator stream
 * of the seed, apart from the swarms' streams), and its HealingOutcome
 * comes out of sm_world_next() in event order on
 * swarm.<s>.outcome.<command_id> when it finishes. DONE has an effect,
 * FAILED and REJECTED none:
 *   agent_restart      the agent unregisters; its task in flight is
 *                      CANCELLED and queued again (attempt + 1); it
 *                      registers again SM_WCOORD_RESTART_MS later, healthy:
 *                      the agent faults begun before the restart (slow,
 *                      failing, slow_fraction, stuck, degrading,
 *                      crash_restart) no longer touch it. The outcome
 *                      follows the re-registration.
 *   task_retry         task_id (its task in flight, or one of the last
 *                      SM_WCOORD_RECENT that FAILED or TIMED_OUT) is queued
 *                      again (attempt + 1), straight to target_agent when
 *                      it is registered and free, else by priority.
 *   resource_rebalance per step: pause_low_priority (LOW and BACKGROUND
 *                      wait SM_WCOORD_PAUSE_MS), reallocate_budget (the
 *                      budget grows to twice the usage; token burns stop),
 *                      free_memory (leaks stop, the leaked memory is
 *                      reclaimed), scale_up=N (N dynamic agents within the
 *                      quota).
 *   quorum_recovery    spawn_agents=N dynamic agents register (within the
 *                      quota); the group named by `subject` ("g<i>") is
 *                      free of its quorum_loss faults from then on.
 *   custom drain_agent (worker/strategies.c's example) no new work for
 *                      the agent; once its task in flight ends (at once
 *                      when it has none) it is restarted as above, and the
 *                      outcome follows the re-registration.
 *   escalate           counted; nothing done, no outcome (a human's job).
 *   other custom       REJECTED, "unknown action ...".
 * A RECOMMEND command is advice: carried out only when take_recommend;
 * OBSERVE never is. A command id seen before is a duplicate: counted, not
 * carried out again. A restart (or drain) of a live member of a consensus group (group
 * g holds static agents g*group_size .. +group_size-1) whose participants,
 * less the members being restarted, leave nothing above quorum is counted
 * as an action below quorum (it is still carried out, as a coordinator
 * that trusts its medic would). With no command handed in, the stream is
 * byte for byte what it was without the coordinator.
 *
 * Determinism: splitmix64 per swarm, integer and basic IEEE arithmetic
 * (own exp and log, no libm): the same configuration gives the same bytes
 * on every machine. Memory: allocation at creation, and when a queue, the
 * heap or the free-slot ring must grow; none per event.
 */
#ifndef SM_WORLD_H
#define SM_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define SM_WORLD_MAX_SWARMS 16
#define SM_WORLD_MAX_TYPES 8
#define SM_WORLD_MAX_FAULTS 64
#define SM_WORLD_FAULT_AGENTS 16
#define SM_WORLD_MAX_GROUPS 16
#define SM_WORLD_ID 24

typedef struct sm_wtask_type {
    char name[SM_WORLD_ID];
    double median_s;
    double sigma;               /* of the log of the duration */
    double weight;              /* share of arrivals */
    double tokens;              /* mean tokens used */
} sm_wtask_type;

typedef struct sm_wswarm {
    char id[SM_WORLD_ID];       /* "s<i>" */
    uint32_t agents, reserve, concurrency, max_dynamic, quota;
    uint32_t reserve_pending;
    double speed, utilisation, arrival_per_s;
    double burst_every_s, burst_tasks;
    double fail_rate, outlier_rate;
    size_t n_types;
    sm_wtask_type types[SM_WORLD_MAX_TYPES];
    uint32_t groups, group_size;
    double round_s, timeout_rate;
    double heartbeat_s, heartbeat_jitter_s, heartbeat_miss, stall_rate;
    double resource_s;
    double scale_every_s, scale_up_pending, scale_down_pending;
    double budget, topup_at, topup_frac;
    double memory_gb, memory_limit_gb;
} sm_wswarm;

typedef enum sm_wfault_type {
    SM_WF_SLOW_AGENT = 1,
    SM_WF_FAILING_AGENT,
    SM_WF_SLOW_FRACTION,
    SM_WF_TOKEN_BURN,
    SM_WF_MEMORY_LEAK,
    SM_WF_QUEUE_SURGE,
    SM_WF_QUOTA_SATURATION,
    SM_WF_CONSENSUS_DEGRADATION,
    SM_WF_QUORUM_LOSS,
    SM_WF_STUCK_AGENT,
    SM_WF_DEGRADING_AGENT,
    SM_WF_CRASH_RESTART,
} sm_wfault_type;
#define SM_WF_TYPES 12

typedef struct sm_wfault {
    sm_wfault_type type;
    uint32_t swarm;             /* index into swarms */
    int64_t onset_ms, ramp_ms, end_ms;  /* relative; end 0: end of run */
    double magnitude;
    double fraction;            /* slow_fraction */
    double stop_at;             /* token_burn */
    bool accelerating;          /* shape */
    size_t n_agents;            /* agent indices (a<i> -> i) */
    uint32_t agents[SM_WORLD_FAULT_AGENTS];
    size_t n_groups;            /* group indices (g<i> -> i) */
    uint32_t groups[SM_WORLD_FAULT_AGENTS];
} sm_wfault;

/* The simulated coordinator (see "The coordinator" above). */
typedef struct sm_wcoord {
    double delay_mean_s;        /* [2] receipt to finish */
    double delay_jitter_s;      /* [1] uniform +-, under the mean */
    double fail_rate;           /* [0] FAILED, no effect */
    double reject_rate;         /* [0] REJECTED, no effect */
    bool take_recommend;        /* [false] carry out RECOMMEND commands */
} sm_wcoord;

#define SM_WCOORD_RESTART_MS 2000   /* unregistered to registered again */
#define SM_WCOORD_PAUSE_MS 120000   /* pause_low_priority lasts */
#define SM_WCOORD_RECENT 256        /* ended tasks task_retry can find */

typedef struct sm_world_config {
    uint64_t seed;
    int64_t start_ms;           /* SM_SIM_DEFAULT_START_MS */
    int64_t duration_ms;        /* > 0 */
    size_t n_swarms;
    sm_wswarm swarms[SM_WORLD_MAX_SWARMS];
    size_t n_faults;
    sm_wfault faults[SM_WORLD_MAX_FAULTS];
    sm_wcoord coord;            /* used only when commands are handed in */
} sm_world_config;

/* Defaults for one swarm (the bracketed figures above), id "s<index>". */
void sm_wswarm_default(sm_wswarm *s, uint32_t index);

/* The coordinator's defaults (bracketed above). */
void sm_wcoord_default(sm_wcoord *c);

/* One default swarm, 15 minutes, seed 1, no faults, the default
 * coordinator. */
void sm_world_config_default(sm_world_config *cfg);

/* SM_OK or SM_ERR_CONFIG with a sentence in why. */
sm_status sm_world_config_validate(const sm_world_config *cfg, char *why,
                                   size_t cap);

/* "slow_agent", ...; "unknown". And the reverse (0 if unknown). */
const char *sm_wfault_type_str(sm_wfault_type t);
sm_wfault_type sm_wfault_type_parse(const char *s);

/* Intensity of fault f at relative time rel_ms (0..1); run_ms is the
 * run's duration (for end 0). */
double sm_wfault_intensity(const sm_wfault *f, int64_t rel_ms,
                           int64_t run_ms);

/* Whether fault f affects agent index a of its swarm (listed, or in the
 * slowed fraction of n agents). */
bool sm_wfault_has_agent(const sm_wfault *f, uint32_t a, uint32_t n);

/* Mean task duration (seconds, before outliers and speed) and mean tokens
 * per task of a swarm's mix. */
double sm_wswarm_mean_task_s(const sm_wswarm *s);

/* Deterministic exp and natural log (basic IEEE arithmetic only). */
double sm_world_exp(double x);
double sm_world_log(double x);

/* The gauges of a swarm as of its latest ResourceSample (for label
 * derivation and tests). */
typedef struct sm_world_gauges {
    double token_ratio;         /* used / budget */
    uint32_t pending;
    uint32_t active, quota;
    double memory_ratio;        /* used / limit */
} sm_world_gauges;

typedef struct sm_world sm_world;
struct sm_sim_msg;

sm_status sm_world_create(sm_world **out, const sm_world_config *cfg);
void sm_world_destroy(sm_world *w);
/* As sm_sim_next(). */
bool sm_world_next(sm_world *w, struct sm_sim_msg *out);
sm_status sm_world_status(const sm_world *w);
uint64_t sm_world_count(const sm_world *w);
/* Expected tasks per second over all swarms, without faults or bursts. */
double sm_world_task_rate(const sm_world *w);
void sm_world_gauges_of(const sm_world *w, uint32_t swarm,
                        sm_world_gauges *g);

/* ------------------------------------------------------- the coordinator */

#define SM_WHEAL_STEPS 8
#define SM_WHEAL_STEP 32
/* HealingCommand.Action values 0..6 (0: unspecified or out of range). */
#define SM_WHEAL_ACTIONS 7

/* A HealingCommand as the coordinator reads it (sm_wheal_decode). */
typedef struct sm_wheal {
    char id[24];                /* decision.decision_id */
    char swarm[SM_WORLD_ID];
    int64_t at_ms;              /* decision.decided_at_ms */
    int action;                 /* HealingCommand.Action */
    char custom[SM_WHEAL_STEP];
    char agent[SM_WORLD_ID];
    char task_id[64];
    char target[SM_WORLD_ID];   /* target_agent */
    char subject[SM_WORLD_ID];
    uint32_t attempt;
    int autonomy;               /* Autonomy: 1 observe, 2 recommend, 3 act */
    size_t n_steps;
    char steps[SM_WHEAL_STEPS][SM_WHEAL_STEP];
    int64_t deadline_ms;
} sm_wheal;

/* Decodes a HealingCommand payload into *out (strings truncated to fit,
 * steps beyond SM_WHEAL_STEPS dropped). SM_ERR_DECODE when it does not
 * decode or has no decision header. */
sm_status sm_wheal_decode(const void *data, size_t len, sm_wheal *out);

/* What the coordinator was handed and did, for a judge. */
typedef struct sm_world_heal_stats {
    uint64_t received;          /* every command, duplicates included */
    uint64_t by_action[SM_WHEAL_ACTIONS];
    uint64_t duplicates;        /* an id seen before */
    uint64_t advice;            /* OBSERVE, or RECOMMEND not taken */
    uint64_t escalations;
    uint64_t unknown_swarm;     /* a swarm the world does not have */
    uint64_t done, failed, rejected;    /* outcomes decided */
    uint64_t below_quorum;      /* restarts of a needed group member */
} sm_world_heal_stats;

/* Hands one command to the coordinator at the world's current event time
 * (the last message's, or cmd->at_ms if later); its effect and its
 * HealingOutcome come later from sm_world_next(). Errors: SM_ERR_INVALID
 * (NULL), SM_ERR_NOMEM. A command the coordinator will not carry out
 * (duplicate, advice, escalation, unknown swarm) is counted and SM_OK. */
sm_status sm_world_heal(sm_world *w, const sm_wheal *cmd);

/* The counters so far. */
void sm_world_heal_stats_of(const sm_world *w, sm_world_heal_stats *out);

#endif
