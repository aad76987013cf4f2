#!/usr/bin/env bash
# Builds the test control plane binaries from the Go wrapper modules beside this
# script, into a cache folder outside the work tree keyed by version, and
# reuses them when they are already there.
#
# Usage: hack/testbin/build.sh [apiserver|kubectl|controller-manager|etcd|x509-oracle|x509-sign|istio|helm|promtool]...
#        (no argument: kube-apiserver, kubectl and etcd, what tests and `make run` need;
#        x509-oracle is the standard-library-only helper of the parser-differential test,
#        x509-sign the Go crypto/x509 side of `make bench-sign`, from hack/bench/x509-sign,
#        istio pilot-discovery and pilot-agent for the Istio end-to-end tier,
#        helm the Helm CLI that lints and renders charts/csr-signer,
#        promtool to check and unit-test manifests/monitoring's alert rules)
# Prints nothing but progress on stderr; `hack/testbin/build.sh --print-dir` prints the folder.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache_root="${CSR_SIGNER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/csr-signer}"

module_version() { # <go.mod> <module path>
  sed -n "s#^require $2 \(v[^ ]*\)\$#\1#p; s#^[[:space:]]*$2 \(v[^ ]*\)\$#\1#p" "$1" | head -1
}
kube_version="$(module_version "$here/kube/go.mod" k8s.io/kubernetes)"
etcd_version="$(module_version "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)"
# The go.sum hash is part of the key, so a regenerated module never reuses stale binaries.
kube_dir="$cache_root/testbin/kubernetes-${kube_version}-$(sha256sum "$here/kube/go.sum" | cut -c1-12)"
etcd_dir="$cache_root/testbin/etcd-${etcd_version}-$(sha256sum "$here/etcd/go.sum" | cut -c1-12)"
# No dependencies, so the key is a hash of its own source: any edit builds a new binary.
oracle_dir="$cache_root/testbin/x509-oracle-$(cat "$here/x509-oracle/go.mod" "$here/x509-oracle/main.go" | sha256sum | cut -c1-12)"
bench_sign_module="$here/../bench/x509-sign"
bench_sign_dir="$cache_root/testbin/x509-sign-$(cat "$bench_sign_module/go.mod" "$bench_sign_module/main.go" | sha256sum | cut -c1-12)"
# Istio's own go.mod has no replace directives, so `go install module@version` builds it exactly as
# released (dependencies checked against the Go checksum database); the pseudo-version is the key.
istio_version=v0.0.0-20260827124520-eed52ebb66ad
istio_dir="$cache_root/testbin/istio-${istio_version}"
# Helm, like Istio, is built with `go install module@version`: the released go.mod, checksummed.
helm_version=v3.22.0
helm_dir="$cache_root/testbin/helm-${helm_version}"
# Prometheus' go.mod has no replace directives either: `go install` of the tagged module (v0.316.0 is
# Prometheus 3.16) builds promtool as released; the version is the key.
promtool_version=v0.316.0
promtool_dir="$cache_root/testbin/promtool-${promtool_version}"

if [ "${1:-}" = "--print-dir" ]; then
  echo "KUBE_BIN_DIR=$kube_dir"
  echo "ETCD_BIN_DIR=$etcd_dir"
  echo "X509_ORACLE_BIN_DIR=$oracle_dir"
  echo "X509_SIGN_BIN_DIR=$bench_sign_dir"
  echo "ISTIO_BIN_DIR=$istio_dir"
  echo "HELM_BIN_DIR=$helm_dir"
  echo "PROMTOOL_BIN_DIR=$promtool_dir"
  exit 0
fi

# Go from PATH, else where the official archive installs it.
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then export PATH="$PATH:/usr/local/go/bin"; fi

build() { # <module dir> <output dir> <binary name> <package> [ldflags]
  local module="$1" out_dir="$2" name="$3" package="$4" ldflags="${5:-}"
  if [ -x "$out_dir/$name" ]; then
    echo "testbin: $name cached at $out_dir" >&2
    return 0
  fi
  command -v go >/dev/null || { echo "testbin: Go 1.26 is needed to build $name (https://go.dev/dl/)" >&2; exit 1; }
  mkdir -p "$out_dir"
  echo "testbin: building $name from $package (cold builds take minutes)..." >&2
  local started=$SECONDS tmp="$out_dir/.$name.$$"
  (cd "$module" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w $ldflags" -o "$tmp" "$package")
  mv -f "$tmp" "$out_dir/$name" # atomic: a half-built binary is never taken for a cached one
  echo "testbin: built $name in $((SECONDS - started)) s" >&2
}

build_istio() { # pilot-discovery and pilot-agent in one `go install`, so shared packages compile once
  if [ -x "$istio_dir/pilot-discovery" ] && [ -x "$istio_dir/pilot-agent" ]; then
    echo "testbin: pilot-discovery and pilot-agent cached at $istio_dir" >&2
    return 0
  fi
  command -v go >/dev/null || { echo "testbin: Go 1.26 is needed to build Istio (https://go.dev/dl/)" >&2; exit 1; }
  echo "testbin: building pilot-discovery and pilot-agent from istio.io/istio@$istio_version (cold: 10-30 min)..." >&2
  local started=$SECONDS tmp="$istio_dir/.build.$$"
  mkdir -p "$tmp"
  # Outside any module (cd /), so no go.mod here can influence the build; nice: it is a background job.
  (cd / && CGO_ENABLED=0 GOFLAGS= GOBIN="$tmp" nice -n 10 go install -trimpath -ldflags "-s -w" \
    "istio.io/istio/pilot/cmd/pilot-discovery@$istio_version" "istio.io/istio/pilot/cmd/pilot-agent@$istio_version")
  mv -f "$tmp/pilot-discovery" "$tmp/pilot-agent" "$istio_dir/" # whole binaries only: never a half-built one
  rmdir "$tmp"
  echo "testbin: built pilot-discovery and pilot-agent in $((SECONDS - started)) s" >&2
}

build_helm() {
  if [ -x "$helm_dir/helm" ]; then
    echo "testbin: helm cached at $helm_dir" >&2
    return 0
  fi
  command -v go >/dev/null || { echo "testbin: Go 1.26 is needed to build helm (https://go.dev/dl/)" >&2; exit 1; }
  echo "testbin: building helm from helm.sh/helm/v3@$helm_version (cold builds take minutes)..." >&2
  local started=$SECONDS tmp="$helm_dir/.build.$$"
  mkdir -p "$tmp"
  # Outside any module (cd /), so no go.mod here can influence the build; nice: it is often a background job.
  (cd / && CGO_ENABLED=0 GOFLAGS= GOBIN="$tmp" nice -n 10 go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version" "helm.sh/helm/v3/cmd/helm@$helm_version")
  mv -f "$tmp/helm" "$helm_dir/helm" # a whole binary only: never a half-built one
  rmdir "$tmp"
  echo "testbin: built helm in $((SECONDS - started)) s" >&2
}

build_promtool() {
  if [ -x "$promtool_dir/promtool" ]; then
    echo "testbin: promtool cached at $promtool_dir" >&2
    return 0
  fi
  command -v go >/dev/null || { echo "testbin: Go 1.26 is needed to build promtool (https://go.dev/dl/)" >&2; exit 1; }
  echo "testbin: building promtool from github.com/prometheus/prometheus@$promtool_version (cold: 15-70 min: 1,364 packages)..." >&2
  local started=$SECONDS tmp="$promtool_dir/.build.$$"
  mkdir -p "$tmp"
  # Outside any module, like Istio; nice: it is usually a background job.
  (cd / && CGO_ENABLED=0 GOFLAGS= GOBIN="$tmp" nice -n 10 go install -trimpath -ldflags "-s -w" \
    "github.com/prometheus/prometheus/cmd/promtool@$promtool_version")
  mv -f "$tmp/promtool" "$promtool_dir/" # whole binary only: never a half-built one
  rmdir "$tmp"
  echo "testbin: built promtool in $((SECONDS - started)) s" >&2
}

minor="${kube_version#v1.}"; minor="${minor%%.*}"
kube_ldflags="-X k8s.io/component-base/version.gitVersion=${kube_version} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/component-base/version.gitTreeState=clean"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(etcd apiserver kubectl)
for target in "${targets[@]}"; do
  case "$target" in
    apiserver) build "$here/kube" "$kube_dir" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kube_ldflags" ;;
    kubectl) build "$here/kube" "$kube_dir" kubectl k8s.io/kubernetes/cmd/kubectl "$kube_ldflags" ;;
    controller-manager) build "$here/kube" "$kube_dir" kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$kube_ldflags" ;;
    etcd) build "$here/etcd" "$etcd_dir" etcd go.etcd.io/etcd/server/v3 ;;
    x509-oracle) build "$here/x509-oracle" "$oracle_dir" x509-oracle . ;;
    x509-sign) build "$bench_sign_module" "$bench_sign_dir" x509-sign . ;;
    istio) build_istio ;;
    helm) build_helm ;;
    promtool) build_promtool ;;
    *) echo "testbin: unknown target $target" >&2; exit 2 ;;
  esac
done
