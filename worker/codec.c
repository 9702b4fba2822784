#include "codec.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swarm_medic.pb-c.h"

/* ---- decode arena ----------------------------------------------------
 * protobuf-c allocates every sub-object of a message through the
 * allocator it is given. We hand it a bump arena that is reset before each
 * decode, so steady-state decoding allocates nothing. A message larger than
 * the arena makes that decode fall back to malloc for the overflow (up to
 * OVERFLOW_MAX blocks); the arena is then grown to what the message
 * needed. A message that needs more than the arena and its overflow can
 * give (hundreds of repeated entries) is decoded again on an arena grown
 * to twice what it had asked for, so every valid message decodes the
 * first time; the arena stops growing at ARENA_MAX (a message that needs
 * more is rejected as undecodable). */

#define ARENA_INITIAL (16 * 1024)
#define ARENA_MAX ((size_t)64 << 20)
#define OVERFLOW_MAX 256

typedef struct arena {
    uint8_t *base;
    size_t cap;
    size_t used;
    size_t want;                /* bytes the last message needed */
    bool refused;               /* an allocation of this decode failed */
    void *overflow[OVERFLOW_MAX];
    size_t n_overflow;
} arena;

struct sm_codec {
    arena ar;
    ProtobufCAllocator alloc;
    uint8_t *out;
    size_t out_cap;
};

static void *arena_alloc(void *ud, size_t size)
{
    arena *a = ud;
    size = (size + 15) & ~(size_t)15;
    a->want += size;
    if (a->used + size <= a->cap) {
        void *p = a->base + a->used;
        a->used += size;
        return p;
    }
    void *p = a->n_overflow < OVERFLOW_MAX ? malloc(size) : NULL;
    if (p)
        a->overflow[a->n_overflow++] = p;
    else
        a->refused = true;
    return p;
}

static void arena_free(void *ud, void *p)
{
    (void)ud;
    (void)p;                    /* released in bulk by arena_reset */
}

/* Makes the arena at least `need` bytes (doubling, up to ARENA_MAX).
 * Errors: SM_ERR_FULL (over ARENA_MAX), SM_ERR_NOMEM. */
static sm_status arena_reserve(arena *a, size_t need)
{
    if (need > ARENA_MAX)
        return SM_ERR_FULL;
    size_t cap = a->cap;
    while (cap < need)
        cap *= 2;
    if (cap > ARENA_MAX)
        cap = ARENA_MAX;
    if (cap == a->cap)
        return SM_OK;
    uint8_t *nb = realloc(a->base, cap);
    if (!nb)
        return SM_ERR_NOMEM;
    a->base = nb;
    a->cap = cap;
    return SM_OK;
}

static void arena_reset(arena *a)
{
    for (size_t i = 0; i < a->n_overflow; i++)
        free(a->overflow[i]);
    if (a->n_overflow > 0 && a->want > a->cap)
        arena_reserve(a, a->want);      /* best effort: overflow again */
    a->n_overflow = 0;
    a->used = 0;
    a->want = 0;
    a->refused = false;
}

/* Decodes a message of type desc from buf into the arena. A decode the
 * arena ran short for is retried on a bigger one. Returns the message
 * (valid until the next decode) or NULL with *s set: SM_ERR_DECODE (not
 * such a message, or one needing over ARENA_MAX), SM_ERR_NOMEM. */
static ProtobufCMessage *decode(sm_codec *c,
                                const ProtobufCMessageDescriptor *desc,
                                const void *buf, size_t len, sm_status *s)
{
    for (;;) {
        arena_reset(&c->ar);
        ProtobufCMessage *m = protobuf_c_message_unpack(desc, &c->alloc, len,
                                                        (const uint8_t *)buf);
        if (m) {
            *s = SM_OK;
            return m;
        }
        if (!c->ar.refused) {
            *s = SM_ERR_DECODE;
            return NULL;
        }
        size_t need = 2 * c->ar.want;
        arena_reset(&c->ar);
        *s = arena_reserve(&c->ar, need);
        if (*s != SM_OK) {
            *s = *s == SM_ERR_NOMEM ? SM_ERR_NOMEM : SM_ERR_DECODE;
            return NULL;
        }
    }
}

sm_status sm_codec_create(sm_codec **out)
{
    if (!out)
        return SM_ERR_INVALID;
    sm_codec *c = calloc(1, sizeof *c);
    if (!c)
        return SM_ERR_NOMEM;
    c->ar.base = malloc(ARENA_INITIAL);
    c->out_cap = 4096;
    c->out = malloc(c->out_cap);
    if (!c->ar.base || !c->out) {
        sm_codec_destroy(c);
        return SM_ERR_NOMEM;
    }
    c->ar.cap = ARENA_INITIAL;
    c->alloc.alloc = arena_alloc;
    c->alloc.free = arena_free;
    c->alloc.allocator_data = &c->ar;
    *out = c;
    return SM_OK;
}

void sm_codec_destroy(sm_codec *c)
{
    if (!c)
        return;
    arena_reset(&c->ar);
    free(c->ar.base);
    free(c->out);
    free(c);
}

/* ---- subjects ------------------------------------------------------- */

/* Input subjects are swarm.<swarm>.<kind>.<id>; a decision's evidence
 * names one the same way. The <kind> tokens are the core's signal names
 * (core/decision.h): an input kind and the signal it carries are one. */
#define INPUT_ROOT "swarm."
_Static_assert((int)SM_IN_TASK == (int)SM_SIG_TASK &&
               (int)SM_IN_HEARTBEAT == (int)SM_SIG_HEARTBEAT &&
               (int)SM_IN_RESOURCE == (int)SM_SIG_RESOURCE &&
               (int)SM_IN_CONSENSUS == (int)SM_SIG_CONSENSUS &&
               (int)SM_IN_AGENT == (int)SM_SIG_AGENT &&
               (int)SM_IN_OUTCOME == (int)SM_SIG_OUTCOME,
               "input kinds and core signals must keep the same values");

const char *sm_input_kind_str(sm_input_kind k)
{
    if (k < SM_IN_TASK || k > SM_IN_OUTCOME)
        return "unknown";
    return sm_signal_str((sm_signal)k);
}

/* Whether [s, end) may name a swarm or an entity: the swarm token goes
 * into output subjects (medic.<swarm>....), so no wildcard byte ('*',
 * '>'), and no space or control byte (C0, DEL). */
static bool token_ok(const char *s, const char *end)
{
    for (const unsigned char *p = (const unsigned char *)s;
         p < (const unsigned char *)end; p++)
        /* printable is 0x21..0x7e: one unsigned compare for the rest */
        if ((unsigned char)(*p - 0x21) > 0x7e - 0x21 || *p == '*' || *p == '>')
            return false;
    return true;
}

/* Copies the token [s, end) into dst; false if empty or too long. */
static bool copy_token(char *dst, const char *s, const char *end)
{
    size_t n = (size_t)(end - s);
    if (n == 0 || n >= SM_ID_MAX)
        return false;
    memcpy(dst, s, n);
    dst[n] = 0;
    return true;
}

/* Byte classes of an input subject: 0 a byte a token may hold, 1 the
 * end of a token (NUL, '.'), 2 one it may not (token_ok's rule). */
static const unsigned char subject_class[256] = {
    1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

/* Scans one token from s to the next '.' or the end: its end, and
 * whether every byte is one a token may hold. */
static const char *scan_token(const char *s, bool *ok)
{
    const unsigned char *p = (const unsigned char *)s;
    bool good = true;
    for (;;) {
        unsigned char c = subject_class[*p];
        if (c == 1)
            break;
        good = good && c == 0;
        p++;
    }
    *ok = good;
    return (const char *)p;
}

sm_status sm_subject_parse(const char *subject, sm_subject *out,
                           const char **why)
{
    const char *why_local;
    if (!why)
        why = &why_local;
    if (!subject || !out) {
        *why = "no subject";
        return SM_ERR_INVALID;
    }
    if (strncmp(subject, INPUT_ROOT, sizeof INPUT_ROOT - 1) != 0) {
        *why = "subject does not start with swarm.";
        return SM_ERR_INVALID;
    }
    out->id_in_payload = false;     /* the caller's to set */
    /* one pass: swarm, kind and id tokens, each checked as it is read */
    bool sw_ok, kind_ok, id_ok;
    const char *sw = subject + sizeof INPUT_ROOT - 1;
    const char *dot1 = scan_token(sw, &sw_ok);
    const char *dot2 = *dot1 ? scan_token(dot1 + 1, &kind_ok) : dot1;
    if (!*dot2) {
        *why = "subject is not swarm.<swarm>.<kind>.<id>";
        return SM_ERR_INVALID;
    }
    const char *id = dot2 + 1;
    const char *id_end = scan_token(id, &id_ok);
    if (*id_end) {
        *why = "subject has more than four tokens";
        return SM_ERR_INVALID;
    }
    if (!copy_token(out->swarm, sw, dot1)) {
        *why = "swarm token empty or longer than 63 bytes";
        return SM_ERR_INVALID;
    }
    if (!copy_token(out->id, id, id_end)) {
        *why = "id token empty or longer than 63 bytes";
        return SM_ERR_INVALID;
    }
    if (!sw_ok || !id_ok) {
        *why = "swarm or id token holds a wildcard ('*', '>'), a space or a "
               "control byte";
        return SM_ERR_INVALID;
    }
    size_t klen = (size_t)(dot2 - dot1 - 1);
    for (int k = SM_IN_TASK; k <= SM_IN_OUTCOME; k++) {
        const char *name = sm_signal_str((sm_signal)k);
        if (strlen(name) == klen && memcmp(name, dot1 + 1, klen) == 0) {
            out->kind = (sm_input_kind)k;
            return SM_OK;
        }
    }
    *why = "unknown event kind in subject";
    return SM_ERR_INVALID;
}

/* ---- decoding ------------------------------------------------------- */

/* Resolves the payload id against the subject's: empty takes the
 * subject's; otherwise they must be equal. With id_in_payload the
 * payload's is the id and must be there. */
static bool same_id(const char *payload, const sm_subject *subj,
                    const char **resolved)
{
    if (subj->id_in_payload) {
        /* the subject token's rule, since no subject checked it */
        bool ok = false;
        const char *end = payload ? scan_token(payload, &ok) : NULL;
        *resolved = payload;
        return ok && !*end && end > payload && end - payload < SM_ID_MAX;
    }
    if (!payload || !payload[0]) {
        *resolved = subj->id;
        return true;
    }
    *resolved = payload;
    return strcmp(payload, subj->id) == 0;
}

/* A failed decode's status, with the reason for the dead letter. */
static sm_status undecoded(sm_status s, const char **why, const char *not_a)
{
    *why = s == SM_ERR_NOMEM ? "out of memory decoding the payload" : not_a;
    return s;
}

sm_status sm_codec_task(sm_codec *c, const sm_subject *subj, const void *buf,
                        size_t len, sm_task_event *out, const char **why)
{
    sm_status s;
    Swarmmedic__V1__TaskEvent *m = (void *)decode(
        c, &swarmmedic__v1__task_event__descriptor, buf, len, &s);
    if (!m)
        return undecoded(s, why, "payload is not a TaskEvent");
    if (m->ts_ms <= 0) {
        *why = "TaskEvent has no ts_ms (event time)";
        return SM_ERR_INVALID;
    }
    if (m->kind < SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_QUEUED ||
        m->kind > SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_CANCELLED) {
        *why = "TaskEvent kind unspecified or unknown";
        return SM_ERR_INVALID;
    }
    if ((int)m->priority > SWARMMEDIC__V1__PRIORITY__PRIORITY_BACKGROUND ||
        (int)m->priority < 0) {
        *why = "TaskEvent priority unknown";
        return SM_ERR_INVALID;
    }
    const char *agent;
    bool unassigned = subj->id_in_payload && (!m->agent || !m->agent[0]) &&
                      m->kind == SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_QUEUED;
    if (unassigned)
        agent = "";     /* queued before assignment: no agent (the core's rule) */
    else if (!same_id(m->agent, subj, &agent)) {
        *why = subj->id_in_payload
                   ? "TaskEvent agent empty, over 63 bytes or not a subject token "
                     "(subject_ids = payload)"
                   : "TaskEvent agent differs from the subject's agent";
        return SM_ERR_INVALID;
    }
    if (m->task_type && strlen(m->task_type) >= SM_ID_MAX) {
        *why = "TaskEvent task_type longer than 63 bytes";
        return SM_ERR_INVALID;
    }
    out->ts_ms = m->ts_ms;
    out->agent = agent;
    out->task_type = m->task_type ? m->task_type : "";
    out->task_id = m->task_id ? m->task_id : "";
    out->kind = (sm_task_kind)m->kind;
    out->priority = m->priority ? (sm_priority)m->priority : SM_PRIO_MEDIUM;
    out->tokens_used = m->tokens_used;
    out->duration_ms = m->duration_ms;
    return SM_OK;
}

sm_status sm_codec_heartbeat(sm_codec *c, const sm_subject *subj,
                             const void *buf, size_t len, sm_heartbeat *out,
                             const char **why)
{
    sm_status s;
    Swarmmedic__V1__Heartbeat *m = (void *)decode(
        c, &swarmmedic__v1__heartbeat__descriptor, buf, len, &s);
    if (!m)
        return undecoded(s, why, "payload is not a Heartbeat");
    if (m->ts_ms <= 0) {
        *why = "Heartbeat has no ts_ms (event time)";
        return SM_ERR_INVALID;
    }
    if ((int)m->state < 0 || m->state > SWARMMEDIC__V1__HEARTBEAT__STATE__STATE_STOPPING) {
        *why = "Heartbeat state unknown";
        return SM_ERR_INVALID;
    }
    const char *agent;
    if (!same_id(m->agent, subj, &agent)) {
        *why = subj->id_in_payload
                   ? "Heartbeat agent empty, over 63 bytes or not a subject token "
                     "(subject_ids = payload)"
                   : "Heartbeat agent differs from the subject's agent";
        return SM_ERR_INVALID;
    }
    out->ts_ms = m->ts_ms;
    out->agent = agent;
    out->state = (uint32_t)m->state;
    out->inflight = m->inflight;
    out->progress = m->progress;
    return SM_OK;
}

sm_status sm_codec_resource(sm_codec *c, const sm_subject *subj,
                            const void *buf, size_t len,
                            sm_resource_sample *out, const char **why)
{
    sm_status s;
    Swarmmedic__V1__ResourceSample *m = (void *)decode(
        c, &swarmmedic__v1__resource_sample__descriptor, buf, len, &s);
    if (!m)
        return undecoded(s, why, "payload is not a ResourceSample");
    if (m->ts_ms <= 0) {
        *why = "ResourceSample has no ts_ms (event time)";
        return SM_ERR_INVALID;
    }
    const char *source;
    if (!same_id(m->source, subj, &source)) {
        *why = subj->id_in_payload
                   ? "ResourceSample source empty, over 63 bytes or not a subject token "
                     "(subject_ids = payload)"
                   : "ResourceSample source differs from the subject's source";
        return SM_ERR_INVALID;
    }
    if (m->token_budget > 0 && m->tokens_used > 4 * m->token_budget) {
        *why = "ResourceSample tokens_used is more than 4x token_budget";
        return SM_ERR_INVALID;
    }
    memset(out, 0, sizeof *out);
    out->ts_ms = m->ts_ms;
    out->source = source;
    out->token_budget = m->token_budget;
    out->tokens_used = m->tokens_used;
    out->memory_used = m->memory_used_bytes;
    out->memory_limit = m->memory_limit_bytes;
    out->active_agents = m->active_agents;
    out->agent_quota = m->agent_quota;
    out->has_pending = m->n_pending > 0;
    for (size_t i = 0; i < m->n_pending; i++) {
        int p = (int)m->pending[i]->priority;
        if (p < SWARMMEDIC__V1__PRIORITY__PRIORITY_CRITICAL ||
            p > SWARMMEDIC__V1__PRIORITY__PRIORITY_BACKGROUND) {
            *why = "ResourceSample pending has an unknown priority";
            return SM_ERR_INVALID;
        }
        out->pending[p - 1] += m->pending[i]->count;
    }
    return SM_OK;
}

sm_status sm_codec_consensus(sm_codec *c, const sm_subject *subj,
                             const void *buf, size_t len,
                             sm_consensus_round *out, const char **why)
{
    sm_status s;
    Swarmmedic__V1__ConsensusRound *m = (void *)decode(
        c, &swarmmedic__v1__consensus_round__descriptor, buf, len, &s);
    if (!m)
        return undecoded(s, why, "payload is not a ConsensusRound");
    if (m->ts_ms <= 0) {
        *why = "ConsensusRound has no ts_ms (event time)";
        return SM_ERR_INVALID;
    }
    if (m->outcome < SWARMMEDIC__V1__CONSENSUS_ROUND__OUTCOME__OUTCOME_OK ||
        m->outcome > SWARMMEDIC__V1__CONSENSUS_ROUND__OUTCOME__OUTCOME_FAILED) {
        *why = "ConsensusRound outcome unspecified or unknown";
        return SM_ERR_INVALID;
    }
    const char *group;
    if (!same_id(m->group, subj, &group)) {
        *why = subj->id_in_payload
                   ? "ConsensusRound group empty, over 63 bytes or not a subject token "
                     "(subject_ids = payload)"
                   : "ConsensusRound group differs from the subject's group";
        return SM_ERR_INVALID;
    }
    out->ts_ms = m->ts_ms;
    out->group = group;
    out->outcome = (sm_round_outcome)m->outcome;
    out->duration_ms = m->duration_ms;
    out->participants = m->participants;
    out->quorum = m->quorum;
    return SM_OK;
}

sm_status sm_codec_agent(sm_codec *c, const sm_subject *subj, const void *buf,
                         size_t len, sm_agent_lifecycle *out,
                         const char **why)
{
    sm_status s;
    Swarmmedic__V1__AgentLifecycle *m = (void *)decode(
        c, &swarmmedic__v1__agent_lifecycle__descriptor, buf, len, &s);
    if (!m)
        return undecoded(s, why, "payload is not an AgentLifecycle");
    if (m->ts_ms <= 0) {
        *why = "AgentLifecycle has no ts_ms (event time)";
        return SM_ERR_INVALID;
    }
    if (m->kind != SWARMMEDIC__V1__AGENT_LIFECYCLE__KIND__KIND_REGISTERED &&
        m->kind != SWARMMEDIC__V1__AGENT_LIFECYCLE__KIND__KIND_UNREGISTERED) {
        *why = "AgentLifecycle kind unspecified or unknown";
        return SM_ERR_INVALID;
    }
    const char *agent;
    if (!same_id(m->agent, subj, &agent)) {
        *why = subj->id_in_payload
                   ? "AgentLifecycle agent empty, over 63 bytes or not a subject token "
                     "(subject_ids = payload)"
                   : "AgentLifecycle agent differs from the subject's agent";
        return SM_ERR_INVALID;
    }
    out->ts_ms = m->ts_ms;
    out->agent = agent;
    out->registered =
        m->kind == SWARMMEDIC__V1__AGENT_LIFECYCLE__KIND__KIND_REGISTERED;
    out->dynamic = m->dynamic;
    return SM_OK;
}

sm_status sm_codec_outcome(sm_codec *c, const sm_subject *subj,
                           const void *buf, size_t len, sm_outcome *out,
                           const char **why)
{
    sm_status s;
    Swarmmedic__V1__HealingOutcome *m = (void *)decode(
        c, &swarmmedic__v1__healing_outcome__descriptor, buf, len, &s);
    if (!m)
        return undecoded(s, why, "payload is not a HealingOutcome");
    if (m->ts_ms <= 0) {
        *why = "HealingOutcome has no ts_ms (event time)";
        return SM_ERR_INVALID;
    }
    if (m->result < SWARMMEDIC__V1__HEALING_OUTCOME__RESULT__RESULT_DONE ||
        m->result > SWARMMEDIC__V1__HEALING_OUTCOME__RESULT__RESULT_REJECTED) {
        *why = "HealingOutcome result unspecified or unknown";
        return SM_ERR_INVALID;
    }
    const char *cmd;
    if (!same_id(m->command_id, subj, &cmd)) {
        *why = subj->id_in_payload
                   ? "HealingOutcome command_id empty, over 63 bytes or not a subject token "
                     "(subject_ids = payload)"
                   : "HealingOutcome command_id differs from the subject's";
        return SM_ERR_INVALID;
    }
    uint64_t id = 0;
    size_t n = 0;
    for (; cmd[n] && n < 16; n++) {
        char ch = cmd[n];
        int v = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (v < 0)
            break;
        id = id << 4 | (uint64_t)v;
    }
    if (n != 16 || cmd[n] != '\0') {
        *why = "HealingOutcome command_id is not a 16-hex-digit decision id";
        return SM_ERR_INVALID;
    }
    out->ts_ms = m->ts_ms;
    out->command_id = cmd;
    out->command = id;
    out->result = (uint32_t)m->result;
    return SM_OK;
}

/* ---- encoding ------------------------------------------------------- */

void sm_decision_id_hex(uint64_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, "%016" PRIx64, id);
}

/* <prefix>.<swarm>.<kind>.<type>; a swarm token that is not one (a swarm
 * a store kept from before tokens were checked) makes no subject. */
static sm_status output_subject(char *buf, size_t cap, const char *prefix,
                                const char *swarm, const char *kind,
                                const char *type)
{
    if (!swarm[0] || !token_ok(swarm, swarm + strlen(swarm)))
        return SM_ERR_INVALID;
    int n = snprintf(buf, cap, "%s.%s.%s.%s", prefix, swarm, kind, type);
    return (n < 0 || (size_t)n >= cap) ? SM_ERR_FULL : SM_OK;
}

/* The <type> token of a decision's output subject. */
static const char *type_token(const sm_decision *d)
{
    switch (d->kind) {
    case SM_DEC_BOTTLENECK: return sm_bn_type_str(d->bn.type);
    case SM_DEC_FAILURE:    return sm_fail_type_str(d->fail.type);
    case SM_DEC_PREDICTION: return sm_fail_type_str(d->pred.type);
    case SM_DEC_HEAL:
        return d->heal.action == SM_ACT_CUSTOM && d->heal.custom
                   ? d->heal.custom : sm_heal_action_str(d->heal.action);
    case SM_DEC_VERDICT:
        return d->verdict.action == SM_ACT_CUSTOM && d->verdict.custom
                   ? d->verdict.custom : sm_heal_action_str(d->verdict.action);
    }
    return "unknown";
}

static const char *kind_token(sm_decision_kind k)
{
    switch (k) {
    case SM_DEC_BOTTLENECK: return "bottleneck";
    case SM_DEC_FAILURE:    return "failure";
    case SM_DEC_PREDICTION: return "prediction";
    case SM_DEC_HEAL:       return "heal";
    case SM_DEC_VERDICT:    return "verdict";
    }
    return "unknown";
}

sm_status sm_output_subject(const char *prefix, const sm_decision *d,
                            char *buf, size_t cap)
{
    const char *type = type_token(d);
    if (!type[0] || strchr(type, '.') || !token_ok(type, type + strlen(type)))
        return SM_ERR_INVALID;
    return output_subject(buf, cap, prefix, d->swarm, kind_token(d->kind), type);
}

sm_status sm_evidence_subject(const sm_decision *d, char *buf, size_t cap)
{
    const sm_evidence *e = &d->evidence;
    int n = e->signal == SM_SIG_NONE
                ? snprintf(buf, cap, "%s", "")
                : snprintf(buf, cap, INPUT_ROOT "%s.%s.%s", d->swarm,
                           sm_signal_str(e->signal), e->id);
    return (n < 0 || (size_t)n >= cap) ? SM_ERR_FULL : SM_OK;
}

/* The Decision header every output carries, built on the caller's stack:
 * the pointers in *h point into *hs, which must outlive the pack. */
typedef struct header_store {
    char id[17];
    char evidence_subject[3 * SM_ID_MAX + 32];
    Swarmmedic__V1__Evidence ev;
    Swarmmedic__V1__Metric metrics[SM_MAX_METRICS];
    Swarmmedic__V1__Metric *mptr[SM_MAX_METRICS];
} header_store;

static sm_status header_fill(const sm_decision *t, header_store *hs,
                             Swarmmedic__V1__Decision *d)
{
    sm_decision_id_hex(t->id, hs->id, sizeof hs->id);
    if (sm_evidence_subject(t, hs->evidence_subject,
                            sizeof hs->evidence_subject) != SM_OK)
        return SM_ERR_FULL;
    swarmmedic__v1__evidence__init(&hs->ev);
    hs->ev.subject = hs->evidence_subject;
    hs->ev.ts_ms = t->evidence.ts_ms;
    hs->ev.window_start_ms = t->evidence.window_start_ms;
    hs->ev.window_end_ms = t->evidence.window_end_ms;
    size_t nm = t->n_metrics < SM_MAX_METRICS ? t->n_metrics : SM_MAX_METRICS;
    for (size_t i = 0; i < nm; i++) {
        swarmmedic__v1__metric__init(&hs->metrics[i]);
        hs->metrics[i].name = (char *)t->metrics[i].name;
        hs->metrics[i].value = t->metrics[i].value;
        hs->metrics[i].threshold = t->metrics[i].threshold;
        hs->metrics[i].samples = t->metrics[i].samples;
        hs->mptr[i] = &hs->metrics[i];
    }
    swarmmedic__v1__decision__init(d);
    d->decision_id = hs->id;
    d->swarm = (char *)t->swarm;
    d->decided_at_ms = t->at_ms;
    d->evidence = &hs->ev;
    d->n_metrics = nm;
    d->metrics = hs->mptr;
    return SM_OK;
}

/* Packs msg into the codec's output buffer (grown as needed). */
static sm_status pack_out(sm_codec *c, const ProtobufCMessage *msg,
                          const uint8_t **out, size_t *len)
{
    size_t need = protobuf_c_message_get_packed_size(msg);
    if (need > c->out_cap) {
        size_t cap = c->out_cap;
        while (cap < need)
            cap *= 2;
        uint8_t *nb = realloc(c->out, cap);
        if (!nb)
            return SM_ERR_NOMEM;
        c->out = nb;
        c->out_cap = cap;
    }
    *len = protobuf_c_message_pack(msg, c->out);
    *out = c->out;
    return SM_OK;
}

sm_status sm_codec_bottleneck(sm_codec *c, const sm_decision *t,
                              const uint8_t **out, size_t *len)
{
    header_store hs;
    Swarmmedic__V1__Decision d;
    if (header_fill(t, &hs, &d) != SM_OK)
        return SM_ERR_FULL;
    Swarmmedic__V1__Bottleneck b = SWARMMEDIC__V1__BOTTLENECK__INIT;
    b.decision = &d;
    b.type = (Swarmmedic__V1__BottleneckType)t->bn.type;
    b.transition = (Swarmmedic__V1__Bottleneck__Transition)t->bn.transition;
    b.severity = (Swarmmedic__V1__Severity)t->bn.severity;
    b.impact_score = t->bn.impact;
    char *affected[1] = {(char *)t->subject};
    if (t->subject[0]) {
        b.n_affected = 1;
        b.affected = affected;
    }
    const char *const *recs = sm_bn_recommendations(t->bn.type);
    size_t nr = 0;
    while (recs && recs[nr])
        nr++;
    if (t->bn.transition != SM_TR_RESOLVED) {
        b.n_recommendations = nr;
        b.recommendations = (char **)recs;
    }
    b.raised_at_ms = t->bn.raised_at_ms;
    b.reason = (char *)(t->bn.reason ? t->bn.reason : "");
    return pack_out(c, &b.base, out, len);
}

/* Whether a failure of type t is about one agent (its subject names it). */
static bool names_agent(sm_fail_type t)
{
    return t == SM_FAIL_AGENT_DOWN || t == SM_FAIL_AGENT_STUCK ||
           t == SM_FAIL_TASK_TIMEOUT;
}

sm_status sm_codec_failure(sm_codec *c, const sm_decision *t,
                           const uint8_t **out, size_t *len)
{
    header_store hs;
    Swarmmedic__V1__Decision d;
    if (header_fill(t, &hs, &d) != SM_OK)
        return SM_ERR_FULL;
    Swarmmedic__V1__Failure f = SWARMMEDIC__V1__FAILURE__INIT;
    f.decision = &d;
    f.type = (Swarmmedic__V1__FailureType)t->fail.type;
    f.transition = (Swarmmedic__V1__Failure__Transition)t->fail.transition;
    f.severity = (Swarmmedic__V1__Severity)t->fail.severity;
    f.subject = (char *)t->subject;
    f.agent = (char *)(names_agent(t->fail.type) ? t->subject : "");
    f.raised_at_ms = t->fail.raised_at_ms;
    f.reason = (char *)(t->fail.reason ? t->fail.reason : "");
    return pack_out(c, &f.base, out, len);
}

sm_status sm_codec_prediction(sm_codec *c, const sm_decision *t,
                              const uint8_t **out, size_t *len)
{
    header_store hs;
    Swarmmedic__V1__Decision d;
    if (header_fill(t, &hs, &d) != SM_OK)
        return SM_ERR_FULL;
    Swarmmedic__V1__Prediction p = SWARMMEDIC__V1__PREDICTION__INIT;
    p.decision = &d;
    p.failure_type = (Swarmmedic__V1__FailureType)t->pred.type;
    p.confidence = t->pred.confidence;
    p.expected_in_ms = t->pred.expected_in_ms;
    p.source = (Swarmmedic__V1__Prediction__Source)t->pred.source;
    p.reasoning = (char *)(t->pred.reasoning ? t->pred.reasoning : "");
    p.recommended_action = (char *)(t->pred.action ? t->pred.action : "");
    p.agent = (char *)(names_agent(t->pred.type) ? t->subject : "");
    p.transition = (Swarmmedic__V1__Prediction__Transition)t->pred.transition;
    p.raised_at_ms = t->pred.raised_at_ms;
    p.subject = (char *)t->subject;
    return pack_out(c, &p.base, out, len);
}

sm_status sm_codec_heal(sm_codec *c, const sm_decision *t, const uint8_t **out,
                        size_t *len)
{
    header_store hs;
    Swarmmedic__V1__Decision d;
    if (header_fill(t, &hs, &d) != SM_OK)
        return SM_ERR_FULL;
    const sm_heal_cmd *x = &t->heal;
    char answers[17], escalates[17];
    sm_decision_id_hex(x->answers, answers, sizeof answers);
    sm_decision_id_hex(x->escalates, escalates, sizeof escalates);
    char *steps[SM_CMD_STEPS];
    size_t ns = x->n_steps < SM_CMD_STEPS ? x->n_steps : SM_CMD_STEPS;
    for (size_t i = 0; i < ns; i++)
        steps[i] = (char *)x->steps[i];
    Swarmmedic__V1__HealingCommand h = SWARMMEDIC__V1__HEALING_COMMAND__INIT;
    h.decision = &d;
    h.action = (Swarmmedic__V1__HealingCommand__Action)x->action;
    h.custom_action = (char *)(x->action == SM_ACT_CUSTOM && x->custom ? x->custom : "");
    h.failure_type = (Swarmmedic__V1__FailureType)x->type;
    h.agent = (char *)x->agent;
    h.task_id = (char *)x->task;
    h.target_agent = (char *)x->target;
    h.attempt = x->attempt;
    h.autonomy = (Swarmmedic__V1__Autonomy)x->autonomy;
    h.n_steps = ns;
    h.steps = steps;
    h.deadline_ms = x->deadline_ms;
    h.escalates = x->action == SM_ACT_ESCALATE ? escalates : (char *)"";
    h.answers = answers;
    h.strategy = (char *)(x->strategy ? x->strategy : "");
    h.preventive = x->preventive;
    h.subject = (char *)t->subject;
    return pack_out(c, &h.base, out, len);
}

sm_status sm_codec_verdict(sm_codec *c, const sm_decision *t,
                           const uint8_t **out, size_t *len)
{
    header_store hs;
    Swarmmedic__V1__Decision d;
    if (header_fill(t, &hs, &d) != SM_OK)
        return SM_ERR_FULL;
    const sm_heal_verdict *x = &t->verdict;
    char command[17], answers[17];
    sm_decision_id_hex(x->command, command, sizeof command);
    sm_decision_id_hex(x->answers, answers, sizeof answers);
    Swarmmedic__V1__HealingVerdict v = SWARMMEDIC__V1__HEALING_VERDICT__INIT;
    v.decision = &d;
    v.command_id = command;
    v.action = (Swarmmedic__V1__HealingCommand__Action)x->action;
    v.custom_action = (char *)(x->action == SM_ACT_CUSTOM && x->custom ? x->custom : "");
    v.failure_type = (Swarmmedic__V1__FailureType)x->type;
    v.agent = (char *)x->agent;
    v.subject = (char *)t->subject;
    v.verdict = (Swarmmedic__V1__HealingVerdict__Verdict)x->verdict;
    v.reason = (char *)(x->reason ? x->reason : "");
    v.outcome = (Swarmmedic__V1__HealingOutcome__Result)x->outcome;
    v.first_evidence_ms = x->first_evidence_ms;
    v.detected_at_ms = x->detected_ms;
    v.commanded_at_ms = x->commanded_ms;
    v.recovered_at_ms = x->recovered_ms;
    v.attempt = x->attempt;
    v.strategy = (char *)(x->strategy ? x->strategy : "");
    v.answers = answers;
    return pack_out(c, &v.base, out, len);
}

sm_status sm_codec_decision(sm_codec *c, const sm_decision *d,
                            const uint8_t **out, size_t *len)
{
    switch (d->kind) {
    case SM_DEC_BOTTLENECK: return sm_codec_bottleneck(c, d, out, len);
    case SM_DEC_FAILURE:    return sm_codec_failure(c, d, out, len);
    case SM_DEC_PREDICTION: return sm_codec_prediction(c, d, out, len);
    case SM_DEC_HEAL:       return sm_codec_heal(c, d, out, len);
    case SM_DEC_VERDICT:    return sm_codec_verdict(c, d, out, len);
    }
    return SM_ERR_INVALID;
}
