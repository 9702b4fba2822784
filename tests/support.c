#include "support.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

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

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static int read_ports_file(const char *dir, pid_t pid)
{
    char path[512];
    snprintf(path, sizeof path, "%s/nats-server_%d.ports", dir, (int)pid);
    char *txt = sm_test_slurp(path);
    if (!txt)
        return 0;
    int port = 0;
    char *p = strstr(txt, "nats://");
    if (p) {
        p = strrchr(p, ':');
        if (p)
            port = atoi(p + 1);
    }
    free(txt);
    return port;
}

void sm_test_server_start(sm_test_server *s, int port,
                          const char *const *extra_args)
{
    memset(s, 0, sizeof *s);
    sm_test_tmpdir(s->dir, sizeof s->dir, "nats");
    char portarg[16], log[300];
    snprintf(portarg, sizeof portarg, "%d", port > 0 ? port : -1);
    snprintf(log, sizeof log, "%s/server.log", s->dir);
    const char *argv[32] = {"nats-server", "-a", "127.0.0.1", "-p", portarg,
                            "--ports_file_dir", s->dir};
    int n = 7;
    for (int i = 0; extra_args && extra_args[i] && n < 31; i++)
        argv[n++] = extra_args[i];
    argv[n] = NULL;
    s->pid = sm_test_spawn(argv, log, false);
    for (int i = 0; i < 500; i++) {
        int p = port > 0 ? port : read_ports_file(s->dir, s->pid);
        if (p > 0 && port_open(p)) {
            s->port = p;
            snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%d", p);
            return;
        }
        sleep_ms(10);
    }
    ck_abort_msg("nats-server did not start (see %s)", log);
}

void sm_test_server_stop(sm_test_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        if (sm_test_wait(s->pid, 5000) < 0) {
            kill(s->pid, SIGKILL);
            sm_test_wait(s->pid, 5000);
        }
        s->pid = 0;
    }
}

pid_t sm_test_spawn(const char *const argv[], const char *log_path, bool wrap)
{
    const char *wrapper = wrap ? getenv("SM_WORKER_WRAPPER") : NULL;
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (log_path) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
        }
        if (wrapper && wrapper[0]) {
            /* split the wrapper on spaces, then append argv */
            char *w = strdup(wrapper);
            const char *full[64];
            int n = 0;
            for (char *tok = strtok(w, " "); tok && n < 40; tok = strtok(NULL, " "))
                full[n++] = tok;
            for (int i = 0; argv[i] && n < 63; i++)
                full[n++] = argv[i];
            full[n] = NULL;
            execvp(full[0], (char *const *)full);
        } else {
            execvp(argv[0], (char *const *)argv);
        }
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

int sm_test_wait(pid_t pid, int timeout_ms)
{
    for (int waited = 0;; waited += 5) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (WIFEXITED(st))
                return WEXITSTATUS(st);
            if (WIFSIGNALED(st))
                return 128 + WTERMSIG(st);
            return -1;
        }
        if (r < 0 || waited >= timeout_ms)
            return -1;
        sleep_ms(5);
    }
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
        sleep_ms(20);
    }
    return false;
}
