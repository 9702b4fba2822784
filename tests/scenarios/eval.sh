#!/bin/sh
# Scores every scenario in tests/scenarios/ and prints one table:
#   make eval          (runs: sh tests/scenarios/eval.sh build/bin)
# Each scenario runs `swarm-medic score --scenario FILE` offline through the
# worker pipeline; its `score.<scenario>.<type>.<figure> value unit` lines
# are gathered into rows of scenario x type. The figures are defined in
# tests/scenarios/README.md.
#
# Exit status: 0 every floor met (or scenario support is not built in yet:
# then it says what is missing), 1 a scenario missed a floor, 2 a scenario
# could not be scored.
set -u
bin=${1:-build/bin}
dir=$(dirname "$0")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sm-eval-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

: >"$tmp/lines"
n=0; missed=0; failed=0; unsupported=0
for f in "$dir"/*.json; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    name=$(basename "$f" .json)
    "$bin/swarm-medic" score --scenario "$f" --log-level=error \
        >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -eq 2 ] && grep -q "scenario support needs" "$tmp/err"; then
        unsupported=$((unsupported + 1))
        continue
    fi
    case $rc in
    0) ;;
    1) missed=$((missed + 1)); grep '^floor .*MISSED' "$tmp/out" | sed "s/^/$name: /" ;;
    *) failed=$((failed + 1)); sed "s/^/$name: /" "$tmp/err" ;;
    esac
    grep '^score\.' "$tmp/out" | sed "s/^/$name /" >>"$tmp/lines"
done

if [ "$n" -eq 0 ]; then
    echo "make eval: no scenarios in $dir (*.json)"
    exit 0
fi
if [ "$unsupported" -gt 0 ]; then
    echo "make eval: $unsupported of $n scenarios not scored: swarm-medic score --scenario"
    echo "  needs the simulator's scenario loader (worker/sim/scenario.h) wired into"
    echo "  the score command (sm_score_cli.scenario_open, see worker/tools/score.h)."
fi

# FILE score.<scenario>.<type>.<figure> value unit  ->  a row per FILE, type
awk '
{
    split($2, k, ".")
    row = $1 SUBSEP k[3]
    if (!(row in seen)) { seen[row] = 1; order[++rows] = row }
    v[row, k[4]] = ($4 == "s") ? sprintf("%.1f", $3) : \
                   ($4 == "ratio") ? sprintf("%.2f", $3) : $3
}
function g(row, f) { return ((row, f) in v) ? v[row, f] : "-" }
function mm(row, a, b) { return g(row, a) "/" g(row, b) }
END {
    if (rows == 0) exit
    fmt = "%-24s %-18s %-7s %-9s %5s  %-13s %-13s %5s  %-8s %6s\n"
    printf fmt, "scenario", "type", "recall", "precision", "flaps", \
        "delay s", "resolve s", "unres", "severity", "forbid"
    printf "%-24s %-18s %-7s %-9s %5s  %-13s %s\n", "", "", "", "", "", "med/max", "med/max"
    for (i = 1; i <= rows; i++) {
        split(order[i], p, SUBSEP)
        if (p[2] == "failure" || p[2] == "prediction") continue
        printf fmt, p[1], p[2], g(order[i], "recall"), g(order[i], "precision"),
            g(order[i], "flaps"), mm(order[i], "delay_med", "delay_max"),
            mm(order[i], "resolve_med", "resolve_max"), g(order[i], "unresolved"),
            g(order[i], "severity"), g(order[i], "forbidden")
    }
}' "$tmp/lines"

scored=$((n - unsupported))
echo "make eval: $scored of $n scenarios scored, $missed missed a floor, $failed failed"
[ "$failed" -gt 0 ] && exit 2
[ "$missed" -gt 0 ] && exit 1
exit 0
