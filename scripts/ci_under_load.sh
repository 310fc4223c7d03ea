#!/usr/bin/env bash
# The loaded-machine proof: `bash .ci/run` from a fresh clone of HEAD, RUNS times in a
# row (default 3), while CPU hogs keep every core busy the whole time.
#
#   bash scripts/ci_under_load.sh [RUNS]     # prints one line per run, then a summary
#
# The hogs are plain shell busy loops, one per core, each bounded by `timeout` (so none
# outlives this script even if it is killed) and stopped by their PIDs at exit. Logs go
# to $OUT (default /tmp/tenantry-ci-under-load); each run's clone is removed after it.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${1:-3}"
OUT="${OUT:-/tmp/tenantry-ci-under-load}"
HOG_SECONDS="${HOG_SECONDS:-$((RUNS * 2400))}"
mkdir -p "$OUT"

hogs=()
stop_hogs() {
  local pid
  for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${hogs[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_hogs EXIT
for _ in $(seq 1 "$(nproc)"); do
  timeout "$HOG_SECONDS" sh -c 'while :; do :; done' &
  hogs+=("$!")
done
echo "$(date -u +%FT%TZ) $(nproc) CPU hogs running (pids ${hogs[*]}), $RUNS runs of .ci/run"

failed=0
for run in $(seq 1 "$RUNS"); do
  clone="$(mktemp -d /tmp/tenantry-ci.XXXXXX)"
  git clone -q "$REPO" "$clone"
  start=$SECONDS
  if (cd "$clone" && CI=true bash .ci/run </dev/null >"$OUT/run-$run.log" 2>&1); then rc=0; else rc=$?; fi
  took=$((SECONDS - start))
  summary="$(grep -E '^=+ .*(passed|failed|error).* in [0-9.]+s' "$OUT/run-$run.log" | tail -n1 || true)"
  echo "$(date -u +%FT%TZ) run $run: rc=$rc in ${took} s: ${summary:-no pytest summary} (log $OUT/run-$run.log)"
  [[ $rc -eq 0 ]] || failed=$((failed + 1))
  rm -rf "$clone"
done
echo "$(date -u +%FT%TZ) $((RUNS - failed)) of $RUNS runs passed under load ($(uname -n), $(nproc) cores)"
[[ $failed -eq 0 ]]
