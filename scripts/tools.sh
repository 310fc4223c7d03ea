#!/usr/bin/env bash
# Build the real Kubernetes control-plane binaries (and kwok, helm, kind) from their Go
# modules with this machine's Go, pinned, into a cache outside the repository so that
# every clone (and CI) reuses them. Idempotent: a binary already built is not rebuilt.
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod points the staging modules
# (k8s.io/api, k8s.io/apiserver, ...) at ./staging. We build it from a small wrapper
# module that requires k8s.io/kubernetes and replaces every staging module with its
# published v0.<minor>.<patch> version.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-3.6.4}"     # the etcd that Kubernetes 1.34 ships with
KWOK_VERSION="${KWOK_VERSION:-0.7.0}"
HELM_VERSION="${HELM_VERSION:-3.19.0}"
KIND_VERSION="${KIND_VERSION:-0.30.0}"
# promtool: checks and unit-tests the chart's PrometheusRule (tests/unit/chart); the
# prometheus server, from the same module, scrapes and alerts in tests/e2e.
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-0.316.0}"
# The prometheus-operator CRDs (PodMonitor, PrometheusRule, ...): the schemas the chart's
# monitoring objects are validated against (tests/unit/chart). Data, not a binary: taken
# from the Go module, whose hash (go.sum's h1:) is checked here.
PROMETHEUS_OPERATOR_VERSION="${PROMETHEUS_OPERATOR_VERSION:-0.85.0}"
PROMETHEUS_OPERATOR_SUM="h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s="
# Cluster DNS (cluster.local) of the real-node cluster (`cluster up --nodes real`).
COREDNS_VERSION="${COREDNS_VERSION:-1.14.7}"
# NetworkPolicy enforcement as kind does it. Not in the default set: it cannot run on
# this machine's kernel (no nft_queue; docs/real-nodes.md), built only on request:
#   bash scripts/tools.sh kube-network-policies
KUBE_NETWORK_POLICIES_VERSION="${KUBE_NETWORK_POLICIES_VERSION:-0.8.0}"

CACHE="${TENANTRY_CACHE:-$HOME/.cache/tenantry}"
BIN="$CACHE/bin/k8s-$K8S_VERSION"
BUILD="$CACHE/build"
CRDS="$CACHE/crds/prometheus-operator-v$PROMETHEUS_OPERATOR_VERSION"
mkdir -p "$BIN" "$BUILD"
export GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0

log() { printf '[tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# The module graph of every wrapper (go.mod + go.sum) is committed under
# scripts/go.lock/<name>/, so a fresh machine builds exactly the module versions that
# were tested, each checked against go.sum's hashes (no checksum-database lookup):
# `go build -mod=readonly` refuses to change them. `bash scripts/tools.sh --lock NAME...`
# (or `make tools-lock`) re-resolves them from the pinned versions above.
LOCK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/go.lock"

# build_in_wrapper NAME MODULE@VERSION PACKAGE [replace lines...]
build_in_wrapper() {
  local name=$1 modver=$2 pkg=$3; shift 3
  local out="$BIN/$name"
  if [[ -x "$out" && -z "$RELOCK" ]]; then log "$name: cached ($out)"; return 0; fi
  local dir="$BUILD/$name-${modver##*@}" lock="$LOCK_DIR/$name"
  rm -rf "$dir"
  mkdir -p "$dir"
  local start=$SECONDS
  if [[ -z "$RELOCK" && -f "$lock/go.mod" && -f "$lock/go.sum" ]]; then
    grep -q "^	${modver%@*} ${modver##*@}\b" "$lock/go.mod" \
      || { log "$name: $lock/go.mod does not require $modver: run make tools-lock"; return 1; }
    cp "$lock/go.mod" "$lock/go.sum" "$dir/"
    log "$name: building $pkg from $modver, modules as locked (several minutes on 2 cores)"
  else
    log "$name: resolving $modver (writing $lock)"
    (
      cd "$dir"
      go mod init "tenantry.local/build/$name" >/dev/null 2>&1
      for r in "$@"; do go mod edit -replace "$r"; done
      go get "$modver" >/dev/null
      go get "$pkg@${modver##*@}" 2>/dev/null || go get "$pkg" >/dev/null
      # The lowest Go the modules allow, not this machine's: another Go can build it.
      local want
      want="$(go list -m -f '{{if not .Main}}{{.GoVersion}}{{end}}' all | sort -V | tail -n1)"
      go mod edit -go="$want" -toolchain=none
    ) || { log "$name: RESOLVE FAILED (see the error above)"; return 1; }
    mkdir -p "$lock"
    cp "$dir/go.mod" "$dir/go.sum" "$lock/"
  fi
  (
    cd "$dir"
    GOFLAGS="$GOFLAGS -mod=readonly" go build -trimpath -ldflags "-s -w $LDFLAGS_EXTRA" \
      -o "$out.tmp" "$pkg"
    mv "$out.tmp" "$out"
  ) || { log "$name: BUILD FAILED (see the error above)"; rm -f "$out.tmp"; return 1; }
  log "$name: built in $((SECONDS - start)) s"
}

# The CRD files of example/prometheus-operator-crd, copied out of the module (hash
# checked) into $CRDS.
fetch_prometheus_operator_crds() {
  if compgen -G "$CRDS/monitoring.coreos.com_*.yaml" >/dev/null; then
    log "prometheus-operator CRDs: cached ($CRDS)"; return 0
  fi
  local mod="github.com/prometheus-operator/prometheus-operator@v$PROMETHEUS_OPERATOR_VERSION"
  local json dir sum
  json="$(cd "$BUILD" && GOFLAGS=-mod=mod go mod download -json "$mod")"
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")"
  sum="$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p' <<<"$json")"
  [[ "$sum" == "$PROMETHEUS_OPERATOR_SUM" ]] \
    || { log "prometheus-operator: module hash $sum, expected $PROMETHEUS_OPERATOR_SUM"; return 1; }
  mkdir -p "$CRDS.tmp"
  cp "$dir"/example/prometheus-operator-crd/monitoring.coreos.com_*.yaml "$CRDS.tmp/"
  chmod u+w "$CRDS.tmp"/*.yaml
  rm -rf "$CRDS" && mv "$CRDS.tmp" "$CRDS"
  log "prometheus-operator CRDs: $CRDS"
}

k8s_replaces() {
  local gomod
  gomod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$K8S_VERSION.mod"
  [[ -f "$gomod" ]] || go mod download "k8s.io/kubernetes@v$K8S_VERSION" >/dev/null
  grep -E '^\s*k8s.io/[a-z0-9-]+ => ./staging' "$gomod" | awk -v v="v0.${K8S_VERSION#1.}" '{print $1"="$1"@"v}'
}

main() {
  if [[ "${1:-}" == "--print-bin-dir" ]]; then echo "$BIN"; return 0; fi
  if [[ "${1:-}" == "--print-crd-dir" ]]; then echo "$CRDS"; return 0; fi
  RELOCK=""
  if [[ "${1:-}" == "--lock" ]]; then RELOCK=1; shift; fi
  local want=("$@")
  [[ ${#want[@]} -gt 0 ]] || want=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy coredns
                             kwok helm kind promtool prometheus prometheus-operator-crds)
  mapfile -t repl < <(k8s_replaces)
  local minor kver
  minor=$(cut -d. -f2 <<<"$K8S_VERSION")
  kver="-X k8s.io/component-base/version.gitVersion=v$K8S_VERSION"
  kver+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  kver+=" -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION"
  for t in "${want[@]}"; do
    case "$t" in
      etcd) LDFLAGS_EXTRA="" build_in_wrapper etcd "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" go.etcd.io/etcd/server/v3 ;;
      kube-network-policies) LDFLAGS_EXTRA="" build_in_wrapper kube-network-policies \
                "sigs.k8s.io/kube-network-policies@v$KUBE_NETWORK_POLICIES_VERSION" \
                sigs.k8s.io/kube-network-policies/cmd ;;
      kube-*|kubectl|kubelet) LDFLAGS_EXTRA="$kver" \
                build_in_wrapper "$t" "k8s.io/kubernetes@v$K8S_VERSION" "k8s.io/kubernetes/cmd/$t" "${repl[@]}" ;;
      kwok) LDFLAGS_EXTRA="" build_in_wrapper kwok "sigs.k8s.io/kwok@v$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok ;;
      helm) LDFLAGS_EXTRA="" build_in_wrapper helm "helm.sh/helm/v3@v$HELM_VERSION" helm.sh/helm/v3/cmd/helm ;;
      kind) LDFLAGS_EXTRA="" build_in_wrapper kind "sigs.k8s.io/kind@v$KIND_VERSION" sigs.k8s.io/kind ;;
      coredns) LDFLAGS_EXTRA="" build_in_wrapper coredns \
                "github.com/coredns/coredns@v$COREDNS_VERSION" github.com/coredns/coredns ;;
      promtool) LDFLAGS_EXTRA="" build_in_wrapper promtool \
                "github.com/prometheus/prometheus@v$PROMETHEUS_VERSION" github.com/prometheus/prometheus/cmd/promtool ;;
      prometheus) LDFLAGS_EXTRA="" build_in_wrapper prometheus \
                "github.com/prometheus/prometheus@v$PROMETHEUS_VERSION" github.com/prometheus/prometheus/cmd/prometheus ;;
      prometheus-operator-crds) fetch_prometheus_operator_crds ;;
      *) log "unknown tool $t"; exit 2 ;;
    esac
  done
  log "all tools in $BIN"
  echo "$BIN"
}
main "$@"
