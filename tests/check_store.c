/*
 * check_store.c - the LMDB store: batches, scans, durability across
 * SIGKILL, a full map, growth and bounded size under churn, and damaged
 * stores (empty, truncated, flipped bytes) that are refused or reported,
 * never loaded in part in silence, never a crash.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <sys/stat.h>

#include "persist.h"
#include "registry.h"
#include "store.h"
#include "support.h"
#include "writer.h"
#include "runner.h"

#define KIB ((size_t)1024)
#define MIB (KIB * KIB)

static sm_store *open_store(const char *dir, size_t map_size, size_t map_max)
{
    sm_store_config cfg = {.dir = dir, .map_size = map_size, .map_max = map_max};
    sm_store *st = NULL;
    sm_status s = sm_store_open(&st, &cfg, NULL, 0);
    ck_assert_msg(s == SM_OK, "open %s: %s", dir, sm_status_str(s));
    ck_assert_ptr_nonnull(st);
    return st;
}

static void put_str(sm_store *st, const char *k, const char *v)
{
    sm_status s = sm_store_put(st, k, strlen(k), v, strlen(v));
    ck_assert_msg(s == SM_OK, "put %s: %s", k, sm_status_str(s));
}

/* Collects "key=value;" pairs of a scan into a string. */
typedef struct collect {
    char text[8192];
    size_t n;
    size_t stop_after;      /* 0: never stop */
} collect;

static sm_status collect_fn(void *ud, const void *key, size_t klen,
                            const void *val, size_t vlen)
{
    collect *c = ud;
    size_t used = strlen(c->text);
    snprintf(c->text + used, sizeof c->text - used, "%.*s=%.*s;", (int)klen,
             (const char *)key, (int)vlen, (const char *)val);
    c->n++;
    if (c->stop_after && c->n >= c->stop_after)
        return SM_ERR_FULL;
    return SM_OK;
}

static const char *scan_all(sm_store *st, const char *prefix, collect *c)
{
    memset(c, 0, sizeof *c);
    sm_status s = sm_store_scan(st, prefix, strlen(prefix), collect_fn, c);
    ck_assert_msg(s == SM_OK, "scan: %s", sm_status_str(s));
    return c->text;
}

static size_t count_keys(sm_store *st)
{
    collect c;
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(sm_store_scan(st, NULL, 0, collect_fn, &c), SM_OK);
    return c.n;
}

START_TEST(test_put_commit_scan_prefix)
{
    char dir[256];
    sm_test_tmpdir(dir, sizeof dir, "store");
    sm_store *st = open_store(dir, MIB, MIB);
    collect c;

    ck_assert_int_eq(sm_store_begin(st), SM_OK);
    put_str(st, "b:2", "two");
    put_str(st, "a:1", "x");
    put_str(st, "b:1", "one");
    put_str(st, "b", "bare");
    put_str(st, "c:1", "y");
    ck_assert_int_eq(sm_store_commit(st), SM_OK);

    ck_assert_str_eq(scan_all(st, "b:", &c), "b:1=one;b:2=two;");
    ck_assert_str_eq(scan_all(st, "b", &c), "b=bare;b:1=one;b:2=two;");
    ck_assert_str_eq(scan_all(st, "", &c), "a:1=x;b=bare;b:1=one;b:2=two;c:1=y;");
    ck_assert_str_eq(scan_all(st, "zz", &c), "");

    /* A visitor's error stops the scan and is returned. */
    memset(&c, 0, sizeof c);
    c.stop_after = 2;
    ck_assert_int_eq(sm_store_scan(st, NULL, 0, collect_fn, &c), SM_ERR_FULL);
    ck_assert_uint_eq(c.n, 2);

    /* Overwrite in a later batch. */
    ck_assert_int_eq(sm_store_begin(st), SM_OK);
    put_str(st, "b:1", "uno");
    ck_assert_int_eq(sm_store_commit(st), SM_OK);
    ck_assert_str_eq(scan_all(st, "b:", &c), "b:1=uno;b:2=two;");

    sm_store_stats ss;
    ck_assert_int_eq(sm_store_stats_get(st, &ss), SM_OK);
    ck_assert_uint_eq(ss.entries, 5);
    ck_assert_uint_ge(ss.map_size, MIB);
    ck_assert_uint_gt(ss.used_bytes, 0);
    ck_assert_uint_eq(ss.grows, 0);
    ck_assert_uint_eq(ss.map_full, 0);
    ck_assert_str_eq(sm_store_error(st), "");

    sm_store_close(st);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(test_abort_discards)
{
    char dir[256];
    sm_test_tmpdir(dir, sizeof dir, "store");
    sm_store *st = open_store(dir, MIB, MIB);
    collect c;

    ck_assert_int_eq(sm_store_begin(st), SM_OK);
    put_str(st, "k1", "v1");
    ck_assert_int_eq(sm_store_commit(st), SM_OK);

    ck_assert_int_eq(sm_store_begin(st), SM_OK);
    put_str(st, "k2", "v2");
    ck_assert_int_eq(sm_store_del(st, "k1", 2), SM_OK);
    sm_store_abort(st);
    ck_assert_str_eq(scan_all(st, "", &c), "k1=v1;");

    /* Closing with a batch open discards it too. */
    ck_assert_int_eq(sm_store_begin(st), SM_OK);
    put_str(st, "k3", "v3");
    sm_store_close(st);
    st = open_store(dir, MIB, MIB);
    ck_assert_str_eq(scan_all(st, "", &c), "k1=v1;");

    sm_store_close(st);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(test_del_missing_ok)
{
    char dir[256];
    sm_test_tmpdir(dir, sizeof dir, "store");
    sm_store *st = open_store(dir, MIB, MIB);
    collect c;

    ck_assert_int_eq(sm_store_begin(st), SM_OK);
    put_str(st, "keep", "1");
    put_str(st, "gone", "2");
    ck_assert_int_eq(sm_store_del(st, "never-was", 9), SM_OK);
    ck_assert_int_eq(sm_store_commit(st), SM_OK);

    ck_assert_int_eq(sm_store_begin(st), SM_OK);
    ck_assert_int_eq(sm_store_del(st, "gone", 4), SM_OK);
    ck_assert_int_eq(sm_store_del(st, "gone", 4), SM_OK);
    ck_assert_int_eq(sm_store_del(st, "missing", 7), SM_OK);
    ck_assert_int_eq(sm_store_commit(st), SM_OK);
    ck_assert_str_eq(scan_all(st, "", &c), "keep=1;");

    sm_store_close(st);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(test_invalid_use)
{
    char dir[256], file[300];
    sm_test_tmpdir(dir, sizeof dir, "store");
    sm_store *st = NULL;
    sm_store_config bad = {.dir = dir, .map_size = 2 * MIB, .map_max = MIB};
    ck_assert_int_eq(sm_store_open(&st, &bad, NULL, 0), SM_ERR_INVALID);
    ck_assert_ptr_null(st);
    sm_store_config nodir = {.dir = "", .map_size = MIB, .map_max = MIB};
    ck_assert_int_eq(sm_store_open(&st, &nodir, NULL, 0), SM_ERR_INVALID);
    ck_assert_ptr_null(st);

    /* A directory path that is a file. */
    snprintf(file, sizeof file, "%s/plain", dir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    sm_store_config isfile = {.dir = file, .map_size = MIB, .map_max = MIB};
    ck_assert_int_eq(sm_store_open(&st, &isfile, NULL, 0), SM_ERR_IO);
    ck_assert_ptr_null(st);

    /* Nested directories are created. */
    char nested[400];
    snprintf(nested, sizeof nested, "%s/x/y/z", dir);
    sm_store *st2 = open_store(nested, MIB, MIB);
    sm_store_close(st2);

    st = open_store(dir, MIB, MIB);
    char big[512];
    memset(big, 'k', sizeof big);
    ck_assert_int_eq(sm_store_put(st, "k", 1, "v", 1), SM_ERR_INVALID);
    ck_assert_int_eq(sm_store_commit(st), SM_ERR_INVALID);
    ck_assert_int_eq(sm_store_begin(st), SM_OK);
    ck_assert_int_eq(sm_store_begin(st), SM_ERR_INVALID);
    ck_assert_int_eq(sm_store_put(st, "k", 0, "v", 1), SM_ERR_INVALID);
    ck_assert_int_eq(sm_store_put(st, big, 512, "v", 1), SM_ERR_INVALID);
    ck_assert_int_eq(sm_store_del(st, big, 512), SM_ERR_INVALID);
    /* An invalid call leaves the batch usable; 511 is the longest key. */
    ck_assert_int_eq(sm_store_put(st, big, 511, "v", 1), SM_OK);
    ck_assert_int_eq(sm_store_put(st, "empty", 5, NULL, 0), SM_OK);
    ck_assert_int_eq(sm_store_grow(st), SM_ERR_INVALID);
    ck_assert_int_eq(sm_store_scan(st, NULL, 0, collect_fn, NULL), SM_ERR_INVALID);
    ck_assert_int_eq(sm_store_commit(st), SM_OK);
    ck_assert_uint_eq(count_keys(st), 2);

    sm_store_close(st);
    sm_store_close(NULL);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(test_reopen_keeps_data)
{
    char dir[256];
    sm_test_tmpdir(dir, sizeof dir, "store");
    sm_store *st = open_store(dir, MIB, 4 * MIB);
    collect c;

    ck_assert_int_eq(sm_store_begin(st), SM_OK);
    for (int i = 0; i < 300; i++) {
        char k[32], v[32];
        snprintf(k, sizeof k, "key%04d", i);
        snprintf(v, sizeof v, "value%d", i * 7);
        put_str(st, k, v);
    }
    ck_assert_int_eq(sm_store_commit(st), SM_OK);
    ck_assert_int_eq(sm_store_grow(st), SM_OK);
    ck_assert_int_eq(sm_store_begin(st), SM_OK);
    put_str(st, "after-grow", "yes");
    ck_assert_int_eq(sm_store_commit(st), SM_OK);
    sm_store_close(st);

    /* Reopened with a smaller configured map: the grown size is kept. */
    st = open_store(dir, 256 * KIB, 4 * MIB);
    sm_store_stats ss;
    ck_assert_int_eq(sm_store_stats_get(st, &ss), SM_OK);
    ck_assert_uint_eq(ss.entries, 301);
    ck_assert_uint_ge(ss.map_size, 2 * MIB);
    ck_assert_str_eq(scan_all(st, "after", &c), "after-grow=yes;");
    ck_assert_str_eq(scan_all(st, "key0123", &c), "key0123=value861;");
    ck_assert_uint_eq(count_keys(st), 301);
    sm_store_close(st);
    sm_test_rmtree(dir);
}
END_TEST

/* Child: commits keys k000..k099, then (if mid_batch) opens a second batch
 * that adds and deletes, and dies by SIGKILL either way. */
static void killed_child(const char *dir, int mid_batch)
{
    sm_store_config cfg = {.dir = dir, .map_size = MIB, .map_max = MIB};
    sm_store *st = NULL;
    if (sm_store_open(&st, &cfg, NULL, 0) != SM_OK || sm_store_begin(st) != SM_OK)
        _exit(2);
    for (int i = 0; i < 100; i++) {
        char k[16], v[16];
        snprintf(k, sizeof k, "k%03d", i);
        snprintf(v, sizeof v, "v%d", i);
        if (sm_store_put(st, k, strlen(k), v, strlen(v)) != SM_OK)
            _exit(3);
    }
    if (sm_store_commit(st) != SM_OK)
        _exit(4);
    if (mid_batch) {
        if (sm_store_begin(st) != SM_OK)
            _exit(5);
        for (int i = 0; i < 100; i++) {
            char k[16];
            snprintf(k, sizeof k, "new%03d", i);
            if (sm_store_put(st, k, strlen(k), "x", 1) != SM_OK)
                _exit(6);
            snprintf(k, sizeof k, "k%03d", i);
            if (i % 2 == 0 && sm_store_del(st, k, strlen(k)) != SM_OK)
                _exit(7);
        }
    }
    raise(SIGKILL);
    _exit(8);
}

static void check_killed(int mid_batch)
{
    char dir[256];
    sm_test_tmpdir(dir, sizeof dir, "store-kill");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        killed_child(dir, mid_batch);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "child did not die by SIGKILL (status %d)", status);

    sm_store *st = open_store(dir, MIB, MIB);
    collect c;
    ck_assert_uint_eq(count_keys(st), 100);
    ck_assert_str_eq(scan_all(st, "new", &c), "");
    for (int i = 0; i < 100; i++) {
        char k[16], want[32];
        snprintf(k, sizeof k, "k%03d", i);
        snprintf(want, sizeof want, "%s=v%d;", k, i);
        ck_assert_str_eq(scan_all(st, k, &c), want);
    }
    /* The environment is writable after the crash. */
    ck_assert_int_eq(sm_store_begin(st), SM_OK);
    put_str(st, "after", "crash");
    ck_assert_int_eq(sm_store_commit(st), SM_OK);
    ck_assert_uint_eq(count_keys(st), 101);
    sm_store_close(st);
    sm_test_rmtree(dir);
}

START_TEST(test_sigkill_after_commit)
{
    check_killed(0);
}
END_TEST

START_TEST(test_sigkill_mid_batch)
{
    check_killed(1);
}
END_TEST

/* Writes n values of vlen bytes under "big%05d" in one batch. Returns the
 * first failure (the batch is then over) or the commit's status. */
static sm_status write_big_batch(sm_store *st, int n, size_t vlen)
{
    char *val = malloc(vlen);
    ck_assert_ptr_nonnull(val);
    memset(val, 'v', vlen);
    sm_status s = sm_store_begin(st);
    for (int i = 0; i < n && s == SM_OK; i++) {
        char k[32];
        snprintf(k, sizeof k, "big%05d", i);
        s = sm_store_put(st, k, strlen(k), val, vlen);
    }
    if (s == SM_OK)
        s = sm_store_commit(st);
    free(val);
    return s;
}

START_TEST(test_map_full_no_growth)
{
    char dir[256];
    sm_test_tmpdir(dir, sizeof dir, "store-full");
    sm_store *st = open_store(dir, 64 * KIB, 64 * KIB);
    collect c;

    ck_assert_int_eq(sm_store_begin(st), SM_OK);
    put_str(st, "keep", "safe");
    ck_assert_int_eq(sm_store_commit(st), SM_OK);

    /* 200 KiB cannot fit in a 64 KiB map. */
    ck_assert_int_eq(write_big_batch(st, 200, KIB), SM_ERR_MAP_FULL);
    ck_assert_msg(strstr(sm_store_error(st), "MDB_MAP_FULL") != NULL,
                  "error text: %s", sm_store_error(st));
    /* The batch is over: a put now is a usage error, not a write. */
    ck_assert_int_eq(sm_store_put(st, "k", 1, "v", 1), SM_ERR_INVALID);

    sm_store_stats ss;
    ck_assert_int_eq(sm_store_stats_get(st, &ss), SM_OK);
    ck_assert_uint_ge(ss.map_full, 1);
    ck_assert_uint_eq(ss.map_size, 64 * KIB);
    ck_assert_int_eq(sm_store_grow(st), SM_ERR_FULL);

    /* Nothing of the failed batch was written; earlier data intact; the
     * environment still takes small batches. */
    ck_assert_str_eq(scan_all(st, "big", &c), "");
    ck_assert_str_eq(scan_all(st, "", &c), "keep=safe;");
    ck_assert_int_eq(sm_store_begin(st), SM_OK);
    put_str(st, "small", "fits");
    ck_assert_int_eq(sm_store_commit(st), SM_OK);
    ck_assert_str_eq(scan_all(st, "", &c), "keep=safe;small=fits;");
    sm_store_close(st);

    /* And after reopening. */
    st = open_store(dir, 64 * KIB, 64 * KIB);
    ck_assert_str_eq(scan_all(st, "", &c), "keep=safe;small=fits;");
    sm_store_close(st);
    sm_test_rmtree(dir);
}
END_TEST

/* A write that fails inside a part ends the part only: the batch keeps
 * what came before and after it, and commits. */
START_TEST(test_failed_part_leaves_the_batch)
{
    char dir[256];
    sm_test_tmpdir(dir, sizeof dir, "store-part");
    sm_store *st = open_store(dir, 64 * KIB, 64 * KIB);
    collect c;
    static char big[200 * 1024];
    memset(big, 'x', sizeof big);

    ck_assert_int_eq(sm_store_begin(st), SM_OK);
    put_str(st, "a", "before");
    ck_assert_int_eq(sm_store_part_begin(st), SM_OK);
    ck_assert_int_eq(sm_store_part_begin(st), SM_ERR_INVALID);
    put_str(st, "b", "in the failed part");
    ck_assert_int_eq(sm_store_put(st, "huge", 4, big, sizeof big), SM_ERR_MAP_FULL);
    ck_assert_int_eq(sm_store_part_commit(st), SM_ERR_INVALID);  /* over */
    ck_assert_int_eq(sm_store_part_begin(st), SM_OK);
    put_str(st, "c", "in a good part");
    ck_assert_int_eq(sm_store_part_commit(st), SM_OK);
    ck_assert_int_eq(sm_store_part_begin(st), SM_OK);
    put_str(st, "d", "aborted");
    sm_store_part_abort(st);
    put_str(st, "e", "after");
    ck_assert_int_eq(sm_store_commit(st), SM_OK);
    ck_assert_str_eq(scan_all(st, "", &c), "a=before;c=in a good part;e=after;");
    sm_store_close(st);
    st = open_store(dir, 64 * KIB, 64 * KIB);
    ck_assert_str_eq(scan_all(st, "", &c), "a=before;c=in a good part;e=after;");
    ck_assert_int_eq(sm_store_part_begin(st), SM_ERR_INVALID);  /* no batch */
    sm_store_close(st);
    sm_test_rmtree(dir);
}
END_TEST


/* ---- logs: a batch recorded on one thread, written by another */

typedef struct parts_seen {
    sm_status s[8];
    size_t n;
} parts_seen;

static void part_seen(void *ud, size_t part, sm_status s)
{
    parts_seen *p = ud;
    ck_assert_uint_eq(part, p->n);      /* in log order */
    p->s[p->n++] = s;
}

/* A log whose batch does not fit the map fails its part with
 * MDB_MAP_FULL when applied as it is (sm_store_apply never grows: it runs
 * on the commit thread); sm_store_make_room() first grows the map for it,
 * by doublings up to map_max, and then it goes in whole. */
START_TEST(test_make_room_grows_the_map_ahead_of_a_batch)
{
    char dir[256];
    sm_test_tmpdir(dir, sizeof dir, "store-room");
    sm_store *st = open_store(dir, 64 * KIB, 8 * MIB);
    sm_store *log = NULL;
    ck_assert_int_eq(sm_store_log_open(&log), SM_OK);
    static char big[300 * 1024];
    memset(big, 'x', sizeof big);
    ck_assert_int_eq(sm_store_begin(log), SM_OK);
    ck_assert_int_eq(sm_store_part_begin(log), SM_OK);
    ck_assert_int_eq(sm_store_put(log, "big", 3, big, sizeof big), SM_OK);
    ck_assert_int_eq(sm_store_part_commit(log), SM_OK);
    ck_assert_int_eq(sm_store_commit(log), SM_OK);

    parts_seen ps = {{0}, 0};       /* as it is: the part fails */
    ck_assert_int_eq(sm_store_apply(st, log, part_seen, &ps), SM_OK);
    ck_assert_int_eq(ps.s[0], SM_ERR_MAP_FULL);
    sm_store_stats ss;
    ck_assert_int_eq(sm_store_stats_get(st, &ss), SM_OK);
    ck_assert_uint_eq(ss.map_size, 64 * KIB);
    ck_assert_uint_eq(ss.map_full, 1);

    unsigned grown = 0;             /* room first: it goes in */
    ck_assert_int_eq(sm_store_make_room(st, sm_store_log_bytes(log), &grown), SM_OK);
    ck_assert_int_eq(sm_store_stats_get(st, &ss), SM_OK);
    ck_assert_uint_ge(ss.map_size, 2 * sizeof big + MIB);
    ck_assert_uint_eq(ss.map_size, (size_t)(64 * KIB) << grown);
    ck_assert_uint_eq(ss.grows, grown);
    memset(&ps, 0, sizeof ps);
    ck_assert_int_eq(sm_store_apply(st, log, part_seen, &ps), SM_OK);
    ck_assert_int_eq(ps.s[0], SM_OK);
    ck_assert_int_eq(sm_store_stats_get(st, &ss), SM_OK);
    ck_assert_uint_eq(ss.map_full, 1);  /* no new miss */

    /* once there is room, nothing grows; past map_max it says so */
    ck_assert_int_eq(sm_store_make_room(st, sm_store_log_bytes(log), &grown), SM_OK);
    ck_assert_uint_eq(grown, 0);
    ck_assert_int_eq(sm_store_make_room(st, 8 * MIB, &grown), SM_ERR_FULL);
    ck_assert_int_eq(sm_store_stats_get(st, &ss), SM_OK);
    ck_assert_uint_eq(ss.map_size, 8 * MIB);
    sm_store_close(log);
    sm_store_close(st);
    sm_test_rmtree(dir);
}
END_TEST

/* A log replays into the store exactly what the same calls would have
 * written directly: puts, dels, parts (one that fails is dropped, the
 * batch goes on), an aborted part, and the conditional rest only when
 * every part went in. A log is no store: no scans, no stats, no grow. */
START_TEST(test_log_applies_as_the_batch_would)
{
    char dir[256];
    sm_test_tmpdir(dir, sizeof dir, "store-log");
    sm_store *st = open_store(dir, 64 * KIB, 64 * KIB);
    sm_store *log = NULL;
    collect c;
    static char big[200 * 1024];
    memset(big, 'x', sizeof big);
    ck_assert_int_eq(sm_store_log_open(&log), SM_OK);
    ck_assert_int_eq(sm_store_put(log, "a", 1, "x", 1), SM_ERR_INVALID);
    ck_assert_int_eq(sm_store_scan(log, NULL, 0, collect_fn, &c), SM_ERR_INVALID);
    ck_assert_int_eq(sm_store_grow(log), SM_ERR_INVALID);
    sm_store_stats ss;
    ck_assert_int_eq(sm_store_stats_get(log, &ss), SM_ERR_INVALID);

    /* first batch: everything goes in, the conditional rest too */
    ck_assert_int_eq(sm_store_begin(log), SM_OK);
    put_str(log, "gone", "soon deleted");
    put_str(log, "a", "1");
    ck_assert_int_eq(sm_store_part_begin(log), SM_OK);
    put_str(log, "b", "part one");
    ck_assert_int_eq(sm_store_part_commit(log), SM_OK);
    ck_assert_int_eq(sm_store_part_begin(log), SM_OK);
    put_str(log, "z", "aborted part");
    sm_store_part_abort(log);
    ck_assert_int_eq(sm_store_del(log, "gone", 4), SM_OK);
    ck_assert_int_eq(sm_store_log_cond(log), SM_OK);
    ck_assert_int_eq(sm_store_part_begin(log), SM_ERR_INVALID);
    put_str(log, "m", "meta");
    ck_assert_int_eq(sm_store_apply(st, log, NULL, NULL), SM_ERR_INVALID); /* open */
    ck_assert_int_eq(sm_store_commit(log), SM_OK);
    ck_assert_uint_eq(sm_store_log_parts(log), 1);
    ck_assert_uint_gt(sm_store_log_bytes(log), 0);
    parts_seen ps = {{0}, 0};
    ck_assert_int_eq(sm_store_apply(st, log, part_seen, &ps), SM_OK);
    ck_assert_uint_eq(ps.n, 1);
    ck_assert_int_eq(ps.s[0], SM_OK);
    ck_assert_str_eq(scan_all(st, "", &c), "a=1;b=part one;m=meta;");

    /* second batch: a part too big for the map fails alone; the batch
     * commits the rest but not what is conditional on every part */
    ck_assert_int_eq(sm_store_begin(log), SM_OK);
    ck_assert_int_eq(sm_store_part_begin(log), SM_OK);
    put_str(log, "c", "part, fails");
    ck_assert_int_eq(sm_store_put(log, "huge", 4, big, sizeof big), SM_OK);
    ck_assert_int_eq(sm_store_part_commit(log), SM_OK);
    ck_assert_int_eq(sm_store_part_begin(log), SM_OK);
    put_str(log, "d", "part, goes in");
    ck_assert_int_eq(sm_store_part_commit(log), SM_OK);
    put_str(log, "e", "unconditional");
    ck_assert_int_eq(sm_store_log_cond(log), SM_OK);
    put_str(log, "m", "meta 2");
    ck_assert_int_eq(sm_store_commit(log), SM_OK);
    memset(&ps, 0, sizeof ps);
    ck_assert_int_eq(sm_store_apply(st, log, part_seen, &ps), SM_OK);
    ck_assert_uint_eq(ps.n, 2);
    ck_assert_int_eq(ps.s[0], SM_ERR_MAP_FULL);
    ck_assert_int_eq(ps.s[1], SM_OK);
    ck_assert_str_eq(scan_all(st, "", &c),
                     "a=1;b=part one;d=part, goes in;e=unconditional;m=meta;");

    /* third batch: too big outside any part: nothing of it goes in */
    ck_assert_int_eq(sm_store_begin(log), SM_OK);
    put_str(log, "f", "lost with the batch");
    ck_assert_int_eq(sm_store_put(log, "huge", 4, big, sizeof big), SM_OK);
    ck_assert_int_eq(sm_store_commit(log), SM_OK);
    ck_assert_int_eq(sm_store_apply(st, log, NULL, NULL), SM_ERR_MAP_FULL);
    ck_assert_str_eq(scan_all(st, "", &c),
                     "a=1;b=part one;d=part, goes in;e=unconditional;m=meta;");

    /* replay into an open batch: puts and dels only */
    ck_assert_int_eq(sm_store_begin(log), SM_OK);
    ck_assert_int_eq(sm_store_del(log, "a", 1), SM_OK);
    put_str(log, "g", "replayed");
    ck_assert_int_eq(sm_store_commit(log), SM_OK);
    ck_assert_int_eq(sm_store_begin(st), SM_OK);
    ck_assert_int_eq(sm_store_log_replay(st, log), SM_OK);
    ck_assert_int_eq(sm_store_commit(st), SM_OK);
    ck_assert_str_eq(scan_all(st, "", &c),
                     "b=part one;d=part, goes in;e=unconditional;g=replayed;m=meta;");
    sm_store_close(log);
    sm_store_close(st);
    sm_test_rmtree(dir);
}
END_TEST


/* Once a log is handed to the commit thread, the owner's scans see what
 * it writes: they wait for the write, even one the thread has not begun
 * yet (sm_store_apply_coming), and never touch the batch. */
START_TEST(test_scan_after_hand_over_sees_the_batch)
{
    char dir[256];
    sm_test_tmpdir(dir, sizeof dir, "store-handover");
    sm_store *st = open_store(dir, 16 * MIB, 16 * MIB);
    sm_writer *w = NULL;
    ck_assert_int_eq(sm_writer_start(&w, st, NULL, NULL), SM_OK);
    for (int round = 1; round <= 5; round++) {
        sm_store *log = sm_writer_log(w);
        ck_assert_ptr_nonnull(log);
        ck_assert_int_eq(sm_store_begin(log), SM_OK);
        for (int i = 0; i < 2000; i++) {
            char k[32], v[32];
            snprintf(k, sizeof k, "k%05d", i);
            snprintf(v, sizeof v, "%d", round);
            put_str(log, k, v);
        }
        ck_assert_int_eq(sm_store_commit(log), SM_OK);
        ck_assert_int_eq(sm_writer_submit(w), SM_OK);
        collect c;
        memset(&c, 0, sizeof c);
        c.stop_after = 1;
        ck_assert_int_eq(sm_store_scan(st, "k", 1, collect_fn, &c), SM_ERR_FULL);
        char want[32];
        snprintf(want, sizeof want, "k00000=%d;", round);
        ck_assert_str_eq(c.text, want);
        sm_writer_result r;
        ck_assert(sm_writer_poll(w, true, &r));
        ck_assert_int_eq(r.applied, SM_OK);
        ck_assert_uint_eq(count_keys(st), 2000);
    }
    ck_assert(!sm_writer_poll(w, false, NULL));     /* nothing in hand */
    sm_writer_stop(w);
    sm_store_close(st);
    sm_test_rmtree(dir);
}
END_TEST

/* Puts go through one cursor per writer (store.c): many puts, deletes
 * and overwrites in shuffled order, across batches, committed and aborted
 * parts and an aborted batch, leave exactly what a plain model says. */
#define MODEL_KEYS 1500

typedef struct model {
    int val[MODEL_KEYS];        /* -1: absent */
    size_t seen, wrong;
} model;

static sm_status model_fn(void *ud, const void *key, size_t klen,
                          const void *val, size_t vlen)
{
    model *m = ud;
    char k[32], v[32];
    snprintf(k, sizeof k, "%.*s", (int)klen, (const char *)key);
    snprintf(v, sizeof v, "%.*s", (int)vlen, (const char *)val);
    int i = atoi(k + 1), x = atoi(v);
    m->seen++;
    if (i < 0 || i >= MODEL_KEYS || m->val[i] != x)
        m->wrong++;
    return SM_OK;
}

static void model_write(sm_store *st, int *val, unsigned *rnd, int step)
{
    for (int n = 0; n < 400; n++) {
        *rnd = *rnd * 1103515245u + 12345u;
        int i = (int)((*rnd >> 8) % MODEL_KEYS);
        char k[16], v[16];
        snprintf(k, sizeof k, "k%05d", i);
        if ((*rnd >> 4) % 5 == 0) {
            ck_assert_int_eq(sm_store_del(st, k, strlen(k)), SM_OK);
            val[i] = -1;
        } else {
            snprintf(v, sizeof v, "%d", step * 100000 + n);
            put_str(st, k, v);
            val[i] = step * 100000 + n;
        }
    }
}

START_TEST(test_puts_through_cursor_match_a_model)
{
    char dir[256];
    sm_test_tmpdir(dir, sizeof dir, "store-cursor");
    sm_store *st = open_store(dir, 16 * MIB, 16 * MIB);
    static model committed, pending;
    for (int i = 0; i < MODEL_KEYS; i++)
        committed.val[i] = -1;
    unsigned rnd = 7;
    for (int round = 0; round < 12; round++) {
        pending = committed;
        ck_assert_int_eq(sm_store_begin(st), SM_OK);
        model_write(st, pending.val, &rnd, round * 10);
        for (int part = 0; part < 3; part++) {
            int before[MODEL_KEYS];
            memcpy(before, pending.val, sizeof before);
            ck_assert_int_eq(sm_store_part_begin(st), SM_OK);
            model_write(st, pending.val, &rnd, round * 10 + part + 1);
            if (part == 1) {        /* the middle part is dropped */
                sm_store_part_abort(st);
                memcpy(pending.val, before, sizeof before);
            } else {
                ck_assert_int_eq(sm_store_part_commit(st), SM_OK);
            }
            model_write(st, pending.val, &rnd, round * 10 + part + 5);
        }
        if (round % 4 == 3) {       /* every fourth batch is aborted */
            sm_store_abort(st);
            continue;
        }
        ck_assert_int_eq(sm_store_commit(st), SM_OK);
        committed = pending;
    }
    size_t present = 0;
    for (int i = 0; i < MODEL_KEYS; i++)
        present += committed.val[i] >= 0;
    committed.seen = committed.wrong = 0;
    ck_assert_int_eq(sm_store_scan(st, NULL, 0, model_fn, &committed), SM_OK);
    ck_assert_uint_eq(committed.wrong, 0);
    ck_assert_uint_eq(committed.seen, present);
    ck_assert_uint_gt(present, MODEL_KEYS / 2);
    sm_store_close(st);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(test_map_full_then_grow)
{
    char dir[256];
    sm_test_tmpdir(dir, sizeof dir, "store-grow");
    sm_store *st = open_store(dir, 64 * KIB, 2 * MIB);

    ck_assert_int_eq(sm_store_begin(st), SM_OK);
    put_str(st, "keep", "safe");
    ck_assert_int_eq(sm_store_commit(st), SM_OK);

    /* The same batch as above, redone after each growth until it fits. */
    sm_status s;
    int tries = 0;
    while ((s = write_big_batch(st, 200, KIB)) == SM_ERR_MAP_FULL) {
        ck_assert_int_eq(sm_store_grow(st), SM_OK);
        ck_assert_int_lt(++tries, 10);
    }
    ck_assert_int_eq(s, SM_OK);
    ck_assert_int_ge(tries, 1);

    sm_store_stats ss;
    ck_assert_int_eq(sm_store_stats_get(st, &ss), SM_OK);
    ck_assert_uint_eq(ss.grows, (uint64_t)tries);
    ck_assert_uint_eq(ss.map_full, (uint64_t)tries);
    ck_assert_uint_eq(ss.entries, 201);
    ck_assert_uint_gt(ss.map_size, 64 * KIB);
    ck_assert_uint_le(ss.map_size, 2 * MIB);
    ck_assert_uint_le(ss.used_bytes, ss.map_size);

    /* Growth stops at map_max, exactly. */
    while ((s = sm_store_grow(st)) == SM_OK)
        ;
    ck_assert_int_eq(s, SM_ERR_FULL);
    ck_assert_int_eq(sm_store_stats_get(st, &ss), SM_OK);
    ck_assert_uint_eq(ss.map_size, 2 * MIB);
    sm_store_close(st);

    st = open_store(dir, 64 * KIB, 2 * MIB);
    ck_assert_uint_eq(count_keys(st), 201);
    sm_store_close(st);
    sm_test_rmtree(dir);
}
END_TEST

/* ---- damaged stores ------------------------------------------------------ */

#define DAMAGE_SWARMS 3
#define DAMAGE_AGENTS 700           /* per swarm: a B-tree of a few levels */

/* A real store, as the worker writes it: DAMAGE_SWARMS swarms of
 * DAMAGE_AGENTS agents with task history, in dir. */
static void make_real_store(const char *dir)
{
    sm_store_config sc = {.dir = dir, .map_size = 8 * MIB, .map_max = 8 * MIB};
    sm_store *st = NULL;
    sm_persist *p = NULL;
    sm_registry *reg = NULL;
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    ck_assert_int_eq(sm_store_open(&st, &sc, NULL, 0), SM_OK);
    ck_assert_int_eq(sm_persist_create(&p, st), SM_OK);
    ck_assert_int_eq(sm_registry_create(&reg, &cfg), SM_OK);
    sm_persist_result res;
    for (int k = 0; k < 4; k++)     /* four commits: free pages too */
        for (int w = 0; w < DAMAGE_SWARMS; w++) {
            char id[24];
            snprintf(id, sizeof id, "swarm-%d", w);
            sm_swarm *sw = NULL;
            ck_assert_int_eq(sm_registry_get(reg, id, &sw), SM_OK);
            for (int a = 0; a < DAMAGE_AGENTS; a++) {
                char agent[32];
                snprintf(agent, sizeof agent, "agent-%04d", a);
                sm_task_event ev = {
                    .ts_ms = 1767225600000LL + k * 10000 + a, .agent = agent,
                    .kind = SM_TASK_COMPLETED, .priority = SM_PRIO_MEDIUM,
                    .duration_ms = 900 + (uint32_t)(a % 200),
                };
                ck_assert_int_eq(sm_swarm_on_task(sw, &ev, NULL), SM_OK);
            }
            if (w == DAMAGE_SWARMS - 1)
                ck_assert_int_eq(sm_persist_flush(p, reg, 0, &res), SM_OK);
        }
    sm_registry_destroy(reg);
    sm_persist_destroy(p);
    sm_store_close(st);
}

static unsigned char *slurp_bin(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* A fresh store directory holding `data` (len bytes) as its data file. */
static void write_copy(const char *dir, const unsigned char *data, size_t len)
{
    char path[400];
    sm_test_rmtree(dir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* What opening and loading a copy came to, as its child process saw it. */
typedef struct outcome {
    int opened;                 /* 0: sm_store_open refused it */
    sm_status open_status, load_status;
    size_t swarms, agents, corrupt, newer, unknown;
    size_t dropped;             /* keys load reported, each with a reason */
    char why[200];
} outcome;

typedef enum verdict {
    V_REFUSED,                  /* open or load said no, with a reason */
    V_WHOLE,                    /* everything loaded */
    V_REPORTED,                 /* loaded, what was dropped counted */
    V_SILENT,                   /* loaded part and said it was fine */
    V_CRASHED,                  /* the process died */
    V_COUNT,
} verdict;

static const char *const verdict_names[V_COUNT] = {
    "refused", "whole", "reported", "SILENT", "CRASHED",
};

static void count_drop(void *ud, const void *key, size_t klen, const char *why)
{
    (void)key;
    (void)klen;
    (void)why;
    ((outcome *)ud)->dropped++;
}

static void probe_child(const char *dir, int fd)
{
    alarm(20);                  /* a hang inside liblmdb is a failure too */
    outcome o;
    memset(&o, 0, sizeof o);
    sm_store_config sc = {.dir = dir, .map_size = 8 * MIB, .map_max = 8 * MIB};
    sm_store *st = NULL;
    o.open_status = sm_store_open(&st, &sc, o.why, sizeof o.why);
    if (o.open_status == SM_OK) {
        o.opened = 1;
        sm_persist *p = NULL;
        sm_registry *reg = NULL;
        sm_detect_config cfg;
        sm_detect_config_default(&cfg);
        sm_persist_load_result lr;
        if (sm_persist_create(&p, st) != SM_OK ||
            sm_registry_create(&reg, &cfg) != SM_OK)
            _exit(3);
        sm_persist_on_drop(p, count_drop, &o);
        o.load_status = sm_persist_load(p, reg, &lr);
        o.swarms = sm_registry_count(reg);
        o.agents = lr.agents;
        o.corrupt = lr.corrupt;
        o.newer = lr.newer;
        o.unknown = lr.unknown;
    }
    if (write(fd, &o, sizeof o) != (ssize_t)sizeof o)
        _exit(4);
    _exit(0);
}

/* Opens and loads the store in dir in a child process (a crash inside
 * liblmdb kills the child, not the test) and judges the outcome. */
static verdict probe(const char *dir, outcome *o)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        probe_child(dir, fds[1]);
    }
    close(fds[1]);
    memset(o, 0, sizeof *o);
    ssize_t got = read(fds[0], o, sizeof *o);
    close(fds[0]);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != (ssize_t)sizeof *o)
        return V_CRASHED;
    if (!o->opened || o->load_status != SM_OK)
        return o->why[0] || o->load_status != SM_OK ? V_REFUSED : V_SILENT;
    /* every key counted as dropped, kept for a newer build or unknown is
     * reported, each with its reason */
    if (o->dropped > 0 && o->dropped == o->corrupt + o->newer + o->unknown)
        return V_REPORTED;
    if (o->dropped > 0 || o->corrupt + o->newer + o->unknown > 0)
        return V_SILENT;
    if (o->swarms == DAMAGE_SWARMS && o->agents == DAMAGE_SWARMS * DAMAGE_AGENTS)
        return V_WHOLE;
    return V_SILENT;
}

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* An empty data file is no store at all: refused, not started afresh. */
START_TEST(test_empty_data_file_is_refused)
{
    char dir[256], copy[300];
    sm_test_tmpdir(dir, sizeof dir, "store-empty");
    snprintf(copy, sizeof copy, "%s/copy", dir);
    write_copy(copy, (const unsigned char *)"", 0);
    outcome o;
    ck_assert_int_eq(probe(copy, &o), V_REFUSED);
    ck_assert_int_eq(o.open_status, SM_ERR_CORRUPT);
    ck_assert_msg(strstr(o.why, "0 bytes"), "why: '%s'", o.why);
    sm_test_rmtree(dir);
}
END_TEST

/* The real store loads whole; a copy cut anywhere is refused with the
 * reason, or (cut past its last page in use) loads whole. */
START_TEST(test_truncated_store_is_refused)
{
    char dir[256], real[300], copy[300], path[400];
    sm_test_tmpdir(dir, sizeof dir, "store-trunc");
    snprintf(real, sizeof real, "%s/real", dir);
    snprintf(copy, sizeof copy, "%s/copy", dir);
    make_real_store(real);
    snprintf(path, sizeof path, "%s/data.mdb", real);
    size_t len = 0;
    unsigned char *data = slurp_bin(path, &len);
    outcome o;
    write_copy(copy, data, len);
    ck_assert_int_eq(probe(copy, &o), V_WHOLE);

    size_t cuts[] = {100, 4096, 8192, 3 * 4096 + 17, len / 4, len / 2,
                     len * 3 / 4, len - 4096, len - 1};
    int refused = 0;
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_copy(copy, data, cuts[i]);
        verdict v = probe(copy, &o);
        ck_assert_msg(v == V_REFUSED || v == V_WHOLE,
                      "cut at %zu of %zu: %s (swarms %zu agents %zu, %s)", cuts[i],
                      len, verdict_names[v], o.swarms, o.agents, o.why);
        if (v == V_REFUSED) {
            refused++;
            ck_assert_msg(o.why[0], "cut at %zu: refused without a reason", cuts[i]);
        }
    }
    ck_assert_int_ge(refused, 5);
    free(data);
    sm_test_rmtree(dir);
}
END_TEST

/* Copies of a real store with a few bytes flipped, half at random, half
 * in page headers and node tables: each is refused with a reason, loads
 * whole, or loads with what it dropped counted. None crashes the process
 * and none loads in part while saying all is well. */
START_TEST(test_flipped_bytes_never_crash_nor_load_part_silently)
{
    /* SM_FLIP_COPIES and SM_FLIP_SEED run a longer or another series */
    const char *env_copies = getenv("SM_FLIP_COPIES"), *env_seed = getenv("SM_FLIP_SEED");
    const int COPIES = env_copies ? atoi(env_copies) : 300;
    char dir[256], real[300], copy[300], path[400];
    sm_test_tmpdir(dir, sizeof dir, "store-flip");
    snprintf(real, sizeof real, "%s/real", dir);
    snprintf(copy, sizeof copy, "%s/copy", dir);
    make_real_store(real);
    snprintf(path, sizeof path, "%s/data.mdb", real);
    size_t len = 0;
    unsigned char *data = slurp_bin(path, &len);
    unsigned char *bad = malloc(len);
    size_t pages = len / 4096;
    int count[V_COUNT] = {0};
    char first_bad[512] = "";
    uint64_t x = env_seed ? strtoull(env_seed, NULL, 0) | 1 : 0x9e3779b97f4a7c15ULL;
    for (int c = 0; c < COPIES; c++) {
        memcpy(bad, data, len);
        int flips = 1 + (int)(rng_next(&x) % 4);
        for (int f = 0; f < flips; f++) {
            size_t at = (c % 2 == 0)
                ? (size_t)(rng_next(&x) % len)
                : (size_t)(rng_next(&x) % pages) * 4096 + rng_next(&x) % 96;
            bad[at] ^= (unsigned char)(1u << (rng_next(&x) % 8));
        }
        write_copy(copy, bad, len);
        outcome o;
        verdict v = probe(copy, &o);
        count[v]++;
        if ((v == V_SILENT || v == V_CRASHED) && !first_bad[0])
            snprintf(first_bad, sizeof first_bad,
                     "copy %d: %s (opened %d, swarms %zu, agents %zu, corrupt %zu)",
                     c, verdict_names[v], o.opened, o.swarms, o.agents, o.corrupt);
    }
    fprintf(stderr, "flipped copies: %d refused, %d whole, %d reported, %d silent, "
                    "%d crashed\n", count[V_REFUSED], count[V_WHOLE],
            count[V_REPORTED], count[V_SILENT], count[V_CRASHED]);
    ck_assert_msg(count[V_CRASHED] == 0 && count[V_SILENT] == 0,
                  "%d crashed, %d loaded in part silently; first: %s",
                  count[V_CRASHED], count[V_SILENT], first_bad);
    ck_assert_int_gt(count[V_REFUSED], 0);
    free(bad);
    free(data);
    sm_test_rmtree(dir);
}
END_TEST

/* 200k put/delete cycles over a rolling set of 1000 live keys, 100 cycles
 * per batch: LMDB reuses freed pages, so the file stops growing. A full
 * map would be grown (as the persist layer does); it must never come to
 * that. */
START_TEST(test_bounded_size_under_churn)
{
    enum { LIVE = 1000, CYCLES = 200000, PER_BATCH = 100, WARM = 10000 };
    char dir[256];
    sm_test_tmpdir(dir, sizeof dir, "store-churn");
    sm_store *st = open_store(dir, 8 * MIB, 64 * MIB);
    sm_store_stats ss;
    ck_assert_int_eq(sm_store_stats_get(st, &ss), SM_OK);
    size_t map0 = ss.map_size, warm_used = 0, max_used = 0;
    char val[120];
    memset(val, 'w', sizeof val);

    for (int i = 0; i < CYCLES; i += PER_BATCH) {
        sm_status s = sm_store_begin(st);
        for (int j = i; j < i + PER_BATCH && s == SM_OK; j++) {
            char k[32];
            snprintf(k, sizeof k, "agent-%08d", j);
            s = sm_store_put(st, k, strlen(k), val, sizeof val);
            if (s == SM_OK && j >= LIVE) {
                snprintf(k, sizeof k, "agent-%08d", j - LIVE);
                s = sm_store_del(st, k, strlen(k));
            }
        }
        if (s == SM_OK)
            s = sm_store_commit(st);
        if (s == SM_ERR_MAP_FULL) {
            ck_assert_int_eq(sm_store_grow(st), SM_OK);
            i -= PER_BATCH;     /* redo the batch */
            continue;
        }
        ck_assert_msg(s == SM_OK, "cycle %d: %s", i, sm_status_str(s));
        ck_assert_int_eq(sm_store_stats_get(st, &ss), SM_OK);
        if (i + PER_BATCH == WARM)
            warm_used = ss.used_bytes;
        if (ss.used_bytes > max_used)
            max_used = ss.used_bytes;
    }
    ck_assert_int_eq(sm_store_stats_get(st, &ss), SM_OK);
    ck_assert_uint_eq(ss.entries, LIVE);
    ck_assert_uint_gt(warm_used, 0);
    ck_assert_msg(max_used <= 2 * warm_used,
                  "store kept growing: %zu bytes after warm-up, %zu at peak",
                  warm_used, max_used);
    ck_assert_uint_eq(ss.map_size, map0);
    ck_assert_uint_eq(ss.grows, 0);
    ck_assert_uint_eq(ss.map_full, 0);
    sm_store_close(st);
    sm_test_rmtree(dir);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_put_commit_scan_prefix);
    tcase_add_test(tc, test_abort_discards);
    tcase_add_test(tc, test_del_missing_ok);
    tcase_add_test(tc, test_invalid_use);
    tcase_add_test(tc, test_reopen_keeps_data);
    tcase_add_test(tc, test_sigkill_after_commit);
    tcase_add_test(tc, test_sigkill_mid_batch);
    tcase_add_test(tc, test_map_full_no_growth);
    tcase_add_test(tc, test_map_full_then_grow);
    tcase_add_test(tc, test_failed_part_leaves_the_batch);
    tcase_add_test(tc, test_log_applies_as_the_batch_would);
    tcase_add_test(tc, test_make_room_grows_the_map_ahead_of_a_batch);
    tcase_add_test(tc, test_scan_after_hand_over_sees_the_batch);
    tcase_add_test(tc, test_puts_through_cursor_match_a_model);
    tcase_add_test(tc, test_empty_data_file_is_refused);
    tcase_add_test(tc, test_truncated_store_is_refused);
    tcase_add_test(tc, test_flipped_bytes_never_crash_nor_load_part_silently);
    suite_add_tcase(s, tc);

    TCase *churn = tcase_create("churn");
    tcase_set_timeout(churn, 300);
    tcase_add_test(churn, test_bounded_size_under_churn);
    suite_add_tcase(s, churn);
    return s;
}

int main(void)
{
    return sm_run_suite(store_suite());
}
