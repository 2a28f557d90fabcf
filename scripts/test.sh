#!/usr/bin/env bash
# The test command: installs what the build needs (apt-get, via scripts/deps.sh),
# configures and builds everything into ./build, then runs every test through
# CTest. Exits non-zero when anything fails.
#
#   scripts/test.sh          unit, integration and fuzz tests (everything but "soak")
#   scripts/test.sh --soak   only the long runs labelled "soak"
#   scripts/test.sh -- ARGS  extra arguments for ctest (e.g. -- -R CommandsTest)
# BUILD_DIR (default: build) is honoured as by scripts/build.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

LABEL_ARGS=(-LE soak)
EXTRA=()
while (($#)); do
  case "$1" in
    --soak) LABEL_ARGS=(-L soak) ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

BUILD_DIR=${BUILD_DIR:-build}
export BUILD_DIR
scripts/deps.sh
scripts/build.sh
# -j2: integration tests start real servers; every test picks its own ports
# and temp dirs, so two at a time is safe on a 2-core machine.
ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 "${LABEL_ARGS[@]}" "${EXTRA[@]}"
