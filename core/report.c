/*
 * report.c - per-minute task aggregates and what a report reads from them
 * (report.h).
 */
#include "report.h"

#include <string.h>

unsigned sm_perf_bucket(uint32_t d)
{
    if (d < 8)
        return d;
    unsigned e = 31u - (unsigned)__builtin_clz(d);
    return 8u * (e - 2u) + ((d >> (e - 3u)) & 7u);
}

/* Lowest duration of bucket b. */
static double bucket_lo(unsigned b)
{
    if (b < 8)
        return b;
    unsigned e = b / 8u + 2u, m = b % 8u;
    return (double)((UINT64_C(8) + m) << (e - 3u));
}

double sm_perf_bucket_mid(unsigned b)
{
    if (b < 8)
        return b;
    unsigned e = b / 8u + 2u;
    return bucket_lo(b) + (double)(UINT64_C(1) << (e - 3u)) / 2.0;
}

void sm_perf_add(sm_perf_row *r, uint32_t duration_ms, bool ok,
                 uint64_t tokens)
{
    r->count++;
    r->ok += ok ? 1 : 0;
    r->sum_ms += duration_ms;
    r->tokens += tokens;
    r->hist[sm_perf_bucket(duration_ms)]++;
}

void sm_perf_merge(sm_perf_row *dst, const sm_perf_row *src)
{
    dst->count += src->count;
    dst->ok += src->ok;
    dst->sum_ms += src->sum_ms;
    dst->tokens += src->tokens;
    for (unsigned b = 0; b < SM_PERF_BUCKETS; b++)
        dst->hist[b] += src->hist[b];
}

double sm_perf_quantile(const sm_perf_row *r, double q)
{
    if (r->count == 0)
        return 0.0;
    double want = q * (double)r->count;
    uint64_t k = (uint64_t)want;
    if ((double)k < want || k == 0)
        k++;                    /* ceil, at least the first */
    uint64_t seen = 0;
    for (unsigned b = 0; b < SM_PERF_BUCKETS; b++) {
        seen += r->hist[b];
        if (seen >= k)
            return sm_perf_bucket_mid(b);
    }
    return sm_perf_bucket_mid(SM_PERF_BUCKETS - 1);
}

/* ---- byte layout ------------------------------------------------------ */

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*p == end)
            return false;
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

size_t sm_perf_encode(const sm_perf_row *r, uint8_t *buf, size_t cap)
{
    if (cap < SM_PERF_ROW_MAX)
        return 0;
    uint8_t *p = buf;
    *p++ = SM_PERF_ROW_VERSION;
    p = put_varint(p, r->count);
    p = put_varint(p, r->ok);
    p = put_varint(p, r->sum_ms);
    p = put_varint(p, r->tokens);
    uint64_t nz = 0;
    for (unsigned b = 0; b < SM_PERF_BUCKETS; b++)
        nz += r->hist[b] != 0;
    p = put_varint(p, nz);
    for (unsigned b = 0; b < SM_PERF_BUCKETS; b++) {
        if (r->hist[b]) {
            *p++ = (uint8_t)b;
            p = put_varint(p, r->hist[b]);
        }
    }
    return (size_t)(p - buf);
}

sm_status sm_perf_decode(sm_perf_row *r, const uint8_t *buf, size_t len)
{
    if (!r || !buf || len == 0)
        return SM_ERR_CORRUPT;
    if (buf[0] > SM_PERF_ROW_VERSION)
        return SM_ERR_VERSION;
    if (buf[0] != SM_PERF_ROW_VERSION)
        return SM_ERR_CORRUPT;
    memset(r, 0, sizeof *r);
    const uint8_t *p = buf + 1, *end = buf + len;
    uint64_t nz, prev = 0, total = 0;
    if (!get_varint(&p, end, &r->count) || !get_varint(&p, end, &r->ok) ||
        !get_varint(&p, end, &r->sum_ms) || !get_varint(&p, end, &r->tokens) ||
        !get_varint(&p, end, &nz) || nz > SM_PERF_BUCKETS || r->ok > r->count)
        return SM_ERR_CORRUPT;
    for (uint64_t i = 0; i < nz; i++) {
        uint64_t c;
        if (p == end)
            return SM_ERR_CORRUPT;
        unsigned b = *p++;
        if ((i > 0 && b <= prev) || !get_varint(&p, end, &c) || c == 0 ||
            c > UINT32_MAX)
            return SM_ERR_CORRUPT;
        r->hist[b] = (uint32_t)c;
        prev = b;
        total += c;
    }
    if (p != end || total != r->count)
        return SM_ERR_CORRUPT;
    return SM_OK;
}

/* ---- trends ----------------------------------------------------------- */

sm_trend_dir sm_perf_trend(const double *x, const double *y, const double *w,
                           size_t n, bool lower_better)
{
    double sw = 0, sx = 0, sy = 0, lo = 0, hi = 0;
    size_t pts = 0;
    for (size_t i = 0; i < n; i++) {
        if (w[i] <= 0)
            continue;
        if (pts == 0 || x[i] < lo)
            lo = x[i];
        if (pts == 0 || x[i] > hi)
            hi = x[i];
        pts++;
        sw += w[i];
        sx += w[i] * x[i];
        sy += w[i] * y[i];
    }
    if (pts < SM_TREND_MIN_POINTS || hi <= lo)
        return SM_TREND_NONE;
    double mx = sx / sw, my = sy / sw, sxx = 0, sxy = 0;
    for (size_t i = 0; i < n; i++) {
        if (w[i] <= 0)
            continue;
        sxx += w[i] * (x[i] - mx) * (x[i] - mx);
        sxy += w[i] * (x[i] - mx) * (y[i] - my);
    }
    double change = sxy / sxx * (hi - lo);
    if (lower_better) {
        double rel = my > 0 ? change / my : 0.0;
        return rel > SM_TREND_REL ? SM_TREND_DEGRADING
               : rel < -SM_TREND_REL ? SM_TREND_IMPROVING : SM_TREND_STABLE;
    }
    return change > SM_TREND_ABS ? SM_TREND_IMPROVING
           : change < -SM_TREND_ABS ? SM_TREND_DEGRADING : SM_TREND_STABLE;
}
