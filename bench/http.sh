#!/usr/bin/env bash
# bench/http.sh [BUILD]: the HTTP/1.1 keep-alive servers (bench/http_*) under wrk, one after the
# other in one run, and the Markdown table of bench/README.md.
#
# Each server runs twice over:
#   - natively, driven by `wrk -t1 -c$HTTP_CONNECTIONS -d${HTTP_SECONDS}s`: requests per second
#     (noisy: wrk shares the machine's CPUs with the server and everything else);
#   - under callgrind, twice, exiting after HTTP_SHORT and after HTTP_LONG requests (-n) while
#     wrk drives it. The difference of the two totals divided by the difference of the requests
#     is the server's user-space instructions per request: start-up, accepting the connections
#     and exit are in both runs and cancel. Kernel time is not counted.
# A server that fails, or exits having answered fewer requests than asked, makes the script exit
# non-zero. The target (evw within 3% of raw libev, ahead of libuv and asio) is reported, never
# enforced.
#
# Environment: HTTP_SECONDS (3), HTTP_CONNECTIONS (100), HTTP_SHORT (20000), HTTP_LONG (60000),
# WRK, VALGRIND.
set -u

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
BIN=$BUILD/bench
OUT=$BIN/out
RESULTS=$BIN/http-results.md

HTTP_SECONDS=${HTTP_SECONDS:-3}
HTTP_CONNECTIONS=${HTTP_CONNECTIONS:-100}
HTTP_SHORT=${HTTP_SHORT:-20000}
HTTP_LONG=${HTTP_LONG:-60000}
WRK=${WRK:-wrk}
VALGRIND=${VALGRIND:-valgrind}
TARGET_VS_LIBEV=1.03

if [ -z "${MAKELEVEL:-}" ]; then
    make -s -C "$ROOT" BUILD="$BUILD" bench-http-build || exit 1
fi
for tool in "$WRK" "$VALGRIND"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "http.sh: $tool not found (make deps BENCH=1)" >&2
        exit 1
    fi
done
mkdir -p "$OUT"
failed=0

# start LOG CMD...: starts a server in the background; sets PID and PORT (empty if it failed).
start() {
    local log=$1 i
    shift
    "$@" >"$log" 2>&1 &
    PID=$! PORT=""
    for i in $(seq 600); do  # up to 60 s: valgrind starts slowly on a loaded machine
        PORT=$(sed -n 's/^port=//p' "$log")
        [ -n "$PORT" ] && return
        kill -0 "$PID" 2>/dev/null || return
        sleep 0.1
    done
}

# rate PROG: requests per second natively; sets RATE.
rate() {
    local prog=$1 log=$OUT/http-$1.log
    RATE=""
    start "$log" "$BIN/$prog"
    if [ -z "$PORT" ]; then
        echo "http.sh: $prog did not start, see $log" >&2
        failed=1
        return
    fi
    RATE=$("$WRK" -t1 -c"$HTTP_CONNECTIONS" -d"${HTTP_SECONDS}s" "http://127.0.0.1:$PORT/" |
           awk '/^Requests\/sec:/ { printf "%.0f", $2 }')
    kill "$PID"
    wait "$PID" 2>/dev/null
}

# instructions PROG N: one callgrind run answering N requests under wrk; sets TOTAL, SERVED.
instructions() {
    local prog=$1 n=$2 log=$OUT/http-$1-$2.log cg=$OUT/http-$1-$2.callgrind wrk_pid
    TOTAL="" SERVED=""
    start "$log" "$VALGRIND" -q --tool=callgrind --callgrind-out-file="$cg" "$BIN/$prog" -n "$n"
    if [ -z "$PORT" ]; then
        echo "http.sh: $prog did not start under callgrind, see $log" >&2
        failed=1
        return
    fi
    "$WRK" -t1 -c"$HTTP_CONNECTIONS" -d600s "http://127.0.0.1:$PORT/" >/dev/null 2>&1 &
    wrk_pid=$!
    wait "$PID"
    kill "$wrk_pid" 2>/dev/null
    wait "$wrk_pid" 2>/dev/null
    SERVED=$(sed -n 's/^requests=//p' "$log")
    TOTAL=$(awk '/^totals:/ { print $2 }' "$cg" 2>/dev/null)
    if [ -z "$TOTAL" ] || [ "${SERVED:-0}" -lt "$n" ]; then
        echo "http.sh: $prog under callgrind answered ${SERVED:-no} of $n requests, see $log" >&2
        failed=1
        TOTAL=""
    fi
}

declare -A ir=() rps=()
rows=("raw libev|http_libev" "libuv|http_libuv" "asio|http_asio" "evw (libevw.so)|http_evw")
for row in "${rows[@]}"; do
    IFS='|' read -r label prog <<<"$row"
    echo "http: $label" >&2
    rate "$prog"
    rps[$label]=$RATE
    instructions "$prog" "$HTTP_SHORT"
    short_total=$TOTAL short_served=$SERVED
    instructions "$prog" "$HTTP_LONG"
    if [ -n "$short_total" ] && [ -n "$TOTAL" ]; then
        ir[$label]=$(awk -v a="$short_total" -v b="$TOTAL" -v m="$short_served" -v n="$SERVED" \
                     'BEGIN { printf "%.1f", (b - a) / (n - m) }')
    fi
done

ratio() { # ratio A B -> "1.03×", or "–" when either is missing
    if [ -n "$1" ] && [ -n "$2" ]; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'
    else
        echo "–"
    fi
}

{
    echo "### HTTP/1.1 keep-alive \"Hello, World!\" (wrk -t1 -c$HTTP_CONNECTIONS)"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs; $("$VALGRIND" --version); $("$WRK" -v 2>&1 | head -n1 | cut -d' ' -f1-2)"
    echo
    echo "| server | instructions/request | vs raw libev | requests/s (${HTTP_SECONDS} s, noisy) | target |"
    echo "|---|---:|---:|---:|---|"
    for row in "${rows[@]}"; do
        IFS='|' read -r label prog <<<"$row"
        target=""
        if [ "$prog" = http_evw ] && [ -n "${ir[$label]:-}" ]; then
            lib=${ir["raw libev"]:-} uv=${ir[libuv]:-} asio=${ir[asio]:-}
            target=$(awk -v e="${ir[$label]}" -v l="${lib:-0}" -v u="${uv:-0}" -v a="${asio:-0}" -v t="$TARGET_VS_LIBEV" 'BEGIN {
                printf "%s (≤ %.2f× raw libev); %s (< libuv, asio)", (l > 0 && e <= l * t + 1e-9) ? "PASS" : "FAIL", t,
                       (u > 0 && a > 0 && e < u && e < a) ? "PASS" : "FAIL" }')
        fi
        echo "| $label | ${ir[$label]:-failed} | $(ratio "${ir[$label]:-}" "${ir["raw libev"]:-}") | ${rps[$label]:-failed} | $target |"
    done
    echo
    echo "Instructions: callgrind, (Ir of a run of $HTTP_LONG requests − Ir of a run of $HTTP_SHORT) / the difference in requests."
} >"$RESULTS"

cat "$RESULTS"
echo
echo "(written to $RESULTS; callgrind profiles and logs in $OUT)"
exit $failed
