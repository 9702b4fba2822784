/*
 * world_int.h - the simulated world's insides, shared by world.c (the
 * world) and world_heal.c (the coordinator that acts on it). Not a public
 * header: nothing outside worker/sim/world*.c includes it.
 *
 * Ownership and thread safety as world.h: one sm_world, one thread.
 */
#ifndef SM_WORLD_INT_H
#define SM_WORLD_INT_H

#include "evq.h"
#include "simgen.h"
#include "swarm_medic.pb-c.h"
#include "world.h"

#define PACK_CAP 1024
#define PRIOS 5
#define GB (1024.0 * 1024.0 * 1024.0)
#define MB (1024.0 * 1024.0)
#define TIMEOUT_ROUND_MS 5000
#define STALL_MIN_TASK_MS 12000
#define SCALE_UP_COOLDOWN_MS 15000
#define SCALE_DOWN_COOLDOWN_MS 30000
#define SURGE_SCALE_UP_PENDING 5.0

enum item_what {
    W_REG = 0,      /* AgentLifecycle REGISTERED */
    W_UNREG,        /* AgentLifecycle UNREGISTERED */
    W_HB,           /* Heartbeat */
    W_RES,          /* ResourceSample */
    W_CONS,         /* ConsensusRound of group `agent` */
    W_ARRIVE,       /* a task arrives in the queue (no message) */
    W_ASSIGN,       /* QUEUED, on the agent it was given to */
    W_START,        /* STARTED */
    W_END,          /* COMPLETED, FAILED or TIMED_OUT */
    W_SCALE,        /* the autoscaler looks (no message) */
    W_TOPUP,        /* an operator tops the budget up (no message) */
    W_BURST,        /* a burst of arrivals (no message) */
    W_DIE,          /* an agent dies (no message) */
    W_REVIVE,       /* an agent comes back: REGISTERED */
    W_HEAL,         /* the coordinator carries a command out (no message) */
    W_OUTCOME,      /* HealingOutcome of command `task` */
    W_CANCEL,       /* CANCELLED: a restart or a retry took the task away */
};

enum end_kind { END_OK = 0, END_FAILED, END_TIMED_OUT };

typedef struct witem {
    int64_t ts;
    uint64_t seq;
    uint64_t task;
    uint32_t swarm;
    uint32_t agent;         /* or group, for W_CONS */
    uint32_t dur;
    uint32_t est, used;
    uint32_t epoch;
    uint8_t what, prio, type;
    uint8_t flag;           /* W_ARRIVE: 1 burst; W_END: end_kind | 4 stuck */
    uint8_t attempt;        /* 0 or 1: first try; more: retried */
} witem;

typedef struct wslot {
    uint32_t agent, epoch;
} wslot;

/* A growable FIFO of fixed-size elements. */
typedef struct ring {
    unsigned char *v;
    size_t esz, cap, head, n;
} ring;

typedef struct wagent {
    uint32_t inflight, epoch;
    uint8_t live;           /* 0 off, 1 registered, 2 registering */
    uint8_t down, reserve, dynamic, stuck;
    uint32_t drain;         /* drain_agent under way: its command + 1 */
    uint64_t progress;      /* tokens of finished tasks */
    uint64_t shown;         /* last progress a heartbeat showed */
    uint64_t cur_task;
    int64_t cur_start;
    uint32_t cur_dur, cur_used, stall_at, stall_len;
    int64_t healed_at;      /* a restart: faults begun before spare it */
    witem cur;              /* the task in flight (while cur_dur > 0) */
} wagent;

/* A task whose pending W_END a restart or retry made void. */
typedef struct wvoid {
    uint64_t task;
    uint32_t agent, epoch;
} wvoid;

typedef struct wswarm_st {
    uint64_t rng;
    uint32_t n_static, n_total, quota;
    wagent *ag;
    ring queue[PRIOS];
    ring free_main, free_res;
    uint64_t tasks;
    double base_rate;       /* tasks per second */
    double token_rate;      /* tokens per second, expected */
    double type_cum[SM_WORLD_MAX_TYPES];
    double budget0, budget, used;
    bool topup_pending;
    double mem_saw, mem_step, leak;
    uint32_t registered, dyn_on;
    int64_t last_scale, last_res;
    uint64_t rounds[SM_WORLD_MAX_GROUPS];
    sm_world_gauges g;
    /* The coordinator's marks (all zero while no command came). */
    int64_t paused_until;   /* LOW and BACKGROUND wait until then */
    int64_t group_healed[SM_WORLD_MAX_GROUPS];  /* quorum recovered at */
    ring voids;             /* wvoid */
    witem *recent;          /* the last FAILED or TIMED_OUT tasks */
    size_t n_recent;        /* ever recorded (ring index: mod) */
} wswarm_st;

/* A command the coordinator was handed. */
typedef struct hpend {
    sm_wheal cmd;
    uint32_t swarm;
    int result;             /* HealingOutcome.Result; 0: no outcome */
    bool applied;           /* carried out (W_HEAL done) */
    char detail[128];
} hpend;

struct sm_world {
    sm_world_config cfg;
    wswarm_st *sw;
    uint8_t *fault_done;    /* token_burn: topped up after the end */
    int64_t *fault_healed;  /* a swarm fault the coordinator ended, at */
    int64_t now;            /* event time of the last item popped */
    uint64_t crng;          /* the coordinator's draws */
    hpend *pend;
    size_t n_pend, cap_pend;
    sm_world_heal_stats hs;
    sm_evq events;          /* witems, by (ts, seq) */
    uint64_t count;
    bool done;
    sm_status status;
    char subject[128];
    char task_id[64];
    char name[24];
    uint8_t buf[PACK_CAP];
};

/* ---- world.c, for the coordinator ---- */

/* Schedules an item; false (w->status SM_ERR_NOMEM) when the heap cannot
 * grow. */
bool sm_w_push(sm_world *w, witem it);
/* Schedules a bare item (what, swarm, agent, ts). */
bool sm_w_at(sm_world *w, uint8_t what, uint32_t s, uint32_t a, int64_t ts);
/* Records SM_ERR_NOMEM; false. */
bool sm_w_nomem(sm_world *w);
/* Appends to a growable FIFO; false when it cannot grow. */
bool sm_w_ring_push(ring *r, const void *e);
/* Hands waiting tasks of swarm s to free agents at `now`. */
bool sm_w_dispatch(sm_world *w, uint32_t s, int64_t now);
/* Agent a of swarm s has a free slot. */
bool sm_w_free_slot(sm_world *w, uint32_t s, uint32_t a);
/* Fault f's intensity at event time ts (0 once the coordinator ended it). */
double sm_w_intensity(const sm_world *w, const sm_wfault *f, int64_t ts);
/* Whether fault f touches group g (listed, or all when none). */
bool sm_w_has_group(const sm_wfault *f, uint32_t g);
/* Sets w->subject to swarm.<id>.<kind>.<id>. */
void sm_w_subject(sm_world *w, uint32_t s, const char *kind, const char *id);
/* Packs msg into the world's buffer as *out's payload. */
bool sm_w_pack(sm_world *w, const ProtobufCMessage *msg, sm_sim_msg *out);

/* ---- world_heal.c, for the world ---- */

/* W_HEAL: the coordinator carries command `it->task` out; false on
 * error (w->status says which). */
bool sm_w_on_heal(sm_world *w, const witem *it);
/* A draining agent finished its last task at t: restarted now, the drain
 * command answered after the re-registration. */
bool sm_w_drained(sm_world *w, uint32_t s, uint32_t a, int64_t t);
/* W_OUTCOME: the HealingOutcome of command `it->task`: 1 (a message in
 * *out) or -1. */
int sm_w_on_outcome(sm_world *w, const witem *it, sm_sim_msg *out);

#endif
