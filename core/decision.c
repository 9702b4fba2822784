/*
 * decision.c - decision strings, the one decision-id minter and the
 * decision buffer.
 */
#include "decision.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

const char *sm_bn_type_str(sm_bn_type t)
{
    switch (t) {
    case SM_BN_TOKEN_EXHAUSTION:  return "token_exhaustion";
    case SM_BN_QUOTA_EXCEEDED:    return "quota_exceeded";
    case SM_BN_SLOW_AGENT:        return "slow_agent";
    case SM_BN_QUEUE_BACKLOG:     return "queue_backlog";
    case SM_BN_CONSENSUS_TIMEOUT: return "consensus_timeout";
    }
    return "unknown";
}

const char *sm_fail_type_str(sm_fail_type t)
{
    switch (t) {
    case SM_FAIL_AGENT_DOWN:        return "agent_down";
    case SM_FAIL_TASK_TIMEOUT:      return "task_timeout";
    case SM_FAIL_TOKEN_EXHAUSTION:  return "token_exhaustion";
    case SM_FAIL_MEMORY_EXHAUSTION: return "memory_exhaustion";
    case SM_FAIL_QUORUM_LOSS:       return "quorum_loss";
    case SM_FAIL_AGENT_STUCK:       return "agent_stuck";
    case SM_FAIL_QUEUE_OVERFLOW:    return "queue_overflow";
    }
    return "unknown";
}

const char *sm_pred_source_str(sm_pred_source s)
{
    switch (s) {
    case SM_SRC_PATTERN:        return "pattern";
    case SM_SRC_RESOURCE_TREND: return "resource_trend";
    case SM_SRC_AGENT_HEALTH:   return "agent_health";
    case SM_SRC_QUEUE_GROWTH:   return "queue_growth";
    case SM_SRC_BOTTLENECK:     return "bottleneck";
    }
    return "unknown";
}

const char *sm_pred_transition_str(sm_pred_transition t)
{
    switch (t) {
    case SM_PRED_RAISED:    return "raised";
    case SM_PRED_UPDATED:   return "updated";
    case SM_PRED_WITHDRAWN: return "withdrawn";
    case SM_PRED_FULFILLED: return "fulfilled";
    }
    return "unknown";
}

const char *sm_verdict_str(sm_verdict_kind v)
{
    switch (v) {
    case SM_VERDICT_VERIFIED:   return "verified";
    case SM_VERDICT_FAILED:     return "failed";
    case SM_VERDICT_PREEMPTED:  return "preempted";
    case SM_VERDICT_SUPERSEDED: return "superseded";
    }
    return "unknown";
}

const char *sm_severity_str(sm_severity s)
{
    switch (s) {
    case SM_SEV_LOW:      return "low";
    case SM_SEV_MEDIUM:   return "medium";
    case SM_SEV_HIGH:     return "high";
    case SM_SEV_CRITICAL: return "critical";
    }
    return "unknown";
}

const char *sm_transition_str(sm_transition_kind k)
{
    switch (k) {
    case SM_TR_RAISED:   return "raised";
    case SM_TR_UPDATED:  return "updated";
    case SM_TR_RESOLVED: return "resolved";
    }
    return "unknown";
}

sm_severity sm_severity_of(double impact)
{
    if (impact >= 0.8)
        return SM_SEV_CRITICAL;
    if (impact >= 0.6)
        return SM_SEV_HIGH;
    if (impact >= 0.4)
        return SM_SEV_MEDIUM;
    return SM_SEV_LOW;
}


static const char *const recs_token[] = {
    "Increase token budget",
    "Optimize prompts to use fewer tokens",
    "Defer low-priority tasks",
    NULL,
};
static const char *const recs_quota[] = {
    "Increase agent quota",
    "Enable dynamic scaling",
    NULL,
};
static const char *const recs_slow[] = {
    "Replace or restart the agent",
    "Reduce task complexity",
    "Route new tasks to healthier agents",
    NULL,
};
static const char *const recs_queue[] = {
    "Add agents",
    "Prioritize critical tasks",
    "Shed or defer background work",
    NULL,
};
static const char *const recs_consensus[] = {
    "Reduce the consensus threshold",
    "Check participant health",
    "Increase the round timeout",
    NULL,
};
static const char *const recs_none[] = { NULL };

const char *const *sm_bn_recommendations(sm_bn_type t)
{
    switch (t) {
    case SM_BN_TOKEN_EXHAUSTION:  return recs_token;
    case SM_BN_QUOTA_EXCEEDED:    return recs_quota;
    case SM_BN_SLOW_AGENT:        return recs_slow;
    case SM_BN_QUEUE_BACKLOG:     return recs_queue;
    case SM_BN_CONSENSUS_TIMEOUT: return recs_consensus;
    }
    return recs_none;
}

/* ------------------------------------------------------------- config */

const char *sm_signal_str(sm_signal s)
{
    switch (s) {
    case SM_SIG_TASK:      return "task";
    case SM_SIG_HEARTBEAT: return "heartbeat";
    case SM_SIG_RESOURCE:  return "resource";
    case SM_SIG_CONSENSUS: return "consensus";
    case SM_SIG_AGENT:     return "agent";
    case SM_SIG_OUTCOME:   return "outcome";
    case SM_SIG_NONE:      break;
    }
    return "";
}

/* ---------------------------------------------------------- decisions */

/* The fields naming what a decision is about: swarm, kind and type,
 * subject, when it was raised. The kind keeps a failure apart from a
 * bottleneck of the same type token (token_exhaustion is both). */
static uint64_t episode_key(const sm_decision *d)
{
    uint64_t h = sm_hash_str(SM_HASH_INIT, d->swarm);
    switch (d->kind) {
    case SM_DEC_BOTTLENECK:
        h = sm_hash_u64(h, (uint64_t)d->bn.type);
        h = sm_hash_str(h, d->subject);
        return sm_hash_u64(h, (uint64_t)d->bn.raised_at_ms);
    case SM_DEC_FAILURE:
        h = sm_hash_u64(h, (uint64_t)SM_DEC_FAILURE << 32 | (uint64_t)d->fail.type);
        h = sm_hash_str(h, d->subject);
        return sm_hash_u64(h, (uint64_t)d->fail.raised_at_ms);
    case SM_DEC_PREDICTION:
        h = sm_hash_u64(h, (uint64_t)SM_DEC_PREDICTION << 32 | (uint64_t)d->pred.type);
        h = sm_hash_str(h, d->subject);
        return sm_hash_u64(h, (uint64_t)d->pred.raised_at_ms);
    case SM_DEC_HEAL:       /* the episode it answers, its try and action */
        h = sm_hash_u64(h, (uint64_t)SM_DEC_HEAL << 32 | (uint64_t)d->heal.action);
        h = sm_hash_u64(h, d->heal.answers);
        return sm_hash_u64(h, d->heal.attempt);
    case SM_DEC_VERDICT:    /* one per command */
        h = sm_hash_u64(h, (uint64_t)SM_DEC_VERDICT << 32);
        return sm_hash_u64(h, d->verdict.command);
    }
    return h;
}

/* The transition and what tells its repeats apart, after the key. */
static uint64_t id_of(uint64_t key, uint32_t ordinal, const sm_decision *d)
{
    uint64_t h = ordinal ? sm_hash_u64(key, ordinal) : key;
    switch (d->kind) {
    case SM_DEC_BOTTLENECK:
        h = sm_hash_u64(h, (uint64_t)d->bn.transition);
        if (d->bn.transition == SM_TR_UPDATED) {
            h = sm_hash_u64(h, (uint64_t)d->at_ms);
            h = sm_hash_u64(h, (uint64_t)d->bn.severity);
        }
        return h;
    case SM_DEC_FAILURE:
        return sm_hash_u64(h, (uint64_t)d->fail.transition);
    case SM_DEC_PREDICTION:
        h = sm_hash_u64(h, (uint64_t)d->pred.transition);
        return sm_hash_u64(h, (uint64_t)d->at_ms);
    case SM_DEC_HEAL:
    case SM_DEC_VERDICT:
        return h;
    }
    return h;
}

/* The transition value, RAISED (1) opening an episode in every kind and
 * RESOLVED, WITHDRAWN or FULFILLED (3, 4) closing it. */
static uint32_t transition_of(const sm_decision *d)
{
    switch (d->kind) {
    case SM_DEC_BOTTLENECK: return (uint32_t)d->bn.transition;
    case SM_DEC_FAILURE:    return (uint32_t)d->fail.transition;
    case SM_DEC_PREDICTION: return (uint32_t)d->pred.transition;
    case SM_DEC_HEAL:
    case SM_DEC_VERDICT:    break;
    }
    return 0;
}

static bool minted(const sm_minter *m, uint64_t id)
{
    uint32_t n = m->n < SM_MINT_IDS ? m->n : SM_MINT_IDS;
    for (uint32_t i = 0; i < n; i++)
        if (m->ids[i] == id)
            return true;
    return false;
}

/* Index of the open repeat episode `key`, or SM_MINT_OPEN. */
static uint32_t open_find(const sm_minter *m, uint64_t key)
{
    for (uint32_t i = 0; i < m->n_open; i++)
        if (m->open_key[i] == key)
            return i;
    return SM_MINT_OPEN;
}

static void open_drop(sm_minter *m, uint32_t i)
{
    m->n_open--;
    memmove(&m->open_key[i], &m->open_key[i + 1],
            (m->n_open - i) * sizeof m->open_key[0]);
    memmove(&m->open_ord[i], &m->open_ord[i + 1],
            (m->n_open - i) * sizeof m->open_ord[0]);
}

static void open_add(sm_minter *m, uint64_t key, uint32_t ordinal)
{
    if (m->n_open == SM_MINT_OPEN)          /* full: forget the oldest */
        open_drop(m, 0);
    m->open_key[m->n_open] = key;
    m->open_ord[m->n_open++] = ordinal;
}

/* The id of d, distinct from every id minted before in its millisecond:
 * a repeated RAISED takes the next free episode ordinal (kept until the
 * episode closes), any other repeat the next free rank. */
static uint64_t mint_distinct(sm_minter *m, const sm_decision *d)
{
    uint64_t key = episode_key(d);
    uint32_t tr = transition_of(d), at = open_find(m, key);
    uint32_t ordinal = tr != 1 && at < SM_MINT_OPEN ? m->open_ord[at] : 0;
    uint64_t id = id_of(key, ordinal, d);
    if (tr >= 3 && at < SM_MINT_OPEN)
        open_drop(m, at);
    if (m->n >= SM_MINT_IDS)        /* past the memory: its rank decides */
        return sm_hash_u64(id, m->n);
    if (tr == 1) {
        if (at < SM_MINT_OPEN)      /* left by an episode that never closed */
            open_drop(m, at);
        while (minted(m, id))
            id = id_of(key, ++ordinal, d);
        if (ordinal > 0)
            open_add(m, key, ordinal);
    } else {
        uint64_t base = id;
        for (uint64_t rank = 1; minted(m, id); rank++)
            id = sm_hash_u64(base, rank);
    }
    m->ids[m->n] = id;
    return id;
}

void sm_decision_mint(sm_minter *m, sm_decision *d)
{
    if (m == NULL) {
        d->id = id_of(episode_key(d), 0, d);
        return;
    }
    if (m->at_ms != d->at_ms) {
        m->at_ms = d->at_ms;
        m->n = 0;
    }
    d->id = mint_distinct(m, d);
    m->n++;
}

void sm_decision_metric(sm_decision *d, const char *name, double value,
                        double threshold, uint32_t samples)
{
    if (d->n_metrics >= SM_MAX_METRICS)
        return;
    d->metrics[d->n_metrics++] = (sm_metric){name, value, threshold, samples};
}

void sm_decisions_init(sm_decisions *ds)
{
    memset(ds, 0, sizeof *ds);
}

void sm_decisions_clear(sm_decisions *ds)
{
    ds->n = 0;
}

void sm_decisions_free(sm_decisions *ds)
{
    free(ds->v);
    memset(ds, 0, sizeof *ds);
}

sm_decision *sm_decisions_push(sm_decisions *ds)
{
    if (ds == NULL)
        return NULL;
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? ds->cap * 2 : 16;
        sm_decision *v = realloc(ds->v, cap * sizeof *v); /* SM_ALLOC_OK */
        if (v == NULL) {
            ds->lost++;
            return NULL;
        }
        ds->v = v;
        ds->cap = cap;
    }
    sm_decision *d = &ds->v[ds->n++];
    memset(d, 0, sizeof *d);
    return d;
}
