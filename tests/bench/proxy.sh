#!/usr/bin/env bash
# proxy.sh — Corral's proxy benchmark: builds corralctl (Release, its own build dir) and runs
# the shared harness (../shared/bench/compare.sh) with `corralctl proxy` as the candidate,
# once per thread count (N = 1: nginx worker_processes 1, HAProxy nbthread 1; N = 2: 2 and 2),
# then once more with 256 KiB responses (nginx backends serving a file, load c64).
#
# Besides the harness's req/s and p99 tables it prints, per load, the CPU time each proxy
# spent per request (µs, utime+stime from /proc over the run divided by the requests it
# answered): unlike req/s this does not depend on who wins the scheduler on a shared machine.
# For Corral it also prints context switches per request and how the accepted connections
# were spread over its threads (from /proc/PID/task/*/status and /stat, sampled each second).
#
# Usage: tests/bench/proxy.sh [compare.sh options...]     e.g. -r 5 -d 10
# Env:   BUILD (default build-bench/), THREADS (default "1 2"), COMPARE (harness path),
#        CTL (a corralctl to measure instead of building one, e.g. an older build),
#        BIG_KB (response size of the large-body run, default 256; 0 skips it),
#        BIG_LOADS (default c64), BIG_THREADS (default 1),
#        PROXY_ARGS (more `corralctl proxy` options, e.g. "--splice-min-bytes 0")
# The dev/prod parity features (static files, gzip, TLS, access log) have their own comparison
# against nginx and HAProxy next to this script: tests/bench/parity.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
THREADS=${THREADS-1 2}
BIG_KB=${BIG_KB:-256}
BIG_LOADS=${BIG_LOADS:-c64}
BIG_THREADS=${BIG_THREADS:-1}
PROXY_ARGS=${PROXY_ARGS:-}
if [ -z "${COMPARE:-}" ]; then
  for c in "$ROOT/../shared/bench/compare.sh" /work/shared/bench/compare.sh; do
    [ -x "$c" ] && { COMPARE=$c; break; }
  done
fi
[ -n "${COMPARE:-}" ] || { echo "proxy.sh: compare.sh not found (set COMPARE)" >&2; exit 2; }

if [ -z "${CTL:-}" ]; then
  # Only corralctl is measured: the tests stay out of this build (-DCORRAL_BUILD_TESTS=OFF).
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCORRAL_BUILD_TESTS=OFF >/dev/null
  cmake --build "$BUILD" --target corralctl >/dev/null
  CTL=$BUILD/bin/corralctl
fi

WORK=$(mktemp -d -t corral-proxy-bench.XXXXXX)
chmod 755 "$WORK" # nginx workers (user nobody) read the large body from here
trap 'rm -rf "$WORK"' EXIT

# The candidate runs under a small wrapper that samples, twice a second, the context switches
# and CPU time of each of the proxy's threads, so the totals survive the harness stopping it.
# Each thread's share of the CPU shows how evenly the listeners spread the connections.
cat >"$WORK/candidate.sh" <<'EOF'
#!/usr/bin/env bash
# candidate.sh SAMPLES_FILE CORRALCTL ARGS...: runs the proxy, samples /proc twice a second.
samples=$1; shift
"$@" &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  snapshot=""
  for t in /proc/$pid/task/*; do
    v=$(awk '/^voluntary_ctxt_switches/{v=$2} /^nonvoluntary_ctxt_switches/{n=$2} END{print v+0, n+0}' "$t/status" 2>/dev/null) || continue
    c=$(awk '{sub(/.*\) /, ""); print $12 + $13}' "$t/stat" 2>/dev/null) || continue
    snapshot+="${t##*/} $v $c;"
  done
  [ -n "$snapshot" ] && printf '%s\n' "$snapshot" >"$samples.tmp" && mv "$samples.tmp" "$samples"
  [ -z "${first:-}" ] && [ -n "$snapshot" ] && { printf '%s\n' "$snapshot" >"$samples.first"; first=1; }
  sleep 0.5
done
wait "$pid"
EOF
chmod +x "$WORK/candidate.sh"

# CPU µs per request from the harness's raw results (proxy_cpu is % of one core over the run).
cpu_per_request() { # RAW_TSV THREADS
  awk -F'\t' -v t="$2" '
    function median(arr, n,   i, j, x, b) {
      for (i = 1; i <= n; i++) b[i] = arr[i]
      for (i = 2; i <= n; i++) { x = b[i]; for (j = i - 1; j >= 1 && b[j] > x; j--) b[j+1] = b[j]; b[j+1] = x }
      return n ? ((n % 2) ? b[(n+1)/2] : (b[n/2] + b[n/2+1]) / 2) : -1
    }
    NR == 1 { next }
    $3 != "direct" && $4 > 0 { k = $2 SUBSEP $3; n[k]++; v[k, n[k]] = $8 / 100 * 1e6 / $4; loads[$2]; cands[$3] }
    END {
      printf "\nCPU time per request (µs, median of rounds; lower is better), %s thread(s)\n", t
      printf "%-7s %-12s %-12s %-12s %s\n", "load", "corral", "nginx", "haproxy", "corral/nginx, corral/haproxy"
      for (l in loads) {
        for (c in cands) { m = 0; for (i = 1; i <= n[l, c]; i++) a[++m] = v[l, c, i]; med[c] = median(a, m); delete a }
        cn = "nginx-w" t; ch = "haproxy-t" t
        printf "%-7s %-12.1f %-12.1f %-12.1f %.2f, %.2f\n", l, med["cand"], med[cn], med[ch],
          med["cand"] / med[cn], med["cand"] / med[ch]
      }
    }' "$1"
}

# Context switches per request and each thread's share of the CPU, from the wrapper's samples.
thread_report() { # SAMPLES RAW_TSV DURATION
  [ -f "$1" ] && [ -f "$1.first" ] || { echo "(no thread samples)"; return; }
  local requests
  requests=$(awk -F'\t' -v d="$3" 'NR > 1 && $3 == "cand" { s += $4 * d } END { printf "%.0f", s }' "$2")
  awk -v requests="$requests" '
    function load(line, into,   parts, i, f) {
      n = split(line, parts, ";")
      for (i = 1; i <= n; i++) if (split(parts[i], f, " ") == 4) { into[f[1], "v"] = f[2]; into[f[1], "n"] = f[3]; into[f[1], "c"] = f[4]; tids[f[1]] }
    }
    FNR == 1 && FILENAME ~ /first$/ { load($0, a); next }
    FNR == 1 { load($0, b) }
    END {
      for (t in tids) { cpu += b[t, "c"] - a[t, "c"]; sw += (b[t, "v"] - a[t, "v"]) + (b[t, "n"] - a[t, "n"]) }
      printf "corral: %.3f context switches per request (%d requests); per thread: ", requests ? sw / requests : 0, requests
      for (t in tids) printf "tid %s %.0f%% of its CPU, %d voluntary + %d involuntary switches; ", t,
        cpu ? 100 * (b[t, "c"] - a[t, "c"]) / cpu : 0, b[t, "v"] - a[t, "v"], b[t, "n"] - a[t, "n"]
      printf "\n"
    }' "$1.first" "$1"
}

# The harness prints its per-run duration ("wrk -tN -dNs") first; requests = req/s x that.
run_compare() { # LABEL THREADS HARNESS [compare options...]
  local label=$1 t=$2 harness=$3; shift 3
  local raw=$WORK/$label.tsv samples=$WORK/$label.samples log=$WORK/$label.log
  echo "## $label: corralctl proxy --threads $t vs nginx worker_processes $t, HAProxy nbthread $t"
  "$harness" -n "$t" -p "$t" -o "$raw" "$@" \
    "exec $WORK/candidate.sh $samples $CTL proxy --listen 127.0.0.1:\$PORT --backends \$BACKENDS --threads $t $PROXY_ARGS" \
    2> >(tee "$log" >&2)
  local duration
  duration=$(sed -n 's/.*wrk -t[0-9]* -d\([0-9]*\)s.*/\1/p' "$log" | head -1)
  cpu_per_request "$raw" "$t"
  thread_report "$samples" "$raw" "${duration:-1}"
  echo
}

for t in $THREADS; do
  run_compare "threads-$t" "$t" "$COMPARE" "$@"
done

if [ "$BIG_KB" -gt 0 ]; then
  # The same harness with nginx backends that answer every request with a BIG_KB file (its
  # text starts with "ok", which the harness's readiness check looks for).
  big=$WORK/big
  mkdir -p "$big" && chmod 755 "$big"
  head -c $((BIG_KB * 1024)) < <(yes ok) >"$big/body.txt"
  chmod 644 "$big/body.txt"
  sed "s|location / { default_type text/plain; return 200 \"ok\\\\n\"; }|location / { default_type text/plain; root $big; try_files /body.txt =404; }|" \
    "$COMPARE" >"$WORK/compare-big.sh"
  grep -q "try_files /body.txt" "$WORK/compare-big.sh" ||
    { echo "proxy.sh: could not point the harness's nginx backends at the large body" >&2; exit 2; }
  chmod +x "$WORK/compare-big.sh"
  for t in $BIG_THREADS; do
    run_compare "body-${BIG_KB}k-threads-$t" "$t" "$WORK/compare-big.sh" -b nginx -l "$BIG_LOADS" "$@"
  done
fi
