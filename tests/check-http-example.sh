#!/usr/bin/env bash
# check-http-example.sh HTTP: runs examples/http as a client would use it and exits 0 if it
# behaved. A tiny client (bash's /dev/tcp) sends pipelined requests, a request split in two, a
# second request on a kept-alive connection, and a connection closed without a request; the
# server, started with --requests 6, must answer each request exactly and then exit by itself.
# No timing: every step waits for the bytes it expects (a hung server is killed by `timeout`).
set -u
http=$1
out=$(mktemp)
trap 'rm -f "$out"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null' EXIT
fail() { echo "http example: $*"; cat "$out"; exit 1; }

timeout 60 "$http" 0 --requests 6 >"$out" 2>&1 &
pid=$!
port=""
for _ in $(seq 100); do  # until it listens (at most 10 s)
  port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)/$|\1|p' "$out")
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || fail "exited before listening"
  sleep 0.1
done
[ -n "$port" ] || fail "does not listen"

request=$'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
response=$'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!'
expect() {  # expect FD COUNT: the next bytes on FD are COUNT responses
  local want="" got i
  for ((i = 0; i < $2; i++)); do want+=$response; done
  got=$(timeout 10 head -c "${#want}" <&"$1")
  [ "$got" = "$want" ] || fail "expected $2 response(s), got: $(printf %q "$got")"
}

exec 3<>"/dev/tcp/127.0.0.1/$port"
printf '%s%s%s' "$request" "$request" "${request:0:10}" >&3  # two and a half, pipelined
expect 3 2                                                    # answered without the half
printf '%s' "${request:10}" >&3
expect 3 1
exec 4<>"/dev/tcp/127.0.0.1/$port"
exec 4>&-                                                     # a client that leaves at once
exec 5<>"/dev/tcp/127.0.0.1/$port"
printf '%s' "$request" >&5
expect 5 1
printf '%s' "$request" >&5                                    # the same connection, kept alive
expect 5 1
exec 3>&-
printf '%s' "$request" >&5                                    # the 6th: the server exits
expect 5 1
wait "$pid" || fail "exit status $?"
pid=""
grep -qx 'served 6 requests' "$out" || fail "did not report 6 requests"
echo "http example: 6 requests answered, pipelined, split, kept alive; exited cleanly"
