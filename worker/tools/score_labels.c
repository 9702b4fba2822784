/* score_labels.c - the labels file (score.h, tests/scenarios/README.md). */
#include "score.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decision.h"

const char *sm_label_kind_str(sm_label_kind k)
{
    switch (k) {
    case SM_KIND_BOTTLENECK: return "bottleneck";
    case SM_KIND_FAILURE:    return "failure";
    case SM_KIND_PREDICTION: return "prediction";
    }
    return "unknown";
}

const char *sm_label_class_str(sm_label_class c)
{
    switch (c) {
    case SM_LABEL_MUST:  return "must";
    case SM_LABEL_MAY:   return "may";
    case SM_LABEL_NEVER: return "never";
    }
    return "unknown";
}

void sm_label_init(sm_label *l)
{
    memset(l, 0, sizeof *l);
    l->cls = SM_LABEL_MUST;
    l->kind = SM_KIND_BOTTLENECK;
    l->raise_within_ms = SM_SCORE_RAISE_WITHIN_MS;
    l->resolve_within_ms = SM_SCORE_RESOLVE_WITHIN_MS;
    l->withdraw_within_ms = -1;
}

sm_status sm_labels_add(sm_labels *ls, const sm_label *l)
{
    sm_label *v = realloc(ls->v, (ls->n + 1) * sizeof *v);
    if (!v)
        return SM_ERR_NOMEM;
    v[ls->n++] = *l;
    ls->v = v;
    return SM_OK;
}

void sm_labels_free(sm_labels *ls)
{
    if (!ls)
        return;
    free(ls->v);
    ls->v = NULL;
    ls->n = 0;
}

/* ---- one label -------------------------------------------------------- */

/* Where an error is: "demo.labels.json: labels.must[2]". */
typedef struct where {
    const char *origin;
    const char *cls;
    size_t index;
    char *err;
    size_t cap;
} where;

static sm_status bad(const where *w, const char *field, const char *why)
{
    snprintf(w->err, w->cap, "%s: labels.%s[%zu]: field \"%s\": %s", w->origin,
             w->cls, w->index, field, why);
    return SM_ERR_INVALID;
}

static sm_status get_string(const where *w, const json_t *o, const char *key,
                            bool required, char *dst, size_t cap)
{
    const json_t *v = json_object_get(o, key);
    if (!v) {
        if (required)
            return bad(w, key, "missing");
        return SM_OK;
    }
    if (!json_is_string(v))
        return bad(w, key, "must be a string");
    if (json_string_length(v) >= cap)
        return bad(w, key, "too long");
    snprintf(dst, cap, "%s", json_string_value(v));
    return SM_OK;
}

/* A time field in seconds (number, x1000) or ms (integer). *set tells
 * whether it was present. */
static sm_status get_time(const where *w, const json_t *o, const char *key,
                          bool seconds, int64_t *ms, bool *set)
{
    const json_t *v = json_object_get(o, key);
    *set = v != NULL;
    if (!v)
        return SM_OK;
    if (seconds) {
        if (!json_is_number(v))
            return bad(w, key, "must be a number of seconds");
        double s = json_number_value(v);
        if (!isfinite(s) || fabs(s) > 1e12)
            return bad(w, key, "out of range");
        *ms = (int64_t)llround(s * 1000.0);
    } else {
        if (!json_is_integer(v))
            return bad(w, key, "must be an integer of milliseconds");
        *ms = (int64_t)json_integer_value(v);
    }
    return SM_OK;
}

static sm_status get_within(const where *w, const json_t *o, const char *key,
                            int64_t *ms)
{
    bool set;
    sm_status s = get_time(w, o, key, true, ms, &set);
    if (s == SM_OK && set && *ms < 0)
        return bad(w, key, "must be >= 0");
    return s;
}

static bool known_bn_type(const char *t)
{
    for (int i = 1; i <= SM_BN_COUNT; i++)
        if (strcmp(t, sm_bn_type_str((sm_bn_type)i)) == 0)
            return true;
    return false;
}

static bool known_fail_type(const char *t)
{
    for (int i = 1; i <= SM_FAIL_MAX; i++) {
        const char *s = sm_fail_type_str((sm_fail_type)i);
        if (strcmp(s, "unknown") != 0 && strcmp(t, s) == 0)
            return true;
    }
    return false;
}

static const char *const fields[] = {
    "kind", "type", "swarm", "subject", "from_s", "to_s", "from_ms", "to_ms",
    "severity", "raise_within_s", "resolve_within_s", "withdraw_within_s",
    "note", NULL};

static sm_status parse_label(const where *w, const json_t *o, sm_label_class cls,
                             sm_label *l)
{
    if (!json_is_object(o)) {
        snprintf(w->err, w->cap, "%s: labels.%s[%zu]: must be an object",
                 w->origin, w->cls, w->index);
        return SM_ERR_INVALID;
    }
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)o, key, val) {
        size_t i = 0;
        while (fields[i] && strcmp(fields[i], key) != 0)
            i++;
        if (!fields[i])
            return bad(w, key, "unknown field (kind, type, swarm, subject, "
                               "from_s/to_s or from_ms/to_ms, severity, "
                               "raise_within_s, resolve_within_s, "
                               "withdraw_within_s, note)");
    }
    sm_label_init(l);
    l->cls = cls;
    char kind[16] = "bottleneck", sev[16] = "";
    sm_status s = get_string(w, o, "kind", false, kind, sizeof kind);
    if (s == SM_OK) {
        if (strcmp(kind, "bottleneck") == 0) l->kind = SM_KIND_BOTTLENECK;
        else if (strcmp(kind, "failure") == 0) l->kind = SM_KIND_FAILURE;
        else if (strcmp(kind, "prediction") == 0) l->kind = SM_KIND_PREDICTION;
        else return bad(w, "kind", "must be \"bottleneck\", \"failure\" or \"prediction\"");
    }
    if (s == SM_OK)
        s = get_string(w, o, "type", true, l->type, sizeof l->type);
    if (s == SM_OK && l->kind == SM_KIND_BOTTLENECK && !known_bn_type(l->type))
        return bad(w, "type", "not a bottleneck type (token_exhaustion, "
                              "quota_exceeded, slow_agent, queue_backlog, "
                              "consensus_timeout)");
    if (s == SM_OK && l->kind != SM_KIND_BOTTLENECK && !known_fail_type(l->type))
        return bad(w, "type", "not a failure type (agent_down, agent_stuck, "
                              "task_timeout, quorum_loss, token_exhaustion, "
                              "memory_exhaustion, queue_overflow)");
    if (s == SM_OK)
        s = get_string(w, o, "swarm", true, l->swarm, sizeof l->swarm);
    if (s == SM_OK && !l->swarm[0])
        return bad(w, "swarm", "must not be empty");
    if (s == SM_OK)
        s = get_string(w, o, "subject", false, l->subject, sizeof l->subject);
    if (s == SM_OK)
        s = get_string(w, o, "severity", false, sev, sizeof sev);
    if (s == SM_OK && sev[0]) {
        for (int i = SM_SEV_LOW; i <= SM_SEV_CRITICAL; i++)
            if (strcmp(sev, sm_severity_str((sm_severity)i)) == 0)
                l->severity = i;
        if (!l->severity)
            return bad(w, "severity", "must be \"low\", \"medium\", \"high\" or \"critical\"");
    }
    const json_t *note = json_object_get(o, "note");
    if (s == SM_OK && note && !json_is_string(note))
        return bad(w, "note", "must be a string");
    if (note)   /* a remark for reports: truncated, never refused */
        snprintf(l->note, sizeof l->note, "%s", json_string_value(note));
    if (s == SM_OK)
        s = get_within(w, o, "raise_within_s", &l->raise_within_ms);
    if (s == SM_OK)
        s = get_within(w, o, "resolve_within_s", &l->resolve_within_ms);
    if (s == SM_OK && json_object_get(o, "withdraw_within_s"))
        s = get_within(w, o, "withdraw_within_s", &l->withdraw_within_ms);
    if (s != SM_OK)
        return s;

    bool fs, ts, fm, tm;
    int64_t from_s = 0, to_s = 0, from_m = 0, to_m = 0;
    if ((s = get_time(w, o, "from_s", true, &from_s, &fs)) != SM_OK ||
        (s = get_time(w, o, "to_s", true, &to_s, &ts)) != SM_OK ||
        (s = get_time(w, o, "from_ms", false, &from_m, &fm)) != SM_OK ||
        (s = get_time(w, o, "to_ms", false, &to_m, &tm)) != SM_OK)
        return s;
    if ((fs || ts) && (fm || tm))
        return bad(w, fs ? "from_s" : "to_s",
                   "do not mix from_s/to_s (relative) with from_ms/to_ms (absolute)");
    l->relative = fs || ts;
    bool has_from = fs || fm, has_to = ts || tm;
    if (cls != SM_LABEL_NEVER && !has_from)
        return bad(w, "from_s", "missing (or from_ms)");
    if (cls != SM_LABEL_NEVER && !has_to)
        return bad(w, "to_s", "missing (or to_ms)");
    l->from_ms = has_from ? (fs ? from_s : from_m) : INT64_MIN;
    l->to_ms = has_to ? (ts ? to_s : to_m) : INT64_MAX;
    if (has_from && has_to && l->to_ms < l->from_ms)
        return bad(w, ts ? "to_s" : "to_ms", "ends before from");
    if (!has_from && !has_to)
        l->relative = false;    /* the whole run */
    return SM_OK;
}

sm_status sm_labels_from_json(const json_t *labels, const char *origin,
                              sm_labels *out, char *err, size_t errcap)
{
    static const char *const classes[] = {"must", "may", "never"};
    if (!json_is_object(labels)) {
        snprintf(err, errcap, "%s: labels must be an object with \"must\", "
                              "\"may\" and \"never\" arrays", origin);
        return SM_ERR_INVALID;
    }
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)labels, key, val) {
        if (strcmp(key, "must") && strcmp(key, "may") && strcmp(key, "never")) {
            snprintf(err, errcap, "%s: labels: unknown key \"%s\" (must, may, never)",
                     origin, key);
            return SM_ERR_INVALID;
        }
    }
    sm_labels add = {0};
    sm_status s = SM_OK;
    for (int c = 0; c < 3 && s == SM_OK; c++) {
        const json_t *arr = json_object_get(labels, classes[c]);
        if (!arr)
            continue;
        if (!json_is_array(arr)) {
            snprintf(err, errcap, "%s: labels.%s must be an array", origin,
                     classes[c]);
            s = SM_ERR_INVALID;
            break;
        }
        for (size_t i = 0; i < json_array_size(arr) && s == SM_OK; i++) {
            where w = {origin, classes[c], i, err, errcap};
            sm_label l;
            s = parse_label(&w, json_array_get(arr, i), (sm_label_class)c, &l);
            if (s == SM_OK)
                s = sm_labels_add(&add, &l);
        }
    }
    size_t before = out->n;
    for (size_t i = 0; s == SM_OK && i < add.n; i++)
        s = sm_labels_add(out, &add.v[i]);
    if (s == SM_ERR_NOMEM)
        snprintf(err, errcap, "%s: out of memory", origin);
    if (s != SM_OK)
        out->n = before;        /* what was appended is dropped */
    sm_labels_free(&add);
    return s;
}

/* Parses the JSON file at path into *root (a new reference). */
static sm_status load_json(const char *path, json_t **root, char *err,
                           size_t errcap)
{
    json_error_t je;
    *root = json_load_file(path, 0, &je);
    if (*root)
        return SM_OK;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errcap, "%s: cannot read", path);
        return SM_ERR_IO;
    }
    fclose(f);
    snprintf(err, errcap, "%s:%d:%d: not JSON: %s", path, je.line, je.column,
             je.text);
    return SM_ERR_INVALID;
}

sm_status sm_labels_load_file(const char *path, sm_labels *out, char *err,
                              size_t errcap)
{
    json_t *root;
    sm_status s = load_json(path, &root, err, errcap);
    if (s != SM_OK)
        return s;
    const json_t *labels = json_object_get(root, "labels");
    sm_labels got = {0};
    s = sm_labels_from_json(labels ? labels : root, path, &got, err, errcap);
    if (s == SM_OK)
        *out = got;
    else
        sm_labels_free(&got);
    json_decref(root);
    return s;
}

sm_status sm_score_floors_load_file(sm_score_floors *f, const char *path,
                                    char *err, size_t errcap)
{
    json_t *root;
    sm_status s = load_json(path, &root, err, errcap);
    if (s != SM_OK)
        return s;
    const json_t *floor = json_object_get(root, "floor");
    if (floor)
        s = sm_score_floors_from_json(f, floor, path, err, errcap);
    json_decref(root);
    return s;
}

/* ---- writing ----------------------------------------------------------- */

/* ms as seconds, as get_time reads them back: an integer when whole, else
 * a real (dump with JSON_REAL_PRECISION(15) for a short exact text). */
static int put_s(json_t *o, const char *key, int64_t ms)
{
    return json_object_set_new(o, key, ms % 1000 == 0
                                           ? json_integer(ms / 1000)
                                           : json_real((double)ms / 1000.0));
}

json_t *sm_label_to_json(const sm_label *l)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = json_object_set_new(o, "kind", json_string(sm_label_kind_str(l->kind)));
    bad |= json_object_set_new(o, "type", json_string(l->type));
    bad |= json_object_set_new(o, "swarm", json_string(l->swarm));
    if (l->subject[0])
        bad |= json_object_set_new(o, "subject", json_string(l->subject));
    if (l->relative) {
        bad |= put_s(o, "from_s", l->from_ms);
        bad |= put_s(o, "to_s", l->to_ms);
    } else {
        if (l->from_ms != INT64_MIN)
            bad |= json_object_set_new(o, "from_ms", json_integer(l->from_ms));
        if (l->to_ms != INT64_MAX)
            bad |= json_object_set_new(o, "to_ms", json_integer(l->to_ms));
    }
    if (l->severity >= SM_SEV_LOW && l->severity <= SM_SEV_CRITICAL)
        bad |= json_object_set_new(o, "severity",
                                   json_string(sm_severity_str((sm_severity)l->severity)));
    bad |= put_s(o, "raise_within_s", l->raise_within_ms);
    bad |= put_s(o, "resolve_within_s", l->resolve_within_ms);
    if (l->withdraw_within_ms >= 0)
        bad |= put_s(o, "withdraw_within_s", l->withdraw_within_ms);
    if (l->note[0])
        bad |= json_object_set_new(o, "note", json_string(l->note));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *sm_labels_to_json(const sm_labels *ls)
{
    static const char *const classes[] = {"must", "may", "never"};
    json_t *o = json_object();
    int bad = !o;
    for (int c = 0; c < 3 && !bad; c++)
        bad |= json_object_set_new(o, classes[c], json_array());
    for (size_t i = 0; i < ls->n && !bad; i++) {
        json_t *arr = json_object_get(o, sm_label_class_str(ls->v[i].cls));
        json_t *l = sm_label_to_json(&ls->v[i]);
        bad |= !arr || !l || json_array_append_new(arr, l);
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
