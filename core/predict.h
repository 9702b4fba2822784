/*
 * predict.h - predictions of failures, and the ledger that keeps score of
 * them (thresholds.h gives the rules). A prediction is raised once,
 * updated when its estimate moves materially, withdrawn when the trend
 * turns or its expected time passes with nothing, and fulfilled when the
 * failure it forecast is raised; each end is a fate in the ledger (per
 * source and per failure type), and a source's measured accuracy feeds
 * the confidence of its next predictions.
 *
 * Agent-health predictions live in the agent record; swarm-wide ones
 * (token, memory, queue) in sm_swarm_state.pred with the ledger.
 * Internal to core/.
 */
#ifndef SM_PREDICT_H
#define SM_PREDICT_H

#include <stdint.h>

#include "decision.h"
#include "swarm_int.h"

/* Agent k's heartbeat: its health signs (state DEGRADED or not). */
void sm_pred_on_heartbeat(sm_swarm *sw, uint32_t k, const sm_heartbeat *ev,
                          sm_decisions *out);
/* Agent k's failure `t` was raised now: a standing prediction of it is
 * fulfilled. */
void sm_pred_agent_failed(sm_swarm *sw, uint32_t k, sm_fail_type t,
                          sm_decisions *out);
/* Agent k left (unregistered) or restarted: its prediction is withdrawn. */
void sm_pred_agent_gone(sm_swarm *sw, uint32_t k, const char *why,
                        sm_decisions *out);
/* Looks at agent k's prediction now (expiry); returns when it must be
 * looked at again (SM_WAKE_NEVER: no need). */
int64_t sm_pred_agent_check(sm_swarm *sw, uint32_t k, sm_decisions *out);

/* A resource sample for swarm-wide forecast f (F_TOKEN: tokens used
 * against token_fail x budget; F_MEMORY: memory used against memory_fail
 * x limit; F_QUEUE: pending against queue_fail) from source `subject`:
 * feeds the trend (forecast.h) and, on a new trend point or a moved limit
 * (a top-up), evaluates the forecast and raises, updates or withdraws the
 * prediction. */
void sm_pred_sample(sm_swarm *sw, int f, const char *subject, int64_t ts_ms,
                    double value, double limit, sm_decisions *out);
/* Tick sweep: closes the trends' steps as event time passes, and
 * withdraws a swarm-wide prediction whose expected time plus margin has
 * passed with no failure. */
void sm_pred_sweep(sm_swarm *sw, sm_decisions *out);
/* Swarm-wide failure f was raised now: its prediction is fulfilled. */
void sm_pred_swarm_failed(sm_swarm *sw, int f, sm_decisions *out);

/* Something happened that patterns learn from (kind SM_DEC_BOTTLENECK:
 * `type` an sm_bn_type; SM_DEC_FAILURE: an sm_fail_type, raised now;
 * SM_DEC_PREDICTION is not one): records it, fulfils a pattern prediction
 * of that failure, and asks the learned patterns what they now forecast.
 * sm_pred_degraded() records an agent's first DEGRADED heartbeat. */
void sm_pred_happened(sm_swarm *sw, sm_decision_kind kind, int type,
                      const char *subject, sm_decisions *out);

/* A source's accuracy as the ledger has measured it (pred_prior blended
 * in while few fates are known). */
double sm_pred_accuracy(const sm_swarm *sw, sm_pred_source src);

#endif
