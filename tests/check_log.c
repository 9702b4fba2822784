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

/* Renders one log line through sm_log_write into a malloc'd string. */
static char *line_of(const char *subject)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(mem);
    sm_log lg = {.out = mem, .level = SM_LOG_DEBUG};
    sm_log_write(&lg, SM_LOG_WARN, "input_rejected", "subject=%s bytes=%d",
                 subject, 3);
    fclose(mem);
    return text;
}

/* Values cannot forge lines or drive the terminal: control bytes (and a
 * backslash, so escapes stay unambiguous) are escaped, once, here. */
START_TEST(control_bytes_in_values_are_escaped)
{
    char *t = line_of("swarm.\x1b[31mred\n ts=1 level=error event=forged"
                      "\r\x07\x7f.task.a\\b\xc2\x9b" "2J.\xc3\xa9");
    ck_assert_msg(strchr(t, '\n') == t + strlen(t) - 1, "not one line: %s", t);
    for (const unsigned char *p = (const unsigned char *)t; *p; p++)
        ck_assert_msg(*p >= 0x20 || *p == '\n', "raw control byte 0x%02x in %s",
                      *p, t);
    ck_assert_msg(!strstr(t, "\x7f") && !strstr(t, "\xc2\x9b"), "%s", t);
    ck_assert_msg(strstr(t, "subject=swarm.\\x1b[31mred\\x0a ts=1 level=error "
                            "event=forged\\x0d\\x07\\x7f.task.a\\\\b"
                            "\\u009b2J.\xc3\xa9 bytes=3\n"), "%s", t);
    free(t);
    t = line_of("swarm.plain.task.a");           /* plain text unchanged */
    ck_assert_msg(strstr(t, " level=warn event=input_rejected "
                            "subject=swarm.plain.task.a bytes=3\n"), "%s", t);
    free(t);
}
END_TEST

/* The same escapes for output that is not a log line, cut short only
 * between escapes. */
START_TEST(escape_for_other_output)
{
    char buf[64];
    ck_assert_str_eq(sm_log_escape("a\x1b[2Jb\\c", buf, sizeof buf),
                     "a\\x1b[2Jb\\\\c");
    ck_assert_str_eq(sm_log_escape(NULL, buf, sizeof buf), "");
    char small[6];
    ck_assert_str_eq(sm_log_escape("ab\x1b", small, sizeof small), "ab");
}
END_TEST

/* A value longer than any line buffer is written whole. */
START_TEST(long_values_are_written_whole)
{
    static char big[10000];
    memset(big, 'x', sizeof big - 1);
    char *t = line_of(big);
    ck_assert_msg(strstr(t, big) != NULL, "long value cut");
    ck_assert(strstr(t, " bytes=3\n"));
    free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_add_test(tc, url_credentials_are_masked);
    tcase_add_test(tc, control_bytes_in_values_are_escaped);
    tcase_add_test(tc, long_values_are_written_whole);
    tcase_add_test(tc, escape_for_other_output);
    suite_add_tcase(s, tc);
    return sm_run_suite(s);
}
