#!/usr/bin/env bash
# parity.sh — benchmarks of the embedded proxy's dev/prod parity features (issue 19) against
# nginx and HAProxy where they apply, in interleaved, time-bounded wrk rounds (as
# ../shared/bench/compare.sh: every round runs each candidate once per load, the start position
# rotating; ratios are medians of same-round ratios, so a machine getting busier between rounds
# moves both sides of a ratio). Parts:
#
#   static  files from one directory: `corralctl proxy --static DIR` vs nginx `root DIR`
#           (sendfile on, tcp_nopush on, access_log off, other settings nginx's defaults);
#           1 KiB and 64 KiB files, keep-alive c64 and c256. Goal: Corral >= 1.0x nginx.
#   gzip    a 16 KiB text/html page from an nginx backend, wrk sending Accept-Encoding: gzip:
#           Corral (gzip on, level 1) vs nginx with the production config's gzip settings
#           (gzip on; gzip_proxied any; gzip_types ...; level 1, its default) vs HAProxy
#           (`compression algo gzip`; Debian's HAProxy compresses with libslz, not zlib, and has
#           no level) and, for context, Corral with --no-gzip. Goal: Corral >= 1.0x nginx.
#   tls     HTTPS, one self-signed ECDSA P-256 certificate for all, TLS 1.3 with
#           TLS_AES_128_GCM_SHA256 and X25519 (pinned on the client through OPENSSL_CONF, so
#           every server negotiates the same; checked with openssl s_client), session
#           resumption on everywhere (Corral always issues tickets). Loads: c64 keep-alive;
#           close (Connection: close, 64 connections, wrk with a preloaded shim that drops
#           the previous session: one full handshake per request, req/s = handshakes/s); resume
#           (the same with wrk as it is, which resumes: one resumed handshake per request). An
#           nginx logging $ssl_session_reused checks both first. Goal: Corral >= 0.9x each.
#   log     Corral with and without --access-log FILE, and nginx with and without an access
#           log (the production config's format, one write per request as Corral renders it),
#           keep-alive c256. Goal: Corral's loss <= 3 %. Lines written are checked against
#           the requests answered.
#
# Every proxy runs one thread (corralctl proxy --threads 1, nginx worker_processes 1, HAProxy
# nbthread 1); backends are two nginx (worker_processes 1) on 127.0.0.1. Each part prints
# req/s (median), p99, errors (socket errors + non-2xx; any is a failure), CPU time per
# request (µs, utime+stime of the server's process group from /proc over the run divided by
# the requests wrk completed), bytes per response, wrk's CPU (% of one core: near 100 x wrk
# threads, the client is the limit) and the whole machine's busy %, the ratios with their
# goals and a command that reproduces it. Before timing, one response of every candidate is
# checked with curl (status, body byte for byte, encoding, TLS version and cipher); a Corral
# candidate that fails a check is reported and left out of the part, the others still run.
#
# Usage: tests/bench/parity.sh [-d SECS] [-r ROUNDS] [-t WRK_THREADS] [-k]
# Env:   PARTS (default "static gzip tls log"), DURATION (5), ROUNDS (3), WRK_THREADS (2),
#        GAP (seconds between runs, 0.5), BUILD (default build-bench/), CTL (a corralctl to
#        measure instead of building one), PROXY_ARGS (more `corralctl proxy` options for
#        every Corral candidate), BASE_PORT (18400: backends BASE+1, BASE+2, candidates
#        BASE+10...), KEEP_TMP=1 (keep configs, logs and wrk outputs).
# Default runtime at -d 5 -r 3: about 7.5 minutes (75 runs).
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
PARTS=${PARTS:-static gzip tls log}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-2}
GAP=${GAP:-0.5}
PROXY_ARGS=${PROXY_ARGS:-}
BASE_PORT=${BASE_PORT:-18400}
KEEP_TMP=${KEEP_TMP:-0}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while getopts "d:r:t:kh" o; do
  case $o in
    d) DURATION=$OPTARG ;; r) ROUNDS=$OPTARG ;; t) WRK_THREADS=$OPTARG ;; k) KEEP_TMP=1 ;;
    h) usage 0 ;; *) usage 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage 2
for p in $PARTS; do
  case $p in static|gzip|tls|log) ;; *) echo "parity.sh: unknown part '$p' (static gzip tls log)" >&2; exit 2 ;; esac
done
for t in wrk nginx haproxy curl openssl setsid ss pgrep gzip cmp; do
  command -v "$t" >/dev/null || { echo "parity.sh: missing $t" >&2; exit 2; }
done

if [ -z "${CTL:-}" ]; then
  # Only corralctl is measured: the tests stay out of this build (-DCORRAL_BUILD_TESTS=OFF).
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCORRAL_BUILD_TESTS=OFF >/dev/null
  cmake --build "$BUILD" --target corralctl >/dev/null
  CTL=$BUILD/bin/corralctl
fi
[ -x "$CTL" ] || { echo "parity.sh: $CTL is not executable" >&2; exit 2; }
CTL_HELP=$("$CTL" proxy --help 2>&1 || true)
has_flag() { grep -q -- "$1" <<<"$CTL_HELP"; }

WORK=$(mktemp -d -t corral-parity-bench.XXXXXX)
chmod 755 "$WORK" # nginx workers (user nobody) read the files and the certificate from here
PIDS=()           # every process started, each in its own session (pid = process group id)
declare -A SPID=() CPORT=()

stop_groups() { # PID... : TERM to each group, up to 3 s to go, then KILL
  local p i alive
  for p in "$@"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  for i in $(seq 30); do
    alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "$@"; do kill -0 "$p" 2>/dev/null && kill -KILL -- "-$p" 2>/dev/null; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ ${#PIDS[@]} -gt 0 ] && stop_groups "${PIDS[@]}"
  if [ "$KEEP_TMP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "parity.sh: $*" >&2; exit 1; }

start() { # NAME CMD... : runs CMD in its own session, output in $WORK/NAME.log
  local name=$1; shift
  setsid "$@" >"$WORK/$name.log" 2>&1 &
  SPID[$name]=$!
  PIDS+=("$!")
}
stop() { # NAME...
  local n pids=()
  for n in "$@"; do [ -n "${SPID[$n]:-}" ] && pids+=("${SPID[$n]}"); done
  [ ${#pids[@]} -gt 0 ] || return 0
  stop_groups "${pids[@]}"
  local keep=() p
  for p in "${PIDS[@]}"; do [[ " ${pids[*]} " == *" $p "* ]] || keep+=("$p"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}
port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
wait_listen() { # NAME PORT: the process is alive and something listens on PORT (<= 10 s)
  local i
  for i in $(seq 100); do
    kill -0 "${SPID[$1]}" 2>/dev/null || { echo "$1 exited: $(tail -5 "$WORK/$1.log")" >&2; return 1; }
    port_busy "$2" && return 0
    sleep 0.1
  done
  echo "$1 does not listen on $2: $(tail -5 "$WORK/$1.log")" >&2
  return 1
}

HZ=$(getconf CLK_TCK)
TIMEFORMAT='%U %S' # wrk's user and system seconds, from bash's time
sys_ticks() { awk '/^cpu /{b=$2+$3+$4+$7+$8+$9; print b, b+$5+$6; exit}' /proc/stat; } # busy, total
grp_ticks() { # PGID: utime+stime of every process in the group
  local p line rest sum=0
  local -a a
  for p in $(pgrep -g "$1"); do
    read -r line 2>/dev/null </proc/$p/stat || continue
    rest=${line##*) }
    read -ra a <<<"$rest"
    sum=$((sum + a[11] + a[12]))
  done
  echo "$sum"
}

# ---------------------------------------------------------------- shared fixtures
B1=$((BASE_PORT + 1)) B2=$((BASE_PORT + 2))
BACKENDS=127.0.0.1:$B1,127.0.0.1:$B2
CORRAL_BASE=(proxy --backends "$BACKENDS" --threads 1)
read -ra EXTRA <<<"$PROXY_ARGS"
CORRAL_BASE+=("${EXTRA[@]+"${EXTRA[@]}"}")

# Text that compresses like a real page (the GPL, as HTML), cut to exact sizes.
TEXT=$WORK/text.html
{
  echo '<!doctype html><html><head><title>parity</title></head><body><pre>'
  src=/usr/share/common-licenses/GPL-3
  [ -r "$src" ] || src=$ROOT/README.md
  while [ "$(stat -c %s "$TEXT")" -lt 65536 ]; do cat "$src"; done
} >"$TEXT"
text_of_size() { head -c "$1" "$TEXT"; } # BYTES
WWW=$WORK/www # the backends' page and the static part's directory
mkdir -p "$WWW" && chmod 755 "$WWW"
text_of_size 16384 >"$WWW/page.html"
text_of_size 1024 >"$WWW/1k.css"
text_of_size 65536 >"$WWW/64k.css"
chmod 644 "$WWW"/*

# nginx_conf NAME HTTP_BLOCK_BODY: a one-worker nginx prefix $WORK/NAME with the given http{} body.
nginx_conf() {
  local d=$WORK/$1
  mkdir -p "$d" && chmod 755 "$d"
  cat >"$d/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $d/nginx.pid;
lock_file $d/nginx.lock;
error_log $d/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 8192; }
http {
  types { text/html html; text/css css; }
  default_type text/plain;
  client_body_temp_path $d/body; proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fcgi; uwsgi_temp_path $d/uwsgi; scgi_temp_path $d/scgi;
$2
}
EOF
}
start_nginx() { start "$1" nginx -p "$WORK/$1" -e "$WORK/$1/error.log" -c "$WORK/$1/nginx.conf"; }
nginx_proxy_location='location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }'
nginx_upstream="upstream be { server 127.0.0.1:$B1; server 127.0.0.1:$B2; keepalive 512; }"

haproxy_cfg() { # NAME PORT BIND_OPTIONS GLOBAL_LINES BACKEND_LINES
  cat >"$WORK/$1.cfg" <<EOF
global
  nbthread 1
  maxconn 8000
$4
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:$2 $3
  default_backend be
backend be
  balance roundrobin
$5
  server s1 127.0.0.1:$B1
  server s2 127.0.0.1:$B2
EOF
}
start_haproxy() { start "$1" haproxy -db -f "$WORK/$1.cfg"; }

# ---------------------------------------------------------------- measuring
RES=$WORK/results.tsv
printf 'part\tround\tload\tcand\trps\tp99_ms\terrors\trequests\tcpu_us\tbytes\twrk_cpu\tbusy\n' >"$RES"
to_ms() { # wrk duration (812.00us 1.23ms 2.01s) -> ms
  awk -v x="$1" 'BEGIN{ if (x ~ /us$/) v = x/1000; else if (x ~ /ms$/) v = x + 0;
    else if (x ~ /m$/) v = x*60000; else if (x ~ /s$/) v = x*1000; else v = -1; printf "%.3f", v }'
}
to_bytes() { # 476.91KB -> bytes
  awk -v x="$1" 'BEGIN{ m = 1; if (x ~ /KB$/) m = 1024; else if (x ~ /MB$/) m = 1048576;
    else if (x ~ /GB$/) m = 1073741824; printf "%.0f", (x + 0) * m }'
}

# run_part PART: interleaved rounds over LOADS (entries "LABEL CONNS keep|close PATH [full]",
# full: wrk with the shim that makes every TLS handshake a full one) and
# CANDS (names with CPORT and SCHEME set), wrk with WRK_ARGS and env WRK_ENV.
run_part() {
  local part=$1 r load k c label conns mode path handshake preload out hdr th s0b s0t s1b s1t wu ws wcpu busy t0 t1 rps p99 errs reqs read cpu bytes
  local nc=${#CANDS[@]}
  echo "# $part: ${CANDS[*]}; loads: $(printf '%s; ' "${LOADS[@]}")wrk -t$WRK_THREADS -d${DURATION}s x $ROUNDS rounds" >&2
  for ((r = 1; r <= ROUNDS; r++)); do
    for load in "${LOADS[@]}"; do
      read -r label conns mode path handshake <<<"$load"
      hdr=(); [ "$mode" = close ] && hdr=(-H 'Connection: close')
      preload=(); [ "$handshake" = full ] && preload=("LD_PRELOAD=$WORK/noresume.so")
      th=$WRK_THREADS; [ "$conns" -lt "$th" ] && th=$conns
      for ((k = 0; k < nc; k++)); do
        c=${CANDS[(k + r - 1) % nc]}
        out=$WORK/wrk.$part.$r.$label.$c.txt
        t0=$(grp_ticks "${SPID[$c]}")
        read -r s0b s0t < <(sys_ticks)
        { time env "${WRK_ENV[@]+"${WRK_ENV[@]}"}" "${preload[@]+"${preload[@]}"}" wrk -t"$th" -c"$conns" -d"${DURATION}s" --latency \
          "${WRK_ARGS[@]+"${WRK_ARGS[@]}"}" "${hdr[@]+"${hdr[@]}"}" "${SCHEME[$c]}://127.0.0.1:${CPORT[$c]}$path" >"$out" 2>&1 || true; } 2>"$out.time"
        t1=$(grp_ticks "${SPID[$c]}")
        read -r s1b s1t < <(sys_ticks)
        read -r wu ws <"$out.time"
        wcpu=$(awk -v u="$wu" -v s="$ws" -v d="$DURATION" 'BEGIN{printf "%.0f", (u+s)/d*100}')
        busy=$(awk -v a="$s0b" -v b="$s1b" -v x="$s0t" -v y="$s1t" 'BEGIN{printf "%.0f", (y > x) ? (b-a)/(y-x)*100 : 0}')
        rps=$(awk '/^Requests\/sec:/{print $2}' "$out")
        p99=$(awk '$1=="99%"{print $2; exit}' "$out")
        reqs=$(awk '/ requests in /{print $1; exit}' "$out")
        read=$(awk '/ requests in /{print $5; exit}' "$out")
        errs=$(awk '/Socket errors:/{gsub(/,/,""); e+=$4+$6+$8+$10} /Non-2xx/{e+=$NF} END{print e+0}' "$out")
        [ -z "$rps" ] && { rps=0; reqs=0; echo "# WARN $part $c $label: wrk gave no result: $(head -c 300 "$out")" >&2; }
        cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v n="${reqs:-0}" 'BEGIN{printf "%.1f", n ? (b-a)/hz*1e6/n : 0}')
        bytes=$(awk -v b="$(to_bytes "${read:-0}")" -v n="${reqs:-0}" 'BEGIN{printf "%.0f", n ? b/n : 0}')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$part" "$r" "$label" "$c" "$rps" \
          "$(to_ms "${p99:-0}")" "$errs" "${reqs:-0}" "$cpu" "$bytes" "$wcpu" "$busy" >>"$RES"
        printf '# r%d %-10s %-15s %10s req/s  p99 %-9s err %s  %s µs/req\n' "$r" "$label" "$c" "$rps" "${p99:-?}" "$errs" "$cpu" >&2
        [ "$errs" != 0 ] && echo "# WARN $part $c $label: $errs errors: $(grep -E 'Socket errors|Non-2xx' "$out" | tr '\n' ' ')" >&2
        sleep "$GAP"
      done
    done
  done
}

# report PART "A/B GOAL" ...: the part's table and its same-round ratios (GOAL like >=1.0,
# <=0.97 or - for context only).
report() {
  local part=$1; shift
  awk -F'\t' -v part="$part" -v cands="${CANDS[*]}" -v ratios="$*" -v rounds="$ROUNDS" '
    function median(arr, n,   i, j, t, b) {
      for (i = 1; i <= n; i++) b[i] = arr[i]
      for (i = 2; i <= n; i++) { t = b[i]; for (j = i - 1; j >= 1 && b[j] > t; j--) b[j+1] = b[j]; b[j+1] = t }
      return n ? ((n % 2) ? b[(n+1)/2] : (b[n/2] + b[n/2+1]) / 2) : -1
    }
    function med(l, c, col,   r, n, a) {
      n = 0; for (r = 1; r <= rounds; r++) if ((l, c, r) in V) a[++n] = V[l, c, r, col]
      return median(a, n)
    }
    function sum(l, c, col,   r, s) { s = 0; for (r = 1; r <= rounds; r++) if ((l, c, r) in V) s += V[l, c, r, col]; return s }
    function rmed(l, x, y, col,   r, n, a) {
      n = 0
      for (r = 1; r <= rounds; r++) if (((l, x, r) in V) && ((l, y, r) in V) && V[l, y, r, col] > 0)
        a[++n] = V[l, x, r, col] / V[l, y, r, col]
      return median(a, n)
    }
    NR == 1 { for (i = 1; i <= NF; i++) H[i] = $i; next }
    $1 == part {
      if (!($3 in seen)) { seen[$3]; L[++nl] = $3 }
      V[$3, $4, $2] = 1; for (i = 5; i <= NF; i++) V[$3, $4, $2, H[i]] = $i
    }
    END {
      nc = split(cands, C, " "); nr = split(ratios, R, " ")
      printf "\n%-10s %-15s %10s %9s %6s %11s %8s %5s %5s\n", "load", "candidate", "req/s", "p99_ms", "errs", "cpu_us/req", "B/resp", "wrk%", "busy"
      for (l = 1; l <= nl; l++) for (c = 1; c <= nc; c++) {
        if (med(L[l], C[c], "rps") < 0) continue
        printf "%-10s %-15s %10.0f %9.2f %6d %11.1f %8.0f %5.0f %5.0f\n", L[l], C[c], med(L[l], C[c], "rps"),
          med(L[l], C[c], "p99_ms"), sum(L[l], C[c], "errors"), med(L[l], C[c], "cpu_us"), med(L[l], C[c], "bytes"),
          med(L[l], C[c], "wrk_cpu"), med(L[l], C[c], "busy")
      }
      printf "\n%-10s %-32s %7s %7s %7s  %s\n", "load", "ratio (same-round median)", "req/s", "p99", "cpu/req", "goal (req/s)"
      for (l = 1; l <= nl; l++) for (i = 1; i < nr; i += 2) {
        split(R[i], xy, "/"); goal = R[i + 1]
        x = rmed(L[l], xy[1], xy[2], "rps")
        if (x < 0) continue
        verdict = ""
        if (goal ~ /^>=/) verdict = (x >= substr(goal, 3) + 0) ? "met" : "NOT MET"
        if (goal ~ /^<=/) verdict = (x <= substr(goal, 3) + 0) ? "met" : "NOT MET"
        printf "%-10s %-32s %7.3f %7.2f %7.2f  %s %s\n", L[l], R[i], x, rmed(L[l], xy[1], xy[2], "p99_ms"),
          rmed(L[l], xy[1], xy[2], "cpu_us"), goal == "-" ? "(context)" : goal, verdict
      }
    }' "$RES"
  echo "reproduce: PARTS=$part tests/bench/parity.sh -d $DURATION -r $ROUNDS"
}

# check_response NAME DESCRIPTION CMD...: runs a check; a failing Corral candidate is dropped
# from the part (reported), a failing nginx or HAProxy is a harness error.
check_response() {
  local name=$1 what=$2; shift 2
  local msg
  if msg=$("$@" 2>&1); then return 0; fi
  case $name in
    corral*) echo "# FAIL $name: $what: $msg" >&2
             FAILED+=("$name: $what: $msg"); return 1 ;;
    *) die "$name: $what: $msg" ;;
  esac
}
FAILED=()
drop_cand() { local keep=() c; for c in "${CANDS[@]}"; do [ "$c" = "$1" ] || keep+=("$c"); done; CANDS=("${keep[@]+"${keep[@]}"}"); }

# body_is NAME URL FILE [curl options]: 200 and the body byte for byte
body_is() {
  local name=$1 url=$2 file=$3; shift 3
  local got=$WORK/check.$name.body code
  code=$(curl -sS --max-time 5 -o "$got" -w '%{http_code}' "$@" "$url") || return 1
  [ "$code" = 200 ] || { echo "status $code for $url"; return 1; }
  cmp -s "$got" "$file" || { echo "body of $url differs from $file ($(stat -c %s "$got") bytes, expected $(stat -c %s "$file"))"; return 1; }
}
# gzip_body_is NAME URL FILE: Content-Encoding gzip, Vary present, decodes to FILE
gzip_body_is() {
  local name=$1 url=$2 file=$3 got=$WORK/check.$1.gz head=$WORK/check.$1.head code
  code=$(curl -sS --max-time 5 -H 'Accept-Encoding: gzip' -D "$head" -o "$got" -w '%{http_code}' "$url") || return 1
  [ "$code" = 200 ] || { echo "status $code for $url"; return 1; }
  grep -qi '^content-encoding: *gzip' "$head" || { echo "no Content-Encoding: gzip: $(tr -d '\r' <"$head" | tr '\n' '|')"; return 1; }
  gzip -dc <"$got" | cmp -s - "$file" || { echo "gzip body of $url does not decode to $file"; return 1; }
}
# plain_body_is NAME URL FILE: sent with Accept-Encoding: gzip, comes back unencoded
plain_body_is() {
  local head=$WORK/check.$1.head
  body_is "$1" "$2" "$3" -H 'Accept-Encoding: gzip' -D "$head" || return 1
  ! grep -qi '^content-encoding' "$head" || { echo "encoded although gzip is off: $(grep -i '^content-encoding' "$head")"; return 1; }
}

# Backends: two nginx, "ok\n" on / and the files of $WWW (page.html for the gzip part).
start_backends() {
  local p
  for p in $B1 $B2; do
    nginx_conf "be$p" "  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$p reuseport backlog=4096;
    location = / { return 200 \"ok\\n\"; }
    location / { root $WWW; }
  }"
    start_nginx "be$p"
  done
  for p in $B1 $B2; do wait_listen "be$p" "$p" || die "backend $p did not start"; done
  echo ok >"$WORK/ok.txt"
  for p in $B1 $B2; do check_response "be$p" "GET /" body_is "be$p" "http://127.0.0.1:$p/" "$WORK/ok.txt"; done
}

# start_corral NAME PORT FLAG_NEEDED ARGS...: starts a Corral candidate when the corralctl has
# the flag, else says so (the part then measures the others).
start_corral() {
  local name=$1 port=$2 flag=$3; shift 3
  if [ -n "$flag" ] && ! has_flag "$flag"; then
    echo "# SKIP $name: this corralctl has no $flag (corralctl proxy --help)" >&2
    return 1
  fi
  start "$name" "$@"
  CPORT[$name]=$port
  wait_listen "$name" "$port" || { FAILED+=("$name: did not start: $(tail -3 "$WORK/$name.log" | tr '\n' ' ')"); return 1; }
}
start_other() { # NAME PORT (after start_nginx/start_haproxy)
  CPORT[$1]=$2
  wait_listen "$1" "$2" || die "$1 did not start"
}

# ---------------------------------------------------------------- parts
declare -A SCHEME=()
part_static() {
  local pc=$((BASE_PORT + 10)) pn=$((BASE_PORT + 11))
  CANDS=() LOADS=("1k-c64 64 keep /1k.css" "1k-c256 256 keep /1k.css" "64k-c64 64 keep /64k.css" "64k-c256 256 keep /64k.css")
  WRK_ARGS=() WRK_ENV=()
  if start_corral corral-static "$pc" --static "$CTL" "${CORRAL_BASE[@]}" --listen "127.0.0.1:$pc" --static "$WWW"; then
    CANDS+=(corral-static)
  fi
  nginx_conf nginx-static "  access_log off;
  sendfile on;
  tcp_nopush on;
  server {
    listen 127.0.0.1:$pn backlog=4096;
    root $WWW;
  }"
  start_nginx nginx-static && start_other nginx-static "$pn" && CANDS+=(nginx-static)
  local c f
  for c in "${CANDS[@]}"; do
    SCHEME[$c]=http
    for f in 1k.css 64k.css; do
      check_response "$c" "GET /$f" body_is "$c" "http://127.0.0.1:${CPORT[$c]}/$f" "$WWW/$f" || { drop_cand "$c"; break; }
    done
  done
  run_part static
  report static "corral-static/nginx-static >=1.0"
  stop corral-static nginx-static 2>/dev/null || true
}

part_gzip() {
  local pc=$((BASE_PORT + 20)) pp=$((BASE_PORT + 21)) pn=$((BASE_PORT + 22)) ph=$((BASE_PORT + 23))
  CANDS=() LOADS=("16k-c64 64 keep /page.html")
  WRK_ARGS=(-H 'Accept-Encoding: gzip') WRK_ENV=()
  local gzip_flag=()
  has_flag '--gzip ' && gzip_flag=(--gzip)
  if start_corral corral-gzip "$pc" --gzip "$CTL" "${CORRAL_BASE[@]}" --listen "127.0.0.1:$pc" "${gzip_flag[@]+"${gzip_flag[@]}"}"; then
    CANDS+=(corral-gzip)
  fi
  if start_corral corral-plain "$pp" --no-gzip "$CTL" "${CORRAL_BASE[@]}" --listen "127.0.0.1:$pp" --no-gzip; then
    CANDS+=(corral-plain)
  fi
  # The production config's gzip lines (core/upstreams/NginxRenderer.cpp), level 1 (default).
  nginx_conf nginx-gzip "  access_log off;
  $nginx_upstream
  gzip on;
  gzip_proxied any;
  gzip_types text/css text/javascript application/javascript application/json image/svg+xml application/vnd.ms-fontobject application/x-font-ttf;
  server {
    listen 127.0.0.1:$pn backlog=4096;
    $nginx_proxy_location
  }"
  start_nginx nginx-gzip && start_other nginx-gzip "$pn" && CANDS+=(nginx-gzip)
  haproxy_cfg haproxy-gzip "$ph" "" "" "  compression algo gzip
  compression type text/html text/css"
  start_haproxy haproxy-gzip && start_other haproxy-gzip "$ph" && CANDS+=(haproxy-gzip)
  local c
  for c in "${CANDS[@]}"; do
    SCHEME[$c]=http
    if [ "$c" = corral-plain ]; then
      check_response "$c" "GET /page.html (gzip off)" plain_body_is "$c" "http://127.0.0.1:${CPORT[$c]}/page.html" "$WWW/page.html" || drop_cand "$c"
    else
      check_response "$c" "GET /page.html with Accept-Encoding: gzip" gzip_body_is "$c" "http://127.0.0.1:${CPORT[$c]}/page.html" "$WWW/page.html" || drop_cand "$c"
    fi
  done
  run_part gzip
  report gzip "corral-gzip/nginx-gzip >=1.0" "corral-gzip/haproxy-gzip -" "corral-gzip/corral-plain -"
  stop corral-gzip corral-plain nginx-gzip haproxy-gzip 2>/dev/null || true
}

# TLS: the client (wrk, openssl s_client) offers only TLS 1.3 TLS_AES_128_GCM_SHA256 on X25519,
# so every server negotiates the same; the servers allow TLS 1.2 and 1.3 and resume sessions
# (tickets; Corral always does). wrk resumes the previous session of a connection slot when it
# reconnects (SSL_clear keeps it), so the "close" load preloads a shim into wrk that drops it
# before each handshake: every request is a full handshake. "resume" is wrk as it is: every
# request a resumed handshake (TLS 1.3 PSK with a fresh X25519 exchange).
tls_fixtures() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
  cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/cert+key.pem"
  cat >"$WORK/client-openssl.cnf" <<'EOF2'
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1.3
Ciphersuites = TLS_AES_128_GCM_SHA256
Groups = X25519
EOF2
  cat >"$WORK/noresume.c" <<'EOF2'
/* Preloaded into wrk: a connection's handshake starts without the previous session. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/ssl.h>
int SSL_connect(SSL *ssl) {
    static int (*real)(SSL *);
    if (!real) real = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_connect");
    if (SSL_in_before(ssl)) SSL_set_session(ssl, NULL);
    return real(ssl);
}
EOF2
  cc -shared -fPIC -O2 -o "$WORK/noresume.so" "$WORK/noresume.c" -ldl || die "cannot build the wrk shim (needs cc and libssl-dev)"
}
# tls_method_check: wrk against a throwaway nginx logging $ssl_session_reused: with the shim no
# handshake may be resumed, without it (nearly) all are; else the close/resume loads mean
# something other than they say.
tls_method_check() {
  local port=$((BASE_PORT + 39)) with without
  nginx_conf tls-check "  log_format reuse '\$ssl_protocol \$ssl_cipher \$ssl_session_reused';
  access_log $WORK/tls-check.log reuse;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { return 200 \"ok\\n\"; }
  }"
  start_nginx tls-check
  wait_listen tls-check "$port" || die "tls-check nginx did not start"
  env OPENSSL_CONF="$WORK/client-openssl.cnf" LD_PRELOAD="$WORK/noresume.so" \
    wrk -t1 -c4 -d1s -H 'Connection: close' "https://127.0.0.1:$port/" >/dev/null 2>&1 || true
  sleep 0.3
  with=$(awk '$3 == "r" { r++ } END { printf "%d/%d", r, NR }' "$WORK/tls-check.log")
  : >"$WORK/tls-check.log"
  env OPENSSL_CONF="$WORK/client-openssl.cnf" \
    wrk -t1 -c4 -d1s -H 'Connection: close' "https://127.0.0.1:$port/" >/dev/null 2>&1 || true
  sleep 0.3
  without=$(awk '$3 == "r" { r++ } END { printf "%d/%d", r, NR }' "$WORK/tls-check.log")
  stop tls-check
  echo "# wrk's handshakes resumed (nginx \$ssl_session_reused): with the shim $with, without $without;" \
    "negotiated: $(awk '{ print $1, $2 }' "$WORK/tls-check.log" | sort | uniq -c | sort -rn | head -1 | awk '{ print $2, $3 }')" >&2
  [ "${with%%/*}" = 0 ] && [ "${with#*/}" -gt 0 ] || die "the shim did not stop wrk resuming sessions ($with resumed)"
  [ "${without%%/*}" -gt 0 ] || die "wrk did not resume sessions without the shim ($without): the resume load would be full handshakes"
}
# tls_is NAME PORT: curl verifies the certificate and gets "ok"; s_client with the pinned client
# config shows TLS 1.3 TLS_AES_128_GCM_SHA256; a second connection offering the first one's
# session is resumed (the servers are set up alike: resumption on).
tls_is() {
  local name=$1 port=$2 out=$WORK/check.$1.tls req='GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
  body_is "$name" "https://127.0.0.1:$port/" "$WORK/ok.txt" --cacert "$WORK/cert.pem" || return 1
  printf "$req" | OPENSSL_CONF=$WORK/client-openssl.cnf timeout 5 openssl s_client -connect "127.0.0.1:$port" \
    -servername localhost -ign_eof -sess_out "$WORK/$name.session" >"$out" 2>&1 || true
  grep -q '^New, TLSv1.3, Cipher is TLS_AES_128_GCM_SHA256' "$out" ||
    { echo "s_client: $(grep -E '^(New|Reused)|error|alert' "$out" | head -3 | tr '\n' ' ')"; return 1; }
  printf "$req" | OPENSSL_CONF=$WORK/client-openssl.cnf timeout 5 openssl s_client -connect "127.0.0.1:$port" \
    -servername localhost -ign_eof -sess_in "$WORK/$name.session" >"$out.2" 2>&1 || true
  grep -q '^Reused, TLSv1.3' "$out.2" ||
    { echo "no session resumption: $(grep -E '^(New|Reused)|error' "$out.2" | head -2 | tr '\n' ' ')"; return 1; }
}
part_tls() {
  local pc=$((BASE_PORT + 30)) pn=$((BASE_PORT + 31)) ph=$((BASE_PORT + 32))
  tls_fixtures
  tls_method_check
  CANDS=() LOADS=("c64 64 keep /" "close 64 close / full" "resume 64 close /")
  WRK_ARGS=() WRK_ENV=("OPENSSL_CONF=$WORK/client-openssl.cnf")
  if start_corral corral-tls "$pc" --tls "$CTL" "${CORRAL_BASE[@]}" --listen "127.0.0.1:$pc" --tls --cert "$WORK/cert.pem" --key "$WORK/key.pem"; then
    CANDS+=(corral-tls)
  fi
  nginx_conf nginx-tls "  access_log off;
  $nginx_upstream
  server {
    listen 127.0.0.1:$pn ssl backlog=4096;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ecdh_curve X25519;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    $nginx_proxy_location
  }"
  start_nginx nginx-tls && start_other nginx-tls "$pn" && CANDS+=(nginx-tls)
  haproxy_cfg haproxy-tls "$ph" "ssl crt $WORK/cert+key.pem curves X25519 alpn http/1.1" "  ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256
  ssl-default-bind-options ssl-min-ver TLSv1.2" ""
  start_haproxy haproxy-tls && start_other haproxy-tls "$ph" && CANDS+=(haproxy-tls)
  local c
  for c in "${CANDS[@]}"; do
    SCHEME[$c]=https
    check_response "$c" "HTTPS GET /" tls_is "$c" "${CPORT[$c]}" || drop_cand "$c"
  done
  run_part tls
  report tls "corral-tls/nginx-tls >=0.9" "corral-tls/haproxy-tls >=0.9"
  echo "close: a full TLS 1.3 handshake per request (req/s = handshakes/s); resume: a resumed one per request"
  stop corral-tls nginx-tls haproxy-tls 2>/dev/null || true
}

# lines_written NAME FILE: the access log's lines against the requests wrk completed for NAME
lines_written() {
  local reqs
  local f lines=0
  for f in "$2" "$2".[0-9]*; do # Corral rotates its file at 10 MiB: PATH.1, PATH.2, ...
    [ -f "$f" ] && lines=$((lines + $(wc -l <"$f")))
  done
  reqs=$(awk -F'\t' -v c="$1" '$1 == "log" && $4 == c { s += $8 } END { print s + 0 }' "$RES")
  printf '%s: %s access-log lines for %s requests completed by wrk (+ in flight at each run'"'"'s end)\n' "$1" "$lines" "$reqs"
}
part_log() {
  local pc=$((BASE_PORT + 40)) pcl=$((BASE_PORT + 41)) pn=$((BASE_PORT + 42)) pnl=$((BASE_PORT + 43))
  CANDS=() LOADS=("c256 256 keep /")
  WRK_ARGS=() WRK_ENV=()
  # Both with the admin API (idle until asked), for corral-log's written/dropped line counters.
  if start_corral corral-nolog "$pc" --access-log "$CTL" "${CORRAL_BASE[@]}" --listen "127.0.0.1:$pc" \
    --admin "unix:$WORK/corral-nolog.sock"; then
    CANDS+=(corral-nolog)
  fi
  if start_corral corral-log "$pcl" --access-log "$CTL" "${CORRAL_BASE[@]}" --listen "127.0.0.1:$pcl" \
    --admin "unix:$WORK/corral-log.sock" --access-log "$WORK/corral-access.log"; then
    CANDS+=(corral-log)
  fi
  nginx_conf nginx-nolog "  access_log off;
  $nginx_upstream
  server {
    listen 127.0.0.1:$pn backlog=4096;
    $nginx_proxy_location
  }"
  start_nginx nginx-nolog && start_other nginx-nolog "$pn" && CANDS+=(nginx-nolog)
  # The production config's log format (core/upstreams/NginxRenderer.cpp), unbuffered as rendered.
  nginx_conf nginx-log "  log_format corral '\$remote_addr - \$remote_user [\$time_local] \"\$request\" '
    '\$status \$body_bytes_sent \"\$http_referer\" \"\$http_user_agent\" '
    'upstream=\$upstream_addr upstream_status=\$upstream_status '
    'upstream_time=\$upstream_response_time request_time=\$request_time';
  access_log $WORK/nginx-access.log corral;
  $nginx_upstream
  server {
    listen 127.0.0.1:$pnl backlog=4096;
    $nginx_proxy_location
  }"
  start_nginx nginx-log && start_other nginx-log "$pnl" && CANDS+=(nginx-log)
  local c
  for c in "${CANDS[@]}"; do
    SCHEME[$c]=http
    check_response "$c" "GET /" body_is "$c" "http://127.0.0.1:${CPORT[$c]}/" "$WORK/ok.txt" || drop_cand "$c"
  done
  run_part log
  report log "corral-log/corral-nolog >=0.97" "nginx-log/nginx-nolog -" "corral-log/nginx-log -"
  local metrics=""
  [[ " ${CANDS[*]} " == *" corral-log "* ]] &&
    metrics=$(curl -sS --max-time 5 --unix-socket "$WORK/corral-log.sock" http://localhost/metrics 2>&1 |
      awk '/^corral_proxy_access_log_(lines|dropped_lines)_total/ { printf "%s %s; ", $1, $2 }')
  stop corral-nolog corral-log nginx-nolog nginx-log 2>/dev/null || true
  [ -n "$metrics" ] && echo "corral-log's /metrics before it stopped: $metrics"
  [ -n "${SPID[corral-log]:-}" ] && lines_written corral-log "$WORK/corral-access.log"
  lines_written nginx-log "$WORK/nginx-access.log"
  [ -f "$WORK/corral-access.log" ] && echo "corral-log's first line: $(head -1 "$WORK/corral-access.log")"
  true
}

# ---------------------------------------------------------------- main
ports=("$B1" "$B2")
for i in $(seq 10 45); do ports+=("$((BASE_PORT + i))"); done
for p in "${ports[@]}"; do port_busy "$p" && die "port $p already in use (set BASE_PORT)"; done
echo "# corralctl: $CTL; parts: $PARTS; wrk -t$WRK_THREADS -d${DURATION}s, $ROUNDS rounds; one proxy thread each" >&2
start_backends
for part in $PARTS; do
  echo
  echo "## $part"
  "part_$part"
done
if [ ${#FAILED[@]} -gt 0 ]; then
  echo
  echo "Corral candidates that failed a check (left out of their part):"
  printf '  %s\n' "${FAILED[@]}"
  exit 1
fi
