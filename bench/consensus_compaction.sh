#!/usr/bin/env bash
# Consensus writes as the data grows: what log compaction costs. For each
# binary in BINS (one after the other, fresh data each time), a local 3-node
# cluster on RocksDB (the default keyspace: 3 raft groups of factor 3), then
# redis-benchmark SETs on random keys of a KEYS-key space through node 1:
#   load:   LOAD SETs into the empty cluster (the keyspace fills up as it runs)
#   steady: N SETs more, with the keyspace full
#   restart: node 2 killed (SIGKILL) and started again (`cluster restart-missing`);
#            seconds until every group on it has applied what the group had
#            committed at the kill (its store and log, then what it missed)
# Reports per phase the throughput, p99 and max latency, then the write-ahead
# log's and the store's size on node 1, then the restart's seconds. Run by hand, not in CI
# (bench/README.md, docs/replication.md "Compaction without copying the shard").
#
#   bench/consensus_compaction.sh                                  # build/statekv
#   BINS="build/statekv /tmp/statekv.before" bench/consensus_compaction.sh
#   KEYS=1000000 LOAD=1000000 N=200000 bench/consensus_compaction.sh
#   KEEP=1 bench/consensus_compaction.sh      # keep the last binary's data and logs
set -euo pipefail
cd "$(dirname "$0")/.."

BINS=${BINS:-build/statekv}
KEYS=${KEYS:-1000000}
LOAD=${LOAD:-1000000}
N=${N:-200000}
LIMIT=${LIMIT:-600}  # seconds a phase may take before it is cut off
for tool in redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/statekv-consensus-compaction-XXXXXX")
CURRENT=""
cleanup() {
  if [[ -n "$CURRENT" ]]; then
    "$CURRENT" cluster down --data "$WORK/data" >/dev/null 2>&1 || true
    for n in 1 2 3; do
      [[ -f "$WORK/data/node$n/pid" ]] && kill -KILL "$(cat "$WORK/data/node$n/pid")" 2>/dev/null || true
    done
  fi
  if [[ -n "${KEEP:-}" ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM

# One phase: "<requests/s> <p99 ms> <max ms>", or "cut-off-after-<s>s <done>".
phase() {
  local port=$1 n=$2
  local out="$WORK/phase.txt"
  local start=$SECONDS
  if ! timeout "$LIMIT" redis-benchmark -p "$port" -P 16 -c 50 -n "$n" -r "$KEYS" -t set \
    >"$out" 2>&1; then
    local done_so_far
    done_so_far=$(tr '\r' '\n' <"$out" | grep -o 'overall: [0-9.]*' | tail -1 | awk '{print $2}')
    echo "cut-off-after-$((SECONDS - start))s overall-${done_so_far:-0}/s - -"
    return
  fi
  local rps lat
  rps=$(tr '\r' '\n' <"$out" | awk '/throughput summary/ {print $3}')
  # The line after "avg min p50 p95 p99 max".
  lat=$(tr '\r' '\n' <"$out" | awk '/avg +min +p50/ {getline; print $5, $6}')
  echo "$rps $lat"
}

# "group=commit" for every group a node reports (INFO replication).
commits() {
  redis-cli -p "$1" info replication 2>/dev/null | tr -d '\r' |
    sed -n 's/^statekv_group_\([0-9]*\):.*,commit=\([0-9]*\),applied=\([0-9]*\),.*/\1 \2 \3/p'
}

# Node 2 SIGKILLed and restarted: seconds until it has applied, in every group,
# what the group had committed when it was killed.
restart() {
  local bin=$1 base=$2
  declare -A want=()
  local g c a
  while read -r g c a; do
    [[ -z "${want[$g]:-}" || "$c" -gt "${want[$g]}" ]] && want[$g]=$c
  done < <(commits "$base"; commits "$((base + 2))")
  kill -KILL "$(cat "$WORK/data/node2/pid")"
  local start=${EPOCHREALTIME/./}  # microseconds
  if ! "$bin" cluster restart-missing --data "$WORK/data" >"$WORK/restart.log" 2>&1; then
    echo "restart-missing-failed: $(tail -1 "$WORK/restart.log" | cut -c1-60)"
    return
  fi
  local ready=${EPOCHREALTIME/./}
  while :; do
    local behind=0
    declare -A have=()
    while read -r g c a; do have[$g]=$a; done < <(commits "$((base + 1))")
    for g in "${!want[@]}"; do
      [[ -n "${have[$g]:-}" && "${have[$g]}" -ge "${want[$g]}" ]] || behind=1
    done
    ((behind == 0)) && break
    if ((${EPOCHREALTIME/./} - start > LIMIT * 1000000)); then
      echo "not-caught-up-after-${LIMIT}s"
      return
    fi
    sleep 0.05
  done
  local done_at=${EPOCHREALTIME/./}
  awk -v d=$((done_at - start)) -v r=$((ready - start)) \
    'BEGIN { printf "%.2f s (started %.2f s)\n", d / 1e6, r / 1e6 }'
}

printf '%-28s | %-34s | %-34s | %-20s | %s\n' "binary" "load: SET/s p99 max (ms)" \
  "steady: SET/s p99 max (ms)" "node 1: wal, store" "node 2 killed: caught up after"
for bin in $BINS; do
  [[ -x "$bin" ]] || { echo "no statekv binary at $bin" >&2; exit 1; }
  rm -rf "$WORK/data"
  CURRENT=$bin
  base=$((10000 + RANDOM % 12000))  # peer ports (+10000) stay below the ephemeral range
  "$bin" cluster up --nodes 3 --base-port "$base" --data "$WORK/data" --engine rocksdb \
    --detach >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; exit 1; }
  # Every group elects a leader.
  redis-benchmark -p "$base" -P 16 -c 50 -n 20000 -r "$KEYS" -t set -q >/dev/null 2>&1 || true
  load=$(phase "$base" "$LOAD")
  steady=$(phase "$base" "$N")
  sizes="$(du -sh "$WORK/data/node1/wal" | cut -f1), $(du -sh "$WORK/data/node1/rocksdb" | cut -f1)"
  restarted=$(restart "$bin" "$base")
  printf '%-28s | %-34s | %-34s | %-20s | %s\n' "$bin" "$load" "$steady" "$sizes" "$restarted"
  "$bin" cluster down --data "$WORK/data" >/dev/null 2>&1 || true
  CURRENT=""
done
