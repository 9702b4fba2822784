/*
 * inbox.c - items and the bounded queue between sources and the worker.
 */
#include "inbox.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void sm_item_plain(sm_item *it, const char *subject, const void *data,
                   size_t len, const char *const *headers)
{
    *it = (sm_item){.subject = subject, .data = data, .len = len,
                    .headers = headers};
}

const char *sm_item_header(const sm_item *it, const char *key)
{
    if (it->ops && it->ops->header)
        return it->ops->header(it, key);
    for (size_t i = 0; it->headers && it->headers[i] && it->headers[i + 1]; i += 2)
        if (strcmp(it->headers[i], key) == 0)
            return it->headers[i + 1];
    return NULL;
}

bool sm_item_seen(const sm_item *it)
{
    return it->ops && it->ops->seen && it->ops->seen(it);
}

sm_status sm_item_settle(sm_item *it, sm_settle how, int64_t delay_ms)
{
    if (it->ops && it->ops->settle)
        return it->ops->settle(it, how, delay_ms);
    return SM_OK;
}

void sm_item_release(sm_item *it)
{
    if (it->ops && it->ops->release)
        it->ops->release(it);
    it->src = NULL;
}

/* ---- the queue: a ring of items under one mutex ----------------------- */

struct sm_inbox {
    pthread_mutex_t mu;
    pthread_cond_t not_empty;   /* the consumer waits here */
    pthread_cond_t not_full;    /* producers wait here */
    sm_item *ring;
    size_t cap, head, count;
    sm_item urgent[SM_INBOX_URGENT_CAP];    /* the urgent lane's ring */
    size_t uhead;
    atomic_size_t ucount;
    size_t sources;
    unsigned producers_waiting;
    bool consumer_waiting;
    bool woken;                 /* sm_inbox_wake: the next wait returns */
    bool closed;
    sm_status failure;
    uint64_t pushed, full_waits, refused;
};

sm_status sm_inbox_create(sm_inbox **out, size_t capacity)
{
    if (!out || capacity == 0)
        return SM_ERR_INVALID;
    sm_inbox *ib = calloc(1, sizeof *ib);
    if (!ib)
        return SM_ERR_NOMEM;
    ib->ring = calloc(capacity, sizeof *ib->ring);
    if (!ib->ring) {
        free(ib);
        return SM_ERR_NOMEM;
    }
    ib->cap = capacity;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&ib->mu, NULL);
    pthread_cond_init(&ib->not_empty, &ca);
    pthread_cond_init(&ib->not_full, &ca);
    pthread_condattr_destroy(&ca);
    *out = ib;
    return SM_OK;
}

void sm_inbox_destroy(sm_inbox *ib)
{
    if (!ib)
        return;
    for (; ib->count > 0; ib->count--) {
        sm_item_release(&ib->ring[ib->head]);
        ib->head = (ib->head + 1) % ib->cap;
    }
    for (size_t n = atomic_load(&ib->ucount); n > 0; n--) {
        sm_item_release(&ib->urgent[ib->uhead]);
        ib->uhead = (ib->uhead + 1) % SM_INBOX_URGENT_CAP;
    }
    pthread_cond_destroy(&ib->not_empty);
    pthread_cond_destroy(&ib->not_full);
    pthread_mutex_destroy(&ib->mu);
    free(ib->ring);
    free(ib);
}

sm_status sm_inbox_push(sm_inbox *ib, const sm_item *it)
{
    pthread_mutex_lock(&ib->mu);
    if (!ib->closed && ib->count == ib->cap) {
        ib->full_waits++;
        ib->producers_waiting++;
        while (!ib->closed && ib->count == ib->cap)
            pthread_cond_wait(&ib->not_full, &ib->mu);
        ib->producers_waiting--;
    }
    if (ib->closed) {
        ib->refused++;
        pthread_mutex_unlock(&ib->mu);
        return SM_ERR_INVALID;
    }
    ib->ring[(ib->head + ib->count) % ib->cap] = *it;
    ib->count++;
    ib->pushed++;
    if (ib->consumer_waiting)
        pthread_cond_signal(&ib->not_empty);
    pthread_mutex_unlock(&ib->mu);
    return SM_OK;
}

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

size_t sm_inbox_pop(sm_inbox *ib, sm_item *out, size_t max, int64_t timeout_ms)
{
    pthread_mutex_lock(&ib->mu);
    if (ib->count == 0 && timeout_ms > 0 && ib->sources > 0 &&
        ib->failure == SM_OK) {
        struct timespec until;
        deadline_in(&until, timeout_ms);
        ib->consumer_waiting = true;
        while (ib->count == 0 && atomic_load(&ib->ucount) == 0 &&
               !ib->woken && ib->sources > 0 && ib->failure == SM_OK)
            if (pthread_cond_timedwait(&ib->not_empty, &ib->mu, &until) == ETIMEDOUT)
                break;
        ib->consumer_waiting = false;
    }
    ib->woken = false;
    size_t n = 0;
    for (; n < max && ib->count > 0; n++, ib->count--) {
        out[n] = ib->ring[ib->head];
        ib->head = (ib->head + 1) % ib->cap;
    }
    /* Producers blocked on a full inbox are woken once it is half empty,
     * not after every pop: woken per batch, a producer pushed a batch's
     * worth, blocked again, and both threads paid a futex round trip each
     * time (a tenth of the worker's CPU with the inbox full). */
    if (n > 0 && ib->producers_waiting > 0 && ib->count <= ib->cap / 2)
        pthread_cond_broadcast(&ib->not_full);
    pthread_mutex_unlock(&ib->mu);
    return n;
}

void sm_inbox_wake(sm_inbox *ib)
{
    pthread_mutex_lock(&ib->mu);
    ib->woken = true;
    if (ib->consumer_waiting)
        pthread_cond_signal(&ib->not_empty);
    pthread_mutex_unlock(&ib->mu);
}

sm_status sm_inbox_push_urgent(sm_inbox *ib, const sm_item *it)
{
    sm_status s = SM_OK;
    pthread_mutex_lock(&ib->mu);
    size_t n = atomic_load(&ib->ucount);
    if (ib->closed) {
        ib->refused++;
        s = SM_ERR_INVALID;
    } else if (n == SM_INBOX_URGENT_CAP) {
        s = SM_ERR_FULL;
    } else {
        ib->urgent[(ib->uhead + n) % SM_INBOX_URGENT_CAP] = *it;
        atomic_store(&ib->ucount, n + 1);
        if (ib->consumer_waiting)
            pthread_cond_signal(&ib->not_empty);
    }
    pthread_mutex_unlock(&ib->mu);
    return s;
}

size_t sm_inbox_pop_urgent(sm_inbox *ib, sm_item *out, size_t max)
{
    if (atomic_load_explicit(&ib->ucount, memory_order_relaxed) == 0)
        return 0;
    pthread_mutex_lock(&ib->mu);
    size_t n = 0, have = atomic_load(&ib->ucount);
    for (; n < max && n < have; n++) {
        out[n] = ib->urgent[ib->uhead];
        ib->uhead = (ib->uhead + 1) % SM_INBOX_URGENT_CAP;
    }
    atomic_store(&ib->ucount, have - n);
    pthread_mutex_unlock(&ib->mu);
    return n;
}

bool sm_inbox_urgent_waiting(sm_inbox *ib)
{
    return atomic_load_explicit(&ib->ucount, memory_order_relaxed) > 0;
}

void sm_inbox_source_open(sm_inbox *ib)
{
    pthread_mutex_lock(&ib->mu);
    ib->sources++;
    pthread_mutex_unlock(&ib->mu);
}

void sm_inbox_source_done(sm_inbox *ib, sm_status why)
{
    pthread_mutex_lock(&ib->mu);
    if (ib->sources > 0)
        ib->sources--;
    if (why != SM_OK && ib->failure == SM_OK)
        ib->failure = why;
    pthread_cond_signal(&ib->not_empty);
    pthread_mutex_unlock(&ib->mu);
}

void sm_inbox_fail(sm_inbox *ib, sm_status why)
{
    pthread_mutex_lock(&ib->mu);
    if (why != SM_OK && ib->failure == SM_OK)
        ib->failure = why;
    pthread_cond_signal(&ib->not_empty);
    pthread_mutex_unlock(&ib->mu);
}

void sm_inbox_close(sm_inbox *ib)
{
    pthread_mutex_lock(&ib->mu);
    ib->closed = true;
    pthread_cond_broadcast(&ib->not_full);
    pthread_mutex_unlock(&ib->mu);
}

void sm_inbox_stats_get(sm_inbox *ib, sm_inbox_stats *out)
{
    pthread_mutex_lock(&ib->mu);
    *out = (sm_inbox_stats){
        .queued = ib->count, .sources = ib->sources, .failure = ib->failure,
        .pushed = ib->pushed, .full_waits = ib->full_waits,
        .refused = ib->refused,
    };
    pthread_mutex_unlock(&ib->mu);
}
