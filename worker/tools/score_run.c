/* score_run.c - `swarm-medic score`: a recording or a generator through
 * the worker pipeline, the conclusions decoded with protobuf-c, the
 * engine's figures printed, the floors checked (score.h). */
#include "score.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decision.h"
#include "replay.h"
#include "swarm_medic.pb-c.h"
#include "worker.h"

/* ---- collecting conclusions ------------------------------------------- */

typedef struct collector {
    sm_conclusion *v;
    size_t n, cap;
    sm_status status;           /* first failure (decode, memory) */
} collector;

static void collect(collector *k, const char *subject, const void *data,
                    size_t len)
{
    /* Bottlenecks are the only conclusions the worker draws today; decode
     * failures and predictions here when it draws them. */
    if (!strstr(subject, ".bottleneck."))
        return;
    Swarmmedic__V1__Bottleneck *b =
        swarmmedic__v1__bottleneck__unpack(NULL, len, data);
    if (!b || !b->decision) {
        if (k->status == SM_OK)
            k->status = SM_ERR_DECODE;
        goto done;
    }
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 64;
        sm_conclusion *nv = realloc(k->v, cap * sizeof *nv);
        if (!nv) {
            k->status = SM_ERR_NOMEM;
            goto done;
        }
        k->v = nv;
        k->cap = cap;
    }
    sm_conclusion *c = &k->v[k->n++];
    memset(c, 0, sizeof *c);
    c->kind = SM_KIND_BOTTLENECK;
    snprintf(c->type, sizeof c->type, "%s", sm_bn_type_str((sm_bn_type)b->type));
    snprintf(c->swarm, sizeof c->swarm, "%s", b->decision->swarm);
    snprintf(c->subject, sizeof c->subject, "%s",
             b->n_affected ? b->affected[0] : "");
    c->transition = (int)b->transition;
    c->severity = (int)b->severity;
    c->at_ms = b->decision->decided_at_ms;
done:
    if (b)
        swarmmedic__v1__bottleneck__free_unpacked(b, NULL);
}

static void from_replay(void *ud, int64_t recv_ms, const char *subject,
                        const char *const *headers, const void *data,
                        size_t len)
{
    (void)recv_ms;
    (void)headers;
    collect(ud, subject, data, len);
}

static sm_status from_worker(void *ud, const char *subject, const void *data,
                             size_t len, const char *const *headers)
{
    (void)headers;
    collect(ud, subject, data, len);
    return SM_OK;
}

/* The generator path: the same loop as sm_replay_offline, over messages
 * made in memory. */
static sm_status run_generator(const sm_config *cfg, const sm_log *log,
                               const sm_score_input *in, collector *k,
                               int64_t *first, int64_t *last, char *err,
                               size_t errcap)
{
    sm_worker *w = NULL;
    sm_status s = sm_worker_create(&w, cfg, log);
    if (s != SM_OK) {
        snprintf(err, errcap, "cannot create the worker: %s", sm_status_str(s));
        return s;
    }
    sm_sink sink = {.publish = from_worker, .ud = k};
    sm_worker_set_sink(w, &sink);
    sm_score_msg m;
    sm_status gs = SM_OK;
    uint64_t n = 0;
    while (in->next(in->ud, &m, &gs)) {
        if (n++ == 0)
            *first = m.ts_ms;
        *last = m.ts_ms;
        (void)sm_worker_handle(w, m.subject, m.data, m.len);
    }
    sm_worker_destroy(w);
    if (gs != SM_OK) {
        snprintf(err, errcap, "%s: the generator stopped early: %s", in->name,
                 sm_status_str(gs));
        return gs;
    }
    if (n == 0) {
        snprintf(err, errcap, "%s: no messages", in->name);
        return SM_ERR_INVALID;
    }
    return SM_OK;
}

sm_status sm_score_run(const sm_config *cfg, const sm_log *log,
                       const sm_score_input *in, sm_score_report *out,
                       char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    collector k = {0};
    int64_t first = 0, last = 0;
    sm_status s;
    if (!in || !in->labels || (!in->rec_path && !in->next)) {
        snprintf(err, errcap, "nothing to score: no recording or generator, or no labels");
        return SM_ERR_INVALID;
    }
    if (in->rec_path) {
        sm_replay_stats st;
        sm_replay_opts o = {.fn = from_replay, .ud = &k};
        s = sm_replay_offline(cfg, log, in->rec_path, &o, &st);
        if (s != SM_OK)
            snprintf(err, errcap, "%s: %s (%s)", in->rec_path, sm_status_str(s),
                     st.error);
        else if (st.records == 0) {
            snprintf(err, errcap, "%s: the recording holds no records", in->rec_path);
            s = SM_ERR_INVALID;
        }
        first = st.first_recv_ms;
        last = st.last_recv_ms;
    } else {
        s = run_generator(cfg, log, in, &k, &first, &last, err, errcap);
    }
    if (s == SM_OK && k.status != SM_OK) {
        s = k.status;
        snprintf(err, errcap, "%s: a conclusion could not be %s", in->name,
                 s == SM_ERR_NOMEM ? "kept (out of memory)" : "decoded");
    }
    if (s == SM_OK) {
        s = sm_score_compute(k.v, k.n, in->labels, first, last, out);
        if (s != SM_OK)
            snprintf(err, errcap, "scoring: %s", sm_status_str(s));
    }
    free(k.v);
    return s;
}

/* ---- floors ----------------------------------------------------------- */

typedef struct floor_def {
    const char *key;
    const char *alias;
    size_t off;                 /* into sm_score_floors */
    bool min;                   /* a minimum (else a maximum) */
} floor_def;

static const floor_def floor_defs[] = {
    {"recall", NULL, offsetof(sm_score_floors, recall), true},
    {"precision", NULL, offsetof(sm_score_floors, precision), true},
    {"severity", NULL, offsetof(sm_score_floors, severity), true},
    {"flaps", NULL, offsetof(sm_score_floors, flaps), false},
    {"forbidden", NULL, offsetof(sm_score_floors, forbidden), false},
    {"false_alarms", NULL, offsetof(sm_score_floors, false_alarms), false},
    {"unresolved", NULL, offsetof(sm_score_floors, unresolved), false},
    {"delay_s", "delay", offsetof(sm_score_floors, delay_s), false},
    {"resolve_s", "resolve", offsetof(sm_score_floors, resolve_s), false},
};
#define N_FLOORS (sizeof floor_defs / sizeof floor_defs[0])

void sm_score_floors_init(sm_score_floors *f)
{
    for (size_t i = 0; i < N_FLOORS; i++)
        *(double *)((char *)f + floor_defs[i].off) = NAN;
}

static const floor_def *floor_find(const char *key, size_t len)
{
    for (size_t i = 0; i < N_FLOORS; i++) {
        const floor_def *d = &floor_defs[i];
        if ((strlen(d->key) == len && !strncmp(d->key, key, len)) ||
            (d->alias && strlen(d->alias) == len && !strncmp(d->alias, key, len)))
            return d;
    }
    return NULL;
}

static const char floor_keys[] =
    "recall, precision, severity, flaps, forbidden, false_alarms, "
    "unresolved, delay_s, resolve_s";

sm_status sm_score_floors_parse(sm_score_floors *f, const char *spec,
                                char *err, size_t errcap)
{
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq) {
            snprintf(err, errcap, "--floor wants NAME=VALUE[,...], not '%.*s'",
                     (int)len, p);
            return SM_ERR_INVALID;
        }
        const floor_def *d = floor_find(p, (size_t)(eq - p));
        if (!d) {
            snprintf(err, errcap, "--floor: unknown figure '%.*s' (%s)",
                     (int)(eq - p), p, floor_keys);
            return SM_ERR_INVALID;
        }
        char num[64];
        size_t nl = len - (size_t)(eq + 1 - p);
        char *stop;
        if (nl == 0 || nl >= sizeof num) {
            snprintf(err, errcap, "--floor %s: missing or overlong value", d->key);
            return SM_ERR_INVALID;
        }
        memcpy(num, eq + 1, nl);
        num[nl] = 0;
        double v = strtod(num, &stop);
        if (*stop || !isfinite(v) || v < 0) {
            snprintf(err, errcap, "--floor %s: '%s' is not a number >= 0", d->key, num);
            return SM_ERR_INVALID;
        }
        *(double *)((char *)f + d->off) = v;
        p += len;
        if (*p == ',')
            p++;
    }
    return SM_OK;
}

sm_status sm_score_floors_from_json(sm_score_floors *f, const json_t *floor,
                                    const char *origin, char *err,
                                    size_t errcap)
{
    if (!json_is_object(floor)) {
        snprintf(err, errcap, "%s: \"floor\" must be an object", origin);
        return SM_ERR_INVALID;
    }
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)floor, key, v) {
        const floor_def *d = floor_find(key, strlen(key));
        if (!d) {
            snprintf(err, errcap, "%s: floor: unknown figure \"%s\" (%s)", origin,
                     key, floor_keys);
            return SM_ERR_INVALID;
        }
        if (!json_is_number(v) || json_number_value(v) < 0) {
            snprintf(err, errcap, "%s: floor.%s must be a number >= 0", origin, key);
            return SM_ERR_INVALID;
        }
        *(double *)((char *)f + d->off) = json_number_value(v);
    }
    return SM_OK;
}

json_t *sm_score_floors_to_json(const sm_score_floors *f)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < N_FLOORS; i++) {
        double v = *(const double *)((const char *)f + floor_defs[i].off);
        if (!isnan(v) && json_object_set_new(o, floor_defs[i].key, json_real(v))) {
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}

static double figure_of(const floor_def *d, const sm_score_figures *a)
{
    const char *k = d->key;
    if (!strcmp(k, "recall")) return a->recall;
    if (!strcmp(k, "precision")) return a->precision;
    if (!strcmp(k, "severity")) return a->severity;
    if (!strcmp(k, "flaps")) return (double)a->flaps;
    if (!strcmp(k, "forbidden")) return (double)a->forbidden;
    if (!strcmp(k, "false_alarms")) return (double)a->false_alarms;
    if (!strcmp(k, "unresolved")) return (double)a->unresolved;
    if (!strcmp(k, "delay_s")) return a->delay_max_s;
    return a->resolve_max_s;
}

size_t sm_score_floors_check(const sm_score_floors *f,
                             const sm_score_figures *all, FILE *out)
{
    size_t missed = 0;
    for (size_t i = 0; i < N_FLOORS; i++) {
        const floor_def *d = &floor_defs[i];
        double want = *(const double *)((const char *)f + d->off);
        if (isnan(want))
            continue;
        double got = figure_of(d, all);
        bool ok = isnan(got) || (d->min ? got >= want - 1e-9 : got <= want + 1e-9);
        missed += !ok;
        if (out) {
            char g[32] = "-";
            if (!isnan(got))
                snprintf(g, sizeof g, "%.3g", got);
            fprintf(out, "floor %-12s %s %-6g got %-8s %s\n", d->key,
                    d->min ? ">=" : "<=", want, g, ok ? "met" : "MISSED");
        }
    }
    return missed;
}
