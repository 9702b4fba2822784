/*
 * detectors.h - the bottleneck rules (thresholds.h describes them): what
 * swarm.c calls when an event or the tick sweep touches a signal. The
 * rules measure and decide; episode.c steps the episodes they name.
 * Internal to core/.
 */
#ifndef SM_DETECTORS_H
#define SM_DETECTORS_H

#include <stdbool.h>
#include <stdint.h>

#include "decision.h"
#include "swarm_int.h"

/* Swarm duration statistics (median, MAD over the window): recomputed now,
 * or lazily (enough new samples, a new tick, or below the minimum guard). */
void sm_detect_stats_recompute(sm_swarm *sw);
void sm_detect_stats_maybe(sm_swarm *sw);

/* The slow-agent rule on agent k: raise, update or clear. */
void sm_detect_agent(sm_swarm *sw, uint32_t k, sm_decisions *out);
/* The fixed log-likelihood terms of the sequential tests under cfg. */
void sm_detect_llr_terms(const sm_detect_config *cfg, sm_llr_terms *out);
/* Agent k finished a task (ok: completed; ratio: its duration over the
 * type baseline, 0 if none): updates its failure and slowness evidence. */
void sm_detect_task_outcome(sm_swarm *sw, uint32_t k, bool ok, double ratio);
/* Agent k left (unregistered): a raised episode resolves "no_data", with
 * the lifecycle event as evidence. */
void sm_detect_agent_gone(sm_swarm *sw, uint32_t k, const sm_evidence *ev,
                          sm_decisions *out);

/* A gauge sample of type t was stored: advance its debounce runs (over the
 * raise line, under the clear line, or neither) and decide. */
void sm_detect_gauge(sm_swarm *sw, sm_bn_type t, bool over, bool under,
                     sm_decisions *out);
/* Tick sweep: a gauge with no sample in the window goes stale. */
void sm_detect_gauge_sweep(sm_swarm *sw, sm_bn_type t, sm_decisions *out);
/* Group g ran a round (timeout or not): updates its timeout evidence. */
void sm_detect_consensus_round(sm_swarm *sw, sm_group *g, bool timeout);
/* The consensus rule over group g's round ring: raise, update or clear its
 * episode. */
void sm_detect_consensus(sm_swarm *sw, sm_group *g, sm_decisions *out);

#endif
