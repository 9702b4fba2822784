/*
 * js.c - JetStream: streams checked or created, the durable pull consumer
 * as an inbox source, acks after commit, the output stream sink (js.h).
 */
#include "js.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus_nats.h"

/* How long one fetch waits for messages: the drain's latency. */
#define FETCH_MS 500
/* Longest pause between two polls of an idle consumer. */
#define IDLE_MAX_MS 16
/* The same for a partition's consumer: a worker polls one per partition
 * it owns, so an idle one is asked less often. */
#define IDLE_MAX_PART_MS 64
/* Batches fetched ahead of the worker at most. */
#define AHEAD_BATCHES 4
/* A reply subject of a JetStream message ($JS.ACK.<stream>.<consumer>...). */
#define ACK_SUBJECT_MAX 512
/* Messages delivered and not yet acknowledged before the server waits:
 * acks come once per commit (commit_interval, commit_events). */
#define MAX_ACK_PENDING (1 << 20)

/* Messages held for a message owed before them, at most. */
#define HOLD_MAX 4096

typedef struct held_msg {
    uint64_t seq, nd;
    natsMsg *m;
} held_msg;

typedef struct js_source {
    sm_js *js;
    int part;                   /* partition, -1 when not partitioned */
    char name[128];             /* durable consumer */
    char cursor[SM_PERSIST_CURSOR_NAME];    /* its cursor in the store */
    char stream[SM_PERSIST_CURSOR_NAME];    /* the stream it reads */
    char filter_buf[32];
    const char *filter;
    size_t strip;               /* "part.<k>." before the publisher's subject */
    natsSubscription *sub;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    atomic_bool done;           /* the fetch thread has ended */
    atomic_int inflight;        /* items pushed and not yet released */
    int64_t wait_ms;            /* before the first fetch (redeliveries) */
    /* fetch thread only */
    uint64_t next;              /* stream sequence of the next new message */
    held_msg held[HOLD_MAX];    /* came before their turn, by sequence */
    size_t n_held;
    int64_t owed_since;         /* when `next` began to be owed (ms) */
    /* worker thread only */
    uint64_t applied;           /* stream sequence applied (in memory) */
    char ack_subject[ACK_SUBJECT_MAX];  /* reply subject of `applied` */
    bool ack_due;
    /* the commit being prepared or written (a commit written by the
     * commit thread, writer.h, must not ack, count or hand back what was
     * applied after it was prepared): noted in sm_js_before_commit, used
     * in sm_js_committed */
    char commit_ack[ACK_SUBJECT_MAX];   /* ack_subject when it was prepared */
    bool commit_ack_due;
    uint64_t commit_applied;    /* applied when it was prepared */
    bool running;               /* fetching for us (partitions: owned) */
    bool loaded;                /* applied came from the store once */
    atomic_bool active;         /* its items are handled (not skipped);
                                   written by the worker thread, read by
                                   any (sm_js_owns) */
    uint64_t floor;             /* conclusions of items up to here were
                                   published by the previous owner */
    sm_js_clock clock;          /* the partition's bus clock */
    char clock_name[SM_PERSIST_CURSOR_NAME];    /* its store record */
    uint64_t committed;         /* applied as of the last commit that
                                   completed */
    int64_t retry_at;           /* a failed start is tried again then */
} js_source;

/* The lease of one partition. state and the figures the two threads
 * exchange are atomics; the rest is the lease thread's. */
enum { L_FREE, L_OWNED, L_RELEASE, L_RELEASED };

typedef struct js_lease {
    atomic_int state;           /* L_*: the lease thread takes (OWNED) and
                                   loses (FREE) it, asks for a hand-back
                                   (RELEASE); the worker thread says when
                                   the hand-back is committed (RELEASED) */
    atomic_uint_fast64_t floor;     /* the previous owner's committed sequence */
    atomic_uint_fast64_t committed; /* ours (worker thread writes) */
    uint64_t rev;               /* our last revision of the key */
    int64_t renewed_ms;         /* our last successful renewal */
    uint64_t seen_rev;          /* another owner's revision, as observed */
    int64_t seen_ms;            /* since when it has not changed */
} js_lease;

/* Members seen in the bucket (w.<id>), with when their key last changed. */
#define MAX_MEMBERS 64
typedef struct js_member {
    char id[48];
    uint64_t rev;
    int64_t seen_ms;
} js_member;

struct sm_js {
    const sm_config *cfg;
    const sm_log *log;
    sm_bus *bus;
    natsConnection *nc;
    jsCtx *ctx;
    sm_inbox *inbox;
    sm_persist *persist;
    uint32_t nparts;            /* 0: one source, not partitioned */
    js_source *srcs;            /* nparts of them, or one */
    const js_source *cur;       /* source of the item being handled */
    uint64_t cur_seq;
    sm_js_stats st;
    atomic_uint_fast64_t fetched, gaps;
    atomic_int_fast64_t pending;    /* the last delivery's NumPending */
    /* partitions: the leases (js.h, "Partitions") */
    char id[48];                /* worker_id */
    kvStore *kv;
    js_lease leases[SM_CONFIG_MAX_PARTITIONS];
    js_member members[MAX_MEMBERS];
    size_t n_members;
    pthread_t lease_thread;
    bool lease_started;
    atomic_bool lease_stop;
    atomic_bool draining;       /* renew only, take nothing */
    bool held_open;             /* the inbox source the leases hold open */
    atomic_uint_fast64_t taken, lost, handed_back, takeovers;
};

/* ---- streams ------------------------------------------------------------ */

/* Whether stream subject `have` matches every subject of filter `want`
 * (token by token: '*' covers one token, '>' the rest). */
static bool covers(const char *have, const char *want)
{
    for (;;) {
        size_t nh = strcspn(have, "."), nw = strcspn(want, ".");
        if (nh == 1 && have[0] == '>')
            return true;
        if (nw == 1 && want[0] == '>')
            return false;       /* want reaches further than have */
        if (!(nh == 1 && have[0] == '*') &&
            (nh != nw || memcmp(have, want, nh) != 0))
            return false;
        if (nw == 1 && want[0] == '*' && !(nh == 1 && have[0] == '*'))
            return false;
        have += nh;
        want += nw;
        if (!*have || !*want)
            return !*have && !*want;
        have++;
        want++;
    }
}

/* Why an existing stream does not fit, or NULL. */
static const char *misfit(const jsStreamConfig *sc, const char *subject,
                          bool dedup, char *why, size_t cap)
{
    /* the input: the consumer reads the whole stream, whose sequences are
     * then contiguous (the fetch thread's order check relies on it) */
    if (!dedup && (sc->SubjectsLen != 1 || strcmp(sc->Subjects[0], subject) != 0)) {
        snprintf(why, cap, "its subjects are not exactly %s (the worker reads "
                 "the whole input stream, in sequence)", subject);
        return why;
    }
    bool ok = false;
    for (int i = 0; i < sc->SubjectsLen && !ok; i++)
        ok = covers(sc->Subjects[i], subject);
    if (!ok) {
        snprintf(why, cap, "its subjects do not cover %s", subject);
        return why;
    }
    if (sc->Retention != js_LimitsPolicy) {
        snprintf(why, cap, "its retention is not limits (a work-queue or "
                 "interest stream deletes what a takeover must replay)");
        return why;
    }
    if (dedup && sc->Duplicates <= 0) {
        snprintf(why, cap, "it has no duplicate window");
        return why;
    }
    return NULL;
}

/* Checks stream `name` on `subject`, creating it if absent and allowed. */
static sm_status ensure_stream(sm_js *js, const char *name, const char *subject,
                               int64_t max_age_ms, int64_t dup_ms,
                               char *err, size_t errcap)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    char why[200];
    natsStatus s = js_GetStreamInfo(&si, js->ctx, name, NULL, &jerr);
    if (s == NATS_OK) {
        const char *bad = misfit(si->Config, subject, dup_ms > 0, why, sizeof why);
        if (bad)
            snprintf(err, errcap, "JetStream stream %s exists but does not fit: "
                     "%s; fix or delete it (or set js_stream / js_out_stream "
                     "to another name)", name, bad);
        jsStreamInfo_Destroy(si);
        return bad ? SM_ERR_CONFIG : SM_OK;
    }
    if (jerr != JSStreamNotFoundErr) {
        snprintf(err, errcap, "JetStream stream %s: %s (%s); is the server run "
                 "with JetStream (-js)?", name, natsStatus_GetText(s),
                 nats_GetLastError(NULL));
        return SM_ERR_BUS;
    }
    if (!js->cfg->js_setup) {
        snprintf(err, errcap, "JetStream stream %s does not exist and js_setup "
                 "is false (left to the deploy configs): create it on %s",
                 name, subject);
        return SM_ERR_CONFIG;
    }
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {subject};
    sc.Name = name;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Retention = js_LimitsPolicy;
    sc.Replicas = (int)js->cfg->js_replicas;
    sc.MaxAge = max_age_ms * 1000000;
    if (dup_ms > 0)
        sc.Duplicates = dup_ms * 1000000;
    s = js_AddStream(&si, js->ctx, &sc, NULL, &jerr);
    if (s != NATS_OK) {
        snprintf(err, errcap, "creating JetStream stream %s on %s: %s (%s)",
                 name, subject, natsStatus_GetText(s), nats_GetLastError(NULL));
        return SM_ERR_BUS;
    }
    jsStreamInfo_Destroy(si);
    sm_log_write(js->log, SM_LOG_INFO, "js_stream_created",
                 "stream=%s subject=%s max_age_ms=%lld dup_window_ms=%lld", name,
                 subject, (long long)max_age_ms, (long long)dup_ms);
    return SM_OK;
}

/* ---- the consumer ------------------------------------------------------- */

/* How long a partition consumer nobody pulls from is kept: a dead or
 * departed worker's, or ours for a partition another worker took. */
static int64_t inactive_threshold(const sm_config *cfg)
{
    int64_t t = 5 * cfg->lease_ttl_ms;
    return t > 60000 ? t : 60000;
}

static natsStatus add_consumer(sm_js *js, js_source *src, uint64_t after,
                               jsErrCode *jerr)
{
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = src->name;
    cc.FilterSubject = src->filter;
    cc.AckPolicy = js_AckAll;           /* one ack covers a commit */
    cc.AckWait = js->cfg->js_ack_wait_ms * 1000000;
    cc.MaxDeliver = -1;                 /* poison: ours to dead-letter */
    cc.MaxAckPending = MAX_ACK_PENDING; /* acks come once per commit */
    cc.DeliverPolicy = after ? js_DeliverByStartSequence : js_DeliverAll;
    cc.OptStartSeq = after ? after + 1 : 0;
    /* a partition's consumer is this worker's alone (its name carries
     * worker_id): the server removes it once nobody pulls from it */
    if (src->part >= 0)
        cc.InactiveThreshold = inactive_threshold(js->cfg) * 1000000;
    jsConsumerInfo *ci = NULL;
    natsStatus s = js_AddConsumer(&ci, js->ctx, src->stream, &cc, NULL, jerr);
    jsConsumerInfo_Destroy(ci);
    return s;
}

/* Why an existing consumer is not ours to use as it is, or NULL. */
static const char *consumer_misfit(const jsConsumerInfo *ci, const js_source *src)
{
    const jsConsumerConfig *c = ci->Config;
    if (c->DeliverSubject && c->DeliverSubject[0])
        return "a push consumer";
    if (!c->FilterSubject || strcmp(c->FilterSubject, src->filter) != 0)
        return "another filter subject";
    if (c->AckPolicy != js_AckAll)
        return "another ack policy";
    return NULL;
}

/* How long until every message delivered before now and not acknowledged
 * is due again: ack_wait, plus the life of a pull request a dead worker
 * left behind (the server may still deliver into it), plus a margin for
 * the server's redelivery timer. */
static int64_t redelivery_wait(int64_t ack_wait_ms)
{
    return ack_wait_ms + FETCH_MS + 300;
}

/* Makes the consumer fit the cursor the store holds (js.h, "Order"). */
static sm_status ensure_consumer(sm_js *js, js_source *src, uint64_t cursor,
                                 char *err, size_t errcap)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    const char *why = NULL;
    natsStatus s = js_GetConsumerInfo(&ci, js->ctx, src->stream, src->name,
                                      NULL, &jerr);
    if (s != NATS_OK && jerr != JSConsumerNotFoundErr) {
        snprintf(err, errcap, "JetStream consumer %s: %s (%s)", src->name,
                 natsStatus_GetText(s), nats_GetLastError(NULL));
        return SM_ERR_BUS;
    }
    bool recreate = false;
    if (s == NATS_OK) {
        why = consumer_misfit(ci, src);
        if (!why && ci->AckFloor.Stream > cursor)
            why = "acknowledged beyond this store's cursor (a new or older "
                  "store): replaying the retained stream from the cursor";
        recreate = why != NULL;
        if (!recreate && ci->Delivered.Stream > cursor && ci->NumAckPending > 0)
            src->wait_ms = redelivery_wait(ci->Config->AckWait / 1000000);
        sm_log_write(js->log, recreate ? SM_LOG_WARN : SM_LOG_INFO, "js_consumer",
                     "consumer=%s cursor=%llu delivered=%llu ack_floor=%llu "
                     "ack_pending=%lld pending=%llu action=%s wait_ms=%lld%s%s%s",
                     src->name, (unsigned long long)cursor,
                     (unsigned long long)ci->Delivered.Stream,
                     (unsigned long long)ci->AckFloor.Stream,
                     (long long)ci->NumAckPending,
                     (unsigned long long)ci->NumPending,
                     recreate ? "recreate" : "resume", (long long)src->wait_ms,
                     why ? " detail=\"" : "", why ? why : "", why ? "\"" : "");
        jsConsumerInfo_Destroy(ci);
        if (recreate)
            s = js_DeleteConsumer(js->ctx, src->stream, src->name, NULL, &jerr);
        if (s != NATS_OK) {
            snprintf(err, errcap, "deleting JetStream consumer %s: %s",
                     src->name, natsStatus_GetText(s));
            return SM_ERR_BUS;
        }
    }
    if (s != NATS_OK || recreate) {
        s = add_consumer(js, src, cursor, &jerr);
        if (s != NATS_OK) {
            snprintf(err, errcap, "creating JetStream consumer %s on %s: %s (%s)",
                     src->name, src->filter, natsStatus_GetText(s),
                     nats_GetLastError(NULL));
            return SM_ERR_BUS;
        }
        sm_log_write(js->log, SM_LOG_INFO, "js_consumer_created",
                     "consumer=%s filter=%s start_after=%llu", src->name,
                     src->filter, (unsigned long long)cursor);
    }
    return SM_OK;
}

/* ---- items -------------------------------------------------------------- */

static const char *msg_header(const sm_item *it, const char *key)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(it->src, key, &v) != NATS_OK)
        return NULL;
    return v;
}

static void msg_release(sm_item *it)
{
    js_source *src = it->ctx;
    natsMsg_Destroy(it->src);
    atomic_fetch_sub(&src->inflight, 1);
}

/* Worker thread: whether the source's items are ours to handle: always
 * when not partitioned; else while it runs and the lease is not lost
 * (the lease thread's word counts at once, before sm_js_poll stops it). */
static bool src_owned(const js_source *src)
{
    return src->part < 0 ||
           (atomic_load(&src->active) &&
            atomic_load(&src->js->leases[src->part].state) != L_FREE);
}

/* Worker thread: the item about to be handled. */
static bool msg_seen(const sm_item *it)
{
    js_source *src = it->ctx;
    src->js->cur = src;
    src->js->cur_seq = it->seq;
    if (!src_owned(src)) {
        src->js->st.not_owned_skipped++;    /* the next owner's to apply */
        return true;
    }
    if (it->seq > src->applied) {
        src->js->st.poison += it->reject != NULL;
        return false;
    }
    src->js->st.redelivered_seen++;
    src->ack_due = true;        /* acked again by the next commit */
    return true;
}

/* Worker thread: applied (accepted or dead-lettered); acked after the
 * commit that holds it. */
static sm_status msg_settle(sm_item *it, sm_settle how, int64_t delay_ms)
{
    js_source *src = it->ctx;
    if (how == SM_SETTLE_NAK)
        return sm_bus_status(natsMsg_NakWithDelay(it->src, delay_ms, NULL));
    if (how == SM_SETTLE_TERM)
        return sm_bus_status(natsMsg_Term(it->src, NULL));
    if (it->seq > src->applied) {
        src->applied = it->seq;
        const char *reply = natsMsg_GetReply(it->src);
        snprintf(src->ack_subject, sizeof src->ack_subject, "%s", reply ? reply : "");
        src->ack_due = true;
    }
    return SM_OK;
}

static const sm_item_ops js_ops = {
    .header = msg_header,
    .seen = msg_seen,
    .settle = msg_settle,
    .release = msg_release,
};

/* ---- the fetch thread --------------------------------------------------- */

/* Sleeps ms in slices; false if stopped meanwhile. */
static bool nap(js_source *src, int64_t ms)
{
    for (int64_t t = 0; t < ms && !atomic_load(&src->stop); t += 50)
        nats_Sleep(50);
    return !atomic_load(&src->stop);
}

/* Whether stream sequence seq is gone from the stream (deleted, or
 * expired by max age): then nothing will ever deliver it. */
static bool seq_gone(js_source *src, uint64_t seq)
{
    sm_js *js = src->js;
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetMsg(&m, js->ctx, src->stream, seq, NULL, &jerr);
    natsMsg_Destroy(m);
    return s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr;
}

/* Pushes one message into the inbox as an item. */
static void push(js_source *src, natsMsg *m, uint64_t sseq, uint64_t nd)
{
    sm_js *js = src->js;
    const char *subject = natsMsg_GetSubject(m);
    if (src->strip && strlen(subject) > src->strip)
        subject += src->strip;  /* part.<k>.swarm...: the publisher's */
    sm_item it = {
        .subject = subject,
        .reply = NULL,
        .data = natsMsg_GetData(m),
        .len = (size_t)natsMsg_GetDataLength(m),
        .ops = &js_ops,
        .src = m,
        .ctx = src,
        .seq = sseq,
        .reject = nd >= (uint64_t)js->cfg->js_max_deliver
                      ? "poison: delivered js_max_deliver times without being "
                        "committed (did it stop the worker?)"
                      : NULL,
    };
    atomic_fetch_add(&src->inflight, 1);
    if (sm_inbox_push(js->inbox, &it) != SM_OK) {
        natsMsg_Destroy(m);
        atomic_fetch_sub(&src->inflight, 1);
    } else {
        atomic_fetch_add(&js->fetched, 1);
    }
}

/* Holds a message that came before its turn, in stream order (a second
 * copy of one held is dropped). False when the hold is full: then the
 * message is dropped unacknowledged and comes back later. */
static bool hold(js_source *src, natsMsg *m, uint64_t sseq, uint64_t nd)
{
    size_t i = src->n_held;
    while (i > 0 && src->held[i - 1].seq > sseq)
        i--;
    if ((i > 0 && src->held[i - 1].seq == sseq) || src->n_held == HOLD_MAX) {
        natsMsg_Destroy(m);
        return i > 0 && src->held[i - 1].seq == sseq;
    }
    memmove(&src->held[i + 1], &src->held[i], (src->n_held - i) * sizeof *src->held);
    src->held[i] = (held_msg){.seq = sseq, .nd = nd, .m = m};
    src->n_held++;
    return true;
}

/* Pushes what is held and now in turn. */
static void release_held(js_source *src)
{
    size_t k = 0;
    while (k < src->n_held && src->held[k].seq <= src->next) {
        held_msg *h = &src->held[k++];
        if (h->seq == src->next)
            src->next++;
        push(src, h->m, h->seq, h->nd);
    }
    memmove(src->held, &src->held[k], (src->n_held - k) * sizeof *src->held);
    src->n_held -= k;
}

/* Takes one fetched message. The consumer reads the whole stream, so
 * stream sequences are contiguous and each new message is `next`; one
 * after it means a message before it is still owed (lost on the way, or
 * delivered to a dead worker's pull request): it is held until the owed
 * ones are redelivered, so the worker applies the stream in order and a
 * cursor can tell a redelivery from a new message. A redelivery of what
 * was pushed already goes through (the worker skips it as seen). */
static void take(js_source *src, natsMsg *m)
{
    sm_js *js = src->js;
    jsMsgMetaData *md = NULL;
    if (natsMsg_GetMetaData(&md, m) != NATS_OK) {
        natsMsg_Destroy(m);     /* a status message, not a delivery */
        return;
    }
    uint64_t sseq = md->Sequence.Stream, nd = md->NumDelivered;
    atomic_store(&js->pending, (int_fast64_t)md->NumPending);
    jsMsgMetaData_Destroy(md);
    if (sseq <= src->next) {
        if (sseq == src->next)
            src->next++;
        push(src, m, sseq, nd);
        release_held(src);
        return;
    }
    if (src->n_held == 0) {
        atomic_fetch_add(&js->gaps, 1);
        src->owed_since = nats_Now();
        sm_log_write(js->log, SM_LOG_WARN, "js_delivery_gap",
                     "consumer=%s expected=%llu got=%llu detail=\"a message "
                     "before this one is still owed (lost on the way, or in "
                     "flight to a dead worker): held until it is redelivered\"",
                     src->name, (unsigned long long)src->next,
                     (unsigned long long)sseq);
    }
    hold(src, m, sseq, nd);
}

/* A message owed for long: if the stream no longer has it (deleted,
 * expired), nothing will redeliver it; go on from what is held. */
static void check_owed(js_source *src)
{
    sm_js *js = src->js;
    if (src->n_held == 0 ||
        nats_Now() - src->owed_since < 3 * redelivery_wait(js->cfg->js_ack_wait_ms))
        return;
    src->owed_since = nats_Now();
    if (!seq_gone(src, src->next))
        return;
    sm_log_write(js->log, SM_LOG_WARN, "js_sequence_jump",
                 "consumer=%s from=%llu to=%llu detail=\"the messages between "
                 "are gone from the stream\"", src->name,
                 (unsigned long long)src->next,
                 (unsigned long long)src->held[0].seq);
    src->next = src->held[0].seq;
    release_held(src);
}

static void *fetch_main(void *arg)
{
    js_source *src = arg;
    sm_js *js = src->js;
    int64_t errors = 0, idle_ms = 1;
    if (src->wait_ms > 0) {
        sm_log_write(js->log, SM_LOG_INFO, "js_redelivery_wait",
                     "consumer=%s wait_ms=%lld detail=\"messages delivered to a "
                     "worker that never acknowledged them come back first\"",
                     src->name, (long long)src->wait_ms);
        nap(src, src->wait_ms);
    }
    while (!atomic_load(&src->stop)) {
        /* fetch only a few batches ahead of the worker: what is fetched
         * and not yet committed comes back after a crash, and each
         * delivery counts towards js_max_deliver */
        sm_inbox_stats is;
        sm_inbox_stats_get(js->inbox, &is);
        if (is.queued > (size_t)(AHEAD_BATCHES * js->cfg->js_fetch_batch)) {
            nats_Sleep(1);
            continue;
        }
        /* no_wait: the server answers with what it has and forgets the
         * request; a waiting request outliving the client's wait took
         * messages the client then discarded (lost until ack_wait) */
        natsMsgList list = {0};
        jsErrCode jerr = 0;
        jsFetchRequest req;
        jsFetchRequest_Init(&req);
        req.Batch = (int)js->cfg->js_fetch_batch;
        req.NoWait = true;
        req.Expires = (int64_t)FETCH_MS * 1000000;
        natsStatus s = natsSubscription_FetchRequest(&list, src->sub, &req);
        if (s == NATS_TIMEOUT || s == NATS_NOT_FOUND || (s == NATS_OK && list.Count == 0)) {
            natsMsgList_Destroy(&list);
            check_owed(src);
            nats_Sleep(idle_ms);        /* nothing now: poll, backing off */
            int64_t cap = src->part >= 0 ? IDLE_MAX_PART_MS : IDLE_MAX_MS;
            idle_ms = idle_ms < cap ? idle_ms * 2 : cap;
            continue;
        }
        idle_ms = 1;
        if (s != NATS_OK) {
            if (errors++ % 20 == 0)
                sm_log_write(js->log, SM_LOG_WARN, "js_fetch_failed",
                             "consumer=%s status=\"%s\" code=%d errors=%lld "
                             "detail=\"%s\"", src->name, natsStatus_GetText(s),
                             (int)jerr, (long long)errors, nats_GetLastError(NULL));
            natsMsgList_Destroy(&list);
            nap(src, 200);
            continue;
        }
        errors = 0;
        if (list.Count > 0)
            sm_log_write(js->log, SM_LOG_DEBUG, "js_fetched", "consumer=%s count=%d",
                         src->name, list.Count);
        for (int i = 0; i < list.Count; i++) {
            natsMsg *m = list.Msgs[i];
            list.Msgs[i] = NULL;
            if (atomic_load(&src->stop))
                natsMsg_Destroy(m);     /* redelivered later */
            else
                take(src, m);
        }
        natsMsgList_Destroy(&list);
        check_owed(src);
    }
    for (size_t i = 0; i < src->n_held; i++)
        natsMsg_Destroy(src->held[i].m);
    src->n_held = 0;
    sm_inbox_source_done(js->inbox, SM_OK);
    atomic_store(&src->done, true);
    return NULL;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts fetching for src after stream sequence `cursor` (what the store
 * holds of it). Worker thread. */
static sm_status source_start(sm_js *js, js_source *src, uint64_t cursor,
                              char *err, size_t errcap)
{
    src->js = js;
    src->applied = cursor;
    src->loaded = true;
    src->wait_ms = 0;
    src->n_held = 0;
    src->ack_due = false;
    src->ack_subject[0] = 0;
    atomic_store(&src->stop, false);
    atomic_store(&src->done, false);
    sm_status rc = ensure_consumer(js, src, src->applied, err, errcap);
    if (rc != SM_OK)
        return rc;
    /* the first message owed: after the cursor, or the stream's first
     * (older ones expired) */
    jsStreamInfo *si = NULL;
    src->next = src->applied + 1;
    if (js_GetStreamInfo(&si, js->ctx, src->stream, NULL, NULL) == NATS_OK &&
        si->State.FirstSeq > src->next)
        src->next = si->State.FirstSeq;
    jsStreamInfo_Destroy(si);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = src->stream;
    so.Consumer = src->name;
    jsErrCode jerr = 0;
    natsStatus s = js_PullSubscribe(&src->sub, js->ctx, src->filter, src->name,
                                    NULL, &so, &jerr);
    if (s != NATS_OK) {
        snprintf(err, errcap, "pull subscription on consumer %s: %s (%s)",
                 src->name, natsStatus_GetText(s), nats_GetLastError(NULL));
        return SM_ERR_BUS;
    }
    sm_inbox_source_open(js->inbox);
    if (pthread_create(&src->thread, NULL, fetch_main, src) != 0) {
        sm_inbox_source_done(js->inbox, SM_ERR_NOMEM);
        natsSubscription_Destroy(src->sub);
        src->sub = NULL;
        return SM_ERR_NOMEM;
    }
    src->started = true;
    return SM_OK;
}

/* Joins an ended fetch thread (stop it first) and drops its subscription
 * (not unsubscribed: the durable consumer stays for the next start). */
static void source_join(js_source *src)
{
    if (src->started)
        pthread_join(src->thread, NULL);
    src->started = false;
    natsSubscription_Destroy(src->sub);
    src->sub = NULL;
}

/* ---- partitions: leases ------------------------------------------------- */

uint32_t sm_js_lease_target(uint32_t n, uint32_t members)
{
    return members ? (n + members - 1) / members : n;
}

bool sm_js_lease_parse(const char *value, size_t len, char *owner, size_t cap,
                       uint64_t *seq)
{
    char buf[96];
    if (!value || len == 0 || len >= sizeof buf || cap == 0)
        return false;
    memcpy(buf, value, len);
    buf[len] = 0;
    char *sp = strchr(buf, ' ');
    if (!sp || sp == buf || (size_t)(sp - buf) >= cap)
        return false;
    char *end = NULL;
    unsigned long long v = strtoull(sp + 1, &end, 10);
    if (!end || end == sp + 1 || *end)
        return false;
    *sp = 0;
    snprintf(owner, cap, "%s", buf);
    *seq = (uint64_t)v;
    return true;
}

static void lease_key(char *buf, size_t cap, int k)
{
    snprintf(buf, cap, "p%d", k);
}

/* What the lease of k says: who holds it and the sequence up to which
 * conclusions of its partition are published (the previous owner's
 * committed sequence, or ours when further). */
static void lease_value(const sm_js *js, int k, const char *owner, char *buf,
                        size_t cap)
{
    const js_lease *l = &js->leases[k];
    uint64_t f = atomic_load(&l->floor), c = atomic_load(&l->committed);
    snprintf(buf, cap, "%s %llu", owner, (unsigned long long)(c > f ? c : f));
}

static void lease_lose(sm_js *js, int k, const char *why)
{
    js_lease *l = &js->leases[k];
    int st = atomic_exchange(&l->state, L_FREE);
    if (st == L_FREE)
        return;
    atomic_fetch_add(&js->lost, 1);
    sm_log_write(js->log, SM_LOG_WARN, "lease_lost",
                 "partition=%d worker=%s detail=\"%s: its input stops at once "
                 "(no more items handled, no conclusions published for its "
                 "swarms)\"", k, js->id, why);
}

/* Renews what we hold; writes a hand-back the worker thread committed. */
static void lease_renew(sm_js *js, int k, int64_t now)
{
    js_lease *l = &js->leases[k];
    int st = atomic_load(&l->state);
    if (st == L_FREE)
        return;
    char key[16], val[96];
    lease_key(key, sizeof key, k);
    uint64_t rev = 0;
    if (st == L_RELEASED) {
        lease_value(js, k, "-", val, sizeof val);
        natsStatus s = kvStore_UpdateString(&rev, js->kv, key, val, l->rev);
        int expect = L_RELEASED;
        atomic_compare_exchange_strong(&l->state, &expect, L_FREE);
        atomic_fetch_add(&js->handed_back, 1);
        sm_log_write(js->log, s == NATS_OK ? SM_LOG_INFO : SM_LOG_WARN,
                     "partition_handed_back", "partition=%d worker=%s value=\"%s\" "
                     "status=\"%s\"", k, js->id, val, natsStatus_GetText(s));
        return;
    }
    lease_value(js, k, js->id, val, sizeof val);
    natsStatus s = kvStore_UpdateString(&rev, js->kv, key, val, l->rev);
    if (s == NATS_OK) {
        l->rev = rev;
        l->renewed_ms = now;
        return;
    }
    kvEntry *e = NULL;
    s = kvStore_Get(&e, js->kv, key);
    char why[160];
    if (s == NATS_OK && kvEntry_Revision(e) != l->rev) {
        snprintf(why, sizeof why, "the key was written by another (revision "
                 "%llu, value '%.60s')", (unsigned long long)kvEntry_Revision(e),
                 kvEntry_ValueString(e));
        lease_lose(js, k, why);
    } else if (s == NATS_NOT_FOUND) {
        lease_lose(js, k, "the key was deleted by another");
    } else if (now - l->renewed_ms >= js->cfg->lease_ttl_ms) {
        lease_lose(js, k, "not renewed for lease_ttl (server away?)");
    }
    kvEntry_Destroy(e);
}

/* The members in the bucket that renewed within lease_ttl, us included;
 * a member key unchanged for lease_ttl is deleted. */
static uint32_t lease_members(sm_js *js, int64_t now)
{
    char key[64];
    snprintf(key, sizeof key, "w.%s", js->id);
    uint64_t rev = 0;
    (void)kvStore_PutString(&rev, js->kv, key, "alive");
    kvKeysList list = {0};
    uint32_t live = 1;
    bool listed[MAX_MEMBERS] = {false};
    if (kvStore_Keys(&list, js->kv, NULL) == NATS_OK) {
        for (int i = 0; i < list.Count; i++) {
            const char *k = list.Keys[i];
            if (strncmp(k, "w.", 2) != 0 || strcmp(k + 2, js->id) == 0)
                continue;
            kvEntry *e = NULL;
            if (kvStore_Get(&e, js->kv, k) != NATS_OK)
                continue;
            uint64_t r = kvEntry_Revision(e);
            kvEntry_Destroy(e);
            size_t m = 0;
            while (m < js->n_members && strcmp(js->members[m].id, k + 2) != 0)
                m++;
            if (m == js->n_members) {
                if (m == MAX_MEMBERS)
                    continue;
                snprintf(js->members[m].id, sizeof js->members[m].id, "%s", k + 2);
                js->members[m].rev = 0;
                js->n_members++;
            }
            listed[m] = true;
            js_member *mb = &js->members[m];
            if (mb->rev != r) {
                mb->rev = r;
                mb->seen_ms = now;
            }
            if (now - mb->seen_ms < js->cfg->lease_ttl_ms) {
                live++;
            } else {
                sm_log_write(js->log, SM_LOG_INFO, "member_gone",
                             "member=%s detail=\"not renewed for lease_ttl\"",
                             mb->id);
                (void)kvStore_Delete(js->kv, k);
                listed[m] = false;
            }
        }
        kvKeysList_Destroy(&list);
    }
    size_t n = 0;           /* forget those no longer listed */
    for (size_t m = 0; m < js->n_members; m++)
        if (listed[m])
            js->members[n++] = js->members[m];
    js->n_members = n;
    return live;
}

/* Takes free partitions up to the target, hands back those beyond it. */
static void lease_balance(sm_js *js, uint32_t members, int64_t now)
{
    uint32_t n = js->nparts, owned = 0;
    for (uint32_t k = 0; k < n; k++)
        owned += atomic_load(&js->leases[k].state) == L_OWNED;
    uint32_t target = sm_js_lease_target(n, members);
    /* start from a place of our own, so two workers starting together
     * ask for different partitions first */
    uint32_t start = sm_js_partition(js->id, n);
    for (uint32_t i = 0; i < n && !atomic_load(&js->draining); i++) {
        int k = (int)((start + i) % n);
        js_lease *l = &js->leases[k];
        if (atomic_load(&l->state) != L_FREE)
            continue;
        char key[16], owner[64] = "", val[96];
        lease_key(key, sizeof key, k);
        uint64_t seq = 0, rev = 0, have = 0;
        bool free_now = true;
        kvEntry *e = NULL;
        natsStatus s = kvStore_Get(&e, js->kv, key);
        if (s == NATS_OK) {
            have = kvEntry_Revision(e);
            if (!sm_js_lease_parse(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e),
                                   owner, sizeof owner, &seq))
                snprintf(owner, sizeof owner, "?");
            if (have != l->seen_rev) {
                l->seen_rev = have;
                l->seen_ms = now;
            }
            /* "-": handed back; our own id: a life of ours before;
             * another's unchanged for lease_ttl: its holder is gone */
            free_now = strcmp(owner, "-") == 0 || strcmp(owner, js->id) == 0 ||
                       now - l->seen_ms >= js->cfg->lease_ttl_ms;
        } else if (s != NATS_NOT_FOUND) {
            free_now = false;           /* cannot tell: not now */
        }
        kvEntry_Destroy(e);
        if (!free_now || owned >= target)
            continue;
        atomic_store(&l->floor, seq);
        atomic_store(&l->committed, 0);
        lease_value(js, k, js->id, val, sizeof val);
        s = have ? kvStore_UpdateString(&rev, js->kv, key, val, have)
                 : kvStore_CreateString(&rev, js->kv, key, val);
        if (s != NATS_OK)
            continue;                   /* another was quicker */
        bool takeover = have && strcmp(owner, "-") != 0 && strcmp(owner, js->id) != 0;
        l->rev = rev;
        l->renewed_ms = now;
        atomic_store(&l->state, L_OWNED);
        atomic_fetch_add(&js->taken, 1);
        if (takeover)
            atomic_fetch_add(&js->takeovers, 1);
        owned++;
        sm_log_write(js->log, SM_LOG_INFO, "lease_taken",
                     "partition=%d worker=%s from=%s floor=%llu members=%u "
                     "target=%u detail=\"%s\"", k, js->id, have ? owner : "-",
                     (unsigned long long)seq, members, target,
                     takeover ? "its holder did not renew it for lease_ttl"
                              : have ? "handed back" : "never held");
    }
    /* more than our share (a member joined): hand the highest back */
    for (int k = (int)n - 1; k >= 0 && owned > target; k--) {
        int expect = L_OWNED;
        if (atomic_compare_exchange_strong(&js->leases[k].state, &expect, L_RELEASE)) {
            owned--;
            sm_log_write(js->log, SM_LOG_INFO, "partition_release",
                         "partition=%d worker=%s members=%u target=%u", k, js->id,
                         members, target);
        }
    }
}

static void lease_round(sm_js *js)
{
    int64_t now = mono_ms();
    for (uint32_t k = 0; k < js->nparts; k++)
        lease_renew(js, (int)k, now);
    if (atomic_load(&js->draining))
        return;
    lease_balance(js, lease_members(js, now), now);
}

static bool any_released(sm_js *js)
{
    for (uint32_t k = 0; k < js->nparts; k++)
        if (atomic_load(&js->leases[k].state) == L_RELEASED)
            return true;
    return false;
}

static void *lease_main(void *arg)
{
    sm_js *js = arg;
    int64_t every = js->cfg->lease_ttl_ms / 3;
    while (!atomic_load(&js->lease_stop)) {
        int64_t t0 = mono_ms();
        lease_round(js);
        /* a hand-back the worker thread committed is written at once */
        while (!atomic_load(&js->lease_stop) && mono_ms() - t0 < every &&
               !any_released(js))
            nats_Sleep(20);
    }
    return NULL;
}

static void lease_thread_stop(sm_js *js)
{
    atomic_store(&js->lease_stop, true);
    if (js->lease_started)
        pthread_join(js->lease_thread, NULL);
    js->lease_started = false;
}

/* The bucket of the leases: opened, or created when absent (js_setup). */
static sm_status open_bucket(sm_js *js, char *err, size_t errcap)
{
    natsStatus s = js_KeyValue(&js->kv, js->ctx, js->cfg->lease_bucket);
    if (s == NATS_OK)
        return SM_OK;
    if (!js->cfg->js_setup) {
        snprintf(err, errcap, "lease bucket %s: %s (js_setup is false: create "
                 "it, history 1)", js->cfg->lease_bucket, natsStatus_GetText(s));
        return s == NATS_NOT_FOUND ? SM_ERR_CONFIG : SM_ERR_BUS;
    }
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = js->cfg->lease_bucket;
    kc.History = 1;
    kc.StorageType = js_FileStorage;
    kc.Replicas = (int)js->cfg->js_replicas;
    s = js_CreateKeyValue(&js->kv, js->ctx, &kc);
    if (s != NATS_OK) {
        snprintf(err, errcap, "creating lease bucket %s: %s (%s)",
                 js->cfg->lease_bucket, natsStatus_GetText(s), nats_GetLastError(NULL));
        return SM_ERR_BUS;
    }
    return SM_OK;
}

/* Partition k's source: its stream, consumer (ours alone) and cursor. */
static void part_source(sm_js *js, int k)
{
    js_source *src = &js->srcs[k];
    const sm_config *cfg = js->cfg;
    src->js = js;
    src->part = k;
    snprintf(src->stream, sizeof src->stream, "%s_P%d", cfg->js_stream, k);
    snprintf(src->cursor, sizeof src->cursor, "%s_P%d", cfg->js_stream, k);
    snprintf(src->clock_name, sizeof src->clock_name, "%s_P%d_clock", cfg->js_stream, k);
    src->clock.part = (uint32_t)k;
    snprintf(src->name, sizeof src->name, "%s_%s_P%d", cfg->js_consumer, js->id, k);
    snprintf(src->filter_buf, sizeof src->filter_buf, "part.%d.>", k);
    src->filter = src->filter_buf;
    src->strip = strlen(src->filter_buf) - 1;   /* "part.<k>." */
}

/* worker_id, or <host>-<pid> (host cut to 20 bytes of [A-Za-z0-9-]). */
static void set_worker_id(sm_js *js)
{
    const sm_config *cfg = js->cfg;
    if (cfg->worker_id[0]) {
        snprintf(js->id, sizeof js->id, "%s", cfg->worker_id);
    } else {
        char host[64] = "";
        if (gethostname(host, sizeof host - 1) != 0 || !host[0])
            snprintf(host, sizeof host, "worker");
        host[20] = 0;
        for (char *c = host; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '-'))
                *c = '-';
        snprintf(js->id, sizeof js->id, "%.20s-%ld", host, (long)getpid());
    }
}

static sm_status open_partitions(sm_js *js, char *err, size_t errcap)
{
    const sm_config *cfg = js->cfg;
    sm_status rc = open_bucket(js, err, errcap);
    if (rc != SM_OK)
        return rc;
    /* the inbox has a source while we hold no partition: the leases */
    sm_inbox_source_open(js->inbox);
    js->held_open = true;
    lease_round(js);            /* the first share before ready */
    if (pthread_create(&js->lease_thread, NULL, lease_main, js) != 0)
        return SM_ERR_NOMEM;
    js->lease_started = true;
    sm_log_write(js->log, SM_LOG_INFO, "partitions",
                 "partitions=%u worker=%s bucket=%s lease_ttl_ms=%lld",
                 js->nparts, js->id, cfg->lease_bucket, (long long)cfg->lease_ttl_ms);
    sm_js_poll(js);
    return SM_OK;
}

/* The stream's last sequence, 0 when empty or unknown. */
static uint64_t stream_last(sm_js *js, const char *stream)
{
    jsStreamInfo *si = NULL;
    uint64_t last = 0;
    if (js_GetStreamInfo(&si, js->ctx, stream, NULL, NULL) == NATS_OK &&
        si->State.Msgs > 0)
        last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return last;
}

/* Starts partition k's source for us, the new owner. */
static void part_start(sm_js *js, int k, int64_t now)
{
    js_source *src = &js->srcs[k];
    if (src->started && (!atomic_load(&src->done) || atomic_load(&src->inflight) > 0))
        return;                 /* the last run's items are still going */
    source_join(src);
    uint64_t cursor = src->loaded ? src->applied
                                  : sm_persist_cursor(js->persist, src->cursor);
    if (!src->loaded) {
        src->clock.bus_ms = (int64_t)sm_persist_cursor(js->persist, src->clock_name);
        src->clock.tick = src->clock.bus_ms / js->cfg->detect.tick_ms;
    }
    src->floor = atomic_load(&js->leases[k].floor);
    /* the store's cursor is committed; what was applied in memory since
     * the last commit that completed is counted only when one holding it
     * completes (sm_js_committed) */
    if (!src->loaded)
        src->committed = cursor;
    atomic_store(&js->leases[k].committed, src->committed);
    char err[400];
    sm_status rc = source_start(js, src, cursor, err, sizeof err);
    if (rc != SM_OK) {
        src->retry_at = now + 1000;
        sm_log_write(js->log, SM_LOG_ERROR, "partition_start_failed",
                     "partition=%d status=\"%s\" detail=\"%s\" retry=yes", k,
                     sm_status_str(rc), err);
        return;
    }
    src->running = true;
    atomic_store(&src->active, true);
    sm_log_write(js->log, SM_LOG_INFO, "partition_started",
                 "partition=%d consumer=%s cursor=%llu floor=%llu bus_ms=%lld "
                 "last=%llu detail=\"windows rebuilt from the retained stream "
                 "after the cursor; conclusions up to floor were published by "
                 "the previous owner\"", k, src->name, (unsigned long long)cursor,
                 (unsigned long long)src->floor, (long long)src->clock.bus_ms,
                 (unsigned long long)stream_last(js, src->stream));
}

void sm_js_poll(sm_js *js)
{
    if (!js || js->nparts == 0)
        return;
    int64_t now = mono_ms();
    for (uint32_t i = 0; i < js->nparts; i++) {
        int k = (int)i;
        js_source *src = &js->srcs[k];
        js_lease *l = &js->leases[k];
        int st = atomic_load(&l->state);
        if (src->running && (st == L_FREE || st == L_RELEASE)) {
            atomic_store(&src->stop, true);
            src->running = false;
            atomic_store(&src->active, false);
            sm_log_write(js->log, st == L_FREE ? SM_LOG_WARN : SM_LOG_INFO,
                         "partition_stopped", "partition=%d reason=%s applied=%llu",
                         k, st == L_FREE ? "lease_lost" : "handing_back",
                         (unsigned long long)src->applied);
        }
        if (!src->running && st == L_RELEASE && src->committed >= src->applied) {
            int expect = L_RELEASE;
            atomic_compare_exchange_strong(&l->state, &expect, L_RELEASED);
        }
        if (!src->running && st == L_OWNED && !atomic_load(&js->draining) &&
            now >= src->retry_at)
            part_start(js, k, now);
    }
}

void sm_js_hand_back(sm_js *js)
{
    if (!js || js->nparts == 0 || !js->kv)
        return;
    lease_thread_stop(js);
    for (uint32_t k = 0; k < js->nparts; k++) {
        js_lease *l = &js->leases[k];
        if (atomic_load(&l->state) == L_FREE)
            continue;
        atomic_store(&l->state, L_RELEASED);
        lease_renew(js, (int)k, mono_ms());
    }
    char key[64];
    snprintf(key, sizeof key, "w.%s", js->id);
    (void)kvStore_Delete(js->kv, key);
}

bool sm_js_owns(const sm_js *js, const char *swarm)
{
    return !js || js->nparts == 0 ||
           src_owned(&js->srcs[sm_js_partition(swarm, js->nparts)]);
}

sm_js_clock *sm_js_clock_of(sm_js *js, const char *swarm)
{
    if (!js || js->nparts == 0)
        return NULL;
    return &js->srcs[sm_js_partition(swarm, js->nparts)].clock;
}

int64_t sm_js_owned(const sm_js *js)
{
    if (!js || js->nparts == 0)
        return -1;
    int64_t n = 0;
    for (uint32_t k = 0; k < js->nparts; k++)
        n += src_owned(&js->srcs[k]);
    return n;
}

/* ---- lifecycle ------------------------------------------------------------ */

sm_status sm_js_open(sm_js **out, sm_bus *b, const sm_config *cfg,
                     const sm_log *log, sm_persist *p, sm_inbox *ib,
                     char *err, size_t errcap)
{
    sm_js *js = calloc(1, sizeof *js);
    if (!js)
        return SM_ERR_NOMEM;
    js->cfg = cfg;
    js->log = log;
    js->bus = b;
    js->nc = sm_bus_conn(b);
    js->inbox = ib;
    js->persist = p;
    js->nparts = (uint32_t)cfg->partitions;
    js->srcs = calloc(js->nparts ? js->nparts : 1, sizeof *js->srcs);
    if (!js->srcs) {
        free(js);
        return SM_ERR_NOMEM;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    sm_status rc = SM_OK;
    natsStatus s = natsConnection_JetStream(&js->ctx, js->nc, &jo);
    if (s != NATS_OK) {
        snprintf(err, errcap, "JetStream context: %s", natsStatus_GetText(s));
        rc = sm_bus_status(s);
    }
    char out_subject[600];
    snprintf(out_subject, sizeof out_subject, "%s.>", cfg->output_prefix);
    /* the input stream(s), then the output stream, then the sources */
    js_source *src = &js->srcs[0];
    if (rc == SM_OK && js->nparts == 0) {
        src->part = -1;
        src->filter = cfg->input_subject;
        snprintf(src->name, sizeof src->name, "%s", cfg->js_consumer);
        snprintf(src->cursor, sizeof src->cursor, "%s", cfg->js_consumer);
        snprintf(src->stream, sizeof src->stream, "%s", cfg->js_stream);
        rc = ensure_stream(js, cfg->js_stream, cfg->input_subject,
                           cfg->js_max_age_ms, 0, err, errcap);
    }
    if (js->nparts > 0)
        set_worker_id(js);
    for (uint32_t k = 0; k < js->nparts && rc == SM_OK; k++) {
        part_source(js, (int)k);
        rc = ensure_stream(js, js->srcs[k].stream, js->srcs[k].filter,
                           cfg->js_max_age_ms, 0, err, errcap);
    }
    if (rc == SM_OK)
        rc = ensure_stream(js, cfg->js_out_stream, out_subject, 0,
                           cfg->js_dup_window_ms, err, errcap);
    if (rc == SM_OK && js->nparts > 0) {
        rc = open_partitions(js, err, errcap);
    } else if (rc == SM_OK) {
        rc = source_start(js, src, sm_persist_cursor(p, src->cursor), err, errcap);
        src->running = rc == SM_OK;
        atomic_store(&src->active, src->running);
    }
    if (rc != SM_OK) {
        sm_js_close(js);
        return rc;
    }
    *out = js;
    return SM_OK;
}

void sm_js_drain(sm_js *js)
{
    if (!js)
        return;
    atomic_store(&js->draining, true);
    for (uint32_t k = 0; k < (js->nparts ? js->nparts : 1); k++)
        atomic_store(&js->srcs[k].stop, true);
    if (js->held_open) {
        sm_inbox_source_done(js->inbox, SM_OK);
        js->held_open = false;
    }
}

void sm_js_close(sm_js *js)
{
    if (!js)
        return;
    sm_js_drain(js);
    lease_thread_stop(js);
    for (uint32_t k = 0; k < (js->nparts ? js->nparts : 1); k++)
        source_join(&js->srcs[k]);
    kvStore_Destroy(js->kv);
    jsCtx_Destroy(js->ctx);
    free(js->srcs);
    free(js);
}

/* ---- commit hooks --------------------------------------------------------- */

void sm_js_before_commit(sm_js *js, sm_persist *p)
{
    if (!js)
        return;
    for (uint32_t k = 0; k < (js->nparts ? js->nparts : 1); k++) {
        js_source *src = &js->srcs[k];
        if (src->applied > 0)
            sm_persist_set_cursor(p, src->cursor, src->applied);
        if (src->part >= 0 && src->clock.bus_ms > 0)
            sm_persist_set_cursor(p, src->clock_name, (uint64_t)src->clock.bus_ms);
        /* what this commit holds; an earlier ack not sent is covered */
        if (src->ack_due) {
            snprintf(src->commit_ack, sizeof src->commit_ack, "%s",
                     src->ack_subject);
            src->commit_ack_due = true;
            src->ack_due = false;
        }
        src->commit_applied = src->applied;
    }
}

void sm_js_committed(sm_js *js)
{
    if (!js)
        return;
    for (uint32_t k = 0; k < (js->nparts ? js->nparts : 1); k++) {
        js_source *src = &js->srcs[k];
        /* our own consumer: acked even after a lease is lost (nobody
         * else reads it), so it agrees with the store */
        if (src->commit_ack_due && src->commit_ack[0] &&
            natsConnection_PublishString(js->nc, src->commit_ack, "+ACK") == NATS_OK) {
            js->st.acks++;          /* "+ACK" is what natsMsg_Ack sends */
            src->commit_ack_due = false;
        }
        /* what the commit held when prepared (never back: a restart of
         * the partition may have counted further, part_start) */
        if (src->commit_applied > src->committed)
            src->committed = src->commit_applied;
        if (src->part >= 0)
            atomic_store(&js->leases[k].committed, src->committed);
    }
}

/* ---- output --------------------------------------------------------------- */

static bool transient(natsStatus s)
{
    return s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS ||
           s == NATS_CONNECTION_DISCONNECTED || s == NATS_CONNECTION_CLOSED;
}

/* Partitions: whether a conclusion on subject is ours to publish: not
 * when its swarm's partition is not (or no longer) ours, the lease lost
 * between the decision and the end of its batch; not a dead letter of an
 * item its previous owner handled (sm_js_replayed). */
static bool ours_to_publish(sm_js *js, const char *subject)
{
    const char *prefix = js->cfg->output_prefix;
    size_t n = strlen(prefix);
    if (js->nparts == 0 || strncmp(subject, prefix, n) != 0 || subject[n] != '.')
        return true;
    if (strcmp(subject, js->cfg->deadletter_subject) == 0)
        return !sm_js_replayed(js);     /* the item being handled */
    char swarm[SM_ID_MAX];
    const char *sw = subject + n + 1;
    size_t len = strcspn(sw, ".");
    if (len == 0 || len >= sizeof swarm)
        return true;
    memcpy(swarm, sw, len);
    swarm[len] = 0;
    const js_source *src = &js->srcs[sm_js_partition(swarm, js->nparts)];
    if (!src_owned(src)) {
        js->st.not_owned_dropped++;
        return false;
    }
    return true;
}

bool sm_js_replayed(sm_js *js)
{
    const js_source *src = js ? js->cur : NULL;
    if (!src || src->part < 0 || js->cur_seq > src->floor)
        return false;
    js->st.replay_suppressed++;
    return true;
}

sm_status sm_js_publish(void *ud, const char *subject, const void *data,
                        size_t len, const char *const *headers)
{
    sm_js *js = ud;
    if (!ours_to_publish(js, subject))
        return SM_OK;
    natsMsg *m = NULL;
    bool has_id = false;
    char dl_id[128];
    natsStatus s = natsMsg_Create(&m, subject, NULL, data, (int)len);
    for (size_t i = 0; s == NATS_OK && headers && headers[i] && headers[i + 1]; i += 2) {
        has_id |= strcmp(headers[i], "Nats-Msg-Id") == 0;
        s = natsMsgHeader_Set(m, headers[i], headers[i + 1]);
    }
    if (s == NATS_OK && !has_id && js->cur) {
        /* a dead letter of a JetStream input: the same id if redone */
        snprintf(dl_id, sizeof dl_id, "dl.%s.%llu", js->cur->cursor,
                 (unsigned long long)js->cur_seq);
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", dl_id);
    }
    jsPubAck *pa = NULL;
    int64_t waited = 0, nap_ms = 50;
    for (;;) {
        jsErrCode jerr = 0;
        if (s == NATS_OK)
            s = js_PublishMsg(&pa, js->ctx, m, NULL, &jerr);
        if (s == NATS_OK || !transient(s) || waited >= js->cfg->js_ack_wait_ms)
            break;
        nats_Sleep(nap_ms);
        waited += nap_ms;
        nap_ms = nap_ms < 1000 ? nap_ms * 2 : 1000;
        s = NATS_OK;
    }
    if (pa && pa->Duplicate)
        js->st.dup_dropped++;
    if (s != NATS_OK)
        sm_log_write(js->log, SM_LOG_ERROR, "js_publish_failed",
                     "subject=%s status=\"%s\" waited_ms=%lld detail=\"%s\"",
                     subject, natsStatus_GetText(s), (long long)waited,
                     nats_GetLastError(NULL));
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    return s == NATS_OK ? SM_OK : s == NATS_TIMEOUT ? SM_ERR_TIMEOUT : SM_ERR_BUS;
}

void sm_js_stats_get(const sm_js *js, sm_js_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!js)
        return;
    *out = js->st;
    out->fetched = atomic_load(&js->fetched);
    out->gaps = atomic_load(&js->gaps);
    out->pending = atomic_load(&js->pending);
    for (uint32_t k = 0; k < (js->nparts ? js->nparts : 1); k++)
        out->applied_seq += js->srcs[k].applied;
    out->partitions_owned = sm_js_owned(js);
    out->leases_taken = atomic_load(&js->taken);
    out->leases_lost = atomic_load(&js->lost);
    out->leases_handed_back = atomic_load(&js->handed_back);
    out->takeovers = atomic_load(&js->takeovers);
}

uint32_t sm_js_partition(const char *swarm, uint32_t n)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)swarm; *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return n ? h % n : 0;
}

int64_t sm_js_max_payload(void *ud)
{
    sm_js *js = ud;
    return sm_bus_max_payload(js->bus);
}

int64_t sm_js_lag(sm_js *js)
{
    if (!js)
        return -1;
    int64_t lag = 0;
    for (uint32_t k = 0; k < (js->nparts ? js->nparts : 1); k++) {
        js_source *src = &js->srcs[k];
        jsConsumerInfo *ci = NULL;
        if (!src_owned(src))
            continue;
        if (js_GetConsumerInfo(&ci, js->ctx, src->stream, src->name, NULL,
                               NULL) != NATS_OK)
            return -1;
        lag += (int64_t)ci->NumPending + ci->NumAckPending;
        jsConsumerInfo_Destroy(ci);
    }
    return lag;
}
