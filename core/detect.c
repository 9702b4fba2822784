/*
 * detect.c - the five bottleneck detectors over one swarm's windows.
 *
 * Layout. An sm_swarm holds a swarm_state (POD: exported as the swarm
 * blob), a dense array of agent records with an open-addressing index
 * (linear probing, FNV-1a of the id, doubled when the load would pass 0.5)
 * and an intrusive list of the raised agents, kept in (raised_at, id) order
 * so that the tick sweep visits them in an order that does not depend on
 * how the table was filled (a replay and an import give the same order).
 *
 * Design choices a reader should know:
 *  - Late events (ts older than the swarm clock) never move the clock back.
 *    Inside the window they count (ring slot of their ts; task samples keep
 *    their ts); older than the window they only refresh last-seen. A gauge
 *    sample older than the gauge's latest one is ignored.
 *  - A task sample is in the window while ts > now - window_ms.
 *  - Event timestamps outside [0, year 9999] are rejected (SM_ERR_INVALID)
 *    so that window arithmetic can never overflow; sm_swarm_advance()
 *    ignores such a time.
 *  - A raised slow agent is held (neither cleared nor updated) while the
 *    swarm has fewer than slow_min_swarm_tasks durations in the window:
 *    there is no trustworthy typical duration to compare with. It still
 *    resolves with "no_data" once none of its own tasks is left.
 *  - Lifecycle "unregistered" keeps the record (marked unregistered, task
 *    samples dropped so a re-registered agent starts clean) and resolves a
 *    raised slow-agent episode with reason "no_data"; sm_swarm_expire()
 *    removes the record later. Unregistering an unknown agent only moves
 *    the clock.
 *  - A gauge (token, quota, queue) whose latest sample is older than the
 *    window is stale: the tick sweep resolves it with "no_data" and resets
 *    its debounce runs.
 *  - Swarm-wide episodes (token, quota, queue, consensus) are one per type;
 *    their subject is the source or group that was reporting when raised.
 */
#include "detect.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "window.h"

#define BLOB_MAGIC_SWARM 0x57534d53u     /* "SMSW" little-endian */
#define BLOB_MAGIC_AGENT 0x47414d53u     /* "SMAG" little-endian */
#define BLOB_VERSION 2u                 /* swarm blobs (a struct copy) */
#define BLOB_VERSION_AGENT 3u           /* agent blobs (encoded, see below) */

#define TASK_DONE 1u    /* finished: completed, failed or timed out */
#define TASK_OK 2u      /* completed: the value is a duration sample */

#define AGENT_REGISTERED 1u
#define AGENT_UNREGISTERED 2u
#define AGENT_DYNAMIC 4u

#define NONE UINT32_MAX
#define EDGE_EPS 1e-9
#define MAD_SCALE 1.4826
#define TABLE_INIT 64u
#define TS_MAX INT64_C(253402300799999)     /* 9999-12-31T23:59:59.999Z */
#define WINDOW_MAX INT64_C(2592000000)      /* 30 days */

/* Fixed header of every blob; the body follows. check is FNV-1a of the
 * body bytes. */
typedef struct blob_hdr {
    uint32_t magic;
    uint32_t version;
    uint32_t size;              /* whole blob, header included */
    uint32_t reserved;
    uint64_t check;
} blob_hdr;

typedef struct agent_state {
    char id[SM_ID_MAX];
    int64_t last_seen_ms;
    int64_t raised_at_ms;
    int64_t clear_since_ms;     /* clear condition holds since; 0: not */
    double impact;
    sm_samples tasks_hdr;
    uint8_t raised;
    uint8_t severity;
    uint8_t flags;              /* AGENT_* */
    uint8_t reserved[5];
    sm_sample tasks[SM_AGENT_TASKS];
} agent_state;

typedef struct agent {
    agent_state s;              /* the exported part */
    uint32_t prev, next;        /* raised list (indexes), NONE at the ends */
    uint32_t dirty;             /* position in the dirty list + 1; 0: clean */
    uint32_t hash;              /* low 32 bits of the id's FNV-1a */
} agent;

/* Agent blob (version BLOB_VERSION_AGENT): the blob_hdr (host order, as
 * for the swarm blob; size = whole blob, check over the body), then a
 * variable-length body, little-endian, fixed-width fields, no padding:
 *
 *   off  size  field
 *     0     8  i64 last_seen_ms               0..TS_MAX
 *     8     8  i64 raised_at_ms               0..TS_MAX
 *    16     8  i64 clear_since_ms             0..TS_MAX (0: not clearing)
 *    24     8  f64 impact (IEEE-754 bits)
 *    32     1  u8  raised                     0..1
 *    33     1  u8  severity                   0..SM_SEV_CRITICAL (>= LOW
 *                                             when raised)
 *    34     1  u8  flags                      AGENT_* bits only
 *    35     1  u8  id length L                1..SM_ID_MAX-1
 *    36     L  id bytes (no NUL, no padding)
 *  36+L     1  u8  sample count N             0..SM_AGENT_TASKS
 *  37+L        N sample records, oldest first, each one of
 *                narrow (9 bytes):  u8 tag, u32 age, u32 value
 *                wide  (13 bytes):  u8 tag, i64 ts_ms, u32 value
 *              tag: bits 0-1 the sample flags (TASK_DONE must be set),
 *              bit 7 (SAMPLE_WIDE) the wide form, other bits zero.
 *              age = last_seen_ms - ts_ms; the narrow form is used, and
 *              required, whenever age fits in a u32; ts_ms in 0..TS_MAX.
 *
 * The body ends right after the last record (size must match exactly).
 * Only the held samples are stored: import rebuilds the ring with them in
 * slots 0..N-1 (head N % cap), which holds the same samples in the same
 * order, so the restored agent behaves, and exports, identically. A busy
 * agent with a ~12-byte id is 24 + 36 + 12 + 1 + 16 * 9 = 217 bytes. */
#define SAMPLE_WIDE 0x80u
#define SAMPLE_FLAGS (TASK_DONE | TASK_OK)
#define AGENT_BODY_FIXED 36u
#define AGENT_BLOB_MAX (sizeof(blob_hdr) + AGENT_BODY_FIXED + \
                        (SM_ID_MAX - 1) + 1 + SM_AGENT_TASKS * 13u)

typedef struct episode {
    int64_t raised_at_ms;
    double impact;
    uint32_t raised;
    uint32_t severity;
    char subject[SM_ID_MAX];
} episode;

enum { G_TOKEN, G_QUOTA, G_QUEUE, G_COUNT };

typedef struct gauge {
    int64_t last_ms;            /* ts of the latest sample (if have) */
    double value;               /* ratio, active agents, pending tasks */
    double a, b;                /* token: used, budget; quota: quota */
    uint32_t have;
    uint32_t over_run;          /* consecutive samples over the raise */
    uint32_t under_run;         /* consecutive samples under the clear */
    uint32_t reserved;
    char source[SM_ID_MAX];
} gauge;

typedef struct swarm_state {
    char id[SM_ID_MAX];
    int64_t now_ms;
    int64_t tick;               /* floor(now / tick_ms) at the last sweep */
    int64_t stats_tick;         /* tick of the last median recompute */
    double median;              /* swarm median duration in the window */
    double mad;                 /* its median absolute deviation */
    uint32_t median_n;          /* samples behind median */
    uint32_t new_samples;       /* since the last recompute */
    uint32_t started;
    uint32_t stats_dirty;
    gauge gauges[G_COUNT];
    episode ep[SM_BN_COUNT + 1];    /* by type; [SM_BN_SLOW_AGENT] unused */
    char group[SM_ID_MAX];      /* latest consensus group */
    sm_ring rounds;             /* counter 0: rounds, 1: timeouts */
    sm_samples dur_hdr;
    sm_sample dur[SM_SWARM_SAMPLES];
} swarm_state;

typedef struct swarm_blob {
    blob_hdr hdr;
    swarm_state st;
} swarm_blob;

/* A table slot carries the id's hash next to the agent index, so a probe
 * compares hashes without touching the (large, cold) agent records. */
typedef struct tslot {
    uint32_t e;                 /* agent index + 1, 0 = empty */
    uint32_t h;                 /* low 32 bits of the id's FNV-1a */
} tslot;

struct sm_swarm {
    sm_detect_config cfg;
    swarm_state st;
    bool dirty;
    agent *agents;              /* dense, n_agents used of table_cap / 2 */
    uint32_t n_agents;
    tslot *table;               /* open addressing, linear probing */
    uint32_t table_cap;         /* power of two */
    uint32_t raised_head, raised_tail;
    uint32_t *dirty_list;       /* indexes of dirty agents, same capacity
                                   as agents: a commit visits only these */
    uint32_t n_dirty;
    int64_t expire_at_ms;       /* event time of the last expiry scan */
    int64_t expire_retention_ms;    /* its retention; -1 before the first */
    double scratch[SM_SWARM_SAMPLES];
};

/* What the slow-agent rule sees of one agent right now. */
typedef struct agent_view {
    uint32_t finished;
    uint32_t completed;
    double success;             /* completed / finished, 1 if none */
    double median;              /* agent median duration */
    double ratio;               /* agent / swarm median */
    bool ratio_known;
    bool ratio_over;            /* the duration rule fires */
    bool success_under;         /* the success rule fires */
    double impact;
    const char *reason;
} agent_view;

/* ------------------------------------------------------------ strings */

const char *sm_bn_type_str(sm_bn_type t)
{
    switch (t) {
    case SM_BN_TOKEN_EXHAUSTION:  return "token_exhaustion";
    case SM_BN_QUOTA_EXCEEDED:    return "quota_exceeded";
    case SM_BN_SLOW_AGENT:        return "slow_agent";
    case SM_BN_QUEUE_BACKLOG:     return "queue_backlog";
    case SM_BN_CONSENSUS_TIMEOUT: return "consensus_timeout";
    }
    return "unknown";
}

const char *sm_severity_str(sm_severity s)
{
    switch (s) {
    case SM_SEV_LOW:      return "low";
    case SM_SEV_MEDIUM:   return "medium";
    case SM_SEV_HIGH:     return "high";
    case SM_SEV_CRITICAL: return "critical";
    }
    return "unknown";
}

const char *sm_transition_str(sm_transition_kind k)
{
    switch (k) {
    case SM_TR_RAISED:   return "raised";
    case SM_TR_UPDATED:  return "updated";
    case SM_TR_RESOLVED: return "resolved";
    }
    return "unknown";
}

sm_severity sm_severity_of(double impact)
{
    if (impact >= 0.8)
        return SM_SEV_CRITICAL;
    if (impact >= 0.6)
        return SM_SEV_HIGH;
    if (impact >= 0.4)
        return SM_SEV_MEDIUM;
    return SM_SEV_LOW;
}

/* Lower edge of a severity's impact band. */
static double band_lower(uint32_t sev)
{
    switch (sev) {
    case SM_SEV_CRITICAL: return 0.8;
    case SM_SEV_HIGH:     return 0.6;
    case SM_SEV_MEDIUM:   return 0.4;
    default:              return 0.0;
    }
}

/* The severity to publish for `impact` when `current` is published: up at
 * once, down only below the current band's edge minus the margin. */
static uint32_t severity_step(const sm_detect_config *c, uint32_t current,
                              double impact)
{
    uint32_t sev = (uint32_t)sm_severity_of(impact);
    if (sev >= current || impact >= band_lower(current) - c->severity_margin)
        return sev >= current ? sev : current;
    return sev;
}

static const char *const recs_token[] = {
    "Increase token budget",
    "Optimize prompts to use fewer tokens",
    "Defer low-priority tasks",
    NULL,
};
static const char *const recs_quota[] = {
    "Increase agent quota",
    "Enable dynamic scaling",
    NULL,
};
static const char *const recs_slow[] = {
    "Replace or restart the agent",
    "Reduce task complexity",
    "Route new tasks to healthier agents",
    NULL,
};
static const char *const recs_queue[] = {
    "Add agents",
    "Prioritize critical tasks",
    "Shed or defer background work",
    NULL,
};
static const char *const recs_consensus[] = {
    "Reduce the consensus threshold",
    "Check participant health",
    "Increase the round timeout",
    NULL,
};
static const char *const recs_none[] = { NULL };

const char *const *sm_bn_recommendations(sm_bn_type t)
{
    switch (t) {
    case SM_BN_TOKEN_EXHAUSTION:  return recs_token;
    case SM_BN_QUOTA_EXCEEDED:    return recs_quota;
    case SM_BN_SLOW_AGENT:        return recs_slow;
    case SM_BN_QUEUE_BACKLOG:     return recs_queue;
    case SM_BN_CONSENSUS_TIMEOUT: return recs_consensus;
    }
    return recs_none;
}

/* ------------------------------------------------------------- config */

void sm_detect_config_default(sm_detect_config *cfg)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->window_ms = 60000;
    cfg->tick_ms = 1000;
    cfg->gauge_min_samples = 2;
    cfg->token_raise = 0.80;
    cfg->token_critical = 0.90;
    cfg->token_clear = 0.75;
    cfg->quota_clear = 0.90;
    cfg->slow_raise = 2.0;
    cfg->slow_high = 3.0;
    cfg->slow_clear = 1.5;
    cfg->slow_mad_k = 3.0;
    cfg->success_raise = 0.70;
    cfg->success_clear = 0.80;
    cfg->slow_min_agent_tasks = 5;
    cfg->success_min_tasks = 10;
    cfg->slow_min_swarm_tasks = 20;
    cfg->severity_margin = 0.05;
    cfg->slow_clear_hold_ms = 5000;
    cfg->queue_raise = 50;
    cfg->queue_critical = 200;
    cfg->queue_clear = 40;
    cfg->consensus_raise = 0.10;
    cfg->consensus_high = 0.20;
    cfg->consensus_clear = 0.05;
    cfg->consensus_min_rounds = 10;
}

/* The first broken rule, as a static sentence, or NULL. Comparisons are
 * written so that NaN fails them. */
static const char *config_problem(const sm_detect_config *c)
{
    if (!(c->window_ms > 0))
        return "window_ms must be greater than 0";
    if (!(c->tick_ms > 0))
        return "tick_ms must be greater than 0";
    if (c->window_ms > WINDOW_MAX)
        return "window_ms must be at most 30 days (2592000000)";
    if (c->window_ms % c->tick_ms != 0)
        return "window_ms must be a whole multiple of tick_ms";
    if (c->gauge_min_samples < 1)
        return "gauge_min_samples must be at least 1";
    if (!(c->token_clear > 0.0))
        return "token_clear must be greater than 0";
    if (!(c->token_clear < c->token_raise))
        return "token_clear must be below token_raise";
    if (!(c->token_raise < c->token_critical))
        return "token_raise must be below token_critical";
    if (!(c->token_critical < 1.0))
        return "token_critical must be below 1";
    if (!(c->quota_clear > 0.0 && c->quota_clear <= 1.0))
        return "quota_clear must be in (0, 1]";
    if (!(c->slow_clear >= 1.0))
        return "slow_clear must be at least 1";
    if (!(c->slow_clear < c->slow_raise))
        return "slow_clear must be below slow_raise";
    if (!(c->slow_raise < c->slow_high))
        return "slow_raise must be below slow_high";
    if (!(c->slow_mad_k >= 0.0))
        return "slow_mad_k must not be negative";
    if (!(c->success_raise > 0.0))
        return "success_raise must be greater than 0";
    if (!(c->success_raise < c->success_clear))
        return "success_raise must be below success_clear";
    if (!(c->success_clear <= 1.0))
        return "success_clear must be at most 1";
    if (c->success_min_tasks < 1 || c->success_min_tasks > SM_AGENT_TASKS)
        return "success_min_tasks must be between 1 and 16";
    if (c->slow_min_agent_tasks < 1 ||
        c->slow_min_agent_tasks > SM_AGENT_TASKS)
        return "slow_min_agent_tasks must be between 1 and 16";
    if (!(c->severity_margin >= 0 && c->severity_margin < 0.2))
        return "severity_margin must be in [0, 0.2)";
    if (c->slow_clear_hold_ms < 0 || c->slow_clear_hold_ms > c->window_ms)
        return "slow_clear_hold_ms must be between 0 and window_ms";
    if (c->slow_min_swarm_tasks < 1 ||
        c->slow_min_swarm_tasks > SM_SWARM_SAMPLES)
        return "slow_min_swarm_tasks must be between 1 and 512";
    if (c->queue_clear < 1)
        return "queue_clear must be at least 1";
    if (!(c->queue_clear < c->queue_raise))
        return "queue_clear must be below queue_raise";
    if (!(c->queue_raise < c->queue_critical))
        return "queue_raise must be below queue_critical";
    if (!(c->consensus_clear > 0.0))
        return "consensus_clear must be greater than 0";
    if (!(c->consensus_clear < c->consensus_raise))
        return "consensus_clear must be below consensus_raise";
    if (!(c->consensus_raise < c->consensus_high))
        return "consensus_raise must be below consensus_high";
    if (!(c->consensus_high <= 1.0))
        return "consensus_high must be at most 1";
    if (c->consensus_min_rounds < 1)
        return "consensus_min_rounds must be at least 1";
    return NULL;
}

sm_status sm_detect_config_validate(const sm_detect_config *cfg,
                                    const char **why)
{
    const char *problem = cfg == NULL ? "configuration is missing"
                                      : config_problem(cfg);
    if (why != NULL)
        *why = problem;
    return problem == NULL ? SM_OK : SM_ERR_CONFIG;
}

/* ------------------------------------------------------------ helpers */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b) != 0 && a < 0)
        q--;
    return q;
}

/* Length of s if it is a usable id (< SM_ID_MAX bytes), else -1. */
static int id_len(const char *s)
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
static void id_copy(char dst[SM_ID_MAX], const char *s)
{
    memset(dst, 0, SM_ID_MAX);
    int n = id_len(s);
    if (n > 0)
        memcpy(dst, s, (size_t)n);
}

static bool ts_ok(int64_t ts_ms)
{
    return ts_ms >= 0 && ts_ms <= TS_MAX;
}

static double clamp01(double x)
{
    if (!(x > 0.0))
        return 0.0;
    return x > 1.0 ? 1.0 : x;
}

/* Impact inside the band [lo, hi): lo + (hi - lo) * frac, frac clamped to
 * [0, 1], capped just below hi unless hi is the top of the scale. */
static double band(double lo, double hi, double frac)
{
    double v = lo + (hi - lo) * clamp01(frac);
    if (hi < 1.0 && v > hi - EDGE_EPS)
        v = hi - EDGE_EPS;
    return v;
}

static int64_t window_since(const sm_swarm *sw)
{
    return sw->st.now_ms - sw->cfg.window_ms + 1;
}

/* Checksum of a blob body, 8 bytes a step (a multiply-xorshift fold):
 * byte-wise FNV over every dirty agent was a tenth of a 100k-agent
 * commit. Host byte order, like the blobs themselves. */
static uint64_t blob_check(const void *body, size_t n)
{
    const unsigned char *p = body;
    uint64_t h = SM_HASH_INIT ^ (uint64_t)n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, sizeof w);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    return sm_hash_bytes(h, p + i, n - i);
}

static void blob_hdr_fill(blob_hdr *h, uint32_t magic, uint32_t version,
                          size_t size, const void *body, size_t body_len)
{
    h->magic = magic;
    h->version = version;
    h->size = (uint32_t)size;
    h->reserved = 0;
    h->check = blob_check(body, body_len);
}

static bool blob_hdr_ok(const blob_hdr *h, uint32_t magic, uint32_t version,
                        size_t size, const void *body, size_t body_len)
{
    return h->magic == magic && h->version == version &&
           h->size == size && h->reserved == 0 &&
           h->check == blob_check(body, body_len);
}

/* -------------------------------------------------------- transitions */

static uint64_t decision_id(const sm_transition *t)
{
    uint64_t h = sm_hash_str(SM_HASH_INIT, t->swarm);
    h = sm_hash_u64(h, (uint64_t)t->type);
    h = sm_hash_str(h, t->subject);
    h = sm_hash_u64(h, (uint64_t)t->raised_at_ms);
    h = sm_hash_u64(h, (uint64_t)t->kind);
    if (t->kind == SM_TR_UPDATED) {
        h = sm_hash_u64(h, (uint64_t)t->at_ms);
        h = sm_hash_u64(h, (uint64_t)t->severity);
    }
    return h;
}

static void tr_init(const sm_swarm *sw, sm_transition *t, sm_bn_type type,
                    sm_transition_kind kind, const char *subject,
                    int64_t raised_at_ms, double impact, uint32_t severity,
                    const char *reason)
{
    memset(t, 0, sizeof *t);
    t->type = type;
    t->kind = kind;
    t->severity = (sm_severity)severity;
    t->impact = impact;
    t->swarm = sw->st.id;
    t->subject = subject;
    t->reason = reason;
    t->at_ms = sw->st.now_ms;
    t->raised_at_ms = raised_at_ms;
    t->window_end_ms = sw->st.now_ms;
    t->window_start_ms = sw->st.now_ms - sw->cfg.window_ms;
}

static void tr_metric(sm_transition *t, const char *name, double value,
                      double threshold, uint32_t samples)
{
    if (t->n_metrics >= SM_MAX_METRICS)
        return;
    t->metrics[t->n_metrics++] = (sm_metric){name, value, threshold, samples};
}

static void tr_send(sm_transition *t, sm_emit_fn emit, void *ud)
{
    t->decision_id = decision_id(t);
    if (emit != NULL)
        emit(ud, t);
}

/* ------------------------------------------------------- agent table */

static uint32_t hash32(const char *id)
{
    return (uint32_t)sm_hash_str(SM_HASH_INIT, id);
}

/* Table slot holding id, or the empty slot where it would go. */
static uint32_t table_slot(const sm_swarm *sw, const char *id, uint32_t h,
                           bool *found)
{
    uint32_t mask = sw->table_cap - 1;
    uint32_t i = h & mask;
    for (;;) {
        uint32_t e = sw->table[i].e;
        if (e == 0) {
            *found = false;
            return i;
        }
        if (sw->table[i].h == h && strcmp(sw->agents[e - 1].s.id, id) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static agent *agent_find(const sm_swarm *sw, const char *id)
{
    bool found;
    uint32_t slot = table_slot(sw, id, hash32(id), &found);
    return found ? &sw->agents[sw->table[slot].e - 1] : NULL;
}

/* Doubles the table and the agent array. On failure nothing changed that
 * matters: the array may have grown, the table and contents are intact. */
static sm_status table_grow(sm_swarm *sw)
{
    uint32_t cap = sw->table_cap * 2;
    if (cap < sw->table_cap)
        return SM_ERR_NOMEM;
    agent *grown = realloc(sw->agents, (size_t)(cap / 2) * sizeof *grown); /* SM_ALLOC_OK */
    if (grown == NULL)
        return SM_ERR_NOMEM;
    sw->agents = grown;
    uint32_t *list = realloc(sw->dirty_list, (size_t)(cap / 2) * sizeof *list); /* SM_ALLOC_OK */
    if (list == NULL)
        return SM_ERR_NOMEM;
    sw->dirty_list = list;
    tslot *table = calloc(cap, sizeof *table); /* SM_ALLOC_OK */
    if (table == NULL)
        return SM_ERR_NOMEM;
    free(sw->table);
    sw->table = table;
    sw->table_cap = cap;
    for (uint32_t k = 0; k < sw->n_agents; k++) {
        uint32_t i = sw->agents[k].hash & (cap - 1);
        while (table[i].e != 0)
            i = (i + 1) & (cap - 1);
        table[i] = (tslot){k + 1, sw->agents[k].hash};
    }
    return SM_OK;
}

/* Marks agent k changed since the last commit: O(1), once per commit. */
static void agent_mark(sm_swarm *sw, uint32_t k)
{
    agent *a = &sw->agents[k];
    if (a->dirty)
        return;
    sw->dirty_list[sw->n_dirty++] = k;
    a->dirty = sw->n_dirty;
}

/* Takes agent k off the dirty list (the list's last entry fills its place). */
static void agent_unmark(sm_swarm *sw, uint32_t k)
{
    agent *a = &sw->agents[k];
    if (!a->dirty)
        return;
    uint32_t pos = a->dirty - 1;
    uint32_t moved = sw->dirty_list[--sw->n_dirty];
    sw->dirty_list[pos] = moved;
    sw->agents[moved].dirty = pos + 1;
    a->dirty = 0;
}

/* Index of the agent `id` (non-empty, vetted), created if new. */
static sm_status agent_get(sm_swarm *sw, const char *id, uint32_t *out)
{
    uint32_t h = hash32(id);
    bool found;
    uint32_t slot = table_slot(sw, id, h, &found);
    if (found) {
        *out = sw->table[slot].e - 1;
        return SM_OK;
    }
    if (sw->n_agents + 1 > sw->table_cap / 2) {
        sm_status rc = table_grow(sw);
        if (rc != SM_OK)
            return rc;
        slot = table_slot(sw, id, h, &found);
    }
    uint32_t k = sw->n_agents++;
    agent *a = &sw->agents[k];
    memset(a, 0, sizeof *a);
    id_copy(a->s.id, id);
    sm_samples_init(&a->s.tasks_hdr, SM_AGENT_TASKS);
    a->prev = NONE;
    a->next = NONE;
    a->hash = h;
    sw->table[slot] = (tslot){k + 1, h};
    *out = k;
    return SM_OK;
}

/* Orders raised agents by (raised_at, id). */
static bool raised_before(const agent *x, const agent *y)
{
    if (x->s.raised_at_ms != y->s.raised_at_ms)
        return x->s.raised_at_ms < y->s.raised_at_ms;
    return strcmp(x->s.id, y->s.id) < 0;
}

static void raised_link(sm_swarm *sw, uint32_t k)
{
    agent *a = &sw->agents[k];
    uint32_t after = sw->raised_tail;
    while (after != NONE && raised_before(a, &sw->agents[after]))
        after = sw->agents[after].prev;
    a->prev = after;
    if (after == NONE) {
        a->next = sw->raised_head;
        sw->raised_head = k;
    } else {
        a->next = sw->agents[after].next;
        sw->agents[after].next = k;
    }
    if (a->next == NONE)
        sw->raised_tail = k;
    else
        sw->agents[a->next].prev = k;
}

static void raised_unlink(sm_swarm *sw, uint32_t k)
{
    agent *a = &sw->agents[k];
    if (a->prev == NONE)
        sw->raised_head = a->next;
    else
        sw->agents[a->prev].next = a->next;
    if (a->next == NONE)
        sw->raised_tail = a->prev;
    else
        sw->agents[a->next].prev = a->prev;
    a->prev = NONE;
    a->next = NONE;
}

/* Removes table slot i by backward-shift deletion (no tombstones). */
static void table_delete(sm_swarm *sw, uint32_t i)
{
    uint32_t mask = sw->table_cap - 1;
    uint32_t j = i;
    sw->table[i] = (tslot){0, 0};
    for (;;) {
        j = (j + 1) & mask;
        tslot e = sw->table[j];
        if (e.e == 0)
            return;
        uint32_t home = e.h & mask;
        /* the entry at j may move to i if its home is not in (i, j] */
        bool stays = i <= j ? (home > i && home <= j)
                            : (home > i || home <= j);
        if (!stays) {
            sw->table[i] = e;
            sw->table[j] = (tslot){0, 0};
            i = j;
        }
    }
}

/* Removes agent k (not raised): the last agent moves into its place. */
static void agent_remove(sm_swarm *sw, uint32_t k)
{
    bool found;
    uint32_t slot = table_slot(sw, sw->agents[k].s.id, sw->agents[k].hash,
                               &found);
    if (found)
        table_delete(sw, slot);
    agent_unmark(sw, k);
    uint32_t last = sw->n_agents - 1;
    if (k != last) {
        agent *m = &sw->agents[last];
        slot = table_slot(sw, m->s.id, m->hash, &found);
        sw->table[slot].e = k + 1;
        if (m->dirty)
            sw->dirty_list[m->dirty - 1] = k;
        if (m->s.raised) {
            if (m->prev == NONE)
                sw->raised_head = k;
            else
                sw->agents[m->prev].next = k;
            if (m->next == NONE)
                sw->raised_tail = k;
            else
                sw->agents[m->next].prev = k;
        }
        memcpy(&sw->agents[k], m, sizeof *m);
    }
    sw->n_agents--;
}

/* ------------------------------------------------------- swarm stats */

static void stats_recompute(sm_swarm *sw)
{
    swarm_state *st = &sw->st;
    size_t n = sm_samples_values(&st->dur_hdr, st->dur, window_since(sw),
                                 TASK_OK, TASK_OK, sw->scratch,
                                 SM_SWARM_SAMPLES);
    st->median = sm_stats_median(sw->scratch, n);
    st->mad = sm_stats_mad(sw->scratch, n, st->median);
    st->median_n = (uint32_t)n;
    st->new_samples = 0;
    st->stats_dirty = 0;
    st->stats_tick = st->tick;
    sw->dirty = true;
}

/* The lazy rule: new samples exist and either enough of them piled up, a
 * tick passed, or the swarm is still below its minimum-sample guard. */
static void stats_maybe(sm_swarm *sw)
{
    const swarm_state *st = &sw->st;
    if (!st->stats_dirty)
        return;
    if (st->new_samples >= SM_RECOMPUTE_EVERY || st->tick > st->stats_tick ||
        st->median_n < sw->cfg.slow_min_swarm_tasks)
        stats_recompute(sw);
}

/* ------------------------------------------------------- slow agents */

static void agent_measure(const sm_swarm *sw, const agent *a, agent_view *v)
{
    const sm_detect_config *c = &sw->cfg;
    const swarm_state *st = &sw->st;
    int64_t since = window_since(sw);
    double d[SM_AGENT_TASKS];

    memset(v, 0, sizeof *v);
    v->finished = sm_samples_count(&a->s.tasks_hdr, a->s.tasks, since,
                                   TASK_DONE, TASK_DONE);
    size_t n = sm_samples_values(&a->s.tasks_hdr, a->s.tasks, since,
                                 TASK_DONE | TASK_OK, TASK_DONE | TASK_OK,
                                 d, SM_AGENT_TASKS);
    v->completed = (uint32_t)n;
    v->success = v->finished > 0 ? (double)v->completed / v->finished : 1.0;
    v->median = sm_stats_median(d, n);
    v->ratio_known = n > 0 && st->median_n > 0 && st->median > 0.0;
    v->ratio = v->ratio_known ? v->median / st->median : 0.0;

    v->ratio_over = v->ratio_known && n >= c->slow_min_agent_tasks &&
                    st->median_n >= c->slow_min_swarm_tasks &&
                    v->ratio > c->slow_raise &&
                    v->median > st->median + c->slow_mad_k * MAD_SCALE * st->mad;
    v->success_under = v->finished >= c->success_min_tasks &&
                       v->success < c->success_raise;

    double imp_r = 0.0, imp_s = 0.0;
    if (v->ratio_known) {
        if (v->ratio <= c->slow_high)
            imp_r = band(0.4, 0.6, (v->ratio - c->slow_raise) /
                                   (c->slow_high - c->slow_raise));
        else
            imp_r = band(0.6, 0.8, (v->ratio - c->slow_high) / c->slow_high);
    }
    if (v->finished > 0)
        imp_s = band(0.4, 0.6, (c->success_raise - v->success) /
                               c->success_raise);
    v->impact = imp_r > imp_s ? imp_r : imp_s;
    if (v->impact < 0.4)
        v->impact = 0.4;
    bool by_success = v->success_under && (!v->ratio_over || imp_s > imp_r);
    v->reason = by_success ? "success_rate" : "duration_ratio";
}

static void agent_metrics(const sm_swarm *sw, const agent_view *v,
                          sm_transition *t)
{
    const sm_detect_config *c = &sw->cfg;
    tr_metric(t, "duration_ratio", v->ratio, c->slow_raise, v->completed);
    tr_metric(t, "agent_median_ms", v->median, 0.0, v->completed);
    tr_metric(t, "swarm_median_ms", sw->st.median, 0.0, sw->st.median_n);
    tr_metric(t, "swarm_mad_ms", sw->st.mad, c->slow_mad_k,
              sw->st.median_n);
    tr_metric(t, "success_rate", v->success, c->success_raise, v->finished);
}

static void agent_emit(sm_swarm *sw, const agent *a, const agent_view *v,
                       sm_transition_kind kind, const char *reason,
                       sm_emit_fn emit, void *ud)
{
    sm_transition t;
    tr_init(sw, &t, SM_BN_SLOW_AGENT, kind, a->s.id, a->s.raised_at_ms,
            a->s.impact, a->s.severity, reason);
    agent_metrics(sw, v, &t);
    tr_send(&t, emit, ud);
}

static void agent_resolve(sm_swarm *sw, uint32_t k, const agent_view *v,
                          const char *reason, sm_emit_fn emit, void *ud)
{
    agent *a = &sw->agents[k];
    raised_unlink(sw, k);
    a->s.raised = 0;
    agent_mark(sw, (uint32_t)(a - sw->agents));
    agent_emit(sw, a, v, SM_TR_RESOLVED, reason, emit, ud);
}

/* Runs the slow-agent rule on agent k: raise, update or clear. */
static void agent_judge(sm_swarm *sw, uint32_t k, sm_emit_fn emit, void *ud)
{
    const sm_detect_config *c = &sw->cfg;
    agent *a = &sw->agents[k];
    agent_view v;
    agent_measure(sw, a, &v);

    if (!a->s.raised) {
        if (!v.ratio_over && !v.success_under)
            return;
        a->s.raised = 1;
        a->s.raised_at_ms = sw->st.now_ms;
        a->s.clear_since_ms = 0;
        a->s.impact = v.impact;
        a->s.severity = (uint8_t)sm_severity_of(v.impact);
        agent_mark(sw, (uint32_t)(a - sw->agents));
        raised_link(sw, k);
        agent_emit(sw, a, &v, SM_TR_RAISED, v.reason, emit, ud);
        return;
    }
    if (v.finished == 0) {
        agent_resolve(sw, k, &v, "no_data", emit, ud);
        return;
    }
    /* too few swarm samples to judge against: hold the episode as is */
    if (sw->st.median_n < c->slow_min_swarm_tasks)
        return;
    bool ratio_ok = !v.ratio_known || v.ratio < c->slow_clear;
    if (ratio_ok && v.success >= c->success_clear) {
        if (a->s.clear_since_ms == 0) {
            a->s.clear_since_ms = sw->st.now_ms;
            agent_mark(sw, (uint32_t)(a - sw->agents));
        }
        if (sw->st.now_ms - a->s.clear_since_ms >= c->slow_clear_hold_ms)
            agent_resolve(sw, k, &v, "cleared", emit, ud);
        return;
    }
    if (a->s.clear_since_ms != 0) {
        a->s.clear_since_ms = 0;
        agent_mark(sw, (uint32_t)(a - sw->agents));
    }
    uint8_t sev = (uint8_t)severity_step(c, a->s.severity, v.impact);
    if (a->s.impact != v.impact)
        agent_mark(sw, (uint32_t)(a - sw->agents));
    a->s.impact = v.impact;
    if (sev != a->s.severity) {
        a->s.severity = sev;
        agent_emit(sw, a, &v, SM_TR_UPDATED, v.reason, emit, ud);
    }
}

/* ------------------------------------------------- swarm-wide episodes */

static const char *episode_reason(sm_bn_type t)
{
    switch (t) {
    case SM_BN_TOKEN_EXHAUSTION:  return "token_usage";
    case SM_BN_QUOTA_EXCEEDED:    return "active_agents";
    case SM_BN_QUEUE_BACKLOG:     return "pending_tasks";
    case SM_BN_CONSENSUS_TIMEOUT: return "timeout_rate";
    case SM_BN_SLOW_AGENT:        break;
    }
    return "duration_ratio";
}

static gauge *gauge_of(sm_swarm *sw, sm_bn_type t)
{
    switch (t) {
    case SM_BN_TOKEN_EXHAUSTION: return &sw->st.gauges[G_TOKEN];
    case SM_BN_QUOTA_EXCEEDED:   return &sw->st.gauges[G_QUOTA];
    case SM_BN_QUEUE_BACKLOG:    return &sw->st.gauges[G_QUEUE];
    default:                     return NULL;
    }
}

/* Current impact of a swarm-wide type from its latest figures. */
static double episode_impact(sm_swarm *sw, sm_bn_type t)
{
    const sm_detect_config *c = &sw->cfg;
    const swarm_state *st = &sw->st;
    double x;
    switch (t) {
    case SM_BN_TOKEN_EXHAUSTION:
        x = st->gauges[G_TOKEN].value;
        if (x <= c->token_critical)
            return band(0.6, 0.8, (x - c->token_raise) /
                                  (c->token_critical - c->token_raise));
        return band(0.8, 1.0, (x - c->token_critical) /
                              (1.0 - c->token_critical));
    case SM_BN_QUOTA_EXCEEDED: {
        double quota = st->gauges[G_QUOTA].a;
        x = st->gauges[G_QUOTA].value;
        return band(0.8, 1.0, quota > 0 ? (x - quota) / quota : 0.0);
    }
    case SM_BN_QUEUE_BACKLOG: {
        double raise = c->queue_raise, crit = c->queue_critical;
        x = st->gauges[G_QUEUE].value;
        if (x <= crit)
            return band(0.4, 0.8, (x - raise) / (crit - raise));
        return band(0.8, 1.0, (x - crit) / crit);
    }
    case SM_BN_CONSENSUS_TIMEOUT: {
        uint64_t n = sm_ring_sum(&st->rounds, 0);
        x = n > 0 ? (double)sm_ring_sum(&st->rounds, 1) / (double)n : 0.0;
        if (x <= c->consensus_high)
            return band(0.4, 0.6, (x - c->consensus_raise) /
                                  (c->consensus_high - c->consensus_raise));
        return band(0.6, 0.8, (x - c->consensus_high) / c->consensus_high);
    }
    case SM_BN_SLOW_AGENT:
        break;
    }
    return 0.0;
}

static void episode_metrics(const sm_swarm *sw, sm_bn_type t,
                            bool resolving, uint32_t run, sm_transition *tr)
{
    const sm_detect_config *c = &sw->cfg;
    const swarm_state *st = &sw->st;
    const gauge *g;
    switch (t) {
    case SM_BN_TOKEN_EXHAUSTION: {
        g = &st->gauges[G_TOKEN];
        double thr = resolving ? c->token_clear
                     : g->value > c->token_critical ? c->token_critical
                                                    : c->token_raise;
        tr_metric(tr, "token_usage_ratio", g->value, thr, run);
        tr_metric(tr, "tokens_used", g->a, 0.0, 1);
        tr_metric(tr, "token_budget", g->b, 0.0, 1);
        break;
    }
    case SM_BN_QUOTA_EXCEEDED:
        g = &st->gauges[G_QUOTA];
        tr_metric(tr, "active_agents", g->value,
                  resolving ? g->a * c->quota_clear : g->a, run);
        tr_metric(tr, "agent_quota", g->a, 0.0, 1);
        break;
    case SM_BN_QUEUE_BACKLOG: {
        g = &st->gauges[G_QUEUE];
        double thr = resolving ? c->queue_clear
                     : g->value > c->queue_critical ? c->queue_critical
                                                    : c->queue_raise;
        tr_metric(tr, "pending_tasks", g->value, thr, run);
        break;
    }
    case SM_BN_CONSENSUS_TIMEOUT: {
        uint64_t n = sm_ring_sum(&st->rounds, 0);
        uint64_t to = sm_ring_sum(&st->rounds, 1);
        double rate = n > 0 ? (double)to / (double)n : 0.0;
        double thr = resolving ? c->consensus_clear
                     : rate > c->consensus_high ? c->consensus_high
                                                : c->consensus_raise;
        tr_metric(tr, "timeout_rate", rate, thr, (uint32_t)n);
        tr_metric(tr, "rounds", (double)n, c->consensus_min_rounds,
                  (uint32_t)n);
        tr_metric(tr, "timeouts", (double)to, 0.0, (uint32_t)n);
        break;
    }
    case SM_BN_SLOW_AGENT:
        break;
    }
}

static void episode_emit(sm_swarm *sw, sm_bn_type t, sm_transition_kind k,
                         const char *reason, uint32_t run, sm_emit_fn emit,
                         void *ud)
{
    const episode *e = &sw->st.ep[t];
    sm_transition tr;
    tr_init(sw, &tr, t, k, e->subject, e->raised_at_ms, e->impact,
            e->severity, reason);
    episode_metrics(sw, t, k == SM_TR_RESOLVED, run, &tr);
    tr_send(&tr, emit, ud);
}

static void episode_raise(sm_swarm *sw, sm_bn_type t, const char *subject,
                          uint32_t run, sm_emit_fn emit, void *ud)
{
    episode *e = &sw->st.ep[t];
    e->raised = 1;
    e->raised_at_ms = sw->st.now_ms;
    e->impact = episode_impact(sw, t);
    e->severity = (uint32_t)sm_severity_of(e->impact);
    id_copy(e->subject, subject);
    sw->dirty = true;
    episode_emit(sw, t, SM_TR_RAISED, episode_reason(t), run, emit, ud);
}

static void episode_resolve(sm_swarm *sw, sm_bn_type t, const char *reason,
                            uint32_t run, sm_emit_fn emit, void *ud)
{
    sw->st.ep[t].raised = 0;
    sw->dirty = true;
    episode_emit(sw, t, SM_TR_RESOLVED, reason, run, emit, ud);
}

/* Refreshes the impact of a raised episode; UPDATED on a severity change. */
static void episode_update(sm_swarm *sw, sm_bn_type t, sm_emit_fn emit,
                           void *ud)
{
    episode *e = &sw->st.ep[t];
    double impact = episode_impact(sw, t);
    uint32_t sev = severity_step(&sw->cfg, e->severity, impact);
    if (impact != e->impact)
        sw->dirty = true;
    e->impact = impact;
    if (sev == e->severity)
        return;
    e->severity = sev;
    episode_emit(sw, t, SM_TR_UPDATED, episode_reason(t), 1, emit, ud);
}

/* One gauge sample has been stored: advance the debounce runs and decide. */
static void gauge_judge(sm_swarm *sw, sm_bn_type t, bool over, bool under,
                        sm_emit_fn emit, void *ud)
{
    gauge *g = gauge_of(sw, t);
    uint32_t min = sw->cfg.gauge_min_samples;
    if (over) {
        g->over_run++;
        g->under_run = 0;
    } else if (under) {
        g->under_run++;
        g->over_run = 0;
    } else {
        g->over_run = 0;
        g->under_run = 0;
    }
    if (!sw->st.ep[t].raised) {
        if (g->over_run >= min)
            episode_raise(sw, t, g->source, g->over_run, emit, ud);
        return;
    }
    if (g->under_run >= min) {
        episode_resolve(sw, t, "cleared", g->under_run, emit, ud);
        return;
    }
    /* under the clear line but not yet debounced: no severity churn */
    if (!under)
        episode_update(sw, t, emit, ud);
}

/* Sweep: a gauge with no sample inside the window is stale. */
static void gauge_sweep(sm_swarm *sw, sm_bn_type t, sm_emit_fn emit,
                        void *ud)
{
    gauge *g = gauge_of(sw, t);
    if (!g->have || g->last_ms >= window_since(sw))
        return;
    g->have = 0;
    g->over_run = 0;
    g->under_run = 0;
    sw->dirty = true;
    if (sw->st.ep[t].raised)
        episode_resolve(sw, t, "no_data", 0, emit, ud);
}

static void consensus_judge(sm_swarm *sw, sm_emit_fn emit, void *ud)
{
    const sm_detect_config *c = &sw->cfg;
    swarm_state *st = &sw->st;
    uint64_t n = sm_ring_sum(&st->rounds, 0);
    double rate = n > 0 ? (double)sm_ring_sum(&st->rounds, 1) / (double)n
                        : 0.0;
    if (!st->ep[SM_BN_CONSENSUS_TIMEOUT].raised) {
        if (n >= c->consensus_min_rounds && rate > c->consensus_raise)
            episode_raise(sw, SM_BN_CONSENSUS_TIMEOUT, st->group,
                          (uint32_t)n, emit, ud);
        return;
    }
    if (n == 0)
        episode_resolve(sw, SM_BN_CONSENSUS_TIMEOUT, "no_data", 0, emit, ud);
    else if (rate < c->consensus_clear)
        episode_resolve(sw, SM_BN_CONSENSUS_TIMEOUT, "cleared", (uint32_t)n,
                        emit, ud);
    else
        episode_update(sw, SM_BN_CONSENSUS_TIMEOUT, emit, ud);
}

/* -------------------------------------------------------- clock, sweep */

static void sweep(sm_swarm *sw, sm_emit_fn emit, void *ud)
{
    gauge_sweep(sw, SM_BN_TOKEN_EXHAUSTION, emit, ud);
    gauge_sweep(sw, SM_BN_QUOTA_EXCEEDED, emit, ud);
    if (sw->st.stats_dirty || sw->st.median_n > 0)
        stats_recompute(sw);
    uint32_t k = sw->raised_head;
    while (k != NONE) {
        uint32_t next = sw->agents[k].next;
        agent_judge(sw, k, emit, ud);
        k = next;
    }
    gauge_sweep(sw, SM_BN_QUEUE_BACKLOG, emit, ud);
    consensus_judge(sw, emit, ud);
}

/* Moves the clock to max(now, ts), evicts, and sweeps on a new tick. */
static void clock_advance(sm_swarm *sw, int64_t ts, sm_emit_fn emit,
                          void *ud)
{
    swarm_state *st = &sw->st;
    if (st->started && ts <= st->now_ms)
        return;
    st->now_ms = ts;
    sw->dirty = true;
    sm_ring_advance(&st->rounds, ts);
    int64_t tick = floor_div(ts, sw->cfg.tick_ms);
    if (!st->started) {
        st->started = 1;
        st->tick = tick;
        st->stats_tick = tick;
        return;
    }
    if (tick > st->tick) {
        st->tick = tick;
        sweep(sw, emit, ud);
    }
}

/* ------------------------------------------------------ create/destroy */

sm_status sm_swarm_create(sm_swarm **out, const char *id,
                          const sm_detect_config *cfg)
{
    if (out == NULL || id_len(id) < 1 || cfg == NULL)
        return SM_ERR_INVALID;
    if (sm_detect_config_validate(cfg, NULL) != SM_OK)
        return SM_ERR_CONFIG;
    sm_swarm *sw = calloc(1, sizeof *sw); /* SM_ALLOC_OK */
    if (sw == NULL)
        return SM_ERR_NOMEM;
    sw->table = calloc(TABLE_INIT, sizeof *sw->table); /* SM_ALLOC_OK */
    sw->agents = calloc(TABLE_INIT / 2, sizeof *sw->agents); /* SM_ALLOC_OK */
    sw->dirty_list = calloc(TABLE_INIT / 2, sizeof *sw->dirty_list); /* SM_ALLOC_OK */
    if (sw->table == NULL || sw->agents == NULL || sw->dirty_list == NULL) {
        sm_swarm_destroy(sw);
        return SM_ERR_NOMEM;
    }
    sw->table_cap = TABLE_INIT;
    sw->expire_retention_ms = -1;
    sw->raised_head = NONE;
    sw->raised_tail = NONE;
    sw->cfg = *cfg;
    id_copy(sw->st.id, id);
    sm_ring_init(&sw->st.rounds, cfg->window_ms, cfg->tick_ms);
    sm_samples_init(&sw->st.dur_hdr, SM_SWARM_SAMPLES);
    sw->dirty = true;
    *out = sw;
    return SM_OK;
}

void sm_swarm_destroy(sm_swarm *sw)
{
    if (sw == NULL)
        return;
    free(sw->table);
    free(sw->agents);
    free(sw->dirty_list);
    free(sw);
}

const char *sm_swarm_id(const sm_swarm *sw)
{
    return sw == NULL ? "" : sw->st.id;
}

int64_t sm_swarm_now(const sm_swarm *sw)
{
    return sw == NULL ? 0 : sw->st.now_ms;
}

size_t sm_swarm_agent_count(const sm_swarm *sw)
{
    return sw == NULL ? 0 : sw->n_agents;
}

/* ------------------------------------------------------------- events */

sm_status sm_swarm_on_task(sm_swarm *sw, const sm_task_event *ev,
                           sm_emit_fn emit, void *ud)
{
    if (sw == NULL || ev == NULL || !ts_ok(ev->ts_ms))
        return SM_ERR_INVALID;
    if (ev->kind < SM_TASK_QUEUED || ev->kind > SM_TASK_CANCELLED)
        return SM_ERR_INVALID;
    if ((unsigned)ev->priority > SM_PRIO_BACKGROUND)
        return SM_ERR_INVALID;
    int len = id_len(ev->agent);
    if (len < 0 || (len == 0 && ev->kind != SM_TASK_QUEUED))
        return SM_ERR_INVALID;

    uint32_t k = NONE;
    if (len > 0) {
        sm_status rc = agent_get(sw, ev->agent, &k);
        if (rc != SM_OK)
            return rc;
    }
    clock_advance(sw, ev->ts_ms, emit, ud);
    if (k == NONE)
        return SM_OK;

    agent *a = &sw->agents[k];
    if (ev->ts_ms > a->s.last_seen_ms || a->s.last_seen_ms == 0)
        a->s.last_seen_ms = ev->ts_ms;
    agent_mark(sw, (uint32_t)(a - sw->agents));
    bool finished = ev->kind == SM_TASK_COMPLETED ||
                    ev->kind == SM_TASK_FAILED ||
                    ev->kind == SM_TASK_TIMED_OUT;
    if (!finished || ev->ts_ms < window_since(sw))
        return SM_OK;

    bool ok = ev->kind == SM_TASK_COMPLETED;
    sm_sample s = {ev->ts_ms, ev->duration_ms,
                   TASK_DONE | (ok ? TASK_OK : 0u)};
    sm_samples_push(&a->s.tasks_hdr, a->s.tasks, s);
    if (ok) {
        s.flags = TASK_OK;
        sm_samples_push(&sw->st.dur_hdr, sw->st.dur, s);
        sw->st.new_samples++;
        sw->st.stats_dirty = 1;
        sw->dirty = true;
        stats_maybe(sw);
    }
    agent_judge(sw, k, emit, ud);
    return SM_OK;
}

sm_status sm_swarm_on_heartbeat(sm_swarm *sw, const sm_heartbeat *ev,
                                sm_emit_fn emit, void *ud)
{
    if (sw == NULL || ev == NULL || !ts_ok(ev->ts_ms) ||
        id_len(ev->agent) < 1 || ev->state > 4)
        return SM_ERR_INVALID;
    uint32_t k;
    sm_status rc = agent_get(sw, ev->agent, &k);
    if (rc != SM_OK)
        return rc;
    clock_advance(sw, ev->ts_ms, emit, ud);
    agent *a = &sw->agents[k];
    if (ev->ts_ms > a->s.last_seen_ms || a->s.last_seen_ms == 0)
        a->s.last_seen_ms = ev->ts_ms;
    agent_mark(sw, (uint32_t)(a - sw->agents));
    return SM_OK;
}

sm_status sm_swarm_on_resource(sm_swarm *sw, const sm_resource_sample *ev,
                               sm_emit_fn emit, void *ud)
{
    if (sw == NULL || ev == NULL || !ts_ok(ev->ts_ms) ||
        id_len(ev->source) < 0)
        return SM_ERR_INVALID;
    const sm_detect_config *c = &sw->cfg;
    clock_advance(sw, ev->ts_ms, emit, ud);

    gauge *g = &sw->st.gauges[G_TOKEN];
    if (ev->token_budget > 0 && (!g->have || ev->ts_ms >= g->last_ms)) {
        g->have = 1;
        g->last_ms = ev->ts_ms;
        g->a = (double)ev->tokens_used;
        g->b = (double)ev->token_budget;
        g->value = g->a / g->b;
        id_copy(g->source, ev->source);
        sw->dirty = true;
        gauge_judge(sw, SM_BN_TOKEN_EXHAUSTION, g->value > c->token_raise,
                    g->value < c->token_clear, emit, ud);
    }
    g = &sw->st.gauges[G_QUOTA];
    if (ev->agent_quota > 0 && (!g->have || ev->ts_ms >= g->last_ms)) {
        g->have = 1;
        g->last_ms = ev->ts_ms;
        g->value = ev->active_agents;
        g->a = ev->agent_quota;
        id_copy(g->source, ev->source);
        sw->dirty = true;
        gauge_judge(sw, SM_BN_QUOTA_EXCEEDED, g->value >= g->a,
                    g->value < g->a * c->quota_clear, emit, ud);
    }
    g = &sw->st.gauges[G_QUEUE];
    if (ev->has_pending && (!g->have || ev->ts_ms >= g->last_ms)) {
        uint64_t p = 0;
        for (int i = 0; i < SM_PRIO_COUNT; i++)
            p += ev->pending[i];
        g->have = 1;
        g->last_ms = ev->ts_ms;
        g->value = (double)p;
        id_copy(g->source, ev->source);
        sw->dirty = true;
        gauge_judge(sw, SM_BN_QUEUE_BACKLOG, p > c->queue_raise,
                    p < c->queue_clear, emit, ud);
    }
    return SM_OK;
}

sm_status sm_swarm_on_consensus(sm_swarm *sw, const sm_consensus_round *ev,
                                sm_emit_fn emit, void *ud)
{
    if (sw == NULL || ev == NULL || !ts_ok(ev->ts_ms) ||
        id_len(ev->group) < 0)
        return SM_ERR_INVALID;
    if (ev->outcome < SM_ROUND_OK || ev->outcome > SM_ROUND_FAILED)
        return SM_ERR_INVALID;
    clock_advance(sw, ev->ts_ms, emit, ud);
    uint32_t delta[SM_RING_COUNTERS] = {
        1, ev->outcome == SM_ROUND_TIMEOUT ? 1u : 0u,
    };
    if (!sm_ring_add(&sw->st.rounds, ev->ts_ms, delta))
        return SM_OK;
    id_copy(sw->st.group, ev->group);
    sw->dirty = true;
    consensus_judge(sw, emit, ud);
    return SM_OK;
}

sm_status sm_swarm_on_agent(sm_swarm *sw, const sm_agent_lifecycle *ev,
                            sm_emit_fn emit, void *ud)
{
    if (sw == NULL || ev == NULL || !ts_ok(ev->ts_ms) ||
        id_len(ev->agent) < 1)
        return SM_ERR_INVALID;
    uint32_t k = NONE;
    if (ev->registered) {
        sm_status rc = agent_get(sw, ev->agent, &k);
        if (rc != SM_OK)
            return rc;
    } else {
        const agent *found = agent_find(sw, ev->agent);
        if (found != NULL)
            k = (uint32_t)(found - sw->agents);
    }
    clock_advance(sw, ev->ts_ms, emit, ud);
    if (k == NONE)
        return SM_OK;

    agent *a = &sw->agents[k];
    if (ev->ts_ms > a->s.last_seen_ms || a->s.last_seen_ms == 0)
        a->s.last_seen_ms = ev->ts_ms;
    agent_mark(sw, (uint32_t)(a - sw->agents));
    if (ev->registered) {
        a->s.flags = (uint8_t)(AGENT_REGISTERED |
                               (ev->dynamic ? AGENT_DYNAMIC : 0u));
        return SM_OK;
    }
    if (a->s.raised) {
        agent_view v;
        agent_measure(sw, a, &v);
        agent_resolve(sw, k, &v, "no_data", emit, ud);
    }
    sm_samples_clear(&a->s.tasks_hdr);
    memset(a->s.tasks, 0, sizeof a->s.tasks);
    a->s.flags = (uint8_t)((a->s.flags & AGENT_DYNAMIC) | AGENT_UNREGISTERED);
    return SM_OK;
}

void sm_swarm_advance(sm_swarm *sw, int64_t now_ms, sm_emit_fn emit,
                      void *ud)
{
    if (sw == NULL || !ts_ok(now_ms))
        return;
    clock_advance(sw, now_ms, emit, ud);
}

bool sm_swarm_is_raised(const sm_swarm *sw, sm_bn_type t,
                        const char *subject)
{
    if (sw == NULL || t < SM_BN_TOKEN_EXHAUSTION ||
        t > SM_BN_CONSENSUS_TIMEOUT)
        return false;
    if (t != SM_BN_SLOW_AGENT)
        return sw->st.ep[t].raised != 0;
    if (id_len(subject) < 1)
        return false;
    const agent *a = agent_find(sw, subject);
    return a != NULL && a->s.raised;
}

/* -------------------------------------------------------- persistence */

size_t sm_swarm_export(const sm_swarm *sw, void *buf, size_t cap)
{
    size_t need = sizeof(swarm_blob);
    if (sw == NULL || buf == NULL || cap < need)
        return need;
    swarm_blob *b = buf;
    memcpy(&b->st, &sw->st, sizeof b->st);
    blob_hdr_fill(&b->hdr, BLOB_MAGIC_SWARM, BLOB_VERSION, need, &b->st,
                  sizeof b->st);
    return need;
}

static bool episode_ok(const episode *e)
{
    if (e->raised > 1)
        return false;
    return !e->raised || (e->severity >= SM_SEV_LOW &&
                          e->severity <= SM_SEV_CRITICAL);
}

static bool swarm_state_ok(const sm_swarm *sw, const swarm_state *st)
{
    if (memcmp(st->id, sw->st.id, SM_ID_MAX) != 0 || st->started > 1 ||
        st->stats_dirty > 1 || st->median_n > SM_SWARM_SAMPLES)
        return false;
    for (int i = 0; i < G_COUNT; i++) {
        const gauge *g = &st->gauges[i];
        if (g->have > 1 || g->reserved != 0 || id_len(g->source) < 0)
            return false;
    }
    for (int t = 0; t <= SM_BN_COUNT; t++) {
        if (!episode_ok(&st->ep[t]) || id_len(st->ep[t].subject) < 0)
            return false;
    }
    if (st->ep[0].raised || st->ep[SM_BN_SLOW_AGENT].raised)
        return false;
    if (id_len(st->group) < 0 || !sm_ring_valid(&st->rounds) ||
        st->rounds.slot_ms != sw->st.rounds.slot_ms ||
        st->rounds.nslots != sw->st.rounds.nslots)
        return false;
    return sm_samples_valid(&st->dur_hdr, SM_SWARM_SAMPLES);
}

sm_status sm_swarm_import(sm_swarm *sw, const void *buf, size_t len)
{
    if (sw == NULL || buf == NULL || len != sizeof(swarm_blob))
        return SM_ERR_CORRUPT;
    /* copy first: buf may be unaligned (a store value) */
    swarm_blob b;
    memcpy(&b, buf, sizeof b);
    if (!blob_hdr_ok(&b.hdr, BLOB_MAGIC_SWARM, BLOB_VERSION, sizeof b, &b.st,
                     sizeof b.st))
        return SM_ERR_CORRUPT;
    if (!swarm_state_ok(sw, &b.st))
        return SM_ERR_CORRUPT;
    memcpy(&sw->st, &b.st, sizeof sw->st);
    sw->dirty = false;
    return SM_OK;
}

bool sm_swarm_is_dirty(const sm_swarm *sw)
{
    return sw != NULL && sw->dirty;
}

/* Little-endian fixed-width writers and readers for the agent blob. */
static unsigned char *put_u8(unsigned char *p, uint32_t v)
{
    *p = (unsigned char)v;
    return p + 1;
}

static unsigned char *put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return p + 4;
}

static unsigned char *put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return p + 8;
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Whether ts_ms can be stored as a u32 age behind last_ms. */
static bool age_fits(int64_t last_ms, int64_t ts_ms, uint32_t *age)
{
    /* both in 0..TS_MAX (vetted), so the difference cannot overflow */
    int64_t d = last_ms - ts_ms;
    if (d < 0 || d > (int64_t)UINT32_MAX)
        return false;
    *age = (uint32_t)d;
    return true;
}

/* Encodes a's agent blob into out (AGENT_BLOB_MAX bytes); returns its
 * length. The layout is described above AGENT_BLOB_MAX. */
static size_t agent_encode(const agent_state *s, unsigned char *out)
{
    unsigned char *p = out + sizeof(blob_hdr);
    uint64_t bits;
    p = put_u64(p, (uint64_t)s->last_seen_ms);
    p = put_u64(p, (uint64_t)s->raised_at_ms);
    p = put_u64(p, (uint64_t)s->clear_since_ms);
    memcpy(&bits, &s->impact, sizeof bits);
    p = put_u64(p, bits);
    p = put_u8(p, s->raised);
    p = put_u8(p, s->severity);
    p = put_u8(p, s->flags);
    size_t n = strlen(s->id);   /* 1..SM_ID_MAX-1: ids are vetted */
    p = put_u8(p, (uint32_t)n);
    memcpy(p, s->id, n);
    p += n;
    const sm_samples *h = &s->tasks_hdr;
    p = put_u8(p, h->count);
    for (uint32_t i = 0; i < h->count; i++) {
        const sm_sample *x = &s->tasks[(h->head + h->cap - h->count + i) %
                                       h->cap];
        uint32_t tag = x->flags & SAMPLE_FLAGS, age;
        if (age_fits(s->last_seen_ms, x->ts_ms, &age)) {
            p = put_u8(p, tag);
            p = put_u32(p, age);
        } else {
            p = put_u8(p, tag | SAMPLE_WIDE);
            p = put_u64(p, (uint64_t)x->ts_ms);
        }
        p = put_u32(p, x->value);
    }
    size_t len = (size_t)(p - out);
    blob_hdr hdr;
    blob_hdr_fill(&hdr, BLOB_MAGIC_AGENT, BLOB_VERSION_AGENT, len,
                  out + sizeof hdr, len - sizeof hdr);
    memcpy(out, &hdr, sizeof hdr);
    return len;
}

/* Bounds-checked reader over a blob body. */
typedef struct reader {
    const unsigned char *p, *end;
    bool bad;
} reader;

static const unsigned char *rd_take(reader *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    const unsigned char *q = r->p;
    r->p += n;
    return q;
}

static uint32_t rd_u8(reader *r)
{
    const unsigned char *q = rd_take(r, 1);
    return q ? q[0] : 0;
}

static uint32_t rd_u32(reader *r)
{
    const unsigned char *q = rd_take(r, 4);
    return q ? get_u32(q) : 0;
}

static uint64_t rd_u64(reader *r)
{
    const unsigned char *q = rd_take(r, 8);
    return q ? get_u64(q) : 0;
}

/* Decodes and vets an agent blob body into s (zeroed first). Every field
 * is checked; the body must be consumed exactly. */
static bool agent_decode(const unsigned char *body, size_t n, agent_state *s)
{
    reader r = {body, body + n, false};
    memset(s, 0, sizeof *s);
    s->last_seen_ms = (int64_t)rd_u64(&r);
    s->raised_at_ms = (int64_t)rd_u64(&r);
    s->clear_since_ms = (int64_t)rd_u64(&r);
    uint64_t bits = rd_u64(&r);
    memcpy(&s->impact, &bits, sizeof bits);
    uint32_t raised = rd_u8(&r), severity = rd_u8(&r), flags = rd_u8(&r);
    uint32_t idn = rd_u8(&r);
    if (r.bad || !ts_ok(s->last_seen_ms) || !ts_ok(s->raised_at_ms) ||
        !ts_ok(s->clear_since_ms) || raised > 1 ||
        severity > SM_SEV_CRITICAL ||
        (raised && severity < SM_SEV_LOW) ||
        (flags & ~(uint32_t)(AGENT_REGISTERED | AGENT_UNREGISTERED |
                             AGENT_DYNAMIC)) ||
        idn < 1 || idn > SM_ID_MAX - 1)
        return false;
    s->raised = (uint8_t)raised;
    s->severity = (uint8_t)severity;
    s->flags = (uint8_t)flags;
    const unsigned char *id = rd_take(&r, idn);
    if (id == NULL || memchr(id, '\0', idn) != NULL)
        return false;
    memcpy(s->id, id, idn);
    uint32_t count = rd_u8(&r);
    if (r.bad || count > SM_AGENT_TASKS)
        return false;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t tag = rd_u8(&r);
        if ((tag & ~(uint32_t)(SAMPLE_FLAGS | SAMPLE_WIDE)) ||
            !(tag & TASK_DONE))
            return false;
        sm_sample *x = &s->tasks[i];
        if (tag & SAMPLE_WIDE) {
            uint32_t age;
            x->ts_ms = (int64_t)rd_u64(&r);
            if (!ts_ok(x->ts_ms) || age_fits(s->last_seen_ms, x->ts_ms, &age))
                return false;   /* out of range, or not the canonical form */
        } else {
            x->ts_ms = s->last_seen_ms - (int64_t)rd_u32(&r);
            if (!ts_ok(x->ts_ms))
                return false;
        }
        x->value = rd_u32(&r);
        x->flags = tag & SAMPLE_FLAGS;
        if (r.bad)
            return false;
    }
    if (r.p != r.end)
        return false;
    sm_samples_init(&s->tasks_hdr, SM_AGENT_TASKS);
    s->tasks_hdr.count = count;
    s->tasks_hdr.head = count % SM_AGENT_TASKS;
    return true;
}

void sm_swarm_visit_dirty(const sm_swarm *sw, sm_agent_visit_fn fn, void *ud)
{
    if (sw == NULL || fn == NULL)
        return;
    for (uint32_t i = 0; i < sw->n_dirty; i++) {
        const agent *a = &sw->agents[sw->dirty_list[i]];
        unsigned char b[AGENT_BLOB_MAX];
        size_t len = agent_encode(&a->s, b);
        fn(ud, a->s.id, b, len);
    }
}

void sm_swarm_clear_dirty(sm_swarm *sw)
{
    if (sw == NULL)
        return;
    sw->dirty = false;
    for (uint32_t i = 0; i < sw->n_dirty; i++)
        sw->agents[sw->dirty_list[i]].dirty = 0;
    sw->n_dirty = 0;
}

sm_status sm_swarm_import_agent(sm_swarm *sw, const void *blob, size_t len)
{
    if (sw == NULL || blob == NULL || len < sizeof(blob_hdr) ||
        len > AGENT_BLOB_MAX)
        return SM_ERR_CORRUPT;
    /* copy the header first: blob may be unaligned (a store value) */
    const unsigned char *raw = blob;
    blob_hdr hdr;
    memcpy(&hdr, raw, sizeof hdr);
    agent_state s;
    if (!blob_hdr_ok(&hdr, BLOB_MAGIC_AGENT, BLOB_VERSION_AGENT, len,
                     raw + sizeof hdr, len - sizeof hdr) ||
        !agent_decode(raw + sizeof hdr, len - sizeof hdr, &s))
        return SM_ERR_CORRUPT;
    uint32_t k;
    sm_status rc = agent_get(sw, s.id, &k);
    if (rc != SM_OK)
        return rc;
    agent *a = &sw->agents[k];
    if (a->s.raised)
        raised_unlink(sw, k);
    memcpy(&a->s, &s, sizeof a->s);
    agent_unmark(sw, k);
    if (a->s.raised)
        raised_link(sw, k);
    return SM_OK;
}

size_t sm_swarm_expire(sm_swarm *sw, int64_t retention_ms,
                       sm_agent_visit_fn removed, void *ud)
{
    if (sw == NULL)
        return 0;
    if (retention_ms < 0)
        retention_ms = 0;
    /* a scan of every agent: at most once per tick for one retention */
    if (retention_ms == sw->expire_retention_ms &&
        sw->st.now_ms - sw->expire_at_ms < sw->cfg.tick_ms)
        return 0;
    sw->expire_retention_ms = retention_ms;
    sw->expire_at_ms = sw->st.now_ms;
    int64_t cutoff = sw->st.now_ms - retention_ms;
    size_t n = 0;
    /* downwards: the agent moved into a hole was already looked at */
    for (uint32_t k = sw->n_agents; k-- > 0;) {
        const agent *a = &sw->agents[k];
        if (a->s.raised || a->s.last_seen_ms >= cutoff)
            continue;
        if (removed != NULL)
            removed(ud, a->s.id, NULL, 0);
        agent_remove(sw, k);
        n++;
    }
    return n;
}
