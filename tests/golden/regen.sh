#!/bin/sh
# Regenerates the golden recordings and their expected conclusions:
#   make golden        (runs: sh tests/golden/regen.sh build/bin)
# Each recording is made by swarm-sim without a bus (--record), seeded, so
# the same build writes the same bytes. Review the .jsonl diff before
# committing: it is the behaviour change.
set -eu
bin=${1:-build/bin}
dir=$(dirname "$0")
gen() {
    name=$1; shift
    "$bin/swarm-sim" --quiet --record "$dir/$name.rec" "$@"
    "$bin/swarm-medic" replay "$dir/$name.rec" --out-json "$dir/$name.jsonl" --log-level=error
}
gen baseline   --seed 11 --swarms 1 --agents 8 --rate 40 --duration 3m
gen demo       --seed 12 --swarms 1 --agents 8 --rate 40 --demo
gen two-swarms --seed 13 --swarms 2 --agents 6 --rate 60 --duration 5m \
               --fault token:1:60s-150s --fault consensus:0:90s-220s
ls -l "$dir"
