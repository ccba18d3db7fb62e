#!/usr/bin/env bash
# One entry point for the README's Quick start.
#   installer/dev.sh run [ARGS...]    install deps, build, start the console (default: --demo --load)
#   installer/dev.sh test [--sanitize] install deps, build, run every test (CTest)
#   installer/dev.sh build [--sanitize]
# The normal build lives in build/ (executables in build/bin/), the ASan+UBSan build in
# build-sanitize/. Both directories survive between runs, so rebuilds are incremental.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

command=${1:-}
shift || true
preset=default
if [ "${1:-}" = "--sanitize" ]; then
  preset=sanitize
  shift
elif [ -n "${CI:-}" ]; then
  preset=ci # same build directory, warnings are errors
fi

build() {
  "$root/installer/install-deps.sh"
  cmake --preset "$preset" >/dev/null
  local start=$SECONDS
  cmake --build --preset "$preset"
  echo "dev.sh: $preset build finished in $((SECONDS - start)) s"
}

case $command in
  build)
    build ;;
  run)
    build
    [ $# -gt 0 ] || set -- --demo --load
    if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
      echo "dev.sh: no DISPLAY; starting under xvfb-run (set DISPLAY to see the window)" >&2
      exec xvfb-run -a -s "-screen 0 1280x800x24" "$root/build/bin/corral" "$@"
    fi
    exec "$root/build/bin/corral" "$@" ;;
  test)
    build
    mkdir -p /run/sshd 2>/dev/null || true
    ctest --preset "$preset" -j 2 ;;
  *)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 2 ;;
esac
