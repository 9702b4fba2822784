/*
 * persist.h - the core's state in the store, written by group commit.
 *
 * Each swarm is stored as one swarm blob and one blob per agent, exactly
 * as the core exports them (core/encode.h; the blobs are opaque here):
 *
 *   "s" 0x00 <swarm id>                   swarm-wide state
 *   "a" 0x00 <swarm id> 0x00 <agent id>   one agent
 *
 * (ids never contain a NUL byte, so keys do not collide and a prefix scan
 * of "a" 0x00 <swarm> 0x00 finds one swarm's agents.) The key "m" 0x00 is
 * written and deleted again while pruning (see below); load ignores every
 * key outside the two prefixes.
 *
 * sm_persist_load() rebuilds the registry at start. sm_persist_flush()
 * writes what changed since the last flush in ONE store batch: expired
 * agents are deleted, dirty swarm and agent blobs are put, and only once
 * the batch has committed is the core's dirty state cleared. A failed
 * flush loses nothing: what was dirty stays dirty in memory and the
 * deletions stay queued, so the next flush writes them.
 *
 * A full map is handled here: the batch is redone after sm_store_grow()
 * while the store may grow; once it may not, idle agents are pruned
 * (expired with a shorter retention, halved per round, never below one
 * detection window), their deletion committed on its own (followed by one
 * small settling write, since LMDB reuses a freed page only two commits
 * later), and the batch redone; if it still does not fit, SM_ERR_MAP_FULL
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

#include <stddef.h>
#include <stdint.h>

#include "registry.h"
#include "status.h"
#include "store.h"

typedef struct sm_persist sm_persist;

/* What a load found. */
typedef struct sm_persist_load_result {
    size_t swarms;          /* swarm blobs imported */
    size_t agents;          /* agent blobs imported */
    size_t corrupt;         /* blobs or keys rejected and skipped */
} sm_persist_load_result;

/* What a flush did (counts of the batch that committed, or of the last
 * attempt when it failed; grows, prunes and map_full over all attempts). */
typedef struct sm_persist_result {
    size_t swarms_written;  /* swarm blobs put */
    size_t agents_written;  /* agent blobs put */
    size_t agents_deleted;  /* agent keys deleted */
    size_t expired;         /* agents removed from memory by retention */
    size_t map_full;        /* batches that hit a full map */
    size_t grows;           /* map growths done to fit the batch */
    size_t prunes;          /* rounds of shortened retention */
    int64_t retention_ms;   /* retention finally applied (0: disabled) */
} sm_persist_result;

/* Creates a persister writing to st (borrowed: st must outlive it). Sets
 * *out only on SM_OK. Errors: SM_ERR_INVALID, SM_ERR_NOMEM. */
sm_status sm_persist_create(sm_persist **out, sm_store *st);
/* Frees the persister (queued deletions are dropped). NULL is a no-op. */
void sm_persist_destroy(sm_persist *p);

/* Loads every stored swarm into reg (created through sm_registry_get),
 * swarm blobs first, then agent blobs. A blob the core rejects, or a key
 * of the wrong shape, is skipped and counted in out->corrupt; a stray
 * agent key is queued for deletion at the next flush. Loaded swarms start
 * clean (nothing dirty). *out is always filled (counts so far on error).
 * Errors: SM_ERR_INVALID, SM_ERR_NOMEM, store errors (SM_ERR_STORE, ...)
 * from the scan. Must not be called with a store batch open. */
sm_status sm_persist_load(sm_persist *p, sm_registry *reg,
                          sm_persist_load_result *out);

/* Group commit of every swarm in reg. First expires agents idle for more
 * than retention_ms of event time (sm_swarm_expire; retention_ms <= 0
 * disables expiry and pruning) and queues their deletion; then writes
 * the queued deletions and every dirty swarm and agent blob in one batch
 * and commits it. On SM_OK the swarms are clean and the queue empty.
 * *res is always filled. Errors: SM_ERR_MAP_FULL (no room even after
 * growing and pruning; nothing lost from memory, retried at the next
 * flush), SM_ERR_NOMEM, SM_ERR_STORE, SM_ERR_INVALID. Must not be called
 * with a store batch open. */
sm_status sm_persist_flush(sm_persist *p, sm_registry *reg,
                           int64_t retention_ms, sm_persist_result *res);

/* Number of agent deletions queued and not yet committed. */
size_t sm_persist_pending_deletes(const sm_persist *p);

#endif
