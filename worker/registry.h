/*
 * registry.h - the swarms a worker owns: swarm id -> sm_swarm.
 *
 * The registry owns every sm_swarm it holds (core/swarm.h) and creates
 * one, with the detector configuration given at creation, the first time
 * an id is asked for. Swarms are never removed while the registry lives;
 * a worker owns few swarms (tens), each holding many agents.
 *
 * Lookup is a hash table (FNV-1a, open addressing); iteration is in
 * insertion order, so everything built on sm_registry_foreach() is
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
 * registry and stays valid until sm_registry_destroy(). Errors:
 * SM_ERR_INVALID (NULL, empty id or id of SM_ID_MAX bytes or more; *sw
 * untouched), SM_ERR_NOMEM. */
sm_status sm_registry_get(sm_registry *reg, const char *id, sm_swarm **sw);
/* The swarm with this id, or NULL if it was never created. */
sm_swarm *sm_registry_find(const sm_registry *reg, const char *id);
/* Number of swarms held. */
size_t sm_registry_count(const sm_registry *reg);
/* The detector configuration swarms are created with (owned by reg). */
const sm_detect_config *sm_registry_config(const sm_registry *reg);

/* Calls fn for each swarm in insertion order. fn must not create swarms
 * (no sm_registry_get() of a new id) during the walk. */
typedef void (*sm_registry_fn)(void *ud, sm_swarm *sw);
void sm_registry_foreach(const sm_registry *reg, sm_registry_fn fn, void *ud);

#endif
