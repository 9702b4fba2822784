#include "support.h"

#include "harness.h"
#include "proc.h"
#include "recfile.h"
#include "swarm_medic.pb-c.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void sm_test_tmpdir(char *buf, size_t cap, const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !base[0])
        base = "/tmp";
    snprintf(buf, cap, "%s/sm-%s-XXXXXX", base, tag);
    ck_assert_msg(mkdtemp(buf) != NULL, "mkdtemp %s: %s", buf, strerror(errno));
}

void sm_test_rmtree(const char *path)
{
    if (!path || !path[0])
        return;
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", path, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

void sm_test_server_start(sm_test_server *s, int port,
                          const char *const *extra_args)
{
    memset(s, 0, sizeof *s);
    sm_test_tmpdir(s->dir, sizeof s->dir, "nats");
    sm_harness_nats n;
    sm_status st = sm_harness_nats_start(&n, s->dir, port, extra_args);
    ck_assert_msg(st == SM_OK, "nats-server did not start (%s; see %s/server.log)",
                  sm_status_str(st), s->dir);
    s->pid = n.pid;
    s->port = n.port;
    snprintf(s->url, sizeof s->url, "%s", n.url);
}

void sm_test_server_stop(sm_test_server *s)
{
    sm_harness_stop(s->pid, 5000);
    s->pid = 0;
}

pid_t sm_test_spawn(const char *const argv[], const char *log_path, bool wrap)
{
    pid_t pid = sm_harness_spawn(argv, log_path,
                                 wrap ? getenv("SM_WORKER_WRAPPER") : NULL);
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    return pid;
}

int sm_test_wait(pid_t pid, int timeout_ms)
{
    return sm_harness_wait(pid, timeout_ms);
}

void sm_test_bin(char *buf, size_t cap, const char *prog)
{
    char self[512];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    ck_assert_msg(n > 0, "readlink /proc/self/exe");
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = 0;
    snprintf(buf, cap, "%s/%s", self, prog);
}

char *sm_test_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1024 + 1 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        size_t r = fread(buf + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[len] = 0;
    return buf;
}

bool sm_test_wait_for_text(const char *path, const char *needle, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        char *txt = sm_test_slurp(path);
        bool hit = txt && strstr(txt, needle);
        free(txt);
        if (hit)
            return true;
        sm_proc_sleep_ms(20);
    }
    return false;
}

void sm_test_recs_load(sm_test_recs *R, const char *path)
{
    memset(R, 0, sizeof *R);
    sm_recr *rd = NULL;
    char err[256];
    ck_assert_int_eq(sm_recr_open(&rd, path, err, sizeof err), SM_OK);
    size_t cap = 0;
    sm_rec rec;
    while (sm_recr_next(rd, &rec) == SM_OK) {
        if (R->n == cap) {
            cap = cap ? cap * 2 : 1024;
            R->subject = realloc(R->subject, cap * sizeof *R->subject);
            R->data = realloc(R->data, cap * sizeof *R->data);
            R->len = realloc(R->len, cap * sizeof *R->len);
        }
        R->subject[R->n] = strdup(rec.subject);
        R->data[R->n] = malloc(rec.len ? rec.len : 1);
        memcpy(R->data[R->n], rec.data, rec.len);
        R->len[R->n] = rec.len;
        R->n++;
    }
    sm_recr_close(rd);
}

void sm_test_recs_free(sm_test_recs *R)
{
    for (size_t i = 0; i < R->n; i++) {
        free(R->subject[i]);
        free(R->data[i]);
    }
    free(R->subject);
    free(R->data);
    free(R->len);
}

const char *sm_test_log_tail(const char *path, char *buf, size_t cap)
{
    char *txt = sm_test_slurp(path);
    if (!txt) {
        snprintf(buf, cap, "(no log at %s)", path);
        return buf;
    }
    size_t n = strlen(txt);
    snprintf(buf, cap, "%s", n > cap - 1 ? txt + n - (cap - 1) : txt);
    free(txt);
    return buf;
}

size_t sm_test_idle_beat(uint8_t *buf, char *subject, const char *swarm,
                         const char *agent, int64_t ts)
{
    Swarmmedic__V1__Heartbeat h = SWARMMEDIC__V1__HEARTBEAT__INIT;
    h.ts_ms = ts;
    h.agent = (char *)agent;
    h.state = SWARMMEDIC__V1__HEARTBEAT__STATE__STATE_IDLE;
    snprintf(subject, 128, "swarm.%s.heartbeat.%s", swarm, agent);
    return swarmmedic__v1__heartbeat__pack(&h, buf);
}

size_t sm_test_stream_ids(jsCtx *js, const char *stream, const char *subject,
                          sm_test_msg_id **out)
{
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Ordered = true;
    ck_assert_int_eq(js_SubscribeSync(&sub, js, subject, NULL, &so, NULL), NATS_OK);
    size_t n = 0, cap = 64;
    sm_test_msg_id *v = malloc(cap * sizeof *v);
    ck_assert_ptr_nonnull(v);
    natsMsg *m = NULL;
    while (natsSubscription_NextMsg(&m, sub, 1500) == NATS_OK) {
        const char *id = NULL;
        ck_assert_int_eq(natsMsgHeader_Get(m, "Nats-Msg-Id", &id), NATS_OK);
        if (n == cap) {
            v = realloc(v, (cap *= 2) * sizeof *v);
            ck_assert_ptr_nonnull(v);
        }
        snprintf(v[n].subject, sizeof v[n].subject, "%s", natsMsg_GetSubject(m));
        snprintf(v[n].id, sizeof v[n].id, "%s", id);
        n++;
        natsMsg_Destroy(m);
    }
    natsSubscription_Destroy(sub);
    *out = v;
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

size_t sm_test_sort_repeats(void *v, size_t n, size_t w)
{
    char *s = v;
    qsort(s, n, w, cmp_str);
    size_t rep = 0;
    for (size_t i = 1; i < n; i++)
        rep += strcmp(s + i * w, s + (i - 1) * w) == 0;
    return rep;
}
