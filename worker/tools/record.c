#include "record.h"
#include "proc.h"

#include <errno.h>
#include <nats/nats.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bus_nats.h"
#include "recfile.h"

#define WAIT_ONE_MS 100     /* NextMsg wait with a single subscription */
#define WAIT_MANY_MS 20     /* idle wait on one of several, in turn */

typedef struct recorder {
    sm_recw *w;
    bool dirty;                 /* appended since the last flush */
    const char **hdrs;          /* key, value, ..., NULL; grow-only */
    size_t hdrs_cap;
} recorder;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static sm_status reserve(recorder *rc, size_t need)
{
    if (need <= rc->hdrs_cap)
        return SM_OK;
    size_t n = rc->hdrs_cap ? rc->hdrs_cap * 2 : 16;
    while (n < need)
        n *= 2;
    const char **p = realloc(rc->hdrs, n * sizeof *p);
    if (!p)
        return SM_ERR_NOMEM;
    rc->hdrs = p;
    rc->hdrs_cap = n;
    return SM_OK;
}

/* Fills rc->hdrs with m's headers: keys sorted, each key's values in
 * order. *out is NULL when m has none. Strings stay owned by m. */
static sm_status collect_headers(recorder *rc, natsMsg *m,
                                 const char *const **out)
{
    const char **keys = NULL;
    int nk = 0;
    *out = NULL;
    natsStatus ns = natsMsgHeader_Keys(m, &keys, &nk);
    if (ns == NATS_NOT_FOUND || (ns == NATS_OK && nk == 0)) {
        free((void *)keys);
        return SM_OK;
    }
    sm_status s = sm_bus_status(ns);
    size_t n = 0;
    if (s == SM_OK)
        qsort(keys, (size_t)nk, sizeof *keys, cmp_str);
    for (int i = 0; s == SM_OK && i < nk; i++) {
        const char **vals = NULL;
        int nv = 0;
        s = sm_bus_status(natsMsgHeader_Values(m, keys[i], &vals, &nv));
        if (s == SM_OK)
            s = reserve(rc, n + 2 * (size_t)nv + 1);
        for (int j = 0; s == SM_OK && j < nv; j++) {
            rc->hdrs[n++] = keys[i];
            rc->hdrs[n++] = vals[j];
        }
        free((void *)vals);
    }
    if (s == SM_OK && (s = reserve(rc, n + 1)) == SM_OK) {
        rc->hdrs[n] = NULL;
        *out = rc->hdrs;
    }
    free((void *)keys);
    return s;
}

static sm_status append_msg(recorder *rc, natsMsg *m)
{
    const char *const *hdrs = NULL;
    sm_status s = collect_headers(rc, m, &hdrs);
    if (s == SM_OK)
        s = sm_recw_append(rc->w, nats_Now(), natsMsg_GetSubject(m), hdrs,
                           natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
    if (s == SM_OK)
        rc->dirty = true;
    return s;
}

/* Next message from one of n subscriptions: a non-blocking sweep starting
 * at *turn, then a short wait on one of them, rotating. */
static natsStatus next_msg(natsSubscription **subs, size_t n, size_t *turn,
                           natsMsg **m)
{
    if (n == 1)
        return natsSubscription_NextMsg(m, subs[0], WAIT_ONE_MS);
    for (size_t k = 0; k < n; k++) {
        size_t i = (*turn + k) % n;
        natsStatus ns = natsSubscription_NextMsg(m, subs[i], 0);
        if (ns != NATS_TIMEOUT) {
            *turn = i + 1;
            return ns;
        }
    }
    return natsSubscription_NextMsg(m, subs[(*turn)++ % n], WAIT_MANY_MS);
}

sm_status sm_record_run(const sm_config *cfg, const sm_log *log,
                        const char *path, const char *const *subjects,
                        const sigset_t *stop, int64_t max_msgs,
                        uint64_t *written)
{
    static const char *const all_swarms[] = {"swarm.>", NULL};
    if (written)
        *written = 0;
    if (!cfg || !log || !path)
        return SM_ERR_INVALID;
    if (!subjects || !subjects[0])
        subjects = all_swarms;
    size_t nsubs = 0;
    while (subjects[nsubs])
        nsubs++;

    char err[512];
    recorder rc = {0};
    sm_bus *bus = NULL;
    natsSubscription **subs = NULL;
    natsStatus ns = NATS_OK;
    int64_t dropped = 0;
    sm_status s = sm_recw_open(&rc.w, path);
    if (s != SM_OK) {
        sm_log_write(log, SM_LOG_ERROR, "record_open_failed",
                     "path=\"%s\" detail=\"%s\"", path,
                     s == SM_ERR_IO ? strerror(errno) : sm_status_str(s));
        goto cleanup;
    }
    subs = calloc(nsubs, sizeof *subs);
    if (!subs) {
        s = SM_ERR_NOMEM;
        goto cleanup;
    }
    s = sm_bus_connect(&bus, cfg, log, err, sizeof err);
    if (s != SM_OK) {
        sm_log_write(log, SM_LOG_ERROR, "bus_connect_failed", "detail=\"%s\"", err);
        goto cleanup;
    }
    natsConnection *nc = sm_bus_conn(bus);
    for (size_t i = 0; ns == NATS_OK && i < nsubs; i++)
        ns = natsConnection_SubscribeSync(&subs[i], nc, subjects[i]);
    if (ns == NATS_OK)
        ns = natsConnection_FlushTimeout(nc, 2000);
    if (ns != NATS_OK) {
        sm_log_write(log, SM_LOG_ERROR, "subscribe_failed", "status=\"%s\"",
                     natsStatus_GetText(ns));
        s = sm_bus_status(ns);
        goto cleanup;
    }
    sm_log_write(log, SM_LOG_INFO, "record_started",
                 "path=\"%s\" subject=\"%s\" subjects=%zu max_msgs=%lld", path,
                 subjects[0], nsubs, (long long)max_msgs);

    size_t turn = 0;
    while (!sm_proc_stop_pending(stop, NULL) &&
           (max_msgs <= 0 || sm_recw_count(rc.w) < (uint64_t)max_msgs)) {
        natsMsg *m = NULL;
        ns = next_msg(subs, nsubs, &turn, &m);
        if (ns == NATS_TIMEOUT) {           /* idle: make the file current */
            if (rc.dirty && (s = sm_recw_flush(rc.w)) != SM_OK)
                break;
            rc.dirty = false;
            continue;
        }
        if (ns == NATS_SLOW_CONSUMER) {
            sm_log_write(log, SM_LOG_WARN, "record_dropped",
                         "detail=\"slow consumer: the server dropped messages "
                         "before they reached the recording\"");
            continue;
        }
        if (ns != NATS_OK) {
            sm_log_write(log, SM_LOG_ERROR, "record_bus_failed", "status=\"%s\"",
                         natsStatus_GetText(ns));
            s = sm_bus_status(ns);
            break;
        }
        s = append_msg(&rc, m);
        if (s == SM_ERR_INVALID) {          /* a field over the format's limits */
            sm_log_write(log, SM_LOG_WARN, "record_skipped",
                         "subject=\"%s\" detail=\"subject or a header is over "
                         "65535 bytes\"", natsMsg_GetSubject(m));
            s = SM_OK;
        }
        natsMsg_Destroy(m);
        if (s != SM_OK)
            break;
    }
    if (s != SM_OK && s != SM_ERR_BUS && s != SM_ERR_TIMEOUT)
        sm_log_write(log, SM_LOG_ERROR, "record_write_failed",
                     "path=\"%s\" status=%s", path, sm_status_str(s));

cleanup:
    for (size_t i = 0; subs && i < nsubs; i++) {
        int64_t d = 0;
        if (subs[i] && natsSubscription_GetDropped(subs[i], &d) == NATS_OK)
            dropped += d;
        natsSubscription_Destroy(subs[i]);
    }
    free(subs);
    sm_bus_close(bus);
    uint64_t count = sm_recw_count(rc.w);
    sm_status closed = sm_recw_close(rc.w);
    if (s == SM_OK)
        s = closed;
    free(rc.hdrs);
    if (written)
        *written = count;
    sm_log_write(log, s == SM_OK ? SM_LOG_INFO : SM_LOG_ERROR, "record_done",
                 "path=\"%s\" records=%llu dropped=%lld status=%s", path,
                 (unsigned long long)count, (long long)dropped,
                 sm_status_str(s));
    return s;
}
