#!/bin/sh
# check-install.sh RESULT MAKE BUILD: install into a temporary DESTDIR, then
# build consumers outside the tree the way users do — pkg-config (evw and
# evw-static) and CMake find_package — run them, and check that uninstall
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

if command -v cmake >/dev/null; then
  mkdir -p "$tmp/cm"
  cp "$tmp/consumer.cpp" "$tmp/cm/"
  cat > "$tmp/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(consumer CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(evw 0.2 REQUIRED)
add_executable(consumer consumer.cpp)
target_link_libraries(consumer PRIVATE evw::evw)
CM
  if cmake -S "$tmp/cm" -B "$tmp/cm/build" -DCMAKE_FIND_ROOT_PATH="$dest" \
        -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_ROOT_PATH_MODE_PACKAGE=ONLY >"$tmp/out" 2>&1 &&
     cmake --build "$tmp/cm/build" >"$tmp/out" 2>&1 &&
     LD_LIBRARY_PATH=$dest$prefix/lib "$tmp/cm/build/consumer" >"$tmp/out" 2>&1; then
    ok "CMake find_package(evw) consumer runs"
  else bad "CMake find_package(evw) consumer"; fi
else
  echo "SKIPPED: CMake consumer: cmake is not installed"; skipped=1
fi

$make --no-print-directory uninstall DESTDIR="$dest" PREFIX=$prefix >"$tmp/out" 2>&1
left=$(find "$dest" -type f -o -type l)
if [ -z "$left" ]; then ok "make uninstall removes everything install put down"
else echo "$left" > "$tmp/out"; bad "make uninstall left files behind"; fi

echo "install: $pass passed, $fail failed${skipped:+, $skipped skipped}" | tee "$result"
