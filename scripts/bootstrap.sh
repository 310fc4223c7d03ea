#!/usr/bin/env bash
# Install the Debian packages a fresh machine lacks (idempotent; root on these machines).
set -euo pipefail
# containerd, runc, containernetworking-plugins, nftables: the real node
# (`python -m tenantry_dev cluster up --nodes real`, tests/realnode); zookeeper: the
# Keeper stand-in (standins/keeper.py).
PACKAGES=(git make ca-certificates python3-venv golang-go postgresql redis-server fuse3
  containerd runc containernetworking-plugins nftables zookeeper)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# Go and Python usually come with the machine rather than from Debian: accept them.
if command -v go >/dev/null; then missing=("${missing[@]/golang-go}"); fi
if python3 -m venv --help >/dev/null 2>&1; then missing=("${missing[@]/python3-venv}"); fi
read -r -a missing <<<"${missing[*]}"
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "==> apt-get install ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
else
  echo "==> system packages present"
fi
