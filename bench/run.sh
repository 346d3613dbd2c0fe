#!/usr/bin/env bash
# bench/run.sh [BUILD]: run every benchmark and print the Markdown tables of bench/README.md.
#
# Each program runs twice:
#   - under callgrind with --instr-atstart=no; the program switches instrumentation on around its
#     measured loop only (CALLGRIND_START/STOP_INSTRUMENTATION in bench/common.h), so the total
#     Ir of the profile is the user-space instructions of exactly that loop (kernel time is not
#     counted, syscalls cost the few instructions of their libc wrapper). Divided by the events
#     the program reports, that is the figure the tables compare; it repeats to a few
#     instructions on any machine load.
#   - natively, BENCH_WALL_RUNS times (default 3), for the noisy wall-clock column (best run),
#     peak RSS and the number of open fds.
# A program that fails or handles a number of events other than its budget makes the script
# exit non-zero. The targets are reported as PASS/FAIL and never fail the script.
#
# Environment: PIPE_N PIPE_A PIPE_EVENTS OOB_N OOB_A OOB_EVENTS POST_PRODUCERS POST_EVENTS
# POST_WALL_RUNS BENCH_WALL_RUNS, VALGRIND.
set -u

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
BIN=$BUILD/bench
OUT=$BIN/out
RESULTS=$BIN/results.md

PIPE_N=${PIPE_N:-1000}
PIPE_A=${PIPE_A:-100}
PIPE_EVENTS=${PIPE_EVENTS:-100000}
OOB_N=${OOB_N:-200}
OOB_A=${OOB_A:-10}
OOB_EVENTS=${OOB_EVENTS:-20000}
POST_PRODUCERS=${POST_PRODUCERS:-4}
POST_EVENTS=${POST_EVENTS:-1000000}
POST_WALL_RUNS=${POST_WALL_RUNS:-5}
BENCH_WALL_RUNS=${BENCH_WALL_RUNS:-3}
VALGRIND=${VALGRIND:-valgrind}

# Targets the project must meet (ratios of instructions per event).
TARGET_IO_VS_LIBEV=1.07
TARGET_CORO_VS_IO=1.25
TARGET_PRI_VS_NESTED_CB=1.25
TARGET_PRI_VS_LIBUV=0.75
TARGET_POST_VS_ASIO=1.00

# Build what is missing when run by hand; under make, `bench` already depends on `bench-build`.
if [ -z "${MAKELEVEL:-}" ]; then
    if [ -f "$ROOT/Makefile" ]; then
        make -s -C "$ROOT" BUILD="$BUILD" bench-build || exit 1
    else
        make -s -C "$ROOT" -f bench/bench.mk BUILD="$BUILD" bench-build || exit 1
    fi
fi

if ! command -v "$VALGRIND" >/dev/null 2>&1; then
    echo "run.sh: valgrind not found (set VALGRIND=...)" >&2
    exit 1
fi

mkdir -p "$OUT"
failed=0

# field KEY LINE: the value of key=value in a report line.
field() {
    local key=$1 line=$2 kv
    for kv in $line; do
        case $kv in "$key="*) echo "${kv#*=}"; return ;; esac
    done
}

# measure TAG PROG EVENTS ARGS...: sets IR (per event), WALL (ns per event), RSS, FDS, STATUS.
measure() {
    local tag=$1 prog=$2 budget=$3
    shift 3
    IR="" WALL="" RSS="" FDS="" STATUS=ok
    if [ ! -x "$BIN/$prog" ]; then
        STATUS="not built"
        return
    fi
    echo "bench: $tag" >&2
    local log=$OUT/$tag.log cg=$OUT/$tag.callgrind line events spurious total
    if ! line=$("$VALGRIND" -q --tool=callgrind --instr-atstart=no \
                --callgrind-out-file="$cg" "$BIN/$prog" "$@" 2>"$log"); then
        STATUS="failed under callgrind, see $log"
        failed=1
        return
    fi
    events=$(field events "$line")
    spurious=$(field spurious "$line")
    if [ "$events" != "$budget" ]; then
        STATUS="handled $events of $budget events"
        failed=1
        return
    fi
    total=$(awk '/^totals:/ { print $2 }' "$cg")
    if [ -z "$total" ]; then
        STATUS="no totals in $cg"
        failed=1
        return
    fi
    IR=$(awk -v t="$total" -v e="$events" 'BEGIN { printf "%.1f", t / e }')
    [ "$spurious" = 0 ] || STATUS="$spurious spurious wake-ups"

    local best="" run wall
    for run in $(seq "$BENCH_WALL_RUNS"); do
        if ! line=$("$BIN/$prog" "$@" 2>>"$log"); then
            STATUS="failed natively, see $log"
            failed=1
            return
        fi
        wall=$(field wall_ns "$line")
        if [ -z "$best" ] || [ "$wall" -lt "$best" ]; then best=$wall; fi
        RSS=$(field maxrss_kb "$line")
        FDS=$(field fds "$line")
    done
    WALL=$(awk -v w="$best" -v e="$budget" 'BEGIN { printf "%.0f", w / e }')
}

ratio() { # ratio A B -> "1.03×", or "–" when either is missing
    if [ -n "$1" ] && [ -n "$2" ]; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'
    else
        echo "–"
    fi
}

check() { # check A B LIMIT -> PASS/FAIL for A/B <= LIMIT
    if [ -n "$1" ] && [ -n "$2" ]; then
        awk -v a="$1" -v b="$2" -v l="$3" \
            'BEGIN { r = a / b; printf "%s (≤ %.2f×)", (r <= l + 1e-9) ? "PASS" : "FAIL", l }'
    else
        echo "–"
    fi
}

# A table: rows are "label|prog|extra args"; REF and UV name the labels the ratios divide by.
# TARGETS (a function name) prints the target cell for a row label.
table() {
    local title=$1 ref=$2 reflabel=$3 budget=$4 targets=$5 args=$6
    shift 6
    local -A ir=() wall=() rss=() fds=() status=()
    local row label prog extra
    for row in "$@"; do
        IFS='|' read -r label prog extra <<<"$row"
        # shellcheck disable=SC2086
        measure "$prog${extra:+_timer}" "$prog" "$budget" $args $extra
        ir[$label]=$IR wall[$label]=$WALL rss[$label]=$RSS fds[$label]=$FDS status[$label]=$STATUS
    done
    echo
    echo "### $title"
    echo
    echo "| implementation | instructions/event | vs $reflabel | vs libuv | target | wall ns/event (noisy) | peak RSS (KiB) | fds |"
    echo "|---|---:|---:|---:|---|---:|---:|---:|"
    for row in "$@"; do
        IFS='|' read -r label prog extra <<<"$row"
        if [ -z "${ir[$label]}" ]; then
            echo "| $label | ${status[$label]} | | | | | | |"
            continue
        fi
        local note=""
        [ "${status[$label]}" = ok ] || note=" (${status[$label]})"
        echo "| $label$note | ${ir[$label]} | $(ratio "${ir[$label]}" "${ir[$ref]:-}") |" \
             "$(ratio "${ir[$label]}" "${ir[libuv]:-}") | $($targets "$label" "${ir[$label]}" "${ir[$ref]:-}" "${ir[libuv]:-}") |" \
             "${wall[$label]} | ${rss[$label]} | ${fds[$label]} |"
    done
}

targets_pipe() { # label ir ref uv (ir[] of table() is visible here: the coroutines compare with evw)
    case $1 in
    evw*) check "$2" "$3" "$TARGET_IO_VS_LIBEV" ;;
    "coroutines, shared") echo "$(check "$2" "${ir[evw, shared]:-}" "$TARGET_CORO_VS_IO") vs evw, shared" ;;
    "coroutines, static") echo "$(check "$2" "${ir[evw, static]:-}" "$TARGET_CORO_VS_IO") vs evw, static" ;;
    *) echo "" ;;
    esac
}
targets_timer() {
    case $1 in
    evw*) check "$2" "$3" "$TARGET_IO_VS_LIBEV" ;;
    *) echo "" ;;
    esac
}
targets_oob() {
    case $1 in
    evw*) echo "$(check "$2" "${ir[nested epoll, handler pointer per fd]:-}" "$TARGET_PRI_VS_NESTED_CB") vs handler per fd; $(check "$2" "$4" "$TARGET_PRI_VS_LIBUV") vs libuv" ;;
    *) echo "" ;;
    esac
}

# Cross-thread posts: instructions per post (every thread) and posts per second (best native
# run), both against asio.
post_table() {
    local row label prog
    local -A ir=() wall=() rss=() fds=() status=()
    local BENCH_WALL_RUNS=$POST_WALL_RUNS  # seen by measure(): throughput is the noisiest column
    for row in "$@"; do
        IFS='|' read -r label prog <<<"$row"
        measure "$prog" "$prog" "$POST_EVENTS" -p "$POST_PRODUCERS" -e "$POST_EVENTS"
        ir[$label]=$IR wall[$label]=$WALL rss[$label]=$RSS fds[$label]=$FDS status[$label]=$STATUS
    done
    echo
    echo "### Cross-thread posts ($POST_PRODUCERS producer threads, $POST_EVENTS posts to one loop)"
    echo
    echo "| implementation | instructions/post | vs asio | posts/s (best of $BENCH_WALL_RUNS, noisy) | vs asio | target | peak RSS (KiB) | fds |"
    echo "|---|---:|---:|---:|---:|---|---:|---:|"
    local asio_rate="" rate target
    [ -n "${wall[asio]:-}" ] && asio_rate=$(awk -v w="${wall[asio]}" 'BEGIN { printf "%.0f", 1e9 / w }')
    for row in "$@"; do
        IFS='|' read -r label prog <<<"$row"
        if [ -z "${ir[$label]}" ]; then
            echo "| $label | ${status[$label]} | | | | | | |"
            continue
        fi
        rate=$(awk -v w="${wall[$label]}" 'BEGIN { printf "%.0f", 1e9 / w }')
        target=""
        if [ "${label#evw}" != "$label" ]; then
            target="$(check "${ir[$label]}" "${ir[asio]:-}" "$TARGET_POST_VS_ASIO") instr vs asio; "
            target+=$(awk -v a="$rate" -v b="${asio_rate:-0}" \
                'BEGIN { printf "%s (≥ 1.00×) posts/s vs asio", (b > 0 && a >= b) ? "PASS" : "FAIL" }')
        fi
        local note=""
        [ "${status[$label]}" = ok ] || note=" (${status[$label]})"
        echo "| $label$note | ${ir[$label]} | $(ratio "${ir[$label]}" "${ir[asio]:-}") | $rate |" \
             "$(ratio "$rate" "$asio_rate") | $target | ${rss[$label]} | ${fds[$label]} |"
    done
}

# Watchers at scale: instructions per watcher made, started, stopped and destroyed.
scale_table() {
    local what=$1 n=$2 row label prog
    local -A ir=()
    for row in "raw libev|scale_libev" "evw, shared|scale_evw_shared" "evw, static|scale_evw"; do
        IFS='|' read -r label prog <<<"$row"
        measure "${prog}_$what" "$prog" "$(scale_count "$prog" "$what" "$n")" "$what" "$n"
        ir[$label]=$IR
        echo "| $what | $label | ${IR:-$STATUS} | $(ratio "$IR" "${ir[raw libev]:-}") |" \
             "$([ "$what" = timers ] && [ "${label#evw}" != "$label" ] && check "$IR" "${ir[raw libev]:-}" 2)" \
             "| ${WALL:-} | ${RSS:-} |"
    done
}
# The watchers a scale run makes: N, or fewer where RLIMIT_NOFILE caps the socketpairs.
scale_count() { "$BIN/$1" "$2" "$3" 2>/dev/null | sed -n 's/.*events=\([0-9]*\).*/\1/p'; }

machine() {
    local cpu
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); ${cpu:-unknown CPU}, $(nproc) CPUs; Linux $(uname -r);" \
         "$(${CC:-cc} --version 2>/dev/null | head -n1); $("$VALGRIND" --version);" \
         "libev $(pkg_version libev-dev), libuv $(pkg_version libuv1-dev), libevent $(pkg_version libevent-dev)," \
         "asio $(pkg_version libasio-dev)"
}
pkg_version() {
    dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"
}

{
    echo "## evw benchmarks"
    echo
    echo "$(machine)"
    echo
    echo "User-space instructions per event (callgrind Ir of the measured loop / events), lower is better."

    table "Workload 1: pipe chain (N=$PIPE_N socketpairs, A=$PIPE_A active, $PIPE_EVENTS events)" \
        "raw libev" "raw libev" "$PIPE_EVENTS" targets_pipe "-n $PIPE_N -a $PIPE_A -e $PIPE_EVENTS" \
        "raw epoll (floor)|pipe_epoll|" \
        "raw libev|pipe_libev|" \
        "ev++.h|pipe_evpp|" \
        "libuv|pipe_libuv|" \
        "libevent|pipe_libevent|" \
        "evw, shared|pipe_evw_shared|" \
        "evw, static|pipe_evw|" \
        "Poll (level), shared|pipe_poll_shared|" \
        "Poll (edge), shared|pipe_poll_shared| -E" \
        "coroutines, shared|pipe_coro_shared|" \
        "coroutines, static|pipe_coro|"

    table "Workload 1 +timer: pipe chain, a per-pair timeout re-armed on every event" \
        "raw libev" "raw libev" "$PIPE_EVENTS" targets_timer "-n $PIPE_N -a $PIPE_A -e $PIPE_EVENTS" \
        "raw libev|pipe_libev| -t" \
        "ev++.h|pipe_evpp| -t" \
        "libuv|pipe_libuv| -t" \
        "libevent|pipe_libevent| -t" \
        "evw, shared|pipe_evw_shared| -t" \
        "evw, static|pipe_evw| -t"

    table "Workload 2: urgent-data chain (N=$OOB_N loopback TCP connections, A=$OOB_A active, $OOB_EVENTS events)" \
        "nested epoll on libev" "nested epoll" "$OOB_EVENTS" targets_oob "-n $OOB_N -a $OOB_A -e $OOB_EVENTS" \
        "raw epoll EPOLLPRI (floor)|oob_epoll|" \
        "nested epoll on libev|oob_libev_nested|" \
        "nested epoll, handler pointer per fd|oob_libev_nested_cb|" \
        "libuv|oob_libuv|" \
        "evw, shared|oob_evw_shared|" \
        "evw, static|oob_evw|"

    post_table \
        "asio|post_asio" \
        "libuv|post_libuv" \
        "evw, shared|post_evw_shared" \
        "evw, static|post_evw"

    echo
    echo "### Watchers at scale (each in an allocation of its own: malloc for libev, std::unique_ptr for evw)"
    echo
    echo "| workload | implementation | instructions/watcher | vs raw libev | target | wall ns/watcher (noisy) | peak RSS (KiB) |"
    echo "|---|---|---:|---:|---|---:|---:|"
    scale_table timers "${SCALE_TIMERS:-1000000}"
    scale_table io "${SCALE_IO:-100000}"

    echo
    echo "evw rows: \"shared\" links libevw.so as \`make install\` builds it and \`pkg-config --libs evw\`" \
         "links it (what users get); \"static\" links libevw.a. Both: -O2, the same objects."
    echo
    echo "Targets: evw Io ≤ $TARGET_IO_VS_LIBEV× raw libev (workload 1, with and without the timer);" \
         "evw coroutines ≤ $TARGET_CORO_VS_IO× evw Io (workload 1);" \
         "evw Priority ≤ $TARGET_PRI_VS_NESTED_CB× nested epoll with a handler pointer per fd and ≤ $TARGET_PRI_VS_LIBUV× libuv (workload 2);" \
         "evw post ≤ asio's instructions per post and ≥ its posts per second."
    echo "Wall clock: best of $BENCH_WALL_RUNS native runs of the measured loop, kernel time included; noisy."
} >"$RESULTS"

cat "$RESULTS"
echo
echo "(written to $RESULTS; callgrind profiles and logs in $OUT)"
exit $failed
