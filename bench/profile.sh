#!/usr/bin/env bash
# bench/profile.sh BUILD PROGRAM [ARGS...]: where one benchmark's instructions go.
#
#   bench/profile.sh build oob_evw
#   bench/profile.sh build pipe_evw -t
#
# Runs the program under callgrind with the call stack tracked from the start and cost
# collected only inside bench_measured() (the measured loop), then prints the inclusive and
# exclusive per-function counts divided by the events handled. The profile stays in
# BUILD/bench/out/PROGRAM.profile for callgrind_annotate or kcachegrind.
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 BUILD PROGRAM [ARGS...]" >&2
    exit 2
fi
BUILD=$1 PROG=$2
shift 2
BIN=$BUILD/bench
OUT=$BIN/out
mkdir -p "$OUT"
tag=$PROG
if [ $# -gt 0 ]; then tag=$tag$(echo "_$*" | tr -cd '[:alnum:]_'); fi
cg=$OUT/$tag.profile

line=$(valgrind -q --tool=callgrind --collect-atstart=no --toggle-collect='*bench_measured*' \
       --callgrind-out-file="$cg" "$BIN/$PROG" "$@")
echo "$line"
events=$(echo "$line" | tr ' ' '\n' | awk -F= '$1 == "events" { print $2 }')

per_event() { # scale callgrind_annotate's counts to instructions per event
    awk -v e="$events" '
        /^ *[0-9,]+ / {
            n = $1; gsub(",", "", n)
            sub(/^ *[0-9,]+ +(\([^)]*\) +)?/, "")
            if (n / e >= 0.5) printf "%9.1f  %s\n", n / e, $0
            next
        }'
}

echo
echo "== inclusive instructions per event (functions >= 0.5) =="
callgrind_annotate --auto=no --inclusive=yes --threshold=100 "$cg" 2>/dev/null | per_event | head -40
echo
echo "== exclusive instructions per event =="
callgrind_annotate --auto=no --threshold=100 "$cg" 2>/dev/null | per_event | head -30
