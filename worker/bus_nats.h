/*
 * bus_nats.h - the raw cnats side of an sm_bus, for the tools (record,
 * watch) that still make their own cnats calls. The worker does not
 * include this: its cnats calls all live in bus.c.
 */
#ifndef SM_BUS_NATS_H
#define SM_BUS_NATS_H

#include <nats/nats.h>

#include "bus.h"

/* Converts a cnats status, once, at the edge. */
sm_status sm_bus_status(natsStatus s);

/* The connection under b (owned by b). */
natsConnection *sm_bus_conn(sm_bus *b);

#endif
