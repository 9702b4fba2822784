#include "backtest.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "swarm.h"
#include "replay.h"
#include "swarm_medic.pb-c.h"

typedef struct episode {
    char swarm[64];
    char affected[64];
    int type;
    int64_t raised_at;
    int64_t resolved_at;        /* 0: still raised at the end */
    int peak;                   /* severity */
    int first;                  /* severity when raised */
    bool matched;
} episode;

typedef struct episodes {
    episode *v;
    size_t n, cap;
    bool oom;
} episodes;

/* The open episode with this key, or NULL. */
static episode *open_episode(episodes *e, const char *swarm, int type,
                             const char *affected)
{
    for (size_t i = e->n; i-- > 0;) {
        episode *x = &e->v[i];
        if (x->type == type && x->resolved_at == 0 &&
            strcmp(x->swarm, swarm) == 0 && strcmp(x->affected, affected) == 0)
            return x;
    }
    return NULL;
}

static void collect(void *ud, int64_t recv_ms, const char *subject,
                    const char *const *headers, const void *data, size_t len)
{
    (void)recv_ms;
    (void)headers;
    episodes *e = ud;
    if (!strstr(subject, ".bottleneck."))
        return;
    Swarmmedic__V1__Bottleneck *b =
        swarmmedic__v1__bottleneck__unpack(NULL, len, data);
    if (!b || !b->decision) {
        if (b)
            swarmmedic__v1__bottleneck__free_unpacked(b, NULL);
        return;
    }
    const char *aff = b->n_affected ? b->affected[0] : "";
    episode *x = open_episode(e, b->decision->swarm, (int)b->type, aff);
    if (b->transition == SWARMMEDIC__V1__BOTTLENECK__TRANSITION__TRANSITION_RAISED && !x) {
        if (e->n == e->cap) {
            size_t cap = e->cap ? e->cap * 2 : 64;
            episode *nv = realloc(e->v, cap * sizeof *nv);
            if (!nv) {
                e->oom = true;
                goto done;
            }
            e->v = nv;
            e->cap = cap;
        }
        x = &e->v[e->n++];
        memset(x, 0, sizeof *x);
        snprintf(x->swarm, sizeof x->swarm, "%s", b->decision->swarm);
        snprintf(x->affected, sizeof x->affected, "%s", aff);
        x->type = (int)b->type;
        x->raised_at = b->raised_at_ms;
        x->first = x->peak = (int)b->severity;
    } else if (x && b->transition == SWARMMEDIC__V1__BOTTLENECK__TRANSITION__TRANSITION_UPDATED) {
        if ((int)b->severity > x->peak)
            x->peak = (int)b->severity;
    } else if (x && b->transition == SWARMMEDIC__V1__BOTTLENECK__TRANSITION__TRANSITION_RESOLVED) {
        x->resolved_at = b->decision->decided_at_ms;
    }
done:
    swarmmedic__v1__bottleneck__free_unpacked(b, NULL);
}

static bool overlaps(const episode *a, const episode *b, int64_t end)
{
    int64_t ae = a->resolved_at ? a->resolved_at : end;
    int64_t be = b->resolved_at ? b->resolved_at : end;
    return a->raised_at <= be && b->raised_at <= ae;
}

static void when(int64_t ms, char *buf, size_t cap)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, cap, "%H:%M:%S", &tm);
}

static void print_episode(FILE *out, char mark, const episode *x,
                          const char *note)
{
    char t[16];
    when(x->raised_at, t, sizeof t);
    fprintf(out, "%c %s  %-6s %-17s %-10s %-8s %s\n", mark, t, x->swarm,
            sm_bn_type_str((sm_bn_type)x->type), x->affected[0] ? x->affected : "-",
            sm_severity_str((sm_severity)x->peak), note);
}

static sm_status run_one(const sm_config *cfg, const sm_log *log,
                         const char *path, episodes *e, FILE *out,
                         int64_t *end)
{
    sm_replay_stats st;
    sm_replay_opts o = {.fn = collect, .ud = e};
    sm_status s = sm_replay_offline(cfg, log, path, &o, &st);
    if (s != SM_OK && out)
        fprintf(out, "backtest: %s: %s (%s)\n", path, sm_status_str(s), st.error);
    if (s == SM_OK && e->oom)
        s = SM_ERR_NOMEM;
    *end = st.last_recv_ms;
    return s;
}

sm_status sm_backtest_run(const sm_config *a, const sm_config *b,
                          const sm_log *log, const char *path, FILE *out,
                          sm_backtest_result *res)
{
    memset(res, 0, sizeof *res);
    episodes ea = {0}, eb = {0};
    int64_t end_a = 0, end_b = 0;
    sm_status s = run_one(a, log, path, &ea, out, &end_a);
    if (s == SM_OK)
        s = run_one(b, log, path, &eb, out, &end_b);
    if (s != SM_OK)
        goto cleanup;
    /* Episodes run to the last event time when unresolved. */
    int64_t end = INT64_MAX;
    res->episodes_a = ea.n;
    res->episodes_b = eb.n;
    for (size_t i = 0; i < ea.n; i++) {
        episode *x = &ea.v[i];
        episode *m = NULL;
        for (size_t j = 0; j < eb.n && !m; j++) {
            episode *y = &eb.v[j];
            if (!y->matched && y->type == x->type && !strcmp(y->swarm, x->swarm) &&
                !strcmp(y->affected, x->affected) && overlaps(x, y, end))
                m = y;
        }
        if (!m) {
            res->only_a++;
            if (out)
                print_episode(out, '-', x, "disappears");
            continue;
        }
        m->matched = x->matched = true;
        if (m->peak != x->peak || m->raised_at != x->raised_at) {
            res->changed++;
            if (out) {
                char note[128];
                snprintf(note, sizeof note, "severity %s -> %s, raised %+llds",
                         sm_severity_str((sm_severity)x->peak), sm_severity_str((sm_severity)m->peak),
                         (long long)((m->raised_at - x->raised_at) / 1000));
                print_episode(out, '~', x, note);
            }
        } else {
            res->same++;
        }
    }
    for (size_t j = 0; j < eb.n; j++)
        if (!eb.v[j].matched) {
            res->only_b++;
            if (out)
                print_episode(out, '+', &eb.v[j], "appears");
        }
    if (out)
        fprintf(out, "backtest: A %zu episodes, B %zu; %zu disappear, %zu appear, "
                     "%zu change, %zu unchanged\n",
                res->episodes_a, res->episodes_b, res->only_a, res->only_b,
                res->changed, res->same);
cleanup:
    free(ea.v);
    free(eb.v);
    return s;
}
