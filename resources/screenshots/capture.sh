#!/usr/bin/env bash
# Screenshots of the real console window under Xvfb: `corral --demo --load` (three demo
# workers behind the embedded balancer, load generator on), after SECONDS of load; then a
# production site (a real nginx reached over a real loopback sshd, build/tests/shot_production)
# and its apply dialog; then the fleet overview and a 100-backend site on fleets of real
# sshd hosts on 127.0.1.x (build/tests/shot_fleet); then the session affinity banner on the
# demo, its evidence and the result after its fix (build/tests/shot_affinity).
#   resources/screenshots/capture.sh [SECONDS]      (needs a build in build/; xvfb-run, import)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out="$root/resources/screenshots"
seconds=${1:-40}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export XDG_STATE_HOME="$tmp/state" XDG_CONFIG_HOME="$tmp/config" XDG_RUNTIME_DIR="$tmp/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
xvfb-run -a -s "-screen 0 1280x800x24" bash -c '
  "$1" --inventory "$2/inventory.json" --demo --load --listen "127.0.0.1:$3" &
  pid=$!
  sleep "$4"
  import -window root "$5/console-demo.png"
  kill -TERM "$pid"    # the console stops its workers before it exits
  wait "$pid"
' capture "$root/build/bin/corral" "$tmp" "$port" "$seconds" "$out"
# The console started a private agent (in $tmp/run): stop it, nothing stays behind.
"$root/build/bin/corralctl" agent stop >/dev/null 2>&1 || true
echo "wrote $out/console-demo.png"
XDG_STATE_HOME="$tmp/state2" xvfb-run -a -s "-screen 0 1280x800x24" \
  "$root/build/tests/shot_production" "$out" "$((seconds / 2))"
XDG_STATE_HOME="$tmp/state3" xvfb-run -a -s "-screen 0 1280x800x24" \
  "$root/build/tests/shot_fleet" "$out" "$((seconds / 2))"
XDG_STATE_HOME="$tmp/state4" xvfb-run -a -s "-screen 0 1280x800x24" \
  "$root/build/tests/shot_affinity" "$out" "$((seconds / 4))"
