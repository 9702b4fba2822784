/*
 * main.c - the swarm-medic program.
 *
 *   swarm-medic [--config FILE] [--setting=value ...]         run the worker
 *   swarm-medic watch [--count N] [--setting=value ...]       print conclusions
 *   swarm-medic --help
 *
 * Settings come from defaults, then the JSON file, then SWARM_MEDIC_*
 * environment variables, then flags (config.h). A bad setting is reported
 * with its name and origin and the program exits 2 before touching the
 * store or the bus.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "config.h"
#include "log.h"
#include "watch.h"
#include "worker.h"

extern char **environ;

typedef struct args {
    bool watch;
    bool help;
    const char *config_file;
    int64_t watch_count;
} args;

static void usage(const sm_config *defaults)
{
    printf("usage: swarm-medic [watch] [--config FILE] [--SETTING=VALUE ...]\n\n"
           "Watches a multi-agent swarm on NATS and publishes bottlenecks.\n"
           "  watch                 print the conclusions on the bus readably\n"
           "  --count N             (watch) exit after N messages\n"
           "  --config FILE         JSON file of settings\n\n"
           "Settings (also SWARM_MEDIC_<NAME> in the environment):\n");
    sm_config_usage(defaults, stdout);
}

/* Pass 1: program-level flags; pass 2 (apply) applies settings. */
static sm_status parse_args(int argc, char **argv, args *a, sm_config *cfg,
                            bool apply, char *err, size_t errcap)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (i == 1 && strcmp(arg, "watch") == 0) {
            a->watch = true;
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            a->help = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
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
        if (strcmp(name, "config") == 0) {
            a->config_file = value;
        } else if (strcmp(name, "count") == 0) {
            a->watch_count = atoll(value);
        } else if (apply) {
            sm_status s = sm_config_set(cfg, name, value, "command line", err, errcap);
            if (s != SM_OK)
                return s;
        }
    }
    return SM_OK;
}

static sm_status load_config(int argc, char **argv, args *a, sm_config *cfg,
                             char *err, size_t errcap)
{
    sm_status s = parse_args(argc, argv, a, cfg, false, err, errcap);
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

static int run_worker(const sm_config *cfg, const sm_log *log,
                      const sigset_t *stop)
{
    sm_worker *w = NULL;
    sm_status s = sm_worker_create(&w, cfg, log);
    if (s == SM_OK)
        s = sm_worker_open(w);
    if (s == SM_OK)
        s = sm_worker_connect(w);
    if (s == SM_OK)
        s = sm_worker_run(w, stop);
    if (s != SM_OK)
        sm_log_write(log, SM_LOG_ERROR, "worker_failed", "status=\"%s\"",
                     sm_status_str(s));
    sm_worker_destroy(w);
    return s == SM_OK ? 0 : 1;
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
    args a = {0};
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
    if (s != SM_OK) {
        fprintf(stderr, "swarm-medic: %s\n", err);
        sm_log_write(&log, SM_LOG_ERROR, "config_rejected", "detail=\"%s\"", err);
        sm_config_free(&cfg);
        return 2;
    }
    log.level = (sm_log_level)sm_log_level_parse(cfg.log_level);
    int rc;
    if (a.watch)
        rc = sm_watch_run(&cfg, &log, stdout, &stop, a.watch_count) == SM_OK ? 0 : 1;
    else
        rc = run_worker(&cfg, &log, &stop);
    sm_config_free(&cfg);
    nats_CloseAndWait(2000);
    return rc;
}
