/*
 * persist.h - the core's state in the store, written by group commit.
 *
 * Each swarm is stored as one swarm blob and its agents' blobs in pages of
 * SM_AGENT_PAGE, exactly as the core exports them (core/encode.h, "Agent
 * pages"; the blobs are opaque here):
 *
 *   "s" 0x00 <swarm id>                   swarm-wide state
 *   "g" 0x00 <swarm id> 0x00 <u32 BE p>   agent page p: the agents at
 *                                         table entries 4p .. 4p+3, their
 *                                         blobs one after another
 *   "a" 0x00 <swarm id> 0x00 <agent id>   one agent (the layout before
 *                                         pages: read, then moved into
 *                                         pages by the next flush)
 *   "c" 0x00 <source name>                an input cursor (see below)
 *   "m" 0x00 "meta"                       the meta record (core/encode.h:
 *                                         applied stream sequence and
 *                                         configuration hash)
 *   "r" 0x00, "x" 0x00, "y" 0x00 ...      the services' records (per-minute
 *                                         task aggregates, decision log:
 *                                         service_store.h), written by the
 *                                         extra writer (sm_persist_set_extra)
 *                                         in the same batch; load skips them
 *
 * (ids never contain a NUL byte, so keys do not collide and a prefix scan
 * of "g" 0x00 <swarm> 0x00 finds one swarm's pages, in page order.) Why
 * pages: with 100 k agents nearly every agent changes between two commits,
 * and a put costs the same for 250 bytes as for 1.8 KB; four to a page
 * cut the commit thread's CPU by about half (README, "Commit cost with
 * 100 k agents"). A page value stays under LMDB's largest node, so it is
 * never moved to overflow pages. A commit writes each page that holds a
 * changed agent, then deletes the swarm's pages past its last (agents
 * were removed; sm_store_del_from). The two-byte key
 * "m" 0x00 is written and deleted again while pruning (see below); it is
 * not the meta key, whose six bytes start with it. Load reads no other
 * key, and reports each (below).
 *
 * Versions. A blob the core rejects as corrupt (SM_ERR_CORRUPT: checksum,
 * size, field) is counted in `corrupt` and its key deleted by the next
 * flush: there is nothing in it this or any build can read. So is an
 * agent key whose sound blob names another agent (the agent is loaded
 * under the blob's id). In a page, each agent blob that cannot be read
 * (or the rest of a page that cannot be split, or an agent a page before
 * held too) is counted in `corrupt` and told; the page is not deleted:
 * its swarm is loaded all dirty, so the next flush writes every page of
 * it again from the agents that did load (and deletes those past the
 * last). So is a swarm whose pages do not give back a full table (a page
 * missing or short), and one with agents of the layout before pages,
 * whose keys are then queued for deletion. A key of no shape this build writes is counted in
 * `unknown` and kept. Each of these keys is told to the sm_persist_on_drop
 * function with what became of it, so nothing is dropped unsaid. A blob of a
 * NEWER format (SM_ERR_VERSION: written by a later build, e.g. before a
 * rollback) is never deleted and never overwritten: it is counted in
 * `newer`, and its swarm is HELD: the swarm is not loaded (it is taken out
 * of the registry if part of it was), none of its blobs is read further,
 * and no flush of this persister writes, expires or deletes any key of
 * it. If events for a held swarm arrive, the worker decides on them from
 * an empty state, in memory only; its store keys stay as the newer build
 * left them, for that build to resume. A held swarm stays held for the
 * life of the persister (sm_persist_is_held). A newer meta record is
 * likewise counted, kept, and not written by this persister. An older
 * swarm blob (version 2) is migrated by the core and its swarm loaded
 * dirty (counted in `migrated`), so the next flush rewrites it in the
 * current format.
 *
 * sm_persist_load() rebuilds the registry at start. sm_persist_flush()
 * writes what changed since the last flush in ONE store batch: expired
 * agents leave with their pages (counted in agents_deleted), dirty swarm
 * blobs and agent pages are put, and only once
 * the batch has committed is the core's dirty state cleared. Each swarm
 * is written in a part of its own (store.h): a swarm whose part fails
 * (too big for the map, too many pages for one transaction, out of
 * memory) is counted and named in the result and stays dirty in memory,
 * and the batch commits every other swarm; the meta record is then not
 * written, since the store does not hold all of what it describes. A
 * failed flush loses nothing: what was dirty stays dirty in memory and
 * the deletions stay queued, so the next flush writes them.
 *
 * A full map is handled here: the batch is redone after sm_store_grow()
 * while the store may grow; once it may not, idle agents are pruned
 * (expired with a shorter retention, halved per round, never below one
 * detection window), their deletion committed on its own (every page of a
 * swarm that lost agents, which is then all dirty: a page rewritten in
 * place would need its old and new copy at once; followed by one small
 * settling write, since LMDB reuses a freed page only two commits later),
 * and the batch redone (a crash between the two leaves those swarms with
 * no agents in the store); if it still does not fit, SM_ERR_MAP_FULL
 * is returned with everything dirty kept in memory. Pruning only removes
 * agents sm_swarm_expire() would remove later anyway (idle, nothing
 * raised); it never drops a live window.
 *
 * No function logs: results and statuses tell the caller what happened.
 * The store batch is only open around the writes, never across anything
 * that blocks. Thread safety: none; use the sm_persist, its store and the
 * registry from one thread.
 */
#ifndef SM_PERSIST_H
#define SM_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "encode.h"
#include "registry.h"
#include "status.h"
#include "store.h"

typedef struct sm_persist sm_persist;

/* What a load found. */
typedef struct sm_persist_load_result {
    size_t swarms;          /* swarm blobs imported */
    size_t agents;          /* agent blobs imported */
    size_t corrupt;         /* blobs or keys rejected, deleted next flush */
    size_t migrated;        /* swarm blobs of an older format, rewritten
                               by the next flush */
    size_t newer;           /* blobs of a newer format, kept untouched */
    size_t held;            /* swarms not loaded because of them */
    size_t unknown;         /* keys of no shape this build writes: not
                               read, kept */
    bool have_meta;         /* a meta record was read into `meta` */
    sm_store_meta meta;     /* the stored meta record (zero if none) */
} sm_persist_load_result;

/* What a flush did (counts of the batch that committed, or of the last
 * attempt when it failed; grows, prunes and map_full over all attempts). */
typedef struct sm_persist_result {
    size_t swarms_written;  /* swarm blobs put */
    size_t agents_written;  /* changed agents written (in their pages) */
    size_t agents_deleted;  /* agents that left the store: expired, of a
                               forgotten swarm, or keys of the layout
                               before pages */
    size_t swarms_deleted;  /* swarm keys deleted (forgotten swarms) */
    bool meta_written;      /* the meta record was put */
    size_t expired;         /* agents removed from memory by retention */
    size_t map_full;        /* batches that hit a full map */
    size_t grows;           /* map growths done to fit the batch */
    size_t prunes;          /* rounds of shortened retention */
    int64_t retention_ms;   /* retention finally applied (0: disabled) */
    size_t swarms_failed;   /* swarms whose write failed: kept dirty in
                               memory, retried by the next flush */
    char failed_swarm[SM_ID_MAX];   /* the first of them ("" if none) */
    sm_status failed_status;        /* and why (SM_OK if none) */
} sm_persist_result;

/* Creates a persister writing to st (borrowed: st must outlive it). Sets
 * *out only on SM_OK. Errors: SM_ERR_INVALID, SM_ERR_NOMEM. */
sm_status sm_persist_create(sm_persist **out, sm_store *st);
/* Frees the persister (queued deletions are dropped). NULL is a no-op. */
void sm_persist_destroy(sm_persist *p);

/* Told of each key sm_persist_load() does not load as it stands: its key
 * (borrowed, klen bytes, not NUL-terminated) and a sentence saying what
 * became of it (dropped and deleted at the next flush, kept for a newer
 * build, kept unread, loaded under another id). */
typedef void (*sm_persist_drop_fn)(void *ud, const void *key, size_t klen,
                                   const char *why);
/* Sets the function told of dropped keys (NULL: nobody is told). */
void sm_persist_on_drop(sm_persist *p, sm_persist_drop_fn fn, void *ud);
/* A store key as text for a log line, into out (cap bytes, NUL-ended,
 * cut short if need be): printable bytes as they are, the NUL separating
 * its parts as '/', others (and a '/' inside an id) as \xHH; a page key
 * ends with '#' and its page number ("g/s0/#3"). */
void sm_persist_key_text(const void *key, size_t klen, char *out, size_t cap);

/* Loads the meta record, then every stored swarm into reg (created
 * through sm_registry_get), swarm blobs first, then agent blobs. A corrupt
 * blob, or a key of the wrong shape, is skipped, counted in out->corrupt
 * and its key queued for deletion at the next flush; a blob of a newer
 * format is counted in out->newer, kept, and its swarm held (see the top
 * of this file). Loaded swarms start clean, except a migrated one, which
 * is dirty so the next flush rewrites it. The loaded meta values become
 * the ones the next flush writes (if set again or never stored).
 * *out is always filled (counts so far on error).
 * Errors: SM_ERR_INVALID, SM_ERR_NOMEM, store errors (SM_ERR_STORE, ...)
 * from the scan. Must not be called with a store batch open. */
sm_status sm_persist_load(sm_persist *p, sm_registry *reg,
                          sm_persist_load_result *out);

/* Group commit of every swarm in reg. First expires agents idle for more
 * than retention_ms of event time (sm_swarm_expire; retention_ms <= 0
 * disables expiry and pruning) and queues their deletion; then writes
 * the queued deletions and every dirty swarm and agent blob in one batch,
 * each swarm in a part of its own, and commits it. On SM_OK the swarms
 * are clean and the queue empty. When some swarms could not be written
 * (res->swarms_failed, the first named in res->failed_swarm with
 * res->failed_status) the others are committed and clean, and that
 * status is returned. *res is always filled. Errors: SM_ERR_MAP_FULL (no
 * room even after growing and pruning, for the batch or for some swarms;
 * nothing lost from memory, retried at the next flush), SM_ERR_NOMEM,
 * SM_ERR_STORE, SM_ERR_INVALID. Must not be called with a store batch
 * open. */
sm_status sm_persist_flush(sm_persist *p, sm_registry *reg,
                           int64_t retention_ms, sm_persist_result *res);

/* Prepared batches: a commit written by another thread (writer.h).
 *
 * sm_persist_prepare() does on the calling thread what a flush does up to
 * the store: expiry, then the queued deletions, each dirty swarm in a
 * part of its own, the extra writer's records, and (conditional on every
 * part: sm_store_log_cond) the meta record and the cursors, recorded
 * into log (a log store, store.h) instead of written. The swarms are
 * then clean in memory, as after a commit: the log holds their state.
 * The log is then written elsewhere (sm_store_apply) while the caller
 * goes on changing the registry, and sm_persist_complete() is told how it
 * went, on the caller's thread again, before the next prepare or flush:
 *  - committed, every part in: the deletions it carried leave the queue;
 *  - committed, some parts failed: those swarms are marked dirty in full
 *    (sm_swarm_mark_all_dirty: memory is newer than the log), and the
 *    meta record and cursors the log carried are pending again; the
 *    status of the first failed part is returned;
 *  - not committed: the same for every part, the deletions stay queued,
 *    and the extra writer's records (handed over at prepare: its done()
 *    was called with true) are carried in memory and written first by
 *    the next batch, prepared or flushed. The apply status is returned.
 * So nothing is lost and nothing is written twice out of order: the next
 * batch rewrites from memory what the failed one held. A full map is the
 * caller's to handle after completion: sm_persist_flush() grows, prunes
 * and reports as described above. While prepared, sm_persist_flush() and
 * a second prepare return SM_ERR_INVALID.
 * res of prepare counts what the log holds; res of complete names the
 * failed swarms. Errors of prepare: SM_ERR_INVALID, SM_ERR_NOMEM (nothing
 * changed). */
sm_status sm_persist_prepare(sm_persist *p, sm_registry *reg,
                             int64_t retention_ms, sm_store *log,
                             sm_persist_result *res);
/* Calls the extra writer's sync_begin (open) or sync_end: around the
 * writing of a prepared batch on the caller's own thread, as a flush does
 * around its commit. */
void sm_persist_window(sm_persist *p, bool open);
/* Whether a prepared batch waits for sm_persist_complete(), and how many
 * parts its log has. */
bool sm_persist_prepared(const sm_persist *p);
size_t sm_persist_prepared_parts(const sm_persist *p);
/* applied: what sm_store_apply() returned; part_status: each part's
 * status (sm_persist_prepared_parts() of them; NULL: all SM_OK). */
sm_status sm_persist_complete(sm_persist *p, sm_registry *reg,
                              sm_status applied, const sm_status *part_status,
                              sm_persist_result *res);

/* Number of key deletions queued and not yet committed. */
size_t sm_persist_pending_deletes(const sm_persist *p);

/* Whether swarm is held: a blob of it was written by a newer build, so
 * this persister never writes or deletes any of its keys. */
bool sm_persist_is_held(const sm_persist *p, const char *swarm);

/* Remember the input stream sequence the in-memory state reflects, and
 * the hash of the configuration it was built under; both are written in
 * the same batch as the blobs by the next sm_persist_flush() that
 * commits (a failed flush writes neither; they stay pending). Reading
 * them back: sm_persist_load_result.meta. NULL p is a no-op. */
void sm_persist_set_applied(sm_persist *p, uint64_t seq);
void sm_persist_set_config_hash(sm_persist *p, uint64_t hash);
/* The same for the bus clock the state was built at (copied; unchanged:
 * nothing to write). */
void sm_persist_set_bus(sm_persist *p, const sm_bus_state *bus);

/* Input cursors: the last input stream sequence applied, per input
 * source (a JetStream consumer, js.h), stored under "c" 0 <name> as a
 * version byte and the sequence (little-endian, 8 bytes). A cursor set
 * here is written by the next sm_persist_flush() that commits every swarm,
 * in the same batch as the state it describes (like the meta record), so
 * the stored cursor never runs ahead of the stored state. Loaded by
 * sm_persist_load(). At most SM_PERSIST_CURSORS names, each shorter than
 * SM_PERSIST_CURSOR_NAME bytes. Errors: SM_ERR_INVALID (bad name),
 * SM_ERR_FULL (too many names). */
#define SM_PERSIST_CURSORS 256
#define SM_PERSIST_CURSOR_NAME 64
typedef struct sm_persist_cursor_t {
    char name[SM_PERSIST_CURSOR_NAME];
    uint64_t seq;
    bool dirty;
} sm_persist_cursor_t;
sm_status sm_persist_set_cursor(sm_persist *p, const char *name, uint64_t seq);
/* The cursor's sequence as loaded or last set, 0 if none. */
uint64_t sm_persist_cursor(sm_persist *p, const char *name);
/* Records written beside the state, in the same batch (so they commit
 * with the state they describe): write(ud, st) is called inside each
 * batch attempt after the swarms and the meta record, and puts or
 * deletes through st; an error from it fails the attempt like any write
 * (a full map grows the store and retries, calling write again). done(ud,
 * committed) follows each attempt. Either may be NULL; extra is copied
 * (NULL: none). */
typedef struct sm_persist_extra {
    sm_status (*write)(void *ud, sm_store *st);
    void (*done)(void *ud, bool committed);
    /* around the store commit of a batch (its sync to disk): the caller's
     * state is not touched between the two calls */
    void (*sync_begin)(void *ud);
    void (*sync_end)(void *ud);
    void *ud;
} sm_persist_extra;
void sm_persist_set_extra(sm_persist *p, const sm_persist_extra *extra);

/* Queues the deletion of the swarm's blob and of every agent blob stored
 * under it (a prefix scan now; agents first stored after this call are not
 * covered) for the next flush. Remove the swarm from the registry too
 * (sm_registry_remove), or the flush writes its dirty parts again after
 * deleting them. A held swarm is left alone (SM_OK, nothing queued): its
 * state belongs to a newer build. On error nothing is queued. Errors:
 * SM_ERR_INVALID (NULL, bad id), SM_ERR_NOMEM, store errors from the scan.
 * Must not be called with a store batch open. */
sm_status sm_persist_forget_swarm(sm_persist *p, const char *swarm);

#endif
