/*
 * agents.c - the agent table (agents.h).
 */
#include "agents.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "swarm_int.h"

#define TABLE_INIT 64u

/* Words of the page bitmap for a table of cap slots (cap / 2 agents). */
static size_t pmark_words(uint32_t cap)
{
    size_t pages = (cap / 2 + SM_AGENT_PAGE - 1) / SM_AGENT_PAGE;
    return (pages + 63) / 64;
}

sm_status sm_agents_init(sm_agents *t)
{
    memset(t, 0, sizeof *t);
    t->slots = calloc(TABLE_INIT, sizeof *t->slots); /* SM_ALLOC_OK */
    t->v = calloc(TABLE_INIT / 2, sizeof *t->v); /* SM_ALLOC_OK */
    t->dirty = calloc(TABLE_INIT / 2, sizeof *t->dirty); /* SM_ALLOC_OK */
    t->wake = calloc(TABLE_INIT / 2, sizeof *t->wake); /* SM_ALLOC_OK */
    t->pmark = calloc(pmark_words(TABLE_INIT), sizeof *t->pmark); /* SM_ALLOC_OK */
    t->cap = TABLE_INIT;
    t->raised_head = SM_AGENT_NONE;
    t->raised_tail = SM_AGENT_NONE;
    return t->slots && t->v && t->dirty && t->wake && t->pmark ? SM_OK
                                                               : SM_ERR_NOMEM;
}

void sm_agents_free(sm_agents *t)
{
    free(t->slots);
    free(t->v);
    free(t->dirty);
    free(t->wake);
    free(t->pmark);
    memset(t, 0, sizeof *t);
}

static uint32_t hash32(const char *id)
{
    return (uint32_t)sm_hash_str(SM_HASH_INIT, id);
}

/* Table slot holding id, or the empty slot where it would go. */
static uint32_t table_slot(const sm_agents *t, const char *id, uint32_t h,
                           bool *found)
{
    uint32_t mask = t->cap - 1;
    uint32_t i = h & mask;
    for (;;) {
        uint32_t e = t->slots[i].e;
        if (e == 0) {
            *found = false;
            return i;
        }
        if (t->slots[i].h == h && strcmp(t->v[e - 1].s.id, id) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

sm_agent *sm_agents_find(const sm_agents *t, const char *id)
{
    bool found;
    uint32_t slot = table_slot(t, id, hash32(id), &found);
    return found ? &t->v[t->slots[slot].e - 1] : NULL;
}

void sm_agents_prefetch_slot(const sm_agents *t, const char *id)
{
    __builtin_prefetch(&t->slots[hash32(id) & (t->cap - 1)], 0, 1);
}

void sm_agents_prefetch_record(const sm_agents *t, const char *id)
{
    /* the first slot with id's hash: comparing the id would read the
     * record, the very miss this is to hide */
    uint32_t h = hash32(id), mask = t->cap - 1, i = h & mask;
    while (t->slots[i].e != 0 && t->slots[i].h != h)
        i = (i + 1) & mask;
    if (t->slots[i].e == 0)
        return;
    uint32_t k = t->slots[i].e - 1;
    sm_agent_prefetch(&t->v[k], true);
    __builtin_prefetch(&t->wake[k], 1, 1);
}

/* Doubles the table and the agent array. On failure nothing changed that
 * matters: the array may have grown, the table and contents are intact. */
static sm_status table_grow(sm_agents *t)
{
    uint32_t cap = t->cap * 2;
    if (cap < t->cap)
        return SM_ERR_NOMEM;
    sm_agent *grown = realloc(t->v, (size_t)(cap / 2) * sizeof *grown); /* SM_ALLOC_OK */
    if (grown == NULL)
        return SM_ERR_NOMEM;
    t->v = grown;
    uint32_t *list = realloc(t->dirty, (size_t)(cap / 2) * sizeof *list); /* SM_ALLOC_OK */
    if (list == NULL)
        return SM_ERR_NOMEM;
    t->dirty = list;
    int64_t *wake = realloc(t->wake, (size_t)(cap / 2) * sizeof *wake); /* SM_ALLOC_OK */
    if (wake == NULL)
        return SM_ERR_NOMEM;
    t->wake = wake;
    uint64_t *pmark = calloc(pmark_words(cap), sizeof *pmark); /* SM_ALLOC_OK */
    if (pmark == NULL)
        return SM_ERR_NOMEM;
    sm_agent_slot *table = calloc(cap, sizeof *table); /* SM_ALLOC_OK */
    if (table == NULL) {
        free(pmark);
        return SM_ERR_NOMEM;
    }
    free(t->pmark);
    t->pmark = pmark;
    /* rehashed from the old slots, which carry each hash: reading it from
     * the records instead was a cache miss per agent (100 k agents: every
     * doubling touched every 512-byte record) */
    for (uint32_t j = 0; j < t->cap; j++) {
        sm_agent_slot e = t->slots[j];
        if (e.e == 0)
            continue;
        uint32_t i = e.h & (cap - 1);
        while (table[i].e != 0)
            i = (i + 1) & (cap - 1);
        table[i] = e;
    }
    free(t->slots);
    t->slots = table;
    t->cap = cap;
    return SM_OK;
}

/* Marks agent k changed since the last commit: O(1), once per commit. */
void sm_agents_mark(sm_agents *t, uint32_t k)
{
    sm_agent *a = &t->v[k];
    if (a->dirty)
        return;
    t->dirty[t->n_dirty++] = k;
    a->dirty = t->n_dirty;
}

/* Takes agent k off the dirty list (the list's last entry fills its place). */
void sm_agents_unmark(sm_agents *t, uint32_t k)
{
    sm_agent *a = &t->v[k];
    if (!a->dirty)
        return;
    uint32_t pos = a->dirty - 1;
    uint32_t moved = t->dirty[--t->n_dirty];
    t->dirty[pos] = moved;
    t->v[moved].dirty = pos + 1;
    a->dirty = 0;
}

/* Index of the agent `id` (non-empty, vetted), created if new. */
sm_status sm_agents_get(sm_agents *t, const char *id, uint32_t *out)
{
    uint32_t h = hash32(id);
    bool found;
    uint32_t slot = table_slot(t, id, h, &found);
    if (found) {
        *out = t->slots[slot].e - 1;
        return SM_OK;
    }
    if (t->n + 1 > t->cap / 2) {
        sm_status rc = table_grow(t);
        if (rc != SM_OK)
            return rc;
        slot = table_slot(t, id, h, &found);
    }
    uint32_t k = t->n++;
    sm_agent *a = &t->v[k];
    memset(a, 0, sizeof *a);
    sm_id_copy(a->s.id, id);
    sm_samples_init(&a->s.tasks_hdr, SM_AGENT_TASKS);
    a->prev = SM_AGENT_NONE;
    a->next = SM_AGENT_NONE;
    a->hash = h;
    a->s.task_type = SM_TYPE_NONE;
    t->wake[k] = SM_WAKE_NEVER;
    t->slots[slot] = (sm_agent_slot){k + 1, h};
    *out = k;
    return SM_OK;
}

/* Orders raised agents by (raised_at, id). */
static bool raised_before(const sm_agent *x, const sm_agent *y)
{
    if (x->s.raised_at_ms != y->s.raised_at_ms)
        return x->s.raised_at_ms < y->s.raised_at_ms;
    return strcmp(x->s.id, y->s.id) < 0;
}

void sm_agents_raised_link(sm_agents *t, uint32_t k)
{
    sm_agent *a = &t->v[k];
    uint32_t after = t->raised_tail;
    while (after != SM_AGENT_NONE && raised_before(a, &t->v[after]))
        after = t->v[after].prev;
    a->prev = after;
    if (after == SM_AGENT_NONE) {
        a->next = t->raised_head;
        t->raised_head = k;
    } else {
        a->next = t->v[after].next;
        t->v[after].next = k;
    }
    if (a->next == SM_AGENT_NONE)
        t->raised_tail = k;
    else
        t->v[a->next].prev = k;
}

void sm_agents_raised_unlink(sm_agents *t, uint32_t k)
{
    sm_agent *a = &t->v[k];
    if (a->prev == SM_AGENT_NONE)
        t->raised_head = a->next;
    else
        t->v[a->prev].next = a->next;
    if (a->next == SM_AGENT_NONE)
        t->raised_tail = a->prev;
    else
        t->v[a->next].prev = a->prev;
    a->prev = SM_AGENT_NONE;
    a->next = SM_AGENT_NONE;
}

/* Removes table slot i by backward-shift deletion (no tombstones). */
static void table_delete(sm_agents *t, uint32_t i)
{
    uint32_t mask = t->cap - 1;
    uint32_t j = i;
    t->slots[i] = (sm_agent_slot){0, 0};
    for (;;) {
        j = (j + 1) & mask;
        sm_agent_slot e = t->slots[j];
        if (e.e == 0)
            return;
        uint32_t home = e.h & mask;
        /* the entry at j may move to i if its home is not in (i, j] */
        bool stays = i <= j ? (home > i && home <= j)
                            : (home > i || home <= j);
        if (!stays) {
            t->slots[i] = e;
            t->slots[j] = (sm_agent_slot){0, 0};
            i = j;
        }
    }
}

/* Removes agent k (not raised): the last agent moves into its place. */
void sm_agents_remove(sm_agents *t, uint32_t k)
{
    bool found;
    uint32_t slot = table_slot(t, t->v[k].s.id, t->v[k].hash,
                               &found);
    if (found)
        table_delete(t, slot);
    sm_agents_unmark(t, k);
    uint32_t last = t->n - 1;
    if (k != last) {
        sm_agent *m = &t->v[last];
        slot = table_slot(t, m->s.id, m->hash, &found);
        t->slots[slot].e = k + 1;
        if (m->dirty)
            t->dirty[m->dirty - 1] = k;
        if (m->s.raised) {
            if (m->prev == SM_AGENT_NONE)
                t->raised_head = k;
            else
                t->v[m->prev].next = k;
            if (m->next == SM_AGENT_NONE)
                t->raised_tail = k;
            else
                t->v[m->next].prev = k;
        }
        memcpy(&t->v[k], m, sizeof *m);
        t->wake[k] = t->wake[last];
        sm_agents_mark(t, k);       /* its page holds another agent now */
    }
    t->n--;
    if (t->n % SM_AGENT_PAGE != 0)
        sm_agents_mark(t, t->n - 1);    /* the last page lost one */
    t->shrunk = true;
}

/* ------------------------------------------------------- swarm stats */

void sm_agents_clean(sm_agents *t)
{
    for (uint32_t i = 0; i < t->n_dirty; i++)
        t->v[t->dirty[i]].dirty = 0;
    t->n_dirty = 0;
    t->shrunk = false;
}
