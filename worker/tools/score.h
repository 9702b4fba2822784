/*
 * score.h - how good are swarm-medic's conclusions? Labels say what it
 * must, may and must never conclude; a run through the real worker
 * pipeline (offline, as replay.h) says what it did; the scoring engine
 * compares the two. tests/scenarios/README.md defines the label format and
 * every figure; this header restates only what the code adds to it.
 *
 * Four layers, each usable alone:
 *
 *   labels    sm_labels_load_file / sm_labels_from_json: the labels object
 *             {"must": [...], "may": [...], "never": [...]} (or a file
 *             holding it under "labels", e.g. a scenario file), checked
 *             field by field; every error names the file, the label
 *             ("labels.must[2]") and the field.
 *   engine    sm_score_compute: a pure function from a list of
 *             conclusions (sm_conclusion, in the order they were drawn)
 *             and labels to figures per type and overall. No I/O, no
 *             clock; unit-testable with hand-built lists.
 *   run       sm_score_run: feeds a recording or an in-memory message
 *             generator (a scenario) through sm_worker_handle with a sink
 *             instead of the bus, decodes each Bottleneck, Failure and
 *             Prediction with protobuf-c into an sm_conclusion
 *             (sm_score_decode), and calls the engine.
 *   CLI       sm_score_main: `swarm-medic score`, its table, its
 *             `name value unit` lines and its exit code.
 *
 * Matching, as the engine does it (README.md "Figures", made precise).
 * Every kind (bottleneck, failure, prediction) is matched the same way,
 * against labels of its own kind only, except where "prediction" says:
 *   - An episode is a RAISED conclusion up to the RESOLVED of the same
 *     kind, type, swarm and subject, or to the end of the run; its peak is
 *     the highest severity of its RAISED and UPDATED messages. An UPDATED
 *     or RESOLVED without an open episode is ignored; a RAISED while one
 *     is open is folded into it.
 *   - Subjects: a bottleneck's first `affected` entry; a failure's
 *     `subject` (agent, consensus group or resource source); a
 *     prediction's `agent` ("" when swarm-wide).
 *   - Predictions have no transition on the wire: a Prediction with
 *     confidence > 0 is RAISED (the first for a key opens an episode,
 *     later ones fold into it as updates), one with confidence 0 is
 *     RESOLVED: the prediction is withdrawn. The episode keeps the
 *     expected_in_ms of the message that raised it.
 *   - Label and episode agree on a key when kind, type and swarm are equal
 *     and the label's subject is "" or equal to the episode's.
 *   - never: an episode raised in [from, to] of a never-label (absent
 *     times: the whole run) is forbidden and a false alarm; it matches
 *     nothing else.
 *   - must: an episode with the key, raised in
 *     [from - 5 s, max(to, from + raise_within)], belongs to the label; so
 *     does one raised earlier inside a may-label of the same key and
 *     subject that reaches the must window (a fault ramping up), if it is
 *     still open at from: it raised the fault early (negative delay). The
 *     label is matched (a hit) when its first belonging episode was raised
 *     by from + raise_within; delay = that raise time - from. Every
 *     belonging episode beyond the first is a flap. An episode belongs to
 *     at most one must-label (the earliest, labels in file order).
 *   - prediction must: [from, to] is when a prediction is expected and to
 *     is the failure's time. The window is [from - 5 s, to] (and the ramp
 *     rule above); raise_within is not used. The label is matched when its
 *     first belonging episode was raised at least SM_SCORE_LEAD_MS (30 s)
 *     before to; a later one belongs to it (no false alarm) but is a miss.
 *     lead = to - raise time (median, min over matched labels); ETA error
 *     = |raise time + expected_in - to| over matched labels whose episode
 *     carried an expected_in_ms > 0 (median, max). No delay, no resolve
 *     (a prediction need not be withdrawn once the failure comes) and no
 *     severity (a Prediction has none).
 *   - resolve (bottleneck, failure): for a matched label with to < end of
 *     run, the last belonging episode's resolve time - to. One still open
 *     at the end, or resolved after to + resolve_within, is unresolved
 *     (counted, not in median/max) - unless the run ended before to +
 *     resolve_within while it was open (too early to tell: neither).
 *   - may: an episode raised in [from, to] with the key, belonging to no
 *     must-label, is acceptable: neither a hit nor a false alarm (it counts
 *     as a correct episode in precision, as README.md defines).
 *   - precision = (episodes belonging to a must- or may-label) / episodes;
 *     recall = matched must-labels / must-labels; severity = matched
 *     must-labels with a severity whose first episode's peak equals it /
 *     matched must-labels with a severity. A ratio without a denominator
 *     is undefined (NaN; printed "-", no line).
 *   Figures are per kind (sm_score_section): per type of that kind (of
 *   the label or the episode) and overall ("all"); medians of an even
 *   count average the middle two.
 *
 * Times: labels given with from_s/to_s are relative to the run's first
 * event (sm_label.relative); the engine anchors them at run_start_ms.
 * Conclusions carry event time (Decision.decided_at_ms, raised_at_ms).
 *
 * Ownership: sm_labels owns its array (sm_labels_free); sm_score_report
 * owns its arrays (sm_score_report_free). Nothing here is thread-safe
 * beyond "one object, one thread".
 */
#ifndef SM_SCORE_H
#define SM_SCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "config.h"
#include "log.h"
#include "status.h"

#define SM_SCORE_ID_MAX 64
#define SM_SCORE_TYPE_MAX 32
#define SM_SCORE_NOTE_MAX 64        /* a label's note, truncated to fit */
/* Slack before a must-label's from in which a raise still counts. */
#define SM_SCORE_EARLY_MS 5000
#define SM_SCORE_RAISE_WITHIN_MS 120000     /* default raise_within_s 120 */
#define SM_SCORE_RESOLVE_WITHIN_MS 180000   /* default resolve_within_s 180 */
/* A prediction is a hit only when raised at least this long before the
 * failure (its must-label's to). */
#define SM_SCORE_LEAD_MS 30000

/* ------------------------------------------------------------------ labels */

typedef enum sm_label_kind {
    SM_KIND_BOTTLENECK = 0,     /* medic.<swarm>.bottleneck.<type> */
    SM_KIND_FAILURE,            /* medic.<swarm>.failure.<failure_type> */
    SM_KIND_PREDICTION,         /* medic.<swarm>.prediction.<failure_type> */
} sm_label_kind;
#define SM_KIND_COUNT 3

typedef enum sm_label_class {
    SM_LABEL_MUST = 0,
    SM_LABEL_MAY,
    SM_LABEL_NEVER,
} sm_label_class;

typedef struct sm_label {
    sm_label_class cls;
    sm_label_kind kind;
    char type[SM_SCORE_TYPE_MAX];   /* output subject's type token: for a
                                       bottleneck one of sm_bn_type_str(),
                                       else one of sm_fail_type_str() */
    char swarm[SM_SCORE_ID_MAX];
    char subject[SM_SCORE_ID_MAX];  /* "": any subject */
    bool relative;                  /* from_ms/to_ms count from the run's
                                       first event (from_s/to_s given) */
    int64_t from_ms;                /* INT64_MIN: from the start (never) */
    int64_t to_ms;                  /* INT64_MAX: to the end (never) */
    int severity;                   /* expected peak, sm_severity; 0 = unspecified */
    int64_t raise_within_ms;
    int64_t resolve_within_ms;
    int64_t withdraw_within_ms;     /* a may prediction-label: its episode
                                       must end (withdrawn) by to + this,
                                       else it is a false alarm (a near
                                       miss predicted and left standing);
                                       -1: no such rule */
    char note[SM_SCORE_NOTE_MAX];   /* why the label exists, for reports
                                       ("derived from fault 1 (slow_agent)");
                                       "" none */
} sm_label;

typedef struct sm_labels {
    sm_label *v;
    size_t n;
} sm_labels;

/* Static "bottleneck", "failure", "prediction"; "unknown" otherwise. */
const char *sm_label_kind_str(sm_label_kind k);
/* Static "must", "may", "never". */
const char *sm_label_class_str(sm_label_class c);

/* Reads labels from a JSON file: either the labels object itself or any
 * object holding it under "labels" (a scenario file). Sets *out only on
 * SM_OK (free with sm_labels_free). Errors, with a sentence naming the
 * file, the label and the field in err: SM_ERR_IO (cannot read),
 * SM_ERR_INVALID (not JSON, wrong shape, bad or unknown field),
 * SM_ERR_NOMEM. */
sm_status sm_labels_load_file(const char *path, sm_labels *out, char *err,
                              size_t errcap);

/* Same, from a parsed labels object (borrowed). `origin` (e.g. the file
 * name) starts every error sentence. Labels are appended to *out, which
 * must be zeroed or hold earlier labels; on error *out is unchanged. */
sm_status sm_labels_from_json(const json_t *labels, const char *origin,
                              sm_labels *out, char *err, size_t errcap);

/* The labels object {"must": [...], "may": [...], "never": [...]} that
 * sm_labels_from_json reads back to the same labels: absolute labels with
 * from_ms/to_ms, relative ones with from_s/to_s, a never-label spanning
 * the whole run without times; severity, raise/resolve within and note
 * always written. Returns a new reference, NULL when out of memory. */
json_t *sm_labels_to_json(const sm_labels *ls);

/* One label as an object (the class is the array it goes in). */
json_t *sm_label_to_json(const sm_label *l);

/* Appends one label (copied). Errors: SM_ERR_NOMEM. */
sm_status sm_labels_add(sm_labels *ls, const sm_label *l);

/* Frees the array and zeroes *ls. NULL is a no-op. */
void sm_labels_free(sm_labels *ls);

/* A label with the defaults (must, bottleneck, raise/resolve within as
 * above, severity 0, absolute times 0..0): fill in the rest. */
void sm_label_init(sm_label *l);

/* ------------------------------------------------------------- conclusions */

/* One conclusion drawn (a Bottleneck, Failure or Prediction message,
 * decoded by sm_score_decode). */
typedef struct sm_conclusion {
    sm_label_kind kind;
    char type[SM_SCORE_TYPE_MAX];
    char swarm[SM_SCORE_ID_MAX];
    char subject[SM_SCORE_ID_MAX];  /* see "Subjects" above; may be "" */
    int transition;                 /* sm_transition_kind; a prediction:
                                       RAISED, or RESOLVED when withdrawn */
    int severity;                   /* sm_severity; 0 for a prediction */
    int64_t at_ms;                  /* event time it was decided */
    int64_t expected_in_ms;         /* a prediction's time to failure;
                                       0 unknown (and other kinds) */
} sm_conclusion;

/* Decodes one output message of the worker (subject and protobuf payload)
 * into *out when it is a conclusion: medic.<swarm>.bottleneck.<type>,
 * .failure.<type> or .prediction.<type>. Returns SM_OK and sets *is to
 * true for a conclusion; SM_OK and *is false for any other subject
 * (healing, reports, dead letters: nothing to score); SM_ERR_DECODE when
 * a conclusion's payload does not decode or has no Decision header. */
sm_status sm_score_decode(const char *subject, const void *data, size_t len,
                          sm_conclusion *out, bool *is);

/* ----------------------------------------------------------------- healing */

/* The closed loop (issue 9). When the worker heals, it publishes a
 * HealingCommand on medic.<swarm>.heal.<action> and later a HealingVerdict
 * on medic.<swarm>.verdict.<action>; sm_score_decode_heal turns each into
 * an sm_heal_event and sm_score_heal_compute, a pure function of the events
 * in the order drawn, into figures (tests/scenarios/README.md, "Healing"):
 *   success      VERIFIED / (VERIFIED + FAILED) over the verdicts of ACT
 *                commands (RECOMMEND is advice; PREEMPTED and SUPERSEDED
 *                are neither).
 *   detect       fault onset to the failure raised: the failure
 *                section's delay for that type (its must-labels' from is
 *                when the fault took effect), copied by
 *                sm_score_heal_detect; NaN without failure labels.
 *   raise        a verdict's detected_at - first_evidence: from the first
 *                event the worker holds behind the failure to its raise.
 *   recover      a VERIFIED verdict's recovered_at - first_evidence: to the
 *                verified recovery.
 *   incidents    distinct `answers` among the commands; commands per
 *                incident = commands / incidents (escalations included).
 *   storms       commands drawn while an earlier command (not an
 *                escalation) for the same `answers` had no verdict yet.
 *   duplicates   commands whose id an earlier command had.
 *   id header    commands whose Nats-Msg-Id header is not their id.
 *   unanswered   ACT commands without a verdict by the end of the run.
 * Figures per failure type (the command's, or the verdict's) and "all". */

typedef enum sm_heal_kind {
    SM_HEAL_COMMAND = 0,
    SM_HEAL_VERDICT,
} sm_heal_kind;

typedef struct sm_heal_event {
    sm_heal_kind kind;
    char id[SM_SCORE_ID_MAX];       /* the command's id (a verdict's
                                       command_id) */
    char swarm[SM_SCORE_ID_MAX];
    char action[SM_SCORE_TYPE_MAX]; /* the subject's action token */
    char failure_type[SM_SCORE_TYPE_MAX];   /* sm_fail_type_str(), or
                                               "bottleneck" when the
                                               command answers no failure */
    char answers[SM_SCORE_ID_MAX];
    int autonomy;                   /* command: Autonomy */
    bool escalation;                /* command: ACTION_ESCALATE */
    bool id_header_ok;              /* command: Nats-Msg-Id == id */
    int verdict;                    /* verdict: HealingVerdict.Verdict */
    int64_t at_ms;                  /* decision.decided_at_ms */
    int64_t first_evidence_ms, detected_at_ms, recovered_at_ms; /* verdict */
} sm_heal_event;

/* Decodes one output message into *out when it is a HealingCommand
 * (.heal.<action>) or HealingVerdict (.verdict.<action>): SM_OK and *is
 * true; SM_OK and *is false for any other subject; SM_ERR_DECODE when the
 * payload does not decode or has no decision header. headers as the
 * worker's sink gives them (NULL-terminated key, value list; may be
 * NULL). */
sm_status sm_score_decode_heal(const char *subject, const void *data,
                               size_t len, const char *const *headers,
                               sm_heal_event *out, bool *is);

typedef struct sm_heal_figures {
    char type[SM_SCORE_TYPE_MAX];   /* failure type, or "all" */
    size_t commands, act, escalations;
    size_t verdicts, verified, failed, preempted, superseded;
    size_t act_verified, act_failed;
    double success;                 /* NaN when no ACT verdict */
    double detect_med_s, detect_max_s;      /* fault onset -> raised */
    size_t raise_n;
    double raise_med_s, raise_max_s;        /* NaN when raise_n == 0 */
    size_t recover_n;
    double recover_med_s, recover_max_s;    /* NaN when recover_n == 0 */
} sm_heal_figures;

/* The coordinator's own counters (the simulator's, through the input's
 * coord hook). */
typedef struct sm_score_coord {
    uint64_t received, duplicates, advice, escalations;
    uint64_t done, failed, rejected;
    uint64_t below_quorum;          /* restarts a consensus group could
                                       not spare */
} sm_score_coord;

typedef struct sm_score_healing {
    bool on;                        /* the loop was closed, or healing
                                       messages were drawn */
    sm_heal_figures all;
    sm_heal_figures *by_type;       /* failure types in order of first use */
    size_t n_types;
    size_t incidents;
    double per_incident;            /* NaN without incidents */
    size_t storms, duplicates, id_header_bad, unanswered;
    size_t heal_errors;             /* commands the heal hook refused */
    bool coord_on;                  /* coord below is filled */
    sm_score_coord coord;
} sm_score_healing;

/* Fills *out from events e[0..n) in the order drawn (out->on is left to
 * the caller). Free with sm_score_healing_free, also after an error.
 * Errors: SM_ERR_NOMEM. */
sm_status sm_score_heal_compute(const sm_heal_event *e, size_t n,
                                sm_score_healing *out);

void sm_score_healing_free(sm_score_healing *h);

/* Median, min and max of v[0..n) milliseconds, in seconds (NaN when n is
 * 0); sorts v. min may be NULL. */
void sm_score_stats(int64_t *v, size_t n, double *med, double *min,
                    double *max);

/* ----------------------------------------------------------------- scaling */

/* The closed loop's scaling (issue 10). With `scaling=true` the worker
 * publishes a ScalingDecision on <prefix>.<swarm>.scale for each change;
 * sm_score_run decodes them (sm_score_decode_scale), hands each to the
 * input's scale hook (the simulated coordinator applies it) and counts:
 *   decisions, up, down  the ScalingDecisions drawn;
 *   flaps                decisions that reverse the direction of the same
 *                        swarm's previous decision (UP after DOWN, DOWN
 *                        after UP) within window_ms of it: the worker's
 *                        scale_cooldown + scale_stabilise (80 s by default),
 *                        the span a damped scaler must hold a direction;
 * and, through the load hook, what the world looked like (swarm 0): queue
 * depth (time-weighted mean, p95 and max over the 1 s ResourceSamples,
 * share of samples under 30), agent utilisation (busy agent-seconds over
 * registered agent-seconds; SPEC: 70-80%), token utilisation (used over
 * budget at the end; SPEC: 80-90%), and the coordinator's counts. */
typedef struct sm_score_scale_event {
    char swarm[SM_SCORE_ID_MAX];
    int64_t at_ms;              /* decided_at_ms */
    int dir;                    /* 1 up, 2 down (ScalingDecision.Direction) */
    uint32_t current, target, remove;
} sm_score_scale_event;

/* A ScalingDecision on <prefix>.<swarm>.scale: SM_OK and *is; another
 * subject: SM_OK, !*is; SM_ERR_DECODE when it does not decode. */
sm_status sm_score_decode_scale(const char *subject, const void *data,
                                size_t len, sm_score_scale_event *out,
                                bool *is);

/* The flaps of e[0..n) (in the order drawn) as defined above. */
size_t sm_score_scale_flaps(const sm_score_scale_event *e, size_t n,
                            int64_t window_ms);

/* The world's side (the load hook fills it). */
typedef struct sm_score_load {
    double seconds;
    double queue_mean;
    uint32_t queue_p95, queue_max;
    double queue_under;         /* share of samples under 30 pending */
    double agent_util, token_util;      /* NaN: undefined */
    uint32_t agents_min, agents_max;
    uint64_t applied_up, applied_down, added, removed, refused;
} sm_score_load;

typedef struct sm_score_scaling {
    bool on;                    /* decisions drawn, or the load measured */
    size_t decisions, up, down, flaps;
    size_t hook_errors;         /* decisions the scale hook refused */
    int64_t window_ms;
    bool load_on;
    sm_score_load load;
} sm_score_scaling;

/* The scaling table (when r->scale.on) and its lines:
 * score.<name>.scale.<figure>. */
struct sm_score_report;
void sm_score_print_scaling(const struct sm_score_report *r, FILE *out);
void sm_score_print_scaling_lines(const struct sm_score_report *r,
                                  const char *name, FILE *out);

/* ------------------------------------------------------------------ engine */

typedef struct sm_score_figures {
    char type[SM_SCORE_TYPE_MAX];   /* type token of its kind, or "all" */
    size_t must;                    /* must-labels */
    size_t matched;                 /* of them, hit in time */
    size_t episodes;
    size_t correct;                 /* episodes belonging to a must/may label */
    size_t may_episodes;            /* of them, by a may-label alone */
    size_t false_alarms;            /* episodes - correct */
    size_t flaps;
    size_t forbidden;
    size_t delay_n;                         /* 0 for predictions */
    double delay_med_s, delay_max_s;        /* NaN when delay_n == 0 */
    size_t resolve_n;                       /* resolved in time */
    double resolve_med_s, resolve_max_s;    /* NaN when resolve_n == 0 */
    size_t unresolved;
    size_t severity_n;              /* matched with an expected severity */
    size_t severity_ok;
    double recall, precision, severity; /* ratios; NaN when undefined */
    /* Predictions only (NaN, 0 otherwise): */
    size_t lead_n;                          /* matched labels */
    double lead_med_s, lead_min_s;          /* to - raise time */
    size_t eta_n;                           /* of them, with expected_in */
    double eta_err_med_s, eta_err_max_s;    /* |raise + expected_in - to| */
} sm_score_figures;

/* What became of one label or episode, for the readable report. */
typedef enum sm_resolve_state {
    SM_RESOLVE_NA = 0,              /* not matched, or the fault outlived the run */
    SM_RESOLVE_IN_TIME,
    SM_RESOLVE_UNRESOLVED,
    SM_RESOLVE_TOO_EARLY,           /* open when the run ended, within resolve_within */
} sm_resolve_state;

/* What became of one must-label, for the readable report. */
typedef struct sm_score_outcome {
    size_t label;                   /* index into the labels */
    size_t episodes;                /* belonging to it */
    bool matched;
    int64_t raised_at_ms;           /* of its first episode, if any */
    int64_t delay_ms;               /* raised_at_ms - the label's from */
    int peak;                       /* of its first episode, if any */
    int64_t expected_in_ms;         /* of its first episode (predictions) */
    sm_resolve_state resolve;
    int64_t resolve_ms;             /* resolve time - to, if IN_TIME */
} sm_score_outcome;

typedef struct sm_score_episode {
    sm_label_kind kind;
    char type[SM_SCORE_TYPE_MAX];
    char swarm[SM_SCORE_ID_MAX];
    char subject[SM_SCORE_ID_MAX];
    int64_t raised_at_ms;
    int64_t resolved_at_ms;         /* when !open */
    bool open;                      /* not resolved by the end of the run */
    int peak;                       /* sm_severity */
    int64_t expected_in_ms;         /* as raised (predictions), 0 unknown */
    long must;                      /* must-label it belongs to, or -1 */
    long may;                       /* may-label it falls in, or -1 */
    long never;                     /* never-label it breaks, or -1 */
} sm_score_episode;

/* The figures of one kind. */
typedef struct sm_score_section {
    sm_score_figures all;           /* over every type of the kind */
    sm_score_figures *by_type;      /* types seen in its labels or
                                       episodes: the kind's known types in
                                       enum order, then others */
    size_t n_types;
} sm_score_section;

typedef struct sm_score_report {
    union {                         /* one section per kind, by name or
                                       indexed by sm_label_kind */
        sm_score_section kind[SM_KIND_COUNT];
        struct {
            sm_score_section bottleneck, failure, prediction;
        };
    };
    sm_score_episode *episodes;     /* every kind, in raise order */
    size_t n_episodes;
    sm_score_outcome *must;         /* one per must-label, in label order */
    size_t n_must;
    int64_t run_start_ms, run_end_ms;
    sm_score_healing heal;          /* filled by sm_score_run */
    sm_score_scaling scale;         /* filled by sm_score_run */
} sm_score_report;

/* Scores conclusions c[0..n) (in the order drawn) against labels over a
 * run of event time [run_start_ms, run_end_ms]. Fills *out (free it with
 * sm_score_report_free, also after an error). Errors: SM_ERR_NOMEM. */
sm_status sm_score_compute(const sm_conclusion *c, size_t n,
                           const sm_labels *labels, int64_t run_start_ms,
                           int64_t run_end_ms, sm_score_report *out);

void sm_score_report_free(sm_score_report *r);

/* Copies the failure section's delay (median, max) of each failure type
 * into r->heal's rows of that type, and failure "all" into heal "all":
 * time to detect from the fault's onset. sm_score_run calls it. */
void sm_score_heal_detect(sm_score_report *r);

/* --------------------------------------------------------------------- run */

/* One input message from a generator. Views valid until the next call. */
typedef struct sm_score_msg {
    const char *subject;
    const void *data;
    size_t len;
    int64_t ts_ms;                  /* event (or receive) time */
} sm_score_msg;

/* Yields the next message into *out and returns true; false at the end
 * (then *st, if it is not SM_OK, says why it stopped early). */
typedef bool (*sm_score_next_fn)(void *ud, sm_score_msg *out, sm_status *st);

/* The closed loop: called, with the input's ud, for every HealingCommand
 * the worker publishes (subject and payload, borrowed for the call), while
 * the worker handles the message that made it; the generator then yields
 * the coordinator's doing (its HealingOutcome, the world's changes) in
 * event order. An error is counted (heal_errors), not fatal. */
typedef sm_status (*sm_score_heal_fn)(void *ud, const char *subject,
                                      const void *data, size_t len);
/* The coordinator's counters at the end of the run. */
typedef void (*sm_score_coord_fn)(void *ud, sm_score_coord *out);
/* The world's load figures at the end of the run (scaling). */
typedef void (*sm_score_load_fn)(void *ud, sm_score_load *out);

/* What to score: a recording (rec_path) or a generator (next + ud), and
 * the labels. `name` names the figures (score.<name>.<type>.<figure>).
 * heal and coord (generator only, optional) close the loop. */
typedef struct sm_score_input {
    const char *name;
    const char *rec_path;           /* a recording, or NULL */
    sm_score_next_fn next;          /* used when rec_path is NULL */
    void *ud;
    const sm_labels *labels;        /* borrowed */
    sm_score_heal_fn heal;          /* NULL: the loop is open */
    sm_score_coord_fn coord;
    sm_score_heal_fn scale;         /* each ScalingDecision, as heal */
    sm_score_load_fn load;
} sm_score_input;

/* Runs the input through a fresh worker built from cfg (no store, no bus)
 * and scores what it concluded. Fills *out (free with
 * sm_score_report_free, also after an error). Errors: those of
 * sm_replay_offline (recording), the generator's status, SM_ERR_INVALID
 * (no input, or an empty one), SM_ERR_NOMEM; err says why. */
sm_status sm_score_run(const sm_config *cfg, const sm_log *log,
                       const sm_score_input *in, sm_score_report *out,
                       char *err, size_t errcap);

/* ----------------------------------------------------------------- floors */

/* Floors: a NaN field sets no floor. Each is checked on the overall
 * ("all") figures of its kind. recall, precision, severity are minimums;
 * flaps, forbidden, false_alarms, unresolved are maximums (counts);
 * delay_s and resolve_s are maximums on the max delay and max resolve
 * time. The keys of sm_score_floors_parse are the field names (delay and
 * resolve also stand for delay_s and resolve_s):
 *   bottlenecks  recall ... resolve_s (no prefix, as always);
 *   failures     failure_recall ... failure_resolve_s, the same figures;
 *   predictions  prediction_recall, _precision, _flaps, _forbidden,
 *                _false_alarms; prediction_lead_s, a minimum on the
 *                shortest lead of a matched label; prediction_eta_err_s,
 *                a maximum on the median ETA error. */
typedef struct sm_score_floors {
    double recall, precision, severity;
    double flaps, forbidden, false_alarms, unresolved;
    double delay_s, resolve_s;
    double failure_recall, failure_precision, failure_severity;
    double failure_flaps, failure_forbidden, failure_false_alarms;
    double failure_unresolved, failure_delay_s, failure_resolve_s;
    double prediction_recall, prediction_precision;
    double prediction_flaps, prediction_forbidden, prediction_false_alarms;
    double prediction_lead_s, prediction_eta_err_s;
} sm_score_floors;

/* Every floor unset. */
void sm_score_floors_init(sm_score_floors *f);

/* Applies "recall=1,precision=0.97,failure_recall=1" (one or more, comma-separated)
 * or the scenario file's "floor" object. Errors: SM_ERR_INVALID with the
 * key named in err. */
sm_status sm_score_floors_parse(sm_score_floors *f, const char *spec,
                                char *err, size_t errcap);
sm_status sm_score_floors_from_json(sm_score_floors *f, const json_t *floor,
                                    const char *origin, char *err,
                                    size_t errcap);

/* The "floor" object of floors f (the floors set; {} if none), as
 * sm_score_floors_from_json reads it. NULL when out of memory. */
json_t *sm_score_floors_to_json(const sm_score_floors *f);

/* Applies the "floor" object of a labels file (or of a scenario file), if
 * it has one; a file without "floor" leaves *f as it was. Errors:
 * SM_ERR_IO (cannot read), SM_ERR_INVALID (not JSON, a bad floor). */
sm_status sm_score_floors_load_file(sm_score_floors *f, const char *path,
                                    char *err, size_t errcap);

/* Writes one line per floor set ("floor recall >= 1: 0.8 MISSED") to out
 * (may be NULL); returns how many were missed. An undefined figure (NaN)
 * meets its floor. */
size_t sm_score_floors_check(const sm_score_floors *f,
                             const sm_score_report *r, FILE *out);

/* ----------------------------------------------------------------- output */

/* The readable table: the bottleneck section (per type, then "all"),
 * then a failures and a predictions section when their kind has labels or
 * episodes; then missed, unresolved and flapped labels, false alarms and
 * forbidden episodes of every kind. */
void sm_score_print_table(const sm_score_report *r, const sm_labels *labels,
                          const char *name, FILE *out);

/* The healing table (when r->heal.on): per failure type and all, then
 * incidents, storms, duplicates, the coordinator's counters. */
void sm_score_print_healing(const sm_score_report *r, FILE *out);

/* Its lines: score.<name>.heal.<type>.<figure> and score.<name>.heal.<figure>
 * for the run-wide counts. */
void sm_score_print_healing_lines(const sm_score_report *r, const char *name,
                                  FILE *out);

/* `name value unit` lines, per type then "all", undefined figures left
 * out: score.<name>.<type>.<figure> for bottlenecks,
 * score.<name>.failure.<type>.<figure> and
 * score.<name>.prediction.<type>.<figure> for the other kinds (when they
 * have labels or episodes). Then, for bottlenecks and failures, one
 * `delay_each` line per matched must-label (its type's and "all"), so
 * that a suite of scenarios can take the median over all of them. */
void sm_score_print_lines(const sm_score_report *r, const sm_labels *labels,
                          const char *name, FILE *out);

/* ------------------------------------------------------------------- CLI */

/* The first n characters of name in [A-Za-z0-9_-] (others become '_'), so
 * that figure lines split on '.'; "run" if empty. */
void sm_score_clean_name(char *buf, size_t cap, const char *name, size_t n);

/* Scenarios are not scored here: the simulator links the product, never
 * the reverse. `swarm-sim --scenario F --record R --labels-out L` writes a
 * recording and a labels file (with the scenario's "floor") that
 * `swarm-medic score R --labels L` scores; in process, worker/sim's
 * sm_scenario_score_input() feeds sm_score_run(). */
typedef struct sm_score_cli {
    const char *rec_path;           /* score REC --labels FILE */
    const char *labels_path;        /* its "floor" object, if any, applies */
    const char *name;               /* default: file name without .rec */
    const char *const *floors;      /* --floor specs, over the file's */
    size_t n_floors;
} sm_score_cli;

/* `swarm-medic score`: runs, prints the table and the lines to out,
 * problems to err. Returns the exit code: 0 every floor met, 1 a floor
 * missed, 2 bad input (no labels, unreadable files, a bad floor, a
 * recording that cannot be replayed). */
int sm_score_main(const sm_config *cfg, const sm_log *log,
                  const sm_score_cli *cli, FILE *out, FILE *err);

#endif
