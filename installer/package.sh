#!/usr/bin/env bash
# Builds the Debian package from build/ and, with --check, verifies it the way CI does:
# expected files, lintian without an error or warning, desktop entry and AppStream metadata
# valid, installs with dpkg -i, the installed programs report the project's version and
# `corralctl up --demo --workers 2` from /usr/bin serves a request through its balancer.
#   installer/package.sh [--check]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
[ -f build/CMakeCache.txt ] || cmake --preset default >/dev/null
cmake --build build --target corral corralctl corral-agent corral-demo-worker manpages changelog
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
            ./usr/share/man/man1/corral.1.gz ./usr/share/man/man1/corralctl.1.gz \
            ./usr/share/man/man1/corral-agent.1.gz ./usr/share/man/man1/corral-demo-worker.1.gz \
            ./usr/share/doc/corral/copyright ./usr/share/doc/corral/changelog.gz \
            ./usr/share/corral/demo-public/welcome.html ./usr/share/corral/demo-public/demo.css; do
  grep -qx -- "$path" <<<"$listing" || { echo "package: missing $path" >&2; exit 1; }
done
dpkg-deb -f "$deb" Depends | grep -q libqt6core6 || { echo "package: Depends not filled from the libraries" >&2; exit 1; }
work=$(mktemp -d)
cluster_pid=
trap '[ -z "$cluster_pid" ] || kill "$cluster_pid" 2>/dev/null; rm -rf "$work"' EXIT
chmod 755 "$work"

# lintian refuses nothing as root but says so on every run; it reads the package as nobody,
# from a copy nobody can read. Any error or warning fails the check; its output is the log line.
mkdir -m 755 "$work/lint" && cp "$deb" "$work/lint/" && chmod 644 "$work/lint/"*.deb
lint=(lintian --fail-on error,warning "$work/lint/$(basename "$deb")")
[ "$(id -u)" -ne 0 ] || lint=(runuser -u nobody -- "${lint[@]}")
report=$("${lint[@]}" 2>&1) || { echo "$report" >&2; echo "package: lintian failed" >&2; exit 1; }
[ -z "$report" ] || { echo "$report" >&2; echo "package: lintian reported the lines above" >&2; exit 1; }
echo "package: lintian $(lintian --print-version) --fail-on error,warning: no tags"

mkdir "$work/root"
dpkg-deb -x "$deb" "$work/root"
work_root=$work/root
desktop-file-validate "$work_root/usr/share/applications/io.corral.Corral.desktop"
appstreamcli validate --no-net "$work_root/usr/share/metainfo/io.corral.Corral.metainfo.xml"
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
"${sudo[@]}" dpkg -i "$deb" >/dev/null
installed=$(/usr/bin/corralctl --version)
[ "$installed" = "corralctl $version" ] || { echo "package: /usr/bin/corralctl says '$installed', expected $version" >&2; exit 1; }
installed_console=$(QT_QPA_PLATFORM=offscreen /usr/bin/corral --version 2>/dev/null)
[ "$installed_console" = "corral $version" ] || { echo "package: /usr/bin/corral says '$installed_console', expected $version" >&2; exit 1; }
for page in corral corralctl corral-agent corral-demo-worker; do man -w "$page" >/dev/null; done

# The installed demo cluster, bounded: two workers of /usr/bin/corral-demo-worker ready and a
# request answered through the embedded balancer within 30 s, then SIGINT stops it with exit 0.
# Its own HOME and XDG directories, so the check leaves nothing in the user's.
mkdir -p "$work/home/run" && chmod 700 "$work/home/run"
port_free() { ! timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }
port=$((20000 + RANDOM % 20000))
while ! port_free "$port"; do port=$((20000 + RANDOM % 20000)); done
HOME=$work/home XDG_RUNTIME_DIR=$work/home/run XDG_STATE_HOME=$work/home/state \
  /usr/bin/corralctl up --demo --workers 2 --base-port $((port + 1)) --listen "127.0.0.1:$port" --json \
  >"$work/up.log" 2>&1 &
cluster_pid=$!
deadline=$((SECONDS + 30))
until [ "$(grep -c '"state":"running"' "$work/up.log")" -ge 2 ]; do
  kill -0 "$cluster_pid" 2>/dev/null && [ $SECONDS -lt $deadline ] || { cat "$work/up.log" >&2; echo "package: corralctl up --demo did not get 2 workers running" >&2; exit 1; }
  sleep 0.2
done
grep -q '"command":"/usr/bin/corral-demo-worker"' "$work/up.log" || { cat "$work/up.log" >&2; echo "package: the demo did not run /usr/bin/corral-demo-worker" >&2; exit 1; }
answer=
until [[ $answer == *'"pid":'* ]]; do
  [ $SECONDS -lt $deadline ] || { echo "package: no answer through the balancer on 127.0.0.1:$port: '$answer'" >&2; exit 1; }
  answer=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "GET / HTTP/1.0\r\nHost: demo\r\n\r\n" >&3 && cat <&3' _ "$port" 2>/dev/null || true)
  [[ $answer == *'"pid":'* ]] || sleep 0.2
done
kill -INT "$cluster_pid"
status=0
timeout 20 tail --pid="$cluster_pid" -f /dev/null || { echo "package: corralctl up did not stop within 20 s of SIGINT" >&2; exit 1; }
wait "$cluster_pid" || status=$?
cluster_pid=
[ "$status" -eq 0 ] || { cat "$work/up.log" >&2; echo "package: corralctl up exited $status after SIGINT" >&2; exit 1; }
echo "package: /usr/bin/corralctl up --demo --workers 2 served $(echo "$answer" | tail -n 1) and stopped cleanly"
echo "package: ok ($installed, $(echo "$listing" | grep -c '^\./usr/.*[^/]$') files)"
