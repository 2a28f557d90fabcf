#!/usr/bin/env bash
# What routing through a node that does not own a key costs: redis-benchmark
# against a 3-node statekv cluster (slots default keyspace, memory engine),
# the same key sent to its owner and to a node that forwards it over the peer
# transport, plus the cluster-aware client (--cluster, always direct) and a
# plain client on one node (random keys: two thirds routed). Prints one table
# with the ratios through/direct. Run by hand (bench/README.md).
#
#   bench/compare_routing.sh
#   REQUESTS=50000 CLIENTS=16 PIPELINE=1 bench/compare_routing.sh
set -euo pipefail
cd "$(dirname "$0")/.."
STATEKV_BIN=${STATEKV_BIN:-build/statekv}
REQUESTS=${REQUESTS:-100000}
CLIENTS=${CLIENTS:-50}
PIPELINE=${PIPELINE:-1}
BASE=${BASE:-7601}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/statekv-routing-XXXXXX")
cleanup() {
  "$STATEKV_BIN" cluster down --data "$WORK/data" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$STATEKV_BIN" cluster up --nodes 3 --base-port "$BASE" --data "$WORK/data" --partitioner slots \
  --engine memory --detach >/dev/null
# redis-benchmark without -r uses the literal key "key:__rand_int__".
KEY='key:__rand_int__'
OWNER_ADDR=$(redis-cli -p "$BASE" locate "$KEY" | sed -n '/^addresses$/{n;p}')
OWNER_PORT=${OWNER_ADDR##*:}
OTHER_PORT=$BASE
[[ $OTHER_PORT == "$OWNER_PORT" ]] && OTHER_PORT=$((BASE + 1))

bench() {  # port extra-args... -> "set_rps get_rps set_p50 get_p50"
  redis-benchmark -p "$1" "${@:2}" -t set,get -n "$REQUESTS" -c "$CLIENTS" -P "$PIPELINE" --csv 2>/dev/null |
    awk -F, '{gsub(/"/, "")} NR > 1 {r[$1] = $2; p[$1] = $5} END {printf "%s %s %s %s\n", r["SET"], r["GET"], p["SET"], p["GET"]}'
}
read -r d_set d_get d_sp d_gp < <(bench "$OWNER_PORT")
read -r t_set t_get t_sp t_gp < <(bench "$OTHER_PORT")
read -r c_set c_get c_sp c_gp < <(bench "$BASE" --cluster -r 100000)
read -r p_set p_get p_sp p_gp < <(bench "$BASE" -r 100000)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo "redis-benchmark -n $REQUESTS -c $CLIENTS -P $PIPELINE, 3 nodes on one machine"
echo
echo "| path | SET ops/s | GET ops/s | SET p50 ms | GET p50 ms |"
echo "|---|---:|---:|---:|---:|"
echo "| one key, direct to its owner (port $OWNER_PORT) | $d_set | $d_get | $d_sp | $d_gp |"
echo "| the same key through a non-owner (port $OTHER_PORT) | $t_set | $t_get | $t_sp | $t_gp |"
echo "| random keys, cluster-aware client (--cluster) | $c_set | $c_get | $c_sp | $c_gp |"
echo "| random keys, plain client on one node (2/3 routed) | $p_set | $p_get | $p_sp | $p_gp |"
echo
echo "through a non-owner / direct: SET $(ratio "$t_set" "$d_set")x, GET $(ratio "$t_get" "$d_get")x"
