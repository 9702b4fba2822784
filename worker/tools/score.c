/* score.c - the scoring engine: conclusions and labels in, figures out
 * (score.h states the matching rules). Pure: no I/O, no clock. */
#include "score.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decision.h"

/* The named sections alias the array (score.h). */
_Static_assert(offsetof(sm_score_report, failure) ==
                   offsetof(sm_score_report, kind) +
                       SM_KIND_FAILURE * sizeof(sm_score_section) &&
               offsetof(sm_score_report, prediction) ==
                   offsetof(sm_score_report, kind) +
                       SM_KIND_PREDICTION * sizeof(sm_score_section),
               "sm_score_report: named sections must alias kind[]");

/* ---- episodes --------------------------------------------------------- */

typedef struct eps {
    sm_score_episode *v;
    size_t n, cap;
} eps;

static bool same_key(const sm_score_episode *e, const sm_conclusion *c)
{
    return e->kind == c->kind && strcmp(e->type, c->type) == 0 &&
           strcmp(e->swarm, c->swarm) == 0 && strcmp(e->subject, c->subject) == 0;
}

static sm_score_episode *find_open(eps *e, const sm_conclusion *c)
{
    for (size_t i = e->n; i-- > 0;)
        if (e->v[i].open && same_key(&e->v[i], c))
            return &e->v[i];
    return NULL;
}

static sm_status fold(eps *e, const sm_conclusion *c)
{
    sm_score_episode *x = find_open(e, c);
    if (c->transition == SM_TR_RAISED && !x) {
        if (e->n == e->cap) {
            size_t cap = e->cap ? e->cap * 2 : 32;
            sm_score_episode *nv = realloc(e->v, cap * sizeof *nv);
            if (!nv)
                return SM_ERR_NOMEM;
            e->v = nv;
            e->cap = cap;
        }
        x = &e->v[e->n++];
        memset(x, 0, sizeof *x);
        x->kind = c->kind;
        memcpy(x->type, c->type, sizeof x->type);
        memcpy(x->swarm, c->swarm, sizeof x->swarm);
        memcpy(x->subject, c->subject, sizeof x->subject);
        x->raised_at_ms = c->at_ms;
        x->open = true;
        x->peak = c->severity;
        x->expected_in_ms = c->expected_in_ms;
        x->must = x->may = x->never = -1;
        return SM_OK;
    }
    if (!x)
        return SM_OK;           /* an update or resolve with nothing open */
    if (c->transition != SM_TR_RESOLVED && c->severity > x->peak)
        x->peak = c->severity;
    if (c->transition == SM_TR_RESOLVED) {
        x->open = false;
        x->resolved_at_ms = c->at_ms;
    }
    return SM_OK;
}

static int by_raise(const void *a, const void *b)
{
    const sm_score_episode *x = a, *y = b;
    if (x->raised_at_ms != y->raised_at_ms)
        return x->raised_at_ms < y->raised_at_ms ? -1 : 1;
    /* Creation order breaks ties: `must` still holds it here. */
    return x->must < y->must ? -1 : x->must > y->must;
}

/* ---- labels against episodes ------------------------------------------ */

typedef struct span {
    int64_t from, to;
} span;

static span anchored(const sm_label *l, int64_t start)
{
    span s = {l->from_ms, l->to_ms};
    if (l->relative) {
        if (s.from != INT64_MIN)
            s.from += start;
        if (s.to != INT64_MAX)
            s.to += start;
    }
    return s;
}

static bool key_matches(const sm_label *l, const sm_score_episode *e)
{
    return l->kind == e->kind && strcmp(l->type, e->type) == 0 &&
           strcmp(l->swarm, e->swarm) == 0 &&
           (!l->subject[0] || strcmp(l->subject, e->subject) == 0);
}

/* The last raise time that belongs to a must-label: a prediction must
 * come before the failure (to); another kind may take raise_within. */
static int64_t must_window_end(const sm_label *l, span s)
{
    if (l->kind == SM_KIND_PREDICTION)
        return s.to;
    int64_t by = s.from + l->raise_within_ms;
    return s.to > by ? s.to : by;
}

/* Whether a label's first episode, raised at t, was in time. */
static bool in_time(const sm_label *l, span s, int64_t t)
{
    if (l->kind == SM_KIND_PREDICTION)
        return t <= s.to - SM_SCORE_LEAD_MS;
    return t <= s.from + l->raise_within_ms;
}

/* An episode raised before a must-label's window, during a may-label of
 * the same key (a fault ramping up to the strength the must-label names),
 * and still open when the window starts: it raised the fault early. */
static bool ramp_detection(const sm_score_episode *e, const sm_label *must,
                           const sm_labels *ls, int64_t start, span ms)
{
    if (!e->open && e->resolved_at_ms < ms.from)
        return false;
    for (size_t i = 0; i < ls->n; i++) {
        const sm_label *l = &ls->v[i];
        span s = anchored(l, start);
        if (l->cls == SM_LABEL_MAY && key_matches(l, e) &&
            strcmp(l->subject, must->subject) == 0 &&
            e->raised_at_ms >= s.from && e->raised_at_ms <= s.to &&
            s.to >= ms.from)
            return true;
    }
    return false;
}

/* Whether an episode ended in time for a may-label's withdraw rule (a
 * run that stopped first cannot tell: in time). */
static bool withdrawn_in_time(const sm_score_episode *e, const sm_label *l,
                              span s, int64_t run_end)
{
    if (l->withdraw_within_ms < 0)
        return true;
    int64_t by = s.to + l->withdraw_within_ms;
    return e->open ? run_end < by : e->resolved_at_ms <= by;
}

static void classify(sm_score_episode *e, const sm_labels *ls, int64_t start,
                     int64_t run_end)
{
    for (size_t i = 0; i < ls->n; i++) {
        const sm_label *l = &ls->v[i];
        span s = anchored(l, start);
        if (l->cls == SM_LABEL_NEVER && key_matches(l, e) &&
            e->raised_at_ms >= s.from && e->raised_at_ms <= s.to) {
            e->never = (long)i;
            return;
        }
    }
    int64_t best_from = INT64_MAX;
    for (size_t i = 0; i < ls->n; i++) {
        const sm_label *l = &ls->v[i];
        span s = anchored(l, start);
        if (l->cls != SM_LABEL_MUST || !key_matches(l, e))
            continue;
        bool in_window = e->raised_at_ms >= s.from - SM_SCORE_EARLY_MS ||
                         ramp_detection(e, l, ls, start, s);
        if (in_window && e->raised_at_ms <= must_window_end(l, s) &&
            s.from < best_from) {
            e->must = (long)i;
            best_from = s.from;
        }
    }
    if (e->must >= 0)
        return;
    for (size_t i = 0; i < ls->n; i++) {
        const sm_label *l = &ls->v[i];
        span s = anchored(l, start);
        if (l->cls == SM_LABEL_MAY && key_matches(l, e) &&
            e->raised_at_ms >= s.from && e->raised_at_ms <= s.to &&
            withdrawn_in_time(e, l, s, run_end)) {
            e->may = (long)i;
            return;
        }
    }
}

static void judge_must(sm_score_outcome *o, const sm_label *l,
                       const sm_score_report *r)
{
    span s = anchored(l, r->run_start_ms);
    const sm_score_episode *first = NULL, *last = NULL;
    for (size_t i = 0; i < r->n_episodes; i++) {
        const sm_score_episode *e = &r->episodes[i];
        if (e->must != (long)o->label)
            continue;
        o->episodes++;
        if (!first)
            first = e;
        last = e;
    }
    if (!first)
        return;
    o->raised_at_ms = first->raised_at_ms;
    o->delay_ms = first->raised_at_ms - s.from;
    o->peak = first->peak;
    o->expected_in_ms = first->expected_in_ms;
    o->matched = in_time(l, s, first->raised_at_ms);
    if (!o->matched || s.to >= r->run_end_ms || l->kind == SM_KIND_PREDICTION)
        return;
    int64_t due = s.to + l->resolve_within_ms;
    if (!last->open && last->resolved_at_ms <= due) {
        o->resolve = SM_RESOLVE_IN_TIME;
        o->resolve_ms = last->resolved_at_ms - s.to;
    } else if (last->open && r->run_end_ms < due) {
        o->resolve = SM_RESOLVE_TOO_EARLY;
    } else {
        o->resolve = SM_RESOLVE_UNRESOLVED;
    }
}

/* ---- figures ---------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void sm_score_stats(int64_t *v, size_t n, double *med, double *min,
                    double *max)
{
    if (n == 0) {
        *med = *max = NAN;
        if (min)
            *min = NAN;
        return;
    }
    qsort(v, n, sizeof *v, cmp_i64);
    double m = n % 2 ? (double)v[n / 2]
                     : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2.0;
    *med = m / 1000.0;
    *max = (double)v[n - 1] / 1000.0;
    if (min)
        *min = (double)v[0] / 1000.0;
}

static double ratio(size_t a, size_t b)
{
    return b ? (double)a / (double)b : NAN;
}

/* Room for one value per label, for the medians. */
typedef struct scratch {
    int64_t *delays, *resolves, *leads, *etas;
} scratch;

static void count_episodes(sm_score_figures *f, sm_label_kind kind,
                           const char *type, const sm_score_report *r)
{
    for (size_t i = 0; i < r->n_episodes; i++) {
        const sm_score_episode *e = &r->episodes[i];
        if (e->kind != kind || (type && strcmp(e->type, type)))
            continue;
        f->episodes++;
        if (e->must >= 0 || e->may >= 0)
            f->correct++;
        if (e->must < 0 && e->may >= 0)
            f->may_episodes++;
        if (e->never >= 0)
            f->forbidden++;
    }
    f->false_alarms = f->episodes - f->correct;
}

/* A matched prediction label's lead and, when its episode gave one, ETA
 * error. */
static void count_lead(sm_score_figures *f, const sm_score_outcome *o,
                       span s, scratch *k)
{
    k->leads[f->lead_n++] = s.to - o->raised_at_ms;
    if (o->expected_in_ms > 0) {
        int64_t err = o->raised_at_ms + o->expected_in_ms - s.to;
        k->etas[f->eta_n++] = err < 0 ? -err : err;
    }
}

/* A matched label's delay, resolve and severity. */
static void count_hit(sm_score_figures *f, const sm_score_outcome *o,
                      const sm_label *l, scratch *k)
{
    k->delays[f->delay_n++] = o->delay_ms;
    if (o->resolve == SM_RESOLVE_IN_TIME)
        k->resolves[f->resolve_n++] = o->resolve_ms;
    else if (o->resolve == SM_RESOLVE_UNRESOLVED)
        f->unresolved++;
    if (l->severity) {
        f->severity_n++;
        if (o->peak == l->severity)
            f->severity_ok++;
    }
}

/* Fills f over the labels and episodes of `kind` and `type` (NULL: all
 * types of the kind). */
static void fill(sm_score_figures *f, sm_label_kind kind, const char *type,
                 const sm_labels *ls, const sm_score_report *r, scratch *k)
{
    memset(f, 0, sizeof *f);
    snprintf(f->type, sizeof f->type, "%s", type ? type : "all");
    count_episodes(f, kind, type, r);
    for (size_t i = 0; i < r->n_must; i++) {
        const sm_score_outcome *o = &r->must[i];
        const sm_label *l = &ls->v[o->label];
        if (l->kind != kind || (type && strcmp(l->type, type)))
            continue;
        f->must++;
        if (o->episodes > 1)
            f->flaps += o->episodes - 1;
        if (!o->matched)
            continue;
        f->matched++;
        if (kind == SM_KIND_PREDICTION)
            count_lead(f, o, anchored(l, r->run_start_ms), k);
        else
            count_hit(f, o, l, k);
    }
    sm_score_stats(k->delays, f->delay_n, &f->delay_med_s, NULL, &f->delay_max_s);
    sm_score_stats(k->resolves, f->resolve_n, &f->resolve_med_s, NULL, &f->resolve_max_s);
    double unused;
    sm_score_stats(k->leads, f->lead_n, &f->lead_med_s, &f->lead_min_s, &unused);
    sm_score_stats(k->etas, f->eta_n, &f->eta_err_med_s, NULL, &f->eta_err_max_s);
    f->recall = ratio(f->matched, f->must);
    f->precision = ratio(f->correct, f->episodes);
    f->severity = ratio(f->severity_ok, f->severity_n);
}

/* The known type tokens of a kind, in enum order: k[0..return). */
static size_t known_types(sm_label_kind kind, const char **k)
{
    size_t n = 0;
    if (kind == SM_KIND_BOTTLENECK) {
        for (int b = 1; b <= SM_BN_COUNT; b++)
            k[n++] = sm_bn_type_str((sm_bn_type)b);
        return n;
    }
    for (int t = 1; t <= SM_FAIL_MAX; t++) {
        const char *s = sm_fail_type_str((sm_fail_type)t);
        if (strcmp(s, "unknown") != 0)
            k[n++] = s;
    }
    return n;
}

static bool type_used(sm_label_kind kind, const char *t, const sm_labels *ls,
                      const sm_score_report *r)
{
    for (size_t j = 0; j < ls->n; j++)
        if (ls->v[j].kind == kind && !strcmp(ls->v[j].type, t))
            return true;
    for (size_t j = 0; j < r->n_episodes; j++)
        if (r->episodes[j].kind == kind && !strcmp(r->episodes[j].type, t))
            return true;
    return false;
}

/* Types of `kind` present in labels or episodes: known ones in enum
 * order, then any other token in order of appearance. */
static sm_status collect_types(sm_label_kind kind, const sm_labels *ls,
                               const sm_score_report *r, const char ***out,
                               size_t *n)
{
    size_t cap = SM_BN_COUNT + SM_FAIL_MAX + ls->n + r->n_episodes;
    const char **t = calloc(cap, sizeof *t);
    if (!t)
        return SM_ERR_NOMEM;
    size_t k = known_types(kind, t);
    for (size_t i = 0; i < ls->n; i++)
        if (ls->v[i].kind == kind)
            t[k++] = ls->v[i].type;
    for (size_t i = 0; i < r->n_episodes; i++)
        if (r->episodes[i].kind == kind)
            t[k++] = r->episodes[i].type;
    /* Keep the first occurrence of each that is actually used. */
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        bool dup = false;
        for (size_t j = 0; j < m && !dup; j++)
            dup = strcmp(t[j], t[i]) == 0;
        if (!dup && type_used(kind, t[i], ls, r))
            t[m++] = t[i];
    }
    *out = t;
    *n = m;
    return SM_OK;
}

/* Fills the section of `kind`: its types, then "all". */
static sm_status fill_section(sm_label_kind kind, const sm_labels *ls,
                              sm_score_report *r, scratch *k)
{
    sm_score_section *sec = &r->kind[kind];
    const char **types = NULL;
    size_t nt = 0;
    sm_status s = collect_types(kind, ls, r, &types, &nt);
    if (s != SM_OK)
        return s;
    sec->by_type = calloc(nt ? nt : 1, sizeof *sec->by_type);
    if (!sec->by_type) {
        free(types);
        return SM_ERR_NOMEM;
    }
    sec->n_types = nt;
    for (size_t i = 0; i < nt; i++)
        fill(&sec->by_type[i], kind, types[i], ls, r, k);
    fill(&sec->all, kind, NULL, ls, r, k);
    free(types);
    return SM_OK;
}

/* Folds the conclusions into episodes, sorted by raise time, each
 * classified against the labels. */
static sm_status build_episodes(const sm_conclusion *c, size_t n,
                                const sm_labels *labels, sm_score_report *r)
{
    eps e = {0};
    sm_status s = SM_OK;
    for (size_t i = 0; i < n && s == SM_OK; i++)
        if ((unsigned)c[i].kind < SM_KIND_COUNT)
            s = fold(&e, &c[i]);
    r->episodes = e.v;
    r->n_episodes = e.n;
    if (s != SM_OK)
        return s;
    for (size_t i = 0; i < e.n; i++)
        e.v[i].must = (long)i;          /* creation order, for by_raise */
    if (e.n)    /* qsort wants a non-null base, even for none */
        qsort(e.v, e.n, sizeof *e.v, by_raise);
    for (size_t i = 0; i < e.n; i++) {
        e.v[i].must = e.v[i].may = e.v[i].never = -1;
        classify(&e.v[i], labels, r->run_start_ms, r->run_end_ms);
    }
    return SM_OK;
}

sm_status sm_score_compute(const sm_conclusion *c, size_t n,
                           const sm_labels *labels, int64_t run_start_ms,
                           int64_t run_end_ms, sm_score_report *out)
{
    memset(out, 0, sizeof *out);
    out->run_start_ms = run_start_ms;
    out->run_end_ms = run_end_ms;
    size_t room = labels->n ? labels->n : 1;
    scratch k = {
        .delays = calloc(room, sizeof *k.delays),
        .resolves = calloc(room, sizeof *k.resolves),
        .leads = calloc(room, sizeof *k.leads),
        .etas = calloc(room, sizeof *k.etas),
    };
    out->must = calloc(room, sizeof *out->must);
    sm_status s = SM_ERR_NOMEM;
    if (!out->must || !k.delays || !k.resolves || !k.leads || !k.etas)
        goto cleanup;
    if ((s = build_episodes(c, n, labels, out)) != SM_OK)
        goto cleanup;
    for (size_t i = 0; i < labels->n; i++) {
        if (labels->v[i].cls != SM_LABEL_MUST)
            continue;
        sm_score_outcome *o = &out->must[out->n_must++];
        o->label = i;
        judge_must(o, &labels->v[i], out);
    }
    for (int kind = 0; kind < SM_KIND_COUNT && s == SM_OK; kind++)
        s = fill_section((sm_label_kind)kind, labels, out, &k);
cleanup:
    free(k.delays);
    free(k.resolves);
    free(k.leads);
    free(k.etas);
    return s;
}

void sm_score_report_free(sm_score_report *r)
{
    if (!r)
        return;
    for (int k = 0; k < SM_KIND_COUNT; k++)
        free(r->kind[k].by_type);
    free(r->episodes);
    free(r->must);
    sm_score_healing_free(&r->heal);
    memset(r, 0, sizeof *r);
}
