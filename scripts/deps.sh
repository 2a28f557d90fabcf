#!/usr/bin/env bash
# Installs every Debian package statekv needs to build, test and benchmark.
# Idempotent: skips apt-get when everything is already installed.
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build pkg-config clang
  librocksdb-dev libasio-dev libspdlog-dev libfmt-dev libcli11-dev
  libtomlplusplus-dev nlohmann-json3-dev libxxhash-dev libssl-dev libabsl-dev libjemalloc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libhiredis-dev redis-tools redis-server
  etcd-server etcd-client
  iproute2 nftables
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
