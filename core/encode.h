/*
 * encode.h - a swarm's state as bytes for the store, and back.
 *
 * Used by worker/persist.c; the store never looks inside a blob. A swarm
 * is one swarm blob (the swarm-wide state) plus one agent blob per agent.
 * Both are formats with an explicit little-endian byte layout (encode.c),
 * versioned and checksummed: the swarm blob is a list of versioned
 * sections (unknown sections skipped, older versions migrated), an agent
 * blob a compact variable-length record (~210 bytes for a busy agent).
 * Import vets every field.
 *
 * Dirty tracking: every mutation marks the swarm part and/or the agent it
 * touched dirty; sm_swarm_clear_dirty() is called once the store has
 * committed them.
 */
#ifndef SM_ENCODE_H
#define SM_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "swarm.h"

/* Writes the swarm-wide state into buf if cap is large enough; returns the
 * size needed either way (a few KB; it does not grow with the agents). */
size_t sm_swarm_export(const sm_swarm *sw, void *buf, size_t cap);
/* Replaces the swarm-wide state from a blob of the current or an older
 * version (an older one is migrated and the swarm marked dirty, so the
 * next commit rewrites it in the current format). Errors: SM_ERR_CORRUPT
 * (bad checksum, size, field or id), SM_ERR_VERSION (written by a newer
 * build: keep the blob, do not overwrite it blindly). On error the swarm
 * is unchanged. */
sm_status sm_swarm_import(sm_swarm *sw, const void *buf, size_t len);

/* Whether the swarm-wide part changed since the last clear. */
bool sm_swarm_is_dirty(const sm_swarm *sw);
/* Calls fn for each agent changed since the last clear, in the order they
 * changed (O(changed agents)), with the agent's blob encoded into a stack
 * buffer (no allocation). */
void sm_swarm_visit_dirty(const sm_swarm *sw, sm_agent_visit_fn fn, void *ud);
/* Number of agents changed since the last clear. */
size_t sm_swarm_dirty_agents(const sm_swarm *sw);

/* Agent pages: the store keeps a swarm's agents in pages of SM_AGENT_PAGE
 * (core/agents.h) consecutive table entries, page p holding entries
 * p * SM_AGENT_PAGE onwards; a page's value is their agent blobs one
 * after another (each blob's header gives its size), at most
 * SM_AGENT_PAGE_MAX bytes. Importing the pages in page order, each blob
 * with sm_swarm_import_agent(), rebuilds the same table order. */
#define SM_AGENT_PAGE_MAX 1856u
typedef void (*sm_page_visit_fn)(void *ud, uint32_t page, const void *data,
                                 size_t len, uint32_t agents);
/* Calls fn for each page holding an agent changed since the last clear,
 * in page order (O(changed agents + pages / 64)), with the page encoded
 * into a stack buffer (no allocation). */
void sm_swarm_visit_dirty_pages(sm_swarm *sw, sm_page_visit_fn fn, void *ud);
/* Pages the agents fill now: a stored page from this one on is stale. */
uint32_t sm_swarm_agent_pages(const sm_swarm *sw);
/* Whether an agent changed or was removed since the last clear. */
bool sm_swarm_agents_changed(const sm_swarm *sw);
/* Whether an agent was removed since the last clear. */
bool sm_swarm_agents_removed(const sm_swarm *sw);
/* Size of the agent blob at the start of the len bytes at data, from its
 * header; 0 if there is none there (too short, not an agent blob, a size
 * out of bounds): the rest of a page cannot be split. */
size_t sm_agent_blob_size(const void *data, size_t len);
void sm_swarm_clear_dirty(sm_swarm *sw);
/* Marks the swarm-wide part and every agent dirty: the next commit
 * rewrites all of it (after a commit that was prepared from it failed,
 * its state is known to memory only). No allocation. */
void sm_swarm_mark_all_dirty(sm_swarm *sw);
/* Adds or replaces one agent from its blob. Errors: SM_ERR_CORRUPT,
 * SM_ERR_VERSION (an agent blob of a newer build: keep it), SM_ERR_NOMEM.
 * The agent is not marked dirty. */
sm_status sm_swarm_import_agent(sm_swarm *sw, const void *blob, size_t len);

/* The worker's bus clock (worker/handle.c), as the state committed with
 * it saw it: the latest event time on any swarm, and what it holds back
 * (a far jump one swarm showed, an event time over max_skew one producer
 * showed), and when idle swarms were last looked for. All event time. */
typedef struct sm_bus_state {
    int64_t bus_ms;             /* 0: no time yet */
    int64_t jump_ms;            /* a far-ahead time held; 0: none */
    char jump_swarm[SM_ID_MAX]; /* the swarm that showed it */
    int64_t skew_ms;            /* an event time over max_skew; 0: none */
    char skew_swarm[SM_ID_MAX]; /* the producer that showed it */
    char skew_id[SM_ID_MAX];
    int64_t expired_at_ms;      /* bus time of the last look for idle swarms */
} sm_bus_state;

/* The store's meta record: what the state committed with it reflects.
 * Written in the same commit as the blobs (worker/persist.c). */
typedef struct sm_store_meta {
    uint64_t applied_seq;   /* last input stream sequence applied (0: none);
                               on core NATS, inputs handled since the store
                               began (worker.h) */
    uint64_t config_hash;   /* configuration the state was built under */
    sm_bus_state bus;       /* the bus clock (bus_ms 0: none recorded) */
} sm_store_meta;

/* Writes the meta record into buf if cap is large enough; returns the size
 * needed either way (56 bytes without a bus clock, at most 280 with). */
size_t sm_meta_encode(const sm_store_meta *m, void *buf, size_t cap);
/* Reads a meta record (sections it does not know skipped, fields absent
 * left 0). Sets *m only on SM_OK. Errors: SM_ERR_CORRUPT (magic, size,
 * checksum, section bounds), SM_ERR_VERSION (a newer build wrote it). */
sm_status sm_meta_decode(sm_store_meta *m, const void *buf, size_t len);

#endif
