#!/usr/bin/env bash
# Where a factor-3 consensus write spends its CPU, thread by thread: a 3-node
# `cluster up` (defaults), a consensus keyspace `rep` (prefix r:, factor 3),
# `statekv bench` with CLIENTS closed-loop clients (a warm-up run first, then
# REQUESTS measured puts of VALUE_SIZE bytes), and
# around the measured run each thread's context switches (voluntary and not,
# /proc/PID/task/TID/status) and CPU time (utime + stime, .../stat) of the
# three node processes. Threads are named (core/thread_name.h: io-N,
# data-loop, metadata-raft, wal-sync, store-sync, forward, ...); the
# figures of a name are summed over the three nodes and divided by the puts.
# On a machine with few cores the CPU per write is what bounds the throughput
# (bench/README.md, compare_consensus.sh).
#
# STATEKV_ROUTE=leader (default): each client holds a connection to every node
# and sends each SET to the leader of the key's group (`statekv bench --route
# leader`, as a smart Redis Cluster client does), so no node forwards;
# STATEKV_ROUTE=spread: client c on node c % 3, and the 2/3 of the SETs that
# reach a node not leading their group are forwarded to the leader. The
# measured run includes the bench's LOCATE of each of the 1000 keys (before its
# clock starts, one pipelined pass: a few ms of the nodes' CPU).
#
#   bench/consensus_threads.sh
#   CLIENTS=32 REQUESTS=20000 bench/consensus_threads.sh
#   STATEKV_ROUTE=spread bench/consensus_threads.sh
#   PIPELINE=16 bench/consensus_threads.sh     # each client 16 SETs at a time
#
# Run by hand, not in CI: about 20 seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

STATEKV_BIN=${STATEKV_BIN:-build/statekv}
CLIENTS=${CLIENTS:-16}
REQUESTS=${REQUESTS:-10000}
VALUE_SIZE=${VALUE_SIZE:-256}
PIPELINE=${PIPELINE:-1}  # SETs each client sends at a time (statekv bench --pipeline)
STATEKV_ROUTE=${STATEKV_ROUTE:-leader}
case "$STATEKV_ROUTE" in leader | spread) ;; *) echo "STATEKV_ROUTE must be leader or spread" >&2; exit 2 ;; esac
[[ -x "$STATEKV_BIN" ]] || { echo "no statekv binary at $STATEKV_BIN (run scripts/build.sh)" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "missing redis-cli" >&2; exit 1; }
export STATEKV_CLUSTER_SECRET=${STATEKV_CLUSTER_SECRET:-bench-$RANDOM$RANDOM$RANDOM}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/statekv-threads-bench-XXXXXX")
PIDS=()
cleanup() {  # by pid: SIGTERM, then SIGKILL what is left after 10 s
  "$STATEKV_BIN" cluster down --data "$WORK/statekv" >/dev/null 2>&1 || true
  for f in "$WORK"/statekv/node*/pid; do [[ -f $f ]] && PIDS+=("$(cat "$f")"); done
  stop_pids "${PIDS[@]}"  # bench/lib.sh
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# RESP ports P..P+2, peer ports P+10000..P+10002: all six free and below 32768.
while :; do
  base=$((12000 + RANDOM % 7000))
  ok=1
  for p in $base $((base + 1)) $((base + 2)) $((base + 10000)) $((base + 10001)) $((base + 10002)); do
    port_free "$p" || ok=0
  done
  ((ok)) && break
done
ENDPOINTS="127.0.0.1:$base,127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))"

"$STATEKV_BIN" cluster up --nodes 3 --base-port "$base" --data "$WORK/statekv" --detach \
  >"$WORK/cluster.log" 2>&1 ||
  { echo "statekv cluster up failed:" >&2; tail -n 20 "$WORK/cluster.log" >&2; exit 1; }
for f in "$WORK"/statekv/node*/pid; do PIDS+=("$(cat "$f")"); done
redis-cli -p "$base" KEYSPACE CREATE rep PREFIX r: REPLICATION consensus FACTOR 3 >/dev/null
wait_writable r:probe $base $((base + 1)) $((base + 2))  # bench/lib.sh
wait_rep_leaders_settled $base $((base + 1)) $((base + 2))  # bench/lib.sh

bench() {  # requests [--json]
  "$STATEKV_BIN" bench --target resp --endpoints "$ENDPOINTS" --key-prefix r: \
    --route "$STATEKV_ROUTE" --clients "$CLIENTS" --requests "$1" --value-size "$VALUE_SIZE" \
    --pipeline "$PIPELINE" --warmup 0 "${@:2}"
}
snapshot() {  # one line per thread: name switches cpu_ticks
  for pid in "${PIDS[@]}"; do
    for t in /proc/"$pid"/task/*; do
      [[ -r $t/status ]] || continue
      printf '%s %s %s\n' "$(tr ' ' _ <"$t/comm")" \
        "$(awk '/ctxt_switches/ { n += $2 } END { print n }' "$t/status")" \
        "$(awk '{ print $14 + $15 }' "$t/stat")"
    done
  done
}

bench 2000 >/dev/null 2>&1 || true  # warm-up: connections, leaders settled
snapshot >"$WORK/before"
result=$(bench "$REQUESTS" --json 2>/dev/null | grep '^{' | tail -n 1)
snapshot >"$WORK/after"
[[ -n $result ]] || { echo "the benchmark gave no result" >&2; exit 1; }
field() { grep -o "\"$1\":[0-9.]*" <<<"$result" | cut -d: -f2; }
printf '%s clients (route %s, pipeline %s), %s puts of %s bytes: %.0f puts/s, p50 %.2f ms, p99 %.2f ms (load average %s)\n\n' \
  "$CLIENTS" "$STATEKV_ROUTE" "$PIPELINE" "$REQUESTS" "$VALUE_SIZE" "$(field ops_per_sec)" "$(field p50_ms)" "$(field p99_ms)" \
  "$(cut -d' ' -f1-3 /proc/loadavg)"

# Threads are matched by position (same processes, same threads: none start
# or stop during a run); names sum over the three nodes.
TICK_US=$((1000000 / $(getconf CLK_TCK)))
echo "| thread (3 nodes) | context switches per put | CPU us per put |"
echo "|---|---:|---:|"
# Busiest first; threads that did (next to) nothing left out.
paste "$WORK/before" "$WORK/after" | awk -v n="$REQUESTS" -v tick="$TICK_US" '
  $1 == $4 { cs[$1] += $5 - $2; cpu[$1] += ($6 - $3) * tick }
  END {
    for (k in cs) if (cs[k] / n >= 0.01 || cpu[k] / n >= 0.5)
      printf "%f | %s | %.2f | %.1f |\n", cpu[k] / n, k, cs[k] / n, cpu[k] / n
  }' | sort -rn | cut -d' ' -f2-
paste "$WORK/before" "$WORK/after" | awk -v n="$REQUESTS" -v tick="$TICK_US" '
  $1 == $4 { tcs += $5 - $2; tcpu += ($6 - $3) * tick }
  END { printf "| all | %.2f | %.1f |\n", tcs / n, tcpu / n }'
