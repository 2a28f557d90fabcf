#!/usr/bin/env bash
# Runs redis-server and statekv side by side on this machine with the same
# redis-benchmark load at matched durability, and prints one table with the
# ratios statekv/redis; then loads 1,000,000 distinct keys (16-byte keys,
# 64-byte values) into each (no persistence) and prints memory per key.
# Run by hand, not in CI: it takes a few minutes and wants an idle machine.
#
#   bench/compare_redis.sh                 # uses build/statekv
#   STATEKV_BIN=path/to/statekv bench/compare_redis.sh
#   REQUESTS=50000 KEYS=100000 bench/compare_redis.sh   # a quicker, smaller run
#   IO_THREADS=0 bench/compare_redis.sh    # statekv with one I/O thread per core
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

STATEKV_BIN=${STATEKV_BIN:-build/statekv}
REQUESTS=${REQUESTS:-200000}
KEYS=${KEYS:-1000000}
CLIENTS=${CLIENTS:-50}
# redis-server serves from one thread and redis-benchmark needs a core of its own;
# on a 2-core machine statekv gets the same one-core budget unless told otherwise
# (IO_THREADS=0: one I/O thread per hardware thread, statekv's default).
IO_THREADS=${IO_THREADS:-1}
for tool in redis-server redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null || { echo "missing $tool (scripts/deps.sh installs it)" >&2; exit 1; }
done
[[ -x "$STATEKV_BIN" ]] || { echo "no statekv binary at $STATEKV_BIN (run scripts/build.sh)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/statekv-bench-XXXXXX")
PIDS=()
cleanup() {
  stop_pids "${PIDS[@]}"  # bench/lib.sh
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# A port on 127.0.0.1 that nothing listens on.
free_port() {
  local p
  while :; do
    # Below the ephemeral range (32768+), where client sockets cannot hold the port.
    p=$((20000 + RANDOM % 12000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

wait_ready() {  # port log-file
  for _ in $(seq 300); do
    [[ "$(redis-cli -p "$1" ping 2>/dev/null)" == PONG ]] && return 0
    sleep 0.1
  done
  echo "server on port $1 did not start within 30 s; its log ($2):" >&2
  tail -n 20 "$2" >&2
  exit 1
}

# start_redis NAME ARGS... / start_statekv NAME ARGS...: sets PORT and PID.
start_redis() {
  local name=$1; shift
  PORT=$(free_port)
  mkdir -p "$WORK/$name"
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --dir "$WORK/$name" --databases 1 \
    "$@" >"$WORK/$name.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  wait_ready "$PORT" "$WORK/$name.log"
}
start_statekv() {
  local name=$1; shift
  PORT=$(free_port)
  mkdir -p "$WORK/$name"
  "$STATEKV_BIN" server --bind 127.0.0.1 --port "$PORT" --data "$WORK/$name" \
    --io-threads "$IO_THREADS" "$@" \
    >"$WORK/$name.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  wait_ready "$PORT" "$WORK/$name.log"
}
stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}

# bench CONFIG SERVER PORT PIPELINE: appends "config server test P rps p50 p99" rows.
RESULTS="$WORK/results.txt"
bench() {
  redis-benchmark -h 127.0.0.1 -p "$3" -t set,get -n "$REQUESTS" -r 100000 -d 64 -c "$CLIENTS" \
    -P "$4" --csv |
    awk -F'","' -v c="$1" -v s="$2" -v p="$4" 'NR > 1 {
      gsub(/"/, "", $1); gsub(/"/, "", $NF);
      # columns: test, rps, avg, min, p50, p95, p99, max
      print c, s, $1, p, $2, $5, $7 }' >>"$RESULTS"
}

echo "statekv: $STATEKV_BIN (--io-threads $IO_THREADS); redis: $(redis-server --version | awk '{print $3}'); $(nproc) cores"
echo "redis-benchmark -t set,get -n $REQUESTS -r 100000 -d 64 -c $CLIENTS, -P 1 and -P 16"
echo
# config name | statekv flags | redis flags
CONFIGS=(
  "memory|--engine memory|--appendonly no"
  "fsync-batch|--engine rocksdb --fsync batch|--appendonly yes --appendfsync everysec"
  "fsync-always|--engine rocksdb --fsync always|--appendonly yes --appendfsync always"
)
for entry in "${CONFIGS[@]}"; do
  IFS='|' read -r config skv_flags redis_flags <<<"$entry"
  # shellcheck disable=SC2086  # the flag strings are meant to split
  start_redis "redis-$config" $redis_flags
  redis_port=$PORT redis_pid=$PID
  # shellcheck disable=SC2086
  start_statekv "statekv-$config" $skv_flags
  skv_port=$PORT skv_pid=$PID
  for p in 1 16; do
    echo "running $config -P $p ..." >&2
    bench "$config" redis "$redis_port" "$p"
    bench "$config" statekv "$skv_port" "$p"
  done
  stop_pid "$skv_pid"
  stop_pid "$redis_pid"
done

echo "durability: memory = statekv memory engine vs redis without persistence;"
echo "            fsync-batch = statekv rocksdb --fsync batch vs redis appendfsync everysec;"
echo "            fsync-always = statekv rocksdb --fsync always vs redis appendfsync always"
awk '
  { key = $1 SUBSEP $3 SUBSEP $4; rps[key, $2] = $5; p50[key, $2] = $6; p99[key, $2] = $7
    if (!(key in seen)) { seen[key] = 1; order[n++] = key } }
  END {
    printf "%-13s %-4s %3s | %11s %7s %7s | %11s %7s %7s | %7s %7s\n", "config", "test", "P",
      "redis ops/s", "p50 ms", "p99 ms", "skv ops/s", "p50 ms", "p99 ms", "ops x", "p99 x"
    for (i = 0; i < n; i++) {
      k = order[i]; split(k, f, SUBSEP)
      r = rps[k, "redis"]; s = rps[k, "statekv"]
      printf "%-13s %-4s %3s | %11.0f %7.3f %7.3f | %11.0f %7.3f %7.3f | %7.2f %7.2f\n",
        f[1], f[2], f[3], r, p50[k, "redis"], p99[k, "redis"], s, p50[k, "statekv"],
        p99[k, "statekv"], (r > 0 ? s / r : 0), (p99[k, "redis"] > 0 ? p99[k, "statekv"] / p99[k, "redis"] : 0)
    }
  }' "$RESULTS"
echo "(ops x = statekv/redis throughput, higher is better; p99 x = statekv/redis p99, lower is better)"
echo

# Memory: exactly KEYS distinct 16-byte keys ("key:%012d") with 64-byte values,
# fed through redis-cli --pipe, then RSS (VmRSS) and INFO used_memory per key.
echo "generating $KEYS SET commands ..." >&2
INPUT="$WORK/mass.resp"
awk -v n="$KEYS" 'BEGIN {
  v = sprintf("%064d", 0); gsub(/0/, "v", v)
  for (i = 0; i < n; i++) {
    k = sprintf("key:%012d", i)
    printf "*3\r\n$3\r\nSET\r\n$16\r\n%s\r\n$64\r\n%s\r\n", k, v
  } }' >"$INPUT"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
used_memory() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: '$1 == "used_memory" {print $2}'; }
memory_row() {  # name port pid
  local before_rss before_used loaded after_rss after_used
  before_rss=$(rss_kb "$3"); before_used=$(used_memory "$2")
  redis-cli -p "$2" --pipe <"$INPUT" >"$WORK/$1-pipe.log"
  loaded=$(redis-cli -p "$2" dbsize)
  after_rss=$(rss_kb "$3"); after_used=$(used_memory "$2")
  awk -v name="$1" -v keys="$loaded" -v rss="$after_rss" -v rss0="$before_rss" \
      -v used="$after_used" -v used0="$before_used" 'BEGIN {
    printf "%-8s %9d %12.1f %14.1f %12.1f %16.1f\n", name, keys, rss * 1024 / keys,
      (rss - rss0) * 1024 / keys, used / keys, (used - used0) / keys }'
}
echo "memory after loading $KEYS keys (16-byte keys, 64-byte values, no persistence):"
printf "%-8s %9s %12s %14s %12s %16s\n" server keys "RSS B/key" "RSS delta/key" "used B/key" "used delta/key"
start_redis redis-mem --appendonly no
memory_row redis "$PORT" "$PID"
stop_pid "$PID"
start_statekv statekv-mem --engine memory
memory_row statekv "$PORT" "$PID"
stop_pid "$PID"
