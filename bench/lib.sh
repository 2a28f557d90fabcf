# Shared by the bench scripts (sourced, not run).

# Stops the processes whose ids are given: SIGTERM, then SIGKILL whatever is
# still there after 10 s. By pid only, never by name (other clusters and
# servers may run on the machine).
stop_pids() {
  local pid alive
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
}

# The leader of each replica group of keyspace `rep` as the nodes on the given
# RESP ports report it (INFO replication), one "port group leader" line per
# group and node, sorted; empty output when a group has no leader.
rep_leaders() {
  local p
  for p in "$@"; do
    redis-cli -p "$p" INFO replication 2>/dev/null | tr -d '\r' |
      awk -v p="$p" -F'[:,]' '/^statekv_group_/ && /keyspace=rep,/ {
        for (i = 2; i <= NF; i++) if ($i ~ /^leader=/) { l = substr($i, 8); if (l == "none") bad = 1; print p, $1, l }
      } END { if (bad) exit 1 }' || return 1
  done | sort
}

# Waits (up to 30 s) until every group of keyspace `rep` has a leader that all
# the nodes on the given ports name and that stayed the same for a second:
# just after the keyspace is created a group may still move to its preferred
# node, which a client routing by leader (statekv bench --route leader) would
# not follow until an error.
wait_rep_leaders_settled() {
  local before="" now
  for _ in $(seq 30); do
    now=$(rep_leaders "$@" || true)
    # Unchanged for a second, and one leader per group on every node.
    if [[ -n $now && $now == "$before" &&
      $(awk '{print $2, $3}' <<<"$now" | sort -u | wc -l) == $(awk '{print $2}' <<<"$now" | sort -u | wc -l) ]]; then
      return 0
    fi
    before=$now
    sleep 1
  done
  echo "the groups of keyspace rep did not settle on their leaders within 30 s" >&2
  return 1
}

# Waits (up to 30 s) until a SET of `key` answers OK through each of the given
# RESP ports: a keyspace just created has groups electing their leaders.
wait_writable() {
  local key=$1 p
  shift
  for p in "$@"; do
    for _ in $(seq 300); do
      [[ $(redis-cli -p "$p" SET "$key" 1 2>/dev/null) == OK ]] && break
      sleep 0.1
    done
  done
}
