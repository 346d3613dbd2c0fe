#!/bin/sh
# run.sh SUITE [ARGS...]: run the static kernel suite in the guest (tools/kernel-gpio/run)
# and close with one line "kernel: N passed, N failed[, N skipped]".
# The suite's runner (tests/main.cpp) closes with "evw-tests: ..."; that line is renamed.
# When the guest cannot be had (no QEMU, no packages: the runner exits 77 and says why),
# the whole suite counts as 1 skipped, never as a silent pass.
top=$(cd "$(dirname "$0")/../.." && pwd)
status_file=$(mktemp)
{ "$top/tools/kernel-gpio/run" "$@" 2>&1; echo $? >"$status_file"; } |
  sed -u 's/^evw-tests: \([0-9]* passed\)/kernel: \1/'
status=$(cat "$status_file"); rm -f "$status_file"
if [ "$status" = 77 ]; then
  echo "kernel: 0 passed, 0 failed, 1 skipped"
  exit 0
fi
exit "$status"
