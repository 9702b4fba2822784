#!/bin/sh
# Scores every scenario in tests/scenarios/ and prints one table:
#   make eval          (runs: sh tests/scenarios/eval.sh build/bin)
# Each scenario is scored in two steps, the simulator apart from the
# product (swarm-medic does not link the simulator):
#   swarm-sim --scenario F --record R --labels-out L
#   swarm-medic score R --labels L
# Their `score.<scenario>.<type>.<figure> value unit` lines become rows of
# scenario x type, then one overall row per type over all scenarios (counts
# summed, ratios recomputed from the sums, never averaged) and
# `eval.<type>.<figure> value unit` lines. Last, the gap to each scenario's
# target floor ("floor" in its file). The figures are defined in
# tests/scenarios/README.md.
#
# A report, not a gate: the floors are targets here; tests/check_scenarios.c
# holds the detectors to tests/scenarios/baseline.tsv (the ratchet).
# Exit status: 0 every scenario scored (floors met or not), 2 a scenario
# could not be simulated or scored (a tooling error).
set -u
bin=${1:-build/bin}
dir=$(dirname "$0")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sm-eval-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 2' INT TERM

: >"$tmp/lines"
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
    grep '^score\.' "$tmp/out" | sed "s/^/$name /" >>"$tmp/lines"
    rm -f "$tmp/$name.rec"
done

if [ "$n" -eq 0 ]; then
    echo "make eval: no scenarios in $dir (*.json)"
    exit 0
fi

# FILE score.<name>.<type>.<figure> value unit  ->  a row per FILE x type
awk '
BEGIN {
    # summed over scenarios, per type ("all" included)
    split("must matched episodes false_alarms flaps forbidden unresolved severity_checked severity_ok", C, " ")
}
{
    split($2, k, ".")
    t = k[3]; fig = k[4]
    if (fig == "not_built") { nb[t] += $3; next }
    row = $1 SUBSEP t
    if (!(row in seen)) { seen[row] = 1; order[++rows] = row }
    v[row, fig] = $3
    if (!(t in tseen)) { tseen[t] = 1; torder[++ntypes] = t }
    for (i in C) if (fig == C[i]) S[t, fig] += $3
    if ((fig == "delay_max" || fig == "resolve_max") && (!((t, fig) in S) || $3 > S[t, fig]))
        S[t, fig] = $3
}
function has(row, f) { return (row, f) in v }
function frac(a, b) { return b == 0 ? "-" : sprintf("%d/%d %.2f", a, b, a / b) }
function s1(x) { return sprintf("%.1f", x) }
function mm(row, a, b) { return has(row, a) ? s1(v[row, a]) "/" s1(v[row, b]) : "-" }
function put(scen, t, rec, prec, fl, dl, rs, sev, fb, fa) {
    printf fmt, scen, t, rec, prec, fl, dl, rs, sev, fb, fa
}
END {
    if (rows == 0) exit
    fmt = "%-24s %-18s %-10s %-11s %5s  %-11s %-11s %-10s %6s %6s\n"
    put("scenario", "type", "recall", "precision", "flaps", "delay s", "resolve s", "severity", "forbid", "false")
    put("", "", "", "", "", "med/max", "med/max", "", "", "alarms")
    for (i = 1; i <= rows; i++) {
        r = order[i]; split(r, p, SUBSEP)
        if (p[2] == "all") continue
        put(p[1], p[2], frac(v[r, "matched"], v[r, "must"]),
            frac(v[r, "episodes"] - v[r, "false_alarms"], v[r, "episodes"]),
            v[r, "flaps"], mm(r, "delay_med", "delay_max"),
            mm(r, "resolve_med", "resolve_max"),
            frac(v[r, "severity_ok"], v[r, "severity_checked"]),
            v[r, "forbidden"], v[r, "false_alarms"])
    }
    print ""
    # overall: the bottleneck types in their order, then any other, "all" last
    nk = split("token_exhaustion quota_exceeded slow_agent queue_backlog consensus_timeout", K, " ")
    for (j = 1; j <= nk; j++) { known[K[j]] = 1; if (K[j] in tseen) list[++nl] = K[j] }
    for (j = 1; j <= ntypes; j++)
        if (!(torder[j] in known) && torder[j] != "all") list[++nl] = torder[j]
    list[++nl] = "all"
    for (j = 1; j <= nl; j++) {
        t = list[j]
        dmax = ((t, "delay_max") in S) ? "-/" s1(S[t, "delay_max"]) : "-"
        rmax = ((t, "resolve_max") in S) ? "-/" s1(S[t, "resolve_max"]) : "-"
        put("overall", t, frac(S[t, "matched"], S[t, "must"]),
            frac(S[t, "episodes"] - S[t, "false_alarms"], S[t, "episodes"]),
            S[t, "flaps"] + 0, dmax, rmax,
            frac(S[t, "severity_ok"], S[t, "severity_checked"]),
            S[t, "forbidden"] + 0, S[t, "false_alarms"] + 0)
    }
    note = ""
    for (t in nb) note = note sprintf(" %d %s", nb[t], t)
    printf "overall delay/resolve: max over all scenarios (medians are per scenario only)"
    if (note != "") printf "; not built:%s labels (left out)", note
    print ""
    for (j = 1; j <= nl; j++) {
        t = list[j]
        for (i = 1; i <= 9; i++) printf "eval.%s.%s %d count\n", t, C[i], S[t, C[i]]
        if (S[t, "must"] > 0) printf "eval.%s.recall %.4g ratio\n", t, S[t, "matched"] / S[t, "must"]
        if (S[t, "episodes"] > 0) printf "eval.%s.precision %.4g ratio\n", t, (S[t, "episodes"] - S[t, "false_alarms"]) / S[t, "episodes"]
        if (S[t, "severity_checked"] > 0) printf "eval.%s.severity %.4g ratio\n", t, S[t, "severity_ok"] / S[t, "severity_checked"]
        if ((t, "delay_max") in S) printf "eval.%s.delay_max %.4g s\n", t, S[t, "delay_max"]
        if ((t, "resolve_max") in S) printf "eval.%s.resolve_max %.4g s\n", t, S[t, "resolve_max"]
    }
}' "$tmp/lines"

echo
if [ -s "$tmp/gap" ]; then
    echo "gap to the target floors (\"floor\" in each scenario file):"
    sed 's/^/  /' "$tmp/gap"
fi
echo "make eval: $n scenarios, $((n - failed)) scored, $missed below their target floor, $failed failed"
[ "$failed" -gt 0 ] && exit 2
exit 0
