#!/bin/sh
# check-install.sh RESULT MAKE BUILD: install into a temporary DESTDIR, then
# build consumers outside the tree the way users do — pkg-config (evw,
# evw-static, evw-gpiosim) and CMake find_package — run them, and check that uninstall
# removes exactly what install put down.
result=$1; make=$2; build=$3
pass=0; fail=0
ok()   { pass=$((pass + 1)); echo "PASS: $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL: $1"; [ -f "$tmp/out" ] && cat "$tmp/out"; }
tmp=$(mktemp -d /tmp/evw-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=/opt/evw-check
dest=$tmp/root
root=$(pwd)

if $make --no-print-directory install DESTDIR="$dest" PREFIX=$prefix >"$tmp/out" 2>&1; then ok "make install DESTDIR"; else bad "make install DESTDIR"; fi

pc=$dest$prefix/lib/pkgconfig/evw.pc
if pkg-config --validate "$pc" >"$tmp/out" 2>&1; then ok "pkg-config --validate evw.pc"; else bad "pkg-config --validate evw.pc"; fi

cat > "$tmp/consumer.cpp" <<'CPP'
#include <evw/evw.hpp>
#include <cstdio>
int main() {
  evw::Loop loop;
  int fired = 0;
  evw::Timer t(loop, 0.001, 0.0, [&](evw::Timer&, int revents) { fired += revents == evw::Event::Timer; });
  t.start();
  loop.run();
  std::printf("consumer: timer fired %d time(s), evw %s\n", fired, evw::version);
  return fired == 1 ? 0 : 1;
}
CPP
# pkg-config with the sysroot-style DESTDIR: point it at the staged tree.
export PKG_CONFIG_PATH=$dest$prefix/lib/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$dest
flags=$(pkg-config --cflags --libs evw)
if g++ -std=c++20 "$tmp/consumer.cpp" -o "$tmp/shared" $flags >"$tmp/out" 2>&1 &&
   LD_LIBRARY_PATH=$dest$prefix/lib "$tmp/shared" >"$tmp/out" 2>&1 &&
   readelf -d "$tmp/shared" | grep -q 'NEEDED.*libevw.so.0.2'; then
  ok "consumer linked with pkg-config --libs evw (shared) runs"
else bad "consumer linked with pkg-config --libs evw (shared)"; fi

# The README's example, as a user pastes it: warning-free, and it reads "hi".
awk '/^## Example/ { f = 1 } f && /^```cpp/ { p = 1; next } p && /^```/ { exit } p' \
    "$root/README.md" > "$tmp/readme.cpp"
if [ -s "$tmp/readme.cpp" ] &&
   g++ -std=c++20 -Wall -Wextra -Werror "$tmp/readme.cpp" -o "$tmp/readme" $flags >"$tmp/out" 2>&1 &&
   LD_LIBRARY_PATH=$dest$prefix/lib timeout 10 "$tmp/readme" >"$tmp/out" 2>&1 &&
   grep -qx 'read hi' "$tmp/out"; then
  ok "README example builds with pkg-config and reads hi"
else bad "README example"; fi

# The README's static line: libevw.a linked in, no libevw.so needed (ldd).
sflags=$(pkg-config --cflags --libs evw-static)
if g++ -std=c++20 "$tmp/consumer.cpp" -o "$tmp/static" $sflags >"$tmp/out" 2>&1; then
  if "$tmp/static" >"$tmp/out" 2>&1 && ! ldd "$tmp/static" | grep -q 'libevw'; then
    ok "consumer linked with pkg-config --libs evw-static runs without libevw.so"
  else ldd "$tmp/static" >>"$tmp/out" 2>&1; bad "consumer linked with pkg-config --libs evw-static (run, ldd)"; fi
else bad "consumer linked with pkg-config --libs evw-static (link)"; fi
if pkg-config --validate "$dest$prefix/lib/pkgconfig/evw-static.pc" >"$tmp/out" 2>&1; then ok "pkg-config --validate evw-static.pc"
else bad "pkg-config --validate evw-static.pc"; fi

# The GPIO simulators installed for users' tests (evw-gpiosim): the headers stand alone, a
# GpioLine test on GpioChipSim builds with pkg-config evw-gpiosim alone and passes, and so do
# the examples that run on the simulators (the others with pkg-config evw).
# (The same test is the CMake consumer of evw::gpiosim below.)
if pkg-config --validate "$dest$prefix/lib/pkgconfig/evw-gpiosim.pc" >"$tmp/out" 2>&1; then ok "pkg-config --validate evw-gpiosim.pc"
else bad "pkg-config --validate evw-gpiosim.pc"; fi
gflags=$(pkg-config --cflags --libs evw-gpiosim)
for h in "$dest$prefix"/include/evw/sim/*.hpp; do
  name=evw/sim/$(basename "$h")
  if printf '#include <%s>\n#include <%s>\nint main() {}\n' "$name" "$name" |
     g++ -std=c++20 -Wall -Wextra -Werror -fsyntax-only $gflags -x c++ - >"$tmp/out" 2>&1; then
    ok "installed header $name is self-contained"
  else bad "installed header $name is self-contained"; fi
done
# The README's GpioLine test on GpioChipSim, as a user pastes it.
awk '/^### Unit tests: the in-process simulators/ { f = 1 } f && /^```cpp/ { p = 1; next } p && /^```/ { exit } p' \
    "$root/README.md" > "$tmp/line_test.cpp"
if [ -s "$tmp/line_test.cpp" ] &&
   g++ -std=c++20 -Wall -Wextra -Werror "$tmp/line_test.cpp" -o "$tmp/line_test" $gflags >"$tmp/out" 2>&1 &&
   LD_LIBRARY_PATH=$dest$prefix/lib timeout 10 "$tmp/line_test" >"$tmp/out" 2>&1 &&
   grep -qx '2 edges, last line_seqno 2' "$tmp/out"; then
  ok "README GpioLine test on GpioChipSim builds with pkg-config evw-gpiosim and passes"
else bad "README GpioLine test on GpioChipSim (pkg-config evw-gpiosim)"; fi
# -O0: this checks that they build and link from the installed copy, not how fast they run.
ebad=
for e in "$root"/examples/*.cpp; do
  if grep -q '<evw/sim/' "$e"; then eflags=$gflags; else eflags=$flags; fi
  g++ -std=c++20 -O0 "$e" -o "$tmp/example" $eflags >"$tmp/example.out" 2>&1 ||
    { ebad="$ebad $(basename "$e")"; cat "$tmp/example.out"; }
done
if [ -z "$ebad" ]; then ok "every example builds from the installed copy with pkg-config alone"
else echo "examples that did not build:$ebad" >"$tmp/out"; bad "examples from the installed copy"; fi

if command -v cmake >/dev/null; then
  mkdir -p "$tmp/cm"
  cp "$tmp/consumer.cpp" "$tmp/line_test.cpp" "$tmp/cm/"
  cat > "$tmp/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(consumer CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(evw 0.2 REQUIRED)
add_executable(consumer consumer.cpp)
target_link_libraries(consumer PRIVATE evw::evw)
add_executable(line_test line_test.cpp)
target_link_libraries(line_test PRIVATE evw::gpiosim)
CM
  if cmake -S "$tmp/cm" -B "$tmp/cm/build" -DCMAKE_FIND_ROOT_PATH="$dest" \
        -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_ROOT_PATH_MODE_PACKAGE=ONLY >"$tmp/out" 2>&1 &&
     cmake --build "$tmp/cm/build" >"$tmp/out" 2>&1 &&
     LD_LIBRARY_PATH=$dest$prefix/lib "$tmp/cm/build/consumer" >"$tmp/out" 2>&1 &&
     LD_LIBRARY_PATH=$dest$prefix/lib timeout 10 "$tmp/cm/build/line_test" >"$tmp/out" 2>&1; then
    ok "CMake find_package(evw) consumers (evw::evw, evw::gpiosim) run"
  else bad "CMake find_package(evw) consumer"; fi
else
  echo "SKIPPED: CMake consumer: cmake is not installed"; skipped=1
fi

$make --no-print-directory uninstall DESTDIR="$dest" PREFIX=$prefix >"$tmp/out" 2>&1
left=$(find "$dest" -type f -o -type l)
if [ -z "$left" ]; then ok "make uninstall removes everything install put down"
else echo "$left" > "$tmp/out"; bad "make uninstall left files behind"; fi

echo "install: $pass passed, $fail failed${skipped:+, $skipped skipped}" | tee "$result"
