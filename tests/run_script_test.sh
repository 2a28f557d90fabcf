#!/usr/bin/env bash
# scripts/run.sh builds only what it runs: the statekv binary, not the tests,
# benchmarks and fuzzers scripts/test.sh builds (108 of 193 targets). A cmake
# placed first on PATH records each call and runs the real cmake (but for the
# build itself, below); run.sh is
# asked for `cluster up --help`, so it builds and then starts nothing.
#
#   tests/run_script_test.sh SOURCE_DIR BUILD_DIR      (CTest: run_script_builds_only_the_binary)
set -euo pipefail
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/statekv-run-script-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bin"
REAL_CMAKE=$(command -v cmake)
# The spy records a build and does not run it: the build tree is the one the
# other tests run from, and a relink while they run makes their `statekv`
# calls fail with "Permission denied" (found when sources changed after the
# build: this test relinked build/statekv under a running ctest). CTest runs
# after the build, so the binary run.sh then starts is there.
cat >"$WORK/bin/cmake" <<SPY
#!/usr/bin/env bash
echo "\$*" >>"$WORK/cmake.calls"
case " \$* " in *" --build "*) exit 0 ;; esac
exec "$REAL_CMAKE" "\$@"
SPY
chmod +x "$WORK/bin/cmake"
BUILD_DIR=$BUILD PATH="$WORK/bin:$PATH" "$SRC/scripts/run.sh" --help >"$WORK/out" 2>&1 || {
  cat "$WORK/out"
  echo "FAILED: scripts/run.sh --help failed"
  exit 1
}
grep -q "Start N local nodes" "$WORK/out" || { cat "$WORK/out"; echo "FAILED: no cluster up help"; exit 1; }
builds=$(grep -- "--build" "$WORK/cmake.calls" || true)
[[ -n $builds ]] || { echo "FAILED: run.sh did not build"; exit 1; }
if grep -v -- "--target statekv\$" <<<"$builds"; then
  echo "FAILED: run.sh built more than the binary (above)"
  exit 1
fi
echo "run.sh builds only the binary: $builds"
