/*
 * bus_nats.h - the raw cnats side of an sm_bus, for the tools (record,
 * watch) that still make their own cnats calls, and for the services'
 * subscriptions (service_srv.c: the api subject and $SRV discovery);
 * the rest of the worker does not include this.
 */
#ifndef SM_BUS_NATS_H
#define SM_BUS_NATS_H

#include <nats/nats.h>

#include "bus.h"

/* Converts a cnats status, once, at the edge. */
sm_status sm_bus_status(natsStatus s);

/* Fills *it with m as a core NATS item (headers through cnats, no-op
 * settle, released with natsMsg_Destroy): the item owns m. */
void sm_bus_item(sm_item *it, natsMsg *m);

/* The connection under b (owned by b). */
natsConnection *sm_bus_conn(sm_bus *b);

#endif
