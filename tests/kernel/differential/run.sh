#!/bin/bash
# run.sh SCENARIOS GPIO_SIM [LINES]: the differential test of evw's FUSE simulator.
# Runs the sysfs scenarios (sysfs_scenarios.cpp, built statically) against a gpio-sim
# mount on this host and against the real kernel in the tools/kernel-gpio guest, and
# compares the two transcripts scenario by scenario. Lines marked "~" are known
# differences (tools/gpio-sim/README.md): shown, not failed. Closes with
# "sysfs-diff: N passed, N failed[, N skipped]", one count per scenario; when either side
# cannot run (no FUSE here, no guest) the whole comparison counts as 1 skipped.
set -u
scenarios=$1 gpio_sim=$2 lines=${3:-32}
top=$(cd "$(dirname "$0")/../../.." && pwd)
work=$(mktemp -d)
mount=$work/mnt
cleanup() {
  if mountpoint -q "$mount" 2>/dev/null; then fusermount3 -u "$mount" 2>/dev/null || umount -l "$mount"; fi
  rm -rf "$work"
}
trap cleanup EXIT
skipped() { echo "sysfs-diff: skipped: $*"; echo "sysfs-diff: 0 passed, 0 failed, 1 skipped"; exit 0; }

# ---- the simulator on this host --------------------------------------------------------
[ -e /dev/fuse ] || skipped "no /dev/fuse"
mkdir -p "$mount"
"$gpio_sim" "$mount" --lines "$lines" >"$work/gpio-sim.log" 2>&1 &
for _ in $(seq 50); do mountpoint -q "$mount" && break; sleep 0.1; done
mountpoint -q "$mount" || skipped "gpio-sim did not mount: $(head -c 200 "$work/gpio-sim.log")"
timeout 300 "$scenarios" --root "$mount" --base 0 --lines "$lines" >"$work/fuse.txt" 2>&1 ||
  { cat "$work/fuse.txt"; echo "sysfs-diff: 0 passed, 1 failed (the scenarios failed on gpio-sim)"; exit 1; }
fusermount3 -u "$mount"

# ---- the kernel in the guest -------------------------------------------------------------
KGPIO_LINES=$lines KGPIO_QUIET=1 "$top/tools/kernel-gpio/run" "$scenarios" >"$work/guest.txt" 2>&1
status=$?
[ "$status" != 77 ] || skipped "$(grep 'kernel-gpio: skipped' "$work/guest.txt")"
grep -v '^kernel-gpio:' "$work/guest.txt" >"$work/kernel.txt"
if [ "$status" != 0 ]; then
  cat "$work/guest.txt"; echo "sysfs-diff: 0 passed, 1 failed (the scenarios failed in the guest, status $status)"; exit 1
fi

# ---- compare -----------------------------------------------------------------------------------
"$top/tests/kernel/differential/compare.sh" sysfs-diff gpio-sim "$work/fuse.txt" "$work/kernel.txt"
