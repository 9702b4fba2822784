/* Partitioned ownership on real parts: a nats-server with JetStream and
 * the partition(8,1) subject mapping in a generated config file, two
 * swarm-medic workers (--partitions=8, short leases) on their own LMDB
 * stores, heartbeats published on swarm.<s>.heartbeat.<a> as producers
 * do (the server maps them to part.<k>.swarm...), and this test reading
 * the lease bucket and the output stream.
 *
 *  - kill -9 one of two workers: the survivor takes its partitions over
 *    within the lease timeout and an agent of a swarm the dead worker
 *    held is found down by the survivor; no conclusion twice in the
 *    output stream;
 *  - SIGTERM one of two: it hands its leases back (not left to expire);
 *  - a lease overwritten by another writer: the worker stops that
 *    partition at once and says so, then takes it back once the writer
 *    stays silent for lease_ttl;
 *  - the balance rule and the lease value, as pure functions. */
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
#include "runner.h"
#include "support.h"
#include "swarm_medic.pb-c.h"

#define NPARTS 8
#define NSWARMS 12

typedef struct wk {
    pid_t pid;
    char id[8];
    char store[320];
    char log[320];
} wk;

typedef struct rig {
    sm_test_server srv;
    char dir[256];
    char jsdir[320];
    wk w[2];
    const char *ttl;            /* --lease-ttl */
    natsConnection *nc;
    jsCtx *js;
    kvStore *kv;
    char seen[NPARTS * 20];     /* the owners wait_split read last */
} rig;

static void start_worker(rig *r, int i)
{
    wk *w = &r->w[i];
    char bin[512], url[128], store[400], id[32], ttl[32];
    sm_test_bin(bin, sizeof bin, "swarm-medic");
    snprintf(url, sizeof url, "--nats-url=%s", r->srv.url);
    snprintf(store, sizeof store, "--store-dir=%s", w->store);
    snprintf(id, sizeof id, "--worker-id=%s", w->id);
    snprintf(ttl, sizeof ttl, "--lease-ttl=%s", r->ttl);
    const char *argv[] = {bin, url, store, id, ttl, "--input=jetstream",
                          "--partitions=8", "--log-level=debug",
                          "--stats-interval=0", "--js-ack-wait=1s",
                          "--reconnect-wait=100ms", "--commit-interval=100ms",
                          NULL};
    w->pid = sm_test_spawn(argv, w->log, true);
    ck_assert_msg(sm_test_wait_for_text(w->log, "event=subscribed", 30000),
                  "worker %s did not start; log:\n%s", w->id, SM_TEST_TAIL(w->log));
}

static void rig_up(rig *r, const char *ttl)
{
    memset(r, 0, sizeof *r);
    r->ttl = ttl;
    sm_test_tmpdir(r->dir, sizeof r->dir, "part");
    snprintf(r->jsdir, sizeof r->jsdir, "%s/jetstream", r->dir);
    char conf[320];
    snprintf(conf, sizeof conf, "%s/server.conf", r->dir);
    FILE *f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "mappings = {\n  \"swarm.*.*.*\": \"part.{{partition(%d,1)}}.swarm."
               "{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}\"\n}\n", NPARTS);
    fclose(f);
    const char *args[] = {"-js", "-sd", r->jsdir, "-c", conf, NULL};
    sm_test_server_start(&r->srv, 0, args);
    for (int i = 0; i < 2; i++) {
        char id = (char)('A' + i);
        snprintf(r->w[i].id, sizeof r->w[i].id, "%c", id);
        snprintf(r->w[i].store, sizeof r->w[i].store, "%s/data-%c", r->dir, id);
        snprintf(r->w[i].log, sizeof r->w[i].log, "%s/worker-%c.log", r->dir, id);
    }
    ck_assert_int_eq(natsConnection_ConnectTo(&r->nc, r->srv.url), NATS_OK);
    ck_assert_int_eq(natsConnection_JetStream(&r->js, r->nc, NULL), NATS_OK);
}

static void stop_worker(rig *r, int i)
{
    wk *w = &r->w[i];
    if (w->pid <= 0)
        return;
    kill(w->pid, SIGTERM);
    int rc = sm_test_wait(w->pid, 60000);
    if (rc < 0)
        kill(w->pid, SIGKILL);
    ck_assert_msg(rc == 0, "worker %s exited %d on SIGTERM; log:\n%s", w->id, rc,
                  SM_TEST_TAIL(w->log));
    w->pid = 0;
}

static void rig_down(rig *r)
{
    for (int i = 0; i < 2; i++)
        stop_worker(r, i);
    kvStore_Destroy(r->kv);
    jsCtx_Destroy(r->js);
    natsConnection_Destroy(r->nc);
    sm_test_server_stop(&r->srv);
    sm_test_rmtree(r->srv.dir);
    if (!getenv("SM_PART_KEEP"))
        sm_test_rmtree(r->dir);
}

/* The holder of each partition's lease as the bucket says ("" when none,
 * "-" when handed back). */
static void owners(rig *r, char out[NPARTS][16])
{
    if (!r->kv)
        ck_assert_int_eq(js_KeyValue(&r->kv, r->js, "medic_leases"), NATS_OK);
    for (int k = 0; k < NPARTS; k++) {
        char key[8];
        snprintf(key, sizeof key, "p%u", (unsigned)k % NPARTS);
        kvEntry *e = NULL;
        uint64_t seq = 0;
        out[k][0] = 0;
        if (kvStore_Get(&e, r->kv, key) == NATS_OK &&
            !sm_js_lease_parse(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), out[k],
                               16, &seq))
            snprintf(out[k], 16, "?");
        kvEntry_Destroy(e);
    }
}

static int count_owned(char o[NPARTS][16], const char *id)
{
    int n = 0;
    for (int k = 0; k < NPARTS; k++)
        n += strcmp(o[k], id) == 0;
    return n;
}

/* Waits until worker `id` holds `want` partitions and the other `other`
 * (-1: any), the bucket read every 100 ms. */
static bool wait_split(rig *r, const char *id, int want, const char *oid,
                       int other, int timeout_ms)
{
    char o[NPARTS][16];
    for (int t = 0; t < timeout_ms; t += 100) {
        owners(r, o);
        size_t n = 0;
        for (int k = 0; k < NPARTS; k++)
            n += (size_t)snprintf(r->seen + n, sizeof r->seen - n, "p%d=%s ", k,
                                  o[k][0] ? o[k] : "(none)");
        if (count_owned(o, id) == want &&
            (other < 0 || count_owned(o, oid) == other))
            return true;
        sm_proc_sleep_ms(100);
    }
    return false;
}

/* Waits until A and B both own some partitions and together all 8 (o:
 * the owners last read). */
static void wait_both_own(rig *r, char o[NPARTS][16], int timeout_ms)
{
    bool split = false;
    for (int t = 0; t < timeout_ms && !split; t += 100) {
        owners(r, o);
        int a = count_owned(o, "A"), b = count_owned(o, "B");
        split = a > 0 && b > 0 && a + b == NPARTS;
        if (!split)
            sm_proc_sleep_ms(100);
    }
    ck_assert_msg(split, "the partitions were not split (A %d, B %d); A:\n%s\nB:\n%s",
                  count_owned(o, "A"), count_owned(o, "B"), SM_TEST_TAIL(r->w[0].log),
                  SM_TEST_TAIL(r->w[1].log));
}

/* ---- the input ---------------------------------------------------------- */

static void swarm_name(char *buf, size_t cap, int s)
{
    snprintf(buf, cap, "sw%02d", s);
}

/* One heartbeat into the partition streams, acknowledged by the stream
 * the mapping put it in. */
static void beat(rig *r, const char *swarm, const char *agent, int64_t ts)
{
    uint8_t buf[128];
    char subj[128];
    size_t n = sm_test_idle_beat(buf, subj, swarm, agent, ts);
    natsStatus s;
    while ((s = js_PublishAsync(r->js, subj, buf, (int)n, NULL)) == NATS_TIMEOUT)
        ;
    ck_assert_int_eq(s, NATS_OK);
}

/* Every swarm's agents a1 and a2 beat once a second of event time from
 * `from` to `to` (inclusive), except a1 of swarm quiet1 and a2 of swarm
 * quiet2 (NULL: none). */
static void beats(rig *r, int64_t from, int64_t to, const char *quiet1,
                  const char *quiet2)
{
    for (int64_t t = from; t <= to; t += 1000)
        for (int s = 0; s < NSWARMS; s++) {
            char sw[16];
            swarm_name(sw, sizeof sw, s);
            if (!quiet1 || strcmp(quiet1, sw) != 0)
                beat(r, sw, "a1", t);
            if (!quiet2 || strcmp(quiet2, sw) != 0)
                beat(r, sw, "a2", t);
        }
    ck_assert_int_eq(js_PublishAsyncComplete(r->js, NULL), NATS_OK);
}

/* ---- the output --------------------------------------------------------- */

/* Messages of the output stream, how many of them are about another
 * swarm than `only`, and how many of their ids repeat. */
static size_t output_repeats(rig *r, const char *only, size_t *total, size_t *others)
{
    char mine[64];
    snprintf(mine, sizeof mine, "medic.%s.", only);
    sm_test_msg_id *m = NULL;
    size_t n = sm_test_stream_ids(r->js, "MEDIC", "medic.>", &m);
    char (*v)[sizeof m->id] = malloc((n ? n : 1) * sizeof *v);
    ck_assert_ptr_nonnull(v);
    *others = 0;
    for (size_t i = 0; i < n; i++) {
        *others += strncmp(m[i].subject, mine, strlen(mine)) != 0;
        memcpy(v[i], m[i].id, sizeof v[i]);
    }
    size_t rep = sm_test_sort_repeats(v, n, sizeof *v);
    free(v);
    free(m);
    *total = n;
    return rep;
}

/* Whether the line starting at p (NULL: none) holds needle. */
static bool line_has(const char *p, const char *needle)
{
    if (!p)
        return false;
    const char *at = strstr(p, needle), *eol = strchr(p, '\n');
    return at && (!eol || at < eol);
}

/* ---- tests -------------------------------------------------------------- */

/* Two workers split the 8 partitions. In a swarm A holds, agent a2 falls
 * silent and A publishes its agent_down. A is killed with SIGKILL; B owns
 * all 8 within lease_ttl (2 s) and a margin, rebuilds A's partitions from
 * the retained streams and re-decides that agent_down there without
 * publishing it (A did: the lease's floor). Then a1 of the same swarm
 * falls silent while the others go on, and B publishes its agent_down,
 * the first failure raised that a plain subscriber on the swarm's
 * conclusions sees after the kill. No conclusion is twice in the output
 * stream. */
START_TEST(kill9_one_of_two_partitions_taken_over)
{
    rig r;
    rig_up(&r, "2s");
    start_worker(&r, 0);
    start_worker(&r, 1);
    char o[NPARTS][16];
    wait_both_own(&r, o, 30000);
    /* a swarm in one of A's partitions */
    char victim[16] = "";
    for (int s = 0; s < NSWARMS && !victim[0]; s++) {
        char sw[16];
        swarm_name(sw, sizeof sw, s);
        if (strcmp(o[sm_js_partition(sw, NPARTS)], "A") == 0)
            snprintf(victim, sizeof victim, "%s", sw);
    }
    ck_assert_msg(victim[0], "none of %d swarms is in A's partitions", NSWARMS);
    int64_t t0 = 1767225600000LL;
    beats(&r, t0, t0 + 10000, NULL, NULL);
    beats(&r, t0 + 11000, t0 + 20000, NULL, victim);
    char a2_down[128];
    snprintf(a2_down, sizeof a2_down, "event=failure swarm=%s type=agent_down "
             "transition=raised", victim);
    ck_assert_msg(sm_test_wait_for_text(r.w[0].log, a2_down, 30000),
                  "A did not find a2 of %s down; A:\n%s", victim, SM_TEST_TAIL(r.w[0].log));
    /* committed, and the lease renewed with the committed sequence (every
     * lease_ttl / 3) */
    sm_proc_sleep_ms(1500);
    kill(r.w[0].pid, SIGKILL);
    ck_assert_int_eq(sm_test_wait(r.w[0].pid, 10000), 128 + SIGKILL);
    r.w[0].pid = 0;
    /* lease_ttl 2 s, plus the observer's round (ttl/3) and a margin for a
     * loaded machine */
    ck_assert_msg(wait_split(&r, "B", NPARTS, "A", 0, 15000),
                  "B did not take all partitions over; B:\n%s", SM_TEST_TAIL(r.w[1].log));
    ck_assert(sm_test_wait_for_text(r.w[1].log, "detail=\"its holder did not "
                                                "renew it for lease_ttl\"", 1000));
    natsSubscription *sub = NULL;
    char subj[64];
    snprintf(subj, sizeof subj, "medic.%s.failure.>", victim);
    ck_assert_int_eq(natsConnection_SubscribeSync(&sub, r.nc, subj), NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(r.nc, 2000), NATS_OK);
    beats(&r, t0 + 21000, t0 + 40000, victim, NULL);
    Swarmmedic__V1__Failure *f = NULL;
    for (int waited = 0; waited < 30000 && !f; waited += 100) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, sub, 100) != NATS_OK)
            continue;
        f = swarmmedic__v1__failure__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                            (const uint8_t *)natsMsg_GetData(m));
        natsMsg_Destroy(m);
        if (f && f->transition != SWARMMEDIC__V1__FAILURE__TRANSITION__TRANSITION_RAISED) {
            swarmmedic__v1__failure__free_unpacked(f, NULL);    /* a2 back */
            f = NULL;
        }
    }
    ck_assert_msg(f != NULL, "no failure for %s after the takeover; B:\n%s", victim,
                  SM_TEST_TAIL(r.w[1].log));
    ck_assert_int_eq(f->type, SWARMMEDIC__V1__FAILURE_TYPE__FAILURE_TYPE_AGENT_DOWN);
    ck_assert_str_eq(f->agent, "a1");
    ck_assert_str_eq(f->decision->swarm, victim);
    /* decided by event time: after the last beat at t0 + 20 s */
    ck_assert_int_gt(f->decision->decided_at_ms, t0 + 20000);
    swarmmedic__v1__failure__free_unpacked(f, NULL);
    natsSubscription_Destroy(sub);
    /* B re-decided a2's agent_down while rebuilding, and kept it */
    char *txt = sm_test_slurp(r.w[1].log);
    const char *p = txt ? strstr(txt, a2_down) : NULL;
    ck_assert_msg(line_has(p, "subject=a2") && line_has(p, "published=no (replay)"),
                  "B did not re-decide a2's agent_down as a replay; B:\n%s",
                  SM_TEST_TAIL(r.w[1].log));
    free(txt);
    size_t total = 0, others = 0, rep = output_repeats(&r, victim, &total, &others);
    fprintf(stderr, "partition kill -9: victim %s, %zu conclusions in the output "
                    "stream, %zu about other swarms, %zu repeated\n", victim, total,
            others, rep);
    ck_assert_uint_gt(total, 0);
    ck_assert_uint_eq(rep, 0);
    /* every other agent beat throughout: a partition's agents never look
     * silent because another partition's events are ahead */
    ck_assert_uint_eq(others, 0);
    rig_down(&r);
}
END_TEST

/* SIGTERM one of two: it hands each lease back after its final commit
 * (value "- <seq>", logged), and the other takes them as handed back, not
 * as expired (lease_ttl is 30 s here; the wait is shorter). */
START_TEST(drain_hands_partitions_back)
{
    rig r;
    rig_up(&r, "30s");
    start_worker(&r, 0);
    start_worker(&r, 1);
    char o[NPARTS][16];
    wait_both_own(&r, o, 60000);
    int had = count_owned(o, "B");
    stop_worker(&r, 1);
    ck_assert(sm_test_wait_for_text(r.w[1].log, "event=partition_handed_back", 1000));
    ck_assert_msg(wait_split(&r, "A", NPARTS, "B", 0, 25000),
                  "A did not take B's partitions; A:\n%s", SM_TEST_TAIL(r.w[0].log));
    char *txt = sm_test_slurp(r.w[0].log);
    int handed = 0;
    /* A took all 8 first (detail "never held"), then handed 4 to B: the
     * "handed back" ones in its log are B's, after its drain */
    for (const char *p = txt; (p = strstr(p, "detail=\"handed back\"")); p++)
        handed++;
    free(txt);
    ck_assert_msg(handed >= had, "A took %d of B's %d partitions as handed back; "
                  "A:\n%s", handed, had, SM_TEST_TAIL(r.w[0].log));
    rig_down(&r);
}
END_TEST

/* Another writer overwrites partition 3's lease: the worker's next renewal
 * fails, it stops the partition at once and logs why; once the writer
 * stays silent for lease_ttl the worker takes it back. */
START_TEST(lost_lease_stops_the_partition)
{
    rig r;
    rig_up(&r, "2s");
    start_worker(&r, 0);
    ck_assert_msg(wait_split(&r, "A", NPARTS, "B", 0, 30000), "A:\n%s",
                  SM_TEST_TAIL(r.w[0].log));
    uint64_t rev = 0;
    ck_assert_int_eq(kvStore_PutString(&rev, r.kv, "p3", "intruder 0"), NATS_OK);
    ck_assert_msg(sm_test_wait_for_text(r.w[0].log, "event=lease_lost partition=3",
                                        15000), "A:\n%s", SM_TEST_TAIL(r.w[0].log));
    ck_assert_msg(sm_test_wait_for_text(r.w[0].log, "event=partition_stopped "
                                        "partition=3 reason=lease_lost", 5000),
                  "A:\n%s", SM_TEST_TAIL(r.w[0].log));
    ck_assert_msg(sm_test_wait_for_text(r.w[0].log, "event=lease_taken partition=3 "
                                        "worker=A from=intruder", 20000),
                  "A:\n%s", SM_TEST_TAIL(r.w[0].log));
    ck_assert(wait_split(&r, "A", NPARTS, "B", 0, 10000));
    rig_down(&r);
}
END_TEST

/* A worker drained with SIGTERM and started again with the same id on
 * the same store takes its handed-back leases at once and resumes each
 * partition from its stored cursor and clock: nothing replayed, nothing
 * re-published, and the agent_down it raised before the restart is
 * resolved after it. */
START_TEST(restart_resumes_from_the_store)
{
    rig r;
    rig_up(&r, "2s");
    start_worker(&r, 0);
    ck_assert_msg(wait_split(&r, "A", NPARTS, "B", 0, 30000), "A:\n%s",
                  SM_TEST_TAIL(r.w[0].log));
    const char *victim = "sw00";
    int64_t t0 = 1767225600000LL;
    beats(&r, t0, t0 + 10000, NULL, NULL);
    beats(&r, t0 + 11000, t0 + 20000, NULL, victim);
    ck_assert_msg(sm_test_wait_for_text(r.w[0].log, "event=failure swarm=sw00 "
                                        "type=agent_down transition=raised", 30000),
                  "A:\n%s", SM_TEST_TAIL(r.w[0].log));
    stop_worker(&r, 0);
    start_worker(&r, 0);
    ck_assert_msg(wait_split(&r, "A", NPARTS, "B", 0, 30000), "leases: %s\nA:\n%s",
                  r.seen, SM_TEST_TAIL(r.w[0].log));
    /* the victim's partition resumed after a cursor, not from 0 (the
     * leases are taken at once, the partitions started one by one after:
     * its second start may come a while after the split) */
    char started[96];
    snprintf(started, sizeof started, "event=partition_started partition=%u ",
             sm_js_partition(victim, NPARTS));
    char *txt = NULL;
    const char *second = NULL;
    for (int t = 0; t < 30000 && !second; t += 100) {
        free(txt);
        txt = sm_test_slurp(r.w[0].log);
        const char *first = txt ? strstr(txt, started) : NULL;
        second = first ? strstr(first + 1, started) : NULL;
        if (!second)
            sm_proc_sleep_ms(100);
    }
    ck_assert_msg(second && !line_has(second, "cursor=0 "), "A:\n%s", SM_TEST_TAIL(r.w[0].log));
    free(txt);
    natsSubscription *sub = NULL;
    ck_assert_int_eq(natsConnection_SubscribeSync(&sub, r.nc, "medic.sw00.failure.>"),
                     NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(r.nc, 2000), NATS_OK);
    beats(&r, t0 + 21000, t0 + 25000, NULL, NULL);
    Swarmmedic__V1__Failure *f = NULL;
    natsMsg *m = NULL;
    if (natsSubscription_NextMsg(&m, sub, 30000) == NATS_OK)
        f = swarmmedic__v1__failure__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                            (const uint8_t *)natsMsg_GetData(m));
    natsMsg_Destroy(m);
    ck_assert_msg(f != NULL, "nothing on medic.sw00.failure.>; A:\n%s", SM_TEST_TAIL(r.w[0].log));
    ck_assert_int_eq(f->transition, SWARMMEDIC__V1__FAILURE__TRANSITION__TRANSITION_RESOLVED);
    ck_assert_str_eq(f->agent, "a2");
    swarmmedic__v1__failure__free_unpacked(f, NULL);
    natsSubscription_Destroy(sub);
    txt = sm_test_slurp(r.w[0].log);
    ck_assert_msg(txt && !strstr(txt, "published=no (replay)"), "A replayed:\n%s",
                  SM_TEST_TAIL(r.w[0].log));
    free(txt);
    size_t total = 0, others = 0;
    ck_assert_uint_eq(output_repeats(&r, victim, &total, &others), 0);
    ck_assert_uint_gt(total, 0);
    ck_assert_uint_eq(others, 0);
    rig_down(&r);
}
END_TEST

START_TEST(balance_rule_and_lease_value)
{
    ck_assert_uint_eq(sm_js_lease_target(8, 1), 8);
    ck_assert_uint_eq(sm_js_lease_target(8, 2), 4);
    ck_assert_uint_eq(sm_js_lease_target(8, 3), 3);
    ck_assert_uint_eq(sm_js_lease_target(8, 0), 8);
    ck_assert_uint_eq(sm_js_lease_target(7, 2), 4);
    /* three workers: 3 + 3 + 2 covers 8, nobody more than ceil */
    ck_assert_uint_ge(3 * sm_js_lease_target(8, 3), 8);
    char owner[16];
    uint64_t seq = 0;
    ck_assert(sm_js_lease_parse("A 42", 4, owner, sizeof owner, &seq));
    ck_assert_str_eq(owner, "A");
    ck_assert_uint_eq(seq, 42);
    ck_assert(sm_js_lease_parse("- 7xyz", 3, owner, sizeof owner, &seq));
    ck_assert_str_eq(owner, "-");
    ck_assert_uint_eq(seq, 7);
    ck_assert(!sm_js_lease_parse("A", 1, owner, sizeof owner, &seq));
    ck_assert(!sm_js_lease_parse("A x", 3, owner, sizeof owner, &seq));
    ck_assert(!sm_js_lease_parse(" 5", 2, owner, sizeof owner, &seq));
    ck_assert(!sm_js_lease_parse("averyveryverylongname 5", 23, owner, 8, &seq));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("partition");
    TCase *unit = tcase_create("unit");
    tcase_add_test(unit, balance_rule_and_lease_value);
    suite_add_tcase(s, unit);
    TCase *tc = tcase_create("partitions");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, kill9_one_of_two_partitions_taken_over);
    tcase_add_test(tc, drain_hands_partitions_back);
    tcase_add_test(tc, lost_lease_stops_the_partition);
    tcase_add_test(tc, restart_resumes_from_the_store);
    suite_add_tcase(s, tc);
    return sm_run_suite(s);
}
