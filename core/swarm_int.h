/*
 * swarm_int.h - the inside of an sm_swarm, shared by the core modules that
 * work on it (swarm.c, agents.c, episode.c, detectors.c, encode.c). Not
 * for the worker: it sees swarm.h only.
 *
 * Layout. An sm_swarm holds an sm_swarm_state (the swarm-wide part:
 * clock, swarm statistics, gauges, swarm-wide episodes, consensus ring),
 * the agent table (agents.h) and a little bookkeeping that is not
 * persisted (dirty flags, expiry scan). What is persisted, and how, is
 * encode.c's business: the structs here are free to change.
 */
#ifndef SM_SWARM_INT_H
#define SM_SWARM_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "agents.h"
#include "baseline.h"
#include "forecast.h"
#include "heal.h"
#include "pattern.h"
#include "decision.h"
#include "swarm.h"
#include "window.h"

#define TASK_DONE 1u    /* finished: completed, failed or timed out */
#define TASK_OK 2u      /* completed */
#define TASK_RATIO 4u   /* the value is duration / type baseline, x 1000;
                           without it, the raw duration (ms) */

#define EDGE_EPS 1e-9
#define MAD_SCALE 1.4826
#define TS_MAX INT64_C(253402300799999)     /* 9999-12-31T23:59:59.999Z */
#define SM_RECOMPUTE_EVERY 256  /* new samples before the median is redone */

/* A swarm-wide bottleneck episode (one per type). */
typedef struct sm_episode {
    int64_t raised_at_ms;
    double impact;
    uint32_t raised;
    uint32_t severity;
    char subject[SM_ID_MAX];
} sm_episode;

enum { G_TOKEN, G_QUOTA, G_QUEUE, G_COUNT };

/* The latest figure of a resource gauge and its debounce runs. */
typedef struct sm_gauge {
    int64_t last_ms;            /* ts of the latest sample (if have) */
    double value;               /* ratio, active agents, pending tasks */
    double a, b;                /* token: used, budget; quota: quota */
    uint32_t have;
    uint32_t over_run;          /* consecutive samples over the raise */
    uint32_t under_run;         /* consecutive samples under the clear */
    uint32_t reserved;
    char source[SM_ID_MAX];
} sm_gauge;

/* A consensus group: its rounds in the window and its own episode. A
 * swarm follows SM_GROUPS groups; a new one takes the slot of the one
 * heard from least recently (never a raised one). */
#define SM_GROUPS 8
typedef struct sm_group {
    char name[SM_ID_MAX];
    uint32_t used;
    uint32_t reserved;
    int64_t last_ms;            /* event time of its latest round */
    double llr;                 /* timeout evidence: a CUSUM of the log
                                   likelihood ratio, degraded vs healthy */
    sm_ring rounds;             /* counter 0: rounds, 1: timeouts */
    sm_episode ep;              /* its consensus_timeout episode */
    uint32_t q_below;           /* consecutive rounds below their quorum */
    uint32_t q_above;           /* consecutive rounds at or above it */
    sm_episode qep;             /* its quorum_loss failure */
} sm_group;

/* Swarm-wide failures, one each, on the latest resource sample. */
enum { F_TOKEN, F_MEMORY, F_QUEUE, F_COUNT };

/* A standing prediction (predict.c). */
typedef struct sm_pred_ep {
    uint32_t raised;
    uint32_t source;            /* sm_pred_source */
    int64_t raised_at_ms;
    int64_t eta_ms;             /* failure expected at (event time) */
    int64_t published_ms;       /* its last RAISED or UPDATED */
    double confidence;
    char subject[SM_ID_MAX];
} sm_pred_ep;

/* The ledger (predict.c): what became of each prediction, per source and
 * per failure type (rows are swarm.h's sm_pred_tally). */
typedef sm_pred_tally sm_ledger_row;

typedef struct sm_ledger {
    sm_ledger_row by_source[SM_SRC_COUNT + 1];  /* [0]: all */
    sm_ledger_row by_type[SM_FAIL_MAX + 1];     /* [0] unused */
} sm_ledger;

/* Healing (heal.c). An episode being healed: the decision it answers and
 * the command in flight, or the next try waiting. */
#define SM_HEAL_EPS 32
#define SM_HEAL_RESTARTS 32

enum {
    HEAL_WAIT = 1,              /* a command is out: waiting for its verdict */
    HEAL_BACKOFF = 2,           /* the last failed: next try at next_ms */
    HEAL_HELD = 3,              /* a restart held by the quorum guard */
    HEAL_SPENT = 4,             /* escalated or observed only: nothing more
                                   until the episode ends */
};

enum {
    HEAL_OVER_NO = 0,
    HEAL_OVER_GOOD = 1,         /* the failure resolved; the prediction
                                   was withdrawn; the bottleneck cleared */
    HEAL_OVER_ENDED = 2,        /* it ended otherwise: agent gone,
                                   prediction fulfilled */
};

typedef struct sm_heal_ep {
    uint8_t used;
    uint8_t phase;              /* HEAL_* */
    uint8_t kind;               /* sm_decision_kind answered */
    uint8_t strategy;           /* index of the current command's strategy */
    uint8_t tries;              /* that strategy's tries this episode */
    uint8_t attempt;            /* commands issued (escalation included) */
    uint8_t outcome;            /* the coordinator's result, 0: none yet */
    uint8_t over;               /* HEAL_OVER_* */
    uint8_t autonomy;           /* of the current command */
    uint8_t action;             /* of the current command */
    uint8_t task_done;          /* retry: 1 the task completed, 2 it failed */
    uint8_t restarts;           /* the current command restarts the agent */
    uint8_t task_slot;          /* task type slot (retry), SM_TYPE_NONE */
    uint8_t restarted;          /* the agent registered after the command */
    uint8_t ev_signal;          /* the answered decision's evidence: its
                                   signal (sm_signal), ... */
    uint8_t reserved;
    int32_t type;               /* sm_fail_type or sm_bn_type */
    uint32_t reserved2;
    uint64_t answers;           /* id of the decision answered */
    uint64_t command;           /* id of the current command */
    int64_t first_ms;           /* first evidence */
    int64_t detected_ms;        /* the answered decision's time */
    int64_t commanded_ms;
    int64_t deadline_ms;
    int64_t next_ms;            /* BACKOFF: next try; HELD: give up at */
    int64_t over_ms;            /* when it went over */
    char subject[SM_ID_MAX];
    char task[SM_ID_MAX];
    char agent[SM_ID_MAX];      /* the current command's agent */
    char ev_id[SM_ID_MAX];      /* ... the entity of that input, ... */
    int64_t ev_ts_ms;           /* ... its event time, ... */
    int64_t ev_from_ms;         /* ... and its window's start */
} sm_heal_ep;

/* A restart commanded (the caps count them). */
typedef struct sm_heal_restart {
    uint64_t agent;             /* FNV-1a of the id; 0: empty */
    int64_t at_ms;
} sm_heal_restart;

/* A consensus group's latest round as the quorum guard sees it. */
typedef struct sm_heal_group {
    uint64_t name;              /* FNV-1a; 0: empty */
    int64_t at_ms;
    int32_t spare;              /* participants - quorum */
    uint32_t reserved;
} sm_heal_group;

/* Healing analytics: what became of commands (swarm.h). */
typedef sm_heal_tally sm_heal_row;

typedef struct sm_heal_state {
    int64_t tick;               /* the tick of the last full look */
    uint32_t n_open;            /* episodes used */
    uint32_t dropped;           /* episodes not healed: the table was full */
    sm_heal_ep ep[SM_HEAL_EPS];
    uint32_t restart_head;
    uint32_t reserved;
    sm_heal_restart restarts[SM_HEAL_RESTARTS];
    sm_heal_group groups[SM_GROUPS];
    sm_heal_row by_action[SM_ACT_COUNT + 1];
    sm_heal_row by_type[SM_FAIL_MAX + 1];
    sm_heal_row by_strategy[SM_HEAL_MAX_STRATEGIES];
} sm_heal_state;

typedef struct sm_swarm_state {
    char id[SM_ID_MAX];
    int64_t now_ms;
    int64_t last_event_ms;      /* latest time of an event of the swarm's
                                   own (bus ticks do not count); 0: none */
    int64_t tick;               /* floor(now / tick_ms) at the last sweep */
    int64_t stats_tick;         /* tick of the last median recompute */
    double median;              /* swarm median duration ratio (x 1000)
                                   over the slow horizon */
    double mad;                 /* its median absolute deviation */
    double spread;              /* 1.4826 x MAD of the log ratios: the
                                   swarm's duration spread within a type
                                   (sigma of a lognormal); 0: unknown */
    uint32_t median_n;          /* samples behind median */
    uint32_t new_samples;       /* since the last recompute */
    uint32_t started;
    uint32_t stats_dirty;
    sm_gauge gauges[G_COUNT];
    sm_episode ep[SM_BN_COUNT + 1]; /* by type, swarm-wide ones only:
                                   [SM_BN_SLOW_AGENT] and
                                   [SM_BN_CONSENSUS_TIMEOUT] unused (agent
                                   and group episodes live with them) */
    sm_group groups[SM_GROUPS];
    sm_episode fail[F_COUNT];   /* token, memory, queue exhaustion */
    uint32_t fail_run[F_COUNT]; /* consecutive samples over the line */
    sm_pred_ep pred[F_COUNT];   /* their predictions */
    sm_trend trend[F_COUNT];    /* tokens used, memory used, pending */
    sm_forecast fc[F_COUNT];    /* the forecast over each */
    double fc_limit[F_COUNT];   /* the limit last forecast against (a
                                   budget top-up moves it) */
    double fc_value[F_COUNT];   /* the latest sample's value */
    double topup_seen;          /* highest usage ratio at which operators
                                   were seen to top the budget up; 0: never */
    sm_pattern_state pat;       /* happenings learned from (predict.c) */
    sm_pred_ep pat_pred[SM_FAIL_MAX + 1];   /* pattern predictions by type */
    sm_ledger ledger;
    sm_samples dur_hdr;         /* duration ratios of completed tasks */
    sm_sample dur[SM_SWARM_SAMPLES];
    sm_baselines types;         /* per task type duration baselines */
    sm_heal_state heal;         /* healing episodes and analytics */
} sm_swarm_state;

/* Log-likelihood terms of the sequential tests, fixed by the config
 * (computed once at create: no log() per event for them). */
typedef struct sm_llr_terms {
    double slow_m0, slow_m1;    /* log slow_ok, log slow_high */
    double slow_mid;            /* sqrt(slow_ok x slow_high): a ratio under
                                   it only ever lowers the evidence */
    double fail_ok, fail_bad;   /* a completed / a failed task */
    double cons_ok, cons_timeout;   /* a round that ended / timed out */
} sm_llr_terms;

struct sm_swarm {
    sm_detect_config cfg;
    sm_llr_terms llr;
    sm_trend_config trend_cfg[F_COUNT];     /* sm_fc_defaults, at create */
    sm_forecast_config fc_cfg[F_COUNT];
    sm_swarm_state st;
    bool dirty;                 /* swarm-wide part changed since the commit */
    sm_agents ag;
    int64_t expire_at_ms;       /* event time of the last expiry scan */
    int64_t expire_retention_ms;    /* its retention; -1 before the first */
    sm_minter mint;             /* decision ids of the latest ms (decision.h) */
    sm_heal_config heal;        /* strategies and autonomy (not persisted) */
    double scratch[SM_SWARM_SAMPLES];
};

/* Length of s if it is a usable id (< SM_ID_MAX bytes), else -1. */
static inline int sm_id_len(const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = 0; i < SM_ID_MAX; i++) {
        if (s[i] == '\0')
            return i;
    }
    return -1;
}

/* Copies s into a zero-filled SM_ID_MAX buffer (s already vetted). */
static inline void sm_id_copy(char dst[SM_ID_MAX], const char *s)
{
    memset(dst, 0, SM_ID_MAX);
    int n = sm_id_len(s);
    if (n > 0)
        memcpy(dst, s, (size_t)n);
}

static inline bool sm_ts_ok(int64_t ts_ms)
{
    return ts_ms >= 0 && ts_ms <= TS_MAX;
}

/* First event time inside the window. */
static inline int64_t sm_window_since(const sm_swarm *sw)
{
    return sw->st.now_ms - sw->cfg.window_ms + 1;
}

/* First event time inside the slow-agent horizon. */
static inline int64_t sm_horizon_since(const sm_swarm *sw)
{
    return sw->st.now_ms - sw->cfg.slow_horizon_ms + 1;
}

#endif
