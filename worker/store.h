/*
 * store.h - a small key/value store over one LMDB environment.
 *
 * The store knows nothing of swarms: keys and values are bytes. It gives
 * the worker group commit (many puts in one write transaction), prefix
 * scans for loading state at start, and explicit handling of a full map.
 *
 * Lifecycle: sm_store_open() creates the directory if needed and opens the
 * environment (MDB_NOTLS; one named database "windows"); sm_store_close().
 *
 * Writes: sm_store_begin(), any number of sm_store_put()/sm_store_del(),
 * then sm_store_commit() or sm_store_abort(). One batch at a time, from one
 * thread (LMDB has one writer). A batch is never held across a publish or
 * any other blocking call: the caller opens it, writes, commits.
 *
 * Parts: inside a batch, sm_store_part_begin() opens a part (an LMDB nested
 * transaction); its writes join the batch with sm_store_part_commit() or
 * vanish with sm_store_part_abort(). A write that fails inside a part
 * ends the part only: the batch stays open and keeps what earlier parts
 * wrote, so one record that cannot be written (too big for the map, too
 * many pages for one transaction) does not sink the others.
 *
 * Full map: when put, del or commit hits MDB_MAP_FULL the batch is aborted
 * and SM_ERR_MAP_FULL is returned; nothing of the batch is written and the
 * caller still holds its data. It may then call sm_store_grow() (doubles
 * the map, up to cfg.map_max) and write the batch again, or free space
 * (delete keys) first.
 *
 * Durability: commits are synchronous (no MDB_NOSYNC), so what a commit
 * returned SM_OK for survives SIGKILL and power loss.
 *
 * Errors: every function returns sm_status; sm_store_error() gives the last
 * LMDB message for a log line. No function logs.
 * Thread safety: one thread at a time per sm_store.
 */
#ifndef SM_STORE_H
#define SM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct sm_store_config {
    const char *dir;        /* environment directory; created 0700 if absent */
    size_t map_size;        /* initial map size in bytes (0: 64 MiB) */
    size_t map_max;         /* growth limit; == map_size forbids growth;
                               0 means map_size; below map_size: invalid */
    char *why;              /* optional (NULL): where a failed open writes
                               why, for the caller's log line */
    size_t why_cap;
} sm_store_config;

typedef struct sm_store sm_store;

/* Opens (creating if needed). Sets *out only on SM_OK; on failure a
 * sentence saying why goes to err (errcap bytes; err may be NULL) and to
 * cfg->why (if set). If the environment is already larger than map_size,
 * its size is kept. Errors: SM_ERR_INVALID, SM_ERR_IO (directory, data
 * file unreadable), SM_ERR_CORRUPT (not an LMDB environment, or a damaged
 * one), SM_ERR_STORE, SM_ERR_NOMEM. */
sm_status sm_store_open(sm_store **out, const sm_store_config *cfg,
                        char *err, size_t errcap);
/* Aborts an open batch and closes. NULL is a no-op. */
void sm_store_close(sm_store *st);

/* Opens the batch (an LMDB write transaction). Errors: SM_ERR_INVALID if
 * a batch is already open, SM_ERR_STORE. */
sm_status sm_store_begin(sm_store *st);
/* Copies key and value into the batch (into its open part, if any). klen
 * 1..511. Errors: SM_ERR_INVALID (no batch open, bad length; the batch
 * stays open), SM_ERR_MAP_FULL or SM_ERR_STORE (inside a part: the part
 * is aborted and the batch stays open; otherwise the batch is aborted:
 * LMDB cannot continue it). */
sm_status sm_store_put(sm_store *st, const void *key, size_t klen,
                       const void *val, size_t vlen);
/* Deleting a missing key is SM_OK. Errors as sm_store_put(). */
sm_status sm_store_del(sm_store *st, const void *key, size_t klen);
/* Deletes key and every key after it that starts with its first plen
 * bytes (plen <= klen): the tail of a range, e.g. the pages of a swarm
 * from one on. None is SM_OK. Errors as sm_store_put(). */
sm_status sm_store_del_from(sm_store *st, const void *key, size_t klen,
                            size_t plen);
/* Commits and syncs the batch; the batch is over whatever the result.
 * Errors: SM_ERR_INVALID (no batch), SM_ERR_MAP_FULL, SM_ERR_STORE. */
sm_status sm_store_commit(sm_store *st);
/* Discards the open batch, if any (and its open part). */
void sm_store_abort(sm_store *st);

/* Opens a part inside the open batch; puts and dels go to it until it
 * ends. Errors: SM_ERR_INVALID (no batch, or a part already open),
 * SM_ERR_NOMEM, SM_ERR_STORE. */
sm_status sm_store_part_begin(sm_store *st);
/* Joins the part's writes to the batch. The part is over whatever the
 * result. Errors: SM_ERR_INVALID (no part), SM_ERR_NOMEM, SM_ERR_STORE. */
sm_status sm_store_part_commit(sm_store *st);
/* Discards the open part, if any; the batch goes on. */
void sm_store_part_abort(sm_store *st);

/* Doubles the map size, capped at map_max. Must be called with no batch
 * open. Errors: SM_ERR_FULL when already at map_max, SM_ERR_STORE. */
sm_status sm_store_grow(sm_store *st);

/* Room for a batch of about `bytes` (a log's sm_store_log_bytes): grows
 * the map, as sm_store_grow, until the pages in use plus twice that plus
 * 1 MiB fit (a batch copies every page it touches, and LMDB reuses freed
 * pages only two commits later). For a batch written where growing is not
 * allowed (another thread's sm_store_apply): grown before it is handed
 * over instead of failing there with MDB_MAP_FULL. *grown (may be NULL)
 * counts the doublings. Must be called with no batch open. Errors:
 * SM_ERR_FULL when map_max stops it short (the batch may still fit),
 * SM_ERR_INVALID, SM_ERR_STORE. */
sm_status sm_store_make_room(sm_store *st, size_t bytes, unsigned *grown);

/* Visitor for scans: key and value are borrowed views valid only during
 * the call. Returning other than SM_OK stops the scan with that status. */
typedef sm_status (*sm_store_scan_fn)(void *ud, const void *key, size_t klen,
                                      const void *val, size_t vlen);
/* Visits every key starting with prefix (plen 0: all keys) in key order,
 * inside one read transaction. Must not be called with a batch open. */
sm_status sm_store_scan(sm_store *st, const void *prefix, size_t plen,
                        sm_store_scan_fn fn, void *ud);

/* The same, starting at the first key >= from (flen 0: at the prefix):
 * a range scan. */
sm_status sm_store_scan_from(sm_store *st, const void *prefix, size_t plen,
                             const void *from, size_t flen,
                             sm_store_scan_fn fn, void *ud);

/* The same from another thread while the owner's batch may be open or
 * committing (MDB_NOTLS: a read transaction is not tied to a thread; it
 * sees the last committed state). Never on the thread that holds the
 * batch. Touches only what is fixed at open (the environment, the
 * database handle), so it does not race with the owner; not during
 * sm_store_grow (the caller excludes that). */
sm_status sm_store_scan_shared(sm_store *st, const void *prefix, size_t plen,
                               const void *from, size_t flen,
                               sm_store_scan_fn fn, void *ud);

typedef struct sm_store_stats {
    size_t map_size;        /* current map size */
    size_t used_bytes;      /* pages in use * page size (high-water mark) */
    size_t entries;         /* keys in the database */
    uint64_t grows;         /* sm_store_grow() calls that succeeded */
    uint64_t map_full;      /* MDB_MAP_FULL hits */
} sm_store_stats;

/* Fills *out (works with or without a batch open; entries then count the
 * batch's uncommitted writes). Errors: SM_ERR_INVALID, SM_ERR_STORE. */
sm_status sm_store_stats_get(sm_store *st, sm_store_stats *out);

/* Logs. A log store holds no data: between sm_store_begin() and
 * sm_store_commit() its puts, dels and parts are recorded in memory (keys
 * and values copied), for sm_store_apply() to write into a real store
 * later, from another thread. This is how a batch is prepared on the
 * thread that owns the state and written by the commit thread
 * (writer.h): code that writes a batch through sm_store_put() does not
 * need to know which of the two it writes to. On a log store begin
 * empties the log, part_abort drops what the part recorded, abort
 * empties the log, commit only closes it (nothing is written anywhere);
 * grow, scans and stats are SM_ERR_INVALID. Errors of the writes:
 * SM_ERR_INVALID (no batch, bad length), SM_ERR_NOMEM. */
sm_status sm_store_log_open(sm_store **out);
/* Marks the rest of the log conditional: sm_store_apply() writes what is
 * recorded after this only if every part before it went in. At most once
 * a batch, outside a part. Errors: SM_ERR_INVALID, SM_ERR_NOMEM. */
sm_status sm_store_log_cond(sm_store *st);
/* Parts committed into the log, and its size in bytes. */
size_t sm_store_log_parts(const sm_store *st);
size_t sm_store_log_bytes(const sm_store *st);

/* Writes every put and del of a committed log, in order, into the batch
 * open on st (a real store or another log), ignoring its parts and its
 * condition. Errors: SM_ERR_INVALID, and those of the writes. */
sm_status sm_store_log_replay(sm_store *st, const sm_store *log);

/* Told of each part sm_store_apply() wrote or failed to write, in log
 * order (index from 0) with its status (SM_OK: joined the batch). */
typedef void (*sm_store_part_fn)(void *ud, size_t part, sm_status s);
/* Writes a committed log into st (a real store) as one batch: begin,
 * each record in order (each part in a part of its own: a part that
 * fails is dropped and reported to on_part, the batch goes on, as with
 * sm_store_part_*), the conditional rest only if no part failed, then
 * commit. SM_OK: the batch committed (some parts may have failed: see
 * on_part). Otherwise nothing of the log is in st. Same rules as a batch
 * (no batch open; one thread at a time per st); log is only read, so
 * another thread may record into a different log meanwhile. Errors:
 * SM_ERR_INVALID (log still open, not a log), SM_ERR_MAP_FULL,
 * SM_ERR_STORE, SM_ERR_NOMEM. While it runs, sm_store_scan() and
 * sm_store_scan_from() on st from another thread wait for it to end, so
 * that the owner of the state reads what the batch wrote (and never
 * touches the batch). */
sm_status sm_store_apply(sm_store *st, const sm_store *log,
                         sm_store_part_fn on_part, void *ud);
/* Called by the owner before it hands a log to another thread for
 * sm_store_apply(): from then on its scans wait for that apply to end,
 * even if the other thread has not begun it yet. */
void sm_store_apply_coming(sm_store *st);

/* Last LMDB error text (static storage inside st), "" if none. */
const char *sm_store_error(const sm_store *st);

#endif
