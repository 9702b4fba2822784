/*
 * check_ops.c - what an operator sees, on real parts: the swarm-medic
 * binary with --http-listen on a random port against a real nats-server,
 * fed by swarm-sim; /metrics counts what was sent, /readyz says 503 before
 * the connection and 200 once subscribed; systemd's notify protocol
 * (READY=1, WATCHDOG=1, STOPPING=1) read on a datagram socket of our own;
 * --check-config on good and bad configurations; JSON log lines parsed
 * with jansson. The HTTP rules themselves (503 while draining, 404, 405,
 * a stalled loop) are checked in-process against the sm_http server.
 */
#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "metrics.h"
#include "proc.h"
#include "support.h"
#include "runner.h"

/* ---- a tiny HTTP client -------------------------------------------------- */

typedef struct reply {
    int code;
    char *body;                 /* malloc'd */
} reply;

/* GET path from 127.0.0.1:port; code -1 if nothing answered. */
static reply http_get(int port, const char *path, const char *method)
{
    reply r = {-1, NULL};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return r;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
                     method, path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return r;
    }
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    ssize_t got;
    while (buf && (got = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)got;
        if (len + 1 >= cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b)
                break;
            buf = b;
        }
    }
    close(fd);
    if (!buf)
        return r;
    buf[len] = 0;
    sscanf(buf, "HTTP/1.%*d %d", &r.code);
    char *body = strstr(buf, "\r\n\r\n");
    r.body = strdup(body ? body + 4 : "");
    free(buf);
    return r;
}

/* The value of sample `series` (name with its labels, exactly) in a
 * Prometheus text body; -1 if absent. */
static double metric(const char *body, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

/* Scrapes /metrics until `series` reaches want (up to timeout_ms);
 * returns the last body (malloc'd). */
static char *scrape_until(int port, const char *series, double want,
                          int timeout_ms)
{
    char *body = NULL;
    for (int waited = 0;; waited += 50) {
        reply r = http_get(port, "/metrics", "GET");
        free(body);
        body = r.body;
        if ((r.code == 200 && metric(body, series) >= want) || waited >= timeout_ms)
            return body;
        sm_proc_sleep_ms(50);
    }
}

/* GETs path until it answers `code` (up to timeout_ms); the last reply. */
static reply await_code(int port, const char *path, int code, int timeout_ms)
{
    reply r = http_get(port, path, "GET");
    for (int waited = 0; r.code != code && waited < timeout_ms; waited += 50) {
        free(r.body);
        sm_proc_sleep_ms(50);
        r = http_get(port, path, "GET");
    }
    return r;
}

/* ---- the worker --------------------------------------------------------- */

typedef struct rig {
    sm_test_server srv;
    bool srv_up;
    char dir[256];
    char log[320];
    pid_t worker;
    int http_port;
} rig;

/* Every line of the worker's log is a JSON object with ts, level and
 * event; returns the port of its http_listening line (0 if none yet). */
static int json_log_port(const char *path, int *lines)
{
    char *txt = sm_test_slurp(path);
    int port = 0;
    *lines = 0;
    /* a line the worker is writing right now is not judged yet */
    char *end = txt ? strrchr(txt, '\n') : NULL;
    if (txt)
        *(end ? end + 1 : txt) = 0;
    for (char *line = txt ? strtok(txt, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        ck_assert_msg(o && json_is_object(o), "log line is not JSON (%s): %s",
                      e.text, line);
        ck_assert_msg(json_is_integer(json_object_get(o, "ts")) &&
                      json_is_string(json_object_get(o, "level")) &&
                      json_is_string(json_object_get(o, "event")),
                      "log line lacks ts, level or event: %s", line);
        if (strcmp(json_string_value(json_object_get(o, "event")), "http_listening") == 0)
            port = (int)json_integer_value(json_object_get(o, "port"));
        json_decref(o);
        (*lines)++;
    }
    free(txt);
    return port;
}

/* Starts the worker on url with --http-listen=127.0.0.1:0 and JSON logs;
 * waits for its HTTP port (not for the bus). */
static void start_worker(rig *r, const char *url)
{
    char bin[512], u[128], store[400];
    sm_test_bin(bin, sizeof bin, "swarm-medic");
    snprintf(u, sizeof u, "--nats-url=%s", url);
    snprintf(store, sizeof store, "--store-dir=%s/data", r->dir);
    const char *argv[] = {bin, u, store, "--http-listen=127.0.0.1:0",
                          "--log-format=json", "--stats-interval=0",
                          "--commit-interval=20ms", "--reconnect-wait=100ms",
                          NULL};
    snprintf(r->log, sizeof r->log, "%s/worker.log", r->dir);
    r->worker = sm_test_spawn(argv, r->log, true);
    ck_assert_msg(sm_test_wait_for_text(r->log, "\"http_listening\"", 20000),
                  "no http_listening line:\n%s", SM_TEST_TAIL(r->log));
    int lines;
    r->http_port = json_log_port(r->log, &lines);
    ck_assert_msg(r->http_port > 0, "no port in the log:\n%s", SM_TEST_TAIL(r->log));
}

static void rig_down(rig *r)
{
    if (r->worker > 0) {
        kill(r->worker, SIGTERM);
        int rc = sm_test_wait(r->worker, 20000);
        ck_assert_msg(rc == 0, "worker exited %d:\n%s", rc, SM_TEST_TAIL(r->log));
    }
    if (r->srv_up)
        sm_test_server_stop(&r->srv);
    sm_test_rmtree(r->srv.dir);
    sm_test_rmtree(r->dir);
}

/* A port nothing listens on now. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

typedef struct sent {
    unsigned long long total, task, heartbeat, resource, consensus, agent;
} sent;

/* Runs swarm-sim against url and reads what it says it published. */
static sent run_sim(const rig *r, const char *url, const char *seed)
{
    char bin[512], u[128], out[320];
    sm_test_bin(bin, sizeof bin, "swarm-sim");
    snprintf(u, sizeof u, "--url=%s", url);
    snprintf(out, sizeof out, "%s/sim-%s.log", r->dir, seed);
    const char *argv[] = {bin, u, "--seed", seed, "--duration", "60s",
                          "--rate", "150", "--fault", "token:0:10s-50s",
                          "--fault", "slow:1:10s-50s", NULL};
    int rc = sm_test_wait(sm_test_spawn(argv, out, false), 30000);
    char *txt = sm_test_slurp(out);
    ck_assert_msg(rc == 0, "swarm-sim exited %d: %s", rc, txt);
    sent s = {0};
    const char *line = txt ? strstr(txt, " events (task ") : NULL;
    ck_assert_msg(line, "no totals from swarm-sim: %s", txt);
    while (line > txt && line[-1] != ' ')
        line--;
    ck_assert_int_eq(sscanf(line, "%llu events (task %llu, heartbeat %llu, "
                                  "resource %llu, consensus %llu, agent %llu)",
                            &s.total, &s.task, &s.heartbeat, &s.resource,
                            &s.consensus, &s.agent), 6);
    free(txt);
    return s;
}

static void expect_kinds(const char *body, const sent *s)
{
    const struct { const char *series; unsigned long long want; } k[] = {
        {"swarm_medic_events_total{kind=\"task\"}", s->task},
        {"swarm_medic_events_total{kind=\"heartbeat\"}", s->heartbeat},
        {"swarm_medic_events_total{kind=\"resource\"}", s->resource},
        {"swarm_medic_events_total{kind=\"consensus\"}", s->consensus},
        {"swarm_medic_events_total{kind=\"agent\"}", s->agent},
    };
    for (size_t i = 0; i < sizeof k / sizeof *k; i++)
        ck_assert_msg(metric(body, k[i].series) == (double)k[i].want,
                      "%s = %g, sent %llu", k[i].series, metric(body, k[i].series),
                      k[i].want);
}

/* The sum of the decisions_total samples whose labels start with
 * `labels` ("" for all of them). */
static double decisions_sum(const char *body, const char *labels)
{
    char name[96];
    snprintf(name, sizeof name, "swarm_medic_decisions_total{%s", labels);
    double sum = 0;
    for (const char *p = strstr(body, name); p; p = strstr(p + 1, name))
        if (p == body || p[-1] == '\n')
            sum += strtod(strchr(p, ' ') + 1, NULL);
    return sum;
}

/* A tally of strings. */
typedef struct tally {
    char key[64][128];
    int count[64], n;
} tally;

static void tally_add(tally *t, const char *key)
{
    int i = 0;
    while (i < t->n && strcmp(t->key[i], key) != 0)
        i++;
    if (i == t->n && t->n < 64)
        snprintf(t->key[t->n++], sizeof t->key[0], "%s", key);
    if (i < 64)
        t->count[i]++;
}

/* Every conclusion a subscriber of medic.> got (medic.<swarm>.<kind>.
 * <type>, until 1 s of silence) is counted in decisions_total: under its
 * kind, and for bottlenecks, failures and predictions under its type
 * (a verdict's type label is its outcome, not the subject's action);
 * nothing else is. */
static void expect_decisions(int port, natsSubscription *out)
{
    tally series = {0}, kinds = {0};
    int total = 0;
    natsMsg *m;
    while (natsSubscription_NextMsg(&m, out, 1000) == NATS_OK) {
        char kind[32], type[40], key[128];
        if (sscanf(natsMsg_GetSubject(m), "medic.%*[^.].%31[^.].%39s", kind, type) == 2) {
            snprintf(key, sizeof key, "kind=\"%s\"", kind);
            tally_add(&kinds, key);
            snprintf(key, sizeof key, "swarm_medic_decisions_total{kind=\"%s\",type=\"%s\"}",
                     kind, type);
            if (!strcmp(kind, "bottleneck") || !strcmp(kind, "failure") ||
                !strcmp(kind, "prediction"))
                tally_add(&series, key);
            total++;
        }
        natsMsg_Destroy(m);
    }
    ck_assert_msg(series.n > 0, "the faults raised no conclusion");
    char *body = scrape_until(port, "swarm_medic_up", 1, 1000);
    for (int i = 0; i < series.n; i++)
        ck_assert_msg(metric(body, series.key[i]) == series.count[i],
                      "%s = %g, received %d", series.key[i],
                      metric(body, series.key[i]), series.count[i]);
    for (int i = 0; i < kinds.n; i++)
        ck_assert_msg(decisions_sum(body, kinds.key[i]) == kinds.count[i],
                      "decisions_total{%s} sum %g, received %d", kinds.key[i],
                      decisions_sum(body, kinds.key[i]), kinds.count[i]);
    ck_assert_msg(decisions_sum(body, "") == total, "decisions_total sum %g, received %d",
                  decisions_sum(body, ""), total);
    free(body);
}

START_TEST(metrics_count_what_was_sent)
{
    rig r = {0};
    sm_test_tmpdir(r.dir, sizeof r.dir, "ops");
    sm_test_server_start(&r.srv, 0, NULL);
    r.srv_up = true;
    start_worker(&r, r.srv.url);
    ck_assert_msg(sm_test_wait_for_text(r.log, "\"subscribed\"", 20000),
                  "worker did not subscribe:\n%s", SM_TEST_TAIL(r.log));
    natsConnection *nc = NULL;
    natsSubscription *out = NULL;
    ck_assert_int_eq(natsConnection_ConnectTo(&nc, r.srv.url), NATS_OK);
    ck_assert_int_eq(natsConnection_SubscribeSync(&out, nc, "medic.>"), NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(nc, 2000), NATS_OK);
    char *body = scrape_until(r.http_port, "swarm_medic_up", 1, 5000);
    ck_assert_msg(metric(body, "swarm_medic_up") == 1, "not up: %g",
                  metric(body, "swarm_medic_up"));
    ck_assert(metric(body, "swarm_medic_applied_total") == 0);
    free(body);

    sent s = run_sim(&r, r.srv.url, "1");
    ck_assert(s.total > 1000);
    body = scrape_until(r.http_port, "swarm_medic_applied_total", (double)s.total, 20000);
    ck_assert_msg(metric(body, "swarm_medic_applied_total") == (double)s.total,
                  "applied %g, sent %llu", metric(body, "swarm_medic_applied_total"),
                  s.total);
    expect_kinds(body, &s);
    ck_assert(metric(body, "swarm_medic_handle_seconds_count") ==
              (double)((s.total + SM_METRICS_HANDLE_SAMPLE - 1) / SM_METRICS_HANDLE_SAMPLE));
    ck_assert_msg(metric(body, "swarm_medic_swarms") == 2, "swarms %g",
                  metric(body, "swarm_medic_swarms"));
    ck_assert_msg(metric(body, "swarm_medic_agents") == 40, "agents %g",
                  metric(body, "swarm_medic_agents"));
    ck_assert(metric(body, "swarm_medic_store_used_bytes") > 0);
    ck_assert(metric(body, "swarm_medic_commits_total") >= 1);
    ck_assert(metric(body, "swarm_medic_commit_seconds_count") ==
              metric(body, "swarm_medic_commits_total"));
    ck_assert(metric(body, "swarm_medic_deadletters_total{reason=\"decode\"}") == 0);
    free(body);
    expect_decisions(r.http_port, out);
    natsSubscription_Destroy(out);

    /* one undecodable message: a dead letter, by its reason */
    ck_assert_int_eq(natsConnection_PublishString(nc, "swarm.s0.task.a0",
                                                  "\xff\xff\xff not protobuf"),
                     NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(nc, 2000), NATS_OK);
    natsConnection_Destroy(nc);
    body = scrape_until(r.http_port, "swarm_medic_applied_total",
                        (double)s.total + 1, 10000);
    ck_assert_msg(metric(body, "swarm_medic_deadletters_total{reason=\"decode\"}") == 1,
                  "dead letters (decode): %g",
                  metric(body, "swarm_medic_deadletters_total{reason=\"decode\"}"));
    expect_kinds(body, &s);         /* the dead letter is no event */
    ck_assert(metric(body, "swarm_medic_handle_seconds_count") ==
              (double)((s.total + SM_METRICS_HANDLE_SAMPLE) / SM_METRICS_HANDLE_SAMPLE));
    free(body);
    kill(r.worker, SIGTERM);
    ck_assert_int_eq(sm_test_wait(r.worker, 20000), 0);
    r.worker = 0;
    int lines;
    json_log_port(r.log, &lines);   /* every line, to the last, is JSON */
    ck_assert_msg(lines > 5 && sm_test_wait_for_text(r.log, "\"stopped\"", 0),
                  "%d lines:\n%s", lines, SM_TEST_TAIL(r.log));
    rig_down(&r);
}
END_TEST

START_TEST(readyz_is_503_until_connected)
{
    rig r = {0};
    sm_test_tmpdir(r.dir, sizeof r.dir, "ops");
    int port = free_port();
    char url[64];
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
    start_worker(&r, url);          /* nothing listens on port yet */
    ck_assert_msg(sm_test_wait_for_text(r.log, "bus_connect_failed", 20000),
                  "no failed connect:\n%s", SM_TEST_TAIL(r.log));
    reply ready = http_get(r.http_port, "/readyz", "GET");
    reply health = http_get(r.http_port, "/healthz", "GET");
    ck_assert_msg(ready.code == 503, "/readyz before connect: %d %s", ready.code,
                  ready.body);
    ck_assert_msg(strstr(ready.body, "not connected"), "%s", ready.body);
    ck_assert_msg(health.code == 200, "/healthz while connecting: %d %s",
                  health.code, health.body);
    free(ready.body);
    free(health.body);

    sm_test_server_start(&r.srv, port, NULL);
    r.srv_up = true;
    ck_assert_msg(sm_test_wait_for_text(r.log, "\"subscribed\"", 20000),
                  "worker did not subscribe:\n%s", SM_TEST_TAIL(r.log));
    ready = await_code(r.http_port, "/readyz", 200, 5000);
    ck_assert_msg(ready.code == 200, "/readyz once subscribed: %d", ready.code);
    free(ready.body);

    /* the server goes away: not ready while reconnecting, alive all along */
    sm_test_server_stop(&r.srv);
    ready = await_code(r.http_port, "/readyz", 503, 5000);
    ck_assert_msg(ready.code == 503 && strstr(ready.body, "disconnected"),
                  "/readyz without a server: %d %s", ready.code, ready.body);
    free(ready.body);
    health = http_get(r.http_port, "/healthz", "GET");
    ck_assert_int_eq(health.code, 200);
    free(health.body);
    sm_test_server_start(&r.srv, port, NULL);
    ck_assert_msg(sm_test_wait_for_text(r.log, "\"bus_reconnected\"", 20000),
                  "no reconnect:\n%s", SM_TEST_TAIL(r.log));
    char *body = scrape_until(r.http_port, "swarm_medic_reconnects_total", 1, 5000);
    ck_assert_msg(metric(body, "swarm_medic_reconnects_total") == 1,
                  "reconnects: %g", metric(body, "swarm_medic_reconnects_total"));
    free(body);
    rig_down(&r);
}
END_TEST

/* ---- systemd's notify protocol ------------------------------------------ */

/* Reads datagrams from fd until one contains want (or timeout_ms);
 * appends everything read to seen. */
static bool await_notify(int fd, const char *want, char *seen, size_t cap,
                         int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        char msg[512];
        ssize_t n;
        while ((n = recv(fd, msg, sizeof msg - 1, MSG_DONTWAIT)) > 0) {
            msg[n] = 0;
            strncat(seen, msg, cap - strlen(seen) - 2);
            strcat(seen, "|");
            if (strstr(msg, want))
                return true;
        }
        sm_proc_sleep_ms(20);
    }
    return false;
}

START_TEST(systemd_hears_ready_watchdog_and_stopping)
{
    rig r = {0};
    sm_test_tmpdir(r.dir, sizeof r.dir, "ops");
    sm_test_server_start(&r.srv, 0, NULL);
    r.srv_up = true;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    ck_assert(strlen(r.dir) + sizeof "/notify" <= sizeof a.sun_path);
    memcpy(a.sun_path, r.dir, strlen(r.dir));
    memcpy(a.sun_path + strlen(r.dir), "/notify", sizeof "/notify");
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    setenv("NOTIFY_SOCKET", a.sun_path, 1);
    setenv("WATCHDOG_USEC", "200000", 1);       /* a ping every 100 ms */
    start_worker(&r, r.srv.url);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    char seen[8192] = "";
    ck_assert_msg(await_notify(fd, "READY=1", seen, sizeof seen, 20000),
                  "no READY=1: %s\n%s", seen, SM_TEST_TAIL(r.log));
    ck_assert_msg(sm_test_wait_for_text(r.log, "\"subscribed\"", 1000),
                  "READY=1 before the subscription");
    int pings = 0;
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(await_notify(fd, "WATCHDOG=1", seen, sizeof seen, 5000),
                      "watchdog pings stopped after %d: %s", pings, seen);
        pings++;
    }
    ck_assert_msg(!strstr(seen, "STOPPING=1"), "STOPPING=1 early: %s", seen);
    kill(r.worker, SIGTERM);
    ck_assert_msg(await_notify(fd, "STOPPING=1", seen, sizeof seen, 10000),
                  "no STOPPING=1 on SIGTERM: %s", seen);
    ck_assert_int_eq(sm_test_wait(r.worker, 20000), 0);
    r.worker = 0;
    close(fd);
    rig_down(&r);
}
END_TEST

/* ---- --check-config ----------------------------------------------------- */

/* Runs swarm-medic with args; returns the exit status, output in *out. */
static int run_cli(const char *dir, const char *const *args, char **out)
{
    char bin[512], log[320];
    sm_test_bin(bin, sizeof bin, "swarm-medic");
    snprintf(log, sizeof log, "%s/cli.log", dir);
    unlink(log);
    const char *argv[16] = {bin};
    int n = 1;
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = sm_test_spawn(argv, log, true);
    int rc = sm_test_wait(pid, 20000);
    if (rc < 0)
        kill(pid, SIGKILL);
    *out = sm_test_slurp(log);
    return rc;
}

START_TEST(check_config_says_valid_or_why_not)
{
    char dir[256], *out;
    sm_test_tmpdir(dir, sizeof dir, "ops");
    /* valid: the shipped file, a server that is not there (never asked) */
    int rc = run_cli(dir, (const char *[]){"--check-config", "--config",
                                           "deploy/swarm-medic.json",
                                           "--nats-url=nats://u:hunter2@127.0.0.1:1",
                                           "--nats-password=s3cret",
                                           "--http-listen=127.0.0.1:9464", NULL},
                     &out);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "configuration valid"), "%s", out);
    ck_assert_msg(strstr(out, "127.0.0.1:9464") && strstr(out, "input_subject"),
                  "does not show what would run: %s", out);
    ck_assert_msg(!strstr(out, "hunter2") && !strstr(out, "s3cret"),
                  "shows a secret: %s", out);
    ck_assert_msg(!strstr(out, "event=") && !strstr(out, "subscribed"),
                  "ran something: %s", out);
    free(out);
    const struct { const char *arg, *names; } bad[] = {
        {"--http-listen=nowhere", "http_listen"},
        {"--log-format=xml", "log_format"},
        {"--commit-events=0", "commit_events"},
        {"--no-such-setting=1", "no-such-setting"},
        {"--config=/nonexistent/swarm-medic.json", "/nonexistent"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rc = run_cli(dir, (const char *[]){"--check-config", bad[i].arg, NULL}, &out);
        ck_assert_msg(rc == 1, "%s: exit %d: %s", bad[i].arg, rc, out);
        ck_assert_msg(strstr(out, "configuration invalid") && strstr(out, bad[i].names),
                      "%s: %s", bad[i].arg, out);
        free(out);
    }
    sm_test_rmtree(dir);
}
END_TEST

/* ---- the HTTP rules, in-process ------------------------------------------ */

START_TEST(http_rules)
{
    sm_metrics *m;
    sm_http *h;
    char err[256];
    ck_assert_int_eq(sm_metrics_create(&m), SM_OK);
    ck_assert_int_eq(sm_http_start(&h, "127.0.0.1:0", m, err, sizeof err), SM_OK);
    int port = sm_http_port(h);
    ck_assert_int_gt(port, 0);
    sm_metrics_snap s;
    sm_metrics_snap_init(&s);
    s.phase = SM_PHASE_RUNNING;
    s.bus_connected = true;
    s.store_open = true;
    sm_metrics_publish(m, &s);
    reply r = http_get(port, "/readyz", "GET");
    ck_assert_msg(r.code == 200, "%d %s", r.code, r.body);
    free(r.body);

    s.phase = SM_PHASE_DRAINING;
    sm_metrics_publish(m, &s);
    r = http_get(port, "/readyz", "GET");
    ck_assert_msg(r.code == 503 && strstr(r.body, "draining"), "%d %s", r.code, r.body);
    free(r.body);
    r = http_get(port, "/healthz", "GET");
    ck_assert_int_eq(r.code, 200);
    free(r.body);

    s.phase = SM_PHASE_RUNNING;
    s.store_open = false;
    sm_metrics_publish(m, &s);
    r = http_get(port, "/readyz", "GET");
    ck_assert_msg(r.code == 503 && strstr(r.body, "store"), "%d %s", r.code, r.body);
    free(r.body);

    s.turn_ms = sm_metrics_now_ms() - SM_METRICS_STALL_MS - 1000;  /* stuck */
    sm_metrics_publish(m, &s);
    r = http_get(port, "/healthz", "GET");
    ck_assert_msg(r.code == 503 && strstr(r.body, "not turned"), "%d %s", r.code, r.body);
    free(r.body);

    r = http_get(port, "/nope", "GET");
    ck_assert_int_eq(r.code, 404);
    free(r.body);
    r = http_get(port, "/metrics", "DELETE");
    ck_assert_int_eq(r.code, 405);
    free(r.body);
    sm_http_stop(h);
    sm_metrics_destroy(m);
    ck_assert_int_eq(http_get(port, "/healthz", "GET").code, -1);   /* gone */
}
END_TEST

/* The exposition's grammar: # HELP / # TYPE before each family's samples,
 * `name{labels} value`, cumulative buckets ending in +Inf = _count. */
START_TEST(exposition_is_well_formed)
{
    sm_metrics_snap s;
    sm_metrics_snap_init(&s);
    s.phase = SM_PHASE_RUNNING;
    s.events_by_kind[1] = 7;
    s.decisions[SM_DEC_FAILURE][SM_FAIL_AGENT_DOWN] = 3;
    double obs[] = {2e-6, 3e-5, 0.5, 1e-7};
    for (size_t i = 0; i < 4; i++)
        sm_hist_observe(&s.handle_latency, obs[i]);
    s.consumer_lag = 12;
    char *body;
    size_t len;
    ck_assert_int_eq(sm_metrics_render(&s, &body, &len), SM_OK);
    ck_assert_uint_eq(strlen(body), len);
    char typed[64] = "";
    double last_bucket = -1;
    for (char *line = strtok(body, "\n"); line; line = strtok(NULL, "\n")) {
        char name[128];
        if (sscanf(line, "# TYPE swarm_medic_%63s", typed) == 1 ||
            strncmp(line, "# HELP ", 7) == 0)
            continue;
        ck_assert_msg(sscanf(line, "swarm_medic_%127[a-z_]", name) == 1,
                      "bad line: %s", line);
        ck_assert_msg(strncmp(name, typed, strlen(typed)) == 0,
                      "sample %s outside its family %s", name, typed);
        const char *sp = strrchr(line, ' ');
        char *end;
        double v = strtod(sp + 1, &end);
        ck_assert_msg(sp && *end == 0, "bad value: %s", line);
        if (strstr(line, "handle_seconds_bucket")) {
            ck_assert_msg(v >= last_bucket, "buckets not cumulative: %s", line);
            last_bucket = v;
        }
    }
    ck_assert(last_bucket == 4);
    free(body);
    ck_assert_int_eq(sm_metrics_render(&s, &body, &len), SM_OK);
    ck_assert(metric(body, "swarm_medic_events_total{kind=\"task\"}") == 7);
    ck_assert(metric(body, "swarm_medic_decisions_total{kind=\"failure\",type=\"agent_down\"}") == 3);
    ck_assert(metric(body, "swarm_medic_handle_seconds_bucket{le=\"1e-06\"}") == 1);
    ck_assert(metric(body, "swarm_medic_handle_seconds_count") == 4);
    ck_assert(metric(body, "swarm_medic_consumer_lag") == 12);
    ck_assert(metric(body, "swarm_medic_partitions_owned") == -1);  /* absent */
    free(body);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, exposition_is_well_formed);
    tcase_add_test(tc, http_rules);
    tcase_add_test(tc, check_config_says_valid_or_why_not);
    tcase_add_test(tc, metrics_count_what_was_sent);
    tcase_add_test(tc, readyz_is_503_until_connected);
    tcase_add_test(tc, systemd_hears_ready_watchdog_and_stopping);
    suite_add_tcase(s, tc);
    return sm_run_suite(s);
}
