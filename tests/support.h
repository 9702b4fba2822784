/*
 * support.h - helpers shared by the edge test suites (not linked into the
 * core suites): temporary directories, a real nats-server on a random
 * loopback port, child processes.
 *
 * Everything here is for tests: failures abort the test with a message via
 * Check's ck_abort_msg, so callers need not check returns unless stated.
 */
#ifndef SM_TEST_SUPPORT_H
#define SM_TEST_SUPPORT_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Creates a fresh directory under $TMPDIR (or /tmp) named sm-<tag>-XXXXXX
 * and writes its path into buf (cap >= 256). */
void sm_test_tmpdir(char *buf, size_t cap, const char *tag);
/* rm -rf path. */
void sm_test_rmtree(const char *path);

typedef struct sm_test_server {
    pid_t pid;
    int port;
    char url[64];           /* nats://127.0.0.1:<port> */
    char dir[256];          /* ports file and log live here */
} sm_test_server;

/* Starts `nats-server -a 127.0.0.1 -p <port|-1>` and waits until it accepts
 * connections. port 0 picks a random port (read from --ports_file_dir).
 * extra_args: NULL-terminated extra arguments, or NULL. */
void sm_test_server_start(sm_test_server *s, int port,
                          const char *const *extra_args);
/* SIGTERM, wait; safe to call twice. */
void sm_test_server_stop(sm_test_server *s);

/* Forks and execs argv; stdout and stderr go to log_path (appended) if not
 * NULL. If the environment has SM_WORKER_WRAPPER (e.g. "valgrind -q") and
 * wrap is true, argv is run under it. Returns the pid. */
pid_t sm_test_spawn(const char *const argv[], const char *log_path, bool wrap);
/* Waits for pid up to timeout_ms; returns its exit status (0..255), 128+sig
 * if killed, or -1 on timeout (the child is then left running). */
int sm_test_wait(pid_t pid, int timeout_ms);

/* Path of a built program next to the test binary (e.g. "swarm-medic"),
 * written into buf. */
void sm_test_bin(char *buf, size_t cap, const char *prog);

/* Reads a whole file into a NUL-terminated malloc'd buffer (NULL if absent).
 * Caller frees. */
char *sm_test_slurp(const char *path);

/* The last cap - 1 bytes of the log at path, into buf (a sentence if
 * there is none): for assertion messages. Returns buf. */
const char *sm_test_log_tail(const char *path, char *buf, size_t cap);
/* The tail of a log for an assertion message, in a buffer of its own. */
#define SM_TEST_TAIL(path) sm_test_log_tail((path), (char[3000]){0}, 3000)

/* Polls until file `path` contains `needle` or timeout_ms passes. */
bool sm_test_wait_for_text(const char *path, const char *needle,
                           int timeout_ms);

/* A recording held in memory, to publish from any record on: subjects and
 * payloads copied out of the file (sm_test_recs_load asserts it opens). */
typedef struct sm_test_recs {
    size_t n;
    char **subject;
    uint8_t **data;
    size_t *len;
} sm_test_recs;

void sm_test_recs_load(sm_test_recs *R, const char *path);
void sm_test_recs_free(sm_test_recs *R);

/* An idle Heartbeat of agent in swarm at ts: packed into buf (cap >= 128)
 * with its subject swarm.<swarm>.heartbeat.<agent> in subject (cap >=
 * 128). Returns the packed length. */
size_t sm_test_idle_beat(uint8_t *buf, char *subject, const char *swarm,
                         const char *agent, int64_t ts);

/* One message of a JetStream stream: its subject and Nats-Msg-Id. */
typedef struct sm_test_msg_id {
    char subject[128];
    char id[64];
} sm_test_msg_id;

/* Every message of `stream` on `subject`, in stream order, read by an
 * ordered consumer until 1.5 s pass with none; each must carry a
 * Nats-Msg-Id. *out is malloc'd (caller frees); returns the count. */
size_t sm_test_stream_ids(jsCtx *js, const char *stream, const char *subject,
                          sm_test_msg_id **out);

/* Sorts n NUL-terminated strings of w bytes each at v and returns how
 * many equal the one before (the repeats). */
size_t sm_test_sort_repeats(void *v, size_t n, size_t w);

#endif
