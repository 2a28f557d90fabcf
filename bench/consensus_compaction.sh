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
#   behind:  node 2 killed again, BEHIND SETs while it is down (enough that the
#            others compact their logs past it), then started again: it catches
#            up from snapshots of the leaders' shards. Seconds until it has applied
#            what its groups had committed at its start, the snapshots it
#            installed, node 1's peak RSS growth meanwhile, and the max latency
#            of SETs through node 1 meanwhile (redis-benchmark -P 1 -c 4)
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
BEHIND=${BEHIND:-200000}
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

# WANT: each group's commit index as nodes 1 and 3 report it now.
declare -A WANT=()
note_commits() {
  WANT=()
  local g c a
  while read -r g c a; do
    [[ -z "${WANT[$g]:-}" || "$c" -gt "${WANT[$g]}" ]] && WANT[$g]=$c
  done < <(commits "$1"; commits "$(($1 + 2))")
}
# Succeeds while node 2 has not applied WANT in every group.
node2_behind() {
  local g c a
  declare -A have=()
  while read -r g c a; do have[$g]=$a; done < <(commits "$(($1 + 1))")
  for g in "${!WANT[@]}"; do
    [[ -n "${have[$g]:-}" && "${have[$g]}" -ge "${WANT[$g]}" ]] || return 0
  done
  return 1
}

# Node 2 SIGKILLed and restarted: seconds until it has applied, in every group,
# what the group had committed when it was killed.
restart() {
  local bin=$1 base=$2
  note_commits "$base"
  kill -KILL "$(cat "$WORK/data/node2/pid")"
  local start=${EPOCHREALTIME/./}  # microseconds
  if ! "$bin" cluster restart-missing --data "$WORK/data" >"$WORK/restart.log" 2>&1; then
    echo "restart-missing-failed: $(tail -1 "$WORK/restart.log" | cut -c1-60)"
    return
  fi
  local ready=${EPOCHREALTIME/./}
  while node2_behind "$base"; do
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

# Node 2 killed, BEHIND SETs, node 2 back: see the header.
behind() {
  local bin=$1 base=$2
  kill -KILL "$(cat "$WORK/data/node2/pid")"
  phase "$base" "$BEHIND" >/dev/null
  sleep 1  # a compaction pass (every 500 ms) behind the last writes
  note_commits "$base"
  local pid1 rss0 rss peak
  pid1=$(cat "$WORK/data/node1/pid")
  rss0=$(awk '/VmRSS/ {print $2}' "/proc/$pid1/status")
  peak=$rss0
  redis-benchmark -p "$base" -P 1 -c 4 -n 100000000 -r "$KEYS" -t set >"$WORK/during.txt" 2>&1 &
  local during=$!
  local start=${EPOCHREALTIME/./}
  "$bin" cluster restart-missing --data "$WORK/data" >"$WORK/restart.log" 2>&1 ||
    { kill "$during"; echo "restart-missing-failed"; return; }
  while node2_behind "$base"; do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid1/status")
    ((rss > peak)) && peak=$rss
    if ((${EPOCHREALTIME/./} - start > LIMIT * 1000000)); then
      kill "$during"
      echo "not-caught-up-after-${LIMIT}s"
      return
    fi
    sleep 0.05
  done
  local done_at=${EPOCHREALTIME/./}
  kill -TERM "$during" 2>/dev/null; wait "$during" 2>/dev/null || true
  local max installed
  max=$(tr '\r' '\n' <"$WORK/during.txt" | grep -o 'avg_msec=[0-9.]*' | cut -d= -f2 |
    sort -n | tail -1)
  installed=$(redis-cli -p "$((base + 1))" info replication | tr -d '\r' |
    grep -o 'snapshots_installed=[0-9]*' | cut -d= -f2 | awk '{ n += $1 } END { print n + 0 }')
  awk -v d=$((done_at - start)) -v p=$((peak - rss0)) -v i="${installed:-?}" -v m="${max:-?}" \
    'BEGIN { printf "%.2f s, %s snapshots, node 1 RSS +%.0f MB, SET avg ms (worst second) %s\n", d / 1e6, i, p / 1024, m }'
}

printf '%-28s | %-34s | %-34s | %-20s | %-26s | %s\n' "binary" "load: SET/s p99 max (ms)" \
  "steady: SET/s p99 max (ms)" "node 1: wal, store" "node 2 killed: caught up after" \
  "node 2 behind: caught up after"
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
  behind_after=$(behind "$bin" "$base")
  printf '%-28s | %-34s | %-34s | %-20s | %-26s | %s\n' "$bin" "$load" "$steady" "$sizes" \
    "$restarted" "$behind_after"
  "$bin" cluster down --data "$WORK/data" >/dev/null 2>&1 || true
  CURRENT=""
done
