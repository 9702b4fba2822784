/*
 * storecheck.h - an LMDB data file checked, page by page, before LMDB maps
 * it.
 *
 * LMDB trusts its file: it follows page numbers and node offsets without
 * bounds checks, so a truncated or damaged data file can make it read past
 * the map (SIGBUS), past a page (SIGSEGV), loop for ever, or quietly serve
 * part of the tree. sm_storecheck() reads the file with pread (never
 * mapped, so nothing here can fault) and walks what LMDB would: both meta
 * pages, then, from the newest, the free-page tree, the main tree and the
 * named database it holds, checking on every page what LMDB takes on
 * trust: the page number in its header, its kind, the bounds of its node
 * table, each node inside the page, keys in order and inside their
 * parent's bounds, every tree of one depth, overflow runs whole, page
 * numbers inside the file and reached once only (a page reached twice is
 * a cycle or a cross-link), free lists well formed, and the counts the
 * tree's record keeps (pages of each kind, entries, depth) equal to what
 * the walk found. A file that passes can be opened and read by LMDB
 * without a fault, and a scan of it visits every entry the file records.
 *
 * The on-disk format read here is LMDB 0.9's (MDB_DATA_VERSION 1, 64-bit
 * page numbers, the default comparator); a file of another version is
 * refused. The check assumes no other process writes the environment
 * while it runs (the worker owns its store).
 *
 * Cost: one pread per page in use, once, at open (a 64 MiB store: about
 * 16,000 reads).
 *
 * No function logs; errors come back as a sentence.
 */
#ifndef SM_STORECHECK_H
#define SM_STORECHECK_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* What the check found. */
typedef struct sm_storecheck_result {
    uint32_t page_size;
    uint64_t txnid;             /* of the meta page in use */
    uint64_t last_page;         /* its last page number */
    uint64_t file_pages;        /* whole pages in the file */
    uint64_t pages_used;        /* pages reached by the walk */
    uint64_t entries;           /* entries of database `name` */
} sm_storecheck_result;

/* Checks the LMDB data file at path, whose named database `name` (the one
 * the store keeps its records in) must hold keys of at most max_key bytes.
 * *out is filled with what was found so far. Returns SM_OK when the file
 * is sound, SM_ERR_NOT_FOUND when there is no such file, SM_ERR_CORRUPT
 * (not an LMDB file of this version, or damaged: why says where and
 * what), SM_ERR_IO (cannot read it), SM_ERR_NOMEM, SM_ERR_INVALID. why
 * (cap bytes) is always set: "" on SM_OK. */
sm_status sm_storecheck(const char *path, const char *name, size_t max_key,
                        sm_storecheck_result *out, char *why, size_t cap);

#endif
