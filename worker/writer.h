/*
 * writer.h - the commit thread: writes prepared batches into the store.
 *
 * The thread that owns the state prepares a batch into the writer's log
 * (sm_persist_prepare into sm_writer_log: encoding only, no LMDB) and
 * hands it over with sm_writer_submit(); the writer thread writes it with
 * sm_store_apply() (the LMDB puts, the page copies, the commit and its
 * fdatasync) while the owner goes on with the next events. The owner
 * learns the outcome with sm_writer_poll() and only then tells the
 * persister (sm_persist_complete), publishes the conclusions held for
 * that batch and acknowledges its input: nothing goes out before the
 * commit that holds it.
 *
 * One batch at a time: submit is refused while one is in hand, and the
 * owner completes a batch before it prepares the next, so batches reach
 * the store in the order they were prepared, and a failed one is redone
 * from memory (persist.h) before anything later is written. The log is
 * the writer's; the owner records into it only while no batch is in hand.
 *
 * While a batch is in hand the store belongs to the writer thread: the
 * owner must not use it (no flush, scan, stats or grow) until poll said
 * done. Readers on other threads (sm_store_scan_shared) may go on, as
 * during any commit.
 *
 * Thread safety: every function from the owner's thread only. No logging.
 */
#ifndef SM_WRITER_H
#define SM_WRITER_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"
#include "store.h"

typedef struct sm_writer sm_writer;

/* What became of the batch in hand (valid until the next submit). */
typedef struct sm_writer_result {
    sm_status applied;          /* sm_store_apply(): SM_OK = committed */
    size_t parts;               /* parts of its log */
    const sm_status *part_status;   /* each part's status (NULL if none) */
    size_t bytes;               /* size of its log */
    double seconds;             /* wall time the writer spent on it */
} sm_writer_result;

/* Starts the writer thread over st (borrowed: must outlive the writer).
 * wake(ud), if set, is called from the writer thread when a batch is
 * done (e.g. to wake the owner's wait for input). Errors: SM_ERR_INVALID,
 * SM_ERR_NOMEM, SM_ERR_STORE (no thread). */
sm_status sm_writer_start(sm_writer **out, sm_store *st, void (*wake)(void *),
                          void *ud);
/* Waits for the batch in hand, if any (its outcome is dropped: poll it
 * first), stops and joins the thread, frees. NULL is a no-op. */
void sm_writer_stop(sm_writer *w);

/* The log to prepare the next batch into (NULL while a batch is in hand). */
sm_store *sm_writer_log(sm_writer *w);
/* Hands the prepared (committed) log to the writer thread. Errors:
 * SM_ERR_INVALID (a batch in hand, NULL), SM_ERR_NOMEM (nothing handed
 * over: the log was not written). */
sm_status sm_writer_submit(sm_writer *w);
/* Writes the prepared log on the calling thread instead (a small batch:
 * cheaper than a hand-over and a wake-up) and fills *out as poll would.
 * Errors: SM_ERR_INVALID (a batch in hand, NULL), SM_ERR_NOMEM (not
 * written). */
sm_status sm_writer_write_here(sm_writer *w, sm_writer_result *out);
/* Whether a batch is in hand (submitted, its outcome not yet polled). */
bool sm_writer_busy(const sm_writer *w);
/* Whether the batch in hand is written; with wait, blocks until it is.
 * On true fills *out and the writer is free again. False when not done
 * yet, or when no batch is in hand. */
bool sm_writer_poll(sm_writer *w, bool wait, sm_writer_result *out);

#endif
