#!/usr/bin/env bash
# Build the Tenantry image and check that it runs, on a machine with no registry.
#
#   bash scripts/image.sh            # build tenantry:dev and smoke-test it
#   bash scripts/image.sh build      # only build (base image included)
#   bash scripts/image.sh smoke      # only smoke-test an image built before
#   TENANTRY_IMAGE_TAG=x bash ...    # another tag
#   TENANTRY_IMAGE_FRESH=1 bash ...  # cold run: drop the cached base tarball and layers
#   TENANTRY_BUILD_CACHE_KEEP=5GB ...  # BuildKit cache kept after a build (default 3GB)
# The full run (no argument) also saves the image as ~/.cache/tenantry/node-images/
# tenantry.tar for the real-node cluster (tests/incluster).
#
# Idempotent, and nothing is left running:
#   1. installs Debian's docker.io and debootstrap when missing;
#   2. starts its own dockerd (own socket, data root under ~/.cache/tenantry/docker so
#      layers are reused by the next run, exec root in a temporary folder) and stops it
#      by pid at exit;
#   3. makes the base image local/debian:bookworm with debootstrap (minbase + python3,
#      python3-venv, ca-certificates), the tarball cached under ~/.cache/tenantry/image;
#   4. builds the image (progress shown), passing the machine's CA bundle as a BuildKit
#      secret for pip;
#   5. runs `tenantry --help` read-only as uid 10001, checks that `tenantry backup` starts
#      (and refuses to run without its environment), checks there is no compiler, renders
#      a tenant with the operator's builders from the shipped templates, runs the panel
#      SQL safety check (sqlglot) on a valid and a hostile panel, checks that the
#      dev harness (tenantry_dev: local cluster, loopback ClickHouse) and the stand-in
#      servers (standins) are absent and the
#      Python packages are exactly the runtime lock, and runs the control plane against
#      a PostgreSQL started for the test until /healthz answers and its migrations are
#      applied.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TENANTRY_CACHE:-$HOME/.cache/tenantry}"
TAG="${TENANTRY_IMAGE_TAG:-tenantry:dev}"
BASE_TAG="local/debian:bookworm"
PY="${TENANTRY_PYTHON:-$REPO/.venv/bin/python}" # with `packaging`, for scripts/lockcheck.py
INCLUDE="python3,python3-venv,ca-certificates"
CA_BUNDLE="${TENANTRY_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
DOCKER=/usr/bin/docker # Debian's client: BuildKit built in (another docker in PATH may lack it)
DOCKERD=/usr/sbin/dockerd
DATA_ROOT="$CACHE/docker"
BASE_TARBALL="$CACHE/image/debian-bookworm-minbase-$(tr ',' '-' <<<"$INCLUDE").tar"

START=$SECONDS
step() { printf '==> [%4ds] %s\n' "$((SECONDS - START))" "$*"; }
die() { printf 'image.sh: %s\n' "$*" >&2; exit 1; }

# -- 1. packages ------------------------------------------------------------------------
ensure_packages() {
  local missing=() p
  for p in docker.io debootstrap; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    step "apt-get install ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  [[ -x "$DOCKER" ]] || die "$DOCKER missing (Debian docker.io)"
  [[ -x "$PY" ]] || die "$PY missing: run \`make venv\` first (make image does)"
}

# -- 2. dockerd ---------------------------------------------------------------------------
RUN_DIR=""
DOCKERD_PID=""
PG_DIR=""
CP_CONTAINER=""

cleanup() {
  local rc=$?
  if [[ -n "$CP_CONTAINER" ]]; then
    "$DOCKER" rm -f "$CP_CONTAINER" >/dev/null 2>&1 || true
  fi
  if [[ -n "$PG_DIR" && -f "$PG_DIR/data/postmaster.pid" ]]; then
    runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$PG_DIR/data" -m fast -w stop \
      >/dev/null 2>&1 || true
  fi
  [[ -n "$PG_DIR" ]] && rm -rf "$PG_DIR"
  if [[ -n "$DOCKERD_PID" ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    kill "$DOCKERD_PID"
    for _ in $(seq 1 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$DOCKERD_PID" 2>/dev/null && kill -9 "$DOCKERD_PID"
    step "dockerd stopped"
  fi
  if [[ $rc -ne 0 && -n "$RUN_DIR" && -f "$RUN_DIR/dockerd.log" ]]; then
    echo "---- last lines of dockerd.log" >&2
    tail -n 20 "$RUN_DIR/dockerd.log" >&2
  fi
  if [[ -n "$RUN_DIR" ]]; then
    # dockerd leaves its default network namespace mounted under the exec root.
    local m
    while read -r m; do umount "$m" 2>/dev/null || true; done \
      < <(awk -v d="$RUN_DIR/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)
    rm -rf "$RUN_DIR"
  fi
  exit "$rc"
}

start_dockerd() {
  mkdir -p "$DATA_ROOT"
  # One dockerd per data root: serialise concurrent runs of this script.
  exec 9>"$CACHE/docker.lock"
  flock 9
  # A short path: unix socket paths are limited to ~100 bytes.
  RUN_DIR="$(mktemp -d /tmp/tenantry-docker.XXXXXX)"
  export DOCKER_HOST="unix://$RUN_DIR/docker.sock"
  step "dockerd (socket $RUN_DIR/docker.sock, data $DATA_ROOT)"
  # No bridge and no iptables rules: builds and containers use the host network.
  "$DOCKERD" --data-root "$DATA_ROOT" --exec-root "$RUN_DIR/exec" --pidfile "$RUN_DIR/dockerd.pid" \
    -H "$DOCKER_HOST" --bridge=none --iptables=false --ip6tables=false \
    >"$RUN_DIR/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 1 300); do
    "$DOCKER" version >/dev/null 2>&1 && return 0
    kill -0 "$DOCKERD_PID" 2>/dev/null || die "dockerd exited"
    sleep 0.1
  done
  die "dockerd did not answer within 30 s"
}

# -- 3. base image --------------------------------------------------------------------------
make_base() {
  if [[ ! -s "$BASE_TARBALL" ]]; then
    step "debootstrap --variant=minbase --include=$INCLUDE bookworm"
    local tmp
    tmp="$(mktemp -d "$CACHE/image/rootfs.XXXXXX")"
    # The mirror is debootstrap's default unless TENANTRY_DEBIAN_MIRROR names another.
    debootstrap --variant=minbase --include="$INCLUDE" bookworm "$tmp/rootfs" \
      ${TENANTRY_DEBIAN_MIRROR:+"$TENANTRY_DEBIAN_MIRROR"} >"$tmp/debootstrap.log" 2>&1 \
      || { tail -n 30 "$tmp/debootstrap.log" >&2; rm -rf "$tmp"; die "debootstrap failed"; }
    rm -rf "$tmp/rootfs/var/lib/apt/lists/"* "$tmp/rootfs/var/cache/apt/"*.bin \
      "$tmp/rootfs/var/cache/apt/archives/"*.deb "$tmp/rootfs/var/log/"*.log
    tar --numeric-owner -C "$tmp/rootfs" -cf "$tmp/base.tar" .
    mv "$tmp/base.tar" "$BASE_TARBALL"
    rm -rf "$tmp"
  fi
  local sum have
  sum="$(sha256sum "$BASE_TARBALL" | cut -c1-64)"
  have="$("$DOCKER" image inspect -f '{{index .Config.Labels "io.tenantry.base.sha256"}}' \
    "$BASE_TAG" 2>/dev/null || true)"
  if [[ "$have" != "$sum" ]]; then
    step "docker import $BASE_TAG"
    "$DOCKER" import --change "LABEL io.tenantry.base.sha256=$sum" \
      --change 'CMD ["/bin/bash"]' "$BASE_TARBALL" "$BASE_TAG" >/dev/null
  fi
}

# -- 4. build ---------------------------------------------------------------------------------
build() {
  step "docker build $TAG"
  make -C "$REPO" -s console # the web console's built files (console/dist), copied in
  local secret=()
  [[ -s "$CA_BUNDLE" ]] && secret=(--secret "id=cacert,src=$CA_BUNDLE")
  DOCKER_BUILDKIT=1 "$DOCKER" build --progress=plain --network host \
    "${secret[@]}" --build-arg "BASE_IMAGE=$BASE_TAG" -t "$TAG" "$REPO"
  # The image this build replaced (now untagged) goes; the build cache stays, trimmed.
  "$DOCKER" image prune -f >/dev/null
  trim_build_cache
  "$DOCKER" image ls "$TAG"
}

# Every build from a new checkout adds layers to BuildKit's cache, which nothing else
# bounds: after a few hundred builds it held 37 GB, and the shared disk left SeaweedFS
# too little room in CI. The newest layers (the ones the next build reuses) stay.
BUILD_CACHE_KEEP="${TENANTRY_BUILD_CACHE_KEEP:-3GB}"
trim_build_cache() {
  "$DOCKER" builder prune -f --keep-storage "$BUILD_CACHE_KEEP" >/dev/null 2>&1 ||
    printf 'image.sh: warning: docker builder prune failed (build cache not trimmed)\n' >&2
}

# -- 5. smoke tests -----------------------------------------------------------------------------
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

smoke() {
  step "tenantry --help (read-only root, uid 10001, no network)"
  "$DOCKER" run --rm --read-only --tmpfs /tmp --network none "$TAG" --help
  "$DOCKER" run --rm --read-only --network none "$TAG" operator --help >/dev/null
  local who
  # shellcheck disable=SC2016 # expanded by the container's shell
  who="$("$DOCKER" run --rm --read-only --network none --entrypoint /bin/sh "$TAG" -c \
    'id -u; for c in gcc cc c++ make; do command -v "$c" && exit 3; done; echo "$TENANTRY_TEMPLATES_DIR"; ls "$TENANTRY_TEMPLATES_DIR/clickhouse" >/dev/null')"
  [[ "$(head -n1 <<<"$who")" == "10001" ]] || die "image does not run as uid 10001: $who"
  step "tenantry backup (the backup CronJob's command) starts and names what it lacks"
  local out rc=0
  out="$("$DOCKER" run --rm --read-only --tmpfs /tmp --network none "$TAG" backup 2>&1)" || rc=$?
  [[ $rc -eq 2 && "$out" == *"backup: configuration:"*"TENANTRY_TENANT"* ]] ||
    die "tenantry backup without its environment: exit $rc, $out"
  step "the operator's builders render a tenant from the shipped templates"
  "$DOCKER" run --rm --read-only --network none --entrypoint /opt/tenantry/bin/python "$TAG" -c '
from tenantry_operator import builders, normalize
objs = builders.build(normalize.tenant_model({"metadata": {"name": "smoke"}, "spec": {}}))
assert objs, "no objects"
print(f"{len(objs)} objects:", ", ".join(sorted({o["kind"] for o in objs})))'

  step "the panel SQL safety check (sqlglot) judges a panel in the image"
  "$DOCKER" run --rm --read-only --network none --entrypoint /opt/tenantry/bin/python "$TAG" -c '
from tenantry.dashboards import panels, sql_safety
sql_safety.check_sql("SELECT count() FROM events", database="t_smoke")
try:
    sql_safety.check_sql("SELECT * FROM system.users", database="t_smoke")
except panels.PanelError as err:
    print("refused:", err)
else:
    raise SystemExit("system.users passed the panel check")'

  step "the dev harness (tenantry_dev) and the stand-ins (standins) are not in the image"
  "$DOCKER" run --rm --read-only --network none --entrypoint /opt/tenantry/bin/python "$TAG" -c '
import importlib.metadata as md, importlib.util, pathlib
dev = ("tenantry_dev", "tenantry.devcluster", "tenantry.clickhouse.loopback_server", "standins")
importable = [m for m in dev if importlib.util.find_spec(m) is not None]
recorded = [str(f) for f in md.distribution("tenantry").files or ()
            if str(f).startswith(("tenantry_dev/", "standins/")) or "devcluster" in str(f) or "loopback_server" in str(f)]
on_disk = [str(p) for p in pathlib.Path("/opt/tenantry").rglob("*")
           if p.name in ("tenantry_dev", "devcluster", "loopback_server.py", "standins")]
assert not (importable or recorded or on_disk), (importable, recorded, on_disk)
assert importlib.util.find_spec("tenantry_cli.main") is not None, "tenantry_cli missing"
print("absent:", ", ".join(dev))'

  step "the image's Python packages are exactly requirements/runtime.lock"
  local listing
  listing="$(mktemp)"
  "$DOCKER" run --rm --read-only --network none --entrypoint /opt/tenantry/bin/python "$TAG" -c '
import importlib.metadata as md
for d in md.distributions():
    print(d.metadata["Name"] + "==" + d.version)' \
    >"$listing"
  "$PY" "$REPO/scripts/lockcheck.py" --image "$listing" || { rm -f "$listing"; die "image not from the lock"; }
  rm -f "$listing"

  step "PostgreSQL for the control plane"
  local pg=/usr/lib/postgresql/15/bin pg_port cp_port
  [[ -x "$pg/initdb" ]] || die "PostgreSQL 15 missing (scripts/bootstrap.sh installs it)"
  PG_DIR="$(mktemp -d /tmp/tenantry-pg.XXXXXX)"
  chown postgres "$PG_DIR"
  pg_port="$(free_port)"
  runuser -u postgres -- "$pg/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 \
    >/dev/null
  runuser -u postgres -- "$pg/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/pg.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $PG_DIR -c fsync=off" start >/dev/null
  "$pg/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -qc 'CREATE DATABASE tenantry'

  step "tenantry controlplane serve (read-only root) until /healthz answers"
  cp_port="$(free_port)"
  CP_CONTAINER="tenantry-cp-smoke-$$"
  "$DOCKER" run -d --name "$CP_CONTAINER" --read-only --tmpfs /tmp --network host \
    -e "TENANTRY_CP_DATABASE_URL=postgresql://postgres@127.0.0.1:$pg_port/tenantry" \
    -e TENANTRY_CP_KUBE_ENABLED=false \
    -e "TENANTRY_CP_REDIS_URL=redis://127.0.0.1:1/0" \
    "$TAG" controlplane serve --host 127.0.0.1 --port "$cp_port" >/dev/null
  local body=""
  for _ in $(seq 1 600); do
    body="$(python3 - "$cp_port" <<'PY' 2>/dev/null || true
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=2) as r:
    print(r.status, r.read().decode())
PY
)"
    [[ -n "$body" ]] && break
    [[ "$("$DOCKER" inspect -f '{{.State.Running}}' "$CP_CONTAINER")" == "true" ]] || break
    sleep 0.1
  done
  if [[ "$body" != 200* ]]; then
    "$DOCKER" logs "$CP_CONTAINER" >&2 || true
    die "control plane did not answer /healthz"
  fi
  echo "GET /healthz -> $body"
  python3 - "$cp_port" <<'PY' || die "the image does not serve the console under its CSP"
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=5) as r:
    assert r.status == 200 and "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert b'<div id="app">' in r.read()
PY
  local applied
  applied="$("$pg/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d tenantry -tAc \
    'SELECT count(*) FROM schema_migrations')"
  local shipped
  shipped="$(find "$REPO/controlplane/migrations" -name '*.sql' | wc -l)"
  [[ "$applied" -eq "$shipped" ]] || die "$applied of $shipped migrations applied in the image"
  echo "migrations applied by the image: $applied"
}

main() {
  [[ $EUID -eq 0 ]] || die "run as root (dockerd, debootstrap)"
  mkdir -p "$CACHE/image"
  trap cleanup EXIT
  ensure_packages
  if [[ "${TENANTRY_IMAGE_FRESH:-}" == "1" ]]; then
    step "cold run: removing $BASE_TARBALL and $DATA_ROOT"
    rm -f "$BASE_TARBALL"
    rm -rf "$DATA_ROOT"
  fi
  local what="${1:-all}"
  case "$what" in all | build | smoke) ;; *) die "usage: image.sh [all|build|smoke]" ;; esac
  start_dockerd
  if [[ "$what" != smoke ]]; then
    make_base
    build
  fi
  [[ "$what" == build ]] || smoke
  [[ "$what" != all ]] || save_archive
  step "done: $TAG"
}

# The smoke-tested image as a docker-archive tarball, for the real-node cluster's
# containerd (`python -m tenantry_dev cluster load-image`): written again only when the
# image changed (its id is kept next to it).
save_archive() {
  local out="$CACHE/node-images" id
  id="$("$DOCKER" image inspect --format '{{.Id}}' "$TAG")"
  if [[ -s "$out/tenantry.tar" && "$(cat "$out/tenantry.id" 2>/dev/null)" == "$id" ]]; then
    echo "archive up to date: $out/tenantry.tar"
    return
  fi
  mkdir -p "$out"
  step "docker save $TAG -> $out/tenantry.tar"
  "$DOCKER" save -o "$out/tenantry.tar.tmp" "$TAG"
  mv "$out/tenantry.tar.tmp" "$out/tenantry.tar"
  echo "$id" >"$out/tenantry.id"
}

# scripts/node-images.sh sources this file for its functions.
[[ "${BASH_SOURCE[0]}" != "$0" ]] || main "$@"
