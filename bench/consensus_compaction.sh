#!/usr/bin/env bash
# Consensus writes as the data grows: what log compaction costs. For each
# binary in BINS (one after the other, fresh data each time), a local 3-node
# cluster on RocksDB (the default keyspace: 3 raft groups of factor 3), then
# redis-benchmark SETs on random keys of a KEYS-key space through node 1:
#   load:   LOAD SETs into the empty cluster (the keyspace fills up as it runs)
#   steady: N SETs more, with the keyspace full
# Reports per phase the throughput, p99 and max latency, and at the end the
# write-ahead log's and the store's size on node 1. Run by hand, not in CI
# (bench/README.md, docs/replication.md "Compaction without copying the shard").
#
#   bench/consensus_compaction.sh                                  # build/statekv
#   BINS="build/statekv /tmp/statekv.before" bench/consensus_compaction.sh
#   KEYS=1000000 LOAD=1000000 N=200000 bench/consensus_compaction.sh
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
  rm -rf "$WORK"
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

printf '%-28s | %-34s | %-34s | %s\n' "binary" "load: SET/s p99 max (ms)" \
  "steady: SET/s p99 max (ms)" "node 1: wal, store"
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
  printf '%-28s | %-34s | %-34s | %s\n' "$bin" "$load" "$steady" "$sizes"
  "$bin" cluster down --data "$WORK/data" >/dev/null 2>&1 || true
  CURRENT=""
done
