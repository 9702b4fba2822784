/*
 * check_fuzz.c - bounded, deterministic mutation fuzzing of what reads
 * bytes the worker did not just write itself: the recording reader
 * (worker/tools/recfile.c) and the state importers (core/encode.c:
 * sm_swarm_import, sm_swarm_import_agent, sm_meta_decode).
 *
 * Each target starts from valid inputs (a recording written with sm_recw;
 * swarm, agent and meta blobs exported from a worker that replayed the
 * golden demo recording), mutates a copy with a seeded xorshift PRNG (bit
 * flips, interesting bytes and words, truncation, growth, chunk copies),
 * re-seals its checksum three times in four so that the mutation reaches
 * the parser behind it, and checks what came back. FUZZ_ITERS iterations
 * a target (20,000; SM_FUZZ_ITERS and SM_FUZZ_SEED change them). A crash,
 * a hang or a sanitizer report (make asan) fails the test; so does a
 * record whose fields disagree with its lengths, and a blob that imports
 * but does not export and import again to the same bytes. An imported
 * swarm or agent is then fed events, so state the importer let through is
 * used, not only read.
 */
#include <check.h>
#include <isa-l/crc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "hash.h"
#include "recfile.h"
#include "support.h"
#include "swarm.h"
#include "swarm_medic.pb-c.h"
#include "worker.h"
#include "runner.h"

#define FUZZ_ITERS 20000
#define BLOB_HDR 24             /* encode.c's blob_hdr */

static int iters(void)
{
    const char *e = getenv("SM_FUZZ_ITERS");
    return e ? atoi(e) : FUZZ_ITERS;
}

static uint64_t seed_of(uint64_t salt)
{
    const char *e = getenv("SM_FUZZ_SEED");
    return (e ? strtoull(e, NULL, 0) : 0x2545f4914f6cdd1dULL) ^ salt;
}

static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* ---- mutations ------------------------------------------------------------ */

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

static void buf_set(buf *b, const void *src, size_t len)
{
    if (len + 256 > b->cap) {
        b->cap = len + 256;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memcpy(b->p, src, len);
    b->len = len;
}

/* One to three mutations of b, never growing it past its capacity. */
static void mutate(buf *b, uint64_t *x)
{
    static const uint8_t bytes[] = {0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, 0x3f, 0x40};
    static const uint64_t words[] = {
        0, 1, UINT64_MAX, INT64_MAX, (uint64_t)INT64_MIN, 0x7fffffffULL,
        0xffffffffULL, 0x100000000ULL, 253402300799999ULL + 1,
        (uint64_t)-1767225600000LL,
    };
    int ops = 1 + (int)(rnd(x) % 3);
    for (int o = 0; o < ops; o++) {
        size_t at = b->len ? (size_t)(rnd(x) % b->len) : 0;
        switch (rnd(x) % 7) {
        case 0:                         /* flip bits */
            for (int i = 0, n = 1 + (int)(rnd(x) % 4); i < n && b->len; i++)
                b->p[rnd(x) % b->len] ^= (uint8_t)(1u << (rnd(x) % 8));
            break;
        case 1:                         /* an interesting byte */
            if (b->len)
                b->p[at] = bytes[rnd(x) % sizeof bytes];
            break;
        case 2: {                       /* an interesting word, 2, 4 or 8 bytes */
            size_t w = (size_t)2 << (rnd(x) % 3);
            uint64_t v = words[rnd(x) % (sizeof words / sizeof words[0])];
            if (b->len >= w) {
                at = (size_t)(rnd(x) % (b->len - w + 1));
                memcpy(b->p + at, &v, w);
            }
            break;
        }
        case 3:                         /* truncate */
            b->len = at;
            break;
        case 4: {                       /* grow with random bytes */
            size_t n = 1 + (size_t)(rnd(x) % 64);
            for (size_t i = 0; i < n && b->len < b->cap; i++)
                b->p[b->len++] = (uint8_t)rnd(x);
            break;
        }
        case 5: {                       /* copy a chunk over another place */
            if (b->len < 2)
                break;
            size_t from = (size_t)(rnd(x) % b->len);
            size_t n = 1 + (size_t)(rnd(x) % (b->len - from));
            size_t to = (size_t)(rnd(x) % b->len);
            if (n > b->len - to)
                n = b->len - to;
            memmove(b->p + to, b->p + from, n);
            break;
        }
        case 6:                         /* a small number, a length maybe */
            if (b->len)
                b->p[at] = (uint8_t)(b->p[at] + (rnd(x) % 2 ? 1 : -1));
            break;
        }
    }
}

/* ---- the recording reader --------------------------------------------------- */

/* A recording of 12 varied records, as bytes. */
static void seed_recording(const char *dir, buf *out)
{
    char path[400];
    snprintf(path, sizeof path, "%s/seed.rec", dir);
    sm_recw *w = NULL;
    ck_assert_int_eq(sm_recw_open(&w, path), SM_OK);
    for (int i = 0; i < 12; i++) {
        char subj[64], payload[300];
        snprintf(subj, sizeof subj, "swarm.s%d.%s.a%d", i % 3,
                 i % 2 ? "task" : "heartbeat", i);
        size_t n = (size_t)(i * 25) % sizeof payload;
        for (size_t k = 0; k < n; k++)
            payload[k] = (char)(k * 7 + (size_t)i);
        const char *h1[] = {"Nats-Msg-Id", "abc", NULL};
        const char *h2[] = {"K", "v1", "K", "v2", "Empty", "", NULL};
        const char *const *h = i % 3 == 0 ? NULL : i % 3 == 1 ? h1 : h2;
        ck_assert_int_eq(sm_recw_append(w, 1767225600000LL + i, subj, h,
                                        n ? payload : NULL, n), SM_OK);
    }
    ck_assert_int_eq(sm_recw_close(w), SM_OK);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    uint8_t tmp[8192];
    size_t n = fread(tmp, 1, sizeof tmp, f);
    fclose(f);
    buf_set(out, tmp, n);
}

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Recomputes the CRC of every whole record from the start. */
static void reseal_recording(buf *b)
{
    size_t off = SM_REC_FILE_HEADER;
    while (off + SM_REC_FRAME <= b->len) {
        uint32_t n = ld32(b->p + off);
        if (n > b->len - off - SM_REC_FRAME)
            break;
        uint32_t crc = n ? crc32_gzip_refl(0, b->p + off + SM_REC_FRAME, n) : 0;
        for (int i = 0; i < 4; i++)
            b->p[off + 4 + i] = (uint8_t)(crc >> (8 * i));
        off += SM_REC_FRAME + n;
    }
}

START_TEST(recording_reader_survives_mutations)
{
    char dir[256], path[400];
    sm_test_tmpdir(dir, sizeof dir, "fuzz-rec");
    snprintf(path, sizeof path, "%s/m.rec", dir);
    buf seed = {0}, b = {0};
    seed_recording(dir, &seed);
    uint64_t x = seed_of(1);
    unsigned long records = 0, clean = 0, corrupt = 0, refused = 0;
    for (int it = 0; it < iters(); it++) {
        buf_set(&b, seed.p, seed.len);
        mutate(&b, &x);
        if (rnd(&x) % 4 != 0)
            reseal_recording(&b);
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(b.p, 1, b.len, f), b.len);
        fclose(f);
        sm_recr *r = NULL;
        char err[256];
        if (sm_recr_open(&r, path, err, sizeof err) != SM_OK) {
            ck_assert_msg(err[0], "open refused without a reason");
            refused++;
            continue;
        }
        sm_rec rec;
        sm_status s;
        uint64_t index = 0;
        while ((s = sm_recr_next(r, &rec)) == SM_OK) {
            ck_assert_uint_eq(rec.index, index++);
            ck_assert_uint_lt(rec.offset, b.len);
            ck_assert_uint_eq(strnlen(rec.subject, rec.subject_len + 1) <= rec.subject_len, 1);
            ck_assert_int_eq(rec.subject[rec.subject_len], 0);
            ck_assert_int_eq(rec.data[rec.len], 0);
            ck_assert_uint_le(rec.len + rec.subject_len, b.len);
            for (size_t h = 0; h < rec.n_headers; h++) {
                ck_assert_int_eq(rec.headers[h].key[rec.headers[h].key_len], 0);
                ck_assert_int_eq(rec.headers[h].value[rec.headers[h].value_len], 0);
            }
            records++;
        }
        if (s == SM_ERR_NOT_FOUND) {
            clean++;
        } else {
            ck_assert_int_eq(s, SM_ERR_CORRUPT);
            ck_assert_msg(strncmp(sm_recr_error(r), "record ", 7) == 0,
                          "error '%s'", sm_recr_error(r));
            ck_assert_int_eq(sm_recr_next(r, &rec), s);     /* sticky */
            corrupt++;
        }
        sm_recr_close(r);
    }
    fprintf(stderr, "fuzz recfile: %d files, %lu refused at open, %lu read to "
                    "the end, %lu stopped as corrupt, %lu records\n",
            iters(), refused, clean, corrupt, records);
    ck_assert_uint_gt(clean, 0);
    ck_assert_uint_gt(corrupt, 0);
    free(seed.p);
    free(b.p);
    sm_test_rmtree(dir);
}
END_TEST

/* ---- the state importers ------------------------------------------------------ */

#define MAX_SEEDS 16
#define MAX_AGENT_SEEDS 256

typedef struct seeds {
    buf swarm[MAX_SEEDS];
    size_t n_swarm;
    buf agent[MAX_AGENT_SEEDS];
    size_t n_agent;
} seeds;

static sm_status quiet_sink(void *ud, const char *subject, const void *data,
                            size_t len, const char *const *headers)
{
    (void)ud;
    (void)subject;
    (void)data;
    (void)len;
    (void)headers;
    return SM_OK;
}

static void keep_agent(void *ud, const char *agent, const void *blob, size_t len)
{
    seeds *s = ud;
    (void)agent;
    if (blob && s->n_agent < MAX_AGENT_SEEDS && (s->n_agent % 2 == 0 || len > 200))
        buf_set(&s->agent[s->n_agent++], blob, len);
}

/* Swarm and agent blobs of swarm s0 at points along the golden demo
 * recording (its five faults raise and resolve bottlenecks, failures and
 * predictions), as a worker without a store holds them. */
static void seed_blobs(seeds *s)
{
    memset(s, 0, sizeof *s);
    sm_config cfg;
    ck_assert_int_eq(sm_config_init(&cfg), SM_OK);
    sm_log lg = {.out = stderr, .level = SM_LOG_ERROR};
    sm_worker *w = NULL;
    ck_assert_int_eq(sm_worker_create(&w, &cfg, &lg), SM_OK);
    sm_sink sink = {.publish = quiet_sink};
    sm_worker_set_sink(w, &sink);
    sm_recr *r = NULL;
    char err[256];
    ck_assert_int_eq(sm_recr_open(&r, "tests/golden/demo.rec", err, sizeof err), SM_OK);
    sm_rec rec;
    uint64_t n = 0;
    while (sm_recr_next(r, &rec) == SM_OK) {
        sm_worker_handle(w, rec.subject, rec.data, rec.len);
        if (++n % 2000 != 0 || s->n_swarm == MAX_SEEDS)
            continue;
        const sm_swarm *sw = sm_worker_swarm(w, "s0");
        ck_assert_ptr_nonnull(sw);
        size_t len = sm_swarm_export(sw, NULL, 0);
        uint8_t *tmp = malloc(len);
        ck_assert_uint_eq(sm_swarm_export(sw, tmp, len), len);
        buf_set(&s->swarm[s->n_swarm++], tmp, len);
        free(tmp);
        if (s->n_swarm % 4 == 0)
            sm_swarm_visit_dirty(sw, keep_agent, s);
    }
    sm_recr_close(r);
    sm_worker_destroy(w);
    sm_config_free(&cfg);
    ck_assert_uint_ge(s->n_swarm, 8);
    ck_assert_uint_ge(s->n_agent, 8);
}

static void seeds_free(seeds *s)
{
    for (size_t i = 0; i < s->n_swarm; i++)
        free(s->swarm[i].p);
    for (size_t i = 0; i < s->n_agent; i++)
        free(s->agent[i].p);
}

/* encode.c's blob_check, redone here to re-seal a mutated blob (the test
 * below checks it agrees with the real one on every seed). */
static uint64_t blob_check(const uint8_t *p, size_t n)
{
    uint64_t h = SM_HASH_INIT ^ (uint64_t)n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, sizeof v);
        h = (h ^ v) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    return sm_hash_bytes(h, p + i, n - i);
}

/* Sets the header's size and checksum to fit the bytes (host order). */
static void reseal_blob(buf *b)
{
    if (b->len < BLOB_HDR)
        return;
    uint32_t size = (uint32_t)b->len;
    uint64_t check = blob_check(b->p + BLOB_HDR, b->len - BLOB_HDR);
    memcpy(b->p + 8, &size, 4);
    memcpy(b->p + 16, &check, 8);
}

static sm_swarm *fresh_swarm(void)
{
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    sm_swarm *sw = NULL;
    ck_assert_int_eq(sm_swarm_create(&sw, "s0", &cfg), SM_OK);
    return sw;
}

/* Events that walk the imported state: agents old and new, gauges,
 * groups, a sweep, a long silence, expiry. */
static void exercise(sm_swarm *sw, uint64_t *x)
{
    sm_decisions ds = {0};
    int64_t t = sm_swarm_now(sw);
    if (t < 1767225600000LL || t > 253402300799999LL - 7200000)
        t = 1767225600000LL;
    const char *agents[] = {"a0", "a1", "a3", "a7", "n-new"};
    for (int i = 0; i < 12; i++) {
        const char *a = agents[rnd(x) % 5];
        t += (int64_t)(rnd(x) % 3000);
        sm_task_event te = {.ts_ms = t, .agent = a, .kind = SM_TASK_COMPLETED,
                            .duration_ms = 500 + (uint32_t)(rnd(x) % 5000),
                            .task_type = "search"};
        sm_swarm_on_task(sw, &te, &ds);
        sm_heartbeat hb = {.ts_ms = t, .agent = a, .state = (uint32_t)(rnd(x) % 5),
                           .progress = rnd(x) % 4, .inflight = (uint32_t)(rnd(x) % 3)};
        sm_swarm_on_heartbeat(sw, &hb, &ds);
        sm_resource_sample rs = {.ts_ms = t, .source = "scheduler",
                                 .tokens_used = rnd(x) % 1000, .token_budget = 1000,
                                 .active_agents = (uint32_t)(rnd(x) % 30),
                                 .agent_quota = 20, .has_pending = true,
                                 .memory_used = rnd(x) % 100, .memory_limit = 100};
        rs.pending[0] = (uint32_t)(rnd(x) % 300);
        sm_swarm_on_resource(sw, &rs, &ds);
        sm_consensus_round cr = {.ts_ms = t, .group = i % 2 ? "g0" : "g9",
                                 .outcome = (sm_round_outcome)(SM_ROUND_OK + (int)(rnd(x) % 3)),
                                 .participants = (uint32_t)(rnd(x) % 5), .quorum = 3};
        sm_swarm_on_consensus(sw, &cr, &ds);
        sm_decisions_clear(&ds);
    }
    sm_swarm_advance(sw, t + 3600000, &ds);
    sm_swarm_expire(sw, 600000, NULL, NULL);
    (void)sm_swarm_any_raised(sw);
    size_t n = sm_swarm_export(sw, NULL, 0);
    uint8_t *out = malloc(n);
    ck_assert_uint_eq(sm_swarm_export(sw, out, n), n);
    free(out);
    sm_decisions_free(&ds);
}

/* An imported swarm exports to bytes that import to the same swarm. */
static void assert_round_trip(const sm_swarm *sw)
{
    size_t n = sm_swarm_export(sw, NULL, 0);
    uint8_t *a = malloc(n), *b = NULL;
    ck_assert_uint_eq(sm_swarm_export(sw, a, n), n);
    sm_swarm *again = fresh_swarm();
    ck_assert_int_eq(sm_swarm_import(again, a, n), SM_OK);
    size_t m = sm_swarm_export(again, NULL, 0);
    ck_assert_uint_eq(m, n);
    b = malloc(m);
    ck_assert_uint_eq(sm_swarm_export(again, b, m), m);
    ck_assert_msg(memcmp(a, b, n) == 0, "an imported swarm does not round-trip");
    sm_swarm_destroy(again);
    free(a);
    free(b);
}

START_TEST(swarm_importer_survives_mutations)
{
    seeds s;
    seed_blobs(&s);
    for (size_t i = 0; i < s.n_swarm; i++) {   /* the re-sealer is encode.c's */
        buf b = {0};
        buf_set(&b, s.swarm[i].p, s.swarm[i].len);
        reseal_blob(&b);
        ck_assert_mem_eq(b.p, s.swarm[i].p, b.len);
        free(b.p);
    }
    uint64_t x = seed_of(2);
    buf b = {0};
    unsigned long ok = 0, corrupt = 0, newer = 0;
    for (int it = 0; it < iters(); it++) {
        const buf *from = &s.swarm[rnd(&x) % s.n_swarm];
        buf_set(&b, from->p, from->len);
        mutate(&b, &x);
        if (rnd(&x) % 4 != 0)
            reseal_blob(&b);
        sm_swarm *sw = fresh_swarm();
        sm_status st = sm_swarm_import(sw, b.p, b.len);
        if (st == SM_OK) {
            ok++;
            assert_round_trip(sw);
            exercise(sw, &x);
        } else {
            ck_assert_msg(st == SM_ERR_CORRUPT || st == SM_ERR_VERSION, "status %d", st);
            st == SM_ERR_VERSION ? newer++ : corrupt++;
            ck_assert_int_eq(sm_swarm_now(sw), 0);      /* left unchanged */
        }
        sm_swarm_destroy(sw);
    }
    fprintf(stderr, "fuzz swarm blobs: %d, %lu imported, %lu corrupt, %lu newer\n",
            iters(), ok, corrupt, newer);
    ck_assert_uint_gt(ok, 0);
    ck_assert_uint_gt(corrupt, 0);
    free(b.p);
    seeds_free(&s);
}
END_TEST

START_TEST(agent_importer_survives_mutations)
{
    seeds s;
    seed_blobs(&s);
    for (size_t i = 0; i < s.n_agent; i++) {
        buf b = {0};
        buf_set(&b, s.agent[i].p, s.agent[i].len);
        reseal_blob(&b);
        ck_assert_mem_eq(b.p, s.agent[i].p, b.len);
        free(b.p);
    }
    uint64_t x = seed_of(3);
    buf b = {0};
    unsigned long ok = 0, refused = 0;
    for (int it = 0; it < iters(); it++) {
        const buf *from = &s.agent[rnd(&x) % s.n_agent];
        buf_set(&b, from->p, from->len);
        mutate(&b, &x);
        if (rnd(&x) % 4 != 0)
            reseal_blob(&b);
        sm_swarm *sw = fresh_swarm();
        if (it % 2 == 0)                /* into a swarm with state, or none */
            ck_assert_int_eq(sm_swarm_import(sw, s.swarm[it % s.n_swarm].p,
                                             s.swarm[it % s.n_swarm].len), SM_OK);
        size_t before = sm_swarm_agent_count(sw);
        sm_status st = sm_swarm_import_agent(sw, b.p, b.len);
        if (st == SM_OK) {
            ok++;
            ck_assert_uint_eq(sm_swarm_agent_count(sw), before + 1);
            exercise(sw, &x);
        } else {
            ck_assert_msg(st == SM_ERR_CORRUPT || st == SM_ERR_VERSION, "status %d", st);
            ck_assert_uint_eq(sm_swarm_agent_count(sw), before);
            refused++;
        }
        sm_swarm_destroy(sw);
    }
    fprintf(stderr, "fuzz agent blobs: %d, %lu imported, %lu refused\n", iters(),
            ok, refused);
    ck_assert_uint_gt(ok, 0);
    ck_assert_uint_gt(refused, 0);
    free(b.p);
    seeds_free(&s);
}
END_TEST

START_TEST(meta_decoder_survives_mutations)
{
    sm_store_meta m;
    memset(&m, 0, sizeof m);
    m.applied_seq = 26317;
    m.config_hash = 0xfeedfacecafebeefULL;
    m.bus.bus_ms = 1767226260000LL;
    m.bus.jump_ms = 1767226560000LL;
    snprintf(m.bus.jump_swarm, sizeof m.bus.jump_swarm, "s1");
    m.bus.skew_ms = 1798762260000LL;
    snprintf(m.bus.skew_swarm, sizeof m.bus.skew_swarm, "s0");
    snprintf(m.bus.skew_id, sizeof m.bus.skew_id, "a3");
    m.bus.expired_at_ms = 1767226200000LL;
    uint8_t seed[512];
    size_t n = sm_meta_encode(&m, seed, sizeof seed);
    ck_assert_uint_le(n, sizeof seed);
    uint64_t x = seed_of(4);
    buf b = {0};
    unsigned long ok = 0, refused = 0;
    for (int it = 0; it < iters(); it++) {
        buf_set(&b, seed, n);
        mutate(&b, &x);
        if (rnd(&x) % 4 != 0)
            reseal_blob(&b);
        sm_store_meta got;
        memset(&got, 0x5a, sizeof got);
        if (sm_meta_decode(&got, b.p, b.len) == SM_OK) {
            ok++;
            ck_assert_uint_lt(strlen(got.bus.jump_swarm), SM_ID_MAX);
            ck_assert_uint_lt(strlen(got.bus.skew_swarm), SM_ID_MAX);
            ck_assert_uint_lt(strlen(got.bus.skew_id), SM_ID_MAX);
        } else {
            refused++;
        }
    }
    fprintf(stderr, "fuzz meta records: %d, %lu decoded, %lu refused\n", iters(),
            ok, refused);
    ck_assert_uint_gt(ok, 0);
    ck_assert_uint_gt(refused, 0);
    free(b.p);
}
END_TEST

/* ---- messages through the worker ------------------------------------ */

#define MSG_DEFAULT 20000       /* make test; make soak: 1,000,000 */
#define RSS_BOUND_KB (256 * 1024)
#define LMDB_BOUND_BYTES ((long long)256 << 20)

static long messages(void)
{
    const char *e = getenv("SM_FUZZ_MESSAGES");
    long n = e ? atol(e) : MSG_DEFAULT;
    return n > 0 ? n : MSG_DEFAULT;
}

static long vm_hwm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* A valid packed message of input kind k (0..5) at ts about agent/source
 * `id`; returns its length in out (cap >= 512). */
static size_t valid_message(int k, int64_t ts, const char *id, uint64_t *x,
                            uint8_t *out)
{
    switch (k) {
    case 0: {
        Swarmmedic__V1__TaskEvent m = SWARMMEDIC__V1__TASK_EVENT__INIT;
        m.ts_ms = ts;
        m.agent = (char *)id;
        m.task_type = (char *)(rnd(x) % 2 ? "search" : "codegen");
        m.kind = (Swarmmedic__V1__TaskEvent__Kind)(1 + rnd(x) % 6);
        m.duration_ms = (uint32_t)(rnd(x) % 60000);
        return swarmmedic__v1__task_event__pack(&m, out);
    }
    case 1: {
        Swarmmedic__V1__Heartbeat m = SWARMMEDIC__V1__HEARTBEAT__INIT;
        m.ts_ms = ts;
        m.agent = (char *)id;
        m.state = (Swarmmedic__V1__Heartbeat__State)(1 + rnd(x) % 4);
        m.inflight = (uint32_t)(rnd(x) % 3);
        m.progress = rnd(x) % 100000;
        return swarmmedic__v1__heartbeat__pack(&m, out);
    }
    case 2: {
        Swarmmedic__V1__ResourceSample m = SWARMMEDIC__V1__RESOURCE_SAMPLE__INIT;
        m.ts_ms = ts;
        m.source = (char *)id;
        m.token_budget = 1000000;
        m.tokens_used = rnd(x) % 1000000;
        m.memory_limit_bytes = 8000000000ULL;
        m.memory_used_bytes = rnd(x) % 8000000000ULL;
        m.active_agents = (uint32_t)(rnd(x) % 30);
        m.agent_quota = 24;
        return swarmmedic__v1__resource_sample__pack(&m, out);
    }
    case 3: {
        Swarmmedic__V1__ConsensusRound m = SWARMMEDIC__V1__CONSENSUS_ROUND__INIT;
        m.ts_ms = ts;
        m.group = (char *)id;
        m.outcome = (Swarmmedic__V1__ConsensusRound__Outcome)(1 + rnd(x) % 3);
        m.participants = (uint32_t)(rnd(x) % 6);
        m.quorum = 3;
        return swarmmedic__v1__consensus_round__pack(&m, out);
    }
    case 4: {
        Swarmmedic__V1__AgentLifecycle m = SWARMMEDIC__V1__AGENT_LIFECYCLE__INIT;
        m.ts_ms = ts;
        m.agent = (char *)id;
        m.kind = (Swarmmedic__V1__AgentLifecycle__Kind)(1 + rnd(x) % 2);
        return swarmmedic__v1__agent_lifecycle__pack(&m, out);
    }
    default: {
        Swarmmedic__V1__HealingOutcome m = SWARMMEDIC__V1__HEALING_OUTCOME__INIT;
        m.ts_ms = ts;
        m.command_id = (char *)id;
        m.result = (Swarmmedic__V1__HealingOutcome__Result)(1 + rnd(x) % 3);
        return swarmmedic__v1__healing_outcome__pack(&m, out);
    }
    }
}

/* N messages (SM_FUZZ_MESSAGES; make soak: 1 M), valid or mutated, half
 * on swarms under the cap and half drawn from a space far larger than it
 * (agent ids too), through a
 * worker with a store: it keeps working, and its peak RSS and LMDB file
 * stay under the stated bounds (RSS_BOUND_KB, LMDB_BOUND_BYTES), which
 * the test prints with the counts. */
START_TEST(fuzzed_messages_keep_rss_and_store_bounded)
{
    static const char *const kinds[] = {"task", "heartbeat", "resource",
                                        "consensus", "agent", "outcome"};
    char dir[256], path[320];
    sm_test_tmpdir(dir, sizeof dir, "fuzzmsg");
    sm_config cfg;
    ck_assert_int_eq(sm_config_init(&cfg), SM_OK);
    free(cfg.store_dir);
    cfg.store_dir = strdup(dir);
    sm_log lg = {.out = stderr, .level = SM_LOG_ERROR + 1};
    sm_worker *w = NULL;
    ck_assert_int_eq(sm_worker_create(&w, &cfg, &lg), SM_OK);
    ck_assert_int_eq(sm_worker_open(w), SM_OK);
    sm_sink sink = {.publish = quiet_sink, .ud = NULL};
    sm_worker_set_sink(w, &sink);

    uint64_t x = seed_of(0x6d657373616765ULL);
    long n = messages();
    buf b = {0};
    uint8_t raw[512];
    char subject[200], id[40];
    int64_t t0 = 1767225600000LL;
    for (long i = 0; i < n; i++) {
        int k = (int)(rnd(&x) % 6);
        snprintf(id, sizeof id, "a%llu", (unsigned long long)(rnd(&x) % 1000000));
        /* half on 500 swarms (under the cap: the detectors work), half
         * on 200,000 (the cap at work) */
        uint64_t sw = rnd(&x) % 2 ? rnd(&x) % 500 : rnd(&x) % 200000;
        snprintf(subject, sizeof subject, "swarm.s%llu.%s.%s",
                 (unsigned long long)sw, kinds[k], id);
        int64_t ts = t0 + i + (int64_t)(rnd(&x) % 1000);
        buf_set(&b, raw, valid_message(k, ts, id, &x, raw));
        if (rnd(&x) % 2)
            mutate(&b, &x);
        (void)sm_worker_handle(w, subject, b.p, b.len);
        if (i % 50000 == 49999)
            ck_assert_int_eq(sm_worker_flush(w), SM_OK);
    }
    ck_assert_int_eq(sm_worker_flush(w), SM_OK);
    sm_worker_stats st;
    sm_worker_stats_get(w, &st);
    long hwm = vm_hwm_kb();
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long long lmdb = ftell(f);
    fclose(f);
    fprintf(stderr,
            "fuzz messages: %ld handled, %llu accepted, %llu dead-lettered, "
            "%zu swarms; VmHWM %.1f MiB (bound %d MiB), data.mdb %.1f MiB "
            "(bound %lld MiB)\n",
            n, (unsigned long long)st.events, (unsigned long long)st.deadletters,
            st.swarms, hwm / 1024.0, RSS_BOUND_KB / 1024, lmdb / 1048576.0,
            LMDB_BOUND_BYTES >> 20);
    ck_assert_uint_eq(st.events + st.deadletters, (uint64_t)n);
    ck_assert_uint_gt(st.events, 0);
    ck_assert_uint_gt(st.deadletters, 0);
#if !defined(__SANITIZE_ADDRESS__)   /* ASan's shadow and quarantine */
    ck_assert_int_lt(hwm, RSS_BOUND_KB);
#endif
    ck_assert_int_lt(lmdb, LMDB_BOUND_BYTES);
    free(b.p);
    sm_worker_destroy(w);
    sm_config_free(&cfg);
    sm_test_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fuzz");
    TCase *tc = tcase_create("fuzz");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, recording_reader_survives_mutations);
    tcase_add_test(tc, swarm_importer_survives_mutations);
    tcase_add_test(tc, agent_importer_survives_mutations);
    tcase_add_test(tc, meta_decoder_survives_mutations);
    suite_add_tcase(s, tc);
    tc = tcase_create("messages");
    tcase_set_timeout(tc, 1800);
    tcase_add_test(tc, fuzzed_messages_keep_rss_and_store_bounded);
    suite_add_tcase(s, tc);
    return sm_run_suite(s);
}
