#include "log.h"

#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

static const char *level_name[] = {"debug", "info", "warn", "error"};

int sm_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_name[i]) == 0)
            return i;
    return -1;
}

void sm_log_write(const sm_log *lg, sm_log_level level, const char *event,
                  const char *fmt, ...)
{
    if (level < lg->level)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    FILE *out = lg->out ? lg->out : stderr;
    flockfile(out);
    fprintf(out, "ts=%lld level=%s event=%s", ms, level_name[level], event);
    if (fmt && fmt[0]) {
        va_list ap;
        va_start(ap, fmt);
        fputc(' ', out);
        vfprintf(out, fmt, ap);
        va_end(ap);
    }
    fputc('\n', out);
    fflush(out);
    funlockfile(out);
}

/* Appends n bytes of s to buf at *len, keeping it terminated (cap > 0). */
static void put(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    size_t room = cap - 1 - *len;
    if (n > room)
        n = room;
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = 0;
}

/* One URL [s, end): the user information, up to the last '@' of the
 * authority (after "scheme://", before any '/', '?' or '#'), is masked. */
static void put_url(char *buf, size_t cap, size_t *len, const char *s,
                    const char *end)
{
    const char *auth = s;
    for (const char *p = s; p + 3 <= end; p++)
        if (memcmp(p, "://", 3) == 0) {
            auth = p + 3;
            break;
        }
    const char *at = NULL;
    for (const char *p = auth; p < end && !strchr("/?#", *p); p++)
        if (*p == '@')
            at = p;
    if (!at) {
        put(buf, cap, len, s, (size_t)(end - s));
        return;
    }
    put(buf, cap, len, s, (size_t)(auth - s));
    put(buf, cap, len, "***", 3);
    put(buf, cap, len, at, (size_t)(end - at));
}

const char *sm_log_url(const char *url, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (const char *s = url ? url : ""; *s;) {
        const char *comma = strchr(s, ',');
        const char *end = comma ? comma : s + strlen(s);
        put_url(buf, cap, &len, s, end);
        if (!comma)
            break;
        put(buf, cap, &len, ",", 1);
        s = comma + 1;
    }
    return buf;
}
