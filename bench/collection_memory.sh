#!/usr/bin/env bash
# Resident memory of one large hash, set and sorted set: redis-server and
# `statekv server --engine memory` side by side (issue 11 item 5). For each type
# it starts a fresh pair of servers on free 127.0.0.1 ports (no persistence),
# loads the same ELEMENTS elements into one key of each through `redis-cli --pipe`
# (one command per element: HSET h <field> <value>, SADD s <member>,
# ZADD z <i> <member>), and prints the growth of VmRSS (/proc/<pid>/status, loaded
# minus empty server) in bytes per element, the ratio statekv/redis, and each
# server's INFO used_memory growth per element. Run by hand, not in CI (about a minute).
#
#   bench/collection_memory.sh                        # uses build/statekv, 1,000,000 each
#   ELEMENTS=100000 bench/collection_memory.sh        # quicker
#   STATEKV_BIN=path/to/statekv bench/collection_memory.sh
#   FIELD_FMT='f%d' VALUE_FMT='v%d' MEMBER_FMT='m%d' bench/collection_memory.sh
#                                                     # other element sizes (printf formats of i)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

STATEKV_BIN=${STATEKV_BIN:-build/statekv}
ELEMENTS=${ELEMENTS:-1000000}
# Default element sizes: 13-14 bytes, like redis-benchmark's "element:__rand_int__"
# shortened to the 10-16 byte range.
FIELD_FMT=${FIELD_FMT:-field:%07d}
VALUE_FMT=${VALUE_FMT:-value:%07d}
MEMBER_FMT=${MEMBER_FMT:-member:%07d}
for tool in redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "missing $tool (scripts/deps.sh installs it)" >&2; exit 1; }
done
[[ -x "$STATEKV_BIN" ]] || { echo "no statekv binary at $STATEKV_BIN (run scripts/build.sh)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/statekv-collmem-XXXXXX")
PIDS=()
cleanup() {
  stop_pids "${PIDS[@]}"  # bench/lib.sh
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# A port on 127.0.0.1 that nothing listens on, below the ephemeral range.
free_port() {
  local p
  while :; do
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
# start_redis NAME / start_statekv NAME: set PORT and PID.
start_redis() {
  PORT=$(free_port)
  mkdir -p "$WORK/$1"
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/$1" \
    --databases 1 >"$WORK/$1.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  wait_ready "$PORT" "$WORK/$1.log"
}
start_statekv() {
  PORT=$(free_port)
  mkdir -p "$WORK/$1"
  "$STATEKV_BIN" server --bind 127.0.0.1 --port "$PORT" --data "$WORK/$1" --engine memory \
    --io-threads 1 >"$WORK/$1.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  wait_ready "$PORT" "$WORK/$1.log"
}
stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
info_field() {  # port field
  redis-cli -p "$1" info memory | tr -d '\r' | awk -F: -v f="$2" '$1 == f {print $2}'
}

# gen TYPE: the RESP commands loading ELEMENTS elements of TYPE into one key.
gen() {
  awk -v n="$ELEMENTS" -v type="$1" -v ff="$FIELD_FMT" -v vf="$VALUE_FMT" -v mf="$MEMBER_FMT" '
    function bulk(s) { return "$" length(s) "\r\n" s "\r\n" }
    BEGIN {
      for (i = 0; i < n; i++) {
        if (type == "hash") {
          printf "*4\r\n%s%s%s%s", bulk("HSET"), bulk("h"), bulk(sprintf(ff, i)), bulk(sprintf(vf, i))
        } else if (type == "set") {
          printf "*3\r\n%s%s%s", bulk("SADD"), bulk("s"), bulk(sprintf(mf, i))
        } else {
          printf "*4\r\n%s%s%s%s", bulk("ZADD"), bulk("z"), bulk(i ""), bulk(sprintf(mf, i))
        }
      } }'
}
declare -A KEY=([hash]=h [set]=s [zset]=z)
declare -A SIZE=([hash]=hlen [set]=scard [zset]=zcard)

# measure SERVER TYPE: sets RSS_DELTA, USED_DELTA (bytes) and ENCODING after loading.
measure() {
  local server=$1 type=$2 rss0 rss1 used0 used1 n
  "start_$server" "$server-$type"
  sleep 0.5
  rss0=$(rss_kb "$PID"); used0=$(info_field "$PORT" used_memory)
  redis-cli -p "$PORT" --pipe <"$WORK/$type.resp" >"$WORK/$server-$type-pipe.log"
  n=$(redis-cli -p "$PORT" "${SIZE[$type]}" "${KEY[$type]}")
  [[ "$n" == "$ELEMENTS" ]] || { echo "$server $type: ${SIZE[$type]} says $n, want $ELEMENTS" >&2; exit 1; }
  sleep 1  # let background work (statekv's reclaim of a converted compact record) settle
  rss1=$(rss_kb "$PID"); used1=$(info_field "$PORT" used_memory)
  RSS_DELTA=$(((rss1 - rss0) * 1024)) USED_DELTA=$((used1 - used0))
  ENCODING=$(redis-cli -p "$PORT" object encoding "${KEY[$type]}")
  stop_pid "$PID"
}

echo "statekv: $STATEKV_BIN (--engine memory); redis: $(redis-server --version | awk '{print $3}'); $ELEMENTS elements per key"
echo "hash: HSET h $(printf "$FIELD_FMT" 1) $(printf "$VALUE_FMT" 1) ...; set: SADD s $(printf "$MEMBER_FMT" 1) ...; sorted set: ZADD z 1 $(printf "$MEMBER_FMT" 1) ..."
echo
printf "| %-6s | %-21s | %16s | %18s | %15s | %17s | %19s |\n" type "encoding redis/statekv" \
  "redis RSS B/elem" "statekv RSS B/elem" "statekv / redis" "redis used B/elem" \
  "statekv used B/elem"
printf "|%s|%s|%s|%s|%s|%s|%s|\n" -------- ----------------------- ------------------ \
  -------------------- ----------------- ------------------- ---------------------
for type in hash set zset; do
  echo "loading $type ..." >&2
  gen "$type" >"$WORK/$type.resp"
  measure redis "$type"
  r_rss=$RSS_DELTA r_used=$USED_DELTA r_enc=$ENCODING
  measure statekv "$type"
  s_rss=$RSS_DELTA s_used=$USED_DELTA s_enc=$ENCODING
  rm -f "$WORK/$type.resp"
  awk -v t="$type" -v e="$r_enc/$s_enc" -v n="$ELEMENTS" -v rr="$r_rss" -v ru="$r_used" \
      -v sr="$s_rss" -v su="$s_used" 'BEGIN {
    printf "| %-6s | %-21s | %16.1f | %18.1f | %15.2f | %17.1f | %19.1f |\n", t, e, rr / n,
      sr / n, (rr > 0 ? sr / rr : 0), ru / n, su / n }'
done
echo "(RSS: VmRSS growth while loading, per element; ratio < 1: statekv smaller. used: INFO"
echo " used_memory growth per element, the allocator's count: jemalloc's in both, plus the"
echo " memory engine's slabs in statekv)"
