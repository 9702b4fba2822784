/*
 * harness.h - child processes and a private nats-server, for the programs
 * that run the real thing locally: the test suites (through support.h) and
 * swarm-bench. Not part of the product: the worker never links it.
 *
 * sm_harness_nats_start runs `nats-server -a 127.0.0.1 -p <port|-1>
 * --ports_file_dir <dir>` and waits until it accepts connections; with
 * port 0 the server picks a free port and we read it from the ports file.
 * Nothing here reads or writes global state; callers own the structs.
 */
#ifndef SM_HARNESS_H
#define SM_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "status.h"

/* Forks and execs argv (argv[0] looked up in PATH). stdout and stderr go
 * to log_path (appended) when not NULL. wrapper, when not NULL or "",
 * is a space-separated command put in front (e.g. "valgrind -q").
 * Returns the pid, or -1 with errno set. */
pid_t sm_harness_spawn(const char *const argv[], const char *log_path,
                       const char *wrapper);

/* Waits up to timeout_ms (< 0: for ever) for pid. Returns its exit status
 * (0..255), 128 + signal if killed, or -1 on timeout (child left
 * running) or error. */
int sm_harness_wait(pid_t pid, int timeout_ms);

/* Sends SIGTERM, waits up to timeout_ms, then SIGKILL. Returns the status
 * as sm_harness_wait. pid <= 0 is a no-op returning 0. */
int sm_harness_stop(pid_t pid, int timeout_ms);

typedef struct sm_harness_nats {
    pid_t pid;
    int port;
    char url[64];               /* nats://127.0.0.1:<port> */
    char dir[256];              /* where the ports file and server.log live */
} sm_harness_nats;

/* Starts nats-server. dir must exist and is kept (the caller removes it).
 * extra: NULL-terminated extra arguments or NULL. Errors: SM_ERR_IO
 * (could not spawn), SM_ERR_TIMEOUT (not accepting within 5 s; the child
 * is stopped). */
sm_status sm_harness_nats_start(sm_harness_nats *n, const char *dir,
                                int port, const char *const *extra);
/* Stops it (SIGTERM, then SIGKILL); safe to call twice. */
void sm_harness_nats_stop(sm_harness_nats *n);

/* Whether something accepts TCP connections on 127.0.0.1:port. */
bool sm_harness_port_open(int port);

#endif
