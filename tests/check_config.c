/* Configuration: defaults, JSON file, environment, flags, and the errors a
 * user sees for bad settings. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "support.h"
#include "runner.h"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(defaults_are_the_spec_figures)
{
    sm_config c;
    char err[256];
    ck_assert_int_eq(sm_config_init(&c), SM_OK);
    ck_assert_str_eq(c.nats_url, "nats://127.0.0.1:4222");
    ck_assert_str_eq(c.input_subject, "swarm.>");
    ck_assert_int_eq(c.detect.window_ms, 60000);
    ck_assert_double_eq_tol(c.detect.token_raise, 0.80, 1e-12);
    ck_assert_uint_eq(c.detect.queue_raise, 50);
    ck_assert_int_eq(sm_config_validate(&c, err, sizeof err), SM_OK);
    sm_config_free(&c);
}
END_TEST

START_TEST(file_env_flag_order)
{
    char dir[256], path[320], err[256];
    sm_test_tmpdir(dir, sizeof dir, "cfg");
    snprintf(path, sizeof path, "%s/c.json", dir);
    write_file(path, "{\"nats_url\": \"nats://file:1\", \"slow_raise\": 2.5,"
                     " \"window\": \"120s\", \"map_size\": \"128M\","
                     " \"queue_raise\": 60, \"send_asap\": false}");
    sm_config c;
    sm_config_init(&c);
    ck_assert_int_eq(sm_config_load_file(&c, path, err, sizeof err), SM_OK);
    ck_assert_str_eq(c.nats_url, "nats://file:1");
    ck_assert_double_eq_tol(c.detect.slow_raise, 2.5, 1e-12);
    ck_assert_int_eq(c.detect.window_ms, 120000);
    ck_assert_int_eq(c.map_size, 128LL << 20);
    ck_assert_uint_eq(c.detect.queue_raise, 60);
    ck_assert(!c.send_asap);

    char *env[] = {"PATH=/bin", "SWARM_MEDIC_NATS_URL=nats://env:2",
                   "SWARM_MEDIC_SLOW_RAISE=3", NULL};
    ck_assert_int_eq(sm_config_load_env(&c, env, err, sizeof err), SM_OK);
    ck_assert_str_eq(c.nats_url, "nats://env:2");
    ck_assert_double_eq_tol(c.detect.slow_raise, 3.0, 1e-12);

    ck_assert_int_eq(sm_config_set(&c, "nats-url", "nats://flag:3", "command line",
                                   err, sizeof err), SM_OK);
    ck_assert_str_eq(c.nats_url, "nats://flag:3");
    sm_config_free(&c);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(unknown_key_names_key_and_file)
{
    char dir[256], path[320], err[256];
    sm_test_tmpdir(dir, sizeof dir, "cfg");
    snprintf(path, sizeof path, "%s/c.json", dir);
    write_file(path, "{\"token_rase\": 0.9}");
    sm_config c;
    sm_config_init(&c);
    ck_assert_int_eq(sm_config_load_file(&c, path, err, sizeof err), SM_ERR_CONFIG);
    ck_assert_msg(strstr(err, "token_rase") && strstr(err, path), "err: %s", err);
    sm_config_free(&c);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(malformed_json_gives_line)
{
    char dir[256], path[320], err[256];
    sm_test_tmpdir(dir, sizeof dir, "cfg");
    snprintf(path, sizeof path, "%s/c.json", dir);
    write_file(path, "{\n \"window\": 60s\n}");
    sm_config c;
    sm_config_init(&c);
    ck_assert_int_eq(sm_config_load_file(&c, path, err, sizeof err), SM_ERR_CONFIG);
    ck_assert_msg(strstr(err, ":2:"), "err should name line 2: %s", err);
    sm_config_free(&c);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(bad_values_are_rejected)
{
    sm_config c;
    char err[256];
    sm_config_init(&c);
    ck_assert_int_eq(sm_config_set(&c, "window", "ten", "x", err, sizeof err),
                     SM_ERR_CONFIG);
    ck_assert_msg(strstr(err, "window"), "%s", err);
    ck_assert_int_eq(sm_config_set(&c, "queue_raise", "-1", "x", err, sizeof err),
                     SM_ERR_CONFIG);
    ck_assert_int_eq(sm_config_set(&c, "send_asap", "maybe", "x", err, sizeof err),
                     SM_ERR_CONFIG);
    char *env[] = {"SWARM_MEDIC_NOPE=1", NULL};
    ck_assert_int_eq(sm_config_load_env(&c, env, err, sizeof err), SM_ERR_CONFIG);
    ck_assert_msg(strstr(err, "SWARM_MEDIC_NOPE"), "%s", err);
    sm_config_free(&c);
}
END_TEST

START_TEST(validation_names_the_problem)
{
    sm_config c;
    char err[256];
    sm_config_init(&c);
    c.detect.token_clear = 0.85;    /* above token_raise: would flap */
    ck_assert_int_eq(sm_config_validate(&c, err, sizeof err), SM_ERR_CONFIG);
    ck_assert_msg(strstr(err, "token"), "%s", err);
    sm_config_free(&c);

    sm_config_init(&c);
    c.retention_ms = 1000;          /* shorter than the window */
    ck_assert_int_eq(sm_config_validate(&c, err, sizeof err), SM_ERR_CONFIG);
    ck_assert_msg(strstr(err, "retention"), "%s", err);
    sm_config_free(&c);
}
END_TEST

START_TEST(shipped_example_is_valid_and_equals_the_defaults)
{
    /* deploy/swarm-medic.json spells out every detector default: it must
     * load, validate, and change no detector figure */
    sm_config c, d;
    char err[256];
    sm_config_init(&c);
    sm_config_init(&d);
    ck_assert_msg(sm_config_load_file(&c, "deploy/swarm-medic.json", err,
                                      sizeof err) == SM_OK, "%s", err);
    ck_assert_msg(sm_config_validate(&c, err, sizeof err) == SM_OK, "%s", err);
    ck_assert_mem_eq(&c.detect, &d.detect, sizeof c.detect);
    ck_assert_str_eq(c.store_dir, "/var/lib/swarm-medic");
    ck_assert_int_eq(c.commit_ms, d.commit_ms);
    ck_assert_int_eq(c.commit_events, d.commit_events);
    sm_config_free(&c);
    sm_config_free(&d);
}
END_TEST

/* sm_config_set, expecting a refusal that names `name`. */
static void refused(sm_config *c, const char *name, const char *value)
{
    char err[512];
    ck_assert_msg(sm_config_set(c, name, value, "test", err, sizeof err) ==
                  SM_ERR_CONFIG, "%s='%s' accepted", name, value);
    ck_assert_msg(strstr(err, name), "error for %s='%s' does not name it: %s",
                  name, value, err);
}

/* Out of the client's range: refused when set, naming the setting (they
 * used to pass and fail at connect, exit 1). */
START_TEST(client_limits_are_checked_when_set)
{
    sm_config c;
    char err[512];
    sm_config_init(&c);
    refused(&c, "pending_limit", "0");
    refused(&c, "pending_limit", "3000000000");
    refused(&c, "reconnect_buf", "0");
    refused(&c, "reconnect_buf", "4G");
    refused(&c, "connect_timeout", "0");
    refused(&c, "connect_timeout", "0s");
    ck_assert_int_eq(sm_config_set(&c, "pending_limit", "2147483647", "t", err,
                                   sizeof err), SM_OK);
    ck_assert_int_eq(sm_config_set(&c, "reconnect_buf", "64M", "t", err,
                                   sizeof err), SM_OK);
    ck_assert_int_eq(sm_config_set(&c, "connect_timeout", "1ms", "t", err,
                                   sizeof err), SM_OK);
    ck_assert_int_eq(sm_config_validate(&c, err, sizeof err), SM_OK);
    sm_config_free(&c);
}
END_TEST

/* A credentials or key file that is not there would be retried for ever
 * at connect: refused at start. */
START_TEST(missing_credential_files_are_refused)
{
    char dir[256], creds[320], err[512];
    sm_test_tmpdir(dir, sizeof dir, "cfg");
    snprintf(creds, sizeof creds, "%s/user.creds", dir);
    const char *files[] = {"nats_creds", "nats_nkey_seed", "tls_ca",
                           "tls_cert", "tls_key"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        sm_config c;
        sm_config_init(&c);
        ck_assert_int_eq(sm_config_set(&c, files[i], creds, "t", err, sizeof err),
                         SM_OK);
        ck_assert_int_eq(sm_config_validate(&c, err, sizeof err), SM_ERR_CONFIG);
        ck_assert_msg(strstr(err, files[i]) && strstr(err, creds), "%s", err);
        write_file(creds, "x");
        ck_assert_msg(sm_config_validate(&c, err, sizeof err) == SM_OK, "%s", err);
        remove(creds);
        sm_config_free(&c);
    }
    sm_test_rmtree(dir);
}
END_TEST

/* Strings are never cut short: over 511 bytes is refused, from a file as
 * from a flag; a string setting takes a JSON string, nothing else. */
START_TEST(long_strings_and_wrong_json_types_are_refused)
{
    char dir[256], path[320], err[512];
    sm_test_tmpdir(dir, sizeof dir, "cfg");
    snprintf(path, sizeof path, "%s/c.json", dir);
    char long_dir[700];
    memset(long_dir, 'd', sizeof long_dir - 1);
    long_dir[0] = '/';
    long_dir[sizeof long_dir - 1] = 0;
    sm_config c;
    sm_config_init(&c);
    refused(&c, "store_dir", long_dir);
    char json[900];
    snprintf(json, sizeof json, "{\"store_dir\": \"%s\"}", long_dir);
    write_file(path, json);
    ck_assert_int_eq(sm_config_load_file(&c, path, err, sizeof err), SM_ERR_CONFIG);
    ck_assert_msg(strstr(err, "store_dir") && strstr(err, "511"), "%s", err);
    long_dir[511] = 0;                      /* 511 bytes: the most there is */
    ck_assert_int_eq(sm_config_set(&c, "store_dir", long_dir, "t", err, sizeof err),
                     SM_OK);
    ck_assert_uint_eq(strlen(c.store_dir), 511);

    const char *bad[] = {"{\"store_dir\": true}", "{\"nats_url\": 4222}",
                         "{\"output_prefix\": false}", NULL};
    for (int i = 0; bad[i]; i++) {
        write_file(path, bad[i]);
        ck_assert_msg(sm_config_load_file(&c, path, err, sizeof err) ==
                      SM_ERR_CONFIG, "%s accepted", bad[i]);
        ck_assert_msg(strstr(err, "string"), "%s: %s", bad[i], err);
    }
    sm_config_free(&c);
    sm_test_rmtree(dir);
}
END_TEST

/* Subjects the worker publishes on must be literal NATS subjects; the one
 * it consumes a valid filter; neither output may be consumed again. */
START_TEST(subjects_are_checked)
{
    sm_config c;
    char err[512];
    sm_config_init(&c);
    const char *bad_out[] = {"a b", "medic.>", "medic.*", "", "a..b", ".a",
                             "a.", "a\tb", "me\x01dic", NULL};
    for (int i = 0; bad_out[i]; i++) {
        refused(&c, "output_prefix", bad_out[i]);
        refused(&c, "deadletter_subject", bad_out[i]);
    }
    const char *bad_in[] = {"swarm. >", "swarm.>.x", "swarm.a*", "swarm.*a", "",
                            "swarm..x", "swarm.x.", NULL};
    for (int i = 0; bad_in[i]; i++)
        refused(&c, "input_subject", bad_in[i]);
    const char *good_in[] = {"swarm.>", "swarm.*.task.*", "swarm.s1.>", NULL};
    for (int i = 0; good_in[i]; i++)
        ck_assert_int_eq(sm_config_set(&c, "input_subject", good_in[i], "t", err,
                                       sizeof err), SM_OK);
    ck_assert_int_eq(sm_config_set(&c, "output_prefix", "acme.medic", "t", err,
                                   sizeof err), SM_OK);
    ck_assert_int_eq(sm_config_set(&c, "input_subject", "swarm.>", "t", err,
                                   sizeof err), SM_OK);
    ck_assert_int_eq(sm_config_validate(&c, err, sizeof err), SM_OK);
    /* where input ids come from: the subject's token or the payload */
    ck_assert_str_eq(c.subject_ids, "subject");
    ck_assert_int_eq(sm_config_set(&c, "subject_ids", "bucket", "t", err, sizeof err),
                     SM_OK);
    ck_assert_int_eq(sm_config_validate(&c, err, sizeof err), SM_ERR_CONFIG);
    ck_assert_msg(strstr(err, "subject_ids"), "%s", err);
    ck_assert_int_eq(sm_config_set(&c, "subject_ids", "payload", "t", err, sizeof err),
                     SM_OK);
    ck_assert_int_eq(sm_config_validate(&c, err, sizeof err), SM_OK);
    /* a dead letter the worker would consume again: a loop */
    ck_assert_int_eq(sm_config_set(&c, "deadletter_subject", "swarm.dead.letter.x",
                                   "t", err, sizeof err), SM_OK);
    ck_assert_int_eq(sm_config_validate(&c, err, sizeof err), SM_ERR_CONFIG);
    ck_assert_msg(strstr(err, "deadletter_subject"), "%s", err);
    sm_config_free(&c);
    sm_config_init(&c);
    ck_assert_int_eq(sm_config_set(&c, "input_subject", ">", "t", err, sizeof err),
                     SM_OK);
    ck_assert_int_eq(sm_config_validate(&c, err, sizeof err), SM_ERR_CONFIG);
    ck_assert_msg(strstr(err, "output_prefix") || strstr(err, "deadletter"), "%s",
                  err);
    sm_config_free(&c);
}
END_TEST

/* partitions need JetStream, a lease_ttl the renewal (every third) can
 * keep, and a worker_id usable in consumer and key names. */
START_TEST(partition_settings_are_checked)
{
    sm_config c;
    char err[256];
    sm_config_init(&c);
    ck_assert_int_eq(c.partitions, 0);
    ck_assert_int_eq(c.lease_ttl_ms, 10000);
    ck_assert_int_eq(sm_config_set(&c, "partitions", "8", "t", err, sizeof err), SM_OK);
    ck_assert_int_eq(sm_config_validate(&c, err, sizeof err), SM_ERR_CONFIG);
    ck_assert_msg(strstr(err, "input=jetstream"), "%s", err);
    ck_assert_int_eq(sm_config_set(&c, "input", "jetstream", "t", err, sizeof err), SM_OK);
    ck_assert_int_eq(sm_config_validate(&c, err, sizeof err), SM_OK);
    ck_assert_int_eq(sm_config_set(&c, "lease_ttl", "100ms", "t", err, sizeof err), SM_OK);
    ck_assert_int_eq(sm_config_validate(&c, err, sizeof err), SM_ERR_CONFIG);
    ck_assert_msg(strstr(err, "lease_ttl"), "%s", err);
    ck_assert_int_eq(sm_config_set(&c, "lease_ttl", "2s", "t", err, sizeof err), SM_OK);
    ck_assert_int_eq(sm_config_set(&c, "worker_id", "pod.1", "t", err, sizeof err), SM_OK);
    ck_assert_int_eq(sm_config_validate(&c, err, sizeof err), SM_ERR_CONFIG);
    ck_assert_msg(strstr(err, "worker_id"), "%s", err);
    ck_assert_int_eq(sm_config_set(&c, "worker_id", "swarm-medic-0", "t", err, sizeof err),
                     SM_OK);
    ck_assert_int_eq(sm_config_validate(&c, err, sizeof err), SM_OK);
    ck_assert_int_eq(sm_config_set(&c, "partitions", "65", "t", err, sizeof err), SM_OK);
    ck_assert_int_eq(sm_config_validate(&c, err, sizeof err), SM_ERR_CONFIG);
    ck_assert_int_eq(sm_config_set(&c, "partitions", "8", "t", err, sizeof err), SM_OK);
    ck_assert_int_eq(sm_config_set(&c, "js_replicas", "0", "t", err, sizeof err), SM_OK);
    ck_assert_int_eq(sm_config_validate(&c, err, sizeof err), SM_ERR_CONFIG);
    ck_assert_msg(strstr(err, "js_replicas"), "%s", err);
    sm_config_free(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, defaults_are_the_spec_figures);
    tcase_add_test(tc, file_env_flag_order);
    tcase_add_test(tc, unknown_key_names_key_and_file);
    tcase_add_test(tc, malformed_json_gives_line);
    tcase_add_test(tc, bad_values_are_rejected);
    tcase_add_test(tc, validation_names_the_problem);
    tcase_add_test(tc, shipped_example_is_valid_and_equals_the_defaults);
    tcase_add_test(tc, client_limits_are_checked_when_set);
    tcase_add_test(tc, missing_credential_files_are_refused);
    tcase_add_test(tc, long_strings_and_wrong_json_types_are_refused);
    tcase_add_test(tc, subjects_are_checked);
    tcase_add_test(tc, partition_settings_are_checked);
    suite_add_tcase(s, tc);
    return sm_run_suite(s);
}
