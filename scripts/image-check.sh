#!/usr/bin/env bash
# `make image-check`: run scripts/image-selfcheck.sh inside the image `make image` built (a
# buildah working container, chroot isolation, as the image's non-root user, SAIL_HOME on a fresh
# writable volume), then print the image's size, build time and digest.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${IMAGE:-localhost/sail-platform:dev}
out=${OUT:-${SAIL_HOME:-.sail}/image}
buildah=(buildah --storage-driver "${STORAGE_DRIVER:-vfs}")
if [ "$(id -u)" -ne 0 ] || ! command -v buildah >/dev/null; then
  echo "make image-check needs root and buildah (make image installs it)" >&2
  exit 1
fi
"${buildah[@]}" inspect --type image "$image" >/dev/null 2>&1 \
  || { echo "no image $image in buildah's storage: run make image first" >&2; exit 1; }

home=$(mktemp -d /var/tmp/sail-image-home.XXXXXX)
chown 1000 "$home"
container=$("${buildah[@]}" from --quiet "$image")
trap '"${buildah[@]}" rm "$container" >/dev/null 2>&1 || true; rm -rf "$home"' EXIT

started=$(date +%s)
# the checks come from this checkout (mounted read-only), what they check from the image
"${buildah[@]}" run --isolation chroot --user sail --env HOME=/home/sail \
  --volume "$home:/var/lib/sail" --volume "$PWD/scripts/image-selfcheck.sh:/usr/local/bin/image-selfcheck:ro" \
  "$container" -- bash /usr/local/bin/image-selfcheck
echo "checks took $(( $(date +%s) - started )) s"

echo
echo "image $image"
echo "size: $("${buildah[@]}" images --format '{{.Size}}' "$image" | head -1)"
if [ -f "$out/build.json" ]; then
  python3 -c "
import json, sys
b = json.load(open(sys.argv[1]))
print(f\"build: {b['build_seconds']} s (commit {b['git_commit'][:12]}), OCI archive {b['archive_bytes'] / 2**20:,.0f} MiB\")
print(f\"digest: {b['digest']}\")" "$out/build.json"
fi
