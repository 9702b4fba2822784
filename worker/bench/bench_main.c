/*
 * bench_main.c - swarm-bench, the benchmark behind `make bench`.
 *
 *   swarm-bench [--bin DIR] [--events N] [--latency-seconds S]
 *               [--rss-events N] [--repeat N] [--nats-config FILE]
 *               [--quick] [--only SECTION]
 *
 * Measures, in one run on this machine, against a private nats-server
 * (127.0.0.1, random port, temporary directory) and on one deterministic
 * simulated stream (simgen.h: seed 1, 10 swarms x 100 agents, 50,000
 * events per second of event time), pre-generated into one arena so that
 * every run publishes the same bytes and generation is not timed:
 *
 *   raw      a plain cnats subscriber receiving the stream published flat
 *            out: the bus alone
 *   worker   swarm-medic (LMDB on) on the same stream: sustained rate, its
 *            ratio to the raw bus, and any shortfall in what it accepted
 *   latency  detection latency at a paced 50,000 events/s, beside the raw
 *            two-hop latency of the same path through an echo client
 *   rss      the worker's RSS along a long stream, its peak, the LMDB size
 *   agents   the worker's rate with 1 x 100 agents and with 10 x 10,000
 *   replay   offline replay of a recording in process (no LMDB, no JSON)
 *   requests request/reply latency of the `select` and `report` endpoints
 *            (service.h) while the worker handles a paced 50,000 events/s,
 *            beside the raw request/reply round trip to a plain cnats
 *            responder on the same server under the same load
 *   partitions  the same events (40 swarms x 25 agents) stored in 8
 *            partition streams, read by one worker owning all 8 and by
 *            two workers owning 4 each (--partitions=8): total events/s
 *            from the first worker's start to the last partition's
 *            acknowledged floor reaching its end
 *
 * The end of a flat-out run: after the stream, two ResourceSamples with
 * 1000 pending tasks on swarm.zzend.resource.s. The raw subscriber stops at
 * the second (any subject under swarm.zzend.: a server mapping given with
 * --nats-config may rewrite the last token); the worker raises
 * queue_backlog for zzend on the second, and since it handles input in bus
 * order on one thread, that Bottleneck proves every earlier event was
 * handled.
 *
 * It prints a table with the targets and whether they are met, then one
 * `name value unit` line per figure. It measures and never asserts: the
 * exit status is 0 when every chosen section ran (whatever the figures),
 * 1 when one could not, 2 on a bad flag. Everything it starts it stops,
 * also on error or SIGINT/SIGTERM (blocked, and polled by every loop), and
 * its temporary directory is removed.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "config.h"
#include "harness.h"
#include "js.h"
#include "log.h"
#include "proc.h"
#include "recfile.h"
#include "replay.h"
#include "simgen.h"
#include "swarm_medic.pb-c.h"

#define STREAM_SEED 1
#define STREAM_RATE 50000.0         /* events per second of event time */
#define PACE_RATE 50000u            /* latency runs: events per wall second */
#define PACE_TICK_NS 1000000LL      /* a batch every 1 ms ... */
#define PACE_PER_TICK (PACE_RATE / 1000u)   /* ... of 50 events */
#define PROBE_EVERY 500u            /* stream events between probes: 10 ms */
#define BIG_PENDING 1000u           /* pending tasks that raise queue_backlog */
#define FLOW_BATCH 10000u           /* rss run: events between markers */
#define READY_MS 10000              /* worker start to event=subscribed */
#define WAIT_MS 120000              /* give up on an answer after this */
#define STOP_MS 60000               /* worker drain and final commit */
#define TAIL_MS 5000                /* latency: wait for the last answers */
#define N_CHECKPOINTS 4             /* rss samples at 10%, 20%, 50%, 100% */
#define MIB (1024.0 * 1024.0)

#define END_SUBJECT "swarm.zzend.resource.s"
#define END_PREFIX "swarm.zzend."
#define END_ANSWER "medic.zzend.bottleneck.queue_backlog"
#define PROBE_SWARM_PREFIX "swarm.zzlat."
#define PROBE_SUBJECT "swarm.zzlat.resource.p"
#define PROBE_ANSWER "medic.zzlat.bottleneck.queue_backlog"
#define ECHO_ANSWER "echo.swarm.zzlat.>"
#define MARK_SUBJECT "swarm.zzmark.resource.m"
#define MARK_ANSWER "medic.zzmark.bottleneck.queue_backlog"

/* Targets, printed beside the figures. */
#define TARGET_WORKER_RATIO 0.6
#define TARGET_P99_DIFF_MS 1.0
#define TARGET_RSS_MIB 64.0
#define TARGET_RSS_GROWTH 1.10      /* "flat": last sample <= 1.1x the first */
#define TARGET_AGENTS_RATIO 0.8
#define TARGET_REPLAY_RATE 2000000.0
#define TARGET_JS_RATIO 0.7

typedef enum section {
    SEC_RAW = 0,
    SEC_WORKER,
    SEC_LATENCY,
    SEC_RSS,
    SEC_AGENTS,
    SEC_REPLAY,
    SEC_REQUESTS,
    SEC_JS,
    SEC_PARTS,
    SEC_COUNT,
} section;

static const char *const section_names[SEC_COUNT] = {
    "raw", "worker", "latency", "rss", "agents", "replay", "requests",
    "jetstream", "partitions",
};

/* What the bench was asked to do; built in main from the flags. */
typedef struct bench_opts {
    const char *bin;            /* where swarm-medic is */
    uint64_t events;            /* flat-out runs: stream length */
    uint64_t latency_s;         /* paced runs: seconds each */
    uint64_t rss_events;        /* rss run: stream length */
    uint64_t repeat;            /* flat-out runs of each kind */
    const char *nats_config;    /* nats-server -c FILE, or NULL */
    bool quick;
    int only;                   /* a section, or -1 for all */
    bool help;
} bench_opts;

/* The stream, pre-generated: subjects (NUL-terminated) and payloads in one
 * arena, indexed by offsets so that the arena may grow. */
typedef struct stream_msg {
    size_t subject;
    size_t payload;
    uint32_t len;
    int64_t ts_ms;
} stream_msg;

typedef struct stream {
    char *arena;
    size_t used, cap;
    stream_msg *msgs;
    size_t n;
    uint64_t payload_bytes;
    int64_t last_ts;
    uint32_t swarms, agents;
} stream;

#define MAX_REPEAT 9

/* Flat-out runs of one kind: rate from the first publish to the end
 * answer, repeated opt.repeat times; the median is the figure. */
typedef struct rate_run {
    bool done;
    double rate;                /* events/s: median of the runs */
    double min, max;
    double rates[MAX_REPEAT];
    int n;
    uint64_t expected;          /* stream + the two end samples */
    uint64_t accepted;          /* raw: received; worker: its events=;
                                   the lowest of the runs */
    double cpu_s;               /* worker: its CPU time (all threads, start
                                   to stop), median of the runs; 0: unknown */
    double cpus[MAX_REPEAT];
    double bus_cpu_s;           /* nats-server's CPU time during the run,
                                   median of the runs; 0: unknown */
    double bus_cpus[MAX_REPEAT];
} rate_run;

typedef struct lat_stats {
    bool done;
    uint64_t sent;              /* crossing samples published */
    size_t n;                   /* answers matched to one */
    double p50_ms, p99_ms, p999_ms, max_ms;
    double rate;                /* events/s the paced publisher achieved */
    double max_late_ms;         /* its worst lag behind the schedule */
} lat_stats;

/* Request round trips by kind (the requests section). */
enum { RQ_SELECT, RQ_REPORT, RQ_RAW, RQ_KINDS };

typedef struct req_stats {
    bool done;
    size_t n[RQ_KINDS];
    uint64_t errors[RQ_KINDS];  /* timeouts and error replies */
    double p50_ms[RQ_KINDS], p99_ms[RQ_KINDS], max_ms[RQ_KINDS];
    double rate;                /* events/s the paced publisher achieved */
} req_stats;

typedef struct results {
    bool ran[SEC_COUNT];
    bool ok[SEC_COUNT];
    char why[SEC_COUNT][320];
    char load[64];              /* /proc/loadavg when the bench started */
    double gen_s;               /* generating the main stream */
    rate_run raw, worker, agents100, agents100k;
    rate_run raw100, raw100k;   /* the bus alone on the agents' streams */
    rate_run js_raw, js_worker;     /* a raw pull consumer, the worker in
                                       JetStream mode, on one stored stream */
    lat_stats lat_worker, lat_raw;
    size_t n_rss;
    uint64_t rss_at[N_CHECKPOINTS];
    double rss_mib[N_CHECKPOINTS];
    double hwm_mib[N_CHECKPOINTS];  /* VmHWM at the same moments */
    double peak_rss_mib;
    double log_max_rss_mib;     /* max_rss_kb of event=stopped, for contrast */
    double hwm_jump_mib;        /* largest VmHWM rise between two markers */
    uint64_t hwm_jump_at;       /* ... seen at this many events */
    double lmdb_mib;            /* data.mdb blocks allocated */
    double lmdb_used_mib;       /* the worker's store_used_bytes */
    double rss_rate;            /* events/s of the flow-controlled rss run */
    uint64_t rss_accepted;
    uint64_t rss_expected;
    double replay_rate;
    double replay_loop_rate;    /* the handling loop alone (stats.wall_ns) */
    uint64_t replay_records;
    uint64_t replay_accepted;
    req_stats req;
    rate_run part_one, part_two;    /* one worker on 8 partitions, two on 4 */
    uint64_t part_split[2];     /* events on each worker's 4 partitions */
} results;

/* The one struct built in main and handed to every section. */
typedef struct bench {
    bench_opts opt;
    sigset_t stop;              /* SIGINT, SIGTERM: blocked, polled */
    char tmp[256];              /* everything written lives under it */
    sm_harness_nats nats;
    stream main;                /* 10 x 100 agents, opt.events messages */
    results res;
} bench;

/* ------------------------------------------------------------ small helpers */

static void sleep_until(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static void sleep_ms(int ms)
{
    sleep_until(sm_proc_mono_ns() + (int64_t)ms * 1000000LL);
}

static int fail(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes the reason into why and returns -1, for `return fail(...)`. */
static int fail(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return -1;
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Progress goes to stderr; the results go to stdout. */
static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("swarm-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static double seconds(int64_t ns)
{
    return (double)ns / 1e9;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 4096 + 1 > cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t r = fread(buf + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0) {
            buf[len] = 0;
            break;
        }
    }
    fclose(f);
    return buf;
}

static bool file_contains(const char *path, const char *needle)
{
    char *text = slurp(path);
    bool hit = text && strstr(text, needle);
    free(text);
    return hit;
}

/* The last non-empty line of a file, for error messages. */
static void last_line(const char *path, char *out, size_t cap)
{
    out[0] = 0;
    char *text = slurp(path);
    if (!text)
        return;
    size_t len = strlen(text);
    while (len > 0 && text[len - 1] == '\n')
        text[--len] = 0;
    const char *nl = strrchr(text, '\n');
    snprintf(out, cap, "%s", nl ? nl + 1 : text);
    free(text);
}

/* The unsigned value of ` key=` in one log line. */
static bool log_field(const char *line, const char *key, uint64_t *out)
{
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *eol = strchr(line, '\n');
    const char *p = strstr(line, pat);
    if (!p || (eol && p > eol))
        return false;
    char *end = NULL;
    unsigned long long v = strtoull(p + strlen(pat), &end, 10);
    if (end == p + strlen(pat))
        return false;
    *out = v;
    return true;
}

/* A "Key:   123 kB" line of /proc/<pid>/status, in kB; -1 if absent. */
static long proc_status_kb(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            kb = strtol(line + klen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* CPU time (user and system, every thread) process pid has used, in
 * seconds; -1 if unreadable. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *got = fgets(line, sizeof line, f);
    fclose(f);
    /* fields after the command name, which ends at the last ')':
     * state(3) ... utime(14) stime(15) */
    char *p = got ? strrchr(line, ')') : NULL;
    unsigned long long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                     &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Bytes a file occupies on disk (LMDB's data.mdb is sparse). */
static uint64_t allocated_bytes(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return 0;
    return (uint64_t)sb.st_blocks * 512u;
}

/* The three load averages, as text: other work on the machine shows. */
static void read_load(char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f)
        return;
    double a = 0, b = 0, c = 0;
    if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf(out, cap, "%.2f %.2f %.2f", a, b, c);
    fclose(f);
}

static void remove_tree(const char *path)
{
    if (!path || !path[0])
        return;
    const char *argv[] = {"rm", "-rf", path, NULL};
    pid_t pid = sm_harness_spawn(argv, NULL, NULL);
    if (pid > 0)
        sm_harness_wait(pid, 60000);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples (q in 0..1). */
static int64_t percentile(const int64_t *sorted, size_t n, double q)
{
    if (n == 0)
        return 0;
    double rank = q * (double)n;
    size_t idx = (size_t)rank;
    if ((double)idx < rank)
        idx++;                  /* ceil */
    if (idx > 0)
        idx--;
    return sorted[idx < n ? idx : n - 1];
}

/* ---------------------------------------------------------------- the stream */

static sm_status sim_open(sm_sim **out, uint32_t swarms, uint32_t agents)
{
    sm_sim_config c;
    sm_sim_config_default(&c);
    c.seed = STREAM_SEED;
    c.swarms = swarms;
    c.agents = agents;
    c.rate = STREAM_RATE;
    c.duration_ms = 0;          /* endless: we stop after N */
    return sm_sim_create(out, &c);
}

static void stream_free(stream *st)
{
    free(st->arena);
    free(st->msgs);
    memset(st, 0, sizeof *st);
}

static int stream_generate(stream *st, uint32_t swarms, uint32_t agents,
                           uint64_t n, char *why, size_t cap)
{
    memset(st, 0, sizeof *st);
    st->swarms = swarms;
    st->agents = agents;
    sm_sim *sim = NULL;
    if (sim_open(&sim, swarms, agents) != SM_OK)
        return fail(why, cap, "the simulator rejected %u swarms x %u agents",
                    swarms, agents);
    st->cap = (size_t)n * 96 + 4096;
    st->arena = malloc(st->cap);
    st->msgs = malloc((size_t)n * sizeof *st->msgs);
    int rc = 0;
    if (!st->arena || !st->msgs)
        rc = fail(why, cap, "out of memory for %llu events", (unsigned long long)n);
    sm_sim_msg m;
    while (rc == 0 && st->n < n && sm_sim_next(sim, &m)) {
        size_t slen = strlen(m.subject) + 1;
        if (st->used + slen + m.len > st->cap) {
            size_t bigger = st->cap * 2;
            char *a = realloc(st->arena, bigger);
            if (!a) {
                rc = fail(why, cap, "out of memory for the stream arena");
                break;
            }
            st->arena = a;
            st->cap = bigger;
        }
        stream_msg *e = &st->msgs[st->n++];
        e->subject = st->used;
        memcpy(st->arena + st->used, m.subject, slen);
        st->used += slen;
        e->payload = st->used;
        memcpy(st->arena + st->used, m.payload, m.len);
        st->used += m.len;
        e->len = (uint32_t)m.len;
        e->ts_ms = m.ts_ms;
        st->payload_bytes += m.len;
    }
    if (rc == 0 && st->n < n)
        rc = fail(why, cap, "the simulator stopped after %zu events: %s", st->n,
                  sm_status_str(sm_sim_status(sim)));
    sm_sim_destroy(sim);
    if (rc != 0) {
        stream_free(st);
        return rc;
    }
    st->last_ts = st->msgs[st->n - 1].ts_ms;
    return 0;
}

/* ------------------------------------------------------------------- the bus */

static natsStatus connect_bus(const bench *b, const char *name,
                              natsConnection **nc)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK) s = natsOptions_SetURL(o, b->nats.url);
    if (s == NATS_OK) s = natsOptions_SetName(o, name);
    if (s == NATS_OK) s = natsOptions_SetTimeout(o, 5000);
    /* the echo client answers like the worker does (send_asap, its
     * default), so the two-hop comparison is like for like */
    if (s == NATS_OK && strcmp(name, "bench-echo") == 0)
        s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK) s = natsConnection_Connect(nc, o);
    natsOptions_Destroy(o);
    return s;
}

/* Async subscription without pending limits, known to the server on
 * return. */
static natsStatus subscribe(natsConnection *nc, natsSubscription **sub,
                            const char *subject, natsMsgHandler cb,
                            void *closure)
{
    natsStatus s = natsConnection_Subscribe(sub, nc, subject, cb, closure);
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(*sub, -1, -1);
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(nc, 5000);
    return s;
}

/* Drains, so that no callback runs on its closure after this returns. */
static void unsubscribe(natsSubscription *sub)
{
    if (!sub)
        return;
    if (natsSubscription_Drain(sub) == NATS_OK)
        natsSubscription_WaitForDrainCompletion(sub, 5000);
    natsSubscription_Destroy(sub);
}

static void disconnect(natsConnection *nc)
{
    if (!nc)
        return;
    natsConnection_Close(nc);
    natsConnection_Destroy(nc);
}

static int bus_fail(char *why, size_t cap, const char *step, natsStatus s)
{
    return fail(why, cap, "%s: %s (%s)", step, natsStatus_GetText(s),
                nats_GetLastError(NULL));
}

/* Publishes a ResourceSample of `pending` high-priority tasks. */
static natsStatus publish_sample(natsConnection *nc, const char *subject,
                                 const char *source, int64_t ts_ms,
                                 uint32_t pending)
{
    Swarmmedic__V1__PendingByPriority p = SWARMMEDIC__V1__PENDING_BY_PRIORITY__INIT;
    p.priority = SWARMMEDIC__V1__PRIORITY__PRIORITY_HIGH;
    p.count = pending;
    Swarmmedic__V1__PendingByPriority *list[1] = {&p};
    Swarmmedic__V1__ResourceSample r = SWARMMEDIC__V1__RESOURCE_SAMPLE__INIT;
    r.ts_ms = ts_ms;
    r.source = (char *)source;
    r.n_pending = 1;
    r.pending = list;
    uint8_t buf[128];
    if (swarmmedic__v1__resource_sample__get_packed_size(&r) > sizeof buf)
        return NATS_INVALID_ARG;
    size_t len = swarmmedic__v1__resource_sample__pack(&r, buf);
    return natsConnection_Publish(nc, subject, buf, (int)len);
}

/* The end of a flat-out run: two samples that raise queue_backlog on zzend,
 * after the stream's last event time. The second is at last_ts + 2. */
static natsStatus publish_end(natsConnection *nc, int64_t last_ts)
{
    natsStatus s = publish_sample(nc, END_SUBJECT, "s", last_ts + 1, BIG_PENDING);
    if (s == NATS_OK)
        s = publish_sample(nc, END_SUBJECT, "s", last_ts + 2, BIG_PENDING);
    return s;
}

static int publish_stream(natsConnection *nc, const stream *st,
                          const sigset_t *stop, char *why, size_t cap)
{
    for (size_t i = 0; i < st->n; i++) {
        const stream_msg *e = &st->msgs[i];
        natsStatus s = natsConnection_Publish(nc, st->arena + e->subject,
                                              st->arena + e->payload, (int)e->len);
        if (s != NATS_OK)
            return bus_fail(why, cap, "publish", s);
        if ((i & 0xffff) == 0 && sm_proc_stop_pending(stop, NULL))
            return fail(why, cap, "interrupted");
    }
    return 0;
}

/* ------------------------------------------------------- answers and probes */

/* Publish times of the crossing samples of a latency run, by ts_ms
 * (strictly increasing, so a binary search finds them). Written by the
 * publisher, read by the listener's callback. */
typedef struct probe_table {
    pthread_mutex_t mu;
    int64_t *ts;
    int64_t *pub_ns;
    size_t n, cap;
} probe_table;

static int probe_table_init(probe_table *pt, size_t cap)
{
    memset(pt, 0, sizeof *pt);
    pthread_mutex_init(&pt->mu, NULL);
    pt->ts = calloc(cap, sizeof *pt->ts);
    pt->pub_ns = calloc(cap, sizeof *pt->pub_ns);
    pt->cap = cap;
    return pt->ts && pt->pub_ns ? 0 : -1;
}

static void probe_table_destroy(probe_table *pt)
{
    free(pt->ts);
    free(pt->pub_ns);
    pthread_mutex_destroy(&pt->mu);
}

static void probe_add(probe_table *pt, int64_t ts, int64_t pub_ns)
{
    pthread_mutex_lock(&pt->mu);
    if (pt->n < pt->cap) {
        pt->ts[pt->n] = ts;
        pt->pub_ns[pt->n] = pub_ns;
        pt->n++;
    }
    pthread_mutex_unlock(&pt->mu);
}

/* Publish time of the crossing sample with this ts_ms, or -1. */
static int64_t probe_lookup(probe_table *pt, int64_t ts)
{
    int64_t found = -1;
    pthread_mutex_lock(&pt->mu);
    size_t lo = 0, hi = pt->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pt->ts[mid] < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < pt->n && pt->ts[lo] == ts)
        found = pt->pub_ns[lo];
    pthread_mutex_unlock(&pt->mu);
    return found;
}

/* What arrives on an answer subject: Bottlenecks from the worker (their
 * decision.evidence.ts_ms), or in the echo run the probe samples themselves
 * (their ts_ms). Optionally matched against a probe table for latency. */
typedef struct listener {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool echo;
    uint64_t received;
    int64_t acked_ts;           /* highest ts seen */
    int64_t acked_ns;           /* monotonic time it arrived */
    probe_table *probes;        /* latency runs, else NULL */
    int64_t *lat_ns;
    size_t n_lat, cap_lat;
    uint64_t unmatched;         /* worker answers with no probe behind them */
} listener;

static int listener_init(listener *l, bool echo, probe_table *probes,
                         size_t cap_lat)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    l->echo = echo;
    l->probes = probes;
    if (cap_lat > 0) {
        l->lat_ns = calloc(cap_lat, sizeof *l->lat_ns);
        l->cap_lat = l->lat_ns ? cap_lat : 0;
    }
    return cap_lat == 0 || l->lat_ns ? 0 : -1;
}

static void listener_destroy(listener *l)
{
    free(l->lat_ns);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
}

static bool answer_ts(bool echo, const void *data, size_t len, int64_t *ts)
{
    bool ok = false;
    if (echo) {
        Swarmmedic__V1__ResourceSample *r =
            swarmmedic__v1__resource_sample__unpack(NULL, len, data);
        if (r) {
            *ts = r->ts_ms;
            ok = true;
            swarmmedic__v1__resource_sample__free_unpacked(r, NULL);
        }
    } else {
        Swarmmedic__V1__Bottleneck *bn =
            swarmmedic__v1__bottleneck__unpack(NULL, len, data);
        if (bn && bn->decision && bn->decision->evidence) {
            *ts = bn->decision->evidence->ts_ms;
            ok = true;
        }
        if (bn)
            swarmmedic__v1__bottleneck__free_unpacked(bn, NULL);
    }
    return ok;
}

static void on_answer(natsConnection *nc, natsSubscription *sub, natsMsg *m,
                      void *closure)
{
    (void)nc;
    (void)sub;
    int64_t now = sm_proc_mono_ns();
    listener *l = closure;
    int64_t ts = 0;
    bool ok = answer_ts(l->echo, natsMsg_GetData(m),
                        (size_t)natsMsg_GetDataLength(m), &ts);
    natsMsg_Destroy(m);
    if (!ok)
        return;
    int64_t pub = l->probes ? probe_lookup(l->probes, ts) : -1;
    pthread_mutex_lock(&l->mu);
    l->received++;
    if (ts > l->acked_ts) {
        l->acked_ts = ts;
        l->acked_ns = now;
    }
    if (pub >= 0 && l->n_lat < l->cap_lat)
        l->lat_ns[l->n_lat++] = now - pub;
    else if (pub < 0 && l->probes && !l->echo)
        l->unmatched++;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

typedef enum wait_result { WAIT_OK = 0, WAIT_TIMEOUT, WAIT_INTERRUPTED } wait_result;

/* Waits until an answer with ts >= ts has arrived. */
static wait_result listener_wait(listener *l, int64_t ts, int timeout_ms,
                                 const sigset_t *stop)
{
    int64_t end = sm_proc_mono_ns() + (int64_t)timeout_ms * 1000000LL;
    wait_result r = WAIT_OK;
    pthread_mutex_lock(&l->mu);
    while (l->acked_ts < ts) {
        int64_t now = sm_proc_mono_ns();
        if (now >= end) {
            r = WAIT_TIMEOUT;
            break;
        }
        if (sm_proc_stop_pending(stop, NULL)) {
            r = WAIT_INTERRUPTED;
            break;
        }
        int64_t until = now + 100000000LL < end ? now + 100000000LL : end;
        struct timespec ts_until = {(time_t)(until / 1000000000LL),
                                    (long)(until % 1000000000LL)};
        pthread_cond_timedwait(&l->cv, &l->mu, &ts_until);
    }
    pthread_mutex_unlock(&l->mu);
    return r;
}

/* The raw subscriber: counts, and notes when the second end sample came. */
typedef struct raw_counter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint_fast64_t received;
    int ends;
    int64_t done_ns;
} raw_counter;

static void on_raw(natsConnection *nc, natsSubscription *sub, natsMsg *m,
                   void *closure)
{
    (void)nc;
    (void)sub;
    raw_counter *rc = closure;
    atomic_fetch_add_explicit(&rc->received, 1, memory_order_relaxed);
    const char *subject = natsMsg_GetSubject(m);
    if (strncmp(subject, END_PREFIX, sizeof END_PREFIX - 1) == 0) {
        int64_t now = sm_proc_mono_ns();
        pthread_mutex_lock(&rc->mu);
        if (++rc->ends == 2) {
            rc->done_ns = now;
            pthread_cond_broadcast(&rc->cv);
        }
        pthread_mutex_unlock(&rc->mu);
    }
    natsMsg_Destroy(m);
}

/* The echo client: republishes each probe to echo.<subject> from its
 * callback, on its own connection. */
static void on_echo(natsConnection *nc, natsSubscription *sub, natsMsg *m,
                    void *closure)
{
    (void)sub;
    (void)closure;
    const char *subject = natsMsg_GetSubject(m);
    if (strncmp(subject, PROBE_SWARM_PREFIX, sizeof PROBE_SWARM_PREFIX - 1) == 0) {
        char out[160];
        snprintf(out, sizeof out, "echo.%s", subject);
        natsConnection_Publish(nc, out, natsMsg_GetData(m), natsMsg_GetDataLength(m));
    }
    natsMsg_Destroy(m);
}

/* ---------------------------------------------------------------- the worker */

typedef struct worker_proc {
    pid_t pid;
    char store[320];
    char log[320];
} worker_proc;

/* From the worker's `event=stopped` line. */
typedef struct worker_exit {
    int status;
    uint64_t events;
    uint64_t max_rss_kb;
    uint64_t store_used;
    uint64_t cpu_ms;            /* its CPU, every thread (0: not said) */
} worker_exit;

/* Starts swarm-medic on a fresh store and waits for event=subscribed. */
static int worker_start(const bench *b, const char *tag, worker_proc *w,
                        const char *const *extra, char *why, size_t cap)
{
    memset(w, 0, sizeof *w);
    snprintf(w->store, sizeof w->store, "%s/store-%s", b->tmp, tag);
    snprintf(w->log, sizeof w->log, "%s/worker-%s.log", b->tmp, tag);
    if (mkdir(w->store, 0700) != 0)
        return fail(why, cap, "mkdir %s: %s", w->store, strerror(errno));
    unlink(w->log);             /* the log is appended to; one run per log */
    char exe[512], url[160], store[400];
    snprintf(exe, sizeof exe, "%s/swarm-medic", b->opt.bin);
    snprintf(url, sizeof url, "--nats-url=%s", b->nats.url);
    snprintf(store, sizeof store, "--store-dir=%s", w->store);
    if (access(exe, X_OK) != 0)
        return fail(why, cap, "%s: %s (see --bin)", exe, strerror(errno));
    const char *argv[16] = {exe, url, store, "--stats-interval=0",
                            "--log-level=info", NULL};
    for (int i = 0; extra && extra[i] && i < 10; i++)
        argv[5 + i] = extra[i];
    w->pid = sm_harness_spawn(argv, w->log, NULL);
    if (w->pid < 0) {
        w->pid = 0;
        return fail(why, cap, "cannot start %s: %s", exe, strerror(errno));
    }
    for (int waited = 0; waited < READY_MS; waited += 20) {
        if (file_contains(w->log, "event=subscribed"))
            return 0;
        int st = sm_harness_wait(w->pid, 0);
        if (st >= 0) {
            char line[256];
            last_line(w->log, line, sizeof line);
            w->pid = 0;
            return fail(why, cap, "the worker exited (status %d) before subscribing: %s",
                        st, line);
        }
        if (sm_proc_stop_pending(&b->stop, NULL))
            return fail(why, cap, "interrupted");
        sleep_ms(20);
    }
    return fail(why, cap, "the worker did not log event=subscribed within %d s",
                READY_MS / 1000);
}

/* SIGTERM, wait for the drain and commit, read the event=stopped line. */
static int worker_stop(worker_proc *w, worker_exit *x, char *why, size_t cap)
{
    memset(x, 0, sizeof *x);
    if (w->pid <= 0)
        return fail(why, cap, "the worker is not running");
    x->status = sm_harness_stop(w->pid, STOP_MS);
    w->pid = 0;
    char *text = slurp(w->log);
    const char *line = text ? strstr(text, "event=stopped ") : NULL;
    bool parsed = line && log_field(line, "events", &x->events) &&
                  log_field(line, "max_rss_kb", &x->max_rss_kb) &&
                  log_field(line, "store_used_bytes", &x->store_used);
    if (parsed && !log_field(line, "cpu_ms", &x->cpu_ms))
        x->cpu_ms = 0;          /* a build before cpu_ms */
    free(text);
    if (x->status != 0 || !parsed) {
        char last[256];
        last_line(w->log, last, sizeof last);
        return fail(why, cap, "the worker exited with status %d%s; last log line: %s",
                    x->status, parsed ? "" : " without a full event=stopped line", last);
    }
    return 0;
}

/* Stops the worker if still running and removes its store. */
static void worker_cleanup(worker_proc *w)
{
    if (w->pid > 0)
        sm_harness_stop(w->pid, STOP_MS);
    w->pid = 0;
    remove_tree(w->store);
}

static int wait_fail(wait_result r, const worker_proc *w, char *why, size_t cap,
                     const char *what)
{
    if (r == WAIT_INTERRUPTED)
        return fail(why, cap, "interrupted");
    bool alive = w && w->pid > 0 && sm_harness_wait(w->pid, 0) < 0;
    return fail(why, cap, "no answer to %s within %d s%s", what, WAIT_MS / 1000,
                w && !alive ? " (the worker has exited)" : "");
}

/* ------------------------------------------------------------------ sections */

/* One flat-out run to a plain subscriber. */
static int raw_once(bench *b, const stream *st, rate_run *out, char *why,
                    size_t cap)
{
    raw_counter rc;
    memset(&rc, 0, sizeof rc);
    pthread_mutex_init(&rc.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rc.cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&rc.received, 0);
    natsConnection *subc = NULL, *pub = NULL;
    natsSubscription *sub = NULL;
    int result = -1;
    natsStatus s;

    out->expected = st->n + 2;
    if ((s = connect_bus(b, "bench-raw-sub", &subc)) != NATS_OK ||
        (s = subscribe(subc, &sub, "swarm.>", on_raw, &rc)) != NATS_OK ||
        (s = connect_bus(b, "bench-pub", &pub)) != NATS_OK) {
        bus_fail(why, cap, "connect/subscribe", s);
        goto cleanup;
    }
    note("raw: publishing %zu events (%u x %u agents) flat out to a plain "
         "subscriber", st->n, st->swarms, st->agents);
    double bus0 = proc_cpu_s(b->nats.pid);
    int64_t t0 = sm_proc_mono_ns();
    if (publish_stream(pub, st, &b->stop, why, cap) != 0)
        goto cleanup;
    if ((s = publish_end(pub, st->last_ts)) != NATS_OK ||
        (s = natsConnection_FlushTimeout(pub, WAIT_MS)) != NATS_OK) {
        bus_fail(why, cap, "publish the end samples", s);
        goto cleanup;
    }
    int64_t end = sm_proc_mono_ns() + (int64_t)WAIT_MS * 1000000LL;
    pthread_mutex_lock(&rc.mu);
    while (rc.ends < 2 && sm_proc_mono_ns() < end && !sm_proc_stop_pending(&b->stop, NULL)) {
        int64_t until = sm_proc_mono_ns() + 100000000LL;
        struct timespec ts = {(time_t)(until / 1000000000LL), (long)(until % 1000000000LL)};
        pthread_cond_timedwait(&rc.cv, &rc.mu, &ts);
    }
    int ends = rc.ends;
    int64_t done_ns = rc.done_ns;
    pthread_mutex_unlock(&rc.mu);
    out->accepted = atomic_load(&rc.received);
    if (ends < 2) {
        fail(why, cap, "%s: the subscriber saw %d of 2 end samples and %llu messages",
             sm_proc_stop_pending(&b->stop, NULL) ? "interrupted" : "timed out", ends,
             (unsigned long long)out->accepted);
        goto cleanup;
    }
    out->rate = (double)st->n / seconds(done_ns - t0);
    out->bus_cpu_s = bus0 >= 0 ? proc_cpu_s(b->nats.pid) - bus0 : 0;
    out->done = true;
    result = 0;
cleanup:
    unsubscribe(sub);
    disconnect(subc);
    disconnect(pub);
    pthread_cond_destroy(&rc.cv);
    pthread_mutex_destroy(&rc.mu);
    return result;
}

/* The worker on a stream flat out, once. */
static int flat_once(bench *b, const stream *st, const char *tag, rate_run *out,
                    char *why, size_t cap)
{
    worker_proc w;
    memset(&w, 0, sizeof w);
    listener l;
    natsConnection *lis = NULL, *pub = NULL;
    natsSubscription *sub = NULL;
    int result = -1;
    natsStatus s;

    memset(out, 0, sizeof *out);
    out->expected = st->n + 2;
    if (listener_init(&l, false, NULL, 0) != 0)
        return fail(why, cap, "out of memory");
    if (worker_start(b, tag, &w, NULL, why, cap) != 0)
        goto cleanup;
    if ((s = connect_bus(b, "bench-listen", &lis)) != NATS_OK ||
        (s = subscribe(lis, &sub, END_ANSWER, on_answer, &l)) != NATS_OK ||
        (s = connect_bus(b, "bench-pub", &pub)) != NATS_OK) {
        bus_fail(why, cap, "connect/subscribe", s);
        goto cleanup;
    }
    note("%s: publishing %zu events (%u x %u agents) flat out to the worker",
         tag, st->n, st->swarms, st->agents);
    double bus0 = proc_cpu_s(b->nats.pid);
    int64_t t0 = sm_proc_mono_ns();
    if (publish_stream(pub, st, &b->stop, why, cap) != 0)
        goto cleanup;
    if ((s = publish_end(pub, st->last_ts)) != NATS_OK ||
        (s = natsConnection_FlushTimeout(pub, WAIT_MS)) != NATS_OK) {
        bus_fail(why, cap, "publish the end samples", s);
        goto cleanup;
    }
    wait_result r = listener_wait(&l, st->last_ts + 2, WAIT_MS, &b->stop);
    if (r != WAIT_OK) {
        wait_fail(r, &w, why, cap, "the end samples (" END_ANSWER ")");
        goto cleanup;
    }
    pthread_mutex_lock(&l.mu);
    int64_t done_ns = l.acked_ns;
    pthread_mutex_unlock(&l.mu);
    out->rate = (double)st->n / seconds(done_ns - t0);
    out->bus_cpu_s = bus0 >= 0 ? proc_cpu_s(b->nats.pid) - bus0 : 0;
    worker_exit x;
    if (worker_stop(&w, &x, why, cap) != 0)
        goto cleanup;
    out->accepted = x.events;
    out->cpu_s = (double)x.cpu_ms / 1000.0;
    out->done = true;
    result = 0;
cleanup:
    unsubscribe(sub);
    disconnect(lis);
    disconnect(pub);
    worker_cleanup(&w);
    listener_destroy(&l);
    return result;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0 .. n) (1 <= n <= MAX_REPEAT), its min and max. */
static double median_of(const double *v, int n, double *min, double *max)
{
    double sorted[MAX_REPEAT];
    memcpy(sorted, v, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_double);
    *min = sorted[0];
    *max = sorted[n - 1];
    return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/* The median rate of the runs in agg (n >= 1), their min and max, and
 * the median CPU; done. */
static void rate_median(rate_run *agg)
{
    double lo, hi;
    agg->rate = median_of(agg->rates, agg->n, &agg->min, &agg->max);
    agg->cpu_s = median_of(agg->cpus, agg->n, &lo, &hi);
    agg->bus_cpu_s = median_of(agg->bus_cpus, agg->n, &lo, &hi);
    agg->done = true;
}

/* Runs flat_once (worker) or raw_once (!worker) on st opt.repeat times
 * into *agg. */
static int repeat_runs(bench *b, const stream *st, bool worker, const char *tag,
                       rate_run *agg, char *why, size_t cap)
{
    memset(agg, 0, sizeof *agg);
    for (uint64_t k = 0; k < b->opt.repeat; k++) {
        rate_run one;
        memset(&one, 0, sizeof one);
        int rc = worker ? flat_once(b, st, tag, &one, why, cap)
                        : raw_once(b, st, &one, why, cap);
        if (rc != 0)
            return rc;
        agg->bus_cpus[agg->n] = one.bus_cpu_s;
        agg->cpus[agg->n] = one.cpu_s;
        agg->rates[agg->n++] = one.rate;
        agg->expected = one.expected;
        if (k == 0 || one.accepted < agg->accepted)
            agg->accepted = one.accepted;
    }
    rate_median(agg);
    return 0;
}

/* Section 1: the bus alone. */
static int run_raw(bench *b, char *why, size_t cap)
{
    return repeat_runs(b, &b->main, false, "raw", &b->res.raw, why, cap);
}

/* Section 2. */
static int run_worker(bench *b, char *why, size_t cap)
{
    return repeat_runs(b, &b->main, true, "worker", &b->res.worker, why, cap);
}

/* Publishes the 10 x 100 stream (generated on the fly) at PACE_RATE for
 * opt.latency_s seconds, in 1 ms batches against a monotonic schedule, with
 * a probe sample on swarm zzlat after every PROBE_EVERY events: pending
 * 1000, 1000 (raises), 0, 0 (resolves). The publish time of each crossing
 * sample goes into pt just before it is published. */
static int paced_publish(const bench *b, natsConnection *pub, probe_table *pt,
                         lat_stats *out, char *why, size_t cap)
{
    sm_sim *sim = NULL;
    if (sim_open(&sim, 10, 100) != SM_OK)
        return fail(why, cap, "the simulator could not start");
    uint64_t total = b->opt.latency_s * PACE_RATE;
    uint64_t i = 0;
    unsigned phase = 0;
    int64_t last_ts = 0, probe_ts = 0, max_late = 0;
    int result = 0;
    int64_t t0 = sm_proc_mono_ns();
    for (uint64_t tick = 0; i < total && result == 0; tick++) {
        int64_t due = t0 + (int64_t)tick * PACE_TICK_NS;
        sleep_until(due);
        int64_t late = sm_proc_mono_ns() - due;
        if (late > max_late)
            max_late = late;
        uint64_t upto = (tick + 1) * PACE_PER_TICK;
        for (; i < total && i < upto; i++) {
            sm_sim_msg m;
            if (!sm_sim_next(sim, &m)) {
                result = fail(why, cap, "the simulator stopped early");
                break;
            }
            last_ts = m.ts_ms;
            natsStatus s = natsConnection_Publish(pub, m.subject, m.payload, (int)m.len);
            if (s == NATS_OK && (i + 1) % PROBE_EVERY == 0) {
                int64_t ts = last_ts > probe_ts ? last_ts : probe_ts + 1;
                probe_ts = ts;
                bool crossing = phase == 1 || phase == 3;
                if (crossing)
                    probe_add(pt, ts, sm_proc_mono_ns());
                s = publish_sample(pub, PROBE_SUBJECT, "p", ts,
                                   phase < 2 ? BIG_PENDING : 0);
                if (crossing)
                    out->sent++;
                phase = (phase + 1) % 4;
            }
            if (s != NATS_OK) {
                result = bus_fail(why, cap, "publish", s);
                break;
            }
        }
        if ((tick & 63) == 0 && sm_proc_stop_pending(&b->stop, NULL))
            result = fail(why, cap, "interrupted");
    }
    int64_t wall = sm_proc_mono_ns() - t0;
    out->rate = (double)i / seconds(wall);
    out->max_late_ms = (double)max_late / 1e6;
    sm_sim_destroy(sim);
    return result;
}

static void summarise(listener *l, lat_stats *out)
{
    pthread_mutex_lock(&l->mu);
    size_t n = l->n_lat;
    qsort(l->lat_ns, n, sizeof *l->lat_ns, cmp_i64);
    out->n = n;
    out->p50_ms = (double)percentile(l->lat_ns, n, 0.50) / 1e6;
    out->p99_ms = (double)percentile(l->lat_ns, n, 0.99) / 1e6;
    out->p999_ms = (double)percentile(l->lat_ns, n, 0.999) / 1e6;
    out->max_ms = n ? (double)l->lat_ns[n - 1] / 1e6 : 0;
    pthread_mutex_unlock(&l->mu);
}

/* One paced run: through the worker (echo false) or through the echo
 * client (echo true). */
static int latency_pass(bench *b, bool echo, lat_stats *out, char *why,
                        size_t cap)
{
    worker_proc w;
    memset(&w, 0, sizeof w);
    probe_table pt;
    listener l;
    natsConnection *lis = NULL, *pub = NULL, *echoc = NULL;
    natsSubscription *sub = NULL, *echos = NULL;
    int result = -1;
    natsStatus s;
    size_t crossings = (size_t)(b->opt.latency_s * PACE_RATE / PROBE_EVERY / 2) + 16;

    memset(out, 0, sizeof *out);
    if (probe_table_init(&pt, crossings) != 0) {
        probe_table_destroy(&pt);
        return fail(why, cap, "out of memory");
    }
    if (listener_init(&l, echo, &pt, crossings) != 0) {
        fail(why, cap, "out of memory");
        goto cleanup;
    }
    if (!echo && worker_start(b, "latency", &w, NULL, why, cap) != 0)
        goto cleanup;
    if (echo && ((s = connect_bus(b, "bench-echo", &echoc)) != NATS_OK ||
                 (s = subscribe(echoc, &echos, "swarm.>", on_echo, NULL)) != NATS_OK)) {
        bus_fail(why, cap, "echo client", s);
        goto cleanup;
    }
    if ((s = connect_bus(b, "bench-listen", &lis)) != NATS_OK ||
        (s = subscribe(lis, &sub, echo ? ECHO_ANSWER : PROBE_ANSWER, on_answer,
                       &l)) != NATS_OK ||
        (s = connect_bus(b, "bench-pub", &pub)) != NATS_OK) {
        bus_fail(why, cap, "connect/subscribe", s);
        goto cleanup;
    }
    note("latency: %llu s at %u events/s through %s",
         (unsigned long long)b->opt.latency_s, PACE_RATE,
         echo ? "the echo client (raw two-hop)" : "the worker");
    if (paced_publish(b, pub, &pt, out, why, cap) != 0)
        goto cleanup;
    if ((s = natsConnection_FlushTimeout(pub, WAIT_MS)) != NATS_OK) {
        bus_fail(why, cap, "flush", s);
        goto cleanup;
    }
    pthread_mutex_lock(&pt.mu);
    int64_t last = pt.n ? pt.ts[pt.n - 1] : 0;
    pthread_mutex_unlock(&pt.mu);
    /* Late or missing answers show as n < sent; not a failure. */
    if (listener_wait(&l, last, TAIL_MS, &b->stop) == WAIT_INTERRUPTED) {
        fail(why, cap, "interrupted");
        goto cleanup;
    }
    summarise(&l, out);
    if (!echo) {
        worker_exit x;
        if (worker_stop(&w, &x, why, cap) != 0)
            goto cleanup;
    }
    out->done = true;
    result = 0;
cleanup:
    unsubscribe(sub);
    unsubscribe(echos);
    disconnect(lis);
    disconnect(pub);
    disconnect(echoc);
    worker_cleanup(&w);
    listener_destroy(&l);
    probe_table_destroy(&pt);
    return result;
}

/* Section 3. */
static int run_latency(bench *b, char *why, size_t cap)
{
    if (latency_pass(b, false, &b->res.lat_worker, why, cap) != 0)
        return -1;
    return latency_pass(b, true, &b->res.lat_raw, why, cap);
}

/* Section 4: a long stream generated on the fly, flow-controlled by
 * markers: after every FLOW_BATCH events two samples on zzmark that
 * alternately raise and resolve queue_backlog; before going on, the
 * answer to the previous marker must be in, so the worker is never more
 * than two batches behind (its client queue stays small and out of the
 * RSS figure). At 10%, 20%, 50% and 100% of the stream the bench waits
 * for the current marker, i.e. until the worker has handled everything,
 * and reads its VmRSS. */
static int run_rss(bench *b, char *why, size_t cap)
{
    results *res = &b->res;
    worker_proc w;
    memset(&w, 0, sizeof w);
    listener l;
    natsConnection *lis = NULL, *pub = NULL;
    natsSubscription *sub = NULL;
    sm_sim *sim = NULL;
    int result = -1;
    natsStatus s = NATS_OK;
    uint64_t total = b->opt.rss_events;
    uint64_t cps[N_CHECKPOINTS] = {total / 10, total / 5, total / 2, total};

    res->n_rss = 0;
    if (listener_init(&l, false, NULL, 0) != 0)
        return fail(why, cap, "out of memory");
    if (sim_open(&sim, 10, 100) != SM_OK) {
        fail(why, cap, "the simulator could not start");
        goto cleanup;
    }
    if (worker_start(b, "rss", &w, NULL, why, cap) != 0)
        goto cleanup;
    if ((s = connect_bus(b, "bench-listen", &lis)) != NATS_OK ||
        (s = subscribe(lis, &sub, MARK_ANSWER, on_answer, &l)) != NATS_OK ||
        (s = connect_bus(b, "bench-pub", &pub)) != NATS_OK) {
        bus_fail(why, cap, "connect/subscribe", s);
        goto cleanup;
    }
    note("rss: %llu events (10 x 100 agents, generated on the fly) to the worker",
         (unsigned long long)total);
    int64_t last_ts = 0, mark_ts = 0, prev_mark = 0;
    uint64_t marks = 0;
    long hwm_seen = proc_status_kb(w.pid, "VmHWM");    /* at start-up */
    int64_t t0 = sm_proc_mono_ns();
    for (uint64_t i = 0; i < total;) {
        sm_sim_msg m;
        if (!sm_sim_next(sim, &m)) {
            fail(why, cap, "the simulator stopped early");
            goto cleanup;
        }
        if ((s = natsConnection_Publish(pub, m.subject, m.payload, (int)m.len)) != NATS_OK) {
            bus_fail(why, cap, "publish", s);
            goto cleanup;
        }
        last_ts = m.ts_ms;
        i++;
        bool checkpoint = res->n_rss < N_CHECKPOINTS && i == cps[res->n_rss];
        if (i % FLOW_BATCH != 0 && !checkpoint)
            continue;
        int64_t a = last_ts > mark_ts ? last_ts : mark_ts + 1;
        uint32_t pending = marks % 2 == 0 ? BIG_PENDING : 0;
        if ((s = publish_sample(pub, MARK_SUBJECT, "m", a, pending)) != NATS_OK ||
            (s = publish_sample(pub, MARK_SUBJECT, "m", a + 1, pending)) != NATS_OK) {
            bus_fail(why, cap, "publish a marker", s);
            goto cleanup;
        }
        mark_ts = a + 1;
        marks++;
        int64_t wait_for = checkpoint ? mark_ts : prev_mark;
        prev_mark = mark_ts;
        wait_result r = wait_for > 0 ? listener_wait(&l, wait_for, WAIT_MS, &b->stop)
                                     : WAIT_OK;
        if (r != WAIT_OK) {
            wait_fail(r, &w, why, cap, "a flow-control marker (" MARK_ANSWER ")");
            goto cleanup;
        }
        long hwm_now = proc_status_kb(w.pid, "VmHWM");
        if (hwm_now > 0 && (double)(hwm_now - hwm_seen) / 1024.0 > res->hwm_jump_mib) {
            res->hwm_jump_mib = (double)(hwm_now - hwm_seen) / 1024.0;
            res->hwm_jump_at = i;
        }
        if (hwm_now > hwm_seen)
            hwm_seen = hwm_now;
        while (checkpoint) {    /* equal checkpoints in tiny runs */
            long kb = proc_status_kb(w.pid, "VmRSS");
            long hwm_kb = proc_status_kb(w.pid, "VmHWM");
            res->rss_at[res->n_rss] = i;
            res->rss_mib[res->n_rss] = kb > 0 ? (double)kb / 1024.0 : 0;
            res->hwm_mib[res->n_rss] = hwm_kb > 0 ? (double)hwm_kb / 1024.0 : 0;
            res->n_rss++;
            /* anonymous memory apart from file pages (LMDB's map) */
            note("rss: %llu events handled, VmRSS %.1f MiB (anon %.1f, file "
                 "%.1f), VmHWM %.1f MiB", (unsigned long long)i, (double)kb / 1024.0,
                 (double)proc_status_kb(w.pid, "RssAnon") / 1024.0,
                 (double)proc_status_kb(w.pid, "RssFile") / 1024.0,
                 (double)hwm_kb / 1024.0);
            checkpoint = res->n_rss < N_CHECKPOINTS && i == cps[res->n_rss];
        }
        if (sm_proc_stop_pending(&b->stop, NULL)) {
            fail(why, cap, "interrupted");
            goto cleanup;
        }
    }
    res->rss_rate = (double)total / seconds(sm_proc_mono_ns() - t0);
    res->rss_expected = total + 2 * marks;
    long hwm = proc_status_kb(w.pid, "VmHWM");
    worker_exit x;
    if (worker_stop(&w, &x, why, cap) != 0)
        goto cleanup;
    /* VmHWM of the worker's own address space, read once it has handled
     * everything. Not the max_rss_kb of its event=stopped line: Linux
     * carries ru_maxrss across execve, so a worker forked from this bench
     * (which holds the pre-generated stream) would report our RSS. */
    res->peak_rss_mib = hwm > 0 ? (double)hwm / 1024.0 : 0;
    res->log_max_rss_mib = (double)x.max_rss_kb / 1024.0;
    res->rss_accepted = x.events;
    res->lmdb_used_mib = (double)x.store_used / MIB;
    char mdb[400];
    snprintf(mdb, sizeof mdb, "%s/data.mdb", w.store);
    res->lmdb_mib = (double)allocated_bytes(mdb) / MIB;
    result = 0;
cleanup:
    unsubscribe(sub);
    disconnect(lis);
    disconnect(pub);
    worker_cleanup(&w);
    sm_sim_destroy(sim);
    listener_destroy(&l);
    return result;
}

/* Section 5: 1 x 100 agents, then 10 x 10,000, same N; each stream to
 * the worker and to a plain subscriber (the bus alone: its subjects carry
 * the agent, and nats-server's cost per message is not the same for 100
 * subjects as for 400 k). */
static int run_agents(bench *b, char *why, size_t cap)
{
    const struct {
        uint32_t swarms, agents;
        const char *tag;
        rate_run *worker, *raw;
    } kinds[] = {
        {1, 100, "agents-100", &b->res.agents100, &b->res.raw100},
        {10, 10000, "agents-100k", &b->res.agents100k, &b->res.raw100k},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        stream st;
        note("agents: generating %llu events for %u x %u agents",
             (unsigned long long)b->opt.events, kinds[i].swarms, kinds[i].agents);
        if (stream_generate(&st, kinds[i].swarms, kinds[i].agents, b->opt.events,
                            why, cap) != 0)
            return -1;
        int rc = repeat_runs(b, &st, true, kinds[i].tag, kinds[i].worker, why, cap);
        if (rc == 0)
            rc = repeat_runs(b, &st, false, "raw", kinds[i].raw, why, cap);
        stream_free(&st);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Section 6: the main stream written to a recording (recv_ms = ts_ms) and
 * replayed offline in process, timed around sm_replay_offline. */
static int run_replay(bench *b, char *why, size_t cap)
{
    const stream *st = &b->main;
    char path[320];
    snprintf(path, sizeof path, "%s/stream.smrec", b->tmp);
    sm_recw *w = NULL;
    sm_status s = sm_recw_open(&w, path);
    for (size_t i = 0; s == SM_OK && i < st->n; i++) {
        const stream_msg *e = &st->msgs[i];
        s = sm_recw_append(w, e->ts_ms, st->arena + e->subject, NULL,
                           st->arena + e->payload, e->len);
    }
    sm_status cs = sm_recw_close(w);
    if (s == SM_OK)
        s = cs;
    if (s != SM_OK) {
        unlink(path);
        return fail(why, cap, "writing %s: %s", path, sm_status_str(s));
    }
    sm_config cfg;
    if (sm_config_init(&cfg) != SM_OK) {
        unlink(path);
        return fail(why, cap, "sm_config_init failed");
    }
    sm_log lg = {.out = stderr, .level = SM_LOG_WARN};
    sm_replay_opts opts;
    memset(&opts, 0, sizeof opts);
    sm_replay_stats rs;
    note("replay: %zu records offline, in process", st->n);
    int64_t t0 = sm_proc_mono_ns();
    s = sm_replay_offline(&cfg, &lg, path, &opts, &rs);
    int64_t wall = sm_proc_mono_ns() - t0;
    sm_config_free(&cfg);
    unlink(path);
    if (s != SM_OK)
        return fail(why, cap, "sm_replay_offline: %s: %s", sm_status_str(s), rs.error);
    b->res.replay_records = rs.records;
    b->res.replay_accepted = rs.accepted;
    b->res.replay_rate = (double)rs.records / seconds(wall);
    b->res.replay_loop_rate = rs.wall_ns > 0 ? (double)rs.records / seconds(rs.wall_ns) : 0;
    return 0;
}

/* ---------------------------------------------------------------- jetstream */

/* The stream (and the end samples) stored in a fresh input stream SWARM
 * as the worker would create it. */
static int js_fill(bench *b, jsCtx *js, char *why, size_t cap)
{
    const stream *st = &b->main;
    js_DeleteStream(js, "SWARM", NULL, NULL);
    js_DeleteStream(js, "MEDIC", NULL, NULL);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {"swarm.>"};
    sc.Name = "SWARM";
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    natsStatus s = js_AddStream(NULL, js, &sc, NULL, NULL);
    if (s != NATS_OK)
        return bus_fail(why, cap, "create the stream", s);
    note("jetstream: storing %zu events in stream SWARM", st->n);
    for (size_t i = 0; i < st->n && s == NATS_OK; i++) {
        const stream_msg *e = &st->msgs[i];
        while ((s = js_PublishAsync(js, st->arena + e->subject, st->arena + e->payload,
                                    (int)e->len, NULL)) == NATS_TIMEOUT)
            ;
    }
    if (s == NATS_OK)
        s = js_PublishAsyncComplete(js, NULL);
    natsConnection *nc = NULL;
    if (s == NATS_OK)
        s = connect_bus(b, "bench-js-end", &nc);
    if (s == NATS_OK)
        s = publish_end(nc, st->last_ts);
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(nc, WAIT_MS);
    disconnect(nc);
    if (s != NATS_OK)
        return bus_fail(why, cap, "store the stream", s);
    return 0;
}

/* A raw pull consumer on the stored stream: fetch batches of 256 (the
 * worker's js_fetch_batch), acknowledge each batch's last message (ack
 * all), until every message came. */
static int js_raw_once(bench *b, jsCtx *js, rate_run *out, char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    out->expected = b->main.n + 2;
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "bench-raw";
    cc.AckPolicy = js_AckAll;
    cc.MaxAckPending = 1 << 20;
    js_DeleteConsumer(js, "SWARM", "bench-raw", NULL, NULL);
    natsStatus s = js_AddConsumer(NULL, js, "SWARM", &cc, NULL, NULL);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "SWARM";
    so.Consumer = "bench-raw";
    natsSubscription *sub = NULL;
    if (s == NATS_OK)
        s = js_PullSubscribe(&sub, js, "swarm.>", "bench-raw", NULL, &so, NULL);
    if (s != NATS_OK)
        return bus_fail(why, cap, "raw pull consumer", s);
    note("jetstream: a raw pull consumer reads the %llu stored messages",
         (unsigned long long)out->expected);
    int64_t t0 = sm_proc_mono_ns(), give_up = t0 + (int64_t)WAIT_MS * 1000000LL;
    while (out->accepted < out->expected && sm_proc_mono_ns() < give_up &&
           !sm_proc_stop_pending(&b->stop, NULL)) {
        natsMsgList list = {0};
        if (natsSubscription_Fetch(&list, sub, 256, 1000, NULL) == NATS_OK && list.Count > 0) {
            out->accepted += (uint64_t)list.Count;
            natsMsg_Ack(list.Msgs[list.Count - 1], NULL);
        }
        natsMsgList_Destroy(&list);
    }
    int64_t t1 = sm_proc_mono_ns();
    natsSubscription_Destroy(sub);
    js_DeleteConsumer(js, "SWARM", "bench-raw", NULL, NULL);
    if (out->accepted < out->expected)
        return fail(why, cap, "the raw pull consumer got %llu of %llu",
                    (unsigned long long)out->accepted,
                    (unsigned long long)out->expected);
    out->rate = (double)b->main.n / seconds(t1 - t0);
    out->done = true;
    return 0;
}

/* The worker in JetStream mode on the same stored stream, from its start
 * (process start and stream checks included) to its answer to the end
 * samples. */
static int js_worker_once(bench *b, rate_run *out, char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    out->expected = b->main.n + 2;
    worker_proc w;
    memset(&w, 0, sizeof w);
    listener l;
    natsConnection *lis = NULL;
    natsSubscription *sub = NULL;
    int result = -1;
    natsStatus s;
    if (listener_init(&l, false, NULL, 0) != 0)
        return fail(why, cap, "out of memory");
    if ((s = connect_bus(b, "bench-listen", &lis)) != NATS_OK ||
        (s = subscribe(lis, &sub, END_ANSWER, on_answer, &l)) != NATS_OK) {
        bus_fail(why, cap, "connect/subscribe", s);
        goto cleanup;
    }
    note("jetstream: the worker (--input=jetstream) reads the stored stream");
    const char *extra[] = {"--input=jetstream", NULL};
    int64_t t0 = sm_proc_mono_ns();
    if (worker_start(b, "jetstream", &w, extra, why, cap) != 0)
        goto cleanup;
    wait_result r = listener_wait(&l, b->main.last_ts + 2, WAIT_MS, &b->stop);
    if (r != WAIT_OK) {
        wait_fail(r, &w, why, cap, "the end samples (" END_ANSWER ")");
        goto cleanup;
    }
    pthread_mutex_lock(&l.mu);
    int64_t done_ns = l.acked_ns;
    pthread_mutex_unlock(&l.mu);
    out->rate = (double)b->main.n / seconds(done_ns - t0);
    worker_exit x;
    if (worker_stop(&w, &x, why, cap) != 0)
        goto cleanup;
    out->accepted = x.events;
    out->cpu_s = (double)x.cpu_ms / 1000.0;
    out->done = true;
    result = 0;
cleanup:
    worker_cleanup(&w);
    unsubscribe(sub);
    disconnect(lis);
    listener_destroy(&l);
    return result;
}

static int run_js(bench *b, char *why, size_t cap)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsStatus s = connect_bus(b, "bench-js", &nc);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK) {
        disconnect(nc);
        return bus_fail(why, cap, "connect (JetStream)", s);
    }
    int rc = js_fill(b, js, why, cap);
    if (rc == 0)
        rc = js_raw_once(b, js, &b->res.js_raw, why, cap);
    if (rc == 0)
        rc = js_worker_once(b, &b->res.js_worker, why, cap);
    jsCtx_Destroy(js);
    disconnect(nc);
    return rc;
}

/* --------------------------------------------------------------- partitions */

/* Section 9: partitions. A stream of 40 swarms x 25 agents (10 swarms
 * would spread unevenly over 8 partitions) is stored once in streams
 * SWARM_P0..7 on part.<k>.>, each event on the subject the server's
 * partition(8,1) mapping would give it (sm_js_partition: the bench's
 * server has no mapping, so it publishes there directly). Each run
 * seeds the lease bucket so that the split is known from the start (a
 * worker takes the keys carrying its own id at once; lease_ttl 60 s, so
 * none is taken from the other during the run), starts the workers on
 * fresh stores and polls the partition consumers' acknowledged floors
 * (acks follow the LMDB commit) until every partition is done. */
#define PART_N 8
#define PART_SWARMS 40
#define PART_AGENTS 25

static int part_fill(jsCtx *js, const stream *st, uint64_t last[PART_N],
                     char *why, size_t cap)
{
    natsStatus s = NATS_OK;
    for (int k = 0; k < PART_N && s == NATS_OK; k++) {
        char name[32], subj[32];
        snprintf(name, sizeof name, "SWARM_P%d", k);
        snprintf(subj, sizeof subj, "part.%d.>", k);
        js_DeleteStream(js, name, NULL, NULL);
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        const char *subjects[] = {subj};
        sc.Name = name;
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        sc.Storage = js_FileStorage;
        s = js_AddStream(NULL, js, &sc, NULL, NULL);
        last[k] = 0;
    }
    if (s != NATS_OK)
        return bus_fail(why, cap, "create the partition streams", s);
    note("partitions: storing %zu events in 8 partition streams", st->n);
    for (size_t i = 0; i < st->n && s == NATS_OK; i++) {
        const stream_msg *e = &st->msgs[i];
        const char *subject = st->arena + e->subject;
        char swarm[64], part[200];
        const char *sw = subject + strlen("swarm.");
        size_t n = strcspn(sw, ".");
        snprintf(swarm, sizeof swarm, "%.*s", (int)n, sw);
        uint32_t k = sm_js_partition(swarm, PART_N);
        snprintf(part, sizeof part, "part.%u.%s", k, subject);
        last[k]++;
        while ((s = js_PublishAsync(js, part, st->arena + e->payload, (int)e->len,
                                    NULL)) == NATS_TIMEOUT)
            ;
    }
    if (s == NATS_OK)
        s = js_PublishAsyncComplete(js, NULL);
    if (s != NATS_OK)
        return bus_fail(why, cap, "store the partition streams", s);
    return 0;
}

/* A fresh lease bucket: partitions 0..3 held by w1, 4..7 by w1 (one
 * worker) or w2 (two). */
static natsStatus part_leases(jsCtx *js, int workers)
{
    js_DeleteKeyValue(js, "medic_leases");
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = "medic_leases";
    kc.History = 1;
    kc.StorageType = js_FileStorage;
    kvStore *kv = NULL;
    natsStatus s = js_CreateKeyValue(&kv, js, &kc);
    for (int k = 0; k < PART_N && s == NATS_OK; k++) {
        char key[8];
        snprintf(key, sizeof key, "p%d", k);
        s = kvStore_PutString(NULL, kv, key, workers == 2 && k >= PART_N / 2 ? "w2 0"
                                                                          : "w1 0");
    }
    kvStore_Destroy(kv);
    return s;
}

/* Whether every partition's owner acknowledged its last message. */
static bool part_done(jsCtx *js, int workers, const uint64_t last[PART_N])
{
    for (int k = 0; k < PART_N; k++) {
        char stream_name[32], consumer[64];
        snprintf(stream_name, sizeof stream_name, "SWARM_P%d", k);
        snprintf(consumer, sizeof consumer, "swarm-medic_w%d_P%d",
                 workers == 2 && k >= PART_N / 2 ? 2 : 1, k);
        jsConsumerInfo *ci = NULL;
        if (js_GetConsumerInfo(&ci, js, stream_name, consumer, NULL, NULL) != NATS_OK)
            return false;
        bool done = ci->AckFloor.Stream >= last[k];
        jsConsumerInfo_Destroy(ci);
        if (!done)
            return false;
    }
    return true;
}

static int part_once(bench *b, jsCtx *js, int workers, const uint64_t last[PART_N],
                     rate_run *out, char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    for (int k = 0; k < PART_N; k++)
        out->expected += last[k];
    js_DeleteStream(js, "MEDIC", NULL, NULL);
    natsStatus s = part_leases(js, workers);
    if (s != NATS_OK)
        return bus_fail(why, cap, "seed the lease bucket", s);
    worker_proc w[2];
    memset(w, 0, sizeof w);
    int result = -1;
    note("partitions: %d worker%s on 8 partitions", workers, workers == 2 ? "s" : "");
    int64_t t0 = sm_proc_mono_ns();
    for (int i = 0; i < workers; i++) {
        char tag[16], id[32];
        snprintf(tag, sizeof tag, "part%d-w%d", workers, i + 1);
        snprintf(id, sizeof id, "--worker-id=w%d", i + 1);
        const char *extra[] = {"--input=jetstream", "--partitions=8",
                               "--lease-ttl=60s", id, NULL};
        if (worker_start(b, tag, &w[i], extra, why, cap) != 0)
            goto cleanup;
    }
    int64_t give_up = t0 + (int64_t)WAIT_MS * 1000000LL, t1 = 0;
    while (!part_done(js, workers, last)) {
        if (sm_proc_mono_ns() > give_up) {
            fail(why, cap, "not every partition acknowledged within %d s", WAIT_MS / 1000);
            goto cleanup;
        }
        if (sm_proc_stop_pending(&b->stop, NULL)) {
            fail(why, cap, "interrupted");
            goto cleanup;
        }
        sleep_ms(20);
    }
    t1 = sm_proc_mono_ns();
    out->rate = (double)out->expected / seconds(t1 - t0);
    for (int i = 0; i < workers; i++) {
        worker_exit x;
        if (worker_stop(&w[i], &x, why, cap) != 0)
            goto cleanup;
        out->accepted += x.events;
    }
    out->done = true;
    result = 0;
cleanup:
    for (int i = 0; i < workers; i++)
        worker_cleanup(&w[i]);
    return result;
}

static int run_parts(bench *b, char *why, size_t cap)
{
    stream st;
    note("partitions: generating %llu events for %d x %d agents",
         (unsigned long long)b->opt.events, PART_SWARMS, PART_AGENTS);
    if (stream_generate(&st, PART_SWARMS, PART_AGENTS, b->opt.events, why, cap) != 0)
        return -1;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsStatus s = connect_bus(b, "bench-parts", &nc);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK) {
        disconnect(nc);
        stream_free(&st);
        return bus_fail(why, cap, "connect (JetStream)", s);
    }
    uint64_t last[PART_N];
    int rc = part_fill(js, &st, last, why, cap);
    stream_free(&st);
    results *r = &b->res;
    memset(&r->part_one, 0, sizeof r->part_one);
    memset(&r->part_two, 0, sizeof r->part_two);
    r->part_split[0] = r->part_split[1] = 0;
    for (int k = 0; k < PART_N; k++)
        r->part_split[k >= PART_N / 2] += last[k];
    /* alternated, so a change of load over the run hits both alike */
    for (uint64_t i = 0; rc == 0 && i < b->opt.repeat; i++) {
        for (int workers = 1; rc == 0 && workers <= 2; workers++) {
            rate_run one;
            rate_run *agg = workers == 1 ? &r->part_one : &r->part_two;
            rc = part_once(b, js, workers, last, &one, why, cap);
            if (rc != 0)
                break;
            agg->cpus[agg->n] = one.cpu_s;
            agg->rates[agg->n++] = one.rate;
            agg->expected = one.expected;
            if (agg->n == 1 || one.accepted < agg->accepted)
                agg->accepted = one.accepted;
        }
    }
    if (rc == 0) {
        rate_median(&r->part_one);
        rate_median(&r->part_two);
    }
    jsCtx_Destroy(js);
    disconnect(nc);
    return rc;
}

/* ------------------------------------------------------------------- report */

/* Section 7: request/reply under load. A requester thread sends, every
 * REQ_EVERY_NS, in turn a `select` and a `report` to the worker (swarm
 * s0 of the stream) and the same bytes to a plain responder, and times
 * each round trip, while the main thread paces the stream at 50,000
 * events/s into the worker. Requests start after REQ_WARMUP_MS, once
 * the swarm exists. */
#define REQ_EVERY_NS 3000000LL      /* one request every 3 ms */
#define REQ_WARMUP_MS 1000
#define REQ_TIMEOUT_MS 1000
#define REQ_ECHO_SUBJECT "bench.echo.request"

static const char *const rq_names[RQ_KINDS] = {"select", "report", "raw"};

typedef struct requester {
    natsConnection *nc;
    atomic_bool stop;
    int64_t *lat[RQ_KINDS];
    size_t n[RQ_KINDS], cap;
    uint64_t errors[RQ_KINDS];
} requester;

/* The plain responder: the request's bytes back. */
static void on_echo_request(natsConnection *nc, natsSubscription *sub,
                            natsMsg *m, void *closure)
{
    (void)sub;
    (void)closure;
    if (natsMsg_GetReply(m))
        natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m),
                               natsMsg_GetDataLength(m));
    natsMsg_Destroy(m);
}

static void *requester_main(void *arg)
{
    requester *q = arg;
    uint8_t sel[128], rep[64];
    Swarmmedic__V1__SelectRequest sq = SWARMMEDIC__V1__SELECT_REQUEST__INIT;
    sq.task_type = "code";
    size_t sel_len = protobuf_c_message_pack(&sq.base, sel);
    Swarmmedic__V1__ReportRequest rq = SWARMMEDIC__V1__REPORT_REQUEST__INIT;
    size_t rep_len = protobuf_c_message_pack(&rq.base, rep);
    for (int i = 0; i < REQ_WARMUP_MS / 10 && !atomic_load(&q->stop); i++)
        sleep_ms(10);
    const char *subjects[RQ_KINDS] = {"medic.s0.api.select", "medic.s0.api.report",
                                      REQ_ECHO_SUBJECT};
    int64_t next = sm_proc_mono_ns();
    for (unsigned k = 0; !atomic_load(&q->stop); k++) {
        sleep_until(next);
        next += REQ_EVERY_NS;
        int kind = (int)(k % RQ_KINDS);
        const void *data = kind == RQ_REPORT ? rep : sel;
        int len = (int)(kind == RQ_REPORT ? rep_len : sel_len);
        natsMsg *m = NULL;
        int64_t t0 = sm_proc_mono_ns();
        natsStatus s = natsConnection_Request(&m, q->nc, subjects[kind], data, len,
                                              REQ_TIMEOUT_MS);
        int64_t dt = sm_proc_mono_ns() - t0;
        const char *err = NULL;
        bool ok = s == NATS_OK &&
                  natsMsgHeader_Get(m, "Nats-Service-Error", &err) != NATS_OK;
        natsMsg_Destroy(m);
        if (!ok)
            q->errors[kind]++;
        else if (q->n[kind] < q->cap)
            q->lat[kind][q->n[kind]++] = dt;
    }
    return NULL;
}

static int run_requests(bench *b, char *why, size_t cap)
{
    req_stats *out = &b->res.req;
    worker_proc w;
    memset(&w, 0, sizeof w);
    memset(out, 0, sizeof *out);
    requester q;
    memset(&q, 0, sizeof q);
    probe_table pt;
    lat_stats paced;
    memset(&paced, 0, sizeof paced);
    natsConnection *pub = NULL, *echoc = NULL;
    natsSubscription *echos = NULL;
    pthread_t th;
    bool started = false;
    int result = -1;
    natsStatus s;
    size_t crossings = (size_t)(b->opt.latency_s * PACE_RATE / PROBE_EVERY / 2) + 16;
    q.cap = (size_t)(b->opt.latency_s * 1000000000LL / REQ_EVERY_NS) + 16;
    for (int k = 0; k < RQ_KINDS; k++)
        q.lat[k] = calloc(q.cap, sizeof *q.lat[k]);
    if (probe_table_init(&pt, crossings) != 0 || !q.lat[0] || !q.lat[1] || !q.lat[2]) {
        fail(why, cap, "out of memory");
        goto cleanup;
    }
    if (worker_start(b, "requests", &w, NULL, why, cap) != 0)
        goto cleanup;
    if ((s = connect_bus(b, "bench-echo", &echoc)) != NATS_OK ||
        (s = subscribe(echoc, &echos, REQ_ECHO_SUBJECT, on_echo_request, NULL)) != NATS_OK ||
        (s = connect_bus(b, "bench-requests", &q.nc)) != NATS_OK ||
        (s = connect_bus(b, "bench-pub", &pub)) != NATS_OK) {
        bus_fail(why, cap, "connect/subscribe", s);
        goto cleanup;
    }
    if (pthread_create(&th, NULL, requester_main, &q) != 0) {
        fail(why, cap, "cannot start the requester thread");
        goto cleanup;
    }
    started = true;
    note("requests: %llu s at %u events/s, a request every %.0f ms (select, "
         "report, raw in turn)", (unsigned long long)b->opt.latency_s, PACE_RATE,
         REQ_EVERY_NS / 1e6);
    if (paced_publish(b, pub, &pt, &paced, why, cap) != 0)
        goto cleanup;
    atomic_store(&q.stop, true);
    pthread_join(th, NULL);
    started = false;
    for (int k = 0; k < RQ_KINDS; k++) {
        qsort(q.lat[k], q.n[k], sizeof *q.lat[k], cmp_i64);
        out->n[k] = q.n[k];
        out->errors[k] = q.errors[k];
        out->p50_ms[k] = (double)percentile(q.lat[k], q.n[k], 0.50) / 1e6;
        out->p99_ms[k] = (double)percentile(q.lat[k], q.n[k], 0.99) / 1e6;
        out->max_ms[k] = q.n[k] ? (double)q.lat[k][q.n[k] - 1] / 1e6 : 0;
    }
    out->rate = paced.rate;
    worker_exit x;
    if (worker_stop(&w, &x, why, cap) != 0)
        goto cleanup;
    out->done = true;
    result = 0;
cleanup:
    if (started) {
        atomic_store(&q.stop, true);
        pthread_join(th, NULL);
    }
    unsubscribe(echos);
    disconnect(q.nc);
    disconnect(pub);
    disconnect(echoc);
    worker_cleanup(&w);
    probe_table_destroy(&pt);
    for (int k = 0; k < RQ_KINDS; k++)
        free(q.lat[k]);
    return result;
}

static const char *verdict(bool met)
{
    return met ? "met" : "NOT met";
}

static void row(const char *figure, const char *value, const char *target,
                const char *result)
{
    if (target[0] || result[0])
        printf("  %-36s %-34s %-28s %s\n", figure, value, target, result);
    else
        printf("  %-36s %s\n", figure, value);
}

static void failed_row(const results *r, section sec)
{
    char what[64];
    snprintf(what, sizeof what, "[%s]", section_names[sec]);
    char text[400];
    snprintf(text, sizeof text, "FAILED: %s", r->why[sec]);
    printf("  %-36s %s\n", what, text);
}

/* "812345 events/s", with the spread when there were several runs. */
static void rate_text(const rate_run *rr, char *out, size_t cap)
{
    if (rr->n > 1)
        snprintf(out, cap, "%.0f events/s (%.0f-%.0f)", rr->rate, rr->min, rr->max);
    else
        snprintf(out, cap, "%.0f events/s", rr->rate);
}

/* The requests section's rows. */
static void request_rows(const results *r)
{
    char v[128], t[64];
    const req_stats *q = &r->req;
    if (r->ran[SEC_REQUESTS] && !r->ok[SEC_REQUESTS])
        failed_row(r, SEC_REQUESTS);
    if (!q->done)
        return;
    for (int k = 0; k < RQ_KINDS; k++) {
        char label[64];
        snprintf(label, sizeof label, "%s round trip p50/p99/max", rq_names[k]);
        snprintf(v, sizeof v, "%.3f / %.3f / %.3f ms (n %zu, err %llu)",
                 q->p50_ms[k], q->p99_ms[k], q->max_ms[k], q->n[k],
                 (unsigned long long)q->errors[k]);
        row(label, v, k == RQ_RAW ? "(reference)" : "", "");
    }
    for (int k = RQ_SELECT; k <= RQ_REPORT; k++) {
        char label[64];
        double diff = q->p99_ms[k] - q->p99_ms[RQ_RAW];
        snprintf(label, sizeof label, "p99 %s - p99 raw request", rq_names[k]);
        snprintf(v, sizeof v, "%.3f ms at %.0f events/s", diff, q->rate);
        snprintf(t, sizeof t, "<= %.1f ms", TARGET_P99_DIFF_MS);
        row(label, v, t, verdict(diff <= TARGET_P99_DIFF_MS && q->errors[k] == 0));
    }
}

static void print_table(const bench *b)
{
    const results *r = &b->res;
    char v[128], t[64];
    printf("\nswarm-bench results: %ld CPUs, load average %s at start, nats-server at %s\n"
           "  stream: simgen seed %d, 10 swarms x 100 agents, %.0f events/s of event time\n",
           sysconf(_SC_NPROCESSORS_ONLN), r->load, b->nats.url, STREAM_SEED, STREAM_RATE);
    if (b->main.n)
        printf("  %zu events, %.1f bytes of payload on average, generated in %.2f s\n",
               b->main.n, (double)b->main.payload_bytes / (double)b->main.n, r->gen_s);
    if (b->opt.nats_config)
        printf("  nats-server started with -c %s\n", b->opt.nats_config);
    if (b->opt.repeat > 1)
        printf("  flat-out rates: median of %llu runs (min-max)\n",
               (unsigned long long)b->opt.repeat);
    else
        printf("  flat-out rates: one run each\n");
    printf("\n  %-36s %-34s %-28s %s\n", "figure", "value", "target", "verdict");

    if (r->ran[SEC_RAW] && !r->ok[SEC_RAW])
        failed_row(r, SEC_RAW);
    if (r->raw.done) {
        rate_text(&r->raw, v, sizeof v);
        row("raw bus rate", v, "(reference)", "");
        snprintf(v, sizeof v, "%llu of %llu", (unsigned long long)r->raw.accepted,
                 (unsigned long long)r->raw.expected);
        row("raw subscriber received", v, "", "");
    }
    if (r->ran[SEC_WORKER] && !r->ok[SEC_WORKER])
        failed_row(r, SEC_WORKER);
    if (r->worker.done) {
        rate_text(&r->worker, v, sizeof v);
        row("worker rate (LMDB on)", v, "", "");
        if (r->raw.done) {
            double ratio = r->worker.rate / r->raw.rate;
            snprintf(v, sizeof v, "%.2f x", ratio);
            snprintf(t, sizeof t, ">= %.1f x raw bus", TARGET_WORKER_RATIO);
            row("worker / raw bus", v, t, verdict(ratio >= TARGET_WORKER_RATIO));
        }
        uint64_t short_by = r->worker.expected > r->worker.accepted
                                ? r->worker.expected - r->worker.accepted : 0;
        snprintf(v, sizeof v, "%llu of %llu (%llu short)",
                 (unsigned long long)r->worker.accepted,
                 (unsigned long long)r->worker.expected, (unsigned long long)short_by);
        row("worker accepted", v, "all", verdict(short_by == 0));
    }
    if (r->ran[SEC_LATENCY] && !r->ok[SEC_LATENCY])
        failed_row(r, SEC_LATENCY);
    const lat_stats *lw = &r->lat_worker, *lr = &r->lat_raw;
    if (lw->done) {
        snprintf(v, sizeof v, "%.3f / %.3f / %.3f ms", lw->p50_ms, lw->p99_ms, lw->p999_ms);
        row("detection latency p50/p99/p99.9", v, "", "");
        snprintf(v, sizeof v, "%zu of %llu, max %.3f ms", lw->n,
                 (unsigned long long)lw->sent, lw->max_ms);
        row("  answers matched", v, "", "");
        snprintf(v, sizeof v, "%.0f events/s, lag <= %.2f ms", lw->rate, lw->max_late_ms);
        row("  paced publisher", v, "50000 events/s", "");
    }
    if (lr->done) {
        snprintf(v, sizeof v, "%.3f / %.3f / %.3f ms", lr->p50_ms, lr->p99_ms, lr->p999_ms);
        row("raw two-hop latency p50/p99/p99.9", v, "", "");
        snprintf(v, sizeof v, "%zu of %llu, max %.3f ms", lr->n,
                 (unsigned long long)lr->sent, lr->max_ms);
        row("  echoes matched", v, "", "");
        snprintf(v, sizeof v, "%.0f events/s, lag <= %.2f ms", lr->rate, lr->max_late_ms);
        row("  paced publisher", v, "50000 events/s", "");
    }
    if (lw->done && lr->done) {
        double diff = lw->p99_ms - lr->p99_ms;
        snprintf(v, sizeof v, "%.3f ms", diff);
        snprintf(t, sizeof t, "<= %.1f ms", TARGET_P99_DIFF_MS);
        row("p99 worker - p99 raw two-hop", v, t,
            verdict(diff <= TARGET_P99_DIFF_MS && lw->n == lw->sent));
    }
    if (r->ran[SEC_RSS] && !r->ok[SEC_RSS])
        failed_row(r, SEC_RSS);
    if (r->n_rss > 0) {
        char *p = v;
        size_t left = sizeof v;
        for (size_t i = 0; i < r->n_rss && left > 1; i++) {
            int k = snprintf(p, left, "%s%.1f", i ? " / " : "", r->rss_mib[i]);
            if (k < 0 || (size_t)k >= left)
                break;
            p += k;
            left -= (size_t)k;
        }
        snprintf(p, left, " MiB");
        bool flat = r->n_rss == N_CHECKPOINTS &&
                    r->rss_mib[N_CHECKPOINTS - 1] <= TARGET_RSS_GROWTH * r->rss_mib[0];
        snprintf(t, sizeof t, "flat (last <= %.2fx first)", TARGET_RSS_GROWTH);
        row("worker VmRSS at 10/20/50/100%", v, t, verdict(flat));
    }
    if (r->ok[SEC_RSS]) {
        snprintf(v, sizeof v, "%.1f MiB", r->peak_rss_mib);
        snprintf(t, sizeof t, "<= %.0f MiB", TARGET_RSS_MIB);
        row("worker peak RSS (VmHWM)", v, t, verdict(r->peak_rss_mib <= TARGET_RSS_MIB));
        snprintf(v, sizeof v, "largest rise %.1f MiB, by %llu events",
                 r->hwm_jump_mib, (unsigned long long)r->hwm_jump_at);
        row("  VmHWM between markers", v, "", "");
        snprintf(v, sizeof v, "%.1f MiB (its VmHWM, as it logs it)",
                 r->log_max_rss_mib);
        row("  worker's own max_rss_kb log field", v, "", "");
        snprintf(v, sizeof v, "%.1f MiB (used %.1f MiB)", r->lmdb_mib, r->lmdb_used_mib);
        row("LMDB data.mdb allocated", v, "", "");
        snprintf(v, sizeof v, "%.0f events/s, accepted %llu of %llu", r->rss_rate,
                 (unsigned long long)r->rss_accepted, (unsigned long long)r->rss_expected);
        row("  rss run (flow-controlled)", v, "", "");
    }
    if (r->ran[SEC_AGENTS] && !r->ok[SEC_AGENTS])
        failed_row(r, SEC_AGENTS);
    const rate_run *runs[2] = {&r->agents100, &r->agents100k};
    const char *labels[2] = {"worker rate, 1 x 100 agents", "worker rate, 10 x 10000 agents"};
    for (int i = 0; i < 2; i++)
        if (runs[i]->done) {
            rate_text(runs[i], v, sizeof v);
            row(labels[i], v, "", "");
            snprintf(v, sizeof v, "%llu of %llu", (unsigned long long)runs[i]->accepted,
                     (unsigned long long)runs[i]->expected);
            row("  worker accepted", v, "all",
                verdict(runs[i]->accepted >= runs[i]->expected));
            if (runs[i]->cpu_s > 0) {
                snprintf(v, sizeof v, "%.2f s (all its threads, median)",
                         runs[i]->cpu_s);
                row("  worker CPU for the run", v, "", "");
            }
            if (runs[i]->bus_cpu_s > 0) {
                snprintf(v, sizeof v, "%.2f s (median)", runs[i]->bus_cpu_s);
                row("  nats-server CPU for the run", v, "", "");
            }
        }
    const rate_run *raws[2] = {&r->raw100, &r->raw100k};
    const char *raw_labels[2] = {"raw bus rate, 1 x 100 agents",
                                 "raw bus rate, 10 x 10000 agents"};
    for (int i = 0; i < 2; i++)
        if (raws[i]->done) {
            rate_text(raws[i], v, sizeof v);
            row(raw_labels[i], v, "", "");
            if (raws[i]->bus_cpu_s > 0) {
                snprintf(v, sizeof v, "%.2f s (median)", raws[i]->bus_cpu_s);
                row("  nats-server CPU for the run", v, "", "");
            }
        }
    if (r->agents100.done && r->agents100k.done) {
        double ratio = r->agents100k.rate / r->agents100.rate;
        snprintf(v, sizeof v, "%.2f x", ratio);
        snprintf(t, sizeof t, ">= %.1f x", TARGET_AGENTS_RATIO);
        row("100k agents / 100 agents", v, t, verdict(ratio >= TARGET_AGENTS_RATIO));
        if (r->agents100.cpu_s > 0 && r->agents100k.cpu_s > 0) {
            /* the rate is the whole machine's: the bench, nats-server and
             * the worker share its cores; this is the worker's own part */
            snprintf(v, sizeof v, "%.2f x", r->agents100.cpu_s / r->agents100k.cpu_s);
            row("  worker CPU, 100 / 100k agents", v, "(the worker's share)", "");
        }
        if (r->raw100.done && r->raw100k.done) {
            /* the same streams without the worker: what 400 k subjects
             * cost the bus itself */
            snprintf(v, sizeof v, "%.2f x", r->raw100k.rate / r->raw100.rate);
            row("  raw bus, 100k agents / 100 agents", v, "(the bus alone)", "");
            snprintf(v, sizeof v, "%.2f x / %.2f x",
                     r->agents100.rate / r->raw100.rate,
                     r->agents100k.rate / r->raw100k.rate);
            row("  worker over raw bus, 100 / 100k", v, "", "");
        }
    }
    request_rows(r);
    if (r->ran[SEC_JS] && !r->ok[SEC_JS])
        failed_row(r, SEC_JS);
    if (r->js_raw.done && r->js_worker.done) {
        rate_text(&r->js_raw, v, sizeof v);
        row("raw JetStream pull consumer rate", v, "(reference)", "");
        rate_text(&r->js_worker, v, sizeof v);
        row("worker rate, --input=jetstream", v, "", "");
        double ratio = r->js_worker.rate / r->js_raw.rate;
        snprintf(v, sizeof v, "%.2f x", ratio);
        snprintf(t, sizeof t, ">= %.1f x raw pull", TARGET_JS_RATIO);
        row("  ratio to the raw pull consumer", v, t, verdict(ratio >= TARGET_JS_RATIO));
        snprintf(v, sizeof v, "%llu of %llu", (unsigned long long)r->js_worker.accepted,
                 (unsigned long long)r->js_worker.expected);
        row("  worker accepted", v, "all",
            verdict(r->js_worker.accepted >= r->js_worker.expected));
    }
    if (r->ran[SEC_PARTS] && !r->ok[SEC_PARTS])
        failed_row(r, SEC_PARTS);
    if (r->part_one.done && r->part_two.done) {
        rate_text(&r->part_one, v, sizeof v);
        row("partitions: one worker owning 8", v, "", "");
        rate_text(&r->part_two, v, sizeof v);
        row("partitions: two workers owning 4 each", v, "", "");
        snprintf(v, sizeof v, "%.2f x (events split %llu / %llu)",
                 r->part_two.rate / r->part_one.rate,
                 (unsigned long long)r->part_split[0], (unsigned long long)r->part_split[1]);
        row("  two / one", v, "(2 shared cores)", "");
        snprintf(v, sizeof v, "%llu and %llu of %llu", (unsigned long long)r->part_one.accepted,
                 (unsigned long long)r->part_two.accepted,
                 (unsigned long long)r->part_one.expected);
        row("  accepted (one, two)", v, "all",
            verdict(r->part_one.accepted >= r->part_one.expected &&
                    r->part_two.accepted >= r->part_two.expected));
    }
    if (r->ran[SEC_REPLAY] && !r->ok[SEC_REPLAY])
        failed_row(r, SEC_REPLAY);
    if (r->ok[SEC_REPLAY]) {
        snprintf(v, sizeof v, "%.0f events/s", r->replay_rate);
        snprintf(t, sizeof t, ">= %.0f events/s", TARGET_REPLAY_RATE);
        row("offline replay rate", v, t, verdict(r->replay_rate >= TARGET_REPLAY_RATE));
        snprintf(v, sizeof v, "%.0f events/s, %llu of %llu accepted", r->replay_loop_rate,
                 (unsigned long long)r->replay_accepted,
                 (unsigned long long)r->replay_records);
        row("  handling loop alone", v, "", "");
    }
}

/* One `name value unit` line per figure measured. */
static void print_figures(const results *r)
{
    printf("\n");
    if (r->js_raw.done)
        printf("js_raw_pull_rate %.0f events/s\n", r->js_raw.rate);
    if (r->js_worker.done)
        printf("js_worker_rate %.0f events/s\n", r->js_worker.rate);
    if (r->js_raw.done && r->js_worker.done)
        printf("js_worker_rate_ratio %.2f x\n", r->js_worker.rate / r->js_raw.rate);
    if (r->raw.done)
        printf("raw_bus_rate %.0f events/s\n", r->raw.rate);
    if (r->worker.done) {
        printf("worker_rate %.0f events/s\n", r->worker.rate);
        if (r->raw.done)
            printf("worker_rate_ratio %.2f x\n", r->worker.rate / r->raw.rate);
        printf("worker_dropped %llu events\n",
               (unsigned long long)(r->worker.expected > r->worker.accepted
                                        ? r->worker.expected - r->worker.accepted : 0));
    }
    if (r->lat_worker.done) {
        printf("worker_latency_p50 %.3f ms\n", r->lat_worker.p50_ms);
        printf("worker_latency_p99 %.3f ms\n", r->lat_worker.p99_ms);
        printf("worker_latency_p999 %.3f ms\n", r->lat_worker.p999_ms);
    }
    if (r->lat_raw.done) {
        printf("raw_twohop_latency_p50 %.3f ms\n", r->lat_raw.p50_ms);
        printf("raw_twohop_latency_p99 %.3f ms\n", r->lat_raw.p99_ms);
        printf("raw_twohop_latency_p999 %.3f ms\n", r->lat_raw.p999_ms);
    }
    if (r->lat_worker.done && r->lat_raw.done)
        printf("latency_p99_diff %.3f ms\n", r->lat_worker.p99_ms - r->lat_raw.p99_ms);
    for (size_t i = 0; i < r->n_rss; i++)
        printf("worker_rss_at_%llu %.1f MiB\n", (unsigned long long)r->rss_at[i],
               r->rss_mib[i]);
    if (r->ok[SEC_RSS]) {
        printf("worker_peak_rss %.1f MiB\n", r->peak_rss_mib);
        printf("lmdb_size %.1f MiB\n", r->lmdb_mib);
        printf("lmdb_used %.1f MiB\n", r->lmdb_used_mib);
    }
    if (r->agents100.done)
        printf("worker_rate_100_agents %.0f events/s\n", r->agents100.rate);
    if (r->agents100k.done)
        printf("worker_rate_100k_agents %.0f events/s\n", r->agents100k.rate);
    if (r->agents100.done && r->agents100k.done)
        printf("agents_rate_ratio %.2f x\n", r->agents100k.rate / r->agents100.rate);
    if (r->raw100.done && r->raw100k.done)
        printf("raw_rate_100_agents %.0f events/s\nraw_rate_100k_agents %.0f events/s\n"
               "raw_agents_rate_ratio %.2f x\n", r->raw100.rate, r->raw100k.rate,
               r->raw100k.rate / r->raw100.rate);
    if (r->agents100.bus_cpu_s > 0 && r->agents100k.bus_cpu_s > 0)
        printf("bus_cpu_100_agents %.2f s\nbus_cpu_100k_agents %.2f s\n",
               r->agents100.bus_cpu_s, r->agents100k.bus_cpu_s);
    if (r->agents100.cpu_s > 0 && r->agents100k.cpu_s > 0)
        printf("worker_cpu_100_agents %.2f s\nworker_cpu_100k_agents %.2f s\n",
               r->agents100.cpu_s, r->agents100k.cpu_s);
    if (r->ok[SEC_REPLAY])
        printf("replay_rate %.0f events/s\n", r->replay_rate);
    for (int k = 0; r->req.done && k < RQ_KINDS; k++) {
        printf("request_%s_p50 %.3f ms\n", rq_names[k], r->req.p50_ms[k]);
        printf("request_%s_p99 %.3f ms\n", rq_names[k], r->req.p99_ms[k]);
        printf("request_%s_errors %llu\n", rq_names[k],
               (unsigned long long)r->req.errors[k]);
    }
    if (r->part_one.done)
        printf("partitions_one_worker_rate %.0f events/s\n", r->part_one.rate);
    if (r->part_two.done)
        printf("partitions_two_workers_rate %.0f events/s\n", r->part_two.rate);
    if (r->part_one.done && r->part_two.done)
        printf("partitions_two_over_one %.2f x\n", r->part_two.rate / r->part_one.rate);
    for (int s = 0; s < SEC_COUNT; s++)
        if (r->ran[s] && !r->ok[s])
            printf("# %s failed: %s\n", section_names[s], r->why[s]);
}

/* --------------------------------------------------------------------- main */

static void usage(FILE *to)
{
    fprintf(to,
        "usage: swarm-bench [--bin DIR] [--events N] [--latency-seconds S]\n"
        "                   [--rss-events N] [--repeat N] [--nats-config FILE]\n"
        "                   [--quick] [--only SECTION]\n\n"
        "Benchmarks swarm-medic against the raw bus on a private nats-server.\n"
        "  --bin DIR              where swarm-medic is (default build/bin)\n"
        "  --events N             events per flat-out run (default 1000000)\n"
        "  --latency-seconds S    length of each paced run (default 20)\n"
        "  --rss-events N         events of the RSS run (default 10000000)\n"
        "  --repeat N             flat-out runs of each kind, median reported\n"
        "                         (default 3, at most 9)\n"
        "  --nats-config FILE     start the private nats-server with -c FILE\n"
        "                         (its own address, port, JetStream and store\n"
        "                         directory still apply): server tuning or\n"
        "                         subject mappings, measured on both sides\n"
        "  --quick                small sizes for a smoke run (100000 events,\n"
        "                         3 s, 500000 RSS events, 1 repeat)\n"
        "  --only SECTION         raw, worker, latency, rss, agents, replay,\n"
        "                         requests, jetstream or partitions\n");
}

static bool parse_count(const char *text, uint64_t min, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || v < min)
        return false;
    *out = v;
    return true;
}

/* Returns 0, or -1 after printing what is wrong. */
static int parse_opts(int argc, char **argv, bench_opts *o)
{
    uint64_t events = 0, latency = 0, rss = 0, repeat = 0;
    o->bin = "build/bin";
    o->only = -1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "swarm-bench: unexpected argument '%s'\n", arg);
            return -1;
        }
        char name[32];
        const char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        snprintf(name, sizeof name, "%.*s", (int)nlen, arg + 2);
        if (strcmp(name, "quick") == 0 || strcmp(name, "help") == 0) {
            if (name[0] == 'q')
                o->quick = true;
            else
                o->help = true;
            continue;
        }
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value) {
            fprintf(stderr, "swarm-bench: --%s needs a value\n", name);
            return -1;
        }
        bool ok = true;
        if (strcmp(name, "bin") == 0)
            o->bin = value;
        else if (strcmp(name, "events") == 0)
            ok = parse_count(value, 1, &events);
        else if (strcmp(name, "latency-seconds") == 0)
            ok = parse_count(value, 1, &latency);
        else if (strcmp(name, "rss-events") == 0)
            ok = parse_count(value, 100, &rss);
        else if (strcmp(name, "nats-config") == 0)
            o->nats_config = value;
        else if (strcmp(name, "repeat") == 0)
            ok = parse_count(value, 1, &repeat) && repeat <= MAX_REPEAT;
        else if (strcmp(name, "only") == 0) {
            for (int s = 0; s < SEC_COUNT; s++)
                if (strcmp(value, section_names[s]) == 0)
                    o->only = s;
            ok = o->only >= 0;
        } else {
            fprintf(stderr, "swarm-bench: unknown flag --%s\n", name);
            return -1;
        }
        if (!ok) {
            fprintf(stderr, "swarm-bench: bad value '%s' for --%s\n", value, name);
            return -1;
        }
    }
    o->events = events ? events : (o->quick ? 100000 : 1000000);
    o->latency_s = latency ? latency : (o->quick ? 3 : 20);
    o->rss_events = rss ? rss : (o->quick ? 500000 : 10000000);
    o->repeat = repeat ? repeat : (o->quick ? 1 : 3);
    return 0;
}

static bool wanted(const bench *b, section s)
{
    return b->opt.only < 0 || b->opt.only == (int)s;
}

int main(int argc, char **argv)
{
    bench b;
    memset(&b, 0, sizeof b);
    if (parse_opts(argc, argv, &b.opt) != 0) {
        usage(stderr);
        return 2;
    }
    if (b.opt.help) {
        usage(stdout);
        return 0;
    }
    /* Blocked before any thread exists, so every thread inherits it; the
     * loops poll for them and clean up. Children re-handle their own. */
    sigemptyset(&b.stop);
    sigaddset(&b.stop, SIGINT);
    sigaddset(&b.stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &b.stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    int (*const runs[SEC_COUNT])(bench *, char *, size_t) = {
        run_raw, run_worker, run_latency, run_rss, run_agents, run_replay,
        run_requests, run_js, run_parts,
    };
    results *r = &b.res;
    int exit_code = 0;
    read_load(r->load, sizeof r->load);
    const char *base = getenv("TMPDIR");
    snprintf(b.tmp, sizeof b.tmp, "%s/swarm-bench-XXXXXX",
             base && base[0] ? base : "/tmp");
    if (!mkdtemp(b.tmp)) {
        fprintf(stderr, "swarm-bench: mkdtemp %s: %s\n", b.tmp, strerror(errno));
        return 1;
    }
    char natsdir[300];
    snprintf(natsdir, sizeof natsdir, "%s/nats", b.tmp);
    mkdir(natsdir, 0700);
    char jsdir[320];
    snprintf(jsdir, sizeof jsdir, "%s/jetstream", b.tmp);
    /* A config file first: the flags after it win over its settings. */
    const char *nats_args[7], **arg = nats_args;
    if (b.opt.nats_config) {
        *arg++ = "-c";
        *arg++ = b.opt.nats_config;
    }
    *arg++ = "-js";
    *arg++ = "-sd";
    *arg++ = jsdir;
    *arg = NULL;
    sm_status s = sm_harness_nats_start(&b.nats, natsdir, 0, nats_args);
    if (s != SM_OK) {
        fprintf(stderr, "swarm-bench: nats-server did not start: %s\n", sm_status_str(s));
        remove_tree(b.tmp);
        return 1;
    }
    note("nats-server at %s; temp dir %s", b.nats.url, b.tmp);

    bool need_main = wanted(&b, SEC_RAW) || wanted(&b, SEC_WORKER) ||
                     wanted(&b, SEC_REPLAY) || wanted(&b, SEC_JS);
    if (need_main) {
        note("generating %llu events (10 x 100 agents) into memory",
             (unsigned long long)b.opt.events);
        int64_t t0 = sm_proc_mono_ns();
        char why[320];
        if (stream_generate(&b.main, 10, 100, b.opt.events, why, sizeof why) != 0) {
            note("%s", why);
            need_main = false;
        }
        r->gen_s = seconds(sm_proc_mono_ns() - t0);
    }
    for (int sec = 0; sec < SEC_COUNT; sec++) {
        if (!wanted(&b, (section)sec) || sm_proc_stop_pending(&b.stop, NULL))
            continue;
        r->ran[sec] = true;
        if (!need_main && sec != SEC_RSS && sec != SEC_LATENCY && sec != SEC_AGENTS &&
            sec != SEC_REQUESTS && sec != SEC_PARTS) {
            snprintf(r->why[sec], sizeof r->why[sec], "the stream could not be generated");
            continue;
        }
        r->ok[sec] = runs[sec](&b, r->why[sec], sizeof r->why[sec]) == 0;
        if (!r->ok[sec])
            note("%s failed: %s", section_names[sec], r->why[sec]);
    }
    print_table(&b);
    print_figures(r);
    for (int sec = 0; sec < SEC_COUNT; sec++)
        if (r->ran[sec] && !r->ok[sec])
            exit_code = 1;
    stream_free(&b.main);
    sm_harness_nats_stop(&b.nats);
    remove_tree(b.tmp);
    nats_Close();
    return exit_code;
}
