/*
 * check_log.c - what a log line may show: URLs without their credentials,
 * values escaped; with --log-format=json, lines jansson parses.
 */
#include <check.h>
#include <jansson.h>
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

/* ---- JSON lines ----------------------------------------------------------- */

/* One JSON line through sm_log_write, parsed (the caller frees both). */
static json_t *json_line_of(char **raw, const char *subject, const char *id)
{
    size_t len = 0;
    *raw = NULL;
    FILE *mem = open_memstream(raw, &len);
    ck_assert_ptr_nonnull(mem);
    sm_log lg = {.out = mem, .level = SM_LOG_DEBUG, .format = SM_LOG_JSON};
    sm_log_write(&lg, SM_LOG_WARN, "input_rejected",
                 "subject=%s bytes=%d reason=\"%s\" id=%s ratio=%.3f "
                 "neg=-2 big=12345678901234567 odd=1e bare", subject, 3,
                 "bad \"thing\" here", id, 0.125);
    fclose(mem);
    ck_assert_msg(strchr(*raw, '\n') == *raw + strlen(*raw) - 1, "not one line: %s",
                  *raw);
    for (const unsigned char *p = (const unsigned char *)*raw; *p; p++)
        ck_assert_msg(*p >= 0x20 || *p == '\n', "raw control byte 0x%02x in %s",
                      *p, *raw);
    json_error_t e;
    json_t *o = json_loads(*raw, 0, &e);    /* jansson checks UTF-8 too */
    ck_assert_msg(o && json_is_object(o), "not JSON (%s): %s", e.text, *raw);
    return o;
}

START_TEST(json_lines_parse_and_keep_their_values)
{
    char *raw;
    json_t *o = json_line_of(&raw, "swarm.s0.task.a0", "0000000000001234");
    ck_assert(json_is_integer(json_object_get(o, "ts")));
    ck_assert_str_eq(json_string_value(json_object_get(o, "level")), "warn");
    ck_assert_str_eq(json_string_value(json_object_get(o, "event")), "input_rejected");
    ck_assert_str_eq(json_string_value(json_object_get(o, "subject")), "swarm.s0.task.a0");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "bytes")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "neg")), -2);
    ck_assert(json_real_value(json_object_get(o, "ratio")) == 0.125);
    /* quoted: a string without its quotes, inner quotes kept */
    ck_assert_str_eq(json_string_value(json_object_get(o, "reason")),
                     "bad \"thing\" here");
    /* never a number that would lose digits or is not JSON's */
    ck_assert_str_eq(json_string_value(json_object_get(o, "id")), "0000000000001234");
    ck_assert_str_eq(json_string_value(json_object_get(o, "big")), "12345678901234567");
    ck_assert_str_eq(json_string_value(json_object_get(o, "odd")), "1e");
    ck_assert_str_eq(json_string_value(json_object_get(o, "msg")), "bare");
    json_decref(o);
    free(raw);
}
END_TEST

/* Hostile bytes: escaped in JSON's syntax (the decoded value is what came
 * in), bytes that are not UTF-8 as the text \xNN, and no key of the
 * caller's replaces the line's own level. */
START_TEST(json_lines_escape_hostile_values)
{
    char *raw;
    json_t *o = json_line_of(&raw, "swarm.\x1b[31mred\x7f\xc2\x9b\xff\xc3\xa9 "
                                   "level=error event=forged", "1");
    ck_assert_str_eq(json_string_value(json_object_get(o, "subject")),
                     "swarm.\x1b[31mred\x7f\xc2\x9b\\xff\xc3\xa9");
    ck_assert_msg(strstr(raw, "\\u001b") && strstr(raw, "\\u009b") &&
                  !strstr(raw, "\xc2\x9b"), "%s", raw);
    ck_assert_str_eq(json_string_value(json_object_get(o, "level")), "warn");
    ck_assert_str_eq(json_string_value(json_object_get(o, "event")), "input_rejected");
    ck_assert_str_eq(json_string_value(json_object_get(o, "_level")), "error");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "id")), 1);
    json_decref(o);
    free(raw);
    ck_assert_int_eq(sm_log_format_parse("json"), SM_LOG_JSON);
    ck_assert_int_eq(sm_log_format_parse("text"), SM_LOG_TEXT);
    ck_assert_int_eq(sm_log_format_parse("xml"), -1);
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
    tcase_add_test(tc, json_lines_parse_and_keep_their_values);
    tcase_add_test(tc, json_lines_escape_hostile_values);
    suite_add_tcase(s, tc);
    return sm_run_suite(s);
}
