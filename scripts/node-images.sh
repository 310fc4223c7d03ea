#!/usr/bin/env bash
# The images the real-node cluster (`python -m tenantry_dev cluster up --nodes real`)
# needs and cannot pull, built with scripts/image.sh's dockerd and Debian base and saved
# as docker-archive tarballs (for `ctr -n k8s.io images import`):
#   local/pause:tenantry    the pod sandbox (a static pause.c, FROM scratch)
#   local/toolbox:tenantry  the Debian base as uid 10001 (sleep, getent, python3): tests
#
#   bash scripts/node-images.sh            # build what is missing; print the folder
#   bash scripts/node-images.sh --print-dir
# Idempotent: a tarball whose inputs did not change is not rebuilt.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TENANTRY_CACHE:-$HOME/.cache/tenantry}"
OUT="$CACHE/node-images"
SRC="$REPO/scripts/node-images"
if [[ "${1:-}" == "--print-dir" ]]; then echo "$OUT"; exit 0; fi

# A key of the inputs: rebuilt when pause.c, a Dockerfile or this script changes (a new
# Debian base tarball alone does not rebuild them: remove the folder to force it).
key="$(cat "$SRC"/* "$0" | sha256sum | cut -c1-16)"
if [[ -s "$OUT/pause.tar" && -s "$OUT/toolbox.tar" && "$(cat "$OUT/key" 2>/dev/null)" == "$key" ]]; then
  echo "$OUT"; exit 0
fi
mkdir -p "$OUT"
# shellcheck source=scripts/image.sh
source "$REPO/scripts/image.sh"   # start_dockerd, make_base, cleanup (main is not run)
[[ $EUID -eq 0 ]] || die "run as root (dockerd, debootstrap)"
mkdir -p "$CACHE/image"
trap cleanup EXIT
ensure_packages
start_dockerd
make_base
ctx="$(mktemp -d)"
gcc -static -Os -s -o "$ctx/pause" "$SRC/pause.c"
step "docker build local/pause:tenantry"
DOCKER_BUILDKIT=1 "$DOCKER" build -q -f "$SRC/pause.Dockerfile" -t local/pause:tenantry "$ctx" >/dev/null
step "docker build local/toolbox:tenantry"
DOCKER_BUILDKIT=1 "$DOCKER" build -q -f "$SRC/toolbox.Dockerfile" --build-arg "BASE_IMAGE=$BASE_TAG" \
  -t local/toolbox:tenantry "$ctx" >/dev/null
rm -rf "$ctx"
"$DOCKER" save -o "$OUT/pause.tar.tmp" local/pause:tenantry
"$DOCKER" save -o "$OUT/toolbox.tar.tmp" local/toolbox:tenantry
mv "$OUT/pause.tar.tmp" "$OUT/pause.tar"
mv "$OUT/toolbox.tar.tmp" "$OUT/toolbox.tar"
echo "$key" >"$OUT/key"
step "saved in $OUT"
echo "$OUT"
