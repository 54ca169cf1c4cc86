#!/usr/bin/env bash
# Builds the tenantgate sidecar image FROM scratch: the binary, the shared
# libraries ldd names (and the dynamic loader), a passwd entry for the
# unprivileged user, CA certificates, and an empty /etc/tenantgate for the
# read-only configuration mount.
#
# Usage: deploy/build-image.sh [BINARY] [--rootfs-only DIR] [--tag TAG]
#   BINARY           default build/proxy/tenantgate
#   --rootfs-only    lay out the image's filesystem in DIR and stop (no podman)
#   --tag            image name (default tenantgate:<version of the binary>)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
binary=$root/build/proxy/tenantgate
rootfs_only=""
tag=""
while (($#)); do
  case "$1" in
    --rootfs-only) rootfs_only=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    *) binary=$1; shift ;;
  esac
done
[ -x "$binary" ] || { echo "no executable at $binary (build first: scripts/build.sh)" >&2; exit 1; }

context=$(mktemp -d /tmp/tenantgate-image.XXXXXX)
trap 'rm -rf "$context"' EXIT
fs=$context/rootfs
mkdir -p "$fs/usr/local/bin" "$fs/etc/tenantgate" "$fs/etc/ssl/certs" "$fs/tmp"
chmod 1777 "$fs/tmp"
install -m 0755 "$binary" "$fs/usr/local/bin/tenantgate"
strip --strip-debug "$fs/usr/local/bin/tenantgate" 2>/dev/null || true

echo "collecting shared libraries (ldd $binary)"
# Every library the binary loads, at the path the loader will look for it.
ldd "$binary" | awk '/=> \//{print $3} /^\s*\/.*ld-linux/{print $1}' | sort -u | while read -r lib; do
  mkdir -p "$fs$(dirname "$lib")"
  cp -L "$lib" "$fs$lib"
  # The loader also searches the directory of the symlink's name (/lib64 ...).
done
# The name the binary's PT_INTERP asks for.
interp=$(readelf -l "$binary" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
if [ -n "$interp" ] && [ ! -e "$fs$interp" ]; then
  mkdir -p "$fs$(dirname "$interp")"
  cp -L "$interp" "$fs$interp"
fi

cat > "$fs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/:/sbin/nologin
tenantgate:x:65532:65532:tenantgate:/:/sbin/nologin
PASSWD
cat > "$fs/etc/group" <<'GROUP'
root:x:0:
tenantgate:x:65532:
GROUP
echo "hosts: files dns" > "$fs/etc/nsswitch.conf"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$fs/etc/ssl/certs/"
fi

if [ -n "$rootfs_only" ]; then
  mkdir -p "$rootfs_only"
  cp -a "$fs/." "$rootfs_only/"
  echo "image filesystem laid out in $rootfs_only"
  exit 0
fi

if [ -z "$tag" ]; then
  version=$("$binary" --version | awk '{print $2}')
  tag=tenantgate:$version
fi
cp "$root/deploy/Containerfile" "$context/Containerfile"
echo "building $tag with podman"
podman build --quiet -f "$context/Containerfile" -t "$tag" "$context"
echo "built $tag"
