/*
 * check_log.c - what a log line may show: URLs without their credentials.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runner.h"

START_TEST(url_credentials_are_masked)
{
    static const struct { const char *in, *out; } cases[] = {
        {"nats://medic:s3cret@host:4222", "nats://***@host:4222"},
        {"nats://t0ken@host:4222", "nats://***@host:4222"},
        {"tls://u:p@ss@host:4222", "tls://***@host:4222"},
        {"medic:s3cret@host:4222", "***@host:4222"},
        {"nats://host:4222", "nats://host:4222"},
        {"nats://host:4222/a@b", "nats://host:4222/a@b"},
        {"nats://a:b@h1:1,nats://h2:2,tls://tok@h3:3",
         "nats://***@h1:1,nats://h2:2,tls://***@h3:3"},
        {"", ""},
    };
    char buf[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_str_eq(sm_log_url(cases[i].in, buf, sizeof buf),
                         cases[i].out);
    ck_assert_str_eq(sm_log_url(NULL, buf, sizeof buf), "");
    /* truncated, never overrun, and the secret still never shows */
    char small[12];
    sm_log_url("nats://user:s3cret@a-long-host-name:4222", small, sizeof small);
    ck_assert_str_eq(small, "nats://***@");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_add_test(tc, url_credentials_are_masked);
    suite_add_tcase(s, tc);
    return sm_run_suite(s);
}
