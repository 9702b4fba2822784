/*
 * store.c - sm_store over one LMDB environment (see store.h).
 *
 * LMDB return codes are turned into sm_status here and nowhere else
 * (status_of). Every LMDB failure keeps its text in st->err for the
 * caller's log line.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <lmdb.h>

#include "store.h"
#include "storecheck.h"

#define DEFAULT_MAP_SIZE ((size_t)64 << 20)
#define MAX_KEY 511
#define DB_NAME "windows"

struct sm_store {
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *txn;           /* the open batch, or NULL */
    MDB_txn *part;          /* its open part (a nested txn), or NULL */
    MDB_cursor *cur;        /* puts go through it: the writer's cursor,
                               opened by the first put after the writer
                               changed; LMDB closes it when that txn ends */
    size_t map_max;
    size_t max_key;
    uint64_t grows;
    uint64_t map_full;
    char err[320];
    /* A log store (sm_store_log_open: env NULL) records its writes here
     * instead: one record after another (see LOG_* below). */
    bool is_log;
    bool log_open;          /* between begin and commit/abort */
    bool log_in_part;
    bool log_cond;          /* sm_store_log_cond() was called */
    size_t part_mark;       /* log length where the open part began */
    unsigned char *log;
    size_t log_len, log_cap;
    size_t log_parts;       /* parts committed into the log */
    /* sm_store_apply() on another thread: scans of the owner wait */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool applying;
};

/* Log records: a tag byte, then for PUT u32 klen, u32 vlen, key, value;
 * for DEL u32 klen, key; for DEL_FROM u32 klen, u32 plen, key; PART_BEGIN,
 * PART_END and COND have nothing more (host byte order: a log never
 * leaves the process). */
enum { LOG_PUT = 1, LOG_DEL, LOG_PART_BEGIN, LOG_PART_END, LOG_COND,
       LOG_DEL_FROM };

/* Free bytes under which a disk counts as full. */
#define DISK_FULL_BYTES ((unsigned long long)1 << 20)

/* LMDB reports a write the disk cut short as EIO ("Input/output error"):
 * when the store's disk has (almost) no room left, the text says so. */
static void explain_eio(sm_store *st)
{
    const char *path = NULL;
    struct statvfs fs;
    if (!st->env || mdb_env_get_path(st->env, &path) != MDB_SUCCESS ||
        !path || statvfs(path, &fs) != 0)
        return;
    unsigned long long avail = (unsigned long long)fs.f_bavail * fs.f_frsize;
    if (avail < DISK_FULL_BYTES)
        snprintf(st->err, sizeof st->err, "No space left on device (the "
                 "store's disk has %llu bytes free; LMDB said: %s)", avail,
                 mdb_strerror(EIO));
}

/* Remembers rc's text and converts it; counts map-full hits. */
static sm_status status_of(sm_store *st, int rc)
{
    if (rc == MDB_SUCCESS)
        return SM_OK;
    snprintf(st->err, sizeof st->err, "%s", mdb_strerror(rc));
    if (rc == EIO)
        explain_eio(st);
    switch (rc) {
    case MDB_MAP_FULL:
        st->map_full++;
        return SM_ERR_MAP_FULL;
    case ENOMEM:
        return SM_ERR_NOMEM;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return SM_ERR_CORRUPT;
    default:
        return SM_ERR_STORE;
    }
}

/* mkdir -p with mode 0700 for what it creates. */
static sm_status make_dir(sm_store *st, const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path)
        return SM_ERR_INVALID;
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            snprintf(st->err, sizeof st->err, "mkdir %.100s: %.40s", path,
                     strerror(errno));
            return SM_ERR_IO;
        }
        path[i] = c;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(st->err, sizeof st->err, "%.120s: not a directory", dir);
        return SM_ERR_IO;
    }
    return SM_OK;
}

static size_t map_size_of(const sm_store *st)
{
    MDB_envinfo info;
    if (mdb_env_info(st->env, &info) != MDB_SUCCESS)
        return 0;
    return info.me_mapsize;
}

/* Checks an existing data file before LMDB maps it (storecheck.h): a
 * damaged one would crash or mislead LMDB. No file: a new store. */
static sm_status check_data_file(sm_store *st, const char *dir)
{
    char path[4096 + 16];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    sm_storecheck_result r;
    sm_status s = sm_storecheck(path, DB_NAME, MAX_KEY, &r, st->err,
                                sizeof st->err);
    if (s == SM_ERR_NOT_FOUND) {
        st->err[0] = 0;
        return SM_OK;
    }
    return s;
}

/* Opens the environment and the named database. On failure the caller
 * closes st. */
static sm_status open_env(sm_store *st, const sm_store_config *cfg,
                          size_t map_size)
{
    sm_status s = check_data_file(st, cfg->dir);
    if (s != SM_OK)
        return s;
    int rc = mdb_env_create(&st->env);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_set_maxdbs(st->env, 1);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_set_mapsize(st->env, map_size);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_open(st->env, cfg->dir, MDB_NOTLS, 0600);
    /* Size 0 adopts the size recorded in the environment (a new one
     * records map_size); keep it if it is the larger. */
    if (rc == MDB_SUCCESS)
        rc = mdb_env_set_mapsize(st->env, 0);
    if (rc == MDB_SUCCESS && map_size_of(st) < map_size)
        rc = mdb_env_set_mapsize(st->env, map_size);
    if (rc != MDB_SUCCESS)
        return status_of(st, rc);

    MDB_txn *txn = NULL;
    rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc == MDB_SUCCESS)
        rc = mdb_dbi_open(txn, DB_NAME, MDB_CREATE, &st->dbi);
    if (rc == MDB_SUCCESS) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (txn)
        mdb_txn_abort(txn);
    if (rc != MDB_SUCCESS)
        return status_of(st, rc);

    int mk = mdb_env_get_maxkeysize(st->env);
    st->max_key = mk > 0 && mk < MAX_KEY ? (size_t)mk : MAX_KEY;
    return SM_OK;
}

/* A failed open: says why in err and in cfg->why (each if asked),
 * returns s. */
static sm_status open_failed(const sm_store_config *cfg, char *err,
                             size_t errcap, sm_status s, const char *why)
{
    if (cfg && cfg->why && cfg->why_cap > 0)
        snprintf(cfg->why, cfg->why_cap, "%s", why);
    if (err && errcap > 0)
        snprintf(err, errcap, "%s", why);
    return s;
}

sm_status sm_store_open(sm_store **out, const sm_store_config *cfg,
                        char *err, size_t errcap)
{
    if (err && errcap)
        err[0] = 0;
    if (!out || !cfg || !cfg->dir || !cfg->dir[0])
        return open_failed(cfg, err, errcap, SM_ERR_INVALID,
                           "no store directory given");
    size_t map_size = cfg->map_size ? cfg->map_size : DEFAULT_MAP_SIZE;
    size_t map_max = cfg->map_max ? cfg->map_max : map_size;
    if (map_max < map_size)
        return open_failed(cfg, err, errcap, SM_ERR_INVALID,
                           "map_max below map_size");

    sm_store *st = calloc(1, sizeof *st);
    if (!st)
        return open_failed(cfg, err, errcap, SM_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    sm_status s = make_dir(st, cfg->dir);
    if (s == SM_OK)
        s = open_env(st, cfg, map_size);
    if (s != SM_OK) {
        open_failed(cfg, err, errcap, s, st->err);  /* before st goes */
        sm_store_close(st);
        return s;
    }
    st->map_max = map_max;
    *out = st;
    return SM_OK;
}

void sm_store_close(sm_store *st)
{
    if (!st)
        return;
    sm_store_abort(st);
    if (st->env)
        mdb_env_close(st->env);
    if (!st->is_log) {
        pthread_cond_destroy(&st->cv);
        pthread_mutex_destroy(&st->mu);
    }
    free(st->log);
    free(st);
}

/* ---- log stores (store.h, "Logs") */

static sm_status log_reserve(sm_store *st, size_t more)
{
    if (st->log_cap - st->log_len >= more)
        return SM_OK;
    size_t cap = st->log_cap ? st->log_cap : 4096;
    while (cap - st->log_len < more)
        cap *= 2;
    unsigned char *b = realloc(st->log, cap);
    if (!b)
        return SM_ERR_NOMEM;
    st->log = b;
    st->log_cap = cap;
    return SM_OK;
}

/* One record: the tag, then klen and (has_val) vlen, the key, and the
 * value's bytes if val is given (DEL_FROM has a length, the prefix's,
 * and no value). */
static sm_status log_record(sm_store *st, int tag, const void *key,
                            size_t klen, const void *val, size_t vlen,
                            bool has_val)
{
    if (!st->log_open)
        return SM_ERR_INVALID;
    size_t bytes = val ? vlen : 0;
    size_t need = 1 + (key ? 4 + klen : 0) + (has_val ? 4 + bytes : 0);
    sm_status s = log_reserve(st, need);
    if (s != SM_OK)
        return s;
    unsigned char *p = st->log + st->log_len;
    *p++ = (unsigned char)tag;
    if (key) {
        uint32_t k32 = (uint32_t)klen;
        memcpy(p, &k32, 4);
        p += 4;
    }
    if (has_val) {
        uint32_t v32 = (uint32_t)vlen;
        memcpy(p, &v32, 4);
        p += 4;
    }
    if (key) {
        memcpy(p, key, klen);
        p += klen;
    }
    if (has_val && bytes)
        memcpy(p, val, bytes);
    st->log_len += need;
    return SM_OK;
}

sm_status sm_store_log_open(sm_store **out)
{
    if (!out)
        return SM_ERR_INVALID;
    sm_store *st = calloc(1, sizeof *st);
    if (!st)
        return SM_ERR_NOMEM;
    st->is_log = true;
    st->max_key = MAX_KEY;
    *out = st;
    return SM_OK;
}

sm_status sm_store_log_cond(sm_store *st)
{
    if (!st || !st->is_log || st->log_in_part || st->log_cond)
        return SM_ERR_INVALID;
    sm_status s = log_record(st, LOG_COND, NULL, 0, NULL, 0, false);
    if (s == SM_OK)
        st->log_cond = true;
    return s;
}

size_t sm_store_log_parts(const sm_store *st)
{
    return st && st->is_log ? st->log_parts : 0;
}

size_t sm_store_log_bytes(const sm_store *st)
{
    return st && st->is_log ? st->log_len : 0;
}

/* Applies one part of the log at *pos (just after its PART_BEGIN), up
 * to and including its PART_END. Returns the part's status; *pos is
 * after the part whatever happened. */
static sm_status apply_part(sm_store *st, const sm_store *log, size_t *pos);

/* One PUT or DEL record at *pos into st's writer; advances *pos. */
static sm_status apply_one(sm_store *st, const sm_store *log, size_t *pos,
                           bool skip)
{
    const unsigned char *p = log->log + *pos;
    int tag = *p++;
    uint32_t klen, vlen = 0;
    memcpy(&klen, p, 4);
    p += 4;
    if (tag == LOG_PUT || tag == LOG_DEL_FROM) {
        memcpy(&vlen, p, 4);    /* DEL_FROM: the prefix length */
        p += 4;
    }
    const unsigned char *key = p, *val = p + klen;
    *pos = (size_t)(val + (tag == LOG_PUT ? vlen : 0) - log->log);
    if (skip)
        return SM_OK;
    if (tag == LOG_DEL_FROM)
        return sm_store_del_from(st, key, klen, vlen);
    return tag == LOG_PUT ? sm_store_put(st, key, klen, val, vlen)
                          : sm_store_del(st, key, klen);
}

static sm_status apply_part(sm_store *st, const sm_store *log, size_t *pos)
{
    sm_status s = sm_store_part_begin(st);
    while (*pos < log->log_len && log->log[*pos] != LOG_PART_END) {
        sm_status w = apply_one(st, log, pos, s != SM_OK);
        if (s == SM_OK)
            s = w;              /* a failed write ended the part */
    }
    (*pos)++;                   /* the PART_END */
    if (s == SM_OK)
        return sm_store_part_commit(st);
    sm_store_part_abort(st);    /* no-op if the store ended it */
    return s;
}

sm_status sm_store_log_replay(sm_store *st, const sm_store *log)
{
    if (!st || !log || !log->is_log || log->log_open || st == log)
        return SM_ERR_INVALID;
    size_t pos = 0;
    sm_status s = SM_OK;
    while (s == SM_OK && pos < log->log_len) {
        int tag = log->log[pos];
        if (tag == LOG_PUT || tag == LOG_DEL || tag == LOG_DEL_FROM)
            s = apply_one(st, log, &pos, false);
        else
            pos++;
    }
    return s;
}

void sm_store_apply_coming(sm_store *st)
{
    if (!st || st->is_log)
        return;
    pthread_mutex_lock(&st->mu);
    st->applying = true;
    pthread_mutex_unlock(&st->mu);
}

sm_status sm_store_apply(sm_store *st, const sm_store *log,
                         sm_store_part_fn on_part, void *ud)
{
    if (!st || st->is_log || !log || !log->is_log || log->log_open)
        return SM_ERR_INVALID;
    size_t pos = 0, part = 0, failed = 0;
    pthread_mutex_lock(&st->mu);
    st->applying = true;
    pthread_mutex_unlock(&st->mu);
    sm_status s = sm_store_begin(st);
    while (s == SM_OK && pos < log->log_len) {
        int tag = log->log[pos];
        if (tag == LOG_PART_BEGIN) {
            pos++;
            sm_status ps = apply_part(st, log, &pos);
            if (!st->txn)
                s = ps;         /* the batch itself ended */
            else if (ps != SM_OK)
                failed++;
            if (on_part)
                on_part(ud, part, ps);
            part++;
        } else if (tag == LOG_COND) {
            pos++;
            if (failed)
                break;          /* the rest only if every part went in */
        } else {
            s = apply_one(st, log, &pos, false);
        }
    }
    if (s == SM_OK)
        s = sm_store_commit(st);
    else
        sm_store_abort(st);     /* no-op if the store ended it */
    pthread_mutex_lock(&st->mu);
    st->applying = false;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return s;
}

/* ---- batches */

sm_status sm_store_begin(sm_store *st)
{
    if (st && st->is_log) {
        if (st->log_open)
            return SM_ERR_INVALID;
        st->log_open = true;
        st->log_in_part = st->log_cond = false;
        st->log_len = st->log_parts = 0;
        return SM_OK;
    }
    if (!st || st->txn)
        return SM_ERR_INVALID;
    int rc = mdb_txn_begin(st->env, NULL, 0, &st->txn);
    if (rc == MDB_MAP_RESIZED) {
        /* Another process grew the map: adopt its size and retry. */
        rc = mdb_env_set_mapsize(st->env, 0);
        if (rc == MDB_SUCCESS)
            rc = mdb_txn_begin(st->env, NULL, 0, &st->txn);
    }
    if (rc != MDB_SUCCESS) {
        st->txn = NULL;
        return status_of(st, rc);
    }
    return SM_OK;
}

/* A failed write leaves an LMDB txn usable only for abort: end the part
 * it happened in, or else the batch. */
static sm_status fail_write(sm_store *st, int rc)
{
    st->cur = NULL;
    if (st->part) {
        mdb_txn_abort(st->part);
        st->part = NULL;
    } else {
        mdb_txn_abort(st->txn);
        st->txn = NULL;
    }
    return status_of(st, rc);
}

/* The transaction writes go to. */
static MDB_txn *writer_of(const sm_store *st)
{
    return st->part ? st->part : st->txn;
}

sm_status sm_store_put(sm_store *st, const void *key, size_t klen,
                       const void *val, size_t vlen)
{
    if (st && st->is_log)
        return !key || klen == 0 || klen > MAX_KEY || (!val && vlen > 0) ||
                       vlen > UINT32_MAX
                   ? SM_ERR_INVALID
                   : log_record(st, LOG_PUT, key, klen, val, vlen, true);
    if (!st || !st->txn || !key || klen == 0 || klen > st->max_key ||
        (!val && vlen > 0))
        return SM_ERR_INVALID;
    MDB_val k = {klen, (void *)key};
    MDB_val v = {vlen, (void *)val};
    /* Through the writer's cursor, kept across puts: mdb_put() would set
     * up and tear down a cursor for every key, a third of the cost of a
     * put when a commit writes 100,000 agent blobs (README, "Commit cost
     * with 100 k agents"). */
    int rc = st->cur ? MDB_SUCCESS
                     : mdb_cursor_open(writer_of(st), st->dbi, &st->cur);
    if (rc == MDB_SUCCESS)
        rc = mdb_cursor_put(st->cur, &k, &v, 0);
    if (rc != MDB_SUCCESS)
        return fail_write(st, rc);
    return SM_OK;
}

sm_status sm_store_del(sm_store *st, const void *key, size_t klen)
{
    if (st && st->is_log)
        return !key || klen == 0 || klen > MAX_KEY
                   ? SM_ERR_INVALID
                   : log_record(st, LOG_DEL, key, klen, NULL, 0, false);
    if (!st || !st->txn || !key || klen == 0 || klen > st->max_key)
        return SM_ERR_INVALID;
    MDB_val k = {klen, (void *)key};
    int rc = mdb_del(writer_of(st), st->dbi, &k, NULL);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return fail_write(st, rc);
    return SM_OK;
}

sm_status sm_store_del_from(sm_store *st, const void *key, size_t klen,
                            size_t plen)
{
    if (plen > klen || klen > UINT32_MAX)
        return SM_ERR_INVALID;
    if (st && st->is_log)
        return !key || klen == 0 || klen > MAX_KEY
                   ? SM_ERR_INVALID
                   : log_record(st, LOG_DEL_FROM, key, klen, NULL, plen, true);
    if (!st || !st->txn || !key || klen == 0 || klen > st->max_key)
        return SM_ERR_INVALID;
    int rc = st->cur ? MDB_SUCCESS
                     : mdb_cursor_open(writer_of(st), st->dbi, &st->cur);
    for (;;) {
        MDB_val k = {klen, (void *)key}, v;
        if (rc == MDB_SUCCESS)
            rc = mdb_cursor_get(st->cur, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND)
            return SM_OK;
        if (rc == MDB_SUCCESS &&
            (k.mv_size < plen || memcmp(k.mv_data, key, plen) != 0))
            return SM_OK;
        if (rc == MDB_SUCCESS)
            rc = mdb_cursor_del(st->cur, 0);
        if (rc != MDB_SUCCESS)
            return fail_write(st, rc);
    }
}

sm_status sm_store_commit(sm_store *st)
{
    if (st && st->is_log) {
        if (!st->log_open)
            return SM_ERR_INVALID;
        sm_store_part_abort(st);
        st->log_open = false;
        return SM_OK;
    }
    if (!st || !st->txn)
        return SM_ERR_INVALID;
    sm_store_part_abort(st);
    st->cur = NULL;
    int rc = mdb_txn_commit(st->txn);     /* frees the txn either way */
    st->txn = NULL;
    return status_of(st, rc);
}

void sm_store_abort(sm_store *st)
{
    if (st && st->is_log) {
        st->log_open = st->log_in_part = st->log_cond = false;
        st->log_len = st->log_parts = 0;
        return;
    }
    if (!st || !st->txn)
        return;
    sm_store_part_abort(st);
    st->cur = NULL;
    mdb_txn_abort(st->txn);
    st->txn = NULL;
}

sm_status sm_store_part_begin(sm_store *st)
{
    if (st && st->is_log) {
        if (!st->log_open || st->log_in_part || st->log_cond)
            return SM_ERR_INVALID;
        size_t mark = st->log_len;
        sm_status s = log_record(st, LOG_PART_BEGIN, NULL, 0, NULL, 0, false);
        if (s == SM_OK) {
            st->part_mark = mark;
            st->log_in_part = true;
        }
        return s;
    }
    if (!st || !st->txn || st->part)
        return SM_ERR_INVALID;
    st->cur = NULL;         /* the part writes through a cursor of its own */
    int rc = mdb_txn_begin(st->env, st->txn, 0, &st->part);
    if (rc != MDB_SUCCESS) {
        st->part = NULL;
        return status_of(st, rc);
    }
    return SM_OK;
}

sm_status sm_store_part_commit(sm_store *st)
{
    if (st && st->is_log) {
        if (!st->log_in_part)
            return SM_ERR_INVALID;
        sm_status s = log_record(st, LOG_PART_END, NULL, 0, NULL, 0, false);
        if (s != SM_OK) {
            sm_store_part_abort(st);
            return s;
        }
        st->log_in_part = false;
        st->log_parts++;
        return SM_OK;
    }
    if (!st || !st->part)
        return SM_ERR_INVALID;
    st->cur = NULL;
    int rc = mdb_txn_commit(st->part);     /* frees the part either way */
    st->part = NULL;
    return status_of(st, rc);
}

void sm_store_part_abort(sm_store *st)
{
    if (st && st->is_log) {
        if (st->log_in_part)
            st->log_len = st->part_mark;
        st->log_in_part = false;
        return;
    }
    if (!st || !st->part)
        return;
    st->cur = NULL;
    mdb_txn_abort(st->part);
    st->part = NULL;
}

sm_status sm_store_grow(sm_store *st)
{
    if (!st || st->txn || st->is_log)
        return SM_ERR_INVALID;
    size_t cur = map_size_of(st);
    if (cur == 0) {
        snprintf(st->err, sizeof st->err, "mdb_env_info failed");
        return SM_ERR_STORE;
    }
    if (cur >= st->map_max)
        return SM_ERR_FULL;
    size_t next = cur > st->map_max / 2 ? st->map_max : cur * 2;
    int rc = mdb_env_set_mapsize(st->env, next);
    if (rc != MDB_SUCCESS)
        return status_of(st, rc);
    st->grows++;
    return SM_OK;
}

sm_status sm_store_make_room(sm_store *st, size_t bytes, unsigned *grown)
{
    if (grown)
        *grown = 0;
    sm_store_stats ss;
    for (;;) {
        sm_status s = sm_store_stats_get(st, &ss);
        if (s != SM_OK)
            return s;
        if (ss.used_bytes + 2 * bytes + ((size_t)1 << 20) <= ss.map_size)
            return SM_OK;
        if ((s = sm_store_grow(st)) != SM_OK)
            return s;
        if (grown)
            (*grown)++;
    }
}

sm_status sm_store_scan(sm_store *st, const void *prefix, size_t plen,
                        sm_store_scan_fn fn, void *ud)
{
    return sm_store_scan_from(st, prefix, plen, prefix, plen, fn, ud);
}

sm_status sm_store_scan_from(sm_store *st, const void *prefix, size_t plen,
                             const void *from, size_t flen,
                             sm_store_scan_fn fn, void *ud)
{
    if (st && !st->is_log) {
        /* a batch being written by the commit thread: see its result */
        pthread_mutex_lock(&st->mu);
        while (st->applying)
            pthread_cond_wait(&st->cv, &st->mu);
        pthread_mutex_unlock(&st->mu);
    }
    if (!st || st->txn)
        return SM_ERR_INVALID;
    return sm_store_scan_shared(st, prefix, plen, from, flen, fn, ud);
}

sm_status sm_store_scan_shared(sm_store *st, const void *prefix, size_t plen,
                               const void *from, size_t flen,
                               sm_store_scan_fn fn, void *ud)
{
    if (!st || st->is_log || !fn || (!prefix && plen > 0) || plen > st->max_key ||
        (!from && flen > 0) || flen > st->max_key)
        return SM_ERR_INVALID;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    sm_status s = SM_OK;
    int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
    if (rc == MDB_SUCCESS)
        rc = mdb_cursor_open(txn, st->dbi, &cur);
    if (rc != MDB_SUCCESS) {
        s = status_of(st, rc);
        goto cleanup;
    }
    MDB_val k = {flen, (void *)from}, v = {0, NULL};
    rc = mdb_cursor_get(cur, &k, &v, flen ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == MDB_SUCCESS) {
        if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
            break;
        s = fn(ud, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        if (s != SM_OK)
            goto cleanup;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        s = status_of(st, rc);
cleanup:
    if (cur)
        mdb_cursor_close(cur);
    if (txn)
        mdb_txn_abort(txn);
    return s;
}

sm_status sm_store_stats_get(sm_store *st, sm_store_stats *out)
{
    if (!st || st->is_log || !out)
        return SM_ERR_INVALID;
    MDB_envinfo info;
    MDB_stat ms;
    MDB_txn *txn = writer_of(st);
    int rc = mdb_env_info(st->env, &info);
    if (rc == MDB_SUCCESS && !txn)
        rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
    if (rc == MDB_SUCCESS)
        rc = mdb_stat(txn, st->dbi, &ms);
    if (txn && txn != writer_of(st))
        mdb_txn_abort(txn);
    if (rc != MDB_SUCCESS)
        return status_of(st, rc);
    out->map_size = info.me_mapsize;
    out->used_bytes = (info.me_last_pgno + 1) * (size_t)ms.ms_psize;
    out->entries = ms.ms_entries;
    out->grows = st->grows;
    out->map_full = st->map_full;
    return SM_OK;
}

const char *sm_store_error(const sm_store *st)
{
    return st ? st->err : "";
}
