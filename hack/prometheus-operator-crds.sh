#!/usr/bin/env bash
# The Prometheus Operator's own ServiceMonitor and PrometheusRule CRDs, which the chart and
# manifests/monitoring tests install into the test kube-apiserver to server-side dry-run those objects
# against. Taken from the operator's Go module (its zip holds example/prometheus-operator-crd/) through
# the Go module proxy, pinned by version and by the module's h1: hash (go also checks it against the
# checksum database), and copied into $CSR_SIGNER_CACHE keyed by version; never into the work tree.
#
# Usage: hack/prometheus-operator-crds.sh            (fetch if missing; prints progress on stderr)
#        hack/prometheus-operator-crds.sh --print-dir (PROMETHEUS_OPERATOR_CRDS_DIR=<folder>)
set -euo pipefail
cache_root="${CSR_SIGNER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/csr-signer}"
module=github.com/prometheus-operator/prometheus-operator
version=v0.85.0
module_hash="h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s="
crds=(monitoring.coreos.com_servicemonitors.yaml monitoring.coreos.com_prometheusrules.yaml)
out_dir="$cache_root/testbin/prometheus-operator-crds-$version"

if [ "${1:-}" = "--print-dir" ]; then
  echo "PROMETHEUS_OPERATOR_CRDS_DIR=$out_dir"
  exit 0
fi

complete=true
for crd in "${crds[@]}"; do [ -s "$out_dir/$crd" ] || complete=false; done
if $complete; then
  echo "prometheus-operator-crds: cached at $out_dir" >&2
  exit 0
fi

if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then export PATH="$PATH:/usr/local/go/bin"; fi
command -v go >/dev/null || { echo "prometheus-operator-crds: Go is needed to download $module (https://go.dev/dl/)" >&2; exit 1; }
echo "prometheus-operator-crds: downloading $module@$version from the Go module proxy..." >&2
# Outside any module (cd /), so no go.mod here influences the download.
info="$(cd / && GOFLAGS= go mod download -json "$module@$version")"
field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" <<<"$info" | head -1; }
sum="$(field Sum)"
if [ "$sum" != "$module_hash" ]; then
  echo "prometheus-operator-crds: $module@$version has hash $sum, expected $module_hash" >&2
  exit 1
fi
source_dir="$(field Dir)/example/prometheus-operator-crd"
tmp="$out_dir.tmp.$$"
mkdir -p "$tmp"
for crd in "${crds[@]}"; do
  [ -s "$source_dir/$crd" ] || { echo "prometheus-operator-crds: no $crd in $source_dir" >&2; rm -rf "$tmp"; exit 1; }
  cp "$source_dir/$crd" "$tmp/$crd"
done
chmod -R u+w "$tmp" # the module cache's files are read-only
rm -rf "$out_dir"
mv "$tmp" "$out_dir" # whole folder only: never a half-copied one taken for a cached one
echo "prometheus-operator-crds: ${crds[*]} of $version in $out_dir" >&2
