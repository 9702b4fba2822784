#include "log.h"

#include <stdarg.h>
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
