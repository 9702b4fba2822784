/* swarm-medic score: the engine on hand-built conclusion lists (each
 * figure moves when the behaviour it measures does), the labels loader's
 * errors, floors, and end-to-end runs on the demo recording with labels
 * derived from the simulator's documented faults. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "decision.h"
#include "log.h"
#include "recfile.h"
#include "score.h"
#include "support.h"
#include "runner.h"
#include "swarm_medic.pb-c.h"

#define T0 1767225600000LL      /* run start */
#define END (T0 + 600000)       /* run end: +600 s */
#define S(x) (T0 + (int64_t)((x) * 1000))

/* ---- building blocks -------------------------------------------------- */

typedef struct list {
    sm_conclusion v[64];
    size_t n;
} list;

static sm_conclusion *add_kind(list *l, sm_label_kind kind, const char *type,
                               const char *subject, int tr, int sev,
                               double at_s)
{
    ck_assert_uint_lt(l->n, sizeof l->v / sizeof l->v[0]);
    sm_conclusion *c = &l->v[l->n++];
    memset(c, 0, sizeof *c);
    c->kind = kind;
    snprintf(c->type, sizeof c->type, "%s", type);
    snprintf(c->swarm, sizeof c->swarm, "s0");
    snprintf(c->subject, sizeof c->subject, "%s", subject);
    c->transition = tr;
    c->severity = sev;
    c->at_ms = S(at_s);
    return c;
}

/* A failure episode: raised at r, resolved at z (< 0: open). */
static void failure(list *l, const char *type, const char *subject, double r,
                    double z)
{
    add_kind(l, SM_KIND_FAILURE, type, subject, SM_TR_RAISED, SM_SEV_HIGH, r);
    if (z >= 0)
        add_kind(l, SM_KIND_FAILURE, type, subject, SM_TR_RESOLVED, SM_SEV_HIGH, z);
}

/* A Prediction message as sm_score_decode gives it: confidence 0 is a
 * withdrawal (RESOLVED), anything else RAISED; eta_s 0: not given. */
static void predict(list *l, const char *type, const char *agent,
                    double confidence, double eta_s, double at_s)
{
    sm_conclusion *c = add_kind(l, SM_KIND_PREDICTION, type, agent,
                                confidence > 0 ? SM_TR_RAISED : SM_TR_RESOLVED,
                                0, at_s);
    c->expected_in_ms = (int64_t)(eta_s * 1000);
}

static void add(list *l, const char *type, const char *subject, int tr,
                int sev, double at_s)
{
    sm_conclusion *c = &l->v[l->n++];
    memset(c, 0, sizeof *c);
    c->kind = SM_KIND_BOTTLENECK;
    snprintf(c->type, sizeof c->type, "%s", type);
    snprintf(c->swarm, sizeof c->swarm, "s0");
    snprintf(c->subject, sizeof c->subject, "%s", subject);
    c->transition = tr;
    c->severity = sev;
    c->at_ms = S(at_s);
}

/* An episode: raised at r (severity sev), resolved at z (< 0: open). */
static void episode(list *l, const char *type, const char *subject, int sev,
                    double r, double z)
{
    add(l, type, subject, SM_TR_RAISED, sev, r);
    if (z >= 0)
        add(l, type, subject, SM_TR_RESOLVED, sev, z);
}

static void label(sm_labels *ls, sm_label_class cls, const char *type,
                  const char *subject, double from_s, double to_s)
{
    sm_label l;
    sm_label_init(&l);
    l.cls = cls;
    snprintf(l.type, sizeof l.type, "%s", type);
    snprintf(l.swarm, sizeof l.swarm, "s0");
    snprintf(l.subject, sizeof l.subject, "%s", subject);
    l.relative = true;
    l.from_ms = (int64_t)(from_s * 1000);
    l.to_ms = (int64_t)(to_s * 1000);
    ck_assert_int_eq(sm_labels_add(ls, &l), SM_OK);
}

/* A label of another kind (label() makes bottleneck ones); returns it
 * for the caller to adjust (valid until the next add). */
static sm_label *label_kind(sm_labels *ls, sm_label_class cls,
                            sm_label_kind kind, const char *type,
                            const char *subject, double from_s, double to_s)
{
    label(ls, cls, type, subject, from_s, to_s);
    ls->v[ls->n - 1].kind = kind;
    return &ls->v[ls->n - 1];
}

static sm_score_report score(const list *l, const sm_labels *ls)
{
    sm_score_report r;
    ck_assert_int_eq(sm_score_compute(l->v, l->n, ls, T0, END, &r), SM_OK);
    return r;
}

static const sm_score_figures *of_kind(const sm_score_report *r,
                                       sm_label_kind kind, const char *type)
{
    const sm_score_section *sec = &r->kind[kind];
    for (size_t i = 0; i < sec->n_types; i++)
        if (strcmp(sec->by_type[i].type, type) == 0)
            return &sec->by_type[i];
    ck_abort_msg("no %s figures for %s", sm_label_kind_str(kind), type);
    return NULL;
}

static const sm_score_figures *of_type(const sm_score_report *r,
                                       const char *type)
{
    return of_kind(r, SM_KIND_BOTTLENECK, type);
}

#define ck_near(a, b) ck_assert_msg(fabs((a) - (b)) < 1e-9, "%s = %g, want %g", #a, (double)(a), (double)(b))

/* ---- the engine ------------------------------------------------------- */

START_TEST(perfect_detector_scores_one)
{
    sm_labels ls = {0};
    list l = {0};
    label(&ls, SM_LABEL_MUST, "token_exhaustion", "", 60, 120);
    label(&ls, SM_LABEL_MUST, "slow_agent", "a1", 200, 260);
    episode(&l, "token_exhaustion", "scheduler", SM_SEV_HIGH, 70, 125);
    episode(&l, "slow_agent", "a1", SM_SEV_MEDIUM, 212, 262);
    sm_score_report r = score(&l, &ls);
    ck_near(r.bottleneck.all.recall, 1.0);
    ck_near(r.bottleneck.all.precision, 1.0);
    ck_assert_uint_eq(r.bottleneck.all.false_alarms, 0);
    ck_assert_uint_eq(r.bottleneck.all.flaps, 0);
    ck_assert_uint_eq(r.bottleneck.all.forbidden, 0);
    ck_assert_uint_eq(r.bottleneck.n_types, 2);
    ck_near(of_type(&r, "token_exhaustion")->delay_max_s, 10.0);
    ck_near(of_type(&r, "slow_agent")->delay_max_s, 12.0);
    ck_near(r.bottleneck.all.delay_med_s, 11.0);       /* even count: mean of 10 and 12 */
    ck_near(r.bottleneck.all.resolve_med_s, 3.5);      /* 5 and 2 */
    ck_near(r.bottleneck.all.resolve_max_s, 5.0);
    ck_assert(isnan(r.bottleneck.all.severity));       /* no label names one */
    sm_score_report_free(&r);
    sm_labels_free(&ls);
}
END_TEST

START_TEST(missed_label_lowers_recall_of_its_type)
{
    sm_labels ls = {0};
    list l = {0};
    label(&ls, SM_LABEL_MUST, "token_exhaustion", "", 60, 120);
    label(&ls, SM_LABEL_MUST, "queue_backlog", "", 300, 360);
    episode(&l, "token_exhaustion", "scheduler", SM_SEV_HIGH, 70, 125);
    sm_score_report r = score(&l, &ls);
    ck_near(r.bottleneck.all.recall, 0.5);
    ck_near(of_type(&r, "queue_backlog")->recall, 0.0);
    ck_near(of_type(&r, "token_exhaustion")->recall, 1.0);
    ck_near(r.bottleneck.all.precision, 1.0);
    ck_assert(!r.must[1].matched);
    sm_score_report_free(&r);
    sm_labels_free(&ls);
}
END_TEST

START_TEST(raise_too_late_or_other_subject_is_a_miss)
{
    sm_labels ls = {0};
    list l = {0};
    label(&ls, SM_LABEL_MUST, "slow_agent", "a1", 60, 400);
    label(&ls, SM_LABEL_MUST, "slow_agent", "a3", 60, 120);
    episode(&l, "slow_agent", "a1", SM_SEV_MEDIUM, 60 + 121, 410);  /* 121 s late */
    episode(&l, "slow_agent", "a2", SM_SEV_MEDIUM, 70, 130);        /* wrong agent */
    sm_score_report r = score(&l, &ls);
    ck_near(r.bottleneck.all.recall, 0.0);
    /* The late one is during the fault: not a false alarm; a2 is one. */
    ck_assert_uint_eq(r.bottleneck.all.episodes, 2);
    ck_assert_uint_eq(r.bottleneck.all.false_alarms, 1);
    sm_score_report_free(&r);

    /* Within the 5 s of slack before from: a hit; 6 s before: not. */
    sm_labels ls2 = {0};
    list l2 = {0};
    label(&ls2, SM_LABEL_MUST, "queue_backlog", "", 100, 160);
    label(&ls2, SM_LABEL_MUST, "quota_exceeded", "", 100, 160);
    episode(&l2, "queue_backlog", "scheduler", SM_SEV_LOW, 95.5, 170);
    episode(&l2, "quota_exceeded", "scheduler", SM_SEV_LOW, 94, 170);
    r = score(&l2, &ls2);
    ck_near(of_type(&r, "queue_backlog")->recall, 1.0);
    ck_near(of_type(&r, "queue_backlog")->delay_max_s, -4.5);
    ck_near(of_type(&r, "quota_exceeded")->recall, 0.0);
    sm_score_report_free(&r);
    sm_labels_free(&ls);
    sm_labels_free(&ls2);
}
END_TEST

START_TEST(false_alarm_lowers_precision)
{
    sm_labels ls = {0};
    list l = {0};
    label(&ls, SM_LABEL_MUST, "token_exhaustion", "", 60, 120);
    episode(&l, "token_exhaustion", "scheduler", SM_SEV_HIGH, 70, 125);
    episode(&l, "token_exhaustion", "scheduler", SM_SEV_HIGH, 400, 430);
    episode(&l, "consensus_timeout", "g0", SM_SEV_MEDIUM, 50, 80);
    sm_score_report r = score(&l, &ls);
    ck_near(r.bottleneck.all.recall, 1.0);
    ck_assert_uint_eq(r.bottleneck.all.episodes, 3);
    ck_assert_uint_eq(r.bottleneck.all.false_alarms, 2);
    ck_near(r.bottleneck.all.precision, 1.0 / 3.0);
    ck_near(of_type(&r, "consensus_timeout")->precision, 0.0);
    ck_assert(isnan(of_type(&r, "consensus_timeout")->recall));
    ck_assert_uint_eq(r.bottleneck.all.flaps, 0);      /* 400 s is after the fault */
    sm_score_report_free(&r);
    sm_labels_free(&ls);
}
END_TEST

START_TEST(flap_is_counted_not_a_false_alarm)
{
    sm_labels ls = {0};
    list l = {0};
    label(&ls, SM_LABEL_MUST, "slow_agent", "a1", 60, 300);
    episode(&l, "slow_agent", "a1", SM_SEV_MEDIUM, 70, 100);
    episode(&l, "slow_agent", "a1", SM_SEV_MEDIUM, 130, 160);
    episode(&l, "slow_agent", "a1", SM_SEV_MEDIUM, 250, 310);
    sm_score_report r = score(&l, &ls);
    ck_assert_uint_eq(r.bottleneck.all.flaps, 2);
    ck_near(r.bottleneck.all.recall, 1.0);
    ck_near(r.bottleneck.all.precision, 1.0);
    ck_near(r.bottleneck.all.delay_max_s, 10.0);       /* from the first episode */
    ck_near(r.bottleneck.all.resolve_max_s, 10.0);     /* from the last one */
    sm_score_report_free(&r);
    sm_labels_free(&ls);
}
END_TEST

START_TEST(forbidden_hit_is_counted_and_a_false_alarm)
{
    sm_labels ls = {0};
    list l = {0};
    label(&ls, SM_LABEL_MUST, "slow_agent", "a1", 60, 120);
    label(&ls, SM_LABEL_NEVER, "slow_agent", "a2", 0, 600);
    episode(&l, "slow_agent", "a1", SM_SEV_MEDIUM, 70, 125);
    episode(&l, "slow_agent", "a2", SM_SEV_MEDIUM, 80, 95);
    sm_score_report r = score(&l, &ls);
    ck_assert_uint_eq(r.bottleneck.all.forbidden, 1);
    ck_assert_uint_eq(r.bottleneck.all.false_alarms, 1);
    ck_near(r.bottleneck.all.precision, 0.5);
    ck_near(r.bottleneck.all.recall, 1.0);
    sm_score_report_free(&r);

    /* A never-label without times covers the whole run. */
    sm_labels ls2 = {0};
    sm_label n;
    sm_label_init(&n);
    n.cls = SM_LABEL_NEVER;
    snprintf(n.type, sizeof n.type, "quota_exceeded");
    snprintf(n.swarm, sizeof n.swarm, "s0");
    n.from_ms = INT64_MIN;
    n.to_ms = INT64_MAX;
    ck_assert_int_eq(sm_labels_add(&ls2, &n), SM_OK);
    list l2 = {0};
    episode(&l2, "quota_exceeded", "scheduler", SM_SEV_CRITICAL, 590, -1);
    r = score(&l2, &ls2);
    ck_assert_uint_eq(r.bottleneck.all.forbidden, 1);
    sm_score_report_free(&r);
    sm_labels_free(&ls);
    sm_labels_free(&ls2);
}
END_TEST

START_TEST(may_episode_counts_neither_way)
{
    sm_labels ls = {0};
    list l = {0};
    label(&ls, SM_LABEL_MUST, "queue_backlog", "", 60, 120);
    label(&ls, SM_LABEL_MAY, "queue_backlog", "", 200, 260);
    episode(&l, "queue_backlog", "scheduler", SM_SEV_HIGH, 65, 130);
    episode(&l, "queue_backlog", "scheduler", SM_SEV_LOW, 210, 240);
    sm_score_report r = score(&l, &ls);
    ck_assert_uint_eq(r.bottleneck.all.must, 1);       /* not a hit to be had */
    ck_near(r.bottleneck.all.recall, 1.0);
    ck_assert_uint_eq(r.bottleneck.all.false_alarms, 0);   /* nor a false alarm */
    ck_assert_uint_eq(r.bottleneck.all.may_episodes, 1);
    ck_near(r.bottleneck.all.precision, 1.0);
    ck_assert_uint_eq(r.bottleneck.all.flaps, 0);
    sm_score_report_free(&r);

    /* The same episode outside the may window is a false alarm. */
    l.v[2].at_ms = S(270);
    l.v[3].at_ms = S(290);
    r = score(&l, &ls);
    ck_assert_uint_eq(r.bottleneck.all.false_alarms, 1);
    ck_assert_uint_eq(r.bottleneck.all.may_episodes, 0);
    sm_score_report_free(&r);
    sm_labels_free(&ls);
}
END_TEST

/* A fault ramping up (may from 100 s) to full strength (must from 160 s):
 * an episode raised during the ramp and still open at 160 s detected it
 * early (negative delay); one that was resolved before 160 s did not, and
 * neither does a ramp-time raise without a may-label behind it. */
START_TEST(raise_during_the_ramp_is_an_early_hit)
{
    sm_labels ls = {0};
    list l = {0};
    label(&ls, SM_LABEL_MUST, "slow_agent", "a47", 160, 400);
    label(&ls, SM_LABEL_MAY, "slow_agent", "a47", 100, 460);
    episode(&l, "slow_agent", "a47", SM_SEV_HIGH, 148, 450);
    sm_score_report r = score(&l, &ls);
    ck_near(r.bottleneck.all.recall, 1.0);
    ck_near(r.bottleneck.all.delay_med_s, -12.0);
    ck_assert_uint_eq(r.bottleneck.all.false_alarms, 0);
    sm_score_report_free(&r);

    list l2 = {0};                       /* resolved before the window */
    episode(&l2, "slow_agent", "a47", SM_SEV_HIGH, 148, 155);
    r = score(&l2, &ls);
    ck_near(r.bottleneck.all.recall, 0.0);
    ck_assert_uint_eq(r.bottleneck.all.may_episodes, 1);
    sm_score_report_free(&r);
    sm_labels_free(&ls);

    sm_labels only_must = {0};           /* no ramp label: too early */
    label(&only_must, SM_LABEL_MUST, "slow_agent", "a47", 160, 400);
    r = score(&l, &only_must);
    ck_near(r.bottleneck.all.recall, 0.0);
    sm_score_report_free(&r);
    sm_labels_free(&only_must);
}
END_TEST

START_TEST(severity_agreement_uses_the_peak)
{
    sm_labels ls = {0};
    list l = {0};
    label(&ls, SM_LABEL_MUST, "token_exhaustion", "", 60, 120);
    label(&ls, SM_LABEL_MUST, "queue_backlog", "", 60, 120);
    label(&ls, SM_LABEL_MUST, "slow_agent", "a1", 60, 120);
    ls.v[0].severity = SM_SEV_CRITICAL;
    ls.v[1].severity = SM_SEV_MEDIUM;
    /* token: raised high, updated critical, back to high: peak critical. */
    add(&l, "token_exhaustion", "scheduler", SM_TR_RAISED, SM_SEV_HIGH, 70);
    add(&l, "token_exhaustion", "scheduler", SM_TR_UPDATED, SM_SEV_CRITICAL, 80);
    add(&l, "token_exhaustion", "scheduler", SM_TR_UPDATED, SM_SEV_HIGH, 90);
    add(&l, "token_exhaustion", "scheduler", SM_TR_RESOLVED, SM_SEV_HIGH, 125);
    /* queue: peaks high, the label says medium. */
    add(&l, "queue_backlog", "scheduler", SM_TR_RAISED, SM_SEV_MEDIUM, 70);
    add(&l, "queue_backlog", "scheduler", SM_TR_UPDATED, SM_SEV_HIGH, 75);
    add(&l, "queue_backlog", "scheduler", SM_TR_RESOLVED, SM_SEV_HIGH, 125);
    episode(&l, "slow_agent", "a1", SM_SEV_LOW, 70, 125);  /* no severity asked */
    sm_score_report r = score(&l, &ls);
    ck_assert_uint_eq(r.bottleneck.all.severity_n, 2);
    ck_assert_uint_eq(r.bottleneck.all.severity_ok, 1);
    ck_near(r.bottleneck.all.severity, 0.5);
    ck_near(of_type(&r, "token_exhaustion")->severity, 1.0);
    ck_near(of_type(&r, "queue_backlog")->severity, 0.0);
    ck_assert(isnan(of_type(&r, "slow_agent")->severity));
    sm_score_report_free(&r);
    sm_labels_free(&ls);
}
END_TEST

START_TEST(resolve_time_after_the_fault_ends)
{
    sm_labels ls = {0};
    list l = {0};
    label(&ls, SM_LABEL_MUST, "token_exhaustion", "", 60, 120);
    label(&ls, SM_LABEL_MUST, "queue_backlog", "", 60, 120);
    label(&ls, SM_LABEL_MUST, "quota_exceeded", "", 60, 120);
    episode(&l, "token_exhaustion", "scheduler", SM_SEV_HIGH, 70, 121);
    episode(&l, "queue_backlog", "scheduler", SM_SEV_HIGH, 70, 150);
    episode(&l, "quota_exceeded", "scheduler", SM_SEV_HIGH, 70, 300);  /* 180 s: in time */
    sm_score_report r = score(&l, &ls);
    ck_assert_uint_eq(r.bottleneck.all.resolve_n, 3);
    ck_near(r.bottleneck.all.resolve_med_s, 30.0);
    ck_near(r.bottleneck.all.resolve_max_s, 180.0);
    ck_assert_uint_eq(r.bottleneck.all.unresolved, 0);
    ck_near(of_type(&r, "token_exhaustion")->resolve_max_s, 1.0);
    sm_score_report_free(&r);
    sm_labels_free(&ls);
}
END_TEST

START_TEST(unresolved_open_or_late)
{
    sm_labels ls = {0};
    list l = {0};
    label(&ls, SM_LABEL_MUST, "token_exhaustion", "", 60, 120);
    label(&ls, SM_LABEL_MUST, "queue_backlog", "", 60, 120);
    label(&ls, SM_LABEL_MUST, "quota_exceeded", "", 500, 550);
    label(&ls, SM_LABEL_MUST, "consensus_timeout", "", 500, 700);
    episode(&l, "token_exhaustion", "scheduler", SM_SEV_HIGH, 70, -1);   /* open at end */
    episode(&l, "queue_backlog", "scheduler", SM_SEV_HIGH, 70, 301);     /* 181 s: late */
    /* Open at the end, but the run (600 s) ended before 550 + 180: too
     * early to tell. */
    episode(&l, "quota_exceeded", "scheduler", SM_SEV_HIGH, 505, -1);
    /* The fault outlives the run: nothing to resolve. */
    episode(&l, "consensus_timeout", "g0", SM_SEV_HIGH, 505, -1);
    sm_score_report r = score(&l, &ls);
    ck_near(r.bottleneck.all.recall, 1.0);
    ck_assert_uint_eq(r.bottleneck.all.unresolved, 2);
    ck_assert_uint_eq(r.bottleneck.all.resolve_n, 0);
    ck_assert(isnan(r.bottleneck.all.resolve_med_s));
    ck_assert_uint_eq(of_type(&r, "quota_exceeded")->unresolved, 0);
    ck_assert_uint_eq(of_type(&r, "consensus_timeout")->unresolved, 0);
    ck_assert_int_eq(r.must[2].resolve, SM_RESOLVE_TOO_EARLY);
    ck_assert_int_eq(r.must[3].resolve, SM_RESOLVE_NA);
    sm_score_report_free(&r);
    sm_labels_free(&ls);
}
END_TEST

/* Failures are scored as bottlenecks are, each kind against its own
 * labels: a failure in time, one late, one forbidden; a failure whose
 * type token is also a bottleneck type matches no bottleneck label. */
START_TEST(failures_scored_like_bottlenecks)
{
    sm_labels ls = {0};
    list l = {0};
    label_kind(&ls, SM_LABEL_MUST, SM_KIND_FAILURE, "quorum_loss", "g1", 100, 400)
        ->raise_within_ms = 60000;
    label_kind(&ls, SM_LABEL_MUST, SM_KIND_FAILURE, "agent_down", "a3", 100, 300)
        ->raise_within_ms = 20000;
    label_kind(&ls, SM_LABEL_NEVER, SM_KIND_FAILURE, "agent_down", "a5", 0, 600);
    label(&ls, SM_LABEL_MUST, "token_exhaustion", "", 60, 120);
    failure(&l, "agent_down", "a3", 112, 310);          /* 12 s: in time */
    failure(&l, "quorum_loss", "g1", 170, 420);         /* 70 s: late */
    failure(&l, "agent_down", "a5", 200, 230);          /* forbidden */
    failure(&l, "token_exhaustion", "scheduler", 70, 125);  /* no such label */
    sm_score_report r = score(&l, &ls);

    const sm_score_figures *f = &r.failure.all;
    ck_assert_uint_eq(f->must, 2);
    ck_assert_uint_eq(f->matched, 1);
    ck_near(f->recall, 0.5);
    ck_assert_uint_eq(f->episodes, 4);
    ck_assert_uint_eq(f->false_alarms, 2);  /* a5, and the token failure */
    ck_assert_uint_eq(f->forbidden, 1);
    ck_near(f->precision, 0.5);             /* the late one is no false alarm */
    ck_near(f->delay_max_s, 12.0);
    ck_near(f->resolve_max_s, 10.0);
    ck_assert_uint_eq(f->unresolved, 0);
    /* Types in FailureType order: agent_down (1) before quorum_loss (8). */
    ck_assert_uint_eq(r.failure.n_types, 3);
    ck_assert_str_eq(r.failure.by_type[0].type, "agent_down");
    ck_assert_str_eq(r.failure.by_type[1].type, "token_exhaustion");
    ck_assert_str_eq(r.failure.by_type[2].type, "quorum_loss");
    ck_near(of_kind(&r, SM_KIND_FAILURE, "agent_down")->recall, 1.0);
    ck_near(of_kind(&r, SM_KIND_FAILURE, "quorum_loss")->recall, 0.0);
    ck_assert_uint_eq(of_kind(&r, SM_KIND_FAILURE, "agent_down")->forbidden, 1);

    /* The bottleneck label saw no bottleneck: missed, and no episode. */
    ck_assert_uint_eq(r.bottleneck.all.must, 1);
    ck_near(r.bottleneck.all.recall, 0.0);
    ck_assert_uint_eq(r.bottleneck.all.episodes, 0);
    ck_assert_uint_eq(r.prediction.n_types, 0);
    ck_assert(isnan(r.prediction.all.recall));
    sm_score_report_free(&r);

    /* The late failure inside raise_within is a hit: the rule is the
     * label's, as for bottlenecks. */
    ls.v[0].raise_within_ms = 120000;
    r = score(&l, &ls);
    ck_near(r.failure.all.recall, 1.0);
    ck_near(r.failure.all.delay_max_s, 70.0);
    sm_score_report_free(&r);
    sm_labels_free(&ls);
}
END_TEST

/* A prediction is a hit only when raised >= 30 s before the failure (the
 * label's to); lead and ETA error are measured on hits. */
START_TEST(prediction_needs_thirty_seconds_of_lead)
{
    sm_labels ls = {0};
    list l = {0};
    label_kind(&ls, SM_LABEL_MUST, SM_KIND_PREDICTION, "token_exhaustion", "", 60, 300);
    label_kind(&ls, SM_LABEL_MUST, SM_KIND_PREDICTION, "agent_down", "a3", 100, 200);
    label_kind(&ls, SM_LABEL_MUST, SM_KIND_PREDICTION, "agent_down", "a4", 100, 200);
    predict(&l, "token_exhaustion", "", 0.8, 200, 120);    /* lead 180 s */
    predict(&l, "agent_down", "a3", 0.9, 0, 190);          /* lead 10 s: a miss */
    predict(&l, "agent_down", "a4", 0.9, 20, 170);         /* lead exactly 30 s */
    predict(&l, "agent_down", "a3", 0.9, 0, 250);          /* after the failure: open still */
    sm_score_report r = score(&l, &ls);
    const sm_score_figures *p = &r.prediction.all;
    ck_assert_uint_eq(p->must, 3);
    ck_assert_uint_eq(p->matched, 2);
    ck_assert_uint_eq(p->episodes, 3);      /* a3's second message folds in */
    ck_assert_uint_eq(p->false_alarms, 0);  /* the 10 s one is about the fault */
    ck_assert(!r.must[1].matched);
    ck_assert_uint_eq(r.must[1].episodes, 1);
    ck_assert(r.must[2].matched);
    ck_assert_uint_eq(p->lead_n, 2);
    ck_near(p->lead_min_s, 30.0);
    ck_near(p->lead_med_s, 105.0);          /* 180 and 30 */
    ck_assert_uint_eq(p->eta_n, 2);
    ck_near(p->eta_err_med_s, 15.0);        /* |120+200-300| = 20, |170+20-200| = 10 */
    ck_near(p->eta_err_max_s, 20.0);
    ck_assert(isnan(p->delay_med_s));       /* no delay, no resolve */
    ck_assert_uint_eq(p->resolve_n, 0);
    ck_assert_uint_eq(p->unresolved, 0);
    ck_near(of_kind(&r, SM_KIND_PREDICTION, "agent_down")->recall, 0.5);
    ck_near(of_kind(&r, SM_KIND_PREDICTION, "token_exhaustion")->lead_min_s, 180.0);
    sm_score_report_free(&r);

    /* Withdrawn at 195 and raised again after the failure: a false alarm. */
    l.n--;
    predict(&l, "agent_down", "a3", 0, 0, 195);
    predict(&l, "agent_down", "a3", 0.9, 0, 250);
    r = score(&l, &ls);
    ck_assert_uint_eq(r.prediction.all.episodes, 4);
    ck_assert_uint_eq(r.prediction.all.false_alarms, 1);
    sm_score_report_free(&r);
    sm_labels_free(&ls);
}
END_TEST

/* A prediction with confidence 0 closes its episode; a withdrawal with
 * nothing open is ignored; a later prediction opens a new episode. */
START_TEST(withdrawn_prediction_closes_its_episode)
{
    sm_labels ls = {0};
    list l = {0};
    label_kind(&ls, SM_LABEL_MUST, SM_KIND_PREDICTION, "memory_exhaustion", "", 100, 400);
    predict(&l, "memory_exhaustion", "", 0, 0, 20);        /* nothing open */
    predict(&l, "memory_exhaustion", "", 0.7, 300, 50);    /* too early */
    predict(&l, "memory_exhaustion", "", 0, 0, 80);        /* withdrawn */
    predict(&l, "memory_exhaustion", "", 0.75, 240, 150);  /* the hit */
    predict(&l, "memory_exhaustion", "", 0.9, 100, 200);   /* an update */
    sm_score_report r = score(&l, &ls);
    ck_assert_uint_eq(r.n_episodes, 2);
    ck_assert(!r.episodes[0].open);
    ck_assert_int_eq(r.episodes[0].resolved_at_ms, S(80));
    ck_assert(r.episodes[1].open);
    ck_assert_int_eq(r.episodes[1].expected_in_ms, 240000);    /* as raised */
    const sm_score_figures *p = &r.prediction.all;
    ck_assert_uint_eq(p->false_alarms, 1);
    ck_near(p->recall, 1.0);
    ck_near(p->lead_min_s, 250.0);
    ck_near(p->eta_err_med_s, 10.0);        /* |150 + 240 - 400| */
    ck_assert_uint_eq(p->flaps, 0);
    sm_score_report_free(&r);

    /* Withdrawn and raised again within the window: a flap. */
    predict(&l, "memory_exhaustion", "", 0, 0, 250);
    predict(&l, "memory_exhaustion", "", 0.8, 60, 260);
    r = score(&l, &ls);
    ck_assert_uint_eq(r.prediction.all.flaps, 1);
    ck_near(r.prediction.all.recall, 1.0);
    sm_score_report_free(&r);
    sm_labels_free(&ls);
}
END_TEST

/* ---- decoding --------------------------------------------------------- */

/* Pack a message with protobuf-c into buf[512]; return its length. */
static size_t pack_failure(const Swarmmedic__V1__Failure *f, uint8_t *buf)
{
    ck_assert_uint_le(swarmmedic__v1__failure__get_packed_size(f), 512);
    return swarmmedic__v1__failure__pack(f, buf);
}

static size_t pack_prediction(const Swarmmedic__V1__Prediction *p, uint8_t *buf)
{
    ck_assert_uint_le(swarmmedic__v1__prediction__get_packed_size(p), 512);
    return swarmmedic__v1__prediction__pack(p, buf);
}

START_TEST(decode_failure_and_prediction_messages)
{
    uint8_t buf[512];
    sm_conclusion c;
    bool is;
    Swarmmedic__V1__Decision d = SWARMMEDIC__V1__DECISION__INIT;
    d.swarm = "s0";
    d.decided_at_ms = S(42);

    Swarmmedic__V1__Failure f = SWARMMEDIC__V1__FAILURE__INIT;
    f.decision = &d;
    f.type = SWARMMEDIC__V1__FAILURE_TYPE__FAILURE_TYPE_AGENT_DOWN;
    f.transition = SWARMMEDIC__V1__FAILURE__TRANSITION__TRANSITION_RAISED;
    f.severity = SWARMMEDIC__V1__SEVERITY__SEVERITY_HIGH;
    f.subject = "a3";
    f.agent = "a3";
    size_t n = pack_failure(&f, buf);
    ck_assert_int_eq(sm_score_decode("medic.s0.failure.agent_down", buf, n, &c, &is),
                     SM_OK);
    ck_assert(is);
    ck_assert_int_eq(c.kind, SM_KIND_FAILURE);
    ck_assert_str_eq(c.type, "agent_down");
    ck_assert_str_eq(c.swarm, "s0");
    ck_assert_str_eq(c.subject, "a3");
    ck_assert_int_eq(c.transition, SM_TR_RAISED);
    ck_assert_int_eq(c.severity, SM_SEV_HIGH);
    ck_assert_int_eq(c.at_ms, S(42));
    list l = {.n = 1};
    l.v[0] = c;

    /* A dotted prefix, and the failure resolved. */
    f.transition = SWARMMEDIC__V1__FAILURE__TRANSITION__TRANSITION_RESOLVED;
    d.decided_at_ms = S(90);
    n = pack_failure(&f, buf);
    ck_assert_int_eq(sm_score_decode("org.medic.s0.failure.agent_down", buf, n,
                                     &c, &is), SM_OK);
    ck_assert(is);
    ck_assert_int_eq(c.transition, SM_TR_RESOLVED);
    l.v[l.n++] = c;

    Swarmmedic__V1__Prediction p = SWARMMEDIC__V1__PREDICTION__INIT;
    p.decision = &d;
    p.failure_type = SWARMMEDIC__V1__FAILURE_TYPE__FAILURE_TYPE_TOKEN_EXHAUSTION;
    p.confidence = 0.82;
    p.expected_in_ms = 90000;
    p.agent = "";
    d.decided_at_ms = S(60);
    n = pack_prediction(&p, buf);
    ck_assert_int_eq(sm_score_decode("medic.s0.prediction.token_exhaustion", buf,
                                     n, &c, &is), SM_OK);
    ck_assert(is);
    ck_assert_int_eq(c.kind, SM_KIND_PREDICTION);
    ck_assert_str_eq(c.type, "token_exhaustion");
    ck_assert_str_eq(c.subject, "");
    ck_assert_int_eq(c.transition, SM_TR_RAISED);
    ck_assert_int_eq(c.expected_in_ms, 90000);
    l.v[l.n++] = c;
    p.confidence = 0;                       /* withdrawn */
    n = pack_prediction(&p, buf);
    ck_assert_int_eq(sm_score_decode("medic.s0.prediction.token_exhaustion", buf,
                                     n, &c, &is), SM_OK);
    ck_assert_int_eq(c.transition, SM_TR_RESOLVED);

    /* Not conclusions: nothing to score, no error. */
    ck_assert_int_eq(sm_score_decode("medic.s0.heal.agent_restart", buf, n, &c, &is),
                     SM_OK);
    ck_assert(!is);
    ck_assert_int_eq(sm_score_decode("medic.deadletter", buf, n, &c, &is), SM_OK);
    ck_assert(!is);
    ck_assert_int_eq(sm_score_decode("medic.s0.report", buf, n, &c, &is), SM_OK);
    ck_assert(!is);
    /* A conclusion that does not decode, or has no header. */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff};
    ck_assert_int_eq(sm_score_decode("medic.s0.failure.agent_down", junk,
                                     sizeof junk, &c, &is), SM_ERR_DECODE);
    ck_assert(!is);
    f.decision = NULL;
    n = pack_failure(&f, buf);
    ck_assert_int_eq(sm_score_decode("medic.s0.failure.agent_down", buf, n, &c, &is),
                     SM_ERR_DECODE);

    /* What was decoded scores: a failure in time, a prediction 60 s ahead. */
    sm_labels ls = {0};
    label_kind(&ls, SM_LABEL_MUST, SM_KIND_FAILURE, "agent_down", "a3", 40, 80);
    label_kind(&ls, SM_LABEL_MUST, SM_KIND_PREDICTION, "token_exhaustion", "", 50, 120);
    sm_score_report r = score(&l, &ls);
    ck_near(r.failure.all.recall, 1.0);
    ck_near(r.failure.all.resolve_max_s, 10.0);
    ck_near(r.prediction.all.recall, 1.0);
    ck_near(r.prediction.all.lead_min_s, 60.0);
    ck_near(r.prediction.all.eta_err_med_s, 30.0);
    sm_score_report_free(&r);
    sm_labels_free(&ls);
}
END_TEST

/* The table has a section per kind that has labels or episodes, the lines
 * carry the kind; a bottleneck-only report prints as it always did. */
START_TEST(table_and_lines_per_kind)
{
    sm_labels ls = {0};
    list l = {0};
    label(&ls, SM_LABEL_MUST, "slow_agent", "a1", 60, 300);
    episode(&l, "slow_agent", "a1", SM_SEV_MEDIUM, 70, 310);
    sm_score_report r = score(&l, &ls);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    sm_score_print_table(&r, &ls, "t", out);
    sm_score_print_lines(&r, &ls, "t", out);
    fclose(out);
    ck_assert_msg(strstr(text, "score t: 1 must, 0 may, 0 never labels; 1 episodes"),
                  "%s", text);
    ck_assert_ptr_null(strstr(text, "failures:"));
    ck_assert_ptr_null(strstr(text, "predictions:"));
    ck_assert_ptr_null(strstr(text, "score.t.failure."));
    ck_assert(strstr(text, "score.t.slow_agent.recall 1 ratio"));
    /* each matched label's delay, for a suite's median (make eval) */
    ck_assert_msg(strstr(text, "score.t.slow_agent.delay_each 10 s\n"
                               "score.t.all.delay_each 10 s\n"), "%s", text);
    free(text);
    sm_score_report_free(&r);

    label_kind(&ls, SM_LABEL_MUST, SM_KIND_FAILURE, "agent_down", "a3", 100, 300);
    label_kind(&ls, SM_LABEL_MUST, SM_KIND_PREDICTION, "agent_down", "a3", 40, 100);
    failure(&l, "agent_down", "a3", 105, 320);
    predict(&l, "agent_down", "a3", 0.9, 0, 90);
    predict(&l, "token_exhaustion", "", 0.9, 0, 400);
    r = score(&l, &ls);
    out = open_memstream(&text, &len);
    sm_score_print_table(&r, &ls, "t", out);
    sm_score_print_lines(&r, &ls, "t", out);
    fclose(out);
    ck_assert_msg(strstr(text, "score t: 1 must, 0 may, 0 never labels; 1 episodes"),
                  "%s", text);
    ck_assert_msg(strstr(text, "failures: 1 must, 0 may, 0 never labels; 1 episodes"),
                  "%s", text);
    ck_assert(strstr(text, "predictions: 1 must, 0 may, 0 never labels; 2 episodes"));
    ck_assert(strstr(text, "lead s"));
    ck_assert(strstr(text, "missed      must[2]   prediction agent_down s0 a3 "
                           "(first raised at +90.0 s, 10.0 s before the failure: "
                           "too late)"));
    ck_assert(strstr(text, "false alarm           prediction token_exhaustion s0 - "
                           "raised at +400.0 s"));
    ck_assert(strstr(text, "score.t.slow_agent.recall 1 ratio"));
    ck_assert(strstr(text, "score.t.all.recall 1 ratio"));
    ck_assert(strstr(text, "score.t.failure.agent_down.delay_each 5 s"));
    ck_assert_ptr_null(strstr(text, "score.t.prediction.agent_down.delay_each"));
    ck_assert(strstr(text, "score.t.failure.agent_down.recall 1 ratio"));
    ck_assert(strstr(text, "score.t.failure.agent_down.delay_max 5 s"));
    ck_assert(strstr(text, "score.t.failure.all.resolve_max 20 s"));
    ck_assert(strstr(text, "score.t.prediction.agent_down.recall 0 ratio"));
    ck_assert(strstr(text, "score.t.prediction.all.false_alarms 1 count"));
    ck_assert(strstr(text, "score.t.prediction.token_exhaustion.precision 0 ratio"));
    ck_assert_ptr_null(strstr(text, "score.t.prediction.all.delay"));
    free(text);
    sm_score_report_free(&r);
    sm_labels_free(&ls);
}
END_TEST

START_TEST(absolute_and_relative_times_agree)
{
    sm_labels ls = {0};
    list l = {0};
    label(&ls, SM_LABEL_MUST, "token_exhaustion", "", 0, 0);
    ls.v[0].relative = false;
    ls.v[0].from_ms = S(60);
    ls.v[0].to_ms = S(120);
    episode(&l, "token_exhaustion", "scheduler", SM_SEV_HIGH, 70, 125);
    sm_score_report r = score(&l, &ls);
    ck_near(r.bottleneck.all.recall, 1.0);
    ck_near(r.bottleneck.all.delay_max_s, 10.0);
    sm_score_report_free(&r);
    sm_labels_free(&ls);
}
END_TEST

/* ---- labels loader ---------------------------------------------------- */

static char tmp[256];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Loads text as a labels file; returns the status, err holds the sentence. */
static sm_status load_text(const char *text, sm_labels *ls, char *err,
                           size_t cap)
{
    char path[320];
    snprintf(path, sizeof path, "%s/x.labels.json", tmp);
    write_file(path, text);
    memset(ls, 0, sizeof *ls);
    return sm_labels_load_file(path, ls, err, cap);
}

static void setup(void)
{
    sm_test_tmpdir(tmp, sizeof tmp, "score");
}

static void teardown(void)
{
    sm_test_rmtree(tmp);
}

START_TEST(loader_reads_every_field)
{
    sm_labels ls;
    char err[512] = "";
    sm_status s = load_text(
        "{\"labels\": {"
        " \"must\": [{\"kind\":\"bottleneck\",\"type\":\"slow_agent\",\"swarm\":\"s0\","
        "   \"subject\":\"a3\",\"from_s\":300,\"to_s\":780.5,\"severity\":\"high\","
        "   \"raise_within_s\":60,\"resolve_within_s\":30}],"
        " \"may\": [{\"type\":\"queue_backlog\",\"swarm\":\"s0\",\"from_ms\":1000,\"to_ms\":2000}],"
        " \"never\": [{\"type\":\"quota_exceeded\",\"swarm\":\"s1\"},"
        "            {\"kind\":\"failure\",\"type\":\"agent_down\",\"swarm\":\"s0\",\"to_s\":10}]"
        "}, \"name\": \"ignored beside labels\"}",
        &ls, err, sizeof err);
    ck_assert_msg(s == SM_OK, "%s", err);
    ck_assert_uint_eq(ls.n, 4);
    const sm_label *m = &ls.v[0];
    ck_assert_int_eq(m->cls, SM_LABEL_MUST);
    ck_assert_str_eq(m->type, "slow_agent");
    ck_assert_str_eq(m->subject, "a3");
    ck_assert(m->relative);
    ck_assert_int_eq(m->from_ms, 300000);
    ck_assert_int_eq(m->to_ms, 780500);
    ck_assert_int_eq(m->severity, SM_SEV_HIGH);
    ck_assert_int_eq(m->raise_within_ms, 60000);
    ck_assert_int_eq(m->resolve_within_ms, 30000);
    const sm_label *y = &ls.v[1];
    ck_assert_int_eq(y->cls, SM_LABEL_MAY);
    ck_assert(!y->relative);
    ck_assert_int_eq(y->from_ms, 1000);
    ck_assert_int_eq(y->raise_within_ms, 120000);   /* defaults */
    ck_assert_int_eq(y->resolve_within_ms, 180000);
    ck_assert_int_eq(ls.v[2].from_ms, INT64_MIN);   /* whole run */
    ck_assert_int_eq(ls.v[2].to_ms, INT64_MAX);
    ck_assert_int_eq(ls.v[3].kind, SM_KIND_FAILURE);
    ck_assert_int_eq(ls.v[3].from_ms, INT64_MIN);
    ck_assert_int_eq(ls.v[3].to_ms, 10000);
    sm_labels_free(&ls);
}
END_TEST

static const struct bad_case {
    const char *text;
    const char *want[3];        /* substrings of the error */
} bad_cases[] = {
    {"{\"must\":[{\"type\":\"slow_agent\",\"swarm\":\"s0\",\"from_s\":1,\"to_s\":2},"
     "{\"swarm\":\"s0\",\"from_s\":1,\"to_s\":2}]}",
     {"labels.must[1]", "\"type\"", "missing"}},
    {"{\"must\":[{\"type\":\"slow_agnet\",\"swarm\":\"s0\",\"from_s\":1,\"to_s\":2}]}",
     {"labels.must[0]", "\"type\"", "not a bottleneck type"}},
    {"{\"never\":[{\"type\":\"slow_agent\",\"swarm\":\"s0\",\"form_s\":1}]}",
     {"labels.never[0]", "\"form_s\"", "unknown field"}},
    {"{\"may\":[{\"type\":\"slow_agent\",\"swarm\":\"s0\",\"from_s\":1,\"to_ms\":2}]}",
     {"labels.may[0]", "from_s", "do not mix"}},
    {"{\"must\":[{\"type\":\"slow_agent\",\"swarm\":\"s0\",\"from_s\":10,\"to_s\":2}]}",
     {"labels.must[0]", "\"to_s\"", "ends before from"}},
    {"{\"must\":[{\"type\":\"slow_agent\",\"swarm\":\"s0\",\"to_s\":2}]}",
     {"labels.must[0]", "\"from_s\"", "missing"}},
    {"{\"must\":[{\"type\":\"slow_agent\",\"swarm\":\"s0\",\"from_s\":\"1\",\"to_s\":2}]}",
     {"labels.must[0]", "\"from_s\"", "number"}},
    {"{\"must\":[{\"type\":\"slow_agent\",\"swarm\":\"s0\",\"from_s\":1,\"to_s\":2,"
     "\"severity\":\"huge\"}]}",
     {"labels.must[0]", "\"severity\"", "critical"}},
    {"{\"must\":[{\"type\":\"slow_agent\",\"swarm\":\"s0\",\"from_s\":1,\"to_s\":2,"
     "\"raise_within_s\":-1}]}",
     {"labels.must[0]", "\"raise_within_s\"", ">= 0"}},
    {"{\"must\":[{\"kind\":\"guess\",\"type\":\"x\",\"swarm\":\"s0\"}]}",
     {"labels.must[0]", "\"kind\"", "bottleneck"}},
    {"{\"may\":[{\"kind\":\"failure\",\"type\":\"slow_agent\",\"swarm\":\"s0\","
     "\"from_s\":1,\"to_s\":2}]}",
     {"labels.may[0]", "\"type\"", "not a failure type"}},
    {"{\"must\":{}}", {"labels.must", "array", NULL}},
    {"{\"shall\":[]}", {"unknown key", "\"shall\"", NULL}},
    {"{\"must\":[", {"not JSON", NULL, NULL}},
};

START_TEST(loader_errors_name_file_label_and_field)
{
    const struct bad_case *c = &bad_cases[_i];
    sm_labels ls;
    char err[512] = "";
    sm_status s = load_text(c->text, &ls, err, sizeof err);
    ck_assert_msg(s == SM_ERR_INVALID, "case %d accepted: %s", _i, c->text);
    ck_assert_msg(strstr(err, "x.labels.json"), "case %d: no file in '%s'", _i, err);
    for (int k = 0; k < 3 && c->want[k]; k++)
        ck_assert_msg(strstr(err, c->want[k]), "case %d: '%s' lacks '%s'", _i,
                      err, c->want[k]);
    ck_assert_uint_eq(ls.n, 0);
}
END_TEST

START_TEST(loader_missing_file_is_io)
{
    sm_labels ls = {0};
    char err[512] = "";
    ck_assert_int_eq(sm_labels_load_file("/nonexistent/l.json", &ls, err, sizeof err),
                     SM_ERR_IO);
    ck_assert(strstr(err, "/nonexistent/l.json"));
}
END_TEST

/* ---- floors ----------------------------------------------------------- */

START_TEST(floors_parse_and_check)
{
    sm_score_floors f;
    sm_score_floors_init(&f);
    char err[256];
    ck_assert_int_eq(sm_score_floors_parse(&f, "recall=1,precision=0.97,flaps=0", err,
                                           sizeof err), SM_OK);
    ck_assert_int_eq(sm_score_floors_parse(&f, "delay=30", err, sizeof err), SM_OK);
    ck_near(f.delay_s, 30.0);
    ck_assert_int_eq(sm_score_floors_parse(&f, "recal=1", err, sizeof err), SM_ERR_INVALID);
    ck_assert(strstr(err, "recal"));
    ck_assert_int_eq(sm_score_floors_parse(&f, "recall", err, sizeof err), SM_ERR_INVALID);
    ck_assert_int_eq(sm_score_floors_parse(&f, "recall=x", err, sizeof err), SM_ERR_INVALID);

    sm_score_report r = {0};
    sm_score_figures *all = &r.bottleneck.all;
    *all = (sm_score_figures){.recall = 1.0, .precision = 0.98, .flaps = 0,
                              .delay_max_s = 12, .severity = NAN};
    ck_assert_uint_eq(sm_score_floors_check(&f, &r, NULL), 0);
    all->precision = 0.96;
    all->flaps = 1;
    ck_assert_uint_eq(sm_score_floors_check(&f, &r, NULL), 2);
    all->precision = 0.98;
    all->flaps = 0;
    all->delay_max_s = 31;
    ck_assert_uint_eq(sm_score_floors_check(&f, &r, NULL), 1);
    all->delay_max_s = 12;

    /* Failure and prediction floors bound their own kind's figures. */
    ck_assert_int_eq(sm_score_floors_parse(&f, "failure_recall=1,failure_delay=20,"
                                           "prediction_lead_s=30,"
                                           "prediction_eta_err=60", err,
                                           sizeof err), SM_OK);
    ck_near(f.failure_delay_s, 20.0);
    ck_near(f.prediction_eta_err_s, 60.0);
    r.failure.all = (sm_score_figures){.recall = NAN, .delay_max_s = NAN};
    r.prediction.all = (sm_score_figures){.lead_min_s = NAN, .eta_err_med_s = NAN};
    ck_assert_uint_eq(sm_score_floors_check(&f, &r, NULL), 0);  /* undefined: met */
    r.failure.all.recall = 0.5;
    r.failure.all.delay_max_s = 25;
    r.prediction.all.lead_min_s = 10;       /* a minimum */
    r.prediction.all.eta_err_med_s = 61;    /* a maximum */
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ck_assert_uint_eq(sm_score_floors_check(&f, &r, out), 4);
    fclose(out);
    ck_assert_msg(strstr(text, "floor failure_recall >= 1      got 0.5      MISSED"),
                  "%s", text);
    ck_assert(strstr(text, "floor prediction_lead_s >= 30"));
    free(text);
    r.prediction.all.lead_min_s = 45;
    ck_assert_uint_eq(sm_score_floors_check(&f, &r, NULL), 3);

    json_t *j = json_loads("{\"recall\":1,\"forbidden\":0}", 0, NULL);
    sm_score_floors g;
    sm_score_floors_init(&g);
    ck_assert_int_eq(sm_score_floors_from_json(&g, j, "sc.json", err, sizeof err), SM_OK);
    json_decref(j);
    ck_near(g.forbidden, 0.0);
    ck_assert(isnan(g.precision));
    j = json_loads("{\"failure_recall\":1,\"prediction_recall\":0.7}", 0, NULL);
    ck_assert_int_eq(sm_score_floors_from_json(&g, j, "sc.json", err, sizeof err), SM_OK);
    json_decref(j);
    ck_near(g.failure_recall, 1.0);
    ck_near(g.prediction_recall, 0.7);
    j = sm_score_floors_to_json(&g);
    ck_assert_msg(json_object_size(j) == 4, "%zu keys", json_object_size(j));
    ck_assert(json_object_get(j, "failure_recall"));
    json_decref(j);
    j = json_loads("{\"recal\":1}", 0, NULL);
    ck_assert_int_eq(sm_score_floors_from_json(&g, j, "sc.json", err, sizeof err),
                     SM_ERR_INVALID);
    ck_assert(strstr(err, "sc.json") && strstr(err, "recal"));
    json_decref(j);
}
END_TEST

/* ---- end to end on the demo recording --------------------------------- */

#define DEMO_REC "tests/golden/demo.rec"
#define DEMO_LABELS "tests/golden/demo.labels.json"

static sm_score_report score_demo(const char *const *sets, size_t n_sets,
                                  sm_labels *ls)
{
    sm_config cfg;
    sm_config_init(&cfg);
    char err[512];
    for (size_t i = 0; i < n_sets; i += 2)
        ck_assert_int_eq(sm_config_set(&cfg, sets[i], sets[i + 1], "test", err,
                                       sizeof err), SM_OK);
    ck_assert_int_eq(sm_config_validate(&cfg, err, sizeof err), SM_OK);
    sm_log log = {.out = stderr, .level = SM_LOG_ERROR};
    ck_assert_msg(sm_labels_load_file(DEMO_LABELS, ls, err, sizeof err) == SM_OK,
                  "%s", err);
    sm_score_input in = {.name = "demo", .rec_path = DEMO_REC, .labels = ls};
    sm_score_report r;
    sm_status s = sm_score_run(&cfg, &log, &in, &r, err, sizeof err);
    ck_assert_msg(s == SM_OK, "%s", err);
    sm_config_free(&cfg);
    return r;
}

START_TEST(demo_recall_is_one)
{
    sm_labels ls = {0};
    sm_score_report r = score_demo(NULL, 0, &ls);
    ck_assert_uint_eq(r.bottleneck.all.must, 5);
    ck_near(r.bottleneck.all.recall, 1.0);
    ck_near(r.bottleneck.all.precision, 1.0);
    ck_assert_uint_eq(r.bottleneck.all.forbidden, 0);
    ck_assert_uint_eq(r.bottleneck.all.flaps, 0);
    ck_assert_uint_eq(r.bottleneck.all.unresolved, 0);
    ck_assert_uint_eq(r.bottleneck.n_types, 5);
    for (size_t i = 0; i < r.bottleneck.n_types; i++)
        ck_near(r.bottleneck.by_type[i].recall, 1.0);
    /* Each fault is raised within the documented 120 s and after its onset
     * (minus the slack). */
    ck_assert(r.bottleneck.all.delay_max_s <= 120.0 && r.bottleneck.all.delay_max_s > -5.0);
    ck_assert_int_eq(r.run_start_ms, T0);
    sm_score_report_free(&r);
    sm_labels_free(&ls);
}
END_TEST

START_TEST(demo_with_a_blunter_slow_detector_misses_the_slow_agent)
{
    sm_labels ls = {0};
    const char *sets[] = {"slow_raise", "4", "slow_high", "5"};
    sm_score_report r = score_demo(sets, 4, &ls);
    ck_near(r.bottleneck.all.recall, 0.8);
    ck_near(of_type(&r, "slow_agent")->recall, 0.0);
    sm_score_report_free(&r);
    sm_labels_free(&ls);
}
END_TEST

/* A generator over the recording: the in-memory path scores the same. */
typedef struct recgen {
    sm_recr *r;
} recgen;

static bool next_rec(void *ud, sm_score_msg *out, sm_status *st)
{
    recgen *g = ud;
    sm_rec rec;
    sm_status s = sm_recr_next(g->r, &rec);
    if (s != SM_OK) {
        *st = s == SM_ERR_NOT_FOUND ? SM_OK : s;
        return false;
    }
    out->subject = rec.subject;
    out->data = rec.data;
    out->len = rec.len;
    out->ts_ms = rec.recv_ms;
    return true;
}

START_TEST(generator_path_scores_like_the_recording)
{
    sm_labels ls = {0};
    sm_score_report a = score_demo(NULL, 0, &ls);
    recgen g = {0};
    char err[512];
    ck_assert_int_eq(sm_recr_open(&g.r, DEMO_REC, err, sizeof err), SM_OK);
    sm_config cfg;
    sm_config_init(&cfg);
    sm_log log = {.out = stderr, .level = SM_LOG_ERROR};
    sm_score_input in = {.name = "gen", .next = next_rec, .ud = &g, .labels = &ls};
    sm_score_report b;
    ck_assert_int_eq(sm_score_run(&cfg, &log, &in, &b, err, sizeof err), SM_OK);
    ck_assert_uint_eq(a.n_episodes, b.n_episodes);
    ck_near(b.bottleneck.all.recall, 1.0);
    ck_near(a.bottleneck.all.delay_med_s, b.bottleneck.all.delay_med_s);
    ck_near(a.bottleneck.all.resolve_max_s, b.bottleneck.all.resolve_max_s);
    sm_recr_close(g.r);
    sm_config_free(&cfg);
    sm_score_report_free(&a);
    sm_score_report_free(&b);
    sm_labels_free(&ls);
}
END_TEST

/* The program: exit codes and output, as a user sees them. */
static int run_cli(const char *const argv[], const char *log_path)
{
    pid_t pid = sm_test_spawn(argv, log_path, false);
    return sm_test_wait(pid, 60000);
}

START_TEST(program_exit_codes_and_output)
{
    char bin[512], out[320];
    sm_test_bin(bin, sizeof bin, "swarm-medic");
    snprintf(out, sizeof out, "%s/out.txt", tmp);

    const char *ok[] = {bin, "score", DEMO_REC, "--labels", DEMO_LABELS,
                        "--floor", "recall=1,precision=1,forbidden=0",
                        "--log-level=error", NULL};
    ck_assert_int_eq(run_cli(ok, out), 0);
    char *text = sm_test_slurp(out);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strstr(text, "score.demo.all.recall 1 ratio"), "%s", text);
    ck_assert(strstr(text, "score.demo.slow_agent.recall 1 ratio"));
    ck_assert(strstr(text, "floor recall"));
    ck_assert(strstr(text, "\nall "));
    free(text);
    unlink(out);

    const char *missed[] = {bin, "score", DEMO_REC, "--labels", DEMO_LABELS,
                            "--b", "slow_raise=4", "--b", "slow_high=5",
                            "--floor", "recall=1", "--log-level=error", NULL};
    ck_assert_int_eq(run_cli(missed, out), 1);
    text = sm_test_slurp(out);
    ck_assert(strstr(text, "score.demo.all.recall 0.8 ratio"));
    ck_assert(strstr(text, "missed      must[2]   slow_agent s0 a1"));
    free(text);
    unlink(out);

    const char *no_labels[] = {bin, "score", DEMO_REC, NULL};
    ck_assert_int_eq(run_cli(no_labels, NULL), 2);
    const char *bad_floor[] = {bin, "score", DEMO_REC, "--labels", DEMO_LABELS,
                               "--floor", "recal=1", NULL};
    ck_assert_int_eq(run_cli(bad_floor, NULL), 2);
    const char *bad_b[] = {bin, "score", DEMO_REC, "--labels", DEMO_LABELS,
                           "--b", "slow_raise=banana", NULL};
    ck_assert_int_eq(run_cli(bad_b, NULL), 2);
    const char *scenario[] = {bin, "score", "--scenario", "tests/scenarios/none.json", NULL};
    /* Not here: the simulator links the product, never the reverse. */
    ck_assert_int_eq(run_cli(scenario, NULL), 2);
}
END_TEST

/* ---- healing (the closed loop) ---------------------------------------- */

#define ACT_ SWARMMEDIC__V1__AUTONOMY__AUTONOMY_ACT
#define REC_ SWARMMEDIC__V1__AUTONOMY__AUTONOMY_RECOMMEND

typedef struct hlist {
    sm_heal_event v[32];
    size_t n;
} hlist;

static sm_heal_event *hcmd(hlist *l, const char *id, const char *type,
                           const char *answers, int autonomy, double at_s)
{
    ck_assert_uint_lt(l->n, 32);
    sm_heal_event *e = &l->v[l->n++];
    memset(e, 0, sizeof *e);
    e->kind = SM_HEAL_COMMAND;
    snprintf(e->id, sizeof e->id, "%s", id);
    snprintf(e->swarm, sizeof e->swarm, "s0");
    snprintf(e->failure_type, sizeof e->failure_type, "%s", type);
    snprintf(e->answers, sizeof e->answers, "%s", answers);
    e->autonomy = autonomy;
    e->id_header_ok = true;
    e->at_ms = S(at_s);
    return e;
}

static sm_heal_event *hverdict(hlist *l, const char *id, const char *type,
                               int verdict, double first_s, double detect_s,
                               double recovered_s)
{
    ck_assert_uint_lt(l->n, 32);
    sm_heal_event *e = &l->v[l->n++];
    memset(e, 0, sizeof *e);
    e->kind = SM_HEAL_VERDICT;
    snprintf(e->id, sizeof e->id, "%s", id);
    snprintf(e->swarm, sizeof e->swarm, "s0");
    snprintf(e->failure_type, sizeof e->failure_type, "%s", type);
    e->verdict = verdict;
    e->first_evidence_ms = S(first_s);
    e->detected_at_ms = S(detect_s);
    e->recovered_at_ms = recovered_s > 0 ? S(recovered_s) : 0;
    e->at_ms = S(recovered_s > 0 ? recovered_s : detect_s + 60);
    return e;
}

static const sm_heal_figures *htype(const sm_score_healing *h, const char *t)
{
    for (size_t i = 0; i < h->n_types; i++)
        if (strcmp(h->by_type[i].type, t) == 0)
            return &h->by_type[i];
    ck_abort_msg("no healing row for %s", t);
    return NULL;
}

/* Two incidents healed, one after a failed try and an escalation; each
 * figure moves with what it measures. */
START_TEST(healing_figures_from_hand_built_events)
{
    hlist l = {.n = 0};
    /* agent_down F1: restart verified; detect 3 s, recover 9 s */
    hcmd(&l, "c1", "agent_down", "f1", ACT_, 4);
    hverdict(&l, "c1", "agent_down", 1, 1, 4, 10);
    /* agent_stuck F2: a restart, a second command while it is open (a
     * storm), a FAILED verdict, an escalation */
    hcmd(&l, "c2", "agent_stuck", "f2", ACT_, 100);
    hcmd(&l, "c3", "agent_stuck", "f2", ACT_, 101);
    hverdict(&l, "c2", "agent_stuck", 2, 90, 95, 0);
    hverdict(&l, "c3", "agent_stuck", 1, 90, 95, 120);
    hcmd(&l, "c4", "agent_stuck", "f2", ACT_, 160)->escalation = true;
    /* the first command again: a duplicate, not a storm */
    hcmd(&l, "c1", "agent_down", "f1", ACT_, 170)->id_header_ok = false;
    /* advice: verified, but not in the success rate */
    hcmd(&l, "c5", "quorum_loss", "f3", REC_, 200);
    hverdict(&l, "c5", "quorum_loss", 1, 190, 195, 230);
    /* unanswered ACT */
    hcmd(&l, "c6", "quorum_loss", "f4", ACT_, 300);

    sm_score_healing h = {.on = true};
    ck_assert_int_eq(sm_score_heal_compute(l.v, l.n, &h), SM_OK);
    ck_assert(h.on);
    ck_assert_uint_eq(h.all.commands, 7);
    ck_assert_uint_eq(h.all.escalations, 1);
    ck_assert_uint_eq(h.all.act, 5);
    ck_assert_uint_eq(h.all.verified, 3);
    ck_assert_uint_eq(h.all.failed, 1);
    ck_assert_uint_eq(h.all.act_verified, 2);
    ck_assert_uint_eq(h.all.act_failed, 1);
    ck_assert_double_eq_tol(h.all.success, 2.0 / 3.0, 1e-9);
    ck_assert_uint_eq(h.storms, 1);
    ck_assert_uint_eq(h.duplicates, 1);
    ck_assert_uint_eq(h.id_header_bad, 1);
    ck_assert_uint_eq(h.incidents, 4);
    ck_assert_double_eq_tol(h.per_incident, 7.0 / 4.0, 1e-9);
    ck_assert_uint_eq(h.unanswered, 1);
    const sm_heal_figures *down = htype(&h, "agent_down");
    ck_assert_double_eq_tol(down->raise_med_s, 3.0, 1e-9);
    ck_assert(isnan(down->detect_med_s));   /* no failure labels here */
    ck_assert_double_eq_tol(down->recover_med_s, 9.0, 1e-9);
    ck_assert_double_eq_tol(down->success, 1.0, 1e-9);
    const sm_heal_figures *stuck = htype(&h, "agent_stuck");
    ck_assert_uint_eq(stuck->commands, 3);
    ck_assert_double_eq_tol(stuck->success, 0.5, 1e-9);
    ck_assert_double_eq_tol(stuck->recover_max_s, 30.0, 1e-9);
    const sm_heal_figures *q = htype(&h, "quorum_loss");
    ck_assert(isnan(q->success));       /* only advice was verified */
    ck_assert_double_eq_tol(h.all.recover_max_s, 40.0, 1e-9);
    ck_assert_double_eq_tol(h.all.recover_med_s, 30.0, 1e-9);

    /* The table and the lines carry them. */
    sm_score_report r;
    memset(&r, 0, sizeof r);
    r.heal = h;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    sm_score_print_healing(&r, f);
    sm_score_print_healing_lines(&r, "t", f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "storms 1, duplicate ids 1"));
    ck_assert_ptr_nonnull(strstr(buf, "score.t.heal.all.success 0.6667 ratio"));
    ck_assert_ptr_nonnull(strstr(buf, "score.t.heal.agent_down.recover_med 9 s"));
    ck_assert_ptr_nonnull(strstr(buf, "score.t.heal.storms 1 count"));
    free(buf);

    /* Time to detect comes from the failure section: the fault's onset
     * (its must-label's from) to the raise. */
    sm_score_figures fdown = {.type = "agent_down", .delay_med_s = 16.5,
                              .delay_max_s = 18.0};
    r.failure.by_type = &fdown;
    r.failure.n_types = 1;
    r.failure.all.delay_med_s = 12.0;
    r.failure.all.delay_max_s = 18.0;
    sm_score_heal_detect(&r);
    ck_assert_double_eq_tol(htype(&r.heal, "agent_down")->detect_med_s, 16.5, 1e-9);
    ck_assert_double_eq_tol(htype(&r.heal, "agent_down")->detect_max_s, 18.0, 1e-9);
    ck_assert(isnan(htype(&r.heal, "agent_stuck")->detect_med_s));
    ck_assert_double_eq_tol(r.heal.all.detect_max_s, 18.0, 1e-9);
    sm_score_healing_free(&h);

    /* No storm when the second command follows the first one's verdict. */
    hlist m = {.n = 0};
    hcmd(&m, "d1", "agent_stuck", "g1", ACT_, 10);
    hverdict(&m, "d1", "agent_stuck", 2, 5, 8, 0);
    hcmd(&m, "d2", "agent_stuck", "g1", ACT_, 80);
    sm_score_healing h2 = {.on = true};
    ck_assert_int_eq(sm_score_heal_compute(m.v, m.n, &h2), SM_OK);
    ck_assert_uint_eq(h2.storms, 0);
    ck_assert_uint_eq(h2.incidents, 1);
    sm_score_healing_free(&h2);
}
END_TEST

START_TEST(decode_healing_messages)
{
    Swarmmedic__V1__Decision d = SWARMMEDIC__V1__DECISION__INIT;
    d.decision_id = "00000000000000c1";
    d.swarm = "s0";
    d.decided_at_ms = S(5);
    Swarmmedic__V1__HealingCommand c = SWARMMEDIC__V1__HEALING_COMMAND__INIT;
    c.decision = &d;
    c.action = SWARMMEDIC__V1__HEALING_COMMAND__ACTION__ACTION_AGENT_RESTART;
    c.failure_type = SWARMMEDIC__V1__FAILURE_TYPE__FAILURE_TYPE_AGENT_STUCK;
    c.answers = "00000000000000f1";
    c.autonomy = ACT_;
    uint8_t buf[512];
    size_t n = swarmmedic__v1__healing_command__pack(&c, buf);
    const char *hdr[] = {"Nats-Msg-Id", "00000000000000c1", NULL};
    sm_heal_event e;
    bool is = false;
    ck_assert_int_eq(sm_score_decode_heal("medic.s0.heal.agent_restart", buf, n,
                                          hdr, &e, &is), SM_OK);
    ck_assert(is);
    ck_assert_int_eq(e.kind, SM_HEAL_COMMAND);
    ck_assert_str_eq(e.id, "00000000000000c1");
    ck_assert_str_eq(e.action, "agent_restart");
    ck_assert_str_eq(e.failure_type, "agent_stuck");
    ck_assert_str_eq(e.answers, "00000000000000f1");
    ck_assert(e.id_header_ok);
    ck_assert(!e.escalation);
    const char *wrong[] = {"Nats-Msg-Id", "ffffffffffffffff", NULL};
    ck_assert_int_eq(sm_score_decode_heal("medic.s0.heal.agent_restart", buf, n,
                                          wrong, &e, &is), SM_OK);
    ck_assert(!e.id_header_ok);

    Swarmmedic__V1__HealingVerdict v = SWARMMEDIC__V1__HEALING_VERDICT__INIT;
    v.decision = &d;
    v.command_id = "00000000000000c1";
    v.verdict = SWARMMEDIC__V1__HEALING_VERDICT__VERDICT__VERDICT_VERIFIED;
    v.failure_type = SWARMMEDIC__V1__FAILURE_TYPE__FAILURE_TYPE_AGENT_STUCK;
    v.first_evidence_ms = S(1);
    v.detected_at_ms = S(3);
    v.recovered_at_ms = S(9);
    n = swarmmedic__v1__healing_verdict__pack(&v, buf);
    ck_assert_int_eq(sm_score_decode_heal("medic.s0.verdict.agent_restart", buf,
                                          n, NULL, &e, &is), SM_OK);
    ck_assert(is);
    ck_assert_int_eq(e.kind, SM_HEAL_VERDICT);
    ck_assert_int_eq(e.verdict, 1);
    ck_assert_int_eq(e.recovered_at_ms, S(9));

    ck_assert_int_eq(sm_score_decode_heal("medic.s0.failure.agent_stuck", buf,
                                          n, NULL, &e, &is), SM_OK);
    ck_assert(!is);
    ck_assert_int_eq(sm_score_decode_heal("medic.s0.heal.agent_restart",
                                          "\xff\xff", 2, NULL, &e, &is),
                     SM_ERR_DECODE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("score");
    TCase *eng = tcase_create("engine");
    tcase_add_test(eng, perfect_detector_scores_one);
    tcase_add_test(eng, missed_label_lowers_recall_of_its_type);
    tcase_add_test(eng, raise_too_late_or_other_subject_is_a_miss);
    tcase_add_test(eng, false_alarm_lowers_precision);
    tcase_add_test(eng, flap_is_counted_not_a_false_alarm);
    tcase_add_test(eng, forbidden_hit_is_counted_and_a_false_alarm);
    tcase_add_test(eng, may_episode_counts_neither_way);
    tcase_add_test(eng, raise_during_the_ramp_is_an_early_hit);
    tcase_add_test(eng, severity_agreement_uses_the_peak);
    tcase_add_test(eng, resolve_time_after_the_fault_ends);
    tcase_add_test(eng, unresolved_open_or_late);
    tcase_add_test(eng, failures_scored_like_bottlenecks);
    tcase_add_test(eng, prediction_needs_thirty_seconds_of_lead);
    tcase_add_test(eng, withdrawn_prediction_closes_its_episode);
    tcase_add_test(eng, decode_failure_and_prediction_messages);
    tcase_add_test(eng, table_and_lines_per_kind);
    tcase_add_test(eng, absolute_and_relative_times_agree);
    tcase_add_test(eng, healing_figures_from_hand_built_events);
    tcase_add_test(eng, decode_healing_messages);
    suite_add_tcase(s, eng);

    TCase *lab = tcase_create("labels");
    tcase_add_checked_fixture(lab, setup, teardown);
    tcase_add_test(lab, loader_reads_every_field);
    tcase_add_loop_test(lab, loader_errors_name_file_label_and_field, 0,
                        (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(lab, loader_missing_file_is_io);
    tcase_add_test(lab, floors_parse_and_check);
    suite_add_tcase(s, lab);

    TCase *e2e = tcase_create("demo");
    tcase_set_timeout(e2e, 120);
    tcase_add_checked_fixture(e2e, setup, teardown);
    tcase_add_test(e2e, demo_recall_is_one);
    tcase_add_test(e2e, demo_with_a_blunter_slow_detector_misses_the_slow_agent);
    tcase_add_test(e2e, generator_path_scores_like_the_recording);
    tcase_add_test(e2e, program_exit_codes_and_output);
    suite_add_tcase(s, e2e);
    return sm_run_suite(s);
}
