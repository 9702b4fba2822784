/*
 * check_scenarios.c - detection quality on every tests/scenarios/ (every .json):
 * each scenario's stream is generated in process (worker/sim), run through
 * a fresh worker with the default settings and scored against its labels
 * (worker/tools/score.h), as `make eval` does through a recording.
 *
 * Two bars (tests/scenarios/README.md):
 *   - the ratchet (default, `make test`): no figure may get WORSE than
 *     tests/scenarios/baseline.tsv (recall or precision lower; more flaps,
 *     forbidden episodes or false alarms), per scenario and type and
 *     overall. A scenario missing from the baseline fails.
 *   - the target (`check_scenarios --target`, `make eval-target`): the
 *     scenario's "floor" (recall 1, precision 0.97, flaps 0, forbidden 0);
 *     fails while the detectors fall short of it.
 * Either way each scenario prints its figures beside its floors and its
 * baseline. `check_scenarios --write-baseline FILE` (`make eval-baseline`)
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

#define SCENARIOS "tests/scenarios"
#define BASELINE SCENARIOS "/baseline.tsv"
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

static void scored_free(scored *x)
{
    sm_score_report_free(&x->rep);
    sm_scenario_destroy(x->sc);
}

/* ---- the baseline ------------------------------------------------------ */

/* One row of baseline.tsv: the counts the ratchet holds. */
typedef struct base_row {
    char scenario[128];
    char type[SM_SCORE_TYPE_MAX];
    size_t must, matched, episodes, false_alarms, flaps, forbidden;
} base_row;

static const char header[] =
    "# scenario\ttype\tmust\tmatched\tepisodes\tfalse_alarms\tflaps\tforbidden\n";

static void write_row(FILE *f, const char *scenario, const sm_score_figures *x)
{
    fprintf(f, "%s\t%s\t%zu\t%zu\t%zu\t%zu\t%zu\t%zu\n", scenario, x->type,
            x->must, x->matched, x->episodes, x->false_alarms, x->flaps,
            x->forbidden);
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
        if (line[0] == '#' ||
            sscanf(line, "%127s %31s %zu %zu %zu %zu %zu %zu", r.scenario, r.type,
                   &r.must, &r.matched, &r.episodes, &r.false_alarms, &r.flaps,
                   &r.forbidden) != 8)
            continue;
        if (strcmp(r.scenario, scenario) == 0 && strcmp(r.type, type) == 0) {
            *out = r;
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* Appends to why (a sentence per figure) how x is worse than b; returns
 * how many figures got worse. */
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
    if (b->must > 0 && x->must > 0 &&
        (double)x->matched / (double)x->must <
            (double)b->matched / (double)b->must - 1e-9)
        WORSE(" %s recall %zu/%zu < baseline %zu/%zu;", x->type, x->matched,
              x->must, b->matched, b->must);
    if (b->episodes > 0 && x->episodes > 0 &&
        (double)(x->episodes - x->false_alarms) / (double)x->episodes <
            (double)(b->episodes - b->false_alarms) / (double)b->episodes - 1e-9)
        WORSE(" %s precision %zu/%zu < baseline %zu/%zu;", x->type,
              x->episodes - x->false_alarms, x->episodes,
              b->episodes - b->false_alarms, b->episodes);
    if (x->false_alarms > b->false_alarms)
        WORSE(" %s false alarms %zu > baseline %zu;", x->type, x->false_alarms,
              b->false_alarms);
    if (x->flaps > b->flaps)
        WORSE(" %s flaps %zu > baseline %zu;", x->type, x->flaps, b->flaps);
    if (x->forbidden > b->forbidden)
        WORSE(" %s forbidden %zu > baseline %zu;", x->type, x->forbidden,
              b->forbidden);
#undef WORSE
    return n;
}

/* The ratchet over every type row and "all". A type absent from the
 * baseline counts as a row of zeros (no must, no episode). */
static int ratchet(const char *name, const sm_score_report *r, char *why,
                   size_t cap, bool *have_base)
{
    base_row b;
    int n = 0;
    *have_base = base_find(name, "all", &b);
    if (!*have_base)
        return 0;
    n += worse_than(&r->all, &b, why, cap);
    for (size_t i = 0; i < r->n_types; i++) {
        if (!base_find(name, r->by_type[i].type, &b)) {
            memset(&b, 0, sizeof b);
        }
        n += worse_than(&r->by_type[i], &b, why, cap);
    }
    return n;
}

/* ---- the report -------------------------------------------------------- */

static void report(const char *name, const sm_score_report *r,
                   const sm_score_floors *fl, size_t missed)
{
    const sm_score_figures *a = &r->all;
    printf("scenario %-24s recall %zu/%zu precision %zu/%zu flaps %zu "
           "forbidden %zu false_alarms %zu | floor (target):",
           name, a->matched, a->must, a->correct, a->episodes, a->flaps,
           a->forbidden, a->false_alarms);
    if (!isnan(fl->recall)) printf(" recall>=%g", fl->recall);
    if (!isnan(fl->precision)) printf(" precision>=%g", fl->precision);
    if (!isnan(fl->flaps)) printf(" flaps<=%g", fl->flaps);
    if (!isnan(fl->forbidden)) printf(" forbidden<=%g", fl->forbidden);
    printf(" %s\n", missed ? "MISSED" : "met");
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
    size_t missed = sm_score_floors_check(fl, &x.rep.all, NULL);
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
 * as good or better is not. */
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

/* `--write-baseline FILE`: the figures of every scenario as they are. */
static int write_baseline(const char *out)
{
    FILE *f = fopen(out, "w");
    if (!f) {
        perror(out);
        return 2;
    }
    fputs("# The ratchet of tests/check_scenarios.c (make eval-baseline writes it):\n"
          "# no figure may get worse than this. Counts per scenario and type.\n", f);
    fputs(header, f);
    for (int i = 0; i < n_files; i++) {
        scored x;
        char err[512] = "";
        if (score_one(files[i], &x, err, sizeof err) != SM_OK) {
            fprintf(stderr, "check_scenarios: %s\n", err);
            scored_free(&x);
            fclose(f);
            return 2;
        }
        const char *name = sm_scenario_name(x.sc);
        for (size_t t = 0; t < x.rep.n_types; t++)
            write_row(f, name, &x.rep.by_type[t]);
        write_row(f, name, &x.rep.all);
        scored_free(&x);
    }
    if (fclose(f) != 0) {
        perror(out);
        return 2;
    }
    printf("check_scenarios: wrote %s (%d scenarios)\n", out, n_files);
    return 0;
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
    } else {
        target_mode = argc == 2 && strcmp(argv[1], "--target") == 0;
        Suite *s = suite_create("scenarios");
        TCase *tc = tcase_create(target_mode ? "target" : "ratchet");
        tcase_add_loop_test(tc, scenario_holds, 0, n_files);
        tcase_add_test(tc, ratchet_catches_regressions);
        tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);
        rc = sm_run_suite(s);
    }
    for (int i = 0; i < n_files; i++)
        free(files[i]);
    return rc;
}
