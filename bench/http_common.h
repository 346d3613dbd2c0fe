/* bench/http_common.h: what every HTTP server of bench/http.sh shares.
 *
 * A minimal HTTP/1.1 keep-alive server in the TechEmpower plaintext shape: every request (any
 * bytes up to "\r\n\r\n"; a body is not expected) gets "Hello, World!". Requests are parsed just
 * enough to be pipelining-safe: each complete request in the buffer gets its response, in order,
 * and a partial one waits for more bytes. The programs differ only in the event loop that moves
 * the bytes; the buffers are declared here, the parsing, reading, writing and the request count
 * are in http_common.c, one object linked into every server.
 *
 * Options: -p port (0: any free one), -n requests (exit after answering that many; 0: never).
 * A server prints "port=P" once it listens and "requests=N" when it exits after -n.
 *
 * Valid C11 and C++20.
 */
#ifndef EVW_BENCH_HTTP_COMMON_H
#define EVW_BENCH_HTTP_COMMON_H

#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_RESPONSE                                                                      \
    "HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n" \
    "\r\nHello, World!"

enum { HTTP_IN_SIZE = 4096, HTTP_OUT_SIZE = 16384, HTTP_BACKLOG = 1024 };

struct http_conn {
    size_t in_len;   /* bytes of c->in not yet answered (at most one partial request after parse) */
    size_t out_len;  /* bytes of c->out to write */
    size_t out_sent; /* of which already written */
    char in[HTTP_IN_SIZE];
    char out[HTTP_OUT_SIZE];
};

#ifdef __cplusplus
extern "C" {
#endif

/* Parses -p/-n, ignores SIGPIPE (a client may close with a response in flight; the write then
 * fails with EPIPE and the connection is closed) and returns a nonblocking listening socket on
 * 127.0.0.1, after printing its port. Exits on failure. */
int http_setup(int argc, char **argv);
void http_die(const char *what);
/* True once -n requests were answered: the caller stops its loop. */
int http_done(void);
/* Prints "requests=N". */
void http_report(void);

/* Answers every complete request in c->in while c->out has room for another response, keeps
 * the rest (a partial request, or requests waiting for room) at the start of c->in. Returns
 * the number of requests answered. */
int http_parse(struct http_conn *c);
/* A full buffer without one complete request: a request the server cannot take. */
int http_overlong(const struct http_conn *c);

enum http_next { HTTP_WANT_READ, HTTP_WANT_WRITE, HTTP_CLOSE };

/* Writes what c->out holds. HTTP_WANT_READ: all written; HTTP_WANT_WRITE: the socket is full
 * (a partial write or EAGAIN), call again when it is writable; HTTP_CLOSE: the peer is gone. */
enum http_next http_write(struct http_conn *c, int fd);
/* The whole step of a readiness-based loop (raw libev, evw), called when the socket is readable
 * (readable != 0) or writable: read once (level-triggered: more data wakes the loop again),
 * then answer and write until no complete request is left or the socket is full. The loop then
 * waits for what the result says: reading stops while a response is stuck, so a client that
 * does not read cannot make the server buffer without bound. */
enum http_next http_serve(struct http_conn *c, int fd, int readable);

#ifdef __cplusplus
}
#endif

#endif
