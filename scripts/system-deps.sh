#!/usr/bin/env bash
# Install Debian packages when they are missing: the ones named as arguments, else the ones the
# project needs on a development machine.
# As root it installs them with apt-get; otherwise it says what to install and fails.
set -euo pipefail

if [ $# -gt 0 ]; then
  packages=("$@")
else
  # the packaged data sets (docs/data.md) and the speech synthesisers that read their captions
  packages=(libcairo2 openclipart-svg tuxpaint-stamps-default asterisk-core-sounds-en
    asterisk-core-sounds-en-wav wesnoth-1.16-data espeak-ng flite festival festvox-kallpc16k
    festvox-kdlpc16k festvox-us-slt-hts)
  # kubectl, for `kubectl kustomize` in the manifest tests: Debian's kubernetes-client, unless a
  # kubectl is installed already (from another package, which may own /usr/bin/kubectl).
  command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)
fi
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
