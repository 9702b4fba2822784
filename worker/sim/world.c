/*
 * world.c - the realistic simulated world (see world.h).
 *
 * One min-heap of scheduled items ordered by (event time, scheduling
 * sequence) drives everything, as in simgen.c; an item may yield a message
 * or only change the world (arrivals, the autoscaler, top-ups, deaths), so
 * sm_world_next() pops until one yields a message. Tasks wait in five FIFO
 * rings (one per priority); free agent slots wait in a FIFO ring of
 * (agent, epoch) pairs, an entry whose epoch is stale (the agent died or
 * was removed since) being dropped when it comes up.
 */
#include "world_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evq.h"
#include "rng.h"
#include "simgen.h"
#include "swarm_medic.pb-c.h"

/* ------------------------------------------------------------- maths */

double sm_world_exp(double x)
{
    if (x > 700.0)
        x = 700.0;
    if (x < -700.0)
        return 0.0;
    /* x = k ln2 + r, |r| <= ln2 / 2 */
    const double ln2 = 0.6931471805599453;
    int k = (int)(x / ln2 + (x >= 0 ? 0.5 : -0.5));
    double r = x - k * ln2;
    double term = 1.0, sum = 1.0;
    for (int i = 1; i < 18; i++) {
        term *= r / i;
        sum += term;
    }
    while (k > 0) {
        sum *= 2.0;
        k--;
    }
    while (k < 0) {
        sum *= 0.5;
        k++;
    }
    return sum;
}

double sm_world_log(double x)
{
    if (!(x > 0.0))
        return -745.0;
    int e = 0;
    while (x >= 2.0) {
        x *= 0.5;
        e++;
    }
    while (x < 1.0) {
        x *= 2.0;
        e--;
    }
    /* ln x = 2 atanh(s), s = (x-1)/(x+1) in [0, 1/3) */
    double s = (x - 1.0) / (x + 1.0), s2 = s * s, p = s, sum = 0.0;
    for (int i = 1; i < 40; i += 2) {
        sum += p / i;
        p *= s2;
    }
    return 2.0 * sum + e * 0.6931471805599453;
}

/* A standard normal-like draw: four uniforms (Irwin-Hall), bounded at
 * +-3.46. */
static double normalish(uint64_t *s)
{
    double t = sm_rng_uni(s) + sm_rng_uni(s) + sm_rng_uni(s) + sm_rng_uni(s);
    return (t - 2.0) * 1.7320508075688772;
}

static double lognormal(uint64_t *s, double sigma)
{
    return sm_world_exp(sigma * normalish(s));
}

/* Exponential with the given mean. */
static double expo(uint64_t *s, double mean)
{
    return -sm_world_log(1.0 - sm_rng_uni(s)) * mean;
}

/* ------------------------------------------------------------- config */

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

static const char *const fault_names[SM_WF_TYPES + 1] = {
    "unknown", "slow_agent", "failing_agent", "slow_fraction", "token_burn",
    "memory_leak", "queue_surge", "quota_saturation",
    "consensus_degradation", "quorum_loss", "stuck_agent",
    "degrading_agent", "crash_restart",
};

const char *sm_wfault_type_str(sm_wfault_type t)
{
    return (t >= 1 && t <= SM_WF_TYPES) ? fault_names[t] : "unknown";
}

sm_wfault_type sm_wfault_type_parse(const char *s)
{
    for (int i = 1; s && i <= SM_WF_TYPES; i++)
        if (strcmp(s, fault_names[i]) == 0)
            return (sm_wfault_type)i;
    return (sm_wfault_type)0;
}

void sm_wswarm_default(sm_wswarm *s, uint32_t index)
{
    static const sm_wtask_type mix[4] = {
        {"search", 3.0, 0.45, 5.0, 800.0},
        {"summarize", 8.0, 0.5, 3.0, 2500.0},
        {"codegen", 30.0, 0.55, 1.5, 9000.0},
        {"review", 12.0, 0.5, 2.0, 3000.0},
    };
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "s%u", index);
    s->agents = 40;
    s->concurrency = 1;
    s->max_dynamic = 0;         /* auto */
    s->reserve_pending = 20;
    s->speed = 1.0;
    s->utilisation = 0.6;
    s->burst_every_s = 150.0;
    s->burst_tasks = 15.0;
    s->fail_rate = 0.03;
    s->outlier_rate = 0.004;
    s->n_types = 4;
    memcpy(s->types, mix, sizeof mix);
    s->groups = 2;
    s->group_size = 5;
    s->round_s = 3.0;
    s->timeout_rate = 0.02;
    s->heartbeat_s = 5.0;
    s->heartbeat_jitter_s = 0.8;
    s->heartbeat_miss = 0.01;
    s->stall_rate = 0.35;
    s->resource_s = 1.0;
    s->scale_every_s = 10.0;
    s->scale_up_pending = 30.0;
    s->scale_down_pending = 5.0;
    s->topup_at = 0.68;
    s->topup_frac = 0.5;
    s->memory_gb = 3.0;
    s->memory_limit_gb = 8.0;
}

void sm_world_config_default(sm_world_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = 1;
    cfg->start_ms = SM_SIM_DEFAULT_START_MS;
    cfg->duration_ms = 15LL * 60 * 1000;
    cfg->n_swarms = 1;
    sm_wswarm_default(&cfg->swarms[0], 0);
    sm_wcoord_default(&cfg->coord);
}

double sm_wswarm_mean_task_s(const sm_wswarm *s)
{
    double w = 0.0, d = 0.0;
    for (size_t i = 0; i < s->n_types; i++) {
        const sm_wtask_type *t = &s->types[i];
        w += t->weight;
        d += t->weight * t->median_s * sm_world_exp(t->sigma * t->sigma / 2);
    }
    return w > 0 ? d / w : 1.0;
}

static double mean_tokens(const sm_wswarm *s)
{
    double w = 0.0, k = 0.0;
    for (size_t i = 0; i < s->n_types; i++) {
        w += s->types[i].weight;
        k += s->types[i].weight * s->types[i].tokens;
    }
    return w > 0 ? k / w : 0.0;
}

static uint32_t max_dynamic(const sm_wswarm *s)
{
    if (s->max_dynamic)
        return s->max_dynamic;
    uint32_t d = s->agents / 4;
    return d < 4 ? 4 : d;
}

static uint32_t quota_of(const sm_wswarm *s)
{
    return s->quota ? s->quota : s->agents + s->reserve + max_dynamic(s);
}

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            say(why, cap, __VA_ARGS__);                                      \
            return SM_ERR_CONFIG;                                            \
        }                                                                    \
    } while (0)

sm_status sm_world_config_validate(const sm_world_config *cfg, char *why,
                                   size_t cap)
{
    CHECK(cfg != NULL, "no world configuration given");
    CHECK(cfg->n_swarms >= 1 && cfg->n_swarms <= SM_WORLD_MAX_SWARMS,
          "a world has 1..%d swarms", SM_WORLD_MAX_SWARMS);
    CHECK(cfg->duration_ms > 0 && cfg->duration_ms < 7LL * 86400000,
          "duration must be over 0 and under a week");
    CHECK(cfg->start_ms > 0 && cfg->start_ms < INT64_MAX / 4,
          "start must be a positive event time");
    CHECK(cfg->n_faults <= SM_WORLD_MAX_FAULTS, "at most %d faults",
          SM_WORLD_MAX_FAULTS);
    for (size_t i = 0; i < cfg->n_swarms; i++) {
        const sm_wswarm *s = &cfg->swarms[i];
        CHECK(s->id[0] != 0 && strchr(s->id, '.') == NULL &&
              strchr(s->id, '*') == NULL && strchr(s->id, '>') == NULL &&
              strchr(s->id, ' ') == NULL,
              "swarm %zu: id must be a non-empty subject token", i);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(cfg->swarms[j].id, s->id) != 0,
                  "swarm id \"%s\" appears twice", s->id);
        CHECK(s->agents >= 1 && s->agents <= 20000,
              "swarm %s: agents must be 1..20000", s->id);
        CHECK(s->reserve <= 20000 && s->max_dynamic <= 20000,
              "swarm %s: reserve and max_dynamic at most 20000", s->id);
        CHECK(s->concurrency >= 1 && s->concurrency <= 64,
              "swarm %s: concurrency must be 1..64", s->id);
        CHECK(s->speed > 0.01 && s->speed <= 100,
              "swarm %s: speed must be in (0.01, 100]", s->id);
        CHECK(s->arrival_per_s >= 0 && s->arrival_per_s <= 1e5 &&
              s->utilisation >= 0 && s->utilisation <= 5,
              "swarm %s: arrival_per_s 0..100000, utilisation 0..5", s->id);
        CHECK(s->arrival_per_s > 0 || s->utilisation > 0,
              "swarm %s: set arrival_per_s or utilisation", s->id);
        CHECK(s->fail_rate >= 0 && s->fail_rate <= 1 &&
              s->outlier_rate >= 0 && s->outlier_rate <= 1 &&
              s->timeout_rate >= 0 && s->timeout_rate <= 1 &&
              s->heartbeat_miss >= 0 && s->heartbeat_miss < 1 &&
              s->stall_rate >= 0 && s->stall_rate <= 1,
              "swarm %s: rates must be within 0..1", s->id);
        CHECK(s->n_types >= 1 && s->n_types <= SM_WORLD_MAX_TYPES,
              "swarm %s: 1..%d task types", s->id, SM_WORLD_MAX_TYPES);
        for (size_t t = 0; t < s->n_types; t++) {
            const sm_wtask_type *ty = &s->types[t];
            CHECK(ty->name[0] && ty->median_s > 0 && ty->median_s < 86400 &&
                  ty->sigma >= 0 && ty->sigma <= 3 && ty->weight > 0 &&
                  ty->tokens >= 0,
                  "swarm %s: task type %zu needs a name, median_s in (0, "
                  "86400), sigma 0..3, weight > 0, tokens >= 0", s->id, t);
        }
        CHECK(s->groups <= SM_WORLD_MAX_GROUPS && s->group_size >= 1 &&
              s->group_size <= 1000,
              "swarm %s: groups 0..%d, group_size 1..1000", s->id,
              SM_WORLD_MAX_GROUPS);
        CHECK(s->groups == 0 || (s->round_s >= 0.1 && s->round_s <= 3600),
              "swarm %s: round_s 0.1..3600", s->id);
        CHECK(s->heartbeat_s >= 0.1 && s->heartbeat_s <= 3600 &&
              s->heartbeat_jitter_s >= 0 &&
              s->heartbeat_jitter_s < s->heartbeat_s,
              "swarm %s: heartbeat_s 0.1..3600, jitter under it", s->id);
        CHECK(s->resource_s >= 0.1 && s->resource_s <= 3600 &&
              s->scale_every_s >= 1 && s->scale_every_s <= 3600,
              "swarm %s: resource_s 0.1..3600, scale_every_s 1..3600", s->id);
        CHECK(s->budget >= 0 && s->topup_at > 0 && s->topup_at <= 1 &&
              s->topup_frac >= 0 && s->topup_frac <= 100,
              "swarm %s: budget >= 0, topup_at in (0, 1], topup_frac 0..100",
              s->id);
        CHECK(s->memory_gb > 0 && s->memory_limit_gb > s->memory_gb + 1,
              "swarm %s: memory_gb > 0 and at least 1 GB under the limit",
              s->id);
        CHECK(quota_of(s) >= s->agents + s->reserve,
              "swarm %s: quota below agents + reserve", s->id);
    }
    const sm_wcoord *co = &cfg->coord;
    CHECK(co->delay_mean_s >= 0 && co->delay_mean_s <= 3600 &&
          co->delay_jitter_s >= 0 && co->delay_jitter_s <= co->delay_mean_s,
          "coordinator: delay_s 0..3600, jitter_s 0..delay_s");
    CHECK(co->fail_rate >= 0 && co->reject_rate >= 0 &&
          co->fail_rate + co->reject_rate <= 1,
          "coordinator: fail_rate and reject_rate 0..1, together at most 1");
    for (size_t i = 0; i < cfg->n_faults; i++) {
        const sm_wfault *f = &cfg->faults[i];
        const char *k = sm_wfault_type_str(f->type);
        CHECK(strcmp(k, "unknown") != 0, "fault %zu: unknown type", i + 1);
        CHECK(f->swarm < cfg->n_swarms, "fault %zu (%s): no such swarm",
              i + 1, k);
        const sm_wswarm *s = &cfg->swarms[f->swarm];
        CHECK(f->onset_ms >= 0 && f->ramp_ms >= 0 &&
              f->onset_ms < cfg->duration_ms &&
              (f->end_ms == 0 || f->end_ms > f->onset_ms),
              "fault %zu (%s): onset within the run, end after it", i + 1, k);
        CHECK(f->magnitude >= 0 && f->magnitude <= 1e6 &&
              f->fraction >= 0 && f->fraction <= 1 && f->stop_at >= 0 &&
              f->stop_at <= 1,
              "fault %zu (%s): magnitude >= 0, fraction and stop_at 0..1",
              i + 1, k);
        CHECK(f->n_agents <= SM_WORLD_FAULT_AGENTS &&
              f->n_groups <= SM_WORLD_FAULT_AGENTS,
              "fault %zu (%s): at most %d agents and groups", i + 1, k,
              SM_WORLD_FAULT_AGENTS);
        for (size_t a = 0; a < f->n_agents; a++)
            CHECK(f->agents[a] < s->agents,
                  "fault %zu (%s): agent a%u is not a static agent of %s",
                  i + 1, k, f->agents[a], s->id);
        for (size_t g = 0; g < f->n_groups; g++)
            CHECK(f->groups[g] < s->groups,
                  "fault %zu (%s): group g%u is not a group of %s", i + 1, k,
                  f->groups[g], s->id);
        bool per_agent = f->type == SM_WF_SLOW_AGENT ||
                         f->type == SM_WF_FAILING_AGENT ||
                         f->type == SM_WF_STUCK_AGENT ||
                         f->type == SM_WF_DEGRADING_AGENT ||
                         f->type == SM_WF_CRASH_RESTART;
        CHECK(!per_agent || f->n_agents > 0,
              "fault %zu (%s) needs \"agents\"", i + 1, k);
        CHECK(f->type != SM_WF_SLOW_FRACTION || f->n_agents > 0 ||
              f->fraction > 0, "fault %zu (%s) needs a fraction or agents",
              i + 1, k);
        CHECK(f->type != SM_WF_CRASH_RESTART || f->end_ms > 0,
              "fault %zu (%s) needs end_s (the restart)", i + 1, k);
    }
    return SM_OK;
}

/* ------------------------------------------------------------- faults */

double sm_wfault_intensity(const sm_wfault *f, int64_t rel, int64_t run_ms)
{
    int64_t end = f->end_ms > 0 ? f->end_ms : run_ms + 1;
    if (rel < f->onset_ms || rel >= end)
        return 0.0;
    if (f->ramp_ms > 0 && rel < f->onset_ms + f->ramp_ms) {
        double r = (double)(rel - f->onset_ms) / (double)f->ramp_ms;
        return f->accelerating ? r * r : r;
    }
    return 1.0;
}

bool sm_wfault_has_agent(const sm_wfault *f, uint32_t a, uint32_t n)
{
    if (f->n_agents > 0) {
        for (size_t i = 0; i < f->n_agents; i++)
            if (f->agents[i] == a)
                return true;
        return false;
    }
    if (f->type != SM_WF_SLOW_FRACTION || a >= n)
        return false;
    uint64_t k = (uint64_t)(f->fraction * n + 0.5);
    return (a * k) / n != ((uint64_t)(a + 1) * k) / n;
}

bool sm_w_has_group(const sm_wfault *f, uint32_t g)
{
    if (f->n_groups == 0)
        return true;
    for (size_t i = 0; i < f->n_groups; i++)
        if (f->groups[i] == g)
            return true;
    return false;
}

double sm_w_intensity(const sm_world *w, const sm_wfault *f, int64_t ts)
{
    int64_t healed = w->fault_healed[f - w->cfg.faults];
    if (healed > 0 && ts >= healed)
        return 0.0;
    return sm_wfault_intensity(f, ts - w->cfg.start_ms, w->cfg.duration_ms);
}

/* Whether agent fault f still touches agent a: not once a restart after
 * its onset healed the agent. */
static bool touches(const sm_world *w, uint32_t s, uint32_t a,
                    const sm_wfault *f)
{
    int64_t h = w->sw[s].ag[a].healed_at;
    return h == 0 || w->cfg.start_ms + f->onset_ms > h;
}

/* Slow-down factor of a task an agent starts at ts. */
static double slow_factor(const sm_world *w, uint32_t s, uint32_t a,
                          int64_t ts)
{
    double k = 1.0;
    uint32_t n = w->sw[s].n_static;
    for (size_t i = 0; i < w->cfg.n_faults; i++) {
        const sm_wfault *f = &w->cfg.faults[i];
        if (f->swarm != s || (f->type != SM_WF_SLOW_AGENT &&
                              f->type != SM_WF_SLOW_FRACTION &&
                              f->type != SM_WF_DEGRADING_AGENT))
            continue;
        if (!sm_wfault_has_agent(f, a, n) || !touches(w, s, a, f))
            continue;
        double x = sm_w_intensity(w, f, ts);
        if (x > 0)
            k *= 1.0 + (f->magnitude - 1.0) * x;
    }
    return k;
}

static double fail_chance(const sm_world *w, uint32_t s, uint32_t a,
                          int64_t ts)
{
    double p = w->cfg.swarms[s].fail_rate;
    uint32_t n = w->sw[s].n_static;
    for (size_t i = 0; i < w->cfg.n_faults; i++) {
        const sm_wfault *f = &w->cfg.faults[i];
        if (f->swarm != s || !sm_wfault_has_agent(f, a, n) ||
            !touches(w, s, a, f))
            continue;
        double x = sm_w_intensity(w, f, ts);
        if (x <= 0)
            continue;
        if (f->type == SM_WF_FAILING_AGENT && f->magnitude * x > p)
            p = f->magnitude * x;
        else if (f->type == SM_WF_DEGRADING_AGENT)
            p += 0.4 * x;
    }
    return p > 1.0 ? 1.0 : p;
}

/* The stuck fault holding agent a at ts, or NULL. */
static const sm_wfault *stuck_fault(const sm_world *w, uint32_t s,
                                    uint32_t a, int64_t ts)
{
    for (size_t i = 0; i < w->cfg.n_faults; i++) {
        const sm_wfault *f = &w->cfg.faults[i];
        if (f->swarm == s && f->type == SM_WF_STUCK_AGENT &&
            sm_wfault_has_agent(f, a, w->sw[s].n_static) &&
            touches(w, s, a, f) && sm_w_intensity(w, f, ts) > 0)
            return f;
    }
    return NULL;
}

/* Sum of x*magnitude of the surges of swarm s at ts; *aggressive set when
 * a quota_saturation is on. */
static double surge(const sm_world *w, uint32_t s, int64_t ts,
                    bool *aggressive)
{
    double k = 0.0;
    if (aggressive)
        *aggressive = false;
    for (size_t i = 0; i < w->cfg.n_faults; i++) {
        const sm_wfault *f = &w->cfg.faults[i];
        if (f->swarm != s || (f->type != SM_WF_QUEUE_SURGE &&
                              f->type != SM_WF_QUOTA_SATURATION))
            continue;
        double x = sm_w_intensity(w, f, ts);
        if (x > 0) {
            k += f->magnitude * x;
            if (f->type == SM_WF_QUOTA_SATURATION && aggressive)
                *aggressive = true;
        }
    }
    return k;
}

/* ------------------------------------------------------------- rings */

static bool ring_init(ring *r, size_t esz, size_t cap)
{
    r->esz = esz;
    r->cap = cap < 8 ? 8 : cap;
    r->head = r->n = 0;
    r->v = malloc(r->cap * esz);
    return r->v != NULL;
}

bool sm_w_ring_push(ring *r, const void *e)
{
    if (r->n == r->cap) {
        size_t cap = r->cap * 2;
        unsigned char *v = malloc(cap * r->esz);
        if (v == NULL)
            return false;
        for (size_t i = 0; i < r->n; i++)
            memcpy(v + i * r->esz, r->v + ((r->head + i) % r->cap) * r->esz,
                   r->esz);
        free(r->v);
        r->v = v;
        r->cap = cap;
        r->head = 0;
    }
    memcpy(r->v + ((r->head + r->n) % r->cap) * r->esz, e, r->esz);
    r->n++;
    return true;
}

static bool ring_pop(ring *r, void *e)
{
    if (r->n == 0)
        return false;
    memcpy(e, r->v + r->head * r->esz, r->esz);
    r->head = (r->head + 1) % r->cap;
    r->n--;
    return true;
}

/* ------------------------------------------------------------- queue */

/* Schedules an item (sm_evq_push stamps its seq); on failure records
 * SM_ERR_NOMEM in w->status. */
bool sm_w_push(sm_world *w, witem it)
{
    if (sm_evq_push(&w->events, &it) != SM_OK) {
        w->status = SM_ERR_NOMEM;
        return false;
    }
    return true;
}

bool sm_w_at(sm_world *w, uint8_t what, uint32_t s, uint32_t a, int64_t ts)
{
    witem it;
    memset(&it, 0, sizeof it);
    it.what = what;
    it.swarm = s;
    it.agent = a;
    it.ts = ts;
    return sm_w_push(w, it);
}

/* ------------------------------------------------------------- create */

bool sm_w_nomem(sm_world *w)
{
    w->status = SM_ERR_NOMEM;
    return false;
}

static bool swarm_init(sm_world *w, uint32_t s)
{
    const sm_wswarm *c = &w->cfg.swarms[s];
    wswarm_st *st = &w->sw[s];
    st->rng = sm_rng_stream(w->cfg.seed, s);
    st->n_static = c->agents;
    st->quota = quota_of(c);
    st->n_total = c->agents + c->reserve + max_dynamic(c);
    st->ag = calloc(st->n_total, sizeof *st->ag);
    if (st->ag == NULL)
        return sm_w_nomem(w);
    for (uint32_t a = 0; a < st->n_total; a++) {
        st->ag[a].reserve = a >= c->agents && a < c->agents + c->reserve;
        st->ag[a].dynamic = a >= c->agents + c->reserve;
    }
    size_t slots = (size_t)st->n_total * c->concurrency * 2 + 16;
    if (!ring_init(&st->free_main, sizeof(wslot), slots) ||
        !ring_init(&st->free_res, sizeof(wslot),
                   (size_t)c->reserve * c->concurrency * 2 + 8))
        return sm_w_nomem(w);
    for (int p = 0; p < PRIOS; p++)
        if (!ring_init(&st->queue[p], sizeof(witem), 64))
            return sm_w_nomem(w);
    st->recent = malloc(SM_WCOORD_RECENT * sizeof *st->recent);
    if (!ring_init(&st->voids, sizeof(wvoid), 8) || st->recent == NULL)
        return sm_w_nomem(w);
    double wsum = 0.0;
    for (size_t t = 0; t < c->n_types; t++) {
        wsum += c->types[t].weight;
        st->type_cum[t] = wsum;
    }
    double mean_s = sm_wswarm_mean_task_s(c) / c->speed;
    st->base_rate = c->arrival_per_s > 0 ? c->arrival_per_s
                    : c->utilisation * c->agents * c->concurrency / mean_s;
    st->token_rate = st->base_rate * mean_tokens(c);
    st->budget0 = c->budget > 0 ? c->budget : st->token_rate * 1800.0 + 1e5;
    st->budget = st->budget0;
    st->used = 0.35 * st->budget0;
    st->mem_saw = c->memory_gb * GB;
    st->mem_step = 0.6 * GB / sm_rng_range(&st->rng, 30, 60) * c->resource_s;
    st->last_scale = w->cfg.start_ms;
    st->last_res = w->cfg.start_ms;

    int64_t t0 = w->cfg.start_ms;
    for (uint32_t a = 0; a < c->agents + c->reserve; a++) {
        st->ag[a].live = 2;
        if (!sm_w_at(w, W_REG, s, a, t0))
            return false;
    }
    if (!sm_w_at(w, W_RES, s, 0, t0 + (int64_t)sm_rng_range(&st->rng, 0, 1000)))
        return false;
    for (uint32_t g = 0; g < c->groups; g++)
        if (!sm_w_at(w, W_CONS, s, g,
                t0 + (int64_t)sm_rng_range(&st->rng, 0, c->round_s * 1000)))
            return false;
    if (!sm_w_at(w, W_ARRIVE, s, 0, t0 + (int64_t)expo(&st->rng,
                                                  1000.0 / st->base_rate)))
        return false;
    if (c->burst_every_s > 0 && c->burst_tasks >= 1 &&
        !sm_w_at(w, W_BURST, s, 0,
            t0 + (int64_t)expo(&st->rng, c->burst_every_s * 1000)))
        return false;
    if (!sm_w_at(w, W_SCALE, s, 0, t0 + (int64_t)(c->scale_every_s * 1000)))
        return false;
    return true;
}

sm_status sm_world_create(sm_world **out, const sm_world_config *cfg)
{
    if (out == NULL || cfg == NULL)
        return SM_ERR_INVALID;
    if (sm_world_config_validate(cfg, NULL, 0) != SM_OK)
        return SM_ERR_CONFIG;
    sm_world *w = calloc(1, sizeof *w);
    if (w == NULL)
        return SM_ERR_NOMEM;
    w->cfg = *cfg;
    w->sw = calloc(cfg->n_swarms, sizeof *w->sw);
    w->fault_done = calloc(cfg->n_faults + 1, 1);
    w->fault_healed = calloc(cfg->n_faults + 1, sizeof *w->fault_healed);
    w->crng = sm_rng_stream(cfg->seed, 0xC0u << 24);
    w->now = cfg->start_ms;
    size_t cap = 256;
    for (size_t s = 0; s < cfg->n_swarms; s++)
        cap += (cfg->swarms[s].agents + cfg->swarms[s].reserve) * 3u;
    if (w->sw == NULL || w->fault_done == NULL || w->fault_healed == NULL ||
        sm_evq_init(&w->events, sizeof(witem), cap) != SM_OK) {
        sm_world_destroy(w);
        return SM_ERR_NOMEM;
    }
    bool ok = true;
    for (uint32_t s = 0; ok && s < cfg->n_swarms; s++)
        ok = swarm_init(w, s);
    /* Deaths and revivals. */
    for (size_t i = 0; ok && i < cfg->n_faults; i++) {
        const sm_wfault *f = &cfg->faults[i];
        int64_t die, back = f->end_ms;
        if (f->type == SM_WF_DEGRADING_AGENT)
            die = f->onset_ms + f->ramp_ms;
        else if (f->type == SM_WF_CRASH_RESTART)
            die = f->onset_ms;
        else
            continue;
        for (size_t a = 0; ok && a < f->n_agents; a++) {
            witem d;
            memset(&d, 0, sizeof d);
            d.what = W_DIE;
            d.swarm = f->swarm;
            d.agent = f->agents[a];
            d.task = i + 1;     /* the fault, for a restart to cancel */
            d.ts = cfg->start_ms + die;
            ok = sm_w_push(w, d);
            if (ok && back > die && back < cfg->duration_ms)
                ok = sm_w_at(w, W_REVIVE, f->swarm, f->agents[a],
                        cfg->start_ms + back);
        }
    }
    if (!ok) {
        sm_world_destroy(w);
        return SM_ERR_NOMEM;
    }
    *out = w;
    return SM_OK;
}

void sm_world_destroy(sm_world *w)
{
    if (w == NULL)
        return;
    if (w->sw != NULL) {
        for (size_t s = 0; s < w->cfg.n_swarms; s++) {
            wswarm_st *st = &w->sw[s];
            free(st->ag);
            free(st->free_main.v);
            free(st->free_res.v);
            free(st->voids.v);
            free(st->recent);
            for (int p = 0; p < PRIOS; p++)
                free(st->queue[p].v);
        }
    }
    free(w->sw);
    free(w->fault_done);
    free(w->fault_healed);
    free(w->pend);
    sm_evq_free(&w->events);
    free(w);
}

sm_status sm_world_status(const sm_world *w)
{
    return w ? w->status : SM_ERR_INVALID;
}

uint64_t sm_world_count(const sm_world *w)
{
    return w ? w->count : 0;
}

double sm_world_task_rate(const sm_world *w)
{
    double r = 0.0;
    for (size_t s = 0; w && s < w->cfg.n_swarms; s++)
        r += w->sw[s].base_rate;
    return r;
}

void sm_world_gauges_of(const sm_world *w, uint32_t s, sm_world_gauges *g)
{
    if (w == NULL || g == NULL || s >= w->cfg.n_swarms) {
        if (g)
            memset(g, 0, sizeof *g);
        return;
    }
    *g = w->sw[s].g;
}

/* ------------------------------------------------------------- packing */

bool sm_w_pack(sm_world *w, const ProtobufCMessage *msg, sm_sim_msg *out)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (n > sizeof w->buf) {
        w->status = SM_ERR_FULL;
        return false;
    }
    out->len = protobuf_c_message_pack(msg, w->buf);
    out->payload = w->buf;
    return true;
}

void sm_w_subject(sm_world *w, uint32_t s, const char *kind,
                    const char *id)
{
    snprintf(w->subject, sizeof w->subject, "swarm.%s.%s.%s",
             w->cfg.swarms[s].id, kind, id);
}

static const char *agent_name(sm_world *w, uint32_t a)
{
    snprintf(w->name, sizeof w->name, "a%u", a);
    return w->name;
}

static const char *task_name(sm_world *w, uint32_t s, uint64_t t)
{
    snprintf(w->task_id, sizeof w->task_id, "%s-t%llu", w->cfg.swarms[s].id,
             (unsigned long long)t);
    return w->task_id;
}

/* ------------------------------------------------------------- agents */

static uint32_t pending_total(const wswarm_st *st)
{
    uint32_t n = 0;
    for (int p = 0; p < PRIOS; p++)
        n += (uint32_t)st->queue[p].n;
    return n;
}

/* Priorities dispatch may take at `now`: all, or CRITICAL..MEDIUM while
 * the coordinator pauses low-priority work. */
static int prios_open(const wswarm_st *st, int64_t now)
{
    return now < st->paused_until ? 3 : PRIOS;
}

static uint32_t pending_open(const wswarm_st *st, int64_t now)
{
    uint32_t n = 0;
    for (int p = 0; p < prios_open(st, now); p++)
        n += (uint32_t)st->queue[p].n;
    return n;
}

static bool slot_ok(const wswarm_st *st, const wslot *sl, uint32_t conc)
{
    const wagent *a = &st->ag[sl->agent];
    return a->live == 1 && !a->down && a->epoch == sl->epoch &&
           a->inflight < conc && !a->drain;
}

bool sm_w_free_slot(sm_world *w, uint32_t s, uint32_t a)
{
    wswarm_st *st = &w->sw[s];
    wslot sl = {a, st->ag[a].epoch};
    if (!sm_w_ring_push(st->ag[a].reserve ? &st->free_res : &st->free_main, &sl))
        return sm_w_nomem(w);
    return true;
}

/* Hands waiting tasks to free agents, highest priority first. */
bool sm_w_dispatch(sm_world *w, uint32_t s, int64_t now)
{
    wswarm_st *st = &w->sw[s];
    const sm_wswarm *c = &w->cfg.swarms[s];
    for (;;) {
        uint32_t waiting = pending_open(st, now);
        if (waiting == 0)
            return true;
        wslot sl;
        bool got = false;
        while (!got && ring_pop(&st->free_main, &sl))
            got = slot_ok(st, &sl, c->concurrency);
        while (!got && waiting > c->reserve_pending &&
               ring_pop(&st->free_res, &sl))
            got = slot_ok(st, &sl, c->concurrency);
        if (!got)
            return true;
        witem t;
        for (int p = 0; p < prios_open(st, now); p++)
            if (ring_pop(&st->queue[p], &t))
                break;
        wagent *ag = &st->ag[sl.agent];
        ag->inflight++;
        t.what = W_ASSIGN;
        t.agent = sl.agent;
        t.epoch = ag->epoch;
        t.ts = now + sm_rng_below(&st->rng, 50);
        if (!sm_w_push(w, t))
            return false;
    }
}

/* ------------------------------------------------------------- emitters */

static bool emit_lifecycle(sm_world *w, const witem *it, bool reg,
                           sm_sim_msg *out)
{
    static char *caps[4][2] = {
        {"search", "summarize"}, {"codegen", "review"},
        {"search", "review"}, {"codegen", "summarize"},
    };
    const wagent *ag = &w->sw[it->swarm].ag[it->agent];
    Swarmmedic__V1__AgentLifecycle m = SWARMMEDIC__V1__AGENT_LIFECYCLE__INIT;
    m.ts_ms = it->ts;
    m.agent = (char *)agent_name(w, it->agent);
    m.kind = reg ? SWARMMEDIC__V1__AGENT_LIFECYCLE__KIND__KIND_REGISTERED
                 : SWARMMEDIC__V1__AGENT_LIFECYCLE__KIND__KIND_UNREGISTERED;
    m.dynamic = ag->dynamic;
    if (reg) {
        m.n_capabilities = 2;
        m.capabilities = caps[it->agent % 4];
    }
    sm_w_subject(w, it->swarm, "agent", w->name);
    out->kind = SM_SIM_AGENT;
    return sm_w_pack(w, &m.base, out);
}

/* REGISTERED (start, autoscaler, revival): the agent takes work. */
static bool on_register(sm_world *w, const witem *it, sm_sim_msg *out)
{
    wswarm_st *st = &w->sw[it->swarm];
    const sm_wswarm *c = &w->cfg.swarms[it->swarm];
    wagent *ag = &st->ag[it->agent];
    if (it->what == W_REG) {
        if (ag->live != 2)
            return true;        /* cancelled */
        ag->live = 1;
        st->registered++;
    } else {
        if (ag->live != 1)
            return true;
        ag->down = 0;
        ag->progress = ag->shown = 0;
    }
    ag->epoch++;
    ag->inflight = 0;
    ag->stuck = 0;
    for (uint32_t k = 0; k < c->concurrency; k++)
        if (!sm_w_free_slot(w, it->swarm, it->agent))
            return false;
    witem hb = *it;
    hb.what = W_HB;
    hb.epoch = ag->epoch;
    hb.ts = it->ts + (int64_t)sm_rng_range(&st->rng, 0, c->heartbeat_s * 1000);
    if (!sm_w_push(w, hb) || !sm_w_dispatch(w, it->swarm, it->ts))
        return false;
    return emit_lifecycle(w, it, true, out);
}

/* Progress a heartbeat shows: tokens done, plus the share of the current
 * task's tokens its work so far stands for (frozen during a tool call). */
static uint64_t progress_at(wagent *ag, int64_t ts)
{
    uint64_t p = ag->progress;
    if (ag->inflight > 0 && !ag->stuck && ag->cur_dur > 0) {
        int64_t el = ts - ag->cur_start;
        int64_t sa = ag->stall_at, sl = ag->stall_len;
        int64_t eff = el < sa ? el : el < sa + sl ? sa : el - sl;
        int64_t work = (int64_t)ag->cur_dur - sl;
        if (work < 1)
            work = 1;
        double frac = eff <= 0 ? 0.0 : eff >= work ? 1.0
                      : (double)eff / (double)work;
        p += (uint64_t)(ag->cur_used * frac);
    }
    if (p < ag->shown)
        p = ag->shown;
    ag->shown = p;
    return p;
}

static bool degraded(const sm_world *w, uint32_t s, uint32_t a, int64_t ts)
{
    for (size_t i = 0; i < w->cfg.n_faults; i++) {
        const sm_wfault *f = &w->cfg.faults[i];
        if (f->swarm == s && f->type == SM_WF_DEGRADING_AGENT &&
            sm_wfault_has_agent(f, a, w->sw[s].n_static) &&
            touches(w, s, a, f) && sm_w_intensity(w, f, ts) > 0.3)
            return true;
    }
    return false;
}

/* Returns 1 emitted, 0 nothing to emit, -1 error. */
static int on_heartbeat(sm_world *w, witem *it, sm_sim_msg *out)
{
    wswarm_st *st = &w->sw[it->swarm];
    const sm_wswarm *c = &w->cfg.swarms[it->swarm];
    wagent *ag = &st->ag[it->agent];
    if (ag->live != 1 || ag->down || ag->epoch != it->epoch)
        return 0;               /* gone: this heartbeat chain ends */
    witem next = *it;
    double j = c->heartbeat_jitter_s * 1000.0;
    next.ts = it->ts + (int64_t)(c->heartbeat_s * 1000.0 +
                                 sm_rng_range(&st->rng, -j, j));
    if (!sm_w_push(w, next))
        return -1;
    if (sm_rng_uni(&st->rng) < c->heartbeat_miss)
        return 0;
    Swarmmedic__V1__Heartbeat m = SWARMMEDIC__V1__HEARTBEAT__INIT;
    m.ts_ms = it->ts;
    m.agent = (char *)agent_name(w, it->agent);
    if (ag->inflight > 0)
        m.state = degraded(w, it->swarm, it->agent, it->ts)
                      ? SWARMMEDIC__V1__HEARTBEAT__STATE__STATE_DEGRADED
                      : SWARMMEDIC__V1__HEARTBEAT__STATE__STATE_BUSY;
    else
        m.state = SWARMMEDIC__V1__HEARTBEAT__STATE__STATE_IDLE;
    m.inflight = ag->inflight;
    m.progress = progress_at(ag, it->ts);
    if (ag->inflight > 0)
        m.current_task = (char *)task_name(w, it->swarm, ag->cur_task);
    sm_w_subject(w, it->swarm, "heartbeat", w->name);
    out->kind = SM_SIM_HEARTBEAT;
    return sm_w_pack(w, &m.base, out) ? 1 : -1;
}

/* Token budget and usage at a resource sample, with burns and top-ups. */
static bool tokens_step(sm_world *w, uint32_t s, int64_t ts, double dt_s)
{
    wswarm_st *st = &w->sw[s];
    const sm_wswarm *c = &w->cfg.swarms[s];
    bool burning = false;
    for (size_t i = 0; i < w->cfg.n_faults; i++) {
        const sm_wfault *f = &w->cfg.faults[i];
        if (f->swarm != s || f->type != SM_WF_TOKEN_BURN)
            continue;
        double x = sm_w_intensity(w, f, ts);
        int64_t rel = ts - w->cfg.start_ms;
        if (x > 0 || (rel >= f->onset_ms && rel < f->onset_ms + f->ramp_ms)) {
            /* Operators sleep through the burn, unless it stopped short:
             * once at stop_at of the budget it is over for good (a top-up
             * does not start it again) */
            if (f->stop_at > 0 && st->used >= f->stop_at * st->budget)
                w->fault_done[i] = 2;
            if (w->fault_done[i] != 2) {
                burning = true;
                st->used += f->magnitude * st->token_rate * x * dt_s;
            }
        } else if (rel >= f->onset_ms && !w->fault_done[i]) {
            /* The burn is over: an operator restores the budget. */
            w->fault_done[i] = 1;
            if (st->budget < 2.0 * st->used)
                st->budget = 2.0 * st->used;
        }
    }
    if (st->used > st->budget)
        st->used = st->budget;          /* exhausted: nothing more is spent */
    if (!burning && !st->topup_pending && st->used > c->topup_at * st->budget &&
        c->topup_frac > 0) {
        st->topup_pending = true;
        return sm_w_at(w, W_TOPUP, s, 0, ts + (int64_t)sm_rng_range(&st->rng, 20000,
                                                        90000));
    }
    return true;
}

static void memory_step(sm_world *w, uint32_t s, int64_t ts, double dt_s)
{
    wswarm_st *st = &w->sw[s];
    const sm_wswarm *c = &w->cfg.swarms[s];
    double base = c->memory_gb * GB, limit = c->memory_limit_gb * GB;
    st->mem_saw += st->mem_step * (dt_s / c->resource_s) *
                   sm_rng_range(&st->rng, 0.5, 1.5);
    if (st->mem_saw > base + 0.6 * GB) {        /* a collection */
        st->mem_saw = base + sm_rng_range(&st->rng, -0.1, 0.1) * GB;
        st->mem_step = 0.6 * GB / sm_rng_range(&st->rng, 30, 60) * c->resource_s;
    }
    bool leaking = false;
    for (size_t i = 0; i < w->cfg.n_faults; i++) {
        const sm_wfault *f = &w->cfg.faults[i];
        if (f->swarm != s || f->type != SM_WF_MEMORY_LEAK)
            continue;
        double x = sm_w_intensity(w, f, ts);
        if (x > 0) {
            leaking = true;
            st->leak += f->magnitude * MB * x * dt_s / 60.0;
        }
    }
    if (!leaking)
        st->leak = 0;
    double m = st->mem_saw + st->leak;
    if (m > 0.99 * limit)
        m = 0.99 * limit;
    st->g.memory_ratio = m / limit;
}

static int on_resource(sm_world *w, witem *it, sm_sim_msg *out)
{
    uint32_t s = it->swarm;
    wswarm_st *st = &w->sw[s];
    const sm_wswarm *c = &w->cfg.swarms[s];
    double dt = (double)(it->ts - st->last_res) / 1000.0;
    st->last_res = it->ts;
    if (!tokens_step(w, s, it->ts, dt))
        return -1;
    memory_step(w, s, it->ts, dt);
    witem next = *it;
    next.ts = it->ts + (int64_t)(c->resource_s * 1000);
    if (!sm_w_push(w, next))
        return -1;

    Swarmmedic__V1__PendingByPriority pp[PRIOS];
    Swarmmedic__V1__PendingByPriority *ppp[PRIOS];
    uint32_t total = 0;
    for (int p = 0; p < PRIOS; p++) {
        Swarmmedic__V1__PendingByPriority z =
            SWARMMEDIC__V1__PENDING_BY_PRIORITY__INIT;
        pp[p] = z;
        pp[p].priority = (Swarmmedic__V1__Priority)(p + 1);
        pp[p].count = (uint32_t)st->queue[p].n;
        total += pp[p].count;
        ppp[p] = &pp[p];
    }
    double limit = c->memory_limit_gb * GB;
    Swarmmedic__V1__ResourceSample m = SWARMMEDIC__V1__RESOURCE_SAMPLE__INIT;
    m.ts_ms = it->ts;
    m.source = "scheduler";
    m.token_budget = (uint64_t)st->budget;
    m.tokens_used = (uint64_t)st->used;
    m.memory_used_bytes = (uint64_t)(st->g.memory_ratio * limit);
    m.memory_limit_bytes = (uint64_t)limit;
    m.n_pending = PRIOS;
    m.pending = ppp;
    m.active_agents = st->registered;
    m.agent_quota = st->quota;
    st->g.token_ratio = (double)m.tokens_used / (double)m.token_budget;
    st->g.pending = total;
    st->g.active = st->registered;
    st->g.quota = st->quota;
    sm_w_subject(w, s, "resource", "scheduler");
    out->kind = SM_SIM_RESOURCE;
    return sm_w_pack(w, &m.base, out) ? 1 : -1;
}

static int on_consensus(sm_world *w, witem *it, sm_sim_msg *out)
{
    uint32_t s = it->swarm, g = it->agent;
    wswarm_st *st = &w->sw[s];
    const sm_wswarm *c = &w->cfg.swarms[s];
    double p = c->timeout_rate;
    bool lost = false;
    for (size_t i = 0; i < w->cfg.n_faults; i++) {
        const sm_wfault *f = &w->cfg.faults[i];
        if (f->swarm != s || !sm_w_has_group(f, g))
            continue;
        double x = sm_w_intensity(w, f, it->ts);
        if (x <= 0)
            continue;
        if (f->type == SM_WF_CONSENSUS_DEGRADATION && f->magnitude * x > p)
            p = f->magnitude * x;
        else if (f->type == SM_WF_QUORUM_LOSS &&
                 !(st->group_healed[g] > 0 &&
                   st->group_healed[g] >= w->cfg.start_ms + f->onset_ms) &&
                 sm_rng_uni(&st->rng) < x)
            lost = true;
    }
    uint32_t parts = c->group_size, quorum = c->group_size / 2 + 1;
    Swarmmedic__V1__ConsensusRound__Outcome o =
        SWARMMEDIC__V1__CONSENSUS_ROUND__OUTCOME__OUTCOME_OK;
    if (lost) {
        parts = quorum - 1;
        o = sm_rng_uni(&st->rng) < 0.7
                ? SWARMMEDIC__V1__CONSENSUS_ROUND__OUTCOME__OUTCOME_TIMEOUT
                : SWARMMEDIC__V1__CONSENSUS_ROUND__OUTCOME__OUTCOME_FAILED;
    } else if (sm_rng_uni(&st->rng) < p) {
        o = SWARMMEDIC__V1__CONSENSUS_ROUND__OUTCOME__OUTCOME_TIMEOUT;
    }
    char group[16];
    snprintf(group, sizeof group, "g%u", g);
    Swarmmedic__V1__ConsensusRound m = SWARMMEDIC__V1__CONSENSUS_ROUND__INIT;
    m.ts_ms = it->ts;
    m.group = group;
    m.round = ++st->rounds[g];
    m.outcome = o;
    m.duration_ms =
        o == SWARMMEDIC__V1__CONSENSUS_ROUND__OUTCOME__OUTCOME_TIMEOUT
            ? TIMEOUT_ROUND_MS
            : (uint32_t)(400.0 * lognormal(&st->rng, 0.5));
    m.participants = parts;
    m.quorum = quorum;
    witem next = *it;
    next.ts = it->ts + (int64_t)(c->round_s * 1000.0 *
                                 sm_rng_range(&st->rng, 0.8, 1.2));
    if (!sm_w_push(w, next))
        return -1;
    sm_w_subject(w, s, "consensus", group);
    out->kind = SM_SIM_CONSENSUS;
    return sm_w_pack(w, &m.base, out) ? 1 : -1;
}

static Swarmmedic__V1__Priority pick_priority(uint64_t *rng)
{
    uint32_t r = sm_rng_below(rng, 100);
    return r < 5 ? SWARMMEDIC__V1__PRIORITY__PRIORITY_CRITICAL
         : r < 20 ? SWARMMEDIC__V1__PRIORITY__PRIORITY_HIGH
         : r < 65 ? SWARMMEDIC__V1__PRIORITY__PRIORITY_MEDIUM
         : r < 90 ? SWARMMEDIC__V1__PRIORITY__PRIORITY_LOW
         : SWARMMEDIC__V1__PRIORITY__PRIORITY_BACKGROUND;
}

/* A task arrives in the queue; unless part of a burst, the next is
 * scheduled (Poisson, at the rate of the moment). */
static bool on_arrive(sm_world *w, witem *it)
{
    uint32_t s = it->swarm;
    wswarm_st *st = &w->sw[s];
    const sm_wswarm *c = &w->cfg.swarms[s];
    if (!it->flag) {
        double rate = st->base_rate * (1.0 + surge(w, s, it->ts, NULL));
        witem next = *it;
        next.ts = it->ts + 1 + (int64_t)expo(&st->rng, 1000.0 / rate);
        if (!sm_w_push(w, next))
            return false;
    }
    witem t;
    memset(&t, 0, sizeof t);
    t.swarm = s;
    t.task = ++st->tasks;
    t.prio = (uint8_t)pick_priority(&st->rng);
    double r = sm_rng_uni(&st->rng) * st->type_cum[c->n_types - 1];
    size_t k = 0;
    while (k + 1 < c->n_types && r >= st->type_cum[k])
        k++;
    t.type = (uint8_t)k;
    t.est = (uint32_t)(c->types[k].tokens * lognormal(&st->rng, 0.3));
    t.ts = it->ts;
    if (!sm_w_ring_push(&st->queue[t.prio - 1], &t))
        return sm_w_nomem(w);
    return sm_w_dispatch(w, s, it->ts);
}

static bool on_burst(sm_world *w, witem *it)
{
    uint32_t s = it->swarm;
    wswarm_st *st = &w->sw[s];
    const sm_wswarm *c = &w->cfg.swarms[s];
    uint32_t n = (uint32_t)(c->burst_tasks * sm_rng_range(&st->rng, 0.5, 1.5) + 0.5);
    for (uint32_t i = 0; i < n; i++) {
        witem a = *it;
        a.what = W_ARRIVE;
        a.flag = 1;
        a.ts = it->ts + (int64_t)sm_rng_range(&st->rng, 0, 5000);
        if (!sm_w_push(w, a))
            return false;
    }
    witem next = *it;
    next.ts = it->ts + 1 + (int64_t)expo(&st->rng, c->burst_every_s * 1000);
    return sm_w_push(w, next);
}

/* The task's work: duration, tokens, outcome, tool-call stall. */
static void plan_task(sm_world *w, witem *t, wagent *ag)
{
    uint32_t s = t->swarm;
    wswarm_st *st = &w->sw[s];
    const sm_wswarm *c = &w->cfg.swarms[s];
    const sm_wtask_type *ty = &c->types[t->type];
    double d = ty->median_s * 1000.0 * lognormal(&st->rng, ty->sigma) /
               c->speed;
    if (sm_rng_uni(&st->rng) < c->outlier_rate)
        d *= sm_rng_range(&st->rng, 10.0, 30.0);
    d *= slow_factor(w, s, t->agent, t->ts);
    double used = ty->tokens * lognormal(&st->rng, 0.35);
    bool fail = sm_rng_uni(&st->rng) < fail_chance(w, s, t->agent, t->ts);
    if (fail) {
        double part = sm_rng_range(&st->rng, 0.1, 0.8);
        d *= part;
        used *= part;
    }
    if (d < 50)
        d = 50;
    if (d > 4e9)
        d = 4e9;
    t->dur = (uint32_t)d;
    t->used = (uint32_t)used;
    t->flag = fail ? END_FAILED : END_OK;
    ag->cur_task = t->task;
    ag->cur_start = t->ts;
    ag->cur_dur = t->dur;
    ag->cur_used = t->used;
    ag->stall_at = ag->stall_len = 0;
    if (t->dur > STALL_MIN_TASK_MS && sm_rng_uni(&st->rng) < c->stall_rate) {
        double len = sm_rng_range(&st->rng, 10000, 40000);
        if (len > 0.7 * t->dur)
            len = 0.7 * t->dur;
        ag->stall_len = (uint32_t)len;
        ag->stall_at = (uint32_t)sm_rng_range(&st->rng, 0, t->dur - len);
    }
    ag->cur = *t;
}

static int emit_task(sm_world *w, const witem *t, sm_sim_msg *out,
                     Swarmmedic__V1__TaskEvent__Kind kind)
{
    const sm_wswarm *c = &w->cfg.swarms[t->swarm];
    Swarmmedic__V1__TaskEvent m = SWARMMEDIC__V1__TASK_EVENT__INIT;
    m.ts_ms = t->ts;
    m.agent = (char *)agent_name(w, t->agent);
    m.task_id = (char *)task_name(w, t->swarm, t->task);
    m.task_type = (char *)c->types[t->type].name;
    m.kind = kind;
    m.priority = (Swarmmedic__V1__Priority)t->prio;
    m.tokens_estimated = t->est;
    m.attempt = t->attempt > 1 ? t->attempt : 1;
    if (t->what == W_END) {
        m.tokens_used = t->used;
        m.duration_ms = t->dur;
    }
    sm_w_subject(w, t->swarm, "task", w->name);
    out->kind = SM_SIM_TASK;
    return sm_w_pack(w, &m.base, out) ? 1 : -1;
}

/* Whether t is a W_END a restart or retry made void (then forgotten). */
static bool voided(wswarm_st *st, const witem *t)
{
    for (size_t i = 0; i < st->voids.n; i++) {
        wvoid *v = (wvoid *)(st->voids.v +
                             ((st->voids.head + i) % st->voids.cap) *
                                 sizeof(wvoid));
        if (v->task == t->task && v->agent == t->agent &&
            v->epoch == t->epoch) {
            wvoid last;
            ring_pop(&st->voids, &last);    /* the head fills the hole */
            if (i > 0)
                *v = last;
            return true;
        }
    }
    return false;
}

/* Keeps a FAILED or TIMED_OUT task for task_retry to find. */
static void remember(wswarm_st *st, const witem *t)
{
    st->recent[st->n_recent++ % SM_WCOORD_RECENT] = *t;
}

static int on_task(sm_world *w, witem *t, sm_sim_msg *out)
{
    uint32_t s = t->swarm;
    wswarm_st *st = &w->sw[s];
    wagent *ag = &st->ag[t->agent];
    bool current = ag->epoch == t->epoch && ag->live == 1 && !ag->down;
    if (t->what == W_END && st->voids.n > 0 && voided(st, t))
        return 0;
    switch (t->what) {
    case W_CANCEL:
        return emit_task(w, t, out,
                         SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_CANCELLED);
    case W_ASSIGN:
        if (!current) {         /* the agent went away: back in the queue */
            if (!sm_w_ring_push(&st->queue[t->prio - 1], t))
                return sm_w_nomem(w) ? 0 : -1;
            return sm_w_dispatch(w, s, t->ts) ? 0 : -1;
        }
        if (emit_task(w, t, out,
                      SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_QUEUED) < 0)
            return -1;
        t->what = W_START;
        t->ts += 20 + sm_rng_below(&st->rng, 280);
        return sm_w_push(w, *t) ? 1 : -1;
    case W_START:
        if (!current) {
            if (!sm_w_ring_push(&st->queue[t->prio - 1], t))
                return sm_w_nomem(w) ? 0 : -1;
            return sm_w_dispatch(w, s, t->ts) ? 0 : -1;
        }
        plan_task(w, t, ag);
        if (emit_task(w, t, out,
                      SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_STARTED) < 0)
            return -1;
        t->what = W_END;
        t->ts += t->dur;
        return sm_w_push(w, *t) ? 1 : -1;
    default:
        break;
    }
    /* W_END */
    if (!current) {             /* the agent died: the coordinator gives up */
        t->flag = END_TIMED_OUT;
        remember(st, t);
        return emit_task(w, t, out,
                         SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_TIMED_OUT);
    }
    if (!(t->flag & 4)) {
        const sm_wfault *f = stuck_fault(w, s, t->agent, t->ts);
        if (f != NULL) {        /* stuck: ends when the fault does */
            int64_t end = w->cfg.start_ms +
                          (f->end_ms > 0 ? f->end_ms : w->cfg.duration_ms);
            ag->shown = progress_at(ag, t->ts);
            ag->stuck = 1;
            t->flag = END_TIMED_OUT | 4;
            t->dur += (uint32_t)(end - t->ts);
            t->ts = end;
            return sm_w_push(w, *t) ? 0 : -1;
        }
    }
    ag->stuck = 0;
    ag->inflight--;
    ag->progress += t->used;
    ag->cur_dur = 0;            /* no task's share until the next starts:
                                   a heartbeat between two tasks must not
                                   count the finished one twice */
    st->used += t->used;
    if (st->used > st->budget)
        st->used = st->budget;
    int kind = t->flag & 3;
    if (kind != END_OK)
        remember(st, t);
    if (ag->drain > 0) {        /* the coordinator drains it: no new work */
        if (ag->inflight == 0 && !sm_w_drained(w, s, t->agent, t->ts))
            return -1;
    } else if (!sm_w_free_slot(w, s, t->agent)) {
        return -1;
    }
    if (!sm_w_dispatch(w, s, t->ts))
        return -1;
    return emit_task(w, t, out,
                     kind == END_OK
                         ? SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_COMPLETED
                     : kind == END_FAILED
                         ? SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_FAILED
                         : SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_TIMED_OUT);
}

/* The autoscaler's look at the queue. */
static bool on_scale(sm_world *w, witem *it)
{
    uint32_t s = it->swarm;
    wswarm_st *st = &w->sw[s];
    const sm_wswarm *c = &w->cfg.swarms[s];
    bool aggressive;
    surge(w, s, it->ts, &aggressive);
    double up = aggressive ? SURGE_SCALE_UP_PENDING : c->scale_up_pending;
    uint32_t waiting = pending_total(st);
    uint32_t first_dyn = c->agents + c->reserve;
    uint32_t coming = 0;
    for (uint32_t a = first_dyn; a < st->n_total; a++)
        coming += st->ag[a].live == 2;
    if (waiting > up && it->ts - st->last_scale >= SCALE_UP_COOLDOWN_MS) {
        uint32_t k = 1 + (uint32_t)((waiting - up) / 20.0);
        for (uint32_t a = first_dyn; a < st->n_total && k > 0; a++) {
            if (st->registered + coming >= st->quota)
                break;
            if (st->ag[a].live != 0)
                continue;
            st->ag[a].live = 2;
            coming++;
            k--;
            st->last_scale = it->ts;
            if (!sm_w_at(w, W_REG, s, a, it->ts + 1 + coming))
                return false;
        }
    } else if (waiting < c->scale_down_pending &&
               it->ts - st->last_scale >= SCALE_DOWN_COOLDOWN_MS) {
        for (uint32_t a = st->n_total; a-- > first_dyn;) {
            wagent *ag = &st->ag[a];
            if (ag->live == 1 && ag->inflight == 0 && !ag->down) {
                ag->live = 0;
                ag->epoch++;
                st->registered--;
                st->last_scale = it->ts;
                if (!sm_w_at(w, W_UNREG, s, a, it->ts + 1))
                    return false;
                break;
            }
        }
    }
    witem next = *it;
    next.ts = it->ts + (int64_t)(c->scale_every_s * 1000);
    return sm_w_push(w, next);
}


/* Handles one popped item: 1 with a message in *out, 0 without, -1 on
 * error. */
static int step(sm_world *w, witem *it, sm_sim_msg *out)
{
    wswarm_st *st = &w->sw[it->swarm];
    switch (it->what) {
    case W_REG:
    case W_REVIVE: {
        wagent *ag = &st->ag[it->agent];
        if (it->what == W_REVIVE && ag->healed_at > 0 && !ag->down)
            return 0;           /* a restart brought it back already */
        bool emits = it->what == W_REG ? ag->live == 2 : ag->live == 1;
        if (!on_register(w, it, out))
            return -1;
        return emits ? 1 : 0;
    }
    case W_UNREG:
        return emit_lifecycle(w, it, false, out) ? 1 : -1;
    case W_HB:
        return on_heartbeat(w, it, out);
    case W_RES:
        return on_resource(w, it, out);
    case W_CONS:
        return on_consensus(w, it, out);
    case W_ARRIVE:
        return on_arrive(w, it) ? 0 : -1;
    case W_BURST:
        return on_burst(w, it) ? 0 : -1;
    case W_SCALE:
        return on_scale(w, it) ? 0 : -1;
    case W_TOPUP:
        st->budget += w->cfg.swarms[it->swarm].topup_frac * st->budget0;
        st->topup_pending = false;
        return 0;
    case W_DIE: {
        wagent *ag = &st->ag[it->agent];
        if (it->task > 0 &&
            !touches(w, it->swarm, it->agent, &w->cfg.faults[it->task - 1]))
            return 0;           /* a restart healed it before it died */
        ag->down = 1;
        ag->epoch++;
        ag->inflight = 0;
        ag->stuck = 0;
        return 0;
    }
    case W_HEAL:
        return sm_w_on_heal(w, it) ? 0 : -1;
    case W_OUTCOME:
        return sm_w_on_outcome(w, it, out);
    default:
        return on_task(w, it, out);
    }
}

bool sm_world_next(sm_world *w, sm_sim_msg *out)
{
    if (w == NULL || out == NULL || w->done)
        return false;
    int64_t end = w->cfg.start_ms + w->cfg.duration_ms;
    for (;;) {
        sm_evq_key first;
        if (!sm_evq_peek(&w->events, &first) || first.ts >= end) {
            w->done = true;
            return false;
        }
        witem it;
        sm_evq_pop(&w->events, &it);
        w->now = it.ts;
        out->ts_ms = it.ts;
        out->swarm = it.swarm;
        int r = step(w, &it, out);
        if (r < 0 || w->status != SM_OK) {
            if (w->status == SM_OK)
                w->status = SM_ERR_NOMEM;
            w->done = true;
            return false;
        }
        if (r > 0) {
            out->subject = w->subject;
            w->count++;
            return true;
        }
    }
}
