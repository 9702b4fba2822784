/*
 * scenario.h - scenarios (the JSON files of tests/scenarios/, format in
 * tests/scenarios/README.md) and their labels: what swarm-medic must, may
 * and must never conclude on a simulated world (world.h).
 *
 * A scenario is loaded with jansson, its world run by
 * sm_sim_create_scenario(), and its labels -- the hand-written ones plus
 * those DERIVED from its faults -- given in score's label model (score.h:
 * sm_labels, absolute event times, relative = false, a note saying which
 * fault each derives from), which sm_score_run() or `swarm-medic score`
 * matches against the conclusions of a run. Hand-written labels and the
 * "floor" object are read by score's own readers (sm_labels_from_json,
 * sm_score_floors_from_json); labels given with from_s/to_s are anchored
 * at the run's start, a never-label without times spans the run.
 *
 * Derivation. Loading a scenario runs its world once (a probe, a few ms to
 * a few hundred for the largest) and keeps each swarm's gauges per
 * ResourceSample and every TIMED_OUT task event, so gauge faults and
 * timeouts are labelled from what the stream really shows. Below, E =
 * onset + ramp (full effect), end = end_s (the run's end when absent), m =
 * the swarm's mean task duration / speed, hb = its heartbeat_s, R = raise
 * within (default 120 s), Q = resolve within (default 180 s). Types are
 * output type tokens; severities are core/thresholds.h's bands, given only
 * when the figure is clearly inside one (else 0: not checked). Failure
 * labels about a resource name its source, "scheduler"; prediction labels
 * about the swarm have subject "" (a Prediction names an agent or none).
 *   slow_agent f      per agent: f >= 2.5 -> must bottleneck slow_agent
 *                     over [E, end'], R = 120 + 6 f m s (at most 900: a
 *                     slowed agent finishes few tasks a minute), Q = 180 s,
 *                     severity high if f >= 3.3, medium if f <= 2.7; plus may
 *                     over [onset, end' + Q]. end' is when the last task the
 *                     agent started in [onset, end) completed, if later than
 *                     end, or the run's end when such a task is still
 *                     running then (the probe's stream): a task's slowdown
 *                     is drawn when it starts, so a task begun under the
 *                     fault runs slow to its end and no task can show the
 *                     recovery before. Fewer than two tasks completed in
 *                     [E, end] ->
 *                     may. 1.8 < f < 2.5 -> may. f <= 1.8 -> never
 *                     slow_agent for that agent over [onset, end + 180].
 *   failing_agent r   per agent: r >= 0.45 -> must slow_agent (the success
 *                     rule) over [E, end], severity medium, R = 120 + 12 m,
 *                     may tail; 0.2 < r < 0.45 -> may; r <= 0.2 (80% success
 *                     or better) -> never.
 *   slow_fraction f   per slowed agent as slow_agent, but must becomes may
 *                     when over a third of the swarm is slowed (the swarm's
 *                     own median moves); plus the gauge rules below.
 *   token_burn        gauge: peak usage/budget p over [onset, end + 60]:
 *                     p > 0.83 -> must token_exhaustion (subject
 *                     "scheduler") from the first sample over 0.80 to the
 *                     last over 0.75, severity critical if p > 0.92, high if
 *                     p < 0.88; prediction token_exhaustion must over
 *                     [onset + 30, first crossing] when that is >= 90 s.
 *                     0.75 <= p <= 0.83 -> may; p < 0.75 (a burn that stops
 *                     short) -> never over [onset, end + 180].
 *                     Failure token_exhaustion: p >= 0.99 -> must from the
 *                     first sample at 0.99 until usage falls back under
 *                     0.95 (a top-up) or the run ends, Q = 60 s;
 *                     0.95 <= p < 0.99 -> may over the samples at 0.95 +
 *                     60 s.
 *   memory_leak       no bottleneck type: prediction memory_exhaustion must
 *                     from E to the first sample at 90% of the limit (may if
 *                     it never gets there); failure memory_exhaustion must
 *                     from the first sample at 98% to end.
 *   queue (gauge)     for every fault that changes load (slow_fraction,
 *                     queue_surge, quota_saturation, stuck_agent,
 *                     degrading_agent, crash_restart): peak pending P over
 *                     [onset, end + 300]: P > 60 -> must queue_backlog
 *                     ("scheduler") from the first sample over 50 to the last
 *                     at or over 40, severity critical if P > 220, high if
 *                     140..190, medium if 60..110; 40 <= P <= 60 -> may;
 *                     P < 40 on a queue_surge -> never (drained in time).
 *                     Failure queue_overflow: P > 220 -> must from the first
 *                     sample over 200 to the last over 150, and may over
 *                     the window; 180 <= P <= 220 -> may; P < 150 on a
 *                     queue_surge -> never.
 *                     A must-label on the queue or the quota runs as long
 *                     as the signal (to the run's end at most): it ends at
 *                     the last sample on the clear line before the gauge
 *                     stays under it for 10 samples in a row.
 *   quota (gauge)     the same faults: active >= quota on 3+ samples ->
 *                     must quota_exceeded ("scheduler"), critical, from the
 *                     first such sample to the last at or over 90%; only
 *                     over 90% -> may; neither, on a quota_saturation ->
 *                     never.
 *   consensus_degradation r  per group (listed or all): r >= 0.15 -> must
 *                     consensus_timeout over [E, end], severity high if
 *                     r >= 0.30, medium if r <= 0.17; 0.07 < r < 0.15 -> may;
 *                     r <= 0.07 -> never.
 *   quorum_loss       per group: must consensus_timeout over [E, end]
 *                     (rounds time out), high; failure quorum_loss must over
 *                     [E, end], R = 60 s, may over [onset, end + 60].
 *   stuck_agent       failure agent_stuck must from onset, R = 120 + 3 m;
 *                     may slow_agent over [onset, end + 300]; task_timeout
 *                     below (the hung task is reported TIMED_OUT at end).
 *   degrading_agent f dies at D = onset + ramp: must slow_agent from when the
 *                     factor reaches 2.5 to D (may if under 120 s), may
 *                     [onset, D + 300]; prediction agent_down must over
 *                     [onset + ramp/2, D] when ramp >= 120 s; agent_down
 *                     and task_timeout below.
 *   crash_restart     dies at D = onset; agent_down and task_timeout below.
 *   agent_down        (degrading_agent, crash_restart) failure agent_down
 *                     over [D, end] (end: when the agent registers again,
 *                     or the run ends): must when down for >= 30 s, R =
 *                     3 hb + 5 s (three missed heartbeats), Q = 30 s; a
 *                     shorter outage -> may over [D, end + 2 hb].
 *   task_timeout      (stuck_agent, degrading_agent, crash_restart) per
 *                     agent: the probe's first TIMED_OUT task event T of
 *                     the agent in [onset, end + 120] -> must failure
 *                     task_timeout over [T, max(T, end)], R = 30 s; always
 *                     may over [onset, end + 120]. No TIMED_OUT (the agent
 *                     died idle, or the fault outlives the run) -> may only.
 * Outside every fault, a gauge that still crosses a raise line (a real
 * backlog from a burst, say) gets a may label over the crossing - 5 s ..
 * + 60 s: the signal is there, so a conclusion is not a false alarm. The
 * lines: token usage over 0.80, pending over 50, active at the quota
 * (bottlenecks); token usage at 0.99, pending over 200 (failures).
 *
 * Labels of every kind are scored (score.h): failures as bottlenecks are,
 * predictions by lead (raised >= 30 s before the label's to, the failure
 * time) and ETA error.
 *
 * Thread safety: none; a loaded scenario is read-only and may be shared.
 */
#ifndef SM_SCENARIO_H
#define SM_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "score.h"       /* the label model: sm_labels, sm_score_floors */
#include "simgen.h"
#include "status.h"
#include "world.h"

typedef struct sm_scenario sm_scenario;

/* Loads and checks a scenario file, runs its probe and derives its
 * labels. Sets *out only on SM_OK. Errors: SM_ERR_INVALID (NULL
 * arguments), SM_ERR_IO (unreadable), SM_ERR_CONFIG (bad JSON, an unknown
 * key, a bad value: a sentence naming it in err), SM_ERR_NOMEM. */
sm_status sm_scenario_load(const char *path, sm_scenario **out, char *err,
                           size_t errcap);

/* The same from a JSON text of len bytes. */
sm_status sm_scenario_parse(const char *text, size_t len, sm_scenario **out,
                            char *err, size_t errcap);

/* Frees a scenario; NULL is a no-op. */
void sm_scenario_destroy(sm_scenario *sc);

/* Borrowed views, valid while sc lives. */
const char *sm_scenario_name(const sm_scenario *sc);
const char *sm_scenario_description(const sm_scenario *sc);
const sm_world_config *sm_scenario_world(const sm_scenario *sc);
/* The scenario's floors (its "floor" object; unset fields NaN): the
 * target figures tests/check_scenarios.c and `make eval` compare with. */
const sm_score_floors *sm_scenario_floors(const sm_scenario *sc);

/* All labels (hand-written first, then derived unless "derive_labels" is
 * false), absolute. Borrowed. */
const sm_labels *sm_scenario_labels(const sm_scenario *sc);

/* A generator of the scenario's stream (the realistic profile). Errors as
 * sm_sim_create_world(). */
sm_status sm_sim_create_scenario(sm_sim **out, const sm_scenario *sc);

/* The input to score the scenario in process: sm_score_run(cfg, log, in,
 * ...) runs its stream through the worker. Creates the generator in *sim
 * (the caller destroys it with sm_sim_destroy after the run) and fills *in
 * (name, next/ud over *sim, labels borrowed from sc). Sets *sim only on
 * SM_OK. Errors as sm_sim_create_world(). */
sm_status sm_scenario_score_input(const sm_scenario *sc, sm_sim **sim,
                                  sm_score_input *in);

/* Whether the scenario asks for the closed loop: "coordinator": {"loop":
 * true} (the coordinator's other keys, delay_s, jitter_s, fail_rate,
 * reject_rate, take_recommend, set world.h's sm_wcoord; format in
 * tests/scenarios/README.md). */
bool sm_scenario_loop(const sm_scenario *sc);

/* sm_scenario_score_input with the loop closed: in->heal hands every
 * HealingCommand the worker publishes to the world's coordinator
 * (world.h, sm_world_heal), whose HealingOutcomes come back in the stream;
 * in->coord reports its counters; in->scale hands every ScalingDecision
 * to the coordinator too (sm_world_scale) and in->load reports swarm 0's
 * load and the scaling counters. coord: the coordinator to play (NULL:
 * the scenario's). Same errors (SM_ERR_CONFIG for a coord that does not
 * validate). */
sm_status sm_scenario_loop_input(const sm_scenario *sc, const sm_wcoord *coord,
                                 sm_sim **sim, sm_score_input *in);

/* The worker settings the scenario asks for in the loop (its "settings"
 * object, {"scaling": true, "scale_cooldown": "20s", ...}: values as
 * strings, booleans and numbers written out): how many; setting i's name
 * and value (borrowed). The caller applies them (sm_config_set) before
 * its own --set. */
size_t sm_scenario_n_settings(const sm_scenario *sc);
const char *sm_scenario_setting(const sm_scenario *sc, size_t i,
                                const char **value);

/* The labels file of the scenario, as `swarm-medic score --labels` reads
 * it: {"name", "description", "labels": {...}, "floor": {...}}, absolute
 * from_ms/to_ms. Writes it to path. Errors: SM_ERR_IO (cannot write, err
 * says why), SM_ERR_NOMEM. */
sm_status sm_scenario_write_labels(const sm_scenario *sc, const char *path,
                                   char *err, size_t errcap);

#endif
