#!/usr/bin/env bash
# A Debian bookworm base image made here, without a registry: debootstrap's minimal root filesystem
# imported into buildah's storage as IMAGE (default localhost/sail-debian:bookworm). Its python3
# (installed by the Dockerfile) is 3.11, as the project needs. Kept once made: rerun with
# REBUILD_BASE=1 to make it again. Debian's mirror: $DEBIAN_MIRROR, else the first one apt uses.
set -euo pipefail

image=${1:-localhost/sail-debian:bookworm}
buildah=(buildah --storage-driver "${STORAGE_DRIVER:-vfs}")

if [ "${REBUILD_BASE:-0}" != 1 ] && "${buildah[@]}" inspect --type image "$image" >/dev/null 2>&1; then
  echo "base image $image: present"
  exit 0
fi

mirror=${DEBIAN_MIRROR:-$(apt-get indextargets --format '$(REPO_URI)' 2>/dev/null | grep -m1 '/debian/$' || true)}
mirror=${mirror:-http://deb.debian.org/debian/}
work=$(mktemp -d /var/tmp/sail-base.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "debootstrap --variant=minbase bookworm from $mirror"
started=$(date +%s)
debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; echo "debootstrap failed" >&2; exit 1; }
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
tar -C "$work/rootfs" -czf "$work/rootfs.tar.gz" .
rm -rf "$work/rootfs"
cat >"$work/Containerfile" <<'EOF'
FROM scratch
ADD rootfs.tar.gz /
CMD ["/bin/bash"]
EOF
"${buildah[@]}" bud --isolation chroot --layers --force-rm --quiet -t "$image" "$work" >/dev/null
echo "base image $image: made in $(( $(date +%s) - started )) s"
