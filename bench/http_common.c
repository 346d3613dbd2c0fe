/* bench/http_common.c: the work every HTTP server of bench/http.sh shares (see http_common.h).
 *
 * Compiled once, by the C compiler, and linked into every server: the C and the C++ programs
 * then run the same machine code for parsing and moving bytes, and differ only in their loop.
 * (Inlined into each program, the same source compiled by gcc and g++ differed by 26
 * instructions per request.) */
#include "http_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static long http_limit;  /* -n */
static long http_served; /* requests answered so far */

void http_die(const char *what)
{
    fprintf(stderr, "http: %s: %s\n", what, strerror(errno));
    exit(1);
}

int http_setup(int argc, char **argv)
{
    int port = 0, c;
    while ((c = getopt(argc, argv, "p:n:")) != -1) {
        switch (c) {
        case 'p': port = atoi(optarg); break;
        case 'n': http_limit = atol(optarg); break;
        default: fprintf(stderr, "usage: %s [-p port] [-n requests]\n", argv[0]); exit(2);
        }
    }
    signal(SIGPIPE, SIG_IGN);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((unsigned short)port);
    socklen_t len = sizeof sa;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, HTTP_BACKLOG) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        http_die("listen on 127.0.0.1");
    printf("port=%d\n", ntohs(sa.sin_port));
    fflush(stdout);
    return fd;
}

int http_done(void)
{
    return http_limit > 0 && http_served >= http_limit;
}

void http_report(void)
{
    printf("requests=%ld\n", http_served);
    fflush(stdout);
}

int http_parse(struct http_conn *c)
{
    static const char response[] = HTTP_RESPONSE;
    size_t start = 0;
    int answered = 0;
    while (c->out_len + sizeof response - 1 <= sizeof c->out) {
        const char *end = (const char *)memmem(c->in + start, c->in_len - start, "\r\n\r\n", 4);
        if (!end)
            break;
        start = (size_t)(end - c->in) + 4;
        memcpy(c->out + c->out_len, response, sizeof response - 1);
        c->out_len += sizeof response - 1;
        answered++;
    }
    if (start > 0) {
        c->in_len -= start;
        memmove(c->in, c->in + start, c->in_len);
    }
    http_served += answered;
    return answered;
}

int http_overlong(const struct http_conn *c)
{
    return c->in_len == sizeof c->in;
}

enum http_next http_write(struct http_conn *c, int fd)
{
    while (c->out_sent < c->out_len) {
        ssize_t n = write(fd, c->out + c->out_sent, c->out_len - c->out_sent);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? HTTP_WANT_WRITE : HTTP_CLOSE;
        c->out_sent += (size_t)n;
    }
    c->out_len = c->out_sent = 0;
    return HTTP_WANT_READ;
}

enum http_next http_serve(struct http_conn *c, int fd, int readable)
{
    if (readable) {
        ssize_t n = read(fd, c->in + c->in_len, sizeof c->in - c->in_len);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return HTTP_CLOSE; /* the client closed (or reset) the connection */
        if (n > 0)
            c->in_len += (size_t)n;
    }
    for (;;) {
        enum http_next next = http_write(c, fd);
        if (next != HTTP_WANT_READ)
            return next;
        if (http_parse(c) == 0)
            return http_overlong(c) ? HTTP_CLOSE : HTTP_WANT_READ;
    }
}
