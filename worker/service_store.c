/*
 * service_store.c - per-minute task aggregates and the decision log in
 * LMDB, beside the core's state (service_store.h).
 */
#include "service_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "hash.h"
#include "swarm_medic.pb-c.h"

#define KEY_MAX 160
#define DEL_BATCH 4096          /* keys one retention pass deletes at most */
#define RETAIN_EVERY 64         /* commits between retention passes */
#define LOG_VERSION 1
#define OTHER_TYPE "~other"
#define LOG_PENDING_MAX 65536   /* decisions waiting for a commit */

typedef struct open_row {
    int64_t minute;
    char type[SM_ID_MAX];
    bool dirty;
    sm_perf_row row;
} open_row;

typedef struct perf_swarm {
    char id[SM_ID_MAX];
    uint64_t hash;
    int64_t newest;             /* newest minute seen */
    open_row *rows;
    size_t n, cap;
} perf_swarm;

typedef struct pending_log {
    uint64_t id;
    int64_t at_ms;
    size_t len;
    uint8_t *buf;
} pending_log;

typedef struct skey {
    size_t len;
    unsigned char data[KEY_MAX];
} skey;

struct sm_svcstore {
    sm_store *st;
    sm_svcstore_config cfg;
    perf_swarm *sw;
    size_t n_sw, cap_sw;
    pending_log *log;
    size_t n_log, cap_log;
    /* the log records the last batch took (done), kept for explain until
     * the next batch takes its own: a batch handed to the commit thread,
     * or written in a commit window, is in neither log nor the store
     * until it commits */
    pending_log *handed;
    size_t n_handed, cap_handed;
    skey *dels;                 /* retention deletions for the next commit */
    size_t n_dels, n_dels_logs;
    int64_t newest_log_ms;
    unsigned commits;
    uint8_t *val;               /* explain's buffer */
    size_t val_len, val_cap;
    sm_svcstore_stats stats;
};

sm_status sm_svcstore_create(sm_svcstore **out, sm_store *st,
                             const sm_svcstore_config *cfg)
{
    if (!out || !cfg)
        return SM_ERR_INVALID;
    sm_svcstore *ss = calloc(1, sizeof *ss);
    if (!ss)
        return SM_ERR_NOMEM;
    ss->dels = calloc(DEL_BATCH, sizeof *ss->dels);
    if (!ss->dels) {
        free(ss);
        return SM_ERR_NOMEM;
    }
    ss->st = st;
    ss->cfg = *cfg;
    *out = ss;
    return SM_OK;
}

void sm_svcstore_destroy(sm_svcstore *ss)
{
    if (!ss)
        return;
    for (size_t i = 0; i < ss->n_sw; i++)
        free(ss->sw[i].rows);
    for (size_t i = 0; i < ss->n_log; i++)
        free(ss->log[i].buf);
    for (size_t i = 0; i < ss->n_handed; i++)
        free(ss->handed[i].buf);
    free(ss->sw);
    free(ss->log);
    free(ss->handed);
    free(ss->dels);
    free(ss->val);
    free(ss);
}

/* ---- keys --------------------------------------------------------------- */

static unsigned char *put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--)
        *p++ = (unsigned char)(v >> (8 * i));
    return p;
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* "r" 0 <swarm> 0: the prefix of a swarm's rows. */
static size_t row_prefix(unsigned char *k, const char *swarm)
{
    size_t n = strlen(swarm);
    k[0] = 'r';
    k[1] = 0;
    memcpy(k + 2, swarm, n);
    k[2 + n] = 0;
    return n + 3;
}

static size_t row_key(unsigned char *k, const char *swarm, int64_t minute,
                      const char *type)
{
    size_t n = row_prefix(k, swarm);
    /* offset so that minutes order as unsigned big-endian numbers */
    put_be64(k + n, (uint64_t)minute ^ UINT64_C(0x8000000000000000));
    n += 8;
    size_t t = strlen(type);
    memcpy(k + n, type, t);
    return n + t;
}

static int64_t key_minute(const unsigned char *p)
{
    return (int64_t)(get_be64(p) ^ UINT64_C(0x8000000000000000));
}

static size_t log_key(unsigned char *k, uint64_t id)
{
    k[0] = 'x';
    k[1] = 0;
    put_be64(k + 2, id);
    return 10;
}

static size_t time_key(unsigned char *k, int64_t at, uint64_t id)
{
    k[0] = 'y';
    k[1] = 0;
    put_be64(k + 2, (uint64_t)at ^ UINT64_C(0x8000000000000000));
    put_be64(k + 10, id);
    return 18;
}

/* ---- aggregates --------------------------------------------------------- */

static perf_swarm *swarm_of(sm_svcstore *ss, const char *id, bool create)
{
    uint64_t h = sm_hash_str(SM_HASH_INIT, id);
    for (size_t i = 0; i < ss->n_sw; i++)
        if (ss->sw[i].hash == h && strcmp(ss->sw[i].id, id) == 0)
            return &ss->sw[i];
    if (!create)
        return NULL;
    if (ss->n_sw == ss->cap_sw) {
        size_t cap = ss->cap_sw ? 2 * ss->cap_sw : 8;
        perf_swarm *v = realloc(ss->sw, cap * sizeof *v);
        if (!v)
            return NULL;
        ss->sw = v;
        ss->cap_sw = cap;
    }
    perf_swarm *p = &ss->sw[ss->n_sw++];
    memset(p, 0, sizeof *p);
    snprintf(p->id, sizeof p->id, "%s", id);
    p->hash = h;
    p->newest = INT64_MIN;
    return p;
}

typedef struct read_one {
    size_t klen;
    sm_perf_row *row;
    sm_status s;
    bool found;
} read_one;

static sm_status read_row(void *ud, const void *k, size_t klen,
                          const void *v, size_t vlen)
{
    (void)k;
    read_one *r = ud;
    if (klen != r->klen)
        return SM_OK;           /* a longer type name sharing the prefix */
    r->found = true;
    r->s = sm_perf_decode(r->row, v, vlen);
    return SM_ERR_FULL;         /* stop */
}

/* The open row of (minute, type), read back from the store if the minute
 * was closed, or a new one. NULL: out of memory. */
static open_row *row_of(sm_svcstore *ss, perf_swarm *p, int64_t minute,
                        const char *type, sm_status *s)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->rows[i].minute == minute && strcmp(p->rows[i].type, type) == 0)
            return &p->rows[i];
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 8;
        open_row *v = realloc(p->rows, cap * sizeof *v);
        if (!v) {
            *s = SM_ERR_NOMEM;
            return NULL;
        }
        p->rows = v;
        p->cap = cap;
    }
    open_row *r = &p->rows[p->n];
    memset(r, 0, sizeof *r);
    r->minute = minute;
    snprintf(r->type, sizeof r->type, "%s", type);
    /* not in memory: a closed minute, or any minute after a restart (the
     * store has what was committed of it): read it back */
    if (ss->st) {
        unsigned char k[KEY_MAX];
        read_one ro = {.klen = row_key(k, p->id, minute, type), .row = &r->row};
        sm_status rs = sm_store_scan(ss->st, k, ro.klen, read_row, &ro);
        if (rs != SM_OK && rs != SM_ERR_FULL) {
            *s = rs;
            return NULL;
        }
        if (ro.found && ro.s != SM_OK)
            memset(&r->row, 0, sizeof r->row);  /* unreadable: start over */
        ss->stats.late_loaded += ro.found;
    }
    p->n++;
    return r;
}

/* Types of a swarm's newest minute, for the fold into OTHER_TYPE. */
static size_t types_in_minute(const perf_swarm *p, int64_t minute)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        n += p->rows[i].minute == minute;
    return n;
}

/* Without a store the open rows are all there is: bounded by the
 * retention instead of by the commit. */
static void forget_old(sm_svcstore *ss, perf_swarm *p)
{
    int64_t cutoff = p->newest - ss->cfg.perf_retention_ms / SM_MINUTE_MS;
    size_t keep = 0;
    for (size_t j = 0; j < p->n; j++)
        if (p->rows[j].minute >= cutoff)
            p->rows[keep++] = p->rows[j];
    ss->stats.rows_expired += p->n - keep;
    p->n = keep;
}

sm_status sm_svcstore_on_task(sm_svcstore *ss, const char *swarm,
                              const sm_task_event *ev)
{
    if (ev->kind != SM_TASK_COMPLETED && ev->kind != SM_TASK_FAILED &&
        ev->kind != SM_TASK_TIMED_OUT)
        return SM_OK;
    perf_swarm *p = swarm_of(ss, swarm, true);
    if (!p)
        return SM_ERR_NOMEM;
    int64_t minute = ev->ts_ms / SM_MINUTE_MS;
    if (p->newest != INT64_MIN &&
        minute < p->newest - ss->cfg.perf_retention_ms / SM_MINUTE_MS) {
        ss->stats.too_old++;
        return SM_OK;
    }
    const char *type = ev->task_type ? ev->task_type : "";
    sm_status s = SM_OK;
    open_row *r = NULL;
    for (size_t i = 0; i < p->n && !r; i++)
        if (p->rows[i].minute == minute && strcmp(p->rows[i].type, type) == 0)
            r = &p->rows[i];
    if (!r && types_in_minute(p, minute) >= SM_SVCSTORE_TYPES - 1)
        type = OTHER_TYPE;
    if (!r)
        r = row_of(ss, p, minute, type, &s);
    if (!r)
        return s;
    sm_perf_add(&r->row, ev->duration_ms, ev->kind == SM_TASK_COMPLETED,
                ev->tokens_used);
    r->dirty = true;
    if (minute > p->newest) {
        p->newest = minute;
        if (!ss->st)
            forget_old(ss, p);
    }
    return SM_OK;
}

/* ---- decision log ------------------------------------------------------- */

static const char *kind_str(sm_decision_kind k)
{
    switch (k) {
    case SM_DEC_BOTTLENECK: return "bottleneck";
    case SM_DEC_FAILURE: return "failure";
    case SM_DEC_PREDICTION: return "prediction";
    case SM_DEC_HEAL: return "heal";
    case SM_DEC_VERDICT: return "verdict";
    }
    return "decision";
}

/* The fields of a DecisionRecord that depend on the kind. */
static void record_kind(const sm_decision *d, Swarmmedic__V1__DecisionRecord *r)
{
    r->kind = (char *)kind_str(d->kind);
    switch (d->kind) {
    case SM_DEC_BOTTLENECK:
        r->type = (char *)sm_bn_type_str(d->bn.type);
        r->transition = (char *)sm_transition_str(d->bn.transition);
        r->reason = (char *)d->bn.reason;
        r->severity = (char *)sm_severity_str(d->bn.severity);
        r->impact_or_confidence = d->bn.impact;
        break;
    case SM_DEC_FAILURE:
        r->type = (char *)sm_fail_type_str(d->fail.type);
        r->transition = (char *)sm_transition_str(d->fail.transition);
        r->reason = (char *)d->fail.reason;
        r->severity = (char *)sm_severity_str(d->fail.severity);
        break;
    case SM_DEC_PREDICTION:
        r->type = (char *)sm_fail_type_str(d->pred.type);
        r->transition = (char *)sm_pred_transition_str(d->pred.transition);
        r->reason = (char *)d->pred.reasoning;
        r->impact_or_confidence = d->pred.confidence;
        break;
    case SM_DEC_HEAL:
        r->type = (char *)sm_heal_action_str(d->heal.action);
        r->transition = (char *)sm_autonomy_str(d->heal.autonomy);
        r->reason = (char *)(d->heal.reason ? d->heal.reason : d->heal.strategy);
        break;
    case SM_DEC_VERDICT:
        r->type = (char *)sm_heal_action_str(d->verdict.action);
        r->transition = (char *)sm_verdict_str(d->verdict.verdict);
        r->reason = (char *)d->verdict.reason;
        break;
    }
}

/* Encodes d as u8 version + DecisionRecord into a new buffer. */
static sm_status encode_record(const sm_decision *d, uint8_t **out, size_t *len)
{
    char id[17], subject[3 * SM_ID_MAX + 32];
    Swarmmedic__V1__Evidence ev = SWARMMEDIC__V1__EVIDENCE__INIT;
    Swarmmedic__V1__Metric m[SM_MAX_METRICS], *mp[SM_MAX_METRICS];
    Swarmmedic__V1__Decision hd = SWARMMEDIC__V1__DECISION__INIT;
    Swarmmedic__V1__DecisionRecord r = SWARMMEDIC__V1__DECISION_RECORD__INIT;
    sm_decision_id_hex(d->id, id, sizeof id);
    if (sm_evidence_subject(d, subject, sizeof subject) != SM_OK)
        subject[0] = 0;
    ev.subject = subject;
    ev.ts_ms = d->evidence.ts_ms;
    ev.window_start_ms = d->evidence.window_start_ms;
    ev.window_end_ms = d->evidence.window_end_ms;
    size_t nm = d->n_metrics < SM_MAX_METRICS ? d->n_metrics : SM_MAX_METRICS;
    for (size_t i = 0; i < nm; i++) {
        swarmmedic__v1__metric__init(&m[i]);
        m[i].name = (char *)d->metrics[i].name;
        m[i].value = d->metrics[i].value;
        m[i].threshold = d->metrics[i].threshold;
        m[i].samples = d->metrics[i].samples;
        mp[i] = &m[i];
    }
    hd.decision_id = id;
    hd.swarm = (char *)d->swarm;
    hd.decided_at_ms = d->at_ms;
    hd.evidence = &ev;
    hd.n_metrics = nm;
    hd.metrics = mp;
    r.decision = &hd;
    r.subject = (char *)d->subject;
    record_kind(d, &r);
    size_t n = swarmmedic__v1__decision_record__get_packed_size(&r);
    uint8_t *b = malloc(n + 1);
    if (!b)
        return SM_ERR_NOMEM;
    b[0] = LOG_VERSION;
    swarmmedic__v1__decision_record__pack(&r, b + 1);
    *out = b;
    *len = n + 1;
    return SM_OK;
}

sm_status sm_svcstore_log(sm_svcstore *ss, const sm_decision *d, size_t n)
{
    if (!ss->st)
        return SM_OK;
    sm_status s = SM_OK;
    for (size_t i = 0; i < n; i++) {
        if (ss->n_log >= LOG_PENDING_MAX) {     /* the store keeps failing */
            ss->stats.log_lost += n - i;
            return SM_ERR_FULL;
        }
        if (ss->n_log == ss->cap_log) {
            size_t cap = ss->cap_log ? 2 * ss->cap_log : 64;
            pending_log *v = realloc(ss->log, cap * sizeof *v);
            if (!v) {
                ss->stats.log_lost += n - i;
                return SM_ERR_NOMEM;
            }
            ss->log = v;
            ss->cap_log = cap;
        }
        pending_log *pl = &ss->log[ss->n_log];
        pl->id = d[i].id;
        pl->at_ms = d[i].at_ms;
        s = encode_record(&d[i], &pl->buf, &pl->len);
        if (s != SM_OK) {
            ss->stats.log_lost++;
            continue;
        }
        ss->n_log++;
    }
    return s;
}

/* ---- the commit --------------------------------------------------------- */

sm_status sm_svcstore_write(void *ud, sm_store *st)
{
    sm_svcstore *ss = ud;
    unsigned char k[KEY_MAX];
    uint8_t v[SM_PERF_ROW_MAX];
    sm_status s = SM_OK;
    for (size_t i = 0; i < ss->n_dels && s == SM_OK; i++)
        s = sm_store_del(st, ss->dels[i].data, ss->dels[i].len);
    for (size_t i = 0; i < ss->n_sw && s == SM_OK; i++) {
        perf_swarm *p = &ss->sw[i];
        for (size_t j = 0; j < p->n && s == SM_OK; j++) {
            open_row *r = &p->rows[j];
            if (!r->dirty)
                continue;
            size_t kl = row_key(k, p->id, r->minute, r->type);
            size_t vl = sm_perf_encode(&r->row, v, sizeof v);
            s = sm_store_put(st, k, kl, v, vl);
        }
    }
    for (size_t i = 0; i < ss->n_log && s == SM_OK; i++) {
        pending_log *pl = &ss->log[i];
        s = sm_store_put(st, k, log_key(k, pl->id), pl->buf, pl->len);
        if (s == SM_OK)
            s = sm_store_put(st, k, time_key(k, pl->at_ms, pl->id), "", 0);
    }
    return s;
}

/* After a commit: clean rows of minutes before the newest leave memory. */
static void close_rows(sm_svcstore *ss, perf_swarm *p)
{
    size_t keep = 0;
    for (size_t j = 0; j < p->n; j++) {
        open_row *r = &p->rows[j];
        if (r->dirty)
            ss->stats.rows_written++;
        r->dirty = false;
        if (r->minute >= p->newest)
            p->rows[keep++] = *r;
    }
    p->n = keep;
}

void sm_svcstore_done(void *ud, bool committed)
{
    sm_svcstore *ss = ud;
    if (!committed)
        return;
    for (size_t i = 0; i < ss->n_sw; i++)
        close_rows(ss, &ss->sw[i]);
    for (size_t i = 0; i < ss->n_handed; i++)
        free(ss->handed[i].buf);
    for (size_t i = 0; i < ss->n_log; i++)
        if (ss->log[i].at_ms > ss->newest_log_ms)
            ss->newest_log_ms = ss->log[i].at_ms;
    ss->stats.logged += ss->n_log;
    ss->stats.log_count += ss->n_log;
    /* this batch's records become the handed ones (the arrays swap) */
    pending_log *v = ss->handed;
    size_t cap = ss->cap_handed;
    ss->handed = ss->log;
    ss->cap_handed = ss->cap_log;
    ss->n_handed = ss->n_log;
    ss->log = v;
    ss->cap_log = cap;
    ss->n_log = 0;
    ss->stats.rows_expired += ss->n_dels - ss->n_dels_logs * 2;
    ss->stats.log_expired += ss->n_dels_logs;
    ss->stats.log_count -= ss->n_dels_logs < ss->stats.log_count
                               ? ss->n_dels_logs : ss->stats.log_count;
    ss->n_dels = ss->n_dels_logs = 0;
}

/* ---- retention ---------------------------------------------------------- */

typedef struct sweep {
    sm_svcstore *ss;
    int64_t cutoff;             /* rows: minute; log: at_ms */
    uint64_t over;              /* log: decisions over the count limit */
} sweep;

static bool queue_del(sm_svcstore *ss, const void *k, size_t klen)
{
    if (ss->n_dels == DEL_BATCH || klen > KEY_MAX)
        return false;
    ss->dels[ss->n_dels].len = klen;
    memcpy(ss->dels[ss->n_dels].data, k, klen);
    ss->n_dels++;
    return true;
}

static sm_status sweep_rows(void *ud, const void *k, size_t klen,
                            const void *v, size_t vlen)
{
    (void)v;
    (void)vlen;
    sweep *w = ud;
    const unsigned char *b = k;
    size_t pre = 3 + strlen((const char *)b + 2);
    if (klen < pre + 8 || key_minute(b + pre) >= w->cutoff ||
        !queue_del(w->ss, k, klen))
        return SM_ERR_FULL;     /* stop: the rest is younger */
    return SM_OK;
}

static sm_status sweep_log(void *ud, const void *k, size_t klen,
                           const void *v, size_t vlen)
{
    (void)v;
    (void)vlen;
    sweep *w = ud;
    const unsigned char *b = k;
    if (klen != 18)
        return SM_OK;
    int64_t at = (int64_t)(get_be64(b + 2) ^ UINT64_C(0x8000000000000000));
    if ((w->over == 0 && at >= w->cutoff) || w->ss->n_dels + 2 > DEL_BATCH)
        return SM_ERR_FULL;
    unsigned char xk[KEY_MAX];
    queue_del(w->ss, k, klen);
    queue_del(w->ss, xk, log_key(xk, get_be64(b + 10)));
    w->ss->n_dels_logs++;
    if (w->over > 0)
        w->over--;
    return SM_OK;
}

void sm_svcstore_before_commit(sm_svcstore *ss)
{
    if (!ss->st || ss->n_dels > 0)
        return;                 /* the last pass is not committed yet */
    uint64_t max = ss->cfg.decision_log_max > 0 ? (uint64_t)ss->cfg.decision_log_max
                                                : UINT64_MAX;
    bool log_over = ss->stats.log_count + ss->n_log > max;
    if (++ss->commits < RETAIN_EVERY && !log_over)
        return;
    ss->commits = 0;
    unsigned char k[KEY_MAX];
    for (size_t i = 0; i < ss->n_sw && ss->n_dels < DEL_BATCH; i++) {
        perf_swarm *p = &ss->sw[i];
        if (p->newest == INT64_MIN)
            continue;
        sweep w = {.ss = ss,
                   .cutoff = p->newest - ss->cfg.perf_retention_ms / SM_MINUTE_MS};
        (void)sm_store_scan(ss->st, k, row_prefix(k, p->id), sweep_rows, &w);
    }
    sweep w = {.ss = ss, .cutoff = ss->newest_log_ms - ss->cfg.decision_log_age_ms,
               .over = log_over ? ss->stats.log_count + ss->n_log - max : 0};
    k[0] = 'y';
    k[1] = 0;
    (void)sm_store_scan(ss->st, k, 2, sweep_log, &w);
}

typedef struct log_count {
    uint64_t n;
    int64_t newest;
} log_count;

static sm_status count_log(void *ud, const void *k, size_t klen,
                           const void *v, size_t vlen)
{
    (void)v;
    (void)vlen;
    log_count *c = ud;
    if (klen == 18) {
        c->n++;
        c->newest = (int64_t)(get_be64((const unsigned char *)k + 2) ^
                              UINT64_C(0x8000000000000000));
    }
    return SM_OK;
}

sm_status sm_svcstore_load(sm_svcstore *ss)
{
    if (!ss->st)
        return SM_OK;
    log_count c = {0, 0};
    sm_status s = sm_store_scan(ss->st, "y", 2, count_log, &c);
    if (s == SM_OK) {
        ss->stats.log_count = c.n;
        ss->newest_log_ms = c.newest;
    }
    return s;
}

/* ---- reading ------------------------------------------------------------ */

static sm_status copy_val(void *ud, const void *k, size_t klen,
                          const void *v, size_t vlen)
{
    (void)k;
    sm_svcstore *ss = ud;
    if (klen != 10)
        return SM_OK;
    if (vlen > ss->val_cap) {
        uint8_t *b = realloc(ss->val, vlen);
        if (!b)
            return SM_ERR_NOMEM;
        ss->val = b;
        ss->val_cap = vlen;
    }
    memcpy(ss->val, v, vlen);
    ss->val_len = vlen;
    return SM_ERR_FULL;         /* found: stop */
}

sm_status sm_svcstore_explain(sm_svcstore *ss, uint64_t id,
                              const uint8_t **buf, size_t *len)
{
    const pending_log *mem[] = {ss->log, ss->handed};
    const size_t n_mem[] = {ss->n_log, ss->n_handed};
    for (int m = 0; m < 2; m++) {
        for (size_t i = n_mem[m]; i-- > 0;) {
            if (mem[m][i].id == id) {
                *buf = mem[m][i].buf + 1;
                *len = mem[m][i].len - 1;
                return SM_OK;
            }
        }
    }
    if (!ss->st)
        return SM_ERR_NOT_FOUND;
    unsigned char k[KEY_MAX];
    ss->val_len = 0;
    sm_status s = sm_store_scan_shared(ss->st, k, 10, k, log_key(k, id), copy_val, ss);
    if (s != SM_OK && s != SM_ERR_FULL)
        return s;
    if (ss->val_len == 0)
        return SM_ERR_NOT_FOUND;
    if (ss->val[0] != LOG_VERSION)
        return ss->val[0] > LOG_VERSION ? SM_ERR_VERSION : SM_ERR_CORRUPT;
    *buf = ss->val + 1;
    *len = ss->val_len - 1;
    return SM_OK;
}

typedef struct report_ctx {
    sm_report *r;
    const perf_swarm *p;        /* its open rows win over stored ones */
    const char *type;
    int64_t m0, m1;             /* minutes [m0, m1) */
    size_t pre;                 /* row prefix length */
    sm_status s;
} report_ctx;

static sm_report_type *report_type(sm_report *r, const char *name)
{
    for (size_t i = 0; i < r->n_types; i++)
        if (strcmp(r->types[i].name, name) == 0)
            return &r->types[i];
    if (r->n_types == SM_SVCSTORE_TYPES) {
        name = OTHER_TYPE;
        for (size_t i = 0; i < r->n_types; i++)
            if (strcmp(r->types[i].name, name) == 0)
                return &r->types[i];
        r->n_types--;       /* the last slot becomes OTHER_TYPE */
    }
    sm_report_type *t = &r->types[r->n_types++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

static void point_add(sm_report_point *pt, const sm_perf_row *row)
{
    pt->count += row->count;
    pt->ok += row->ok;
    pt->sum_ms += row->sum_ms;
}

static void report_add(report_ctx *c, int64_t minute, const char *type,
                       const sm_perf_row *row)
{
    if (c->type && strcmp(c->type, type) != 0)
        return;
    sm_report *r = c->r;
    size_t k = (size_t)((minute - c->m0) * (int64_t)r->n_points / (c->m1 - c->m0));
    sm_report_type *t = report_type(r, type);
    sm_perf_merge(&r->all, row);
    sm_perf_merge(&t->all, row);
    point_add(&r->pts[k], row);
    point_add(&t->pts[k], row);
}

static bool is_open(const perf_swarm *p, int64_t minute, const char *type,
                    size_t tlen)
{
    for (size_t i = 0; p && i < p->n; i++)
        if (p->rows[i].minute == minute && strlen(p->rows[i].type) == tlen &&
            memcmp(p->rows[i].type, type, tlen) == 0)
            return true;
    return false;
}

static sm_status report_row(void *ud, const void *k, size_t klen,
                            const void *v, size_t vlen)
{
    report_ctx *c = ud;
    const unsigned char *b = k;
    if (klen < c->pre + 8)
        return SM_OK;
    int64_t minute = key_minute(b + c->pre);
    if (minute >= c->m1)
        return SM_ERR_FULL;     /* past the range: stop */
    char type[SM_ID_MAX];
    size_t tl = klen - c->pre - 8;
    if (tl >= SM_ID_MAX || is_open(c->p, minute, (const char *)b + c->pre + 8, tl))
        return SM_OK;
    memcpy(type, b + c->pre + 8, tl);
    type[tl] = 0;
    sm_perf_row row;
    if (sm_perf_decode(&row, v, vlen) == SM_OK)
        report_add(c, minute, type, &row);
    return SM_OK;
}

sm_status sm_svcstore_report(sm_svcstore *ss, const char *swarm,
                             int64_t start_ms, int64_t end_ms,
                             const char *type, sm_report *out)
{
    if (end_ms <= start_ms)
        return SM_ERR_INVALID;
    report_ctx c = {.r = out, .type = type};
    c.m0 = start_ms >= 0 ? start_ms / SM_MINUTE_MS
                         : -((-start_ms + SM_MINUTE_MS - 1) / SM_MINUTE_MS);
    c.m1 = (end_ms + SM_MINUTE_MS - 1) / SM_MINUTE_MS;
    memset(out, 0, sizeof *out);
    out->start_ms = c.m0 * SM_MINUTE_MS;
    out->end_ms = c.m1 * SM_MINUTE_MS;
    out->n_points = (size_t)(c.m1 - c.m0 < SM_REPORT_POINTS ? c.m1 - c.m0
                                                           : SM_REPORT_POINTS);
    for (size_t k = 0; k < out->n_points; k++) {
        int64_t num = (int64_t)k * (c.m1 - c.m0);
        int64_t first = c.m0 + (num + (int64_t)out->n_points - 1) / (int64_t)out->n_points;
        out->pts[k].start_ms = first * SM_MINUTE_MS;
    }
    c.p = swarm_of(ss, swarm, false);
    if (ss->st) {
        unsigned char pre[KEY_MAX], from[KEY_MAX];
        c.pre = row_prefix(pre, swarm);
        memcpy(from, pre, c.pre);
        put_be64(from + c.pre, (uint64_t)c.m0 ^ UINT64_C(0x8000000000000000));
        sm_status s = sm_store_scan_shared(ss->st, pre, c.pre, from, c.pre + 8,
                                         report_row, &c);
        if (s != SM_OK && s != SM_ERR_FULL)
            return s;
    }
    for (size_t i = 0; c.p && i < c.p->n; i++) {
        const open_row *r = &c.p->rows[i];
        if (r->minute >= c.m0 && r->minute < c.m1)
            report_add(&c, r->minute, r->type, &r->row);
    }
    return SM_OK;
}

void sm_svcstore_stats_get(const sm_svcstore *ss, sm_svcstore_stats *out)
{
    *out = ss->stats;
}
