#include "proc.h"

#include <errno.h>
#include <time.h>

int64_t sm_proc_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void sm_proc_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

bool sm_proc_stop_pending(const sigset_t *stop, int *sig)
{
    if (!stop)
        return false;
    sigset_t pending;
    sigpending(&pending);
    for (int i = 1; i < NSIG; i++) {
        if (sigismember(stop, i) && sigismember(&pending, i)) {
            if (sig)
                *sig = i;
            return true;
        }
    }
    return false;
}
