#!/usr/bin/env bash
# Factor-3 consensus writes on statekv against a 3-member etcd cluster and
# against Redis primary + 2 replicas with SET + WAIT 2 0, side by side in one
# run: same closed-loop harness (`statekv bench`), same clients, requests,
# value size and key space, fsync on for all three. Then eventual GETs served
# by every member against linearizable (leader-only) GETs, and the time from
# SIGKILL of a group leader to the first acknowledged write through a survivor.
# Run by hand, not in CI (bench/README.md).
#
#   bench/compare_consensus.sh                     # 16 clients, 10000 puts, 256-byte values, 3 rounds
#   ROUNDS=5 REQUESTS=20000 bench/compare_consensus.sh
#   PARTS="writes" bench/compare_consensus.sh      # any of: writes reads failover
#   PIPELINE=16 PARTS=writes bench/compare_consensus.sh
#   ENGINE=memory PARTS=writes bench/compare_consensus.sh   # statekv on its memory engine
#
# PIPELINE=N (default 1): each statekv and Redis client sends N SETs at once
# and waits for all N (`statekv bench --pipeline`; Redis: the N SETs, then one
# WAIT 2 0 covering them, its best use of WAIT). etcd is left out of such a
# run: the harness's etcd client (its HTTP gateway) sends one put at a time.
#
# Each write run is repeated ROUNDS times, the systems alternating (etcd,
# statekv, redis, etcd, ...), and every figure reported is the median over the
# rounds, so that a burst of load from elsewhere on the machine hits one run of
# one system rather than all runs of it.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

STATEKV_BIN=${STATEKV_BIN:-build/statekv}
CLIENTS=${CLIENTS:-16}
REQUESTS=${REQUESTS:-10000}
VALUE_SIZE=${VALUE_SIZE:-256}
KEY_SPACE=${KEY_SPACE:-1000}
WARMUP=${WARMUP:-1}
SEED=${SEED:-1}
ROUNDS=${ROUNDS:-3}
PIPELINE=${PIPELINE:-1}
# statekv's storage engine (cluster up --engine): rocksdb, the default, or
# memory (state in memory, durable through the raft logs and their snapshots,
# as etcd's through its WAL and snapshots).
ENGINE=${ENGINE:-rocksdb}
READS=${READS:-60000}                # GETs per read run, over all clients
FAILOVER_TRIALS=${FAILOVER_TRIALS:-10}
PARTS=${PARTS:-"writes reads failover"}
# leader: every etcd client talks to the etcd leader (etcd's best case, as
# bench/compare_etcd.sh does); all: client c on member c % 3 (followers forward).
ETCD_CLIENTS_ON=${ETCD_CLIENTS_ON:-leader}
# leader: each statekv client sends each SET to the leader of the key's group
# (`statekv bench --route leader`: LOCATE per key before the run, as a smart
# Redis Cluster client sends to the slot's master), like etcd's clients on its
# leader and Redis's on the primary; spread: client c on node c % 3, which
# forwards the 2/3 of the SETs whose group it does not lead.
STATEKV_ROUTE=${STATEKV_ROUTE:-leader}
SECRET=${STATEKV_CLUSTER_SECRET:-bench-$RANDOM$RANDOM$RANDOM}
export STATEKV_CLUSTER_SECRET=$SECRET

want() { [[ " $PARTS " == *" $1 "* ]]; }
case "$ETCD_CLIENTS_ON" in leader | all) ;; *) echo "ETCD_CLIENTS_ON must be leader or all" >&2; exit 2 ;; esac
case "$STATEKV_ROUTE" in leader | spread) ;; *) echo "STATEKV_ROUTE must be leader or spread" >&2; exit 2 ;; esac
[[ -x "$STATEKV_BIN" ]] || { echo "no statekv binary at $STATEKV_BIN (run scripts/build.sh)" >&2; exit 1; }
for tool in etcd etcdctl redis-server redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/statekv-consensus-bench-XXXXXX")
PIDS=()
STATEKV_UP=0
cleanup() {
  if ((STATEKV_UP)); then
    "$STATEKV_BIN" cluster down --data "$WORK/statekv" >/dev/null 2>&1 || true
    for f in "$WORK"/statekv/node*/pid; do
      [[ -f $f ]] && PIDS+=("$(cat "$f")")
    done
  fi
  stop_pids "${PIDS[@]}"  # bench/lib.sh
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Ports below the ephemeral range (32768+) that nothing listens on and that
# this script has not handed out yet.
USED_PORTS=" "
port_free() {
  [[ $USED_PORTS != *" $1 "* ]] && ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
take_port() {  # lo hi: prints a free port in [lo, hi)
  local p
  while :; do
    p=$(($1 + RANDOM % ($2 - $1)))
    port_free "$p" && { USED_PORTS+="$p "; echo "$p"; return; }
  done
}

wait_until() {  # what seconds command...: retries every 0.1 s
  local what=$1 seconds=$2
  shift 2
  for _ in $(seq $((seconds * 10))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$what not ready within $seconds s" >&2
  exit 1
}

# One JSON field of a `statekv bench --json` line (numbers and simple strings).
field() { sed -E 's/.*"'"$2"'":"?([^,"}]*).*/\1/' <<<"$1"; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores" >&2

# ---- start the three systems ----

ETCD_CLUSTER="" ETCD_ENDPOINTS=""
declare -a ETCD_CLIENT_PORTS ETCD_PEER_PORTS
for i in 0 1 2; do
  ETCD_CLIENT_PORTS[i]=$(take_port 20000 32000)
  ETCD_PEER_PORTS[i]=$(take_port 20000 32000)
  ETCD_CLUSTER+="${ETCD_CLUSTER:+,}e$i=http://127.0.0.1:${ETCD_PEER_PORTS[i]}"
  ETCD_ENDPOINTS+="${ETCD_ENDPOINTS:+,}http://127.0.0.1:${ETCD_CLIENT_PORTS[i]}"
done
for i in 0 1 2; do
  # etcd's defaults: the WAL is fsynced before every acknowledgement.
  etcd --name "e$i" --data-dir "$WORK/etcd$i" \
    --listen-client-urls "http://127.0.0.1:${ETCD_CLIENT_PORTS[i]}" \
    --advertise-client-urls "http://127.0.0.1:${ETCD_CLIENT_PORTS[i]}" \
    --listen-peer-urls "http://127.0.0.1:${ETCD_PEER_PORTS[i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER_PORTS[i]}" \
    --initial-cluster "$ETCD_CLUSTER" --initial-cluster-state new \
    --initial-cluster-token "statekv-bench-$$" --logger zap --log-outputs stderr \
    >"$WORK/etcd$i.log" 2>&1 &
  PIDS+=($!)
done

declare -a REDIS_PORTS
for i in 0 1 2; do REDIS_PORTS[i]=$(take_port 20000 32000); done
for i in 0 1 2; do
  mkdir -p "$WORK/redis$i"
  replica=()
  ((i > 0)) && replica=(--replicaof 127.0.0.1 "${REDIS_PORTS[0]}")
  # Every write fsynced to the AOF before the reply, on the primary and on each replica.
  redis-server --port "${REDIS_PORTS[i]}" --bind 127.0.0.1 --dir "$WORK/redis$i" \
    --appendonly yes --appendfsync always --save "" "${replica[@]}" \
    >"$WORK/redis$i.log" 2>&1 &
  PIDS+=($!)
done

# RESP ports P..P+2, peer ports P+10000..P+10002: all six free and below 32768.
while :; do
  base=$((12000 + RANDOM % 7000))
  ok=1
  for p in $base $((base + 1)) $((base + 2)) $((base + 10000)) $((base + 10001)) $((base + 10002)); do
    port_free "$p" || ok=0
  done
  ((ok)) && break
done
STATEKV_PORTS=("$base" $((base + 1)) $((base + 2)))
STATEKV_ENDPOINTS="127.0.0.1:$base,127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))"
STATEKV_UP=1
# Default settings: fsync batch (a write is acknowledged after the group fsync
# that covers it) and the raft log synced before a member acknowledges.
"$STATEKV_BIN" cluster up --nodes 3 --base-port "$base" --data "$WORK/statekv" --detach \
  --engine "$ENGINE" \
  >"$WORK/statekv-cluster.log" 2>&1 ||
  { echo "statekv cluster up failed:" >&2; tail -n 20 "$WORK/statekv-cluster.log" >&2; exit 1; }
redis-cli -p "$base" KEYSPACE CREATE rep PREFIX r: REPLICATION consensus FACTOR 3 >/dev/null
for p in "${STATEKV_PORTS[@]}"; do
  wait_until "statekv consensus keyspace on port $p" 30 \
    bash -c "[[ \$(redis-cli -p $p SET r:probe 1) == OK ]]"
done
wait_rep_leaders_settled "${STATEKV_PORTS[@]}"  # bench/lib.sh

wait_until "etcd cluster" 30 etcdctl --endpoints="$ETCD_ENDPOINTS" endpoint health
ETCD_BENCH_ENDPOINTS=$ETCD_ENDPOINTS
if [[ $ETCD_CLIENTS_ON == leader ]]; then
  ETCD_BENCH_ENDPOINTS=$(etcdctl --endpoints="$ETCD_ENDPOINTS" endpoint status -w simple |
    awk -F', ' '$5 == "true" {print $1; exit}')
  [[ -n $ETCD_BENCH_ENDPOINTS ]] || { echo "etcd reports no leader" >&2; exit 1; }
fi
wait_until "redis replicas" 30 \
  bash -c "redis-cli -p ${REDIS_PORTS[0]} INFO replication | grep -q '^connected_slaves:2'"
for i in 1 2; do
  wait_until "redis replica $i" 30 \
    bash -c "redis-cli -p ${REDIS_PORTS[i]} INFO replication | grep -q '^master_link_status:up'"
done

echo "$(nproc) cores; $CLIENTS clients, $REQUESTS puts, $VALUE_SIZE-byte values over $KEY_SPACE keys" \
  "(seed $SEED, ${WARMUP}s warmup), $ROUNDS rounds alternating, medians reported"
echo "etcd $(etcd --version | awk '/^etcd Version/ {print $3}') (clients on: $ETCD_CLIENTS_ON);" \
  "$(redis-server --version | awk '{print $1, $3}'); statekv: $STATEKV_BIN (route: $STATEKV_ROUTE)"
echo

# ---- (a)-(c) writes ----

BENCH_ARGS=(--clients "$CLIENTS" --requests "$REQUESTS" --value-size "$VALUE_SIZE"
  --key-space "$KEY_SPACE" --seed "$SEED" --warmup "$WARMUP" --json)
SYSTEMS="etcd statekv redis"
RESP_ARGS=()
if ((PIPELINE > 1)); then
  SYSTEMS="statekv redis"  # the harness's etcd client does not pipeline
  RESP_ARGS=(--pipeline "$PIPELINE")
fi
declare -A RESULTS  # system -> JSON lines, one per round

run_bench() {  # system command...
  local system=$1 out rc=0
  shift
  "$@" >"$WORK/$system.out" 2>"$WORK/$system.err" &
  local pid=$!
  PIDS+=("$pid")
  wait "$pid" || rc=$?
  # Exit 1 means the run finished with failed puts: keep its figures.
  if ((rc != 0 && rc != 1)); then
    echo "$system: the benchmark could not run (exit status $rc):" >&2
    cat "$WORK/$system.err" >&2
    exit 1
  fi
  out=$(grep '^{' "$WORK/$system.out" | tail -n 1)
  [[ -n $out ]] || { echo "$system: no result line" >&2; cat "$WORK/$system.err" >&2; exit 1; }
  RESULTS[$system]+="$out"$'\n'
  printf '  %s: %.0f ops/s, p50 %.3f ms, p99 %.3f ms, errors %s\n' "$system" "$(field "$out" ops_per_sec)" \
    "$(field "$out" p50_ms)" "$(field "$out" p99_ms)" "$(field "$out" errors)" >&2
}

# The median over the rounds of one field of one system's results.
med() { grep '^{' <<<"${RESULTS[$1]}" | while read -r j; do field "$j" "$2"; done | tr '\n' ' ' | median; }
all() { grep '^{' <<<"${RESULTS[$1]}" | while read -r j; do printf '%.0f ' "$(field "$j" "$2")"; done; }

if want writes; then
  for round in $(seq "$ROUNDS"); do
    echo "writes, round $round of $ROUNDS ..." >&2
    if [[ " $SYSTEMS " == *" etcd "* ]]; then
      run_bench etcd "$STATEKV_BIN" bench --target etcd --endpoints "$ETCD_BENCH_ENDPOINTS" "${BENCH_ARGS[@]}"
    fi
    run_bench statekv "$STATEKV_BIN" bench --target resp --endpoints "$STATEKV_ENDPOINTS" \
      --key-prefix r: --route "$STATEKV_ROUTE" "${RESP_ARGS[@]}" "${BENCH_ARGS[@]}"
    run_bench redis "$STATEKV_BIN" bench --target resp --endpoints "127.0.0.1:${REDIS_PORTS[0]}" \
      --wait 2 "${RESP_ARGS[@]}" "${BENCH_ARGS[@]}"
  done
  ((PIPELINE > 1)) && echo "pipeline: $PIPELINE SETs per client at a time (redis: then one WAIT 2 0)"

  echo "| system | client path | ops/s | p50 ms | p99 ms | ops/s of each round | errors |"
  echo "|---|---|---:|---:|---:|---|---:|"
  for s in $SYSTEMS; do
    case $s in
      etcd) path="HTTP gateway, clients on $ETCD_CLIENTS_ON" ;;
      statekv)
        case $STATEKV_ROUTE in
          leader) path="SET r:key, each to its group's leader (route leader)" ;;
          spread) path="SET r:key, clients over 3 nodes (route spread)" ;;
        esac ;;
      redis)
        path="SET + WAIT 2 0 on the primary"
        ((PIPELINE > 1)) && path="$PIPELINE SETs + WAIT 2 0 on the primary" ;;
    esac
    errors=$(grep '^{' <<<"${RESULTS[$s]}" | while read -r j; do field "$j" errors; done | paste -sd+ | bc)
    printf "| %s | %s | %.0f | %.3f | %.3f | %s| %s |\n" "$s" "$path" "$(med $s ops_per_sec)" \
      "$(med $s p50_ms)" "$(med $s p99_ms)" "$(all $s ops_per_sec)" "$errors"
  done
  for s in $SYSTEMS; do
    first=$(grep '^{' <<<"${RESULTS[$s]}" | while read -r j; do field "$j" first_error; done | grep -v '^$' | head -n 1 || true)
    [[ -n $first ]] && echo "$s first error: $first"
  done
  echo
  echo "| statekv against | ops x (goal) | p50 x | p99 x (goal) |"
  echo "|---|---:|---:|---:|"
  for s in ${SYSTEMS/statekv/}; do
    goal=3
    [[ $s == redis ]] && goal=2
    awk -v name="$s" -v goal="$goal" \
      -v so="$(med statekv ops_per_sec)" -v eo="$(med $s ops_per_sec)" \
      -v s50="$(med statekv p50_ms)" -v e50="$(med $s p50_ms)" \
      -v s99="$(med statekv p99_ms)" -v e99="$(med $s p99_ms)" 'BEGIN {
        printf "| %s | %.2f (>= %d) | %.2f | %.2f (<= 1) |\n", name, (eo > 0 ? so / eo : 0), goal,
          (e50 > 0 ? s50 / e50 : 0), (e99 > 0 ? s99 / e99 : 0) }'
  done
  echo "(ops x = statekv/other throughput, higher is better; p50 x, p99 x = statekv/other latency, lower is better)"
  echo
fi

# ---- (d) eventual GETs on every member against linearizable (leader-only) GETs ----

# Runs redis-benchmark on the three nodes at once, CLIENTS split over them,
# `WITH <level> GET r:key:<12 digits>` over the keys the writes made.
# Prints "rps p50 p99": the summed rate, the mean of the three p50s, the largest p99.
read_run() {  # level
  local level=$1 i clients pids=()
  for i in 0 1 2; do
    clients=$((CLIENTS / 3 + (i < CLIENTS % 3 ? 1 : 0)))
    ((clients > 0)) || clients=1
    redis-benchmark -p "${STATEKV_PORTS[i]}" -c "$clients" -n $((READS / 3)) -r "$KEY_SPACE" --csv \
      WITH "$level" GET r:key:__rand_int__ >"$WORK/read$i.csv" 2>"$WORK/read$i.err" &
    pids+=($!)
    PIDS+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  cat "$WORK"/read{0,1,2}.csv | grep '^"WITH' | tr -d '"' | awk -F, '
    { rps += $2; p50 += $5; if ($7 > p99) p99 = $7; n++ }
    END { if (n != 3) exit 1; printf "%.0f %.3f %.3f\n", rps, p50 / n, p99 }'
}

if want reads; then
  if ! want writes; then  # the reads want the keys to exist
    "$STATEKV_BIN" bench --target resp --endpoints "$STATEKV_ENDPOINTS" --key-prefix r: \
      --clients "$CLIENTS" --requests "$KEY_SPACE" --value-size "$VALUE_SIZE" \
      --key-space "$KEY_SPACE" --warmup 0 >/dev/null 2>&1
  fi
  declare -A READ_RESULTS
  for round in $(seq "$ROUNDS"); do
    for level in eventual linearizable; do
      echo "reads, $level, round $round of $ROUNDS ..." >&2
      r=$(read_run "$level") || { echo "redis-benchmark failed:" >&2; cat "$WORK"/read*.err >&2; exit 1; }
      echo "  $level: $r (ops/s p50 p99)" >&2
      READ_RESULTS[$level]+="$r"$'\n'
    done
  done
  echo "| GET level (3 nodes, $CLIENTS clients, redis-benchmark) | ops/s | p50 ms | p99 ms | ops/s of each round |"
  echo "|---|---:|---:|---:|---|"
  for level in eventual linearizable; do
    col() { awk -v c="$1" 'NF {print $c}' <<<"${READ_RESULTS[$level]}" | tr '\n' ' '; }
    printf "| %s | %.0f | %.3f | %.3f | %s|\n" "$level" "$(col 1 | median)" "$(col 2 | median)" \
      "$(col 3 | median)" "$(col 1)"
  done
  ev=$(awk 'NF {print $1}' <<<"${READ_RESULTS[eventual]}" | tr '\n' ' ' | median)
  li=$(awk 'NF {print $1}' <<<"${READ_RESULTS[linearizable]}" | tr '\n' ' ' | median)
  awk -v e="$ev" -v l="$li" 'BEGIN { printf "eventual/linearizable throughput: %.2fx\n", (l > 0 ? e / l : 0) }'
  echo "(p50 = mean of the three nodes' p50, p99 = the largest of their p99s)"
  echo
fi

# ---- (e) SIGKILL of a group leader to the first acknowledged write ----

if want failover; then
  KEY=r:failover
  shard=$(redis-cli -p "$base" LOCATE "$KEY" | awk 'prev == "shard" {print; exit} {prev = $0}')
  [[ -n $shard ]] || { echo "LOCATE $KEY gave no shard" >&2; exit 1; }
  TIMES=()
  for trial in $(seq "$FAILOVER_TRIALS"); do
    # The leader of the key's group, as the nodes report it (INFO replication).
    leader=""
    for _ in $(seq 100); do
      for p in "${STATEKV_PORTS[@]}"; do
        leader=$(redis-cli -p "$p" INFO replication | tr -d '\r' |
          awk -v s="shard=$shard," '$0 ~ "keyspace=rep," s && /role=leader/ {
            n = split($0, kv, ","); for (i = 1; i <= n; i++) if (kv[i] ~ /^leader=/) { sub("leader=", "", kv[i]); print kv[i] } }')
        [[ -n $leader ]] && break
      done
      [[ -n $leader ]] && break
      sleep 0.1
    done
    [[ -n $leader ]] || { echo "no leader for shard $shard" >&2; exit 1; }
    survivor_port=${STATEKV_PORTS[$((leader % 3))]}  # node leader+1 (1-based), wrapping
    victim=$(cat "$WORK/statekv/node$leader/pid")
    [[ $(redis-cli -p "$survivor_port" SET "$KEY" "before-$trial") == OK ]] ||
      { echo "trial $trial: the cluster does not take writes before the kill" >&2; exit 1; }
    t0=$(date +%s%N)
    kill -KILL "$victim"
    attempts=0
    until [[ $(timeout 10 redis-cli -p "$survivor_port" SET "$KEY" "after-$trial" 2>/dev/null) == OK ]]; do
      attempts=$((attempts + 1))
      (($(date +%s%N) - t0 < 60000000000)) || { echo "trial $trial: no write within 60 s" >&2; exit 1; }
    done
    t1=$(date +%s%N)
    ms=$(((t1 - t0) / 1000000))
    TIMES+=("$ms")
    echo "  failover trial $trial: node $leader (pid $victim) killed, write through port $survivor_port" \
      "acknowledged after $ms ms ($attempts failed attempts)" >&2
    # Bring the node back and let it catch up (and take its leadership back) before the next trial.
    "$STATEKV_BIN" cluster restart-missing --data "$WORK/statekv" >>"$WORK/restart.log" 2>&1 ||
      { echo "restart-missing failed:" >&2; tail -n 20 "$WORK/restart.log" >&2; exit 1; }
    sleep 3
  done
  echo "| SIGKILL of the group leader -> first acknowledged write ($FAILOVER_TRIALS trials) | ms |"
  echo "|---|---:|"
  echo "| median | $(tr ' ' '\n' <<<"${TIMES[*]}" | median) |"
  echo "| max | $(tr ' ' '\n' <<<"${TIMES[*]}" | sort -g | tail -n 1) |"
  echo "| all | ${TIMES[*]} |"
  echo "(each trial: redis-cli SET in a loop through a surviving node from the instant of the kill;"
  echo " redis-cli start-up adds a few ms per attempt)"
  echo
fi

echo "durability: etcd fsyncs its WAL before acknowledging (default); redis appendonly yes +"
echo "appendfsync always on the primary and both replicas; statekv \`cluster up\` defaults, engine $ENGINE"
echo "(--fsync batch: acknowledged after the covering group fsync; raft log synced)."
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
