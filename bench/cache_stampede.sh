#!/usr/bin/env bash
# Stampede on one expired hot key through `statekv cache`: 1,000 concurrent GETs
# (redis-benchmark -c 1000 -n 1000) while every upstream load takes 50 ms
# (--inject-upstream-delay-ms 50), with request coalescing off and on. Prints,
# per mode, the upstream loads per burst (from INFO cache) and the client p50/p99.
# Run by hand (docs/cache.md); about 30 s. BURSTS=N changes the number of bursts.
set -euo pipefail
cd "$(dirname "$0")/.."
STATEKV_BIN=${STATEKV_BIN:-build/statekv}
BURSTS=${BURSTS:-5}
for tool in redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
[[ -x "$STATEKV_BIN" ]] || { echo "no statekv binary at $STATEKV_BIN" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/statekv-stampede-XXXXXX")
NODE_PID=""
CACHE_PID=""
cleanup() {  # by pid: the node and the cache still running, if any
  for pid in $NODE_PID $CACHE_PID; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $NODE_PID $CACHE_PID; do wait "$pid" 2>/dev/null || true; done
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
  echo "port $1 did not answer" >&2; tail -n 20 "$2" >&2; exit 1
}
info() { redis-cli -p "$1" info cache | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2 }'; }

NODE=$(free_port)
"$STATEKV_BIN" server --engine memory --port "$NODE" --data "$WORK/node" >"$WORK/node.log" 2>&1 &
NODE_PID=$!
wait_ready "$NODE" "$WORK/node.log"
# redis-benchmark's GET reads the key "key:__rand_int__" when -r is not given.
redis-cli -p "$NODE" set 'key:__rand_int__' hot-value >/dev/null

printf '%-10s %8s %14s %10s %10s\n' coalesce bursts loads/burst p50_ms p99_ms
for mode in off on; do
  CACHE=$(free_port)
  "$STATEKV_BIN" cache --upstream "127.0.0.1:$NODE" --port "$CACHE" --ttl-ms 500 \
    --coalesce "$mode" --inject-upstream-delay-ms 50 --upstream-connections 64 --seed 1 \
    >"$WORK/cache-$mode.log" 2>&1 &
  CACHE_PID=$!
  wait_ready "$CACHE" "$WORK/cache-$mode.log"
  total=0; p50s=(); p99s=()
  for _ in $(seq "$BURSTS"); do
    sleep 0.6  # the hot key's cached copy (ttl 500 ms) has expired
    before=$(info "$CACHE" cache_loads)
    csv=$(redis-benchmark -p "$CACHE" -t get -c 1000 -n 1000 --csv 2>/dev/null | tail -1)
    after=$(info "$CACHE" cache_loads)
    total=$((total + after - before))
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    p50s+=("$(echo "$csv" | tr -d '"' | cut -d, -f5)")
    p99s+=("$(echo "$csv" | tr -d '"' | cut -d, -f7)")
  done
  printf '%-10s %8d %14s %10s %10s\n' "$mode" "$BURSTS" \
    "$(awk -v t="$total" -v b="$BURSTS" 'BEGIN { printf "%.1f", t / b }')" \
    "$(printf '%s\n' "${p50s[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')" \
    "$(printf '%s\n' "${p99s[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"
  kill -TERM "$CACHE_PID"; wait "$CACHE_PID" 2>/dev/null || true
  CACHE_PID=""
done
echo "(p50/p99: the median over bursts of redis-benchmark's per-burst percentiles)"
