/*
 * scale.c - the scaling policy (scale.h).
 */
#include "scale.h"

#include <string.h>

#define SCALE_UTIL 0.8          /* target_util when it is out of range */
#define SCALE_MIN_DONE 5.0      /* fewer tasks finished: no task figures */

void sm_scale_config_default(sm_scale_config *c)
{
    *c = (sm_scale_config){
        .up_pending = 30, .per_agent = 20, .down_pending = 10,
        .min_agents = 1, .max_agents = 50, .cooldown_ms = 20000,
        .stabilise_ms = 60000, .drain_ms = 45000, .work_ms = 120000,
        .burst_ms = 480000, .target_util = SCALE_UTIL,
    };
}

static uint32_t ceiling(const sm_scale_config *c, const sm_scale_input *in)
{
    uint32_t top = c->max_agents;
    if (in->quota > 0 && in->quota < top)
        top = in->quota;
    return top > c->min_agents ? top : c->min_agents;
}

/* The smallest whole number of agents >= x (0 for x <= 0; capped far
 * above any quota). */
static uint32_t agents_for(double x)
{
    if (!(x > 0))
        return 0;
    if (x >= 1e6)
        return 1000000;
    uint32_t n = (uint32_t)x;
    return (double)n < x - 1e-9 ? n + 1 : n;
}

/* The slot of event time ts in the ring: the newest one when ts falls in
 * its span of stabilise_ms / (SM_SCALE_HISTORY - 1), else a new one (the
 * oldest goes). One slot per span, not per sample, so the ring covers
 * the whole window however often samples come: one slot per sample would
 * cover only SM_SCALE_HISTORY samples (32 s at the scheduler's 1 s). */
static uint32_t slot_of(const sm_scale_config *c, sm_scale_state *s, int64_t ts)
{
    int64_t span = c->stabilise_ms / (SM_SCALE_HISTORY - 1);
    uint32_t last = (s->head + SM_SCALE_HISTORY - 1) % SM_SCALE_HISTORY;
    if (span < 1)
        span = 1;
    if (s->n > 0 && ts >= s->at[last] && ts / span == s->at[last] / span) {
        s->at[last] = ts;
        return last;
    }
    uint32_t k = s->head;
    s->at[k] = ts;
    s->want[k] = 0;
    s->samples[k] = 0;
    s->pending[k] = 0;
    s->busy[k] = 0;
    s->head = (s->head + 1) % SM_SCALE_HISTORY;
    if (s->n < SM_SCALE_HISTORY)
        s->n++;
    return k;
}

/* What the ring holds within the window ending at ts. */
typedef struct window {
    uint32_t high;              /* the highest recommendation */
    uint32_t oldest_pending;    /* pending at the oldest slot's latest */
    int64_t oldest_ms;          /* that sample */
    double busy_mean;
} window;

static window within(const sm_scale_config *c, const sm_scale_state *s,
                     int64_t ts)
{
    window w = {0, 0, ts, 0};
    double busy = 0;
    uint32_t samples = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        uint32_t k = (s->head + SM_SCALE_HISTORY - 1 - i) % SM_SCALE_HISTORY;
        if (s->at[k] < ts - c->stabilise_ms)
            continue;
        if (s->want[k] > w.high)
            w.high = s->want[k];
        if (s->at[k] <= w.oldest_ms) {
            w.oldest_ms = s->at[k];
            w.oldest_pending = s->pending[k];
        }
        busy += s->busy[k];
        samples += s->samples[k];
    }
    w.busy_mean = samples > 0 ? busy / samples : 0;
    return w;
}

/* Moves the long means on to sample in: busy's exponential mean over
 * about work_ms, and pending's peak decaying over about burst_ms (a step
 * of dt takes dt / tau of the gap, at most all of it: no exp() here). */
static void follow(const sm_scale_config *c, sm_scale_state *s,
                   const sm_scale_input *in)
{
    double busy = in->busy > 0 ? in->busy : 0;
    int64_t dt = in->ts_ms - s->long_ms;
    if (s->long_ms == 0) {
        s->busy_long = busy;
        s->peak = in->pending;
    } else if (dt > 0) {
        double a = c->work_ms > 0 ? (double)dt / (double)c->work_ms : 1;
        double p = c->burst_ms > 0 ? (double)dt / (double)c->burst_ms : 1;
        s->busy_long += (busy - s->busy_long) * (a < 1 ? a : 1);
        s->peak -= s->peak * (p < 1 ? p : 1);
    }
    if (in->pending > s->peak)
        s->peak = in->pending;
    if (in->ts_ms > s->long_ms)
        s->long_ms = in->ts_ms;
}

/* The task figures into out, when they can be trusted: half a window of
 * samples at least, SCALE_MIN_DONE tasks finished, work in flight. */
static void figures(const sm_scale_config *c, const sm_scale_state *s,
                    const sm_scale_input *in, const window *w,
                    sm_scale_decision *out)
{
    int64_t span = in->ts_ms - s->first_ms;
    if (span > c->stabilise_ms)
        span = c->stabilise_ms;
    if (span < c->stabilise_ms / 2 || !(in->done >= SCALE_MIN_DONE) ||
        !(w->busy_mean > 0))
        return;
    out->busy_mean = w->busy_mean;
    out->busy_long = s->busy_long;
    out->peak = s->peak;
    out->task_s = w->busy_mean * ((double)span / 1000.0) / in->done;
    if (in->pending > w->oldest_pending && in->ts_ms > w->oldest_ms)
        out->growth = (double)(in->pending - w->oldest_pending) * 1000.0 /
                      (double)(in->ts_ms - w->oldest_ms);
}

/* What the queue and the work ask for (scale.h), f the task figures. */
static uint32_t recommend(const sm_scale_config *c, const sm_scale_input *in,
                          const sm_scale_decision *f)
{
    double util = c->target_util > 0 && c->target_util <= 1 ? c->target_util
                                                            : SCALE_UTIL;
    double drain_s = c->drain_ms > 0 ? (double)c->drain_ms / 1000.0 : 1.0;
    uint32_t want = in->active;
    if (in->pending > c->up_pending && f->task_s > 0) {
        double backlog = (double)(in->pending - c->down_pending) / drain_s;
        double inflow = f->growth > backlog ? f->growth : backlog;
        uint32_t drain = agents_for(f->busy_mean + inflow * f->task_s);
        uint32_t flow = agents_for(f->busy_mean / util);
        want = drain > flow ? drain : flow;
        if (want < in->active)
            want = in->active;
    } else if (in->pending > c->up_pending) {
        uint32_t over = in->pending - c->up_pending;
        want = in->active + (over + c->per_agent - 1) / c->per_agent;
    } else if (in->pending < c->down_pending && in->active > 0 &&
               f->task_s > 0) {
        uint32_t need = agents_for(f->busy_long / util);
        if (f->peak > c->up_pending) {
            uint32_t ready = agents_for(
                f->busy_long +
                (f->peak - c->down_pending) / drain_s * f->task_s);
            if (ready > need)
                need = ready;
        }
        if (need < in->active)
            want = in->active - (in->active - need + 1) / 2;
    } else if (in->pending < c->down_pending && in->active > 0) {
        /* half the idle dynamic agents (at least one): a step per
         * stabilisation window, so it must not be one agent at a time */
        uint32_t shed = in->idle_dynamic / 2 > 1 ? in->idle_dynamic / 2 : 1;
        want = in->active > shed ? in->active - shed : 0;
    }
    uint32_t top = ceiling(c, in);
    if (want > top)
        want = top;
    if (want < c->min_agents)
        want = c->min_agents;
    return want;
}

static bool hold(sm_scale_decision *out, const char *why)
{
    out->dir = SM_SCALE_HOLD;
    out->target = out->current;
    out->remove = 0;
    out->reason = why;
    return false;
}

bool sm_scale_step(const sm_scale_config *c, sm_scale_state *s,
                   const sm_scale_input *in, sm_scale_decision *out)
{
    memset(out, 0, sizeof *out);
    out->current = in->active;
    if (s->n == 0 && s->first_ms == 0)
        s->first_ms = in->ts_ms;
    uint32_t k = slot_of(c, s, in->ts_ms);
    s->samples[k]++;
    s->busy[k] += in->busy > 0 ? in->busy : 0;
    s->pending[k] = in->pending;
    follow(c, s, in);
    window w = within(c, s, in->ts_ms);
    figures(c, s, in, &w, out);
    uint32_t want = recommend(c, in, out);
    if (want > s->want[k])
        s->want[k] = want;
    uint32_t high = w.high > want ? w.high : want;
    out->cooldown_until_ms = s->last_change_ms ? s->last_change_ms + c->cooldown_ms : 0;
    bool cooling = s->last_change_ms && in->ts_ms < out->cooldown_until_ms;
    /* sized by the work (task figures known), a DOWN is worth a change
     * from a tenth of the agents (one at least) */
    bool sized = out->task_s > 0;
    uint32_t margin = sized ? (in->active + 9) / 10 : 1;
    if (want > in->active) {
        if (in->tokens_short)
            return hold(out, "token_forecast");
        /* a need that outgrew the last UP's target need not wait out its
         * cooldown: a quarter of it (the agents asked for have come) */
        bool outgrown = sized && s->last_up_ms &&
                        s->last_up_ms == s->last_change_ms &&
                        want > s->last_up_target &&
                        in->ts_ms >= s->last_up_ms + c->cooldown_ms / 4;
        if (cooling && !outgrown)
            return hold(out, "cooldown");
        out->dir = SM_SCALE_UP;
        out->target = want;
        out->reason = "queue_backlog";
        s->last_up_ms = in->ts_ms;
        s->last_up_target = want;
    } else if (high + margin <= in->active) {
        if (cooling)
            return hold(out, "cooldown");
        if (sized && s->last_up_ms &&
            in->ts_ms < s->last_up_ms + c->cooldown_ms + c->stabilise_ms)
            return hold(out, "stabilising");
        if (in->idle_dynamic == 0)
            return hold(out, "no_idle_agent");
        uint32_t drop = in->active - high;
        out->remove = drop < in->idle_dynamic ? drop : in->idle_dynamic;
        out->dir = SM_SCALE_DOWN;
        out->target = in->active - out->remove;
        out->reason = "queue_drained";
    } else {
        return hold(out, want < in->active ? "stabilising"
                         : in->active >= ceiling(c, in) && in->pending > c->up_pending
                             ? "at_max" : "steady");
    }
    s->last_change_ms = in->ts_ms;
    out->cooldown_until_ms = in->ts_ms + c->cooldown_ms;
    return true;
}
