#!/usr/bin/env bash
# Stampede protection of `statekv cache`, each switched off and on (issue 12).
# Every upstream request of a cache is delayed 50 ms (--inject-upstream-delay-ms
# 50: the "loader that takes 50 ms"), in front of one `statekv server`.
#
#  1. Bursts: 1,000 concurrent GETs (build/bench/cache_bench burst: 1,000
#     connections, one GET each, sent back to back) of the hot key after its
#     cached copy expired (cache TTL 500 ms, a burst every 0.6 s, after one
#     warm-up read through each cache), per
#     protection. Prints upstream loads per burst (the caches' INFO
#     cache_upstream_loads, summed over the caches of the row) and the client
#     p50/p99 (the median over the bursts of each burst's percentile).
#  2. Poisson readers of the hot key (200 GETs/s, cache TTL 300 ms, 100 TTL
#     windows = 30 s) with XFetch off and on: upstream loads per window, the
#     readers that took >= 25 ms (they waited for a load), p99.
#
# Run by hand (bench/README.md): about 2 minutes. BURSTS=N (default 5),
# WINDOWS=N (default 100), ONLY=bursts|poisson.
set -euo pipefail
cd "$(dirname "$0")/.."
STATEKV_BIN=${STATEKV_BIN:-build/statekv}
BENCH_BIN=${BENCH_BIN:-build/bench/cache_bench}
BURSTS=${BURSTS:-5}
WINDOWS=${WINDOWS:-100}
ONLY=${ONLY:-}
command -v redis-cli >/dev/null || { echo "missing redis-cli" >&2; exit 1; }
for bin in "$STATEKV_BIN" "$BENCH_BIN"; do
  [[ -x "$bin" ]] || { echo "no binary at $bin (cmake --build build --target statekv cache_bench)" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/statekv-stampede-XXXXXX")
NODE_PID=""
CACHE_PIDS=()
stop_caches() {  # by pid
  for pid in "${CACHE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${CACHE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  CACHE_PIDS=()
}
cleanup() {
  stop_caches
  if [[ -n "$NODE_PID" ]]; then kill -TERM "$NODE_PID" 2>/dev/null || true; wait "$NODE_PID" 2>/dev/null || true; fi
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
sum_info() {  # field port...
  local f=$1 total=0; shift
  for p in "$@"; do total=$((total + $(info "$p" "$f"))); done
  echo "$total"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
field() { tr ' ' '\n' | awk -F= -v f="$1" '$1 == f { print $2 }'; }

PORTS=()
# start_caches N args...: N caches in front of the node; their ports in PORTS.
start_caches() {
  local n=$1; shift
  PORTS=()
  for i in $(seq "$n"); do
    local port; port=$(free_port)
    "$STATEKV_BIN" cache --upstream "127.0.0.1:$NODE" --port "$port" \
      --inject-upstream-delay-ms 50 --upstream-connections 64 --seed "$i" "$@" \
      >"$WORK/cache-$port.log" 2>&1 &
    CACHE_PIDS+=($!)
    wait_ready "$port" "$WORK/cache-$port.log"
    PORTS+=("$port")
  done
  sleep 0.3  # subscribed to tracking (the flush on subscribing is behind us)
}

NODE=$(free_port)
"$STATEKV_BIN" server --engine memory --port "$NODE" --data "$WORK/node" >"$WORK/node.log" 2>&1 &
NODE_PID=$!
wait_ready "$NODE" "$WORK/node.log"
redis-cli -p "$NODE" set hot hot-value >/dev/null

# row LABEL KEY EXPECT NCACHES cache-args...
row() {
  local label=$1 key=$2 expect=$3 n=$4; shift 4
  start_caches "$n" "$@"
  local list; list=$(IFS=,; echo "${PORTS[*]}")
  local total=0 p50s=() p99s=() wrong=0
  # Warm-up: each cache holds the key (or its absence), so that every burst
  # meets an expired copy, not an empty cache.
  for p in "${PORTS[@]}"; do redis-cli -p "$p" get "$key" >/dev/null; done
  for _ in $(seq "$BURSTS"); do
    sleep 0.6  # the cached copy (TTL 500 ms) has expired
    local before after out
    before=$(sum_info cache_upstream_loads "${PORTS[@]}")
    out=$("$BENCH_BIN" burst --ports "$list" --clients 1000 --key "$key" --expect "$expect") || wrong=1
    after=$(sum_info cache_upstream_loads "${PORTS[@]}")
    total=$((total + after - before))
    p50s+=("$(echo "$out" | field p50_ms)")
    p99s+=("$(echo "$out" | field p99_ms)")
  done
  printf '| %s | %s | %s | %s | %s |\n' "$label" \
    "$(awk -v t="$total" -v b="$BURSTS" 'BEGIN { printf "%.1f", t / b }')" \
    "$(printf '%s\n' "${p50s[@]}" | median)" "$(printf '%s\n' "${p99s[@]}" | median)" \
    "$([[ $wrong == 0 ]] && echo none || echo SOME)"
  stop_caches
}

if [[ "$ONLY" != poisson ]]; then
  echo "Bursts of 1,000 concurrent GETs, upstream delay 50 ms, $BURSTS bursts per row"
  echo
  echo '| protection | upstream loads per burst | client p50 ms | client p99 ms | wrong replies |'
  echo '|---|---|---|---|---|'
  row "none (1 cache, --coalesce off)" hot hot-value 1 --ttl-ms 500 --coalesce off
  row "coalescing (1 cache)" hot hot-value 1 --ttl-ms 500
  row "3 caches, coalescing, no leases" hot hot-value 3 --ttl-ms 500
  row "3 caches, coalescing + leases" hot hot-value 3 --ttl-ms 500 --leases on --lease-ms 2000
  row "stale-while-revalidate (1 cache, coalescing, --stale-ms 10000)" hot hot-value 1 \
    --ttl-ms 500 --stale-ms 10000
  row "missing key, 1 cache, --coalesce off" absent '(nil)' 1 --ttl-ms 500 --coalesce off
  row "missing key, --coalesce off, --negative-ttl-ms 2000" absent '(nil)' 1 --ttl-ms 500 \
    --coalesce off --negative-ttl-ms 2000
  row "missing key, coalescing + --negative-ttl-ms 2000" absent '(nil)' 1 --ttl-ms 500 \
    --negative-ttl-ms 2000
  echo
fi

# prow LABEL cache-args...: Poisson readers for WINDOWS TTL windows of 300 ms.
prow() {
  local label=$1; shift
  start_caches 1 --ttl-ms 300 "$@"
  local seconds=$((WINDOWS * 3 / 10))
  local before after out
  before=$(info "${PORTS[0]}" cache_upstream_loads)
  out=$("$BENCH_BIN" poisson --port "${PORTS[0]}" --rate 200 --seconds "$seconds" --key hot --slow-ms 25)
  after=$(info "${PORTS[0]}" cache_upstream_loads)
  printf '| %s | %s | %s | %s | %s |\n' "$label" \
    "$(awk -v l="$((after - before))" -v w="$WINDOWS" 'BEGIN { printf "%.2f", l / w }')" \
    "$(echo "$out" | field n)" "$(echo "$out" | field slow)" "$(echo "$out" | field p99_ms)"
  stop_caches
}

if [[ "$ONLY" != bursts ]]; then
  echo "Poisson readers, 200 GETs/s, cache TTL 300 ms, $WINDOWS windows, upstream delay 50 ms"
  echo
  echo '| protection | upstream loads per window | reads | reads >= 25 ms | client p99 ms |'
  echo '|---|---|---|---|---|'
  prow "none (--coalesce off)" --coalesce off
  prow "coalescing" --coalesce on
  prow "coalescing + XFetch, beta 1" --xfetch-beta 1
  prow "coalescing + XFetch, beta 2" --xfetch-beta 2
fi
