#!/usr/bin/env bash
# Cache hits through `statekv cache` against GETs straight to a `statekv
# server` node and to redis-server (issue 12): redis-benchmark -t get, 50
# clients, at -P 1 and -P 16, one key (all hits), the three targets run one
# after the other for each pipeline depth, ROUNDS short rounds, so that the
# ratios of one round come from the same seconds of a shared machine. Prints
# each round's requests/s and the ratios cache/redis and node/redis, then the
# median of each column over the rounds, then each server's CPU time per GET
# (all its threads, from /proc/PID/stat over every round): the cost that does
# not depend on how loaded the machine is.
# Run by hand (bench/README.md): about a minute. ROUNDS=N (default 7),
# N1 / N16: requests per run at -P 1 / -P 16.
set -euo pipefail
cd "$(dirname "$0")/.."
STATEKV_BIN=${STATEKV_BIN:-build/statekv}
ROUNDS=${ROUNDS:-7}
N1=${N1:-50000}
N16=${N16:-500000}
for tool in redis-server redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
[[ -x "$STATEKV_BIN" ]] || { echo "no statekv binary at $STATEKV_BIN" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/statekv-throughput-XXXXXX")
PIDS=()
cleanup() {  # by pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
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

NODE=$(free_port)
"$STATEKV_BIN" server --engine memory --port "$NODE" --data "$WORK/node" >"$WORK/node.log" 2>&1 &
PIDS+=($!); NODE_PID=$!
wait_ready "$NODE" "$WORK/node.log"
REDIS=$(free_port)
redis-server --port "$REDIS" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
  >"$WORK/redis.log" 2>&1 &
PIDS+=($!); REDIS_PID=$!
wait_ready "$REDIS" "$WORK/redis.log"
CACHE=$(free_port)
"$STATEKV_BIN" cache --upstream "127.0.0.1:$NODE" --port "$CACHE" --ttl-ms 0 --seed 1 \
  >"$WORK/cache.log" 2>&1 &
PIDS+=($!); CACHE_PID=$!
wait_ready "$CACHE" "$WORK/cache.log"
# redis-benchmark's GET reads the key "key:__rand_int__" when -r is not given.
for port in "$NODE" "$REDIS"; do redis-cli -p "$port" set 'key:__rand_int__' xxx >/dev/null; done
sleep 0.3
redis-cli -p "$CACHE" get 'key:__rand_int__' >/dev/null  # held from now on: every GET hits

rps() {  # port pipeline requests
  redis-benchmark -p "$1" -t get -c 50 -P "$2" -n "$3" --csv 2>/dev/null | tail -1 |
    tr -d '"' | cut -d, -f2
}
TICK_NS=$((1000000000 / $(getconf CLK_TCK)))
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # utime + stime, every thread
declare -A CPU REQS
timed_rps() {  # name pid port pipeline requests
  local before after out
  before=$(cpu_ticks "$2")
  out=$(rps "$3" "$4" "$5")
  after=$(cpu_ticks "$2")
  CPU[$1-$4]=$(( ${CPU[$1-$4]:-0} + after - before ))
  REQS[$1-$4]=$(( ${REQS[$1-$4]:-0} + $5 ))
  echo "$out"
}
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo '| round | pipeline | statekv cache (hits) | statekv node | redis-server | cache / redis | node / redis |'
echo '|---|---|---|---|---|---|---|'
: >"$WORK/rows"
for round in $(seq "$ROUNDS"); do
  for p in 1 16; do
    n=$([[ $p == 1 ]] && echo "$N1" || echo "$N16")
    # timed_rps runs in this shell (not a subshell) so that it can add up.
    timed_rps cache "$CACHE_PID" "$CACHE" "$p" "$n" >"$WORK/out"; c=$(<"$WORK/out")
    timed_rps node "$NODE_PID" "$NODE" "$p" "$n" >"$WORK/out"; s=$(<"$WORK/out")
    timed_rps redis "$REDIS_PID" "$REDIS" "$p" "$n" >"$WORK/out"; r=$(<"$WORK/out")
    cr=$(awk -v a="$c" -v b="$r" 'BEGIN { printf "%.2f", a / b }')
    sr=$(awk -v a="$s" -v b="$r" 'BEGIN { printf "%.2f", a / b }')
    printf '| %s | -P %s | %.0f | %.0f | %.0f | %s | %s |\n' "$round" "$p" "$c" "$s" "$r" "$cr" "$sr"
    echo "$p $c $s $r $cr $sr" >>"$WORK/rows"
  done
done
for p in 1 16; do
  cols=()
  for i in 2 3 4 5 6; do
    cols+=("$(awk -v p="$p" -v i="$i" '$1 == p { print $i }' "$WORK/rows" | median)")
  done
  printf '| median | -P %s | %.0f | %.0f | %.0f | %s | %s |\n' "$p" "${cols[@]}"
done
echo
echo '| pipeline | CPU ns per GET: statekv cache | statekv node | redis-server | cache / redis |'
echo '|---|---|---|---|---|'
for p in 1 16; do
  cn=$(( ${CPU[cache-$p]} * TICK_NS / ${REQS[cache-$p]} ))
  sn=$(( ${CPU[node-$p]} * TICK_NS / ${REQS[node-$p]} ))
  rn=$(( ${CPU[redis-$p]} * TICK_NS / ${REQS[redis-$p]} ))
  printf '| -P %s | %d | %d | %d | %s |\n' "$p" "$cn" "$sn" "$rn" \
    "$(awk -v a="$cn" -v b="$rn" 'BEGIN { printf "%.2f", a / b }')"
done
hits=$(redis-cli -p "$CACHE" info cache | tr -d '\r' | awk -F: '$1 == "cache_hits" { print $2 }')
loads=$(redis-cli -p "$CACHE" info cache | tr -d '\r' | awk -F: '$1 == "cache_upstream_loads" { print $2 }')
echo
echo "cache: $hits hits, $loads upstream loads"
