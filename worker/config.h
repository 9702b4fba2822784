/*
 * config.h - the worker's configuration: defaults, a JSON file, environment
 * variables and command-line flags, applied in that order (later wins).
 *
 * Every setting has one name, used in all three places:
 *   file   {"nats_url": "nats://host:4222", "token_raise": 0.8, ...}
 *   env    SWARM_MEDIC_NATS_URL=..., SWARM_MEDIC_TOKEN_RAISE=0.8
 *   flag   --nats-url=... or --nats-url ...  (underscores may be dashes)
 * Durations accept ms, s, m, h suffixes ("60s"); sizes accept K, M, G
 * ("64M"). JSON numbers are taken as ms / bytes.
 *
 * The file is parsed with jansson (a well-kept Debian library) rather than
 * by hand: unknown keys, wrong types and out-of-range values are errors
 * that name the key and where it came from. Detector settings are then
 * checked by sm_detect_config_validate().
 *
 * Strings in sm_config are owned by it (sm_config_free releases them).
 */
#ifndef SM_CONFIG_H
#define SM_CONFIG_H

/* Partitions a worker can spread swarms over (config partitions). */
#define SM_CONFIG_MAX_PARTITIONS 64

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "swarm.h"
#include "status.h"

typedef struct sm_config {
    /* bus */
    char *nats_url;             /* "nats://127.0.0.1:4222"; comma list ok */
    char *nats_user;
    char *nats_password;
    char *nats_token;
    char *nats_creds;           /* credentials (.creds) file */
    char *nats_nkey_seed;       /* NKey seed file */
    char *tls_ca;               /* CA bundle; setting any tls_* turns TLS on */
    char *tls_cert;
    char *tls_key;
    char *tls_hostname;
    bool tls_insecure;          /* skip server certificate verification */
    char *name;                 /* connection name, "swarm-medic" */
    int64_t connect_timeout_ms; /* 2000 */
    int64_t reconnect_wait_ms;  /* 500 */
    int64_t reconnect_buf;      /* bytes buffered while disconnected, 8M */
    int64_t pending_limit;      /* subscription pending messages, 1000000 */
    bool send_asap;             /* publish each message at once instead of
                                   buffering it for cnats's flusher: true
                                   (conclusions are few and urgent) */

    /* subjects */
    char *input_subject;        /* "swarm.>" */
    char *subject_ids;          /* "subject": the last token of an input
                                   subject is its agent, source, group or
                                   command id, and the payload's must match
                                   it or be empty; "payload": the bus made
                                   the token something else (a bucket of a
                                   partition() mapping) and the payload's
                                   id is required and used */
    char *output_prefix;        /* "medic" */
    char *deadletter_subject;   /* "medic.deadletter" */

    /* store */
    char *store_dir;            /* "./swarm-medic-data" */
    int64_t map_size;           /* 64M */
    int64_t map_max;            /* 1G */
    int64_t commit_events;      /* group commit after N events, 262144 */
    int64_t commit_ms;          /* or after this much wall time, 1000 */
    int64_t retention_ms;       /* drop idle agents after, 10m event time */
    int64_t swarm_retention_ms; /* drop a swarm with no event for this long
                                   (bus time) and nothing raised, 1h; 0:
                                   never */
    int64_t max_swarms;         /* swarms a worker holds, 1000; 0: no cap */
    int64_t max_agents;         /* agents a swarm holds, 100000; 0: no cap */
    int64_t clock_jump_ms;      /* bus clock: a forward jump larger than
                                   this needs a second swarm to confirm
                                   it, 5m (handle.c) */
    bool commit_thread;         /* the run loop's group commits are written
                                   by a thread of their own (writer.h)
                                   while events go on, true; false: on
                                   the event thread */
    int64_t commit_thread_min;  /* a batch smaller than this (bytes of
                                   its log) is written by the event thread
                                   itself, 1M */
    bool publish_after_commit;  /* a conclusion is sent once the state it
                                   reveals is committed (a SIGKILL never
                                   repeats it), true; false: at once, one
                                   commit sooner */
    int64_t max_skew_ms;        /* an event this far ahead of the bus clock
                                   is dead-lettered until a second producer
                                   confirms the jump, 5m; 0: off */

    /* JetStream input (js.h); input "core" keeps plain NATS */
    char *input;                /* "core" or "jetstream" */
    char *js_stream;            /* input stream on input_subject, "SWARM" */
    char *js_out_stream;        /* output stream on <output_prefix>.>, "MEDIC" */
    char *js_consumer;          /* durable pull consumer, "swarm-medic" */
    bool js_setup;              /* create the streams if absent, true; false:
                                   they are left to the deploy configs and
                                   only checked */
    int64_t js_fetch_batch;     /* messages per fetch, 256 */
    int64_t js_ack_wait_ms;     /* redelivery after, 30s */
    int64_t js_max_deliver;     /* deliveries before a message is
                                   dead-lettered as poison, 5 */
    int64_t js_dup_window_ms;   /* output stream duplicate window, 2m */
    int64_t js_max_age_ms;      /* input stream retention, 24h */
    int64_t partitions;         /* swarms spread over this many partition
                                   streams <js_stream>_P<k> on part.<k>.>,
                                   each owned by one worker through a
                                   lease (js.h); 0: off, one stream */
    int64_t lease_ttl_ms;       /* a lease not renewed for this long is
                                   taken over, 10s */
    char *worker_id;            /* this worker's name in the leases; "":
                                   <host>-<pid> */
    char *lease_bucket;         /* JetStream KV bucket of the leases,
                                   "medic_leases" */
    int64_t js_replicas;        /* replicas of the streams and the bucket
                                   the worker creates, 1 (3 on a
                                   three-node cluster) */

    /* output */
    char *log_level;            /* "info" */
    int64_t stats_ms;           /* stats log line period (wall), 10000 */
    char *log_format;           /* "text" (key=value) or "json" */

    /* operations */
    char *http_listen;          /* host:port of /metrics, /healthz,
                                   /readyz; "" (the default): off */

    /* healing */
    char *autonomy;             /* strategies.h: "[swarm/]action=level,..." */
    bool heal;                  /* issue healing commands, true */
    /* request/reply services (service.h) */
    int64_t report_interval_ms; /* PerformanceReport period, event time;
                                   0 (default): off */
    int64_t perf_retention_ms;  /* per-minute aggregates kept, 24h */
    int64_t decision_log_max;   /* decisions kept for explain, 100000 */
    int64_t decision_log_age_ms;    /* ... for at most 7 days */
    bool scaling;               /* publish ScalingDecisions, false */
    int64_t scale_up_pending;   /* 30 */
    int64_t scale_per_agent;    /* 20 */
    int64_t scale_down_pending; /* 10 */
    int64_t scale_max_agents;   /* 50 */
    int64_t scale_cooldown_ms;  /* 20s */
    int64_t scale_stabilise_ms; /* 60s */
    int64_t scale_drain_ms;     /* 45s */
    int64_t scale_work_ms;      /* 120s */
    int64_t scale_burst_ms;     /* 480s */
    double scale_target_util;   /* 0.8 */

    sm_detect_config detect;
} sm_config;

/* Fills defaults. Must be paired with sm_config_free. */
sm_status sm_config_init(sm_config *cfg);
void sm_config_free(sm_config *cfg);

/* Deep copy of src into dst (dst must not be initialised; free it with
 * sm_config_free). Errors: SM_ERR_NOMEM (dst then holds nothing). */
sm_status sm_config_copy(sm_config *dst, const sm_config *src);

/* Applies a JSON file. Errors: SM_ERR_CONFIG with a sentence in err. */
sm_status sm_config_load_file(sm_config *cfg, const char *path, char *err,
                              size_t errcap);
/* Applies SWARM_MEDIC_* variables from envp (NULL-terminated). */
sm_status sm_config_load_env(sm_config *cfg, char *const *envp, char *err,
                             size_t errcap);
/* Applies one setting by name ("nats_url" or "nats-url") from text. */
sm_status sm_config_set(sm_config *cfg, const char *name, const char *value,
                        const char *origin, char *err, size_t errcap);
/* Final checks across settings (detector ordering, sizes). */
sm_status sm_config_validate(const sm_config *cfg, char *err, size_t errcap);

/* Prints every setting with its default and meaning (for --help). */
void sm_config_usage(const sm_config *defaults, void *file /* FILE* */);

/* Prints every setting's value, one "name = value" a line, for
 * --check-config: passwords and tokens are shown only as set, and the
 * user information of nats_url is masked (sm_log_url). */
void sm_config_print(const sm_config *cfg, void *file /* FILE* */);

#endif
