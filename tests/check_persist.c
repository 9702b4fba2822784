/*
 * check_persist.c - the core's state through the store: restart after
 * SIGKILL restores the exact state, retention keeps the store bounded, a
 * full map grows, prunes or keeps everything in memory, never loses data.
 */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "encode.h"
#include "swarm.h"
#include "persist.h"
#include "registry.h"
#include "store.h"
#include "support.h"
#include "writer.h"
#include "runner.h"

#define KIB ((size_t)1024)
#define MIB (KIB * KIB)
#define SWARM "swarm-a"
#define RETENTION_MS 600000

/* ---- fixtures */

typedef struct env {
    char dir[256];
    char db[320];
    sm_store *st;
    sm_persist *p;
    sm_registry *reg;
} env;

static sm_registry *new_registry(void)
{
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    sm_registry *reg = NULL;
    ck_assert_int_eq(sm_registry_create(&reg, &cfg), SM_OK);
    return reg;
}

static void env_open_store(env *e, size_t map_size, size_t map_max)
{
    sm_store_config sc = {.dir = e->db, .map_size = map_size, .map_max = map_max};
    sm_status s = sm_store_open(&e->st, &sc, NULL, 0);
    ck_assert_msg(s == SM_OK, "store open: %s", sm_status_str(s));
    ck_assert_int_eq(sm_persist_create(&e->p, e->st), SM_OK);
}

static void env_close_store(env *e)
{
    sm_persist_destroy(e->p);
    sm_store_close(e->st);
    e->p = NULL;
    e->st = NULL;
}

static void env_init(env *e, size_t map_size, size_t map_max)
{
    memset(e, 0, sizeof *e);
    sm_test_tmpdir(e->dir, sizeof e->dir, "persist");
    snprintf(e->db, sizeof e->db, "%s/db", e->dir);
    env_open_store(e, map_size, map_max);
    e->reg = new_registry();
}

static void env_fini(env *e)
{
    env_close_store(e);
    sm_registry_destroy(e->reg);
    sm_test_rmtree(e->dir);
}

static sm_swarm *swarm_of(sm_registry *reg)
{
    sm_swarm *sw = NULL;
    ck_assert_int_eq(sm_registry_get(reg, SWARM, &sw), SM_OK);
    return sw;
}

/* Store entries of n agents: their pages (worker/persist.h). */
#define PAGES(n) (((n) + SM_AGENT_PAGE - 1) / SM_AGENT_PAGE)

static size_t store_entries(sm_store *st)
{
    sm_store_stats ss;
    ck_assert_int_eq(sm_store_stats_get(st, &ss), SM_OK);
    return ss.entries;
}

/* Loads the store into a fresh registry and checks it holds `sw` exactly. */
static void assert_reload_equals(sm_store *st, const sm_swarm *sw)
{
    sm_persist *p = NULL;
    ck_assert_int_eq(sm_persist_create(&p, st), SM_OK);
    sm_registry *reg = new_registry();
    sm_persist_load_result lr;
    ck_assert_int_eq(sm_persist_load(p, reg, &lr), SM_OK);
    ck_assert_uint_eq(lr.corrupt, 0);
    ck_assert_uint_eq(lr.swarms, 1);
    ck_assert_uint_eq(lr.agents, sm_swarm_agent_count(sw));
    sm_swarm *got = sm_registry_find(reg, sm_swarm_id(sw));
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(sm_swarm_agent_count(got), sm_swarm_agent_count(sw));
    size_t n1 = sm_swarm_export(sw, NULL, 0), n2 = sm_swarm_export(got, NULL, 0);
    ck_assert_uint_eq(n1, n2);
    unsigned char *b1 = malloc(n1), *b2 = malloc(n2);
    ck_assert_uint_eq(sm_swarm_export(sw, b1, n1), n1);
    ck_assert_uint_eq(sm_swarm_export(got, b2, n2), n2);
    ck_assert_msg(memcmp(b1, b2, n1) == 0, "reloaded swarm state differs");
    free(b1);
    free(b2);
    sm_registry_destroy(reg);
    sm_persist_destroy(p);
}

/* ---- event streams */

/* Transitions as text, one line each. */
typedef struct rec {
    char text[64 * 1024];
    size_t len;
    size_t n;
} rec;

static void record_one(rec *r, const sm_decision *t)
{
    int w = snprintf(r->text + r->len, sizeof r->text - r->len,
                     "%s %s %s subject=%s at=%lld raised=%lld id=%016llx\n",
                     sm_bn_type_str(t->bn.type),
                     sm_transition_str(t->bn.transition),
                     sm_severity_str(t->bn.severity), t->subject,
                     (long long)t->at_ms, (long long)t->bn.raised_at_ms,
                     (unsigned long long)t->id);
    if (w > 0 && (size_t)w < sizeof r->text - r->len)
        r->len += (size_t)w;
    r->n++;
}

/* Records (r not NULL) and forgets what the last call decided. */
static sm_status record(sm_status s, sm_decisions *ds, rec *r)
{
    for (size_t i = 0; r != NULL && i < ds->n; i++)
        record_one(r, &ds->v[i]);
    sm_decisions_free(ds);
    return s;
}

static void task(sm_swarm *sw, int64_t ts, const char *agent,
                 uint32_t duration_ms, rec *r)
{
    sm_task_event ev = {
        .ts_ms = ts, .agent = agent, .kind = SM_TASK_COMPLETED,
        .priority = SM_PRIO_MEDIUM, .tokens_used = 100, .duration_ms = duration_ms,
    };
    sm_decisions ds = {0};
    ck_assert_int_eq(record(sm_swarm_on_task(sw, &ev, &ds), &ds, r), SM_OK);
}

static void usage(sm_swarm *sw, int64_t ts, uint64_t used_per_mille, rec *r)
{
    sm_resource_sample ev = {
        .ts_ms = ts, .source = "budget", .token_budget = 1000,
        .tokens_used = used_per_mille,
    };
    sm_decisions ds = {0};
    ck_assert_int_eq(record(sm_swarm_on_resource(sw, &ev, &ds), &ds, r), SM_OK);
}

/* A working swarm of 12 agents, one task every 100 ms and a token sample
 * every second. From `slow_from` on, agent ag-0 takes 5x as long. */
static void feed(sm_swarm *sw, int64_t from, int64_t to, uint64_t used,
                 int64_t slow_from, rec *r)
{
    for (int64_t t = from; t < to; t += 100) {
        int64_t k = t / 100;
        char agent[16];
        snprintf(agent, sizeof agent, "ag-%d", (int)(k % 12));
        uint32_t d = 1000 + (uint32_t)(k % 7) * 20;
        if (k % 12 == 0 && t >= slow_from)
            d *= 5;
        task(sw, t, agent, d, r);
        if (t % 1000 == 0)
            usage(sw, t, used, r);
    }
}

/* The stream after the restart: usage climbs into critical, agent ag-0
 * turns slow, then usage falls back and the token bottleneck clears. */
static void feed_after(sm_swarm *sw, rec *r)
{
    feed(sw, 45000, 55000, 950, 45000, r);
    feed(sw, 55000, 90000, 500, 45000, r);
}

static size_t export_all(const sm_swarm *sw, unsigned char **out)
{
    size_t n = sm_swarm_export(sw, NULL, 0);
    *out = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(*out);
    ck_assert_uint_eq(sm_swarm_export(sw, *out, n), n);
    return n;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* ---- SIGKILL and restore */

/* Child: two flushed phases, the state after the last flush written to
 * files, then a third phase never flushed, then SIGKILL. */
static void restore_child(const env *parent)
{
    sm_store_config sc = {.dir = parent->db, .map_size = MIB, .map_max = 64 * MIB};
    sm_store *st = NULL;
    sm_persist *p = NULL;
    sm_registry *reg = NULL;
    sm_detect_config cfg;
    sm_detect_config_default(&cfg);
    sm_persist_result res;
    if (sm_store_open(&st, &sc, NULL, 0) != SM_OK || sm_persist_create(&p, st) != SM_OK ||
        sm_registry_create(&reg, &cfg) != SM_OK)
        _exit(2);
    sm_swarm *sw = NULL;
    if (sm_registry_get(reg, SWARM, &sw) != SM_OK)
        _exit(3);
    feed(sw, 0, 20000, 850, 1 << 30, NULL);
    if (sm_persist_flush(p, reg, RETENTION_MS, &res) != SM_OK)
        _exit(4);
    feed(sw, 20000, 40000, 850, 1 << 30, NULL);
    if (sm_persist_flush(p, reg, RETENTION_MS, &res) != SM_OK || res.swarms_written != 1)
        _exit(5);
    size_t n = sm_swarm_export(sw, NULL, 0);
    unsigned char *buf = malloc(n);
    char path[400], count[32];
    sm_swarm_export(sw, buf, n);
    snprintf(path, sizeof path, "%s/expected.bin", parent->dir);
    if (write_file(path, buf, n) != 0)
        _exit(6);
    snprintf(path, sizeof path, "%s/agents.txt", parent->dir);
    snprintf(count, sizeof count, "%zu", sm_swarm_agent_count(sw));
    if (write_file(path, count, strlen(count)) != 0)
        _exit(7);
    /* Uncommitted work, then death. */
    feed(sw, 40000, 45000, 990, 40000, NULL);
    raise(SIGKILL);
    _exit(8);
}

START_TEST(test_restore_after_sigkill)
{
    env e;
    env_init(&e, MIB, 64 * MIB);
    env_close_store(&e);            /* the child owns the store now */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        restore_child(&e);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "child failed before SIGKILL (status 0x%x)", status);

    char path[400];
    size_t want_len = 0;
    snprintf(path, sizeof path, "%s/expected.bin", e.dir);
    unsigned char *want = read_file(path, &want_len);
    snprintf(path, sizeof path, "%s/agents.txt", e.dir);
    char *agents_txt = sm_test_slurp(path);
    ck_assert_ptr_nonnull(agents_txt);
    size_t want_agents = (size_t)strtoul(agents_txt, NULL, 10);
    free(agents_txt);
    ck_assert_uint_eq(want_agents, 12);

    /* Restart: load into a fresh registry. */
    env_open_store(&e, MIB, 64 * MIB);
    sm_persist_load_result lr;
    ck_assert_int_eq(sm_persist_load(e.p, e.reg, &lr), SM_OK);
    ck_assert_uint_eq(lr.swarms, 1);
    ck_assert_uint_eq(lr.agents, want_agents);
    ck_assert_uint_eq(lr.corrupt, 0);
    ck_assert_uint_eq(sm_registry_count(e.reg), 1);
    sm_swarm *restored = sm_registry_find(e.reg, SWARM);
    ck_assert_ptr_nonnull(restored);
    ck_assert_uint_eq(sm_swarm_agent_count(restored), want_agents);
    ck_assert(!sm_swarm_is_dirty(restored));
    unsigned char *got = NULL;
    size_t got_len = export_all(restored, &got);
    ck_assert_uint_eq(got_len, want_len);
    ck_assert_msg(memcmp(got, want, want_len) == 0,
                  "restored state differs from the last committed one");
    ck_assert(sm_swarm_is_raised(restored, SM_BN_TOKEN_EXHAUSTION, ""));
    free(got);

    /* A swarm that never restarted, fed the same events. */
    sm_registry *ref_reg = new_registry();
    sm_swarm *ref = swarm_of(ref_reg);
    feed(ref, 0, 20000, 850, 1 << 30, NULL);
    feed(ref, 20000, 40000, 850, 1 << 30, NULL);
    ck_assert(sm_swarm_is_raised(ref, SM_BN_TOKEN_EXHAUSTION, ""));

    /* The same next events give the same transitions, byte for byte. */
    static rec r_ref, r_restored;
    memset(&r_ref, 0, sizeof r_ref);
    memset(&r_restored, 0, sizeof r_restored);
    feed_after(ref, &r_ref);
    feed_after(restored, &r_restored);
    ck_assert_msg(strstr(r_ref.text, "token_exhaustion resolved") != NULL,
                  "the stream should clear the token bottleneck:\n%s", r_ref.text);
    ck_assert_uint_ge(r_ref.n, 2);
    ck_assert_uint_eq(r_restored.n, r_ref.n);
    ck_assert_str_eq(r_restored.text, r_ref.text);
    ck_assert(!sm_swarm_is_raised(restored, SM_BN_TOKEN_EXHAUSTION, ""));

    /* And the flush after the restart writes what changed. */
    sm_persist_result res;
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_eq(res.swarms_written, 1);
    ck_assert_uint_eq(res.agents_written, 12);
    assert_reload_equals(e.st, restored);

    free(want);
    sm_registry_destroy(ref_reg);
    env_fini(&e);
}
END_TEST

/* A second flush with nothing new writes nothing. */
START_TEST(test_flush_writes_only_dirty)
{
    env e;
    env_init(&e, MIB, 64 * MIB);
    sm_swarm *sw = swarm_of(e.reg);
    feed(sw, 0, 5000, 500, 1 << 30, NULL);
    sm_persist_result res;
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_eq(res.swarms_written, 1);
    ck_assert_uint_eq(res.agents_written, 12);
    ck_assert_uint_eq(res.map_full, 0);
    ck_assert_uint_eq(store_entries(e.st), 1 + PAGES(12));

    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_eq(res.swarms_written, 0);
    ck_assert_uint_eq(res.agents_written, 0);
    ck_assert_uint_eq(res.agents_deleted, 0);

    /* One agent's task: that agent (and the swarm window) only. */
    task(sw, 5000, "ag-3", 1000, NULL);
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_eq(res.agents_written, 1);
    assert_reload_equals(e.st, sw);
    env_fini(&e);
}
END_TEST

/* ---- retention */

START_TEST(test_retention_bounds_store)
{
    enum { PER_SEC = 4, SECONDS = 1800, FLUSH_EVERY = 10 };
    const int64_t retention = 120000;
    env e;
    env_init(&e, 4 * MIB, 64 * MIB);
    sm_swarm *sw = swarm_of(e.reg);
    size_t max_entries = 0, max_agents = 0;

    for (int sec = 0; sec < SECONDS; sec++) {
        for (int j = 0; j < PER_SEC; j++) {
            char agent[32];
            snprintf(agent, sizeof agent, "eph-%d-%d", sec, j);
            task(sw, (int64_t)sec * 1000 + j * 10, agent, 800 + (uint32_t)j, NULL);
        }
        if ((sec + 1) % FLUSH_EVERY != 0)
            continue;
        sm_persist_result res;
        ck_assert_int_eq(sm_persist_flush(e.p, e.reg, retention, &res), SM_OK);
        /* Agents whose last event is within retention of now. */
        int64_t now = sm_swarm_now(sw), alive = 0;
        for (int s = 0; s <= sec; s++)
            for (int j = 0; j < PER_SEC; j++)
                if ((int64_t)s * 1000 + j * 10 >= now - retention)
                    alive++;
        size_t entries = store_entries(e.st);
        ck_assert_msg(entries <= (size_t)alive + 1,
                      "at %llds: %zu entries for %lld live agents",
                      (long long)now / 1000, entries, (long long)alive);
        ck_assert_uint_eq(entries, PAGES(sm_swarm_agent_count(sw)) + 1);
        ck_assert_uint_eq(sm_persist_pending_deletes(e.p), 0);
        if (entries > max_entries)
            max_entries = entries;
        if (sm_swarm_agent_count(sw) > max_agents)
            max_agents = sm_swarm_agent_count(sw);
    }
    /* 7200 agents came and went; the store held a few hundred at most. */
    ck_assert_uint_le(max_agents, (size_t)PER_SEC * (retention / 1000 + FLUSH_EVERY));
    ck_assert_uint_gt(max_agents, 400);
    ck_assert_uint_eq(max_entries, PAGES(max_agents) + 1);
    assert_reload_equals(e.st, sw);
    env_fini(&e);
}
END_TEST

/* ---- full map */

static void many_agents(sm_swarm *sw, const char *prefix, int n, int64_t t0)
{
    for (int i = 0; i < n; i++) {
        char agent[32];
        snprintf(agent, sizeof agent, "%s-%05d", prefix, i);
        task(sw, t0 + i, agent, 1000 + (uint32_t)(i % 50), NULL);
    }
}

static void count_dirty(void *ud, const char *agent, const void *blob, size_t len)
{
    (void)agent;
    (void)len;
    if (blob)
        (*(size_t *)ud)++;
}

START_TEST(test_map_full_grows)
{
    env e;
    env_init(&e, 64 * KIB, 64 * MIB);
    sm_swarm *sw = swarm_of(e.reg);
    many_agents(sw, "ag", 3000, 0);
    sm_persist_result res;
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_gt(res.grows, 0);
    ck_assert_uint_eq(res.map_full, res.grows);
    ck_assert_uint_eq(res.prunes, 0);
    ck_assert_uint_eq(res.agents_written, 3000);
    ck_assert_uint_eq(res.swarms_written, 1);
    ck_assert(!sm_swarm_is_dirty(sw));
    ck_assert_uint_eq(store_entries(e.st), 1 + PAGES(3000));
    sm_store_stats ss;
    ck_assert_int_eq(sm_store_stats_get(e.st, &ss), SM_OK);
    ck_assert_uint_gt(ss.map_size, 64 * KIB);
    assert_reload_equals(e.st, sw);
    env_fini(&e);
}
END_TEST

START_TEST(test_map_full_keeps_everything_in_memory)
{
    env e;
    env_init(&e, 64 * KIB, 64 * KIB);
    sm_swarm *sw = swarm_of(e.reg);
    many_agents(sw, "ag", 3000, 0);
    unsigned char *before = NULL;
    size_t before_len = export_all(sw, &before);

    sm_persist_result res;
    for (int attempt = 0; attempt < 2; attempt++) {
        ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res),
                         SM_ERR_MAP_FULL);
        ck_assert_uint_ge(res.map_full, 1);
        ck_assert_uint_eq(res.grows, 0);
        ck_assert_uint_ge(res.prunes, 1);       /* tried, found nothing idle */
        ck_assert_uint_eq(res.expired, 0);
        ck_assert(sm_swarm_is_dirty(sw));
        size_t dirty = 0;
        sm_swarm_visit_dirty(sw, count_dirty, &dirty);
        ck_assert_uint_eq(dirty, 3000);
        ck_assert_uint_eq(sm_swarm_agent_count(sw), 3000);
        ck_assert_uint_eq(store_entries(e.st), 0);
    }
    unsigned char *after = NULL;
    size_t after_len = export_all(sw, &after);
    ck_assert_uint_eq(after_len, before_len);
    ck_assert(memcmp(after, before, before_len) == 0);

    /* The operator gives it room: the next flush writes everything. */
    env_close_store(&e);
    env_open_store(&e, 16 * MIB, 16 * MIB);
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_eq(res.agents_written, 3000);
    ck_assert_uint_eq(res.swarms_written, 1);
    ck_assert(!sm_swarm_is_dirty(sw));
    assert_reload_equals(e.st, sw);
    free(before);
    free(after);
    env_fini(&e);
}
END_TEST

/* One swarm too big for the map (which may not grow) must not keep the
 * others from being saved: each swarm is written on its own, the one that
 * does not fit stays dirty in memory and is retried, the rest commit. */
START_TEST(test_a_swarm_that_cannot_be_written_does_not_block_the_others)
{
    env e;
    env_init(&e, 256 * KIB, 256 * KIB);
    sm_swarm *big = NULL, *small = NULL;
    ck_assert_int_eq(sm_registry_get(e.reg, "big", &big), SM_OK);
    ck_assert_int_eq(sm_registry_get(e.reg, "small", &small), SM_OK);
    many_agents(big, "ag", 3000, 0);    /* ~700 KB of agents */
    many_agents(small, "ag", 10, 0);

    sm_persist_result res;
    sm_status s = sm_persist_flush(e.p, e.reg, RETENTION_MS, &res);
    ck_assert_int_eq(s, SM_ERR_MAP_FULL);
    ck_assert_uint_eq(res.swarms_failed, 1);
    ck_assert_str_eq(res.failed_swarm, "big");
    ck_assert_int_eq(res.failed_status, SM_ERR_MAP_FULL);
    ck_assert_uint_eq(res.swarms_written, 1);
    ck_assert_uint_eq(res.agents_written, 10);
    ck_assert(!sm_swarm_is_dirty(small));
    ck_assert(sm_swarm_is_dirty(big));
    size_t dirty = 0;
    sm_swarm_visit_dirty(big, count_dirty, &dirty);
    ck_assert_uint_eq(dirty, 3000);

    /* what a restart finds: the small swarm, whole */
    sm_persist *p = NULL;
    ck_assert_int_eq(sm_persist_create(&p, e.st), SM_OK);
    sm_registry *reg = new_registry();
    sm_persist_load_result lr;
    ck_assert_int_eq(sm_persist_load(p, reg, &lr), SM_OK);
    ck_assert_uint_eq(lr.swarms, 1);
    ck_assert_uint_eq(lr.agents, 10);
    ck_assert_ptr_nonnull(sm_registry_find(reg, "small"));
    ck_assert_ptr_null(sm_registry_find(reg, "big"));
    sm_registry_destroy(reg);
    sm_persist_destroy(p);

    /* the small swarm goes on being saved while the big one cannot be */
    many_agents(small, "bg", 5, 1000);
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res),
                     SM_ERR_MAP_FULL);
    ck_assert_uint_eq(res.agents_written, 5);
    ck_assert(!sm_swarm_is_dirty(small));

    /* room at last: the big one is written too */
    env_close_store(&e);
    env_open_store(&e, 16 * MIB, 16 * MIB);
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_eq(res.swarms_failed, 0);
    ck_assert_uint_eq(res.agents_written, 3000);
    ck_assert(!sm_swarm_is_dirty(big));
    env_fini(&e);
}
END_TEST


/* ---- batches written by the commit thread (writer.h) */

/* One batch through the commit thread: prepare, hand over, wait, complete. */
static sm_status commit_by_writer(env *e, sm_writer *wr, sm_persist_result *res)
{
    sm_status s = sm_persist_prepare(e->p, e->reg, RETENTION_MS,
                                     sm_writer_log(wr), res);
    if (s != SM_OK)
        return s;
    ck_assert(sm_persist_prepared(e->p));
    ck_assert_int_eq(sm_writer_submit(wr), SM_OK);
    ck_assert_ptr_null(sm_writer_log(wr));          /* the writer's now */
    ck_assert_int_eq(sm_writer_submit(wr), SM_ERR_INVALID);
    sm_writer_result w;
    ck_assert(sm_writer_poll(wr, true, &w));
    ck_assert(!sm_writer_busy(wr));
    ck_assert_uint_eq(w.parts, sm_persist_prepared_parts(e->p));
    return sm_persist_complete(e->p, e->reg, w.applied, w.part_status, res);
}

/* What the commit thread writes is what a flush writes; the swarm is
 * clean once the batch is prepared, and what changes while the batch is
 * being written is dirty again and goes with the next one. */
START_TEST(test_writer_commit_equals_flush)
{
    env e;
    env_init(&e, 16 * MIB, 16 * MIB);
    sm_writer *wr = NULL;
    ck_assert_int_eq(sm_writer_start(&wr, e.st, NULL, NULL), SM_OK);
    sm_swarm *sw = swarm_of(e.reg);
    many_agents(sw, "ag", 300, 0);
    sm_persist_set_applied(e.p, 300);
    sm_persist_result res;
    ck_assert_int_eq(sm_persist_prepare(e.p, e.reg, RETENTION_MS,
                                        sm_writer_log(wr), &res), SM_OK);
    ck_assert_uint_eq(res.agents_written, 300);
    ck_assert(!sm_swarm_is_dirty(sw));
    ck_assert_uint_eq(sm_swarm_dirty_agents(sw), 0);
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res),
                     SM_ERR_INVALID);               /* one batch at a time */
    ck_assert_int_eq(sm_writer_submit(wr), SM_OK);
    many_agents(sw, "bg", 5, 1000);                 /* while it is written */
    sm_writer_result w;
    ck_assert(sm_writer_poll(wr, true, &w));
    ck_assert_int_eq(w.applied, SM_OK);
    ck_assert_int_eq(sm_persist_complete(e.p, e.reg, w.applied, w.part_status,
                                         &res), SM_OK);
    ck_assert_uint_eq(sm_swarm_dirty_agents(sw), 5);
    ck_assert_int_eq(commit_by_writer(&e, wr, &res), SM_OK);
    ck_assert_uint_eq(res.agents_written, 5);
    ck_assert_uint_eq(store_entries(e.st), 1 + PAGES(305) + 1);   /* + meta */
    assert_reload_equals(e.st, sw);

    /* the same state flushed on the calling thread: the same store */
    env f;
    env_init(&f, 16 * MIB, 16 * MIB);
    sm_swarm *sf = swarm_of(f.reg);
    many_agents(sf, "ag", 300, 0);
    many_agents(sf, "bg", 5, 1000);
    sm_persist_set_applied(f.p, 300);
    ck_assert_int_eq(sm_persist_flush(f.p, f.reg, RETENTION_MS, &res), SM_OK);
    sm_writer_stop(wr);
    ck_assert_uint_eq(store_entries(f.st), store_entries(e.st));
    assert_reload_equals(f.st, sw);
    env_fini(&f);
    env_fini(&e);
}
END_TEST

/* Agents are stored four to a page, in table order: expiring agents moves
 * the last ones into the holes, and the commit (on the commit thread: a
 * log with a deletion of the pages past the last) rewrites the pages that
 * changed and deletes the ones past the end. The store then holds exactly
 * what memory holds, as a flush of the same events would write it. */
START_TEST(test_pages_follow_removed_agents)
{
    env e, f;
    env_init(&e, 16 * MIB, 16 * MIB);
    env_init(&f, 16 * MIB, 16 * MIB);
    sm_writer *wr = NULL;
    ck_assert_int_eq(sm_writer_start(&wr, e.st, NULL, NULL), SM_OK);
    sm_swarm *sw = swarm_of(e.reg), *sf = swarm_of(f.reg);
    sm_persist_result res;
    many_agents(sw, "ag", 21, 0);
    many_agents(sw, "bg", 9, 200000);
    many_agents(sf, "ag", 21, 0);
    many_agents(sf, "bg", 9, 200000);
    ck_assert_int_eq(commit_by_writer(&e, wr, &res), SM_OK);
    ck_assert_int_eq(sm_persist_flush(f.p, f.reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_eq(store_entries(e.st), 1 + PAGES(30));
    ck_assert_uint_eq(store_entries(f.st), 1 + PAGES(30));

    /* 700 s: the 21 ag-N are idle past retention, the 9 bg-N are not */
    task(sw, 700000, "bg-00000", 1000, NULL);
    task(sf, 700000, "bg-00000", 1000, NULL);
    ck_assert_int_eq(commit_by_writer(&e, wr, &res), SM_OK);
    ck_assert_uint_eq(res.expired, 21);
    ck_assert_uint_eq(res.agents_deleted, 21);
    ck_assert_int_eq(sm_persist_flush(f.p, f.reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_eq(res.expired, 21);
    ck_assert_uint_eq(sm_swarm_agent_count(sw), 9);
    ck_assert_uint_eq(store_entries(e.st), 1 + PAGES(9));
    ck_assert_uint_eq(store_entries(f.st), 1 + PAGES(9));
    assert_reload_equals(e.st, sw);
    assert_reload_equals(f.st, sw);

    /* agents from the middle of the table go, the last ones move down */
    ck_assert(sm_swarm_dirty_agents(sw) == 0 && !sm_swarm_agents_changed(sw));
    task(sw, 900000, "bg-00008", 1000, NULL);   /* bg-00000 kept by its */
    task(sw, 900000, "bg-00001", 1000, NULL);   /* 700 s task, 6 idle */
    ck_assert_int_eq(commit_by_writer(&e, wr, &res), SM_OK);
    ck_assert_uint_eq(res.expired, 6);
    ck_assert_uint_eq(sm_swarm_agent_count(sw), 3);
    ck_assert_uint_eq(store_entries(e.st), 1 + PAGES(3));
    assert_reload_equals(e.st, sw);

    /* seven agents (page 0 full, page 1 three), then one of page 0 goes:
     * the last moves into its hole, and page 1, two left, is written
     * again (else it would still hold the one that moved: a repeat) */
    many_agents(sw, "cg", 4, 1000000);
    ck_assert_int_eq(commit_by_writer(&e, wr, &res), SM_OK);
    ck_assert_uint_eq(sm_swarm_agent_count(sw), 7);
    task(sw, 1350000, "cg-00000", 1000, NULL);  /* bg-00000 idle now */
    ck_assert_int_eq(commit_by_writer(&e, wr, &res), SM_OK);
    ck_assert_uint_eq(res.expired, 1);
    ck_assert_uint_eq(sm_swarm_agent_count(sw), 6);
    ck_assert_uint_eq(store_entries(e.st), 1 + PAGES(6));
    assert_reload_equals(e.st, sw);
    sm_writer_stop(wr);
    env_fini(&f);
    env_fini(&e);
}
END_TEST

/* A swarm the commit thread cannot write (too big for a map that may not
 * grow) is redone from memory: all of it dirty again, the others
 * committed, the meta record held back until the store has everything;
 * given room, the next commit writes it. */
START_TEST(test_writer_part_that_fails_is_redone_from_memory)
{
    env e;
    env_init(&e, 256 * KIB, 256 * KIB);
    sm_writer *wr = NULL;
    ck_assert_int_eq(sm_writer_start(&wr, e.st, NULL, NULL), SM_OK);
    sm_swarm *big = NULL, *small = NULL;
    ck_assert_int_eq(sm_registry_get(e.reg, "big", &big), SM_OK);
    ck_assert_int_eq(sm_registry_get(e.reg, "small", &small), SM_OK);
    many_agents(big, "ag", 3000, 0);
    many_agents(small, "ag", 10, 0);
    sm_persist_set_applied(e.p, 42);
    sm_persist_result res;
    ck_assert_int_eq(commit_by_writer(&e, wr, &res), SM_ERR_MAP_FULL);
    ck_assert_uint_eq(res.swarms_failed, 1);
    ck_assert_str_eq(res.failed_swarm, "big");
    ck_assert_int_eq(res.failed_status, SM_ERR_MAP_FULL);
    ck_assert(!sm_persist_prepared(e.p));
    ck_assert(sm_swarm_is_dirty(big));
    ck_assert_uint_eq(sm_swarm_dirty_agents(big), 3000);
    ck_assert(!sm_swarm_is_dirty(small));
    ck_assert_uint_eq(sm_swarm_dirty_agents(small), 0);
    sm_writer_stop(wr);

    sm_persist *p = NULL;       /* what a restart finds: small, no meta */
    ck_assert_int_eq(sm_persist_create(&p, e.st), SM_OK);
    sm_registry *reg = new_registry();
    sm_persist_load_result lr;
    ck_assert_int_eq(sm_persist_load(p, reg, &lr), SM_OK);
    ck_assert_uint_eq(lr.swarms, 1);
    ck_assert_uint_eq(lr.agents, 10);
    ck_assert(!lr.have_meta);
    sm_registry_destroy(reg);
    sm_persist_destroy(p);

    env_close_store(&e);        /* room at last */
    env_open_store(&e, 16 * MIB, 16 * MIB);
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_eq(res.agents_written, 3000);
    ck_assert(!sm_swarm_is_dirty(big));
    env_fini(&e);
}
END_TEST

/* An extra writer handing over its records once (as the services' store
 * does: done(true) forgets them). */
typedef struct once_extra {
    int writes, dones;
    bool written;
    size_t len;
} once_extra;

static sm_status once_write(void *ud, sm_store *st)
{
    once_extra *x = ud;
    static char blob[200 * 1024];
    x->writes++;
    if (x->written)
        return SM_OK;
    memset(blob, 'r', x->len);
    return sm_store_put(st, "x\0one", 5, blob, x->len);
}

static void once_done(void *ud, bool committed)
{
    once_extra *x = ud;
    x->dones++;
    if (committed)
        x->written = true;
}

static sm_status find_key(void *ud, const void *k, size_t klen,
                          const void *v, size_t vlen)
{
    (void)k;
    (void)klen;
    (void)v;
    *(size_t *)ud = vlen;
    return SM_OK;
}

/* A batch the commit thread cannot write at all (a record outside any
 * swarm too big for the map) loses nothing: the swarms are dirty again,
 * the queued deletions stay queued, and the extra records, handed over
 * when the batch was prepared, are carried to the next batch. */
START_TEST(test_writer_failed_batch_keeps_deletes_and_extra_records)
{
    env e;
    env_init(&e, 64 * KIB, 16 * MIB);   /* only the event thread grows */
    sm_swarm *old = NULL;
    ck_assert_int_eq(sm_registry_get(e.reg, "old", &old), SM_OK);
    many_agents(old, "ag", 3, 0);
    sm_persist_result res;
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_eq(res.grows, 0);
    ck_assert_int_eq(sm_persist_forget_swarm(e.p, "old"), SM_OK);
    ck_assert_int_eq(sm_registry_remove(e.reg, "old"), SM_OK);
    ck_assert_uint_eq(sm_persist_pending_deletes(e.p), 1 + PAGES(3));
    once_extra x = {.len = 100 * 1024};
    sm_persist_extra ex = {.write = once_write, .done = once_done, .ud = &x};
    sm_persist_set_extra(e.p, &ex);
    sm_swarm *sw = swarm_of(e.reg);
    many_agents(sw, "ag", 20, 0);

    sm_writer *wr = NULL;
    ck_assert_int_eq(sm_writer_start(&wr, e.st, NULL, NULL), SM_OK);
    ck_assert_int_eq(commit_by_writer(&e, wr, &res), SM_ERR_MAP_FULL);
    ck_assert_int_eq(x.dones, 1);               /* handed over */
    ck_assert(x.written);
    ck_assert_uint_eq(sm_swarm_dirty_agents(sw), 20);
    ck_assert(sm_swarm_is_dirty(sw));
    ck_assert_uint_eq(sm_persist_pending_deletes(e.p), 1 + PAGES(3));
    ck_assert_uint_eq(store_entries(e.st), 1 + PAGES(3));  /* "old" still stored */
    /* again: the carried record does not fit again, still carried */
    ck_assert_int_eq(commit_by_writer(&e, wr, &res), SM_ERR_MAP_FULL);
    ck_assert_uint_eq(store_entries(e.st), 1 + PAGES(3));
    sm_writer_stop(wr);

    /* the event thread's flush grows the map and writes it all */
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_gt(res.grows, 0);
    ck_assert_uint_eq(res.agents_written, 20);
    ck_assert_uint_eq(res.agents_deleted, 3);
    ck_assert_uint_eq(res.swarms_deleted, 1);
    ck_assert_uint_eq(sm_persist_pending_deletes(e.p), 0);
    size_t vlen = 0;
    ck_assert_int_eq(sm_store_scan(e.st, "x\0one", 5, find_key, &vlen), SM_OK);
    ck_assert_uint_eq(vlen, 100 * 1024);
    ck_assert_uint_eq(store_entries(e.st), 1 + PAGES(20) + 1);
    assert_reload_equals(e.st, sw);
    env_fini(&e);
}
END_TEST

static void fill_two_generations(sm_swarm *sw, sm_persist *p, sm_registry *reg,
                                 sm_persist_result *res)
{
    many_agents(sw, "old", 1000, 0);
    ck_assert_int_eq(sm_persist_flush(p, reg, RETENTION_MS, res), SM_OK);
    many_agents(sw, "new", 1000, 200000);
}

/* A map that holds one generation of agents but not two, and may not grow:
 * the idle generation is pruned to make room for the live one. */
START_TEST(test_map_full_prunes_idle_agents)
{
    /* Calibrate: the bytes one generation takes, in a roomy map. */
    env cal;
    env_init(&cal, 64 * MIB, 64 * MIB);
    sm_persist_result res;
    many_agents(swarm_of(cal.reg), "old", 1000, 0);
    ck_assert_int_eq(sm_persist_flush(cal.p, cal.reg, RETENTION_MS, &res), SM_OK);
    sm_store_stats ss;
    ck_assert_int_eq(sm_store_stats_get(cal.st, &ss), SM_OK);
    size_t one_gen = ss.used_bytes;
    env_fini(&cal);

    size_t map = (one_gen * 3 / 2 + 4 * KIB - 1) / (4 * KIB) * (4 * KIB);
    env e;
    env_init(&e, map, map);
    sm_swarm *sw = swarm_of(e.reg);
    fill_two_generations(sw, e.p, e.reg, &res);
    ck_assert_uint_eq(sm_swarm_agent_count(sw), 2000);

    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_ge(res.map_full, 1);
    ck_assert_uint_eq(res.grows, 0);
    ck_assert_uint_ge(res.prunes, 1);
    ck_assert_uint_eq(res.expired, 1000);
    ck_assert_uint_eq(res.agents_deleted, 1000);
    ck_assert_uint_eq(res.agents_written, 1000);
    ck_assert_int_lt(res.retention_ms, RETENTION_MS);
    ck_assert_int_ge(res.retention_ms, 60000);
    ck_assert_uint_eq(sm_swarm_agent_count(sw), 1000);

    /* the live generation alone, in its pages */
    ck_assert_uint_eq(store_entries(e.st), 1 + PAGES(1000));
    assert_reload_equals(e.st, sw);
    env_fini(&e);
}
END_TEST

/* ---- agent blobs through the store */

/* The most an agent blob can be: header, fixed fields, a 63-byte id, the
 * sample count and 16 samples in the wide (13-byte) form. */
#define AGENT_BLOB_LIMIT (24 + 52 + (SM_ID_MAX - 1) + 1 + 16 * 13)

typedef struct agent_blobs {
    size_t n;
    char id[16][SM_ID_MAX];
    size_t len[16];
    unsigned char data[16][AGENT_BLOB_LIMIT];
    size_t matched;
} agent_blobs;

static void keep_blob(void *ud, const char *agent, const void *blob, size_t len)
{
    agent_blobs *b = ud;
    ck_assert_ptr_nonnull(blob);
    ck_assert_uint_lt(b->n, 16);
    ck_assert_uint_le(len, AGENT_BLOB_LIMIT);
    snprintf(b->id[b->n], SM_ID_MAX, "%s", agent);
    memcpy(b->data[b->n], blob, len);
    b->len[b->n++] = len;
}

static const unsigned char *blob_of(const agent_blobs *b, const char *id,
                                    size_t *len)
{
    for (size_t i = 0; i < b->n; i++) {
        if (strcmp(b->id[i], id) == 0) {
            *len = b->len[i];
            return b->data[i];
        }
    }
    return NULL;
}

/* Each blob of a stored page equals one the visitor handed out, and a
 * page holds SM_AGENT_PAGE of them (the last one fewer). */
static sm_status match_stored(void *ud, const void *key, size_t klen,
                              const void *val, size_t vlen)
{
    agent_blobs *b = ud;
    (void)key;
    (void)klen;
    const unsigned char *v = val;
    size_t in_page = 0;
    while (vlen > 0) {
        size_t n = sm_agent_blob_size(v, vlen);
        ck_assert_uint_gt(n, 0);
        bool found = false;
        for (size_t i = 0; i < b->n && !found; i++)
            found = b->len[i] == n && memcmp(b->data[i], v, n) == 0;
        ck_assert_msg(found, "a stored blob no visit handed out");
        b->matched++;
        in_page++;
        v += n;
        vlen -= n;
    }
    ck_assert_uint_le(in_page, SM_AGENT_PAGE);
    return SM_OK;
}

/* Agent blobs are compact, variable-length, stored as handed out, and a
 * reloaded agent encodes to the very same bytes. */
START_TEST(test_agent_blobs_compact_and_exact)
{
    env e;
    env_init(&e, MIB, 64 * MIB);
    sm_swarm *sw = swarm_of(e.reg);
    feed(sw, 0, 20000, 500, 1 << 30, NULL);        /* 16+ tasks each */
    task(sw, 20000, "a-much-longer-agent-identifier", 1000, NULL);
    agent_blobs *want = calloc(1, sizeof *want);
    ck_assert_ptr_nonnull(want);
    sm_swarm_visit_dirty(sw, keep_blob, want);
    ck_assert_uint_eq(want->n, 13);
    size_t lo = SIZE_MAX, hi = 0;
    for (size_t i = 0; i < want->n; i++) {
        lo = want->len[i] < lo ? want->len[i] : lo;
        hi = want->len[i] > hi ? want->len[i] : hi;
    }
    /* ag-N: 4 or 5 id bytes, a full ring of 16 narrow samples and the
     * failure block (1 + 103 bytes: they ran tasks) */
    ck_assert_uint_eq(lo, 24 + 52 + 30 + 1 + 9 + 104);   /* the long id, 1 task */
    ck_assert_uint_eq(hi, 24 + 52 + 5 + 1 + 16 * 9 + 104);
    ck_assert_uint_lt(hi, 392);                     /* the old fixed size */

    sm_persist_result res;
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_eq(res.agents_written, 13);
    static const char prefix[] = "g\0" SWARM "\0";
    ck_assert_int_eq(sm_store_scan(e.st, prefix, sizeof prefix - 1,
                                   match_stored, want), SM_OK);
    ck_assert_uint_eq(store_entries(e.st), 1 + PAGES(13));
    ck_assert_uint_eq(want->matched, 13);
    assert_reload_equals(e.st, sw);

    /* reloaded: a late heartbeat marks each agent dirty unchanged */
    sm_persist *p = NULL;
    ck_assert_int_eq(sm_persist_create(&p, e.st), SM_OK);
    sm_registry *reg = new_registry();
    sm_persist_load_result lr;
    ck_assert_int_eq(sm_persist_load(p, reg, &lr), SM_OK);
    ck_assert_uint_eq(lr.agents, 13);
    sm_swarm *got = sm_registry_find(reg, SWARM);
    ck_assert_ptr_nonnull(got);
    for (size_t i = 0; i < want->n; i++) {
        sm_heartbeat hb = {.ts_ms = 0, .agent = want->id[i], .state = 1};
        ck_assert_int_eq(sm_swarm_on_heartbeat(got, &hb, NULL),
                         SM_OK);
    }
    agent_blobs *again = calloc(1, sizeof *again);
    ck_assert_ptr_nonnull(again);
    sm_swarm_visit_dirty(got, keep_blob, again);
    ck_assert_uint_eq(again->n, want->n);
    for (size_t i = 0; i < again->n; i++) {
        size_t len = 0;
        const unsigned char *w = blob_of(want, again->id[i], &len);
        ck_assert_ptr_nonnull(w);
        ck_assert_uint_eq(again->len[i], len);
        ck_assert(memcmp(again->data[i], w, len) == 0);
    }
    free(again);
    free(want);
    sm_registry_destroy(reg);
    sm_persist_destroy(p);
    env_fini(&e);
}
END_TEST

/* ---- load */

typedef struct blob_copy {
    unsigned char data[16384];
    size_t len;
} blob_copy;

static sm_status copy_value(void *ud, const void *key, size_t klen,
                            const void *val, size_t vlen)
{
    blob_copy *b = ud;
    (void)key;
    (void)klen;
    ck_assert_uint_le(vlen, sizeof b->data);
    memcpy(b->data, val, vlen);
    b->len = vlen;
    return SM_OK;
}

START_TEST(test_load_skips_corrupt_blobs)
{
    env e;
    env_init(&e, MIB, 64 * MIB);
    sm_swarm *sw = swarm_of(e.reg);
    feed(sw, 0, 3000, 500, 1 << 30, NULL);
    sm_persist_result res;
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);

    /* Damage the second agent blob of page 1 (one byte of its body) and
     * add a page key of the wrong shape (a one-byte page number). */
    static const char page1[] = "g\0" SWARM "\0\0\0\0\1";
    static const char no_page[] = "g\0" SWARM "\0\1";
    blob_copy *pg = calloc(1, sizeof *pg);
    ck_assert_ptr_nonnull(pg);
    ck_assert_int_eq(sm_store_scan(e.st, page1, sizeof page1 - 1, copy_value, pg), SM_OK);
    size_t first = sm_agent_blob_size(pg->data, pg->len);
    ck_assert_uint_gt(first, 0);
    ck_assert_uint_gt(pg->len, first + 60);
    pg->data[first + 60] ^= 0x10;
    ck_assert_int_eq(sm_store_begin(e.st), SM_OK);
    ck_assert_int_eq(sm_store_put(e.st, page1, sizeof page1 - 1, pg->data, pg->len), SM_OK);
    ck_assert_int_eq(sm_store_put(e.st, no_page, sizeof no_page - 1, "x", 1), SM_OK);
    ck_assert_int_eq(sm_store_commit(e.st), SM_OK);
    free(pg);

    sm_persist *p = NULL;
    ck_assert_int_eq(sm_persist_create(&p, e.st), SM_OK);
    sm_registry *reg = new_registry();
    sm_persist_load_result lr;
    ck_assert_int_eq(sm_persist_load(p, reg, &lr), SM_OK);
    ck_assert_uint_eq(lr.swarms, 1);
    ck_assert_uint_eq(lr.agents, 11);
    ck_assert_uint_eq(lr.corrupt, 2);
    /* the stray key is deleted; the damaged page is written again */
    ck_assert_uint_eq(sm_persist_pending_deletes(p), 1);
    sm_swarm *got = sm_registry_find(reg, SWARM);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(sm_swarm_dirty_agents(got), 11);
    /* The next flush removes what could not be read. */
    ck_assert_int_eq(sm_persist_flush(p, reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_eq(res.agents_written, 11);
    ck_assert_uint_eq(store_entries(e.st), 1 + PAGES(11));
    assert_reload_equals(e.st, got);
    sm_persist_destroy(p);
    sm_registry_destroy(reg);
    env_fini(&e);
}
END_TEST

/* ---- versions, meta, forgetting */

/* Every key and value of the store, as text, in key order. */
typedef struct dump {
    char *text;
    size_t len, cap;
    size_t exact;           /* only keys of this length (0: all) */
} dump;

static void dump_add(dump *d, const void *data, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (d->len + 2 * n + 2 > d->cap) {
        d->cap = (d->len + 2 * n + 2) * 2;
        d->text = realloc(d->text, d->cap);
        ck_assert_ptr_nonnull(d->text);
    }
    for (size_t i = 0; i < n; i++) {
        d->text[d->len++] = hex[((const unsigned char *)data)[i] >> 4];
        d->text[d->len++] = hex[((const unsigned char *)data)[i] & 15];
    }
    d->text[d->len++] = ' ';
    d->text[d->len] = 0;
}

static sm_status dump_kv(void *ud, const void *key, size_t klen,
                         const void *val, size_t vlen)
{
    dump *d = ud;
    if (d->exact && klen != d->exact)
        return SM_OK;           /* "s" 0 id is a prefix of longer ids */
    dump_add(d, key, klen);
    dump_add(d, val, vlen);
    return SM_OK;
}

/* The keys of one swarm ("s" 0 id and "a" 0 id 0 ...) and their values. */
static char *dump_swarm(sm_store *st, const char *id)
{
    dump d = {0};
    char prefix[80];
    size_t n = (size_t)snprintf(prefix, sizeof prefix, "s%c%s", 0, id);
    d.exact = n;
    ck_assert_int_eq(sm_store_scan(st, prefix, n, dump_kv, &d), SM_OK);
    n = (size_t)snprintf(prefix, sizeof prefix, "g%c%s%c", 0, id, 0);
    d.exact = 0;
    ck_assert_int_eq(sm_store_scan(st, prefix, n, dump_kv, &d), SM_OK);
    ck_assert_ptr_nonnull(d.text);
    return d.text;
}


/* A swarm blob written by a newer build (version 4 in its header, nothing
 * else changed, so only the version can reject it) is kept: not loaded,
 * not deleted, and neither it nor its agents are overwritten by flushes,
 * even when events for that swarm arrive; the other swarm is untouched. */
START_TEST(test_newer_swarm_blob_kept)
{
    env e;
    env_init(&e, MIB, 64 * MIB);
    sm_swarm *a = swarm_of(e.reg), *b = NULL;
    ck_assert_int_eq(sm_registry_get(e.reg, "swarm-b", &b), SM_OK);
    feed(a, 0, 3000, 500, 1 << 30, NULL);
    feed(b, 0, 3000, 500, 1 << 30, NULL);
    sm_persist_result res;
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);

    static const char skey[] = "s\0" SWARM;
    blob_copy *blob = calloc(1, sizeof *blob);
    ck_assert_ptr_nonnull(blob);
    ck_assert_int_eq(sm_store_scan(e.st, skey, sizeof skey - 1, copy_value, blob), SM_OK);
    ck_assert_uint_gt(blob->len, 24);
    uint32_t version;
    memcpy(&version, blob->data + 4, sizeof version);
    ck_assert_uint_eq(version, 3);
    version = 4;
    memcpy(blob->data + 4, &version, sizeof version);
    ck_assert_int_eq(sm_store_begin(e.st), SM_OK);
    ck_assert_int_eq(sm_store_put(e.st, skey, sizeof skey - 1, blob->data, blob->len), SM_OK);
    ck_assert_int_eq(sm_store_commit(e.st), SM_OK);
    char *before = dump_swarm(e.st, SWARM);
    size_t entries = store_entries(e.st);
    ck_assert_uint_eq(entries, 2 * (1 + PAGES(12)));

    /* A restart of this build. */
    sm_persist *p = NULL;
    ck_assert_int_eq(sm_persist_create(&p, e.st), SM_OK);
    sm_registry *reg = new_registry();
    sm_persist_load_result lr;
    ck_assert_int_eq(sm_persist_load(p, reg, &lr), SM_OK);
    ck_assert_uint_eq(lr.newer, 1);
    ck_assert_uint_eq(lr.held, 1);
    ck_assert_uint_eq(lr.corrupt, 0);
    ck_assert_uint_eq(lr.swarms, 1);
    ck_assert_uint_eq(lr.agents, 12);       /* swarm-b's only */
    ck_assert_ptr_null(sm_registry_find(reg, SWARM));
    ck_assert_ptr_nonnull(sm_registry_find(reg, "swarm-b"));
    ck_assert(sm_persist_is_held(p, SWARM));
    ck_assert(!sm_persist_is_held(p, "swarm-b"));
    ck_assert_uint_eq(sm_persist_pending_deletes(p), 0);
    ck_assert_int_eq(sm_persist_forget_swarm(p, SWARM), SM_OK);
    ck_assert_uint_eq(sm_persist_pending_deletes(p), 0);

    /* Events for both swarms, same agent ids, and flushes. */
    sm_swarm *a2 = NULL, *b2 = sm_registry_find(reg, "swarm-b");
    ck_assert_int_eq(sm_registry_get(reg, SWARM, &a2), SM_OK);
    feed(a2, 3000, 6000, 500, 1 << 30, NULL);
    feed(b2, 3000, 6000, 500, 1 << 30, NULL);
    ck_assert_int_eq(sm_persist_flush(p, reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_eq(res.swarms_written, 1);
    ck_assert_uint_eq(res.agents_written, 12);
    ck_assert(!sm_swarm_is_dirty(a2));
    /* Much later: every ag-N of both swarms expires; only swarm-b's
     * keys are deleted. */
    task(a2, 700000, "late", 1000, NULL);
    task(b2, 700000, "late", 1000, NULL);
    ck_assert_int_eq(sm_persist_flush(p, reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_eq(res.expired, 24);
    ck_assert_uint_eq(res.agents_deleted, 12);
    char *after = dump_swarm(e.st, SWARM);
    ck_assert_str_eq(after, before);
    /* SWARM's held, swarm-b's swarm and a page for "late" */
    ck_assert_uint_eq(store_entries(e.st), 1 + PAGES(12) + 1 + 1);

    /* And the next start still finds it, still newer. */
    sm_persist *p2 = NULL;
    ck_assert_int_eq(sm_persist_create(&p2, e.st), SM_OK);
    sm_registry *reg2 = new_registry();
    ck_assert_int_eq(sm_persist_load(p2, reg2, &lr), SM_OK);
    ck_assert_uint_eq(lr.newer, 1);
    ck_assert_uint_eq(lr.swarms, 1);
    free(before);
    free(after);
    free(blob);
    sm_registry_destroy(reg2);
    sm_persist_destroy(p2);
    sm_registry_destroy(reg);
    sm_persist_destroy(p);
    env_fini(&e);
}
END_TEST

static sm_store_meta load_meta(sm_store *st, bool *have)
{
    sm_persist *p = NULL;
    ck_assert_int_eq(sm_persist_create(&p, st), SM_OK);
    sm_registry *reg = new_registry();
    sm_persist_load_result lr;
    ck_assert_int_eq(sm_persist_load(p, reg, &lr), SM_OK);
    ck_assert_uint_eq(lr.corrupt, 0);
    *have = lr.have_meta;
    sm_registry_destroy(reg);
    sm_persist_destroy(p);
    return lr.meta;
}

/* The applied sequence and the configuration hash are committed with the
 * state, read back at load, and not advanced by a flush that failed. */
START_TEST(test_meta_in_the_flush)
{
    env e;
    env_init(&e, 64 * KIB, 64 * KIB);
    bool have = true;
    load_meta(e.st, &have);
    ck_assert(!have);

    sm_persist_result res;
    sm_persist_set_applied(e.p, 10);
    sm_persist_set_config_hash(e.p, 0xfeedfacecafebeefULL);
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);
    ck_assert(res.meta_written);
    sm_store_meta m = load_meta(e.st, &have);
    ck_assert(have);
    ck_assert_uint_eq(m.applied_seq, 10);
    ck_assert_uint_eq(m.config_hash, 0xfeedfacecafebeefULL);
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);
    ck_assert(!res.meta_written);           /* nothing new */

    /* More than the map holds, and the sequence that goes with it. */
    sm_swarm *sw = swarm_of(e.reg);
    many_agents(sw, "ag", 3000, 0);
    sm_persist_set_applied(e.p, 20);
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res),
                     SM_ERR_MAP_FULL);
    ck_assert(!res.meta_written);
    m = load_meta(e.st, &have);
    ck_assert_uint_eq(m.applied_seq, 10);

    /* Without that swarm the batch fits: the pending sequence goes in. */
    ck_assert_int_eq(sm_registry_remove(e.reg, SWARM), SM_OK);
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);
    ck_assert(res.meta_written);
    m = load_meta(e.st, &have);
    ck_assert_uint_eq(m.applied_seq, 20);
    ck_assert_uint_eq(m.config_hash, 0xfeedfacecafebeefULL);

    /* A reloaded persister writes back what it loaded, changed or not. */
    sm_persist *p = NULL;
    ck_assert_int_eq(sm_persist_create(&p, e.st), SM_OK);
    sm_persist_load_result lr;
    ck_assert_int_eq(sm_persist_load(p, e.reg, &lr), SM_OK);
    sm_persist_set_applied(p, 21);
    ck_assert_int_eq(sm_persist_flush(p, e.reg, RETENTION_MS, &res), SM_OK);
    m = load_meta(e.st, &have);
    ck_assert_uint_eq(m.applied_seq, 21);
    ck_assert_uint_eq(m.config_hash, 0xfeedfacecafebeefULL);
    sm_persist_destroy(p);
    env_fini(&e);
}
END_TEST

/* The bus clock rides in the meta record: round-trips, ids and times
 * vetted. */
START_TEST(test_meta_bus_clock)
{
    sm_store_meta m, got;
    memset(&m, 0, sizeof m);
    m.applied_seq = 42;
    m.bus.bus_ms = 1767225600000LL;
    m.bus.jump_ms = 1767225900000LL;
    snprintf(m.bus.jump_swarm, sizeof m.bus.jump_swarm, "s9");
    m.bus.skew_ms = 1798761600000LL;
    snprintf(m.bus.skew_swarm, sizeof m.bus.skew_swarm, "s1");
    snprintf(m.bus.skew_id, sizeof m.bus.skew_id, "agent-7");
    m.bus.expired_at_ms = 1767225540000LL;
    unsigned char buf[512];
    size_t n = sm_meta_encode(&m, buf, sizeof buf);
    ck_assert_uint_gt(n, 56);
    ck_assert_uint_le(n, 280);
    ck_assert_int_eq(sm_meta_decode(&got, buf, n), SM_OK);
    ck_assert_uint_eq(got.applied_seq, 42);
    ck_assert_int_eq(got.bus.bus_ms, m.bus.bus_ms);
    ck_assert_int_eq(got.bus.jump_ms, m.bus.jump_ms);
    ck_assert_str_eq(got.bus.jump_swarm, "s9");
    ck_assert_int_eq(got.bus.skew_ms, m.bus.skew_ms);
    ck_assert_str_eq(got.bus.skew_swarm, "s1");
    ck_assert_str_eq(got.bus.skew_id, "agent-7");
    ck_assert_int_eq(got.bus.expired_at_ms, m.bus.expired_at_ms);
    /* a time out of range is damage */
    m.bus.skew_ms = -5;
    n = sm_meta_encode(&m, buf, sizeof buf);
    ck_assert_int_eq(sm_meta_decode(&got, buf, n), SM_ERR_CORRUPT);
}
END_TEST

/* The meta record round-trips; a newer record is refused as such, a
 * damaged or short one as corrupt, and *m is left alone on error. */
START_TEST(test_meta_format)
{
    sm_store_meta m = {.applied_seq = 7, .config_hash = 9};
    sm_store_meta got = {.applied_seq = 0};
    unsigned char buf[128];
    size_t n = sm_meta_encode(&m, buf, sizeof buf);
    ck_assert_uint_eq(n, 56);
    ck_assert_int_eq(sm_meta_decode(&got, buf, n), SM_OK);
    ck_assert_uint_eq(got.applied_seq, 7);
    ck_assert_uint_eq(got.config_hash, 9);
    /* a newer version is refused as such, before the checksum */
    unsigned char x[128];
    memcpy(x, buf, n);
    x[4] = 2;                               /* version 2 */
    ck_assert_int_eq(sm_meta_decode(&got, x, n), SM_ERR_VERSION);
    memcpy(x, buf, n);
    x[n - 1] ^= 1;
    ck_assert_int_eq(sm_meta_decode(&got, x, n), SM_ERR_CORRUPT);
    ck_assert_int_eq(sm_meta_decode(&got, x, 10), SM_ERR_CORRUPT);
    ck_assert_uint_eq(got.applied_seq, 7);  /* untouched on error */
}
END_TEST

static void collect_ids(void *ud, sm_swarm *sw);

/* A forgotten swarm and its agents leave the store at the next flush;
 * a swarm whose id extends its id, and the others, stay. */
START_TEST(test_forget_swarm)
{
    env e;
    env_init(&e, MIB, 64 * MIB);
    const char *ids[] = {SWARM, "swarm-ab", "swarm-b"};
    for (size_t i = 0; i < 3; i++) {
        sm_swarm *sw = NULL;
        ck_assert_int_eq(sm_registry_get(e.reg, ids[i], &sw), SM_OK);
        feed(sw, 0, 3000, 500, 1 << 30, NULL);
    }
    sm_persist_result res;
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_eq(store_entries(e.st), 3 * (1 + PAGES(12)));
    char *ab = dump_swarm(e.st, "swarm-ab"), *b = dump_swarm(e.st, "swarm-b");

    ck_assert_int_eq(sm_persist_forget_swarm(e.p, SWARM), SM_OK);
    ck_assert_uint_eq(sm_persist_pending_deletes(e.p), 1 + PAGES(12));
    ck_assert_int_eq(sm_registry_remove(e.reg, SWARM), SM_OK);
    ck_assert_int_eq(sm_persist_flush(e.p, e.reg, RETENTION_MS, &res), SM_OK);
    ck_assert_uint_eq(res.swarms_deleted, 1);
    ck_assert_uint_eq(res.agents_deleted, 12);
    ck_assert_uint_eq(store_entries(e.st), 2 * (1 + PAGES(12)));
    char *ab2 = dump_swarm(e.st, "swarm-ab"), *b2 = dump_swarm(e.st, "swarm-b");
    ck_assert_str_eq(ab2, ab);
    ck_assert_str_eq(b2, b);

    sm_persist *p = NULL;
    ck_assert_int_eq(sm_persist_create(&p, e.st), SM_OK);
    sm_registry *reg = new_registry();
    sm_persist_load_result lr;
    ck_assert_int_eq(sm_persist_load(p, reg, &lr), SM_OK);
    ck_assert_uint_eq(lr.swarms, 2);
    ck_assert_uint_eq(lr.agents, 24);
    ck_assert_uint_eq(lr.corrupt, 0);
    ck_assert_ptr_null(sm_registry_find(reg, SWARM));
    ck_assert_uint_eq(sm_swarm_agent_count(sm_registry_find(reg, "swarm-ab")), 12);
    ck_assert_uint_eq(sm_swarm_agent_count(sm_registry_find(reg, "swarm-b")), 12);
    ck_assert_int_eq(sm_persist_forget_swarm(p, ""), SM_ERR_INVALID);
    free(ab);
    free(b);
    free(ab2);
    free(b2);
    sm_registry_destroy(reg);
    sm_persist_destroy(p);
    env_fini(&e);
}
END_TEST

START_TEST(test_registry)
{
    sm_registry *reg = new_registry();
    sm_swarm *a = NULL, *b = NULL, *again = NULL;
    char long_id[SM_ID_MAX + 1];
    memset(long_id, 'x', SM_ID_MAX);
    long_id[SM_ID_MAX] = 0;
    ck_assert_int_eq(sm_registry_get(reg, "", &a), SM_ERR_INVALID);
    ck_assert_int_eq(sm_registry_get(reg, long_id, &a), SM_ERR_INVALID);
    ck_assert_ptr_null(a);
    long_id[SM_ID_MAX - 1] = 0;     /* SM_ID_MAX - 1 bytes: the longest */
    ck_assert_int_eq(sm_registry_get(reg, long_id, &a), SM_OK);
    ck_assert_int_eq(sm_registry_get(reg, "beta", &b), SM_OK);
    ck_assert_int_eq(sm_registry_get(reg, long_id, &again), SM_OK);
    ck_assert_ptr_eq(a, again);
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_eq(sm_registry_find(reg, "beta"), b);
    ck_assert_ptr_null(sm_registry_find(reg, "gamma"));
    ck_assert_uint_eq(sm_registry_count(reg), 2);
    /* Many swarms: lookups stay right across table growth. */
    for (int i = 0; i < 200; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%03d", i);
        sm_swarm *sw = NULL;
        ck_assert_int_eq(sm_registry_get(reg, id, &sw), SM_OK);
        ck_assert_str_eq(sm_swarm_id(sw), id);
    }
    ck_assert_uint_eq(sm_registry_count(reg), 202);
    ck_assert_ptr_eq(sm_registry_find(reg, "beta"), b);
    ck_assert_str_eq(sm_swarm_id(sm_registry_find(reg, "s123")), "s123");
    sm_registry_destroy(reg);
    sm_registry_destroy(NULL);
}
END_TEST

static void collect_ids(void *ud, sm_swarm *sw)
{
    char *buf = ud;
    strcat(buf, sm_swarm_id(sw));
    strcat(buf, ",");
}

START_TEST(test_registry_order)
{
    sm_registry *reg = new_registry();
    const char *ids[] = {"zeta", "alpha", "mid", "beta"};
    for (size_t i = 0; i < 4; i++) {
        sm_swarm *sw = NULL;
        ck_assert_int_eq(sm_registry_get(reg, ids[i], &sw), SM_OK);
    }
    char buf[128] = "";
    sm_registry_foreach(reg, collect_ids, buf);
    ck_assert_str_eq(buf, "zeta,alpha,mid,beta,");

    /* Removing one keeps the order of the rest; the id can come back. */
    ck_assert_int_eq(sm_registry_remove(reg, "alpha"), SM_OK);
    ck_assert_int_eq(sm_registry_remove(reg, "alpha"), SM_ERR_NOT_FOUND);
    ck_assert_int_eq(sm_registry_remove(reg, ""), SM_ERR_INVALID);
    ck_assert_uint_eq(sm_registry_count(reg), 3);
    ck_assert_ptr_null(sm_registry_find(reg, "alpha"));
    ck_assert_str_eq(sm_swarm_id(sm_registry_find(reg, "beta")), "beta");
    buf[0] = 0;
    sm_registry_foreach(reg, collect_ids, buf);
    ck_assert_str_eq(buf, "zeta,mid,beta,");
    sm_swarm *again = NULL;
    ck_assert_int_eq(sm_registry_get(reg, "alpha", &again), SM_OK);
    ck_assert_uint_eq(sm_swarm_agent_count(again), 0);
    buf[0] = 0;
    sm_registry_foreach(reg, collect_ids, buf);
    ck_assert_str_eq(buf, "zeta,mid,beta,alpha,");
    sm_registry_destroy(reg);
}
END_TEST

static Suite *persist_suite(void)
{
    Suite *s = suite_create("persist");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_registry);
    tcase_add_test(tc, test_registry_order);
    tcase_add_test(tc, test_restore_after_sigkill);
    tcase_add_test(tc, test_flush_writes_only_dirty);
    tcase_add_test(tc, test_retention_bounds_store);
    tcase_add_test(tc, test_map_full_grows);
    tcase_add_test(tc, test_map_full_keeps_everything_in_memory);
    tcase_add_test(tc, test_map_full_prunes_idle_agents);
    tcase_add_test(tc, test_a_swarm_that_cannot_be_written_does_not_block_the_others);
    tcase_add_test(tc, test_writer_commit_equals_flush);
    tcase_add_test(tc, test_pages_follow_removed_agents);
    tcase_add_test(tc, test_writer_part_that_fails_is_redone_from_memory);
    tcase_add_test(tc, test_writer_failed_batch_keeps_deletes_and_extra_records);
    tcase_add_test(tc, test_load_skips_corrupt_blobs);
    tcase_add_test(tc, test_agent_blobs_compact_and_exact);
    tcase_add_test(tc, test_newer_swarm_blob_kept);
    tcase_add_test(tc, test_meta_in_the_flush);
    tcase_add_test(tc, test_meta_format);
    tcase_add_test(tc, test_meta_bus_clock);
    tcase_add_test(tc, test_forget_swarm);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sm_run_suite(persist_suite());
}
