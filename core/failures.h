/*
 * failures.h - failure detection: what swarm.c calls when an event or the
 * tick sweep touches a failure signal. thresholds.h gives each rule; every
 * failure is raised once and resolved once (an SM_DEC_FAILURE decision
 * each time), and its state lives in the agent record (down, stuck, task
 * timeout), the consensus group (quorum loss) or the swarm state
 * (token, memory, queue).
 *
 * Agent failures are time-driven: an agent is down because nothing
 * arrived. Each agent carries a wake-up (agents.h, sm_agents.wake): the
 * event time its failure state must be looked at again. The sweep scans
 * the dense wake array once per tick (8 bytes an agent, no record touched
 * unless due); every agent event recomputes the agent's wake. Internal to
 * core/.
 */
#ifndef SM_FAILURES_H
#define SM_FAILURES_H

#include <stdbool.h>
#include <stdint.h>

#include "decision.h"
#include "swarm_int.h"

/* Agent k's task event ev (after the agent-side bookkeeping of swarm.c). */
void sm_fail_on_task(sm_swarm *sw, uint32_t k, const sm_task_event *ev,
                     sm_decisions *out);
/* Agent k's heartbeat. */
void sm_fail_on_heartbeat(sm_swarm *sw, uint32_t k, const sm_heartbeat *ev,
                          sm_decisions *out);
/* Agent k registered (registered true) or unregistered. */
void sm_fail_on_lifecycle(sm_swarm *sw, uint32_t k,
                          const sm_agent_lifecycle *ev, sm_decisions *out);
/* A resource sample (token, memory, queue exhaustion). */
void sm_fail_on_resource(sm_swarm *sw, const sm_resource_sample *ev,
                         sm_decisions *out);
/* A round of group g (quorum loss). */
void sm_fail_on_round(sm_swarm *sw, sm_group *g, const sm_consensus_round *ev,
                      sm_decisions *out);
/* Tick sweep: every agent whose wake time has come. */
void sm_fail_sweep(sm_swarm *sw, sm_decisions *out);
/* Recomputes agent k's wake time from its state (after an import). */
void sm_fail_rewake(sm_swarm *sw, uint32_t k);
/* Whether agent k has a failure raised (it must not be expired). */
bool sm_fail_agent_raised(const sm_agent *a);

#endif
