#!/usr/bin/env bash
# The pinned uv (requirements/uv.lock, with hashes), installed once into the tool cache
# outside the repository; prints the path of its binary.
#
# uv itself comes from PyPI through the machine's pip, checked against the lock's hashes,
# so the tool that installs the locked dependencies is locked too. Idempotent.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCK="$REPO/requirements/uv.lock"
VERSION="$(sed -n 's/^uv==\([^ ]*\).*/\1/p' "$LOCK")"
[[ -n "$VERSION" ]] || { echo "uv.sh: no uv== pin in $LOCK" >&2; exit 1; }
CACHE="${TENANTRY_CACHE:-$HOME/.cache/tenantry}"
DIR="$CACHE/uv-$VERSION"
if [[ ! -x "$DIR/bin/uv" || ! -f "$DIR/.installed" ]]; then
  echo "==> uv $VERSION into $DIR" >&2
  rm -rf "$DIR"
  python3 -m venv "$DIR"
  "$DIR/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
    --require-hashes -r "$LOCK" >&2
  touch "$DIR/.installed"
fi
echo "$DIR/bin/uv"
