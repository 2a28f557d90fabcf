#!/usr/bin/env bash
# `statekv check linearizable` against porcupine on the same etcd-shaped register
# histories (`statekv check-gen`: few keys, values 0..4, a third each reads, writes
# and cas, many timeouts), linearizable and with a planted stale read. Prints the
# time per history for each, side by side, and the ratio statekv/porcupine.
# Run by hand, not in CI (bench/README.md).
#
#   PORCUPINE_DIR=~/src/porcupine bench/compare_porcupine.sh
#   SEEDS=20 OPS="73 200 1000" PORCUPINE_DIR=... bench/compare_porcupine.sh
#
# PORCUPINE_DIR: a checkout of github.com/anishathalye/porcupine (Debian does not
# package it; the driver uses only porcupine.Model{Init,Step,Equal} and
# porcupine.CheckOperations). Needs Go (apt-get install golang-go); builds offline.
# Times are for judging alone: statekv's is `statekv check`'s check= (reading and
# parsing the file excluded), porcupine's the time inside CheckOperations.
set -euo pipefail
cd "$(dirname "$0")/.."

STATEKV_BIN=${STATEKV_BIN:-build/statekv}
SEEDS=${SEEDS:-10}
OPS=${OPS:-73 150 500}
CLIENTS=${CLIENTS:-10 26}
INFO=${INFO:-0.25}
KEYS=${KEYS:-1}
LIMIT=${LIMIT:-60}  # seconds per history per checker; past it the row says ">LIMIT"

[[ -x "$STATEKV_BIN" ]] || { echo "no statekv binary at $STATEKV_BIN (run scripts/build.sh)" >&2; exit 1; }
[[ -n "${PORCUPINE_DIR:-}" && -f "$PORCUPINE_DIR/go.mod" ]] ||
  { echo "set PORCUPINE_DIR to a porcupine checkout (with its go.mod)" >&2; exit 1; }
command -v go >/dev/null || { echo "missing go (apt-get install golang-go)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/statekv-porcupine-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

cp bench/porcupine_driver/main.go bench/porcupine_driver/go.mod "$WORK/"
(cd "$WORK" &&
  go mod edit -replace "github.com/anishathalye/porcupine=$(cd "$PORCUPINE_DIR" && pwd)" &&
  GOFLAGS=-mod=mod GOPROXY=off GOCACHE="$WORK/gocache" go build -o porcupine_driver .)

printf '%-6s %-5s %-8s %5s %-8s %10s %-8s %10s %8s %10s\n' \
  ops clnts kind seed statekv s explored porcupine s ratio
for ops in $OPS; do
  for clients in $CLIENTS; do
    for kind in valid violate; do
      for seed in $(seq "$SEEDS"); do
        f="$WORK/h-$ops-$clients-$kind-$seed.jsonl"
        flag=()
        [[ $kind == violate ]] && flag=(--violate)
        "$STATEKV_BIN" check-gen --seed "$seed" --ops "$ops" --clients "$clients" \
          --keys "$KEYS" --info "$INFO" "${flag[@]}" -o "$f" || continue  # 3: nothing to plant
        out=$(timeout "$LIMIT" "$STATEKV_BIN" check linearizable "$f" || true)
        s_verdict=$(head -1 <<<"$out" | cut -d' ' -f1)
        s_time=$(grep -o 'check=[0-9.]*' <<<"$out" | cut -d= -f2 || true)
        s_explored=$(grep -o 'explored=[0-9]*' <<<"$out" | cut -d= -f2 || true)
        p_verdict="" p_time=""
        read -r _ p_verdict p_time _ < <(timeout "$LIMIT" "$WORK/porcupine_driver" "$f" || true) || true
        [[ -n $s_time ]] || s_verdict="-" s_time=">$LIMIT"
        [[ -n $p_time ]] || p_verdict="-" p_time=">$LIMIT"
        # statekv/porcupine; a bound ("<") when porcupine ran out of time.
        ratio=$(awk -v a="$s_time" -v b="$p_time" 'BEGIN {
          if (b ~ />/) { printf "<%.5f", a / substr(b, 2) } else if (a ~ />/) { printf ">?" }
          else { printf "%.3f", (b > 0 ? a / b : 0) } }')
        printf '%-6s %-5s %-8s %5s %-8s %10s %-8s %10s %8s %10s\n' "$ops" "$clients" "$kind" \
          "$seed" "$s_verdict" "$s_time" "$s_explored" "$p_verdict" "$p_time" "$ratio"
        [[ $s_verdict == "$p_verdict" || $s_verdict == - || $p_verdict == - ]] ||
          echo "  ^ verdicts differ" >&2
      done
    done
  done
done
