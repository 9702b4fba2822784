/*
 * evq.c - the simulators' event queue (see evq.h).
 *
 * A textbook array heap: a push moves a hole up from the end, a pop moves
 * one down from the root, each element copied once per level.
 */
#include "evq.h"

#include <stdlib.h>
#include <string.h>

static sm_evq_key key_of(const unsigned char *e)
{
    sm_evq_key k;
    memcpy(&k, e, sizeof k);
    return k;
}

static bool before(sm_evq_key a, sm_evq_key b)
{
    return a.ts < b.ts || (a.ts == b.ts && a.seq < b.seq);
}

static unsigned char *slot(const sm_evq *q, size_t i)
{
    return q->v + i * q->esz;
}

sm_status sm_evq_init(sm_evq *q, size_t esz, size_t cap)
{
    if (q == NULL)
        return SM_ERR_INVALID;
    memset(q, 0, sizeof *q);
    if (esz < sizeof(sm_evq_key))
        return SM_ERR_INVALID;
    if (cap == 0)
        cap = 1;
    if (cap > SIZE_MAX / esz)
        return SM_ERR_NOMEM;
    q->v = malloc(cap * esz);
    if (q->v == NULL)
        return SM_ERR_NOMEM;
    q->esz = esz;
    q->cap = cap;
    return SM_OK;
}

void sm_evq_free(sm_evq *q)
{
    if (q == NULL)
        return;
    free(q->v);
    memset(q, 0, sizeof *q);
}

static sm_status grow(sm_evq *q)
{
    if (q->cap > SIZE_MAX / 2 / q->esz)
        return SM_ERR_NOMEM;
    size_t cap = q->cap * 2;
    unsigned char *v = realloc(q->v, cap * q->esz);
    if (v == NULL)
        return SM_ERR_NOMEM;
    q->v = v;
    q->cap = cap;
    return SM_OK;
}

sm_status sm_evq_push(sm_evq *q, const void *e)
{
    if (q == NULL || e == NULL || q->v == NULL)
        return SM_ERR_INVALID;
    if (q->n == q->cap && grow(q) != SM_OK)
        return SM_ERR_NOMEM;
    sm_evq_key k = key_of(e);
    k.seq = q->seq++;
    size_t i = q->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(k, key_of(slot(q, p))))
            break;
        memcpy(slot(q, i), slot(q, p), q->esz);
        i = p;
    }
    memcpy(slot(q, i), e, q->esz);
    memcpy(slot(q, i), &k, sizeof k);
    return SM_OK;
}

bool sm_evq_pop(sm_evq *q, void *out)
{
    if (q == NULL || out == NULL || q->n == 0)
        return false;
    memcpy(out, slot(q, 0), q->esz);
    /* The last element stays where it is (past the new end) until the
     * hole it fills is found. */
    size_t n = --q->n;
    const unsigned char *last = slot(q, n);
    sm_evq_key lk = key_of(last);
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(key_of(slot(q, c + 1)), key_of(slot(q, c))))
            c++;
        if (!before(key_of(slot(q, c)), lk))
            break;
        memcpy(slot(q, i), slot(q, c), q->esz);
        i = c;
    }
    if (n > 0)
        memcpy(slot(q, i), last, q->esz);
    return true;
}

bool sm_evq_peek(const sm_evq *q, sm_evq_key *out)
{
    if (q == NULL || out == NULL || q->n == 0)
        return false;
    *out = key_of(q->v);
    return true;
}

size_t sm_evq_len(const sm_evq *q)
{
    return q != NULL ? q->n : 0;
}
