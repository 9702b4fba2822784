/* score_heal.c - the closed loop's figures (score.h, "healing"): the
 * worker's HealingCommands and HealingVerdicts decoded, judged in the order
 * drawn, printed as a table and as `name value unit` lines. */
#include "score.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decision.h"
#include "swarm_medic.pb-c.h"

#define VERIFIED SWARMMEDIC__V1__HEALING_VERDICT__VERDICT__VERDICT_VERIFIED
#define FAILED SWARMMEDIC__V1__HEALING_VERDICT__VERDICT__VERDICT_FAILED
#define PREEMPTED SWARMMEDIC__V1__HEALING_VERDICT__VERDICT__VERDICT_PREEMPTED
#define SUPERSEDED SWARMMEDIC__V1__HEALING_VERDICT__VERDICT__VERDICT_SUPERSEDED
#define ACT SWARMMEDIC__V1__AUTONOMY__AUTONOMY_ACT

/* ---- decoding ---------------------------------------------------------- */

/* The kind and action tokens of <prefix>.<swarm>.<heal|verdict>.<action>:
 * false for any other subject. */
static bool heal_subject(const char *subject, sm_heal_kind *kind,
                         const char **action)
{
    const char *last = strrchr(subject, '.');
    if (last == NULL || last == subject)
        return false;
    const char *p = last - 1;
    while (p > subject && *p != '.')
        p--;
    if (*p != '.')
        return false;
    size_t len = (size_t)(last - p - 1);
    if (len == 4 && strncmp(p + 1, "heal", 4) == 0)
        *kind = SM_HEAL_COMMAND;
    else if (len == 7 && strncmp(p + 1, "verdict", 7) == 0)
        *kind = SM_HEAL_VERDICT;
    else
        return false;
    *action = last + 1;
    return true;
}

static void put(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static const char *header_value(const char *const *headers, const char *key)
{
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        if (strcmp(headers[i], key) == 0)
            return headers[i + 1];
    return NULL;
}

/* The failure type's token; "bottleneck" for a command that answers no
 * failure (a strategy matching a bottleneck, as drain_agent does). */
static const char *failure_of(int type)
{
    return type > 0 ? sm_fail_type_str((sm_fail_type)type) : "bottleneck";
}

static sm_status decode_command(const void *data, size_t len,
                                const char *const *headers, sm_heal_event *e)
{
    Swarmmedic__V1__HealingCommand *m =
        swarmmedic__v1__healing_command__unpack(NULL, len, data);
    if (m == NULL || m->decision == NULL) {
        swarmmedic__v1__healing_command__free_unpacked(m, NULL);
        return SM_ERR_DECODE;
    }
    put(e->id, sizeof e->id, m->decision->decision_id);
    put(e->swarm, sizeof e->swarm, m->decision->swarm);
    put(e->failure_type, sizeof e->failure_type, failure_of(m->failure_type));
    put(e->answers, sizeof e->answers, m->answers);
    e->at_ms = m->decision->decided_at_ms;
    e->autonomy = (int)m->autonomy;
    e->escalation =
        m->action == SWARMMEDIC__V1__HEALING_COMMAND__ACTION__ACTION_ESCALATE;
    const char *h = header_value(headers, "Nats-Msg-Id");
    e->id_header_ok = h != NULL && strcmp(h, m->decision->decision_id) == 0;
    swarmmedic__v1__healing_command__free_unpacked(m, NULL);
    return SM_OK;
}

static sm_status decode_verdict(const void *data, size_t len, sm_heal_event *e)
{
    Swarmmedic__V1__HealingVerdict *m =
        swarmmedic__v1__healing_verdict__unpack(NULL, len, data);
    if (m == NULL || m->decision == NULL) {
        swarmmedic__v1__healing_verdict__free_unpacked(m, NULL);
        return SM_ERR_DECODE;
    }
    put(e->id, sizeof e->id, m->command_id);
    put(e->swarm, sizeof e->swarm, m->decision->swarm);
    put(e->failure_type, sizeof e->failure_type, failure_of(m->failure_type));
    put(e->answers, sizeof e->answers, m->answers);
    e->at_ms = m->decision->decided_at_ms;
    e->verdict = (int)m->verdict;
    e->first_evidence_ms = m->first_evidence_ms;
    e->detected_at_ms = m->detected_at_ms;
    e->recovered_at_ms = m->recovered_at_ms;
    swarmmedic__v1__healing_verdict__free_unpacked(m, NULL);
    return SM_OK;
}

sm_status sm_score_decode_heal(const char *subject, const void *data,
                               size_t len, const char *const *headers,
                               sm_heal_event *out, bool *is)
{
    sm_heal_kind kind;
    const char *action;
    *is = false;
    if (subject == NULL || !heal_subject(subject, &kind, &action))
        return SM_OK;
    sm_heal_event e;
    memset(&e, 0, sizeof e);
    e.kind = kind;
    put(e.action, sizeof e.action, action);
    sm_status s = kind == SM_HEAL_COMMAND
                      ? decode_command(data, len, headers, &e)
                      : decode_verdict(data, len, &e);
    if (s == SM_OK) {
        *out = e;
        *is = true;
    }
    return s;
}

/* ---- the figures ------------------------------------------------------- */

/* Scratch of the computation: one slot per event. */
typedef struct heal_scratch {
    int64_t *raise, *recover;
    bool *answered;             /* per command event: a verdict came */
} heal_scratch;

/* The command event with id (first one), or -1. */
static long command_of(const sm_heal_event *e, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (e[i].kind == SM_HEAL_COMMAND && strcmp(e[i].id, id) == 0)
            return (long)i;
    return -1;
}

/* Fills f from the events of failure type `type` (NULL: all). */
static void figures_for(sm_heal_figures *f, const char *type,
                        const sm_heal_event *e, size_t n, heal_scratch *k)
{
    for (size_t i = 0; i < n; i++) {
        const sm_heal_event *x = &e[i];
        if (type && strcmp(x->failure_type, type) != 0)
            continue;
        if (x->kind == SM_HEAL_COMMAND) {
            f->commands++;
            f->act += !x->escalation && x->autonomy == ACT;
            f->escalations += x->escalation;
            continue;
        }
        f->verdicts++;
        f->verified += x->verdict == VERIFIED;
        f->failed += x->verdict == FAILED;
        f->preempted += x->verdict == PREEMPTED;
        f->superseded += x->verdict == SUPERSEDED;
        long c = command_of(e, n, x->id);
        if (c >= 0 && e[c].autonomy == ACT) {
            f->act_verified += x->verdict == VERIFIED;
            f->act_failed += x->verdict == FAILED;
        }
        if (x->first_evidence_ms > 0 && x->detected_at_ms >= x->first_evidence_ms)
            k->raise[f->raise_n++] = x->detected_at_ms - x->first_evidence_ms;
        if (x->verdict == VERIFIED && x->first_evidence_ms > 0 &&
            x->recovered_at_ms >= x->first_evidence_ms)
            k->recover[f->recover_n++] =
                x->recovered_at_ms - x->first_evidence_ms;
    }
    f->success = f->act_verified + f->act_failed
                     ? (double)f->act_verified /
                           (double)(f->act_verified + f->act_failed)
                     : NAN;
    sm_score_stats(k->raise, f->raise_n, &f->raise_med_s, NULL,
                   &f->raise_max_s);
    f->detect_med_s = f->detect_max_s = NAN;
    sm_score_stats(k->recover, f->recover_n, &f->recover_med_s, NULL,
                   &f->recover_max_s);
}

/* Storms, duplicates, bad id headers, incidents and unanswered commands,
 * in the order drawn. */
static void judge_order(const sm_heal_event *e, size_t n, sm_score_healing *h,
                        heal_scratch *k)
{
    for (size_t i = 0; i < n; i++) {
        const sm_heal_event *x = &e[i];
        if (x->kind == SM_HEAL_VERDICT) {
            long c = command_of(e, i, x->id);
            if (c >= 0)
                k->answered[c] = true;
            continue;
        }
        bool dup = false, storm = false, seen = false;
        for (size_t j = 0; j < i; j++) {
            const sm_heal_event *y = &e[j];
            if (y->kind != SM_HEAL_COMMAND)
                continue;
            dup |= strcmp(y->id, x->id) == 0;
            bool same = x->answers[0] && strcmp(y->answers, x->answers) == 0;
            seen |= same;
            storm |= same && !y->escalation && !k->answered[j];
        }
        h->duplicates += dup;
        h->storms += storm && !dup;
        h->incidents += x->answers[0] && !seen;
        h->id_header_bad += !x->id_header_ok;
    }
    for (size_t i = 0; i < n; i++)      /* a duplicate is not another */
        h->unanswered += e[i].kind == SM_HEAL_COMMAND && !e[i].escalation &&
                         e[i].autonomy == ACT && !k->answered[i] &&
                         command_of(e, i, e[i].id) < 0;
}

sm_status sm_score_heal_compute(const sm_heal_event *e, size_t n,
                                sm_score_healing *out)
{
    bool on = out->on;
    memset(out, 0, sizeof *out);
    out->on = on;
    size_t room = n ? n : 1;
    heal_scratch k = {
        .raise = calloc(room, sizeof *k.raise),
        .recover = calloc(room, sizeof *k.recover),
        .answered = calloc(room, sizeof *k.answered),
    };
    out->by_type = calloc(room, sizeof *out->by_type);
    sm_status s = SM_ERR_NOMEM;
    if (!k.raise || !k.recover || !k.answered || !out->by_type)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        bool known = false;
        for (size_t t = 0; t < out->n_types; t++)
            known |= strcmp(out->by_type[t].type, e[i].failure_type) == 0;
        if (!known)
            put(out->by_type[out->n_types++].type, SM_SCORE_TYPE_MAX,
                e[i].failure_type);
    }
    for (size_t t = 0; t < out->n_types; t++)
        figures_for(&out->by_type[t], out->by_type[t].type, e, n, &k);
    put(out->all.type, sizeof out->all.type, "all");
    figures_for(&out->all, NULL, e, n, &k);
    judge_order(e, n, out, &k);
    out->per_incident = out->incidents
                            ? (double)out->all.commands / (double)out->incidents
                            : NAN;
    s = SM_OK;
cleanup:
    free(k.raise);
    free(k.recover);
    free(k.answered);
    return s;
}

void sm_score_heal_detect(sm_score_report *r)
{
    sm_score_healing *h = &r->heal;
    const sm_score_section *fs = &r->failure;
    for (size_t i = 0; i < h->n_types; i++)
        for (size_t j = 0; j < fs->n_types; j++)
            if (strcmp(h->by_type[i].type, fs->by_type[j].type) == 0) {
                h->by_type[i].detect_med_s = fs->by_type[j].delay_med_s;
                h->by_type[i].detect_max_s = fs->by_type[j].delay_max_s;
            }
    h->all.detect_med_s = fs->all.delay_med_s;
    h->all.detect_max_s = fs->all.delay_max_s;
}

void sm_score_healing_free(sm_score_healing *h)
{
    if (h == NULL)
        return;
    free(h->by_type);
    h->by_type = NULL;
    h->n_types = 0;
}

/* ---- printing ---------------------------------------------------------- */

static const char *med_max(char *buf, size_t cap, double med, double max)
{
    if (isnan(med))
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%.1f/%.1f", med, max);
    return buf;
}

static void heal_row(FILE *out, const sm_heal_figures *f)
{
    char ok[32] = "-", d[32], r[32];
    if (!isnan(f->success))
        snprintf(ok, sizeof ok, "%zu/%zu %.2f", f->act_verified,
                 f->act_verified + f->act_failed, f->success);
    fprintf(out, "%-18s %5zu %5zu %5zu %6zu %5zu %5zu  %-11s %-11s %-11s\n",
            f->type, f->commands, f->escalations, f->verified, f->failed,
            f->preempted, f->superseded, ok,
            med_max(d, sizeof d, f->detect_med_s, f->detect_max_s),
            med_max(r, sizeof r, f->recover_med_s, f->recover_max_s));
}

void sm_score_print_healing(const sm_score_report *r, FILE *out)
{
    const sm_score_healing *h = &r->heal;
    if (!h->on)
        return;
    char pi[32] = "-";
    if (!isnan(h->per_incident))
        snprintf(pi, sizeof pi, "%.2f", h->per_incident);
    fprintf(out, "healing: %zu commands (%zu act, %zu escalations), %zu "
                 "incidents, %s commands per incident\n",
            h->all.commands, h->all.act, h->all.escalations, h->incidents, pi);
    fprintf(out, "%-18s %5s %5s %5s %6s %5s %5s  %-11s %-11s %-11s\n",
            "failure type", "cmds", "escal", "verif", "failed", "preem",
            "super", "success", "detect s", "recover s");
    fprintf(out, "%-18s %5s %5s %5s %6s %5s %5s  %-11s %-11s %s\n", "", "",
            "", "", "", "", "", "act", "med/max", "med/max");
    for (size_t i = 0; i < h->n_types; i++)
        heal_row(out, &h->by_type[i]);
    heal_row(out, &h->all);
    fprintf(out, "  storms %zu, duplicate ids %zu, bad Nats-Msg-Id %zu, "
                 "unanswered %zu, refused by the coordinator hook %zu\n",
            h->storms, h->duplicates, h->id_header_bad, h->unanswered,
            h->heal_errors);
    if (h->coord_on)
        fprintf(out, "  coordinator: %llu received, %llu duplicates, %llu "
                     "advice, %llu escalations; done %llu, failed %llu, "
                     "rejected %llu; %llu below quorum\n",
                (unsigned long long)h->coord.received,
                (unsigned long long)h->coord.duplicates,
                (unsigned long long)h->coord.advice,
                (unsigned long long)h->coord.escalations,
                (unsigned long long)h->coord.done,
                (unsigned long long)h->coord.failed,
                (unsigned long long)h->coord.rejected,
                (unsigned long long)h->coord.below_quorum);
}

static void hline_n(FILE *out, const char *pre, const char *fig, size_t v)
{
    fprintf(out, "score.%s.%s %zu count\n", pre, fig, v);
}

static void hline_d(FILE *out, const char *pre, const char *fig, double v,
                    const char *unit)
{
    if (!isnan(v))
        fprintf(out, "score.%s.%s %.4g %s\n", pre, fig, v, unit);
}

static void heal_lines(FILE *out, const char *name, const sm_heal_figures *f)
{
    char pre[SM_SCORE_ID_MAX + SM_SCORE_TYPE_MAX + 8];
    snprintf(pre, sizeof pre, "%s.heal.%s", name, f->type);
    hline_n(out, pre, "commands", f->commands);
    hline_n(out, pre, "act", f->act);
    hline_n(out, pre, "escalations", f->escalations);
    hline_n(out, pre, "verified", f->verified);
    hline_n(out, pre, "failed", f->failed);
    hline_n(out, pre, "preempted", f->preempted);
    hline_n(out, pre, "superseded", f->superseded);
    hline_n(out, pre, "act_verified", f->act_verified);
    hline_n(out, pre, "act_failed", f->act_failed);
    hline_d(out, pre, "success", f->success, "ratio");
    hline_d(out, pre, "detect_med", f->detect_med_s, "s");
    hline_d(out, pre, "detect_max", f->detect_max_s, "s");
    hline_d(out, pre, "raise_med", f->raise_med_s, "s");
    hline_d(out, pre, "raise_max", f->raise_max_s, "s");
    hline_d(out, pre, "recover_med", f->recover_med_s, "s");
    hline_d(out, pre, "recover_max", f->recover_max_s, "s");
}

void sm_score_print_healing_lines(const sm_score_report *r, const char *name,
                                  FILE *out)
{
    const sm_score_healing *h = &r->heal;
    if (!h->on)
        return;
    for (size_t i = 0; i < h->n_types; i++)
        heal_lines(out, name, &h->by_type[i]);
    heal_lines(out, name, &h->all);
    char pre[SM_SCORE_ID_MAX + 8];
    snprintf(pre, sizeof pre, "%s.heal", name);
    hline_n(out, pre, "incidents", h->incidents);
    hline_d(out, pre, "per_incident", h->per_incident, "ratio");
    hline_n(out, pre, "storms", h->storms);
    hline_n(out, pre, "duplicates", h->duplicates);
    hline_n(out, pre, "id_header_bad", h->id_header_bad);
    hline_n(out, pre, "unanswered", h->unanswered);
    hline_n(out, pre, "heal_errors", h->heal_errors);
    if (h->coord_on) {
        hline_n(out, pre, "coord_received", h->coord.received);
        hline_n(out, pre, "coord_duplicates", h->coord.duplicates);
        hline_n(out, pre, "coord_done", h->coord.done);
        hline_n(out, pre, "coord_failed", h->coord.failed);
        hline_n(out, pre, "coord_rejected", h->coord.rejected);
        hline_n(out, pre, "below_quorum", h->coord.below_quorum);
    }
}
