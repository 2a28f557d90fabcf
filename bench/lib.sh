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
