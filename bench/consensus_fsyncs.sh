#!/usr/bin/env bash
# Consensus writes over many replica groups, and the fdatasync calls they cost:
# a local 3-node cluster, a range keyspace of NSHARDS consensus shards (factor 3,
# so every node holds a replica of every group), then redis-benchmark -P 16 SET on
# random keys through node 1 while `perf stat` counts the fdatasync calls of the
# three processes (the store engine's included). Needs perf and permission to
# trace the processes. Run by hand, not in CI (bench/README.md).
#
#   bench/consensus_fsyncs.sh                          # 64 shards, 300k SETs, RocksDB
#   NSHARDS=16 N=100000 ENGINE=memory bench/consensus_fsyncs.sh
#   KEEP=1 bench/consensus_fsyncs.sh                   # keep the nodes' data and logs
#   META_CLIENTS=8 bench/consensus_fsyncs.sh           # metadata-group writes at the same time
#
# META_CLIENTS > 0: while the SETs run, `statekv bench --target statekv` writes into the
# metadata group (its register map, through the peer port) from that many closed-loop
# clients, META_N puts in all; the figures then count its puts too. The metadata group
# logs into the same write-ahead log as the data groups, so both share its fdatasyncs.
set -euo pipefail
cd "$(dirname "$0")/.."

STATEKV_BIN=${STATEKV_BIN:-build/statekv}
NSHARDS=${NSHARDS:-64}
N=${N:-300000}
ENGINE=${ENGINE:-rocksdb}
META_CLIENTS=${META_CLIENTS:-0}
META_N=${META_N:-20000}
[[ -x "$STATEKV_BIN" ]] || { echo "no statekv binary at $STATEKV_BIN (run scripts/build.sh)" >&2; exit 1; }
for tool in redis-cli redis-benchmark perf python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/statekv-consensus-fsyncs-XXXXXX")
PIDS=()
cleanup() {
  "$STATEKV_BIN" cluster down --data "$WORK/data" >/dev/null 2>&1 || true
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [[ -n "${KEEP:-}" ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM

base=$((10000 + RANDOM % 12000))  # peer ports (+10000) stay below the ephemeral range
"$STATEKV_BIN" cluster up --nodes 3 --base-port "$base" --data "$WORK/data" --engine "$ENGINE" \
  --detach >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; exit 1; }
for n in 1 2 3; do PIDS+=("$(cat "$WORK/data/node$n/pid")"); done

# Keys are key:<12 digits> (redis-benchmark -r); split them evenly.
splits=$(python3 -c "print(','.join('%012d' % (k * 1000000 // $NSHARDS) for k in range(1, $NSHARDS)))")
redis-cli -p "$base" keyspace create bench PREFIX key: PARTITIONER range SPLITS "$splits" \
  REPLICATION consensus FACTOR 3 >/dev/null
sleep 3
# Warm up: every group elects a leader.
redis-benchmark -p "$base" -P 16 -c 50 -n 20000 -r 1000000 -t set -q >/dev/null 2>&1 || true

pids=$(IFS=,; echo "${PIDS[*]}")
meta=()
if ((META_CLIENTS > 0)); then
  meta=("$STATEKV_BIN" bench --target statekv --secret "$(cat "$WORK/data/cluster.secret")"
    --endpoints "127.0.0.1:$((base + 10000)),127.0.0.1:$((base + 10001)),127.0.0.1:$((base + 10002))"
    --clients "$META_CLIENTS" --requests "$META_N" --value-size 64 --warmup 0 --json)
fi
export STATEKV_BIN base N
perf stat -x, -e syscalls:sys_enter_fdatasync -p "$pids" -o "$WORK/perf.csv" -- \
  bash -c 'if (($# > 0)); then "$@" >"'"$WORK"'/meta.json" 2>"'"$WORK"'/meta.err" & fi
    redis-benchmark -p "$base" -P 16 -c 50 -n "$N" -r 1000000 -t set >"'"$WORK"'/bench.txt" 2>&1
    wait' meta "${meta[@]}" || true
syncs=$(awk -F, '/sys_enter_fdatasync/ {print $1}' "$WORK/perf.csv")
if ((META_CLIENTS > 0)); then
  meta_puts=$(python3 -c "import json,sys; print(json.load(open('$WORK/meta.json')).get('ok', 0))" 2>/dev/null || echo 0)
  echo "metadata group: $(cat "$WORK/meta.json" | head -c 400)"
fi
tr '\r' '\n' <"$WORK/bench.txt" | grep -aiE 'error' | head -3 || true
done_line=$(tr '\r' '\n' <"$WORK/bench.txt" | grep -a 'requests completed in' || true)
rps=$(tr '\r' '\n' <"$WORK/bench.txt" | awk '/throughput summary/ {print $3}')
if [[ -z "$done_line" ]]; then
  echo "$NSHARDS groups, $ENGINE: the benchmark stopped early (errors above); $syncs fdatasync calls"
  exit 1
fi
secs=$(echo "$done_line" | awk '{print $5}')
echo "$NSHARDS groups of 3, $ENGINE, $N SETs -P 16 -c 50: $rps SET/s," \
  "$syncs fdatasync in ${secs}s = $(python3 -c "print(round($syncs / $secs))")/s," \
  "$(python3 -c "print(round($syncs / $N, 2))") per SET"
if ((META_CLIENTS > 0)); then
  echo "with $meta_puts metadata puts ($META_CLIENTS clients) in the same window:" \
    "$(python3 -c "print(round($syncs / ($N + $meta_puts), 2))") fdatasync per write (SET or put)"
fi
