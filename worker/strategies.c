/* strategies.c - the healing strategy table and the autonomy setting
 * (strategies.h). */
#include "strategies.h"

#include <stdio.h>
#include <string.h>

/* drain_agent: a slow agent (slow_agent bottleneck) is drained and
 * restarted. */
static bool drain_matches(const sm_heal_case *c)
{
    return c->kind == SM_DEC_BOTTLENECK && c->type == SM_BN_SLOW_AGENT &&
           c->subject[0] != '\0';
}

static bool drain_plan(const sm_heal_case *c, sm_heal_plan *p)
{
    p->action = SM_ACT_CUSTOM;
    p->custom = "drain_agent";
    snprintf(p->agent, sizeof p->agent, "%s", c->subject);
    p->n_steps = 3;
    snprintf(p->steps[0], sizeof p->steps[0], "stop_assigning");
    snprintf(p->steps[1], sizeof p->steps[1], "finish_current");
    snprintf(p->steps[2], sizeof p->steps[2], "restart");
    p->deadline_ms = 300000;        /* a task to finish, then the restart */
    p->restarts = true;
    return true;
}

const sm_strategy sm_strategy_drain_agent = {
    "drain_agent", 1, drain_matches, drain_plan};

/* The one table: the built-ins first, then the custom strategies. */
static const sm_strategy table[] = {
    SM_HEAL_BUILTINS,
    {"drain_agent", 1, drain_matches, drain_plan},
};

const sm_strategy *sm_strategies(size_t *n)
{
    *n = sizeof table / sizeof table[0];
    return table;
}

/* One entry "[swarm/]action=level" of the autonomy setting, at s (len n):
 * applied to out when it concerns swarm (NULL: only entries naming none).
 * False when it does not parse. */
static bool entry(const char *s, size_t n, const char *swarm, bool scoped,
                  sm_autonomy *out)
{
    char buf[160];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *eq = strchr(buf, '='), *slash = strchr(buf, '/');
    if (eq == NULL || (slash != NULL && slash > eq))
        return false;
    *eq = '\0';
    const char *action = buf, *level = eq + 1;
    if (slash != NULL) {
        *slash = '\0';
        action = slash + 1;
        if (buf[0] == '\0')
            return false;
    }
    sm_autonomy a = sm_autonomy_parse(level);
    bool all = strcmp(action, "*") == 0;
    sm_heal_action act = sm_heal_action_parse(action);
    if (a == 0 || (!all && act == 0))
        return false;
    if ((slash != NULL) != scoped ||
        (slash != NULL && (swarm == NULL || strcmp(buf, swarm) != 0)))
        return true;        /* well formed, not this pass's */
    for (int i = 1; i <= SM_ACT_COUNT; i++)
        if (all || i == (int)act)
            out[i] = a;
    return true;
}

/* Applies every entry of spec of one pass (unscoped, then scoped). */
static sm_status apply(const char *spec, const char *swarm, bool scoped,
                       sm_autonomy *out, char *err, size_t errcap)
{
    for (const char *p = spec; *p;) {
        size_t n = strcspn(p, ",");
        while (n > 0 && (*p == ' ' || *p == '\t'))
            p++, n--;
        size_t m = n;
        while (m > 0 && (p[m - 1] == ' ' || p[m - 1] == '\t'))
            m--;
        if (m > 0 && !entry(p, m, swarm, scoped, out)) {
            snprintf(err, errcap,
                     "autonomy: '%.*s' is not [<swarm>/]<action>=<level> "
                     "(action agent_restart, task_retry, resource_rebalance, "
                     "quorum_recovery, custom, escalate or *; level observe, "
                     "recommend or act)", (int)(m < 80 ? m : 80), p);
            return SM_ERR_CONFIG;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return SM_OK;
}

sm_status sm_heal_config_for(const char *spec, const char *swarm,
                             sm_heal_config *hc, char *err, size_t errcap)
{
    memset(hc, 0, sizeof *hc);
    hc->strategies = sm_strategies(&hc->n_strategies);
    sm_status s = apply(SM_AUTONOMY_DEFAULT, NULL, false, hc->autonomy, err,
                        errcap);
    if (s == SM_OK && spec != NULL)
        s = apply(spec, swarm, false, hc->autonomy, err, errcap);
    if (s == SM_OK && spec != NULL)
        s = apply(spec, swarm, true, hc->autonomy, err, errcap);
    return s;
}
