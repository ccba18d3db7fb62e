#!/usr/bin/env bash
# proxy.sh — Corral's proxy benchmark: builds corralctl (Release, its own build dir) and runs
# the shared harness (../shared/bench/compare.sh) with `corralctl proxy` as the candidate,
# once at 1 thread (vs nginx worker_processes 1, HAProxy nbthread 1) and once at 2 (vs 2).
#
# Usage: tests/bench/proxy.sh [compare.sh options...]     e.g. -T 120 -r 3
# Env:   BUILD (default build-bench/), THREADS (default "1 2"), COMPARE (harness path)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
THREADS=${THREADS:-1 2}
if [ -z "${COMPARE:-}" ]; then
  for c in "$ROOT/../shared/bench/compare.sh" /work/shared/bench/compare.sh; do
    [ -x "$c" ] && { COMPARE=$c; break; }
  done
fi
[ -n "${COMPARE:-}" ] || { echo "proxy.sh: compare.sh not found (set COMPARE)" >&2; exit 2; }

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" --target corralctl >/dev/null
CTL=$BUILD/bin/corralctl

for t in $THREADS; do
  echo "## corralctl proxy --threads $t vs nginx worker_processes $t, HAProxy nbthread $t"
  "$COMPARE" -n "$t" -p "$t" "$@" \
    "exec $CTL proxy --listen 127.0.0.1:\$PORT --backends \$BACKENDS --threads $t"
done
