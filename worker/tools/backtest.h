/*
 * backtest.h - replay one recording under two configurations and tell
 * which decisions differ.
 *
 * Both runs are offline replays (replay.h). Their Bottleneck messages are
 * folded into episodes: (swarm, type, affected) from RAISED to RESOLVED
 * (or to the end of the recording), with the peak severity reached. An
 * episode of run A matches one of run B with the same key whose time spans
 * overlap. The report lists A's episodes in the order they were raised,
 * marked
 *   -  only in A ("disappears" under B)
 *   ~  in both, with a different peak severity or raise time
 * (unchanged ones are counted, not listed), then B's unmatched ones
 *   +  only in B ("appears")
 * and a summary line with the counts.
 */
#ifndef SM_BACKTEST_H
#define SM_BACKTEST_H

#include <stdio.h>

#include "config.h"
#include "log.h"
#include "status.h"

typedef struct sm_backtest_result {
    size_t episodes_a;
    size_t episodes_b;
    size_t only_a;
    size_t only_b;
    size_t changed;
    size_t same;
} sm_backtest_result;

/* Runs both replays and writes the readable report to out (may be NULL).
 * Errors: as sm_replay_offline, with the reason written to out. */
sm_status sm_backtest_run(const sm_config *a, const sm_config *b,
                          const sm_log *log, const char *path, FILE *out,
                          sm_backtest_result *res);

#endif
