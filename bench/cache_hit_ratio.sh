#!/usr/bin/env bash
# Hit ratio of a cache holding 10% of the data, Zipf(0.99) over 1M keys
# (issue 12): `statekv cache` with W-TinyLFU and with LRU in front of a
# `statekv server` that holds every key, against redis-server used as a
# cache-aside cache (GET; on a miss SET) with maxmemory-policy allkeys-lru and
# allkeys-lfu, at the same memory budget.
#
# Budget: 10% of the keys at statekv cache's own accounting (key + value + 96
# bytes per entry, value 100 bytes) = 100,000 entries' worth of bytes; redis
# gets the same number as maxmemory (it counts its own overheads against it,
# so the entries each holds are printed too). Each run: WARMUP requests
# (seed 1), then REQUESTS measured (seed 2), 64 in flight on one connection
# (build/bench/cache_bench zipf). Run by hand (bench/README.md): a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
STATEKV_BIN=${STATEKV_BIN:-build/statekv}
BENCH_BIN=${BENCH_BIN:-build/bench/cache_bench}
KEYS=${KEYS:-1000000}
WARMUP=${WARMUP:-1000000}
REQUESTS=${REQUESTS:-1000000}
for tool in redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
for bin in "$STATEKV_BIN" "$BENCH_BIN"; do
  [[ -x "$bin" ]] || { echo "no binary at $bin (cmake --build build --target statekv cache_bench)" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/statekv-hitratio-XXXXXX")
PIDS=()
stop_all() {  # by pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
cleanup() { stop_all; rm -rf "$WORK"; }
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
info() { redis-cli -p "$1" info "$2" | tr -d '\r' | awk -F: -v f="$3" '$1 == f { print $2 }'; }
field() { tr ' ' '\n' | awk -F= -v f="$1" '$1 == f { print $2 }'; }

# key:0 .. key:999999 are 5 to 10 bytes; an entry costs key + 100 + 96.
BUDGET=$(awk -v n="$KEYS" 'BEGIN { printf "%d", n / 10 * (10 + 100 + 96) }')
echo "Zipf(0.99) over $KEYS keys, budget $BUDGET bytes (10% of the keys), $WARMUP warm-up + $REQUESTS measured GETs"
echo
echo '| cache | policy | hit ratio | entries held | seconds (measured part) |'
echo '|---|---|---|---|---|'

NODE=$(free_port)
"$STATEKV_BIN" server --engine memory --port "$NODE" --data "$WORK/node" >"$WORK/node.log" 2>&1 &
NODE_PID=$!
wait_ready "$NODE" "$WORK/node.log"
"$BENCH_BIN" load --port "$NODE" --keys "$KEYS" --value-size 100 >/dev/null

for policy in w-tinylfu lru; do
  port=$(free_port)
  "$STATEKV_BIN" cache --upstream "127.0.0.1:$NODE" --port "$port" --max-memory "$BUDGET" \
    --policy "$policy" --ttl-ms 0 --seed 1 >"$WORK/cache-$policy.log" 2>&1 &
  PIDS+=($!)
  wait_ready "$port" "$WORK/cache-$policy.log"
  sleep 0.3
  "$BENCH_BIN" zipf --port "$port" --keys "$KEYS" --requests "$WARMUP" --seed 1 >/dev/null
  h0=$(info "$port" cache cache_hits); m0=$(info "$port" cache cache_misses)
  out=$("$BENCH_BIN" zipf --port "$port" --keys "$KEYS" --requests "$REQUESTS" --seed 2)
  h1=$(info "$port" cache cache_hits); m1=$(info "$port" cache cache_misses)
  printf '| statekv cache | %s | %s | %s | %s |\n' "$policy" \
    "$(awk -v h="$((h1 - h0))" -v m="$((m1 - m0))" 'BEGIN { printf "%.4f", h / (h + m) }')" \
    "$(info "$port" cache cache_entries)" "$(echo "$out" | field seconds)"
  stop_all
done
kill -TERM "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true

for policy in allkeys-lru allkeys-lfu; do
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --maxmemory "$BUDGET" \
    --maxmemory-policy "$policy" --dir "$WORK" >"$WORK/redis-$policy.log" 2>&1 &
  PIDS+=($!)
  wait_ready "$port" "$WORK/redis-$policy.log"
  "$BENCH_BIN" zipf --port "$port" --keys "$KEYS" --requests "$WARMUP" --seed 1 --aside >/dev/null
  out=$("$BENCH_BIN" zipf --port "$port" --keys "$KEYS" --requests "$REQUESTS" --seed 2 --aside)
  printf '| redis-server %s (cache-aside) | %s | %s | %s | %s |\n' "$(redis-server --version | awk '{ print $3 }' | cut -d= -f2)" \
    "$policy" "$(echo "$out" | field hit_ratio)" "$(redis-cli -p "$port" dbsize)" \
    "$(echo "$out" | field seconds)"
  stop_all
done
