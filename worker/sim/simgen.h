/*
 * simgen.h - a deterministic, seeded simulator of multi-agent swarms.
 *
 * Two profiles behind one stream API (sm_sim_next):
 *   - realistic (world.h, sm_sim_create_world(), and the scenarios of
 *     scenario.h): the model of real swarms -- task types of different,
 *     right-skewed durations with outliers, random failures without
 *     spacing, Poisson arrivals with bursts into a priority queue, agents
 *     working one task at a time, jittered and missed heartbeats, stalled
 *     progress, several consensus groups, an autoscaler, budget top-ups,
 *     several swarms sharing ids, and partial, gradual faults. Scenarios
 *     and evaluations use it.
 *   - simple (sm_sim_create(), below): the tidy generator the benchmark
 *     and the golden recordings use; its stream is unchanged, so the
 *     recordings stay byte for byte. Everything documented below is about
 *     this profile.
 *
 * The generator produces the input stream swarm-medic listens to (SPEC.md,
 * "Bus contract"): for M swarms s0..sM-1 of N agents a0..aN-1 each, in event
 * time order, the bus subject, the event time and the protobuf-encoded
 * payload (schema/swarm_medic.proto) of every message. It does no I/O:
 * swarm-sim (worker/sim_main.c) publishes what it yields, tests decode it,
 * benchmarks and golden recordings drive it directly.
 *
 * The stream of one swarm:
 *   - at the start, one AgentLifecycle REGISTERED per agent
 *     (swarm.<s>.agent.<a>);
 *   - a Heartbeat per agent every 5 s (swarm.<s>.heartbeat.<a>), phases
 *     spread over the 5 s;
 *   - tasks arriving at a steady rate, each assigned to an agent and
 *     flowing QUEUED -> STARTED -> COMPLETED (or FAILED, about 3%, never
 *     two within 20 tasks of one agent) on swarm.<s>.task.<a>, durations
 *     1.5-3 s (a product of three bounded uniform factors around 2.1 s:
 *     lognormal-ish, right-skewed, hard-bounded), token usage per task;
 *   - a ResourceSample from source "scheduler" every 1 s: token budget and
 *     usage (usage 0.28..0.63 of the budget, the budget window resets
 *     every 60 s), memory, pending tasks by priority (5..25 in total),
 *     active_agents = N, agent_quota = N + max(4, ceil(N/5)) (N + 4 for
 *     N <= 20; the larger margin keeps N under 90% of the quota);
 *   - a ConsensusRound of group "g0" every 2 s, OK except a rare timeout
 *     (never two within 40 rounds, so no 60 s window sees more than 1 in 30).
 * This baseline never crosses a raise threshold of core/thresholds.h's default
 * configuration.
 *
 * Event rate: `rate` is events per second of event time over all swarms.
 * Heartbeats, resource samples and consensus rounds keep their fixed
 * cadence (N/5 + 1.5 events/s per swarm); the rest of the rate becomes
 * tasks (3 events each), assigned uniformly at random to the agents, which
 * run as many at once as they are given (Heartbeat.inflight shows it). A
 * rate below the fixed cadence yields no tasks.
 *
 * Faults (sm_sim_fault; times relative to the start of the run), each on
 * one swarm, each raising exactly its bottleneck while active and letting
 * it clear afterwards:
 *   token      usage ramps from 0.55 to ~0.96 over the first 40% of the
 *              fault and holds; at the end the budget window resets (~0.28).
 *   quota      active_agents = quota for the first half, quota + 1 for the
 *              second; back to N after.
 *   slow       agent a1 (a0 if N == 1) works 3.5x slower while the fault
 *              is active (a task in flight when it starts or ends is slowed
 *              for that part only); its success rate stays normal. The
 *              bottleneck needs a1 to be a minority of the swarm (N >= 3)
 *              and a task rate giving it >= 5 tasks a minute.
 *   queue      pending ramps to ~250 over the first third and holds;
 *              drains back to the baseline in the 10 s after the fault.
 *   consensus  3 rounds in 10 time out during the fault.
 *
 * Determinism: the same configuration gives the same stream, byte for
 * byte, on any machine: the PRNG is splitmix64 keyed by the seed (one
 * stream per swarm, so adding a swarm does not change the others), all
 * arithmetic is integer or basic IEEE double (no libm), and simultaneous
 * events keep the order they were scheduled in.
 *
 * Memory: sm_sim_create() allocates the per-agent state and an event
 * queue; sm_sim_next() allocates nothing except when the queue of
 * scheduled events must grow (more tasks in flight than ever before).
 * Payloads are packed into one reusable buffer.
 *
 * Thread safety: none; one sm_sim per thread.
 */
#ifndef SM_SIMGEN_H
#define SM_SIMGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "world.h"

#define SM_SIM_MAX_FAULTS 32
/* 2026-01-01T00:00:00Z, the default start of event time. */
#define SM_SIM_DEFAULT_START_MS 1767225600000LL
/* Length of the demo scenario (sm_sim_config_demo). */
#define SM_SIM_DEMO_DURATION_MS (11LL * 60 * 1000)
/* Agent index the slow fault slows (a1), or 0 in one-agent swarms. */
#define SM_SIM_SLOW_AGENT 1u

typedef enum sm_sim_fault_kind {
    SM_SIM_FAULT_TOKEN = 1,
    SM_SIM_FAULT_QUOTA,
    SM_SIM_FAULT_SLOW,
    SM_SIM_FAULT_QUEUE,
    SM_SIM_FAULT_CONSENSUS,
} sm_sim_fault_kind;
#define SM_SIM_FAULT_KINDS 5

/* One injected fault on swarm `swarm` (index: 0 is "s0") during
 * [start_ms, end_ms) of event time, relative to the start of the run. */
typedef struct sm_sim_fault {
    sm_sim_fault_kind kind;
    uint32_t swarm;
    int64_t start_ms;
    int64_t end_ms;
} sm_sim_fault;

typedef struct sm_sim_config {
    uint64_t seed;              /* 1 */
    uint32_t swarms;            /* 2; 1..10000 */
    uint32_t agents;            /* 20 per swarm; 1..100000 */
    double rate;                /* 50 events per event-time second, all
                                   swarms together; > 0 */
    int64_t start_ms;           /* SM_SIM_DEFAULT_START_MS */
    int64_t duration_ms;        /* 600000 (10 min); 0 = endless */
    size_t n_faults;            /* 0 */
    sm_sim_fault faults[SM_SIM_MAX_FAULTS];
} sm_sim_config;

/* Fills *cfg with the defaults above (no faults). */
void sm_sim_config_default(sm_sim_config *cfg);

/* Checks *cfg. Returns SM_OK, or SM_ERR_CONFIG with a sentence naming the
 * problem written into why (if why != NULL and cap > 0; truncated to
 * cap). */
sm_status sm_sim_config_validate(const sm_sim_config *cfg, char *why,
                                 size_t cap);

/* Parses a time such as "90s", "1500ms", "10m", "1.5m", "1h" or "1m30s"
 * (a sum of number+unit pairs; units ms, s, m, h; a unit is required) into
 * *ms. Returns SM_OK, or SM_ERR_INVALID with a sentence in why. */
sm_status sm_sim_parse_time(const char *s, int64_t *ms, char *why,
                            size_t cap);

/* Parses a fault spec "kind:swarm:start-end", e.g. "slow:0:30s-90s"
 * (kind token, quota, slow, queue or consensus; swarm a number or "s<n>";
 * times as sm_sim_parse_time). Fills *out on SM_OK; otherwise returns
 * SM_ERR_INVALID with a sentence quoting the spec in why. Whether the swarm
 * exists is checked later, by sm_sim_config_validate(). */
sm_status sm_sim_fault_parse(const char *spec, sm_sim_fault *out, char *why,
                             size_t cap);

/* Parses spec and appends it to cfg->faults. Errors: those of
 * sm_sim_fault_parse, or SM_ERR_FULL when SM_SIM_MAX_FAULTS are there. */
sm_status sm_sim_config_add_fault(sm_sim_config *cfg, const char *spec,
                                  char *why, size_t cap);

/* Static name of a fault kind ("token", "quota", "slow", "queue",
 * "consensus"; "unknown" otherwise). */
const char *sm_sim_fault_kind_str(sm_sim_fault_kind k);

/* Writes the demo scenario into out (cap >= 5 to get all of it): the five
 * faults one at a time on swarm 0, each 60 s on then at least 70 s off:
 * token 1m-2m, consensus 3m10s-4m10s, slow 5m20s-6m20s, queue
 * 7m30s-8m30s, quota 9m40s-10m40s, inside a run of
 * SM_SIM_DEMO_DURATION_MS (11 min). Returns how many were written. */
size_t sm_sim_demo_faults(sm_sim_fault *out, size_t cap);

/* Replaces cfg's faults with the demo scenario and sets duration_ms to
 * SM_SIM_DEMO_DURATION_MS. Other fields are left alone. */
void sm_sim_config_demo(sm_sim_config *cfg);

/* Kinds of message, by the subject's third token. */
typedef enum sm_sim_kind {
    SM_SIM_TASK = 0,            /* TaskEvent */
    SM_SIM_HEARTBEAT,           /* Heartbeat */
    SM_SIM_RESOURCE,            /* ResourceSample */
    SM_SIM_CONSENSUS,           /* ConsensusRound */
    SM_SIM_AGENT,               /* AgentLifecycle */
    SM_SIM_OUTCOME,             /* HealingOutcome (the coordinator, world.h) */
} sm_sim_kind;
#define SM_SIM_KINDS 6

/* Static "task", "heartbeat", "resource", "consensus", "agent",
 * "outcome"; "unknown" otherwise. */
const char *sm_sim_kind_str(sm_sim_kind k);

/* One generated message. subject and payload are owned by the generator
 * and stay valid until the next sm_sim_next() or sm_sim_destroy() call on
 * it. */
typedef struct sm_sim_msg {
    const char *subject;        /* e.g. "swarm.s0.task.a3" */
    int64_t ts_ms;              /* event time, also the payload's ts_ms */
    sm_sim_kind kind;
    uint32_t swarm;             /* swarm index */
    const uint8_t *payload;     /* protobuf, `len` bytes */
    size_t len;
} sm_sim_msg;

typedef struct sm_sim sm_sim;

/* Creates a generator for *cfg (copied). Sets *out only on SM_OK.
 * Errors: SM_ERR_INVALID (NULL argument), SM_ERR_CONFIG (cfg does not
 * validate; sm_sim_config_validate() gives the sentence), SM_ERR_NOMEM. */
sm_status sm_sim_create(sm_sim **out, const sm_sim_config *cfg);

/* Creates a generator of the realistic profile for *wc (copied; see
 * world.h). Sets *out only on SM_OK. Errors: SM_ERR_INVALID (NULL),
 * SM_ERR_CONFIG (sm_world_config_validate() says why), SM_ERR_NOMEM. Every
 * function below works on it; sm_sim_task_rate() gives the expected tasks
 * per second of all swarms. */
sm_status sm_sim_create_world(sm_sim **out, const sm_world_config *wc);

/* The realistic world behind sim (for its gauges), or NULL for the simple
 * profile. Borrowed: lives as long as sim. */
const sm_world *sm_sim_world(const sm_sim *sim);

/* The same, writable: for the coordinator (world.h, sm_world_heal). */
sm_world *sm_sim_world_mut(sm_sim *sim);

/* Frees everything. NULL is a no-op. */
void sm_sim_destroy(sm_sim *sim);

/* Produces the next message in event-time order (timestamps never
 * decrease) into *out and returns true; returns false at the end of the
 * run (the first event at or after start + duration is not produced) or if
 * the event queue could not grow (sm_sim_status() then says
 * SM_ERR_NOMEM). Once false, always false. */
bool sm_sim_next(sm_sim *sim, sm_sim_msg *out);

/* SM_OK, or why sm_sim_next() stopped early. */
sm_status sm_sim_status(const sm_sim *sim);

/* Messages produced so far. */
uint64_t sm_sim_count(const sm_sim *sim);

/* Tasks per event-time second per swarm that the configured rate leaves
 * after the fixed-cadence events (0 when the rate does not cover them). */
double sm_sim_task_rate(const sm_sim *sim);

/* The agent quota the resource samples report for a swarm of n agents. */
uint32_t sm_sim_agent_quota(uint32_t n);

#endif
