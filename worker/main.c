/*
 * main.c - the swarm-medic program.
 *
 *   swarm-medic [--config FILE] [--setting=value ...]         run the worker
 *   swarm-medic watch [--count N]                             print conclusions
 *   swarm-medic record --out FILE [--subject S]... [--count N]
 *   swarm-medic replay FILE [--out-rec F] [--out-json F|-] [--store-dir D]
 *                          (--store-dir: replay with persistence into D)
 *   swarm-medic replay FILE --to-bus [--speed recorded|fast|K]
 *   swarm-medic backtest FILE --b SETTING=VALUE... [--b-config FILE]
 *   swarm-medic score FILE --labels F [--b SETTING=VALUE...] [--floor K=V,...]
 *   swarm-medic [COMMAND] --check-config [...]   validate, print, exit 0/1
 *   swarm-medic --help
 *
 * Settings come from defaults, then the JSON file, then SWARM_MEDIC_*
 * environment variables, then flags (config.h). A bad setting is reported
 * with its name and origin and the program exits 2 before touching the
 * store or the bus.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "worker.h"

/* The commands beside the worker live in worker/tools/ (libsmtools.a). */
#include "tools/backtest.h"
#include "tools/record.h"
#include "tools/replay.h"
#include "tools/score.h"
#include "tools/watch.h"

extern char **environ;

typedef enum command {
    CMD_RUN = 0,
    CMD_WATCH,
    CMD_RECORD,
    CMD_REPLAY,
    CMD_BACKTEST,
    CMD_SCORE,
} command;

#define MAX_LIST 32

typedef struct args {
    command cmd;
    bool help;
    bool check_config;          /* --check-config: validate, print, exit */
    const char *config_file;
    const char *file;           /* replay / backtest input */
    int64_t count;              /* watch, record: stop after N messages */
    const char *out;            /* record */
    const char *subjects[MAX_LIST + 1];
    size_t n_subjects;
    const char *out_rec;        /* replay */
    const char *out_json;
    bool to_bus;
    double speed;               /* replay --to-bus: 0 fast, 1 recorded, k */
    const char *store_dir;      /* --store-dir on the command line */
    const char *b_sets[MAX_LIST];
    size_t n_b_sets;
    const char *b_config;
    const char *labels;         /* score */
    const char *scenario;
    const char *floors[MAX_LIST];
    size_t n_floors;
} args;

static const char *const command_names[] = {"", "watch", "record", "replay",
                                            "backtest", "score"};

static void usage(const sm_config *defaults)
{
    printf("usage: swarm-medic [COMMAND] [--config FILE] [--SETTING=VALUE ...]\n\n"
           "Watches a multi-agent swarm on NATS and publishes bottlenecks.\n"
           "Commands (none: run the worker):\n"
           "  watch [--count N]          print the conclusions on the bus readably\n"
           "  record --out FILE [--subject S]... [--count N]\n"
           "                             record bus traffic (default subject swarm.>)\n"
           "  replay FILE [--out-rec F] [--out-json F|-] [--store-dir D]\n"
           "                             replay offline through the pipeline\n"
           "                             (--store-dir: with persistence in D)\n"
           "  replay FILE --to-bus [--speed recorded|fast|K]\n"
           "                             publish a recording to the bus\n"
           "  backtest FILE --b SETTING=VALUE... [--b-config FILE]\n"
           "                             replay under the settings (A) and with the\n"
           "                             --b changes (B); print decisions that differ\n"
           "  score FILE --labels F [--b SETTING=VALUE...] [--floor K=V,...]\n"
           "                             replay offline (with the --b changes) and\n"
           "                             score the conclusions against labels\n"
           "                             (a scenario: make eval, or swarm-sim\n"
           "                             --scenario F --record R --labels-out L,\n"
           "                             then score R --labels L)\n"
           "  --config FILE              JSON file of settings\n"
           "  --check-config             validate the settings (file, environment,\n"
           "                             flags), print them and exit: 0 valid, 1 not;\n"
           "                             connects to nothing\n\n"
           "Settings (also SWARM_MEDIC_<NAME> in the environment):\n");
    sm_config_usage(defaults, stdout);
}

/* --count N: a whole number, 0 for no limit. */
static bool parse_count(const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < 0)
        return false;
    *out = n;
    return true;
}

/* --speed recorded|fast|K: 1, 0, or K > 0 times the recorded pace. */
static bool parse_speed(const char *v, double *out)
{
    if (strcmp(v, "recorded") == 0 || strcmp(v, "fast") == 0) {
        *out = v[0] == 'r' ? 1.0 : 0.0;
        return true;
    }
    char *end;
    errno = 0;
    double k = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(k) || k <= 0)
        return false;
    *out = k;
    return true;
}

/* Program-level flags (not settings). Returns 1 if `name` is one (its
 * value stored), 0 if not, -1 if its value is bad (err says why). */
static int program_flag(args *a, const char *name, const char *value,
                        char *err, size_t errcap)
{
    if (strcmp(name, "count") == 0 || strcmp(name, "speed") == 0) {
        bool ok = name[0] == 'c' ? parse_count(value, &a->count)
                                 : parse_speed(value, &a->speed);
        if (!ok)
            snprintf(err, errcap, "--%s: bad value '%s' (%s)", name, value,
                     name[0] == 'c' ? "a whole number, 0 for no limit"
                                    : "recorded, fast or a factor over 0");
        return ok ? 1 : -1;
    }
    if (strcmp(name, "config") == 0) a->config_file = value;
    else if (strcmp(name, "out") == 0) a->out = value;
    else if (strcmp(name, "out-rec") == 0) a->out_rec = value;
    else if (strcmp(name, "out-json") == 0) a->out_json = value;
    else if (strcmp(name, "b-config") == 0) a->b_config = value;
    else if (strcmp(name, "labels") == 0) a->labels = value;
    else if (strcmp(name, "scenario") == 0) a->scenario = value;
    else if (strcmp(name, "floor") == 0 && a->n_floors < MAX_LIST)
        a->floors[a->n_floors++] = value;
    else if (strcmp(name, "subject") == 0 && a->n_subjects < MAX_LIST)
        a->subjects[a->n_subjects++] = value;
    else if (strcmp(name, "b") == 0 && a->n_b_sets < MAX_LIST)
        a->b_sets[a->n_b_sets++] = value;
    else
        return 0;
    return 1;
}

/* A setting that names the store (store-dir, store_dir): replay honours
 * it only when given here, on its command line. */
static bool names_store(const char *name)
{
    return strcmp(name, "store-dir") == 0 || strcmp(name, "store_dir") == 0;
}

/* What the flags mean together, once all are read. */
static sm_status check_args(const args *a, char *err, size_t errcap)
{
    if (a->store_dir && a->cmd == CMD_REPLAY && a->to_bus) {
        snprintf(err, errcap, "--store-dir: replay --to-bus publishes a "
                 "recording and opens no store");
        return SM_ERR_CONFIG;
    }
    return SM_OK;
}

/* Pass 1 (apply false) reads the command and program flags; pass 2 applies
 * settings to cfg. */
static sm_status parse_args(int argc, char **argv, args *a, sm_config *cfg,
                            bool apply, char *err, size_t errcap)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (i == 1 && arg[0] != '-') {
            for (int c = CMD_WATCH; c <= CMD_SCORE; c++)
                if (strcmp(arg, command_names[c]) == 0)
                    a->cmd = (command)c;
            if (a->cmd == CMD_RUN) {
                snprintf(err, errcap, "unknown command '%s'", arg);
                return SM_ERR_CONFIG;
            }
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            a->help = true;
            continue;
        }
        if (strcmp(arg, "--to-bus") == 0) {
            a->to_bus = true;
            continue;
        }
        if (strcmp(arg, "--check-config") == 0) {
            a->check_config = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            if (apply && arg == a->file)
                continue;           /* taken in pass 1 */
            if (!a->file && (a->cmd == CMD_REPLAY || a->cmd == CMD_BACKTEST ||
                             a->cmd == CMD_SCORE)) {
                a->file = arg;
                continue;
            }
            snprintf(err, errcap, "unexpected argument '%s'", arg);
            return SM_ERR_CONFIG;
        }
        char name[64];
        const char *value;
        const char *eq = strchr(arg + 2, '=');
        size_t nlen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (nlen == 0 || nlen >= sizeof name) {
            snprintf(err, errcap, "bad flag '%s'", arg);
            return SM_ERR_CONFIG;
        }
        memcpy(name, arg + 2, nlen);
        name[nlen] = 0;
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, errcap, "flag --%s needs a value", name);
            return SM_ERR_CONFIG;
        }
        if (!apply) {
            if (program_flag(a, name, value, err, errcap) < 0)
                return SM_ERR_CONFIG;
            if (names_store(name))
                a->store_dir = value;
            continue;
        }
        args scratch = {0};
        if (program_flag(&scratch, name, value, err, errcap) != 0)
            continue;
        sm_status s = sm_config_set(cfg, name, value, "command line", err, errcap);
        if (s != SM_OK)
            return s;
    }
    return SM_OK;
}

static sm_status load_config(int argc, char **argv, args *a, sm_config *cfg,
                             char *err, size_t errcap)
{
    sm_status s = parse_args(argc, argv, a, cfg, false, err, errcap);
    if (s == SM_OK)
        s = check_args(a, err, errcap);
    if (s == SM_OK && a->config_file)
        s = sm_config_load_file(cfg, a->config_file, err, errcap);
    if (s == SM_OK)
        s = sm_config_load_env(cfg, environ, err, errcap);
    if (s == SM_OK)
        s = parse_args(argc, argv, a, cfg, true, err, errcap);
    if (s == SM_OK)
        s = sm_config_validate(cfg, err, errcap);
    return s;
}

/* Serves /metrics, /healthz and /readyz on http_listen from what w
 * publishes into a new *m. */
static sm_status start_http(const sm_config *cfg, const sm_log *log,
                            sm_worker *w, sm_metrics **m, sm_http **http)
{
    char err[512];
    sm_status s = sm_metrics_create(m);
    if (s == SM_OK)
        s = sm_http_start(http, cfg->http_listen, *m, err, sizeof err);
    else
        snprintf(err, sizeof err, "out of memory");
    if (s != SM_OK) {
        sm_log_write(log, SM_LOG_ERROR, "http_listen_failed", "detail=\"%s\"", err);
        return s;
    }
    sm_worker_set_metrics(w, *m);
    sm_log_write(log, SM_LOG_INFO, "http_listening",
                 "listen=%s port=%d paths=\"/metrics /healthz /readyz\"",
                 cfg->http_listen, sm_http_port(*http));
    return SM_OK;
}

static int run_worker(const sm_config *cfg, const sm_log *log,
                      const sigset_t *stop)
{
    sm_worker *w = NULL;
    sm_metrics *m = NULL;
    sm_http *http = NULL;
    sm_status s = sm_worker_create(&w, cfg, log);
    if (s == SM_OK && cfg->http_listen[0])
        s = start_http(cfg, log, w, &m, &http);
    if (s == SM_OK)
        s = sm_worker_open(w);
    if (s == SM_OK)
        s = sm_worker_connect(w, stop);
    if (s == SM_OK)
        s = sm_worker_run(w, stop);
    if (s != SM_OK)
        sm_log_write(log, SM_LOG_ERROR, "worker_failed", "status=\"%s\"",
                     sm_status_str(s));
    sm_http_stop(http);
    sm_worker_destroy(w);
    sm_metrics_destroy(m);
    return s == SM_OK ? 0 : 1;
}

/* --check-config: the verdict in one sentence, then what would run. */
static int check_config(const args *a, const sm_config *cfg, sm_status s,
                        const char *err)
{
    if (s != SM_OK) {
        fprintf(stderr, "swarm-medic: configuration invalid: %s\n", err);
        return 1;
    }
    printf("swarm-medic: configuration valid; would run %s%s with:\n",
           a->cmd == CMD_RUN ? "the worker" : command_names[a->cmd],
           a->config_file ? " (file, environment and flags)"
                          : " (defaults, environment and flags)");
    sm_config_print(cfg, stdout);
    return 0;
}

static int run_record(const sm_config *cfg, const sm_log *log, const args *a,
                      const sigset_t *stop)
{
    if (!a->out) {
        fprintf(stderr, "swarm-medic record: --out FILE is required\n");
        return 2;
    }
    uint64_t written = 0;
    sm_status s = sm_record_run(cfg, log, a->out,
                                a->n_subjects ? a->subjects : NULL, stop,
                                a->count, &written);
    fprintf(stderr, "recorded %llu messages to %s (%s)\n",
            (unsigned long long)written, a->out, sm_status_str(s));
    return s == SM_OK ? 0 : 1;
}

static void print_replay(const char *path, const sm_replay_stats *st)
{
    double secs = (double)st->wall_ns / 1e9;
    fprintf(stderr, "replayed %s: %llu records, %llu accepted, %llu dead-lettered, "
                    "%llu conclusions, %.3f s, %.0f records/s\n",
            path, (unsigned long long)st->records,
            (unsigned long long)st->accepted, (unsigned long long)st->deadletters,
            (unsigned long long)st->outputs, secs,
            secs > 0 ? (double)st->records / secs : 0.0);
    if (st->error[0])
        fprintf(stderr, "replay stopped early: %s\n", st->error);
}

static int run_replay(const sm_config *cfg, const sm_log *log, const args *a,
                      const sigset_t *stop)
{
    if (!a->file) {
        fprintf(stderr, "swarm-medic replay: which recording?\n");
        return 2;
    }
    sm_replay_stats st;
    sm_status s;
    if (a->to_bus) {
        s = sm_replay_to_bus(cfg, log, a->file, a->speed, stop, &st);
    } else {
        FILE *json = NULL;
        if (a->out_json)
            json = strcmp(a->out_json, "-") == 0 ? stdout : fopen(a->out_json, "w");
        if (a->out_json && !json) {
            fprintf(stderr, "swarm-medic replay: cannot write %s\n", a->out_json);
            return 1;
        }
        sm_replay_opts o = {.out_rec = a->out_rec, .out_json = json,
                            .store_dir = a->store_dir ? cfg->store_dir : NULL};
        s = sm_replay_offline(cfg, log, a->file, &o, &st);
        if (json && json != stdout && fclose(json) != 0 && s == SM_OK)
            s = SM_ERR_IO;
    }
    print_replay(a->file, &st);
    return s == SM_OK ? 0 : 1;
}

/* B = A's settings, then the B file, then the --b changes. On error b
 * holds nothing to free and err says why. */
static sm_status config_b(sm_config *b, const sm_config *cfg, const args *a,
                          char *err, size_t errcap)
{
    sm_status s = sm_config_copy(b, cfg);
    if (s != SM_OK) {
        snprintf(err, errcap, "out of memory");
        return s;
    }
    if (a->b_config)
        s = sm_config_load_file(b, a->b_config, err, errcap);
    for (size_t i = 0; s == SM_OK && i < a->n_b_sets; i++) {
        char name[64];
        const char *eq = strchr(a->b_sets[i], '=');
        size_t n = eq ? (size_t)(eq - a->b_sets[i]) : 0;
        if (!eq || n == 0 || n >= sizeof name) {
            snprintf(err, errcap, "--b wants SETTING=VALUE, not '%s'", a->b_sets[i]);
            s = SM_ERR_CONFIG;
            break;
        }
        memcpy(name, a->b_sets[i], n);
        name[n] = 0;
        s = sm_config_set(b, name, eq + 1, "--b", err, errcap);
    }
    if (s == SM_OK)
        s = sm_config_validate(b, err, errcap);
    if (s != SM_OK)
        sm_config_free(b);
    return s;
}

static int run_backtest(const sm_config *cfg, const sm_log *log, const args *a)
{
    if (!a->file || (a->n_b_sets == 0 && !a->b_config)) {
        fprintf(stderr, "swarm-medic backtest FILE --b SETTING=VALUE... "
                        "[--b-config FILE]\n");
        return 2;
    }
    sm_config b;
    char err[512];
    sm_status s = config_b(&b, cfg, a, err, sizeof err);
    if (s != SM_OK) {
        fprintf(stderr, "swarm-medic backtest: %s\n", err);
        return 2;
    }
    sm_backtest_result r;
    s = sm_backtest_run(cfg, &b, log, a->file, stdout, &r);
    sm_config_free(&b);
    return s == SM_OK ? 0 : 1;
}

/* Scores the replay under the settings with the --b changes. */
static int run_score(const sm_config *cfg, const sm_log *log, const args *a)
{
    sm_config b;
    char err[512];
    if (config_b(&b, cfg, a, err, sizeof err) != SM_OK) {
        fprintf(stderr, "swarm-medic score: %s\n", err);
        return 2;
    }
    if (a->scenario) {
        /* The simulator links the product, never the reverse. */
        fprintf(stderr, "swarm-medic score: no --scenario here; run swarm-sim "
                        "--scenario %s --record R --labels-out L && swarm-medic "
                        "score R --labels L (or make eval)\n", a->scenario);
        sm_config_free(&b);
        return 2;
    }
    sm_score_cli cli = {.rec_path = a->file, .labels_path = a->labels,
                        .floors = a->floors, .n_floors = a->n_floors};
    int rc = sm_score_main(&b, log, &cli, stdout, stderr);
    sm_config_free(&b);
    return rc;
}

int main(int argc, char **argv)
{
    /* Block the stop signals before any thread exists, so that cnats's
     * threads inherit the mask and the main loop alone picks them up. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    sm_config cfg;
    if (sm_config_init(&cfg) != SM_OK)
        return 1;
    args a = {.speed = 1.0};
    char err[512];
    sm_log log = {.out = stderr, .level = SM_LOG_INFO};
    sm_status s = load_config(argc, argv, &a, &cfg, err, sizeof err);
    if (a.help) {
        sm_config defaults;
        sm_config_init(&defaults);
        usage(&defaults);
        sm_config_free(&defaults);
        sm_config_free(&cfg);
        return 0;
    }
    if (a.check_config) {
        int rc = check_config(&a, &cfg, s, err);
        sm_config_free(&cfg);
        return rc;
    }
    if (s != SM_OK) {
        fprintf(stderr, "swarm-medic: %s\n", err);
        sm_log_write(&log, SM_LOG_ERROR, "config_rejected", "detail=\"%s\"", err);
        sm_config_free(&cfg);
        return 2;
    }
    log.level = (sm_log_level)sm_log_level_parse(cfg.log_level);
    log.format = (sm_log_format)sm_log_format_parse(cfg.log_format);
    int rc = 0;
    switch (a.cmd) {
    case CMD_RUN: rc = run_worker(&cfg, &log, &stop); break;
    case CMD_WATCH:
        rc = sm_watch_run(&cfg, &log, stdout, &stop, a.count) == SM_OK ? 0 : 1;
        break;
    case CMD_RECORD: rc = run_record(&cfg, &log, &a, &stop); break;
    case CMD_REPLAY: rc = run_replay(&cfg, &log, &a, &stop); break;
    case CMD_BACKTEST: rc = run_backtest(&cfg, &log, &a); break;
    case CMD_SCORE: rc = run_score(&cfg, &log, &a); break;
    }
    sm_config_free(&cfg);
    sm_bus_library_close(2000);
    return rc;
}
