#!/usr/bin/env bash
# `make image`: builds the controller image from the Dockerfile with podman, tagged <image> and every
# further tag given (make passes the release name, hack/image/release-image.sh).
# Usage: build.sh <image> <node version> [tag]...
#   IMAGE_BASE=auto (default): the Dockerfile's registry bases when a registry answers, else the local
#     ones; registry: always the Dockerfile's; local: always hack/image/local-base.sh's (Debian's mirror
#     and the npm registry only).
# Podman runs with the repository's hack/image/containers.conf (CONTAINERS_CONF): nothing on the machine
# is reconfigured. The npm registry's extra CA, when the machine's npm trusts one (npm cafile, else
# NODE_EXTRA_CA_CERTS), reaches the build as the secret npm-ca: mounted for `npm ci` only, in no layer.
# The commit (`csr-signer --version`) is git's, or CSR_SIGNER_COMMIT. RUN steps use the host's network
# (--network=host), so the build needs no container network stack. Prints the image's size at the end.
set -euo pipefail
image="${1:?usage: $0 <image> <node version>}"
node_version="${2:?usage: $0 <image> <node version>}"
extra_tags=()
for tag in "${@:3}"; do extra_tags+=(--tag "$tag"); done
here="$(cd "$(dirname "$0")" && pwd)"
repository_root="$(cd "$here/../.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"

"$here/ensure-tools.sh"

registry_reachable() { # any HTTP answer from the two registries' /v2/ (401 included) counts
  local url
  for url in https://registry-1.docker.io/v2/ https://gcr.io/v2/; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$url" || true)" != 000 ] || return 1
  done
}

base_args=()
case "${IMAGE_BASE:-auto}" in
registry) ;;
local) mapfile -t base_args < <("$here/local-base.sh" "$node_version" | sed 's/^/--build-arg=/') ;;
auto)
  if command -v curl >/dev/null 2>&1 && registry_reachable; then
    echo "image: registry reachable, building on the Dockerfile's pinned bases" >&2
  else
    echo "image: no container registry reachable, building on the local Debian + Node bases" >&2
    mapfile -t base_args < <("$here/local-base.sh" "$node_version" | sed 's/^/--build-arg=/')
  fi
  ;;
*) echo "image: IMAGE_BASE must be auto, registry or local" >&2 && exit 2 ;;
esac

ca_file="$(npm config get cafile 2>/dev/null || true)"
[ -n "$ca_file" ] && [ "$ca_file" != null ] && [ "$ca_file" != undefined ] || ca_file="${NODE_EXTRA_CA_CERTS:-}"
secret_args=()
# Without the secret the mount is simply absent, and npm trusts the base's CAs only.
[ -n "$ca_file" ] && [ -s "$ca_file" ] && secret_args=(--secret "id=npm-ca,src=$ca_file")

commit="${CSR_SIGNER_COMMIT:-$(git -C "$repository_root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}"
started=$SECONDS
podman build --network=host --layers --pull=missing \
  "${secret_args[@]}" --build-arg "CSR_SIGNER_COMMIT=$commit" "${base_args[@]}" \
  --tag "$image" "${extra_tags[@]}" --file "$repository_root/Dockerfile" "$repository_root" >&2
size="$(podman image inspect --format '{{.Size}}' "$image")"
echo "image: built $image${3:+ (also tagged ${*:3})} in $((SECONDS - started)) s, $((size / 1000000)) MB uncompressed ($size bytes)" >&2
