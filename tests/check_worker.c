/*
 * check_worker.c - the worker's handlers and loop in-process, without a
 * bus: items go in (sm_worker_handle_item, or the inbox and
 * sm_worker_run), and a capturing sink records every message the worker
 * publishes (subject, headers, payload). Dead letters carry their reason;
 * accepted events change state; healing outcomes are validated and
 * counted; undecodable input creates no swarm state; an internal failure
 * (out of memory) is not blamed on the sender; input that ends without a
 * stop signal is handled, committed and reported as a failure.
 */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include "store.h"
#include "support.h"
#include "swarm_medic.pb-c.h"
#include "worker.h"
#include "runner.h"

/* ---- a sink that remembers what was published ------------------------- */

#define MAX_CAPTURED 64
#define MAX_HEADERS 4

typedef struct captured {
    char subject[128];
    char keys[MAX_HEADERS][32];
    char values[MAX_HEADERS][128];
    size_t n_headers;
    uint8_t data[4096];
    size_t len;
} captured;

typedef struct capture {
    captured m[MAX_CAPTURED];
    size_t n;                   /* kept (first MAX_CAPTURED) */
    size_t total;               /* published */
} capture;

static sm_status capture_publish(void *ud, const char *subject, const void *data,
                                 size_t len, const char *const *headers)
{
    capture *c = ud;
    c->total++;
    if (c->n == MAX_CAPTURED)
        return SM_OK;
    captured *m = &c->m[c->n++];
    snprintf(m->subject, sizeof m->subject, "%s", subject);
    for (size_t i = 0; headers && headers[i] && headers[i + 1] &&
                       m->n_headers < MAX_HEADERS; i += 2, m->n_headers++) {
        snprintf(m->keys[m->n_headers], sizeof m->keys[0], "%s", headers[i]);
        snprintf(m->values[m->n_headers], sizeof m->values[0], "%s", headers[i + 1]);
    }
    m->len = len < sizeof m->data ? len : sizeof m->data;
    memcpy(m->data, data, m->len);
    return SM_OK;
}

static const char *header_of(const captured *m, const char *key)
{
    for (size_t i = 0; i < m->n_headers; i++)
        if (strcmp(m->keys[i], key) == 0)
            return m->values[i];
    return NULL;
}

/* ---- fixture ------------------------------------------------------------ */

typedef struct rig {
    sm_config cfg;
    sm_log log;
    sm_worker *w;
    capture cap;
    char dir[256];              /* store, when one is used */
} rig;

/* The default settings; a store in a fresh directory if store. */
static void rig_config(rig *r, bool store)
{
    memset(r, 0, sizeof *r);
    ck_assert_int_eq(sm_config_init(&r->cfg), SM_OK);
    r->log = (sm_log){.out = stderr, .level = SM_LOG_ERROR};
    if (store) {
        sm_test_tmpdir(r->dir, sizeof r->dir, "worker");
        free(r->cfg.store_dir);
        r->cfg.store_dir = strdup(r->dir);
    }
}

/* The worker of r->cfg, without a bus, its conclusions captured. */
static void rig_start(rig *r)
{
    ck_assert_int_eq(sm_worker_create(&r->w, &r->cfg, &r->log), SM_OK);
    if (r->dir[0])
        ck_assert_int_eq(sm_worker_open(r->w), SM_OK);
    sm_sink sink = {.publish = capture_publish, .ud = &r->cap};
    sm_worker_set_sink(r->w, &sink);
}

/* A worker without a bus; with a store in a fresh directory if store. */
static void rig_up(rig *r, bool store)
{
    rig_config(r, store);
    rig_start(r);
}

/* A second worker on the same store (a restart). */
static sm_worker *reopen(rig *r)
{
    sm_worker *w = NULL;
    ck_assert_int_eq(sm_worker_create(&w, &r->cfg, &r->log), SM_OK);
    ck_assert_int_eq(sm_worker_open(w), SM_OK);
    return w;
}

static void rig_down(rig *r)
{
    sm_worker_destroy(r->w);
    if (r->dir[0])
        sm_test_rmtree(r->dir);
    sm_config_free(&r->cfg);
}

static sm_verdict feed(rig *r, const char *subject, const void *data, size_t len)
{
    sm_item it;
    sm_item_plain(&it, subject, data, len, NULL);
    return sm_worker_handle_item(r->w, &it);
}

static sm_worker_stats stats_of(sm_worker *w)
{
    sm_worker_stats st;
    sm_worker_stats_get(w, &st);
    return st;
}

#define T0 1767225600000LL

static size_t pack_task(uint8_t *buf, const char *agent, int64_t ts, uint32_t dur)
{
    Swarmmedic__V1__TaskEvent t = SWARMMEDIC__V1__TASK_EVENT__INIT;
    t.ts_ms = ts;
    t.agent = (char *)agent;
    t.kind = SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_COMPLETED;
    t.duration_ms = dur;
    return swarmmedic__v1__task_event__pack(&t, buf);
}

static sm_verdict feed_task(rig *r, const char *swarm, const char *agent,
                            int64_t ts, uint32_t dur)
{
    uint8_t buf[128];
    char subj[160];
    size_t n = pack_task(buf, agent, ts, dur);
    snprintf(subj, sizeof subj, "swarm.%s.task.%s", swarm, agent);
    return feed(r, subj, buf, n);
}

/* ---- the bus clock ------------------------------------------------------ */

/* One swarm stamping an hour ahead (a skewed clock) moves only itself: the
 * other swarms keep their time until a second swarm shows it too. A jump
 * under clock_jump moves every swarm at once. */
START_TEST(bus_clock_moves_quiet_swarms_and_holds_a_lone_jump)
{
    rig r;
    rig_up(&r, false);
    r.cfg.max_skew_ms = 0;      /* the hold alone (see clock skew below) */
    r.cfg.swarm_retention_ms = 0;   /* "quiet" is an hour idle, and kept */
    ck_assert_int_eq(feed_task(&r, "quiet", "a", T0, 1000).disp, SM_DISP_ACCEPTED);
    ck_assert_int_eq(feed_task(&r, "b", "x", T0 + 1000, 1000).disp, SM_DISP_ACCEPTED);
    ck_assert_int_eq(feed_task(&r, "b", "x", T0 + 120000, 1000).disp, SM_DISP_ACCEPTED);
    sm_worker_stats st = stats_of(r.w);
    ck_assert_int_eq(st.bus_ms, T0 + 120000);
    ck_assert_int_eq(sm_swarm_now(sm_worker_swarm(r.w, "quiet")), T0 + 120000);

    int64_t hour = T0 + 120000 + 3600000;
    ck_assert_int_eq(feed_task(&r, "skewed", "y", hour, 1000).disp, SM_DISP_ACCEPTED);
    st = stats_of(r.w);
    ck_assert_int_eq(st.bus_ms, T0 + 120000);
    ck_assert_uint_eq(st.clock_jumps_held, 1);
    ck_assert_int_eq(sm_swarm_now(sm_worker_swarm(r.w, "quiet")), T0 + 120000);
    ck_assert_int_eq(sm_swarm_now(sm_worker_swarm(r.w, "skewed")), hour);

    /* a second swarm shows a time as far ahead: the bus takes the lesser */
    ck_assert_int_eq(feed_task(&r, "b", "x", hour + 5000, 1000).disp, SM_DISP_ACCEPTED);
    st = stats_of(r.w);
    ck_assert_int_eq(st.bus_ms, hour);
    ck_assert_int_eq(sm_swarm_now(sm_worker_swarm(r.w, "quiet")), hour);
    rig_down(&r);
}
END_TEST

/* ---- clock skew ------------------------------------------------------------ */

/* 8 agents of swarm `swarm` x 4 tasks of 1 s from *ts on, 100 ms apart. */
static void feed_normal_round(rig *r, const char *swarm, int64_t *ts)
{
    for (int k = 0; k < 4; k++)
        for (int a = 0; a < 8; a++) {
            char id[16];
            snprintf(id, sizeof id, "n%d", a);
            ck_assert_int_eq(feed_task(r, swarm, id, *ts += 100, 1000).disp,
                             SM_DISP_ACCEPTED);
        }
}

/* One event a year ahead (a producer with a skewed clock) must not pin
 * the swarm's clock: it is dead-lettered with the reason and the swarm
 * goes on concluding on the events that follow at the right time. */
START_TEST(far_future_event_is_deadlettered_and_the_swarm_keeps_concluding)
{
    rig r;
    rig_up(&r, false);
    int64_t ts = T0;
    /* the first event of a worker has no bus time to be compared with: it
     * is taken */
    feed_normal_round(&r, "k", &ts);
    int64_t before = sm_swarm_now(sm_worker_swarm(r.w, "k"));
    ck_assert_int_eq(before, ts);

    int64_t year = ts + 365LL * 24 * 3600 * 1000;
    sm_verdict v = feed_task(&r, "k", "skewed", year, 1000);
    ck_assert_int_eq(v.disp, SM_DISP_DEADLETTER);
    ck_assert(!v.internal);
    ck_assert_msg(strstr(v.reason, "max_skew"), "reason '%s'", v.reason);
    ck_assert_uint_eq(r.cap.total, 1);
    ck_assert_str_eq(r.cap.m[0].subject, "medic.deadletter");
    ck_assert_str_eq(header_of(&r.cap.m[0], "Medic-Reason"), v.reason);
    ck_assert_str_eq(header_of(&r.cap.m[0], "Medic-Subject"), "swarm.k.task.skewed");
    ck_assert_int_eq(sm_swarm_now(sm_worker_swarm(r.w, "k")), before);
    ck_assert_uint_eq(sm_swarm_agent_count(sm_worker_swarm(r.w, "k")), 8);
    sm_worker_stats st = stats_of(r.w);
    ck_assert_uint_eq(st.skew_rejected, 1);
    ck_assert_uint_eq(st.deadletters, 1);
    ck_assert_int_eq(st.bus_ms, before);

    /* the same producer again: still rejected, nothing confirms it */
    ck_assert_int_eq(feed_task(&r, "k", "skewed", year + 1000, 1000).disp,
                     SM_DISP_DEADLETTER);

    /* normal events go on, and a slow agent is still found */
    feed_normal_round(&r, "k", &ts);
    size_t dl = r.cap.total;
    for (int k = 0; k < 5; k++)
        ck_assert_int_eq(feed_task(&r, "k", "slow", ts += 100, 5000).disp,
                         SM_DISP_ACCEPTED);
    ck_assert_msg(r.cap.total > dl, "no conclusion after the skewed event");
    ck_assert_str_eq(r.cap.m[dl].subject, "medic.k.bottleneck.slow_agent");
    ck_assert(sm_swarm_is_raised(sm_worker_swarm(r.w, "k"), SM_BN_SLOW_AGENT, "slow"));
    ck_assert_int_eq(sm_swarm_now(sm_worker_swarm(r.w, "k")), ts);
    rig_down(&r);
}
END_TEST

/* The bus clock and the count of inputs handled are stored with the state
 * and come back with it: a restarted worker judges skew as the one that
 * stopped did, and a publisher knows where to resume. */
START_TEST(restart_restores_the_bus_clock_and_the_inputs_handled)
{
    rig r;
    rig_up(&r, true);
    int64_t ts = T0;
    feed_normal_round(&r, "k", &ts);
    ck_assert_int_eq(feed(&r, "swarm.k.bogus.x", "x", 1).disp, SM_DISP_DEADLETTER);
    ck_assert_int_eq(feed_task(&r, "other", "o", ts - 5000, 1000).disp, SM_DISP_ACCEPTED);
    ck_assert_int_eq(sm_worker_flush(r.w), SM_OK);
    sm_worker_stats before = stats_of(r.w);
    ck_assert_uint_eq(before.applied, 34);
    ck_assert_int_eq(before.bus_ms, ts);
    sm_worker_destroy(r.w);

    r.w = reopen(&r);
    sm_sink sink = {.publish = capture_publish, .ud = &r.cap};
    sm_worker_set_sink(r.w, &sink);
    sm_worker_stats after = stats_of(r.w);
    ck_assert_uint_eq(after.applied, 34);
    ck_assert_int_eq(after.bus_ms, ts);
    /* the first event after the restart is judged against that clock */
    ck_assert_int_eq(feed_task(&r, "k", "n0", ts + 3600000, 1000).disp,
                     SM_DISP_DEADLETTER);
    ck_assert_int_eq(feed_task(&r, "k", "n1", ts + 1000, 1000).disp, SM_DISP_ACCEPTED);
    ck_assert_uint_eq(stats_of(r.w).applied, 36);
    rig_down(&r);
}
END_TEST

/* A real jump of the whole bus (input that resumes after a pause longer
 * than max_skew) is told apart from one skewed producer: the first event
 * of the jump is dead-lettered, a second producer showing the same time
 * confirms it and the bus moves there. */
START_TEST(a_jump_confirmed_by_a_second_producer_moves_the_bus)
{
    rig r;
    rig_up(&r, false);
    int64_t ts = T0;
    feed_normal_round(&r, "k", &ts);
    int64_t later = ts + 3600000;           /* an hour's pause */
    ck_assert_int_eq(feed_task(&r, "k", "n0", later, 1000).disp,
                     SM_DISP_DEADLETTER);
    ck_assert_int_eq(feed_task(&r, "k", "n1", later + 100, 1000).disp,
                     SM_DISP_ACCEPTED);
    ck_assert_int_eq(stats_of(r.w).bus_ms, later + 100);
    ck_assert_int_eq(feed_task(&r, "k", "n0", later + 200, 1000).disp,
                     SM_DISP_ACCEPTED);
    ck_assert_int_eq(sm_swarm_now(sm_worker_swarm(r.w, "k")), later + 200);
    ck_assert_uint_eq(stats_of(r.w).skew_rejected, 1);
    rig_down(&r);
}
END_TEST

/* ---- bounded state --------------------------------------------------------- */

static size_t pack_usage(uint8_t *buf, int64_t ts, uint64_t used, uint64_t budget)
{
    Swarmmedic__V1__ResourceSample m = SWARMMEDIC__V1__RESOURCE_SAMPLE__INIT;
    m.ts_ms = ts;
    m.source = "budget";
    m.tokens_used = used;
    m.token_budget = budget;
    return swarmmedic__v1__resource_sample__pack(&m, buf);
}

static sm_verdict feed_usage(rig *r, const char *swarm, int64_t ts,
                             uint64_t used, uint64_t budget)
{
    uint8_t buf[128];
    char subj[160];
    size_t n = pack_usage(buf, ts, used, budget);
    snprintf(subj, sizeof subj, "swarm.%s.resource.budget", swarm);
    return feed(r, subj, buf, n);
}

/* Input over a cap is dead-lettered with the cap named and counted; what
 * is already held keeps working. */
START_TEST(input_over_the_caps_is_deadlettered_and_existing_state_works)
{
    rig r;
    rig_up(&r, false);
    r.cfg.max_agents = 3;
    r.cfg.max_swarms = 2;
    int64_t ts = T0;
    for (int a = 0; a < 3; a++) {
        char id[16];
        snprintf(id, sizeof id, "a%d", a);
        ck_assert_int_eq(feed_task(&r, "s0", id, ts += 10, 1000).disp,
                         SM_DISP_ACCEPTED);
    }
    sm_verdict v = feed_task(&r, "s0", "a3", ts += 10, 1000);
    ck_assert_int_eq(v.disp, SM_DISP_DEADLETTER);
    ck_assert(!v.internal);
    ck_assert_msg(strstr(v.reason, "max_agents"), "reason '%s'", v.reason);
    ck_assert_str_eq(header_of(&r.cap.m[0], "Medic-Reason"), v.reason);
    ck_assert_str_eq(header_of(&r.cap.m[0], "Medic-Subject"), "swarm.s0.task.a3");
    ck_assert_uint_eq(sm_swarm_agent_count(sm_worker_swarm(r.w, "s0")), 3);
    /* known agents, and events that create none, are still taken */
    ck_assert_int_eq(feed_task(&r, "s0", "a1", ts += 10, 1000).disp, SM_DISP_ACCEPTED);
    ck_assert_int_eq(feed_usage(&r, "s0", ts += 10, 10, 100).disp, SM_DISP_ACCEPTED);

    ck_assert_int_eq(feed_task(&r, "s1", "a0", ts += 10, 1000).disp, SM_DISP_ACCEPTED);
    v = feed_task(&r, "s2", "a0", ts += 10, 1000);
    ck_assert_int_eq(v.disp, SM_DISP_DEADLETTER);
    ck_assert_msg(strstr(v.reason, "max_swarms"), "reason '%s'", v.reason);
    ck_assert_ptr_null(sm_worker_swarm(r.w, "s2"));
    ck_assert_int_eq(feed_usage(&r, "s2", ts += 10, 10, 100).disp, SM_DISP_DEADLETTER);
    ck_assert_int_eq(feed_task(&r, "s1", "a1", ts += 10, 1000).disp, SM_DISP_ACCEPTED);

    sm_worker_stats st = stats_of(r.w);
    ck_assert_uint_eq(st.agent_cap_rejected, 1);
    ck_assert_uint_eq(st.swarm_cap_rejected, 2);
    ck_assert_uint_eq(st.deadletters, 3);
    ck_assert_uint_eq(st.swarms, 2);
    rig_down(&r);
}
END_TEST

/* A swarm with no event for swarm_retention of bus time and nothing
 * raised is removed from memory and from the store; one with something
 * raised stays. */
START_TEST(idle_swarms_expire_from_memory_and_store)
{
    rig r;
    rig_up(&r, true);
    r.cfg.swarm_retention_ms = 600000;
    int64_t ts = T0;
    ck_assert_int_eq(feed_task(&r, "idle", "a0", ts, 1000).disp, SM_DISP_ACCEPTED);
    /* "alarm" spends its budget (a failure raised), then goes silent too */
    ck_assert_int_eq(feed_usage(&r, "alarm", ts += 1000, 995, 1000).disp, SM_DISP_ACCEPTED);
    ck_assert_int_eq(feed_usage(&r, "alarm", ts += 1000, 996, 1000).disp, SM_DISP_ACCEPTED);
    ck_assert(sm_swarm_failure_raised(sm_worker_swarm(r.w, "alarm"),
                                      SM_FAIL_TOKEN_EXHAUSTION, ""));
    ck_assert_int_eq(sm_worker_flush(r.w), SM_OK);
    /* "busy" goes on: "idle" stays for 10 minutes of bus time, and is gone
     * within a minute more (looked for once a minute) */
    for (int i = 0; i < 59; i++)
        ck_assert_int_eq(feed_task(&r, "busy", "b0", ts += 10000, 1000).disp,
                         SM_DISP_ACCEPTED);
    ck_assert_ptr_nonnull(sm_worker_swarm(r.w, "idle"));
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(feed_task(&r, "busy", "b0", ts += 10000, 1000).disp,
                         SM_DISP_ACCEPTED);
    ck_assert_ptr_null(sm_worker_swarm(r.w, "idle"));
    ck_assert_ptr_nonnull(sm_worker_swarm(r.w, "alarm"));
    ck_assert_ptr_nonnull(sm_worker_swarm(r.w, "busy"));
    ck_assert_int_eq(sm_worker_flush(r.w), SM_OK);
    sm_worker_stats st = stats_of(r.w);
    ck_assert_uint_eq(st.swarms_expired, 1);
    ck_assert_uint_eq(st.swarms, 2);
    sm_worker_destroy(r.w);
    r.w = reopen(&r);
    ck_assert_ptr_null(sm_worker_swarm(r.w, "idle"));
    ck_assert_ptr_nonnull(sm_worker_swarm(r.w, "alarm"));
    ck_assert_uint_eq(stats_of(r.w).swarms, 2);
    /* it comes back as a new swarm when it speaks again */
    sm_sink sink = {.publish = capture_publish, .ud = &r.cap};
    sm_worker_set_sink(r.w, &sink);
    ck_assert_int_eq(feed_task(&r, "idle", "a0", ts += 1000, 1000).disp, SM_DISP_ACCEPTED);
    ck_assert_uint_eq(sm_swarm_agent_count(sm_worker_swarm(r.w, "idle")), 1);
    rig_down(&r);
}
END_TEST

/* ---- a damaged store ------------------------------------------------------ */

/* Opens a worker on r's store with its log in *text (freed by the caller). */
static sm_status open_logged(rig *r, sm_worker **w, char **text)
{
    size_t len = 0;
    FILE *f = open_memstream(text, &len);
    ck_assert_ptr_nonnull(f);
    sm_log lg = {.out = f, .level = SM_LOG_INFO};
    ck_assert_int_eq(sm_worker_create(w, &r->cfg, &lg), SM_OK);
    sm_status s = sm_worker_open(*w);
    sm_worker_destroy(*w);
    *w = NULL;
    fclose(f);
    return s;
}

static sm_status flip_value(void *ud, const void *key, size_t klen,
                            const void *val, size_t vlen)
{
    unsigned char *copy = ud;
    (void)key;
    (void)klen;
    ck_assert_uint_lt(vlen, 4096);
    memcpy(copy + 2, val, vlen);
    memcpy(copy, &(uint16_t){(uint16_t)vlen}, 2);
    return SM_OK;
}

/* A store whose blob is damaged loads the rest and names what it dropped,
 * key by key, with status "partial"; a store LMDB cannot read is refused
 * with the reason instead of crashing the worker. */
START_TEST(damaged_store_is_reported_key_by_key_or_refused)
{
    rig r;
    rig_up(&r, true);
    int64_t ts = T0;
    for (int a = 0; a < 5; a++) {
        char id[16];
        snprintf(id, sizeof id, "a%d", a);
        ck_assert_int_eq(feed_task(&r, "s0", id, ts += 10, 1000).disp, SM_DISP_ACCEPTED);
    }
    ck_assert_int_eq(sm_worker_flush(r.w), SM_OK);
    sm_worker_destroy(r.w);
    r.w = NULL;

    /* one byte of agent a3's blob flipped, in place: the last of page 0
     * (a0 .. a3) */
    sm_store_config sc = {.dir = r.dir, .map_size = 64 << 20, .map_max = 1 << 30};
    sm_store *st = NULL;
    ck_assert_int_eq(sm_store_open(&st, &sc, NULL, 0), SM_OK);
    static const char key[] = "g\0s0\0\0\0\0\0";
    unsigned char val[4098];
    ck_assert_int_eq(sm_store_scan(st, key, sizeof key - 1, flip_value, val), SM_OK);
    uint16_t vlen;
    memcpy(&vlen, val, 2);
    val[2 + vlen - 1] ^= 0x10;
    ck_assert_int_eq(sm_store_begin(st), SM_OK);
    ck_assert_int_eq(sm_store_put(st, key, sizeof key - 1, val + 2, vlen), SM_OK);
    ck_assert_int_eq(sm_store_commit(st), SM_OK);
    sm_store_close(st);

    char *text = NULL;
    sm_worker *w = NULL;
    ck_assert_int_eq(open_logged(&r, &w, &text), SM_OK);
    ck_assert_msg(strstr(text, "event=store_dropped key=\"g/s0/#0\" reason=\"agent blob damaged"),
                  "log:\n%s", text);
    ck_assert_msg(strstr(text, "status=\"partial\" swarms=1 agents=4 corrupt_skipped=1"),
                  "log:\n%s", text);
    free(text);

    /* the data file's first page overwritten: refused, with the reason */
    char path[400];
    snprintf(path, sizeof path, "%s/data.mdb", r.dir);
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 16, SEEK_SET);
    fputs("this is not an LMDB meta page", f);
    fclose(f);
    ck_assert_int_eq(open_logged(&r, &w, &text), SM_ERR_CORRUPT);
    ck_assert_msg(strstr(text, "event=store_open_failed") &&
                  strstr(text, "not an LMDB meta page"), "log:\n%s", text);
    free(text);
    rig_down(&r);
}
END_TEST

static const char junk[] = "\xff\xff\xff\xff\x0f garbage";

/* ---- items -------------------------------------------------------------- */

START_TEST(plain_item_headers_and_noop_settle)
{
    const char *h[] = {"Nats-Msg-Id", "abc", "Medic-Reason", "x", NULL};
    sm_item it;
    sm_item_plain(&it, "swarm.s.task.a", "d", 1, h);
    ck_assert_str_eq(sm_item_header(&it, "Nats-Msg-Id"), "abc");
    ck_assert_str_eq(sm_item_header(&it, "Medic-Reason"), "x");
    ck_assert_ptr_null(sm_item_header(&it, "Nope"));
    ck_assert_ptr_null(it.reply);
    ck_assert_int_eq(sm_item_settle(&it, SM_SETTLE_NAK, 100), SM_OK);
    sm_item_release(&it);
    sm_item_plain(&it, "swarm.s.task.a", "d", 1, NULL);
    ck_assert_ptr_null(sm_item_header(&it, "Nats-Msg-Id"));
}
END_TEST

/* ---- dead letters --------------------------------------------------------- */

START_TEST(deadletters_carry_reason_status_subject_and_payload)
{
    rig r;
    rig_up(&r, false);
    Swarmmedic__V1__TaskEvent t = SWARMMEDIC__V1__TASK_EVENT__INIT;
    t.agent = "a1";
    t.kind = SWARMMEDIC__V1__TASK_EVENT__KIND__KIND_COMPLETED;   /* no ts_ms */
    uint8_t nots[64];
    size_t nots_len = swarmmedic__v1__task_event__pack(&t, nots);
    uint8_t other[64];
    size_t other_len = pack_task(other, "a2", T0, 100);  /* agent != subject's */
    struct {
        const char *subj;
        const void *data;
        size_t len;
        const char *why;
        const char *status;
    } in[] = {
        {"swarm.s0.task.a1", junk, sizeof junk - 1, "not a TaskEvent", "decode error"},
        {"swarm.s0.bogus.a1", "x", 1, "unknown event kind", "invalid"},
        {"swarm.s0.task.a1", nots, nots_len, "ts_ms", "invalid"},
        {"swarm.s0.task.a1", other, other_len, "subject", "invalid"},
        {"orders.new", "y", 1, "swarm.", "invalid"},
    };
    size_t n_in = sizeof in / sizeof in[0];
    for (size_t i = 0; i < n_in; i++) {
        sm_verdict v = feed(&r, in[i].subj, in[i].data, in[i].len);
        ck_assert_int_eq(v.disp, SM_DISP_DEADLETTER);
        ck_assert(!v.internal);
        ck_assert_ptr_nonnull(v.reason);
    }
    ck_assert_uint_eq(r.cap.total, n_in);
    for (size_t i = 0; i < n_in; i++) {
        const captured *m = &r.cap.m[i];
        ck_assert_str_eq(m->subject, "medic.deadletter");
        const char *reason = header_of(m, "Medic-Reason");
        ck_assert_ptr_nonnull(reason);
        ck_assert_msg(strstr(reason, in[i].why), "reason '%s' lacks '%s'", reason,
                      in[i].why);
        ck_assert_str_eq(header_of(m, "Medic-Subject"), in[i].subj);
        ck_assert_ptr_nonnull(header_of(m, "Medic-Status"));
        ck_assert_str_eq(header_of(m, "Medic-Status"),
                         sm_status_str(strcmp(in[i].status, "invalid") == 0
                                           ? SM_ERR_INVALID : SM_ERR_DECODE));
        ck_assert_uint_eq(m->len, in[i].len);
        ck_assert_mem_eq(m->data, in[i].data, in[i].len);
    }
    sm_worker_stats st = stats_of(r.w);
    ck_assert_uint_eq(st.deadletters, n_in);
    ck_assert_uint_eq(st.internal_errors, 0);
    ck_assert_uint_eq(st.events, 0);
    ck_assert_uint_eq(st.swarms, 0);
    rig_down(&r);
}
END_TEST

/* ---- subject tokens that would make output subjects wildcards ---------- */

/* A valid token-exhaustion pair on a swarm token that is a wildcard (or
 * holds control bytes) would publish on medic.*.bottleneck...: it is
 * dead-lettered instead, and no swarm exists. */
START_TEST(wildcard_and_control_tokens_are_dead_lettered)
{
    rig r;
    rig_up(&r, false);
    Swarmmedic__V1__ResourceSample m = SWARMMEDIC__V1__RESOURCE_SAMPLE__INIT;
    m.token_budget = 1000;
    m.tokens_used = 995;
    uint8_t buf[64];
    const char *subj[] = {"swarm.*.resource.c", "swarm.>.resource.c",
                          "swarm.s\x1b]0;x\x07.resource.c", "swarm.s.resource.*",
                          NULL};
    for (int i = 0; subj[i]; i++) {
        for (int k = 0; k < 3; k++) {
            m.ts_ms = T0 + k * 1000;
            size_t n = swarmmedic__v1__resource_sample__pack(&m, buf);
            sm_verdict v = feed(&r, subj[i], buf, n);
            ck_assert_int_eq(v.disp, SM_DISP_DEADLETTER);
            ck_assert_msg(strstr(v.reason, "token"), "%s", v.reason);
        }
    }
    for (size_t i = 0; i < r.cap.n; i++)
        ck_assert_str_eq(r.cap.m[i].subject, "medic.deadletter");
    ck_assert_uint_eq(stats_of(r.w).swarms, 0);
    rig_down(&r);
}
END_TEST

/* ---- accepted events change state ------------------------------------- */

START_TEST(accepted_events_change_state_and_conclude)
{
    rig r;
    rig_up(&r, false);
    /* 8 agents x 4 tasks of 1 s, then agent "slow" 5 tasks of 5 s */
    int64_t ts = T0;
    uint64_t fed = 0;
    for (int k = 0; k < 4; k++)
        for (int a = 0; a < 8; a++) {
            char id[16];
            snprintf(id, sizeof id, "n%d", a);
            sm_verdict v = feed_task(&r, "k", id, ts += 100, 1000);
            ck_assert_int_eq(v.disp, SM_DISP_ACCEPTED);
            ck_assert_int_eq(v.status, SM_OK);
            fed++;
        }
    ck_assert_uint_eq(r.cap.total, 0);
    for (int k = 0; k < 5; k++, fed++)
        ck_assert_int_eq(feed_task(&r, "k", "slow", ts += 100, 5000).disp,
                         SM_DISP_ACCEPTED);
    sm_worker_stats st = stats_of(r.w);
    ck_assert_uint_eq(st.events, fed);
    ck_assert_uint_eq(st.by_kind[1], fed);     /* SM_IN_TASK */
    ck_assert_uint_eq(st.deadletters, 0);
    ck_assert_uint_eq(st.swarms, 1);
    ck_assert_msg(r.cap.total >= 1, "5 slow tasks raised nothing");
    const captured *m = &r.cap.m[0];
    ck_assert_str_eq(m->subject, "medic.k.bottleneck.slow_agent");
    ck_assert_ptr_nonnull(header_of(m, "Nats-Msg-Id"));
    Swarmmedic__V1__Bottleneck *b =
        swarmmedic__v1__bottleneck__unpack(NULL, m->len, m->data);
    ck_assert_ptr_nonnull(b);
    ck_assert_str_eq(b->affected[0], "slow");
    ck_assert_str_eq(b->decision->evidence->subject, "swarm.k.task.slow");
    ck_assert_str_eq(header_of(m, "Nats-Msg-Id"), b->decision->decision_id);
    swarmmedic__v1__bottleneck__free_unpacked(b, NULL);
    ck_assert_uint_eq(st.transitions, r.cap.total);
    rig_down(&r);
}
END_TEST

/* ---- healing outcomes --------------------------------------------------- */

static size_t pack_outcome(uint8_t *buf, int64_t ts, const char *cmd, int result)
{
    Swarmmedic__V1__HealingOutcome o = SWARMMEDIC__V1__HEALING_OUTCOME__INIT;
    o.ts_ms = ts;
    o.command_id = (char *)cmd;
    o.result = (Swarmmedic__V1__HealingOutcome__Result)result;
    return swarmmedic__v1__healing_outcome__pack(&o, buf);
}

START_TEST(outcome_valid_is_counted_invalid_is_deadlettered)
{
    rig r;
    rig_up(&r, false);
    uint8_t buf[128];
    size_t n = pack_outcome(buf, T0, "00000000000000c1", SWARMMEDIC__V1__HEALING_OUTCOME__RESULT__RESULT_DONE);
    sm_verdict v = feed(&r, "swarm.h.outcome.00000000000000c1", buf, n);
    ck_assert_int_eq(v.disp, SM_DISP_ACCEPTED);
    n = pack_outcome(buf, T0 + 1, "", SWARMMEDIC__V1__HEALING_OUTCOME__RESULT__RESULT_FAILED);
    ck_assert_int_eq(feed(&r, "swarm.h.outcome.00000000000000C2", buf, n).disp, SM_DISP_ACCEPTED);
    sm_worker_stats st = stats_of(r.w);
    ck_assert_uint_eq(st.by_kind[6], 2);       /* SM_IN_OUTCOME */
    ck_assert_uint_eq(st.events, 2);
    ck_assert_uint_eq(st.swarms, 1);
    ck_assert_uint_eq(r.cap.total, 0);

    struct { const char *subj; int64_t ts; const char *cmd; int result; const char *why; } bad[] = {
        {"swarm.h.outcome.c3", T0, "c3", 0, "result"},
        {"swarm.h.outcome.c3", T0, "c3", 9, "result"},
        {"swarm.h.outcome.c3", 0, "c3", 1, "ts_ms"},
        {"swarm.h.outcome.c3", T0, "zz", 1, "command_id"},
        {"swarm.h.outcome.c3", T0, "c3", 1, "16-hex-digit"},
        {"swarm.h.outcome.00000000000000zz", T0, "", 1, "16-hex-digit"},
        {"swarm.h.outcome.00000000000000c1ff", T0, "", 1, "16-hex-digit"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = pack_outcome(buf, bad[i].ts, bad[i].cmd, bad[i].result);
        v = feed(&r, bad[i].subj, buf, n);
        ck_assert_int_eq(v.disp, SM_DISP_DEADLETTER);
        ck_assert_msg(strstr(v.reason, bad[i].why), "%zu: '%s'", i, v.reason);
        ck_assert_str_eq(header_of(&r.cap.m[i], "Medic-Reason"), v.reason);
    }
    v = feed(&r, "swarm.h.outcome.c4", junk, sizeof junk - 1);
    ck_assert_int_eq(v.disp, SM_DISP_DEADLETTER);
    ck_assert_str_eq(v.reason, "payload is not a HealingOutcome");
    st = stats_of(r.w);
    ck_assert_uint_eq(st.by_kind[6], 2);
    ck_assert_uint_eq(st.deadletters, 8);
    ck_assert_uint_eq(r.cap.total, 8);
    rig_down(&r);
}
END_TEST

/* ---- undecodable input creates no swarm -------------------------------- */

START_TEST(undecodable_on_1000_swarms_creates_no_swarm)
{
    rig r;
    rig_up(&r, true);
    const char *kinds[] = {"task", "heartbeat", "resource", "consensus", "agent",
                           "outcome"};
    for (int i = 0; i < 1000; i++) {
        char subj[96];
        snprintf(subj, sizeof subj, "swarm.s%d.%s.x", i, kinds[i % 6]);
        ck_assert_int_eq(feed(&r, subj, junk, sizeof junk - 1).disp, SM_DISP_DEADLETTER);
    }
    sm_worker_stats st = stats_of(r.w);
    ck_assert_uint_eq(st.deadletters, 1000);
    ck_assert_uint_eq(st.swarms, 0);
    /* one good event: the control that swarms do get created and stored */
    ck_assert_int_eq(feed_task(&r, "good", "a", T0, 100).disp, SM_DISP_ACCEPTED);
    ck_assert_int_eq(sm_worker_flush(r.w), SM_OK);
    sm_worker_destroy(r.w);
    r.w = reopen(&r);
    st = stats_of(r.w);
    ck_assert_msg(st.swarms == 1, "store holds %zu swarms, want only 'good'",
                  st.swarms);
    rig_down(&r);
}
END_TEST

/* ---- our failure is not the sender's ------------------------------------ */

#if !defined(__SANITIZE_ADDRESS__)
/* Address space in use, from /proc/self/statm (pages). */
static size_t vm_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%lu", &pages), 1);
    fclose(f);
    return (size_t)pages * 4096;
}

START_TEST(out_of_memory_is_an_internal_error_not_a_rejection)
{
    rig r;
    rig_up(&r, false);
    int64_t ts = T0;
    char id[32];
    /* grow the swarm's agent table large, then cap the address space just
     * above what we use: the next doubling of the table cannot happen */
    int i = 0;
    for (; i < 20000; i++) {
        snprintf(id, sizeof id, "a%d", i);
        ck_assert_int_eq(feed_task(&r, "big", id, ts += 1, 100).disp, SM_DISP_ACCEPTED);
    }
    fprintf(stderr, "%s", "");
    struct rlimit rl = {.rlim_cur = vm_bytes() + (256u << 10),
                        .rlim_max = RLIM_INFINITY};
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
    sm_verdict v = {0};
    for (; i < 2000000; i++) {
        snprintf(id, sizeof id, "a%d", i);
        v = feed_task(&r, "big", id, ts += 1, 100);
        if (v.disp != SM_DISP_ACCEPTED)
            break;
    }
    rl.rlim_cur = RLIM_INFINITY;
    setrlimit(RLIMIT_AS, &rl);
    ck_assert_msg(v.disp == SM_DISP_DEADLETTER, "no allocation failed after %d agents", i);
    ck_assert_int_eq(v.status, SM_ERR_NOMEM);
    ck_assert(v.internal);
    ck_assert_msg(strstr(v.reason, "internal error"), "reason '%s'", v.reason);
    ck_assert_msg(!strstr(v.reason, "rejected"), "blamed on the sender: '%s'", v.reason);
    sm_worker_stats st = stats_of(r.w);
    ck_assert_uint_eq(st.internal_errors, 1);
    ck_assert_uint_eq(st.deadletters, 1);
    const captured *m = &r.cap.m[r.cap.n - 1];
    ck_assert_str_eq(m->subject, "medic.deadletter");
    ck_assert_str_eq(header_of(m, "Medic-Reason"), v.reason);
    ck_assert_str_eq(header_of(m, "Medic-Status"), sm_status_str(SM_ERR_NOMEM));
    rig_down(&r);
}
END_TEST
#endif

/* ---- a store that cannot be opened says why ----------------------------- */

/* The detail="..." of the first `event` line in text ("" if none). */
static void detail_of(const char *text, const char *event, char *out,
                      size_t cap)
{
    out[0] = 0;
    const char *line = strstr(text, event);
    const char *d = line ? strstr(line, "detail=\"") : NULL;
    if (!d)
        return;
    d += strlen("detail=\"");
    const char *end = strchr(d, '"');
    size_t n = end ? (size_t)(end - d) : strlen(d);
    snprintf(out, cap, "%.*s", (int)n, d);
}

START_TEST(store_open_failure_says_why)
{
    char dir[256], file[320], detail[256];
    sm_test_tmpdir(dir, sizeof dir, "openfail");
    snprintf(file, sizeof file, "%s/plain-file", dir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    sm_config cfg;
    ck_assert_int_eq(sm_config_init(&cfg), SM_OK);
    free(cfg.store_dir);
    cfg.store_dir = strdup(file);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    sm_log log = {.out = mem, .level = SM_LOG_INFO};
    sm_worker *w = NULL;
    ck_assert_int_eq(sm_worker_create(&w, &cfg, &log), SM_OK);
    ck_assert_int_ne(sm_worker_open(w), SM_OK);
    sm_worker_destroy(w);
    fclose(mem);
    detail_of(text, "event=store_open_failed", detail, sizeof detail);
    ck_assert_msg(strstr(detail, "not a directory"),
                  "store_open_failed detail '%s'; log:\n%s", detail, text);
    free(text);
    sm_config_free(&cfg);
    sm_test_rmtree(dir);
}
END_TEST

/* A disk that fills up under the store: LMDB reports the write cut short
 * as "Input/output error"; the log line says the disk is full. Needs a
 * small filesystem of its own: a 64 KiB tmpfs (root only; elsewhere the
 * test says so and checks nothing). */
START_TEST(full_disk_is_named_in_the_commit_failure)
{
    char dir[256], fill[320], detail[256];
    sm_test_tmpdir(dir, sizeof dir, "fulldisk");
    if (mount("tmpfs", dir, "tmpfs", 0, "size=64k") != 0) {
        fprintf(stderr, "full_disk_is_named_in_the_commit_failure: not run "
                "(mount tmpfs: %s; needs root)\n", strerror(errno));
        sm_test_rmtree(dir);
        return;
    }
    snprintf(fill, sizeof fill, "%s/fill", dir);
    FILE *f = fopen(fill, "w");             /* leave 20 KiB */
    ck_assert_ptr_nonnull(f);
    static const char block[1024];
    for (int i = 0; i < 44; i++)
        fwrite(block, 1, sizeof block, f);
    fclose(f);
    sm_config cfg;
    ck_assert_int_eq(sm_config_init(&cfg), SM_OK);
    free(cfg.store_dir);
    cfg.store_dir = malloc(strlen(dir) + 8);
    sprintf(cfg.store_dir, "%s/data", dir);
    cfg.map_size = cfg.map_max = 1 << 20;
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    sm_log log = {.out = mem, .level = SM_LOG_INFO};
    sm_worker *w = NULL;
    ck_assert_int_eq(sm_worker_create(&w, &cfg, &log), SM_OK);
    ck_assert_int_eq(sm_worker_open(w), SM_OK);
    uint8_t buf[128];
    for (int i = 0; i < 50; i++) {
        char subj[64], id[24];
        snprintf(id, sizeof id, "agent-%d", i);
        snprintf(subj, sizeof subj, "swarm.full.task.%s", id);
        sm_worker_handle(w, subj, buf, pack_task(buf, id, T0 + i, 100));
    }
    sm_status s = sm_worker_flush(w);
    sm_worker_destroy(w);
    fclose(mem);
    sm_config_free(&cfg);
    umount2(dir, MNT_DETACH);               /* before any assertion */
    sm_test_rmtree(dir);
    ck_assert_int_ne(s, SM_OK);
    detail_of(text, "event=store_commit_failed", detail, sizeof detail);
    ck_assert_msg(strstr(detail, "No space left on device"),
                  "store_commit_failed detail '%s'; log:\n%s", detail, text);
    free(text);
}
END_TEST

/* ---- the loop: input that ends without a stop ---------------------------- */

START_TEST(input_lost_is_handled_committed_and_a_failure)
{
    rig r;
    rig_up(&r, true);
    sm_inbox *ib = sm_worker_inbox(r.w);
    sm_inbox_source_open(ib);
    uint8_t bufs[5][128];
    char subj[5][64];
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof id, "a%d", i);
        size_t n = pack_task(bufs[i], id, T0 + i, 100);
        snprintf(subj[i], sizeof subj[i], "swarm.lost.task.%s", id);
        sm_item it;
        sm_item_plain(&it, subj[i], bufs[i], n, NULL);
        ck_assert_int_eq(sm_inbox_push(ib, &it), SM_OK);
    }
    sm_item bad;
    sm_item_plain(&bad, "swarm.lost.task.z", junk, sizeof junk - 1, NULL);
    ck_assert_int_eq(sm_inbox_push(ib, &bad), SM_OK);
    sm_inbox_source_done(ib, SM_ERR_BUS);      /* the connection closed */
    sigset_t none;
    sigemptyset(&none);
    ck_assert_int_eq(sm_worker_run(r.w, &none), SM_ERR_BUS);
    sm_worker_stats st = stats_of(r.w);
    ck_assert_uint_eq(st.events, 5);
    ck_assert_uint_eq(st.deadletters, 1);
    ck_assert_uint_eq(r.cap.total, 1);
    sm_worker_destroy(r.w);
    r.w = reopen(&r);
    ck_assert_uint_eq(stats_of(r.w).swarms, 1);
    rig_down(&r);
}
END_TEST


/* ---- the loop's commits on the commit thread (writer.h) ------------------ */

/* Appends each key and value, in hex, to a growing text. */
typedef struct dump_text {
    char *s;
    size_t n, cap;
} dump_text;

static sm_status dump_kv(void *ud, const void *k, size_t klen, const void *v,
                         size_t vlen)
{
    dump_text *d = ud;
    size_t need = 2 * (klen + vlen) + 3;
    if (d->n + need + 1 > d->cap) {
        d->cap = (d->n + need + 1) * 2;
        d->s = realloc(d->s, d->cap);
        ck_assert_ptr_nonnull(d->s);
    }
    for (size_t i = 0; i < klen; i++)
        d->n += (size_t)sprintf(d->s + d->n, "%02x", ((const uint8_t *)k)[i]);
    d->s[d->n++] = '=';
    for (size_t i = 0; i < vlen; i++)
        d->n += (size_t)sprintf(d->s + d->n, "%02x", ((const uint8_t *)v)[i]);
    d->s[d->n++] = '\n';
    d->s[d->n] = 0;
    return SM_OK;
}

/* A worker with a store, committing after commit_events (on the commit
 * thread if thread, but batches under thread_min in place). */
static void store_rig(rig *r, bool thread, int64_t thread_min,
                      int64_t commit_events)
{
    rig_config(r, true);
    r->cfg.commit_thread = thread;
    r->cfg.commit_thread_min = thread_min;
    r->cfg.commit_events = commit_events;
    rig_start(r);
}

/* Stops r's worker (r->w NULL after) and returns its store as text, a
 * line per key (caller frees). */
static char *store_text(rig *r)
{
    sm_worker_destroy(r->w);
    r->w = NULL;
    sm_store_config sc = {.dir = r->dir};
    sm_store *store = NULL;
    ck_assert_int_eq(sm_store_open(&store, &sc, NULL, 0), SM_OK);
    dump_text d = {0};
    ck_assert_int_eq(sm_store_scan(store, NULL, 0, dump_kv, &d), SM_OK);
    sm_store_close(store);
    return d.s;
}

/* A ResourceSample on s0 with `pending` medium-priority tasks queued. */
static size_t pack_pending(uint8_t *buf, int64_t ts, uint32_t pending)
{
    Swarmmedic__V1__ResourceSample m = SWARMMEDIC__V1__RESOURCE_SAMPLE__INIT;
    Swarmmedic__V1__PendingByPriority p = SWARMMEDIC__V1__PENDING_BY_PRIORITY__INIT;
    Swarmmedic__V1__PendingByPriority *pp = &p;
    p.priority = SWARMMEDIC__V1__PRIORITY__PRIORITY_MEDIUM;
    p.count = pending;
    m.ts_ms = ts;
    m.source = "queue";
    m.n_pending = 1;
    m.pending = &pp;
    return swarmmedic__v1__resource_sample__pack(&m, buf);
}

/* Runs the loop over a fixed input of 3 swarms x 40 agents (committing
 * every 64 events: a commit a batch of 256 when the writer is free, so
 * there are several, and with the thread some
 * written while events go on) until the input ends, then returns the
 * store as text, the conclusions sent and the inputs handled. */
static char *loop_store(bool thread, int64_t thread_min, size_t *sent,
                        uint64_t *applied)
{
    rig r;
    store_rig(&r, thread, thread_min, 64);
    sm_inbox *ib = sm_worker_inbox(r.w);
    sm_inbox_source_open(ib);
    enum { N = 3000, BACKLOG_AT = 2812 };  /* in the 11th batch of 256 */
    static uint8_t bufs[N][128];
    static char subj[N][64];
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "a%d", i % 40);
        /* a slow agent now and then: something to conclude */
        uint32_t dur = i % 40 == 7 && i > N / 2 ? 9000 : 100 + (uint32_t)(i % 13);
        size_t n = pack_task(bufs[i], id, T0 + i * 50, dur);
        snprintf(subj[i], sizeof subj[i], "swarm.s%d.task.%s", i % 3, id);
        if (i == BACKLOG_AT || i == BACKLOG_AT + 1) {
            n = pack_pending(bufs[i], T0 + i * 50, 1000);
            snprintf(subj[i], sizeof subj[i], "swarm.s1.resource.queue");
        }
        sm_item it;
        sm_item_plain(&it, subj[i], bufs[i], n, NULL);
        ck_assert_int_eq(sm_inbox_push(ib, &it), SM_OK);
    }
    /* The last two items raise queue_backlog on s0, so the last batch
     * holds a conclusion; the batch before ends with one on s1, whose
     * commit the writer then has in hand (an fdatasync: far longer than
     * handling the 186 items of the last batch). The stop must commit
     * and send the last one, not drop it while the writer is busy. */
    static uint8_t tail[2][128];
    for (int i = 0; i < 2; i++) {
        size_t n = pack_pending(tail[i], T0 + (N + i) * 50, 1000);
        sm_item it;
        sm_item_plain(&it, "swarm.s0.resource.queue", tail[i], n, NULL);
        ck_assert_int_eq(sm_inbox_push(ib, &it), SM_OK);
    }
    sm_inbox_source_done(ib, SM_ERR_BUS);
    sigset_t none;
    sigemptyset(&none);
    ck_assert_int_eq(sm_worker_run(r.w, &none), SM_ERR_BUS);
    sm_worker_stats st = stats_of(r.w);
    ck_assert_uint_eq(st.events, N + 2);
    ck_assert_uint_ge(st.commits, 2);   /* one at least before the stop's */
    *sent = r.cap.total;
    char *text = store_text(&r);
    r.w = reopen(&r);           /* what a restart finds: every input */
    *applied = stats_of(r.w).applied;
    rig_down(&r);
    return text;
}

/* 3 swarms x 2100 agents: 6300 tasks item by item (sm_worker_handle) and
 * a commit, then 2700 more on 30 agents of each swarm, a7 slow, through
 * the loop (which hints records ahead: a swarm held 2048 agents or more
 * at the last commit) or again item by item (no hints). Returns the store
 * as text, the conclusions sent and the items handled with hints. */
static char *many_store(bool loop, size_t *sent, uint64_t *ahead)
{
    rig r;
    store_rig(&r, false, 0, 1024);
    sm_inbox *ib = sm_worker_inbox(r.w);
    enum { N = 9000, AGENTS = 2100 };
    static uint8_t bufs[N][128];
    static char subj[N][64];
    static size_t lens[N];
    if (loop)
        sm_inbox_source_open(ib);
    for (int i = 0; i < N; i++) {
        char id[16];
        bool later = i >= 3 * AGENTS;
        int a = later ? (i / 3) % 30 : i / 3;
        snprintf(id, sizeof id, "a%d", a);
        uint32_t dur = later && a == 7 ? 9000 : 100 + (uint32_t)(i % 13);
        lens[i] = pack_task(bufs[i], id, T0 + i * 20, dur);
        snprintf(subj[i], sizeof subj[i], "swarm.s%d.task.%s", i % 3, id);
        if (i == 3 * AGENTS)
            ck_assert_int_eq(sm_worker_flush(r.w), SM_OK);
        if (!loop || !later) {
            sm_worker_handle(r.w, subj[i], bufs[i], lens[i]);
            continue;
        }
        sm_item it;
        sm_item_plain(&it, subj[i], bufs[i], lens[i], NULL);
        ck_assert_int_eq(sm_inbox_push(ib, &it), SM_OK);
    }
    if (loop) {
        sm_inbox_source_done(ib, SM_ERR_BUS);
        sigset_t none;
        sigemptyset(&none);
        ck_assert_int_eq(sm_worker_run(r.w, &none), SM_ERR_BUS);
    } else {
        ck_assert_int_eq(sm_worker_flush(r.w), SM_OK);
    }
    sm_worker_stats st = stats_of(r.w);
    ck_assert_uint_eq(st.events, N);
    *sent = r.cap.total;
    *ahead = st.ahead_items;
    char *text = store_text(&r);
    rig_down(&r);
    return text;
}

/* The read-ahead hints for swarms of many agents change nothing: the loop
 * with them stores and sends what item-by-item handling does. */
START_TEST(hints_for_many_agents_change_nothing)
{
    size_t sent_a = 0, sent_b = 0;
    uint64_t ahead_a = 0, ahead_b = 0;
    char *a = many_store(true, &sent_a, &ahead_a);
    char *b = many_store(false, &sent_b, &ahead_b);
    ck_assert_uint_gt(ahead_a, 1000);  /* the hints ran ... */
    ck_assert_uint_eq(ahead_b, 0);     /* ... and here not */
    ck_assert_uint_gt(sent_a, 0);
    ck_assert_uint_eq(sent_a, sent_b);
    ck_assert_msg(strcmp(a, b) == 0, "stores differ (%zu and %zu bytes)",
                  strlen(a), strlen(b));
    free(a);
    free(b);
}
END_TEST

/* The commit thread writes the same store as commits on the event thread
 * (also when small batches are written in place, commit_thread_min), and
 * the stop commits everything (the batch in hand first). */
START_TEST(commit_thread_stores_what_the_event_thread_would)
{
    size_t sent_a = 0, sent_b = 0, sent_c = 0;
    uint64_t applied_a = 0, applied_b = 0, applied_c = 0;
    char *a = loop_store(true, 0, &sent_a, &applied_a);   /* all by the thread */
    char *b = loop_store(false, 0, &sent_b, &applied_b);
    char *c = loop_store(true, 1 << 20, &sent_c, &applied_c);  /* small: here */
    ck_assert_uint_eq(applied_c, 3002);
    ck_assert_uint_eq(sent_c, sent_b);
    ck_assert_msg(strcmp(c, b) == 0, "stores differ (small batches written "
                  "in place):\n%.2000s\nvs\n%.2000s", c, b);
    free(c);
    ck_assert_uint_eq(applied_a, 3002);
    ck_assert_uint_eq(applied_b, 3002);
    ck_assert_uint_gt(sent_a, 0);
    ck_assert_uint_eq(sent_a, sent_b);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_msg(strcmp(a, b) == 0, "stores differ:\n%.2000s\nvs\n%.2000s", a, b);
    free(a);
    free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("worker");
    TCase *tc = tcase_create("worker");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, plain_item_headers_and_noop_settle);
    tcase_add_test(tc, bus_clock_moves_quiet_swarms_and_holds_a_lone_jump);
    tcase_add_test(tc, far_future_event_is_deadlettered_and_the_swarm_keeps_concluding);
    tcase_add_test(tc, a_jump_confirmed_by_a_second_producer_moves_the_bus);
    tcase_add_test(tc, restart_restores_the_bus_clock_and_the_inputs_handled);
    tcase_add_test(tc, input_over_the_caps_is_deadlettered_and_existing_state_works);
    tcase_add_test(tc, idle_swarms_expire_from_memory_and_store);
    tcase_add_test(tc, damaged_store_is_reported_key_by_key_or_refused);
    tcase_add_test(tc, deadletters_carry_reason_status_subject_and_payload);
    tcase_add_test(tc, wildcard_and_control_tokens_are_dead_lettered);
    tcase_add_test(tc, accepted_events_change_state_and_conclude);
    tcase_add_test(tc, outcome_valid_is_counted_invalid_is_deadlettered);
    tcase_add_test(tc, undecodable_on_1000_swarms_creates_no_swarm);
#if !defined(__SANITIZE_ADDRESS__)
    /* ASan reserves terabytes of address space and aborts on a failed
     * allocation: this test runs in the plain build only. */
    tcase_add_test(tc, out_of_memory_is_an_internal_error_not_a_rejection);
#endif
    tcase_add_test(tc, input_lost_is_handled_committed_and_a_failure);
    tcase_add_test(tc, commit_thread_stores_what_the_event_thread_would);
    tcase_add_test(tc, hints_for_many_agents_change_nothing);
    tcase_add_test(tc, store_open_failure_says_why);
    tcase_add_test(tc, full_disk_is_named_in_the_commit_failure);
    suite_add_tcase(s, tc);
    return sm_run_suite(s);
}
