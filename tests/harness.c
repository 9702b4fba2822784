#include "harness.h"

#include "proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

pid_t sm_harness_spawn(const char *const argv[], const char *log_path,
                       const char *wrapper)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    if (log_path) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
    }
    const char *full[80];
    int n = 0;
    char *w = (wrapper && wrapper[0]) ? strdup(wrapper) : NULL;
    char *save = NULL;
    for (char *tok = w ? strtok_r(w, " ", &save) : NULL; tok && n < 40;
         tok = strtok_r(NULL, " ", &save))
        full[n++] = tok;
    for (int i = 0; argv[i] && n < 79; i++)
        full[n++] = argv[i];
    full[n] = NULL;
    execvp(full[0], (char *const *)full);
    fprintf(stderr, "exec %s: %s\n", full[0], strerror(errno));
    _exit(127);
}

int sm_harness_wait(pid_t pid, int timeout_ms)
{
    for (int waited = 0;; waited += 5) {
        int st;
        pid_t r = waitpid(pid, &st, timeout_ms < 0 ? 0 : WNOHANG);
        if (r == pid) {
            if (WIFEXITED(st))
                return WEXITSTATUS(st);
            if (WIFSIGNALED(st))
                return 128 + WTERMSIG(st);
            return -1;
        }
        if (r < 0 || (timeout_ms >= 0 && waited >= timeout_ms))
            return -1;
        sm_proc_sleep_ms(5);
    }
}

int sm_harness_stop(pid_t pid, int timeout_ms)
{
    if (pid <= 0)
        return 0;
    kill(pid, SIGTERM);
    int rc = sm_harness_wait(pid, timeout_ms);
    if (rc < 0) {
        kill(pid, SIGKILL);
        rc = sm_harness_wait(pid, 5000);
    }
    return rc;
}

bool sm_harness_port_open(int port)
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

/* The server writes {"nats":["nats://127.0.0.1:PORT"],...} to
 * <dir>/nats-server_<pid>.ports once it listens. */
static int read_ports_file(const char *dir, pid_t pid)
{
    char path[512], buf[1024];
    snprintf(path, sizeof path, "%s/nats-server_%d.ports", dir, (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strstr(buf, "nats://");
    if (!p || !(p = strchr(p + 7, ':')))
        return 0;
    return atoi(p + 1);
}

sm_status sm_harness_nats_start(sm_harness_nats *n, const char *dir,
                                int port, const char *const *extra)
{
    memset(n, 0, sizeof *n);
    snprintf(n->dir, sizeof n->dir, "%s", dir);
    char portarg[16], log[320];
    snprintf(portarg, sizeof portarg, "%d", port > 0 ? port : -1);
    snprintf(log, sizeof log, "%s/server.log", dir);
    const char *argv[40] = {"nats-server", "-a", "127.0.0.1", "-p", portarg,
                            "--ports_file_dir", dir};
    int k = 7;
    for (int i = 0; extra && extra[i] && k < 39; i++)
        argv[k++] = extra[i];
    argv[k] = NULL;
    n->pid = sm_harness_spawn(argv, log, NULL);
    if (n->pid < 0)
        return SM_ERR_IO;
    for (int i = 0; i < 500; i++) {
        int p = port > 0 ? port : read_ports_file(dir, n->pid);
        if (p > 0 && sm_harness_port_open(p)) {
            n->port = p;
            snprintf(n->url, sizeof n->url, "nats://127.0.0.1:%d", p);
            return SM_OK;
        }
        if (sm_harness_wait(n->pid, 0) >= 0) {     /* exited */
            n->pid = 0;
            return SM_ERR_IO;
        }
        sm_proc_sleep_ms(10);
    }
    sm_harness_nats_stop(n);
    return SM_ERR_TIMEOUT;
}

void sm_harness_nats_stop(sm_harness_nats *n)
{
    sm_harness_stop(n->pid, 5000);
    n->pid = 0;
}
