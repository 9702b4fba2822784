/*
 * simgen.c - the deterministic swarm simulator (see simgen.h).
 *
 * One min-heap of scheduled items ordered by (event time, scheduling
 * sequence) drives everything: periodic items (heartbeat, resource,
 * consensus, task arrival) reschedule themselves when popped; a task is a
 * single item that moves through its stages (QUEUED -> STARTED -> END).
 * Each pop yields exactly one message, packed into a reusable buffer.
 */
#include "simgen.h"
#include "evq.h"
#include "rng.h"
#include "world.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swarm_medic.pb-c.h"

#define HEARTBEAT_MS 5000
#define RESOURCE_MS 1000
#define CONSENSUS_MS 2000
#define BUDGET_WINDOW_MS 60000
#define TASK_MEDIAN_MS 2100.0
#define TASK_TOKENS 1200.0
#define SLOW_FACTOR 3.5
#define FAIL_GAP 20             /* tasks between two failures of an agent */
#define FAIL_P 0.06             /* failure chance once the gap is passed */
#define TIMEOUT_GAP 40          /* rounds between two baseline timeouts */
#define TIMEOUT_P 0.04
#define TOKEN_CARRY 0.28        /* share of the budget used at window start */
#define TOKEN_SPREAD 0.35       /* most a normal window adds on top */
#define PENDING_MIN 5
#define PENDING_MAX 25
#define QUEUE_PEAK 250.0
#define QUEUE_DRAIN_MS 10000
#define PACK_CAP 1024
#define MAX_SWARMS 10000u
#define MAX_AGENTS 100000u
#define MAX_AGENTS_TOTAL 10000000ull

enum item_what {
    IT_AGENT = 0,       /* registration */
    IT_HEARTBEAT,
    IT_RESOURCE,
    IT_CONSENSUS,
    IT_ARRIVAL,         /* a new task arrives: QUEUED */
    IT_START,           /* STARTED */
    IT_END,             /* COMPLETED or FAILED */
};

typedef struct item {
    int64_t ts;         /* absolute event time */
    uint64_t seq;       /* scheduling order, breaks ties */
    uint64_t task;      /* task number within its swarm */
    uint32_t swarm;
    uint32_t agent;
    uint32_t dur_ms;
    uint32_t est;       /* tokens estimated */
    uint32_t used;      /* tokens used */
    uint8_t what;
    uint8_t prio;
    uint8_t type;
    uint8_t ok;
} item;

typedef struct agent_st {
    uint32_t inflight;
    uint32_t since_fail;
    uint64_t current;   /* last task started, valid when inflight > 0 */
    uint64_t progress;  /* tokens done */
} agent_st;

typedef struct swarm_st {
    uint64_t rng;
    double next_arrival;        /* ms since start */
    uint64_t tasks;
    uint64_t rounds;
    uint32_t since_timeout;
    double cons_acc;
    uint32_t pending;
    uint64_t budget;
    uint64_t consumed;
    int64_t window_start;       /* absolute ms */
    bool token_fault_seen;
    uint64_t memory;
    agent_st *agents;
} swarm_st;

struct sm_sim {
    sm_world *world;            /* the realistic profile, or NULL: simple */
    sm_sim_config cfg;
    double task_rate;           /* per swarm, tasks per second */
    uint32_t quota;
    swarm_st *swarms;
    agent_st *agent_mem;
    sm_evq events;              /* items, by (ts, seq) */
    uint64_t count;
    bool done;
    sm_status status;
    char subject[128];
    char task_id[48];
    uint8_t buf[PACK_CAP];
};

static const char *const task_types[] = {
    "plan", "research", "code", "review", "summarize",
};
#define TASK_TYPES 5

/* ------------------------------------------------------------- PRNG */

/* A right-skewed, bounded factor around 1: three uniform factors
 * multiplied (the log is a sum of three, close to normal). */
static double skewed(uint64_t *s)
{
    return sm_rng_range(s, 0.9, 1.12) * sm_rng_range(s, 0.9, 1.12) * sm_rng_range(s, 0.9, 1.12);
}

/* ------------------------------------------------------------- config */

void sm_sim_config_default(sm_sim_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = 1;
    cfg->swarms = 2;
    cfg->agents = 20;
    cfg->rate = 50.0;
    cfg->start_ms = SM_SIM_DEFAULT_START_MS;
    cfg->duration_ms = 10LL * 60 * 1000;
}

static void say(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t cap, const char *fmt, ...)
{
    if (why == NULL || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

const char *sm_sim_fault_kind_str(sm_sim_fault_kind k)
{
    switch (k) {
    case SM_SIM_FAULT_TOKEN: return "token";
    case SM_SIM_FAULT_QUOTA: return "quota";
    case SM_SIM_FAULT_SLOW: return "slow";
    case SM_SIM_FAULT_QUEUE: return "queue";
    case SM_SIM_FAULT_CONSENSUS: return "consensus";
    }
    return "unknown";
}

const char *sm_sim_kind_str(sm_sim_kind k)
{
    switch (k) {
    case SM_SIM_TASK: return "task";
    case SM_SIM_HEARTBEAT: return "heartbeat";
    case SM_SIM_RESOURCE: return "resource";
    case SM_SIM_CONSENSUS: return "consensus";
    case SM_SIM_AGENT: return "agent";
    case SM_SIM_OUTCOME: return "outcome";
    }
    return "unknown";
}

uint32_t sm_sim_agent_quota(uint32_t n)
{
    uint32_t extra = (n + 4) / 5;
    return n + (extra > 4 ? extra : 4);
}

sm_status sm_sim_config_validate(const sm_sim_config *cfg, char *why,
                                 size_t cap)
{
    if (cfg == NULL) {
        say(why, cap, "no simulator configuration given");
        return SM_ERR_CONFIG;
    }
    if (cfg->swarms < 1 || cfg->swarms > MAX_SWARMS) {
        say(why, cap, "swarms must be 1..%u, not %u", MAX_SWARMS,
            cfg->swarms);
        return SM_ERR_CONFIG;
    }
    if (cfg->agents < 1 || cfg->agents > MAX_AGENTS) {
        say(why, cap, "agents per swarm must be 1..%u, not %u", MAX_AGENTS,
            cfg->agents);
        return SM_ERR_CONFIG;
    }
    if ((uint64_t)cfg->swarms * cfg->agents > MAX_AGENTS_TOTAL) {
        say(why, cap, "swarms x agents must be at most %llu",
            (unsigned long long)MAX_AGENTS_TOTAL);
        return SM_ERR_CONFIG;
    }
    if (!(cfg->rate > 0.0 && cfg->rate <= 1e7)) {
        say(why, cap, "the event rate must be over 0 and at most 10000000 "
            "events per second");
        return SM_ERR_CONFIG;
    }
    if (cfg->start_ms < 0 || cfg->duration_ms < 0 ||
        cfg->start_ms > INT64_MAX / 4 || cfg->duration_ms > INT64_MAX / 4) {
        say(why, cap, "start and duration must be non-negative event times");
        return SM_ERR_CONFIG;
    }
    if (cfg->n_faults > SM_SIM_MAX_FAULTS) {
        say(why, cap, "at most %d faults", SM_SIM_MAX_FAULTS);
        return SM_ERR_CONFIG;
    }
    for (size_t i = 0; i < cfg->n_faults; i++) {
        const sm_sim_fault *f = &cfg->faults[i];
        const char *k = sm_sim_fault_kind_str(f->kind);
        if (strcmp(k, "unknown") == 0) {
            say(why, cap, "fault %zu has an unknown kind", i + 1);
            return SM_ERR_CONFIG;
        }
        if (f->swarm >= cfg->swarms) {
            say(why, cap, "fault %zu (%s) is on swarm %u but the swarms are "
                "0..%u", i + 1, k, f->swarm, cfg->swarms - 1);
            return SM_ERR_CONFIG;
        }
        if (f->start_ms < 0 || f->end_ms <= f->start_ms) {
            say(why, cap, "fault %zu (%s) must end after it starts", i + 1,
                k);
            return SM_ERR_CONFIG;
        }
        if (cfg->duration_ms > 0 && f->start_ms >= cfg->duration_ms) {
            say(why, cap, "fault %zu (%s) starts at %lld ms, after the run "
                "ends (%lld ms)", i + 1, k, (long long)f->start_ms,
                (long long)cfg->duration_ms);
            return SM_ERR_CONFIG;
        }
    }
    return SM_OK;
}

sm_status sm_sim_parse_time(const char *s, int64_t *ms, char *why,
                            size_t cap)
{
    if (s == NULL || *s == 0) {
        say(why, cap, "empty time (expected e.g. 90s, 1500ms, 10m)");
        return SM_ERR_INVALID;
    }
    double total = 0.0;
    const char *p = s;
    while (*p) {
        double v = 0.0, scale = 0.0;
        bool digits = false;
        while (*p >= '0' && *p <= '9') {
            v = v * 10.0 + (*p - '0');
            p++;
            digits = true;
        }
        if (*p == '.') {
            p++;
            scale = 0.1;
            while (*p >= '0' && *p <= '9') {
                v += (*p - '0') * scale;
                scale /= 10.0;
                p++;
                digits = true;
            }
        }
        if (!digits) {
            say(why, cap, "time \"%s\" is not a number with a unit "
                "(e.g. 90s, 1500ms, 10m)", s);
            return SM_ERR_INVALID;
        }
        double unit;
        if (strncmp(p, "ms", 2) == 0) {
            unit = 1.0;
            p += 2;
        } else if (*p == 's') {
            unit = 1000.0;
            p++;
        } else if (*p == 'm') {
            unit = 60000.0;
            p++;
        } else if (*p == 'h') {
            unit = 3600000.0;
            p++;
        } else if (*p == 0) {
            say(why, cap, "time \"%s\" needs a unit (ms, s, m or h)", s);
            return SM_ERR_INVALID;
        } else {
            say(why, cap, "time \"%s\" has an unknown unit at \"%s\" "
                "(ms, s, m or h)", s, p);
            return SM_ERR_INVALID;
        }
        total += v * unit;
        if (total > 1e15) {
            say(why, cap, "time \"%s\" is too large", s);
            return SM_ERR_INVALID;
        }
    }
    *ms = (int64_t)(total + 0.5);
    return SM_OK;
}

sm_status sm_sim_fault_parse(const char *spec, sm_sim_fault *out, char *why,
                             size_t cap)
{
    char buf[128];
    if (spec == NULL || out == NULL) {
        say(why, cap, "no fault spec given");
        return SM_ERR_INVALID;
    }
    size_t n = strlen(spec);
    if (n >= sizeof buf) {
        say(why, cap, "fault spec is too long (at most %zu characters)",
            sizeof buf - 1);
        return SM_ERR_INVALID;
    }
    memcpy(buf, spec, n + 1);
    char *kind = buf;
    char *c1 = strchr(kind, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    char *dash = c2 ? strchr(c2 + 1, '-') : NULL;
    if (c1 == NULL || c2 == NULL || dash == NULL ||
        strchr(c2 + 1, ':') != NULL) {
        say(why, cap, "fault \"%s\" is not kind:swarm:start-end "
            "(e.g. slow:0:30s-90s)", spec);
        return SM_ERR_INVALID;
    }
    *c1 = *c2 = *dash = 0;
    char *sw = c1 + 1, *t0 = c2 + 1, *t1 = dash + 1;

    sm_sim_fault f;
    memset(&f, 0, sizeof f);
    int k;
    for (k = 1; k <= SM_SIM_FAULT_KINDS; k++)
        if (strcmp(kind, sm_sim_fault_kind_str((sm_sim_fault_kind)k)) == 0)
            break;
    if (k > SM_SIM_FAULT_KINDS) {
        say(why, cap, "fault \"%s\": unknown kind \"%s\" (token, quota, "
            "slow, queue or consensus)", spec, kind);
        return SM_ERR_INVALID;
    }
    f.kind = (sm_sim_fault_kind)k;

    const char *d = sw[0] == 's' ? sw + 1 : sw;
    char *end = NULL;
    unsigned long idx = (*d >= '0' && *d <= '9') ? strtoul(d, &end, 10) : 0;
    if (end == NULL || *end != 0 || idx >= MAX_SWARMS) {
        say(why, cap, "fault \"%s\": swarm \"%s\" is not a swarm number "
            "(0, 1, ... or s0, s1, ...)", spec, sw);
        return SM_ERR_INVALID;
    }
    f.swarm = (uint32_t)idx;

    char twhy[160];
    if (sm_sim_parse_time(t0, &f.start_ms, twhy, sizeof twhy) != SM_OK ||
        sm_sim_parse_time(t1, &f.end_ms, twhy, sizeof twhy) != SM_OK) {
        say(why, cap, "fault \"%s\": %s", spec, twhy);
        return SM_ERR_INVALID;
    }
    if (f.end_ms <= f.start_ms) {
        say(why, cap, "fault \"%s\": the end (%s) must be after the start "
            "(%s)", spec, t1, t0);
        return SM_ERR_INVALID;
    }
    *out = f;
    return SM_OK;
}

sm_status sm_sim_config_add_fault(sm_sim_config *cfg, const char *spec,
                                  char *why, size_t cap)
{
    sm_sim_fault f;
    if (cfg == NULL) {
        say(why, cap, "no simulator configuration given");
        return SM_ERR_INVALID;
    }
    sm_status rc = sm_sim_fault_parse(spec, &f, why, cap);
    if (rc != SM_OK)
        return rc;
    if (cfg->n_faults >= SM_SIM_MAX_FAULTS) {
        say(why, cap, "fault \"%s\": at most %d faults", spec,
            SM_SIM_MAX_FAULTS);
        return SM_ERR_FULL;
    }
    cfg->faults[cfg->n_faults++] = f;
    return SM_OK;
}

size_t sm_sim_demo_faults(sm_sim_fault *out, size_t cap)
{
    static const sm_sim_fault_kind order[SM_SIM_FAULT_KINDS] = {
        SM_SIM_FAULT_TOKEN, SM_SIM_FAULT_CONSENSUS, SM_SIM_FAULT_SLOW,
        SM_SIM_FAULT_QUEUE, SM_SIM_FAULT_QUOTA,
    };
    size_t n = 0;
    for (size_t i = 0; i < SM_SIM_FAULT_KINDS && n < cap; i++, n++) {
        out[n].kind = order[i];
        out[n].swarm = 0;
        out[n].start_ms = 60000 + (int64_t)i * 130000;
        out[n].end_ms = out[n].start_ms + 60000;
    }
    return n;
}

void sm_sim_config_demo(sm_sim_config *cfg)
{
    cfg->n_faults = sm_sim_demo_faults(cfg->faults, SM_SIM_MAX_FAULTS);
    cfg->duration_ms = SM_SIM_DEMO_DURATION_MS;
}

/* ------------------------------------------------------------- queue */

/* Schedules an item (sm_evq_push stamps its seq); on failure records
 * SM_ERR_NOMEM in sim->status. */
static bool heap_push(sm_sim *sim, item it)
{
    if (sm_evq_push(&sim->events, &it) != SM_OK) {
        sim->status = SM_ERR_NOMEM;
        return false;
    }
    return true;
}

/* ------------------------------------------------------------- faults */

/* The first fault of kind k on swarm s active at absolute time t. */
static const sm_sim_fault *fault_at(const sm_sim *sim, sm_sim_fault_kind k,
                                    uint32_t s, int64_t t)
{
    int64_t rel = t - sim->cfg.start_ms;
    for (size_t i = 0; i < sim->cfg.n_faults; i++) {
        const sm_sim_fault *f = &sim->cfg.faults[i];
        if (f->kind == k && f->swarm == s && rel >= f->start_ms &&
            rel < f->end_ms)
            return f;
    }
    return NULL;
}

/* A fault of kind k on swarm s that ended within `within` ms before t. */
static const sm_sim_fault *fault_ended(const sm_sim *sim,
                                       sm_sim_fault_kind k, uint32_t s,
                                       int64_t t, int64_t within)
{
    int64_t rel = t - sim->cfg.start_ms;
    for (size_t i = 0; i < sim->cfg.n_faults; i++) {
        const sm_sim_fault *f = &sim->cfg.faults[i];
        if (f->kind == k && f->swarm == s && rel >= f->end_ms &&
            rel < f->end_ms + within)
            return f;
    }
    return NULL;
}

/* Fraction of fault f elapsed at t over the first `share` of it, 0..1. */
static double ramp(const sm_sim *sim, const sm_sim_fault *f, int64_t t,
                   double share)
{
    double el = (double)(t - sim->cfg.start_ms - f->start_ms);
    double len = (double)(f->end_ms - f->start_ms) * share;
    double r = len > 0 ? el / len : 1.0;
    return r < 0 ? 0 : r > 1 ? 1 : r;
}

/* ------------------------------------------------------------- create */

static double fixed_rate(uint32_t agents)
{
    return agents * (1000.0 / HEARTBEAT_MS) + 1000.0 / RESOURCE_MS +
           1000.0 / CONSENSUS_MS;
}

static uint64_t budget_for(double task_rate)
{
    double per_window = task_rate * (BUDGET_WINDOW_MS / 1000.0) *
                        TASK_TOKENS;
    uint64_t b = (uint64_t)(per_window / 0.30);
    b = (b + 9999) / 10000 * 10000;
    return b < 100000 ? 100000 : b;
}

static bool schedule_start(sm_sim *sim)
{
    const sm_sim_config *c = &sim->cfg;
    int64_t t0 = c->start_ms;
    for (uint32_t s = 0; s < c->swarms; s++) {
        swarm_st *sw = &sim->swarms[s];
        item it;
        memset(&it, 0, sizeof it);
        it.swarm = s;
        for (uint32_t a = 0; a < c->agents; a++) {
            it.what = IT_AGENT;
            it.agent = a;
            it.ts = t0;
            if (!heap_push(sim, it))
                return false;
        }
        for (uint32_t a = 0; a < c->agents; a++) {
            it.what = IT_HEARTBEAT;
            it.agent = a;
            it.ts = t0 + 1 + (int64_t)a * HEARTBEAT_MS / c->agents +
                    sm_rng_below(&sw->rng, 100);
            if (!heap_push(sim, it))
                return false;
        }
        it.agent = 0;
        it.what = IT_RESOURCE;
        it.ts = t0 + 1 + sm_rng_below(&sw->rng, RESOURCE_MS);
        if (!heap_push(sim, it))
            return false;
        it.what = IT_CONSENSUS;
        it.ts = t0 + 1 + sm_rng_below(&sw->rng, CONSENSUS_MS);
        if (!heap_push(sim, it))
            return false;
        if (sim->task_rate > 0) {
            sw->next_arrival = 1.0 + sm_rng_range(&sw->rng, 0.0, 1000.0 /
                                           sim->task_rate);
            it.what = IT_ARRIVAL;
            it.ts = t0 + (int64_t)sw->next_arrival;
            if (!heap_push(sim, it))
                return false;
        }
    }
    return true;
}

sm_status sm_sim_create(sm_sim **out, const sm_sim_config *cfg)
{
    if (out == NULL || cfg == NULL)
        return SM_ERR_INVALID;
    if (sm_sim_config_validate(cfg, NULL, 0) != SM_OK)
        return SM_ERR_CONFIG;
    sm_sim *sim = calloc(1, sizeof *sim);
    if (sim == NULL)
        return SM_ERR_NOMEM;
    sim->cfg = *cfg;
    double per_swarm = cfg->rate / cfg->swarms - fixed_rate(cfg->agents);
    sim->task_rate = per_swarm > 0 ? per_swarm / 3.0 : 0.0;
    sim->quota = sm_sim_agent_quota(cfg->agents);

    size_t n_agents = (size_t)cfg->swarms * cfg->agents;
    /* Scheduled items: per swarm two per agent (registration, heartbeat),
     * resource, consensus, arrival, plus the tasks in flight (task rate x
     * ~2.5 s from queued to done, with slack; grows if ever short). */
    double inflight = sim->task_rate * cfg->swarms * 3.0;
    if (inflight > 1e6)
        inflight = 1e6;
    size_t cap = n_agents * 2 + (size_t)cfg->swarms * 4 +
                 (size_t)inflight + 64;
    sim->swarms = calloc(cfg->swarms, sizeof *sim->swarms);
    sim->agent_mem = calloc(n_agents, sizeof *sim->agent_mem);
    if (sim->swarms == NULL || sim->agent_mem == NULL ||
        sm_evq_init(&sim->events, sizeof(item), cap) != SM_OK) {
        sm_sim_destroy(sim);
        return SM_ERR_NOMEM;
    }

    for (uint32_t s = 0; s < cfg->swarms; s++) {
        swarm_st *sw = &sim->swarms[s];
        sw->rng = sm_rng_stream(cfg->seed, s);
        sw->agents = sim->agent_mem + (size_t)s * cfg->agents;
        sw->budget = budget_for(sim->task_rate);
        sw->window_start = cfg->start_ms;
        sw->pending = PENDING_MIN + sm_rng_below(&sw->rng, PENDING_MAX - PENDING_MIN);
        sw->memory = 3ULL << 30;
        sw->cons_acc = sm_rng_uni(&sw->rng);
        for (uint32_t a = 0; a < cfg->agents; a++)
            sw->agents[a].since_fail = sm_rng_below(&sw->rng, FAIL_GAP);
    }
    if (!schedule_start(sim)) {
        sm_sim_destroy(sim);
        return SM_ERR_NOMEM;
    }
    *out = sim;
    return SM_OK;
}

sm_status sm_sim_create_world(sm_sim **out, const sm_world_config *wc)
{
    if (out == NULL || wc == NULL)
        return SM_ERR_INVALID;
    sm_sim *sim = calloc(1, sizeof *sim);
    if (sim == NULL)
        return SM_ERR_NOMEM;
    sm_status rc = sm_world_create(&sim->world, wc);
    if (rc != SM_OK) {
        free(sim);
        return rc;
    }
    *out = sim;
    return SM_OK;
}

const sm_world *sm_sim_world(const sm_sim *sim)
{
    return sim ? sim->world : NULL;
}

sm_world *sm_sim_world_mut(sm_sim *sim)
{
    return sim ? sim->world : NULL;
}

void sm_sim_destroy(sm_sim *sim)
{
    if (sim == NULL)
        return;
    sm_world_destroy(sim->world);
    sm_evq_free(&sim->events);
    free(sim->agent_mem);
    free(sim->swarms);
    free(sim);
}

sm_status sm_sim_status(const sm_sim *sim)
{
    if (sim && sim->world)
        return sm_world_status(sim->world);
    return sim ? sim->status : SM_ERR_INVALID;
}

uint64_t sm_sim_count(const sm_sim *sim)
{
    if (sim && sim->world)
        return sm_world_count(sim->world);
    return sim ? sim->count : 0;
}

double sm_sim_task_rate(const sm_sim *sim)
{
    if (sim && sim->world)
        return sm_world_task_rate(sim->world);
    return sim ? sim->task_rate : 0.0;
}

/* ------------------------------------------------------------- emitters */

/* Packs msg into sim->buf; false if it does not fit (cannot happen with
 * the bounded ids the config allows). */
static bool pack(sm_sim *sim, const ProtobufCMessage *msg, sm_sim_msg *out)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (n > sizeof sim->buf) {
        sim->status = SM_ERR_FULL;
        return false;
    }
    out->len = protobuf_c_message_pack(msg, sim->buf);
    out->payload = sim->buf;
    return true;
}

static void subject(sm_sim *sim, uint32_t s, const char *kind,
                    const char *id)
{
    snprintf(sim->subject, sizeof sim->subject, "swarm.s%u.%s.%s", s, kind,
             id);
}

static const char *task_name(sm_sim *sim, uint32_t s, uint64_t task)
{
    snprintf(sim->task_id, sizeof sim->task_id, "s%u-t%llu", s,
             (unsigned long long)task);
    return sim->task_id;
}

static bool emit_agent(sm_sim *sim, const item *it, sm_sim_msg *out)
{
    static char *caps[4][2] = {
        {"plan", "research"}, {"code", "review"},
        {"research", "summarize"}, {"code", "plan"},
    };
    char name[16];
    snprintf(name, sizeof name, "a%u", it->agent);
    Swarmmedic__V1__AgentLifecycle m = SWARMMEDIC__V1__AGENT_LIFECYCLE__INIT;
    m.ts_ms = it->ts;
    m.agent = name;
    m.kind = SWARMMEDIC__V1__AGENT_LIFECYCLE__KIND__KIND_REGISTERED;
    m.dynamic = 0;
    m.n_capabilities = 2;
    m.capabilities = caps[it->agent % 4];
    subject(sim, it->swarm, "agent", name);
    out->kind = SM_SIM_AGENT;
    return pack(sim, &m.base, out);
}

static bool emit_heartbeat(sm_sim *sim, item *it, sm_sim_msg *out)
{
    swarm_st *sw = &sim->swarms[it->swarm];
    agent_st *ag = &sw->agents[it->agent];
    char name[16];
    snprintf(name, sizeof name, "a%u", it->agent);
    Swarmmedic__V1__Heartbeat m = SWARMMEDIC__V1__HEARTBEAT__INIT;
    m.ts_ms = it->ts;
    m.agent = name;
    m.state = ag->inflight > 0 ? SWARMMEDIC__V1__HEARTBEAT__STATE__STATE_BUSY
                               : SWARMMEDIC__V1__HEARTBEAT__STATE__STATE_IDLE;
    if (ag->inflight > 0)
        m.current_task = (char *)task_name(sim, it->swarm, ag->current);
    m.inflight = ag->inflight;
    m.progress = ag->progress;
    subject(sim, it->swarm, "heartbeat", name);
    out->kind = SM_SIM_HEARTBEAT;
    if (!pack(sim, &m.base, out))
        return false;
    it->ts += HEARTBEAT_MS;
    return heap_push(sim, *it);
}

/* Token usage of swarm s at t, with the budget window and token faults. */
static uint64_t tokens_used(sm_sim *sim, uint32_t s, int64_t t)
{
    swarm_st *sw = &sim->swarms[s];
    const sm_sim_fault *f = fault_at(sim, SM_SIM_FAULT_TOKEN, s, t);
    if (f == NULL && sw->token_fault_seen) {
        /* The runaway consumer is stopped: a fresh budget window. */
        sw->token_fault_seen = false;
        sw->consumed = 0;
        sw->window_start = t;
    }
    if (t - sw->window_start >= BUDGET_WINDOW_MS) {
        sw->window_start += (t - sw->window_start) / BUDGET_WINDOW_MS *
                            BUDGET_WINDOW_MS;
        sw->consumed = 0;
    }
    double b = (double)sw->budget;
    double spread = (double)sw->consumed;
    if (spread > TOKEN_SPREAD * b)
        spread = TOKEN_SPREAD * b;
    double used = TOKEN_CARRY * b + spread;
    if (f != NULL) {
        sw->token_fault_seen = true;
        double u = 0.55 + 0.42 * ramp(sim, f, t, 0.4) +
                   sm_rng_range(&sw->rng, -0.01, 0.01);
        if (u * b > used)
            used = u * b;
    }
    return (uint64_t)used;
}

/* Pending tasks of swarm s at t: a bounded walk, or a queue fault. */
static uint32_t pending(sm_sim *sim, uint32_t s, int64_t t)
{
    swarm_st *sw = &sim->swarms[s];
    int p = (int)sw->pending + (int)sm_rng_below(&sw->rng, 7) - 3;
    p = p < PENDING_MIN ? PENDING_MIN : p > PENDING_MAX ? PENDING_MAX : p;
    sw->pending = (uint32_t)p;
    const sm_sim_fault *f = fault_at(sim, SM_SIM_FAULT_QUEUE, s, t);
    double v = p;
    if (f != NULL) {
        v = p + (QUEUE_PEAK - p) * ramp(sim, f, t, 1.0 / 3.0) +
            sm_rng_range(&sw->rng, -5.0, 5.0);
    } else if ((f = fault_ended(sim, SM_SIM_FAULT_QUEUE, s, t,
                                QUEUE_DRAIN_MS)) != NULL) {
        double el = (double)(t - sim->cfg.start_ms - f->end_ms);
        v = QUEUE_PEAK + (p - QUEUE_PEAK) * (el / QUEUE_DRAIN_MS);
    }
    return v < 0 ? 0 : (uint32_t)(v + 0.5);
}

static bool emit_resource(sm_sim *sim, item *it, sm_sim_msg *out)
{
    static const uint32_t share[5] = {5, 15, 40, 25, 15};
    uint32_t s = it->swarm;
    swarm_st *sw = &sim->swarms[s];
    Swarmmedic__V1__PendingByPriority pp[5];
    Swarmmedic__V1__PendingByPriority *ppp[5];
    uint32_t total = pending(sim, s, it->ts), left = total;
    for (int i = 0; i < 5; i++) {
        Swarmmedic__V1__PendingByPriority z =
            SWARMMEDIC__V1__PENDING_BY_PRIORITY__INIT;
        pp[i] = z;
        pp[i].priority = (Swarmmedic__V1__Priority)(i + 1);
        uint32_t c = i < 4 ? total * share[i] / 100 : left;
        pp[i].count = c;
        left -= c;
        ppp[i] = &pp[i];
    }
    int64_t mem = (int64_t)sw->memory +
                  ((int64_t)sm_rng_below(&sw->rng, 129) - 64) * (1 << 20);
    if (mem < (2LL << 30))
        mem = 2LL << 30;
    if (mem > (4LL << 30))
        mem = 4LL << 30;
    sw->memory = (uint64_t)mem;

    uint32_t active = sim->cfg.agents;
    const sm_sim_fault *f = fault_at(sim, SM_SIM_FAULT_QUOTA, s, it->ts);
    if (f != NULL)
        active = sim->quota + (ramp(sim, f, it->ts, 1.0) >= 0.5 ? 1 : 0);

    Swarmmedic__V1__ResourceSample m = SWARMMEDIC__V1__RESOURCE_SAMPLE__INIT;
    m.ts_ms = it->ts;
    m.source = "scheduler";
    m.token_budget = sw->budget;
    m.tokens_used = tokens_used(sim, s, it->ts);
    m.memory_used_bytes = sw->memory;
    m.memory_limit_bytes = 8ULL << 30;
    m.n_pending = 5;
    m.pending = ppp;
    m.active_agents = active;
    m.agent_quota = sim->quota;
    subject(sim, s, "resource", "scheduler");
    out->kind = SM_SIM_RESOURCE;
    if (!pack(sim, &m.base, out))
        return false;
    it->ts += RESOURCE_MS;
    return heap_push(sim, *it);
}

static bool emit_consensus(sm_sim *sim, item *it, sm_sim_msg *out)
{
    swarm_st *sw = &sim->swarms[it->swarm];
    bool timeout = false;
    if (fault_at(sim, SM_SIM_FAULT_CONSENSUS, it->swarm, it->ts) != NULL) {
        sw->cons_acc += 0.3;
        if (sw->cons_acc >= 1.0) {
            sw->cons_acc -= 1.0;
            timeout = true;
        }
    } else if (sw->since_timeout >= TIMEOUT_GAP &&
               sm_rng_uni(&sw->rng) < TIMEOUT_P) {
        timeout = true;
    }
    sw->since_timeout = timeout ? 0 : sw->since_timeout + 1;
    uint32_t parts = sim->cfg.agents < 5 ? sim->cfg.agents : 5;
    Swarmmedic__V1__ConsensusRound m = SWARMMEDIC__V1__CONSENSUS_ROUND__INIT;
    m.ts_ms = it->ts;
    m.group = "g0";
    m.round = ++sw->rounds;
    m.outcome = timeout ? SWARMMEDIC__V1__CONSENSUS_ROUND__OUTCOME__OUTCOME_TIMEOUT
                        : SWARMMEDIC__V1__CONSENSUS_ROUND__OUTCOME__OUTCOME_OK;
    m.duration_ms = timeout ? 5000 : 150 + sm_rng_below(&sw->rng, 750);
    m.participants = parts;
    m.quorum = parts / 2 + 1;
    subject(sim, it->swarm, "consensus", "g0");
    out->kind = SM_SIM_CONSENSUS;
    if (!pack(sim, &m.base, out))
        return false;
    it->ts += CONSENSUS_MS;
    return heap_push(sim, *it);
}

/* Wall duration of `work` ms of normal-speed work started at t0 on the
 * slow agent of swarm s: it runs SLOW_FACTOR times slower while a slow
 * fault is active, so a task in flight when a fault starts or ends is
 * slowed for just that part. (Completions then shift gradually, longest
 * first after the fault, instead of slow and fast ones interleaving.) */
static double slowed(const sm_sim *sim, uint32_t s, int64_t t0, double work)
{
    double t = (double)(t0 - sim->cfg.start_ms), left = work;
    for (int guard = 0; guard < 2 * SM_SIM_MAX_FAULTS + 2; guard++) {
        const sm_sim_fault *in = NULL;
        double next = -1.0;
        for (size_t i = 0; i < sim->cfg.n_faults; i++) {
            const sm_sim_fault *f = &sim->cfg.faults[i];
            if (f->kind != SM_SIM_FAULT_SLOW || f->swarm != s)
                continue;
            if (t >= (double)f->start_ms && t < (double)f->end_ms) {
                if (in == NULL || f->end_ms > in->end_ms)
                    in = f;
            } else if ((double)f->start_ms > t &&
                       (next < 0 || (double)f->start_ms < next)) {
                next = (double)f->start_ms;
            }
        }
        if (in != NULL) {
            double can = ((double)in->end_ms - t) / SLOW_FACTOR;
            if (left <= can)
                return t + left * SLOW_FACTOR -
                       (double)(t0 - sim->cfg.start_ms);
            left -= can;
            t = (double)in->end_ms;
        } else {
            if (next < 0 || left <= next - t)
                return t + left - (double)(t0 - sim->cfg.start_ms);
            left -= next - t;
            t = next;
        }
    }
    return t + left - (double)(t0 - sim->cfg.start_ms);
}

static Swarmmedic__V1__Priority pick_priority(uint64_t *rng)
{
    uint32_t r = sm_rng_below(rng, 100);
    if (r < 5)
        return SWARMMEDIC__V1__PRIORITY__PRIORITY_CRITICAL;
    if (r < 20)
        return SWARMMEDIC__V1__PRIORITY__PRIORITY_HIGH;
    if (r < 65)
        return SWARMMEDIC__V1__PRIORITY__PRIORITY_MEDIUM;
    if (r < 90)
        return SWARMMEDIC__V1__PRIORITY__PRIORITY_LOW;
    return SWARMMEDIC__V1__PRIORITY__PRIORITY_BACKGROUND;
}

/* Moves a task item one stage on and reschedules it (or, for the
 * arrival, schedules the task and the next arrival). */
static bool advance_task(sm_sim *sim, item *it)
{
    swarm_st *sw = &sim->swarms[it->swarm];
    agent_st *ag = &sw->agents[it->agent];
    switch (it->what) {
    case IT_ARRIVAL: {
        item next = *it;
        sw->next_arrival += sm_rng_range(&sw->rng, 0.25, 1.75) * 1000.0 /
                            sim->task_rate;
        next.ts = sim->cfg.start_ms + (int64_t)sw->next_arrival;
        if (!heap_push(sim, next))
            return false;
        it->what = IT_START;
        it->ts += 20 + sm_rng_below(&sw->rng, 380);
        return heap_push(sim, *it);
    }
    case IT_START: {
        ag->inflight++;
        ag->current = it->task;
        double d = TASK_MEDIAN_MS * skewed(&sw->rng);
        bool fail = ag->since_fail >= FAIL_GAP && sm_rng_uni(&sw->rng) < FAIL_P;
        ag->since_fail = fail ? 0 : ag->since_fail + 1;
        it->ok = !fail;
        if (fail) {
            d *= sm_rng_range(&sw->rng, 0.3, 0.9);
            it->used = (uint32_t)(it->used * sm_rng_range(&sw->rng, 0.2, 0.6));
        }
        uint32_t slow = sim->cfg.agents > 1 ? SM_SIM_SLOW_AGENT : 0;
        if (it->agent == slow)
            d = slowed(sim, it->swarm, it->ts, d);
        it->dur_ms = (uint32_t)d;
        it->what = IT_END;
        it->ts += it->dur_ms;
        return heap_push(sim, *it);
    }
    default:
        if (ag->inflight > 0)
            ag->inflight--;
        ag->progress += it->used;
        sw->consumed += it->used;
        return true;
    }
}

static bool emit_task(sm_sim *sim, item *it, sm_sim_msg *out)
{
    swarm_st *sw = &sim->swarms[it->swarm];
    if (it->what == IT_ARRIVAL) {
        it->task = ++sw->tasks;
        it->agent = sm_rng_below(&sw->rng, sim->cfg.agents);
        it->prio = (uint8_t)pick_priority(&sw->rng);
        it->type = (uint8_t)sm_rng_below(&sw->rng, TASK_TYPES);
        it->est = (uint32_t)(TASK_TOKENS * skewed(&sw->rng));
        it->used = (uint32_t)(it->est * sm_rng_range(&sw->rng, 0.7, 1.3));
    }
    char name[16];
    snprintf(name, sizeof name, "a%u", it->agent);
    Swarmmedic__V1__TaskEvent m = SWARMMEDIC__V1__TASK_EVENT__INIT;
    m.ts_ms = it->ts;
    m.agent = name;
    m.task_id = (char *)task_name(sim, it->swarm, it->task);
    m.task_type = (char *)task_types[it->type];
    m.priority = (Swarmmedic__V1__Priority)it->prio;
    m.tokens_estimated = it->est;
    m.attempt = 1;
    switch (it->what) {
    case IT_ARRIVAL:
        m.kind = SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_QUEUED;
        break;
    case IT_START:
        m.kind = SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_STARTED;
        break;
    default:
        m.kind = it->ok ? SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_COMPLETED
                        : SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_FAILED;
        m.tokens_used = it->used;
        m.duration_ms = it->dur_ms;
        break;
    }
    subject(sim, it->swarm, "task", name);
    out->kind = SM_SIM_TASK;
    if (!pack(sim, &m.base, out))
        return false;
    return advance_task(sim, it);
}

bool sm_sim_next(sm_sim *sim, sm_sim_msg *out)
{
    if (sim != NULL && sim->world != NULL)
        return sm_world_next(sim->world, out);
    sm_evq_key first;
    if (sim == NULL || out == NULL || sim->done ||
        !sm_evq_peek(&sim->events, &first))
        return false;
    const sm_sim_config *c = &sim->cfg;
    if (c->duration_ms > 0 && first.ts >= c->start_ms + c->duration_ms) {
        sim->done = true;
        return false;
    }
    item it;
    sm_evq_pop(&sim->events, &it);
    out->ts_ms = it.ts;
    out->swarm = it.swarm;
    bool ok;
    switch (it.what) {
    case IT_AGENT:
        ok = emit_agent(sim, &it, out);
        break;
    case IT_HEARTBEAT:
        ok = emit_heartbeat(sim, &it, out);
        break;
    case IT_RESOURCE:
        ok = emit_resource(sim, &it, out);
        break;
    case IT_CONSENSUS:
        ok = emit_consensus(sim, &it, out);
        break;
    default:
        ok = emit_task(sim, &it, out);
        break;
    }
    if (!ok) {
        sim->done = true;
        return false;
    }
    out->subject = sim->subject;
    sim->count++;
    return true;
}
