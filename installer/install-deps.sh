#!/usr/bin/env bash
# Installs the Debian 12 packages Corral needs to build and to run its tests.
# Idempotent: installs only what is missing and says what that is. Uses sudo when not root.
set -euo pipefail

# zlib (the proxy's gzip), OpenSSL (its TLS and the local dev CA), media-types (/etc/mime.types
# for static files).
build_packages=(cmake ninja-build g++ qt6-base-dev qt6-charts-dev qtkeychain-qt6-dev libssh-dev libgl-dev libqt6opengl6-dev
                zlib1g-dev libssl-dev media-types)
# Real parts for the tests: sshd, nginx and HAProxy to validate generated configs, wrk for
# benchmarks, Xvfb/ImageMagick for screenshots, a headless keyring for QtKeychain.
test_packages=(openssh-server openssh-client nginx haproxy apache2 wrk xvfb xauth imagemagick dbus-x11 gnome-keyring
               procps iproute2 curl socat clang libclang-rt-14-dev
               dpkg-dev fakeroot file desktop-file-utils appstream groff-base man-db lintian)
# Node.js for the real Express/socket.io fixture app (tests/fixtures/affinity-app, npm ci from
# its lock file): Debian's nodejs and npm, unless a node and npm (e.g. from NodeSource or nvm)
# are already on PATH, which the packages must not shadow or conflict with.
command -v node >/dev/null 2>&1 || test_packages+=(nodejs)
command -v npm >/dev/null 2>&1 || test_packages+=(npm)

missing=()
for package in "${build_packages[@]}" "${test_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#build_packages[@]} build and ${#test_packages[@]} test packages are present"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
# The tests start their own nginx, HAProxy, Apache and sshd on loopback; the packages' system
# services must not start (they would take ports 80 and 22). policy-rc.d is Debian's switch.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${sudo[@]}" chmod +x /usr/sbin/policy-rc.d
  trap '"${sudo[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
fi
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
