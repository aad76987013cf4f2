#!/usr/bin/env bash
# Provides SoftHSM2 (the PKCS#11 token of the HSM tests) without touching the system when it can:
# the system's softhsm2-util and libsofthsm2.so when installed; otherwise the Debian packages
# softhsm2, libsofthsm2 and softhsm2-common fetched with `apt-get download` (no root needed) and
# unpacked with `dpkg-deb -x` into $CSR_SIGNER_CACHE/softhsm2-<version>; as a last resort, as root,
# `apt-get install softhsm2`. Prints two lines for the tests (KEY=value, as hack/testbin/build.sh
# --print-dir does):
#   SOFTHSM2_MODULE=<path of libsofthsm2.so>
#   SOFTHSM2_UTIL=<path of softhsm2-util>
# `--print-dir` prints the same two lines without fetching anything: the system's paths when
# installed, else where the cached copy is (or will be). Progress goes to stderr. SoftHSM's library needs only standard libraries (libcrypto 3, libstdc++), so
# the unpacked copy runs where it is.
set -euo pipefail
version="${SOFTHSM2_VERSION:-2.6.1}"
cache_root="${CSR_SIGNER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/csr-signer}"
target="$cache_root/softhsm2-$version"

print() { # <module> <util>
  echo "SOFTHSM2_MODULE=$1"
  echo "SOFTHSM2_UTIL=$2"
}

find_module() { # <root>: the first libsofthsm2.so under the usual library folders of <root>
  local root="$1" candidate
  for candidate in "$root"/usr/lib/softhsm/libsofthsm2.so "$root"/usr/lib/*/softhsm/libsofthsm2.so \
    "$root"/usr/lib64/softhsm/libsofthsm2.so "$root"/usr/local/lib/softhsm/libsofthsm2.so; do
    if [ -f "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# 1. Installed on the system.
if command -v softhsm2-util >/dev/null 2>&1 && module="$(find_module "")"; then
  print "$module" "$(command -v softhsm2-util)"
  exit 0
fi

if [ "${1:-}" = "--print-dir" ]; then
  print "$(find_module "$target" || echo "$target/usr/lib/softhsm/libsofthsm2.so")" "$target/usr/bin/softhsm2-util"
  exit 0
fi

# 2. Unpacked earlier into the cache.
if [ -x "$target/usr/bin/softhsm2-util" ] && module="$(find_module "$target")"; then
  print "$module" "$target/usr/bin/softhsm2-util"
  exit 0
fi

# 3. Fetched as Debian packages and unpacked, no root needed.
if command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
  echo "softhsm2: fetching softhsm2 $version (.debs) into $target" >&2
  mkdir -p "$cache_root"
  work="$(mktemp -d "$cache_root/.softhsm2-XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  # The exact Debian revision differs between releases; match the upstream version only.
  if (cd "$work" && apt-get download softhsm2 libsofthsm2 softhsm2-common >&2 2>"$work/apt.log"); then
    for deb in "$work"/*.deb; do
      case "$(dpkg-deb -f "$deb" Version)" in
      "$version"-*) ;;
      *) echo "softhsm2: $(basename "$deb") is not version $version; set SOFTHSM2_VERSION to use it" >&2 && exit 1 ;;
      esac
      dpkg-deb -x "$deb" "$work/root"
    done
    if module="$(find_module "$work/root")" && [ -x "$work/root/usr/bin/softhsm2-util" ]; then
      rm -rf "$target"
      mv "$work/root" "$target" # one rename: a half-unpacked copy is never used
      print "$(find_module "$target")" "$target/usr/bin/softhsm2-util"
      exit 0
    fi
    echo "softhsm2: the packages did not contain libsofthsm2.so and softhsm2-util" >&2
  else
    echo "softhsm2: apt-get download failed: $(tail -1 "$work/apt.log")" >&2
  fi
fi

# 4. Installed as root.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "softhsm2: installing the softhsm2 package with apt-get" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends softhsm2 >&2
  if command -v softhsm2-util >/dev/null 2>&1 && module="$(find_module "")"; then
    print "$module" "$(command -v softhsm2-util)"
    exit 0
  fi
fi

echo "softhsm2: could not provide SoftHSM2 $version: install the softhsm2 package (Debian/Ubuntu), or softhsm on other systems" >&2
exit 1
