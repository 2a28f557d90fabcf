#!/usr/bin/env bash
# Installs what statekv needs, builds it, and runs a local cluster of 3 nodes in
# the foreground: node K serves Redis clients on 127.0.0.1:700K (peers on
# 1700K), with data under ./data/nodeK. The nodes form one raft group that keeps
# the cluster map. Ctrl-C stops every node cleanly. Extra arguments go to
# `statekv cluster up` (see --help), e.g.
#   scripts/run.sh --nodes 5
#   scripts/run.sh --engine memory
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
# Only the binary it runs (tests, benchmarks and fuzzers are scripts/test.sh's).
scripts/build.sh statekv
BUILD_DIR=${BUILD_DIR:-build}
echo "statekv: starting the local cluster (a new one: 3 nodes on 127.0.0.1:7001-7003) with data in ./data (Ctrl-C stops it)"
echo "connect with: redis-cli -p 7001   (then: cluster info)"
echo "inspect with: $BUILD_DIR/statekv cluster status; a node that died restarts with: $BUILD_DIR/statekv cluster restart-missing"
# ./data unless the arguments name another --data.
ARGS=("$@")
[[ " $* " == *" --data"* ]] || ARGS=(--data ./data "${ARGS[@]}")
# exec: Ctrl-C reaches `cluster up`, which stops every node in order. No
# --nodes: on a data dir that holds a cluster (grown by add-node, say), the
# cluster restarts as it is.
exec "$BUILD_DIR/statekv" cluster up "${ARGS[@]}"
