/*
 * notify.h - telling systemd how the worker is (sd_notify, libsystemd's
 * sd-daemon): READY=1 once connected and subscribed, WATCHDOG=1 from the
 * loop while WATCHDOG_USEC is set for this process (every half of it),
 * STOPPING=1 when a drain starts. Without $NOTIFY_SOCKET (not run by
 * systemd as Type=notify) every call is a cheap no-op.
 *
 * An sm_notify is a plain value owned by the worker (one thread).
 */
#ifndef SM_NOTIFY_H
#define SM_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct sm_notify {
    int64_t watchdog_ms;        /* ping period (half of WATCHDOG_USEC), 0:
                                   no watchdog */
    int64_t last_ping_ms;       /* monotonic ms of the last WATCHDOG=1 */
    bool ready_sent;
    bool stopping_sent;
} sm_notify;

/* Reads WATCHDOG_USEC / WATCHDOG_PID (sd_watchdog_enabled). */
void sm_notify_init(sm_notify *n);
/* READY=1 with a STATUS line, once. */
void sm_notify_ready(sm_notify *n, const char *status);
/* STOPPING=1, once. */
void sm_notify_stopping(sm_notify *n);
/* WATCHDOG=1 if the watchdog is on and half its period has passed since
 * the last ping; now_ms monotonic. */
void sm_notify_watchdog(sm_notify *n, int64_t now_ms);

#endif
