/*
 * sim_main.c - the swarm-sim program: publishes the simulated swarm
 * (worker/simgen.h) onto a NATS bus, or lists it (--dry-run).
 *
 *   swarm-sim [--url URL] [--seed N] [--swarms N] [--agents N]
 *             [--rate EV_PER_S] [--duration T] [--fault SPEC ...] [--demo]
 *             [--pace fast|real|X] [--count N] [--quiet] [--dry-run]
 *   swarm-sim --scenario FILE [--labels] [--url URL | --record F | --dry-run]
 *             [--labels-out L] [--coordinator [--output-prefix P]]
 *   swarm-sim --scenario FILE --score [--heal] [--set NAME=VALUE ...]
 *             [--floor K=V,...]
 *
 * Without --scenario it plays the simple profile (simgen.h); with it, the
 * scenario's realistic world (world.h, scenario.h).
 *
 * --coordinator (live, with --url): the simulated coordinator of world.h
 * listens on <prefix>.*.heal.>, carries each HealingCommand out on the
 * world it is playing and publishes the HealingOutcome in the stream; it
 * also listens on <prefix>.*.scale and applies each ScalingDecision
 * (agents registered or unregistered in the stream). The prefix is the
 * worker's output_prefix, "medic" unless --output-prefix says otherwise.
 * --score: scores the scenario in process through the product (as
 * `swarm-medic score` does a recording), with --heal (or the scenario's
 * "coordinator": {"loop": true}) the loop closed: the worker's commands go
 * to the world's coordinator, and the healing figures follow.
 *
 * Exit status: 0 done (--score: every floor met); 1 the bus failed
 * (connect, publish or flush), or --score missed a floor; 2 a bad flag,
 * value or fault spec (--score: a scenario that cannot be scored).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <nats/nats.h>

#include "config.h"
#include "log.h"
#include "recfile.h"
#include "scenario.h"
#include "score.h"
#include "simgen.h"

#define EXIT_BUS 1
#define EXIT_USAGE 2
#define MAX_SETS 32

/* Everything the program was asked to do; built in main. */
typedef struct sim_opts {
    const char *url;
    sm_sim_config cfg;
    sm_sim_fault extra[SM_SIM_MAX_FAULTS];  /* --fault, in order */
    size_t n_extra;
    bool demo;
    bool duration_set;
    double speed;               /* event ms per wall ms; 0 = as fast */
    uint64_t count;             /* 0 = no limit */
    bool quiet;
    bool dry_run;
    const char *record;         /* write a recording instead of publishing */
    const char *scenario;       /* play this scenario file */
    bool labels;                /* print the scenario's labels and stop */
    const char *labels_out;     /* write its labels file (score's format) */
    bool coordinator;           /* carry out <prefix>.*.heal.> (live) */
    const char *prefix;         /* the worker's output_prefix, "medic" */
    bool score;                 /* score the scenario in process */
    bool heal;                  /* with score: close the loop */
    const char *sets[MAX_SETS]; /* --set NAME=VALUE for the worker */
    size_t n_sets;
    const char *floor;          /* --floor K=V,... over the scenario's */
    double fail_rate, reject_rate, delay_s;     /* --coord-*; NaN: the
                                                   scenario's */
    bool help;
} sim_opts;

/* What a run did, for the summary line. */
typedef struct sim_tally {
    uint64_t n;
    uint64_t by_kind[SM_SIM_KINDS];
    uint64_t bytes;
    int64_t first_ts, last_ts;
    double wall_s;
    uint64_t commands;          /* --coordinator: heal commands taken */
    uint64_t scales;            /* --coordinator: ScalingDecisions taken */
} sim_tally;

static void usage(FILE *to)
{
    fprintf(to,
        "usage: swarm-sim [options]\n\n"
        "Publishes a simulated multi-agent swarm onto NATS: task, heartbeat,\n"
        "resource, consensus and agent events (schema/swarm_medic.proto),\n"
        "seeded and deterministic, with faults that raise each bottleneck.\n\n"
        "  --url URL          NATS server (default nats://127.0.0.1:4222)\n"
        "  --seed N           PRNG seed (default 1)\n"
        "  --swarms N         swarms s0..sN-1 (default 2)\n"
        "  --agents N         agents a0..aN-1 per swarm (default 20)\n"
        "  --rate EV_PER_S    events per second of event time, all swarms\n"
        "                     (default 50); the rest after heartbeats,\n"
        "                     resource samples and rounds becomes tasks\n"
        "  --duration T       event time to play, e.g. 90s, 10m, 1h (default\n"
        "                     10m; 11m with --demo; 0 = endless)\n"
        "  --fault SPEC       kind:swarm:start-end, e.g. slow:0:30s-90s;\n"
        "                     kind token, quota, slow, queue or consensus;\n"
        "                     times from the start of the run (repeatable)\n"
        "  --demo             the five faults in turn on swarm 0, 60 s each\n"
        "  --pace P           fast (default): as fast as possible; real: wall\n"
        "                     clock follows event time; X: X times faster\n"
        "                     than real (60: an event minute per second)\n"
        "  --count N          stop after N events\n"
        "  --dry-run          print \"ts_ms subject bytes\" per event, no bus\n"
        "  --record FILE      write a recording (swarm-medic replay reads it)\n"
        "                     instead of publishing; receive time = event time\n"
        "  --scenario FILE    play a scenario (a JSON file of tests/scenarios/): its\n"
        "                     realistic world and faults; --seed, --swarms,\n"
        "                     --agents, --rate, --fault and --demo do not\n"
        "                     apply; --duration cuts it short\n"
        "  --labels           with --scenario: print its labels (hand-written\n"
        "                     and derived), one JSON object a line, and stop\n"
        "  --labels-out FILE  with --scenario: write its labels and floor as a\n"
        "                     labels file (absolute times) for\n"
        "                     swarm-medic score REC --labels FILE\n"
        "  --coordinator      with --scenario on a bus: be the swarm's\n"
        "                     coordinator: carry out the HealingCommands on\n"
        "                     medic.*.heal.> (and the ScalingDecisions on\n"
        "                     medic.*.scale) on the world being played and\n"
        "                     publish the HealingOutcomes\n"
        "                     (swarm.<s>.outcome.<id>)\n"
        "  --output-prefix P  with --coordinator: the worker's output_prefix\n"
        "                     (default medic)\n"
        "  --score            with --scenario: score it in process through\n"
        "                     swarm-medic (its table, floors and figure\n"
        "                     lines, as swarm-medic score prints them)\n"
        "  --heal             with --score: close the loop (the worker's\n"
        "                     HealingCommands go to the simulated\n"
        "                     coordinator; the healing figures follow)\n"
        "  --set NAME=VALUE   with --score: a worker setting (repeatable)\n"
        "  --floor K=V,...    with --score: floors (with --heal, only these:\n"
        "                     the scenario's are about the unhealed world)\n"
        "  --coord-fail R, --coord-reject R, --coord-delay S\n"
        "                     with --heal or --coordinator: the simulated\n"
        "                     coordinator fails or rejects a share R of the\n"
        "                     commands, finishes each S seconds (+-S/2) after\n"
        "                     taking it (default: the scenario's, else 0, 0, 2)\n"
        "  --quiet            no summary line\n"
        "  --help             this text\n");
}

/* ------------------------------------------------------------- flags */

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (s[0] < '0' || s[0] > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != 0)
        return false;
    *out = v;
    return true;
}

static bool parse_u32(const char *s, uint32_t *out)
{
    uint64_t v;
    if (!parse_u64(s, &v) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_pos_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != 0 || !isfinite(v) || v <= 0)
        return false;
    *out = v;
    return true;
}

static bool flag_takes_value(const char *name)
{
    static const char *const with[] = {
        "url", "seed", "swarms", "agents", "rate", "duration", "fault",
        "pace", "count", "record", "scenario", "labels-out", "set", "floor",
        "output-prefix", "coord-fail", "coord-reject", "coord-delay", NULL,
    };
    for (int i = 0; with[i]; i++)
        if (strcmp(name, with[i]) == 0)
            return true;
    return false;
}

/* Applies one flag. Returns false with a sentence in err. */
static bool apply_flag(sim_opts *o, const char *name, const char *v,
                       char *err, size_t cap)
{
    char why[256];
    if (strcmp(name, "url") == 0) {
        if (*v == 0) {
            snprintf(err, cap, "--url needs a server URL");
            return false;
        }
        o->url = v;
    } else if (strcmp(name, "seed") == 0) {
        if (!parse_u64(v, &o->cfg.seed)) {
            snprintf(err, cap, "--seed '%s' is not a non-negative integer",
                     v);
            return false;
        }
    } else if (strcmp(name, "swarms") == 0 || strcmp(name, "agents") == 0) {
        uint32_t *dst = name[0] == 's' ? &o->cfg.swarms : &o->cfg.agents;
        if (!parse_u32(v, dst) || *dst == 0) {
            snprintf(err, cap, "--%s '%s' is not a positive integer", name,
                     v);
            return false;
        }
    } else if (strcmp(name, "rate") == 0) {
        if (!parse_pos_double(v, &o->cfg.rate)) {
            snprintf(err, cap, "--rate '%s' is not a positive number of "
                     "events per second", v);
            return false;
        }
    } else if (strcmp(name, "duration") == 0) {
        if (strcmp(v, "0") == 0) {
            o->cfg.duration_ms = 0;
        } else if (sm_sim_parse_time(v, &o->cfg.duration_ms, why,
                                     sizeof why) != SM_OK) {
            snprintf(err, cap, "--duration: %s", why);
            return false;
        }
        o->duration_set = true;
    } else if (strcmp(name, "fault") == 0) {
        if (o->n_extra >= SM_SIM_MAX_FAULTS) {
            snprintf(err, cap, "at most %d --fault flags", SM_SIM_MAX_FAULTS);
            return false;
        }
        if (sm_sim_fault_parse(v, &o->extra[o->n_extra], why, sizeof why) !=
            SM_OK) {
            snprintf(err, cap, "--fault: %s", why);
            return false;
        }
        o->n_extra++;
    } else if (strcmp(name, "pace") == 0) {
        if (strcmp(v, "fast") == 0) {
            o->speed = 0;
        } else if (strcmp(v, "real") == 0) {
            o->speed = 1.0;
        } else if (!parse_pos_double(v, &o->speed)) {
            snprintf(err, cap, "--pace '%s' is not fast, real or a positive "
                     "speed-up factor", v);
            return false;
        }
    } else if (strcmp(name, "count") == 0) {
        if (!parse_u64(v, &o->count) || o->count == 0) {
            snprintf(err, cap, "--count '%s' is not a positive integer", v);
            return false;
        }
    } else if (strcmp(name, "demo") == 0) {
        o->demo = true;
    } else if (strcmp(name, "quiet") == 0) {
        o->quiet = true;
    } else if (strcmp(name, "dry-run") == 0) {
        o->dry_run = true;
    } else if (strcmp(name, "record") == 0) {
        o->record = v;
    } else if (strcmp(name, "scenario") == 0) {
        o->scenario = v;
    } else if (strcmp(name, "labels") == 0) {
        o->labels = true;
    } else if (strcmp(name, "labels-out") == 0) {
        o->labels_out = v;
    } else if (strcmp(name, "coordinator") == 0) {
        o->coordinator = true;
    } else if (strcmp(name, "output-prefix") == 0) {
        o->prefix = v;
    } else if (strcmp(name, "score") == 0) {
        o->score = true;
    } else if (strcmp(name, "heal") == 0) {
        o->heal = true;
    } else if (strcmp(name, "set") == 0) {
        if (o->n_sets >= MAX_SETS || strchr(v, '=') == NULL) {
            snprintf(err, cap, "--set wants NAME=VALUE (at most %d)",
                     MAX_SETS);
            return false;
        }
        o->sets[o->n_sets++] = v;
    } else if (strcmp(name, "floor") == 0) {
        o->floor = v;
    } else if (strncmp(name, "coord-", 6) == 0) {
        double *dst = strcmp(name, "coord-fail") == 0     ? &o->fail_rate
                      : strcmp(name, "coord-reject") == 0 ? &o->reject_rate
                      : strcmp(name, "coord-delay") == 0  ? &o->delay_s
                                                          : NULL;
        char *end;
        double x = dst ? strtod(v, &end) : 0;
        if (dst == NULL) {
            snprintf(err, cap, "unknown flag --%s (see --help)", name);
            return false;
        }
        if (end == v || *end != 0 || !isfinite(x) || x < 0) {
            snprintf(err, cap, "--%s '%s' is not a number >= 0", name, v);
            return false;
        }
        *dst = x;
    } else if (strcmp(name, "help") == 0) {
        o->help = true;
    } else {
        snprintf(err, cap, "unknown flag --%s (see --help)", name);
        return false;
    }
    return true;
}

/* Parses argv into o (defaults already set), then settles the config:
 * the demo's faults first, then those of --fault. */
static bool parse_args(int argc, char **argv, sim_opts *o, char *err,
                       size_t cap)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0) {
            o->help = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == 0) {
            snprintf(err, cap, "unexpected argument '%s' (see --help)", arg);
            return false;
        }
        char name[32];
        const char *eq = strchr(arg + 2, '=');
        size_t n = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (n >= sizeof name) {
            snprintf(err, cap, "unknown flag '%s' (see --help)", arg);
            return false;
        }
        memcpy(name, arg + 2, n);
        name[n] = 0;
        const char *v = NULL;
        if (flag_takes_value(name)) {
            if (eq) {
                v = eq + 1;
            } else if (i + 1 < argc) {
                v = argv[++i];
            } else {
                snprintf(err, cap, "--%s needs a value", name);
                return false;
            }
        } else if (eq) {
            snprintf(err, cap, "--%s takes no value", name);
            return false;
        }
        if (!apply_flag(o, name, v, err, cap))
            return false;
    }
    if (o->demo) {
        int64_t d = o->cfg.duration_ms;
        sm_sim_config_demo(&o->cfg);
        if (o->duration_set)
            o->cfg.duration_ms = d;
    }
    for (size_t i = 0; i < o->n_extra; i++) {
        if (o->cfg.n_faults >= SM_SIM_MAX_FAULTS) {
            snprintf(err, cap, "at most %d faults in all", SM_SIM_MAX_FAULTS);
            return false;
        }
        o->cfg.faults[o->cfg.n_faults++] = o->extra[i];
    }
    if ((o->labels || o->labels_out || o->score || o->coordinator) &&
        !o->scenario) {
        snprintf(err, cap, "--%s needs --scenario",
                 o->labels ? "labels" : o->labels_out ? "labels-out"
                 : o->score ? "score" : "coordinator");
        return false;
    }
    if ((o->heal || o->n_sets || o->floor) && !o->score) {
        snprintf(err, cap, "--heal, --set and --floor go with --score");
        return false;
    }
    if ((!isnan(o->fail_rate) || !isnan(o->reject_rate) ||
         !isnan(o->delay_s)) && !o->heal && !o->coordinator) {
        snprintf(err, cap, "--coord-fail, --coord-reject and --coord-delay "
                 "go with --heal or --coordinator");
        return false;
    }
    if (o->prefix && !o->coordinator) {
        snprintf(err, cap, "--output-prefix goes with --coordinator");
        return false;
    }
    if (o->prefix && (o->prefix[0] == '\0' || strpbrk(o->prefix, " *>") ||
                      o->prefix[0] == '.' ||
                      o->prefix[strlen(o->prefix) - 1] == '.')) {
        snprintf(err, cap, "--output-prefix '%s' is not a subject prefix",
                 o->prefix);
        return false;
    }
    if (o->coordinator && (o->dry_run || o->record || o->score)) {
        snprintf(err, cap, "--coordinator needs a bus (not --dry-run, "
                 "--record or --score)");
        return false;
    }
    char why[256];
    if (sm_sim_config_validate(&o->cfg, why, sizeof why) != SM_OK) {
        snprintf(err, cap, "%s", why);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------- run */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* With a pace, sleeps until the wall clock catches up with event time. */
static void pace(const sim_opts *o, double wall0, int64_t ev0, int64_t ts)
{
    if (o->speed <= 0)
        return;
    double due = wall0 + (double)(ts - ev0) / 1000.0 / o->speed;
    double now = mono_s();
    if (due <= now + 0.0005)
        return;
    double d = due - now;
    struct timespec req = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    while (nanosleep(&req, &req) != 0 && errno == EINTR)
        ;
}

static void print_summary(const sim_opts *o, const sim_tally *t)
{
    char when[32] = "-";
    if (t->n > 0) {
        time_t secs = (time_t)(t->first_ts / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    double span = t->n > 0 ? (double)(t->last_ts - t->first_ts) / 1000.0 : 0;
    printf("swarm-sim: %llu events (task %llu, heartbeat %llu, resource "
           "%llu, consensus %llu, agent %llu)",
           (unsigned long long)t->n,
           (unsigned long long)t->by_kind[SM_SIM_TASK],
           (unsigned long long)t->by_kind[SM_SIM_HEARTBEAT],
           (unsigned long long)t->by_kind[SM_SIM_RESOURCE],
           (unsigned long long)t->by_kind[SM_SIM_CONSENSUS],
           (unsigned long long)t->by_kind[SM_SIM_AGENT]);
    if (o->coordinator)
        printf(", coordinator: %llu commands taken, %llu outcomes, %llu "
               "scaling decisions taken", (unsigned long long)t->commands,
               (unsigned long long)t->by_kind[SM_SIM_OUTCOME],
               (unsigned long long)t->scales);
    printf(", %.1f KiB, event time %.1f s from %s, %u swarms x %u agents, "
           "%zu faults, wall %.3f s, %.0f events/s%s\n",
           (double)t->bytes / 1024.0, span, when, o->cfg.swarms,
           o->cfg.agents, o->cfg.n_faults, t->wall_s,
           t->wall_s > 0 ? (double)t->n / t->wall_s : 0.0,
           o->dry_run ? " (dry run)" : "");
}

static natsStatus connect_bus(const sim_opts *o, natsConnection **nc)
{
    natsOptions *opts = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, o->url);
    if (s == NATS_OK)
        s = natsOptions_SetName(opts, "swarm-sim");
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(opts, 5000);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, 10);
    if (s == NATS_OK)
        s = natsConnection_Connect(nc, opts);
    natsOptions_Destroy(opts);
    return s;
}

/* Prints a scenario's labels, one JSON object a line: score's label
 * (score.h, sm_label_to_json) with its "class". */
static int print_labels(const sm_scenario *sc)
{
    const sm_labels *ls = sm_scenario_labels(sc);
    for (size_t i = 0; i < ls->n; i++) {
        json_t *o = sm_label_to_json(&ls->v[i]);
        char *line = NULL;
        if (o && json_object_set_new(o, "class",
                                     json_string(sm_label_class_str(ls->v[i].cls))) == 0)
            line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                      JSON_REAL_PRECISION(15));
        json_decref(o);
        if (line == NULL) {
            fprintf(stderr, "swarm-sim: out of memory printing labels\n");
            return EXIT_BUS;
        }
        printf("%s\n", line);
        free(line);
    }
    return 0;
}

/* Applies --coord-fail, --coord-reject and --coord-delay to c. */
static void coord_flags(const sim_opts *o, sm_wcoord *c)
{
    if (!isnan(o->fail_rate))
        c->fail_rate = o->fail_rate;
    if (!isnan(o->reject_rate))
        c->reject_rate = o->reject_rate;
    if (!isnan(o->delay_s)) {
        c->delay_mean_s = o->delay_s;
        c->delay_jitter_s = o->delay_s / 2;
    }
}

/* Opens the generator: the scenario's world, or the simple profile. */
static sm_status open_sim(sim_opts *o, sm_scenario **sc, sm_sim **sim)
{
    if (o->scenario == NULL)
        return sm_sim_create(sim, &o->cfg);
    char err[512];
    sm_status st = sm_scenario_load(o->scenario, sc, err, sizeof err);
    if (st != SM_OK) {
        fprintf(stderr, "swarm-sim: %s\n", err);
        return st;
    }
    sm_world_config wc = *sm_scenario_world(*sc);
    coord_flags(o, &wc.coord);
    if (o->duration_set && o->cfg.duration_ms > 0 &&
        o->cfg.duration_ms < wc.duration_ms)
        wc.duration_ms = o->cfg.duration_ms;
    o->cfg.swarms = (uint32_t)wc.n_swarms;
    o->cfg.agents = wc.swarms[0].agents;
    o->cfg.duration_ms = wc.duration_ms;
    o->cfg.n_faults = wc.n_faults;
    o->cfg.seed = wc.seed;
    return sm_sim_create_world(sim, &wc);
}

/* --score: the scenario through the product in process, the loop closed
 * with --heal; prints as `swarm-medic score` does. Returns the exit
 * status. */
static int run_score(const sim_opts *o)
{
    char err[512] = "", name[SM_SCORE_ID_MAX];
    sm_scenario *sc = NULL;
    sm_sim *sim = NULL;
    sm_config cfg;
    sm_score_report rep;
    sm_score_input in;
    sm_log log = {.out = stderr, .level = SM_LOG_ERROR};
    int rc = EXIT_USAGE;
    memset(&rep, 0, sizeof rep);
    if (sm_config_init(&cfg) != SM_OK) {
        fprintf(stderr, "swarm-sim: out of memory\n");
        return EXIT_USAGE;
    }
    sm_status st = sm_scenario_load(o->scenario, &sc, err, sizeof err);
    for (size_t i = 0; st == SM_OK && i < sm_scenario_n_settings(sc); i++) {
        const char *value, *key = sm_scenario_setting(sc, i, &value);
        st = sm_config_set(&cfg, key, value, "scenario settings", err,
                           sizeof err);
    }
    for (size_t i = 0; st == SM_OK && i < o->n_sets; i++) {
        char key[128];
        const char *eq = strchr(o->sets[i], '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - o->sets[i]), o->sets[i]);
        st = sm_config_set(&cfg, key, eq + 1, "--set", err, sizeof err);
    }
    sm_score_floors floors;
    bool loop = o->heal || (st == SM_OK && sm_scenario_loop(sc));
    if (st == SM_OK) {
        /* The scenario's floors are about detection in the world as its
         * faults make it; a healed world is another (its labels still
         * derive from the faults), so with the loop closed only --floor
         * applies. */
        if (loop)
            sm_score_floors_init(&floors);
        else
            floors = *sm_scenario_floors(sc);
        if (o->floor)
            st = sm_score_floors_parse(&floors, o->floor, err, sizeof err);
    }
    if (st == SM_OK) {
        sm_wcoord co = sm_scenario_world(sc)->coord;
        coord_flags(o, &co);
        st = loop ? sm_scenario_loop_input(sc, &co, &sim, &in)
                  : sm_scenario_score_input(sc, &sim, &in);
        if (st != SM_OK)
            snprintf(err, sizeof err, "cannot create the world: %s",
                     sm_status_str(st));
    }
    if (st == SM_OK) {
        const char *base = strrchr(o->scenario, '/');
        base = base ? base + 1 : o->scenario;
        const char *dot = strrchr(base, '.');
        sm_score_clean_name(name, sizeof name, base,
                            dot && dot != base ? (size_t)(dot - base)
                                               : strlen(base));
        in.name = name;
        st = sm_score_run(&cfg, &log, &in, &rep, err, sizeof err);
    }
    if (st != SM_OK) {
        fprintf(stderr, "swarm-sim: %s\n", err);
        goto cleanup;
    }
    sm_score_print_table(&rep, sm_scenario_labels(sc), name, stdout);
    size_t missed = sm_score_floors_check(&floors, &rep, stdout);
    sm_score_print_lines(&rep, sm_scenario_labels(sc), name, stdout);
    rc = missed ? EXIT_BUS : 0;
cleanup:
    fflush(stdout);
    sm_score_report_free(&rep);
    sm_sim_destroy(sim);
    sm_scenario_destroy(sc);
    sm_config_free(&cfg);
    return rc;
}

/* --coordinator: what it takes from the bus, decoded and handed to the
 * world at its current event time. */
static bool take_command(sm_world *w, const void *data, size_t len)
{
    sm_wheal cmd;
    return sm_wheal_decode(data, len, &cmd) == SM_OK &&
           sm_world_heal(w, &cmd) == SM_OK;
}

static bool take_scale(sm_world *w, const void *data, size_t len)
{
    sm_wscale d;
    return sm_wscale_decode(data, len, &d) == SM_OK &&
           sm_world_scale(w, &d) == SM_OK;
}

/* Hands every message waiting on sub to the world with take; counts
 * those taken, names the others (`what` they are not). */
static void take_waiting(natsSubscription *sub, sm_sim *sim,
                         bool (*take)(sm_world *, const void *, size_t),
                         uint64_t *taken, const char *what)
{
    int pending = 0;
    if (natsSubscription_GetPending(sub, &pending, NULL) != NATS_OK)
        return;
    for (int i = 0; i < pending; i++) {
        natsMsg *msg = NULL;
        if (natsSubscription_NextMsg(&msg, sub, 100) != NATS_OK)
            return;
        if (take(sm_sim_world_mut(sim), natsMsg_GetData(msg),
                 (size_t)natsMsg_GetDataLength(msg)))
            (*taken)++;
        else
            fprintf(stderr, "swarm-sim: coordinator: %s is not a %s it can "
                    "take\n", natsMsg_GetSubject(msg), what);
        natsMsg_Destroy(msg);
    }
}

/* Plays the stream; returns the exit status. */
static int run(sim_opts *o)
{
    sm_sim *sim = NULL;
    sm_scenario *sc = NULL;
    natsConnection *nc = NULL;
    natsSubscription *heal_sub = NULL, *scale_sub = NULL;
    sm_recw *rec = NULL;
    sim_tally t;
    int rc = 0;
    memset(&t, 0, sizeof t);

    if (o->score)
        return run_score(o);

    if (o->labels) {
        char err[512];
        if (sm_scenario_load(o->scenario, &sc, err, sizeof err) != SM_OK) {
            fprintf(stderr, "swarm-sim: %s\n", err);
            return EXIT_USAGE;
        }
        rc = print_labels(sc);
        sm_scenario_destroy(sc);
        return rc;
    }
    if (o->record && sm_recw_open(&rec, o->record) != SM_OK) {
        fprintf(stderr, "swarm-sim: cannot write %s: %s\n", o->record,
                strerror(errno));
        return EXIT_BUS;
    }
    if (!o->dry_run && !rec) {
        natsStatus s = connect_bus(o, &nc);
        if (s != NATS_OK) {
            char url[512];
            fprintf(stderr, "swarm-sim: cannot connect to %s: %s\n",
                    sm_log_url(o->url, url, sizeof url), natsStatus_GetText(s));
            nats_Close();
            return EXIT_BUS;
        }
        char heal_subj[300], scale_subj[300];
        const char *prefix = o->prefix ? o->prefix : "medic";
        snprintf(heal_subj, sizeof heal_subj, "%s.*.heal.>", prefix);
        snprintf(scale_subj, sizeof scale_subj, "%s.*.scale", prefix);
        if (o->coordinator &&
            (s = natsConnection_SubscribeSync(&heal_sub, nc, heal_subj)) !=
                NATS_OK) {
            fprintf(stderr, "swarm-sim: cannot subscribe to %s: %s\n",
                    heal_subj, natsStatus_GetText(s));
            natsConnection_Destroy(nc);
            nats_Close();
            return EXIT_BUS;
        }
        if (o->coordinator &&
            (s = natsConnection_SubscribeSync(&scale_sub, nc, scale_subj)) !=
                NATS_OK) {
            fprintf(stderr, "swarm-sim: cannot subscribe to %s: %s\n",
                    scale_subj, natsStatus_GetText(s));
            natsSubscription_Destroy(heal_sub);
            natsConnection_Destroy(nc);
            nats_Close();
            return EXIT_BUS;
        }
    }
    sm_status st = open_sim(o, &sc, &sim);
    if (st != SM_OK) {
        fprintf(stderr, "swarm-sim: cannot create the simulator: %s\n",
                sm_status_str(st));
        rc = st == SM_ERR_CONFIG || st == SM_ERR_IO ? EXIT_USAGE : EXIT_BUS;
        goto cleanup;
    }
    if (o->labels_out) {
        char err[512];
        if (sm_scenario_write_labels(sc, o->labels_out, err, sizeof err) !=
            SM_OK) {
            fprintf(stderr, "swarm-sim: %s\n", err);
            rc = EXIT_BUS;
            goto cleanup;
        }
    }
    char shown[512];
    if (!o->quiet)
        fprintf(stderr, "swarm-sim: %s, %u swarms x %u agents, %.0f events/s "
                "(%.1f tasks/s per swarm), %.1f s of event time, %zu "
                "faults, seed %llu\n",
                o->dry_run ? "dry run" : sm_log_url(o->url, shown, sizeof shown),
                o->cfg.swarms,
                o->cfg.agents, o->cfg.rate, sm_sim_task_rate(sim),
                (double)o->cfg.duration_ms / 1000.0, o->cfg.n_faults,
                (unsigned long long)o->cfg.seed);

    double wall0 = mono_s();
    sm_sim_msg m;
    for (;;) {
        if (heal_sub != NULL)
            take_waiting(heal_sub, sim, take_command, &t.commands,
                         "HealingCommand");
        if (scale_sub != NULL)
            take_waiting(scale_sub, sim, take_scale, &t.scales,
                         "ScalingDecision");
        if ((o->count != 0 && t.n >= o->count) || !sm_sim_next(sim, &m))
            break;
        if (t.n == 0)
            t.first_ts = m.ts_ms;
        pace(o, wall0, t.first_ts, m.ts_ms);
        if (o->dry_run) {
            printf("%lld %s %zu\n", (long long)m.ts_ms, m.subject, m.len);
        } else if (rec) {
            if (sm_recw_append(rec, m.ts_ms, m.subject, NULL, m.payload,
                               m.len) != SM_OK) {
                fprintf(stderr, "swarm-sim: writing %s failed after %llu "
                        "events\n", o->record, (unsigned long long)t.n);
                rc = EXIT_BUS;
                goto cleanup;
            }
        } else {
            natsStatus s = natsConnection_Publish(nc, m.subject, m.payload,
                                                  (int)m.len);
            if (s != NATS_OK) {
                fprintf(stderr, "swarm-sim: publish on %s failed after %llu "
                        "events: %s\n", m.subject, (unsigned long long)t.n,
                        natsStatus_GetText(s));
                rc = EXIT_BUS;
                goto cleanup;
            }
        }
        t.n++;
        t.by_kind[m.kind]++;
        t.bytes += m.len;
        t.last_ts = m.ts_ms;
    }
    if (sm_sim_status(sim) != SM_OK) {
        fprintf(stderr, "swarm-sim: the simulator stopped early: %s\n",
                sm_status_str(sm_sim_status(sim)));
        rc = EXIT_BUS;
        goto cleanup;
    }
    if (nc != NULL) {
        natsStatus s = natsConnection_FlushTimeout(nc, 30000);
        if (s != NATS_OK) {
            char url[512];
            fprintf(stderr, "swarm-sim: flush to %s failed: %s\n",
                    sm_log_url(o->url, url, sizeof url), natsStatus_GetText(s));
            rc = EXIT_BUS;
            goto cleanup;
        }
    }
    t.wall_s = mono_s() - wall0;
    if (!o->quiet)
        print_summary(o, &t);

cleanup:
    fflush(stdout);
    if (rec && sm_recw_close(rec) != SM_OK && rc == 0) {
        fprintf(stderr, "swarm-sim: closing %s failed\n", o->record);
        rc = EXIT_BUS;
    }
    sm_sim_destroy(sim);
    sm_scenario_destroy(sc);
    natsSubscription_Destroy(heal_sub);
    natsSubscription_Destroy(scale_sub);
    if (nc != NULL) {
        natsConnection_Destroy(nc);
        nats_Close();
    }
    return rc;
}

int main(int argc, char **argv)
{
    sim_opts o;
    char err[512];
    memset(&o, 0, sizeof o);
    o.url = "nats://127.0.0.1:4222";
    o.prefix = NULL;
    o.fail_rate = o.reject_rate = o.delay_s = NAN;
    sm_sim_config_default(&o.cfg);

    if (!parse_args(argc, argv, &o, err, sizeof err)) {
        if (o.help) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr, "swarm-sim: %s\n", err);
        return EXIT_USAGE;
    }
    if (o.help) {
        usage(stdout);
        return 0;
    }
    return run(&o);
}
