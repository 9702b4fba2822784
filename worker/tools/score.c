/* score.c - the scoring engine: conclusions and labels in, figures out
 * (score.h states the matching rules). Pure: no I/O, no clock. */
#include "score.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decision.h"

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

static int64_t must_window_end(const sm_label *l, span s)
{
    int64_t by = s.from + l->raise_within_ms;
    return s.to > by ? s.to : by;
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

static void classify(sm_score_episode *e, const sm_labels *ls, int64_t start)
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
            e->raised_at_ms >= s.from && e->raised_at_ms <= s.to) {
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
    o->peak = first->peak;
    o->matched = first->raised_at_ms <= s.from + l->raise_within_ms;
    if (!o->matched || s.to >= r->run_end_ms)
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

/* Median and max of v[0..n) in seconds (NaN when n == 0); sorts v. */
static void med_max(int64_t *v, size_t n, double *med, double *max)
{
    if (n == 0) {
        *med = *max = NAN;
        return;
    }
    qsort(v, n, sizeof *v, cmp_i64);
    double m = n % 2 ? (double)v[n / 2]
                     : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2.0;
    *med = m / 1000.0;
    *max = (double)v[n - 1] / 1000.0;
}

static double ratio(size_t a, size_t b)
{
    return b ? (double)a / (double)b : NAN;
}

/* Fills f over the bottleneck labels and episodes of `type` (NULL: all).
 * scratch holds room for max(n_must) values. */
static void fill(sm_score_figures *f, const char *type, const sm_labels *ls,
                 const sm_score_report *r, int64_t *delays, int64_t *resolves)
{
    memset(f, 0, sizeof *f);
    snprintf(f->type, sizeof f->type, "%s", type ? type : "all");
    for (size_t i = 0; i < r->n_episodes; i++) {
        const sm_score_episode *e = &r->episodes[i];
        if (e->kind != SM_KIND_BOTTLENECK || (type && strcmp(e->type, type)))
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
    for (size_t k = 0; k < r->n_must; k++) {
        const sm_score_outcome *o = &r->must[k];
        const sm_label *l = &ls->v[o->label];
        if (type && strcmp(l->type, type))
            continue;
        f->must++;
        if (o->episodes > 1)
            f->flaps += o->episodes - 1;
        if (!o->matched)
            continue;
        f->matched++;
        delays[f->delay_n++] = o->raised_at_ms - anchored(l, r->run_start_ms).from;
        if (o->resolve == SM_RESOLVE_IN_TIME)
            resolves[f->resolve_n++] = o->resolve_ms;
        else if (o->resolve == SM_RESOLVE_UNRESOLVED)
            f->unresolved++;
        if (l->severity) {
            f->severity_n++;
            if (o->peak == l->severity)
                f->severity_ok++;
        }
    }
    med_max(delays, f->delay_n, &f->delay_med_s, &f->delay_max_s);
    med_max(resolves, f->resolve_n, &f->resolve_med_s, &f->resolve_max_s);
    f->recall = ratio(f->matched, f->must);
    f->precision = ratio(f->correct, f->episodes);
    f->severity = ratio(f->severity_ok, f->severity_n);
}

/* Bottleneck types present in labels or episodes: known ones in
 * sm_bn_type order, then any other token in order of appearance. */
static sm_status collect_types(const sm_labels *ls, sm_score_report *r,
                               const char ***out, size_t *n)
{
    size_t cap = SM_BN_COUNT + ls->n + r->n_episodes;
    const char **t = calloc(cap ? cap : 1, sizeof *t);
    if (!t)
        return SM_ERR_NOMEM;
    size_t k = 0;
    for (int b = 1; b <= SM_BN_COUNT; b++)
        t[k++] = sm_bn_type_str((sm_bn_type)b);
    for (size_t i = 0; i < ls->n; i++)
        if (ls->v[i].kind == SM_KIND_BOTTLENECK)
            t[k++] = ls->v[i].type;
    for (size_t i = 0; i < r->n_episodes; i++)
        if (r->episodes[i].kind == SM_KIND_BOTTLENECK)
            t[k++] = r->episodes[i].type;
    /* Keep the first occurrence of each that is actually used. */
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        bool used = false, dup = false;
        for (size_t j = 0; j < m && !dup; j++)
            dup = strcmp(t[j], t[i]) == 0;
        for (size_t j = 0; j < ls->n && !used && !dup; j++)
            used = ls->v[j].kind == SM_KIND_BOTTLENECK && !strcmp(ls->v[j].type, t[i]);
        for (size_t j = 0; j < r->n_episodes && !used && !dup; j++)
            used = r->episodes[j].kind == SM_KIND_BOTTLENECK &&
                   !strcmp(r->episodes[j].type, t[i]);
        if (used && !dup)
            t[m++] = t[i];
    }
    *out = t;
    *n = m;
    return SM_OK;
}

sm_status sm_score_compute(const sm_conclusion *c, size_t n,
                           const sm_labels *labels, int64_t run_start_ms,
                           int64_t run_end_ms, sm_score_report *out)
{
    memset(out, 0, sizeof *out);
    out->run_start_ms = run_start_ms;
    out->run_end_ms = run_end_ms;
    eps e = {0};
    sm_status s = SM_OK;
    const char **types = NULL;
    int64_t *delays = NULL, *resolves = NULL;
    for (size_t i = 0; i < n && s == SM_OK; i++)
        if (c[i].kind == SM_KIND_BOTTLENECK)
            s = fold(&e, &c[i]);
    out->episodes = e.v;
    out->n_episodes = e.n;
    if (s != SM_OK)
        goto cleanup;
    for (size_t i = 0; i < e.n; i++)
        e.v[i].must = (long)i;          /* creation order, for by_raise */
    if (e.n)    /* qsort wants a non-null base, even for none */
        qsort(e.v, e.n, sizeof *e.v, by_raise);
    for (size_t i = 0; i < e.n; i++) {
        e.v[i].must = e.v[i].may = e.v[i].never = -1;
        classify(&e.v[i], labels, run_start_ms);
    }

    out->must = calloc(labels->n ? labels->n : 1, sizeof *out->must);
    delays = calloc(labels->n ? labels->n : 1, sizeof *delays);
    resolves = calloc(labels->n ? labels->n : 1, sizeof *resolves);
    if (!out->must || !delays || !resolves) {
        s = SM_ERR_NOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < labels->n; i++) {
        const sm_label *l = &labels->v[i];
        if (l->kind != SM_KIND_BOTTLENECK) {
            out->not_built[l->kind]++;
            continue;
        }
        if (l->cls != SM_LABEL_MUST)
            continue;
        sm_score_outcome *o = &out->must[out->n_must++];
        o->label = i;
        judge_must(o, l, out);
    }

    size_t nt = 0;
    if ((s = collect_types(labels, out, &types, &nt)) != SM_OK)
        goto cleanup;
    out->by_type = calloc(nt ? nt : 1, sizeof *out->by_type);
    if (!out->by_type) {
        s = SM_ERR_NOMEM;
        goto cleanup;
    }
    out->n_types = nt;
    for (size_t i = 0; i < nt; i++)
        fill(&out->by_type[i], types[i], labels, out, delays, resolves);
    fill(&out->all, NULL, labels, out, delays, resolves);
cleanup:
    free(types);
    free(delays);
    free(resolves);
    return s;
}

void sm_score_report_free(sm_score_report *r)
{
    if (!r)
        return;
    free(r->by_type);
    free(r->episodes);
    free(r->must);
    memset(r, 0, sizeof *r);
}
