/*
 * storecheck.c - an LMDB data file checked before LMDB maps it (see
 * storecheck.h).
 *
 * The layout below is LMDB 0.9's on a 64-bit host (mdb.c: MDB_page,
 * MDB_node, MDB_db, MDB_meta), read field by field from byte offsets:
 *
 *   page header  u64 pgno, u16 pad, u16 flags, u16 lower, u16 upper (an
 *                overflow page: u32 pages instead of lower/upper), then
 *                the node table: u16 offset per node
 *   node         u16 lo, u16 hi, u16 flags, u16 ksize, key, data; in a
 *                leaf lo | hi << 16 is the data size, in a branch
 *                lo | hi << 16 | flags << 32 the child page
 *   db record    u32 pad, u16 flags, u16 depth, u64 branch_pages,
 *                u64 leaf_pages, u64 overflow_pages, u64 entries, u64 root
 *   meta         after the page header: u32 magic, u32 version, u64
 *                address, u64 mapsize, db record free, db record main,
 *                u64 last_pg, u64 txnid; the page size is the free
 *                record's pad
 *
 * Each tree level has a page buffer of its own, so a branch page stays
 * intact (its keys bound its children) while its subtree is walked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storecheck.h"

_Static_assert(sizeof(size_t) == 8, "storecheck reads LMDB's 64-bit layout");

#define PAGEHDRSZ 16u
#define NODESIZE 8u
#define P_BRANCH 0x01u
#define P_LEAF 0x02u
#define P_OVERFLOW 0x04u
#define P_META 0x08u
#define F_BIGDATA 0x01u
#define F_SUBDATA 0x02u
#define DB_INTEGERKEY 0x08u
#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_DATA_VERSION 1u
#define NUM_METAS 2u
#define P_INVALID UINT64_MAX
#define MAX_DEPTH 32            /* LMDB's cursor stack */
#define MAX_KEY 511u
#define DB_SIZE 48u
#define META_SIZE 136u          /* after the page header */
#define MIN_PSIZE 512u
#define MAX_PSIZE 32768u
#define MAX_BYTES (UINT64_C(1) << 40)

typedef struct db_rec {
    uint32_t pad;
    uint16_t flags, depth;
    uint64_t branch, leaf, overflow, entries, root;
} db_rec;

typedef struct meta {
    uint32_t magic, version, flags;
    uint64_t mapsize;
    db_rec dbs[2];              /* free, main */
    uint64_t last_pg, txnid;
} meta;

typedef enum tree_kind { T_FREE, T_MAIN, T_DATA } tree_kind;

static const char *const tree_names[] = {"free-page", "main", "data"};

typedef struct walk {
    int fd;
    uint32_t psize;
    uint64_t file_pages, last_pg;
    uint8_t *seen;              /* a bit per page of the file */
    unsigned char *buf[MAX_DEPTH + 1];
    unsigned char *ov;          /* overflow data of a free list */
    size_t ov_cap;
    const char *name;           /* the data tree's name in the main tree */
    size_t max_key;
    tree_kind kind;
    const db_rec *db;
    uint64_t branch, leaf, overflow, entries;
    unsigned char last[MAX_KEY];    /* the walk's latest leaf key */
    size_t last_len;
    bool have_last;
    db_rec data;                /* the data tree's record, once found */
    bool have_data;
    uint64_t used;
    char *why;
    size_t cap;
} walk;

static uint16_t ld16(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint32_t ld32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t ld64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static sm_status fail(walk *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->why, w->cap, fmt, ap);
    va_end(ap);
    return SM_ERR_CORRUPT;
}

static void db_of(const unsigned char *p, db_rec *d)
{
    d->pad = ld32(p);
    d->flags = ld16(p + 4);
    d->depth = ld16(p + 6);
    d->branch = ld64(p + 8);
    d->leaf = ld64(p + 16);
    d->overflow = ld64(p + 24);
    d->entries = ld64(p + 32);
    d->root = ld64(p + 40);
}

/* Reads n bytes at byte offset off; anything short is a damaged file. */
static sm_status read_at(walk *w, void *buf, size_t n, uint64_t off)
{
    ssize_t got = pread(w->fd, buf, n, (off_t)off);
    if (got < 0)
        return SM_ERR_IO;
    if ((size_t)got != n)
        return fail(w, "the file ends inside the %zu bytes at offset %llu", n,
                    (unsigned long long)off);
    return SM_OK;
}

/* Marks pages [pg, pg + n) as reached: each inside the file, after the
 * meta pages, and reached only once. */
static sm_status mark(walk *w, uint64_t pg, uint64_t n, const char *what)
{
    if (pg < NUM_METAS || n > w->file_pages || pg > w->file_pages - n)
        return fail(w, "%s tree: %s page %llu (+%llu) is outside the file's "
                    "%llu pages", tree_names[w->kind], what,
                    (unsigned long long)pg, (unsigned long long)(n - 1),
                    (unsigned long long)w->file_pages);
    if (pg + n - 1 > w->last_pg)
        return fail(w, "%s tree: %s page %llu is past the last page in use "
                    "(%llu)", tree_names[w->kind], what,
                    (unsigned long long)(pg + n - 1),
                    (unsigned long long)w->last_pg);
    for (uint64_t p = pg; p < pg + n; p++) {
        if (w->seen[p >> 3] & (1u << (p & 7)))
            return fail(w, "%s tree: page %llu is reached twice (a cycle or "
                        "a cross-link)", tree_names[w->kind],
                        (unsigned long long)p);
        w->seen[p >> 3] |= (uint8_t)(1u << (p & 7));
        w->used++;
    }
    return SM_OK;
}

static int cmp_key(tree_kind kind, const unsigned char *a, size_t al,
                   const unsigned char *b, size_t bl)
{
    if (kind == T_FREE) {       /* MDB_INTEGERKEY: native size_t */
        uint64_t x = ld64(a), y = ld64(b);
        return x < y ? -1 : x > y;
    }
    int d = memcmp(a, b, al < bl ? al : bl);
    return d ? d : (al < bl ? -1 : al > bl);
}

/* Whether key lies in [lo, hi) (NULL: unbounded). */
static bool in_bounds(const walk *w, const unsigned char *k, size_t kl,
                      const unsigned char *lo, size_t lol,
                      const unsigned char *hi, size_t hil)
{
    return (!lo || cmp_key(w->kind, k, kl, lo, lol) >= 0) &&
           (!hi || cmp_key(w->kind, k, kl, hi, hil) < 0);
}

/* The data of a big leaf value: its overflow run, checked and marked;
 * its bytes read into w->ov when want_data. */
static sm_status overflow(walk *w, uint64_t pg, uint64_t dsize, bool want_data)
{
    uint64_t pages = (PAGEHDRSZ - 1 + dsize) / w->psize + 1;
    sm_status s = mark(w, pg, pages, "overflow");
    if (s != SM_OK)
        return s;
    unsigned char hdr[PAGEHDRSZ];
    if ((s = read_at(w, hdr, sizeof hdr, pg * w->psize)) != SM_OK)
        return s;
    if (ld64(hdr) != pg || ld16(hdr + 10) != P_OVERFLOW || ld32(hdr + 12) != pages)
        return fail(w, "%s tree: overflow page %llu is not the run of %llu "
                    "pages its node names", tree_names[w->kind],
                    (unsigned long long)pg, (unsigned long long)pages);
    w->overflow += pages;
    if (!want_data)
        return SM_OK;
    if (dsize > w->ov_cap) {
        unsigned char *b = realloc(w->ov, dsize);
        if (!b)
            return SM_ERR_NOMEM;
        w->ov = b;
        w->ov_cap = dsize;
    }
    return read_at(w, w->ov, dsize, pg * w->psize + PAGEHDRSZ);
}

/* A free list: u64 count, then count page numbers, each a page that may
 * be reused (past the end of the file too: freed before ever written). */
static sm_status free_list(walk *w, const unsigned char *d, uint64_t dsize)
{
    if (dsize < 8 || dsize % 8 != 0 || ld64(d) != dsize / 8 - 1)
        return fail(w, "free-page tree: a free list of %llu bytes does not "
                    "hold the count it starts with", (unsigned long long)dsize);
    for (uint64_t i = 1; i < dsize / 8; i++) {
        uint64_t pg = ld64(d + 8 * i);
        if (pg < NUM_METAS || pg > w->last_pg)
            return fail(w, "free-page tree: free page %llu is outside 2..%llu",
                        (unsigned long long)pg, (unsigned long long)w->last_pg);
        sm_status s = pg < w->file_pages ? mark(w, pg, 1, "free") : SM_OK;
        if (s != SM_OK)
            return s;
    }
    return SM_OK;
}

/* One leaf node (validated to fit its page header, key in bounds). */
static sm_status leaf_node(walk *w, uint64_t pgno, unsigned i,
                           const unsigned char *nd, size_t room)
{
    uint16_t flags = ld16(nd + 4), ksize = ld16(nd + 6);
    uint64_t dsize = ld16(nd) | (uint64_t)ld16(nd + 2) << 16;
    const unsigned char *data = nd + NODESIZE + ksize;
    bool big = flags & F_BIGDATA;
    uint16_t allowed = w->kind == T_MAIN ? F_SUBDATA : F_BIGDATA;
    if ((flags & ~allowed) != 0 || (w->kind == T_MAIN && flags != F_SUBDATA))
        return fail(w, "%s tree: page %llu node %u has flags 0x%x", tree_names[w->kind],
                    (unsigned long long)pgno, i, flags);
    if (room < ksize + (big ? 8 : dsize))
        return fail(w, "%s tree: page %llu node %u: its data runs past the page",
                    tree_names[w->kind], (unsigned long long)pgno, i);
    sm_status s = SM_OK;
    if (big) {
        if (dsize == 0 || dsize > (uint64_t)w->file_pages * w->psize)
            return fail(w, "%s tree: page %llu node %u: a big value of %llu bytes",
                        tree_names[w->kind], (unsigned long long)pgno, i,
                        (unsigned long long)dsize);
        s = overflow(w, ld64(data), dsize, w->kind == T_FREE);
        data = w->ov;
    }
    if (s != SM_OK)
        return s;
    if (w->kind == T_FREE)
        return free_list(w, data, dsize);
    if (w->kind == T_MAIN) {
        if (dsize != DB_SIZE || ksize != strlen(w->name) ||
            memcmp(nd + NODESIZE, w->name, ksize) != 0)
            return fail(w, "main tree: page %llu node %u is not the database "
                        "'%s'", (unsigned long long)pgno, i, w->name);
        db_of(data, &w->data);
        w->have_data = true;
    }
    return SM_OK;
}

static sm_status walk_page(walk *w, uint64_t pgno, int level,
                           const unsigned char *lo, size_t lol,
                           const unsigned char *hi, size_t hil);

/* Pass two over a checked branch page: each child with the bounds its
 * key and the next one give it. */
static sm_status walk_children(walk *w, const unsigned char *p, unsigned n,
                               int level, const unsigned char *lo, size_t lol,
                               const unsigned char *hi, size_t hil)
{
    for (unsigned i = 0; i < n; i++) {
        const unsigned char *nd = p + ld16(p + PAGEHDRSZ + 2 * i);
        uint64_t child = ld16(nd) | (uint64_t)ld16(nd + 2) << 16 |
                         (uint64_t)ld16(nd + 4) << 32;
        const unsigned char *clo = lo, *chi = hi;
        size_t clol = lol, chil = hil;
        if (i > 0) {
            clo = nd + NODESIZE;
            clol = ld16(nd + 6);
        }
        if (i + 1 < n) {
            const unsigned char *next = p + ld16(p + PAGEHDRSZ + 2 * (i + 1));
            chi = next + NODESIZE;
            chil = ld16(next + 6);
        }
        sm_status s = walk_page(w, child, level + 1, clo, clol, chi, chil);
        if (s != SM_OK)
            return s;
    }
    return SM_OK;
}

static sm_status walk_page(walk *w, uint64_t pgno, int level,
                           const unsigned char *lo, size_t lol,
                           const unsigned char *hi, size_t hil)
{
    const char *t = tree_names[w->kind];
    unsigned long long pg = (unsigned long long)pgno;
    sm_status s = mark(w, pgno, 1, level == 1 ? "root" : "child");
    if (s != SM_OK)
        return s;
    unsigned char *p = w->buf[level];
    if ((s = read_at(w, p, w->psize, pgno * w->psize)) != SM_OK)
        return s;
    uint16_t flags = ld16(p + 10), lower = ld16(p + 12), upper = ld16(p + 14);
    bool leaf = level == w->db->depth;
    if (ld64(p) != pgno)
        return fail(w, "%s tree: page %llu says it is page %llu", t, pg,
                    (unsigned long long)ld64(p));
    if (flags != (leaf ? P_LEAF : P_BRANCH))
        return fail(w, "%s tree: page %llu at level %d of %u has flags 0x%x, "
                    "not a %s page", t, pg, level, w->db->depth, flags,
                    leaf ? "leaf" : "branch");
    if (lower < PAGEHDRSZ + 2 || lower > upper || upper > w->psize ||
        (lower - PAGEHDRSZ) % 2 != 0)
        return fail(w, "%s tree: page %llu: node table bounds %u..%u", t, pg,
                    lower, upper);
    unsigned n = (lower - PAGEHDRSZ) / 2;
    leaf ? w->leaf++ : w->branch++;
    size_t max_key = w->kind == T_FREE ? 8 : w->max_key;
    const unsigned char *prev = NULL;
    size_t prevl = 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned off = ld16(p + PAGEHDRSZ + 2 * i);
        if (off < upper || off % 2 != 0 || off + NODESIZE > w->psize)
            return fail(w, "%s tree: page %llu node %u at offset %u is outside "
                        "the node area %u..%u", t, pg, i, off, upper, w->psize);
        const unsigned char *nd = p + off, *key = nd + NODESIZE;
        size_t room = w->psize - off - NODESIZE, kl = ld16(nd + 6);
        if (kl > room || kl > max_key ||
            (w->kind == T_FREE && kl != 8 && !(i == 0 && !leaf)))
            return fail(w, "%s tree: page %llu node %u: a key of %zu bytes", t,
                        pg, i, kl);
        if (!leaf && i == 0)
            continue;           /* a branch's first key is implicit */
        if (!in_bounds(w, key, kl, lo, lol, hi, hil) ||
            (prev && cmp_key(w->kind, key, kl, prev, prevl) <= 0) ||
            (leaf && w->have_last &&
             cmp_key(w->kind, key, kl, w->last, w->last_len) <= 0))
            return fail(w, "%s tree: page %llu node %u: a key out of order", t,
                        pg, i);
        prev = key;
        prevl = kl;
        if (!leaf)
            continue;
        if ((s = leaf_node(w, pgno, i, nd, room)) != SM_OK)
            return s;
        memcpy(w->last, key, kl);
        w->last_len = kl;
        w->have_last = true;
        w->entries++;
    }
    return leaf ? SM_OK : walk_children(w, p, n, level, lo, lol, hi, hil);
}

/* Walks one tree from its record and compares what it found with what the
 * record says. */
static sm_status check_tree(walk *w, tree_kind kind, const db_rec *db)
{
    const char *t = tree_names[kind];
    w->kind = kind;
    w->db = db;
    w->branch = w->leaf = w->overflow = w->entries = 0;
    w->have_last = false;
    if (db->root == P_INVALID) {
        if (db->depth || db->branch || db->leaf || db->overflow || db->entries)
            return fail(w, "%s tree: no root, yet %llu entries recorded", t,
                        (unsigned long long)db->entries);
        return SM_OK;
    }
    if (kind != T_FREE && (db->flags != 0 || db->pad != 0))
        return fail(w, "%s tree: database flags 0x%x (only plain key/value "
                    "databases are read)", t, db->flags);
    if (db->depth < 1 || db->depth > MAX_DEPTH)
        return fail(w, "%s tree: depth %u", t, db->depth);
    sm_status s = walk_page(w, db->root, 1, NULL, 0, NULL, 0);
    if (s != SM_OK)
        return s;
    if (w->branch != db->branch || w->leaf != db->leaf ||
        w->overflow != db->overflow || w->entries != db->entries)
        return fail(w, "%s tree: it records %llu entries in %llu branch, %llu "
                    "leaf and %llu overflow pages; it holds %llu in %llu, %llu "
                    "and %llu", t, (unsigned long long)db->entries,
                    (unsigned long long)db->branch, (unsigned long long)db->leaf,
                    (unsigned long long)db->overflow,
                    (unsigned long long)w->entries, (unsigned long long)w->branch,
                    (unsigned long long)w->leaf, (unsigned long long)w->overflow);
    return SM_OK;
}

/* Reads and vets meta page i (at byte offset off), as LMDB would. */
static sm_status read_meta(walk *w, unsigned i, uint64_t off, meta *m)
{
    unsigned char b[PAGEHDRSZ + META_SIZE];
    sm_status s = read_at(w, b, sizeof b, off);
    if (s != SM_OK)
        return s;
    const unsigned char *q = b + PAGEHDRSZ;
    m->flags = ld16(b + 10);
    m->magic = ld32(q);
    m->version = ld32(q + 4);
    m->mapsize = ld64(q + 16);
    db_of(q + 24, &m->dbs[0]);
    db_of(q + 24 + DB_SIZE, &m->dbs[1]);
    m->last_pg = ld64(q + 24 + 2 * DB_SIZE);
    m->txnid = ld64(q + 32 + 2 * DB_SIZE);
    if (!(m->flags & P_META) || m->magic != LMDB_MAGIC)
        return fail(w, "meta page %u: not an LMDB meta page", i);
    if (m->version != LMDB_DATA_VERSION)
        return fail(w, "meta page %u: LMDB data version %u, this build reads %u",
                    i, m->version, LMDB_DATA_VERSION);
    uint32_t ps = m->dbs[0].pad;
    if (ps < MIN_PSIZE || ps > MAX_PSIZE || (ps & (ps - 1)) != 0)
        return fail(w, "meta page %u: page size %u", i, ps);
    return SM_OK;
}

static sm_status check_file(walk *w, sm_storecheck_result *out, uint64_t size)
{
    meta m[2];
    sm_status s = read_meta(w, 0, 0, &m[0]);
    if (s == SM_OK)
        s = read_meta(w, 1, m[0].dbs[0].pad, &m[1]);
    if (s != SM_OK)
        return s;
    /* Transaction N writes meta page N % 2, so the two hold consecutive
     * ids (both 0 before the first commit): a damaged id would make LMDB
     * take the older snapshot, silently. */
    uint64_t t0 = m[0].txnid, t1 = m[1].txnid, gap = t0 > t1 ? t0 - t1 : t1 - t0;
    bool fresh = t0 == 0 && t1 == 0;
    if (!fresh && (t0 % 2 != 0 || (t1 != 0 && t1 % 2 != 1) || gap != 1))
        return fail(w, "the meta pages hold transactions %llu and %llu, not "
                    "two consecutive ones", (unsigned long long)t0,
                    (unsigned long long)t1);
    const meta *cur = t1 > t0 ? &m[1] : &m[0];
    w->psize = cur->dbs[0].pad;
    if (m[0].dbs[0].pad != m[1].dbs[0].pad)
        return fail(w, "the meta pages disagree on the page size (%u, %u)",
                    m[0].dbs[0].pad, m[1].dbs[0].pad);
    if (cur->dbs[0].flags != DB_INTEGERKEY)
        return fail(w, "environment flags 0x%x (this build sets none)",
                    cur->dbs[0].flags & ~DB_INTEGERKEY);
    w->file_pages = size / w->psize;
    w->last_pg = cur->last_pg;
    out->page_size = w->psize;
    out->txnid = cur->txnid;
    out->last_page = cur->last_pg;
    out->file_pages = w->file_pages;
    if (cur->last_pg < NUM_METAS - 1 || cur->last_pg >= MAX_BYTES / w->psize)
        return fail(w, "meta page %d: last page %llu", cur == &m[1],
                    (unsigned long long)cur->last_pg);
    if (w->file_pages < NUM_METAS)
        return fail(w, "%llu bytes: shorter than the two meta pages",
                    (unsigned long long)size);
    if (!(w->seen = calloc(w->file_pages / 8 + 1, 1)))
        return SM_ERR_NOMEM;
    w->seen[0] |= 3;            /* the meta pages */
    w->used = NUM_METAS;
    for (int i = 0; i <= MAX_DEPTH; i++)
        if (!(w->buf[i] = malloc(w->psize)))
            return SM_ERR_NOMEM;
    if ((s = check_tree(w, T_FREE, &cur->dbs[0])) != SM_OK ||
        (s = check_tree(w, T_MAIN, &cur->dbs[1])) != SM_OK)
        return s;
    if (cur->dbs[1].root != P_INVALID &&
        (!w->have_data || cur->dbs[1].entries != 1))
        return fail(w, "main tree: it holds other databases than '%s'", w->name);
    if (w->have_data) {
        db_rec data = w->data;
        if ((s = check_tree(w, T_DATA, &data)) != SM_OK)
            return s;
        out->entries = w->entries;
    }
    out->pages_used = w->used;
    return SM_OK;
}

sm_status sm_storecheck(const char *path, const char *name, size_t max_key,
                        sm_storecheck_result *out, char *why, size_t cap)
{
    if (why && cap)
        why[0] = 0;
    if (!path || !name || !name[0] || !out || !why || cap == 0 ||
        max_key == 0 || max_key > MAX_KEY)
        return SM_ERR_INVALID;
    memset(out, 0, sizeof *out);
    walk w = {.fd = -1, .name = name, .max_key = max_key, .why = why, .cap = cap};
    sm_status s = SM_OK;
    struct stat sb;
    w.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (w.fd < 0) {
        s = errno == ENOENT ? SM_ERR_NOT_FOUND : SM_ERR_IO;
        snprintf(why, cap, "%s: %s", path, strerror(errno));
        return s;
    }
    if (fstat(w.fd, &sb) != 0) {
        snprintf(why, cap, "%s: %s", path, strerror(errno));
        s = SM_ERR_IO;
        goto cleanup;
    }
    if (sb.st_size == 0) {
        snprintf(why, cap, "%s is 0 bytes: no LMDB environment (a store cut "
                 "short?); move it away to start a new store", path);
        s = SM_ERR_CORRUPT;
        goto cleanup;
    }
    s = check_file(&w, out, (uint64_t)sb.st_size);
    if (s == SM_ERR_IO)
        snprintf(why, cap, "%s: read failed: %s", path, strerror(errno));
    else if (s == SM_ERR_NOMEM)
        snprintf(why, cap, "%s: out of memory checking it", path);
    else if (s == SM_ERR_CORRUPT) {
        char detail[256];
        snprintf(detail, sizeof detail, "%s", why);
        snprintf(why, cap, "%s is damaged: %s", path, detail);
    }
cleanup:
    for (int i = 0; i <= MAX_DEPTH; i++)
        free(w.buf[i]);
    free(w.ov);
    free(w.seen);
    close(w.fd);
    return s;
}
