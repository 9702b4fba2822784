/*
 * strategies.h - how the worker's swarms heal: the one table of healing
 * strategies (core/heal.h's interface) and the autonomy of each action.
 *
 * The table lives here, outside the core, so that a strategy is added
 * without editing core/: write its matches() and plan() (pure functions
 * of the case: no I/O, no clock), add one line to the table in
 * strategies.c, and give its custom action an autonomy in the
 * `autonomy` setting if "custom"'s default does not suit. Order matters:
 * for an episode the first strategy that matches and plans is tried
 * (max_tries times), then the next one; when none is left the episode
 * escalates.
 *
 * The example custom strategy, drain_agent, answers a slow_agent
 * bottleneck: stop assigning to the agent, let its task finish, restart
 * it (custom action "drain_agent"; the restart caps and the quorum guard
 * apply).
 *
 * Autonomy setting: a comma-separated list of [<swarm>/]<action>=<level>,
 * action one of agent_restart, task_retry, resource_rebalance,
 * quorum_recovery, custom, escalate or *, level observe, recommend or
 * act. Later entries win; entries naming a swarm apply to it only, after
 * the others. Unnamed actions keep the defaults: act for agent_restart,
 * task_retry, quorum_recovery and escalate, recommend for
 * resource_rebalance and custom.
 */
#ifndef SM_STRATEGIES_H
#define SM_STRATEGIES_H

#include <stddef.h>

#include "heal.h"
#include "status.h"

/* The strategy table: static, lives for the program. */
const sm_strategy *sm_strategies(size_t *n);

/* The example custom strategy (also in the table). */
extern const sm_strategy sm_strategy_drain_agent;

/* The default autonomy setting (the list above, spelled out). */
#define SM_AUTONOMY_DEFAULT                                                  \
    "agent_restart=act,task_retry=act,resource_rebalance=recommend,"         \
    "quorum_recovery=act,custom=recommend,escalate=act"

/* Fills *hc for swarm `swarm` (NULL: the swarm-independent part only)
 * from the autonomy setting `spec` and the strategy table. Errors:
 * SM_ERR_CONFIG with a sentence in err (an entry that does not parse). */
sm_status sm_heal_config_for(const char *spec, const char *swarm,
                             sm_heal_config *hc, char *err, size_t errcap);

#endif
