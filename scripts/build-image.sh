#!/usr/bin/env bash
# `make image`: build the Dockerfile without a daemon (buildah, chroot isolation, vfs storage) on
# the local Debian base of scripts/base-image.sh, with pip's own configuration (`pip config list`:
# its CA bundle, find-links folders and file:// indexes) mounted into the build read-only, never
# copied. Then export the image as an OCI archive and record its digest.
#
# Writes OUT (default $SAIL_HOME/image): sail-platform.oci.tar, digest (sha256:...), build.json
# (seconds, size, reference). IMAGE names the image in buildah's storage (localhost/sail-platform:dev).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "make image needs root (buildah's chroot isolation and debootstrap); run it as root, or" >&2
  echo "build the Dockerfile with docker or podman: docker build -t sail-platform ." >&2
  exit 1
fi
scripts/system-deps.sh buildah debootstrap

image=${IMAGE:-localhost/sail-platform:dev}
base=${BASE_IMAGE:-localhost/sail-debian:bookworm}
out=${OUT:-${SAIL_HOME:-.sail}/image}
pip=${PIP:-python3 -m pip}
buildah=(buildah --storage-driver "${STORAGE_DRIVER:-vfs}")
mkdir -p "$out"
out=$(cd "$out" && pwd)

scripts/base-image.sh "$base"

work=$(mktemp -d /var/tmp/sail-image.XXXXXX)
cleanup() {
  # whatever a failed step left: its working containers (the images and layers stay for reuse)
  "${buildah[@]}" rm --all >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
"${buildah[@]}" rm --all >/dev/null 2>&1 || true  # what an interrupted build left

# pip's configuration for the build: the settings that say where packages come from, and every
# folder they name, mounted read-only at the same path; the CA bundle at a path of its own (the
# image's ca-certificates package writes the usual one).
volumes=()
{
  echo "[global]"
  $pip config list 2>/dev/null \
    | sed -n -E "s/^[^.]*\.(cert|find-links|index-url|extra-index-url|trusted-host|default-timeout)='(.*)'$/\1 = \2/p" \
    | awk -F' = ' '!seen[$1]++'
} >"$work/pip.conf"
cert=$(sed -n 's/^cert = //p' "$work/pip.conf")
if [ -n "$cert" ]; then
  volumes+=(--volume "$cert:/etc/sail-build/pip-ca.crt:ro")
  sed -i 's|^cert = .*|cert = /etc/sail-build/pip-ca.crt|' "$work/pip.conf"
fi
for value in $(sed -n -E 's/^(find-links|index-url|extra-index-url) = //p' "$work/pip.conf"); do
  path=${value#file://}
  [ -d "$path" ] || continue
  [[ "$path" == */simple ]] && path=${path%/simple}
  volumes+=(--volume "$path:$path:ro")
done
volumes+=(--volume "$work/pip.conf:/etc/pip.conf:ro")

commit=$(git rev-parse HEAD 2>/dev/null || true)
builder="${image%:*}-builder:${image##*:}"
bud=("${buildah[@]}" bud --isolation chroot --layers --force-rm --build-arg "BASE_IMAGE=$base"
  "${volumes[@]}" -f Dockerfile)
echo "building $image from $base"
started=$(date +%s)
# the builder stage tagged, so that pruning keeps its layers for the next build
"${bud[@]}" --target builder -t "$builder" .
"${bud[@]}" --build-arg "SAIL_GIT_COMMIT=$commit" -t "$image" .
seconds=$(( $(date +%s) - started ))
# With vfs storage every layer is a full copy of the image: drop the layers no tag needs any more
# (an earlier build's), a level at a time.
while [ -n "$("${buildah[@]}" rmi --prune 2>/dev/null)" ]; do :; done

rm -f "$out/sail-platform.oci.tar"
"${buildah[@]}" push --quiet --digestfile "$out/digest" "$image" "oci-archive:$out/sail-platform.oci.tar:$image"
size=$("${buildah[@]}" inspect --type image --format '{{.Size}}' "$image" 2>/dev/null || echo 0)
archive=$(stat -c %s "$out/sail-platform.oci.tar")
cat >"$out/build.json" <<EOF
{"image": "$image", "digest": "$(cat "$out/digest")", "build_seconds": $seconds,
 "archive_bytes": $archive, "git_commit": "$commit", "base": "$base"}
EOF
echo "built $image in $seconds s; OCI archive $out/sail-platform.oci.tar ($(( archive / 1048576 )) MiB)"
echo "digest $(cat "$out/digest")"
