/*
 * evq.h - the simulators' event queue: a binary min-heap of fixed-size
 * elements ordered by (event time, scheduling sequence).
 *
 * Both generators (simgen.c, the simple profile, and world.c, the
 * realistic one) drive everything from one of these. An element is any
 * struct whose first two fields are
 *
 *     int64_t ts;      event time, any unit (the simulators use ms)
 *     uint64_t seq;    written by sm_evq_push(), read by the ordering
 *
 * (sm_evq_key spells that prefix). The queue stamps each pushed element
 * with the next value of its own counter, so elements due at the same ts
 * come out in the order they were pushed: the order is total, and the
 * stream a simulator yields depends on nothing but what it pushed when.
 *
 * Ownership: the queue owns its array and copies elements in and out; no
 * pointer into it stays valid across a push or a pop. Growth: the array
 * doubles when full (one realloc; the elements already queued are kept
 * if it fails). Not thread-safe: one queue, one thread.
 */
#ifndef SM_EVQ_H
#define SM_EVQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* The prefix every element starts with. */
typedef struct sm_evq_key {
    int64_t ts;
    uint64_t seq;
} sm_evq_key;

/* A queue, embedded by value in its owner; its fields are private. */
typedef struct sm_evq {
    unsigned char *v;
    size_t esz, n, cap;
    uint64_t seq;
} sm_evq;

/*
 * Sets up an empty queue of elements of esz bytes (esz >= sizeof
 * (sm_evq_key), the element's sizeof) with room for cap of them before it
 * first grows (at least 1). SM_ERR_INVALID on a bad q or esz (q is left
 * empty), SM_ERR_NOMEM if the array cannot be allocated (q is left empty,
 * and sm_evq_free() on it is still safe).
 */
sm_status sm_evq_init(sm_evq *q, size_t esz, size_t cap);

/* Frees the array and leaves q empty; NULL and an empty q are no-ops. */
void sm_evq_free(sm_evq *q);

/*
 * Copies the element at e (esz bytes, borrowed for the call) into the
 * queue, its seq set to the queue's next sequence number (the caller's
 * seq is ignored and e is not written). Grows the array if full:
 * SM_ERR_NOMEM if it cannot, the queue unchanged. SM_ERR_INVALID on a
 * NULL q or e, or a q not set up.
 */
sm_status sm_evq_push(sm_evq *q, const void *e);

/*
 * Moves the first element (lowest ts, then lowest seq) into out (esz
 * bytes, caller-owned). False if q is NULL or empty (out untouched).
 */
bool sm_evq_pop(sm_evq *q, void *out);

/* Copies the first element's key into *out (caller-owned); false if q is
 * NULL or empty (*out untouched). */
bool sm_evq_peek(const sm_evq *q, sm_evq_key *out);

/* How many elements are queued. */
size_t sm_evq_len(const sm_evq *q);

#endif
