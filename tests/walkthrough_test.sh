#!/usr/bin/env bash
# The README's walk-through, followed the way a user follows it, against the
# real binary: scripts/run.sh starts a 3-node cluster in the foreground (with
# a temp data dir and free ports instead of ./data and 7001-7003), redis-cli
# writes and reads through different nodes, the node logs fill while they run,
# a second `cluster up` on the same data dir is refused naming the first, a
# node killed with kill -9 loses no key (the default keyspace is replicated)
# and turns `statekv cluster status` to degraded, `statekv cluster
# restart-missing` brings it back and health returns,
# and Ctrl-C stops every node. Everything it starts is stopped on exit,
# whatever happens.
#
#   tests/walkthrough_test.sh SOURCE_DIR BUILD_DIR      (CTest: walkthrough)
set -euo pipefail
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
BIN=$BUILD/statekv
WORK=$(mktemp -d "${TMPDIR:-/tmp}/statekv-walkthrough-XXXXXX")
DATA=$WORK/data
SUP=""

cleanup() {
  if [[ -n $SUP ]] && kill -0 "$SUP" 2>/dev/null; then
    kill -TERM "$SUP" 2>/dev/null || true
    wait "$SUP" 2>/dev/null || true
  fi
  "$BIN" cluster down --data "$DATA" >/dev/null 2>&1 || true
  for f in "$DATA"/node*/pid; do
    [[ -f $f ]] && kill -KILL "$(cat "$f")" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "WALK-THROUGH FAILED: $*" >&2
  echo "--- scripts/run.sh (cluster up) printed:" >&2
  cat "$WORK/up.out" >&2 || true
  exit 1
}
step() { echo "== $*"; }

# Waits up to $1 seconds for the command after it to succeed.
eventually() {
  local limit=$1
  shift
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# Running: alive and not a zombie (a killed process whose parent has not
# reaped it yet is dead).
running() {
  local state
  state=$(sed -E 's/.*\) (.).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Three RESP ports and their peer ports (+10000), below the ephemeral range.
BASE=""
for _ in $(seq 50); do
  b=$((10000 + RANDOM % 9000))
  if port_free "$b" && port_free $((b + 1)) && port_free $((b + 2)) &&
    port_free $((b + 10000)) && port_free $((b + 10001)) && port_free $((b + 10002)); then
    BASE=$b
    break
  fi
done
[[ -n $BASE ]] || fail "no free ports"
P1=$BASE P2=$((BASE + 1)) P3=$((BASE + 2))
cli() { redis-cli -h 127.0.0.1 "$@"; }

step "scripts/run.sh starts the cluster (ports $P1-$P3, data $DATA)"
BUILD_DIR=$BUILD "$SRC/scripts/run.sh" --data "$DATA" --base-port "$BASE" >"$WORK/up.out" 2>&1 &
SUP=$!
eventually 300 grep -q "running in the foreground" "$WORK/up.out" ||
  fail "the cluster did not come up"

step "redis-cli: any node serves any key"
for i in $(seq 1 30); do
  [[ $(cli -p "$P1" set "key:$i" "value-$i") == OK ]] || fail "set key:$i"
done
[[ $(cli -p "$P3" get key:7) == value-7 ]] || fail "get through node 3"
[[ $(cli -p "$P2" dbsize) == 30 ]] || fail "dbsize is $(cli -p "$P2" dbsize)"
cli -p "$P2" locate key:7 | grep -q . || fail "locate"

step "health: ok"
eventually 10 sh -c "redis-cli -h 127.0.0.1 -p $P2 cluster info | grep -q cluster_state:ok" ||
  fail "cluster_state is not ok: $(cli -p "$P2" cluster info)"
"$BIN" cluster status --data "$DATA" >"$WORK/status.out" 2>&1 ||
  fail "cluster status failed on a healthy cluster: $(cat "$WORK/status.out")"

step "the node logs are written while the nodes run"
for k in 1 2 3; do
  [[ -s $DATA/node$k/statekv.log ]] || fail "node $k's log is empty"
  grep -q "ready: bind=" "$DATA/node$k/statekv.log" || fail "node $k's log lacks its start"
done

step "a second cluster up on the same data dir is refused, naming the first"
set +e
timeout 20 "$BIN" cluster up --data "$DATA" >"$WORK/second.out" 2>&1
second=$?
set -e
[[ $second == 1 ]] || fail "second cluster up exited $second: $(cat "$WORK/second.out")"
grep -q "already run by \`statekv cluster up\` (supervising the nodes) (pid $SUP" "$WORK/second.out" ||
  fail "the refusal does not name the first: $(cat "$WORK/second.out")"
running "$SUP" || fail "the first cluster up is gone"
[[ $(cli -p "$P1" get key:1) == value-1 ]] || fail "the cluster stopped serving"

step "kill -9 one node: every key is still served, health is degraded"
# The default keyspace of a 3-node cluster is replicated (consensus, factor 3).
ONE=$(cat "$DATA/node1/pid")
TWO=$(cat "$DATA/node2/pid")
kill -9 "$TWO"
eventually 10 sh -c "redis-cli -h 127.0.0.1 -p $P3 set key:after-kill v | grep -q OK" ||
  fail "not writable through node 3 with node 2 down"
for i in $(seq 1 30); do
  [[ $(cli -p "$P1" get "key:$i") == "value-$i" ]] || fail "key:$i lost with node 2 down"
done
cli -p "$P1" cluster info | grep -q cluster_state:ok ||
  fail "cluster_state is not ok with every shard served: $(cli -p "$P1" cluster info)"
"$BIN" cluster status --data "$DATA" >"$WORK/status.out" 2>&1 ||
  fail "cluster status fails with one node down: $(cat "$WORK/status.out")"
grep -q "health: degraded" "$WORK/status.out" && grep -q "shards below their replication factor" "$WORK/status.out" ||
  fail "cluster status does not say the shards lost a replica: $(cat "$WORK/status.out")"
eventually 10 grep -q "node 2 (pid $TWO) died" "$WORK/up.out" ||
  fail "the supervisor did not report node 2's death"

step "statekv cluster restart-missing brings it back, and nothing else changes"
"$BIN" cluster restart-missing --data "$DATA" >"$WORK/restart.out" 2>&1 ||
  fail "restart-missing failed: $(cat "$WORK/restart.out")"
[[ $(cat "$DATA/node1/pid") == "$ONE" ]] || fail "node 1 was restarted too"
eventually 10 sh -c "redis-cli -h 127.0.0.1 -p $P1 cluster info | grep -q cluster_state:ok" ||
  fail "cluster_state is not ok again: $(cli -p "$P1" cluster info)"
"$BIN" cluster status --data "$DATA" >"$WORK/status.out" 2>&1 ||
  fail "cluster status still fails: $(cat "$WORK/status.out")"
[[ $(cli -p "$P2" get key:7) == value-7 ]] || fail "get through the restarted node"

step "Ctrl-C stops every node"
PIDS=$(cat "$DATA"/node*/pid)
kill -INT "$SUP"
wait "$SUP" || fail "cluster up exited non-zero on Ctrl-C"
SUP=""
for pid in $PIDS; do
  ! running "$pid" || fail "node pid $pid still runs"
done
echo "walk-through passed"
