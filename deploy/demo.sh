#!/bin/sh
# The local demo: a nats-server on a free loopback port, swarm-medic on a
# fresh LMDB directory, `swarm-medic watch` printing its conclusions, and
# swarm-sim playing ~11 minutes (event time) of two swarms with the five
# faults injected one after another. Prints what the worker concluded and
# the worker's own figures (events/s, peak RSS, LMDB size). Then the closed
# loop: a healing worker and swarm-sim --coordinator on deploy/heal-demo.json.
set -eu
bin=${1:-build/bin}
here=$(cd "$(dirname "$0")" && pwd)
# Worker flags that turn healing on for the loop (the README's healing
# settings); override to try others.
SM_DEMO_HEAL_ARGS=${SM_DEMO_HEAL_ARGS:---autonomy=resource_rebalance=act}
work=$(mktemp -d "${TMPDIR:-/tmp}/swarm-medic-demo.XXXXXX")
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

nats-server -a 127.0.0.1 -p -1 --ports_file_dir "$work" >"$work/nats.log" 2>&1 &
nats_pid=$!; pids="$nats_pid"
port=""
for _ in $(seq 1 200); do
    f="$work/nats-server_$nats_pid.ports"
    if [ -s "$f" ]; then port=$(grep -o 'nats://[^"]*' "$f" | head -n1 | sed 's/.*://'); fi
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || { echo "demo: nats-server did not start; see $work/nats.log"; exit 1; }
url="nats://127.0.0.1:$port"

echo "== nats-server on $url, LMDB in $work/data"
"$bin/swarm-medic" --nats-url="$url" --store-dir="$work/data" --stats-interval=0 \
    >"$work/worker.log" 2>&1 &
worker_pid=$!; pids="$pids $worker_pid"
"$bin/swarm-medic" watch --nats-url="$url" --log-level=warn >"$work/watch.out" 2>&1 &
watch_pid=$!; pids="$pids $watch_pid"
for _ in $(seq 1 200); do
    grep -q 'event=subscribed' "$work/worker.log" 2>/dev/null && grep -q watching "$work/watch.out" 2>/dev/null && break
    sleep 0.05
done

echo "== swarm-sim: 2 swarms x 20 agents, the five faults in turn on swarm s0"
"$bin/swarm-sim" --url="$url" --demo --swarms 2 --agents 20 --rate 1000 --pace fast
sleep 1
kill -TERM "$worker_pid"; wait "$worker_pid" || true
kill -TERM "$watch_pid"; wait "$watch_pid" || true

echo
echo "== what swarm-medic concluded (from the bus, event time UTC)"
grep -v '^watching' "$work/watch.out" || echo "(nothing)"
echo
echo "== worker figures"
grep 'event=stopped' "$work/worker.log" | tr ' ' '\n' | \
    grep -E '^(events|deadletters|conclusions|wall_ms|events_per_s|max_rss_kb|store_used_bytes|store_entries)=' | \
    sed 's/^/  /'
echo "  lmdb_dir_bytes=$(du -sb "$work/data" | cut -f1)"

# The closed loop: a fresh worker that heals (autonomy act), and swarm-sim
# playing deploy/heal-demo.json as the swarm AND its coordinator: it
# carries out each HealingCommand on the world it plays and publishes the
# HealingOutcome. watch shows fault -> detection -> command -> outcome ->
# verdict -> resolved.
echo
echo "== the closed loop: deploy/heal-demo.json (a stuck agent, a crash, a token burn, a lost quorum), swarm-sim --coordinator"
"$bin/swarm-medic" --nats-url="$url" --store-dir="$work/data-heal" --stats-interval=0 \
    $SM_DEMO_HEAL_ARGS >"$work/worker-heal.log" 2>&1 &
worker_pid=$!; pids="$pids $worker_pid"
"$bin/swarm-medic" watch --nats-url="$url" --log-level=warn >"$work/watch-heal.out" 2>&1 &
watch_pid=$!; pids="$pids $watch_pid"
for _ in $(seq 1 200); do
    grep -q 'event=subscribed' "$work/worker-heal.log" 2>/dev/null && grep -q watching "$work/watch-heal.out" 2>/dev/null && break
    sleep 0.05
done
"$bin/swarm-sim" --url="$url" --scenario "$here/heal-demo.json" --coordinator --pace 20
sleep 1
kill -TERM "$worker_pid"; wait "$worker_pid" || true
kill -TERM "$watch_pid"; wait "$watch_pid" || true
echo
echo "== the loop, as watch printed it (FAILURE raised, HEAL, OUTCOME, VERDICT, FAILURE resolved)"
grep -E ' (FAILURE|HEAL|OUTCOME|VERDICT) ' "$work/watch-heal.out" || echo "(nothing)"
echo "(logs in $work)"
