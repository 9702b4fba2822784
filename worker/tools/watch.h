/*
 * watch.h - `swarm-medic watch`: a consumer of the worker's conclusions
 * that prints each one as a readable line, for operators and the demo.
 *
 * It subscribes to <output_prefix>.> and the dead-letter subject, decodes
 * Bottleneck messages with protobuf-c and prints:
 *   <event time UTC>  <swarm>  RAISED|UPDATED|RESOLVED  <type>  <severity>
 *   <affected>  <metric>=<value> (threshold <t>) ...  -> <recommendation>
 * Dead letters print their Medic-Reason and original subject. The closed
 * loop prints HEAL (a HealingCommand: action, failure, agent or subject,
 * attempt, autonomy, deadline, id, steps), OUTCOME (the coordinator's
 * HealingOutcome, from <input prefix>.*.outcome.*) and VERDICT (what became
 * of the command, and how long the recovery took).
 */
#ifndef SM_WATCH_H
#define SM_WATCH_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "log.h"
#include "status.h"

/* Formats one packed Bottleneck into buf as a single line (no newline).
 * Errors: SM_ERR_DECODE. */
sm_status sm_watch_format(const void *data, size_t len, char *buf, size_t cap);
/* The same for a Failure and a Prediction. */
sm_status sm_watch_format_failure(const void *data, size_t len, char *buf,
                                  size_t cap);
sm_status sm_watch_format_prediction(const void *data, size_t len, char *buf,
                                     size_t cap);
/* The same for a HealingCommand, a HealingVerdict and a HealingOutcome
 * (its swarm from the subject swarm.<swarm>.outcome.<id>). */
sm_status sm_watch_format_heal(const void *data, size_t len, char *buf,
                               size_t cap);
sm_status sm_watch_format_verdict(const void *data, size_t len, char *buf,
                                  size_t cap);
sm_status sm_watch_format_outcome(const char *subject, const void *data,
                                  size_t len, char *buf, size_t cap);

/* Prints conclusions to `out` until a signal in `stop` is pending or, if
 * max_msgs > 0, that many messages have been printed. */
sm_status sm_watch_run(const sm_config *cfg, const sm_log *log, FILE *out,
                       const sigset_t *stop, int64_t max_msgs);

#endif
