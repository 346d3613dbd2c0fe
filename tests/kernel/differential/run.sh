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
section() { awk -v name="$1" '/^== / { on = ($2 == name); next } on' "$2"; }
pass=0 fail=0
for name in $(sed -n 's/^== //p' "$work/kernel.txt" | grep -v '^end$'); do
  section "$name" "$work/fuse.txt" >"$work/a"
  section "$name" "$work/kernel.txt" >"$work/b"
  if diff -q <(grep -v '^~' "$work/a") <(grep -v '^~' "$work/b") >/dev/null; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "sysfs-diff: $name: gpio-sim (-) and the kernel (+) differ:"
    diff -U2 <(grep -v '^~' "$work/a") <(grep -v '^~' "$work/b") | tail -n +3
  fi
  # Known differences, for the record.
  paste -d '\n' <(grep '^~' "$work/a") <(grep '^~' "$work/b") | paste - - |
    awk -F'\t' -v name="$name" '$1 != $2 { sub(/^~ /, "", $1); sub(/^~ /, "", $2)
      printf "sysfs-diff: %s: known: gpio-sim %s, kernel %s\n", name, $1, $2 }'
done
[ "$pass" -gt 0 ] || fail=$((fail + 1))   # no scenario at all is a failure too
echo "sysfs-diff: $pass passed, $fail failed"
[ "$fail" = 0 ]
