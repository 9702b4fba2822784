/*
 * world_scale.c - the simulated coordinator's scaling (world.h, "scaling"):
 * swarm-medic's ScalingDecisions taken at the world's current event time,
 * carried out after the coordinator's delay; and the load figures the
 * scaling is judged on.
 */
#include "world_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define DIR_UP SWARMMEDIC__V1__SCALING_DECISION__DIRECTION__DIRECTION_UP
#define DIR_DOWN SWARMMEDIC__V1__SCALING_DECISION__DIRECTION__DIRECTION_DOWN

sm_status sm_wscale_decode(const void *data, size_t len, sm_wscale *out)
{
    if (out == NULL || (data == NULL && len > 0))
        return SM_ERR_DECODE;
    Swarmmedic__V1__ScalingDecision *m =
        swarmmedic__v1__scaling_decision__unpack(NULL, len, data);
    if (m == NULL || m->decision == NULL) {
        swarmmedic__v1__scaling_decision__free_unpacked(m, NULL);
        return SM_ERR_DECODE;
    }
    memset(out, 0, sizeof *out);
    sm_w_copy_id(out->id, sizeof out->id, m->decision->decision_id);
    sm_w_copy_id(out->swarm, sizeof out->swarm, m->decision->swarm);
    out->at_ms = m->decision->decided_at_ms;
    out->dir = (int)m->direction;
    out->current = m->current_agents;
    out->target = m->target_agents;
    for (size_t i = 0; i < m->n_remove_agents && i < SM_WSCALE_REMOVE; i++)
        sm_w_copy_id(out->remove[out->n_remove++], SM_WORLD_ID, m->remove_agents[i]);
    swarmmedic__v1__scaling_decision__free_unpacked(m, NULL);
    return SM_OK;
}

/* DOWN, on receipt: the named agents that are idle dynamic ones get no
 * new work from now (a coordinator stops assigning to an agent it is
 * about to remove); the others are refused (their names blanked). */
static void reserve_leavers(sm_world *w, uint32_t s, sm_wscale *d)
{
    wswarm_st *st = &w->sw[s];
    for (size_t i = 0; i < d->n_remove; i++) {
        uint32_t a;
        wagent *ag = sm_w_index_of(d->remove[i], 'a', st->n_total, &a) ? &st->ag[a]
                                                                : NULL;
        if (ag == NULL || !ag->dynamic || ag->live != 1 || ag->down ||
            ag->inflight > 0 || ag->drain > 0 || ag->leaving) {
            w->ss.refused++;
            d->remove[i][0] = 0;
            continue;
        }
        ag->leaving = 1;
    }
}

sm_status sm_world_scale(sm_world *w, const sm_wscale *d)
{
    if (w == NULL || d == NULL)
        return SM_ERR_INVALID;
    w->ss.received++;
    for (size_t i = 0; i < w->n_spend; i++)
        if (strcmp(w->spend[i].d.id, d->id) == 0) {
            w->ss.duplicates++;
            return SM_OK;
        }
    uint32_t s = sm_w_swarm_index(w, d->swarm);
    if (s == UINT32_MAX) {
        w->ss.unknown_swarm++;
        return SM_OK;
    }
    if (d->dir != DIR_UP && d->dir != DIR_DOWN) {
        w->ss.holds++;
        return SM_OK;
    }
    if (w->n_spend == w->cap_spend) {
        size_t cap = w->cap_spend ? w->cap_spend * 2 : 16;
        spend *v = realloc(w->spend, cap * sizeof *v);
        if (v == NULL)
            return SM_ERR_NOMEM;
        w->spend = v;
        w->cap_spend = cap;
    }
    spend *p = &w->spend[w->n_spend++];
    p->d = *d;
    p->swarm = s;
    if (d->dir == DIR_DOWN)
        reserve_leavers(w, s, &p->d);
    const sm_wcoord *c = &w->cfg.coord;
    int64_t now = d->at_ms > w->now ? d->at_ms : w->now;
    double delay = c->delay_mean_s +
                   sm_rng_range(&w->crng, -c->delay_jitter_s, c->delay_jitter_s);
    witem it;
    memset(&it, 0, sizeof it);
    it.what = W_RESIZE;
    it.swarm = s;
    it.task = (uint64_t)(p - w->spend);
    it.ts = now + (delay < 0.05 ? 50 : (int64_t)(delay * 1000.0));
    return sm_w_push(w, it) ? SM_OK : SM_ERR_NOMEM;
}

/* DOWN, after the delay: the reserved agents unregister (never the last
 * one registered). */
static bool remove_agents(sm_world *w, uint32_t s, const sm_wscale *d,
                          int64_t t)
{
    wswarm_st *st = &w->sw[s];
    for (size_t i = 0; i < d->n_remove; i++) {
        uint32_t a;
        if (!sm_w_index_of(d->remove[i], 'a', st->n_total, &a))
            continue;                   /* refused on receipt */
        wagent *ag = &st->ag[a];
        bool ok = ag->leaving && ag->live == 1 && !ag->down &&
                  st->registered > 1;
        ag->leaving = 0;
        if (!ok) {
            w->ss.refused++;
            if (ag->live == 1 && !ag->down && !sm_w_free_slot(w, s, a))
                return false;
            continue;
        }
        ag->live = 0;
        ag->epoch++;
        st->registered--;
        w->ss.removed++;
        if (!sm_w_at(w, W_UNREG, s, a, t + 1 + (int64_t)i))
            return false;
    }
    return true;
}

bool sm_w_on_resize(sm_world *w, const witem *it)
{
    const spend *p = &w->spend[it->task];
    uint32_t s = p->swarm;
    const wswarm_st *st = &w->sw[s];
    if (p->d.dir == DIR_DOWN) {
        w->ss.down++;
        return remove_agents(w, s, &p->d, it->ts);
    }
    w->ss.up++;
    const sm_wswarm *c = &w->cfg.swarms[s];
    uint32_t coming = 0;
    for (uint32_t a = c->agents + c->reserve; a < st->n_total; a++)
        coming += st->ag[a].live == 2;
    uint32_t have = st->registered + coming;
    if (p->d.target <= have)
        return true;
    w->ss.added += sm_w_spawn(w, s, p->d.target - have, it->ts);
    return w->status == SM_OK;
}

void sm_world_scale_stats_of(const sm_world *w, sm_world_scale_stats *out)
{
    if (out == NULL)
        return;
    if (w == NULL)
        memset(out, 0, sizeof *out);
    else
        *out = w->ss;
}

/* ---- load ------------------------------------------------------------- */

void sm_w_load_sample(sm_world *w, uint32_t s, double dt)
{
    wswarm_st *st = &w->sw[s];
    const sm_wswarm *c = &w->cfg.swarms[s];
    wload *l = &st->load;
    uint32_t q = st->g.pending;
    double busy = 0;
    for (uint32_t a = 0; a < st->n_total; a++) {
        const wagent *ag = &st->ag[a];
        if (ag->live == 1 && !ag->down && ag->inflight > 0)
            busy += ag->inflight >= c->concurrency
                        ? 1.0 : (double)ag->inflight / c->concurrency;
    }
    if (l->samples == 0 || st->registered < l->reg_min)
        l->reg_min = st->registered;
    if (st->registered > l->reg_max)
        l->reg_max = st->registered;
    l->samples++;
    l->under += q < SM_WLOAD_QUEUE_TARGET;
    l->hist[q < SM_WLOAD_BINS ? q : SM_WLOAD_BINS - 1]++;
    if (q > l->max)
        l->max = q;
    if (dt > 0) {
        l->seconds += dt;
        l->pending_s += dt * q;
        l->busy_s += dt * busy;
        l->reg_s += dt * st->registered;
    }
}

void sm_world_load_of(const sm_world *w, uint32_t swarm, sm_world_load *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    out->agent_util = NAN;
    out->token_util = NAN;
    if (w == NULL || swarm >= w->cfg.n_swarms || w->sw[swarm].load.samples == 0)
        return;
    const wswarm_st *st = &w->sw[swarm];
    const wload *l = &st->load;
    out->samples = l->samples;
    out->seconds = l->seconds;
    out->queue_mean = l->seconds > 0 ? l->pending_s / l->seconds : 0;
    out->queue_max = l->max;
    out->queue_under = (double)l->under / (double)l->samples;
    uint64_t rank = (l->samples * 95 + 99) / 100, seen = 0;
    for (uint32_t b = 0; b < SM_WLOAD_BINS; b++) {
        seen += l->hist[b];
        if (seen >= rank) {
            out->queue_p95 = b;
            break;
        }
    }
    out->agent_util = l->reg_s > 0 ? l->busy_s / l->reg_s : NAN;
    out->token_util = st->g.token_ratio;
    out->agents_min = l->reg_min;
    out->agents_max = l->reg_max;
}
