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

static void print_details(const sm_score_report *r, const sm_labels *ls,
                          FILE *out)
{
    char ref[32];
    for (size_t k = 0; k < r->n_must; k++) {
        const sm_score_outcome *o = &r->must[k];
        const sm_label *l = &ls->v[o->label];
        label_ref(ref, sizeof ref, ls, o->label);
        const char *subj = l->subject[0] ? l->subject : "*";
        if (!o->matched) {
            fprintf(out, "  missed      %-9s %s %s %s", ref, l->type, l->swarm, subj);
            if (o->episodes)
                fprintf(out, " (first raised at +%.1f s, too late)",
                        rel_s(o->raised_at_ms, r));
            else
                fprintf(out, " (never raised)");
            put_note(out, l);
        } else if (o->resolve == SM_RESOLVE_UNRESOLVED) {
            fprintf(out, "  unresolved  %-9s %s %s %s\n", ref, l->type, l->swarm, subj);
        }
        if (o->episodes > 1)
            fprintf(out, "  flapped     %-9s %s %s %s: %zu episodes\n", ref,
                    l->type, l->swarm, subj, o->episodes);
    }
    for (size_t i = 0; i < r->n_episodes; i++) {
        const sm_score_episode *e = &r->episodes[i];
        if (e->must >= 0 || e->may >= 0)
            continue;
        const char *subj = e->subject[0] ? e->subject : "-";
        if (e->never >= 0) {
            label_ref(ref, sizeof ref, ls, (size_t)e->never);
            fprintf(out, "  forbidden   %-9s %s %s %s raised at +%.1f s", ref,
                    e->type, e->swarm, subj, rel_s(e->raised_at_ms, r));
            put_note(out, &ls->v[e->never]);
        } else {
            fprintf(out, "  false alarm %-9s %s %s %s raised at +%.1f s\n", "",
                    e->type, e->swarm, subj, rel_s(e->raised_at_ms, r));
        }
    }
}

void sm_score_print_table(const sm_score_report *r, const sm_labels *labels,
                          const char *name, FILE *out)
{
    size_t by_class[3] = {0};
    for (size_t i = 0; i < labels->n; i++)
        if (labels->v[i].kind == SM_KIND_BOTTLENECK)
            by_class[labels->v[i].cls]++;
    fprintf(out, "score %s: %zu must, %zu may, %zu never labels; %zu episodes "
                 "over %.0f s\n",
            name, by_class[0], by_class[1], by_class[2], r->n_episodes,
            (double)(r->run_end_ms - r->run_start_ms) / 1000.0);
    fprintf(out, "%-18s %-11s %-11s %5s %5s  %-11s %-11s %5s  %-11s %5s\n",
            "type", "recall", "precision", "false", "flaps", "delay s",
            "resolve s", "unres", "severity", "forbid");
    fprintf(out, "%-18s %-11s %-11s %5s %5s  %-11s %s\n", "", "", "", "alarm",
            "", "med/max", "med/max");
    for (size_t i = 0; i < r->n_types; i++)
        table_row(out, &r->by_type[i]);
    table_row(out, &r->all);
    for (int k = 0; k < SM_KIND_COUNT; k++)
        if (r->not_built[k])
            fprintf(out, "not built: %zu %s label%s (the worker does not conclude "
                         "%ss yet; left out of the figures)\n",
                    r->not_built[k], sm_label_kind_str((sm_label_kind)k),
                    r->not_built[k] == 1 ? "" : "s",
                    sm_label_kind_str((sm_label_kind)k));
    print_details(r, labels, out);
}

/* ---- name value unit -------------------------------------------------- */

static void line_n(FILE *out, const char *name, const char *type,
                   const char *fig, size_t v)
{
    fprintf(out, "score.%s.%s.%s %zu count\n", name, type, fig, v);
}

static void line_d(FILE *out, const char *name, const char *type,
                   const char *fig, double v, const char *unit)
{
    if (!isnan(v))
        fprintf(out, "score.%s.%s.%s %.4g %s\n", name, type, fig, v, unit);
}

static void lines_for(FILE *out, const char *name, const sm_score_figures *f)
{
    const char *t = f->type;
    line_n(out, name, t, "must", f->must);
    line_n(out, name, t, "matched", f->matched);
    line_d(out, name, t, "recall", f->recall, "ratio");
    line_n(out, name, t, "episodes", f->episodes);
    line_n(out, name, t, "false_alarms", f->false_alarms);
    line_d(out, name, t, "precision", f->precision, "ratio");
    line_n(out, name, t, "flaps", f->flaps);
    line_d(out, name, t, "delay_med", f->delay_med_s, "s");
    line_d(out, name, t, "delay_max", f->delay_max_s, "s");
    line_d(out, name, t, "resolve_med", f->resolve_med_s, "s");
    line_d(out, name, t, "resolve_max", f->resolve_max_s, "s");
    line_n(out, name, t, "unresolved", f->unresolved);
    line_d(out, name, t, "severity", f->severity, "ratio");
    line_n(out, name, t, "severity_checked", f->severity_n);
    line_n(out, name, t, "severity_ok", f->severity_ok);
    line_n(out, name, t, "forbidden", f->forbidden);
}

void sm_score_print_lines(const sm_score_report *r, const char *name,
                          FILE *out)
{
    for (size_t i = 0; i < r->n_types; i++)
        lines_for(out, name, &r->by_type[i]);
    lines_for(out, name, &r->all);
    for (int k = 0; k < SM_KIND_COUNT; k++)
        if (r->not_built[k])
            fprintf(out, "score.%s.%s.not_built %zu count\n", name,
                    sm_label_kind_str((sm_label_kind)k), r->not_built[k]);
}

/* ---- the command ------------------------------------------------------ */

/* name in [A-Za-z0-9_-] (others become '_'), so that the figure lines
 * split on '.'; "run" if empty. */
static void clean_name(char *buf, size_t cap, const char *name, size_t n)
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
    clean_name(buf, cap, base, dot && dot != base ? (size_t)(dot - base) : strlen(base));
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
        clean_name(name, sizeof name, cli->name, strlen(cli->name));
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
    size_t missed = sm_score_floors_check(&floors, &rep.all, out);
    sm_score_print_lines(&rep, in.name, out);
    rc = missed ? 1 : 0;
    if (missed)
        fprintf(err, "swarm-medic score: %s: %zu floor%s missed\n", in.name,
                missed, missed == 1 ? "" : "s");
cleanup:
    sm_score_report_free(&rep);
    sm_labels_free(&labels);
    return rc;
}
