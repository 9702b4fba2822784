/*
 * predict.c - predictions and their ledger (predict.h).
 *
 * Confidence (SPEC capability 4): 0.5 x similarity (how closely the signal
 * matches what precedes the failure: the forecaster's fit, or how clear
 * an agent's health signs are) + 0.3 x the source's measured accuracy +
 * 0.2 x recency (1 for a signal of now, falling to 0 over pred_margin_ms).
 * Accuracy is fulfilled / fates with pred_prior counted as three fates
 * already seen, so one early miss does not silence a source and one early
 * hit does not make it certain.
 */
#include "predict.h"

#include <string.h>

#include "agents.h"
#include "hash.h"
#include "heal.h"

#define PRIOR_WEIGHT 3.0        /* fates pred_prior stands for */

/* Happening codes for the pattern learner (pattern.h: the caller owns
 * them, < SM_PAT_CODES). */
#define PAT_BN 1                /* + sm_bn_type: 2..6 */
#define PAT_FAIL 10             /* + sm_fail_type: 11..21 */
#define PAT_DEGRADED 30         /* an agent's first DEGRADED heartbeat */

static void pat_sweep(sm_swarm *sw, sm_decisions *out);
static void pat_record(sm_swarm *sw, unsigned code, const char *subject,
                       sm_decisions *out);
#define MOVE_FRACTION 0.25      /* an ETA change worth an UPDATED */
#define MOVE_MIN_MS 30000       /* ... and at least this much, this often */

static double clamp01(double x)
{
    return x < 0.0 ? 0.0 : x > 1.0 ? 1.0 : x;
}

double sm_pred_accuracy(const sm_swarm *sw, sm_pred_source src)
{
    const sm_ledger_row *r = &sw->st.ledger.by_source[src];
    double fates = (double)r->fulfilled + r->late + r->wrong;
    return (r->fulfilled + sw->cfg.pred_prior * PRIOR_WEIGHT) /
           (fates + PRIOR_WEIGHT);
}

static double confidence(const sm_swarm *sw, sm_pred_source src,
                         double similarity, int64_t signal_age_ms)
{
    double margin = sw->cfg.pred_margin_ms > 0 ? (double)sw->cfg.pred_margin_ms
                                               : 1.0;
    double recency = clamp01(1.0 - (double)signal_age_ms / margin);
    return 0.5 * clamp01(similarity) + 0.3 * sm_pred_accuracy(sw, src) +
           0.2 * recency;
}

/* Both rows of the ledger a prediction's fate goes to. */
static void fate(sm_swarm *sw, sm_pred_source src, sm_fail_type t,
                 void (*apply)(sm_ledger_row *, double, double), double a,
                 double b)
{
    sm_ledger *l = &sw->st.ledger;
    apply(&l->by_source[0], a, b);
    apply(&l->by_source[src], a, b);
    apply(&l->by_type[t], a, b);
    sw->dirty = true;
}

static void row_raised(sm_ledger_row *r, double a, double b)
{
    (void)a, (void)b;
    r->raised++;
}

static void row_fulfilled(sm_ledger_row *r, double lead_s, double err_s)
{
    r->fulfilled++;
    r->lead_s += lead_s;
    r->eta_err_s += err_s;
}

static void row_late(sm_ledger_row *r, double lead_s, double err_s)
{
    (void)lead_s;
    r->late++;
    r->eta_err_s += err_s;
}

static void row_wrong(sm_ledger_row *r, double a, double b)
{
    (void)a, (void)b;
    r->wrong++;
}

/* The fate of a prediction raised at raised_at, expecting its failure at
 * eta, that ends now with tr: fulfilled (the failure came by eta +
 * pred_margin_ms; lead and ETA error kept), late, or wrong. */
static void row_preempted(sm_ledger_row *r, double a, double b)
{
    (void)a, (void)b;
    r->preempted++;
}

/* ... or, withdrawn while a preventive command for it stood (heal.h),
 * pre-empted. */
static void settle(sm_swarm *sw, sm_pred_source src, sm_fail_type t,
                   const char *subject, sm_pred_transition tr,
                   int64_t raised_at, int64_t eta)
{
    int64_t now = sw->st.now_ms;
    if (tr != SM_PRED_FULFILLED) {
        fate(sw, src, t,
             tr == SM_PRED_WITHDRAWN && sm_heal_preempting(sw, t, subject)
                 ? row_preempted : row_wrong,
             0, 0);
        return;
    }
    double lead = (double)(now - raised_at) / 1000.0;
    double err = (double)(now > eta ? now - eta : eta - now) / 1000.0;
    fate(sw, src, t,
         now <= eta + sw->cfg.pred_margin_ms ? row_fulfilled : row_late, lead,
         err);
}

static const char *const reasoning_of[SM_FAIL_MAX + 1] = {
    [SM_FAIL_AGENT_DOWN] = "the agent reports degraded health on consecutive "
                           "heartbeats; deaths follow such signs",
    [SM_FAIL_TOKEN_EXHAUSTION] = "token consumption trends toward the budget",
    [SM_FAIL_MEMORY_EXHAUSTION] = "the memory floor under the collection "
                                  "saw-tooth rises toward the limit",
    [SM_FAIL_QUEUE_OVERFLOW] = "pending tasks grow faster than agents drain "
                               "them",
};

static const char *const action_of[SM_FAIL_MAX + 1] = {
    [SM_FAIL_AGENT_DOWN] = "drain the agent and restart it; move its task",
    [SM_FAIL_TOKEN_EXHAUSTION] = "pause low-priority work or top up the budget",
    [SM_FAIL_MEMORY_EXHAUSTION] = "restart the leaking component before the "
                                  "limit",
    [SM_FAIL_QUEUE_OVERFLOW] = "scale up agents or shed background work",
};

/* Appends a prediction decision (minted). */
static void decide(sm_swarm *sw, sm_decisions *out, sm_fail_type t,
                   sm_pred_transition tr, sm_pred_source src,
                   const char *subject, int64_t raised_at, int64_t eta_ms,
                   double conf, sm_signal sig, const char *sig_id,
                   int64_t sig_ts)
{
    sm_decision *d = sm_decisions_push(out);
    if (d == NULL)
        return;
    int64_t now = sw->st.now_ms;
    d->kind = SM_DEC_PREDICTION;
    d->at_ms = now;
    sm_id_copy(d->swarm, sw->st.id);
    sm_id_copy(d->subject, subject);
    d->evidence.signal = sig;
    sm_id_copy(d->evidence.id, sig_id);
    d->evidence.ts_ms = sig_ts;
    d->evidence.window_start_ms = now - sw->cfg.window_ms;
    d->evidence.window_end_ms = now;
    d->pred.type = t;
    d->pred.transition = tr;
    d->pred.source = src;
    bool open = tr == SM_PRED_RAISED || tr == SM_PRED_UPDATED;
    d->pred.confidence = open ? conf : 0.0;
    d->pred.expected_in_ms = open && eta_ms > now ? eta_ms - now : 0;
    d->pred.raised_at_ms = raised_at;
    d->pred.reasoning = reasoning_of[t];
    d->pred.action = action_of[t];
    sm_decision_metric(d, "confidence", conf, sw->cfg.pred_threshold, 1);
    sm_decision_metric(d, "source_accuracy", sm_pred_accuracy(sw, src), 0,
                       sw->st.ledger.by_source[src].fulfilled +
                       sw->st.ledger.by_source[src].late +
                       sw->st.ledger.by_source[src].wrong);
    sm_decision_mint(&sw->mint, d);
}

/* ------------------------------------------------------- agent health */

/* The expected time from a first degraded sign to a death: learned from
 * the fulfilled agent-health predictions, else the configured one. */
static int64_t agent_eta(const sm_swarm *sw)
{
    const sm_ledger_row *r = &sw->st.ledger.by_type[SM_FAIL_AGENT_DOWN];
    if (r->fulfilled >= 3)
        return (int64_t)(r->lead_s / r->fulfilled * 1000.0);
    return sw->cfg.pred_agent_eta_ms;
}

static void agent_end(sm_swarm *sw, uint32_t k, sm_pred_transition tr,
                      sm_decisions *out)
{
    sm_agent_state *s = &sw->ag.v[k].s;
    settle(sw, SM_SRC_AGENT_HEALTH, SM_FAIL_AGENT_DOWN, s->id, tr,
           s->pred_at_ms, s->pred_eta_ms);
    decide(sw, out, SM_FAIL_AGENT_DOWN, tr, SM_SRC_AGENT_HEALTH, s->id,
           s->pred_at_ms, s->pred_eta_ms, s->pred_conf, SM_SIG_HEARTBEAT, s->id,
           s->hb_last_ms);
    s->pred_raised = 0;
    sm_agents_mark(&sw->ag, k);
}

void sm_pred_on_heartbeat(sm_swarm *sw, uint32_t k, const sm_heartbeat *ev,
                          sm_decisions *out)
{
    const sm_detect_config *c = &sw->cfg;
    sm_agent_state *s = &sw->ag.v[k].s;
    bool degraded = ev->state == 3;
    if (degraded) {
        s->healthy_run = 0;
        if (s->degraded_run == 0)
            pat_record(sw, PAT_DEGRADED, s->id, out);
        if (s->degraded_run < 255)
            s->degraded_run++;
    } else {
        s->degraded_run = 0;
        if (s->healthy_run < 255)
            s->healthy_run++;
    }
    if (s->pred_raised) {
        if (s->healthy_run >= c->pred_healthy_beats)
            agent_end(sw, k, SM_PRED_WITHDRAWN, out);
        return;
    }
    if (s->degraded_run < c->pred_degraded_beats)
        return;
    /* clearer the longer it lasts; slowness evidence adds to it */
    double sim = 0.5 + 0.1 * (double)(s->degraded_run - c->pred_degraded_beats + 1);
    if (s->raised || s->slow_llr > 0.0)
        sim += 0.1;
    double conf = confidence(sw, SM_SRC_AGENT_HEALTH, sim, 0);
    if (conf < c->pred_threshold)
        return;
    s->pred_raised = 1;
    s->pred_at_ms = sw->st.now_ms;
    s->pred_eta_ms = sw->st.now_ms + agent_eta(sw);
    if (sw->ag.wake[k] > s->pred_eta_ms + c->pred_margin_ms)
        sm_agents_wake(&sw->ag, k, s->pred_eta_ms + c->pred_margin_ms);
    s->pred_conf = conf;
    sm_agents_mark(&sw->ag, k);
    fate(sw, SM_SRC_AGENT_HEALTH, SM_FAIL_AGENT_DOWN, row_raised, 0, 0);
    decide(sw, out, SM_FAIL_AGENT_DOWN, SM_PRED_RAISED, SM_SRC_AGENT_HEALTH,
           s->id, s->pred_at_ms, s->pred_eta_ms, conf, SM_SIG_HEARTBEAT, s->id,
           ev->ts_ms);
}

void sm_pred_agent_failed(sm_swarm *sw, uint32_t k, sm_fail_type t,
                          sm_decisions *out)
{
    sm_agent_state *s = &sw->ag.v[k].s;
    s->degraded_run = 0;
    if (t == SM_FAIL_AGENT_DOWN && s->pred_raised)
        agent_end(sw, k, SM_PRED_FULFILLED, out);
}

void sm_pred_agent_gone(sm_swarm *sw, uint32_t k, const char *why,
                        sm_decisions *out)
{
    (void)why;
    sm_agent_state *s = &sw->ag.v[k].s;
    s->degraded_run = 0;
    s->healthy_run = 0;
    if (s->pred_raised)
        agent_end(sw, k, SM_PRED_WITHDRAWN, out);
}

int64_t sm_pred_agent_check(sm_swarm *sw, uint32_t k, sm_decisions *out)
{
    sm_agent_state *s = &sw->ag.v[k].s;
    if (!s->pred_raised)
        return SM_WAKE_NEVER;
    int64_t expires = s->pred_eta_ms + sw->cfg.pred_margin_ms;
    if (sw->st.now_ms < expires)
        return expires;
    agent_end(sw, k, SM_PRED_WITHDRAWN, out);
    return SM_WAKE_NEVER;
}

/* ------------------------------------------------------- swarm-wide */

static const sm_fail_type swarm_type[F_COUNT] = {
    [F_TOKEN] = SM_FAIL_TOKEN_EXHAUSTION,
    [F_MEMORY] = SM_FAIL_MEMORY_EXHAUSTION,
    [F_QUEUE] = SM_FAIL_QUEUE_OVERFLOW,
};

static void swarm_end(sm_swarm *sw, int f, sm_pred_transition tr,
                      sm_decisions *out)
{
    sm_pred_ep *p = &sw->st.pred[f];
    int64_t now = sw->st.now_ms;
    sm_pred_source src = (sm_pred_source)p->source;
    settle(sw, src, swarm_type[f], p->subject, tr, p->raised_at_ms, p->eta_ms);
    decide(sw, out, swarm_type[f], tr, src, p->subject, p->raised_at_ms,
           p->eta_ms, p->confidence, SM_SIG_RESOURCE, p->subject, now);
    p->raised = 0;
    sw->dirty = true;
}

/* Acts on forecaster f's verdict. */
static void swarm_apply(sm_swarm *sw, int f, const char *subject,
                        const sm_fc_verdict *v, sm_decisions *out)
{
    sm_pred_ep *p = &sw->st.pred[f];
    int64_t now = sw->st.now_ms;
    sm_pred_source src = f == F_QUEUE ? SM_SRC_QUEUE_GROWTH
                                      : SM_SRC_RESOURCE_TREND;
    switch (v->action) {
    case SM_FC_RAISE:
        if (p->raised)
            return;
        p->raised = 1;
        p->source = (uint32_t)src;
        p->raised_at_ms = now;
        p->published_ms = now;
        p->eta_ms = v->fail_at_ms;
        p->confidence = v->confidence;
        if (subject != p->subject)  /* (the sweep passes p->subject) */
            sm_id_copy(p->subject, subject);
        sw->dirty = true;
        fate(sw, src, swarm_type[f], row_raised, 0, 0);
        decide(sw, out, swarm_type[f], SM_PRED_RAISED, src, p->subject, now,
               p->eta_ms, p->confidence, SM_SIG_RESOURCE, p->subject, now);
        return;
    case SM_FC_UPDATE:
        if (!p->raised)
            return;
        p->eta_ms = v->fail_at_ms;
        p->confidence = v->confidence;
        p->published_ms = now;
        sw->dirty = true;
        decide(sw, out, swarm_type[f], SM_PRED_UPDATED, src, p->subject,
               p->raised_at_ms, p->eta_ms, p->confidence, SM_SIG_RESOURCE,
               p->subject, now);
        return;
    case SM_FC_WITHDRAW:
        if (p->raised)
            swarm_end(sw, f, SM_PRED_WITHDRAWN, out);
        return;
    case SM_FC_NONE:
        return;
    }
}

/* Runs forecaster f over its trend now (a new point, or a moved limit). */
static void swarm_evaluate(sm_swarm *sw, int f, const char *subject,
                           bool reset, sm_decisions *out)
{
    sm_swarm_state *st = &sw->st;
    if (st->fail[f].raised) {   /* the failure is here: nothing to forecast */
        sm_forecast_init(&st->fc[f]);
        return;
    }
    double limit = st->fc_limit[f];
    if (f == F_MEMORY)          /* the saw's peaks reach the limit first */
        limit -= sm_trend_spread(&st->trend[f]);
    if (f == F_TOKEN && st->topup_seen > 0 &&
        st->fc_value[f] * sw->cfg.token_fail / limit <
            st->topup_seen + sw->cfg.pred_topup_margin) {
        /* its operators (or its budget period) renew it before this */
        if (st->pred[f].raised)
            swarm_end(sw, f, SM_PRED_WITHDRAWN, out);
        sm_forecast_init(&st->fc[f]);
        return;
    }
    sm_pred_source src = f == F_QUEUE ? SM_SRC_QUEUE_GROWTH
                                      : SM_SRC_RESOURCE_TREND;
    sm_fc_verdict v = sm_forecast_eval(&st->fc[f], &sw->fc_cfg[f],
                                       &st->trend[f], st->now_ms, limit,
                                       sm_pred_accuracy(sw, src), reset);
    sw->dirty = true;
    swarm_apply(sw, f, subject, &v, out);
}

void sm_pred_sample(sm_swarm *sw, int f, const char *subject, int64_t ts_ms,
                    double value, double limit, sm_decisions *out)
{
    sm_swarm_state *st = &sw->st;
    unsigned flags = sm_trend_add(&st->trend[f], &sw->trend_cfg[f], ts_ms,
                                  value);
    bool moved = st->fc_limit[f] != limit;
    bool topped = moved && st->fc_limit[f] > 0 && limit > st->fc_limit[f];
    bool renewed = (flags & SM_TREND_RESET) != 0;
    if (f == F_TOKEN && (topped || renewed) && st->fc_limit[f] > 0) {
        /* a top-up, or a budget period that started afresh: at what
         * usage was the budget renewed? */
        double was = st->fc_value[f] * sw->cfg.token_fail / st->fc_limit[f];
        if (was > st->topup_seen)
            st->topup_seen = was;
    }
    st->fc_limit[f] = limit;
    st->fc_value[f] = value;
    if (!st->pred[f].raised)    /* who a raise would be about */
        sm_id_copy(st->pred[f].subject, subject);
    sw->dirty = true;
    if (!(flags & SM_TREND_POINT) && !moved)
        return;
    swarm_evaluate(sw, f, subject,
                   moved || (flags & (SM_TREND_CHANGE | SM_TREND_RESET)), out);
}

void sm_pred_sweep(sm_swarm *sw, sm_decisions *out)
{
    sm_swarm_state *st = &sw->st;
    pat_sweep(sw, out);
    for (int f = 0; f < F_COUNT; f++) {
        sm_pred_ep *p = &st->pred[f];
        if (p->raised && st->now_ms > p->eta_ms + sw->cfg.pred_margin_ms) {
            swarm_end(sw, f, SM_PRED_WITHDRAWN, out);   /* expired */
            sm_forecast_init(&st->fc[f]);
        }
        if (!st->trend[f].started)
            continue;
        unsigned flags = sm_trend_tick(&st->trend[f], &sw->trend_cfg[f],
                                       st->now_ms);
        if (flags & SM_TREND_POINT)
            swarm_evaluate(sw, f, p->subject,
                           (flags & (SM_TREND_CHANGE | SM_TREND_RESET)) != 0,
                           out);
    }
}

void sm_pred_swarm_failed(sm_swarm *sw, int f, sm_decisions *out)
{
    if (sw->st.pred[f].raised)
        swarm_end(sw, f, SM_PRED_FULFILLED, out);
    sm_forecast_init(&sw->st.fc[f]);
}

/* ------------------------------------------------------- learned patterns */


static const sm_fail_type pat_targets[] = {
    SM_FAIL_AGENT_DOWN,        SM_FAIL_AGENT_STUCK,
    SM_FAIL_TASK_TIMEOUT,      SM_FAIL_QUORUM_LOSS,
    SM_FAIL_TOKEN_EXHAUSTION,  SM_FAIL_MEMORY_EXHAUSTION,
    SM_FAIL_QUEUE_OVERFLOW,
};

static void pat_end(sm_swarm *sw, sm_fail_type t, sm_pred_transition tr,
                    sm_decisions *out)
{
    sm_pred_ep *p = &sw->st.pat_pred[t];
    int64_t now = sw->st.now_ms;
    settle(sw, SM_SRC_PATTERN, t, p->subject, tr, p->raised_at_ms, p->eta_ms);
    decide(sw, out, t, tr, SM_SRC_PATTERN, p->subject, p->raised_at_ms,
           p->eta_ms, p->confidence, SM_SIG_NONE, "", now);
    p->raised = 0;
    sw->dirty = true;
}

/* What the learned patterns forecast now, for every failure type. */
static void pat_forecast(sm_swarm *sw, sm_decisions *out)
{
    int64_t now = sw->st.now_ms;
    for (size_t i = 0; i < sizeof pat_targets / sizeof pat_targets[0]; i++) {
        sm_fail_type t = pat_targets[i];
        sm_pred_ep *p = &sw->st.pat_pred[t];
        sm_pattern_forecast fc;
        if (p->raised ||
            !sm_pattern_predict(&sw->st.pat, now, PAT_FAIL + (unsigned)t, &fc))
            continue;
        double margin = sw->cfg.pred_margin_ms > 0 ? (double)sw->cfg.pred_margin_ms
                                                   : 1.0;
        double recency = 1.0 - (double)(now - fc.trigger_ts_ms) / margin;
        double conf = 0.5 * fc.confidence +
                      0.3 * sm_pred_accuracy(sw, SM_SRC_PATTERN) +
                      0.2 * (recency < 0 ? 0 : recency > 1 ? 1 : recency);
        if (conf < sw->cfg.pred_threshold)
            continue;
        p->raised = 1;
        p->source = SM_SRC_PATTERN;
        p->raised_at_ms = now;
        p->published_ms = now;
        p->eta_ms = now + fc.eta_ms;
        p->confidence = conf;
        memset(p->subject, 0, sizeof p->subject);  /* swarm-wide */
        sw->dirty = true;
        fate(sw, SM_SRC_PATTERN, t, row_raised, 0, 0);
        decide(sw, out, t, SM_PRED_RAISED, SM_SRC_PATTERN, p->subject, now,
               p->eta_ms, conf, SM_SIG_NONE, "", now);
    }
}

static void pat_record(sm_swarm *sw, unsigned code, const char *subject,
                       sm_decisions *out)
{
    uint32_t h = (uint32_t)sm_hash_str(SM_HASH_INIT, subject ? subject : "");
    if (sm_pattern_record(&sw->st.pat, sw->st.now_ms, code, h) != SM_OK)
        return;
    sw->dirty = true;
    pat_forecast(sw, out);
}

void sm_pred_happened(sm_swarm *sw, sm_decision_kind kind, int type,
                      const char *subject, sm_decisions *out)
{
    if (kind == SM_DEC_FAILURE && type > 0 && type <= SM_FAIL_MAX &&
        sw->st.pat_pred[type].raised)
        pat_end(sw, (sm_fail_type)type, SM_PRED_FULFILLED, out);
    if (kind == SM_DEC_BOTTLENECK && type > 0 && type <= SM_BN_COUNT)
        pat_record(sw, PAT_BN + (unsigned)type, subject, out);
    else if (kind == SM_DEC_FAILURE && type > 0 && type <= SM_FAIL_MAX)
        pat_record(sw, PAT_FAIL + (unsigned)type, subject, out);
}

/* Tick: a pattern prediction whose time plus margin passed is withdrawn. */
static void pat_sweep(sm_swarm *sw, sm_decisions *out)
{
    for (size_t i = 0; i < sizeof pat_targets / sizeof pat_targets[0]; i++) {
        sm_fail_type t = pat_targets[i];
        const sm_pred_ep *p = &sw->st.pat_pred[t];
        if (p->raised && sw->st.now_ms > p->eta_ms + sw->cfg.pred_margin_ms)
            pat_end(sw, t, SM_PRED_WITHDRAWN, out);
    }
}
