/*
 * encode.c - persisted state as a format, not a struct (encode.h).
 *
 * Every blob starts with a blob_hdr (magic, version, size of the whole
 * blob, a reserved zero word, and a checksum of the body), host byte
 * order; the body is little-endian with fixed-width fields and no
 * padding, independent of how the structs in swarm_int.h and agents.h are
 * laid out.
 *
 * Swarm blob, version 3: a sequence of sections, each
 *
 *   u16 tag, u16 version, u32 length, length bytes of payload
 *
 * A reader skips a section whose tag it does not know, reads the fields
 * it knows of a section whose version is newer than its own (a new
 * version only appends fields), and gives fields a section does not
 * carry (older version, or the section missing) their empty value. The
 * body must be exactly a whole number of sections. A string is u8 length
 * + bytes (no NUL). Sections:
 *
 *   1 clock      v1: str id, i64 now_ms, i64 tick, i64 stats_tick,
 *                    u8 started; v2 appends i64 last_event_ms (v1: taken
 *                    to be now_ms)
 *   2 stats      v1: f64 median, f64 mad, u32 median_n, u32 new_samples,
 *                    u8 stats_dirty; v2 appends f64 spread
 *   3 gauges     v1: u8 n (3: token, quota, queue), then per gauge:
 *                    u8 have, i64 last_ms, f64 value, f64 a, f64 b,
 *                    u32 over_run, u32 under_run, str source
 *   4 episodes   v1: u8 n (6, index = bottleneck type; 0 and slow_agent
 *                    never raised), then per episode: u8 raised,
 *                    u8 severity, i64 raised_at_ms, f64 impact,
 *                    str subject
 *   5 consensus  v2: u8 n (SM_GROUPS), then per group slot: u8 used,
 *                    and for a used slot only: str name, i64 last_ms,
 *                    f64 llr, the ring (i64 slot_ms,
 *                    i64 head_start_ms, u32 nslots, u32 head, u8 started,
 *                    nslots x (u32 rounds, u32 timeouts)), the episode
 *                    (u8 raised, u8 severity, i64 raised_at_ms, f64 impact,
 *                    str subject); v1 (read): one ring for the swarm,
 *                    str group, i64 group_ms, the ring
 *   6 durations  v1: u16 n, n x (i64 ts_ms, u32 value, u8 flags), oldest
 *                    first (the ring is rebuilt in slots 0..n-1)
 *
 * Swarm blob, version 2 (written up to this change): a byte copy of that
 * build's swarm_state. It is still read (v2_swarm below freezes its
 * layout, and a static assertion its size), migrated field by field, and
 * rewritten as version 3 at the next commit. A version newer than 3 is
 * SM_ERR_VERSION: the caller keeps the blob and says so.
 *
 * Meta record, version 1: the blob_hdr, then sections as in the swarm
 * blob (unknown ones skipped, absent ones leave their field 0):
 *
 *   1 applied    v1: u64 applied_seq
 *   2 config     v1: u64 config_hash
 *   3 bus        v1: i64 bus_ms, i64 jump_ms, str jump_swarm, i64 skew_ms,
 *                    str skew_swarm, str skew_id, i64 expired_at_ms
 *                    (written only when bus_ms is set)
 */
#include "encode.h"

#include <string.h>

#include "hash.h"
#include "failures.h"
#include "swarm_int.h"

#define BLOB_MAGIC_SWARM 0x57534d53u     /* "SMSW" little-endian */
#define BLOB_MAGIC_AGENT 0x47414d53u     /* "SMAG" little-endian */
#define SWARM_V2 2u                     /* a struct copy (read only) */
#define SWARM_V3 3u                     /* sectioned (written) */
#define BLOB_VERSION_AGENT 5u           /* agent blobs (encoded, see below) */
#define AGENT_V4 4u                     /* read: no failure block */
#define AGENT_V3 3u                     /* read: no ratio samples */
#define BLOB_MAGIC_META 0x544d4d53u      /* "SMMT" little-endian */
#define META_V1 1u                      /* the store's meta record */

/* Fixed header of every blob; the body follows. */
typedef struct blob_hdr {
    uint32_t magic;
    uint32_t version;
    uint32_t size;              /* whole blob, header included */
    uint32_t reserved;
    uint64_t check;
} blob_hdr;

/* Agent blob (version BLOB_VERSION_AGENT, 5): the blob_hdr (host order,
 * as for the swarm blob; size = whole blob, check over the body), then a
 * variable-length body, little-endian, fixed-width fields, no padding:
 *
 *   off  size  field
 *     0     8  i64 last_seen_ms               0..TS_MAX
 *     8     8  i64 raised_at_ms               0..TS_MAX
 *    16     8  i64 clear_since_ms             0..TS_MAX (0: not clearing)
 *    24     8  f64 impact (IEEE-754 bits)
 *    32     8  f64 fail_llr                   0..1e6 (failure evidence)
 *    40     8  f64 slow_llr                   0..1e6 (slowness evidence)
 *    48     1  u8  raised                     0..1
 *    49     1  u8  severity                   0..SM_SEV_CRITICAL (>= LOW
 *                                             when raised)
 *    50     1  u8  flags                      AGENT_* bits only
 *    51     1  u8  id length L                1..SM_ID_MAX-1
 *    52     L  id bytes (no NUL, no padding)
 *  52+L     1  u8  sample count N             0..SM_AGENT_TASKS
 *  53+L        N sample records, oldest first, each one of
 *                narrow (9 bytes):  u8 tag, u32 age, u32 value
 *                wide  (13 bytes):  u8 tag, i64 ts_ms, u32 value
 *              tag: bits 0-2 the sample flags (TASK_DONE must be set;
 *              TASK_RATIO: value is duration / type baseline x 1000),
 *              bit 7 (SAMPLE_WIDE) the wide form, other bits zero.
 *              age = last_seen_ms - ts_ms; the narrow form is used, and
 *              required, whenever age fits in a u32; ts_ms in 0..TS_MAX.
 *     then     1  u8  failure block present   0..1 (v5)
 *     then   103  the failure block, if present (failures.c, predict.c):
 *                 i64 hb_last_ms, act_ms, prog_ms, down_at_ms, stuck_at_ms,
 *                 timeout_at_ms, timeout_last_ms, pred_at_ms, pred_eta_ms
 *                 (each 0..TS_MAX); u64 progress; f64 pred_conf (0..1);
 *                 u32 hb_interval_ms, hb_dev_ms;
 *                 u8 hb_gaps, inflight, task_type (< SM_TASK_TYPES or
 *                 SM_TYPE_NONE), fail (FAIL_* bits only), degraded_run,
 *                 healthy_run, pred_raised (0..1)
 *
 * Version 4 is read too: no failure block (the agent is watched again from
 * its next heartbeat).
 * Version 3 (the previous release) is read too: no fail_llr nor slow_llr
 * (they start at 0) and no TASK_RATIO samples (their raw durations are kept and simply not
 * judged). The body ends right after the last record (size must match
 * exactly). Only the held samples are stored: import rebuilds the ring with
 * them in slots 0..N-1 (head N % cap), which holds the same samples in the
 * same order, so the restored agent behaves, and exports, identically. A
 * busy agent with a ~12-byte id is 24 + 52 + 12 + 1 + 16 * 9 = 233 bytes. */
#define SAMPLE_WIDE 0x80u
#define SAMPLE_FLAGS (TASK_DONE | TASK_OK | TASK_RATIO)
#define AGENT_BODY_FIXED 52u
#define AGENT_FAIL_BLOCK 103u
#define AGENT_BLOB_MAX (sizeof(blob_hdr) + AGENT_BODY_FIXED + \
                        (SM_ID_MAX - 1) + 1 + SM_AGENT_TASKS * 13u + 1u + \
                        AGENT_FAIL_BLOCK)

/* Checksum of a blob body, 8 bytes a step (a multiply-xorshift fold):
 * byte-wise FNV over every dirty agent was a tenth of a 100k-agent
 * commit. Host byte order, like the blob header. */
static uint64_t blob_check(const void *body, size_t n)
{
    const unsigned char *p = body;
    uint64_t h = SM_HASH_INIT ^ (uint64_t)n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, sizeof w);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    return sm_hash_bytes(h, p + i, n - i);
}

static void blob_hdr_fill(blob_hdr *h, uint32_t magic, uint32_t version,
                          size_t size, const void *body, size_t body_len)
{
    h->magic = magic;
    h->version = version;
    h->size = (uint32_t)size;
    h->reserved = 0;
    h->check = blob_check(body, body_len);
}

/* Versions a later build may have reached: the checksum does not cover
 * the header, so a version far beyond ours is a damaged header (one bit
 * flipped in its upper bytes), not a later build's blob to be kept. */
#define VERSION_SPAN 255u

/* Copies the header of the blob of len bytes at buf (which may be
 * unaligned: a store value) into *hdr. SM_ERR_CORRUPT: too short, another
 * kind of blob, or a version no build can have written; SM_ERR_VERSION:
 * written by a build newer than `newest`. */
static sm_status blob_head(const void *buf, size_t len, uint32_t magic,
                           uint32_t newest, blob_hdr *hdr)
{
    if (buf == NULL || len < sizeof *hdr)
        return SM_ERR_CORRUPT;
    memcpy(hdr, buf, sizeof *hdr);
    if (hdr->magic != magic || hdr->version > newest + VERSION_SPAN)
        return SM_ERR_CORRUPT;
    return hdr->version > newest ? SM_ERR_VERSION : SM_OK;
}

static bool blob_hdr_ok(const blob_hdr *h, uint32_t magic, uint32_t version,
                        size_t size, const void *body, size_t body_len)
{
    return h->magic == magic && h->version == version &&
           h->size == size && h->reserved == 0 &&
           h->check == blob_check(body, body_len);
}

/* -------------------------------------------------------- transitions */

static unsigned char *put_u8(unsigned char *p, uint32_t v)
{
    *p = (unsigned char)v;
    return p + 1;
}

static unsigned char *put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return p + 4;
}

static unsigned char *put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return p + 8;
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Whether ts_ms can be stored as a u32 age behind last_ms. */
static bool age_fits(int64_t last_ms, int64_t ts_ms, uint32_t *age)
{
    /* both in 0..TS_MAX (vetted), so the difference cannot overflow */
    int64_t d = last_ms - ts_ms;
    if (d < 0 || d > (int64_t)UINT32_MAX)
        return false;
    *age = (uint32_t)d;
    return true;
}

/* Encodes a's agent blob into out (AGENT_BLOB_MAX bytes); returns its
 * length. The layout is described above AGENT_BLOB_MAX. */
static size_t agent_encode(const sm_agent_state *s, unsigned char *out)
{
    unsigned char *p = out + sizeof(blob_hdr);
    uint64_t bits;
    p = put_u64(p, (uint64_t)s->last_seen_ms);
    p = put_u64(p, (uint64_t)s->raised_at_ms);
    p = put_u64(p, (uint64_t)s->clear_since_ms);
    memcpy(&bits, &s->impact, sizeof bits);
    p = put_u64(p, bits);
    memcpy(&bits, &s->fail_llr, sizeof bits);
    p = put_u64(p, bits);
    memcpy(&bits, &s->slow_llr, sizeof bits);
    p = put_u64(p, bits);
    p = put_u8(p, s->raised);
    p = put_u8(p, s->severity);
    p = put_u8(p, s->flags);
    size_t n = strlen(s->id);   /* 1..SM_ID_MAX-1: ids are vetted */
    p = put_u8(p, (uint32_t)n);
    memcpy(p, s->id, n);
    p += n;
    const sm_samples *h = &s->tasks_hdr;
    p = put_u8(p, h->count);
    for (uint32_t i = 0; i < h->count; i++) {
        const sm_sample *x = sm_samples_at(h, s->tasks, i);
        uint32_t tag = x->flags & SAMPLE_FLAGS, age;
        if (age_fits(s->last_seen_ms, x->ts_ms, &age)) {
            p = put_u8(p, tag);
            p = put_u32(p, age);
        } else {
            p = put_u8(p, tag | SAMPLE_WIDE);
            p = put_u64(p, (uint64_t)x->ts_ms);
        }
        p = put_u32(p, x->value);
    }
    bool block = s->hb_last_ms != 0 || s->act_ms != 0 || s->fail != 0 ||
                 s->hb_gaps != 0 || s->progress != 0 || s->pred_raised ||
                 s->degraded_run != 0 || s->healthy_run != 0;
    p = put_u8(p, block);
    if (block) {
        int64_t ts[] = {s->hb_last_ms,    s->act_ms,      s->prog_ms,
                        s->down_at_ms,    s->stuck_at_ms, s->timeout_at_ms,
                        s->timeout_last_ms, s->pred_at_ms, s->pred_eta_ms};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
            p = put_u64(p, (uint64_t)ts[i]);
        p = put_u64(p, s->progress);
        memcpy(&bits, &s->pred_conf, sizeof bits);
        p = put_u64(p, bits);
        p = put_u32(p, s->hb_interval_ms);
        p = put_u32(p, s->hb_dev_ms);
        p = put_u8(p, s->hb_gaps);
        p = put_u8(p, s->inflight);
        p = put_u8(p, s->task_type);
        p = put_u8(p, s->fail);
        p = put_u8(p, s->degraded_run);
        p = put_u8(p, s->healthy_run);
        p = put_u8(p, s->pred_raised);
    }
    size_t len = (size_t)(p - out);
    blob_hdr hdr;
    blob_hdr_fill(&hdr, BLOB_MAGIC_AGENT, BLOB_VERSION_AGENT, len,
                  out + sizeof hdr, len - sizeof hdr);
    memcpy(out, &hdr, sizeof hdr);
    return len;
}

/* Bounds-checked reader over a blob body. */
typedef struct reader {
    const unsigned char *p, *end;
    bool bad;
    uint32_t version;           /* of the section being read */
} reader;

static const unsigned char *rd_take(reader *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    const unsigned char *q = r->p;
    r->p += n;
    return q;
}

static uint32_t rd_u8(reader *r)
{
    const unsigned char *q = rd_take(r, 1);
    return q ? q[0] : 0;
}

static uint32_t rd_u32(reader *r)
{
    const unsigned char *q = rd_take(r, 4);
    return q ? get_u32(q) : 0;
}

static uint64_t rd_u64(reader *r)
{
    const unsigned char *q = rd_take(r, 8);
    return q ? get_u64(q) : 0;
}

/* The failure block of a v5 agent blob (layout above), vetted. */
static bool agent_decode_failures(reader *r, sm_agent_state *s)
{
    uint32_t block = rd_u8(r);
    if (block > 1)
        return false;
    if (!block)
        return !r->bad;
    int64_t *ts[] = {&s->hb_last_ms,    &s->act_ms,      &s->prog_ms,
                     &s->down_at_ms,    &s->stuck_at_ms, &s->timeout_at_ms,
                     &s->timeout_last_ms, &s->pred_at_ms, &s->pred_eta_ms};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        *ts[i] = (int64_t)rd_u64(r);
        if (!sm_ts_ok(*ts[i]))
            return false;
    }
    s->progress = rd_u64(r);
    uint64_t bits = rd_u64(r);
    memcpy(&s->pred_conf, &bits, sizeof bits);
    s->hb_interval_ms = rd_u32(r);
    s->hb_dev_ms = rd_u32(r);
    uint32_t gaps = rd_u8(r), inflight = rd_u8(r), type = rd_u8(r),
             fail = rd_u8(r), degraded = rd_u8(r), healthy = rd_u8(r),
             pred = rd_u8(r);
    if (r->bad || (fail & ~FAIL_BITS) || pred > 1 ||
        !(s->pred_conf >= 0.0 && s->pred_conf <= 1.0) ||
        (type >= SM_TASK_TYPES && type != SM_TYPE_NONE))
        return false;
    s->degraded_run = (uint8_t)degraded;
    s->healthy_run = (uint8_t)healthy;
    s->pred_raised = (uint8_t)pred;
    s->hb_gaps = (uint8_t)gaps;
    s->inflight = (uint8_t)inflight;
    s->task_type = (uint8_t)type;
    s->fail = (uint8_t)fail;
    return true;
}

/* Decodes and vets an agent blob body into s (zeroed first). Every field
 * is checked; the body must be consumed exactly. */
static bool agent_decode(const unsigned char *body, size_t n,
                         uint32_t version, sm_agent_state *s)
{
    reader r = {body, body + n, false, 0};
    memset(s, 0, sizeof *s);
    s->last_seen_ms = (int64_t)rd_u64(&r);
    s->raised_at_ms = (int64_t)rd_u64(&r);
    s->clear_since_ms = (int64_t)rd_u64(&r);
    uint64_t bits = rd_u64(&r);
    memcpy(&s->impact, &bits, sizeof bits);
    if (version != AGENT_V3) {
        bits = rd_u64(&r);
        memcpy(&s->fail_llr, &bits, sizeof bits);
        bits = rd_u64(&r);
        memcpy(&s->slow_llr, &bits, sizeof bits);
        if (!(s->fail_llr >= 0.0 && s->fail_llr <= 1e6) ||
            !(s->slow_llr >= 0.0 && s->slow_llr <= 1e6))
            return false;
    }
    uint32_t raised = rd_u8(&r), severity = rd_u8(&r), flags = rd_u8(&r);
    uint32_t idn = rd_u8(&r);
    if (r.bad || !sm_ts_ok(s->last_seen_ms) || !sm_ts_ok(s->raised_at_ms) ||
        !sm_ts_ok(s->clear_since_ms) || raised > 1 ||
        severity > SM_SEV_CRITICAL ||
        (raised && severity < SM_SEV_LOW) ||
        (flags & ~(uint32_t)(AGENT_REGISTERED | AGENT_UNREGISTERED |
                             AGENT_DYNAMIC)) ||
        idn < 1 || idn > SM_ID_MAX - 1)
        return false;
    s->raised = (uint8_t)raised;
    s->severity = (uint8_t)severity;
    s->flags = (uint8_t)flags;
    const unsigned char *id = rd_take(&r, idn);
    if (id == NULL || memchr(id, '\0', idn) != NULL)
        return false;
    memcpy(s->id, id, idn);
    uint32_t count = rd_u8(&r);
    if (r.bad || count > SM_AGENT_TASKS)
        return false;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t tag = rd_u8(&r);
        uint32_t known = version == AGENT_V3 ? (TASK_DONE | TASK_OK)
                                             : SAMPLE_FLAGS;
        if ((tag & ~(known | SAMPLE_WIDE)) ||
            !(tag & TASK_DONE))
            return false;
        sm_sample *x = &s->tasks[i];
        if (tag & SAMPLE_WIDE) {
            uint32_t age;
            x->ts_ms = (int64_t)rd_u64(&r);
            if (!sm_ts_ok(x->ts_ms) || age_fits(s->last_seen_ms, x->ts_ms, &age))
                return false;   /* out of range, or not the canonical form */
        } else {
            x->ts_ms = s->last_seen_ms - (int64_t)rd_u32(&r);
            if (!sm_ts_ok(x->ts_ms))
                return false;
        }
        x->value = rd_u32(&r);
        x->flags = tag & SAMPLE_FLAGS;
        if (r.bad)
            return false;
    }
    s->task_type = SM_TYPE_NONE;
    if (version >= 5 && !agent_decode_failures(&r, s))
        return false;
    if (r.p != r.end)
        return false;
    sm_samples_init(&s->tasks_hdr, SM_AGENT_TASKS);
    s->tasks_hdr.count = count;
    s->tasks_hdr.head = count % SM_AGENT_TASKS;
    return true;
}

void sm_swarm_visit_dirty(const sm_swarm *sw, sm_agent_visit_fn fn, void *ud)
{
    if (sw == NULL || fn == NULL)
        return;
    enum { AHEAD = 4 };     /* records fetched ahead: the dirty list is
                               in first-change order, scattered */
    for (uint32_t i = 0; i < sw->ag.n_dirty; i++) {
        if (i + AHEAD < sw->ag.n_dirty)
            sm_agent_prefetch(&sw->ag.v[sw->ag.dirty[i + AHEAD]], false);
        const sm_agent *a = &sw->ag.v[sw->ag.dirty[i]];
        unsigned char b[AGENT_BLOB_MAX];
        size_t len = agent_encode(&a->s, b);
        fn(ud, a->s.id, b, len);
    }
}

_Static_assert(SM_AGENT_PAGE * AGENT_BLOB_MAX <= SM_AGENT_PAGE_MAX,
               "a page of the largest agent blobs fits SM_AGENT_PAGE_MAX");

void sm_swarm_visit_dirty_pages(sm_swarm *sw, sm_page_visit_fn fn, void *ud)
{
    if (sw == NULL || fn == NULL)
        return;
    sm_agents *t = &sw->ag;
    for (uint32_t i = 0; i < t->n_dirty; i++) {
        uint32_t p = t->dirty[i] / SM_AGENT_PAGE;
        t->pmark[p / 64] |= (uint64_t)1 << (p % 64);
    }
    uint32_t pages = sm_swarm_agent_pages(sw);
    unsigned char b[SM_AGENT_PAGE_MAX];
    for (uint32_t w = 0; w < (pages + 63) / 64; w++) {
        while (t->pmark[w] != 0) {
            uint32_t p = w * 64 + (uint32_t)__builtin_ctzll(t->pmark[w]);
            t->pmark[w] &= t->pmark[w] - 1;
            uint32_t k = p * SM_AGENT_PAGE, end = k + SM_AGENT_PAGE;
            if (end > t->n)
                end = t->n;
            size_t len = 0;
            for (uint32_t j = k; j < end; j++)
                len += agent_encode(&t->v[j].s, b + len);
            fn(ud, p, b, len, end - k);
        }
    }
}

uint32_t sm_swarm_agent_pages(const sm_swarm *sw)
{
    return sw == NULL ? 0 : (sw->ag.n + SM_AGENT_PAGE - 1) / SM_AGENT_PAGE;
}

bool sm_swarm_agents_changed(const sm_swarm *sw)
{
    return sw != NULL && (sw->ag.n_dirty > 0 || sw->ag.shrunk);
}

bool sm_swarm_agents_removed(const sm_swarm *sw)
{
    return sw != NULL && sw->ag.shrunk;
}

size_t sm_agent_blob_size(const void *data, size_t len)
{
    blob_hdr h;
    if (blob_head(data, len, BLOB_MAGIC_AGENT, UINT32_MAX - VERSION_SPAN,
                  &h) == SM_ERR_CORRUPT)
        return 0;
    return h.size >= sizeof h && h.size <= len ? h.size : 0;
}

size_t sm_swarm_dirty_agents(const sm_swarm *sw)
{
    return sw == NULL ? 0 : sw->ag.n_dirty;
}

void sm_swarm_clear_dirty(sm_swarm *sw)
{
    if (sw == NULL)
        return;
    sw->dirty = false;
    sm_agents_clean(&sw->ag);
}

void sm_swarm_mark_all_dirty(sm_swarm *sw)
{
    if (sw == NULL)
        return;
    sw->dirty = true;
    for (uint32_t k = 0; k < sw->ag.n; k++)
        sm_agents_mark(&sw->ag, k);
}

sm_status sm_swarm_import_agent(sm_swarm *sw, const void *blob, size_t len)
{
    if (sw == NULL || len > AGENT_BLOB_MAX)
        return SM_ERR_CORRUPT;
    const unsigned char *raw = blob;
    blob_hdr hdr;
    sm_status head = blob_head(blob, len, BLOB_MAGIC_AGENT, BLOB_VERSION_AGENT,
                               &hdr);
    if (head != SM_OK)
        return head;
    sm_agent_state s;
    uint32_t v = hdr.version == AGENT_V3   ? AGENT_V3
                 : hdr.version == AGENT_V4 ? AGENT_V4
                                           : BLOB_VERSION_AGENT;
    if (!blob_hdr_ok(&hdr, BLOB_MAGIC_AGENT, v, len, raw + sizeof hdr,
                     len - sizeof hdr) ||
        !agent_decode(raw + sizeof hdr, len - sizeof hdr, v, &s))
        return SM_ERR_CORRUPT;
    uint32_t k;
    sm_status rc = sm_agents_get(&sw->ag, s.id, &k);
    if (rc != SM_OK)
        return rc;
    sm_agent *a = &sw->ag.v[k];
    if (a->s.raised)
        sm_agents_raised_unlink(&sw->ag, k);
    memcpy(&a->s, &s, sizeof a->s);
    sm_agents_unmark(&sw->ag, k);
    if (a->s.raised)
        sm_agents_raised_link(&sw->ag, k);
    sm_fail_rewake(sw, k);
    return SM_OK;
}
/* ------------------------------------------------------- swarm blob v3 */

/* A bounded writer: counts every byte, stores those that fit. */
typedef struct writer {
    unsigned char *p;
    size_t n, cap;
} writer;

static void w_bytes(writer *w, const void *src, size_t n)
{
    if (w->p != NULL && w->n + n <= w->cap)
        memcpy(w->p + w->n, src, n);
    w->n += n;
}

static void w_u8(writer *w, uint32_t v)
{
    unsigned char b[1];
    put_u8(b, v);
    w_bytes(w, b, 1);
}

static void w_u16(writer *w, uint32_t v)
{
    unsigned char b[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    w_bytes(w, b, 2);
}

static void w_u32(writer *w, uint32_t v)
{
    unsigned char b[4];
    put_u32(b, v);
    w_bytes(w, b, 4);
}

static void w_u64(writer *w, uint64_t v)
{
    unsigned char b[8];
    put_u64(b, v);
    w_bytes(w, b, 8);
}

static void w_i64(writer *w, int64_t v)
{
    w_u64(w, (uint64_t)v);
}

static void w_f64(writer *w, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    w_u64(w, bits);
}

static void w_str(writer *w, const char *s)
{
    size_t n = strlen(s);       /* < SM_ID_MAX: ids are vetted */
    w_u8(w, (uint32_t)n);
    w_bytes(w, s, n);
}

/* Opens a section; returns where its length goes. */
static size_t w_section(writer *w, uint32_t tag, uint32_t version)
{
    w_u16(w, tag);
    w_u16(w, version);
    size_t at = w->n;
    w_u32(w, 0);
    return at;
}

/* Closes the section opened at `at`: back-fills its length. */
static void w_end(writer *w, size_t at)
{
    uint32_t len = (uint32_t)(w->n - at - 4);
    if (w->p != NULL && at + 4 <= w->cap)
        put_u32(w->p + at, len);
}

enum {
    SEC_CLOCK = 1,
    SEC_STATS = 2,
    SEC_GAUGES = 3,
    SEC_EPISODES = 4,
    SEC_CONSENSUS = 5,
    SEC_DURATIONS = 6,
    SEC_TYPES = 7,
    SEC_FAILURES = 8,
    SEC_PREDICT = 9,
    SEC_PATTERN = 10,
    SEC_HEAL = 11,
};

/* A forecaster's trend and forecast (forecast.h: every field but the
 * diagnostic ones matters; those are written too, for exact round trips). */
static void w_trend(writer *w, const sm_trend *t)
{
    w_i64(w, t->step_start_ms);
    w_i64(w, t->cur_ts_ms);
    w_f64(w, t->cur_v);
    w_f64(w, t->cur_min);
    w_f64(w, t->cur_max);
    w_i64(w, t->cur_min_ts_ms);
    w_i64(w, t->cur_max_ts_ms);
    w_u32(w, t->cur_n);
    w_u32(w, t->started);
    w_i64(w, t->last_ts_ms);
    w_f64(w, t->last_v);
    w_u32(w, t->head);
    w_u32(w, t->count);
    for (int i = 0; i < SM_TREND_POINTS; i++) {
        const sm_trend_point *x = &t->pts[i];
        w_i64(w, x->ts_ms);
        w_f64(w, x->v);
        w_f64(w, (double)x->rise);
        w_u32(w, (uint32_t)x->rise_ms);
    }
    w_f64(w, t->slope);
    w_f64(w, t->level);
    w_f64(w, t->quality);
    w_f64(w, t->spread);
    w_f64(w, t->band);
    w_i64(w, t->fit_ts_ms);
    w_u32(w, t->fit_n);
    w_u32(w, t->changes);
    w_u32(w, t->resets);
    w_u32(w, t->late);
}

static void w_forecast(writer *w, const sm_forecast *f)
{
    w_u32(w, f->raised);
    w_u32(w, f->run);
    w_i64(w, f->raised_at_ms);
    w_i64(w, f->published_at_ms);
    w_i64(w, f->fail_at_ms);
    w_i64(w, f->eta_ms);
    w_f64(w, f->confidence);
    w_u32(w, f->updates);
    w_u32(w, f->broken);
}

/* The pattern learner (pattern.h) and its predictions: the ring's
 * happenings oldest first, the non-zero hour cells, the standing
 * predictions; its configuration is the build's (not stored). */
static void w_pattern(writer *w, const sm_swarm_state *st)
{
    const sm_pattern_state *p = &st->pat;
    size_t at = w_section(w, SEC_PATTERN, 1);
    w_u64(w, p->total);
    w_i64(w, p->first_ts_ms);
    w_i64(w, p->newest_ts_ms);
    w_i64(w, p->spike_gen);
    w_u16(w, p->count);
    for (uint32_t i = 0; i < p->count; i++) {
        const sm_pattern_event *e =
            &p->ring[(p->head + SM_PAT_HISTORY - p->count + i) % SM_PAT_HISTORY];
        w_i64(w, e->ts_ms);
        w_u32(w, e->subject);
        w_u8(w, e->code);
    }
    uint32_t cells = 0;
    for (int g = 0; g < 2; g++)
        for (int c = 0; c < SM_PAT_CODES; c++)
            for (int h = 0; h < SM_PAT_HOURS; h++)
                cells += p->spike_count[g][c][h] || p->spike_days[g][c][h];
    w_u32(w, cells);
    for (int g = 0; g < 2; g++)
        for (int c = 0; c < SM_PAT_CODES; c++)
            for (int h = 0; h < SM_PAT_HOURS; h++) {
                if (!p->spike_count[g][c][h] && !p->spike_days[g][c][h])
                    continue;
                w_u8(w, (uint32_t)g);
                w_u8(w, (uint32_t)c);
                w_u8(w, (uint32_t)h);
                w_u16(w, p->spike_count[g][c][h]);
                w_u8(w, p->spike_days[g][c][h]);
            }
    w_u8(w, SM_FAIL_MAX + 1);
    for (int t = 0; t <= SM_FAIL_MAX; t++) {
        const sm_pred_ep *e = &st->pat_pred[t];
        w_u8(w, e->raised);
        if (!e->raised)
            continue;
        w_i64(w, e->raised_at_ms);
        w_i64(w, e->eta_ms);
        w_i64(w, e->published_ms);
        w_f64(w, e->confidence);
    }
    w_end(w, at);
}

static void w_heal_row(writer *w, const sm_heal_row *r)
{
    w_u32(w, r->commands);
    w_u32(w, r->verified);
    w_u32(w, r->failed);
    w_u32(w, r->preempted);
    w_u32(w, r->superseded);
    w_u32(w, r->escalated);
    w_u32(w, r->recent);
    w_u32(w, r->recent_n);
    w_f64(w, r->detect_s);
    w_f64(w, r->recover_s);
}

/* Healing (heal.c): the open episodes, the restarts the caps count, the
 * groups the quorum guard watches, the analytics. */
static void w_heal(writer *w, const sm_heal_state *h)
{
    size_t at = w_section(w, SEC_HEAL, 1);
    w_i64(w, h->tick);
    w_u32(w, h->dropped);
    w_u8(w, h->n_open);
    for (int i = 0; i < SM_HEAL_EPS; i++) {
        const sm_heal_ep *e = &h->ep[i];
        if (!e->used)
            continue;
        const uint8_t b[] = {e->phase, e->kind, e->strategy, e->tries,
                             e->attempt, e->outcome, e->over, e->autonomy,
                             e->action, e->task_done, e->restarts,
                             e->task_slot, e->restarted, e->ev_signal};
        for (size_t k = 0; k < sizeof b; k++)
            w_u8(w, b[k]);
        w_u32(w, (uint32_t)e->type);
        w_u64(w, e->answers);
        w_u64(w, e->command);
        const int64_t t[] = {e->first_ms, e->detected_ms, e->commanded_ms,
                             e->deadline_ms, e->next_ms, e->over_ms,
                             e->ev_ts_ms, e->ev_from_ms};
        for (size_t k = 0; k < sizeof t / sizeof t[0]; k++)
            w_i64(w, t[k]);
        w_str(w, e->subject);
        w_str(w, e->task);
        w_str(w, e->agent);
        w_str(w, e->ev_id);
    }
    /* sparse from here: the slots in use, the rows with a command */
    w_u8(w, h->restart_head);
    uint32_t n = 0;
    for (int i = 0; i < SM_HEAL_RESTARTS; i++)
        n += h->restarts[i].agent != 0;
    w_u8(w, n);
    for (int i = 0; i < SM_HEAL_RESTARTS; i++) {
        if (h->restarts[i].agent == 0)
            continue;
        w_u8(w, (uint32_t)i);
        w_u64(w, h->restarts[i].agent);
        w_i64(w, h->restarts[i].at_ms);
    }
    n = 0;
    for (int i = 0; i < SM_GROUPS; i++)
        n += h->groups[i].name != 0;
    w_u8(w, n);
    for (int i = 0; i < SM_GROUPS; i++) {
        if (h->groups[i].name == 0)
            continue;
        w_u8(w, (uint32_t)i);
        w_u64(w, h->groups[i].name);
        w_i64(w, h->groups[i].at_ms);
        w_u32(w, (uint32_t)h->groups[i].spare);
    }
    const sm_heal_row *tables[] = {h->by_action, h->by_type, h->by_strategy};
    const int rows[] = {SM_ACT_COUNT + 1, SM_FAIL_MAX + 1, SM_HEAL_MAX_STRATEGIES};
    for (int t = 0; t < 3; t++) {
        n = 0;
        for (int i = 0; i < rows[t]; i++)
            n += tables[t][i].commands != 0;
        w_u8(w, n);
        for (int i = 0; i < rows[t]; i++) {
            if (tables[t][i].commands == 0)
                continue;
            w_u8(w, (uint32_t)i);
            w_heal_row(w, &tables[t][i]);
        }
    }
    w_end(w, at);
}

static void swarm_encode(const sm_swarm_state *st, writer *w)
{
    size_t at = w_section(w, SEC_CLOCK, 2);
    w_str(w, st->id);
    w_i64(w, st->now_ms);
    w_i64(w, st->tick);
    w_i64(w, st->stats_tick);
    w_u8(w, st->started);
    w_i64(w, st->last_event_ms);    /* v2 */
    w_end(w, at);

    at = w_section(w, SEC_STATS, 2);
    w_f64(w, st->median);
    w_f64(w, st->mad);
    w_u32(w, st->median_n);
    w_u32(w, st->new_samples);
    w_u8(w, st->stats_dirty);
    w_f64(w, st->spread);       /* v2 */
    w_end(w, at);

    at = w_section(w, SEC_GAUGES, 1);
    w_u8(w, G_COUNT);
    for (int i = 0; i < G_COUNT; i++) {
        const sm_gauge *g = &st->gauges[i];
        w_u8(w, g->have);
        w_i64(w, g->last_ms);
        w_f64(w, g->value);
        w_f64(w, g->a);
        w_f64(w, g->b);
        w_u32(w, g->over_run);
        w_u32(w, g->under_run);
        w_str(w, g->source);
    }
    w_end(w, at);

    at = w_section(w, SEC_EPISODES, 1);
    w_u8(w, SM_BN_COUNT + 1);
    for (int t = 0; t <= SM_BN_COUNT; t++) {
        const sm_episode *e = &st->ep[t];
        w_u8(w, e->raised);
        w_u8(w, e->severity);
        w_i64(w, e->raised_at_ms);
        w_f64(w, e->impact);
        w_str(w, e->subject);
    }
    w_end(w, at);

    at = w_section(w, SEC_CONSENSUS, 2);
    w_u8(w, SM_GROUPS);
    for (int i = 0; i < SM_GROUPS; i++) {
        const sm_group *g = &st->groups[i];
        const sm_ring *r = &g->rounds;
        w_u8(w, g->used);
        if (!g->used)
            continue;           /* a free slot is its flag alone */
        w_str(w, g->name);
        w_i64(w, g->last_ms);
        w_f64(w, g->llr);
        w_i64(w, r->slot_ms);
        w_i64(w, r->head_start_ms);
        w_u32(w, r->nslots);
        w_u32(w, r->head);
        w_u8(w, r->started);
        for (uint32_t k = 0; k < r->nslots; k++) {
            w_u32(w, r->count[k][0]);
            w_u32(w, r->count[k][1]);
        }
        w_u8(w, g->ep.raised);
        w_u8(w, g->ep.severity);
        w_i64(w, g->ep.raised_at_ms);
        w_f64(w, g->ep.impact);
        w_str(w, g->ep.subject);
    }
    w_end(w, at);

    at = w_section(w, SEC_DURATIONS, 1);
    const sm_samples *h = &st->dur_hdr;
    w_u16(w, h->count);
    for (uint32_t i = 0; i < h->count; i++) {
        const sm_sample *x = sm_samples_at(h, st->dur, i);
        w_i64(w, x->ts_ms);
        w_u32(w, x->value);
        w_u8(w, x->flags);
    }
    w_end(w, at);

    at = w_section(w, SEC_TYPES, 1);
    w_u8(w, SM_TASK_TYPES);
    for (int i = 0; i < SM_TASK_TYPES; i++) {
        const sm_type_baseline *t = &st->types.t[i];
        const sm_samples *th = &t->hdr;
        w_u8(w, t->used);
        w_str(w, t->name);
        w_u32(w, t->fresh);
        w_f64(w, t->median);
        w_u32(w, t->median_n);
        w_u16(w, th->count);
        for (uint32_t k = 0; k < th->count; k++) {
            const sm_sample *x = sm_samples_at(th, t->dur, k);
            w_i64(w, x->ts_ms);
            w_u32(w, x->value);
        }
    }
    w_end(w, at);

    /* after SEC_CONSENSUS: its groups are matched by slot and name */
    at = w_section(w, SEC_FAILURES, 1);
    w_u8(w, F_COUNT);
    for (int f = 0; f < F_COUNT; f++) {
        const sm_episode *e = &st->fail[f];
        w_u8(w, e->raised);
        w_i64(w, e->raised_at_ms);
        w_u32(w, st->fail_run[f]);
        w_str(w, e->subject);
    }
    w_u8(w, SM_GROUPS);
    for (int i = 0; i < SM_GROUPS; i++) {
        const sm_group *g = &st->groups[i];
        w_u8(w, g->used);
        if (!g->used)
            continue;
        w_str(w, g->name);
        w_u32(w, g->q_below);
        w_u32(w, g->q_above);
        w_u8(w, g->qep.raised);
        w_i64(w, g->qep.raised_at_ms);
    }
    w_end(w, at);

    at = w_section(w, SEC_PREDICT, 2);
    w_u8(w, F_COUNT);
    for (int f = 0; f < F_COUNT; f++) {
        const sm_pred_ep *p = &st->pred[f];
        w_u8(w, p->raised);
        w_u8(w, p->source);
        w_i64(w, p->raised_at_ms);
        w_i64(w, p->eta_ms);
        w_i64(w, p->published_ms);
        w_f64(w, p->confidence);
        w_str(w, p->subject);
    }
    for (int f = 0; f < F_COUNT; f++) {
        w_trend(w, &st->trend[f]);
        w_forecast(w, &st->fc[f]);
        w_f64(w, st->fc_limit[f]);
        w_f64(w, st->fc_value[f]);
    }
    w_f64(w, st->topup_seen);
    const sm_ledger *l = &st->ledger;
    w_u8(w, SM_SRC_COUNT + 1);
    w_u8(w, SM_FAIL_MAX + 1);
    for (int i = 0; i < SM_SRC_COUNT + 1 + SM_FAIL_MAX + 1; i++) {
        const sm_ledger_row *row = i <= SM_SRC_COUNT
                                       ? &l->by_source[i]
                                       : &l->by_type[i - SM_SRC_COUNT - 1];
        w_u32(w, row->raised);
        w_u32(w, row->fulfilled);
        w_u32(w, row->late);
        w_u32(w, row->wrong);
        w_f64(w, row->lead_s);
        w_f64(w, row->eta_err_s);
    }
    for (int i = 0; i < SM_SRC_COUNT + 1 + SM_FAIL_MAX + 1; i++)  /* v2 */
        w_u32(w, i <= SM_SRC_COUNT ? l->by_source[i].preempted
                                   : l->by_type[i - SM_SRC_COUNT - 1].preempted);
    w_end(w, at);

    w_pattern(w, st);
    w_heal(w, &st->heal);
}

static uint32_t rd_u16(reader *r)
{
    const unsigned char *q = rd_take(r, 2);
    return q ? (uint32_t)q[0] | (uint32_t)q[1] << 8 : 0;
}

static double rd_f64(reader *r)
{
    uint64_t bits = rd_u64(r);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* A string into dst[SM_ID_MAX]; an empty one is allowed. */
static void rd_str(reader *r, char dst[SM_ID_MAX])
{
    uint32_t n = rd_u8(r);
    memset(dst, 0, SM_ID_MAX);
    if (n >= SM_ID_MAX) {
        r->bad = true;
        return;
    }
    const unsigned char *q = rd_take(r, n);
    if (q == NULL || memchr(q, '\0', n) != NULL) {
        r->bad = true;
        return;
    }
    memcpy(dst, q, n);
}

static bool sec_clock(reader *r, sm_swarm_state *st)
{
    rd_str(r, st->id);
    st->now_ms = (int64_t)rd_u64(r);
    st->tick = (int64_t)rd_u64(r);
    st->stats_tick = (int64_t)rd_u64(r);
    st->started = rd_u8(r);
    st->last_event_ms = r->version >= 2 ? (int64_t)rd_u64(r) : st->now_ms;
    return !r->bad;
}

static bool sec_stats(reader *r, sm_swarm_state *st)
{
    st->median = rd_f64(r);
    st->mad = rd_f64(r);
    st->median_n = rd_u32(r);
    st->new_samples = rd_u32(r);
    st->stats_dirty = rd_u8(r);
    st->spread = r->p < r->end ? rd_f64(r) : 0.0;   /* from v2 on */
    return !r->bad && st->spread >= 0.0;
}

static bool sec_gauges(reader *r, sm_swarm_state *st)
{
    uint32_t n = rd_u8(r);
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        sm_gauge g = {0};
        g.have = rd_u8(r);
        g.last_ms = (int64_t)rd_u64(r);
        g.value = rd_f64(r);
        g.a = rd_f64(r);
        g.b = rd_f64(r);
        g.over_run = rd_u32(r);
        g.under_run = rd_u32(r);
        rd_str(r, g.source);
        if (i < G_COUNT)
            st->gauges[i] = g;  /* gauges this build does not know: skipped */
    }
    return !r->bad;
}

static bool sec_episodes(reader *r, sm_swarm_state *st)
{
    uint32_t n = rd_u8(r);
    for (uint32_t t = 0; t < n && !r->bad; t++) {
        sm_episode e = {0};
        e.raised = rd_u8(r);
        e.severity = rd_u8(r);
        e.raised_at_ms = (int64_t)rd_u64(r);
        e.impact = rd_f64(r);
        rd_str(r, e.subject);
        if (t <= SM_BN_COUNT)
            st->ep[t] = e;
        else if (e.raised)
            return false;       /* a raised type this build cannot resolve */
    }
    return !r->bad;
}

static bool rd_ring(reader *r, sm_ring *ring)
{
    ring->slot_ms = (int64_t)rd_u64(r);
    ring->head_start_ms = (int64_t)rd_u64(r);
    ring->nslots = rd_u32(r);
    ring->head = rd_u32(r);
    ring->started = rd_u8(r);
    ring->reserved = 0;
    if (r->bad || ring->nslots == 0 || ring->nslots > SM_RING_SLOTS)
        return false;
    memset(ring->count, 0, sizeof ring->count);
    memset(ring->sum, 0, sizeof ring->sum);
    for (uint32_t i = 0; i < ring->nslots; i++) {
        for (int c = 0; c < SM_RING_COUNTERS; c++) {
            ring->count[i][c] = rd_u32(r);
            ring->sum[c] += ring->count[i][c];
        }
    }
    return !r->bad;
}

/* v2: one record per group slot. v1 (a single ring for the swarm): its
 * rounds become the group that last reported, in slot 0; the episode,
 * then kept with the swarm-wide ones, is moved there by swarm_decode. */
static bool sec_consensus(reader *r, sm_swarm_state *st)
{
    if (r->version < 2) {
        sm_group *g = &st->groups[0];
        rd_str(r, g->name);
        g->last_ms = (int64_t)rd_u64(r);
        g->used = 1;
        return rd_ring(r, &g->rounds);
    }
    uint32_t n = rd_u8(r);
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        sm_group g = {0};
        g.used = rd_u8(r);
        if (!g.used) {          /* a free slot: its ring is set up when taken */
            if (i < SM_GROUPS) {
                g.rounds = st->groups[i].rounds;
                st->groups[i] = g;
            }
            continue;
        }
        rd_str(r, g.name);
        g.last_ms = (int64_t)rd_u64(r);
        g.llr = rd_f64(r);
        if (!(g.llr >= 0.0 && g.llr <= 1e6) || !rd_ring(r, &g.rounds))
            return false;
        g.ep.raised = rd_u8(r);
        g.ep.severity = rd_u8(r);
        g.ep.raised_at_ms = (int64_t)rd_u64(r);
        g.ep.impact = rd_f64(r);
        rd_str(r, g.ep.subject);
        if (i < SM_GROUPS)
            st->groups[i] = g;
        else if (g.ep.raised)
            return false;       /* a raised group past this build's table */
    }
    return !r->bad;
}

static bool sec_durations(reader *r, sm_swarm_state *st)
{
    uint32_t n = rd_u16(r);
    if (n > SM_SWARM_SAMPLES)
        return false;
    sm_samples_init(&st->dur_hdr, SM_SWARM_SAMPLES);
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        sm_sample *x = &st->dur[i];
        x->ts_ms = (int64_t)rd_u64(r);
        x->value = rd_u32(r);
        x->flags = rd_u8(r);
        if (!sm_ts_ok(x->ts_ms) || x->flags != TASK_OK)
            return false;
    }
    st->dur_hdr.count = n;
    st->dur_hdr.head = n % SM_SWARM_SAMPLES;
    return !r->bad;
}

static bool sec_types(reader *r, sm_swarm_state *st)
{
    uint32_t n = rd_u8(r);
    sm_baselines_init(&st->types);
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        sm_type_baseline t = {0};
        sm_samples_init(&t.hdr, SM_TYPE_SAMPLES);
        t.used = rd_u8(r);
        rd_str(r, t.name);
        t.fresh = rd_u32(r);
        t.median = rd_f64(r);
        t.median_n = rd_u32(r);
        uint32_t count = rd_u16(r);
        if (count > SM_TYPE_SAMPLES)
            return false;
        for (uint32_t k = 0; k < count && !r->bad; k++) {
            t.dur[k].ts_ms = (int64_t)rd_u64(r);
            t.dur[k].value = rd_u32(r);
            t.dur[k].flags = 1u;
            if (!sm_ts_ok(t.dur[k].ts_ms))
                return false;
        }
        t.hdr.count = count;
        t.hdr.head = count % SM_TYPE_SAMPLES;
        if (i < SM_TASK_TYPES)
            st->types.t[i] = t;     /* types past this build's table: dropped */
    }
    return !r->bad && sm_baselines_valid(&st->types);
}

static bool sec_failures(reader *r, sm_swarm_state *st)
{
    uint32_t n = rd_u8(r);
    for (uint32_t f = 0; f < n && !r->bad; f++) {
        sm_episode e = {0};
        e.raised = rd_u8(r);
        e.raised_at_ms = (int64_t)rd_u64(r);
        uint32_t run = rd_u32(r);
        rd_str(r, e.subject);
        if (e.raised > 1 || !sm_ts_ok(e.raised_at_ms))
            return false;
        if (e.raised)
            e.severity = SM_SEV_CRITICAL;
        if (f < F_COUNT) {
            st->fail[f] = e;
            st->fail_run[f] = run;
        }
    }
    n = rd_u8(r);
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        if (!rd_u8(r))
            continue;
        char name[SM_ID_MAX];
        rd_str(r, name);
        uint32_t below = rd_u32(r), above = rd_u32(r), raised = rd_u8(r);
        int64_t at = (int64_t)rd_u64(r);
        if (raised > 1 || !sm_ts_ok(at))
            return false;
        sm_group *g = i < SM_GROUPS ? &st->groups[i] : NULL;
        if (g == NULL || !g->used || strncmp(g->name, name, SM_ID_MAX) != 0)
            continue;           /* not this build's group in that slot */
        g->q_below = below;
        g->q_above = above;
        g->qep.raised = raised;
        g->qep.raised_at_ms = at;
        g->qep.severity = raised ? SM_SEV_CRITICAL : 0;
        memcpy(g->qep.subject, name, SM_ID_MAX);
    }
    return !r->bad;
}

static bool rd_trend(reader *r, sm_trend *t)
{
    t->step_start_ms = (int64_t)rd_u64(r);
    t->cur_ts_ms = (int64_t)rd_u64(r);
    t->cur_v = rd_f64(r);
    t->cur_min = rd_f64(r);
    t->cur_max = rd_f64(r);
    t->cur_min_ts_ms = (int64_t)rd_u64(r);
    t->cur_max_ts_ms = (int64_t)rd_u64(r);
    t->cur_n = rd_u32(r);
    t->started = rd_u32(r);
    t->last_ts_ms = (int64_t)rd_u64(r);
    t->last_v = rd_f64(r);
    t->head = rd_u32(r);
    t->count = rd_u32(r);
    for (int i = 0; i < SM_TREND_POINTS; i++) {
        sm_trend_point *x = &t->pts[i];
        x->ts_ms = (int64_t)rd_u64(r);
        x->v = rd_f64(r);
        x->rise = (float)rd_f64(r);
        x->rise_ms = (int32_t)rd_u32(r);
    }
    t->slope = rd_f64(r);
    t->level = rd_f64(r);
    t->quality = rd_f64(r);
    t->spread = rd_f64(r);
    t->band = rd_f64(r);
    t->fit_ts_ms = (int64_t)rd_u64(r);
    t->fit_n = rd_u32(r);
    t->changes = rd_u32(r);
    t->resets = rd_u32(r);
    t->late = rd_u32(r);
    return !r->bad && sm_trend_valid(t);
}

static bool rd_forecast(reader *r, sm_forecast *f)
{
    f->raised = rd_u32(r);
    f->run = rd_u32(r);
    f->raised_at_ms = (int64_t)rd_u64(r);
    f->published_at_ms = (int64_t)rd_u64(r);
    f->fail_at_ms = (int64_t)rd_u64(r);
    f->eta_ms = (int64_t)rd_u64(r);
    f->confidence = rd_f64(r);
    f->updates = rd_u32(r);
    f->broken = rd_u32(r);
    return !r->bad && sm_forecast_valid(f);
}

static bool sec_predict(reader *r, sm_swarm_state *st)
{
    uint32_t n = rd_u8(r);
    for (uint32_t f = 0; f < n && !r->bad; f++) {
        sm_pred_ep p = {0};
        p.raised = rd_u8(r);
        p.source = rd_u8(r);
        p.raised_at_ms = (int64_t)rd_u64(r);
        p.eta_ms = (int64_t)rd_u64(r);
        p.published_ms = (int64_t)rd_u64(r);
        p.confidence = rd_f64(r);
        rd_str(r, p.subject);
        if (p.raised > 1 || p.source > SM_SRC_COUNT ||
            (p.raised && p.source < 1) || !sm_ts_ok(p.raised_at_ms) ||
            !sm_ts_ok(p.eta_ms) || !sm_ts_ok(p.published_ms) ||
            !(p.confidence >= 0.0 && p.confidence <= 1.0))
            return false;
        if (f < F_COUNT)
            st->pred[f] = p;
    }
    for (int f = 0; f < F_COUNT; f++) {
        if (!rd_trend(r, &st->trend[f]) || !rd_forecast(r, &st->fc[f]))
            return false;
        st->fc_limit[f] = rd_f64(r);
        st->fc_value[f] = rd_f64(r);
    }
    st->topup_seen = rd_f64(r);
    if (!(st->topup_seen >= 0.0 && st->topup_seen <= 2.0))
        return false;
    uint32_t ns = rd_u8(r), nt = rd_u8(r);
    for (uint32_t i = 0; i < ns + nt && !r->bad; i++) {
        sm_ledger_row row;
        row.raised = rd_u32(r);
        row.fulfilled = rd_u32(r);
        row.late = rd_u32(r);
        row.wrong = rd_u32(r);
        row.lead_s = rd_f64(r);
        row.eta_err_s = rd_f64(r);
        if (!(row.lead_s >= 0.0 && row.eta_err_s >= 0.0))
            return false;
        row.preempted = 0;
        if (i < ns && i <= SM_SRC_COUNT)
            st->ledger.by_source[i] = row;
        else if (i >= ns && i - ns <= SM_FAIL_MAX)
            st->ledger.by_type[i - ns] = row;
    }
    for (uint32_t i = 0; r->version >= 2 && i < ns + nt && !r->bad; i++) {
        uint32_t k = rd_u32(r);
        if (i < ns && i <= SM_SRC_COUNT)
            st->ledger.by_source[i].preempted = k;
        else if (i >= ns && i - ns <= SM_FAIL_MAX)
            st->ledger.by_type[i - ns].preempted = k;
    }
    return !r->bad;
}

static bool rd_heal_row(reader *r, sm_heal_row *x)
{
    x->commands = rd_u32(r);
    x->verified = rd_u32(r);
    x->failed = rd_u32(r);
    x->preempted = rd_u32(r);
    x->superseded = rd_u32(r);
    x->escalated = rd_u32(r);
    x->recent = rd_u32(r);
    x->recent_n = rd_u32(r);
    x->detect_s = rd_f64(r);
    x->recover_s = rd_f64(r);
    return !r->bad && x->recent_n <= 16 && x->recent <= 0xffffu &&
           x->detect_s >= -1e12 && x->detect_s <= 1e12 &&
           x->recover_s >= -1e12 && x->recover_s <= 1e12;
}

static bool sec_heal(reader *r, sm_swarm_state *st)
{
    sm_heal_state *h = &st->heal;
    memset(h, 0, sizeof *h);
    h->tick = (int64_t)rd_u64(r);
    h->dropped = rd_u32(r);
    uint32_t n = rd_u8(r);
    if (n > SM_HEAL_EPS)
        return false;
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        sm_heal_ep *e = &h->ep[i];
        e->used = 1;
        uint8_t *b[] = {&e->phase, &e->kind, &e->strategy, &e->tries,
                        &e->attempt, &e->outcome, &e->over, &e->autonomy,
                        &e->action, &e->task_done, &e->restarts,
                        &e->task_slot, &e->restarted, &e->ev_signal};
        for (size_t k = 0; k < sizeof b / sizeof b[0]; k++)
            *b[k] = (uint8_t)rd_u8(r);
        e->type = (int32_t)rd_u32(r);
        e->answers = rd_u64(r);
        e->command = rd_u64(r);
        int64_t *t[] = {&e->first_ms, &e->detected_ms, &e->commanded_ms,
                        &e->deadline_ms, &e->next_ms, &e->over_ms,
                        &e->ev_ts_ms, &e->ev_from_ms};
        for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
            *t[k] = (int64_t)rd_u64(r);
            if (k < 6 && !sm_ts_ok(*t[k]))
                return false;
        }
        rd_str(r, e->subject);
        rd_str(r, e->task);
        rd_str(r, e->agent);
        rd_str(r, e->ev_id);
        if (e->ev_signal > SM_SIG_OUTCOME)
            return false;
        if (e->phase < HEAL_WAIT || e->phase > HEAL_SPENT ||
            e->kind < SM_DEC_BOTTLENECK || e->kind > SM_DEC_PREDICTION ||
            e->over > HEAL_OVER_ENDED || e->outcome > 3 ||
            e->autonomy > SM_AUTO_ACT || e->action > SM_ACT_COUNT ||
            e->task_done > 2 || e->restarts > 1 || e->restarted > 1 ||
            e->strategy >= SM_HEAL_MAX_STRATEGIES ||
            (e->task_slot >= SM_TASK_TYPES && e->task_slot != SM_TYPE_NONE))
            return false;
    }
    h->n_open = n;
    h->restart_head = rd_u8(r);
    uint32_t nr = rd_u8(r);
    if (nr > SM_HEAL_RESTARTS || h->restart_head >= SM_HEAL_RESTARTS)
        return false;
    for (uint32_t i = 0; i < nr && !r->bad; i++) {
        uint32_t k = rd_u8(r);
        if (k >= SM_HEAL_RESTARTS)
            return false;
        h->restarts[k].agent = rd_u64(r);
        h->restarts[k].at_ms = (int64_t)rd_u64(r);
        if (!sm_ts_ok(h->restarts[k].at_ms))
            return false;
    }
    uint32_t ng = rd_u8(r);
    if (ng > SM_GROUPS)
        return false;
    for (uint32_t i = 0; i < ng && !r->bad; i++) {
        uint32_t k = rd_u8(r);
        if (k >= SM_GROUPS)
            return false;
        h->groups[k].name = rd_u64(r);
        h->groups[k].at_ms = (int64_t)rd_u64(r);
        h->groups[k].spare = (int32_t)rd_u32(r);
        if (!sm_ts_ok(h->groups[k].at_ms))
            return false;
    }
    sm_heal_row *tables[] = {h->by_action, h->by_type, h->by_strategy};
    const uint32_t rows[] = {SM_ACT_COUNT + 1, SM_FAIL_MAX + 1,
                             SM_HEAL_MAX_STRATEGIES};
    for (int t = 0; t < 3; t++) {
        uint32_t nrows = rd_u8(r);
        if (nrows > rows[t])
            return false;
        for (uint32_t i = 0; i < nrows && !r->bad; i++) {
            uint32_t k = rd_u8(r);
            if (k >= rows[t] || !rd_heal_row(r, &tables[t][k]))
                return false;
        }
    }
    return !r->bad;
}

static bool sec_pattern(reader *r, sm_swarm_state *st)
{
    sm_pattern_state *p = &st->pat;
    sm_pattern_config cfg = p->cfg;
    (void)sm_pattern_init(p, &cfg);
    p->total = rd_u64(r);
    p->first_ts_ms = (int64_t)rd_u64(r);
    p->newest_ts_ms = (int64_t)rd_u64(r);
    p->spike_gen = (int64_t)rd_u64(r);
    uint32_t n = rd_u16(r);
    if (n > SM_PAT_HISTORY || n > p->total)
        return false;
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        sm_pattern_event *e = &p->ring[i];
        e->ts_ms = (int64_t)rd_u64(r);
        e->subject = rd_u32(r);
        e->code = (uint16_t)rd_u8(r);
    }
    p->count = n;
    p->head = n % SM_PAT_HISTORY;
    uint32_t cells = rd_u32(r);
    if (cells > 2u * SM_PAT_CODES * SM_PAT_HOURS)
        return false;
    for (uint32_t i = 0; i < cells && !r->bad; i++) {
        uint32_t g = rd_u8(r), c = rd_u8(r), h = rd_u8(r);
        uint32_t count = rd_u16(r), days = rd_u8(r);
        if (g > 1 || c >= SM_PAT_CODES || h >= SM_PAT_HOURS)
            return false;
        p->spike_count[g][c][h] = (uint16_t)count;
        p->spike_days[g][c][h] = (uint8_t)days;
    }
    uint32_t nt = rd_u8(r);
    for (uint32_t t = 0; t < nt && !r->bad; t++) {
        sm_pred_ep e = {0};
        e.raised = rd_u8(r);
        if (e.raised > 1)
            return false;
        if (e.raised) {
            e.source = SM_SRC_PATTERN;
            e.raised_at_ms = (int64_t)rd_u64(r);
            e.eta_ms = (int64_t)rd_u64(r);
            e.published_ms = (int64_t)rd_u64(r);
            e.confidence = rd_f64(r);
            if (!sm_ts_ok(e.raised_at_ms) || !sm_ts_ok(e.eta_ms) ||
                !sm_ts_ok(e.published_ms) ||
                !(e.confidence >= 0.0 && e.confidence <= 1.0))
                return false;
        }
        if (t <= SM_FAIL_MAX)
            st->pat_pred[t] = e;
    }
    return !r->bad && sm_pattern_valid(p);
}

typedef bool (*section_fn)(reader *r, sm_swarm_state *st);

static const section_fn sections[] = {
    [SEC_CLOCK] = sec_clock,          [SEC_STATS] = sec_stats,
    [SEC_GAUGES] = sec_gauges,        [SEC_EPISODES] = sec_episodes,
    [SEC_CONSENSUS] = sec_consensus,  [SEC_DURATIONS] = sec_durations,
    [SEC_TYPES] = sec_types,          [SEC_FAILURES] = sec_failures,
    [SEC_PREDICT] = sec_predict,      [SEC_PATTERN] = sec_pattern,
    [SEC_HEAL] = sec_heal,
};
#define N_SECTIONS (sizeof sections / sizeof sections[0])

/* Earlier layouts kept the consensus episode with the swarm-wide ones:
 * it belongs to the group it names (or the first). */
static void group_episode_home(sm_swarm_state *st)
{
    sm_episode *e = &st->ep[SM_BN_CONSENSUS_TIMEOUT];
    if (!e->raised)
        return;
    sm_group *home = &st->groups[0];
    for (int i = 0; i < SM_GROUPS; i++)
        if (st->groups[i].used &&
            strncmp(st->groups[i].name, e->subject, SM_ID_MAX) == 0)
            home = &st->groups[i];
    if (!home->used) {
        home->used = 1;
        memcpy(home->name, e->subject, SM_ID_MAX);
    }
    home->ep = *e;
    memset(e, 0, sizeof *e);
}

/* Reads a v3 body into st (which holds the swarm's empty state: fields no
 * section carries keep it). The clock section is required. */
static bool swarm_decode(const unsigned char *body, size_t n,
                         sm_swarm_state *st)
{
    reader r = {body, body + n, false, 0};
    bool have_clock = false;
    while (r.p != r.end) {
        uint32_t tag = rd_u16(&r);
        /* a newer version only appends fields; a layout that changed says
         * so to its reader (sec_consensus) */
        uint32_t version = rd_u16(&r);
        uint32_t len = rd_u32(&r);
        const unsigned char *payload = rd_take(&r, len);
        if (payload == NULL)
            return false;
        if (tag >= N_SECTIONS || sections[tag] == NULL)
            continue;           /* a section of a later build: skipped */
        reader sr = {payload, payload + len, false, version};
        if (!sections[tag](&sr, st))
            return false;
        have_clock |= tag == SEC_CLOCK;
    }
    group_episode_home(st);
    return have_clock;
}

/* ------------------------------------------------ swarm blob v2 (read) */

/* The layout of swarm blob version 2, frozen: a host-order byte copy of
 * that build's swarm_state. */
typedef struct v2_gauge {
    int64_t last_ms;
    double value;
    double a, b;
    uint32_t have, over_run, under_run, reserved;
    char source[SM_ID_MAX];
} v2_gauge;

typedef struct v2_episode {
    int64_t raised_at_ms;
    double impact;
    uint32_t raised, severity;
    char subject[SM_ID_MAX];
} v2_episode;

typedef struct v2_swarm {
    blob_hdr hdr;
    char id[SM_ID_MAX];
    int64_t now_ms, tick, stats_tick;
    double median, mad;
    uint32_t median_n, new_samples, started, stats_dirty;
    v2_gauge gauges[3];
    v2_episode ep[6];
    char group[SM_ID_MAX];
    sm_ring rounds;
    sm_samples dur_hdr;
    sm_sample dur[512];
} v2_swarm;

_Static_assert(sizeof(v2_swarm) == 9840,
               "swarm blob v2 layout moved: window.h types changed?");

static bool swarm_migrate_v2(const unsigned char *blob, size_t len,
                             sm_swarm_state *st)
{
    if (len != sizeof(v2_swarm))
        return false;
    v2_swarm copy;              /* blob may be unaligned (a store value) */
    v2_swarm *v = &copy;
    memcpy(v, blob, sizeof *v);
    bool ok = blob_hdr_ok(&v->hdr, BLOB_MAGIC_SWARM, SWARM_V2, sizeof *v,
                          (const unsigned char *)v + sizeof v->hdr,
                          sizeof *v - sizeof v->hdr);
    if (ok) {
        memcpy(st->id, v->id, SM_ID_MAX);
        st->now_ms = v->now_ms;
        st->last_event_ms = v->now_ms;
        st->tick = v->tick;
        st->stats_tick = v->stats_tick;
        st->median = v->median;
        st->mad = v->mad;
        st->median_n = v->median_n;
        st->new_samples = v->new_samples;
        st->started = v->started;
        st->stats_dirty = v->stats_dirty;
        for (int i = 0; i < G_COUNT; i++) {
            const v2_gauge *g = &v->gauges[i];
            st->gauges[i] = (sm_gauge){g->last_ms, g->value, g->a, g->b,
                                       g->have, g->over_run, g->under_run,
                                       g->reserved, {0}};
            memcpy(st->gauges[i].source, g->source, SM_ID_MAX);
        }
        for (int t = 0; t <= SM_BN_COUNT; t++) {
            const v2_episode *e = &v->ep[t];
            st->ep[t] = (sm_episode){e->raised_at_ms, e->impact, e->raised,
                                     e->severity, {0}};
            memcpy(st->ep[t].subject, e->subject, SM_ID_MAX);
        }
        /* the swarm's one ring becomes the group that last reported; v2
         * kept no time for its latest round: the ring slot's start */
        sm_group *g = &st->groups[0];
        g->used = 1;
        memcpy(g->name, v->group, SM_ID_MAX);
        g->last_ms = v->rounds.started ? v->rounds.head_start_ms : 0;
        g->rounds = v->rounds;
        group_episode_home(st);
        /* v2 kept raw durations of every task, typed or not: they become
         * the untyped baseline (its latest SM_TYPE_SAMPLES); the ratio
         * ring starts empty */
        const sm_samples *h = &v->dur_hdr;
        if (sm_samples_valid(h, SM_SWARM_SAMPLES))
            for (uint32_t i = 0; i < h->count; i++) {
                const sm_sample *x = sm_samples_at(h, v->dur, i);
                sm_baselines_push(&st->types, 0, x->ts_ms, x->value);
            }
        st->median = 0;
        st->mad = 0;
        st->median_n = 0;
        st->stats_dirty = 1;
    }
    return ok;
}

/* ---------------------------------------------------- swarm import/export */

size_t sm_swarm_export(const sm_swarm *sw, void *buf, size_t cap)
{
    if (sw == NULL)
        return 0;
    writer w = {buf, sizeof(blob_hdr), cap};
    if (buf == NULL)
        w.cap = 0;
    swarm_encode(&sw->st, &w);
    if (buf != NULL && w.n <= cap) {
        blob_hdr hdr;
        blob_hdr_fill(&hdr, BLOB_MAGIC_SWARM, SWARM_V3, w.n,
                      (unsigned char *)buf + sizeof hdr, w.n - sizeof hdr);
        memcpy(buf, &hdr, sizeof hdr);
    }
    return w.n;
}

static bool episode_ok(const sm_episode *e)
{
    if (e->raised > 1)
        return false;
    return !e->raised || (e->severity >= SM_SEV_LOW &&
                          e->severity <= SM_SEV_CRITICAL);
}

static bool swarm_state_ok(const sm_swarm *sw, const sm_swarm_state *st)
{
    if (!sm_baselines_valid(&st->types))
        return false;
    if (memcmp(st->id, sw->st.id, SM_ID_MAX) != 0 || st->started > 1 ||
        st->stats_dirty > 1 || st->median_n > SM_SWARM_SAMPLES ||
        !sm_ts_ok(st->now_ms) || !sm_ts_ok(st->last_event_ms))
        return false;
    for (int i = 0; i < SM_GROUPS; i++) {
        const sm_group *g = &st->groups[i];
        if (g->used > 1 || g->reserved != 0 || sm_id_len(g->name) < 0 ||
            !sm_ts_ok(g->last_ms) || !episode_ok(&g->ep) ||
            sm_id_len(g->ep.subject) < 0 || (!g->used && g->ep.raised) ||
            (!g->used && g->qep.raised) || sm_id_len(g->qep.subject) < 0)
            return false;
        if (g->used && (!sm_ring_valid(&g->rounds) ||
                        g->rounds.slot_ms != sw->st.groups[i].rounds.slot_ms ||
                        g->rounds.nslots != sw->st.groups[i].rounds.nslots))
            return false;
    }
    for (int i = 0; i < G_COUNT; i++) {
        const sm_gauge *g = &st->gauges[i];
        if (g->have > 1 || g->reserved != 0 || sm_id_len(g->source) < 0)
            return false;
    }
    for (int t = 0; t <= SM_BN_COUNT; t++) {
        if (!episode_ok(&st->ep[t]) || sm_id_len(st->ep[t].subject) < 0)
            return false;
    }
    for (int f = 0; f < F_COUNT; f++)
        if (sm_id_len(st->fail[f].subject) < 0)
            return false;
    if (st->ep[0].raised || st->ep[SM_BN_SLOW_AGENT].raised ||
        st->ep[SM_BN_CONSENSUS_TIMEOUT].raised)
        return false;
    return sm_samples_valid(&st->dur_hdr, SM_SWARM_SAMPLES);
}

sm_status sm_swarm_import(sm_swarm *sw, const void *buf, size_t len)
{
    if (sw == NULL)
        return SM_ERR_CORRUPT;
    const unsigned char *raw = buf;
    blob_hdr hdr;
    sm_status head = blob_head(buf, len, BLOB_MAGIC_SWARM, SWARM_V3, &hdr);
    if (head != SM_OK)
        return head;
    /* start from the swarm's empty state: absent sections keep it */
    sm_swarm_state state = sw->st;
    sm_swarm_state *st = &state;
    bool ok;
    if (hdr.version == SWARM_V2)
        ok = swarm_migrate_v2(raw, len, st);
    else
        ok = hdr.version == SWARM_V3 &&
             blob_hdr_ok(&hdr, BLOB_MAGIC_SWARM, SWARM_V3, len,
                         raw + sizeof hdr, len - sizeof hdr) &&
             swarm_decode(raw + sizeof hdr, len - sizeof hdr, st);
    if (ok)
        sm_baselines_rehash(&st->types);    /* the hashes are not stored */
    ok = ok && swarm_state_ok(sw, st);
    if (ok) {
        sw->st = *st;
        sw->dirty = hdr.version != SWARM_V3;   /* rewrite a migrated blob */
    }
    return ok ? SM_OK : SM_ERR_CORRUPT;
}

bool sm_swarm_is_dirty(const sm_swarm *sw)
{
    return sw != NULL && sw->dirty;
}

/* ----------------------------------------------------------- meta record */

enum {
    META_APPLIED = 1,
    META_CONFIG = 2,
    META_BUS = 3,
};

size_t sm_meta_encode(const sm_store_meta *m, void *buf, size_t cap)
{
    if (m == NULL)
        return 0;
    writer w = {buf, sizeof(blob_hdr), buf == NULL ? 0 : cap};
    size_t at = w_section(&w, META_APPLIED, 1);
    w_u64(&w, m->applied_seq);
    w_end(&w, at);
    at = w_section(&w, META_CONFIG, 1);
    w_u64(&w, m->config_hash);
    w_end(&w, at);
    if (m->bus.bus_ms != 0) {
        const sm_bus_state *b = &m->bus;
        at = w_section(&w, META_BUS, 1);
        w_i64(&w, b->bus_ms);
        w_i64(&w, b->jump_ms);
        w_str(&w, b->jump_swarm);
        w_i64(&w, b->skew_ms);
        w_str(&w, b->skew_swarm);
        w_str(&w, b->skew_id);
        w_i64(&w, b->expired_at_ms);
        w_end(&w, at);
    }
    if (buf != NULL && w.n <= cap) {
        blob_hdr hdr;
        blob_hdr_fill(&hdr, BLOB_MAGIC_META, META_V1, w.n,
                      (unsigned char *)buf + sizeof hdr, w.n - sizeof hdr);
        memcpy(buf, &hdr, sizeof hdr);
    }
    return w.n;
}

/* The bus section: times in range, ids valid (rd_str). */
static bool bus_decode(reader *r, sm_bus_state *b)
{
    b->bus_ms = (int64_t)rd_u64(r);
    b->jump_ms = (int64_t)rd_u64(r);
    rd_str(r, b->jump_swarm);
    b->skew_ms = (int64_t)rd_u64(r);
    rd_str(r, b->skew_swarm);
    rd_str(r, b->skew_id);
    b->expired_at_ms = (int64_t)rd_u64(r);
    return !r->bad && sm_ts_ok(b->bus_ms) && sm_ts_ok(b->jump_ms) &&
           sm_ts_ok(b->skew_ms) && sm_ts_ok(b->expired_at_ms);
}

sm_status sm_meta_decode(sm_store_meta *m, const void *buf, size_t len)
{
    if (m == NULL)
        return SM_ERR_CORRUPT;
    const unsigned char *raw = buf;
    blob_hdr hdr;
    sm_status head = blob_head(buf, len, BLOB_MAGIC_META, META_V1, &hdr);
    if (head != SM_OK)
        return head;
    if (!blob_hdr_ok(&hdr, BLOB_MAGIC_META, META_V1, len, raw + sizeof hdr,
                     len - sizeof hdr))
        return SM_ERR_CORRUPT;
    sm_store_meta got;
    memset(&got, 0, sizeof got);
    reader r = {raw + sizeof hdr, raw + len, false, 0};
    while (r.p != r.end) {
        uint32_t tag = rd_u16(&r);
        (void)rd_u16(&r);       /* version: fields are only ever appended */
        uint32_t n = rd_u32(&r);
        const unsigned char *payload = rd_take(&r, n);
        if (payload == NULL)
            return SM_ERR_CORRUPT;
        reader sr = {payload, payload + n, false, 0};
        if (tag == META_APPLIED)
            got.applied_seq = rd_u64(&sr);
        else if (tag == META_CONFIG)
            got.config_hash = rd_u64(&sr);
        else if (tag == META_BUS && !bus_decode(&sr, &got.bus))
            return SM_ERR_CORRUPT;
        if (sr.bad)
            return SM_ERR_CORRUPT;
    }
    *m = got;
    return SM_OK;
}
