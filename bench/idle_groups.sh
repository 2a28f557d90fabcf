#!/usr/bin/env bash
# What idle replica groups cost a node: a local 3-node cluster (memory engine),
# then a range keyspace of NGROUPS consensus shards (factor 3, so every node
# holds a replica of every group), left idle. Reports each node's CPU use over
# MEASURE_S seconds (utime + stime from /proc, as a share of one core), its
# resident memory and threads, before and after the groups exist, and how many
# groups are quiesced. Run by hand, not in CI (bench/README.md).
#
#   bench/idle_groups.sh                      # 1000 groups, 10 s settle, 10 s measured
#   NGROUPS=100 bench/idle_groups.sh
set -euo pipefail
cd "$(dirname "$0")/.."

STATEKV_BIN=${STATEKV_BIN:-build/statekv}
NGROUPS=${NGROUPS:-1000}
SETTLE_S=${SETTLE_S:-10}
MEASURE_S=${MEASURE_S:-10}
[[ -x "$STATEKV_BIN" ]] || { echo "no statekv binary at $STATEKV_BIN (run scripts/build.sh)" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "missing redis-cli" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/statekv-idle-groups-XXXXXX")
PIDS=()
cleanup() {
  "$STATEKV_BIN" cluster down --data "$WORK/data" >/dev/null 2>&1 || true
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

base=$((10000 + RANDOM % 12000))  # peer ports (+10000) stay below the ephemeral range
"$STATEKV_BIN" cluster up --nodes 3 --base-port "$base" --data "$WORK/data" --engine memory \
  --detach >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; exit 1; }
for n in 1 2 3; do PIDS+=("$(cat "$WORK/data/node$n/pid")"); done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
threads() { awk '/^Threads/ {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

# CPU share of one core per node over MEASURE_S seconds.
measure() {
  local -a before
  for pid in "${PIDS[@]}"; do before+=("$(ticks "$pid")"); done
  sleep "$MEASURE_S"
  local i=0
  for pid in "${PIDS[@]}"; do
    local after
    after=$(ticks "$pid")
    awk -v d=$((after - before[i])) -v hz="$hz" -v s="$MEASURE_S" -v n=$((i + 1)) \
      -v rss="$(rss_kb "$pid")" -v th="$(threads "$pid")" \
      'BEGIN { printf "  node %d: %5.2f%% of a core, RSS %d KB, %d threads\n", n, 100 * d / hz / s, rss, th }'
    i=$((i + 1))
  done
}

sleep 2
echo "no replica groups (idle, ${MEASURE_S} s):"
measure | tee "$WORK/before.txt"

splits=$(seq 1 $((NGROUPS - 1)) | awk '{printf "%s%06d", (NR > 1 ? "," : ""), $1}')
redis-cli -p "$base" KEYSPACE CREATE idle PREFIX i: PARTITIONER range SPLITS "$splits" \
  REPLICATION consensus FACTOR 3 >"$WORK/create.txt"
grep -q OK "$WORK/create.txt" || { cat "$WORK/create.txt" >&2; exit 1; }
for port in $base $((base + 1)) $((base + 2)); do
  for _ in $(seq 300); do
    n=$(redis-cli -p "$port" INFO replication | tr -d '\r' | awk -F: '/^statekv_groups:/ {print $2}')
    [[ "${n:-0}" -ge "$NGROUPS" ]] && break
    sleep 0.2
  done
done
# One write per group wakes every group once, then they go quiet again.
for i in $(seq 0 $((NGROUPS - 1))); do printf 'SET i:%06d x\n' "$i"; done |
  redis-cli -p "$base" >/dev/null
sleep "$SETTLE_S"
quiesced=$(redis-cli -p "$base" INFO replication | tr -d '\r' | grep -c 'quiesced=1' || true)
echo "$NGROUPS groups of 3 members (idle, after ${SETTLE_S} s; node 1 sees $quiesced of its groups quiesced):"
measure | tee "$WORK/after.txt"
paste <(awk '{print $8}' "$WORK/before.txt") <(awk '{print $8}' "$WORK/after.txt") |
  awk -v g="$NGROUPS" '{ printf "  node %d: %.1f KB of RSS per group\n", NR, ($2 - $1) / g }'
