/*
 * check_scenarios.c - detection quality on every tests/scenarios/ (every .json):
 * each scenario's stream is generated in process (worker/sim), run through
 * a fresh worker with the default settings and scored against its labels
 * (worker/tools/score.h), as `make eval` does through a recording.
 *
 * Two bars (tests/scenarios/README.md):
 *   - the ratchet (default, `make test`): no figure may get WORSE than
 *     tests/scenarios/baseline.tsv (recall or precision lower; more flaps,
 *     forbidden episodes or false alarms), per scenario, kind and type and
 *     overall per kind. A scenario missing from the baseline fails. A
 *     figure the baseline gives as "-" (undefined: its kind drew no
 *     conclusion in any scenario when the file was written, e.g. failures
 *     before their detectors existed) holds nothing back.
 *   - the target (`check_scenarios --target`, `make eval-target`): the
 *     scenario's "floor" (recall 1, precision 0.97, flaps 0, forbidden 0);
 *     fails while the detectors fall short of it.
 * Either way each scenario prints its figures beside its floors and its
 * baseline. The closed loop has a ratchet of its own: each scenario again
 * with the simulated coordinator carrying out the worker's HealingCommands
 * (scenario.h, sm_scenario_loop_input), held to
 * tests/scenarios/heal-baseline.tsv: healing success (VERIFIED over
 * VERIFIED + FAILED, ACT commands) no lower; storms, duplicate command
 * ids, actions below quorum and unanswered commands no more. `check_scenarios --write-baseline FILE` (`make eval-baseline`)
 * writes the baseline from the detectors as they are.
 */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "runner.h"
#include "scenario.h"
#include "score.h"
#include "swarm_medic.pb-c.h"

#define SCENARIOS "tests/scenarios"
#define BASELINE SCENARIOS "/baseline.tsv"
#define HEAL_BASELINE SCENARIOS "/heal-baseline.tsv"
#define MAX_SCENARIOS 64

/* The suite's inputs, set in main before the runner forks. */
static char *files[MAX_SCENARIOS];
static int n_files;
static int target_mode;

/* ---- one scenario, scored ---------------------------------------------- */

typedef struct scored {
    sm_scenario *sc;
    sm_score_report rep;
} scored;

static sm_status score_one(const char *path, scored *out, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    sm_status s = sm_scenario_load(path, &out->sc, err, cap);
    if (s != SM_OK)
        return s;
    sm_config cfg;
    sm_config_init(&cfg);
    sm_log log = {.out = stderr, .level = SM_LOG_ERROR};
    sm_sim *sim = NULL;
    sm_score_input in;
    s = sm_scenario_score_input(out->sc, &sim, &in);
    if (s == SM_OK)
        s = sm_score_run(&cfg, &log, &in, &out->rep, err, cap);
    else
        snprintf(err, cap, "%s: cannot create the world: %s", path, sm_status_str(s));
    sm_sim_destroy(sim);
    sm_config_free(&cfg);
    return s;
}

/* Worker settings of the loop-on runs (make eval's SM_HEAL_SET). */
static const char *const heal_settings[][2] = {
    {NULL, NULL},
};

/* The scenario with the loop closed. */
static sm_status score_loop(const char *path, scored *out, char *err,
                            size_t cap)
{
    memset(out, 0, sizeof *out);
    sm_status s = sm_scenario_load(path, &out->sc, err, cap);
    if (s != SM_OK)
        return s;
    sm_config cfg;
    sm_config_init(&cfg);
    for (size_t i = 0; s == SM_OK && heal_settings[i][0]; i++)
        s = sm_config_set(&cfg, heal_settings[i][0], heal_settings[i][1],
                          "check_scenarios", err, cap);
    sm_log log = {.out = stderr, .level = SM_LOG_ERROR};
    sm_sim *sim = NULL;
    sm_score_input in;
    if (s == SM_OK)
        s = sm_scenario_loop_input(out->sc, NULL, &sim, &in);
    if (s == SM_OK)
        s = sm_score_run(&cfg, &log, &in, &out->rep, err, cap);
    sm_sim_destroy(sim);
    sm_config_free(&cfg);
    return s;
}

static void scored_free(scored *x)
{
    sm_score_report_free(&x->rep);
    sm_scenario_destroy(x->sc);
}

/* ---- the baseline ------------------------------------------------------ */

/* One row of baseline.tsv: the counts the ratchet holds, NaN where the
 * file says "-" (undefined: no constraint). The row's type is the
 * bottleneck type or "all" as it always was, "<kind>.<type>" or
 * "<kind>.all" for failures and predictions. */
typedef struct base_row {
    char scenario[128];
    char type[SM_SCORE_TYPE_MAX + 16];
    double must, matched, episodes, false_alarms, flaps, forbidden;
} base_row;

static const char header[] =
    "# scenario\ttype\tmust\tmatched\tepisodes\tfalse_alarms\tflaps\tforbidden\n";

/* The row name of a figure row: "slow_agent", "failure.agent_down". */
static void row_type(char *buf, size_t cap, sm_label_kind kind, const char *type)
{
    if (kind == SM_KIND_BOTTLENECK)
        snprintf(buf, cap, "%s", type);
    else
        snprintf(buf, cap, "%s.%s", sm_label_kind_str(kind), type);
}

/* Writes one row; a kind not `measured` (no conclusion of it in any
 * scenario) has its episode figures written undefined. */
static void write_row(FILE *f, const char *scenario, sm_label_kind kind,
                      const sm_score_figures *x, bool measured)
{
    char t[SM_SCORE_TYPE_MAX + 16];
    row_type(t, sizeof t, kind, x->type);
    fprintf(f, "%s\t%s\t%zu\t%zu", scenario, t, x->must, x->matched);
    if (measured)
        fprintf(f, "\t%zu\t%zu\t%zu\t%zu\n", x->episodes, x->false_alarms,
                x->flaps, x->forbidden);
    else
        fputs("\t-\t-\t-\t-\n", f);
}

/* A count, or "-" as NaN. */
static bool parse_count(const char *tok, double *v)
{
    if (strcmp(tok, "-") == 0) {
        *v = NAN;
        return true;
    }
    char *end;
    unsigned long long n = strtoull(tok, &end, 10);
    *v = (double)n;
    return end != tok && *end == 0;
}

static bool parse_row(char *line, base_row *r)
{
    char *tok[8];
    int n = 0;
    for (char *p = strtok(line, "\t\n"); p && n < 8; p = strtok(NULL, "\t\n"))
        tok[n++] = p;
    if (n != 8 || strlen(tok[0]) >= sizeof r->scenario ||
        strlen(tok[1]) >= sizeof r->type)
        return false;
    snprintf(r->scenario, sizeof r->scenario, "%s", tok[0]);
    snprintf(r->type, sizeof r->type, "%s", tok[1]);
    double *v[6] = {&r->must, &r->matched, &r->episodes, &r->false_alarms,
                    &r->flaps, &r->forbidden};
    for (int i = 0; i < 6; i++)
        if (!parse_count(tok[i + 2], v[i]))
            return false;
    return true;
}

/* Finds scenario/type in the baseline file; false if absent. */
static bool base_find(const char *scenario, const char *type, base_row *out)
{
    FILE *f = fopen(BASELINE, "r");
    if (!f)
        return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        base_row r;
        if (line[0] == '#' || !parse_row(line, &r))
            continue;
        if (strcmp(r.scenario, scenario) == 0 && strcmp(r.type, type) == 0) {
            *out = r;
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* A row of zeros (a type the baseline does not list: nothing then), or of
 * NaN (a kind the baseline did not measure: no constraint). */
static base_row blank_row(double v)
{
    base_row b = {.must = v, .matched = v, .episodes = v, .false_alarms = v,
                  .flaps = v, .forbidden = v};
    return b;
}

/* Appends to why (a sentence per figure) how x is worse than b; returns
 * how many figures got worse. A NaN in b constrains nothing: every
 * comparison with it is false. */
static int worse_than(const sm_score_figures *x, const base_row *b, char *why,
                      size_t cap)
{
    int n = 0;
    size_t len = strlen(why);
#define WORSE(...)                                                        \
    do {                                                                  \
        n++;                                                              \
        if (len < cap)                                                    \
            len += (size_t)snprintf(why + len, cap - len, __VA_ARGS__);   \
    } while (0)
    double b_correct = b->episodes - b->false_alarms;
    if (b->must > 0 && x->must > 0 &&
        (double)x->matched / (double)x->must < b->matched / b->must - 1e-9)
        WORSE(" %s recall %zu/%zu < baseline %.0f/%.0f;", x->type, x->matched,
              x->must, b->matched, b->must);
    if (b->episodes > 0 && x->episodes > 0 &&
        (double)(x->episodes - x->false_alarms) / (double)x->episodes <
            b_correct / b->episodes - 1e-9)
        WORSE(" %s precision %zu/%zu < baseline %.0f/%.0f;", x->type,
              x->episodes - x->false_alarms, x->episodes, b_correct, b->episodes);
    if ((double)x->false_alarms > b->false_alarms)
        WORSE(" %s false alarms %zu > baseline %.0f;", x->type, x->false_alarms,
              b->false_alarms);
    if ((double)x->flaps > b->flaps)
        WORSE(" %s flaps %zu > baseline %.0f;", x->type, x->flaps, b->flaps);
    if ((double)x->forbidden > b->forbidden)
        WORSE(" %s forbidden %zu > baseline %.0f;", x->type, x->forbidden,
              b->forbidden);
#undef WORSE
    return n;
}

/* The ratchet over one kind's type rows and its "all". A type absent from
 * the baseline counts as a row of zeros (no must, no episode) when the
 * kind was measured, else as undefined; so does a kind whose "all" row is
 * absent (a baseline older than the kind). */
static int ratchet_kind(const char *name, const sm_score_report *r,
                        sm_label_kind kind, char *why, size_t cap)
{
    const sm_score_section *sec = &r->kind[kind];
    char t[SM_SCORE_TYPE_MAX + 16];
    base_row all, b;
    row_type(t, sizeof t, kind, "all");
    if (!base_find(name, t, &all))
        all = blank_row(NAN);
    base_row absent = blank_row(isnan(all.episodes) ? NAN : 0.0);
    int n = worse_than(&sec->all, &all, why, cap);
    for (size_t i = 0; i < sec->n_types; i++) {
        row_type(t, sizeof t, kind, sec->by_type[i].type);
        if (!base_find(name, t, &b))
            b = absent;
        n += worse_than(&sec->by_type[i], &b, why, cap);
    }
    return n;
}

/* The ratchet over every kind; *have_base tells whether the scenario is in
 * the baseline at all (its bottleneck "all" row). */
static int ratchet(const char *name, const sm_score_report *r, char *why,
                   size_t cap, bool *have_base)
{
    base_row b;
    *have_base = base_find(name, "all", &b);
    if (!*have_base)
        return 0;
    int n = 0;
    for (int k = 0; k < SM_KIND_COUNT; k++)
        n += ratchet_kind(name, r, (sm_label_kind)k, why, cap);
    return n;
}

/* ---- the loop's ratchet ------------------------------------------------- */

static const char heal_header[] =
    "# scenario\tcommands\tact_verified\tact_failed\tstorms\tduplicates\t"
    "below_quorum\tunanswered\n";

typedef struct heal_row {
    char scenario[128];
    double v[7];                /* in heal_header's order */
} heal_row;

static void heal_values(const sm_score_healing *h, double v[7])
{
    v[0] = (double)h->all.commands;
    v[1] = (double)h->all.act_verified;
    v[2] = (double)h->all.act_failed;
    v[3] = (double)h->storms;
    v[4] = (double)h->duplicates;
    v[5] = (double)h->coord.below_quorum;
    v[6] = (double)h->unanswered;
}

static bool heal_find(const char *scenario, heal_row *out)
{
    FILE *f = fopen(HEAL_BASELINE, "r");
    if (!f)
        return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char *tok[8];
        int n = 0;
        if (line[0] == '#')
            continue;
        for (char *p = strtok(line, "\t\n"); p && n < 8; p = strtok(NULL, "\t\n"))
            tok[n++] = p;
        if (n != 8 || strcmp(tok[0], scenario) != 0)
            continue;
        snprintf(out->scenario, sizeof out->scenario, "%s", tok[0]);
        found = true;
        for (int i = 0; i < 7; i++)
            found &= parse_count(tok[i + 1], &out->v[i]);
    }
    fclose(f);
    return found;
}

/* How the loop's figures x are worse than the row b (why gets a sentence
 * each); how many. */
static int heal_worse(const double x[7], const heal_row *b, char *why,
                      size_t cap)
{
    static const char *const names[7] = {
        "commands", "act_verified", "act_failed", "storms", "duplicates",
        "below_quorum", "unanswered",
    };
    int n = 0;
    size_t len = strlen(why);
    double bs = b->v[1] + b->v[2], xs = x[1] + x[2];
    if (bs > 0 && xs > 0 && x[1] / xs < b->v[1] / bs - 1e-9) {
        n++;
        len += (size_t)snprintf(why + len, len < cap ? cap - len : 0,
                                " success %.0f/%.0f < baseline %.0f/%.0f;",
                                x[1], xs, b->v[1], bs);
    }
    for (int i = 3; i < 7; i++) {
        if (x[i] > b->v[i]) {
            n++;
            len += (size_t)snprintf(why + len, len < cap ? cap - len : 0,
                                    " %s %.0f > baseline %.0f;", names[i],
                                    x[i], b->v[i]);
        }
    }
    return n;
}

START_TEST(scenario_heals)
{
    const char *path = files[_i];
    scored x;
    char err[512] = "";
    sm_status s = score_loop(path, &x, err, sizeof err);
    ck_assert_msg(s == SM_OK, "%s: %s", path, err);
    const char *name = sm_scenario_name(x.sc);
    const sm_score_healing *h = &x.rep.heal;
    ck_assert(h->on && h->coord_on);
    printf("loop     %-24s commands %zu verified %zu failed %zu (act "
           "%zu/%zu) storms %zu duplicates %zu below_quorum %llu unanswered "
           "%zu\n", name, h->all.commands, h->all.verified, h->all.failed,
           h->all.act_verified, h->all.act_verified + h->all.act_failed,
           h->storms, h->duplicates, (unsigned long long)h->coord.below_quorum,
           h->unanswered);
    double v[7];
    heal_values(h, v);
    heal_row b;
    ck_assert_msg(heal_find(name, &b), "%s: not in %s (run make "
                  "eval-baseline)", name, HEAL_BASELINE);
    char why[1024] = "";
    ck_assert_msg(heal_worse(v, &b, why, sizeof why) == 0, "%s: worse than "
                  "%s:%s", name, HEAL_BASELINE, why);
    scored_free(&x);
}
END_TEST

/* The loop's ratchet bites. */
START_TEST(heal_ratchet_catches_regressions)
{
    heal_row b = {"s", {4, 3, 1, 0, 0, 0, 0}};
    double x[7] = {4, 3, 1, 0, 0, 0, 0};
    char why[512] = "";
    ck_assert_int_eq(heal_worse(x, &b, why, sizeof why), 0);
    x[1] = 4;
    x[2] = 0;                           /* better */
    ck_assert_int_eq(heal_worse(x, &b, why, sizeof why), 0);
    x[1] = 2;
    x[2] = 2;
    ck_assert_int_eq(heal_worse(x, &b, why, sizeof why), 1);
    ck_assert_ptr_nonnull(strstr(why, "success 2/4 < baseline 3/4"));
    x[1] = 3;
    x[2] = 1;
    for (int i = 3; i < 7; i++) {
        x[i] = 1;
        why[0] = 0;
        ck_assert_int_eq(heal_worse(x, &b, why, sizeof why), 1);
        x[i] = 0;
    }
}
END_TEST

static int write_heal_baseline(const char *out)
{
    FILE *f = fopen(out, "w");
    if (!f) {
        perror(out);
        return 2;
    }
    fputs("# The closed loop's ratchet of tests/check_scenarios.c (make\n"
          "# eval-baseline writes it): each scenario with the simulated\n"
          "# coordinator; healing success (act_verified / (act_verified +\n"
          "# act_failed)) may not fall, storms, duplicates, below_quorum and\n"
          "# unanswered may not rise.\n", f);
    fputs(heal_header, f);
    int rc = 0;
    for (int i = 0; i < n_files && rc == 0; i++) {
        scored x;
        char err[512] = "";
        if (score_loop(files[i], &x, err, sizeof err) != SM_OK) {
            fprintf(stderr, "check_scenarios: %s\n", err);
            rc = 2;
        } else {
            double v[7];
            heal_values(&x.rep.heal, v);
            fprintf(f, "%s", sm_scenario_name(x.sc));
            for (int k = 0; k < 7; k++)
                fprintf(f, "\t%.0f", v[k]);
            fputc('\n', f);
        }
        scored_free(&x);
    }
    if (fclose(f) != 0 && rc == 0) {
        perror(out);
        rc = 2;
    }
    if (rc == 0)
        printf("check_scenarios: wrote %s (%d scenarios)\n", out, n_files);
    return rc;
}

/* ---- the report -------------------------------------------------------- */

/* One kind's overall figures, as "recall 1/1 precision 2/2 ...". */
static void print_figures(const sm_score_figures *a)
{
    printf("recall %zu/%zu precision %zu/%zu flaps %zu forbidden %zu "
           "false_alarms %zu", a->matched, a->must, a->correct, a->episodes,
           a->flaps, a->forbidden, a->false_alarms);
}

static void report(const char *name, const sm_score_report *r,
                   const sm_score_floors *fl, size_t missed)
{
    printf("scenario %-24s ", name);
    print_figures(&r->bottleneck.all);
    printf(" | floor (target):");
    if (!isnan(fl->recall)) printf(" recall>=%g", fl->recall);
    if (!isnan(fl->precision)) printf(" precision>=%g", fl->precision);
    if (!isnan(fl->flaps)) printf(" flaps<=%g", fl->flaps);
    if (!isnan(fl->forbidden)) printf(" forbidden<=%g", fl->forbidden);
    if (!isnan(fl->failure_recall)) printf(" failure_recall>=%g", fl->failure_recall);
    if (!isnan(fl->prediction_recall))
        printf(" prediction_recall>=%g", fl->prediction_recall);
    printf(" %s\n", missed ? "MISSED" : "met");
    for (int k = SM_KIND_FAILURE; k < SM_KIND_COUNT; k++) {
        const sm_score_figures *a = &r->kind[k].all;
        if (a->must == 0 && a->episodes == 0)
            continue;
        printf("%9s%-24s ", "", sm_label_kind_str((sm_label_kind)k));
        print_figures(a);
        printf("\n");
    }
    fflush(stdout);
}

START_TEST(scenario_holds)
{
    const char *path = files[_i];
    scored x;
    char err[512] = "";
    sm_status s = score_one(path, &x, err, sizeof err);
    ck_assert_msg(s == SM_OK, "%s: %s", path, err);
    const char *name = sm_scenario_name(x.sc);
    const sm_score_floors *fl = sm_scenario_floors(x.sc);
    size_t missed = sm_score_floors_check(fl, &x.rep, NULL);
    report(name, &x.rep, fl, missed);
    if (target_mode) {
        ck_assert_msg(missed == 0, "%s: %zu target floor%s missed (make eval "
                      "shows the gap)", name, missed, missed == 1 ? "" : "s");
    } else {
        char why[1024] = "";
        bool have;
        int worse = ratchet(name, &x.rep, why, sizeof why, &have);
        ck_assert_msg(have, "%s: not in %s (run make eval-baseline)", name,
                      BASELINE);
        ck_assert_msg(worse == 0, "%s: worse than %s:%s", name, BASELINE, why);
    }
    scored_free(&x);
}
END_TEST

/* The ratchet bites: a figure worse than its baseline row is caught, one
 * as good or better is not, and an undefined one ("-") holds nothing. */
START_TEST(ratchet_catches_regressions)
{
    base_row b = {"s", "slow_agent", 2, 1, 4, 1, 1, 0};
    sm_score_figures x = {.type = "slow_agent", .must = 2, .matched = 1,
                          .episodes = 4, .false_alarms = 1, .flaps = 1};
    char why[512] = "";
    ck_assert_int_eq(worse_than(&x, &b, why, sizeof why), 0);
    x.matched = 2;                      /* better recall */
    x.false_alarms = 0;                 /* better precision */
    ck_assert_int_eq(worse_than(&x, &b, why, sizeof why), 0);
    x.matched = 0;
    ck_assert_int_eq(worse_than(&x, &b, why, sizeof why), 1);
    ck_assert_ptr_nonnull(strstr(why, "recall 0/2 < baseline 1/2"));
    x.matched = 1;
    x.false_alarms = 2;                 /* precision and false alarms */
    ck_assert_int_eq(worse_than(&x, &b, why, sizeof why), 2);
    x.false_alarms = 1;
    x.flaps = 2;
    ck_assert_int_eq(worse_than(&x, &b, why, sizeof why), 1);
    x.flaps = 1;
    x.forbidden = 1;
    ck_assert_int_eq(worse_than(&x, &b, why, sizeof why), 1);

    /* A row written before the kind drew any conclusion: the detectors
     * may arrive with false alarms, flaps and forbidden episodes. */
    char line[] = "s\tfailure.agent_down\t1\t0\t-\t-\t-\t-\n";
    ck_assert(parse_row(line, &b));
    ck_assert_str_eq(b.type, "failure.agent_down");
    ck_assert(b.must == 1 && isnan(b.episodes) && isnan(b.forbidden));
    sm_score_figures f = {.type = "agent_down", .must = 1, .matched = 0,
                          .episodes = 3, .false_alarms = 2, .flaps = 1,
                          .forbidden = 1};
    why[0] = 0;
    ck_assert_int_eq(worse_than(&f, &b, why, sizeof why), 0);
    base_row nan_row = blank_row(NAN);
    ck_assert_int_eq(worse_than(&f, &nan_row, why, sizeof why), 0);
    /* Measured once, it holds: one more false alarm fails. */
    char measured[] = "s\tfailure.agent_down\t1\t1\t2\t1\t0\t0\n";
    ck_assert(parse_row(measured, &b));
    f.matched = 1;
    f.flaps = 0;
    f.forbidden = 0;
    ck_assert_int_eq(worse_than(&f, &b, why, sizeof why), 2);  /* precision, false alarms */
    char bad[] = "s\tall\t1\tx\t2\t1\t0\t0\n";
    ck_assert(!parse_row(bad, &b));
}
END_TEST

/* ---- derived failure labels -------------------------------------------- */

static sm_scenario *scenario_text(const char *json)
{
    sm_scenario *sc = NULL;
    char err[512] = "";
    sm_status rc = sm_scenario_parse(json, strlen(json), &sc, err, sizeof err);
    ck_assert_msg(rc == SM_OK, "parse: %s", err);
    return sc;
}

static const sm_label *find_label(const sm_scenario *sc, sm_label_class c,
                                  sm_label_kind kind, const char *type,
                                  const char *subject)
{
    const sm_labels *ls = sm_scenario_labels(sc);
    for (size_t i = 0; i < ls->n; i++)
        if (ls->v[i].cls == c && ls->v[i].kind == kind &&
            strcmp(ls->v[i].type, type) == 0 &&
            strcmp(ls->v[i].subject, subject) == 0)
            return &ls->v[i];
    return NULL;
}

/* The first TIMED_OUT task event of an agent in the scenario's stream
 * (read here from the stream itself, not from the probe), or -1. */
static int64_t first_timed_out(const sm_scenario *sc, const char *agent)
{
    sm_sim *sim = NULL;
    ck_assert_int_eq(sm_sim_create_scenario(&sim, sc), SM_OK);
    sm_sim_msg m;
    int64_t at = -1;
    while (at < 0 && sm_sim_next(sim, &m)) {
        if (m.kind != SM_SIM_TASK)
            continue;
        Swarmmedic__V1__TaskEvent *t =
            swarmmedic__v1__task_event__unpack(NULL, m.len, m.payload);
        ck_assert_ptr_nonnull(t);
        if (t->kind == SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_TIMED_OUT &&
            strcmp(t->agent, agent) == 0)
            at = m.ts_ms;
        swarmmedic__v1__task_event__free_unpacked(t, NULL);
    }
    sm_sim_destroy(sim);
    return at;
}

/* Dead, stuck and quorum-less: agent_down from the death, raised within
 * three heartbeats + 5 s; task_timeout from the first TIMED_OUT the
 * stream really holds; quorum_loss within 60 s. */
START_TEST(derived_agent_and_group_failures)
{
    sm_scenario *sc = scenario_text(
        "{\"name\": \"x\", \"seed\": 5, \"duration_s\": 900,"
        " \"swarms\": [{\"id\": \"s0\", \"agents\": 20, \"heartbeat_s\": 4,"
        "              \"utilisation\": 0.95}],"
        " \"faults\": ["
        "  {\"type\": \"crash_restart\", \"swarm\": \"s0\", \"agents\": [\"a7\"],"
        "   \"onset_s\": 200, \"end_s\": 400},"
        "  {\"type\": \"crash_restart\", \"swarm\": \"s0\", \"agents\": [\"a8\"],"
        "   \"onset_s\": 200, \"end_s\": 215},"
        "  {\"type\": \"stuck_agent\", \"swarm\": \"s0\", \"agents\": [\"a3\"],"
        "   \"onset_s\": 100, \"end_s\": 500},"
        "  {\"type\": \"quorum_loss\", \"swarm\": \"s0\", \"groups\": [\"g1\"],"
        "   \"onset_s\": 300, \"end_s\": 600}]}");
    int64_t t0 = sm_scenario_world(sc)->start_ms;
    const sm_label *l = find_label(sc, SM_LABEL_MUST, SM_KIND_FAILURE, "agent_down", "a7");
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->from_ms, t0 + 200000);
    ck_assert_int_eq(l->to_ms, t0 + 400000);
    ck_assert_int_eq(l->raise_within_ms, 17000);
    ck_assert_int_eq(l->resolve_within_ms, 30000);
    ck_assert_ptr_null(find_label(sc, SM_LABEL_MUST, SM_KIND_FAILURE, "agent_down", "a8"));
    l = find_label(sc, SM_LABEL_MAY, SM_KIND_FAILURE, "agent_down", "a8");
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->to_ms, t0 + 215000 + 8000);

    /* The stuck task is reported TIMED_OUT when the fault ends. */
    l = find_label(sc, SM_LABEL_MUST, SM_KIND_FAILURE, "task_timeout", "a3");
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->from_ms, t0 + 500000);
    ck_assert_int_eq(l->to_ms, t0 + 500000);
    ck_assert_int_eq(l->raise_within_ms, 30000);
    l = find_label(sc, SM_LABEL_MAY, SM_KIND_FAILURE, "task_timeout", "a3");
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->from_ms, t0 + 100000);
    ck_assert_int_eq(l->to_ms, t0 + 620000);

    /* A dead agent's task in flight: must from its TIMED_OUT, if it had
     * one (a busy swarm: a7 did). */
    int64_t tt = first_timed_out(sc, "a7");
    ck_assert_int_gt(tt, t0 + 200000);
    l = find_label(sc, SM_LABEL_MUST, SM_KIND_FAILURE, "task_timeout", "a7");
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->from_ms, tt);
    ck_assert_int_eq(l->to_ms, tt > t0 + 400000 ? tt : t0 + 400000);
    tt = first_timed_out(sc, "a8");
    l = find_label(sc, SM_LABEL_MUST, SM_KIND_FAILURE, "task_timeout", "a8");
    ck_assert(tt < 0 ? l == NULL : l != NULL && l->from_ms == tt);
    ck_assert_ptr_null(find_label(sc, SM_LABEL_MUST, SM_KIND_FAILURE,
                                  "task_timeout", "a0"));

    l = find_label(sc, SM_LABEL_MUST, SM_KIND_FAILURE, "quorum_loss", "g1");
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->raise_within_ms, 60000);
    ck_assert_ptr_nonnull(find_label(sc, SM_LABEL_MAY, SM_KIND_FAILURE,
                                     "quorum_loss", "g1"));
    sm_scenario_destroy(sc);
}
END_TEST

/* Gauges: a surge the swarm cannot absorb overflows the queue, one it
 * absorbs never does; a burn that spends the budget is a failure until
 * the top-up at its end. */
START_TEST(derived_gauge_failures)
{
    sm_scenario *sc = scenario_text(
        "{\"name\": \"y\", \"seed\": 3, \"duration_s\": 1200,"
        " \"swarms\": [{\"id\": \"s0\", \"agents\": 40}],"
        " \"faults\": ["
        "  {\"type\": \"queue_surge\", \"swarm\": \"s0\", \"onset_s\": 300,"
        "   \"ramp_s\": 30, \"end_s\": 660, \"factor\": 2.5},"
        "  {\"type\": \"token_burn\", \"swarm\": \"s0\", \"onset_s\": 240,"
        "   \"ramp_s\": 60, \"end_s\": 720, \"factor\": 12}]}");
    int64_t t0 = sm_scenario_world(sc)->start_ms;
    const sm_label *l = find_label(sc, SM_LABEL_MUST, SM_KIND_FAILURE,
                                   "queue_overflow", "scheduler");
    ck_assert_ptr_nonnull(l);
    ck_assert_int_gt(l->from_ms, t0 + 300000);
    ck_assert_int_gt(l->to_ms, l->from_ms);
    const sm_label *b = find_label(sc, SM_LABEL_MUST, SM_KIND_BOTTLENECK,
                                   "queue_backlog", "scheduler");
    ck_assert_ptr_nonnull(b);
    ck_assert_int_gt(l->from_ms, b->from_ms);   /* 200 pending after 50 */
    ck_assert_int_le(l->to_ms, b->to_ms);       /* under 150 before under 40 */

    l = find_label(sc, SM_LABEL_MUST, SM_KIND_FAILURE, "token_exhaustion", "scheduler");
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->resolve_within_ms, 60000);
    ck_assert_int_gt(l->from_ms, t0 + 240000);
    ck_assert_int_ge(l->to_ms, t0 + 700000);    /* spent until the top-up */
    ck_assert_int_le(l->to_ms, t0 + 725000);
    sm_scenario_destroy(sc);

    sc = scenario_text(
        "{\"name\": \"z\", \"seed\": 3, \"duration_s\": 900,"
        " \"swarms\": [{\"id\": \"s0\", \"agents\": 40}],"
        " \"faults\": [{\"type\": \"queue_surge\", \"swarm\": \"s0\","
        "   \"onset_s\": 300, \"ramp_s\": 10, \"end_s\": 390, \"factor\": 0.6}]}");
    ck_assert_ptr_nonnull(find_label(sc, SM_LABEL_NEVER, SM_KIND_FAILURE,
                                     "queue_overflow", "scheduler"));
    ck_assert_ptr_null(find_label(sc, SM_LABEL_MUST, SM_KIND_FAILURE,
                                  "queue_overflow", "scheduler"));
    ck_assert_ptr_null(find_label(sc, SM_LABEL_MUST, SM_KIND_FAILURE,
                                  "token_exhaustion", "scheduler"));
    sm_scenario_destroy(sc);
}
END_TEST

/* ---- main -------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_scenarios(void)
{
    DIR *d = opendir(SCENARIOS);
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n_files < MAX_SCENARIOS) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", SCENARIOS, e->d_name);
        files[n_files++] = strdup(path);
    }
    closedir(d);
    qsort(files, (size_t)n_files, sizeof files[0], by_name);
    return n_files;
}

/* Writes a scenario's rows: per kind, its types then "all". */
static void write_scenario(FILE *f, const scored *x, const bool *measured)
{
    const char *name = sm_scenario_name(x->sc);
    for (int k = 0; k < SM_KIND_COUNT; k++) {
        const sm_score_section *sec = &x->rep.kind[k];
        for (size_t t = 0; t < sec->n_types; t++)
            write_row(f, name, (sm_label_kind)k, &sec->by_type[t], measured[k]);
        write_row(f, name, (sm_label_kind)k, &sec->all, measured[k]);
    }
}

/* `--write-baseline FILE`: the figures of every scenario as they are. */
static int write_baseline(const char *out)
{
    scored *all = calloc((size_t)n_files, sizeof *all);
    bool measured[SM_KIND_COUNT] = {false};
    int rc = 0, n = 0;
    for (; all && n < n_files; n++) {
        char err[512] = "";
        if (score_one(files[n], &all[n], err, sizeof err) != SM_OK) {
            fprintf(stderr, "check_scenarios: %s\n", err);
            n++;
            rc = 2;
            break;
        }
        for (int k = 0; k < SM_KIND_COUNT; k++)
            measured[k] |= all[n].rep.kind[k].all.episodes > 0;
    }
    FILE *f = rc || !all ? NULL : fopen(out, "w");
    if (!rc && all && !f) {
        perror(out);
        rc = 2;
    }
    if (f) {
        fputs("# The ratchet of tests/check_scenarios.c (make eval-baseline writes it):\n"
              "# no figure may get worse than this. Counts per scenario and type;\n"
              "# failure.<type> and prediction.<type> rows for those kinds; \"-\":\n"
              "# undefined (the kind drew no conclusion in any scenario), no constraint.\n",
              f);
        fputs(header, f);
        for (int i = 0; i < n; i++)
            write_scenario(f, &all[i], measured);
        if (fclose(f) != 0) {
            perror(out);
            rc = 2;
        } else {
            printf("check_scenarios: wrote %s (%d scenarios)\n", out, n_files);
        }
    }
    for (int i = 0; all && i < n; i++)
        scored_free(&all[i]);
    free(all);
    return all ? rc : 2;
}

int main(int argc, char **argv)
{
    if (list_scenarios() <= 0) {
        fprintf(stderr, "check_scenarios: no scenarios in %s\n", SCENARIOS);
        return 1;
    }
    int rc;
    if (argc == 3 && strcmp(argv[1], "--write-baseline") == 0) {
        rc = write_baseline(argv[2]);
    } else if (argc == 3 && strcmp(argv[1], "--write-heal-baseline") == 0) {
        rc = write_heal_baseline(argv[2]);
    } else {
        target_mode = argc == 2 && strcmp(argv[1], "--target") == 0;
        Suite *s = suite_create("scenarios");
        TCase *tc = tcase_create(target_mode ? "target" : "ratchet");
        tcase_add_loop_test(tc, scenario_holds, 0, n_files);
        tcase_add_test(tc, ratchet_catches_regressions);
        if (!target_mode) {
            tcase_add_loop_test(tc, scenario_heals, 0, n_files);
            tcase_add_test(tc, heal_ratchet_catches_regressions);
        }
        tcase_add_test(tc, derived_agent_and_group_failures);
        tcase_add_test(tc, derived_gauge_failures);
        tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);
        rc = sm_run_suite(s);
    }
    for (int i = 0; i < n_files; i++)
        free(files[i]);
    return rc;
}
