#!/bin/sh
# summary.sh DIR: add up every result line in DIR and print the closing line
# "N passed, N failed[, N skipped]"; exit 1 if anything failed.
dir=$1
awk '
  { for (i = 1; i <= NF; i++) {
      if ($(i) ~ /^passed,?$/)  p += $(i-1)
      if ($(i) ~ /^failed,?$/)  f += $(i-1)
      if ($(i) ~ /^skipped,?$/) s += $(i-1)
  } }
  END {
    line = p " passed, " f " failed"
    if (s > 0) line = line ", " s " skipped"
    print line
    exit f > 0 ? 1 : 0
  }' $(find "$dir" -maxdepth 1 -type f ! -name '*.log' | sort)
