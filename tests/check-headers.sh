#!/bin/sh
# check-headers.sh RESULT CXX INCLUDE HEADER...: every public header compiles
# on its own (as <evw/...>), proving it includes what it uses; then the
# compiler's first words on a too-old -std and on a callback of the wrong type.
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

# What the compiler says to the two commonest mistakes: the first error names
# the problem in evw's words.
first_error() { $cxx "$@" -fsyntax-only -I"$inc" -x c++ - 2>&1 | grep -m1 'error'; }
diag() {  # diag NAME EXPECTED-TEXT FLAGS... < source
  name=$1; want=$2; shift 2
  got=$(first_error "$@")
  case $got in
    *"$want"*) pass=$((pass + 1)) ;;
    *) fail=$((fail + 1)); echo "FAIL: $name: first error is not \"$want\": $got" ;;
  esac
}
diag "below C++20" "evw needs C++20" -std=c++17 <<'SRC'
#include <evw/evw.hpp>
int main() {}
SRC
diag "Io callback of the wrong signature" "the callback must be callable as void(evw::Io&, int revents)" -std=c++20 <<'SRC'
#include <evw/evw.hpp>
int main() { evw::Loop l; evw::Io io(l, 0, evw::Event::Read, [](evw::Timer&, int) {}); }
SRC
diag "Timer callback of the wrong signature" "the callback must be callable as void(evw::Timer&, int revents)" -std=c++20 <<'SRC'
#include <evw/evw.hpp>
int main() { evw::Loop l; evw::Timer t(l, 1, 0, [](evw::Timer&) {}); }
SRC
echo "headers and diagnostics: $pass passed, $fail failed" | tee "$result"
