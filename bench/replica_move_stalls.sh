#!/usr/bin/env bash
# What a shard's snapshot restore and a moved-away replica's erase cost the
# other groups of a node (docs/replication.md, "Restoring off the data loop").
# Run by hand, not in CI: about a minute a part, two builds side by side with
# BINS="old/statekv build/statekv".
#
#   bench/replica_move_stalls.sh                  # build/statekv, both parts
#   BINS="/tmp/old/build/statekv build/statekv" ROUNDS=2 bench/replica_move_stalls.sh
#   PARTS=restore KEYS=600000 bench/replica_move_stalls.sh
#   PROBE=write PARTS=restore bench/replica_move_stalls.sh
#   PARTS=memory KEYS=600000 bench/replica_move_stalls.sh
#
# restore: a 3-node `cluster up` (RocksDB, the default keyspace: 3 consensus
#   groups, factor 3) and a consensus keyspace `small` (prefix s:); node 3
#   killed; KEYS SETs of 100 bytes into the default keyspace (redis-benchmark
#   -P 16 through node 1); node 3 restarted (`cluster restart-missing`), which
#   restores the default keyspace's shards from snapshots while a client reads
#   s:probe on node 3 at `eventual` (its own replica of `small`, which needs no
#   snapshot) in a closed loop for PROBE_SECONDS: its slowest read is how long
#   node 3 stopped serving its other groups. With PROBE=write the client SETs
#   instead a key of a `REPLICATION none` keyspace `solo` (prefix o:) that node 3
#   owns (served by its I/O thread, a write to the same RocksDB as the
#   restore's): its slowest SET is how long the restore held node 3's other
#   engine writes. The restores' log lines follow.
# memory (not in the default PARTS): the same cluster, KEYS SETs, node 3 killed
#   and its rocksdb/ removed (its log kept), restarted: it takes every shard
#   as a snapshot at once (docs/replication.md, "A follower's snapshot staged
#   in a file"); its peak resident memory (VmHWM) once the three restores are
#   logged, beside node 1's.
# move: the same cluster and load, then `cluster add-node` (two shards move to
#   node 4, two nodes each erase one): the snapshots restored, and the
#   elections a silent leader caused ("no message from leader") during it.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

BINS=${BINS:-build/statekv}
PARTS=${PARTS:-"restore move"}
ROUNDS=${ROUNDS:-1}
KEYS=${KEYS:-300000}
PROBE_SECONDS=${PROBE_SECONDS:-6}
PROBE=${PROBE:-read}
case "$PROBE" in read | write) ;; *) echo "PROBE must be read or write" >&2; exit 2 ;; esac
for tool in redis-cli redis-benchmark python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
for bin in $BINS; do
  [[ -x $bin ]] || { echo "no statekv binary at $bin (run scripts/build.sh)" >&2; exit 1; }
done
export STATEKV_CLUSTER_SECRET=${STATEKV_CLUSTER_SECRET:-bench-$RANDOM$RANDOM$RANDOM}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/statekv-move-stalls-XXXXXX")
BIN="" DATA=""
cleanup() {  # by pid: SIGTERM, then SIGKILL what is left after 10 s
  local pids=()
  if [[ -n $DATA ]]; then
    "$BIN" cluster down --data "$DATA" >/dev/null 2>&1 || true
    for f in "$DATA"/node*/pid; do [[ -f $f ]] && pids+=("$(cat "$f")"); done
  fi
  ((${#pids[@]})) && stop_pids "${pids[@]}"
  DATA=""
}
trap 'cleanup; rm -rf "$WORK"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_base() {  # RESP ports B..B+3 and peer ports B+10000..B+10003 free, below 32768
  local base ok p
  while :; do
    base=$((12000 + RANDOM % 7000))
    ok=1
    for p in $base $((base + 1)) $((base + 2)) $((base + 3)) $((base + 10000)) \
      $((base + 10001)) $((base + 10002)) $((base + 10003)); do
      port_free "$p" || ok=0
    done
    ((ok)) && { echo "$base"; return; }
  done
}

# The closed-loop client: WITH eventual GET <key> (or with "write", SET <key>)
# on <port> for <seconds>, counted from its first answer with a value (+OK).
cat >"$WORK/probe.py" <<'EOF'
import socket, sys, time
port, key, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
write = len(sys.argv) > 4 and sys.argv[4] == "write"
def cmd(*a):
    return ("*%d\r\n" % len(a) + "".join("$%d\r\n%s\r\n" % (len(x), x) for x in a)).encode()
deadline = time.time() + 120
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("node never listened")
        time.sleep(0.05)
f = s.makefile("rb")
def call(*a):
    s.sendall(cmd(*a))
    line = f.readline()
    if line.startswith(b"$") and not line.startswith(b"$-1"):
        f.read(int(line[1:]) + 2)
    return line
started, lat, errors = None, [], 0
while True:
    t = time.time()
    r = call("SET", key, "v") if write else call("WITH", "eventual", "GET", key)
    d = time.time() - t
    if started is None:
        if r.startswith(b"+") or (r.startswith(b"$") and not r.startswith(b"$-1")):
            started = time.time()
        else:
            time.sleep(0.002)
        continue
    errors += r.startswith(b"-")
    lat.append(d)
    if time.time() - started > seconds:
        break
lat.sort()
print("%s %d, errors %d, p50 %.2f ms, p99 %.2f ms, slowest %.1f ms" % ("sets" if write else "reads",
    len(lat), errors, lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3, lat[-1] * 1e3))
EOF

up_and_fill() {  # bin: a 3-node cluster holding KEYS keys; sets BIN, DATA, BASE
  BIN=$1
  DATA="$WORK/data"
  rm -rf "$DATA"
  BASE=$(pick_base)
  "$BIN" cluster up --nodes 3 --base-port "$BASE" --data "$DATA" --detach >"$WORK/up.log" 2>&1 ||
    { echo "cluster up failed:" >&2; tail -n 20 "$WORK/up.log" >&2; exit 1; }
}
fill() {
  redis-benchmark -p "$BASE" -t set -n "$KEYS" -r 10000000 -d 100 -P 16 -c 20 -q >/dev/null 2>&1
}

restore_part() {  # bin
  up_and_fill "$1"
  redis-cli -p "$BASE" KEYSPACE CREATE small PREFIX s: REPLICATION consensus FACTOR 3 >/dev/null
  wait_writable s:probe "$BASE" $((BASE + 1)) $((BASE + 2))  # bench/lib.sh
  local probe_key=s:probe
  if [[ $PROBE == write ]]; then
    redis-cli -p "$BASE" KEYSPACE CREATE solo PREFIX o: REPLICATION none >/dev/null
    local i node3_addr="127.0.0.1:$((BASE + 2))"
    for i in $(seq 1000); do  # a key node 3 owns
      if redis-cli -p "$BASE" LOCATE "o:$i" | grep -q "$node3_addr"; then probe_key="o:$i"; break; fi
    done
    [[ $probe_key == o:* ]] || { echo "no key of solo on node 3" >&2; exit 1; }
  fi
  local three
  three=$(cat "$DATA/node3/pid")
  kill -KILL "$three"
  sleep 0.5
  fill
  "$BIN" cluster restart-missing --data "$DATA" >"$WORK/restart.log" 2>&1 &
  local restart=$!
  echo "  $PROBE client on node 3 ($probe_key): $(python3 "$WORK/probe.py" $((BASE + 2)) "$probe_key" "$PROBE_SECONDS" "$PROBE" 2>&1)"
  wait "$restart" || true
  grep -h "restored a snapshot" "$DATA"/node3/*.log | sed 's/.*info /  /' | cut -c1-200 || true
  cleanup
}

memory_part() {  # bin
  up_and_fill "$1"
  fill
  kill -KILL "$(cat "$DATA/node3/pid")"
  sleep 0.5
  rm -rf "$DATA/node3/rocksdb"
  "$BIN" cluster restart-missing --data "$DATA" >"$WORK/restart.log" 2>&1 ||
    { echo "restart-missing failed:" >&2; tail -n 20 "$WORK/restart.log" >&2; exit 1; }
  local i restored=0
  for i in $(seq 120); do
    restored=$(cat "$DATA"/node3/*.log | grep -c "restored a snapshot" || true)
    ((restored >= 3)) && break
    sleep 0.5
  done
  echo "  node 3 restored $restored snapshots; peak RSS node 3 $(awk '/VmHWM/ {print $2, $3}' \
    "/proc/$(cat "$DATA/node3/pid")/status"), node 1 $(awk '/VmHWM/ {print $2, $3}' \
    "/proc/$(cat "$DATA/node1/pid")/status")"
  grep -h "restored a snapshot" "$DATA"/node3/*.log | sed 's/.*info /  /' | cut -c1-200 || true
  cleanup
}

move_part() {  # bin
  up_and_fill "$1"
  fill
  "$BIN" cluster add-node --data "$DATA" >"$WORK/add.log" 2>&1 ||
    { echo "add-node failed:" >&2; tail -n 20 "$WORK/add.log" >&2; exit 1; }
  sleep 3
  local restores elections
  restores=$(cat "$DATA"/node*/*.log | grep -c "restored a snapshot" || true)
  elections=$(cat "$DATA"/node*/*.log | grep -c "no message from leader" || true)
  echo "  snapshots restored $restores, elections after a silent leader $elections"
  grep -h "erased its" "$DATA"/node*/*.log | sed 's/.*info /  /' | cut -c1-120 || true
  cleanup
}

echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  for bin in $BINS; do
    for part in $PARTS; do
      echo "round $round, $bin, $part:"
      case "$part" in
        restore) restore_part "$bin" ;;
        move) move_part "$bin" ;;
        memory) memory_part "$bin" ;;
        *) echo "unknown part $part (restore, move, memory)" >&2; exit 2 ;;
      esac
    done
  done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
