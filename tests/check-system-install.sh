#!/bin/sh
# check-system-install.sh: the README's own path on the live system, for CI's
# throwaway machine (it installs into /usr/local and runs ldconfig; not part
# of `make check`): `make install`, then the README example built with
# nothing but pkg-config runs without LD_LIBRARY_PATH, shared and static, and so
# does its GpioLine test on the installed simulator (pkg-config evw-gpiosim);
# `make uninstall` leaves /usr/local as it was and the linker cache clean.
set -u
[ "$(id -u)" = 0 ] || { echo "system-install: 0 passed, 0 failed, 1 skipped (needs root)"; exit 0; }
pass=0; fail=0
ok()  { pass=$((pass + 1)); echo "PASS: $1"; }
bad() { fail=$((fail + 1)); echo "FAIL: $1"; [ -f "$tmp/out" ] && cat "$tmp/out"; }
tmp=$(mktemp -d /tmp/evw-sysinstall.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
make=${MAKE:-make}

find /usr/local | sort > "$tmp/before"
if $make --no-print-directory install >"$tmp/out" 2>&1; then ok "make install (PREFIX=/usr/local)"; else bad "make install"; fi

awk '/^## Example/ { f = 1 } f && /^```cpp/ { p = 1; next } p && /^```/ { exit } p' README.md > "$tmp/app.cpp"
# Exactly the README's lines, in a clean environment.
if env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin sh -c \
     "g++ -std=c++20 '$tmp/app.cpp' -o '$tmp/app' \$(pkg-config --cflags --libs evw)" >"$tmp/out" 2>&1 &&
   env -i "$tmp/app" >"$tmp/out" 2>&1 && grep -qx 'read hi' "$tmp/out"; then
  ok "README example: pkg-config --cflags --libs evw, runs without LD_LIBRARY_PATH"
else bad "README example with the installed shared library"; fi
if env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin sh -c \
     "g++ -std=c++20 '$tmp/app.cpp' -o '$tmp/app-static' \$(pkg-config --cflags --libs evw-static)" >"$tmp/out" 2>&1 &&
   env -i "$tmp/app-static" >"$tmp/out" 2>&1 && grep -qx 'read hi' "$tmp/out" &&
   ! ldd "$tmp/app-static" | grep -q libevw; then
  ok "README example: pkg-config --cflags --libs evw-static, no libevw.so in ldd"
else bad "README example linked statically"; fi

# The README's GpioLine test on the installed simulator: pkg-config evw-gpiosim alone.
awk '/^### Unit tests: the in-process simulators/ { f = 1 } f && /^```cpp/ { p = 1; next } p && /^```/ { exit } p' \
    README.md > "$tmp/line_test.cpp"
if [ -s "$tmp/line_test.cpp" ] && env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin sh -c \
     "g++ -std=c++20 '$tmp/line_test.cpp' -o '$tmp/line_test' \$(pkg-config --cflags --libs evw-gpiosim)" >"$tmp/out" 2>&1 &&
   env -i "$tmp/line_test" >"$tmp/out" 2>&1 && grep -qx '2 edges, last line_seqno 2' "$tmp/out"; then
  ok "README GpioLine test: pkg-config --cflags --libs evw-gpiosim, runs without LD_LIBRARY_PATH"
else bad "README GpioLine test with the installed simulator"; fi

if $make --no-print-directory uninstall >"$tmp/out" 2>&1; then ok "make uninstall"; else bad "make uninstall"; fi
find /usr/local | sort > "$tmp/after"
if diff "$tmp/before" "$tmp/after" >"$tmp/out" 2>&1; then ok "uninstall left /usr/local as it was"
else bad "uninstall left /usr/local changed"; fi
if ldconfig -p | grep -q libevw; then ldconfig -p | grep libevw >"$tmp/out"; bad "linker cache still lists libevw"
else ok "linker cache no longer lists libevw"; fi

echo "system-install: $pass passed, $fail failed"
[ "$fail" = 0 ]
