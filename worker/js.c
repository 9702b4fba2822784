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

#include "bus_nats.h"

/* How long one fetch waits for messages: the drain's latency. */
#define FETCH_MS 500
/* Longest pause between two polls of an idle consumer. */
#define IDLE_MAX_MS 16
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
    char name[SM_PERSIST_CURSOR_NAME];  /* durable consumer = cursor name */
    const char *filter;
    natsSubscription *sub;
    pthread_t thread;
    bool started;
    atomic_bool stop;
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
    char commit_ack[ACK_SUBJECT_MAX];   /* what the commit being written
                                           acks: ack_subject when it was
                                           prepared (a commit written by
                                           the commit thread, writer.h,
                                           must not ack what was applied
                                           after it was prepared) */
    bool commit_ack_due;
} js_source;

struct sm_js {
    const sm_config *cfg;
    const sm_log *log;
    sm_bus *bus;
    natsConnection *nc;
    jsCtx *ctx;
    sm_inbox *inbox;
    js_source src;              /* one consumer (partitions: one each) */
    const js_source *cur;       /* source of the item being handled */
    uint64_t cur_seq;
    sm_js_stats st;
    atomic_uint_fast64_t fetched, gaps;
    atomic_int_fast64_t pending;    /* the last delivery's NumPending */
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
    jsConsumerInfo *ci = NULL;
    natsStatus s = js_AddConsumer(&ci, js->ctx, js->cfg->js_stream, &cc, NULL, jerr);
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
    natsStatus s = js_GetConsumerInfo(&ci, js->ctx, js->cfg->js_stream, src->name,
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
            s = js_DeleteConsumer(js->ctx, js->cfg->js_stream, src->name, NULL, &jerr);
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
    natsMsg_Destroy(it->src);
}

/* Worker thread: the item about to be handled. */
static bool msg_seen(const sm_item *it)
{
    js_source *src = it->ctx;
    src->js->cur = src;
    src->js->cur_seq = it->seq;
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
static bool seq_gone(sm_js *js, uint64_t seq)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetMsg(&m, js->ctx, js->cfg->js_stream, seq, NULL, &jerr);
    natsMsg_Destroy(m);
    return s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr;
}

/* Pushes one message into the inbox as an item. */
static void push(js_source *src, natsMsg *m, uint64_t sseq, uint64_t nd)
{
    sm_js *js = src->js;
    sm_item it = {
        .subject = natsMsg_GetSubject(m),
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
    if (sm_inbox_push(js->inbox, &it) != SM_OK)
        natsMsg_Destroy(m);
    else
        atomic_fetch_add(&js->fetched, 1);
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
    if (!seq_gone(js, src->next))
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
            idle_ms = idle_ms < IDLE_MAX_MS ? idle_ms * 2 : IDLE_MAX_MS;
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
    return NULL;
}

static sm_status source_start(sm_js *js, js_source *src, sm_persist *p,
                              char *err, size_t errcap)
{
    src->js = js;
    src->filter = js->cfg->input_subject;
    src->applied = sm_persist_cursor(p, src->name);
    sm_status rc = ensure_consumer(js, src, src->applied, err, errcap);
    if (rc != SM_OK)
        return rc;
    /* the first message owed: after the cursor, or the stream's first
     * (older ones expired) */
    jsStreamInfo *si = NULL;
    src->next = src->applied + 1;
    if (js_GetStreamInfo(&si, js->ctx, js->cfg->js_stream, NULL, NULL) == NATS_OK &&
        si->State.FirstSeq > src->next)
        src->next = si->State.FirstSeq;
    jsStreamInfo_Destroy(si);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = js->cfg->js_stream;
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
        return SM_ERR_NOMEM;
    }
    src->started = true;
    return SM_OK;
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
    if (rc == SM_OK)
        rc = ensure_stream(js, cfg->js_stream, cfg->input_subject,
                           cfg->js_max_age_ms, 0, err, errcap);
    if (rc == SM_OK)
        rc = ensure_stream(js, cfg->js_out_stream, out_subject, 0,
                           cfg->js_dup_window_ms, err, errcap);
    snprintf(js->src.name, sizeof js->src.name, "%s", cfg->js_consumer);
    if (rc == SM_OK)
        rc = source_start(js, &js->src, p, err, errcap);
    if (rc != SM_OK) {
        sm_js_close(js);
        return rc;
    }
    *out = js;
    return SM_OK;
}

void sm_js_drain(sm_js *js)
{
    if (js)
        atomic_store(&js->src.stop, true);
}

void sm_js_close(sm_js *js)
{
    if (!js)
        return;
    sm_js_drain(js);
    if (js->src.started)
        pthread_join(js->src.thread, NULL);
    /* not unsubscribed: the durable consumer stays for the next start */
    natsSubscription_Destroy(js->src.sub);
    jsCtx_Destroy(js->ctx);
    free(js);
}

/* ---- commit hooks --------------------------------------------------------- */

void sm_js_before_commit(sm_js *js, sm_persist *p)
{
    if (!js)
        return;
    if (js->src.applied > 0)
        sm_persist_set_cursor(p, js->src.name, js->src.applied);
    if (js->src.ack_due) {
        /* what this commit holds; an earlier ack not sent is covered */
        snprintf(js->src.commit_ack, sizeof js->src.commit_ack, "%s",
                 js->src.ack_subject);
        js->src.commit_ack_due = true;
        js->src.ack_due = false;
    }
}

void sm_js_committed(sm_js *js)
{
    if (!js || !js->src.commit_ack_due || !js->src.commit_ack[0])
        return;
    /* "+ACK" on the reply subject is what natsMsg_Ack sends */
    if (natsConnection_PublishString(js->nc, js->src.commit_ack, "+ACK") == NATS_OK) {
        js->st.acks++;
        js->src.commit_ack_due = false;
    }
}

/* ---- output --------------------------------------------------------------- */

static bool transient(natsStatus s)
{
    return s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS ||
           s == NATS_CONNECTION_DISCONNECTED || s == NATS_CONNECTION_CLOSED;
}

sm_status sm_js_publish(void *ud, const char *subject, const void *data,
                        size_t len, const char *const *headers)
{
    sm_js *js = ud;
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
        snprintf(dl_id, sizeof dl_id, "dl.%s.%llu", js->cur->name,
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
    out->applied_seq = js->src.applied;
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
    jsConsumerInfo *ci = NULL;
    if (!js || js_GetConsumerInfo(&ci, js->ctx, js->cfg->js_stream, js->src.name,
                                  NULL, NULL) != NATS_OK)
        return -1;
    int64_t lag = (int64_t)ci->NumPending + ci->NumAckPending;
    jsConsumerInfo_Destroy(ci);
    return lag;
}
