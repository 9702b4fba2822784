/* `swarm-medic record` end to end: a real nats-server, the recorder in a
 * forked child, this test publishing like a swarm, then the recording read
 * back with the reader. */
#include <check.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "recfile.h"
#include "record.h"
#include "proc.h"
#include "support.h"
#include "runner.h"

typedef struct rig {
    sm_test_server srv;
    char dir[256];
    char file[320];             /* the recording */
    char log[320];              /* the recorder's log */
    pid_t child;
    natsConnection *nc;
} rig;

/* Forks a recorder on `subjects` with max_msgs; SIGUSR1 stops it. Returns
 * once it has subscribed. Its exit code is its sm_status. */
static void start_recorder(rig *r, const char *const *subjects, int64_t max_msgs)
{
    r->child = fork();
    ck_assert_int_ge(r->child, 0);
    if (r->child == 0) {
        sigset_t stop;
        sigemptyset(&stop);
        sigaddset(&stop, SIGUSR1);
        sigprocmask(SIG_BLOCK, &stop, NULL);
        FILE *lf = fopen(r->log, "a");
        setvbuf(lf, NULL, _IOLBF, 0);
        sm_log log = {.out = lf, .level = SM_LOG_DEBUG};
        sm_config cfg;
        char err[256];
        sm_config_init(&cfg);
        sm_config_set(&cfg, "nats_url", r->srv.url, "test", err, sizeof err);
        uint64_t written = 0;
        sm_status s = sm_record_run(&cfg, &log, r->file, subjects, &stop,
                                    max_msgs, &written);
        fprintf(lf, "test_written=%llu\n", (unsigned long long)written);
        sm_config_free(&cfg);
        nats_CloseAndWait(2000);        /* cnats's threads may still log */
        fclose(lf);
        exit((int)s);
    }
    ck_assert_msg(sm_test_wait_for_text(r->log, "event=record_started", 20000),
                  "recorder did not start; log:\n%s", sm_test_slurp(r->log));
}

static void rig_up(rig *r)
{
    memset(r, 0, sizeof *r);
    sm_test_server_start(&r->srv, 0, NULL);
    sm_test_tmpdir(r->dir, sizeof r->dir, "record");
    snprintf(r->file, sizeof r->file, "%s/bus.smrec", r->dir);
    snprintf(r->log, sizeof r->log, "%s/record.log", r->dir);
}

/* The publisher. Called after start_recorder: a child forked after this
 * process has started cnats's threads would inherit a library whose
 * threads it does not have. */
static void connect_publisher(rig *r)
{
    ck_assert_int_eq(natsConnection_ConnectTo(&r->nc, r->srv.url), NATS_OK);
}

/* Waits for the recorder to exit; returns its exit code (its sm_status). */
static int wait_recorder(rig *r)
{
    int rc = sm_test_wait(r->child, 20000);
    if (rc >= 0)
        r->child = 0;
    return rc;
}

static void rig_down(rig *r)
{
    natsConnection_Destroy(r->nc);
    if (r->child > 0) {             /* a test failed before it exited */
        kill(r->child, SIGKILL);
        sm_test_wait(r->child, 5000);
    }
    sm_test_server_stop(&r->srv);
    sm_test_rmtree(r->srv.dir);
    sm_test_rmtree(r->dir);
}

/* Payload of message i: empty for every fifth, else text with a 0x01 and
 * a NUL inside (payloads are bytes, not strings). */
static int make_payload(char *buf, int i)
{
    if (i % 5 == 0)
        return 0;
    int n = snprintf(buf, 48, "event-%d", i);
    buf[n] = 0x01;
    buf[n + 1] = 0;
    buf[n + 2] = 'z';
    return n + 3;
}

/* Message i of the swarm's traffic: every third with headers (one of them
 * multi-valued, keys deliberately out of order), every fifth empty. */
static void publish(rig *r, const char *subject, int i)
{
    char payload[64], id[32];
    int len = make_payload(payload, i);
    natsMsg *m = NULL;
    ck_assert_int_eq(natsMsg_Create(&m, subject, NULL, len ? payload : NULL, len),
                     NATS_OK);
    if (i % 3 == 0) {
        snprintf(id, sizeof id, "id-%d", i);
        ck_assert_int_eq(natsMsgHeader_Set(m, "Nats-Msg-Id", id), NATS_OK);
        ck_assert_int_eq(natsMsgHeader_Add(m, "K", "v1"), NATS_OK);
        ck_assert_int_eq(natsMsgHeader_Add(m, "K", "v2"), NATS_OK);
    }
    ck_assert_int_eq(natsConnection_PublishMsg(r->nc, m), NATS_OK);
    natsMsg_Destroy(m);
}

static void check_message(const sm_rec *rec, const char *subject, int i)
{
    ck_assert_str_eq(rec->subject, subject);
    ck_assert_int_gt(rec->recv_ms, 0);
    char payload[64];
    int len = make_payload(payload, i);
    ck_assert_uint_eq(rec->len, (size_t)len);
    ck_assert(len == 0 || memcmp(rec->data, payload, (size_t)len) == 0);
    if (i % 3 == 0) {
        char id[32];
        snprintf(id, sizeof id, "id-%d", i);
        ck_assert_uint_eq(rec->n_headers, 3);
        ck_assert_str_eq(rec->headers[0].key, "K");
        ck_assert_str_eq(rec->headers[0].value, "v1");
        ck_assert_str_eq(rec->headers[1].key, "K");
        ck_assert_str_eq(rec->headers[1].value, "v2");
        ck_assert_str_eq(rec->headers[2].key, "Nats-Msg-Id");
        ck_assert_str_eq(rec->headers[2].value, id);
    } else {
        ck_assert_uint_eq(rec->n_headers, 0);
    }
}

START_TEST(records_traffic_in_bus_order)
{
    rig r;
    rig_up(&r);
    enum { N = 40 };
    start_recorder(&r, NULL, N);            /* default subject: swarm.> */
    connect_publisher(&r);
    char subj[64];
    for (int i = 0; i < N; i++) {
        snprintf(subj, sizeof subj, "swarm.s%d.task.a%d", i % 2, i);
        publish(&r, subj, i);
        publish(&r, "medic.s0.bottleneck.slow_agent", i);   /* not ours */
    }
    ck_assert_int_eq(natsConnection_FlushTimeout(r.nc, 5000), NATS_OK);
    int rc = wait_recorder(&r);
    ck_assert_msg(rc == SM_OK, "recorder exit %d; log:\n%s", rc, sm_test_slurp(r.log));
    ck_assert_msg(sm_test_wait_for_text(r.log, "records=40", 1000) &&
                  sm_test_wait_for_text(r.log, "test_written=40", 1000),
                  "%s", sm_test_slurp(r.log));

    char err[256];
    sm_recr *rd = NULL;
    ck_assert_msg(sm_recr_open(&rd, r.file, err, sizeof err) == SM_OK, "%s", err);
    sm_rec rec;
    int64_t last = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_msg(sm_recr_next(rd, &rec) == SM_OK, "record %d: %s", i,
                      sm_recr_error(rd));
        snprintf(subj, sizeof subj, "swarm.s%d.task.a%d", i % 2, i);
        check_message(&rec, subj, i);
        ck_assert_int_ge(rec.recv_ms, last);
        last = rec.recv_ms;
    }
    ck_assert_int_eq(sm_recr_next(rd, &rec), SM_ERR_NOT_FOUND);
    sm_recr_close(rd);
    rig_down(&r);
}
END_TEST

/* Polls the recording until it holds n whole records (the recorder
 * flushes when the bus goes idle). */
static bool wait_records(const char *path, int n, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        sm_recr *rd = NULL;
        char err[256];
        int got = 0;
        if (sm_recr_open(&rd, path, err, sizeof err) == SM_OK) {
            sm_rec rec;
            while (sm_recr_next(rd, &rec) == SM_OK)
                got++;
            sm_recr_close(rd);
        }
        if (got >= n)
            return got == n;
        sm_proc_sleep_ms(50);
    }
    return false;
}

START_TEST(several_subjects_and_stop_signal)
{
    rig r;
    rig_up(&r);
    const char *subjects[] = {"swarm.a.>", "swarm.b.>", NULL};
    start_recorder(&r, subjects, 0);        /* until stopped */
    connect_publisher(&r);
    for (int i = 0; i < 6; i++) {
        publish(&r, i % 2 ? "swarm.b.task.x" : "swarm.a.task.x", i);
        publish(&r, "swarm.c.task.x", i);   /* not subscribed */
    }
    ck_assert_int_eq(natsConnection_FlushTimeout(r.nc, 5000), NATS_OK);
    /* readable while the recorder still runs */
    ck_assert_msg(wait_records(r.file, 6, 10000), "log:\n%s", sm_test_slurp(r.log));
    kill(r.child, SIGUSR1);
    int rc = wait_recorder(&r);
    ck_assert_msg(rc == SM_OK, "recorder exit %d; log:\n%s", rc, sm_test_slurp(r.log));

    char err[256];
    sm_recr *rd = NULL;
    ck_assert_int_eq(sm_recr_open(&rd, r.file, err, sizeof err), SM_OK);
    sm_rec rec;
    int next_a = 0, next_b = 1;             /* order kept within a subject */
    for (int k = 0; k < 6; k++) {
        ck_assert_int_eq(sm_recr_next(rd, &rec), SM_OK);
        ck_assert_msg(strcmp(rec.subject, "swarm.c.task.x") != 0, "unsubscribed subject recorded");
        bool is_a = strcmp(rec.subject, "swarm.a.task.x") == 0;
        int *next = is_a ? &next_a : &next_b;
        check_message(&rec, rec.subject, *next);
        *next += 2;
    }
    ck_assert_int_eq(next_a, 6);
    ck_assert_int_eq(next_b, 7);
    ck_assert_int_eq(sm_recr_next(rd, &rec), SM_ERR_NOT_FOUND);
    sm_recr_close(rd);
    rig_down(&r);
}
END_TEST

START_TEST(unwritable_path_and_absent_server)
{
    char dir[256], path[320], err[256];
    sm_test_tmpdir(dir, sizeof dir, "record");
    char logpath[320];
    snprintf(logpath, sizeof logpath, "%s/log", dir);
    FILE *lf = fopen(logpath, "w");
    sm_log log = {.out = lf, .level = SM_LOG_DEBUG};
    sm_config cfg;
    sm_config_init(&cfg);
    sm_config_set(&cfg, "nats_url", "nats://127.0.0.1:1", "test", err, sizeof err);
    uint64_t written = 99;

    snprintf(path, sizeof path, "%s/no/such/dir/x.smrec", dir);
    ck_assert_int_eq(sm_record_run(&cfg, &log, path, NULL, NULL, 1, &written),
                     SM_ERR_IO);
    ck_assert_uint_eq(written, 0);

    snprintf(path, sizeof path, "%s/x.smrec", dir);
    ck_assert_int_eq(sm_record_run(&cfg, &log, path, NULL, NULL, 1, &written),
                     SM_ERR_BUS);
    fclose(lf);
    char *text = sm_test_slurp(logpath);
    ck_assert_msg(strstr(text, "event=record_open_failed") &&
                  strstr(text, "No such file or directory") &&
                  strstr(text, "event=bus_connect_failed"), "%s", text);
    free(text);
    /* the file is still a valid, empty recording */
    sm_recr *rd = NULL;
    ck_assert_int_eq(sm_recr_open(&rd, path, err, sizeof err), SM_OK);
    sm_rec rec;
    ck_assert_int_eq(sm_recr_next(rd, &rec), SM_ERR_NOT_FOUND);
    sm_recr_close(rd);
    sm_config_free(&cfg);
    sm_test_rmtree(dir);
    nats_CloseAndWait(2000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("record");
    TCase *tc = tcase_create("record");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, records_traffic_in_bus_order);
    tcase_add_test(tc, several_subjects_and_stop_signal);
    tcase_add_test(tc, unwritable_path_and_absent_server);
    suite_add_tcase(s, tc);
    return sm_run_suite(s);
}
