#!/usr/bin/env bash
# Configures and builds statekv into ./build (Release with debug info).
#   scripts/build.sh            every target: the binary, tests, benchmarks, fuzzers
#   scripts/build.sh statekv    only the named targets (scripts/run.sh builds just the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  cmake -S . -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
TARGETS=()
(($#)) && TARGETS=(--target "$@")
cmake --build "$BUILD_DIR" -j "$(nproc)" "${TARGETS[@]}"
