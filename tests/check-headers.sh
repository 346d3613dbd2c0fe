#!/bin/sh
# check-headers.sh RESULT CXX INCLUDE HEADER...: every public header compiles
# on its own (as <evw/...>), proving it includes what it uses.
result=$1; cxx=$2; inc=$3; shift 3
pass=0; fail=0
for h in "$@"; do
  if printf '#include <evw/%s>\n#include <evw/%s>\nint main() {}\n' "$h" "$h" |
     $cxx -std=c++20 -Wall -Wextra -Werror -fsyntax-only -I"$inc" -x c++ - 2>"$result.err"; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1)); echo "FAIL: header evw/$h is not self-contained:"; cat "$result.err"
  fi
done
rm -f "$result.err"
echo "headers: $pass passed, $fail failed" | tee "$result"
