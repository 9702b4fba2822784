/*
 * baseline.c - per task type duration baselines (baseline.h).
 */
#include "baseline.h"

#include <string.h>

void sm_baselines_init(sm_baselines *b)
{
    memset(b, 0, sizeof *b);
    for (int i = 0; i < SM_TASK_TYPES; i++)
        sm_samples_init(&b->t[i].hdr, SM_TYPE_SAMPLES);
    b->t[0].used = 1;           /* "": no type, and the overflow */
}

/* A name's quick key: its length and first 8 bytes (zero-padded). */
static uint64_t name_head(const char *name, size_t n)
{
    uint64_t h = 0;
    memcpy(&h, name, n < 8 ? n : 8);
    return h;
}

uint32_t sm_baselines_slot(sm_baselines *b, const char *name)
{
    if (name == NULL || name[0] == '\0')
        return 0;
    size_t n = strnlen(name, SM_ID_MAX);
    uint64_t head = name_head(name, n);
    for (uint32_t i = 1; i < SM_TASK_TYPES; i++) {
        sm_type_baseline *t = &b->t[i];
        if (!t->used) {
            if (n >= SM_ID_MAX)
                n = SM_ID_MAX - 1;
            t->used = 1;
            memcpy(t->name, name, n);
            t->name[n] = '\0';
            t->len = (uint32_t)n;
            t->head = name_head(t->name, n);
            return i;
        }
        if (t->len == n && t->head == head &&
            (n <= 8 || memcmp(t->name + 8, name + 8, n - 8) == 0))
            return i;
    }
    return 0;
}

void sm_baselines_rehash(sm_baselines *b)
{
    for (uint32_t i = 1; i < SM_TASK_TYPES; i++) {
        sm_type_baseline *t = &b->t[i];
        t->len = t->used ? (uint32_t)strnlen(t->name, SM_ID_MAX - 1) : 0;
        t->head = t->used ? name_head(t->name, t->len) : 0;
    }
}

void sm_baselines_push(sm_baselines *b, uint32_t slot, int64_t ts_ms,
                       uint32_t duration_ms)
{
    sm_type_baseline *t = &b->t[slot < SM_TASK_TYPES ? slot : 0];
    sm_sample s = {ts_ms, duration_ms, 1u};
    sm_samples_push(&t->hdr, t->dur, s);
    t->fresh++;
}

/* The type's median over ts >= since_ms. */
static void redo(sm_type_baseline *t, int64_t since_ms, double *scratch)
{
    size_t n = sm_samples_values(&t->hdr, t->dur, since_ms, 1u, 1u, scratch,
                                 SM_TYPE_SAMPLES);
    t->median = sm_stats_median(scratch, n);
    t->median_n = (uint32_t)n;
    t->fresh = 0;
}

void sm_baselines_refresh(sm_baselines *b, int64_t since_ms, double *scratch)
{
    for (int i = 0; i < SM_TASK_TYPES; i++)
        if (b->t[i].used)
            redo(&b->t[i], since_ms, scratch);
}

void sm_baselines_refresh_slot(sm_baselines *b, uint32_t slot,
                               int64_t since_ms, uint32_t min_n,
                               double *scratch)
{
    sm_type_baseline *t = &b->t[slot < SM_TASK_TYPES ? slot : 0];
    if (t->fresh >= SM_TYPE_REFRESH || (t->fresh > 0 && t->median_n < min_n))
        redo(t, since_ms, scratch);
}

double sm_baselines_median(const sm_baselines *b, uint32_t slot,
                           uint32_t min_n)
{
    const sm_type_baseline *t = &b->t[slot < SM_TASK_TYPES ? slot : 0];
    return t->median_n >= min_n && t->median > 0 ? t->median : 0.0;
}

bool sm_baselines_valid(const sm_baselines *b)
{
    for (int i = 0; i < SM_TASK_TYPES; i++) {
        const sm_type_baseline *t = &b->t[i];
        if (t->used > 1 || t->reserved != 0 || t->median_n > SM_TYPE_SAMPLES ||
            !(t->median >= 0) || memchr(t->name, '\0', SM_ID_MAX) == NULL ||
            !sm_samples_valid(&t->hdr, SM_TYPE_SAMPLES))
            return false;
        if (i > 0 && !t->used && t->name[0] != '\0')
            return false;
    }
    return b->t[0].used == 1 && b->t[0].name[0] == '\0';
}
