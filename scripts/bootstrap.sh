#!/usr/bin/env bash
# Install the Debian packages a fresh machine lacks (idempotent; root on these machines).
set -euo pipefail
# containerd, runc, containernetworking-plugins, nftables: the real node
# (`python -m tenantry_dev cluster up --nodes real`, tests/realnode); zookeeper: the
# Keeper stand-in (standins/keeper.py); nodejs: builds the web console (console/, Vite
# needs node >= 20.19, checked below); chromium: the console's browser test
# (tests/e2e/test_console.py, driven by Playwright).
PACKAGES=(git make ca-certificates python3-venv golang-go postgresql redis-server fuse3
  containerd runc containernetworking-plugins nftables zookeeper nodejs chromium)
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
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "node $(node --version) is too old for the console's build (Vite needs >= 20.19)" >&2
  exit 1
fi
