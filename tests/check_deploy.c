/*
 * check_deploy.c - every file of deploy/ is checked by what Debian offers:
 *
 *   nats-server configs   `nats-server -t -c` on each (and a broken copy
 *                         refused); the partitioned one run for real: the
 *                         mapping puts a swarm on part.<FNV-1a(swarm) mod
 *                         8>, and a swarm still publishes only on its own
 *                         subjects through the accounts
 *   systemd unit          `systemd-analyze verify` (ExecStart pointed at
 *                         the built binary; a broken copy refused);
 *                         skipped, saying so, without systemd-analyze
 *   manifests, image      tests/deploy_lint.py (python3-yaml): YAML of
 *                         each manifest, probes, volume, grace period;
 *                         the Containerfile's FROM and COPY paths; the
 *                         unit's Type, watchdog and stop timeout; the
 *                         ConfigMap's settings through --check-config
 */
#include <check.h>
#include <glob.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"
#include "worker.h"
#include "runner.h"

/* Runs argv, output to dir/out.log (truncated); returns the exit status
 * and the output in *out (caller frees). */
static int run(const char *dir, const char *const *argv, char **out)
{
    char log[320];
    snprintf(log, sizeof log, "%s/out.log", dir);
    unlink(log);
    int rc = sm_test_wait(sm_test_spawn(argv, log, false), 60000);
    *out = sm_test_slurp(log);
    if (!*out)
        *out = strdup("");
    return rc;
}

/* Copies src to dst, replacing every `from` by `to` (to NULL: no change). */
static void copy_with(const char *src, const char *dst, const char *from,
                      const char *to)
{
    char *txt = sm_test_slurp(src);
    ck_assert_msg(txt, "cannot read %s", src);
    FILE *f = fopen(dst, "w");
    ck_assert_ptr_nonnull(f);
    for (const char *p = txt; *p;) {
        const char *hit = from ? strstr(p, from) : NULL;
        if (!hit) {
            fputs(p, f);
            break;
        }
        fwrite(p, 1, (size_t)(hit - p), f);
        fputs(to, f);
        p = hit + strlen(from);
    }
    fclose(f);
    free(txt);
}

START_TEST(every_nats_config_is_valid)
{
    char dir[256], *out;
    sm_test_tmpdir(dir, sizeof dir, "deploy");
    glob_t g;
    ck_assert_int_eq(glob("deploy/nats-server.conf", 0, NULL, &g), 0);
    ck_assert_int_eq(glob("deploy/nats/*.conf", GLOB_APPEND, NULL, &g), 0);
    ck_assert_msg(g.gl_pathc >= 5, "%zu configs", g.gl_pathc);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *argv[] = {"nats-server", "-t", "-c", g.gl_pathv[i], NULL};
        int rc = run(dir, argv, &out);
        ck_assert_msg(rc == 0, "nats-server -t -c %s: exit %d: %s", g.gl_pathv[i],
                      rc, out);
        free(out);
    }
    globfree(&g);
    /* the check can fail: a mapping nats-server 2.9 cannot take */
    char broken[320];
    snprintf(broken, sizeof broken, "%s/broken.conf", dir);
    copy_with("deploy/nats/accounts.inc", broken, "{{partition(8,1)}}",
              "{{partition(8,9)}}");
    const char *argv[] = {"nats-server", "-t", "-c", broken, NULL};
    ck_assert_msg(run(dir, argv, &out) != 0, "a broken mapping passed: %s", out);
    free(out);
    sm_test_rmtree(dir);
}
END_TEST

/* FNV-1a, 32 bits: what nats-server's partition() hashes a token with. */
static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static natsConnection *connect_as(int port, const char *userinfo)
{
    char url[160];
    natsConnection *nc = NULL;
    snprintf(url, sizeof url, "nats://%s@127.0.0.1:%d", userinfo, port);
    ck_assert_int_eq(natsConnection_ConnectTo(&nc, url), NATS_OK);
    return nc;
}

/* The next subject on sub (within 5 s), as a static string. */
static const char *next_subject(natsSubscription *sub, char *buf, size_t cap)
{
    natsMsg *m = NULL;
    ck_assert_msg(natsSubscription_NextMsg(&m, sub, 5000) == NATS_OK,
                  "nothing arrived");
    snprintf(buf, cap, "%s", natsMsg_GetSubject(m));
    natsMsg_Destroy(m);
    return buf;
}

START_TEST(partition_mapping_is_fnv1a_of_the_swarm)
{
    char jsdir[256];
    sm_test_tmpdir(jsdir, sizeof jsdir, "js");
    sm_test_server srv;
    const char *sargs[] = {"-c", "deploy/nats/partitioned.conf", "--store_dir",
                           jsdir, NULL};
    sm_test_server_start(&srv, 0, sargs);
    natsConnection *medic = connect_as(srv.port, "medic:medic-example-password");
    natsSubscription *in = NULL;
    ck_assert_int_eq(natsConnection_SubscribeSync(&in, medic, "part.>"), NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(medic, 2000), NATS_OK);
    const char *swarms[] = {"s0", "s1"};
    char got[256], want[256];
    for (int i = 0; i < 2; i++) {
        char user[64], subj[64];
        snprintf(user, sizeof user, "swarm-%s:%s-example-password", swarms[i],
                 swarms[i]);
        natsConnection *pub = connect_as(srv.port, user);
        /* another swarm's subject first: refused, so the first thing the
         * worker sees is the swarm's own event */
        ck_assert_int_eq(natsConnection_PublishString(
                             pub, i ? "swarm.s0.task.x" : "swarm.s1.task.x", "no"),
                         NATS_OK);
        snprintf(subj, sizeof subj, "swarm.%s.heartbeat.a%d", swarms[i], i);
        ck_assert_int_eq(natsConnection_PublishString(pub, subj, "hb"), NATS_OK);
        natsConnection_FlushTimeout(pub, 2000);
        snprintf(want, sizeof want, "part.%u.%s", fnv1a(swarms[i]) % 8, subj);
        ck_assert_str_eq(next_subject(in, got, sizeof got), want);
        natsConnection_Destroy(pub);
    }
    natsSubscription_Destroy(in);
    natsConnection_Destroy(medic);
    sm_test_server_stop(&srv);
    sm_test_rmtree(srv.dir);
    sm_test_rmtree(jsdir);
}
END_TEST

/* Whether prog is on PATH. */
static bool on_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[1024];
    for (const char *p = path ? path : ""; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, prog);
        if (access(buf, X_OK) == 0)
            return true;
        p += n + (p[n] == ':');
    }
    return false;
}

START_TEST(systemd_unit_verifies)
{
    if (!on_path("systemd-analyze")) {
        fprintf(stderr, "check_deploy: SKIPPED systemd_unit_verifies: no "
                        "systemd-analyze (Debian package systemd)\n");
        return;
    }
    char dir[256], unit[320], bin[512], *out;
    sm_test_tmpdir(dir, sizeof dir, "deploy");
    sm_test_bin(bin, sizeof bin, "swarm-medic");
    char *abs = realpath(bin, NULL);
    ck_assert_ptr_nonnull(abs);
    /* verify wants ExecStart's program to exist: the built one stands in
     * for /usr/local/bin/swarm-medic; nothing else is changed */
    snprintf(unit, sizeof unit, "%s/swarm-medic.service", dir);
    copy_with("deploy/systemd/swarm-medic.service", unit, "/usr/local/bin/swarm-medic",
              abs);
    const char *argv[] = {"systemd-analyze", "verify", unit, NULL};
    int rc = run(dir, argv, &out);
    ck_assert_msg(rc == 0 && !strstr(out, "swarm-medic.service:"),
                  "systemd-analyze verify: exit %d: %s", rc, out);
    free(out);
    /* the check can fail: no ExecStart */
    char broken[400];
    snprintf(broken, sizeof broken, "%s/broken/swarm-medic.service", dir);
    char bdir[320];
    snprintf(bdir, sizeof bdir, "%s/broken", dir);
    mkdir(bdir, 0700);
    copy_with(unit, broken, "ExecStart=", "ExecStartX=");
    const char *bargv[] = {"systemd-analyze", "verify", broken, NULL};
    rc = run(dir, bargv, &out);
    ck_assert_msg(rc != 0, "a unit without ExecStart passed: %s", out);
    free(out);
    free(abs);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(manifests_image_and_unit_lint)
{
    char dir[256], cfg[320], drain[32], *out;
    sm_test_tmpdir(dir, sizeof dir, "deploy");
    snprintf(cfg, sizeof cfg, "%s/configmap.json", dir);
    snprintf(drain, sizeof drain, "%g", SM_WORKER_STOP_MS / 1000.0);
    const char *argv[] = {"/usr/bin/python3", "tests/deploy_lint.py", ".", "deploy",
                          drain, cfg, NULL};
    int rc = run(dir, argv, &out);
    ck_assert_msg(rc == 0, "deploy_lint: exit %d: %s", rc, out);
    free(out);
    /* the ConfigMap's settings are ones the worker takes */
    char bin[512];
    sm_test_bin(bin, sizeof bin, "swarm-medic");
    const char *cargv[] = {bin, "--check-config", "--config", cfg, NULL};
    rc = run(dir, cargv, &out);
    ck_assert_msg(rc == 0, "the ConfigMap's settings: exit %d: %s", rc, out);
    free(out);

    /* the lint can fail: a copy of deploy/ with a short grace period, a
     * probe on the wrong path and a COPY of a file that is not there */
    char copy[320], path[400], cmd[1024];
    snprintf(copy, sizeof copy, "%s/deploy", dir);
    snprintf(cmd, sizeof cmd, "cp -r deploy %s", copy);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/k8s/statefulset.yaml", copy);
    copy_with("deploy/k8s/statefulset.yaml", path, "terminationGracePeriodSeconds: 45",
              "terminationGracePeriodSeconds: 5");
    snprintf(path, sizeof path, "%s/Containerfile", copy);
    copy_with("deploy/Containerfile", path, "COPY schema/ schema/",
              "COPY schemas/ schema/");
    const char *bargv[] = {"/usr/bin/python3", "tests/deploy_lint.py", ".", copy,
                           drain, NULL};
    rc = run(dir, bargv, &out);
    ck_assert_msg(rc == 1 && strstr(out, "terminationGracePeriodSeconds") &&
                  strstr(out, "schemas/"), "broken copy: exit %d: %s", rc, out);
    free(out);
    sm_test_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("deploy");
    TCase *tc = tcase_create("deploy");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, every_nats_config_is_valid);
    tcase_add_test(tc, partition_mapping_is_fnv1a_of_the_swarm);
    tcase_add_test(tc, systemd_unit_verifies);
    tcase_add_test(tc, manifests_image_and_unit_lint);
    suite_add_tcase(s, tc);
    return sm_run_suite(s);
}
