/* JetStream mode end to end, on real parts: a nats-server with JetStream
 * (-js, a temporary store directory) on a random loopback port, the
 * swarm-medic binary with --input=jetstream on a temporary LMDB
 * directory, a recording published into the input stream, and this test
 * reading the output stream like a coordinator that must never see a
 * conclusion twice. */
#include <check.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "js.h"
#include "proc.h"
#include "recfile.h"
#include "runner.h"
#include "store.h"
#include "support.h"

typedef struct rig {
    sm_test_server srv;
    char dir[256];              /* store, logs, the server's JetStream dir */
    char jsdir[320];
    char log[320];
    char store[320];
    pid_t worker;
    int starts;
    const char *const *wargs;   /* extra worker flags */
    natsConnection *nc;
    jsCtx *js;
} rig;

static void server_up(rig *r, int port)
{
    const char *args[] = {"-js", "-sd", r->jsdir, NULL};
    sm_test_server_start(&r->srv, port, args);
}

static pid_t spawn_worker(rig *r)
{
    char bin[512], url[128], store[400];
    sm_test_bin(bin, sizeof bin, "swarm-medic");
    snprintf(url, sizeof url, "--nats-url=%s", r->srv.url);
    snprintf(store, sizeof store, "--store-dir=%s", r->store);
    const char *argv[32] = {bin, url, store, "--input=jetstream",
                            "--log-level=debug", "--stats-interval=0",
                            "--js-ack-wait=1s", "--reconnect-wait=100ms"};
    int n = 8;
    for (int i = 0; r->wargs && r->wargs[i]; i++)
        argv[n++] = r->wargs[i];
    argv[n] = NULL;
    snprintf(r->log, sizeof r->log, "%s/worker-%d.log", r->dir, ++r->starts);
    return sm_test_spawn(argv, r->log, true);
}

static void start_worker(rig *r)
{
    r->worker = spawn_worker(r);
    ck_assert_msg(sm_test_wait_for_text(r->log, "event=subscribed", 30000),
                  "worker did not subscribe; log:\n%s", SM_TEST_TAIL(r->log));
}

static void connect_client(rig *r)
{
    ck_assert_int_eq(natsConnection_ConnectTo(&r->nc, r->srv.url), NATS_OK);
    ck_assert_int_eq(natsConnection_JetStream(&r->js, r->nc, NULL), NATS_OK);
}

static void disconnect_client(rig *r)
{
    jsCtx_Destroy(r->js);
    natsConnection_Destroy(r->nc);
    r->js = NULL;
    r->nc = NULL;
}

static void rig_up(rig *r, const char *const *wargs)
{
    memset(r, 0, sizeof *r);
    sm_test_tmpdir(r->dir, sizeof r->dir, "js");
    snprintf(r->jsdir, sizeof r->jsdir, "%s/jetstream", r->dir);
    snprintf(r->store, sizeof r->store, "%s/data", r->dir);
    r->wargs = wargs;
    server_up(r, 0);
    start_worker(r);
    connect_client(r);
}

/* SIGTERM: the worker drains and exits 0. */
static void stop_worker(rig *r)
{
    kill(r->worker, SIGTERM);
    int rc = sm_test_wait(r->worker, 60000);
    if (rc < 0)
        kill(r->worker, SIGKILL);
    ck_assert_msg(rc == 0, "worker exited %d on SIGTERM; log:\n%s", rc, SM_TEST_TAIL(r->log));
    r->worker = 0;
}

static void rig_down(rig *r)
{
    disconnect_client(r);
    if (r->worker > 0)
        stop_worker(r);
    sm_test_server_stop(&r->srv);
    sm_test_rmtree(r->srv.dir);
    if (!getenv("SM_JS_KEEP"))      /* logs and stores kept for a look */
        sm_test_rmtree(r->dir);
}

/* ---- the input ---------------------------------------------------------- */

/* Publishes records [from, to) into the input stream, each acknowledged
 * by the stream (asynchronous publishes, then waiting for all). */
static void publish_range(rig *r, const sm_test_recs *R, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        natsStatus s;
        while ((s = js_PublishAsync(r->js, R->subject[i], R->data[i],
                                    (int)R->len[i], NULL)) == NATS_TIMEOUT)
            ;
        ck_assert_int_eq(s, NATS_OK);
    }
    ck_assert_int_eq(js_PublishAsyncComplete(r->js, NULL), NATS_OK);
}

static jsConsumerInfo *consumer_info(rig *r)
{
    jsConsumerInfo *ci = NULL;
    natsStatus s = js_GetConsumerInfo(&ci, r->js, "SWARM", "swarm-medic", NULL, NULL);
    return s == NATS_OK ? ci : NULL;
}

/* Waits until the consumer's acknowledged floor reaches seq: every input
 * up to it committed by a worker. */
static void wait_acked(rig *r, uint64_t seq, int timeout_ms)
{
    uint64_t floor = 0;
    for (int t = 0; t < timeout_ms; t += 50) {
        jsConsumerInfo *ci = consumer_info(r);
        floor = ci ? ci->AckFloor.Stream : 0;
        jsConsumerInfo_Destroy(ci);
        if (floor >= seq)
            return;
        sm_proc_sleep_ms(50);
    }
    ck_abort_msg("inputs acknowledged up to %llu, want %llu; log:\n%s",
                 (unsigned long long)floor, (unsigned long long)seq, SM_TEST_TAIL(r->log));
}

/* Waits until the consumer delivered beyond `after`: the worker is at
 * work on the new input. */
static void wait_delivered(rig *r, uint64_t after, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 10) {
        jsConsumerInfo *ci = consumer_info(r);
        uint64_t d = ci ? ci->Delivered.Stream : 0;
        jsConsumerInfo_Destroy(ci);
        if (d > after)
            return;
        sm_proc_sleep_ms(10);
    }
    ck_abort_msg("the worker fetched nothing after %llu; log:\n%s",
                 (unsigned long long)after, SM_TEST_TAIL(r->log));
}

/* ---- the output --------------------------------------------------------- */

typedef struct ids {
    char (*v)[sizeof(sm_test_msg_id)]; /* "<subject>:<id>" */
    size_t n, cap;
    size_t deadletters;
} ids;

/* Every message of the output stream, as its Nats-Msg-Id. */
static void read_output(rig *r, ids *out)
{
    memset(out, 0, sizeof *out);
    sm_test_msg_id *m = NULL;
    size_t n = sm_test_stream_ids(r->js, "MEDIC", "medic.>", &m);
    out->v = malloc((n ? n : 1) * sizeof *out->v);
    ck_assert_ptr_nonnull(out->v);
    out->cap = n;
    for (size_t i = 0; i < n; i++) {
        if (strstr(m[i].subject, "deadletter"))
            out->deadletters++;
        snprintf(out->v[out->n++], sizeof out->v[0], "%s:%s", m[i].subject,
                 m[i].id);
    }
    free(m);
}

/* Sorted; how many ids repeat. */
static size_t sort_ids(ids *l)
{
    return sm_test_sort_repeats(l->v, l->n, sizeof *l->v);
}

/* ---- the persisted state ------------------------------------------------ */

typedef struct dump {
    char *txt;
    size_t len, cap, keys;
} dump;

static void hex_into(dump *d, const void *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (d->len + 2 * n + 4 > d->cap) {
        d->cap = (d->cap + 2 * n + 4) * 2;
        d->txt = realloc(d->txt, d->cap);
    }
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        d->txt[d->len++] = hex[b[i] >> 4];
        d->txt[d->len++] = hex[b[i] & 15];
    }
    d->txt[d->len] = 0;
}

static sm_status dump_one(void *ud, const void *key, size_t klen,
                          const void *val, size_t vlen)
{
    dump *d = ud;
    hex_into(d, key, klen);
    d->txt[d->len++] = '=';
    hex_into(d, val, vlen);
    d->txt[d->len++] = '\n';
    d->txt[d->len] = 0;
    d->keys++;
    return SM_OK;
}

/* Every key and value of the LMDB store in dir, as text, in key order. */
static void dump_store(const char *dir, dump *d)
{
    memset(d, 0, sizeof *d);
    sm_store_config sc = {.dir = dir};
    sm_store *st = NULL;
    char err[256];
    ck_assert_msg(sm_store_open(&st, &sc, err, sizeof err) == SM_OK, "%s", err);
    ck_assert_int_eq(sm_store_scan(st, NULL, 0, dump_one, d), SM_OK);
    sm_store_close(st);
}

/* The first line where two dumps differ (its key, hex), or NULL. */
static const char *first_difference(const dump *a, const dump *b, char *buf,
                                    size_t cap)
{
    const char *p = a->txt, *q = b->txt;
    while (*p && *q) {
        size_t np = strcspn(p, "\n"), nq = strcspn(q, "\n");
        if (np != nq || memcmp(p, q, np) != 0) {
            size_t at = 0;
            while (at < np && at < nq && p[at] == q[at])
                at++;
            snprintf(buf, cap, "key %.*s, from hex digit %zu of %zu: %.40s vs %.40s",
                     (int)strcspn(p, "="), p, at, np, p + at, q + at);
            return buf;
        }
        p += np + (p[np] == '\n');
        q += nq + (q[nq] == '\n');
    }
    if (*p || *q) {
        snprintf(buf, cap, "one store has more keys (%zu vs %zu)", a->keys, b->keys);
        return buf;
    }
    return NULL;
}

/* ---- kill -9 mid-stream -------------------------------------------------- */

typedef struct outcome {
    ids out;
    dump state;
    size_t kills;
} outcome;

static uint64_t next_rand(uint64_t *seed)
{
    *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return *seed >> 33;
}

/* Publishes the recording into the input stream in kills + 1 parts; after
 * each part but the last, waits until the worker is fetching it, lets it
 * work 0-150 ms, and kills it with SIGKILL, then starts a new one on the
 * same store. At the end every input is acknowledged, the worker drained
 * with SIGTERM, and the output stream and the store are read. */
static void run_with_kills(const sm_test_recs *R, int kills, uint64_t seed, outcome *o)
{
    rig r;
    /* every kill counts as a delivery of what the worker had fetched and
     * not committed: 20 kills in a few seconds is a crash loop, in which
     * a message could reach the default js_max_deliver (5) and be
     * dead-lettered as poison (see poison_message_is_dead_lettered) */
    const char *wargs[] = {"--commit-interval=100ms", "--js-max-deliver=100", NULL};
    rig_up(&r, wargs);
    memset(o, 0, sizeof *o);
    size_t pos = 0;
    for (int k = 0; k <= kills; k++) {
        size_t target = R->n;
        if (k < kills) {
            size_t span = R->n / (size_t)(kills + 1);
            target = span * (size_t)(k + 1) - span / 2 + next_rand(&seed) % span;
        }
        publish_range(&r, R, pos, target);
        uint64_t before = pos;
        pos = target;
        if (k == kills)
            break;
        wait_delivered(&r, before, 30000);
        sm_proc_sleep_ms((int)(next_rand(&seed) % 150));
        kill(r.worker, SIGKILL);
        ck_assert_int_eq(sm_test_wait(r.worker, 10000), 128 + SIGKILL);
        o->kills++;
        start_worker(&r);
    }
    wait_acked(&r, R->n, 120000);
    stop_worker(&r);
    read_output(&r, &o->out);
    dump_store(r.store, &o->state);
    rig_down(&r);
}

static void outcome_free(outcome *o)
{
    free(o->out.v);
    free(o->state.txt);
}

/* A JetStream-mode worker killed 20 times mid-stream (SM_JS_KILLS) ends
 * with the state and the conclusions of an uninterrupted run: the same
 * LMDB keys and bytes (windows, counters, the bus clock, the cursor), the
 * same set of conclusion ids, and none of them twice in the output
 * stream. */
START_TEST(kill9_twenty_times_equals_uninterrupted)
{
    static const char *const recordings[] = {"tests/golden/demo.rec",
                                             "tests/golden/two-swarms.rec"};
    const char *env = getenv("SM_JS_KILLS");
    int kills = env ? atoi(env) : 20;
    sm_test_recs R;
    sm_test_recs_load(&R, recordings[_i]);
    outcome once, killed;
    run_with_kills(&R, 0, 1, &once);
    run_with_kills(&R, kills, 0x5eed + (uint64_t)_i, &killed);

    size_t rep_once = sort_ids(&once.out), rep_killed = sort_ids(&killed.out);
    size_t missing = 0, extra = 0;
    for (size_t i = 0, j = 0; i < once.out.n || j < killed.out.n;) {
        int c = i == once.out.n ? 1 : j == killed.out.n ? -1
                : strcmp(once.out.v[i], killed.out.v[j]);
        missing += c < 0;
        extra += c > 0;
        i += c <= 0;
        j += c >= 0;
    }
    char why[256];
    const char *diff = first_difference(&once.state, &killed.state, why, sizeof why);
    fprintf(stderr, "jetstream kill -9 %s: %zu kills; uninterrupted %zu "
                    "conclusions, killed %zu: %zu repeated, %zu missing, %zu "
                    "new; stores %s (%zu keys)\n", recordings[_i], killed.kills,
            once.out.n, killed.out.n, rep_killed, missing, extra,
            diff ? diff : "identical", once.state.keys);
    ck_assert_uint_gt(once.out.n, 10);
    ck_assert_uint_eq(once.out.deadletters, 0);
    ck_assert_uint_eq(killed.kills, (size_t)kills);
    ck_assert_msg(rep_once == 0 && rep_killed == 0,
                  "the output stream holds repeats: %zu uninterrupted, %zu killed",
                  rep_once, rep_killed);
    ck_assert_msg(missing == 0 && extra == 0,
                  "%zu conclusions missing, %zu new after %d kills", missing,
                  extra, kills);
    if (diff) {                 /* both dumps kept for a look */
        FILE *f = fopen("/tmp/sm-js-diff-once.txt", "w");
        if (f) { fputs(once.state.txt, f); fclose(f); }
        f = fopen("/tmp/sm-js-diff-killed.txt", "w");
        if (f) { fputs(killed.state.txt, f); fclose(f); }
    }
    ck_assert_msg(diff == NULL, "stores differ after %d kills: %s (dumps: "
                  "/tmp/sm-js-diff-*.txt)", kills, diff);
    outcome_free(&once);
    outcome_free(&killed);
    sm_test_recs_free(&R);
}
END_TEST

/* ---- the server restarts ------------------------------------------------- */

/* The nats-server (JetStream, file store) restarts in the middle of the
 * stream, the worker on its own reconnects; what was published before and
 * after ends in the same state and conclusions as a run without the
 * restart. */
START_TEST(server_restart_loses_nothing)
{
    sm_test_recs R;
    sm_test_recs_load(&R, "tests/golden/demo.rec");
    outcome once;
    run_with_kills(&R, 0, 1, &once);

    rig r;
    const char *wargs[] = {"--commit-interval=100ms", NULL};
    rig_up(&r, wargs);
    size_t half = R.n / 2;
    publish_range(&r, &R, 0, half);
    wait_delivered(&r, 0, 30000);
    sm_proc_sleep_ms(30);
    disconnect_client(&r);
    int port = r.srv.port;
    sm_test_server_stop(&r.srv);
    sm_test_rmtree(r.srv.dir);
    sm_proc_sleep_ms(300);
    server_up(&r, port);
    connect_client(&r);
    publish_range(&r, &R, half, R.n);
    wait_acked(&r, R.n, 120000);
    stop_worker(&r);
    ids out;
    dump state;
    read_output(&r, &out);
    dump_store(r.store, &state);
    char *log = sm_test_slurp(r.log);
    bool reconnected = log && strstr(log, "event=bus_reconnected");
    free(log);
    rig_down(&r);

    size_t rep = sort_ids(&out);
    sort_ids(&once.out);
    size_t same = out.n == once.out.n;
    for (size_t i = 0; same && i < out.n; i++)
        same = strcmp(out.v[i], once.out.v[i]) == 0;
    char why[256];
    const char *diff = first_difference(&once.state, &state, why, sizeof why);
    fprintf(stderr, "jetstream server restart: %zu conclusions (uninterrupted "
                    "%zu), %zu repeated; stores %s\n", out.n, once.out.n, rep,
            diff ? diff : "identical");
    ck_assert_msg(reconnected, "the worker never saw the server go");
    ck_assert_uint_eq(rep, 0);
    ck_assert_msg(same, "conclusions differ: %zu vs %zu uninterrupted", out.n,
                  once.out.n);
    ck_assert_msg(diff == NULL, "stores differ: %s", diff);
    free(out.v);
    free(state.txt);
    outcome_free(&once);
    sm_test_recs_free(&R);
}
END_TEST

/* ---- poison ----------------------------------------------------------------- */

static size_t consumer_delivered(rig *r)
{
    jsConsumerInfo *ci = consumer_info(r);
    size_t d = ci ? (size_t)ci->Delivered.Consumer : 0;
    jsConsumerInfo_Destroy(ci);
    return d;
}

/* A message delivered js_max_deliver times without being committed (each
 * worker that took it died) is dead-lettered with the reason on the next
 * delivery, unhandled: it reaches the output stream's dead-letter subject
 * with Medic-Reason, and the store holds no swarm for it. */
START_TEST(poison_message_is_dead_lettered)
{
    sm_test_recs R;
    sm_test_recs_load(&R, "tests/golden/demo.rec");
    rig r;
    /* a commit only at the end: what a worker took dies with it */
    const char *wargs[] = {"--commit-interval=1h", "--js-max-deliver=3", NULL};
    rig_up(&r, wargs);
    publish_range(&r, &R, 0, 1);
    for (size_t deliveries = 1; deliveries < 3; deliveries++) {
        for (int t = 0; consumer_delivered(&r) < deliveries; t += 20) {
            ck_assert_msg(t < 30000, "delivery %zu never came; log:\n%s",
                          deliveries, SM_TEST_TAIL(r.log));
            sm_proc_sleep_ms(20);
        }
        kill(r.worker, SIGKILL);
        ck_assert_int_eq(sm_test_wait(r.worker, 10000), 128 + SIGKILL);
        start_worker(&r);
    }
    ck_assert_msg(sm_test_wait_for_text(r.log, "reason=\"poison", 30000),
                  "the third delivery was not dead-lettered; log:\n%s", SM_TEST_TAIL(r.log));
    stop_worker(&r);
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "MEDIC";
    so.Ordered = true;
    ck_assert_int_eq(js_SubscribeSync(&sub, r.js, "medic.deadletter", NULL, &so, NULL),
                     NATS_OK);
    natsMsg *m = NULL;
    ck_assert_int_eq(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK);
    const char *reason = NULL, *subject = NULL;
    ck_assert_int_eq(natsMsgHeader_Get(m, "Medic-Reason", &reason), NATS_OK);
    ck_assert_int_eq(natsMsgHeader_Get(m, "Medic-Subject", &subject), NATS_OK);
    ck_assert_msg(strstr(reason, "poison") != NULL, "reason: %s", reason);
    ck_assert_str_eq(subject, R.subject[0]);
    ck_assert_int_eq(natsMsg_GetDataLength(m), (int)R.len[0]);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    dump state;
    dump_store(r.store, &state);
    ck_assert_msg(strstr(state.txt, "\n7300") == NULL && strncmp(state.txt, "7300", 4) != 0,
                  "a swarm was stored for a poison message:\n%s", state.txt);
    free(state.txt);
    rig_down(&r);
    sm_test_recs_free(&R);
}
END_TEST

/* ---- streams that do not fit ---------------------------------------------- */

/* An input stream that exists on other subjects is refused at start with
 * a sentence naming it, and so is a missing one when the streams are left
 * to the deploy configs (js_setup false); the worker exits non-zero. */
START_TEST(stream_mismatch_is_refused_with_reason)
{
    rig r;
    memset(&r, 0, sizeof r);
    sm_test_tmpdir(r.dir, sizeof r.dir, "js");
    snprintf(r.jsdir, sizeof r.jsdir, "%s/jetstream", r.dir);
    snprintf(r.store, sizeof r.store, "%s/data", r.dir);
    server_up(&r, 0);

    const char *manual[] = {"--js-setup=false", NULL};
    r.wargs = manual;
    pid_t w = spawn_worker(&r);
    ck_assert_int_eq(sm_test_wait(w, 30000), 1);
    ck_assert_msg(sm_test_wait_for_text(r.log, "JetStream stream SWARM does not "
                                               "exist and js_setup is false", 1000),
                  "%s", SM_TEST_TAIL(r.log));

    connect_client(&r);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {"other.>"};
    sc.Name = "SWARM";
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    ck_assert_int_eq(js_AddStream(NULL, r.js, &sc, NULL, NULL), NATS_OK);
    r.wargs = NULL;
    w = spawn_worker(&r);
    ck_assert_int_eq(sm_test_wait(w, 30000), 1);
    ck_assert_msg(sm_test_wait_for_text(r.log, "JetStream stream SWARM exists but "
                                               "does not fit: its subjects are "
                                               "not exactly swarm.>", 1000),
                  "%s", SM_TEST_TAIL(r.log));
    rig_down(&r);
}
END_TEST

/* ---- partitions ------------------------------------------------------------ */

/* sm_js_partition computes what the server's partition() mapping does:
 * 300 swarm ids (short, long, with dashes and digits) published on a
 * server mapping swarm.*.*.* into 7 partitions arrive on the partition
 * sm_js_partition names. */
START_TEST(partition_matches_the_server_mapping)
{
    char dir[256], conf[320];
    sm_test_tmpdir(dir, sizeof dir, "jsmap");
    snprintf(conf, sizeof conf, "%s/map.conf", dir);
    FILE *f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "mappings = {\n  \"swarm.*.*.*\": \"part.{{partition(7,1)}}.swarm."
               "{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}\"\n}\n");
    fclose(f);
    sm_test_server srv;
    const char *args[] = {"-c", conf, NULL};
    sm_test_server_start(&srv, 0, args);
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    ck_assert_int_eq(natsConnection_ConnectTo(&nc, srv.url), NATS_OK);
    ck_assert_int_eq(natsConnection_SubscribeSync(&sub, nc, "part.>"), NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(nc, 2000), NATS_OK);
    uint64_t seed = 7;
    uint32_t seen[7] = {0};
    for (int i = 0; i < 300; i++) {
        char id[64], subject[128];
        int len = 1 + (int)(next_rand(&seed) % 40);
        for (int k = 0; k < len; k++)
            id[k] = "abcdefghijklmnopqrstuvwxyz0123456789-_"[next_rand(&seed) % 38];
        id[len] = 0;
        snprintf(subject, sizeof subject, "swarm.%s.task.a1", id);
        ck_assert_int_eq(natsConnection_PublishString(nc, subject, "x"), NATS_OK);
        natsMsg *m = NULL;
        ck_assert_int_eq(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK);
        char want[160];
        uint32_t p = sm_js_partition(id, 7);
        snprintf(want, sizeof want, "part.%u.%s", p, subject);
        ck_assert_str_eq(natsMsg_GetSubject(m), want);
        seen[p]++;
        natsMsg_Destroy(m);
    }
    for (int p = 0; p < 7; p++)
        ck_assert_uint_gt(seen[p], 0);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    sm_test_server_stop(&srv);
    sm_test_rmtree(srv.dir);
    sm_test_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jetstream");
    /* quick: streams that do not fit, the partition hash */
    TCase *setup = tcase_create("setup");
    tcase_set_timeout(setup, 120);
    tcase_add_test(setup, stream_mismatch_is_refused_with_reason);
    tcase_add_test(setup, partition_matches_the_server_mapping);
    suite_add_tcase(s, setup);
    /* slow: kills, restarts, poison (SM_JS_KILLS, SM_JS_KEEP) */
    TCase *tc = tcase_create("jetstream");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, poison_message_is_dead_lettered);
    tcase_add_test(tc, server_restart_loses_nothing);
    tcase_add_loop_test(tc, kill9_twenty_times_equals_uninterrupted, 0, 2);
    suite_add_tcase(s, tc);
    return sm_run_suite(s);
}
