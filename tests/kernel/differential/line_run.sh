#!/bin/bash
# line_run.sh SCENARIOS: the differential test of evw::sim::GpioChipSim. Runs the character-
# device scenarios (line_scenarios.cpp, built statically) against the simulator on this host
# (--sim) and against the kernel's gpiolib-cdev in the tools/kernel-gpio guest, and compares
# the transcripts scenario by scenario (compare.sh). Closes with
# "line-diff: N passed, N failed[, N skipped]"; when the guest cannot be had, 1 skipped.
set -u
scenarios=$1
top=$(cd "$(dirname "$0")/../../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
skipped() { echo "line-diff: skipped: $*"; echo "line-diff: 0 passed, 0 failed, 1 skipped"; exit 0; }

timeout 300 "$scenarios" --sim >"$work/sim.txt" 2>&1 ||
  { cat "$work/sim.txt"; echo "line-diff: 0 passed, 1 failed (the scenarios failed on GpioChipSim)"; exit 1; }

# The script's lines are numbered for a chip of 32 lines.
KGPIO_LINES=32 KGPIO_QUIET=1 "$top/tools/kernel-gpio/run" "$scenarios" >"$work/guest.txt" 2>&1
status=$?
[ "$status" != 77 ] || skipped "$(grep 'kernel-gpio: skipped' "$work/guest.txt")"
grep -v '^kernel-gpio:' "$work/guest.txt" >"$work/kernel.txt"
if [ "$status" != 0 ]; then
  cat "$work/guest.txt"; echo "line-diff: 0 passed, 1 failed (the scenarios failed in the guest, status $status)"; exit 1
fi
"$top/tests/kernel/differential/compare.sh" line-diff GpioChipSim "$work/sim.txt" "$work/kernel.txt"
