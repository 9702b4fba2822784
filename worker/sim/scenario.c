/*
 * scenario.c - scenario files and labels (see scenario.h): the JSON
 * loader, the probe run that records each swarm's gauges, and the label
 * derivation rules per fault type.
 */
#include "scenario.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "swarm_medic.pb-c.h"

#define S(x) ((int64_t)((x) * 1000.0))

/* One ResourceSample's gauges, kept by the probe. */
typedef struct gsample {
    int64_t ts;
    float token, memory;
    uint32_t pending, active, quota;
} gsample;

typedef struct gseries {
    gsample *v;
    size_t n, cap;
} gseries;

/* A TaskEvent TIMED_OUT the probe saw. */
typedef struct tmout {
    uint32_t swarm;
    char agent[SM_WORLD_ID];
    int64_t ts;
} tmout;

typedef struct tmouts {
    tmout *v;
    size_t n, cap;
} tmouts;

/* A task the probe saw an agent complete. */
/* A task event the probe keeps: a start, a completion, or another end
 * (failed, timed out, cancelled). */
typedef enum done_kind { DONE_STARTED, DONE_COMPLETED, DONE_ENDED } done_kind;

typedef struct done {
    uint32_t swarm, agent;
    done_kind kind;
    int64_t ts;                 /* the event's */
    int64_t start;              /* a completion's start: ts - duration */
    uint64_t task;              /* hash of the task id */
} done;

typedef struct dones {
    done *v;
    size_t n, cap;
} dones;

/* A silence between two heartbeats of an agent long enough to read as a
 * death (over 3 of its swarm's intervals + 1 s), as the probe saw it. */
typedef struct hbgap {
    uint32_t swarm, agent;
    int64_t from, to;           /* the two beats */
} hbgap;

typedef struct hbgaps {
    hbgap *v;
    size_t n, cap;
    int64_t *last;              /* [swarm * max_agents + agent]: last beat */
    uint32_t max_agents;
} hbgaps;

#define SCENARIO_SETTINGS 16

struct sm_scenario {
    char name[128];
    char description[512];
    sm_world_config world;
    sm_score_floors floor;
    bool derive;
    bool loop;                  /* "coordinator": {"loop": true} */
    size_t n_settings;          /* "settings": worker settings */
    char settings[SCENARIO_SETTINGS][2][64];
    sm_labels labels;
    gseries series[SM_WORLD_MAX_SWARMS];
    tmouts timeouts;            /* in event order */
    hbgaps gaps;                /* in event order */
    dones completed;            /* task starts and ends, in event order */
};

static void say(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *err, size_t cap, const char *fmt, ...)
{
    if (err == NULL || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static bool is_key(const char *k, const char *const *allowed)
{
    for (int i = 0; allowed[i]; i++)
        if (strcmp(k, allowed[i]) == 0)
            return true;
    return k[0] == '_' || strcmp(k, "comment") == 0 || strcmp(k, "note") == 0;
}

static bool copy_str(json_t *v, char *dst, size_t cap)
{
    if (!json_is_string(v) || strlen(json_string_value(v)) >= cap)
        return false;
    strcpy(dst, json_string_value(v));
    return true;
}

/* ------------------------------------------------------------- world */

typedef struct field {
    const char *key;
    size_t off;
    bool u32;
} field;

#define FD(k) {#k, offsetof(sm_wswarm, k), false}
#define FU(k) {#k, offsetof(sm_wswarm, k), true}
static const field swarm_fields[] = {
    FU(agents), FU(reserve), FU(concurrency), FU(max_dynamic), FU(quota),
    FU(reserve_pending), FD(speed), FD(utilisation), FD(arrival_per_s),
    FD(burst_every_s), FD(burst_tasks), FD(fail_rate), FD(outlier_rate),
    FU(groups), FU(group_size), FD(round_s), FD(timeout_rate),
    FD(heartbeat_s), FD(heartbeat_jitter_s), FD(heartbeat_miss),
    FD(stall_rate), FD(resource_s), FD(scale_every_s), FD(scale_up_pending),
    FD(scale_down_pending), FD(budget), FD(topup_at), FD(topup_frac),
    FD(memory_gb), FD(memory_limit_gb), FU(autoscale_off),
};

static bool swarm_parse(json_t *o, uint32_t idx, sm_wswarm *s, char *err,
                        size_t cap)
{
    const char *k;
    json_t *v;
    sm_wswarm_default(s, idx);
    if (!json_is_object(o)) {
        say(err, cap, "swarms[%u] is not an object", idx);
        return false;
    }
    json_object_foreach(o, k, v) {
        if (strcmp(k, "id") == 0) {
            if (!copy_str(v, s->id, sizeof s->id)) {
                say(err, cap, "swarms[%u].id must be a string under %d "
                    "characters", idx, SM_WORLD_ID);
                return false;
            }
            continue;
        }
        if (strcmp(k, "task_types") == 0) {
            size_t i;
            json_t *t;
            if (!json_is_array(v) || json_array_size(v) < 1 ||
                json_array_size(v) > SM_WORLD_MAX_TYPES) {
                say(err, cap, "swarms[%u].task_types must be an array of "
                    "1..%d types", idx, SM_WORLD_MAX_TYPES);
                return false;
            }
            s->n_types = json_array_size(v);
            json_array_foreach(v, i, t) {
                sm_wtask_type *ty = &s->types[i];
                memset(ty, 0, sizeof *ty);
                ty->sigma = 0.5;
                ty->weight = 1.0;
                ty->tokens = 2000.0;
                json_t *x;
                if (!copy_str(json_object_get(t, "name"), ty->name,
                              sizeof ty->name) ||
                    !json_is_number(json_object_get(t, "median_s"))) {
                    say(err, cap, "swarms[%u].task_types[%zu] needs a name "
                        "and median_s", idx, i);
                    return false;
                }
                ty->median_s = json_number_value(json_object_get(t,
                                                                 "median_s"));
                if ((x = json_object_get(t, "sigma")) && json_is_number(x))
                    ty->sigma = json_number_value(x);
                if ((x = json_object_get(t, "weight")) && json_is_number(x))
                    ty->weight = json_number_value(x);
                if ((x = json_object_get(t, "tokens")) && json_is_number(x))
                    ty->tokens = json_number_value(x);
            }
            continue;
        }
        if (k[0] == '_' || strcmp(k, "comment") == 0)
            continue;
        size_t f;
        for (f = 0; f < sizeof swarm_fields / sizeof swarm_fields[0]; f++)
            if (strcmp(k, swarm_fields[f].key) == 0)
                break;
        if (f == sizeof swarm_fields / sizeof swarm_fields[0]) {
            say(err, cap, "swarms[%u] has an unknown key \"%s\" (see "
                "worker/sim/world.h)", idx, k);
            return false;
        }
        if (!json_is_number(v) || json_number_value(v) < 0) {
            say(err, cap, "swarms[%u].%s must be a non-negative number", idx,
                k);
            return false;
        }
        double d = json_number_value(v);
        char *p = (char *)s + swarm_fields[f].off;
        if (swarm_fields[f].u32) {
            if (d > 4e9 || d != (double)(uint32_t)d) {
                say(err, cap, "swarms[%u].%s must be a whole number", idx, k);
                return false;
            }
            *(uint32_t *)p = (uint32_t)d;
        } else {
            *(double *)p = d;
        }
    }
    return true;
}

/* "a3" -> 3 (prefix a or g). */
static bool index_of(json_t *v, char prefix, uint32_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint32_t)json_integer_value(v);
        return true;
    }
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    if (s[0] != prefix || s[1] < '0' || s[1] > '9')
        return false;
    char *end;
    unsigned long n = strtoul(s + 1, &end, 10);
    if (*end || n > 1000000)
        return false;
    *out = (uint32_t)n;
    return true;
}

static bool fault_parse(json_t *o, size_t idx, const sm_world_config *w,
                        sm_wfault *f, char *err, size_t cap)
{
    static const char *const keys[] = {
        "type", "swarm", "agents", "groups", "onset_s", "ramp_s", "end_s",
        "factor", "rate", "magnitude", "mb_per_min", "fraction", "shape",
        "stop_at", NULL,
    };
    const char *k;
    json_t *v;
    memset(f, 0, sizeof *f);
    if (!json_is_object(o)) {
        say(err, cap, "faults[%zu] is not an object", idx);
        return false;
    }
    json_object_foreach(o, k, v) {
        if (!is_key(k, keys)) {
            say(err, cap, "faults[%zu] has an unknown key \"%s\"", idx, k);
            return false;
        }
    }
    v = json_object_get(o, "type");
    f->type = json_is_string(v) ? sm_wfault_type_parse(json_string_value(v))
                                : (sm_wfault_type)0;
    if (f->type == 0) {
        say(err, cap, "faults[%zu].type is not a fault type (see "
            "worker/sim/world.h)", idx);
        return false;
    }
    v = json_object_get(o, "swarm");
    bool found = false;
    for (size_t s = 0; v && s < w->n_swarms; s++) {
        if ((json_is_string(v) &&
             strcmp(json_string_value(v), w->swarms[s].id) == 0) ||
            (json_is_integer(v) && json_integer_value(v) == (json_int_t)s)) {
            f->swarm = (uint32_t)s;
            found = true;
        }
    }
    if (!found && !(v == NULL && w->n_swarms == 1)) {
        say(err, cap, "faults[%zu].swarm names no swarm of the scenario",
            idx);
        return false;
    }
    struct { const char *key; int64_t *dst; } times[] = {
        {"onset_s", &f->onset_ms}, {"ramp_s", &f->ramp_ms},
        {"end_s", &f->end_ms},
    };
    for (size_t i = 0; i < 3; i++) {
        if ((v = json_object_get(o, times[i].key)) == NULL)
            continue;
        if (!json_is_number(v) || json_number_value(v) < 0) {
            say(err, cap, "faults[%zu].%s must be a non-negative number", idx,
                times[i].key);
            return false;
        }
        *times[i].dst = S(json_number_value(v));
    }
    static const char *const mags[] = {"factor", "rate", "magnitude",
                                       "mb_per_min"};
    for (size_t i = 0; i < 4; i++) {
        if ((v = json_object_get(o, mags[i])) == NULL)
            continue;
        if (!json_is_number(v)) {
            say(err, cap, "faults[%zu].%s must be a number", idx, mags[i]);
            return false;
        }
        f->magnitude = json_number_value(v);
    }
    if ((v = json_object_get(o, "fraction")) && json_is_number(v))
        f->fraction = json_number_value(v);
    if ((v = json_object_get(o, "stop_at")) && json_is_number(v))
        f->stop_at = json_number_value(v);
    if ((v = json_object_get(o, "shape")) != NULL) {
        const char *sh = json_is_string(v) ? json_string_value(v) : "";
        if (strcmp(sh, "accelerating") == 0)
            f->accelerating = true;
        else if (strcmp(sh, "linear") != 0) {
            say(err, cap, "faults[%zu].shape is linear or accelerating", idx);
            return false;
        }
    }
    struct { const char *key; char prefix; uint32_t *dst; size_t *n; } lists[] =
    {
        {"agents", 'a', f->agents, &f->n_agents},
        {"groups", 'g', f->groups, &f->n_groups},
    };
    for (size_t i = 0; i < 2; i++) {
        if ((v = json_object_get(o, lists[i].key)) == NULL)
            continue;
        size_t j;
        json_t *x;
        if (!json_is_array(v) || json_array_size(v) > SM_WORLD_FAULT_AGENTS) {
            say(err, cap, "faults[%zu].%s must be an array of at most %d",
                idx, lists[i].key, SM_WORLD_FAULT_AGENTS);
            return false;
        }
        json_array_foreach(v, j, x) {
            if (!index_of(x, lists[i].prefix, &lists[i].dst[j])) {
                say(err, cap, "faults[%zu].%s[%zu] is not \"%c<n>\"", idx,
                    lists[i].key, j, lists[i].prefix);
                return false;
            }
        }
        *lists[i].n = json_array_size(v);
    }
    return true;
}

/* ------------------------------------------------------------- probe */

/* An array v of n `size`-byte items with room for one more: v itself, or
 * v moved and *cap doubled; NULL when out of memory (v still valid). */
static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return v;
    size_t c = *cap ? *cap * 2 : 1024;
    void *nv = realloc(v, c * size);
    if (nv != NULL)
        *cap = c;
    return nv;
}

static bool keep_gauges(sm_scenario *sc, sm_world *w, const sm_sim_msg *m)
{
    gseries *g = &sc->series[m->swarm];
    gsample *v = grow(g->v, &g->cap, g->n, sizeof *v);
    if (v == NULL)
        return false;
    g->v = v;
    sm_world_gauges ga;
    sm_world_gauges_of(w, m->swarm, &ga);
    gsample *x = &g->v[g->n++];
    x->ts = m->ts_ms;
    x->token = (float)ga.token_ratio;
    x->memory = (float)ga.memory_ratio;
    x->pending = ga.pending;
    x->active = ga.active;
    x->quota = ga.quota;
    return true;
}

/* Keeps what the labels need of a task event: a TIMED_OUT task, and
 * every start and end of an agent's task. */
static bool keep_timeout(sm_scenario *sc, const sm_sim_msg *m)
{
    Swarmmedic__V1__TaskEvent *t =
        swarmmedic__v1__task_event__unpack(NULL, m->len, m->payload);
    if (t == NULL)
        return false;
    bool ok = true;
    unsigned a = 0;
    done_kind k = t->kind == SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_STARTED
                  ? DONE_STARTED
                  : t->kind == SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_COMPLETED
                  ? DONE_COMPLETED : DONE_ENDED;
    if (t->kind != SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_QUEUED &&
        sscanf(t->agent, "a%u", &a) == 1) {
        uint64_t h = 1469598103934665603ULL;        /* FNV-1a */
        for (const char *q = t->task_id; *q; q++)
            h = (h ^ (unsigned char)*q) * 1099511628211ULL;
        dones *c = &sc->completed;
        done *v = grow(c->v, &c->cap, c->n, sizeof *v);
        ok = v != NULL;
        if (ok) {
            c->v = v;
            c->v[c->n++] = (done){m->swarm, a, k, m->ts_ms,
                                  m->ts_ms - (int64_t)t->duration_ms, h};
        }
    }
    if (ok && t->kind == SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_TIMED_OUT) {
        tmouts *o = &sc->timeouts;
        tmout *v = grow(o->v, &o->cap, o->n, sizeof *v);
        ok = v != NULL;
        if (ok) {
            o->v = v;
            tmout *x = &o->v[o->n++];
            x->swarm = m->swarm;
            snprintf(x->agent, sizeof x->agent, "%s", t->agent);
            x->ts = m->ts_ms;
        }
    }
    swarmmedic__v1__task_event__free_unpacked(t, NULL);
    return ok;
}

/* Notes a heartbeat's gap from the agent's previous one when it is long
 * enough to read as a death. Agents are named a<N> (world.c). */
static bool keep_beat(sm_scenario *sc, const sm_sim_msg *m)
{
    Swarmmedic__V1__Heartbeat *h =
        swarmmedic__v1__heartbeat__unpack(NULL, m->len, m->payload);
    if (h == NULL)
        return false;
    hbgaps *g = &sc->gaps;
    unsigned a = 0;
    bool ok = true;
    if (sscanf(h->agent, "a%u", &a) == 1 && a < g->max_agents) {
        int64_t *last = &g->last[(size_t)m->swarm * g->max_agents + a];
        double every = sc->world.swarms[m->swarm].heartbeat_s * 1000.0;
        if (*last > 0 && (double)(h->ts_ms - *last) > 3.0 * every + 1000.0) {
            hbgap *v = grow(g->v, &g->cap, g->n, sizeof *v);
            ok = v != NULL;
            if (ok) {
                g->v = v;
                g->v[g->n++] = (hbgap){m->swarm, a, *last, h->ts_ms};
            }
        }
        *last = h->ts_ms;
    }
    swarmmedic__v1__heartbeat__free_unpacked(h, NULL);
    return ok;
}

/* Runs the world once, keeping each swarm's gauges per ResourceSample,
 * every TIMED_OUT task event and every heartbeat gap that reads as a
 * death. */
static bool probe(sm_scenario *sc)
{
    sm_world *w = NULL;
    if (sm_world_create(&w, &sc->world) != SM_OK)
        return false;
    sm_sim_msg m;
    uint32_t most = 0;
    for (size_t s = 0; s < sc->world.n_swarms; s++) {
        const sm_wswarm *c = &sc->world.swarms[s];
        uint32_t n = c->agents + c->reserve + c->max_dynamic;
        most = n > most ? n : most;
    }
    sc->gaps.max_agents = most + 1;
    sc->gaps.last = calloc(sc->world.n_swarms * (size_t)sc->gaps.max_agents,
                           sizeof *sc->gaps.last);
    bool ok = sc->gaps.last != NULL;
    while (ok && sm_world_next(w, &m)) {
        if (m.kind == SM_SIM_RESOURCE)
            ok = keep_gauges(sc, w, &m);
        else if (m.kind == SM_SIM_TASK)
            ok = keep_timeout(sc, &m);
        else if (m.kind == SM_SIM_HEARTBEAT)
            ok = keep_beat(sc, &m);
    }
    ok = ok && sm_world_status(w) == SM_OK;
    sm_world_destroy(w);
    return ok;
}

/* ------------------------------------------------------------- derivation */

typedef struct deriv {
    sm_scenario *sc;
    bool ok;
} deriv;

/* When fault f ends, absolute ms: its end, or the run's if it has none. */
static int64_t fault_end(const sm_scenario *sc, const sm_wfault *f)
{
    return sc->world.start_ms + (f->end_ms ? f->end_ms : sc->world.duration_ms);
}

/* Appends a derived label; returns it (valid until the next add) or NULL
 * when out of memory. */
static sm_label *add(deriv *d, sm_label_class cls, sm_label_kind kind,
                     const char *type, uint32_t swarm, const char *subject,
                     int64_t from, int64_t to, int fault)
{
    sm_scenario *sc = d->sc;
    int64_t t0 = sc->world.start_ms, end = t0 + sc->world.duration_ms;
    sm_label l;
    sm_label_init(&l);
    l.cls = cls;
    l.kind = kind;
    snprintf(l.type, sizeof l.type, "%s", type);
    snprintf(l.swarm, sizeof l.swarm, "%s", sc->world.swarms[swarm].id);
    snprintf(l.subject, sizeof l.subject, "%s", subject);
    l.from_ms = from < t0 ? t0 : from;
    l.to_ms = to > end ? end : to;
    if (l.to_ms < l.from_ms)
        l.to_ms = l.from_ms;
    if (fault >= 0)
        snprintf(l.note, sizeof l.note, "derived from fault %d (%s)",
                 fault + 1, sm_wfault_type_str(sc->world.faults[fault].type));
    else
        snprintf(l.note, sizeof l.note, "a raise-line crossing outside any fault");
    if (sm_labels_add(&sc->labels, &l) != SM_OK) {
        d->ok = false;
        return NULL;
    }
    return &sc->labels.v[sc->labels.n - 1];
}

static int64_t clamp_ms(double s, double hi)
{
    return S(s < hi ? s : hi);
}

/* Per-agent slow rule (slow_agent, slow_fraction, degrading use it). */
/* Tasks agent a of swarm s completed in [from, to] (probe). */
static size_t completed_in(const sm_scenario *sc, uint32_t s, uint32_t a,
                           int64_t from, int64_t to)
{
    size_t n = 0;
    for (size_t i = 0; i < sc->completed.n; i++) {
        const done *x = &sc->completed.v[i];
        n += x->kind == DONE_COMPLETED && x->swarm == s && x->agent == a &&
             x->ts >= from && x->ts <= to;
    }
    return n;
}

/* Whether the task started at index i of the probe's list ends in it. */
static bool task_ends(const sm_scenario *sc, size_t i)
{
    const done *st = &sc->completed.v[i];
    for (size_t j = i + 1; j < sc->completed.n; j++) {
        const done *x = &sc->completed.v[j];
        if (x->kind != DONE_STARTED && x->task == st->task &&
            x->swarm == st->swarm && x->agent == st->agent)
            return true;
    }
    return false;
}

/* The end of the work a fault over [from, to) slowed for agent a of swarm
 * s (probe): when the last task it started in [from, to) and completed
 * did; INT64_MAX when a task it started then is still running at the
 * run's end; -1 if it started none. */
static int64_t slowed_work_end(const sm_scenario *sc, uint32_t s, uint32_t a,
                               int64_t from, int64_t to)
{
    int64_t last = -1;
    for (size_t i = 0; i < sc->completed.n; i++) {
        const done *x = &sc->completed.v[i];
        if (x->swarm != s || x->agent != a)
            continue;
        if (x->kind == DONE_COMPLETED && x->start >= from && x->start < to &&
            x->ts > last)
            last = x->ts;
        if (x->kind == DONE_STARTED && x->ts >= from && x->ts < to &&
            !task_ends(sc, i))
            return INT64_MAX;
    }
    return last;
}

static void slow_labels(deriv *d, int fi, uint32_t a, double f, int64_t from,
                        int64_t to, bool must_ok)
{
    const sm_wfault *ft = &d->sc->world.faults[fi];
    const sm_wswarm *sw = &d->sc->world.swarms[ft->swarm];
    double m = sm_wswarm_mean_task_s(sw) / sw->speed;
    int64_t t0 = d->sc->world.start_ms;
    int64_t onset = t0 + ft->onset_ms;
    char who[16];
    snprintf(who, sizeof who, "a%u", a);
    int64_t q = S(180);
    /* a slowed agent that completes fewer than two tasks while slowed
     * (one long task held through the fault) shows no duration to judge */
    if (completed_in(d->sc, ft->swarm, a, from, to) < 2)
        must_ok = false;
    /* the fault is over when the work it slowed is: a task begun under it
     * runs slow to its end, however long after the fault that is (a 4x
     * codegen begun just before the end runs two minutes more, a 4x
     * outlier ten), and only the tasks after it can show the recovery */
    int64_t slowed = slowed_work_end(d->sc, ft->swarm, a, onset, to);
    int64_t run_end = t0 + d->sc->world.duration_ms;
    if (slowed > to)
        to = slowed < run_end ? slowed : run_end;
    sm_label *l;
    if (f >= 2.5 && must_ok && to > from) {
        if ((l = add(d, SM_LABEL_MUST, SM_KIND_BOTTLENECK, "slow_agent", ft->swarm,
                     who, from, to, fi)) != NULL) {
            l->raise_within_ms = clamp_ms(120 + 6 * f * m, 900);
            l->resolve_within_ms = q;
            l->severity = f >= 3.3 ? 3 : f <= 2.7 ? 2 : 0;
        }
        add(d, SM_LABEL_MAY, SM_KIND_BOTTLENECK, "slow_agent", ft->swarm, who,
            onset, to + q, fi);
    } else if (f > 1.8) {
        add(d, SM_LABEL_MAY, SM_KIND_BOTTLENECK, "slow_agent", ft->swarm, who,
            onset, to + q, fi);
    } else {
        add(d, SM_LABEL_NEVER, SM_KIND_BOTTLENECK, "slow_agent", ft->swarm, who,
            onset, to + S(180), fi);
    }
}

/* First and last sample index in [from, to] with a predicate. */
#define SCAN(g, from, to, cond, first, last)                                 \
    do {                                                                     \
        first = last = -1;                                                   \
        for (size_t i_ = 0; i_ < (g)->n; i_++) {                             \
            const gsample *x = &(g)->v[i_];                                  \
            if (x->ts < (from) || x->ts > (to))                              \
                continue;                                                    \
            if (cond) {                                                      \
                if (first < 0)                                               \
                    first = (long)i_;                                        \
                last = (long)i_;                                             \
            }                                                                \
        }                                                                    \
    } while (0)

/* Whether a sample is at or over a signal's clear line. */
typedef bool (*gauge_on)(const gsample *x);

static bool backlog_on(const gsample *x) { return x->pending >= 40; }
static bool quota_on(const gsample *x) { return x->active >= 0.9 * x->quota; }
static bool overflow_on(const gsample *x) { return x->pending > 150; }
static bool spent_on(const gsample *x) { return x->token >= 0.95f; }

/* From sample a, where a signal rose over its raise line, the last sample
 * still on (at or over the clear line) before the gauge stays off for
 * `patience` samples in a row, up to run_end: the signal is present until
 * then. A later rise is another, optional, episode (a may-label covers
 * it). */
static long signal_end(const gseries *g, long a, int64_t run_end, gauge_on on,
                       int patience)
{
    long last = a;
    int off = 0;
    for (size_t i = (size_t)a; i < g->n && g->v[i].ts <= run_end; i++) {
        if (on(&g->v[i])) {
            last = (long)i;
            off = 0;
        } else if (++off == patience) {
            break;
        }
    }
    return last;
}

/* queue_overflow, a failure: peak pending P over [from, to] > 220 -> must
 * from the first sample over 200 to the end of the signal (over 150), may
 * over the window; 180 <= P <= 220 -> may; a queue_surge under 150 ->
 * never. */
static void overflow_labels(deriv *d, int fi, int64_t from, int64_t to,
                            uint32_t peak)
{
    const sm_wfault *f = &d->sc->world.faults[fi];
    const gseries *g = &d->sc->series[f->swarm];
    int64_t run_end = d->sc->world.start_ms + d->sc->world.duration_ms;
    long a, b;
    if (peak > 220) {
        SCAN(g, from, to, x->pending > 200, a, b);
        (void)b;
        long e = signal_end(g, a, run_end, overflow_on, 10);
        add(d, SM_LABEL_MUST, SM_KIND_FAILURE, "queue_overflow", f->swarm,
            "scheduler", g->v[a].ts, g->v[e].ts, fi);
    }
    if (peak >= 180)
        add(d, SM_LABEL_MAY, SM_KIND_FAILURE, "queue_overflow", f->swarm,
            "scheduler", from, to, fi);
    else if (peak < 150 && f->type == SM_WF_QUEUE_SURGE)
        add(d, SM_LABEL_NEVER, SM_KIND_FAILURE, "queue_overflow", f->swarm,
            "scheduler", from, to, fi);
}

/* The prediction labels of a gauge fault over [from, to]: when the
 * failure line is crossed (fail >= 0), must from the fault's onset to the
 * crossing if the run-up lasts 90 s or more (time to see it and 30 s of
 * lead), else may; when it is not (a near miss), may until the peak, and
 * a prediction must then be withdrawn within 60 s. */
static void prediction_labels(deriv *d, int fi, const char *type,
                              int64_t from, int64_t fail_ts, int64_t peak_ts)
{
    const sm_wfault *f = &d->sc->world.faults[fi];
    if (fail_ts >= 0) {
        add(d, fail_ts - from >= S(90) ? SM_LABEL_MUST : SM_LABEL_MAY,
            SM_KIND_PREDICTION, type, f->swarm, "", from, fail_ts, fi);
        return;
    }
    sm_label *l = add(d, SM_LABEL_MAY, SM_KIND_PREDICTION, type, f->swarm, "",
                      from, peak_ts > from ? peak_ts : from, fi);
    if (l != NULL)
        l->withdraw_within_ms = S(60);
}

/* Near-miss queue forecasts: a may-label per excursion of pending tasks
 * over 50 in [from, to] (gaps under 30 s joined), from 60 s before it
 * starts to 60 s after it ends (a trend fitted over 40 s lags the turn),
 * withdrawn within 60 s of that ("near misses not predicted, or withdrawn
 * within a minute"). */
static void excursion_labels(deriv *d, int fi, int64_t from, int64_t to)
{
    const sm_wfault *f = &d->sc->world.faults[fi];
    const gseries *g = &d->sc->series[f->swarm];
    int64_t open = -1, last = 0;
    for (size_t i = 0; i <= g->n; i++) {
        const gsample *x = i < g->n ? &g->v[i] : NULL;
        bool over = x && x->ts >= from && x->ts <= to && x->pending > 50;
        if (over) {
            if (open < 0)
                open = x->ts;
            last = x->ts;
            continue;
        }
        if (open >= 0 && (!x || x->ts - last > S(30))) {
            sm_label *l = add(d, SM_LABEL_MAY, SM_KIND_PREDICTION,
                              "queue_overflow", f->swarm, "", open - S(60),
                              last + S(60), fi);
            if (l != NULL)
                l->withdraw_within_ms = S(60);
            open = -1;
        }
    }
}

static void queue_quota_labels(deriv *d, int fi)
{
    const sm_wfault *f = &d->sc->world.faults[fi];
    const gseries *g = &d->sc->series[f->swarm];
    int64_t t0 = d->sc->world.start_ms;
    int64_t from = t0 + f->onset_ms;
    int64_t to = fault_end(d->sc, f) + S(300);
    /* a backlog the fault left behind can outlast it by more than 5
     * minutes: the must-labels run as long as the signal, to the run's end
     * at most */
    int64_t run_end = t0 + d->sc->world.duration_ms;
    uint32_t peak = 0, over_q = 0;
    int64_t peak_ts = from;
    bool near_q = false;
    for (size_t i = 0; i < g->n; i++) {
        const gsample *x = &g->v[i];
        if (x->ts < from || x->ts > to)
            continue;
        if (x->pending > peak) {
            peak = x->pending;
            peak_ts = x->ts;
        }
        over_q += x->active >= x->quota;
        near_q |= x->active >= 0.9 * x->quota;
    }
    long a, b;
    sm_label *l;
    if (peak > 60) {
        SCAN(g, from, to, x->pending > 50, a, b);
        (void)b;
        long e = signal_end(g, a, run_end, backlog_on, 10);
        if ((l = add(d, SM_LABEL_MUST, SM_KIND_BOTTLENECK, "queue_backlog",
                     f->swarm, "scheduler", g->v[a].ts, g->v[e].ts, fi)))
            l->severity = peak > 220 ? 4 : (peak >= 140 && peak <= 190) ? 3
                        : peak <= 110 ? 2 : 0;
        add(d, SM_LABEL_MAY, SM_KIND_BOTTLENECK, "queue_backlog", f->swarm,
            "scheduler", from, to, fi);
    } else if (peak >= 40) {
        add(d, SM_LABEL_MAY, SM_KIND_BOTTLENECK, "queue_backlog", f->swarm,
            "scheduler", from, to, fi);
    } else if (f->type == SM_WF_QUEUE_SURGE) {
        add(d, SM_LABEL_NEVER, SM_KIND_BOTTLENECK, "queue_backlog", f->swarm,
            "scheduler", from, to, fi);
    }
    if (over_q >= 3) {
        SCAN(g, from, to, x->active >= x->quota, a, b);
        (void)b;
        long e = signal_end(g, a, run_end, quota_on, 10);
        if ((l = add(d, SM_LABEL_MUST, SM_KIND_BOTTLENECK, "quota_exceeded",
                     f->swarm, "scheduler", g->v[a].ts, g->v[e].ts, fi)))
            l->severity = 4;
        add(d, SM_LABEL_MAY, SM_KIND_BOTTLENECK, "quota_exceeded", f->swarm,
            "scheduler", from, to, fi);
    } else if (near_q) {
        add(d, SM_LABEL_MAY, SM_KIND_BOTTLENECK, "quota_exceeded", f->swarm,
            "scheduler", from, to, fi);
    } else if (f->type == SM_WF_QUOTA_SATURATION) {
        add(d, SM_LABEL_NEVER, SM_KIND_BOTTLENECK, "quota_exceeded", f->swarm,
            "scheduler", from, to, fi);
    }
    overflow_labels(d, fi, from, to, peak);
    /* queue growth: a queue that reaches the overflow line is a must (or
     * may) from the onset; each excursion over the backlog line that
     * stops short of it is a near miss, whose forecast must be withdrawn
     * within 60 s of the excursion's peak */
    SCAN(g, from, to, x->pending > 200, a, b);
    (void)b;
    if (a >= 0)
        prediction_labels(d, fi, "queue_overflow", from, g->v[a].ts, peak_ts);
    else
        excursion_labels(d, fi, from, to);
    /* more work burns tokens faster: a token forecast while it lasts is
     * acceptable if withdrawn within 60 s of its end */
    sm_label *tl = add(d, SM_LABEL_MAY, SM_KIND_PREDICTION, "token_exhaustion",
                       f->swarm, "", from, fault_end(d->sc, f), fi);
    if (tl != NULL)
        tl->withdraw_within_ms = S(60);
}

/* token_exhaustion, a failure: usage reaching 0.99 of the budget over
 * [from, to] -> must from that sample until usage falls back under 0.95
 * (a top-up) or the run ends, resolved within 60 s; a peak of 0.95..0.99
 * -> may. */
static void spent_labels(deriv *d, int fi, int64_t from, int64_t to)
{
    const sm_wfault *f = &d->sc->world.faults[fi];
    const gseries *g = &d->sc->series[f->swarm];
    int64_t run_end = d->sc->world.start_ms + d->sc->world.duration_ms;
    long a, b;
    sm_label *l;
    SCAN(g, from, to, x->token >= 0.99f, a, b);
    if (a >= 0) {
        long e = signal_end(g, a, run_end, spent_on, 1);
        if ((l = add(d, SM_LABEL_MUST, SM_KIND_FAILURE, "token_exhaustion",
                     f->swarm, "scheduler", g->v[a].ts, g->v[e].ts, fi)))
            l->resolve_within_ms = S(60);
        return;
    }
    SCAN(g, from, to, x->token >= 0.95f, a, b);
    if (a >= 0)
        add(d, SM_LABEL_MAY, SM_KIND_FAILURE, "token_exhaustion", f->swarm,
            "scheduler", g->v[a].ts, g->v[b].ts + S(60), fi);
}

static void token_labels(deriv *d, int fi)
{
    const sm_wfault *f = &d->sc->world.faults[fi];
    const gseries *g = &d->sc->series[f->swarm];
    int64_t t0 = d->sc->world.start_ms;
    int64_t from = t0 + f->onset_ms;
    int64_t end = fault_end(d->sc, f);
    int64_t to = end + S(60);
    double peak = 0;
    int64_t peak_ts = from;
    for (size_t i = 0; i < g->n; i++)
        if (g->v[i].ts >= from && g->v[i].ts <= to && g->v[i].token > peak) {
            peak = g->v[i].token;
            peak_ts = g->v[i].ts;
        }
    long a, b, c, e;
    sm_label *l;
    SCAN(g, from, to, x->token >= 0.99f, a, b);
    (void)b;
    prediction_labels(d, fi, "token_exhaustion", from,
                      a >= 0 ? g->v[a].ts : -1, peak_ts);
    if (peak > 0.83) {
        SCAN(g, from, to, x->token > 0.80f, a, b);
        SCAN(g, g->v[a].ts, to, x->token > 0.75f, c, e);
        (void)b;
        (void)c;
        int64_t cross = g->v[a].ts;
        if ((l = add(d, SM_LABEL_MUST, SM_KIND_BOTTLENECK, "token_exhaustion",
                     f->swarm, "scheduler", cross, g->v[e].ts, fi)))
            l->severity = peak > 0.92 ? 4 : peak < 0.88 ? 3 : 0;
        add(d, SM_LABEL_MAY, SM_KIND_BOTTLENECK, "token_exhaustion", f->swarm,
            "scheduler", from, end + S(180), fi);
        spent_labels(d, fi, from, to);
    } else if (peak >= 0.75) {
        add(d, SM_LABEL_MAY, SM_KIND_BOTTLENECK, "token_exhaustion", f->swarm,
            "scheduler", from, end + S(180), fi);
    } else {
        add(d, SM_LABEL_NEVER, SM_KIND_BOTTLENECK, "token_exhaustion", f->swarm,
            "scheduler", from, end + S(180), fi);
    }
}

static void memory_labels(deriv *d, int fi)
{
    const sm_wfault *f = &d->sc->world.faults[fi];
    const gseries *g = &d->sc->series[f->swarm];
    int64_t t0 = d->sc->world.start_ms;
    int64_t from = t0 + f->onset_ms;
    int64_t end = fault_end(d->sc, f);
    long a, b;
    SCAN(g, from, end, x->memory >= 0.90f, a, b);
    (void)b;
    if (a >= 0)
        add(d, SM_LABEL_MUST, SM_KIND_PREDICTION, "memory_exhaustion", f->swarm, "",
            from + f->ramp_ms, g->v[a].ts, fi);
    else
        add(d, SM_LABEL_MAY, SM_KIND_PREDICTION, "memory_exhaustion", f->swarm, "",
            from, end, fi);
    SCAN(g, from, end, x->memory >= 0.98f, a, b);
    if (a >= 0)
        add(d, SM_LABEL_MUST, SM_KIND_FAILURE, "memory_exhaustion", f->swarm,
            "scheduler", g->v[a].ts, end, fi);
}

static void group_labels(deriv *d, int fi)
{
    const sm_wfault *f = &d->sc->world.faults[fi];
    const sm_wswarm *sw = &d->sc->world.swarms[f->swarm];
    int64_t t0 = d->sc->world.start_ms;
    int64_t onset = t0 + f->onset_ms, full = onset + f->ramp_ms;
    int64_t end = fault_end(d->sc, f);
    for (uint32_t g = 0; g < sw->groups; g++) {
        bool in = f->n_groups == 0;
        for (size_t i = 0; i < f->n_groups; i++)
            in |= f->groups[i] == g;
        if (!in)
            continue;
        char name[16];
        snprintf(name, sizeof name, "g%u", g);
        sm_label *l;
        if (f->type == SM_WF_QUORUM_LOSS) {
            if ((l = add(d, SM_LABEL_MUST, SM_KIND_BOTTLENECK, "consensus_timeout",
                         f->swarm, name, full, end, fi)))
                l->severity = 3;
            add(d, SM_LABEL_MAY, SM_KIND_BOTTLENECK, "consensus_timeout", f->swarm,
                name, onset, end + S(180), fi);
            if ((l = add(d, SM_LABEL_MUST, SM_KIND_FAILURE, "quorum_loss",
                         f->swarm, name, full, end, fi)))
                l->raise_within_ms = S(60);
            add(d, SM_LABEL_MAY, SM_KIND_FAILURE, "quorum_loss", f->swarm, name,
                onset, end + S(60), fi);
            continue;
        }
        double r = f->magnitude;
        if (r >= 0.15) {
            if ((l = add(d, SM_LABEL_MUST, SM_KIND_BOTTLENECK, "consensus_timeout",
                         f->swarm, name, full, end, fi)))
                l->severity = r >= 0.30 ? 3 : r <= 0.17 ? 2 : 0;
            add(d, SM_LABEL_MAY, SM_KIND_BOTTLENECK, "consensus_timeout", f->swarm,
                name, onset, end + S(180), fi);
        } else if (r > 0.07) {
            add(d, SM_LABEL_MAY, SM_KIND_BOTTLENECK, "consensus_timeout", f->swarm,
                name, onset, end + S(180), fi);
        } else {
            add(d, SM_LABEL_NEVER, SM_KIND_BOTTLENECK, "consensus_timeout",
                f->swarm, name, onset, end + S(180), fi);
        }
    }
}

/* The first TIMED_OUT task event of agent `who` of swarm s in [from, to]
 * the probe saw, or -1. */
static int64_t first_timeout(const sm_scenario *sc, uint32_t s,
                             const char *who, int64_t from, int64_t to)
{
    for (size_t i = 0; i < sc->timeouts.n; i++) {
        const tmout *t = &sc->timeouts.v[i];
        if (t->swarm == s && t->ts >= from && t->ts <= to &&
            strcmp(t->agent, who) == 0)
            return t->ts;
    }
    return -1;
}

/* task_timeout, a failure, for an agent whose tasks the fault times out
 * (a dead agent's tasks in flight, a stuck agent's hung one at the end):
 * must from the first TIMED_OUT event over [onset, end + 120 s], raised
 * within 30 s, to the fault's end (or that event, if later); may over
 * [onset, end + 120 s]. */
static void timeout_labels(deriv *d, int fi, const char *who)
{
    const sm_wfault *f = &d->sc->world.faults[fi];
    int64_t onset = d->sc->world.start_ms + f->onset_ms;
    int64_t end = fault_end(d->sc, f);
    int64_t t = first_timeout(d->sc, f->swarm, who, onset, end + S(120));
    sm_label *l;
    if (t >= 0 && (l = add(d, SM_LABEL_MUST, SM_KIND_FAILURE, "task_timeout",
                           f->swarm, who, t, end > t ? end : t, fi)))
        l->raise_within_ms = S(30);
    add(d, SM_LABEL_MAY, SM_KIND_FAILURE, "task_timeout", f->swarm, who, onset,
        end + S(120), fi);
}

/* agent_down, a failure, for an agent dead from `die` until it registers
 * again at the fault's end (or the run ends): must, raised within three
 * heartbeats + 5 s, resolved within 30 s of its return; a death shorter
 * than 30 s is may, over the outage + two heartbeats. */
static void down_labels(deriv *d, int fi, const char *who, int64_t die)
{
    const sm_wfault *f = &d->sc->world.faults[fi];
    double hb = d->sc->world.swarms[f->swarm].heartbeat_s;
    int64_t back = fault_end(d->sc, f);
    sm_label *l;
    if (back - die < S(30)) {
        add(d, SM_LABEL_MAY, SM_KIND_FAILURE, "agent_down", f->swarm, who, die,
            back + S(2 * hb), fi);
        return;
    }
    if ((l = add(d, SM_LABEL_MUST, SM_KIND_FAILURE, "agent_down", f->swarm, who,
                 die, back, fi))) {
        l->raise_within_ms = S(3 * hb + 5);
        l->resolve_within_ms = S(30);
    }
}

static void fault_labels(deriv *d, int fi)
{
    const sm_wfault *f = &d->sc->world.faults[fi];
    const sm_wswarm *sw = &d->sc->world.swarms[f->swarm];
    double m = sm_wswarm_mean_task_s(sw) / sw->speed;
    int64_t t0 = d->sc->world.start_ms;
    int64_t onset = t0 + f->onset_ms, full = onset + f->ramp_ms;
    int64_t end = fault_end(d->sc, f);
    sm_label *l;
    switch (f->type) {
    case SM_WF_SLOW_AGENT:
        for (size_t i = 0; i < f->n_agents; i++)
            slow_labels(d, fi, f->agents[i], f->magnitude, full, end, true);
        break;
    case SM_WF_SLOW_FRACTION: {
        uint32_t n = 0;
        for (uint32_t a = 0; a < sw->agents; a++)
            n += sm_wfault_has_agent(f, a, sw->agents);
        for (uint32_t a = 0; a < sw->agents; a++)
            if (sm_wfault_has_agent(f, a, sw->agents))
                slow_labels(d, fi, a, f->magnitude, full, end,
                            n * 3 <= sw->agents + 1);
        queue_quota_labels(d, fi);
        break;
    }
    case SM_WF_FAILING_AGENT:
        for (size_t i = 0; i < f->n_agents; i++) {
            char who[16];
            snprintf(who, sizeof who, "a%u", f->agents[i]);
            double r = f->magnitude;
            if (r >= 0.45) {
                if ((l = add(d, SM_LABEL_MUST, SM_KIND_BOTTLENECK, "slow_agent",
                             f->swarm, who, full, end, fi))) {
                    l->severity = 2;
                    l->raise_within_ms = clamp_ms(120 + 12 * m, 900);
                    l->resolve_within_ms = clamp_ms(180 + 10 * m, 900);
                }
                add(d, SM_LABEL_MAY, SM_KIND_BOTTLENECK, "slow_agent", f->swarm,
                    who, onset, end + clamp_ms(180 + 10 * m, 900), fi);
            } else if (r > 0.2) {
                add(d, SM_LABEL_MAY, SM_KIND_BOTTLENECK, "slow_agent", f->swarm,
                    who, onset, end + clamp_ms(180 + 10 * m, 900), fi);
            } else {
                add(d, SM_LABEL_NEVER, SM_KIND_BOTTLENECK, "slow_agent", f->swarm,
                    who, onset, end + S(180), fi);
            }
        }
        break;
    case SM_WF_TOKEN_BURN:
        token_labels(d, fi);
        break;
    case SM_WF_MEMORY_LEAK:
        memory_labels(d, fi);
        break;
    case SM_WF_QUEUE_SURGE:
    case SM_WF_QUOTA_SATURATION:
        queue_quota_labels(d, fi);
        break;
    case SM_WF_CONSENSUS_DEGRADATION:
    case SM_WF_QUORUM_LOSS:
        group_labels(d, fi);
        break;
    case SM_WF_STUCK_AGENT:
        for (size_t i = 0; i < f->n_agents; i++) {
            char who[16];
            snprintf(who, sizeof who, "a%u", f->agents[i]);
            if ((l = add(d, SM_LABEL_MUST, SM_KIND_FAILURE, "agent_stuck", f->swarm,
                         who, onset, end, fi)))
                l->raise_within_ms = clamp_ms(120 + 3 * m, 900);
            add(d, SM_LABEL_MAY, SM_KIND_BOTTLENECK, "slow_agent", f->swarm, who,
                onset, end + S(300), fi);
            timeout_labels(d, fi, who);
        }
        queue_quota_labels(d, fi);
        break;
    case SM_WF_DEGRADING_AGENT:
        for (size_t i = 0; i < f->n_agents; i++) {
            char who[16];
            snprintf(who, sizeof who, "a%u", f->agents[i]);
            int64_t die = full;
            int64_t t25 = f->magnitude > 2.5
                ? onset + (int64_t)((double)f->ramp_ms * 1.5 /
                                    (f->magnitude - 1.0))
                : die;
            slow_labels(d, fi, f->agents[i], f->magnitude, t25, die,
                        die - t25 >= S(120));
            if (f->ramp_ms >= S(120))
                add(d, SM_LABEL_MUST, SM_KIND_PREDICTION, "agent_down", f->swarm,
                    who, onset, die, fi);
            down_labels(d, fi, who, die);
            timeout_labels(d, fi, who);
        }
        queue_quota_labels(d, fi);
        break;
    case SM_WF_CRASH_RESTART:
        for (size_t i = 0; i < f->n_agents; i++) {
            char who[16];
            snprintf(who, sizeof who, "a%u", f->agents[i]);
            down_labels(d, fi, who, onset);
            timeout_labels(d, fi, who);
        }
        queue_quota_labels(d, fi);
        break;
    }
}

/* Whether time t of swarm s lies inside a fault window (+ 300 s). */
static bool in_fault(const sm_scenario *sc, uint32_t s, int64_t t)
{
    int64_t t0 = sc->world.start_ms;
    for (size_t i = 0; i < sc->world.n_faults; i++) {
        const sm_wfault *f = &sc->world.faults[i];
        if (f->swarm == s && t >= t0 + f->onset_ms &&
            t <= fault_end(sc, f) + S(300))
            return true;
    }
    return false;
}

/* Whether a fault of swarm s that stops or revives agent a (it has labels
 * of its own) covers time t (+ 300 s). */
static bool agent_fault_at(const sm_scenario *sc, uint32_t s, uint32_t a,
                           int64_t t)
{
    int64_t t0 = sc->world.start_ms;
    for (size_t i = 0; i < sc->world.n_faults; i++) {
        const sm_wfault *f = &sc->world.faults[i];
        bool stops = f->type == SM_WF_CRASH_RESTART ||
                     f->type == SM_WF_DEGRADING_AGENT ||
                     f->type == SM_WF_STUCK_AGENT;
        if (stops && f->swarm == s &&
            sm_wfault_has_agent(f, a, sc->world.swarms[s].agents) &&
            t >= t0 + f->onset_ms && t <= fault_end(sc, f) + S(300))
            return true;
    }
    return false;
}

/* The raise lines crossing_labels watches outside the faults. */
static bool token_over(const gsample *x) { return x->token > 0.80f; }
static bool backlog_over(const gsample *x) { return x->pending > 50; }
static bool quota_over(const gsample *x) { return x->active >= x->quota; }
static bool spent_over(const gsample *x) { return x->token >= 0.99f; }
static bool overflow_over(const gsample *x) { return x->pending > 200; }

static const struct crossing {
    sm_label_kind kind;
    const char *type;
    gauge_on over;
} crossings[] = {
    {SM_KIND_BOTTLENECK, "token_exhaustion", token_over},
    {SM_KIND_BOTTLENECK, "queue_backlog", backlog_over},
    {SM_KIND_BOTTLENECK, "quota_exceeded", quota_over},
    {SM_KIND_FAILURE, "token_exhaustion", spent_over},
    {SM_KIND_FAILURE, "queue_overflow", overflow_over},
};

/* May labels where swarm s's gauge crosses a raise line outside the
 * faults, over each crossing (gaps under 30 s joined) - 5 s .. + 60 s. */
static void crossing_labels_of(deriv *d, uint32_t s, const struct crossing *c)
{
    const gseries *g = &d->sc->series[s];
    int64_t open = -1, last = 0;
    for (size_t i = 0; i <= g->n; i++) {
        bool over = i < g->n && !in_fault(d->sc, s, g->v[i].ts) &&
                    c->over(&g->v[i]);
        if (over && open < 0)
            open = g->v[i].ts;
        if (over)
            last = g->v[i].ts;
        if (!over && open >= 0 && (i == g->n || g->v[i].ts - last > S(30))) {
            add(d, SM_LABEL_MAY, c->kind, c->type, s, "scheduler", open - S(5),
                last + S(60), -1);
            open = -1;
        }
    }
}

static void crossing_labels(deriv *d)
{
    for (uint32_t s = 0; s < d->sc->world.n_swarms; s++)
        for (size_t k = 0; k < sizeof crossings / sizeof crossings[0]; k++)
            crossing_labels_of(d, s, &crossings[k]);
    /* the odd missed beat comes in runs too: a silence of over three
     * intervals outside the faults is in the stream, so agent_down over it
     * is not a false alarm */
    for (size_t i = 0; i < d->sc->gaps.n; i++) {
        const hbgap *g = &d->sc->gaps.v[i];
        if (agent_fault_at(d->sc, g->swarm, g->agent, g->from))
            continue;
        char who[16];
        snprintf(who, sizeof who, "a%u", g->agent);
        add(d, SM_LABEL_MAY, SM_KIND_FAILURE, "agent_down", g->swarm, who,
            g->from, g->to + S(5), -1);
    }
}

/* ------------------------------------------------------------- loading */

/* "coordinator": {"loop", "delay_s", "jitter_s", "fail_rate",
 * "reject_rate", "take_recommend"}; validated with the world. */
static bool coord_parse(sm_scenario *sc, json_t *o, char *err, size_t cap)
{
    static const char *const keys[] = {
        "loop", "delay_s", "jitter_s", "fail_rate", "reject_rate",
        "take_recommend", NULL,
    };
    static const struct {
        const char *key;
        size_t off;
    } nums[] = {
        {"delay_s", offsetof(sm_wcoord, delay_mean_s)},
        {"jitter_s", offsetof(sm_wcoord, delay_jitter_s)},
        {"fail_rate", offsetof(sm_wcoord, fail_rate)},
        {"reject_rate", offsetof(sm_wcoord, reject_rate)},
    };
    const char *k;
    json_t *v;
    if (!json_is_object(o)) {
        say(err, cap, "\"coordinator\" must be an object");
        return false;
    }
    json_object_foreach(o, k, v) {
        if (!is_key(k, keys)) {
            say(err, cap, "coordinator has an unknown key \"%s\"", k);
            return false;
        }
    }
    sm_wcoord *c = &sc->world.coord;
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if ((v = json_object_get(o, nums[i].key)) == NULL)
            continue;
        if (!json_is_number(v)) {
            say(err, cap, "coordinator.%s must be a number", nums[i].key);
            return false;
        }
        *(double *)((char *)c + nums[i].off) = json_number_value(v);
    }
    const char *flags[] = {"loop", "take_recommend"};
    bool *dst[] = {&sc->loop, &c->take_recommend};
    for (size_t i = 0; i < 2; i++) {
        if ((v = json_object_get(o, flags[i])) == NULL)
            continue;
        if (!json_is_boolean(v)) {
            say(err, cap, "coordinator.%s must be true or false", flags[i]);
            return false;
        }
        *dst[i] = json_is_true(v);
    }
    return true;
}

/* "settings": {"name": value, ...}: worker settings for the loop, kept
 * as strings (sm_config_set checks them when applied). */
static bool settings_parse(sm_scenario *sc, json_t *o, char *err, size_t cap)
{
    const char *k;
    json_t *v;
    if (!json_is_object(o) || json_object_size(o) > SCENARIO_SETTINGS) {
        say(err, cap, "\"settings\" must be an object of at most %d "
            "settings", SCENARIO_SETTINGS);
        return false;
    }
    json_object_foreach(o, k, v) {
        char (*kv)[64] = sc->settings[sc->n_settings];
        int n = json_is_string(v) ? snprintf(kv[1], 64, "%s", json_string_value(v))
                : json_is_boolean(v) ? snprintf(kv[1], 64, "%s",
                                                json_is_true(v) ? "true" : "false")
                : json_is_integer(v) ? snprintf(kv[1], 64, "%lld",
                                                (long long)json_integer_value(v))
                : json_is_real(v) ? snprintf(kv[1], 64, "%.17g", json_real_value(v))
                : -1;
        if (n < 0 || n >= 64 || strlen(k) >= 64) {
            say(err, cap, "settings.%s must be a string, number or boolean "
                "under 64 characters", k);
            return false;
        }
        snprintf(kv[0], 64, "%s", k);
        sc->n_settings++;
    }
    return true;
}

static sm_status parse_root(sm_scenario *sc, json_t *root, char *err,
                            size_t cap)
{
    static const char *const keys[] = {
        "name", "description", "seed", "duration_s", "start_ms", "swarms",
        "faults", "labels", "floor", "derive_labels", "coordinator",
        "settings", NULL,
    };
    const char *k;
    json_t *v;
    if (!json_is_object(root)) {
        say(err, cap, "a scenario is a JSON object");
        return SM_ERR_CONFIG;
    }
    json_object_foreach(root, k, v) {
        if (!is_key(k, keys)) {
            say(err, cap, "unknown top-level key \"%s\"", k);
            return SM_ERR_CONFIG;
        }
    }
    sm_world_config *w = &sc->world;
    sm_world_config_default(w);
    w->n_swarms = 0;
    if (!copy_str(json_object_get(root, "name"), sc->name, sizeof sc->name)) {
        say(err, cap, "\"name\" must be a string under %zu characters",
            sizeof sc->name);
        return SM_ERR_CONFIG;
    }
    if ((v = json_object_get(root, "description")) &&
        !copy_str(v, sc->description, sizeof sc->description)) {
        say(err, cap, "\"description\" must be a string under %zu "
            "characters", sizeof sc->description);
        return SM_ERR_CONFIG;
    }
    if ((v = json_object_get(root, "seed")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            say(err, cap, "\"seed\" must be a non-negative integer");
            return SM_ERR_CONFIG;
        }
        w->seed = (uint64_t)json_integer_value(v);
    }
    v = json_object_get(root, "duration_s");
    if (!json_is_number(v) || json_number_value(v) <= 0) {
        say(err, cap, "\"duration_s\" must be a positive number");
        return SM_ERR_CONFIG;
    }
    w->duration_ms = S(json_number_value(v));
    if ((v = json_object_get(root, "start_ms")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0) {
            say(err, cap, "\"start_ms\" must be a positive integer");
            return SM_ERR_CONFIG;
        }
        w->start_ms = json_integer_value(v);
    }
    v = json_object_get(root, "swarms");
    if (!json_is_array(v) || json_array_size(v) < 1 ||
        json_array_size(v) > SM_WORLD_MAX_SWARMS) {
        say(err, cap, "\"swarms\" must be an array of 1..%d swarms",
            SM_WORLD_MAX_SWARMS);
        return SM_ERR_CONFIG;
    }
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        if (!swarm_parse(x, (uint32_t)i, &w->swarms[i], err, cap))
            return SM_ERR_CONFIG;
        w->n_swarms++;
    }
    if ((v = json_object_get(root, "faults")) != NULL) {
        if (!json_is_array(v) || json_array_size(v) > SM_WORLD_MAX_FAULTS) {
            say(err, cap, "\"faults\" must be an array of at most %d",
                SM_WORLD_MAX_FAULTS);
            return SM_ERR_CONFIG;
        }
        json_array_foreach(v, i, x) {
            if (!fault_parse(x, i, w, &w->faults[i], err, cap))
                return SM_ERR_CONFIG;
            w->n_faults++;
        }
    }
    if ((v = json_object_get(root, "coordinator")) != NULL &&
        !coord_parse(sc, v, err, cap))
        return SM_ERR_CONFIG;
    if ((v = json_object_get(root, "settings")) != NULL &&
        !settings_parse(sc, v, err, cap))
        return SM_ERR_CONFIG;
    char why[384];
    if (sm_world_config_validate(w, why, sizeof why) != SM_OK) {
        say(err, cap, "%s", why);
        return SM_ERR_CONFIG;
    }
    sc->derive = true;
    if ((v = json_object_get(root, "derive_labels")) != NULL) {
        if (!json_is_boolean(v)) {
            say(err, cap, "\"derive_labels\" must be true or false");
            return SM_ERR_CONFIG;
        }
        sc->derive = json_is_true(v);
    }
    sm_score_floors_init(&sc->floor);
    if ((v = json_object_get(root, "floor")) != NULL &&
        sm_score_floors_from_json(&sc->floor, v, "scenario", why,
                                  sizeof why) != SM_OK) {
        say(err, cap, "%s", why);
        return SM_ERR_CONFIG;
    }
    if ((v = json_object_get(root, "labels")) != NULL &&
        sm_labels_from_json(v, "scenario", &sc->labels, why, sizeof why) !=
            SM_OK) {
        say(err, cap, "%s", why);
        return SM_ERR_CONFIG;
    }
    /* Hand-written times count from the run's start; a never-label
     * without times spans the run. */
    int64_t t0 = w->start_ms, end = t0 + w->duration_ms;
    for (size_t l = 0; l < sc->labels.n; l++) {
        sm_label *lb = &sc->labels.v[l];
        if (lb->relative) {
            lb->from_ms += t0;
            lb->to_ms += t0;
            lb->relative = false;
        }
        if (lb->from_ms == INT64_MIN)
            lb->from_ms = t0;
        if (lb->to_ms == INT64_MAX)
            lb->to_ms = end;
        bool known = false;
        for (size_t s = 0; s < w->n_swarms; s++)
            known |= strcmp(lb->swarm, w->swarms[s].id) == 0;
        if (!known) {
            say(err, cap, "a label names swarm \"%s\", not in the scenario",
                lb->swarm);
            return SM_ERR_CONFIG;
        }
    }
    if (!probe(sc)) {
        say(err, cap, "the world could not be run (out of memory)");
        return SM_ERR_NOMEM;
    }
    if (sc->derive) {
        deriv d = {sc, true};
        for (size_t f = 0; f < w->n_faults; f++)
            fault_labels(&d, (int)f);
        crossing_labels(&d);
        if (!d.ok) {
            say(err, cap, "out of memory for labels");
            return SM_ERR_NOMEM;
        }
    }
    return SM_OK;
}

sm_status sm_scenario_parse(const char *text, size_t len, sm_scenario **out,
                            char *err, size_t cap)
{
    if (text == NULL || out == NULL)
        return SM_ERR_INVALID;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        say(err, cap, "line %d: %s", je.line, je.text);
        return SM_ERR_CONFIG;
    }
    sm_scenario *sc = calloc(1, sizeof *sc);
    if (sc == NULL) {
        json_decref(root);
        return SM_ERR_NOMEM;
    }
    sm_status rc = parse_root(sc, root, err, cap);
    json_decref(root);
    if (rc != SM_OK) {
        sm_scenario_destroy(sc);
        return rc;
    }
    *out = sc;
    return SM_OK;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

sm_status sm_scenario_load(const char *path, sm_scenario **out, char *err,
                           size_t cap)
{
    if (path == NULL || out == NULL)
        return SM_ERR_INVALID;
    size_t len = 0;
    char *text = slurp(path, &len);
    if (text == NULL) {
        say(err, cap, "cannot read %s", path);
        return SM_ERR_IO;
    }
    char why[384] = "";
    sm_status rc = sm_scenario_parse(text, len, out, why, sizeof why);
    free(text);
    if (rc != SM_OK)
        say(err, cap, "%s: %s", path, why);
    return rc;
}

void sm_scenario_destroy(sm_scenario *sc)
{
    if (sc == NULL)
        return;
    for (size_t s = 0; s < SM_WORLD_MAX_SWARMS; s++)
        free(sc->series[s].v);
    free(sc->timeouts.v);
    free(sc->gaps.v);
    free(sc->completed.v);
    free(sc->gaps.last);
    sm_labels_free(&sc->labels);
    free(sc);
}

const char *sm_scenario_name(const sm_scenario *sc)
{
    return sc ? sc->name : "";
}

const char *sm_scenario_description(const sm_scenario *sc)
{
    return sc ? sc->description : "";
}

const sm_world_config *sm_scenario_world(const sm_scenario *sc)
{
    return sc ? &sc->world : NULL;
}

const sm_score_floors *sm_scenario_floors(const sm_scenario *sc)
{
    return sc ? &sc->floor : NULL;
}

const sm_labels *sm_scenario_labels(const sm_scenario *sc)
{
    return sc ? &sc->labels : NULL;
}

sm_status sm_sim_create_scenario(sm_sim **out, const sm_scenario *sc)
{
    if (sc == NULL)
        return SM_ERR_INVALID;
    return sm_sim_create_world(out, &sc->world);
}

/* sm_score_next_fn over an sm_sim. */
static bool score_next(void *ud, sm_score_msg *out, sm_status *st)
{
    sm_sim *sim = ud;
    sm_sim_msg m;
    if (!sm_sim_next(sim, &m)) {
        *st = sm_sim_status(sim);
        return false;
    }
    out->subject = m.subject;
    out->data = m.payload;
    out->len = m.len;
    out->ts_ms = m.ts_ms;
    return true;
}

sm_status sm_scenario_score_input(const sm_scenario *sc, sm_sim **sim,
                                  sm_score_input *in)
{
    if (sc == NULL || sim == NULL || in == NULL)
        return SM_ERR_INVALID;
    sm_sim *s = NULL;
    sm_status rc = sm_sim_create_scenario(&s, sc);
    if (rc != SM_OK)
        return rc;
    memset(in, 0, sizeof *in);
    in->name = sc->name;
    in->next = score_next;
    in->ud = s;
    in->labels = &sc->labels;
    *sim = s;
    return SM_OK;
}

bool sm_scenario_loop(const sm_scenario *sc)
{
    return sc != NULL && sc->loop;
}

/* The closed loop's hooks (score.h): a HealingCommand the worker publishes
 * goes to the world's coordinator; its counters, at the end. */
static sm_status loop_heal(void *ud, const char *subject, const void *data,
                           size_t len)
{
    (void)subject;
    sm_world *w = sm_sim_world_mut(ud);
    sm_wheal cmd;
    if (w == NULL)
        return SM_ERR_INVALID;
    sm_status s = sm_wheal_decode(data, len, &cmd);
    return s == SM_OK ? sm_world_heal(w, &cmd) : s;
}

static void loop_counts(void *ud, sm_score_coord *out)
{
    sm_world_heal_stats h;
    sm_world_heal_stats_of(sm_sim_world(ud), &h);
    memset(out, 0, sizeof *out);
    out->received = h.received;
    out->duplicates = h.duplicates;
    out->advice = h.advice;
    out->escalations = h.escalations;
    out->done = h.done;
    out->failed = h.failed;
    out->rejected = h.rejected;
    out->below_quorum = h.below_quorum;
}

/* A ScalingDecision the worker publishes goes to the coordinator too. */
static sm_status loop_scale(void *ud, const char *subject, const void *data,
                            size_t len)
{
    (void)subject;
    sm_world *w = sm_sim_world_mut(ud);
    sm_wscale d;
    if (w == NULL)
        return SM_ERR_INVALID;
    sm_status s = sm_wscale_decode(data, len, &d);
    return s == SM_OK ? sm_world_scale(w, &d) : s;
}

static void loop_load(void *ud, sm_score_load *out)
{
    const sm_world *w = sm_sim_world(ud);
    sm_world_load l;
    sm_world_scale_stats st;
    sm_world_load_of(w, 0, &l);
    sm_world_scale_stats_of(w, &st);
    memset(out, 0, sizeof *out);
    out->seconds = l.seconds;
    out->queue_mean = l.queue_mean;
    out->queue_p95 = l.queue_p95;
    out->queue_max = l.queue_max;
    out->queue_under = l.queue_under;
    out->agent_util = l.agent_util;
    out->token_util = l.token_util;
    out->agents_min = l.agents_min;
    out->agents_max = l.agents_max;
    out->applied_up = st.up;
    out->applied_down = st.down;
    out->added = st.added;
    out->removed = st.removed;
    out->refused = st.refused;
}

size_t sm_scenario_n_settings(const sm_scenario *sc)
{
    return sc ? sc->n_settings : 0;
}

const char *sm_scenario_setting(const sm_scenario *sc, size_t i,
                                const char **value)
{
    if (sc == NULL || i >= sc->n_settings)
        return NULL;
    if (value)
        *value = sc->settings[i][1];
    return sc->settings[i][0];
}

sm_status sm_scenario_loop_input(const sm_scenario *sc, const sm_wcoord *coord,
                                 sm_sim **sim, sm_score_input *in)
{
    if (sc == NULL || sim == NULL || in == NULL)
        return SM_ERR_INVALID;
    sm_world_config wc = sc->world;
    if (coord != NULL)
        wc.coord = *coord;
    sm_sim *s = NULL;
    sm_status rc = sm_sim_create_world(&s, &wc);
    if (rc != SM_OK)
        return rc;
    memset(in, 0, sizeof *in);
    in->name = sc->name;
    in->next = score_next;
    in->ud = s;
    in->labels = &sc->labels;
    *sim = s;
    in->heal = loop_heal;
    in->coord = loop_counts;
    in->scale = loop_scale;
    in->load = loop_load;
    return SM_OK;
}

sm_status sm_scenario_write_labels(const sm_scenario *sc, const char *path,
                                   char *err, size_t cap)
{
    if (sc == NULL || path == NULL)
        return SM_ERR_INVALID;
    json_t *root = json_object();
    json_t *labels = sm_labels_to_json(&sc->labels);
    json_t *floor = sm_score_floors_to_json(&sc->floor);
    bool ok = root && labels && floor &&
              json_object_set_new(root, "name", json_string(sc->name)) == 0 &&
              json_object_set_new(root, "description",
                                  json_string(sc->description)) == 0;
    if (ok) {
        ok = json_object_set_new(root, "labels", labels) == 0;
        labels = NULL;
    }
    if (ok) {
        ok = json_object_set_new(root, "floor", floor) == 0;
        floor = NULL;
    }
    json_decref(labels);
    json_decref(floor);
    if (!ok) {
        json_decref(root);
        say(err, cap, "out of memory for the labels of %s", sc->name);
        return SM_ERR_NOMEM;
    }
    int rc = json_dump_file(root, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER |
                                        JSON_REAL_PRECISION(15));
    json_decref(root);
    if (rc != 0) {
        say(err, cap, "cannot write %s", path);
        return SM_ERR_IO;
    }
    return SM_OK;
}
