#!/bin/sh
# run-suite.sh RESULT CMD...: run a suite, show its output, and keep its closing
# "N passed, N failed[, N skipped]" line in RESULT. A suite that dies without
# that line, or exits non-zero after it (a crash, a leak report at exit), is
# recorded with one more failure.
result=$1; shift
log=$result.log
# A hung suite is killed (SUITE_TIMEOUT seconds) and counted as failed, never left
# to hang CI.
{ timeout --signal=KILL "${SUITE_TIMEOUT:-1200}" "$@"; echo $? > "$log.rc"; } 2>&1 | tee "$log"
rc=$(cat "$log.rc"); rm -f "$log.rc"
name=$(basename "$result")
line=$(grep -E '^([A-Za-z0-9_-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
if [ -z "$line" ]; then
  echo "$name: 0 passed, 1 failed (no summary line; exit status $rc)" | tee "$result"
elif [ "$rc" != 0 ] && echo "$line" | grep -q ' 0 failed'; then
  echo "$line" | sed 's/ 0 failed/ 1 failed/' > "$result"
  echo "$name: exit status $rc after a clean summary: counted as 1 failure" | tee -a "$log"
else
  echo "$line" > "$result"
fi
exit 0
