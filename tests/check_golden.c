/* Golden replays: small recordings made by swarm-sim (tests/golden/regen.sh
 * regenerates them) replayed offline through the worker pipeline; the
 * conclusions must equal the expected JSON lines byte for byte. A change
 * in behaviour shows up here as a diff a reviewer can read. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "backtest.h"
#include "config.h"
#include "log.h"
#include "recfile.h"
#include "replay.h"
#include "support.h"
#include "runner.h"

#define GOLDEN "tests/golden"

static const char *const scenarios[] = {"baseline", "demo", "two-swarms"};

static void replay_json(const char *rec, const char *json_out,
                        const char *rec_out, sm_replay_stats *st)
{
    sm_config cfg;
    sm_config_init(&cfg);
    sm_log log = {.out = stderr, .level = SM_LOG_ERROR};
    FILE *f = fopen(json_out, "w");
    ck_assert_ptr_nonnull(f);
    sm_replay_opts o = {.out_json = f, .out_rec = rec_out};
    sm_status s = sm_replay_offline(&cfg, &log, rec, &o, st);
    fclose(f);
    ck_assert_msg(s == SM_OK, "replay %s: %s (%s)", rec, sm_status_str(s), st->error);
    sm_config_free(&cfg);
}

START_TEST(golden_replay_matches)
{
    const char *name = scenarios[_i];
    char rec[256], want[256], dir[256], got[320], diff[1024];
    snprintf(rec, sizeof rec, GOLDEN "/%s.rec", name);
    snprintf(want, sizeof want, GOLDEN "/%s.jsonl", name);
    ck_assert_msg(access(rec, R_OK) == 0 && access(want, R_OK) == 0,
                  "missing %s or %s (run make golden)", rec, want);
    sm_test_tmpdir(dir, sizeof dir, "golden");
    snprintf(got, sizeof got, "%s/%s.jsonl", dir, name);
    sm_replay_stats st;
    replay_json(rec, got, NULL, &st);
    ck_assert_uint_gt(st.records, 1000);
    ck_assert_uint_eq(st.deadletters, 0);
    char *a = sm_test_slurp(want), *b = sm_test_slurp(got);
    if (strcmp(a, b) != 0) {
        snprintf(diff, sizeof diff, "diff -u %s %s | head -40 >&2", want, got);
        if (system(diff) < 0)
            perror("diff");
        ck_abort_msg("%s: conclusions differ from %s (diff above)", name, want);
    }
    free(a);
    free(b);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(demo_golden_has_every_type_raised_and_resolved)
{
    char *txt = sm_test_slurp(GOLDEN "/demo.jsonl");
    ck_assert_ptr_nonnull(txt);
    const char *types[] = {"TOKEN_EXHAUSTION", "QUOTA_EXCEEDED", "SLOW_AGENT",
                           "QUEUE_BACKLOG", "CONSENSUS_TIMEOUT"};
    for (int i = 0; i < 5; i++) {
        char raised[128], resolved[128];
        snprintf(raised, sizeof raised,
                 "\"type\":\"BOTTLENECK_TYPE_%s\",\"transition\":\"TRANSITION_RAISED\"", types[i]);
        snprintf(resolved, sizeof resolved,
                 "\"type\":\"BOTTLENECK_TYPE_%s\",\"transition\":\"TRANSITION_RESOLVED\"", types[i]);
        ck_assert_msg(strstr(txt, raised), "demo golden lacks %s raised", types[i]);
        ck_assert_msg(strstr(txt, resolved), "demo golden lacks %s resolved", types[i]);
    }
    free(txt);
    /* no faults: no bottleneck, no failure; a forecast from the first
     * budget period (usage climbing toward the budget before its first
     * renewal was ever seen) is withdrawn at that renewal, and none after */
    char *base = sm_test_slurp(GOLDEN "/baseline.jsonl");
    ck_assert_ptr_nonnull(base);
    ck_assert_msg(!strstr(base, ".bottleneck.") && !strstr(base, ".failure."),
                  "baseline (no faults) concluded something:\n%.500s", base);
    const char *raised = "\"transition\":\"TRANSITION_RAISED\"";
    const char *withdrawn = "\"transition\":\"TRANSITION_WITHDRAWN\"";
    size_t nr = 0, nw = 0;
    for (const char *p = base; (p = strstr(p, raised)) != NULL; p++)
        nr++;
    for (const char *p = base; (p = strstr(p, withdrawn)) != NULL; p++)
        nw++;
    ck_assert_msg(nr <= 1 && nw == nr,
                  "baseline: %zu forecasts raised, %zu withdrawn:\n%.800s", nr,
                  nw, base);
    free(base);
}
END_TEST

/* The input subject a conclusion of this type must rest on. */
static const char *evidence_kind(const char *type)
{
    if (strcmp(type, "FAILURE_TYPE_AGENT_DOWN") == 0 ||
        strcmp(type, "FAILURE_TYPE_AGENT_STUCK") == 0)
        return "heartbeat";
    if (strcmp(type, "FAILURE_TYPE_TASK_TIMEOUT") == 0)
        return "task";
    if (strcmp(type, "FAILURE_TYPE_QUORUM_LOSS") == 0)
        return "consensus";
    if (strcmp(type, "BOTTLENECK_TYPE_SLOW_AGENT") == 0)
        return "task";
    if (strcmp(type, "BOTTLENECK_TYPE_CONSENSUS_TIMEOUT") == 0)
        return "consensus";
    return "resource";
}

/* Every conclusion in the goldens cites the input it rests on: a subject
 * of that swarm and of the right kind, naming the affected agent or group
 * (slow agents, consensus), at an event time no later than the decision
 * and inside its window. (Before the core built its own evidence, a
 * consensus raise cited whatever task was being handled.) */
START_TEST(golden_evidence_names_the_signal)
{
    const char *name = scenarios[_i];
    char path[256];
    snprintf(path, sizeof path, GOLDEN "/%s.jsonl", name);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[8192];
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t err;
        json_t *j = json_loads(line, 0, &err);
        ck_assert_msg(j != NULL, "%s:%zu: %s", path, n + 1, err.text);
        json_t *m = json_object_get(j, "message");
        json_t *d = json_object_get(m, "decision");
        json_t *ev = json_object_get(d, "evidence");
        const char *type = json_string_value(json_object_get(m, "type"));
        if (type == NULL)       /* a Prediction: its failure_type */
            type = json_string_value(json_object_get(m, "failure_type"));
        if (json_object_get(m, "action") != NULL) {
            /* a healing command or verdict cites what its episode's
             * failure (prediction, bottleneck) cited: of its swarm, no
             * later than the decision */
            const char *sw = json_string_value(
                json_object_get(json_object_get(m, "decision"), "swarm"));
            const char *es = json_string_value(json_object_get(
                json_object_get(json_object_get(m, "decision"), "evidence"),
                "subject"));
            char pre[128];
            snprintf(pre, sizeof pre, "swarm.%s.", sw ? sw : "?");
            ck_assert_msg(es && strncmp(es, pre, strlen(pre)) == 0,
                          "%s:%zu: a healing decision cites %s", path, n + 1,
                          es ? es : "nothing");
            json_decref(j);
            n++;
            continue;
        }
        const char *swarm = json_string_value(json_object_get(d, "swarm"));
        const char *subj = json_string_value(json_object_get(ev, "subject"));
        const char *affected =
            json_string_value(json_array_get(json_object_get(m, "affected"), 0));
        if (affected == NULL)   /* a Failure or Prediction names its subject */
            affected = json_string_value(json_object_get(m, "subject"));
        json_int_t at = json_integer_value(json_object_get(d, "decided_at_ms"));
        json_int_t ts = json_integer_value(json_object_get(ev, "ts_ms"));
        json_int_t from = json_integer_value(json_object_get(ev, "window_start_ms"));
        ck_assert_ptr_nonnull(type);
        ck_assert_ptr_nonnull(subj);
        char want[256];
        snprintf(want, sizeof want, "swarm.%s.%s.", swarm, evidence_kind(type));
        ck_assert_msg(strncmp(subj, want, strlen(want)) == 0,
                      "%s:%zu: %s cites %s", path, n + 1, type, subj);
        if (strcmp(evidence_kind(type), "resource") != 0)
            ck_assert_msg(affected && strcmp(subj + strlen(want), affected) == 0,
                          "%s:%zu: %s about %s cites %s", path, n + 1, type,
                          affected ? affected : "-", subj);
        ck_assert_msg(ts <= at && ts > from, "%s:%zu: evidence at %lld outside (%lld, %lld]",
                      path, n + 1, (long long)ts, (long long)from, (long long)at);
        json_decref(j);
        n++;
    }
    fclose(f);
    if (strcmp(name, "baseline") != 0)     /* a healthy swarm: nothing */
        ck_assert_uint_gt(n, 0);
}
END_TEST

START_TEST(two_replays_are_byte_identical)
{
    char dir[256], j1[320], j2[320], r1[320], r2[320];
    sm_test_tmpdir(dir, sizeof dir, "det");
    snprintf(j1, sizeof j1, "%s/1.jsonl", dir);
    snprintf(j2, sizeof j2, "%s/2.jsonl", dir);
    snprintf(r1, sizeof r1, "%s/1.rec", dir);
    snprintf(r2, sizeof r2, "%s/2.rec", dir);
    sm_replay_stats st;
    replay_json(GOLDEN "/demo.rec", j1, r1, &st);
    uint64_t outs = st.outputs;
    replay_json(GOLDEN "/demo.rec", j2, r2, &st);
    ck_assert_uint_gt(outs, 10);
    ck_assert_uint_eq(st.outputs, outs);
    const char *pairs[2][2] = {{j1, j2}, {r1, r2}};
    for (int i = 0; i < 2; i++) {
        FILE *a = fopen(pairs[i][0], "rb"), *b = fopen(pairs[i][1], "rb");
        ck_assert(a && b);
        int ca, cb;
        long n = 0;
        do {
            ca = fgetc(a);
            cb = fgetc(b);
            ck_assert_msg(ca == cb, "%s and %s differ at byte %ld", pairs[i][0],
                          pairs[i][1], n);
            n++;
        } while (ca != EOF);
        fclose(a);
        fclose(b);
        ck_assert_int_gt(n, 100);
    }
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(truncated_recording_replays_up_to_the_break)
{
    char dir[256], cut[320], json[320];
    sm_test_tmpdir(dir, sizeof dir, "cut");
    snprintf(cut, sizeof cut, "%s/cut.rec", dir);
    snprintf(json, sizeof json, "%s/cut.jsonl", dir);
    /* keep the first 60% of the demo recording, cut inside a record */
    FILE *in = fopen(GOLDEN "/demo.rec", "rb");
    ck_assert_ptr_nonnull(in);
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    long keep = size * 6 / 10 + 3;
    char *buf = malloc((size_t)keep);
    ck_assert_int_eq((long)fread(buf, 1, (size_t)keep, in), keep);
    fclose(in);
    FILE *out = fopen(cut, "wb");
    fwrite(buf, 1, (size_t)keep, out);
    fclose(out);
    free(buf);

    sm_config cfg;
    sm_config_init(&cfg);
    sm_log log = {.out = stderr, .level = SM_LOG_ERROR};
    FILE *f = fopen(json, "w");
    sm_replay_opts o = {.out_json = f};
    sm_replay_stats st;
    sm_status s = sm_replay_offline(&cfg, &log, cut, &o, &st);
    fclose(f);
    ck_assert_int_eq(s, SM_ERR_CORRUPT);
    char want[64];
    snprintf(want, sizeof want, "record %llu at byte", (unsigned long long)st.records);
    ck_assert_msg(strstr(st.error, want), "error '%s' should name %s", st.error, want);
    ck_assert_uint_gt(st.records, 1000);
    /* what it concluded before the break is the golden's prefix */
    char *got = sm_test_slurp(json), *all = sm_test_slurp(GOLDEN "/demo.jsonl");
    ck_assert_int_eq(strncmp(got, all, strlen(got)), 0);
    free(got);
    free(all);
    sm_config_free(&cfg);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(backtest_shows_what_a_higher_slow_multiplier_drops)
{
    sm_config a, b;
    sm_config_init(&a);
    sm_config_init(&b);
    b.detect.slow_raise = 5.0;      /* the demo's slow agent runs ~3.5x */
    b.detect.slow_high = 6.0;
    sm_log log = {.out = stderr, .level = SM_LOG_ERROR};
    char dir[256], path[320];
    sm_test_tmpdir(dir, sizeof dir, "bt");
    snprintf(path, sizeof path, "%s/report.txt", dir);
    FILE *f = fopen(path, "w");
    sm_backtest_result r;
    ck_assert_int_eq(sm_backtest_run(&a, &b, &log, GOLDEN "/demo.rec", f, &r), SM_OK);
    fclose(f);
    char *report = sm_test_slurp(path);
    ck_assert_uint_ge(r.only_a, 1);
    ck_assert_uint_eq(r.only_b, 0);
    ck_assert_uint_eq(r.episodes_a, r.episodes_b + r.only_a);
    ck_assert_msg(strstr(report, "- ") && strstr(report, "slow_agent") &&
                  strstr(report, "disappears"), "report:\n%s", report);
    free(report);

    /* the same configuration on both sides differs in nothing */
    ck_assert_int_eq(sm_backtest_run(&a, &a, &log, GOLDEN "/demo.rec", NULL, &r), SM_OK);
    ck_assert_uint_eq(r.only_a + r.only_b + r.changed, 0);
    ck_assert_uint_gt(r.same, 4);
    sm_config_free(&a);
    sm_config_free(&b);
    sm_test_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("golden");
    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, golden_replay_matches, 0,
                        (int)(sizeof scenarios / sizeof scenarios[0]));
    tcase_add_loop_test(tc, golden_evidence_names_the_signal, 0,
                        sizeof scenarios / sizeof scenarios[0]);
    tcase_add_test(tc, demo_golden_has_every_type_raised_and_resolved);
    tcase_add_test(tc, two_replays_are_byte_identical);
    tcase_add_test(tc, truncated_recording_replays_up_to_the_break);
    tcase_add_test(tc, backtest_shows_what_a_higher_slow_multiplier_drops);
    suite_add_tcase(s, tc);
    return sm_run_suite(s);
}
