#!/bin/sh
# Runs the Check suites in $1 (build/bin), optionally only those named after
# it, and prints one closing line "N passed, N failed" over all of them.
# Exits non-zero if any suite failed or crashed.
set -u
bin=${1:-build/bin}
shift 2>/dev/null || true
if [ $# -gt 0 ]; then
    suites=""
    for s in "$@"; do suites="$suites $bin/check_$s"; done
else
    suites=$(ls "$bin"/check_* 2>/dev/null)
fi
export CK_FORK=yes
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-30}
passed=0; failed=0; bad=0; why=""
for t in $suites; do
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out"
    # Check's failure lines "file:line:F|E:case:test:i: message", kept to be
    # repeated last, where a log cut to its tail still shows them.
    why="$why$(printf '%s\n' "$out" | grep -E '^[^:]+:[0-9]+:[FE]:' | sed "s|^|${t##*/}: |")
"
    # Check's summary: "NN%: Checks: C, Failures: F, Errors: E"
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ' | tail -n 1)
    if [ -z "$line" ]; then
        echo "$t: no Check summary (exit $rc)"; why="$why$t: no Check summary (exit $rc)
"; bad=$((bad + 1)); failed=$((failed + 1)); continue
    fi
    c=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
    f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
    e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
    passed=$((passed + c - f - e)); failed=$((failed + f + e))
    [ "$rc" -ne 0 ] && [ $((f + e)) -eq 0 ] && { echo "$t exited $rc"; why="$why$t exited $rc
"; failed=$((failed + 1)); }
done
if [ "$failed" -ne 0 ]; then
    echo "failed:"; printf '%s' "$why" | grep -v '^$'
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$bad" -eq 0 ]
