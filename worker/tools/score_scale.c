/* score_scale.c - the closed loop's scaling figures (score.h, "scaling"):
 * the worker's ScalingDecisions decoded, flaps counted in the order drawn,
 * the world's load beside SPEC's figures, as a table and as `name value
 * unit` lines. */
#include "score.h"

#include <math.h>
#include <string.h>

#include "swarm_medic.pb-c.h"

#define UP SWARMMEDIC__V1__SCALING_DECISION__DIRECTION__DIRECTION_UP
#define DOWN SWARMMEDIC__V1__SCALING_DECISION__DIRECTION__DIRECTION_DOWN

/* <prefix>.<swarm>.scale: the last token is "scale", with two before. */
static bool scale_subject(const char *subject)
{
    const char *last = strrchr(subject, '.');
    if (last == NULL || strcmp(last + 1, "scale") != 0)
        return false;
    for (const char *p = subject; p < last; p++)
        if (*p == '.')
            return true;
    return false;
}

sm_status sm_score_decode_scale(const char *subject, const void *data,
                                size_t len, sm_score_scale_event *out,
                                bool *is)
{
    *is = false;
    if (subject == NULL || !scale_subject(subject))
        return SM_OK;
    Swarmmedic__V1__ScalingDecision *m =
        swarmmedic__v1__scaling_decision__unpack(NULL, len, data);
    if (m == NULL || m->decision == NULL) {
        swarmmedic__v1__scaling_decision__free_unpacked(m, NULL);
        return SM_ERR_DECODE;
    }
    memset(out, 0, sizeof *out);
    snprintf(out->swarm, sizeof out->swarm, "%s",
             m->decision->swarm ? m->decision->swarm : "");
    out->at_ms = m->decision->decided_at_ms;
    out->dir = (int)m->direction;
    out->current = m->current_agents;
    out->target = m->target_agents;
    out->remove = (uint32_t)m->n_remove_agents;
    swarmmedic__v1__scaling_decision__free_unpacked(m, NULL);
    *is = true;
    return SM_OK;
}

size_t sm_score_scale_flaps(const sm_score_scale_event *e, size_t n,
                            int64_t window_ms)
{
    size_t flaps = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i].dir != UP && e[i].dir != DOWN)
            continue;
        for (size_t j = i; j-- > 0;) {
            if (strcmp(e[j].swarm, e[i].swarm) != 0 ||
                (e[j].dir != UP && e[j].dir != DOWN))
                continue;
            flaps += e[j].dir != e[i].dir && e[i].at_ms - e[j].at_ms < window_ms;
            break;
        }
    }
    return flaps;
}

static const char *ratio(char *buf, size_t cap, double v)
{
    if (isnan(v))
        return "-";
    snprintf(buf, cap, "%.2f", v);
    return buf;
}

static const char *band(double v, double lo, double hi)
{
    return isnan(v) ? "undefined" : v < lo ? "below" : v > hi ? "above" : "in band";
}

void sm_score_print_scaling(const sm_score_report *r, FILE *out)
{
    const sm_score_scaling *s = &r->scale;
    if (!s->on)
        return;
    fprintf(out, "scaling: %zu decisions (%zu up, %zu down), %zu flaps "
                 "(a reversal within %.0f s), %zu refused by the coordinator "
                 "hook\n", s->decisions, s->up, s->down, s->flaps,
            (double)s->window_ms / 1000.0, s->hook_errors);
    if (!s->load_on)
        return;
    const sm_score_load *l = &s->load;
    char a[16], t[16];
    fprintf(out, "  queue: mean %.1f, p95 %u, max %u; %.1f%% of samples under "
                 "%d (SPEC: under 30)\n", l->queue_mean, l->queue_p95,
            l->queue_max, 100.0 * l->queue_under, 30);
    fprintf(out, "  agents: %u..%u registered, utilisation %s (SPEC 0.70-0.80: "
                 "%s); tokens used %s of the budget (SPEC 0.80-0.90: %s)\n",
            l->agents_min, l->agents_max, ratio(a, sizeof a, l->agent_util),
            band(l->agent_util, 0.70, 0.80), ratio(t, sizeof t, l->token_util),
            band(l->token_util, 0.80, 0.90));
    fprintf(out, "  coordinator: %llu up and %llu down applied, %llu agents "
                 "added, %llu removed, %llu removals refused\n",
            (unsigned long long)l->applied_up, (unsigned long long)l->applied_down,
            (unsigned long long)l->added, (unsigned long long)l->removed,
            (unsigned long long)l->refused);
}

static void line(FILE *out, const char *name, const char *fig, double v,
                 const char *unit)
{
    if (!isnan(v))
        fprintf(out, "score.%s.scale.%s %.4g %s\n", name, fig, v, unit);
}

void sm_score_print_scaling_lines(const sm_score_report *r, const char *name,
                                  FILE *out)
{
    const sm_score_scaling *s = &r->scale;
    if (!s->on)
        return;
    line(out, name, "decisions", (double)s->decisions, "count");
    line(out, name, "up", (double)s->up, "count");
    line(out, name, "down", (double)s->down, "count");
    line(out, name, "flaps", (double)s->flaps, "count");
    line(out, name, "hook_errors", (double)s->hook_errors, "count");
    if (!s->load_on)
        return;
    const sm_score_load *l = &s->load;
    line(out, name, "queue_mean", l->queue_mean, "tasks");
    line(out, name, "queue_p95", l->queue_p95, "tasks");
    line(out, name, "queue_max", l->queue_max, "tasks");
    line(out, name, "queue_under30", l->queue_under, "ratio");
    line(out, name, "agent_util", l->agent_util, "ratio");
    line(out, name, "token_util", l->token_util, "ratio");
    line(out, name, "agents_min", l->agents_min, "count");
    line(out, name, "agents_max", l->agents_max, "count");
    line(out, name, "added", (double)l->added, "count");
    line(out, name, "removed", (double)l->removed, "count");
    line(out, name, "refused", (double)l->refused, "count");
}
