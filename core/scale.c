/*
 * scale.c - the scaling policy (scale.h).
 */
#include "scale.h"

#include <string.h>

void sm_scale_config_default(sm_scale_config *c)
{
    *c = (sm_scale_config){
        .up_pending = 30, .per_agent = 20, .down_pending = 10,
        .min_agents = 1, .max_agents = 50, .cooldown_ms = 20000,
        .stabilise_ms = 60000,
    };
}

static uint32_t ceiling(const sm_scale_config *c, const sm_scale_input *in)
{
    uint32_t top = c->max_agents;
    if (in->quota > 0 && in->quota < top)
        top = in->quota;
    return top > c->min_agents ? top : c->min_agents;
}

/* What the queue alone asks for. */
static uint32_t recommend(const sm_scale_config *c, const sm_scale_input *in)
{
    uint32_t want = in->active;
    if (in->pending > c->up_pending) {
        uint32_t over = in->pending - c->up_pending;
        want = in->active + (over + c->per_agent - 1) / c->per_agent;
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

/* Keeps the recommendation; returns the highest one within the window. */
static uint32_t remember(const sm_scale_config *c, sm_scale_state *s,
                         int64_t ts, uint32_t want)
{
    s->at[s->head] = ts;
    s->want[s->head] = want;
    s->head = (s->head + 1) % SM_SCALE_HISTORY;
    if (s->n < SM_SCALE_HISTORY)
        s->n++;
    uint32_t high = want;
    for (uint32_t i = 0; i < s->n; i++) {
        uint32_t k = (s->head + SM_SCALE_HISTORY - 1 - i) % SM_SCALE_HISTORY;
        if (s->at[k] < ts - c->stabilise_ms)
            continue;
        if (s->want[k] > high)
            high = s->want[k];
    }
    return high;
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
    uint32_t want = recommend(c, in);
    uint32_t high = remember(c, s, in->ts_ms, want);
    out->cooldown_until_ms = s->last_change_ms ? s->last_change_ms + c->cooldown_ms : 0;
    bool cooling = s->last_change_ms && in->ts_ms < out->cooldown_until_ms;
    if (want > in->active) {
        if (in->tokens_short)
            return hold(out, "token_forecast");
        if (cooling)
            return hold(out, "cooldown");
        out->dir = SM_SCALE_UP;
        out->target = want;
        out->reason = "queue_backlog";
    } else if (high < in->active) {
        if (cooling)
            return hold(out, "cooldown");
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
