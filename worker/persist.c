/*
 * persist.c - load and group-commit the core's state (see persist.h).
 *
 * Keys are built here and nowhere else (swarm_key, page_key).
 * The queue of deletions is a growable array of fixed-size keys: it grows
 * when a swarm is forgotten or a key of an earlier layout is migrated,
 * and it is emptied by the commit that carries it.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "persist.h"

/* "a" 0 swarm 0 agent, each id shorter than SM_ID_MAX. */
#define KEY_MAX (3 + 2 * (SM_ID_MAX - 1))

/* The meta record's key, and the pruning mark's (apart: other lengths). */
static const char meta_key[] = "m\0meta";       /* 6 bytes, no NUL after */
#define META_KEY_LEN (sizeof meta_key - 1)
#define META_MAX 512

typedef struct key {
    size_t len;
    unsigned char data[KEY_MAX];
} key;

struct sm_persist {
    sm_store *st;
    key *dels;              /* queued deletions, written by the next batch */
    size_t n_dels, cap_dels;
    size_t gone;            /* agents expired since the last commit (their
                               pages go with it): counted, not queued */
    unsigned char *buf;     /* swarm export buffer, reused */
    size_t cap_buf;
    char (*held)[SM_ID_MAX]; /* swarms with a blob of a newer build */
    size_t n_held, cap_held;
    sm_swarm **done;        /* swarms the current batch wrote (or held),
                               cleared once it commits */
    size_t n_done, cap_done;
    sm_persist_drop_fn on_drop;     /* told of each key load drops */
    void *drop_ud;
    sm_store_meta meta;     /* written with the next flush when dirty */
    bool meta_dirty;
    bool meta_held;         /* stored meta is newer: never overwritten */
    sm_persist_cursor_t cursors[SM_PERSIST_CURSORS];  /* input positions */
    size_t n_cursors;
    sm_persist_extra extra; /* records written beside the state */
    /* A prepared batch (sm_persist_prepare) out for writing: */
    bool prepared;
    char (*parts)[SM_ID_MAX];   /* the swarm of each part of its log */
    size_t n_parts, cap_parts;
    size_t log_dels;        /* it carries dels[0 .. log_dels) */
    size_t log_gone;        /* ... and that many expired agents */
    bool log_meta;          /* ... and the meta record */
    bool log_cursor[SM_PERSIST_CURSORS];    /* ... and these cursors */
    sm_store *xlog;         /* the extra records of the prepared batch */
    sm_store *carry;        /* extra records a failed batch did not write:
                               written first by the next batch */
    bool carrying;
};

/* Length of id if it is a storable id (1..SM_ID_MAX-1 bytes), else 0. */
static size_t id_len(const char *id)
{
    size_t n = id ? strnlen(id, SM_ID_MAX) : 0;
    return n < SM_ID_MAX ? n : 0;
}

static bool swarm_key(key *k, const char *swarm)
{
    size_t n = id_len(swarm);
    if (n == 0)
        return false;
    k->data[0] = 's';
    k->data[1] = 0;
    memcpy(k->data + 2, swarm, n);
    k->len = 2 + n;
    return true;
}

/* "g" 0 swarm 0 page (u32 big-endian: key order is page order). */
#define PAGE_NO_LEN 4
static bool page_key(key *k, const char *swarm, uint32_t page)
{
    size_t ns = id_len(swarm);
    if (ns == 0)
        return false;
    k->data[0] = 'g';
    k->data[1] = 0;
    memcpy(k->data + 2, swarm, ns);
    k->data[2 + ns] = 0;
    for (int i = 0; i < PAGE_NO_LEN; i++)
        k->data[3 + ns + i] = (unsigned char)(page >> (8 * (PAGE_NO_LEN - 1 - i)));
    k->len = 3 + ns + PAGE_NO_LEN;
    return true;
}

/* The page number a page key ends with (PAGE_NO_LEN bytes at b). */
static uint32_t page_no(const unsigned char *b)
{
    uint32_t page = 0;
    for (int i = 0; i < PAGE_NO_LEN; i++)
        page = page << 8 | b[i];
    return page;
}

void sm_persist_key_text(const void *data, size_t klen, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *k = data;
    size_t n = 0;
    if (cap == 0)
        return;
    /* a page key ends with its page number, written after a '#' */
    const unsigned char *sep = klen > 2 && k[0] == 'g' && k[1] == 0
                                   ? memchr(k + 2, 0, klen - 2) : NULL;
    bool page = sep && (size_t)(k + klen - (sep + 1)) == PAGE_NO_LEN;
    if (page)
        klen -= PAGE_NO_LEN;
    for (size_t i = 0; i < klen && n + 5 < cap; i++) {
        if (k[i] >= 0x21 && k[i] < 0x7f && k[i] != '"' && k[i] != '\\' &&
            k[i] != '/') {
            out[n++] = (char)k[i];
        } else if (k[i] == 0) {
            out[n++] = '/';     /* the parts' separator (the log escapes a
                                   backslash again, so not \x00) */
        } else {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[k[i] >> 4];
            out[n++] = hex[k[i] & 15];
        }
    }
    out[n] = 0;
    if (page)
        snprintf(out + n, cap - n, "#%u", (unsigned)page_no(sep + 1));
}

static bool is_held(const sm_persist *p, const char *swarm)
{
    for (size_t i = 0; i < p->n_held; i++)
        if (strcmp(p->held[i], swarm) == 0)
            return true;
    return false;
}

static sm_status hold(sm_persist *p, const char *swarm)
{
    if (is_held(p, swarm))
        return SM_OK;
    if (p->n_held == p->cap_held) {
        size_t cap = p->cap_held ? p->cap_held * 2 : 4;
        char (*h)[SM_ID_MAX] = realloc(p->held, cap * sizeof *h);
        if (!h)
            return SM_ERR_NOMEM;
        p->held = h;
        p->cap_held = cap;
    }
    snprintf(p->held[p->n_held++], SM_ID_MAX, "%s", swarm);
    return SM_OK;
}

static sm_status queue_del(sm_persist *p, const void *data, size_t len)
{
    if (len == 0 || len > KEY_MAX)
        return SM_ERR_INVALID;
    if (p->n_dels == p->cap_dels) {
        size_t cap = p->cap_dels ? p->cap_dels * 2 : 64;
        key *d = realloc(p->dels, cap * sizeof *d);
        if (!d)
            return SM_ERR_NOMEM;
        p->dels = d;
        p->cap_dels = cap;
    }
    key *k = &p->dels[p->n_dels++];
    memcpy(k->data, data, len);
    k->len = len;
    return SM_OK;
}

sm_status sm_persist_create(sm_persist **out, sm_store *st)
{
    if (!out || !st)
        return SM_ERR_INVALID;
    sm_persist *p = calloc(1, sizeof *p);
    if (!p)
        return SM_ERR_NOMEM;
    p->st = st;
    *out = p;
    return SM_OK;
}

void sm_persist_destroy(sm_persist *p)
{
    if (!p)
        return;
    free(p->dels);
    free(p->buf);
    free(p->held);
    free(p->done);
    free(p->parts);
    sm_store_close(p->xlog);
    sm_store_close(p->carry);
    free(p);
}

size_t sm_persist_pending_deletes(const sm_persist *p)
{
    return p ? p->n_dels : 0;
}

void sm_persist_on_drop(sm_persist *p, sm_persist_drop_fn fn, void *ud)
{
    if (!p)
        return;
    p->on_drop = fn;
    p->drop_ud = ud;
}

bool sm_persist_is_held(const sm_persist *p, const char *swarm)
{
    return p && swarm && is_held(p, swarm);
}

void sm_persist_set_applied(sm_persist *p, uint64_t seq)
{
    if (!p)
        return;
    p->meta.applied_seq = seq;
    p->meta_dirty = true;
}

static bool same_bus(const sm_bus_state *a, const sm_bus_state *b)
{
    return a->bus_ms == b->bus_ms && a->jump_ms == b->jump_ms &&
           a->skew_ms == b->skew_ms && a->expired_at_ms == b->expired_at_ms &&
           strcmp(a->jump_swarm, b->jump_swarm) == 0 &&
           strcmp(a->skew_swarm, b->skew_swarm) == 0 &&
           strcmp(a->skew_id, b->skew_id) == 0;
}

void sm_persist_set_bus(sm_persist *p, const sm_bus_state *bus)
{
    if (!p || !bus || same_bus(&p->meta.bus, bus))
        return;
    p->meta.bus = *bus;
    p->meta_dirty = true;
}

void sm_persist_set_config_hash(sm_persist *p, uint64_t hash)
{
    if (!p)
        return;
    p->meta.config_hash = hash;
    p->meta_dirty = true;
}

/* ---- forget */

static sm_status forget_key(void *ud, const void *k, size_t klen,
                            const void *val, size_t vlen)
{
    sm_persist *p = ud;
    if (((const unsigned char *)k)[0] == 'g') {
        /* a page: its agents leave with it */
        const unsigned char *v = val;
        for (size_t n; vlen > 0 && (n = sm_agent_blob_size(v, vlen)) > 0;
             v += n, vlen -= n)
            p->gone++;
    }
    return queue_del(p, k, klen);
}

sm_status sm_persist_forget_swarm(sm_persist *p, const char *swarm)
{
    key k;
    if (!p || !swarm_key(&k, swarm))
        return SM_ERR_INVALID;
    if (is_held(p, swarm))
        return SM_OK;           /* a newer build's state: left alone */
    size_t before = p->n_dels, gone = p->gone;
    sm_status s = queue_del(p, k.data, k.len);
    /* "g" 0 <swarm> 0 (its pages), and "a" 0 <swarm> 0 (its agents in
     * the layout before pages): the swarm key with a separator */
    k.data[k.len++] = 0;
    k.data[0] = 'g';
    if (s == SM_OK)
        s = sm_store_scan(p->st, k.data, k.len, forget_key, p);
    k.data[0] = 'a';
    if (s == SM_OK)
        s = sm_store_scan(p->st, k.data, k.len, forget_key, p);
    if (s != SM_OK) {
        p->n_dels = before;     /* all or nothing */
        p->gone = gone;
    }
    return s;
}

/* ---- input cursors ("c" 0 <name>: version 1, stream sequence LE64) */

#define CURSOR_VERSION 1
#define CURSOR_LEN 9

static sm_persist_cursor_t *cursor_of(sm_persist *p, const char *name, bool add)
{
    for (size_t i = 0; i < p->n_cursors; i++)
        if (strcmp(p->cursors[i].name, name) == 0)
            return &p->cursors[i];
    if (!add || p->n_cursors == SM_PERSIST_CURSORS)
        return NULL;
    sm_persist_cursor_t *c = &p->cursors[p->n_cursors++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    return c;
}

static size_t cursor_key(unsigned char *k, const char *name)
{
    size_t n = strlen(name);
    k[0] = 'c';
    k[1] = 0;
    memcpy(k + 2, name, n);
    return n + 2;
}

sm_status sm_persist_set_cursor(sm_persist *p, const char *name, uint64_t seq)
{
    if (!p || !name || !name[0] || strlen(name) >= SM_PERSIST_CURSOR_NAME)
        return SM_ERR_INVALID;
    sm_persist_cursor_t *c = cursor_of(p, name, true);
    if (!c)
        return SM_ERR_FULL;
    if (c->seq != seq) {
        c->seq = seq;
        c->dirty = true;
    }
    return SM_OK;
}

uint64_t sm_persist_cursor(sm_persist *p, const char *name)
{
    sm_persist_cursor_t *c = p && name ? cursor_of(p, name, false) : NULL;
    return c ? c->seq : 0;
}

static sm_status put_cursors(sm_persist *p, sm_store *out)
{
    for (size_t i = 0; i < p->n_cursors; i++) {
        sm_persist_cursor_t *c = &p->cursors[i];
        if (!c->dirty)
            continue;
        unsigned char k[2 + SM_PERSIST_CURSOR_NAME], v[CURSOR_LEN];
        size_t klen = cursor_key(k, c->name);
        v[0] = CURSOR_VERSION;
        for (int b = 0; b < 8; b++)
            v[1 + b] = (unsigned char)(c->seq >> (8 * b));
        sm_status s = sm_store_put(out, k, klen, v, sizeof v);
        if (s != SM_OK)
            return s;
    }
    return SM_OK;
}

/* ---- load */

typedef struct load_ctx {
    sm_persist *p;
    sm_registry *reg;
    sm_persist_load_result *out;
    /* the swarm whose keys are being read (keys come in swarm order), and
     * whether its stored agents must all be written again: pages that do
     * not give back the table they were written from, or agents of the
     * layout before pages */
    char swarm[SM_ID_MAX];
    bool redo;
} load_ctx;

/* Copies the id of n bytes at src into dst if it is a valid id. */
static bool copy_id(char dst[SM_ID_MAX], const unsigned char *src, size_t n)
{
    if (n == 0 || n >= SM_ID_MAX || memchr(src, 0, n))
        return false;
    memcpy(dst, src, n);
    dst[n] = 0;
    return true;
}

/* Of a key <kind> 0 <swarm> 0 <rest>: the swarm id into id, and the rest
 * (*rest_len bytes), or NULL when the key has no such shape. */
static const unsigned char *key_swarm(const void *k, size_t klen,
                                      char id[SM_ID_MAX], size_t *rest_len)
{
    const unsigned char *b = k;
    const unsigned char *sep = klen > 2 ? memchr(b + 2, 0, klen - 2) : NULL;
    if (!sep || !copy_id(id, b + 2, (size_t)(sep - (b + 2))))
        return NULL;
    *rest_len = klen - (size_t)(sep + 1 - b);
    return sep + 1;
}

static void told(load_ctx *c, const void *k, size_t klen, const char *why)
{
    if (c->p->on_drop)
        c->p->on_drop(c->p->drop_ud, k, klen, why);
}

/* A rejected blob: counted, reported, and its key queued for deletion so
 * that the next flush removes it (or rewrites it, for a swarm that
 * changes). */
static sm_status reject(load_ctx *c, const void *k, size_t klen,
                        const char *why)
{
    c->out->corrupt++;
    told(c, k, klen, why);
    sm_status s = queue_del(c->p, k, klen);
    return s == SM_ERR_INVALID ? SM_OK : s;
}

/* A blob of a newer build: counted, reported, left in the store, and its
 * swarm held (taken out of the registry, never written by this build). */
static sm_status keep_newer(load_ctx *c, const void *k, size_t klen,
                            const char *swarm)
{
    c->out->newer++;
    told(c, k, klen, "written by a newer build: kept, its swarm held (not "
                     "loaded, never written)");
    if (is_held(c->p, swarm))
        return SM_OK;
    sm_status s = hold(c->p, swarm);
    if (s != SM_OK)
        return s;
    c->out->held++;
    if (sm_registry_find(c->reg, swarm))
        (void)sm_registry_remove(c->reg, swarm);
    return SM_OK;
}

/* The swarm to load into: a swarm made here starts clean, since loading
 * marks dirty only what must be rewritten (a migrated blob). */
static sm_status load_target(load_ctx *c, const char *id, sm_swarm **sw)
{
    bool fresh = sm_registry_find(c->reg, id) == NULL;
    sm_status s = sm_registry_get(c->reg, id, sw);
    if (s == SM_OK && fresh)
        sm_swarm_clear_dirty(*sw);
    return s;
}

/* The swarm a key of swarm `id` loads into, in *sw; NULL (and SM_OK)
 * when the swarm is held, or when the id is refused (the key is then
 * rejected with `why`). */
static sm_status swarm_for_key(load_ctx *c, const void *k, size_t klen,
                               const char *id, const char *why, sm_swarm **sw)
{
    *sw = NULL;
    if (is_held(c->p, id))
        return SM_OK;
    sm_status s = load_target(c, id, sw);
    if (s == SM_ERR_INVALID) {
        *sw = NULL;
        return reject(c, k, klen, why);
    }
    return s;
}

/* Marks the swarm whose keys were read last dirty, all of it, if they
 * asked for that, and forgets it (at a change of swarm, and at the end
 * of a scan). */
static void redo_finish(load_ctx *c)
{
    sm_swarm *sw = c->redo ? sm_registry_find(c->reg, c->swarm) : NULL;
    if (sw && !is_held(c->p, c->swarm))
        sm_swarm_mark_all_dirty(sw);
    c->swarm[0] = 0;
    c->redo = false;
}

static void redo_swarm(load_ctx *c, const char *swarm, bool redo)
{
    if (strcmp(c->swarm, swarm) != 0) {
        redo_finish(c);
        snprintf(c->swarm, sizeof c->swarm, "%s", swarm);
    }
    c->redo |= redo;
}

/* Part of a page could not be read: counted, told, and the swarm's
 * pages all written again (the key is not deleted: it is rewritten, or
 * deleted as past the last page). */
static void page_damaged(load_ctx *c, const void *k, size_t klen,
                         const char *swarm, const char *why)
{
    c->out->corrupt++;
    told(c, k, klen, why);
    redo_swarm(c, swarm, true);
}

static sm_status load_swarm(void *ud, const void *k, size_t klen,
                            const void *val, size_t vlen)
{
    load_ctx *c = ud;
    char id[SM_ID_MAX];
    sm_swarm *sw = NULL;
    if (!copy_id(id, (const unsigned char *)k + 2, klen - 2))
        return reject(c, k, klen, "a swarm key with no valid swarm id");
    sm_status s = swarm_for_key(c, k, klen, id, "a swarm key with no valid "
                                "swarm id", &sw);
    if (s != SM_OK || !sw)
        return s;
    s = sm_swarm_import(sw, val, vlen);
    if (s == SM_ERR_NOMEM)
        return s;
    if (s == SM_ERR_VERSION)
        return keep_newer(c, k, klen, id);
    if (s != SM_OK)
        return reject(c, k, klen, "swarm blob damaged (checksum, size, field "
                                  "or id): the swarm starts from its agents");
    c->out->swarms++;
    if (sm_swarm_is_dirty(sw))
        c->out->migrated++;
    return SM_OK;
}

static sm_status load_agent(void *ud, const void *k, size_t klen,
                            const void *val, size_t vlen)
{
    load_ctx *c = ud;
    char id[SM_ID_MAX], agent[SM_ID_MAX];
    size_t n = 0;
    const unsigned char *rest = key_swarm(k, klen, id, &n);
    if (!rest || !copy_id(agent, rest, n))
        return reject(c, k, klen, "an agent key with no valid swarm or agent id");
    sm_swarm *sw = NULL;
    sm_status s = swarm_for_key(c, k, klen, id, "an agent key with no valid "
                                "swarm id", &sw);
    if (s != SM_OK || !sw)
        return s;
    size_t before = sm_swarm_agent_count(sw);
    s = sm_swarm_import_agent(sw, val, vlen);
    if (s == SM_ERR_NOMEM)
        return s;
    if (s == SM_ERR_VERSION)
        return keep_newer(c, k, klen, id);
    if (s != SM_OK)
        return reject(c, k, klen, "agent blob damaged (checksum, size or "
                                  "field): the agent is dropped");
    if (!sm_swarm_has_agent(sw, agent)) {
        /* the blob is sound but names another agent than its key: kept
         * under the blob's own id, the stray key deleted */
        if (sm_swarm_agent_count(sw) > before)
            c->out->agents++;
        return reject(c, k, klen, "the key names another agent than its "
                                  "blob: loaded under the blob's id");
    }
    c->out->agents++;
    /* the layout before pages: the next commit writes the agent into its
     * page and deletes this key */
    redo_swarm(c, id, true);
    s = queue_del(c->p, k, klen);
    return s == SM_ERR_INVALID ? SM_OK : s;
}

/* One page: its agents in order, each where the table had it. A blob
 * that cannot be read (or the rest of a page that cannot be split) is
 * counted and told, each; the swarm's pages are then all written again,
 * without it (the page key itself stays: it is rewritten, or deleted as
 * past the last page). */
static sm_status load_page(void *ud, const void *k, size_t klen,
                           const void *val, size_t vlen)
{
    load_ctx *c = ud;
    char id[SM_ID_MAX];
    size_t rest_len = 0;
    const unsigned char *rest = key_swarm(k, klen, id, &rest_len);
    if (!rest || rest_len != PAGE_NO_LEN)
        return reject(c, k, klen, "a page key with no valid swarm id or page");
    uint32_t page = page_no(rest);
    sm_swarm *sw = NULL;
    sm_status s = swarm_for_key(c, k, klen, id, "a page key with no valid "
                                "swarm id", &sw);
    if (s != SM_OK || !sw)
        return s;
    redo_swarm(c, id, sm_swarm_agent_count(sw) != (size_t)page * SM_AGENT_PAGE);
    const unsigned char *v = val;
    size_t left = vlen;
    while (left > 0) {
        size_t n = sm_agent_blob_size(v, left);
        const char *why = NULL;
        if (n == 0) {
            page_damaged(c, k, klen, id, "the rest of a page cannot be split "
                         "into agent blobs: dropped, the swarm's pages "
                         "written again");
            break;
        }
        size_t before = sm_swarm_agent_count(sw);
        s = sm_swarm_import_agent(sw, v, n);
        if (s == SM_ERR_NOMEM)
            return s;
        if (s == SM_ERR_VERSION)
            return keep_newer(c, k, klen, id);
        if (s != SM_OK)
            why = "agent blob damaged in a page (checksum, size or field): "
                  "the agent is dropped, the swarm's pages written again";
        else if (sm_swarm_agent_count(sw) == before)
            why = "an agent a page before held too: the later one kept, "
                  "the swarm's pages written again";
        else
            c->out->agents++;
        if (why)
            page_damaged(c, k, klen, id, why);
        v += n;
        left -= n;
    }
    return SM_OK;
}

static sm_status load_meta(void *ud, const void *k, size_t klen,
                           const void *val, size_t vlen)
{
    load_ctx *c = ud;
    if (klen != META_KEY_LEN)
        return SM_OK;           /* not the meta key: see load_other */
    sm_status s = sm_meta_decode(&c->out->meta, val, vlen);
    if (s == SM_ERR_VERSION) {
        c->out->newer++;
        told(c, k, klen, "meta record of a newer build: kept");
        c->p->meta_held = true;
    } else if (s != SM_OK) {
        c->out->corrupt++;
        told(c, k, klen, "meta record damaged: rewritten by the next commit");
        c->p->meta_dirty = true;    /* replaced by the next flush */
    } else {
        c->out->have_meta = true;
        c->p->meta = c->out->meta;
    }
    return SM_OK;
}

static sm_status load_cursor(void *ud, const void *k, size_t klen,
                             const void *val, size_t vlen)
{
    load_ctx *c = ud;
    const unsigned char *v = val;
    char name[SM_PERSIST_CURSOR_NAME];
    if (klen <= 2 || klen - 2 >= sizeof name || memchr((const char *)k + 2, 0, klen - 2)) {
        c->out->corrupt++;
        told(c, k, klen, "cursor key of the wrong shape: kept unread");
        return SM_OK;
    }
    memcpy(name, (const char *)k + 2, klen - 2);
    name[klen - 2] = 0;
    if (vlen < CURSOR_LEN || v[0] != CURSOR_VERSION) {
        bool newer = vlen >= 1 && v[0] > CURSOR_VERSION;
        c->out->newer += newer;
        c->out->corrupt += !newer;
        told(c, k, klen, newer ? "cursor of a newer build: kept, not read"
                               : "cursor damaged: rewritten by the next commit");
        return SM_OK;
    }
    uint64_t seq = 0;
    for (int b = 0; b < 8; b++)
        seq |= (uint64_t)v[1 + b] << (8 * b);
    sm_persist_cursor_t *cur = cursor_of(c->p, name, true);
    if (cur) {
        cur->seq = seq;
        cur->dirty = false;
    }
    return SM_OK;
}

/* A key of no shape this build writes ("s" 0, "a" 0, the meta key, or the
 * pruning mark "m" 0): not read, kept, reported. */
static sm_status load_other(void *ud, const void *k, size_t klen,
                            const void *val, size_t vlen)
{
    load_ctx *c = ud;
    const unsigned char *b = k;
    (void)val;
    (void)vlen;
    bool known = klen >= 2 && b[1] == 0 &&
                 (b[0] == 's' || b[0] == 'g' || b[0] == 'a' || b[0] == 'c' ||
                  b[0] == 'r' ||
                  b[0] == 'x' || b[0] == 'y' ||
                  (b[0] == 'm' && (klen == 2 || (klen == META_KEY_LEN &&
                                                 memcmp(k, meta_key, klen) == 0))));
    if (!known) {
        c->out->unknown++;
        told(c, k, klen, "a key of no shape this build writes: not read, kept");
    }
    return SM_OK;
}

sm_status sm_persist_load(sm_persist *p, sm_registry *reg,
                          sm_persist_load_result *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!p || !reg || !out)
        return SM_ERR_INVALID;
    load_ctx c = {.p = p, .reg = reg, .out = out};
    /* Swarm blobs first: importing one replaces the swarm-wide state,
     * the agents are added to it after. */
    sm_status s = sm_store_scan(p->st, meta_key, META_KEY_LEN, load_meta, &c);
    if (s == SM_OK)
        s = sm_store_scan(p->st, "s", 2, load_swarm, &c);
    if (s == SM_OK)
        s = sm_store_scan(p->st, "g", 2, load_page, &c);
    redo_finish(&c);
    if (s == SM_OK)
        s = sm_store_scan(p->st, "a", 2, load_agent, &c);
    redo_finish(&c);
    if (s == SM_OK)
        s = sm_store_scan(p->st, "c", 2, load_cursor, &c);
    if (s == SM_OK)
        s = sm_store_scan(p->st, NULL, 0, load_other, &c);
    return s;
}

/* ---- flush */

typedef struct flush_ctx {
    sm_persist *p;
    sm_store *out;          /* where the batch goes: p->st, or a log */
    bool logging;           /* out is a log: remember each part's swarm */
    sm_persist_result *res;
    const char *swarm;      /* swarm being visited */
    bool held;              /* ... and whether it is held */
    sm_status s;            /* the batch's first failure: later writes are
                               skipped */
    sm_status part;         /* the current swarm's first failure */
    size_t part_agents_written;
    size_t removed;         /* agents expired by the current pass */
} flush_ctx;

/* An expired agent leaves the store with its page, which the removal
 * marked (core/agents.h): nothing to queue, only to count. */
static void on_expired(void *ud, const char *agent, const void *blob,
                       size_t len)
{
    flush_ctx *c = ud;
    (void)agent;
    (void)blob;
    (void)len;
    c->removed++;
    if (!c->held)               /* a newer build's blobs: left alone */
        c->p->gone++;
}

static void expire_swarm(void *ud, sm_swarm *sw)
{
    flush_ctx *c = ud;
    c->swarm = sm_swarm_id(sw);
    c->held = is_held(c->p, c->swarm);
    sm_swarm_expire(sw, c->res->retention_ms, on_expired, c);
}

/* Expires every swarm with res->retention_ms; returns agents removed. */
static size_t expire_all(flush_ctx *c, sm_registry *reg)
{
    c->removed = 0;
    sm_registry_foreach(reg, expire_swarm, c);
    c->res->expired += c->removed;
    return c->removed;
}

static void write_page(void *ud, uint32_t page, const void *data, size_t len,
                       uint32_t agents)
{
    flush_ctx *c = ud;
    key k;
    (void)agents;
    if (c->part != SM_OK || !page_key(&k, c->swarm, page))
        return;
    c->part = sm_store_put(c->out, k.data, k.len, data, len);
}

/* The swarm's changed agents: each page holding one, then the deletion
 * of the pages past the last (agents were removed). */
static void write_pages(flush_ctx *c, sm_swarm *sw)
{
    key k;
    sm_swarm_visit_dirty_pages(sw, write_page, c);
    if (c->part == SM_OK && page_key(&k, c->swarm, sm_swarm_agent_pages(sw)))
        c->part = sm_store_del_from(c->out, k.data, k.len, k.len - PAGE_NO_LEN);
    if (c->part == SM_OK)
        c->part_agents_written = sm_swarm_dirty_agents(sw);
}

static sm_status put_swarm(flush_ctx *c, sm_swarm *sw)
{
    sm_persist *p = c->p;
    key k;
    if (!swarm_key(&k, sm_swarm_id(sw)))
        return SM_ERR_INVALID;
    size_t need = sm_swarm_export(sw, p->buf, p->cap_buf);
    if (need > p->cap_buf) {
        unsigned char *b = realloc(p->buf, need);
        if (!b)
            return SM_ERR_NOMEM;
        p->buf = b;
        p->cap_buf = need;
        need = sm_swarm_export(sw, p->buf, p->cap_buf);
    }
    return sm_store_put(c->out, k.data, k.len, p->buf, need);
}

/* A swarm whose part failed: it stays dirty, the first one is named. */
static void swarm_failed(flush_ctx *c, const char *swarm, sm_status s)
{
    if (c->res->swarms_failed++ == 0) {
        snprintf(c->res->failed_swarm, sizeof c->res->failed_swarm, "%s", swarm);
        c->res->failed_status = s;
    }
}

/* One swarm, in a part of its own: its blob if dirty, then its dirty
 * agents. A failure ends the part only (the swarm stays dirty, the batch
 * goes on); a swarm written, or held, is remembered to be cleared once
 * the batch commits. */
static void write_swarm(void *ud, sm_swarm *sw)
{
    flush_ctx *c = ud;
    sm_persist *p = c->p;
    if (c->s != SM_OK)
        return;
    c->swarm = sm_swarm_id(sw);
    bool dirty = sm_swarm_is_dirty(sw), agents = sm_swarm_agents_changed(sw);
    if (is_held(p, c->swarm) || (!dirty && !agents)) {
        p->done[p->n_done++] = sw;  /* held: in memory only */
        return;
    }
    c->part = sm_store_part_begin(c->out);
    c->part_agents_written = 0;
    if (c->part == SM_OK && dirty)
        c->part = put_swarm(c, sw);
    if (c->part == SM_OK && agents)
        write_pages(c, sw);
    if (c->part == SM_OK)
        c->part = sm_store_part_commit(c->out);
    else
        sm_store_part_abort(c->out);    /* no-op if the store ended it */
    if (c->part != SM_OK) {
        swarm_failed(c, c->swarm, c->part);
        return;
    }
    c->res->swarms_written += dirty;
    c->res->agents_written += c->part_agents_written;
    p->done[p->n_done++] = sw;
    if (c->logging)             /* room reserved with done */
        snprintf(p->parts[p->n_parts++], SM_ID_MAX, "%s", c->swarm);
}

static sm_status put_meta(flush_ctx *c)
{
    unsigned char buf[META_MAX];
    size_t n = sm_meta_encode(&c->p->meta, buf, sizeof buf);
    if (n > sizeof buf)
        return SM_ERR_INVALID;
    sm_status s = sm_store_put(c->out, meta_key, META_KEY_LEN, buf, n);
    if (s == SM_OK)
        c->res->meta_written = true;
    return s;
}

/* Room to remember every swarm of reg as written. */
static sm_status reserve_done(sm_persist *p, size_t n)
{
    p->n_done = 0;
    if (n <= p->cap_done)
        return SM_OK;
    sm_swarm **d = realloc(p->done, n * sizeof *d);
    if (!d)
        return SM_ERR_NOMEM;
    p->done = d;
    p->cap_done = n;
    return SM_OK;
}

/* One batch: queued deletions first (an agent that expired and came back
 * is then put again), then each swarm with something dirty in a part of
 * its own, then the meta record if it changed; commit. A swarm whose part
 * fails is counted in res and left dirty; the others commit. Once the
 * batch has committed, the swarms written are clean and the deletion
 * queue is empty. */
/* The queued deletions, into out (the store's batch or a log), counted
 * in res as they go in. */
static sm_status put_deletes(sm_persist *p, sm_store *out, sm_persist_result *res)
{
    sm_status s = SM_OK;
    for (size_t i = 0; i < p->n_dels && s == SM_OK; i++) {
        s = sm_store_del(out, p->dels[i].data, p->dels[i].len);
        if (s == SM_OK && p->dels[i].data[0] == 's')
            res->swarms_deleted++;
        else if (s == SM_OK && p->dels[i].data[0] == 'a')
            res->agents_deleted++;  /* a key of the layout before pages */
    }
    if (s == SM_OK)
        res->agents_deleted += p->gone;
    return s;
}

static sm_status write_batch(flush_ctx *c, sm_registry *reg)
{
    sm_persist *p = c->p;
    sm_persist_result *res = c->res;
    res->swarms_written = res->agents_written = 0;
    res->agents_deleted = res->swarms_deleted = 0;
    res->swarms_failed = 0;
    res->failed_swarm[0] = 0;
    res->failed_status = SM_OK;
    res->meta_written = false;
    c->s = reserve_done(p, sm_registry_count(reg));
    if (c->s == SM_OK)
        c->s = sm_store_begin(p->st);
    if (c->s == SM_OK)
        c->s = put_deletes(p, p->st, res);
    if (c->s == SM_OK)
        sm_registry_foreach(reg, write_swarm, c);
    /* the meta record says what the stored state reflects: not written
     * while a swarm is missing from it */
    if (c->s == SM_OK && p->meta_dirty && !p->meta_held && !res->swarms_failed)
        c->s = put_meta(c);
    if (c->s == SM_OK && !res->swarms_failed)
        c->s = put_cursors(p, p->st);
    if (c->s == SM_OK && p->carrying)
        c->s = sm_store_log_replay(p->st, p->carry);
    if (c->s == SM_OK && p->extra.write)
        c->s = p->extra.write(p->extra.ud, p->st);
    if (c->s == SM_OK) {
        if (p->extra.sync_begin)
            p->extra.sync_begin(p->extra.ud);
        c->s = sm_store_commit(p->st);
        if (p->extra.sync_end)
            p->extra.sync_end(p->extra.ud);
    } else {
        sm_store_abort(p->st);      /* no-op if the store ended it */
    }
    if (p->extra.done)
        p->extra.done(p->extra.ud, c->s == SM_OK);
    if (c->s != SM_OK)
        return c->s;
    for (size_t i = 0; i < p->n_done; i++)
        sm_swarm_clear_dirty(p->done[i]);
    p->n_dels = 0;
    p->gone = 0;
    p->carrying = false;
    if (!res->swarms_failed) {
        p->meta_dirty = false;
        for (size_t i = 0; i < p->n_cursors; i++)
            p->cursors[i].dirty = false;
    }
    return res->swarms_failed ? res->failed_status : SM_OK;
}

/* Shortens retention (halving, floor one window) until an expiry pass
 * removes something. Returns whether it did. */
static bool prune(flush_ctx *c, sm_registry *reg, int64_t floor_ms)
{
    while (c->res->retention_ms > floor_ms) {
        int64_t r = c->res->retention_ms / 2;
        c->res->retention_ms = r > floor_ms ? r : floor_ms;
        c->res->prunes++;
        if (expire_all(c, reg) > 0)
            return true;
    }
    return false;
}

/* A swarm that lost agents to pruning: every page of it, into the open
 * batch, and all of it dirty, so that the batch after writes its pages
 * into the room the pruned agents left (rewritten in place, a page would
 * need its old and new copy at once). */
static void drop_pages(void *ud, sm_swarm *sw)
{
    flush_ctx *c = ud;
    key k;
    if (c->s != SM_OK || !sm_swarm_agents_removed(sw) ||
        is_held(c->p, sm_swarm_id(sw)) || !page_key(&k, sm_swarm_id(sw), 0))
        return;
    c->s = sm_store_del_from(c->p->st, k.data, k.len, k.len - PAGE_NO_LEN);
    if (c->s == SM_OK)
        sm_swarm_mark_all_dirty(sw);
}

/* Commits the queued deletions alone, with the pages of the swarms that
 * lost agents, then one more small write: LMDB reuses a page freed by
 * commit N only from commit N + 2 on, so this is what makes pruned space
 * usable by the batch that follows. A crash before that batch commits
 * leaves those swarms without their agents in the store. */
static sm_status commit_deletes(flush_ctx *c, sm_registry *reg, size_t *deleted)
{
    sm_persist *p = c->p;
    static const char mark[] = "m";     /* "m" 0: written, then deleted */
    sm_status s = sm_store_begin(p->st);
    for (size_t i = 0; i < p->n_dels && s == SM_OK; i++)
        s = sm_store_del(p->st, p->dels[i].data, p->dels[i].len);
    c->s = s;
    if (s == SM_OK)
        sm_registry_foreach(reg, drop_pages, c);
    s = c->s;
    if (s == SM_OK)
        s = sm_store_commit(p->st);
    if (s != SM_OK) {
        sm_store_abort(p->st);
        return s;
    }
    *deleted += p->n_dels + p->gone;
    p->n_dels = 0;
    p->gone = 0;
    /* The settling write is best effort: if it fails, the redone batch
     * fails too and the flush reports the full map. */
    if (sm_store_begin(p->st) == SM_OK &&
        sm_store_put(p->st, mark, sizeof mark, "", 0) == SM_OK &&
        sm_store_del(p->st, mark, sizeof mark) == SM_OK)
        (void)sm_store_commit(p->st);
    sm_store_abort(p->st);      /* no-op unless a step above failed */
    return SM_OK;
}

void sm_persist_set_extra(sm_persist *p, const sm_persist_extra *extra)
{
    if (p)
        p->extra = extra ? *extra : (sm_persist_extra){0};
}

sm_status sm_persist_flush(sm_persist *p, sm_registry *reg,
                           int64_t retention_ms, sm_persist_result *res)
{
    if (res)
        memset(res, 0, sizeof *res);
    if (!p || !reg || !res || p->prepared)
        return SM_ERR_INVALID;
    flush_ctx c = {.p = p, .out = p->st, .res = res};
    res->retention_ms = retention_ms > 0 ? retention_ms : 0;
    if (res->retention_ms > 0)
        expire_all(&c, reg);
    int64_t floor_ms = sm_registry_config(reg)->window_ms;

    /* What earlier rounds committed (a round after a full map writes
     * only what is still dirty). */
    size_t swarms = 0, agents = 0, deleted = 0, swarms_deleted = 0;
    sm_status s;
    for (;;) {
        s = write_batch(&c, reg);
        if (s == SM_OK || res->swarms_failed) {
            /* committed, maybe without some swarms */
            swarms += res->swarms_written;
            agents += res->agents_written;
            deleted += res->agents_deleted;
            swarms_deleted += res->swarms_deleted;
        }
        if (s != SM_ERR_MAP_FULL)
            break;
        res->map_full++;
        sm_status g = sm_store_grow(p->st);
        if (g == SM_OK) {
            res->grows++;
            continue;
        }
        if (g != SM_ERR_FULL) {
            s = g;
            break;
        }
        if (res->retention_ms <= 0 || !prune(&c, reg, floor_ms))
            break;
        s = commit_deletes(&c, reg, &deleted);
        if (s == SM_ERR_MAP_FULL)
            res->map_full++;
        if (s != SM_OK)
            break;
    }
    res->swarms_written = swarms;
    res->agents_written = agents;
    res->agents_deleted = deleted;
    res->swarms_deleted = swarms_deleted;
    return s;
}

/* ---- prepared batches (a commit written by another thread) */

void sm_persist_window(sm_persist *p, bool open)
{
    if (p && open && p->extra.sync_begin)
        p->extra.sync_begin(p->extra.ud);
    else if (p && !open && p->extra.sync_end)
        p->extra.sync_end(p->extra.ud);
}

bool sm_persist_prepared(const sm_persist *p)
{
    return p && p->prepared;
}

/* Room for a part per swarm, and the extra records' log. */
static sm_status reserve_parts(sm_persist *p, size_t n)
{
    p->n_parts = 0;
    if (!p->xlog) {
        sm_status s = sm_store_log_open(&p->xlog);
        if (s != SM_OK)
            return s;
    }
    if (n <= p->cap_parts)
        return SM_OK;
    char (*v)[SM_ID_MAX] = realloc(p->parts, n * sizeof *v);
    if (!v)
        return SM_ERR_NOMEM;
    p->parts = v;
    p->cap_parts = n;
    return SM_OK;
}

/* The extra records of this batch, into p->xlog: what a failed batch
 * carried first, then what the extra writer has now. */
static sm_status write_extra(sm_persist *p)
{
    sm_status s = sm_store_begin(p->xlog);
    if (s == SM_OK && p->carrying)
        s = sm_store_log_replay(p->xlog, p->carry);
    if (s == SM_OK && p->extra.write)
        s = p->extra.write(p->extra.ud, p->xlog);
    if (s == SM_OK)
        return sm_store_commit(p->xlog);
    sm_store_abort(p->xlog);
    return s;
}

sm_status sm_persist_prepare(sm_persist *p, sm_registry *reg,
                             int64_t retention_ms, sm_store *log,
                             sm_persist_result *res)
{
    if (res)
        memset(res, 0, sizeof *res);
    if (!p || !reg || !log || !res || p->prepared)
        return SM_ERR_INVALID;
    flush_ctx c = {.p = p, .out = log, .logging = true, .res = res};
    res->retention_ms = retention_ms > 0 ? retention_ms : 0;
    if (res->retention_ms > 0)
        expire_all(&c, reg);
    size_t n = sm_registry_count(reg);
    c.s = reserve_done(p, n);
    if (c.s == SM_OK)
        c.s = reserve_parts(p, n);
    if (c.s == SM_OK)
        c.s = sm_store_begin(log);
    if (c.s == SM_OK)
        c.s = put_deletes(p, log, res);
    if (c.s == SM_OK)
        sm_registry_foreach(reg, write_swarm, &c);
    if (c.s == SM_OK && res->swarms_failed)
        c.s = res->failed_status;   /* recording fails only for memory */
    if (c.s == SM_OK)
        c.s = write_extra(p);
    if (c.s == SM_OK)
        c.s = sm_store_log_replay(log, p->xlog);
    /* what the stored state reflects: written only if every part is */
    if (c.s == SM_OK)
        c.s = sm_store_log_cond(log);
    bool meta = p->meta_dirty && !p->meta_held;
    if (c.s == SM_OK && meta)
        c.s = put_meta(&c);
    if (c.s == SM_OK)
        c.s = put_cursors(p, log);
    if (c.s == SM_OK)
        c.s = sm_store_commit(log);
    if (c.s != SM_OK) {
        sm_store_abort(log);
        return c.s;             /* nothing changed: all still dirty */
    }
    /* The log holds it now: memory is clean, the extra writer's records
     * are handed over (carried by p->xlog until the batch is written). */
    for (size_t i = 0; i < p->n_done; i++)
        sm_swarm_clear_dirty(p->done[i]);
    if (p->extra.done)
        p->extra.done(p->extra.ud, true);
    p->log_dels = p->n_dels;
    p->log_gone = p->gone;
    p->log_meta = meta;
    p->meta_dirty = false;
    for (size_t i = 0; i < p->n_cursors; i++) {
        p->log_cursor[i] = p->cursors[i].dirty;
        p->cursors[i].dirty = false;
    }
    p->prepared = true;
    return SM_OK;
}

/* Marks the swarm named by a part of the prepared log fully dirty. */
static void redo_part(sm_persist *p, sm_registry *reg, size_t i)
{
    sm_swarm *sw = sm_registry_find(reg, p->parts[i]);
    if (sw)
        sm_swarm_mark_all_dirty(sw);
}

size_t sm_persist_prepared_parts(const sm_persist *p)
{
    return p && p->prepared ? p->n_parts : 0;
}

sm_status sm_persist_complete(sm_persist *p, sm_registry *reg,
                              sm_status applied, const sm_status *part_status,
                              sm_persist_result *res)
{
    if (!p || !reg || !res || !p->prepared)
        return SM_ERR_INVALID;
    p->prepared = false;
    size_t failed = 0;
    for (size_t i = 0; i < p->n_parts; i++) {
        sm_status ps = part_status ? part_status[i] : SM_OK;
        bool bad = applied != SM_OK || ps != SM_OK;
        if (!bad)
            continue;
        /* memory was cleared when the log was made: rewrite all of it */
        redo_part(p, reg, i);
        if (applied == SM_OK && failed++ == 0) {
            snprintf(res->failed_swarm, sizeof res->failed_swarm, "%s",
                     p->parts[i]);
            res->failed_status = ps;
        }
    }
    res->swarms_failed = failed;
    if (applied == SM_OK) {
        /* the batch committed: its deletions and extra records are in */
        if (p->log_dels > 0) {
            memmove(p->dels, p->dels + p->log_dels,
                    (p->n_dels - p->log_dels) * sizeof *p->dels);
            p->n_dels -= p->log_dels;
        }
        p->gone -= p->log_gone;
        p->carrying = false;
    } else if (sm_store_log_bytes(p->xlog) > 0) {
        /* nothing went in: the extra records are carried to the next */
        if (!p->carry && sm_store_log_open(&p->carry) != SM_OK) {
            p->carrying = false;    /* out of memory: they are lost */
        } else {
            sm_store *t = p->carry;
            p->carry = p->xlog;
            p->xlog = t;
            p->carrying = true;
        }
    }
    p->log_dels = 0;
    p->log_gone = 0;
    if (applied == SM_OK && failed == 0)
        return SM_OK;
    /* the meta record and the cursors went in only with every part */
    if (p->log_meta)
        p->meta_dirty = true;
    for (size_t i = 0; i < p->n_cursors; i++)
        p->cursors[i].dirty |= p->log_cursor[i];
    res->meta_written = false;
    return applied != SM_OK ? applied : res->failed_status;
}
