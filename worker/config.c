#include "config.h"

#include "log.h"
#include "strategies.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum opt_type {
    OPT_STR,
    OPT_BOOL,
    OPT_I64,      /* plain integer */
    OPT_DUR,      /* milliseconds, suffixes ms s m h */
    OPT_SIZE,     /* bytes, suffixes K M G */
    OPT_U32,      /* detector counts */
    OPT_F64,      /* detector ratios */
    OPT_DET_DUR,  /* detector durations (int64 ms) */
} opt_type;

typedef struct opt {
    const char *name;
    opt_type type;
    size_t offset;
    const char *help;
} opt;

#define C(field) offsetof(sm_config, field)
#define D(field) (offsetof(sm_config, detect) + offsetof(sm_detect_config, field))

static const opt options[] = {
    {"nats_url", OPT_STR, C(nats_url), "NATS server URL(s), comma separated"},
    {"nats_user", OPT_STR, C(nats_user), "user name"},
    {"nats_password", OPT_STR, C(nats_password), "password"},
    {"nats_token", OPT_STR, C(nats_token), "authentication token"},
    {"nats_creds", OPT_STR, C(nats_creds), "credentials file (JWT + NKey)"},
    {"nats_nkey_seed", OPT_STR, C(nats_nkey_seed), "NKey seed file"},
    {"tls_ca", OPT_STR, C(tls_ca), "CA certificates file (enables TLS)"},
    {"tls_cert", OPT_STR, C(tls_cert), "client certificate file"},
    {"tls_key", OPT_STR, C(tls_key), "client key file"},
    {"tls_hostname", OPT_STR, C(tls_hostname), "expected server host name"},
    {"tls_insecure", OPT_BOOL, C(tls_insecure), "skip server certificate check"},
    {"name", OPT_STR, C(name), "connection name"},
    {"connect_timeout", OPT_DUR, C(connect_timeout_ms), "connect timeout"},
    {"reconnect_wait", OPT_DUR, C(reconnect_wait_ms), "wait between reconnects"},
    {"reconnect_buf", OPT_SIZE, C(reconnect_buf), "bytes buffered while disconnected"},
    {"pending_limit", OPT_I64, C(pending_limit), "messages queued in the client before slow-consumer drops"},
    {"send_asap", OPT_BOOL, C(send_asap), "publish conclusions at once, not via the client's buffer"},
    {"input_subject", OPT_STR, C(input_subject), "subject to consume"},
    {"subject_ids", OPT_STR, C(subject_ids), "subject (the last subject token is the agent, source, group or command id) or payload (a server mapping folded that token into buckets: ids come from the payload)"},
    {"output_prefix", OPT_STR, C(output_prefix), "first token of output subjects"},
    {"deadletter_subject", OPT_STR, C(deadletter_subject), "where rejected input goes"},
    {"store_dir", OPT_STR, C(store_dir), "LMDB environment directory"},
    {"map_size", OPT_SIZE, C(map_size), "initial LMDB map size"},
    {"map_max", OPT_SIZE, C(map_max), "LMDB map growth limit"},
    {"commit_events", OPT_I64, C(commit_events), "group commit after this many events"},
    {"commit_interval", OPT_DUR, C(commit_ms), "group commit after this much wall time"},
    {"commit_thread", OPT_BOOL, C(commit_thread), "write group commits on a thread of their own while events go on (false: on the event thread)"},
    {"commit_thread_min", OPT_SIZE, C(commit_thread_min), "a commit smaller than this is written by the event thread itself (no hand-over: lower latency)"},
    {"retention", OPT_DUR, C(retention_ms), "forget agents idle this long (event time)"},
    {"swarm_retention", OPT_DUR, C(swarm_retention_ms), "forget a swarm with no event this long (bus time) and nothing raised (0: never)"},
    {"max_swarms", OPT_I64, C(max_swarms), "swarms a worker holds; input for another is dead-lettered (0: no cap)"},
    {"max_agents", OPT_I64, C(max_agents), "agents a swarm holds; input for another is dead-lettered (0: no cap)"},
    {"clock_jump", OPT_DUR, C(clock_jump_ms), "bus clock jump one swarm alone may not make (event time)"},
    {"publish_after_commit", OPT_BOOL, C(publish_after_commit), "send a conclusion only once the state it reveals is committed (false: at once; a crash may repeat it)"},
    {"max_skew", OPT_DUR, C(max_skew_ms), "an event this far ahead of the bus clock is dead-lettered until a second producer shows the jump (0: off)"},
    {"input", OPT_STR, C(input), "core (plain NATS, at most once) or jetstream (durable pull consumer, exactly-once effects)"},
    {"js_stream", OPT_STR, C(js_stream), "JetStream input stream on input_subject"},
    {"js_out_stream", OPT_STR, C(js_out_stream), "JetStream output stream on <output_prefix>.> (duplicates dropped by Nats-Msg-Id)"},
    {"js_consumer", OPT_STR, C(js_consumer), "durable pull consumer name"},
    {"js_setup", OPT_BOOL, C(js_setup), "create the streams when absent (false: left to the deploy configs, only checked)"},
    {"js_fetch_batch", OPT_I64, C(js_fetch_batch), "messages per JetStream fetch"},
    {"js_ack_wait", OPT_DUR, C(js_ack_wait_ms), "JetStream redelivery of an unacknowledged message after"},
    {"js_max_deliver", OPT_I64, C(js_max_deliver), "deliveries after which a message is dead-lettered as poison"},
    {"js_dup_window", OPT_DUR, C(js_dup_window_ms), "output stream duplicate window"},
    {"js_max_age", OPT_DUR, C(js_max_age_ms), "input stream retention (at least a window)"},
    {"partitions", OPT_I64, C(partitions), "partition streams <js_stream>_P<k> on part.<k>.> owned through leases (0: off; must equal the server's partition(n,1) mapping)"},
    {"lease_ttl", OPT_DUR, C(lease_ttl_ms), "a partition lease not renewed for this long is taken over"},
    {"worker_id", OPT_STR, C(worker_id), "this worker's name in the leases (empty: <host>-<pid>)"},
    {"lease_bucket", OPT_STR, C(lease_bucket), "JetStream key-value bucket of the partition leases"},
    {"js_replicas", OPT_I64, C(js_replicas), "replicas of the streams and lease bucket the worker creates (3 on a three-node cluster)"},
    {"log_level", OPT_STR, C(log_level), "debug, info, warn, error"},
    {"stats_interval", OPT_DUR, C(stats_ms), "period of the stats log line (0: off)"},
    {"log_format", OPT_STR, C(log_format), "text (key=value) or json (one object a line)"},
    {"http_listen", OPT_STR, C(http_listen), "host:port for /metrics, /healthz, /readyz, e.g. 127.0.0.1:9464 (empty: off)"},
    {"report_interval", OPT_DUR, C(report_interval_ms), "period of the PerformanceReport on <prefix>.<swarm>.report, in event time (0: off)"},
    {"perf_retention", OPT_DUR, C(perf_retention_ms), "per-minute task aggregates kept for reports (event time)"},
    {"decision_log_max", OPT_I64, C(decision_log_max), "decisions kept in the log explain reads"},
    {"decision_log_age", OPT_DUR, C(decision_log_age_ms), "and for at most this long behind the newest (event time)"},
    {"scaling", OPT_BOOL, C(scaling), "publish ScalingDecisions on <prefix>.<swarm>.scale from resource samples"},
    {"scale_up_pending", OPT_I64, C(scale_up_pending), "scale up above this many pending tasks"},
    {"scale_per_agent", OPT_I64, C(scale_per_agent), "one more agent per this many pending over it"},
    {"scale_down_pending", OPT_I64, C(scale_down_pending), "scale down below this many pending tasks"},
    {"scale_max_agents", OPT_I64, C(scale_max_agents), "never more agents than this (nor the quota)"},
    {"scale_cooldown", OPT_DUR, C(scale_cooldown_ms), "no change this soon after the last (event time)"},
    {"scale_stabilise", OPT_DUR, C(scale_stabilise_ms), "scale down only to the highest target of this window (event time)"},
    {"scale_drain", OPT_DUR, C(scale_drain_ms), "an UP drains the queue over scale_down_pending within this (event time)"},
    {"scale_work", OPT_DUR, C(scale_work_ms), "the work a DOWN sizes on is averaged over about this (event time)"},
    {"scale_burst", OPT_DUR, C(scale_burst_ms), "a DOWN keeps the agents that drain the queue's recent peak, decaying over about this (event time)"},
    {"scale_target_util", OPT_F64, C(scale_target_util), "share of their time agents should be busy (0 to 1)"},
    {"window", OPT_DET_DUR, D(window_ms), "rolling window (event time)"},
    {"tick", OPT_DET_DUR, D(tick_ms), "sweep granularity (event time)"},
    {"gauge_min_samples", OPT_U32, D(gauge_min_samples), "consecutive samples to raise or clear a gauge"},
    {"token_raise", OPT_F64, D(token_raise), "token usage ratio that raises"},
    {"token_critical", OPT_F64, D(token_critical), "token usage ratio that is critical"},
    {"token_clear", OPT_F64, D(token_clear), "token usage ratio that clears"},
    {"quota_clear", OPT_F64, D(quota_clear), "active/quota ratio that clears"},
    {"slow_raise", OPT_F64, D(slow_raise), "agent/swarm median duration that raises"},
    {"slow_high", OPT_F64, D(slow_high), "ratio that makes it high"},
    {"slow_clear", OPT_F64, D(slow_clear), "ratio that clears"},
    {"slow_mad_k", OPT_F64, D(slow_mad_k), "MADs above the swarm median required"},
    {"slow_ok", OPT_F64, D(slow_ok), "duration ratio an agent may run at (evidence test's null)"},
    {"slow_evidence", OPT_F64, D(slow_evidence), "slowness evidence (nats) to raise a slow agent"},
    {"success_raise", OPT_F64, D(success_raise), "agent success rate that raises"},
    {"success_clear", OPT_F64, D(success_clear), "success rate that clears"},
    {"success_evidence", OPT_F64, D(success_evidence), "failure evidence (nats) to raise a failing agent"},
    {"slow_min_agent_tasks", OPT_U32, D(slow_min_agent_tasks), "agent tasks needed"},
    {"slow_min_swarm_tasks", OPT_U32, D(slow_min_swarm_tasks), "swarm tasks needed"},
    {"success_min_tasks", OPT_U32, D(success_min_tasks), "finished agent tasks before the success rule"},
    {"queue_raise", OPT_U32, D(queue_raise), "pending tasks that raise"},
    {"queue_critical", OPT_U32, D(queue_critical), "pending tasks that are critical"},
    {"queue_clear", OPT_U32, D(queue_clear), "pending tasks that clear"},
    {"consensus_raise", OPT_F64, D(consensus_raise), "timeout rate that raises"},
    {"consensus_high", OPT_F64, D(consensus_high), "timeout rate that is high"},
    {"consensus_clear", OPT_F64, D(consensus_clear), "timeout rate that clears"},
    {"consensus_min_rounds", OPT_U32, D(consensus_min_rounds), "rounds needed"},
    {"consensus_evidence", OPT_F64, D(consensus_evidence), "timeout evidence (nats) to raise a consensus group"},
    {"severity_margin", OPT_F64, D(severity_margin), "impact below a band before severity steps down"},
    {"slow_clear_evidence", OPT_F64, D(slow_clear_evidence), "evidence (nats) for tolerable in an agent's latest tasks alone that clears it (0: off)"},
    {"slow_clear_tasks", OPT_U32, D(slow_clear_tasks), "latest completed tasks of a raised agent that evidence to clear is taken from"},
    {"slow_clear_hold", OPT_DET_DUR, D(slow_clear_hold_ms), "how long a slow agent must look normal to resolve"},
    {"slow_horizon", OPT_DET_DUR, D(slow_horizon_ms), "how far back an agent's tasks and the type baselines reach"},
    {"slow_recent_tasks", OPT_U32, D(slow_recent_tasks), "latest completed tasks of an agent that are judged"},
    {"slow_min_type_tasks", OPT_U32, D(slow_min_type_tasks), "durations of a task type before its baseline judges"},
    {"heartbeat", OPT_DET_DUR, D(heartbeat_ms), "an agent's heartbeat interval until its own is learned"},
    {"down_intervals", OPT_F64, D(down_intervals), "silent heartbeat intervals before agent_down"},
    {"down_forget", OPT_DET_DUR, D(down_forget_ms), "silence after which a down agent is resolved as gone"},
    {"down_slack", OPT_DET_DUR, D(down_slack_ms), "least jitter allowance on top of them"},
    {"stuck_factor", OPT_F64, D(stuck_factor), "x the task type's median with no task event before agent_stuck"},
    {"stuck_blind_factor", OPT_F64, D(stuck_blind_factor), "times more for an agent that reports no progress"},
    {"stuck_min", OPT_DET_DUR, D(stuck_min_ms), "least time with no task event before agent_stuck"},
    {"stuck_stall", OPT_DET_DUR, D(stuck_stall_ms), "progress frozen this long before agent_stuck"},
    {"quorum_rounds", OPT_U32, D(quorum_rounds), "consecutive rounds below quorum for quorum_loss (and above to resolve)"},
    {"token_fail", OPT_F64, D(token_fail), "token usage ratio that is token_exhaustion"},
    {"token_fail_clear", OPT_F64, D(token_fail_clear), "token usage ratio that resolves it"},
    {"memory_fail", OPT_F64, D(memory_fail), "memory used/limit that is memory_exhaustion"},
    {"memory_fail_clear", OPT_F64, D(memory_fail_clear), "memory used/limit that resolves it"},
    {"queue_fail", OPT_U32, D(queue_fail), "pending tasks that are queue_overflow"},
    {"queue_fail_clear", OPT_U32, D(queue_fail_clear), "pending tasks that resolve it"},
    {"pred_threshold", OPT_F64, D(pred_threshold), "confidence a prediction needs to be published"},
    {"pred_prior", OPT_F64, D(pred_prior), "a prediction source's accuracy before any is measured"},
    {"pred_margin", OPT_DET_DUR, D(pred_margin_ms), "how late after its expected time a failure still fulfils a prediction"},
    {"pred_agent_eta", OPT_DET_DUR, D(pred_agent_eta_ms), "expected time from degraded signs to a death, until learned"},
    {"pred_degraded_beats", OPT_U32, D(pred_degraded_beats), "DEGRADED heartbeats in a row before agent_down is predicted"},
    {"pred_topup_margin", OPT_F64, D(pred_topup_margin), "usage over the highest seen top-up before the budget is forecast to run out"},
    {"pred_healthy_beats", OPT_U32, D(pred_healthy_beats), "healthy heartbeats in a row before it is withdrawn"},
    {"heal", OPT_BOOL, C(heal), "issue healing commands (false: detect and predict only)"},
    {"autonomy", OPT_STR, C(autonomy), "per action (and swarm): [<swarm>/]<action>=observe|recommend|act, comma separated"},
    {"heal_preventive", OPT_F64, D(heal_preventive), "prediction confidence for a preventive command"},
    {"heal_restart_deadline", OPT_DET_DUR, D(heal_restart_deadline_ms), "time for a restart to be verified"},
    {"heal_retry_deadline", OPT_DET_DUR, D(heal_retry_deadline_ms), "time for a retried task to complete"},
    {"heal_rebalance_deadline", OPT_DET_DUR, D(heal_rebalance_deadline_ms), "time for a rebalance (or custom action) to be verified"},
    {"heal_quorum_deadline", OPT_DET_DUR, D(heal_quorum_deadline_ms), "time for quorum to be back"},
    {"heal_restart_max", OPT_U32, D(heal_restart_max), "restarts of one agent within heal_restart_window before escalating"},
    {"heal_swarm_restart_max", OPT_U32, D(heal_swarm_restart_max), "restarts in a swarm within heal_restart_window before escalating"},
    {"heal_restart_window", OPT_DET_DUR, D(heal_restart_window_ms), "window of the restart caps (event time)"},
    {"heal_backoff", OPT_DET_DUR, D(heal_backoff_ms), "wait before the second try of an episode, doubling"},
    {"heal_backoff_max", OPT_DET_DUR, D(heal_backoff_max_ms), "longest wait between tries"},
    {"heal_hold", OPT_DET_DUR, D(heal_hold_ms), "how long a restart waits for a quorum to spare, then escalates"},
};
#define N_OPTIONS (sizeof options / sizeof options[0])

static const opt *find_opt(const char *name)
{
    char norm[64];
    size_t n = strlen(name);
    if (n >= sizeof norm)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        norm[i] = name[i] == '-' ? '_' : (char)tolower((unsigned char)name[i]);
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strcmp(options[i].name, norm) == 0)
            return &options[i];
    return NULL;
}

static sm_status set_str(char **slot, const char *value)
{
    char *dup = strdup(value);
    if (!dup)
        return SM_ERR_NOMEM;
    free(*slot);
    *slot = dup;
    return SM_OK;
}

sm_status sm_config_init(sm_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    sm_detect_config_default(&cfg->detect);
    cfg->connect_timeout_ms = 2000;
    cfg->reconnect_wait_ms = 500;
    cfg->reconnect_buf = 8 << 20;
    cfg->pending_limit = 1000000;
    cfg->send_asap = true;
    cfg->map_size = 64 << 20;
    cfg->map_max = 1LL << 30;
    cfg->commit_events = 262144;
    cfg->commit_ms = 1000;
    cfg->commit_thread = true;
    cfg->commit_thread_min = 1 << 20;
    cfg->retention_ms = 10 * 60 * 1000;
    cfg->clock_jump_ms = 5 * 60 * 1000;
    cfg->max_skew_ms = 5 * 60 * 1000;
    cfg->publish_after_commit = true;
    cfg->swarm_retention_ms = 60 * 60 * 1000;
    cfg->max_swarms = 1000;
    cfg->max_agents = 100000;
    cfg->stats_ms = 10000;
    cfg->js_setup = true;
    cfg->js_fetch_batch = 256;
    cfg->js_ack_wait_ms = 30000;
    cfg->js_max_deliver = 5;
    cfg->js_dup_window_ms = 2 * 60 * 1000;
    cfg->js_max_age_ms = 24LL * 3600 * 1000;
    cfg->partitions = 0;
    cfg->lease_ttl_ms = 10000;
    cfg->js_replicas = 1;
    cfg->heal = true;
    cfg->report_interval_ms = 0;   /* off: on, the goldens would carry reports */
    cfg->perf_retention_ms = 24LL * 60 * 60 * 1000;
    cfg->decision_log_max = 100000;
    cfg->decision_log_age_ms = 7LL * 24 * 60 * 60 * 1000;
    cfg->scaling = false;      /* off: on, the goldens would carry decisions */
    cfg->scale_up_pending = 30;
    cfg->scale_per_agent = 20;
    cfg->scale_down_pending = 10;
    cfg->scale_max_agents = 50;
    cfg->scale_cooldown_ms = 20000;
    cfg->scale_stabilise_ms = 60000;
    cfg->scale_drain_ms = 45000;
    cfg->scale_work_ms = 120000;
    cfg->scale_burst_ms = 480000;
    cfg->scale_target_util = 0.8;
    const struct { char **slot; const char *v; } strs[] = {
        {&cfg->nats_url, "nats://127.0.0.1:4222"},
        {&cfg->name, "swarm-medic"},
        {&cfg->input_subject, "swarm.>"},
        {&cfg->subject_ids, "subject"},
        {&cfg->output_prefix, "medic"},
        {&cfg->deadletter_subject, "medic.deadletter"},
        {&cfg->store_dir, "./swarm-medic-data"},
        {&cfg->log_level, "info"},
        {&cfg->input, "core"},
        {&cfg->js_stream, "SWARM"},
        {&cfg->js_out_stream, "MEDIC"},
        {&cfg->js_consumer, "swarm-medic"},
        {&cfg->worker_id, ""},
        {&cfg->lease_bucket, "medic_leases"},
        {&cfg->autonomy, SM_AUTONOMY_DEFAULT},
        {&cfg->log_format, "text"},
        {&cfg->http_listen, ""},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (set_str(strs[i].slot, strs[i].v) != SM_OK) {
            sm_config_free(cfg);
            return SM_ERR_NOMEM;
        }
    }
    return SM_OK;
}

void sm_config_free(sm_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (options[i].type == OPT_STR) {
            char **slot = (char **)((char *)cfg + options[i].offset);
            free(*slot);
            *slot = NULL;
        }
    }
}

sm_status sm_config_copy(sm_config *dst, const sm_config *src)
{
    *dst = *src;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (options[i].type != OPT_STR)
            continue;
        char **slot = (char **)((char *)dst + options[i].offset);
        *slot = NULL;
    }
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (options[i].type != OPT_STR)
            continue;
        char **slot = (char **)((char *)dst + options[i].offset);
        char *const *from = (char *const *)((const char *)src + options[i].offset);
        if (*from && set_str(slot, *from) != SM_OK) {
            sm_config_free(dst);
            return SM_ERR_NOMEM;
        }
    }
    return SM_OK;
}

/* Parses a number with an optional unit suffix scaled by the table. */
static bool parse_scaled(const char *s, bool duration, int64_t *out)
{
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0)
        return false;
    double mul = 1;
    if (duration) {
        if (strcmp(end, "") == 0 || strcmp(end, "ms") == 0) mul = 1;
        else if (strcmp(end, "s") == 0) mul = 1000;
        else if (strcmp(end, "m") == 0) mul = 60000;
        else if (strcmp(end, "h") == 0) mul = 3600000;
        else return false;
    } else {
        if (strcmp(end, "") == 0) mul = 1;
        else if (strcmp(end, "K") == 0 || strcmp(end, "k") == 0) mul = 1024.0;
        else if (strcmp(end, "M") == 0) mul = 1024.0 * 1024;
        else if (strcmp(end, "G") == 0) mul = 1024.0 * 1024 * 1024;
        else return false;
    }
    v *= mul;
    if (v > 9e18)
        return false;
    *out = (int64_t)v;
    return true;
}

/* Longest string setting, in bytes. */
#define STR_MAX 511

/* Integer settings whose range is narrower than their type's: what the
 * NATS client takes (an int, and a connect needs time). */
static const struct bound {
    const char *name;
    int64_t min, max;
    const char *unit;
} bounds[] = {
    {"pending_limit", 1, INT_MAX, "messages"},
    {"reconnect_buf", 1, INT_MAX, "bytes"},
    {"connect_timeout", 1, INT64_MAX, "ms"},
};

/* Refuses v for o if o has a bound v is outside. */
static sm_status check_bound(const opt *o, int64_t v, const char *value,
                             const char *origin, char *err, size_t errcap)
{
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        const struct bound *b = &bounds[i];
        if (strcmp(b->name, o->name) != 0 || (v >= b->min && v <= b->max))
            continue;
        snprintf(err, errcap, "%s: %s must be %lld to %lld %s, not '%s'",
                 origin, o->name, (long long)b->min, (long long)b->max,
                 b->unit, value);
        return SM_ERR_CONFIG;
    }
    return SM_OK;
}

/* Whether s is a NATS subject: dot-separated, non-empty tokens of
 * printable bytes (no space, no control byte). Wildcards ('*', a last
 * '>') only as whole tokens, and only in a filter. */
static bool subject_ok(const char *s, bool filter)
{
    for (const char *tok = s;;) {
        size_t n = strcspn(tok, ".");
        bool star = n == 1 && *tok == '*', gt = n == 1 && *tok == '>';
        if (n == 0 || ((star || gt) && !filter) || (gt && tok[n]))
            return false;
        for (size_t i = 0; i < n && !star && !gt; i++) {
            unsigned char c = (unsigned char)tok[i];
            if (c <= ' ' || c == 0x7f || c == '*' || c == '>')
                return false;
        }
        if (!tok[n])
            return true;
        tok += n + 1;
    }
}

/* Settings that are subjects: the worker's input filter, and the
 * literal subjects (or first tokens) it publishes on. */
static sm_status check_str(const opt *o, const char *value, const char *origin,
                           char *err, size_t errcap)
{
    size_t n = strlen(value);
    if (n > STR_MAX) {
        snprintf(err, errcap, "%s: %s is %zu bytes long; at most %d", origin,
                 o->name, n, STR_MAX);
        return SM_ERR_CONFIG;
    }
    bool in = strcmp(o->name, "input_subject") == 0;
    bool out = strcmp(o->name, "output_prefix") == 0 ||
               strcmp(o->name, "deadletter_subject") == 0;
    if ((in || out) && !subject_ok(value, in)) {
        snprintf(err, errcap, "%s: %s '%s' is not a NATS subject %s", origin,
                 o->name, value,
                 in ? "filter (dot-separated tokens, no spaces or control "
                      "bytes; '*' or a last '>' as whole tokens)"
                    : "to publish on (dot-separated tokens, no spaces, "
                      "control bytes or wildcards)");
        return SM_ERR_CONFIG;
    }
    return SM_OK;
}

static sm_status apply(sm_config *cfg, const opt *o, const char *value,
                       const char *origin, char *err, size_t errcap)
{
    void *slot = (char *)cfg + o->offset;
    int64_t i64;
    double f;
    char *end;
    switch (o->type) {
    case OPT_STR:
        if (check_str(o, value, origin, err, errcap) != SM_OK)
            return SM_ERR_CONFIG;
        return set_str((char **)slot, value);
    case OPT_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes"))
            *(bool *)slot = true;
        else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no"))
            *(bool *)slot = false;
        else
            goto bad;
        return SM_OK;
    case OPT_I64:
        errno = 0;
        i64 = strtoll(value, &end, 10);
        if (errno || end == value || *end || i64 < 0)
            goto bad;
        goto set_i64;
    case OPT_DUR:
    case OPT_DET_DUR:
        if (!parse_scaled(value, true, &i64))
            goto bad;
        goto set_i64;
    case OPT_SIZE:
        if (!parse_scaled(value, false, &i64))
            goto bad;
        goto set_i64;
    case OPT_U32:
        errno = 0;
        i64 = strtoll(value, &end, 10);
        if (errno || end == value || *end || i64 < 0 || i64 > UINT32_MAX)
            goto bad;
        *(uint32_t *)slot = (uint32_t)i64;
        return SM_OK;
    case OPT_F64:
        errno = 0;
        f = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(f))
            goto bad;
        *(double *)slot = f;
        return SM_OK;
    }
bad:
    snprintf(err, errcap, "%s: bad value '%s' for %s", origin, value, o->name);
    return SM_ERR_CONFIG;
set_i64:
    if (check_bound(o, i64, value, origin, err, errcap) != SM_OK)
        return SM_ERR_CONFIG;
    *(int64_t *)slot = i64;
    return SM_OK;
}

sm_status sm_config_set(sm_config *cfg, const char *name, const char *value,
                        const char *origin, char *err, size_t errcap)
{
    const opt *o = find_opt(name);
    if (!o) {
        snprintf(err, errcap, "%s: unknown setting '%s'", origin, name);
        return SM_ERR_CONFIG;
    }
    return apply(cfg, o, value, origin, err, errcap);
}

/* Applies one key of a JSON file: a string setting takes a JSON string
 * (whole, never cut), the others a string, number or boolean. */
static sm_status set_json(sm_config *cfg, const char *path, const char *key,
                          json_t *val, char *err, size_t errcap)
{
    const opt *o = find_opt(key);
    char num[64];
    const char *text = num;
    if (!o) {
        snprintf(err, errcap, "%s: unknown setting '%s'", path, key);
        return SM_ERR_CONFIG;
    }
    if (json_is_string(val)) {
        text = json_string_value(val);
        if (strlen(text) != json_string_length(val)) {
            snprintf(err, errcap, "%s: '%s' holds a NUL byte", path, key);
            return SM_ERR_CONFIG;
        }
    } else if (o->type == OPT_STR) {
        snprintf(err, errcap, "%s: '%s' must be a string", path, key);
        return SM_ERR_CONFIG;
    } else if (json_is_integer(val)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(val));
    } else if (json_is_real(val)) {
        snprintf(num, sizeof num, "%.17g", json_real_value(val));
    } else if (json_is_boolean(val)) {
        snprintf(num, sizeof num, "%s", json_is_true(val) ? "true" : "false");
    } else {
        snprintf(err, errcap, "%s: '%s' must be a string, number or boolean",
                 path, key);
        return SM_ERR_CONFIG;
    }
    return apply(cfg, o, text, path, err, errcap);
}

sm_status sm_config_load_file(sm_config *cfg, const char *path, char *err,
                              size_t errcap)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errcap, "%s:%d:%d: %s", path, jerr.line, jerr.column,
                 jerr.text);
        return SM_ERR_CONFIG;
    }
    sm_status s = SM_OK;
    if (!json_is_object(root)) {
        snprintf(err, errcap, "%s: top level must be a JSON object", path);
        s = SM_ERR_CONFIG;
        goto cleanup;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        s = set_json(cfg, path, key, val, err, errcap);
        if (s != SM_OK)
            goto cleanup;
    }
cleanup:
    json_decref(root);
    return s;
}

sm_status sm_config_load_env(sm_config *cfg, char *const *envp, char *err,
                             size_t errcap)
{
    static const char prefix[] = "SWARM_MEDIC_";
    for (size_t i = 0; envp && envp[i]; i++) {
        if (strncmp(envp[i], prefix, sizeof prefix - 1) != 0)
            continue;
        const char *kv = envp[i] + sizeof prefix - 1;
        const char *eq = strchr(kv, '=');
        if (!eq || eq == kv || (size_t)(eq - kv) >= 64)
            continue;
        char name[64];
        memcpy(name, kv, (size_t)(eq - kv));
        name[eq - kv] = 0;
        char origin[96];
        snprintf(origin, sizeof origin, "environment %s%s", prefix, name);
        sm_status s = sm_config_set(cfg, name, eq + 1, origin, err, errcap);
        if (s != SM_OK)
            return s;
    }
    return SM_OK;
}

/* Files the client reads only when it connects: a missing one would be
 * retried for ever, so they must be readable at start. */
static sm_status check_files(const sm_config *cfg, char *err, size_t errcap)
{
    const struct { const char *name, *path; } files[] = {
        {"nats_creds", cfg->nats_creds}, {"nats_nkey_seed", cfg->nats_nkey_seed},
        {"tls_ca", cfg->tls_ca}, {"tls_cert", cfg->tls_cert},
        {"tls_key", cfg->tls_key},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *p = files[i].path;
        if (!p || !p[0] || access(p, R_OK) == 0)
            continue;
        snprintf(err, errcap, "%s: cannot read '%s' (%s)", files[i].name, p,
                 strerror(errno));
        return SM_ERR_CONFIG;
    }
    return SM_OK;
}

/* Whether two subjects (filters) can match one subject. */
static bool overlap(const char *a, const char *b)
{
    for (;;) {
        size_t na = strcspn(a, "."), nb = strcspn(b, ".");
        if ((na == 1 && *a == '>') || (nb == 1 && *b == '>'))
            return true;
        bool any = (na == 1 && *a == '*') || (nb == 1 && *b == '*');
        if (!any && (na != nb || memcmp(a, b, na) != 0))
            return false;
        a += na;
        b += nb;
        if (!*a || !*b)
            return !*a && !*b;
        a++;
        b++;
    }
}

/* What the worker publishes must not come back to it as input: a
 * rejected dead letter would be dead-lettered again, for ever. */
static sm_status check_loops(const sm_config *cfg, char *err, size_t errcap)
{
    char outputs[STR_MAX + 8];
    snprintf(outputs, sizeof outputs, "%s.*.*.*", cfg->output_prefix);
    if (overlap(cfg->input_subject, cfg->deadletter_subject)) {
        snprintf(err, errcap, "deadletter_subject '%s' is inside input_subject "
                 "'%s': dead letters would be consumed again",
                 cfg->deadletter_subject, cfg->input_subject);
        return SM_ERR_CONFIG;
    }
    if (overlap(cfg->input_subject, outputs)) {
        snprintf(err, errcap, "output_prefix '%s': its subjects are inside "
                 "input_subject '%s' and would be consumed again",
                 cfg->output_prefix, cfg->input_subject);
        return SM_ERR_CONFIG;
    }
    return SM_OK;
}

/* The JetStream settings (js.h): names the server takes, sane sizes. */
static sm_status check_js(const sm_config *cfg, char *err, size_t errcap)
{
    if (strcmp(cfg->input, "core") != 0 && strcmp(cfg->input, "jetstream") != 0) {
        snprintf(err, errcap, "input must be core or jetstream, not '%s'", cfg->input);
        return SM_ERR_CONFIG;
    }
    const char *names[] = {cfg->js_stream, cfg->js_out_stream, cfg->js_consumer};
    for (size_t i = 0; i < 3; i++)
        if (!names[i][0] || strpbrk(names[i], ". *>\t\r\n/\\")) {
            snprintf(err, errcap, "js_stream, js_out_stream and js_consumer must "
                     "be non-empty names without '.', '*', '>', '/' or spaces "
                     "('%s')", names[i]);
            return SM_ERR_CONFIG;
        }
    if (strcmp(cfg->js_stream, cfg->js_out_stream) == 0) {
        snprintf(err, errcap, "js_stream and js_out_stream must differ");
        return SM_ERR_CONFIG;
    }
    if (cfg->js_fetch_batch < 1 || cfg->js_max_deliver < 1 ||
        cfg->js_ack_wait_ms < 100 || cfg->js_dup_window_ms < 1000 ||
        cfg->js_max_age_ms < 0) {
        snprintf(err, errcap, "js_fetch_batch and js_max_deliver must be >= 1, "
                 "js_ack_wait >= 100ms, js_dup_window >= 1s");
        return SM_ERR_CONFIG;
    }
    if (cfg->partitions < 0 || cfg->partitions > SM_CONFIG_MAX_PARTITIONS ||
        (cfg->partitions > 0 && strcmp(cfg->input, "jetstream") != 0)) {
        snprintf(err, errcap, "partitions must be 0 (off) to %d, and needs "
                 "input=jetstream", SM_CONFIG_MAX_PARTITIONS);
        return SM_ERR_CONFIG;
    }
    if (cfg->js_replicas < 1 || cfg->js_replicas > 5) {
        snprintf(err, errcap, "js_replicas must be 1 to 5");
        return SM_ERR_CONFIG;
    }
    if (cfg->partitions > 0 && cfg->lease_ttl_ms < 300) {
        snprintf(err, errcap, "lease_ttl must be at least 300ms (renewed every "
                 "third of it)");
        return SM_ERR_CONFIG;
    }
    if (strlen(cfg->worker_id) > 40 ||
        (cfg->partitions > 0 && strlen(cfg->js_consumer) + strlen(cfg->js_stream) > 40) ||
        strspn(cfg->worker_id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
               "0123456789-_") != strlen(cfg->worker_id) ||
        !cfg->lease_bucket[0] || strpbrk(cfg->lease_bucket, ". *>\t\r\n/\\")) {
        snprintf(err, errcap, "worker_id: at most 40 of [A-Za-z0-9_-]; "
                 "js_stream and js_consumer: 40 bytes together; lease_bucket: "
                 "a name without '.', '*', '>', '/' or spaces");
        return SM_ERR_CONFIG;
    }
    if (cfg->js_max_age_ms != 0 && cfg->js_max_age_ms < cfg->detect.window_ms) {
        snprintf(err, errcap, "js_max_age (%lld ms) must be 0 (no limit) or at "
                 "least the window (%lld ms): a takeover rebuilds the windows "
                 "from the retained stream", (long long)cfg->js_max_age_ms,
                 (long long)cfg->detect.window_ms);
        return SM_ERR_CONFIG;
    }
    return SM_OK;
}

/* Whether s is host:port with a port of 0 to 65535 (http.c resolves the
 * host when it listens). */
static bool listen_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || !colon[1] || strlen(colon + 1) > 5)
        return false;
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return atoi(colon + 1) <= 65535;
}

sm_status sm_config_validate(const sm_config *cfg, char *err, size_t errcap)
{
    const char *why = NULL;
    if (sm_detect_config_validate(&cfg->detect, &why) != SM_OK) {
        snprintf(err, errcap, "detector settings: %s", why ? why : "invalid");
        return SM_ERR_CONFIG;
    }
    if (cfg->map_size < 65536 || cfg->map_max < cfg->map_size) {
        snprintf(err, errcap, "map_size must be >= 64K and map_max >= map_size");
        return SM_ERR_CONFIG;
    }
    if (cfg->commit_events < 1) {
        snprintf(err, errcap, "commit_events must be >= 1");
        return SM_ERR_CONFIG;
    }
    if (sm_log_level_parse(cfg->log_level) < 0) {
        snprintf(err, errcap, "log_level must be debug, info, warn or error");
        return SM_ERR_CONFIG;
    }
    if (strcmp(cfg->subject_ids, "subject") != 0 &&
        strcmp(cfg->subject_ids, "payload") != 0) {
        snprintf(err, errcap, "subject_ids must be subject or payload, not '%s'",
                 cfg->subject_ids);
        return SM_ERR_CONFIG;
    }
    if (sm_log_format_parse(cfg->log_format) < 0) {
        snprintf(err, errcap, "log_format must be text or json, not '%s'",
                 cfg->log_format);
        return SM_ERR_CONFIG;
    }
    if (cfg->http_listen[0] && !listen_ok(cfg->http_listen)) {
        snprintf(err, errcap, "http_listen '%s' is not host:port (e.g. "
                 "127.0.0.1:9464; port 0 picks a free one; empty: off)",
                 cfg->http_listen);
        return SM_ERR_CONFIG;
    }
    if (!cfg->input_subject[0] || !cfg->output_prefix[0] ||
        !cfg->deadletter_subject[0] || !cfg->store_dir[0]) {
        snprintf(err, errcap, "input_subject, output_prefix, deadletter_subject "
                 "and store_dir must not be empty");
        return SM_ERR_CONFIG;
    }
    if (cfg->clock_jump_ms < cfg->detect.tick_ms) {
        snprintf(err, errcap, "clock_jump (%lld ms) must be at least the tick "
                 "(%lld ms)", (long long)cfg->clock_jump_ms,
                 (long long)cfg->detect.tick_ms);
        return SM_ERR_CONFIG;
    }
    if (cfg->max_skew_ms != 0 && cfg->max_skew_ms < cfg->detect.tick_ms) {
        snprintf(err, errcap, "max_skew (%lld ms) must be 0 or at least the "
                 "tick (%lld ms)", (long long)cfg->max_skew_ms,
                 (long long)cfg->detect.tick_ms);
        return SM_ERR_CONFIG;
    }
    if (cfg->swarm_retention_ms != 0 &&
        cfg->swarm_retention_ms < cfg->detect.window_ms) {
        snprintf(err, errcap, "swarm_retention (%lld ms) must be 0 or at least "
                 "the window (%lld ms)", (long long)cfg->swarm_retention_ms,
                 (long long)cfg->detect.window_ms);
        return SM_ERR_CONFIG;
    }
    if (cfg->retention_ms != 0 && cfg->retention_ms < cfg->detect.window_ms) {
        snprintf(err, errcap, "retention (%lld ms) must be 0 or at least the "
                 "window (%lld ms)", (long long)cfg->retention_ms,
                 (long long)cfg->detect.window_ms);
        return SM_ERR_CONFIG;
    }
    if (check_js(cfg, err, errcap) != SM_OK)
        return SM_ERR_CONFIG;
    sm_heal_config hc;
    if (sm_heal_config_for(cfg->autonomy, NULL, &hc, err, errcap) != SM_OK)
        return SM_ERR_CONFIG;
    if (check_files(cfg, err, errcap) != SM_OK)
        return SM_ERR_CONFIG;
    return check_loops(cfg, err, errcap);
}

static void print_default(const sm_config *d, const opt *o, FILE *f)
{
    const void *slot = (const char *)d + o->offset;
    switch (o->type) {
    case OPT_STR: fprintf(f, "%s", *(char *const *)slot ? *(char *const *)slot : ""); break;
    case OPT_BOOL: fprintf(f, "%s", *(const bool *)slot ? "true" : "false"); break;
    case OPT_I64: fprintf(f, "%lld", (long long)*(const int64_t *)slot); break;
    case OPT_DUR: case OPT_DET_DUR: fprintf(f, "%lldms", (long long)*(const int64_t *)slot); break;
    case OPT_SIZE: fprintf(f, "%lld", (long long)*(const int64_t *)slot); break;
    case OPT_U32: fprintf(f, "%u", *(const uint32_t *)slot); break;
    case OPT_F64: fprintf(f, "%g", *(const double *)slot); break;
    }
}

void sm_config_usage(const sm_config *defaults, void *file)
{
    FILE *f = file;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "%s", options[i].name);
        for (char *p = flag; *p; p++)
            if (*p == '_')
                *p = '-';
        fprintf(f, "  --%-22s %s (default: ", flag, options[i].help);
        print_default(defaults, &options[i], f);
        fprintf(f, ")\n");
    }
}

/* Settings whose value is a secret: --check-config shows only that one
 * is set. */
static bool secret(const char *name)
{
    return strcmp(name, "nats_password") == 0 || strcmp(name, "nats_token") == 0;
}

void sm_config_print(const sm_config *cfg, void *file)
{
    FILE *f = file;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const opt *o = &options[i];
        char *const *str = (char *const *)((const char *)cfg + o->offset);
        fprintf(f, "  %-22s = ", o->name);
        if (o->type == OPT_STR && secret(o->name)) {
            fprintf(f, "%s", *str && (*str)[0] ? "(set, not shown)" : "");
        } else if (o->type == OPT_STR && strcmp(o->name, "nats_url") == 0) {
            char url[STR_MAX + 1];
            fprintf(f, "%s", sm_log_url(*str, url, sizeof url));
        } else {
            print_default(cfg, o, f);
        }
        fputc('\n', f);
    }
}
