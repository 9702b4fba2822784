/*
 * registry.h - the swarms a worker owns: swarm id -> sm_swarm.
 *
 * The registry owns every sm_swarm it holds (core/swarm.h) and creates
 * one, with the detector configuration given at creation, the first time
 * an id is asked for, until sm_registry_remove() (a released partition);
 * a worker owns few swarms (tens), each holding many agents.
 *
 * Lookup is a hash table (FNV-1a, open addressing); iteration is in
 * insertion order (a removal keeps the order of the others), so everything built on sm_registry_foreach() is
 * deterministic for a given input.
 *
 * Thread safety: none; one thread at a time per sm_registry.
 */
#ifndef SM_REGISTRY_H
#define SM_REGISTRY_H

#include <stddef.h>

#include "swarm.h"
#include "status.h"

typedef struct sm_registry sm_registry;

/* Creates an empty registry. cfg is copied and must validate
 * (sm_detect_config_validate). Sets *out only on SM_OK. Errors:
 * SM_ERR_INVALID (NULL argument), SM_ERR_CONFIG, SM_ERR_NOMEM. */
sm_status sm_registry_create(sm_registry **out, const sm_detect_config *cfg);
/* Destroys every swarm, then the registry. NULL is a no-op. */
void sm_registry_destroy(sm_registry *reg);

/* The swarm with this id, created on first use. *sw is owned by the
 * registry and stays valid until sm_registry_remove() of its id or
 * sm_registry_destroy(). Errors:
 * SM_ERR_INVALID (NULL, empty id or id of SM_ID_MAX bytes or more; *sw
 * untouched), SM_ERR_NOMEM. */
sm_status sm_registry_get(sm_registry *reg, const char *id, sm_swarm **sw);
/* The swarm with this id, or NULL if it was never created. */
sm_swarm *sm_registry_find(const sm_registry *reg, const char *id);
/* Destroys the swarm with this id and forgets it; the others keep their
 * order, and a later sm_registry_get() of the id creates a fresh swarm.
 * Pointers to the removed swarm die. Must not be called from inside
 * sm_registry_foreach(). O(swarms). Errors: SM_ERR_INVALID (NULL or bad
 * id), SM_ERR_NOT_FOUND. The store is not touched: see
 * sm_persist_forget_swarm() for its blobs. */
sm_status sm_registry_remove(sm_registry *reg, const char *id);
/* Number of swarms held. */
/* How many swarms sm_registry_remove() removed so far: a swarm pointer
 * found while this read N is still valid while it reads N. */
uint64_t sm_registry_removed(const sm_registry *reg);
size_t sm_registry_count(const sm_registry *reg);
/* The detector configuration swarms are created with (owned by reg). */
const sm_detect_config *sm_registry_config(const sm_registry *reg);

/* Turns healing on: every swarm held and created from now on heals with
 * the strategy table and the autonomy setting `spec` (strategies.h),
 * resolved for its id. Before this call no swarm heals. Errors:
 * SM_ERR_INVALID (NULL), SM_ERR_CONFIG (spec does not parse; a sentence
 * in err). */
sm_status sm_registry_set_autonomy(sm_registry *reg, const char *spec,
                                   char *err, size_t errcap);

/* Calls fn for each swarm in insertion order. fn must not create or
 * remove swarms (no sm_registry_get() of a new id, no
 * sm_registry_remove()) during the walk. */
typedef void (*sm_registry_fn)(void *ud, sm_swarm *sw);
void sm_registry_foreach(const sm_registry *reg, sm_registry_fn fn, void *ud);

#endif
