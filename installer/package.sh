#!/usr/bin/env bash
# Builds the Debian package from build/ and, with --check, verifies it the way CI does:
# expected files, desktop entry and AppStream metadata valid, installs with dpkg -i, and the
# installed corralctl reports the project's version.
#   installer/package.sh [--check]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
[ -f build/CMakeCache.txt ] || cmake --preset default >/dev/null
cmake --build build --target corral corralctl corral-agent corral-demo-worker manpages
rm -f build/package/*.deb
(cd build && cpack -G DEB >/dev/null)
deb=$(ls build/package/*.deb)
echo "package: $deb"
[ "${1:-}" = --check ] || exit 0

version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' build/CMakeCache.txt)
listing=$(dpkg-deb -c "$deb" | awk '{print $6}')
for path in ./usr/bin/corral ./usr/bin/corralctl ./usr/bin/corral-agent ./usr/bin/corral-demo-worker \
            ./usr/lib/systemd/user/corral-agent.service \
            ./usr/share/applications/io.corral.Corral.desktop \
            ./usr/share/icons/hicolor/scalable/apps/io.corral.Corral.svg \
            ./usr/share/metainfo/io.corral.Corral.metainfo.xml \
            ./usr/share/man/man1/corral.1 ./usr/share/man/man1/corralctl.1 \
            ./usr/share/corral/demo-public/welcome.html ./usr/share/corral/demo-public/demo.css; do
  grep -qx -- "$path" <<<"$listing" || { echo "package: missing $path" >&2; exit 1; }
done
dpkg-deb -f "$deb" Depends | grep -q libqt6core6 || { echo "package: Depends not filled from the libraries" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work"
desktop-file-validate "$work/usr/share/applications/io.corral.Corral.desktop"
appstreamcli validate --no-net "$work/usr/share/metainfo/io.corral.Corral.metainfo.xml"
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
"${sudo[@]}" dpkg -i "$deb" >/dev/null
installed=$(/usr/bin/corralctl --version)
[ "$installed" = "corralctl $version" ] || { echo "package: /usr/bin/corralctl says '$installed', expected $version" >&2; exit 1; }
man -w corralctl >/dev/null
echo "package: ok ($installed, $(echo "$listing" | grep -c '^\./usr/.*[^/]$') files)"
