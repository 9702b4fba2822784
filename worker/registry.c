/*
 * registry.c - swarm id -> sm_swarm (see registry.h).
 *
 * `swarms` is the insertion-ordered array of owned swarms; `slots` is an
 * open-addressing table of indexes into it (0 empty, i + 1 for swarms[i]),
 * kept at most half full.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "registry.h"
#include "strategies.h"

struct sm_registry {
    sm_detect_config cfg;
    char autonomy[512];     /* the autonomy setting; "" until set: no
                               healing (strategies.h) */
    bool heal;
    sm_swarm **swarms;
    size_t count, cap;
    size_t *slots;
    size_t nslots;          /* power of two */
    uint64_t removed;       /* swarms removed so far */
};

static size_t slot_of(const sm_registry *reg, const char *id)
{
    size_t mask = reg->nslots - 1;
    size_t i = (size_t)sm_hash_str(SM_HASH_INIT, id) & mask;
    while (reg->slots[i] != 0 &&
           strcmp(sm_swarm_id(reg->swarms[reg->slots[i] - 1]), id) != 0)
        i = (i + 1) & mask;
    return i;
}

/* Empties the table and indexes every swarm again (after growing it, or
 * after a removal shifted the array). */
static void rehash(sm_registry *reg)
{
    memset(reg->slots, 0, reg->nslots * sizeof *reg->slots);
    for (size_t k = 0; k < reg->count; k++)
        reg->slots[slot_of(reg, sm_swarm_id(reg->swarms[k]))] = k + 1;
}

/* Makes room for one more swarm: the array and, past half full, the
 * table (rehashed). */
static sm_status reserve(sm_registry *reg)
{
    if (reg->count == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 8;
        sm_swarm **a = realloc(reg->swarms, cap * sizeof *a);
        if (!a)
            return SM_ERR_NOMEM;
        reg->swarms = a;
        reg->cap = cap;
    }
    if ((reg->count + 1) * 2 <= reg->nslots)
        return SM_OK;
    size_t n = reg->nslots ? reg->nslots * 2 : 16;
    size_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return SM_ERR_NOMEM;
    free(reg->slots);
    reg->slots = slots;
    reg->nslots = n;
    rehash(reg);
    return SM_OK;
}

sm_status sm_registry_create(sm_registry **out, const sm_detect_config *cfg)
{
    if (!out || !cfg)
        return SM_ERR_INVALID;
    if (sm_detect_config_validate(cfg, NULL) != SM_OK)
        return SM_ERR_CONFIG;
    sm_registry *reg = calloc(1, sizeof *reg);
    if (!reg)
        return SM_ERR_NOMEM;
    reg->cfg = *cfg;
    sm_status s = reserve(reg);
    if (s != SM_OK) {
        sm_registry_destroy(reg);
        return s;
    }
    *out = reg;
    return SM_OK;
}

void sm_registry_destroy(sm_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->count; i++)
        sm_swarm_destroy(reg->swarms[i]);
    free(reg->swarms);
    free(reg->slots);
    free(reg);
}

static bool valid_id(const char *id)
{
    return id && id[0] && strnlen(id, SM_ID_MAX) < SM_ID_MAX;
}

sm_swarm *sm_registry_find(const sm_registry *reg, const char *id)
{
    if (!reg || !valid_id(id))
        return NULL;
    size_t i = reg->slots[slot_of(reg, id)];
    return i ? reg->swarms[i - 1] : NULL;
}

sm_status sm_registry_get(sm_registry *reg, const char *id, sm_swarm **sw)
{
    if (!reg || !sw || !valid_id(id))
        return SM_ERR_INVALID;
    sm_swarm *found = sm_registry_find(reg, id);
    if (found) {
        *sw = found;
        return SM_OK;
    }
    sm_status s = reserve(reg);
    sm_swarm *made = NULL;
    if (s == SM_OK)
        s = sm_swarm_create(&made, id, &reg->cfg);
    if (s != SM_OK)
        return s;
    if (reg->heal) {
        sm_heal_config hc;
        char err[8];
        /* the setting was checked by sm_registry_set_autonomy() */
        if (sm_heal_config_for(reg->autonomy, id, &hc, err, sizeof err) == SM_OK)
            (void)sm_swarm_set_heal(made, &hc);
    }
    reg->swarms[reg->count] = made;
    reg->slots[slot_of(reg, id)] = reg->count + 1;
    reg->count++;
    *sw = made;
    return SM_OK;
}

sm_status sm_registry_remove(sm_registry *reg, const char *id)
{
    if (!reg || !valid_id(id))
        return SM_ERR_INVALID;
    size_t i = reg->slots[slot_of(reg, id)];
    if (i == 0)
        return SM_ERR_NOT_FOUND;
    sm_swarm_destroy(reg->swarms[i - 1]);
    reg->removed++;
    memmove(&reg->swarms[i - 1], &reg->swarms[i],
            (reg->count - i) * sizeof *reg->swarms);
    reg->count--;
    rehash(reg);
    return SM_OK;
}

uint64_t sm_registry_removed(const sm_registry *reg)
{
    return reg ? reg->removed : 0;
}

size_t sm_registry_count(const sm_registry *reg)
{
    return reg ? reg->count : 0;
}

const sm_detect_config *sm_registry_config(const sm_registry *reg)
{
    return &reg->cfg;
}

void sm_registry_foreach(const sm_registry *reg, sm_registry_fn fn, void *ud)
{
    if (!reg || !fn)
        return;
    for (size_t i = 0; i < reg->count; i++)
        fn(ud, reg->swarms[i]);
}

sm_status sm_registry_set_autonomy(sm_registry *reg, const char *spec,
                                   char *err, size_t errcap)
{
    sm_heal_config hc;
    if (!reg || !spec)
        return SM_ERR_INVALID;
    if (strlen(spec) >= sizeof reg->autonomy) {
        snprintf(err, errcap, "autonomy: longer than %zu bytes",
                 sizeof reg->autonomy - 1);
        return SM_ERR_CONFIG;
    }
    sm_status s = sm_heal_config_for(spec, NULL, &hc, err, errcap);
    if (s != SM_OK)
        return s;
    memcpy(reg->autonomy, spec, strlen(spec) + 1);
    reg->heal = true;
    for (size_t k = 0; k < reg->count; k++) {
        const char *id = sm_swarm_id(reg->swarms[k]);
        if (sm_heal_config_for(spec, id, &hc, err, errcap) == SM_OK)
            (void)sm_swarm_set_heal(reg->swarms[k], &hc);
    }
    return SM_OK;
}
