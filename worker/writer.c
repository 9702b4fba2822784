/*
 * writer.c - the commit thread (see writer.h).
 *
 * One mutex and one condition variable: the owner sets `job` and signals;
 * the thread applies the log outside the lock, sets `done` and signals
 * back. The log and the part statuses are touched by one side at a time:
 * the owner before submit and after a poll that returned true, the thread
 * in between.
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "writer.h"

struct sm_writer {
    sm_store *st;
    sm_store *log;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool job;               /* submitted, not yet written (owner -> thread) */
    bool done;              /* written (thread -> owner) */
    bool busy;              /* owner side: submitted, not yet polled */
    bool quit;
    void (*wake)(void *);
    void *ud;
    sm_status applied;
    sm_status *part_status; /* one per part of the log */
    size_t n_parts, cap_parts;
    double seconds;
};

static void on_part(void *ud, size_t part, sm_status s)
{
    sm_writer *w = ud;
    if (part < w->n_parts)
        w->part_status[part] = s;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sizes the part statuses to the log's parts (owner thread, before the
 * hand-over, so that the writing itself allocates nothing of ours). */
static sm_status reserve_parts(sm_writer *w)
{
    size_t n = sm_store_log_parts(w->log);
    if (n > w->cap_parts) {
        sm_status *v = realloc(w->part_status, n * sizeof *v);
        if (!v)
            return SM_ERR_NOMEM;
        w->part_status = v;
        w->cap_parts = n;
    }
    w->n_parts = n;
    for (size_t i = 0; i < n; i++)
        w->part_status[i] = SM_OK;
    return SM_OK;
}

/* The outcome of the last write, for the owner. */
static void result_of(const sm_writer *w, sm_writer_result *out)
{
    *out = (sm_writer_result){
        .applied = w->applied,
        .parts = w->n_parts,
        .part_status = w->n_parts ? w->part_status : NULL,
        .bytes = sm_store_log_bytes(w->log),
        .seconds = w->seconds,
    };
}

static void write_log(sm_writer *w)
{
    double t0 = now_s();
    w->applied = sm_store_apply(w->st, w->log, on_part, w);
    w->seconds = now_s() - t0;
}

static void *writer_main(void *arg)
{
    sm_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->job && !w->quit)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->job)
            break;              /* quit with nothing in hand */
        pthread_mutex_unlock(&w->mu);
        write_log(w);
        pthread_mutex_lock(&w->mu);
        w->job = false;
        w->done = true;
        pthread_cond_broadcast(&w->cv);
        if (w->wake) {
            pthread_mutex_unlock(&w->mu);
            w->wake(w->ud);
            pthread_mutex_lock(&w->mu);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

sm_status sm_writer_start(sm_writer **out, sm_store *st, void (*wake)(void *),
                          void *ud)
{
    if (!out || !st)
        return SM_ERR_INVALID;
    sm_writer *w = calloc(1, sizeof *w);
    if (!w)
        return SM_ERR_NOMEM;
    w->st = st;
    w->wake = wake;
    w->ud = ud;
    sm_status s = sm_store_log_open(&w->log);
    if (s != SM_OK) {
        free(w);
        return s;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        sm_store_close(w->log);
        free(w);
        return SM_ERR_STORE;
    }
    *out = w;
    return SM_OK;
}

void sm_writer_stop(sm_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->quit = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);  /* after the batch in hand, if any */
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    sm_store_close(w->log);
    free(w->part_status);
    free(w);
}

sm_store *sm_writer_log(sm_writer *w)
{
    return w && !w->busy ? w->log : NULL;
}

sm_status sm_writer_submit(sm_writer *w)
{
    if (!w || w->busy)
        return SM_ERR_INVALID;
    sm_status s = reserve_parts(w);
    if (s != SM_OK)
        return s;
    w->busy = true;
    sm_store_apply_coming(w->st);   /* the owner's scans wait from now */
    pthread_mutex_lock(&w->mu);
    w->done = false;
    w->job = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return SM_OK;
}

sm_status sm_writer_write_here(sm_writer *w, sm_writer_result *out)
{
    if (!w || w->busy || !out)
        return SM_ERR_INVALID;
    sm_status s = reserve_parts(w);
    if (s != SM_OK)
        return s;
    write_log(w);               /* the thread is idle: nothing shared */
    result_of(w, out);
    return SM_OK;
}

bool sm_writer_busy(const sm_writer *w)
{
    return w && w->busy;
}

bool sm_writer_poll(sm_writer *w, bool wait, sm_writer_result *out)
{
    if (!w || !w->busy)
        return false;
    pthread_mutex_lock(&w->mu);
    while (wait && !w->done)
        pthread_cond_wait(&w->cv, &w->mu);
    bool done = w->done;
    w->done = false;
    pthread_mutex_unlock(&w->mu);
    if (!done)
        return false;
    w->busy = false;
    if (out)
        result_of(w, out);
    return true;
}
