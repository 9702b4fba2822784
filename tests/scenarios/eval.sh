#!/bin/sh
# Scores every scenario in tests/scenarios/ and prints one table:
#   make eval          (runs: sh tests/scenarios/eval.sh build/bin)
# Each scenario is scored in two steps, the simulator apart from the
# product (swarm-medic does not link the simulator):
#   swarm-sim --scenario F --record R --labels-out L
#   swarm-medic score R --labels L
# Their `score.<scenario>.<type>.<figure> value unit` lines (and
# `score.<scenario>.failure.<type>.<figure>`, `...prediction...` for those
# kinds) become rows of scenario x type, then one overall row per type over
# all scenarios (counts summed, ratios recomputed from the sums, never
# averaged) and `eval.<type>.<figure> value unit` lines (types of the other
# kinds named failure.<type>, prediction.<type>). Bottlenecks and failures
# share one table; predictions, measured by lead and ETA error instead of
# delay and resolve, have their own. Last, the gap to each scenario's
# target floor ("floor" in its file). The figures are defined in
# tests/scenarios/README.md.
#
# Then the closed loop: each scenario again, in process, with the simulated
# coordinator carrying out the worker's HealingCommands
# (swarm-sim --scenario F --score --heal): one healing row per scenario and
# failure type, the overall rows, and the healing success against the
# target (SM_HEAL_TARGET, 0.95). The detection table above is the loop
# off, as always.
#
# Then the scaling: the scenarios whose "settings" turn scaling on, from
# the same loop-on run (the coordinator also applies the worker's
# ScalingDecisions): decisions, flaps, queue depth, agent and token
# utilisation against SPEC's figures, one row per scenario.
#
# A report, not a gate: the floors are targets here; tests/check_scenarios.c
# holds the detectors to tests/scenarios/baseline.tsv (the ratchet) and the
# loop to tests/scenarios/heal-baseline.tsv.
# Exit status: 0 every scenario scored (floors met or not), 2 a scenario
# could not be simulated or scored (a tooling error).
set -u
bin=${1:-build/bin}
# Worker settings for the loop-on run (--set NAME=VALUE ...), and the target.
SM_HEAL_SET=${SM_HEAL_SET:-}
SM_HEAL_TARGET=${SM_HEAL_TARGET:-0.95}
dir=$(dirname "$0")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sm-eval-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 2' INT TERM

: >"$tmp/lines"
: >"$tmp/heal"
: >"$tmp/scale"
: >"$tmp/hostile"
: >"$tmp/gap"
n=0; missed=0; failed=0
for f in "$dir"/*.json; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    name=$(basename "$f" .json)
    if ! "$bin/swarm-sim" --scenario "$f" --record "$tmp/$name.rec" \
            --labels-out "$tmp/$name.labels.json" --quiet 2>"$tmp/err"; then
        failed=$((failed + 1)); sed "s/^/$name: swarm-sim: /" "$tmp/err"; continue
    fi
    "$bin/swarm-medic" score "$tmp/$name.rec" --labels "$tmp/$name.labels.json" \
        --log-level=error >"$tmp/out" 2>"$tmp/err"
    case $? in
    0) ;;
    1) missed=$((missed + 1))
       grep '^floor .*MISSED' "$tmp/out" | sed "s/^floor /$name: /" >>"$tmp/gap" ;;
    *) failed=$((failed + 1)); sed "s/^/$name: /" "$tmp/err"; continue ;;
    esac
    grep '^score\.' "$tmp/out" | grep -v '^score\.[^.]*\.\(heal\|scale\)\.' |
        sed "s/^/$name /" >>"$tmp/lines"
    rm -f "$tmp/$name.rec"
    "$bin/swarm-sim" --scenario "$f" --score --heal $SM_HEAL_SET >"$tmp/out" 2>"$tmp/err"
    case $? in
    0|1) grep '^score\.[^.]*\.heal\.' "$tmp/out" | sed "s/^/$name /" >>"$tmp/heal"
         grep '^score\.[^.]*\.scale\.' "$tmp/out" | sed "s/^/$name /" >>"$tmp/scale" ;;
    *) failed=$((failed + 1)); sed "s/^/$name: swarm-sim --score --heal: /" "$tmp/err" ;;
    esac
    # the same loop with a coordinator that fails 20% and rejects 10%
    "$bin/swarm-sim" --scenario "$f" --score --heal $SM_HEAL_SET --coord-fail 0.2 \
        --coord-reject 0.1 2>/dev/null | grep '^score\.[^.]*\.heal\.' >>"$tmp/hostile"
done

if [ "$n" -eq 0 ]; then
    echo "make eval: no scenarios in $dir (*.json)"
    exit 0
fi

# FILE score.<name>[.<kind>].<type>.<figure> value unit  ->  a row per FILE x type
awk '
BEGIN {
    # summed over scenarios, per type ("all" included)
    split("must matched episodes false_alarms flaps forbidden unresolved severity_checked severity_ok eta_checked", C, " ")
}
{
    n = split($2, k, ".")
    if (n == 5) { t = k[3] "." k[4]; fig = k[5] } else { t = k[3]; fig = k[4] }
    if (fig == "delay_each") { E[t, ++ne[t]] = $3; next }
    row = $1 SUBSEP t
    if (!(row in seen)) { seen[row] = 1; order[++rows] = row }
    v[row, fig] = $3
    if (!(t in tseen)) { tseen[t] = 1; torder[++ntypes] = t }
    for (i in C) if (fig == C[i]) S[t, fig] += $3
    if ((fig == "delay_max" || fig == "resolve_max" || fig == "eta_err_max") &&
        (!((t, fig) in S) || $3 > S[t, fig]))
        S[t, fig] = $3
    if (fig == "lead_min" && (!((t, fig) in S) || $3 < S[t, fig]))
        S[t, fig] = $3
}
function has(row, f) { return (row, f) in v }
function frac(a, b) { return b == 0 ? "-" : sprintf("%d/%d %.2f", a, b, a / b) }
function s1(x) { return sprintf("%.1f", x) }
function mm(row, a, b) { return has(row, a) ? s1(v[row, a]) "/" s1(v[row, b]) : "-" }
function put(scen, t, rec, prec, fl, dl, rs, sev, fb, fa) {
    printf fmt, scen, t, rec, prec, fl, dl, rs, sev, fb, fa
}
function pred(t) { return substr(t, 1, 11) == "prediction." }
# the median delay of type t over every matched label of all scenarios
function median(t,    i, j, n, a, x) {
    n = ne[t]
    for (i = 1; i <= n; i++) a[i] = E[t, i]
    for (i = 2; i <= n; i++) {
        x = a[i]
        for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]
        a[j + 1] = x
    }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function overall(t, lead) {
    if (lead) {
        dmax = ((t, "lead_min") in S) ? "-/" s1(S[t, "lead_min"]) : "-"
        rmax = ((t, "eta_err_max") in S) ? "-/" s1(S[t, "eta_err_max"]) : "-"
        sev = ""
    } else {
        dmax = ((t, "delay_max") in S) ? (ne[t] ? s1(median(t)) : "-") "/" s1(S[t, "delay_max"]) : "-"
        rmax = ((t, "resolve_max") in S) ? "-/" s1(S[t, "resolve_max"]) : "-"
        sev = frac(S[t, "severity_ok"], S[t, "severity_checked"])
    }
    put("overall", t, frac(S[t, "matched"], S[t, "must"]),
        frac(S[t, "episodes"] - S[t, "false_alarms"], S[t, "episodes"]),
        S[t, "flaps"] + 0, dmax, rmax, sev, S[t, "forbidden"] + 0,
        S[t, "false_alarms"] + 0)
}
# the rows of one table: bottlenecks and failures (lead 0) or predictions
function table(lead,    i, r, p) {
    if (lead) {
        put("scenario", "type", "recall", "precision", "flaps", "lead s", "eta err s", "", "forbid", "false")
        put("", "", "", "", "", "med/min", "med/max", "", "", "alarms")
    } else {
        put("scenario", "type", "recall", "precision", "flaps", "delay s", "resolve s", "severity", "forbid", "false")
        put("", "", "", "", "", "med/max", "med/max", "", "", "alarms")
    }
    for (i = 1; i <= rows; i++) {
        r = order[i]; split(r, p, SUBSEP)
        if (p[2] == "all" || p[2] ~ /\.all$/ || pred(p[2]) != lead) continue
        put(p[1], p[2], frac(v[r, "matched"], v[r, "must"]),
            frac(v[r, "episodes"] - v[r, "false_alarms"], v[r, "episodes"]),
            v[r, "flaps"],
            lead ? mm(r, "lead_med", "lead_min") : mm(r, "delay_med", "delay_max"),
            lead ? mm(r, "eta_err_med", "eta_err_max") : mm(r, "resolve_med", "resolve_max"),
            lead ? "" : frac(v[r, "severity_ok"], v[r, "severity_checked"]),
            v[r, "forbidden"], v[r, "false_alarms"])
    }
    print ""
}
END {
    if (rows == 0) exit
    fmt = "%-24s %-30s %-10s %-11s %5s  %-11s %-11s %-10s %6s %6s\n"
    table(0)
    # overall: the bottleneck types in their order, then any other, "all",
    # then the failure types and failure.all
    nk = split("token_exhaustion quota_exceeded slow_agent queue_backlog consensus_timeout", K, " ")
    for (j = 1; j <= nk; j++) { known[K[j]] = 1; if (K[j] in tseen) list[++nl] = K[j] }
    for (j = 1; j <= ntypes; j++)
        if (!(torder[j] in known) && torder[j] !~ /\./ && torder[j] != "all") list[++nl] = torder[j]
    list[++nl] = "all"
    for (j = 1; j <= ntypes; j++)
        if (substr(torder[j], 1, 8) == "failure." && torder[j] != "failure.all") list[++nl] = torder[j]
    if ("failure.all" in tseen) list[++nl] = "failure.all"
    nb = nl
    for (j = 1; j <= ntypes; j++)
        if (pred(torder[j]) && torder[j] != "prediction.all") list[++nl] = torder[j]
    if ("prediction.all" in tseen) list[++nl] = "prediction.all"
    for (j = 1; j <= nb; j++) overall(list[j], 0)
    print "overall delay: median over every matched label of all scenarios / max; resolve: max over all scenarios (its median is per scenario only)"
    if (nl > nb) {
        print ""
        table(1)
        for (j = nb + 1; j <= nl; j++) overall(list[j], 1)
        print "overall lead: min, ETA error: max over all scenarios; a prediction is a hit only 30 s or more before the failure"
    }
    for (j = 1; j <= nl; j++) {
        t = list[j]
        for (i = 1; i <= 10; i++)
            if (C[i] != "eta_checked" || pred(t)) printf "eval.%s.%s %d count\n", t, C[i], S[t, C[i]]
        if (S[t, "must"] > 0) printf "eval.%s.recall %.4g ratio\n", t, S[t, "matched"] / S[t, "must"]
        if (S[t, "episodes"] > 0) printf "eval.%s.precision %.4g ratio\n", t, (S[t, "episodes"] - S[t, "false_alarms"]) / S[t, "episodes"]
        if (S[t, "severity_checked"] > 0) printf "eval.%s.severity %.4g ratio\n", t, S[t, "severity_ok"] / S[t, "severity_checked"]
        if (ne[t]) printf "eval.%s.delay_med %.4g s\n", t, median(t)
        if ((t, "delay_max") in S) printf "eval.%s.delay_max %.4g s\n", t, S[t, "delay_max"]
        if ((t, "resolve_max") in S) printf "eval.%s.resolve_max %.4g s\n", t, S[t, "resolve_max"]
        if ((t, "lead_min") in S) printf "eval.%s.lead_min %.4g s\n", t, S[t, "lead_min"]
        if ((t, "eta_err_max") in S) printf "eval.%s.eta_err_max %.4g s\n", t, S[t, "eta_err_max"]
    }
}' "$tmp/lines"

echo
# FILE score.<name>.heal.<type>.<figure> value unit (a row per FILE x type)
# and FILE score.<name>.heal.<figure> value unit (the run's counts)
awk -v target="$SM_HEAL_TARGET" '
BEGIN {
    split("commands act escalations verified failed preempted superseded act_verified act_failed", C, " ")
    split("incidents storms duplicates unanswered below_quorum coord_rejected coord_failed", R, " ")
}
{
    n = split($2, k, ".")
    if (n == 5) {
        t = k[4]; fig = k[5]; row = $1 SUBSEP t
        if (!(row in seen)) { seen[row] = 1; order[++rows] = row }
        if (!(t in tseen)) { tseen[t] = 1; torder[++ntypes] = t }
        v[row, fig] = $3
        for (i in C) if (fig == C[i]) S[t, fig] += $3
        if (fig == "recover_max" && (!((t, fig) in S) || $3 > S[t, fig])) S[t, fig] = $3
        if (fig == "detect_max" && (!((t, fig) in S) || $3 > S[t, fig])) S[t, fig] = $3
    } else if (n == 4) {
        scen[$1] = 1; w[$1, k[4]] = $3
        for (i in R) if (k[4] == R[i]) TOT[k[4]] += $3
    }
}
function frac(a, b) { return b == 0 ? "-" : sprintf("%d/%d %.2f", a, b, a / b) }
function mm(r, a, b) { return ((r, a) in v) ? sprintf("%.1f/%.1f", v[r, a], v[r, b]) : "-" }
END {
    if (rows == 0) { print "healing: no scenario drew a HealingCommand (is healing on in the worker?)"; exit }
    fmt = "%-24s %-18s %5s %5s %5s %6s %5s %5s  %-12s %-11s %-11s\n"
    printf fmt, "scenario", "failure type", "cmds", "escal", "verif", "failed", "preem", "super", "success", "detect s", "recover s"
    printf fmt, "", "", "", "", "", "", "", "", "act", "med/max", "med/max"
    for (i = 1; i <= rows; i++) {
        r = order[i]; split(r, p, SUBSEP)
        if (p[2] == "all") continue
        printf fmt, p[1], p[2], v[r, "commands"], v[r, "escalations"], v[r, "verified"],
            v[r, "failed"], v[r, "preempted"], v[r, "superseded"], frac(v[r, "act_verified"], v[r, "act_verified"] + v[r, "act_failed"]),
            mm(r, "detect_med", "detect_max"), mm(r, "recover_med", "recover_max")
    }
    for (j = 1; j <= ntypes; j++) {
        t = torder[j]; if (t == "all") continue
        printf fmt, "overall", t, S[t, "commands"], S[t, "escalations"], S[t, "verified"], S[t, "failed"],
            S[t, "preempted"], S[t, "superseded"], frac(S[t, "act_verified"], S[t, "act_verified"] + S[t, "act_failed"]),
            ((t, "detect_max") in S) ? "-/" sprintf("%.1f", S[t, "detect_max"]) : "-",
            ((t, "recover_max") in S) ? "-/" sprintf("%.1f", S[t, "recover_max"]) : "-"
    }
    t = "all"
    printf fmt, "overall", "all", S[t, "commands"], S[t, "escalations"], S[t, "verified"], S[t, "failed"],
        S[t, "preempted"], S[t, "superseded"], frac(S[t, "act_verified"], S[t, "act_verified"] + S[t, "act_failed"]),
        ((t, "detect_max") in S) ? "-/" sprintf("%.1f", S[t, "detect_max"]) : "-",
        ((t, "recover_max") in S) ? "-/" sprintf("%.1f", S[t, "recover_max"]) : "-"
    print "overall detect/recover: max over all scenarios (medians per scenario only)"
    printf "loop: %d incidents, %d storms, %d duplicate command ids, %d unanswered, %d actions below quorum; the coordinator rejected %d, failed %d\n",
        TOT["incidents"], TOT["storms"], TOT["duplicates"], TOT["unanswered"], TOT["below_quorum"], TOT["coord_rejected"], TOT["coord_failed"]
    ok = S[t, "act_verified"]; all = S[t, "act_verified"] + S[t, "act_failed"]
    if (all > 0)
        printf "healing success %.3f (%d/%d ACT verdicts), target >= %s: %s\n", ok / all, ok, all, target,
            ((ok / all >= target) ? "met" : "NOT MET")
    else
        print "healing success: no ACT verdict"
    for (j = 1; j <= ntypes; j++) {
        t = torder[j]
        for (i = 1; i <= 9; i++) printf "eval.heal.%s.%s %d count\n", t, C[i], S[t, C[i]]
        a = S[t, "act_verified"] + S[t, "act_failed"]
        if (a > 0) printf "eval.heal.%s.success %.4g ratio\n", t, S[t, "act_verified"] / a
        if ((t, "recover_max") in S) printf "eval.heal.%s.recover_max %.4g s\n", t, S[t, "recover_max"]
    }
    for (i = 1; i <= 7; i++) printf "eval.heal.%s %d count\n", R[i], TOT[R[i]]
}' "$tmp/heal"
awk '
{ n = split($1, k, "."); f = (n == 5) ? (k[4] == "all" ? k[5] : "") : k[4]; if (f != "") S[f] += $2 }
END {
    a = S["act_verified"] + S["act_failed"]
    printf "with a coordinator failing 20%% and rejecting 10%% of the commands: success %s (%d/%d), %d rejected, %d failed, %d escalations, %d storms, %d duplicates, %d below quorum\n",
        a ? sprintf("%.3f", S["act_verified"] / a) : "-", S["act_verified"], a, S["coord_rejected"], S["coord_failed"],
        S["escalations"], S["storms"], S["duplicates"], S["below_quorum"]
}' "$tmp/hostile"


echo
# FILE score.<name>.scale.<figure> value unit: one row per scenario whose
# loop scales (its "settings" turn scaling on), against SPEC's figures.
awk '
{ n = split($2, k, "."); if (!($1 in seen)) { seen[$1] = 1; order[++rows] = $1 }; v[$1, k[4]] = $3 }
function band(x, lo, hi) { return x < lo ? "below" : x > hi ? "above" : "in" }
END {
    if (rows == 0) { print "scaling: no scenario scales (none sets \"settings\": {\"scaling\": true})"; exit }
    fmt = "%-24s %5s %4s %5s %5s  %-6s %5s %5s %-9s %-8s %-13s %-13s\n"
    printf fmt, "scenario", "decis", "up", "down", "flaps", "queue", "p95", "max", "under 30", "agents", "agent util", "token util"
    printf fmt, "", "", "", "", "", "mean", "", "", "share", "min-max", "(0.70-0.80)", "(0.80-0.90)"
    for (i = 1; i <= rows; i++) {
        r = order[i]
        printf fmt, r, v[r, "decisions"], v[r, "up"], v[r, "down"], v[r, "flaps"],
            sprintf("%.1f", v[r, "queue_mean"]), v[r, "queue_p95"], v[r, "queue_max"],
            sprintf("%.3f", v[r, "queue_under30"]), v[r, "agents_min"] "-" v[r, "agents_max"],
            sprintf("%.2f %s", v[r, "agent_util"], band(v[r, "agent_util"], 0.70, 0.80)),
            sprintf("%.2f %s", v[r, "token_util"], band(v[r, "token_util"], 0.80, 0.90))
        F += v[r, "flaps"]; D += v[r, "decisions"]
        if (v[r, "queue_p95"] >= 30) over++
    }
    printf "scaling: %d scenarios, %d decisions, %d flaps (a reversal within cooldown + stabilisation); queue p95 under 30 on %d of %d\n",
        rows, D, F, rows - over, rows
    for (i = 1; i <= rows; i++) {
        r = order[i]
        split("decisions flaps queue_mean queue_p95 queue_max queue_under30 agent_util token_util", K, " ")
        for (j = 1; j <= 8; j++) printf "eval.scale.%s.%s %s %s\n", r, K[j], v[r, K[j]],
            (K[j] ~ /^queue_(mean|p95|max)$/) ? "tasks" : (K[j] ~ /util|under/) ? "ratio" : "count"
    }
}' "$tmp/scale"

echo
if [ -s "$tmp/gap" ]; then
    echo "gap to the target floors (\"floor\" in each scenario file):"
    sed 's/^/  /' "$tmp/gap"
fi
echo "make eval: $n scenarios, $((n - failed)) scored, $missed below their target floor, $failed failed"
[ "$failed" -gt 0 ] && exit 2
exit 0
