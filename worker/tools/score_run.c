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

/* ---- decoding conclusions --------------------------------------------- */

/* The kind named by an output subject <prefix>.<swarm>.<kind>.<type>
 * (the prefix, "medic" by default, may hold dots: the kind is the token
 * before the last); false for any other output. */
static bool kind_of(const char *subject, sm_label_kind *kind)
{
    static const char *const tokens[SM_KIND_COUNT] = {
        [SM_KIND_BOTTLENECK] = "bottleneck",
        [SM_KIND_FAILURE] = "failure",
        [SM_KIND_PREDICTION] = "prediction",
    };
    const char *dot[3] = {NULL, NULL, NULL};  /* the last three dots */
    for (const char *p = subject; *p; p++)
        if (*p == '.') {
            dot[0] = dot[1];
            dot[1] = dot[2];
            dot[2] = p;
        }
    if (!dot[0])            /* fewer than four tokens */
        return false;
    const char *tok = dot[1] + 1;
    size_t len = (size_t)(dot[2] - tok);
    for (int k = 0; k < SM_KIND_COUNT; k++) {
        if (strlen(tokens[k]) == len && strncmp(tok, tokens[k], len) == 0) {
            *kind = (sm_label_kind)k;
            return true;
        }
    }
    return false;
}

static void header(sm_conclusion *c, const Swarmmedic__V1__Decision *d,
                   const char *type, const char *subject)
{
    snprintf(c->type, sizeof c->type, "%s", type);
    snprintf(c->swarm, sizeof c->swarm, "%s", d->swarm);
    snprintf(c->subject, sizeof c->subject, "%s", subject ? subject : "");
    c->at_ms = d->decided_at_ms;
}

static sm_status decode_bottleneck(const void *data, size_t len, sm_conclusion *c)
{
    Swarmmedic__V1__Bottleneck *b =
        swarmmedic__v1__bottleneck__unpack(NULL, len, data);
    if (!b || !b->decision) {
        swarmmedic__v1__bottleneck__free_unpacked(b, NULL);
        return SM_ERR_DECODE;
    }
    header(c, b->decision, sm_bn_type_str((sm_bn_type)b->type),
           b->n_affected ? b->affected[0] : "");
    c->transition = (int)b->transition;
    c->severity = (int)b->severity;
    swarmmedic__v1__bottleneck__free_unpacked(b, NULL);
    return SM_OK;
}

static sm_status decode_failure(const void *data, size_t len, sm_conclusion *c)
{
    Swarmmedic__V1__Failure *f = swarmmedic__v1__failure__unpack(NULL, len, data);
    if (!f || !f->decision) {
        swarmmedic__v1__failure__free_unpacked(f, NULL);
        return SM_ERR_DECODE;
    }
    header(c, f->decision, sm_fail_type_str((sm_fail_type)f->type), f->subject);
    c->transition = (int)f->transition;
    c->severity = (int)f->severity;
    swarmmedic__v1__failure__free_unpacked(f, NULL);
    return SM_OK;
}

/* A prediction with confidence 0 is withdrawn (score.h). */
static sm_status decode_prediction(const void *data, size_t len, sm_conclusion *c)
{
    Swarmmedic__V1__Prediction *p =
        swarmmedic__v1__prediction__unpack(NULL, len, data);
    if (!p || !p->decision) {
        swarmmedic__v1__prediction__free_unpacked(p, NULL);
        return SM_ERR_DECODE;
    }
    header(c, p->decision, sm_fail_type_str((sm_fail_type)p->failure_type),
           p->agent);
    c->transition = p->confidence > 0 ? SM_TR_RAISED : SM_TR_RESOLVED;
    c->expected_in_ms = p->expected_in_ms > 0 ? p->expected_in_ms : 0;
    swarmmedic__v1__prediction__free_unpacked(p, NULL);
    return SM_OK;
}

sm_status sm_score_decode(const char *subject, const void *data, size_t len,
                          sm_conclusion *out, bool *is)
{
    sm_label_kind kind;
    *is = false;
    if (!subject || !kind_of(subject, &kind))
        return SM_OK;
    sm_conclusion c = {.kind = kind};
    sm_status s = kind == SM_KIND_BOTTLENECK ? decode_bottleneck(data, len, &c)
                  : kind == SM_KIND_FAILURE  ? decode_failure(data, len, &c)
                                             : decode_prediction(data, len, &c);
    if (s == SM_OK) {
        *out = c;
        *is = true;
    }
    return s;
}

/* ---- collecting conclusions ------------------------------------------- */

typedef struct collector {
    sm_conclusion *v;
    size_t n, cap;
    sm_heal_event *h;           /* healing commands and verdicts */
    size_t nh, caph;
    const sm_score_input *in;   /* its heal hook closes the loop */
    size_t heal_errors;
    sm_status status;           /* first failure (decode, memory) */
} collector;

/* A HealingCommand or HealingVerdict: kept, and a command handed to the
 * loop's coordinator. True when the subject was one. */
static bool collect_heal(collector *k, const char *subject, const void *data,
                         size_t len, const char *const *headers)
{
    sm_heal_event e;
    bool is;
    sm_status s = sm_score_decode_heal(subject, data, len, headers, &e, &is);
    if (s != SM_OK || !is) {
        if (k->status == SM_OK)
            k->status = s;
        return s != SM_OK;
    }
    if (k->nh == k->caph) {
        size_t cap = k->caph ? k->caph * 2 : 32;
        sm_heal_event *nv = realloc(k->h, cap * sizeof *nv);
        if (!nv) {
            k->status = SM_ERR_NOMEM;
            return true;
        }
        k->h = nv;
        k->caph = cap;
    }
    k->h[k->nh++] = e;
    if (e.kind == SM_HEAL_COMMAND && k->in && k->in->heal &&
        k->in->heal(k->in->ud, subject, data, len) != SM_OK)
        k->heal_errors++;
    return true;
}

static void collect(collector *k, const char *subject, const void *data,
                    size_t len, const char *const *headers)
{
    if (collect_heal(k, subject, data, len, headers))
        return;
    sm_conclusion c;
    bool is;
    sm_status s = sm_score_decode(subject, data, len, &c, &is);
    if (s != SM_OK || !is) {
        if (k->status == SM_OK)
            k->status = s;
        return;
    }
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 64;
        sm_conclusion *nv = realloc(k->v, cap * sizeof *nv);
        if (!nv) {
            k->status = SM_ERR_NOMEM;
            return;
        }
        k->v = nv;
        k->cap = cap;
    }
    k->v[k->n++] = c;
}

static void from_replay(void *ud, int64_t recv_ms, const char *subject,
                        const char *const *headers, const void *data,
                        size_t len)
{
    (void)recv_ms;
    collect(ud, subject, data, len, headers);
}

static sm_status from_worker(void *ud, const char *subject, const void *data,
                             size_t len, const char *const *headers)
{
    collect(ud, subject, data, len, headers);
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
    collector k = {.in = in};
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
    if (s == SM_OK) {
        out->heal.on = (in->heal != NULL && !in->rec_path) || k.nh > 0;
        s = sm_score_heal_compute(k.h, k.nh, &out->heal);
        out->heal.heal_errors = k.heal_errors;
        if (s == SM_OK)
            sm_score_heal_detect(out);
        if (s == SM_OK && in->coord && !in->rec_path) {
            in->coord(in->ud, &out->heal.coord);
            out->heal.coord_on = true;
        }
        if (s != SM_OK)
            snprintf(err, errcap, "scoring healing: %s", sm_status_str(s));
    }
    free(k.v);
    free(k.h);
    return s;
}

/* ---- floors ----------------------------------------------------------- */

/* Which overall figure a floor bounds. */
typedef enum figure {
    FIG_RECALL, FIG_PRECISION, FIG_SEVERITY, FIG_FLAPS, FIG_FORBIDDEN,
    FIG_FALSE_ALARMS, FIG_UNRESOLVED, FIG_DELAY_MAX, FIG_RESOLVE_MAX,
    FIG_LEAD_MIN, FIG_ETA_ERR_MED,
} figure;

typedef struct floor_def {
    const char *key;
    const char *alias;
    size_t off;                 /* into sm_score_floors */
    bool min;                   /* a minimum (else a maximum) */
    sm_label_kind kind;         /* whose "all" figures */
    figure fig;
} floor_def;

#define FLOOR(key, alias, min, kind, fig) \
    {#key, alias, offsetof(sm_score_floors, key), min, kind, fig}
#define BN SM_KIND_BOTTLENECK
#define FL SM_KIND_FAILURE
#define PR SM_KIND_PREDICTION
static const floor_def floor_defs[] = {
    FLOOR(recall, NULL, true, BN, FIG_RECALL),
    FLOOR(precision, NULL, true, BN, FIG_PRECISION),
    FLOOR(severity, NULL, true, BN, FIG_SEVERITY),
    FLOOR(flaps, NULL, false, BN, FIG_FLAPS),
    FLOOR(forbidden, NULL, false, BN, FIG_FORBIDDEN),
    FLOOR(false_alarms, NULL, false, BN, FIG_FALSE_ALARMS),
    FLOOR(unresolved, NULL, false, BN, FIG_UNRESOLVED),
    FLOOR(delay_s, "delay", false, BN, FIG_DELAY_MAX),
    FLOOR(resolve_s, "resolve", false, BN, FIG_RESOLVE_MAX),
    FLOOR(failure_recall, NULL, true, FL, FIG_RECALL),
    FLOOR(failure_precision, NULL, true, FL, FIG_PRECISION),
    FLOOR(failure_severity, NULL, true, FL, FIG_SEVERITY),
    FLOOR(failure_flaps, NULL, false, FL, FIG_FLAPS),
    FLOOR(failure_forbidden, NULL, false, FL, FIG_FORBIDDEN),
    FLOOR(failure_false_alarms, NULL, false, FL, FIG_FALSE_ALARMS),
    FLOOR(failure_unresolved, NULL, false, FL, FIG_UNRESOLVED),
    FLOOR(failure_delay_s, "failure_delay", false, FL, FIG_DELAY_MAX),
    FLOOR(failure_resolve_s, "failure_resolve", false, FL, FIG_RESOLVE_MAX),
    FLOOR(prediction_recall, NULL, true, PR, FIG_RECALL),
    FLOOR(prediction_precision, NULL, true, PR, FIG_PRECISION),
    FLOOR(prediction_flaps, NULL, false, PR, FIG_FLAPS),
    FLOOR(prediction_forbidden, NULL, false, PR, FIG_FORBIDDEN),
    FLOOR(prediction_false_alarms, NULL, false, PR, FIG_FALSE_ALARMS),
    FLOOR(prediction_lead_s, "prediction_lead", true, PR, FIG_LEAD_MIN),
    FLOOR(prediction_eta_err_s, "prediction_eta_err", false, PR, FIG_ETA_ERR_MED),
};
#undef BN
#undef FL
#undef PR
#undef FLOOR
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
    "unresolved, delay_s, resolve_s; the same with failure_; "
    "prediction_recall, _precision, _flaps, _forbidden, _false_alarms, "
    "_lead_s, _eta_err_s";

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

static double figure_of(figure fig, const sm_score_figures *a)
{
    switch (fig) {
    case FIG_RECALL:        return a->recall;
    case FIG_PRECISION:     return a->precision;
    case FIG_SEVERITY:      return a->severity;
    case FIG_FLAPS:         return (double)a->flaps;
    case FIG_FORBIDDEN:     return (double)a->forbidden;
    case FIG_FALSE_ALARMS:  return (double)a->false_alarms;
    case FIG_UNRESOLVED:    return (double)a->unresolved;
    case FIG_DELAY_MAX:     return a->delay_max_s;
    case FIG_RESOLVE_MAX:   return a->resolve_max_s;
    case FIG_LEAD_MIN:      return a->lead_min_s;
    case FIG_ETA_ERR_MED:   return a->eta_err_med_s;
    }
    return NAN;
}

size_t sm_score_floors_check(const sm_score_floors *f,
                             const sm_score_report *r, FILE *out)
{
    size_t missed = 0;
    for (size_t i = 0; i < N_FLOORS; i++) {
        const floor_def *d = &floor_defs[i];
        double want = *(const double *)((const char *)f + d->off);
        if (isnan(want))
            continue;
        double got = figure_of(d->fig, &r->kind[d->kind].all);
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
