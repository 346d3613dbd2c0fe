#!/bin/bash
# compare.sh LABEL SIMULATOR SIM_TRANSCRIPT KERNEL_TRANSCRIPT: compares two transcripts of one
# scenario script ("== name" sections), scenario by scenario; the kernel's decides which
# scenarios there are. Lines that start with "~" are known differences (documented next to
# the simulator): shown, not failed. Closes with "LABEL: N passed, N failed".
set -u
label=$1 simulator=$2 sim=$3 kernel=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
section() { awk -v name="$1" '/^== / { on = ($2 == name); next } on' "$2"; }
pass=0 fail=0
for name in $(sed -n 's/^== //p' "$kernel" | grep -v '^end$'); do
  section "$name" "$sim" >"$work/a"
  section "$name" "$kernel" >"$work/b"
  if diff -q <(grep -v '^~' "$work/a") <(grep -v '^~' "$work/b") >/dev/null; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "$label: $name: $simulator (-) and the kernel (+) differ:"
    diff -U2 <(grep -v '^~' "$work/a") <(grep -v '^~' "$work/b") | tail -n +3
  fi
  # Known differences, for the record.
  paste -d '\n' <(grep '^~' "$work/a") <(grep '^~' "$work/b") | paste - - |
    awk -F'\t' -v name="$name" -v label="$label" -v sim="$simulator" '$1 != $2 { sub(/^~ /, "", $1); sub(/^~ /, "", $2)
      printf "%s: %s: known: %s %s, kernel %s\n", label, name, sim, $1, $2 }'
done
[ "$pass" -gt 0 ] || fail=$((fail + 1))   # no scenario at all is a failure too
echo "$label: $pass passed, $fail failed"
[ "$fail" = 0 ]
