#!/usr/bin/env bash
# The name of the release image, the one manifests/base and the chart (its appVersion) name:
# localhost/csr-signer:<version of package.json>. `make image` tags the image with it (besides
# $CSR_SIGNER_IMAGE); test/unit/release/image-name.test.ts keeps the manifests, the chart and this
# name equal. "localhost/" is what podman calls a locally built image, and what an image archive
# (`podman save`) carries into a cluster's runtime: no registry publishes this name.
set -euo pipefail
repository_root="$(cd "$(dirname "$0")/../.." && pwd)"
version="$(sed -n 's/^  "version": "\([^"]*\)",$/\1/p' "$repository_root/package.json" | head -1)"
[ -n "$version" ] || { echo "release-image: no version in package.json" >&2; exit 1; }
echo "localhost/csr-signer:$version"
