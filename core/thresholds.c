/*
 * thresholds.c - detector settings: defaults and validation.
 */
#include "thresholds.h"

#include <string.h>

#define WINDOW_MAX INT64_C(2592000000)      /* 30 days */

void sm_detect_config_default(sm_detect_config *cfg)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->window_ms = 60000;
    cfg->tick_ms = 1000;
    cfg->gauge_min_samples = 2;
    cfg->token_raise = 0.80;
    cfg->token_critical = 0.90;
    cfg->token_clear = 0.75;
    cfg->quota_clear = 0.90;
    cfg->slow_raise = 2.0;
    cfg->slow_high = 3.0;
    cfg->slow_clear = 1.5;
    cfg->slow_mad_k = 0.0;
    cfg->slow_ok = 1.6;
    cfg->slow_evidence = 3.0;
    cfg->slow_clear_evidence = 3.0;
    cfg->slow_clear_tasks = 4;
    cfg->success_raise = 0.55;
    cfg->success_evidence = 5.0;
    cfg->success_clear = 0.80;
    cfg->slow_min_agent_tasks = 5;
    cfg->success_min_tasks = 10;
    cfg->slow_min_swarm_tasks = 20;
    cfg->severity_margin = 0.05;
    cfg->slow_clear_hold_ms = 5000;
    cfg->slow_horizon_ms = 600000;
    cfg->slow_recent_tasks = 6;
    cfg->slow_min_type_tasks = 10;
    cfg->queue_raise = 50;
    cfg->queue_critical = 200;
    cfg->queue_clear = 40;
    cfg->consensus_raise = 0.10;
    cfg->consensus_high = 0.20;
    cfg->consensus_clear = 0.05;
    cfg->consensus_min_rounds = 10;
    cfg->consensus_evidence = 5.0;
    cfg->heartbeat_ms = 5000;
    cfg->down_intervals = 3.0;
    cfg->down_forget_ms = 3600000;
    cfg->down_slack_ms = 1000;
    cfg->stuck_factor = 3.0;
    cfg->stuck_blind_factor = 10.0;
    cfg->stuck_min_ms = 60000;
    cfg->stuck_stall_ms = 60000;
    cfg->quorum_rounds = 2;
    cfg->token_fail = 0.99;
    cfg->token_fail_clear = 0.95;
    cfg->memory_fail = 0.98;
    cfg->memory_fail_clear = 0.90;
    cfg->queue_fail = 200;
    cfg->queue_fail_clear = 150;
    cfg->pred_threshold = 0.7;
    cfg->pred_prior = 0.7;
    cfg->pred_margin_ms = 120000;
    cfg->pred_agent_eta_ms = 180000;
    cfg->pred_degraded_beats = 3;
    cfg->pred_healthy_beats = 3;
    cfg->pred_topup_margin = 0.05;
    cfg->heal_preventive = 0.8;
    cfg->heal_restart_deadline_ms = 90000;
    cfg->heal_retry_deadline_ms = 120000;
    cfg->heal_rebalance_deadline_ms = 240000;
    cfg->heal_quorum_deadline_ms = 120000;
    cfg->heal_restart_max = 3;
    cfg->heal_swarm_restart_max = 10;
    cfg->heal_restart_window_ms = 600000;
    cfg->heal_backoff_ms = 5000;
    cfg->heal_backoff_max_ms = 120000;
    cfg->heal_hold_ms = 120000;
}

/* The first broken rule, as a static sentence, or NULL. Comparisons are
 * written so that NaN fails them. */
static const char *config_problem(const sm_detect_config *c)
{
    if (!(c->window_ms > 0))
        return "window_ms must be greater than 0";
    if (!(c->tick_ms > 0))
        return "tick_ms must be greater than 0";
    if (c->window_ms > WINDOW_MAX)
        return "window_ms must be at most 30 days (2592000000)";
    if (c->window_ms % c->tick_ms != 0)
        return "window_ms must be a whole multiple of tick_ms";
    if (c->gauge_min_samples < 1)
        return "gauge_min_samples must be at least 1";
    if (!(c->token_clear > 0.0))
        return "token_clear must be greater than 0";
    if (!(c->token_clear < c->token_raise))
        return "token_clear must be below token_raise";
    if (!(c->token_raise < c->token_critical))
        return "token_raise must be below token_critical";
    if (!(c->token_critical < 1.0))
        return "token_critical must be below 1";
    if (!(c->quota_clear > 0.0 && c->quota_clear <= 1.0))
        return "quota_clear must be in (0, 1]";
    if (!(c->slow_clear >= 1.0))
        return "slow_clear must be at least 1";
    if (!(c->slow_clear < c->slow_raise))
        return "slow_clear must be below slow_raise";
    if (!(c->slow_raise < c->slow_high))
        return "slow_raise must be below slow_high";
    if (!(c->slow_ok >= 1.0 && c->slow_ok < c->slow_high))
        return "slow_ok must be at least 1 and below slow_high";
    if (!(c->slow_evidence > 0.0 && c->slow_evidence <= 100.0))
        return "slow_evidence must be in (0, 100]";
    if (!(c->slow_clear_evidence >= 0.0 && c->slow_clear_evidence <= 100.0))
        return "slow_clear_evidence must be in [0, 100]";
    if (c->slow_clear_tasks < 2 || c->slow_clear_tasks > SM_AGENT_TASKS)
        return "slow_clear_tasks must be between 2 and 16";
    if (!(c->slow_mad_k >= 0.0))
        return "slow_mad_k must not be negative";
    if (!(c->success_raise > 0.0))
        return "success_raise must be greater than 0";
    if (!(c->success_raise < c->success_clear))
        return "success_raise must be below success_clear";
    if (!(c->success_clear < 1.0))
        return "success_clear must be below 1";
    if (!(c->success_evidence > 0.0 && c->success_evidence <= 100.0))
        return "success_evidence must be in (0, 100]";
    if (c->success_min_tasks < 1 || c->success_min_tasks > SM_AGENT_TASKS)
        return "success_min_tasks must be between 1 and 16";
    if (c->slow_min_agent_tasks < 1 ||
        c->slow_min_agent_tasks > SM_AGENT_TASKS)
        return "slow_min_agent_tasks must be between 1 and 16";
    if (!(c->severity_margin >= 0 && c->severity_margin < 0.2))
        return "severity_margin must be in [0, 0.2)";
    if (c->slow_clear_hold_ms < 0 || c->slow_clear_hold_ms > c->window_ms)
        return "slow_clear_hold_ms must be between 0 and window_ms";
    if (c->slow_horizon_ms < c->window_ms || c->slow_horizon_ms > WINDOW_MAX)
        return "slow_horizon_ms must be between window_ms and 30 days";
    if (c->slow_recent_tasks < 1 || c->slow_recent_tasks > SM_AGENT_TASKS)
        return "slow_recent_tasks must be between 1 and 16";
    if (c->slow_min_agent_tasks > c->slow_recent_tasks)
        return "slow_min_agent_tasks must not exceed slow_recent_tasks";
    if (c->slow_min_type_tasks < 1 || c->slow_min_type_tasks > 64)
        return "slow_min_type_tasks must be between 1 and 64";
    if (c->slow_min_swarm_tasks < 1 ||
        c->slow_min_swarm_tasks > SM_SWARM_SAMPLES)
        return "slow_min_swarm_tasks must be between 1 and 512";
    if (c->queue_clear < 1)
        return "queue_clear must be at least 1";
    if (!(c->queue_clear < c->queue_raise))
        return "queue_clear must be below queue_raise";
    if (!(c->queue_raise < c->queue_critical))
        return "queue_raise must be below queue_critical";
    if (!(c->consensus_clear > 0.0))
        return "consensus_clear must be greater than 0";
    if (!(c->consensus_clear < c->consensus_raise))
        return "consensus_clear must be below consensus_raise";
    if (!(c->consensus_raise < c->consensus_high))
        return "consensus_raise must be below consensus_high";
    if (!(c->consensus_high <= 1.0))
        return "consensus_high must be at most 1";
    if (!(c->consensus_evidence > 0.0 && c->consensus_evidence <= 100.0))
        return "consensus_evidence must be in (0, 100]";
    if (c->consensus_min_rounds < 1)
        return "consensus_min_rounds must be at least 1";
    if (c->heartbeat_ms < 1 || c->heartbeat_ms > INT64_C(86400000))
        return "heartbeat_ms must be between 1 and 1 day";
    if (!(c->down_intervals >= 1.0 && c->down_intervals <= 100.0))
        return "down_intervals must be in [1, 100]";
    if (c->down_forget_ms < 1 || c->down_forget_ms > WINDOW_MAX)
        return "down_forget_ms must be between 1 and 30 days";
    if (c->down_slack_ms < 0 || c->down_slack_ms > INT64_C(3600000))
        return "down_slack_ms must be between 0 and 1 hour";
    if (!(c->stuck_factor >= 1.0 && c->stuck_factor <= 1000.0))
        return "stuck_factor must be in [1, 1000]";
    if (!(c->stuck_blind_factor >= 1.0 && c->stuck_blind_factor <= 1000.0))
        return "stuck_blind_factor must be in [1, 1000]";
    if (c->stuck_min_ms < 1 || c->stuck_min_ms > WINDOW_MAX)
        return "stuck_min_ms must be between 1 and 30 days";
    if (c->stuck_stall_ms < 1 || c->stuck_stall_ms > WINDOW_MAX)
        return "stuck_stall_ms must be between 1 and 30 days";
    if (c->quorum_rounds < 1 || c->quorum_rounds > 1000)
        return "quorum_rounds must be between 1 and 1000";
    if (!(c->token_fail_clear > 0.0 && c->token_fail_clear < c->token_fail &&
          c->token_fail <= 1.0))
        return "token_fail_clear must be below token_fail, in (0, 1]";
    if (!(c->memory_fail_clear > 0.0 &&
          c->memory_fail_clear < c->memory_fail && c->memory_fail <= 1.0))
        return "memory_fail_clear must be below memory_fail, in (0, 1]";
    if (!(c->queue_fail_clear >= 1 && c->queue_fail_clear < c->queue_fail))
        return "queue_fail_clear must be at least 1 and below queue_fail";
    if (!(c->pred_threshold > 0.0 && c->pred_threshold <= 1.0))
        return "pred_threshold must be in (0, 1]";
    if (!(c->pred_prior >= 0.0 && c->pred_prior <= 1.0))
        return "pred_prior must be in [0, 1]";
    if (c->pred_margin_ms < 0 || c->pred_margin_ms > WINDOW_MAX)
        return "pred_margin_ms must be between 0 and 30 days";
    if (c->pred_agent_eta_ms < 1 || c->pred_agent_eta_ms > WINDOW_MAX)
        return "pred_agent_eta_ms must be between 1 and 30 days";
    if (c->pred_degraded_beats < 1 || c->pred_degraded_beats > 255 ||
        c->pred_healthy_beats < 1 || c->pred_healthy_beats > 255)
        return "pred_degraded_beats and pred_healthy_beats must be 1..255";
    if (!(c->pred_topup_margin >= 0.0 && c->pred_topup_margin <= 1.0))
        return "pred_topup_margin must be in [0, 1]";
    if (!(c->heal_preventive > 0.0 && c->heal_preventive <= 1.0))
        return "heal_preventive must be in (0, 1]";
    const int64_t heal_ms[] = {
        c->heal_restart_deadline_ms, c->heal_retry_deadline_ms,
        c->heal_rebalance_deadline_ms, c->heal_quorum_deadline_ms,
        c->heal_restart_window_ms, c->heal_backoff_ms, c->heal_hold_ms,
    };
    for (size_t i = 0; i < sizeof heal_ms / sizeof heal_ms[0]; i++)
        if (heal_ms[i] < 1 || heal_ms[i] > WINDOW_MAX)
            return "heal deadlines, window, backoff and hold must be "
                   "between 1 ms and 30 days";
    if (c->heal_backoff_max_ms < c->heal_backoff_ms ||
        c->heal_backoff_max_ms > WINDOW_MAX)
        return "heal_backoff_max_ms must be at least heal_backoff_ms";
    if (c->heal_restart_max < 1 || c->heal_swarm_restart_max < 1)
        return "heal_restart_max and heal_swarm_restart_max must be at least 1";
    return NULL;
}

sm_status sm_detect_config_validate(const sm_detect_config *cfg,
                                    const char **why)
{
    const char *problem = cfg == NULL ? "configuration is missing"
                                      : config_problem(cfg);
    if (why != NULL)
        *why = problem;
    return problem == NULL ? SM_OK : SM_ERR_CONFIG;
}

/* ------------------------------------------------------------ helpers */
