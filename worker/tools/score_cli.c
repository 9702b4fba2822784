/* score_cli.c - `swarm-medic score`: the table, the `name value unit`
 * lines and the exit code (score.h). */
#include "score.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decision.h"

/* ---- the table -------------------------------------------------------- */

static const char *frac(char *buf, size_t cap, size_t a, size_t b)
{
    if (b == 0)
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%zu/%zu %.2f", a, b, (double)a / (double)b);
    return buf;
}

static const char *pair(char *buf, size_t cap, double med, double max)
{
    if (isnan(med))
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%.1f/%.1f", med, max);
    return buf;
}

static void table_row(FILE *out, const sm_score_figures *f)
{
    char r[32], p[32], d[32], v[32], s[32];
    fprintf(out, "%-18s %-11s %-11s %5zu %5zu  %-11s %-11s %5zu  %-11s %5zu\n",
            f->type, frac(r, sizeof r, f->matched, f->must),
            frac(p, sizeof p, f->correct, f->episodes), f->false_alarms,
            f->flaps, pair(d, sizeof d, f->delay_med_s, f->delay_max_s),
            pair(v, sizeof v, f->resolve_med_s, f->resolve_max_s), f->unresolved,
            frac(s, sizeof s, f->severity_ok, f->severity_n), f->forbidden);
}

static void table_head(FILE *out)
{
    fprintf(out, "%-18s %-11s %-11s %5s %5s  %-11s %-11s %5s  %-11s %5s\n",
            "type", "recall", "precision", "false", "flaps", "delay s",
            "resolve s", "unres", "severity", "forbid");
    fprintf(out, "%-18s %-11s %-11s %5s %5s  %-11s %s\n", "", "", "", "alarm",
            "", "med/max", "med/max");
}

/* A prediction row: lead (med/min) and ETA error (med/max) in the place
 * of delay and resolve; no unresolved, no severity. */
static void prediction_row(FILE *out, const sm_score_figures *f)
{
    char r[32], p[32], d[32], v[32];
    const char *lead = "-";
    if (!isnan(f->lead_med_s)) {
        snprintf(d, sizeof d, "%.1f/%.1f", f->lead_med_s, f->lead_min_s);
        lead = d;
    }
    fprintf(out, "%-18s %-11s %-11s %5zu %5zu  %-11s %-11s %5zu\n", f->type,
            frac(r, sizeof r, f->matched, f->must),
            frac(p, sizeof p, f->correct, f->episodes), f->false_alarms,
            f->flaps, lead, pair(v, sizeof v, f->eta_err_med_s, f->eta_err_max_s),
            f->forbidden);
}

static void prediction_head(FILE *out)
{
    fprintf(out, "%-18s %-11s %-11s %5s %5s  %-11s %-11s %5s\n", "type",
            "recall", "precision", "false", "flaps", "lead s", "eta err s",
            "forbid");
    fprintf(out, "%-18s %-11s %-11s %5s %5s  %-11s %s\n", "", "", "", "alarm",
            "", "med/min", "med/max");
}

/* "must[2]": the label's index within its class, as in the file. */
static void label_ref(char *buf, size_t cap, const sm_labels *ls, size_t i)
{
    size_t k = 0;
    for (size_t j = 0; j < i; j++)
        k += ls->v[j].cls == ls->v[i].cls;
    snprintf(buf, cap, "%s[%zu]", sm_label_class_str(ls->v[i].cls), k);
}

static double rel_s(int64_t t, const sm_score_report *r)
{
    return (double)(t - r->run_start_ms) / 1000.0;
}

/* Ends a detail line with the label's note, if it has one. */
static void put_note(FILE *out, const sm_label *l)
{
    if (l->note[0])
        fprintf(out, " - %s", l->note);
    fputc('\n', out);
}

/* "slow_agent" for a bottleneck, "failure agent_down" for another kind. */
static const char *what(char *buf, size_t cap, sm_label_kind kind,
                        const char *type)
{
    if (kind == SM_KIND_BOTTLENECK)
        return type;
    snprintf(buf, cap, "%s %s", sm_label_kind_str(kind), type);
    return buf;
}

static void print_missed(FILE *out, const sm_score_outcome *o,
                         const sm_label *l, const char *ref, const char *w,
                         const sm_score_report *r)
{
    const char *subj = l->subject[0] ? l->subject : "*";
    fprintf(out, "  missed      %-9s %s %s %s", ref, w, l->swarm, subj);
    if (!o->episodes) {
        fprintf(out, " (never raised)");
    } else if (l->kind == SM_KIND_PREDICTION) {
        int64_t to = l->relative ? l->to_ms + r->run_start_ms : l->to_ms;
        fprintf(out, " (first raised at +%.1f s, %.1f s before the failure: "
                     "too late)", rel_s(o->raised_at_ms, r),
                (double)(to - o->raised_at_ms) / 1000.0);
    } else {
        fprintf(out, " (first raised at +%.1f s, too late)",
                rel_s(o->raised_at_ms, r));
    }
    put_note(out, l);
}

static void print_details(const sm_score_report *r, const sm_labels *ls,
                          FILE *out)
{
    char ref[32], w[SM_SCORE_TYPE_MAX + 16];
    for (size_t k = 0; k < r->n_must; k++) {
        const sm_score_outcome *o = &r->must[k];
        const sm_label *l = &ls->v[o->label];
        label_ref(ref, sizeof ref, ls, o->label);
        const char *subj = l->subject[0] ? l->subject : "*";
        const char *t = what(w, sizeof w, l->kind, l->type);
        if (!o->matched)
            print_missed(out, o, l, ref, t, r);
        else if (o->resolve == SM_RESOLVE_UNRESOLVED)
            fprintf(out, "  unresolved  %-9s %s %s %s\n", ref, t, l->swarm, subj);
        if (o->episodes > 1)
            fprintf(out, "  flapped     %-9s %s %s %s: %zu episodes\n", ref,
                    t, l->swarm, subj, o->episodes);
    }
    for (size_t i = 0; i < r->n_episodes; i++) {
        const sm_score_episode *e = &r->episodes[i];
        if (e->must >= 0 || e->may >= 0)
            continue;
        const char *subj = e->subject[0] ? e->subject : "-";
        const char *t = what(w, sizeof w, e->kind, e->type);
        if (e->never >= 0) {
            label_ref(ref, sizeof ref, ls, (size_t)e->never);
            fprintf(out, "  forbidden   %-9s %s %s %s raised at +%.1f s", ref,
                    t, e->swarm, subj, rel_s(e->raised_at_ms, r));
            put_note(out, &ls->v[e->never]);
        } else {
            fprintf(out, "  false alarm %-9s %s %s %s raised at +%.1f s\n", "",
                    t, e->swarm, subj, rel_s(e->raised_at_ms, r));
        }
    }
}

/* Labels of `kind` per class. */
static void count_labels(const sm_labels *ls, sm_label_kind kind, size_t n[3])
{
    n[0] = n[1] = n[2] = 0;
    for (size_t i = 0; i < ls->n; i++)
        if (ls->v[i].kind == kind)
            n[ls->v[i].cls]++;
}

/* Whether a kind has anything to show (the bottleneck section always). */
static bool shown(const sm_score_report *r, sm_label_kind kind)
{
    return kind == SM_KIND_BOTTLENECK || r->kind[kind].n_types > 0;
}

static void print_section(const sm_score_report *r, const sm_labels *ls,
                          sm_label_kind kind, FILE *out)
{
    const sm_score_section *sec = &r->kind[kind];
    size_t n[3];
    count_labels(ls, kind, n);
    fprintf(out, "%ss: %zu must, %zu may, %zu never labels; %zu episodes\n",
            sm_label_kind_str(kind), n[0], n[1], n[2], sec->all.episodes);
    bool pred = kind == SM_KIND_PREDICTION;
    void (*row)(FILE *, const sm_score_figures *) =
        pred ? prediction_row : table_row;
    if (pred)
        prediction_head(out);
    else
        table_head(out);
    for (size_t i = 0; i < sec->n_types; i++)
        row(out, &sec->by_type[i]);
    row(out, &sec->all);
}

void sm_score_print_table(const sm_score_report *r, const sm_labels *labels,
                          const char *name, FILE *out)
{
    size_t n[3];
    count_labels(labels, SM_KIND_BOTTLENECK, n);
    fprintf(out, "score %s: %zu must, %zu may, %zu never labels; %zu episodes "
                 "over %.0f s\n",
            name, n[0], n[1], n[2], r->bottleneck.all.episodes,
            (double)(r->run_end_ms - r->run_start_ms) / 1000.0);
    table_head(out);
    for (size_t i = 0; i < r->bottleneck.n_types; i++)
        table_row(out, &r->bottleneck.by_type[i]);
    table_row(out, &r->bottleneck.all);
    for (int k = SM_KIND_FAILURE; k < SM_KIND_COUNT; k++)
        if (shown(r, (sm_label_kind)k))
            print_section(r, labels, (sm_label_kind)k, out);
    sm_score_print_healing(r, out);
    sm_score_print_scaling(r, out);
    print_details(r, labels, out);
}

/* ---- name value unit -------------------------------------------------- */

/* Figure lines name "<name>.<type>" (bottleneck) or
 * "<name>.<kind>.<type>": pre is the part before the figure. */
static void line_n(FILE *out, const char *pre, const char *fig, size_t v)
{
    fprintf(out, "score.%s.%s %zu count\n", pre, fig, v);
}

static void line_d(FILE *out, const char *pre, const char *fig, double v,
                   const char *unit)
{
    if (!isnan(v))
        fprintf(out, "score.%s.%s %.4g %s\n", pre, fig, v, unit);
}

static void lines_common(FILE *out, const char *p, const sm_score_figures *f)
{
    line_n(out, p, "must", f->must);
    line_n(out, p, "matched", f->matched);
    line_d(out, p, "recall", f->recall, "ratio");
    line_n(out, p, "episodes", f->episodes);
    line_n(out, p, "false_alarms", f->false_alarms);
    line_d(out, p, "precision", f->precision, "ratio");
    line_n(out, p, "flaps", f->flaps);
}

static void lines_for(FILE *out, const char *p, const sm_score_figures *f)
{
    lines_common(out, p, f);
    line_d(out, p, "delay_med", f->delay_med_s, "s");
    line_d(out, p, "delay_max", f->delay_max_s, "s");
    line_d(out, p, "resolve_med", f->resolve_med_s, "s");
    line_d(out, p, "resolve_max", f->resolve_max_s, "s");
    line_n(out, p, "unresolved", f->unresolved);
    line_d(out, p, "severity", f->severity, "ratio");
    line_n(out, p, "severity_checked", f->severity_n);
    line_n(out, p, "severity_ok", f->severity_ok);
    line_n(out, p, "forbidden", f->forbidden);
}

static void lines_prediction(FILE *out, const char *p, const sm_score_figures *f)
{
    lines_common(out, p, f);
    line_d(out, p, "lead_med", f->lead_med_s, "s");
    line_d(out, p, "lead_min", f->lead_min_s, "s");
    line_d(out, p, "eta_err_med", f->eta_err_med_s, "s");
    line_d(out, p, "eta_err_max", f->eta_err_max_s, "s");
    line_n(out, p, "eta_checked", f->eta_n);
    line_n(out, p, "forbidden", f->forbidden);
}

static void lines_row(FILE *out, const char *name, sm_label_kind kind,
                      const sm_score_figures *f)
{
    char pre[2 * SM_SCORE_ID_MAX + 2 * SM_SCORE_TYPE_MAX];
    if (kind == SM_KIND_BOTTLENECK)
        snprintf(pre, sizeof pre, "%s.%s", name, f->type);
    else
        snprintf(pre, sizeof pre, "%s.%s.%s", name, sm_label_kind_str(kind),
                 f->type);
    if (kind == SM_KIND_PREDICTION)
        lines_prediction(out, pre, f);
    else
        lines_for(out, pre, f);
}

/* A matched must-label's delay, under its type's name and "all". */
static void lines_delay(FILE *out, const char *name, const sm_label *l,
                        const sm_score_outcome *o)
{
    const char *types[] = {l->type, "all"};
    for (int i = 0; i < 2; i++) {
        char pre[2 * SM_SCORE_ID_MAX + 2 * SM_SCORE_TYPE_MAX];
        if (l->kind == SM_KIND_BOTTLENECK)
            snprintf(pre, sizeof pre, "%s.%s", name, types[i]);
        else
            snprintf(pre, sizeof pre, "%s.%s.%s", name,
                     sm_label_kind_str(l->kind), types[i]);
        line_d(out, pre, "delay_each", (double)o->delay_ms / 1000.0, "s");
    }
}

void sm_score_print_lines(const sm_score_report *r, const sm_labels *labels,
                          const char *name, FILE *out)
{
    for (int k = 0; k < SM_KIND_COUNT; k++) {
        const sm_score_section *sec = &r->kind[k];
        if (!shown(r, (sm_label_kind)k))
            continue;
        for (size_t i = 0; i < sec->n_types; i++)
            lines_row(out, name, (sm_label_kind)k, &sec->by_type[i]);
        lines_row(out, name, (sm_label_kind)k, &sec->all);
        for (size_t i = 0; i < r->n_must && k != SM_KIND_PREDICTION; i++) {
            const sm_label *l = &labels->v[r->must[i].label];
            if (r->must[i].matched && l->kind == (sm_label_kind)k)
                lines_delay(out, name, l, &r->must[i]);
        }
    }
    sm_score_print_healing_lines(r, name, out);
    sm_score_print_scaling_lines(r, name, out);
}

/* ---- the command ------------------------------------------------------ */

void sm_score_clean_name(char *buf, size_t cap, const char *name, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && name[i] && k + 1 < cap; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_' || c == '-';
        buf[k++] = ok ? c : '_';
    }
    buf[k] = 0;
    if (k == 0)
        snprintf(buf, cap, "run");
}

/* The file's name without folder and last extension, cleaned. */
static void file_name(char *buf, size_t cap, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    sm_score_clean_name(buf, cap, base, dot && dot != base ? (size_t)(dot - base) : strlen(base));
}

int sm_score_main(const sm_config *cfg, const sm_log *log,
                  const sm_score_cli *cli, FILE *out, FILE *err)
{
    char why[512] = "";
    char name[SM_SCORE_ID_MAX];
    sm_labels labels = {0};
    sm_score_floors floors;
    sm_score_floors_init(&floors);
    sm_score_input in = {0};
    sm_score_report rep = {0};
    int rc = 2;
    sm_status s = SM_OK;

    if (!cli->rec_path || !cli->labels_path) {
        fprintf(err, "swarm-medic score REC --labels FILE [--floor NAME=VALUE,...]\n");
        return 2;
    }
    s = sm_labels_load_file(cli->labels_path, &labels, why, sizeof why);
    if (s == SM_OK)     /* the labels file's "floor", then --floor over it */
        s = sm_score_floors_load_file(&floors, cli->labels_path, why, sizeof why);
    file_name(name, sizeof name, cli->rec_path);
    in.rec_path = cli->rec_path;
    if (cli->name)
        sm_score_clean_name(name, sizeof name, cli->name, strlen(cli->name));
    in.name = name;
    in.labels = &labels;
    for (size_t i = 0; s == SM_OK && i < cli->n_floors; i++)
        s = sm_score_floors_parse(&floors, cli->floors[i], why, sizeof why);
    if (s == SM_OK)
        s = sm_score_run(cfg, log, &in, &rep, why, sizeof why);
    if (s != SM_OK) {
        fprintf(err, "swarm-medic score: %s\n", why);
        goto cleanup;
    }
    sm_score_print_table(&rep, &labels, in.name, out);
    size_t missed = sm_score_floors_check(&floors, &rep, out);
    sm_score_print_lines(&rep, &labels, in.name, out);
    rc = missed ? 1 : 0;
    if (missed)
        fprintf(err, "swarm-medic score: %s: %zu floor%s missed\n", in.name,
                missed, missed == 1 ? "" : "s");
cleanup:
    sm_score_report_free(&rep);
    sm_labels_free(&labels);
    return rc;
}
