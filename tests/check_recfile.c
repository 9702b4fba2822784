/* The recording file: round trips, byte-identical output, and the reader's
 * behaviour on every kind of damage a crash or a bad disk leaves behind. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recfile.h"
#include "support.h"
#include "runner.h"

enum { NREC = 60, MAXPAY = 400 };

/* Record i of the reference set: varied subjects, no/one/multi-valued
 * headers, empty and binary payloads (with NULs). */
typedef struct ref {
    int64_t recv_ms;
    char subject[64];
    const char *headers[8];
    char id[32];
    uint8_t data[MAXPAY];
    size_t len;
} ref;

static void make_ref(ref *r, int i)
{
    memset(r, 0, sizeof *r);
    r->recv_ms = 1700000000000LL + i * 7;
    snprintf(r->subject, sizeof r->subject, "swarm.s%d.task.a%d", i % 3, i);
    snprintf(r->id, sizeof r->id, "%016x", (unsigned)(i * 2654435761u));
    switch (i % 3) {
    case 1:
        r->headers[0] = "Nats-Msg-Id";
        r->headers[1] = r->id;
        break;
    case 2:
        r->headers[0] = "K";
        r->headers[1] = "v1";
        r->headers[2] = "K";
        r->headers[3] = "v2";
        r->headers[4] = "Empty";
        r->headers[5] = "";
        break;
    default:
        break;
    }
    r->len = (i % 5 == 0) ? 0 : (size_t)(i * 6) % MAXPAY;
    for (size_t j = 0; j < r->len; j++)
        r->data[j] = (uint8_t)(i * 31 + (int)j);
}

static void write_refs(const char *path, int n)
{
    sm_recw *w = NULL;
    ck_assert_int_eq(sm_recw_open(&w, path), SM_OK);
    ref r;
    for (int i = 0; i < n; i++) {
        make_ref(&r, i);
        ck_assert_int_eq(sm_recw_append(w, r.recv_ms, r.subject,
                                        r.headers[0] ? r.headers : NULL,
                                        r.len ? r.data : NULL, r.len),
                         SM_OK);
    }
    ck_assert_uint_eq(sm_recw_count(w), (uint64_t)n);
    ck_assert_int_eq(sm_recw_close(w), SM_OK);
}

static void check_rec(const sm_rec *got, int i)
{
    ref r;
    make_ref(&r, i);
    ck_assert_uint_eq(got->index, (uint64_t)i);
    ck_assert_int_eq(got->recv_ms, r.recv_ms);
    ck_assert_str_eq(got->subject, r.subject);
    ck_assert_uint_eq(got->subject_len, strlen(r.subject));
    size_t nh = 0;
    while (r.headers[2 * nh])
        nh++;
    ck_assert_uint_eq(got->n_headers, nh);
    for (size_t k = 0; k < nh; k++) {
        ck_assert_str_eq(got->headers[k].key, r.headers[2 * k]);
        ck_assert_str_eq(got->headers[k].value, r.headers[2 * k + 1]);
        ck_assert_uint_eq(got->headers[k].value_len, strlen(r.headers[2 * k + 1]));
    }
    ck_assert_uint_eq(got->len, r.len);
    ck_assert(r.len == 0 || memcmp(got->data, r.data, r.len) == 0);
    ck_assert_uint_eq(got->data[got->len], 0);
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static void write_all(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* Reads `path` expecting records 0..good-1 intact, then `end`. Returns the
 * reader's error sentence (static copy). */
static const char *read_expect(const char *path, int good, sm_status end)
{
    static char msg[256];
    char err[256];
    sm_recr *r = NULL;
    ck_assert_msg(sm_recr_open(&r, path, err, sizeof err) == SM_OK, "%s", err);
    sm_rec rec;
    for (int i = 0; i < good; i++) {
        sm_status s = sm_recr_next(r, &rec);
        ck_assert_msg(s == SM_OK, "record %d: %s (%s)", i, sm_status_str(s),
                      sm_recr_error(r));
        check_rec(&rec, i);
    }
    sm_status s = sm_recr_next(r, &rec);
    ck_assert_msg(s == end, "after %d records: %s, want %s (%s)", good,
                  sm_status_str(s), sm_status_str(end), sm_recr_error(r));
    ck_assert_int_eq(sm_recr_next(r, &rec), end);     /* sticky */
    ck_assert_uint_eq(sm_recr_index(r), (uint64_t)good);
    snprintf(msg, sizeof msg, "%s", sm_recr_error(r));
    sm_recr_close(r);
    return msg;
}

/* Offsets of every record in a file of n reference records (+ the end). */
static void offsets(const char *path, int n, uint64_t *off)
{
    char err[256];
    sm_recr *r = NULL;
    ck_assert_int_eq(sm_recr_open(&r, path, err, sizeof err), SM_OK);
    sm_rec rec;
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(sm_recr_next(r, &rec), SM_OK);
        off[i] = rec.offset;
    }
    off[n] = sm_recr_offset(r);
    sm_recr_close(r);
}

typedef struct tmp {
    char dir[256];
    char a[320], b[320];
} tmp;

static void tmp_up(tmp *t)
{
    sm_test_tmpdir(t->dir, sizeof t->dir, "rec");
    snprintf(t->a, sizeof t->a, "%s/a.smrec", t->dir);
    snprintf(t->b, sizeof t->b, "%s/b.smrec", t->dir);
}

START_TEST(round_trip)
{
    tmp t;
    tmp_up(&t);
    write_refs(t.a, NREC);
    ck_assert_str_eq(read_expect(t.a, NREC, SM_ERR_NOT_FOUND), "");
    uint64_t off[NREC + 1];
    offsets(t.a, NREC, off);
    ck_assert_uint_eq(off[0], SM_REC_FILE_HEADER);
    size_t n;
    free(read_all(t.a, &n));
    ck_assert_uint_eq(off[NREC], n);
    sm_test_rmtree(t.dir);
}
END_TEST

START_TEST(header_only_file_is_a_clean_end)
{
    tmp t;
    tmp_up(&t);
    sm_recw *w = NULL;
    ck_assert_int_eq(sm_recw_open(&w, t.a), SM_OK);
    ck_assert_int_eq(sm_recw_close(w), SM_OK);
    size_t n;
    uint8_t *b = read_all(t.a, &n);
    ck_assert_uint_eq(n, SM_REC_FILE_HEADER);
    ck_assert(memcmp(b, "SMREC\0\0\0\1\0\0\0\0\0\0\0", 16) == 0);
    free(b);
    ck_assert_str_eq(read_expect(t.a, 0, SM_ERR_NOT_FOUND), "");
    sm_test_rmtree(t.dir);
}
END_TEST

START_TEST(same_records_same_bytes)
{
    tmp t;
    tmp_up(&t);
    write_refs(t.a, NREC);
    write_refs(t.b, NREC);
    size_t na, nb;
    uint8_t *a = read_all(t.a, &na), *b = read_all(t.b, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert(memcmp(a, b, na) == 0);
    free(a);
    free(b);
    /* and a different record does change the file */
    write_refs(t.b, NREC - 1);
    b = read_all(t.b, &nb);
    ck_assert_uint_lt(nb, na);
    free(b);
    sm_test_rmtree(t.dir);
}
END_TEST

START_TEST(truncation_inside_last_record)
{
    tmp t;
    tmp_up(&t);
    enum { N = 8 };
    write_refs(t.a, N);
    uint64_t off[N + 1];
    offsets(t.a, N, off);
    size_t n;
    uint8_t *b = read_all(t.a, &n);
    char want[64];
    snprintf(want, sizeof want, "record %d at byte %llu: ", N - 1,
             (unsigned long long)off[N - 1]);
    /* cut exactly at the record boundary: a clean end */
    write_all(t.b, b, off[N - 1]);
    read_expect(t.b, N - 1, SM_ERR_NOT_FOUND);
    for (size_t cut = off[N - 1] + 1; cut < n; cut++) {
        write_all(t.b, b, cut);
        const char *msg = read_expect(t.b, N - 1, SM_ERR_CORRUPT);
        ck_assert_msg(strncmp(msg, want, strlen(want)) == 0 &&
                      strstr(msg, "truncated"),
                      "cut at %zu: \"%s\"", cut, msg);
    }
    /* the sentence for a body cut short */
    size_t body = (size_t)(off[N] - off[N - 1]) - SM_REC_FRAME;
    write_all(t.b, b, off[N - 1] + SM_REC_FRAME + 5);
    char exact[160];
    snprintf(exact, sizeof exact,
             "record %d at byte %llu: truncated body (expected %zu bytes, 5 left)",
             N - 1, (unsigned long long)off[N - 1], body);
    ck_assert_str_eq(read_expect(t.b, N - 1, SM_ERR_CORRUPT), exact);
    free(b);
    sm_test_rmtree(t.dir);
}
END_TEST

START_TEST(flipped_byte_names_the_record)
{
    tmp t;
    tmp_up(&t);
    enum { N = 10, K = 4 };
    write_refs(t.a, N);
    uint64_t off[N + 1];
    offsets(t.a, N, off);
    size_t n;
    uint8_t *b = read_all(t.a, &n);
    char want[64];
    snprintf(want, sizeof want, "record %d at byte %llu: ", K,
             (unsigned long long)off[K]);
    /* every byte of record K, frame included */
    for (uint64_t at = off[K]; at < off[K + 1]; at++) {
        b[at] ^= 0x5a;
        write_all(t.b, b, n);
        b[at] ^= 0x5a;
        const char *msg = read_expect(t.b, K, SM_ERR_CORRUPT);
        ck_assert_msg(strncmp(msg, want, strlen(want)) == 0,
                      "flip at %llu: \"%s\"", (unsigned long long)at, msg);
        if (at >= off[K] + 4)       /* stored CRC or body: the CRC catches it */
            ck_assert_msg(strstr(msg, "CRC mismatch"), "flip at %llu: \"%s\"",
                          (unsigned long long)at, msg);
    }
    free(b);
    sm_test_rmtree(t.dir);
}
END_TEST

START_TEST(foreign_and_future_files_refused)
{
    tmp t;
    tmp_up(&t);
    char err[256];
    sm_recr *r = NULL;

    write_all(t.a, "hello, this is not a recording\n", 31);
    ck_assert_int_eq(sm_recr_open(&r, t.a, err, sizeof err), SM_ERR_CORRUPT);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(err, t.a) && strstr(err, "not a swarm-medic recording") &&
                  strstr(err, "magic"), "%s", err);

    write_all(t.a, "", 0);
    ck_assert_int_eq(sm_recr_open(&r, t.a, err, sizeof err), SM_ERR_CORRUPT);
    ck_assert_msg(strstr(err, "empty"), "%s", err);

    write_all(t.a, "SMREC\0\0\0\1", 9);
    ck_assert_int_eq(sm_recr_open(&r, t.a, err, sizeof err), SM_ERR_CORRUPT);
    ck_assert_msg(strstr(err, "truncated recording header (9 of 16 bytes)"), "%s", err);

    write_refs(t.a, 3);
    size_t n;
    uint8_t *b = read_all(t.a, &n);
    b[8] = 2;                               /* version 2 */
    write_all(t.b, b, n);
    ck_assert_int_eq(sm_recr_open(&r, t.b, err, sizeof err), SM_ERR_INVALID);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(err, "version 2 is not supported") &&
                  strstr(err, "reads version 1"), "%s", err);
    b[8] = 1;
    b[10] = 4;                              /* an unknown flag */
    write_all(t.b, b, n);
    ck_assert_int_eq(sm_recr_open(&r, t.b, err, sizeof err), SM_ERR_INVALID);
    ck_assert_msg(strstr(err, "flags 0x0004"), "%s", err);
    b[10] = 0;
    b[12] = 0xee;                           /* reserved bytes are ignored */
    write_all(t.b, b, n);
    read_expect(t.b, 3, SM_ERR_NOT_FOUND);
    free(b);

    snprintf(t.b, sizeof t.b, "%s/absent.smrec", t.dir);
    ck_assert_int_eq(sm_recr_open(&r, t.b, err, sizeof err), SM_ERR_IO);
    ck_assert_msg(strstr(err, "absent.smrec") && strstr(err, "No such file"), "%s", err);
    sm_test_rmtree(t.dir);
}
END_TEST

START_TEST(writer_refuses_what_it_cannot_frame)
{
    tmp t;
    tmp_up(&t);
    sm_recw *w = NULL;
    ck_assert_int_eq(sm_recw_open(&w, t.a), SM_OK);
    ck_assert_int_eq(sm_recw_append(w, 1, "ok", NULL, "x", 1), SM_OK);
    char *big = malloc(70000);
    memset(big, 's', 69999);
    big[69999] = 0;
    ck_assert_int_eq(sm_recw_append(w, 2, big, NULL, NULL, 0), SM_ERR_INVALID);
    const char *odd[] = {"key-without-value", NULL};
    ck_assert_int_eq(sm_recw_append(w, 3, "s", odd, NULL, 0), SM_ERR_INVALID);
    const char *bigval[] = {"k", big, NULL};
    ck_assert_int_eq(sm_recw_append(w, 4, "s", bigval, NULL, 0), SM_ERR_INVALID);
    ck_assert_int_eq(sm_recw_append(w, 5, "s", NULL, NULL, 3), SM_ERR_INVALID);
    free(big);
    ck_assert_uint_eq(sm_recw_count(w), 1);
    ck_assert_int_eq(sm_recw_close(w), SM_OK);
    /* the refused appends left no trace: one record, then a clean end */
    char err[256];
    sm_recr *r = NULL;
    ck_assert_int_eq(sm_recr_open(&r, t.a, err, sizeof err), SM_OK);
    sm_rec rec;
    ck_assert_int_eq(sm_recr_next(r, &rec), SM_OK);
    ck_assert_str_eq(rec.subject, "ok");
    ck_assert_int_eq(sm_recr_next(r, &rec), SM_ERR_NOT_FOUND);
    sm_recr_close(r);
    ck_assert_int_eq(sm_recw_open(&w, "/nonexistent-dir/x.smrec"), SM_ERR_IO);
    sm_recw_close(NULL);
    sm_recr_close(NULL);
    sm_test_rmtree(t.dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("recfile");
    TCase *tc = tcase_create("recfile");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, header_only_file_is_a_clean_end);
    tcase_add_test(tc, same_records_same_bytes);
    tcase_add_test(tc, truncation_inside_last_record);
    tcase_add_test(tc, flipped_byte_names_the_record);
    tcase_add_test(tc, foreign_and_future_files_refused);
    tcase_add_test(tc, writer_refuses_what_it_cannot_frame);
    suite_add_tcase(s, tc);
    return sm_run_suite(s);
}
