/*
 * notify.c - sd_notify calls (libsystemd). Every call of libsystemd lives
 * here.
 */
#include "notify.h"

#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

void sm_notify_init(sm_notify *n)
{
    memset(n, 0, sizeof *n);
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        n->watchdog_ms = (int64_t)(usec / 2000);
        if (n->watchdog_ms < 1)
            n->watchdog_ms = 1;
    }
}

void sm_notify_ready(sm_notify *n, const char *status)
{
    if (n->ready_sent)
        return;
    n->ready_sent = true;
    char msg[256];
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", status ? status : "ready");
    sd_notify(0, msg);
}

void sm_notify_stopping(sm_notify *n)
{
    if (n->stopping_sent)
        return;
    n->stopping_sent = true;
    sd_notify(0, "STOPPING=1\nSTATUS=draining");
}

void sm_notify_watchdog(sm_notify *n, int64_t now_ms)
{
    if (n->watchdog_ms <= 0 || now_ms - n->last_ping_ms < n->watchdog_ms)
        return;
    n->last_ping_ms = now_ms;
    sd_notify(0, "WATCHDOG=1");
}
