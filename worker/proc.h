/*
 * proc.h - what the running process needs from the OS besides the bus and
 * the store: whether it has been asked to stop, a monotonic clock for
 * rates and pacing, a sleep.
 *
 * The stop signals (SIGINT, SIGTERM) are blocked in every thread (see
 * main.c), so loops poll for them here between messages instead of being
 * interrupted. Nothing here reads or writes global state.
 */
#ifndef SM_PROC_H
#define SM_PROC_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

/* Monotonic clock in nanoseconds (for rates and pacing, never decisions). */
int64_t sm_proc_mono_ns(void);
/* Sleeps ms milliseconds (resumes after signals until the time is up). */
void sm_proc_sleep_ms(int ms);

/* Whether a signal of `stop` (blocked in every thread, see main.c) is
 * pending; if so and sig is not NULL, *sig is set to it. The signal stays
 * pending (sigwait consumes it). stop NULL: false. */
bool sm_proc_stop_pending(const sigset_t *stop, int *sig);

#endif
