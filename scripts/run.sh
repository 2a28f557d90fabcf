#!/usr/bin/env bash
# Installs what statekv needs, builds it, and runs one node in the foreground:
# 127.0.0.1:7001, data under ./data (the rocksdb engine, fsync batch). Ctrl-C
# stops it cleanly. Extra arguments go to `statekv server` (see --help), e.g.
#   scripts/run.sh --engine memory
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
echo "statekv: starting on 127.0.0.1:7001 with data in ./data (Ctrl-C to stop)"
echo "connect with: redis-cli -p 7001"
# exec: Ctrl-C reaches statekv directly, which shuts down cleanly.
exec "$BUILD_DIR/statekv" server --bind 127.0.0.1 --port 7001 --data ./data "$@"
