#!/usr/bin/env bash
# Provides the container tools `make image` and the image test use: podman (build and run), buildah
# (podman build's engine), runc (the runtime hack/image/containers.conf names: crun 1.8 refuses hybrid
# cgroup layouts) and mmdebstrap (the local Debian base, hack/image/local-base.sh). The system's when
# installed; otherwise, as root on Debian/Ubuntu, `apt-get install` of the missing packages, as
# hack/softhsm2/ensure.sh does for SoftHSM. Container tools need root-owned helpers (setuid newuidmap,
# storage), so unlike SoftHSM they are not unpacked into the cache. Prints nothing on success;
# progress goes to stderr. `--check` only reports (exit 1 when a tool is missing).
set -euo pipefail
declare -A package_of=([podman]=podman [buildah]=buildah [runc]=runc [mmdebstrap]=mmdebstrap)
missing=()
for tool in podman buildah runc mmdebstrap; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package_of[$tool]}")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "${1:-}" = "--check" ]; then
  echo "image tools: missing ${missing[*]}" >&2
  exit 1
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "image tools: installing ${missing[*]} with apt-get" >&2
  # uidmap: newuidmap/newgidmap for rootless use. The builds and the test run with --network=host, so no
  # container network stack is needed beyond what podman itself depends on.
  packages=("${missing[@]}" uidmap)
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}" >&2 \
    || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}" >&2; }
  for tool in podman buildah runc mmdebstrap; do
    command -v "$tool" >/dev/null 2>&1 || { echo "image tools: $tool still missing after apt-get" >&2 && exit 1; }
  done
  exit 0
fi
echo "image tools: missing ${missing[*]}: install podman, buildah, runc and mmdebstrap (Debian/Ubuntu packages of those names)" >&2
exit 1
