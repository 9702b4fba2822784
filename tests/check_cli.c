/*
 * check_cli.c - the swarm-medic program's command line (worker/main.c):
 * program flags and settings it cannot take are refused at start, exit
 * code 2, with a sentence naming them; replay's --store-dir is honoured.
 * Runs the built binary; no bus is needed for a refusal.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"
#include "runner.h"

typedef struct cli {
    char bin[512];
    char dir[256];
    char log[320];
} cli;

static void cli_up(cli *c)
{
    sm_test_bin(c->bin, sizeof c->bin, "swarm-medic");
    sm_test_tmpdir(c->dir, sizeof c->dir, "cli");
    snprintf(c->log, sizeof c->log, "%s/out.log", c->dir);
}

/* Runs the program with args (after the binary), output to c->log
 * (truncated first); returns its exit status. */
static int run(cli *c, const char *const *args)
{
    const char *argv[16] = {c->bin};
    int n = 1;
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    FILE *f = fopen(c->log, "w");
    if (f)
        fclose(f);
    pid_t pid = sm_test_spawn(argv, c->log, true);
    int rc = sm_test_wait(pid, 20000);
    if (rc < 0) {                   /* still running: not refused */
        kill(pid, SIGKILL);
        sm_test_wait(pid, 5000);
    }
    return rc;
}

/* Exit 2, and the output names `name`. */
static void refused(cli *c, const char *const *args, const char *name)
{
    int rc = run(c, args);
    char *out = sm_test_slurp(c->log);
    ck_assert_msg(rc == 2, "%s ... exited %d, want 2:\n%s", args[0], rc, out);
    ck_assert_msg(out && strstr(out, name), "refusal does not name %s:\n%s",
                  name, out);
    free(out);
}

START_TEST(bad_program_flags_are_refused)
{
    cli c;
    cli_up(&c);
    const char *rec = "tests/golden/two-swarms.rec";
    refused(&c, (const char *[]){"replay", rec, "--to-bus", "--speed=abc", NULL},
            "--speed");
    refused(&c, (const char *[]){"replay", rec, "--to-bus", "--speed=0", NULL},
            "--speed");
    refused(&c, (const char *[]){"replay", rec, "--to-bus", "--speed=-2", NULL},
            "--speed");
    refused(&c, (const char *[]){"watch", "--count=abc", NULL}, "--count");
    refused(&c, (const char *[]){"record", "--out=x.rec", "--count=-1", NULL},
            "--count");
    refused(&c, (const char *[]){"replay", rec, "--to-bus", "--store-dir=/tmp/x",
                                 NULL}, "--store-dir");
    sm_test_rmtree(c.dir);
}
END_TEST

START_TEST(bad_settings_are_refused_before_connecting)
{
    cli c;
    cli_up(&c);
    /* were one accepted, its store goes to the test's directory */
    char store[320];
    snprintf(store, sizeof store, "SWARM_MEDIC_STORE_DIR=%s/data", c.dir);
    putenv(store);
    /* nothing listens on port 1: a refusal must come before any connect */
    refused(&c, (const char *[]){"--nats-url=nats://127.0.0.1:1",
                                 "--pending-limit=0", NULL}, "pending_limit");
    refused(&c, (const char *[]){"--nats-url=nats://127.0.0.1:1",
                                 "--pending-limit=5000000000", NULL},
            "pending_limit");
    refused(&c, (const char *[]){"--nats-url=nats://127.0.0.1:1",
                                 "--reconnect-buf=4G", NULL}, "reconnect_buf");
    refused(&c, (const char *[]){"--nats-url=nats://127.0.0.1:1",
                                 "--connect-timeout=0", NULL}, "connect_timeout");
    refused(&c, (const char *[]){"--nats-url=nats://127.0.0.1:1",
                                 "--nats-creds=/nonexistent/user.creds", NULL},
            "nats_creds");
    refused(&c, (const char *[]){"--nats-url=nats://127.0.0.1:1",
                                 "--nats-nkey-seed=/nonexistent/seed.nk", NULL},
            "nats_nkey_seed");
    refused(&c, (const char *[]){"--output-prefix=a b", NULL}, "output_prefix");
    refused(&c, (const char *[]){"--deadletter-subject=medic.>", NULL},
            "deadletter_subject");
    sm_test_rmtree(c.dir);
}
END_TEST

/* replay FILE --store-dir D replays with persistence into D. */
START_TEST(replay_store_dir_is_honoured)
{
    cli c;
    cli_up(&c);
    char flag[320], mdb[400];
    snprintf(flag, sizeof flag, "--store-dir=%s/data", c.dir);
    snprintf(mdb, sizeof mdb, "%s/data/data.mdb", c.dir);
    int rc = run(&c, (const char *[]){"replay", "tests/golden/demo.rec", flag,
                                      NULL});
    char *out = sm_test_slurp(c.log);
    ck_assert_msg(rc == 0, "replay --store-dir exited %d:\n%s", rc, out);
    free(out);
    ck_assert_msg(access(mdb, R_OK) == 0, "no store written at %s", mdb);
    sm_test_rmtree(c.dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, bad_program_flags_are_refused);
    tcase_add_test(tc, bad_settings_are_refused_before_connecting);
    tcase_add_test(tc, replay_store_dir_is_honoured);
    suite_add_tcase(s, tc);
    return sm_run_suite(s);
}
