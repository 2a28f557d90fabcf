#!/usr/bin/env bash
# A 3-node statekv raft group against a 3-member etcd cluster on this machine,
# side by side in one run, fsync on for both, driven by the same closed-loop
# harness (`statekv bench`) with the same clients, requests and value size.
# Prints committed writes per second, p50 and p99 for each, and the ratios.
# Run by hand, not in CI (bench/README.md).
#
#   bench/compare_etcd.sh                         # 16 clients, 20000 puts, 256-byte values
#   CLIENTS=64 REQUESTS=50000 bench/compare_etcd.sh
#   ONLY=etcd bench/compare_etcd.sh               # only the etcd half
#   ETCD_GRPC=0 bench/compare_etcd.sh             # skip the gRPC baseline for etcd
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

STATEKV_BIN=${STATEKV_BIN:-build/statekv}
CLIENTS=${CLIENTS:-16}
REQUESTS=${REQUESTS:-20000}
VALUE_SIZE=${VALUE_SIZE:-256}
KEY_SPACE=${KEY_SPACE:-1000}
WARMUP=${WARMUP:-1}
SEED=${SEED:-1}
ONLY=${ONLY:-both}            # both | etcd | statekv
ETCD_GRPC=${ETCD_GRPC:-auto}  # auto: also measure etcd through clientv3 (gRPC) when Go can build it
# leader: every etcd client talks to the leader, as statekv's client (which
# follows the leader) does; all: client c on member c % 3 (followers forward).
ETCD_CLIENTS_ON=${ETCD_CLIENTS_ON:-leader}
# Extra flags for `statekv cluster up` (word-split), e.g. its durability setting.
STATEKV_CLUSTER_FLAGS=${STATEKV_CLUSTER_FLAGS:-}
SECRET=${STATEKV_CLUSTER_SECRET:-bench-$RANDOM$RANDOM$RANDOM}
export STATEKV_CLUSTER_SECRET=$SECRET  # for `statekv cluster status` and `statekv bench`

case "$ONLY" in both | etcd | statekv) ;; *) echo "ONLY must be both, etcd or statekv" >&2; exit 2 ;; esac
case "$ETCD_CLIENTS_ON" in leader | all) ;; *) echo "ETCD_CLIENTS_ON must be leader or all" >&2; exit 2 ;; esac
want_etcd() { [[ $ONLY != statekv ]]; }
want_statekv() { [[ $ONLY != etcd ]]; }
# `statekv bench` drives etcd too, so the binary is needed for either half.
[[ -x "$STATEKV_BIN" ]] || { echo "no statekv binary at $STATEKV_BIN (run scripts/build.sh)" >&2; exit 1; }
if want_etcd; then
  for tool in etcd etcdctl; do
    command -v "$tool" >/dev/null ||
      { echo "missing $tool (apt-get install etcd-server etcd-client)" >&2; exit 1; }
  done
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/statekv-etcd-bench-XXXXXX")
PIDS=()
cleanup() {
  stop_pids "${PIDS[@]}"  # bench/lib.sh
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Ports below the ephemeral range (32768+), where client sockets cannot hold
# them, that nothing listens on and that this script has not handed out yet.
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

# One JSON field of a `statekv bench --json` line (numbers and simple strings).
field() { sed -E 's/.*"'"$2"'":"?([^,"}]*).*/\1/' <<<"$1"; }

BENCH_ARGS=(--clients "$CLIENTS" --requests "$REQUESTS" --value-size "$VALUE_SIZE"
  --key-space "$KEY_SPACE" --seed "$SEED" --warmup "$WARMUP" --json)
ROWS=()  # "label|client|json"

run_bench() {  # label client-description command...
  local label=$1 client=$2 out
  shift 2
  echo "running $label ($client): $CLIENTS clients, $REQUESTS puts of $VALUE_SIZE bytes ..." >&2
  # In the background and waited for, so that a signal to this script runs the
  # cleanup at once (bash defers traps while a foreground command runs).
  "$@" >"$WORK/$label.out" 2>"$WORK/$label.err" &
  local pid=$! rc=0
  PIDS+=("$pid")
  wait "$pid" || rc=$?
  # Exit 1 means the run finished with failed puts: keep its figures, show its errors.
  if ((rc != 0 && rc != 1)); then
    echo "$label: the benchmark could not run (exit status $rc):" >&2
    cat "$WORK/$label.err" >&2
    exit 1
  fi
  out=$(grep '^{' "$WORK/$label.out" | tail -n 1)
  [[ -n $out ]] || { echo "$label: no result line" >&2; cat "$WORK/$label.err" >&2; exit 1; }
  ROWS+=("$label|$client|$out")
}

# ---- start both clusters, then wait for both ----

if want_etcd; then
  ETCD_CLUSTER="" ETCD_ENDPOINTS=""
  declare -a ETCD_CLIENT_PORTS ETCD_PEER_PORTS
  for i in 0 1 2; do
    ETCD_CLIENT_PORTS[i]=$(take_port 20000 32000)
    ETCD_PEER_PORTS[i]=$(take_port 20000 32000)
    ETCD_CLUSTER+="${ETCD_CLUSTER:+,}e$i=http://127.0.0.1:${ETCD_PEER_PORTS[i]}"
    ETCD_ENDPOINTS+="${ETCD_ENDPOINTS:+,}http://127.0.0.1:${ETCD_CLIENT_PORTS[i]}"
  done
  for i in 0 1 2; do
    # Defaults for everything that matters here: the WAL is fsynced before
    # every acknowledgement, snapshots every 100,000 entries, 100 ms heartbeat.
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
fi

if want_statekv; then
  # RESP ports P..P+2, peer ports P+10000..P+10002: all six free and below 32768.
  while :; do
    base=$((12000 + RANDOM % 7000))
    ok=1
    for p in $base $((base + 1)) $((base + 2)) $((base + 10000)) $((base + 10001)) $((base + 10002)); do
      port_free "$p" || ok=0
    done
    ((ok)) && break
  done
  for p in $base $((base + 1)) $((base + 2)) $((base + 10000)) $((base + 10001)) $((base + 10002)); do
    USED_PORTS+="$p "
  done
  STATEKV_ENDPOINTS="127.0.0.1:$((base + 10000)),127.0.0.1:$((base + 10001)),127.0.0.1:$((base + 10002))"
  # shellcheck disable=SC2086  # the extra flags are meant to split
  "$STATEKV_BIN" cluster up --nodes 3 --base-port "$base" --data "$WORK/statekv" \
    --secret "$SECRET" $STATEKV_CLUSTER_FLAGS >"$WORK/statekv-cluster.log" 2>&1 &
  STATEKV_PID=$!
  PIDS+=("$STATEKV_PID")
fi

wait_until() {  # what log-file pid command...: retries for 30 s while pid runs
  local what=$1 log=$2 pid=$3 rc
  shift 3
  for _ in $(seq 300); do
    "$@" >/dev/null 2>&1 && return 0
    # A launcher that exits 0 may have left its servers running: keep polling.
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      rc=0
      wait "$pid" || rc=$?
      if ((rc != 0)); then
        echo "$what: process $pid exited with status $rc; last lines of $log:" >&2
        tail -n 20 "$log" >&2
        exit 1
      fi
      pid=""
    fi
    sleep 0.1
  done
  echo "$what not ready within 30 s; last lines of $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
}
if want_etcd; then
  wait_until "etcd cluster" "$WORK/etcd0.log" "${PIDS[0]}" \
    etcdctl --endpoints="$ETCD_ENDPOINTS" endpoint health
  ETCD_BENCH_ENDPOINTS=$ETCD_ENDPOINTS
  if [[ $ETCD_CLIENTS_ON == leader ]]; then
    # Columns: endpoint, id, version, db size, is leader, ...
    ETCD_BENCH_ENDPOINTS=$(etcdctl --endpoints="$ETCD_ENDPOINTS" endpoint status -w simple |
      awk -F', ' '$5 == "true" {print $1; exit}')
    [[ -n $ETCD_BENCH_ENDPOINTS ]] || { echo "etcd reports no leader" >&2; exit 1; }
  fi
fi
if want_statekv; then
  wait_until "statekv cluster" "$WORK/statekv-cluster.log" "$STATEKV_PID" \
    "$STATEKV_BIN" cluster status --endpoints "$STATEKV_ENDPOINTS"
  # The node processes `cluster up` started (its children; each also writes
  # DATA/nodeK/pid) are stopped by pid as well, should `cluster up` not stop them.
  for child in $(pgrep -P "$STATEKV_PID" || true) $(cat "$WORK"/statekv/node*/pid 2>/dev/null || true); do
    PIDS+=("$child")
  done
fi

# ---- the same load against each ----

ETCD_VERSION="not run"
want_etcd && ETCD_VERSION=$(etcd --version | awk '/^etcd Version/ {print $3}')
echo "$(nproc) cores; $CLIENTS clients, $REQUESTS puts, $VALUE_SIZE-byte values over $KEY_SPACE keys" \
  "(seed $SEED, ${WARMUP}s warmup); etcd $ETCD_VERSION (clients on: $ETCD_CLIENTS_ON); statekv: $STATEKV_BIN"
echo

if want_etcd; then
  run_bench etcd "HTTP gateway" "$STATEKV_BIN" bench --target etcd --endpoints "$ETCD_BENCH_ENDPOINTS" \
    "${BENCH_ARGS[@]}"

  # etcd's native gRPC client path, for a baseline without the gateway's
  # JSON/HTTP hop: the same closed loop written over clientv3, built offline
  # from Debian's golang-etcd-server-dev (GOPATH mode, no module downloads).
  GOSRC=/usr/share/gocode/src/go.etcd.io/etcd/clientv3
  if [[ $ETCD_GRPC != 0 ]] && command -v go >/dev/null && [[ -d $GOSRC ]]; then
    mkdir -p "$WORK/etcd-grpc-put"
    cp bench/etcd_grpc_put.go "$WORK/etcd-grpc-put/main.go"
    echo "building the etcd gRPC driver (go, GOPATH mode) ..." >&2
    if (cd "$WORK/etcd-grpc-put" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS='' \
      go build -o etcd-grpc-put main.go) >"$WORK/go-build.log" 2>&1; then
      run_bench etcd-grpc "gRPC clientv3" "$WORK/etcd-grpc-put/etcd-grpc-put" \
        -endpoints "$ETCD_BENCH_ENDPOINTS" -clients "$CLIENTS" -requests "$REQUESTS" \
        -value-size "$VALUE_SIZE" -key-space "$KEY_SPACE" -seed "$SEED" -warmup "$WARMUP"
    else
      echo "could not build the etcd gRPC driver (skipped); $WORK/go-build.log:" >&2
      tail -n 5 "$WORK/go-build.log" >&2
    fi
  elif [[ $ETCD_GRPC != 0 ]]; then
    echo "no gRPC baseline for etcd (needs golang-go and golang-etcd-server-dev)" >&2
  fi
fi

if want_statekv; then
  run_bench statekv "statekv bench" "$STATEKV_BIN" bench --target statekv \
    --endpoints "$STATEKV_ENDPOINTS" --secret "$SECRET" "${BENCH_ARGS[@]}"
fi

# ---- the table ----

echo "| system | client path | ops/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for row in "${ROWS[@]}"; do
  IFS='|' read -r label client json <<<"$row"
  printf "| %s | %s | %.0f | %.3f | %.3f | %.3f | %.3f | %s |\n" "$label" "$client" \
    "$(field "$json" ops_per_sec)" "$(field "$json" p50_ms)" "$(field "$json" p90_ms)" \
    "$(field "$json" p99_ms)" "$(field "$json" p999_ms)" "$(field "$json" errors)"
done
for row in "${ROWS[@]}"; do
  IFS='|' read -r label _ json <<<"$row"
  first=$(field "$json" first_error)
  [[ -n $first ]] && echo "$label first error: $first"
done

skv_json=""
for row in "${ROWS[@]}"; do [[ $row == statekv\|* ]] && skv_json=${row##*|}; done
if [[ -n $skv_json ]] && ((${#ROWS[@]} > 1)); then
  echo
  echo "| statekv against | ops x | p50 x | p99 x |"
  echo "|---|---:|---:|---:|"
  for row in "${ROWS[@]}"; do
    IFS='|' read -r label client json <<<"$row"
    [[ $label == statekv ]] && continue
    awk -v name="$label ($client)" \
      -v so="$(field "$skv_json" ops_per_sec)" -v eo="$(field "$json" ops_per_sec)" \
      -v s50="$(field "$skv_json" p50_ms)" -v e50="$(field "$json" p50_ms)" \
      -v s99="$(field "$skv_json" p99_ms)" -v e99="$(field "$json" p99_ms)" 'BEGIN {
        printf "| %s | %.2f | %.2f | %.2f |\n", name, (eo > 0 ? so / eo : 0),
          (e50 > 0 ? s50 / e50 : 0), (e99 > 0 ? s99 / e99 : 0) }'
  done
  echo
  echo "(ops x = statekv/etcd throughput, higher is better; p50 x and p99 x = statekv/etcd latency,"
  echo " lower is better. The gRPC row is the fairer etcd baseline: the gateway adds a JSON/HTTP hop.)"
fi
echo
if want_etcd; then
  echo "durability: etcd fsyncs its WAL before acknowledging (its default; 3.4 cannot turn it off)."
fi
if want_statekv; then
  echo "durability: statekv \`cluster up\` defaults${STATEKV_CLUSTER_FLAGS:+ plus $STATEKV_CLUSTER_FLAGS}."
fi
