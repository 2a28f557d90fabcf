#!/usr/bin/env bash
# Issue 11 item 6: redis-benchmark's collection tests against redis-server and
# statekv (memory engine) side by side in one run, -P 1 and -P 16, several
# rounds, and the median requests per second of each with the ratio statekv/redis.
# Run by hand, not in CI; it wants an idle machine (on a loaded one, say so).
#
#   bench/compare_redis_types.sh                       # build/statekv, 3 rounds
#   ROUNDS=5 REQUESTS=100000 bench/compare_redis_types.sh
#   EXTRA_BIN=/tmp/statekv-old bench/compare_redis_types.sh  # a second statekv too
#   EXTRA_BIN=build/statekv EXTRA_IO_THREADS=2 bench/compare_redis_types.sh
#     # the same build with two I/O threads beside the one-thread run
#
# ZPOPMIN runs apart, after its own ZADD of ZPOP_REQUESTS: a statekv sorted set has
# no score index yet (docs/data-types.md, "Not yet"), so each pop reads the set.
set -euo pipefail
cd "$(dirname "$0")/.."

STATEKV_BIN=${STATEKV_BIN:-build/statekv}
EXTRA_BIN=${EXTRA_BIN:-}
IO_THREADS=${IO_THREADS:-1}
EXTRA_IO_THREADS=${EXTRA_IO_THREADS:-$IO_THREADS}
REQUESTS=${REQUESTS:-50000}
ZPOP_REQUESTS=${ZPOP_REQUESTS:-2000}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-50}
TESTS=${TESTS:-lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,lrange_100}
for tool in redis-server redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null || { echo "missing $tool (scripts/deps.sh installs it)" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/statekv-types-XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
wait_ready() {
  for _ in $(seq 300); do
    [[ "$(redis-cli -p "$1" ping 2>/dev/null)" == PONG ]] && return 0
    sleep 0.1
  done
  echo "server on port $1 did not start" >&2
  exit 1
}

declare -A PORT_OF
NAMES=(redis statekv)
PORT_OF[redis]=$(free_port)
redis-server --port "${PORT_OF[redis]}" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$WORK" >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
start_statekv() {  # name bin io-threads
  PORT_OF[$1]=$(free_port)
  # One I/O thread by default: redis-server serves from one thread, redis-benchmark
  # needs a core.
  "$2" server --bind 127.0.0.1 --port "${PORT_OF[$1]}" --engine memory --io-threads "$3" \
    --data "$WORK/$1" >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
}
start_statekv statekv "$STATEKV_BIN" "$IO_THREADS"
if [[ -n "$EXTRA_BIN" ]]; then
  NAMES+=(extra)
  start_statekv extra "$EXTRA_BIN" "$EXTRA_IO_THREADS"
fi
for n in "${NAMES[@]}"; do wait_ready "${PORT_OF[$n]}"; done

RESULTS="$WORK/results.txt"
run() {  # name P tests requests [row to leave out]
  redis-cli -p "${PORT_OF[$1]}" flushall >/dev/null
  redis-benchmark -h 127.0.0.1 -p "${PORT_OF[$1]}" -t "$3" -n "$4" -r 100000 -c "$CLIENTS" \
    -P "$2" --csv 2>/dev/null |
    awk -F'","' -v s="$1" -v p="$2" -v skip="${5:-}" 'NR > 1 { gsub(/"/, "", $1); gsub(/"/, "", $2);
      split($1, t, " "); if (t[1] != skip) print s, p, t[1], $2 }' >>"$RESULTS"
}
echo "redis $(redis-server --version | awk '{print $3}'), statekv $STATEKV_BIN (--io-threads $IO_THREADS)${EXTRA_BIN:+, extra $EXTRA_BIN (--io-threads $EXTRA_IO_THREADS)}; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  for p in 1 16; do
    for n in "${NAMES[@]}"; do
      echo "round $round -P $p $n ..." >&2
      run "$n" "$p" "$TESTS" "$REQUESTS"
      # Its ZADD only fills the sorted set: the ZADD row is the run above.
      run "$n" "$p" zadd,zpopmin "$ZPOP_REQUESTS" ZADD
    done
  done
done
awk -v names="${NAMES[*]}" '
  { key = $3 SUBSEP $2; v[key, $1] = v[key, $1] " " $4; if (!(key in k)) { k[key] = 1; order[n++] = key } }
  function median(s,   a, m, i, j, t) { m = split(s, a, " ");
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
  END { split(names, nm, " ")
    printf "%-10s %3s", "test", "P"; for (i = 1; i in nm; i++) printf " %12s", nm[i]; printf " %8s", "skv/redis"
    if (3 in nm) printf " %9s", "extra/redis"; printf "\n"
    for (i = 0; i < n; i++) { split(order[i], f, SUBSEP); printf "%-10s %3s", f[1], f[2]
      for (j = 1; j in nm; j++) { med[j] = median(v[order[i], nm[j]]); printf " %12.0f", med[j] }
      printf " %8.2f", med[2] / med[1]; if (3 in nm) printf " %9.2f", med[3] / med[1]; printf "\n" } }' "$RESULTS"
echo "(median requests/s over $ROUNDS rounds; -n $REQUESTS, ZPOPMIN and the ZADD before it -n $ZPOP_REQUESTS; -r 100000 -c $CLIENTS; load at the end $(cut -d' ' -f1-3 /proc/loadavg))"
cp "$RESULTS" "${RAW_OUT:-/dev/null}"
