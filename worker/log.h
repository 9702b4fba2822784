/*
 * log.h - structured log lines for the worker (core/ never logs).
 *
 * One line per call, logfmt: `ts=<wall ms> level=<lvl> event=<name> ...`
 * followed by the caller's key=value text. Wall time appears here only, as
 * a label for humans; no decision ever reads it.
 *
 * With format SM_LOG_JSON (--log-format=json) the same line is one JSON
 * object instead: {"ts":<ms>,"level":"info","event":"<name>", ...} and a
 * member per key=value pair of the caller's text, in order. A value is a
 * JSON number when it is written as one (at most 15 digits, so no id
 * loses a digit), else a string; "quoted values" lose their quotes; a
 * word with no '=' goes to "msg". The escaping rules are the text
 * format's, in JSON's syntax: a control byte (C0, DEL) or C1 character
 * as \u00NN, and a byte that is not UTF-8 as the text "\xNN", so every
 * line is valid JSON and UTF-8 whatever came from the wire.
 *
 * An sm_log is a plain value owned by the caller (built in main, reached
 * through the worker struct): there is no global logger.
 */
#ifndef SM_LOG_H
#define SM_LOG_H

#include <stddef.h>
#include <stdio.h>

typedef enum sm_log_level {
    SM_LOG_DEBUG = 0,
    SM_LOG_INFO = 1,
    SM_LOG_WARN = 2,
    SM_LOG_ERROR = 3,
} sm_log_level;

typedef enum sm_log_format {
    SM_LOG_TEXT = 0,        /* key=value (logfmt), the default */
    SM_LOG_JSON = 1,        /* one JSON object a line */
} sm_log_format;

typedef struct sm_log {
    FILE *out;              /* stderr by default */
    sm_log_level level;     /* lines below it are dropped */
    sm_log_format format;
} sm_log;

/* Parses "debug", "info", "warn", "error". Returns -1 if unknown. */
int sm_log_level_parse(const char *s);
/* Parses "text", "json". Returns -1 if unknown. */
int sm_log_format_parse(const char *s);

/* Writes one line if level >= lg->level. `event` is a short snake_case
 * name; fmt adds key=value pairs (quote values with spaces yourself).
 * Values are escaped here, for every line: a backslash as \\, control
 * bytes (C0, DEL) as \xNN and C1 control characters as \u00NN, so a
 * subject from the wire can neither start a line of its own nor send
 * escape sequences to a terminal. */
void sm_log_write(const sm_log *lg, sm_log_level level, const char *event,
                  const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes s into buf (cap > 0) with the escapes of sm_log_write, for
 * output that is not a log line (watch); truncates to cap, never in the
 * middle of an escape. Returns buf. */
const char *sm_log_escape(const char *s, char *buf, size_t cap);

/* Writes url into buf (cap > 0) without its credentials: the user
 * information of each URL of a comma-separated list (user:password@,
 * token@) becomes "***@", so a log line names the server and nothing
 * that logs in to it. Every URL the worker or its tools log goes through
 * here. Truncates to cap. Returns buf. */
const char *sm_log_url(const char *url, char *buf, size_t cap);

#endif
